"""Shared fixtures: small layers built inline, and the demo district at a small scale."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
TIANJIN_EPW = SHARED / "data" / "weather" / "CHN_TJ_Tianjin.545270_TMYx.2009-2023.epw"


@pytest.fixture(scope="session")
def tianjin_epw() -> Path:
    if not TIANJIN_EPW.exists():
        pytest.skip("the shared Tianjin weather file is not beside the repository")
    return TIANJIN_EPW


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory) -> Path:
    """The demo district at a small scale (written once per test session)."""
    from gis.demo import make_demo

    folder = tmp_path_factory.mktemp("demo")
    make_demo(folder, scale=0.03, raster_resolution_m=20)
    return folder

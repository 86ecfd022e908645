"""Shared fixtures: small layers built inline, the demo district at a small scale, and one whole
run of it that every module checking a run's outputs reads (never writes: copy it first)."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
TIANJIN_EPW = SHARED / "data" / "weather" / "CHN_TJ_Tianjin.545270_TMYx.2009-2023.epw"


@pytest.fixture(scope="session", autouse=True)
def _cache_folder(tmp_path_factory):
    """Horizon tiles are cached in a folder of this test session, never in the user's cache
    (and never shared with another session)."""
    patch = pytest.MonkeyPatch()
    patch.setenv("GIS_PLANNER_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    yield
    patch.undo()


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


@pytest.fixture(scope="session")
def demo_run(demo_dir, tmp_path_factory):
    """One whole run of the small demo (maps online), made once per test session and shared:
    ``(context, output folder)``.  Read-only: a test that changes an output folder copies it."""
    from gis import pipeline

    out = tmp_path_factory.mktemp("runs") / "dongli"
    ctx = pipeline.run(demo_dir / "run.toml", out_dir=out, offline=False)
    return ctx, out


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Keep what is built once together under ``pytest -n 2 --dist loadgroup`` (README's test
    command): a test module goes to one worker as a whole (its module-scoped fixtures are made
    once), and every test reading the shared demo run to one worker, which makes the run once."""
    for item in items:
        if item.get_closest_marker("xdist_group") is not None:
            continue
        group = "demo_run" if "demo_run" in item.fixturenames else item.nodeid.split("::")[0]
        item.add_marker(pytest.mark.xdist_group(group))

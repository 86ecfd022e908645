"""For the benchmarks that time parts of a step: a run's loaded layers, and the wall and CPU
time of every call to a function."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path


def timed(owner, name: str, acc: dict) -> None:
    """Replace ``owner.name`` by a wrapper adding each call's wall and CPU seconds and a count
    to ``acc[name]`` (a list ``[wall, cpu, calls]``)."""
    fn = getattr(owner, name)

    def wrapper(*args, **kwargs):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            row = acc[name]
            row[0] += time.perf_counter() - wall
            row[1] += time.process_time() - cpu
            row[2] += 1

    setattr(owner, name, wrapper)


def loaded(run: str | Path):
    """The context of a run after its load step only (layers validated, nothing computed)."""
    from gis import pipeline
    from gis.config import load_runfile

    cfg = load_runfile(Path(run).resolve())
    steps = [(label, fn) for label, fn in pipeline.STEPS if label.startswith("load")]
    with tempfile.TemporaryDirectory() as tmp:
        return pipeline.run(cfg, out_dir=Path(tmp) / "out", force=True, steps=steps)

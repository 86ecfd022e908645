"""Wall and CPU time of every call to a function, for the benchmarks that time parts of a step."""

from __future__ import annotations

import time


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

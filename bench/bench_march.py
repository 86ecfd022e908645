"""The ray march alone, on the tiles of a run: its time, and another version's, bit for bit.

Usage::

    python bench/bench_march.py [--run layers/demo/run.toml] [--repeat 5] [--threads N]
                                [--against OLD_HORIZON.py ...]

Loads the run file's layers (the pipeline's load step) and computes rooftop PV once with the
horizon cache off, keeping what :func:`gis.horizon._horizons` is given for each tile (the
surface's blocks, the points, their floors).  Then marches every tile again ``--repeat`` times
with this checkout's :func:`gis.horizon._horizons` and with each ``--against`` file (another
version of ``gis/horizon.py``, e.g. ``git show 7978e35:gis/horizon.py > /tmp/h_old.py``),
taking turns, and prints the fastest and the median wall and CPU seconds of each (the first
turn, which compiles, is left out), and whether each version's horizons equal this one's bit
for bit.  ``--threads`` caps numba's threads (1: one core, steadier on a shared machine).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _timing import loaded  # bench/ is on the path when run as a script


def _module(path: Path):
    """A ``gis/horizon.py`` of another version, imported under a name of its own."""
    # a name of its own, the same in every process (numba's cache of its kernels records it)
    name = "horizon_" + hashlib.blake2b(str(path.resolve()).encode(), digest_size=6).hexdigest()
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


def _capture(run: str) -> list[dict]:
    from gis import horizon, rooftop

    ctx = loaded(run)
    tiles: list[dict] = []
    march = horizon._horizons

    def keep(blocks, x, y, z, **kw):
        tiles.append({"blocks": blocks, "x": x, "y": y, "z": z, **kw})
        return march(blocks, x, y, z, **kw)

    horizon._horizons = keep
    try:
        params = rooftop.pv_params(**{**ctx.cfg.pv, "horizon_cache": False})
        rooftop.pv_potential(ctx.layers.buildings, params=params,
                             irradiance=ctx.layers.rasters.get("irradiance"))
    finally:
        horizon._horizons = march
    return tiles


def _march(module, tiles: list[dict]) -> list[np.ndarray]:
    out = []
    for t in tiles:
        b = t["blocks"]
        blocks = module._Blocks(index=b.index, cells=b.cells, peak=b.peak, ground=b.ground,
                                shape=b.shape, left=b.left, top=b.top, res=b.res)
        out.append(module._horizons(blocks, t["x"], t["y"], t["z"], sectors=t["sectors"],
                                    max_distance_m=t["max_distance_m"],
                                    floor_tan=t["floor_tan"], floor_of=t["floor_of"]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="layers/demo/run.toml")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--against", type=Path, nargs="*", default=[])
    args = ap.parse_args()

    import numba

    from gis import horizon

    if args.threads:
        numba.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        os.environ.setdefault("GIS_PLANNER_CACHE_DIR", folder)
        tiles = _capture(args.run)
    points = sum(len(t["x"]) for t in tiles)
    print(f"{len(tiles)} tiles, {points} points, {points * tiles[0]['sectors']} rays, "
          f"numba threads {numba.get_num_threads()}")
    versions = [("this checkout", horizon)] + [(str(p), _module(p)) for p in args.against]
    times: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in versions}
    reference = None
    for turn in range(args.repeat + 1):
        for name, module in versions:
            wall, cpu = time.perf_counter(), time.process_time()
            out = _march(module, tiles)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            if turn:
                times[name].append((wall, cpu))
            if reference is None:
                reference = out
            elif turn == 0:
                same = all(np.array_equal(a, b) for a, b in zip(out, reference, strict=True))
                print(f"{name}: horizons equal to this checkout's bit for bit: {same}")
    for name, rows in times.items():
        walls, cpus = sorted(r[0] for r in rows), sorted(r[1] for r in rows)
        print(f"{name:40s} wall fastest {walls[0]:6.2f} median {walls[len(walls) // 2]:6.2f} s"
              f"   CPU fastest {cpus[0]:6.2f} median {cpus[len(cpus) // 2]:6.2f} s")


if __name__ == "__main__":
    main()

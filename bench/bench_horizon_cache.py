"""The horizon cache on the demo district: rooftop PV without it, cold, warm, and after one
building changed — wall and CPU seconds, tiles reused, the cost of the keys, disk used.

Usage::

    python bench/bench_horizon_cache.py [--run layers/demo/run.toml] [--repeat 1]

Loads the run file's layers (the pipeline's load step), then times
:func:`gis.rooftop.pv_potential` as the step "rooftop PV" calls it (irradiance raster, built-in
climate) with ``time.perf_counter`` (wall) and ``time.process_time`` (CPU of every thread):

1. cache off (``[pv] horizon_cache = false``), once to compile the kernels, then measured;
2. cold: an empty cache folder (computes and writes every tile);
3. warm: the same again (loads every tile);
4. one building 10 m taller: the tiles within its reach are computed again.

The keys (``horizon._tile_key``), reads and writes (``_cache.ArrayCache.get`` / ``put``) are
timed apart.  The outputs of each run are compared with the cache-off run (equal bit for bit).
"""

from __future__ import annotations

import argparse
import collections
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from _timing import loaded, timed  # bench/ is on the path when run as a script


def _disk(folder: Path) -> tuple[int, int]:
    files = list(folder.glob("*.bin")) if folder.exists() else []
    return len(files), sum(f.stat().st_size for f in files)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="layers/demo/run.toml")
    args = ap.parse_args()

    from gis import _cache, horizon, rooftop

    ctx = loaded(args.run)
    buildings = ctx.layers.buildings
    irradiance = ctx.layers.rasters.get("irradiance")
    acc: dict = collections.defaultdict(lambda: [0.0, 0.0, 0])
    timed(horizon, "_tile_key", acc)
    timed(_cache.ArrayCache, "get", acc)
    timed(_cache.ArrayCache, "put", acc)
    timed(horizon, "_tile_surface", acc)
    timed(horizon, "_tile_march", acc)  # in the worker thread: its wall overlaps the rest

    def pv(label: str, frame, params, ref=None):
        acc.clear()
        before = _cache.counts()
        wall, cpu = time.perf_counter(), time.process_time()
        out = rooftop.pv_potential(frame, params=params, irradiance=irradiance)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        rec = horizon.cache_record(before, on=params.horizon_cache)
        same = "" if ref is None else (
            "  outputs equal to cache off: "
            f"{ref[['shading_factor', 'annual_kwh']].equals(out[['shading_factor', 'annual_kwh']])}")
        print(f"{label:28s} wall {wall:6.2f} s  CPU {cpu:6.2f} s  tiles reused "
              f"{rec.get('tiles_reused')} computed {rec.get('tiles_computed')}{same}")
        for name, (w, c, n) in sorted(acc.items()):
            print(f"    {name:18s} wall {w:6.2f} s  CPU {c:6.2f} s  calls {n}")
        return out

    with tempfile.TemporaryDirectory() as folder:
        os.environ[_cache.ENV_DIR] = folder
        off = rooftop.pv_params(**{**ctx.cfg.pv, "horizon_cache": False})
        on = rooftop.pv_params(**{**ctx.cfg.pv, "horizon_cache": True})
        pv("cache off (compiles)", buildings, off)
        ref = pv("cache off", buildings, off)
        pv("cold (empty folder)", buildings, on, ref)
        files, size = _disk(horizon.cache_folder())
        print(f"    disk: {files} files, {size / 2 ** 20:.1f} MiB")
        pv("warm", buildings, on, ref)
        changed = buildings.copy()
        k = changed.index[len(changed) // 2]
        changed.loc[k, "height"] = float(np.nan_to_num(changed.loc[k, "height"], nan=9.0)) + 10.0
        ref2 = pv("one building +10 m, off", changed, off)
        pv("one building +10 m, warm", changed, on, ref2)
        files, size = _disk(horizon.cache_folder())
        print(f"    disk: {files} files, {size / 2 ** 20:.1f} MiB")


if __name__ == "__main__":
    main()

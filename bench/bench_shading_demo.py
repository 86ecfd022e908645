"""Shading by neighbours on the demo district, part by part: wall and CPU seconds.

Usage::

    python bench/bench_shading_demo.py [--run layers/demo/run.toml] [--save FILE.npz]
                                       [--compare FILE.npz]

Loads the run file's layers (the pipeline's load step), then times ``rooftop._shading`` — the
irradiance raster's roof means, the sample points, the LoD1 tiles, the ray march, the sky
look-ups — with ``time.perf_counter`` (wall) and ``time.process_time`` (CPU of every thread).
``--save`` writes the points' horizons and the roofs' shading factors; ``--compare`` reports
how far this run's are from a saved file's (per-roof factor |Δ| percentiles, horizons equal).
The first run after an edit of ``gis/horizon.py`` compiles its kernels: run twice.
"""

from __future__ import annotations

import argparse
import collections

import numpy as np
from _timing import loaded, timed  # bench/ is on the path when run as a script

#: (module, function) pairs timed when present; calls nest (``roof_horizons`` holds the rest)
PARTS = (("rooftop", "shading_factors"), ("horizon", "sky_table"), ("horizon", "roof_points"),
         ("horizon", "_lod1_blocks"), ("horizon", "lod1_surface"), ("horizon", "_block_max"),
         ("horizon", "_pyramid"), ("horizon", "_horizon_kernel"), ("horizon", "roof_horizons"),
         ("horizon", "table_shading_factors"), ("horizon", "point_shading_factors"),
         ("rooftop", "_shading"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="layers/demo/run.toml")
    ap.add_argument("--save", default=None)
    ap.add_argument("--compare", default=None)
    args = ap.parse_args()

    from gis import horizon, rooftop

    ctx = loaded(args.run)
    buildings = ctx.layers.buildings
    params = rooftop.pv_params(**ctx.cfg.pv)
    acc: dict = collections.defaultdict(lambda: [0.0, 0.0, 0])
    modules = {"rooftop": rooftop, "horizon": horizon}
    for mod, name in PARTS:
        if hasattr(modules[mod], name):
            timed(modules[mod], name, acc)
    caught = {}
    roof_horizons = rooftop._roof_horizons

    def keep(*a, **k):
        caught["rh"] = roof_horizons(*a, **k)
        return caught["rh"]

    rooftop._roof_horizons = keep
    roof = rooftop._roofs(buildings, params)
    planes = rooftop._planes(roof, buildings, params, None, None)
    shade = rooftop._shading(roof, planes, buildings, params, weather=None,
                             irradiance=ctx.layers.rasters.get("irradiance"), obstacles=None,
                             dsm=None, dem=None)
    for name, (wall, cpu, calls) in acc.items():
        print(f"{name:24s} wall {wall:7.2f} s  CPU {cpu:7.2f} s  calls {calls}")
    rh = caught["rh"]
    factors = np.concatenate([shade.factor_a, shade.factor_b])
    print(f"points {len(rh.x)}, tiles {acc['_horizon_kernel'][2]}, search {rh.max_distance_m} m")
    if args.save:
        np.savez(args.save, x=rh.x, y=rh.y, horizon=rh.horizon_deg, factors=factors)
    if args.compare:
        ref = np.load(args.compare)
        same = np.array_equal(ref["horizon"], rh.horizon_deg)
        diff = np.abs(ref["factors"] - factors)
        p50, p95, p99 = np.percentile(diff, [50, 95, 99])
        print(f"horizons equal: {same}; roof factor |Δ| p50 {p50:.2e} p95 {p95:.2e} "
              f"p99 {p99:.2e} max {diff.max():.2e}")


if __name__ == "__main__":
    main()

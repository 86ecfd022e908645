"""Rooftop PV and ecology through the dask engine against the local engine: CPU where it is spent.

Usage::

    python bench/bench_dask_engine.py --n 100000                  # irradiance raster shading
    python bench/bench_dask_engine.py --n 20000 --shading lod1     # footprints × heights shading

Loads the benchmark run of size ``n`` (``bench/_inputs.py``; the load is not timed), then runs
the pipeline's ``rooftop PV`` and ``ecology`` steps once with ``[engine] kind = "local"`` and once
with ``"dask"`` (a local cluster of 2 worker processes, started by the step itself as in a run),
each step's wall time, the main process's CPU time and the CPU time the workers spent during it
(``resource.getrusage`` in each worker, before and after), then the engine's shut-down. The
tables of both engines are compared (every column; geometry exactly). ``--shading lod1`` drops
the irradiance raster so that the roofs are shaded by their neighbours (the horizon kernels).
One JSON line is printed per engine.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _inputs  # noqa: E402
from _timing import loaded  # noqa: E402


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _workers_cpu(ctx) -> float:
    eng = ctx.extras.get("engine")
    if eng is None or (eng._client is None and getattr(eng, "_starting", None) is None):
        return 0.0
    return float(sum(eng.client.run(_cpu).values()))


def run_engine(base, kind: str, *, lod1: bool) -> tuple[dict, dict]:
    """The two steps on a copy of the loaded context ``base``; (figures, tables)."""
    from gis import pipeline

    cfg = replace(base.cfg, engine=replace(base.cfg.engine, kind=kind))
    ctx = pipeline.Context(cfg=cfg, out_dir=base.out_dir, progress=None)
    ctx.targets, ctx.layers = base.targets, base.layers
    if lod1:
        ctx.layers = replace(base.layers, rasters={k: v for k, v in base.layers.rasters.items()
                                                     if k != "irradiance"})
    res: dict = {"engine": kind, "n": len(ctx.layers.buildings), "lod1": lod1,
                 "gis": str(Path(pipeline.__file__).parent)}
    for label, fn in (("rooftop PV", pipeline.step_pv), ("ecology", pipeline.step_ecology)):
        w0, c0, t0 = _workers_cpu(ctx), _cpu(), time.perf_counter()
        fn(ctx)
        wall, cpu = time.perf_counter() - t0, _cpu() - c0
        res[label] = {"wall_s": round(wall, 2), "main_cpu_s": round(cpu, 2),
                      "workers_cpu_s": round(_workers_cpu(ctx) - w0, 2)}
    c0, t0 = _cpu(), time.perf_counter()
    eng = ctx.extras.pop("engine", None)
    if eng is not None:
        eng.close()
    res["close"] = {"wall_s": round(time.perf_counter() - t0, 2),
                    "main_cpu_s": round(_cpu() - c0, 2)}
    return res, {"pv": ctx.results["pv"], "zones": ctx.results["zones"]}


def same(a: dict, b: dict) -> dict:
    """Per table: equal columns, index and values (floats to 1e-12 relative, geometry exact)."""
    import pandas as pd
    import shapely

    out = {}
    for key in a:
        x, y = a[key], b[key]
        g = x.geometry.name
        try:
            assert list(x.columns) == list(y.columns) and x.index.equals(y.index)
            assert shapely.equals_exact(x[g].array, y[g].array, tolerance=0).all()
            pd.testing.assert_frame_equal(pd.DataFrame(x.drop(columns=g)),
                                          pd.DataFrame(y.drop(columns=g)),
                                          check_exact=False, rtol=1e-12)
            out[key] = True
        except AssertionError:
            out[key] = False
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--cache", type=Path, default=_inputs.default_cache())
    parser.add_argument("--shading", choices=("raster", "lod1"), default="raster")
    args = parser.parse_args()
    base = loaded(_inputs.write_run(args.n, args.cache, engine="local"))
    lod1 = args.shading == "lod1"
    local, a = run_engine(base, "local", lod1=lod1)
    print(json.dumps(local), flush=True)
    dask, b = run_engine(base, "dask", lod1=lod1)
    dask["same_as_local"] = same(a, b)
    print(json.dumps(dask), flush=True)


if __name__ == "__main__":
    main()

"""One benchmark stage on generated inputs of N buildings; prints one JSON line.

Usage::

    python bench/bench_stages.py --stage raster --n 100000 [--cache DIR]
    python bench/bench_stages.py --prepare --n 100000          # only write the inputs

Run each stage in its own process (``bench/run_all.py`` does): the peak resident memory
(``ru_maxrss``) is then that stage's alone.  ``base_rss_mib`` is the peak before the timed part
(interpreter, libraries and the stage's inputs), ``peak_rss_mib`` the peak at its end.

Stages (ours, then the reference way on the same input):

=====================  ==========================================================================
``load``               GeoPackage → ``gis.validate.load_layers`` (read, canonical columns, checks)
``load_ref``           GeoPackage → ``pyogrio.read_dataframe`` (plain read)
``pv``                 ``gis.rooftop.pv_potential`` without a raster (orientation-class yields)
``pv_loop``            pvlib once per building on ``--sample`` buildings (``bench_pv.per_building_loop``),
                       time per building × N
``raster``             ``gis.rooftop.shading_factors`` (roof means of the 1 m raster)
``raster_exactextract`` ``exactextract.exact_extract(..., "mean")`` with its default strategy
``raster_rasterstats`` ``rasterstats.zonal_stats(..., stats="mean")`` on ``--sample`` roofs, × N
``raster_reference``   the unshaded reference alone: the 99th percentile from ``rooftop``'s block
                       sample vs the exact percentile of every cell (one histogram pass; N unused)
``pv_raster``          ``pv_potential`` with the raster: PV and raster statistics together
``pv_raster_dask``     the same through ``gis.distributed.Engine`` (local cluster, 2 processes)
``ecology``            ``gis.ecology.zone_accounts`` (parcels × zones, levels; official areas)
``ecology_overlay``    ``geopandas.overlay`` of parcels and accounting units + area + groupby
``maps``               ``gis.maps.pv_map`` + ``ecology_map``, rendered to HTML files
``exports``            ``gis.sites.select_sites`` + ``export`` to .csv, .xlsx, .gpkg (as the run)
``pipeline``           the whole run (``gis.pipeline.run``, every output) on a run folder of the
                       inputs in GDAL formats (``_inputs.write_run``); wall time and peak RSS per
                       step (RSS sampled every 20 ms), then the run's I/O floor
                       (``bench_demo.io_floor``) and the ratio
``pipeline_dask``      the same with ``[engine] kind = "dask"``; outputs compared with the last
                       ``pipeline`` run of the same size (``bench_demo.compare``)
=====================  ==========================================================================
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _inputs  # noqa: E402

STAGES = ("load", "load_ref", "pv", "pv_loop", "raster", "raster_exactextract",
          "raster_rasterstats", "raster_reference", "pv_raster", "pv_raster_dask", "ecology", "ecology_overlay",
          "maps", "exports", "pipeline", "pipeline_dask")


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _children_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


class _Timer:
    def __enter__(self):
        self.base = _rss_mib()
        self.load = os.getloadavg()[0]
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.t0
        self.peak = _rss_mib()
        # the machine is shared: the 1-minute load average at start and end tells how busy it was
        self.load = (round(self.load, 2), round(os.getloadavg()[0], 2))


class _StepMemory:
    """Peak resident memory per pipeline step: a thread samples ``/proc/self/statm``."""

    def __init__(self, interval_s: float = 0.02):
        import threading

        self.interval, self.step, self.peaks = interval_s, None, {}
        self.starts: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._page = os.sysconf("SC_PAGE_SIZE")

    def _rss(self) -> float:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * self._page / 2**20

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            if self.step is not None:
                self.peaks[self.step] = max(self.peaks.get(self.step, 0.0), self._rss())

    def progress(self, label: str) -> None:
        self.step = label
        self.starts[label] = time.process_time()
        self.peaks[label] = max(self.peaks.get(label, 0.0), self._rss())

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def _pipeline(stage: str, n: int, cache: Path) -> tuple[dict, _Timer]:
    import bench_demo

    from gis import pipeline

    engine = "dask" if stage == "pipeline_dask" else "local"
    runfile = _inputs.write_run(n, cache, engine=engine)
    out = cache / f"run_{n}" / f"out-{engine}"
    res: dict = {"runfile": str(runfile), "out": str(out)}
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = usage.ru_utime + usage.ru_stime
    with _StepMemory() as mem, _Timer() as t:
        ctx = pipeline.run(runfile, out_dir=out, force=True, progress=mem.progress)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    res["cpu_s"] = round(usage.ru_utime + usage.ru_stime - cpu0, 1)
    labels = list(ctx.timings)
    ends = [mem.starts[b] for b in labels[1:]] + [mem.starts[labels[-1]] + 0.0]
    cpu = {a: max(e - mem.starts[a], 0.0) for a, e in zip(labels[:-1], ends[:-1], strict=True)}
    res["steps"] = {label: {"wall_s": round(ctx.timings.get(label, 0.0), 2),
                            "cpu_s": round(cpu[label], 2) if label in cpu else None,
                            "peak_rss_mib": round(mem.peaks.get(label, 0.0))}
                    for label in labels}
    res["files"] = len(list(out.iterdir()))
    res["sites"] = len(ctx.results.get("sites", ()))
    if engine == "dask":
        res["max_child_rss_mib"] = _children_rss_mib()
        local = cache / f"run_{n}" / "out-local"
        if (local / "run.json").exists():
            cmp = bench_demo.compare(local, out)
            res["same_outputs_as_local"] = {k: cmp[k]["equal"] for k in
                                            ("scorecard", "zones_csv", "buildings_pv_gpkg")}
            res["same_files_as_local"] = not (cmp["files"]["only_local"]
                                              or cmp["files"]["only_dask"])
    floor = bench_demo.io_floor(runfile, out, repeats=2)
    res["floor_s"], res["floor_cpu_s"] = floor["floor_s"], floor["floor_cpu_s"]
    res["floor_ops_s"] = floor["ops_s"]
    res["ratio_to_floor"] = round(t.wall / floor["floor_s"], 2)
    res["cpu_ratio_to_floor"] = round(res["cpu_s"] / floor["floor_cpu_s"], 2)
    return res, t


def _buildings(paths) -> gpd.GeoDataFrame:
    return gpd.read_parquet(paths["buildings"])


def _check_means(ours: np.ndarray, ref: np.ndarray) -> dict:
    ok = np.isfinite(ours) & np.isfinite(ref)
    rel = np.abs(ours[ok] - ref[ok]) / np.abs(ref[ok])
    return {"compared": int(ok.sum()), "max_rel_diff": float(rel.max()) if rel.size else None,
            "share_within_0.1pct": float((rel <= 1e-3).mean()) if rel.size else None}


def _our_means(paths, geoms: gpd.GeoSeries) -> np.ndarray:
    """Roof means [kWh/m²] from ``shading_factors`` with a reference that never clips."""
    from gis import rooftop

    big = 1e6
    f, _ = rooftop.shading_factors(geoms, paths["raster"], reference_kwh_m2=big)
    return f * big


def _exact_percentile(path: Path, q: float) -> float:
    """The ``q``-th percentile of every valid (> 0) cell of a uint16 raster, block by block.

    Uses numpy's default (linear) interpolation between the two order statistics around the
    rank, like ``np.percentile`` on all cells, without holding them in memory.
    """
    import rasterio

    counts = np.zeros(65536, dtype=np.int64)
    with rasterio.open(path) as src:
        for _, w in src.block_windows(1):
            counts += np.bincount(src.read(1, window=w).ravel(), minlength=65536)
    counts[0] = 0  # nodata
    cum = np.cumsum(counts)
    rank = q / 100 * (cum[-1] - 1)
    lo, hi = int(np.floor(rank)), int(np.ceil(rank))
    v_lo, v_hi = np.searchsorted(cum, lo, side="right"), np.searchsorted(cum, hi, side="right")
    return float(v_lo + (v_hi - v_lo) * (rank - lo))


def run(stage: str, n: int, cache: Path, sample: int) -> dict:
    paths = _inputs.prepare(n, cache)
    res: dict = {"stage": stage, "n": n}
    if stage in ("pipeline", "pipeline_dask"):
        more, t = _pipeline(stage, n, cache)
        res.update(more)
    elif stage == "load":
        from gis.config import parse_runfile
        from gis.validate import load_layers

        cfg = parse_runfile({"project": {"name": "bench", "crs": _inputs.CRS},
                             "layers": {"buildings": {"path": str(paths["buildings_gpkg"]),
                                                      "layer": "buildings"}}}, base=cache)
        with _Timer() as t:
            layers = load_layers(cfg)
        res["rows"] = len(layers.buildings)
        res["errors"] = [str(p) for p in layers.problems if p.severity == "error"][:3]
    elif stage == "load_ref":
        import pyogrio

        with _Timer() as t:
            gdf = pyogrio.read_dataframe(paths["buildings_gpkg"], layer="buildings")
        res["rows"] = len(gdf)
    elif stage == "pv":
        from gis import rooftop

        b = _buildings(paths)
        with _Timer() as t:
            pv = rooftop.pv_potential(b)
        res["gwh"] = float(pv["annual_kwh"].sum() / 1e6)
    elif stage == "pv_loop":
        import bench_pv

        from gis import rooftop, solar

        b = _buildings(paths)
        params = rooftop.pv_params("base")
        lon, lat = 117.0, 39.1
        weather = solar.climate_model(lat, lon)
        s = b.sample(min(sample, len(b)), random_state=1)
        with _Timer() as t:
            per = bench_pv.per_building_loop(s, weather, params)
        res["sample"] = len(s)
        res["per_building_s"] = per
        res["estimate_s"] = per * n
    elif stage == "raster":
        from gis import rooftop

        b = _buildings(paths)
        with _Timer() as t:
            f, ref = rooftop.shading_factors(b.geometry, paths["raster"])
        res["reference_kwh_m2"] = ref
        res["mean_factor"] = float(np.mean(f))
    elif stage == "raster_exactextract":
        from exactextract import exact_extract

        b = _buildings(paths)[["geometry"]]
        with _Timer() as t:
            stats = exact_extract(str(paths["raster"]), b, ["mean"], output="pandas")
        ref = stats["mean"].to_numpy(float)
        res["equal"] = _check_means(_our_means(paths, b.geometry), ref)
    elif stage == "raster_rasterstats":
        from rasterstats import zonal_stats

        b = _buildings(paths)[["geometry"]].sample(min(sample, n), random_state=2)
        with _Timer() as t:
            stats = zonal_stats(list(b.geometry), str(paths["raster"]), stats=["mean"])
        ref = np.array([s["mean"] if s["mean"] is not None else np.nan for s in stats], float)
        res["sample"] = len(b)
        res["per_feature_s"] = t.wall / len(b)
        res["estimate_s"] = t.wall / len(b) * n
        res["equal"] = _check_means(_our_means(paths, b.geometry), ref)
    elif stage == "raster_reference":
        import rasterio

        from gis import rooftop

        with _Timer() as t, rasterio.open(paths["raster"]) as src:
            valid = rooftop._raster_sample(src, 1)
            valid = valid[np.isfinite(valid) & (valid > 0)]
            sampled = float(np.percentile(valid, 99.0))
        res["sample_cells"] = int(valid.size)
        t0 = time.perf_counter()
        res["exact_kwh_m2"] = exact = _exact_percentile(paths["raster"], 99.0)
        res["exact_pass_s"] = round(time.perf_counter() - t0, 1)
        res["reference_kwh_m2"] = sampled
        res["rel_diff"] = abs(sampled - exact) / exact
    elif stage == "pv_raster":
        from gis import rooftop

        b = _buildings(paths)
        with _Timer() as t:
            pv = rooftop.pv_potential(b, irradiance=paths["raster"])
        res["gwh"] = float(pv["annual_kwh"].sum() / 1e6)
    elif stage == "pv_raster_dask":
        from gis import distributed, rooftop
        from gis.config import EngineSpec

        b = _buildings(paths)
        with _Timer() as t, distributed.Engine(EngineSpec("dask")) as eng:
            pv = eng.pv_potential(b, irradiance=paths["raster"])
        res["gwh"] = float(pv["annual_kwh"].sum() / 1e6)
        res["max_child_rss_mib"] = _children_rss_mib()
        res["note"] = "includes cluster start-up and shutdown"
        del rooftop
    elif stage == "ecology":
        from gis import ecology

        lu = gpd.read_parquet(paths["landuse"])
        z = gpd.read_parquet(paths["zones"])
        with _Timer() as t:
            table = ecology.zone_accounts(lu, z, scheme="gbt21010")
        res["parcels"] = len(lu)
        res["bluegreen_share_barrier"] = float(table["bluegreen_share"].iat[0])
    elif stage == "ecology_overlay":
        from gis import ecology, landuse

        lu = gpd.read_parquet(paths["landuse"])
        z = gpd.read_parquet(paths["zones"])
        with _Timer() as t:
            units = ecology.accounting_units(z)
            flags = landuse.classify(lu["code"], "gbt21010")
            parcels = gpd.GeoDataFrame({"bluegreen": flags["bluegreen"].to_numpy(bool),
                                        "forest": flags["forest"].to_numpy(bool)},
                                       geometry=lu.geometry.to_numpy(), crs=lu.crs)
            u = gpd.GeoDataFrame({"unit": np.arange(len(units))},
                                 geometry=units.geometry.to_numpy(), crs=units.crs)
            pieces = gpd.overlay(parcels, u, how="intersection", keep_geom_type=True)
            a = pieces.area
            sums = pd.DataFrame({"unit": pieces["unit"], "area": a,
                                 "bluegreen": a * pieces["bluegreen"],
                                 "forest": a * pieces["forest"]}).groupby("unit").sum()
        res["parcels"] = len(lu)
        ours = ecology.zone_accounts(lu, z, scheme="gbt21010", official=False)
        ref_bg = sums["bluegreen"].reindex(range(len(units)), fill_value=0).to_numpy() / 1e4
        ref_f = sums["forest"].reindex(range(len(units)), fill_value=0).to_numpy() / 1e4
        res["max_rel_diff_bluegreen_ha"] = float(np.max(
            np.abs(ours["bluegreen_ha"].to_numpy() - ref_bg) / ref_bg))
        res["max_rel_diff_forest_ha"] = float(np.max(
            np.abs(ours["forest_ha"].to_numpy() - ref_f) / ref_f))
    elif stage == "maps":
        from gis import ecology, landuse, maps

        pv = gpd.read_parquet(paths["pv"])
        lu = gpd.read_parquet(paths["landuse"])
        z = gpd.read_parquet(paths["zones"])
        table = ecology.zone_accounts(lu, z, scheme="gbt21010")
        classified = lu.join(landuse.classify(lu["code"], "gbt21010").drop(columns="code"))
        classified["area_ha"] = classified.area / 1e4
        out = Path(tempfile.mkdtemp(prefix="gis-bench-maps-"))
        with _Timer() as t:
            m = maps.pv_map(pv, synthetic=True)
            maps.save_map(m, out / "pv.html")
            m = maps.ecology_map(table, classified, None, synthetic=True,
                                 targets={"bluegreen-barrier": 0.65, "bluegreen-level1": 0.85,
                                          "forest-level1": 0.275})
            maps.save_map(m, out / "ecology.html")
        res["html_mib"] = {p.name: round(p.stat().st_size / 2**20, 2) for p in out.glob("*.html")}
    elif stage == "exports":
        from gis import sites

        pv = gpd.read_parquet(paths["pv"])
        out = Path(tempfile.mkdtemp(prefix="gis-bench-exports-"))
        walls = {}
        with _Timer() as t:
            t0 = time.perf_counter()
            ranked = sites.select_sites(pv)
            walls["select"] = time.perf_counter() - t0
            for suffix in (".csv", ".gpkg", ".xlsx"):
                t0 = time.perf_counter()
                sites.export(ranked, out / f"sites{suffix}", meta={"run": "bench"}, kind="sites")
                walls[suffix] = round(time.perf_counter() - t0, 2)
        res["rows"] = len(ranked)
        res["walls_s"] = walls
    else:
        raise SystemExit(f"unknown stage {stage!r}; use one of {', '.join(STAGES)}")
    if stage in ("maps", "exports"):
        shutil.rmtree(out, ignore_errors=True)
    res["wall_s"] = round(t.wall, 3)
    res["load_avg"] = t.load
    res["base_rss_mib"] = round(t.base, 1)
    res["peak_rss_mib"] = round(t.peak, 1)
    return res


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", choices=STAGES)
    parser.add_argument("--n", type=int, default=10_000, help="buildings (parcels: N/4)")
    parser.add_argument("--cache", type=Path, default=_inputs.default_cache(),
                        help="folder of generated inputs (reused)")
    parser.add_argument("--sample", type=int, default=1000,
                        help="features in the per-feature reference loops (pvlib, rasterstats)")
    parser.add_argument("--prepare", action="store_true", help="only write the inputs")
    args = parser.parse_args(argv)
    if args.prepare:
        t0 = time.perf_counter()
        paths = _inputs.prepare(args.n, args.cache)
        print(json.dumps({"prepared": {k: str(v) for k, v in paths.items()},
                          "wall_s": round(time.perf_counter() - t0, 1)}))
        return
    if not args.stage:
        parser.error("give --stage or --prepare")
    print(json.dumps(run(args.stage, args.n, args.cache, args.sample), ensure_ascii=False))


if __name__ == "__main__":
    main()

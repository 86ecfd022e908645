"""The ``exports`` step of a demo run: wall and CPU, each writer, threads or not.

Usage::

    python bench/bench_exports.py                       # layers/demo, context cached in /tmp
    python bench/bench_exports.py --demo /tmp/demo2     # another demo folder
    python bench/bench_exports.py --repeats 5 --writers # and each writer alone

The run's steps up to the scorecard run once (their context is pickled to ``--cache``, reused
while the run file is unchanged); then :func:`gis.pipeline.step_exports` is timed ``--repeats``
times with the files written side by side in threads (the run's way) and one after the other
(``io.WRITE_THREADS = 1``), fastest counted: wall, process CPU (user + system, every thread),
and the CPU of each file's writer in its own thread (``time.thread_time``; a workbook's
compression thread is not in its figure).  ``--writers`` times the site list's writers alone:
``DataFrame.to_csv`` (the I/O floor's CSV and the previous writer) against ``gis.csvtext``; the
workbook with the sheet deflated by zlib level 1 (the previous writer) and by ISA-L level 1; the
GeoPackages.  Every figure is CPU seconds unless it says wall.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gis import io, pipeline, sites, xlsx  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def context(runfile: Path, cache: Path) -> pipeline.Context:
    """The run's context just before ``exports`` (cached; rebuilt when the run file changed)."""
    key = f"{runfile.resolve()}:{runfile.stat().st_mtime_ns}"
    if cache.exists():
        with open(cache, "rb") as fh:
            saved_key, ctx = pickle.load(fh)
        if saved_key == key:
            return ctx
    grabbed = {}
    steps = [s for s in pipeline.STEPS if s[0] not in ("exports", "maps and report",
                                                       "QGIS styles and project", "provenance")]
    steps.append(("keep", lambda ctx: grabbed.setdefault("ctx", ctx)))
    pipeline.run(runfile, out_dir=Path(tempfile.mkdtemp(prefix="bench-exports-")) / "out",
                 steps=steps, force=True)
    ctx = grabbed["ctx"]
    ctx.stage, ctx.progress = None, None
    ctx.extras.pop("engine", None)
    with open(cache, "wb") as fh:
        pickle.dump((key, ctx), fh)
    return ctx


def time_step(ctx: pipeline.Context, threads: int, repeats: int) -> dict:
    """Fastest of ``repeats`` runs of ``step_exports``: wall, CPU, each writer's thread CPU."""
    import pyogrio

    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": "2000-01-01T00:00:00.000Z"})
    run_jobs = getattr(io, "run_jobs", None)  # (absent before the writers ran in threads)
    best: dict = {}
    for _ in range(repeats):
        writers: dict[str, float] = {}

        def timed_jobs(jobs, threads=None, _writers=writers):
            def wrap(job):
                def run():
                    start = time.thread_time()
                    out = job()
                    name = Path(out).name if isinstance(out, (str, Path)) else repr(job)
                    _writers[name] = round(time.thread_time() - start, 3)
                    return out
                return run
            return run_jobs([wrap(j) for j in jobs], threads=threads)

        io.run_jobs, saved = timed_jobs, getattr(io, "WRITE_THREADS", 1)
        io.WRITE_THREADS = threads
        ctx.stage = Path(tempfile.mkdtemp(prefix="bench-exports-"))
        ctx.files.clear()
        try:
            wall, cpu = time.perf_counter(), _cpu()
            pipeline.step_exports(ctx)
            wall, cpu = time.perf_counter() - wall, _cpu() - cpu
        finally:
            io.run_jobs, io.WRITE_THREADS = run_jobs, saved
        if not best or wall < best["wall_s"]:
            best = {"threads": threads, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
                    "writers_cpu_s": dict(sorted(writers.items(), key=lambda kv: -kv[1]))}
    return best


def time_writers(ctx: pipeline.Context, repeats: int) -> dict:
    """The site list's writers alone (CPU [s], fastest of ``repeats``)."""
    from gis import csvtext

    pv = ctx.results["pv"]
    ranked = sites.select_sites(pv, rank_by=pipeline._site_rank(pv))
    table = sites._table_with_lonlat(ranked)
    out = Path(tempfile.mkdtemp(prefix="bench-exports-writers-"))

    def best(fn) -> float:
        times = []
        for _ in range(repeats):
            cpu = _cpu()
            fn()
            times.append(_cpu() - cpu)
        return round(min(times), 3)

    def workbook() -> None:
        sites._write_xlsx(ranked, out / "sites.xlsx", meta={}, kind="sites",
                          table=lambda: table)

    def workbook_zlib() -> None:
        compressor = xlsx._sheet_compressor
        import zlib

        xlsx._sheet_compressor = lambda level: zlib.compressobj(level, zlib.DEFLATED, -15)
        try:
            workbook()
        finally:
            xlsx._sheet_compressor = compressor

    assert csvtext.csv_bytes(table, lineterminator="\n") == table.to_csv(
        index=False, lineterminator="\n").encode()
    return {
        "rows": len(ranked), "columns": table.shape[1],
        "lon/lat table (centroids, to WGS84)": best(lambda: sites._table_with_lonlat(ranked)),
        "sites.csv text, pandas to_csv": best(lambda: table.to_csv(index=False,
                                                                   lineterminator="\n")),
        "sites.csv text, gis.csvtext": best(lambda: csvtext.csv_bytes(table,
                                                                      lineterminator="\n")),
        "sites.xlsx, sheet deflated by zlib 1": best(workbook_zlib),
        "sites.xlsx, sheet deflated by ISA-L 1": best(workbook),
        "sites.gpkg (with its style)": best(lambda: sites._write_gpkg(
            ranked, out / "sites.gpkg", meta={}, kind="sites")),
        "buildings_pv.gpkg": best(lambda: io.write_gpkg(out / "buildings_pv.gpkg", pv,
                                                        layer="buildings_pv")),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", type=Path, default=REPO / "layers" / "demo",
                        help="demo folder holding run.toml (default layers/demo)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir())
                        / "gis-bench-exports.pkl")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--writers", action="store_true", help="also each writer alone")
    args = parser.parse_args(argv)
    runfile = args.demo / "run.toml"
    if not runfile.exists():
        raise SystemExit(f"{runfile} missing: write the demo first (python -m gis.cli demo)")
    ctx = context(runfile, args.cache)
    result = {"load_average_1min": round(os.getloadavg()[0], 2),
              "threads": time_step(ctx, getattr(io, "WRITE_THREADS", 1), args.repeats),
              "one_by_one": time_step(ctx, 1, args.repeats)}
    if args.writers:
        result["writers_cpu_s"] = time_writers(ctx, args.repeats)
    result["load_average_1min_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()

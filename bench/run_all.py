"""Run every benchmark stage at each size, one process per stage, and print the table.

Usage::

    python bench/run_all.py                          # 10⁴ and 10⁵ buildings, every stage
    python bench/run_all.py --sizes 1000000 --stages pv_raster raster raster_exactextract
    python bench/run_all.py --demo                   # also time the demo run (bench_demo.py)

Results are appended to ``<cache>/results.jsonl`` (one JSON object per stage run) and the table is
printed from the latest entry of each (stage, size), so sizes run at different times combine.
Targets checked (2-core machine): 10⁶ buildings through PV + raster statistics ≤ 300 s and
≤ 8 GiB; 10⁵ → 10⁶ time ratio ≤ 12; raster statistics no slower than exactextract; the demo
run ≤ 60 s.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _inputs  # noqa: E402
from bench_stages import STAGES  # noqa: E402

#: (ours, reference, what the ratio means)
PAIRS = [
    ("load", "load_ref", "validated load ÷ plain pyogrio read"),
    ("pv", "pv_loop", "pvlib loop per building (estimated) ÷ class table"),
    ("raster", "raster_exactextract", "exactextract (default strategy) ÷ ours"),
    ("raster", "raster_rasterstats", "rasterstats (estimated) ÷ ours"),
    ("ecology", "ecology_overlay", "geopandas.overlay + area ÷ ours"),
]


def run_stage(stage: str, n: int, cache: Path, sample: int, timeout: float) -> dict:
    cmd = [sys.executable, str(HERE / "bench_stages.py"), "--stage", stage, "--n", str(n),
           "--cache", str(cache), "--sample", str(sample)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-3:]
        return {"stage": stage, "n": n, "error": " | ".join(tail),
                "process_s": round(time.perf_counter() - t0, 1)}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process_s"] = round(time.perf_counter() - t0, 1)
    return out


def run_demo(timeout: float) -> list[dict]:
    """``gis-planner run`` on the demo from the repository root, default and dask engine."""
    import bench_demo

    root = Path(tempfile.mkdtemp(prefix="gis-bench-demo-"))
    out = []
    for engine in ("local", "dask"):
        r = bench_demo.run(engine, root, timeout)
        out.append({"stage": "demo_run" if engine == "local" else "demo_run_dask", "n": 0, **r})
    if all(r["exit"] == 0 for r in out):
        cmp = bench_demo.compare(root / "local" / "out", root / "dask" / "out")
        out[1]["same_outputs"] = {k: cmp[k]["equal"] for k in
                                  ("scorecard", "zones_csv", "buildings_pv_gpkg")}
    return out


def latest(results_file: Path) -> dict[tuple[str, int], dict]:
    table: dict[tuple[str, int], dict] = {}
    if results_file.exists():
        for line in results_file.read_text().splitlines():
            r = json.loads(line)
            table[(r["stage"], r["n"])] = r
    return table


def _wall(r: dict | None) -> float | None:
    if not r or "error" in r:
        return None
    return r.get("estimate_s", r.get("wall_s"))


def print_table(results: dict[tuple[str, int], dict]) -> None:
    sizes = sorted({n for (_, n) in results if n})
    print(f"\n{'stage':<22}" + "".join(f"{'N = ' + format(n, ','):>26}" for n in sizes))
    print(f"{'':<22}" + "".join(f"{'wall s / peak MiB':>26}" for _ in sizes))
    for stage in STAGES:
        cells = []
        for n in sizes:
            r = results.get((stage, n))
            if r is None:
                cells.append(f"{'—':>26}")
            elif "error" in r:
                cells.append(f"{'error':>26}")
            else:
                w = r["wall_s"]
                est = f" (≈{r['estimate_s']:.0f} s)" if "estimate_s" in r else ""
                text = f"{w:.2f}{est} / {r['peak_rss_mib']:.0f}"
                cells.append(f"{text:>26}")
        print(f"{stage:<22}" + "".join(cells))
    print("\nratios (reference ÷ ours; > 1 means ours is faster)")
    for ours, ref, what in PAIRS:
        cells = []
        for n in sizes:
            a, b = _wall(results.get((ours, n))), _wall(results.get((ref, n)))
            cells.append(f"{(b / a if a and b else float('nan')):>12.1f}")
        print(f"  {what:<52}" + "".join(cells))
    print("\nequality with the reference")
    for (stage, n), r in sorted(results.items()):
        if "equal" in r:
            print(f"  {stage} N={n}: {r['equal']}")
        if "max_rel_diff_bluegreen_ha" in r:
            print(f"  {stage} N={n}: max rel. diff blue-green {r['max_rel_diff_bluegreen_ha']:.1e}, "
                  f"forest {r['max_rel_diff_forest_ha']:.1e}")
    print("\ntargets")
    big, mid = results.get(("pv_raster", 1_000_000)), results.get(("pv_raster", 100_000))
    if big and "error" not in big:
        print(f"  10⁶ PV + raster statistics: {big['wall_s']:.0f} s (≤ 300), "
              f"peak {big['peak_rss_mib'] / 1024:.2f} GiB (≤ 8)")
        if mid and "error" not in mid:
            print(f"  10⁵ → 10⁶ time ratio: {big['wall_s'] / mid['wall_s']:.1f} (≤ 12)")
    for n in sizes:
        a, b = _wall(results.get(("raster", n))), _wall(results.get(("raster_exactextract", n)))
        if a and b:
            print(f"  raster statistics N={n}: ours {a:.1f} s vs exactextract {b:.1f} s "
                  f"({'met' if a <= b * 1.05 else 'missed'})")
    for stage in ("demo_run", "demo_run_dask"):
        demo = results.get((stage, 0))
        if demo:
            same = f", same outputs as local: {demo['same_outputs']}" if "same_outputs" in demo else ""
            print(f"  {stage}: {demo['wall_s']} s (≤ 60), exit {demo['exit']}{same}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES)
    parser.add_argument("--cache", type=Path, default=_inputs.default_cache())
    parser.add_argument("--sample", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=1800.0, help="per stage [s]")
    parser.add_argument("--demo", action="store_true", help="also time the demo run")
    parser.add_argument("--table-only", action="store_true", help="print the stored results")
    args = parser.parse_args(argv)
    results_file = args.cache / "results.jsonl"
    args.cache.mkdir(parents=True, exist_ok=True)
    if not args.table_only:
        for n in args.sizes:
            subprocess.run([sys.executable, str(HERE / "bench_stages.py"), "--prepare", "--n",
                            str(n), "--cache", str(args.cache)], check=True,
                           capture_output=True)
            for stage in args.stages:
                r = run_stage(stage, n, args.cache, args.sample, args.timeout)
                print(json.dumps(r, ensure_ascii=False), flush=True)
                with results_file.open("a") as fh:
                    fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        if args.demo:
            for r in run_demo(args.timeout):
                print(json.dumps(r, ensure_ascii=False), flush=True)
                with results_file.open("a") as fh:
                    fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    print_table(latest(results_file))


if __name__ == "__main__":
    main()

"""The whole demo run, as a planner types it, with the default and the dask engine; same outputs?

Usage (from anywhere; the runs start in the repository root)::

    python bench/bench_demo.py                     # local, then dask, then compare
    python bench/bench_demo.py --engines local     # only the default engine
    python bench/bench_demo.py --engines local --floor --warm   # + I/O floor, + a rerun

Each engine runs ``gis-planner run [RUNFILE] --out <root>/<engine>/out`` under ``/usr/bin/time``
from the repository root, after removing ``<root>/<engine>`` (default root ``/tmp/bench-demo``).
The default engine runs the built-in demo (``layers/demo``, written first if missing); the dask
engine runs a copy of ``layers/demo/run.toml`` with ``[engine] kind = "dask"`` written next to the
layers (so its relative paths hold) and removed afterwards.  Then ``scorecard.json``
(every value, nested details included), ``zones.csv`` and ``buildings_pv.gpkg`` of the two runs
are compared: equal text, numbers to a relative 1e-9 (summation order differs between the
engines), geometries exactly (WKB); and which files each run wrote.

The horizon cache of the runs is ``<root>/cache``, emptied first: the runs are cold (as a first
run on new layers); ``--warm`` adds a rerun of the local engine that finds its tiles there.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "layers" / "demo"


def _dask_runfile() -> Path:
    text = (DEMO / "run.toml").read_text(encoding="utf-8")
    if re.search(r"^\[engine\]", text, re.M):
        raise SystemExit("layers/demo/run.toml already has an [engine] table; edit a copy by hand")
    fd, name = tempfile.mkstemp(prefix="run-dask-", suffix=".toml", dir=DEMO)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text.rstrip("\n") + '\n\n[engine]\nkind = "dask"\n')
    return Path(name)


def run(engine: str, root: Path, timeout: float, *, label: str | None = None) -> dict:
    """Time one ``gis-planner run``; peak RSS of the largest process from ``/usr/bin/time``.

    The horizon cache is ``<root>/cache`` (``GIS_PLANNER_CACHE_DIR``), emptied by :func:`main`
    before the first run: a first run is cold, a ``--warm`` rerun finds every tile there.
    """
    folder = root / (label or engine)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    runfile = None if DEMO == REPO / "layers" / "demo" else DEMO / "run.toml"
    if engine == "dask":
        if not (DEMO / "run.toml").exists():  # the default run writes the demo first
            raise SystemExit("run the local engine first (it writes layers/demo)")
        runfile = _dask_runfile()
    cmd = [sys.executable, "-m", "gis.cli", "run", *([str(runfile)] if runfile else []),
           "--out", str(folder / "out")]
    rusage = folder / "time.txt"
    t0 = time.perf_counter()
    try:
        env = {**os.environ, "GIS_PLANNER_CACHE_DIR": str(root / "cache")}
        proc = subprocess.run(["/usr/bin/time", "-v", "-o", str(rusage), *cmd], cwd=REPO,
                              capture_output=True, text=True, timeout=timeout, env=env)
    finally:
        if engine == "dask" and runfile is not None:
            runfile.unlink(missing_ok=True)
    wall = time.perf_counter() - t0
    text = rusage.read_text()
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    cpu = sum(float(m) for m in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", text))
    return {"engine": label or engine, "command": " ".join(cmd), "wall_s": round(wall, 1),
            "cpu_s": round(cpu, 1),
            "exit": proc.returncode, "peak_rss_mib": round(int(peak.group(1)) / 1024) if peak else None,
            "load_avg": round(os.getloadavg()[0], 2), "out": str(folder / "out"),
            "stderr_tail": proc.stderr.strip().splitlines()[-3:]}


def _frames_equal(a: pd.DataFrame, b: pd.DataFrame, rtol: float = 1e-9) -> dict:
    out: dict = {"rows": [len(a), len(b)]}
    if list(a.columns) != list(b.columns):
        out["columns"] = [list(a.columns), list(b.columns)]
        return out
    worst, unequal = 0.0, []
    for c in a.columns:
        x, y = a[c], b[c]
        if c == getattr(a, "_geometry_column_name", None):
            if not np.array_equal(x.to_wkb().to_numpy(), y.to_wkb().to_numpy()):
                unequal.append(c)
        elif pd.api.types.is_numeric_dtype(x) and not pd.api.types.is_bool_dtype(x):
            u, v = x.to_numpy(float), y.to_numpy(float)
            both_nan = np.isnan(u) & np.isnan(v)
            rel = np.abs(u - v) / np.maximum(np.abs(u), 1e-300)
            rel = np.where(both_nan | (u == v), 0.0, rel)
            worst = max(worst, float(np.nanmax(rel)) if rel.size else 0.0)
            if (rel > rtol).any() or np.isnan(rel).any():
                unequal.append(c)
        elif not x.astype(object).where(x.notna(), None).equals(
                y.astype(object).where(y.notna(), None)):
            unequal.append(c)
    out.update({"columns_unequal": unequal, "max_rel_diff": worst,
                "equal": not unequal and len(a) == len(b)})
    return out


def _leaves(value, path: str = ""):
    """(path, leaf) pairs of a JSON document: a.b[0].c -> value."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        yield f"{path}#len", len(value)
        for i, v in enumerate(value):
            yield from _leaves(v, f"{path}[{i}]")
    else:
        yield path, value


def compare(a: Path, b: Path, rtol: float = 1e-9) -> dict:
    import geopandas as gpd

    res: dict = {}
    ca = json.loads((a / "scorecard.json").read_text(encoding="utf-8"))
    cb = json.loads((b / "scorecard.json").read_text(encoding="utf-8"))
    fa, fb = dict(_leaves(ca)), dict(_leaves(cb))
    diffs, worst = [], 0.0
    for key in sorted(set(fa) | set(fb)):
        x, y = fa.get(key, "<absent>"), fb.get(key, "<absent>")
        if x == y:
            continue
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in (x, y)):
            rel = abs(x - y) / max(abs(x), 1e-300)
            worst = max(worst, rel)
            if rel <= rtol:
                continue
        diffs.append([key, x, y])
    res["scorecard"] = {"values": len(fa), "equal": not diffs, "max_rel_diff": worst,
                        "differences": diffs[:10],
                        "same_bytes": (a / "scorecard.json").read_bytes()
                        == (b / "scorecard.json").read_bytes()}
    za = pd.read_csv(a / "zones.csv", encoding="utf-8-sig")
    zb = pd.read_csv(b / "zones.csv", encoding="utf-8-sig")
    res["zones_csv"] = _frames_equal(za, zb, rtol)
    res["zones_csv_same_bytes"] = (a / "zones.csv").read_bytes() == (b / "zones.csv").read_bytes()
    pa = gpd.read_file(a / "buildings_pv.gpkg")
    pb = gpd.read_file(b / "buildings_pv.gpkg")
    res["buildings_pv_gpkg"] = _frames_equal(pa, pb, rtol)
    fa = {p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file()}
    fb = {p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file()}
    res["files"] = {"local": len(fa), "dask": len(fb), "only_local": sorted(fa - fb),
                    "only_dask": sorted(fb - fa)}
    return res


def io_floor(runfile: Path, out: Path, *, repeats: int = 3, use_arrow: bool = True) -> dict:
    """The run's I/O floor [s]: what reading its inputs and writing its main outputs costs alone.

    Reads every input layer of ``runfile`` with ``pyogrio.read_dataframe`` and every input raster
    whole with ``rasterio`` (``read()``); writes the frames of ``buildings_pv.gpkg`` and
    ``sites.gpkg`` of the finished run ``out`` with ``pyogrio.write_dataframe`` and its
    ``sites.csv`` with ``pandas.DataFrame.to_csv``.  Each operation is timed ``repeats`` times
    (files warm in the page cache) and its fastest time counted; the floor is their sum (wall
    time, and CPU time of this process: on a shared machine the CPU times are the steadier
    pair to compare with the run's user + system time).
    """
    import pyogrio
    import rasterio

    from gis.config import RASTER_KINDS, load_runfile

    cfg = load_runfile(runfile)
    ops: dict[str, float] = {}
    cpu: dict[str, float] = {}

    def timed(name: str, fn) -> None:
        best, best_cpu = float("inf"), float("inf")
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            best = min(best, time.perf_counter() - t0)
            best_cpu = min(best_cpu, time.process_time() - c0)
        ops[name], cpu[name] = round(best, 3), round(best_cpu, 3)

    for kind, spec in cfg.layers.items():
        if kind in RASTER_KINDS:
            def read_raster(path=spec.path):
                with rasterio.open(path) as src:
                    src.read()
            timed(f"read {kind} (rasterio)", read_raster)
        else:
            timed(f"read {kind} (pyogrio)", lambda spec=spec: pyogrio.read_dataframe(
                spec.path, layer=spec.layer, encoding=spec.encoding, use_arrow=use_arrow))
    scratch = Path(tempfile.mkdtemp(prefix="gis-floor-"))
    try:
        for name, layer in (("buildings_pv.gpkg", "buildings_pv"), ("sites.gpkg", "sites")):
            frame = pyogrio.read_dataframe(out / name, layer=layer)

            def write(frame=frame, name=name, layer=layer):
                (scratch / name).unlink(missing_ok=True)
                pyogrio.write_dataframe(frame, scratch / name, layer=layer, driver="GPKG",
                                        use_arrow=use_arrow)
            timed(f"write {name} (pyogrio)", write)
        table = pd.read_csv(out / "sites.csv", encoding="utf-8-sig")
        timed("write sites.csv (pandas)", lambda: table.to_csv(
            scratch / "sites.csv", index=False, encoding="utf-8-sig", lineterminator="\n"))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {"floor_s": round(sum(ops.values()), 3), "floor_cpu_s": round(sum(cpu.values()), 3),
            "use_arrow": use_arrow, "ops_s": ops}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("/tmp/bench-demo"))
    parser.add_argument("--engines", nargs="+", default=["local", "dask"],
                        choices=["local", "dask"])
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--demo", type=Path, help="another demo folder (gis-planner demo --out "
                        "DIR --scale 2 for a doubled demo); default: layers/demo")
    parser.add_argument("--floor", action="store_true",
                        help="after the local run, measure its I/O floor and print the ratio")
    parser.add_argument("--warm", action="store_true",
                        help="after the local run, run it again with the horizon cache it left "
                        "(a planner's rerun) and print that run's ratio too")
    parser.add_argument("--compare-only", action="store_true",
                        help="only compare the outputs of the last runs under --root")
    args = parser.parse_args(argv)
    if args.demo:
        global DEMO
        DEMO = args.demo.resolve()
    if args.compare_only:
        print(json.dumps(compare(args.root / "local" / "out", args.root / "dask" / "out"),
                         ensure_ascii=False, default=str))
        return
    results = {}
    shutil.rmtree(args.root / "cache", ignore_errors=True)  # first runs are cold
    for engine in args.engines:
        results[engine] = run(engine, args.root, args.timeout)
        print(json.dumps(results[engine], ensure_ascii=False), flush=True)
    if args.floor and results.get("local", {}).get("exit") == 0:
        floor = io_floor(DEMO / "run.toml", args.root / "local" / "out")
        local = results["local"]
        floor["ratio_wall"] = round(local["wall_s"] / floor["floor_s"], 2)
        floor["ratio_cpu"] = round(local["cpu_s"] / floor["floor_cpu_s"], 2)
        print(json.dumps({"floor": floor}, ensure_ascii=False), flush=True)
        if args.warm:
            warm = run("local", args.root, args.timeout, label="local-warm")
            warm["ratio_wall"] = round(warm["wall_s"] / floor["floor_s"], 2)
            print(json.dumps(warm, ensure_ascii=False), flush=True)
    if set(args.engines) == {"local", "dask"} and all(r["exit"] == 0 for r in results.values()):
        print(json.dumps(compare(args.root / "local" / "out", args.root / "dask" / "out"),
                         ensure_ascii=False, default=str))
    sys.exit(max(r["exit"] for r in results.values()))


if __name__ == "__main__":
    main()

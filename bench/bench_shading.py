"""Benchmark of shading by neighbours: N buildings with floors through ``pv_potential``.

Usage::

    python bench/bench_shading.py --n 100000            # every case, each in its own process
    python bench/bench_shading.py --n 100000 --cases lod1 none

Cases (each run in a fresh process, so that its peak memory is its own):

``none``
    ``pv_potential`` with ``[pv] shading = "none"`` (the PV step without shading).
``lod1``
    ``pv_potential`` with the default shading: LoD1 surface from footprints × floors, 72-sector
    horizons of roof sample points, the year's hourly sky (every sun position) per roof.
``pybdshadow``
    pybdshadow's ``bdshadow_sunlight`` (vector building shadows) for **one** sun position, the
    winter solstice at noon, on the same buildings (in WGS84, height = floors × 3 m).  Optional:
    skipped with a note when pybdshadow is not installed.
``ratti``
    A Ratti–Richens shift-and-max shadow cast (the method of UMEP's shadow and SEBE tools) on the
    same LoD1 DSM at 1 m, in numpy, for the same one sun position, on a square ``--rr-side`` m
    wide in the middle of the district; the time is also scaled to the whole area.

Inputs: ``bench/_inputs.py`` buildings (rotated rectangles on a jittered grid over a 21.8 km
square, 1–19 floors).  Weather: the built-in climate model at the site.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _inputs  # noqa: E402

from gis import horizon, rooftop, solar  # noqa: E402

CASES = ("none", "lod1", "pybdshadow", "ratti")
SOLSTICE_NOON = "2023-12-21 04:00:00"  # UTC = 12:00 Beijing time


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _weather(b):
    lon, lat = rooftop._site_lonlat(b)
    return solar.climate_model(lat, lon)


def _sun(b) -> tuple[float, float]:
    """Apparent elevation and azimuth [°] at the winter-solstice noon over the district."""
    import pandas as pd
    import pvlib

    lon, lat = rooftop._site_lonlat(b)
    pos = pvlib.solarposition.get_solarposition(pd.DatetimeIndex([SOLSTICE_NOON], tz="UTC"),
                                                lat, lon)
    return float(pos["apparent_elevation"].iloc[0]), float(pos["azimuth"].iloc[0])


def case_pv(n: int, shading: str) -> dict:
    b = _inputs.buildings(n)
    weather = _weather(b)
    params = rooftop.pv_params(shading=shading)
    t, cpu = time.perf_counter(), time.process_time()
    pv = rooftop.pv_potential(b, params=params, weather=weather)
    wall = time.perf_counter() - t
    out = {"wall_s": wall, "cpu_s": time.process_time() - cpu, "peak_mib": _peak_mib(),
           "annual_gwh": float(pv["annual_kwh"].sum() / 1e6),
           "unshaded_gwh": float(pv["unshaded_kwh"].sum() / 1e6),
           "shaded_roofs": int((pv["reason"] == "shaded").sum()),
           "mean_shading_factor": float(pv["shading_factor"].mean())}
    if shading != "none":
        geoms = np.asarray(b.geometry.array)
        owner, _, _ = horizon.roof_points(geoms, spacing_m=params.shading_grid_m,
                                          inset_m=params.edge_setback_m,
                                          max_points=params.shading_max_points)
        out["sample_points"] = int(len(owner))
    return out


def case_pybdshadow(n: int) -> dict:
    try:
        import pandas as pd
        import pybdshadow
    except ImportError as exc:
        return {"skipped": f"pybdshadow not installed ({exc})"}
    b = _inputs.buildings(n)
    wgs = b[["floors", "geometry"]].to_crs("EPSG:4326")
    wgs["height"] = wgs["floors"] * 3.0
    wgs = pybdshadow.bd_preprocess(wgs)
    t = time.perf_counter()
    shadows = pybdshadow.bdshadow_sunlight(wgs, pd.Timestamp(SOLSTICE_NOON))
    wall = time.perf_counter() - t
    return {"wall_s": wall, "peak_mib": _peak_mib(), "shadow_polygons": int(len(shadows)),
            "sun_positions": 1}


def ratti_richens(dsm: np.ndarray, res: float, elevation: float, azimuth: float) -> np.ndarray:
    """Shadow mask of a DSM for one sun position by shift-and-max (Ratti & Richens 2004).

    The DSM is shifted step by step away from the sun and lowered by the sun's rise over the
    step; a cell is in shadow where some shifted, lowered copy stands above it.
    """
    dx, dy = math.sin(math.radians(azimuth)), math.cos(math.radians(azimuth))
    tan_e = math.tan(math.radians(elevation))
    zmax = float(dsm.max())
    shadow_top = np.full_like(dsm, -np.inf)
    n = 1
    while True:  # steps along the shadow, not buildings
        d = n * res
        drop = d * tan_e
        if drop > zmax - float(dsm.min()):
            break
        # the surface seen from a cell towards the sun, d metres away: shift by (-dx, -dy)·d
        sx, sy = int(round(dx * d / res)), int(round(-dy * d / res))  # columns east, rows south
        src = dsm[max(0, sy):dsm.shape[0] + min(0, sy), max(0, sx):dsm.shape[1] + min(0, sx)]
        dst = shadow_top[max(0, -sy):dsm.shape[0] + min(0, -sy),
                         max(0, -sx):dsm.shape[1] + min(0, -sx)]
        np.maximum(dst, src - drop, out=dst)
        n += 1
    return shadow_top > dsm


def case_ratti(n: int, side: float) -> dict:
    b = _inputs.buildings(n)
    tops = horizon.building_heights(b)
    elevation, azimuth = _sun(b)
    cx = _inputs.X0 + _inputs.SIDE_M / 2
    cy = _inputs.Y0 + _inputs.SIDE_M / 2
    bounds = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
    t = time.perf_counter()
    surface = horizon.lod1_surface(np.asarray(b.geometry.array), tops, bounds, res=1.0)
    t_dsm = time.perf_counter() - t
    t = time.perf_counter()
    shade = ratti_richens(surface.z, 1.0, elevation, azimuth)
    wall = time.perf_counter() - t
    area_share = surface.z.size / (_inputs.SIDE_M ** 2)
    return {"wall_s": wall, "dsm_s": t_dsm, "peak_mib": _peak_mib(), "cells": int(surface.z.size),
            "shaded_share": float(shade.mean()), "sun_elevation": elevation,
            "sun_azimuth": azimuth, "whole_area_s": wall / area_share, "sun_positions": 1}


def run_case(args: argparse.Namespace) -> dict:
    if args.case in ("none", "lod1"):
        return case_pv(args.n, "none" if args.case == "none" else "auto")
    if args.case == "pybdshadow":
        return case_pybdshadow(args.n)
    return case_ratti(args.n, args.rr_side)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    ap.add_argument("--rr-side", type=float, default=5450.0,
                    help="side [m] of the square cast by Ratti–Richens (1/16 of the district)")
    ap.add_argument("--timeout", type=float, default=1200.0, help="seconds per case")
    ap.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.case:
        print(json.dumps(run_case(args)))
        return
    results = {}
    for case in args.cases:  # one process per case: its own peak memory
        cmd = [sys.executable, __file__, "--n", str(args.n), "--rr-side", str(args.rr_side),
               "--case", case]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, check=False,
                                  timeout=args.timeout)
        except subprocess.TimeoutExpired:
            results[case] = {"timed_out_s": args.timeout}
            print(case, json.dumps(results[case]), flush=True)
            continue
        if done.returncode != 0:
            results[case] = {"error": done.stderr.strip().splitlines()[-1:]}
        else:
            results[case] = json.loads(done.stdout.strip().splitlines()[-1])
        print(case, json.dumps(results[case]), flush=True)
    lod1 = results.get("lod1", {})
    base = results.get("none", {})
    if "wall_s" in lod1 and "wall_s" in base:
        print(f"shading adds {lod1['wall_s'] - base['wall_s']:.1f} s; removes "
              f"{1 - lod1['annual_gwh'] / lod1['unshaded_gwh']:.1%} of the unshaded potential")
    for other in ("pybdshadow", "ratti"):
        o = results.get(other, {})
        if "wall_s" in lod1 and "wall_s" in o:
            whole = o.get("whole_area_s", o["wall_s"])
            print(f"lod1 (a year of sun positions) ÷ {other} (one sun position, whole area): "
                  f"{lod1['wall_s'] / whole:.1f}×")


if __name__ == "__main__":
    main()

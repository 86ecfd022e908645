"""Benchmark of the rooftop PV step: N synthetic buildings through ``gis.rooftop.pv_potential``.

Usage::

    python bench/bench_pv.py --n 1000000 --sample 200 [--epw PATH]

Synthetic buildings (no raster): rectangles of 6–80 m × 6–60 m scattered over a square district
in EPSG:4548, with a realistic mix of categories, roof types (a third given, the rest inferred),
pitched tilts and azimuths (some missing) and a few existing PV systems.  Reports the wall time and
peak memory of ``pv_potential`` and compares it with a per-building loop that runs pvlib for each
building of a sample (time per building × N), which is what the orientation-class table avoids.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gis import rooftop, solar  # noqa: E402

EPW = Path(__file__).resolve().parents[2] / "shared" / "data" / "weather" / \
    "CHN_TJ_Tianjin.545270_TMYx.2009-2023.epw"
CATEGORIES = np.array(["government", "public", "commercial", "industrial", "residential",
                       "rural_residential", "other"])
MIX = np.array([0.01, 0.04, 0.08, 0.12, 0.35, 0.35, 0.05])


def synthetic_buildings(n: int, seed: int = 0) -> gpd.GeoDataFrame:
    """``n`` rectangular buildings with canonical columns, in EPSG:4548."""
    rng = np.random.default_rng(seed)
    side = np.sqrt(n) * 60.0  # one building per 60 m × 60 m cell on average
    x = 500_000.0 + rng.uniform(-side / 2, side / 2, n)
    y = 4_330_000.0 + rng.uniform(-side / 2, side / 2, n)
    w = rng.uniform(6, 80, n)
    h = rng.uniform(6, 60, n)
    category = CATEGORIES[rng.choice(len(CATEGORIES), n, p=MIX)]
    roof_type = np.where(rng.random(n) < 0.33,
                         np.where(category == "rural_residential", "pitched", "flat"), None)
    tilt = np.where(rng.random(n) < 0.5, rng.uniform(15, 40, n), np.nan)
    azimuth = np.where(rng.random(n) < 0.6, rng.uniform(0, 360, n), np.nan)
    pv_kw = np.where(rng.random(n) < 0.03, rng.uniform(5, 200, n), 0.0)
    return gpd.GeoDataFrame({
        "id": pd.Series(np.arange(n)).astype(str).radd("B").to_numpy(),
        "category": category,
        "floors": rng.integers(1, 20, n).astype(float),
        "roof_type": pd.array(roof_type, dtype="string"),
        "roof_tilt": tilt,
        "roof_azimuth": azimuth,
        "year_built": rng.integers(1980, 2026, n).astype(float),
        "pv_kw": pv_kw,
        "street": np.array([f"street {i}" for i in range(12)])[rng.integers(0, 12, n)],
    }, geometry=shapely.box(x, y, x + w, y + h), crs="EPSG:4548")


def per_building_loop(buildings: gpd.GeoDataFrame, weather, params: rooftop.PVParams) -> float:
    """Seconds per building when pvlib runs once per building (what the class table avoids)."""
    data, meta = weather
    start = time.perf_counter()
    for tilt, az, rtype in zip(buildings["roof_tilt"].fillna(params.pitched_tilt_default),
                               buildings["roof_azimuth"].fillna(180.0),
                               buildings["roof_type"].fillna("flat"), strict=True):
        if rtype == "pitched":
            solar.specific_yield(data, meta, tilt, az, params=params.solar(params.mount_pitched))
        else:
            solar.specific_yield(data, meta, params.flat_tilt, params.flat_azimuth,
                                 params=params.solar(params.mount_flat))
    return (time.perf_counter() - start) / len(buildings)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="buildings")
    parser.add_argument("--sample", type=int, default=200, help="buildings in the pvlib loop")
    parser.add_argument("--epw", type=Path, default=EPW, help="weather file (else climate model)")
    parser.add_argument("--no-tracemalloc", action="store_true",
                        help="skip Python allocation tracing (it slows the run)")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    buildings = synthetic_buildings(args.n)
    t_make = time.perf_counter() - t0
    if args.epw and args.epw.is_file():
        weather = solar.read_weather(args.epw)
        source = f"EPW {args.epw.name}"
    else:
        lon, lat = 117.3, 39.1
        weather = solar.climate_model(lat, lon)
        source = "built-in climate model"
    params = rooftop.pv_params("base")

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if not args.no_tracemalloc:
        tracemalloc.start()
    t0 = time.perf_counter()
    pv = rooftop.pv_potential(buildings, params=params, weather=weather)
    wall = time.perf_counter() - t0
    peak_py = tracemalloc.get_traced_memory()[1] / 2**20 if not args.no_tracemalloc else None
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    sample = buildings.sample(min(args.sample, len(buildings)), random_state=1)
    per_building = per_building_loop(sample, weather, params)
    loop_estimate = per_building * args.n

    print(f"weather: {source}")
    print(f"buildings: {args.n:,} (generated in {t_make:.1f} s)")
    print(f"pv_potential wall time: {wall:.1f} s ({wall / args.n * 1e6:.1f} µs per building)")
    if peak_py is not None:
        print(f"peak Python allocations during pv_potential (tracemalloc): {peak_py:,.0f} MiB")
    print(f"peak resident memory of the process (ru_maxrss): {rss:,.0f} MiB "
          f"(before pv_potential: {rss_before:,.0f} MiB)")
    print(f"per-building pvlib loop on {len(sample)} buildings: {per_building * 1e3:.1f} ms each "
          f"→ {loop_estimate:,.0f} s for {args.n:,} ({loop_estimate / wall:,.0f}× slower)")
    print(f"result: {pv['capacity_kwp'].sum() / 1e3:,.1f} MWp, "
          f"{pv['annual_kwh'].sum() / 1e6:,.1f} GWh/yr, "
          f"{(pv['reason'] == '').mean():.1%} of buildings get PV")


if __name__ == "__main__":
    main()

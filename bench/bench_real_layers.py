"""Real-layer readers at scale: numbers with units, OSM tags, GCJ-02 inverse.

    python bench/bench_real_layers.py --n 100000

Synthetic OSM-like attributes (heights such as "15m", "12 m", "40 ft", levels "3-4", tags in an
``other_tags`` hstore) for N buildings; the GCJ-02 → WGS84 inverse on 10 × N vertices.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from gis import datums, osm
from gis.units import parse_numbers


def frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    metres = rng.uniform(3, 90, n).round(1)
    spelled = np.array(["{:g}m", "{:g} m", "{:g}", "约{:g}米"])[rng.integers(0, 4, n)]
    heights = [s.format(h) for s, h in zip(spelled, metres, strict=True)]
    levels = rng.integers(1, 30, n).astype(str)
    other = pd.Series('"building:levels"=>"' + pd.Series(levels) + '","height"=>"'
                      + pd.Series(heights) + '","roof:shape"=>"flat","start_date"=>"1998-05"')
    return pd.DataFrame({"osm_way_id": np.arange(n).astype(str), "osm_id": None,
                         "building": rng.choice(["yes", "house", "apartments", "school"], n),
                         "other_tags": other, "height_text": heights})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000)
    args = parser.parse_args()
    data = frame(args.n)
    from gis.validate import category_table

    table = category_table()
    t = time.perf_counter()
    parse_numbers(data["height_text"], kind="length")
    t_units = time.perf_counter() - t
    t = time.perf_counter()
    cols, _ = osm.building_columns(data, table)
    parse_numbers(cols["height"], kind="length")
    parse_numbers(cols["floors"], kind="storeys")
    t_osm = time.perf_counter() - t
    rng = np.random.default_rng(1)
    lon, lat = rng.uniform(116, 118, 10 * args.n), rng.uniform(38, 40, 10 * args.n)
    t = time.perf_counter()
    datums.gcj02_to_wgs84(*datums.wgs84_to_gcj02(lon, lat))
    t_datum = time.perf_counter() - t
    print(f"n = {args.n}: parse_numbers {t_units:.2f} s; OSM tags + numbers {t_osm:.2f} s; "
          f"GCJ-02 round trip of {10 * args.n} vertices {t_datum:.2f} s")


if __name__ == "__main__":
    main()

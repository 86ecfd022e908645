"""Benchmark of roof planes from a surface model: N buildings through ``gis.planes.segment_planes``.

Usage::

    python bench/bench_planes.py --n 10000 --res 0.5

A synthetic DSM (EPSG:4548, float32, deflate, 512 × 512 tiles) holds N buildings on a jittered
30 m grid over gently sloping ground: a quarter each of gable roofs (2 planes), hip roofs (4),
mono-pitch roofs facing a random azimuth (1) and flat roofs (1), 8–24 m × 8–18 m, tilts 15–40°,
with 5 cm of noise on every pixel.  Written strip by strip.  Reports the wall time and peak memory
of ``segment_planes``, how many buildings got exactly their planes, the tilt error and the error
of each building's roof area (the sum of its planes) against the analytic sloped area.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import rasterio.features
import shapely
from rasterio.transform import from_origin
from rasterio.windows import Window

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gis import planes  # noqa: E402

X0, Y0, SPACING = 534000.0, 4331000.0, 30.0
EXPECTED = np.array([2, 4, 1, 1])  # planes of gable, hip, mono-pitch, flat


def scene(n: int, seed: int = 0) -> tuple[gpd.GeoDataFrame, float]:
    """Footprints and roof parameters of ``n`` buildings; the side of the square [m]."""
    rng = np.random.default_rng(seed)
    side_n = math.ceil(math.sqrt(n))
    i = np.arange(n)
    w = rng.uniform(8, 24, n)
    h = rng.uniform(8, 18, n)
    x0 = X0 + (i % side_n) * SPACING + rng.uniform(2, SPACING - 2 - w)
    y0 = Y0 + (i // side_n) * SPACING + rng.uniform(2, SPACING - 2 - h)
    kind = rng.integers(0, 4, n)
    frame = gpd.GeoDataFrame({
        "id": [f"B{k}" for k in i], "kind": kind, "tilt": rng.uniform(15, 40, n),
        "azimuth": rng.uniform(0, 360, n), "eave": rng.uniform(6, 30, n),
        "x0": x0, "y0": y0, "x1": x0 + w, "y1": y0 + h,
    }, geometry=shapely.box(x0, y0, x0 + w, y0 + h), crs="EPSG:4548")
    return frame, side_n * SPACING


def _roof(b: gpd.GeoDataFrame, lab: np.ndarray, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
    """Roof heights [m] of the labelled pixels (label = building position + 1)."""
    k = lab - 1
    t = np.tan(np.radians(b["tilt"].to_numpy()))[k]
    x0, x1 = b["x0"].to_numpy()[k], b["x1"].to_numpy()[k]
    y0, y1 = b["y0"].to_numpy()[k], b["y1"].to_numpy()[k]
    eave = b["eave"].to_numpy()[k]
    az = np.radians(b["azimuth"].to_numpy())[k]
    gable = eave + t * ((y1 - y0) / 2 - np.abs(yy - (y0 + y1) / 2))
    hip = eave + t * np.minimum.reduce([xx - x0, x1 - xx, yy - y0, y1 - yy])
    mono = eave + 3 - t * ((xx - (x0 + x1) / 2) * np.sin(az) + (yy - (y0 + y1) / 2) * np.cos(az))
    return np.choose(b["kind"].to_numpy()[k], [gable, hip, mono, eave])


def write_dsm(b: gpd.GeoDataFrame, side: float, res: float, path: Path) -> None:
    nx = ny = int(math.ceil(side / res))
    transform = from_origin(X0, Y0 + side, res, res)
    rng = np.random.default_rng(1)
    shapes = list(zip(b.geometry.values, np.arange(1, len(b) + 1), strict=True))
    with rasterio.open(path, "w", driver="GTiff", width=nx, height=ny, count=1, dtype="float32",
                       crs="EPSG:4548", nodata=-9999, tiled=True, blockxsize=512,
                       blockysize=512, compress="deflate", transform=transform) as dst:
        for r0 in range(0, ny, 512):  # strips of rows
            rows = min(512, ny - r0)
            window = Window(0, r0, nx, rows)
            wt = rasterio.windows.transform(window, transform)
            lab = rasterio.features.rasterize(shapes, out_shape=(rows, nx), transform=wt,
                                              fill=0, dtype="int32")
            xx = X0 + (np.arange(nx) + 0.5) * res
            yy = Y0 + side - (r0 + np.arange(rows) + 0.5) * res
            xx, yy = np.meshgrid(xx, yy)
            z = 3.0 + 0.002 * (xx - X0) + rng.normal(0, 0.05, xx.shape)
            inside = lab > 0
            z[inside] += _roof(b, lab[inside], xx[inside], yy[inside])
            dst.write(z.astype("float32"), 1, window=window)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--res", type=float, default=0.5)
    args = parser.parse_args()
    b, side = scene(args.n)
    folder = Path(tempfile.mkdtemp(prefix="gis-bench-planes-"))
    dsm = folder / "dsm.tif"
    t0 = time.perf_counter()
    write_dsm(b, side, args.res, dsm)
    t_write = time.perf_counter() - t0
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    t0, c0 = time.perf_counter(), time.process_time()
    found = planes.segment_planes(b.geometry, dsm)
    t_seg, c_seg = time.perf_counter() - t0, time.process_time() - c0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    count = np.bincount(found["building"].to_numpy(dtype=int), minlength=len(b))
    exact = count == EXPECTED[b["kind"].to_numpy()]
    pitched = found["tilt"] > 0
    err = np.abs(found.loc[pitched, "tilt"].to_numpy()
                 - b["tilt"].to_numpy()[found.loc[pitched, "building"].to_numpy(dtype=int)])
    # each building's roof area (sum of its planes) against the analytic sloped area
    kind = b["kind"].to_numpy()
    plan = ((b["x1"] - b["x0"]) * (b["y1"] - b["y0"])).to_numpy()
    true_area = np.where(kind == 3, plan, plan / np.cos(np.radians(b["tilt"].to_numpy())))
    got_area = np.bincount(found["building"].to_numpy(dtype=int), found["area_m2"].to_numpy(),
                           len(b))
    area_err = np.abs(got_area / true_area - 1)[count > 0]
    print(json.dumps({
        "buildings": len(b), "res_m": args.res, "pixels": int((side / args.res) ** 2),
        "write_dsm_s": round(t_write, 1), "segment_planes_s": round(t_seg, 1),
        "segment_planes_cpu_s": round(c_seg, 1),
        "peak_rss_gib": round(rss, 2), "rss_before_gib": round(rss0, 2),
        "planes": len(found), "buildings_with_exact_plane_count": round(float(exact.mean()), 4),
        "by_kind_exact": [round(float(exact[b["kind"] == k].mean()), 4) for k in range(4)],
        "tilt_error_p50_deg": round(float(np.median(err)), 2),
        "tilt_error_p95_deg": round(float(np.percentile(err, 95)), 2),
        "roof_area_error_p50": round(float(np.median(area_err)), 4),
        "roof_area_error_p95": round(float(np.percentile(area_err, 95)), 4),
    }))


if __name__ == "__main__":
    main()

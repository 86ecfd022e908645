"""Generated benchmark inputs: buildings, parcels, zones and a 1 m irradiance raster.

Everything lies in one district-sized square (``SIDE_M`` × ``SIDE_M`` ≈ 475 km², the area of
Dongli) in EPSG:4548, so the three sizes differ only in density: 10⁴ buildings are spread thin,
10⁶ stand about 22 m apart (a dense city).  Inputs are written once into a cache folder and reused.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CRS = "EPSG:4548"
SIDE_M = 21_800.0  # 21.8 km square ≈ 475 km²
X0, Y0 = 500_000.0 - SIDE_M / 2, 4_330_000.0 - SIDE_M / 2  # centred near 117.0° E, 39.1° N
RES_M = 1.0
CATEGORIES = np.array(["government", "public", "commercial", "industrial", "residential",
                       "rural_residential", "other"])
MIX = np.array([0.01, 0.04, 0.08, 0.12, 0.35, 0.35, 0.05])
#: Land-use codes (GB/T 21010) and their weights in the generated parcels.
CODES = np.array(["0101", "0103", "0201", "0301", "0305", "0307", "0404", "1101", "1104",
                  "1106", "0702", "0601", "1006", "1202", "1204"])
CODE_WEIGHTS = np.array([.14, .14, .03, .08, .02, .05, .06, .05, .04, .03, .18, .08, .05, .03,
                         .02])


def default_cache() -> Path:
    import tempfile

    return Path(tempfile.gettempdir()) / "gis-bench"


def buildings(n: int, seed: int = 1) -> gpd.GeoDataFrame:
    """``n`` rotated rectangular buildings on a jittered grid filling the square."""
    rng = np.random.default_rng(seed)
    cols = int(math.ceil(math.sqrt(n)))
    s = SIDE_M / cols  # grid spacing [m]
    k = np.arange(n)
    cx = X0 + (k % cols + 0.5) * s + rng.uniform(-0.1, 0.1, n) * s
    cy = Y0 + (k // cols + 0.5) * s + rng.uniform(-0.1, 0.1, n) * s
    w = np.clip(rng.uniform(0.25, 0.6, n) * s, 5.0, 60.0)
    d = np.clip(rng.uniform(0.2, 0.5, n) * s, 5.0, 40.0)
    rot = np.radians(rng.normal(0, 12, n))
    c, si = np.cos(rot), np.sin(rot)
    corners = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5], [-0.5, -0.5]])
    dx = corners[None, :, 0] * w[:, None]
    dy = corners[None, :, 1] * d[:, None]
    xs = cx[:, None] + dx * c[:, None] - dy * si[:, None]
    ys = cy[:, None] + dx * si[:, None] + dy * c[:, None]
    geoms = shapely.polygons(np.stack([xs, ys], axis=-1))
    category = CATEGORIES[rng.choice(len(CATEGORIES), n, p=MIX)]
    roof_type = np.where(rng.random(n) < 0.33,
                         np.where(category == "rural_residential", "pitched", "flat"), None)
    return gpd.GeoDataFrame({
        "id": pd.Series(k).astype(str).radd("B").to_numpy(),
        "category": category,
        "floors": rng.integers(1, 20, n).astype(float),
        "roof_type": pd.array(roof_type, dtype="string"),
        "roof_tilt": np.where(rng.random(n) < 0.5, rng.uniform(15, 40, n), np.nan),
        "roof_azimuth": np.where(rng.random(n) < 0.6, rng.uniform(0, 360, n), np.nan),
        "year_built": rng.integers(1980, 2026, n).astype(float),
        "pv_kw": np.where(rng.random(n) < 0.03, rng.uniform(5, 100, n), 0.0),
        "name": pd.Series(k).astype(str).radd("楼").to_numpy(),
        "street": np.array(["东丽湖", "华明", "金钟", "新立", "无瑕", "张贵庄"])[
            np.minimum((cx - X0) // (SIDE_M / 6), 5).astype(int)],
    }, geometry=geoms, crs=CRS)


def landuse(n: int, seed: int = 2) -> gpd.GeoDataFrame:
    """About ``n`` quadrilateral parcels tiling the square (a grid with moved nodes)."""
    rng = np.random.default_rng(seed)
    cols = int(math.ceil(math.sqrt(n)))
    s = SIDE_M / cols
    gx, gy = np.meshgrid(np.arange(cols + 1) * s + X0, np.arange(cols + 1) * s + Y0)
    inner = np.zeros_like(gx, dtype=bool)
    inner[1:-1, 1:-1] = True
    gx = gx + np.where(inner, rng.uniform(-0.3, 0.3, gx.shape) * s, 0)
    gy = gy + np.where(inner, rng.uniform(-0.3, 0.3, gy.shape) * s, 0)
    r, c = np.meshgrid(np.arange(cols), np.arange(cols), indexing="ij")
    r, c = r.ravel(), c.ravel()
    ring_r = np.stack([r, r, r + 1, r + 1, r], axis=1)
    ring_c = np.stack([c, c + 1, c + 1, c, c], axis=1)
    geoms = shapely.polygons(np.stack([gx[ring_r, ring_c], gy[ring_r, ring_c]], axis=-1))
    m = len(geoms)
    codes = CODES[rng.choice(len(CODES), m, p=CODE_WEIGHTS / CODE_WEIGHTS.sum())]
    area = shapely.area(geoms)
    cropland = np.isin(codes, ["0101", "0103"])
    kcmj = np.where(cropland, area * 0.03, 0.0)
    tbdl = np.where(rng.random(m) < 0.02, np.nan, area - kcmj)
    return gpd.GeoDataFrame({
        "id": pd.Series(np.arange(m)).astype(str).radd("P").to_numpy(),
        "code": codes, "area_official_m2": tbdl, "kcmj_m2": kcmj,
    }, geometry=geoms, crs=CRS)


def zones() -> gpd.GeoDataFrame:
    """A barrier ring around the city, its first-level core and six sub-zones (sectors)."""
    cx, cy = X0 + SIDE_M / 2, Y0 + SIDE_M / 2
    t = np.linspace(0, 2 * np.pi, 721)[:-1]
    wobble = 1 + 0.06 * np.sin(5 * t) + 0.03 * np.cos(11 * t)
    outer = shapely.Polygon(np.column_stack([cx + 9_500 * wobble * np.cos(t),
                                             cy + 9_000 * wobble * np.sin(t)]))
    hole = shapely.Polygon(np.column_stack([cx + 4_000 * wobble * np.cos(t),
                                            cy + 3_500 * wobble * np.sin(t)]))
    barrier = outer.difference(hole)
    level1 = barrier.intersection(shapely.box(cx - 6_000, cy - 9_500, cx + 7_000, cy + 2_000))
    subzones = []
    for i in range(6):
        a0, a1 = i * np.pi / 3, (i + 1) * np.pi / 3
        aa = np.linspace(a0, a1, 60)
        sector = shapely.Polygon(np.vstack([[cx, cy], np.column_stack(
            [cx + 15_000 * np.cos(aa), cy + 15_000 * np.sin(aa)])]))
        subzones.append(barrier.intersection(sector))
    names = ["金钟河湿地片区", "双湖富氧游憩区", "华明有机田园区", "文化融合体验区", "林水涵养区",
             "环境防护区"]
    return gpd.GeoDataFrame({"name": ["绿色生态屏障", "一级管控区", *names],
                             "level": ["barrier", "level1"] + ["subzone"] * 6},
                            geometry=[barrier, level1, *subzones], crs=CRS)


def write_raster(path: Path, *, block_rows: int = 1024) -> Path:
    """A 1 m annual irradiation raster [kWh/m²/yr, uint16] over the square, written in strips.

    Values vary on a 10–200 m scale (1 100–1 500 kWh/m²) so roof means differ from roof to roof;
    written strip by strip, so generating 475 M cells never holds more than one strip in memory.
    """
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    n = int(round(SIDE_M / RES_M))
    profile = {"driver": "GTiff", "width": n, "height": n, "count": 1, "dtype": "uint16",
               "crs": CRS, "transform": from_origin(X0, Y0 + SIDE_M, RES_M, RES_M),
               "nodata": 0, "compress": "deflate", "predictor": 2, "tiled": True,
               "blockxsize": 512, "blockysize": 512, "BIGTIFF": "YES"}
    tmp = path.with_suffix(".part.tif")
    x = np.arange(n, dtype=np.float32)
    fx = np.sin(x / 9.0) ** 2
    gx = np.cos(x / 61.0)
    with rasterio.open(tmp, "w", **profile) as dst:
        for r0 in range(0, n, block_rows):
            rows = np.arange(r0, min(n, r0 + block_rows), dtype=np.float32)[:, None]
            v = 1500 - 250 * fx[None, :] * np.cos(rows / 13.0) ** 2 - 150 * (gx[None, :] * np.sin(rows / 173.0)) ** 2
            dst.write(np.round(v).astype(np.uint16)[None], window=Window(0, r0, n, len(rows)))
    tmp.replace(path)
    return path


def prepare(n: int, cache: Path) -> dict[str, Path]:
    """Write (once) every input of size ``n`` into ``cache``; return their paths."""
    cache.mkdir(parents=True, exist_ok=True)
    paths = {
        "buildings": cache / f"buildings_{n}.parquet",
        "buildings_gpkg": cache / f"buildings_{n}.gpkg",
        "landuse": cache / f"landuse_{n}.parquet",
        "zones": cache / "zones.parquet",
        "raster": cache / "irradiance_1m.tif",
        "pv": cache / f"pv_{n}.parquet",
    }
    if not paths["raster"].exists():
        write_raster(paths["raster"])
    if not paths["zones"].exists():
        zones().to_parquet(paths["zones"])
    if not paths["buildings"].exists():
        buildings(n).to_parquet(paths["buildings"])
    if not paths["buildings_gpkg"].exists():
        b = gpd.read_parquet(paths["buildings"])
        tmp = paths["buildings_gpkg"].with_suffix(".part.gpkg")
        b.to_file(tmp, layer="buildings", driver="GPKG")
        tmp.replace(paths["buildings_gpkg"])
    if not paths["landuse"].exists():
        landuse(max(100, n // 4)).to_parquet(paths["landuse"])
    if not paths["pv"].exists():
        from gis import rooftop

        b = gpd.read_parquet(paths["buildings"])
        rooftop.pv_potential(b).to_parquet(paths["pv"])
    return paths


def write_run(n: int, cache: Path, *, engine: str = "local") -> Path:
    """A run folder for the whole pipeline on the inputs of size ``n``: the layers in GDAL
    formats (buildings and parcels as GeoPackages, zones as GeoJSON, the 1 m raster) and a run
    file mapping their columns; ``engine = "dask"`` adds ``[engine] kind = "dask"``."""
    paths = prepare(n, cache)
    folder = cache / f"run_{n}"
    folder.mkdir(exist_ok=True)
    landuse_gpkg = folder / "landuse.gpkg"
    if not landuse_gpkg.exists():
        tmp = folder / "landuse.part.gpkg"
        gpd.read_parquet(paths["landuse"]).to_file(tmp, layer="landuse", driver="GPKG")
        tmp.replace(landuse_gpkg)
    zones_json = folder / "zones.geojson"
    if not zones_json.exists():
        gpd.read_parquet(paths["zones"]).to_file(zones_json, driver="GeoJSON")
    text = f"""[project]
name = "bench {n}"
crs = "{CRS}"
synthetic = true

[layers.buildings]
path = "{paths['buildings_gpkg']}"
layer = "buildings"

[layers.landuse]
path = "landuse.gpkg"
scheme = "gbt21010"
[layers.landuse.columns]
id = "id"
code = "code"
area = "area_official_m2"
kcmj = "kcmj_m2"

[layers.zones]
path = "zones.geojson"
[layers.zones.columns]
name = "name"
level = "level"

[layers.irradiance]
path = "{paths['raster']}"

[output]
offline = true
"""
    if engine == "dask":
        text += '\n[engine]\nkind = "dask"\n'
    runfile = folder / f"run-{engine}.toml"
    runfile.write_text(text, encoding="utf-8")
    return runfile

"""Small synthetic inputs for the map, dashboard and report tests (column contracts only).

Everything is in EPSG:4548 (CGCS2000 3° GK, CM 117°E) around (117.4°E, 39.1°N), built on a
regular grid so that areas are known by hand: a building is 20 m × 10 m (200 m²), a land-use
parcel 100 m × 100 m (1 ha).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

CRS = "EPSG:4548"
X0, Y0 = 534_700.0, 4_329_000.0  # about 117.40 E, 39.10 N in EPSG:4548

XSS = "<img src=x onerror=alert(1)>"


def buildings_pv(n: int = 40, *, per_row: int = 20, xss: bool = True) -> gpd.GeoDataFrame:
    """``n`` buildings 20 m × 10 m on a 40 m grid; every 4th has no PV."""
    i = np.arange(n)
    x = X0 + (i % per_row) * 40.0
    y = Y0 + (i // per_row) * 40.0
    geoms = shapely.box(x, y, x + 20.0, y + 10.0)
    capacity = np.where(i % 4 == 3, 0.0, 5.0 + (i % 7) * 60.0)  # 5 … 365 kWp
    yield_kwh = 1150.0 + (i % 5) * 40.0
    cats = np.array(["government", "public", "commercial", "industrial", "residential",
                     "rural_residential", "other"])
    streets = np.array(["张贵庄街道", "丰年村街道", "万新街道", "新立街道"])
    names = pd.array([f"建筑 {k}" for k in i], dtype="string")
    if xss and n:
        names[0] = XSS
    gdf = gpd.GeoDataFrame({
        "id": pd.array([f"B{k:05d}" for k in i], dtype="string"),
        "category": cats[i % 7],
        "street": streets[(i // max(per_row // 2, 1)) % 4] if n else [],
        "name": names,
        "roof_type": np.where(i % 2 == 0, "flat", "pitched"),
        "roof_area_m2": 200.0,
        "usable_area_m2": np.where(capacity > 0, 120.0, 0.0),
        "capacity_kwp": capacity,
        "specific_yield_kwh_kwp": yield_kwh,
        "shading_factor": 1.0,
        "annual_kwh": capacity * yield_kwh,
        "reason": np.where(capacity > 0, "", "roof too small"),
    }, geometry=geoms, crs=CRS)
    return gdf


def streets(n_buildings: int = 40, *, per_row: int = 20) -> gpd.GeoDataFrame:
    rows = int(np.ceil(n_buildings / per_row))
    h = 40.0 * rows / 4 if rows else 40.0
    names = ["张贵庄街道", "丰年村街道", "万新街道", "新立街道"]
    geoms = [shapely.box(X0 - 10, Y0 - 10 + k * h, X0 + per_row * 40.0, Y0 - 10 + (k + 1) * h)
             for k in range(4)]
    return gpd.GeoDataFrame({"name": names}, geometry=geoms, crs=CRS)


def zones() -> gpd.GeoDataFrame:
    """A barrier (2 features), a level-1 zone, and one summary row per level."""
    feats = gpd.GeoDataFrame({
        "zone": ["屏障北 north", "屏障南 south", "一级管控区A"],
        "level": ["barrier", "barrier", "level1"],
        "area_ha": [100.0, 80.0, 40.0],
        "bluegreen_share": [0.70, 0.60, 0.90],
        "forest_coverage": [0.30, 0.20, 0.25],
        "forest_ha": [30.0, 16.0, 10.0],
        "stock_m3": [20_000.0, 15_000.0, 8_000.0],
    }, geometry=[shapely.box(X0, Y0, X0 + 1000, Y0 + 1000),
                 shapely.box(X0, Y0 - 800, X0 + 1000, Y0),
                 shapely.box(X0 + 200, Y0 + 200, X0 + 832.5, Y0 + 832.5)], crs=CRS)
    levels = gpd.GeoDataFrame({
        "zone": ["barrier", "level1"], "level": ["barrier", "level1"],
        "area_ha": [180.0, 40.0], "bluegreen_share": [0.6556, 0.90],
        "forest_coverage": [0.2556, 0.25], "forest_ha": [46.0, 10.0],
        "stock_m3": [35_000.0, 8_000.0],
    }, geometry=[None, None], crs=CRS)
    return pd.concat([feats, levels], ignore_index=True)


def landuse() -> gpd.GeoDataFrame:
    """Twelve 1-ha parcels, two of each group."""
    groups = ["blue", "forest", "green", "cropland", "construction", "other"] * 2
    i = np.arange(len(groups))
    x = X0 + (i % 6) * 100.0
    y = Y0 - 300.0 - (i // 6) * 100.0
    return gpd.GeoDataFrame({
        "id": [f"P{k:03d}" for k in i],
        "code": ["1101", "0301", "0404", "0101", "0601", "1206"] * 2,
        "name_zh": ["河流水面", "乔木林地", "其他草地", "水田", "工业用地", "裸土地"] * 2,
        "group": groups,
        "area_ha": 1.0,
    }, geometry=shapely.box(x, y, x + 100, y + 100), crs=CRS)


def candidates() -> gpd.GeoDataFrame:
    x = X0 + np.arange(3) * 150.0
    y = np.full(3, Y0 - 600.0)
    return gpd.GeoDataFrame({
        "id": ["C1", "C2", XSS], "code": ["0404", "1206", "0404"],
        "name_zh": ["其他草地", "裸土地", "其他草地"], "zone": "屏障南 south",
        "area_ha": [1.0, 1.0, 1.0], "suitability": [0.9, 0.8, 0.7],
        "rank": [1, 2, 3], "cumulative_ha": [1.0, 2.0, 3.0], "target_id": "forest-level1",
    }, geometry=shapely.box(x, y, x + 100, y + 100), crs=CRS)


TARGETS = {"bluegreen-barrier": 0.65, "bluegreen-level1": 0.85, "forest-level1": 0.275,
           "stock-barrier": 60_000.0}


def scorecard() -> dict:
    def entry(tid, measure, zh, where, value, target, unit, gap, gap_unit, by=2025):
        met = None if value is None else value >= target
        return {"id": tid, "measure": measure, "measure_zh": zh, "where": where, "value": value,
                "target": target, "unit": unit, "met": met, "gap": gap, "gap_unit": gap_unit,
                "basis": "TBDLMJ official area", "by": by}

    return {"targets": [
        entry("bluegreen-barrier", "blue-green space share", "蓝绿空间占比", "barrier", 0.6556,
              0.65, "share", 0.0, "ha"),
        entry("bluegreen-level1", "blue-green space share", "蓝绿空间占比", "level1", 0.90, 0.85,
              "share", 0.0, "ha"),
        entry("forest-level1", "forest coverage", "森林覆盖率", "level1", 0.25, 0.275, "share",
              1.0, "ha"),
        entry("stock-barrier", "forest stock volume", "森林蓄积量", "barrier", 35_000.0,
              60_000.0, "m3", 25_000.0, "m3"),
        entry("pv-pilot-government", "installable share of roof area", "党政机关屋顶可安装比例",
              "district", 0.55, 0.5, "share", 0.0, "m2", by=2021),
        entry("pv-pilot-rural", "installable share of roof area", "农村居民屋顶可安装比例",
              "district", 0.12, 0.2, "share", 480.0, "m2", by=2021),
        entry("renewable-substitution", "renewable substitution rate", "城镇建筑可再生能源替代率",
              "urban buildings", None, 0.08, "share", None, "share"),
    ], "meta": {"preset": "dongli-2025"}}


def meta(*, synthetic: bool = True) -> dict:
    return {"project": "东丽区 <demo>", "synthetic": synthetic, "run_id": "0123456789ab",
            "preset": "dongli-2025",
            "definitions": {"blue-green space": "water, wetland, forest, grass and park land",
                            "forest coverage": "forest land ÷ zone area (TBDLMJ basis)"},
            "inputs": {"buildings": "layers/demo/buildings.gpkg"}}

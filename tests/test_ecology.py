"""Zone accounting on hand-made layers whose answers are known by construction."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gis._errors import InputError
from gis.ecology import (
    STOCK_DEFAULTS,
    STOCK_STANDS,
    afforestation_candidates,
    bluegreen_candidates,
    compare_sources,
    ecology_targets,
    landcover_accounts,
    zone_accounts,
)
from gis.landuse import CARBON_FACTORS, EcologyOptions, classify_layer
from gis.targets import load_targets

CRS = "EPSG:4548"
X0, Y0 = 500_000.0, 4_320_000.0
TOL = 1e-9


def box(x0, y0, x1, y1):
    return shapely.box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def strips(spec):
    """Horizontal 1 km wide strips: [(code, height m)] from y = 0 upwards."""
    geoms, codes, y = [], [], 0.0
    for code, h in spec:
        geoms.append(box(0, y, 1000, y + h))
        codes.append(code)
        y += h
    return gpd.GeoDataFrame({"id": [f"p{i}" for i in range(len(codes))], "code": codes},
                            geometry=geoms, crs=CRS)


# 1 km² zone: forest 30 ha, grass 10, water 10, cropland 20, other forest land 5,
# residential 20, unknown 5 (all in ha; 1 km × h m = h/10 ha).
SPEC = [("0301", 300), ("0404", 100), ("1101", 100), ("0103", 200), ("0307", 50),
        ("0701", 200), ("9999", 50)]


@pytest.fixture
def landuse():
    return strips(SPEC)


@pytest.fixture
def zones():
    return gpd.GeoDataFrame({"name": ["Z"], "level": ["level1"]}, geometry=[box(0, 0, 1000, 1000)],
                            crs=CRS)


def row(table, zone, kind="zone"):
    sel = (table["zone"] == zone) & (table["kind"] == kind)
    assert sel.sum() == 1
    return table[sel].iloc[0]


def test_known_square_km(landuse, zones):
    before = landuse.copy()
    t = zone_accounts(landuse, zones, scheme="gbt21010")
    pd.testing.assert_frame_equal(landuse, before)  # caller's frame untouched
    z = row(t, "Z")
    assert z["area_ha"] == pytest.approx(100.0, abs=TOL)
    assert z["forest_ha"] == pytest.approx(30.0, abs=TOL)
    assert z["forest_coverage"] == pytest.approx(0.30, abs=TOL)
    # 0307 is not forest, but in the pipeline
    assert z["pipeline_forest_ha"] == pytest.approx(5.0, abs=TOL)
    assert z["blue_ha"] == pytest.approx(10.0, abs=TOL)
    assert z["green_ha"] == pytest.approx(30 + 10 + 20 + 5, abs=TOL)  # cropland green (broad)
    assert z["cropland_ha"] == pytest.approx(20.0, abs=TOL)
    # broad: forest + grass + water + cropland + 0307 = 75 ha; narrow drops cropland = 55 ha
    assert z["bluegreen_ha"] == pytest.approx(75.0, abs=TOL)
    assert z["bluegreen_share"] == pytest.approx(0.75, abs=TOL)
    assert z["bluegreen_narrow_ha"] == pytest.approx(55.0, abs=TOL)
    assert z["unknown_ha"] == pytest.approx(5.0, abs=TOL)
    assert z["construction_ha"] == pytest.approx(20.0, abs=TOL)
    narrow = row(zone_accounts(landuse, zones, scheme="gbt21010",
                               options=EcologyOptions(bluegreen="narrow")), "Z")
    assert narrow["bluegreen_share"] == pytest.approx(0.55, abs=TOL)
    assert narrow["green_ha"] == pytest.approx(45.0, abs=TOL)
    assert "narrow" in narrow["basis"] and narrow["bluegreen_definition"] == "narrow"
    # per-class default stock: 30 ha × 59.30 m³/ha, carbon by the default (broadleaf) group
    assert z["stock_basis"] == STOCK_DEFAULTS
    assert z["stock_m3"] == pytest.approx(30 * 59.30, rel=1e-12)
    f = CARBON_FACTORS["broadleaf"]
    c_m3 = f["bef"] * (1 + f["root_shoot"]) * f["wood_density_t_m3"] * f["carbon_fraction"]
    assert z["carbon_t"] == pytest.approx(30 * 59.30 * c_m3, rel=1e-12)
    # the level row of a single-zone level equals the zone
    lv = row(t, "level1", "level")
    assert lv["level"] == "level1" and lv["bluegreen_ha"] == pytest.approx(75.0, abs=TOL)


def test_split_parcels_and_official_areas(zones):
    # A forest parcel half inside the zone (400 m × 100 m, 200 m inside), a cropland parcel
    # fully inside with field ridges deducted, and a grass parcel without an official area.
    lu = gpd.GeoDataFrame(
        {"id": ["a", "b", "c"], "code": ["0301", "0103", "0404"],
         "area_official_m2": [36_000.0, 95_000.0, np.nan], "kcmj_m2": [2_000.0, 5_000.0, 0.0]},
        geometry=[box(800, 0, 1200, 100), box(0, 500, 1000, 600), box(0, 900, 1000, 1000)],
        crs=CRS)
    t = zone_accounts(lu, zones, scheme="gbt21010")
    z = row(t, "Z")
    assert z["forest_ha"] == pytest.approx(2.0, abs=TOL)  # geometric: half of 4 ha
    assert z["forest_ha_official"] == pytest.approx(1.8, abs=TOL)  # half of TBDLMJ 3.6 ha
    # KCMJ → 1203 field ridge: 0.1 ha (half of a's 0.2) + 0.5 ha (b) = 0.6 ha
    assert z["ridge_ha_official"] == pytest.approx(0.6, abs=TOL)
    assert z["cropland_ha_official"] == pytest.approx(9.5, abs=TOL)
    # broad blue-green counts 1203 (cfg1): 1.8 + 9.5 + 10 (c, geometric) + 0.6 = 21.9 ha
    assert z["bluegreen_ha_official"] == pytest.approx(21.9, abs=TOL)
    assert z["bluegreen_ha"] == pytest.approx(2 + 10 + 10, abs=TOL)
    assert z["forest_coverage_official"] == pytest.approx(0.018, abs=TOL)
    assert "1 parcels without TBDLMJ" in z["basis"]
    narrow = row(zone_accounts(lu, zones, scheme="gbt21010",
                               options=EcologyOptions(bluegreen="narrow")), "Z")
    assert narrow["bluegreen_ha_official"] == pytest.approx(1.8 + 10, abs=TOL)
    geo = row(zone_accounts(lu, zones, scheme="gbt21010", official=False), "Z")
    assert "bluegreen_ha_official" not in geo.index


def test_level_union_not_double_counted_and_streets(landuse):
    zones = gpd.GeoDataFrame(
        {"name": ["A", "B", "bar"], "level": ["level2", "level2", "barrier"]},
        geometry=[box(0, 0, 600, 1000), box(400, 0, 1000, 1000), box(0, 0, 1000, 1000)], crs=CRS)
    streets = gpd.GeoDataFrame({"name": ["west", "east"]},
                               geometry=[box(-500, -500, 250, 1500), box(250, -500, 1500, 1500)],
                               crs=CRS)
    t = zone_accounts(landuse, zones, scheme="gbt21010", streets=streets)
    assert t["kind"].tolist() == ["zone"] * 3 + ["level"] * 2 + ["street"] * 2
    assert t["zone"].tolist()[3:5] == ["barrier", "level2"]  # levels in canonical order
    a, b = row(t, "A"), row(t, "B")
    lv = row(t, "level2", "level")
    assert a["forest_ha"] == pytest.approx(18.0, abs=TOL)
    assert b["forest_ha"] == pytest.approx(18.0, abs=TOL)
    assert lv["area_ha"] == pytest.approx(100.0, abs=TOL)
    assert lv["forest_ha"] == pytest.approx(30.0, abs=TOL)  # not 36
    assert lv["bluegreen_share"] == pytest.approx(0.75, abs=TOL)
    west, east = row(t, "west", "street"), row(t, "east", "street")
    assert west["level"] == "street"
    assert west["area_ha"] == pytest.approx(25.0, abs=TOL)  # clipped to the zones' extent
    assert west["forest_ha"] + east["forest_ha"] == pytest.approx(30.0, abs=TOL)
    assert east["bluegreen_share"] == pytest.approx(0.75, abs=TOL)


def test_stock_from_stands(landuse, zones):
    stands = gpd.GeoDataFrame(
        {"id": ["s1", "s2"], "species": ["毛白杨", "刺槐"], "stock_m3_ha": [50.0, np.nan],
         "stock_m3": [np.nan, 800.0]},
        # s1: 10 ha inside; s2: 8 ha, half inside the zone
        geometry=[box(0, 0, 1000, 100), box(800, 100, 1200, 300)], crs=CRS)
    z = row(zone_accounts(landuse, zones, scheme="gbt21010", stands=stands), "Z")
    assert z["stock_basis"] == STOCK_STANDS
    assert z["stock_m3"] == pytest.approx(500.0 + 400.0, rel=1e-12)

    def c(group):
        f = CARBON_FACTORS[group]
        return f["bef"] * (1 + f["root_shoot"]) * f["wood_density_t_m3"] * f["carbon_fraction"]

    assert z["carbon_t"] == pytest.approx(500 * c("poplar") + 400 * c("hard_broadleaf"),
                                          rel=1e-12)
    # poplar by hand: 1.446 × 1.227 × 0.378 × 0.5 t C per m³
    assert c("poplar") == pytest.approx(1.446 * 1.227 * 0.378 * 0.5, rel=1e-12)


def test_raster_and_vector_agree(tmp_path):
    rasterio = pytest.importorskip("rasterio")
    from affine import Affine
    from rasterio.features import rasterize

    # WorldCover classes on a 10 m grid: tree 10, grass 30, water 80, crop 40, built-up 50.
    spec = [(10, 270), (30, 130), (80, 100), (40, 250), (50, 250)]
    lu = strips(spec)
    transform = Affine(10.0, 0.0, X0 - 50, 0.0, -10.0, Y0 + 1050)
    arr = rasterize(zip(lu.geometry, lu["code"], strict=True), out_shape=(110, 110),
                    transform=transform, fill=0, dtype="uint8")
    path = tmp_path / "landcover.tif"
    with rasterio.open(path, "w", driver="GTiff", height=110, width=110, count=1, dtype="uint8",
                       crs=CRS, transform=transform, nodata=0) as dst:
        dst.write(arr, 1)
    # zone edges not on the pixel grid: partial pixels matter
    zones = gpd.GeoDataFrame({"name": ["Z"], "level": ["level1"]},
                             geometry=[box(3, 7, 993, 995)], crs=CRS)
    vec = zone_accounts(lu, zones, scheme="worldcover")
    ras = landcover_accounts(path, zones, scheme="worldcover")
    cmp = compare_sources(vec, ras)
    assert (cmp["bluegreen_share_diff_pp"].abs() < 0.5).all()
    assert (cmp["forest_coverage_diff_pp"].abs() < 0.5).all()
    z = row(ras, "Z")
    assert z["nodata_ha"] == pytest.approx(0.0, abs=1e-6)
    assert z["forest_ha"] == pytest.approx(row(vec, "Z")["forest_ha"], rel=1e-6)


def test_targets_gaps_and_candidates(zones):
    lu = strips([("0301", 200), ("0307", 30), ("0404", 20), ("0403", 40), ("1201", 10),
                 ("1106", 10), ("1204", 10), ("0103", 280), ("0601", 100), ("0601", 100),
                 ("1101", 200)])
    lu["removal"] = [False] * 8 + [True, False, False]
    zones = pd.concat([zones, gpd.GeoDataFrame({"name": ["B"], "level": ["barrier"]},
                                               geometry=[box(0, 0, 1000, 1000)], crs=CRS)],
                      ignore_index=True)
    opts = EcologyOptions()
    table = zone_accounts(lu, zones, scheme="gbt21010", options=opts)
    classified = classify_layer(lu, "gbt21010", options=opts)
    targets = load_targets("dongli-2025")
    entries, extras = ecology_targets(table, targets, landuse_classified=classified, zones=zones,
                                      options=opts)
    by = {e["id"]: e for e in entries}
    assert set(by) == {"bluegreen-barrier", "bluegreen-level1", "forest-level1", "stock-barrier"}
    f = by["forest-level1"]
    assert f["value"] == pytest.approx(0.20, abs=TOL)
    assert f["gap"] == pytest.approx(7.5, abs=TOL) and f["gap_unit"] == "ha"
    assert not f["met"]
    # candidates: 0307 (3 ha) first, then grass 0403 (4) and 0404 (2), vacant 1201 (1),
    # inland flat 1106 (1), saline 1204 (1), construction slated for removal (10); no cropland
    cand = extras["afforestation"]
    assert cand["code"].tolist() == ["0307", "0403", "0404", "1201", "1106", "1204", "0601"]
    assert cand["rank"].tolist() == list(range(1, 8))
    assert cand["cumulative_ha"].tolist() == pytest.approx([3, 7, 9, 10, 11, 12, 22], abs=TOL)
    assert cand["closes_gap"].tolist() == [True] * 3 + [False] * 4
    assert (cand["target_id"] == "forest-level1").all()
    assert f["candidates_ha"] == pytest.approx(22.0, abs=TOL)
    assert f["gap_closed_share"] == 1.0
    # blue-green (broad): 20+3+2+4+1+28+20 = 78 % of 100 ha; level1 target 85 % → gap 7 ha
    bg = by["bluegreen-level1"]
    assert bg["value"] == pytest.approx(0.78, abs=TOL)
    assert bg["gap"] == pytest.approx(7.0, abs=TOL)
    assert "broad" in bg["basis"]
    assert by["bluegreen-barrier"]["met"] and by["bluegreen-barrier"]["gap"] == 0.0
    bgc = extras["bluegreen_candidates"]
    assert bgc["code"].tolist() == ["1201", "1204", "0601"]
    assert bgc["cumulative_ha"].iloc[-1] == pytest.approx(12.0, abs=TOL)
    # stock: 20 ha × 59.30 m³/ha against 60 000 m³
    st = by["stock-barrier"]
    assert st["value"] == pytest.approx(20 * 59.30, rel=1e-12)
    assert st["gap"] == pytest.approx(60_000 - 20 * 59.30, rel=1e-12)
    assert st["gap_unit"] == "m3"


def test_candidates_cropland_switch_and_partial_gap(zones):
    lu = strips([("0404", 100), ("0103", 500), ("0301", 100)])
    lu.loc[1, "geometry"] = box(0, 100, 1000, 600).union(box(1000, 100, 1500, 600))  # split
    off = classify_layer(lu, "gbt21010")
    c0 = afforestation_candidates(off, zones, level="level1", gap_ha=25.0)
    assert c0["code"].tolist() == ["0404"]
    assert c0.attrs["gap_closed_share"] == pytest.approx(10 / 25, abs=TOL)
    assert c0.attrs["remaining_gap_ha"] == pytest.approx(15.0, abs=TOL)
    on = EcologyOptions(include_cropland_candidates=True)
    c1 = afforestation_candidates(classify_layer(lu, "gbt21010", options=on), zones,
                                  level="level1", gap_ha=25.0, options=on)
    assert c1["code"].tolist() == ["0404", "0103"]
    assert c1["area_ha"].tolist() == pytest.approx([10.0, 50.0], abs=TOL)  # clipped to zone
    assert c1["closes_gap"].tolist() == [True, True]
    with pytest.raises(InputError, match="not classified"):
        bluegreen_candidates(lu, zones, level="level1", gap_ha=1.0)
    with pytest.raises(InputError, match="no zone"):
        afforestation_candidates(off, zones, level="level3", gap_ha=1.0)


def test_osm_overlaps_flattened_before_summing(zones):
    osm = gpd.GeoDataFrame(
        {"leisure": ["park", None], "natural": [None, "water"]},
        geometry=[box(0, 0, 1000, 500), box(0, 0, 1000, 100)], crs=CRS)
    z = row(zone_accounts(osm, zones, scheme="osm"), "Z")
    assert z["blue_ha"] == pytest.approx(10.0, abs=TOL)
    assert z["bluegreen_ha"] == pytest.approx(50.0, abs=TOL)  # not 60


def test_raster_in_other_crs_and_nodata(tmp_path, zones):
    rasterio = pytest.importorskip("rasterio")
    from affine import Affine
    from rasterio.features import rasterize

    # UTM 50N shares the 117° E meridian but has scale 0.9996: areas must not shrink by 0.08 %.
    half = gpd.GeoSeries([box(0, 0, 1000, 500)], crs=CRS).to_crs("EPSG:32650")
    zone_utm = zones.to_crs("EPSG:32650").total_bounds
    transform = Affine(5.0, 0.0, zone_utm[0] - 50, 0.0, -5.0, zone_utm[3] + 50)
    arr = rasterize([(half.iloc[0], 10)], out_shape=(220, 220), transform=transform, fill=30,
                    dtype="uint8")
    arr[:, :20] = 255  # nodata over the western 100 m of the grid: 50 m of the zone
    path = tmp_path / "utm.tif"
    with rasterio.open(path, "w", driver="GTiff", height=220, width=220, count=1, dtype="uint8",
                       crs="EPSG:32650", transform=transform, nodata=255) as dst:
        dst.write(arr, 1)
    z = row(landcover_accounts(path, zones), "Z")
    assert z["area_ha"] == pytest.approx(100.0, abs=TOL)
    # western 5 ha (≈ 50 m strip) without data; the rest half forest, half grass
    assert z["nodata_ha"] == pytest.approx(5.0, abs=0.05)
    assert z["forest_ha"] == pytest.approx(z["bluegreen_ha"] / 2, abs=0.05)
    assert z["forest_ha"] + z["nodata_ha"] / 2 == pytest.approx(50.0, abs=0.05)

"""Properties of loading and zone accounting over random districts (hypothesis).

Districts are random non-overlapping rectangles (parcels, one per 100 m grid cell) with random
land-use codes, and random side-by-side zones, in EPSG:4548 near Dongli.  Whatever the shapes:
areas are never negative, shares lie in [0, 1], the parts add up to the totals, and the results
do not depend on the order of the rows or on the CRS the same data is given in.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gis.config import parse_runfile
from gis.validate import load_layers

ecology = pytest.importorskip("gis.ecology")
landuse = pytest.importorskip("gis.landuse")

X0, Y0 = 520_000.0, 4_330_000.0
CELL = 100.0  # [m]
GRID = 6  # cells a side: a 600 m × 600 m district
CODES = ["0101", "0301", "0305", "0307", "0401", "0404", "1101", "1104", "1107", "0601",
         "0701", "1202", "9999"]  # 9999: unknown to GB/T 21010
SETTINGS = settings(max_examples=12, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                            HealthCheck.too_slow])
HA_COLUMNS = ["blue_ha", "green_ha", "bluegreen_ha", "bluegreen_broad_ha", "bluegreen_narrow_ha",
              "forest_ha", "pipeline_forest_ha", "cropland_ha", "construction_ha", "unknown_ha"]


@st.composite
def districts(draw) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """(parcels, zones): rectangles inside distinct grid cells; zones are adjacent strips."""
    cells = draw(st.lists(st.integers(0, GRID * GRID - 1), min_size=1, max_size=14, unique=True))
    n = len(cells)
    dims = st.integers(4, 400).map(lambda q: q / 4)  # 1–100 m in quarter metres
    w = np.array(draw(st.lists(dims, min_size=n, max_size=n)))
    h = np.array(draw(st.lists(dims, min_size=n, max_size=n)))
    fx = np.array(draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)))
    fy = np.array(draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)))
    col, row = np.array(cells) % GRID, np.array(cells) // GRID
    x = X0 + col * CELL + fx * (CELL - w)
    y = Y0 + row * CELL + fy * (CELL - h)
    codes = draw(st.lists(st.sampled_from(CODES), min_size=n, max_size=n))
    parcels = gpd.GeoDataFrame({"id": [f"p{i}" for i in range(n)], "code": codes},
                               geometry=shapely.box(x, y, x + w, y + h), crs="EPSG:4548")
    cuts = sorted(draw(st.lists(st.integers(1, GRID * 4 - 1), max_size=3, unique=True)))
    edges = X0 + np.array([0, *cuts, GRID * 4]) * CELL / 4
    k = len(edges) - 1
    levels = draw(st.lists(st.sampled_from(["level1", "level2", "level3"]), min_size=k,
                           max_size=k))
    zones = gpd.GeoDataFrame({"name": [f"z{i}" for i in range(k)], "level": levels},
                             geometry=shapely.box(edges[:-1], Y0, edges[1:], Y0 + GRID * CELL),
                             crs="EPSG:4548")
    return parcels, zones


def accounts(parcels: gpd.GeoDataFrame, zones: gpd.GeoDataFrame) -> pd.DataFrame:
    table = ecology.zone_accounts(parcels, zones, scheme="gbt21010")
    out = pd.DataFrame(table.drop(columns="geometry"))
    return out.sort_values(["kind", "level", "zone"]).reset_index(drop=True)


@SETTINGS
@given(districts())
def test_areas_non_negative_shares_in_unit_interval_parts_sum_to_totals(district):
    parcels, zones = district
    table = accounts(parcels, zones)
    assert (table[["area_ha", *HA_COLUMNS, "stock_m3", "carbon_t"]] >= 0).all().all()
    for share in ("bluegreen_share", "forest_coverage"):
        assert table[share].between(0, 1).all()
    eps = 1e-9
    # every part lies within its unit; forest is part of green and of blue-green
    assert (table[HA_COLUMNS].le(table["area_ha"] + eps, axis=0)).all().all()
    assert (table["forest_ha"] <= table["green_ha"] + eps).all()
    assert (table["forest_ha"] <= table["bluegreen_ha"] + eps).all()
    assert (table["bluegreen_narrow_ha"] <= table["bluegreen_broad_ha"] + eps).all()
    # the totals are the sums of the parcels' pieces (computed here independently)
    flags = landuse.classify(parcels["code"], "gbt21010")
    zone_rows = table[table["kind"] == "zone"].set_index("zone")
    piece = shapely.area(shapely.intersection(parcels.geometry.to_numpy()[:, None],
                                              zones.geometry.to_numpy()[None, :])) / 1e4
    for col, flag in (("bluegreen_ha", flags["bluegreen"]), ("forest_ha", flags["forest"]),
                      ("blue_ha", flags["blue"]), ("unknown_ha", ~flags["known"])):
        expected = pd.Series(piece[flag.to_numpy(bool)].sum(axis=0), index=zones["name"])
        np.testing.assert_allclose(zone_rows.loc[zones["name"], col], expected, atol=1e-9)
    np.testing.assert_allclose(zone_rows.loc[zones["name"], "area_ha"],
                               shapely.area(zones.geometry.values) / 1e4, rtol=1e-12)
    # a level's row is the sum of its zones (the strips do not overlap)
    level_rows = table[table["kind"] == "level"].set_index("level")
    by_level = zone_rows.groupby("level")[["area_ha", *HA_COLUMNS]].sum()
    for level in by_level.index:
        np.testing.assert_allclose(level_rows.loc[level, by_level.columns].to_numpy(float),
                                   by_level.loc[level].to_numpy(float), atol=1e-9)


@SETTINGS
@given(districts(), st.randoms(use_true_random=False))
def test_results_do_not_depend_on_row_order(district, rnd):
    parcels, zones = district
    p_order = list(range(len(parcels)))
    z_order = list(range(len(zones)))
    rnd.shuffle(p_order)
    rnd.shuffle(z_order)
    a = accounts(parcels, zones)
    b = accounts(parcels.iloc[p_order], zones.iloc[z_order])
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9, atol=1e-12)


@settings(SETTINGS, max_examples=6)
@given(districts())
def test_same_data_in_another_crs_gives_the_same_areas(tmp_path_factory, district):
    """EPSG:4548 (GK CM 117E), EPSG:4527 (zone-prefixed twin) and EPSG:4326 inputs agree."""
    parcels, zones = district
    folder = tmp_path_factory.mktemp("crs")
    tables = {}
    for epsg, suffix in ((4548, "gpkg"), (4527, "gpkg"), (4326, "geojson")):
        parcels.to_crs(epsg).to_file(folder / f"lu_{epsg}.{suffix}")
        zones.to_crs(epsg).to_file(folder / f"zones_{epsg}.{suffix}")
        cfg = parse_runfile({"project": {"crs": "EPSG:4548"}, "layers": {
            "landuse": {"path": f"lu_{epsg}.{suffix}"},
            "zones": {"path": f"zones_{epsg}.{suffix}"}}}, base=folder)
        layers = load_layers(cfg)
        assert layers.landuse is not None and layers.zones is not None, layers.problems
        # loading: areas in the working CRS are the rectangles' areas [m²]
        np.testing.assert_allclose(layers.landuse.geometry.area.to_numpy(),
                                   parcels.geometry.area.to_numpy(), rtol=1e-4)
        tables[epsg] = accounts(layers.landuse, layers.zones)
    for epsg in (4527, 4326):
        a, b = tables[4548], tables[epsg]
        assert a["zone"].tolist() == b["zone"].tolist()
        np.testing.assert_allclose(b[["area_ha", *HA_COLUMNS]].to_numpy(float),
                                   a[["area_ha", *HA_COLUMNS]].to_numpy(float),
                                   rtol=1e-4, atol=1e-8)


@settings(SETTINGS, max_examples=8)
@given(districts(), st.sampled_from(["EPSG:4548", "EPSG:32650"]))
def test_loading_never_gives_negative_or_lost_area(tmp_path_factory, district, working):
    """Loaded parcels keep every rectangle, each with its hand-computable area w × h [m²]."""
    parcels, _ = district
    folder = tmp_path_factory.mktemp("load")
    shuffled = parcels.iloc[::-1]
    shuffled.to_file(folder / "lu.gpkg")
    layers = load_layers(parse_runfile({"project": {"crs": working},
                                        "layers": {"landuse": {"path": "lu.gpkg"}}}, base=folder))
    lu = layers.landuse.set_index("id")
    assert (lu.geometry.area > 0).all()
    expected = parcels.set_index("id").geometry.area
    if working == "EPSG:32650":
        # UTM 50N shares GK's central meridian 117E but scales it by k0 = 0.9996: areas by k0²
        expected = expected * 0.9996**2
    np.testing.assert_allclose(lu.geometry.area.loc[expected.index], expected, rtol=1e-5)

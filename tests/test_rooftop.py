"""Per-building rooftop PV: roofs computed by hand, shading, roll-ups, targets, parameters."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Transformer

from gis import rooftop
from gis._errors import InputError
from gis.targets import load_targets

X0, Y0 = 500_000.0, 4_330_000.0  # EPSG:4548, on the 117° E central meridian, ≈ 39.1° N
CRS = "EPSG:4548"

#: fixed yields [kWh/kWp/yr] so that energy is a hand calculation
YIELDS = pd.DataFrame({
    "roof_type": ["flat", "pitched", "pitched", "pitched", "pitched"],
    "tilt": [25.0, 30.0, 30.0, 30.0, 30.0],
    "azimuth": [180.0, 180.0, 0.0, 90.0, 270.0],
    "specific_yield_kwh_kwp": [1300.0, 1250.0, 700.0, 1000.0, 1000.0],
})


def box(dx: float, w: float, h: float, dy: float = 0.0) -> shapely.Polygon:
    return shapely.box(X0 + dx, Y0 + dy, X0 + dx + w, Y0 + dy + h)


def layer(rows: list[dict], index=None) -> gpd.GeoDataFrame:
    frame = pd.DataFrame(rows)
    if index is not None:
        frame.index = index
    geometry = frame.pop("geometry")
    return gpd.GeoDataFrame(frame, geometry=list(geometry), crs=CRS)


def run(buildings, **overrides):
    # hand calculations of areas and yields: no shading by neighbours (tests/test_shading.py)
    params = rooftop.pv_params("base", **{"ground_coverage_ratio": 0.5, "shading": "none",
                                          **overrides})
    return rooftop.pv_potential(buildings, params=params, known_yields=YIELDS)


def test_flat_roof_20_by_50_by_hand():
    b = layer([{"id": "f", "category": "commercial", "roof_type": "flat", "pv_kw": 0.0,
                "geometry": box(0, 50, 20)}])
    row = run(b).iloc[0]
    usable = (50 - 2 * 0.8) * (20 - 2 * 0.8) * 0.65  # setback, then usable fraction
    kwp = usable * 0.5 * 0.215  # × ground coverage ratio × efficiency × 1 kW/m²
    kwh = kwp * 1300
    assert row["roof_area_m2"] == pytest.approx(1000.0)
    assert row["usable_area_m2"] == pytest.approx(578.864)
    assert usable == pytest.approx(578.864)
    assert row["capacity_kwp"] == pytest.approx(kwp) and kwp == pytest.approx(62.22788)
    assert row["annual_kwh"] == pytest.approx(kwh)
    assert row["co2_t"] == pytest.approx(kwh * 0.5703 / 1000)
    assert row["coal_t"] == pytest.approx(kwh * 290 / 1e6)
    assert row["module_tilt"] == 25.0 and row["shading_factor"] == 1.0
    assert row["reason"] == ""


def test_solstice_row_spacing_from_the_site_latitude():
    # h = 90 − 39.08 − 23.44 = 27.48°; GCR = 1 / (cos 30° + sin 30° / tan 27.48°) = 0.547
    assert rooftop.solstice_gcr(39.08, 30.0) == pytest.approx(0.5473, abs=5e-4)
    b = layer([{"id": "f", "category": "commercial", "roof_type": "flat",
                "geometry": box(0, 50, 20)}])
    params = rooftop.pv_params("base")
    row = rooftop.pv_potential(b, params=params, known_yields=YIELDS).iloc[0]
    lat = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True).transform(X0 + 25, Y0 + 10)[1]
    gcr = rooftop.solstice_gcr(lat, 25.0)
    assert 0.55 < gcr < 0.65
    assert row["capacity_kwp"] == pytest.approx(578.864 * gcr * 0.215, rel=1e-6)


def test_pitched_roofs_by_hand_gable_and_single_plane():
    b = layer([
        {"id": "s", "category": "rural_residential", "roof_tilt": 30.0, "roof_azimuth": 180.0,
         "geometry": box(0, 12, 8)},
        {"id": "n", "category": "rural_residential", "roof_tilt": 30.0, "roof_azimuth": 0.0,
         "geometry": box(100, 12, 8)},
        {"id": "auto", "category": "rural_residential", "roof_tilt": 30.0,
         "geometry": box(200, 12, 8)},  # long side east-west: faces south
        {"id": "ns", "category": "residential", "floors": 2.0, "roof_tilt": 30.0,
         "geometry": box(300, 8, 12)},  # long side north-south: faces east
    ])
    cos30 = math.cos(math.radians(30))
    whole = (12 - 1.6) * (8 - 1.6) / cos30 * 0.9  # set-back roof (both planes) × 0.9

    gable = run(b).set_index("id")  # default: two planes, the north one left bare
    assert (gable["roof_type"] == "pitched").all() and gable["roof_type_inferred"].all()
    assert gable.loc["s", "roof_area_m2"] == pytest.approx(96 / cos30)
    assert gable.loc["s", "usable_area_m2"] == pytest.approx(whole / 2)
    assert gable.loc["s", "capacity_kwp"] == pytest.approx(whole / 2 * 0.215)  # flush: ratio 1
    assert gable.loc["s", "annual_kwh"] == pytest.approx(whole / 2 * 0.215 * 1250)
    assert gable.loc["s", "specific_yield_kwh_kwp"] == pytest.approx(1250)
    # a gable recorded by its north half: the south half carries the modules
    assert gable.loc["n", "reason"] == ""
    assert gable.loc["n", "annual_kwh"] == pytest.approx(gable.loc["s", "annual_kwh"])
    assert gable.loc["n", "module_azimuth"] == pytest.approx(180.0)
    assert gable.loc["auto", "roof_azimuth"] == pytest.approx(180.0)
    assert gable.loc["auto", "annual_kwh"] == pytest.approx(gable.loc["s", "annual_kwh"])
    # an east-west gable: both halves carry modules, each at its own yield (1 000 here)
    assert gable.loc["ns", "roof_azimuth"] % 180 == pytest.approx(90.0)
    assert gable.loc["ns", "usable_area_m2"] == pytest.approx(whole)
    assert gable.loc["ns", "annual_kwh"] == pytest.approx(whole * 0.215 * 1000)

    single = run(b, pitched_planes=1).set_index("id")  # one plane facing roof_azimuth
    assert single.loc["s", "usable_area_m2"] == pytest.approx(whole)
    assert single.loc["s", "annual_kwh"] == pytest.approx(whole * 0.215 * 1250)
    assert single.loc["n", "reason"] == "north-facing"
    assert single.loc["n", "annual_kwh"] == 0 and single.loc["n", "capacity_kwp"] == 0
    assert single.loc["n", "specific_yield_kwh_kwp"] == pytest.approx(700)
    with pytest.raises(InputError, match="pitched_planes"):
        rooftop.pv_params(pitched_planes=3)


def test_north_facing_yields_less_with_the_climate_model():
    b = layer([{"id": s, "category": "rural_residential", "roof_tilt": 30.0, "roof_azimuth": a,
                "geometry": box(i * 50, 12, 8)} for i, (s, a) in enumerate([("s", 180.0),
                                                                              ("n", 0.0)])])
    pv = rooftop.pv_potential(b, params=rooftop.pv_params(pitched_planes=1)).set_index("id")
    assert 1100 < pv.loc["s", "specific_yield_kwh_kwp"] < 1600
    assert pv.loc["n", "specific_yield_kwh_kwp"] < 0.75 * pv.loc["s", "specific_yield_kwh_kwp"]


def test_reasons_for_zero_results():
    b = layer([
        {"id": "small", "category": "other", "roof_type": "flat", "geometry": box(0, 4, 4)},
        {"id": "full", "category": "industrial", "roof_type": "flat", "pv_kw": 62.0,
         "geometry": box(100, 50, 20)},
        {"id": "none", "category": "public", "roof_type": "flat", "geometry": None},
        {"id": "empty", "category": "public", "roof_type": "flat",
         "geometry": shapely.Polygon()},
    ])
    pv = run(b).set_index("id")
    assert pv.loc["small", "reason"] == "roof too small"
    assert pv.loc["full", "reason"] == "existing PV fills the roof"
    # 62 kW occupy 62 / (0.215 × 0.5) m² of roof
    assert pv.loc["full", "existing_pv_m2"] == pytest.approx(62 / 0.1075)
    assert pv.loc["none", "reason"] == "no valid footprint"
    assert pv.loc["empty", "reason"] == "no valid footprint"
    assert (pv["capacity_kwp"] == 0).all() and (pv["annual_kwh"] == 0).all()


def test_shading_factor_on_a_synthetic_raster(tmp_path):
    rasterio = pytest.importorskip("rasterio")
    from rasterio.transform import from_origin

    values = np.full((10, 10), 1000.0, dtype="float32")
    values[:, 5:] = 500.0  # east half receives half the unshaded irradiation
    path = tmp_path / "irr.tif"
    with rasterio.open(path, "w", driver="GTiff", width=10, height=10, count=1,
                       dtype="float32", crs=CRS, transform=from_origin(X0, Y0 + 10, 1, 1),
                       nodata=-9999) as dst:
        dst.write(values, 1)
    b = layer([
        {"id": "whole", "category": "public", "roof_type": "flat", "geometry": box(0, 10, 10)},
        {"id": "east", "category": "public", "roof_type": "flat", "geometry": box(5, 5, 10)},
        {"id": "west", "category": "public", "roof_type": "flat", "geometry": box(0, 5, 10)},
        {"id": "off", "category": "public", "roof_type": "flat", "geometry": box(500, 10, 10)},
    ])
    pv = rooftop.pv_potential(b, params=rooftop.pv_params(
        ground_coverage_ratio=0.5, edge_setback_m=0.0), irradiance=path,
        known_yields=YIELDS).set_index("id")
    assert pv["shading_factor"].to_dict() == pytest.approx(
        {"whole": 0.75, "east": 0.5, "west": 1.0, "off": 1.0})
    assert pv.loc["whole", "annual_kwh"] == pytest.approx(
        100 * 0.65 * 0.5 * 0.215 * 1300 * 0.75)
    strict = rooftop.pv_potential(b, params=rooftop.pv_params(
        ground_coverage_ratio=0.5, edge_setback_m=0.0, min_shading_factor=0.6),
        irradiance=path, known_yields=YIELDS).set_index("id")
    assert strict.loc["east", "reason"] == "shaded" and strict.loc["east", "annual_kwh"] == 0
    explicit, ref = rooftop.shading_factors(b.geometry, path, reference_kwh_m2=2000.0)
    assert ref == 2000.0 and explicit[0] == pytest.approx(0.375)


def _district() -> gpd.GeoDataFrame:
    rows = [
        {"id": "g1", "category": "government", "street": "A", "year_built": 2022.0,
         "geometry": box(0, 50, 20)},
        {"id": "p1", "category": "public", "street": "A", "year_built": 2023.0, "pv_kw": 20.0,
         "geometry": box(100, 40, 20)},
        {"id": "i1", "category": "industrial", "street": "B", "year_built": 2023.0,
         "geometry": box(200, 60, 40)},
        {"id": "i2", "category": "industrial", "street": "B", "year_built": 2024.0,
         "geometry": box(300, 30, 20)},
        {"id": "p0", "category": "public", "street": "B", "year_built": 2010.0,
         "geometry": box(400, 30, 20)},
        {"id": "r1", "category": "residential", "street": None, "floors": 6.0,
         "geometry": box(500, 50, 20)},
        {"id": "rr", "category": "rural_residential", "street": "B", "roof_tilt": 30.0,
         "roof_azimuth": 180.0, "geometry": box(600, 12, 8)},
    ]
    frame = layer(rows, index=[70, 10, 60, 20, 50, 30, 40])
    frame["roof_type"] = pd.Series([None] * 7, index=frame.index, dtype="string")
    return frame


def test_index_alignment_and_no_mutation():
    b = _district()
    before = b.copy()
    pv = run(b)
    assert pv.index.equals(b.index)
    assert list(pv["id"]) == list(b["id"])
    assert pv.geometry.geom_equals(b.geometry).all()
    pd.testing.assert_frame_equal(pd.DataFrame(b.drop(columns="geometry")),
                                  pd.DataFrame(before.drop(columns="geometry")))
    assert list(pv.columns[:len(rooftop.OUTPUT_COLUMNS)]) == list(rooftop.OUTPUT_COLUMNS)


def test_rollups_equal_building_sums():
    pv = run(_district())
    roll = rooftop.pv_rollups(pv)
    for by in ("street", "category", "district"):
        table = roll[by]
        assert table["buildings"].sum() == len(pv)
        assert table["mwp"].sum() == pytest.approx(pv["capacity_kwp"].sum() / 1000)
        assert table["gwh"].sum() == pytest.approx(pv["annual_kwh"].sum() / 1e6)
        assert table["co2_t"].sum() == pytest.approx(pv["co2_t"].sum())
        assert table["coal_t"].sum() == pytest.approx(pv["coal_t"].sum())
        assert table["usable_area_m2"].sum() == pytest.approx(pv["usable_area_m2"].sum())
    street = roll["street"].set_index("street")
    assert street.loc["(unassigned)", "buildings"] == 1
    assert street.loc["A", "roof_area_m2"] == pytest.approx(1000 + 800)


def test_targets_pilot_shares_new_buildings_and_substitution():
    pv = run(_district())
    entries, lists = rooftop.pv_targets(pv, load_targets("dongli-2025"))
    by_id = {e["id"]: e for e in entries}
    assert set(by_id) == {"pv-pilot-government", "pv-pilot-public",
                          "pv-pilot-commercial-industrial", "pv-pilot-rural",
                          "pv-new-public-factory", "renewable-substitution"}
    gov = by_id["pv-pilot-government"]
    assert gov["value"] == pytest.approx(0.578864) and gov["met"] is True and gov["gap"] == 0
    assert gov["by_street"] == [{"street": "A", "roof_area_m2": 1000.0,
                                 "installable_m2": 578.9, "value": pytest.approx(0.578864)}]
    # public: p1 (usable + area under its 20 kW) and p0, over 800 + 600 m²
    pub = pv.set_index("id").loc[["p1", "p0"]]
    expected = (pub["usable_area_m2"].sum() + 20 / 0.1075) / 1400
    assert by_id["pv-pilot-public"]["value"] == pytest.approx(expected)
    # new public/factory: g1, p1, i1, i2 are new (≥ 2022), only p1 has PV → 1/4, gap 1
    new = by_id["pv-new-public-factory"]
    assert new["value"] == 0.25 and new["gap"] == 1 and new["gap_unit"] == "buildings"
    assert new["buildings_new"] == 4 and new["buildings_with_pv"] == 1
    assert new["share_by_roof_area"] == pytest.approx(800 / (1000 + 800 + 2400 + 600))
    gap_list = lists["new_building_gap"]
    assert list(gap_list["id"]) == ["i1", "g1", "i2"]  # by annual energy, largest first
    assert list(gap_list["closes_gap"]) == [True, False, False]
    # substitution: urban = government, public, residential (industry and rural excluded)
    sub = by_id["renewable-substitution"]
    urban = pv.set_index("id").loc[["g1", "p1", "p0", "r1"]]
    use = 1000 * 140 + 800 * 130 + 600 * 130 + 6000 * 100
    existing = 20 * 1300  # 20 kW installed at 1 300 kWh/kWp, unshaded
    potential = urban["annual_kwh"].sum()
    assert sub["value"] == pytest.approx(existing / use)  # what is installed today
    assert sub["potential_share"] == pytest.approx((existing + potential) / use)
    assert sub["gap"] == pytest.approx((0.08 * use - existing) / 1e6)  # GWh/yr still missing
    assert sub["gap_unit"] == "GWh/yr"
    assert sub["closable"] == ((existing + potential) / use >= 0.08)
    assert sub["energy_use_gwh"] == pytest.approx(use / 1e6)


def test_presets_and_overrides():
    assert rooftop.pv_params("conservative").module_efficiency == 0.20
    assert rooftop.pv_params("ambitious").usable_fraction_pitched == 0.98
    base = rooftop.pv_params()
    assert (base.module_efficiency, base.usable_fraction_flat, base.min_usable_area_m2) == (
        0.215, 0.65, 10.0)
    p = rooftop.pv_params("conservative", module_efficiency=0.23, transposition="haydavies",
                          category_factor={"residential": 0.8})
    assert p.module_efficiency == 0.23 and p.solar(p.mount_flat).transposition == "haydavies"
    assert p.usable_fraction_flat == 0.5 and p.category_factor == {"residential": 0.8}


def test_bad_overrides_are_all_reported():
    with pytest.raises(InputError) as info:
        rooftop.pv_params("base", module_eficiency=0.2, usable_fraction_flat=1.5,
                          edge_setback_m="1 m", pitched_categories=["villas"])
    columns = {p.column for p in info.value.problems}
    assert columns == {"pv.module_eficiency", "pv.usable_fraction_flat", "pv.edge_setback_m",
                       "pv.pitched_categories"}
    with pytest.raises(InputError, match="unknown PV preset"):
        rooftop.pv_params("heroic")
    with pytest.raises(InputError) as info:
        rooftop.pv_params(temperature_model="hot")
    assert info.value.problems[0].column == "pv.temperature_model"


def test_geographic_crs_is_refused():
    b = layer([{"id": "f", "category": "public", "geometry": box(0, 50, 20)}]).to_crs(4326)
    with pytest.raises(InputError, match="projected metric CRS"):
        rooftop.pv_potential(b, params=rooftop.pv_params())


def test_shading_reads_the_configured_band_and_a_declared_crs(tmp_path):
    """A raster with no CRS of its own and the irradiation in band 2 (band 1 is a mask)."""
    import rasterio
    from rasterio.transform import from_origin

    from gis.config import LayerSpec
    from gis.rooftop import shading_factors

    tif = tmp_path / "two_bands.tif"
    irr = np.full((10, 20), 1500.0, dtype="float32")
    irr[:, 10:] = 750.0
    with rasterio.open(tif, "w", driver="GTiff", width=20, height=10, count=2, dtype="float32",
                       nodata=-1, transform=from_origin(534000, 4331010, 1, 1)) as dst:
        dst.write(np.ones((10, 20), dtype="float32"), 1)
        dst.write(irr, 2)
    roofs = gpd.GeoSeries([shapely.box(534000, 4331000, 534010, 4331010),
                           shapely.box(534010, 4331000, 534020, 4331010)], crs="EPSG:4548")
    spec = LayerSpec(kind="irradiance", path=tif, band=2, crs="EPSG:4548",
                     reference_kwh_m2=1600.0)
    factors, reference = shading_factors(roofs.to_crs(4527), spec, reference_kwh_m2=1500.0)
    np.testing.assert_allclose(factors, [1.0, 0.5], atol=1e-6)
    assert reference == 1500.0
    # without an explicit reference, the run file's reference_kwh_m2 is used
    factors, reference = shading_factors(roofs, spec)
    np.testing.assert_allclose(factors, [1500 / 1600, 750 / 1600], atol=1e-6)
    assert reference == 1600.0


def test_reference_sample_of_a_large_raster_reads_whole_blocks(tmp_path):
    import rasterio
    from rasterio.transform import from_origin

    from gis.rooftop import _raster_sample

    tif = tmp_path / "tiled.tif"
    grid = np.full((256, 256), 1500.0, dtype="float32")
    grid[:, :64] = 600.0  # a shaded quarter
    with rasterio.open(tif, "w", driver="GTiff", width=256, height=256, count=1,
                       dtype="float32", nodata=-1, tiled=True, blockxsize=32, blockysize=32,
                       crs="EPSG:4548", transform=from_origin(534000, 4331256, 1, 1)) as dst:
        dst.write(grid, 1)
    with rasterio.open(tif) as src:
        sample = _raster_sample(src, 1, max_cells=32 * 32 * 8)
    assert sample.size % (32 * 32) == 0 and 0 < sample.size < 256 * 256  # whole blocks only
    assert set(np.unique(sample)) <= {600.0, 1500.0}
    assert np.percentile(sample, 99) == 1500.0

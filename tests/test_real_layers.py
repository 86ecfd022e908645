"""Real layers as they come: OSM extracts, layers without ids, numbers with units, Chinese datums,
distant weather, third-survey area fields — and the three real public layers end to end.

Expected figures are computed here independently of the package: feature counts from a plain
pyogrio read and the OSM tags, areas on the ellipsoid with ``pyproj.Geod``, floors and categories
from the tags with a small table written out below.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Geod

from gis import datums
from gis.config import parse_runfile
from gis.units import parse_numbers
from gis.validate import load_layers

SHARED = Path(__file__).resolve().parents[2] / "shared"  # as tests/conftest.py finds it
TIANJIN_EPW = SHARED / "data" / "weather" / "CHN_TJ_Tianjin.545270_TMYx.2009-2023.epw"
REAL = SHARED / "data" / "real"
KOTKA = REAL / "kotka.osm.pbf"
PIEDMONT = REAL / "piedmont_ca_buildings.geojson"
TOKYO = REAL / "tokyo_buildings_heights.geojson"
X0, Y0 = 520_000.0, 4_330_000.0  # EPSG:4548, in Dongli
GEOD = Geod(ellps="WGS84")


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path.name} is not beside the repository")
    return path


def run_for(tmp_path, layers, weather=None, **project):
    raw = {"project": project, "layers": layers}
    if weather:
        raw["weather"] = weather
    return parse_runfile(raw, base=tmp_path)


def messages(layers, severity="warning") -> str:
    return "\n".join(str(p) for p in layers.problems if p.severity == severity)


def geod_area_m2(geoms) -> np.ndarray:
    """Area on the WGS84 ellipsoid [m²] of lon/lat polygons (pyproj.Geod, Karney's method)."""
    return np.array([abs(GEOD.geometry_area_perimeter(g)[0]) for g in geoms])


def cli_run(tmp_path: Path, layer: Path, *, extra: str = "") -> tuple[subprocess.CompletedProcess, Path]:
    """`gis-planner run` on a minimal run file a planner would write (only the path)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    out = tmp_path / "out"
    run = tmp_path / "run.toml"
    run.write_text(f'[layers.buildings]\npath = "{layer}"\n\n{extra}\n[output]\ndir = "{out}"\n'
                   "offline = true\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "GIS_PLANNER_DEBUG"}
    result = subprocess.run([sys.executable, "-m", "gis.cli", "run", str(run)], cwd=tmp_path,
                            capture_output=True, text=True, env=env, timeout=600, check=False)
    return result, out


#: a weather file for a run far from Tianjin (the only typical-year file at hand is Tianjin's:
#: the run file raises the distance limit on purpose), with shading by neighbours off, so that
#: its capacities are those a run without weather gives (yields are not compared)
FAR_WEATHER_UNSHADED = (f'[weather]\nepw = "{TIANJIN_EPW}"\nmax_distance_km = 20000\n\n'
                        '[pv]\nshading = "none"\n')

YIELD_COLUMNS = ("specific_yield_kwh_kwp", "annual_kwh", "co2_t", "coal_t", "shading_factor",
                 "unshaded_kwh", "shading_loss_kwh", "annual_savings_yuan", "npv_yuan",
                 "payback_years")


def assert_run_without_yields(result, out: Path, km: int) -> dict:
    """Exit 0, one warning naming the distance and the fix, yields missing, capacities kept."""
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    weather = [x for x in result.stderr.splitlines() if "layer 'weather'" in x]
    assert len(weather) == 1 and weather[0].startswith("warning:")
    assert f"{km} km" in weather[0] and '[weather] epw = "' in weather[0]
    assert "PVGIS" in weather[0] and "yields are not computed" in weather[0]
    pv = gpd.read_file(out / "buildings_pv.gpkg", layer="buildings_pv")
    for col in YIELD_COLUMNS:
        assert pv[col].isna().all(), col  # missing, never 0
    assert (pv["capacity_kwp"] > 0).sum() > len(pv) / 2
    assert (pv["capex_yuan"] > 0).sum() == (pv["capacity_kwp"] > 0).sum()  # cost needs no sun
    assert (pv["shading_source"] == "none").all()
    assert pv["yield_note"].str.contains(f"{km} km from the district").all()
    # the site list is ranked by capacity, and run.json says so
    sites = pd.read_csv(out / "sites.csv", encoding="utf-8-sig")
    assert sites["capacity_kwp"].is_monotonic_decreasing and sites["rank"].iloc[0] == 1
    assert len(sites) == int((pv["capacity_kwp"] > 0).sum())
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert "ranked by capacity_kwp" in run["definitions"]["yields"]
    assert run["definitions"]["pv_shading"]["annual_gwh"] is None
    district = pd.read_csv(out / "pv_by_district.csv", encoding="utf-8-sig")
    assert district["gwh"].isna().all() and district["mwp"].iloc[0] == pytest.approx(
        pv["capacity_kwp"].sum() / 1000)
    card = {e["id"]: e for e in json.loads((out / "scorecard.json").read_text(
        encoding="utf-8"))["targets"]}
    sub = card["renewable-substitution"]
    assert sub["value"] is None and sub["met"] is None and sub["gap"] is None
    assert sub["reason"].startswith("yields not computed") and f"{km} km" in sub["reason"]
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "yields not computed" in report and "0.00 GWh/yr" not in report
    return card


def same_capacities_as_with_weather(tmp_path: Path, layer: Path, out: Path) -> None:
    """Areas, capacities and pilot shares equal those of a run with a weather file."""
    result, out_w = cli_run(tmp_path / "with_weather", layer, extra=FAR_WEATHER_UNSHADED)
    assert result.returncode == 0, result.stderr
    a = gpd.read_file(out / "buildings_pv.gpkg", layer="buildings_pv")
    b = gpd.read_file(out_w / "buildings_pv.gpkg", layer="buildings_pv")
    assert a["id"].tolist() == b["id"].tolist()
    for col in ("roof_area_m2", "usable_area_m2", "capacity_kwp", "capex_yuan"):
        np.testing.assert_allclose(a[col], b[col], rtol=1e-12, err_msg=col)
    assert b["annual_kwh"].gt(0).any()  # the weather run does compute yields
    cards = [{e["id"]: e for e in json.loads((o / "scorecard.json").read_text(
        encoding="utf-8"))["targets"]} for o in (out, out_w)]
    for tid, e in cards[0].items():
        if tid.startswith("pv-pilot"):
            assert e["value"] == cards[1][tid]["value"], tid


# ------------------------------------------------------------------------------------------------
# The three real layers, end to end through the command line
# ------------------------------------------------------------------------------------------------

def test_kotka_osm_extract_with_clipped_rings_runs_end_to_end(tmp_path):
    import pyogrio

    need(KOTKA)
    result, out = cli_run(tmp_path, KOTKA)  # no weather: Kotka is far from any built-in climate
    card = assert_run_without_yields(result, out, 6311)
    # the pilot installable shares need no sun: evaluated
    for tid in ("pv-pilot-public", "pv-pilot-commercial-industrial"):
        assert 0 < card[tid]["value"] < 1 and card[tid]["met"] is not None
    # independent count: features tagged building=*, whose rings can be built and enclose area
    raw = pyogrio.read_dataframe(KOTKA, layer="multipolygons", on_invalid="ignore")
    tagged = raw["building"].notna() & (raw["building"] != "no")
    readable = tagged & raw.geometry.notna()
    area = np.zeros(len(raw))
    area[readable.to_numpy()] = geod_area_m2(raw.geometry[readable])
    kept = readable & (area > 0)
    assert int(tagged.sum()) == 2219 and int(kept.sum()) == 2193
    pv = gpd.read_file(out / "buildings_pv.gpkg")
    assert len(pv) == int(kept.sum())
    ids = ("way/" + raw["osm_way_id"].astype("string")).fillna(
        "relation/" + raw["osm_id"].astype("string"))
    assert set(pv["id"]) == set(ids[kept])
    # areas in true metres: polygons valid as read, footprint vs the ellipsoid area
    valid = kept & shapely.is_valid(raw.geometry.values)
    truth = pd.Series(area[valid.to_numpy()], index=ids[valid].to_numpy())
    got = pv.set_index("id").geometry.area.reindex(truth.index)
    np.testing.assert_allclose(got.to_numpy(), truth.to_numpy(), rtol=2e-3)
    assert got.sum() == pytest.approx(truth.sum(), rel=1e-3)
    # the repairs are counted in the warnings
    err = result.stderr
    assert "8 features have rings that cannot be built" in err
    assert "8 empty geometries dropped" in err
    assert "23 geometries empty after repair dropped" in err
    assert "78 OSM features without a building=* tag" in err
    # building=* → category, as the table says
    expect = raw.loc[kept, "building"].map({"residential": "residential", "apartments": "residential",
                                            "house": "residential", "terrace": "residential",
                                            "industrial": "industrial", "public": "public",
                                            "school": "public", "kindergarten": "public",
                                            "retail": "commercial"}).fillna("other")
    expect.index = ids[kept].to_numpy()
    got_cat = pv.set_index("id")["category"].reindex(expect.index)
    amenity_refined = raw.loc[kept, "amenity"].notna().to_numpy()
    assert (got_cat.to_numpy() == expect.to_numpy())[~amenity_refined].all()


def test_piedmont_osm_buildings_need_no_mapping(tmp_path):
    need(PIEDMONT), need(TIANJIN_EPW)
    result, out = cli_run(tmp_path, PIEDMONT)
    card = assert_run_without_yields(result, out, 9540)
    assert 0 < card["pv-pilot-government"]["value"] <= 1
    same_capacities_as_with_weather(tmp_path, PIEDMONT, out)
    raw = gpd.read_file(PIEDMONT)
    pv = gpd.read_file(out / "buildings_pv.gpkg")
    assert len(pv) == len(raw) == 4701
    ids = ("way/" + raw["osm_way_id"].astype("string")).fillna(
        "relation/" + raw["osm_id"].astype("string"))
    assert pv["id"].tolist() == ids.tolist()
    truth = geod_area_m2(raw.geometry)
    np.testing.assert_allclose(pv.geometry.area.to_numpy(), truth, rtol=2e-3)
    # categories: building=* by hand, and building=yes refined by amenity=*
    by_building = {"house": "residential", "residential": "residential",
                   "apartments": "residential", "school": "public", "public": "public",
                   "commercial": "commercial", "retail": "commercial", "industrial": "industrial"}
    by_amenity = {"townhall": "government", "fire_station": "public", "police": "public",
                  "bank": "commercial"}
    cat = raw["building"].map(by_building)
    cat = cat.fillna(raw["amenity"].map(by_amenity).where(raw["building"] == "yes"))
    cat = cat.fillna("other")
    assert pv["category"].tolist() == cat.tolist()
    assert (pv["category"] == "government").sum() == 1  # Piedmont City Hall


def test_piedmont_floors_from_building_levels_tags(tmp_path):
    need(PIEDMONT)
    layers = load_layers(run_for(tmp_path, {"buildings": {"path": str(PIEDMONT)}},
                                 crs="EPSG:32610"))
    b = layers.buildings
    raw = gpd.read_file(PIEDMONT)
    levels = raw["other_tags"].str.extract(r'"building:levels"=>"([^"]*)"', expand=False)
    known = levels.notna().to_numpy()
    assert known.sum() == 3
    assert b["floors"].to_numpy()[known].tolist() == levels[known].astype(float).tolist()
    assert b["floors"].isna().sum() == len(raw) - 3


def test_tokyo_heights_and_ids_kept(tmp_path):
    need(TOKYO), need(TIANJIN_EPW)
    result, out = cli_run(tmp_path, TOKYO)
    assert_run_without_yields(result, out, 2037)
    same_capacities_as_with_weather(tmp_path, TOKYO, out)
    assert "3 invalid geometries repaired" in result.stderr
    raw = gpd.read_file(TOKYO)
    pv = gpd.read_file(out / "buildings_pv.gpkg")
    assert len(pv) == len(raw) == 1374
    assert pv["id"].astype(int).tolist() == raw["id"].tolist()
    valid = shapely.is_valid(raw.geometry.values)
    np.testing.assert_allclose(pv.geometry.area.to_numpy()[valid],
                               geod_area_m2(raw.geometry[valid]), rtol=2e-3)
    layers = load_layers(run_for(tmp_path, {"buildings": {"path": str(TOKYO)}}))
    assert layers.buildings["height"].tolist() == raw["height"].astype(float).tolist()


def test_far_district_without_weather_gives_ground_pv_capacities_but_no_yields(tmp_path):
    """Land use far from any built-in climate: ground PV capacities and capex, yields missing."""
    from gis import pipeline

    lon, lat = 139.70, 35.55  # Tokyo, 2 037 km from the Tianjin figures
    houses_at(tmp_path, lon, lat)
    pond = shapely.box(lon + 0.002, lat, lon + 0.004, lat + 0.0015)  # about 180 m × 165 m
    gpd.GeoDataFrame({"BSM": ["p1"], "DLBM": ["1104"]}, geometry=[pond],
                     crs=4326).to_file(tmp_path / "lu.geojson")
    cfg = run_for(tmp_path, {"buildings": {"path": "b.geojson"},
                             "landuse": {"path": "lu.geojson"}})
    ctx = pipeline.run(cfg, out_dir=tmp_path / "out", offline=True)
    assert ctx.layers.yields_note.endswith(" km from the district")
    assert 2000 < int(ctx.layers.yields_note.split(" are ")[1].split(" km")[0]) < 2100
    g = pd.read_csv(tmp_path / "out" / "ground_pv.csv", encoding="utf-8-sig")
    assert g["kind"].tolist() == ["fishery"] and g["capacity_kwp"].iloc[0] > 100
    assert g["capex_yuan"].iloc[0] > 0
    for col in ("specific_yield_kwh_kwp", "annual_kwh", "co2_t", "annual_savings_yuan",
                "npv_yuan"):
        assert g[col].isna().all(), col
    money = pd.read_csv(tmp_path / "out" / "finance_by_street.csv", encoding="utf-8-sig")
    assert money["annual_kwh"].isna().all() and money["annual_savings_yuan"].isna().all()
    assert money["capex_yuan"].sum() > 0


# ------------------------------------------------------------------------------------------------
# Ids never block a run
# ------------------------------------------------------------------------------------------------

def boxes(n: int, size: float = 20.0) -> np.ndarray:
    xs = X0 + 10 + np.arange(n) * 40.0
    return shapely.box(xs, Y0 + 10, xs + size, Y0 + 10 + size)


def test_an_auto_detected_id_column_of_zeros_falls_back_to_feature_ids(tmp_path):
    gpd.GeoDataFrame({"Id": [0] * 5, "CS": [1, 2, 3, 4, 5]}, geometry=boxes(5),
                     crs=4548).to_file(tmp_path / "b.shp")
    layers = load_layers(run_for(tmp_path, {"buildings": {"path": "b.shp"}}))
    assert layers.buildings["id"].tolist() == ["0", "1", "2", "3", "4"]  # record numbers
    text = messages(layers)
    assert "'Id'" in text and "5 features share 1 duplicate values" in text and "@fid" in text
    assert not messages(layers, "error").count("id")


def test_no_id_column_uses_the_geopackage_feature_ids(tmp_path):
    gpd.GeoDataFrame({"JZLB": ["住宅"] * 3}, geometry=boxes(3), crs=4548).to_file(
        tmp_path / "b.gpkg")
    layers = load_layers(run_for(tmp_path, {"buildings": {"path": "b.gpkg"}}))
    assert layers.buildings["id"].tolist() == ["1", "2", "3"]  # GeoPackage FIDs start at 1
    assert "no id column" in messages(layers)


def test_a_mapped_id_that_repeats_is_an_error_offering_the_feature_ids(tmp_path):
    gpd.GeoDataFrame({"BSM": ["a", "a", "b"]}, geometry=boxes(3), crs=4548).to_file(
        tmp_path / "b.gpkg")
    layers = load_layers(run_for(tmp_path, {"buildings": {"path": "b.gpkg",
                                                          "columns": {"id": "BSM"}}}))
    text = messages(layers, "error")
    assert "2 features share 1 duplicate ids" in text and 'id = "@fid"' in text
    layers = load_layers(run_for(tmp_path, {"buildings": {"path": "b.gpkg",
                                                          "columns": {"id": "@fid"}}}))
    assert layers.buildings["id"].tolist() == ["1", "2", "3"]
    assert not messages(layers, "error")


def test_parcels_without_ids_still_load(tmp_path):
    gpd.GeoDataFrame({"DLBM": ["0301", "0404"]}, geometry=boxes(2, 100.0), crs=4548).to_file(
        tmp_path / "lu.geojson")
    layers = load_layers(run_for(tmp_path, {"landuse": {"path": "lu.geojson"}}))
    assert layers.landuse["id"].tolist() == ["0", "1"]
    assert "no id column" in messages(layers)


# ------------------------------------------------------------------------------------------------
# Numbers as people write them
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,kind,value", [
    ("15m", "length", 15.0), ("12 m", "length", 12.0), ("约15米", "length", 15.0),
    ("40 ft", "length", 12.192), ("12,5", "length", 12.5), ("3-4", "storeys", 3.5),
    ("3–4 levels", "storeys", 3.5), ("2.5", "storeys", 2.5), ("3层", "storeys", 3.0),
    ("5F", "storeys", 5.0), ("地上6层", "storeys", 6.0), ("１２米", "length", 12.0),
    ("30°", "angle", 30.0), ("1985-05-12", "year", 1985.0), ("~1900", "year", 1900.0),
    ("1,234", "volume", 1234.0), ("50 kW", "power", 50.0), ("0.5 MW", "power", 500.0),
])
def test_numbers_with_units_ranges_and_commas(text, kind, value):
    num, bad = parse_numbers(pd.Series([text]), kind=kind)
    assert num.iloc[0] == pytest.approx(value) and not bad.iloc[0]


@pytest.mark.parametrize("text,kind", [("3层", "length"), ("n/a", "length"), ("[80, 90]", "volume"),
                                       ("3/5", "storeys"), ("yes", "storeys")])
def test_numbers_that_cannot_be_read_are_missing(text, kind):
    num, bad = parse_numbers(pd.Series([text]), kind=kind)
    assert np.isnan(num.iloc[0]) and bad.iloc[0]


def test_units_in_optional_columns_warn_never_stop(tmp_path):
    gpd.GeoDataFrame({"BSM": ["a", "b", "c", "d", "e"],
                      "GD": ["15m", "12 m", "unknown", "7,5", "9"],
                      "CS": ["5层", "4F", "3-4", "2.5", "two"]},
                     geometry=boxes(5), crs=4548).to_file(tmp_path / "b.gpkg")
    layers = load_layers(run_for(tmp_path, {"buildings": {
        "path": "b.gpkg", "columns": {"height": "GD", "floors": "CS"}}}))
    assert not messages(layers, "error")
    b = layers.buildings
    assert b["height"].tolist()[:2] == [15.0, 12.0] and np.isnan(b["height"].iloc[2])
    assert b["height"].tolist()[3:] == [7.5, 9.0]
    assert b["floors"].tolist()[:4] == [5.0, 4.0, 3.5, 2.5] and np.isnan(b["floors"].iloc[4])
    text = messages(layers)
    assert "'GD'" in text and "1 values are not numbers: left missing" in text and "unknown" in text
    assert "'CS'" in text and "two" in text


# ------------------------------------------------------------------------------------------------
# OSM tags, wherever they are
# ------------------------------------------------------------------------------------------------

def test_osm_tags_from_columns_and_other_tags(tmp_path):
    lon, lat = 117.40, 39.10
    geoms = [shapely.box(lon + i * 0.001, lat, lon + i * 0.001 + 0.0003, lat + 0.0003)
             for i in range(5)]
    frame = gpd.GeoDataFrame({
        "osm_way_id": ["11", "12", "13", "14", "15"],
        "osm_id": [None] * 5,
        "building": ["school", "yes", "apartments", "greenhouse_x", "farm_auxiliary"],
        "other_tags": ['"building:levels"=>"3-4","height"=>"12 m","roof:shape"=>"gabled",'
                       '"roof:direction"=>"S","start_date"=>"1985-05"',
                       '"amenity"=>"townhall","building:levels"=>"2"',
                       '"building:height"=>"40 ft","roof:shape"=>"flat","roof:angle"=>"0"',
                       None, '"roof:direction"=>"135"'],
    }, geometry=geoms, crs=4326)
    frame.to_file(tmp_path / "osm.geojson")
    layers = load_layers(run_for(tmp_path, {"buildings": {"path": "osm.geojson"}}))
    assert not messages(layers, "error")
    b = layers.buildings
    assert b["id"].tolist() == ["way/11", "way/12", "way/13", "way/14", "way/15"]
    assert b["category"].tolist() == ["public", "government", "residential", "other",
                                      "rural_residential"]
    assert b["floors"].tolist()[:2] == [3.5, 2.0]
    assert b["height"].iloc[0] == 12.0 and b["height"].iloc[2] == pytest.approx(12.192)
    assert b["roof_type"].iloc[0] == "pitched" and b["roof_type"].iloc[2] == "flat"
    assert b["roof_type"].isna().sum() == 3  # inferred later from category and floors
    assert b["roof_azimuth"].iloc[0] == 180.0 and b["roof_azimuth"].iloc[4] == 135.0
    assert b["year_built"].iloc[0] == 1985.0
    assert "greenhouse_x" in messages(layers)  # unknown building=* value counted as other


# ------------------------------------------------------------------------------------------------
# Chinese datums
# ------------------------------------------------------------------------------------------------

#: reference points of the open implementations (googollee/eviltransform tests): WGS84 → GCJ-02
REFERENCE = [((121.5272106, 31.1774276), (121.531541859215, 31.17530398364597)),   # Shanghai
             ((113.912316, 22.543847), (113.9171764808363, 22.540796131694766)),   # Shenzhen
             ((116.377817, 39.911954), (116.38404722455657, 39.91334545536069))]   # Beijing


@pytest.mark.parametrize("wgs,gcj", REFERENCE)
def test_gcj02_reference_points(wgs, gcj):
    x, y = datums.wgs84_to_gcj02(*wgs)
    assert (float(x), float(y)) == pytest.approx(gcj, abs=1e-9)
    x, y = datums.gcj02_to_wgs84(*gcj)
    assert GEOD.inv(float(x), float(y), *wgs)[2] < 0.01  # metres


@pytest.mark.parametrize("datum", ["gcj02", "bd09"])
def test_round_trip_under_one_metre(datum):
    rng = np.random.default_rng(1)
    lon, lat = rng.uniform(73.5, 135, 20000), rng.uniform(18, 53.5, 20000)
    fwd, inv = ((datums.wgs84_to_gcj02, datums.gcj02_to_wgs84) if datum == "gcj02"
                else (datums.wgs84_to_bd09, datums.bd09_to_wgs84))
    shifted = fwd(lon, lat)
    moved = GEOD.inv(lon, lat, *shifted)[2]
    assert moved.min() > 10 and moved.max() < 3000  # the shift is real, and of its known size
    back = inv(*shifted)
    assert GEOD.inv(lon, lat, *back)[2].max() < 1.0


def test_outside_china_nothing_moves():
    assert datums.wgs84_to_gcj02(26.95, 60.53) == (26.95, 60.53)


def gcj_copy(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """A WGS84 layer as a web map would hold it: every vertex moved to GCJ-02."""
    def move(xy):
        return np.column_stack(datums.wgs84_to_gcj02(xy[:, 0], xy[:, 1]))
    return frame.set_geometry(shapely.transform(frame.geometry.values, move), crs=4326)


def test_a_gcj02_layer_lands_within_2_m_of_its_true_position(tmp_path):
    truth = gpd.GeoDataFrame({"BSM": ["a", "b"]}, geometry=boxes(2), crs=4548).to_crs(4326)
    gcj_copy(truth).to_file(tmp_path / "gcj.geojson")
    layers = load_layers(run_for(tmp_path, {"buildings": {"path": "gcj.geojson",
                                                          "datum": "gcj02"}}, crs="EPSG:4548"))
    got = layers.buildings.geometry.values
    want = truth.to_crs(4548).geometry.values
    assert shapely.hausdorff_distance(got, want).max() < 2.0
    shifted = load_layers(run_for(tmp_path, {"buildings": {"path": "gcj.geojson"}},
                                  crs="EPSG:4548")).buildings.geometry.values
    assert shapely.hausdorff_distance(shifted, want).min() > 300  # unconverted: far off


def test_offset_against_survey_parcels_suggests_the_datum(tmp_path):
    # a 400 m × 400 m residential parcel (0702) inside 4 km of dry cropland, 16 houses on it
    site = shapely.box(X0, Y0, X0 + 400, Y0 + 400)
    fields = shapely.box(X0 - 2000, Y0 - 2000, X0 + 2400, Y0 + 2400).difference(site)
    gpd.GeoDataFrame({"BSM": ["p1", "p2"], "DLBM": ["0702", "0103"]}, geometry=[site, fields],
                     crs=4548).to_file(tmp_path / "lu.gpkg")
    xs, ys = np.meshgrid(X0 + 40 + np.arange(4) * 90.0, Y0 + 40 + np.arange(4) * 90.0)
    houses = gpd.GeoDataFrame({"BSM": [f"b{i}" for i in range(16)]},
                              geometry=shapely.box(xs.ravel(), ys.ravel(), xs.ravel() + 20,
                                                   ys.ravel() + 20), crs=4548)
    gcj_copy(houses.to_crs(4326)).to_file(tmp_path / "b.geojson")
    layers = load_layers(run_for(tmp_path, {"buildings": {"path": "b.geojson"},
                                            "landuse": {"path": "lu.gpkg"}}, crs="EPSG:4548"))
    text = messages(layers)
    assert 'datum = "gcj02"' in text and "0% of them" in text and "100% once converted" in text
    # converted, the warning is gone
    layers = load_layers(run_for(tmp_path, {"buildings": {"path": "b.geojson", "datum": "gcj02"},
                                            "landuse": {"path": "lu.gpkg"}}, crs="EPSG:4548"))
    assert "datum" not in messages(layers)


# ------------------------------------------------------------------------------------------------
# Weather must be near the district
# ------------------------------------------------------------------------------------------------

def houses_at(tmp_path: Path, lon: float, lat: float) -> str:
    gpd.GeoDataFrame({"BSM": ["a"]}, geometry=[shapely.box(lon, lat, lon + 0.0005, lat + 0.0005)],
                     crs=4326).to_file(tmp_path / "b.geojson")
    return "b.geojson"


@pytest.mark.parametrize("lon,lat,severity,km", [
    (117.40, 39.10, None, 30),         # Dongli: 30 km from the Tianjin station
    (116.40, 39.90, "warning", 105),   # Beijing
    (121.47, 31.23, "error", 960),     # Shanghai
])
def test_weather_distance(tmp_path, tianjin_epw, lon, lat, severity, km):
    path = houses_at(tmp_path, lon, lat)
    layers = load_layers(run_for(tmp_path, {"buildings": {"path": path}},
                                 weather={"epw": str(tianjin_epw)}))
    found = [p for p in layers.problems if p.layer == "weather"]
    record = next(r for r in layers.inputs if r["kind"] == "weather")
    assert record["distance_km"] == pytest.approx(km, abs=15)
    if severity is None:
        assert not found
    else:
        assert [p.severity for p in found] == [severity]
        assert "Tianjin" in found[0].message and f"{record['distance_km']:.0f} km" in found[0].message
    if severity == "error":
        assert "max_distance_km" in found[0].hint
        raised = load_layers(run_for(tmp_path, {"buildings": {"path": path}},
                                     weather={"epw": str(tianjin_epw), "max_distance_km": 1000}))
        assert [p.severity for p in raised.problems if p.layer == "weather"] == ["warning"]


# ------------------------------------------------------------------------------------------------
# Third-survey areas complete
# ------------------------------------------------------------------------------------------------

def survey_layers(tmp_path: Path) -> tuple:
    """Dry land with 15 % ridges, industrial land and forest: three 1 ha parcels, one zone."""
    xs = X0 + np.arange(3) * 100.0
    gpd.GeoDataFrame({"BSM": ["p1", "p2", "p3"], "DLBM": ["0103", "0601", "0301"],
                      "TBMJ": [10000.0, 10000.0, 10000.0], "KCMJ": [1500.0, 0.0, 0.0],
                      "TBDLMJ": [8500.0, 10000.0, 10000.0]},
                     geometry=shapely.box(xs, Y0, xs + 100, Y0 + 100), crs=4548).to_file(
        tmp_path / "lu.gpkg")
    gpd.GeoDataFrame({"MC": ["屏障区"], "GKJB": ["barrier"]},
                     geometry=[shapely.box(X0, Y0, X0 + 300, Y0 + 100)], crs=4548).to_file(
        tmp_path / "zones.gpkg")


@pytest.mark.parametrize("area", ["TBDLMJ", "TBMJ"])
def test_ridges_counted_with_only_the_area_mapped(tmp_path, area):
    from gis.ecology import zone_accounts

    survey_layers(tmp_path)
    layers = load_layers(run_for(tmp_path, {"landuse": {"path": "lu.gpkg",
                                                        "columns": {"area": area}},
                                            "zones": {"path": "zones.gpkg"}}, crs="EPSG:4548"))
    assert not messages(layers, "error")
    lu = layers.landuse
    assert lu["kcmj_m2"].tolist() == [1500.0, 0.0, 0.0]
    assert lu["area_official_m2"].tolist() == [8500.0, 10000.0, 10000.0]
    table = zone_accounts(lu, layers.zones, scheme="gbt21010")
    row = table.loc[table["zone"] == "屏障区"].iloc[0]
    # broad blue-green: dry land 8 500 m² + its ridges 1 500 m² (1203) + forest 10 000 m²
    assert row["bluegreen_share_official"] == pytest.approx(20000.0 / 30000.0, abs=1e-12)
    assert row["ridge_ha_official"] == pytest.approx(0.15, abs=1e-12)


def test_second_survey_ridge_field_is_recognised(tmp_path):
    survey_layers(tmp_path)
    frame = gpd.read_file(tmp_path / "lu.gpkg").rename(columns={"KCMJ": "TKMJ"})
    frame["XZDWMJ"] = [200.0, 0.0, 0.0]
    frame.to_file(tmp_path / "lu2.gpkg")
    layers = load_layers(run_for(tmp_path, {"landuse": {"path": "lu2.gpkg",
                                                        "columns": {"area": "TBDLMJ"}}}))
    assert layers.landuse["kcmj_m2"].tolist() == [1500.0, 0.0, 0.0]
    assert "XZDWMJ" in messages(layers) and "0.02 ha" in messages(layers)


def test_run_json_records_the_weather_site(tmp_path):
    """The weather's site and distance reach run.json through the inputs record."""
    need(TIANJIN_EPW)
    path = houses_at(tmp_path, 117.40, 39.10)
    layers = load_layers(run_for(tmp_path, {"buildings": {"path": path}},
                                 weather={"epw": str(TIANJIN_EPW)}))
    record = next(r for r in layers.inputs if r["kind"] == "weather")
    assert record["site"].startswith("Tianjin") and json.dumps(record)


def test_legacy_gbk_shapefile_without_ids_or_cpg(tmp_path):
    """An ArcGIS-drawn shapefile: Id all 0, Floor, 类型 in GBK with no .cpg (住宅 in GBK is also
    valid UTF-8 bytes: the CJK count decides)."""
    frame = gpd.GeoDataFrame({"Id": [0] * 4, "Floor": [1, 2, 3, 6], "类型": ["住宅", "学校"] * 2},
                             geometry=boxes(4), crs=4548)
    frame.to_file(tmp_path / "old.shp", encoding="gbk")
    (tmp_path / "old.cpg").unlink(missing_ok=True)
    layers = load_layers(run_for(tmp_path, {"buildings": {"path": "old.shp"}}))
    assert not messages(layers, "error")
    b = layers.buildings
    assert b["id"].tolist() == ["0", "1", "2", "3"]
    assert b["floors"].tolist() == [1.0, 2.0, 3.0, 6.0]
    assert b["category"].tolist() == ["residential", "public"] * 2
    assert 'floors = "Floor"' in messages(layers) and "'Id'" in messages(layers)


def test_web_mercator_geopackage_without_ids(tmp_path):
    need(TOKYO)
    raw = gpd.read_file(TOKYO)
    raw.drop(columns="id").to_crs(3857).to_file(tmp_path / "merc.gpkg")
    layers = load_layers(run_for(tmp_path, {"buildings": {"path": "merc.gpkg"}}))
    # Tokyo is 2 037 km from the built-in climate: yields are not computed, the rest is
    assert not [p for p in layers.problems if p.severity == "error"]
    assert [p.severity for p in layers.problems if p.layer == "weather"] == ["warning"]
    b = layers.buildings
    assert b["id"].tolist() == [str(i) for i in range(1, len(raw) + 1)]
    assert not layers.crs.is_geographic and layers.crs.to_epsg() != 3857
    valid = shapely.is_valid(raw.geometry.values)
    np.testing.assert_allclose(b.geometry.area.to_numpy()[valid],
                               geod_area_m2(raw.geometry[valid]), rtol=2e-3)


def test_a_distant_weather_file_is_refused_by_the_command_line(tmp_path):
    need(TIANJIN_EPW)
    houses_at(tmp_path, 121.47, 31.23)  # Shanghai, about 960 km from the Tianjin station
    run = tmp_path / "run.toml"
    run.write_text(f'[layers.buildings]\npath = "b.geojson"\n\n[weather]\nepw = "{TIANJIN_EPW}"\n',
                   encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "gis.cli", "validate", str(run)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    line = next(x for x in result.stderr.splitlines() if "weather file's site" in x)
    assert line.startswith("error:") and "Tianjin" in line and " km from the district" in line
    assert "max_distance_km" in line


@pytest.mark.parametrize("max_km", [None, 20000])
def test_no_weather_beyond_the_built_in_climate_is_one_warning(tmp_path, max_km):
    path = houses_at(tmp_path, 121.47, 31.23)  # Shanghai: about 960 km from the Tianjin figures
    weather = {"max_distance_km": max_km} if max_km else None
    layers = load_layers(run_for(tmp_path, {"buildings": {"path": path}}, weather=weather))
    found = [p for p in layers.problems if p.layer == "weather"]
    assert [p.severity for p in found] == ["warning"]  # raising the limit changes nothing
    assert "yields are not computed" in found[0].message and "[weather] epw" in found[0].hint
    km = int(found[0].message.split(" are ")[1].split(" km")[0])
    assert 900 < km < 1000 and layers.yields_note.endswith(f"{km} km from the district")


def test_built_in_climate_from_afar_is_named_in_a_warning(tmp_path):
    path = houses_at(tmp_path, 116.40, 39.90)  # Beijing: about 105 km from the Tianjin figures
    layers = load_layers(run_for(tmp_path, {"buildings": {"path": path}}))
    assert layers.yields_note is None  # within 300 km: yields from the built-in climate
    found = [p for p in layers.problems if p.layer == "weather"]
    assert [p.severity for p in found] == ["warning"]
    assert "built-in climate figures (Tianjin" in found[0].message
    assert "km from the district centre" in found[0].message

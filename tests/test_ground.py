"""Ground-mounted PV: capacities by hand, exclusions, ponds stay blue, the run's outputs."""

from __future__ import annotations

import json
import subprocess
import sys

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gis.ground import (
    REASONS,
    bluegreen_with_ground,
    densities,
    ground_params,
    ground_potential,
    ground_scenario,
    kind_of_codes,
)
from gis.rooftop import solstice_gcr

CRS = "EPSG:4548"
X0, Y0 = 534_000.0, 4_331_000.0
YIELDS = {"fishery": 1300.0, "facility_agri": 1250.0, "roadside": 1200.0}


def _landuse(rows):
    """rows: (id, code, (x0, y0, x1, y1)) in metres from the origin."""
    return gpd.GeoDataFrame(
        {"id": [r[0] for r in rows], "code": [r[1] for r in rows]},
        geometry=[shapely.box(X0 + b[0], Y0 + b[1], X0 + b[2], Y0 + b[3]) for _, _, b in rows],
        crs=CRS)


def _zones(level1_box):
    b = level1_box
    return gpd.GeoDataFrame({"name": ["一级管控区"], "level": ["level1"]},
                            geometry=[shapely.box(X0 + b[0], Y0 + b[1], X0 + b[2], Y0 + b[3])],
                            crs=CRS)


def test_one_hectare_pond_at_a_given_density_gives_the_capacity_exactly():
    lu = _landuse([("P1", "1104", (0, 0, 100, 100))])
    params = ground_params(density_kwp_m2={"fishery": 0.08}, usable_share={"fishery": 0.7})
    g = ground_potential(lu, params=params, yields=YIELDS)
    row = g.iloc[0]
    assert row["area_m2"] == pytest.approx(10_000.0)  # 1 ha
    assert row["usable_area_m2"] == pytest.approx(10_000.0 * 0.7)
    assert row["capacity_kwp"] == pytest.approx(10_000.0 * 0.08 * 0.7)  # 560 kWp
    assert row["annual_kwh"] == pytest.approx(560.0 * 1300.0)
    assert row["reason"] == "" and row["kind"] == "fishery"


def test_default_density_follows_the_winter_solstice_spacing():
    lu = _landuse([("P1", "1104A", (0, 0, 200, 200))])
    g = ground_potential(lu, yields=YIELDS)
    lat = gpd.GeoSeries([shapely.Point(X0 + 100, Y0 + 100)], crs=CRS).to_crs(4326).y.iloc[0]
    expected = solstice_gcr(lat, 25.0) * 0.215
    assert g.loc[0, "density_kwp_m2"] == pytest.approx(expected, rel=1e-3)
    assert g.loc[0, "capacity_kwp"] == pytest.approx(40_000 * 0.7 * g.loc[0, "density_kwp_m2"])
    d = densities(ground_params(roadside_width_m=4.6), latitude=39.1, module_efficiency=0.2)
    assert d["roadside"] == pytest.approx(2.3 / 4.6 * 0.2)
    assert d["facility_agri"] == pytest.approx(0.4 * 0.2)  # capped for the crops below


def test_setback_shrinks_the_site_before_the_usable_share():
    lu = _landuse([("F1", "1202", (0, 0, 100, 50))])
    params = ground_params(setback_m={"facility_agri": 5.0}, density_kwp_m2={"facility_agri": 0.05})
    row = ground_potential(lu, params=params, yields=YIELDS).iloc[0]
    assert row["setback_area_m2"] == pytest.approx(90 * 40)
    assert row["usable_area_m2"] == pytest.approx(90 * 40 * 0.5)
    assert row["capacity_kwp"] == pytest.approx(90 * 40 * 0.5 * 0.05)


def test_roadside_strip_along_the_inside_edge_of_a_road_parcel():
    lu = _landuse([("R1", "1003", (0, 0, 200, 20)), ("R2", "1004", (0, 100, 200, 108))])
    g = ground_potential(lu, params=ground_params(roadside_width_m=5.0), yields=YIELDS)
    wide = g.set_index("parcel_id").loc["R1"]
    assert wide["area_m2"] == pytest.approx(200 * 20 - 190 * 10)  # a 5 m ring inside the parcel
    assert wide["usable_area_m2"] == pytest.approx((200 * 20 - 190 * 10) * 0.8)
    narrow = g.set_index("parcel_id").loc["R2"]
    assert narrow["reason"] == REASONS[2] and narrow["capacity_kwp"] == 0


def test_level1_forest_and_cropland_are_excluded_by_default():
    lu = _landuse([("P1", "1104", (0, 0, 100, 100)), ("P2", "1104", (300, 0, 400, 100)),
                   ("W1", "0301", (0, 200, 400, 260)), ("C1", "0101", (0, 300, 400, 360))])
    zones = _zones((-10, -10, 150, 150))
    g = ground_potential(lu, zones=zones, yields=YIELDS).set_index("parcel_id")
    assert g.loc["P1", "zone"] == "level1" and g.loc["P1", "reason"] == REASONS[1]
    assert g.loc["P1", "capacity_kwp"] == 0
    assert g.loc["P2", "zone"] == "" and g.loc["P2", "capacity_kwp"] > 0
    assert "W1" not in g.index and "C1" not in g.index  # forest and cropland are no candidates
    allowed = ground_potential(lu, zones=zones, yields=YIELDS,
                               params=ground_params(allow_level1=True)).set_index("parcel_id")
    assert allowed.loc["P1", "capacity_kwp"] > 0 and allowed.loc["P1", "reason"] == ""

    # a roads layer through the forest: its strips take nothing there unless allowed
    roads = gpd.GeoDataFrame({"id": ["road-1"]}, geometry=[shapely.LineString(
        [(X0 + 20, Y0 + 230), (X0 + 380, Y0 + 230)])], crs=CRS)
    params = ground_params(roads="roads.gpkg", carriageway_width_m=6.0, roadside_width_m=5.0)
    g = ground_potential(lu, roads=roads, params=params, yields=YIELDS).set_index("parcel_id")
    assert g.loc["road-1", "reason"] == REASONS[3] and g.loc["road-1", "capacity_kwp"] == 0
    g = ground_potential(lu, roads=roads, yields=YIELDS,
                         params=ground_params(roads="roads.gpkg", carriageway_width_m=6.0,
                                              allow_forest=True)).set_index("parcel_id")
    assert g.loc["road-1", "area_m2"] == pytest.approx(2 * 360 * 5)
    assert g.loc["road-1", "capacity_kwp"] > 0


def test_too_small_and_disabled_kinds():
    lu = _landuse([("P1", "1104", (0, 0, 10, 10)), ("F1", "1202", (100, 0, 200, 100))])
    g = ground_potential(lu, yields=YIELDS, params=ground_params(kinds=["fishery"]))
    assert g["parcel_id"].tolist() == ["P1"]
    assert g.loc[0, "reason"] == REASONS[4]


def test_codes_of_the_other_schemes():
    assert kind_of_codes(pd.Series(["1704", "060201", "1207", "0301"]), "ydyh2023").tolist() == [
        "fishery", "facility_agri", "roadside", ""]
    assert kind_of_codes(pd.Series(["landuse=aquaculture", "natural=water"]), "osm").tolist() == [
        "fishery", ""]


def test_ponds_stay_blue_unless_the_switch_is_off():
    lu = _landuse([("P1", "1104", (0, 0, 100, 100))])
    g = ground_potential(lu, params=ground_params(density_kwp_m2={"fishery": 0.08}),
                         yields=YIELDS)
    zone = shapely.box(X0 - 50, Y0 - 50, X0 + 150, Y0 + 150)  # 4 ha holding the pond
    table = pd.DataFrame({"zone": ["Z"], "level": ["level2"], "area_ha": [4.0],
                          "bluegreen_ha": [1.0], "bluegreen_share": [0.25],
                          "geometry": [zone]})
    kept = bluegreen_with_ground(table, g).iloc[0]
    assert kept["pv_over_water_ha"] == pytest.approx(0.7)
    assert kept["bluegreen_ha_with_ground"] == pytest.approx(1.0)
    assert kept["bluegreen_share_with_ground"] == pytest.approx(0.25)
    off = bluegreen_with_ground(table, g, params=ground_params(count_pond_as_water=False)).iloc[0]
    assert off["bluegreen_ha_with_ground"] == pytest.approx(1.0 - 0.7)
    # the classification itself: ponds are blue, whatever the PV
    from gis.landuse import classify

    assert classify(pd.Series(["1104", "1104A"]), "gbt21010")["blue"].all()


def test_ground_is_a_separate_labelled_substitution_scenario():
    entries = [{"id": "renewable-substitution", "target": 0.08, "energy_use_gwh": 100.0,
                "existing_pv_gwh": 1.0, "potential_pv_gwh": 4.0, "value": 0.01,
                "potential_share": 0.05}]
    ground = pd.DataFrame({"annual_kwh": [2e6, 1e6]})
    ground_scenario(entries, ground)
    scen = {s["scenario"]: s for s in entries[0]["scenarios"]}
    assert scen["rooftop only"]["potential_share"] == pytest.approx(0.05)
    assert scen["rooftop + ground"]["potential_share"] == pytest.approx(0.08)
    assert scen["rooftop + ground"]["closable"] and not scen["rooftop only"]["closable"]
    assert entries[0]["value"] == 0.01 and entries[0]["potential_share"] == 0.05


CONTRACT = ["parcel_id", "kind", "zone", "area_m2", "usable_area_m2", "density_kwp_m2",
            "capacity_kwp", "specific_yield_kwh_kwp", "annual_kwh", "reason", "capex_yuan",
            "annual_savings_yuan", "annual_om_yuan", "payback_years", "npv_yuan", "irr",
            "lcoe_yuan_kwh"]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "gis.cli", *map(str, args)],
                          capture_output=True, text=True, encoding="utf-8")


def test_cli_run_on_the_demo_writes_ground_pv_and_finance(demo_dir, tmp_path):
    runfile = demo_dir / "run_ground.toml"
    runfile.write_text((demo_dir / "run.toml").read_text(encoding="utf-8")
                       + "\n[finance]\ndiscount_rate = 0.07\n\n[ground]\nroadside_width_m = 4.0\n",
                       encoding="utf-8")
    out = tmp_path / "out"
    result = _cli("run", runfile, "--out", out, "--offline")
    assert result.returncode == 0, result.stderr
    g = pd.read_csv(out / "ground_pv.csv", dtype={"parcel_id": str, "zone": str, "reason": str})
    g[["zone", "reason"]] = g[["zone", "reason"]].fillna("")
    assert set(CONTRACT) <= set(g.columns)
    assert set(g["kind"]) == {"fishery", "facility_agri", "roadside"}  # the demo has all three
    assert set(g["zone"]) <= {"", "level1", "level2", "level3", "barrier"}
    num = g[g["reason"] == ""]
    assert len(num) and (num["capacity_kwp"] > 0).all()
    assert np.allclose(num["capacity_kwp"], num["usable_area_m2"] * num["density_kwp_m2"])
    assert np.allclose(num["usable_area_m2"], num["setback_area_m2"] * num["usable_share"])
    assert (g.loc[g["zone"] == "level1", "capacity_kwp"] == 0).all()
    gpkg = gpd.read_file(out / "ground_pv.gpkg")
    assert len(gpkg) == len(g) and set(CONTRACT) <= set(gpkg.columns)
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    fin = run["settings"]["finance"]
    assert fin["discount_rate"] == 0.07 and fin["lifetime_years"] == 25
    assert fin["degradation_per_year"] == 0.0055 and fin["export_price_yuan_kwh"] == 0.3655
    assert run["settings"]["ground"]["roadside_width_m"] == 4.0
    # payback of a few sites from the run's stated inputs
    for _, row in num.head(3).iterrows():
        value = float(row["value_yuan_kwh"])
        savings = row["annual_kwh"] * value
        assert row["annual_savings_yuan"] == pytest.approx(savings)
        assert row["payback_years"] == pytest.approx(
            row["capex_yuan"] / (savings - row["annual_om_yuan"]))
    bg = pd.read_csv(out / "bluegreen_ground.csv")
    assert np.allclose(bg["bluegreen_ha"], bg["bluegreen_ha_with_ground"])  # ponds stay blue
    money = {"capex_yuan", "annual_savings_yuan", "annual_om_yuan", "payback_years", "npv_yuan",
             "irr", "lcoe_yuan_kwh"}
    for name in ("sites.csv", "new_building_gap.csv"):
        assert money <= set(pd.read_csv(out / name).columns), name
    assert money <= set(gpd.read_file(out / "buildings_pv.gpkg", rows=1).columns)
    for name in ("ground_by_street.csv", "ground_by_kind.csv", "finance_by_street.csv"):
        assert (out / name).is_file()
    assert "地面光伏与成本收益" in (out / "report.html").read_text(encoding="utf-8")
    ranked = tmp_path / "by_payback.csv"
    result = _cli("sites", out, "--rank-by", "payback_years", "-o", ranked)
    assert result.returncode == 0, result.stderr
    paybacks = pd.read_csv(ranked)["payback_years"].dropna().to_numpy()
    assert len(paybacks) and (np.diff(paybacks) >= 0).all()
    ranked = tmp_path / "ground_by_npv.csv"
    result = _cli("sites", out, "--ground", "--category", "fishery", "--rank-by", "npv_yuan",
                  "-o", ranked)
    assert result.returncode == 0, result.stderr
    listed = pd.read_csv(ranked, dtype={"parcel_id": str})
    assert set(listed["kind"]) == {"fishery"} and (np.diff(listed["npv_yuan"]) <= 0).all()
    assert len(listed) == int(((g["kind"] == "fishery") & (g["capacity_kwp"] > 0)).sum())


def test_roads_layer_from_a_file_in_another_crs(tmp_path):
    from gis.ground import read_roads

    line = gpd.GeoSeries([shapely.LineString([(X0, Y0 + 500), (X0 + 400, Y0 + 500)])], crs=CRS)
    roads = gpd.GeoDataFrame({"id": ["G1"], "width": [10.0]}, geometry=line.to_crs(4326))
    roads.to_file(tmp_path / "roads.gpkg", driver="GPKG")
    read = read_roads(tmp_path / "roads.gpkg", layer=None, crs=CRS)
    lu = _landuse([("P1", "1104", (0, 0, 100, 100))])
    params = ground_params(roads="roads.gpkg", roadside_width_m=5.0,
                           density_kwp_m2={"roadside": 0.1})
    g = ground_potential(lu, roads=read, params=params, yields=YIELDS).set_index("parcel_id")
    # two 5 m strips beyond a 10 m carriageway along 400 m, nothing excluded beside it
    assert g.loc["G1", "area_m2"] == pytest.approx(2 * 400 * 5, rel=1e-4)
    assert g.loc["G1", "capacity_kwp"] == pytest.approx(4000 * 0.8 * 0.1, rel=1e-4)
    with pytest.raises(Exception, match="not found"):
        read_roads(tmp_path / "missing.gpkg", layer=None, crs=CRS)

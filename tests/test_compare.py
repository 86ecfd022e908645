"""Comparing two runs' output folders: targets, zones, sites, parcel classes."""

from __future__ import annotations

import copy
import json

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
from shapely import box

from gis._errors import InputError
from gis.compare import compare_runs, format_comparison, write_comparison_html

SCORECARD = {
    "targets": [
        {"id": "bluegreen-barrier", "measure": "blue-green space share", "where": "barrier",
         "value": 0.60, "target": 0.65, "unit": "share", "met": False, "gap": 25.0,
         "gap_unit": "ha", "basis": "TBDLMJ"},
        {"id": "stock-barrier", "measure": "forest stock volume", "where": "barrier",
         "value": 61_000.0, "target": 60_000.0, "unit": "m3", "met": True, "gap": 0.0,
         "gap_unit": "m3", "basis": "stands"},
    ],
    "meta": {"run": "东丽区", "preset": "dongli-2025"},
}
ZONES = pd.DataFrame({
    "zone": ["<b>屏障</b>", "一级管控区", "barrier", "level1"],
    "level": ["barrier", "level1", "barrier", "level1"],
    "area_ha": [500.0, 100.0, 500.0, 100.0],
    "bluegreen_ha": [300.0, 80.0, 300.0, 80.0],
    "bluegreen_share": [0.60, 0.80, 0.60, 0.80],
    "forest_ha": [100.0, 25.0, 100.0, 25.0],
    "forest_coverage": [0.20, 0.25, 0.20, 0.25],
    "stock_m3": [61_000.0, 9_000.0, 61_000.0, 9_000.0],
})
PARCELS = pd.DataFrame({
    "id": ["P1", "P2", "P3", "P4"],
    "code": ["0301", "0103", "1101", "05H1"],
    "group": ["forest", "farmland", "water", "construction"],
})


def buildings(n: int = 5) -> gpd.GeoDataFrame:
    """``n`` 10 m × 10 m roofs, b1 … bn; capacity 10 kWp per index, 1 200 kWh/kWp."""
    cap = [10.0 * (i + 1) for i in range(n)]
    return gpd.GeoDataFrame(
        {"id": [f"b{i + 1}" for i in range(n)],
         "category": ["industrial"] * n,
         "capacity_kwp": cap,
         "annual_kwh": [c * 1200.0 for c in cap],
         "co2_t": [c * 1200.0 * 0.5366e-3 for c in cap],
         "reason": [""] * n},
        geometry=[box(100 * i, 0, 100 * i + 10, 10) for i in range(n)],
        crs="EPSG:4548",
    )


def write_run(folder, *, scorecard=SCORECARD, zones=ZONES, bldgs=None, parcels=PARCELS):
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps({"name": folder.name, "time": "2025-03-01"}),
                                     encoding="utf-8")
    (folder / "scorecard.json").write_text(json.dumps(scorecard, ensure_ascii=False),
                                           encoding="utf-8")
    zones.to_csv(folder / "zones.csv", index=False)
    parcels.to_csv(folder / "parcels.csv", index=False)
    pyogrio.write_dataframe(buildings() if bldgs is None else bldgs,
                            folder / "buildings_pv.gpkg", layer="buildings_pv")
    return folder


def test_one_parcel_class_and_one_site_exactly(tmp_path):
    a = write_run(tmp_path / "run_a")
    parcels_b = PARCELS.copy()
    parcels_b.loc[1, ["code", "group"]] = ["0301", "forest"]  # P2 farmland -> forest
    b = write_run(tmp_path / "run_b", parcels=parcels_b, bldgs=buildings(6))  # b6 added
    result = compare_runs(a, b)

    assert result["parcels"] == {
        "changed": [{"id": "P2", "code_a": "0103", "code_b": "0301",
                     "group_a": "farmland", "group_b": "forest"}],
        "added": [],
        "removed": [],
    }
    assert result["sites"]["added"] == ["b6"]
    assert result["sites"]["removed"] == []
    assert result["sites"]["changed"] == []
    assert (result["sites"]["count_a"], result["sites"]["count_b"]) == (5, 6)
    assert [t["status"] for t in result["targets"]] == ["same", "same"]
    assert result["zones"]["changed"] == [] and result["zones"]["added"] == []
    # totals follow from the added site: +1 site, +60 kWp, +72 000 kWh
    metrics = {m["name"]: m["change"] for m in result["metrics"]}
    assert metrics.keys() == {"rooftop PV sites (count)", "PV capacity, all sites (kWp)",
                              "PV yield, all sites (kWh/yr)", "CO2 avoided, all sites (t/yr)"}
    assert metrics["rooftop PV sites (count)"] == 1
    assert metrics["PV capacity, all sites (kWp)"] == pytest.approx(60.0)
    assert metrics["PV yield, all sites (kWh/yr)"] == pytest.approx(72_000.0)
    s = result["summary"]
    assert (s["parcels_changed"], s["parcels_added"], s["parcels_removed"]) == (1, 0, 0)
    assert (s["sites_added"], s["sites_removed"], s["sites_changed"]) == (1, 0, 0)
    assert s["targets_changed"] == 0 and s["zones_changed"] == 0 and not s["identical"]
    json.dumps(result)  # plain JSON types

    text = format_comparison(result)
    assert "P2" in text and "0103" in text and "0301" in text and "farmland" in text
    assert "added (1): b6" in text
    assert "[" not in text  # prints unchanged through rich markup


def test_identical_runs(tmp_path):
    a = write_run(tmp_path / "a")
    b = write_run(tmp_path / "b")
    result = compare_runs(a / "run.json", b)  # run.json or its folder
    assert result["summary"]["identical"]
    assert result["metrics"] == []
    assert "No differences found." in format_comparison(result)


def test_targets_zones_and_removed_or_changed_sites(tmp_path):
    a = write_run(tmp_path / "a")
    card = copy.deepcopy(SCORECARD)
    card["targets"][0].update(value=0.66, met=True, gap=0.0)
    zones = ZONES.copy()
    zones.loc[0, ["bluegreen_ha", "bluegreen_share"]] = [330.0, 0.66]
    bldgs = buildings()
    bldgs.loc[0, ["capacity_kwp", "annual_kwh", "reason"]] = [0.0, 0.0, "roof too small"]
    bldgs.loc[2, "annual_kwh"] = 30_000.0  # b3 shaded now
    bldgs.loc[3, "category"] = "commercial"
    bldgs = bldgs.drop(index=4)  # b5 deleted from the layer
    b = write_run(tmp_path / "b", scorecard=card, zones=zones, bldgs=bldgs)
    result = compare_runs(a, b)

    blue = result["targets"][0]
    assert blue["status"] == "changed"
    assert blue["value_change"] == pytest.approx(0.06)
    assert (blue["met_a"], blue["met_b"]) == (False, True)
    assert blue["gap_change"] == pytest.approx(-25.0)
    assert result["targets"][1]["status"] == "same"
    assert result["summary"]["targets_newly_met"] == 1

    (zone,) = result["zones"]["changed"]
    assert (zone["zone"], zone["level"]) == ("<b>屏障</b>", "barrier")
    assert zone["bluegreen_ha_change"] == pytest.approx(30.0)
    assert zone["bluegreen_share_change"] == pytest.approx(0.06)
    assert zone["area_ha_change"] == 0.0

    sites = result["sites"]
    assert sites["added"] == []
    assert sites["removed"] == ["b1", "b5"]
    assert sites["removed_reason"] == {"b1": "roof too small", "b5": "not in the buildings layer"}
    changed = {s["id"]: s for s in sites["changed"]}
    assert changed.keys() == {"b3", "b4"}
    assert changed["b3"]["annual_kwh_change"] == pytest.approx(30_000.0 - 36_000.0)
    assert (changed["b4"]["category_a"], changed["b4"]["category_b"]) == ("industrial",
                                                                          "commercial")
    assert result["parcels"]["changed"] == []

    text = format_comparison(result)
    assert "60.0 %" in text and "66.0 %" in text and "+6.0 pp" in text
    page = write_comparison_html(result, tmp_path / "compare.html").read_text(encoding="utf-8")
    assert "&lt;b&gt;屏障&lt;/b&gt;" in page and "<b>屏障" not in page
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert "roof too small" in page


def test_rounding_noise_is_not_a_change(tmp_path):
    a = write_run(tmp_path / "a")
    bldgs = buildings()
    bldgs["annual_kwh"] = bldgs["annual_kwh"] * (1 + 1e-9)
    b = write_run(tmp_path / "b", bldgs=bldgs)
    assert compare_runs(a, b)["summary"]["identical"]


def test_missing_parts_and_folders(tmp_path):
    a = write_run(tmp_path / "a")
    b = tmp_path / "b"
    b.mkdir()
    (b / "parcels.csv").write_text(PARCELS.to_csv(index=False), encoding="utf-8")
    result = compare_runs(a, b)
    assert result["targets"] is None and result["sites"] is None
    assert result["missing"]["b"] == ["scorecard.json", "zones.csv", "buildings_pv.gpkg"]
    assert "buildings_pv.gpkg missing in run B" in format_comparison(result)
    with pytest.raises(InputError, match="gis-planner run RUNFILE") as info:
        compare_runs(tmp_path / "nope", tmp_path / "empty_missing")
    assert len(info.value.errors) == 2

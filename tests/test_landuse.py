"""Land-use classification: code table, normalisation, flags, options, OSM, unknown codes."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from gis._errors import InputError
from gis.landuse import (
    EcologyOptions,
    classify,
    classify_layer,
    classify_osm,
    code_problems,
    ecology_options,
    flatten_overlaps,
    load_code_table,
    normalise_codes,
    species_group,
    unknown_codes,
)

CRS = "EPSG:4548"
X0, Y0 = 500_000.0, 4_320_000.0


def box(x0, y0, x1, y1):
    return shapely.box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def test_code_table_schemes():
    gb = load_code_table("gbt21010")
    assert {"0301", "0307K", "1104A", "05H1", "08H2A", "1203"} <= set(gb["code"])
    # the 0601 collision: industrial land in the survey, rural road in 用地用海
    yd = load_code_table("ydyh2023").set_index("code")
    assert gb.set_index("code").loc["0601", "name_en"] == "industrial"
    assert yd.loc["0601", "name_zh"] == "农村道路"
    assert set(load_code_table()["scheme"]) == {"gbt21010", "ydyh2023", "worldcover", "osm"}
    with pytest.raises(InputError, match="unknown land-use scheme"):
        load_code_table("corine")


def test_normalisation_of_dbf_and_messy_codes():
    codes = pd.Series(["301.0", " 0307k ", 301.0, 1101, "05h1", "08H2A", 9, "0301X", "abc"],
                      index=[10, 11, 12, 13, 14, 15, 16, 17, 18])
    with pytest.warns(UserWarning, match="0301X→0301"):
        out = classify(codes, "gbt21010")
    assert out.index.equals(codes.index)
    assert out["code"].tolist() == ["0301", "0307K", "0301", "1101", "05H1", "08H2A", "09",
                                    "0301X", "ABC"]
    assert out["class_code"].tolist()[:8] == ["0301", "0307K", "0301", "1101", "05H1", "08H2A",
                                              "09", "0301"]
    assert out["known"].tolist() == [True] * 8 + [False]
    assert out["forest"].tolist() == [True, False, True, False, False, False, False, True, False]
    # ydyh2023 six-digit sub-codes fall back to their parent class
    yd = normalise_codes(pd.Series(["060101", "1401"]), "ydyh2023")
    assert yd["class_code"].tolist() == ["0601", "1401"]
    assert yd["fallback"].tolist() == [True, False]


def test_classify_flags_broad_narrow_and_index_alignment():
    codes = pd.Series(["0301", "0307", "0103", "0201", "1101", "0701", "1203", "0404"],
                      index=list("hgfedcba"))
    broad = classify(codes, "gbt21010")
    narrow = classify(codes, "gbt21010", options=EcologyOptions(bluegreen="narrow"))
    assert broad.index.equals(codes.index) and narrow.index.equals(codes.index)
    assert broad["bluegreen"].tolist() == [True, True, True, True, True, False, True, True]
    assert narrow["bluegreen"].tolist() == [True, True, False, False, True, False, False, True]
    # 0307 other forest land: green, not forest, in the pipeline, a candidate
    assert broad.loc["g", ["forest", "pipeline", "candidate", "green"]].tolist() == [
        False, True, True, True]
    assert broad["group"].tolist() == ["forest", "green", "cropland", "green", "blue",
                                       "construction", "other", "green"]
    # cropland is green under the broad definition only, never a candidate by default
    assert broad.loc["f", "green"] and not narrow.loc["f", "green"]
    assert not broad.loc["f", "candidate"]
    assert classify(codes, "gbt21010", options=EcologyOptions(include_cropland_candidates=True)
                    ).loc["f", "candidate"]


def test_switches_and_removal_candidates():
    codes = pd.Series(["0201", "0601", "0601", "1203"])
    removal = pd.Series([False, True, False, False])
    base = classify(codes, "gbt21010", removal=removal)
    assert base["forest"].tolist() == [False, False, False, False]
    assert base["candidate"].tolist() == [False, True, False, False]
    opts = ecology_options(switches={"0201:forest": True, "1203": False},
                           include_removal_candidates=False)
    sw = classify(codes, "gbt21010", options=opts, removal=removal)
    assert sw["forest"].tolist() == [True, False, False, False]
    assert sw["bluegreen"].tolist() == [True, False, False, False]  # 1203 switched off
    assert sw["candidate"].tolist() == [False, False, False, False]


def test_options_reject_unknown_keys_all_at_once():
    with pytest.raises(InputError) as exc:
        ecology_options(bluegreen="wide", colour="red", switches={"0301": True},
                        default_stock_m3_ha={"arbor": -1})
    cols = {p.column for p in exc.value.problems}
    assert {"ecology.colour", "ecology.bluegreen", "ecology.switches.0301",
            "ecology.default_stock_m3_ha.arbor"} <= cols
    opts = ecology_options(default_stock_m3_ha={"arbor": 80}, carbon_factors={"poplar": {"bef": 2}})
    assert opts.default_stock_m3_ha == {"arbor": 80.0, "bamboo": 0.0, "shrub": 0.0}
    assert opts.carbon_factors["poplar"]["bef"] == 2.0
    assert opts.carbon_factors["poplar"]["root_shoot"] == 0.227


def test_unknown_codes_with_counts_and_area():
    codes = pd.Series(["0301", "9999", "9999", "", None, "0404"])
    areas = pd.Series([1e4, 2e4, 3e4, 5e3, 5e3, 1e4])
    table = unknown_codes(codes, "gbt21010", areas_m2=areas)
    assert table["code"].tolist() == ["9999", "<empty>"]
    assert table["parcels"].tolist() == [2, 2]
    assert table["area_ha"].tolist() == pytest.approx([5.0, 1.0], abs=1e-12)
    probs = code_problems(codes, "gbt21010", areas_m2=areas, file="landuse.shp")
    assert len(probs) == 2 and all(p.severity == "warning" for p in probs)
    assert "2 parcels, 5.00 ha" in probs[0].message and probs[0].value == "9999"


def test_user_csv_scheme(tmp_path):
    csv = tmp_path / "codes.csv"
    csv.write_text("code,name_zh,name_en,blue,green,bg_broad,bg_narrow,forest,candidate_afforest\n"
                   "F,林,forest,0,1,1,1,1,0\nW,水,water,1,0,1,1,0,0\n", encoding="utf-8")
    out = classify(pd.Series(["f", "W", "X"]), csv)
    assert out["forest"].tolist() == [True, False, False]
    assert out["blue"].tolist() == [False, True, False]
    assert out["known"].tolist() == [True, True, False]
    bad = tmp_path / "bad.csv"
    bad.write_text("code,name_zh\nF,林\n", encoding="utf-8")
    with pytest.raises(InputError, match="missing column"):
        load_code_table(bad)


def test_worldcover_codes_and_species_groups():
    out = classify(pd.Series([10, 80.0, "40", 50]), "worldcover")
    assert out["forest"].tolist() == [True, False, False, False]
    assert out["forest_proxy"].tolist() == [True, False, False, False]
    assert out["group"].tolist() == ["forest", "blue", "cropland", "construction"]
    groups = species_group(pd.Series(["毛白杨", "垂柳", "刺槐", "白蜡", "油松", "侧柏", "银杏", None]))
    assert groups.tolist() == ["poplar", "willow", "hard_broadleaf", "hard_broadleaf", "pine",
                               "cypress", "broadleaf", "broadleaf"]


def test_osm_tags_and_flatten_overlaps():
    gdf = gpd.GeoDataFrame(
        {"leisure": ["park", None, None], "natural": [None, "water", None],
         "landuse": [None, None, "forest"], "water": [None, "pond", None]},
        geometry=[box(0, 0, 100, 100), box(20, 20, 40, 40), box(50, 0, 150, 100)], crs=CRS)
    codes = classify_osm(gdf)
    assert codes.tolist() == ["leisure=park", "natural=water", "landuse=forest"]
    layer = classify_layer(gdf, "osm")
    flat = flatten_overlaps(layer)
    areas = flat.geometry.area.groupby(flat["group"]).sum()
    # water (4 ares) beats the park; forest beats the park on their 50 m × 100 m overlap
    assert areas["blue"] == pytest.approx(400.0, abs=1e-9)
    assert areas["forest"] == pytest.approx(10_000.0, abs=1e-9)
    assert areas["green"] == pytest.approx(10_000.0 - 400.0 - 5_000.0, abs=1e-9)
    assert flat.geometry.area.sum() == pytest.approx(shapely.union_all(gdf.geometry).area)
    # same-class overlaps are removed too
    two = gpd.GeoDataFrame({"group": ["green", "green"]},
                           geometry=[box(0, 0, 100, 100), box(50, 0, 150, 100)], crs=CRS)
    assert flatten_overlaps(two).geometry.area.sum() == pytest.approx(15_000.0)

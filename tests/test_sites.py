"""Site selection, ranking and exports (CSV, Excel, GeoPackage with QGIS style, GeoJSON, GeoParquet)."""

from __future__ import annotations

import json
import sqlite3
from xml.etree import ElementTree as ET

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pyogrio
import pytest
from pyproj import Transformer
from shapely import box

from gis._errors import InputError
from gis.sites import export, select_sites, sites_from_run

X0, Y0 = 500_000.0, 4_330_000.0  # EPSG:4548 false easting = central meridian 117°E


@pytest.fixture
def pv() -> gpd.GeoDataFrame:
    """Six buildings: 50 m × 50 m roofs in a row, the first centred on the central meridian."""
    ids = ["b1", "b2", "b3", "b4", "b5", "b6"]
    geoms = [box(X0 - 25 + 100 * i, Y0 - 25, X0 + 25 + 100 * i, Y0 + 25) for i in range(6)]
    return gpd.GeoDataFrame(
        {
            "id": ids,
            "category": ["government", "industrial", "public", "residential", "industrial",
                         "commercial"],
            "street": ["金桥街", "无瑕街", "金桥街", "无瑕街", "金桥街", "华明镇"],
            "name": ["区政府", "厂房甲", "学校", "住宅", "厂房乙", "商场"],
            "capacity_kwp": [10.0, 50.0, 0.0, 20.0, 50.0, 30.0],
            "specific_yield_kwh_kwp": [1200.0, 1200.0, 1250.0, 1300.0, 1200.0, 1100.0],
            "annual_kwh": [12_000.0, 60_000.0, 0.0, 26_000.0, 60_000.0, 33_000.0],
            "pv_kw": [0.0, 5.0, 0.0, np.nan, 0.0, 0.0],
            "is_new": [True, False, True, False, True, False],
            "reason": ["", "", "roof too small", "", "", ""],
        },
        geometry=geoms,
        index=[10, 11, 12, 13, 14, 15],
        crs="EPSG:4548",
    )


def ranked_ids(gdf: gpd.GeoDataFrame) -> list[str]:
    return gdf["id"].tolist()


# ---- selection ------------------------------------------------------------------------------


def test_ranking_by_yield_breaks_ties_by_id_and_keeps_index(pv):
    sites = select_sites(pv)
    # b3 has no capacity; b2 and b5 tie on 60 000 kWh -> id order
    assert ranked_ids(sites) == ["b2", "b5", "b6", "b4", "b1"]
    assert sites["rank"].tolist() == [1, 2, 3, 4, 5]
    assert sites.columns[0] == "rank"
    assert sites.index.tolist() == [11, 14, 15, 13, 10]


def test_ranking_keys(pv):
    assert ranked_ids(select_sites(pv, rank_by="capacity_kwp")) == ["b2", "b5", "b6", "b4", "b1"]
    assert ranked_ids(select_sites(pv, rank_by="specific_yield_kwh_kwp")) == [
        "b4", "b1", "b2", "b5", "b6"]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"street": "金桥街"}, ["b5", "b1"]),
        ({"street": ["金桥街", "华明镇"]}, ["b5", "b6", "b1"]),
        ({"category": ["industrial", "commercial"]}, ["b2", "b5", "b6"]),
        ({"category": "government"}, ["b1"]),
        ({"min_kwp": 30}, ["b2", "b5", "b6"]),
        ({"new_only": True}, ["b5", "b1"]),
        ({"without_pv": True}, ["b5", "b6", "b4", "b1"]),
        ({"top": 2}, ["b2", "b5"]),
        ({"street": "金桥街", "without_pv": True, "top": 1}, ["b5"]),
    ],
)
def test_filters(pv, kwargs, expected):
    sites = select_sites(pv, **kwargs)
    assert ranked_ids(sites) == expected
    assert sites["rank"].tolist() == list(range(1, len(expected) + 1))


def test_selection_does_not_touch_the_input(pv):
    before = pv.copy()
    select_sites(pv, street="金桥街", top=1)
    pd.testing.assert_frame_equal(pv, before)
    assert "rank" not in pv.columns


def test_bad_filters_listed_together_with_valid_values(pv):
    with pytest.raises(InputError) as info:
        select_sites(pv, street="东丽湖", category="school", rank_by="kwh", top=0, min_kwp=-1)
    text = str(info.value)
    assert len(info.value.errors) == 5
    assert "华明镇, 无瑕街, 金桥街" in text
    assert "government, public, commercial, industrial, residential, rural_residential, other" in text
    assert "annual_kwh, capacity_kwp, specific_yield_kwh_kwp" in text


# ---- exports --------------------------------------------------------------------------------

META = {
    "run": "东丽区 2025",
    "time": "2025-03-01T09:30:00",
    "parameters": {"pv": {"preset": "base"}, "grid_co2_t_per_mwh": 0.5366},
    "definitions": {"annual_kwh": "capacity × specific yield × shading factor"},
}


def test_csv_has_bom_and_reads_back_equal(pv, tmp_path):
    sites = select_sites(pv)
    path = export(sites, tmp_path / "sites.csv", meta=META)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    back = pd.read_csv(path, encoding="utf-8-sig")
    assert back.columns.tolist() == [c for c in sites.columns if c != "geometry"] + ["lon", "lat"]
    assert back["id"].tolist() == sites["id"].tolist()
    assert back["name"].tolist() == ["厂房甲", "厂房乙", "商场", "住宅", "区政府"]
    for col in ("capacity_kwp", "annual_kwh", "specific_yield_kwh_kwp", "pv_kw"):
        np.testing.assert_array_equal(back[col].to_numpy(), sites[col].to_numpy())
    assert back["rank"].tolist() == [1, 2, 3, 4, 5]
    # b1 is centred on the central meridian 117°E; latitudes agree with pyproj
    assert back.loc[back["id"] == "b1", "lon"].item() == pytest.approx(117.0, abs=1e-7)
    lon, lat = Transformer.from_crs(4548, 4326, always_xy=True).transform(X0 + 100, Y0)
    b2 = back.loc[back["id"] == "b2"]
    assert b2["lon"].item() == pytest.approx(lon, abs=2e-7)
    assert b2["lat"].item() == pytest.approx(lat, abs=2e-7)
    # deterministic: the same list gives the same bytes
    again = export(sites, tmp_path / "again.csv", meta=META)
    assert again.read_bytes() == raw


def test_excel_types_headers_chinese_and_metadata(pv, tmp_path):
    sites = select_sites(pv)
    path = export(sites, tmp_path / "sites.xlsx", meta=META)
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["sites", "metadata"]
    ws = wb["sites"]
    header = [c.value for c in ws[1]]
    assert "capacity [kWp] / 装机容量" in header
    assert "annual yield [kWh] / 年发电量" in header
    assert "longitude [°E, WGS84] / 经度" in header
    col = {h.split(" / ")[0]: i + 1 for i, h in enumerate(header)}
    cap = ws.cell(row=2, column=col["capacity [kWp]"])
    assert cap.value == 50.0 and not isinstance(cap.value, str)
    assert cap.number_format == "#,##0.0"
    kwh = ws.cell(row=4, column=col["annual yield [kWh]"])
    assert kwh.value == 33_000.0 and kwh.number_format == "#,##0"
    assert ws.cell(row=2, column=col["rank"]).value == 1
    assert ws.cell(row=2, column=col["name"]).value == "厂房甲"
    assert ws.cell(row=2, column=col["street"]).value == "无瑕街"
    # missing installed PV (b4, rank 4) is an empty cell, not "nan"
    assert ws.cell(row=5, column=col["installed PV [kW]"]).value is None
    assert ws.cell(row=6, column=col["longitude [°E, WGS84]"]).value == pytest.approx(117.0,
                                                                                      abs=1e-7)
    assert ws.cell(row=2, column=col["new building"]).value is False
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == f"A1:{openpyxl.utils.get_column_letter(len(header))}6"
    assert ws.max_row == 6
    assert ws.column_dimensions["A"].width >= 8
    info = {r[0]: r[1] for r in wb["metadata"].iter_rows(min_row=2, values_only=True)}
    assert info["run"] == "东丽区 2025"
    assert info["time"] == "2025-03-01T09:30:00"
    assert info["parameters.pv.preset"] == "base"
    assert info["parameters.grid_co2_t_per_mwh"] == 0.5366
    assert info["definitions.annual_kwh"].startswith("capacity × specific yield")
    assert info["rows"] == 5


def _styles(path) -> list[tuple]:
    with sqlite3.connect(path) as con:
        return con.execute(
            "SELECT f_table_name, f_geometry_column, styleName, styleQML, styleSLD, useAsDefault "
            "FROM layer_styles"
        ).fetchall()


def test_geopackage_readable_with_embedded_qgis_style(pv, tmp_path):
    sites = select_sites(pv)
    path = export(sites, tmp_path / "sites.gpkg", meta=META)
    layers = dict(pyogrio.list_layers(path).tolist())
    assert layers == {"sites": "Polygon", "layer_styles": None}
    back = pyogrio.read_dataframe(path, layer="sites")
    assert back.crs.to_epsg() == 4548
    assert back["id"].tolist() == sites["id"].tolist()
    assert back["name"].tolist() == sites["name"].tolist()
    np.testing.assert_allclose(back.geometry.area, 2500.0)  # 50 m × 50 m roofs
    rows = _styles(path)
    assert len(rows) == 1
    table, geom_col, style_name, qml, sld, default = rows[0]
    with sqlite3.connect(path) as con:
        (geom_in_file,) = con.execute(
            "SELECT column_name FROM gpkg_geometry_columns WHERE table_name='sites'").fetchone()
        kinds = dict(con.execute("SELECT table_name, data_type FROM gpkg_contents").fetchall())
    assert (table, geom_col, style_name, default) == ("sites", geom_in_file, "sites", 1)
    assert kinds == {"sites": "features", "layer_styles": "attributes"}
    root = ET.fromstring(qml.split("\n", 1)[1])
    renderer = root.find("renderer-v2")
    assert renderer.get("type") == "graduatedSymbol"
    assert renderer.get("attr") == "annual_kwh"
    ranges = renderer.findall("ranges/range")
    assert float(ranges[0].get("lower")) == 12_000.0
    assert float(ranges[-1].get("upper")) == 60_000.0
    assert len(renderer.findall("symbols/symbol")) == len(ranges)
    assert "annual_kwh" in sld


def test_afforestation_geopackage_is_styled_on_rank(tmp_path):
    parcels = gpd.GeoDataFrame(
        {"id": ["p1", "p2", "p3"], "code": ["0103", "1202", "0404"],
         "class_name": ["旱地", "裸土地", "其他草地"], "zone": ["一级管控区"] * 3,
         "area_ha": [1.0, 4.0, 0.25], "suitability": [0.9, 0.7, 0.5], "rank": [1, 2, 3],
         "cumulative_ha": [1.0, 5.0, 5.25], "target_id": ["forest-level1"] * 3},
        geometry=[box(0, 0, 100, 100), box(200, 0, 400, 200), box(500, 0, 550, 50)],
        crs="EPSG:4548",
    )
    path = export(parcels, tmp_path / "afforestation.gpkg", kind="afforestation")
    (row,) = _styles(path)
    assert row[0] == "afforestation"
    renderer = ET.fromstring(row[3].split("\n", 1)[1]).find("renderer-v2")
    assert renderer.get("attr") == "rank"
    back = pyogrio.read_dataframe(path, layer="afforestation")
    assert back["code"].tolist() == ["0103", "1202", "0404"]  # codes stay text
    np.testing.assert_allclose(back.geometry.area / 10_000, [1.0, 4.0, 0.25])
    xlsx = export(parcels, tmp_path / "afforestation.xlsx", kind="afforestation")
    ws = openpyxl.load_workbook(xlsx)["afforestation"]
    header = [c.value for c in ws[1]]
    assert "area [ha] / 面积" in header
    assert ws.cell(row=3, column=header.index("area [ha] / 面积") + 1).value == 4.0
    assert ws.cell(row=2, column=header.index("land-use code / 地类编码") + 1).value == "0103"


def test_geojson_is_wgs84(pv, tmp_path):
    sites = select_sites(pv)
    path = export(sites, tmp_path / "sites.geojson")
    doc = json.loads(path.read_text(encoding="utf-8"))
    first = doc["features"][-1]  # rank 5 = b1, centred on 117°E
    assert first["properties"]["id"] == "b1"
    assert first["properties"]["name"] == "区政府"
    xs = [p[0] for p in first["geometry"]["coordinates"][0]]
    assert np.mean(xs[:4]) == pytest.approx(117.0, abs=1e-6)
    back = pyogrio.read_dataframe(path)
    assert back.crs.to_epsg() == 4326
    assert export(sites, tmp_path / "b.geojson").read_bytes() == path.read_bytes()


def test_geoparquet_round_trip(pv, tmp_path):
    sites = select_sites(pv)
    back = gpd.read_parquet(export(sites, tmp_path / "sites.parquet"))
    assert back.crs.to_epsg() == 4548
    assert back["id"].tolist() == sites["id"].tolist()
    assert back.geometry.geom_equals(sites.geometry.reset_index(drop=True)).all()


def test_unknown_suffix_lists_supported(pv, tmp_path):
    with pytest.raises(InputError, match=r"\.csv, \.xlsx, \.gpkg, \.geojson, \.parquet"):
        export(pv, tmp_path / "sites.shp")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_previous_file(pv, tmp_path, monkeypatch):
    path = export(select_sites(pv), tmp_path / "sites.gpkg")
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pyogrio, "write_dataframe", broken)
    with pytest.raises(OSError, match="disk full"):
        export(select_sites(pv, top=1), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["sites.gpkg"]


def test_sites_from_run(pv, tmp_path):
    with pytest.raises(InputError, match="gis-planner run RUNFILE"):
        sites_from_run(tmp_path)
    pyogrio.write_dataframe(pv, tmp_path / "buildings_pv.gpkg", layer="buildings_pv")
    back = sites_from_run(tmp_path)
    assert back["id"].tolist() == pv["id"].tolist()
    assert ranked_ids(select_sites(back, top=3)) == ["b2", "b5", "b6"]

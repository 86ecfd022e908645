"""QGIS styles in every GeoPackage of a run, and the QGIS project that opens them.

The plain tests read ``layer_styles`` with sqlite3 and parse the QML; the PyQGIS tests open the
files in QGIS itself (Debian's ``python3-qgis``, run with /usr/bin/python3 in a subprocess) and
are skipped where it is not installed.
"""

from __future__ import annotations

import sqlite3
import zipfile
from pathlib import Path
from xml.etree import ElementTree as ET

import geopandas as gpd
import numpy as np
import pytest
import qgis_check
import shapely

from gis import sites, styles
from gis.targets import load_targets

CRS = "EPSG:4548"
X0, Y0 = 534000.0, 4331000.0


def _boxes(n: int, size: float = 20.0) -> np.ndarray:
    x = X0 + np.arange(n) * (size + 5)
    return shapely.box(x, Y0, x + size, Y0 + size)


def _write(gdf: gpd.GeoDataFrame, path: Path, layer: str, mode: str = "w") -> None:
    gdf.to_file(path, layer=layer, driver="GPKG", mode=mode)


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> Path:
    """An output folder with every GeoPackage a run writes, at toy size, styled."""
    folder = tmp_path_factory.mktemp("styled")
    n = 10
    pv = gpd.GeoDataFrame({
        "id": [f"B{i}" for i in range(n)], "category": ["industrial"] * n,
        "capacity_kwp": np.arange(1, n + 1) * 10.0, "annual_kwh": np.arange(1, n + 1) * 1000.0,
        "specific_yield_kwh_kwp": np.full(n, 1300.0)}, geometry=_boxes(n), crs=CRS)
    _write(pv, folder / "buildings_pv.gpkg", "buildings_pv")
    sites.export(pv.assign(rank=np.arange(1, n + 1)), folder / "sites.gpkg", kind="sites")
    zones = gpd.GeoDataFrame({"zone": ["屏障", "一级", "片区"], "level": ["barrier", "level1",
                                                                       "subzone"],
                              "bluegreen_share": [0.5, 0.7, 0.9]},
                             geometry=_boxes(3, 500), crs=CRS)
    _write(zones, folder / "zones.gpkg", "zones")
    parcels = gpd.GeoDataFrame({"id": ["p1", "p2", "p3"], "rank": [1, 2, 3],
                                "area_ha": [1.0, 2.0, 3.0]}, geometry=_boxes(3, 100), crs=CRS)
    sites.export(parcels, folder / "afforestation.gpkg", kind="afforestation")
    planes = gpd.GeoDataFrame({
        "building_id": ["B0", "B0", "B1"], "plane_id": [0, 1, 0], "tilt": [30.0, 30.0, 0.0],
        "azimuth": [180.0, 0.0, 180.0], "area_m2": [50.0, 50.0, 80.0],
        "usable_area_m2": [40.0, 0.0, 60.0], "capacity_kwp": [8.0, 0.0, 12.0],
        "specific_yield_kwh_kwp": [1400.0, 800.0, 1250.0], "shading_factor": [1.0, 0.9, 0.95],
        "annual_kwh": [11200.0, 0.0, 14250.0]}, geometry=_boxes(3, 8), crs=CRS)
    _write(planes, folder / "roof_planes.gpkg", "roof_planes")
    ground = gpd.GeoDataFrame({"parcel_id": ["g1", "g2"], "kind": ["fishery", "roadside"],
                               "capacity_kwp": [500.0, 40.0], "annual_kwh": [6e5, 5e4],
                               "reason": ["", ""]}, geometry=_boxes(2, 80), crs=CRS)
    _write(ground, folder / "ground_pv.gpkg", "ground_pv")
    patches = gpd.GeoDataFrame({"patch_id": [1, 2, 3, 4], "area_ha": [5.0, 1.0, 2.0, 8.0],
                                "dpc": [10.0, 1.0, 3.0, 40.0]}, geometry=_boxes(4, 60), crs=CRS)
    _write(patches, folder / "patches.gpkg", "patches")
    lines = gpd.GeoDataFrame({"cost": [100.0, 250.0], "length": [300.0, 420.0]},
                             geometry=shapely.linestrings([[(X0, Y0), (X0 + 300, Y0)],
                                                           [(X0, Y0), (X0, Y0 + 420)]]),
                             crs=CRS)
    _write(lines, folder / "corridors.gpkg", "corridors")
    _write(parcels[["id", "geometry"]], folder / "corridors.gpkg", "gaps", mode="a")
    styles.style_outputs(folder, targets=load_targets("dongli-2025"), title="示例 test")
    return folder


def _styles(path: Path) -> dict[str, tuple]:
    with sqlite3.connect(path) as con:
        rows = con.execute("SELECT f_table_name, f_geometry_column, styleQML, styleSLD, "
                           "useAsDefault FROM layer_styles").fetchall()
        kinds = dict(con.execute("SELECT table_name, data_type FROM gpkg_contents").fetchall())
    assert kinds["layer_styles"] == "attributes"
    names = [r[0] for r in rows]
    assert len(names) == len(set(names)), f"one style per layer in {path.name}: {names}"
    return {r[0]: r[1:] for r in rows}


def _renderer(qml: str) -> ET.Element:
    return ET.fromstring(qml.split("\n", 1)[1]).find("renderer-v2")


EXPECTED = {  # file: layer → (renderer, field)
    "buildings_pv.gpkg": {"buildings_pv": ("graduatedSymbol", "annual_kwh")},
    "sites.gpkg": {"sites": ("graduatedSymbol", "annual_kwh")},
    "zones.gpkg": {"zones": ("graduatedSymbol", "bluegreen_share")},
    "afforestation.gpkg": {"afforestation": ("graduatedSymbol", "rank")},
    "roof_planes.gpkg": {"roof_planes": ("graduatedSymbol", "specific_yield_kwh_kwp")},
    "ground_pv.gpkg": {"ground_pv": ("categorizedSymbol", "kind")},
    "patches.gpkg": {"patches": ("graduatedSymbol", "dpc")},
    "corridors.gpkg": {"corridors": ("graduatedSymbol", "cost"), "gaps": ("singleSymbol", None)},
}


def test_every_layer_has_one_default_style_on_its_figure(outputs):
    assert sorted(p.name for p in outputs.glob("*.gpkg")) == sorted(EXPECTED)
    for name, layers in EXPECTED.items():
        rows = _styles(outputs / name)
        assert set(rows) == set(layers)
        for layer, (kind, field) in layers.items():
            geom_col, qml, sld, default = rows[layer]
            assert default == 1 and geom_col == "geom"
            renderer = _renderer(qml)
            assert renderer.get("type") == kind, (name, layer)
            assert renderer.get("attr") == field
            if field:
                assert field in sld


def _props(symbol: ET.Element) -> dict[str, str]:
    return {p.get("k"): p.get("v") for p in symbol.iter("prop")}


def test_buildings_graduated_by_quantiles_without_outlines(outputs):
    renderer = _renderer(_styles(outputs / "buildings_pv.gpkg")["buildings_pv"][1])
    bounds = [(float(r.get("lower")), float(r.get("upper")))
              for r in renderer.findall("ranges/range")]
    # quantiles of 1 000 … 10 000 kWh at 0, 20 … 100 %
    assert bounds == [(1000.0, 2800.0), (2800.0, 4600.0), (4600.0, 6400.0), (6400.0, 8200.0),
                      (8200.0, 10000.0)]
    for symbol in renderer.findall("symbols/symbol"):
        assert _props(symbol)["outline_style"] == "no"  # no dark mass of 55 000 outlines
    fills = [_props(s)["color"] for s in renderer.findall("symbols/symbol")]
    assert len(set(fills)) == 5


def test_zones_classed_at_the_blue_green_targets(outputs):
    renderer = _renderer(_styles(outputs / "zones.gpkg")["zones"][1])
    bounds = [(float(r.get("lower")), float(r.get("upper")))
              for r in renderer.findall("ranges/range")]
    assert bounds == [(0.0, 0.65), (0.65, 0.85), (0.85, 1.0)]  # dongli-2025: 65 % and 85 %
    labels = [r.get("label") for r in renderer.findall("ranges/range")]
    assert labels == ["0 % – 65 %", "65 % – 85 %", "85 % – 100 %"]
    assert renderer.find("orderby/orderByClause").text == "$area"  # sub-zones above the barrier


def test_ground_pv_categories_and_corridor_lines(outputs):
    renderer = _renderer(_styles(outputs / "ground_pv.gpkg")["ground_pv"][1])
    cats = [(c.get("value"), c.get("label")) for c in renderer.findall("categories/category")]
    assert cats == [("fishery", "渔光互补 fishery"), ("roadside", "道路两侧 roadside")]
    corridors = _renderer(_styles(outputs / "corridors.gpkg")["corridors"][1])
    layers = [layer.get("class") for layer in corridors.iter("layer")]
    assert set(layers) == {"SimpleLine"}
    # rank 1 (the most suitable parcel) gets the strongest green
    aff = _renderer(_styles(outputs / "afforestation.gpkg")["afforestation"][1])
    first, last = (_props(s)["color"] for s in (aff.findall("symbols/symbol")[0],
                                                aff.findall("symbols/symbol")[-1]))
    assert first.startswith(styles.RAMPS["Greens"][-1]) and last.startswith(
        styles.RAMPS["Greens"][0])


def test_project_groups_every_layer_with_relative_paths(outputs):
    with zipfile.ZipFile(outputs / styles.PROJECT_FILE) as zf:
        (name,) = zf.namelist()
        assert name == "project.qgs"
        root = ET.fromstring(zf.read(name).decode("utf-8").split("\n", 1)[1])
    groups = {g.get("name"): [n.get("name") for n in g.findall("layer-tree-layer")]
              for g in root.find("layer-tree-group").findall("layer-tree-group")}
    assert list(groups) == ["光伏 PV", "管控分区 Zones", "生态 Ecology"]
    assert "建筑屋顶光伏年发电量 Rooftop PV by building [kWh/yr]" in groups["光伏 PV"]
    sources = [m.find("datasource").text for m in root.iter("maplayer")]
    assert len(sources) == sum(len(v) for v in EXPECTED.values())
    for source in sources:
        file, layer = source.split("|layername=")
        assert file.startswith("./") and (outputs / file).is_file()
    assert root.find("properties/Paths/Absolute").text == "false"


def test_styling_again_replaces_the_rows_with_the_same_styles(outputs, tmp_path):
    import shutil

    copy = tmp_path / "again"
    shutil.copytree(outputs, copy)
    styles.style_outputs(copy, targets=load_targets("dongli-2025"), title="示例 test")
    for path in outputs.glob("*.gpkg"):
        assert _styles(copy / path.name) == _styles(path), path.name
    project = styles.PROJECT_FILE
    assert (copy / project).read_bytes() == (outputs / project).read_bytes()


@pytest.mark.skipif(qgis_check.qgis_python() is None,
                    reason="PyQGIS (Debian python3-qgis) is not installed")
def test_qgis_opens_every_geopackage_with_its_style_and_the_project(outputs):
    seen = qgis_check.inspect(outputs)
    expected = {f"{f}:{layer}": v for f, layers in EXPECTED.items() for layer, v in layers.items()}
    assert set(seen["layers"]) == set(expected)
    for key, (kind, field) in expected.items():
        info = seen["layers"][key]
        assert info["valid"] and info["renderer"] == kind, (key, info)
        if field:
            assert info["field"] == field
    assert seen["layers"]["buildings_pv.gpkg:buildings_pv"]["outline"] == "none"
    assert seen["layers"]["zones.gpkg:zones"]["bounds"] == [[0, 0.65], [0.65, 0.85], [0.85, 1]]
    assert seen["layers"]["ground_pv.gpkg:ground_pv"]["values"] == ["fishery", "roadside"]
    assert seen["project_read"] is True and seen["absolute_paths"] is False
    assert len(seen["project"]) == len(expected)
    for name, info in seen["project"].items():
        assert info["valid"] and info["features"] > 0, name
    assert list(seen["groups"]) == ["光伏 PV", "管控分区 Zones", "生态 Ecology"]

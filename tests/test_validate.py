"""Loading planners' layers: encodings, CRS, geometry repairs, column mapping, all problems at once."""

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from gis.config import parse_runfile
from gis.validate import load_layers, map_categories

X0, Y0 = 520_000.0, 4_330_000.0  # EPSG:4548 (CGCS2000 GK CM 117E), near Dongli


def squares(n: int, size: float = 100.0, x0: float = X0, y0: float = Y0):
    """n disjoint size × size squares in a row."""
    xs = x0 + np.arange(n) * size * 2
    return shapely.box(xs, y0, xs + size, y0 + size)


def parcels(tmp_path: Path, *, crs=4548, shift=0.0) -> gpd.GeoDataFrame:
    geoms = squares(3, x0=X0 + shift)
    return gpd.GeoDataFrame({"BSM": ["P1", "P2", "P3"], "DLBM": ["0301", "1101", "0404"],
                             "DLMC": ["乔木林地", "河流水面", "其他草地"],
                             "TBDLMJ": [10000.0, 10000.0, 9900.0]}, geometry=geoms, crs=crs)


def run_for(tmp_path, layers, **project):
    return parse_runfile({"project": project, "layers": layers}, base=tmp_path)


def test_gbk_shapefile_without_cpg_in_zone_prefixed_crs(tmp_path):
    gdf = parcels(tmp_path).to_crs(4527)  # zone-prefixed twin: eastings 39 5xx xxx
    assert gdf.total_bounds[0] > 39_000_000
    gdf.to_file(tmp_path / "landuse.shp", encoding="gbk")
    (tmp_path / "landuse.cpg").unlink(missing_ok=True)
    cfg = run_for(tmp_path, {"landuse": {"path": "landuse.shp",
                                         "columns": {"area": "TBDLMJ"}}}, crs="EPSG:4548")
    layers = load_layers(cfg)
    assert not [p for p in layers.problems if p.severity == "error" and "landuse" in str(p.file)]
    lu = layers.landuse
    assert layers.inputs[0]["encoding"] == "gbk"
    assert layers.crs.to_epsg() == 4548
    assert lu["id"].tolist() == ["P1", "P2", "P3"]
    assert lu["code"].tolist() == ["0301", "1101", "0404"]
    assert lu["area_official_m2"].tolist() == [10000.0, 10000.0, 9900.0]
    # 100 m × 100 m squares are 1 ha each after the round trip through EPSG:4527
    np.testing.assert_allclose(lu.geometry.area, 10_000.0, rtol=1e-9)


def test_gbk_text_survives(tmp_path):
    gdf = parcels(tmp_path)
    gdf.to_file(tmp_path / "lu.shp", encoding="gbk")
    (tmp_path / "lu.cpg").unlink(missing_ok=True)
    cfg = run_for(tmp_path, {"landuse": {"path": "lu.shp", "columns": {"name": "DLMC"}}})
    layers = load_layers(cfg)
    assert layers.landuse["name"].tolist() == ["乔木林地", "河流水面", "其他草地"]


def test_zone_prefixed_coordinates_declared_as_central_meridian_crs(tmp_path):
    gdf = parcels(tmp_path).to_crs(4527).set_crs(4548, allow_override=True)  # wrong .prj
    gdf.to_file(tmp_path / "lu.gpkg")
    layers = load_layers(run_for(tmp_path, {"landuse": {"path": "lu.gpkg"}}))
    errors = [p for p in layers.problems if p.severity == "error"]
    assert len(errors) == 1
    assert "do not fit" in errors[0].message and "EPSG:4548" in errors[0].message
    assert "EPSG:4527" in errors[0].hint


def test_missing_crs_is_an_error_unless_the_run_file_supplies_one(tmp_path):
    gdf = parcels(tmp_path).to_crs(4527)
    gdf.to_file(tmp_path / "lu.shp")
    (tmp_path / "lu.prj").unlink()
    layers = load_layers(run_for(tmp_path, {"landuse": {"path": "lu.shp"}}))
    err = [p for p in layers.problems if p.severity == "error"]
    assert len(err) == 1 and "no CRS" in err[0].message and "EPSG:4527" in err[0].hint
    layers = load_layers(run_for(tmp_path, {"landuse": {"path": "lu.shp", "crs": "EPSG:4527"}},
                                 crs="EPSG:4548"))
    assert layers.landuse is not None
    np.testing.assert_allclose(layers.landuse.total_bounds[0], X0, atol=1e-3)


def test_wgs84_geojson_with_chinese_columns_and_labels(tmp_path):
    geoms = squares(4)
    gdf = gpd.GeoDataFrame({"编号": ["a", "b", "c", "d"],
                            "建筑类别": ["党政机关", "村委会", "厂房", "农村住宅"],
                            "层数": [3, 2, 1, 1], "屋顶": ["平屋顶", "平屋顶", "平屋顶", "坡屋顶"]},
                           geometry=geoms, crs=4548).to_crs(4326)
    gdf.to_file(tmp_path / "b.geojson")
    cfg = run_for(tmp_path, {"buildings": {
        "path": "b.geojson",
        "columns": {"id": "编号", "category": "建筑类别", "floors": "层数", "roof_type": "屋顶"}}},
        crs="EPSG:4548")
    layers = load_layers(cfg)
    b = layers.buildings
    assert b["category"].tolist() == ["government", "public", "industrial", "rural_residential"]
    assert b["roof_type"].tolist() == ["flat", "flat", "flat", "pitched"]
    assert b["floors"].tolist() == [3, 2, 1, 1]
    # areas come back in the metric working CRS, not in degrees
    np.testing.assert_allclose(b.geometry.area, 10_000.0, rtol=1e-6)


def test_utm_is_estimated_when_no_crs_is_given(tmp_path):
    parcels(tmp_path).to_crs(4326).to_file(tmp_path / "lu.geojson")
    layers = load_layers(run_for(tmp_path, {"landuse": {"path": "lu.geojson"}}))
    assert layers.crs.to_epsg() == 32650  # UTM 50N covers 114–120 E
    np.testing.assert_allclose(layers.landuse.geometry.area, 10_000.0, rtol=2e-3)


def test_invalid_geometries_repaired_and_empty_dropped_with_counts(tmp_path):
    bowtie = shapely.Polygon([(X0, Y0), (X0 + 100, Y0 + 100), (X0 + 100, Y0), (X0, Y0 + 100)])
    gdf = gpd.GeoDataFrame({"BSM": ["1", "2", "3"], "DLBM": ["0301"] * 3},
                           geometry=[bowtie, shapely.box(X0, Y0, X0 + 10, Y0 + 10), None], crs=4548)
    gdf.to_file(tmp_path / "lu.gpkg")
    layers = load_layers(run_for(tmp_path, {"landuse": {"path": "lu.gpkg"}}, crs="EPSG:4548"))
    messages = [p.message for p in layers.warnings]
    assert "1 invalid geometries repaired" in messages
    assert "1 empty geometries dropped" in messages
    lu = layers.landuse
    assert len(lu) == 2 and lu.geometry.is_valid.all()
    assert lu.geometry.area.iloc[0] == pytest.approx(5000.0)  # the bow-tie's two triangles


def test_all_problems_at_once(tmp_path):
    pts = gpd.GeoDataFrame({"BSM": ["1", "2"]}, geometry=shapely.points([X0, X0], [Y0, Y0]), crs=4548)
    pts.to_file(tmp_path / "points.gpkg")
    b = gpd.GeoDataFrame({"BSM": ["1", "1", "2"], "CS": [-1.0, 3.0, 500.0],
                          "JZLB": ["住宅", "飞船", "住宅"]}, geometry=squares(3), crs=4548)
    b.to_file(tmp_path / "b.gpkg")
    (tmp_path / "broken.geojson").write_text('{"type": "FeatureCollection", "features": [', "utf-8")
    cfg = run_for(tmp_path, {
        "buildings": {"path": "b.gpkg", "columns": {"id": "BSM", "floors": "CS", "category": "JZLB",
                                                    "height": "GD"}},
        "landuse": {"path": "points.gpkg"},
        "zones": {"path": "broken.geojson"},
    })
    problems = [p for p in load_layers(cfg).problems if p.severity == "error"]
    text = "\n".join(str(p) for p in problems)
    assert "mapped column not in the file" in text and "'GD'" in text
    assert "duplicate ids" in text
    assert "outside 0–200" in text and "-1.0" in text and "500.0" in text
    assert "unknown category" in text and "飞船" in text
    assert "not polygons" in text and "Point" in text
    assert "broken.geojson" in text and "cannot" in text
    assert len(problems) == 6


def test_category_labels_extend_through_the_run_file():
    import pandas as pd

    labels = pd.Series(["党政机关", "区人民医院", "新建厂房", "粮库", None])
    assert map_categories(labels).tolist()[:3] == ["government", "public", "industrial"]
    assert map_categories(labels, {"粮库": "industrial"}).tolist()[3] == "industrial"
    assert map_categories(labels).isna().tolist() == [False, False, False, True, True]


def test_shapefile_missing_dbf(tmp_path):
    parcels(tmp_path).to_file(tmp_path / "lu.shp")
    (tmp_path / "lu.dbf").unlink()
    layers = load_layers(run_for(tmp_path, {"landuse": {"path": "lu.shp"}}))
    err = [p for p in layers.problems if p.severity == "error"]
    assert len(err) == 1 and ".dbf missing" in err[0].message


@pytest.mark.parametrize("crs", ["EPSG:3857", "EPSG:2263"])
def test_working_crs_that_distorts_areas_is_refused(tmp_path, crs):
    parcels(tmp_path).to_file(tmp_path / "lu.gpkg")
    layers = load_layers(run_for(tmp_path, {"landuse": {"path": "lu.gpkg"}}, crs=crs))
    errors = [p for p in layers.problems if p.severity == "error"]
    assert len(errors) == 1 and errors[0].column == "project.crs"
    assert "does not measure true areas" in errors[0].message
    assert ("1.66" in errors[0].message) if crs == "EPSG:3857" else ("foot" in errors[0].message)


def test_gauss_krueger_and_utm_are_accepted(tmp_path):
    parcels(tmp_path).to_file(tmp_path / "lu.gpkg")
    for crs in ("EPSG:4548", "EPSG:4527", "EPSG:32650"):
        layers = load_layers(run_for(tmp_path, {"landuse": {"path": "lu.gpkg"}}, crs=crs))
        assert [p for p in layers.problems if p.severity == "error"] == [], crs

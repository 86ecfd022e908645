"""The quick paths of loading and of the steps give what the plain ways give."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from scipy import sparse
from scipy.sparse import csgraph

from gis import ecology, io, network, solar


def test_cjk_count_counts_ideographs_only():
    # 住宅 (2 unified ideographs), 豈 U+F900 (compatibility ideograph); Latin, digits, kana no
    assert io._cjk_count("住宅ab12\uf900カ") == 3
    assert io._cjk_count("") == 0


def test_arrow_read_equals_the_plain_read(tmp_path):
    path = tmp_path / "parcels.gpkg"
    gdf = gpd.GeoDataFrame(
        {"n": pd.array([1, None, 3], dtype="Int64"), "name": ["林地", None, "x"],
         "area": [1.5, np.nan, 2.0], "small": pd.array([1, 2, 3], dtype="Int16")},
        geometry=[shapely.box(0, 0, 1, 1), None, shapely.box(0, 0, 2, 2)], crs="EPSG:4548")
    pyogrio.write_dataframe(gdf, path)
    assert io._arrow_safe(path, None, None)
    got, note = io._read_frame(path, None, None)
    plain = pyogrio.read_dataframe(path, use_arrow=False, fid_as_index=True)
    assert note == ""
    assert got[io.FID_COLUMN].tolist() == [1, 2, 3]
    pd.testing.assert_frame_equal(got.drop(columns=[io.FID_COLUMN]),
                                  plain.reset_index(drop=True), check_exact=True)


def test_booleans_and_shapefiles_keep_the_plain_reader(tmp_path):
    gdf = gpd.GeoDataFrame({"flag": [True, False]},
                           geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 1, 2, 2)],
                           crs="EPSG:4548")
    pyogrio.write_dataframe(gdf, tmp_path / "flags.gpkg")
    pyogrio.write_dataframe(gdf.assign(flag=1), tmp_path / "flags.shp")
    assert not io._arrow_safe(tmp_path / "flags.gpkg", None, None)
    assert not io._arrow_safe(tmp_path / "flags.shp", None, None)
    pyogrio.write_dataframe(gdf.assign(flag=1), tmp_path / "ints.gpkg")
    assert io._arrow_safe(tmp_path / "ints.gpkg", None, None)
    assert not io._arrow_safe(tmp_path / "ints.gpkg", None, "gbk")  # a declared encoding


def test_transformer_is_made_once_per_pair():
    a, b = io.transformer("EPSG:4548", 4326), io.transformer("EPSG:4548", "EPSG:4326")
    assert a is b
    lon, lat = a.transform(500_000.0, 4_330_000.0)
    assert lon == pytest.approx(117.0, abs=1e-9) and 39.0 < lat < 39.2


def test_polygon_dicts_rasterize_as_the_geometries():
    from rasterio import features
    from rasterio.transform import from_origin

    hole = shapely.Polygon([(0, 0), (10, 0), (10, 10), (0, 10)], [[(3, 3), (7, 3), (7, 7), (3, 7)]])
    multi = shapely.MultiPolygon([shapely.box(12, 0, 15, 4), shapely.box(16, 5, 19, 9)])
    geoms = np.array([hole, shapely.Polygon(), multi, shapely.box(2, 2, 14, 6)], dtype=object)
    values = np.array([1.0, 2.0, 3.0, 4.0])
    shape, transform = (12, 22), from_origin(-1, 11, 1, 1)
    with pytest.warns(UserWarning):  # rasterio skips the empty polygon with a warning
        want = features.rasterize(zip(geoms, values, strict=True), out_shape=shape,
                                  transform=transform, fill=0, dtype="float64")
    shapes, owner = network._polygon_dicts(geoms)
    assert owner.tolist() == [0, 2, 2, 3]
    got = features.rasterize(zip(shapes, values[owner], strict=True), out_shape=shape,
                             transform=transform, fill=0, dtype="float64")
    np.testing.assert_array_equal(got, want)
    assert (got == 3).any() and (got == 1).any() and (got == 4).any()


def test_directed_search_of_a_symmetric_graph_equals_undirected():
    rng = np.random.default_rng(3)
    n = 40
    i, j = rng.integers(0, n, 300), rng.integers(0, n, 300)
    keep = i < j
    w = rng.uniform(0.01, 2.0, keep.sum())
    upper = sparse.coo_matrix((w, (i[keep], j[keep])), shape=(n, n)).tocsr()
    sym = sparse.coo_matrix((np.r_[upper.tocoo().data, upper.tocoo().data],
                             (np.r_[upper.tocoo().row, upper.tocoo().col],
                              np.r_[upper.tocoo().col, upper.tocoo().row])), shape=(n, n)).tocsr()
    want = csgraph.dijkstra(upper, directed=False, limit=3.0)
    got = csgraph.dijkstra(sym, directed=True, limit=3.0)
    np.testing.assert_array_equal(got, want)


def test_climate_model_hands_out_copies():
    data, meta = solar.climate_model(39.1, 117.4)
    ghi = data["ghi"].sum()
    data["ghi"] = 0.0
    meta["source"] = "changed"
    again, meta2 = solar.climate_model(39.1, 117.4)
    assert again["ghi"].sum() == ghi > 0
    assert meta2["source"] == "climate-model"


def test_accounting_units_once_per_input_and_copies():
    zones = gpd.GeoDataFrame({"name": ["a", "b"], "level": ["subzone", "subzone"]},
                             geometry=[shapely.box(0, 0, 100, 100), shapely.box(50, 0, 150, 100)],
                             crs="EPSG:4548")
    first = ecology.accounting_units(zones)
    first.loc[0, "zone"] = "changed"
    again = ecology.accounting_units(zones)
    assert again["zone"].tolist() == ["a", "b", "subzone"]
    assert (again.area / 1e4).round(2).tolist() == [1.0, 1.0, 1.5]
    moved = zones.assign(geometry=[shapely.box(0, 0, 100, 100), shapely.box(200, 0, 300, 100)])
    assert (ecology.accounting_units(moved).area / 1e4).round(2).tolist() == [1.0, 1.0, 2.0]
    renamed = zones.assign(name=["c", "b"])
    assert ecology.accounting_units(renamed)["zone"].tolist() == ["c", "b", "subzone"]


def test_to_crs_equals_geopandas_for_2d_and_3d():
    gdf = gpd.GeoDataFrame(
        {"v": [1, 2, 3]},
        geometry=[shapely.box(39_500_000, 4_300_000, 39_500_100, 4_300_100),
                  shapely.Polygon([(39_500_200, 4_300_000, 5.0), (39_500_300, 4_300_000, 6.0),
                                   (39_500_300, 4_300_100, 7.0)]), None], crs="EPSG:4527")
    got, want = io.to_crs(gdf, "EPSG:4548"), gdf.to_crs("EPSG:4548")
    assert got.crs == want.crs and list(got.columns) == list(want.columns)
    assert (shapely.to_wkb(got.geometry.values) == shapely.to_wkb(want.geometry.values)).all()
    assert got["v"].tolist() == [1, 2, 3]
    assert gdf.crs.to_epsg() == 4527  # the input is left as it was
    same = io.to_crs(want, "EPSG:4548")
    assert (shapely.to_wkb(same.geometry.values) == shapely.to_wkb(want.geometry.values)).all()


def test_gc_paused_inside_and_back_after_an_error():
    import gc

    @io.gc_paused()
    def inside():
        assert not gc.isenabled()
        raise ValueError("stop")

    assert gc.isenabled()
    with pytest.raises(ValueError):
        inside()
    assert gc.isenabled()
    gc.disable()  # a caller that paused it itself keeps it paused
    try:
        with io.gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_encoding_detection_when_only_one_decoding_holds(tmp_path):
    # GBK bytes that are not UTF-8: gbk at once; UTF-8 bytes also read as GB18030: the
    # decoding with more CJK characters, as before
    def shapefile(text, encoding):
        path = tmp_path / f"{encoding}.shp"
        gpd.GeoDataFrame({"DLMC": [text]}, geometry=[shapely.box(0, 0, 1, 1)],
                         crs="EPSG:4548").to_file(path, encoding=encoding)
        path.with_suffix(".cpg").unlink(missing_ok=True)
        return path

    gbk = shapefile("乔木林地", "gbk")
    with pytest.raises(UnicodeDecodeError):
        gbk.with_suffix(".dbf").read_bytes()[32:].decode("utf-8")
    assert io.detect_encoding(gbk) == "gbk"
    utf8 = shapefile("乔木林地", "utf-8")
    body = utf8.with_suffix(".dbf").read_bytes()[32:]
    counts = {name: io._cjk_count(body.decode(codec))
              for name, codec in (("utf-8", "utf-8"), ("gbk", "gb18030"))}
    want = "gbk" if counts["gbk"] > counts["utf-8"] else "utf-8"
    assert io.detect_encoding(utf8) == want

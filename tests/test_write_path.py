"""The write path gives the outputs the previous writers gave: tables equal, workbooks equal cell
by cell, map features equal; Excel's row cap; the column-wise sheet equals XlsxWriter's cells."""

from __future__ import annotations

import datetime as dt
import json
import re
import zipfile

import _old_writers as old
import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pyogrio
import pytest
import shapely

from gis import maps, pipeline, sites, xlsx
from gis._errors import InputError, RunFileError
from gis.config import parse_runfile


@pytest.fixture(scope="module")
def demo_ctx(demo_run):
    """The context of the shared demo run (tests/conftest.py): its frames and output folder."""
    return demo_run[0]


# ---- workbooks ------------------------------------------------------------------------------


def _cells(path):
    """(sheet, row, column) -> (value, number format, bold, wrap, vertical) of every cell."""
    wb = openpyxl.load_workbook(path)
    out = {}
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for c in row:
                if c.value is None and c.number_format == "General" and not c.font.b:
                    continue  # no cell, an unstyled empty one and empty text read the same
                out[ws.title, c.row, c.column] = (c.value, c.number_format, bool(c.font.b),
                                                  bool(c.alignment.wrap_text),
                                                  c.alignment.vertical)
    return wb, out


def _sheet_settings(wb):
    return {
        "sheets": wb.sheetnames,
        "panes": [ws.freeze_panes for ws in wb.worksheets],
        "filter": [ws.auto_filter.ref for ws in wb.worksheets],
        "dimensions": [ws.dimensions for ws in wb.worksheets],
        # XlsxWriter joins equal neighbouring widths into one <col min max> range
        "widths": [{i: d.width for d in ws.column_dimensions.values() if d.min
                    for i in range(d.min, d.max + 1)} for ws in wb.worksheets],
    }


def _same_value(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        # the previous writer kept 16 significant digits; ours writes the exact double
        return a is not None and b is not None and abs(a - b) <= 1e-15 * max(abs(a), abs(b))
    return a == b


@pytest.mark.parametrize("name, key, kind", [("sites", "sites", "sites"),
                                             ("afforestation", "afforestation", "afforestation")])
def test_workbooks_equal_the_previous_writer_cell_by_cell(demo_ctx, tmp_path, name, key, kind):
    frame = demo_ctx.results[key] if key in demo_ctx.results else demo_ctx.extras[key]
    assert len(frame) > 10
    before = tmp_path / "before.xlsx"
    old.write_xlsx(frame, before, meta=pipeline._meta(demo_ctx), kind=kind)
    wa, a = _cells(before)
    wb, b = _cells(demo_ctx.out_dir / f"{name}.xlsx")
    settings_a, settings_b = _sheet_settings(wa), _sheet_settings(wb)
    assert settings_a["dimensions"][0] == settings_b["dimensions"][0]
    settings_a.pop("dimensions"), settings_b.pop("dimensions")  # metadata: two rows added
    assert settings_a == settings_b
    data_a = {k: v for k, v in a.items() if k[0] == kind}
    data_b = {k: v for k, v in b.items() if k[0] == kind}
    assert data_a.keys() == data_b.keys()
    assert len(data_a) > 10 * frame.shape[1]
    unequal = [(k, data_a[k], data_b[k]) for k in data_a
               if data_a[k][1:] != data_b[k][1:] or not _same_value(data_a[k][0], data_b[k][0])]
    assert unequal == []
    # the metadata sheet: every row as before, plus where the complete list is
    meta_a = [r for r in wa["metadata"].iter_rows(values_only=True)]
    meta_b = [r for r in wb["metadata"].iter_rows(values_only=True)]
    added = {r[0]: r[1] for r in meta_b if r not in meta_a}
    assert [r for r in meta_b if r[0] not in added] == meta_a
    assert added == {"rows in the complete list": len(frame), "complete list in": "this workbook"}
    assert wa.properties.created == wb.properties.created


def test_workbook_numbers_are_the_exact_doubles_of_the_list(demo_ctx):
    ranked = demo_ctx.results["sites"]
    ws = openpyxl.load_workbook(demo_ctx.out_dir / "sites.xlsx", read_only=True)["sites"]
    header = next(ws.iter_rows(min_row=1, max_row=1, values_only=True))
    col = header.index("annual yield [kWh] / 年发电量")
    values = [r[col] for r in ws.iter_rows(min_row=2, values_only=True)]
    assert np.array_equal(np.array(values, dtype=float), ranked["annual_kwh"].to_numpy(float))


def test_geopackages_equal_the_previous_writer(demo_ctx, tmp_path):
    frames = {"buildings_pv": demo_ctx.results["pv"], "sites": demo_ctx.results["sites"]}
    for layer, frame in frames.items():
        before = tmp_path / f"{layer}.gpkg"
        frame.to_file(before, layer=layer, driver="GPKG", engine="pyogrio")
        after = demo_ctx.out_dir / f"{layer}.gpkg"
        info_a = pyogrio.read_info(before, layer=layer)
        info_b = pyogrio.read_info(after, layer=layer)
        for k in ("fields", "dtypes", "geometry_type", "features", "crs"):
            assert np.array_equal(info_a[k], info_b[k]) if k != "crs" else info_a[k] == info_b[k]
        a = pyogrio.read_dataframe(before, layer=layer)
        b = pyogrio.read_dataframe(after, layer=layer)
        pd.testing.assert_frame_equal(pd.DataFrame(a.drop(columns="geometry")),
                                      pd.DataFrame(b.drop(columns="geometry")), check_exact=True)
        assert (a.geometry.to_wkb() == b.geometry.to_wkb()).all()


# ---- the column-wise sheet against XlsxWriter's own cells --------------------------------------


def _edge_table() -> pd.DataFrame:
    n = 40
    rng = np.random.default_rng(5)
    text = pd.Series([f"楼 {i}" for i in range(n)], dtype="string")
    text[1], text[2], text[3], text[4] = " a&<b>\"c ", "\x01 bell _x0041_", "", pd.NA
    text[5], text[6] = "\u3000全角空格", "tab\t"
    floats = rng.uniform(0, 1e6, n).round(3)
    floats[[7, 8, 9]] = [np.nan, np.inf, -0.0]
    return pd.DataFrame({
        "rank": np.arange(1, n + 1),
        "name": text,
        "capacity_kwp": floats,
        "is_new": rng.random(n) < 0.5,
        "year_built": pd.array([2000 + i if i % 5 else None for i in range(n)], dtype="Int64"),
        "street": pd.Series(["金桥街道", None] * (n // 2), dtype=object),
        "share": rng.random(n).round(4),
    })


def _numbers(xml: bytes) -> tuple[bytes, list[float]]:
    pattern = re.compile(rb'(<c r="[A-Z]+\d+"(?: s="\d+")?><v>)([^<]*)(</v>)')
    return pattern.sub(rb"\1#\3", xml), [float(m.group(2)) for m in pattern.finditer(xml)]


def test_column_wise_rows_equal_xlsxwriter_cells(tmp_path, monkeypatch):
    table = _edge_table()
    headers, formats, widths = sites._excel_layout(table)
    kwargs = dict(sheet="sites", headers=headers, formats=formats, widths=widths,
                  metadata=[("kind", "sites"), ("rows", len(table))],
                  created=dt.datetime(2025, 3, 1, 9, 30))
    monkeypatch.setattr(xlsx, "CHUNK_ROWS", 7)  # several blocks, one of them short
    fast = xlsx.write_workbook(tmp_path / "fast.xlsx", table, body="columns", **kwargs)
    ref = xlsx.write_workbook(tmp_path / "ref.xlsx", table, body="cells", **kwargs)
    with zipfile.ZipFile(fast) as za, zipfile.ZipFile(ref) as zb:
        assert za.namelist() == zb.namelist()
        for name in za.namelist():
            if name != "xl/worksheets/sheet1.xml":
                assert za.read(name) == zb.read(name), name
        skeleton_a, numbers_a = _numbers(za.read("xl/worksheets/sheet1.xml"))
        skeleton_b, numbers_b = _numbers(zb.read("xl/worksheets/sheet1.xml"))
    assert skeleton_a == skeleton_b
    assert numbers_a == numbers_b  # equal doubles (XlsxWriter writes 16 digits, we the shortest)
    ws = openpyxl.load_workbook(fast)["sites"]
    assert ws["B3"].value == " a&<b>\"c "
    # Excel's escapes of a control character and of a literal escape (Excel decodes them)
    assert ws["B4"].value == "_x0001_ bell _x005F_x0041_"
    assert ws["B5"].value is None and ws["B6"].value is None
    assert ws["C9"].value is None and ws["C9"].number_format == "#,##0.0"  # NaN, inf: empty
    assert ws["E3"].value == 2001 and ws["E2"].value is None


def test_exact_doubles_survive_the_column_wise_sheet(tmp_path):
    values = np.array([0.1 + 0.2, 1 / 3, 2275.8655754898678, 1e-7, 123456789.0, 5.0, 7.25])
    table = pd.DataFrame({"x": values})
    xlsx.write_workbook(tmp_path / "x.xlsx", table, sheet="s", headers=["x"], formats=[None],
                        widths=[12], metadata=[], created=dt.datetime(2000, 1, 1))
    ws = openpyxl.load_workbook(tmp_path / "x.xlsx")["s"]
    assert [ws.cell(row=i, column=1).value for i in range(2, 9)] == values.tolist()


# ---- the row cap ----------------------------------------------------------------------------


@pytest.fixture()
def ranked():
    pv = gpd.GeoDataFrame(
        {"id": [f"B{i}" for i in range(7)], "capacity_kwp": np.arange(7, 0, -1) * 10.0,
         "annual_kwh": np.arange(7, 0, -1) * 12_000.0},
        geometry=[shapely.box(534000 + 50 * i, 4331000, 534030 + 50 * i, 4331020)
                  for i in range(7)], crs="EPSG:4548")
    return sites.select_sites(pv)


def test_workbook_holds_the_top_rows_and_names_the_complete_files(ranked, tmp_path):
    path = sites.export(ranked, tmp_path / "sites.xlsx", max_excel_rows=3,
                        complete_in=["sites.csv", "sites.gpkg"])
    wb = openpyxl.load_workbook(path)
    ws = wb["sites"]
    assert ws.max_row == 4 and [ws.cell(row=r, column=2).value for r in (2, 3, 4)] == [
        "B0", "B1", "B2"]
    assert ws.auto_filter.ref.endswith("4")
    info = {r[0]: r[1] for r in wb["metadata"].iter_rows(min_row=2, values_only=True)}
    assert info["rows"] == 3
    assert info["rows in the complete list"] == 7
    assert info["complete list in"] == "sites.csv, sites.gpkg"
    # not capped: the workbook is the complete list
    wb = openpyxl.load_workbook(sites.export(ranked, tmp_path / "all.xlsx", max_excel_rows=7))
    info = {r[0]: r[1] for r in wb["metadata"].iter_rows(min_row=2, values_only=True)}
    assert (info["rows"], info["complete list in"]) == (7, "this workbook")


@pytest.mark.parametrize("cap", [0, 1_048_576, 2.5])
def test_excel_row_cap_out_of_range_is_refused(ranked, tmp_path, cap):
    with pytest.raises(InputError, match="Excel row cap"):
        sites.export(ranked, tmp_path / "sites.xlsx", max_excel_rows=cap)
    assert not (tmp_path / "sites.xlsx").exists()


def test_run_file_row_cap(tmp_path):
    raw = {"project": {"name": "x"}, "output": {"max_excel_rows": 1_048_575}}
    assert parse_runfile(raw, base=tmp_path).output.max_excel_rows == 1_048_575
    assert parse_runfile({"project": {"name": "x"}}, base=tmp_path).output.max_excel_rows \
        == 100_000
    with pytest.raises(RunFileError, match="max_excel_rows"):
        parse_runfile({"project": {"name": "x"}, "output": {"max_excel_rows": 0}}, base=tmp_path)


# ---- map features ---------------------------------------------------------------------------


def test_feature_collection_equals_geopandas(demo_ctx):
    pv = demo_ctx.results["pv"].head(300)
    geoms = pd.Series(list(maps._web_geometry(pv.geometry, 1.0)))
    geoms[3], geoms[4] = None, shapely.Polygon()
    text = pd.DataFrame({"i": pv["id"].astype("string").to_numpy(),
                         "n": ["名 \"<b>\\", *[None] * (len(pv) - 1)], "k": np.arange(len(pv))})
    with_floats = text.assign(x=pv["annual_kwh"].to_numpy(), y=np.nan)
    for props in (text, with_floats):
        new = maps._feature_collection(props, geoms)
        assert len(new["features"]) == len(pv) - 2
        dump = lambda d: json.dumps(d, sort_keys=True, ensure_ascii=False)  # noqa: E731
        assert dump(new) == dump(old.feature_collection(props, geoms))


# ---- raster statistics --------------------------------------------------------------------------


def test_zonal_means_equal_exactextract_geodataframe_source(tmp_path):
    import rasterio
    from exactextract import exact_extract
    from exactextract.raster import RasterioRasterSource
    from rasterio.transform import from_origin

    from gis._zonal import zonal_means

    tif = tmp_path / "irr.tif"
    grid = (1000 + 10 * np.arange(60 * 80).reshape(60, 80) % 500).astype("float32")
    with rasterio.open(tif, "w", driver="GTiff", width=80, height=60, count=1, dtype="float32",
                       crs="EPSG:4548", transform=from_origin(534000, 4331060, 1, 1)) as dst:
        dst.write(grid, 1)
    rng = np.random.default_rng(3)
    x, y = rng.uniform(534000, 534070, 50), rng.uniform(4331000, 4331050, 50)
    roofs = gpd.GeoDataFrame(geometry=shapely.box(x, y, x + rng.uniform(0.3, 9, 50),
                                                  y + rng.uniform(0.3, 9, 50)), crs="EPSG:4548")
    with rasterio.open(tif) as src:
        ref = exact_extract(RasterioRasterSource(src, band_idx=1), roofs, ["mean"],
                            output="pandas", strategy="raster-sequential")["mean"].to_numpy()
        ours = zonal_means(RasterioRasterSource(src, band_idx=1), roofs.geometry.values,
                           crs_wkt=roofs.crs.to_wkt())
    assert np.array_equal(ours, ref)
    # a 1 m × 1 m roof on one cell has that cell's value
    with rasterio.open(tif) as src:
        one = zonal_means(RasterioRasterSource(src, band_idx=1),
                          np.array([shapely.box(534010, 4331050, 534011, 4331051)]))
    assert one.tolist() == [float(grid[9, 10])]

"""The writers the package used before its write path went through XlsxWriter and Arrow.

Kept only as references for ``test_write_path.py``: the Excel workbook as openpyxl wrote it (one
Python object per cell) and the map features as ``GeoDataFrame.to_geo_dict`` builds them.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from gis.sites import _flatten, _header, _parse_time, _table_with_lonlat, _text_width


def feature_collection(props: pd.DataFrame, geoms) -> dict:
    gdf = gpd.GeoDataFrame(props.reset_index(drop=True), geometry=list(geoms), crs=4326)
    gdf = gdf[~(gdf.geometry.isna() | gdf.geometry.is_empty)]
    return gdf.to_geo_dict(drop_id=True)


def _cell_values(series: pd.Series) -> list:
    """Python values for openpyxl: numbers stay numbers, missing values become empty cells."""
    if pd.api.types.is_bool_dtype(series):
        return [None if pd.isna(v) else bool(v) for v in series.astype(object)]
    if pd.api.types.is_numeric_dtype(series):
        values = series.astype("float64").to_numpy()
        is_int = pd.api.types.is_integer_dtype(series)
        return [None if np.isnan(v) else (int(v) if is_int else float(v)) for v in values]
    return [None if pd.isna(v) else str(v) for v in series.astype(object)]




def write_xlsx(gdf: gpd.GeoDataFrame, path: Path, *, meta: dict, kind: str) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    table = _table_with_lonlat(gdf)
    wb = Workbook()
    ws = wb.active
    ws.title = kind
    headers, formats = zip(*(_header(c) for c in table.columns), strict=True) if len(
        table.columns
    ) else ((), ())
    ws.append(list(headers))
    columns = [_cell_values(table[c]) for c in table.columns]
    for row in zip(*columns, strict=True):
        ws.append(row)
    bold = Font(bold=True)
    wrap = Alignment(wrap_text=True, vertical="top")
    n_rows = len(table) + 1
    for j, (column, header, fmt) in enumerate(zip(table.columns, headers, formats, strict=True),
                                              start=1):
        cell = ws.cell(row=1, column=j)
        cell.font = bold
        cell.alignment = wrap
        if fmt is None and pd.api.types.is_float_dtype(table[column]):
            fmt = "#,##0.00"
        if fmt is not None:
            for (cell,) in ws.iter_rows(min_row=2, max_row=n_rows, min_col=j, max_col=j):
                cell.number_format = fmt
        sample = [str(v) for v in table[column].head(200).tolist() if not pd.isna(v)]
        widest = max([_text_width(s) for s in sample] + [12])
        header_width = max(_text_width(part) for part in header.split(" / "))
        ws.column_dimensions[get_column_letter(j)].width = min(max(widest, header_width) + 2, 50)
    ws.freeze_panes = "A2"
    if len(table.columns):
        ws.auto_filter.ref = f"A1:{get_column_letter(len(table.columns))}{n_rows}"

    info = wb.create_sheet("metadata")
    info.append(["key / 项目", "value / 值"])
    info["A1"].font = bold
    info["B1"].font = bold
    rows = [("kind", kind), ("rows", len(table)), ("crs of coordinates", "EPSG:4326 (WGS84)")]
    for key, value in meta.items():
        rows.extend(_flatten(str(key), value))
    for key, value in rows:
        info.append([key, value])
    info.column_dimensions["A"].width = 40
    info.column_dimensions["B"].width = 80
    info.freeze_panes = "A2"
    # fixed document times, so the same list written twice differs in nothing a reader sees
    stamp = _parse_time(meta.get("time"))
    wb.properties.created = stamp
    wb.properties.modified = stamp
    wb.save(path)
    _pin_zip_times(path, stamp)


def _pin_zip_times(path: Path, stamp: _dt.datetime) -> None:
    """Give every part of an .xlsx the same fixed time, so equal content means equal bytes.

    openpyxl stamps the save time into ``docProps/core.xml`` and the zip entries; both are
    replaced by ``stamp``.
    """
    import re
    import zipfile

    with zipfile.ZipFile(path) as zin:
        parts = [(info.filename, zin.read(info.filename)) for info in zin.infolist()]
    iso = stamp.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    when = (max(stamp.year, 1980), stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zout:
        for name, data in parts:
            if name == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)",
                              rb"\g<1>" + iso + rb"\g<2>", data)
            info = zipfile.ZipInfo(name, date_time=when)
            info.compress_type = zipfile.ZIP_DEFLATED
            zout.writestr(info, data)



"""Site-list exports: time per format, and faster ways to write the same Excel workbook.

Usage::

    python bench/bench_xlsx.py --n 100000                      # every format + Excel writers
    python bench/bench_xlsx.py --n 100000 --writers openpyxl xlsxwriter --no-formats
    python bench/bench_xlsx.py --profile openpyxl --n 10000    # where the writer's time goes

The sites are ``gis.sites.select_sites`` of the PV layer of N generated buildings (``_inputs``).
``gis.sites.export`` is timed once per suffix.  The Excel workbook is then written again by each
writer below, and every file is compared with the one ``export`` wrote, cell by cell (value,
type, number format, bold/wrap/vertical alignment of the header) over the whole sheet, and for the
sheet-level settings (sheet names, frozen panes, autofilter range, every column width, metadata
sheet) with a full ``openpyxl.load_workbook`` of a 2 000-row export.

Writers (all give the workbook ``export`` writes; the last two are candidates, not used by ``gis``):

=========================  =======================================================================
``openpyxl``               ``gis.sites.export(..., ".xlsx")``, as the run writes it
``openpyxl_write_only``    openpyxl ``Workbook(write_only=True)``, one styled ``WriteOnlyCell``
                           per formatted cell (the pattern openpyxl's documentation shows)
``xlsxwriter``             XlsxWriter with ``constant_memory``: rows streamed to disk, one
                           ``Format`` per number format, ``write_number``/``write_string``/... per
                           cell.  Needs ``xlsxwriter`` importable (not a dependency of ``gis``):
                           ``--xlsxwriter-path`` adds a folder holding it to ``sys.path``.
=========================  =======================================================================
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _inputs  # noqa: E402

from gis import sites  # noqa: E402
from gis.io import atomic_path  # noqa: E402

META = {"run": "bench", "time": "2026-01-01T12:00:00",
        "parameters": {"pv": {"preset": "base"}, "grid_co2_t_per_mwh": 0.5366},
        "definitions": {"annual_kwh": "capacity × specific yield × shading factor"}}
WRITERS = ("openpyxl", "openpyxl_write_only", "xlsxwriter")


def _layout(table: pd.DataFrame) -> tuple[list[str], list[str | None], list[float]]:
    """Headers, number formats and column widths exactly as ``gis.sites._write_xlsx`` sets them."""
    headers, formats, widths = [], [], []
    for column in table.columns:
        header, fmt = sites._header(column)
        if fmt is None and pd.api.types.is_float_dtype(table[column]):
            fmt = "#,##0.00"
        sample = [str(v) for v in table[column].head(200).tolist() if not pd.isna(v)]
        widest = max([sites._text_width(s) for s in sample] + [12])
        header_width = max(sites._text_width(part) for part in header.split(" / "))
        headers.append(header)
        formats.append(fmt)
        widths.append(min(max(widest, header_width) + 2, 50))
    return headers, formats, widths


def _meta_rows(table: pd.DataFrame, meta: dict, kind: str) -> list[tuple]:
    rows = [("kind", kind), ("rows", len(table)), ("crs of coordinates", "EPSG:4326 (WGS84)")]
    for key, value in meta.items():
        rows.extend(sites._flatten(str(key), value))
    return rows


def write_openpyxl_write_only(gdf: gpd.GeoDataFrame, path: Path, *, meta: dict, kind: str) -> None:
    """The workbook of ``export`` through openpyxl's streaming (write-only) worksheets."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    table = sites._table_with_lonlat(gdf)
    headers, formats, widths = _layout(table)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(kind)
    for j, w in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(j)].width = w
    ws.freeze_panes = "A2"
    n_rows = len(table) + 1
    if len(table.columns):
        ws.auto_filter.ref = f"A1:{get_column_letter(len(table.columns))}{n_rows}"
    bold, wrap = Font(bold=True), Alignment(wrap_text=True, vertical="top")
    head = []
    for h in headers:
        c = WriteOnlyCell(ws, value=h)
        c.font, c.alignment = bold, wrap
        head.append(c)
    ws.append(head)
    columns = [sites._cell_values(table[c]) for c in table.columns]
    for values in zip(*columns, strict=True):
        row = []
        for v, fmt in zip(values, formats, strict=True):
            if fmt is None:
                row.append(v)
            else:
                c = WriteOnlyCell(ws, value=v)
                c.number_format = fmt
                row.append(c)
        ws.append(row)
    info = wb.create_sheet("metadata")
    info.column_dimensions["A"].width = 40
    info.column_dimensions["B"].width = 80
    info.freeze_panes = "A2"
    head = [WriteOnlyCell(info, value="key / 项目"), WriteOnlyCell(info, value="value / 值")]
    for c in head:
        c.font = bold
    info.append(head)
    for key, value in _meta_rows(table, meta, kind):
        info.append([key, value])
    stamp = sites._parse_time(meta.get("time"))
    wb.properties.created = stamp
    wb.properties.modified = stamp
    with atomic_path(path) as tmp:
        wb.save(tmp)
        sites._pin_zip_times(tmp, stamp)


def write_xlsxwriter(gdf: gpd.GeoDataFrame, path: Path, *, meta: dict, kind: str) -> None:
    """The workbook of ``export`` through XlsxWriter, rows streamed (``constant_memory``).

    XlsxWriter takes column widths in Excel's displayed character units and stores
    ``(round(7 w) + 5) / 7`` (7-pixel digit, 5 pixels padding, Calibri 11); openpyxl stores the
    width as given.  ``w − 5/7`` therefore stores exactly the width openpyxl stores.
    """
    import xlsxwriter

    table = sites._table_with_lonlat(gdf)
    headers, formats, widths = _layout(table)
    stamp = sites._parse_time(meta.get("time"))
    with atomic_path(path) as tmp:
        # strings_to_urls off: openpyxl writes a URL-like text as text, not as a hyperlink
        wb = xlsxwriter.Workbook(str(tmp), {"constant_memory": True, "strings_to_urls": False})
        wb.set_properties({"created": stamp})
        ws = wb.add_worksheet(kind)
        head_fmt = wb.add_format({"bold": True, "text_wrap": True, "valign": "top"})
        fmt_objs = {f: wb.add_format({"num_format": f}) for f in set(formats) if f is not None}
        for j, w in enumerate(widths):
            ws.set_column(j, j, w - 5 / 7)
        ws.freeze_panes(1, 0)
        if len(table.columns):
            ws.autofilter(0, 0, len(table), len(table.columns) - 1)
        ws.write_row(0, 0, headers, head_fmt)
        columns = [sites._cell_values(table[c]) for c in table.columns]
        # one bound writer per column: numbers, booleans and text need no type dispatch per cell
        writers = []
        for column, fmt in zip(table.columns, formats, strict=True):
            f = fmt_objs.get(fmt)
            s = table[column]
            if pd.api.types.is_bool_dtype(s):
                w = ws.write_boolean
            elif pd.api.types.is_numeric_dtype(s):
                w = ws.write_number
            else:
                w = ws.write  # text; "=..." becomes a formula, as in openpyxl
            writers.append((w, f))
        blank = ws.write_blank
        for i, values in enumerate(zip(*columns, strict=True), start=1):
            for j, (v, (w, f)) in enumerate(zip(values, writers, strict=True)):
                if v is None:
                    if f is not None:  # openpyxl keeps a formatted empty cell
                        blank(i, j, None, f)
                elif f is None:
                    w(i, j, v)
                else:
                    w(i, j, v, f)
        info = wb.add_worksheet("metadata")
        bold = wb.add_format({"bold": True})
        info.set_column(0, 0, 40 - 5 / 7)
        info.set_column(1, 1, 80 - 5 / 7)
        info.freeze_panes(1, 0)
        info.write_row(0, 0, ["key / 项目", "value / 值"], bold)
        for i, (key, value) in enumerate(_meta_rows(table, meta, kind), start=1):
            info.write_string(i, 0, key)
            if value is not None:
                info.write(i, 1, value)
        wb.close()


# ---- comparison -----------------------------------------------------------------------------

def _cells(path: Path):
    """Every cell of every sheet: (sheet, row, col, value, type, number format, bold, wrap, valign)."""
    from openpyxl import load_workbook

    wb = load_workbook(path, read_only=True)
    try:
        for ws in wb.worksheets:
            for r, row in enumerate(ws.iter_rows(), start=1):
                for c, cell in enumerate(row, start=1):
                    value = getattr(cell, "value", None)
                    if value is None and getattr(cell, "number_format", None) in (None, "General") \
                            and not getattr(getattr(cell, "font", None), "b", False):
                        # an absent cell, an unstyled empty one and an empty string (openpyxl
                        # writes <c t="inlineStr"/>) are the same cell to a reader
                        continue
                    font, al = getattr(cell, "font", None), getattr(cell, "alignment", None)
                    yield (ws.title, r, c, value, type(value).__name__,
                           getattr(cell, "number_format", "General"),
                           bool(font and font.b), bool(al and al.wrap_text),
                           al.vertical if al else None)
    finally:
        wb.close()


def compare_cells(a: Path, b: Path) -> dict:
    """Cell-by-cell comparison of two workbooks (values, types, formats, header styles)."""
    n, diffs = 0, []
    sentinel = ("<end>",) * 9
    ia, ib = _cells(a), _cells(b)
    while True:
        x, y = next(ia, sentinel), next(ib, sentinel)
        if x == sentinel and y == sentinel:
            break
        n += 1
        if x != y and len(diffs) < 5:
            diffs.append((x, y))
    return {"cells": n, "equal": not diffs, "first_differences": [list(map(str, d)) for d in diffs]}


def compare_sheets(a: Path, b: Path) -> dict:
    """Sheet-level settings after a full load: names, panes, filter, widths, metadata rows."""
    from openpyxl import load_workbook
    from openpyxl.utils import get_column_letter

    out = {}
    wa, wb_ = load_workbook(a), load_workbook(b)
    for name, get in {
        "sheetnames": lambda w: w.sheetnames,
        "freeze_panes": lambda w: [ws.freeze_panes for ws in w.worksheets],
        "auto_filter": lambda w: [ws.auto_filter.ref for ws in w.worksheets],
        # a <col min max> range (XlsxWriter joins equal neighbours) sets every column in it
        "widths": lambda w: [{get_column_letter(i): d.width
                              for d in ws.column_dimensions.values() if d.min
                              for i in range(d.min, d.max + 1)} for ws in w.worksheets],
        "dimensions": lambda w: [ws.dimensions for ws in w.worksheets],
        "metadata": lambda w: list(w["metadata"].iter_rows(values_only=True)),
        "created": lambda w: w.properties.created,
    }.items():
        va, vb = get(wa), get(wb_)
        out[name] = True if va == vb else f"{va!r} != {vb!r}"
    return out


# ---- driver ---------------------------------------------------------------------------------

def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _write(writer: str, ranked: gpd.GeoDataFrame, path: Path) -> float:
    t0 = time.perf_counter()
    if writer == "openpyxl":
        sites.export(ranked, path, meta=META, kind="sites")
    elif writer == "openpyxl_write_only":
        write_openpyxl_write_only(ranked, path, meta=META, kind="sites")
    elif writer == "xlsxwriter":
        write_xlsxwriter(ranked, path, meta=META, kind="sites")
    else:
        raise SystemExit(f"unknown writer {writer!r}")
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="buildings")
    parser.add_argument("--cache", type=Path, default=_inputs.default_cache())
    parser.add_argument("--writers", nargs="+", default=list(WRITERS), choices=WRITERS)
    parser.add_argument("--no-formats", action="store_true", help="skip timing every suffix")
    parser.add_argument("--no-compare", action="store_true", help="skip the comparisons")
    parser.add_argument("--xlsxwriter-path", type=Path, help="folder holding the xlsxwriter package")
    parser.add_argument("--keep", action="store_true", help="keep the written files")
    parser.add_argument("--profile", choices=WRITERS,
                        help="profile one writer (top functions by cumulative time)")
    args = parser.parse_args(argv)
    if args.xlsxwriter_path:
        sys.path.insert(0, str(args.xlsxwriter_path))
    paths = _inputs.prepare(args.n, args.cache)
    ranked = sites.select_sites(gpd.read_parquet(paths["pv"]))
    out = Path(tempfile.mkdtemp(prefix="gis-bench-xlsx-"))
    res: dict = {"n": args.n, "rows": len(ranked), "columns": ranked.shape[1] + 1,
                 "load_avg": round(os.getloadavg()[0], 2)}
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        _write(args.profile, ranked, out / "profiled.xlsx")
        prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
        shutil.rmtree(out, ignore_errors=True)
        return
    if not args.no_formats:
        walls = {}
        for suffix in sites.SUFFIXES:
            t0 = time.perf_counter()
            sites.export(ranked, out / f"sites{suffix}", meta=META, kind="sites")
            walls[suffix] = round(time.perf_counter() - t0, 2)
        res["export_s"] = walls
        res["sizes_mib"] = {p.suffix: round(p.stat().st_size / 2**20, 1)
                            for p in sorted(out.glob("sites.*"))}
    walls = {}
    for writer in args.writers:
        walls[writer] = round(_write(writer, ranked, out / f"{writer}.xlsx"), 2)
        print(json.dumps({"writer": writer, "wall_s": walls[writer]}), file=sys.stderr, flush=True)
    res["xlsx_s"] = walls
    if "openpyxl" in walls:
        res["speedup"] = {w: round(walls["openpyxl"] / s, 1) for w, s in walls.items()}
    if not args.no_compare and "openpyxl" in args.writers:
        small = ranked.head(2_000)
        _write("openpyxl", small, out / "small_openpyxl.xlsx")
        res["equal"] = {}
        for writer in args.writers:
            if writer == "openpyxl":
                continue
            _write(writer, small, out / f"small_{writer}.xlsx")
            again = out / f"again_{writer}.xlsx"
            _write(writer, small, again)
            res["equal"][writer] = {
                "cells": compare_cells(out / "openpyxl.xlsx", out / f"{writer}.xlsx"),
                "sheets_2000_rows": compare_sheets(out / "small_openpyxl.xlsx",
                                                   out / f"small_{writer}.xlsx"),
                "same_bytes_when_written_twice":
                    again.read_bytes() == (out / f"small_{writer}.xlsx").read_bytes(),
            }
    res["peak_rss_mib"] = round(_rss_mib(), 1)
    if args.keep:
        res["out"] = str(out)
    else:
        shutil.rmtree(out, ignore_errors=True)
    print(json.dumps(res, ensure_ascii=False, default=str))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()

"""Site-list exports: time per format, and other ways to write the same Excel workbook.

Usage::

    python bench/bench_xlsx.py --n 100000                      # every format + Excel writers
    python bench/bench_xlsx.py --n 100000 --writers export xlsxwriter --no-formats
    python bench/bench_xlsx.py --profile export --n 10000      # where the writer's time goes

The sites are ``gis.sites.select_sites`` of the PV layer of N generated buildings (``_inputs``).
``gis.sites.export`` is timed once per suffix.  The Excel workbook is then written again by each
writer below, and every file is compared with the one ``export`` wrote, cell by cell (value,
type, number format, bold/wrap/vertical alignment of the header) over the whole sheet, and for the
sheet-level settings (sheet names, frozen panes, autofilter range, every column width, metadata
sheet) with a full ``openpyxl.load_workbook`` of a 2 000-row export.

Writers (all give the workbook ``export`` writes):

=========================  =======================================================================
``export``                 ``gis.sites.export(..., ".xlsx")``, as the run writes it: XlsxWriter
                           (``constant_memory``) for the workbook, data rows assembled column-wise
                           with Arrow (``gis.xlsx``)
``openpyxl_write_only``    openpyxl ``Workbook(write_only=True)``, one styled ``WriteOnlyCell``
                           per formatted cell (the pattern openpyxl's documentation shows)
``xlsxwriter``             XlsxWriter writing every cell (``gis.xlsx.write_workbook(...,
                           body="cells")``, the reference the tests compare with)
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

from gis import sites, xlsx  # noqa: E402
from gis.io import atomic_path  # noqa: E402

META = {"run": "bench", "time": "2026-01-01T12:00:00",
        "parameters": {"pv": {"preset": "base"}, "grid_co2_t_per_mwh": 0.5366},
        "definitions": {"annual_kwh": "capacity × specific yield × shading factor"}}
WRITERS = ("export", "openpyxl_write_only", "xlsxwriter")


def _layout(table: pd.DataFrame) -> tuple[list[str], list[str | None], list[float]]:
    """Headers, number formats and column widths exactly as ``gis.sites`` sets them."""
    return sites._excel_layout(table)


def _meta_rows(table: pd.DataFrame, meta: dict, kind: str) -> list[tuple]:
    return sites._metadata_rows(meta, kind, rows=len(table), rows_total=len(table),
                                complete_in="this workbook")


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
    columns = [xlsx._cell_values(table[c], xlsx.column_kind(table[c])) for c in table.columns]
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


def write_xlsxwriter(gdf: gpd.GeoDataFrame, path: Path, *, meta: dict, kind: str) -> None:
    """The workbook of ``export`` with XlsxWriter writing every cell (``body="cells"``)."""
    from gis import xlsx

    table = sites._table_with_lonlat(gdf)
    headers, formats, widths = _layout(table)
    with atomic_path(path) as tmp:
        xlsx.write_workbook(tmp, table, sheet=kind, headers=headers, formats=formats,
                            widths=widths, metadata=_meta_rows(table, meta, kind),
                            created=sites._parse_time(meta.get("time")), body="cells")


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
    n, diffs, worst = 0, [], 0.0
    sentinel = ("<end>",) * 9
    ia, ib = _cells(a), _cells(b)
    while True:
        x, y = next(ia, sentinel), next(ib, sentinel)
        if x == sentinel and y == sentinel:
            break
        n += 1
        if x != y and isinstance(x[3], float) and isinstance(y[3], float) and x[:3] == y[:3] \
                and x[4:] == y[4:]:
            # 16 significant digits (openpyxl, XlsxWriter) against the exact double (export)
            rel = abs(x[3] - y[3]) / max(abs(x[3]), abs(y[3]), 1e-300)
            worst = max(worst, rel)
            if rel <= 1e-15:
                continue
        if x != y and len(diffs) < 5:
            diffs.append((x, y))
    return {"cells": n, "equal": not diffs, "max_rel_diff_numbers": worst,
            "first_differences": [list(map(str, d)) for d in diffs]}


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
    if writer == "export":
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
    if "export" in walls:
        res["speedup"] = {w: round(s / walls["export"], 1) for w, s in walls.items()}
    if not args.no_compare and "export" in args.writers:
        small = ranked.head(2_000)
        _write("export", small, out / "small_export.xlsx")
        res["equal"] = {}
        for writer in args.writers:
            if writer == "export":
                continue
            _write(writer, small, out / f"small_{writer}.xlsx")
            again = out / f"again_{writer}.xlsx"
            _write(writer, small, again)
            res["equal"][writer] = {
                "cells": compare_cells(out / "export.xlsx", out / f"{writer}.xlsx"),
                "sheets_2000_rows": compare_sheets(out / "small_export.xlsx",
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

"""Excel workbooks written in bulk: one sheet of rows under a styled header, and a metadata sheet.

XlsxWriter (``constant_memory`` mode) writes the workbook: styles, number formats, column widths,
frozen header, autofilter, the header row, the last data row and the metadata sheet.  The data
rows in between are assembled column by column with Arrow string kernels into exactly the XML
XlsxWriter writes for them cell by cell, and spliced into the sheet before its last row; the
per-cell path (``body="cells"``) is kept as the reference the tests compare with.  Numbers are
written in their shortest round-trip form (Arrow's), so every value reads back as the same
double; XlsxWriter's own per-cell writer rounds to 16 significant digits.
"""

from __future__ import annotations

import datetime as _dt
import re
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

#: Rows per assembled block of XML (bounds the memory of the assembly, ≈ 100 B per cell).
CHUNK_ROWS = 32_768
_SHEET = "xl/worksheets/sheet1.xml"
#: Deflate level of the data sheet (the other parts are small and keep XlsxWriter's level), with
#: ISA-L (:mod:`isal`) when installed, else zlib.  ISA-L's level 1 deflates the demo's 99 MB sheet
#: ≈ 4× faster than zlib's level 1, to a slightly smaller file; both are plain deflate.
SHEET_DEFLATE_LEVEL = 1
# what XlsxWriter escapes with _xHHHH_ (control characters, non-characters, literal escapes)
_CONTROL = r"[\x00-\x08\x0b-\x1f\x{FFFE}\x{FFFF}]|_x[0-9a-fA-F]{4}_"


def column_kind(series: pd.Series) -> Literal["bool", "number", "text"]:
    """How a column's cells are written: Excel booleans, numbers or text."""
    if pd.api.types.is_bool_dtype(series):
        return "bool"
    if pd.api.types.is_numeric_dtype(series):
        return "number"
    return "text"


def write_workbook(
    path: str | Path,
    table: pd.DataFrame,
    *,
    sheet: str,
    headers: Sequence[str],
    formats: Sequence[str | None],
    widths: Sequence[float],
    metadata: Sequence[tuple[str, Any]],
    created: _dt.datetime,
    body: Literal["columns", "cells"] = "columns",
    float_text: Callable[[int], pa.Array | None] | None = None,
) -> Path:
    """Write ``table`` as an Excel workbook: a sheet of the rows and a ``metadata`` sheet.

    Parameters
    ----------
    path : str or Path
        Output ``.xlsx`` (written in place; callers wrap it in :func:`gis.io.atomic_path`).
    table : DataFrame
        The rows, at most 1 048 575 of them.  Missing values and non-finite numbers become empty
        cells (keeping their column's number format); empty text writes no cell.
    sheet : str
        Name of the data sheet.
    headers, formats, widths : sequences, one item per column
        Header text (bold, wrapped, top-aligned), Excel number format (None: General) and
        column width [Excel character units].
    metadata : sequence of (key, value)
        Rows of the ``metadata`` sheet below its bold header ``key / 项目``, ``value / 值``.
    created : datetime
        Document creation and modification time (fixed, so equal content gives equal bytes).
    body : {"columns", "cells"}
        ``columns``: data rows assembled column-wise (fast); ``cells``: XlsxWriter writes every
        cell (the reference).
    float_text : callable, optional
        ``float_text(j)``: Arrow's text of the doubles of column ``j``
        (:func:`gis.csvtext.float_strings`) for at least ``len(table)`` rows, or None; shared
        with the CSV writer of the same table.

    Returns
    -------
    Path
    """
    import xlsxwriter

    path = Path(path)
    n, m = table.shape
    # the first and last data rows go through XlsxWriter's cells, so it numbers the formats in
    # the order it meets them and sizes the sheet as when it writes every cell; then every data
    # row is replaced by the column-wise rows (numbers in their shortest exact form)
    spliced = body == "columns" and n >= 1
    target = path.with_name(path.name + ".cells") if spliced else path
    # strings_to_urls off: a URL-like text stays text; NaN/inf never reach write_number
    wb = xlsxwriter.Workbook(str(target), {"constant_memory": True, "strings_to_urls": False,
                                           "nan_inf_to_errors": True})
    wb.set_properties({"created": created})
    ws = wb.add_worksheet(sheet)
    for j, width in enumerate(widths):
        # XlsxWriter stores (round(7 w) + 5) / 7 for a width w: w − 5/7 stores ``width`` exactly
        ws.set_column(j, j, width - 5 / 7)
    ws.freeze_panes(1, 0)
    if m:
        ws.autofilter(0, 0, n, m - 1)
    ws.write_row(0, 0, list(headers), wb.add_format({"bold": True, "text_wrap": True,
                                                     "valign": "top"}))
    by_code = {f: wb.add_format({"num_format": f}) for f in dict.fromkeys(formats) if f}
    cell_formats = [by_code.get(f) for f in formats]
    kinds = [column_kind(table[c]) for c in table.columns]
    if spliced:
        ends = sorted({0, n - 1})
        _write_cells(ws, table.iloc[ends], [i + 1 for i in ends], kinds, cell_formats)
    else:
        _write_cells(ws, table, range(1, n + 1), kinds, cell_formats)
    info = wb.add_worksheet("metadata")
    info.set_column(0, 0, 40 - 5 / 7)
    info.set_column(1, 1, 80 - 5 / 7)
    info.freeze_panes(1, 0)
    info.write_row(0, 0, ["key / 项目", "value / 值"], wb.add_format({"bold": True}))
    for i, (key, value) in enumerate(metadata, start=1):
        info.write_string(i, 0, str(key))
        if isinstance(value, str):
            info.write_string(i, 1, value)
        elif value is not None:
            info.write(i, 1, value)
    wb.close()
    if spliced:
        styles = [None if f is None else f.xf_index for f in cell_formats]
        blocks = _prefetched(_row_blocks(table, 2, kinds, styles, float_text))
        try:
            _splice_rows(target, path, blocks=blocks)
        finally:
            target.unlink(missing_ok=True)
    return path


# ---- the reference: XlsxWriter cell by cell --------------------------------------------------


def _cell_values(series: pd.Series, kind: str) -> list:
    """Python values for XlsxWriter; None for a missing value, a non-finite number, empty text."""
    if kind == "bool":
        missing = series.isna().to_numpy()
        values = [bool(v) for v in series.to_numpy(dtype=object, na_value=False)]
    elif kind == "number":
        floats = series.to_numpy(dtype="float64", na_value=np.nan)
        missing = ~np.isfinite(floats)
        if pd.api.types.is_integer_dtype(series):
            values = series.to_numpy(dtype=object, na_value=None).tolist()
        else:
            values = floats.tolist()
    else:
        text = _as_text(series)
        missing = (text.isna() | (text == "")).to_numpy(dtype=bool, na_value=True)
        values = text.to_numpy(dtype=object, na_value=None).tolist()
    if missing.any():
        values = np.array(values, dtype=object)
        values[missing] = None
        values = values.tolist()
    return values


def _as_text(series: pd.Series) -> pd.Series:
    """Text of a column as Excel shows it (``str`` of each value), missing values kept."""
    if pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series):
        return series.astype("string")
    return series.astype(object).map(str, na_action="ignore").astype("string")


def _write_cells(ws, table: pd.DataFrame, rows: Sequence[int], kinds: list[str],
                 cell_formats: list) -> None:
    """Every cell of ``table`` through XlsxWriter, its rows at the 0-based sheet rows ``rows``."""
    writers = {"bool": ws.write_boolean, "number": ws.write_number, "text": ws.write_string}
    plan = [(writers[k], f) for k, f in zip(kinds, cell_formats, strict=True)]
    columns = [_cell_values(table[c], k) for c, k in zip(table.columns, kinds, strict=True)]
    blank = ws.write_blank
    for i, values in zip(rows, zip(*columns, strict=True), strict=True):
        for j, value in enumerate(values):
            write, fmt = plan[j]
            if value is None:
                if fmt is not None:  # an empty cell keeps its column's number format
                    blank(i, j, None, fmt)
            elif fmt is None:
                write(i, j, value)
            else:
                write(i, j, value, fmt)


# ---- the data rows, column-wise --------------------------------------------------------------


def _column_name(j: int) -> str:
    from xlsxwriter.utility import xl_col_to_name

    return xl_col_to_name(j)


def _escape_text(text: pa.Array) -> pa.Array:
    """XlsxWriter's escapes of inline text: control characters as _xHHHH_, then & < >."""
    special = pc.match_substring_regex(text, _CONTROL)
    if pc.any(special).as_py():
        from xlsxwriter.xmlwriter import XMLwriter

        # rare (control characters in a name): XlsxWriter's own function on those values only
        values = np.array(text.to_pylist(), dtype=object)
        rows = np.flatnonzero(special.fill_null(False).to_numpy(zero_copy_only=False))
        values[rows] = [XMLwriter._escape_control_characters(v) for v in values[rows]]
        text = pa.array(values.tolist(), type=pa.string())
    for char, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;")):
        text = pc.replace_substring(text, char, entity)
    return text


def _preserve(text: pa.Array) -> pa.Array:
    """True where text starts or ends with white space (Python's ``\\s``, as XlsxWriter tests)."""
    ends = [pc.utf8_slice_codeunits(text, 0, 1), pc.utf8_slice_codeunits(text, -1, 2**31 - 1)]
    chars = pc.unique(pa.concat_arrays(ends)).drop_null().to_pylist()
    spaces = pa.array([c for c in chars if re.match(r"\s", c)], type=pa.string())
    if not len(spaces):
        return pa.array(np.zeros(len(text), dtype=bool))
    return pc.or_(pc.is_in(ends[0], value_set=spaces), pc.is_in(ends[1], value_set=spaces))


def _column_cells(series: pd.Series, kind: str, letter: str, number: pa.Array,
                  style: int | None, raw: pa.Array | None = None) -> list:
    """The ``<c>`` elements of one column, as pieces to join row by row (empty text where no
    cell is written).

    ``letter`` opens the cell (``<c r="AB``) and ``number`` holds the rows' numbers.  A column
    whose every row has a cell is returned as its pieces (texts and arrays), joined with the
    other columns' in one pass (:func:`_row_blocks`); a column with empty cells as one array.
    ``raw``: the text of a float64 column's doubles, when already made.
    """
    s = "" if style is None else f' s="{style}"'
    if kind == "bool":
        valid = ~series.isna().to_numpy()
        value = pa.array(np.where(series.to_numpy(dtype=object, na_value=False).astype(bool),
                                  "1", "0"), type=pa.string())
        pieces = [letter, number, f'"{s} t="b"><v>', value, "</v></c>"]
    elif kind == "number":
        floats = series.to_numpy(dtype="float64", na_value=np.nan)
        valid = np.isfinite(floats)
        if pd.api.types.is_integer_dtype(series):
            numbers = pa.array(series.to_numpy(dtype="int64", na_value=0))
        else:
            numbers = pa.array(floats)
        value = pc.cast(numbers, pa.string()) if raw is None else raw
        pieces = [letter, number, f'"{s}><v>', value, "</v></c>"]
    else:
        text = pa.array(_as_text(series).to_numpy(dtype=object, na_value=None), type=pa.string())
        valid = pc.and_(pc.is_valid(text), pc.not_equal(text, "")).fill_null(False)
        valid = valid.to_numpy(zero_copy_only=False)
        text = text.fill_null("")
        preserve = _preserve(text)
        t_open = (pc.if_else(preserve, '<t xml:space="preserve">', "<t>")
                  if pc.any(preserve).as_py() else "<t>")
        pieces = [letter, number, f'"{s} t="inlineStr"><is>', t_open, _escape_text(text),
                  "</t></is></c>"]
    if valid.all():
        return pieces
    cell = pc.binary_join_element_wise(*pieces, "")
    if style is not None:  # an empty cell keeps its column's number format
        other = pc.binary_join_element_wise(letter, number, f'"{s}/>', "")
    else:
        other = pa.array([""] * len(cell), type=pa.string())
    return [pc.if_else(pa.array(valid), cell, other)]


def _merged(pieces: list) -> list:
    """Adjacent constant texts joined into one (fewer arguments for the row-wise join)."""
    out: list = []
    for piece in pieces:
        if isinstance(piece, str) and out and isinstance(out[-1], str):
            out[-1] += piece
        else:
            out.append(piece)
    return out


def _row_blocks(table: pd.DataFrame, first_row: int, kinds: list[str],
                styles: list[int | None],
                float_text: Callable[[int], pa.Array | None] | None = None,
                ) -> Iterator[memoryview]:
    """The ``<row>`` elements of ``table`` (Excel row ``first_row`` on), as UTF-8 blocks.

    Every row is joined from its cells' pieces in one kernel call, so each byte of the sheet
    is written once.
    """
    letters = [f'<c r="{_column_name(j)}' for j in range(table.shape[1])]
    for lo in range(0, len(table), CHUNK_ROWS):
        part = table.iloc[lo: lo + CHUNK_ROWS]
        number = pc.cast(pa.array(np.arange(first_row + lo, first_row + lo + len(part))),
                         pa.string())
        pieces: list = ['<row r="', number, '">']
        for j, kind in enumerate(kinds):
            pieces += _column_cells(
                part.iloc[:, j], kind, letters[j], number, styles[j],
                _slice(float_text, j, lo, len(part)) if kind == "number" else None)
        rows = pc.binary_join_element_wise(*_merged(pieces + ["</row>"]), "")
        yield _joined(rows)


def _slice(float_text, j: int, lo: int, n: int) -> pa.Array | None:
    """Rows ``lo`` to ``lo + n`` of the shared text of column ``j`` (None: not shared)."""
    raw = float_text(j) if float_text is not None else None
    return None if raw is None else raw.slice(lo, n)


def _prefetched(blocks: Iterator[memoryview]) -> Iterator[memoryview]:
    """The blocks, the next one assembled in a thread while the current one is compressed.

    Arrow's kernels and zlib both release the GIL, so on two cores the assembly of a block and
    the compression of the previous one overlap.
    """
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(next, blocks, None)
        while (block := pending.result()) is not None:
            pending = pool.submit(next, blocks, None)
            yield block


def _joined(strings: pa.Array) -> memoryview:
    """All values of a string array without nulls, concatenated (a view of its data buffer)."""
    offsets = np.frombuffer(strings.buffers()[1], dtype=np.int32)
    lo, hi = offsets[strings.offset], offsets[strings.offset + len(strings)]
    return memoryview(strings.buffers()[2].slice(lo, hi - lo)) if hi > lo else memoryview(b"")


def _sheet_compressor(level: int):
    """A raw-deflate compressor for the zip entry of the sheet: ISA-L's when installed."""
    try:
        from isal import isal_zlib
    except ImportError:  # pragma: no cover - isal is a dependency; zlib is the fallback
        import zlib

        return zlib.compressobj(level, zlib.DEFLATED, -15)
    # ISA-L has levels 0–3; 1 is its fast level with zlib-1's ratio
    return isal_zlib.compressobj(min(level, isal_zlib.ISAL_BEST_COMPRESSION), isal_zlib.DEFLATED,
                                 -15)


def _splice_rows(source: Path, target: Path, *, blocks: Iterator[memoryview]) -> None:
    """Copy the workbook ``source`` to ``target``, its first sheet's data rows being ``blocks``.

    The rows from Excel row 2 to the end of ``<sheetData>`` are replaced; the header row and
    everything else stay as XlsxWriter wrote them.
    """
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w") as zout:
        for info in zin.infolist():
            if info.filename != _SHEET:
                zout.writestr(info, zin.read(info.filename))
                continue
            xml = zin.read(info.filename)
            start, end = xml.find(b'<row r="2"'), xml.find(b"</sheetData>")
            if not 0 < start < end:
                raise RuntimeError("unexpected sheet layout from XlsxWriter: no data rows")
            out = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            out.compress_type = zipfile.ZIP_DEFLATED
            # deflate level 1: a third of level 6's time for a sheet ≈ 25 % larger
            level = "compress_level" if hasattr(out, "compress_level") else "_compresslevel"
            setattr(out, level, SHEET_DEFLATE_LEVEL)
            out.external_attr = info.external_attr
            with zout.open(out, "w", force_zip64=True) as fh:
                if hasattr(fh, "_compressor"):
                    # zipfile deflates with zlib; the entry's deflate stream from ISA-L instead
                    fh._compressor = _sheet_compressor(SHEET_DEFLATE_LEVEL)
                fh.write(xml[:start])
                for block in blocks:
                    fh.write(block)
                fh.write(xml[end:])

"""CSV text of a table, column by column with Arrow, byte for byte what pandas writes.

``DataFrame.to_csv`` (index off, ``na_rep=""``, ``QUOTE_MINIMAL``) formats every float with
numpy's ``astype(str)`` and hands the rows to Python's ``csv`` writer one by one; on a site list
of 55 000 rows × 40 columns that is ≈ 2 s of CPU.  :func:`csv_bytes` builds the same bytes with
Arrow string kernels: each column is formatted once, in C, then the columns are joined row-wise.

What pandas writes, and how each piece is reproduced:

* floats: the shortest text that reads back as the same double, positional from 10⁻⁴ up to
  10¹⁶ (``120.0``, ``0.0001``, ``-0.0``) and scientific outside (``1e-05``, ``1e+16``); missing
  → empty.  Arrow's cast gives the same shortest digits but drops ``.0`` and switches to
  scientific at other bounds, so it is used where the layouts agree (finite values in
  [10⁻⁴, 10¹⁶) or zero whose Arrow text has no exponent; ``.0`` added to whole numbers) and
  numpy's ``astype(str)`` — pandas' own call — formats the rest, value by value.
* integers, booleans (``True``/``False``), text: as ``str``; missing → empty.
* quoting as the ``csv`` module's ``QUOTE_MINIMAL``: a field holding the delimiter, the quote
  character or a character the ``csv`` module quotes for this line terminator (probed, as it
  differs between Python versions) is quoted, its quotes doubled; in a one-column table an empty
  field is written ``""``.
* the header through the ``csv`` module itself.

A table with a column of another kind (dates, categories, mixed objects, nullable floats) or no
column is written by pandas, so the result is always pandas' own.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

#: Rows formatted per block (bounds Arrow's 32-bit string offsets and the memory of a block).
CHUNK_ROWS = 65_536
# floats whose Arrow text is laid out as Python's repr (outside: numpy formats them)
_POSITIONAL_LOW, _POSITIONAL_HIGH = 1e-4, 1e16


def csv_bytes(frame: pd.DataFrame, *, lineterminator: str = os.linesep,
              float_text: Callable[[int], pa.Array | None] | None = None) -> bytes:
    """UTF-8 bytes of ``frame.to_csv(index=False, lineterminator=lineterminator)``.

    Parameters
    ----------
    frame : DataFrame
        The table; its index is not written.
    lineterminator : str
        End of each line (pandas' default is ``os.linesep``).
    float_text : callable, optional
        ``float_text(j)``: Arrow's text of the doubles of column ``j``, whole column
        (:func:`float_strings`), or None; lets writers of the same table share it.

    Returns
    -------
    bytes
        Exactly ``frame.to_csv(index=False, lineterminator=lineterminator).encode("utf-8")``.

    Examples
    --------
    >>> t = pd.DataFrame({"name": ["金桥, 北", "x"], "kwh": [1e-05, 120.0],
    ...                   "n": [1, 2], "new": [True, None]})
    >>> print(csv_bytes(t, lineterminator="\\n").decode(), end="")
    name,kwh,n,new
    "金桥, 北",1e-05,1,True
    x,120.0,2,
    >>> csv_bytes(t, lineterminator="\\n") == t.to_csv(index=False, lineterminator="\\n").encode()
    True
    """
    if _supported(frame):
        header = io.StringIO()
        csv.writer(header, lineterminator=lineterminator).writerow(list(frame.columns))
        try:
            blocks = list(_row_blocks(frame, lineterminator, float_text))
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            pass  # values Arrow does not take (integers past 64 bits, lone surrogates)
        else:
            return header.getvalue().encode("utf-8") + b"".join(blocks)
    return frame.to_csv(index=False, lineterminator=lineterminator).encode("utf-8")


def csv_text(frame: pd.DataFrame, *, lineterminator: str = os.linesep) -> str:
    """``frame.to_csv(index=False, lineterminator=lineterminator)``, through :func:`csv_bytes`."""
    return csv_bytes(frame, lineterminator=lineterminator).decode("utf-8")


# ---- which columns are formatted here -----------------------------------------------------


def _kind(series: pd.Series) -> str | None:
    """How a column is formatted: float, int, bool, text, empty; None when pandas must."""
    dtype = series.dtype
    if isinstance(dtype, np.dtype):
        if dtype == np.float64:
            return "float"
        if dtype.kind in "iu":
            return "int"
        if dtype.kind == "b":
            return "bool"
        if dtype.kind == "f":
            return "numpy"  # float32/float16: numpy's own text of that precision
        if dtype.kind == "O":
            inferred = pd.api.types.infer_dtype(series, skipna=True)
            return {"string": "text", "empty": "empty", "boolean": "bool",
                    "integer": "int"}.get(inferred)
        return None
    if isinstance(dtype, pd.StringDtype):
        return "text"
    if isinstance(dtype, pd.BooleanDtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype) and isinstance(dtype, pd.api.extensions.ExtensionDtype):
        return "int"
    return None


def _supported(frame: pd.DataFrame) -> bool:
    if frame.shape[1] == 0 or not all(isinstance(c, str) for c in frame.columns):
        return False  # no column, or labels pandas formats as values (numbers, tuples)
    return all(_kind(frame.iloc[:, j]) is not None for j in range(frame.shape[1]))


# ---- formatting --------------------------------------------------------------------------


def float_strings(values: np.ndarray) -> pa.Array:
    """Arrow's text of doubles: the shortest digits that read back as the same double.

    The laid-out text of the CSV (:func:`csv_bytes`) and of the Excel sheet (:mod:`gis.xlsx`)
    start from it.
    """
    return pc.cast(pa.array(values, type=pa.float64()), pa.string())


def _float_text(values: np.ndarray, raw: pa.Array | None = None) -> pa.Array:
    """Python's repr of each double (numpy's ``astype(str)``); NaN → empty.

    ``raw``: :func:`float_strings` of ``values`` when already made.
    """
    text = float_strings(values) if raw is None else raw
    size = np.abs(values)
    missing = np.isnan(values)
    agree = (np.isfinite(values) & (((size >= _POSITIONAL_LOW) & (size < _POSITIONAL_HIGH))
                                    | (values == 0)))
    agree &= ~pc.match_substring(text, "e").to_numpy(zero_copy_only=False)
    whole = ~pc.match_substring(text, ".").to_numpy(zero_copy_only=False)
    text = pc.if_else(pa.array(agree & whole), pc.binary_join_element_wise(text, ".0", ""), text)
    rest = ~agree & ~missing
    if rest.any():
        # outside the range where the layouts agree (rare): numpy, as pandas does
        out = np.asarray(text.to_numpy(zero_copy_only=False), dtype=object)
        out[rest] = values[rest].astype(str).astype(object)
        text = pa.array(out, type=pa.string())
    if missing.any():
        text = pc.if_else(pa.array(missing), "", text)
    return text


def _quoted(text: pa.Array, specials: str, *, alone: bool) -> pa.Array:
    """``QUOTE_MINIMAL``: quote fields holding a special character; ``""`` for empty alone."""
    pattern = "[" + "".join("\\" + c if c in "\\^]-[" else c for c in specials) + "]"
    need = pc.match_substring_regex(text, pattern)
    if alone:
        need = pc.or_(need, pc.equal(text, ""))
    if not pc.any(need).as_py():
        return text
    quoted = pc.binary_join_element_wise('"', pc.replace_substring(text, '"', '""'), '"', "")
    return pc.if_else(need, quoted, text)


def _column_text(series: pd.Series, kind: str, raw: pa.Array | None = None) -> pa.Array:
    """The text of each cell of one column (no nulls)."""
    if kind == "float":
        return _float_text(series.to_numpy(dtype="float64"), raw)
    if kind == "numpy":
        missing = series.isna().to_numpy()
        out = series.to_numpy().astype(str).astype(object)
        out[missing] = ""
        return pa.array(out, type=pa.string())
    if kind == "empty":
        return pa.array(np.full(len(series), "", dtype=object), type=pa.string())
    if kind == "bool":
        flags = pa.array(series.to_numpy(dtype=object, na_value=None), type=pa.bool_())
        return pc.if_else(flags, "True", "False").fill_null("")
    if kind == "int":
        ints = pa.array(series.to_numpy(dtype=object, na_value=None)
                        if series.dtype == object or series.hasnans else series.to_numpy())
        return pc.cast(ints, pa.string()).fill_null("")
    if series.dtype != object:
        text = pa.array(series.array)  # pandas' string arrays hand their values to Arrow
        if isinstance(text, pa.ChunkedArray):
            text = text.combine_chunks()
        text = text.cast(pa.string())
    else:
        text = pa.array(series.to_numpy(dtype=object, na_value=None), type=pa.string())
    return text.fill_null("")


def _specials(lineterminator: str) -> str:
    """Characters that make the ``csv`` module quote a field (with ``,`` and ``"``)."""
    found = []
    for char in dict.fromkeys(',"\r\n' + lineterminator):
        buf = io.StringIO()
        csv.writer(buf, lineterminator=lineterminator).writerow([f"a{char}b", "x"])
        if buf.getvalue().startswith('"'):
            found.append(char)
    return "".join(found)


def _row_blocks(frame: pd.DataFrame, lineterminator: str,
                float_text: Callable[[int], pa.Array | None] | None = None) -> Iterator[bytes]:
    """The data lines, :data:`CHUNK_ROWS` rows at a time, as UTF-8 bytes."""
    kinds = [_kind(frame.iloc[:, j]) for j in range(frame.shape[1])]
    specials = _specials(lineterminator)
    alone = frame.shape[1] == 1
    for lo in range(0, len(frame), CHUNK_ROWS):
        part = frame.iloc[lo: lo + CHUNK_ROWS]
        cells = []
        for j, kind in enumerate(kinds):
            raw = float_text(j) if float_text is not None and kind == "float" else None
            text = _column_text(part.iloc[:, j], kind,
                                None if raw is None else raw.slice(lo, len(part)))
            if kind in ("text", "numpy") or alone:
                text = _quoted(text, specials, alone=alone)
            cells.append(text)
        cells[-1] = pc.binary_join_element_wise(cells[-1], lineterminator, "")
        rows = pc.binary_join_element_wise(*cells, ",") if len(cells) > 1 else cells[0]
        yield _joined(rows)


def _joined(strings: pa.Array) -> bytes:
    """All values of a string array without nulls, concatenated (its data buffer)."""
    offsets = np.frombuffer(strings.buffers()[1], dtype=np.int32)
    lo, hi = offsets[strings.offset], offsets[strings.offset + len(strings)]
    return strings.buffers()[2].slice(lo, hi - lo).to_pybytes() if hi > lo else b""

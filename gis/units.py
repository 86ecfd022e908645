"""Numbers as people write them: units, decimal commas, ranges, text around the number.

OpenStreetMap and Chinese survey exports carry attributes such as ``"15m"``, ``"12 m"``,
``"约15米"``, ``"3-4"``, ``"2,5"``, ``"3层"``, ``"5F"`` or ``"40 ft"``.  :func:`parse_numbers` turns
them into floats in the attribute's canonical unit, vectorised over the distinct values with one
regular expression (pandas ``str.extract``), and says which values could not be read so that the
caller can count them in one warning.

Rules
-----
- one number, optionally a range ``a-b`` / ``a–b`` / ``a~b`` / ``a to b`` / ``a至b`` (the mean is
  taken: OSM's convention for ``building:levels=3-4`` is not fixed, the mean is the least biased
  single figure), optionally followed by a unit, with any text without digits around it
  (``约15米``, ``approx. 12 m``, ``地上3层``);
- a decimal comma (``12,5``) is a decimal point unless exactly three digits follow it and no other
  separator is present (``1,234`` is a thousands separator);
- full-width digits and letters (``１２米``) are read as their ASCII forms (Unicode NFKC);
- units: lengths ``m``/``米``/``metre(s)``/``meter(s)`` (kept) and ``ft``/``feet``/``'`` (× 0.3048);
  storeys ``层``/``F``/``floor(s)``/``level(s)``/``storey(s)``; angles ``°``/``deg``/``度``;
  a unit of another kind (``3层`` given as a height) makes the value unreadable;
- two numbers that are not a range (``[80, 90]``, ``3/5``) and text without a number are unreadable.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

#: feet → metres (international foot, exact by definition)
FOOT_M = 0.3048

#: unit words by kind; the first group of each kind needs no conversion
_UNITS = {
    "length": {"m": 1.0, "米": 1.0, "metre": 1.0, "metres": 1.0, "meter": 1.0, "meters": 1.0,
               "ft": FOOT_M, "feet": FOOT_M, "foot": FOOT_M, "'": FOOT_M},
    "storeys": {"层": 1.0, "f": 1.0, "floor": 1.0, "floors": 1.0, "level": 1.0, "levels": 1.0,
                "storey": 1.0, "storeys": 1.0, "stories": 1.0, "story": 1.0, "层楼": 1.0},
    "angle": {"°": 1.0, "deg": 1.0, "degree": 1.0, "degrees": 1.0, "度": 1.0},
    "year": {"年": 1.0},
    "power": {"kw": 1.0, "kwp": 1.0, "千瓦": 1.0, "mw": 1000.0, "mwp": 1000.0},
    "volume": {"m3": 1.0, "m³": 1.0, "立方米": 1.0, "方": 1.0},
    "area": {"m2": 1.0, "m²": 1.0, "平方米": 1.0, "平米": 1.0},
    "volume_per_area": {"m3/ha": 1.0, "m³/ha": 1.0, "m3/hm2": 1.0, "m³/hm²": 1.0},
}
_ALL_UNITS = sorted({u for table in _UNITS.values() for u in table}, key=len, reverse=True)
_NUM = r"\d+(?:\.\d+)?"
_PATTERN = re.compile(
    r"^[^\d]*?(?P<a>-?" + _NUM + r")"
    r"(?:\s*(?:-|–|—|~|～|to|至|到)\s*(?P<b>" + _NUM + r"))?"
    r"\s*(?P<unit>" + "|".join(re.escape(u) for u in _ALL_UNITS) + r")?"
    r"(?![\d.])[^\d]*$",
    flags=re.IGNORECASE)
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_DECIMAL_COMMA = re.compile(r"(?<=\d),(?=\d)")


def parse_numbers(values: pd.Series, *, kind: str | None = None) -> tuple[pd.Series, pd.Series]:
    """Floats from numbers written with units, decimal commas, ranges or text around them.

    Parameters
    ----------
    values : Series
        Numbers or text.  Numeric dtypes are returned as floats unchanged.
    kind : {"length", "storeys", "angle", "year", "power", "volume", "area", "volume_per_area"}, optional
        The attribute's kind: which units are accepted, and how they convert (lengths to metres,
        power to kW).  None accepts no unit.

    Returns
    -------
    numbers : Series of float
        Aligned to ``values``; NaN where the value is missing or unreadable.
    unreadable : Series of bool
        True where a non-blank value could not be read (to count and show in a warning).

    Examples
    --------
    >>> nums, bad = parse_numbers(pd.Series(["15m", "12 m", "约15米", "40 ft", "3-4", "12,5",
    ...                                      "3层", "n/a", None, "-2"]), kind="length")
    >>> nums.round(3).tolist()
    [15.0, 12.0, 15.0, 12.192, 3.5, 12.5, nan, nan, nan, -2.0]
    >>> bad.tolist()
    [False, False, False, False, False, False, True, True, False, False]
    >>> parse_numbers(pd.Series(["5F", "2.5", "地上3层", "1,234"]), kind="storeys")[0].tolist()
    [5.0, 2.5, 3.0, 1234.0]
    >>> parse_numbers(pd.Series(["1985-05-12", "~1900", "[80, 90]"]), kind="year")[0].tolist()
    [1985.0, 1900.0, nan]
    """
    if pd.api.types.is_bool_dtype(values):
        return pd.Series(np.nan, index=values.index), values.notna()
    if pd.api.types.is_numeric_dtype(values):
        return values.astype(float), pd.Series(False, index=values.index)
    text = values.astype("string")
    codes, uniques = pd.factorize(text)  # each distinct spelling is parsed once
    if len(uniques) == 0:
        return pd.Series(np.nan, index=values.index), pd.Series(False, index=values.index)
    parsed, unreadable = _parse_unique(pd.Series(uniques, dtype="string"), kind)
    take = np.where(codes >= 0, codes, 0)
    numbers = np.where(codes >= 0, parsed[take], np.nan)
    bad = np.where(codes >= 0, unreadable[take], False)
    return pd.Series(numbers, index=values.index, dtype=float), pd.Series(bad, index=values.index)


def _parse_unique(text: pd.Series, kind: str | None) -> tuple[np.ndarray, np.ndarray]:
    norm = text.str.normalize("NFKC").str.strip()
    blank = (norm == "").fillna(True).to_numpy(bool)
    norm = norm.str.replace(_THOUSANDS, "", regex=True).str.replace(_DECIMAL_COMMA, ".", regex=True)
    parts = norm.str.extract(_PATTERN)
    a = pd.to_numeric(parts["a"], errors="coerce").to_numpy(float)
    b = pd.to_numeric(parts["b"], errors="coerce").to_numpy(float)
    value = np.where(np.isnan(b), a, (a + b) / 2.0)
    if kind == "year":  # 1985-05-12 is a date, not a range: its first four digits are the year
        year = pd.to_numeric(norm.str.extract(r"(?<!\d)(\d{4})(?!\d)", expand=False),
                             errors="coerce").to_numpy(float)
        value = np.where(np.isnan(year), value, year)
    unit = parts["unit"].str.lower()
    factors = pd.Series(_UNITS.get(kind, {}) if kind else {}, dtype=float)
    factor = unit.map(factors).to_numpy(float)
    factor = np.where(unit.isna().to_numpy(bool), 1.0, factor)  # no unit: the canonical one
    value = value * factor
    unreadable = np.isnan(value) & ~blank
    return value, unreadable


__all__ = ["parse_numbers", "FOOT_M"]

"""Horizontal bar charts of the report, written as SVG text.

The report's charts are a few bars with category labels, a value axis and at most a target
line and a legend.  Written here directly, a chart costs well under a millisecond; drawn with a
plotting library (layout, tick and text objects, a tight bounding box computed by a first
draw) each cost ≈ 60 ms and the library's import ≈ 0.4 s of every run.  Text stays text, so
the browser draws Chinese labels with its own fonts; every label is XML-escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

import numpy as np

#: Points per inch: the SVG's user units are points, as a figure's size in inches × 72.
PT = 72.0
_FONT = 10.0  # [pt]
_SMALL = 8.0  # legend text [pt]
_TICK = 3.5  # tick length [pt]


@dataclass(frozen=True)
class Bars:
    """One series of bars: a value per category (NaN: no bar).

    ``colours`` is one colour or one per category; ``offset`` and ``height`` place the bars
    around each category's centre [category units]; ``label`` names the series in the legend.
    """

    values: Sequence[float]
    colours: str | Sequence[str]
    label: str | None = None
    offset: float = 0.0
    height: float = 0.8


def text_width(text: str, size: float = _FONT) -> float:
    """Approximate width of a label [pt]: CJK characters one em, others 0.6 em."""
    return sum(size if ord(ch) > 0x2E80 else 0.6 * size for ch in text)


def nice_ticks(lo: float, hi: float, *, most: int = 9) -> list[float]:
    """Round tick values covering [lo, hi]: steps of 1, 2, 2.5 or 5 × 10ⁿ, at most ``most``.

    Examples
    --------
    >>> nice_ticks(0, 100)
    [0.0, 20.0, 40.0, 60.0, 80.0, 100.0]
    >>> nice_ticks(0, 0.7)
    [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
    """
    span = hi - lo
    if not (math.isfinite(span) and span > 0):
        return [lo]
    power = 10.0 ** math.floor(math.log10(span / most))
    for step in (1, 2, 2.5, 5, 10, 20):
        size = step * power
        first, last = math.ceil(lo / size - 1e-9), math.floor(hi / size + 1e-9)
        if last - first + 1 <= most:
            return [round(k * size, 12) for k in range(first, last + 1)]
    return [lo, hi]


def tick_label(value: float, ticks: Sequence[float]) -> str:
    """A tick's text, with as many decimals as the step between ticks needs."""
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else abs(value) or 1.0
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step < 1 else 0
    if step == 2.5 * 10.0 ** math.floor(math.log10(step)) and step < 10:
        decimals += 1  # 0.25, 2.5
    return f"{value:,.{decimals}f}"


def hbar_chart(categories: Sequence[str], series: Sequence[Bars], *, size: tuple[float, float],
               xlabel: str, target: float | None = None, target_label: str | None = None,
               xlim: tuple[float, float] | None = None, frame: bool = True,
               legend: bool = False) -> str:
    """A horizontal bar chart as SVG text, the first category at the top.

    Parameters
    ----------
    categories : sequence of str
        Labels on the vertical axis.
    series : sequence of Bars
    size : (float, float)
        Width and height [in].
    xlabel : str
        Label of the value axis.
    target : float, optional
        A dashed vertical line at this value (``target_label`` names it in the legend).
    xlim : (float, float), optional
        Value-axis range; default from 0 (or the smallest value) to 5 % past the largest value
        or target.
    frame : bool
        Draw all four sides of the plot (else only the left and bottom axes).
    legend : bool
        A legend of the labelled series and the target line, at the lower right.

    Returns
    -------
    str
        The SVG document.
    """
    width, height = size[0] * PT, size[1] * PT
    values = [np.asarray(s.values, dtype=float) for s in series]
    finite = np.concatenate([v[np.isfinite(v)] for v in values] + [np.zeros(1)])
    if target is not None and math.isfinite(target):
        finite = np.append(finite, target)
    if xlim is None:
        lo, hi = min(0.0, float(finite.min()) * 1.05), max(0.0, float(finite.max()) * 1.05)
        xlim = (lo, hi if hi > lo else lo + 1.0)
    ticks = [t for t in nice_ticks(*xlim) if xlim[0] - 1e-9 <= t <= xlim[1] + 1e-9]
    left = max([text_width(c) for c in categories] + [0.0]) + _TICK + 8.0
    right, top, bottom = width - 14.0, 6.0, height - (2.6 * _FONT + _TICK + 6.0)
    n = max(len(categories), 1)

    def x(v: float) -> float:
        return left + (v - xlim[0]) / (xlim[1] - xlim[0]) * (right - left)

    def y(c: float) -> float:  # category index, 0 at the top
        return top + (c + 0.6) / (n + 0.2) * (bottom - top)

    out = [
        '<?xml version="1.0" encoding="utf-8" standalone="no"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:g}pt" height="{height:g}pt" '
        f'viewBox="0 0 {width:g} {height:g}" version="1.1">',
        "<style>text{font-family:'DejaVu Sans',system-ui,sans-serif;fill:#000}</style>",
        f'<rect x="0" y="0" width="{width:g}" height="{height:g}" fill="#fff"/>',
    ]
    for s, vals in zip(series, values, strict=True):
        colours = [s.colours] * len(vals) if isinstance(s.colours, str) else list(s.colours)
        band = s.height / (n + 0.2) * (bottom - top)
        for i, (v, colour) in enumerate(zip(vals, colours, strict=True)):
            if not math.isfinite(v):
                continue
            x0, x1 = sorted((x(max(min(0.0, xlim[1]), xlim[0])), x(v)))
            yc = y(i + s.offset)
            out.append(f'<rect x="{x0:.2f}" y="{yc - band / 2:.2f}" width="{x1 - x0:.2f}" '
                       f'height="{band:.2f}" fill="{escape(colour)}"/>')
    if target is not None and math.isfinite(target):
        out.append(f'<line x1="{x(target):.2f}" y1="{top:.2f}" x2="{x(target):.2f}" '
                   f'y2="{bottom:.2f}" stroke="#333" stroke-width="1" '
                   'stroke-dasharray="3.7,1.6"/>')
    axes = [(left, bottom, right, bottom), (left, top, left, bottom)]
    if frame:
        axes += [(left, top, right, top), (right, top, right, bottom)]
    out += [f'<line x1="{a:.2f}" y1="{b:.2f}" x2="{c:.2f}" y2="{d:.2f}" stroke="#000" '
            'stroke-width="0.8"/>' for a, b, c, d in axes]
    for t in ticks:
        out.append(f'<line x1="{x(t):.2f}" y1="{bottom:.2f}" x2="{x(t):.2f}" '
                   f'y2="{bottom + _TICK:.2f}" stroke="#000" stroke-width="0.8"/>')
        out.append(f'<text x="{x(t):.2f}" y="{bottom + _TICK + _FONT + 1:.2f}" '
                   f'font-size="{_FONT:g}" text-anchor="middle">'
                   f'{escape(tick_label(t, ticks))}</text>')
    for i, label in enumerate(categories):
        out.append(f'<line x1="{left - _TICK:.2f}" y1="{y(i):.2f}" x2="{left:.2f}" '
                   f'y2="{y(i):.2f}" stroke="#000" stroke-width="0.8"/>')
        out.append(f'<text x="{left - _TICK - 3:.2f}" y="{y(i) + _FONT * 0.35:.2f}" '
                   f'font-size="{_FONT:g}" text-anchor="end">{escape(label)}</text>')
    out.append(f'<text x="{(left + right) / 2:.2f}" y="{height - 4:.2f}" font-size="{_FONT:g}" '
               f'text-anchor="middle">{escape(xlabel)}</text>')
    if legend:
        out += _legend(series, target_label if target is not None else None, right, bottom)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _legend(series: Sequence[Bars], target_label: str | None, right: float,
            bottom: float) -> list[str]:
    """The legend box at the lower right of the plot: a swatch and a label per entry."""
    entries = [("bar", s.colours if isinstance(s.colours, str) else "#888", s.label)
               for s in series if s.label]
    if target_label:
        entries.append(("line", "#333", target_label))
    if not entries:
        return []
    row = _SMALL * 1.4
    box_w = max(text_width(label, _SMALL) for _, _, label in entries) + 30.0
    box_h = row * len(entries) + 6.0
    x0, y0 = right - box_w - 4.0, bottom - box_h - 4.0
    out = [f'<rect x="{x0:.2f}" y="{y0:.2f}" width="{box_w:.2f}" height="{box_h:.2f}" '
           'fill="#fff" fill-opacity="0.8" stroke="#ccc" stroke-width="0.8" rx="2"/>']
    for k, (kind, colour, label) in enumerate(entries):
        yc = y0 + 3.0 + row * (k + 0.5)
        if kind == "bar":
            out.append(f'<rect x="{x0 + 5:.2f}" y="{yc - 3.5:.2f}" width="16" height="7" '
                       f'fill="{escape(colour)}"/>')
        else:
            out.append(f'<line x1="{x0 + 5:.2f}" y1="{yc:.2f}" x2="{x0 + 21:.2f}" y2="{yc:.2f}" '
                       'stroke="#333" stroke-width="1" stroke-dasharray="3.7,1.6"/>')
        out.append(f'<text x="{x0 + 25:.2f}" y="{yc + _SMALL * 0.35:.2f}" '
                   f'font-size="{_SMALL:g}">{escape(label)}</text>')
    return out

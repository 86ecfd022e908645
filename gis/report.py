"""The readable report (``report.html``): one section per target with its figure and chart,
overview charts, roll-up tables, methods and assumptions, and data provenance.

Charts are drawn with matplotlib and embedded as SVG ``data:`` images (text kept as text, so the
browser's fonts show Chinese labels); the page needs no network and prints on A4.
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
import warnings
from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from gis.config import CATEGORY_ZH, LEVEL_ZH  # noqa: E402
from gis.io import write_text  # noqa: E402

#: Chinese labels of zone levels and building categories, shown next to the English.
UNIT_TEXT = {"m3": "m³", "m2": "m²", "ha": "ha", "buildings": "栋 buildings", "count": "",
             "kwh": "kWh", "t": "t"}

CSS = """
body {font: 15px/1.5 system-ui, "Noto Sans CJK SC", "Microsoft YaHei", "WenQuanYi Micro Hei",
  sans-serif; color:#222; max-width: 60rem; margin: 1.5rem auto; padding: 0 1rem}
h1 {font-size: 1.6rem; margin-bottom: .2rem} h2 {border-bottom: 2px solid #2b6e3f;
  padding-bottom: .2rem; margin-top: 2rem} h3 {margin-bottom: .3rem}
.synthetic {background:#b30000; color:#fff; font-weight:bold; padding:.4rem .8rem;
  border-radius:4px; margin:.6rem 0}
table {border-collapse: collapse; margin: .5rem 0; font-size: .9rem}
th, td {border: 1px solid #ccc; padding: .25rem .5rem; text-align: left; vertical-align: top}
td.num {text-align: right; font-variant-numeric: tabular-nums}
.met {color:#1a7a3a; font-weight:bold} .unmet {color:#b30000; font-weight:bold}
.na {color:#777} .figure {font-size: 1.3rem; margin: .3rem 0}
.target {page-break-inside: avoid; break-inside: avoid}
img.chart {max-width: 100%; height: auto}
.muted {color:#666; font-size:.85rem}
@media print {
  body {max-width: none; margin: 0; font-size: 11pt}
  nav, .noprint {display: none}
  h2 {page-break-after: avoid; break-after: avoid}
  a {color: inherit; text-decoration: none}
  @page {size: A4; margin: 15mm}
}
"""


def esc(value) -> str:
    """HTML-escaped text of any value; missing values become "–"."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return "–"
    return html.escape(str(value))


def fmt_value(value, unit: str | None) -> str:
    """A figure with its unit: shares as percentages, others with thousands separators."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "未评估 not evaluated"
    v = float(value)
    if unit == "share":
        return f"{v * 100:.1f} %"
    text = f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.2f}".rstrip("0").rstrip(".")
    suffix = UNIT_TEXT.get(unit or "", unit or "")
    return f"{text} {suffix}".strip()


def fmt_gap(entry: Mapping) -> str:
    """The gap in its own unit; a share gap is in percentage points."""
    gap = entry.get("gap")
    if gap is None or entry.get("value") is None:
        return "–"
    unit = entry.get("gap_unit") or entry.get("unit")
    if unit == "share":
        return f"{float(gap) * 100:.1f} 个百分点 pp"
    return fmt_value(gap, unit)


def closing_text(entry: Mapping) -> str:
    """What the published lists do about a gap: candidate parcels or roofs, and how much."""
    if not entry.get("gap") or entry.get("value") is None:
        return ""
    if entry.get("candidates_count") is not None:
        share = entry.get("gap_closed_share")
        text = (f"候选 {int(entry['candidates_count']):,} 地块 parcels, "
                f"{float(entry.get('candidates_ha') or 0):,.0f} ha")
        if share is not None:
            text += f" → 可补足 closes {float(share):.0%}"
        return text
    if entry.get("potential_share") is not None:
        done = "可补足 closes it" if entry.get("closable") else "不足以补足 not enough"
        return (f"屋顶光伏潜力 rooftop potential → {float(entry['potential_share']):.1%} "
                f"({done})")
    if entry.get("gap_list"):
        done = "可补足 closes it" if entry.get("closable") else "不足以补足 not enough"
        return f"清单 list: {entry['gap_list']}.csv ({done})"
    return ""


def met_text(entry: Mapping) -> tuple[str, str]:
    """(css class, label) of whether a target is met."""
    met = entry.get("met")
    if entry.get("value") is None or met is None:
        return "na", "未评估 not evaluated"
    return ("met", "达标 met") if met else ("unmet", "未达标 not met")


def where_text(where) -> str:
    w = "" if where is None else str(where)
    zh = LEVEL_ZH.get(w)
    return f"{zh} {w}" if zh else w


def svg_data_uri(fig) -> str:
    """A figure as an SVG data: URI (text kept as text, so the browser picks CJK fonts)."""
    buf = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "gis-planner"}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _img(uri: str, alt: str) -> str:
    return f'<img class="chart" src="{uri}" alt="{esc(alt)}">'


@contextlib.contextmanager
def _quiet():
    # DejaVu Sans has no CJK glyphs; with svg.fonttype "none" the browser draws the text, so the
    # measuring font's missing-glyph warnings do not matter.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*missing from font")
        yield


def chart_value_vs_target(entry: Mapping) -> str | None:
    """Horizontal bars: the value and the target, same unit."""
    value, target, unit = entry.get("value"), entry.get("target"), entry.get("unit")
    if value is None or target is None:
        return None
    scale = 100.0 if unit == "share" else 1.0
    with _quiet():
        fig, ax = plt.subplots(figsize=(6.0, 1.5))
        colour = "#1a7a3a" if entry.get("met") else "#c0392b"
        ax.barh(["value 现状", "target 目标"], [float(value) * scale, float(target) * scale],
                color=[colour, "#9e9e9e"])
        ax.axvline(float(target) * scale, color="#333", lw=1, ls="--")
        ax.set_xlabel("%" if unit == "share" else UNIT_TEXT.get(unit or "", unit or ""))
        ax.invert_yaxis()
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        return svg_data_uri(fig)


def chart_by_zone(zones: pd.DataFrame, entry: Mapping, column: str) -> str | None:
    """Bars per zone feature of the target's level, with the target line."""
    if zones is None or column not in zones.columns or "level" not in zones.columns:
        return None
    where = entry.get("where")
    rows = zones[(zones["level"].astype("string") == str(where))]
    if rows.empty or entry.get("target") is None:
        return None
    vals = pd.to_numeric(rows[column], errors="coerce").to_numpy(float) * 100
    names = rows["zone"].astype("string").fillna("").tolist()
    with _quiet():
        fig, ax = plt.subplots(figsize=(6.0, 0.45 * len(rows) + 1.0))
        target = float(entry["target"]) * 100
        ax.barh(names, vals, color=np.where(vals >= target, "#1a7a3a", "#c0392b"))
        ax.axvline(target, color="#333", lw=1, ls="--", label=f"target {target:g} %")
        ax.set_xlabel(f"{column} [%]")
        ax.set_xlim(0, 100)
        ax.invert_yaxis()
        ax.legend(loc="lower right", fontsize=8)
        return svg_data_uri(fig)


def chart_pv_by(pv: pd.DataFrame, key: str, *, top: int = 12) -> str | None:
    """Capacity [MWp] and annual yield [GWh/yr] summed by a column (category or street)."""
    if pv is None or key not in pv.columns or "capacity_kwp" not in pv.columns:
        return None
    sums = pd.DataFrame({
        key: pv[key].astype("string").fillna("–"),
        "mwp": pd.to_numeric(pv["capacity_kwp"], errors="coerce").fillna(0) / 1000,
        "gwh": pd.to_numeric(pv.get("annual_kwh", 0), errors="coerce").fillna(0) / 1e6,
    }).groupby(key).sum().sort_values("mwp", ascending=False).head(top)
    if sums.empty:
        return None
    labels = [f"{CATEGORY_ZH.get(k, '')} {k}".strip() for k in sums.index]
    with _quiet():
        fig, ax = plt.subplots(figsize=(6.5, 0.4 * len(sums) + 1.0))
        y = np.arange(len(sums))
        ax.barh(y - 0.2, sums["mwp"], height=0.4, color="#f08c00", label="capacity [MWp]")
        ax.barh(y + 0.2, sums["gwh"], height=0.4, color="#2b83ba", label="annual yield [GWh/yr]")
        ax.set_yticks(y, labels)
        ax.invert_yaxis()
        ax.legend(fontsize=8, loc="lower right")
        return svg_data_uri(fig)


def _zone_column(entry: Mapping) -> str | None:
    measure = str(entry.get("measure", "")).lower()
    tid = str(entry.get("id", "")).lower()
    if entry.get("unit") != "share":
        return None
    if "blue-green" in measure or "bluegreen" in tid:
        return "bluegreen_share"
    if "forest coverage" in measure or tid.startswith("forest"):
        return "forest_coverage"
    return None


def table_html(df: pd.DataFrame, *, max_rows: int = 40) -> str:
    """A DataFrame as an escaped HTML table (numbers right-aligned)."""
    shown = df.head(max_rows)
    head = "".join(f"<th>{esc(c)}</th>" for c in shown.columns)
    body = []
    numeric = [pd.api.types.is_numeric_dtype(shown[c]) for c in shown.columns]
    for row in shown.itertuples(index=False):
        cells = []
        for v, is_num in zip(row, numeric, strict=True):
            if is_num and v is not None and not pd.isna(v):
                cells.append(f'<td class="num">{float(v):,.2f}</td>')
            else:
                cells.append(f"<td>{esc(v)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = (f'<p class="muted">showing {max_rows} of {len(df)} rows</p>'
            if len(df) > max_rows else "")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>{more}"


METHODS = [
    ("屋顶光伏 Rooftop PV",
     "Roof area = footprint area (÷ cos tilt for pitched roofs). Usable area = the footprint "
     "shrunk by the edge setback × the usable fraction of the roof type − the area existing PV "
     "already covers; a gable roof's two halves count separately and a half facing north is "
     "left bare. Capacity [kWp] = usable area × module-to-roof ratio × module efficiency × "
     "1 kW/m²: flat roofs carry south-facing rows spaced so that they do not shade each other at "
     "noon on the winter solstice, pitched roofs carry flush modules. Specific yield "
     "[kWh/kWp/yr] comes from pvlib for each orientation class (plane-of-array irradiance, cell "
     "temperature, PVWatts DC and losses, inverter); annual energy = capacity × specific yield "
     "× shading factor (roof mean of the irradiation raster ÷ unshaded reference where a "
     "raster covers the roof, else shading by neighbours below). CO₂ and standard-coal savings use the targets' grid emission factor and coal "
     "supply consumption."),
    ("周边遮挡 Shading by neighbours",
     "Without an irradiance raster for a roof, a surface model is built: a DSM ([layers.dsm]) "
     "when given, else footprints × heights (LoD1: height, else floors × storey height; flat "
     "tops, no trees). From sample points on a grid inside each roof, horizons are traced over "
     "72 azimuth sectors. With pvlib's sky (the transposition of the yields), hourly beam and "
     "circumsolar light count only when the sun stands above the horizon of its sector, the "
     "isotropic sky is scaled by the tilted plane's sky-view factor, ground reflection is kept; "
     "shading factor = annual plane-of-array irradiation with the horizon ÷ without. Roof parts "
     "below the minimum shading factor (0.7 by default, as NREL's rooftop study) are not "
     "usable ('shaded'). Tables by street and category give the unshaded yield and the loss "
     "(unshaded_gwh, shading_loss_gwh, shading_loss_share)."),
    ("蓝绿空间与森林 Blue-green space and forest",
     "Land-use parcels are classified by the chosen scheme into blue (water, wetland), green "
     "(grass, parks, gardens), forest and other groups; shares are areas within each zone ÷ "
     "zone area, computed in a metric CRS, on official areas (TBDLMJ pro-rated on split "
     "parcels, KCMJ counted as field ridges 1203) when the run file maps them. A target over a "
     "level uses the union of all zones of that level. Forest coverage counts arbor forest, "
     "bamboo, mangrove and forest swamp; other forest land (0307: sparse, unestablished, "
     "nurseries) is reported apart as in the pipeline. Forest stock comes from the stands layer "
     "when given, else from per-class defaults (labelled as estimates); carbon = stock × biomass "
     "expansion factor × (1 + root-to-shoot ratio) × wood density × carbon fraction by species "
     "group."),
    ("差距 Gaps",
     "A gap is what is missing to reach the target, in the unit stated: hectares of blue-green or "
     "forest land, cubic metres of stock, square metres of roof, numbers of buildings or GWh a "
     "year of renewable energy; candidate parcels and roofs are ranked lists that would close "
     "it, with the share of the gap they close."),
]


def _detail(key: str, value: object) -> str:
    """A detail value as a planner reads it: shares in %, other numbers rounded with separators."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if value != value:  # NaN
        return "—"
    if key.startswith("value") or key.endswith(("share", "coverage")):
        return f"{value:.2%}"
    return f"{value:,.1f}" if abs(value) < 1e6 else f"{value:,.0f}"


def write_report(out_dir: str | Path, *, scorecard: Mapping, pv: pd.DataFrame | None,
                 zones: pd.DataFrame | None, rollups: Mapping[str, pd.DataFrame] | None,
                 meta: Mapping) -> Path:
    """Write ``report.html`` into ``out_dir`` (atomically) and return its path.

    Parameters
    ----------
    out_dir : str or Path
    scorecard : dict
        ``{"targets": [entry, ...]}``; an entry with ``value`` None is shown as not evaluated.
    pv : DataFrame, optional
        ``buildings_pv``: capacity_kwp [kWp], annual_kwh [kWh/yr], category, street.
    zones : DataFrame, optional
        The zones table (bluegreen_share, forest_coverage [0–1], stock_m3 [m³] per zone).
    rollups : dict of DataFrame, optional
        Extra tables (by street, by category …) shown as they are.
    meta : dict
        project, synthetic, run_id, preset, definitions (dict), and anything else worth
        recording (inputs, versions) — shown under provenance.

    Returns
    -------
    Path
    """
    out = Path(out_dir) / "report.html"
    entries = list(scorecard.get("targets", []))
    synthetic = bool(meta.get("synthetic"))
    title = f"{meta.get('project', '')} — 碳达峰目标评估报告 Carbon-peak target report"
    parts = [f"<!DOCTYPE html><html lang='zh-CN'><head><meta charset='utf-8'>"
             f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
             f"<title>{esc(title)}</title><style>{CSS}</style></head><body>",
             f"<h1>{esc(title)}</h1>"]
    if synthetic:
        parts.append("<div class='synthetic'>合成演示数据 — synthetic demo data: the buildings, "
                     "parcels and zones are generated, not surveyed. Do not use the figures for "
                     "decisions.</div>")
    parts.append(f"<p class='muted'>预设 preset: {esc(meta.get('preset'))} · 运行标识 run id: "
                 f"{esc(meta.get('run_id'))} (inputs + settings; see run.json)</p>")
    n_met = sum(1 for e in entries if e.get("met") and e.get("value") is not None)
    n_eval = sum(1 for e in entries if e.get("value") is not None)
    parts.append(f"<p class='figure'>{n_met} / {n_eval} 项目标达标 targets met "
                 f"({len(entries) - n_eval} 未评估 not evaluated)</p>")

    nav = "".join(f"<li><a href='#t-{esc(e.get('id'))}'>{esc(e.get('measure_zh'))} "
                  f"{esc(e.get('measure'))} — {esc(where_text(e.get('where')))}</a></li>"
                  for e in entries)
    parts.append(f"<nav><h2>目录 Contents</h2><ol>{nav}<li><a href='#overview'>概览 Overview"
                 f"</a></li><li><a href='#methods'>方法 Methods</a></li><li>"
                 f"<a href='#provenance'>数据来源 Provenance</a></li></ol></nav>")

    parts.append("<h2>目标 Targets</h2>")
    for e in entries:
        cls, label = met_text(e)
        parts.append(f"<section class='target' id='t-{esc(e.get('id'))}'>")
        parts.append(f"<h3>{esc(e.get('measure_zh'))} {esc(e.get('measure'))} — "
                     f"{esc(where_text(e.get('where')))} <span class='muted'>"
                     f"({esc(e.get('id'))}, by {esc(e.get('by'))})</span></h3>")
        parts.append(f"<p class='figure'>现状 value <b>{esc(fmt_value(e.get('value'), e.get('unit')))}"
                     f"</b> · 目标 target ≥ {esc(fmt_value(e.get('target'), e.get('unit')))} · "
                     f"<span class='{cls}'>{label}</span> · 差距 gap {esc(fmt_gap(e))}</p>")
        if e.get("basis"):
            parts.append(f"<p class='muted'>口径 basis: {esc(e.get('basis'))}</p>")
        if e.get("value") is None:
            parts.append("<p class='na'>This target was not evaluated: the inputs it needs were "
                         "not given.</p>")
        chart = chart_value_vs_target(e)
        if chart:
            parts.append(_img(chart, f"{e.get('id')}: value and target"))
        column = _zone_column(e)
        if column and zones is not None and f"{column}_official" in zones \
                and zones[f"{column}_official"].notna().any():
            column = f"{column}_official"  # the basis the scorecard uses
        zchart = chart_by_zone(zones, e, column) if column else None
        if zchart:
            parts.append(_img(zchart, f"{e.get('id')}: by zone"))
        details = e.get("details")
        if isinstance(details, Mapping) and details:
            rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(_detail(k, v))}</td></tr>"
                           for k, v in details.items() if not isinstance(v, (dict, list)))
            if rows:
                parts.append(f"<table>{rows}</table>")
        parts.append("</section>")

    parts.append("<h2 id='overview'>概览 Overview</h2>")
    for key, label in (("category", "按类别 by category"), ("street", "按街道 by street")):
        chart = chart_pv_by(pv, key)
        if chart:
            parts.append(f"<h3>屋顶光伏潜力{esc(label)} Rooftop PV potential</h3>"
                         + _img(chart, f"PV {key}"))
    if pv is not None and "capacity_kwp" in pv.columns:
        cap = pd.to_numeric(pv["capacity_kwp"], errors="coerce").fillna(0)
        kwh = pd.to_numeric(pv.get("annual_kwh", 0), errors="coerce").fillna(0)
        parts.append(f"<p>{len(pv):,} 栋建筑 buildings · {int((cap > 0).sum()):,} 可装光伏 with PV "
                     f"potential · {cap.sum() / 1000:,.1f} MWp · {kwh.sum() / 1e6:,.2f} GWh/yr</p>")
        if "shading_loss_kwh" in pv.columns and "unshaded_kwh" in pv.columns:
            loss = float(pd.to_numeric(pv["shading_loss_kwh"], errors="coerce").fillna(0).sum())
            free = float(pd.to_numeric(pv["unshaded_kwh"], errors="coerce").fillna(0).sum())
            if free > 0:
                parts.append(f"<p>周边遮挡 shading by neighbours removes {loss / 1e6:,.2f} GWh/yr "
                             f"({loss / free:.1%}) of the unshaded {free / 1e6:,.2f} GWh/yr; by "
                             f"street and category in the tables below (shading_loss_gwh, "
                             f"shading_loss_share).</p>")
    if zones is not None and len(zones):
        cols = [c for c in ("zone", "level", "area_ha", "bluegreen_share", "forest_coverage",
                            "forest_ha", "stock_m3", "carbon_t") if c in zones.columns]
        parts.append("<h3>分区 Zones</h3>" + table_html(pd.DataFrame(zones[cols])))
    for name, df in (rollups or {}).items():
        parts.append(f"<h3>{esc(name)}</h3>" + table_html(pd.DataFrame(df)))

    parts.append("<h2 id='methods'>方法与假设 Methods and assumptions</h2>")
    for head, text in METHODS:
        parts.append(f"<h3>{esc(head)}</h3><p>{esc(text)}</p>")
    definitions = meta.get("definitions") or {}
    if definitions:
        rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>"
                       for k, v in definitions.items())
        parts.append(f"<h3>定义 Definitions</h3><table>{rows}</table>")

    parts.append("<h2 id='provenance'>数据来源 Provenance</h2>")
    rows = []
    for k, v in meta.items():
        if k == "definitions":
            continue
        if isinstance(v, Mapping):
            v = "; ".join(f"{a}: {b}" for a, b in v.items())
        rows.append(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>")
    parts.append(f"<table>{''.join(rows)}</table>")
    parts.append("<p class='muted'>Full provenance (input hashes, parameters, package versions) is "
                 "in run.json beside this report.</p></body></html>")
    return write_text(out, "\n".join(parts))

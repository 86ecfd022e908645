"""The readable report (``report.html``): one section per target with its figure and chart,
overview charts, roll-up tables, methods and assumptions, and data provenance.

The page is rendered from templates (``gis/templates/report``, autoescaped) as a list of
:class:`Section` blocks; a new block is one :func:`section` call passed to :func:`write_report`.

Charts are written as SVG (:mod:`gis._charts`) and embedded as ``data:`` images (text kept as
text, so the browser's fonts show Chinese labels); the page needs no network and prints on A4.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gis import _charts
from gis._templates import Markup, render, text
from gis.config import CATEGORY_ZH, LEVEL_ZH
from gis.io import write_text

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


def svg_data_uri(chart, *, close: bool = True) -> str:
    """A chart as an SVG ``data:`` URI: ``chart`` is SVG text (:mod:`gis._charts`) or a
    matplotlib figure (text kept as text, so the browser picks CJK fonts; ``close`` false
    keeps the figure open)."""
    if isinstance(chart, str):
        data = chart.encode("utf-8")
    else:
        import matplotlib

        buf = io.BytesIO()
        with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "gis-planner"}):
            chart.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
        if close:
            import matplotlib.pyplot as plt

            plt.close(chart)
        data = buf.getvalue()
    return "data:image/svg+xml;base64," + base64.b64encode(data).decode("ascii")


#: Size of the value-vs-target charts [in].
VALUE_CHART_SIZE = (6.0, 1.5)


def chart_value_vs_target(entry: Mapping) -> str | None:
    """Horizontal bars: the value and the target, same unit (an SVG ``data:`` URI)."""
    value, target, unit = entry.get("value"), entry.get("target"), entry.get("unit")
    if value is None or target is None:
        return None
    scale = 100.0 if unit == "share" else 1.0
    colour = "#1a7a3a" if entry.get("met") else "#c0392b"
    svg = _charts.hbar_chart(
        ["value 现状", "target 目标"],
        [_charts.Bars([float(value) * scale, float(target) * scale], [colour, "#9e9e9e"])],
        size=VALUE_CHART_SIZE, target=float(target) * scale, frame=False,
        xlabel="%" if unit == "share" else UNIT_TEXT.get(unit or "", unit or ""))
    return svg_data_uri(svg)


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
    target = float(entry["target"]) * 100
    svg = _charts.hbar_chart(
        names, [_charts.Bars(vals, np.where(vals >= target, "#1a7a3a", "#c0392b").tolist())],
        size=(6.0, 0.45 * len(rows) + 1.0), target=target, target_label=f"target {target:g} %",
        xlim=(0.0, 100.0), xlabel=f"{column} [%]", legend=True)
    return svg_data_uri(svg)


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
    has_yield = pd.to_numeric(pv.get("annual_kwh", pd.Series(0.0, index=pv.index)),
                              errors="coerce").notna().any()
    labels = [f"{CATEGORY_ZH.get(k, '')} {k}".strip() for k in sums.index]
    series = [_charts.Bars(sums["mwp"].to_numpy(float), "#f08c00", "capacity [MWp]",
                           offset=-0.2, height=0.4)]
    if has_yield:  # no bar of 0 GWh when yields were not computed
        series.append(_charts.Bars(sums["gwh"].to_numpy(float), "#2b83ba",
                                   "annual yield [GWh/yr]", offset=0.2, height=0.4))
    svg = _charts.hbar_chart(labels, series, size=(6.5, 0.4 * len(sums) + 1.0), xlabel="",
                             legend=True)
    return svg_data_uri(svg)


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
    numeric = [pd.api.types.is_numeric_dtype(shown[c]) for c in shown.columns]
    rows = [[(True, f"{float(v):,.2f}") if is_num and v is not None and not pd.isna(v)
             else (False, v) for v, is_num in zip(row, numeric, strict=True)]
            for row in shown.itertuples(index=False)]
    return render("report/table.html", columns=list(shown.columns), rows=rows,
                  more=len(df) > max_rows, shown=max_rows, total=len(df))


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


METHODS += [
    ("地面光伏 Ground-mounted PV",
     "Fish ponds (三调 1104/1104A), facility agricultural land (1202) and strips of a set width "
     "along the inside edge of highway and urban road parcels (1003/1004) — or beside the lines "
     "of a roads layer, minus forest, cropland and water — are the candidate sites. Usable area "
     "= site area after the setback × the usable share of the kind; capacity [kWp] = usable "
     "area × power density [kWp/m²] (ground coverage ratio × module efficiency: rows spaced by "
     "the winter-solstice rule over ponds, a capped ratio for agrivoltaics, one row on a roadside "
     "strip; or the density the run file gives); energy = capacity × the specific yield of the "
     "kind's rows from the same yield engine as the roofs. Sites in the first-level control zone "
     "get nothing unless the run file allows it. PV racks over a pond leave it counted as water "
     "(自然资办发〔2023〕12号: the array land of a compliant composite project keeps its land "
     "class), a switch of the run file."),
    ("成本收益 Costs and benefits",
     "Capital cost = capacity × cost per kWp of the system type; first-year savings = energy × "
     "(self-consumed share × retail tariff of the user type + fed-in share × the coal benchmark "
     "price) + any subsidy; simple payback = capital cost ÷ (first-year savings − O&M); NPV "
     "and IRR over the lifetime with yearly degradation; LCOE = discounted costs ÷ discounted "
     "energy. Under an energy-performance contract the owner keeps the stated share of the "
     "savings and the investor the rest. Every input, with its source, is in run.json "
     "(settings.finance)."),
]


def ground_section(ground: Mapping[str, Any]) -> Section:
    """The report's section on ground PV and money.

    Parameters
    ----------
    ground : dict
        Optional tables: ``by_kind``, ``by_street`` (ground PV roll-ups), ``finance_by_street``
        (roofs and ground), ``bluegreen`` (blue-green without / with the ground scenario), and
        ``scenarios`` (renewable substitution: rooftop only / rooftop + ground).

    Examples
    --------
    >>> s = ground_section({"scenarios": [{"scenario": "rooftop only", "pv_gwh": 1.0,
    ...                                     "potential_share": 0.05}]})
    >>> "rooftop only" in s.body and "5.00%" in s.body
    True
    """
    tables = []
    scen = ground.get("scenarios")
    if scen:
        frame = pd.DataFrame({
            "scenario": [f"{s.get('scenario')} {s.get('scenario_zh', '')}".strip() for s in scen],
            "PV [GWh/yr]": [f"{float(s.get('pv_gwh') or 0):,.2f}" for s in scen],
            "potential share": [f"{float(s.get('potential_share') or 0):.2%}" for s in scen]})
        tables.append(("可再生能源替代率情景 Renewable substitution: scenarios "
                       "(ground PV is a separate, labelled scenario; the scorecard's value is "
                       "rooftop only)", Markup(table_html(frame))))
    titles = (("by_kind", "地面光伏按类型 Ground PV by type"),
              ("by_street", "地面光伏按街道 Ground PV by street"),
              ("finance_by_street", "成本收益按街道 Costs and benefits by street (roofs and "
                                    "ground; 元, yr)"),
              ("bluegreen", "蓝绿空间：有无地面光伏 Blue-green space without / with ground PV"))
    for key, title in titles:
        table = ground.get(key)
        if table is not None and len(table):
            frame = pd.DataFrame(table).drop(columns="geometry", errors="ignore")
            tables.append((title, Markup(table_html(frame))))
    note = ("PV over ponds leaves them counted as water when ground.count_pond_as_water is true "
            "(自然资办发〔2023〕12号); facility and road land keep their class."
            if ground.get("bluegreen") is not None else "")
    return section("ground", "地面光伏与成本收益 Ground-mounted PV, costs and benefits",
                   tables=tables, note=note)


def _detail(key: str, value: object) -> str:
    """A detail value as a planner reads it: shares in %, other numbers rounded with separators."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if value != value:  # NaN
        return "—"
    if key.startswith("value") or key.endswith(("share", "coverage")):
        return f"{value:.2%}"
    return f"{value:,.1f}" if abs(value) < 1e6 else f"{value:,.0f}"


@dataclass(frozen=True)
class Section:
    """One block of the report: a heading with an anchor, its body, and its entries in the
    contents.

    Parameters
    ----------
    id : str
        Anchor of the heading (``#id``).
    heading : str
        The ``<h2>`` text.
    body : Markup
        The block's HTML, rendered by a template (see :func:`section`).
    nav : tuple of (anchor, label), optional
        Entries in the contents; default one entry ``(id, heading)``.
    """

    id: str
    heading: str
    body: Markup
    nav: tuple[tuple[str, str], ...] | None = None

    @property
    def nav_entries(self) -> tuple[tuple[str, str], ...]:
        return self.nav if self.nav is not None else ((self.id, self.heading),)


def section(id: str, heading: str, *, template: str = "report/section.html",
            nav_label: str | None = None, **context) -> Section:
    """A report section rendered from a template under ``gis/templates`` (autoescaped).

    The default template shows, in order, ``intro`` (text), ``charts`` (``[{"uri", "alt"}]``,
    e.g. from :func:`svg_data_uri`), ``tables`` (``[(name, table_html(df))]``) and ``note``.

    Examples
    --------
    >>> s = section("finance", "财务 Finance", intro="<b>NPV</b> at 5 %",
    ...             tables=[("by street", Markup(table_html(pd.DataFrame({"npv": [1.5]}))))])
    >>> "&lt;b&gt;NPV&lt;/b&gt;" in s.body, '<td class="num">1.50</td>' in s.body
    (True, True)
    >>> s.nav_entries
    (('finance', '财务 Finance'),)
    """
    context = {"intro": "", "charts": (), "tables": (), "note": "", **context}
    nav = ((id, nav_label),) if nav_label is not None else None
    return Section(id, heading, Markup(render(template, **context)), nav)


def _target_block(e: Mapping, zones: pd.DataFrame | None) -> dict:
    """What a target's block shows: figures as text, charts, details."""
    cls, label = met_text(e)
    charts = []
    chart = chart_value_vs_target(e)
    if chart:
        charts.append({"uri": chart, "alt": f"{e.get('id')}: value and target"})
    column = _zone_column(e)
    if column and zones is not None and f"{column}_official" in zones \
            and zones[f"{column}_official"].notna().any():
        column = f"{column}_official"  # the basis the scorecard uses
    zchart = chart_by_zone(zones, e, column) if column else None
    if zchart:
        charts.append({"uri": zchart, "alt": f"{e.get('id')}: by zone"})
    details = e.get("details")
    rows = ([(k, _detail(k, v)) for k, v in details.items() if not isinstance(v, (dict, list))]
            if isinstance(details, Mapping) else [])
    return {"id": e.get("id"), "measure_zh": e.get("measure_zh"), "measure": e.get("measure"),
            "where": where_text(e.get("where")), "by": e.get("by"),
            "value": fmt_value(e.get("value"), e.get("unit")),
            "target": fmt_value(e.get("target"), e.get("unit")), "cls": cls, "label": label,
            "gap": fmt_gap(e), "basis": e.get("basis"), "evaluated": e.get("value") is not None,
            "charts": charts, "details": rows}


def targets_section(entries: list[Mapping], zones: pd.DataFrame | None) -> Section:
    """One block per target: its figure, value-vs-target and by-zone charts, details."""
    nav = tuple((f"t-{text(e.get('id'))}", f"{text(e.get('measure_zh'))} {text(e.get('measure'))}"
                 f" — {text(where_text(e.get('where')))}") for e in entries)
    blocks = [_target_block(e, zones) for e in entries]
    block = section("targets", "目标 Targets", template="report/targets.html", entries=blocks)
    return replace(block, nav=nav)


def overview_section(pv: pd.DataFrame | None, zones: pd.DataFrame | None,
                     rollups: Mapping[str, pd.DataFrame] | None) -> Section:
    """PV by category and street, the district's PV totals, the zones and roll-up tables."""
    charts = []
    for key, label in (("category", "按类别 by category"), ("street", "按街道 by street")):
        chart = chart_pv_by(pv, key)
        if chart:
            charts.append({"label": label, "uri": chart, "alt": f"PV {key}"})
    summary = ""
    if pv is not None and "capacity_kwp" in pv.columns:
        cap = pd.to_numeric(pv["capacity_kwp"], errors="coerce").fillna(0)
        kwh = pd.to_numeric(pv.get("annual_kwh", 0), errors="coerce")
        # yields not computed (no weather near the district): say so, never 0 GWh
        energy = (f"{kwh.fillna(0).sum() / 1e6:,.2f} GWh/yr" if kwh.notna().any() else
                  "发电量未计算 yields not computed (no weather near the district)")
        summary = (f"{len(pv):,} 栋建筑 buildings · {int((cap > 0).sum()):,} 可装光伏 with PV "
                   f"potential · {cap.sum() / 1000:,.1f} MWp · {energy}")
        if "shading_loss_kwh" in pv.columns and "unshaded_kwh" in pv.columns:
            loss = float(pd.to_numeric(pv["shading_loss_kwh"], errors="coerce").fillna(0).sum())
            free = float(pd.to_numeric(pv["unshaded_kwh"], errors="coerce").fillna(0).sum())
            if free > 0:
                summary += (f". 周边遮挡 Shading by neighbours removes {loss / 1e6:,.2f} GWh/yr "
                            f"({loss / free:.1%}) of the unshaded {free / 1e6:,.2f} GWh/yr; by "
                            "street and category in the tables below (shading_loss_gwh, "
                            "shading_loss_share)")
    tables = []
    if zones is not None and len(zones):
        cols = [c for c in ("zone", "level", "area_ha", "bluegreen_share", "forest_coverage",
                            "forest_ha", "stock_m3", "carbon_t") if c in zones.columns]
        tables.append(("分区 Zones", Markup(table_html(pd.DataFrame(zones[cols])))))
    for name, df in (rollups or {}).items():
        tables.append((name, Markup(table_html(pd.DataFrame(df)))))
    return section("overview", "概览 Overview", template="report/overview.html", charts=charts,
                   pv_summary=summary, tables=tables)


def methods_section(meta: Mapping) -> Section:
    """The methods and assumptions, and the run's definitions."""
    definitions = list((meta.get("definitions") or {}).items())
    return section("methods", "方法与假设 Methods and assumptions", nav_label="方法 Methods",
                   template="report/methods.html", methods=METHODS, definitions=definitions)


def provenance_section(meta: Mapping) -> Section:
    """Everything in ``meta`` but the definitions, one row each."""
    rows = []
    for k, v in meta.items():
        if k == "definitions":
            continue
        if isinstance(v, Mapping):
            v = "; ".join(f"{a}: {b}" for a, b in v.items())
        rows.append((k, v))
    table = Markup(render("report/key_values.html", rows=rows))
    return section("provenance", "数据来源 Provenance", tables=[("", table)],
                   note="Full provenance (input hashes, parameters, package versions) is in "
                        "run.json beside this report.")


def write_report(out_dir: str | Path, *, scorecard: Mapping, pv: pd.DataFrame | None,
                 zones: pd.DataFrame | None, rollups: Mapping[str, pd.DataFrame] | None,
                 meta: Mapping, ground: Mapping[str, Any] | None = None,
                 network=None, sections: Sequence[Section] = ()) -> Path:
    """Write ``report.html`` into ``out_dir`` (atomically) and return its path.

    The page is a list of :class:`Section` blocks: the targets, the overview, then ``sections``
    (each made with :func:`section`), then methods and provenance; the contents list them all.

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
    ground : dict, optional
        Ground PV and money tables, shown by :func:`ground_section`.
    network : gis.network.NetworkResult, optional
        The ecological network: a section per zone (:func:`gis.network.report_section`).
    sections : sequence of Section, optional
        More blocks (shading, network, finance …), placed after the overview.

    Returns
    -------
    Path
    """
    entries = list(scorecard.get("targets", []))
    if network is not None:
        from gis.network import report_section

        sections = (report_section(network), *sections)
    if ground:
        sections = (ground_section(ground), *sections)
    blocks = [targets_section(entries, zones), overview_section(pv, zones, rollups),
              *sections, methods_section(meta), provenance_section(meta)]
    n_eval = sum(1 for e in entries if e.get("value") is not None)
    page = render(
        "report/page.html", css=Markup(CSS),
        title=f"{meta.get('project', '')} — 碳达峰目标评估报告 Carbon-peak target report",
        synthetic=bool(meta.get("synthetic")), preset=meta.get("preset"),
        run_id=meta.get("run_id"),
        n_met=sum(1 for e in entries if e.get("met") and e.get("value") is not None),
        n_eval=n_eval, n_na=len(entries) - n_eval,
        nav=[entry for block in blocks for entry in block.nav_entries], sections=blocks)
    return write_text(Path(out_dir) / "report.html", page)

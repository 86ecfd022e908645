"""What changed between two runs: targets, zone figures, rooftop sites and parcel classes.

When a planner reruns the analysis on an updated layer, :func:`compare_runs` reads both output
folders and names every difference: target values that moved (and whether they are now met), zones
whose areas or shares changed, PV sites added, removed or changed, and land-use parcels whose class
changed.  :func:`format_comparison` prints it for the terminal and :func:`write_comparison_html`
writes a self-contained page.

The result is a plain dict of JSON types, so it can also be saved with :func:`json.dump`.
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyogrio

from gis._errors import InputError, Problem, Problems
from gis.io import write_text

RUN_FILES = ("scorecard.json", "zones.csv", "buildings_pv.gpkg", "parcels.csv")
ZONE_FIELDS = ("area_ha", "bluegreen_ha", "bluegreen_share", "forest_ha", "forest_coverage",
               "stock_m3", "bluegreen_ha_official", "bluegreen_share_official",
               "forest_ha_official", "forest_coverage_official")
SITE_FIELDS = ("capacity_kwp", "annual_kwh")
SITE_TEXT_FIELDS = ("category",)
# totals over the sites shown as run metrics: column -> label
_SITE_TOTALS = {
    "capacity_kwp": "PV capacity, all sites (kWp)",
    "annual_kwh": "PV yield, all sites (kWh/yr)",
    "co2_t": "CO2 avoided, all sites (t/yr)",
    "coal_t": "standard coal saved, all sites (tce/yr)",
}


# --------------------------------------------------------------------------------------------
# reading


def _run_dir(path: str | Path, label: str, problems: Problems) -> Path | None:
    path = Path(path)
    if path.is_file() and path.name == "run.json":
        path = path.parent
    if not path.is_dir():
        problems.add(f"run {label}: no output folder {path}", file=str(path),
                     hint="run `gis-planner run RUNFILE` first, then pass its output folder")
        return None
    if not any((path / name).is_file() for name in RUN_FILES):
        problems.add(f"run {label}: {path} holds none of {', '.join(RUN_FILES)}", file=str(path),
                     hint="pass a run's output folder (the one with run.json); "
                          "run `gis-planner run RUNFILE` first")
        return None
    return path


def _run_info(path: Path) -> dict[str, Any]:
    info: dict[str, Any] = {"dir": str(path)}
    run_json = path / "run.json"
    if run_json.is_file():
        try:
            run = json.loads(run_json.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(Problem(f"run.json cannot be read: {exc}", file=str(run_json))) from exc
        for key in ("name", "time", "started", "finished", "version"):
            value = run.get(key)
            if isinstance(value, (str, int, float)):
                info[key] = value
        project = run.get("project")
        if "name" not in info and isinstance(project, dict) and isinstance(project.get("name"), str):
            info["name"] = project["name"]
    return info


def _read_scorecard(path: Path) -> dict[str, Any]:
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(Problem(f"scorecard cannot be read: {exc}", file=str(path),
                                 hint="rerun the analysis to rewrite it")) from exc
    return card if isinstance(card, dict) else {"targets": card}


def _read_csv(path: Path, key: Sequence[str]) -> pd.DataFrame:
    # codes such as "0301" must keep their leading zero: read every column as text first
    table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    missing = [c for c in key if c not in table.columns]
    if missing:
        raise InputError(Problem(f"missing column(s) {', '.join(missing)}", file=str(path),
                                 hint="rerun the analysis to rewrite it"))
    return table


def _read_sites(path: Path) -> pd.DataFrame:
    layers = [str(n) for n, _ in pyogrio.list_layers(path)]
    # the file also holds its QGIS style table (layer_styles)
    layer = "buildings_pv" if "buildings_pv" in layers else None
    info = pyogrio.read_info(path, layer=layer)
    wanted = ["id", *SITE_FIELDS, *SITE_TEXT_FIELDS, "reason", *_SITE_TOTALS]
    columns = [c for c in dict.fromkeys(wanted) if c in list(info["fields"])]
    if "id" not in columns or "capacity_kwp" not in columns:
        raise InputError(Problem("buildings_pv has no 'id' or 'capacity_kwp' column",
                                 file=str(path), hint="rerun the analysis to rewrite it"))
    frame = pyogrio.read_dataframe(path, layer=layer, columns=columns, read_geometry=False)
    frame["id"] = frame["id"].astype(str)
    return pd.DataFrame(frame)


# --------------------------------------------------------------------------------------------
# helpers


def _num(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _json_value(value: Any) -> Any:
    """Plain JSON types (numpy scalars and pandas NA become float/int/None)."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    return value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: _json_value(v) for k, v in row.items()}
            for row in frame.astype(object).to_dict("records")]


def _differs(a: pd.Series, b: pd.Series, rtol: float, atol: float) -> np.ndarray:
    x = pd.to_numeric(a, errors="coerce").to_numpy(dtype="float64")
    y = pd.to_numeric(b, errors="coerce").to_numpy(dtype="float64")
    same = np.isclose(x, y, rtol=rtol, atol=atol) | (np.isnan(x) & np.isnan(y))
    return ~same


# --------------------------------------------------------------------------------------------
# the comparisons


def _compare_targets(a: dict, b: dict, rtol: float, atol: float) -> list[dict[str, Any]]:
    def by_id(card: dict) -> dict[str, dict]:
        return {str(t.get("id")): t for t in card.get("targets", []) if isinstance(t, dict)}

    ta, tb = by_id(a), by_id(b)
    rows = []
    for tid in list(ta) + [t for t in tb if t not in ta]:
        ea, eb = ta.get(tid), tb.get(tid)
        ref = eb or ea
        va, vb = _num(ea.get("value")) if ea else None, _num(eb.get("value")) if eb else None
        ga, gb = _num(ea.get("gap")) if ea else None, _num(eb.get("gap")) if eb else None
        row = {
            "id": tid,
            "measure": ref.get("measure", ""),
            "measure_zh": ref.get("measure_zh", ""),
            "where": ref.get("where", ""),
            "unit": ref.get("unit", ""),
            "gap_unit": ref.get("gap_unit", ref.get("unit", "")),
            "target_a": _num(ea.get("target")) if ea else None,
            "target_b": _num(eb.get("target")) if eb else None,
            "value_a": va,
            "value_b": vb,
            "value_change": vb - va if va is not None and vb is not None else None,
            "met_a": bool(ea["met"]) if ea and ea.get("met") is not None else None,
            "met_b": bool(eb["met"]) if eb and eb.get("met") is not None else None,
            "gap_a": ga,
            "gap_b": gb,
            "gap_change": gb - ga if ga is not None and gb is not None else None,
        }
        if ea is None:
            row["status"] = "added"
        elif eb is None:
            row["status"] = "removed"
        else:
            pairs = [(va, vb), (ga, gb), (row["target_a"], row["target_b"])]
            moved = any(
                (x is None) != (y is None)
                or (x is not None and y is not None and not math.isclose(x, y, rel_tol=rtol,
                                                                         abs_tol=atol))
                for x, y in pairs
            )
            row["status"] = "changed" if moved or row["met_a"] != row["met_b"] else "same"
        rows.append(row)
    return rows


def _compare_metrics(a: dict, b: dict, rtol: float, atol: float) -> list[dict[str, Any]]:
    """Numeric scalars of the scorecards' ``metrics`` and ``meta`` sections (and site totals)."""

    def flat(prefix: str, value: Any, out: dict[str, float]) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                flat(f"{prefix}.{k}" if prefix else str(k), v, out)
        elif (x := _num(value)) is not None:
            out[prefix] = x

    ma: dict[str, float] = {}
    mb: dict[str, float] = {}
    for section in ("metrics", "meta"):
        flat(section, a.get(section, {}), ma)
        flat(section, b.get(section, {}), mb)
    rows = []
    for name in list(ma) + [k for k in mb if k not in ma]:
        x, y = ma.get(name), mb.get(name)
        if x is not None and y is not None and math.isclose(x, y, rel_tol=rtol, abs_tol=atol):
            continue
        rows.append({"name": name, "a": x, "b": y,
                     "change": y - x if x is not None and y is not None else None})
    return rows


def _compare_zones(za: pd.DataFrame, zb: pd.DataFrame, rtol: float,
                   atol: float) -> dict[str, Any]:
    key = ["zone", "level"] if "level" in za.columns and "level" in zb.columns else ["zone"]
    fields = [f for f in ZONE_FIELDS if f in za.columns and f in zb.columns]
    merged = za[key + fields].merge(zb[key + fields], on=key, how="outer",
                                    suffixes=("_a", "_b"), indicator=True)
    added = merged.loc[merged["_merge"] == "right_only", key]
    removed = merged.loc[merged["_merge"] == "left_only", key]
    both = merged.loc[merged["_merge"] == "both"].copy()
    changed_mask = np.zeros(len(both), dtype=bool)
    out = both[key].copy()
    for f in fields:
        xa = pd.to_numeric(both[f"{f}_a"], errors="coerce")
        xb = pd.to_numeric(both[f"{f}_b"], errors="coerce")
        changed_mask |= _differs(xa, xb, rtol, atol)
        out[f"{f}_a"] = xa
        out[f"{f}_b"] = xb
        out[f"{f}_change"] = xb - xa
    return {
        "fields": fields,
        "changed": _records(out.loc[changed_mask]),
        "added": _records(added),
        "removed": _records(removed),
    }


def _compare_sites(sa: pd.DataFrame, sb: pd.DataFrame, rtol: float,
                   atol: float) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Sites are buildings with ``capacity_kwp > 0``; a building that loses it is removed."""

    def sites(frame: pd.DataFrame) -> pd.DataFrame:
        cap = pd.to_numeric(frame["capacity_kwp"], errors="coerce")
        return frame.loc[(cap > 0).fillna(False).to_numpy(dtype=bool)]

    a_sites, b_sites = sites(sa), sites(sb)
    ids_a, ids_b = set(a_sites["id"]), set(b_sites["id"])
    added = sorted(ids_b - ids_a)
    removed = sorted(ids_a - ids_b)
    # why a removed site is gone: deleted from the layer, or still there but without PV
    reason_b = sb.set_index("id")["reason"] if "reason" in sb.columns else pd.Series(dtype=str)
    in_b = set(sb["id"])
    removed_why = {
        i: ("not in the buildings layer" if i not in in_b
            else str(reason_b.get(i, "") or "capacity is 0"))
        for i in removed
    }
    fields = [f for f in SITE_FIELDS if f in sa.columns and f in sb.columns]
    texts = [f for f in SITE_TEXT_FIELDS if f in sa.columns and f in sb.columns]
    both = a_sites[["id", *fields, *texts]].merge(b_sites[["id", *fields, *texts]], on="id",
                                                   suffixes=("_a", "_b"))
    mask = np.zeros(len(both), dtype=bool)
    for f in fields:
        mask |= _differs(both[f"{f}_a"], both[f"{f}_b"], rtol, atol)
    for f in texts:
        mask |= (both[f"{f}_a"].astype(str) != both[f"{f}_b"].astype(str)).to_numpy(dtype=bool)
    changed = both.loc[mask].sort_values("id", kind="mergesort")
    for f in fields:
        changed[f"{f}_change"] = (pd.to_numeric(changed[f"{f}_b"], errors="coerce")
                                  - pd.to_numeric(changed[f"{f}_a"], errors="coerce"))
    totals = []
    for col, label in [("count", "rooftop PV sites (count)"), *_SITE_TOTALS.items()]:
        if col == "count":
            x, y = float(len(a_sites)), float(len(b_sites))
        elif col in sa.columns and col in sb.columns:
            x = float(pd.to_numeric(a_sites[col], errors="coerce").sum())
            y = float(pd.to_numeric(b_sites[col], errors="coerce").sum())
        else:
            continue
        if not math.isclose(x, y, rel_tol=rtol, abs_tol=atol):
            totals.append({"name": label, "a": x, "b": y, "change": y - x})
    result = {
        "count_a": len(a_sites),
        "count_b": len(b_sites),
        "added": added,
        "removed": removed,
        "removed_reason": removed_why,
        "changed": _records(changed),
    }
    return result, totals


def _compare_parcels(pa: pd.DataFrame, pb: pd.DataFrame) -> dict[str, Any]:
    cols = [c for c in ("code", "group") if c in pa.columns and c in pb.columns]
    merged = pa[["id", *cols]].merge(pb[["id", *cols]], on="id", how="outer",
                                     suffixes=("_a", "_b"), indicator=True)
    both = merged.loc[merged["_merge"] == "both"]
    mask = np.zeros(len(both), dtype=bool)
    for c in cols:
        mask |= (both[f"{c}_a"] != both[f"{c}_b"]).to_numpy(dtype=bool)
    changed = both.loc[mask, ["id", *[f"{c}_{s}" for c in cols for s in ("a", "b")]]]
    return {
        "changed": _records(changed.sort_values("id", kind="mergesort")),
        "added": sorted(merged.loc[merged["_merge"] == "right_only", "id"].tolist()),
        "removed": sorted(merged.loc[merged["_merge"] == "left_only", "id"].tolist()),
    }


def compare_runs(
    dir_a: str | Path, dir_b: str | Path, *, rtol: float = 1e-6, atol: float = 1e-6
) -> dict[str, Any]:
    """What changed between two runs' output folders.

    Parameters
    ----------
    dir_a, dir_b : str or Path
        Output folders of two runs (each holding ``run.json``), earlier one first.  Each part
        of the comparison uses the files both folders have: ``scorecard.json`` (targets),
        ``zones.csv`` (zone figures), ``buildings_pv.gpkg`` (sites), ``parcels.csv`` (parcel
        classes: columns ``id``, ``code``, ``group``).
    rtol, atol : float
        Relative and absolute tolerance below which two numbers count as equal (in the
        numbers' own units), so that rounding noise is not reported as a change.

    Returns
    -------
    dict
        ``{"a": info, "b": info, "targets": [...], "metrics": [...], "zones": {...},
        "sites": {...}, "parcels": {...}, "missing": {...}, "summary": {...}}``.
        Targets have ``status`` "same", "changed", "added" or "removed" and the value, met and
        gap of both runs.  Zones list ``changed`` rows (``<field>_a``, ``<field>_b``,
        ``<field>_change``) plus ``added``/``removed`` zones.  Sites (buildings with
        ``capacity_kwp > 0``) list ``added`` and ``removed`` ids and ``changed`` rows (capacity,
        yield or category differ).  Parcels list ``changed`` rows (``code_a``, ``code_b``,
        ``group_a``, ``group_b``) and ``added``/``removed`` ids.  A part whose file is missing
        from either run is ``None`` and named in ``missing``.

    Raises
    ------
    InputError
        When a folder does not exist or holds none of the run files.
    """
    problems = Problems()
    pa = _run_dir(dir_a, "A", problems)
    pb = _run_dir(dir_b, "B", problems)
    problems.raise_if_errors()
    assert pa is not None and pb is not None

    missing = {
        "a": [n for n in RUN_FILES if not (pa / n).is_file()],
        "b": [n for n in RUN_FILES if not (pb / n).is_file()],
    }

    def both(name: str) -> bool:
        return (pa / name).is_file() and (pb / name).is_file()

    result: dict[str, Any] = {"a": _run_info(pa), "b": _run_info(pb), "targets": None,
                              "metrics": [], "zones": None, "sites": None, "parcels": None,
                              "missing": missing}
    if both("scorecard.json"):
        ca, cb = _read_scorecard(pa / "scorecard.json"), _read_scorecard(pb / "scorecard.json")
        result["targets"] = _compare_targets(ca, cb, rtol, atol)
        result["metrics"] = _compare_metrics(ca, cb, rtol, atol)
    if both("zones.csv"):
        result["zones"] = _compare_zones(_read_csv(pa / "zones.csv", ["zone"]),
                                         _read_csv(pb / "zones.csv", ["zone"]), rtol, atol)
    if both("buildings_pv.gpkg"):
        sites, totals = _compare_sites(_read_sites(pa / "buildings_pv.gpkg"),
                                       _read_sites(pb / "buildings_pv.gpkg"), rtol, atol)
        result["sites"] = sites
        result["metrics"] = totals + result["metrics"]
    if both("parcels.csv"):
        result["parcels"] = _compare_parcels(_read_csv(pa / "parcels.csv", ["id"]),
                                             _read_csv(pb / "parcels.csv", ["id"]))

    targets = result["targets"] or []
    zones = result["zones"] or {"changed": [], "added": [], "removed": []}
    sites = result["sites"] or {"added": [], "removed": [], "changed": []}
    parcels = result["parcels"] or {"changed": [], "added": [], "removed": []}
    summary = {
        "targets_changed": sum(t["status"] != "same" for t in targets),
        "targets_newly_met": sum(t["met_a"] is False and t["met_b"] is True for t in targets),
        "targets_no_longer_met": sum(t["met_a"] is True and t["met_b"] is False for t in targets),
        "metrics_changed": len(result["metrics"]),
        "zones_changed": len(zones["changed"]) + len(zones["added"]) + len(zones["removed"]),
        "sites_added": len(sites["added"]),
        "sites_removed": len(sites["removed"]),
        "sites_changed": len(sites["changed"]),
        "parcels_changed": len(parcels["changed"]),
        "parcels_added": len(parcels["added"]),
        "parcels_removed": len(parcels["removed"]),
    }
    summary["identical"] = not any(v for k, v in summary.items())
    result["summary"] = summary
    return result


# --------------------------------------------------------------------------------------------
# presentation

_SHARE_UNITS = {"share"}


def _show(value: Any, unit: str = "", *, signed: bool = False) -> str:
    """A number as a planner reads it: shares in percent, thousands separated."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if not isinstance(value, (int, float)):
        return str(value)
    sign = "+" if signed and value > 0 else ""
    if unit in _SHARE_UNITS or unit.endswith("share") or unit.endswith("coverage"):
        return f"{sign}{value * 100:.1f}{' pp' if signed else ' %'}"
    if abs(value) >= 1000:
        return f"{sign}{value:,.0f}"
    if abs(value) >= 10:
        return f"{sign}{value:,.1f}".removesuffix(".0")
    return f"{sign}{value:.3g}"


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max([_width(h)] + [_width(r[i]) for r in rows]) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c + " " * (w - _width(c)) for c, w in zip(cells, widths, strict=True)).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def _id_list(ids: Sequence[str], limit: int | None) -> str:
    if limit is None:
        return ", ".join(ids)
    shown = ", ".join(ids[:limit])
    return shown + (f", … and {len(ids) - limit} more" if len(ids) > limit else "")


def _sections(result: dict[str, Any], limit: int | None = None,
              ) -> list[tuple[str, list[str], list[list[str]], str]]:
    """(title, header, rows, note) for each part; shared by the text and HTML views."""
    out = []
    targets = result.get("targets")
    if targets is not None:
        rows = []
        for t in targets:
            unit = t["unit"]
            met = f"{_show(t['met_a'])} → {_show(t['met_b'])}"
            gap = f"{_show(t['gap_a'], t['gap_unit'])} → {_show(t['gap_b'], t['gap_unit'])}"
            rows.append([t["id"], _show(t["value_a"], unit), _show(t["value_b"], unit),
                         _show(t["value_change"], unit, signed=True), met,
                         f"{gap} {t['gap_unit'] if t['gap_unit'] != 'share' else ''}".rstrip(),
                         t["status"]])
        out.append(("Targets", ["target", "value A", "value B", "change", "met A → B",
                                "gap A → B", "status"], rows, ""))
    metrics = result.get("metrics") or []
    out.append(("Metrics that changed", ["metric", "A", "B", "change"],
                [[m["name"], _show(m["a"]), _show(m["b"]), _show(m["change"], signed=True)]
                 for m in metrics], "" if metrics else "none"))
    zones = result.get("zones")
    if zones is not None:
        rows = []
        for z in zones["changed"]:
            for f in zones["fields"]:
                if z[f"{f}_change"] is not None and not math.isclose(
                        z[f"{f}_change"], 0.0, abs_tol=1e-12):
                    rows.append([str(z["zone"]), str(z.get("level", "")), f, _show(z[f"{f}_a"], f),
                                 _show(z[f"{f}_b"], f), _show(z[f"{f}_change"], f, signed=True)])
        note = []
        if zones["added"]:
            note.append("zones added: " + ", ".join(str(z["zone"]) for z in zones["added"]))
        if zones["removed"]:
            note.append("zones removed: " + ", ".join(str(z["zone"]) for z in zones["removed"]))
        out.append(("Zones", ["zone", "level", "figure", "A", "B", "change"], rows,
                    "; ".join(note) or ("" if rows else "no zone changed")))
    sites = result.get("sites")
    if sites is not None:
        rows = []
        for s in sites["changed"]:
            cat = ""
            if "category_a" in s and s["category_a"] != s["category_b"]:
                cat = f"{s['category_a']} → {s['category_b']}"
            rows.append([s["id"], _show(s.get("capacity_kwp_a")), _show(s.get("capacity_kwp_b")),
                         _show(s.get("annual_kwh_a")), _show(s.get("annual_kwh_b")), cat])
        note = [f"sites: {sites['count_a']} in A, {sites['count_b']} in B",
                f"added ({len(sites['added'])}): {_id_list(sites['added'], limit) or 'none'}",
                f"removed ({len(sites['removed'])}): "
                + (_id_list([f"{i} ({sites['removed_reason'][i]})" for i in sites["removed"]],
                            limit)
                   or "none"),
                f"changed ({len(sites['changed'])})" + ("" if rows else ": none")]
        out.append(("Rooftop PV sites", ["id", "kWp A", "kWp B", "kWh/yr A", "kWh/yr B",
                                         "category"], rows, "\n".join(note)))
    parcels = result.get("parcels")
    if parcels is not None:
        rows = [[p["id"], str(p.get("code_a", "")), str(p.get("code_b", "")),
                 str(p.get("group_a", "")), str(p.get("group_b", ""))] for p in parcels["changed"]]
        note = [f"parcels that changed class: {len(rows) or 'none'}",
                f"added ({len(parcels['added'])}): {_id_list(parcels['added'], limit) or 'none'}",
                f"removed ({len(parcels['removed'])}): "
                f"{_id_list(parcels['removed'], limit) or 'none'}"]
        out.append(("Land-use parcels", ["id", "code A", "code B", "group A", "group B"], rows,
                    "\n".join(note)))
    missing = result.get("missing") or {}
    gaps = [f"{name} missing in run {k.upper()}" for k, names in missing.items() for name in names]
    if gaps:
        out.append(("Not compared", [], [], "; ".join(gaps)))
    return out


def _title(result: dict[str, Any]) -> tuple[str, str]:
    def label(info: dict) -> str:
        extra = ", ".join(str(info[k]) for k in ("name", "time", "started") if k in info)
        return info["dir"] + (f" ({extra})" if extra else "")

    return label(result["a"]), label(result["b"])


def format_comparison(result: dict[str, Any], *, max_rows: int = 200) -> str:
    """The comparison as plain text for the terminal.

    Parameters
    ----------
    result : dict
        From :func:`compare_runs`.
    max_rows : int
        Rows shown per table; the rest is counted (the HTML page lists all).

    Returns
    -------
    str
        Aligned tables (Chinese text counted double width).  It contains no square brackets,
        so it prints unchanged through rich's markup.
    """
    a, b = _title(result)
    lines = [f"Run A: {a}", f"Run B: {b}"]
    if result["summary"]["identical"]:
        lines.append("No differences found.")
    for title, header, rows, note in _sections(result, limit=50):
        lines += ["", title, "=" * _width(title)]
        if rows:
            lines += _table(header, rows[:max_rows])
            if len(rows) > max_rows:
                lines.append(f"… and {len(rows) - max_rows} more rows (see the HTML page)")
        if note:
            lines += note.split("\n")
    return "\n".join(lines) + "\n"


_CSS = """
body{font-family:system-ui,"Microsoft YaHei","PingFang SC",sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #ccc;padding:.25em .6em}
th{background:#f0f0f0;text-align:left}td{font-variant-numeric:tabular-nums}
.note{white-space:pre-line;color:#444}.ok{color:#1a7f37}.bad{color:#c62828}
"""


def comparison_html(result: dict[str, Any]) -> str:
    """The comparison as a self-contained HTML page (no scripts, no network); text escaped."""
    from gis._templates import Markup, render

    a, b = _title(result)
    summary = result["summary"]
    return render(
        "compare.html", css=Markup(_CSS), run_a=a, run_b=b, identical=summary["identical"],
        summary=[(k.replace("_", " "), str(v)) for k, v in summary.items() if k != "identical"],
        sections=[(title, header, [[str(c) for c in r] for r in rows], note)
                  for title, header, rows, note in _sections(result)],
    ) + "\n"


def write_comparison_html(result: dict[str, Any], path: str | Path) -> Path:
    """Write :func:`comparison_html` to ``path`` atomically and return the path."""
    return write_text(path, comparison_html(result))

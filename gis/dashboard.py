"""The dashboard (``index.html``) and :func:`publish`, which writes every page of a run.

``index.html`` opens by double-click: the scorecard (the plan's wording in Chinese with English
alongside, value, target, met or not, gap with its unit) with a small bar per target, and links to
the maps, the report and every export.  It loads nothing from the network.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd

from gis import maps
from gis._templates import Markup, render
from gis.io import write_text
from gis.report import (
    CSS,
    closing_text,
    fmt_gap,
    fmt_value,
    met_text,
    where_text,
    write_report,
)

DASH_CSS = CSS + """
body {max-width: 72rem}
.bar {position: relative; width: 9rem; height: .9rem; background: #eee; border-radius: 2px}
.bar .v {position: absolute; left: 0; top: 0; bottom: 0; border-radius: 2px}
.bar .t {position: absolute; top: -3px; bottom: -3px; width: 2px; background: #222}
ul.links li {margin: .15rem 0}
.scorecard td.met, .scorecard td.unmet, .scorecard td.na {white-space: nowrap}
"""

#: The pages :func:`publish` writes, with their labels on the dashboard.
PAGES = {
    "pv_map.html": "屋顶光伏地图 Rooftop PV map",
    "ecology_map.html": "生态屏障地图 Ecological barrier map",
    "report.html": "评估报告 Report (printable)",
}


def _bar(entry: Mapping) -> dict | None:
    """A small CSS bar: the value against a tick at the target (same scale); None = no bar."""
    value, target = entry.get("value"), entry.get("target")
    if value is None or target is None:
        return None
    v, t = max(float(value), 0.0), max(float(target), 0.0)
    top = max(v, t) * 1.15 or 1.0
    return {"title": f"value {v:g} / target {t:g}", "width": f"{100 * v / top:.1f}",
            "tick": f"{100 * t / top:.1f}", "colour": "#1a7a3a" if entry.get("met") else "#c0392b"}


def _href(path: str | Path, out_dir: Path) -> str:
    """A link relative to the dashboard when the file lies under ``out_dir``."""
    p = Path(path)
    if p.is_absolute():
        try:
            p = p.resolve().relative_to(out_dir.resolve())
        except ValueError:
            return p.resolve().as_uri()
    return urllib.parse.quote(p.as_posix())


def _scorecard_row(e: Mapping) -> dict:
    cls, label = met_text(e)
    return {"id": e.get("id"), "measure_zh": e.get("measure_zh"), "measure": e.get("measure"),
            "where": where_text(e.get("where")), "value": fmt_value(e.get("value"), e.get("unit")),
            "target": fmt_value(e.get("target"), e.get("unit")), "bar": _bar(e), "cls": cls,
            "label": label, "gap": fmt_gap(e), "closing": closing_text(e), "by": e.get("by"),
            "basis": e.get("basis")}


def scorecard_table(scorecard: Mapping) -> str:
    """The scorecard as an HTML table (every cell escaped by the template)."""
    return render("scorecard_table.html",
                  rows=[_scorecard_row(e) for e in scorecard.get("targets", [])])


def write_dashboard(out_dir: str | Path, *, scorecard: Mapping, meta: Mapping,
                    files: Mapping[str, str | Path]) -> Path:
    """Write ``index.html`` into ``out_dir`` (atomically).

    Parameters
    ----------
    out_dir : str or Path
    scorecard : dict
        ``{"targets": [entry, ...]}`` (see the output contract); ``value`` None = not evaluated.
    meta : dict
        project, synthetic, run_id, preset.
    files : dict
        Label → path of every other output to link (maps, report, exports); paths under
        ``out_dir`` are linked relatively.

    Returns
    -------
    Path
    """
    out_dir = Path(out_dir)
    project = meta.get("project", "")
    page = render(
        "dashboard.html", css=Markup(DASH_CSS),
        title=f"{project} — 碳达峰规划评估 Carbon-peak planning dashboard",
        synthetic=bool(meta.get("synthetic")), preset=meta.get("preset"),
        run_id=meta.get("run_id"), scorecard=Markup(scorecard_table(scorecard)),
        links=[{"href": _href(path, out_dir), "label": label} for label, path in files.items()])
    return write_text(out_dir / "index.html", page)


def _map_targets(scorecard: Mapping) -> dict:
    """Target values for the ecology map legend, keyed so that the measure is recognisable."""
    out = {}
    for e in scorecard.get("targets", []):
        if e.get("unit") != "share" or e.get("target") is None:
            continue
        tid, measure = str(e.get("id", "")), str(e.get("measure", "")).lower()
        if "blue-green" in measure and "bluegreen" not in tid.lower():
            tid = f"bluegreen-{tid}"
        elif "forest coverage" in measure and not tid.lower().startswith("forest"):
            tid = f"forest-{tid}"
        out[tid] = float(e["target"])
    return out


def publish(out_dir: str | Path, *, pv, zones, landuse, candidates, streets,
            scorecard: Mapping, meta: Mapping,
            rollups: Mapping[str, pd.DataFrame] | None = None, offline: bool = False,
            files: Mapping[str, str | Path] | None = None,
            ground: Mapping[str, Any] | None = None,
            network=None, roof_planes=None,
            exported: Mapping[str, Any] | None = None) -> dict[str, Path]:
    """Write the maps, the report and the dashboard of a run.

    Parameters
    ----------
    out_dir : str or Path
    pv, zones, landuse, candidates, streets
        As for :func:`gis.maps.pv_map`, :func:`gis.maps.ecology_map` and
        :func:`gis.report.write_report`; ``streets`` and ``candidates`` may be None.
    scorecard, meta, rollups
        As for :func:`gis.report.write_report`.
    offline : bool
        Inline all JavaScript and CSS (needs ``scripts/install_assets.sh`` once).
    files : dict, optional
        Label → path of other outputs (exports) to link from the dashboard.
    ground : dict, optional
        Ground PV and money: ``sites`` (drawn on the PV map) and the tables of
        :func:`gis.report.ground_section`.
    network : gis.network.NetworkResult, optional
        Drawn on the ecology map and summarised in the report.
    roof_planes : geopandas.GeoDataFrame, optional
        Roof planes (:func:`gis.planes.roof_planes`), drawn on the PV map.
    exported : dict, optional
        What the run's exports already made, reused by the maps' site panels instead of
        formatting the rows again: ``sites`` (``gis.sites.select_sites(pv)``), ``sites.csv``
        and ``afforestation.csv`` (paths of their ``.csv`` exports).

    Returns
    -------
    dict
        Page name ("index", "pv_map", "ecology_map", "report") → path.
    """
    out_dir = Path(out_dir)
    synthetic = bool(meta.get("synthetic"))
    project = str(meta.get("project", ""))
    written: dict[str, Path] = {}
    exported = exported or {}
    # The ecology map is built in a second thread while the PV map and the report are made in
    # this one: its heavy parts (GEOS simplification and dissolves, PROJ transforms) release the
    # GIL, so on two cores they overlap the rest.  Pages render one at a time (maps.save_map).
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="gis-ecology-map") as pool:
        ecology = None
        if zones is not None and len(zones) and landuse is not None:
            ecology = pool.submit(
                _ecology_page, out_dir, zones, landuse, candidates, scorecard=scorecard,
                meta=meta, offline=offline, network=network,
                candidates_csv=exported.get("afforestation.csv"))
        if pv is not None and len(pv):
            m = maps.pv_map(pv, streets=streets, offline=offline, synthetic=synthetic,
                            max_buildings=int(meta.get("max_buildings_drawn") or 15_000),
                            title=f"{project} 屋顶光伏潜力 Rooftop PV potential",
                            ground=(ground or {}).get("sites"),
                            roof_planes=roof_planes, sites=exported.get("sites"),
                            sites_csv=exported.get("sites.csv"))
            written["pv_map"] = maps.save_map(m, out_dir / "pv_map.html", offline=offline)
        report_path = write_report(out_dir, scorecard=scorecard, pv=pv, zones=zones,
                                   rollups=rollups, meta=meta, ground=ground, network=network)
        if ecology is not None:
            written["ecology_map"] = ecology.result()
    written["report"] = report_path
    written_names = {path.name for path in written.values()} | {"report.html"}
    links: dict[str, str | Path] = {label: name for name, label in PAGES.items()
                                    if name in written_names}
    links.update(files or {})
    written["index"] = write_dashboard(out_dir, scorecard=scorecard, meta=meta, files=links)
    return written


def _ecology_page(out_dir: Path, zones, landuse, candidates, *, scorecard: Mapping,
                  meta: Mapping, offline: bool, network, candidates_csv) -> Path:
    """Build and write ``ecology_map.html`` (see :func:`publish`)."""
    m = maps.ecology_map(zones, landuse, candidates, targets=_map_targets(scorecard),
                         max_parcels=int(meta.get("max_parcels_drawn") or 25_000),
                         offline=offline, synthetic=bool(meta.get("synthetic")),
                         network=network,
                         title=f"{meta.get('project', '')} 生态屏障 Green ecological barrier",
                         candidates_csv=candidates_csv)
    return maps.save_map(m, out_dir / "ecology_map.html", offline=offline)


def page_sizes(paths: Mapping[str, Path]) -> dict[str, int]:
    """Size of each written page [bytes]."""
    return {k: os.path.getsize(p) for k, p in paths.items()}

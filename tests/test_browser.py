"""The offline pages in a real headless Chromium: they load with no network and no console error,
draw the expected features, toggle layers, and show a hostile building name as text.

Screenshots are kept in tests/artifacts/ (not committed) for a person to look at.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from pathlib import Path

import map_fixtures as F
import pandas as pd
import pytest

from gis import dashboard, maps
from gis._assets import assets_dir

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists("/usr/bin/chromium"), reason="no /usr/bin/chromium"),
    pytest.mark.skipif(not (assets_dir() / "leaflet/dist/leaflet.js").is_file(),
                       reason="offline assets not installed (scripts/install_assets.sh)"),
]
websocket = pytest.importorskip("websocket")

from cdp import COUNT_FEATURES, OVERLAYS, Browser, toggle_overlay  # noqa: E402

ARTIFACTS = Path(__file__).parent / "artifacts"
N, DRAWN, TOP, GRID_M = 40, 25, 5, 400.0


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    pv = F.buildings_pv(N)
    written = dashboard.publish(out, pv=pv, zones=F.zones(), landuse=F.landuse(),
                                candidates=F.candidates(), streets=F.streets(N),
                                scorecard=F.scorecard(), meta=F.meta(), offline=True)
    # The PV page again with a small drawing budget, so that the grid aggregate is exercised.
    m = maps.pv_map(pv, streets=F.streets(N), top_n=TOP, max_buildings=DRAWN, grid_m=GRID_M,
                    offline=True, synthetic=True)
    written["pv_small"] = maps.save_map(m, out / "pv_small.html", offline=True)
    return written, pv


@pytest.fixture(scope="module")
def browser():
    with Browser() as b:
        yield b


def _check_clean(b: Browser, name: str) -> None:
    assert b.errors() == [], name
    assert [u for u in b.requests() if u.startswith(("http:", "https:", "ws:"))] == [], name
    assert b.dialogs() == [], name


def test_dashboard_and_report_load_offline(site, browser):
    written, _ = site
    for name in ("index", "report"):
        browser.open(written[name].as_uri())
        _check_clean(browser, name)
        browser.screenshot(ARTIFACTS / f"{name}.png")
    browser.open(written["index"].as_uri())
    hrefs = browser.eval("Array.from(document.querySelectorAll('ul.links a')).map(a => a.href)")
    assert [h.rsplit("/", 1)[-1] for h in hrefs] == ["pv_map.html", "ecology_map.html",
                                                      "report.html"]
    rows = browser.eval("document.querySelectorAll('table.scorecard tr').length")
    assert rows == 1 + len(F.scorecard()["targets"])


def test_pv_map_draws_buildings_toggles_and_escapes(site, browser):
    written, pv = site
    browser.open(written["pv_small"].as_uri())
    _check_clean(browser, "pv_small")
    annual = pv["annual_kwh"]
    rest = pv.loc[annual.sort_values(ascending=False, kind="stable").index[DRAWN:]]
    cells = len(maps._grid_aggregate(rest, GRID_M))
    # drawn buildings + top-site points + grid cells (the street layer starts hidden)
    assert browser.eval(COUNT_FEATURES) == DRAWN + TOP + cells
    overlays = browser.eval(OVERLAYS)
    names = [n for n, _ in overlays]
    top_i = names.index(f"前 {TOP} 个站点 top {TOP} sites")
    street_i = names.index("街道潜力 potential by street")
    assert browser.eval(toggle_overlay(top_i)) is False
    assert browser.eval(COUNT_FEATURES) == DRAWN + cells
    assert browser.eval(toggle_overlay(street_i)) is True
    assert browser.eval(COUNT_FEATURES) == DRAWN + cells + 4
    browser.eval(toggle_overlay(top_i))
    browser.eval(toggle_overlay(street_i))
    browser.screenshot(ARTIFACTS / "pv_map_small.png")

    # The full page: every building drawn; open the tooltip of the hostile name.
    browser.open(written["pv_map"].as_uri())
    _check_clean(browser, "pv_map")
    assert browser.eval(COUNT_FEATURES) == N + TOP_DEFAULT(pv)
    shown = browser.eval("""(() => {
      window.__alerts = []; window.alert = m => window.__alerts.push(String(m));
      const m = Object.keys(window).filter(k => k.startsWith('map_')).map(k => window[k])
        .find(v => v instanceof L.Map);
      let hit = null;
      m.eachLayer(l => { if (l.feature && l.feature.properties.i === 'B00000'
                               && l.getBounds) hit = l; });
      // a hover: folium binds the tooltip to the GeoJSON layer, the event bubbles up to it
      hit.fire('mouseover', {latlng: hit.getBounds().getCenter()}, true);
      const tip = document.querySelector('.leaflet-tooltip');
      return {text: tip.textContent, imgs: tip.querySelectorAll('img').length}; })()""")
    assert F.XSS in shown["text"] and shown["imgs"] == 0
    assert browser.eval("new Promise(r => setTimeout(() => r(window.__alerts), 300))") == []
    browser.screenshot(ARTIFACTS / "pv_map.png")


def TOP_DEFAULT(pv: pd.DataFrame) -> int:
    """Top sites drawn by publish(): all buildings with PV, at most 200."""
    return int(min((pv["capacity_kwp"] > 0).sum(), 200))


def test_ecology_map_draws_and_toggles(site, browser):
    written, _ = site
    browser.open(written["ecology_map"].as_uri())
    _check_clean(browser, "ecology_map")
    # land use shown: 10 parcels (the two "other" start hidden); blue-green zones: 3;
    # candidates: 3
    assert browser.eval(COUNT_FEATURES) == 10 + 3 + 3
    names = [n for n, _ in browser.eval(OVERLAYS)]
    forest_i = names.index("分区 zones: 森林覆盖率 forest coverage")
    blue_i = next(i for i, n in enumerate(names) if "水域 blue" in n)
    assert browser.eval(toggle_overlay(forest_i)) is True
    assert browser.eval(COUNT_FEATURES) == 10 + 3 + 3 + 3
    assert browser.eval(toggle_overlay(blue_i)) is False
    assert browser.eval(COUNT_FEATURES) == 8 + 3 + 3 + 3
    legend = browser.eval("document.getElementById('legend-bluegreen').dataset.breaks")
    assert json.loads(f"[{legend}]") == [0.65, 0.85]
    browser.screenshot(ARTIFACTS / "ecology_map.png")


# ---------------------------------------------------------------------------------------------
# The pipeline's own pages: the demo district at 3 %, run offline, opened in Chromium

DEMO_DRAWN = 1500  # fewer than the demo's buildings at 3 %, so that the grid layer is drawn
SHOWN_GROUPS = [k for k, (_, _, show) in maps.LANDUSE_GROUPS.items() if show]

FIND_MAP = """Object.keys(window).filter(k => k.startsWith('map_')).map(k => window[k])
  .find(v => v instanceof L.Map)"""


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    import geopandas as gpd

    from gis import pipeline
    from gis.demo import make_demo

    folder = tmp_path_factory.mktemp("demo_run")
    run_file = make_demo(folder / "in", scale=0.03, raster_resolution_m=20)
    # the hostile name on the building with the largest footprint (it tops the site list)
    buildings = gpd.read_file(run_file.parent / "buildings.gpkg", layer="buildings")
    target = buildings.geometry.area.idxmax()
    hostile_id = str(buildings.loc[target, "BSM"])
    buildings.loc[target, "JZMC"] = F.XSS
    buildings.to_file(run_file.parent / "buildings.gpkg", layer="buildings", driver="GPKG")
    text = run_file.read_text(encoding="utf-8")
    run_file.write_text(text.replace("[output]\n", f"[output]\nmax_buildings_drawn = {DEMO_DRAWN}\n"),
                        encoding="utf-8")
    ctx = pipeline.run(run_file, out_dir=folder / "out", offline=True)
    return ctx, folder / "out", hostile_id


def _expected_pv(out: Path) -> dict:
    """What the PV page must draw, from buildings_pv.gpkg (not from the page)."""
    import geopandas as gpd
    import numpy as np

    pv = gpd.read_file(out / "buildings_pv.gpkg", layer="buildings_pv")
    annual = pv["annual_kwh"].fillna(0).to_numpy()
    order = np.argsort(-annual, kind="stable")
    drawn, rest = order[:DEMO_DRAWN], order[DEMO_DRAWN:]
    pts = pv.geometry.iloc[rest].representative_point()
    cells = {(int(x // 500), int(y // 500)) for x, y in zip(pts.x, pts.y, strict=True)}
    top200 = order[:200]
    cap = pv["capacity_kwp"].fillna(0).to_numpy()
    return {"buildings": len(drawn), "cells": len(cells), "top": int((cap[top200] > 0).sum()),
            "capacity": cap[drawn], "total": len(pv),
            "top_ids": set(pv["id"].iloc[top200[cap[top200] > 0]])}


def _in_class(capacity, layer_name: str) -> int:
    """Drawn buildings in the capacity class a layer is named after ("20 – 100 kWp", ...)."""
    import re

    label = layer_name.removeprefix("建筑 buildings: ").replace(",", "")
    if label.startswith("无光伏"):
        return int((capacity <= 0).sum())
    has = capacity > 0
    if m := re.fullmatch(r"< ([\d.]+) kWp", label):
        return int((has & (capacity < float(m[1]))).sum())
    if m := re.fullmatch(r"≥ ([\d.]+) kWp", label):
        return int((capacity >= float(m[1])).sum())
    lo, hi = re.fullmatch(r"([\d.]+) – ([\d.]+) kWp", label).groups()
    return int(((capacity >= float(lo)) & (capacity < float(hi))).sum())


def _expected_ecology(out: Path) -> dict:
    import geopandas as gpd
    import pandas as pd

    parcels = pd.read_csv(out / "parcels.csv", encoding="utf-8-sig")
    by_group = parcels["group"].value_counts().to_dict()
    zones = gpd.read_file(out / "zones.gpkg", layer="zones")
    # one row per zone feature, one per level (named after the level) and one per street: the
    # map draws the zone features only
    features = zones[~zones["zone"].isin(zones["level"].unique()) & (zones["kind"] != "street")]
    cand = gpd.read_file(out / "afforestation.gpkg", layer="afforestation")
    # the ecological network shown at start: patches, corridors, bridging candidates (the
    # corridors' gap parcels are shown on demand)
    network = (len(gpd.read_file(out / "patches.gpkg"))
               + len(gpd.read_file(out / "corridors.gpkg", layer="corridors"))
               + int(cand["bridges"].astype(bool).sum()))
    return {"groups": by_group, "bluegreen": int(features["bluegreen_share"].notna().sum()),
            "forest": int(features["forest_coverage"].notna().sum()), "candidates": len(cand),
            "network": network}


def _hover(browser: Browser, prop: str, value: str, *, kind: str) -> dict:
    """Hover the first feature whose property ``prop`` is ``value``; the tooltip's text."""
    test = "l.getBounds" if kind == "polygon" else "l.getLatLng && !l.getBounds"
    where = "hit.getBounds().getCenter()" if kind == "polygon" else "hit.getLatLng()"
    return browser.eval(f"""(() => {{
      const m = {FIND_MAP};
      let hit = null;
      m.eachLayer(l => {{ if (!hit && l.feature && l.feature.properties[{json.dumps(prop)}]
                               === {json.dumps(value)} && {test}) hit = l; }});
      if (!hit) return null;
      document.querySelectorAll('.leaflet-tooltip').forEach(t => t.remove());
      hit.fire('mouseover', {{latlng: {where}}}, true);
      const tips = document.querySelectorAll('.leaflet-tooltip');
      const tip = tips[tips.length - 1];
      return {{text: tip.textContent, imgs: tip.querySelectorAll('img').length}}; }})()""")


def _no_hostile_img(browser: Browser) -> None:
    assert browser.eval("document.querySelectorAll('img[src=\"x\"]').length") == 0


def test_pipeline_pages_in_chromium(demo_run, browser):
    ctx, out, hostile_id = demo_run
    pages = {name: out / f"{name}.html" for name in ("index", "pv_map", "ecology_map", "report")}
    sizes = {name: p.stat().st_size for name, p in pages.items()}
    assert all(s < 10_000_000 for s in sizes.values()), sizes

    # Every page: loads clean, nothing from the network, no dialog, no live hostile <img>.
    for name, path in pages.items():
        browser.open(path.as_uri())
        browser.eval("window.__alerts = []; window.alert = m => window.__alerts.push(String(m));")
        _check_clean(browser, name)
        _no_hostile_img(browser)
        if name == "index":
            hrefs = browser.eval("Array.from(document.querySelectorAll('a[href]'))"
                                 ".map(a => a.href)")
            assert len(hrefs) >= 4
            for href in hrefs:
                assert href.startswith("file://"), href
                target = Path(urllib.parse.unquote(urllib.parse.urlsplit(href).path))
                assert target.is_file() and target.parent == out, href
            names = {h.rsplit("/", 1)[-1] for h in hrefs}
            assert {"pv_map.html", "ecology_map.html", "report.html"} <= names
        browser.screenshot(ARTIFACTS / f"demo_{name}.png")

    # PV map: drawn buildings + grid cells of the others + top sites (streets start hidden).
    e = _expected_pv(out)
    assert e["total"] == len(ctx.results["pv"]) > DEMO_DRAWN
    browser.open(pages["pv_map"].as_uri())
    assert browser.eval(COUNT_FEATURES) == e["buildings"] + e["cells"] + e["top"]
    names = [n for n, _ in browser.eval(OVERLAYS)]
    top_i = next(i for i, n in enumerate(names) if n.endswith(" sites") and n.startswith("前"))
    grid_i = next(i for i, n in enumerate(names) if n.startswith("其余建筑汇总"))
    # every capacity class layer off, one after the other, then the top sites and the grid
    count = e["buildings"] + e["cells"] + e["top"]
    class_layers = [(i, n) for i, n in enumerate(names) if n.startswith("建筑 buildings: ")]
    assert sum(_in_class(e["capacity"], n) for _, n in class_layers) == e["buildings"]
    steps = [(i, _in_class(e["capacity"], n)) for i, n in class_layers]
    steps += [(top_i, e["top"]), (grid_i, e["cells"])]
    for i, n_features in steps:
        assert browser.eval(toggle_overlay(i)) is False, names[i]
        count -= n_features
        assert browser.eval(COUNT_FEATURES) == count, names[i]
    assert count == 0
    for i, _ in steps:
        browser.eval(toggle_overlay(i))
    assert browser.eval(COUNT_FEATURES) == e["buildings"] + e["cells"] + e["top"]

    # The hostile name: text in the tooltip of its roof and of its top-site point, no dialog.
    assert hostile_id in e["top_ids"]
    browser.eval("window.__alerts = []; window.alert = m => window.__alerts.push(String(m));")
    for kind in ("polygon", "point"):
        shown = _hover(browser, "i", hostile_id, kind=kind)
        assert shown is not None, kind
        assert F.XSS in shown["text"] and shown["imgs"] == 0, (kind, shown)
    assert browser.eval("new Promise(r => setTimeout(() => r(window.__alerts), 300))") == []
    assert browser.dialogs() == [] and browser.errors() == []
    _no_hostile_img(browser)
    browser.screenshot(ARTIFACTS / "demo_pv_map_tooltip.png")

    # Ecology map: parcels of the groups shown at start + blue-green zones + candidates.
    x = _expected_ecology(out)
    shown_parcels = sum(x["groups"].get(g, 0) for g in SHOWN_GROUPS)
    browser.open(pages["ecology_map"].as_uri())
    shown = shown_parcels + x["bluegreen"] + x["candidates"] + x["network"]
    assert browser.eval(COUNT_FEATURES) == shown
    names = [n for n, _ in browser.eval(OVERLAYS)]
    blue_i = next(i for i, n in enumerate(names) if "水域 blue" in n)
    other_i = next(i for i, n in enumerate(names) if "其他 other" in n)
    forest_i = names.index("分区 zones: 森林覆盖率 forest coverage")
    cand_i = names.index("造林候选地块 afforestation candidates")
    count = shown
    for i, on, delta in ((blue_i, False, -x["groups"].get("blue", 0)),
                         (other_i, True, x["groups"].get("other", 0)),
                         (forest_i, True, x["forest"]),
                         (cand_i, False, -x["candidates"])):
        assert browser.eval(toggle_overlay(i)) is on, names[i]
        count += delta
        assert browser.eval(COUNT_FEATURES) == count, names[i]
    assert browser.errors() == []

"""The offline pages in a real headless Chromium driven by Playwright: they load with no network
and no console error, draw the expected features, toggle layers, show a hostile building name as
text, and the map pages' site lists download what ``gis-planner sites`` writes.

Debian's chromium is used as it is (``/usr/bin/chromium``); no browser is downloaded.  Screenshots
are kept in tests/artifacts/ (not committed) for a person to look at.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
from pathlib import Path

import map_fixtures as F
import pandas as pd
import pytest

from gis import dashboard, maps, sitepanel
from gis._assets import assets_dir

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="no /usr/bin/chromium"),
    pytest.mark.skipif(not (assets_dir() / "leaflet/dist/leaflet.js").is_file(),
                       reason="offline assets not installed (scripts/install_assets.sh)"),
]
sync_api = pytest.importorskip("playwright.sync_api")

ARTIFACTS = Path(__file__).parent / "artifacts"
N, DRAWN, TOP, GRID_M = 40, 25, 5, 400.0

#: JavaScript: the Leaflet map of the page and what it draws.
FIND_MAP = """Object.keys(window).filter(k => k.startsWith('map_')).map(k => window[k])
  .find(v => v instanceof L.Map)"""
COUNT_FEATURES = f"""(() => {{ const m = {FIND_MAP};
  let n = 0; m.eachLayer(l => {{ if (l.feature) n++; }}); return n; }})()"""
#: Rings the site panel draws (circle markers that are not features of a layer).
COUNT_RINGS = f"""(() => {{ const m = {FIND_MAP};
  let n = 0; m.eachLayer(l => {{ if (!l.feature && l instanceof L.CircleMarker) n++; }});
  return n; }})()"""
OVERLAYS = """Array.from(document.querySelectorAll(
  '.leaflet-control-layers-overlays label')).map(l => [l.textContent.trim(),
  l.querySelector('input').checked])"""


def toggle_overlay(index: int) -> str:
    return (f"(() => {{ const i = document.querySelectorAll("
            f"'.leaflet-control-layers-overlays input')[{index}]; i.click(); return i.checked; }})()")


class Tab:
    """One browser page that records console errors, requests and dialogs since it was opened."""

    def __init__(self, page):
        self.page = page
        self._errors: list[str] = []
        self._requests: list[str] = []
        self._dialogs: list[str] = []
        page.on("pageerror", lambda e: self._errors.append(str(e)[:500]))
        page.on("console", lambda m: self._errors.append(m.text[:500])
                if m.type in ("error", "assert") else None)
        page.on("request", lambda r: self._requests.append(r.url))
        page.on("dialog", self._dialog)

    def _dialog(self, dialog) -> None:
        self._dialogs.append(dialog.message)
        dialog.dismiss()

    def open(self, url: str) -> None:
        self._errors.clear()
        self._requests.clear()
        self._dialogs.clear()
        self.page.goto(url, wait_until="load")
        # the site panels inflate their tables after the load event
        self.page.wait_for_function(
            "document.querySelectorAll('.gp-sites:not([data-ready])').length === 0"
            " || document.querySelector('.gp-sites .gp-error') !== null", timeout=20_000)

    def eval(self, expression: str):
        return self.page.evaluate(expression)

    def errors(self) -> list[str]:
        return list(self._errors)

    def requests(self) -> list[str]:
        return list(self._requests)

    def dialogs(self) -> list[str]:
        return list(self._dialogs)

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path))
        return path

    def download(self, testid: str, path: Path) -> bytes:
        with self.page.expect_download() as info:
            self.page.get_by_test_id(testid).click()
        info.value.save_as(str(path))
        return path.read_bytes()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM)
        context = chromium.new_context(viewport={"width": 1280, "height": 860},
                                       accept_downloads=True)
        yield Tab(context.new_page())
        context.close()
        chromium.close()


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


def _check_clean(b: Tab, name: str) -> None:
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
# The pipeline's own pages: the demo district at 2 %, run offline, opened in Chromium

DEMO_DRAWN = 1500  # fewer than the demo's buildings at 2 %, so that the grid layer is drawn
SHOWN_GROUPS = [k for k, (_, _, show) in maps.LANDUSE_GROUPS.items() if show]

@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    import geopandas as gpd

    from gis import pipeline
    from gis.demo import make_demo

    folder = tmp_path_factory.mktemp("demo_run")
    run_file = make_demo(folder / "in", scale=0.02, raster_resolution_m=40)
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


def _hover(browser: Tab, prop: str, value: str, *, kind: str) -> dict:
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


def _no_hostile_img(browser: Tab) -> None:
    assert browser.eval("document.querySelectorAll('img[src=\"x\"]').length") == 0


def test_pipeline_pages_in_chromium(demo_run, browser):
    ctx, out, hostile_id = demo_run
    pages = {name: out / f"{name}.html" for name in ("index", "pv_map", "ecology_map", "report")}
    sizes = {name: p.stat().st_size for name, p in pages.items()}
    assert all(s < 10_000_000 for s in sizes.values()), sizes

    # Every page: loads clean, nothing from the network, no dialog, no live hostile <img>.
    for name, path in pages.items():
        browser.open(path.as_uri())
        browser.eval("window.__alerts = []; window.alert = m => window.__alerts.push(String(m)); void 0;")
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
    browser.eval("window.__alerts = []; window.alert = m => window.__alerts.push(String(m)); void 0;")
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


# ---------------------------------------------------------------------------------------------
# The site lists of the map pages: filter, rank, ring, download — equal to the command line's


def _cli_sites(out: Path, target: Path, *args: str, in_process: bool = False) -> bytes:
    """``python -m gis.cli sites OUT … -o target`` (in a fresh interpreter, or through the same
    command-line app in this one); the file's bytes."""
    argv = ["sites", str(out), *args, "-o", str(target)]
    if in_process:
        from typer.testing import CliRunner

        from gis.cli import app

        result = CliRunner().invoke(app, argv)
        assert result.exit_code == 0, result.output
    else:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]))
        subprocess.run([sys.executable, "-m", "gis.cli", *argv], check=True, capture_output=True,
                       env=env, timeout=120)
    return target.read_bytes()


def _choose(tab: Tab, *, street: str = "", category: str = "", min_kwp: str = "",
            new_only: bool = False, without_pv: bool = False, rank_by: str = "annual_kwh",
            top: str = "") -> int:
    """Set the panel's controls as a person would; the count it shows."""
    page = tab.page
    page.get_by_test_id("site-filter-street").select_option(street)
    page.get_by_test_id("site-filter-category").select_option(category)
    page.get_by_test_id("site-filter-min-kwp").fill(min_kwp)
    page.get_by_test_id("site-filter-new-only").set_checked(new_only)
    page.get_by_test_id("site-filter-without-pv").set_checked(without_pv)
    page.get_by_test_id("site-rank-by").select_option(rank_by)
    page.get_by_test_id("site-top").fill(top)
    return int(page.get_by_test_id("site-count").text_content())


def test_site_panel_downloads_the_cli_list(demo_run, browser, tmp_path):
    _, out, _ = demo_run
    listed = pd.read_csv(out / "sites.csv", encoding="utf-8-sig")
    browser.open((out / "pv_map.html").as_uri())
    _check_clean(browser, "pv_map")
    page = browser.page
    assert int(page.get_by_test_id("site-count").text_content()) == len(listed)
    assert browser.eval(COUNT_RINGS) == 0  # nothing chosen yet: no rings
    # no filter: the whole list, byte for byte the run's sites.csv
    assert browser.download("site-download", tmp_path / "all.csv") == (out / "sites.csv"
                                                                       ).read_bytes()

    # the street and category with the most industrial sites, a minimum, a rank, a top N
    ind = listed[listed["category"] == "industrial"]
    street = ind["street"].value_counts().index[0]
    kwp = float(ind["capacity_kwp"].median())
    n = _choose(browser, street=street, category="industrial", min_kwp=f"{kwp:.1f}",
                rank_by="capacity_kwp", top="7")
    assert n == 7
    assert browser.eval(COUNT_RINGS) == 7
    got = browser.download("site-download", tmp_path / "panel.csv")
    want = _cli_sites(out, tmp_path / "cli.csv", "--street", street, "--category", "industrial",
                      "--min-kwp", f"{kwp:.1f}", "--rank-by", "capacity_kwp", "--top", "7")
    assert got == want
    browser.screenshot(ARTIFACTS / "demo_pv_map_site_panel.png")

    # checkboxes and the specific-yield order, every matching site (no top N)
    n = _choose(browser, new_only=True, without_pv=True, rank_by="specific_yield_kwh_kwp")
    got = browser.download("site-download", tmp_path / "panel2.csv")
    want = _cli_sites(out, tmp_path / "cli2.csv", "--new-only", "--without-pv",
                      "--rank-by", "specific_yield_kwh_kwp", in_process=True)
    assert got == want and got.startswith(b"\xef\xbb\xbf")
    assert n == len(pd.read_csv(tmp_path / "cli2.csv", encoding="utf-8-sig")) > 0
    assert browser.eval(COUNT_RINGS) == min(n, 2000)
    # nothing matches: the header alone, as the CLI writes it
    assert _choose(browser, street=street, category="government", min_kwp="1e9") == 0
    got = browser.download("site-download", tmp_path / "none.csv")
    assert got == (out / "sites.csv").read_bytes().split(b"\n", 1)[0] + b"\n"
    assert browser.errors() == [] and browser.dialogs() == []


def test_afforestation_panel_downloads_rows_of_the_list(demo_run, browser, tmp_path):
    _, out, _ = demo_run
    browser.open((out / "ecology_map.html").as_uri())
    _check_clean(browser, "ecology_map")
    page = browser.page
    listed = pd.read_csv(out / "afforestation.csv", encoding="utf-8-sig", dtype=str,
                         keep_default_na=False)
    assert int(page.get_by_test_id("aff-count").text_content()) == len(listed)
    assert browser.download("aff-download", tmp_path / "all.csv") == (
        out / "afforestation.csv").read_bytes()
    # the largest parcels of at least the median area, first 5: rows of the list, cell for cell
    area = listed["area_ha"].astype(float)
    least = float(area.median())
    page.get_by_test_id("aff-filter-min-ha").fill(f"{least}")
    page.get_by_test_id("aff-rank-by").select_option("area_ha")
    page.get_by_test_id("aff-top").fill("5")
    assert page.get_by_test_id("aff-count").text_content() == "5"
    browser.download("aff-download", tmp_path / "top.csv")
    got = pd.read_csv(tmp_path / "top.csv", encoding="utf-8-sig", dtype=str,
                      keep_default_na=False)
    keep = listed[area >= least]
    want = keep.loc[keep["area_ha"].astype(float).sort_values(ascending=False,
                                                               kind="mergesort").index[:5]]
    pd.testing.assert_frame_equal(got, want.reset_index(drop=True))
    assert browser.eval(COUNT_RINGS) == 5
    browser.screenshot(ARTIFACTS / "demo_ecology_map_afforestation_panel.png")
    assert browser.errors() == [] and browser.dialogs() == []


def test_site_table_beside_the_page_and_hostile_streets(tmp_path, browser, monkeypatch):
    import numpy as np

    from gis import sites

    pv = F.buildings_pv(N)
    pv["street"] = np.where(np.arange(N) < 20, F.XSS, "金桥 \"街道\" 'A'")
    monkeypatch.setattr(sitepanel, "PAGE_BUDGET_BYTES", 50_000)  # smaller than the page
    path = maps.save_map(maps.pv_map(pv, offline=True, synthetic=True), tmp_path / "pv.html",
                         offline=True)
    assert (tmp_path / "pv.pv.js").is_file()
    browser.open(path.as_uri())
    _check_clean(browser, "pv beside")
    browser.eval("window.__alerts = []; window.alert = m => window.__alerts.push(String(m)); "
                 "void 0;")
    page = browser.page
    page.get_by_test_id("site-filter-street").select_option(F.XSS)
    n = int(page.get_by_test_id("site-count").text_content())
    got = browser.download("site-download", tmp_path / "x.csv")
    want = sites.csv_text(sites.select_sites(pv, street=F.XSS))
    assert got == ("\ufeff" + want).encode("utf-8") and n == want.count("\n") - 1 == 15
    page.get_by_test_id("site-filter-street").select_option("金桥 \"街道\" 'A'")
    assert int(page.get_by_test_id("site-count").text_content()) == 30 - 15
    # the rings' tooltips carry ids as text
    assert browser.eval("document.querySelectorAll('img[src=\"x\"]').length") == 0
    assert browser.eval("new Promise(r => setTimeout(() => r(window.__alerts), 300))") == []
    assert browser.dialogs() == [] and browser.errors() == []
    # the table missing (the page copied alone): the panel says so instead of failing silently
    (tmp_path / "pv.pv.js").unlink()
    browser.page.goto(path.as_uri(), wait_until="load")
    status = page.locator("#gp-sites-pv [data-role=status]")
    assert "site table is missing" in status.text_content()

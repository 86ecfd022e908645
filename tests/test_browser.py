"""The offline pages in a real headless Chromium: they load with no network and no console error,
draw the expected features, toggle layers, and show a hostile building name as text.

Screenshots are kept in tests/artifacts/ (not committed) for a person to look at.
"""

from __future__ import annotations

import json
import os
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

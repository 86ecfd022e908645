"""A planner's session in the workspace, in a real headless Chromium driven by Playwright.

From a folder of the demo's layers (one of them uploaded through the page): set up each layer,
check the suggested columns, choose the settings, validate, run, open the dashboard and the PV
map, and download a site list — asserting on what a person sees.  Screenshots are kept in
tests/artifacts/ (not committed).
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest

from gis._assets import assets_dir
from gis.serve import create_app

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists("/usr/bin/chromium"), reason="no /usr/bin/chromium"),
    pytest.mark.skipif(not (assets_dir() / "leaflet/dist/leaflet.js").is_file(),
                       reason="offline assets not installed (scripts/install_assets.sh)"),
]
playwright = pytest.importorskip("playwright.sync_api")

ARTIFACTS = Path(__file__).parent / "artifacts"
LAYERS = {"buildings": "buildings.gpkg", "landuse": "landuse.shp", "zones": "zones.geojson",
          "streets": "streets.fgb", "forest": "forest.gpkg", "irradiance": "irradiance.tif"}


@pytest.fixture(scope="module")
def served(demo_dir, tmp_path_factory):
    """The workspace on a free loopback port, for a folder of the demo's layers but streets."""
    from werkzeug.serving import make_server

    base = tmp_path_factory.mktemp("session")
    project, elsewhere = base / "project", base / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    for path in demo_dir.iterdir():
        if path.is_file() and path.name != "run.toml":
            target = elsewhere if path.name == "streets.fgb" else project
            shutil.copy2(path, target / path.name)
    server = make_server("127.0.0.1", 0, create_app(project), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", project, elsewhere
    server.shutdown()
    thread.join(10)


@pytest.fixture(scope="module")
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium")
        context = browser.new_context(viewport={"width": 1280, "height": 900},
                                      accept_downloads=True, locale="zh-CN")
        yield context.new_page()
        browser.close()


def test_a_planner_sets_up_runs_and_downloads_a_site_list(served, page, tmp_path):
    from playwright.sync_api import expect

    url, project, elsewhere = served
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(url)
    expect(page.get_by_test_id("project-title")).to_have_text("project")

    # upload the streets layer kept elsewhere
    page.get_by_test_id("upload-files").set_input_files(str(elsewhere / "streets.fgb"))
    page.get_by_test_id("upload-submit").click()
    expect(page.get_by_test_id("flash")).to_have_text("uploaded: streets.fgb")
    expect(page.get_by_test_id("file-list")).to_contain_text("streets.fgb")

    for kind, file in LAYERS.items():
        page.get_by_test_id(f"setup-{kind}").click()
        page.get_by_test_id("layer-file").select_option(file)
        page.get_by_test_id("layer-use").click()
        expect(page.get_by_test_id("flash")).to_contain_text(f"{file} chosen for {kind}")
        if kind == "buildings":
            # the suggested column is chosen, its sample values shown
            expect(page.get_by_test_id("col-category")).to_have_value("JZLB")
            expect(page.get_by_test_id("col-category")).to_contain_text("★ JZLB")
            expect(page.get_by_test_id("col-roof_type")).to_have_value("WDLX")
            page.screenshot(path=str(ARTIFACTS / "serve_columns.png"))
        if kind == "zones":
            values = page.get_by_test_id("values-level")
            expect(values).to_contain_text("一级管控区")
            row = values.locator('input[value="一级管控区"]').get_attribute("name")
            index = row.rsplit(":", 1)[1]
            expect(page.get_by_test_id(f"val-level-{index}")).to_have_value("level1")
        if kind == "irradiance":
            expect(page.get_by_test_id("column-table")).to_have_count(0)
        page.get_by_test_id("layer-save").click()
        expect(page.get_by_test_id("flash")).to_have_text(f"{kind} saved to run.toml")
        page.get_by_test_id("nav-home").click()
    expect(page.get_by_test_id("layer-list")).to_contain_text("landuse.shp")

    page.get_by_test_id("settings-name").fill("东丽区 workspace")
    page.get_by_test_id("settings-crs").fill("EPSG:4548")
    page.get_by_test_id("settings-pv").select_option("base")
    page.get_by_test_id("settings-offline").check()
    page.get_by_test_id("settings-save").click()
    expect(page.get_by_test_id("flash")).to_have_text("settings saved to run.toml")
    expect(page.get_by_test_id("project-title")).to_have_text("东丽区 workspace")
    page.screenshot(path=str(ARTIFACTS / "serve_workspace.png"), full_page=True)

    page.get_by_test_id("validate").click()
    expect(page.get_by_test_id("validate-result")).to_contain_text("all layers usable")
    page.get_by_test_id("run").click()
    expect(page.get_by_test_id("run-progress")).to_be_visible()
    expect(page.get_by_test_id("open-dashboard")).to_be_visible(timeout=600_000)
    expect(page.get_by_test_id("run-step")).to_contain_text("finished")
    bar = page.get_by_test_id("run-progress")
    assert bar.get_attribute("max") is not None
    assert page.evaluate("document.getElementById('bar').value === document.getElementById("
                         "'bar').max")
    page.screenshot(path=str(ARTIFACTS / "serve_progress.png"))

    page.get_by_test_id("open-dashboard").click()
    expect(page.locator("body")).to_contain_text("bluegreen-level1")
    page.goto(f"{url}/files/output/pv_map.html")
    expect(page.locator(".leaflet-container")).to_be_visible()
    features = page.wait_for_function(
        "() => { const m = Object.keys(window).filter(k => k.startsWith('map_'))"
        ".map(k => window[k]).find(v => v instanceof L.Map); if (!m) return 0;"
        " let n = 0; m.eachLayer(l => { if (l.feature) n++; }); return n; }").json_value()
    assert features > 100  # buildings (or their grid) and streets drawn
    expect(page.locator(".leaflet-control-layers-overlays")).to_contain_text("建筑 buildings")
    page.screenshot(path=str(ARTIFACTS / "serve_pv_map.png"))

    page.goto(f"{url}/outputs")
    expect(page.get_by_test_id("scorecard")).to_contain_text("pv-pilot-government")
    street = page.get_by_test_id("sites-street").locator("option").first.get_attribute("value")
    page.get_by_test_id("sites-street").select_option(street)
    page.get_by_test_id("sites-top").fill("10")
    with page.expect_download() as info:
        page.get_by_test_id("sites-download").click()
    download = info.value
    assert download.suggested_filename == "sites.csv"
    got = tmp_path / "sites.csv"
    download.save_as(got)

    from typer.testing import CliRunner

    from gis.cli import app as cli_app

    expected = tmp_path / "cli.csv"
    result = CliRunner().invoke(cli_app, ["sites", str(project / "run.toml"), "-o",
                                          str(expected), "--street", street, "--top", "10"])
    assert result.exit_code == 0, result.output
    assert got.read_bytes() == expected.read_bytes()
    rows = got.read_text(encoding="utf-8-sig").splitlines()
    assert len(rows) == 11 and all(f",{street}," in r for r in rows[1:])

"""``gis-planner serve``: the workspace app, driven with Flask's test client.

A project set up from scratch through the forms (the demo's layers, no run file) validates,
runs, and writes a run file from which ``gis-planner run`` gives the same scorecard; paths
outside the project folder are refused; uploads are size-limited; one run at a time.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import tomllib
from html.parser import HTMLParser
from pathlib import Path

import pytest

from gis import pipeline
from gis.serve import create_app

LAYERS = {"buildings": "buildings.gpkg", "landuse": "landuse.shp", "zones": "zones.geojson",
          "streets": "streets.fgb", "forest": "forest.gpkg", "irradiance": "irradiance.tif"}


class _Forms(HTMLParser):
    """The values a browser submits for each form of a page, as the page shows them."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self.form: dict | None = None
        self.select: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.form = {"fields": {}, "selects": {}}
            self.forms.append(self.form)
        elif self.form is None:
            return
        elif tag == "input" and a.get("name") and a.get("type") in ("hidden", "text", "number"):
            self.form["fields"][a["name"]] = a.get("value") or ""
        elif tag == "input" and a.get("type") == "checkbox" and "checked" in a:
            self.form["fields"][a["name"]] = "on"
        elif tag == "select":
            self.select = a["name"]
            self.form["selects"][self.select] = [None, None]
        elif tag == "option" and self.select:
            slot = self.form["selects"][self.select]
            slot[1] = a.get("value", "") if slot[1] is None else slot[1]
            if "selected" in a:
                slot[0] = a.get("value", "")

    def handle_endtag(self, tag):
        if tag == "select":
            self.select = None
        elif tag == "form":
            self.form = None


def form_values(html: str, **match: str) -> dict[str, str]:
    """The submitted values of the first form whose fields include ``match``."""
    parser = _Forms()
    parser.feed(html)
    for form in parser.forms:
        if all(form["fields"].get(k) == v for k, v in match.items()):
            values = dict(form["fields"])
            values.update({name: chosen if chosen is not None else (first or "")
                           for name, (chosen, first) in form["selects"].items()})
            return values
    raise AssertionError(f"no form with {match}")


def set_up_layer(client, kind: str, file: str) -> dict[str, str]:
    """Choose a file for a layer, then save the columns and values the page suggests."""
    r = client.post(f"/layers/{kind}", data={"action": "file", "path": file})
    assert r.status_code == 302
    page = client.get(f"/layers/{kind}").get_data(as_text=True)
    values = form_values(page, action="save")
    assert client.post(f"/layers/{kind}", data=values).status_code == 302
    return values


def wait_for(client, timeout: float = 600) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        status = client.get("/status").get_json()
        if status["state"] != "running":
            return status
        time.sleep(0.2)
    raise AssertionError("the run did not finish")


def _project_from_demo(demo_dir: Path, folder: Path) -> Path:
    """The demo's layer files in a new project folder, without its run file."""
    folder.mkdir(parents=True)
    for path in demo_dir.iterdir():
        if path.is_file() and path.name != "run.toml":
            shutil.copy2(path, folder / path.name)
    return folder


@pytest.fixture(scope="module")
def workspace(demo_dir, tmp_path_factory):
    """A project set up through the forms (the settings saved twice) and run."""
    project = _project_from_demo(demo_dir, tmp_path_factory.mktemp("ws") / "东丽区 project")
    app = create_app(project)
    client = app.test_client()
    assert "buildings.gpkg" in client.get("/").get_data(as_text=True)
    mapped = {kind: set_up_layer(client, kind, file) for kind, file in LAYERS.items()}
    settings = {"name": "东丽区（工作台）", "targets": "dongli-2025", "pv_preset": "conservative",
                "crs": "EPSG:4548", "weather": "", "synthetic": "on"}
    assert client.post("/settings", data=settings).status_code == 302
    assert client.post("/settings", data={**settings, "pv_preset": "base"}).status_code == 302
    checked = client.post("/validate").get_data(as_text=True)
    assert client.post("/run").status_code == 303
    status = wait_for(client)
    return {"client": client, "app": app, "project": project, "mapped": mapped,
            "validated": checked, "status": status}


def test_suggested_columns_and_values_are_what_the_demo_needs(workspace):
    mapped = workspace["mapped"]
    assert mapped["buildings"]["col:category"] == "JZLB"
    assert mapped["buildings"]["col:floors"] == "CS"
    assert mapped["landuse"]["col:code"] == "DLBM"
    assert mapped["zones"]["col:level"] == "GKJB"
    raw = tomllib.loads((workspace["project"] / "run.toml").read_text(encoding="utf-8"))
    # zone levels are recognised only by their canonical names: the Chinese labels are mapped
    assert raw["layers"]["zones"]["values"]["level"] == {
        "屏障区": "barrier", "一级管控区": "level1", "二级管控区": "level2",
        "三级管控区": "level3", "片区": "subzone"}
    # categories and roof types the package recognises itself are left out of the run file
    assert "categories" not in raw["layers"]["buildings"]
    assert raw["output"] == {"dir": "output", "offline": False}
    assert raw["project"]["crs"] == "EPSG:4548" and raw["pv"] == {"preset": "base"}


def test_validation_lists_every_problem_or_none(workspace):
    assert "all layers usable" in workspace["validated"]


def test_run_reports_progress_over_every_step(workspace):
    status = workspace["status"]
    assert status["state"] == "done", status
    assert status["done"] == status["total"] == len(pipeline.STEPS)


def test_outputs_map_and_site_list_form(workspace):
    client = workspace["client"]
    page = client.get("/outputs").get_data(as_text=True)
    assert "bluegreen-level1" in page and "output/pv_map.html" in page
    assert "output/project.qgz" in page
    assert client.get("/files/output/pv_map.html").status_code == 200
    assert "nothing to compare yet" in client.get("/compare").get_data(as_text=True)


def test_site_list_download_equals_the_command_line(workspace, tmp_path):
    from typer.testing import CliRunner

    from gis.cli import app as cli_app

    client, project = workspace["client"], workspace["project"]
    page = client.get("/outputs").get_data(as_text=True)
    street = form_values(page)["street"]
    assert street  # the first street offered
    query = {"street": street, "category": "industrial", "min_kwp": "20", "top": "15",
             "rank_by": "capacity_kwp", "format": "csv"}
    r = client.get("/sites", query_string=query)
    assert r.status_code == 200
    assert r.headers["Content-Disposition"] == "attachment; filename=sites.csv"
    out = tmp_path / "cli.csv"
    result = CliRunner().invoke(cli_app, [
        "sites", str(project / "output"), "-o", str(out), "--street", street, "--category",
        "industrial", "--min-kwp", "20", "--top", "15", "--rank-by", "capacity_kwp"])
    assert result.exit_code == 0, result.output
    assert r.data == out.read_bytes()
    rows = r.data.decode("utf-8-sig").splitlines()
    assert rows[0].startswith("rank,id,") and 1 < len(rows) <= 16
    assert not list((project / ".workspace").rglob("*.csv"))  # scratch files removed


def test_run_file_reproduces_the_scorecard_with_the_command_line(workspace):
    """``gis-planner run run.toml`` from a terminal: the same scorecard and run id; the
    workspace's own run becomes the previous one, and the comparison finds no difference."""
    client, project = workspace["client"], workspace["project"]
    ours = json.loads((project / "output" / "run.json").read_text(encoding="utf-8"))
    card = (project / "output" / "scorecard.json").read_bytes()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-m", "gis.cli", "run", str(project / "run.toml")],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    theirs = json.loads((project / "output" / "run.json").read_text(encoding="utf-8"))
    assert (project / "output" / "scorecard.json").read_bytes() == card
    assert theirs["run_id"] == ours["run_id"]
    assert (project / "output.previous" / "scorecard.json").read_bytes() == card
    compared = client.get("/compare")
    assert compared.status_code == 200
    text = compared.get_data(as_text=True)
    assert "pv-pilot-government" in text and str(project / "output.previous") in text
    from gis.compare import compare_runs

    assert compare_runs(project / "output.previous", project / "output")["summary"]["identical"]
    home = client.get("/").get_data(as_text=True)
    assert "output.previous" not in home  # outputs are not offered as layer files


# --------------------------------------------------------------------------------------------
# confinement, limits, one run at a time


@pytest.fixture
def project(tmp_path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "zones.geojson").write_text('{"type": "FeatureCollection", "features": []}',
                                          encoding="utf-8")
    (tmp_path / "secret.txt").write_text("outside", encoding="utf-8")
    return folder


TRAVERSALS = ["/files/../secret.txt", "/files/%2e%2e/secret.txt", "/files/..%2fsecret.txt",
              "/files/a/../../secret.txt", "/files//etc/passwd", "/files/%2Fetc%2Fpasswd",
              "/files/..%5Csecret.txt", "/files/C:/Windows/win.ini"]


@pytest.mark.parametrize("url", TRAVERSALS)
def test_paths_outside_the_project_are_refused(project, url):
    client = create_app(project).test_client()
    r = client.get(url)
    assert r.status_code == 403
    assert "outside the project folder" in r.get_data(as_text=True)


def test_forms_naming_paths_outside_are_refused(project):
    client = create_app(project).test_client()
    for path in ("../secret.txt", "/etc/passwd", str(project.parent / "secret.txt")):
        r = client.post("/layers/buildings", data={"action": "file", "path": path})
        assert r.status_code == 403, path
        assert client.post("/settings", data={"targets": path}).status_code == 403
        assert client.post("/settings", data={"weather": path}).status_code == 403
    r = client.post("/upload", data={"folder": "../", "files": [(_bytes(10), "a.txt")]},
                    content_type="multipart/form-data")
    assert r.status_code == 403
    assert not (project.parent / "a.txt").exists()
    assert not (project / "run.toml").exists()  # nothing was written


def test_upload_keeps_only_the_file_name(project):
    client = create_app(project).test_client()
    r = client.post("/upload", data={"files": [(_bytes(10), "../../evil.txt")]},
                    content_type="multipart/form-data")
    assert r.status_code == 302
    assert (project / "evil.txt").read_bytes() == b"x" * 10
    assert not (project.parent / "evil.txt").exists()
    assert not (project.parent.parent / "evil.txt").exists()


def test_symlinks_pointing_out_are_refused_and_not_listed(project):
    (project / "link.txt").symlink_to(project.parent / "secret.txt")
    (project / "dirlink").symlink_to(project.parent)
    (project / "inner.txt").write_text("inside", encoding="utf-8")
    (project / "inner_link.txt").symlink_to(project / "inner.txt")
    client = create_app(project).test_client()
    assert client.get("/files/link.txt").status_code == 403
    assert client.get("/files/dirlink/secret.txt").status_code == 403
    inner = client.get("/files/inner_link.txt")
    assert inner.data == b"inside"  # a link inside is fine
    assert inner.headers["Content-Disposition"].startswith("attachment")  # not rendered
    home = client.get("/").get_data(as_text=True)
    assert "<td>link.txt</td>" not in home and "secret" not in home and "inner.txt" in home
    r = client.post("/layers/zones", data={"action": "file", "path": "link.txt"})
    assert r.status_code == 403


def _bytes(n: int):
    import io

    return io.BytesIO(b"x" * n)


def test_uploads_are_size_limited(project):
    client = create_app(project, max_upload_mb=0.01).test_client()  # 10 KB
    big = client.post("/upload", data={"files": [(_bytes(20_000), "big.gpkg")]},
                      content_type="multipart/form-data")
    assert big.status_code == 413
    assert "larger than the limit of 0.01 MB" in big.get_data(as_text=True)
    assert not (project / "big.gpkg").exists()
    small = client.post("/upload", data={"files": [(_bytes(2_000), "small.gpkg")]},
                        content_type="multipart/form-data")
    assert small.status_code == 302 and (project / "small.gpkg").stat().st_size == 2_000


def test_only_loopback_hosts_and_own_forms(project):
    client = create_app(project).test_client()
    assert client.get("/", headers={"Host": "attacker.example"}).status_code == 403
    assert client.get("/", headers={"Host": "127.0.0.1:8765"}).status_code == 200
    r = client.post("/settings", data={"name": "x"},
                    headers={"Origin": "http://attacker.example"})
    assert r.status_code == 403 and not (project / "run.toml").exists()


def test_one_run_at_a_time(project, monkeypatch):
    release, started = threading.Event(), threading.Event()

    class _Ctx:
        class layers:  # noqa: N801 - stands in for Layers
            warnings: list = []

    def fake_run(runfile, *, progress=None, **_):
        progress("load and validate layers")
        started.set()
        assert release.wait(30)
        progress("rooftop PV")
        return _Ctx()

    monkeypatch.setattr(pipeline, "run", fake_run)
    app = create_app(project)
    client = app.test_client()
    assert client.post("/run").status_code == 303
    assert started.wait(30)
    second = client.post("/run")
    assert second.status_code == 409
    assert "a run is in progress (step 1 of" in second.get_data(as_text=True)
    as_json = client.post("/run", headers={"Accept": "application/json"})
    assert as_json.status_code == 409 and "wait until it finishes" in as_json.get_json()["error"]
    assert client.get("/status").get_json()["step"] == "load and validate layers"
    release.set()
    app.config["RUNNER"].wait(30)
    assert client.get("/status").get_json()["state"] == "done"
    assert client.post("/run").status_code == 303  # free again
    app.config["RUNNER"].wait(30)


def test_unknown_category_labels_are_mapped_in_the_run_file(tmp_path):
    import geopandas as gpd
    import shapely

    project = tmp_path / "p"
    project.mkdir()
    hostile = "<script>alert(1)</script>"
    gpd.GeoDataFrame({"BSM": ["a", "b", "c", "d"], "JZLB": ["新建厂房", "车库", "车库", hostile]},
                     geometry=shapely.box([0, 50, 100, 150], 0, [20, 70, 120, 170], 20),
                     crs="EPSG:4548").to_file(project / "b.gpkg", layer="b")
    client = create_app(project).test_client()
    client.post("/layers/buildings", data={"action": "file", "path": "b.gpkg"})
    page = client.get("/layers/buildings").get_data(as_text=True)
    assert "★ JZLB — 新建厂房 · 车库 · &lt;script&gt;" in page
    assert hostile not in page  # a hostile value stays text
    values = form_values(page, action="save")
    keys = {values[k]: k.replace("valkey:", "val:") for k in values if k.startswith("valkey:")}
    assert values[keys["新建厂房"]] == "industrial"  # suggested by the package's label table
    assert values[keys["车库"]] == ""  # unknown: the planner decides
    values[keys["车库"]] = "other"
    assert client.post("/layers/buildings", data=values).status_code == 302
    raw = tomllib.loads((project / "run.toml").read_text(encoding="utf-8"))
    assert raw["layers"]["buildings"]["categories"] == {"车库": "other"}
    assert raw["layers"]["buildings"]["columns"] == {"id": "BSM", "category": "JZLB"}


def test_an_unreadable_run_file_is_reported_and_never_overwritten(project):
    (project / "run.toml").write_text("[project\nname = 1", encoding="utf-8")
    client = create_app(project).test_client()
    page = client.get("/")
    assert page.status_code == 400
    assert "the run file cannot be read" in page.get_data(as_text=True)
    assert client.post("/settings", data={"name": "x"}).status_code == 400
    assert (project / "run.toml").read_text(encoding="utf-8") == "[project\nname = 1"

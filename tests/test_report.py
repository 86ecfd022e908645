"""report.html and index.html: the scorecard's figures, escaping, charts, links, publish()."""

from __future__ import annotations

import base64
import re

import map_fixtures as F
import pandas as pd
import pytest

from gis import dashboard, report
from gis._assets import assets_dir


def test_value_and_gap_formatting():
    assert report.fmt_value(0.6556, "share") == "65.6 %"
    assert report.fmt_value(35_000.0, "m3") == "35,000 m³"
    assert report.fmt_value(None, "share") == "未评估 not evaluated"
    assert report.fmt_gap({"value": 0.25, "gap": 0.025, "gap_unit": "share"}) == "2.5 个百分点 pp"
    assert report.fmt_gap({"value": 0.25, "gap": 1.0, "gap_unit": "ha"}) == "1 ha"
    assert report.fmt_gap({"value": None, "gap": None, "gap_unit": "ha"}) == "–"


def test_dashboard_scorecard_rows_links_and_escaping(tmp_path):
    files = {"sites.csv": tmp_path / "sites.csv", "站点 <b>list</b>": "sites list.xlsx",
             "elsewhere": "/srv/data/x.gpkg"}
    path = dashboard.write_dashboard(tmp_path, scorecard=F.scorecard(), meta=F.meta(),
                                     files=files)
    page = path.read_text(encoding="utf-8")
    row = re.search(r"<tr id='row-forest-level1'>(.*?)</tr>", page, re.S).group(1)
    assert "森林覆盖率" in row and "forest coverage" in row and "一级管控区 level1" in row
    assert "25.0 %" in row and "≥ 27.5 %" in row and "未达标 not met" in row and "1 ha" in row
    stock = re.search(r"<tr id='row-stock-barrier'>(.*?)</tr>", page, re.S).group(1)
    assert "35,000 m³" in stock and "25,000 m³" in stock
    # the bar of the stock row: value 35 000 against target 60 000 on a 69 000 scale
    assert "width:50.7%" in stock and "left:87.0%" in stock
    rs = re.search(r"<tr id='row-renewable-substitution'>(.*?)</tr>", page, re.S).group(1)
    assert rs.count("未评估 not evaluated") == 2
    assert "href='sites.csv'" in page and "href='sites%20list.xlsx'" in page
    assert "href='file:///srv/data/x.gpkg'" in page
    assert "站点 &lt;b&gt;list&lt;/b&gt;" in page and "<b>list</b>" not in page
    assert "东丽区 &lt;demo&gt;" in page
    assert "synthetic demo data" in page


def test_dashboard_without_synthetic_banner(tmp_path):
    page = dashboard.write_dashboard(tmp_path, scorecard=F.scorecard(),
                                     meta=F.meta(synthetic=False), files={}).read_text()
    assert "synthetic demo data" not in page


def test_report_sections_charts_and_provenance(tmp_path):
    rollups = {"by street <x>": pd.DataFrame({"street": ["张贵庄街道"], "capacity_kwp": [1234.5]})}
    path = report.write_report(tmp_path, scorecard=F.scorecard(), pv=F.buildings_pv(40),
                               zones=F.zones(), rollups=rollups, meta=F.meta())
    page = path.read_text(encoding="utf-8")
    for e in F.scorecard()["targets"]:
        assert f"id='t-{e['id']}'" in page
    assert "3 / 6 项目标达标 targets met (1 未评估 not evaluated)" in page
    assert "synthetic demo data" in page and "@media print" in page
    assert "方法与假设 Methods and assumptions" in page and "数据来源 Provenance" in page
    assert "layers/demo/buildings.gpkg" in page
    assert "by street &lt;x&gt;" in page and "1,234.50" in page
    # charts: value-vs-target for the 6 evaluated targets, by-zone for 3 share targets,
    # PV by category and by street
    charts = re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', page)
    assert len(charts) == 6 + 3 + 2
    svg = base64.b64decode(charts[0]).decode("utf-8")
    assert svg.lstrip().startswith("<?xml") and "屏障南 south" not in svg  # value chart
    zone_svg = [base64.b64decode(c).decode("utf-8") for c in charts]
    assert any("屏障南 south" in s and "target 65 %" in s for s in zone_svg)
    assert F.XSS not in page and "<demo>" not in page


@pytest.mark.skipif(not (assets_dir() / "leaflet/dist/leaflet.js").is_file(),
                    reason="offline assets not installed")
def test_publish_writes_every_page(tmp_path):
    written = dashboard.publish(tmp_path, pv=F.buildings_pv(40), zones=F.zones(),
                                landuse=F.landuse(), candidates=F.candidates(),
                                streets=F.streets(40), scorecard=F.scorecard(), meta=F.meta(),
                                offline=True, files={"sites.csv": "sites.csv"})
    assert sorted(written) == ["ecology_map", "index", "pv_map", "report"]
    index = written["index"].read_text(encoding="utf-8")
    for name in ("pv_map.html", "ecology_map.html", "report.html", "sites.csv"):
        assert f"href='{name}'" in index
    eco = written["ecology_map"].read_text(encoding="utf-8")
    assert 'data-breaks="0.65,0.85"' in eco and 'data-breaks="0.275"' in eco
    assert not list(tmp_path.glob(".*part*"))
    sizes = dashboard.page_sizes(written)
    assert all(size < 10_000_000 for size in sizes.values())


def test_map_targets_from_scorecard():
    t = dashboard._map_targets(F.scorecard())
    assert t["bluegreen-barrier"] == 0.65 and t["forest-level1"] == 0.275
    sc = {"targets": [{"id": "bg", "measure": "blue-green space share", "unit": "share",
                       "target": 0.7}]}
    assert dashboard._map_targets(sc) == {"bluegreen-bg": 0.7}

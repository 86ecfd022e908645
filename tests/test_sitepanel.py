"""The site-list panel of the map pages: the table it carries gives, filter for filter, the
command line's CSV; the page budget; hostile names stay text on every page built from templates.

What the page's script does with the table is mirrored by :func:`choose` below (the script itself
runs in tests/test_browser.py).
"""

from __future__ import annotations

import base64
import gzip
import itertools
import json
import re

import map_fixtures as F
import numpy as np
import pandas as pd
import pytest

from gis import compare, dashboard, maps, report, sitepanel, sites


def split_rows(body: str) -> list[str]:
    """Rows of CSV text, split at line ends outside quotes (as site_panel.js does)."""
    rows, start, quoted = [], 0, False
    for i, ch in enumerate(body):
        if ch == '"':
            quoted = not quoted
        elif ch == "\n" and not quoted:
            rows.append(body[start:i])
            start = i + 1
    return rows + ([body[start:]] if start < len(body) else [])


def choose(table: dict, *, top: int | None = None, rank_by: str | None = None,
           selects: dict | None = None, minimum: tuple[str, float] | None = None,
           flags: tuple[str, ...] = ()) -> str:
    """The CSV text the panel downloads for these settings (site_panel.js, in Python)."""
    rows = split_rows(table["body"])
    cells = [r.split(",", 1)[1] for r in rows] if table["renumber"] else rows
    cols = table["columns"]
    order = table["orders"][rank_by or next(iter(table["orders"]))] or range(len(rows))
    chosen = []
    for i in order:
        ok = all(cols[c]["values"][cols[c]["codes"][i]] == v if cols[c]["codes"][i] >= 0
                 else False for c, v in (selects or {}).items())
        if minimum is not None:
            x = cols[minimum[0]][i]
            ok = ok and x is not None and x >= minimum[1]
        ok = ok and all(cols[f][i] == 1 for f in flags)
        if ok:
            chosen.append(i)
    chosen = chosen[:top] if top else chosen
    out = [table["header"]] + [f"{k},{cells[i]}" if table["renumber"] else cells[i]
                               for k, i in enumerate(chosen, start=1)]
    return "\n".join(out) + "\n"


def awkward_pv() -> pd.DataFrame:
    """Buildings with ties, gaps and text that needs CSV quoting."""
    pv = F.buildings_pv(40)
    pv["id"] = pv["id"].astype(object)
    pv.loc[5, "id"] = "B,5"  # a comma: quoted in CSV
    pv.loc[6, "name"] = 'say "hi"\nsecond line'  # quotes and a newline inside a field
    pv.loc[[10, 9, 8], "annual_kwh"] = 1_000_000.0  # a tie, broken by id
    pv.loc[12, "specific_yield_kwh_kwp"] = np.nan  # ranked last by specific yield
    pv.loc[13, "street"] = None
    pv["pv_kw"] = np.where(np.arange(40) % 3 == 0, 10.0, 0.0)
    pv.loc[14, "pv_kw"] = np.nan  # unknown installed PV counts as none
    pv["is_new"] = pd.array([k % 5 == 0 for k in range(40)], dtype="boolean")
    pv.loc[16, "is_new"] = pd.NA
    return pv


def test_site_table_gives_the_cli_list_for_every_filter():
    pv = awkward_pv()
    table = sitepanel.site_table(pv)
    assert table["header"] + "\n" + table["body"] == sites.csv_text(sites.select_sites(pv))
    setups = [  # street, category, min_kwp, top
        (None, None, None, None), ("张贵庄街道", "industrial", None, 3),
        (["万新街道"], None, 125.0, None), (None, "government", 5.0, 2)]
    checked = 0
    for (street, category, min_kwp, top), new_only, without_pv, rank_by in itertools.product(
            setups, [False, True], [False, True], sitepanel.RANK_LABELS):
        want = sites.csv_text(sites.select_sites(
            pv, street=street, category=category, min_kwp=min_kwp, new_only=new_only,
            without_pv=without_pv, top=top, rank_by=rank_by))
        selects = {k: (v if isinstance(v, str) else v[0]) for k, v in
                   (("street", street), ("category", category)) if v is not None}
        got = choose(table, top=top, rank_by=rank_by, selects=selects,
                     minimum=("capacity_kwp", min_kwp) if min_kwp is not None else None,
                     flags=tuple(f for f, on in (("is_new", new_only),
                                                 ("without_pv", without_pv)) if on))
        assert got == want, (street, category, min_kwp, new_only, without_pv, top, rank_by)
        checked += got.count("\n") - 1
    assert checked > 150  # rows compared, not only headers


def test_site_table_columns_by_hand():
    pv = awkward_pv()
    table = sitepanel.site_table(pv)
    rows = split_rows(table["body"])
    # 30 buildings with PV (every 4th has none); the quoted newline stays inside one row
    assert len(rows) == 30 and len(table["columns"]["capacity_kwp"]) == 30
    assert any('"say ""hi""\nsecond line"' in r for r in rows)
    assert table["orders"]["annual_kwh"] is None
    ranked = sites.select_sites(pv)
    ids = ranked["id"].tolist()
    # the tie of 1 GWh: B00008, B00009, B00010 in id order, first in the list
    assert ids[:3] == ["B00008", "B00009", "B00010"]
    by_yield = [ids[i] for i in table["orders"]["specific_yield_kwh_kwp"]]
    assert by_yield == sites.select_sites(pv, rank_by="specific_yield_kwh_kwp")["id"].tolist()
    assert by_yield[-1] == "B00012"  # no specific yield: last
    street = table["columns"]["street"]
    assert street["values"] == sorted(set(pv["street"].dropna()))
    assert street["codes"][ids.index("B00013")] == -1
    assert table["columns"]["without_pv"][ids.index("B00014")] == 1
    assert table["columns"]["is_new"][ids.index("B00016")] == 0


def test_afforestation_table_keeps_rows_and_orders_by_area():
    cands = F.candidates()
    cands["area_ha"] = [0.5, 2.0, 1.0]
    table = sitepanel.afforestation_table(cands)
    assert table["header"] + "\n" + table["body"] == sites.csv_text(cands)
    assert table["orders"] == {"rank": None, "area_ha": [1, 2, 0]}
    got = choose(table, rank_by="area_ha", minimum=("area_ha", 0.8))
    want = sites.csv_text(cands.iloc[[1, 2]])
    assert got == want  # rows kept whole: their rank and cumulative area stay


def page_table(page: str, key: str) -> dict:
    data = re.search(rf'\["{key}"\]="([A-Za-z0-9+/=]+)"', page).group(1)
    return json.loads(gzip.decompress(base64.b64decode(data)))


@pytest.fixture(scope="module")
def hostile_pages():
    pv = F.buildings_pv(12)
    pv["street"] = np.where(np.arange(12) < 6, F.XSS, "{{ 7 * 7 }}'\"街")
    meta = F.meta() | {"project": "<script>alert(1)</script> {{ 7 * 7 }} \"'"}
    pv_page = maps.render_map(maps.pv_map(pv, synthetic=True, offline=True, title=meta["project"]))
    eco_page = maps.render_map(maps.ecology_map(F.zones(), F.landuse(), F.candidates(),
                                                targets=F.TARGETS, offline=True,
                                                title=meta["project"]))
    return pv, meta, pv_page, eco_page


def test_panel_controls_escaped_and_table_exact(hostile_pages):
    pv, _, page, eco = hostile_pages
    # the options carry the streets as text and as values, escaped; the testids are there
    assert '<option value="&lt;img src=x onerror=alert(1)&gt;">&lt;img src=x onerror=alert(1)&gt;' \
        in page
    assert '<option value="{{ 7 * 7 }}&#39;&#34;街">' in page
    assert F.XSS not in page.split("gp-sites-pv")[1].split("<script>")[0]
    for testid in ("site-filter-street", "site-filter-category", "site-filter-min-kwp",
                   "site-filter-new-only", "site-filter-without-pv", "site-rank-by",
                   "site-top", "site-count", "site-download"):
        assert f'data-testid="{testid}"' in page, testid
    category = re.search(r'data-testid="site-filter-category".*?</select>', page, re.S).group(0)
    assert re.findall(r'<option value="([^"]*)"', category) == ["", "government", "public",
                                                                 "commercial", "industrial",
                                                                 "residential",
                                                                 "rural_residential", "other"]
    # new buildings: the layer has no is_new column, so that box is disabled
    assert re.search(r'data-testid="site-filter-new-only"[^>]*disabled', page)
    table = page_table(page, "pv")
    assert table["header"] + "\n" + table["body"] == sites.csv_text(sites.select_sites(pv))
    aff = page_table(eco, "afforestation")
    assert aff["header"] + "\n" + aff["body"] == sites.csv_text(F.candidates())
    assert 'data-testid="aff-filter-zone"' in eco and 'data-testid="aff-download"' in eco


def test_hostile_names_stay_text_on_every_page(hostile_pages, tmp_path):
    pv, meta, pv_page, eco_page = hostile_pages
    title = "&lt;script&gt;alert(1)&lt;/script&gt; {{ 7 * 7 }} &#34;&#39;"
    for page in (pv_page, eco_page):
        assert f"<h1>{title}</h1>" in page
        assert "<script>alert(1)" not in page and "49" not in page.split('id="gp-panel"')[1][:300]
    rollups = {F.XSS: pd.DataFrame({"street": [F.XSS], "capacity_kwp": [1.0]})}
    rep = report.write_report(tmp_path, scorecard=F.scorecard(), pv=pv, zones=F.zones(),
                              rollups=rollups, meta=meta).read_text(encoding="utf-8")
    dash = dashboard.write_dashboard(tmp_path, scorecard=F.scorecard(), meta=meta,
                                     files={F.XSS: "a'b.csv"}).read_text(encoding="utf-8")
    result = {"a": {"dir": F.XSS, "name": meta["project"]}, "b": {"dir": "b"},
              "summary": {"identical": False, F.XSS: F.XSS},
              "metrics": [{"name": F.XSS, "a": 1.0, "b": 2.0, "change": 1.0}],
              "parcels": {"changed": [{"id": F.XSS, "code_a": "0301", "code_b": "0404"}],
                          "added": [F.XSS], "removed": []},
              "missing": {"a": [], "b": [F.XSS]}}
    comp = compare.comparison_html(result)
    assert comp.count("&lt;img src=x onerror=alert(1)&gt;") >= 6
    for page in (rep, dash, comp):
        assert F.XSS not in page and "<script>alert(1)" not in page
    assert f"<h1>{title} — 碳达峰目标评估报告 Carbon-peak target report</h1>" in rep
    assert "&lt;img src=x onerror=alert(1)&gt;" in rep
    assert "href='a%27b.csv'" in dash and ">&lt;img src=x onerror=alert(1)&gt;</a>" in dash


def test_report_sections_are_a_list(tmp_path):
    extra = report.section("finance", "财务 <Finance>", intro=F.XSS,
                           tables=[("by street", report.Markup(
                               report.table_html(pd.DataFrame({"npv_cny": [1234.5]}))))])
    page = report.write_report(tmp_path, scorecard=F.scorecard(), pv=None, zones=None,
                               rollups=None, meta=F.meta(), sections=[extra]
                               ).read_text(encoding="utf-8")
    nav = re.search(r"<nav>(.*?)</nav>", page, re.S).group(1)
    anchors = re.findall(r"href='#([^']+)'", nav)
    assert anchors[-4:] == ["overview", "finance", "methods", "provenance"]
    assert "<h2 id='finance'>财务 &lt;Finance&gt;</h2>" in page
    assert "<p>&lt;img src=x onerror=alert(1)&gt;</p>" in page
    assert '<td class="num">1,234.50</td>' in page
    # in page order: overview, then the new block, then methods
    assert page.index("id='overview'") < page.index("id='finance'") < page.index("id='methods'")


def test_page_past_budget_moves_tables_beside_it(tmp_path, monkeypatch):
    pv = F.buildings_pv(20)
    whole = maps.save_map(maps.pv_map(pv, offline=True), tmp_path / "whole.html")
    whole = whole.read_text(encoding="utf-8")
    assert not list(tmp_path.glob("*.js"))
    monkeypatch.setattr(sitepanel, "PAGE_BUDGET_BYTES", len(whole.encode()) - 1)
    small = maps.save_map(maps.pv_map(pv, offline=True), tmp_path / "pv_map.html")
    small = small.read_text(encoding="utf-8")
    script = (tmp_path / "pv_map.pv.js").read_text(encoding="utf-8")
    assert script.startswith('(window.gpSiteTables=window.gpSiteTables||{})["pv"]="')
    # the same page, with the table's script moved out
    tag = '<script src="pv_map.pv.js"></script>'
    assert small.count(tag) == 1 and "gpSiteTables=" not in small
    block = f"<!--gp-site-data:pv--><script>{script}</script><!--/gp-site-data-->"
    assert small.replace(tag, block) == whole

"""Map pages built as text: GeoJSON layers, site tables read back from the exports."""

from __future__ import annotations

import json
import re

import map_fixtures as F
import numpy as np
import pandas as pd
import pytest
import shapely

from gis import maps, sitepanel, sites

HOSTILE = ['a"b', "c\\d", "e\nf\tg\x01h\x1f", "中文 &amp; <b>", "'q'", None, "", "/x/", "\x7f",
           "{{ 7 * 7 }}", "{% raw %}", "_0123456789abcdef0123456789abcdef"]


def mixed_geometries(n: int = 40) -> np.ndarray:
    """Points, lines, polygons with holes and multi-parts, a missing and an empty geometry,
    with coordinates that Arrow and Python write differently (whole, tiny, negative zero)."""
    rng = np.random.default_rng(7)
    xs = np.round(rng.uniform(-180, 180, n), 6)
    ys = np.round(rng.uniform(-90, 90, n), 6)
    xs[:4] = [0.0, -0.0, 117.0, 1.5e-05]
    ys[:4] = [-2e-06, 39.0, 0.0001, -45.0]
    pts = shapely.points(xs, ys)
    polys = shapely.transform(shapely.buffer(pts, 0.01, quad_segs=2), lambda c: np.round(c, 6))
    holes = shapely.difference(polys[:5], shapely.buffer(pts[:5], 0.003, quad_segs=1))
    multi = shapely.multipolygons([[p, q] for p, q in zip(polys[5:10], polys[10:15],
                                                          strict=True)])
    lines = shapely.linestrings(np.stack([xs[:10], ys[:10], xs[10:20], ys[10:20]], 1)
                                .reshape(10, 2, 2))
    mls = shapely.multilinestrings([[a, b] for a, b in zip(lines[:5], lines[5:], strict=True)])
    mpts = shapely.multipoints(np.stack([xs[:8], ys[:8]], 1).reshape(4, 2, 2))
    return np.concatenate([pts[:6], polys[15:25], holes, multi, lines, mls, mpts,
                           [None, shapely.Polygon()]])


def test_feature_text_equals_the_dict_written_as_the_page_writes_it():
    geoms = mixed_geometries()
    n = len(geoms)
    props = pd.DataFrame({
        "s": pd.array([HOSTILE[i % len(HOSTILE)] for i in range(n)], dtype="string"),
        "o": [HOSTILE[(i + 5) % len(HOSTILE)] for i in range(n)],
        "i": np.arange(n, dtype=np.int64),
        "I": pd.array([None if i % 7 == 0 else i for i in range(n)], dtype="Int64"),
        "b": np.arange(n) % 2 == 0,
        "f": np.where(np.arange(n) % 9 == 0, np.nan, np.linspace(-1e12, 3e-7, n)),
    })
    for frame in (props, props[["s"]], props.iloc[:, :0], props.iloc[:0]):
        g = geoms[:len(frame)] if len(frame) < n else geoms
        text = maps._feature_text(frame, g)
        assert text == json.dumps(maps._feature_collection(frame, g), **maps._PAGE_JSON)
    # the two geometries without a shape are dropped, as by the dict path
    assert len(json.loads(maps._feature_text(props, geoms))["features"]) == n - 2


def test_feature_text_leaves_z_and_collections_to_the_dict_path():
    z = np.array([shapely.Point(1, 2, 3)], dtype=object)
    coll = np.array([shapely.GeometryCollection([shapely.Point(1, 2)])], dtype=object)
    one = pd.DataFrame({"a": ["x"]})
    assert maps._feature_text(one, z) is None and maps._feature_text(one, coll) is None
    assert isinstance(maps._features(one, z), dict)
    assert maps._feature_text(pd.DataFrame({"a": [np.inf]}), np.array([shapely.Point(1, 2)]))\
        is None


def test_layer_text_reaches_the_page_verbatim_and_the_notebook_view():
    pv = F.buildings_pv(8)
    pv["name"] = pd.array(["{{ 7 * 7 }}", "{# c #}", "{% raw %}", "a\\b", 'q"', "\n", "中",
                           "_0123456789abcdef0123456789abcdef"], dtype="string")
    m = maps.pv_map(pv, offline=True, site_panel=False)
    page = maps.render_map(m)
    blocks = re.findall(r'_add\((\{"features".*?\})\);', page)
    names = {f["properties"].get("n") for b in blocks for f in json.loads(b)["features"]}
    # template syntax stays text, and a value shaped like an element id is not renumbered
    assert {"{{ 7 * 7 }}", "{# c #}", "{% raw %}", "a\\b", "q&quot;", "\n", "中",
            "_0123456789abcdef0123456789abcdef"} <= names  # quotes HTML-escaped for tooltips
    assert "\x02" not in page and maps.page_features(page) == 8 + 6  # roofs + top sites
    # folium's own rendering (a notebook) still carries every feature, and .data parses
    plain = m.get_root().render()
    assert "{{ 7 * 7 }}" in plain and plain.count('"type": "Feature"') == 8 + 6
    layers = [c for c in m._children.values() if isinstance(c, maps._GeoJsonText)]
    assert sum(len(c.data["features"]) for c in layers) == 8 + 6


def test_site_table_reads_the_written_csv_only_when_it_is_that_list(tmp_path):
    pv = F.buildings_pv(30)
    ranked = sites.select_sites(pv)
    want = sitepanel.site_table(pv)
    good = tmp_path / "sites.csv"
    sites.export(ranked, good, kind="sites")
    assert sitepanel.site_table(pv, ranked=ranked, csv_file=good) == want
    # a file of other rows (a stale run) is not taken: the rows are formatted again
    stale = tmp_path / "stale.csv"
    sites.export(ranked.iloc[:-1], stale, kind="sites")
    assert sitepanel.list_text(ranked, stale) == sites.csv_text(ranked)
    edited = tmp_path / "edited.csv"
    edited.write_bytes(good.read_bytes().replace(b"B0", b"X0", 1))
    assert sitepanel.list_text(ranked, edited) == sites.csv_text(ranked)
    # a ranked list of other buildings is not taken either
    other = sitepanel.site_table(pv, ranked=ranked.iloc[:-1], csv_file=good)
    assert other == want


@pytest.mark.parametrize("body", ['1,"x\r\ny\t""q""\\"\n', "", "\x00\x1f\x7f中\n"])
def test_table_json_equals_json_dumps(body):
    table = {"header": 'rank,"n"', "body": body, "renumber": True, "orders": {"a": [1, 0]},
             "columns": {"street": {"values": ["中"], "codes": [0, -1]}}}
    assert sitepanel._table_json(table) == json.dumps(
        table, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

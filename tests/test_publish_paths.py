"""The shared paths of the publishing end: WGS84 coordinates from one transformer in every
thread, map templates compiled once, the report's SVG charts."""

from __future__ import annotations

import base64
import contextlib
import re
import threading

import geopandas as gpd
import jinja2
import map_fixtures as F
import numpy as np
import pytest
import shapely

from gis import _charts, io, maps, report, sites


def _polygons() -> np.ndarray:
    rng = np.random.default_rng(7)
    x = rng.uniform(500_000, 560_000, 300)
    y = rng.uniform(4_320_000, 4_350_000, 300)
    boxes = shapely.box(x, y, x + rng.uniform(5, 80, 300), y + rng.uniform(5, 60, 300))
    holed = shapely.difference(boxes[:10], shapely.buffer(shapely.centroid(boxes[:10]), 2.0))
    out = np.concatenate([boxes, holed, [None, shapely.Polygon()]]).astype(object)
    return out


def test_to_lonlat_equals_geopandas_bit_for_bit():
    geoms = _polygons()
    expected = gpd.GeoSeries(geoms, crs=4548).to_crs(4326).values
    got = io.to_lonlat(geoms, "EPSG:4548")
    assert len(got) == len(geoms)
    assert got[-2] is None and got[-1].is_empty
    assert np.array_equal(shapely.get_coordinates(got), shapely.get_coordinates(expected))
    assert shapely.equals_exact(got[:-2], np.asarray(expected)[:-2], tolerance=0).all()
    rounded = io.to_lonlat(geoms, 4548, decimals=6)
    assert np.array_equal(shapely.get_coordinates(rounded),
                          np.round(shapely.get_coordinates(expected), 6))


def test_to_lonlat_in_another_thread_and_for_wgs84_input():
    geoms = _polygons()[:50]
    here = shapely.get_coordinates(io.to_lonlat(geoms, 4548))
    there = {}
    worker = threading.Thread(target=lambda: there.setdefault(
        "xy", shapely.get_coordinates(io.to_lonlat(geoms, 4548))))
    worker.start()
    worker.join()
    assert np.array_equal(here, there["xy"])
    lonlat = np.array([shapely.Point(117.3, 39.1)], dtype=object)
    assert shapely.equals_exact(io.to_lonlat(lonlat, 4326), lonlat, tolerance=0).all()


def test_lonlat_transformer_is_a_pipeline_with_the_same_numbers():
    t = io.lonlat_transformer(4548)
    assert t is io.lonlat_transformer("EPSG:4548")  # made once
    assert t.definition.startswith("proj=pipeline")
    x, y = np.array([534_000.0, 501_234.5]), np.array([4_331_000.0, 4_339_876.25])
    assert np.array_equal(np.array(t.transform(x, y)),
                          np.array(io.transformer(4548, 4326).transform(x, y)))


def test_site_table_lonlat_is_the_centroid_in_wgs84():
    pv = F.buildings_pv(12)
    table = sites._table_with_lonlat(pv)
    centroids = pv.geometry.centroid.to_crs(4326)
    assert np.array_equal(table["lon"].to_numpy(), np.round(centroids.x.to_numpy(), 7))
    assert np.array_equal(table["lat"].to_numpy(), np.round(centroids.y.to_numpy(), 7))
    with pytest.raises(ValueError, match="naive"):
        sites._table_with_lonlat(pv.set_crs(None, allow_override=True))


@pytest.mark.parametrize("text", ["", "a\n", "a\n\n", "<b>x</b>\n  var a = {x: 1};\n",
                                  "中文 } { % #\n"])
def test_plain_text_renders_as_jinja_would(text):
    assert maps._PlainText(text).render(this=None, kwargs={}) == jinja2.Template(text).render()


def test_pages_equal_with_and_without_compiling_once(monkeypatch):
    pv = F.buildings_pv(30)
    pv.loc[pv.index[0], "name"] = "{{ 7 * 7 }} {% raw %}"  # a name is text, never a template

    def page() -> str:
        return maps.render_map(maps.pv_map(pv, streets=F.streets(30), offline=True,
                                           synthetic=True))

    fast = page()
    monkeypatch.setattr(maps, "_templates_once", contextlib.nullcontext)
    assert page() == fast
    assert '"n":"{{ 7 * 7 }} {% raw %}"' in fast


def _svg(uri: str) -> str:
    return base64.b64decode(uri.removeprefix("data:image/svg+xml;base64,")).decode("utf-8")


def _bar_widths(svg: str) -> list[float]:
    return [float(w) for w in re.findall(r'<rect x="[\d.]+" y="[\d.]+" width="([\d.]+)" '
                                         r'height="[\d.]+" fill="#(?!fff)', svg)]


def test_value_chart_bars_are_the_value_and_the_target():
    entry = {"id": "bluegreen-barrier", "value": 0.6, "target": 0.65, "unit": "share",
             "met": False}
    svg = _svg(report.chart_value_vs_target(entry))
    assert svg.startswith("<?xml") and svg.rstrip().endswith("</svg>")
    value, target = _bar_widths(svg)
    assert value / target == pytest.approx(0.6 / 0.65, rel=1e-3)
    assert 'fill="#c0392b"' in svg and 'fill="#9e9e9e"' in svg  # not met: red
    assert "value 现状" in svg and "target 目标" in svg and ">%</text>" in svg
    # the dashed target line ends where the target bar ends
    line_x = float(re.search(r'<line x1="([\d.]+)"[^>]*stroke-dasharray', svg).group(1))
    left = float(re.search(r'<rect x="([\d.]+)" y="[\d.]+" width="[\d.]+" height="[\d.]+" '
                           r'fill="#9e9e9e"', svg).group(1))
    assert line_x == pytest.approx(left + target, abs=0.02)


def test_zone_chart_escapes_names_and_keys_bars_to_the_target():
    import pandas as pd

    zones = pd.DataFrame({"zone": ["<script>", "北区 north"], "level": ["level1"] * 2,
                          "bluegreen_share": [0.9, 0.5]})
    entry = {"id": "bluegreen-level1", "where": "level1", "target": 0.85}
    svg = _svg(report.chart_by_zone(zones, entry, "bluegreen_share"))
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "target 85 %" in svg and "北区 north" in svg
    first, second = _bar_widths(svg)
    assert first / second == pytest.approx(0.9 / 0.5, rel=1e-3)
    fills = re.findall(r'height="[\d.]+" fill="(#1a7a3a|#c0392b)"', svg)
    assert fills == ["#1a7a3a", "#c0392b"]  # ≥ target green, below red


def test_nice_ticks_and_labels():
    assert _charts.nice_ticks(0, 8.4) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    assert _charts.nice_ticks(0, 68.25) == [0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0]
    assert _charts.nice_ticks(0, 0) == [0]
    ticks = _charts.nice_ticks(0, 1.2)
    assert [_charts.tick_label(t, ticks) for t in ticks][:3] == ["0.0", "0.2", "0.4"]
    big = _charts.nice_ticks(0, 61_000)
    assert _charts.tick_label(big[1], big) == "10,000"

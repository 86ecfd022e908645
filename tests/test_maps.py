"""Map pages rendered to strings: layers, legends keyed to the targets, escaping, offline pages."""

from __future__ import annotations

import html.parser
import json
import re

import map_fixtures as F
import numpy as np
import pytest

from gis import maps
from gis._assets import assets_dir, inline
from gis._errors import InputError

needs_assets = pytest.mark.skipif(not (assets_dir() / "leaflet/dist/leaflet.js").is_file(),
                                  reason="offline assets not installed (scripts/install_assets.sh)")


class _Refs(html.parser.HTMLParser):
    """Every src/href attribute of real tags (script bodies are not parsed as tags)."""

    def __init__(self):
        super().__init__()
        self.refs: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        self.refs += [(tag, v) for k, v in attrs if k in ("src", "href") and v]


def refs(page: str) -> list[tuple[str, str]]:
    p = _Refs()
    p.feed(page)
    return p.refs


def geojson_blocks(page: str) -> list[dict]:
    """The FeatureCollections folium embeds (``<name>_add({...});``)."""
    out = []
    for m in re.finditer(r"_add\((\{.*?\})\);\n", page):
        out.append(json.loads(m.group(1)))
    return out


def overlay_names(m) -> list[str]:
    return [c.layer_name for c in m._children.values() if getattr(c, "control", False)
            and getattr(c, "overlay", False)]


@pytest.fixture(scope="module")
def pv_page():
    m = maps.pv_map(F.buildings_pv(40), streets=F.streets(40), top_n=5, synthetic=True)
    return m, maps.render_map(m)


def test_pv_layers_and_controls(pv_page):
    m, page = pv_page
    names = overlay_names(m)
    # capacities: 5, 65, 125, ..., 365 kWp; classes < 20, 20–100, 100–500 (no ≥ 500), plus no-PV
    assert names == ["建筑 buildings: < 20 kWp", "建筑 buildings: 20 – 100 kWp",
                     "建筑 buildings: 100 – 500 kWp", "建筑 buildings: 无光伏 no PV",
                     "前 5 个站点 top 5 sites", "街道潜力 potential by street"]
    for js in ("L.control.layers", "L.control.fullscreen", "new L.Control.Measure",
               "L.Control.MiniMap", "L.Control.Search", "tile.openstreetmap.org"):
        assert js in page, js
    assert "L.control.scale" in page
    blocks = geojson_blocks(page)
    # 40 buildings drawn once each (30 with PV, 10 without), 5 top sites, 4 streets
    assert sum(len(b["features"]) for b in blocks) == 40 + 5 + 4
    # One static style per class layer, no per-feature style switch.
    assert "switch(" not in page


def test_pv_tooltip_values_units_and_street_sums(pv_page):
    _, page = pv_page
    feats = [f for b in geojson_blocks(page) for f in b["features"]]
    b1 = next(f["properties"] for f in feats if f["properties"].get("i") == "B00001")
    # building 1: capacity 5 + 1·60 = 65 kWp, yield 1190 kWh/kWp → 77 350 kWh = 77.4 MWh
    assert b1["k"] == "65.0 kWp" and b1["e"] == "77.4 MWh/yr" and b1["y"] == "1190 kWh/kWp"
    assert "装机容量 capacity" in page and "年发电量 annual yield" in page
    nopv = next(f["properties"] for f in feats if f["properties"].get("i") == "B00003")
    assert nopv["r"] == "roof too small" and "k" not in nopv
    # Streets: 10 buildings each (rows of 20 split in halves); 张贵庄街道 = buildings 0–9 and
    # 20–29 … only the first half-row of each row goes to street (i // 10) % 4.
    st = {f["properties"]["n"]: f["properties"] for f in feats if "p" in f["properties"]}
    pv = F.buildings_pv(40)
    expect = pv[pv["street"] == "张贵庄街道"]["capacity_kwp"].sum() / 1000
    assert st["张贵庄街道"]["k"] == f"{round(expect, 2)} MWp"
    assert st["张贵庄街道"]["b"] == "10 栋 buildings"


def test_pv_coordinates_rounded_and_wgs84(pv_page):
    _, page = pv_page
    feats = [f for b in geojson_blocks(page) for f in b["features"]]
    xy = np.array(feats[0]["geometry"]["coordinates"][0])
    assert np.allclose(xy, np.round(xy, 6))
    assert 117.3 < xy[:, 0].min() < 117.5 and 39.0 < xy[:, 1].min() < 39.2


def test_attribute_text_is_escaped(pv_page):
    _, page = pv_page
    assert F.XSS not in page
    assert "<img src=x" not in page
    feats = [f for b in geojson_blocks(page) for f in b["features"]]
    names = {f["properties"].get("n") for f in feats}
    assert "&lt;img src=x onerror=alert(1)&gt;" in names


def test_search_indexes_id_and_name(pv_page):
    _, page = pv_page
    feats = [f for b in geojson_blocks(page) for f in b["features"]]
    q = {f["properties"].get("q") for f in feats}
    assert "B00005 建筑 5" in q
    assert 'propertyName: "q"' in page


def test_pv_aggregates_above_threshold():
    pv = F.buildings_pv(40, xss=False)
    m = maps.pv_map(pv, streets=None, top_n=0, max_buildings=10, grid_m=400.0)
    page = maps.render_map(m)
    blocks = geojson_blocks(page)
    drawn = [f for b in blocks for f in b["features"] if "i" in f["properties"]]
    assert len(drawn) == 10
    # the 10 drawn are the largest annual yields
    top = pv.nlargest(10, "annual_kwh")["id"].tolist()
    assert sorted(f["properties"]["i"] for f in drawn) == sorted(top)
    cells = [f["properties"] for b in blocks for f in b["features"] if "b" in f["properties"]]
    # 30 buildings on a 20 × 2 grid of 40 m pitch: x spans 0..800 m → 3 cells of 400 m across,
    # y spans 0..50 m → 1 row; all 30 summed
    assert sum(int(c["b"].split()[0]) for c in cells) == 30
    assert "其余 30 栋" in page and "no streets layer" in page


def test_pv_map_offline_has_no_tiles_and_says_so():
    m = maps.pv_map(F.buildings_pv(8), offline=True)
    page = m.get_root().render()
    assert "tileLayer" not in page and "MiniMap" not in page
    assert "offline page: no basemap and no minimap" in page


def test_tianditu_when_key_set(monkeypatch):
    monkeypatch.setenv("TIANDITU_KEY", "abc123")
    page = maps.pv_map(F.buildings_pv(8)).get_root().render()
    assert "tianditu.gov.cn/vec_w/wmts" in page and "tianditu.gov.cn/cva_w/wmts" in page
    assert "tk=abc123" in page
    assert "autonavi" not in page.lower() and "amap" not in page.lower()


def test_ecology_layers_and_legend_breaks_equal_targets():
    m = maps.ecology_map(F.zones(), F.landuse(), F.candidates(), targets=F.TARGETS)
    page = maps.render_map(m)
    names = overlay_names(m)
    for label in ("水域 blue", "林地 forest", "绿地 green", "耕地 cropland", "建设用地 construction"):
        assert any(label in n for n in names), label
    assert "分区 zones: 蓝绿空间占比 blue-green share" in names
    assert "造林候选地块 afforestation candidates" in names
    bg = re.search(r'id="legend-bluegreen" data-breaks="([^"]*)"', page).group(1)
    fo = re.search(r'id="legend-forest" data-breaks="([^"]*)"', page).group(1)
    assert [float(v) for v in bg.split(",")] == [0.65, 0.85]
    assert [float(v) for v in fo.split(",")] == [0.275]
    assert "&lt; 65 %" in page and "65 % – 85 %" in page and "≥ 85 %" in page
    assert "≥ 27.5 %" in page
    # zone features only (the per-level summary rows are not drawn twice): 3 zones in each of
    # the two zone layers, 12 parcels, 3 candidates
    feats = [f for b in geojson_blocks(page) for f in b["features"]]
    zone_feats = [f for f in feats if "z" in f["properties"]]
    assert len(zone_feats) == 6
    assert {f["properties"]["z"] for f in zone_feats} == {"屏障北 north", "屏障南 south",
                                                          "一级管控区A"}
    north = next(f["properties"] for f in zone_feats if f["properties"]["z"] == "屏障北 north")
    assert north["b"] == "70.0 %" and north["f"] == "30.0 %" and north["a"] == "100.0 ha"
    assert len([f for f in feats if "rk" in f["properties"]]) == 3
    assert len([f for f in feats if "c" in f["properties"] and "u" not in f["properties"]
                and "rk" not in f["properties"]]) == 12
    assert F.XSS not in page


def test_zone_class_colours_follow_targets():
    m = maps.ecology_map(F.zones(), F.landuse(), None, targets=F.TARGETS)
    page = m.get_root().render()
    # class layers inside the zone groups: name → zone names drawn in it
    classes = {}
    for fg in m._children.values():
        for c in getattr(fg, "_children", {}).values():
            if isinstance(c, maps.folium.GeoJson) and c.layer_name.startswith(("蓝绿", "森林")):
                classes[c.layer_name] = sorted(f["properties"]["z"] for f in c.data["features"])
    # blue-green: south 0.60 < 0.65 (red), north 0.70 in [0.65, 0.85), level-1 zone 0.90 ≥ 0.85
    assert classes["蓝绿空间占比 blue-green share < 65 %"] == ["屏障南 south"]
    assert classes["蓝绿空间占比 blue-green share 65 % – 85 %"] == ["屏障北 north"]
    assert classes["蓝绿空间占比 blue-green share ≥ 85 %"] == ["一级管控区A"]
    # forest coverage: only north (0.30) reaches 0.275
    assert classes["森林覆盖率 forest coverage ≥ 27.5 %"] == ["屏障北 north"]
    assert classes["森林覆盖率 forest coverage < 27.5 %"] == ["一级管控区A", "屏障南 south"]
    assert "no afforestation candidates" in page


def test_unknown_colour_measure_is_an_input_error():
    with pytest.raises(InputError, match="unknown colour measure"):
        maps.pv_map(F.buildings_pv(4), color_by="height")


@needs_assets
def test_offline_page_links_nothing_on_the_network(tmp_path):
    m = maps.pv_map(F.buildings_pv(20), streets=F.streets(20), top_n=3, offline=True)
    path = maps.save_map(m, tmp_path / "pv.html", offline=True)
    page = path.read_text(encoding="utf-8")
    assert not [r for r in refs(page) if r[1].startswith(("http:", "https:", "//"))]
    assert "<script src" not in page and "stylesheet" not in page
    assert "L.Control.Search" in page and "L.Control.MiniMap" not in page
    assert "Leaflet 1.9.3" in page  # the inlined library itself


def test_offline_save_refuses_a_map_with_tiles(tmp_path):
    m = maps.pv_map(F.buildings_pv(4))
    with pytest.raises(ValueError, match="offline=True"):
        maps.save_map(m, tmp_path / "x.html", offline=True)
    assert not (tmp_path / "x.html").exists()


def test_inline_without_assets_names_the_install_step(tmp_path):
    page = '<script src="https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js"></script>'
    with pytest.raises(InputError, match="install_assets.sh"):
        inline(page, root=tmp_path / "nothing")
    (tmp_path / "nm").mkdir()
    with pytest.raises(InputError, match="offline assets not installed"):
        inline(page, root=tmp_path / "nm")


def test_inline_replaces_links_and_css_images(tmp_path):
    root = tmp_path / "node_modules"
    (root / "leaflet/dist/images").mkdir(parents=True)
    (root / "leaflet/dist/leaflet.js").write_text("var L = {}; // </script> inside")
    (root / "leaflet/dist/leaflet.css").write_text(".a{background:url(images/x.png)}")
    (root / "leaflet/dist/images/x.png").write_bytes(b"\x89PNG")
    page = ('<script src="https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js"></script>'
            '<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.css"/>')
    out = inline(page, root=root)
    assert out.startswith("<script>var L = {}; // <\\/script> inside</script>")
    assert 'url("data:image/png;base64,iVBORw==")' in out
    assert "https:" not in out


@pytest.mark.slow
def test_page_size_of_a_65000_building_district(tmp_path):
    pv = F.buildings_pv(65_000, per_row=260, xss=False)
    m = maps.pv_map(pv, streets=F.streets(65_000, per_row=260), top_n=200, offline=True)
    page = maps.render_map(m)
    assert len(page.encode("utf-8")) < 10_000_000
    drawn = sum(1 for f in (x for b in geojson_blocks(page) for x in b["features"])
                if "i" in f["properties"] and "rk" not in f["properties"])
    assert drawn == 15_000
    assert "其余 50,000 栋" in page


# ---------------------------------------------------------------------------------------------
# Land use above the page's parcel budget


def _squares(groups_by_cell: list[list[str]], *, size: float = 100.0, x0: float = 534_800.0,
             y0: float = 4_329_000.0):
    """Parcels ``size`` m square; ``groups_by_cell[row][col]``, row 0 at the bottom.

    x0 and y0 are multiples of 200 m, so that 200 m cells hold 2 × 2 parcels.
    """
    g = np.array(groups_by_cell)
    rows, cols = np.indices(g.shape)
    x = x0 + cols.ravel() * size
    y = y0 + rows.ravel() * size
    return F.gpd.GeoDataFrame({
        "id": [f"Q{k:03d}" for k in range(g.size)], "code": "0101", "name_zh": "水田",
        "group": g.ravel(), "area_ha": size * size / 1e4,
    }, geometry=F.shapely.box(x, y, x + size, y + size), crs=F.CRS)


def landuse_features(page: str) -> list[dict]:
    return [f["properties"] for b in geojson_blocks(page) for f in b["features"]
            if "z" not in f["properties"] and "rk" not in f["properties"]]


def test_landuse_within_budget_is_drawn_parcel_by_parcel():
    page = maps.render_map(maps.ecology_map(F.zones(), F.landuse(), None, targets=F.TARGETS,
                                            max_parcels=12))
    feats = landuse_features(page)
    assert len(feats) == 12 and sorted(f["i"] for f in feats) == [f"P{k:03d}" for k in range(12)]
    assert "dissolved" not in page and "generalised" not in page


def test_landuse_above_budget_dissolved_by_group_within_cells():
    # 4 × 4 parcels of 1 ha: the left two columns forest, the right two blue; 200 m cells hold
    # 2 × 2 parcels of one group → 4 shapes of 4 parcels and 4 ha each, 2 per group
    lu = _squares([["forest", "forest", "blue", "blue"]] * 4)
    m = maps.ecology_map(F.zones(), lu, None, targets=F.TARGETS, max_parcels=10,
                         landuse_grid_m=200.0)
    page = maps.render_map(m)
    feats = landuse_features(page)
    assert sorted((f["n"], f["p"], f["a"]) for f in feats) == (
        [("林地 forest", "4", "4.0 ha")] * 2 + [("水域 blue (water, wetland)", "4", "4.0 ha")] * 2)
    names = overlay_names_deep(m)
    assert "用地 land use: 林地 forest" in names and "用地 land use: 水域 blue (water, wetland)" in names
    assert "16 parcels (more than the page&#39;s 10) dissolved by group within 200 m cells" in page
    # each shape is one 200 m square: 5 coordinates
    rings = [f["geometry"]["coordinates"][0] for b in geojson_blocks(page) for f in b["features"]
             if "p" in f["properties"]]
    assert [len(r) for r in rings] == [5, 5, 5, 5]


def test_landuse_too_mixed_to_dissolve_is_generalised_to_a_grid():
    # each 200 m cell: one blue parcel (lower left) and three forest parcels.  Dissolved, that
    # is 4 squares + 4 L-shapes = 4 × (5 + 7) = 48 vertices > 10 × 4 (budget of 4 parcels), so
    # the land use is generalised: 16 ha / 4 parcels = 4 ha per cell → 200 m cells, all four
    # forest-dominated (3 ha vs 1 ha), merged into one 400 m × 400 m shape holding 12 ha forest
    f, b = "forest", "blue"
    lu = _squares([[b, f, b, f], [f, f, f, f], [b, f, b, f], [f, f, f, f]])
    page = maps.render_map(maps.ecology_map(F.zones(), lu, None, targets=F.TARGETS,
                                            max_parcels=4, landuse_grid_m=200.0))
    feats = landuse_features(page)
    assert [(x["n"], x["x"], x["s"]) for x in feats] == [("林地 forest", "4 × 200 m", "12.0 ha")]
    assert "generalised to a 200 m grid" in page
    ring = np.array(next(f["geometry"]["coordinates"][0] for bl in geojson_blocks(page)
                         for f in bl["features"] if "x" in f["properties"]))
    assert len(ring) == 5  # one square, the inner cell edges merged away


def overlay_names_deep(m) -> list[str]:
    return [c.layer_name for c in m._children.values() if getattr(c, "control", False)]


def test_landuse_of_250000_parcels_stays_under_10_mb():
    # a 10 km × 10 km grid of 20 m parcels, groups at random: the worst case for dissolving
    n, size = 500, 20.0
    i = np.arange(n * n)
    x = F.X0 + (i % n) * size
    y = F.Y0 + (i // n) * size
    groups = np.array(list(maps.LANDUSE_GROUPS))
    lu = F.gpd.GeoDataFrame({
        "id": F.pd.array(np.char.add("P", i.astype(str)), dtype="string"), "code": "0101",
        "name_zh": "水田", "group": groups[np.random.default_rng(0).integers(0, 6, len(i))],
        "area_ha": size * size / 1e4,
    }, geometry=F.shapely.box(x, y, x + size, y + size), crs=F.CRS)
    m = maps.ecology_map(F.zones(), lu, F.candidates(), targets=F.TARGETS, offline=True)
    page = maps.render_map(m)
    assert len(page.encode("utf-8")) <= 10_000_000
    # 10⁸ m² / 25 000 parcels = 4 000 m² a cell → 100 m cells, merged by 10 × 10 blocks
    assert "250,000 parcels" in page and "generalised to a 100 m grid" in page
    feats = landuse_features(page)
    assert sum(int(f["x"].split()[0]) for f in feats) == 100 * 100
    assert {f["n"].split()[0] for f in feats} == {"水域", "林地", "绿地", "耕地", "建设用地", "其他"}
    # zones and candidates exact
    all_feats = [f["properties"] for b in geojson_blocks(page) for f in b["features"]]
    assert len([p for p in all_feats if "rk" in p]) == 3
    assert len([p for p in all_feats if "z" in p]) == 6

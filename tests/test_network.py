"""The ecological network: patches, FRAGSTATS metrics, PC/ECA/dPC, corridors, candidates.

The constructed barrier (800 ha): two 100 ha forests A and B separated by a 50 m wide grass
parcel G (5 ha), a 0.8 ha forest (below the 1 ha minimum), two larger isolated grass parcels
(20 ha and 12 ha) far away, and cropland.  Every figure is known by hand.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gis import network
from gis.ecology import accounting_units, afforestation_candidates
from gis.landuse import classify_layer

P50 = 2 ** (-50 / 500)  # dispersal probability across the 50 m gap (p = 0.5 at 500 m)
NUM = 100 * 100 * 2 + 2 * 100 * 100 * P50  # ΣΣ a_i a_j p*_ij [ha²]


def barrier() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    zones = gpd.GeoDataFrame({"name": ["屏障"], "level": ["barrier"]},
                             geometry=[shapely.box(0, 0, 4000, 2000)], crs="EPSG:4548")
    parcels = gpd.GeoDataFrame({
        "id": ["A", "G", "B", "small", "iso20", "iso12", "crop"],
        "code": ["0301", "0404", "0301", "0301", "0404", "0404", "0101"]},
        geometry=[shapely.box(100, 100, 1100, 1100), shapely.box(1100, 100, 1150, 1100),
                  shapely.box(1150, 100, 2150, 1100), shapely.box(2500, 100, 2580, 200),
                  shapely.box(3400, 1400, 3900, 1800), shapely.box(3600, 100, 3900, 500),
                  shapely.box(100, 1100, 2150, 1900)], crs="EPSG:4548")
    return zones, parcels


@pytest.fixture(scope="module")
def result():
    zones, parcels = barrier()
    lc = classify_layer(parcels, "gbt21010")
    cands = afforestation_candidates(lc, zones, level="barrier", gap_ha=10, target_id="t")
    return network.barrier_network(lc, zones, candidates=cands, gaps_ha={"t": 10.0})


def test_patches_and_landscape_metrics_by_hand(result):
    m = result.metrics.set_index("kind")
    assert list(result.metrics["zone"]) == ["屏障", "barrier"]  # as in zones.csv
    for kind in ("zone", "level"):
        row = m.loc[kind]
        assert row["n_patches"] == 2  # the 0.8 ha forest is below the minimum
        assert row["area_ha"] == pytest.approx(800)
        assert row["largest_patch_index"] == pytest.approx(100 / 800 * 100)
        assert row["mean_patch_area_ha"] == pytest.approx(100)
        assert row["edge_density_m_ha"] == pytest.approx(2 * 4000 / 800)
        assert row["pc"] == pytest.approx(NUM / 800 ** 2, rel=1e-12)
        assert row["eca_ha"] == pytest.approx(math.sqrt(NUM), rel=1e-12)
    p = result.patches
    assert p["patch_id"].tolist() == [1, 2]
    assert p["area_ha"].tolist() == pytest.approx([100, 100])
    assert set(p["classes"]) == {"forest"}
    # removing either patch leaves 100²: dPC = 100 (NUM − 100²) ÷ NUM
    assert p["dpc"].tolist() == pytest.approx([100 * (NUM - 1e4) / NUM] * 2)


def test_joining_parcel_ranks_first_by_connectivity_and_bridges(result):
    c = result.candidates.set_index("id")
    # the suitability order puts the larger isolated parcels first ...
    assert c.loc["iso20", "rank"] < c.loc["G", "rank"]
    # ... the connectivity order the joining one: A, G and B become one 205 ha patch
    assert c.loc["G", "rank_connectivity"] == 1
    assert c.loc["G", "connectivity_gain"] == pytest.approx(100 * (205 ** 2 - NUM) / NUM)
    assert bool(c.loc["G", "bridges"]) and not c.loc[["iso20", "iso12"], "bridges"].any()
    assert (c.loc[["iso20", "iso12"], "connectivity_gain"] < c.loc["G", "connectivity_gain"]).all()
    # the isolated 12 ha parcel, 1 450 m from B edge to edge, reaches A best through B
    d_b = math.hypot(3600 - 2150, 0.0)
    p_b = 2 ** (-d_b / 500)
    iso12 = 12 ** 2 + 2 * 12 * (100 * p_b + 100 * p_b * P50)
    assert c.loc["iso12", "connectivity_gain"] == pytest.approx(100 * iso12 / NUM)
    top = result.top[0]
    assert top["top_ids"][0] == "G" and top["bridges"] == 1
    assert top["combined_gain"] > top["top_gain_each"][0]


def test_rank_by_connectivity_reorders_the_list():
    zones, parcels = barrier()
    lc = classify_layer(parcels, "gbt21010")
    cands = afforestation_candidates(lc, zones, level="barrier", gap_ha=4.0, target_id="t")
    res = network.barrier_network(lc, zones, candidates=cands, gaps_ha={"t": 4.0},
                                  options=network.network_options({"rank_by": "connectivity"}))
    out = res.candidates
    assert out["id"].tolist()[0] == "G" and out["rank"].tolist() == [1, 2, 3]
    assert out["cumulative_ha"].tolist() == pytest.approx([5, 25, 37])
    assert out["closes_gap"].tolist() == [True, False, False]


def test_corridor_across_the_gap(result):
    c = result.corridors
    assert len(c) == 1
    row = c.iloc[0]
    assert {row["from_patch"], row["to_patch"]} == {1, 2}
    assert row["gap_parcels"] == "G" and row["n_gap_parcels"] == 1
    assert row["distance_m"] == pytest.approx(50)
    assert row["gap_m"] == pytest.approx(50, abs=1e-6)  # straight across the grass
    # the path runs from A's edge cell to B's edge cell (10 m cells) over grass
    assert 50 <= row["length_m"] <= 80
    assert result.gaps["id"].tolist() == ["G"]
    line = c.geometry.iloc[0]
    assert line.intersects(shapely.box(1100, 100, 1150, 1100))


def test_corner_contact_joins_and_units_clip():
    zones = gpd.GeoDataFrame({"name": ["west", "east"], "level": ["subzone", "subzone"]},
                             geometry=[shapely.box(0, 0, 300, 300), shapely.box(300, 0, 600, 300)],
                             crs="EPSG:4548")
    parcels = gpd.GeoDataFrame({"id": ["a", "b", "c"], "code": ["0301", "1101", "0301"]},
                               geometry=[shapely.box(0, 0, 200, 100),
                                         shapely.box(200, 100, 400, 200),   # corner of a
                                         shapely.box(450, 150, 550, 250)], crs="EPSG:4548")
    units = accounting_units(zones)
    p = network.find_patches(classify_layer(parcels, "gbt21010"), units)
    by = p.groupby("zone")["area_ha"].apply(sorted).to_dict()
    # west: a + the west half of b (touching at a corner) = one 3 ha patch
    assert by["west"] == pytest.approx([3.0])
    # east: b's east half (1 ha) and c (1 ha), apart
    assert by["east"] == pytest.approx([1.0, 1.0])
    # the level (both zones): a + b (4 ha) and c
    assert by["subzone"] == pytest.approx([1.0, 4.0])
    classes = p.loc[p["zone"] == "west", "classes"].iloc[0]
    assert classes == "forest;water"


def test_pc_two_patches_by_hand():
    net = network.connectivity(np.array([30.0, 20.0]), np.array([0]), np.array([1]),
                               np.array([1000.0]), area_l_ha=200.0)
    num = 30 ** 2 + 20 ** 2 + 2 * 30 * 20 * 0.25
    assert net.pc == pytest.approx(num / 200 ** 2)
    assert net.eca_ha == pytest.approx(math.sqrt(num))


def test_maximum_product_path_through_a_stepping_stone():
    # 0–1 and 1–2 at 500 m (p 0.5 each), 0–2 direct at 1 500 m (p 0.125): via 1 is 0.25
    net = network.connectivity(np.ones(3), np.array([0, 1, 0]), np.array([1, 2, 2]),
                               np.array([500.0, 500.0, 1500.0]), area_l_ha=10.0)
    assert net.pstar[0, 2] == pytest.approx(0.25)


def test_dpc_equals_recomputing_without_each_patch():
    rng = np.random.default_rng(7)
    n = 40
    a = rng.uniform(1, 20, n)
    xy = rng.uniform(0, 5000, (n, 2))
    i, j = np.triu_indices(n, 1)
    d = np.hypot(*(xy[i] - xy[j]).T)
    net = network.connectivity(a, i, j, d, area_l_ha=2500.0)
    np.testing.assert_allclose(network.dpc(net), _dpc_by_recomputation(net, i, j, d),
                               rtol=1e-9, atol=1e-9)


def _dpc_by_recomputation(net, i, j, d):
    """dPC of every patch from PC recomputed without it (its area 0, its links gone)."""
    out = []
    for k in range(len(net.area)):
        keep = (i != k) & (j != k)
        a_k = net.area.copy()
        a_k[k] = 0.0
        without = network.connectivity(a_k, i[keep], j[keep], d[keep], area_l_ha=net.area_l_ha)
        out.append(100 * (net.num - without.num) / net.num)
    return out


def _random_graph(rng, n, m, limit_scale=1.0):
    from scipy import sparse

    i, j = rng.integers(0, n, m), rng.integers(0, n, m)
    keep = i != j
    w = rng.uniform(0.05, 3.0, keep.sum()) * limit_scale
    g = sparse.coo_matrix((w, (i[keep], j[keep])), shape=(n, n)).tocsr()
    return g.maximum(g.T).tocsr()


def test_search_without_a_node_equals_a_full_search_bit_for_bit():
    # the targets whose best path ran through k, searched again from their unflagged
    # neighbours only, get the lengths a full search of the graph without k gives
    from scipy.sparse import csgraph

    rng = np.random.default_rng(11)
    searched = 0
    for n, m, limit in ((40, 120, np.inf), (60, 150, 3.0)):
        g = _random_graph(rng, n, m)
        d = csgraph.dijkstra(g, directed=True, limit=limit)
        for k in range(0, n, 7):
            via = d[:, [k]] + d[[k], :]
            through = np.isfinite(via) & (via <= d * (1 + 1e-9) + 1e-12)
            through[k, :] = through[:, k] = False
            np.fill_diagonal(through, False)
            src = np.flatnonzero(through.any(axis=1))
            if not len(src):
                continue
            g_k = g.tolil()
            g_k[k, :] = 0
            g_k[:, k] = 0
            g_k = g_k.tocsr()
            g_k.eliminate_zeros()
            full = csgraph.dijkstra(g_k, directed=True, indices=src, limit=limit)
            got = network._rows_without(g_k.indptr.astype(np.int64),
                                        g_k.indices.astype(np.int64), g_k.data, d,
                                        src.astype(np.int64), through[src], limit)
            t = through[src]
            assert np.array_equal(got[t], full[t])
            assert np.array_equal(got[~t], d[src][~t])
            searched += int(t.sum())
    assert searched > 50


def test_cost_distance_equals_scikit_image_mcp_bit_for_bit():
    # the compiled run settles cells, breaks ties and records moves as MCP_Geometric does:
    # integer costs (many equal sums), impassable cells, starts in any order, a queue that
    # outgrows its first size
    from skimage.graph import MCP_Geometric

    rng = np.random.default_rng(5)
    traced = 0
    for trial in range(60):
        h, w = (int(v) for v in rng.integers(2, 45, 2))
        if trial % 2:
            cost = rng.choice([1.0, 2.0, 10.0, 30.0, 100.0, np.inf], size=(h, w),
                              p=[0.3, 0.2, 0.2, 0.1, 0.1, 0.1])
        else:
            cost = rng.integers(1, 4, (h, w)).astype(float)
        k = int(rng.integers(1, max(2, h * w // 5)))
        starts = np.unique(np.column_stack([rng.integers(0, h, k), rng.integers(0, w, k)]),
                           axis=0)
        starts = starts[rng.permutation(len(starts))]
        mcp = MCP_Geometric(cost, fully_connected=True)
        cum, trace = mcp.find_costs(starts)
        got_cum, got_trace = network._cost_distance(cost, starts.astype(np.int64))
        assert np.array_equal(got_cum, cum)
        assert got_trace.dtype == trace.dtype and np.array_equal(got_trace, trace)
        assert np.array_equal(network._OFFSETS, np.asarray(mcp.offsets))
        ends = np.argwhere(np.isfinite(cum))[::17].astype(np.int64)
        cells, counts = network._trace_cells(got_trace, ends)
        for end, path in zip(ends, np.split(cells, np.cumsum(counts)[:-1]), strict=True):
            assert [tuple(c) for c in path[::-1].tolist()] == [
                tuple(int(v) for v in c) for c in mcp.traceback(tuple(end))]
            traced += 1
    assert traced > 300


def test_dpc_equals_recomputing_with_components_and_stepping_stones():
    # three clusters far apart (separate components), sparse links within each
    rng = np.random.default_rng(5)
    xy = np.concatenate([rng.uniform(0, 3000, (15, 2)) + off
                         for off in ((0, 0), (60000, 0), (0, 60000))])
    n = len(xy)
    a = rng.uniform(1, 20, n)
    i, j = np.triu_indices(n, 1)
    d = np.hypot(*(xy[i] - xy[j]).T)
    near = d < 1200
    i, j, d = i[near], j[near], d[near]
    net = network.connectivity(a, i, j, d, area_l_ha=9000.0)
    assert (~np.isfinite(net.dist)).any()
    np.testing.assert_allclose(network.dpc(net), _dpc_by_recomputation(net, i, j, d),
                               rtol=1e-9, atol=1e-9)


def test_gain_equals_recomputing_with_the_parcel():
    zones, parcels = barrier()
    lc = classify_layer(parcels, "gbt21010")
    cands = afforestation_candidates(lc, zones, level="barrier", gap_ha=10, target_id="t")
    res = network.barrier_network(lc, zones, candidates=cands)
    for cid in ("G", "iso20", "iso12"):
        after = parcels.copy()
        after.loc[after["id"] == cid, "code"] = "0301"
        pc_after = network.barrier_network(classify_layer(after, "gbt21010"), zones
                                           ).metrics["pc"].iloc[1]
        gain = res.candidates.set_index("id").loc[cid, "connectivity_gain"]
        assert gain == pytest.approx(100 * (pc_after - NUM / 800 ** 2) / (NUM / 800 ** 2),
                                     rel=1e-9)


def test_metrics_agree_with_pylandstats_on_a_raster():
    pls = pytest.importorskip("pylandstats")
    from rasterio import features
    from rasterio.transform import from_origin

    zones = gpd.GeoDataFrame({"name": ["z"], "level": ["barrier"]},
                             geometry=[shapely.box(0, 0, 1000, 600)], crs="EPSG:4548")
    geoms = [shapely.box(0, 0, 200, 150), shapely.box(200, 150, 350, 300),  # corner contact
             shapely.box(500, 100, 520, 400), shapely.box(600, 450, 1000, 600),  # on the rim
             shapely.box(700, 50, 800, 120), shapely.box(300, 450, 330, 480),
             shapely.Polygon([(850, 100), (950, 100), (950, 300), (900, 300), (900, 150),
                              (850, 150)])]
    codes = ["0301", "1101", "0301", "1104", "0301", "0301", "1108"]
    grass = shapely.difference(shapely.box(0, 0, 1000, 600), shapely.union_all(geoms))
    parcels = gpd.GeoDataFrame({"id": [str(i) for i in range(len(geoms) + 1)],
                                "code": codes + ["0404"]}, geometry=[*geoms, grass],
                               crs="EPSG:4548")
    opts = network.network_options({"min_patch_ha": 0})
    units = accounting_units(zones)[:1]
    p = network.find_patches(classify_layer(parcels, "gbt21010"), units, options=opts)
    mine = network.landscape_metrics(p, units, network.unit_networks(p, units, options=opts))
    raster = features.rasterize([(g, 1) for g in geoms], out_shape=(60, 100),
                                transform=from_origin(0, 600, 10, 10), fill=2, dtype="uint8")
    ls = pls.Landscape(raster, res=(10, 10), nodata=0)
    theirs = ls.compute_class_metrics_df(metrics=["number_of_patches", "largest_patch_index",
                                                  "area_mn", "edge_density"]).loc[1]
    row = mine.iloc[0]
    assert row["n_patches"] == theirs["number_of_patches"] == 6
    assert row["largest_patch_index"] == pytest.approx(theirs["largest_patch_index"])
    assert row["mean_patch_area_ha"] == pytest.approx(theirs["area_mn"])
    assert row["edge_density_m_ha"] == pytest.approx(theirs["edge_density"])


def test_no_habitat_gives_empty_outputs(tmp_path):
    zones, parcels = barrier()
    parcels["code"] = "0101"
    lc = classify_layer(parcels, "gbt21010")
    res = network.barrier_network(lc, zones)
    assert res.metrics["n_patches"].tolist() == [0, 0]
    assert res.metrics["pc"].tolist() == [0.0, 0.0]
    assert len(res.corridors) == 0 and len(res.patches) == 0
    network.write_outputs(res, lambda name: tmp_path / name)
    assert len(gpd.read_file(tmp_path / "patches.gpkg")) == 0
    assert len(gpd.read_file(tmp_path / "corridors.gpkg", layer="gaps")) == 0


def test_outputs_map_and_report(result, tmp_path):
    from gis import maps

    network.write_outputs(result, lambda name: tmp_path / name)
    patches = gpd.read_file(tmp_path / "patches.gpkg")
    assert patches.columns.tolist() == network.PATCH_COLUMNS
    assert patches["dpc"].tolist() == pytest.approx(result.patches["dpc"].tolist())
    corr = gpd.read_file(tmp_path / "corridors.gpkg", layer="corridors")
    assert corr["gap_parcels"].tolist() == ["G"]
    assert gpd.read_file(tmp_path / "corridors.gpkg", layer="gaps")["id"].tolist() == ["G"]
    table = pd.read_csv(tmp_path / "connectivity.csv", encoding="utf-8-sig")
    assert table.columns.tolist() == network.CONNECTIVITY_COLUMNS
    zones, parcels = barrier()
    lc = classify_layer(parcels, "gbt21010")
    m = maps.ecology_map(zones.rename(columns={"name": "zone"}).assign(area_ha=800.0), lc,
                         result.candidates, targets={}, offline=True, network=result)
    page = maps.render_map(m, offline=True)
    for text in ("生境斑块 habitat patches (dPC)", "生态廊道 least-cost corridors",
                 "廊道缺口地块 corridor gaps", "连接斑块的候选地块 bridging candidates",
                 'id="legend-network"'):
        assert text in page
    html = network.report_html(result)
    assert html.count("<h3>") == 2  # one block per zone and level
    assert "together raise PC by <b>" in html


def test_run_file_table(tmp_path):
    from gis._errors import RunFileError
    from gis.config import parse_runfile

    cfg = parse_runfile({"ecology": {"bluegreen": "narrow", "network": {
        "habitat": ["forest", "water", "green"], "dispersal_m": 800,
        "resistance": {"cropland": 20}}}}, base=tmp_path)
    assert cfg.ecology == {"bluegreen": "narrow"}
    opts = network.network_options(cfg.network)
    assert opts.habitat == ("forest", "water", "green") and opts.dispersal_m == 800
    assert opts.resistance["cropland"] == 20 and opts.resistance["construction"] == 100
    with pytest.raises(RunFileError) as err:
        parse_runfile({"ecology": {"network": {
            "habitat": ["forest", "meadow"], "dispersal": 500, "min_patch_ha": -1,
            "resistance": {"roads": 5}, "rank_by": "size"}}}, base=tmp_path)
    text = str(err.value)
    for key in ("ecology.network.habitat", "ecology.network.dispersal",
                "ecology.network.min_patch_ha", "ecology.network.resistance.roads",
                "ecology.network.rank_by"):
        assert key in text


def test_pipeline_writes_the_network(demo_run):
    # the shared whole run of the demo (tests/conftest.py); a run without buildings, and so
    # without rooftop PV, is test_run_on_the_constructed_barrier below
    _, out = demo_run
    conn = pd.read_csv(out / "connectivity.csv", encoding="utf-8-sig")
    zones = pd.read_csv(out / "zones.csv", encoding="utf-8-sig")
    levels = zones[zones["kind"] == "level"]
    assert set(zip(levels["zone"], levels["level"], strict=True)) <= set(
        zip(conn["zone"], conn["level"], strict=True))
    assert ((conn["pc"] >= 0) & (conn["pc"] <= 1)).all()
    aff = pd.read_csv(out / "afforestation.csv", encoding="utf-8-sig")
    assert {"connectivity_gain", "bridges", "rank_connectivity"} <= set(aff.columns)
    assert sorted(aff["rank_connectivity"]) == list(range(1, len(aff) + 1))
    patches = gpd.read_file(out / "patches.gpkg")
    assert (patches["area_ha"] >= 1).all() and (patches["dpc"] >= 0).all()
    assert len(gpd.read_file(out / "corridors.gpkg", layer="corridors")) > 0
    import json

    record = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert record["definitions"]["network"]["dispersal_m"] == 500
    assert "ecological network" in record["timings_s"]


def test_run_on_the_constructed_barrier(tmp_path):
    """The whole run from files: no forest target gap here (no level1), so the network lists
    the barrier's candidates itself."""
    from gis import pipeline

    zones, parcels = barrier()
    # placed near Tianjin (CGCS2000 GK CM 117E) so that the CRS check accepts the layers
    zones.geometry = zones.geometry.translate(520_000, 4_330_000)
    parcels.geometry = parcels.geometry.translate(520_000, 4_330_000)
    zones.to_file(tmp_path / "zones.geojson", driver="GeoJSON")
    parcels.to_file(tmp_path / "landuse.gpkg", driver="GPKG")
    (tmp_path / "run.toml").write_text(
        '[project]\nname = "test"\ncrs = "EPSG:4548"\n\n'
        '[layers.landuse]\npath = "landuse.gpkg"\nscheme = "gbt21010"\n'
        '[layers.landuse.columns]\nid = "id"\ncode = "code"\n\n'
        '[layers.zones]\npath = "zones.geojson"\n[layers.zones.columns]\nname = "name"\n'
        'level = "level"\n\n[output]\ndir = "out"\n', encoding="utf-8")
    pipeline.run(tmp_path / "run.toml")
    out = tmp_path / "out"
    aff = pd.read_csv(out / "afforestation.csv", encoding="utf-8-sig", dtype={"id": str})
    best = aff.sort_values("rank_connectivity").iloc[0]
    assert best["id"] == "G" and bool(best["bridges"])
    assert best["connectivity_gain"] == pytest.approx(100 * (205 ** 2 - NUM) / NUM)
    conn = pd.read_csv(out / "connectivity.csv", encoding="utf-8-sig")
    row = conn[conn["kind"] == "level"].iloc[0]
    assert (row["zone"], row["n_patches"]) == ("barrier", 2)
    assert row["pc"] == pytest.approx(NUM / 800 ** 2)
    corr = gpd.read_file(out / "corridors.gpkg", layer="corridors")
    assert corr["gap_parcels"].tolist() == ["G"]
    assert "生态网络 Ecological network" in (out / "report.html").read_text(encoding="utf-8")

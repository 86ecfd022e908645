"""The partitioned engine gives the single-machine results, on a two-worker local cluster."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

pytest.importorskip("dask_geopandas")
pytest.importorskip("distributed")

from gis import distributed, ecology, rooftop  # noqa: E402
from gis.config import EngineSpec  # noqa: E402

CRS = "EPSG:4548"
X0, Y0 = 500_000.0, 4_330_000.0  # about 117° E, 39.1° N in CGCS2000 / 3° GK CM 117E
RTOL = 1e-9


def _buildings(n: int = 300, seed: int = 7) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n)))
    i = np.arange(n)
    x = X0 + (i % side) * 40.0 + rng.uniform(0, 10, n)
    y = Y0 + (i // side) * 40.0 + rng.uniform(0, 10, n)
    w, d = rng.uniform(4, 30, n), rng.uniform(4, 20, n)
    geoms = shapely.box(x, y, x + w, y + d)
    cats = np.array(["government", "public", "commercial", "industrial", "residential",
                     "rural_residential", "other"])[rng.integers(0, 7, n)]
    roof = np.where(rng.random(n) < 0.3, None, np.where(rng.random(n) < 0.5, "flat", "pitched"))
    gdf = gpd.GeoDataFrame({
        "id": [f"B{k:04d}" for k in i],
        "category": cats,
        "floors": rng.integers(1, 12, n).astype(float),
        "roof_type": pd.array(roof, dtype="string"),
        "roof_tilt": np.where(rng.random(n) < 0.5, rng.uniform(15, 40, n), np.nan),
        "roof_azimuth": np.where(rng.random(n) < 0.5, rng.uniform(0, 360, n), np.nan),
        "year_built": rng.integers(1990, 2025, n).astype(float),
        "pv_kw": np.where(rng.random(n) < 0.1, rng.uniform(5, 30, n), 0.0),
        "street": np.where(x < X0 + side * 20, "West", "East"),
    }, geometry=geoms, crs=CRS)
    # a shuffled, non-default index: the engine must give it back in the input's order
    return gdf.set_index(pd.Index(rng.permutation(n) * 3 + 11)).sample(frac=1, random_state=1)


def _irradiance(path, bounds) -> str:
    import rasterio
    from rasterio.transform import from_origin

    res = 2.0
    x0, y0, x1, y1 = bounds
    w, h = int((x1 - x0) / res) + 20, int((y1 - y0) / res) + 20
    yy, xx = np.mgrid[0:h, 0:w]
    grid = (1500 - 600 * (np.sin(xx / 7.0) * np.cos(yy / 11.0)) ** 2).astype("float32")
    profile = {"driver": "GTiff", "width": w, "height": h, "count": 1, "dtype": "float32",
               "crs": CRS, "transform": from_origin(x0 - 20, y1 + 20, res, res), "nodata": -1,
               "tiled": True, "blockxsize": 128, "blockysize": 128}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(grid, 1)
    return str(path)


def _landuse_zones():
    # 6 × 6 parcels of 100 m × 100 m (1 ha each); codes cycle through forest, other forest land,
    # water, cropland, grass and construction
    codes = np.array(["0301", "0307", "1101", "0103", "0404", "0702"])
    cells = [(c, r) for r in range(6) for c in range(6)]
    geoms = [shapely.box(X0 + 100 * c, Y0 + 100 * r, X0 + 100 * (c + 1), Y0 + 100 * (r + 1))
             for c, r in cells]
    n = len(geoms)
    official = np.full(n, 9_800.0)
    official[::5] = np.nan  # some parcels without TBDLMJ: counted geometrically
    landuse = gpd.GeoDataFrame({
        "id": [f"P{k:02d}" for k in range(n)],
        "code": codes[np.arange(n) % 6],
        "area_official_m2": official,
        "kcmj_m2": np.where(np.arange(n) % 6 == 3, 150.0, 0.0),
    }, geometry=geoms, crs=CRS)
    zones = gpd.GeoDataFrame({
        "name": ["屏障", "一级", "片区甲", "片区乙"],
        "level": ["barrier", "level1", "subzone", "subzone"],
    }, geometry=[shapely.box(X0 + 50, Y0 + 50, X0 + 550, Y0 + 550),
                 shapely.box(X0 + 130, Y0 + 130, X0 + 420, Y0 + 470),
                 shapely.box(X0 + 50, Y0 + 50, X0 + 300, Y0 + 300),
                 shapely.Polygon([(X0 + 300, Y0 + 300), (X0 + 560, Y0 + 310),
                                  (X0 + 420, Y0 + 560)])], crs=CRS)
    streets = gpd.GeoDataFrame({"name": ["West", "East"]},
                               geometry=[shapely.box(X0 - 10, Y0 - 10, X0 + 333, Y0 + 700),
                                         shapely.box(X0 + 333, Y0 - 10, X0 + 700, Y0 + 700)],
                               crs=CRS)
    stands = gpd.GeoDataFrame({"id": ["S1", "S2"], "species": ["杨树", "刺槐"],
                               "stock_m3_ha": [80.0, 55.0]},
                              geometry=[shapely.box(X0, Y0, X0 + 100, Y0 + 100),
                                        shapely.box(X0 + 300, Y0 + 300, X0 + 400, Y0 + 410)],
                              crs=CRS)
    return landuse, zones, streets, stands


@pytest.fixture(scope="module")
def engine():
    with distributed.Engine(EngineSpec("dask", partitions=5), workers=2) as eng:
        yield eng


def _assert_same(local: pd.DataFrame, dist: pd.DataFrame) -> None:
    assert list(dist.columns) == list(local.columns)
    assert dist.index.equals(local.index)
    for col in local.columns:
        a, b = local[col], dist[col]
        if col == local.geometry.name:
            assert shapely.equals_exact(a.array, b.array, tolerance=0).all()
        elif pd.api.types.is_float_dtype(a):
            np.testing.assert_allclose(b.to_numpy(float), a.to_numpy(float), rtol=RTOL,
                                       atol=0, equal_nan=True, err_msg=col)
        else:
            pd.testing.assert_series_equal(b, a, check_names=True, obj=col)


def test_hilbert_order_groups_neighbours():
    # four points in two far-apart pairs: a Hilbert order keeps each pair together
    pts = gpd.GeoSeries(shapely.points([[0, 0], [1000, 1000], [1, 1], [1001, 1001]]))
    order = distributed.hilbert_order(pts)
    assert sorted(order.tolist()) == [0, 1, 2, 3]
    pairs = {frozenset(order[:2].tolist()), frozenset(order[2:].tolist())}
    assert pairs == {frozenset({0, 2}), frozenset({1, 3})}


def test_default_partitions():
    assert distributed.default_partitions(300) == 4  # two per worker
    assert distributed.default_partitions(1_000_000) == 10  # ≤ 100 000 rows each
    assert distributed.default_partitions(3, EngineSpec("dask", partitions=8)) == 3


def test_pv_potential_equals_local(engine, tmp_path):
    buildings = _buildings()
    raster = _irradiance(tmp_path / "irr.tif", buildings.total_bounds)
    before = buildings.copy()
    kw = dict(params=rooftop.pv_params("base"), irradiance=raster, grid_co2_t_per_mwh=0.5703,
              coal_gce_per_kwh=290.0, new_building_since=2022)
    local = rooftop.pv_potential(buildings, **kw)
    dist = engine.pv_potential(buildings, **kw)
    _assert_same(local, dist)
    pd.testing.assert_frame_equal(buildings, before)  # input untouched
    # the data exercise what could differ between partitions: shading, PV and no-PV roofs
    assert (local["shading_factor"] < 0.99).sum() > 50
    assert (local["reason"] == "").sum() > 100 and (local["reason"] != "").sum() > 10


def test_zone_accounts_equal_local(engine):
    landuse, zones, streets, stands = _landuse_zones()
    for extra in ({}, {"stands": stands}):
        kw = dict(scheme="gbt21010", streets=streets, **extra)
        local = ecology.zone_accounts(landuse, zones, **kw)
        dist = engine.zone_accounts(landuse, zones, **kw)
        _assert_same(local, dist)
    # hand check: the barrier (500 m × 500 m) is 25 ha
    barrier = dist[(dist["zone"] == "屏障") & (dist["kind"] == "zone")].iloc[0]
    assert barrier["area_ha"] == pytest.approx(25.0)
    # column 0 of the grid is forest (0301); the barrier holds its east half over 5 rows
    assert barrier["forest_ha"] == pytest.approx(2.5)
    assert barrier["forest_coverage"] == pytest.approx(0.1)
    # the count of parcels counted geometrically (every 5th of 36) is summed over partitions
    assert "; 8 parcels without TBDLMJ counted geometrically;" in barrier["basis"]


def test_small_parcel_layers_are_accounted_in_the_client():
    # without ``partitions``, a layer up to CLIENT_ZONE_ROWS parcels never reaches the cluster
    landuse, zones, streets, _ = _landuse_zones()
    eng = distributed.Engine(EngineSpec("dask"))
    kw = dict(scheme="gbt21010", streets=streets)
    dist = eng.zone_accounts(landuse, zones, **kw)
    assert eng._client is None and eng._starting is None
    _assert_same(ecology.zone_accounts(landuse, zones, **kw), dist)
    assert len(landuse) <= distributed.CLIENT_ZONE_ROWS


def test_kernel_threads_share_the_cores():
    import os

    cores = os.cpu_count() or 1
    assert distributed.Engine(EngineSpec("dask"), workers=2)._kernel_threads() == max(1, cores // 2)
    assert distributed.Engine(EngineSpec("dask"), workers=1)._kernel_threads() == cores
    assert distributed.Engine(EngineSpec("dask"), workers=4 * cores)._kernel_threads() == 1
    # a cluster elsewhere: its own machines, the kernels' default
    assert distributed.Engine(EngineSpec("dask", address="tcp://h:8786"))._kernel_threads() is None


def test_pv_parquet_partitions(engine, tmp_path):
    buildings = _buildings(120, seed=3)
    kw = dict(params=rooftop.pv_params("conservative"), grid_co2_t_per_mwh=0.58,
              coal_gce_per_kwh=285.0, new_building_since=2021)
    src = distributed.write_partitions(buildings, tmp_path / "in.parquet", npartitions=3)
    assert len(list(src.glob("part.*.parquet"))) == 3
    out = engine.pv_potential_parquet(src, tmp_path / "out.parquet", **kw)
    back = gpd.read_parquet(out).loc[buildings.index]
    local = rooftop.pv_potential(buildings, **kw)
    np.testing.assert_allclose(back["annual_kwh"], local["annual_kwh"], rtol=RTOL)
    assert back.crs == local.crs


def test_class_yields_cover_every_roof():
    from gis import solar

    buildings = _buildings(200, seed=11)
    # the yield table alone (shading by neighbours reads the weather for its sky)
    params = rooftop.pv_params("ambitious", shading="none")
    weather = solar.climate_model(39.1, 117.0)
    table = distributed.class_yields(params, weather)
    # 18 pitched tilts (5°…90°) × 24 azimuths (15° steps) + horizontal + the flat-roof class
    assert len(table) == 18 * 24 + 1 + 1
    flat = table[table["roof_type"] == "flat"].iloc[0]
    assert (flat["tilt"], flat["azimuth"]) == (25.0, 180.0)
    # with every class found, the weather passed is never used: a far-away one changes nothing
    data, meta = weather
    elsewhere = (data * 0.5, meta)  # half the irradiance: would halve every yield
    looked_up = rooftop.pv_potential(buildings, params=params, weather=elsewhere,
                                     known_yields=table)
    local = rooftop.pv_potential(buildings, params=params, weather=weather)
    np.testing.assert_allclose(looked_up["specific_yield_kwh_kwp"],
                               local["specific_yield_kwh_kwp"], rtol=RTOL)
    assert 1100 < flat["specific_yield_kwh_kwp"] < 1600


def test_pv_potential_with_shading_by_neighbours_equals_local(engine):
    # no irradiance raster: footprints × floors shade each other across partition edges
    # (1.2 km square: wider than the reach of a partition's obstacles)
    buildings = _buildings(900)
    params = rooftop.pv_params("base", horizon_distance_m=60.0)
    local = rooftop.pv_potential(buildings, params=params)
    dist = engine.pv_potential(buildings, params=params)
    _assert_same(local, dist)
    assert (local["shading_source"] == "lod1").all()
    assert (local["shading_factor"] < 0.95).sum() > 20
    # the partitions really received only their neighbourhoods
    parts, _ = distributed.split(buildings, 5)
    shared = {"params": params}
    obstacles = distributed._partition_obstacles(buildings, parts, shared)
    assert min(len(o) for o in obstacles) < len(buildings)


# ---------------------------------------------------------------------------------------------
# The engine's life in a run: closed right after the last step that uses it
# ---------------------------------------------------------------------------------------------
def _dask_run(demo_dir, tmp_path, steps):
    from dataclasses import replace

    from gis import pipeline
    from gis.config import load_runfile

    cfg = load_runfile(demo_dir / "run.toml")
    cfg = replace(cfg, engine=replace(cfg.engine, kind="dask"))
    return pipeline.run(cfg, out_dir=tmp_path / "out", offline=True, steps=steps)


def _probe(seen: dict, name: str):
    """A step that notes the run's engine, its client and the client's status as it finds them."""
    def probe(ctx):
        eng = ctx.extras.get("engine")
        client = eng.client if eng is not None and eng._client is not None else None
        seen[name] = (eng, client, client.status if client is not None else None)
    return probe


def test_run_closes_the_engine_after_its_last_step(demo_dir, tmp_path):
    from gis import pipeline

    seen: dict = {}
    load, pv, ecology = pipeline.STEPS[0], pipeline.STEPS[1], pipeline.STEPS[2]
    assert (pv[1], ecology[1]) == pipeline.ENGINE_STEPS
    ctx = _dask_run(demo_dir, tmp_path, [load, pv, ("probe 1", _probe(seen, "after pv")),
                                         ecology, ("probe 2", _probe(seen, "after ecology"))])
    eng, client, status = seen["after pv"]
    assert isinstance(eng, distributed.Engine) and status == "running"
    assert seen["after ecology"] == (None, None, None)  # closed before the next step began
    assert eng._client is None and client.status == "closed"
    assert "engine" not in ctx.extras
    assert len(ctx.results["pv"]) == len(ctx.layers.buildings) > 0
    assert len(ctx.results["zones"]) > 0


def test_run_without_ecology_closes_the_engine_after_pv(demo_dir, tmp_path):
    from gis import pipeline

    seen: dict = {}
    pv_probe = _probe(seen, "pv")

    def pv_then_probe(ctx):  # the engine as rooftop PV leaves it
        pipeline.step_pv(ctx)
        pv_probe(ctx)

    steps = [pipeline.STEPS[0], ("rooftop PV", pv_then_probe),
             ("probe", _probe(seen, "after"))]
    # a step the pipeline does not know as an engine step: the engine outlives it, closed at
    # the end of the run
    _dask_run(demo_dir, tmp_path, steps)
    eng, client, status = seen["pv"]
    assert status == "running" and seen["after"][:2] == (eng, client)
    assert client.status == "closed" and eng._client is None

    seen.clear()
    _dask_run(demo_dir, tmp_path, [pipeline.STEPS[0], pipeline.STEPS[1],
                                   ("probe", _probe(seen, "after"))])
    assert seen["after"] == (None, None, None)


def test_failing_run_closes_the_engine(demo_dir, tmp_path):
    from gis import pipeline

    seen: dict = {}

    def fail(ctx):
        _probe(seen, "before failing")(ctx)
        raise RuntimeError("a step failed")

    with pytest.raises(RuntimeError, match="a step failed"):
        _dask_run(demo_dir, tmp_path, [pipeline.STEPS[0], pipeline.STEPS[1], ("fails", fail),
                                       pipeline.STEPS[2]])
    eng, client, status = seen["before failing"]
    assert status == "running"  # ecology was still to come
    assert eng._client is None and client.status == "closed"

"""The per-tile horizon cache: a rerun loads what it computed, a change recomputes what it
reaches, and the horizons are those of a run without a cache, bit for bit."""

from __future__ import annotations

import numba
import numpy as np
import pytest
import shapely

from gis import _cache, horizon

#: Tiles of 200 m, a search distance of 60 m: a block 4 tiles × 3 tiles of buildings.
KW = {"tile_m": 200.0, "max_distance_m": 60.0, "sectors": 36, "spacing_m": 4.0}


@pytest.fixture()
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(_cache.ENV_DIR, str(tmp_path))
    monkeypatch.delenv(_cache.ENV_OFF, raising=False)
    return tmp_path / horizon.CACHE_NAME


def _town():
    """Buildings 12 m × 12 m every 40 m over 800 m × 600 m, heights 3–30 m (a fixed pattern)."""
    cx, cy = np.meshgrid(np.arange(20.0, 800.0, 40.0), np.arange(20.0, 600.0, 40.0))
    cx, cy = cx.ravel(), cy.ravel()
    geoms = shapely.box(cx - 6, cy - 6, cx + 6, cy + 6)
    tops = 3.0 + (np.arange(len(cx)) * 7 % 10) * 3.0
    return geoms, tops


def _run(geoms, tops, **kw):
    return horizon.roof_horizons(geoms, roof_tops=tops, **{**KW, **kw})


def test_second_call_reuses_every_tile_bit_for_bit(cache_dir):
    geoms, tops = _town()
    first = _run(geoms, tops)
    second = _run(geoms, tops)
    plain = _run(geoms, tops, cache=False)
    assert first.cache["tiles"] == 12  # 4 × 3 tiles of 200 m
    assert (first.cache["tiles_computed"], first.cache["tiles_reused"]) == (12, 0)
    assert (second.cache["tiles_computed"], second.cache["tiles_reused"]) == (0, 12)
    assert plain.cache == {"enabled": False, "reason": "switched off", "tiles": 12,
                           "tiles_reused": 0, "tiles_computed": 12}
    assert second.horizon_deg.dtype == np.float32
    assert second.horizon_deg.tobytes() == first.horizon_deg.tobytes() == \
        plain.horizon_deg.tobytes()
    assert second.z.tobytes() == plain.z.tobytes()
    assert (second.horizon_deg > 0).mean() > 0.1  # the town does shade itself
    assert len(list(cache_dir.glob("*.bin"))) == 12
    assert not list(cache_dir.glob("*.tmp"))


def test_one_building_changed_recomputes_the_tiles_it_reaches(cache_dir):
    geoms, tops = _town()
    _run(geoms, tops)
    changed = tops.copy()
    # the building centred on (100, 100): tile (0, 0); its footprint within 60 m + margins of
    # tiles (0, 1), (1, 0), (1, 1)?  No: 94..106 is 94 m from x = 200, beyond 60 + 2 m, but
    # the surface grid of a tile is whole blocks of 256 m, which reaches further.
    k = int(np.flatnonzero(shapely.equals(geoms, shapely.box(94, 94, 106, 106)))[0])
    changed[k] += 20.0
    again = _run(geoms, changed)
    plain = _run(geoms, changed, cache=False)
    assert again.horizon_deg.tobytes() == plain.horizon_deg.tobytes()
    assert again.z.tobytes() == plain.z.tobytes()
    # which tiles see the building: their grid (tile ± 62 m, widened to 256 m blocks) holds it
    reach = []
    for i in range(4):
        for j in range(3):
            left, top, width, height = horizon._grid(
                (i * 200 - 62, j * 200 - 62, (i + 1) * 200 + 62, (j + 1) * 200 + 62), 1.0)
            if left - 2 <= 106 and 94 <= left + width + 2 and top - height - 2 <= 106 \
                    and 94 <= top + 2:
                reach.append((i, j))
    assert 1 <= len(reach) < 12
    assert again.cache["tiles_computed"] == len(reach)
    assert again.cache["tiles_reused"] == 12 - len(reach)
    # and the tile holding the building did change
    tile = (np.floor(again.x / 200) == 0) & (np.floor(again.y / 200) == 0)
    before = _run(geoms, tops, cache=False)
    assert not np.array_equal(again.horizon_deg[tile], before.horizon_deg[tile])


@pytest.mark.parametrize("change", [{"sectors": 72}, {"max_distance_m": 80.0},
                                    {"spacing_m": 5.0}, {"res": 0.5}])
def test_settings_are_in_the_key(cache_dir, change):
    geoms, tops = _town()
    _run(geoms, tops)
    other = _run(geoms, tops, **change)
    assert other.cache["tiles_reused"] == 0
    assert other.horizon_deg.tobytes() == _run(geoms, tops, cache=False,
                                               **change).horizon_deg.tobytes()


def test_floors_are_in_the_key(cache_dir):
    geoms, tops = _town()
    floor = np.zeros((2, 36))
    floor[1, :] = 20.0
    rows = np.zeros(len(geoms), dtype=np.int64)
    a = _run(geoms, tops, floor_deg=floor, floor_of=rows)
    rows[::2] = 1
    b = _run(geoms, tops, floor_deg=floor, floor_of=rows)
    assert a.cache["tiles_computed"] == b.cache["tiles_computed"] == 12
    assert b.horizon_deg.tobytes() == _run(geoms, tops, floor_deg=floor, floor_of=rows,
                                           cache=False).horizon_deg.tobytes()
    assert _run(geoms, tops, floor_deg=floor, floor_of=rows).cache["tiles_reused"] == 12


def test_damaged_files_are_ignored_and_computed_again(cache_dir):
    geoms, tops = _town()
    first = _run(geoms, tops)
    files = sorted(cache_dir.glob("*.bin"))
    data = files[0].read_bytes()
    files[0].write_bytes(data[: len(data) // 2])  # truncated
    flipped = bytearray(files[1].read_bytes())
    flipped[-5] ^= 0xFF  # one byte of a horizon changed
    files[1].write_bytes(bytes(flipped))
    files[2].write_bytes(b"not a cache file")
    again = _run(geoms, tops)
    assert again.cache["files_ignored"] == 3
    assert (again.cache["tiles_computed"], again.cache["tiles_reused"]) == (3, 9)
    assert again.horizon_deg.tobytes() == first.horizon_deg.tobytes()
    # and they are whole again
    assert _run(geoms, tops).cache["tiles_reused"] == 12


def test_switches_turn_it_off(cache_dir, monkeypatch, tmp_path):
    geoms, tops = _town()
    off = _run(geoms, tops, cache=False)
    assert not cache_dir.exists() and off.cache["enabled"] is False
    monkeypatch.setenv(_cache.ENV_OFF, "1")
    env_off = _run(geoms, tops, cache=tmp_path / "elsewhere")
    assert env_off.cache["enabled"] is False and "GIS_PLANNER_NO_CACHE" in env_off.cache["reason"]
    assert not cache_dir.exists() and not (tmp_path / "elsewhere").exists()
    monkeypatch.setenv(_cache.ENV_OFF, "0")
    on = _run(geoms, tops, cache=tmp_path / "elsewhere")
    assert on.cache["enabled"] and on.cache["folder"] == str(tmp_path / "elsewhere")
    assert len(list((tmp_path / "elsewhere").glob("*.bin"))) == 12


def test_default_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(_cache.ENV_DIR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert horizon.cache_folder() == tmp_path / "xdg" / "gis-planner" / "horizons"
    monkeypatch.setenv(_cache.ENV_DIR, str(tmp_path / "mine"))
    assert horizon.cache_folder() == tmp_path / "mine" / "horizons"


def test_size_cap_removes_the_files_used_longest_ago(tmp_path):
    store = _cache.ArrayCache(tmp_path, max_bytes=3000)
    keys = [f"{i:032x}" for i in range(4)]
    for i, key in enumerate(keys):
        assert store.put(key, [np.full(200, i, dtype=np.float32)])  # 800 B + header each
        path = tmp_path / f"{key}.bin"
        import os
        os.utime(path, (1000 + i, 1000 + i))
    layout = [((200,), np.float32)]
    assert store.get(keys[0], layout) is not None  # read: used now
    kept = store.trim()
    assert kept <= 3000
    names = {p.stem for p in tmp_path.glob("*.bin")}
    assert keys[0] in names and keys[1] not in names and keys[3] in names
    assert store.get(keys[1], layout) is None
    assert store.get(keys[0], [((100,), np.float32)]) is None  # another layout: ignored


def test_unwritable_folder_is_not_an_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    geoms, tops = _town()
    rh = _run(geoms, tops, cache=blocker / "horizons")
    assert rh.cache["files_not_written"] == 12 and rh.cache["tiles_computed"] == 12


def test_hashing_is_cheap_against_the_march(cache_dir):
    """The key of a tile covers its obstacles: a building outside every tile's reach changes
    no key (the digest is of the edges near the tile, not of the whole layer)."""
    geoms, tops = _town()
    _run(geoms, tops)
    far = np.append(geoms, shapely.box(5000, 5000, 5010, 5010))
    rh = horizon.roof_horizons(geoms, roof_tops=tops, obstacles=far,
                               obstacle_tops=np.append(tops, 50.0), **KW)
    assert rh.cache["tiles_reused"] == 12


def test_demo_run_twice_gives_the_same_outputs(demo_run, tmp_path):
    """The shared demo run computed its tiles (in this session's cache folder): a second run
    reuses every one and writes the same outputs."""
    import json
    import os

    import pandas as pd
    import pyogrio

    from gis import pipeline

    if _cache.disabled_by_env():
        pytest.skip("GIS_PLANNER_NO_CACHE is set")
    ctx, first = demo_run
    out = tmp_path / "again"
    pipeline.run(ctx.cfg.path, out_dir=out, offline=False)
    record = json.loads((out / "run.json").read_text(encoding="utf-8"))["settings"]
    cached = record["horizon_cache"]
    assert cached["enabled"] and cached["folder"] == os.path.join(
        os.environ[_cache.ENV_DIR], "horizons")
    assert cached["tiles_computed"] == 0 and cached["tiles_reused"] >= 1
    compared = 0
    for path in sorted(first.rglob("*")):
        other = out / path.relative_to(first)
        if path.suffix in (".csv", ".json") and path.name != "run.json":
            assert other.read_bytes() == path.read_bytes(), path.name
            compared += 1
        elif path.suffix == ".gpkg":
            for layer, _ in pyogrio.list_layers(path):
                if layer == "layer_styles":  # the QGIS style names the run
                    continue
                a = pyogrio.read_dataframe(path, layer=layer)
                b = pyogrio.read_dataframe(other, layer=layer)
                if "geometry" in a.columns:
                    assert (a.geometry.to_wkb().values == b.geometry.to_wkb().values).all()
                    a, b = a.drop(columns="geometry"), b.drop(columns="geometry")
                pd.testing.assert_frame_equal(pd.DataFrame(a), pd.DataFrame(b), check_exact=True)
            compared += 1
    assert compared >= 10


def _write_dsm(path, tower_m: float) -> None:
    """A 400 m × 300 m DSM at 2 m: ground 0 m, a roof of 6 m at (100–140, 100–140) and a tower
    ``tower_m`` high at (160–180, 100–140), EPSG:4548 near Tianjin."""
    import rasterio
    from rasterio.transform import from_origin

    z = np.zeros((150, 200), dtype=np.float32)
    z[80:100, 50:70] = 6.0  # rows from the north: y = 300 − 2 r
    z[80:100, 80:90] = tower_m
    with rasterio.open(path, "w", driver="GTiff", width=200, height=150, count=1,
                       dtype="float32", crs="EPSG:4548",
                       transform=from_origin(534000.0, 4331300.0, 2.0, 2.0)) as dst:
        dst.write(z, 1)


def test_dsm_content_is_in_the_key(cache_dir, tmp_path):
    dsm = tmp_path / "dsm.tif"
    _write_dsm(dsm, 20.0)
    roof = [shapely.box(534100.0, 4331100.0, 534140.0, 4331140.0)]
    kw = {"dsm": dsm, "crs": "EPSG:4548", "tile_m": 200.0, "max_distance_m": 100.0,
          "sectors": 36, "spacing_m": 5.0}
    first = horizon.roof_horizons(roof, **kw)
    again = horizon.roof_horizons(roof, **kw)
    assert (first.cache["tiles_computed"], again.cache["tiles_reused"]) == (1, 1)
    assert again.horizon_deg.tobytes() == first.horizon_deg.tobytes()
    assert again.z.tobytes() == first.z.tobytes() and np.allclose(first.z, 6.25)
    _write_dsm(dsm, 40.0)  # the same file, a taller tower
    taller = horizon.roof_horizons(roof, **kw)
    assert taller.cache["tiles_computed"] == 1
    plain = horizon.roof_horizons(roof, cache=False, **kw)
    assert taller.horizon_deg.tobytes() == plain.horizon_deg.tobytes()
    assert taller.horizon_deg.max() > first.horizon_deg.max() > 0  # the tower to the east


def test_pv_switch(cache_dir, monkeypatch):
    """``[pv] horizon_cache``: checked like every PV parameter, kept out of the parameters
    recorded with the results, and obeyed by the shading."""
    import dataclasses

    import geopandas as gpd
    import pandas as pd

    from gis import rooftop
    from gis._errors import InputError

    off = rooftop.pv_params(horizon_cache=False)
    assert off.horizon_cache is False and rooftop.pv_params().horizon_cache is True
    assert dataclasses.asdict(off) == dataclasses.asdict(rooftop.pv_params())
    assert dataclasses.replace(off, horizon_distance_m=100.0).horizon_cache is False
    with pytest.raises(InputError, match="pv.horizon_cache"):
        rooftop.pv_params(horizon_cache="no")
    geoms, tops = _town()
    buildings = gpd.GeoDataFrame({"height": tops, "category": "industrial"},
                                 geometry=shapely.transform(geoms, lambda c: c + [534000,
                                                                                  4331000]),
                                 crs="EPSG:4548")
    yields = pd.DataFrame({"roof_type": ["flat"], "tilt": [25.0], "azimuth": [180.0],
                           "specific_yield_kwh_kwp": [1300.0]})
    before = _cache.counts()
    a = rooftop.pv_potential(buildings, params=off, known_yields=yields)
    assert not cache_dir.exists()
    assert horizon.cache_record(before, on=False)["reason"] == "[pv] horizon_cache = false"
    b = rooftop.pv_potential(buildings, params=rooftop.pv_params(), known_yields=yields)
    c = rooftop.pv_potential(buildings, params=rooftop.pv_params(), known_yields=yields)
    assert len(list(cache_dir.glob("*.bin"))) >= 1
    record = horizon.cache_record(before)
    assert record["enabled"] and record["tiles_reused"] == record["tiles_computed"] // 2 >= 1
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(b, c)
    assert (a["shading_factor"] < 1).any()


def test_tiles_marching_in_a_worker_give_the_horizons_of_one_after_the_other(cache_dir,
                                                                             monkeypatch):
    # 12 tiles: each march runs in the worker thread while the next tile is prepared here and
    # the one before is stored; the horizons, eyes and cached files are those of tiles marched
    # one after the other in this thread
    import threading

    geoms, tops = _town()
    where = []
    march = horizon._tile_march

    def noted(job, surface):
        where.append(threading.current_thread().name)
        return march(job, surface)

    monkeypatch.setattr(horizon, "_tile_march", noted)
    side = _run(geoms, tops, cache=False)
    in_worker = [name.startswith("gis-march") for name in where]
    monkeypatch.setattr(horizon._TileMarch, "_concurrent", staticmethod(lambda: False))
    where.clear()
    here = _run(geoms, tops, cache=False)
    assert len(where) == 12 and not any(name.startswith("gis-march") for name in where)
    assert np.array_equal(side.horizon_deg, here.horizon_deg) and side.horizon_deg.any()
    assert np.array_equal(side.z, here.z) and np.array_equal(side.owner, here.owner)
    try:
        layer = numba.threading_layer()
    except ValueError:
        layer = None
    # with a thread-safe layer every march ran in the worker, else all here
    assert in_worker == [layer in ("omp", "tbb")] * 12

"""Roof planes from a surface model: analytic gable, hip, mono-pitch and flat roofs."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from rasterio.transform import from_origin

from gis import planes as gp
from gis import rooftop

X0, Y0 = 534000.0, 4331000.0      # south-west corner of the scene (EPSG:4548, Tianjin)
WIDTH_M, HEIGHT_M = 100.0, 70.0
T30 = math.tan(math.radians(30))


def _ground(x, y):
    """Gently sloping open ground [m]."""
    return 3.0 + 0.01 * (x - X0) + 0.005 * (y - Y0)


def _scene():
    """Footprints, their roof surfaces z(x, y) and the planes each must give.

    Expected planes: (tilt [°], azimuth [°], sloped area [m²]); azimuth None for flat roofs.
    """
    def box(x, y, w, h):
        return shapely.box(X0 + x, Y0 + y, X0 + x + w, Y0 + y + h)

    def cos(t):
        return math.cos(math.radians(t))

    base = 3.0 + 8.0  # eaves well above the ground
    mono_t, mono_az = 20.0, 150.0
    ux, uy = math.sin(math.radians(mono_az)), math.cos(math.radians(mono_az))

    def gable(x, y):  # 20 m × 10 m, ridge east-west along y = 15
        return base + T30 * (5 - np.abs(y - (Y0 + 15)))

    def hip(x, y):    # 20 m × 12 m, every plane at 30°
        d = np.minimum.reduce([x - (X0 + 40), X0 + 60 - x, y - (Y0 + 10), Y0 + 22 - y])
        return base + T30 * d

    def mono(x, y):   # 12 m × 10 m, one plane facing 150°
        return base + 2 - math.tan(math.radians(mono_t)) * ((x - (X0 + 76)) * ux
                                                             + (y - (Y0 + 15)) * uy)

    def flat(x, y):
        return np.full_like(x, 18.0)

    def tower(x, y):
        return np.full_like(x, 45.0)

    def shed(x, y):
        return np.full_like(x, 6.0)

    buildings = [
        ("G", box(10, 10, 20, 10), gable, [(30, 180, 100 / cos(30)), (30, 0, 100 / cos(30))]),
        ("H", box(40, 10, 20, 12), hip, [(30, 180, 84 / cos(30)), (30, 0, 84 / cos(30)),
                                         (30, 90, 36 / cos(30)), (30, 270, 36 / cos(30))]),
        ("M", box(70, 10, 12, 10), mono, [(mono_t, mono_az, 120 / cos(mono_t))]),
        ("F", box(10, 40, 30, 20), flat, [(0, None, 600.0)]),
        ("T", box(50, 40, 15, 15), tower, [(0, None, 225.0)]),
        ("S", box(90, 10, 2, 3), shed, []),
    ]
    return buildings


def _write_dsm(path: Path, res: float, *, noise: float = 0.0, tree: bool = True) -> Path:
    nx, ny = int(round(WIDTH_M / res)), int(round(HEIGHT_M / res))
    x = X0 + (np.arange(nx) + 0.5) * res
    y = Y0 + HEIGHT_M - (np.arange(ny) + 0.5) * res
    xx, yy = np.meshgrid(x, y)
    z = _ground(xx, yy)
    for _, geom, surface, _ in _scene():
        inside = shapely.contains_xy(geom, xx, yy)
        z = np.where(inside, surface(xx, yy), z)
    if tree:  # a tree crown in the open beside the gable: a DSM holds trees too
        r = np.hypot(xx - (X0 + 35), yy - (Y0 + 5))
        z = np.where(r < 3, np.maximum(z, _ground(xx, yy) + 9 - 2 * r), z)
    if noise:
        z = z + np.random.default_rng(13).normal(0, noise, z.shape)
    with rasterio.open(path, "w", driver="GTiff", width=nx, height=ny, count=1, dtype="float32",
                       crs="EPSG:4548", nodata=-9999,
                       transform=from_origin(X0, Y0 + HEIGHT_M, res, res)) as dst:
        dst.write(z.astype("float32"), 1)
    return path


def _footprints() -> gpd.GeoDataFrame:
    scene = _scene()
    return gpd.GeoDataFrame({"id": [b[0] for b in scene]}, geometry=[b[1] for b in scene],
                            crs="EPSG:4548")


def _angle_diff(a, b):
    return abs((a - b + 180) % 360 - 180)


def _assert_planes(found: gpd.GeoDataFrame):
    for i, (bid, _, _, expected) in enumerate(_scene()):
        got = found[found["building"] == i]
        assert len(got) == len(expected), (bid, got[["tilt", "azimuth", "area_m2"]])
        for tilt, azimuth, area in expected:
            if azimuth is None:
                row = got.iloc[0]
                assert row["tilt"] == 0 and np.isnan(row["azimuth"]), bid
            else:
                row = got.iloc[int(np.argmin(_angle_diff(got["azimuth"].to_numpy(), azimuth)))]
                assert _angle_diff(row["azimuth"], azimuth) <= 10, (bid, row)
            assert abs(row["tilt"] - tilt) <= 3, (bid, row)
            assert row["area_m2"] == pytest.approx(area, rel=0.10), (bid, row)
            # the outline is clipped to the footprint and covers the plane's plan area
            assert shapely.within(row.geometry, _scene()[i][1].buffer(1e-6))
            plan = row["area_m2"] * math.cos(math.radians(row["tilt"]))
            # (the outline follows the pixels; the area shares the pixels a crease cuts)
            assert row.geometry.area == pytest.approx(plan, rel=0.10)


@pytest.mark.parametrize("res", [0.5, 1.0])
def test_planes_of_analytic_roofs(tmp_path, res):
    dsm = _write_dsm(tmp_path / "dsm.tif", res)
    found = gp.segment_planes(_footprints().geometry, dsm)
    _assert_planes(found)
    # plane ids run 1.. per building, largest first
    for _, group in found.groupby("building"):
        assert group["plane_id"].tolist() == list(range(1, len(group) + 1))
        assert group["area_m2"].round(1).is_monotonic_decreasing


@pytest.mark.parametrize(("res", "rotation"), [(0.5, 37.0), (1.0, 45.0)])
def test_planes_of_rotated_roofs(tmp_path, res, rotation):
    """A gable (35°, 24 m × 12 m) and a hip roof (25°, 20 m × 14 m) turned off the pixel grid."""
    from shapely import affinity

    a = math.radians(rotation)
    nx, ny = int(round(WIDTH_M / res)), int(round(HEIGHT_M / res))
    xx, yy = np.meshgrid(X0 + (np.arange(nx) + 0.5) * res,
                         Y0 + HEIGHT_M - (np.arange(ny) + 0.5) * res)
    z = _ground(xx, yy) + np.random.default_rng(3).normal(0, 0.05, xx.shape)
    footprints = []
    for cx, half_u, half_v, tilt, hip in ((30, 12, 6, 35, False), (70, 10, 7, 25, True)):
        cx, cy = X0 + cx, Y0 + 30
        u = (xx - cx) * math.cos(a) + (yy - cy) * math.sin(a)   # along the ridge
        v = -(xx - cx) * math.sin(a) + (yy - cy) * math.cos(a)  # across it
        rise = np.minimum(half_u - np.abs(u), half_v - np.abs(v)) if hip else half_v - np.abs(v)
        inside = (np.abs(u) < half_u) & (np.abs(v) < half_v)
        z = np.where(inside, 11 + math.tan(math.radians(tilt)) * rise, z)
        footprints.append(affinity.rotate(
            shapely.box(cx - half_u, cy - half_v, cx + half_u, cy + half_v), rotation,
            origin=(cx, cy)))
    with rasterio.open(tmp_path / "dsm.tif", "w", driver="GTiff", width=nx, height=ny, count=1,
                       dtype="float32", crs="EPSG:4548", nodata=-9999,
                       transform=from_origin(X0, Y0 + HEIGHT_M, res, res)) as dst:
        dst.write(z.astype("float32"), 1)
    found = gp.segment_planes(gpd.GeoSeries(footprints, crs="EPSG:4548"), tmp_path / "dsm.tif")
    across = (180.0 - rotation) % 360  # the face on the south side of the ridge
    expected = {0: [(35, across, 144), (35, across + 180, 144)],
                1: [(25, across, 91), (25, across + 180, 91),
                    (25, across - 90, 49), (25, across + 90, 49)]}
    for b, planes_ in expected.items():
        got = found[found["building"] == b]
        assert len(got) == len(planes_)
        for tilt, azimuth, plan in planes_:
            row = got.iloc[int(np.argmin(_angle_diff(got["azimuth"].to_numpy(), azimuth)))]
            assert _angle_diff(row["azimuth"], azimuth) <= 10
            assert abs(row["tilt"] - tilt) <= 3
            assert row["area_m2"] == pytest.approx(plan / math.cos(math.radians(tilt)), rel=0.10)


def test_planes_from_a_noisy_dsm(tmp_path):
    """5 cm of noise on every pixel, as in a photogrammetric DSM, moves nothing beyond tolerance."""
    dsm = _write_dsm(tmp_path / "dsm.tif", 0.5, noise=0.05)
    _assert_planes(gp.segment_planes(_footprints().geometry, dsm))


@pytest.mark.parametrize("west_only", [False, True])
def test_bare_ground_raster_on_another_grid(tmp_path, west_only):
    """With [layers.dem] the ground comes from it (2 m pixels here), with the same planes; where
    it has no data (a DEM of the western half only), from the ring around each footprint."""
    dsm = _write_dsm(tmp_path / "dsm.tif", 0.5)
    res = 2.0
    nx, ny = int((WIDTH_M / 2 if west_only else WIDTH_M) / res) + 4, int(HEIGHT_M / res) + 4
    x = X0 - 4 + (np.arange(nx) + 0.5) * res
    y = Y0 + HEIGHT_M + 4 - (np.arange(ny) + 0.5) * res
    xx, yy = np.meshgrid(x, y)
    with rasterio.open(tmp_path / "dem.tif", "w", driver="GTiff", width=nx, height=ny, count=1,
                       dtype="float32", crs="EPSG:4548", nodata=-9999,
                       transform=from_origin(X0 - 4, Y0 + HEIGHT_M + 4, res, res)) as dst:
        dst.write(_ground(xx, yy).astype("float32"), 1)
    _assert_planes(gp.segment_planes(_footprints().geometry, dsm, dem=tmp_path / "dem.tif"))


def test_footprints_in_another_crs(tmp_path):
    dsm = _write_dsm(tmp_path / "dsm.tif", 1.0)
    fp = _footprints().to_crs("EPSG:32650")
    found = gp.segment_planes(fp.geometry, dsm)
    assert found.crs == fp.crs
    assert sorted(found.groupby("building").size().tolist()) == [1, 1, 1, 2, 4]


def test_min_plane_area_drops_small_planes(tmp_path):
    dsm = _write_dsm(tmp_path / "dsm.tif", 1.0)
    found = gp.segment_planes(_footprints().geometry, dsm, min_plane_m2=50)
    hip = found[found["building"] == 1]
    # the hip's 41.6 m² triangles go, its 97 m² trapezoids stay
    assert sorted(hip["azimuth"].round(-1).tolist()) == [0, 180]
    assert (found["area_m2"] >= 50).all()


def _yields() -> pd.DataFrame:
    """A known yield per orientation class (no weather needed): 1 300 facing south, less away."""
    tilts = np.arange(0, 91, 5.0)
    azimuths = np.arange(0, 360, 15.0)
    t, a = np.meshgrid(tilts, azimuths)
    t, a = t.ravel(), a.ravel()
    y = 1300 - 4 * t * np.abs(((a - 180) + 180) % 360 - 180) / 180
    rows = [pd.DataFrame({"roof_type": kind, "tilt": t, "azimuth": a,
                          "specific_yield_kwh_kwp": y}) for kind in ("flat", "pitched")]
    return pd.concat(rows, ignore_index=True)


def test_building_rows_sum_their_planes(tmp_path):
    dsm = _write_dsm(tmp_path / "dsm.tif", 0.5)
    buildings = _footprints().assign(category="residential", pv_kw=0.0)
    buildings.loc[buildings["id"] == "T", "pv_kw"] = 5.0
    params = rooftop.pv_params(ground_coverage_ratio=0.5)
    yields = _yields()
    pv = rooftop.pv_potential(buildings, params=params, known_yields=yields)
    new, planes = gp.roof_planes(buildings, pv, dsm, params=params, known_yields=yields)
    assert list(planes.columns[:len(gp.PLANE_COLUMNS)]) == list(gp.PLANE_COLUMNS)
    sums = planes.groupby("building_id")[["area_m2", "usable_area_m2", "capacity_kwp",
                                          "annual_kwh"]].sum()
    by_id = new.set_index("id")
    for col, bcol in (("area_m2", "roof_area_m2"), ("usable_area_m2", "usable_area_m2"),
                      ("capacity_kwp", "capacity_kwp"), ("annual_kwh", "annual_kwh")):
        assert by_id.loc[sums.index, bcol].to_numpy() == pytest.approx(sums[col].to_numpy())
    assert by_id.loc["G", "roof_planes"] == 2 and by_id.loc["H", "roof_planes"] == 4
    # the shed has no plane: it keeps the footprint model's row
    assert by_id.loc["S", "roof_planes"] == 0
    assert by_id.loc["S", "roof_area_m2"] == pv.set_index("id").loc["S", "roof_area_m2"]
    # the gable's north plane is bare, its south plane carries flush modules
    g = planes[planes["building_id"] == "G"]
    g = g.set_index(g["azimuth"].round(-1))
    assert g.loc[0.0, "reason"] == "north-facing" and g.loc[0.0, "capacity_kwp"] == 0
    south = g.loc[180.0]
    assert south["usable_area_m2"] > 0 and south["module_tilt"] == pytest.approx(south["tilt"])
    assert south["capacity_kwp"] == pytest.approx(
        south["usable_area_m2"] * params.module_efficiency)
    # flat roofs carry rows at the preset tilt, half the roof (the set ratio) under modules
    f = planes[planes["building_id"] == "F"].iloc[0]
    assert f["module_tilt"] == params.flat_tilt and f["tilt"] == 0
    assert f["capacity_kwp"] == pytest.approx(f["usable_area_m2"] * 0.5 * params.module_efficiency)
    # existing PV is taken off the tower's plane: 5 kWp less
    before = gp.plane_potential(gp.segment_planes(buildings.geometry, dsm), buildings,
                                params=params, known_yields=yields)
    t_before = before.loc[before["building_id"] == "T", "capacity_kwp"].sum()
    assert t_before == pytest.approx((15 - 1.6) ** 2 * 0.65 * 0.5 * 0.215)
    assert by_id.loc["T", "capacity_kwp"] == pytest.approx(t_before - 5.0)
    t_plane = planes[planes["building_id"] == "T"].iloc[0]
    assert t_plane["usable_area_m2"] == pytest.approx(
        before.loc[before["building_id"] == "T", "usable_area_m2"].sum() * (1 - 5.0 / t_before))
    # building yields and energies agree with their planes
    assert by_id.loc["G", "specific_yield_kwh_kwp"] == pytest.approx(
        south["specific_yield_kwh_kwp"])
    assert by_id.loc["G", "roof_type"] == "pitched" and by_id.loc["F", "roof_type"] == "flat"
    assert new["annual_kwh"].to_numpy() == pytest.approx(
        (new["capacity_kwp"] * new["specific_yield_kwh_kwp"].fillna(0)
         * new["shading_factor"].fillna(1)).to_numpy())


def test_shading_from_an_irradiance_raster_per_plane(tmp_path):
    """Without horizons, a plane's shading factor is the irradiance raster's mean on it."""
    dsm = _write_dsm(tmp_path / "dsm.tif", 1.0)
    tif = tmp_path / "irr.tif"
    grid = np.full((70, 100), 1500.0, dtype="float32")
    grid[:55, :] = 1500.0
    grid[55:60, :] = 900.0  # rows of y 10–15 m: the gable's south half
    with rasterio.open(tif, "w", driver="GTiff", width=100, height=70, count=1, dtype="float32",
                       crs="EPSG:4548", nodata=-1,
                       transform=from_origin(X0, Y0 + HEIGHT_M, 1, 1)) as dst:
        dst.write(grid, 1)
    geo = gp.segment_planes(_footprints().geometry, dsm)
    factors = gp.plane_shading(geo, irradiance=tif)
    g = geo["building"] == 0
    south = g & (geo["azimuth"].round(-1) == 180)
    assert factors[south.to_numpy()] == pytest.approx([0.6], abs=1e-6)
    assert factors[(g & ~south).to_numpy()] == pytest.approx([1.0])
    assert gp.plane_shading(geo).tolist() == [1.0] * len(geo)


RUN_FILE = """\
[project]
name = "planes"
crs = "EPSG:4548"

[layers.buildings]
path = "buildings.gpkg"

[layers.dsm]
path = "dsm.tif"

[pv]
min_plane_m2 = 8

[output]
dir = "out"
offline = true
"""


def test_run_file_with_a_dsm_end_to_end(tmp_path):
    _write_dsm(tmp_path / "dsm.tif", 0.5)
    _footprints().assign(category=["residential", "residential", "industrial", "public",
                                   "commercial", "other"]).to_file(
        tmp_path / "buildings.gpkg", layer="buildings")
    (tmp_path / "run.toml").write_text(RUN_FILE, encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "gis.cli", "run", str(tmp_path / "run.toml")],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # the console entry ends the process at once after a local run: what it printed got out
    assert "scorecard" in done.stdout and done.stdout.rstrip().endswith("index.html)")
    out = tmp_path / "out"
    layer = gpd.read_file(out / "roof_planes.gpkg", layer="roof_planes")
    assert list(layer.columns[:len(gp.PLANE_COLUMNS)]) == list(gp.PLANE_COLUMNS)
    assert sorted(layer.groupby("building_id").size().items()) == [
        ("F", 1), ("G", 2), ("H", 4), ("M", 1), ("T", 1)]
    buildings = gpd.read_file(out / "buildings_pv.gpkg").set_index("id")
    sums = layer.groupby("building_id")[["area_m2", "capacity_kwp", "annual_kwh"]].sum()
    assert buildings.loc[sums.index, "roof_area_m2"].to_numpy() == pytest.approx(
        sums["area_m2"].to_numpy())
    assert buildings.loc[sums.index, "annual_kwh"].to_numpy() == pytest.approx(
        sums["annual_kwh"].to_numpy())
    assert buildings.loc["M", "capacity_kwp"] > 0
    assert 1000 < layer.loc[layer["capacity_kwp"] > 0, "specific_yield_kwh_kwp"].min()
    page = (out / "pv_map.html").read_text(encoding="utf-8")
    assert "屋顶面 roof planes" in page
    record = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert "dsm" in {i["kind"] for i in record["inputs"]}
    assert record["definitions"]["roof_planes"]["flat_tilt_deg"] == 10.0
    assert record["definitions"]["pv"]["min_plane_m2"] == 8.0
    assert "roof_planes.gpkg" in record["outputs"]


def _layers(tmp_path, extra: str):
    from gis.config import load_runfile
    from gis.validate import load_layers

    _footprints().to_file(tmp_path / "buildings.gpkg", layer="buildings")
    (tmp_path / "run.toml").write_text(
        '[project]\ncrs = "EPSG:4548"\n[layers.buildings]\npath = "buildings.gpkg"\n' + extra,
        encoding="utf-8")
    return load_layers(load_runfile(tmp_path / "run.toml"))


def test_surface_model_in_centimetres_is_refused(tmp_path):
    dsm = _write_dsm(tmp_path / "dsm.tif", 1.0)
    with rasterio.open(dsm) as src:
        z, profile = src.read(1), src.profile
    with rasterio.open(tmp_path / "cm.tif", "w", **profile) as dst:
        dst.write(z * 1000, 1)
    layers = _layers(tmp_path, '[layers.dsm]\npath = "cm.tif"\n')
    errors = [p for p in layers.problems if p.severity == "error"]
    assert len(errors) == 1 and "not metres" in str(errors[0]) and "cm.tif" in str(errors[0])
    assert "dsm" not in layers.rasters


def test_ground_model_alone_is_kept_and_a_coarse_dsm_warns(tmp_path):
    dsm = _write_dsm(tmp_path / "dsm.tif", 1.0)
    # a bare-ground raster alone is the ground under the footprints × heights shading model
    layers = _layers(tmp_path, '[layers.dem]\npath = "dsm.tif"\n')
    assert "dem" in layers.rasters and not [p for p in layers.problems if "dem" in str(p)]
    with rasterio.open(dsm) as src:
        profile = src.profile
        z = src.read(1, out_shape=(src.height // 4, src.width // 4))
    profile.update(width=z.shape[1], height=z.shape[0],
                   transform=from_origin(X0, Y0 + HEIGHT_M, 4.0, 4.0))
    with rasterio.open(tmp_path / "coarse.tif", "w", **profile) as dst:
        dst.write(z, 1)
    layers = _layers(tmp_path, '[layers.dsm]\npath = "coarse.tif"\n')
    coarse = [p for p in layers.problems if "too coarse" in str(p)]
    assert [p.severity for p in coarse] == ["warning"] and "dsm" in layers.rasters


def test_planes_on_the_pv_map_are_one_layer_with_escaped_text(tmp_path):
    import re

    from gis import maps

    dsm = _write_dsm(tmp_path / "dsm.tif", 1.0)
    buildings = _footprints().assign(category="public", pv_kw=0.0)
    buildings.loc[0, "id"] = "<b>G</b>"
    params = rooftop.pv_params(ground_coverage_ratio=0.5)
    pv = rooftop.pv_potential(buildings, params=params, known_yields=_yields())
    pv, planes = gp.roof_planes(buildings, pv, dsm, params=params, known_yields=_yields())
    without = maps.page_features(maps.render_map(maps.pv_map(pv, offline=True)))
    page = maps.render_map(maps.pv_map(pv, offline=True, roof_planes=planes))
    assert maps.page_features(page) == without + len(planes) == without + 9
    assert page.count("屋顶面 roof planes (DSM)") == 1
    assert "<b>G</b>" not in page
    feats = [f for m in re.finditer(r"_add\((\{.*?\})\);\n", page)
             for f in json.loads(m.group(1))["features"]]
    plane_ids = [f["properties"]["i"] for f in feats if "p" in f["properties"]]
    assert plane_ids.count("&lt;b&gt;G&lt;/b&gt;") == 2 and len(plane_ids) == 9


def test_outsized_and_outside_footprints_get_no_planes(tmp_path):
    """A 2 km footprint (a broken geometry) and one beyond the DSM: no planes, no huge window."""
    dsm = _write_dsm(tmp_path / "dsm.tif", 1.0)
    fp = _footprints().geometry
    extra = gpd.GeoSeries([shapely.box(X0 - 1000, Y0, X0 + 1000, Y0 + 30),
                           shapely.box(X0 + 500, Y0 + 500, X0 + 520, Y0 + 510), None],
                          crs=fp.crs)
    found = gp.segment_planes(pd.concat([fp, extra], ignore_index=True), dsm)
    assert sorted(found["building"].unique().tolist()) == [0, 1, 2, 3, 4]


def test_a_surface_model_given_as_the_ground_warns(tmp_path):
    """[layers.dem] pointing at the DSM itself leaves no roof above the ground: one warning."""
    dsm = _write_dsm(tmp_path / "dsm.tif", 1.0)
    buildings = _footprints()
    params = rooftop.pv_params(ground_coverage_ratio=0.5)
    pv = rooftop.pv_potential(buildings, params=params, known_yields=_yields())
    good, _ = gp.roof_planes(buildings, pv, dsm, params=params, known_yields=_yields())
    assert gp.coverage_problems(good, dsm) == []
    bad, planes = gp.roof_planes(buildings, pv, dsm, dem=dsm, params=params,
                                 known_yields=_yields())
    assert planes.empty and (bad["roof_planes"] == 0).all()
    [problem] = gp.coverage_problems(bad, dsm, dem=dsm)
    assert problem.severity == "warning"
    assert "0 of 5 buildings" in str(problem) and "bare ground" in str(problem)


# ---------------------------------------------------------------------------------------------
# Shading of planes by the DSM's horizons

BLOCK_TOP_M = 16.0


def _shade_scene(*, block: bool = True):
    """Flat ground at 0 m; gable A (ridge east-west, eaves 8 m) 12 m north of a 16 m block B;
    gable D (ridge north-south) 17 m north of it, 60 m east of A.  Footprint, surface z(x, y)."""
    def gable_ew(x, y):
        return 8.0 + T30 * (5 - np.abs(y - (Y0 + 35)))

    def gable_ns(x, y):
        return 8.0 + T30 * (5 - np.abs(x - (X0 + 105)))

    def block_top(x, y):
        return np.full_like(x, BLOCK_TOP_M)

    scene = [("A", shapely.box(X0 + 20, Y0 + 30, X0 + 40, Y0 + 40), gable_ew)]
    if block:  # (without the block, D would still see A's ridge 1.6° high across 60 m)
        scene += [("D", shapely.box(X0 + 100, Y0 + 35, X0 + 110, Y0 + 55), gable_ns),
                  ("B", shapely.box(X0 + 15, Y0 + 10, X0 + 125, Y0 + 18), block_top)]
    return scene


def _write_shade_dsm(path: Path, scene, res: float = 0.5) -> Path:
    width, height = 140.0, 70.0
    nx, ny = int(width / res), int(height / res)
    xx, yy = np.meshgrid(X0 + (np.arange(nx) + 0.5) * res,
                         Y0 + height - (np.arange(ny) + 0.5) * res)
    z = np.zeros_like(xx)
    for _, geom, surface in scene:
        z = np.where(shapely.contains_xy(geom, xx, yy), surface(xx, yy), z)
    with rasterio.open(path, "w", driver="GTiff", width=nx, height=ny, count=1, dtype="float32",
                       crs="EPSG:4548", transform=from_origin(X0, Y0 + height, res, res)) as dst:
        dst.write(z.astype("float32"), 1)
    return path


@pytest.fixture(scope="module")
def shade_weather():
    from gis import solar

    return solar.climate_model(39.1, 117.4)


def _shade_run(tmp_path, weather, *, block=True, **overrides):
    scene = _shade_scene(block=block)
    dsm = _write_shade_dsm(tmp_path / "dsm.tif", scene)
    buildings = gpd.GeoDataFrame({"id": [s[0] for s in scene], "category": "residential",
                                  "pv_kw": 0.0}, geometry=[s[1] for s in scene], crs="EPSG:4548")
    params = rooftop.pv_params(shading_grid_m=2.0, shading_max_points=64, **overrides)
    pv = rooftop.pv_potential(buildings, params=params, weather=weather, dsm=dsm)
    return gp.roof_planes(buildings, pv, dsm, params=params, weather=weather)


def _plane(planes, building, azimuth):
    rows = planes[planes["building_id"] == building]
    return rows.iloc[int(np.argmin(_angle_diff(rows["azimuth"].to_numpy(), azimuth)))]


@pytest.fixture(scope="module")
def exact_south_a(shade_weather):
    """Shading factors of the sample points of gable A's south plane by an exact ray casting of
    the sun against block B (tests/test_shading.py), on hand-placed points: the 2 m grid inside
    the plane set back 0.8 m from its edges, 0.25 m above the analytic roof.  Rows y = 31, 33."""
    from test_shading import exact_factor

    xs, ys = np.meshgrid(np.arange(21.0, 40.0, 2.0), [31.0, 33.0])
    xs, ys = X0 + xs.ravel(), Y0 + ys.ravel()
    zs = 8.0 + T30 * (5 - np.abs(ys - (Y0 + 35))) + 0.25
    block = [shapely.box(X0 + 15, Y0 + 10, X0 + 125, Y0 + 18)]
    return np.array([exact_factor(x, y, z, block, [BLOCK_TOP_M], 30.0, 180.0, shade_weather)
                     for x, y, z in zip(xs, ys, zs, strict=True)])


def test_planes_shaded_by_a_block_match_an_exact_ray_casting(tmp_path, shade_weather,
                                                             exact_south_a):
    pv, planes = _shade_run(tmp_path, shade_weather)
    assert set(planes["shading_source"]) == {"dsm"}
    south = _plane(planes, "A", 180)
    exact = exact_south_a
    assert exact.min() >= 0.7  # every point usable: the plane's factor is their mean
    assert south["shading_factor"] < 0.95
    assert south["shading_factor"] == pytest.approx(exact.mean(), abs=0.03)
    assert south["reason"] == "" and south["capacity_kwp"] > 0
    # the building rows: the capacity-weighted mean of their planes (weights capacity × yield:
    # energy ÷ unshaded energy), their source, unshaded energy and loss
    for bid in ("A", "D"):
        p = planes[planes["building_id"] == bid]
        w = p["capacity_kwp"] * p["specific_yield_kwh_kwp"].fillna(0)
        row = pv.set_index("id").loc[bid]
        assert row["shading_factor"] == pytest.approx((w * p["shading_factor"]).sum() / w.sum())
        assert row["shading_source"] == "dsm"
        assert row["unshaded_kwh"] == pytest.approx(w.sum())
        assert row["shading_loss_kwh"] == pytest.approx(row["unshaded_kwh"] - row["annual_kwh"])
        assert row["shading_loss_kwh"] > 0
    d = planes[planes["building_id"] == "D"]
    assert (d["capacity_kwp"] > 0).all() and (d["shading_factor"] < 1).all()
    # the block's own flat roof sees nothing higher: exactly 1
    assert planes.loc[planes["building_id"] == "B", "shading_factor"].tolist() == [1.0]


def test_shaded_points_take_their_share_of_the_plane(tmp_path, shade_weather, exact_south_a):
    """Row y = 31 of A's south plane (exact factors 0.84–0.88) falls below 0.91, row y = 33
    (0.95–0.97) stays: half the plane is usable, its factor the kept row's mean."""
    exact = exact_south_a
    assert exact[:10].max() < 0.89 and exact[10:].min() > 0.93
    free = _plane(_shade_run(tmp_path, shade_weather, shading="none")[1], "A", 180)
    assert free["shading_factor"] == 1.0 and free["shading_source"] == "none"
    half = _plane(_shade_run(tmp_path, shade_weather, min_shading_factor=0.91)[1], "A", 180)
    assert half["usable_area_m2"] == pytest.approx(free["usable_area_m2"] / 2)
    assert half["reason"] == ""
    assert half["shading_factor"] == pytest.approx(exact[10:].mean(), abs=0.03)
    # every point below: the plane is "shaded", no PV, and still reports its factor
    none = _plane(_shade_run(tmp_path, shade_weather, min_shading_factor=0.99)[1], "A", 180)
    assert none["reason"] == "shaded" and none["usable_area_m2"] == 0
    assert none["shading_factor"] == pytest.approx(exact.mean(), abs=0.03)


def test_isolated_planes_are_unshaded(tmp_path, shade_weather):
    """A gable alone: nothing stands above either plane (the roof's own ridge is behind its
    planes, its own cells are not obstacles): both factors exactly 1 with the default search
    distance of 1 000 m."""
    pv, planes = _shade_run(tmp_path, shade_weather, block=False)
    assert len(planes) == 2 and planes["shading_factor"].tolist() == [1.0, 1.0]
    assert set(planes["shading_source"]) == {"dsm"}
    assert pv["shading_factor"].tolist() == [1.0] and pv["shading_loss_kwh"].tolist() == [0.0]

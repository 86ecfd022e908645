"""Shading by neighbours: horizons from a surface model, pvlib's sky, and the roofs' figures.

Scenes whose answer is known by hand (a long wall, an isolated roof, a courtyard) and agreement
with an exact ray casting of the sun against the building prisms (shapely), independent of the
raster, the sectors and the look-up tables of :mod:`gis.horizon`.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pvlib
import pytest
import shapely

from gis import horizon, rooftop, solar

CRS = "EPSG:4548"
X0, Y0 = 534_000.0, 4_331_000.0  # whole metres: the 1 m cells' edges fall on them


@pytest.fixture(scope="module")
def weather():
    return solar.climate_model(39.1, 117.4)


def layer(rows):
    frame = pd.DataFrame(rows)
    geoms = frame.pop("geometry")
    return gpd.GeoDataFrame(frame, geometry=list(geoms), crs=CRS)


def box(x, y, w, h):
    return shapely.box(X0 + x, Y0 + y, X0 + x + w, Y0 + y + h)


# ---------------------------------------------------------------------------------------------
# Exact references


def exact_blocked(px, py, pz, elevation, azimuth, prisms, tops):
    """Sun rays (one per hour) from a point against prisms, with shapely: True where blocked.

    A ray leaving the point towards the sun enters a prism's footprint at the horizontal
    distance ``t`` nearest the point along it (``shapely.distance`` to the ray's part inside the
    footprint); it is blocked when it is still below the prism's top there.
    """
    tan_e = np.tan(np.radians(elevation))
    reach = np.maximum((max(tops) - pz) / np.maximum(tan_e, 1e-9), 0.0)
    reach = np.minimum(reach, 5000.0)
    az = np.radians(azimuth)
    ends = np.stack([px + reach * np.sin(az), py + reach * np.cos(az)], axis=1)
    rays = shapely.linestrings(np.stack([np.broadcast_to([px, py], ends.shape), ends], axis=1))
    origin = shapely.Point(px, py)
    blocked = np.zeros(len(elevation), dtype=bool)
    for prism, top in zip(prisms, tops, strict=True):  # a handful of prisms in a test scene
        inside = shapely.intersection(rays, prism)
        hit = ~shapely.is_empty(inside)
        t = shapely.distance(origin, inside[hit])
        blocked[hit] |= pz + t * tan_e[hit] < top
    return blocked


def exact_svf(px, py, pz, prisms, tops, tilt, azimuth, n_az=360, n_el=90):
    """Sky-view factor of a tilted plane by ray casting a grid of sky directions."""
    el = (np.arange(n_el) + 0.5) * 90.0 / n_el
    az = (np.arange(n_az) + 0.5) * 360.0 / n_az
    ee, aa = np.meshgrid(el, az, indexing="ij")
    blocked = exact_blocked(px, py, pz, ee.ravel(), aa.ravel(), prisms, tops).reshape(ee.shape)
    e, a, b = np.radians(ee), np.radians(aa), math.radians(tilt)
    cos_inc = np.sin(e) * math.cos(b) + np.cos(e) * math.sin(b) * np.cos(a - math.radians(azimuth))
    w = np.clip(cos_inc, 0, None) * np.cos(e)
    return float((w * ~blocked).sum() / w.sum())


def exact_factor(px, py, pz, prisms, tops, tilt, azimuth, weather):
    """Annual POA with exact shading ÷ without, pvlib Perez computed here from the weather."""
    data, meta = weather
    times = data.index + pd.Timedelta(minutes=meta["sun_offset_min"])
    sun = pvlib.solarposition.get_solarposition(times, meta["latitude"], meta["longitude"],
                                                temperature=float(data["temp_air"].mean()))
    up = sun["apparent_zenith"].to_numpy() < 90
    zen, saz = sun["apparent_zenith"].to_numpy()[up], sun["azimuth"].to_numpy()[up]
    dni, ghi, dhi = (data[c].to_numpy()[up] for c in ("dni", "ghi", "dhi"))
    extra = pvlib.irradiance.get_extra_radiation(times[up]).to_numpy()
    am = pvlib.atmosphere.get_relative_airmass(zen)
    beam = pvlib.irradiance.beam_component(tilt, azimuth, zen, saz, dni)
    sky = pvlib.irradiance.perez(tilt, azimuth, dhi, dni, extra, zen, saz, am,
                                 return_components=True)
    ground = pvlib.irradiance.get_ground_diffuse(tilt, ghi, albedo=0.2)
    blocked = exact_blocked(px, py, pz, 90 - zen, saz, prisms, tops)
    svf = exact_svf(px, py, pz, prisms, tops, tilt, azimuth)
    direct = np.nan_to_num(beam + sky["poa_circumsolar"])
    diffuse = np.nan_to_num(sky["poa_isotropic"] + sky["poa_horizon"])
    shaded = (direct * ~blocked).sum() + diffuse.sum() * svf + ground.sum()
    return float(shaded / (direct.sum() + diffuse.sum() + ground.sum()))


# ---------------------------------------------------------------------------------------------
# Known answers


def test_long_wall_south_blocks_below_atan_h_over_d(weather):
    # one sample point at (2.5, 2.5) on a 3 m roof; a 400 m wall whose north face lies
    # d = 20.5 m south of it, rising H = 15 m above the eye (3 m roof + 0.25 m)
    roof = box(0, 0, 5, 5)
    wall = box(-200, -19, 400, 1)
    d, h = 20.5, 15.0
    rh = horizon.roof_horizons([roof], roof_tops=np.array([3.0]), obstacles=[roof, wall],
                               obstacle_tops=np.array([3.0, 3.25 + h]), sectors=36,
                               max_distance_m=500.0, spacing_m=5.0)
    assert rh.x.tolist() == [X0 + 2.5] and rh.y.tolist() == [Y0 + 2.5]
    hz = rh.horizon_deg[0].astype(float)
    assert hz[18] == pytest.approx(math.degrees(math.atan(h / d)), abs=1e-4)  # due south
    # within the wall's azimuth extent the wall is seen at atan(H cos Δφ / d) (the face is
    # d / cos Δφ away along the ray), up to a cell of the raster; outside it, nothing
    az = horizon.sector_azimuths(36)
    delta = np.radians(az - 180.0)
    extent = np.degrees(np.arctan2(200.0, d))
    inside = np.abs(az - 180.0) < extent - 5
    expected = np.degrees(np.arctan(h * np.cos(delta[inside]) / d))
    assert np.abs(hz[inside] - expected).max() < 1.5
    assert (hz[np.abs(az - 180.0) > extent + 5] == 0).all()

    # beam lost exactly in the hours whose sun stands below the horizon of its sector
    table = horizon.sky_table(weather, [25.0], [180.0], sectors=36)
    parts = solar.poa_components(*weather, [25.0], [180.0])
    sector = np.mod(np.round(parts["sun_azimuth"] / 10.0), 36).astype(int)
    visible = parts["sun_elevation"] > hz[sector]
    direct = (parts["beam"] + parts["circumsolar"])[0]
    got = horizon.shaded_irradiation(table, np.array([0]), hz[None, :])
    svf = horizon.sky_view_factor(hz[None, :], 25.0, 180.0)
    by_hand = (direct[visible].sum() + (parts["isotropic"] + parts["horizon"])[0].sum() * svf
               + parts["ground"][0].sum())
    assert got[0] == pytest.approx(by_hand[0], rel=1e-12)
    # the hours of the south sector: blocked exactly below atan(H/d)
    south = sector == 18
    lost = south & ~visible
    assert lost.any() and (parts["sun_elevation"][lost] <= math.degrees(math.atan(h / d))).all()
    assert (parts["sun_elevation"][south & visible] > math.degrees(math.atan(h / d))).all()


def test_unshaded_reference_uses_the_dtype_of_computed_horizons():
    # the per-class "no horizon" rows go through the same kernels as computed horizons: with
    # the same dtype the kernels compile once (a second float64 specialisation of the direct
    # and sky kernels cost ≈ 2 s on a first run), and zero is exact in both
    s = horizon.lod1_surface([shapely.box(-10, -30, 10, -20)], np.array([12.0]), (-50, -50, 50, 50))
    h = horizon.horizon_angles(s, np.array([0.0]), np.array([0.0]), np.array([0.0]), sectors=8,
                               max_distance_m=100.0)
    zero = horizon._no_horizon(3, 8)
    assert zero.dtype == h.dtype == np.float32
    assert zero.shape == (3, 8) and not zero.any()


def test_isolated_roof_has_factor_exactly_one(weather):
    b = layer([{"id": "a", "category": "public", "floors": 4, "geometry": box(0, 0, 40, 20)},
               {"id": "p", "category": "rural_residential", "floors": 1, "roof_tilt": 30,
                "geometry": box(0, 500, 12, 8)}])
    pv = rooftop.pv_potential(b, params=rooftop.pv_params(), weather=weather)
    assert pv["shading_source"].tolist() == ["lod1", "lod1"]
    assert pv["shading_factor"].tolist() == [1.0, 1.0]
    assert pv["shading_loss_kwh"].tolist() == [0.0, 0.0]
    assert (pv["annual_kwh"] == pv["unshaded_kwh"]).all()


def test_courtyard_horizon_and_sky_view(weather):
    # a 20 m ring building, 60 m outside, 30 m courtyard; a 3 m pavilion in its middle
    ring = box(-30, -30, 60, 60).difference(box(-15, -15, 30, 30))
    pavilion = box(-5, -5, 10, 10)
    rh = horizon.roof_horizons([pavilion], roof_tops=np.array([3.0]),
                               obstacles=[ring, pavilion], obstacle_tops=np.array([20.0, 3.0]),
                               sectors=36, spacing_m=5.0, inset_m=0.8)
    rise = 20.0 - 3.25
    for k in range(len(rh.x)):
        px, py = rh.x[k] - X0, rh.y[k] - Y0
        hz = rh.horizon_deg[k].astype(float)
        # north, east, south, west: the courtyard's inner faces
        # (the rays sample every half cell: a face is found within half a metre)
        for s, gap in ((0, 15 - py), (9, 15 - px), (18, 15 + py), (27, 15 + px)):
            assert (math.degrees(math.atan(rise / (gap + 0.5))) - 1e-3 <= hz[s]
                    <= math.degrees(math.atan(rise / gap)) + 1e-3)
        assert hz.min() > 25  # walled in on every side
        exact = exact_svf(rh.x[k], rh.y[k], rh.z[k], [ring], [20.0], 0.0, 180.0)
        assert horizon.sky_view_factor(hz[None, :], 0.0, 180.0)[0] == pytest.approx(exact,
                                                                                     abs=0.02)
    # a horizontal plane in a uniform canyon: 1 − sin²(h) of its sky
    assert horizon.sky_view_factor(np.full((1, 36), 30.0), 0.0, 180.0)[0] == pytest.approx(
        0.75, abs=1e-4)
    pv = rooftop.pv_potential(layer([
        {"id": "ring", "category": "public", "height": 20.0, "geometry": ring},
        {"id": "pav", "category": "public", "height": 3.0, "geometry": pavilion}]),
        params=rooftop.pv_params(min_shading_factor=0.0), weather=weather).set_index("id")
    assert pv.loc["pav", "shading_factor"] < 0.6


def _random_city(rng, size_m, top_m, weather, sectors):
    """40 random buildings over ``size_m`` (half of them 3–9 m, the rest up to ``top_m``),
    merged where they touch, horizons of 4 points on every low roof; and the year's sky."""
    n = 40
    cx, cy = rng.uniform(0, size_m, n), rng.uniform(0, size_m, n)
    w, d, ang = rng.uniform(8, 40, n), rng.uniform(8, 25, n), rng.uniform(0, 90, n)
    rect = shapely.box(-w / 2, -d / 2, w / 2, d / 2)
    geoms = np.array([shapely.affinity.translate(shapely.affinity.rotate(r, a), X0 + x, Y0 + y)
                      for r, a, x, y in zip(rect, ang, cx, cy, strict=True)])
    parts = shapely.get_parts(shapely.union_all(geoms))  # merged blocks, as a city's touch
    tops = rng.uniform(3, top_m, len(parts))
    tops[: len(parts) // 2] = rng.uniform(3, 9, len(parts) // 2)  # many low roofs
    low = np.flatnonzero(tops < 9)
    rh = horizon.roof_horizons(parts[low], roof_tops=tops[low], obstacles=parts,
                               obstacle_tops=tops, sectors=sectors, max_points=4)
    sky = solar.poa_components(*weather, [0.0], [180.0])
    sector = np.mod(np.round(sky["sun_azimuth"] / (360.0 / sectors)), sectors).astype(int)
    return parts, tops, rh, sky, sector


def _agreement(rng, parts, tops, rh, sky, sector):
    """Share of the year's hours, and of its beam + circumsolar, that 24 random points of
    ``rh`` classify (sun above or below the horizon) as an exact ray casting does."""
    el, az = sky["sun_elevation"], sky["sun_azimuth"]
    beam = sky["beam"][0] + sky["circumsolar"][0]
    pick = rng.choice(len(rh.x), size=min(24, len(rh.x)), replace=False)
    same = total = 0
    beam_same = beam_total = 0.0
    for k in pick:  # sample points
        engine = el <= rh.horizon_deg[k][sector]
        agree = engine == exact_blocked(rh.x[k], rh.y[k], rh.z[k], el, az, parts, tops)
        same += int(agree.sum())
        total += len(el)
        beam_same += float(beam[agree].sum())
        beam_total += float(beam.sum())
    return same / total, beam_same / beam_total


def test_lod1_horizon_agrees_with_exact_ray_casting(weather):
    # a random block of 40 buildings 3–60 m high; sun-hours of a year at 24 roof points
    rng = np.random.default_rng(3)
    sectors = rooftop.pv_params().horizon_sectors  # the default: 72 sectors of 5°
    hours, _ = _agreement(rng, *_random_city(rng, 300, 60, weather, sectors))
    assert hours >= 0.99


def test_far_horizons_agree_with_exact_ray_casting_weighted_by_the_beam(weather):
    # a wider, taller random city (600 m, up to 90 m): sun-hours classified as an exact ray
    # casting does, and the year's beam + circumsolar on a horizontal roof classified the same
    # way: the search floor (beyond SEARCH_FLOOR_FROM_M, nothing lower than 2°) only changes
    # hours whose sun stands that low (0.99835 of the beam before and after it)
    rng = np.random.default_rng(5)
    hours, beam = _agreement(rng, *_random_city(rng, 600, 90, weather, 72))
    assert hours >= 0.985
    assert beam >= 0.9983


def test_obstacles_below_the_search_floor_are_not_searched():
    # a 40 m deep slab 600 m south of an eye at ground level, seen at 1.5° or at 3°: that far
    # (beyond SEARCH_FLOOR_FROM_M) nothing lower than SEARCH_FLOOR_DEG (2°) is searched (0°);
    # above it the slab is found at its angle, to within the 2 % step of the ray there
    assert horizon.SEARCH_FLOOR_DEG == 2.0 and horizon.SEARCH_FLOOR_FROM_M < 600.0
    d = 600.0
    for angle, expected in ((1.5, 0.0), (3.0, 3.0)):
        top = d * math.tan(math.radians(angle))
        s = horizon.lod1_surface([shapely.box(-300, -d - 40, 300, -d)], np.array([top]),
                                 (-700, -700, 700, 700))
        h = horizon.horizon_angles(s, np.array([0.5]), np.array([0.0]), np.array([0.0]),
                                   sectors=4, max_distance_m=1000.0)[0]
        assert h[[0, 1, 3]].tolist() == [0.0, 0.0, 0.0]  # north, east, west: open
        assert h[2] == pytest.approx(expected, abs=0.07)  # south


def test_low_roofs_north_of_a_tall_slab_match_an_independent_computation(weather):
    # a 60 m slab 100 m long; 10 m × 10 m roofs (3 m high) 15, 30 and 60 m north of it
    slab = box(0, 0, 100, 15)
    rows = [{"id": "slab", "category": "residential", "height": 60.0, "geometry": slab}]
    for gap in (15, 30, 60):
        rows.append({"id": f"r{gap}", "category": "public", "height": 3.0,
                     "roof_type": "flat", "geometry": box(45, 15 + gap, 10, 10)})
    b = layer(rows)
    params = rooftop.pv_params(min_shading_factor=0.0)
    pv = rooftop.pv_potential(b, params=params, weather=weather).set_index("id")
    factors = pv["shading_factor"]
    assert factors["r15"] < factors["r30"] < factors["r60"] < 1.0
    assert factors["r15"] < 0.75
    roofs = b.set_index("id").geometry
    for gap in (15, 30, 60):
        owner, x, y = horizon.roof_points([roofs[f"r{gap}"]], spacing_m=params.shading_grid_m,
                                          inset_m=params.edge_setback_m)
        ref = np.mean([exact_factor(px, py, 3.0 + horizon.POINT_OFFSET_M, [slab], [60.0],
                                    params.flat_tilt, 180.0, weather)
                       for px, py in zip(x, y, strict=True)])
        assert factors[f"r{gap}"] == pytest.approx(ref, abs=0.03)


# ---------------------------------------------------------------------------------------------
# Roofs' figures


def test_shaded_roof_reports_its_factor_and_module_plane(weather):
    # a low roof 4 m north of a 60 m slab: every part under 0.7
    b = layer([
        {"id": "slab", "category": "residential", "height": 60.0, "geometry": box(0, 0, 100, 15)},
        {"id": "low", "category": "public", "height": 3.0, "roof_type": "flat",
         "geometry": box(40, 19, 20, 10)}])
    pv = rooftop.pv_potential(b, weather=weather).set_index("id")
    low = pv.loc["low"]
    assert low["reason"] == "shaded" and low["capacity_kwp"] == 0 and low["annual_kwh"] == 0
    assert 0 < low["shading_factor"] < 0.7
    assert low["module_tilt"] == 25.0 and low["module_azimuth"] == 180.0
    assert low["unshaded_kwh"] > 0 and low["shading_loss_kwh"] == low["unshaded_kwh"]
    # switched off: unshaded
    off = rooftop.pv_potential(b, params=rooftop.pv_params(shading="none"), weather=weather)
    assert off["shading_factor"].tolist() == [1.0, 1.0]
    assert (off["shading_source"] == "none").all()


def test_shaded_part_of_a_roof_is_not_usable(weather):
    # a long roof running north from a tall slab: its southern points are shaded, the
    # northern ones are not; the usable area shrinks by the shaded share
    b = layer([
        {"id": "slab", "category": "residential", "height": 45.0, "geometry": box(0, 0, 60, 12)},
        {"id": "long", "category": "industrial", "height": 6.0, "roof_type": "flat",
         "geometry": box(20, 14, 20, 120)}])
    params = rooftop.pv_params(shading_max_points=200)
    pv = rooftop.pv_potential(b, params=params, weather=weather).set_index("id")
    free = rooftop.pv_potential(b, params=rooftop.pv_params(shading="none"),
                                weather=weather).set_index("id")
    share = pv.loc["long", "usable_area_m2"] / free.loc["long", "usable_area_m2"]
    assert 0.5 < share < 0.95
    assert pv.loc["long", "shading_factor"] >= 0.7  # the kept part
    # the kept share is the share of sample points at or above the threshold
    rh = horizon.roof_horizons([b.geometry.iloc[1]], roof_tops=np.array([6.0]),
                               obstacles=list(b.geometry), obstacle_tops=np.array([45.0, 6.0]),
                               spacing_m=params.shading_grid_m, inset_m=params.edge_setback_m,
                               max_points=200)
    f = horizon.point_shading_factors(rh.horizon_deg, 25.0, 180.0, weather)
    assert share == pytest.approx((f >= 0.7).mean(), rel=1e-9)


def test_dsm_gives_the_lod1_answer(tmp_path, weather):
    import rasterio
    from rasterio.transform import Affine

    slab = box(0, 0, 100, 15)
    roof = box(45, 35, 10, 10)
    surface = horizon.lod1_surface([slab, roof], np.array([60.0, 3.0]),
                                   (X0 - 300, Y0 - 300, X0 + 400, Y0 + 400))
    path = tmp_path / "dsm.tif"
    with rasterio.open(path, "w", driver="GTiff", width=surface.z.shape[1],
                       height=surface.z.shape[0], count=1, dtype="float32", crs=CRS,
                       nodata=-9999, transform=Affine(1, 0, surface.left, 0, -1,
                                                      surface.top)) as dst:
        dst.write(surface.z, 1)
    b = layer([{"id": "slab", "category": "residential", "height": 60.0, "geometry": slab},
               {"id": "r", "category": "public", "height": 3.0, "roof_type": "flat",
                "geometry": roof}])
    params = rooftop.pv_params(min_shading_factor=0.0, horizon_distance_m=300.0)
    lod1 = rooftop.pv_potential(b, params=params, weather=weather).set_index("id")
    dsm = rooftop.pv_potential(b, params=params, weather=weather, dsm=path).set_index("id")
    assert (dsm["shading_source"] == "dsm").all()
    assert dsm.loc["r", "shading_factor"] == pytest.approx(lod1.loc["r", "shading_factor"],
                                                           abs=1e-6)


def test_irradiance_raster_still_wins_where_it_covers(tmp_path, weather):
    import rasterio
    from rasterio.transform import from_origin

    b = layer([
        {"id": "slab", "category": "residential", "height": 60.0, "geometry": box(0, 0, 100, 15)},
        {"id": "under", "category": "public", "height": 3.0, "roof_type": "flat",
         "geometry": box(45, 30, 10, 10)},
        {"id": "outside", "category": "public", "height": 3.0, "roof_type": "flat",
         "geometry": box(3000, 30, 10, 10)}])
    path = tmp_path / "irr.tif"
    with rasterio.open(path, "w", driver="GTiff", width=40, height=40, count=1,
                       dtype="float32", crs=CRS, nodata=-1,
                       transform=from_origin(X0 + 30, Y0 + 55, 1, 1)) as dst:
        dst.write(np.full((40, 40), 1200.0, dtype="float32"), 1)
    pv = rooftop.pv_potential(b, params=rooftop.pv_params(shading_reference_kwh_m2=1500.0),
                              weather=weather, irradiance=path).set_index("id")
    assert pv.loc["under", "shading_source"] == "irradiance"
    assert pv.loc["under", "shading_factor"] == pytest.approx(0.8)
    assert pv.loc["outside", "shading_source"] == "lod1"
    assert pv.loc["outside", "shading_factor"] == 1.0


def test_shading_options_are_checked():
    from gis._errors import InputError

    with pytest.raises(InputError) as err:
        rooftop.pv_params(shading="dsm", horizon_sectors=12, shading_grid_m=0)
    text = str(err.value)
    assert "pv.shading" in text and "pv.horizon_sectors" in text and "pv.shading_grid_m" in text
    assert rooftop.pv_params().min_shading_factor == 0.7
    assert rooftop.pv_params(horizon_sectors=72).horizon_sectors == 72


def test_rollups_carry_the_shading_loss(weather):
    b = layer([
        {"id": "slab", "category": "residential", "street": "A", "height": 60.0,
         "geometry": box(0, 0, 100, 15)},
        {"id": "low", "category": "public", "street": "A", "height": 3.0, "roof_type": "flat",
         "geometry": box(30, 35, 40, 30)},
        {"id": "far", "category": "public", "street": "B", "height": 3.0, "roof_type": "flat",
         "geometry": box(3000, 35, 40, 30)}])
    pv = rooftop.pv_potential(b, params=rooftop.pv_params(min_shading_factor=0.0),
                              weather=weather)
    street = rooftop.pv_rollups(pv)["street"].set_index("street")
    assert street.loc["B", "shading_loss_gwh"] == 0.0
    loss = pv.loc[pv["street"] == "A", "shading_loss_kwh"].sum() / 1e6
    assert street.loc["A", "shading_loss_gwh"] == pytest.approx(loss)
    assert street.loc["A", "unshaded_gwh"] == pytest.approx(
        street.loc["A", "gwh"] + street.loc["A", "shading_loss_gwh"])
    assert 0 < street.loc["A", "shading_loss_share"] < 1


def test_buildings_on_a_dem_stand_on_its_ground(tmp_path, weather):
    import rasterio
    from rasterio.transform import Affine

    # flat ground 12 m above the datum: the same shading as on flat ground at 0 m; a roof on a
    # 30 m mound south of the slab instead rises above its shadow
    path = tmp_path / "dem.tif"
    z = np.full((400, 400), 12.0, dtype="float32")
    with rasterio.open(path, "w", driver="GTiff", width=400, height=400, count=1,
                       dtype="float32", crs=CRS, nodata=-9999,
                       transform=Affine(2, 0, X0 - 300, 0, -2, Y0 + 500)) as dst:
        dst.write(z, 1)
    b = layer([
        {"id": "slab", "category": "residential", "height": 60.0, "geometry": box(0, 0, 100, 15)},
        {"id": "r", "category": "public", "height": 3.0, "roof_type": "flat",
         "geometry": box(45, 30, 10, 10)}])
    params = rooftop.pv_params(min_shading_factor=0.0, horizon_distance_m=300.0)
    flat = rooftop.pv_potential(b, params=params, weather=weather).set_index("id")
    on_dem = rooftop.pv_potential(b, params=params, weather=weather, dem=path).set_index("id")
    assert on_dem.loc["r", "shading_factor"] == pytest.approx(flat.loc["r", "shading_factor"],
                                                              abs=1e-9)
    assert flat.loc["r", "shading_factor"] < 0.7
    z[:238, :] = 70.0  # north of y = 24 m the ground is 70 m: the roof's top (73 m) clears the
    with rasterio.open(path, "r+") as dst:  # slab's (12 + 60 m)
        dst.write(z, 1)
    raised = rooftop.pv_potential(b, params=params, weather=weather, dem=path).set_index("id")
    assert raised.loc["r", "shading_factor"] > 0.95


def test_lod1_burn_in_bands_is_exact_and_prisms_made_once_give_the_same_raster():
    """A 10 m × 20 m box on 1 m cells burns exactly 200 cells; where two boxes overlap across
    the raster's row bands the taller wins; edges made once (``prisms_of``) burn the same
    raster on any window as the footprints themselves."""
    tall = shapely.box(0, 0, 10, 300)     # 300 rows: crosses every band of a 512-row raster
    low = shapely.box(5, 100, 25, 110)
    s = horizon.lod1_surface([shapely.box(40, 40, 50, 60)], np.array([7.0]), (0, 0, 200, 200))
    assert int((s.z == 7.0).sum()) == 200
    geoms, tops = [tall, low], np.array([30.0, 12.0])
    both = horizon.lod1_surface(geoms, tops, (0, 0, 400, 400))
    assert int((both.z == 30.0).sum()) == 3000
    assert int((both.z == 12.0).sum()) == 200 - 50   # its part outside the tall box
    prisms = horizon.prisms_of(geoms, tops)
    for box in [(0, 0, 400, 400), (200, 50, 300, 600), (-300, -300, 20, 120)]:
        a = horizon.lod1_surface(geoms, tops, box)
        b = horizon.lod1_surface(prisms, tops, box)
        assert a.left == b.left and a.top == b.top and np.array_equal(a.z, b.z)


def test_lod1_block_peaks_are_the_highest_cells_of_each_block():
    """Block maxima made as the footprints burn: a block fully covered by a 9 m roof peaks at
    9 m, one half covered at 9 m too, one touched only by a 4 m corner at 4 m, a block stored
    next to a roof that no roof cell reaches at 0 m; over a ground model of 5 m the cells are
    read (a 3 m roof below the ground does not show)."""
    b = horizon.BLOCK
    full = shapely.box(0, 4096 - 2 * b, 2 * b, 4096)        # blocks (0, 0), (0, 1), (1, 0), (1, 1)
    half = shapely.box(4 * b, 4096 - b, 4 * b + b / 2, 4096)  # half of block (0, 4)
    corner = shapely.box(8 * b - 1, 4096 - 1, 8 * b + 1, 4096)  # a cell each of (0, 7), (0, 8)
    prisms = horizon.prisms_of([full, half, corner], np.array([9.0, 9.0, 4.0]))
    blocks = horizon._lod1_blocks(prisms, (0, 0, 4096, 4096))
    assert blocks.peak[0, 0] == blocks.peak[1, 1] == 9.0 and blocks.peak[0, 4] == 9.0
    assert blocks.peak[0, 7] == blocks.peak[0, 8] == 4.0
    assert blocks.index[2, 0] >= 0 and blocks.peak[2, 0] == 0.0  # stored, no cell raised
    assert blocks.index[9, 9] == -1 and blocks.peak[9, 9] == 0.0  # not stored
    z = horizon.lod1_surface(prisms, None, (0, 0, 4096, 4096)).z
    for (br, bc), k in np.ndenumerate(blocks.index):  # every block: its cells' maximum
        if k >= 0:
            assert blocks.peak[br, bc] == z[br * b:(br + 1) * b, bc * b:(bc + 1) * b].max()
    ground = horizon.Surface(z=np.full((4096, 4096), 5.0, dtype=np.float32), left=0.0,
                             top=4096.0, res=1.0)
    low = horizon.prisms_of([full, corner], np.array([3.0, 8.0]))
    over = horizon._lod1_blocks(low, (0, 0, 4096, 4096), ground=ground)
    assert over.peak[0, 0] == 5.0 and over.peak[0, 7] == 8.0 and over.peak[5, 5] == 5.0


def test_edges_of_footprints_with_holes_and_parts_follow_every_ring():
    """Edges of a 10 m square with a 2 m hole (4 + 4 edges), a two-part footprint (4 + 4) and a
    plain box (4): the fast path for footprints without holes gives the ring-by-ring edges."""
    holed = shapely.Polygon([(0, 0), (10, 0), (10, 10), (0, 10)],
                            [[(2, 2), (4, 2), (4, 4), (2, 4)]])
    parts = shapely.MultiPolygon([shapely.box(20, 0, 21, 1), shapely.box(30, 0, 32, 2)])
    plain = shapely.box(40, 0, 45, 5)
    mixed = horizon.prisms_of([holed, parts, plain], np.array([3.0, 4.0, 5.0]))
    assert mixed.start.tolist() == [0, 8, 12, 16, 20]
    assert mixed.heights.tolist() == [3.0, 4.0, 4.0, 5.0]
    simple = horizon.prisms_of([parts, plain], np.array([4.0, 5.0]))  # no holes: fast path
    assert np.array_equal(simple.edges, mixed.edges[8:])
    assert simple.start.tolist() == [0, 4, 8, 12]
    z = horizon.lod1_surface(mixed, None, (0, 0, 50, 12)).z
    assert int((z == 3.0).sum()) == 100 - 4 and int((z == 4.0).sum()) == 1 + 4


def test_sky_floors_change_no_shading_factor(weather):
    """Below :func:`horizon_floors` a sector's horizon changes nothing: a south-facing plane
    tilted 25° sees no sky due north below 25° (and no sun there), and any horizons lowered
    beneath the floors give the same factors to the last digit."""
    tilts, azimuths = [25.0, 30.0, 35.0, 0.0], [180.0, 90.0, 0.0, 180.0]
    table = horizon.sky_table(weather, tilts, azimuths, sectors=72)
    floors = horizon.horizon_floors(table)
    assert floors[0, 0] == 25.0 and floors[0, 36] == 0.0   # due north: the tilt; due south: 0
    assert floors[3].max() == 0.0   # a horizontal plane sees every elevation of every sector
    # a north-facing plane: due south the tilt, 30° off it atan(tan 35° cos 30°) ≈ 31.2°
    assert floors[2, 36] == 35.0 and 31.0 < floors[2, 30] < 31.5
    rng = np.random.default_rng(11)
    cls = np.repeat(np.arange(len(tilts)), 200)
    hor = rng.uniform(0.0, 40.0, (len(cls), 72))
    below = hor < floors[cls] - 1e-3
    assert below.mean() > 0.1
    lowered = np.where(below, hor * rng.uniform(0.0, 1.0, hor.shape), hor)
    assert np.array_equal(horizon.table_shading_factors(table, cls, hor),
                          horizon.table_shading_factors(table, cls, lowered))
    # points may share rows of horizons (a gable's two planes): the factors of copies
    rows = rng.integers(0, len(cls), 300)
    assert np.array_equal(horizon.table_shading_factors(table, cls[rows], hor, rows),
                          horizon.table_shading_factors(table, cls[rows], hor[rows]))


def test_floors_stop_rays_early_and_keep_every_horizon_above_them(weather):
    """Rays stopped at the floors find every horizon above them as without floors, bit for
    bit; below them the horizon is only lower; and roofs kept as blocks of cells give the
    horizons of the whole raster."""
    rng = np.random.default_rng(3)
    n = 30
    cx, cy = rng.uniform(0, 300, n), rng.uniform(0, 300, n)
    parts = shapely.get_parts(shapely.union_all(
        [box(x, y, w, d) for x, y, w, d in zip(cx, cy, rng.uniform(8, 30, n),
                                                rng.uniform(8, 20, n), strict=True)]))
    tops = rng.uniform(3, 50, len(parts))
    kw = dict(roof_tops=tops, obstacles=parts, obstacle_tops=tops, max_points=4,
              max_distance_m=300.0)
    free = horizon.roof_horizons(parts, **kw)
    floor_deg = np.stack([np.zeros(72), np.linspace(0.0, 30.0, 72)])  # two rows of floors
    floor_of = np.arange(len(parts)) % 2
    held = horizon.roof_horizons(parts, floor_deg=floor_deg, floor_of=floor_of, **kw)
    below = free.horizon_deg <= floor_deg[floor_of[free.owner]] - 1e-3
    assert np.array_equal(free.horizon_deg[~below], held.horizon_deg[~below])
    assert (held.horizon_deg[below] <= free.horizon_deg[below]).all()
    assert below.any()
    # the same points on the whole raster of their tile (every block stored) see the same
    pad = 300.0 + 2.0
    tile = np.floor(free.x.min() / 4000.0) * 4000.0, np.floor(free.y.min() / 4000.0) * 4000.0
    assert (np.floor(free.x / 4000.0) * 4000.0 == tile[0]).all()
    assert (np.floor(free.y / 4000.0) * 4000.0 == tile[1]).all()
    dense = horizon.lod1_surface(parts, tops, (tile[0] - pad, tile[1] - pad,
                                               tile[0] + 4000.0 + pad, tile[1] + 4000.0 + pad))
    assert np.array_equal(horizon.horizon_angles(dense, free.x, free.y, free.z,
                                                 max_distance_m=300.0), free.horizon_deg)

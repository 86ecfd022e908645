"""Ground-mounted PV beyond roofs: fishery ponds, facility agricultural land and roadside strips.

The plan asks for distributed PV "along roads, on building roofs and on agricultural facility
land" (利用道路两旁、建筑屋顶、农业设施用地等建设分布式光伏发电项目) and names a combined
fishery–farm PV project.  The land-use layer already holds the land; per parcel, vectorised:

- candidates by land-use code (:data:`KIND_CODES`, per scheme; ``[ground] codes`` overrides):
  ``fishery`` — ponds (三调 ``1104`` 坑塘水面, ``1104A`` 养殖坑塘; 用地用海 ``1704``; OSM
  ``landuse=aquaculture``), racks over the water; ``facility_agri`` — facility agricultural land
  (三调 ``1202``; 用地用海 ``0602``; OSM ``landuse=greenhouse_horticulture``), raised agrivoltaic
  rows or greenhouse roofs; ``roadside`` — a strip of ``roadside_width_m`` along the inside edge
  of highway and urban road parcels (三调 ``1003``/``1004``; 用地用海 ``1202``/``1207``) — the
  road's own land (slopes, verges, ditches), never the neighbouring parcels — or, when a roads
  layer is given, strips on both sides of its lines beyond the carriageway, minus the land ground
  PV must not take;
- site area [m²] (the pond, the facility parcel, the strip) → set back by ``setback_m`` (a negative
  buffer; 0 by default because ponds are mapped as water surface without their banks) →
  usable area = set-back area × ``usable_share`` (access channels, aeration, gaps, verges);
- power density [kWp/m² of usable area] = ground coverage ratio × module efficiency × 1 kW/m²,
  the ratio from the winter-solstice rule (:func:`gis.rooftop.solstice_gcr`, rows that do not
  shade each other at solar noon on 22 December) for ponds; capped by ``agri_max_gcr`` for
  agrivoltaics (the crops below need light); one row of ``row_width_m`` on the strip for
  roadside rows; ``density_kwp_m2`` overrides it per kind;
- capacity [kWp] = usable area × density; annual energy [kWh] = capacity × specific yield of the
  kind's row tilt and azimuth from the rooftop yield engine (:func:`gis.solar.yield_table`);
- reason when a parcel gets nothing: in the first-level control zone (unless ``allow_level1``),
  road narrower than two strips, only forest/cropland/water beside the road, too small.

Ecology first: PV racks over a pond do not change its land use (自然资源部办公厅 国家林业和草原局
办公室 国家能源局综合司《关于支持光伏发电产业发展规范用地管理有关工作的通知》自然资办发〔2023〕12号:
光伏方阵用地 of composite projects that meet the local standard is recognised by its original
land class; 国土资规〔2017〕8号 before it), so a pond under PV stays water in the blue-green
accounting (``count_pond_as_water``, a switch).  Forest and cropland outside facility land are
never taken unless ``allow_forest`` / ``allow_cropland``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gis import io
from gis._errors import InputError, Problem, suggest
from gis.config import is_number as _is_number

KINDS = ("fishery", "facility_agri", "roadside")
KIND_ZH = {"fishery": "渔光互补", "facility_agri": "农光互补（设施农用地）", "roadside": "道路两侧"}

#: Land-use codes of each kind, by scheme (a code matches these and their sub-codes).
KIND_CODES: dict[str, dict[str, tuple[str, ...]]] = {
    "gbt21010": {"fishery": ("1104", "1104A"), "facility_agri": ("1202",),
                 "roadside": ("1003", "1004")},
    "ydyh2023": {"fishery": ("1704",), "facility_agri": ("0602",),
                 "roadside": ("1202", "1207")},
    "osm": {"fishery": ("landuse=aquaculture",),
            "facility_agri": ("landuse=greenhouse_horticulture",), "roadside": ()},
    "worldcover": {"fishery": (), "facility_agri": (), "roadside": ()},
}

#: Reasons a ground site gets nothing, in order of precedence.
REASONS = ("no valid geometry", "in the first-level control zone (一级管控区)",
           "road narrower than two roadside strips", "only forest, cropland or water beside the road",
           "too small")

OUTPUT_COLUMNS = ("parcel_id", "kind", "code", "zone", "street", "parcel_area_m2", "area_m2",
                  "setback_area_m2", "usable_share", "usable_area_m2", "density_kwp_m2",
                  "capacity_kwp", "module_tilt", "module_azimuth", "specific_yield_kwh_kwp",
                  "annual_kwh", "co2_t", "coal_t", "reason")

#: Zone levels from most to least restrictive (the ``zone`` column takes the first that holds
#: the site's representative point).
_LEVEL_ORDER = ("level1", "level2", "level3", "barrier")


@dataclass(frozen=True)
class GroundParams:
    """Every assumption of the ground-mounted model (the run file's ``[ground]`` table).

    Parameters
    ----------
    kinds : tuple of str
        Kinds enabled (:data:`KINDS`).
    codes : dict
        Land-use codes per kind, overriding :data:`KIND_CODES` for the layer's scheme.
    roadside_width_m : float
        Width of the roadside strip [m].
    setback_m, usable_share, tilt_deg, min_usable_area_m2 : dict
        Per kind: setback from the site's edge [m]; share of the set-back area carrying modules
        [-]; row tilt [°]; smallest usable area that gets PV [m²].
    azimuth_deg : float
        Row azimuth [°, 180 = south].
    density_kwp_m2 : dict
        Per kind: power density [kWp/m² of usable area], overriding the derived one.
    module_efficiency : float or None
        [-]; None: the ``[pv]`` preset's.
    agri_max_gcr : float
        Largest ground coverage ratio of agrivoltaic rows [-].
    row_width_m : float
        Slant width of one roadside row [m] (one module in portrait ≈ 2.3 m).
    allow_level1, allow_forest, allow_cropland : bool
        Let ground PV take first-level control-zone land, forest, cropland.
    count_pond_as_water : bool
        Ponds under PV stay water in the blue-green accounting.
    roads : str or None
        A roads layer (lines or polygons; path relative to the run file) for roadside strips
        instead of the road parcels.
    roads_layer : str or None
        Layer name inside ``roads``.
    carriageway_width_m : float
        Carriageway width of the roads layer's lines [m] (strips start beyond it).
    """

    kinds: tuple[str, ...] = KINDS
    codes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    roadside_width_m: float = 5.0
    setback_m: dict[str, float] = field(default_factory=lambda: {
        "fishery": 0.0, "facility_agri": 0.0, "roadside": 0.0})
    usable_share: dict[str, float] = field(default_factory=lambda: {
        "fishery": 0.7, "facility_agri": 0.5, "roadside": 0.8})
    tilt_deg: dict[str, float] = field(default_factory=lambda: {
        "fishery": 25.0, "facility_agri": 25.0, "roadside": 25.0})
    min_usable_area_m2: dict[str, float] = field(default_factory=lambda: {
        "fishery": 500.0, "facility_agri": 200.0, "roadside": 50.0})
    azimuth_deg: float = 180.0
    density_kwp_m2: dict[str, float] = field(default_factory=dict)
    module_efficiency: float | None = None
    agri_max_gcr: float = 0.4
    row_width_m: float = 2.3
    allow_level1: bool = False
    allow_forest: bool = False
    allow_cropland: bool = False
    count_pond_as_water: bool = True
    roads: str | None = None
    roads_layer: str | None = None
    carriageway_width_m: float = 7.0

    def as_dict(self) -> dict[str, Any]:
        """Plain values (for run.json)."""
        out = asdict(self)
        out["kinds"] = list(self.kinds)
        out["codes"] = {k: list(v) for k, v in self.codes.items()}
        return out


_PER_KIND = ("setback_m", "usable_share", "tilt_deg", "min_usable_area_m2", "density_kwp_m2")
_BOOLS = ("allow_level1", "allow_forest", "allow_cropland", "count_pond_as_water")


def ground_params(**table: Any) -> GroundParams:
    """Ground-PV assumptions with the run file's ``[ground]`` overrides, every problem at once.

    Examples
    --------
    >>> p = ground_params(kinds=["fishery"], usable_share={"fishery": 0.6})
    >>> p.kinds, p.usable_share["fishery"], p.usable_share["roadside"], p.count_pond_as_water
    (('fishery',), 0.6, 0.8, True)
    >>> ground_params(kinds=["solar_farm"])
    Traceback (most recent call last):
    ...
    gis._errors.InputError: error: column 'ground.kinds': unknown kind ...
    """
    problems: list[Problem] = []
    defaults = GroundParams()
    known = {f.name for f in fields(GroundParams)}
    values: dict[str, Any] = {}
    for key, value in table.items():
        where = f"ground.{key}"
        if key not in known:
            problems.append(Problem("unknown ground-PV parameter", column=where,
                                    hint=suggest(key, known)))
        elif key == "kinds":
            if not isinstance(value, list | tuple) or any(v not in KINDS for v in value):
                problems.append(Problem("unknown kind", column=where, value=value,
                                        hint="a list of " + ", ".join(KINDS)))
            else:
                values[key] = tuple(value)
        elif key == "codes":
            ok = isinstance(value, dict) and all(
                k in KINDS and isinstance(v, list) and all(isinstance(c, str) for c in v)
                for k, v in value.items())
            if not ok:
                problems.append(Problem("must be a table kind = [\"code\", …]", column=where,
                                        value=value, hint="kinds: " + ", ".join(KINDS)))
            else:
                values[key] = {k: tuple(v) for k, v in value.items()}
        elif key in _PER_KIND:
            merged = dict(getattr(defaults, key))
            if not isinstance(value, dict):
                problems.append(Problem("must be a table kind = number", column=where,
                                        value=value))
                continue
            for kind, v in value.items():
                if kind not in KINDS:
                    problems.append(Problem("unknown kind", column=f"{where}.{kind}",
                                            hint="kinds: " + ", ".join(KINDS)))
                elif not _is_number(v) or v < 0 or (key == "usable_share" and v > 1) or (
                        key == "tilt_deg" and v > 90):
                    problems.append(Problem("out of range" if _is_number(v) else
                                            "must be a number", column=f"{where}.{kind}", value=v,
                                            hint="shares 0–1, tilts 0–90°, others ≥ 0"))
                else:
                    merged[kind] = float(v)
            values[key] = merged
        elif key in _BOOLS:
            if not isinstance(value, bool):
                problems.append(Problem("must be true or false", column=where, value=value))
            else:
                values[key] = value
        elif key in ("roads", "roads_layer"):
            if not isinstance(value, str):
                problems.append(Problem("must be text", column=where, value=value))
            else:
                values[key] = value
        elif key == "module_efficiency" and value is None:
            values[key] = None
        elif not _is_number(value) or value < 0:
            problems.append(Problem("must be a number ≥ 0", column=where, value=value))
        elif key in ("module_efficiency", "agri_max_gcr") and not 0 < value <= 1:
            problems.append(Problem("must be a fraction in (0, 1]", column=where, value=value))
        elif key == "azimuth_deg" and value > 360:
            problems.append(Problem("must be an azimuth 0–360°", column=where, value=value))
        else:
            values[key] = float(value)
    if problems:
        raise InputError(problems)
    return replace(defaults, **values)


# ---------------------------------------------------------------------------------------------
# Candidates


def kind_of_codes(codes: pd.Series, scheme: str | Path, *,
                  params: GroundParams | None = None) -> pd.Series:
    """The ground kind of each land-use code ("" when none), for the layer's scheme.

    Examples
    --------
    >>> kind_of_codes(pd.Series(["1104A", "1202", "1004", "0301"]), "gbt21010").tolist()
    ['fishery', 'facility_agri', 'roadside', '']
    """
    from gis.landuse import normalise_codes

    params = params or GroundParams()
    name = str(scheme)
    table = {**KIND_CODES.get(name, {}), **params.codes}
    text = normalise_codes(codes, scheme)["code"].fillna("")
    out = pd.Series("", index=codes.index, dtype=object)
    for kind in KINDS:  # three kinds, each a vectorised match over all parcels
        wanted = tuple(str(c).upper() if name != "osm" else str(c) for c in table.get(kind, ()))
        if not wanted:
            continue
        hit = text.isin(wanted) if name == "osm" else text.str.startswith(wanted)
        out[hit.to_numpy(dtype=bool) & (out == "").to_numpy()] = kind
    return out.astype("string")


def _zone_level(points: np.ndarray, zones: gpd.GeoDataFrame | None) -> np.ndarray:
    """The most restrictive control level holding each point ("" outside every zone)."""
    out = np.full(len(points), "", dtype=object)
    if zones is None or not len(points):
        return out
    for level in reversed(_LEVEL_ORDER):  # four levels; later (stricter) ones overwrite
        sel = zones[zones["level"] == level]
        if sel.empty:
            continue
        area = shapely.union_all(sel.geometry.values)
        shapely.prepare(area)
        out[shapely.contains(area, points)] = level
    return out


def _street_of(points: np.ndarray, streets: gpd.GeoDataFrame | None) -> np.ndarray:
    out = np.full(len(points), None, dtype=object)
    if streets is None or not len(points) or "name" not in streets:
        return out
    tree = shapely.STRtree(streets.geometry.values)
    pt, st = tree.query(points, predicate="within")
    out[pt] = streets["name"].astype(str).to_numpy()[st]
    return out


def _excluded_land(flags: pd.DataFrame, geoms: np.ndarray, params: GroundParams):
    """The union of land ground PV must not take beside a road (forest, cropland, water)."""
    bad = flags["blue"].to_numpy(dtype=bool).copy()
    if not params.allow_forest:
        bad |= flags["forest"].to_numpy(dtype=bool) | flags["pipeline"].to_numpy(dtype=bool)
    if not params.allow_cropland:
        bad |= flags["cropland"].to_numpy(dtype=bool)
    return shapely.union_all(geoms[bad]) if bad.any() else None


def road_strips(roads: gpd.GeoDataFrame, *, width_m: float, carriageway_m: float
                ) -> np.ndarray:
    """Strips of ``width_m`` on both sides of road lines beyond half the carriageway.

    Polygons (road surfaces) get a strip of ``width_m`` around them instead.

    Examples
    --------
    >>> roads = gpd.GeoDataFrame(geometry=[shapely.LineString([(0, 0), (100, 0)])],
    ...                          crs="EPSG:4548")
    >>> float(shapely.area(road_strips(roads, width_m=5, carriageway_m=10)[0]))
    1000.0
    """
    geoms = np.asarray(roads.geometry.array, dtype=object)
    width = (pd.to_numeric(roads["width"], errors="coerce").fillna(carriageway_m).to_numpy()
             if "width" in roads else np.full(len(geoms), carriageway_m))
    lines = np.isin(shapely.get_type_id(geoms), (1, 2, 5))
    inner = np.where(lines, width / 2.0, 0.0)
    outer = shapely.buffer(geoms, inner + width_m, cap_style="flat")
    core = np.where(lines, shapely.buffer(geoms, np.maximum(inner, 1e-6), cap_style="flat"),
                    geoms)
    return shapely.difference(outer, core)


def ground_candidates(landuse: gpd.GeoDataFrame, scheme: str | Path, *,
                      params: GroundParams | None = None,
                      roads: gpd.GeoDataFrame | None = None,
                      options=None) -> gpd.GeoDataFrame:
    """Candidate ground sites: ponds and facility parcels whole, roadside strips.

    Returns
    -------
    GeoDataFrame
        ``parcel_id``, ``kind``, ``code``, ``parcel_area_m2`` (whole parcel or road feature),
        ``area_m2`` (the site: parcel or strip), ``strip_problem`` (a reason from the strip
        geometry or ""), geometry = the site.
    """
    params = params or GroundParams()
    ids = (landuse["id"].astype("string") if "id" in landuse
           else pd.Series(landuse.index.astype(str), index=landuse.index, dtype="string"))
    geoms = np.asarray(landuse.geometry.array, dtype=object)
    kind = kind_of_codes(landuse["code"], scheme, params=params).to_numpy(dtype=object)
    enabled = np.isin(kind, params.kinds)
    if roads is not None:
        enabled &= kind != "roadside"
    sites_geom = geoms[enabled].copy()
    site_kind = kind[enabled]
    problem = np.full(len(sites_geom), "", dtype=object)
    roadside = site_kind == "roadside"
    if roadside.any():
        parcels = sites_geom[roadside]
        core = shapely.buffer(parcels, -params.roadside_width_m, join_style="mitre")
        narrow = shapely.is_empty(core) | (np.nan_to_num(shapely.area(core)) <= 0)
        strips = shapely.difference(parcels, core)
        strips = np.where(narrow, parcels, strips)
        sites_geom[roadside] = strips
        problem[np.flatnonzero(roadside)[narrow]] = REASONS[2]
    out = gpd.GeoDataFrame({
        "parcel_id": ids.to_numpy()[enabled], "kind": site_kind,
        "code": landuse["code"].astype("string").to_numpy()[enabled],
        "parcel_area_m2": np.nan_to_num(shapely.area(geoms[enabled])),
        "area_m2": np.nan_to_num(shapely.area(sites_geom)),
        "strip_problem": problem}, geometry=sites_geom, crs=landuse.crs)
    if roads is not None and "roadside" in params.kinds and len(roads):
        out = pd.concat([out, _roads_layer_sites(roads, landuse, scheme, geoms, params, options)],
                        ignore_index=True)
    return gpd.GeoDataFrame(out, geometry="geometry", crs=landuse.crs)


def _roads_layer_sites(roads, landuse, scheme, geoms, params, options) -> gpd.GeoDataFrame:
    from gis.landuse import classify

    roads = roads.to_crs(landuse.crs)
    strips = road_strips(roads, width_m=params.roadside_width_m,
                         carriageway_m=params.carriageway_width_m)
    whole = np.nan_to_num(shapely.area(strips))
    flags = classify(landuse["code"], scheme, options=options)
    excluded = _excluded_land(flags, geoms, params)
    if excluded is not None:
        shapely.prepare(excluded)
        strips = shapely.difference(strips, excluded)
    area = np.nan_to_num(shapely.area(strips))
    problem = np.where((whole > 0) & (area <= 1e-6), REASONS[3], "")
    rid = (roads["id"].astype("string").to_numpy() if "id" in roads
           else np.array([f"road-{i}" for i in range(len(roads))], dtype=object))
    return gpd.GeoDataFrame({
        "parcel_id": rid, "kind": "roadside", "code": "roads layer",
        "parcel_area_m2": whole, "area_m2": area, "strip_problem": problem},
        geometry=strips, crs=landuse.crs)


# ---------------------------------------------------------------------------------------------
# Potential


def densities(params: GroundParams, *, latitude: float, module_efficiency: float
              ) -> dict[str, float]:
    """Power density per kind [kWp/m² of usable area]: given, or ratio × efficiency × 1 kW/m².

    Examples
    --------
    >>> d = densities(GroundParams(), latitude=39.1, module_efficiency=0.215)
    >>> round(d["fishery"], 4), round(d["facility_agri"], 4), round(d["roadside"], 4)
    (0.125, 0.086, 0.0989)
    """
    from gis.rooftop import solstice_gcr

    eff = params.module_efficiency or module_efficiency
    out = {}
    for kind in KINDS:
        if kind in params.density_kwp_m2:
            out[kind] = float(params.density_kwp_m2[kind])
            continue
        gcr = solstice_gcr(latitude, params.tilt_deg[kind])
        if kind == "facility_agri":
            gcr = min(gcr, params.agri_max_gcr)
        elif kind == "roadside":
            gcr = min(1.0, params.row_width_m / params.roadside_width_m) \
                if params.roadside_width_m > 0 else 0.0
        out[kind] = gcr * eff
    return out


def kind_yields(params: GroundParams, *, pv_params=None, weather=None,
                latitude: float, longitude: float) -> dict[str, float]:
    """Specific yield per kind [kWh/kWp/yr] from the rooftop yield engine (open racks)."""
    from gis import solar
    from gis.rooftop import pv_params as _pv_params

    pvp = pv_params or _pv_params()
    if weather is None:
        weather = solar.climate_model(latitude, longitude)
    data, meta = weather
    tilts = [params.tilt_deg[k] for k in KINDS]
    table = solar.yield_table(data, meta, tilts, [params.azimuth_deg] * len(KINDS),
                              params=pvp.solar(pvp.mount_flat), grid=False)
    return dict(zip(KINDS, table["specific_yield_kwh_kwp"].astype(float), strict=True))


@io.gc_paused()
def ground_potential(landuse: gpd.GeoDataFrame, *, scheme: str | Path = "gbt21010",
                     zones: gpd.GeoDataFrame | None = None,
                     streets: gpd.GeoDataFrame | None = None,
                     params: GroundParams | None = None, pv_params=None,
                     weather: tuple[pd.DataFrame, dict] | None = None,
                     yields: dict[str, float] | None = None,
                     roads: gpd.GeoDataFrame | None = None, options=None,
                     grid_co2_t_per_mwh: float = 0.5703,
                     coal_gce_per_kwh: float = 290.0) -> gpd.GeoDataFrame:
    """Ground-mounted PV potential of every candidate parcel or strip.

    Parameters
    ----------
    landuse : GeoDataFrame
        Canonical land-use layer (``id``, ``code``) in a projected metric CRS.
    scheme : str or Path
        Its classification scheme.
    zones, streets : GeoDataFrame, optional
        Control zones (``level``) and streets (``name``) for ``zone``, ``street`` and the
        first-level rule.
    params : GroundParams, optional
        Default :func:`ground_params` ().
    pv_params : gis.rooftop.PVParams, optional
        Module efficiency and the solar model (default the base preset).
    weather : (data, meta), optional
        As for :func:`gis.rooftop.pv_potential`; default the built-in climate model.
    yields : dict, optional
        Known specific yield per kind [kWh/kWp/yr] (skips the solar model).
    roads : GeoDataFrame, optional
        Roads (lines or polygons; optional ``width`` [m], ``id``) for roadside strips instead of
        the road parcels.
    options : EcologyOptions, optional
        For the land ground PV must not take beside roads.
    grid_co2_t_per_mwh, coal_gce_per_kwh : float
        As for the rooftop model.

    Returns
    -------
    GeoDataFrame
        One row per candidate, columns :data:`OUTPUT_COLUMNS`, geometry = the site (set back).

    Examples
    --------
    A 100 m × 100 m pond (1 ha) at 0.08 kWp/m² with 70 % of it covered, yield 1 300 kWh/kWp:

    >>> landuse = gpd.GeoDataFrame({"id": ["P1"], "code": ["1104A"]},
    ...                            geometry=[shapely.box(534000, 4331000, 534100, 4331100)],
    ...                            crs="EPSG:4548")
    >>> g = ground_potential(landuse, params=ground_params(density_kwp_m2={"fishery": 0.08}),
    ...                      yields={"fishery": 1300.0, "facility_agri": 1300.0,
    ...                              "roadside": 1300.0})
    >>> g[["parcel_id", "kind", "area_m2", "usable_area_m2", "capacity_kwp", "annual_kwh"]]
      parcel_id     kind  area_m2  usable_area_m2  capacity_kwp  annual_kwh
    0        P1  fishery  10000.0          7000.0         560.0    728000.0
    """
    from gis.rooftop import pv_params as _pv_params

    params = params or GroundParams()
    pvp = pv_params or _pv_params()
    if landuse.crs is None or landuse.crs.is_geographic:
        raise InputError(Problem("land use must be in a projected metric CRS to measure areas",
                                 layer="landuse", value=str(landuse.crs),
                                 hint="reproject to the working CRS (e.g. EPSG:4548) first"))
    from gis.io import centre_lonlat

    lon, lat = centre_lonlat(landuse.crs, landuse.total_bounds)
    cand = ground_candidates(landuse, scheme, params=params, roads=roads, options=options)
    geoms = np.asarray(cand.geometry.array, dtype=object)
    valid = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    kind = cand["kind"].to_numpy(dtype=object)
    setback = pd.Series(kind).map(params.setback_m).fillna(0.0).to_numpy(dtype=float)
    shrunk = geoms.copy()
    need = valid & (setback > 0)
    if need.any():
        shrunk[need] = shapely.buffer(geoms[need], -setback[need], join_style="mitre")
    setback_area = np.where(valid, np.nan_to_num(shapely.area(shrunk)), 0.0)
    share = pd.Series(kind).map(params.usable_share).fillna(0.0).to_numpy(dtype=float)
    dens = densities(params, latitude=lat, module_efficiency=pvp.module_efficiency)
    density = pd.Series(kind).map(dens).fillna(0.0).to_numpy(dtype=float)
    if yields is None:
        yields = kind_yields(params, pv_params=pvp, weather=weather, latitude=lat,
                             longitude=lon)
    spec_yield = pd.Series(kind).map(yields).astype(float).to_numpy()
    min_area = pd.Series(kind).map(params.min_usable_area_m2).fillna(0.0).to_numpy(dtype=float)

    points = shapely.point_on_surface(np.where(valid, geoms, shapely.Point()))
    zone = _zone_level(points, zones)
    gross_usable = setback_area * share
    strip_problem = cand["strip_problem"].to_numpy(dtype=object)
    conditions = [~valid & (strip_problem == ""), (zone == "level1") & (not params.allow_level1),
                  strip_problem == REASONS[2], strip_problem == REASONS[3],
                  gross_usable < min_area]
    reason = np.select(conditions, list(REASONS), default="")
    gets = reason == ""
    usable = np.where(gets, gross_usable, 0.0)
    capacity = usable * density
    annual = capacity * np.nan_to_num(spec_yield)
    out = pd.DataFrame({
        "parcel_id": cand["parcel_id"].to_numpy(), "kind": kind,
        "code": cand["code"].to_numpy(), "zone": zone,
        "street": _street_of(points, streets),
        "parcel_area_m2": cand["parcel_area_m2"].to_numpy(),
        "area_m2": cand["area_m2"].to_numpy(), "setback_area_m2": setback_area,
        "usable_share": share, "usable_area_m2": usable, "density_kwp_m2": density,
        "capacity_kwp": capacity,
        "module_tilt": pd.Series(kind).map(params.tilt_deg).to_numpy(dtype=float),
        "module_azimuth": params.azimuth_deg, "specific_yield_kwh_kwp": spec_yield,
        "annual_kwh": annual, "co2_t": annual * grid_co2_t_per_mwh / 1000.0,
        "coal_t": annual * coal_gce_per_kwh / 1e6, "reason": reason})
    for col in ("parcel_id", "kind", "code", "zone", "street", "reason"):
        out[col] = out[col].astype("string")
    return gpd.GeoDataFrame(out, geometry=shrunk, crs=landuse.crs)


def ground_rollups(ground: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Totals by street, by kind and for the district.

    Returns
    -------
    dict
        ``{"street": ..., "kind": ..., "district": ...}`` with ``sites``, ``sites_with_pv``,
        ``area_m2``, ``usable_area_m2`` [m²], ``mwp`` [MWp], ``gwh`` [GWh/yr], ``co2_t``,
        ``coal_t`` [t/yr], and money totals when the finance columns are present.
    """
    money = [c for c in ("capex_yuan", "annual_savings_yuan", "annual_om_yuan", "npv_yuan")
             if c in ground]

    def roll(by: str) -> pd.DataFrame:
        key = (ground[by].astype("string").fillna("(unassigned)") if by
               else pd.Series("district", index=ground.index))
        frame = pd.DataFrame({
            "sites": 1, "sites_with_pv": (ground["capacity_kwp"] > 0).astype(int),
            "area_m2": ground["area_m2"], "usable_area_m2": ground["usable_area_m2"],
            "mwp": ground["capacity_kwp"] / 1000.0, "gwh": ground["annual_kwh"] / 1e6,
            "co2_t": ground["co2_t"], "coal_t": ground["coal_t"],
            **{c: ground[c].astype(float) for c in money}}, index=ground.index)
        # min_count: missing yields (no weather near the district) stay missing, never 0
        table = frame.groupby(key.rename(by or "district"), sort=True).sum(min_count=1
                                                                          ).reset_index()
        if "capex_yuan" in table and "annual_savings_yuan" in table:
            margin = table["annual_savings_yuan"] - table["annual_om_yuan"]
            table["payback_years"] = (table["capex_yuan"] / margin).where(margin > 0)
        return table

    return {"street": roll("street"), "kind": roll("kind"), "district": roll("")}


# ---------------------------------------------------------------------------------------------
# Ecology and targets


def bluegreen_with_ground(zones_table: pd.DataFrame, ground: gpd.GeoDataFrame, *,
                          params: GroundParams | None = None) -> pd.DataFrame:
    """Blue-green figures per zone without and with the ground scenario.

    With ``count_pond_as_water`` (the default, 自然资办发〔2023〕12号) a pond under PV stays
    water, so both columns are equal; without it, the area under modules on ponds
    (``usable_area_m2`` of the fishery sites, shared among zones by the site's area in each)
    leaves the blue-green area.  Facility land and road land keep their class either way.

    Returns
    -------
    DataFrame
        ``zone``, ``level``, ``area_ha``, ``bluegreen_ha``, ``bluegreen_share``,
        ``pv_over_water_ha``, ``bluegreen_ha_with_ground``, ``bluegreen_share_with_ground``,
        ``pond_counted_as_water``.
    """
    params = params or GroundParams()
    cols = [c for c in ("zone", "level", "kind", "area_ha", "bluegreen_ha", "bluegreen_share")
            if c in zones_table]
    out = pd.DataFrame(zones_table[cols]).copy()
    over_water = np.zeros(len(out))
    fish = ground[(ground["kind"] == "fishery") & (ground["capacity_kwp"] > 0)]
    if "geometry" in zones_table and len(fish):
        zgeom = np.asarray(zones_table["geometry"], dtype=object)
        ok = ~pd.isna(zgeom)
        sgeom = np.asarray(fish.geometry.array, dtype=object)
        tree = shapely.STRtree(sgeom)
        zi, si = tree.query(np.where(ok, zgeom, shapely.Point()), predicate="intersects")
        if len(zi):
            inter = np.nan_to_num(shapely.area(shapely.intersection(zgeom[zi], sgeom[si])))
            whole = np.nan_to_num(shapely.area(sgeom[si]))
            part = np.where(whole > 0, inter / whole, 0.0)
            ha = fish["usable_area_m2"].to_numpy(dtype=float)[si] * part / 1e4
            over_water = np.bincount(zi, weights=ha, minlength=len(out))
    out["pv_over_water_ha"] = over_water
    loss = 0.0 if params.count_pond_as_water else over_water
    out["bluegreen_ha_with_ground"] = out["bluegreen_ha"] - loss
    out["bluegreen_share_with_ground"] = out["bluegreen_ha_with_ground"] / out["area_ha"]
    out["pond_counted_as_water"] = params.count_pond_as_water
    return out


def ground_scenario(entries: list[dict[str, Any]], ground: pd.DataFrame) -> dict[str, Any] | None:
    """The renewable-substitution figure as two labelled scenarios: rooftop only, + ground.

    Adds to the ``renewable-substitution`` entry (in place) ``scenarios`` =
    ``[{"scenario": "rooftop only", ...}, {"scenario": "rooftop + ground", ...}]`` with
    ``pv_gwh`` and ``potential_share``; the entry's own ``value`` and ``potential_share`` are
    unchanged (rooftop only).  Ground PV is not on a building, so it is counted against the
    same urban building energy use as a supply-side scenario, labelled as such.

    Returns
    -------
    dict or None
        The two scenarios, or None when the entry is absent or unevaluated.
    """
    item = next((e for e in entries if e.get("id") == "renewable-substitution"), None)
    if item is None or not item.get("energy_use_gwh"):
        return None
    use = float(item["energy_use_gwh"])
    existing = float(item.get("existing_pv_gwh") or 0.0)
    roof = float(item.get("potential_pv_gwh") or 0.0)
    ground_gwh = float(ground["annual_kwh"].sum()) / 1e6
    target = item.get("target")
    scenarios = [
        {"scenario": "rooftop only", "scenario_zh": "仅屋顶", "pv_gwh": existing + roof,
         "potential_share": (existing + roof) / use},
        {"scenario": "rooftop + ground", "scenario_zh": "屋顶 + 地面（渔光、农光、道路）",
         "pv_gwh": existing + roof + ground_gwh, "ground_gwh": ground_gwh,
         "potential_share": (existing + roof + ground_gwh) / use},
    ]
    for s in scenarios:
        s["closable"] = bool(target is not None and s["potential_share"] >= float(target))
    item["scenarios"] = scenarios
    return {"scenarios": scenarios}


def read_roads(path: str | Path, *, layer: str | None, crs) -> gpd.GeoDataFrame:
    """Read a roads layer and bring it to the working CRS (a clear error when it has no CRS)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(Problem("roads layer not found", file=str(path), column="ground.roads",
                                 hint="fix the path (relative to the run file)"))
    roads = gpd.read_file(path, layer=layer)
    if roads.crs is None:
        raise InputError(Problem("the roads layer has no CRS", file=str(path),
                                 column="ground.roads", hint="save it with a CRS"))
    keep = [c for c in ("id", "width", "name") if c in roads]
    return roads[keep + [roads.geometry.name]].to_crs(crs)

"""Rooftop PV potential building by building, its roll-ups and the plan's PV targets.

Per building (DESIGN §6.2), all vectorised over the whole layer:

- roof area [m²] = footprint area, ÷ cos(tilt) for pitched roofs;
- usable area [m²] = (footprint shrunk by the edge setback, ÷ cos(tilt) when pitched)
  × usable fraction (by roof type) × category factor − roof area taken by existing PV;
  roofs whose usable area falls below the minimum get nothing;
- module-to-roof ratio: flat roofs carry rows tilted at ``flat_tilt`` spaced so that they do not
  shade each other at solar noon on the winter solstice (:func:`solstice_gcr`); pitched roofs
  carry modules flush (ratio 1);
- capacity [kWp] = usable area × ratio × module efficiency × 1 kW/m² (STC irradiance);
- annual energy [kWh] = capacity × specific yield (orientation class, :mod:`gis.solar`)
  × shading factor (roof mean of an irradiance raster ÷ unshaded reference; 1 without a raster);
- CO₂ [t] = kWh × grid factor [t/MWh] / 1000; standard coal [t] = kWh × supply consumption
  [gce/kWh] / 10⁶.

Roof type, when not given, is inferred by a configurable rule (:class:`PVParams`
``pitched_categories``, ``pitched_floor_categories``, ``pitched_max_floors``): rural residential
buildings, and residential buildings of at most two floors, have pitched roofs; everything else
is flat.  A pitched roof without an azimuth faces perpendicular to the long side of its footprint's
minimum rotated rectangle (the ridge runs along the long side), on the side nearer south; grid
north of the working CRS is taken as true north (meridian convergence is a fraction of a degree
within a 3° Gauss–Krüger zone).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, ClassVar

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from gis import horizon, solar
from gis._errors import InputError, Problem, suggest
from gis.config import CATEGORIES, LayerSpec
from gis.config import is_number as _is_number
from gis.io import centre_lonlat
from gis.targets import entry

#: Axial tilt of the Earth [°], for the winter-solstice sun.
OBLIQUITY_DEG = 23.44

#: Reasons a building gets no PV, in order of precedence.
REASONS = ("no valid footprint", "north-facing", "roof too small", "existing PV fills the roof",
           "shaded")

OUTPUT_COLUMNS = ("id", "category", "street", "name", "roof_type", "roof_tilt", "roof_azimuth",
                  "roof_area_m2", "usable_area_m2", "capacity_kwp", "specific_yield_kwh_kwp",
                  "shading_factor", "annual_kwh", "co2_t", "coal_t", "reason", "year_built",
                  "pv_kw", "is_new", "floor_area_m2", "roof_type_inferred", "module_tilt",
                  "module_azimuth", "existing_pv_m2", "unshaded_kwh", "shading_loss_kwh",
                  "shading_source")

#: ``weather=NO_WEATHER``: no weather near the district.  Yields are not computed: the columns of
#: :data:`YIELD_COLUMNS` are left missing (NaN, never 0), shading by neighbours is skipped (it
#: weighs the sky by the weather), and everything that needs no sun (areas, capacities) is kept.
NO_WEATHER = "no weather"

#: Columns that need the sun (roofs, roof planes and ground sites alike).
YIELD_COLUMNS = ("specific_yield_kwh_kwp", "annual_kwh", "co2_t", "coal_t", "unshaded_kwh",
                 "shading_loss_kwh")

#: ``yield_note`` of rows whose yields were not computed.
YIELD_NOTE = "not computed: no weather near the district"


def no_weather(weather: Any) -> bool:
    """Whether ``weather`` is :data:`NO_WEATHER` (yields are not computed)."""
    return isinstance(weather, str) and weather == NO_WEATHER


def without_yields(frame: pd.DataFrame, note: str | None = None) -> pd.DataFrame:
    """A copy with the yield columns missing (NaN) and a ``yield_note`` saying why.

    For runs with no weather near the district: an empty yield, never a 0 that would read as a
    roof without sun.  ``shading_factor`` is kept only where an irradiance raster gave it
    (``shading_source == "irradiance"``: a ratio of measured irradiation, no weather needed).

    Examples
    --------
    >>> pv = pd.DataFrame({"capacity_kwp": [10.0], "annual_kwh": [0.0], "shading_factor": [1.0],
    ...                    "shading_source": ["none"]})
    >>> out = without_yields(pv)
    >>> out[["capacity_kwp", "annual_kwh", "shading_factor"]]
       capacity_kwp  annual_kwh  shading_factor
    0          10.0         NaN             NaN
    >>> out.loc[0, "yield_note"]
    'not computed: no weather near the district'
    """
    out = frame.copy()
    for col in YIELD_COLUMNS:
        if col in out.columns:
            out[col] = np.nan
    if "shading_factor" in out.columns:
        measured = np.zeros(len(out), dtype=bool)
        if "shading_source" in out.columns:
            measured = (out["shading_source"].astype("string") == "irradiance").fillna(False)
            measured = measured.to_numpy(dtype=bool)
        out["shading_factor"] = out["shading_factor"].where(measured)
    out["yield_note"] = pd.array([note or YIELD_NOTE] * len(out), dtype="string")
    return out


@dataclass(frozen=True)
class PVParams:
    """Every assumption of the rooftop PV model; presets via :func:`pv_params`.

    Parameters
    ----------
    preset : str
        Name of the preset the values started from.
    module_efficiency : float
        Module efficiency at STC [-] (kWp per m² of module ÷ 1 kW/m²).
    usable_fraction_flat, usable_fraction_pitched : float
        Share of the set-back roof area free of equipment, stairs, skylights … [-].
    category_factor : dict
        Multiplier of the usable fraction by building category [-] (default 1 for all).
    min_usable_area_m2 : float
        Smaller usable areas are dropped [m²].
    edge_setback_m : float
        Free margin along the roof edge (fire access, wind loads) [m], applied as a negative
        buffer of the footprint.
    flat_tilt, flat_azimuth : float
        Module rows on flat roofs [°] (azimuth 180 = south).  25° trades a little specific yield
        against the optimum near 35–40° at 39° N for rows that can stand closer together.
    ground_coverage_ratio : float or None
        Module area ÷ roof area for rows on flat roofs [-]; None: :func:`solstice_gcr` at the
        buildings' latitude.
    pitched_tilt_default : float
        Tilt of pitched roofs whose ``roof_tilt`` is missing [°].
    pitched_categories : tuple of str
        Categories whose roofs are pitched when ``roof_type`` is missing.
    pitched_floor_categories : tuple of str
        Categories whose roofs are pitched when they have at most ``pitched_max_floors`` floors.
    pitched_max_floors : float
        See above.
    north_band_deg : float
        Roof planes within ± this angle of north [°] get nothing ("north-facing").
    pitched_planes : int
        Planes of a pitched roof: 2 (gable, the default: two halves facing ``roof_azimuth`` and
        its opposite, each taking its own yield, a north-facing half left bare) or 1 (a single
        plane facing ``roof_azimuth``, as for sheds).
    tilt_step_deg, azimuth_step_deg : float
        Width of orientation classes [°]; the yield is computed once per class.
    min_shading_factor : float
        Roof parts with a lower shading factor are not usable ("shaded") [-]; 0.7 as NREL's
        rooftop study (Gagnon et al. 2016, NREL/TP-6A20-65298: a roof plane is suitable when it
        receives at least 70 % of the unshaded annual insolation).
    shading : {"auto", "none"}
        Shading by neighbours: ``auto`` uses the DSM when given, else footprints × heights;
        ``none`` switches it off.  An irradiance raster still decides where it covers a roof.
    storey_height_m : float
        Height of one storey [m] for buildings known by their floors only (and for a building
        with neither height nor floors, as an obstacle).
    surface_resolution_m : float
        Cell size of the footprints × heights surface model [m].
    horizon_sectors : int
        Azimuth sectors of each horizon (≥ 36; 72 by default: 5° sectors classify ≥ 99 % of
        sun-hours as an exact ray casting does, tests/test_shading.py).
    horizon_distance_m : float or None
        Search distance for obstacles [m]; None: where the tallest building falls below 2°,
        at most 1 000 m (:func:`gis.horizon.default_distance`).
    shading_grid_m : float
        Spacing of the sample points on a roof [m] (inset from the edge by ``edge_setback_m``).
    shading_max_points : int
        Most sample points per roof (a large roof takes a coarser grid).
    shading_reference_kwh_m2 : float or None
        Unshaded annual irradiation [kWh/m²/yr]; None: the raster's
        ``shading_reference_percentile``-th percentile.
    shading_reference_percentile : float
        See above [%].
    min_plane_m2 : float
        Roof planes from a surface model smaller than this (sloped area) are dropped [m²]
        (:mod:`gis.planes`).
    mount_flat, mount_pitched : str
        SAPM cell-temperature mounts for rows on flat roofs and flush modules on pitched roofs.
    transposition, temperature_model, faiman_u0, faiman_u1, gamma_pdc, losses_percent,
    inverter_efficiency, dc_ac_ratio, iam_model, albedo
        Passed to :class:`gis.solar.SolarParams`.

    Attributes
    ----------
    horizon_cache : bool
        Keep each tile's horizons between runs (``[pv] horizon_cache``, default true;
        :func:`gis.horizon.roof_horizons`).  It changes no figure, so it is a class attribute,
        not a field: the parameters recorded with the results are the same with it on or off
        (``pv_params(horizon_cache=False)`` returns the subclass that has it off).
    """

    preset: str = "base"
    module_efficiency: float = 0.215
    usable_fraction_flat: float = 0.65
    usable_fraction_pitched: float = 0.9
    category_factor: dict[str, float] = field(default_factory=dict)
    min_usable_area_m2: float = 10.0
    edge_setback_m: float = 0.8
    flat_tilt: float = 25.0
    flat_azimuth: float = 180.0
    ground_coverage_ratio: float | None = None
    pitched_tilt_default: float = 30.0
    pitched_categories: tuple[str, ...] = ("rural_residential",)
    pitched_floor_categories: tuple[str, ...] = ("residential",)
    pitched_max_floors: float = 2.0
    north_band_deg: float = 45.0
    pitched_planes: int = 2
    tilt_step_deg: float = 5.0
    azimuth_step_deg: float = 15.0
    min_shading_factor: float = 0.7
    shading: str = "auto"
    storey_height_m: float = 3.0
    surface_resolution_m: float = 1.0
    horizon_sectors: int = 72
    horizon_distance_m: float | None = None
    shading_grid_m: float = 5.0
    shading_max_points: int = 16
    shading_reference_kwh_m2: float | None = None
    shading_reference_percentile: float = 99.0
    min_plane_m2: float = 8.0
    mount_flat: str = "open_rack_glass_polymer"
    mount_pitched: str = "close_mount_glass_glass"
    transposition: str = "perez"
    temperature_model: str = "sapm"
    faiman_u0: float = 25.0
    faiman_u1: float = 6.84
    gamma_pdc: float = -0.0035
    losses_percent: float = 14.08
    inverter_efficiency: float = 0.96
    dc_ac_ratio: float = 1.0
    iam_model: str = "physical"
    albedo: float | None = None
    horizon_cache: ClassVar[bool] = True

    def solar(self, mount: str) -> solar.SolarParams:
        """The :class:`gis.solar.SolarParams` for one mount."""
        return solar.SolarParams(
            transposition=self.transposition, temperature_model=self.temperature_model,
            mount=mount, faiman_u0=self.faiman_u0, faiman_u1=self.faiman_u1,
            gamma_pdc=self.gamma_pdc, losses_percent=self.losses_percent,
            inverter_efficiency=self.inverter_efficiency, dc_ac_ratio=self.dc_ac_ratio,
            iam_model=self.iam_model, albedo=self.albedo)

    def as_dict(self) -> dict[str, Any]:
        """Plain values (for run.json provenance)."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        return out


@dataclass(frozen=True)
class _PVParamsUncached(PVParams):
    """:class:`PVParams` with the horizon cache off (``[pv] horizon_cache = false``)."""

    horizon_cache: ClassVar[bool] = False


#: DESIGN §6.2 presets; values not listed are the :class:`PVParams` defaults.
PRESETS: dict[str, dict[str, Any]] = {
    "conservative": {"module_efficiency": 0.20, "usable_fraction_flat": 0.5,
                     "usable_fraction_pitched": 0.8, "edge_setback_m": 1.0},
    "base": {"module_efficiency": 0.215, "usable_fraction_flat": 0.65,
             "usable_fraction_pitched": 0.9, "edge_setback_m": 0.8},
    "ambitious": {"module_efficiency": 0.225, "usable_fraction_flat": 0.8,
                  "usable_fraction_pitched": 0.98, "edge_setback_m": 0.5},
}

_FRACTIONS = ("module_efficiency", "usable_fraction_flat", "usable_fraction_pitched",
              "ground_coverage_ratio", "min_shading_factor", "albedo")
_NON_NEGATIVE = ("min_usable_area_m2", "min_plane_m2", "edge_setback_m", "losses_percent",
                 "shading_reference_kwh_m2", "faiman_u0", "faiman_u1")
_ANGLES = ("flat_tilt", "pitched_tilt_default", "north_band_deg")
_INTEGERS = ("pitched_planes", "horizon_sectors", "shading_max_points")
SHADING_MODES = ("auto", "none")


def pv_params(preset: str = "base", **overrides: Any) -> PVParams:
    """Rooftop PV assumptions from a preset, with overrides (the run file's ``[pv]`` table).

    Parameters
    ----------
    preset : {"conservative", "base", "ambitious"}
        DESIGN §6.2: module efficiency 20 / 21.5 / 22.5 %, flat usable fraction 0.5 / 0.65 / 0.8,
        pitched usable fraction 0.8 / 0.9 / 0.98, edge setback 1.0 / 0.8 / 0.5 m; minimum usable
        area 10 m² in all.
    **overrides
        Any :class:`PVParams` field, and ``horizon_cache`` (true or false: keep the horizons of
        each tile between runs, :attr:`PVParams.horizon_cache`).

    Raises
    ------
    InputError
        Listing every unknown key, wrong type or out-of-range value (named ``pv.<key>``).

    Examples
    --------
    >>> p = pv_params("ambitious", min_usable_area_m2=20)
    >>> p.preset, p.module_efficiency, p.usable_fraction_flat, p.min_usable_area_m2
    ('ambitious', 0.225, 0.8, 20.0)
    >>> pv_params("base", module_efficency=0.2)
    Traceback (most recent call last):
    ...
    gis._errors.InputError: error: column 'pv.module_efficency': unknown PV parameter -> did you mean 'module_efficiency'? ...
    """
    problems: list[Problem] = []
    cache = overrides.pop("horizon_cache", True)
    if not isinstance(cache, bool):
        problems.append(Problem("must be true or false", column="pv.horizon_cache", value=cache,
                                hint="write horizon_cache = false to compute every horizon"))
    if preset not in PRESETS:
        problems.append(Problem("unknown PV preset", column="pv.preset", value=preset,
                                hint=f"use one of {', '.join(PRESETS)}"))
        preset = "base"
    known = {f.name: f for f in fields(PVParams)}
    for key in sorted(set(overrides) - set(known)):
        problems.append(Problem("unknown PV parameter", column=f"pv.{key}",
                                hint=suggest(key, (set(known) - {"preset"}) | {"horizon_cache"})))
    values = {**PRESETS[preset], "preset": preset}
    for key, value in overrides.items():
        if key not in known or key == "preset":
            continue
        default = getattr(PVParams(), key)
        where = f"pv.{key}"
        if key == "category_factor":
            if not isinstance(value, dict):
                problems.append(Problem("must be a table category = factor", column=where,
                                        value=value))
                continue
            for cat, factor in value.items():
                if cat not in CATEGORIES:
                    problems.append(Problem("unknown category", column=f"{where}.{cat}",
                                            hint=f"use one of {', '.join(CATEGORIES)}"))
                elif not _is_number(factor) or factor < 0:
                    problems.append(Problem("must be a number ≥ 0", column=f"{where}.{cat}",
                                            value=factor))
            values[key] = {str(k): float(v) for k, v in value.items() if _is_number(v)}
            continue
        if isinstance(default, tuple):
            if not isinstance(value, list | tuple) or not all(v in CATEGORIES for v in value):
                problems.append(Problem("must be a list of categories", column=where, value=value,
                                        hint=f"categories: {', '.join(CATEGORIES)}"))
                continue
            values[key] = tuple(value)
            continue
        if isinstance(default, str):
            if not isinstance(value, str):
                problems.append(Problem("must be text", column=where, value=value))
                continue
            if key == "shading" and value not in SHADING_MODES:
                problems.append(Problem("unknown shading mode", column=where, value=value,
                                        hint="use auto (DSM, else footprints × heights) or none"))
                continue
            values[key] = value
            continue
        # numbers (optionally None where the default is None)
        if value is None and default is None:
            values[key] = None
            continue
        if not _is_number(value):
            problems.append(Problem("must be a number", column=where, value=value))
            continue
        value = float(value)
        if key in _FRACTIONS and not 0 <= value <= 1:
            problems.append(Problem("must be a fraction between 0 and 1", column=where,
                                    value=value, hint="write 0.2 for 20 %"))
        elif key in _NON_NEGATIVE and value < 0:
            problems.append(Problem("must not be negative", column=where, value=value))
        elif key in _ANGLES and not 0 <= value <= 90:
            problems.append(Problem("must be an angle between 0 and 90°", column=where,
                                    value=value))
        elif key in ("tilt_step_deg", "azimuth_step_deg", "dc_ac_ratio", "storey_height_m",
                     "surface_resolution_m", "horizon_distance_m", "shading_grid_m",
                     "shading_max_points") and value <= 0:
            problems.append(Problem("must be positive", column=where, value=value))
        elif key == "pitched_planes" and value not in (1, 2):
            problems.append(Problem("must be 1 (single plane) or 2 (gable)", column=where,
                                    value=value))
        elif key == "horizon_sectors" and (value < 36 or value != int(value)):
            problems.append(Problem("must be a whole number of sectors, at least 36",
                                    column=where, value=value))
        values[key] = int(value) if key in _INTEGERS else value
    if problems:
        raise InputError(problems)
    params = replace(PVParams(), **values)
    if cache is False:
        params = _PVParamsUncached(**{f.name: getattr(params, f.name) for f in fields(params)})
    for mount in (params.mount_flat, params.mount_pitched):
        params.solar(mount)  # raises InputError on unknown models or mounts
    return params


# ---------------------------------------------------------------------------------------------
# Geometry helpers


def solstice_gcr(latitude: float, tilt: float) -> float:
    """Ground coverage ratio of rows that do not shade each other at winter-solstice noon.

    With the sun at elevation ``h = 90° − |latitude| − 23.44°`` due south (north in the southern
    hemisphere), a row of slant width 1 tilted by ``β`` casts a shadow reaching
    ``cos β + sin β / tan h`` behind its front edge, so ``GCR = 1 / (cos β + sin β / tan h)``.

    Parameters
    ----------
    latitude : float
        Site latitude [°].
    tilt : float
        Row tilt [°].

    Returns
    -------
    float
        Module area ÷ roof area [-].

    Examples
    --------
    >>> round(solstice_gcr(39.08, 30.0), 3)
    0.547
    """
    elevation = 90.0 - abs(latitude) - OBLIQUITY_DEG
    if elevation <= 1.0:
        raise InputError(Problem(f"the winter sun does not rise high enough at latitude "
                                 f"{latitude:.1f}° for row spacing", column="pv.ground_coverage_ratio",
                                 hint="set pv.ground_coverage_ratio explicitly"))
    beta, h = math.radians(tilt), math.radians(elevation)
    return 1.0 / (math.cos(beta) + math.sin(beta) / math.tan(h))


def _site_lonlat(buildings: gpd.GeoDataFrame) -> tuple[float, float]:
    return centre_lonlat(buildings.crs, buildings.total_bounds)


def _long_side_azimuth(geoms: np.ndarray) -> np.ndarray:
    """Azimuth [°] perpendicular to the long side of each minimum rotated rectangle, nearer south."""
    rect = shapely.oriented_envelope(geoms)
    coords, owner = shapely.get_coordinates(rect, return_index=True)
    counts = np.bincount(owner, minlength=len(geoms))
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    out = np.full(len(geoms), 180.0)
    ok = counts >= 4  # a rectangle, not a point or segment from a degenerate footprint
    i = first[ok]
    e1 = coords[i + 1] - coords[i]
    e2 = coords[i + 2] - coords[i + 1]
    long_edge = np.where((np.hypot(*e1.T) >= np.hypot(*e2.T))[:, None], e1, e2)
    bearing = np.degrees(np.arctan2(long_edge[:, 0], long_edge[:, 1]))  # clockwise from north
    normal = (bearing + 90.0) % 360.0
    # of the two faces (normal, normal + 180) keep the one nearer south
    off_south = np.abs(((normal - 180.0) + 180.0) % 360.0 - 180.0)
    out[ok] = np.where(off_south <= 90.0, normal, (normal + 180.0) % 360.0)
    return out


def _angle_from_north(azimuth: np.ndarray) -> np.ndarray:
    a = np.mod(azimuth, 360.0)
    return np.minimum(a, 360.0 - a)


def _text_column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name in frame.columns:
        return frame[name].astype("string")
    return pd.Series(pd.NA, index=frame.index, dtype="string")


def _number_column(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name in frame.columns:
        return pd.to_numeric(frame[name], errors="coerce").astype(float).to_numpy()
    return np.full(len(frame), np.nan)


# ---------------------------------------------------------------------------------------------
# Shading from an irradiance raster


def _raster_sample(src, band_idx: int, *, max_cells: float = 4e6) -> np.ndarray:
    """Valid cells of a band for a percentile: every cell of a small raster, else a sample.

    A decimated read of a large raster without overviews decompresses every block; instead,
    read whole blocks spread evenly over the raster (or use the overviews when there are).
    """
    cells = src.width * src.height
    if cells <= max_cells or src.overviews(band_idx):
        scale = max(1, int(math.ceil(math.sqrt(cells / max_cells))))
        data = src.read(band_idx, masked=True, out_shape=(max(1, src.height // scale),
                                                          max(1, src.width // scale)))
        return np.asarray(data.compressed(), dtype=float)
    windows = [w for _, w in src.block_windows(band_idx)]
    block_cells = max(1, windows[0].width * windows[0].height)
    step = max(1, int(len(windows) * block_cells // max_cells))
    # a stride through the block grid prime to its number of block columns, so that the
    # sample walks across the columns instead of lining up in one of them
    n_cols = max(1, math.ceil(src.width / max(1, windows[0].width)))
    while n_cols > 1 and math.gcd(step, n_cols) != 1:
        step += 1
    picked = windows[::step]
    parts = [src.read(band_idx, window=w, masked=True).compressed() for w in picked]
    return np.concatenate(parts).astype(float) if parts else np.empty(0)


def shading_factors(footprints: gpd.GeoSeries, irradiance: str | Path | LayerSpec, *,
                    reference_kwh_m2: float | None = None,
                    reference_percentile: float = 99.0, with_coverage: bool = False
                    ) -> tuple[np.ndarray, float] | tuple[np.ndarray, float, np.ndarray]:
    """Roof mean of an annual irradiation raster ÷ unshaded reference, per footprint.

    Parameters
    ----------
    footprints : geopandas.GeoSeries
        Roof footprints (any CRS; reprojected to the raster's).
    irradiance : str, Path or gis.config.LayerSpec
        GeoTIFF of annual irradiation [kWh/m²/yr]; a layer spec also gives the band and a CRS
        for a raster that has none.
    reference_kwh_m2 : float, optional
        Unshaded irradiation [kWh/m²/yr]; default: the raster's ``reference_percentile``-th
        percentile of valid cells.
    reference_percentile : float
        See above [%].
    with_coverage : bool
        Also return which footprints the raster covers.

    Returns
    -------
    factors : numpy.ndarray
        Shading factor per footprint in [0, 1]; 1 where the raster does not cover the roof.
    reference : float
        The reference used [kWh/m²/yr].
    covered : numpy.ndarray
        Only with ``with_coverage``: True where the raster has data under the roof.

    Examples
    --------
    An irradiation raster of 1 500 kWh/m²/yr with a shaded half (750) under one of two roofs:

    >>> import pathlib, tempfile
    >>> import geopandas as gpd, numpy as np, rasterio, shapely
    >>> from rasterio.transform import from_origin
    >>> tif = pathlib.Path(tempfile.mkdtemp()) / "irradiance.tif"
    >>> grid = np.full((10, 20), 1500.0, dtype="float32")
    >>> grid[:, 15:] = 750.0
    >>> with rasterio.open(tif, "w", driver="GTiff", width=20, height=10, count=1,
    ...                    dtype="float32", crs="EPSG:4548", nodata=-1,
    ...                    transform=from_origin(534000, 4331010, 1, 1)) as dst:
    ...     dst.write(grid, 1)
    >>> roofs = gpd.GeoSeries([shapely.box(534000, 4331000, 534010, 4331010),
    ...                        shapely.box(534010, 4331000, 534020, 4331010)], crs="EPSG:4548")
    >>> factors, reference = shading_factors(roofs, tif)
    >>> factors.round(2).tolist(), reference
    ([1.0, 0.75], 1500.0)
    """
    import rasterio
    from exactextract.raster import RasterioRasterSource

    from gis.io import raster_ref

    path, band_idx, declared_crs = raster_ref(irradiance)
    if reference_kwh_m2 is None:  # a run file's [layers.irradiance] reference_kwh_m2
        reference_kwh_m2 = getattr(irradiance, "reference_kwh_m2", None)
    try:
        with rasterio.open(path) as src:
            raster_crs = src.crs or declared_crs
            if reference_kwh_m2 is None:
                valid = _raster_sample(src, band_idx)
                valid = valid[np.isfinite(valid) & (valid > 0)]
                if valid.size == 0:
                    raise InputError(Problem("irradiance raster has no valid cells",
                                             file=str(path), layer="irradiance"))
                reference_kwh_m2 = float(np.percentile(valid, reference_percentile))
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(Problem(f"cannot read the irradiance raster: {exc}", file=str(path),
                                 layer="irradiance")) from None
    factors = np.ones(len(footprints))
    covered = np.zeros(len(footprints), dtype=bool)
    geoms = footprints.reset_index(drop=True)
    present = ~(geoms.isna() | geoms.is_empty).to_numpy()
    if present.any() and reference_kwh_m2 > 0:
        vec = gpd.GeoDataFrame(geometry=geoms[present].reset_index(drop=True))
        if raster_crs is not None and vec.crs is not None:
            # the raster's CRS read from a GeoTIFF is rarely the same object as the layers'
            # EPSG code, but equivalent: PROJ's transformation is then a no-op, not worth a
            # pass over every vertex
            same = CRS.from_user_input(raster_crs) == CRS.from_user_input(vec.crs)
            vec = (vec.set_crs(raster_crs, allow_override=True) if same
                   else vec.to_crs(raster_crs))
        from gis._zonal import zonal_means

        with rasterio.open(path) as src:
            # only the roofs that reach the raster's extent are handed over: the others
            # have no cell under them (NaN, as exactextract would say after reading them)
            polys = vec.geometry.values
            reach = shapely.intersects(np.asarray(polys, dtype=object), shapely.box(*src.bounds))
            mean = np.full(len(polys), np.nan)
            if reach.any():
                mean[reach] = zonal_means(
                    RasterioRasterSource(src, band_idx=band_idx), polys[reach],
                    crs_wkt=vec.crs.to_wkt() if vec.crs is not None else None)
        f = np.clip(mean / reference_kwh_m2, 0.0, 1.0)
        factors[present] = np.where(np.isfinite(f), f, 1.0)
        covered[present] = np.isfinite(f)
    if with_coverage:
        return factors, float(reference_kwh_m2), covered
    return factors, float(reference_kwh_m2)


# ---------------------------------------------------------------------------------------------
# Per-building potential


def pv_potential(buildings: gpd.GeoDataFrame, *, params: PVParams | None = None,
                 weather: tuple[pd.DataFrame, dict] | None = None,
                 irradiance: str | Path | LayerSpec | None = None,
                 grid_co2_t_per_mwh: float = 0.5703,
                 coal_gce_per_kwh: float = 290.0,
                 new_building_since: int = 2022,
                 known_yields: pd.DataFrame | None = None,
                 obstacles: gpd.GeoDataFrame | None = None,
                 dsm: str | Path | LayerSpec | None = None,
                 dem: str | Path | LayerSpec | None = None) -> gpd.GeoDataFrame:
    """Rooftop PV potential of every building.

    Parameters
    ----------
    buildings : geopandas.GeoDataFrame
        Canonical buildings layer in a projected metric CRS (columns as in the layer contract;
        optional ones may be missing).
    params : PVParams, optional
        Assumptions; default ``pv_params("base")``.
    weather : (data, meta) or NO_WEATHER, optional
        From :func:`gis.solar.read_weather`; default: :func:`gis.solar.climate_model` at the
        centre of the buildings.  :data:`NO_WEATHER`: yields are not computed
        (:func:`without_yields`), shading by neighbours is skipped.
    irradiance : str or Path, optional
        Annual roof irradiation raster [kWh/m²/yr] for shading factors.
    grid_co2_t_per_mwh : float
        Grid emission factor [t CO₂/MWh].
    coal_gce_per_kwh : float
        Coal-fired supply consumption [gce/kWh].
    new_building_since : int
        Buildings built in or after this year are new (``is_new`` for government, public and
        industrial buildings).
    known_yields : DataFrame, optional
        Specific yields already computed (for example once for all partitions of a large run),
        columns ``roof_type`` ("flat"/"pitched": the mount), ``tilt``, ``azimuth`` [°, class
        values] and ``specific_yield_kwh_kwp``; classes it lacks are computed from the weather.
    obstacles : geopandas.GeoDataFrame, optional
        Buildings that cast shadows on these roofs in the footprints × heights model (``height``
        and/or ``floors``); default: the buildings themselves.  A piece of a larger district
        passes every building within the search distance of its roofs.
    dsm : str, Path or LayerSpec, optional
        Surface model raster [m] (ground + buildings + trees) for shading (``[layers.dsm]``).
    dem : str, Path or LayerSpec, optional
        Bare-ground raster [m] under the footprints × heights model (``[layers.dem]``).

    Returns
    -------
    geopandas.GeoDataFrame
        One row per building, index equal to the input's, columns :data:`OUTPUT_COLUMNS` and
        ``geometry``: areas [m²], ``capacity_kwp`` [kWp], ``specific_yield_kwh_kwp`` [kWh/kWp/yr,
        unshaded, for the module orientation], ``shading_factor`` [-], ``annual_kwh`` [kWh/yr],
        ``co2_t`` and ``coal_t`` [t/yr], ``reason`` ("" when the roof gets PV),
        ``floor_area_m2`` (footprint × floors, floors from height ÷ 3 m or 1 when missing),
        ``unshaded_kwh`` [kWh/yr] (the roof's whole usable area with no shading by
        neighbours), ``shading_loss_kwh`` [kWh/yr] (``unshaded_kwh − annual_kwh``) and
        ``shading_source`` (``lod1``, ``dsm``, ``irradiance`` or ``none``).

    Shading (``[pv] shading``, :func:`shading_source`): an irradiance raster decides for the
    roofs it covers; the other roofs get horizons from the DSM or from footprints × heights
    (:mod:`gis.horizon`).  Sample points below ``min_shading_factor`` mark their share of the
    plane as not usable; ``shading_factor`` is the mean over the points kept (over all points
    when none is kept, reason "shaded").

    Raises
    ------
    InputError
        Buildings without a CRS or in a geographic CRS.

    Examples
    --------
    A 50 m × 20 m flat factory roof (1 000 m²) and a 4 m × 4 m shed, with a known specific yield of
    1 300 kWh/kWp for rows at 25° facing south (``known_yields``, so that no weather is needed) and
    rows covering half the roof (``ground_coverage_ratio``):

    >>> import geopandas as gpd, shapely
    >>> buildings = gpd.GeoDataFrame(
    ...     {"id": ["F1", "S1"], "category": ["industrial", "public"], "street": ["金桥街道"] * 2,
    ...      "year_built": [2023, 2010], "pv_kw": [0.0, 0.0]},
    ...     geometry=[shapely.box(534000, 4331000, 534050, 4331020),
    ...               shapely.box(534100, 4331000, 534104, 4331004)], crs="EPSG:4548")
    >>> yields = pd.DataFrame({"roof_type": ["flat"], "tilt": [25.0], "azimuth": [180.0],
    ...                        "specific_yield_kwh_kwp": [1300.0]})
    >>> pv = pv_potential(buildings, params=pv_params(ground_coverage_ratio=0.5),
    ...                   known_yields=yields)
    >>> pv[["id", "roof_area_m2", "usable_area_m2", "capacity_kwp", "annual_kwh", "reason"]].round(1)
       id  roof_area_m2  usable_area_m2  capacity_kwp  annual_kwh          reason
    0  F1        1000.0           578.9          62.2     80896.2
    1  S1          16.0             0.0           0.0         0.0  roof too small

    Usable area = (50 − 2 × 0.8) × (20 − 2 × 0.8) m² set back × 0.65 = 578.9 m²; capacity =
    578.9 m² × 0.5 × 0.215 kW/m² = 62.2 kWp; energy = 62.2 kWp × 1 300 kWh/kWp.  Savings use the
    grid factor [t/MWh] and the coal supply consumption [gce/kWh]:

    >>> round(float(pv.loc[0, "co2_t"]), 2), round(float(pv.loc[0, "coal_t"]), 2)
    (46.14, 23.46)
    """
    params = params or pv_params()
    if buildings.crs is None or buildings.crs.is_geographic:
        raise InputError(Problem(
            "buildings must be in a projected metric CRS to measure roof areas",
            layer="buildings", value=str(buildings.crs),
            hint="reproject to the working CRS (e.g. EPSG:4548) first"))
    roof = _roofs(buildings, params)
    planes = _planes(roof, buildings, params, known_yields, weather)
    shade = _shading(roof, planes, buildings, params, weather=weather, irradiance=irradiance,
                     obstacles=obstacles, dsm=dsm, dem=dem)
    out = _assemble(roof, planes, shade, buildings, params,
                    grid_co2_t_per_mwh=grid_co2_t_per_mwh, coal_gce_per_kwh=coal_gce_per_kwh,
                    new_building_since=new_building_since)
    return without_yields(out) if no_weather(weather) else out


@dataclass
class _Roofs:
    """Per-building roof geometry (arrays aligned to the buildings)."""

    geoms: np.ndarray
    footprint: np.ndarray
    valid: np.ndarray
    category: pd.Series
    floors: np.ndarray
    height: np.ndarray
    known_type: np.ndarray
    pitched: np.ndarray
    roof_tilt: np.ndarray
    roof_az: np.ndarray
    roof_area: np.ndarray
    cos_tilt: np.ndarray


def _roofs(buildings: gpd.GeoDataFrame, params: PVParams) -> _Roofs:
    """Footprints repaired, roof type (given or inferred), tilt, azimuth and roof area."""
    geoms = np.asarray(buildings.geometry.array, dtype=object)
    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    invalid = present & ~shapely.is_valid(geoms)
    if invalid.any():
        geoms = geoms.copy()
        geoms[invalid] = shapely.make_valid(geoms[invalid])
    footprint = np.nan_to_num(shapely.area(geoms))
    valid = present & (footprint > 0)
    category = _text_column(buildings, "category").fillna("other")
    cat = category.to_numpy(dtype=object)
    floors = _number_column(buildings, "floors")
    given = _text_column(buildings, "roof_type").str.strip().str.lower()
    known = given.isin(["flat", "pitched"]).fillna(False).to_numpy(dtype=bool)
    infer_pitched = np.isin(cat, params.pitched_categories) | (
        np.isin(cat, params.pitched_floor_categories)
        & (np.nan_to_num(floors, nan=np.inf) <= params.pitched_max_floors))
    pitched = np.where(known, given.fillna("").to_numpy(dtype=object) == "pitched",
                       infer_pitched).astype(bool)
    tilt_in = _number_column(buildings, "roof_tilt")
    az_in = _number_column(buildings, "roof_azimuth")
    roof_tilt = np.where(pitched, np.where((tilt_in > 0) & (tilt_in < 90), tilt_in,
                                           params.pitched_tilt_default), 0.0)
    roof_az = np.mod(az_in, 360.0)
    need_az = pitched & valid & ~np.isfinite(roof_az)
    if need_az.any():
        roof_az[need_az] = _long_side_azimuth(geoms[need_az])
    roof_az = np.where(pitched, roof_az, az_in)
    cos_tilt = np.cos(np.radians(roof_tilt))
    return _Roofs(geoms=geoms, footprint=footprint, valid=valid, category=category,
                  floors=floors, height=_number_column(buildings, "height"), known_type=known,
                  pitched=pitched, roof_tilt=roof_tilt, roof_az=roof_az,
                  roof_area=np.where(valid, footprint / cos_tilt, 0.0), cos_tilt=cos_tilt)


@dataclass
class _Planes:
    """Module planes: A faces ``module_az`` (flat roofs: the rows), B the other half of a gable."""

    module_tilt: np.ndarray
    module_az: np.ndarray
    az_b: np.ndarray
    gable: np.ndarray
    yield_a: np.ndarray
    yield_b: np.ndarray
    share_a: np.ndarray
    share_b: np.ndarray
    ratio: np.ndarray
    base_usable: np.ndarray
    existing_m2: np.ndarray
    pv_kw: np.ndarray
    #: footprints shrunk by the edge setback (None where not valid), for the sample points
    inset: np.ndarray | None = None


def _planes(roof: _Roofs, buildings: gpd.GeoDataFrame, params: PVParams,
            known_yields: pd.DataFrame | None, weather) -> _Planes:
    """Orientation classes, their yields, and the set-back usable area before shading."""
    n, pitched, valid = len(roof.valid), roof.pitched, roof.valid
    module_tilt = np.where(pitched, roof.roof_tilt, params.flat_tilt)
    module_az = np.where(pitched, np.nan_to_num(roof.roof_az, nan=180.0), params.flat_azimuth)
    gable = pitched & (params.pitched_planes == 2)
    az_b = np.mod(module_az + 180.0, 360.0)
    yield_a, yield_b = _class_yields(pitched, module_tilt, module_az, params, known_yields,
                                     weather, buildings, extra=(gable, az_b))
    if params.ground_coverage_ratio is not None:
        gcr = params.ground_coverage_ratio
    else:
        gcr = solstice_gcr(_site_lonlat(buildings)[1], params.flat_tilt)
    ratio = np.where(pitched, 1.0, gcr)
    setback_area = np.zeros(n)
    inset = np.full(n, None, dtype=object)
    if valid.any():
        shrunk = shapely.buffer(roof.geoms[valid], -params.edge_setback_m, join_style="mitre") \
            if params.edge_setback_m > 0 else roof.geoms[valid]
        setback_area[valid] = np.nan_to_num(shapely.area(shrunk))
        inset[valid] = shrunk
    fraction = np.where(pitched, params.usable_fraction_pitched, params.usable_fraction_flat)
    factor = pd.Series(roof.category.to_numpy(dtype=object)).map(
        params.category_factor).fillna(1.0).to_numpy(dtype=float)
    pv_kw = np.clip(np.nan_to_num(_number_column(buildings, "pv_kw")), 0.0, None)
    eff = params.module_efficiency
    # planes that may carry modules: flat-roof rows always; a pitched plane unless it faces
    # north; a gable's two halves share the roof equally
    north_a = pitched & (_angle_from_north(module_az) <= params.north_band_deg)
    north_b = _angle_from_north(az_b) <= params.north_band_deg
    return _Planes(module_tilt=module_tilt, module_az=module_az, az_b=az_b, gable=gable,
                   yield_a=np.where(valid, yield_a, np.nan),
                   yield_b=np.where(valid & gable, yield_b, np.nan),
                   share_a=np.where(gable, 0.5, 1.0) * ~north_a,
                   share_b=np.where(gable, 0.5, 0.0) * ~north_b, ratio=ratio,
                   base_usable=setback_area / roof.cos_tilt * fraction * factor,
                   existing_m2=pv_kw / (eff * ratio) if eff > 0 else np.zeros(n), pv_kw=pv_kw,
                   inset=inset)


@dataclass
class _Shade:
    """Per plane: the shading factor of the part kept (all of it when nothing is kept) and the
    share of the plane kept (points at or above ``min_shading_factor``)."""

    factor_a: np.ndarray
    factor_b: np.ndarray
    keep_a: np.ndarray
    keep_b: np.ndarray
    source: np.ndarray


def shading_source(buildings: pd.DataFrame, params: PVParams, *, dsm: Any = None) -> str:
    """Which surface model ``[pv] shading`` resolves to: ``"dsm"``, ``"lod1"`` or ``"none"``.

    ``auto`` takes the DSM when one is given, else footprints × heights when any building has a
    height or floors; ``none`` switches shading by neighbours off.  (An irradiance raster, when
    given, still decides for the roofs it covers.)

    Examples
    --------
    >>> shading_source(pd.DataFrame({"floors": [3, None]}), pv_params())
    'lod1'
    >>> shading_source(pd.DataFrame({"floors": [None]}), pv_params())
    'none'
    """
    if params.shading == "none":
        return "none"
    if dsm is not None:
        return "dsm"
    heights = horizon.building_heights(buildings, storey_height_m=params.storey_height_m)
    return "lod1" if np.isfinite(heights).any() else "none"


def _shading(roof: _Roofs, planes: _Planes, buildings: gpd.GeoDataFrame, params: PVParams, *,
             weather, irradiance, obstacles, dsm, dem) -> _Shade:
    """Shading per plane: the irradiance raster where it covers a roof, else the horizons."""
    n = len(roof.valid)
    ones = np.ones(n)
    shade = _Shade(factor_a=ones.copy(), factor_b=ones.copy(), keep_a=ones.copy(),
                   keep_b=ones.copy(), source=np.full(n, "none", dtype=object))
    todo = roof.valid.copy()
    if irradiance is not None:
        factors, _, covered = shading_factors(
            gpd.GeoSeries(roof.geoms, crs=buildings.crs), irradiance,
            reference_kwh_m2=params.shading_reference_kwh_m2,
            reference_percentile=params.shading_reference_percentile, with_coverage=True)
        covered &= roof.valid
        kept = (factors >= params.min_shading_factor).astype(float)
        for arr, values in ((shade.factor_a, factors), (shade.factor_b, factors),
                            (shade.keep_a, kept), (shade.keep_b, kept)):
            arr[covered] = values[covered]
        shade.source[covered] = "irradiance"
        todo &= ~covered
    source = shading_source(buildings, params, dsm=dsm)
    if source == "none" or not todo.any() or no_weather(weather):
        return shade
    if weather is None:
        lon, lat = _site_lonlat(buildings)
        weather = solar.climate_model(lat, lon)
    table, cls_a, cls_b = _plane_classes(planes, todo, weather, params)
    # a roof's points need not look for obstacles lower than what matters to its planes
    floors = horizon.horizon_floors(table)
    width = len(floors) + 1
    both, floor_of = np.unique(cls_a * width + cls_b + 1, return_inverse=True)  # (a, b) pairs
    a, b = both // width, both % width - 1
    floor_deg = np.where((b >= 0)[:, None], np.minimum(floors[a], floors[b]), floors[a])
    rh = _roof_horizons(roof, todo, buildings, params, obstacles=obstacles, dsm=dsm, dem=dem,
                        floor_deg=floor_deg, floor_of=floor_of.ravel(),
                        insets=None if planes.inset is None else planes.inset[todo])
    rows = np.flatnonzero(todo)[rh.owner]  # the building of each point
    b_pts = planes.gable[rows]
    n_pts = len(rows)
    cls_pts = np.concatenate([cls_a[rh.owner], cls_b[rh.owner][b_pts]])
    # a gable's plane b sees the horizons of plane a's points: rows of them, not a copy
    f = horizon.table_shading_factors(table, cls_pts, rh.horizon_deg,
                                      rows=np.concatenate([np.arange(n_pts),
                                                           np.flatnonzero(b_pts)]))
    for plane, (f_pts, owners) in {"a": (f[:n_pts], rows),
                                   "b": (f[n_pts:], rows[b_pts])}.items():
        factor, keep, has = shading_by_roof(f_pts, owners, n, params.min_shading_factor)
        getattr(shade, f"factor_{plane}")[has] = factor[has]
        getattr(shade, f"keep_{plane}")[has] = keep[has]
    shade.source[todo] = source
    return shade


def _plane_classes(planes: _Planes, todo: np.ndarray, weather: tuple[pd.DataFrame, dict],
                   params: PVParams) -> tuple[horizon.SkyTable, np.ndarray, np.ndarray]:
    """The sky of the module planes of the roofs ``todo``, summed once per orientation class
    (as :func:`point_factors` rounds them), and each roof's class of plane a and of plane b
    (−1: no plane b)."""
    rows = np.flatnonzero(todo)
    tilt, az_a = _class_angles(planes.module_tilt[rows], planes.module_az[rows], params)
    az_b = _class_angles(planes.module_tilt[rows], planes.az_b[rows], params)[1]
    gable = planes.gable[rows]
    classes, cls = horizon.orientation_classes(np.concatenate([tilt, tilt[gable]]),
                                               np.concatenate([az_a, az_b[gable]]))
    cls_a = cls[: len(rows)]
    cls_b = np.full(len(rows), -1, dtype=np.int64)
    cls_b[gable] = cls[len(rows):]
    table = horizon.sky_table(weather, classes[:, 0], classes[:, 1],
                              sectors=int(params.horizon_sectors),
                              params=params.solar(params.mount_flat))
    return table, cls_a.astype(np.int64), cls_b


def _class_angles(tilt: np.ndarray, azimuth: np.ndarray, params: PVParams
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Tilt and azimuth [°] rounded to the classes of the yields."""
    tstep, astep = params.tilt_step_deg, params.azimuth_step_deg
    return (np.clip(np.round(np.asarray(tilt, float) / tstep) * tstep, 0.0, 90.0),
            np.mod(np.round(np.asarray(azimuth, float) / astep) * astep, 360.0))


def point_factors(horizon_deg: np.ndarray, tilt: np.ndarray, azimuth: np.ndarray,
                  weather: tuple[pd.DataFrame, dict], params: PVParams) -> np.ndarray:
    """Shading factor [-] of sample points on module planes, orientations in classes.

    Tilt and azimuth [°] are rounded to the classes of the yields (``tilt_step_deg``,
    ``azimuth_step_deg``), so that the sky is summed once per class
    (:func:`gis.horizon.point_shading_factors`).
    """
    tilt_c, az_c = _class_angles(tilt, azimuth, params)
    return horizon.point_shading_factors(horizon_deg, tilt_c, az_c, weather,
                                         params=params.solar(params.mount_flat))


def shading_by_roof(factors: np.ndarray, owner: np.ndarray, n: int, min_shading_factor: float
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample-point shading factors gathered per roof (or roof plane).

    Points below ``min_shading_factor`` take their share of the roof out of the usable area.

    Parameters
    ----------
    factors : numpy.ndarray
        Shading factor of each point [-].
    owner : numpy.ndarray
        Position (0..n-1) of each point's roof.
    n : int
        Number of roofs.
    min_shading_factor : float
        Points below it are not usable [-].

    Returns
    -------
    factor : numpy.ndarray
        Mean factor of the points kept; of all points where none is kept [-].
    keep : numpy.ndarray
        Share of the points kept [-].
    has : numpy.ndarray
        Roofs with at least one point (the others: NaN in ``factor`` and ``keep``).

    Examples
    --------
    >>> f, k, h = shading_by_roof(np.array([1.0, 0.5, 0.9, 0.4]), np.array([0, 0, 1, 2]), 4, 0.7)
    >>> f.tolist()[:3], k.tolist()[:3], h.tolist()
    ([1.0, 0.9, 0.4], [0.5, 1.0, 0.0], [True, True, True, False])
    """
    total = np.bincount(owner, minlength=n).astype(float)
    ok = factors >= min_shading_factor
    kept = np.bincount(owner, weights=ok, minlength=n)
    sum_all = np.bincount(owner, weights=factors, minlength=n)
    sum_kept = np.bincount(owner, weights=factors * ok, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        factor = np.where(kept > 0, sum_kept / kept, sum_all / total)
        keep = kept / total
    return factor, keep, total > 0


def horizon_options(params: PVParams) -> dict[str, Any]:
    """Keyword arguments of :func:`gis.horizon.roof_horizons` from the ``[pv]`` settings."""
    return {"res": params.surface_resolution_m, "sectors": int(params.horizon_sectors),
            "max_distance_m": params.horizon_distance_m, "spacing_m": params.shading_grid_m,
            "inset_m": params.edge_setback_m, "max_points": int(params.shading_max_points),
            "cache": bool(params.horizon_cache)}


def _roof_horizons(roof: _Roofs, todo: np.ndarray, buildings: gpd.GeoDataFrame,
                   params: PVParams, *, obstacles, dsm, dem, floor_deg=None,
                   floor_of=None, insets=None) -> horizon.RoofHorizons:
    """Horizons of the sample points of the roofs ``todo``; obstacles default to the buildings."""
    storey = params.storey_height_m
    tops = horizon.building_heights(buildings, storey_height_m=storey)
    tops = np.where(np.isfinite(tops), tops, storey)  # unknown height: one storey
    if obstacles is None:
        obs_geoms, obs_tops = roof.geoms[roof.valid], tops[roof.valid]
    else:
        obs_geoms = np.asarray(obstacles.geometry.array, dtype=object)
        obs_tops = horizon.building_heights(obstacles, storey_height_m=storey)
        obs_tops = np.where(np.isfinite(obs_tops), obs_tops, storey)
    return horizon.roof_horizons(
        roof.geoms[todo], roof_tops=tops[todo], obstacles=obs_geoms, obstacle_tops=obs_tops,
        dsm=dsm, dem=dem, crs=buildings.crs, floor_deg=floor_deg, floor_of=floor_of,
        insets=insets, **horizon_options(params))


def shading_summary(pv: pd.DataFrame, params: PVParams, buildings: pd.DataFrame | None = None
                    ) -> dict[str, Any]:
    """What shading did, for run.json: sources, settings and the district's loss.

    Parameters
    ----------
    pv : DataFrame
        Output of :func:`pv_potential`.
    params : PVParams
    buildings : DataFrame, optional
        The input buildings, to state the search distance the default resolved to.

    Returns
    -------
    dict
        ``roofs_by_source`` (count per ``shading_source``), ``unshaded_gwh``, ``annual_gwh``,
        ``shading_loss_gwh`` [GWh/yr], ``shading_loss_share`` [-], the settings and the method.

    Examples
    --------
    >>> pv = pd.DataFrame({"shading_source": ["lod1", "lod1", "none"],
    ...                    "unshaded_kwh": [100.0, 50.0, 0.0], "annual_kwh": [80.0, 50.0, 0.0],
    ...                    "shading_loss_kwh": [20.0, 0.0, 0.0]})
    >>> out = shading_summary(pv, pv_params())
    >>> out["roofs_by_source"], round(out["shading_loss_share"], 3)
    ({'lod1': 2, 'none': 1}, 0.133)
    """
    # min_count: without weather (yields not computed) the sums stay missing, never 0
    unshaded = float(pv["unshaded_kwh"].sum(min_count=1)) / 1e6
    loss = float(pv["shading_loss_kwh"].sum(min_count=1)) / 1e6
    annual = float(pv["annual_kwh"].sum(min_count=1)) / 1e6
    distance = params.horizon_distance_m
    if distance is None and buildings is not None:
        tops = horizon.building_heights(buildings, storey_height_m=params.storey_height_m)
        distance = horizon.default_distance(np.where(np.isfinite(tops), tops,
                                                     params.storey_height_m))
    counts = pv["shading_source"].astype("string").value_counts().sort_index()
    return {
        "roofs_by_source": {str(k): int(v) for k, v in counts.items()},
        "unshaded_gwh": _or_none(unshaded), "annual_gwh": _or_none(annual),
        "shading_loss_gwh": _or_none(loss),
        "shading_loss_share": (loss / unshaded if unshaded > 0 else 0.0) if np.isfinite(unshaded)
        else None,
        "mode": params.shading, "min_shading_factor": params.min_shading_factor,
        "horizon_sectors": params.horizon_sectors, "horizon_distance_m": distance,
        "surface_resolution_m": params.surface_resolution_m,
        "sample_grid_m": params.shading_grid_m, "max_points_per_roof": params.shading_max_points,
        "storey_height_m": params.storey_height_m,
        "method": "horizons of roof sample points on a surface model (DSM, else footprints × "
                  "heights); pvlib sky: beam + circumsolar blocked below the horizon of the "
                  "sun's sector, isotropic sky × sky-view factor of the tilted plane, ground "
                  "reflection unchanged; factor = shaded ÷ unshaded annual POA irradiation "
                  "(gis.horizon)",
    }


def _or_none(x: float) -> float | None:
    """None for a missing figure (yields not computed), so reports show it empty."""
    return x if np.isfinite(x) else None


def _weighted(weights: tuple[np.ndarray, np.ndarray], values: tuple[np.ndarray, np.ndarray],
              fallback: np.ndarray) -> np.ndarray:
    wa, wb = weights
    va, vb = (np.nan_to_num(v) for v in values)
    total = wa + wb
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (wa * va + wb * vb) / total, fallback)


def _energy(roof: _Roofs, planes: _Planes, shade: _Shade, params: PVParams
            ) -> dict[str, np.ndarray]:
    """Usable area after shading, reasons, capacity, yield, shading factor and energy."""
    p, valid = planes, roof.valid
    share = p.share_a + p.share_b
    gross_usable = p.base_usable * share
    w_a, w_b = p.share_a * shade.keep_a, p.share_b * shade.keep_b  # the parts kept
    gross_kept = p.base_usable * (w_a + w_b)
    usable = gross_kept - p.existing_m2
    # the roof's unshaded yield: the planes' yields weighted by their usable share
    yield_all = _weighted((p.share_a, p.share_b), (p.yield_a, p.yield_b),
                          np.fmax(p.yield_a, p.yield_b))
    spec_yield = np.where(valid, _weighted((w_a, w_b), (p.yield_a, p.yield_b), yield_all),
                          np.nan)
    energy_all = _weighted((p.share_a, p.share_b), (p.yield_a * shade.factor_a,
                                                    p.yield_b * shade.factor_b),
                           np.fmax(p.yield_a * shade.factor_a, p.yield_b * shade.factor_b))
    energy = _weighted((w_a, w_b), (p.yield_a * shade.factor_a, p.yield_b * shade.factor_b),
                       energy_all)
    with np.errstate(invalid="ignore", divide="ignore"):
        shading = np.where(spec_yield > 0, energy / spec_yield,
                           _weighted((p.share_a, p.share_b), (shade.factor_a, shade.factor_b),
                                     shade.factor_a))
    shading = np.where(valid, np.clip(shading, 0.0, 1.0), np.nan)
    unshaded_usable = gross_usable - p.existing_m2
    conditions = [~valid, share == 0, gross_usable < params.min_usable_area_m2,
                  unshaded_usable < params.min_usable_area_m2,
                  usable < params.min_usable_area_m2]
    reason = np.select(conditions, list(REASONS), default="")
    gets_pv = reason == ""
    usable = np.where(gets_pv, usable, 0.0)
    eff = params.module_efficiency
    capacity = usable * p.ratio * eff  # × 1 kW/m² (STC irradiance)
    annual = capacity * np.nan_to_num(spec_yield) * np.nan_to_num(shading, nan=1.0)
    # what the roof would give with no shading by neighbours (its whole unshaded usable area)
    free_ok = np.isin(reason, ("", "shaded"))
    unshaded = np.where(free_ok, np.maximum(unshaded_usable, 0.0) * p.ratio * eff
                        * np.nan_to_num(yield_all), 0.0)
    # the plane the modules mostly face (for the output): A, or B where only B is used
    use_b = roof.pitched & (w_a == 0) & (w_b > 0)
    use_b |= roof.pitched & (w_a + w_b == 0) & (p.share_a == 0) & (p.share_b > 0)
    return {"usable": usable, "capacity": capacity, "spec_yield": spec_yield,
            "shading": shading, "annual": annual, "reason": reason, "unshaded": unshaded,
            "module_az": np.where(use_b, p.az_b, p.module_az)}


def _assemble(roof: _Roofs, planes: _Planes, shade: _Shade, buildings: gpd.GeoDataFrame,
              params: PVParams, *, grid_co2_t_per_mwh: float, coal_gce_per_kwh: float,
              new_building_since: int) -> gpd.GeoDataFrame:
    """The output frame: one row per building (:data:`OUTPUT_COLUMNS` and geometry)."""
    e = _energy(roof, planes, shade, params)
    p, valid, annual = planes, roof.valid, e["annual"]
    cat = roof.category.to_numpy(dtype=object)
    year_built = _number_column(buildings, "year_built")
    is_new = np.isin(cat, ("government", "public", "industrial")) & (
        np.nan_to_num(year_built, nan=-np.inf) >= new_building_since)
    floors, height = roof.floors, roof.height
    storeys = np.where(np.isfinite(floors) & (floors > 0), floors,
                       np.where(np.isfinite(height) & (height > 0),
                                np.maximum(1.0, np.round(height / 3.0)), 1.0))
    ids = (buildings["id"].astype("string") if "id" in buildings.columns
           else pd.Series(buildings.index.astype(str), index=buildings.index, dtype="string"))
    out = pd.DataFrame({
        "id": ids.to_numpy(),
        "category": roof.category.to_numpy(),
        "street": _text_column(buildings, "street").to_numpy(),
        "name": _text_column(buildings, "name").to_numpy(),
        "roof_type": np.where(roof.pitched, "pitched", "flat"),
        "roof_tilt": roof.roof_tilt,
        "roof_azimuth": roof.roof_az,
        "roof_area_m2": roof.roof_area,
        "usable_area_m2": e["usable"],
        "capacity_kwp": e["capacity"],
        "specific_yield_kwh_kwp": e["spec_yield"],
        "shading_factor": e["shading"],
        "annual_kwh": annual,
        "co2_t": annual * grid_co2_t_per_mwh / 1000.0,
        "coal_t": annual * coal_gce_per_kwh / 1e6,
        "reason": e["reason"],
        "year_built": year_built,
        "pv_kw": p.pv_kw,
        "is_new": is_new,
        "floor_area_m2": roof.footprint * storeys,
        "roof_type_inferred": ~roof.known_type,
        "module_tilt": np.where(valid, p.module_tilt, np.nan),
        "module_azimuth": np.where(valid, e["module_az"], np.nan),
        "existing_pv_m2": p.existing_m2,
        "unshaded_kwh": e["unshaded"],
        "shading_loss_kwh": np.maximum(e["unshaded"] - annual, 0.0),
        "shading_source": shade.source,
    }, index=buildings.index)
    for col in ("category", "street", "name", "roof_type", "reason", "shading_source"):
        out[col] = out[col].astype("string")
    return gpd.GeoDataFrame(out, geometry=buildings.geometry.array.copy(), crs=buildings.crs)


def _class_yields(pitched, tilt, azimuth, params, known_yields, weather, buildings, *,
                  extra=None) -> tuple[np.ndarray, np.ndarray | None]:
    """Specific yield [kWh/kWp/yr] per building, computed once per orientation class.

    ``extra`` = (mask, azimuth): a second plane for the masked buildings (the other half of a
    gable roof), looked up in the same class table.
    """
    tstep, astep = params.tilt_step_deg, params.azimuth_step_deg
    n = len(tilt)
    mask_b, az_b = extra if extra is not None else (np.zeros(n, bool), np.full(n, np.nan))
    p_all = np.concatenate([pitched, pitched[mask_b]])
    t_all = np.concatenate([tilt, tilt[mask_b]])
    a_all = np.concatenate([azimuth, az_b[mask_b]])
    tilt_c = np.clip(np.round(t_all / tstep) * tstep, 0.0, 90.0)
    az_c = np.mod(np.round(a_all / astep) * astep, 360.0)
    az_c = np.where(tilt_c == 0, 180.0, az_c)
    # one integer key per (mount, tilt, azimuth) class, at 0.1° resolution
    key = (p_all.astype(np.int64) * 10_000_000 + np.round(tilt_c * 10).astype(np.int64) * 10_000
           + np.round(az_c * 10).astype(np.int64))
    ukeys, codes = np.unique(key, return_inverse=True)
    u = pd.DataFrame({"pitched": ukeys >= 10_000_000, "tilt": (ukeys % 10_000_000) // 10_000 / 10,
                      "azimuth": ukeys % 10_000 / 10})
    yields = np.full(len(u), np.nan)
    if known_yields is not None:
        lookup = known_yields.assign(
            pitched=known_yields["roof_type"].astype(str) == "pitched",
            tilt=known_yields["tilt"].astype(float).round(1),
            azimuth=known_yields["azimuth"].astype(float).round(1))
        found = u.merge(lookup, how="left", on=["pitched", "tilt", "azimuth"])
        yields = found["specific_yield_kwh_kwp"].to_numpy(dtype=float, copy=True)
    missing = ~np.isfinite(yields)
    if missing.any() and not no_weather(weather):  # no weather: yields stay missing
        if weather is None:
            lon, lat = _site_lonlat(buildings)
            weather = solar.climate_model(lat, lon)
        data, meta = weather
        for is_pitched in (False, True):  # two mounts, not a loop over buildings
            sel = missing & (u["pitched"] == is_pitched).to_numpy()
            if sel.any():
                mount = params.mount_pitched if is_pitched else params.mount_flat
                table = solar.yield_table(data, meta, u.loc[sel, "tilt"], u.loc[sel, "azimuth"],
                                          params=params.solar(mount), grid=False)
                yields[sel] = table["specific_yield_kwh_kwp"].to_numpy()
    per_plane = yields[codes]
    second = np.full(n, np.nan)
    second[mask_b] = per_plane[n:]
    return per_plane[:n], second


# ---------------------------------------------------------------------------------------------
# Roll-ups


def _rollup(pv: pd.DataFrame, by: str) -> pd.DataFrame:
    key = pv[by].astype("string").fillna("(unassigned)") if by else pd.Series(
        "district", index=pv.index)
    grouped = pd.DataFrame({
        "buildings": 1,
        "buildings_with_potential": (pv["capacity_kwp"] > 0).astype(int),
        "roof_area_m2": pv["roof_area_m2"],
        "usable_area_m2": pv["usable_area_m2"],
        "mwp": pv["capacity_kwp"] / 1000.0,
        "gwh": pv["annual_kwh"] / 1e6,
        "co2_t": pv["co2_t"],
        "coal_t": pv["coal_t"],
        "unshaded_gwh": (pv["unshaded_kwh"] if "unshaded_kwh" in pv else pv["annual_kwh"]) / 1e6,
        "shading_loss_gwh": (pv["shading_loss_kwh"] if "shading_loss_kwh" in pv
                             else 0.0 * pv["annual_kwh"]) / 1e6,
    }, index=pv.index).groupby(key.rename(by or "district"), sort=True).sum(min_count=1)
    unshaded = grouped["unshaded_gwh"]
    share = grouped["shading_loss_gwh"] / unshaded.where(unshaded > 0)
    # no unshaded yield: no loss (0); yields not computed (no weather): missing
    grouped["shading_loss_share"] = share.where(unshaded.isna() | (unshaded > 0), 0.0)
    return grouped.reset_index()


def pv_rollups(pv: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Totals per street, per category and for the district.

    Parameters
    ----------
    pv : DataFrame
        Output of :func:`pv_potential`.

    Returns
    -------
    dict
        ``{"street": ..., "category": ..., "district": ...}``, each with columns ``buildings``,
        ``buildings_with_potential``, ``roof_area_m2``, ``usable_area_m2`` [m²], ``mwp`` [MWp],
        ``gwh`` [GWh/yr], ``co2_t``, ``coal_t`` [t/yr], ``unshaded_gwh`` [GWh/yr] (the same
        roofs without shading by neighbours), ``shading_loss_gwh`` [GWh/yr] and
        ``shading_loss_share`` [-] (loss ÷ unshaded).  Buildings without a street are grouped
        under ``"(unassigned)"``.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> buildings = gpd.GeoDataFrame(
    ...     {"id": ["F1", "F2"], "category": ["industrial", "commercial"],
    ...      "street": ["金桥街道", None]},
    ...     geometry=[shapely.box(534000, 4331000, 534050, 4331020),
    ...               shapely.box(534100, 4331000, 534150, 4331020)], crs="EPSG:4548")
    >>> yields = pd.DataFrame({"roof_type": ["flat"], "tilt": [25.0], "azimuth": [180.0],
    ...                        "specific_yield_kwh_kwp": [1300.0]})
    >>> pv = pv_potential(buildings, params=pv_params(ground_coverage_ratio=0.5),
    ...                   known_yields=yields)
    >>> street = pv_rollups(pv)["street"]
    >>> street[["street", "buildings", "mwp", "gwh"]].round(4)
             street  buildings     mwp     gwh
    0  (unassigned)          1  0.0622  0.0809
    1          金桥街道          1  0.0622  0.0809
    >>> round(float(pv_rollups(pv)["district"].loc[0, "mwp"]), 4)
    0.1245
    """
    return {"street": _rollup(pv, "street"), "category": _rollup(pv, "category"),
            "district": _rollup(pv, "")}


# ---------------------------------------------------------------------------------------------
# Targets

#: Category groups of the whole-county pilot (2021): target id → categories.
PILOT_GROUPS: dict[str, tuple[str, ...]] = {
    "pv-pilot-government": ("government",),
    "pv-pilot-public": ("public",),
    "pv-pilot-commercial-industrial": ("commercial", "industrial"),
    "pv-pilot-rural": ("rural_residential",),
}

#: Estimated building energy use [kWh per m² floor area per year] for the renewable substitution
#: rate, cold climate zone (寒冷地区, Tianjin).  Non-heating use after the constraint values of
#: GB/T 51161-2016 《民用建筑能耗标准》 (offices ≈ 70 party/government, ≈ 85 commercial; hotels and
#: shops higher; residential ≈ 2 700 kWh per household ≈ 30 kWh/m²), plus district heating at about
#: 0.25 GJ/m² (≈ 70 kWh/m²) for Tianjin in the same standard.  Rounded planning estimates:
#: override them with ``energy_intensity_kwh_m2``.
ENERGY_INTENSITY_KWH_M2: dict[str, float] = {
    "government": 140.0,
    "public": 130.0,
    "commercial": 190.0,
    "residential": 100.0,
    "other": 120.0,
}

#: Categories counted as urban (civil) buildings for the substitution rate; industrial plants
#: book their energy under industry, rural housing is not urban.
URBAN_CATEGORIES = ("government", "public", "commercial", "residential", "other")


def _unevaluated(spec: dict, basis: str, gap_unit: str, **extra: Any) -> dict[str, Any]:
    item = entry(spec, value=0.0, gap=0.0, gap_unit=gap_unit, basis=basis, **extra)
    item.update(value=None, met=None, gap=None)
    return item


def _installable(pv: pd.DataFrame) -> pd.Series:
    """Roof area that carries or can carry PV [m²]: usable area plus area of existing PV."""
    return pv["usable_area_m2"] + np.minimum(pv["existing_pv_m2"], pv["roof_area_m2"])


def pv_targets(pv: pd.DataFrame, targets: dict[str, Any], *,
               energy_intensity_kwh_m2: dict[str, float] | None = None
               ) -> tuple[list[dict[str, Any]], dict[str, pd.DataFrame]]:
    """Scorecard entries of the PV targets, and the lists that would close their gaps.

    Parameters
    ----------
    pv : DataFrame
        Output of :func:`pv_potential`.
    targets : dict
        From :func:`gis.targets.load_targets`; only the PV targets present are evaluated.
    energy_intensity_kwh_m2 : dict, optional
        Overrides of :data:`ENERGY_INTENSITY_KWH_M2` by category.

    Returns
    -------
    entries : list of dict
        Scorecard entries (:func:`gis.targets.entry`).  Pilot shares carry ``by_street``
        (street, roof_area_m2, installable_m2, value); ``pv-new-public-factory`` carries
        ``buildings_new``, ``buildings_with_pv``, ``share_by_roof_area``, ``closable``;
        ``renewable-substitution`` carries ``pv_gwh``, ``energy_use_gwh``,
        ``existing_pv_share`` and ``energy_intensity_kwh_m2``.
    lists : dict of DataFrame
        ``{"new_building_gap": ...}``: new public/factory buildings without PV, best first
        (``rank``, ``closes_gap``).

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> from gis.targets import load_targets
    >>> buildings = gpd.GeoDataFrame(
    ...     {"id": ["F1", "S1"], "category": ["industrial", "public"], "street": ["金桥街道"] * 2,
    ...      "year_built": [2023, 2023], "pv_kw": [0.0, 0.0]},
    ...     geometry=[shapely.box(534000, 4331000, 534050, 4331020),
    ...               shapely.box(534100, 4331000, 534104, 4331004)], crs="EPSG:4548")
    >>> yields = pd.DataFrame({"roof_type": ["flat"], "tilt": [25.0], "azimuth": [180.0],
    ...                        "specific_yield_kwh_kwp": [1300.0]})
    >>> pv = pv_potential(buildings, params=pv_params(ground_coverage_ratio=0.5),
    ...                   known_yields=yields)
    >>> entries, lists = pv_targets(pv, load_targets("dongli-2025"))
    >>> new = next(e for e in entries if e["id"] == "pv-new-public-factory")
    >>> new["value"], new["gap"], new["gap_unit"], new["buildings_new"]
    (0.0, 1.0, 'buildings', 2)
    >>> lists["new_building_gap"][["rank", "id", "closes_gap"]]
       rank  id  closes_gap
    0     1  F1        True
    >>> pilot = next(e for e in entries if e["id"] == "pv-pilot-commercial-industrial")
    >>> round(pilot["value"], 3), pilot["met"]
    (0.579, True)
    """
    specs = targets.get("targets", {})
    params = targets.get("params", {})
    since = int(params.get("new_building_since", 2022))
    entries: list[dict[str, Any]] = []
    lists: dict[str, pd.DataFrame] = {}
    street = pv["street"].astype("string").fillna("(unassigned)")
    installable = _installable(pv)

    for tid, cats in PILOT_GROUPS.items():
        if tid not in specs:
            continue
        spec = specs[tid]
        sel = pv["category"].isin(cats).fillna(False).to_numpy(dtype=bool)
        roof = float(pv.loc[sel, "roof_area_m2"].sum())
        inst = float(installable[sel].sum())
        basis = (f"Σ installable roof area (usable for new PV + covered by existing PV) ÷ Σ roof "
                 f"area, categories {', '.join(cats)}; preset assumptions of the PV model")
        if roof <= 0:
            entries.append(_unevaluated(spec, f"no {'/'.join(cats)} buildings with a roof",
                                        "m2"))
            continue
        per = pd.DataFrame({"street": street[sel], "roof_area_m2": pv.loc[sel, "roof_area_m2"],
                            "installable_m2": installable[sel]}).groupby("street").sum()
        per["value"] = per["installable_m2"] / per["roof_area_m2"].where(per["roof_area_m2"] > 0)
        by_street = [{"street": str(k), "roof_area_m2": round(float(r.roof_area_m2), 1),
                      "installable_m2": round(float(r.installable_m2), 1),
                      "value": None if pd.isna(r.value) else float(r.value)}
                     for k, r in per.iterrows()]
        value = inst / roof
        entries.append(entry(spec, value=value, gap=float(spec["target"]) * roof - inst,
                             gap_unit="m2", basis=basis, roof_area_m2=roof,
                             installable_m2=inst, by_street=by_street))

    if "pv-new-public-factory" in specs:
        spec = specs["pv-new-public-factory"]
        if "is_new" in pv:  # the definition pv_potential applied (and site lists filter on)
            new = pv["is_new"].fillna(False).to_numpy(dtype=bool)
        else:
            year = pd.to_numeric(pv["year_built"], errors="coerce").to_numpy(dtype=float)
            new = (pv["category"].isin(["government", "public", "industrial"]).fillna(False)
                   .to_numpy(dtype=bool) & (np.nan_to_num(year, nan=-np.inf) >= since))
        has_pv = pd.to_numeric(pv["pv_kw"], errors="coerce").fillna(0).to_numpy() > 0
        n_new, n_with = int(new.sum()), int((new & has_pv).sum())
        basis = (f"buildings with PV (pv_kw > 0) ÷ buildings, government, public and industrial "
                 f"buildings built in or after {since}")
        candidates = pv.loc[new & ~has_pv & (pv["capacity_kwp"] > 0).to_numpy()].sort_values(
            ["annual_kwh", "capacity_kwp"], ascending=False, na_position="last")
        candidates = candidates.assign(rank=np.arange(1, len(candidates) + 1))
        if n_new == 0:
            entries.append(_unevaluated(spec, basis + ": no new buildings in the layer",
                                        "buildings"))
            gap_n = 0
        else:
            gap_n = max(0, math.ceil(float(spec["target"]) * n_new - n_with - 1e-9))
            roof_new = float(pv.loc[new, "roof_area_m2"].sum())
            roof_with = float(pv.loc[new & has_pv, "roof_area_m2"].sum())
            entries.append(entry(
                spec, value=n_with / n_new, gap=gap_n, gap_unit="buildings", basis=basis,
                buildings_new=n_new, buildings_with_pv=n_with,
                share_by_roof_area=roof_with / roof_new if roof_new > 0 else None,
                closable=bool(len(candidates) >= gap_n),
                gap_list="new_building_gap"))
        lists["new_building_gap"] = candidates.assign(closes_gap=candidates["rank"] <= gap_n)

    if "renewable-substitution" in specs:
        spec = specs["renewable-substitution"]
        eui = {**ENERGY_INTENSITY_KWH_M2, **(energy_intensity_kwh_m2 or {})}
        urban = pv["category"].isin(list(URBAN_CATEGORIES)).fillna(False).to_numpy(dtype=bool)
        intensity = pv["category"].map(eui).astype(float).fillna(0.0).to_numpy()
        use_kwh = float((pv["floor_area_m2"].to_numpy() * intensity)[urban].sum())
        existing_kwh = (pv["pv_kw"] * pv["specific_yield_kwh_kwp"].fillna(0)
                        * pv["shading_factor"].fillna(1)).to_numpy()
        existing = float(existing_kwh[urban].sum())
        potential = float(pv["annual_kwh"].to_numpy()[urban].sum())
        basis = ("existing rooftop PV yield ÷ estimated energy use (floor area × energy-use "
                 "intensity incl. heating, after GB/T 51161-2016, cold zone), urban buildings: "
                 + ", ".join(URBAN_CATEGORIES) + "; potential_share adds the rooftop potential")
        if use_kwh <= 0:
            entries.append(_unevaluated(spec, basis + ": no urban floor area", "share"))
        elif not np.isfinite(pv["annual_kwh"].to_numpy(dtype=float)[urban]).any():
            note = (pv["yield_note"].dropna().iloc[0] if "yield_note" in pv
                    and pv["yield_note"].notna().any() else YIELD_NOTE)
            entries.append(_unevaluated(
                spec, f"{basis}: yields {note}", "GWh/yr", reason=f"yields {note}",
                energy_use_gwh_estimate=use_kwh / 1e6))
        else:
            value = existing / use_kwh
            # the gap as the yearly renewable energy still missing: what a planner can act on
            missing_gwh = (float(spec["target"]) * use_kwh - existing) / 1e6
            potential_share = (existing + potential) / use_kwh
            entries.append(entry(
                spec, value=value, gap=missing_gwh, gap_unit="GWh/yr",
                gap_pp=max(0.0, float(spec["target"]) - value) * 100,
                basis=basis, existing_pv_gwh=existing / 1e6, potential_pv_gwh=potential / 1e6,
                energy_use_gwh=use_kwh / 1e6, potential_share=potential_share,
                closable=bool(potential_share >= float(spec["target"])),
                energy_intensity_kwh_m2=eui))
    return entries, lists

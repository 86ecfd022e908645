"""Weather and specific yield [kWh/kWp/yr] by roof orientation, with pvlib.

The yield of a roof depends on its orientation class (tilt, azimuth) and on how the array is
mounted; it does not depend on which building carries it.  :func:`yield_table` therefore runs pvlib
once per class for a whole district (all classes at once, as 2-D numpy arrays classes × hours) and
:mod:`gis.rooftop` joins the table onto the buildings.

Weather comes from a typical-year file (:func:`read_weather`: EPW, or PVGIS TMY as JSON/CSV/EPW) or,
when the planner has none, from :func:`climate_model`: pvlib clear sky scaled by monthly
long-term figures for the site.

Model chain for one class (the same steps as pvlib's ``ModelChain`` with PVWatts):

1. sun position at the middle of each interval (see *Timestamps* below);
2. plane-of-array irradiance with the Perez (default) or Hay–Davies transposition
   (``pvlib.irradiance.get_total_irradiance``), extraterrestrial DNI and relative air mass as pvlib
   computes them;
3. reflection losses on the beam component (``pvlib.iam.physical``, as ``ModelChain`` does for
   PVWatts; switch off with ``iam_model="none"``);
4. cell temperature, SAPM (``pvlib.temperature.sapm_cell``, mount by parameter) or Faiman;
5. PVWatts DC power with a temperature coefficient ``gamma_pdc`` [1/°C];
6. PVWatts system losses (default 14.08 %, ``pvlib.pvsystem.pvwatts_losses()`` with its defaults);
7. PVWatts inverter with nominal efficiency 0.96 (``pvlib.inverter.pvwatts``).

Timestamps
----------
EPW data are hour-ending: the record labelled 01:00 holds the hour 00:00–01:00.  pvlib's
``read_epw`` already moves each label back by one hour (its index is the *start* of the interval),
so the sun is taken at index + 30 min, i.e. at the middle of the hour ("label − 30 min").  PVGIS
TMY timestamps are UTC hours whose irradiance refers to an instant given by the file's
"irradiance time offset" (hours after the stamp) when it states one; that offset is used as is.
The built-in climate model builds its own irradiance at mid-hour.
"""

from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pvlib

from gis._errors import InputError, Problem

#: Weather columns every source is mapped onto.
WEATHER_COLUMNS = ("ghi", "dni", "dhi", "temp_air", "wind_speed")

TRANSPOSITIONS = ("perez", "haydavies", "isotropic")
TEMPERATURE_MODELS = ("sapm", "faiman")
IAM_MODELS = ("physical", "none")
#: SAPM mounts (pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"]).
SAPM_MOUNTS = tuple(pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"])

# Hours of typical year a weather file must hold (a leap year has 8784).
_MIN_HOURS = 8760


@dataclass(frozen=True)
class SolarParams:
    """How irradiance becomes AC energy for one kWp.

    Parameters
    ----------
    transposition : {"perez", "haydavies", "isotropic"}
        Sky-diffuse transposition model (``pvlib.irradiance.get_total_irradiance``).
    temperature_model : {"sapm", "faiman"}
        Cell temperature model.
    mount : str
        SAPM mount (``pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"]`` key):
        ``open_rack_glass_polymer`` for tilted rows on flat roofs, ``close_mount_glass_glass`` for
        modules flush on a pitched roof.
    faiman_u0 : float
        Faiman constant heat transfer coefficient [W/(m²·K)] (pvlib default 25.0).
    faiman_u1 : float
        Faiman wind-dependent heat transfer coefficient [W·s/(m³·K)] (pvlib default 6.84).
    gamma_pdc : float
        Temperature coefficient of DC power [1/°C] (PVWatts: −0.0035 for standard modules).
    losses_percent : float
        System losses [%] (PVWatts default 14.08: soiling 2, shading 3, mismatch 2, wiring 2,
        connections 0.5, LID 1.5, nameplate 1, availability 3; ``pvlib.pvsystem.pvwatts_losses``).
    inverter_efficiency : float
        Nominal inverter efficiency [-] (``pvlib.inverter.pvwatts`` ``eta_inv_nom``, 0.96).
    dc_ac_ratio : float
        Array DC nameplate ÷ inverter DC rating [-]; 1.0 means no clipping below nameplate.
    iam_model : {"physical", "none"}
        Reflection losses on the beam component.
    albedo : float or None
        Ground reflectance [-]; None takes the weather's ``albedo`` column where it holds valid
        values (0–1) and 0.2 elsewhere.
    """

    transposition: str = "perez"
    temperature_model: str = "sapm"
    mount: str = "open_rack_glass_polymer"
    faiman_u0: float = 25.0
    faiman_u1: float = 6.84
    gamma_pdc: float = -0.0035
    losses_percent: float = 14.08
    inverter_efficiency: float = 0.96
    dc_ac_ratio: float = 1.0
    iam_model: str = "physical"
    albedo: float | None = None

    def __post_init__(self) -> None:
        problems = []
        for name, allowed in (("transposition", TRANSPOSITIONS),
                              ("temperature_model", TEMPERATURE_MODELS),
                              ("iam_model", IAM_MODELS), ("mount", SAPM_MOUNTS)):
            if getattr(self, name) not in allowed:
                problems.append(Problem(f"unknown {name.replace('_', ' ')}", column=f"pv.{name}",
                                        value=getattr(self, name),
                                        hint=f"use one of {', '.join(allowed)}"))
        if not 0 <= self.losses_percent < 100:
            problems.append(Problem("losses are a percentage between 0 and 100",
                                    column="pv.losses_percent", value=self.losses_percent))
        if not 0 < self.inverter_efficiency <= 1:
            problems.append(Problem("inverter efficiency is a fraction in (0, 1]",
                                    column="pv.inverter_efficiency",
                                    value=self.inverter_efficiency, hint="write 0.96 for 96 %"))
        if not self.dc_ac_ratio > 0:
            problems.append(Problem("DC/AC ratio must be positive", column="pv.dc_ac_ratio",
                                    value=self.dc_ac_ratio))
        if self.albedo is not None and not 0 <= self.albedo <= 1:
            problems.append(Problem("albedo is a fraction between 0 and 1", column="pv.albedo",
                                    value=self.albedo))
        if problems:
            raise InputError(problems)


# ---------------------------------------------------------------------------------------------
# Weather files


def _bad_file(path: Path, message: str, hint: str = "") -> InputError:
    return InputError(Problem(message, file=str(path), layer="weather",
                              hint=hint or "use an EPW file or a PVGIS typical-year file "
                                           "(json, csv or epw) covering a whole year"))


def _sniff(path: Path) -> str:
    """Format of a weather file from its first bytes, falling back on its suffix."""
    with open(path, "rb") as fh:
        head = fh.read(64).lstrip(b"\xef\xbb\xbf").lstrip()
    if head.startswith(b"LOCATION"):
        return "epw"
    if head.startswith(b"{"):
        return "pvgis-json"
    if head.lower().startswith(b"latitude"):
        return "pvgis-csv"
    suffix = path.suffix.lower()
    return {".epw": "epw", ".json": "pvgis-json", ".csv": "pvgis-csv"}.get(suffix, "unknown")


def _single_year(index: pd.DatetimeIndex, year: int) -> pd.DatetimeIndex:
    """Put every timestamp of a typical year (months from different years) into one year."""
    stamps = pd.to_datetime(pd.DataFrame({"year": year, "month": index.month, "day": index.day,
                                          "hour": index.hour, "minute": index.minute}))
    return pd.DatetimeIndex(stamps).tz_localize(index.tz)


def read_weather(path: str | Path, *, year: int = 2023) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read a typical-year weather file: EPW, or PVGIS TMY (json, csv or epw).

    Parameters
    ----------
    path : str or Path
        The weather file.  The format is recognised from its content (EPW ``LOCATION`` line,
        PVGIS JSON or CSV header), else from its suffix.
    year : int
        Typical years mix months from different years; all timestamps are put into this one.

    Returns
    -------
    data : pandas.DataFrame
        Hourly ``ghi``, ``dni``, ``dhi`` [W/m²], ``temp_air`` [°C], ``wind_speed`` [m/s] (and
        ``albedo`` [-] when the file has it), tz-aware index sorted in time.
    meta : dict
        ``latitude``, ``longitude`` [°], ``altitude`` [m], ``tz`` (str), ``source``
        (``"epw"``, ``"pvgis-json"``, ``"pvgis-csv"``), ``file``, and ``sun_offset_min``: minutes
        to add to the index to get the instant the irradiance refers to (30 for EPW).

    Raises
    ------
    InputError
        When the file is missing, unreadable, truncated (less than a year of hours) or holds
        missing or impossible values.

    Examples
    --------
    >>> read_weather("no-such-file.epw")
    Traceback (most recent call last):
    ...
    gis._errors.InputError: error: file no-such-file.epw, layer 'weather': weather file not found ...
    """
    path = Path(path)
    if not path.is_file():
        raise _bad_file(path, "weather file not found",
                        "check [weather] epw in the run file (paths are relative to the run file)")
    # the checks, the roofs and the ground sites of a run read the same file: parsed once
    # while it stays the same file (path, size, modification time), copies handed out
    stat = path.stat()
    data, meta = _read_weather(path, stat.st_size, stat.st_mtime_ns, int(year))
    return data.copy(), copy.deepcopy(meta)


@functools.lru_cache(maxsize=4)
def _read_weather(path: Path, size: int, mtime_ns: int,
                  year: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    try:
        kind = _sniff(path)
    except OSError as exc:
        raise _bad_file(path, f"cannot read the weather file: {exc.strerror or exc}") from None
    if kind == "unknown":
        raise _bad_file(path, "not a recognised weather file (neither EPW nor PVGIS TMY)")
    try:
        if kind == "epw":
            data, raw_meta = pvlib.iotools.read_epw(path, coerce_year=year)
            meta = {"latitude": raw_meta["latitude"], "longitude": raw_meta["longitude"],
                    "altitude": raw_meta["altitude"], "sun_offset_min": 30.0}
        else:
            fmt = kind.removeprefix("pvgis-")
            if fmt == "json":
                with open(path, encoding="utf-8") as fh:
                    data, raw_meta = pvlib.iotools.read_pvgis_tmy(fh, pvgis_format="json")
            else:
                with open(path, "rb") as fh:
                    data, raw_meta = pvlib.iotools.read_pvgis_tmy(fh, pvgis_format="csv")
            inputs = raw_meta.get("inputs", {})
            loc = inputs.get("location", inputs)
            offset_h = inputs.get("irradiance time offset", 0.0)
            meta = {"latitude": float(loc["latitude"]), "longitude": float(loc["longitude"]),
                    "altitude": float(loc.get("elevation", 0.0)),
                    "sun_offset_min": float(offset_h) * 60.0}
            data.index = _single_year(data.index, year)
            data = data.sort_index()
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, UnicodeDecodeError,
            OSError) as exc:
        # pvlib's parsers fail with whatever the broken line provokes; the planner needs the
        # file name and a plain statement, not pvlib's traceback.
        detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise _bad_file(path, f"cannot parse the weather file as {kind}: {detail}") from None
    meta.update(source=kind, file=str(path), tz=str(data.index.tz))
    data = _check_weather(data, path)
    return data, meta


def _check_weather(data: pd.DataFrame, path: Path) -> pd.DataFrame:
    problems = []
    missing = [c for c in WEATHER_COLUMNS if c not in data.columns]
    if missing:
        problems.append(Problem(f"weather columns missing: {', '.join(missing)}", file=str(path),
                                layer="weather"))
        raise InputError(problems)
    keep = list(WEATHER_COLUMNS) + (["albedo"] if "albedo" in data.columns else [])
    data = data[keep].apply(pd.to_numeric, errors="coerce").astype(float)
    if len(data) < _MIN_HOURS:
        problems.append(Problem(f"only {len(data)} hourly records; a typical year needs "
                                f"{_MIN_HOURS} (is the file truncated?)", file=str(path),
                                layer="weather"))
    for col in WEATHER_COLUMNS:
        n_bad = int(data[col].isna().sum())
        if n_bad:
            problems.append(Problem(f"{n_bad} missing or non-numeric values", file=str(path),
                                    layer="weather", column=col))
    for col in ("ghi", "dni", "dhi"):
        bad = (data[col] < 0) | (data[col] > 1500)
        if bad.any():
            problems.append(Problem(f"{int(bad.sum())} irradiance values outside 0–1500 W/m²",
                                    file=str(path), layer="weather", column=col,
                                    value=float(data.loc[bad, col].iloc[0])))
    if problems:
        raise InputError(problems)
    return data


# ---------------------------------------------------------------------------------------------
# Built-in climate model

#: Monthly means for sites without a weather file, taken from the Tianjin typical meteorological
#: year ``CHN_TJ_Tianjin.545270_TMYx.2009-2023`` (station 545270, 39.08 N 117.05 E; built from
#: NOAA ISD 2009–2023 records with ERA5, distributed by climate.onebuilding.org): ``ghi`` mean
#: daily global horizontal irradiation [kWh/m²/day] per month (annual sum 1 595 kWh/m²);
#: ``t_mean`` mean air temperature, ``t_min``/``t_max`` mean daily minimum and maximum [°C];
#: ``wind`` annual mean wind speed [m/s] (a flat figure; it only enters the cell temperature).
#: tests/test_solar.py recomputes every figure from that file.
CLIMATE_SITES: dict[str, dict[str, Any]] = {
    "Tianjin": {
        "latitude": 39.08,
        "longitude": 117.05,
        "ghi": (2.78, 3.62, 5.07, 5.66, 6.30, 6.16, 5.19, 4.78, 4.38, 3.47, 2.54, 2.46),
        "t_mean": (-2.0, 1.5, 8.7, 15.1, 21.5, 26.2, 27.5, 26.6, 21.3, 14.5, 6.3, -0.5),
        "t_min": (-7.1, -2.8, 3.0, 9.6, 16.2, 21.3, 24.0, 23.1, 17.6, 9.5, 2.3, -5.1),
        "t_max": (3.8, 6.4, 14.6, 20.5, 26.3, 31.1, 31.1, 30.1, 25.7, 19.9, 11.1, 4.9),
        "wind": 2.8,
        "source": "monthly means of the Tianjin typical year CHN_TJ_Tianjin.545270_TMYx.2009-2023 "
                  "(station 545270, 39.08 N 117.05 E; NOAA ISD 2009-2023 with ERA5, "
                  "climate.onebuilding.org)",
    },
}

#: Farthest a site may be from the figures it borrows [km].
CLIMATE_MAX_DISTANCE_KM = 300.0


def _distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(a))


def climate_model(latitude: float, longitude: float, altitude: float = 0.0, *, year: int = 2023,
                  site: dict[str, Any] | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Hourly weather for a typical year built from clear sky and monthly long-term figures.

    Clear-sky irradiance (pvlib Ineichen with pvlib's bundled Linke turbidity climatology) is
    computed at the middle of every hour and scaled month by month so that its monthly global
    horizontal irradiation equals the site's long-term mean (the ratio actual ÷ clear sky is the
    month's clear-sky index).  Beam and diffuse parts are split again from the scaled global with
    the Erbs decomposition.  Air temperature follows the month's mean with a daily cosine between
    the normal minimum and maximum (coolest near sunrise, warmest at 15:00 solar time).

    Parameters
    ----------
    latitude, longitude : float
        Site [°], WGS84.
    altitude : float
        Site altitude [m].
    year : int
        Calendar year of the index (a non-leap year gives 8760 hours).
    site : dict, optional
        Monthly figures in the shape of :data:`CLIMATE_SITES` entries (``ghi`` [kWh/m²/day] and
        ``t_mean``, ``t_min``, ``t_max`` [°C] for 12 months, ``wind`` [m/s], ``source``).  Default:
        the nearest built-in site within :data:`CLIMATE_MAX_DISTANCE_KM`.

    Returns
    -------
    data, meta
        As :func:`read_weather`; ``meta["source"]`` is ``"climate-model"`` and
        ``meta["figures"]`` cites the monthly figures.

    Raises
    ------
    InputError
        When no built-in figures lie near the site and none are given.

    Examples
    --------
    >>> data, meta = climate_model(39.1, 117.4)
    >>> meta["source"], len(data), list(data.columns)
    ('climate-model', 8760, ['ghi', 'dni', 'dhi', 'temp_air', 'wind_speed'])

    The annual horizontal irradiation [kWh/m²] equals the monthly figures summed:

    >>> round(data["ghi"].sum() / 1000)
    1595
    >>> climate_model(30.6, 114.3)
    Traceback (most recent call last):
    ...
    gis._errors.InputError: error: layer 'weather': no built-in climate figures near 30.60 N 114.30 E ...
    """
    if site is None:
        # the roofs, the ground sites and the checks of one run ask for the same site: built once
        data, meta = _built_in_climate(float(latitude), float(longitude), float(altitude),
                                       int(year))
        return data.copy(), copy.deepcopy(meta)
    return _climate_model(latitude, longitude, altitude, year=year, site=site)


@functools.lru_cache(maxsize=8)
def _built_in_climate(latitude: float, longitude: float, altitude: float,
                      year: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    return _climate_model(latitude, longitude, altitude, year=year, site=None)


def _climate_model(latitude: float, longitude: float, altitude: float, *, year: int,
                   site: dict[str, Any] | None) -> tuple[pd.DataFrame, dict[str, Any]]:
    if site is None:
        name, site = min(CLIMATE_SITES.items(), key=lambda kv: _distance_km(
            latitude, longitude, kv[1]["latitude"], kv[1]["longitude"]))
        dist = _distance_km(latitude, longitude, site["latitude"], site["longitude"])
        if dist > CLIMATE_MAX_DISTANCE_KM:
            raise InputError(Problem(
                f"no built-in climate figures near {latitude:.2f} N {longitude:.2f} E (nearest: "
                f"{name}, {dist:.0f} km)", layer="weather",
                hint="give a typical-year weather file in [weather] epw (EPW or PVGIS TMY)"))
    tz_hours = int(round(longitude / 15.0))
    tz = f"Etc/GMT{-tz_hours:+d}" if tz_hours else "UTC"
    index = pd.date_range(f"{year}-01-01", f"{year + 1}-01-01", freq="h", inclusive="left", tz=tz)
    mid = index + pd.Timedelta(minutes=30)
    loc = pvlib.location.Location(latitude, longitude, tz=tz, altitude=altitude)
    solpos = loc.get_solarposition(mid)
    clear = loc.get_clearsky(mid, model="ineichen", solar_position=solpos)
    month = index.month.to_numpy()
    clear_ghi = clear["ghi"].to_numpy()
    clear_month_kwh = np.bincount(month, weights=clear_ghi, minlength=13)[1:] / 1000.0
    n_days = np.array([pd.Timestamp(year, m, 1).days_in_month for m in range(1, 13)])
    target_month_kwh = np.asarray(site["ghi"], dtype=float) * n_days
    k_clear = np.divide(target_month_kwh, clear_month_kwh, out=np.zeros(12),
                        where=clear_month_kwh > 0)
    ghi = clear_ghi * k_clear[month - 1]
    parts = pvlib.irradiance.erbs(ghi, solpos["zenith"].to_numpy(), mid.day_of_year.to_numpy())
    dni = np.nan_to_num(np.asarray(parts["dni"], dtype=float))
    dhi = np.nan_to_num(np.asarray(parts["dhi"], dtype=float))
    # Daily temperature cycle: cosine with its peak at 15:00 local solar time.
    solar_hour = (index.hour.to_numpy() + 0.5 + (longitude - 15.0 * tz_hours) / 15.0) % 24
    t_mean = np.asarray(site["t_mean"], dtype=float)[month - 1]
    amplitude = (np.asarray(site["t_max"], dtype=float)
                 - np.asarray(site["t_min"], dtype=float))[month - 1] / 2.0
    temp = t_mean + amplitude * np.cos(2 * np.pi * (solar_hour - 15.0) / 24.0)
    data = pd.DataFrame({"ghi": ghi, "dni": dni, "dhi": dhi, "temp_air": temp,
                         "wind_speed": float(site["wind"])}, index=index)
    meta = {"latitude": float(latitude), "longitude": float(longitude),
            "altitude": float(altitude), "tz": tz, "source": "climate-model",
            "file": None, "sun_offset_min": 30.0, "figures": site["source"],
            "clear_sky_index": [round(float(k), 3) for k in k_clear]}
    return data, meta


# ---------------------------------------------------------------------------------------------
# Specific yield


@dataclass
class _Sky:
    """Per-hour inputs shared by every orientation class (daylight hours only), as (1, T) rows."""

    zenith: np.ndarray
    azimuth: np.ndarray
    dni: np.ndarray
    ghi: np.ndarray
    dhi: np.ndarray
    dni_extra: np.ndarray
    airmass: np.ndarray
    albedo: np.ndarray
    temp_air: np.ndarray
    wind_speed: np.ndarray
    step_h: float


#: The last weather's per-hour sky: the yields of both mounts and the shading table of one run
#: ask for the same one (the sun's position is most of its cost).
_LAST_SKY: list[tuple[pd.DataFrame, tuple, Any, _Sky]] = []
#: The entries of ``meta`` the sky depends on.
_SKY_META = ("latitude", "longitude", "altitude", "sun_offset_min")


def _sky(data: pd.DataFrame, meta: dict[str, Any], params: SolarParams) -> _Sky:
    key = tuple(meta.get(k) for k in _SKY_META)
    for last_data, last_key, albedo, sky in _LAST_SKY:
        if (last_key == key and albedo == params.albedo
                and last_data.equals(data)):
            return sky
    sky = _sky_of(data, meta, params)
    _LAST_SKY[:] = [(data.copy(), key, params.albedo, sky)]
    return sky


def _sky_of(data: pd.DataFrame, meta: dict[str, Any], params: SolarParams) -> _Sky:
    index = pd.DatetimeIndex(data.index)
    if index.tz is None:
        raise InputError(Problem("weather index has no time zone", layer="weather",
                                 hint="read weather with gis.solar.read_weather"))
    times = index + pd.Timedelta(minutes=float(meta.get("sun_offset_min", 0.0)))
    temp_air = data["temp_air"].to_numpy(dtype=float)
    solpos = pvlib.solarposition.get_solarposition(
        times, meta["latitude"], meta["longitude"], altitude=meta.get("altitude", 0.0),
        temperature=float(np.nanmean(temp_air)))
    zen = solpos["apparent_zenith"].to_numpy()
    up = zen < 90.0
    if len(index) > 1:
        step_h = float(pd.Timedelta(np.median(np.diff(index.asi8)), unit=index.unit)
                       / pd.Timedelta(hours=1))
    else:
        step_h = 1.0
    if params.albedo is not None:
        albedo = np.full(len(index), params.albedo)
    elif "albedo" in data.columns:
        albedo = data["albedo"].to_numpy(dtype=float)
        albedo = np.where((albedo >= 0) & (albedo <= 1), albedo, 0.2)
    else:
        albedo = np.full(len(index), 0.2)
    dni_extra = np.asarray(pvlib.irradiance.get_extra_radiation(times), dtype=float)
    airmass = np.asarray(pvlib.atmosphere.get_relative_airmass(zen), dtype=float)

    def row(values: np.ndarray) -> np.ndarray:
        out = np.asarray(values, dtype=float)[up][None, :]
        out.flags.writeable = False  # shared by the calls that find it in _LAST_SKY
        return out

    return _Sky(zenith=row(zen), azimuth=row(solpos["azimuth"].to_numpy()),
                dni=row(data["dni"].to_numpy()), ghi=row(data["ghi"].to_numpy()),
                dhi=row(data["dhi"].to_numpy()), dni_extra=row(dni_extra),
                airmass=row(airmass), albedo=row(albedo), temp_air=row(temp_air),
                wind_speed=row(data["wind_speed"].to_numpy()), step_h=step_h)


def _yield_chunk(sky: _Sky, tilt: np.ndarray, azimuth: np.ndarray,
                 params: SolarParams) -> np.ndarray:
    """Annual AC energy [kWh/kWp] for classes ``tilt``, ``azimuth`` (1-D arrays of one chunk)."""
    tilt = tilt[:, None]
    azimuth = azimuth[:, None]
    kwargs: dict[str, Any] = {}
    if params.transposition in ("perez", "haydavies"):
        kwargs["dni_extra"] = sky.dni_extra
    if params.transposition == "perez":
        kwargs["airmass"] = sky.airmass
    poa = pvlib.irradiance.get_total_irradiance(
        tilt, azimuth, sky.zenith, sky.azimuth, sky.dni, sky.ghi, sky.dhi,
        albedo=sky.albedo, model=params.transposition, **kwargs)
    shape = np.broadcast_shapes(tilt.shape, sky.zenith.shape)
    poa_global = np.broadcast_to(np.nan_to_num(np.asarray(poa["poa_global"], float)), shape)
    poa_direct = np.broadcast_to(np.nan_to_num(np.asarray(poa["poa_direct"], float)), shape)
    poa_diffuse = np.broadcast_to(np.nan_to_num(np.asarray(poa["poa_diffuse"], float)), shape)
    if params.iam_model == "physical":
        aoi = pvlib.irradiance.aoi(tilt, azimuth, sky.zenith, sky.azimuth)
        iam = np.nan_to_num(np.asarray(pvlib.iam.physical(aoi), dtype=float))
        effective = poa_direct * iam + poa_diffuse
    else:
        effective = poa_global
    if params.temperature_model == "sapm":
        mount = pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"][params.mount]
        t_cell = pvlib.temperature.sapm_cell(poa_global, sky.temp_air, sky.wind_speed, **mount)
    else:
        t_cell = pvlib.temperature.faiman(poa_global, sky.temp_air, sky.wind_speed,
                                          u0=params.faiman_u0, u1=params.faiman_u1)
    # One kWp: pdc0 = 1 kW, so powers are in kW and hourly sums in kWh/kWp.
    pdc = pvlib.pvsystem.pvwatts_dc(effective, t_cell, pdc0=1.0, gamma_pdc=params.gamma_pdc)
    pdc = np.asarray(pdc, dtype=float) * (1.0 - params.losses_percent / 100.0)
    pac = pvlib.inverter.pvwatts(pdc, pdc0=1.0 / params.dc_ac_ratio,
                                 eta_inv_nom=params.inverter_efficiency)
    pac = np.clip(np.nan_to_num(np.asarray(pac, dtype=float)), 0.0, None)
    return pac.sum(axis=1) * sky.step_h


def yield_table(data: pd.DataFrame, meta: dict[str, Any], tilts: Any, azimuths: Any, *,
                params: SolarParams | None = None, grid: bool = True,
                chunk: int = 48) -> pd.DataFrame:
    """Specific yield [kWh/kWp/yr] for every orientation class, computed once per class.

    Parameters
    ----------
    data, meta
        Weather as returned by :func:`read_weather` or :func:`climate_model`.
    tilts : array-like
        Surface tilts [°] (0 = horizontal).
    azimuths : array-like
        Surface azimuths [°] (pvlib convention: 180 = south, 90 = east).
    params : SolarParams, optional
        Model choices; defaults to :class:`SolarParams()`.
    grid : bool
        True: every combination of ``tilts`` × ``azimuths``; False: ``tilts`` and ``azimuths`` are
        equal-length pairs.
    chunk : int
        Classes computed together (memory ≈ chunk × daylight hours × 8 bytes per array).

    Returns
    -------
    pandas.DataFrame
        Columns ``tilt``, ``azimuth`` [°], ``specific_yield_kwh_kwp`` [kWh/kWp/yr] (AC energy per
        kWp of DC nameplate for the weather's year).

    Examples
    --------
    >>> data, meta = climate_model(39.1, 117.4)
    >>> yield_table(data, meta, [0, 35], [90, 180]).round(0)
       tilt  azimuth  specific_yield_kwh_kwp
    0   0.0     90.0                  1254.0
    1   0.0    180.0                  1254.0
    2  35.0     90.0                  1145.0
    3  35.0    180.0                  1514.0
    """
    params = params or SolarParams()
    tilts = np.atleast_1d(np.asarray(tilts, dtype=float))
    azimuths = np.atleast_1d(np.asarray(azimuths, dtype=float))
    if grid:
        tt, aa = np.meshgrid(tilts, azimuths, indexing="ij")
        tilts, azimuths = tt.ravel(), aa.ravel()
    elif tilts.shape != azimuths.shape:
        raise ValueError("tilts and azimuths must have the same length when grid=False")
    sky = _sky(data, meta, params)
    out = np.empty(len(tilts))
    for start in range(0, len(tilts), chunk):  # loop over chunks of classes, not buildings
        stop = start + chunk
        out[start:stop] = _yield_chunk(sky, tilts[start:stop], azimuths[start:stop], params)
    return pd.DataFrame({"tilt": tilts, "azimuth": azimuths, "specific_yield_kwh_kwp": out})


def specific_yield(data: pd.DataFrame, meta: dict[str, Any], surface_tilt: float,
                   surface_azimuth: float, *, params: SolarParams | None = None) -> float:
    """Specific yield [kWh/kWp/yr] of one orientation.

    Parameters
    ----------
    data, meta
        Weather as returned by :func:`read_weather` or :func:`climate_model`.
    surface_tilt : float
        Tilt [°] from horizontal.
    surface_azimuth : float
        Azimuth [°], 180 = south (pvlib convention; PVGIS uses 0 = south).
    params : SolarParams, optional
        Model choices.

    Examples
    --------
    >>> data, meta = climate_model(39.1, 117.3)
    >>> 1200 < specific_yield(data, meta, 35, 180) < 1600
    True
    """
    table = yield_table(data, meta, [surface_tilt], [surface_azimuth], params=params)
    return float(table["specific_yield_kwh_kwp"].iloc[0])


def poa_components(data: pd.DataFrame, meta: dict[str, Any], tilts: Any, azimuths: Any, *,
                   params: SolarParams | None = None) -> dict[str, np.ndarray]:
    """Hourly plane-of-array irradiance split by origin, for shading, per orientation class.

    The same sky as :func:`yield_table` (sun at the middle of each interval, the chosen
    transposition, the weather's albedo), daylight hours only, before reflection losses.

    Parameters
    ----------
    data, meta
        Weather as returned by :func:`read_weather` or :func:`climate_model`.
    tilts, azimuths : array-like
        Equal-length surface tilts and azimuths [°] (180 = south), one pair per class.
    params : SolarParams, optional
        Only ``transposition`` and ``albedo`` matter here.

    Returns
    -------
    dict
        ``sun_elevation``, ``sun_azimuth`` [°] (apparent, 1-D over daylight hours);
        ``beam``, ``circumsolar``, ``isotropic``, ``horizon``, ``ground`` [Wh/m² per interval]
        as (classes × hours) arrays.  ``beam + circumsolar + isotropic + horizon + ground`` is
        pvlib's ``poa_global`` (Perez's horizon band may be negative; Hay–Davies and the
        isotropic model have none).

    Examples
    --------
    >>> data, meta = climate_model(39.1, 117.4)
    >>> parts = poa_components(data, meta, [35.0], [180.0])
    >>> total = sum(parts[k] for k in ("beam", "circumsolar", "isotropic", "horizon", "ground"))
    >>> bool(1700 < total.sum() / 1000 < 2100)   # annual POA irradiation [kWh/m²]
    True
    """
    params = params or SolarParams()
    sky = _sky(data, meta, params)
    tilt = np.atleast_1d(np.asarray(tilts, dtype=float))[:, None]
    azimuth = np.atleast_1d(np.asarray(azimuths, dtype=float))[:, None]
    shape = np.broadcast_shapes(tilt.shape, sky.zenith.shape)

    def full(values: Any) -> np.ndarray:
        return np.broadcast_to(np.nan_to_num(np.asarray(values, dtype=float)), shape) * sky.step_h

    beam = pvlib.irradiance.beam_component(tilt, azimuth, sky.zenith, sky.azimuth, sky.dni)
    zero = np.zeros(shape)
    if params.transposition == "perez":
        comp = pvlib.irradiance.perez(tilt, azimuth, sky.dhi, sky.dni, sky.dni_extra, sky.zenith,
                                      sky.azimuth, sky.airmass, return_components=True)
        iso, circ, hor = comp["poa_isotropic"], comp["poa_circumsolar"], comp["poa_horizon"]
    elif params.transposition == "haydavies":
        comp = pvlib.irradiance.haydavies(tilt, azimuth, sky.dhi, sky.dni, sky.dni_extra,
                                          sky.zenith, sky.azimuth, return_components=True)
        iso, circ, hor = comp["poa_isotropic"], comp["poa_circumsolar"], zero
    else:
        iso, circ, hor = pvlib.irradiance.isotropic(tilt, sky.dhi), zero, zero
    ground = pvlib.irradiance.get_ground_diffuse(tilt, sky.ghi, albedo=sky.albedo)
    return {"sun_elevation": 90.0 - sky.zenith[0], "sun_azimuth": sky.azimuth[0].copy(),
            "beam": full(beam), "circumsolar": full(circ), "isotropic": full(iso),
            "horizon": full(hor), "ground": full(ground)}

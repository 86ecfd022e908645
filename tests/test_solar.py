"""Weather readers, the built-in climate model and specific yield against pvlib run directly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pvlib
import pytest

from gis import solar
from gis._errors import InputError

EPW = Path("/work/shared/data/weather/CHN_TJ_Tianjin.545270_TMYx.2009-2023.epw")
needs_epw = pytest.mark.skipif(not EPW.is_file(), reason="shared Tianjin EPW not available")


@pytest.fixture(scope="module")
def tianjin():
    return solar.read_weather(EPW)


def _pvlib_reference(transposition: str) -> float:
    """South 35° on the Tianjin EPW with pvlib's own ModelChain (PVWatts), 1 kWp."""
    weather, meta = pvlib.iotools.read_epw(EPW, coerce_year=2023)
    # read_epw labels each hour-ending record with the start of its hour: the mid-hour is +30 min
    weather.index = weather.index + pd.Timedelta(minutes=30)
    location = pvlib.location.Location(meta["latitude"], meta["longitude"],
                                       altitude=meta["altitude"], tz="Etc/GMT-8")
    system = pvlib.pvsystem.PVSystem(
        surface_tilt=35, surface_azimuth=180,
        module_parameters={"pdc0": 1000.0, "gamma_pdc": -0.0035},
        inverter_parameters={"pdc0": 1000.0, "eta_inv_nom": 0.96},
        temperature_model_parameters=pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"][
            "open_rack_glass_polymer"])
    chain = pvlib.modelchain.ModelChain(system, location, transposition_model=transposition,
                                        aoi_model="physical", spectral_model="no_loss",
                                        losses_model="pvwatts")
    chain.run_model(weather[["ghi", "dni", "dhi", "temp_air", "wind_speed", "albedo"]])
    return float(chain.results.ac.sum()) / 1000.0


@needs_epw
def test_read_epw_columns_and_meta(tianjin):
    data, meta = tianjin
    assert len(data) == 8760
    assert list(data.columns[:5]) == ["ghi", "dni", "dhi", "temp_air", "wind_speed"]
    assert str(data.index.tz) == "UTC+08:00"
    assert meta["latitude"] == pytest.approx(39.0812)
    assert meta["source"] == "epw" and meta["sun_offset_min"] == 30.0
    # the README of the shared file states ≈ 1 595 kWh/m² global horizontal
    assert data["ghi"].sum() / 1000 == pytest.approx(1595, rel=0.01)


@needs_epw
@pytest.mark.parametrize("transposition", ["perez", "haydavies"])
def test_south_35_matches_pvlib_modelchain(tianjin, transposition):
    data, meta = tianjin
    ours = solar.specific_yield(data, meta, 35, 180,
                                params=solar.SolarParams(transposition=transposition))
    reference = _pvlib_reference(transposition)
    assert 1200 < reference < 1700
    assert ours == pytest.approx(reference, rel=0.02)


@needs_epw
def test_yield_table_grid_equals_single_orientations(tianjin):
    data, meta = tianjin
    table = solar.yield_table(data, meta, [0, 30], [90, 180, 270])
    assert list(table.columns) == ["tilt", "azimuth", "specific_yield_kwh_kwp"]
    assert len(table) == 6
    row = table.query("tilt == 30 and azimuth == 270")["specific_yield_kwh_kwp"].iloc[0]
    assert row == pytest.approx(solar.specific_yield(data, meta, 30, 270), rel=1e-9)
    flat = table.query("tilt == 0")["specific_yield_kwh_kwp"]
    assert flat.max() - flat.min() < 1e-6  # a horizontal plane has no azimuth
    south = solar.specific_yield(data, meta, 30, 180)
    north = solar.specific_yield(data, meta, 30, 0)
    assert north < 0.8 * south


def test_climate_model_tianjin_in_plausible_band():
    data, meta = solar.climate_model(39.15, 117.4)
    assert len(data) == 8760
    assert meta["source"] == "climate-model" and "TMYx" in meta["figures"]
    # monthly scaling reproduces the monthly figures exactly (sum of daily means × days)
    ghi_kwh = data["ghi"].sum() / 1000
    expected = sum(g * d for g, d in zip(solar.CLIMATE_SITES["Tianjin"]["ghi"],
                                         [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31],
                                         strict=True))
    assert ghi_kwh == pytest.approx(expected, rel=1e-6)
    assert data["temp_air"].groupby(data.index.month).mean().iloc[6] == pytest.approx(27.5,
                                                                                        abs=0.2)
    assert 1200 < solar.specific_yield(data, meta, 35, 180) < 1600


def test_climate_model_refuses_sites_without_figures():
    with pytest.raises(InputError, match="no built-in climate figures"):
        solar.climate_model(-33.9, 18.4)


def test_missing_weather_file_names_it(tmp_path):
    with pytest.raises(InputError, match="weather file not found") as info:
        solar.read_weather(tmp_path / "nope.epw")
    assert "nope.epw" in str(info.value)


@needs_epw
def test_truncated_epw_is_an_input_error(tmp_path):
    lines = EPW.read_text().splitlines(keepends=True)
    cut = tmp_path / "cut.epw"
    cut.write_text("".join(lines[:500]))
    with pytest.raises(InputError, match="truncated") as info:
        solar.read_weather(cut)
    assert "cut.epw" in str(info.value)


@needs_epw
def test_corrupt_epw_is_an_input_error(tmp_path):
    lines = EPW.read_text().splitlines(keepends=True)
    bad = tmp_path / "bad.epw"
    bad.write_text(lines[0] + "garbage,,\n" * 20)
    with pytest.raises(InputError) as info:
        solar.read_weather(bad)
    assert "bad.epw" in str(info.value)
    assert "Traceback" not in str(info.value)


def test_unknown_format_is_an_input_error(tmp_path):
    other = tmp_path / "weather.txt"
    other.write_text("hello\n")
    with pytest.raises(InputError, match="not a recognised weather file"):
        solar.read_weather(other)


@needs_epw
def test_pvgis_json_is_read_in_utc(tmp_path, tianjin):
    data, _ = tianjin
    utc = data.index.tz_convert("UTC")
    hourly = [{"time(UTC)": t.strftime("%Y%m%d:%H%M"), "T2m": a, "RH": 50.0, "G(h)": g,
               "Gb(n)": b, "Gd(h)": d, "IR(h)": 300.0, "WS10m": w, "WD10m": 0.0, "SP": 101325.0}
              for t, g, b, d, a, w in zip(utc, data["ghi"], data["dni"], data["dhi"],
                                          data["temp_air"], data["wind_speed"], strict=True)]
    doc = {"inputs": {"location": {"latitude": 39.08, "longitude": 117.05, "elevation": 5.0},
                      "meteo_data": {}},
           "outputs": {"months_selected": [{"month": m, "year": 2015} for m in range(1, 13)],
                       "tmy_hourly": hourly},
           "meta": {"inputs": {}}}
    path = tmp_path / "tmy.json"
    path.write_text(json.dumps(doc))
    pdata, pmeta = solar.read_weather(path)
    assert pmeta["source"] == "pvgis-json"
    assert pmeta["latitude"] == 39.08 and pmeta["altitude"] == 5.0
    assert str(pdata.index.tz) == "UTC" and len(pdata) == 8760
    assert pdata["ghi"].sum() == pytest.approx(data["ghi"].sum())
    assert np.all(np.diff(pdata.index.asi8) > 0)


def test_bad_solar_params_are_input_errors():
    with pytest.raises(InputError) as info:
        solar.SolarParams(transposition="klucher", losses_percent=140)
    columns = {p.column for p in info.value.problems}
    assert columns == {"pv.transposition", "pv.losses_percent"}


def test_climate_figures_are_the_monthly_means_of_the_cited_typical_year(tianjin_epw):
    """Every built-in figure is recomputed from the file it cites."""
    data, meta = pvlib.iotools.read_epw(tianjin_epw)
    data.index = data.index - pd.Timedelta(hours=1)  # hour-ending stamps: keep hours in their day
    site = solar.CLIMATE_SITES["Tianjin"]
    month = data.index.month
    ghi = data["ghi"].groupby(month).sum() / 1000 / (data["ghi"].groupby(month).size() / 24)
    np.testing.assert_allclose(site["ghi"], ghi.round(2), atol=1e-9)
    t = data["temp_air"]
    np.testing.assert_allclose(site["t_mean"], t.groupby(month).mean().round(1), atol=1e-9)
    daily = t.groupby(t.index.date).agg(["min", "max"])
    daily_month = pd.to_datetime(daily.index).month
    np.testing.assert_allclose(site["t_min"], daily["min"].groupby(daily_month).mean().round(1),
                               atol=1e-9)
    np.testing.assert_allclose(site["t_max"], daily["max"].groupby(daily_month).mean().round(1),
                               atol=1e-9)
    assert site["wind"] == pytest.approx(round(data["wind_speed"].mean(), 1))
    assert (site["latitude"], site["longitude"]) == (round(meta["latitude"], 2),
                                                     round(meta["longitude"], 2))


@needs_epw
def test_weather_file_parsed_once_while_unchanged(tmp_path):
    import shutil

    path = tmp_path / "tianjin.epw"
    shutil.copy(EPW, path)
    first, meta = solar.read_weather(path)
    first.iloc[0, 0] = -1.0  # a caller's change reaches no other caller
    meta["latitude"] = 0.0
    again, meta_again = solar.read_weather(path)
    assert again.iloc[0, 0] != -1.0 and meta_again["latitude"] > 38
    assert again.equals(solar.read_weather(EPW)[0])
    # the file changes (a value, so its size and time): read again
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    fields = lines[8].split(",")
    fields[6] = "40.5"  # dry-bulb temperature of the first hour [°C]
    lines[8] = ",".join(fields)
    path.write_text("".join(lines), encoding="utf-8")
    changed, _ = solar.read_weather(path)
    assert changed["temp_air"].iloc[0] == 40.5 != again["temp_air"].iloc[0]

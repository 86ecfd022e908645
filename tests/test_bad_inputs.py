"""Bad input never gives a wrong number quietly or a traceback: exit 2 and a message naming it.

The corpus (:mod:`bad_inputs`) makes each bad file from a small good layer.  Every case is
checked in-process (its message, and no error about anything else), then all cases go through
``gis-planner validate`` in a few run files (several independent problems each), run as a
subprocess like a planner would.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from bad_inputs import (
    BUILDING_COLUMNS,
    CASES,
    CRS,
    X0,
    Y0,
    Case,
    batches,
    buildings,
    lonlat_square,
    parcels,
    toml,
    write_osm,
    write_run,
)

from gis import io
from gis.config import load_runfile
from gis.validate import load_layers

DATA_SUFFIXES = (".gpkg", ".shp", ".geojson", ".tif", ".epw", ".osm")


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "GIS_PLANNER_DEBUG"}
    return subprocess.run([sys.executable, "-m", "gis.cli", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=300, check=False)


def target(folder: Path, runfile: Path, name: str) -> str:
    return str(runfile.resolve()) if name == "run" else str((folder / name).resolve())


def assert_problems(case: Case, problems, folder: Path, runfile: Path) -> None:
    """Every message the case must give is there, naming its file, at its severity."""
    for name, words, severity in case.expect:
        where = target(folder, runfile, name)
        found = [str(p) for p in problems if p.file == where and p.severity == severity]
        assert any(all(w in text for w in words) for text in found), (case.name, words, found)


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------------------
# each case alone, in-process
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(CASES))
def test_each_bad_input_gives_its_message_and_no_other_error(tmp_path, name):
    case = CASES[name]
    runfile = write_run(tmp_path, [case], name)
    problems = load_layers(load_runfile(runfile)).problems
    assert_problems(case, problems, tmp_path, runfile)
    own = {target(tmp_path, runfile, n) for n, _, _ in case.expect} | {str(runfile.resolve())}
    strays = [str(p) for p in problems if p.severity == "error" and p.file not in own]
    assert strays == []


# ------------------------------------------------------------------------------------------------
# all cases through the command line, several independent problems per run file
# ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Every batch of cases written into one folder, and the folder's hashes before any run."""
    folder = tmp_path_factory.mktemp("corpus")
    runs = [(batch, write_run(folder, batch, f"batch{i}"))
            for i, batch in enumerate(batches(list(CASES.values())))]
    return folder, runs, snapshot(folder)


def test_the_corpus_packs_into_few_run_files(corpus):
    _, runs, _ = corpus
    assert sum(len(b) for b, _ in runs) == len(CASES)
    assert len(runs) <= 5 and max(len(b) for b, _ in runs) >= 5


@pytest.mark.parametrize("index", range(4))
def test_validate_lists_every_problem_of_a_run_file_and_exits_2(corpus, index):
    folder, runs, _ = corpus
    if index >= len(runs):
        pytest.skip("fewer batches")
    batch, runfile = runs[index]
    result = cli("validate", str(runfile), cwd=folder)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.splitlines()
    for case in batch:
        for name, words, severity in case.expect:
            where = f"{severity}: file {target(folder, runfile, name)}"
            found = [line for line in lines if line.startswith(where)]
            assert any(all(w in line for w in words) for line in found), (case.name, words, found)
    n_errors = sum(1 for c in batch for *_, sev in c.expect if sev == "error")
    summary = lines[-1]
    assert summary.endswith("nothing was written.")
    assert int(summary.split(" error(s)")[0]) >= n_errors >= len(batch) - 1


def test_run_also_exits_2_with_the_same_problems(corpus, tmp_path):
    folder, runs, before = corpus
    batch, runfile = runs[1]
    result = cli("run", str(runfile), "--out", str(tmp_path / "out"), cwd=folder)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "floors.gpkg" in result.stderr and "outside 0–200" in result.stderr
    assert not (tmp_path / "out").exists()


def test_inputs_are_never_written(corpus):
    """Hash every input before and after loading and reading: equal, and no new files."""
    folder, runs, before = corpus
    for _, runfile in runs:
        load_layers(load_runfile(runfile))
    for path in sorted(folder.iterdir()):
        if path.suffix in (".gpkg", ".shp", ".geojson", ".osm"):
            io.detect_encoding(path)
            io.read_vector(path)
            io.shapefile_problems(path, where={})
        io.file_hash(path)
    assert snapshot(folder) == before


# ------------------------------------------------------------------------------------------------
# the run file itself
# ------------------------------------------------------------------------------------------------

def test_run_file_with_typos_in_keys_and_values(tmp_path):
    buildings().to_file(tmp_path / "b.gpkg")
    (tmp_path / "run.toml").write_text(toml({
        "projct": {"name": "x"},
        "project": {"nmae": "东丽", "crs": "EPSG:45480"},
        "layers": {
            "buildings": {"pth": "b.gpkg"},
            "landuse": {"path": "missing.shp", "scheme": "gbt2101"},
            "zones": {"path": "b.gpkg", "values": {"levl": {"一级": "level1"}}},
            "streets": {"path": "b.gpkg", "colums": {"name": "JZLB"}},
            "irradiance": {"path": "b.gpkg", "band": 0},
        },
        "engine": {"kind": "loacl"},
        "output": {"offline": "yes"},
    }), encoding="utf-8")
    result = cli("validate", "run.toml", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    text = result.stderr
    expected = {
        "'projct'": "did you mean 'project'",
        "'project.nmae'": "did you mean 'name'",
        "'project.crs'": "unknown CRS",
        "'layers.buildings.pth'": "did you mean 'path'",
        "'layers.buildings.path'": "missing required key",
        "'layers.landuse.path'": "file not found",
        "'layers.landuse.scheme'": "did you mean 'gbt21010'",
        "'layers.zones.values.levl'": "did you mean 'level'",
        "'layers.streets.colums'": "did you mean 'columns'",
        "'layers.irradiance.band'": "band number",
        "'engine.kind'": "did you mean 'local'",
        "'output.offline'": "true or false",
    }
    lines = text.splitlines()
    for key, words in expected.items():
        assert any(key in line and words in line and "run.toml" in line for line in lines), key
    assert f"{len(expected)} error(s)" in lines[-1]


def test_category_table_typo_is_named(tmp_path):
    buildings().to_file(tmp_path / "b.gpkg")
    (tmp_path / "run.toml").write_text(toml({"layers": {"buildings": {
        "path": "b.gpkg", "columns": BUILDING_COLUMNS, "categories": {"厂房": "industral"}}}}),
        encoding="utf-8")
    with pytest.raises(Exception) as info:
        load_runfile(tmp_path / "run.toml")
    (problem,) = info.value.problems
    assert problem.column == "layers.buildings.categories.厂房"
    assert problem.value == "industral" and "did you mean 'industrial'" in problem.hint


# ------------------------------------------------------------------------------------------------
# warnings below the threshold, files that are fine
# ------------------------------------------------------------------------------------------------

def test_few_unknown_categories_and_codes_are_warnings_listing_them(tmp_path):
    b = buildings()
    b["JZLB"] = ["住宅", "飞船", "住宅", "住宅", "住宅", "住宅"]
    b.to_file(tmp_path / "b.gpkg")
    lu = parcels()
    lu["DLBM"] = ["0301", "1101", "9999"]
    lu.to_file(tmp_path / "lu.gpkg")
    (tmp_path / "run.toml").write_text(toml({"project": {"crs": "EPSG:4548"}, "layers": {
        "buildings": {"path": "b.gpkg", "columns": BUILDING_COLUMNS, "max_unknown_share": 0.2},
        "landuse": {"path": "lu.gpkg", "max_unknown_share": 0.4}}}), encoding="utf-8")
    layers = load_layers(load_runfile(tmp_path / "run.toml"))
    assert [p for p in layers.problems if p.severity == "error"] == []
    text = "\n".join(str(p) for p in layers.warnings)
    assert "1 buildings (16.7%) have an unknown category, counted as 'other'" in text
    assert "飞船" in text
    assert "1 parcels (33.3% of the area) have codes unknown to scheme gbt21010: 9999" in text
    assert layers.buildings["category"].tolist() == ["residential", "other"] + ["residential"] * 4


def test_the_same_share_one_more_is_an_error(tmp_path):
    b = buildings()
    b["JZLB"] = ["住宅", "飞船", "飞船", "住宅", "住宅", "住宅"]
    b.to_file(tmp_path / "b.gpkg")
    (tmp_path / "run.toml").write_text(toml({"layers": {"buildings": {
        "path": "b.gpkg", "columns": BUILDING_COLUMNS, "max_unknown_share": 0.2}}}),
        encoding="utf-8")
    layers = load_layers(load_runfile(tmp_path / "run.toml"))
    errors = [p for p in layers.problems if p.severity == "error"]
    assert len(errors) == 1 and "2 buildings (33.3%) have an unknown category" in errors[0].message
    assert layers.buildings is None  # a layer with an error is never handed on


def test_osm_extract_reads_as_land_use(tmp_path):
    write_osm(tmp_path / "extract.osm", [
        (lonlat_square(X0, Y0), {"landuse": "forest", "name": "林地"}),
        (lonlat_square(X0 + 200, Y0), {"natural": "water", "water": "pond"}),
        (lonlat_square(X0 + 400, Y0), {"building": "yes"}),
        (lonlat_square(X0 + 600, Y0), {"leisure": "park"}),
    ])
    (tmp_path / "run.toml").write_text(toml({"project": {"crs": "EPSG:4548"}, "layers": {
        "landuse": {"path": "extract.osm"}}}), encoding="utf-8")
    cfg = load_runfile(tmp_path / "run.toml")
    assert cfg.layers["landuse"].scheme == "osm"  # from the suffix
    layers = load_layers(cfg)
    assert [p for p in layers.problems if p.severity == "error"] == []
    assert any("1 OSM polygons without land-use tags" in p.message for p in layers.warnings)
    lu = layers.landuse
    assert lu["code"].tolist() == ["landuse=forest", "natural=water", "leisure=park"]
    assert lu["id"].tolist() == ["way/1", "way/2", "way/4"]
    # 100 m squares; OSM stores 7 decimals of a degree (about 1 cm)
    np.testing.assert_allclose(lu.geometry.area, 10_000.0, rtol=1e-4)


def test_run_file_crs_overrides_a_prj_the_coordinates_do_not_fit(tmp_path):
    gdf = parcels()
    gdf.to_file(tmp_path / "lu.shp")
    (tmp_path / "lu.prj").write_text('LOCAL_CS["Unknown"]')
    (tmp_path / "run.toml").write_text(toml({"layers": {"landuse": {
        "path": "lu.shp", "crs": "EPSG:4548"}}}), encoding="utf-8")
    layers = load_layers(load_runfile(tmp_path / "run.toml"))
    assert [p for p in layers.problems if p.severity == "error"] == []
    assert any("the run file's EPSG:4548 is used" in p.message for p in layers.warnings)
    np.testing.assert_allclose(layers.landuse.geometry.area.sum(), 30_000.0, rtol=1e-3)


def test_official_areas_in_other_units_are_an_error(tmp_path):
    gdf = parcels()
    gdf["TBDLMJ"] = 15.0  # mu, not m²: 1 ha is 15 mu
    gdf.to_file(tmp_path / "lu.gpkg")
    (tmp_path / "run.toml").write_text(toml({"project": {"crs": "EPSG:4548"}, "layers": {
        "landuse": {"path": "lu.gpkg", "columns": {"area": "TBDLMJ"}}}}), encoding="utf-8")
    problems = load_layers(load_runfile(tmp_path / "run.toml")).problems
    (err,) = [p for p in problems if p.severity == "error"]
    assert "add up to 0.0015 × the parcels' drawn area" in err.message and "m²" in err.hint


def test_dates_as_year_built_become_years(tmp_path):
    import pandas as pd

    b = buildings()
    b["JCNF"] = pd.to_datetime(["1990-05-01", "2001-01-01", None, "2015-12-31", "2020-06-30",
                                "1985-01-01"])
    b.to_file(tmp_path / "b.gpkg")
    (tmp_path / "run.toml").write_text(toml({"project": {"crs": "EPSG:4548"}, "layers": {
        "buildings": {"path": "b.gpkg", "columns": {**BUILDING_COLUMNS, "year_built": "JCNF"}}}}),
        encoding="utf-8")
    layers = load_layers(load_runfile(tmp_path / "run.toml"))
    assert [p for p in layers.problems if p.severity == "error"] == []
    years = layers.buildings["year_built"].tolist()
    assert years[:2] == [1990.0, 2001.0] and np.isnan(years[2]) and years[3:] == [2015, 2020, 1985]


def test_float_ids_and_codes_read_from_a_dbf_lose_their_decimal_point(tmp_path):
    gdf = parcels()
    gdf["BSM"] = [101.0, 102.0, 103.0]
    gdf["DLBM"] = [301.0, 1101.0, 404.0]  # the leading zero is lost in the DBF too
    gdf.to_file(tmp_path / "lu.shp")
    (tmp_path / "run.toml").write_text(toml({"project": {"crs": "EPSG:4548"}, "layers": {
        "landuse": {"path": "lu.shp"}}}), encoding="utf-8")
    layers = load_layers(load_runfile(tmp_path / "run.toml"))
    assert layers.landuse["id"].tolist() == ["101", "102", "103"]
    assert layers.landuse["code"].tolist() == ["301", "1101", "404"]
    assert not [p for p in layers.problems if "unknown to scheme" in p.message]


def test_an_output_folder_that_holds_the_inputs_is_refused(tmp_path):
    buildings().to_file(tmp_path / "b.gpkg")
    parcels().to_file(tmp_path / "lu.gpkg")
    (tmp_path / "run.toml").write_text(toml({"project": {"crs": "EPSG:4548"}, "layers": {
        "buildings": {"path": "b.gpkg", "columns": BUILDING_COLUMNS},
        "landuse": {"path": "lu.gpkg"}}, "output": {"dir": "."}}), encoding="utf-8")
    before = snapshot(tmp_path)
    result = cli("run", "run.toml", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "the output folder holds an input file" in result.stderr
    assert snapshot(tmp_path) == before


def test_overlapping_osm_polygons_are_counted_once_everywhere(tmp_path):
    """A pond inside a park: the zone table, parcels.csv and the candidates agree on areas."""
    import json

    import geopandas as gpd
    import pandas as pd
    import shapely

    from gis import pipeline

    write_osm(tmp_path / "extract.osm", [
        (lonlat_square(X0, Y0, 200.0), {"leisure": "park"}),           # 4 ha park …
        (lonlat_square(X0 + 50, Y0 + 50, 100.0), {"natural": "water"}),  # … around a 1 ha pond
        (lonlat_square(X0 + 200, Y0, 200.0), {"landuse": "grass"}),      # 4 ha of grass
    ])
    zone = gpd.GeoDataFrame({"name": ["屏障"], "level": ["barrier"]},
                            geometry=[shapely.box(X0, Y0, X0 + 400, Y0 + 200)], crs=CRS)
    zone.to_file(tmp_path / "zones.gpkg")
    (tmp_path / "run.toml").write_text(toml({
        "project": {"crs": "EPSG:4548"},
        "layers": {"landuse": {"path": "extract.osm"}, "zones": {"path": "zones.gpkg"}},
        "output": {"dir": "out"}}), encoding="utf-8")
    ctx = pipeline.run(tmp_path / "run.toml")
    table = ctx.results["zones"].set_index("zone")
    assert table.loc["屏障", "area_ha"] == pytest.approx(8.0, rel=1e-4)
    assert table.loc["屏障", "blue_ha"] == pytest.approx(1.0, rel=1e-3)
    assert table.loc["屏障", "bluegreen_ha"] == pytest.approx(8.0, rel=1e-3)  # not 9
    classified = ctx.results["landuse"]
    by_group = classified.geometry.area.groupby(classified["group"].to_numpy()).sum() / 1e4
    assert by_group["blue"] == pytest.approx(1.0, rel=1e-3)
    assert by_group.sum() == pytest.approx(8.0, rel=1e-3)  # the park lost the pond's hectare
    parcels = pd.read_csv(tmp_path / "out" / "parcels.csv", encoding="utf-8-sig")
    assert len(parcels) == len(classified)
    card = json.loads((tmp_path / "out" / "scorecard.json").read_text(encoding="utf-8"))
    barrier = next(e for e in card["targets"] if e["id"] == "bluegreen-barrier")
    assert barrier["value"] == pytest.approx(1.0, rel=1e-3)

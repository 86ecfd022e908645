"""The whole run on the demo district at a small scale, and the command line around it."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from gis import io, pipeline

ALL_TARGETS = {"bluegreen-barrier", "bluegreen-level1", "forest-level1", "stock-barrier",
               "pv-new-public-factory", "pv-pilot-government", "pv-pilot-public",
               "pv-pilot-commercial-industrial", "pv-pilot-rural", "renewable-substitution"}


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "gis.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env={"PATH": "/usr/bin:/bin", "HOME": str(Path.home())})


def test_run_json_lists_every_input_with_its_hash(demo_run, demo_dir):
    ctx, out = demo_run
    record = json.loads((out / "run.json").read_text(encoding="utf-8"))
    kinds = {i["kind"] for i in record["inputs"]}
    assert kinds == {"buildings", "landuse", "zones", "streets", "forest", "irradiance"}
    for item in record["inputs"]:
        assert item["sha256"] == io.file_hash(item["path"])
    landuse = next(i for i in record["inputs"] if i["kind"] == "landuse")
    assert landuse["encoding"] == "gbk" and landuse["crs"] == "EPSG:4527"
    assert record["working_crs"] == "EPSG:4548"
    assert record["synthetic"] is True
    assert set(record["outputs"]) >= {"scorecard.json", "buildings_pv.gpkg", "zones.csv",
                                      "sites.csv", "index.html", "run.json"}
    assert all((out / name).exists() for name in record["outputs"])


def test_every_target_is_evaluated(demo_run):
    ctx, out = demo_run
    card = json.loads((out / "scorecard.json").read_text(encoding="utf-8"))
    ids = {e["id"] for e in card["targets"]}
    assert ids >= ALL_TARGETS
    for e in card["targets"]:
        assert e["value"] is not None, e
        assert e["gap"] >= 0
        assert e["met"] == (e["value"] >= e["target"]) or e["id"] == "stock-barrier"
        if e["unit"] == "share":
            assert 0 <= e["value"] <= 1


def test_rerun_keeps_the_previous_run(demo_dir, tmp_path):
    out = tmp_path / "out"
    first = pipeline.run(demo_dir / "run.toml", out_dir=out,
                         steps=[pipeline.STEPS[0], pipeline.STEPS[-1]])
    stamp = (out / "run.json").read_text(encoding="utf-8")
    pipeline.run(first.cfg, out_dir=out, steps=[pipeline.STEPS[0], pipeline.STEPS[-1]])
    assert (tmp_path / "out.previous" / "run.json").read_text(encoding="utf-8") == stamp
    assert not list(tmp_path.glob(".out.staging-*"))


def test_output_folder_holding_inputs_is_refused(demo_dir):
    result = cli("run", demo_dir / "run.toml", "--out", demo_dir)
    assert result.returncode == 2, result.stderr
    assert "output folder holds an input file" in result.stderr
    assert "Traceback" not in result.stderr


def test_foreign_non_empty_output_folder_is_refused_even_with_force(demo_dir, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    for extra in ([], ["--force"]):
        result = cli("run", demo_dir / "run.toml", "--out", tmp_path, *extra)
        assert result.returncode == 2 and "holds no earlier run" in result.stderr
        assert (tmp_path / "notes.txt").read_text() == "mine"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_validate_ok_on_the_demo(demo_dir):
    result = cli("validate", demo_dir / "run.toml")
    assert result.returncode == 0, result.stderr
    assert "all layers usable" in result.stdout
    assert "encoding gbk" in result.stdout


def test_two_runs_give_identical_outputs_apart_from_run_json(demo_run, demo_dir, tmp_path):
    _, first = demo_run
    second = tmp_path / "again"
    pipeline.run(demo_dir / "run.toml", out_dir=second, offline=False)
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    differing = [n for n in names if n != "run.json"
                 and (first / n).read_bytes() != (second / n).read_bytes()]
    assert differing == []
    a = json.loads((first / "run.json").read_text(encoding="utf-8"))
    b = json.loads((second / "run.json").read_text(encoding="utf-8"))
    assert a["run_id"] == b["run_id"] and a["inputs"] == b["inputs"]


def test_compare_names_exactly_the_parcel_that_changed_class(demo_run, demo_dir, tmp_path):
    import shutil

    import pyogrio

    from gis.compare import compare_runs

    _, run_a = demo_run
    changed = tmp_path / "layers"
    shutil.copytree(demo_dir, changed)
    lu = pyogrio.read_dataframe(changed / "landuse.shp", encoding="gbk")
    pick = lu.index[lu["DLBM"] == "0103"][0]  # a dry-cropland parcel becomes arbor forest
    parcel_id = lu.loc[pick, "BSM"]
    lu.loc[pick, ["DLBM", "DLMC"]] = ["0301", "乔木林地"]
    lu.loc[pick, "KCMJ"] = 0.0
    lu.loc[pick, "TBDLMJ"] = lu.loc[pick, "TBMJ"]
    pyogrio.write_dataframe(lu, changed / "landuse.shp", encoding="gbk")
    (changed / "landuse.cpg").unlink(missing_ok=True)
    run_b = tmp_path / "after"
    pipeline.run(changed / "run.toml", out_dir=run_b)
    result = compare_runs(run_a, run_b)
    parcels = result["parcels"]
    assert [c["id"] for c in parcels["changed"]] == [parcel_id]
    assert parcels["changed"][0]["code_a"] == "0103" and parcels["changed"][0]["code_b"] == "0301"
    assert parcels["added"] == [] and parcels["removed"] == []
    assert result["sites"]["added"] == [] and result["sites"]["removed"] == []
    assert result["sites"]["changed"] == []
    forest = next(t for t in result["targets"] if t["id"] == "forest-level1")
    pv = next(t for t in result["targets"] if t["id"] == "pv-pilot-public")
    assert pv["status"] == "same"
    assert forest["status"] in ("same", "changed")


def test_ecology_only_run_with_a_landcover_raster(tmp_path):
    """No buildings: PV targets are listed as not evaluated, the land-cover comparison is written."""
    import geopandas as gpd
    import numpy as np
    import rasterio
    import shapely
    from rasterio.transform import from_origin

    x0, y0 = 534_000.0, 4_331_000.0
    # a 200 m × 100 m zone: west half arbor forest (0301), east half dry cropland (0103)
    parcels = gpd.GeoDataFrame({"BSM": ["a", "b"], "DLBM": ["0301", "0103"]},
                               geometry=[shapely.box(x0, y0, x0 + 100, y0 + 100),
                                         shapely.box(x0 + 100, y0, x0 + 200, y0 + 100)],
                               crs=4548)
    parcels.to_file(tmp_path / "landuse.gpkg")
    zones = gpd.GeoDataFrame({"MC": ["屏障", "一级"], "GKJB": ["barrier", "level1"]},
                             geometry=[shapely.box(x0, y0, x0 + 200, y0 + 100)] * 2, crs=4548)
    zones.to_file(tmp_path / "zones.gpkg")
    classes = np.where(np.arange(20) < 10, 10, 40).astype("uint8")[None, :].repeat(10, axis=0)
    with rasterio.open(tmp_path / "wc.tif", "w", driver="GTiff", width=20, height=10, count=1,
                       dtype="uint8", crs="EPSG:4548", nodata=0,
                       transform=from_origin(x0, y0 + 100, 10, 10)) as dst:
        dst.write(classes, 1)
    from importlib import resources

    preset = resources.files("gis") / "data" / "targets" / "dongli-2025.toml"
    (tmp_path / "targets.toml").write_text(preset.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "run.toml").write_text("""
[project]
name = "ecology only"
crs = "EPSG:4548"
targets = "targets.toml"
[layers.landuse]
path = "landuse.gpkg"
[layers.zones]
path = "zones.gpkg"
[layers.landcover]
path = "wc.tif"
[output]
dir = "out"
""", encoding="utf-8")
    ctx = pipeline.run(tmp_path / "run.toml")
    out = tmp_path / "out"
    card = {e["id"]: e for e in json.loads((out / "scorecard.json").read_text("utf-8"))["targets"]}
    assert card["forest-level1"]["value"] == pytest.approx(0.5, abs=1e-9)
    assert card["bluegreen-level1"]["value"] == pytest.approx(1.0, abs=1e-9)
    assert card["pv-pilot-public"]["value"] is None
    assert "not evaluated" in card["pv-pilot-public"]["basis"]
    assert not (out / "pv_map.html").exists() and (out / "ecology_map.html").exists()
    assert "pv_map.html" not in (out / "index.html").read_text("utf-8")
    record = json.loads((out / "run.json").read_text("utf-8"))
    targets_input = next(i for i in record["inputs"] if i["kind"] == "targets")
    assert targets_input["sha256"] == io.file_hash(tmp_path / "targets.toml")
    comparison = (out / "landcover_comparison.csv").read_text("utf-8-sig")
    assert "forest_coverage_diff_pp" in comparison
    diff = ctx.results["source_comparison"]["forest_coverage_diff_pp"].abs().max()
    assert diff < 1e-6  # the raster is the same layer rasterised on its own edges


def test_rollup_files_equal_the_sum_of_buildings(demo_run):
    import geopandas as gpd
    import pandas as pd

    _, out = demo_run
    pv = gpd.read_file(out / "buildings_pv.gpkg", layer="buildings_pv")
    by_street = pd.read_csv(out / "pv_by_street.csv", encoding="utf-8-sig")
    district = pd.read_csv(out / "pv_by_district.csv", encoding="utf-8-sig")
    assert by_street["gwh"].sum() == pytest.approx(pv["annual_kwh"].sum() / 1e6, rel=1e-9)
    assert district["mwp"].iloc[0] == pytest.approx(pv["capacity_kwp"].sum() / 1e3, rel=1e-9)
    assert by_street["buildings"].sum() == len(pv)
    assert set(by_street["street"]) == set(pv["street"])


def test_every_geopackage_of_a_run_carries_a_qgis_style_and_the_project_opens_them(demo_run):
    import sqlite3
    import zipfile

    import qgis_check

    ctx, out = demo_run
    record = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert "project.qgz" in record["outputs"]
    assert "QGIS styles and project" in record["timings_s"]
    packages = sorted(out.glob("*.gpkg"))
    assert {p.name for p in packages} >= {"buildings_pv.gpkg", "zones.gpkg", "sites.gpkg",
                                          "afforestation.gpkg"}
    for path in packages:
        with sqlite3.connect(path) as con:
            tables = {r[0] for r in con.execute("SELECT table_name FROM gpkg_geometry_columns")}
            styled = [r[0] for r in con.execute(
                "SELECT f_table_name FROM layer_styles WHERE useAsDefault")]
        assert sorted(styled) == sorted(tables), path.name
    with zipfile.ZipFile(out / "project.qgz") as zf:
        text = zf.read("project.qgs").decode("utf-8")
    assert all(f"./{p.name}|layername=" in text for p in packages)
    if qgis_check.qgis_python() is None:
        pytest.skip("PyQGIS (Debian python3-qgis) is not installed")
    seen = qgis_check.inspect(out)
    assert seen["layers"]["buildings_pv.gpkg:buildings_pv"]["field"] == "annual_kwh"
    assert seen["layers"]["zones.gpkg:zones"]["bounds"] == [[0, 0.65], [0.65, 0.85], [0.85, 1]]
    # ground PV by its kind, the corridors' gap parcels as one symbol, every other layer graduated
    expected = {"ground_pv.gpkg:ground_pv": "categorizedSymbol",
                "corridors.gpkg:gaps": "singleSymbol"}
    renderers = {name: info["renderer"] for name, info in seen["layers"].items()}
    assert renderers == {name: expected.get(name, "graduatedSymbol") for name in renderers}
    assert seen["project_read"] and all(i["valid"] for i in seen["project"].values())
    assert len(seen["project"]) == len(seen["layers"])


def test_demo_scale_beyond_the_generator_is_refused(tmp_path):
    result = cli("demo", "--out", tmp_path / "d", "--scale", "6")
    assert result.returncode == 2, result.stderr
    assert "--scale must be in (0, 5]" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "d").exists()


def test_ground_files_are_written_by_the_exports_or_at_the_end(demo_dir, tmp_path):
    """The ground-PV files are named in their step and written with the exports (beside the
    maps); a run that ends before the exports still writes them, with the same rows."""
    steps = {label: fn for label, fn in pipeline.STEPS}
    labels = ["load and validate layers", "ecology", "ecological network",
              "ground PV and finance"]
    short = pipeline.run(demo_dir / "run.toml", out_dir=tmp_path / "short",
                         steps=[(label, steps[label]) for label in labels])
    names = ["ground_pv.csv", "ground_pv.gpkg", "ground_by_district.csv",
             "ground_by_street.csv", "ground_by_kind.csv", "bluegreen_ground.csv",
             "finance_by_street.csv"]
    assert sorted(n for n in short.files if n in names) == sorted(names)
    assert all((tmp_path / "short" / n).is_file() for n in names)
    assert "ground_writes" not in short.prepared
    table = pd.read_csv(tmp_path / "short" / "ground_pv.csv")
    assert len(table) == len(short.results["ground"]) > 0
    assert table["parcel_id"].astype(str).tolist() == \
        short.results["ground"]["parcel_id"].astype(str).tolist()
    money = pd.read_csv(tmp_path / "short" / "finance_by_street.csv")
    assert set(money["site"]) == {"ground"}  # no rooftop PV in this run


def test_the_collector_runs_less_often_during_a_run_and_as_before_after(demo_dir, tmp_path):
    """A run raises the cyclic collector's first threshold (:func:`gis.io.gc_relaxed`) for its
    steps and restores the thresholds it found afterwards, also when a step fails."""
    import gc

    seen = {}

    def record(ctx):
        seen["step"] = gc.get_threshold()

    def fail(ctx):
        raise RuntimeError("stop")

    before = gc.get_threshold()
    pipeline.run(demo_dir / "run.toml", out_dir=tmp_path / "a",
                 steps=[pipeline.STEPS[0], ("record", record), pipeline.STEPS[-1]])
    assert seen["step"] == io.RUN_GC_THRESHOLDS != before
    assert gc.get_threshold() == before
    with pytest.raises(RuntimeError, match="stop"):
        pipeline.run(demo_dir / "run.toml", out_dir=tmp_path / "b",
                     steps=[pipeline.STEPS[0], ("fail", fail)])
    assert gc.get_threshold() == before
    with io.gc_relaxed((5_000, 10, 10)), io.gc_relaxed():  # nested: the outer setting stays
        assert gc.get_threshold() == (5_000, 10, 10)
    assert gc.get_threshold() == before

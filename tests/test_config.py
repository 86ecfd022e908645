from pathlib import Path

import pytest

from gis._errors import RunFileError
from gis.config import load_runfile, parse_runfile
from gis.targets import load_targets


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_paths_resolve_relative_to_the_run_file(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "b.gpkg").write_bytes(b"")
    cfg = load_runfile(write(tmp_path, """
[project]
name = "东丽区"
crs = "EPSG:4548"
[layers.buildings]
path = "data/b.gpkg"
[layers.buildings.columns]
id = "BSM"
[output]
dir = "out"
"""))
    assert cfg.layers["buildings"].path == (tmp_path / "data" / "b.gpkg").resolve()
    assert cfg.output.dir == (tmp_path / "out").resolve()
    assert cfg.layers["buildings"].columns == {"id": "BSM"}
    assert cfg.name == "东丽区" and cfg.crs == "EPSG:4548"


def test_every_problem_is_reported_with_key_and_file(tmp_path):
    path = write(tmp_path, """
[project]
nmae = "typo"
crs = "EPSG:4326"
[layers.buildings]
path = "missing.gpkg"
colums = {id = "BSM"}
[layers.roads]
path = "x.shp"
[output]
offline = "yes"
[engine]
kind = "spark"
""")
    with pytest.raises(RunFileError) as info:
        load_runfile(path)
    text = str(info.value)
    keys = [p.column for p in info.value.problems]
    assert "project.nmae" in keys and "did you mean 'name'" in text
    assert "project.crs" in keys and "projected" in text
    assert "layers.buildings.path" in keys and "file not found" in text
    assert "layers.buildings.colums" in keys and "did you mean 'columns'" in text
    assert "layers.roads" in keys
    assert "output.offline" in keys and "true or false" in text
    assert "engine.kind" in keys
    assert all(p.file == str(path) for p in info.value.problems)
    assert len(info.value.problems) == 7


def test_unknown_canonical_column_and_scheme(tmp_path):
    (tmp_path / "l.shp").write_bytes(b"")
    with pytest.raises(RunFileError) as info:
        parse_runfile({"layers": {"landuse": {"path": "l.shp", "scheme": "corine",
                                              "columns": {"kode": "DLBM"}}}}, base=tmp_path)
    cols = {p.column for p in info.value.problems}
    assert cols == {"layers.landuse.scheme", "layers.landuse.columns.kode"}


def test_invalid_toml_names_the_file(tmp_path):
    path = write(tmp_path, "[project\nname = 1")
    with pytest.raises(RunFileError, match="not valid TOML"):
        load_runfile(path)


def test_target_presets_load_and_user_files_are_checked(tmp_path):
    preset = load_targets("dongli-2025")
    assert preset["targets"]["bluegreen-level1"]["target"] == 0.85
    assert preset["targets"]["forest-level1"]["target"] == 0.275
    assert preset["targets"]["stock-barrier"]["target"] == 60000
    assert preset["params"]["coal_gce_per_kwh"] == 290
    assert load_targets("dongli-2030")["params"]["coal_gce_per_kwh"] == 285
    bad = tmp_path / "t.toml"
    bad.write_text('[[target]]\nid = "x"\nmeasure = "m"\nwhere = "barrier"\ntarget = 65\n'
                   'unit = "share"\ncolour = "red"\n', encoding="utf-8")
    with pytest.raises(RunFileError) as info:
        load_targets(bad)
    text = str(info.value)
    assert "write 0.65 for 65 %" in text and "target[0].colour" in text


@pytest.mark.parametrize("text, expected", [
    ("target = 5\n", "targets must be a list of tables"),
    ("params = 5\n", "params"),
    ('meta = "x"\n', "meta"),
    ('[[target]]\nid = ["a"]\nmeasure = "m"\nwhere = "barrier"\ntarget = 0.5\nunit = "share"\n',
     "must be text"),
])
def test_malformed_targets_files_are_input_errors(tmp_path, text, expected):
    bad = tmp_path / "t.toml"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(RunFileError, match=expected):
        load_targets(bad)


def test_targets_path_resolves_against_the_run_file_folder(tmp_path):
    sub = tmp_path / "project"
    sub.mkdir()
    (sub / "my_targets.toml").write_text(
        '\ufeff[[target]]\nid = "forest-level1"\nmeasure = "forest coverage"\nwhere = "level1"\n'
        'target = 0.3\nunit = "share"\n', encoding="utf-8")
    cfg = parse_runfile({"project": {"targets": "my_targets.toml"}}, base=sub)
    assert cfg.targets == str((sub / "my_targets.toml").resolve())
    assert load_targets(cfg.targets)["targets"]["forest-level1"]["target"] == 0.3  # BOM is fine
    with pytest.raises(RunFileError, match="neither a built-in target preset"):
        parse_runfile({"project": {"targets": "missing.toml"}}, base=sub)


def test_every_parameter_table_suggests_the_closest_key():
    """[pv], [ground], [finance] and [ecology] name the key a typo was meant to be."""
    import pytest

    from gis._errors import InputError
    from gis.finance import finance_params
    from gis.ground import ground_params
    from gis.landuse import ecology_options
    from gis.rooftop import pv_params

    cases = [(lambda: pv_params(module_efficency=0.2), "module_efficiency"),
             (lambda: ground_params(usable_shar={"fishery": 0.5}), "usable_share"),
             (lambda: finance_params(discount=0.06), "discount_rate"),
             (lambda: ecology_options(bluegren="narrow"), "bluegreen")]
    for call, meant in cases:
        with pytest.raises(InputError) as err:
            call()
        assert f"did you mean {meant!r}?" in str(err.value)

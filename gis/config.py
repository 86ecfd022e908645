"""The run file (TOML) → validated, typed settings.

A run file names the layers, how their columns map onto the canonical names, the targets, the PV
and ecology options and where the outputs go.  Every unknown key, wrong type and missing required
value is reported at once, each naming the key and the file.  Paths are relative to the run file.

Example
-------
>>> from gis.config import parse_runfile
>>> cfg = parse_runfile({"project": {"name": "示例"}}, base=".")
>>> cfg.name, cfg.targets, cfg.output.offline
('示例', 'dongli-2025', False)
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gis._errors import Problem, RunFileError, suggest

VECTOR_KINDS = ("buildings", "landuse", "zones", "streets", "forest")
RASTER_KINDS = ("irradiance", "landcover", "dsm", "dem")
LAYER_KINDS = VECTOR_KINDS + RASTER_KINDS

#: canonical columns per layer kind: (required, optional)
CANONICAL_COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "buildings": (
        (),
        ("id", "category", "floors", "height", "roof_type", "roof_tilt", "roof_azimuth", "year_built",
         "pv_kw", "name", "street"),
    ),
    "landuse": (("code",), ("id", "area", "tbmj", "kcmj", "removal", "name")),
    "zones": (("name", "level"), ()),
    "streets": (("name",), ()),
    "forest": ((), ("id", "species", "stock_m3_ha", "stock_m3")),
}

SCHEMES = ("gbt21010", "ydyh2023", "worldcover", "osm")
CATEGORIES = ("government", "public", "commercial", "industrial", "residential",
              "rural_residential", "other")
#: file suffixes of OpenStreetMap extracts (read through GDAL's OSM driver)
OSM_SUFFIXES = (".osm", ".pbf")
#: datums of a vector layer's lon/lat: web-map layers from China are often GCJ-02 or BD-09
DATUMS = ("wgs84", "gcj02", "bd09")
#: the mapped id that means "the file's feature ids / record numbers"
FID = "@fid"
#: farthest a weather file's site may be from the district centre without a change to the run
#: file [km] (the built-in climate model's own limit, gis.solar.CLIMATE_MAX_DISTANCE_KM)
WEATHER_MAX_DISTANCE_KM = 300.0
ZONE_LEVELS = ("barrier", "level1", "level2", "level3", "subzone")
#: Chinese labels shown beside the canonical names
CATEGORY_ZH = {"government": "党政机关", "public": "公共建筑", "commercial": "商业",
               "industrial": "工业厂房", "residential": "住宅", "rural_residential": "农村住宅",
               "other": "其他"}
LEVEL_ZH = {"barrier": "绿色生态屏障", "level1": "一级管控区", "level2": "二级管控区",
            "level3": "三级管控区", "subzone": "分区", "street": "街道", "district": "全区"}

#: habitat classes of the ecological network (gis.network) and the land-use groups of its
#: resistance table
NETWORK_HABITATS = ("forest", "water", "green")
RESISTANCE_GROUPS = ("blue", "forest", "green", "cropland", "construction", "other")
_NETWORK_KEYS = {"enabled": bool, "habitat": list, "min_patch_ha": float, "dispersal_m": float,
                 "resistance": dict, "resolution_m": float, "max_cells": int,
                 "corridor_max_m": float, "max_candidates": int, "rank_by": str,
                 "top_candidates": int}

_LAYER_KEYS_BY_KIND = {
    "buildings": {"path", "layer", "encoding", "crs", "datum", "columns", "values", "categories",
                  "max_unknown_share"},
    "landuse": {"path", "layer", "encoding", "crs", "datum", "columns", "values", "scheme",
                "max_unknown_share"},
    "zones": {"path", "layer", "encoding", "crs", "datum", "columns", "values"},
    "streets": {"path", "layer", "encoding", "crs", "datum", "columns", "values"},
    "forest": {"path", "layer", "encoding", "crs", "datum", "columns", "values"},
    "irradiance": {"path", "crs", "band", "reference_kwh_m2"},
    "landcover": {"path", "crs", "band", "scheme"},
    "dsm": {"path", "crs", "band"},
    "dem": {"path", "crs", "band"},
}


@dataclass(frozen=True)
class LayerSpec:
    """Where one layer is and how to read it.

    ``columns`` maps canonical names to the file's column names; ``values`` maps, per canonical
    column, values in the file to canonical values (for example ``坡屋顶`` → ``pitched``).
    """

    kind: str
    path: Path
    layer: str | None = None
    encoding: str | None = None
    crs: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[Any, Any]] = field(default_factory=dict)
    categories: dict[str, str] = field(default_factory=dict)
    scheme: str | None = None
    band: int = 1
    max_unknown_share: float = 0.05
    reference_kwh_m2: float | None = None
    datum: str = "wgs84"


@dataclass(frozen=True)
class EngineSpec:
    """How the per-building and per-zone work runs: ``local`` or ``dask``."""

    kind: str = "local"
    address: str | None = None
    partitions: int | None = None


@dataclass(frozen=True)
class OutputSpec:
    """Where the outputs go and how maps are published."""

    dir: Path = Path("maps/output")
    offline: bool = False
    max_buildings_drawn: int = 15000
    max_parcels_drawn: int = 25000
    max_excel_rows: int = 100_000


@dataclass(frozen=True)
class RunConfig:
    """A validated run file.

    Attributes
    ----------
    path : Path or None
        The run file (None when built from a dict).
    name : str
        Project name, shown on every page.
    crs : str or None
        Working metric CRS; None means a UTM zone estimated from the data.
    targets : str
        A built-in target preset name or a path to a targets TOML file (resolved).
    synthetic : bool
        The layers are synthetic (the demo district); every output says so.
    layers : dict[str, LayerSpec]
        The layers given, by kind.
    weather : Path or None
        An EPW or PVGIS typical-year file; None uses the built-in climate model.
    pv, ecology : dict
        The ``[pv]`` and ``[ecology]`` tables, checked by :mod:`gis.rooftop` and
        :mod:`gis.ecology`.
    ground, finance : dict
        The ``[ground]`` and ``[finance]`` tables, checked by :mod:`gis.ground` and
        :mod:`gis.finance`.
    network : dict
        The ``[ecology.network]`` table, checked here (see :mod:`gis.network`).
    """

    path: Path | None
    name: str
    crs: str | None
    targets: str
    synthetic: bool
    layers: dict[str, LayerSpec]
    weather: Path | None
    pv: dict[str, Any]
    ecology: dict[str, Any]
    engine: EngineSpec
    output: OutputSpec
    raw: dict[str, Any]
    ground: dict[str, Any] = field(default_factory=dict)
    finance: dict[str, Any] = field(default_factory=dict)
    weather_max_distance_km: float = WEATHER_MAX_DISTANCE_KM
    network: dict[str, Any] = field(default_factory=dict)

    @property
    def base(self) -> Path:
        """The folder relative paths are resolved against."""
        return self.path.parent if self.path else Path.cwd()


_TOP_KEYS = {"project", "layers", "weather", "pv", "ecology", "engine", "output", "ground",
             "finance"}
_PROJECT_KEYS = {"name": str, "crs": str, "targets": str, "synthetic": bool}
_ENGINE_KEYS = {"kind": str, "address": str, "partitions": int}
_OUTPUT_KEYS = {"dir": str, "offline": bool, "max_buildings_drawn": int,
                "max_parcels_drawn": int, "max_excel_rows": int}
_WEATHER_KEYS = {"epw": str, "pvgis": str, "file": str, "max_distance_km": float}


def load_runfile(path: str | Path) -> RunConfig:
    """Read and validate a run file.

    Parameters
    ----------
    path : str or Path
        The run file (TOML).

    Raises
    ------
    RunFileError
        Listing every problem, each naming the key and the file.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "run.toml").write_text(
    ...     '[project]\\nname = "示例"\\ncrs = "EPSG:4548"\\n\\n[pv]\\npreset = "ambitious"\\n\\n'
    ...     '[output]\\ndir = "out"\\n', encoding="utf-8")
    >>> cfg = load_runfile(folder / "run.toml")
    >>> cfg.name, cfg.crs, cfg.targets, cfg.pv, cfg.output.dir == folder / "out"
    ('示例', 'EPSG:4548', 'dongli-2025', {'preset': 'ambitious'}, True)

    Every problem is reported at once, each naming the key:

    >>> _ = (folder / "bad.toml").write_text('[project]\\nnmae = "x"\\ncrs = "EPSG:4326"\\n',
    ...                                      encoding="utf-8")
    >>> load_runfile(folder / "bad.toml")
    Traceback (most recent call last):
    ...
    gis._errors.RunFileError: error: file ...bad.toml, column 'project.nmae': unknown key -> did you mean 'name'? ...
    error: file ...bad.toml, column 'project.crs': the working CRS must be projected (metres); ...
    """
    path = Path(path)
    if not path.is_file():
        raise RunFileError(Problem("run file not found", file=str(path),
                                   hint="give the path of a run file, or run `gis-planner demo`"))
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError:
        raise RunFileError(Problem("run file is not UTF-8 text", file=str(path),
                                   hint="save the run file as UTF-8")) from None
    except tomllib.TOMLDecodeError as exc:
        raise RunFileError(Problem(f"not valid TOML: {exc}", file=str(path),
                                   hint="fix the syntax (strings need quotes, tables [name])")) from None
    return parse_runfile(raw, base=path.resolve().parent, source=path)


def parse_runfile(raw: dict[str, Any], *, base: str | Path, source: Path | None = None) -> RunConfig:
    """Validate a run-file dictionary; relative paths resolve against ``base``.

    Examples
    --------
    >>> cfg = parse_runfile({"project": {"name": "示例"}, "ecology": {"bluegreen": "narrow"}},
    ...                     base=".")
    >>> cfg.ecology, cfg.engine.kind, cfg.output.max_buildings_drawn
    ({'bluegreen': 'narrow'}, 'local', 15000)
    >>> parse_runfile({"layers": {"building": {"path": "b.gpkg"}}}, base=".")
    Traceback (most recent call last):
    ...
    gis._errors.RunFileError: error: file <run file>, column 'layers.building': unknown layer kind -> did you mean 'buildings'? ...
    """
    base = Path(base).resolve()
    src = str(source) if source else "<run file>"
    problems: list[Problem] = []

    def bad(key: str, message: str, value: Any = None, hint: str = "") -> None:
        problems.append(Problem(message, file=src, column=key, value=value, hint=hint))

    def check_table(table: Any, prefix: str, schema: dict[str, type]) -> dict[str, Any]:
        if not isinstance(table, dict):
            bad(prefix, "must be a table", table, f"write [{prefix}]")
            return {}
        for key, value in table.items():
            if key not in schema:
                bad(f"{prefix}.{key}", "unknown key", hint=suggest(key, schema))
            elif not _is_type(value, schema[key]):
                bad(f"{prefix}.{key}", f"must be {_type_name(schema[key])}", value)
        return {k: v for k, v in table.items() if k in schema and _is_type(v, schema[k])}

    for key in raw:
        if key not in _TOP_KEYS:
            bad(key, "unknown table", hint=suggest(key, _TOP_KEYS))

    project = check_table(raw.get("project", {}), "project", _PROJECT_KEYS)
    engine = check_table(raw.get("engine", {}), "engine", _ENGINE_KEYS)
    output = check_table(raw.get("output", {}), "output", _OUTPUT_KEYS)
    weather = check_table(raw.get("weather", {}), "weather", _WEATHER_KEYS)
    for name in ("pv", "ecology", "ground", "finance"):
        if not isinstance(raw.get(name, {}), dict):
            bad(name, "must be a table", raw[name])
    ecology = dict(raw.get("ecology", {})) if isinstance(raw.get("ecology", {}), dict) else {}
    network = _network_table(ecology.pop("network", {}), bad)

    crs = project.get("crs")
    if crs is not None:
        from pyproj import CRS
        from pyproj.exceptions import CRSError

        try:
            parsed = CRS.from_user_input(crs)
            if not parsed.is_projected:
                bad("project.crs", "the working CRS must be projected (metres); areas are never "
                    "computed in degrees", crs, "use EPSG:4548 (CGCS2000 GK CM 117E) or a UTM zone")
        except CRSError:
            bad("project.crs", "unknown CRS", crs, "use a code such as EPSG:4548")

    if engine.get("kind", "local") not in ("local", "dask"):
        bad("engine.kind", "must be local or dask", engine.get("kind"),
            suggest(str(engine.get("kind")), ("local", "dask")))

    max_km = weather.get("max_distance_km", WEATHER_MAX_DISTANCE_KM)
    if not is_number(max_km) or max_km <= 0:
        bad("weather.max_distance_km", "must be a positive distance [km]", max_km)
    weather_path = None
    given = [k for k in ("epw", "pvgis", "file") if k in weather]
    if len(given) > 1:
        bad("weather", "give one weather file", given)
    elif given:
        weather_path = _resolve(base, weather[given[0]])
        if not weather_path.is_file():
            bad(f"weather.{given[0]}", "weather file not found", str(weather_path),
                "fix the path (relative to the run file) or remove it to use the built-in climate")

    layers: dict[str, LayerSpec] = {}
    raw_layers = raw.get("layers", {})
    if not isinstance(raw_layers, dict):
        bad("layers", "must be a table of layers", raw_layers)
        raw_layers = {}
    for kind, table in raw_layers.items():
        prefix = f"layers.{kind}"
        if kind not in LAYER_KINDS:
            bad(prefix, "unknown layer kind", hint=suggest(kind, LAYER_KINDS))
            continue
        if not isinstance(table, dict):
            bad(prefix, "must be a table", table)
            continue
        spec = _layer_spec(kind, table, base, bad)
        if spec is not None:
            layers[kind] = spec

    for key in ("max_buildings_drawn", "max_parcels_drawn"):
        if key in output and output[key] < 1:
            bad(f"output.{key}", "must be at least 1", output[key])
    if "max_excel_rows" in output and not 1 <= output["max_excel_rows"] <= 1_048_575:
        bad("output.max_excel_rows", "must be from 1 to 1048575 (Excel's rows below the header)",
            output["max_excel_rows"], "the complete list is always in the .csv and .gpkg")
    out_dir = _resolve(base, output.get("dir", "maps/output"))
    targets = project.get("targets", "dongli-2025")
    from gis.targets import preset_names

    if targets not in preset_names():
        target_path = _resolve(base, targets)
        if target_path.is_file():
            targets = str(target_path)
        else:
            bad("project.targets", "neither a built-in target preset nor an existing file",
                targets, f"use one of {', '.join(preset_names())} or a path to a targets TOML "
                         "file (relative to the run file)")
    if problems:
        raise RunFileError(problems)
    return RunConfig(
        path=source.resolve() if source else None,
        name=project.get("name", source.stem if source else "run"),
        crs=crs,
        targets=targets,
        synthetic=project.get("synthetic", False),
        layers=layers,
        weather=weather_path,
        pv=dict(raw.get("pv", {})),
        ecology=ecology,
        engine=EngineSpec(engine.get("kind", "local"), engine.get("address"),
                          engine.get("partitions")),
        output=OutputSpec(out_dir, output.get("offline", False),
                          output.get("max_buildings_drawn", 15000),
                          output.get("max_parcels_drawn", 25000),
                          output.get("max_excel_rows", 100_000)),
        raw=raw,
        ground=dict(raw.get("ground", {})) if isinstance(raw.get("ground", {}), dict) else {},
        finance=dict(raw.get("finance", {})) if isinstance(raw.get("finance", {}), dict) else {},
        weather_max_distance_km=float(max_km) if is_number(max_km) else WEATHER_MAX_DISTANCE_KM,
        network=network,
    )


def _network_table(table: Any, bad) -> dict[str, Any]:
    """The checked ``[ecology.network]`` table (values as given; defaults in gis.network)."""
    prefix = "ecology.network"
    if not isinstance(table, dict):
        bad(prefix, "must be a table", table, f"write [{prefix}]")
        return {}
    out: dict[str, Any] = {}
    for key, value in table.items():
        kind = _NETWORK_KEYS.get(key)
        if kind is None:
            bad(f"{prefix}.{key}", "unknown key", hint=suggest(key, _NETWORK_KEYS))
        elif not _is_type(value, kind):
            bad(f"{prefix}.{key}", f"must be {_type_name(kind)}", value)
        else:
            out[key] = value
    for key in ("min_patch_ha", "resolution_m", "dispersal_m", "corridor_max_m"):
        if key in out and not (is_number(out[key]) and out[key] >= 0
                               and (out[key] > 0 or key == "min_patch_ha")):
            bad(f"{prefix}.{key}", "must be a positive number [m or ha]", out.pop(key))
    for key in ("max_cells", "max_candidates", "top_candidates"):
        if key in out and out[key] < (1 if key != "max_candidates" else 0):
            bad(f"{prefix}.{key}", "must be a positive whole number", out.pop(key))
    habitat = out.get("habitat")
    if habitat is not None:
        wrong = [h for h in habitat if h not in NETWORK_HABITATS]
        if wrong or not habitat:
            bad(f"{prefix}.habitat", "habitat classes are forest, water and green", wrong or habitat,
                'for example habitat = ["forest", "water"]')
            out.pop("habitat")
    resistance = out.get("resistance")
    if resistance is not None:
        for group, value in resistance.items():
            if group not in RESISTANCE_GROUPS:
                bad(f"{prefix}.resistance.{group}", "unknown land-use group",
                    hint=suggest(group, RESISTANCE_GROUPS))
            elif not (is_number(value) and value > 0):
                bad(f"{prefix}.resistance.{group}", "must be a number > 0 (relative resistance)",
                    value)
    if "rank_by" in out and out["rank_by"] not in ("suitability", "connectivity"):
        bad(f"{prefix}.rank_by", "must be suitability or connectivity", out.pop("rank_by"))
    return out


def _layer_spec(kind: str, table: dict, base: Path, bad) -> LayerSpec | None:
    prefix = f"layers.{kind}"
    allowed = _LAYER_KEYS_BY_KIND[kind]
    ok = True
    for key in table:
        if key not in allowed:
            bad(f"{prefix}.{key}", "unknown key", hint=suggest(key, allowed))
    if "path" not in table:
        bad(f"{prefix}.path", "missing required key", hint="give the layer's file, relative to the run file")
        return None
    if not isinstance(table["path"], str):
        bad(f"{prefix}.path", "must be a string", table["path"])
        return None
    path = _resolve(base, table["path"])
    if not path.exists():
        bad(f"{prefix}.path", "file not found", str(path), "fix the path (relative to the run file)")
        ok = False
    for key in ("layer", "encoding", "crs", "scheme", "datum"):
        if key in table and not isinstance(table[key], str):
            bad(f"{prefix}.{key}", "must be a string", table[key])
            ok = False
    if "encoding" in table and isinstance(table["encoding"], str):
        import codecs

        try:
            codecs.lookup(table["encoding"])
        except LookupError:
            bad(f"{prefix}.encoding", "unknown encoding", table["encoding"], "use gbk, gb18030 or utf-8")
            ok = False
    if "crs" in table and isinstance(table["crs"], str):
        from pyproj import CRS
        from pyproj.exceptions import CRSError

        try:
            CRS.from_user_input(table["crs"])
        except CRSError:
            bad(f"{prefix}.crs", "unknown CRS", table["crs"], "use a code such as EPSG:4527")
            ok = False
    datum = table.get("datum", "wgs84")
    if isinstance(datum, str) and datum.lower().replace("-", "") not in DATUMS:
        bad(f"{prefix}.datum", "unknown datum", datum,
            f"use one of {', '.join(DATUMS)} (gcj02: AMap/Gaode, Tencent; bd09: Baidu)")
        ok = False
    columns = table.get("columns", {})
    if not isinstance(columns, dict):
        bad(f"{prefix}.columns", "must be a table: canonical name = column in the file", columns)
        columns, ok = {}, False
    if kind in CANONICAL_COLUMNS:
        required, optional = CANONICAL_COLUMNS[kind]
        for key, value in columns.items():
            if key not in required + optional:
                bad(f"{prefix}.columns.{key}", "unknown canonical column",
                    hint=f"canonical columns of {kind}: {', '.join(required + optional)}")
                ok = False
            elif not isinstance(value, str):
                bad(f"{prefix}.columns.{key}", "must be the name of a column in the file", value)
                ok = False
    elif columns:
        bad(f"{prefix}.columns", f"a {kind} raster has no columns")
    values = table.get("values", {})
    if not isinstance(values, dict) or not all(isinstance(v, dict) for v in values.values()):
        bad(f"{prefix}.values", "must be tables: [layers.KIND.values.COLUMN] file value = canonical value", values)
        values, ok = {}, False
    elif kind in CANONICAL_COLUMNS:
        canon = CANONICAL_COLUMNS[kind][0] + CANONICAL_COLUMNS[kind][1]
        for key in values:
            if key not in canon:  # a mapping for a column that does not exist maps nothing
                bad(f"{prefix}.values.{key}", "unknown canonical column", hint=suggest(key, canon))
                ok = False
    categories = table.get("categories", {})
    if not isinstance(categories, dict) or not all(isinstance(v, str) for v in categories.values()):
        bad(f"{prefix}.categories", "must be a table: label = canonical category", categories)
        categories, ok = {}, False
    for label, cat in categories.items():
        if cat not in CATEGORIES:
            bad(f"{prefix}.categories.{label}", "not a canonical category", cat,
                suggest(cat, CATEGORIES))
            ok = False
    scheme = table.get("scheme")
    if kind == "landuse" and scheme is None:
        scheme = "osm" if path.suffix.lower() in OSM_SUFFIXES else "gbt21010"
    if kind == "landcover" and scheme is None:
        scheme = "worldcover"
    if isinstance(scheme, str) and scheme not in SCHEMES:
        scheme_path = _resolve(base, scheme)
        if scheme_path.suffix.lower() == ".csv" and scheme_path.is_file():
            scheme = str(scheme_path)
        else:
            close = suggest(scheme, SCHEMES)
            bad(f"{prefix}.scheme", "unknown classification scheme", scheme,
                (close.split("?")[0] + "? " if close.startswith("did you") else "")
                + f"use one of {', '.join(SCHEMES)} or a path to a mapping CSV (found: "
                  f"{scheme_path.name} {'exists' if scheme_path.is_file() else 'does not exist'})")
            ok = False
    band = table.get("band", 1)
    if not isinstance(band, int) or isinstance(band, bool) or band < 1:
        bad(f"{prefix}.band", "must be a band number ≥ 1", band)
        ok = False
    share = table.get("max_unknown_share", 0.05)
    if not isinstance(share, int | float) or isinstance(share, bool) or not 0 <= share <= 1:
        bad(f"{prefix}.max_unknown_share", "must be a fraction between 0 and 1", share)
        ok = False
    ref = table.get("reference_kwh_m2")
    if ref is not None and (not isinstance(ref, int | float) or isinstance(ref, bool) or ref <= 0):
        bad(f"{prefix}.reference_kwh_m2", "must be a positive number [kWh/m²/yr]", ref)
        ok = False
    if not ok:
        return None
    return LayerSpec(kind=kind, path=path, layer=table.get("layer"), encoding=table.get("encoding"),
                     crs=table.get("crs"), columns=dict(columns), values=dict(values),
                     categories=dict(categories), scheme=scheme, band=band,
                     max_unknown_share=float(share), reference_kwh_m2=ref,
                     datum=str(datum).lower().replace("-", ""))


def is_number(value: Any) -> bool:
    """A finite real number from a run file or a table (bool is not a number here)."""
    import math
    import numbers

    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _resolve(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path).resolve()


def _is_type(value: Any, kind: type) -> bool:
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, kind)


def _type_name(kind: type) -> str:
    return {str: "a string", bool: "true or false", int: "a whole number", float: "a number"}.get(
        kind, kind.__name__)



"""A planner's project folder: its files, its run file, and what its layers hold.

Everything here is confined to one folder.  :func:`inside` is the only way a path given by a
request becomes a file: it refuses absolute paths, ``..`` and anything that resolves (through a
symlink, say) outside the folder.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import pandas as pd

from gis import io
from gis.config import CANONICAL_COLUMNS, CATEGORIES, RASTER_KINDS, ZONE_LEVELS

RUNFILE = "run.toml"
OUTPUT = "output"
#: a private scratch folder (site-list downloads are written here, then sent and removed)
SCRATCH = ".workspace"
VECTOR_SUFFIXES = (".gpkg", ".shp", ".geojson", ".json", ".fgb", ".gml", ".kml", ".parquet",
                   ".osm", ".pbf")
RASTER_SUFFIXES = (".tif", ".tiff")
PV_PRESETS = ("conservative", "base", "ambitious")
#: (kind, canonical column) → (run-file table, canonical values) for value mappings
VALUE_MAPS: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {
    ("buildings", "category"): ("categories", CATEGORIES),
    ("buildings", "roof_type"): ("values", ("flat", "pitched")),
    ("zones", "level"): ("values", ZONE_LEVELS),
    ("landuse", "removal"): ("values", ("true", "false")),
}
#: Chinese labels and units shown beside the canonical columns
COLUMN_LABELS = {
    "id": "编号 id", "category": "类别", "floors": "层数", "height": "高度 [m]",
    "roof_type": "屋顶类型 flat / pitched", "roof_tilt": "屋顶倾角 [°]",
    "roof_azimuth": "屋顶方位角 [°, 180 = 南 south]", "year_built": "建成年份",
    "pv_kw": "已装光伏 installed PV [kW]", "name": "名称", "street": "街道/镇",
    "code": "地类编码 land-use code", "area": "图斑地类面积 official area TBDLMJ [m²]",
    "tbmj": "图斑面积 TBMJ [m²]", "kcmj": "扣除地类面积 KCMJ [m²]",
    "removal": "拟拆除 slated for removal", "level": "管控级别 control level",
    "species": "树种", "stock_m3_ha": "每公顷蓄积 [m³/ha]", "stock_m3": "蓄积量 [m³]",
}
#: labels shown beside each layer kind
KIND_LABELS = {
    "buildings": "建筑 buildings", "landuse": "用地 land use (parcels)",
    "zones": "管控分区 control zones", "streets": "街道/镇 streets (admin units)",
    "forest": "林分 forest stands", "irradiance": "屋顶辐照 irradiance raster",
    "landcover": "地表覆盖 land-cover raster",
}


class Forbidden(PermissionError):
    """A path outside the project folder (or otherwise not allowed)."""


def inside(root: Path, rel: str) -> Path:
    """The file ``rel`` names inside ``root``; :class:`Forbidden` when it is not inside.

    Refused: empty names, absolute paths (POSIX or Windows), any ``..`` component, NUL bytes,
    and paths that resolve outside ``root`` (a symlink pointing out).

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp()).resolve()
    >>> inside(root, "layers/a.gpkg") == root / "layers" / "a.gpkg"
    True
    >>> inside(root, "../etc/passwd")
    Traceback (most recent call last):
    ...
    gis.serve.workspace.Forbidden: outside the project folder: '../etc/passwd'
    """
    text = str(rel).replace("\\", "/")
    posix = PurePosixPath(text)
    if (not text.strip() or "\x00" in text or posix.is_absolute() or PureWindowsPath(rel).drive
            or ".." in posix.parts):
        raise Forbidden(f"outside the project folder: {rel!r}")
    full = (root / posix).resolve()
    if not full.is_relative_to(root):
        raise Forbidden(f"outside the project folder: {rel!r}")
    return full


def is_private(rel: str) -> bool:
    """Files the workspace keeps for itself: hidden names, staging folders."""
    return any(part.startswith(".") for part in PurePosixPath(rel).parts)


@dataclass(frozen=True)
class ProjectFile:
    """One file of the project folder."""

    rel: str
    size: int
    kind: str  # vector | raster | weather | targets | runfile | other

    @property
    def size_text(self) -> str:
        size = float(self.size)
        for unit in ("B", "KB", "MB"):
            if size < 1024:
                return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
            size /= 1024
        return f"{size:,.1f} GB"


def _file_kind(rel: str) -> str:
    suffix = PurePosixPath(rel).suffix.lower()
    if rel == RUNFILE:
        return "runfile"
    if suffix in VECTOR_SUFFIXES:
        return "vector"
    if suffix in RASTER_SUFFIXES:
        return "raster"
    if suffix == ".epw":
        return "weather"
    if suffix == ".toml":
        return "targets"
    if suffix == ".csv":
        return "table"
    return "other"


def project_files(root: Path) -> list[ProjectFile]:
    """Every file of the project folder except the outputs and private folders, sorted.

    Symlinks that point outside the folder are left out.
    """
    found = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        rel_dir = Path(folder).relative_to(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and not (rel_dir == Path(".") and d in (OUTPUT, OUTPUT + ".previous")))
        for name in files:
            rel = (rel_dir / name).as_posix()
            if is_private(rel):
                continue
            try:
                path = inside(root, rel)
                size = path.stat().st_size
            except (Forbidden, OSError):
                continue
            found.append(ProjectFile(rel, size, _file_kind(rel)))
    return sorted(found, key=lambda f: f.rel)


# --------------------------------------------------------------------------------------------
# the run file


def default_runfile(root: Path) -> dict[str, Any]:
    """A new project's run file: the folder's name, the built-in targets, base PV."""
    return {"project": {"name": root.name, "targets": "dongli-2025"},
            "pv": {"preset": "base"}, "output": {"dir": OUTPUT}}


def read_runfile(root: Path) -> dict[str, Any]:
    """The project's run file as a dictionary (a new one when there is none).

    Raises
    ------
    InputError
        When the run file is not UTF-8 TOML: it is never overwritten then (a planner's hand
        edits would be lost).
    """
    from gis._errors import InputError, Problem

    path = root / RUNFILE
    if not path.is_file():
        return default_runfile(root)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(Problem(f"the run file cannot be read: {exc}", file=str(path),
                                 hint="fix it (UTF-8 TOML), or rename it to start afresh; the "
                                      "workspace does not overwrite it")) from None
    raw.setdefault("project", {})
    raw.setdefault("output", {})["dir"] = OUTPUT
    return raw


def write_runfile(root: Path, raw: dict[str, Any]) -> Path:
    """Write the run file (whole or not at all); outputs always go to ``OUTPUT`` in the folder."""
    import tomli_w

    raw = dict(raw)
    raw["output"] = {**raw.get("output", {}), "dir": OUTPUT}
    head = ("# Written by `gis-planner serve`; `gis-planner run run.toml` reproduces the "
            "workspace's run.\n# Paths are relative to this file.\n\n")
    return io.write_text(root / RUNFILE, head + tomli_w.dumps(_clean(raw)))


def _clean(value: Any) -> Any:
    """Drop empty tables and None values (TOML has no null)."""
    if isinstance(value, dict):
        out = {str(k): _clean(v) for k, v in value.items() if v is not None}
        return {k: v for k, v in out.items() if not (isinstance(v, dict) and not v)}
    return value


def outside_paths(root: Path, raw: dict[str, Any]) -> list[str]:
    """Paths of the run file that lead outside the project folder (layers, weather, targets)."""
    values = [t.get("path") for t in raw.get("layers", {}).values() if isinstance(t, dict)]
    values += list(raw.get("weather", {}).values())
    targets = raw.get("project", {}).get("targets")
    from gis.targets import preset_names

    if targets and targets not in preset_names():
        values.append(targets)
    scheme = [t.get("scheme") for t in raw.get("layers", {}).values() if isinstance(t, dict)]
    values += [s for s in scheme if isinstance(s, str) and s.lower().endswith(".csv")]
    bad = []
    for value in values:
        if not isinstance(value, str):
            continue
        try:
            inside(root, value)
        except Forbidden:
            bad.append(value)
    return bad


# --------------------------------------------------------------------------------------------
# what a layer holds


def layer_names(path: Path) -> list[str]:
    """The layers of a vector file (one name for single-layer formats; none for rasters)."""
    import pyogrio

    if path.suffix.lower() in RASTER_SUFFIXES + (".parquet",):
        return []
    try:
        return [str(n) for n in pyogrio.list_layers(path)[:, 0]]
    except Exception:  # noqa: BLE001 - any reader failure: the page says the file cannot be read
        return []


def read_attributes(path: Path, *, layer: str | None = None, encoding: str | None = None,
                    columns: list[str] | None = None, max_rows: int | None = None) -> pd.DataFrame:
    """The attribute table of a vector layer (no geometry), as the run would decode it.

    Raises
    ------
    OSError, ValueError
        When the file cannot be read (the caller shows the message).
    """
    import pyogrio

    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path, columns=columns)
        frame = table.to_pandas()
        frame = frame.drop(columns=[c for c in ("geometry",) if c in frame])
        return frame.head(max_rows) if max_rows else frame
    encoding = encoding or io.detect_encoding(path)
    try:
        return pyogrio.read_dataframe(path, layer=layer, encoding=encoding, columns=columns,
                                      read_geometry=False, max_features=max_rows)
    except pyogrio.errors.DataSourceError as exc:
        raise OSError(str(exc)) from None
    except pyogrio.errors.DataLayerError as exc:
        raise ValueError(str(exc)) from None


def feature_count(path: Path, *, layer: str | None = None) -> int:
    """The number of features of a vector layer."""
    import pyogrio

    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    try:
        return int(pyogrio.read_info(path, layer=layer)["features"])
    except pyogrio.errors.DataSourceError as exc:
        raise OSError(str(exc)) from None
    except pyogrio.errors.DataLayerError as exc:
        raise ValueError(str(exc)) from None


def samples(frame: pd.DataFrame, n: int = 4) -> dict[str, list[str]]:
    """Up to ``n`` distinct non-empty example values per column, as text."""
    out = {}
    for col in frame.columns:
        values = frame[col].dropna().astype(str).str.strip()
        out[str(col)] = [v[:24] for v in pd.unique(values[values != ""])[:n]]
    return out


def distinct_values(frame: pd.DataFrame, column: str, limit: int = 80) -> pd.DataFrame:
    """The most frequent values of a column: ``value`` (text), ``count``."""
    values = frame[column].astype("string").str.strip()
    counts = values.value_counts(dropna=True).head(limit)
    return pd.DataFrame({"value": counts.index.astype(str), "count": counts.to_numpy()})


def canonical_columns(kind: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(required, optional) canonical columns of a vector kind; empty for rasters."""
    if kind in RASTER_KINDS:
        return (), ()
    return CANONICAL_COLUMNS[kind]

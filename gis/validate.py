"""Loading every layer of a run and checking it, reporting every problem in one go.

:func:`load_layers` reads each layer named by the run file, maps its columns and values onto the
canonical names, repairs what can be repaired (and says so), and reprojects everything to one
metric working CRS.  :func:`validate` does the same and only returns the problems.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from gis import io
from gis._errors import InputError, Problem
from gis.config import CANONICAL_COLUMNS, VECTOR_KINDS, ZONE_LEVELS, LayerSpec, RunConfig

CATEGORIES = ("government", "public", "commercial", "industrial", "residential",
              "rural_residential", "other")

#: column names recognised without a mapping (third-survey and common GIS field names)
_DEFAULT_NAMES = {
    "landuse": {"id": ("BSM", "id"), "code": ("DLBM", "code")},
    "zones": {"name": ("name", "MC"), "level": ("level", "GKJB")},
    "streets": {"name": ("name", "JDMC", "XZQMC")},
}
_NUMERIC = {
    "buildings": ("floors", "height", "roof_tilt", "roof_azimuth", "year_built", "pv_kw"),
    "landuse": ("area", "tbmj", "kcmj"),
    "forest": ("stock_m3_ha", "stock_m3"),
}
#: plausible ranges: (low, high); values outside are errors (an absurd value would become a
#: wrong number on a planner's desk)
_RANGES = {
    "floors": (0, 200), "height": (0, 700), "roof_tilt": (0, 90), "roof_azimuth": (0, 360),
    "year_built": (1800, 2100), "pv_kw": (0, 1e5), "area": (0, 1e9), "tbmj": (0, 1e9),
    "kcmj": (0, 1e9), "stock_m3_ha": (0, 2000), "stock_m3": (0, 1e8),
}
_ROOF_TYPES = {"flat": "flat", "pitched": "pitched", "平": "flat", "平顶": "flat",
               "平屋顶": "flat", "坡": "pitched", "坡顶": "pitched", "坡屋顶": "pitched",
               "gabled": "pitched", "hipped": "pitched"}
_TRUE = {"1", "true", "yes", "y", "是", "t"}
_FALSE = {"0", "false", "no", "n", "否", "f", ""}


@dataclass
class Layers:
    """Every layer of a run, canonical and in the working CRS."""

    crs: CRS
    buildings: gpd.GeoDataFrame | None = None
    landuse: gpd.GeoDataFrame | None = None
    zones: gpd.GeoDataFrame | None = None
    streets: gpd.GeoDataFrame | None = None
    forest: gpd.GeoDataFrame | None = None
    rasters: dict[str, LayerSpec] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    inputs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    def site(self) -> tuple[float, float]:
        """Latitude and longitude [°] of the district's centre."""
        frames = [g for g in (self.buildings, self.landuse, self.zones) if g is not None and len(g)]
        x0, y0, x1, y1 = frames[0].total_bounds
        lon, lat = gpd.GeoSeries(gpd.points_from_xy([(x0 + x1) / 2], [(y0 + y1) / 2]),
                                 crs=self.crs).to_crs(4326).iloc[0].coords[0]
        return float(lat), float(lon)


def category_table(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Building category labels → canonical categories (package table, extended by ``extra``).

    Labels are matched case-insensitively after stripping spaces.  A label not in the table is
    also matched by the first table label it contains (``新建厂房`` → ``industrial``).
    """
    ref = resources.files("gis") / "data" / "categories.csv"
    with ref.open(encoding="utf-8") as fh:
        table = {row["label"].strip().lower(): row["category"] for row in csv.DictReader(fh)}
    for label, cat in (extra or {}).items():
        table[str(label).strip().lower()] = cat
    return table


def map_categories(labels: pd.Series, extra: dict[str, str] | None = None) -> pd.Series:
    """Canonical category for each label; ``<NA>`` where nothing matches."""
    table = category_table(extra)
    key = labels.astype("string").str.strip().str.lower()
    out = key.map(table)
    # labels that contain a known label (longest first): 新建厂房, 区人民医院 …
    todo = out.isna() & key.notna()
    if todo.any():
        uniq = pd.Series(key[todo].unique())
        found = pd.Series(pd.NA, index=uniq.index, dtype="string")
        for label in sorted(table, key=len, reverse=True):  # loop over the table, not buildings
            hit = found.isna() & uniq.str.contains(label, regex=False)
            found[hit] = table[label]
        out[todo] = key[todo].map(dict(zip(uniq, found, strict=True)))
    return out.astype("string")


def _resolve_columns(kind: str, spec: LayerSpec, gdf: gpd.GeoDataFrame,
                     where: dict) -> tuple[dict[str, str], list[Problem]]:
    problems = []
    required, optional = CANONICAL_COLUMNS[kind]
    present = [c for c in gdf.columns if c != gdf.geometry.name]
    lower = {c.lower(): c for c in present}
    mapping: dict[str, str] = {}
    for canon in required + optional:
        if canon in spec.columns:
            col = spec.columns[canon]
            if col not in gdf.columns:
                problems.append(Problem("mapped column not in the file", **where, column=col,
                                        value=canon, hint=f"columns in the file: {', '.join(present)}"))
            else:
                mapping[canon] = col
            continue
        for name in (canon, *_DEFAULT_NAMES.get(kind, {}).get(canon, ())):
            if name.lower() in lower:
                mapping[canon] = lower[name.lower()]
                break
    for canon in required:
        if canon not in mapping and canon not in spec.columns:
            problems.append(Problem(f"required column {canon!r} is missing", **where,
                                    hint=f"map it in the run file: [layers.{kind}.columns] "
                                         f"{canon} = \"<column>\"; columns in the file: "
                                         f"{', '.join(present)}"))
    return mapping, problems


def canonical_frame(kind: str, spec: LayerSpec, gdf: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, list[Problem]]:
    """Rename, convert and check the columns of one layer (no geometry work)."""
    where = {"file": str(spec.path), "layer": spec.layer or kind}
    mapping, problems = _resolve_columns(kind, spec, gdf, where)
    data = {canon: gdf[col] for canon, col in mapping.items()}
    out = gpd.GeoDataFrame(data, geometry=gdf.geometry.values, crs=gdf.crs, index=gdf.index)

    def colref(canon: str) -> dict:
        return {**where, "column": mapping.get(canon, canon)}

    for canon, table in spec.values.items():
        if canon in out:
            raw = out[canon]
            keys = raw.astype("string").str.strip()
            lookup = {str(k).strip(): v for k, v in table.items()}
            out[canon] = keys.map(lookup).where(keys.isin(list(lookup)), raw)
    for canon in _NUMERIC.get(kind, ()):
        if canon not in out:
            continue
        raw = out[canon]
        num = pd.to_numeric(raw, errors="coerce")
        bad_text = num.isna() & raw.notna() & (raw.astype("string").str.strip() != "")
        if bad_text.any():
            problems.append(Problem(f"{int(bad_text.sum())} values are not numbers", **colref(canon),
                                    value=_examples(raw[bad_text]),
                                    hint="fix them in the file or map the right column"))
        num = num.astype(float)
        low, high = _RANGES[canon]
        out_of_range = (num < low) | (num > high) | np.isinf(num)
        if out_of_range.any():
            problems.append(Problem(f"{int(out_of_range.sum())} values outside {low}–{high:g}",
                                    **colref(canon), value=_examples(num[out_of_range]),
                                    hint="fix them in the file (units? floors, metres, degrees, kW)"))
        out[canon] = num
    for canon in ("id",):
        if canon in out:
            ids = out[canon]
            if pd.api.types.is_float_dtype(ids) and np.all(np.mod(ids.dropna(), 1) == 0):
                ids = ids.astype("Int64")
            out[canon] = ids.astype("string").str.strip()
            blank = out[canon].isna() | (out[canon] == "")
            if blank.any():
                problems.append(Problem(f"{int(blank.sum())} features have no id", **colref(canon),
                                        hint="give every feature an id"))
            dup = out[canon].duplicated(keep=False) & ~blank
            if dup.any():
                problems.append(Problem(f"{int(dup.sum())} features share {out[canon][dup].nunique()} "
                                        "duplicate ids", **colref(canon),
                                        value=_examples(out[canon][dup]),
                                        hint="ids must be unique: fix the duplicates in the file"))
    out, kind_problems = _check_kind(kind, spec, out, colref)
    return out, problems + kind_problems


def _check_kind(kind, spec, out, colref) -> tuple[gpd.GeoDataFrame, list[Problem]]:
    problems = []
    if kind == "buildings":
        if "category" in out:
            mapped = map_categories(out["category"], spec.categories)
            unknown = mapped.isna()
            if unknown.any():
                share = unknown.mean()
                sev = "error" if share > spec.max_unknown_share else "warning"
                problems.append(Problem(
                    f"{int(unknown.sum())} buildings ({share:.1%}) have an unknown category"
                    + (", counted as 'other'" if sev == "warning" else ""), **colref("category"),
                    value=_examples(out["category"][unknown]), severity=sev,
                    hint="add the labels to [layers.buildings.categories] label = \"industrial\" "
                         f"(canonical: {', '.join(CATEGORIES)})"))
            bad_canon = mapped.notna() & ~mapped.isin(CATEGORIES)
            if bad_canon.any():
                problems.append(Problem("category table maps to a non-canonical category",
                                        **colref("category"), value=_examples(mapped[bad_canon]),
                                        hint=f"canonical: {', '.join(CATEGORIES)}"))
            out["category"] = mapped.fillna("other")
        else:
            problems.append(Problem("no category column: every building counted as 'other'",
                                    file=colref("id")["file"], layer=colref("id")["layer"],
                                    severity="warning",
                                    hint="map [layers.buildings.columns] category = \"<column>\" "
                                         "for the pilot targets by building type"))
            out["category"] = "other"
        if "roof_type" in out:
            key = out["roof_type"].astype("string").str.strip().str.lower()
            mapped = key.map(_ROOF_TYPES)
            unknown = mapped.isna() & key.notna() & (key != "")
            if unknown.any():
                problems.append(Problem(f"{int(unknown.sum())} unknown roof types: inferred instead",
                                        **colref("roof_type"), value=_examples(out["roof_type"][unknown]),
                                        severity="warning",
                                        hint="use flat/pitched, or map values in "
                                             "[layers.buildings.values.roof_type]"))
            out["roof_type"] = mapped.astype("string")
        if "floors" in out:
            nan = out["floors"].isna()
            if nan.any():
                problems.append(Problem(f"{int(nan.sum())} buildings have no floor count",
                                        **colref("floors"), severity="warning",
                                        hint="floor area (for the substitution rate) then uses 1 floor"))
        out["pv_kw"] = out["pv_kw"].fillna(0.0) if "pv_kw" in out else 0.0
        for col in ("name", "street"):
            if col in out:
                out[col] = out[col].astype("string")
    elif kind == "landuse":
        out["code"] = out["code"].astype("string").str.strip()
        if "removal" in out:
            key = out["removal"].astype("string").str.strip().str.lower()
            flag = pd.Series(pd.NA, index=out.index, dtype="boolean")
            flag[key.isin(_TRUE)] = True
            flag[key.isin(_FALSE) | key.isna()] = False
            bad = flag.isna()
            if bad.any():
                problems.append(Problem("removal flag values not understood", **colref("removal"),
                                        value=_examples(out["removal"][bad]),
                                        hint="use 是/否, yes/no, 1/0 or map them in "
                                             "[layers.landuse.values.removal]"))
            out["removal"] = flag.fillna(False).astype(bool)
        if "area" in out:
            out = out.rename(columns={"area": "area_official_m2"})
        out = out.rename(columns={"tbmj": "tbmj_m2", "kcmj": "kcmj_m2"})
    elif kind == "zones":
        level = out["level"].astype("string").str.strip().str.lower()
        bad = ~level.isin(ZONE_LEVELS)
        if bad.any():
            problems.append(Problem(f"{int(bad.sum())} zones have an unknown level", **colref("level"),
                                    value=_examples(out["level"][bad]),
                                    hint=f"levels: {', '.join(ZONE_LEVELS)}; map your labels in "
                                         "[layers.zones.values.level] \"一级管控区\" = \"level1\""))
        out["level"] = level
        out["name"] = out["name"].astype("string")
    elif kind == "streets":
        out["name"] = out["name"].astype("string")
    elif kind == "forest":
        if "stock_m3_ha" not in out and "stock_m3" not in out:
            problems.append(Problem("stands need a stock column", file=colref("id")["file"],
                                    layer=colref("id")["layer"],
                                    hint="map stock_m3_ha [m³/ha] or stock_m3 [m³] in "
                                         "[layers.forest.columns]"))
        if "species" in out:
            out["species"] = out["species"].astype("string")
    return out, problems


def _examples(values: pd.Series, n: int = 5) -> list:
    uniq = pd.unique(values.dropna()) if len(values) else []
    return [v.item() if hasattr(v, "item") else v for v in list(uniq)[:n]]


def _read_one(spec: LayerSpec) -> tuple[gpd.GeoDataFrame | None, list[Problem], dict]:
    kind = spec.kind
    where = {"file": str(spec.path), "layer": spec.layer or kind}
    encoding = spec.encoding or io.detect_encoding(spec.path)
    gdf, problems = io.read_vector(spec.path, layer=spec.layer, encoding=encoding, label=kind)
    info = {"kind": kind, "path": str(spec.path), "layer": spec.layer, "encoding": encoding}
    if gdf is None:
        return None, problems, info
    info["features_read"] = int(len(gdf))
    if len(gdf) == 0:
        problems.append(Problem("the layer is empty", **where, hint="give a layer with features"))
        return None, problems, info
    crs, crs_problems = io.check_crs(gdf, declared=spec.crs, where=where)
    problems += crs_problems
    if crs is None:
        return None, problems, info
    gdf = gdf.set_crs(crs, allow_override=True)
    info["crs"] = f"EPSG:{crs.to_epsg()}" if crs.to_epsg() else crs.to_string()
    gdf, geom_problems = io.clean_polygons(gdf, where=where)
    problems += geom_problems
    if any(p.severity == "error" for p in geom_problems) or len(gdf) == 0:
        return None, problems, info
    out, col_problems = canonical_frame(kind, spec, gdf)
    problems += col_problems
    return out, problems, info


def _check_raster(spec: LayerSpec, crs: CRS, extent: tuple | None) -> tuple[list[Problem], dict]:
    import rasterio
    from rasterio.errors import RasterioIOError
    from rasterio.warp import transform_bounds

    where = {"file": str(spec.path), "layer": spec.kind}
    info = {"kind": spec.kind, "path": str(spec.path)}
    problems = []
    try:
        with rasterio.open(spec.path) as src:
            info.update(width=src.width, height=src.height, res=list(src.res))
            if spec.band > src.count:
                problems.append(Problem(f"the raster has {src.count} bands", **where,
                                        value=spec.band, hint="set `band` to an existing band"))
                return problems, info
            rcrs = src.crs or (CRS.from_user_input(spec.crs) if spec.crs else None)
            if rcrs is None:
                problems.append(Problem("the raster has no CRS", **where,
                                        hint="set `crs = \"EPSG:…\"` for this layer in the run file"))
                return problems, info
            info["crs"] = str(rcrs)
            if src.nodata is None:
                problems.append(Problem("the raster has no nodata value: every pixel is taken as "
                                        "data", **where, severity="warning",
                                        hint="set a nodata value (gdal_edit.py -a_nodata)"))
            bounds = transform_bounds(rcrs, crs, *src.bounds)
            if extent is not None and not shapely.box(*bounds).intersects(shapely.box(*extent)):
                problems.append(Problem("the raster does not overlap the district", **where,
                                        value=[round(b) for b in bounds],
                                        hint="check the raster's CRS and extent"))
                return problems, info
            step = max(1, int(max(src.width, src.height) / 512))
            sample = src.read(spec.band, out_shape=(max(1, src.height // step),
                                                    max(1, src.width // step)), masked=True)
            if sample.mask.all() if np.ndim(sample.mask) else False:
                problems.append(Problem("every pixel of the raster is nodata", **where,
                                        hint="give a raster with data"))
            elif spec.kind == "irradiance":
                vals = sample.compressed()
                vals = vals[np.isfinite(vals)]
                if vals.size and (vals.max() > 3000 or vals.min() < 0):
                    problems.append(Problem("irradiation values outside 0–3000 kWh/m²/yr", **where,
                                            value=[float(vals.min()), float(vals.max())],
                                            hint="give annual roof irradiation in kWh/m²/yr"))
    except RasterioIOError as exc:
        problems.append(Problem(f"cannot read the raster: {io._first_line(exc)}", **where,
                                hint="check the file is a complete GeoTIFF"))
    return problems, info


def load_layers(cfg: RunConfig, *, progress=None) -> Layers:
    """Read, check and reproject every layer of a run.

    Parameters
    ----------
    cfg : RunConfig
        The validated run file.
    progress : callable, optional
        Called with a short label as each layer is read.

    Returns
    -------
    Layers
        With ``problems`` listing every warning and error; layers with errors are None.
        Call :meth:`raise_for_errors` (or check ``errors``) before using them.
    """
    problems: list[Problem] = []
    raw: dict[str, gpd.GeoDataFrame | None] = {}
    inputs: list[dict] = []
    for kind in VECTOR_KINDS:
        spec = cfg.layers.get(kind)
        if spec is None:
            continue
        if progress:
            progress(f"reading {kind}")
        gdf, layer_problems, info = _read_one(spec)
        problems += layer_problems
        info["sha256"] = io.file_hash(spec.path)
        inputs.append(info)
        raw[kind] = gdf
    for kind in ("buildings", "landuse", "zones"):
        if kind not in cfg.layers and not (kind == "landuse" and "landcover" in cfg.layers):
            sev = "error" if kind == "buildings" and "landuse" not in cfg.layers else "warning"
            problems.append(Problem(f"no {kind} layer: the analyses that need it are skipped",
                                    file=str(cfg.path) if cfg.path else None, severity=sev,
                                    hint=f"add [layers.{kind}] to the run file"))
    crs = io.working_crs(cfg.crs, [g for g in raw.values() if g is not None])
    layers = Layers(crs=crs)
    for kind, gdf in raw.items():
        if gdf is not None:
            gdf = gdf.to_crs(crs)
            setattr(layers, kind, gdf)
    extent = _extent([layers.buildings, layers.landuse])
    for kind in ("irradiance", "landcover"):
        spec = cfg.layers.get(kind)
        if spec is None:
            continue
        raster_problems, info = _check_raster(spec, crs, extent)
        info["sha256"] = io.file_hash(spec.path)
        inputs.append(info)
        problems += raster_problems
        if not any(p.severity == "error" for p in raster_problems):
            layers.rasters[kind] = spec
    problems += _cross_checks(layers, cfg)
    if cfg.weather is not None:
        inputs.append({"kind": "weather", "path": str(cfg.weather),
                       "sha256": io.file_hash(cfg.weather)})
    if layers.landuse is not None:
        problems += _landuse_codes(layers.landuse, cfg.layers["landuse"])
    layers.problems = problems
    layers.inputs = inputs
    return layers


def _landuse_codes(landuse: gpd.GeoDataFrame, spec: LayerSpec) -> list[Problem]:
    """Unknown land-use codes, with parcel count and area; an error past ``max_unknown_share``."""
    try:
        from gis.landuse import unknown_codes
    except ImportError:  # the classification module is optional for loading
        return []
    table = unknown_codes(landuse["code"], spec.scheme, areas_m2=landuse.geometry.area)
    if table is None or len(table) == 0:
        return []
    share = float(table["area_ha"].sum() * 1e4 / landuse.geometry.area.sum())
    sev = "error" if share > spec.max_unknown_share else "warning"
    listing = ", ".join(f"{r.code} ({r.parcels} parcels, {r.area_ha:.2f} ha)"
                        for r in table.head(10).itertuples())
    return [Problem(f"{int(table['parcels'].sum())} parcels ({share:.1%} of the area) have codes "
                    f"unknown to scheme {Path(spec.scheme).name}: {listing}"
                    + ("; they count as neither blue nor green" if sev == "warning" else ""),
                    file=str(spec.path), layer=spec.layer or "landuse",
                    column=spec.columns.get("code", "code"), severity=sev,
                    hint="check `scheme` in the run file, or give a mapping CSV as scheme "
                         "with these codes")]


def _extent(frames) -> tuple | None:
    frames = [f for f in frames if f is not None and len(f)]
    if not frames:
        return None
    b = np.array([f.total_bounds for f in frames])
    return (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())


def _cross_checks(layers: Layers, cfg: RunConfig) -> list[Problem]:
    problems = []
    base = layers.buildings if layers.buildings is not None else layers.landuse
    if base is None:
        return problems
    box = shapely.box(*base.total_bounds)
    for kind in ("landuse", "zones", "streets", "forest"):
        gdf = getattr(layers, kind)
        if gdf is None or gdf is base:
            continue
        if not shapely.box(*gdf.total_bounds).intersects(box):
            spec = cfg.layers[kind]
            problems.append(Problem(f"the {kind} layer does not overlap the "
                                    f"{'buildings' if base is layers.buildings else 'land use'}",
                                    file=str(spec.path), layer=spec.layer or kind,
                                    hint="check both layers' CRS: one of them is probably wrong"))
    if layers.zones is not None and (layers.zones["level"] == "barrier").sum() == 0 and \
            layers.zones["level"].isin(ZONE_LEVELS).all():
        problems.append(Problem("no zone has level 'barrier': barrier targets use the union of "
                                "all level1–level3 zones", file=str(cfg.layers["zones"].path),
                                severity="warning"))
    return problems


def validate(cfg: RunConfig) -> list[Problem]:
    """Every problem with the layers of a run (errors and warnings)."""
    return load_layers(cfg).problems


def raise_for_errors(problems: list[Problem]) -> None:
    """Raise :class:`InputError` with every problem when any of them is an error."""
    if any(p.severity == "error" for p in problems):
        raise InputError(problems)


__all__ = ["Layers", "load_layers", "validate", "raise_for_errors", "map_categories",
           "category_table", "CATEGORIES", "canonical_frame"]

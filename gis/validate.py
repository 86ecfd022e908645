"""Loading every layer of a run and checking it, reporting every problem in one go.

:func:`load_layers` reads each layer named by the run file, maps its columns and values onto the
canonical names, repairs what can be repaired (and says so), and reprojects everything to one
metric working CRS.  :func:`validate` does the same and only returns the problems.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from gis import io, osm
from gis._errors import InputError, Problem
from gis.config import (
    CANONICAL_COLUMNS,
    CATEGORIES,
    FID,
    VECTOR_KINDS,
    ZONE_LEVELS,
    LayerSpec,
    RunConfig,
)
from gis.units import parse_numbers

#: column names recognised without a mapping (third-survey and common GIS field names)
_DEFAULT_NAMES = {
    # common building fields of Chinese surveys and GIS exports (ArcGIS's "Floor", 三调-style
    # pinyin initials: CS 层数, GD 高度, JZLB 建筑类别, JZMC 建筑名称, JCNF 建成年份)
    "buildings": {"floors": ("floor", "levels", "building_levels", "storeys", "stories", "层数",
                             "楼层", "楼层数", "CS", "JZCS", "LC"),
                  "height": ("building_height", "高度", "建筑高度", "GD", "JZGD"),
                  "category": ("建筑类别", "建筑类型", "建筑用途", "类别", "类型", "用途", "JZLB",
                               "JZYT"),
                  "name": ("名称", "建筑名称", "JZMC", "MC"),
                  "year_built": ("建成年份", "建成年代", "JCNF", "JZNF")},
    "landuse": {"code": ("DLBM", "code"), "tbmj": ("TBMJ",), "kcmj": ("KCMJ", "TKMJ")},
    "zones": {"name": ("name", "MC"), "level": ("level", "GKJB")},
    "streets": {"name": ("name", "JDMC", "XZQMC")},
}
#: further field names common in planners' files (建筑 / 三调 / 森林资源二类调查); suggested in
#: ``gis-planner serve``, never applied without a mapping
_SUGGESTED_NAMES = {
    "buildings": {"id": ("BSM", "OBJECTID", "FID", "osm_id"),
                  "category": ("JZLB", "JZYT", "YT", "LB", "type", "building"),
                  "floors": ("CS", "JZCS", "DSCS", "levels", "building:levels"),
                  "height": ("GD", "JZGD", "H"), "roof_type": ("WDLX", "roof:shape"),
                  "roof_tilt": ("WMQJ",), "roof_azimuth": ("WMCX",),
                  "year_built": ("JCNF", "JGNF", "year"), "pv_kw": ("GFRL",),
                  "name": ("JZMC", "MC"), "street": ("JDMC", "XZMC", "XZQMC")},
    "landuse": {"area": ("TBDLMJ",), "tbmj": ("TBMJ",), "kcmj": ("KCMJ",),
                "removal": ("SFCC",), "name": ("DLMC",)},
    "forest": {"id": ("XBH", "BSM"), "species": ("SZ", "YSSZ"), "stock_m3_ha": ("MGXJ",),
               "stock_m3": ("XJ",)},
}
#: words of Chinese control-level names → canonical zone levels (suggestions only)
_LEVEL_WORDS = (("一级", "level1"), ("二级", "level2"), ("三级", "level3"), ("屏障", "barrier"),
                ("片区", "subzone"), ("分区", "subzone"))
_NUMERIC = {
    "buildings": ("floors", "height", "roof_tilt", "roof_azimuth", "year_built", "pv_kw"),
    "landuse": ("area", "tbmj", "kcmj"),
    "forest": ("stock_m3_ha", "stock_m3"),
}
#: id-like column names tried, in order, when the run file maps no id (third-survey BSM, ArcGIS
#: OBJECTID/FID, PostGIS gid, osmnx osmid)
_ID_NAMES = ("id", "BSM", "OBJECTID", "FID", "GID", "OID", "osmid", "uuid")
#: kind of unit each optional number is written in (gis.units.parse_numbers)
_UNIT_KIND = {"floors": "storeys", "height": "length", "roof_tilt": "angle",
              "roof_azimuth": "angle", "year_built": "year", "pv_kw": "power",
              "stock_m3_ha": "volume_per_area", "stock_m3": "volume"}
#: numbers that must be plain numbers: official areas (a wrong one is a wrong hectare figure)
_STRICT_NUMBERS = ("area", "tbmj", "kcmj")
#: plausible ranges: (low, high); values outside are errors (an absurd value would become a
#: wrong number on a planner's desk)
_RANGES = {
    "floors": (0, 200), "height": (0, 700), "roof_tilt": (0, 90), "roof_azimuth": (0, 360),
    "year_built": (1800, 2100), "pv_kw": (0, 1e5), "area": (0, 1e9), "tbmj": (0, 1e9),
    "kcmj": (0, 1e9), "stock_m3_ha": (0, 2000), "stock_m3": (0, 1e8),
}
#: plausible heights [m]: at least 1.8 per floor, at most 10 per floor + 15 (halls); beyond
#: that, floors or height is probably wrong
_STOREY_M = (1.8, 10.0, 15.0)
#: sum of official parcel areas ÷ geometric areas beyond which the area column is in other units
_OFFICIAL_RATIO = (0.5, 2.0)
_ROOF_TYPES = {"flat": "flat", "pitched": "pitched", "平": "flat", "平顶": "flat",
               "平屋顶": "flat", "坡": "pitched", "坡顶": "pitched", "坡屋顶": "pitched",
               "gabled": "pitched", "hipped": "pitched",
               # OSM roof:shape values (https://wiki.openstreetmap.org/wiki/Key:roof:shape)
               "skillion": "pitched", "half-hipped": "pitched", "pyramidal": "pitched",
               "gambrel": "pitched", "mansard": "pitched", "saltbox": "pitched",
               "side_hipped": "pitched", "side_half-hipped": "pitched", "crosspitched": "pitched",
               "sawtooth": "pitched", "round": "pitched", "dome": "pitched", "onion": "pitched",
               "cone": "pitched", "butterfly": "pitched"}
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
    #: why yields are not computed (no weather near the district), or None when they are
    yields_note: str | None = None

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    def site(self) -> tuple[float, float]:
        """Latitude and longitude [°] of the district's centre."""
        frames = [g for g in (self.buildings, self.landuse, self.zones) if g is not None and len(g)]
        if not frames:
            raise InputError(Problem("no usable buildings, land-use or zones layer to locate the "
                                     "district", hint="fix the errors reported for the layers"))
        lon, lat = io.centre_lonlat(self.crs, frames[0].total_bounds)
        return lat, lon


def category_table(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Building category labels → canonical categories (package table, extended by ``extra``).

    Labels are matched case-insensitively after stripping spaces.  A label not in the table is
    also matched by the first table label it contains (``新建厂房`` → ``industrial``).

    Examples
    --------
    >>> table = category_table({"物流园": "industrial"})
    >>> table["医院"], table["物流园"]
    ('public', 'industrial')
    """
    ref = resources.files("gis") / "data" / "categories.csv"
    with ref.open(encoding="utf-8") as fh:
        table = {row["label"].strip().lower(): row["category"] for row in csv.DictReader(fh)}
    for label, cat in (extra or {}).items():
        table[str(label).strip().lower()] = cat
    return table


def map_categories(labels: pd.Series, extra: dict[str, str] | None = None) -> pd.Series:
    """Canonical category for each label; ``<NA>`` where nothing matches.

    Examples
    --------
    >>> map_categories(pd.Series(["党政机关", "新建厂房", "区人民医院", "农村住宅", "车库"])).tolist()
    ['government', 'industrial', 'public', 'rural_residential', <NA>]
    >>> map_categories(pd.Series(["车库"]), {"车库": "other"}).tolist()
    ['other']
    """
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
    mapping: dict[str, str] = {}
    guessed: list[str] = []
    for canon in required + optional:
        if canon in spec.columns:
            col = spec.columns[canon]
            if col not in gdf.columns:
                problems.append(Problem("mapped column not in the file", **where, column=col,
                                        value=canon, hint=f"columns in the file: {', '.join(present)}"))
            else:
                mapping[canon] = col
    recognised = recognise_columns(kind, present, official_areas="area" in spec.columns)
    recognised.pop("id", None)  # chosen by _resolve_id: it may fall back to the feature ids
    for canon, col in recognised.items():
        if canon in spec.columns:
            continue
        mapping[canon] = col
        if kind == "buildings" and col.lower() != canon:
            guessed.append(f"{canon} = \"{col}\"")
    if guessed:
        problems.append(Problem(f"columns recognised without a mapping: {', '.join(guessed)}",
                                **where, severity="warning",
                                hint=f"map [layers.{kind}.columns] yourself if one is wrong"))
    for canon in required:
        if canon not in mapping and canon not in spec.columns:
            problems.append(Problem(f"required column {canon!r} is missing", **where,
                                    hint=f"map it in the run file: [layers.{kind}.columns] "
                                         f"{canon} = \"<column>\"; columns in the file: "
                                         f"{', '.join(present)}"))
    return mapping, problems


def recognise_columns(kind: str, columns: list[str], *, suggest: bool = False,
                      official_areas: bool = False) -> dict[str, str]:
    """Canonical name → column of the file, for the columns recognised by their names.

    Without ``suggest``, only the names a run uses without a mapping (the canonical names and
    the third-survey field names of :data:`_DEFAULT_NAMES`).  With ``suggest``, also the field
    names planners' files commonly carry (:data:`_SUGGESTED_NAMES`): offered as a starting
    point for a mapping (``gis-planner serve``), never applied without one.  Official area
    columns are never taken without a mapping (DESIGN 6.3) unless suggested; with
    ``official_areas`` (the run file maps ``area``), the survey's ``TBMJ`` and ``KCMJ`` are taken
    too, so that the deducted field ridges are always counted.

    Examples
    --------
    >>> recognise_columns("zones", ["MC", "GKJB", "geometry"])
    {'name': 'MC', 'level': 'GKJB'}
    >>> recognise_columns("buildings", ["BSM", "JZLB", "CS"], suggest=True)
    {'id': 'BSM', 'category': 'JZLB', 'floors': 'CS'}
    """
    required, optional = CANONICAL_COLUMNS[kind]
    lower = {str(c).lower(): c for c in columns}
    tables = [_DEFAULT_NAMES] + ([_SUGGESTED_NAMES] if suggest else [])
    mapping: dict[str, str] = {}
    for canon in required + optional:
        if kind == "landuse" and canon in ("area", "tbmj", "kcmj") and not suggest \
                and not (official_areas and canon != "area"):
            continue  # official areas are used only when the run file maps them (DESIGN 6.3)
        names = [canon] + [n for t in tables for n in t.get(kind, {}).get(canon, ())]
        for name in names:
            taken = suggest and lower.get(name.lower()) in mapping.values()
            if name.lower() in lower and not taken:
                mapping[canon] = lower[name.lower()]
                break
    return mapping


def suggest_values(kind: str, canon: str, values: pd.Series) -> pd.Series:
    """The canonical value each file value would most likely map to; ``<NA>`` where unsure.

    For a building ``category``, ``roof_type`` and a parcel's ``removal`` flag, it is what a run
    does with the value when the run file maps nothing; for a zone ``level``, a suggestion from
    the Chinese names of the control levels (一级管控区 → ``level1``).

    Examples
    --------
    >>> suggest_values("zones", "level", pd.Series(["一级管控区", "屏障区", "片区", "x"])).tolist()
    ['level1', 'barrier', 'subzone', <NA>]
    >>> suggest_values("buildings", "roof_type", pd.Series(["坡屋顶", "?"])).tolist()
    ['pitched', <NA>]
    """
    key = values.astype("string").str.strip().str.lower()
    if (kind, canon) == ("buildings", "category"):
        return map_categories(values)
    if (kind, canon) == ("buildings", "roof_type"):
        return key.map(_ROOF_TYPES).astype("string")
    if (kind, canon) == ("landuse", "removal"):
        out = pd.Series(pd.NA, index=values.index, dtype="string")
        out[key.isin(_TRUE).fillna(False).astype(bool)] = "true"
        out[key.isin(_FALSE).fillna(False).astype(bool)] = "false"
        return out
    if (kind, canon) == ("zones", "level"):
        out = key.where(key.isin(ZONE_LEVELS).fillna(False).astype(bool)).astype("string")
        for word, level in _LEVEL_WORDS:  # a loop over a few words, not over zones
            out[out.isna() & key.str.contains(word, regex=False).fillna(False).astype(bool)] = level
        return out
    return pd.Series(pd.NA, index=values.index, dtype="string")


def canonical_frame(kind: str, spec: LayerSpec, gdf: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, list[Problem]]:
    """Rename, convert and check the columns of one layer (no geometry work)."""
    where = {"file": str(spec.path), "layer": spec.layer or kind}
    osm_problems: list[Problem] = []
    if kind == "landuse" and spec.scheme == "osm" and "code" not in spec.columns:
        gdf, osm_problems = _osm_landuse(gdf, spec, where)
    elif kind == "buildings" and osm.is_osm(gdf, spec.path):
        gdf, osm_problems = _osm_buildings(gdf, spec, where)
    mapping, problems = _resolve_columns(kind, spec, gdf, where)
    ids, id_problems = _resolve_id(kind, spec, gdf, mapping, where)
    problems = osm_problems + problems + id_problems
    # object columns (GeoJSON properties of mixed types, lists, dicts) become text first: every
    # later check then sees one type, and nothing unhashable reaches pandas
    data = {canon: gdf[col].astype("string") if gdf[col].dtype == object else gdf[col]
            for canon, col in mapping.items() if canon != "id"}
    out = gpd.GeoDataFrame(data, geometry=gdf.geometry.values, crs=gdf.crs, index=gdf.index)
    if ids is not None:
        out.insert(0, "id", ids)
        out.attrs["id_source"] = _id_source(spec, mapping, id_problems, gdf)

    def colref(canon: str) -> dict:
        return {**where, "column": mapping.get(canon, canon)}

    for canon, table in spec.values.items():
        if canon in out:
            raw = out[canon]
            keys = _as_text(raw)
            lookup = {str(k).strip(): v for k, v in table.items()}
            hit = keys.isin(list(lookup)).fillna(False).astype(bool)
            if lookup and not hit.any():  # a table that maps nothing: a typo or the wrong column
                problems.append(Problem("none of the values mapped in the run file occur in the "
                                        "column", **colref(canon), value=sorted(lookup)[:5],
                                        severity="warning",
                                        hint=f"check [layers.{kind}.values.{canon}] against the "
                                             f"values in the file, e.g. {_examples(keys)}"))
            mapped = keys.map(lookup)
            out[canon] = (mapped.where(hit, raw) if hit.any() else raw)
    for canon in _NUMERIC.get(kind, ()):
        if canon not in out:
            continue
        raw = out[canon]
        if pd.api.types.is_datetime64_any_dtype(raw):
            if canon != "year_built":
                problems.append(Problem("the column holds dates, not numbers", **colref(canon),
                                        hint="map the right column in the run file"))
                out[canon] = np.nan
                continue
            raw = raw.dt.year  # a date of construction: its year is what counts
        num, number_problems = _numbers(canon, raw, spec, colref(canon))
        problems += number_problems
        out[canon] = num
    if kind == "landuse":
        out, survey_problems = _survey_areas(out, gdf, mapping, where)
        problems += survey_problems
    out, kind_problems = _check_kind(kind, spec, out, colref)
    return out, problems + kind_problems


def _numbers(canon: str, raw: pd.Series, spec: LayerSpec,
             where: dict) -> tuple[pd.Series, list[Problem]]:
    """One numeric column: parsed as people write it (optional attributes) or strictly (areas).

    Optional attributes never stop a run: unreadable text becomes missing, counted in one
    warning; implausible values become missing too, unless the run file mapped the column itself
    (then the planner's own data hold a wrong unit, and every value of it is suspect: an error).
    """
    problems = []
    if canon in _STRICT_NUMBERS:
        num = pd.to_numeric(raw, errors="coerce").astype(float)
        bad_text = num.isna() & raw.notna() & (raw.astype("string").str.strip() != "")
        if bad_text.any():
            problems.append(Problem(f"{int(bad_text.sum())} values are not numbers", **where,
                                    value=_examples(raw[bad_text]),
                                    hint="fix them in the file or map the right column"))
    else:
        num, unreadable = parse_numbers(raw, kind=_UNIT_KIND.get(canon))
        # a mapped column without a single readable number is the wrong column, not bad values
        wrong_column = canon in spec.columns and unreadable.any() and num.notna().sum() == 0
        if unreadable.any():
            problems.append(Problem(
                f"{int(unreadable.sum())} values are not numbers"
                + (": is it the right column?" if wrong_column else ": left missing"), **where,
                value=_examples(raw[unreadable]), severity="error" if wrong_column else "warning",
                hint="units (m, ft, 米, 层, F), decimal commas and ranges (3-4) are understood; "
                     "other text is not" + ("; map the right column" if wrong_column else "")))
    low, high = _RANGES[canon]
    out_of_range = (num < low) | (num > high) | np.isinf(num)
    if out_of_range.any():
        explicit = canon in spec.columns or canon in _STRICT_NUMBERS
        problems.append(Problem(
            f"{int(out_of_range.sum())} values outside {low}–{high:g}"
            + ("" if explicit else ": left missing"), **where,
            value=_examples(num[out_of_range]), severity="error" if explicit else "warning",
            hint="fix them in the file (units? floors, metres, degrees, kW)"))
        if not explicit:
            num = num.mask(out_of_range)
    return num, problems


def _resolve_id(kind: str, spec: LayerSpec, gdf: gpd.GeoDataFrame, mapping: dict[str, str],
                where: dict) -> tuple[pd.Series | None, list[Problem]]:
    """Each feature's id: the mapped column, else a unique id-like column, else the feature ids.

    An id the run file maps must be unique and complete (an error otherwise, offering the
    feature ids).  Without a mapping, the OSM ids, then the first of :data:`_ID_NAMES` present,
    are used when unique and complete; else the file's feature ids (``@fid``: GeoPackage and
    FlatGeobuf FIDs, record numbers of other formats), said in one warning.
    """
    if "id" not in CANONICAL_COLUMNS[kind][0] + CANONICAL_COLUMNS[kind][1]:
        return None, []
    fid = (_as_text(gdf[io.FID_COLUMN]) if io.FID_COLUMN in gdf
           else pd.Series(np.arange(len(gdf)), index=gdf.index).astype("string"))
    table = f"[layers.{kind}.columns]"
    if "id" in mapping:
        col = mapping["id"]
        ids = _as_text(gdf[col])
        blank, dup = _id_faults(ids)
        problems = []
        hint = (f"ids must be unique: fix the file, or use the feature ids with {table} "
                f"id = \"{FID}\"")
        if blank.any():
            problems.append(Problem(f"{int(blank.sum())} features have no id", **where, column=col,
                                    hint=hint))
        if dup.any():
            problems.append(Problem(f"{int(dup.sum())} features share {ids[dup].nunique()} "
                                    "duplicate ids", **where, column=col,
                                    value=_examples(ids[dup]), hint=hint))
        return ids, problems
    if "id" in spec.columns:  # mapped to a column the file lacks: reported already
        return fid, []
    lower = {str(c).lower(): c for c in gdf.columns}
    for name in ("@osm_id", *_ID_NAMES):
        col = lower.get(name.lower())
        if col is None:
            continue
        ids = _as_text(gdf[col])
        blank, dup = _id_faults(ids)
        if not blank.any() and not dup.any():
            return ids, []
        faults = ", ".join(part for part in (
            f"{int(dup.sum())} features share {ids[dup].nunique()} duplicate values"
            if dup.any() else "", f"{int(blank.sum())} are blank" if blank.any() else "") if part)
        label = "the OSM ids" if name == "@osm_id" else f"column {col!r}"
        return fid, [Problem(f"{label} cannot serve as ids ({faults}): the feature ids "
                             f"({FID}) are used instead", **where, column=col,
                             value=_examples(ids[dup | blank]), severity="warning",
                             hint=f"map another unique column as {table} id = \"<column>\"")]
    return fid, [Problem(f"no id column: the feature ids ({FID}, the file's FIDs or record "
                         "numbers) are used as ids", **where, severity="warning",
                         hint=f"to keep your own ids, map {table} id = \"<column>\"")]


def _id_source(spec: LayerSpec, mapping: dict[str, str], problems: list[Problem],
               gdf: gpd.GeoDataFrame) -> str:
    """Where the ids came from, for run.json."""
    if "id" in mapping:
        return f"column {mapping['id']}" if mapping["id"] != FID else f"{FID} (feature ids)"
    if problems or "id" in spec.columns:
        return f"{FID} (feature ids)"
    lower = {str(c).lower(): c for c in gdf.columns}
    col = next(lower[n.lower()] for n in ("@osm_id", *_ID_NAMES) if n.lower() in lower)
    return "OSM ids" if col == "@osm_id" else f"column {col}"


def _id_faults(ids: pd.Series) -> tuple[pd.Series, pd.Series]:
    blank = (ids.isna() | (ids == "")).astype(bool)
    return blank, (ids.duplicated(keep=False) & ~blank).astype(bool)


def _osm_buildings(gdf: gpd.GeoDataFrame, spec: LayerSpec,
                   where: dict) -> tuple[gpd.GeoDataFrame, list[Problem]]:
    """OSM features → buildings with canonical columns from their tags (no mapping needed).

    Features without ``building=*`` (land use, amenities in the same ``multipolygons`` layer)
    are left out, counted.  ``building=*`` gives the category through the categories table;
    values the table lacks count as ``other``, in one warning (OSM has hundreds).
    """
    problems = []
    keep = osm.is_building(gdf)
    if not keep.any():
        return gdf, [Problem("no feature has a building=* tag", **where,
                             hint="give the OSM buildings (multipolygons with building=*), "
                                  "or map the columns in [layers.buildings.columns]")]
    if not keep.all():
        problems.append(Problem(f"{int((~keep).sum())} OSM features without a building=* tag "
                                "(land use, amenities …) are not buildings: left out", **where,
                                severity="warning"))
        gdf = gdf.loc[keep]
    table = category_table(spec.categories)
    tags, building = osm.building_columns(gdf, table, skip=tuple(spec.columns))
    unknown = tags["category"].isna() if "category" in tags else pd.Series(False, index=gdf.index)
    if unknown.any():
        problems.append(Problem(f"{int(unknown.sum())} buildings have building=* values the "
                                "category table lacks: counted as 'other'", **where,
                                column="building", value=_examples(building[unknown]),
                                severity="warning",
                                hint="add them to [layers.buildings.categories] value = "
                                     "\"residential\" (or another canonical category)"))
        tags["category"] = tags["category"].fillna("other")
    gdf = gdf.drop(columns=[c for c in tags.columns if c in gdf.columns and c != "id"])
    tags = tags.rename(columns={"id": "@osm_id"})
    return gpd.GeoDataFrame(pd.concat([gdf, tags], axis=1), geometry=gdf.geometry.name,
                            crs=gdf.crs), problems


def _survey_areas(out: gpd.GeoDataFrame, gdf: gpd.GeoDataFrame, mapping: dict[str, str],
                  where: dict) -> tuple[gpd.GeoDataFrame, list[Problem]]:
    """Third-survey (and second-survey) area fields: ridges always counted with official areas.

    With ``area`` mapped, ``TBMJ`` and ``KCMJ`` (second survey: ``TKMJ``) are found without a
    mapping.  An ``area`` mapped to ``TBMJ`` itself holds the ridges: ``TBMJ − KCMJ`` is used as
    the net area so that the ridges count once, as 1203.  The second survey's linear and
    scattered features (``XZDWMJ``, ``LXDWMJ``) are deducted from its parcels and mapped in
    layers of their own: their area is reported, not guessed into a class.
    """
    problems = []
    if "area" not in mapping:
        return out, problems
    if mapping.get("tbmj") == mapping["area"] and "kcmj" in out:
        out["area"] = out["tbmj"] - out["kcmj"].fillna(0.0)
        problems.append(Problem("area is mapped to the gross parcel area (TBMJ): TBMJ − KCMJ is "
                                "used as the net area, and KCMJ counts as field ridges (1203)",
                                **where, column=mapping["area"], severity="warning",
                                hint="map the net area instead: [layers.landuse.columns] area = "
                                     "\"TBDLMJ\""))
    elif "kcmj" not in out and "tbmj" not in out:
        problems.append(Problem("official areas without KCMJ or TBMJ: field ridges deducted from "
                                "the parcels cannot be counted", **where,
                                column=mapping["area"], severity="warning",
                                hint="map [layers.landuse.columns] kcmj = \"<ridge area column>\""))
    lower = {str(c).lower(): c for c in gdf.columns}
    linear = [lower[c] for c in ("xzdwmj", "lxdwmj") if c in lower]
    if linear:
        total = sum(pd.to_numeric(gdf[c], errors="coerce").fillna(0.0).clip(lower=0).sum()
                    for c in linear)
        if total > 0:
            problems.append(Problem(f"second-survey linear/scattered features ({', '.join(linear)}: "
                                    f"{total / 1e4:.2f} ha) are not in the parcels' net area and "
                                    "are not counted", **where, severity="warning",
                                    hint="give their own layer (XZDW/LXDW) as land use, merged "
                                         "with the parcels"))
    return out, problems


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
        if "floors" in out and "height" in out:
            # storeys are 2.5–6 m in practice, single-storey halls up to ~20 m; far outside
            # that, one of the two columns is wrong (a height in floors, floors in metres, a
            # missing decimal point)
            low, per_floor, hall = _STOREY_M
            floors, height = out["floors"], out["height"]
            odd = ((height < low * floors) | (height > per_floor * floors + hall)) & (floors >= 1)
            if odd.any():
                problems.append(Problem(
                    f"{int(odd.sum())} buildings have an implausible height for their floors "
                    f"(below {low:g} m per floor or above {per_floor:g} m per floor + {hall:g} m)",
                    **colref("height"),
                    value=_examples(out["id"][odd]) if "id" in out else None, severity="warning",
                    hint="check floors and height of these buildings (ids shown)"))
        out["pv_kw"] = out["pv_kw"].fillna(0.0) if "pv_kw" in out else 0.0
        for col in ("name", "street"):
            if col in out:
                out[col] = out[col].astype("string")
    elif kind == "landuse":
        if "code" in out:
            out["code"] = _as_text(out["code"])
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
        if "tbmj" in out and "kcmj" in out:
            over = out["kcmj"] > out["tbmj"]
            if over.any():
                problems.append(Problem(f"{int(over.sum())} parcels deduct more field ridge (KCMJ) "
                                        "than their whole area (TBMJ)", **colref("kcmj"),
                                        value=_examples(out["id"][over]) if "id" in out else None,
                                        hint="check the KCMJ and TBMJ columns (swapped?)"))
        if "area" in out:
            out = out.rename(columns={"area": "area_official_m2"})
        out = out.rename(columns={"tbmj": "tbmj_m2", "kcmj": "kcmj_m2"})
    elif kind == "zones":
        if "level" in out:
            level = out["level"].astype("string").str.strip().str.lower()
            bad = ~level.isin(ZONE_LEVELS).fillna(False).astype(bool)
            if bad.any():
                problems.append(Problem(f"{int(bad.sum())} zones have an unknown level",
                                        **colref("level"), value=_examples(out["level"][bad]),
                                        hint=f"levels: {', '.join(ZONE_LEVELS)}; map your labels in "
                                             "[layers.zones.values.level] \"一级管控区\" = \"level1\""))
            out["level"] = level
        if "name" in out:
            out["name"] = out["name"].astype("string")
            blank = out["name"].isna() | (out["name"].str.strip() == "")
            if blank.any():
                problems.append(Problem(f"{int(blank.sum())} zones have no name", **colref("name"),
                                        severity="warning",
                                        hint="their rows in the zone table have an empty name"))
    elif kind == "streets":
        if "name" in out:
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
    """Up to ``n`` distinct offending values for a message; missing ones shown as ``<empty>``."""
    uniq = list(pd.unique(values.dropna())) if len(values) else []
    if len(values) and values.isna().any():
        uniq.append("<empty>")
    return [v.item() if hasattr(v, "item") else v for v in uniq[:n]]


def _as_text(values: pd.Series) -> pd.Series:
    """Values as stripped text; whole-number floats (ids, codes read from a DBF) without ``.0``."""
    if pd.api.types.is_float_dtype(values):
        whole = values.notna() & np.isfinite(values) & (np.mod(values.fillna(0.5), 1) == 0) \
            & (values.abs() < 2**53)
        text = values.astype("string")
        ints = values[whole].astype("int64").astype("string")
        return text.where(~whole, ints.reindex(values.index)).str.strip()
    return values.astype("string").str.strip()


#: OSM keys that make a polygon a land-use area (gis.landuse.OSM_KEYS)
_OSM_KEYS = ("natural", "water", "waterway", "wetland", "landuse", "leisure")


def _osm_landuse(gdf: gpd.GeoDataFrame, spec: LayerSpec,
                 where: dict) -> tuple[gpd.GeoDataFrame, list[Problem]]:
    """OSM polygons (GDAL's ``multipolygons`` layer) → ``id``, the key columns and ``code``.

    GDAL puts the common keys in columns and the rest in ``other_tags`` as ``"k"=>"v"`` text;
    each key is taken from its column or else from ``other_tags``.  Polygons with none of the
    land-use keys (buildings, amenities) are not land use: dropped, with a count.
    """
    from gis.landuse import classify_osm

    problems = []
    gdf = gdf.copy()
    other = gdf["other_tags"].astype("string") if "other_tags" in gdf else None
    for key in _OSM_KEYS:
        col = gdf[key].astype("string") if key in gdf else pd.Series(pd.NA, index=gdf.index,
                                                                         dtype="string")
        if other is not None:
            col = col.fillna(other.str.extract(rf'"{key}"=>"([^"]*)"', expand=False))
        gdf[key] = col
    if "tags" in gdf and other is None:
        gdf["code"] = classify_osm(gdf[["tags"]])
    else:
        gdf["code"] = classify_osm(gdf[list(_OSM_KEYS)])
    if "id" not in spec.columns and "id" not in gdf and ("osm_id" in gdf or "osm_way_id" in gdf):
        rel = _as_text(gdf["osm_id"]) if "osm_id" in gdf else pd.Series(pd.NA, index=gdf.index)
        way = _as_text(gdf["osm_way_id"]) if "osm_way_id" in gdf else pd.Series(pd.NA,
                                                                                 index=gdf.index)
        gdf["id"] = ("relation/" + rel).fillna("way/" + way)
    untagged = gdf["code"].fillna("") == ""
    if untagged.all():
        problems.append(Problem("no polygon has a land-use tag (natural, water, waterway, wetland, "
                                "landuse, leisure)", **where,
                                hint="give the multipolygons of an OSM extract with land use"))
    elif untagged.any():
        problems.append(Problem(f"{int(untagged.sum())} OSM polygons without land-use tags "
                                "(buildings, amenities …) are not land use: left out", **where,
                                severity="warning"))
        gdf = gdf.loc[~untagged]
    return gdf, problems


def _read_one(spec: LayerSpec) -> tuple[gpd.GeoDataFrame | None, bool, list[Problem], dict]:
    """Read one vector layer: (canonical frame, whether its shapes are usable, problems, input
    record).

    The frame is None only when the file cannot be read; the caller drops it when the problems
    hold an error.  Its geometry is used whenever the CRS and the shapes are usable (the flag),
    so that the cross-layer checks still run.
    Column checks run even when the CRS is missing or wrong: every problem at once.
    """
    kind = spec.kind
    where = {"file": str(spec.path), "layer": spec.layer or kind}
    info: dict[str, Any] = {"kind": kind, "path": str(spec.path), "layer": spec.layer}
    try:
        encoding = spec.encoding or io.detect_encoding(spec.path)
    except OSError as exc:
        return None, False, [Problem(f"cannot read the file: {exc.strerror or exc}", **where,
                                     hint="check the file exists and can be read")], info
    info["encoding"] = encoding
    gdf, problems = io.read_vector(spec.path, layer=spec.layer, encoding=encoding, label=kind)
    if gdf is None:
        return None, False, problems, info
    info["features_read"] = int(len(gdf))
    if len(gdf) == 0:
        problems.append(Problem("the layer is empty", **where, hint="give a layer with features"))
        return None, False, problems, info
    crs, crs_problems = io.check_crs(gdf, declared=spec.crs, where=where)
    problems += crs_problems
    if crs is not None:
        gdf = gdf.set_crs(crs, allow_override=True)
        info["crs"] = f"EPSG:{crs.to_epsg()}" if crs.to_epsg() else crs.to_string()
    gdf, geom_problems = io.clean_polygons(gdf, where=where)
    problems += geom_problems
    if crs is not None and spec.datum != "wgs84" and len(gdf):
        gdf = _to_wgs84(gdf, spec.datum)
        info["datum"] = f"{spec.datum} converted to WGS84 (gis.datums)"
    if len(gdf) == 0 or _has_error(geom_problems):
        # points or lines where polygons belong: most likely the wrong file altogether, whose
        # columns would only add noise to the report
        return None, False, problems, info
    geom_ok = crs is not None
    out, col_problems = canonical_frame(kind, spec, gdf)
    problems += col_problems
    if "id_source" in out.attrs:
        info["ids"] = out.attrs.pop("id_source")
    return out, geom_ok, problems, info


def _to_wgs84(gdf: gpd.GeoDataFrame, datum: str) -> gpd.GeoDataFrame:
    """A layer in GCJ-02 or BD-09 (lon/lat, or projected from them) → WGS84 lon/lat."""
    from gis import datums

    lonlat = gdf.to_crs(4326) if not CRS.from_user_input(gdf.crs).equals(CRS.from_epsg(4326)) \
        else gdf
    return lonlat.set_geometry(datums.to_wgs84(lonlat.geometry.values, datum), crs=4326)


def _has_error(problems: list[Problem]) -> bool:
    return any(p.severity == "error" for p in problems)


def _check_raster(spec: LayerSpec, crs: CRS, extent: tuple | None) -> tuple[list[Problem], dict]:
    """Open a raster and check its CRS, nodata, extent, data and (irradiance) value range."""
    import rasterio
    from rasterio.errors import RasterioError
    from rasterio.warp import transform_bounds

    where = {"file": str(spec.path), "layer": spec.kind}
    info: dict[str, Any] = {"kind": spec.kind, "path": str(spec.path)}
    problems: list[Problem] = []
    try:
        with rasterio.open(spec.path) as src:
            info.update(width=src.width, height=src.height, res=list(src.res))
            if spec.band > src.count:
                problems.append(Problem(f"the raster has {src.count} bands", **where,
                                        value=spec.band, hint="set `band` to an existing band"))
                return problems, info
            file_crs = CRS.from_user_input(src.crs) if src.crs else None
            rcrs = file_crs or (CRS.from_user_input(spec.crs) if spec.crs else None)
            if rcrs is None:
                guess = io.suggest_crs(tuple(src.bounds))
                problems.append(Problem(
                    "the raster has no CRS", **where,
                    hint="set `crs = \"EPSG:…\"` for this layer in the run file"
                         + (f"; its coordinates fit EPSG:{guess.to_epsg()}" if guess else "")))
                return problems, info
            info["crs"] = f"EPSG:{rcrs.to_epsg()}" if rcrs.to_epsg() else rcrs.to_string()
            if not io._fits(tuple(src.bounds), rcrs):
                guess = io.suggest_crs(tuple(src.bounds))
                problems.append(Problem(
                    f"the raster's coordinates do not fit its CRS ({rcrs.name})", **where,
                    value=[io._num(b) for b in src.bounds],
                    hint=(f"they fit EPSG:{guess.to_epsg()}: " if guess else "")
                    + "fix the raster's CRS (gdal_edit.py -a_srs) or set `crs =` in the run file"))
                return problems, info
            if src.nodata is None:
                problems.append(Problem("the raster has no nodata value: every pixel is taken as "
                                        "data", **where, severity="warning",
                                        hint="set a nodata value (gdal_edit.py -a_nodata)"))
            bounds = transform_bounds(rcrs, crs, *src.bounds)
            if not np.all(np.isfinite(bounds)):
                problems.append(Problem("the raster cannot be placed in the working CRS", **where,
                                        value=crs.to_string(),
                                        hint="check the raster's CRS and extent"))
                return problems, info
            if extent is not None and not shapely.box(*bounds).intersects(shapely.box(*extent)):
                problems.append(Problem("the raster does not overlap the district", **where,
                                        value=[round(b) for b in bounds],
                                        hint="check the raster's CRS and extent"))
                return problems, info
            # a thumbnail of at most 512 × 512 pixels is enough to judge the values
            step = max(1, int(max(src.width, src.height) / 512))
            sample = src.read(spec.band, out_shape=(max(1, src.height // step),
                                                    max(1, src.width // step)), masked=True)
            pixel_m2 = abs(src.res[0] * src.res[1]) * step * step
    except (RasterioError, OSError, ValueError, OverflowError) as exc:
        problems.append(Problem(f"cannot read the raster (truncated or corrupt?): "
                                f"{io._first_line(exc)}", **where,
                                hint="check the file is a complete GeoTIFF; re-export it"))
        return problems, info
    data = np.ma.masked_invalid(sample.astype(float)).compressed()
    if data.size == 0:
        problems.append(Problem("every pixel of the raster is nodata (or NaN)", **where,
                                hint="give a raster with data"))
    elif spec.kind == "irradiance":
        if data.max() > 3000 or data.min() < 0:
            problems.append(Problem("irradiation values outside 0–3000 kWh/m²/yr", **where,
                                    value=[float(data.min()), float(data.max())],
                                    hint="give annual roof irradiation in kWh/m²/yr"))
    elif spec.kind == "landcover":
        problems += _landcover_classes(data, pixel_m2, spec)
    elif spec.kind in ("dsm", "dem"):
        problems += _height_problems(data, info, spec)
    return problems, info


def _height_problems(data: np.ndarray, info: dict, spec: LayerSpec) -> list[Problem]:
    """A surface or ground model must hold heights in metres, fine enough for roof planes."""
    where = {"file": str(spec.path), "layer": spec.kind}
    problems = []
    if data.min() < -500 or data.max() > 9000:
        problems.append(Problem("heights outside −500…9 000 m: not metres above sea level",
                                **where, value=[float(data.min()), float(data.max())],
                                hint="give heights in metres (divide centimetres by 100)"))
    crs = info.get("crs")
    if crs and CRS.from_user_input(crs).is_geographic:
        problems.append(Problem("a height model in degrees: slopes and areas need metres",
                                **where, value=crs,
                                hint="reproject it to the working CRS, e.g. gdalwarp -t_srs "
                                     "EPSG:4548 -tr 0.5 0.5 dsm.tif dsm_m.tif"))
        return problems
    res = max(abs(r) for r in info.get("res", [0.0]))
    if spec.kind == "dsm" and res > 2.0:
        problems.append(Problem(f"pixels of {res:g} m are too coarse for roof planes (a plane "
                                f"needs a few pixels across)", **where, severity="warning",
                                value=res, hint="give a DSM of 0.25–1 m pixels"))
    return problems


def _landcover_classes(data: np.ndarray, pixel_m2: float, spec: LayerSpec) -> list[Problem]:
    """Class values of a land-cover raster unknown to its scheme (same rule as land-use codes)."""
    try:
        from gis.landuse import unknown_codes
    except ImportError:  # the classification module is optional for loading
        return []
    values, counts = np.unique(data, return_counts=True)
    codes = pd.Series(values).map(lambda v: str(int(v)) if float(v).is_integer() else str(v))
    table = unknown_codes(codes, spec.scheme, areas_m2=pd.Series(counts * pixel_m2, dtype=float))
    if table is None or len(table) == 0:
        return []
    share = float(counts[codes.isin(table["code"]).to_numpy()].sum() / counts.sum())
    sev = "error" if share > spec.max_unknown_share else "warning"
    return [Problem(f"{share:.1%} of the pixels have classes unknown to scheme "
                    f"{Path(str(spec.scheme)).name}"
                    + ("; they count as neither blue nor green" if sev == "warning" else ""),
                    file=str(spec.path), layer=spec.kind, value=table["code"].head(10).tolist(),
                    severity=sev, hint="check `scheme` and `band` for this layer")]


@io.gc_paused()
def load_layers(cfg: RunConfig, *, progress=None, reads: dict | None = None) -> Layers:
    """Read, check and reproject every layer of a run.

    Parameters
    ----------
    cfg : RunConfig
        The validated run file.
    progress : callable, optional
        Called with a short label as each layer is read.
    reads : dict, optional
        Layers being read in forked processes (:func:`read_beside`), by kind; each is taken
        in its turn, or read here when its process did not deliver it.

    Returns
    -------
    Layers
        With ``problems`` listing every warning and error; layers with errors are None.
        Call :func:`raise_for_errors` (or check the severities) before using them.  The
        ``[pv]`` and ``[ecology]`` tables and the weather file are checked too.

    Notes
    -----
    Input files are only read, never written.
    """
    problems: list[Problem] = []
    frames: dict[str, gpd.GeoDataFrame | None] = {}
    shapes: dict[str, gpd.GeoDataFrame] = {}
    usable: dict[str, bool] = {}
    inputs: list[dict] = []
    reads = dict(reads or {})
    try:
        read = {kind: _read_in_turn(cfg.layers[kind], reads.pop(kind, None), progress)
                for kind in VECTOR_KINDS if kind in cfg.layers}
    finally:
        for forked in reads.values():  # none left, unless a read here raised
            forked.kill()
    for kind, (gdf, geom_ok, layer_problems, info) in read.items():
        problems += layer_problems
        inputs.append(info)
        frames[kind] = gdf
        usable[kind] = gdf is not None and not _has_error(layer_problems)
        if geom_ok:
            shapes[kind] = gdf[[gdf.geometry.name]]
    for kind in ("buildings", "landuse", "zones"):
        if kind not in cfg.layers and not (kind == "landuse" and "landcover" in cfg.layers):
            sev = "error" if kind == "buildings" and "landuse" not in cfg.layers else "warning"
            problems.append(Problem(f"no {kind} layer: the analyses that need it are skipped",
                                    file=str(cfg.path) if cfg.path else None, severity=sev,
                                    hint=f"add [layers.{kind}] to the run file"))
    crs = io.working_crs(cfg.crs, list(shapes.values()))
    problems += io.area_distortion_problems(crs, list(shapes.values()), source=cfg.path)
    layers = Layers(crs=crs)
    for kind, geom in list(shapes.items()):
        geom = io.to_crs(geom, crs)
        bad = ~np.isfinite(shapely.get_coordinates(geom.geometry.values)).all(axis=1)
        if bad.any():
            spec = cfg.layers[kind]
            problems.append(Problem(f"the layer cannot be projected to the working CRS "
                                    f"{crs.to_string()}", file=str(spec.path),
                                    layer=spec.layer or kind,
                                    hint="check the layer's CRS, or set [project] crs"))
            del shapes[kind]
            usable[kind] = False
            continue
        shapes[kind] = geom
        if usable[kind]:
            setattr(layers, kind, frames[kind].set_geometry(geom.geometry.values, crs=crs))
    extent = _extent([shapes.get("buildings"), shapes.get("landuse")])
    for kind in ("irradiance", "landcover", "dsm", "dem"):
        spec = cfg.layers.get(kind)
        if spec is None:
            continue
        raster_problems, info = _check_raster(spec, crs, extent)
        info["sha256"] = _hash(spec.path)
        inputs.append(info)
        problems += raster_problems
        if not _has_error(raster_problems):
            layers.rasters[kind] = spec
    problems += _cross_checks(shapes, layers, cfg)
    weather_meta = None
    if cfg.weather is not None:
        inputs.append({"kind": "weather", "path": str(cfg.weather), "sha256": _hash(cfg.weather)})
        weather_problems, weather_meta = _weather_problems(cfg.weather)
        problems += weather_problems
    problems += _weather_distance_problems(cfg, layers, weather_meta, inputs)
    problems += _datum_offset_problems(cfg, layers)
    problems += _option_problems(cfg)
    landuse = frames.get("landuse")
    if landuse is not None and "code" in landuse:
        spec = cfg.layers["landuse"]
        areas = shapes["landuse"].geometry.area if "landuse" in shapes else None
        problems += _landuse_codes(landuse["code"], spec, areas)
        if layers.landuse is not None:
            problems += _official_area_problems(layers.landuse, spec)
    layers.problems = problems
    layers.inputs = inputs
    return layers


def read_beside(cfg: RunConfig) -> dict:
    """Every vector layer of a run but the first in :data:`VECTOR_KINDS` (the buildings, when
    given) read in a forked process each (:class:`gis._schedule.Forked`), for
    :func:`load_layers`' ``reads``; empty with fewer than two layers.

    A layer's read (decoding its text, cleaning its shapes, mapping its columns) is Python
    holding the interpreter lock for most of its time: the layers read side by side in
    processes, while this one reads the first, and its frame comes back pickled (≈ 0.05 s for
    the demo's land use against ≈ 0.5 s to read it).  Fork before any thread is started.
    """
    from gis._schedule import Forked

    kinds = [kind for kind in VECTOR_KINDS if kind in cfg.layers]
    return {kind: Forked(partial(_read_and_hash, cfg.layers[kind]), name=f"gis-read-{kind}")
            for kind in kinds[1:]}


def _read_in_turn(spec: LayerSpec, forked, progress) -> tuple:
    """:func:`_read_and_hash`'s result for one layer: from its process, else read here."""
    from gis._schedule import NOT_DELIVERED

    if progress:
        progress(f"reading {spec.kind}")
    got = forked.result() if forked is not None else NOT_DELIVERED
    return _read_and_hash(spec) if got is NOT_DELIVERED else got


def _read_and_hash(spec: LayerSpec) -> tuple:
    """:func:`_read_one`, with the file's hash in the input record."""
    gdf, geom_ok, problems, info = _read_one(spec)
    info["sha256"] = _hash(spec.path)
    return gdf, geom_ok, problems, info


def _hash(path: Path) -> str | None:
    try:
        return io.file_hash(path)
    except OSError:  # unreadable: reported by the reader
        return None


def _landuse_codes(codes: pd.Series, spec: LayerSpec, areas_m2: pd.Series | None) -> list[Problem]:
    """Unknown land-use codes, with parcel count and area; an error past ``max_unknown_share``.

    The share is by area when the parcels' areas are known, else by parcel count.
    """
    try:
        from gis.landuse import unknown_codes
    except ImportError:  # the classification module is optional for loading
        return []
    if areas_m2 is not None:
        areas_m2 = areas_m2.reindex(codes.index)
    table = unknown_codes(codes, spec.scheme, areas_m2=areas_m2)
    if table is None or len(table) == 0:
        return []
    if areas_m2 is not None and areas_m2.sum() > 0:
        share, basis = float(table["area_ha"].sum() * 1e4 / areas_m2.sum()), "of the area"
    else:
        share, basis = float(table["parcels"].sum() / len(codes)), "of the parcels"
    sev = "error" if share > spec.max_unknown_share else "warning"
    listing = ", ".join(f"{r.code} ({r.parcels} parcels"
                        + ("" if pd.isna(r.area_ha) else f", {r.area_ha:.2f} ha") + ")"
                        for r in table.head(10).itertuples())
    return [Problem(f"{int(table['parcels'].sum())} parcels ({share:.1%} {basis}) have codes "
                    f"unknown to scheme {Path(str(spec.scheme)).name}: {listing}"
                    + ("; they count as neither blue nor green" if sev == "warning" else ""),
                    file=str(spec.path), layer=spec.layer or "landuse",
                    column=spec.columns.get("code", "code"), severity=sev,
                    value=table["code"].head(10).tolist(),
                    hint="check `scheme` in the run file, or give a mapping CSV as scheme "
                         f"with these codes (max_unknown_share = {spec.max_unknown_share:g})")]


def _official_area_problems(landuse: gpd.GeoDataFrame, spec: LayerSpec) -> list[Problem]:
    """Official areas (TBDLMJ) in other units than m²: their sum far from the parcels' area."""
    if "area_official_m2" not in landuse:
        return []
    official = landuse["area_official_m2"].astype(float)
    geometric = landuse.geometry.area
    known = official.notna()
    if not known.any() or geometric[known].sum() <= 0:
        return []
    ratio = float(official[known].sum() / geometric[known].sum())
    low, high = _OFFICIAL_RATIO
    if low <= ratio <= high:
        return []
    return [Problem(f"official parcel areas add up to {ratio:.3g} × the parcels' drawn area",
                    file=str(spec.path), layer=spec.layer or "landuse",
                    column=spec.columns.get("area", "area"), value=round(ratio, 4),
                    hint="the area column must be in m² (mu: × 666.67, ha: × 10 000) and belong "
                         "to these parcels; map the right column as [layers.landuse.columns] area")]


def _weather_problems(path: Path) -> tuple[list[Problem], dict | None]:
    """Problems of the weather file, found by reading it the way the PV step will; its metadata."""
    try:
        from gis.solar import read_weather
    except ImportError:
        return [], None
    try:
        _, meta = read_weather(path)
    except InputError as exc:
        return list(exc.problems), None
    return [], meta


def _weather_site(path: Path, meta: dict) -> str:
    """The weather file's site for messages: the EPW LOCATION line's place, and lat/lon."""
    where = f"{meta['latitude']:.2f} N {meta['longitude']:.2f} E"
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            head = fh.readline().split(",")
    except OSError:
        head = []
    if head and head[0].strip().upper() == "LOCATION":
        place = ", ".join(p.strip() for p in head[1:4] if p.strip() and p.strip() != "-")
        return f"{place} ({where})" if place else where
    return where


def _weather_distance_problems(cfg: RunConfig, layers: Layers, meta: dict | None,
                               inputs: list[dict]) -> list[Problem]:
    """Weather far from the district: a warning from 50 km, an error beyond the limit.

    The limit (``[weather] max_distance_km``, default 300 km, as the built-in climate model's)
    applies to a weather file and to the built-in climate alike, so that no yield is computed
    from another region's sunshine without the run file saying so.
    """
    from gis.solar import CLIMATE_SITES, _distance_km

    try:
        lat, lon = layers.site()
    except InputError:
        return []
    limit = cfg.weather_max_distance_km
    src = str(cfg.path) if cfg.path else None
    if meta is not None:
        dist = _distance_km(lat, lon, float(meta["latitude"]), float(meta["longitude"]))
        site = _weather_site(cfg.weather, meta)
        for record in inputs:
            if record.get("kind") == "weather":
                record.update(site=site, distance_km=round(dist, 1), max_distance_km=limit)
        where = {"file": str(cfg.weather), "layer": "weather"}
        if dist > limit:
            return [Problem(f"the weather file's site {site} is {dist:.0f} km from the district "
                            f"centre ({lat:.2f} N {lon:.2f} E): its yields would be another "
                            "region's", **where, column="weather.max_distance_km",
                            value=round(dist), hint=f"give a typical-year file within {limit:g} km "
                            "(EPW: climate.onebuilding.org; PVGIS TMY), or raise [weather] "
                            "max_distance_km if this file is right")]
        if dist > _WEATHER_WARN_KM:
            return [Problem(f"the weather file's site {site} is {dist:.0f} km from the district "
                            f"centre ({lat:.2f} N {lon:.2f} E)", **where, severity="warning",
                            hint="a typical-year file nearer the district gives truer yields")]
        return []
    if cfg.weather is not None or (layers.buildings is None and layers.landuse is None):
        return []
    name, near = min(CLIMATE_SITES.items(), key=lambda kv: _distance_km(
        lat, lon, kv[1]["latitude"], kv[1]["longitude"]))
    dist = _distance_km(lat, lon, near["latitude"], near["longitude"])
    if dist <= _WEATHER_WARN_KM:
        return []
    if dist <= min(limit, _CLIMATE_LIMIT_KM):
        return [Problem(f"no weather file: the built-in climate figures ({name}, "
                        f"{near['latitude']:.2f} N {near['longitude']:.2f} E) are {dist:.0f} km from "
                        f"the district centre ({lat:.2f} N {lon:.2f} E)", file=src, layer="weather",
                        severity="warning",
                        hint="a typical-year weather file for the district ([weather] epw) gives "
                             "truer yields")]
    # without weather near the district the run goes on: everything that needs no sun (areas,
    # capacities, installable shares, ecology) is right; yields are left missing, never 0
    layers.yields_note = (f"not computed: no weather file, and the built-in climate figures "
                          f"({name}) are {dist:.0f} km from the district")
    return [Problem(f"no weather file, and the built-in climate figures ({name}) are {dist:.0f} km "
                    f"from the district centre ({lat:.2f} N {lon:.2f} E): yields are not computed "
                    "(specific yield, annual kWh, CO₂, coal, shading by neighbours, savings, "
                    "renewable substitution are left empty); roof areas, capacities, installable "
                    "shares and the ecology are computed", file=src, layer="weather", column="weather.epw",
                    severity="warning",
                    hint="add a typical-year weather file for the district: [weather] epw = "
                         "\"<file>.epw\" (EPW from climate.onebuilding.org, or a PVGIS TMY "
                         "file from re.jrc.ec.europa.eu/pvg_tools)")]


#: a weather file farther than this [km] from the district centre is named in a warning
_WEATHER_WARN_KM = 50.0
#: the built-in climate model's own limit [km] (gis.solar.CLIMATE_MAX_DISTANCE_KM)
_CLIMATE_LIMIT_KM = 300.0


def _datum_offset_problems(cfg: RunConfig, layers: Layers) -> list[Problem]:
    """Buildings that land on survey parcels only once moved as from GCJ-02/BD-09: suggest it.

    Footprints traced on AMap/Tencent (GCJ-02) or Baidu (BD-09) maps sit 300–700 m off WGS84/
    CGCS2000 parcels, mostly on fields and water.  The share of building centres on construction
    land is compared as given and after each datum conversion; a gain of at least 25 points
    (to over half the buildings) is a systematic offset, not chance.
    """
    from gis import datums

    b, lu = layers.buildings, layers.landuse
    spec_b, spec_l = cfg.layers.get("buildings"), cfg.layers.get("landuse")
    if (b is None or lu is None or "code" not in lu or spec_b.datum != "wgs84"
            or spec_l.datum != "wgs84"):
        return []
    try:
        import warnings

        from gis.landuse import classify

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            built = classify(lu["code"], spec_l.scheme)["construction"].to_numpy(bool)
    except (ImportError, InputError, ValueError, KeyError):
        return []
    if not built.any():
        return []
    # a sample of about 5 000 buildings: a share's standard error is then under 0.7 points,
    # against the 25-point gain that decides (the inverse conversions cost ≈ 10 µs a point)
    step = max(1, len(b) // 5000)
    centres = shapely.point_on_surface(b.geometry.values[::step])
    x, y = io.transformer(layers.crs, 4326).transform(shapely.get_x(centres), shapely.get_y(centres))
    if datums.out_of_china(np.mean(x), np.mean(y)):
        return []
    parcels = np.asarray(lu.geometry.values[built])
    tree = shapely.STRtree(parcels)
    shapely.prepare(parcels)

    def share(points) -> float:
        # a point is within a parcel exactly when the parcel contains it; the prepared parcels
        # answer that faster than the tree's own predicate
        i, j = tree.query(points)
        hit = np.unique(i[shapely.contains(parcels[j], points[i])])
        return len(hit) / max(len(points), 1)

    given = share(centres)
    best = None
    back = io.transformer(4326, layers.crs)
    for datum, inverse in (("gcj02", datums.gcj02_to_wgs84), ("bd09", datums.bd09_to_wgs84)):
        s = share(shapely.points(*back.transform(*inverse(x, y))))
        if s >= given + 0.25 and s > 0.5 and (best is None or s > best[1]):
            best = (datum, s)
    shapely.destroy_prepared(parcels)  # the layer's own geometries: left as they came
    if best is None:
        return []
    offset = float(np.median(np.hypot(*datums.shift_m(x, y, best[0]).T)))
    return [Problem(f"the buildings look shifted by about {offset:.0f} m against the land-use "
                    f"parcels, as {best[0].upper()} web-map footprints are: {given:.0%} of them "
                    f"stand on construction land as given, {best[1]:.0%} once converted from "
                    f"{best[0].upper()}", file=str(spec_b.path), layer=spec_b.layer or "buildings",
                    severity="warning",
                    hint=f"set datum = \"{best[0]}\" in [layers.buildings] if the footprints "
                         "come from AMap/Gaode, Tencent or Baidu maps")]


def _option_problems(cfg: RunConfig) -> list[Problem]:
    """Unknown keys and bad values in the ``[pv]``, ``[ecology]``, ``[ground]`` and ``[finance]``
    tables of the run file."""
    from dataclasses import replace

    problems: list[Problem] = []
    checks = []
    try:
        from gis.landuse import ecology_options

        checks.append((ecology_options, cfg.ecology))
    except ImportError:
        pass
    try:
        from gis.rooftop import pv_params

        checks.append((pv_params, cfg.pv))
    except ImportError:
        pass
    try:
        from gis.finance import finance_params
        from gis.ground import ground_params

        checks += [(ground_params, cfg.ground), (finance_params, cfg.finance)]
    except ImportError:
        pass
    roads = cfg.ground.get("roads")
    if isinstance(roads, str) and not (cfg.base / roads).is_file():
        problems.append(Problem("roads layer not found", file=str(cfg.path) if cfg.path else None,
                                column="ground.roads", value=str(cfg.base / roads),
                                hint="fix the path (relative to the run file) or remove the key"))
    for check, table in checks:
        try:
            check(**table)
        except InputError as exc:
            problems += [replace(p, file=p.file or (str(cfg.path) if cfg.path else None))
                         for p in exc.problems]
        except TypeError as exc:  # a key that is not a valid keyword
            problems.append(Problem(f"bad table: {exc}", file=str(cfg.path) if cfg.path else None))
    return problems


def _extent(frames) -> tuple | None:
    frames = [f for f in frames if f is not None and len(f)]
    if not frames:
        return None
    b = np.array([f.total_bounds for f in frames])
    return (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())


def _cross_checks(shapes: dict[str, gpd.GeoDataFrame], layers: Layers,
                  cfg: RunConfig) -> list[Problem]:
    """Layers that do not overlap the buildings (or the land use): one CRS is probably wrong."""
    problems = []
    base_kind = "buildings" if "buildings" in shapes else "landuse"
    base = shapes.get(base_kind)
    if base is None:
        return problems
    district = shapely.box(*_extent([shapes.get("buildings"), shapes.get("landuse")]))
    for kind in ("landuse", "zones", "streets", "forest"):
        gdf = shapes.get(kind)
        if gdf is None or kind == base_kind:
            continue
        # the layer's shapes against the district's extent (stands or zones may well lie
        # where there are no buildings, but not outside the district)
        if not shapely.intersects(gdf.geometry.values, district).any():
            spec = cfg.layers[kind]
            problems.append(Problem(f"the {kind} layer does not overlap the "
                                    f"{'buildings' if base_kind == 'buildings' else 'land use'}",
                                    file=str(spec.path), layer=spec.layer or kind,
                                    value=[round(b) for b in gdf.total_bounds],
                                    hint="check both layers' CRS and extent: one of them is "
                                         "probably wrong, or the layers are of different places"))
    if layers.zones is not None and (layers.zones["level"] == "barrier").sum() == 0 and \
            layers.zones["level"].isin(ZONE_LEVELS).all():
        problems.append(Problem("no zone has level 'barrier': barrier targets use the union of "
                                "all level1–level3 zones", file=str(cfg.layers["zones"].path),
                                severity="warning"))
    return problems


def load_run(cfg: RunConfig, *, progress=None,
             reads: dict | None = None) -> tuple[dict | None, Layers, list[Problem]]:
    """The targets and the layers of a run, with every problem of both.

    Besides the layers, ``layers.inputs`` lists (with hashes) the other files that change the
    numbers: a targets file and a code-mapping CSV.  ``reads``: see :func:`load_layers`.
    """
    from gis.targets import load_targets

    problems: list[Problem] = []
    targets = None
    try:
        targets = load_targets(cfg.targets, base=cfg.base)
    except InputError as exc:
        problems += exc.problems
    layers = load_layers(cfg, progress=progress, reads=reads)
    problems += layers.problems
    extra = {"targets": targets["source"] if targets else None}
    for kind in ("landuse", "landcover"):
        spec = cfg.layers.get(kind)
        if spec is not None and spec.scheme and spec.scheme.lower().endswith(".csv"):
            extra[f"{kind} scheme"] = spec.scheme
    for kind, path in extra.items():
        if path and Path(path).is_file():
            layers.inputs.append({"kind": kind, "path": str(path), "sha256": io.file_hash(path)})
    return targets, layers, problems


def validate(cfg: RunConfig) -> list[Problem]:
    """Every problem with the targets and the layers of a run (errors and warnings)."""
    return load_run(cfg)[2]


def raise_for_errors(problems: list[Problem]) -> None:
    """Raise :class:`InputError` with every problem when any of them is an error."""
    if any(p.severity == "error" for p in problems):
        raise InputError(problems)


__all__ = ["Layers", "load_layers", "validate", "raise_for_errors", "map_categories",
           "category_table", "CATEGORIES", "canonical_frame", "recognise_columns",
           "suggest_values"]

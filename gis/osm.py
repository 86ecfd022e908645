"""OpenStreetMap layers as they come: tags from columns or from GDAL's ``other_tags``, OSM ids.

OSM data reach planners as ``.osm.pbf``/``.osm`` extracts (GDAL's OSM driver: the common keys
as columns, every other key in the ``other_tags`` hstore text ``"k"=>"v","k2"=>"v2"``), as
Overpass or osmnx exports (one column per key, ``building:levels``; sometimes renamed
``building_levels``), or as GeoJSON converted by ``ogr2ogr``.  :func:`tag` reads one key from
whichever of these holds it; :func:`osm_ids` builds ``way/123`` / ``relation/456`` ids;
:func:`building_columns` turns the building tags into the canonical building columns.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

#: columns that mark a layer as OpenStreetMap data (GDAL OSM driver, osmnx, Overpass turbo)
OSM_MARKERS = ("osm_id", "osm_way_id", "osmid", "other_tags", "element_type", "@id")
#: file suffixes read through GDAL's OSM driver
OSM_SUFFIXES = (".osm", ".pbf")

#: canonical building column ← OSM keys, first present wins (https://wiki.openstreetmap.org/wiki/Key:building:levels,
#: Key:height, Key:roof:shape, Key:roof:direction, Key:roof:angle, Key:start_date)
BUILDING_TAGS = {
    "floors": ("building:levels",),
    "height": ("height", "building:height"),
    "roof_type": ("roof:shape",),
    "roof_azimuth": ("roof:direction",),
    "roof_tilt": ("roof:angle",),
    "year_built": ("start_date", "building:start_date"),
    "name": ("name",),
}
#: roof:direction given as a compass point → azimuth [°, 0 = north, 180 = south]
COMPASS = {p: 22.5 * i for i, p in enumerate(
    ("N", "NNE", "NE", "ENE", "E", "ESE", "SE", "SSE", "S", "SSW", "SW", "WSW", "W", "WNW",
     "NW", "NNW"))}
#: building values that say "not a building"
NOT_BUILDING = ("no", "")


def is_osm(gdf: pd.DataFrame, path: str | Path | None = None) -> bool:
    """Is this layer OpenStreetMap data (by the file's suffix or the OSM id/tag columns)?"""
    if path is not None and Path(path).suffix.lower() in OSM_SUFFIXES:
        return True
    cols = {str(c).lower() for c in gdf.columns}
    return any(m in cols for m in OSM_MARKERS)


def tag(gdf: pd.DataFrame, key: str) -> pd.Series:
    """The value of OSM key ``key`` per feature, as text (``<NA>`` where untagged).

    Looked up in a column named ``key`` (any case), ``key`` with ``:`` as ``_``, either with a
    ``_raw`` suffix, and then in GDAL's ``other_tags`` hstore text.

    Examples
    --------
    >>> frame = pd.DataFrame({"building": ["yes", "house"],
    ...                       "other_tags": ['"building:levels"=>"3","height"=>"9 m"', None]})
    >>> tag(frame, "building:levels").tolist(), tag(frame, "height").tolist()
    (['3', <NA>], ['9 m', <NA>])
    """
    lower = {str(c).lower(): c for c in gdf.columns}
    out = pd.Series(pd.NA, index=gdf.index, dtype="string")
    snake = key.replace(":", "_")
    for name in (key, snake, f"{key}_raw", f"{snake}_raw"):
        col = lower.get(name.lower())
        if col is not None:
            values = gdf[col].astype("string").str.strip()
            out = out.fillna(values.where(values != ""))
    if "other_tags" in lower:
        other = gdf[lower["other_tags"]].astype("string")
        # a plain substring test first: the regex then runs only on the features carrying the key
        has = other.str.contains(f'"{key}"=>', regex=False).fillna(False).astype(bool)
        todo = has & out.isna()
        if todo.any():
            pattern = rf'"{re.escape(key)}"=>"((?:[^"\\]|\\.)*)"'
            found = other[todo].str.extract(pattern, expand=False).str.replace('\\"', '"',
                                                                               regex=False)
            out = out.fillna(found.reindex(out.index))
    return out


def osm_ids(gdf: pd.DataFrame) -> pd.Series | None:
    """``relation/…`` / ``way/…`` / ``node/…`` ids from the OSM id columns, or None.

    GDAL's OSM driver puts a relation's id in ``osm_id`` and a closed way's in ``osm_way_id``;
    osmnx writes ``element_type`` (or ``element``) and ``osmid`` (or ``id``); Overpass turbo
    writes ``@id`` = ``way/123``.
    """
    def text(name: str) -> pd.Series:
        from gis.validate import _as_text

        return _as_text(gdf[name]) if name in gdf else pd.Series(pd.NA, index=gdf.index,
                                                                   dtype="string")

    if "osm_id" in gdf or "osm_way_id" in gdf:
        suffix_relation = "relation/" if "osm_way_id" in gdf else "node/"
        rel, way = text("osm_id"), text("osm_way_id")
        return (suffix_relation + rel.where(rel != "")).fillna("way/" + way.where(way != ""))
    element = "element_type" if "element_type" in gdf else ("element" if "element" in gdf else None)
    if element is not None and ("osmid" in gdf or "id" in gdf):
        return text(element) + "/" + text("osmid" if "osmid" in gdf else "id")
    if "@id" in gdf:
        return text("@id")
    return None


def is_building(gdf: pd.DataFrame) -> pd.Series:
    """Features tagged ``building=*`` (other than ``building=no``)."""
    value = tag(gdf, "building").str.strip().str.lower()
    return (value.notna() & ~value.isin(NOT_BUILDING)).astype(bool)


def building_columns(gdf: pd.DataFrame, table: dict[str, str], *,
                     skip: tuple[str, ...] = ()) -> tuple[pd.DataFrame, pd.Series]:
    """Canonical building columns from OSM tags (text; numbers are parsed by the caller).

    Parameters
    ----------
    gdf : DataFrame
        OSM buildings.
    table : dict
        Category labels → canonical categories (:func:`gis.validate.category_table`); OSM
        ``building=*`` values are matched exactly, and ``building=yes`` takes the category of
        the feature's ``amenity``/``office`` tag when the table knows it.
    skip : tuple of str
        Canonical columns the run file maps itself (left alone).

    Returns
    -------
    columns : DataFrame
        ``category`` (canonical, ``<NA>`` for building values the table lacks), ``floors``,
        ``height``, ``roof_type``, ``roof_azimuth``, ``roof_tilt``, ``year_built``, ``name``,
        ``id`` (OSM id), as far as the layer has them.
    building : Series
        The raw ``building=*`` value (for messages).
    """
    out = pd.DataFrame(index=gdf.index)
    building = tag(gdf, "building").str.strip().str.lower()
    if "category" not in skip:
        category = building.map(table)
        generic = building.isin(("yes", "building")) | category.isna()
        for key in ("amenity", "office", "government"):
            refined = tag(gdf, key).str.strip().str.lower().map(table)
            category = category.where(~(generic & refined.notna()), refined)
            generic = generic & refined.isna()
        out["category"] = category.astype("string")
    for canon, keys in BUILDING_TAGS.items():
        if canon in skip:
            continue
        value = pd.Series(pd.NA, index=gdf.index, dtype="string")
        for key in keys:
            value = value.fillna(tag(gdf, key))
        if value.notna().any():
            out[canon] = value
    if "roof_azimuth" in out:
        compass = out["roof_azimuth"].str.strip().str.upper().map(COMPASS)
        out["roof_azimuth"] = compass.astype("string").fillna(out["roof_azimuth"])
    if "id" not in skip:
        ids = osm_ids(gdf)
        if ids is not None and ids.notna().any():
            out["id"] = ids
    return out, building


__all__ = ["is_osm", "tag", "osm_ids", "is_building", "building_columns", "OSM_MARKERS",
           "BUILDING_TAGS", "COMPASS"]

"""Ecological-barrier accounting: blue-green share, forest coverage, stock and carbon per zone.

Method (DESIGN §6.3–6.4)
------------------------
* Parcels are intersected with every accounting unit at once: each zone feature, the union of
  each level's zones (dissolved first, so overlapping zones are not counted twice) and, when
  streets are given, each street's part of the zones' extent.
* ``area_ha`` of a unit is its **geometric** polygon area, also for the official-area figures:
  the share denominators are the same on both bases, only the numerators differ.
* Official areas (third survey): a parcel's ``TBDLMJ`` is shared between units in proportion to
  its clipped geometric area, and its deducted field-ridge area ``KCMJ`` (same proportion) is
  counted as code 1203 (田坎).  Parcels without an official area count geometrically.
* blue-green share = blue-green area ÷ unit area (broad or narrow definition, labelled);
  forest coverage = forest area ÷ unit area, other forest land (0307) reported apart as
  ``pipeline_forest_ha``.
* stock [m³] from a stands layer (``stock_m3_ha`` × clipped stand area, or ``stock_m3``
  pro-rated by area) or else per-class defaults × forest area (labelled as estimates);
  carbon [t C] = stock × BEF × (1 + R) × wood density × carbon fraction by species group
  (:data:`gis.landuse.CARBON_FACTORS`, sources cited there).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gis import io
from gis import targets as _targets
from gis._errors import InputError, Problem
from gis.config import ZONE_LEVELS as LEVELS
from gis.config import LayerSpec
from gis.landuse import (
    EcologyOptions,
    classify,
    classify_osm,
    flatten_overlaps,
    species_group,
)

#: Field-ridge code that KCMJ is counted as, by scheme.
RIDGE_CODE = {"gbt21010": "1203", "ydyh2023": "2303"}
#: Forest classes carrying no timber volume by default (bamboo, shrubland), by scheme.
_STOCK_CLASS = {
    "gbt21010": {"0302": "bamboo", "0305": "shrub"},
    "ydyh2023": {"0302": "bamboo", "0303": "shrub"},
}
_SALINE = frozenset({"1204", "1205", "2304", "2305"})

STOCK_STANDS = "stands layer"
STOCK_DEFAULTS = "per-class defaults (estimate)"

_FLAGS = ("blue", "green", "bluegreen", "bluegreen_broad", "bluegreen_narrow", "forest",
          "pipeline", "cropland", "construction")
_HA_COLUMNS = {"blue": "blue_ha", "green": "green_ha", "bluegreen": "bluegreen_ha",
               "bluegreen_broad": "bluegreen_broad_ha", "bluegreen_narrow": "bluegreen_narrow_ha",
               "forest": "forest_ha", "pipeline": "pipeline_forest_ha",
               "cropland": "cropland_ha", "construction": "construction_ha"}

CANDIDATE_COLUMNS = ["id", "code", "name_zh", "name_en", "zone", "area_ha", "area_ha_geometric",
                     "suitability", "tier", "rank", "cumulative_ha", "closes_gap", "target_id",
                     "geometry"]

#: Suitability tiers for afforestation, best first (DESIGN §6.4): planted other forest land
#: needs only time or infill; grass and bare land are free to plant; flats and saline land need
#: site work; construction land needs demolition first; cropland only when switched on.
TIERS = {
    1: "other forest land (planted, canopy not yet closed)",
    2: "grassland",
    3: "vacant or bare land",
    4: "inland flat / water margin",
    5: "saline-alkali or sandy land (needs soil improvement)",
    6: "construction land slated for removal",
    7: "cropland (switched on)",
}


# ---------------------------------------------------------------------------------------------
# Accounting units and the overlay
# ---------------------------------------------------------------------------------------------
def accounting_units(zones: gpd.GeoDataFrame, streets: gpd.GeoDataFrame | None = None
                     ) -> gpd.GeoDataFrame:
    """Every unit a figure is reported for: zone features, level unions, streets.

    Parameters
    ----------
    zones : GeoDataFrame
        Columns ``name``, ``level``.
    streets : GeoDataFrame, optional
        Column ``name``; each street is clipped to the union of all zones.

    Returns
    -------
    GeoDataFrame
        ``zone, level, kind`` (``zone | level | street``) and the unit geometry; level rows have
        ``zone`` = level name.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> zones = gpd.GeoDataFrame({"name": ["金钟河湿地片区", "林水涵养区"], "level": ["subzone", "subzone"]},
    ...                          geometry=[shapely.box(0, 0, 100, 100), shapely.box(50, 0, 150, 100)],
    ...                          crs="EPSG:4548")
    >>> units = accounting_units(zones)
    >>> units["kind"].tolist(), (units.area / 1e4).round(2).tolist()
    (['zone', 'zone', 'level'], [1.0, 1.0, 1.5])
    """
    _require(zones, ("name", "level"), "zones")
    if streets is not None and len(streets):
        _require(streets, ("name",), "streets")
    # the accounts, the candidates and the network of a run ask for the same units: the level
    # unions and street clips are made once per distinct input
    key = _units_key(zones, streets)
    if key not in _UNITS_CACHE:
        if len(_UNITS_CACHE) >= 4:
            _UNITS_CACHE.pop(next(iter(_UNITS_CACHE)))
        _UNITS_CACHE[key] = _accounting_units(zones, streets)
    return _UNITS_CACHE[key].copy()


_UNITS_CACHE: dict[str, gpd.GeoDataFrame] = {}


def _units_key(zones: gpd.GeoDataFrame, streets: gpd.GeoDataFrame | None) -> str:
    """A digest of everything :func:`accounting_units` reads."""
    h = hashlib.sha256()
    for frame, cols in ((zones, ("name", "level")), (streets, ("name",))):
        if frame is None or not len(frame):
            h.update(b"-")
            continue
        h.update(str(frame.crs).encode())
        for wkb in shapely.to_wkb(frame.geometry.to_numpy()):
            h.update(b"\0" if wkb is None else wkb)
        for col in cols:
            h.update("\x1f".join(map(str, frame[col].tolist())).encode())
            h.update(str(frame[col].dtype).encode())
    return h.hexdigest()


def _accounting_units(zones: gpd.GeoDataFrame, streets: gpd.GeoDataFrame | None
                      ) -> gpd.GeoDataFrame:
    geom = zones.geometry.to_numpy()
    feats = gpd.GeoDataFrame({"zone": zones["name"].astype("string").to_numpy(),
                              "level": zones["level"].astype("string").to_numpy(),
                              "kind": "zone"}, geometry=geom, crs=zones.crs)
    # Dissolve each level once: overlapping zones of a level are not double counted.
    by_level = (gpd.GeoDataFrame({"level": zones["level"].astype(str).to_numpy()},
                                 geometry=geom, crs=zones.crs)
                .dissolve("level").reset_index())
    order = {lv: i for i, lv in enumerate(LEVELS)}
    by_level = by_level.iloc[np.argsort(by_level["level"].map(order).fillna(99).to_numpy(),
                                        kind="stable")]
    levels = gpd.GeoDataFrame({"zone": by_level["level"].astype("string").to_numpy(),
                               "level": by_level["level"].astype("string").to_numpy(),
                               "kind": "level"}, geometry=by_level.geometry.to_numpy(),
                              crs=zones.crs)
    parts = [feats, levels]
    if streets is not None and len(streets):
        extent = shapely.union_all(geom)
        clipped = shapely.intersection(streets.geometry.to_numpy(), extent)
        st = gpd.GeoDataFrame({"zone": streets["name"].astype("string").to_numpy(),
                               "level": "street", "kind": "street"},
                              geometry=clipped, crs=zones.crs)
        parts.append(st[~st.geometry.is_empty])
    units = pd.concat(parts, ignore_index=True)
    for col in ("zone", "level", "kind"):
        units[col] = units[col].astype("string")
    return gpd.GeoDataFrame(units, geometry="geometry", crs=zones.crs)


def _require(gdf: pd.DataFrame, cols: tuple[str, ...], layer: str) -> None:
    missing = [c for c in cols if c not in gdf.columns]
    if missing:
        raise InputError([Problem("missing column", layer=layer, column=c,
                                  hint="map it in the run file's [layers.*.columns]")
                          for c in missing])


def _pairs(geoms: np.ndarray, units: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(feature index, unit index, clipped area [m²]) for every intersecting pair.

    One spatial-index query; features entirely inside a unit keep their own area and only the
    ones crossing a unit edge are intersected.
    """
    tree = shapely.STRtree(geoms)
    ui, fi = tree.query(units, predicate="intersects")
    area = shapely.area(geoms[fi])
    shapely.prepare(units)
    inside = shapely.covers(units[ui], geoms[fi])
    edge = ~inside
    if edge.any():
        area[edge] = shapely.area(shapely.intersection(geoms[fi[edge]], units[ui[edge]]))
    keep = area > 0
    return fi[keep], ui[keep], area[keep]


def _clip_pairs(geoms: np.ndarray, units: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Like :func:`_pairs` but also returns the clipped geometries."""
    tree = shapely.STRtree(geoms)
    ui, fi = tree.query(units, predicate="intersects")
    shapely.prepare(units)
    inside = shapely.covers(units[ui], geoms[fi])
    clipped = geoms[fi].copy()
    edge = ~inside
    if edge.any():
        clipped[edge] = shapely.intersection(geoms[fi[edge]], units[ui[edge]])
    area = shapely.area(clipped)
    keep = area > 0
    return fi[keep], ui[keep], area[keep], clipped[keep]


# ---------------------------------------------------------------------------------------------
# Zone accounts (vector)
# ---------------------------------------------------------------------------------------------
def _classified(landuse: gpd.GeoDataFrame, scheme: str | Path,
                options: EcologyOptions) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    layer = landuse
    if str(scheme) == "osm":
        layer = layer.copy()
        if "code" not in layer.columns:
            layer["code"] = classify_osm(layer)
    removal = layer["removal"] if "removal" in layer.columns else None
    flags = classify(layer["code"], scheme, options=options, removal=removal)
    if str(scheme) == "osm":
        # OSM polygons overlap (a park around a pond): flatten by class before summing.
        tmp = gpd.GeoDataFrame({"group": flags["group"].to_numpy(), "row": np.arange(len(layer))},
                               geometry=layer.geometry.to_numpy(), crs=layer.crs)
        flat = flatten_overlaps(tmp, column="group")
        rows = flat["row"].to_numpy()
        layer = layer.iloc[rows].set_geometry(flat.geometry.to_numpy())
        flags = flags.iloc[rows]
    return layer, flags


def flattened_landuse(landuse: gpd.GeoDataFrame, scheme: str | Path,
                      options: EcologyOptions | None = None) -> gpd.GeoDataFrame:
    """The land-use layer as the accounting sees it: OSM polygons made disjoint by class
    (with their picked ``code``); any other scheme unchanged.

    Candidate lists, parcel classes and maps built from this layer then agree with
    :func:`zone_accounts`, which flattens the same way.
    """
    if str(scheme) != "osm":
        return landuse
    layer, _ = _classified(landuse, scheme, options or EcologyOptions())
    return layer


def _official_areas(landuse: pd.DataFrame) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(TBDLMJ [m²], KCMJ [m²]) per parcel, or (None, None) without official areas."""
    if "area_official_m2" not in landuse.columns:
        return None, None
    tbdl = pd.to_numeric(landuse["area_official_m2"], errors="coerce").to_numpy(float)
    if "kcmj_m2" in landuse.columns:
        kc = pd.to_numeric(landuse["kcmj_m2"], errors="coerce").to_numpy(float)
    elif "tbmj_m2" in landuse.columns:
        kc = pd.to_numeric(landuse["tbmj_m2"], errors="coerce").to_numpy(float) - tbdl
    else:
        kc = np.zeros(len(landuse))
    kc = np.where(np.isfinite(kc) & (kc > 0), kc, 0.0)
    return tbdl, kc


def _ridge_flags(scheme: str | Path, options: EcologyOptions) -> pd.Series:
    code = RIDGE_CODE.get(str(scheme), "1203")
    flags = classify(pd.Series([code]), scheme, options=options).iloc[0]
    return flags


@io.gc_paused()
def zone_accounts(landuse: gpd.GeoDataFrame, zones: gpd.GeoDataFrame, *, scheme: str | Path,
                  options: EcologyOptions | None = None,
                  stands: gpd.GeoDataFrame | None = None,
                  streets: gpd.GeoDataFrame | None = None,
                  official: bool | None = None) -> gpd.GeoDataFrame:
    """Blue, green, blue-green, forest, pipeline forest, stock and carbon per zone, level, street.

    Parameters
    ----------
    landuse : GeoDataFrame
        Parcels in a metric CRS: ``code``; optional ``id``, ``area_official_m2`` (TBDLMJ [m²]),
        ``kcmj_m2`` / ``tbmj_m2`` [m²], ``removal``.  OSM layers: tag columns instead of ``code``.
    zones : GeoDataFrame
        ``name``, ``level`` polygons, same CRS.
    scheme : str or Path
        Code scheme of ``landuse`` (see :func:`gis.landuse.load_code_table`).
    options : EcologyOptions, optional
        Definitions and factors.
    stands : GeoDataFrame, optional
        Forest stands: ``species`` and ``stock_m3_ha`` [m³/ha] or ``stock_m3`` [m³].
    streets : GeoDataFrame, optional
        ``name`` polygons: one row per street (its part inside the zones), ``level`` "street".
    official : bool, optional
        Report official-area twins (``*_official``).  Default: when ``area_official_m2`` exists.

    Returns
    -------
    GeoDataFrame
        One row per zone feature, per level (``zone`` = level name) and per street, with
        ``zone, level, kind, area_ha`` (geometric unit area), ``blue_ha, green_ha,
        bluegreen_ha, bluegreen_share, bluegreen_broad_ha, bluegreen_narrow_ha, forest_ha,
        forest_coverage, pipeline_forest_ha, cropland_ha, construction_ha, unknown_ha,
        stock_m3, stock_basis, carbon_t``, the ``*_official`` twins and ``ridge_ha_official``
        (KCMJ counted as 1203) when official areas are used, ``bluegreen_definition``, ``basis``
        and the unit geometry.  Shares are fractions 0–1.

    Examples
    --------
    A 100 m × 100 m first-level zone (1 ha), half arbor forest (0301), half paddy field (0101):

    >>> import geopandas as gpd, shapely
    >>> zones = gpd.GeoDataFrame({"name": ["一级管控区"], "level": ["level1"]},
    ...                          geometry=[shapely.box(0, 0, 100, 100)], crs="EPSG:4548")
    >>> parcels = gpd.GeoDataFrame({"id": ["a", "b"], "code": ["0301", "0101"]},
    ...                            geometry=[shapely.box(0, 0, 50, 100), shapely.box(50, 0, 100, 100)],
    ...                            crs="EPSG:4548")
    >>> table = zone_accounts(parcels, zones, scheme="gbt21010")
    >>> table[["zone", "kind", "area_ha", "bluegreen_share", "forest_coverage", "stock_m3"]]
         zone   kind  area_ha  bluegreen_share  forest_coverage  stock_m3
    0   一级管控区   zone      1.0              1.0              0.5     29.65
    1  level1  level      1.0              1.0              0.5     29.65

    The stock is the default 59.30 m³/ha of arbor forest × 0.5 ha.  With the narrow definition the
    paddy field is not blue-green; with third-survey official areas (TBDLMJ) the targets use those:

    >>> from gis.landuse import ecology_options
    >>> narrow = zone_accounts(parcels, zones, scheme="gbt21010",
    ...                        options=ecology_options(bluegreen="narrow"))
    >>> float(narrow.loc[0, "bluegreen_share"])
    0.5
    >>> parcels["area_official_m2"] = [4800.0, 5000.0]
    >>> official = zone_accounts(parcels, zones, scheme="gbt21010")
    >>> official.loc[0, ["forest_ha", "forest_ha_official", "forest_coverage_official"]].tolist()
    [0.5, 0.48, 0.48]
    """
    options = options or EcologyOptions()
    _require(landuse, () if str(scheme) == "osm" else ("code",), "landuse")
    layer, flags = _classified(landuse, scheme, options)
    units = accounting_units(zones, streets)
    ugeom = units.geometry.to_numpy()
    pgeom = layer.geometry.to_numpy()
    fi, ui, area = _pairs(pgeom, ugeom)
    n = len(units)

    def per_unit(weights: np.ndarray) -> np.ndarray:
        return np.bincount(ui, weights=weights, minlength=n) / 1e4

    out = pd.DataFrame({"zone": units["zone"], "level": units["level"], "kind": units["kind"]})
    out["area_ha"] = shapely.area(ugeom) / 1e4
    fl = {c: flags[c].to_numpy(bool)[fi] for c in _FLAGS}
    for flag, col in _HA_COLUMNS.items():
        out[col] = per_unit(area * fl[flag])
    out["unknown_ha"] = per_unit(area * ~flags["known"].to_numpy(bool)[fi])
    with np.errstate(invalid="ignore", divide="ignore"):
        out["bluegreen_share"] = out["bluegreen_ha"] / out["area_ha"]
        out["forest_coverage"] = out["forest_ha"] / out["area_ha"]

    # Stock and carbon.
    if stands is not None and len(stands):
        stock, carbon = _stand_stock(stands, ugeom, options)
        out["stock_m3"], out["carbon_t"] = stock, carbon
        out["stock_basis"] = STOCK_STANDS
    else:
        m3_ha = _default_m3_ha(flags, scheme, options)
        stock = per_unit(area * fl["forest"] * m3_ha[fi])
        out["stock_m3"] = stock
        out["carbon_t"] = stock * _carbon_per_m3(options.default_species_group, options)
        out["stock_basis"] = STOCK_DEFAULTS

    # Official areas: TBDLMJ pro-rated by clipped share, KCMJ pro-rated and counted as 1203.
    tbdl, kc = _official_areas(layer)
    use_official = (tbdl is not None) if official is None else bool(official)
    if use_official and tbdl is None:
        raise InputError(Problem("official areas asked for, but the land-use layer has none",
                                 layer="landuse", column="area",
                                 hint="map the TBDLMJ column as [layers.landuse.columns] area"))
    if use_official:
        frac = area / shapely.area(pgeom[fi])
        off = np.where(np.isfinite(tbdl[fi]), tbdl[fi] * frac, area)
        # KCMJ is added only where TBDLMJ (net of it) is used: a parcel counted by its drawn
        # area already holds its ridges
        ridge = np.where(np.isfinite(tbdl[fi]), np.nan_to_num(kc[fi]) * frac, 0.0)
        rflags = _ridge_flags(scheme, options)
        for flag, col in _HA_COLUMNS.items():
            out[f"{col}_official"] = (per_unit(off * fl[flag])
                                      + per_unit(ridge) * bool(rflags[flag]))
        out["ridge_ha_official"] = per_unit(ridge)
        with np.errstate(invalid="ignore", divide="ignore"):
            out["bluegreen_share_official"] = out["bluegreen_ha_official"] / out["area_ha"]
            out["forest_coverage_official"] = out["forest_ha_official"] / out["area_ha"]
        n_geo = int((~np.isfinite(tbdl)).sum())
        area_basis = ("official areas (TBDLMJ pro-rated on split parcels, KCMJ as 1203 field "
                      "ridges) and geometric areas; unit area geometric")
        if n_geo:
            area_basis += f"; {n_geo} parcels without TBDLMJ counted geometrically"
    else:
        area_basis = "geometric areas"
    out["bluegreen_definition"] = options.bluegreen
    out["basis"] = f"{options.bluegreen_label}; {area_basis}; stock: {out['stock_basis'].iat[0]}" \
        if n else ""
    out = out.reset_index(drop=True)
    return gpd.GeoDataFrame(out, geometry=ugeom, crs=zones.crs)


def _default_m3_ha(flags: pd.DataFrame, scheme: str | Path,
                   options: EcologyOptions) -> np.ndarray:
    """Default growing stock [m³/ha] of each row's forest class (arbor unless bamboo/shrub)."""
    classes = pd.Series(_STOCK_CLASS.get(str(scheme), {}), dtype=object)
    klass = classes.reindex(flags["class_code"].astype(object).to_numpy()).fillna("arbor")
    per = pd.Series(options.default_stock_m3_ha, dtype=float)
    return per.reindex(klass.to_numpy()).fillna(0.0).to_numpy(float)


def _carbon_per_m3(group: str | pd.Series, options: EcologyOptions) -> float | np.ndarray:
    """t C per m³ of stem volume: BEF × (1 + R) × wood density × carbon fraction."""
    table = pd.DataFrame(options.carbon_factors).T
    per = (table["bef"] * (1 + table["root_shoot"]) * table["wood_density_t_m3"]
           * table["carbon_fraction"])
    default = float(per[options.default_species_group])
    if isinstance(group, str):
        return float(per.get(group, default))
    return group.map(per).fillna(default).to_numpy(float)


def _stand_stock(stands: gpd.GeoDataFrame, ugeom: np.ndarray,
                 options: EcologyOptions) -> tuple[np.ndarray, np.ndarray]:
    """Stock [m³] and carbon [t C] per unit from a stands layer."""
    if "stock_m3_ha" not in stands.columns and "stock_m3" not in stands.columns:
        raise InputError(Problem("forest stands need stock_m3_ha [m³/ha] or stock_m3 [m³]",
                                 layer="forest", column="stock_m3_ha",
                                 hint="map one of them in [layers.forest.columns]"))
    sgeom = stands.geometry.to_numpy()
    fi, ui, area = _pairs(sgeom, ugeom)
    per_ha = (pd.to_numeric(stands["stock_m3_ha"], errors="coerce").to_numpy(float)
              if "stock_m3_ha" in stands.columns else np.full(len(stands), np.nan))
    total = (pd.to_numeric(stands["stock_m3"], errors="coerce").to_numpy(float)
             if "stock_m3" in stands.columns else np.full(len(stands), np.nan))
    frac = area / shapely.area(sgeom[fi])
    stock = np.where(np.isfinite(per_ha[fi]), per_ha[fi] * area / 1e4, total[fi] * frac)
    stock = np.nan_to_num(stock)
    species = stands["species"] if "species" in stands.columns else pd.Series(
        pd.NA, index=stands.index, dtype="string")
    groups = species_group(species, default=options.default_species_group)
    c_m3 = _carbon_per_m3(groups, options)
    n = len(ugeom)
    return (np.bincount(ui, weights=stock, minlength=n),
            np.bincount(ui, weights=stock * c_m3[fi], minlength=n))


# ---------------------------------------------------------------------------------------------
# Raster land cover
# ---------------------------------------------------------------------------------------------
def landcover_accounts(raster_path: str | Path | LayerSpec, zones: gpd.GeoDataFrame, *,
                       scheme: str | Path = "worldcover",
                       options: EcologyOptions | None = None,
                       streets: gpd.GeoDataFrame | None = None) -> pd.DataFrame:
    """Zone accounts from a land-cover raster with exact partial-pixel fractions.

    exactextract's ``unique`` and ``frac`` operations give, per unit, each class's share of the
    covered area with every pixel weighted by the fraction of it inside the polygon; ``count``
    (coverage-weighted pixels) × pixel area ÷ polygon area, both in the raster's CRS, gives the
    covered share of the unit.  Class area = class share × covered share × unit area (working
    CRS); ``nodata_ha`` is the part of the unit the raster does not cover.

    Parameters
    ----------
    raster_path : str or Path
        GeoTIFF of class codes (any CRS; units are reprojected to it).
    zones, streets : GeoDataFrame
        As for :func:`zone_accounts`, in a metric CRS.
    scheme : str or Path
        Code scheme of the raster values (default ESA WorldCover).
    options : EcologyOptions, optional

    Returns
    -------
    pandas.DataFrame
        ``zone, level, kind, area_ha`` and the area/share/stock columns of
        :func:`zone_accounts` (no official twins; ``pipeline_forest_ha`` is 0 for land-cover
        classes), plus ``nodata_ha``.  Forest is the scheme's forest (proxy) class.

    Examples
    --------
    A 10 × 10 ESA WorldCover raster of 10 m pixels: the west half tree cover (10), the east half
    cropland (40):

    >>> import pathlib, tempfile
    >>> import geopandas as gpd, numpy as np, rasterio, shapely
    >>> from rasterio.transform import from_origin
    >>> tif = pathlib.Path(tempfile.mkdtemp()) / "worldcover.tif"
    >>> classes = np.where(np.arange(10) < 5, 10, 40).astype("uint8")[None, :].repeat(10, axis=0)
    >>> with rasterio.open(tif, "w", driver="GTiff", width=10, height=10, count=1, dtype="uint8",
    ...                    crs="EPSG:4548", transform=from_origin(534000, 4331100, 10, 10),
    ...                    nodata=0) as dst:
    ...     dst.write(classes, 1)
    >>> zones = gpd.GeoDataFrame({"name": ["z"], "level": ["level1"]},
    ...                          geometry=[shapely.box(534000, 4331000, 534100, 4331100)],
    ...                          crs="EPSG:4548")
    >>> table = landcover_accounts(tif, zones)
    >>> table[["zone", "area_ha", "forest_ha", "cropland_ha", "bluegreen_share", "nodata_ha"]]
         zone  area_ha  forest_ha  cropland_ha  bluegreen_share  nodata_ha
    0       z      1.0        0.5          0.5              1.0        0.0
    1  level1      1.0        0.5          0.5              1.0        0.0
    """
    import rasterio
    from exactextract import exact_extract
    from exactextract.raster import RasterioRasterSource

    from gis.io import raster_ref

    options = options or EcologyOptions()
    units = accounting_units(zones, streets)
    raster_path, band_idx, declared_crs = raster_ref(raster_path)
    with rasterio.open(raster_path) as src:
        crs = src.crs or declared_crs
        px_area = abs(src.transform.a * src.transform.e - src.transform.b * src.transform.d)
    area_m2 = shapely.area(units.geometry.to_numpy())
    vec = units[["geometry"]].copy()
    vec["unit"] = np.arange(len(units))
    if crs is not None and units.crs is not None:
        vec = vec.to_crs(crs)
    with rasterio.open(raster_path) as src:
        res = exact_extract(RasterioRasterSource(src, band_idx=band_idx), vec,
                            ["unique", "frac", "count"], include_cols=["unit"], output="pandas")
    res = res.set_index("unit").reindex(np.arange(len(units)))
    # Covered share measured in the raster's own CRS (pixels vs the reprojected polygon), then
    # applied to the unit's area in the working CRS: a raster in another projection (UTM's
    # 0.9996 scale, or degrees) does not distort the areas.
    with np.errstate(invalid="ignore", divide="ignore"):
        covered_share = np.clip(res["count"].fillna(0).to_numpy(float) * px_area
                                / shapely.area(vec.geometry.to_numpy()), 0.0, 1.0)
    covered = np.nan_to_num(covered_share) * area_m2
    long = pd.DataFrame({"unit": res.index.to_numpy(),
                         "code": res["unique"].to_numpy(), "frac": res["frac"].to_numpy()})
    long = long.explode(["code", "frac"]).dropna(subset=["code"])
    n = len(units)
    out = pd.DataFrame({"zone": units["zone"], "level": units["level"], "kind": units["kind"]})
    out["area_ha"] = area_m2 / 1e4
    if len(long):
        flags = classify(pd.Series(long["code"].to_numpy(), dtype=object), scheme,
                         options=options)
        ui = long["unit"].to_numpy(int)
        a = long["frac"].to_numpy(float) * covered[ui]
        fl = {c: flags[c].to_numpy(bool) for c in (*_FLAGS, "known")}
        m3_ha = _default_m3_ha(flags, scheme, options)
    else:
        ui = np.zeros(0, int)
        a = np.zeros(0)
        fl = {c: np.zeros(0, bool) for c in (*_FLAGS, "known")}
        m3_ha = np.zeros(0)

    def per_unit(weights: np.ndarray) -> np.ndarray:
        return np.bincount(ui, weights=weights, minlength=n) / 1e4

    for flag, col in _HA_COLUMNS.items():
        out[col] = per_unit(a * fl[flag])
    out["unknown_ha"] = per_unit(a * ~fl["known"])
    out["nodata_ha"] = np.maximum(0.0, area_m2 - covered) / 1e4
    with np.errstate(invalid="ignore", divide="ignore"):
        out["bluegreen_share"] = out["bluegreen_ha"] / out["area_ha"]
        out["forest_coverage"] = out["forest_ha"] / out["area_ha"]
    out["stock_m3"] = per_unit(a * fl["forest"] * m3_ha)
    out["stock_basis"] = STOCK_DEFAULTS
    out["carbon_t"] = out["stock_m3"] * _carbon_per_m3(options.default_species_group, options)
    out["bluegreen_definition"] = options.bluegreen
    out["basis"] = (f"{options.bluegreen_label}; land-cover raster {Path(raster_path).name} "
                    f"({scheme}), exact partial-pixel fractions; forest = land-cover proxy; "
                    f"stock: {STOCK_DEFAULTS}")
    return out.reset_index(drop=True)


def compare_sources(vector_table: pd.DataFrame, raster_table: pd.DataFrame) -> pd.DataFrame:
    """Per-unit differences between the survey (vector) and land-cover (raster) accounts.

    Returns
    -------
    pandas.DataFrame
        ``zone, level, kind, area_ha`` and, for ``bluegreen_share, forest_coverage, blue_share,
        green_share``: ``<m>_vector``, ``<m>_raster`` (fractions) and ``<m>_diff_pp``
        (raster − vector, percentage points).

    Examples
    --------
    >>> import pandas as pd
    >>> survey = pd.DataFrame({"zone": ["level1"], "level": ["level1"], "area_ha": [100.0],
    ...                        "bluegreen_ha": [80.0], "forest_ha": [24.0], "blue_ha": [20.0],
    ...                        "green_ha": [60.0]})
    >>> cover = survey.assign(bluegreen_ha=77.0, forest_ha=30.0)
    >>> diff = compare_sources(survey, cover).iloc[0]
    >>> round(float(diff["forest_coverage_diff_pp"]), 2), round(float(diff["bluegreen_share_diff_pp"]), 2)
    (6.0, -3.0)
    """
    keys = ["zone", "level", "kind"] if "kind" in vector_table and "kind" in raster_table \
        else ["zone", "level"]

    def shares(t: pd.DataFrame) -> pd.DataFrame:
        s = pd.DataFrame(t[keys + ["area_ha"]])
        s["bluegreen_share"] = t["bluegreen_ha"] / t["area_ha"]
        s["forest_coverage"] = t["forest_ha"] / t["area_ha"]
        s["blue_share"] = t["blue_ha"] / t["area_ha"]
        s["green_share"] = t["green_ha"] / t["area_ha"]
        return s

    merged = shares(vector_table).merge(shares(raster_table).drop(columns="area_ha"),
                                        on=keys, suffixes=("_vector", "_raster"))
    for m in ("bluegreen_share", "forest_coverage", "blue_share", "green_share"):
        merged[f"{m}_diff_pp"] = (merged[f"{m}_raster"] - merged[f"{m}_vector"]) * 100
    return merged


# ---------------------------------------------------------------------------------------------
# Candidates
# ---------------------------------------------------------------------------------------------
def _where_geometry(zones: gpd.GeoDataFrame, where: str) -> shapely.Geometry:
    sel = zones["level"].astype(str) == where
    if not sel.any():
        sel = zones["name"].astype(str) == where
    if not sel.any():
        raise InputError(Problem("no zone of this level or name", layer="zones", value=where,
                                 hint=f"levels present: {sorted(set(zones['level'].astype(str)))}"))
    return shapely.union_all(zones.geometry.to_numpy()[sel.to_numpy()])


def _ranked(landuse_classified: gpd.GeoDataFrame, zones: gpd.GeoDataFrame, where: str,
            mask: np.ndarray, gap_ha: float, target_id: str) -> gpd.GeoDataFrame:
    layer = landuse_classified
    area_geom = _where_geometry(zones, where)
    sub = np.flatnonzero(mask)
    pgeom = layer.geometry.to_numpy()[sub]
    fi, _, area, clipped = _clip_pairs(pgeom, np.array([area_geom], dtype=object))
    rows = sub[fi]
    part = layer.iloc[rows]
    frac = area / shapely.area(pgeom[fi])
    area_ha = area / 1e4
    if "area_official_m2" in part.columns:
        off = pd.to_numeric(part["area_official_m2"], errors="coerce").to_numpy(float)
        area_ha = np.where(np.isfinite(off), off * frac / 1e4, area_ha)
    code = part["class_code"].astype("string").fillna(part["code"].astype("string"))
    tier = np.select(
        [part["pipeline"].to_numpy(bool), part["cropland"].to_numpy(bool),
         (part["removable"] & part["removal"]).to_numpy(bool),
         code.isin(_SALINE).to_numpy(bool), part["blue"].to_numpy(bool),
         part["green"].to_numpy(bool)],
        [1, 7, 6, 5, 4, 2], default=3)
    ids = (part["id"].astype("string").to_numpy() if "id" in part.columns
           else part.index.astype(str).to_numpy())
    out = pd.DataFrame({
        "id": ids, "code": part["code"].astype("string").to_numpy(),
        "name_zh": part["name_zh"].to_numpy(), "name_en": part["name_en"].to_numpy(),
        "zone": where, "area_ha": area_ha, "area_ha_geometric": area / 1e4,
        "suitability": pd.Series(tier).map(TIERS).to_numpy(), "tier": tier,
    })
    out["geometry"] = clipped
    out = out.sort_values(["tier", "area_ha", "id"], ascending=[True, False, True],
                          kind="stable").reset_index(drop=True)
    out["rank"] = np.arange(1, len(out) + 1)
    out["cumulative_ha"] = out["area_ha"].cumsum()
    gap = max(0.0, float(gap_ha))
    out["closes_gap"] = (out["cumulative_ha"] - out["area_ha"] < gap) & (gap > 0)
    out["target_id"] = target_id
    gdf = gpd.GeoDataFrame(out[CANDIDATE_COLUMNS], geometry="geometry", crs=layer.crs)
    total = float(out["area_ha"].sum())
    gdf.attrs.update({"gap_ha": gap, "candidates_ha": total,
                      "gap_closed_share": min(1.0, total / gap) if gap > 0 else 1.0,
                      "remaining_gap_ha": max(0.0, gap - total)})
    return gdf


def _check_classified(layer: pd.DataFrame) -> None:
    need = ("code", "class_code", "candidate", "pipeline", "cropland", "removable", "removal",
            "forest", "blue", "green", "bluegreen", "name_zh", "name_en")
    missing = [c for c in need if c not in layer.columns]
    if missing:
        raise InputError(Problem(
            "land-use layer is not classified", layer="landuse", value=missing,
            hint="pass the layer through gis.landuse.classify_layer(landuse, scheme) first"))


def afforestation_candidates(landuse_classified: gpd.GeoDataFrame, zones: gpd.GeoDataFrame, *,
                             level: str = "level1", gap_ha: float,
                             options: EcologyOptions | None = None,
                             target_id: str = "") -> gpd.GeoDataFrame:
    """Parcels inside a level (or named zone) that could be afforested, best first.

    Candidates are the code table's afforestation candidates (other forest land, grass, vacant
    and bare land, inland flats, saline land), construction land slated for removal (when
    ``include_removal_candidates``) and — only when ``include_cropland_candidates`` — cropland.
    Ranked by suitability tier (:data:`TIERS`) then size.

    Parameters
    ----------
    landuse_classified : GeoDataFrame
        Output of :func:`gis.landuse.classify_layer`.
    zones : GeoDataFrame
        ``name``, ``level``.
    level : str
        Level (union of its zones) or zone name the parcels are clipped to.
    gap_ha : float
        The forest gap [ha] the list should close.
    options : EcologyOptions, optional
    target_id : str
        Written to every row.

    Returns
    -------
    GeoDataFrame
        :data:`CANDIDATE_COLUMNS`; ``area_ha`` is official (pro-rated TBDLMJ) when the layer has
        ``area_official_m2``, else geometric; ``closes_gap`` marks the shortest prefix of the
        ranking that closes the gap.  ``attrs`` hold ``candidates_ha``, ``gap_closed_share`` and
        ``remaining_gap_ha``.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> from gis.landuse import classify_layer
    >>> zones = gpd.GeoDataFrame({"name": ["一级管控区"], "level": ["level1"]},
    ...                          geometry=[shapely.box(0, 0, 300, 100)], crs="EPSG:4548")
    >>> parcels = gpd.GeoDataFrame(
    ...     {"id": ["grass", "crop", "young"], "code": ["0404", "0102", "0307"]},
    ...     geometry=[shapely.box(0, 0, 100, 100), shapely.box(100, 0, 200, 100),
    ...               shapely.box(200, 0, 300, 50)], crs="EPSG:4548")
    >>> cands = afforestation_candidates(classify_layer(parcels, "gbt21010"), zones, gap_ha=0.6)
    >>> cands[["id", "tier", "area_ha", "cumulative_ha", "closes_gap"]]
          id  tier  area_ha  cumulative_ha  closes_gap
    0  young     1      0.5            0.5        True
    1  grass     2      1.0            1.5        True
    >>> cands.attrs["gap_closed_share"]
    1.0

    Cropland is left out unless ``include_cropland_candidates`` is switched on.
    """
    lc = landuse_classified
    mask = _candidate_mask(lc, options) & ~lc["forest"].to_numpy(bool)
    return _ranked(lc, zones, level, mask, gap_ha, target_id)


def bluegreen_candidates(landuse_classified: gpd.GeoDataFrame, zones: gpd.GeoDataFrame, *,
                         level: str = "level1", gap_ha: float,
                         options: EcologyOptions | None = None,
                         target_id: str = "") -> gpd.GeoDataFrame:
    """Parcels that are not blue-green today and could become so: construction land slated for
    removal, vacant, bare, saline land (cropland only when switched on).

    Same columns and ranking as :func:`afforestation_candidates`.
    """
    lc = landuse_classified
    mask = _candidate_mask(lc, options) & ~lc["bluegreen"].to_numpy(bool)
    return _ranked(lc, zones, level, mask, gap_ha, target_id)


def _candidate_mask(lc: gpd.GeoDataFrame, options: EcologyOptions | None) -> np.ndarray:
    """Parcels that may change class: candidate codes, removal land and (switched) cropland."""
    options = options or EcologyOptions()
    _check_classified(lc)
    crop = lc["cropland"].to_numpy(bool)
    removal = (lc["removable"] & lc["removal"]).to_numpy(bool)
    mask = lc["candidate"].to_numpy(bool) & ~crop & ~removal
    mask |= removal & options.include_removal_candidates
    mask |= crop & options.include_cropland_candidates
    return mask


def _empty_candidates(crs) -> gpd.GeoDataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in CANDIDATE_COLUMNS})
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=crs)


#: Columns the ecological network (:mod:`gis.network`) adds to the afforestation list.
CONNECTIVITY_COLUMNS = ["connectivity_gain", "bridges", "rank_connectivity"]
RANK_BY = ("suitability", "connectivity")


def with_connectivity(candidates: gpd.GeoDataFrame, gain: np.ndarray, bridges: np.ndarray, *,
                      rank_by: str = "suitability",
                      gaps_ha: dict[str, float] | None = None) -> gpd.GeoDataFrame:
    """The candidate list with ``connectivity_gain`` [%], ``bridges`` and ``rank_connectivity``.

    ``rank_connectivity`` ranks each target's list by connectivity gain (largest first; the
    suitability ``rank`` breaks ties; no gain last).  With ``rank_by = "connectivity"`` the list
    is ordered that way: ``rank``, ``cumulative_ha`` and ``closes_gap`` follow the new order
    (the gap of each target from ``gaps_ha``); the suitability order is the default.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> cands = gpd.GeoDataFrame({"id": ["big", "joint"], "area_ha": [3.0, 0.5], "rank": [1, 2],
    ...     "cumulative_ha": [3.0, 3.5], "closes_gap": [True, False], "target_id": "t"},
    ...     geometry=[shapely.box(0, 0, 1, 1)] * 2, crs="EPSG:4548")
    >>> out = with_connectivity(cands, np.array([1.0, 40.0]), np.array([False, True]),
    ...                         rank_by="connectivity", gaps_ha={"t": 0.4})
    >>> out[["id", "rank", "rank_connectivity", "cumulative_ha", "closes_gap", "bridges"]]
          id  rank  rank_connectivity  cumulative_ha  closes_gap  bridges
    0  joint     1                  1            0.5        True     True
    1    big     2                  2            3.5       False    False
    """
    if rank_by not in RANK_BY:
        raise ValueError(f"rank_by must be one of {RANK_BY}, not {rank_by!r}")
    out = candidates.copy()
    out["connectivity_gain"] = np.asarray(gain, float)
    out["bridges"] = np.asarray(bridges, bool)
    if not len(out):
        out["rank_connectivity"] = pd.Series(dtype="int64")
        return out
    target = out["target_id"].astype(str)
    pos = target.map({t: i for i, t in enumerate(pd.unique(target))}).to_numpy()
    key = pd.DataFrame({"pos": pos, "g": -out["connectivity_gain"].fillna(-np.inf).to_numpy(),
                        "rank": pd.to_numeric(out["rank"]).to_numpy()})
    order = key.sort_values(["pos", "g", "rank"], kind="stable").index.to_numpy()
    rc = np.empty(len(out), dtype=np.int64)
    rc[order] = key.iloc[order].groupby("pos").cumcount().to_numpy() + 1
    out["rank_connectivity"] = rc
    if rank_by == "connectivity":
        out = out.iloc[order].reset_index(drop=True)
        out["rank"] = out["rank_connectivity"]
        out["cumulative_ha"] = out.groupby(out["target_id"].astype(str))["area_ha"].cumsum()
        gap = out["target_id"].astype(str).map(gaps_ha or {}).astype(float).fillna(0.0)
        out["closes_gap"] = ((out["cumulative_ha"] - out["area_ha"] < gap) & (gap > 0)
                             ).to_numpy(bool)
    cols = [c for c in out.columns if c != "geometry"] + ["geometry"]
    return gpd.GeoDataFrame(out[cols], geometry="geometry", crs=candidates.crs)


# ---------------------------------------------------------------------------------------------
# Targets
# ---------------------------------------------------------------------------------------------
def _measure(spec: dict) -> str | None:
    text = f"{spec.get('id', '')} {spec.get('measure', '')}".lower()
    if "blue-green" in text or "bluegreen" in text:
        return "bluegreen"
    if "forest coverage" in text or spec.get("id", "").startswith("forest-"):
        return "forest"
    if "stock" in text:
        return "stock"
    return None


def _unit_row(table: pd.DataFrame, where: str) -> pd.Series | None:
    kind = table["kind"].astype(str) if "kind" in table else pd.Series("level", index=table.index)
    zone = table["zone"].astype(str)
    for sel in ((kind == "level") & (zone == where), (kind == "zone") & (zone == where),
                zone == where):
        if sel.any():
            return table[sel.to_numpy()].iloc[0]
    return None


def ecology_targets(zones_table: pd.DataFrame, targets: dict, *,
                    landuse_classified: gpd.GeoDataFrame | None = None,
                    zones: gpd.GeoDataFrame | None = None,
                    options: EcologyOptions | None = None) -> tuple[list[dict], dict]:
    """Scorecard entries of the ecology targets, with candidate parcels that close the gaps.

    Handles every target whose measure is a blue-green share, a forest coverage or a forest
    stock; ``where`` names a level (the union of its zones) or a zone.  Official areas are used
    when the table has them, geometric ones otherwise.  Gap [ha] = max(0, target × zone area −
    current); stock gap in m³.

    Parameters
    ----------
    zones_table : DataFrame
        Output of :func:`zone_accounts` or :func:`landcover_accounts`.
    targets : dict
        As loaded by :func:`gis.targets.load_targets`.
    landuse_classified : GeoDataFrame, optional
        Output of :func:`gis.landuse.classify_layer`; with ``zones`` it yields candidate lists.
    zones : GeoDataFrame, optional
    options : EcologyOptions, optional

    Returns
    -------
    (list of dict, dict)
        Entries made by :func:`gis.targets.entry` (extras: ``details``, ``candidates_ha``,
        ``candidates_count``, ``gap_closed_share``, ``remaining_gap_ha``) and
        ``{"afforestation": GeoDataFrame, "bluegreen_candidates": GeoDataFrame}`` of ranked
        candidate parcels (``target_id`` says which target each row serves).

    Examples
    --------
    Forest coverage of 50 % against a target of 60 %: 0.1 ha short in a 1 ha zone, closed by the
    grassland parcel next to the forest.

    >>> import geopandas as gpd, shapely
    >>> from gis.landuse import classify_layer
    >>> zones = gpd.GeoDataFrame({"name": ["一级管控区"], "level": ["level1"]},
    ...                          geometry=[shapely.box(0, 0, 100, 100)], crs="EPSG:4548")
    >>> parcels = gpd.GeoDataFrame({"id": ["a", "b"], "code": ["0301", "0404"]},
    ...                            geometry=[shapely.box(0, 0, 50, 100), shapely.box(50, 0, 100, 100)],
    ...                            crs="EPSG:4548")
    >>> table = zone_accounts(parcels, zones, scheme="gbt21010")
    >>> targets = {"targets": {"forest-level1": {
    ...     "id": "forest-level1", "measure": "forest coverage", "where": "level1",
    ...     "target": 0.6, "unit": "share"}}}
    >>> entries, lists = ecology_targets(table, targets, zones=zones,
    ...                                  landuse_classified=classify_layer(parcels, "gbt21010"))
    >>> e = entries[0]
    >>> e["value"], e["met"], round(e["gap"], 3), e["gap_unit"], e["gap_closed_share"]
    (0.5, False, 0.1, 'ha', 1.0)
    >>> lists["afforestation"][["id", "code", "area_ha", "rank", "closes_gap"]]
      id  code  area_ha  rank  closes_gap
    0  b  0404      0.5     1        True
    """
    options = options or EcologyOptions()
    entries: list[dict] = []
    aff: list[gpd.GeoDataFrame] = []
    bgc: list[gpd.GeoDataFrame] = []
    can_list = landuse_classified is not None and zones is not None
    for tid, spec in targets.get("targets", {}).items():
        measure = _measure(spec)
        if measure is None:
            continue
        row = _unit_row(zones_table, str(spec["where"]))
        if row is None:
            continue
        target = float(spec["target"])
        area_ha = float(row["area_ha"])
        official = f"{'bluegreen_ha' if measure == 'bluegreen' else 'forest_ha'}_official"
        use_off = official in row.index and pd.notna(row[official]) and measure != "stock"
        area_basis = "official areas (TBDLMJ)" if use_off else "geometric areas"
        details = {"area_ha": area_ha, "level": row["level"], "zone": row["zone"]}
        if measure == "stock":
            value = float(row["stock_m3"])
            gap = max(0.0, target - value)
            arbor = options.default_stock_m3_ha.get("arbor", 0.0)
            details.update({"stock_basis": row.get("stock_basis", ""),
                            "carbon_t": float(row.get("carbon_t", np.nan)),
                            "arbor_default_m3_ha": arbor,
                            "area_equivalent_ha": gap / arbor if arbor > 0 else None})
            entries.append(_targets.entry(spec, value=value, gap=gap, gap_unit="m3",
                                          basis=f"stock: {row.get('stock_basis', '')}",
                                          details=details))
            continue
        col = "bluegreen_ha" if measure == "bluegreen" else "forest_ha"
        current = float(row[official] if use_off else row[col])
        value = current / area_ha if area_ha > 0 else 0.0
        gap = max(0.0, target * area_ha - current)
        details.update({"current_ha": current,
                        "value_geometric": float(row[col]) / area_ha if area_ha > 0 else None,
                        "value_official": (float(row[official]) / area_ha
                                           if use_off and area_ha > 0 else None)})
        if measure == "bluegreen":
            basis = f"{options.bluegreen_label}; {area_basis}"
            details["definition"] = options.bluegreen
        else:
            basis = ("forest coverage: arbor, bamboo, mangrove/forest swamp (0307 other forest "
                     f"land excluded, reported as pipeline); {area_basis}")
            details["pipeline_forest_ha"] = float(row.get("pipeline_forest_ha", np.nan))
        extra: dict = {}
        if can_list and gap > 0:
            func = afforestation_candidates if measure == "forest" else bluegreen_candidates
            cands = func(landuse_classified, zones, level=str(spec["where"]), gap_ha=gap,
                         options=options, target_id=tid)
            (aff if measure == "forest" else bgc).append(cands)
            extra = {"candidates_ha": cands.attrs["candidates_ha"],
                     "candidates_count": len(cands),
                     "gap_closed_share": cands.attrs["gap_closed_share"],
                     "remaining_gap_ha": cands.attrs["remaining_gap_ha"]}
        elif gap > 0:
            details["candidates"] = "no candidate list: land-use parcels not given"
        entries.append(_targets.entry(spec, value=value, gap=gap, gap_unit="ha", basis=basis,
                                      details=details, **extra))
    crs = landuse_classified.crs if landuse_classified is not None else None

    def cat(parts: list[gpd.GeoDataFrame]) -> gpd.GeoDataFrame:
        parts = [p for p in parts if len(p)]
        if not parts:
            return _empty_candidates(crs)
        return gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), geometry="geometry",
                                crs=crs)

    return entries, {"afforestation": cat(aff), "bluegreen_candidates": cat(bgc)}


__all__ = [
    "CANDIDATE_COLUMNS", "CONNECTIVITY_COLUMNS", "TIERS", "accounting_units", "afforestation_candidates",
    "bluegreen_candidates", "compare_sources", "ecology_targets", "landcover_accounts",
    "with_connectivity", "zone_accounts",
]

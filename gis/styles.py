"""QGIS styles for every GeoPackage a run writes, and one QGIS project that opens them all.

Each GeoPackage gets a default style per layer in its ``layer_styles`` table (QGIS QML and an
OGC SLD), which QGIS applies when the layer is opened: graduated colours on the figure a planner
reads (annual yield, blue-green share against the target's breaks, suitability rank, patch
importance, corridor cost), categories for ground-PV kinds, and no dark outlines on dense layers
(55 000 roofs drawn with a 0.26 mm black outline merge into one dark mass at district scale).
:func:`write_project` writes ``project.qgz`` that opens every styled layer, grouped (PV,
ecology, zones) and labelled in Chinese and English, with paths relative to the project file.

Colour ramps are ColorBrewer (Brewer, Harrower & The Pennsylvania State University, Apache-2.0
licensed scheme definitions), 5 classes.
"""

from __future__ import annotations

import sqlite3
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import numpy as np
import pandas as pd

from gis import io

#: QGIS version the documents are written for (3.22 LTR and later read them)
QGIS_VERSION = "3.22.0"
#: write time recorded in ``layer_styles`` (pinned: the same inputs give the same bytes)
STYLE_TIME = "2000-01-01T00:00:00.000Z"
PROJECT_FILE = "project.qgz"

RAMPS = {
    "YlOrRd": ["255,255,178", "254,204,92", "253,141,60", "240,59,32", "189,0,38"],
    "Greens": ["237,248,233", "186,228,179", "116,196,118", "49,163,84", "0,109,44"],
    "YlGn": ["255,255,204", "194,230,153", "120,198,121", "49,163,84", "0,104,55"],
    "PuBu": ["241,238,246", "189,201,225", "116,169,207", "43,140,190", "4,90,141"],
    # diverging, for shares against their targets: red below, green at or above
    "RdYlGn": ["215,25,28", "253,174,97", "255,255,191", "166,217,106", "26,150,65"],
}
GROUND_KINDS = {"fishery": ("渔光互补 fishery", "49,130,189"),
                "facility_agri": ("农光互补 facility farmland", "254,178,76"),
                "roadside": ("道路两侧 roadside", "117,107,177")}


@dataclass(frozen=True)
class LayerStyle:
    """How one layer of one output GeoPackage is drawn and listed in the project.

    ``method`` is ``graduated`` (quantile classes of ``field``, or ``breaks`` when given),
    ``categorized`` (``categories``: value → (label, colour)) or ``single``.  ``outline`` is
    ``none`` (dense layers), ``light`` (a 0.1 mm pale outline) or ``dark`` (zones: few,
    large shapes).  ``reverse`` gives small values the strongest colour (rank 1 = best).
    """

    label: str
    group: str
    method: str = "graduated"
    field: str | None = None
    unit: str = ""
    ramp: str = "YlOrRd"
    outline: str = "none"
    reverse: bool = False
    categories: Mapping[str, tuple[str, str]] | None = None
    colour: str = "166,206,227"
    opacity: float = 1.0
    width_mm: float = 0.6


#: (file stem, layer) → style; a file written by another step gets one by its own name
STYLES: dict[tuple[str, str], LayerStyle] = {
    ("buildings_pv", "buildings_pv"): LayerStyle(
        "建筑屋顶光伏年发电量 Rooftop PV by building [kWh/yr]", "pv", field="annual_kwh",
        unit="kWh/yr"),
    ("sites", "sites"): LayerStyle(
        "屋顶光伏点位 Rooftop PV sites [kWh/yr]", "pv", field="annual_kwh", unit="kWh/yr"),
    ("roof_planes", "roof_planes"): LayerStyle(
        "屋面光伏 Roof planes: specific yield [kWh/kWp]", "pv", field="specific_yield_kwh_kwp",
        unit="kWh/kWp"),
    ("ground_pv", "ground_pv"): LayerStyle(
        "地面光伏 Ground-mounted PV by kind", "pv", method="categorized", field="kind",
        categories=GROUND_KINDS, outline="light"),
    ("zones", "zones"): LayerStyle(
        "管控分区蓝绿空间占比 Zones: blue-green share", "zones", field="bluegreen_share",
        unit="%", ramp="RdYlGn", outline="dark", opacity=0.6),
    ("afforestation", "afforestation"): LayerStyle(
        "造林候选地块 Afforestation candidates (rank)", "ecology", field="rank", ramp="Greens",
        reverse=True, outline="light"),
    ("bluegreen_candidates", "afforestation"): LayerStyle(
        "蓝绿空间候选地块 Blue-green candidates (rank)", "ecology", field="rank", ramp="YlGn",
        reverse=True, outline="light"),
    ("patches", "patches"): LayerStyle(
        "生境斑块重要性 Habitat patches: importance dPC [%]", "ecology", field="dpc",
        ramp="Greens"),
    ("corridors", "corridors"): LayerStyle(
        "生态廊道 Ecological corridors: cost", "ecology", field="cost", ramp="PuBu",
        reverse=True, width_mm=0.8),
    ("corridors", "gaps"): LayerStyle(
        "廊道断点地块 Corridor gaps (non-habitat parcels)", "ecology", method="single",
        colour="253,174,97", opacity=0.8),
}
GROUPS = {"pv": "光伏 PV", "zones": "管控分区 Zones", "ecology": "生态 Ecology",
          "other": "其他 Other"}


# --------------------------------------------------------------------------------------------
# classes


def quantile_breaks(values: np.ndarray, n: int = 5) -> list[tuple[float, float]]:
    """Quantile class bounds over the finite values (at least one class).

    Inner bounds are rounded to 3 significant figures for a readable legend; the outer ones are
    the exact minimum and maximum so that no feature falls outside every class.

    Examples
    --------
    >>> quantile_breaks(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), n=2)
    [(1.0, 3.0), (3.0, 5.0)]
    >>> quantile_breaks(np.array([np.nan]))
    [(0.0, 0.0)]
    """
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return [(0.0, 0.0)]
    edges = np.quantile(finite, np.linspace(0.0, 1.0, n + 1))
    inner = [float(f"{x:.3g}") for x in edges[1:-1]]
    edges = np.unique([float(finite.min()), *inner, float(finite.max())])
    if edges.size == 1:
        return [(float(edges[0]), float(edges[0]))]
    return [(float(a), float(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def share_breaks(targets: Sequence[float]) -> list[tuple[float, float]]:
    """Share classes [0–1] split at the targets: below the lowest, between, at or above.

    Examples
    --------
    >>> share_breaks([0.85, 0.65])
    [(0.0, 0.65), (0.65, 0.85), (0.85, 1.0)]
    """
    cuts = sorted({float(t) for t in targets if 0 < float(t) < 1})
    edges = [0.0, *cuts, 1.0]
    return list(zip(edges[:-1], edges[1:], strict=True))


def bluegreen_targets(targets: Mapping[str, Any] | None) -> list[float]:
    """The blue-green share targets of a target set (fractions), e.g. ``[0.65, 0.85]``."""
    if not targets:
        return []
    entries = targets.get("targets", [])
    entries = entries.values() if isinstance(entries, Mapping) else entries
    return sorted({float(t["target"]) for t in entries
                   if t.get("unit") == "share" and "blue-green" in str(t.get("measure", ""))})


def _fmt(x: float, unit: str) -> str:
    if unit == "%":
        return f"{x * 100:.0f} %"
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.2f}"


def _colours(ramp: str, n: int, reverse: bool) -> list[str]:
    base = RAMPS[ramp]
    picks = [base[round(i * (len(base) - 1) / max(n - 1, 1))] for i in range(n)] if n > 1 \
        else [base[-1]]
    return picks[::-1] if reverse else picks


# --------------------------------------------------------------------------------------------
# QML


def _symbol(parent: ET.Element, name: str, geom: str, colour: str, style: LayerStyle) -> None:
    """One QGIS symbol: fill, line or marker, with the style's outline."""
    symbol = ET.SubElement(parent, "symbol", {
        "type": geom, "name": name, "alpha": f"{style.opacity:g}", "clip_to_extent": "1",
        "force_rhr": "0"})
    if geom == "fill":
        klass = "SimpleFill"
        outline = {"none": ("no", "255,255,255,0", "0"),
                   "light": ("solid", "255,255,255,150", "0.1"),
                   "dark": ("solid", "60,60,60,255", "0.4")}[style.outline]
        props = {"color": f"{colour},255", "style": "solid", "outline_style": outline[0],
                 "outline_color": outline[1], "outline_width": outline[2],
                 "outline_width_unit": "MM", "joinstyle": "bevel"}
    elif geom == "line":
        klass = "SimpleLine"
        props = {"line_color": f"{colour},255", "line_width": f"{style.width_mm:g}",
                 "line_width_unit": "MM", "line_style": "solid", "capstyle": "round",
                 "joinstyle": "round"}
    else:
        klass = "SimpleMarker"
        props = {"color": f"{colour},255", "name": "circle", "size": "2", "size_unit": "MM",
                 "outline_style": "no" if style.outline == "none" else "solid",
                 "outline_color": "255,255,255,150", "outline_width": "0.1"}
    layer = ET.SubElement(symbol, "layer", {"class": klass, "pass": "0", "locked": "0",
                                            "enabled": "1"})
    options = ET.SubElement(layer, "Option", {"type": "Map"})
    for k, v in props.items():
        ET.SubElement(options, "Option", {"type": "QString", "name": k, "value": v})
        ET.SubElement(layer, "prop", {"k": k, "v": v})


def renderer_element(style: LayerStyle, geom: str, classes: list) -> ET.Element:
    """The ``renderer-v2`` element of a style.

    ``classes`` holds ``(lower, upper)`` bounds (graduated) or ``(value, label, colour)``
    (categorized); it is ignored for a single symbol.
    """
    common = {"symbollevels": "0", "forceraster": "0", "referencescale": "-1",
              "enableorderby": "1" if style.outline == "dark" else "0"}
    if style.method == "graduated":
        renderer = ET.Element("renderer-v2", {"type": "graduatedSymbol", "attr": style.field,
                                              "graduatedMethod": "GraduatedColor", **common})
        ranges = ET.SubElement(renderer, "ranges")
        symbols = ET.SubElement(renderer, "symbols")
        colours = _colours(style.ramp, len(classes), style.reverse)
        for i, ((lower, upper), colour) in enumerate(zip(classes, colours, strict=True)):
            label = f"{_fmt(lower, style.unit)} – {_fmt(upper, style.unit)}"
            ET.SubElement(ranges, "range", {"symbol": str(i), "lower": repr(lower),
                                            "upper": repr(upper), "label": label,
                                            "render": "true"})
            _symbol(symbols, str(i), geom, colour, style)
    elif style.method == "categorized":
        renderer = ET.Element("renderer-v2", {"type": "categorizedSymbol", "attr": style.field,
                                              **common})
        cats = ET.SubElement(renderer, "categories")
        symbols = ET.SubElement(renderer, "symbols")
        for i, (value, label, colour) in enumerate(classes):
            ET.SubElement(cats, "category", {"symbol": str(i), "value": value, "label": label,
                                             "render": "true"})
            _symbol(symbols, str(i), geom, colour, style)
    else:
        renderer = ET.Element("renderer-v2", {"type": "singleSymbol", **common})
        symbols = ET.SubElement(renderer, "symbols")
        _symbol(symbols, "0", geom, style.colour, style)
    if style.outline == "dark":
        # big zones first, small ones on top: the barrier does not hide its sub-zones
        order = ET.SubElement(renderer, "orderby")
        ET.SubElement(order, "orderByClause", {"asc": "0", "nullsFirst": "0"}).text = "$area"
    ET.SubElement(renderer, "rotation")
    ET.SubElement(renderer, "sizescale")
    return renderer


def qml(style: LayerStyle, geom: str, classes: list) -> str:
    """A QGIS style document (symbology) for one layer."""
    root = ET.Element("qgis", {"version": QGIS_VERSION, "styleCategories": "Symbology"})
    root.append(renderer_element(style, geom, classes))
    ET.SubElement(root, "layerGeometryType").text = {"marker": "0", "line": "1",
                                                    "fill": "2"}[geom]
    return ("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
            + ET.tostring(root, encoding="unicode"))


def sld(layer: str, style: LayerStyle, geom: str, classes: list) -> str:
    """The same classes as an OGC SLD 1.1 document (for clients other than QGIS)."""
    sld_ns, se, ogc = ("http://www.opengis.net/sld", "http://www.opengis.net/se",
                       "http://www.opengis.net/ogc")
    ET.register_namespace("", sld_ns)
    ET.register_namespace("se", se)
    ET.register_namespace("ogc", ogc)
    root = ET.Element(f"{{{sld_ns}}}StyledLayerDescriptor", {"version": "1.1.0"})
    named = ET.SubElement(root, f"{{{sld_ns}}}NamedLayer")
    ET.SubElement(named, f"{{{se}}}Name").text = layer
    fts = ET.SubElement(ET.SubElement(named, f"{{{sld_ns}}}UserStyle"),
                        f"{{{se}}}FeatureTypeStyle")
    if style.method == "graduated":
        colours = _colours(style.ramp, len(classes), style.reverse)
        rules = [(f"{_fmt(lo, style.unit)} – {_fmt(hi, style.unit)}",
                  [("PropertyIsGreaterThanOrEqualTo", lo), ("PropertyIsLessThanOrEqualTo", hi)],
                  c) for (lo, hi), c in zip(classes, colours, strict=True)]
    elif style.method == "categorized":
        rules = [(label, [("PropertyIsEqualTo", value)], c) for value, label, c in classes]
    else:
        rules = [(style.label, [], style.colour)]
    for name, conditions, colour in rules:
        rule = ET.SubElement(fts, f"{{{se}}}Rule")
        ET.SubElement(rule, f"{{{se}}}Name").text = name
        if conditions:
            filt = ET.SubElement(rule, f"{{{ogc}}}Filter")
            holder = ET.SubElement(filt, f"{{{ogc}}}And") if len(conditions) > 1 else filt
            for op, literal in conditions:
                cmp_ = ET.SubElement(holder, f"{{{ogc}}}{op}")
                ET.SubElement(cmp_, f"{{{ogc}}}PropertyName").text = style.field
                ET.SubElement(cmp_, f"{{{ogc}}}Literal").text = (
                    repr(literal) if isinstance(literal, float) else str(literal))
        hexed = "#" + "".join(f"{int(c):02x}" for c in colour.split(","))
        if geom == "line":
            stroke = ET.SubElement(ET.SubElement(rule, f"{{{se}}}LineSymbolizer"),
                                   f"{{{se}}}Stroke")
            ET.SubElement(stroke, f"{{{se}}}SvgParameter", {"name": "stroke"}).text = hexed
            ET.SubElement(stroke, f"{{{se}}}SvgParameter", {"name": "stroke-width"}).text = "2"
        else:
            fill = ET.SubElement(ET.SubElement(rule, f"{{{se}}}PolygonSymbolizer"),
                                 f"{{{se}}}Fill")
            ET.SubElement(fill, f"{{{se}}}SvgParameter", {"name": "fill"}).text = hexed
    return ET.tostring(root, encoding="unicode")


# --------------------------------------------------------------------------------------------
# GeoPackages


@dataclass(frozen=True)
class StyledLayer:
    """A layer of a GeoPackage with the style written for it."""

    file: str
    layer: str
    geometry_column: str
    geometry_type: str
    srs_id: int
    style: LayerStyle
    geom: str
    classes: list
    qml: str


def _geom_kind(type_name: str) -> str:
    name = type_name.upper()
    if "POINT" in name:
        return "marker"
    if "POLYGON" not in name and ("LINE" in name or "CURVE" in name):
        return "line"
    return "fill"


def _layers(path: Path) -> list[tuple[str, str, str, int]]:
    """(table, geometry column, geometry type, srs id) of each feature table of a GeoPackage."""
    with sqlite3.connect(path) as con:
        return con.execute("SELECT table_name, column_name, geometry_type_name, srs_id "
                           "FROM gpkg_geometry_columns ORDER BY table_name").fetchall()


def _fallback(stem: str, layer: str) -> LayerStyle:
    label = stem if stem == layer else f"{stem} · {layer}"
    return LayerStyle(label, "other", method="single", outline="light")


def _classes(path: Path, layer: str, style: LayerStyle, geom_type: str,
             share_targets: Sequence[float]) -> tuple[LayerStyle, list]:
    """The style's classes from the layer's values (a single symbol when the field is missing)."""
    import pyogrio

    if style.method == "single":
        return style, []
    columns = [c for c in pyogrio.read_info(path, layer=layer)["fields"]]
    if style.field not in columns:
        return LayerStyle(style.label, style.group, method="single", outline=style.outline,
                          colour=style.colour, opacity=style.opacity), []
    values = pyogrio.read_dataframe(path, layer=layer, columns=[style.field],
                                    read_geometry=False)[style.field]
    if style.method == "categorized":
        present = [str(v) for v in pd.unique(values.dropna().astype(str))]
        table = style.categories or {}
        known = [(v, *table[v]) for v in table if v in present]
        extra = [(v, v, "180,180,180") for v in sorted(present) if v not in table]
        return style, known + extra
    if style.field == "bluegreen_share" and share_targets:
        return style, share_breaks(share_targets)
    return style, quantile_breaks(pd.to_numeric(values, errors="coerce").to_numpy(float))


def style_geopackage(path: str | Path, *, targets: Mapping[str, Any] | None = None,
                     description: str = "") -> list[StyledLayer]:
    """Write a default QGIS style for every feature layer of a GeoPackage (``layer_styles``).

    Parameters
    ----------
    path : str or Path
        The GeoPackage, changed in place (call it on files of a staging folder).
    targets : mapping, optional
        The run's targets: the blue-green share targets set the zone classes' breaks.
    description : str
        Written in the style rows (the run's name, say).

    Returns
    -------
    list of StyledLayer
        One per feature layer, with the style written.
    """
    path = Path(path)
    share_targets = bluegreen_targets(targets)
    styled = []
    for table, geom_col, geom_type, srs_id in _layers(path):
        style = STYLES.get((path.stem, table)) or _fallback(path.stem, table)
        style, classes = _classes(path, table, style, geom_type, share_targets)
        geom = _geom_kind(geom_type)
        styled.append(StyledLayer(path.name, table, geom_col, geom_type, srs_id, style, geom,
                                  classes, qml(style, geom, classes)))
    _write_rows(path, styled, description)
    return styled


_STYLE_TABLE = (
    'CREATE TABLE IF NOT EXISTS "layer_styles" ("id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, '
    '"f_table_catalog" TEXT(256), "f_table_schema" TEXT(256), "f_table_name" TEXT(256), '
    '"f_geometry_column" TEXT(256), "styleName" TEXT(30), "styleQML" TEXT, "styleSLD" TEXT, '
    '"useAsDefault" BOOLEAN, "description" TEXT, "owner" TEXT(30), "ui" TEXT(30), '
    '"update_time" DATETIME)')


def _write_rows(path: Path, styled: list[StyledLayer], description: str) -> None:
    """Replace the style rows of these layers; register the table as GeoPackage attributes."""
    with sqlite3.connect(path) as con:
        con.execute(_STYLE_TABLE)
        con.execute("INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, "
                    "description, last_change) VALUES ('layer_styles', 'attributes', "
                    "'layer_styles', '', ?)", (STYLE_TIME,))
        for s in styled:
            con.execute("DELETE FROM layer_styles WHERE f_table_name = ?", (s.layer,))
            con.execute(
                "INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, "
                "f_geometry_column, styleName, styleQML, styleSLD, useAsDefault, description, "
                "owner, ui, update_time) VALUES ('', '', ?, ?, ?, ?, ?, 1, ?, '', '', ?)",
                (s.layer, s.geometry_column, s.layer, s.qml,
                 sld(s.layer, s.style, s.geom, s.classes),
                 f"{s.style.label}" + (f" — {description}" if description else ""), STYLE_TIME))
    # sqlite leaves no journal behind once the connection is closed


# --------------------------------------------------------------------------------------------
# the QGIS project


def _srs(parent: ET.Element, crs) -> None:
    srs = ET.SubElement(parent, "spatialrefsys", {"nativeFormat": "Wkt"})
    ET.SubElement(srs, "wkt").text = crs.to_wkt()
    epsg = crs.to_epsg()
    ET.SubElement(srs, "authid").text = f"EPSG:{epsg}" if epsg else ""
    ET.SubElement(srs, "description").text = crs.name
    ET.SubElement(srs, "geographicflag").text = "true" if crs.is_geographic else "false"


def project_xml(layers: list[StyledLayer], *, title: str, crs) -> str:
    """A QGIS project document (``.qgs``) opening ``layers`` from files beside it."""
    root = ET.Element("qgis", {"projectname": title, "version": QGIS_VERSION})
    ET.SubElement(root, "title").text = title
    ET.SubElement(root, "homePath", {"path": ""})
    _srs(ET.SubElement(root, "projectCrs"), crs)
    tree = ET.SubElement(root, "layer-tree-group")
    ET.SubElement(tree, "customproperties")
    maps = ET.SubElement(root, "projectlayers")
    order = ["pv", "zones", "ecology", "other"]
    # points and lines above polygons, dense layers above sparse ones within a group
    rank = {"marker": 0, "line": 1, "fill": 2}
    for group in order:
        members = sorted((s for s in layers if s.style.group == group),
                         key=lambda s: (rank[s.geom], s.file))
        if not members:
            continue
        node = ET.SubElement(tree, "layer-tree-group", {"name": GROUPS[group],
                                                        "checked": "Qt::Checked",
                                                        "expanded": "1"})
        ET.SubElement(node, "customproperties")
        for s in members:
            ident = f"{Path(s.file).stem}_{s.layer}".replace(" ", "_")
            source = f"./{s.file}|layername={s.layer}"
            checked = "Qt::Checked" if s.file != "sites.gpkg" else "Qt::Unchecked"
            ET.SubElement(node, "layer-tree-layer", {
                "id": ident, "name": s.style.label, "source": source, "providerKey": "ogr",
                "checked": checked, "expanded": "0"})
            ml = ET.SubElement(maps, "maplayer", {
                "type": "vector", "geometry": {"marker": "Point", "line": "Line",
                                               "fill": "Polygon"}[s.geom],
                "hasScaleBasedVisibilityFlag": "0", "autoRefreshEnabled": "0"})
            ET.SubElement(ml, "id").text = ident
            ET.SubElement(ml, "datasource").text = source
            ET.SubElement(ml, "layername").text = s.style.label
            _srs(ET.SubElement(ml, "srs"), crs)
            ET.SubElement(ml, "provider", {"encoding": "UTF-8"}).text = "ogr"
            ml.append(renderer_element(s.style, s.geom, s.classes))
            ET.SubElement(ml, "layerOpacity").text = "1"
    props = ET.SubElement(root, "properties")
    paths = ET.SubElement(props, "Paths")
    ET.SubElement(paths, "Absolute", {"type": "bool"}).text = "false"
    return ("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
            + ET.tostring(root, encoding="unicode"))


def write_project(path: str | Path, layers: list[StyledLayer], *, title: str, crs) -> Path:
    """Write ``project.qgz`` (a zip holding one ``.qgs``) beside the GeoPackages it opens."""
    path = Path(path)
    text = project_xml(layers, title=title, crs=crs)
    with io.atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        info = zipfile.ZipInfo(path.with_suffix(".qgs").name, date_time=(2000, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, text.encode("utf-8"))
    return path


def style_outputs(folder: str | Path, *, targets: Mapping[str, Any] | None = None, crs=None,
                  title: str = "gis-planner", description: str = "") -> list[StyledLayer]:
    """Style every GeoPackage of an output folder and write ``project.qgz`` opening them.

    Parameters
    ----------
    folder : str or Path
        The output (or staging) folder.
    targets : mapping, optional
        The run's targets (for the zones' blue-green breaks).
    crs : pyproj.CRS, optional
        The project's CRS; default: the first layer's.
    title : str
        The project's title (the run's name).
    description : str
        Written into each style row.

    Returns
    -------
    list of StyledLayer
        Every layer styled (empty when the folder holds no GeoPackage: no project is written).
    """
    from pyproj import CRS

    folder = Path(folder)
    layers: list[StyledLayer] = []
    for path in sorted(folder.glob("*.gpkg")):
        layers += style_geopackage(path, targets=targets, description=description)
    if layers:
        if crs is None:
            crs = CRS.from_epsg(layers[0].srs_id) if layers[0].srs_id > 0 else CRS.from_epsg(4326)
        write_project(folder / PROJECT_FILE, layers, title=title, crs=CRS.from_user_input(crs))
    return layers

"""Interactive maps for planners: rooftop PV potential and the ecological barrier (folium).

Pages stay light because geometries are simplified in metres before they are reprojected to
WGS 84, coordinates are rounded to 6 decimals (about 0.1 m), only the columns shown are kept
(under one-letter keys), and every colour class is its own layer with one static style — no
per-feature style function.  When a district has more buildings than a page should hold, the
buildings with the largest yield are drawn and the rest are summed on a grid; when it has more
land-use parcels, they are dissolved by group within grid cells (or, when too mixed for that,
generalised to a grid of dominant groups).  The page says which.

Every attribute value shown in a tooltip is HTML-escaped here, before it reaches folium: folium's
tooltips put property values into ``innerHTML`` as they are.
"""

from __future__ import annotations

import contextlib
import functools
import html
import os
import threading
import urllib.parse
from collections.abc import Sequence
from contextvars import ContextVar
from pathlib import Path

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import Element
from folium import plugins

from gis._errors import InputError, Problem
from gis._geom import dissolve_sum
from gis._templates import Markup, render
from gis.config import CATEGORY_ZH, LEVEL_ZH

#: Chinese labels of the canonical building categories (DESIGN §4.2).
#: Chinese labels of the zone levels.
#: Land-use groups drawn on the ecology map: (label, fill colour, shown when the page opens).
LANDUSE_GROUPS = {
    "blue": ("水域 blue (water, wetland)", "#2b83ba", True),
    "forest": ("林地 forest", "#1a7a3a", True),
    "green": ("绿地 green (grass, parks)", "#8cc63f", True),
    "cropland": ("耕地 cropland", "#f2d16b", True),
    "construction": ("建设用地 construction", "#a6a6a6", True),
    "other": ("其他 other", "#e0d7cf", False),
}

TIANDITU_WMTS = (
    "https://t{{s}}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
    "&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles"
    "&TILEMATRIX={{z}}&TILEROW={{y}}&TILECOL={{x}}&tk={key}"
)

_FOLIUM_JS = dict(folium.Map.default_js)
_FOLIUM_CSS = dict(folium.Map.default_css)

# Sequential classes, low → high (ColorBrewer YlOrRd / RdYlGn, Brewer 2002).
_YLORRD = ["#fed976", "#feb24c", "#fd8d3c", "#f03b20", "#bd0026"]
_NO_PV = "#bdbdbd"


# ---------------------------------------------------------------------------------------------
# small helpers


def escape_text(values: pd.Series) -> pd.Series:
    """HTML-escape a column of text, vectorised; missing values become "".

    Parameters
    ----------
    values : pandas.Series
        Any values; they are shown as text.

    Returns
    -------
    pandas.Series
        Strings in which ``& < > " '`` are character references.

    Examples
    --------
    >>> escape_text(pd.Series(["<script>alert(1)</script>", "金桥 & 东丽", None])).tolist()
    ['&lt;script&gt;alert(1)&lt;/script&gt;', '金桥 &amp; 东丽', '']
    """
    s = values.astype("string").fillna("")
    return (
        s.str.replace("&", "&amp;", regex=False)
        .str.replace("<", "&lt;", regex=False)
        .str.replace(">", "&gt;", regex=False)
        .str.replace('"', "&quot;", regex=False)
        .str.replace("'", "&#x27;", regex=False)
    )


def _num(values: pd.Series, decimals: int, unit: str = "") -> pd.Series:
    """Numbers as text with a unit ("123.4 kWp"); missing → "–"."""
    v = pd.to_numeric(values, errors="coerce").astype("Float64").round(decimals)
    text = (v.astype("Int64") if decimals == 0 else v).astype("string")
    text = text + (f" {unit}" if unit else "")
    return text.fillna("–")


def _pct(values: pd.Series, decimals: int = 1) -> pd.Series:
    return _num(pd.to_numeric(values, errors="coerce") * 100, decimals, "%")


def _col(df: pd.DataFrame, name: str, default=pd.NA) -> pd.Series:
    return df[name] if name in df.columns else pd.Series(default, index=df.index)


def _to_metric(gdf: gpd.GeoDataFrame, what: str) -> gpd.GeoDataFrame:
    if gdf.crs is None:
        raise InputError(
            Problem("layer has no CRS; cannot place it on a map", layer=what,
                    hint="give the layer a CRS before publishing")
        )
    if gdf.crs.is_geographic:
        return gdf.to_crs(gdf.estimate_utm_crs())
    return gdf


def _web_geometry(geoms: gpd.GeoSeries, tolerance_m: float) -> np.ndarray:
    """Simplify in metres, reproject to EPSG:4326 and round to 6 decimals (≈ 0.1 m)."""
    from gis import io

    simple = shapely.simplify(geoms.values, tolerance_m, preserve_topology=True)
    # one transformer shared by every map and thread (gis.io.lonlat_transformer)
    return io.to_lonlat(np.asarray(simple), geoms.crs, decimals=6)


def _feature_collection(props: pd.DataFrame, geoms) -> dict:
    """A GeoJSON FeatureCollection of ``props`` and ``geoms`` (null or empty geometries dropped).

    Built as one JSON text from vectorised parts (``shapely.to_geojson``, ``DataFrame.to_json``)
    and parsed once: the same features as ``GeoDataFrame.to_geo_dict(drop_id=True)``, without a
    Python object per coordinate.  Frames with float properties keep pandas' records (JSON
    would round them to 15 digits).
    """
    import json

    import pyarrow as pa
    import pyarrow.compute as pc

    geoms = np.asarray(list(geoms) if not isinstance(geoms, np.ndarray) else geoms, dtype=object)
    keep = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    props = props.reset_index(drop=True).loc[keep].reset_index(drop=True)
    if not len(props):
        return {"type": "FeatureCollection", "features": []}
    geometry = pa.array(shapely.to_geojson(geoms[keep]), type=pa.string())
    if len(props.columns) and len(props.select_dtypes("floating").columns) == 0:
        lines = props.to_json(orient="records", lines=True, force_ascii=False).splitlines()
        properties = pa.array(lines, type=pa.string())
        features = pc.binary_join_element_wise('{"type":"Feature","properties":', properties,
                                               ',"geometry":', geometry, "}", "")
        return json.loads('{"type":"FeatureCollection","features":[' + _joined(features)
                          + "]}")
    records = props.astype(object).where(props.notna(), None).to_dict("records")
    shapes = json.loads("[" + _joined(geometry) + "]")
    return {"type": "FeatureCollection",
            "features": [{"type": "Feature", "properties": p, "geometry": g}
                         for p, g in zip(records, shapes, strict=True)]}


# ---------------------------------------------------------------------------------------------
# GeoJSON as page text
#
# folium turns a layer's data into JSON when the page is rendered, and branca then compiles the
# rendered script, data and all, as a Jinja template of its own before writing it out.  For the
# demo's 30 000 drawn features, parsing the text built here into dicts, writing them again and
# compiling the result cost more than everything else on the maps.  The layers below are built
# once as the exact text the page holds (``_PAGE_JSON``: keys sorted, compact, UTF-8) and put in
# the page as they are.

#: JSON settings of a rendered page (see :func:`render_map`).
_PAGE_JSON = {"sort_keys": True, "separators": (",", ":"), "ensure_ascii": False}
#: GeoJSON names of the shapely geometry type ids written as text (others take the dict path).
_GEOJSON_TYPES = {0: "Point", 1: "LineString", 3: "Polygon", 4: "MultiPoint",
                  5: "MultiLineString", 6: "MultiPolygon"}
#: How ``json.dumps`` writes the control characters U+0000–U+001F inside a string.
_JSON_CONTROL = {**{chr(i): f"\\u{i:04x}" for i in range(32)},
                 "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


class _Features:
    """A FeatureCollection as page text, with its property keys and number of features."""

    def __init__(self, text: str, fields: Sequence[str], n: int):
        self.text, self.fields, self.n = text, list(fields), int(n)


def _float_text(values: np.ndarray):
    """Finite numbers as Python's ``repr`` writes them ("39.0", "117.353189", "1e-05").

    Arrow writes the same shortest round-trip digits; whole numbers get Python's ".0", and the
    values where the two differ (below 1e-4 and from 1e10 on; in degrees, only points within
    11 m of the equator or the prime meridian) by ``repr`` itself.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    v = np.asarray(values, dtype=np.float64)
    text = pc.cast(pa.array(v), pa.string())
    size = np.abs(v)
    odd = (size != 0) & ((size < 1e-4) | (size >= 1e10))
    whole = (v == np.floor(v)) & ~odd
    if whole.any():
        text = pc.if_else(pa.array(whole), pc.binary_join_element_wise(text, ".0", ""), text)
    if odd.any():  # rare
        strings = text.to_numpy(zero_copy_only=False).astype(object)
        strings[odd] = [repr(float(x)) for x in v[odd]]
        text = pa.array(strings, type=pa.string())
    return text


def _geometry_text(geoms: np.ndarray):
    """GeoJSON geometries as ``json.dumps`` writes them with keys sorted; None when some
    geometry is of a type (or has a Z or a non-finite coordinate) left to the dict path."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if shapely.has_z(geoms).any():
        return None
    types = shapely.get_type_id(geoms)
    parts, where = [], []
    for type_id in np.unique(types):
        name = _GEOJSON_TYPES.get(int(type_id))
        if name is None:
            return None
        idx = np.flatnonzero(types == type_id)
        _, coords, offsets = shapely.to_ragged_array(geoms[idx])
        if not np.isfinite(coords).all():
            return None
        text = pc.binary_join_element_wise("[", _float_text(coords[:, 0]), ",",
                                           _float_text(coords[:, 1]), "]", "")
        for off in offsets:  # rings, then polygons, then multi-polygons (innermost first)
            nested = pa.ListArray.from_arrays(pa.array(off, type=pa.int32()), text)
            text = pc.binary_join_element_wise("[", pc.binary_join(nested, ","), "]", "")
        parts.append(pc.binary_join_element_wise('{"coordinates":', text,
                                                 f',"type":"{name}"}}', ""))
        where.append(idx)
    texts = pa.concat_arrays(parts) if len(parts) > 1 else parts[0]
    return texts.take(pa.array(np.argsort(np.concatenate(where), kind="stable")))


def _json_values(values: pd.Series):
    """A property column as JSON values (``json.dumps`` text; missing → null); None when its
    type is left to the dict path."""
    import pyarrow as pa
    import pyarrow.compute as pc

    missing = pa.array(values.isna().to_numpy(dtype=bool))
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype):
        flags = values.fillna(False).to_numpy(dtype=bool)
        text = pa.array(np.where(flags, "true", "false"), type=pa.string())
    elif pd.api.types.is_integer_dtype(dtype):
        text = pc.cast(pa.array(values.fillna(0).to_numpy(dtype=np.int64)), pa.string())
    elif pd.api.types.is_float_dtype(dtype):
        v = values.to_numpy(dtype=np.float64, na_value=np.nan)
        if np.isinf(v).any():
            return None
        text = _float_text(np.nan_to_num(v, nan=0.0))
    elif pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
        try:
            raw = pa.array(values.to_numpy(dtype=object, na_value=None), type=pa.string())
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return None
        text = raw
        if pc.any(pc.match_substring_regex(raw, r'["\\\\]')).as_py():  # rare in names and ids
            text = pc.replace_substring(pc.replace_substring(raw, "\\", "\\\\"), '"', '\\"')
        if pc.any(pc.match_substring_regex(text, r"[\x00-\x1f]")).as_py():
            for char, escaped in _JSON_CONTROL.items():
                text = pc.replace_substring(text, char, escaped)
        text = pc.binary_join_element_wise('"', text, '"', "")
    else:
        return None
    return pc.if_else(missing, "null", pc.fill_null(text, "null"))


def _feature_text(props: pd.DataFrame, geoms) -> str | None:
    """:func:`_feature_collection` as the page's JSON text (``_PAGE_JSON``), built with Arrow
    without a Python object per feature; None when a column or geometry needs the dict path."""
    import json

    import pyarrow.compute as pc

    geoms = np.asarray(list(geoms) if not isinstance(geoms, np.ndarray) else geoms, dtype=object)
    keep = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    props = props.reset_index(drop=True).loc[keep].reset_index(drop=True)
    if not len(props):
        return '{"features":[],"type":"FeatureCollection"}'
    if not props.columns.is_unique or not all(isinstance(c, str) for c in props.columns):
        return None
    geometry = _geometry_text(geoms[keep])
    if geometry is None:
        return None
    pieces: list = []
    for i, key in enumerate(sorted(props.columns)):
        values = _json_values(props[key])
        if values is None:
            return None
        pieces += [("{" if i == 0 else ",") + json.dumps(key, ensure_ascii=False) + ":", values]
    properties = pc.binary_join_element_wise(*pieces, "}", "") if pieces else "{}"
    features = pc.binary_join_element_wise('{"geometry":', geometry, ',"properties":',
                                           properties, ',"type":"Feature"}', "")
    return '{"features":[' + _joined(features) + '],"type":"FeatureCollection"}'


def _features(props: pd.DataFrame, geoms) -> _Features | dict:
    """A layer's features for :func:`_static_geojson`: page text when it can be built as text
    (:func:`_feature_text`), else the dict of :func:`_feature_collection`."""
    text = _feature_text(props, geoms)
    if text is None:
        return _feature_collection(props, geoms)
    n = text.count('"type":"Feature"') if len(props) else 0
    return _Features(text, props.columns, n)


def _joined(strings) -> str:
    """The values of an Arrow string array joined by commas, in one kernel call."""
    import pyarrow as pa
    import pyarrow.compute as pc

    one_list = pa.ListArray.from_arrays(pa.array([0, len(strings)], type=pa.int32()), strings)
    return pc.binary_join(one_list, ",")[0].as_py()


def _tooltip(fields: Sequence[str], aliases: Sequence[str]) -> folium.GeoJsonTooltip:
    return folium.GeoJsonTooltip(
        fields=list(fields), aliases=[html.escape(a) for a in aliases], sticky=False
    )


def _style(color: str, fill: str | None = None, *, weight: float = 0.6, fill_opacity=0.75,
           dash: str | None = None) -> dict:
    style = {"color": color, "weight": weight, "fillColor": fill or color,
             "fillOpacity": fill_opacity, "opacity": 0.9}
    if dash:
        style["dashArray"] = dash
    return style


def _static_geojson(data: dict | _Features, *, name: str, style: dict | None, tooltip,
                    show: bool = True, control: bool = True, marker=None) -> folium.GeoJson:
    # The style goes into L.geoJson's options (one object for the whole layer), not a per-feature
    # style function, which folium would expand into a switch over every feature id.
    layer = _GeoJsonText if isinstance(data, _Features) else folium.GeoJson
    return layer(data, name=name, show=show, control=control, tooltip=tooltip,
                 marker=marker, style=style)


def _classes(values: np.ndarray, breaks: Sequence[float]) -> np.ndarray:
    """Class index 0..len(breaks) with class i = [breaks[i-1], breaks[i])."""
    return np.digitize(values, np.asarray(breaks, dtype=float), right=False)


def _break_label(lo: float | None, hi: float | None, fmt) -> str:
    if lo is None and hi is None:
        return "全部 all"
    if lo is None:
        return f"< {fmt(hi)}"
    if hi is None:
        return f"≥ {fmt(lo)}"
    return f"{fmt(lo)} – {fmt(hi)}"


class _Fills:
    """Large texts kept out of a page while :func:`render_map` works on it.

    While a map renders inside :func:`_render_parts`, the GeoJSON layers and the site tables
    put a short token in the page instead of their data; the page's own passes (stable ids,
    inlined assets, the size budget) then run over a few hundred kB instead of tens of MB, and
    the texts are put in at the end by :func:`_filled`.
    """

    def __init__(self):
        self.nonce = os.urandom(8).hex()
        self.texts: dict[str, str] = {}

    def put(self, text: str) -> str:
        token = f"\x02gp{self.nonce}:{len(self.texts)}\x03"
        self.texts[token] = text
        return token


_FILLS: ContextVar[_Fills | None] = ContextVar("gis_maps_fills", default=None)
_RENDER_LOCK = threading.Lock()


def _fill(text: str) -> str:
    """``text`` itself, or its token while :func:`_render_parts` renders."""
    fills = _FILLS.get()
    return text if fills is None else fills.put(text)


class _PlainText:
    """What ``jinja2.Template(text).render()`` gives for a text without template syntax (no
    ``{{``, ``{%``, ``{#``, no carriage return): the text less one trailing newline."""

    def __init__(self, text: str):
        text = str(text)
        self._text = text[:-1] if text.endswith("\n") else text

    def render(self, *args, **kwargs) -> str:
        return self._text


_TEMPLATE_SYNTAX = ("{{", "{%", "{#", "\r")


@functools.lru_cache(maxsize=64)
def _compiled(cls, source: str):
    return cls(source)


@contextlib.contextmanager
def _templates_once():
    """While a page renders: template texts compiled once, rendered text never compiled.

    branca wraps every element's rendered header, html and script in ``Element(text)``, which
    compiles that text as a Jinja template and renders it again (≈ 0.25 s of a demo run), and
    folium's tooltips compile the same style template once per layer.  Here a text without
    template syntax becomes :class:`_PlainText` (the same output, nothing compiled) and other
    sources are compiled once per process.  Callers hold ``_RENDER_LOCK``.
    """
    import branca.element
    import folium.features

    saved = branca.element.Template, folium.features.Template

    def element_template(source, *args, **kwargs):
        if (isinstance(source, str) and not args and not kwargs
                and not any(s in source for s in _TEMPLATE_SYNTAX)):
            return _PlainText(source)
        return saved[0](source, *args, **kwargs)

    def folium_template(source, *args, **kwargs):
        if isinstance(source, str) and not args and not kwargs:
            return _compiled(saved[1], source)
        return saved[1](source, *args, **kwargs)

    branca.element.Template, folium.features.Template = element_template, folium_template
    try:
        yield
    finally:
        branca.element.Template, folium.features.Template = saved


def _filled(page: str, texts: dict[str, str]) -> str:
    """The page with every token of :class:`_Fills` replaced by its text (one pass)."""
    if not texts:
        return page
    import re

    return re.sub("\x02gp[0-9a-f]{16}:[0-9]+\x03", lambda m: texts[m.group(0)], page)


class RawHtml(Element):
    """HTML placed in the page as it is (already rendered by an autoescaping template).

    ``branca.element.Element(text)`` would compile ``text`` as a template of its own, so a name
    such as ``{{ 7 * 7 }}`` in a title would be evaluated; this element is never compiled.

    ``data`` maps placeholders in ``html`` to large texts (a site table), or to futures of
    them: each is put in the page when it renders (as a token while :func:`render_map` works on
    the page).
    """

    def __init__(self, html: str, data: dict | None = None):
        super().__init__()
        self._html = str(html)
        self._data = dict(data or {})

    def render(self, **kwargs) -> str:
        out = self._html
        for placeholder, text in self._data.items():
            text = text.result() if hasattr(text, "result") else text
            out = out.replace(placeholder, _fill(text))
        return out


class _GeoJsonText(folium.GeoJson):
    """A GeoJSON layer whose data is the page text built once (:func:`_feature_text`).

    Rendered with a one-feature stand-in of the same property keys (what folium's tooltip
    checks read), whose JSON is then replaced by the text; the layer's script goes into the
    page as :class:`RawHtml`, not compiled as a template, so no value in the data is ever read
    as template syntax.  ``data`` is the parsed text, made when asked for (a notebook, a check).
    Rendered outside :func:`render_map` (other JSON settings), the data is written by folium's
    own filter as before.
    """

    def __init__(self, features: _Features, **kwargs):
        self._text: str | None = features.text
        self._parsed: dict | None = None
        self._rendering = False
        self._standin = {"type": "FeatureCollection", "features": [
            {"type": "Feature", "geometry": None, "properties": dict.fromkeys(features.fields)}
        ] if features.n else []}
        super().__init__(self._standin, **kwargs)

    @property
    def data(self) -> dict:
        if self._rendering:
            return self._standin
        if self._parsed is None:
            import json

            self._parsed = json.loads(self._text)
        return self._parsed

    @data.setter
    def data(self, value: dict) -> None:
        if value is not self._standin:  # replaced after construction: folium's own path
            self._parsed, self._text = value, None

    def render(self, **kwargs):
        if self._text is None:
            return super().render(**kwargs)
        from jinja2.utils import htmlsafe_json_dumps

        self._rendering = True
        try:
            super().render(**kwargs)
        finally:
            self._rendering = False
        policies = self._template.environment.policies
        dumps, dumps_kwargs = policies["json.dumps_function"], policies["json.dumps_kwargs"]
        standin = htmlsafe_json_dumps(self._standin, dumps=dumps, **dumps_kwargs)
        if dumps is None and dumps_kwargs == _PAGE_JSON:
            data = (self._text.replace("<", "\\u003c").replace(">", "\\u003e")
                    .replace("&", "\\u0026").replace("'", "\\u0027"))
        else:
            data = htmlsafe_json_dumps(self.data, dumps=dumps, **dumps_kwargs)
        script = self.get_root().script
        name = self.get_name()
        code = script._children[name].render()
        call = f"{name}_add({standin})"
        if code.count(call) != 1:
            raise RuntimeError(f"folium's GeoJson script changed: no single {name}_add(…) call")
        script._children[name] = RawHtml(code.replace(call, f"{name}_add({_fill(data)})"))


def _panel(m: folium.Map, *, title: str, notes: Sequence[str], synthetic: bool) -> None:
    """The page's title box (top centre): title, synthetic-data banner and notes."""
    box = render("map/panel.html", title=title, notes=list(notes), synthetic=synthetic,
                 legends=getattr(m, "_gp_legends", []))
    m.get_root().html.add_child(RawHtml(box), name="gp_panel")


def _legend(m: folium.Map, *, key: str, title: str, rows: Sequence[tuple[str, str]],
            breaks: Sequence[float] = (), note: str = "") -> None:
    """A legend box; ``breaks`` are written to ``data-breaks`` for checking.

    Legends are stacked in one column at the bottom left by :func:`_panel`.
    """
    box = Markup(render("map/legend.html", key=key, title=title, rows=list(rows), note=note,
                        breaks=",".join(repr(float(b)) for b in breaks)))
    if not hasattr(m, "_gp_legends"):
        m._gp_legends = []
    m._gp_legends.append(box)


def _base_map(bounds_4326: Sequence[float], *, offline: bool, prefer_canvas: bool,
              notes: list[str]) -> folium.Map:
    minx, miny, maxx, maxy = bounds_4326
    m = folium.Map(location=[(miny + maxy) / 2, (minx + maxx) / 2], zoom_start=12, tiles=None,
                   control_scale=True, prefer_canvas=prefer_canvas)
    # Only Leaflet itself is needed: no markers with icon fonts, no Bootstrap widgets.  Fewer
    # links mean lighter offline pages and fewer requests online.
    m.default_js = [("leaflet", _FOLIUM_JS["leaflet"])]
    m.default_css = [("leaflet_css", _FOLIUM_CSS["leaflet_css"])]
    if np.all(np.isfinite([minx, miny, maxx, maxy])):
        m.fit_bounds([[miny, minx], [maxy, maxx]])

    minimap_layer = None
    if offline:
        notes.append("离线模式：无底图，无鹰眼图 — offline page: no basemap and no minimap "
                     "(both need map tiles from the network).")
    else:
        key = os.environ.get("TIANDITU_KEY", "").strip()
        if key:
            tk = urllib.parse.quote(key, safe="")
            attr = "&copy; 天地图 Tianditu (CGCS2000)"
            vec = TIANDITU_WMTS.format(layer="vec", key=tk)
            folium.TileLayer(vec, name="天地图 Tianditu", attr=attr, subdomains="01234567",
                             max_zoom=18).add_to(m)
            folium.TileLayer(TIANDITU_WMTS.format(layer="cva", key=tk),
                             name="天地图注记 Tianditu labels", attr=attr,
                             subdomains="01234567", overlay=True, max_zoom=18).add_to(m)
            folium.TileLayer("OpenStreetMap", name="OpenStreetMap", show=False).add_to(m)
            minimap_layer = folium.TileLayer(vec, attr=attr, subdomains="01234567")
        else:
            folium.TileLayer("OpenStreetMap", name="OpenStreetMap").add_to(m)
            minimap_layer = folium.TileLayer("OpenStreetMap")
    plugins.Fullscreen(title="全屏 fullscreen", title_cancel="退出全屏 exit fullscreen").add_to(m)
    plugins.MeasureControl(primary_length_unit="meters", secondary_length_unit="kilometers",
                           primary_area_unit="hectares", secondary_area_unit="sqmeters",
                           position="topleft").add_to(m)
    if minimap_layer is not None:
        plugins.MiniMap(tile_layer=minimap_layer, toggle_display=True,
                        position="bottomright").add_to(m)
    return m


class _LayerSearch(plugins.Search):
    """Search by a property over the features of several GeoJSON layers.

    folium's ``Search`` indexes one layer; the building classes are several layers (one per colour
    class), so the features of all of them are gathered into one index group.
    """

    _template = folium.template.Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }}_index = L.featureGroup();
        [{% for l in this.layers %}{{ l.get_name() }}{% if not loop.last %}, {% endif %}{% endfor %}]
            .forEach(function (g) { g.eachLayer(function (f) {
                {{ this.get_name() }}_index.addLayer(f); }); });
        var {{ this.get_name() }} = new L.Control.Search({
            layer: {{ this.get_name() }}_index,
            propertyName: {{ this.search_label|tojson }},
            textPlaceholder: {{ this.placeholder|tojson }},
            textErr: {{ this.text_err|tojson }},
            collapsed: false,
            position: {{ this.position|tojson }},
            marker: false,
            initial: false,
            moveToLocation: function (latlng, title, map) {
                var b = latlng.layer.getBounds ? latlng.layer.getBounds() : null;
                if (b) { map.fitBounds(b, {maxZoom: 18}); } else { map.setView(latlng, 17); }
            }
        });
        {{ this.get_name() }}.on('search:locationfound', function (e) {
            if (e.layer.setStyle) { e.layer.setStyle({color: '#00e5ff', weight: 4}); }
            if (e.layer.openTooltip) { e.layer.openTooltip(); }
        });
        {{ this._parent.get_name() }}.addControl({{ this.get_name() }});
        {% endmacro %}
        """
    )

    def __init__(self, layers: Sequence[folium.GeoJson], *, search_label: str,
                 placeholder: str, position: str = "topleft"):
        super().__init__(layers[0], search_label=search_label, placeholder=placeholder,
                         position=position, geom_type="Polygon")
        self.layers = list(layers)
        self.text_err = "未找到 not found"

    def render(self, **kwargs):
        # Skip Search.render's single-layer property check; JSCSSMixin adds the plugin links.
        super(plugins.Search, self).render(**kwargs)


# ---------------------------------------------------------------------------------------------
# PV map

_PV_FIELDS = ["i", "n", "s", "c", "k", "e", "y", "a"]
_PV_ALIASES = ["编号 id", "名称 name", "街道 street", "类别 category", "装机容量 capacity",
               "年发电量 annual yield", "单位发电量 specific yield", "可用屋顶 usable roof"]
_NOPV_FIELDS = ["i", "n", "s", "c", "r"]
_NOPV_ALIASES = ["编号 id", "名称 name", "街道 street", "类别 category", "原因 reason (no PV)"]


def _pv_properties(pv: pd.DataFrame) -> pd.DataFrame:
    """The shown columns, escaped and formatted, under short keys (keys repeat per feature)."""
    cat = _col(pv, "category").astype("string")
    cat_label = cat.map(CATEGORY_ZH).astype("string").fillna("") + " " + cat.fillna("")
    ident = escape_text(_col(pv, "id"))
    name = escape_text(_col(pv, "name"))
    return pd.DataFrame({
        "i": ident,
        "n": name,
        "s": escape_text(_col(pv, "street")),
        "c": escape_text(cat_label.str.strip()),
        "k": _num(_col(pv, "capacity_kwp"), 1, "kWp"),
        "e": _num(pd.to_numeric(_col(pv, "annual_kwh"), errors="coerce") / 1000, 1, "MWh/yr"),
        "y": _num(_col(pv, "specific_yield_kwh_kwp"), 0, "kWh/kWp"),
        "a": _num(_col(pv, "usable_area_m2"), 0, "m²"),
        "r": escape_text(_col(pv, "reason")),
        "q": (ident + " " + name).str.strip(),
    }, index=pv.index)


def _pv_breaks(pv: pd.DataFrame, color_by: str) -> tuple[list[float], str, callable]:
    if color_by == "capacity_kwp":
        return [20.0, 100.0, 500.0, 2000.0], "kWp", lambda v: f"{v:,.0f}"
    vals = pd.to_numeric(pv.loc[pv["capacity_kwp"] > 0, color_by], errors="coerce").dropna()
    if vals.empty:
        return [], "kWh/kWp", lambda v: f"{v:,.0f}"
    # Quartiles rounded to 10 kWh/kWp: classes that split the district's roofs evenly.
    qs = np.unique(np.round(np.quantile(vals.to_numpy(float), [0.25, 0.5, 0.75]) / 10) * 10)
    return [float(q) for q in qs], "kWh/kWp", lambda v: f"{v:,.0f}"


def _grid_aggregate(rest: gpd.GeoDataFrame, cell_m: float) -> gpd.GeoDataFrame:
    """Sum buildings not drawn into square cells of ``cell_m`` metres (vectorised)."""
    pts = rest.geometry.representative_point()
    ix = np.floor(pts.x.to_numpy() / cell_m).astype(np.int64)
    iy = np.floor(pts.y.to_numpy() / cell_m).astype(np.int64)
    frame = pd.DataFrame({
        "ix": ix, "iy": iy,
        "capacity_kwp": pd.to_numeric(rest["capacity_kwp"], errors="coerce").fillna(0).to_numpy(),
        "annual_kwh": pd.to_numeric(rest["annual_kwh"], errors="coerce").fillna(0).to_numpy(),
    })
    agg = frame.groupby(["ix", "iy"], sort=True).agg(
        buildings=("capacity_kwp", "size"), capacity_kwp=("capacity_kwp", "sum"),
        annual_kwh=("annual_kwh", "sum")).reset_index()
    x0 = agg["ix"].to_numpy() * cell_m
    y0 = agg["iy"].to_numpy() * cell_m
    boxes = shapely.box(x0, y0, x0 + cell_m, y0 + cell_m)
    return gpd.GeoDataFrame(agg, geometry=boxes, crs=rest.crs)


def _choropleth_layer(gdf: gpd.GeoDataFrame, value: str, *, name: str, fields, aliases,
                      props: pd.DataFrame, legend_key: str, legend_title: str, m: folium.Map,
                      unit_fmt, show: bool) -> folium.FeatureGroup | None:
    """A few-feature choropleth (streets, grid cells): one static-style layer per class."""
    if gdf.empty:
        return None
    v = pd.to_numeric(gdf[value], errors="coerce").fillna(0).to_numpy(float)
    qs = np.unique(np.quantile(v, [0.25, 0.5, 0.75])) if len(v) > 3 else np.unique(v)[1:]
    breaks = [float(q) for q in qs if q > 0]
    cls = _classes(v, breaks)
    palette = _YLORRD[-(len(breaks) + 1):] if breaks else _YLORRD[:1]
    props = props.reset_index(drop=True)
    geoms = pd.Series(list(_web_geometry(gdf.geometry, 1.0)))
    # one GeoJSON per class with a static style (Leaflet ignores a per-feature "style" property)
    layer = folium.FeatureGroup(name=name, show=show)
    for i, colour in enumerate(palette):
        sel = cls == i
        if sel.any():
            _static_geojson(_features(props[sel], geoms[sel]), name=f"{name} {i}",
                            control=False, tooltip=_tooltip(fields, aliases),
                            style=_style("#555555", colour, weight=0.8, fill_opacity=0.4)
                            ).add_to(layer)
    edges = [None, *breaks, None]
    rows = [(palette[i], _break_label(edges[i], edges[i + 1], unit_fmt))
            for i in range(len(palette))]
    _legend(m, key=legend_key, title=legend_title, rows=rows, breaks=breaks)
    return layer


_GROUND_COLOURS = {"fishery": "#2b8cbe", "facility_agri": "#74c476", "roadside": "#fd8d3c"}
_GROUND_FIELDS = ["i", "t", "z", "s", "a", "k", "e", "p", "v", "r"]
_GROUND_ALIASES = ["地块 parcel", "类型 type", "管控区 zone", "街道 street", "可用面积 usable area",
                   "装机容量 capacity", "年发电量 annual yield", "静态回收期 payback",
                   "净现值 NPV", "原因 reason (no PV)"]


def ground_layer(m: folium.Map, ground: gpd.GeoDataFrame | None, *,
                 simplify_m: float = 1.0) -> None:
    """Add the ground-mounted PV sites (ponds, facility farmland, roadside strips) to a map.

    One layer per kind (hidden at first) and one for sites without PV; tooltips carry the
    capacity, yield, payback and NPV, or the reason a site gets nothing.  Nothing is added when
    ``ground`` is None or empty.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> g = gpd.GeoDataFrame({"parcel_id": ["P1"], "kind": ["fishery"], "capacity_kwp": [560.0],
    ...                       "annual_kwh": [728000.0], "reason": [""]},
    ...                      geometry=[shapely.box(534000, 4331000, 534100, 4331100)],
    ...                      crs="EPSG:4548")
    >>> m = _base_map(_lonlat_bounds([g]), offline=True, prefer_canvas=True, notes=[])
    >>> ground_layer(m, g)
    >>> page = render_map(m)
    >>> page_features(page), "渔光互补" in page
    (1, True)
    """
    if ground is None or not len(ground):
        return
    from gis.ground import KIND_ZH

    g = _to_metric(ground, "ground_pv")
    kind = _col(g, "kind").astype("string")
    props = pd.DataFrame({
        "i": escape_text(_col(g, "parcel_id")),
        "t": escape_text(kind.map(KIND_ZH).fillna("") + " " + kind.fillna("")),
        "z": escape_text(_col(g, "zone")), "s": escape_text(_col(g, "street")),
        "a": _num(_col(g, "usable_area_m2"), 0, "m²"),
        "k": _num(pd.to_numeric(_col(g, "capacity_kwp"), errors="coerce") / 1000, 2, "MWp"),
        "e": _num(pd.to_numeric(_col(g, "annual_kwh"), errors="coerce") / 1e6, 2, "GWh/yr"),
        "p": _num(_col(g, "payback_years"), 1, "yr"),
        "v": _num(pd.to_numeric(_col(g, "npv_yuan"), errors="coerce") / 1e4, 0, "万元"),
        "r": escape_text(_col(g, "reason")),
    }, index=g.index)
    geoms = pd.Series(list(_web_geometry(g.geometry, simplify_m)), index=g.index)
    has = (pd.to_numeric(_col(g, "capacity_kwp"), errors="coerce").fillna(0) > 0).to_numpy()
    for name, colour in _GROUND_COLOURS.items():
        sel = has & (kind == name).fillna(False).to_numpy(dtype=bool)
        if sel.any():
            _static_geojson(_features(props.loc[sel], geoms[sel]),
                            name=f"地面光伏 ground PV: {KIND_ZH[name]} {name}",
                            style=_style(colour, colour, weight=1.0), show=False,
                            tooltip=_tooltip(_GROUND_FIELDS, _GROUND_ALIASES)).add_to(m)
    if (~has).any():
        _static_geojson(_features(props.loc[~has], geoms[~has]),
                        name="地面光伏 ground PV: 不安装 excluded (reason in tooltip)",
                        style=_style("#666666", _NO_PV, weight=0.4, fill_opacity=0.4),
                        show=False, tooltip=_tooltip(_GROUND_FIELDS, _GROUND_ALIASES)).add_to(m)


def roof_planes_layer(m: folium.Map, planes: gpd.GeoDataFrame | None, notes: list[str], *,
                      max_planes: int = 30_000, simplify_m: float = 0.25) -> None:
    """Draw roof planes (``roof_planes.gpkg``) on a map as one layer, off at start.

    Parameters
    ----------
    m : folium.Map
    planes : geopandas.GeoDataFrame or None
        From :func:`gis.planes.roof_planes`; nothing is drawn when None or empty.
    notes : list of str
        The page's notes; one is added when not every plane is drawn.
    max_planes : int
        At most this many planes are drawn (largest annual yield first).
    simplify_m : float
        Simplification tolerance in the metric CRS [m] (the outlines follow DSM pixels).
    """
    if planes is None or not len(planes):
        return
    planes = _to_metric(planes, "roof_planes")
    annual = pd.to_numeric(planes["annual_kwh"], errors="coerce").fillna(0)
    drawn = planes.loc[annual.sort_values(ascending=False, kind="stable").index[:max_planes]]
    if len(drawn) < len(planes):
        notes.append(f"屋顶面：绘出年发电量最高的 {len(drawn):,} 个（共 {len(planes):,} 个） — roof "
                     f"planes: the {len(drawn):,} with the largest annual yield of {len(planes):,}.")
    tilt = pd.to_numeric(drawn["tilt"], errors="coerce")
    props = pd.DataFrame({
        "i": escape_text(drawn["building_id"]),
        "p": _num(drawn["plane_id"], 0),
        "t": _num(tilt, 0, "°"),
        "z": _num(drawn["azimuth"], 0, "°").where(tilt > 0, "平 flat"),
        "a": _num(drawn["area_m2"], 0, "m²"),
        "u": _num(drawn["usable_area_m2"], 0, "m²"),
        "k": _num(drawn["capacity_kwp"], 1, "kWp"),
        "e": _num(pd.to_numeric(drawn["annual_kwh"], errors="coerce") / 1000, 1, "MWh/yr"),
        "f": _num(drawn["shading_factor"], 2),
        "r": escape_text(drawn["reason"]) if "reason" in drawn else "",
    })
    data = _features(props, _web_geometry(drawn.geometry, simplify_m))
    _static_geojson(data, name="屋顶面 roof planes (DSM)", show=False,
                    style=_style("#08306b", "#6baed6", weight=0.8, fill_opacity=0.35),
                    tooltip=_tooltip(list(props.columns), [
                        "建筑 building", "屋顶面 plane", "坡度 tilt", "朝向 azimuth (180 = S)",
                        "面积 area (sloped)", "可用 usable", "装机容量 capacity",
                        "年发电量 annual yield", "遮挡系数 shading factor",
                        "原因 reason (no PV)"])).add_to(m)


def pv_map(pv: gpd.GeoDataFrame, *, streets: gpd.GeoDataFrame | None = None, top_n: int = 200,
           color_by: str = "capacity_kwp", max_buildings: int = 15_000, grid_m: float = 500.0,
           simplify_m: float = 0.5, offline: bool = False, synthetic: bool = False,
           title: str = "屋顶光伏潜力 Rooftop PV potential",
           ground: gpd.GeoDataFrame | None = None,
           site_panel: bool = True,
           roof_planes: gpd.GeoDataFrame | None = None,
           sites: gpd.GeoDataFrame | None = None,
           sites_csv: str | Path | None = None) -> folium.Map:
    """The rooftop PV map: buildings by class, top sites, per-street potential, search.

    Parameters
    ----------
    pv : geopandas.GeoDataFrame
        ``buildings_pv`` (one row per building, metric CRS): id, name, street, category,
        capacity_kwp [kWp], annual_kwh [kWh/yr], specific_yield_kwh_kwp [kWh/kWp],
        usable_area_m2 [m²], reason.
    streets : geopandas.GeoDataFrame, optional
        Admin units with ``name``; buildings are summed by their ``street`` column.
    top_n : int
        Number of top sites (largest annual yield) marked with a point layer.
    color_by : {"capacity_kwp", "specific_yield_kwh_kwp"}
        What the building colour classes show.
    max_buildings : int
        At most this many buildings are drawn (those with the largest annual yield); the rest are
        summed on a ``grid_m`` grid, and the page says so.
    grid_m : float
        Cell size of that grid [m].
    simplify_m : float
        Simplification tolerance applied in the metric CRS before reprojecting [m].
    offline : bool
        No basemap and no minimap (they need tiles from the network).
    synthetic : bool
        Show the "synthetic demo data" banner.
    title : str
        Page title.
    ground : geopandas.GeoDataFrame, optional
        ``ground_pv`` sites, drawn by :func:`ground_layer`.
    site_panel : bool
        Add the site-list panel (filter, rank, highlight, download the ranked sites as
        ``gis-planner sites`` writes them; :mod:`gis.sitepanel`).
    roof_planes : geopandas.GeoDataFrame, optional
        Roof planes from a surface model, drawn as one layer (:func:`roof_planes_layer`).
    sites, sites_csv : optional
        The ranked site list (``gis.sites.select_sites(pv)``) and its ``.csv`` export when
        already made (a run's exports): the panel reuses them (:func:`gis.sitepanel.site_table`).

    Returns
    -------
    folium.Map

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> pv = gpd.GeoDataFrame(
    ...     {"id": ["A", "B"], "name": ["<b>厂房</b>", "学校"], "street": ["金桥街道"] * 2,
    ...      "category": ["industrial", "public"], "capacity_kwp": [120.0, 0.0],
    ...      "annual_kwh": [156000.0, 0.0], "specific_yield_kwh_kwp": [1300.0, 1300.0],
    ...      "usable_area_m2": [700.0, 0.0], "reason": ["", "roof too small"]},
    ...     geometry=[shapely.box(534000, 4331000, 534040, 4331030),
    ...               shapely.box(534100, 4331000, 534104, 4331004)], crs="EPSG:4548")
    >>> page = render_map(pv_map(pv, offline=True, synthetic=True))
    >>> page_features(page), "厂房" in page, "<b>厂房" in page  # two roofs and one top site; escaped
    (3, True, False)
    """
    _check_pv_input(pv, color_by)
    sites_source = pv  # the site list as the CLI reads it, in the layer's own CRS
    pv = _to_metric(pv, "buildings_pv")
    notes: list[str] = []
    annual = pd.to_numeric(pv["annual_kwh"], errors="coerce").fillna(0)
    order = annual.sort_values(ascending=False, kind="stable").index
    bounds = _lonlat_bounds([pv]) if len(pv) else [np.nan] * 4
    m = _base_map(bounds, offline=offline, prefer_canvas=True, notes=notes)

    # The grid goes first so that the drawn buildings (and their tooltips) stay on top.
    _pv_grid_layer(m, pv, order, max_buildings=max_buildings, grid_m=grid_m, notes=notes)
    class_layers = _pv_class_layers(m, pv, order[:max_buildings], color_by=color_by,
                                    simplify_m=simplify_m)
    _pv_top_sites_layer(m, pv, order, top_n=top_n)
    _pv_street_layer(m, pv, streets, notes=notes)
    ground_layer(m, ground)
    roof_planes_layer(m, roof_planes, notes)
    if site_panel:
        from gis import sitepanel

        sitepanel.add_site_panel(m, sites_source, ranked=sites, csv_file=sites_csv)

    if class_layers:
        _LayerSearch(class_layers, search_label="q",
                     placeholder="搜索编号或名称 search id or name").add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    _panel(m, title=title, notes=notes, synthetic=synthetic)
    return m


def _check_pv_input(pv: pd.DataFrame, color_by: str) -> None:
    if color_by not in ("capacity_kwp", "specific_yield_kwh_kwp"):
        raise InputError(Problem("unknown colour measure for the PV map", value=color_by,
                                 hint="use 'capacity_kwp' or 'specific_yield_kwh_kwp'"))
    missing = [c for c in ("capacity_kwp", "annual_kwh", "geometry") if c not in pv.columns]
    if missing:
        raise InputError(Problem("buildings_pv lacks columns the PV map needs", layer="buildings_pv",
                                 value=missing))


def _pv_grid_layer(m: folium.Map, pv: gpd.GeoDataFrame, order: pd.Index, *, max_buildings: int,
                   grid_m: float, notes: list[str]) -> None:
    """The buildings beyond the page's budget (``order[max_buildings:]``), summed on a grid."""
    # only the columns the grid sums: not a copy of every column of 40 000 buildings
    rest = pv.loc[order[max_buildings:], ["capacity_kwp", "annual_kwh", pv.geometry.name]]
    if not len(rest):
        return
    n_total, n_drawn = len(pv), len(pv) - len(rest)
    cells = _grid_aggregate(rest, grid_m)
    cprops = pd.DataFrame({
        "b": _num(cells["buildings"], 0, "栋 buildings"),
        "k": _num(cells["capacity_kwp"], 1, "kWp"),
        "e": _num(cells["annual_kwh"] / 1000, 1, "MWh/yr"),
    })
    layer = _choropleth_layer(
        cells, "annual_kwh", name=f"其余建筑汇总 other buildings ({grid_m:.0f} m grid)",
        fields=["b", "k", "e"], aliases=["建筑数 buildings", "装机容量 capacity",
                                         "年发电量 annual yield"],
        props=cprops, legend_key="grid", legend_title="网格年发电量 grid yield (other buildings)",
        m=m, unit_fmt=lambda v: f"{v / 1000:,.0f} MWh", show=True)
    if layer is not None:
        layer.add_to(m)
    notes.append(
        f"绘出年发电量最高的 {n_drawn:,} 栋建筑（共 {n_total:,} 栋），其余 {len(rest):,} 栋按 "
        f"{grid_m:.0f} m 网格汇总 — drawn: the {n_drawn:,} buildings with the largest annual "
        f"yield of {n_total:,}; the other {len(rest):,} are summed on a {grid_m:.0f} m grid."
    )


def _pv_class_layers(m: folium.Map, pv: gpd.GeoDataFrame, drawn_idx: pd.Index, *, color_by: str,
                     simplify_m: float) -> list[folium.GeoJson]:
    """The drawn buildings, one static-style layer per colour class plus one for "no PV"."""
    drawn = pv.loc[drawn_idx]
    props = _pv_properties(drawn)
    geoms = pd.Series(list(_web_geometry(drawn.geometry, simplify_m)), index=drawn.index)
    has_pv = (pd.to_numeric(drawn["capacity_kwp"], errors="coerce").fillna(0) > 0).to_numpy()
    breaks, unit, fmt = _pv_breaks(pv, color_by)
    values = pd.to_numeric(drawn[color_by], errors="coerce").fillna(0).to_numpy(float)
    cls = _classes(values, breaks)
    palette = _YLORRD[-(len(breaks) + 1):] if breaks else _YLORRD[-1:]
    edges = [None, *breaks, None]
    class_layers: list[folium.GeoJson] = []
    legend_rows: list[tuple[str, str]] = []
    measure_zh = "装机容量 capacity" if color_by == "capacity_kwp" else "单位发电量 specific yield"
    for i, colour in enumerate(palette):
        sel = has_pv & (cls == i)
        label = f"{_break_label(edges[i], edges[i + 1], fmt)} {unit}"
        legend_rows.append((colour, label))
        if not sel.any():
            continue
        data = _features(props.loc[sel, [*_PV_FIELDS, "q"]], geoms[sel])
        layer = _static_geojson(data, name=f"建筑 buildings: {label}",
                                style=_style("#7a3b00", colour, weight=0.5),
                                tooltip=_tooltip(_PV_FIELDS, _PV_ALIASES))
        layer.add_to(m)
        class_layers.append(layer)
    legend_rows.append((_NO_PV, "无光伏 no PV (reason in tooltip)"))
    if (~has_pv).any():
        data = _features(props.loc[~has_pv, [*_NOPV_FIELDS, "q"]], geoms[~has_pv])
        layer = _static_geojson(data, name="建筑 buildings: 无光伏 no PV",
                                style=_style("#666666", _NO_PV, weight=0.4, fill_opacity=0.5),
                                tooltip=_tooltip(_NOPV_FIELDS, _NOPV_ALIASES))
        layer.add_to(m)
        class_layers.append(layer)
    _legend(m, key="pv", title=f"{measure_zh} [{unit}]", rows=legend_rows, breaks=breaks)
    return class_layers


def _pv_top_sites_layer(m: folium.Map, pv: gpd.GeoDataFrame, order: pd.Index, *,
                        top_n: int) -> None:
    """Top sites: a point per building, largest annual yield first."""
    top = pv.loc[order[:top_n]]
    top = top[pd.to_numeric(top["capacity_kwp"], errors="coerce").fillna(0) > 0]
    if not len(top):
        return
    tprops = _pv_properties(top)[["i", "n", "s", "c", "k", "e"]]
    tprops.insert(0, "rk", np.arange(1, len(top) + 1))
    pts = _web_geometry(top.geometry.representative_point(), 0.0)
    _static_geojson(
        _features(tprops, pts), name=f"前 {len(top)} 个站点 top {len(top)} sites", style=None,
        tooltip=_tooltip(["rk", "i", "n", "s", "c", "k", "e"],
                         ["排名 rank", "编号 id", "名称 name", "街道 street", "类别 category",
                          "装机容量 capacity", "年发电量 annual yield"]),
        marker=folium.CircleMarker(radius=6, color="#08306b", weight=2, fill=True,
                                   fill_color="#4292c6", fill_opacity=0.9),
    ).add_to(m)


def _pv_street_layer(m: folium.Map, pv: gpd.GeoDataFrame, streets: gpd.GeoDataFrame | None, *,
                     notes: list[str]) -> None:
    """Per-street potential over all buildings, drawn or not."""
    if streets is None or not len(streets) or "street" not in pv.columns:
        notes.append("无街道图层，未绘街道汇总 — no streets layer: no per-street potential.")
        return
    st = _to_metric(streets, "streets")
    st = st.to_crs(pv.crs) if st.crs != pv.crs else st
    sums = pd.DataFrame({
        "street": pv["street"].astype("string"),
        "capacity_kwp": pd.to_numeric(pv["capacity_kwp"], errors="coerce").fillna(0),
        "annual_kwh": pd.to_numeric(pv["annual_kwh"], errors="coerce").fillna(0),
        "shading_loss_kwh": pd.to_numeric(_col(pv, "shading_loss_kwh"),
                                          errors="coerce").fillna(0),
    }).groupby("street").agg(buildings=("capacity_kwp", "size"),
                             with_pv=("capacity_kwp", lambda s: int((s > 0).sum())),
                             capacity_kwp=("capacity_kwp", "sum"),
                             annual_kwh=("annual_kwh", "sum"),
                             shading_loss_kwh=("shading_loss_kwh", "sum"))
    joined = st[["name", "geometry"]].copy()
    joined["name"] = joined["name"].astype("string")
    joined = joined.join(sums, on="name").fillna(
        {"buildings": 0, "with_pv": 0, "capacity_kwp": 0.0, "annual_kwh": 0.0,
         "shading_loss_kwh": 0.0})
    sprops = pd.DataFrame({
        "n": escape_text(joined["name"]),
        "b": _num(joined["buildings"], 0, "栋 buildings"),
        "p": _num(joined["with_pv"], 0, "栋 buildings"),
        "k": _num(joined["capacity_kwp"] / 1000, 2, "MWp"),
        "e": _num(joined["annual_kwh"] / 1e6, 2, "GWh/yr"),
        "l": _num(joined["shading_loss_kwh"] / 1e6, 2, "GWh/yr"),
    })
    layer = _choropleth_layer(
        joined, "annual_kwh", name="街道潜力 potential by street", fields=list(sprops.columns),
        aliases=["街道 street", "建筑数 buildings", "可装光伏 buildings with PV",
                 "装机容量 capacity", "年发电量 annual yield",
                 "遮挡损失 lost to shading by neighbours"],
        props=sprops, legend_key="streets", legend_title="街道年发电量 street yield",
        m=m, unit_fmt=lambda v: f"{v / 1e6:,.1f} GWh", show=False)
    if layer is not None:
        layer.add_to(m)


# ---------------------------------------------------------------------------------------------
# Ecology map


def _target_breaks(targets: dict, kind: str) -> list[float]:
    """Target values for one measure, from target ids ("bluegreen-…", "forest-…")."""
    vals = []
    for tid, value in (targets or {}).items():
        t = str(tid).lower()
        if value is None:
            continue
        if kind == "bluegreen" and ("bluegreen" in t or "blue-green" in t):
            vals.append(float(value))
        if kind == "forest" and t.startswith("forest") and "stock" not in t:
            vals.append(float(value))
    return sorted(set(vals))


def _red_to_green(n: int) -> list[str]:
    # RdYlGn (Brewer 2002): below every target red, above every target green.
    return {1: ["#1a9850"], 2: ["#d73027", "#1a9850"], 3: ["#d73027", "#fee08b", "#1a9850"],
            4: ["#d73027", "#fc8d59", "#d9ef8b", "#1a9850"]}.get(
        n, ["#d73027", "#fc8d59", "#fee08b", "#d9ef8b", "#91cf60", "#1a9850"][:max(n, 1)])


def _lonlat_box(crs, bounds) -> tuple[float, float, float, float]:
    """``transform_bounds`` of one box; near the antimeridian through the transformer that
    knows its target CRS is geographic (PROJ then handles the wrap)."""
    from gis import io

    box = io.lonlat_transformer(crs).transform_bounds(*bounds)
    if not np.all(np.abs(np.asarray(box)[[0, 2]]) < 179.0):
        box = io.transformer(crs, 4326).transform_bounds(*bounds)
    return box


def _lonlat_bounds(frames) -> list[float]:
    """WGS84 bounds of layers from their bounding boxes (not by reprojecting every feature)."""

    boxes = np.array([_lonlat_box(g.crs, g.total_bounds) for g in frames])
    return [boxes[:, 0].min(), boxes[:, 1].min(), boxes[:, 2].max(), boxes[:, 3].max()]


def _share_column(zones: pd.DataFrame, column: str) -> pd.Series:
    """A zone share on the basis the scorecard uses: official areas where the run has them."""
    official = f"{column}_official"
    if official in zones and zones[official].notna().any():
        return pd.to_numeric(zones[official], errors="coerce").fillna(
            pd.to_numeric(_col(zones, column), errors="coerce"))
    return _col(zones, column)


def _zone_rows(zones: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Rows that are zone features (with geometry), not the per-level summary rows."""
    z = zones[zones.geometry.notna() & ~zones.geometry.is_empty]
    if "kind" in z:  # street rows are roll-ups, not zones the targets speak of
        z = z[z["kind"].astype("string").fillna("zone") != "street"]
    per_level = z.groupby("level")["zone"].transform("size")
    summary = (z["zone"].astype("string") == z["level"].astype("string")) & (per_level > 1)
    return z[~summary.to_numpy()]



# Aggregated land use: the tooltip fields of the dissolved shapes and of the generalised grid.
_AGG_ALIASES = {"n": "地类 group", "p": "地块数 parcels", "a": "面积 area",
                "x": "网格 cells", "s": "本类面积 area of this group in these cells"}
#: Cell sizes tried for the generalised grid, smallest first [m].
_GRID_SIZES_M = (10.0, 20.0, 25.0, 50.0, 100.0, 200.0, 250.0, 500.0, 1000.0, 2000.0, 5000.0)
#: Vertices per parcel allowed on average: a page at the parcel budget drawn parcel by parcel
#: carries about this many (the demo's parcels have 8–12), so the aggregate is no heavier.
_COORDS_PER_PARCEL = 10


def _group_label(group: pd.Series) -> pd.Series:
    labels = {k: v[0] for k, v in LANDUSE_GROUPS.items()}
    return escape_text(group.astype("string").map(labels).fillna(group.astype("string")))


def _landuse_aggregate(lu: gpd.GeoDataFrame, group: pd.Series, *, max_parcels: int,
                       grid_m: float, simplify_m: float) -> tuple[gpd.GeoDataFrame, str]:
    """Land use too large to draw parcel by parcel, as fewer shapes per group.

    First the parcels of one group are dissolved within square cells of ``grid_m`` metres (a
    parcel goes to the cell of its representative point, so a parcel stays whole) and simplified
    with ``max(simplify_m, grid_m / 100)`` metres.  Real land use is spatially clustered and
    this keeps every parcel's outline at a fraction of the weight.  When the result still has
    more than ``_COORDS_PER_PARCEL × max_parcels`` vertices (groups mixed at random, parcel by
    parcel), the land use is generalised instead: on the coarsest grid needed to stay within
    ``max_parcels`` cells, each cell is drawn in the group with the largest area in it (exact
    areas of parcel ∩ cell); cells less than half covered by parcels are left out; cells of one
    group are merged by blocks of 10 × 10 cells.

    Returns
    -------
    (geopandas.GeoDataFrame, str)
        Shapes with ``group`` and escaped text columns (``n``, ``p``, ``a`` or ``n``, ``x``,
        ``s``), in the metric CRS of ``lu``; and the note for the page.
    """
    n = len(lu)
    geoms = lu.geometry.values
    area_m2 = shapely.area(np.asarray(geoms))
    pts = shapely.point_on_surface(np.asarray(geoms))
    frame = pd.DataFrame({
        "ix": np.floor(shapely.get_x(pts) / grid_m).astype(np.int64),
        "iy": np.floor(shapely.get_y(pts) / grid_m).astype(np.int64),
        "group": group.to_numpy(),
        "parcels": np.ones(n, dtype=np.int64),
        "area_m2": area_m2,
    })
    # "disjoint_subset" gives the same union as "unary" for any input, faster for parcels that
    # mostly do not overlap.
    dissolved, union = dissolve_sum(frame, np.asarray(geoms), ["ix", "iy", "group"],
                                    ["parcels", "area_m2"], method="disjoint_subset")
    tolerance = max(simplify_m, grid_m / 100)
    dissolved = gpd.GeoDataFrame(dissolved, geometry=shapely.simplify(
        union, tolerance, preserve_topology=True), crs=lu.crs)
    if int(shapely.get_num_coordinates(dissolved.geometry.values).sum()) <= (
            _COORDS_PER_PARCEL * max_parcels):
        out = gpd.GeoDataFrame({
            "group": dissolved["group"].astype("string"),
            "n": _group_label(dissolved["group"]),
            "p": _num(dissolved["parcels"], 0),
            "a": _num(dissolved["area_m2"] / 1e4, 2, "ha"),
        }, geometry=dissolved.geometry.values, crs=lu.crs)
        note = (f"用地：{n:,} 个地块按 {grid_m:g} m 网格内同类合并为 {len(out):,} 个图斑 — land use: "
                f"{n:,} parcels (more than the page's {max_parcels:,}) dissolved by group within "
                f"{grid_m:g} m cells into {len(out):,} shapes, simplified by {tolerance:g} m; "
                "parcel ids are in parcels.csv.")
        return out, note
    return _landuse_dominant_grid(geoms, group, area_m2, max_parcels=max_parcels, n=n)


def _landuse_dominant_grid(geoms, group: pd.Series, area_m2: np.ndarray, *, max_parcels: int,
                           n: int) -> tuple[gpd.GeoDataFrame, str]:
    """Each cell in the group with the largest area in it (see :func:`_landuse_aggregate`)."""
    total = float(area_m2.sum())
    size = next((s for s in _GRID_SIZES_M if total / s**2 <= max_parcels), _GRID_SIZES_M[-1])
    arr = np.asarray(geoms)
    b = shapely.bounds(arr)
    ix0 = np.floor(b[:, 0] / size).astype(np.int64)
    iy0 = np.floor(b[:, 1] / size).astype(np.int64)
    nx = np.floor(b[:, 2] / size).astype(np.int64) - ix0 + 1
    ny = np.floor(b[:, 3] / size).astype(np.int64) - iy0 + 1
    # every (parcel, cell) pair of a parcel's bounding box, without a loop over parcels
    k = nx * ny
    rep = np.repeat(np.arange(len(arr)), k)
    off = np.arange(int(k.sum())) - np.repeat(np.cumsum(k) - k, k)
    cx = ix0[rep] + off % nx[rep]
    cy = iy0[rep] + off // nx[rep]
    boxes = shapely.box(cx * size, cy * size, (cx + 1) * size, (cy + 1) * size)
    piece = shapely.area(shapely.intersection(arr[rep], boxes))
    pairs = pd.DataFrame({"cx": cx, "cy": cy, "group": group.to_numpy()[rep], "m2": piece})
    by = pairs[pairs["m2"] > 0].groupby(["cx", "cy", "group"], sort=True)["m2"].sum()
    by = by.reset_index()
    covered = by.groupby(["cx", "cy"])["m2"].transform("sum")
    # the largest group of each cell; ties go to the group first in alphabetical order
    top = (by.assign(covered=covered)
           .sort_values(["cx", "cy", "m2", "group"], ascending=[True, True, False, True],
                        kind="stable")
           .drop_duplicates(["cx", "cy"]))
    top = top[top["covered"] >= 0.5 * size**2]
    tx, ty = top["cx"].to_numpy(), top["cy"].to_numpy()
    cells = pd.DataFrame({
        "bx": tx // 10, "by": ty // 10,
        "group": top["group"].to_numpy(), "cells": np.ones(len(top), dtype=np.int64),
        "m2": top["m2"].to_numpy(),
    })
    # the cells tile exactly (integer multiples of the size), so a coverage union is exact
    merged, union = dissolve_sum(
        cells, shapely.box(tx * size, ty * size, (tx + 1) * size, (ty + 1) * size),
        ["bx", "by", "group"], ["cells", "m2"], method="coverage")
    out = gpd.GeoDataFrame({
        "group": merged["group"].astype("string"),
        "n": _group_label(merged["group"]),
        "x": _num(merged["cells"], 0, f"× {size:g} m"),
        "s": _num(merged["m2"] / 1e4, 2, "ha"),
    }, geometry=shapely.simplify(union, 0.01), crs=geoms.crs)
    note = (f"用地：{n:,} 个地块概括为 {size:g} m 网格，每格显示面积最大的地类 — land use: "
            f"{n:,} parcels (more than the page's {max_parcels:,}, too mixed to dissolve) "
            f"generalised to a {size:g} m grid: each cell drawn in the group with the largest "
            "area in it (cells less than half covered left out); parcel ids are in parcels.csv.")
    return out, note


def ecology_map(zones: gpd.GeoDataFrame, landuse: gpd.GeoDataFrame,
                candidates: gpd.GeoDataFrame | None, *, targets: dict, offline: bool = False,
                synthetic: bool = False, simplify_m: float = 1.0, max_parcels: int = 25_000,
                landuse_grid_m: float = 250.0,
                title: str = "生态屏障 Green ecological barrier",
                site_panel: bool = True, network=None,
                candidates_csv: str | Path | None = None) -> folium.Map:
    """The ecology map: zones by blue-green share and forest coverage, land use, candidates.

    Parameters
    ----------
    zones : geopandas.GeoDataFrame
        The zones table (one row per zone feature with geometry, plus per-level rows):
        zone, level, area_ha [ha], bluegreen_share [0–1], forest_coverage [0–1], forest_ha [ha],
        stock_m3 [m³].
    landuse : geopandas.GeoDataFrame
        Parcels with ``group`` (blue | forest | green | cropland | construction | other),
        id, code, name_zh, area_ha [ha].
    candidates : geopandas.GeoDataFrame or None
        Afforestation candidates: id, code, name_zh, area_ha [ha], rank, cumulative_ha [ha].
    targets : dict
        Target id → target value (fractions).  Ids containing "bluegreen" set the breaks of the
        blue-green legend, ids starting with "forest" (not "stock") those of forest coverage.
    offline, synthetic, simplify_m, title
        As for :func:`pv_map`.
    max_parcels : int
        Parcel budget of the page.  Up to this many parcels are drawn one by one (the full demo
        district, about 20 000 parcels, is); above it the land use is drawn aggregated (see
        :func:`_landuse_aggregate`) and the page says how.  Zones and candidates are always
        drawn exactly.
    landuse_grid_m : float
        Cell size within which parcels of one group are dissolved when aggregated [m].
    site_panel : bool
        Add the afforestation-list panel (filter, order, highlight, download the candidates as
        ``afforestation.csv`` has them; :mod:`gis.sitepanel`).
    network : gis.network.NetworkResult, optional
        Patches by dPC, corridors and their gaps, bridging candidates
        (:func:`gis.network.add_map_layers`).
    candidates_csv : str or Path, optional
        The candidates' ``.csv`` export when already written (``afforestation.csv``), reused by
        the panel (:func:`gis.sitepanel.list_text`).

    Returns
    -------
    folium.Map
    """
    zones = _to_metric(zones, "zones")
    notes: list[str] = []
    frames = [g for g in (zones, landuse, candidates) if g is not None and len(g)]
    bounds = _lonlat_bounds(frames) if frames else [np.nan] * 4
    m = _base_map(bounds, offline=offline, prefer_canvas=False, notes=notes)

    # Land use first so that zones and candidates stay on top.
    _landuse_layers(m, landuse, max_parcels=max_parcels, grid_m=landuse_grid_m,
                    simplify_m=simplify_m, notes=notes)
    _zone_layers(m, zones, targets=targets, simplify_m=simplify_m)
    _candidate_layer(m, candidates, simplify_m=simplify_m, notes=notes)
    if site_panel and candidates is not None and len(candidates):
        from gis import sitepanel

        sitepanel.add_afforestation_panel(m, candidates, csv_file=candidates_csv)

    if network is not None:
        from gis.network import add_map_layers

        add_map_layers(m, network, simplify_m=simplify_m, notes=notes)
    folium.LayerControl(collapsed=False).add_to(m)
    _panel(m, title=title, notes=notes, synthetic=synthetic)
    return m


def _landuse_layers(m: folium.Map, landuse: gpd.GeoDataFrame | None, *, max_parcels: int,
                    grid_m: float, simplify_m: float, notes: list[str]) -> None:
    """Land use: one toggle per group, parcel by parcel or aggregated past ``max_parcels``."""
    if landuse is None or not len(landuse):
        return
    lu = _to_metric(landuse, "landuse")
    lu = lu[lu.geometry.notna() & ~lu.geometry.is_empty]
    group = _col(lu, "group").astype("string").fillna("other")
    if len(lu) <= max_parcels:
        lprops = pd.DataFrame({
            "i": escape_text(_col(lu, "id")), "c": escape_text(_col(lu, "code")),
            "n": escape_text(_col(lu, "name_zh")),
            "a": _num(_col(lu, "area_ha") if "area_ha" in lu else lu.geometry.area / 1e4,
                      2, "ha"),
        }, index=lu.index)
        lgroup = group.to_numpy()
        lgeoms = pd.Series(list(_web_geometry(lu.geometry, simplify_m)), index=lu.index)
        lfields, laliases = ["i", "c", "n", "a"], ["编号 id", "地类编码 code", "地类 class",
                                                   "面积 area"]
        lnote = ""
        outline = "#555555"
    else:
        agg, lnote = _landuse_aggregate(lu, group, max_parcels=max_parcels,
                                        grid_m=grid_m, simplify_m=simplify_m)
        lgroup = agg["group"].to_numpy()
        lprops = agg.drop(columns=["group", "geometry"])
        lgeoms = pd.Series(list(_web_geometry(agg.geometry, 0.0)), index=agg.index)
        lfields = list(lprops.columns)
        laliases = [_AGG_ALIASES[f] for f in lfields]
        # outlined in their own colour: the edges of aggregated shapes are cell edges, not
        # parcel boundaries, and would draw a misleading grid
        outline = None
        notes.append(lnote)
    rows = []
    for key, (label, colour, show) in LANDUSE_GROUPS.items():
        sel = lgroup == key
        rows.append((colour, label))
        if not sel.any():
            continue
        fg = folium.FeatureGroup(name=f"用地 land use: {label}", show=show)
        _static_geojson(_features(lprops[sel], lgeoms[sel]), name=label,
                        control=False, style=_style(outline or colour, colour, weight=0.3,
                                                    fill_opacity=0.6),
                        tooltip=_tooltip(lfields, laliases)).add_to(fg)
        fg.add_to(m)
    _legend(m, key="landuse", title="用地 land use", rows=rows,
            note=lnote.split(" — ")[0] if lnote else "")


_ZONE_ALIASES = ["分区 zone", "级别 level", "面积 area", "蓝绿空间占比 blue-green share",
                 "森林覆盖率 forest coverage", "林地 forest", "森林蓄积量 forest stock"]


def _zone_layers(m: folium.Map, zones: gpd.GeoDataFrame, *, targets: dict,
                 simplify_m: float) -> None:
    """Zones by blue-green share and by forest coverage: classes whose edges are the targets."""
    zf = _zone_rows(zones)
    if not len(zf):
        return
    zf = zf.sort_values("area_ha", ascending=False, kind="stable") if "area_ha" in zf else zf
    level = _col(zf, "level").astype("string")
    zprops = pd.DataFrame({
        "z": escape_text(_col(zf, "zone")),
        "l": escape_text(level.map(LEVEL_ZH).astype("string").fillna("") + " " + level),
        "a": _num(_col(zf, "area_ha"), 1, "ha"),
        "b": _pct(_share_column(zf, "bluegreen_share")),
        "f": _pct(_share_column(zf, "forest_coverage")),
        "h": _num(_col(zf, "forest_ha"), 1, "ha"),
        "s": _num(_col(zf, "stock_m3"), 0, "m³"),
    }, index=zf.index)
    zgeoms = pd.Series(list(_web_geometry(zf.geometry, simplify_m)), index=zf.index)
    zfields = list(zprops.columns)
    for key, column, label, show in (
        ("bluegreen", "bluegreen_share", "蓝绿空间占比 blue-green share", True),
        ("forest", "forest_coverage", "森林覆盖率 forest coverage", False),
    ):
        breaks = _target_breaks(targets, key)
        vals = pd.to_numeric(_share_column(zf, column), errors="coerce").to_numpy(float)
        cls = _classes(np.nan_to_num(vals, nan=-1.0), breaks)
        palette = _red_to_green(len(breaks) + 1)
        edges = [None, *breaks, None]
        fg = folium.FeatureGroup(name=f"分区 zones: {label}", show=show)
        rows = []
        for i, colour in enumerate(palette):
            text = _break_label(edges[i], edges[i + 1], lambda v: f"{v * 100:g} %")
            rows.append((colour, text))
            sel = (cls == i) & np.isfinite(vals)
            if sel.any():
                _static_geojson(_features(zprops[sel], zgeoms[sel]),
                                name=f"{label} {text}", control=False,
                                style=_style(colour, colour, weight=2.5, fill_opacity=0.25),
                                tooltip=_tooltip(zfields, _ZONE_ALIASES)).add_to(fg)
        named = [f"{tid} = {float(v) * 100:g} %" for tid, v in (targets or {}).items()
                 if v is not None and float(v) in breaks]
        fg.add_to(m)
        _legend(m, key=key, title=f"分区 zones: {label}",
                note=f"目标 targets: {', '.join(named) or '–'}", rows=rows, breaks=breaks)


def _candidate_layer(m: folium.Map, candidates: gpd.GeoDataFrame | None, *, simplify_m: float,
                     notes: list[str]) -> None:
    """Afforestation candidates, searchable by parcel id."""
    if candidates is None or not len(candidates):
        notes.append("无造林候选地块 — no afforestation candidates.")
        return
    cd = _to_metric(candidates, "candidates")
    cprops = pd.DataFrame({
        "rk": pd.to_numeric(_col(cd, "rank"), errors="coerce").astype("Int64").astype(
            "string").fillna("–"),
        "i": escape_text(_col(cd, "id")), "c": escape_text(_col(cd, "code")),
        "n": escape_text(_col(cd, "name_zh")), "a": _num(_col(cd, "area_ha"), 2, "ha"),
        "u": _num(_col(cd, "cumulative_ha"), 1, "ha"),
    }, index=cd.index)
    cprops["q"] = cprops["i"]
    cgeoms = _web_geometry(cd.geometry, simplify_m)
    layer = _static_geojson(
        _features(cprops, cgeoms), name="造林候选地块 afforestation candidates",
        style=_style("#c51b7d", "#de77ae", weight=2, fill_opacity=0.35, dash="4 3"),
        tooltip=_tooltip(["rk", "i", "c", "n", "a", "u"],
                         ["排名 rank", "编号 id", "地类编码 code", "地类 class", "面积 area",
                          "累计面积 cumulative area"]))
    layer.add_to(m)
    _LayerSearch([layer], search_label="q", placeholder="搜索地块编号 search parcel id").add_to(m)


# ---------------------------------------------------------------------------------------------
# Saving


def render_map(m: folium.Map, *, offline: bool = False) -> str:
    """The map's full HTML page; with ``offline`` every script and style sheet is inlined."""
    return _filled(*_render_parts(m, offline=offline))


def _render_parts(m: folium.Map, *, offline: bool = False) -> tuple[str, dict[str, str]]:
    """The page with tokens in place of its large texts, and those texts (see :class:`_Fills`)."""
    if offline and any(isinstance(c, (folium.TileLayer, plugins.MiniMap))
                       for c in m._children.values()):
        raise ValueError("this map loads tiles from the network; build it with offline=True "
                         "before saving it offline")
    # Compact JSON with UTF-8 text (not \\u escapes) roughly halves the embedded data; the filter
    # still escapes < > & ' so no value can end the script element.  Scoped to this render.
    env = folium.GeoJson._template.environment
    fills = _Fills()
    with _RENDER_LOCK:  # the JSON settings are folium's, shared by every thread
        saved = env.policies["json.dumps_kwargs"]
        env.policies["json.dumps_kwargs"] = dict(_PAGE_JSON)
        token = _FILLS.set(fills)
        try:
            with _templates_once():
                page = m.get_root().render()
        finally:
            _FILLS.reset(token)
            env.policies["json.dumps_kwargs"] = saved
    page = _stable_ids(page)
    if offline:
        from gis._assets import inline

        page = inline(page)
    return page, fills.texts


def _stable_ids(page: str) -> str:
    """Replace folium's random element ids (uuid4 hex) by ids numbered in order of appearance.

    The same inputs then give the same page, byte for byte, so two runs can be compared.
    """
    import re

    ids: dict[str, str] = {}

    def number(match: re.Match) -> str:
        return "_" + ids.setdefault(match.group(1), f"{len(ids) + 1:032x}")

    # a pattern starting with the literal "_" is searched for that character first: five times
    # as fast over a page of several MB as a look-behind
    return re.sub(r"_([0-9a-f]{32})(?![0-9a-f])", number, page)


def save_map(m: folium.Map, path: str | Path, *, offline: bool = False) -> Path:
    """Write the map page atomically.

    A page larger than :data:`gis.sitepanel.PAGE_BUDGET_BYTES` with its site tables gets them
    in ``<stem>.<key>.js`` files beside it (written first), which it loads as scripts.

    Parameters
    ----------
    m : folium.Map
    path : str or Path
        Output ``.html`` file.
    offline : bool
        Inline every JavaScript and CSS asset (see :mod:`gis._assets`).

    Returns
    -------
    Path
    """
    from gis import sitepanel
    from gis.io import write_text

    # a page past the size budget keeps its site tables in script files beside it; the size
    # is counted and the tables moved while the page holds tokens for its large texts
    page, texts = _render_parts(m, offline=offline)
    size = len(page.encode("utf-8")) + sum(len(v.encode("utf-8")) - len(k.encode("utf-8"))
                                           for k, v in texts.items())
    page, scripts = sitepanel.split_to_budget(page, path, budget=sitepanel.PAGE_BUDGET_BYTES,
                                              size=size)
    for script, text in scripts.items():
        write_text(script, _filled(text, texts))
    return write_text(path, _filled(page, texts))


def page_features(page: str) -> int:
    """Number of GeoJSON features embedded in a rendered page (for checks and reports).

    Examples
    --------
    >>> page_features('{"type":"FeatureCollection","features":[{"type":"Feature"},{"type":"Feature"}]}')
    2
    """
    return page.count('"type": "Feature"') + page.count('"type":"Feature"')


__all__ = [
    "CATEGORY_ZH",
    "LANDUSE_GROUPS",
    "LEVEL_ZH",
    "ecology_map",
    "escape_text",
    "page_features",
    "pv_map",
    "render_map",
    "save_map",
]

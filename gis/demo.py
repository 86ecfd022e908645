"""The demo district: a synthetic district modelled on Dongli District, Tianjin (东丽区).

Everything here is invented.  Only the frame is Dongli's: its location (117.23–117.56 E,
38.99–39.25 N), its size (about 475 km²), the names of its 11 streets (街道), the green
ecological barrier between the central city and Binhai (津滨绿色生态屏障) with its control levels
and six sub-zones, and the targets of its carbon-peak plan.  Geometry, land use, buildings, stands
and irradiation are drawn from seeded random numbers, so the same arguments always give the same
layers.  The baseline is placed near, not on, the plan's targets (``dongli-2025``) so that gaps
and candidate lists have something to say.

The layer set deliberately mixes formats, encodings and coordinate systems, so that every run on
the demo exercises the hard cases of loading real data:

========================  ======================  ===========  ==============================
file                      format                  CRS          notes
========================  ======================  ===========  ==============================
``buildings.gpkg``        GeoPackage              EPSG:4548    Chinese category labels
``landuse.shp``           ESRI Shapefile          EPSG:4527    GBK text, no ``.cpg``;
                                                               zone-prefixed eastings (39 …)
``zones.geojson``         GeoJSON                 EPSG:4326    Chinese control-level labels
``streets.fgb``           FlatGeobuf              EPSG:4548
``forest.gpkg``           GeoPackage              EPSG:4548    stands with stock per hectare
``irradiance.tif``        GeoTIFF (DEFLATE)       EPSG:4548    kWh/m²/yr over the urban core
``run.toml``              run file                             maps raw columns to canonical
========================  ======================  ===========  ==============================

Use :func:`make_demo` to write the set, :func:`demo_layers` to get the vector layers in memory.
"""

from __future__ import annotations

import contextlib
import numbers
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gis._errors import InputError, Problem
from gis.io import atomic_path

__all__ = [
    "DEMO_NAME",
    "STREETS",
    "SUBZONES",
    "demo_layers",
    "make_demo",
]

DEMO_NAME = "东丽区（合成示例 synthetic demo）"

#: Working CRS of the generator: CGCS2000 / 3-degree Gauss-Krüger CM 117E (no zone prefix).
WORK_CRS = "EPSG:4548"
#: The same projection with the zone number (39) prefixed to the easting.
PREFIXED_CRS = "EPSG:4527"
_ZONE_PREFIX_M = 39_000_000.0

#: Dongli's 11 streets (街道), the admin units of the demo.
STREETS = (
    "张贵庄街道", "丰年村街道", "万新街道", "无瑕街道", "新立街道", "华明街道",
    "金钟街道", "军粮城街道", "金桥街道", "华新街道", "东丽湖街道",
)  # fmt: skip

#: The barrier's six sub-zones, north to south.
SUBZONES = (
    "金钟河湿地片区", "华明有机田园区", "双湖富氧游憩区",
    "文化融合体验区", "林水涵养区", "环境防护区",
)  # fmt: skip

# Control-level labels as written in zones.geojson (column GKJB).
_LEVEL_LABELS = {
    "barrier": "屏障区",
    "level1": "一级管控区",
    "level2": "二级管控区",
    "level3": "三级管控区",
    "subzone": "片区",
}

# 117.395 E, 39.12 N (the middle of Dongli) in EPSG:4548 [m].
_CENTRE = np.array([534_160.0, 4_331_900.0])
_DISTRICT_AREA_M2 = 475e6
_BARRIER_SHARE = 0.40
_RADIUS_M = float(np.sqrt(_DISTRICT_AREA_M2 / np.pi))  # ≈ 12.3 km

# Street seeds as fractions of _RADIUS_M from the centre (x east, y north), placed like Dongli's
# streets: the urban streets on the west next to the central city, the airport in the south-west,
# the lakes in the north-east, Junliangcheng in the south-east.
_STREET_SEEDS = {
    "金钟街道": (-0.50, 0.72),
    "华新街道": (-0.74, 0.36),
    "丰年村街道": (-0.93, 0.10),
    "万新街道": (-0.90, -0.22),
    "无瑕街道": (-0.62, -0.02),
    "张贵庄街道": (-0.55, -0.52),
    "新立街道": (-0.05, -0.20),
    "华明街道": (-0.02, 0.52),
    "东丽湖街道": (0.55, 0.55),
    "金桥街道": (0.68, 0.02),
    "军粮城街道": (0.38, -0.62),
}

# Third-survey (三调, GB/T 21010-2017 as extended by the survey) class names of the codes used.
_CODE_NAMES = {
    "0101": "水田", "0102": "水浇地", "0103": "旱地", "0201": "果园",
    "0301": "乔木林地", "0305": "灌木林地", "0307": "其他林地",
    "0401": "天然牧草地", "0404": "其他草地",
    "05H1": "商业服务业设施用地", "0508": "物流仓储用地", "0601": "工业用地",
    "0701": "城镇住宅用地", "0702": "农村宅基地",
    "08H1": "机关团体新闻出版用地", "08H2": "科教文卫用地", "0809": "公用设施用地",
    "0810": "公园与绿地",
    "1003": "公路用地", "1004": "城镇村道路用地", "1006": "农村道路",
    "1101": "河流水面", "1102": "湖泊水面", "1104": "坑塘水面", "1104A": "养殖坑塘",
    "1107": "沟渠",
    "1201": "空闲地", "1202": "设施农用地", "1206": "裸土地",
}  # fmt: skip
_CROPLAND = ("0101", "0102", "0103")

# Land-use composition of each context, as area shares.  The barrier levels are given as
# (blue-green share, blue-green weights, construction-and-other weights) so that the broad
# blue-green share (all non-construction land incl. cropland, DESIGN 6.4) is exact by design:
# level1 80 % (target 85 %), level1 arbor forest 0301 24 % of the area (target 27.5 %), the
# barrier as a whole 60 % (target 65 %; level3 is solved for it).  Codes are listed so that
# neighbours in the list are neighbours on the ground (allocation follows a smooth noise field).
_LEVEL1 = (
    0.80,
    {"0301": 24, "0305": 1, "0307": 5, "0404": 6, "0401": 1, "0201": 2, "0101": 2,
     "0102": 8, "0103": 10, "1107": 3, "1104A": 5, "1104": 7, "1101": 6},
    {"1201": 3, "1206": 3, "0702": 4, "0601": 3, "1006": 2, "1004": 1, "1003": 1,
     "08H2": 1, "05H1": 1, "1202": 1},
)  # fmt: skip
_LEVEL2 = (
    0.50,
    {"0301": 12, "0307": 3, "0404": 4, "0201": 2, "0102": 10, "0103": 10, "1107": 2,
     "1104A": 3, "1104": 4},
    {"0702": 8, "0601": 16, "1004": 5, "1003": 3, "1006": 3, "05H1": 3, "08H2": 2,
     "1201": 3, "1206": 2, "0508": 1, "1202": 1},
)  # fmt: skip
_LEVEL3 = (
    None,  # solved so that the whole barrier sits at _BARRIER_BLUEGREEN
    {"0301": 6, "0404": 3, "0102": 6, "0103": 5, "1107": 2, "1104": 3},
    {"0702": 10, "0601": 25, "0701": 6, "05H1": 5, "1004": 8, "1003": 3, "08H2": 2,
     "1201": 3, "1206": 2, "0508": 1},
)  # fmt: skip
_BARRIER_BLUEGREEN = 0.60
_URBAN = {
    "0701": 40, "0810": 6, "05H1": 10, "08H1": 3, "08H2": 7, "1004": 15, "0809": 2,
    "1101": 3, "0404": 2, "1201": 3, "1003": 2, "0601": 7,
}  # fmt: skip
_INDUSTRIAL = {
    "0601": 65, "0508": 8, "1004": 12, "05H1": 3, "0809": 2, "1201": 4, "0404": 3,
    "1107": 2, "0301": 1,
}  # fmt: skip
_VILLAGE = {"0702": 82, "08H1": 2, "08H2": 1, "1004": 6, "1104": 4, "0404": 2, "1201": 3}
_RURAL = {
    "0101": 6, "0102": 18, "0103": 22, "1202": 1, "0201": 2, "0301": 5, "0307": 2, "0404": 3,
    "1206": 1, "1201": 2, "1107": 4, "1101": 2, "1104": 3, "1104A": 12, "1006": 4, "1003": 2,
    "0702": 4, "0601": 6, "05H1": 1,
}  # fmt: skip
_CONTEXTS = ("level1", "level2", "level3", "urban", "industrial", "village", "rural")

# Share of industrial / homestead parcels in a level marked for removal (SFCC = 是).
_REMOVAL_SHARE = {"level1": 0.45, "level2": 0.10}

# Total forest stock of the barrier's stands [m³] (target of dongli-2025: 60 000 m³).
_BARRIER_STOCK_M3 = 52_500.0

# Unshaded annual irradiation of a roof in Tianjin [kWh/m²/yr]; horizontal global irradiation of
# the Tianjin typical-year file is about 1 450–1 550 kWh/m² (CHN_TJ_Tianjin.545270_TMYx).
_UNSHADED_KWH_M2 = 1500.0


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------


def demo_layers(*, scale: float = 1.0, seed: int = 2023) -> dict[str, gpd.GeoDataFrame]:
    """Generate the demo district's vector layers in memory.

    Parameters
    ----------
    scale : float
        Scales the number of land-use parcels (about × ``scale``; 1 gives 57 390 buildings and 17 836
        parcels; at most 5); the district, its streets and zones stay the same.  Buildings
        follow as the smaller parcels hold them: below 1 in proportion, above it less, as
        footprints keep their sizes on the same land (72 703 buildings at 1.5, 85 431 at 2,
        104 082 at 3).
    seed : int
        Seed of the random numbers; the same ``(scale, seed)`` gives the same layers.

    Returns
    -------
    dict of str to geopandas.GeoDataFrame
        ``district``, ``streets`` (``JDMC``), ``zones`` (``MC``, ``GKJB``), ``landuse``
        (``BSM``, ``DLBM``, ``DLMC``, ``TBMJ`` [m²], ``KCMJ`` [m²], ``TBDLMJ`` [m²], ``SFCC``,
        ``ZLDWMC``), ``forest`` (``XBH``, ``SZ``, ``MGXJ`` [m³/ha]) and ``buildings`` (``BSM``,
        ``JZMC``, ``JZLB``, ``CS``, ``GD`` [m], ``WDLX``, ``WMQJ`` [°], ``WMCX`` [°, 180 =
        south], ``JCNF``, ``GFRL`` [kW], ``JDMC``), all in EPSG:4548 with the raw column names
        written to the files.
    """
    _check_args(scale, 2.0)
    rng = np.random.default_rng(seed)
    frame = _frame(rng)
    landuse, context = _landuse(frame, scale, rng)
    forest = _forest(landuse, context, rng)
    buildings = _buildings(landuse, context, scale, rng)
    crs = WORK_CRS
    return {
        "district": gpd.GeoDataFrame({"name": [DEMO_NAME]}, geometry=[frame["district"]], crs=crs),
        "streets": gpd.GeoDataFrame(
            {"JDMC": list(STREETS)}, geometry=[frame["streets"][s] for s in STREETS], crs=crs
        ),
        "zones": frame["zones"].set_crs(crs),
        "landuse": landuse.set_crs(crs),
        "forest": forest.set_crs(crs),
        "buildings": buildings.set_crs(crs),
    }


def make_demo(
    out_dir: str | Path,
    *,
    scale: float = 1.0,
    seed: int = 2023,
    raster_resolution_m: float | None = None,
) -> Path:
    """Write the demo district's layers and a run file for them.

    Parameters
    ----------
    out_dir : str or pathlib.Path
        Folder to write into (created if missing).  Existing demo files are replaced.
    scale : float
        Multiplies the number of parcels, buildings as they hold them (see :func:`demo_layers`).
    seed : int
        Seed of the random numbers; the same arguments give the same attribute values and
        geometries (and, within a day, the same bytes).
    raster_resolution_m : float, optional
        Pixel size of the irradiation raster [m]; default 2 m over a 6 km × 6 km urban core.

    Returns
    -------
    pathlib.Path
        The run file, ``out_dir / "run.toml"``.

    Examples
    --------
    A tiny demo district (1 % of the buildings, coarse raster), loaded as a run would load it:

    >>> import tempfile
    >>> from gis.config import load_runfile
    >>> from gis.validate import load_layers
    >>> run_file = make_demo(tempfile.mkdtemp(), scale=0.01, raster_resolution_m=50)
    >>> run_file.name, sorted(p.suffix for p in run_file.parent.glob("landuse.*"))
    ('run.toml', ['.dbf', '.prj', '.shp', '.shx'])
    >>> layers = load_layers(load_runfile(run_file))
    >>> [p for p in layers.problems if p.severity == "error"]
    []
    >>> layers.crs.to_epsg(), len(layers.zones), len(layers.streets)
    (4548, 10, 11)
    >>> 500 < len(layers.buildings) < 1500
    True
    """
    res = 2.0 if raster_resolution_m is None else raster_resolution_m
    _check_args(scale, res)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    layers = demo_layers(scale=scale, seed=seed)

    with _fixed_gpkg_timestamp():
        _write_vector(layers["buildings"], out / "buildings.gpkg", "GPKG", layer="buildings")
        _write_vector(layers["forest"], out / "forest.gpkg", "GPKG", layer="forest")
    _write_vector(layers["streets"], out / "streets.fgb", "FlatGeobuf")
    zones = layers["zones"].to_crs("EPSG:4326")
    _write_vector(
        zones,
        out / "zones.geojson",
        "GeoJSON",
        layer_options={"COORDINATE_PRECISION": 7, "RFC7946": "NO"},
    )
    _write_gbk_shapefile(_to_prefixed(layers["landuse"]), out / "landuse.shp")
    _write_irradiance(
        layers["buildings"], layers["district"].geometry.iloc[0], out / "irradiance.tif", res
    )

    run_file = out / "run.toml"
    with atomic_path(run_file) as tmp:
        tmp.write_text(_run_toml(_output_dir(out)), encoding="utf-8")
    return run_file


# --------------------------------------------------------------------------------------------
# frame: district, barrier, levels, sub-zones, streets, land-use contexts
# --------------------------------------------------------------------------------------------


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_args(scale: float, res: float) -> None:
    problems = []
    if not (_is_number(scale) and 0 < scale <= 5):
        problems.append(
            Problem(
                "demo scale must be a number in (0, 5]",
                value=scale,
                hint="use 1 for the full district, 0.02–0.05 for a quick set",
            )
        )
    if not (_is_number(res) and 0.5 <= res <= 100):
        problems.append(
            Problem(
                "raster resolution must be between 0.5 and 100 m",
                value=res,
                hint="use 2 (default) or a coarser value for a quick set",
            )
        )
    if problems:
        raise InputError(problems)


def _district() -> shapely.Polygon:
    """An irregular outline of exactly 475 km² around Dongli's centre (fixed, not seeded)."""
    theta = np.linspace(0.0, 2 * np.pi, 721)[:-1]
    r = (
        1
        + 0.10 * np.cos(2 * theta - 0.6)
        + 0.07 * np.cos(3 * theta + 1.1)
        + 0.05 * np.cos(5 * theta + 2.3)
        + 0.03 * np.cos(7 * theta + 0.4)
        + 0.015 * np.cos(11 * theta + 1.9)
        + 0.008 * np.cos(17 * theta + 0.2)
    )
    xy = np.column_stack([r * np.cos(theta), 1.05 * r * np.sin(theta)])
    unit = shapely.Polygon(xy)
    k = np.sqrt(_DISTRICT_AREA_M2 / unit.area)
    return shapely.Polygon(xy * k + _CENTRE)


def _band(t0: float, t1: float, width: float) -> shapely.Polygon:
    """The strip between two wavy north-south curves of the barrier band (0 = west edge)."""
    y = np.linspace(-20_000.0, 20_000.0, 401)
    west = 500.0 - width / 2 + 900 * np.sin(y / 3500 + 0.7) + 500 * np.sin(y / 1700 + 2.1)
    east = 500.0 + width / 2 + 800 * np.sin(y / 3000 + 1.9) + 400 * np.sin(y / 1300 + 0.3)
    xa = west + t0 * (east - west)
    xb = west + t1 * (east - west)
    ring = np.vstack([np.column_stack([xa, y]), np.column_stack([xb, y])[::-1]])
    return shapely.Polygon(ring + _CENTRE)


def _bisect(fun, lo: float, hi: float, target: float, n: int = 40) -> float:
    """Root of an increasing ``fun(x) = target`` on [lo, hi] (few evaluations: no hot loop)."""
    for _ in range(n):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if fun(mid) < target else (lo, mid)
    return (lo + hi) / 2


def _strip(y0: float, y1: float) -> shapely.Polygon:
    """Everything between two parallel, slightly slanted east-west lines (y' = y + 0.15 x)."""
    x = np.array([-30_000.0, 30_000.0])
    pts = [
        (x[0], y0 - 0.15 * x[0]),
        (x[1], y0 - 0.15 * x[1]),
        (x[1], y1 - 0.15 * x[1]),
        (x[0], y1 - 0.15 * x[0]),
    ]
    return shapely.Polygon(np.array(pts) + _CENTRE)


def _frame(rng: np.random.Generator) -> dict:
    """District, zones, streets and the land-use contexts (the seed only places villages)."""
    district = _district()
    target = _BARRIER_SHARE * district.area
    width = _bisect(lambda w: district.intersection(_band(0, 1, w)).area, 1000, 25_000, target)
    barrier = district.intersection(_band(0, 1, width))
    levels = {
        "level1": district.intersection(_band(0.25, 0.75, width)),
        "level2": district.intersection(
            shapely.union(_band(0.10, 0.25, width), _band(0.75, 0.90, width))
        ),
        "level3": district.intersection(
            shapely.union(_band(0.0, 0.10, width), _band(0.90, 1.0, width))
        ),
    }
    # sub-zones: cut the barrier north to south into pieces of given area shares
    cum = np.cumsum([0.17, 0.16, 0.18, 0.16, 0.17])
    cuts = [
        _bisect(
            lambda c: -barrier.intersection(_strip(c, 20_000)).area,
            -20_000,
            20_000,
            -f * barrier.area,
        )
        for f in cum
    ]
    edges = [20_000.0, *cuts, -20_000.0]
    subzones = [barrier.intersection(_strip(edges[i + 1], edges[i])) for i in range(6)]

    seeds = np.array([_STREET_SEEDS[s] for s in STREETS]) * _RADIUS_M + _CENTRE
    cells = shapely.get_parts(
        shapely.voronoi_polygons(
            shapely.multipoints(seeds), extend_to=district.buffer(5000), ordered=True
        )
    )
    streets = dict(zip(STREETS, shapely.intersection(cells, district), strict=True))

    outside = district.difference(barrier)
    core = _CENTRE + np.array([-0.74, -0.05]) * _RADIUS_M
    t = np.linspace(0, 2 * np.pi, 129)[:-1]
    ellipse = shapely.Polygon(
        np.column_stack([0.36 * np.cos(t), 0.60 * np.sin(t)]) * _RADIUS_M + core
    )
    urban = outside.intersection(ellipse)
    parks = shapely.union_all(
        [
            shapely.box(*(_CENTRE + (x - w / 2, y - h / 2)), *(_CENTRE + (x + w / 2, y + h / 2)))
            for x, y, w, h in (
                (-0.30 * _RADIUS_M, -0.78 * _RADIUS_M, 3200, 2200),  # airport economic area
                (0.45 * _RADIUS_M, -0.45 * _RADIUS_M, 2800, 2200),  # Junliangcheng industry
                (0.78 * _RADIUS_M, 0.12 * _RADIUS_M, 2200, 2800),  # Jinqiao industry
                (-0.30 * _RADIUS_M, 0.62 * _RADIUS_M, 2200, 1800),  # Huaming high-tech park
            )
        ]
    )
    industrial = outside.difference(urban).intersection(parks)
    rural_all = outside.difference(urban).difference(parks)
    # villages: one candidate per 1.8 km cell of a jittered grid keeps them apart without a loop
    g = np.arange(-16_000, 16_001, 1800.0)
    gx, gy = np.meshgrid(g, g)
    pts = np.column_stack([gx.ravel(), gy.ravel()]) + _CENTRE
    pts = pts + rng.uniform(-450, 450, pts.shape)
    shapely.prepare(rural_all)
    pts = pts[shapely.contains_xy(rural_all, pts[:, 0], pts[:, 1])]
    pts = pts[rng.permutation(len(pts))[:70]]
    discs = shapely.buffer(shapely.points(pts), rng.uniform(220, 420, len(pts)), quad_segs=8)
    village = rural_all.intersection(shapely.union_all(discs))
    rural = rural_all.difference(village)

    zones = gpd.GeoDataFrame(
        {
            "MC": [
                "津滨绿色生态屏障（东丽段）",
                "一级管控区",
                "二级管控区",
                "三级管控区",
                *SUBZONES,
            ],
            "GKJB": [_LEVEL_LABELS[k] for k in ("barrier", "level1", "level2", "level3")]
            + [_LEVEL_LABELS["subzone"]] * 6,
        },
        geometry=[barrier, levels["level1"], levels["level2"], levels["level3"], *subzones],
    )
    contexts = {
        **levels,
        "urban": urban,
        "industrial": industrial,
        "village": village,
        "rural": rural,
    }
    return {
        "district": district,
        "barrier": barrier,
        "zones": zones,
        "streets": streets,
        "contexts": contexts,
        "urban_core": core,
    }


# --------------------------------------------------------------------------------------------
# land use
# --------------------------------------------------------------------------------------------


def _noise_field(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A smooth random field (sum of plane waves, 1.5–6 km wavelengths) to cluster classes."""
    n = 8
    angle = rng.uniform(0, np.pi, n)
    k = 2 * np.pi / rng.uniform(1500, 6000, n)
    phase = rng.uniform(0, 2 * np.pi, n)
    proj = np.outer(x, np.cos(angle) * k) + np.outer(y, np.sin(angle) * k)
    return np.sin(proj + phase).sum(axis=1)


def _composition(context: str, areas: dict[str, float]) -> dict[str, float]:
    """Area shares of the codes in one context (the barrier levels via their blue-green share)."""
    plain = {"urban": _URBAN, "industrial": _INDUSTRIAL, "village": _VILLAGE, "rural": _RURAL}
    if context in plain:
        w = plain[context]
        total = sum(w.values())
        return {c: v / total for c, v in w.items()}
    share, green, grey = {"level1": _LEVEL1, "level2": _LEVEL2, "level3": _LEVEL3}[context]
    if share is None:  # level3 carries whatever keeps the whole barrier at the set share
        a1, a2, a3 = areas["level1"], areas["level2"], areas["level3"]
        share = (_BARRIER_BLUEGREEN * (a1 + a2 + a3) - _LEVEL1[0] * a1 - _LEVEL2[0] * a2) / a3
        share = float(np.clip(share, 0.1, 0.6))
    g, r = sum(green.values()), sum(grey.values())
    return {
        **{c: share * v / g for c, v in green.items()},
        **{c: (1 - share) * v / r for c, v in grey.items()},
    }


def _landuse(frame: dict, scale: float, rng: np.random.Generator):
    """Parcels: a Voronoi tiling of jittered seeds, cut by contexts and streets, coded by quota."""
    district = frame["district"]
    contexts = frame["contexts"]
    x0, y0, x1, y1 = district.bounds
    # ~190 m seeds (≈ 3.6 ha cells), twice as dense in villages (small homestead plots)
    base = 190.0 / np.sqrt(scale)
    dense_area = contexts["village"]
    shapely.prepare(dense_area)
    seeds = []
    for spacing, keep_dense in ((base, False), (base / 2, True)):
        gx, gy = np.meshgrid(
            np.arange(x0 - spacing, x1 + spacing, spacing),
            np.arange(y0 - spacing, y1 + spacing, spacing),
        )
        p = np.column_stack([gx.ravel(), gy.ravel()])
        p = p + rng.uniform(-0.35, 0.35, p.shape) * spacing
        inside = shapely.contains_xy(dense_area, p[:, 0], p[:, 1])
        seeds.append(p[inside == keep_dense])
    seeds = np.vstack(seeds)
    cells = shapely.get_parts(
        shapely.voronoi_polygons(
            shapely.multipoints(seeds),
            extend_to=shapely.box(x0, y0, x1, y1).buffer(base * 3),
            ordered=True,
        )
    )

    # regions = context × street; a parcel never straddles a level boundary or a street
    ctx = gpd.GeoDataFrame({"context": list(contexts)}, geometry=list(contexts.values()))
    st = gpd.GeoDataFrame(
        {"street": list(frame["streets"])}, geometry=list(frame["streets"].values())
    )
    regions = gpd.overlay(ctx, st, how="intersection", keep_geom_type=True)
    regions = regions[regions.area > 0].reset_index(drop=True)
    tree = shapely.STRtree(regions.geometry.values)
    ci, ri = tree.query(cells, predicate="intersects")
    pieces = shapely.intersection(cells[ci], regions.geometry.values[ri])
    parts, idx = shapely.get_parts(pieces, return_index=True)
    keep = (shapely.get_type_id(parts) == 3) & (shapely.area(parts) >= 1.0)
    parts, idx = parts[keep], idx[keep]
    # survey coordinates to 1 mm: at 39 5xx xxx m (EPSG:4527) a double resolves only ~7e-9 m,
    # enough to fold a near-degenerate Voronoi corner; on a 1 mm grid the rings stay valid
    parts = shapely.set_precision(parts, 0.001)
    keep = shapely.area(parts) >= 1.0
    parts, idx = parts[keep], idx[keep]
    ri = ri[idx]
    ci = ci[idx]
    # stable order: by source cell, then region
    order = np.lexsort((ri, ci))
    parts, ri = parts[order], ri[order]
    context = regions["context"].to_numpy()[ri]
    street = regions["street"].to_numpy()[ri]
    area = shapely.area(parts)

    ctx_area = {c: float(area[context == c].sum()) for c in _CONTEXTS}
    centroid = shapely.get_coordinates(shapely.centroid(parts))
    code = np.empty(len(parts), dtype=object)
    for c in _CONTEXTS:  # seven contexts, each allocated in one vectorised pass
        sel = np.flatnonzero(context == c)
        if not len(sel):
            continue
        comp = _composition(c, ctx_area)
        codes = np.array(list(comp))
        bounds = np.cumsum(list(comp.values()))
        field = _noise_field(centroid[sel, 0], centroid[sel, 1], rng)
        field = field + rng.normal(0, 0.6, len(sel))  # ragged patch edges
        o = sel[np.argsort(field, kind="stable")]
        mid = (np.cumsum(area[o]) - area[o] / 2) / area[o].sum()
        code[o] = codes[np.minimum(np.searchsorted(bounds, mid), len(codes) - 1)]

    n = len(parts)
    survey = 1 + np.clip(rng.normal(0, 0.0012, n), -0.003, 0.003)
    tbmj = np.round(area * survey, 2)
    crop = np.isin(code, _CROPLAND)
    kcmj = np.where(crop, np.round(tbmj * rng.uniform(0.03, 0.08, n), 2), 0.0)
    removal_p = np.array([_REMOVAL_SHARE.get(c, 0.0) for c in context])
    removal = np.isin(code, ("0601", "0702")) & (rng.random(n) < removal_p)
    landuse = gpd.GeoDataFrame(
        {
            "BSM": pd.Series(np.arange(1, n + 1)).map("120110{:08d}".format),
            "DLBM": code.astype(str),
            "DLMC": pd.Series(code).map(_CODE_NAMES).to_numpy(),
            "TBMJ": tbmj,
            "KCMJ": kcmj,
            "TBDLMJ": np.round(tbmj - kcmj, 2),
            "SFCC": np.where(removal, "是", "否"),
            "ZLDWMC": street,
        },
        geometry=parts,
    )
    for col in ("BSM", "DLBM", "DLMC", "SFCC", "ZLDWMC"):
        landuse[col] = landuse[col].astype("str")
    return landuse, context


# --------------------------------------------------------------------------------------------
# forest stands
# --------------------------------------------------------------------------------------------


def _forest(landuse: gpd.GeoDataFrame, context: np.ndarray, rng: np.random.Generator):
    """Stands over the barrier's forest parcels, scaled to a total stock of 52 500 m³.

    Most of the barrier's forest was planted after 2017 and holds little wood yet; older poplar
    shelterbelts hold most of the stock.  Stock per hectare is drawn for both groups and then
    scaled so the barrier's total is fixed whatever the scale and seed.
    """
    sel = np.isin(landuse["DLBM"].to_numpy(), ("0301", "0307")) & np.isin(
        context, ("level1", "level2", "level3")
    )
    stands = landuse.loc[sel, ["geometry"]].reset_index(drop=True)
    n = len(stands)
    code = landuse["DLBM"].to_numpy()[sel]
    mature = (code == "0301") & (rng.random(n) < 0.15)
    young_species = np.array(["白蜡", "国槐", "刺槐", "柳树", "杨树", "榆树"])
    species = np.where(
        mature,
        np.where(rng.random(n) < 0.75, "杨树", "柳树"),
        young_species[rng.choice(6, n, p=[0.26, 0.2, 0.2, 0.14, 0.12, 0.08])],
    )
    per_ha = np.where(
        mature,
        rng.uniform(40, 90, n),
        np.where(code == "0301", rng.uniform(6, 13, n), rng.uniform(1.5, 4, n)),
    )
    area_ha = stands.area.to_numpy() / 1e4
    if n:
        per_ha = per_ha * _BARRIER_STOCK_M3 / float((per_ha * area_ha).sum())
    stands.insert(0, "XBH", pd.Series(np.arange(1, n + 1)).map("XB{:06d}".format).astype("str"))
    stands.insert(1, "SZ", pd.Series(species, dtype="str"))
    stands.insert(2, "MGXJ", np.round(per_ha, 1))
    return gpd.GeoDataFrame(stands, geometry="geometry")


# --------------------------------------------------------------------------------------------
# buildings
# --------------------------------------------------------------------------------------------

# kind: parcel codes it stands on, (contexts it is limited to), labels with weights, buildings
# at scale 1, footprint width (east-west) and depth ranges [m], share of buildings built 2022+.
_KINDS = (
    ("rural", ("0702",), None, {"农村住宅": 1.0}, 30_000, (10, 15), (8, 11), 0.02),
    ("residential", ("0701",), None, {"住宅": 1.0}, 13_000, (36, 60), (12, 16), 0.05),
    ("industry", ("0601",), None, {"厂房": 0.6, "工业": 0.4}, 10_000, (25, 65), (15, 38), 0.10),
    ("warehouse", ("0508",), None, {"其他": 1.0}, 700, (30, 70), (20, 35), 0.05),
    ("commercial", ("05H1",), None, {"商业": 1.0}, 3_000, (25, 55), (18, 35), 0.05),
    ("government", ("08H1",), ("urban", "industrial", "rural", "level1", "level2",
                              "level3"), {"党政机关": 1.0}, 450, (30, 55), (15, 25), 0.10),
    ("committee", ("08H1",), ("village",), {"村委会": 1.0}, 250, (15, 25), (10, 14), 0.10),
    ("school", ("08H2",), None, {"学校": 0.7, "医院": 0.3}, 1_300, (30, 55), (15, 25), 0.10),
    ("other", ("0809", "1202"), None, {"其他": 1.0}, 1_500, (10, 35), (8, 16), 0.03),
)  # fmt: skip
# Fraction of grid slots whose footprint fits inside its parcel, measured at scale 1 (used to
# place enough slots); kinds with big footprints fit less often.
_FIT = {
    "rural": 0.88,
    "residential": 0.53,
    "industry": 0.45,
    "warehouse": 0.45,
    "commercial": 0.65,
    "government": 0.75,
    "committee": 0.77,
    "school": 0.75,
    "other": 0.87,
}
# Share of buildings that already carry PV (besides new public/factory buildings, a third).
_PV_SHARE = {
    "rural": 0.03,
    "residential": 0.005,
    "industry": 0.07,
    "warehouse": 0.03,
    "commercial": 0.03,
    "government": 0.06,
    "committee": 0.04,
    "school": 0.04,
    "other": 0.01,
}
_PITCHED_SHARE = {
    "rural": 0.85,
    "residential": 0.15,
    "industry": 0.25,
    "warehouse": 0.3,
    "commercial": 0.05,
    "government": 0.1,
    "committee": 0.6,
    "school": 0.15,
    "other": 0.3,
}
# (floor choices, weights, storey height [m])
_FLOORS = {
    "rural": ((1, 2), (0.78, 0.22), 3.2),
    "residential": ((6, 11, 18, 26, 33), (0.3, 0.15, 0.25, 0.2, 0.1), 2.9),
    "industry": ((1, 2, 3, 4), (0.6, 0.2, 0.12, 0.08), 4.5),
    "warehouse": ((1, 2), (0.85, 0.15), 5.0),
    "commercial": ((2, 3, 4, 5, 8, 12, 20), (0.2, 0.2, 0.15, 0.15, 0.12, 0.1, 0.08), 4.0),
    "government": ((3, 4, 5, 6, 8, 10), (0.15, 0.25, 0.25, 0.15, 0.12, 0.08), 3.6),
    "committee": ((1, 2), (0.5, 0.5), 3.3),
    "school": ((2, 3, 4, 5, 6), (0.1, 0.3, 0.3, 0.2, 0.1), 3.8),
    "other": ((1, 2), (0.85, 0.15), 3.5),
}


def _slots(geoms: np.ndarray, dx: float, dy: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centres of a global dx × dy lattice that fall in each parcel's bounding box.

    Returns (parcel index, x, y); a ragged arange does it without a loop over parcels, and the
    shared lattice keeps buildings of neighbouring parcels of the same kind apart.
    """
    b = shapely.bounds(geoms)
    ix0 = np.floor(b[:, 0] / dx).astype(np.int64)
    iy0 = np.floor(b[:, 1] / dy).astype(np.int64)
    nx = np.floor(b[:, 2] / dx).astype(np.int64) - ix0 + 1
    ny = np.floor(b[:, 3] / dy).astype(np.int64) - iy0 + 1
    n = nx * ny
    pid = np.repeat(np.arange(len(geoms)), n)
    j = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    x = (ix0[pid] + j % nx[pid] + 0.5) * dx
    y = (iy0[pid] + j // nx[pid] + 0.5) * dy
    return pid, x, y


def _rectangles(x, y, w, d, rot_deg) -> np.ndarray:
    """Rectangles of width w (east-west) and depth d centred on (x, y), rotated CCW [°]."""
    c, s = np.cos(np.radians(rot_deg)), np.sin(np.radians(rot_deg))
    ux = np.array([-0.5, 0.5, 0.5, -0.5, -0.5])
    uy = np.array([-0.5, -0.5, 0.5, 0.5, -0.5])
    lx = w[:, None] * ux
    ly = d[:, None] * uy
    xs = x[:, None] + lx * c[:, None] - ly * s[:, None]
    ys = y[:, None] + lx * s[:, None] + ly * c[:, None]
    return shapely.polygons(np.stack([xs, ys], axis=-1))


def _buildings(
    landuse: gpd.GeoDataFrame, context: np.ndarray, scale: float, rng: np.random.Generator
) -> gpd.GeoDataFrame:
    code = landuse["DLBM"].to_numpy()
    geoms = landuse.geometry.to_numpy()
    area = shapely.area(geoms)
    street = landuse["ZLDWMC"].to_numpy()
    # one small rotation per parcel: buildings of a block share their alignment
    parcel_rot = np.clip(rng.normal(0, 4, len(geoms)), -8, 8)
    shapely.prepare(geoms)
    chunks = []
    for k, (kind, codes, ctxs, _labels, n_full, (w0, w1), (d0, d1), _new) in enumerate(_KINDS):
        on = np.isin(code, codes)
        if ctxs is not None:
            on &= np.isin(context, ctxs)
        sel = np.flatnonzero(on)
        if not len(sel):
            continue
        # lattice cell so that the expected count is met; never tighter than the footprint: a
        # footprint rotated by ≤ 12° spans at most w + 0.25 d east-west, d + 0.25 w north-south
        cell = area[sel].sum() * _FIT[kind] / max(n_full * scale, 1.0)
        aspect = (w0 + w1) / (d0 + d1)
        dx = max(np.sqrt(cell * aspect), w1 + 0.25 * d1 + 2)
        dy = max(cell / dx, d1 + 0.25 * w1 + 2)
        pid, x, y = _slots(geoms[sel], dx, dy)
        m = len(pid)
        w = rng.uniform(w0, w1, m)
        d = rng.uniform(d0, d1, m)
        rot = parcel_rot[sel][pid] + np.clip(rng.normal(0, 1.0, m), -3, 3)
        # jitter within the slack the lattice leaves around the rotated footprint, so the
        # bounding boxes of neighbours never meet
        ext_x = w * np.abs(np.cos(np.radians(rot))) + d * np.abs(np.sin(np.radians(rot)))
        ext_y = w * np.abs(np.sin(np.radians(rot))) + d * np.abs(np.cos(np.radians(rot)))
        x = x + rng.uniform(-1, 1, m) * np.maximum(dx - ext_x - 2, 0) / 2
        y = y + rng.uniform(-1, 1, m) * np.maximum(dy - ext_y - 2, 0) / 2
        owner = geoms[sel][pid]
        rects = _rectangles(x, y, w, d, rot)
        fits = shapely.contains(owner, rects)
        # near parcel edges try a smaller building (annexes, sheds) before giving the slot up
        retry = np.flatnonzero(~fits)
        small = _rectangles(x[retry], y[retry], 0.6 * w[retry], 0.6 * d[retry], rot[retry])
        ok = shapely.contains(owner[retry], small)
        rects[retry[ok]] = small[ok]
        w[retry[ok]] *= 0.6
        d[retry[ok]] *= 0.6
        fits[retry[ok]] = True
        chunks.append(
            pd.DataFrame(
                {
                    "kind": k,
                    "parcel": sel[pid][fits],
                    "w": w[fits],
                    "d": d[fits],
                    "rot": rot[fits],
                    "geometry": rects[fits],
                }
            )
        )
    b = pd.concat(chunks, ignore_index=True)
    n = len(b)
    kind_name = np.array([s[0] for s in _KINDS])[b["kind"].to_numpy()]
    footprint = (b["w"] * b["d"]).to_numpy()

    label = np.empty(n, dtype=object)
    floors = np.zeros(n)
    storey = np.zeros(n)
    pitched = np.zeros(n, dtype=bool)
    pv_share = np.zeros(n)
    new = np.zeros(n, dtype=bool)
    for kind, _codes, _ctxs, labels, _n, _w, _d, new_share in _KINDS:  # per kind, not building
        m = kind_name == kind
        cnt = int(m.sum())
        if not cnt:
            continue
        names = list(labels)
        label[m] = np.array(names, dtype=object)[
            rng.choice(len(names), cnt, p=list(labels.values()))
        ]
        choices, weights, h = _FLOORS[kind]
        floors[m] = rng.choice(choices, cnt, p=weights)
        storey[m] = h
        pitched[m] = rng.random(cnt) < _PITCHED_SHARE[kind]
        pv_share[m] = _PV_SHARE[kind]
        new[m] = rng.random(cnt) < new_share
    # pitched high-rises do not exist
    pitched &= ~((kind_name == "residential") & (floors > 6))
    height = floors * storey + np.where(pitched, 1.5, 0.0) + rng.uniform(-0.3, 0.3, n)
    one_storey_shed = np.isin(kind_name, ("industry", "warehouse")) & (floors == 1)
    height = np.where(one_storey_shed, rng.uniform(8, 14, n), height)

    # roof orientation: houses face south (azimuth 180 = south, clockwise from north); a CCW
    # rotation of the footprint turns the south face towards the east (smaller azimuth)
    rot = b["rot"].to_numpy()
    house = np.isin(kind_name, ("rural", "committee", "residential"))
    tilt = np.where(house, rng.uniform(20, 35, n), rng.uniform(5, 15, n))
    face = rng.random(n)
    south = np.clip(180 - rot + rng.normal(0, 10, n), 150, 210)
    side = np.where(face < 0.91, 90.0, 270.0) + rng.normal(0, 8, n)
    az = np.where(face < 0.85, south, np.where(face < 0.97, side, rng.normal(0, 8, n) % 360))
    tilt = np.where(pitched, np.round(tilt, 1), 0.0)
    az = np.where(pitched, np.round(az, 1) % 360, np.nan)

    # build year; 2022+ (the plan's "new" buildings) for a share of public and factory buildings
    old_year = 1980 + np.floor(rng.beta(1.6, 1.3, n) * 42)  # 1980–2021
    new_year = rng.integers(2022, 2026, n)
    year = np.where(new, new_year, old_year)
    is_public = np.isin(label, ("党政机关", "学校", "医院", "村委会"))
    is_factory = np.isin(label, ("厂房",))
    new_pf = (year >= 2022) & (is_public | is_factory)
    # a third of the new public/factory buildings already carry PV (target 50 %)
    rank = np.empty(n)
    rank[rng.permutation(n)] = np.arange(n)
    has_pv = np.where(new_pf, False, rng.random(n) < pv_share)
    idx_new = np.flatnonzero(new_pf)
    pick = idx_new[np.argsort(rank[idx_new])][: round(len(idx_new) / 3)]
    has_pv[pick] = True
    pv_kw = np.where(has_pv, np.round(footprint * rng.uniform(0.06, 0.12, n), 1), 0.0)

    street_b = street[b["parcel"].to_numpy()]
    lab = pd.Series(label, dtype="str")
    st = pd.Series(street_b, dtype="str")
    short = st.str.removesuffix("街道")
    k = pd.DataFrame({"s": st, "l": lab}).groupby(["s", "l"], sort=False).cumcount() + 1
    k = k.astype("str")
    school_kind = np.where((k.str[-1].astype(int) % 3) == 0, "中学", "小学")
    name = pd.Series(pd.NA, index=lab.index, dtype="str")
    name = name.mask(lab == "党政机关", st + "机关办公楼" + k + "号")
    name = name.mask(lab == "学校", "东丽区" + short + "第" + k + school_kind)
    name = name.mask(lab == "医院", "东丽区" + short + "医院" + k + "号楼")
    name = name.mask(lab == "村委会", short + k + "村村委会")
    name = name.mask(lab == "商业", short + "商业楼" + k + "号")

    return gpd.GeoDataFrame(
        {
            "BSM": pd.Series(np.arange(1, n + 1)).map("JZ{:07d}".format).astype("str"),
            "JZMC": name,
            "JZLB": lab,
            "CS": floors.astype(np.int32),
            "GD": np.round(height, 1),
            "WDLX": pd.Series(np.where(pitched, "坡屋顶", "平屋顶"), dtype="str"),
            "WMQJ": tilt,
            "WMCX": az,
            "JCNF": year.astype(np.int32),
            "GFRL": pv_kw,
            "JDMC": st,
        },
        geometry=b["geometry"].to_numpy(),
    )


# --------------------------------------------------------------------------------------------
# irradiation raster
# --------------------------------------------------------------------------------------------


def _irradiance_grid(
    buildings: gpd.GeoDataFrame, district: shapely.Polygon, res: float, size_m: float = 6000.0
):
    """Annual roof irradiation [kWh/m²/yr] over a square of the urban core.

    A simple, synthetic horizon model: the south horizon angle α of each pixel (from building
    heights up to 150 m away) removes beam light once the obstruction rises above 15° (Tianjin's
    noon sun stands 27.5°–74.5° high) and a quarter of the diffuse light times sin α.  Beam share
    of annual global irradiation ≈ 55 % is a round figure for Tianjin; unshaded = 1 500.
    """
    from rasterio import features
    from rasterio.transform import Affine

    # centred on the high-rise town: the median position of buildings of 11 floors or more
    tall = buildings[buildings["CS"] >= 11]
    pts = shapely.get_coordinates(shapely.centroid(tall.geometry.values))
    cx, cy = np.median(pts, axis=0) if len(pts) else district.centroid.coords[0]
    n = int(round(size_m / res))
    left = np.floor((cx - size_m / 2) / res) * res
    top = np.floor((cy + size_m / 2) / res) * res
    transform = Affine(res, 0.0, left, 0.0, -res, top)
    window = shapely.box(left, top - n * res, left + n * res, top)
    inside = buildings[buildings.intersects(window)]
    height = np.zeros((n, n), dtype=np.float32)
    if len(inside):
        height = features.rasterize(
            zip(inside.geometry.values, inside["GD"].to_numpy(), strict=True),
            out_shape=(n, n),
            transform=transform,
            fill=0,
            dtype="float32",
            all_touched=False,
        )
    # horizon towards the south (rows grow southwards); steps of ≤ 8 m never skip a building
    dists = np.unique(np.concatenate([np.arange(res, 40, res), np.arange(40, 151, 8.0)]))
    tan_h = np.zeros_like(height)
    for dist in dists:  # a few dozen array shifts, each vectorised over the whole grid
        k = int(round(dist / res))
        if k < 1 or k >= n:
            continue
        np.maximum(tan_h[:-k], (height[k:] - height[:-k]) / (k * res), out=tan_h[:-k])
    alpha = np.degrees(np.arctan(tan_h))
    beam_lost = np.clip((alpha - 15.0) / 55.0, 0, 1)
    value = _UNSHADED_KWH_M2 * (
        0.55 * (1 - beam_lost) + 0.45 * (1 - 0.25 * np.sin(np.radians(alpha)))
    )
    in_district = features.geometry_mask(
        [district], out_shape=(n, n), transform=transform, invert=True
    )
    out = np.where(in_district, np.round(value), 0).astype(np.uint16)
    return out, transform


def _write_irradiance(buildings, district, path: Path, res: float) -> None:
    import rasterio

    grid, transform = _irradiance_grid(buildings, district, res)
    profile = {
        "driver": "GTiff", "width": grid.shape[1], "height": grid.shape[0], "count": 1,
        "dtype": "uint16", "crs": WORK_CRS, "transform": transform, "nodata": 0,
        "compress": "deflate", "predictor": 2, "tiled": True, "blockxsize": 256,
        "blockysize": 256,
    }  # fmt: skip
    with atomic_path(path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        dst.write(grid, 1)
        dst.update_tags(
            units="kWh/m2/yr",
            quantity="annual roof irradiation",
            source="synthetic demo (gis.demo), not measured",
        )
        dst.set_band_description(1, "annual irradiation [kWh/m2/yr]")


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _fixed_gpkg_timestamp() -> Iterator[None]:
    """GeoPackages record their write time; pin it so repeated builds give the same bytes."""
    import pyogrio

    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": "2023-01-01T00:00:00.000Z"})
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": None})


def _write_vector(
    gdf: gpd.GeoDataFrame,
    path: Path,
    driver: str,
    *,
    layer: str | None = None,
    layer_options: dict | None = None,
) -> None:
    # name the layer: drivers would otherwise take the temporary file's name
    with atomic_path(path) as tmp:
        gdf.to_file(
            tmp,
            driver=driver,
            engine="pyogrio",
            layer=layer or path.stem,
            layer_options=layer_options,
        )


def _to_prefixed(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """EPSG:4548 → EPSG:4527: same projection, zone number 39 prefixed to the easting."""
    out = gdf.copy()
    out.geometry = shapely.transform(
        gdf.geometry.values, lambda xy: xy + np.array([_ZONE_PREFIX_M, 0.0])
    )
    return out.set_crs(PREFIXED_CRS, allow_override=True)


def _write_gbk_shapefile(gdf: gpd.GeoDataFrame, path: Path) -> None:
    """A shapefile in GBK *without* a .cpg, as many Chinese survey deliveries come.

    All parts are written in a scratch folder and then moved in one by one (each move atomic).
    """
    scratch = Path(tempfile.mkdtemp(prefix=".landuse.", dir=path.parent))
    try:
        tmp = scratch / path.name
        # a fixed DBF date keeps repeated builds byte-identical
        gdf.to_file(
            tmp,
            driver="ESRI Shapefile",
            engine="pyogrio",
            encoding="gbk",
            layer_options={"DBF_DATE_LAST_UPDATE": "2023-01-01"},
        )
        (scratch / (path.stem + ".cpg")).unlink(missing_ok=True)
        path.with_suffix(".cpg").unlink(missing_ok=True)
        for part in sorted(scratch.iterdir()):
            os.replace(part, path.parent / part.name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _output_dir(out: Path) -> str:
    """Output folder for the run file: the repository's maps/dongli for layers/demo."""
    out = out.resolve()
    if out.name == "demo" and out.parent.name == "layers":
        return "../../maps/dongli"
    return "output"


def _run_toml(output_dir: str) -> str:
    return f"""\
# Demo district generated by gis.demo (gis-planner demo). Every value in these layers is
# synthetic: modelled on Dongli District, Tianjin, but not real data.

[project]
name = "{DEMO_NAME}"
crs = "{WORK_CRS}"
targets = "dongli-2025"
synthetic = true

[layers.buildings]
path = "buildings.gpkg"
layer = "buildings"
[layers.buildings.columns]
id = "BSM"
name = "JZMC"
category = "JZLB"
floors = "CS"
height = "GD"
roof_type = "WDLX"
roof_tilt = "WMQJ"
roof_azimuth = "WMCX"
year_built = "JCNF"
pv_kw = "GFRL"
street = "JDMC"
[layers.buildings.values.roof_type]
"平屋顶" = "flat"
"坡屋顶" = "pitched"

[layers.landuse]
path = "landuse.shp"
scheme = "gbt21010"
[layers.landuse.columns]
id = "BSM"
code = "DLBM"
area = "TBDLMJ"
tbmj = "TBMJ"
kcmj = "KCMJ"
removal = "SFCC"
[layers.landuse.values.removal]
"是" = true
"否" = false

[layers.zones]
path = "zones.geojson"
[layers.zones.columns]
name = "MC"
level = "GKJB"
[layers.zones.values.level]
"屏障区" = "barrier"
"一级管控区" = "level1"
"二级管控区" = "level2"
"三级管控区" = "level3"
"片区" = "subzone"

[layers.streets]
path = "streets.fgb"
[layers.streets.columns]
name = "JDMC"

[layers.forest]
path = "forest.gpkg"
[layers.forest.columns]
id = "XBH"
species = "SZ"
stock_m3_ha = "MGXJ"

[layers.irradiance]
path = "irradiance.tif"

[pv]
preset = "base"

[output]
dir = "{output_dir}"
# the demo's maps work with no network: scripts, styles and data inlined, no basemap tiles
# (install the assets once with `bash scripts/install_assets.sh`); set false for an
# OpenStreetMap basemap (or Tianditu with TIANDITU_KEY)
offline = true
"""

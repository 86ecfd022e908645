"""Ranked rooftop site lists and their exports (CSV, Excel, GeoPackage, GeoJSON, GeoParquet).

A site is a building whose roof can carry PV (``capacity_kwp > 0``).  :func:`select_sites` filters
and ranks the ``buildings_pv`` layer; :func:`export` writes it (or the afforestation candidate
parcels) in the format the file suffix names, so a planner hands the list on to a colleague who
opens it in Excel or QGIS.

Every export is written atomically (:func:`gis.io.atomic_path`): the final file is either the
complete new version or untouched.
"""

from __future__ import annotations

import datetime as _dt
import json
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from gis import io
from gis._errors import InputError, Problem, Problems
from gis.config import CATEGORIES
from gis.config import is_number as _is_number
from gis.io import atomic_path

RANK_BY = ("annual_kwh", "capacity_kwp", "specific_yield_kwh_kwp", "payback_years", "npv_yuan",
           "irr", "lcoe_yuan_kwh")
#: Ranking keys where the smallest value is best (the shortest payback, the cheapest kWh).
RANK_ASCENDING = ("payback_years", "lcoe_yuan_kwh")
SUFFIXES = (".csv", ".xlsx", ".gpkg", ".geojson", ".parquet")
KINDS = ("sites", "afforestation")
#: Rows an Excel sheet holds below its header (1 048 576 in all).
EXCEL_ROW_LIMIT = 1_048_575
#: Default cap on the rows of a site workbook: the top of the ranking; the complete list is in the
#: CSV, GeoPackage or GeoParquet written beside it.
MAX_EXCEL_ROWS = 100_000

# Attribute the embedded QGIS style grades on, per kind, and whether small values are "better"
# (afforestation rank 1 is the most suitable parcel, so it gets the strongest colour).
_STYLE_FIELD = {"sites": ("annual_kwh", False), "afforestation": ("rank", True)}

# column -> (English header with unit, Chinese label, Excel number format or None for text)
_COLUMNS: dict[str, tuple[str, str, str | None]] = {
    "rank": ("rank", "排名", "0"),
    "id": ("id", "编号", None),
    "name": ("name", "名称", None),
    "street": ("street", "街道/镇", None),
    "category": ("category", "类别", None),
    "roof_type": ("roof type", "屋顶类型", None),
    "roof_tilt": ("roof tilt [°]", "屋顶倾角", "0.0"),
    "roof_azimuth": ("roof azimuth [°, 180 = south]", "屋顶方位角", "0"),
    "roof_area_m2": ("roof area [m²]", "屋顶面积", "#,##0.0"),
    "usable_area_m2": ("usable area [m²]", "可用面积", "#,##0.0"),
    "capacity_kwp": ("capacity [kWp]", "装机容量", "#,##0.0"),
    "specific_yield_kwh_kwp": ("specific yield [kWh/kWp]", "单位装机年发电量", "#,##0"),
    "shading_factor": ("shading factor [0–1]", "遮挡系数", "0.00"),
    "annual_kwh": ("annual yield [kWh]", "年发电量", "#,##0"),
    "co2_t": ("CO₂ avoided [t/yr]", "年减排二氧化碳", "#,##0.0"),
    "coal_t": ("standard coal saved [tce/yr]", "年节约标准煤", "#,##0.0"),
    "reason": ("reason", "说明", None),
    "year_built": ("year built", "建成年份", "0"),
    "pv_kw": ("installed PV [kW]", "已装光伏", "#,##0.0"),
    "is_new": ("new building", "新建建筑", None),
    "floor_area_m2": ("floor area [m²]", "建筑面积", "#,##0"),
    "floors": ("floors", "层数", "0"),
    "height": ("height [m]", "高度", "0.0"),
    "code": ("land-use code", "地类编码", None),
    "class_name": ("land-use class", "地类名称", None),
    "zone": ("zone", "管控分区", None),
    "area_ha": ("area [ha]", "面积", "#,##0.00"),
    "suitability": ("suitability", "适宜性", None),
    "tier": ("suitability tier [1 = first]", "优先级", "0"),
    "area_ha_geometric": ("geometric area [ha]", "图形面积", "#,##0.00"),
    "closes_gap": ("within the gap", "可补足差距", None),
    "cumulative_ha": ("cumulative area [ha]", "累计面积", "#,##0.00"),
    "target_id": ("target", "目标", None),
    "capex_yuan": ("capital cost [元]", "投资", "#,##0"),
    "annual_savings_yuan": ("first-year savings [元/yr]", "首年收益", "#,##0"),
    "annual_om_yuan": ("O&M [元/yr]", "年运维费用", "#,##0"),
    "payback_years": ("simple payback [yr]", "静态回收期", "0.0"),
    "npv_yuan": ("net present value [元]", "净现值", "#,##0"),
    "irr": ("internal rate of return", "内部收益率", "0.0%"),
    "lcoe_yuan_kwh": ("LCOE [元/kWh]", "平准化度电成本", "0.000"),
    "self_consumption_share": ("self-consumed share", "自发自用比例", "0%"),
    "value_yuan_kwh": ("value of a kWh [元/kWh]", "度电收益", "0.000"),
    "emc_owner_yuan": ("EMC owner's share [元/yr]", "合同能源管理业主分享", "#,##0"),
    "emc_investor_yuan": ("EMC investor's share [元/yr]", "合同能源管理投资方分享", "#,##0"),
    "emc_investor_payback_years": ("EMC investor payback [yr]", "投资方回收期", "0.0"),
    "parcel_id": ("parcel id", "地块编号", None),
    "kind": ("ground PV type", "地面光伏类型", None),
    "density_kwp_m2": ("power density [kWp/m²]", "装机密度", "0.000"),
    "usable_share": ("usable share", "可用比例", "0%"),
    "connectivity_gain": ("connectivity gain [% of PC]", "连通性增益", "0.00"),
    "bridges": ("joins two or more patches", "连接斑块", None),
    "rank_connectivity": ("rank by connectivity", "连通性排名", "0"),
    "lon": ("longitude [°E, WGS84]", "经度", "0.000000"),
    "lat": ("latitude [°N, WGS84]", "纬度", "0.000000"),
}
# Unit suffixes of column names, for columns the table above does not know.
_SUFFIX_UNITS = (
    ("_m2", "m²", "#,##0.0"),
    ("_ha", "ha", "#,##0.00"),
    ("_kwh", "kWh", "#,##0"),
    ("_kwp", "kWp", "#,##0.0"),
    ("_m3", "m³", "#,##0"),
    ("_t", "t", "#,##0.0"),
    ("_share", "share", "0.0%"),
)


# --------------------------------------------------------------------------------------------
# selection


def _as_list(value: str | Iterable[str]) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def select_sites(
    pv: gpd.GeoDataFrame,
    *,
    street: str | Iterable[str] | None = None,
    category: str | Iterable[str] | None = None,
    min_kwp: float | None = None,
    new_only: bool = False,
    without_pv: bool = False,
    top: int | None = None,
    rank_by: str = "annual_kwh",
) -> gpd.GeoDataFrame:
    """Filter and rank the rooftop PV sites.

    Parameters
    ----------
    pv : GeoDataFrame
        The ``buildings_pv`` layer (one row per building; see DESIGN §4.3).
    street : str or list of str, optional
        Keep buildings in these streets/towns (街道/镇), as spelled in the ``street`` column.
    category : str or list of str, optional
        Keep these canonical categories (``government``, ``public``, ``commercial``,
        ``industrial``, ``residential``, ``rural_residential``, ``other``).
    min_kwp : float, optional
        Keep roofs with at least this capacity [kWp].
    new_only : bool
        Keep only new public-institution and factory buildings (``is_new``).
    without_pv : bool
        Keep only roofs with no installed PV yet (``pv_kw`` 0 or missing).
    top : int, optional
        Keep the first ``top`` sites after ranking.
    rank_by : {"annual_kwh", "capacity_kwp", "specific_yield_kwh_kwp", "payback_years", \
"npv_yuan", "irr", "lcoe_yuan_kwh"}
        Ranking key [kWh/yr, kWp, kWh/kWp, yr, 元, -, 元/kWh], descending except
        ``payback_years`` and ``lcoe_yuan_kwh`` (ascending: the shortest payback first); sites
        without a value go last; ties are broken by ``id`` ascending so that the order is the
        same on every run.  When no site has an ``annual_kwh`` (yields not computed: no weather
        near the district) the default ranks by ``capacity_kwp``.

    Returns
    -------
    GeoDataFrame
        The sites with ``capacity_kwp > 0`` that pass the filters, sorted by rank, with a
        ``rank`` column (1 = best) first.  Ids and index labels are those of ``pv``.

    Raises
    ------
    InputError
        For an unknown street, category or ranking key (listing the valid values), a negative
        ``min_kwp``, a ``top`` below 1, or a filter whose column is missing from ``pv``.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> pv = gpd.GeoDataFrame(
    ...     {"id": ["A", "B", "C", "D"], "street": ["金桥街道", "金桥街道", "华明街道", "金桥街道"],
    ...      "category": ["industrial", "public", "industrial", "residential"],
    ...      "capacity_kwp": [120.0, 35.0, 300.0, 0.0],
    ...      "annual_kwh": [156000.0, 44800.0, 390000.0, 0.0], "pv_kw": [0.0, 10.0, 0.0, 0.0]},
    ...     geometry=[shapely.box(534000 + 100 * i, 4331000, 534040 + 100 * i, 4331030)
    ...               for i in range(4)], crs="EPSG:4548")
    >>> select_sites(pv)[["rank", "id", "annual_kwh"]]
       rank id  annual_kwh
    2     1  C    390000.0
    0     2  A    156000.0
    1     3  B     44800.0
    >>> select_sites(pv, street="金桥街道", without_pv=True)[["rank", "id", "capacity_kwp"]]
       rank id  capacity_kwp
    0     1  A         120.0
    >>> select_sites(pv, street="金钟街道")
    Traceback (most recent call last):
    ...
    gis._errors.InputError: error: column 'street': unknown street(s): 金钟街道 ...
    """
    problems = Problems()
    if rank_by not in RANK_BY:
        problems.add(
            f"unknown ranking key {rank_by!r}",
            value=rank_by,
            hint=f"use one of: {', '.join(RANK_BY)}",
        )
    elif rank_by not in pv.columns:
        problems.add(f"the buildings layer has no column {rank_by!r} to rank by", column=rank_by)
    if "capacity_kwp" not in pv.columns:
        problems.add("the buildings layer has no column 'capacity_kwp'", column="capacity_kwp",
                     hint="pass the buildings_pv layer (run the PV analysis first)")
    streets: list[str] = []
    if street is not None:
        streets = _as_list(street)
        if "street" not in pv.columns:
            problems.add("cannot filter by street: the buildings layer has no 'street' column",
                         column="street", hint="map a street column in the run file")
        else:
            known = sorted(pv["street"].dropna().astype(str).unique().tolist())
            unknown = [s for s in streets if s not in known]
            if unknown:
                problems.add(
                    f"unknown street(s): {', '.join(unknown)}",
                    column="street",
                    value=unknown[0] if len(unknown) == 1 else unknown,
                    hint=f"valid streets: {', '.join(known) or '(none)'}",
                )
    categories: list[str] = []
    if category is not None:
        categories = _as_list(category)
        unknown = [c for c in categories if c not in CATEGORIES]
        if unknown:
            problems.add(
                f"unknown category(ies): {', '.join(unknown)}",
                column="category",
                value=unknown[0] if len(unknown) == 1 else unknown,
                hint=f"valid categories: {', '.join(CATEGORIES)}",
            )
        if "category" not in pv.columns:
            problems.add("cannot filter by category: the buildings layer has no 'category' column",
                         column="category")
    if min_kwp is not None and not (_is_number(min_kwp) and min_kwp >= 0):
        problems.add("the minimum capacity must be a number ≥ 0 [kWp]", value=min_kwp)
    if top is not None and not (_is_number(top) and int(top) == top and top >= 1):
        problems.add("top must be a whole number ≥ 1", value=top)
    if new_only and "is_new" not in pv.columns:
        problems.add("cannot keep new buildings only: the layer has no 'is_new' column",
                     column="is_new", hint="give the buildings a year_built column")
    problems.raise_if_errors()

    capacity = pd.to_numeric(pv["capacity_kwp"], errors="coerce")
    keep = (capacity > 0).fillna(False).to_numpy(dtype=bool)
    if streets:
        keep = keep & pv["street"].isin(streets).fillna(False).to_numpy(dtype=bool)
    if categories:
        keep = keep & pv["category"].isin(categories).fillna(False).to_numpy(dtype=bool)
    if min_kwp is not None:
        keep = keep & (capacity >= min_kwp).fillna(False).to_numpy(dtype=bool)
    if new_only:
        keep = keep & pv["is_new"].fillna(False).astype(bool).to_numpy(dtype=bool)
    if without_pv and "pv_kw" in pv.columns:
        installed = pd.to_numeric(pv["pv_kw"], errors="coerce").fillna(0.0)
        keep = keep & (installed <= 0).to_numpy(dtype=bool)

    out = pv.loc[keep].copy()
    if rank_by == "annual_kwh" and len(out) and pd.to_numeric(
            out[rank_by], errors="coerce").isna().all():
        rank_by = "capacity_kwp"  # yields not computed: capacity is the next best measure
    key = pd.to_numeric(out[rank_by], errors="coerce")
    ids = out["id"].astype(str) if "id" in out.columns else pd.Series(out.index.astype(str),
                                                                       index=out.index)
    # A stable two-key order: best first, then id, so equal yields never swap between runs;
    # buildings without a value for the key go last.
    order = pd.DataFrame({"key": key, "id": ids}).sort_values(
        ["key", "id"], ascending=[rank_by in RANK_ASCENDING, True], na_position="last",
        kind="mergesort"
    )
    out = out.loc[order.index]
    if top is not None:
        out = out.iloc[: int(top)]
    out = out.drop(columns=["rank"], errors="ignore")
    out.insert(0, "rank", np.arange(1, len(out) + 1, dtype="int64"))
    return out


def sites_from_run(run_dir: str | Path) -> gpd.GeoDataFrame:
    """Read the ``buildings_pv`` layer of a finished run.

    Parameters
    ----------
    run_dir : str or Path
        A run's output folder (holding ``run.json`` and ``buildings_pv.gpkg``), or its
        ``run.json``.

    Returns
    -------
    GeoDataFrame
        Every building with its PV figures, in the run's working CRS.

    Raises
    ------
    InputError
        When the folder or its ``buildings_pv.gpkg`` is missing.
    """
    run_dir = Path(run_dir)
    if run_dir.is_file() and run_dir.name == "run.json":
        run_dir = run_dir.parent
    path = run_dir / "buildings_pv.gpkg"
    if not path.is_file():
        raise InputError(
            Problem(
                f"no buildings_pv.gpkg in {run_dir}",
                file=str(path),
                hint="run `gis-planner run RUNFILE` first (or point to its output folder)",
            )
        )
    layers = [name for name, geom in pyogrio.list_layers(path) if geom is not None]
    layer = "buildings_pv" if "buildings_pv" in layers else (layers[0] if layers else None)
    return gpd.read_file(path, layer=layer)


# --------------------------------------------------------------------------------------------
# exports


def export(
    gdf: gpd.GeoDataFrame,
    path: str | Path,
    *,
    meta: Mapping[str, Any] | None = None,
    kind: Literal["sites", "afforestation"] = "sites",
    max_excel_rows: int = MAX_EXCEL_ROWS,
    complete_in: Iterable[str] = (),
) -> Path:
    """Write a site list (or the afforestation candidates) in the format of ``path``'s suffix.

    Parameters
    ----------
    gdf : GeoDataFrame
        Sites from :func:`select_sites` or afforestation candidate parcels, in a projected CRS.
    path : str or Path
        Output file.  ``.csv``: UTF-8 with BOM (Excel shows Chinese), no geometry, centroid
        ``lon``/``lat`` [°, WGS84]; ``.xlsx``: a sheet of the rows (headers with units and Chinese
        labels, number formats, frozen header, autofilter) and a ``metadata`` sheet; ``.gpkg``:
        the layer with a QGIS style embedded (``layer_styles`` table); ``.geojson``: WGS84
        (RFC 7946); ``.parquet``: GeoParquet in the layer's CRS.
    meta : mapping, optional
        Run name, time, parameters and definitions, written to the Excel metadata sheet (keys
        ``run``, ``time``, ``parameters``, ``definitions`` and any other), and as the style
        description in a GeoPackage.
    kind : {"sites", "afforestation"}
        What the rows are; names the sheet/layer and chooses the style.
    max_excel_rows : int
        ``.xlsx`` only: the workbook holds the first ``max_excel_rows`` rows (the top of the
        ranking; 1 to 1 048 575, Excel's limit below the header).  Its metadata sheet gives the
        number of rows of the complete list and ``complete_in``.
    complete_in : iterable of str
        ``.xlsx`` only: the files that hold the complete list (for example ``sites.csv``),
        named on the metadata sheet when rows were left out.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    InputError
        For an unsupported suffix or kind (listing the supported ones), or a layer without CRS.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> import geopandas as gpd, shapely
    >>> sites = gpd.GeoDataFrame({"rank": [1], "id": ["A"], "capacity_kwp": [120.0]},
    ...                          geometry=[shapely.box(534000, 4331000, 534040, 4331030)],
    ...                          crs="EPSG:4548")
    >>> out = export(sites, pathlib.Path(tempfile.mkdtemp()) / "sites.csv")
    >>> pd.read_csv(out, encoding="utf-8-sig")[["rank", "id", "capacity_kwp", "lon", "lat"]].round(3)
       rank id  capacity_kwp      lon     lat
    0     1  A         120.0  117.393  39.112
    >>> export(sites, out.with_suffix(".shp"))
    Traceback (most recent call last):
    ...
    gis._errors.InputError: error: file ...sites.shp: cannot write 'sites.shp': unsupported file type '.shp' -> use one of: .csv, .xlsx, .gpkg, .geojson, .parquet
    """
    path = Path(path)
    _check_exports(gdf, [path], kind=kind, max_excel_rows=max_excel_rows)
    return _jobs(gdf, [path], meta=meta, kind=kind, max_excel_rows=max_excel_rows,
                 complete_in=complete_in)[0]()


def export_jobs(
    gdf: gpd.GeoDataFrame,
    paths: Iterable[str | Path],
    *,
    meta: Mapping[str, Any] | None = None,
    kind: Literal["sites", "afforestation"] = "sites",
    max_excel_rows: int = MAX_EXCEL_ROWS,
    complete_in: Iterable[str] = (),
) -> list[Callable[[], Path]]:
    """The writers of one list to several files, sharing the work they have in common.

    Each item, called, writes one of ``paths`` exactly as :func:`export` would and returns it.
    The table of attributes with centroid longitude/latitude is built once, by the first writer
    that needs it, and the writers may run at the same time in threads (see
    :func:`gis.io.run_jobs`): a run writes ``sites.csv``, ``sites.xlsx`` and ``sites.gpkg`` side
    by side.

    Parameters
    ----------
    gdf : GeoDataFrame
        The list (see :func:`export`).
    paths : iterable of str or Path
        Output files; each suffix chooses the format as in :func:`export`.
    meta, kind, max_excel_rows, complete_in
        As in :func:`export`.

    Returns
    -------
    list of callables
        One writer per path, in the order of ``paths``.

    Raises
    ------
    InputError
        As :func:`export`, for every path at once, before anything is written.
    """
    paths = [Path(p) for p in paths]
    _check_exports(gdf, paths, kind=kind, max_excel_rows=max_excel_rows)
    return _jobs(gdf, paths, meta=meta, kind=kind, max_excel_rows=max_excel_rows,
                 complete_in=complete_in)


def _check_exports(gdf: gpd.GeoDataFrame, paths: list[Path], *, kind: str,
                   max_excel_rows: int) -> None:
    """Every reason not to write ``paths`` (unsupported suffix, kind, row cap, missing CRS)."""
    problems = Problems()
    for path in paths:
        suffix = path.suffix.lower()
        if suffix not in SUFFIXES:
            problems.add(
                f"cannot write {path.name!r}: unsupported file type {suffix or '(none)'!r}",
                file=str(path),
                hint=f"use one of: {', '.join(SUFFIXES)}",
            )
    if kind not in KINDS:
        problems.add(f"unknown export kind {kind!r}", value=kind, hint=f"use one of: {', '.join(KINDS)}")
    if not (_is_number(max_excel_rows) and int(max_excel_rows) == max_excel_rows
            and 1 <= max_excel_rows <= EXCEL_ROW_LIMIT):
        problems.add(f"the Excel row cap must be a whole number from 1 to {EXCEL_ROW_LIMIT:,}",
                     value=max_excel_rows, hint="set [output] max_excel_rows accordingly")
    if gdf.crs is None and any(p.suffix.lower() in (".csv", ".xlsx", ".geojson") for p in paths):
        problems.add("the layer has no CRS, so it cannot be placed in WGS84 longitude/latitude",
                     hint="set the layer's CRS before exporting")
    problems.raise_if_errors()


def _jobs(gdf: gpd.GeoDataFrame, paths: list[Path], *, meta: Mapping[str, Any] | None,
          kind: str, max_excel_rows: int, complete_in: Iterable[str]) -> list[Callable[[], Path]]:
    """One writer per (checked) path, sharing the table with longitude/latitude."""
    meta = dict(meta or {})
    complete = [str(f) for f in complete_in]
    table = _SharedTable(gdf)

    def job(path: Path) -> Callable[[], Path]:
        suffix = path.suffix.lower()

        def write() -> Path:
            if suffix == ".csv":
                _write_csv(gdf, path, meta=meta, kind=kind, table=table(),
                           float_text=table.float_text)
            elif suffix == ".xlsx":
                _write_xlsx(gdf, path, meta=meta, kind=kind, max_rows=int(max_excel_rows),
                            complete_in=complete, table=table)
            else:
                {".gpkg": _write_gpkg, ".geojson": _write_geojson,
                 ".parquet": _write_parquet}[suffix](gdf, path, meta=meta, kind=kind)
            return path

        if suffix in (".csv", ".xlsx"):
            write.prepare = table.prepare  # what they share, made ahead (_SharedTable.prepare)
        return write

    return [job(path) for path in paths]


class _SharedTable:
    """:func:`_table_with_lonlat` of a list, built once for the writers that share it, and the
    text of its float columns' doubles (:func:`gis.csvtext.float_strings`), made once for the
    CSV and the workbook."""

    def __init__(self, gdf: gpd.GeoDataFrame) -> None:
        self.gdf = gdf
        self._lock = threading.Lock()
        self._table: pd.DataFrame | None = None
        self._text: dict[int, Any] = {}
        self._text_lock = threading.Lock()

    def __call__(self) -> pd.DataFrame:
        with self._lock:
            if self._table is None:
                self._table = _table_with_lonlat(self.gdf)
            return self._table

    def float_text(self, j: int):
        """Arrow's text of column ``j``'s doubles (whole column); None if not float64."""
        from gis import csvtext

        column = self().iloc[:, j]
        if column.dtype != np.float64:
            return None
        with self._text_lock:
            if j not in self._text:
                self._text[j] = csvtext.float_strings(column.to_numpy())
            return self._text[j]

    def prepare(self) -> None:
        """Make the table and the text of every float column now: before the CSV and the
        workbook are written in two forked processes, so that each inherits them instead of
        making them again.

        In two threads (GEOS, PROJ and Arrow release the interpreter lock): the centroids'
        longitude and latitude beside the text of the list's own float columns, which are the
        table's (:func:`_table_with_lonlat` copies them), then the text of ``lon`` and ``lat``.
        Each column is made by one thread.  The threads end before the fork: the run's Arrow
        buffers then come from an allocator that allows it
        (:func:`gis._schedule.fork_safe_allocator`).
        """
        from gis import csvtext

        geometry = self.gdf.geometry.name
        names = [c for c in self.gdf.columns if c != geometry]  # the table's first columns

        def text(j: int, values: np.ndarray) -> None:
            made = csvtext.float_strings(values)
            with self._text_lock:
                self._text.setdefault(j, made)

        # the columns' arrays are taken here, before the table's thread reads the list
        arrays = [(j, self.gdf[name].to_numpy()) for j, name in enumerate(names)
                  if self.gdf[name].dtype == np.float64]
        with ThreadPoolExecutor(2, thread_name_prefix="gis-site-table") as pool:
            table = pool.submit(self)
            own = [pool.submit(text, j, values) for j, values in arrays]
            table = table.result()
            added = [pool.submit(text, j, table.iloc[:, j].to_numpy())
                     for j in range(len(names), table.shape[1])
                     if table.iloc[:, j].dtype == np.float64]
            for future in own + added:
                future.result()


def _table_with_lonlat(gdf: gpd.GeoDataFrame) -> pd.DataFrame:
    """Attributes without geometry plus centroid longitude/latitude [°, WGS84]."""
    geom = gdf.geometry
    if geom.crs is not None and geom.crs.is_geographic:
        # centroids in degrees are distorted; take them in a local metric CRS
        geom = geom.to_crs(geom.estimate_utm_crs())
    if geom.crs is None:
        raise ValueError("Cannot transform naive geometries.  Please set a crs on the object "
                         "first.")
    # the transformer every writer thread shares (gis.io.lonlat_transformer)
    centroids = io.to_lonlat(shapely.centroid(np.asarray(geom.values)), geom.crs)
    table = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    # 7 decimals of a degree ≈ 1 cm: enough to find a roof, stable across platforms
    table["lon"] = np.round(shapely.get_x(centroids), 7)
    table["lat"] = np.round(shapely.get_y(centroids), 7)
    return table


def csv_text(gdf: gpd.GeoDataFrame) -> str:
    """The text of a list's ``.csv`` export, without the byte-order mark.

    The one formatter of CSV rows: :func:`export` writes it, and the map pages carry it so that
    their downloads equal the command line's file (see :mod:`gis.sitepanel`).
    """
    return _csv_bytes(_table_with_lonlat(gdf)).decode("utf-8")


def _csv_bytes(table: pd.DataFrame, float_text: Callable | None = None) -> bytes:
    """``table.to_csv(index=False, lineterminator="\\n")`` in UTF-8 (:mod:`gis.csvtext`)."""
    from gis import csvtext

    return csvtext.csv_bytes(table, lineterminator="\n", float_text=float_text)


def _write_csv(gdf: gpd.GeoDataFrame, path: Path, *, meta: dict, kind: str,
               table: pd.DataFrame | None = None, float_text: Callable | None = None) -> None:
    data = _csv_bytes(_table_with_lonlat(gdf) if table is None else table, float_text)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        # the BOM makes Excel open the file as UTF-8 instead of the system code page (GBK)
        fh.write("\ufeff".encode())
        fh.write(data)


def _header(column: str) -> tuple[str, str | None]:
    """Header text ("english [unit] / 中文") and Excel number format of a column."""
    if column in _COLUMNS:
        english, chinese, fmt = _COLUMNS[column]
        return f"{english} / {chinese}", fmt
    for suffix, unit, fmt in _SUFFIX_UNITS:
        if column.endswith(suffix):
            return f"{column.removesuffix(suffix).replace('_', ' ')} [{unit}]", fmt
    return column, None


def _text_width(text: str) -> int:
    """Display width in Excel character units: CJK characters take two."""
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def _flatten(prefix: str, value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, Mapping):
        rows: list[tuple[str, Any]] = []
        for key, sub in value.items():
            rows.extend(_flatten(f"{prefix}.{key}" if prefix else str(key), sub))
        return rows
    if isinstance(value, (list, tuple)):
        return [(prefix, json.dumps(list(value), ensure_ascii=False, default=str))]
    if value is None or isinstance(value, (bool, int, float, str)):
        return [(prefix, value)]
    return [(prefix, str(value))]


def _excel_layout(table: pd.DataFrame) -> tuple[list[str], list[str | None], list[int]]:
    """Header texts, number formats and column widths [Excel character units] of the sheet."""
    headers, formats, widths = [], [], []
    for column in table.columns:
        header, fmt = _header(column)
        if fmt is None and pd.api.types.is_float_dtype(table[column]):
            fmt = "#,##0.00"
        sample = [str(v) for v in table[column].head(200).tolist() if not pd.isna(v)]
        widest = max([_text_width(s) for s in sample] + [12])
        header_width = max(_text_width(part) for part in header.split(" / "))
        headers.append(header)
        formats.append(fmt)
        widths.append(min(max(widest, header_width) + 2, 50))
    return headers, formats, widths


def _metadata_rows(meta: dict, kind: str, *, rows: int, rows_total: int,
                   complete_in: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = [
        ("kind", kind), ("rows", rows), ("rows in the complete list", rows_total),
        ("complete list in", complete_in), ("crs of coordinates", "EPSG:4326 (WGS84)"),
    ]
    for key, value in meta.items():
        out.extend(_flatten(str(key), value))
    return out


def _write_xlsx(gdf: gpd.GeoDataFrame, path: Path, *, meta: dict, kind: str,
                max_rows: int = MAX_EXCEL_ROWS, complete_in: Iterable[str] = (),
                table: Callable[[], pd.DataFrame] | None = None) -> None:
    """The sheet of the rows and a ``metadata`` sheet (:func:`gis.xlsx.write_workbook`).

    Only the first ``max_rows`` rows go into the workbook (Excel holds 1 048 576 rows, header
    included); the metadata sheet says how many the complete list has and which files hold it.
    """
    from gis import xlsx

    rows_total = len(gdf)
    cut = rows_total > max_rows
    float_text = None
    if table is None or (cut and gdf.crs is not None and gdf.crs.is_geographic):
        # (in degrees the centroids are taken in a UTM zone chosen from the rows written)
        table = _table_with_lonlat(gdf.iloc[:max_rows] if cut else gdf)
    else:
        float_text = table.float_text if isinstance(table, _SharedTable) else None
        table = table().iloc[:max_rows] if cut else table()
    headers, formats, widths = _excel_layout(table)
    where = ", ".join(complete_in) if rows_total > len(table) else "this workbook"
    metadata = _metadata_rows(meta, kind, rows=len(table), rows_total=rows_total,
                              complete_in=where or "not written: export the list to .csv, "
                                                   ".gpkg or .parquet for every row")
    with atomic_path(path) as tmp:
        xlsx.write_workbook(tmp, table, sheet=kind, headers=headers, formats=formats,
                            widths=widths, metadata=metadata, created=_parse_time(meta.get("time")),
                            float_text=float_text)


def _parse_time(value: Any) -> _dt.datetime:
    if isinstance(value, _dt.datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, str):
        try:
            return _dt.datetime.fromisoformat(value).replace(tzinfo=None)
        except ValueError:
            pass
    return _dt.datetime(2000, 1, 1)


# ---- QGIS style: gis.styles (the same styles the run writes into every GeoPackage) -------


def _write_gpkg(gdf: gpd.GeoDataFrame, path: Path, *, meta: dict, kind: str) -> None:
    layer = kind
    field, small_is_best = _STYLE_FIELD[kind]
    if field not in gdf.columns and kind == "afforestation" and "area_ha" in gdf.columns:
        field, small_is_best = "area_ha", False
    values = (pd.to_numeric(gdf[field], errors="coerce").to_numpy(dtype="float64")
              if field in gdf.columns else np.array([], dtype="float64"))
    from dataclasses import replace

    from gis import styles as qgis_styles

    style = replace(qgis_styles.STYLES[(kind, kind)], field=field, reverse=small_is_best)
    bounds = qgis_styles.quantile_breaks(values)
    geom_types = set(gdf.geometry.geom_type.dropna().unique().tolist())
    geom_kind = "marker" if geom_types and geom_types <= {"Point", "MultiPoint"} else "fill"
    description = f"{kind} graduated on {field}"
    if meta.get("run"):
        description += f" — run {meta['run']}"
    styles = pd.DataFrame({
        "f_table_catalog": [""],
        "f_table_schema": [""],
        "f_table_name": [layer],
        "f_geometry_column": ["geom"],
        "styleName": [layer],
        "styleQML": [qgis_styles.qml(style, geom_kind, bounds)],
        "styleSLD": [qgis_styles.sld(layer, style, geom_kind, bounds)],
        "useAsDefault": [True],
        "description": [description],
        "owner": [""],
        "ui": [""],
        "update_time": [_parse_time(meta.get("time"))],
    })
    data = gdf.copy()
    if data.geometry.name != "geometry":
        data = data.rename_geometry("geometry")
    with atomic_path(path) as tmp:
        pyogrio.write_dataframe(data, tmp, layer=layer, driver="GPKG", GEOMETRY_NAME="geom",
                                use_arrow=True)
        pyogrio.write_dataframe(styles, tmp, layer="layer_styles", driver="GPKG", append=False)


def _write_geojson(gdf: gpd.GeoDataFrame, path: Path, *, meta: dict, kind: str) -> None:
    data = gdf.to_crs(4326)
    with atomic_path(path) as tmp:
        # RFC 7946: WGS84 longitude/latitude, 7 decimals (≈ 1 cm)
        pyogrio.write_dataframe(data, tmp, driver="GeoJSON", layer=kind, RFC7946="YES",
                                WRITE_NAME="NO", use_arrow=True)


def _write_parquet(gdf: gpd.GeoDataFrame, path: Path, *, meta: dict, kind: str) -> None:
    with atomic_path(path) as tmp:
        gdf.to_parquet(tmp, index=False)

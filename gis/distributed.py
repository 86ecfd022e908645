"""The partitioned engine: per-building PV and per-zone accounting on dask-geopandas partitions.

``[engine] kind = "dask"`` in the run file routes the two heavy steps of a run through
:class:`Engine` instead of calling :func:`gis.rooftop.pv_potential` and
:func:`gis.ecology.zone_accounts` directly.  Results equal the single-machine path (to floating
point summation order): the tests compare both on a two-worker local cluster.

How the work is split
---------------------
* Features are ordered along a Hilbert curve of their bounding-box centres and cut into
  ``partitions`` contiguous pieces, so each partition covers a compact area: its raster reads
  touch few blocks and its spatial-index queries few zones.  In-memory layers are scattered to
  the workers piece by piece; GeoParquet layers are read partition by partition with
  ``dask_geopandas.read_parquet`` on the workers (:meth:`Engine.pv_potential_parquet`).
* Everything that depends on the whole layer is computed **once** on the client and shipped to
  every worker: the site (centre of all buildings) and its weather (:func:`gis.solar.climate_model`
  when no weather file is given), the specific-yield table of every orientation class
  (:func:`class_yields`, passed as ``known_yields``), the flat-roof ground coverage ratio at that
  latitude, and the unshaded reference of the irradiance raster.  A partition therefore never sees a "local" site
  and per-building figures are independent of how the layer is cut.
* Zone shares are not additive.  Parcels are partitioned (above :data:`CLIENT_ZONE_ROWS`
  parcels, or when ``partitions`` is given); each partition yields the **area sums**
  per accounting unit (zone feature, level union, street); the sums are added over partitions
  and only then divided by the unit areas.  Forest stands (a small layer) are accounted in one
  task.  OSM layers, whose overlapping polygons are flattened across the whole layer first, run
  in a single task.

Cluster
-------
By default a :class:`distributed.LocalCluster` of 2 worker **processes** with 1 thread each: the
per-building work mixes GIL-releasing shapely/numpy calls with pandas, pvlib and exactextract
code that holds the GIL, so threads would serialise on it; separate processes also keep one
worker's peak memory from adding to another's.  The price is pickling partitions between
processes (geometries travel as WKB) and about two seconds of start-up.  With ``address`` the
engine connects to a running scheduler instead (the raster must then be readable at the same
path on every worker) and never shuts that cluster down.

What the transfers cost was measured (10⁵ buildings, ``bench/README.md``): partitions are
scattered with ``hash=False`` (dask would otherwise tokenise them by pickling every geometry
on the client: ≈ 6 s per 10⁵ buildings), the PV table comes back without its geometry (the
client puts back the input's footprints), the cluster starts in a thread while the client
prepares the partitions, each local worker's numba kernels run on its share of the cores (two
workers × two threads on two cores only wait on each other), and parcel layers up to
:data:`CLIENT_ZONE_ROWS` are accounted in the client.

Province-scale runs
-------------------
For layers larger than memory use GeoParquet partitions in and out::

    from gis import distributed
    distributed.write_partitions(buildings, "buildings.parquet/", npartitions=200)
    with distributed.Engine(EngineSpec("dask", address="tcp://scheduler:8786")) as eng:
        eng.pv_potential_parquet("buildings.parquet/", "buildings_pv.parquet/",
                                 params=params, irradiance="irradiance.tif", ...)

Each output partition is one GeoParquet file (``part.<i>.parquet``); the folder reads back with
``dask_geopandas.read_parquet`` or ``geopandas.read_parquet``.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import tempfile
import threading
import weakref
from dataclasses import replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gis.config import EngineSpec
from gis.io import centre_lonlat, replace_dir

#: Worker processes of the default local cluster.
LOCAL_WORKERS = 2
#: Buildings or parcels per partition when the run file gives no ``partitions``.
ROWS_PER_PARTITION = 100_000

#: Parcels accounted in the client process, whole, when the run file gives no ``partitions``:
#: shipping them to the workers costs more than the accounting itself (2.5 × 10⁵ parcels:
#: 3.2 s in one process, 13.4 s through two workers; 2.5 × 10⁴: 0.75 s against 1.7 s).
CLIENT_ZONE_ROWS = 1_000_000
#: Key of the shared PV inputs that carries the kernel threads of each worker (not an
#: argument of :func:`gis.rooftop.pv_potential`).
_KERNEL_THREADS = "_kernel_threads"
#: Ratio columns of the zone table and the additive column each is derived from.
_RATIOS = {
    "bluegreen_share": "bluegreen_ha",
    "forest_coverage": "forest_ha",
    "bluegreen_share_official": "bluegreen_ha_official",
    "forest_coverage_official": "forest_ha_official",
}
#: Per-unit columns that are the same in every partition's table (unit properties).
_UNIT_COLUMNS = ("zone", "level", "kind", "area_ha")
_STOCK_COLUMNS = ("stock_m3", "carbon_t", "stock_basis")
_GEOMETRIC_PARCELS = re.compile(r"(\d+) parcels without TBDLMJ counted geometrically")


# ---------------------------------------------------------------------------------------------
# Partitioning
# ---------------------------------------------------------------------------------------------
def hilbert_order(geoms: gpd.GeoSeries) -> np.ndarray:
    """Positions that sort features along a Hilbert curve of their bounding-box centres.

    Missing or empty geometries go last (they carry no location).

    Parameters
    ----------
    geoms : geopandas.GeoSeries

    Returns
    -------
    numpy.ndarray
        Integer positions (a stable sort, so ties keep their input order).
    """
    arr = np.asarray(geoms.array, dtype=object)
    n = len(arr)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    bounds = shapely.bounds(arr)
    centre = np.column_stack([(bounds[:, 0] + bounds[:, 2]) / 2, (bounds[:, 1] + bounds[:, 3]) / 2])
    located = np.isfinite(centre).all(axis=1)
    if not located.any():
        return np.arange(n)
    total = (np.nanmin(bounds[:, 0]), np.nanmin(bounds[:, 1]),
             np.nanmax(bounds[:, 2]), np.nanmax(bounds[:, 3]))
    pts = gpd.GeoSeries(shapely.points(centre[located]))
    dist = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    dist[located] = pts.hilbert_distance(total_bounds=total, level=16).to_numpy()
    return np.argsort(dist, kind="stable")


def default_partitions(n: int, spec: EngineSpec | None = None, *, workers: int = LOCAL_WORKERS
                       ) -> int:
    """How many partitions ``n`` rows are cut into.

    ``spec.partitions`` when given, else enough for every worker to have two partitions and no
    partition above :data:`ROWS_PER_PARTITION` rows; never more than ``n``.
    """
    if spec is not None and spec.partitions:
        k = int(spec.partitions)
    else:
        k = max(2 * workers, math.ceil(n / ROWS_PER_PARTITION))
    return max(1, min(k, n))


def split(gdf: gpd.GeoDataFrame, npartitions: int) -> tuple[list[gpd.GeoDataFrame], np.ndarray]:
    """``gdf`` in Hilbert order, cut into ``npartitions`` contiguous pieces (input index kept).

    Returns
    -------
    parts : list of geopandas.GeoDataFrame
        The non-empty pieces.
    order : numpy.ndarray
        Positions of the input rows in Hilbert order (``gdf.iloc[order]``).
    """
    order = hilbert_order(gdf.geometry)
    cuts = np.linspace(0, len(gdf), max(1, npartitions) + 1).astype(int)
    parts = [gdf.iloc[order[a:b]] for a, b in zip(cuts[:-1], cuts[1:], strict=True) if b > a]
    return parts, order


def write_partitions(gdf: gpd.GeoDataFrame, path: str | Path, *, npartitions: int) -> Path:
    """Write ``gdf`` as a folder of spatially sorted GeoParquet partitions.

    Parameters
    ----------
    gdf : geopandas.GeoDataFrame
        Any layer (CRS kept in the GeoParquet metadata).
    path : str or Path
        Folder to create; replaced whole when the write succeeds.
    npartitions : int
        Number of files ``part.<i>.parquet`` (Hilbert-contiguous pieces).

    Returns
    -------
    pathlib.Path
        The folder.
    """
    parts, _ = split(gdf, min(npartitions, max(len(gdf), 1)))
    with _atomic_dir(path) as tmp:
        for i, part in enumerate(parts):
            part.to_parquet(tmp / f"part.{i}.parquet")
    return Path(path)


# ---------------------------------------------------------------------------------------------
# Work done on the workers (module-level functions: they are pickled by reference)
# ---------------------------------------------------------------------------------------------
def _pv_partition(part: gpd.GeoDataFrame, shared: dict[str, Any],
                  obstacles: gpd.GeoDataFrame | None = None) -> gpd.GeoDataFrame:
    from gis import rooftop

    shared = dict(shared)
    threads = shared.pop(_KERNEL_THREADS, None)
    if threads:
        # the horizon kernels' threads (numba; thread-local setting): the local cluster's
        # workers share the cores, and more threads than cores only wait on each other
        import numba

        numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))
    return rooftop.pv_potential(part, **shared, obstacles=obstacles)


def _pv_partition_table(part: gpd.GeoDataFrame, shared: dict[str, Any],
                        obstacles: gpd.GeoDataFrame | None = None) -> pd.DataFrame:
    """:func:`_pv_partition` without its geometry column, which is the input's footprints: the
    client puts those back instead of receiving them (as WKB) from the worker."""
    out = _pv_partition(part, shared, obstacles)
    name = out.geometry.name
    if name != "geometry" or out.columns[-1] != name:
        raise RuntimeError(f"unexpected geometry column {name!r} in the PV table")
    return pd.DataFrame(out.drop(columns=name))


def _pv_partition_to_file(part: gpd.GeoDataFrame, shared: dict[str, Any], path: str,
                          obstacles: gpd.GeoDataFrame | None = None) -> int:
    if obstacles is not None:
        obstacles = _near(obstacles, part.total_bounds, shared["params"])
    out = _pv_partition(part, shared, obstacles)
    out.to_parquet(path)
    return len(out)


def _import_task_modules() -> None:
    import gis._zonal  # noqa: F401 - exactextract, for the irradiance raster
    import gis.ecology  # noqa: F401
    import gis.rooftop  # noqa: F401


def _zone_partition(part: gpd.GeoDataFrame, zones: gpd.GeoDataFrame, kwargs: dict[str, Any]
                    ) -> pd.DataFrame:
    from gis import ecology

    table = ecology.zone_accounts(part, zones, **kwargs)
    return pd.DataFrame(table.drop(columns=table.geometry.name))


# ---------------------------------------------------------------------------------------------
# The engine
# ---------------------------------------------------------------------------------------------
class Engine:
    """Runs per-building PV and per-zone accounting on a dask cluster.

    Parameters
    ----------
    spec : EngineSpec, optional
        ``address`` of a running scheduler, or None for a local cluster of
        :data:`LOCAL_WORKERS` processes; ``partitions`` overrides :func:`default_partitions`.
    workers : int
        Workers of the local cluster.
    processes : bool
        Local workers as processes (default; see the module notes) or threads.

    Notes
    -----
    The cluster starts on first use.  Use the engine as a context manager (or call
    :meth:`close`) to shut it down; an engine that is garbage-collected shuts its local cluster
    down too.

    Examples
    --------
    >>> with Engine(EngineSpec("dask")) as eng:                       # doctest: +SKIP
    ...     pv = eng.pv_potential(buildings, params=params, irradiance="irradiance.tif")
    """

    def __init__(self, spec: EngineSpec | None = None, *, workers: int = LOCAL_WORKERS,
                 processes: bool = True) -> None:
        self.spec = spec or EngineSpec(kind="dask")
        self.workers = int(workers)
        self.processes = bool(processes)
        self._client = None
        self._finalizer: weakref.finalize | None = None
        self._starting: threading.Thread | None = None
        self._start_error: BaseException | None = None
        self._warm: list = []

    # -- cluster lifecycle ---------------------------------------------------------------------
    @property
    def client(self):
        """The :class:`distributed.Client` (started on first use)."""
        if self._starting is not None:
            self._starting.join()
            self._starting = None
            if self._start_error is not None:
                error, self._start_error = self._start_error, None
                raise error
        if self._client is None:
            self._connect()
        return self._client

    def start(self) -> None:
        """Start the cluster in a thread and return at once; the first use waits for it.

        The workers' processes start, and import the modules their tasks use, while this
        process prepares the partitions (≈ 3.5 s of start-up and ≈ 3 s of imports per worker
        that would otherwise come before the first result).
        """
        if self._client is not None or self._starting is not None:
            return
        import distributed  # noqa: F401 - here, not in the thread: no two threads importing it

        self._starting = threading.Thread(target=self._connect_in_thread, daemon=True,
                                          name="gis-dask-start")
        self._starting.start()

    def _connect_in_thread(self) -> None:
        try:
            self._connect()
        except BaseException as exc:  # raised again by the first use (:attr:`client`)
            self._start_error = exc

    def _connect(self) -> None:
        from distributed import Client, LocalCluster

        if self.spec.address:
            client = Client(self.spec.address)
            cluster = None
        else:
            cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1,
                                   processes=self.processes, dashboard_address=None)
            client = Client(cluster)
        self._finalizer = weakref.finalize(self, _shutdown, client, cluster)
        self._client = client
        if cluster is not None:
            # the tasks' modules, imported while the client prepares the partitions
            self._warm = [client.submit(_import_task_modules, pure=False, workers=[w],
                                        allow_other_workers=False) for w in client.nthreads()]

    def close(self) -> None:
        """Close the client and, for a local cluster, shut the cluster down."""
        if self._starting is not None:
            self._starting.join()
            self._starting = None
            self._start_error = None
        self._warm = []
        if self._finalizer is not None:
            self._finalizer()
        self._client = None
        self._finalizer = None

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _kernel_threads(self) -> int | None:
        """Threads of each worker's compiled kernels: the cores shared among the local
        cluster's workers (None, the kernels' default, on a cluster elsewhere)."""
        if self.spec.address:
            return None
        return max(1, (os.cpu_count() or 1) // max(1, self.workers))

    def _nworkers(self) -> int:
        if self.spec.address:
            return max(1, sum(self.client.nthreads().values()))
        return self.workers

    # -- per-building PV -----------------------------------------------------------------------
    def pv_potential(self, buildings: gpd.GeoDataFrame, **kwargs: Any) -> gpd.GeoDataFrame:
        """:func:`gis.rooftop.pv_potential` over spatial partitions; same arguments, same result.

        Parameters
        ----------
        buildings : geopandas.GeoDataFrame
            Canonical buildings layer in a projected metric CRS.
        **kwargs
            As for :func:`gis.rooftop.pv_potential` (``params``, ``weather``, ``irradiance``,
            ``grid_co2_t_per_mwh``, ``coal_gce_per_kwh``, ``new_building_since`` …).

        Returns
        -------
        geopandas.GeoDataFrame
            One row per building, index and row order of the input.
        """
        from gis import rooftop

        n = len(buildings)
        if n == 0 or buildings.crs is None or buildings.crs.is_geographic:
            # nothing to split, or the local function's own error message
            return rooftop.pv_potential(buildings, **kwargs)
        self.start()  # the cluster starts while the shared inputs and partitions are prepared
        shared = _pv_shared(buildings.crs, buildings.total_bounds, kwargs)
        shared["params"] = _horizon_distance(shared["params"], buildings, shared.get("dsm"))
        shared[_KERNEL_THREADS] = self._kernel_threads()
        k = default_partitions(n, self.spec, workers=self._nworkers())
        parts, order = split(buildings, k)
        obstacles = _partition_obstacles(buildings, parts, shared)
        client = self.client
        # hash=False: keys are not derived from the content, which dask would otherwise tokenise
        # by pickling every geometry on the client (≈ 6 s per 10⁵ buildings)
        shared_f = client.scatter(shared, broadcast=True, hash=False)
        parts_f = client.scatter(parts, hash=False)
        shipped = iter(client.scatter([obs for obs in obstacles if obs is not None], hash=False))
        obstacles_f = [None if obs is None else next(shipped) for obs in obstacles]
        del parts, obstacles
        futures = [client.submit(_pv_partition_table, part, shared_f, obs, pure=False)
                   for part, obs in zip(parts_f, obstacles_f, strict=True)]
        out = pd.concat(client.gather(futures))
        del futures, parts_f, obstacles_f
        inverse = np.empty(n, dtype=np.int64)
        inverse[order] = np.arange(n)
        out = out.iloc[inverse]
        # the footprints come back from the input (the PV table's geometry is the input's)
        return gpd.GeoDataFrame(out, geometry=buildings.geometry.array.copy(), crs=buildings.crs)

    def pv_potential_parquet(self, in_path: str | Path, out_path: str | Path,
                             **kwargs: Any) -> Path:
        """Per-building PV from GeoParquet partitions to GeoParquet partitions.

        Parameters
        ----------
        in_path : str or Path
            A GeoParquet file or a folder of them (canonical building columns, metric CRS),
            ideally spatially sorted (:func:`write_partitions`).
        out_path : str or Path
            Folder written with one ``part.<i>.parquet`` per input partition; replaced whole when
            every partition succeeded.
        **kwargs
            As for :func:`gis.rooftop.pv_potential`.

        Returns
        -------
        pathlib.Path
            ``out_path``.
        """
        import dask
        import dask_geopandas

        from gis import rooftop

        ddf = dask_geopandas.read_parquet(str(in_path))
        bounds = np.asarray(ddf.total_bounds.compute(), dtype=float)
        shared = _pv_shared(ddf.crs, bounds, kwargs)
        client = self.client
        # shading by neighbours: footprints and heights of the whole layer (three columns),
        # from which each partition takes those within reach of it
        slim = ddf[[c for c in ("height", "floors") if c in ddf.columns]
                   + [ddf.geometry.name]].compute()
        shared["params"] = _horizon_distance(shared["params"], slim, shared.get("dsm"))
        obstacles_f = None
        if rooftop.shading_source(slim, shared["params"], dsm=shared.get("dsm")) == "lod1":
            obstacles_f = client.scatter(slim, broadcast=True, hash=False)
        shared[_KERNEL_THREADS] = self._kernel_threads()
        shared_f = client.scatter(shared, broadcast=True, hash=False)
        out_path = Path(out_path)
        with _atomic_dir(out_path) as tmp:
            tasks = [dask.delayed(_pv_partition_to_file)(part, shared_f,
                                                         str(tmp / f"part.{i}.parquet"),
                                                         obstacles_f)
                     for i, part in enumerate(ddf.to_delayed())]
            client.gather(client.compute(tasks))
        return out_path

    # -- per-zone accounting -------------------------------------------------------------------
    def zone_accounts(self, landuse: gpd.GeoDataFrame, zones: gpd.GeoDataFrame,
                      **kwargs: Any) -> gpd.GeoDataFrame:
        """:func:`gis.ecology.zone_accounts` over parcel partitions; same arguments and result.

        Area sums per accounting unit are computed per partition and added; shares are derived
        from the totals.  Stands are accounted in one task; ``scheme = "osm"`` runs whole in one
        task (its overlaps are flattened across the layer).  Up to :data:`CLIENT_ZONE_ROWS`
        parcels, unless the engine's ``partitions`` is set, the accounting runs here, whole.

        Parameters
        ----------
        landuse, zones : geopandas.GeoDataFrame
        **kwargs
            ``scheme``, ``options``, ``stands``, ``streets``, ``official`` as for
            :func:`gis.ecology.zone_accounts`.

        Returns
        -------
        geopandas.GeoDataFrame
            One row per zone feature, level and street, as the local function.
        """
        from gis import ecology

        n = len(landuse)
        if not self.spec.partitions and n <= CLIENT_ZONE_ROWS:
            return ecology.zone_accounts(landuse, zones, **kwargs)
        if n == 0 or str(kwargs.get("scheme")) == "osm":
            client = self.client
            return client.submit(ecology.zone_accounts, landuse, zones, pure=False,
                                 **kwargs).result()
        kwargs = dict(kwargs)
        stands = kwargs.pop("stands", None)
        if kwargs.get("official") is None:
            kwargs["official"] = "area_official_m2" in landuse.columns
        k = default_partitions(n, self.spec, workers=self._nworkers())
        parts, _ = split(landuse, k)
        client = self.client
        zones_f = client.scatter(zones, broadcast=True, hash=False)
        futures = []
        for i, part in enumerate(client.scatter(parts, hash=False)):
            # stands go with the first partition only: their stock is summed there once
            kw = {**kwargs, "stands": stands if i == 0 else None}
            futures.append(client.submit(_zone_partition, part, zones_f, kw, pure=False))
        tables = client.gather(futures)
        table = _combine_zone_tables(tables, has_stands=stands is not None and len(stands) > 0)
        units = ecology.accounting_units(zones, kwargs.get("streets"))
        return gpd.GeoDataFrame(table, geometry=units.geometry.to_numpy(), crs=zones.crs)


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
def _shutdown(client, cluster) -> None:
    client.close()
    if cluster is not None:
        cluster.close()


def _horizon_distance(params, buildings: gpd.GeoDataFrame, dsm: Any):
    """``params`` with the obstacle search distance resolved over the whole layer.

    The default distance follows the tallest building of the layer; a partition must use the
    same, or its horizons would differ from the single-machine ones.
    """
    from gis import horizon, rooftop

    if params.horizon_distance_m is not None:
        return params
    source = rooftop.shading_source(buildings, params, dsm=dsm)
    if source == "dsm":
        return replace(params, horizon_distance_m=horizon.MAX_DISTANCE_M)
    if source == "lod1":
        tops = horizon.building_heights(buildings, storey_height_m=params.storey_height_m)
        tops = np.where(np.isfinite(tops), tops, params.storey_height_m)
        return replace(params, horizon_distance_m=horizon.default_distance(tops))
    return params


def _partition_obstacles(buildings: gpd.GeoDataFrame, parts: list[gpd.GeoDataFrame],
                         shared: dict[str, Any]) -> list[gpd.GeoDataFrame | None]:
    """Per partition, the buildings that can shade its roofs (footprints × heights model).

    Every building within the search distance of the partition's bounds, plus a margin of the
    horizon engine's largest skip block, so that each ray sees the same cells and blocks as on
    one machine: the partitions' figures equal the single-machine ones.
    """
    from gis import rooftop

    params = shared["params"]
    if rooftop.shading_source(buildings, params, dsm=shared.get("dsm")) != "lod1":
        return [None] * len(parts)
    cols = [c for c in ("height", "floors") if c in buildings.columns]
    slim = buildings[cols + [buildings.geometry.name]]
    return [_near(slim, part.total_bounds, params) for part in parts]  # partitions


def _near(obstacles: gpd.GeoDataFrame, bounds, params) -> gpd.GeoDataFrame:
    """The obstacles within the search distance (plus the largest skip block) of ``bounds``."""
    from gis import horizon

    reach = (params.horizon_distance_m
             + 2 * horizon.BLOCK * horizon.BLOCK * params.surface_resolution_m)
    minx, miny, maxx, maxy = bounds
    box = shapely.box(minx - reach, miny - reach, maxx + reach, maxy + reach)
    return obstacles.iloc[np.sort(obstacles.sindex.query(box))]


def _pv_shared(crs, bounds, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Arguments of every partition's ``pv_potential`` with the layer-wide inputs resolved once.

    Site weather, the flat-roof ground coverage ratio and the raster's unshaded reference depend
    on the whole layer (its centre) or the whole raster; resolving them here makes each
    partition's figures equal to the single-machine ones.
    """
    from gis import rooftop, solar

    shared = dict(kwargs)
    params = shared.get("params") or rooftop.pv_params()
    lon, lat = centre_lonlat(crs, bounds)  # the site of the whole layer
    if shared.get("weather") is None:
        shared["weather"] = solar.climate_model(lat, lon)
    if params.ground_coverage_ratio is None:
        params = replace(params, ground_coverage_ratio=rooftop.solstice_gcr(lat, params.flat_tilt))
    irradiance = shared.get("irradiance")
    if irradiance is not None and params.shading_reference_kwh_m2 is None:
        _, reference = rooftop.shading_factors(
            gpd.GeoSeries([], crs=crs), irradiance,
            reference_percentile=params.shading_reference_percentile)
        params = replace(params, shading_reference_kwh_m2=reference)
    shared["params"] = params
    if shared.get("known_yields") is None and not rooftop.no_weather(shared["weather"]):
        table = class_yields(params, shared["weather"])
        if table is not None:
            shared["known_yields"] = table
    return shared


def class_yields(params, weather: tuple[pd.DataFrame, dict], *, max_classes: int = 5000
                 ) -> pd.DataFrame | None:
    """Specific yield of every orientation class a roof can fall in, computed once.

    The classes are those :func:`gis.rooftop.pv_potential` forms: flat roofs carry one class
    (``flat_tilt``, ``flat_azimuth``); pitched roofs any tilt class from 0 to 90° by
    ``tilt_step_deg`` and any azimuth class by ``azimuth_step_deg`` (horizontal: 180° only).
    Shipping this table to every partition (``known_yields``) avoids recomputing pvlib per
    partition.

    Parameters
    ----------
    params : gis.rooftop.PVParams
    weather : (data, meta)
        As for :func:`gis.solar.yield_table`.
    max_classes : int
        Above this many classes (very fine steps) return None: each partition then computes the
        classes it holds.

    Returns
    -------
    pandas.DataFrame or None
        ``roof_type`` ("flat" | "pitched"), ``tilt``, ``azimuth`` [°, class values rounded to
        0.1° as the lookup is] and ``specific_yield_kwh_kwp`` [kWh/kWp/yr].
    """
    from gis import solar

    tstep, astep = params.tilt_step_deg, params.azimuth_step_deg

    def tilt_class(t):
        return np.clip(np.round(np.asarray(t, float) / tstep) * tstep, 0.0, 90.0)

    def az_class(a):
        return np.mod(np.round(np.asarray(a, float) / astep) * astep, 360.0)

    tilts = np.unique(tilt_class(np.arange(0, int(math.ceil(90 / tstep)) + 1) * tstep))
    azimuths = np.unique(az_class(np.arange(0, int(math.ceil(360 / astep)) + 1) * astep))
    if len(tilts) * len(azimuths) > max_classes:
        return None
    tt, aa = np.meshgrid(tilts, azimuths, indexing="ij")
    pitched = pd.DataFrame({"tilt": tt.ravel(), "azimuth": aa.ravel()})
    pitched.loc[pitched["tilt"] == 0, "azimuth"] = 180.0
    ft = float(tilt_class(params.flat_tilt))
    flat = pd.DataFrame({"tilt": [ft],
                         "azimuth": [180.0 if ft == 0 else float(az_class(params.flat_azimuth))]})
    data, meta = weather
    parts = []
    for roof_type, classes, mount in (("flat", flat, params.mount_flat),
                                      ("pitched", pitched, params.mount_pitched)):
        # the same 0.1° values the per-building lookup uses, so each class is computed exactly
        # as the single-machine path computes it
        classes = classes.round(1).drop_duplicates(ignore_index=True)
        table = solar.yield_table(data, meta, classes["tilt"], classes["azimuth"],
                                  params=params.solar(mount), grid=False)
        parts.append(table.assign(roof_type=roof_type))
    out = pd.concat(parts, ignore_index=True)
    return out[["roof_type", "tilt", "azimuth", "specific_yield_kwh_kwp"]]


def _combine_zone_tables(tables: list[pd.DataFrame], *, has_stands: bool) -> pd.DataFrame:
    """Add the per-partition area sums and derive the ratios from the totals."""
    first = tables[0]
    for t in tables[1:]:
        same = all(t[c].equals(first[c]) for c in ("zone", "level", "kind"))
        if len(t) != len(first) or not same:
            raise RuntimeError("partition tables list different accounting units")
    out = first.copy()
    numeric = [c for c in first.columns
               if c not in _UNIT_COLUMNS and pd.api.types.is_numeric_dtype(first[c])
               and not pd.api.types.is_bool_dtype(first[c])]
    unknown = [c for c in numeric if c not in _RATIOS and ("share" in c or "coverage" in c)]
    if unknown:
        raise RuntimeError(f"do not know how to combine ratio columns {unknown} over partitions")
    additive = [c for c in numeric if c not in _RATIOS
                and not (has_stands and c in _STOCK_COLUMNS)]
    for col in additive:
        out[col] = np.sum([t[col].to_numpy(dtype=float) for t in tables], axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        for ratio, num in _RATIOS.items():
            if ratio in out.columns:
                out[ratio] = out[num] / out["area_ha"]
    if "basis" in out.columns:
        out["basis"] = _combined_basis(tables)
    return out


def _combined_basis(tables: list[pd.DataFrame]) -> pd.Series:
    """The ``basis`` text with the count of geometrically counted parcels summed over partitions."""
    counts = [int(m.group(1)) for t in tables if len(t)
              for m in [_GEOMETRIC_PARCELS.search(str(t["basis"].iat[0]))] if m]
    basis = tables[0]["basis"].copy()
    if counts:
        total = sum(counts)
        source = next(t for t in tables if len(t) and _GEOMETRIC_PARCELS.search(str(t["basis"].iat[0])))
        text = _GEOMETRIC_PARCELS.sub(f"{total} parcels without TBDLMJ counted geometrically",
                                      str(source["basis"].iat[0]))
        # the stock part of the text comes from the first table (which saw the stands)
        text = text.split("; stock: ")[0] + "; stock: " + str(basis.iat[0]).split("; stock: ")[-1]
        basis = pd.Series(text, index=basis.index, dtype=basis.dtype)
    return basis


class _atomic_dir:
    """A temporary folder beside ``path`` that replaces ``path`` when the block succeeds."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".part",
                                         dir=self.path.parent))
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        replace_dir(self.tmp, self.path)

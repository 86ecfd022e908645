"""Reading planners' layers and writing outputs safely.

Vector layers are read with pyogrio (any format GDAL reads), rasters with rasterio.  Outputs are
written whole or not at all: :func:`atomic_path` hands out a temporary name in the target folder
and renames it over the final name only when writing succeeded.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS

from gis._errors import Problem


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` on success.

    On any exception (or a kill before the rename) the final file is untouched: either the
    previous version or nothing.  The temporary name keeps the suffix, so drivers that choose the
    format by suffix (GeoPackage, Excel) still work.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_path(d / "a.txt") as tmp:
    ...     _ = tmp.write_text("whole")
    >>> (d / "a.txt").read_text()
    'whole'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".part{path.suffix}",
                                    dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # writers (GDAL, openpyxl) want to create the file themselves
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written to {tmp}")
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def raster_ref(raster) -> tuple[Path, int, str | None]:
    """Path, band and declared CRS of a raster given as a path or a run-file layer spec.

    The declared CRS (``crs =`` in the run file) only stands in for a raster that has none.
    """
    if hasattr(raster, "path"):
        return Path(raster.path), int(getattr(raster, "band", 1) or 1), getattr(raster, "crs", None)
    return Path(raster), 1, None


def replace_dir(stage: Path, target: Path, *, previous: Path | None = None) -> None:
    """Put a finished folder ``stage`` in place of ``target``, by renames.

    The folder ``target`` had is kept as ``previous`` (replacing an older one) when given, else
    removed.  ``stage`` gets ordinary folder permissions (``mkdtemp`` makes it private).
    """
    stage, target = Path(stage), Path(target)
    os.chmod(stage, 0o755)
    if target.exists():
        if previous is not None:
            if previous.exists():
                shutil.rmtree(previous)
            os.replace(target, previous)
        else:
            trash = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, trash)
            shutil.rmtree(trash, ignore_errors=True) if trash.is_dir() else trash.unlink()
    os.replace(stage, target)


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_csv(path: str | Path, frame) -> Path:
    """Write a table as CSV in UTF-8 with BOM (so that Excel shows Chinese), atomically.

    A geometry column, if any, is left out.
    """
    import pandas as pd

    from gis import csvtext

    table = pd.DataFrame(frame).drop(columns="geometry", errors="ignore")
    data = csvtext.csv_bytes(table)  # the bytes of ``table.to_csv(index=False)``, column-wise
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write("\ufeff".encode())
        fh.write(data)
    return Path(path)


def write_gpkg(path: str | Path, gdf, *, layer: str, **options) -> Path:
    """Write a GeoDataFrame as a GeoPackage layer atomically, through Arrow (no per-row Python).

    The index is not written; the geometry column is ``geom`` as GDAL names it.  ``options``
    go to :func:`pyogrio.write_dataframe` (layer or dataset creation options).
    """
    import pyogrio

    with atomic_path(path) as tmp:
        pyogrio.write_dataframe(gdf, tmp, layer=layer, driver="GPKG", use_arrow=True, **options)
    return Path(path)


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


#: Threads that write independent output files at the same time (:func:`run_jobs`).
WRITE_THREADS = min(2, os.cpu_count() or 1)


def run_jobs(jobs: Iterable[Callable[[], Any]], *, threads: int | None = None) -> list[Any]:
    """Run independent writers, a few at a time in threads; return their results in order.

    GDAL's GeoPackage driver, zlib and Arrow's kernels release the GIL for much of their work,
    so on two cores a workbook's compression overlaps a GeoPackage or a CSV.  Every writer
    runs even when one fails; then the first failure (in the order of ``jobs``) is raised.
    Writers not yet started are cancelled on an interrupt.

    Parameters
    ----------
    jobs : iterable of callables
        Writers without arguments, each writing its own file(s); the longest first.
    threads : int, optional
        At most this many at a time (default :data:`WRITE_THREADS`; 1 runs them in order in the
        calling thread).

    Returns
    -------
    list
        What each writer returned.

    Examples
    --------
    >>> run_jobs([lambda: 1, lambda: 2], threads=2)
    [1, 2]
    """
    from concurrent.futures import ThreadPoolExecutor

    jobs = list(jobs)
    threads = WRITE_THREADS if threads is None else max(1, int(threads))
    if threads == 1 or len(jobs) <= 1:
        return [job() for job in jobs]
    pool = ThreadPoolExecutor(max_workers=min(threads, len(jobs)), thread_name_prefix="write")
    try:
        futures = [pool.submit(job) for job in jobs]
        for future in futures:
            future.exception()  # wait for every writer before raising
        return [future.result() for future in futures]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# --------------------------------------------------------------------------------------------
# Reading vector layers
# --------------------------------------------------------------------------------------------


#: dBASE language-driver ids (header byte 29) that mean a Chinese code page.
_DBF_LDID = {0x4D: "gbk", 0x7A: "gbk", 0x4E: "cp949", 0x4F: "big5", 0x57: None}
_SIDECARS = (".shp", ".shx", ".dbf", ".prj", ".cpg")


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused for a block (or, as a decorator, a function).

    Reading layers and building patches make hundreds of thousands of small Python objects
    (field values, coordinate lists for rasterio): each few hundred of them start a collection
    that scans every object alive — 20–35 % of the CPU time of loading the demo's layers, and
    nothing to collect, as these objects hold no cycles (reference counting frees them).  The
    collector runs again as soon as the block ends, however it ends.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


#: The cyclic collector's thresholds during a run (:func:`gc_relaxed`); Python's are 700, 10, 10.
RUN_GC_THRESHOLDS = (10_000, 10, 10)
_GC_LOCK = threading.Lock()
_GC_RUNS = [0, None]  # runs inside gc_relaxed, and the thresholds before the first


@contextlib.contextmanager
def gc_relaxed(thresholds: tuple[int, int, int] = RUN_GC_THRESHOLDS) -> Iterator[None]:
    """The cyclic garbage collector started every 10 000 new container objects instead of 700
    for a block (a run), then restored.

    A run makes millions of short-lived containers (field values, frames, compiled kernels'
    records, map features) that reference counting frees; at Python's default a young-generation
    pass starts every 700 of them, and every tenth pass of the middle generation a pass over
    every object alive (≈ 0.15 s each, three or four in the demo's run).  Cycles are still
    collected, in the same three generations, only later: the demo's peak memory is unchanged.
    Nested or concurrent runs (the workspace's) share the setting; the last one to end restores
    the thresholds found before the first.
    """
    with _GC_LOCK:
        if _GC_RUNS[0] == 0:
            _GC_RUNS[1] = gc.get_threshold()
            gc.set_threshold(*thresholds)
        _GC_RUNS[0] += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _GC_RUNS[0] -= 1
            if _GC_RUNS[0] == 0:
                gc.set_threshold(*_GC_RUNS[1])


def detect_encoding(path: str | Path) -> str | None:
    """Guess the text encoding of a shapefile's ``.dbf`` when it has no ``.cpg``.

    Chinese shapefiles exported by ArcGIS or by third-survey tools are usually GBK without a
    ``.cpg`` sidecar, and GDAL would then read them as Latin-1 (mojibake).  The rule: a ``.cpg``
    wins; else the dBASE language-driver byte when it names a code page; else the text bytes of
    the records decode as UTF-8 → ``utf-8``, otherwise as GB18030 → ``gbk``.

    Returns
    -------
    str or None
        ``None`` for files that are not shapefiles or have only ASCII text.

    Examples
    --------
    A GBK shapefile without ``.cpg`` (as third-survey tools export them):

    >>> import pathlib, tempfile, shapely
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "landuse.shp"
    >>> gdf = gpd.GeoDataFrame({"DLMC": ["乔木林地"]}, geometry=[shapely.box(0, 0, 1, 1)],
    ...                        crs="EPSG:4548")
    >>> gdf.to_file(path, encoding="gbk")
    >>> path.with_suffix(".cpg").unlink(missing_ok=True)
    >>> detect_encoding(path)
    'gbk'
    """
    path = Path(path)
    if path.suffix.lower() != ".shp":
        return None
    cpg = _sidecar(path, ".cpg")
    if cpg is not None:
        text = cpg.read_text(errors="replace").strip()
        return {"936": "gbk", "65001": "utf-8", "utf8": "utf-8"}.get(text.lower(), text or None)
    dbf = _sidecar(path, ".dbf")
    if dbf is None:
        return None
    data = dbf.read_bytes()
    if len(data) < 32:
        return None
    ldid = data[29]
    if _DBF_LDID.get(ldid):
        return _DBF_LDID[ldid]
    # field names (header descriptors) and records: both carry text in the file's encoding
    body = data[32:]
    if body.isascii():
        return None
    # short GBK text can also be valid UTF-8 (住宅 = D7A1 D5AC reads as two Hebrew/Armenian
    # letters): the decoding that gives more CJK characters wins
    texts = {}
    for name, codec in (("utf-8", "utf-8"), ("gbk", "gb18030")):
        try:
            texts[name] = body.decode(codec)
        except UnicodeDecodeError:
            continue
    if not texts:
        return None
    if len(texts) == 1:  # only one decoding holds: no need to count characters
        return next(iter(texts))
    return "gbk" if _cjk_count(texts["gbk"]) > _cjk_count(texts["utf-8"]) else "utf-8"


def _cjk_count(text: str) -> int:
    """How many characters of ``text`` are CJK ideographs (U+3400–9FFF, U+F900–FAFF)."""
    code = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
    return int((((code >= 0x3400) & (code <= 0x9FFF)) | ((code >= 0xF900) & (code <= 0xFAFF))).sum())


def file_hash(path: str | Path) -> str:
    """SHA-256 of a file (for a shapefile: of all its sidecar files together).

    Remembered within a process while every part keeps its inode, size, modification and
    change times: the load's provenance and the horizon cache's keys hash the same rasters.
    """
    path = Path(path)
    parts = ([_sidecar(path, s) for s in _SIDECARS] if path.suffix.lower() == ".shp"
             else [path])
    if path.is_dir():  # FileGDB and other folder datasets
        parts = sorted(p for p in path.rglob("*") if p.is_file())
    parts = [p for p in parts if p is not None and p.exists()]
    memo = tuple((str(p.resolve()), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
                 for p, st in ((p, p.stat()) for p in parts))
    with _HASH_LOCK:
        if memo in _HASHES:
            return _HASHES[memo]
    h = hashlib.sha256()
    for part in parts:
        with open(part, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    with _HASH_LOCK:
        _HASHES[memo] = h.hexdigest()
    return h.hexdigest()


_HASHES: dict[tuple, str] = {}
_HASH_LOCK = threading.Lock()


def read_vector(path: str | Path, *, layer: str | None = None, encoding: str | None = None,
                label: str = "") -> tuple[gpd.GeoDataFrame | None, list[Problem]]:
    """Read a vector layer of any format GDAL reads, never raising on bad files.

    Returns the raw GeoDataFrame (or None) and the problems found.  Problems name the file and
    the layer and say what to do.
    """
    import pyogrio
    from pyogrio.errors import DataLayerError, DataSourceError

    path = Path(path)
    problems: list[Problem] = []
    if not path.exists():
        problems.append(Problem("file not found", file=str(path), layer=layer or label or None,
                                hint="fix the path (relative to the run file)"))
        return None, problems
    where = {"file": str(path), "layer": layer or label or None}
    if path.suffix.lower() == ".shp":
        missing = [s for s in (".shx", ".dbf") if not path.with_suffix(s).exists()
                   and not path.with_suffix(s.upper()).exists()]
        if missing:
            problems.append(Problem(f"shapefile is incomplete: {', '.join(missing)} missing", **where,
                                    hint="copy all the shapefile's files (.shp .shx .dbf .prj) together"))
            return None, problems
        problems += shapefile_problems(path, where=where)
        if problems:
            return None, problems
    if path.suffix.lower() in (".parquet", ".geoparquet"):
        try:
            gdf = gpd.read_parquet(path)
            return _with_fids(gdf, np.arange(len(gdf))), problems
        except Exception as exc:  # noqa: BLE001 - any reader failure is a bad file for the planner
            problems.append(Problem(f"cannot read GeoParquet: {exc}", **where,
                                    hint="check the file is a complete GeoParquet file"))
            return None, problems
    try:
        layers = pyogrio.list_layers(path)
    except (DataSourceError, DataLayerError, OSError, RuntimeError) as exc:
        problems.append(Problem(f"cannot open the file (truncated, corrupt or not a vector "
                                f"layer): {_first_line(exc)}", **where,
                                hint="check the file is complete and in a format GDAL reads "
                                     "(GeoPackage, Shapefile, GeoJSON, FlatGeobuf, FileGDB)"))
        return None, problems
    names = [str(n) for n in layers[:, 0]]
    if layer is None and len(names) > 1:
        if "multipolygons" in names:  # OSM XML/PBF through GDAL
            layer = "multipolygons"
        else:
            problems.append(Problem(f"the file has {len(names)} layers", **where, value=names,
                                    hint="name one with `layer = ...` in the run file"))
            return None, problems
    if layer is not None and layer not in names:
        problems.append(Problem("no such layer in the file", **where, value=layer,
                                hint=f"layers in the file: {', '.join(names)}"))
        return None, problems
    try:
        gdf, repair = _read_frame(path, layer, encoding)
        if repair:
            problems.append(Problem(repair, **where, severity="warning"))
    except UnicodeDecodeError as exc:
        problems.append(Problem(f"the text of the layer is not in encoding {encoding or 'utf-8'}: "
                                f"{_first_line(exc)}", **where, value=encoding,
                                hint="set `encoding = \"gbk\"` (or the file's encoding) for this "
                                     "layer in the run file"))
        return None, problems
    except Exception as exc:  # noqa: BLE001 - GDAL fails on broken files in many ways
        problems.append(Problem(f"cannot read the layer ({type(exc).__name__}): {_first_line(exc)}",
                                **where, hint="the file is probably truncated or corrupt: "
                                              "re-export it from your GIS"))
        return None, problems
    if not isinstance(gdf, gpd.GeoDataFrame) or gdf.geometry.name not in gdf:
        problems.append(Problem("the layer has no geometry", **where,
                                hint="give a spatial layer (polygons)"))
        return None, problems
    return gdf, problems


#: the column that holds each feature's id in the file (GDAL FID: GeoPackage/FlatGeobuf feature
#: ids, shapefile and CSV record numbers from 0); ``id = "@fid"`` in the run file maps it
FID_COLUMN = "@fid"


def _read_frame(path: Path, layer: str | None, encoding: str | None) -> tuple[gpd.GeoDataFrame, str]:
    """The layer with its feature ids in :data:`FID_COLUMN`, and a note of read-time repairs.

    Rings that GEOS cannot even build (a ring of two points, as OSM ways clipped at an extract's
    edge give) stop a plain read.  Such a layer is read again the way GDAL's own tools keep it
    usable (pyogrio ``on_invalid="fix"``: unclosed rings closed; what cannot be built becomes an
    empty geometry, dropped and counted later by :func:`clean_polygons`).
    """
    import pyogrio

    arrow = _arrow_safe(path, layer, encoding)

    def read(on_invalid: str) -> gpd.GeoDataFrame:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return pyogrio.read_dataframe(path, layer=layer, encoding=encoding, use_arrow=arrow,
                                          fid_as_index=True, on_invalid=on_invalid)

    reason = ""
    if path.suffix.lower() in (".osm", ".pbf"):
        gdf = read("fix")  # OSM extracts are clipped: no need to fail once to know it
    else:
        try:
            gdf = read("raise")
            return _with_fids(gdf, gdf.index.to_numpy()), ""
        except shapely.errors.GEOSException as exc:
            gdf = read("fix")
            reason = f" ({_first_line(exc)})"
    lost = int(shapely.is_missing(gdf.geometry.values).sum())
    note = (f"{lost} features have rings that cannot be built{reason}, as ways cut at the edge "
            "of an extract: read with ring repair, the features without a usable geometry are "
            "dropped (counted below)") if lost else (
        f"some rings could not be built{reason}: read with ring repair (unclosed rings closed)"
        if reason else "")
    return _with_fids(gdf, gdf.index.to_numpy()), note


#: formats whose text is UTF-8 by definition and whose fields Arrow hands over as the plain
#: reader does (numbers, text, booleans): read through Arrow, without a Python object per value
_ARROW_SUFFIXES = (".gpkg", ".fgb")


def _arrow_safe(path: Path, layer: str | None, encoding: str | None) -> bool:
    """Can the layer be read through Arrow with the very frame the plain reader gives?

    GeoPackage and FlatGeobuf layers of numbers and text (no dates, times or booleans) can: the same columns, dtypes
    and values, 3–5× faster.  Other formats keep the plain reader: a text encoding that does not
    fit is then an error (Arrow would pass undecodable text on), GeoJSON lists and dates keep
    their types.
    """
    import pyogrio

    if path.suffix.lower() not in _ARROW_SUFFIXES or encoding is not None:
        return False
    try:
        dtypes = pyogrio.read_info(path, layer=layer)["dtypes"]
    except Exception:  # noqa: BLE001 - the plain reader reports the failure
        return False
    # booleans with nulls come as objects through Arrow (floats through the plain reader)
    return all(str(d) == "object" or str(d).startswith(("int", "float", "uint")) for d in dtypes)


def _with_fids(gdf: gpd.GeoDataFrame, fids: np.ndarray) -> gpd.GeoDataFrame:
    """Feature ids in a column (record numbers when they repeat), rows numbered from 0."""
    fids = np.asarray(fids)
    if len(np.unique(fids)) != len(fids):
        fids = np.arange(len(fids))
    gdf = gdf.reset_index(drop=True)
    gdf[FID_COLUMN] = fids
    return gdf


def shapefile_problems(path: str | Path, *, where: dict) -> list[Problem]:
    """A truncated ``.shp``, ``.shx`` or ``.dbf``: sizes that disagree with their headers.

    GDAL reads a truncated shapefile without complaint, as empty geometries or missing columns,
    which would then be reported as something else (or counted as nothing); the headers say how
    long each file must be.  ``.shp``/``.shx``: the file length in 16-bit words at bytes 24–27
    (big-endian); ``.dbf``: records × record length + header length (ESRI Shapefile Technical
    Description, 1998; dBASE III file structure).
    """
    path = Path(path)
    problems = []
    hint = "the file was cut short (copy or download interrupted?): copy the shapefile again"
    for suffix in (".shp", ".shx"):
        part = _sidecar(path, suffix)
        if part is None:
            continue
        try:
            with open(part, "rb") as fh:
                head = fh.read(100)
            size = part.stat().st_size
        except OSError as exc:
            problems.append(Problem(f"cannot read {part.name}: {exc.strerror or exc}", **where,
                                    hint="check the file's permissions"))
            continue
        declared = int.from_bytes(head[24:28], "big") * 2 if len(head) >= 28 else None
        if len(head) < 100 or head[:4] != b"\x00\x00\x27\x0a":
            problems.append(Problem(f"{part.name} is not a shapefile part (bad header)", **where,
                                    value=size, hint=hint))
        elif declared is not None and size < declared:
            problems.append(Problem(f"{part.name} is truncated: its header says {declared} bytes, "
                                    f"the file has {size}", **where, hint=hint))
    dbf = _sidecar(path, ".dbf")
    if dbf is not None:
        try:
            with open(dbf, "rb") as fh:
                head = fh.read(32)
            size = dbf.stat().st_size
        except OSError as exc:
            problems.append(Problem(f"cannot read {dbf.name}: {exc.strerror or exc}", **where,
                                    hint="check the file's permissions"))
            return problems
        if len(head) < 32:
            problems.append(Problem(f"{dbf.name} is truncated (no complete header)", **where,
                                    value=size, hint=hint))
        else:
            n = int.from_bytes(head[4:8], "little")
            header_len = int.from_bytes(head[8:10], "little")
            record_len = int.from_bytes(head[10:12], "little")
            need = header_len + n * record_len
            if size < need:
                problems.append(Problem(f"{dbf.name} is truncated: {n} records need {need} bytes, "
                                        f"the file has {size}", **where, hint=hint))
    return problems


def _sidecar(path: Path, suffix: str) -> Path | None:
    for cand in (path.with_suffix(suffix), path.with_suffix(suffix.upper())):
        if cand.exists():
            return cand
    return None


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


# --------------------------------------------------------------------------------------------
# CRS handling
# --------------------------------------------------------------------------------------------

def _gk_candidates(xmin: float, xmax: float) -> list[int]:
    """EPSG codes of CGCS2000 Gauss–Krüger CRSs whose easting pattern fits these eastings."""
    out = []
    if xmin > 1e6 and np.floor(xmin / 1e6) == np.floor(xmax / 1e6):
        zone = int(xmin // 1e6)
        if 25 <= zone <= 45:  # 3° zones, zone-prefixed: EPSG:4513 (zone 25) … 4533 (zone 45)
            out.append(4513 + zone - 25)
        if 13 <= zone <= 23:  # 6° zones, zone-prefixed: EPSG:4491 (zone 13) … 4501 (zone 23)
            out.append(4491 + zone - 13)
    return out


def transformer(src, dst):
    """A ``pyproj.Transformer`` from ``src`` to ``dst`` (x = easting/longitude first), made once.

    Making a transformer searches the PROJ database (≈ 0.07 s each); the checks of a run ask for
    the same few pairs again and again.
    """
    return _transformer(CRS.from_user_input(src), CRS.from_user_input(dst))


def to_crs(gdf: gpd.GeoDataFrame, crs) -> gpd.GeoDataFrame:
    """``gdf.to_crs(crs)`` through the transformer :func:`transformer` keeps: the same
    coordinates as geopandas' own (the same PROJ operation, 2D and 3D geometries alike), without
    making a second transformer for a pair the checks of the run have made already."""
    crs = CRS.from_user_input(crs)
    if gdf.crs is None or gdf.crs.is_exact_same(crs):
        return gdf.to_crs(crs)
    t = transformer(gdf.crs, crs)
    data = gdf.geometry.to_numpy()
    out = np.empty_like(data)
    for with_z in (False, True):
        sel = shapely.has_z(data) == with_z
        xyz = shapely.get_coordinates(data[sel], include_z=with_z)
        moved = t.transform(*(xyz[:, k] for k in range(xyz.shape[1])))
        out[sel] = shapely.set_coordinates(data[sel].copy(), np.array(moved).T)
    df = gdf.copy()
    df.geometry = gpd.GeoSeries(out, index=gdf.index, crs=crs)
    return df


@functools.lru_cache(maxsize=32)
def _transformer(src: CRS, dst: CRS):
    from pyproj import Transformer

    return Transformer.from_crs(src, dst, always_xy=True)


_LONLAT_LOCK = threading.Lock()


def lonlat_transformer(crs):
    """A transformer from ``crs`` to WGS84 longitude/latitude [°] that every thread shares.

    A ``pyproj.Transformer`` is remade in each thread that uses it, and remaking one made by
    ``from_crs`` searches the PROJ database again (≈ 0.07–0.1 s per thread).  When PROJ chose
    a single operation (its definition is a pipeline), the transformer is rebuilt from that
    pipeline, which any thread remakes in well under a millisecond and which gives the same
    coordinates bit for bit; otherwise (several candidate operations, chosen point by point)
    the ``from_crs`` transformer itself is returned.
    """
    crs = CRS.from_user_input(crs)
    with _LONLAT_LOCK:  # threads asking at once wait for one search instead of each searching
        return _lonlat_transformer(crs)


@functools.lru_cache(maxsize=32)
def _lonlat_transformer(crs: CRS):
    from pyproj import Transformer

    found = _transformer(crs, CRS.from_epsg(4326))
    definition = found.definition or ""
    if definition.startswith("proj="):  # one operation (else: "unavailable until …")
        return Transformer.from_pipeline(definition)
    return found


def to_lonlat(geoms: np.ndarray, crs, *, decimals: int | None = None) -> np.ndarray:
    """Geometries reprojected to WGS84 longitude/latitude [°]: ``GeoSeries.to_crs(4326)``'s
    coordinates, through :func:`lonlat_transformer` (cheap in any thread).

    Parameters
    ----------
    geoms : numpy.ndarray of shapely geometries
        In ``crs``; missing geometries stay missing.
    crs : pyproj.CRS or anything it reads
    decimals : int, optional
        Round the coordinates to this many decimals (``numpy.round``) in the same pass.

    Returns
    -------
    numpy.ndarray of shapely geometries
    """
    geoms = np.asarray(geoms, dtype=object)
    crs = CRS.from_user_input(crs)
    if shapely.has_z(geoms).any() or crs.is_exact_same(CRS.from_epsg(4326)):
        # rare: geopandas' own path for 3-D coordinates (or nothing to reproject)
        out = gpd.GeoSeries(geoms, crs=crs).to_crs(4326).values
        out = np.asarray(out, dtype=object)
        if decimals is None:
            return out
        return shapely.transform(out, lambda xy: np.round(xy, decimals))
    t = lonlat_transformer(crs)
    coords = shapely.get_coordinates(geoms)
    xy = np.column_stack(t.transform(coords[:, 0], coords[:, 1]))
    if decimals is not None:
        xy = np.round(xy, decimals)
    return shapely.set_coordinates(geoms.copy(), xy)


def _lonlat_bounds(bounds, crs: CRS) -> tuple[float, float, float, float] | None:
    try:
        # the CRS's own geographic CRS (an inverse projection, no datum search: made in a
        # millisecond) is as good as WGS84 for a test with a margin of a degree
        base = crs.geodetic_crs
        degrees = base is not None and base.axis_info and all(
            a.unit_name == "degree" for a in base.axis_info)
        t = transformer(crs, base if degrees else 4326)
        x0, y0, x1, y1 = t.transform_bounds(*bounds)
    except Exception:  # noqa: BLE001 - a failed transform means the CRS does not fit
        return None
    if not np.all(np.isfinite([x0, y0, x1, y1])):
        return None
    return x0, y0, x1, y1


def _fits(bounds, crs: CRS) -> bool:
    """Do these bounds, read in ``crs``, fall inside the CRS's area of use (with a margin)?"""
    ll = _lonlat_bounds(bounds, crs)
    if ll is None:
        return False
    aou = crs.area_of_use
    if aou is None:
        return -180 <= ll[0] <= 180 and -90 <= ll[1] <= 90
    margin = 1.0
    return (aou.west - margin <= ll[0] and ll[2] <= aou.east + margin
            and aou.south - margin <= ll[1] and ll[3] <= aou.north + margin)


def suggest_crs(bounds) -> CRS | None:
    """A CRS the coordinates fit, for messages: lon/lat, zone-prefixed or central-meridian GK.

    Examples
    --------
    Zone-prefixed CGCS2000 Gauss–Krüger eastings (zone 39 in front of the easting) and degrees:

    >>> suggest_crs((39_515_000, 4_318_000, 39_545_000, 4_345_000)).to_epsg()
    4527
    >>> suggest_crs((117.2, 38.9, 117.6, 39.3)).to_epsg()
    4326
    """
    x0, y0, x1, y1 = bounds
    if -180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90:
        return CRS.from_epsg(4326)
    for code in _gk_candidates(x0, x1):
        crs = CRS.from_epsg(code)
        if _fits(bounds, crs):
            return crs
    return None


def check_crs(gdf: gpd.GeoDataFrame, *, declared: str | None, where: dict) -> tuple[CRS | None, list[Problem]]:
    """Decide the layer's CRS and check that its coordinates fit it.

    ``declared`` (from the run file) is used when the file has none, and also overrides the
    file's own CRS when the coordinates do not fit that one but do fit the declared one (a wrong
    ``.prj``; reported as a warning).  Coordinates that fit neither (zone-prefixed eastings
    declared as a central-meridian CRS, metres declared as degrees) are an error naming the CRS
    they do fit.

    Examples
    --------
    Zone-prefixed eastings declared as the central-meridian CRS: the error names the CRS they fit.

    >>> import shapely
    >>> gdf = gpd.GeoDataFrame(geometry=[shapely.box(39_530_000, 4_330_000, 39_530_100, 4_330_100)],
    ...                        crs="EPSG:4548")
    >>> crs, problems = check_crs(gdf, declared=None, where={"file": "landuse.shp"})
    >>> crs is None, problems[0].hint
    (True, 'they fit EPSG:4527 (CGCS2000 / 3-degree Gauss-Kruger zone 39): ...')
    """
    problems = []
    bounds = gdf.total_bounds if len(gdf) else np.full(4, np.nan)
    finite = bool(np.all(np.isfinite(bounds)))
    crs = gdf.crs
    if crs is not None and declared:
        wanted = CRS.from_user_input(declared)
        if (wanted != CRS.from_user_input(crs) and finite and not _fits(bounds, crs)
                and _fits(bounds, wanted)):
            problems.append(Problem(f"the file's CRS ({CRS.from_user_input(crs).name}) does not fit "
                                    f"its coordinates; the run file's {declared} is used", **where,
                                    severity="warning", hint="fix or remove the file's .prj"))
            crs = wanted
    if crs is None and declared:
        crs = CRS.from_user_input(declared)
    if crs is None:
        guess = suggest_crs(bounds) if finite else None
        prj = Path(where.get("file") or "").with_suffix(".prj")
        msg = ("the layer's .prj could not be understood: the layer has no CRS"
               if prj.suffix and Path(where.get("file") or "").suffix.lower() == ".shp"
               and prj.exists() else "the layer has no CRS")
        hint = "add a .prj to the file or set `crs = \"EPSG:…\"` for this layer in the run file"
        if guess is not None:
            hint += f"; the coordinates fit EPSG:{guess.to_epsg()} ({guess.name})"
        problems.append(Problem(msg, **where, hint=hint))
        return None, problems
    crs = CRS.from_user_input(crs)
    if len(gdf) and finite and not _fits(bounds, crs):
        guess = suggest_crs(bounds)
        epsg = crs.to_epsg()
        name = f"EPSG:{epsg}" if epsg else crs.name
        msg = f"coordinates do not fit the layer's CRS {name} ({crs.name})"
        hint = "fix the CRS in the file or set the right one with `crs =` in the run file"
        if guess is not None and guess != crs:
            hint = (f"they fit EPSG:{guess.to_epsg()} ({guess.name}): "
                    f"set `crs = \"EPSG:{guess.to_epsg()}\"` for this layer and remove the wrong .prj")
        problems.append(Problem(msg, **where, value=f"x {_num(bounds[0])}…{_num(bounds[2])}, "
                                f"y {_num(bounds[1])}…{_num(bounds[3])}", hint=hint))
        return None, problems
    return crs, problems


def _num(value: float) -> str:
    """A coordinate for a message: whole metres, or 6 significant digits when absurd."""
    return f"{value:.0f}" if abs(value) < 1e9 else f"{value:.6g}"


def centre_lonlat(crs, bounds) -> tuple[float, float]:
    """Longitude and latitude [°] of the centre of ``bounds`` (minx, miny, maxx, maxy) in ``crs``."""
    x0, y0, x1, y1 = (float(b) for b in bounds)
    lon, lat = transformer(crs, 4326).transform((x0 + x1) / 2, (y0 + y1) / 2)
    return float(lon), float(lat)


def area_distortion_problems(crs: CRS, gdfs: list[gpd.GeoDataFrame], *,
                             source: Path | None = None, tolerance: float = 0.01) -> list[Problem]:
    """An error when the working CRS does not measure areas truly where the layers are.

    Web Mercator inflates areas by about 66 % at 39° N and a CRS in feet by a factor of ten;
    Gauss–Krüger and UTM stay within 0.1 % near their meridian.  The areal scale factor is taken
    at the centre of the layers.
    """
    from pyproj import Proj

    frames = [g for g in gdfs if g is not None and len(g) and g.crs is not None]
    if not frames:
        return []
    unit = crs.axis_info[0].unit_name if crs.axis_info else ""
    lon, lat = centre_lonlat(frames[0].crs, frames[0].total_bounds)
    try:
        scale = float(Proj(crs).get_factors(lon, lat).areal_scale)
    except Exception:  # noqa: BLE001 - a CRS pyproj cannot evaluate there is as bad as a wrong one
        scale = float("nan")
    if unit in ("metre", "meter") and np.isfinite(scale) and abs(scale - 1) <= tolerance:
        return []
    name = f"EPSG:{crs.to_epsg()}" if crs.to_epsg() else crs.name
    what = (f"its unit is {unit}" if unit not in ("metre", "meter")
            else f"it scales areas by {scale:.3f} at {lat:.2f} N {lon:.2f} E")
    return [Problem(f"the working CRS {name} does not measure true areas here: {what}",
                    file=str(source) if source else None, column="project.crs", value=name,
                    hint="use a metric, near-conformal CRS: CGCS2000 Gauss–Krüger (EPSG:4548, "
                         "or its zone for your district) or a UTM zone — never EPSG:4326 or "
                         "Web Mercator")]


def working_crs(given: str | None, gdfs: list[gpd.GeoDataFrame]) -> CRS:
    """The metric CRS every layer is reprojected to: the run file's, or an estimated UTM zone.

    Examples
    --------
    >>> import shapely
    >>> pts = gpd.GeoDataFrame(geometry=[shapely.Point(117.4, 39.1)], crs="EPSG:4326")
    >>> working_crs("EPSG:4548", [pts]).to_epsg(), working_crs(None, [pts]).to_epsg()
    (4548, 32650)
    """
    if given:
        return CRS.from_user_input(given)
    for gdf in gdfs:
        if gdf is not None and len(gdf) and gdf.crs is not None:
            try:
                return gdf.estimate_utm_crs()
            except (RuntimeError, ValueError):  # no UTM zone fits (bounds beyond ±84°)
                continue
    return CRS.from_epsg(4548)


# --------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------

def clean_polygons(gdf: gpd.GeoDataFrame, *, where: dict) -> tuple[gpd.GeoDataFrame, list[Problem]]:
    """Repair invalid polygons, drop empty ones, refuse other geometry types (all reported).

    Repairs use GEOS ``make_valid`` with the *structure* method, which keeps a polygon a polygon
    (a bow-tie becomes two triangles; collapsed slivers vanish).
    """
    problems: list[Problem] = []
    geom = gdf.geometry.values
    missing = shapely.is_missing(geom) | shapely.is_empty(geom)
    # NaN or infinite coordinates would be "repaired" into a different shape, or give NaN areas
    coords, owner = shapely.get_coordinates(geom, return_index=True)
    bad_xy = np.zeros(len(gdf), dtype=bool)
    if len(coords):
        bad_xy[owner[~np.isfinite(coords).all(axis=1)]] = True
    if bad_xy.any():
        problems.append(Problem(f"{int(bad_xy.sum())} features have NaN or infinite coordinates",
                                **where, value=_row_labels(gdf, bad_xy),
                                hint="fix or delete these shapes in your GIS"))
        return gdf.iloc[:0], problems
    if missing.all():
        problems.append(Problem("every geometry is empty", **where,
                                hint="the layer has no shapes: re-export it with geometry"))
        return gdf.iloc[:0], problems
    if missing.any():
        problems.append(Problem(f"{int(missing.sum())} empty geometries dropped", **where,
                                severity="warning"))
        gdf = gdf.loc[~missing]
    gdf = gdf.copy()
    name = gdf.geometry.name
    types = shapely.get_type_id(gdf.geometry.values)
    collection = types == 7
    if collection.any():  # keep the polygonal parts of collections
        parts = gdf.geometry[collection].explode(index_parts=False)
        parts = parts[np.isin(shapely.get_type_id(parts.values), (3, 6))]
        gdf.loc[collection, name] = parts.groupby(level=0).agg(shapely.union_all).reindex(
            gdf.index[collection])
        types = shapely.get_type_id(gdf.geometry.values)
    poly = np.isin(types, (3, 6))  # Polygon, MultiPolygon
    if not poly.all():
        labels = {0: "Point", 1: "LineString", 2: "LinearRing", 4: "MultiPoint",
                  5: "MultiLineString", 7: "GeometryCollection"}
        found = sorted({labels.get(int(t), "GeometryCollection without polygons")
                        for t in np.unique(types[~poly])})
        problems.append(Problem(f"{int((~poly).sum())} of {len(gdf)} features are not polygons",
                                **where, value=found,
                                hint="this layer needs polygons (footprints, parcels, zones)"))
        return gdf, problems
    invalid = ~shapely.is_valid(gdf.geometry.values)
    if invalid.any():
        gdf.loc[invalid, name] = shapely.make_valid(
            gdf.geometry.values[invalid], method="structure", keep_collapsed=False)
        problems.append(Problem(f"{int(invalid.sum())} invalid geometries repaired", **where,
                                severity="warning"))
    gone = shapely.is_empty(gdf.geometry.values) | shapely.is_missing(gdf.geometry.values)
    if gone.any():
        problems.append(Problem(f"{int(gone.sum())} geometries empty after repair dropped",
                                **where, severity="warning"))
        gdf = gdf.loc[~gone]
    return gdf, problems


def _row_labels(gdf: gpd.GeoDataFrame, mask: np.ndarray, n: int = 5) -> list:
    """Up to ``n`` labels of the rows in ``mask`` for messages: feature ids (FIDs) from 0."""
    return [int(i) if isinstance(i, int | np.integer) else str(i) for i in gdf.index[mask][:n]]

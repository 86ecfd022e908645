"""Surface model and horizon engine: what each roof point sees of the sky, and what it loses.

A **surface model** is a north-up height raster [m] in the working CRS, either

* rasterised from footprints × heights (LoD1: every building a flat-topped prism at its
  ``height``, else ``floors`` × storey height; ground 0, or a ``[layers.dem]`` bare-ground raster),
  on a grid aligned to multiples of the cell size, so that any window of it is cell for cell the
  same whichever piece of the district is computed (a compiled scan-line fill, no Python call
  per building); or
* read from a DSM raster (ground + buildings + trees, metres), window by window on its own grid.

**Sample points** (:func:`roof_points`) lie on a grid inside each roof, inset from its edges, at
global multiples of the spacing (so a roof's points do not depend on which partition holds it).

**Horizons** (:func:`horizon_angles`): from each point, one ray per azimuth sector (sector ``s``
centred on ``s × 360 / sectors`` degrees clockwise from north) marches outwards, half-cell steps
near the point and steps growing by 2 % of the distance further out, up to the search distance;
the horizon is the largest elevation angle of the surface seen along the ray (never below 0°).
Beyond :data:`SEARCH_FLOOR_FROM_M` (100 m) a ray looks only for obstacles seen higher than
:data:`SEARCH_FLOOR_DEG` (2°), the limit the default search distance is drawn from.  A ray crosses
a block of cells in one jump when the block's highest cell cannot rise above its line (the angle
found, and far off that floor): the blocks form a pyramid of maxima of 16, 32, 64, 128 and 256
cells a side; after a jump the ray tries the next block one level coarser, and where a block might
rise above the line it looks at the finer block on its way, down to the cells.  A ray stops as
soon as no cell of the tile could rise above its line, or above the sector's **floor** when
one is given: :func:`horizon_floors` finds, per orientation class and sector, the elevation
below which the horizon changes nothing in the shading factor (the plane faces away from that
sky and no sun that low in the sector shines on it — due north of a south-facing plane tilted
25°, everything below 25°); a roof's rays stop once nothing ahead can rise above the floor of
its planes, but sample exactly as without it, so every horizon above the floor and every
shading factor are the same to the last digit.  The kernels (block maxima, rays) are compiled
with numba and run in parallel (points handed out in chunks of 64); each point's rays are
marched two opposite sectors at a time, step by step in turn (a step waits on the one before it,
and two independent rays keep the core busy meanwhile), each taking exactly the steps it takes
alone.  :func:`roof_horizons` does this tile by tile (tiles of ``tile_m``), each tile's surface covering the tile plus the
search distance; an LoD1 tile keeps only the blocks of 16 × 16 cells that footprints reach
(bare ground elsewhere), so its cost follows the buildings, not the tile's area.

The jumps through the pyramid land where the steps through its smaller blocks would (on the demo
district, horizons equal to 4 × 10⁻⁶° to those of jumps over 16- and 256-cell blocks only).  The
floor changes the demo's roof shading factors by at most 0.023 (95 % of roofs by ≤ 0.001) and its
shading loss from 9.87 % to 9.85 %; on a random city the year's beam on a roof is classified as an
exact ray casting classifies it to the same 0.998 with and without it (tests/test_shading.py).

**Shading** (:func:`point_shading_factors`), with pvlib's sky (:func:`gis.solar.poa_components`,
the transposition of the yields): per orientation class the hourly beam and circumsolar
irradiance are sorted by sun elevation within each azimuth sector and summed cumulatively once;
a point's visible beam is then a look-up per sector (the hours whose sun stands above that
sector's horizon), with no hourly loop per point.  Circumsolar light follows the beam; the
isotropic sky (and Perez's horizon band) is multiplied by the sky-view factor of the tilted plane
(:func:`sky_view_factor`); ground reflection is unchanged.  The shading factor is the annual
plane-of-array irradiation with these losses ÷ the same sum with a zero horizon (before
reflection losses and the inverter), so an unobstructed point has a factor of exactly 1.  The
look-ups are compiled (parallel over points); the sums without a horizon are made once per class.

**Cache of tiles**: a planner reruns after changing targets, finance, land use or a few
buildings, and the horizons of every roof far from a change are the same.  :func:`roof_horizons`
keeps each tile's horizons (and eye heights) in a cache folder (:func:`cache_folder`, through
:mod:`gis._cache`: atomic writes, a 2 GB cap, damaged files ignored), named by a blake2b digest
of everything they depend on: the tile's points (position, roof top, lift, floor row), its
grid, the footprint edges and tops that reach it (or the DSM/DEM file's content and the CRS),
sectors, search distance, floors, resolution, the search constants, this module's source,
:data:`CACHE_VERSION` and numba's and numpy's versions.  A tile whose digest is found is loaded
instead of burnt and marched: the values are those a computation gives, bit for bit.  A change
to one building recomputes the tiles whose surface reaches it (the tile plus the search
distance), no more.

Limits: LoD1 has flat roofs (a pitched roof is a prism at its ridge height) and no trees — trees
only enter with a DSM; the sky is split into sectors (a sun within half a sector of an obstacle's
edge is judged by the sector's centre ray); obstacles lower than 2° (or beyond the search
distance) are not searched; where :func:`gis.rooftop.pv_potential` passes the floors of a roof's
planes, a horizon below its floor is only known to lie below it (the shading factors it feeds
are exact).
"""

from __future__ import annotations

import functools
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Threads of the compiled kernels sleep when they run out of work instead of spinning (OpenMP's
# default): the LoD1 burn launches many short parallel loops, and on a machine whose cores are
# shared (the run's other steps beside this one) the spinning costs as much CPU as the burn
# itself.  Read once, when the OpenMP runtime starts: a value set by the user wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numba
import numpy as np
import pandas as pd
import shapely
from numba import njit, prange

from gis import _cache, solar

#: Obstacles seen lower than this [°] are not searched for (the default search distance is the
#: distance at which the tallest obstacle falls below it); the sun that low carries little energy.
MIN_OBSTACLE_ANGLE_DEG = 2.0
#: Beyond SEARCH_FLOOR_FROM_M [m], obstacles seen lower than this [°] are not searched for.
SEARCH_FLOOR_DEG = 2.0
SEARCH_FLOOR_FROM_M = 100.0
#: Upper bound of the default search distance [m].
MAX_DISTANCE_M = 1000.0
#: Height of a sample point above the roof surface [m] (module level; clears DSM noise).
POINT_OFFSET_M = 0.25
#: Beyond a few cells the ray's step grows by this share of the distance [-].
STEP_GROWTH = 0.02
#: Cells per side of the blocks whose maxima let a ray skip what cannot rise above its horizon.
BLOCK = 16
BLOCK_SHIFT = 4  # log2(BLOCK)
#: Levels of blocks above the smallest: 32, 64, 128 and 256 = BLOCK² cells a side.
SKIP_LEVELS = 4
#: Points per chunk of the parallel ray march.
_CHUNK_POINTS = 64
#: Obstacles within this [°] of a sector's floor (:func:`horizon_floors`) are still searched.
_FLOOR_MARGIN_DEG = 1e-3
#: Version of the kernels in the keys of cached tiles (:func:`roof_horizons`): bump it when a
#: change elsewhere than this module would change a horizon (this module's source is in the key).
CACHE_VERSION = 1
#: Folder of the cached tiles under the package's cache root.
CACHE_NAME = "horizons"
#: Elevation grid of the sky-view integral [°].
_SVF_GRID = np.linspace(0.0, 90.0, 361)


@dataclass(frozen=True)
class Surface:
    """A north-up height raster.

    Attributes
    ----------
    z : numpy.ndarray
        Heights [m] (float32, rows from north to south); NaN where there is no data.
    left, top : float
        Coordinates of the upper-left corner [m, working CRS].
    res : float
        Cell size [m].
    """

    z: np.ndarray
    left: float
    top: float
    res: float

    def sample(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Height [m] of the cells holding points ``x``, ``y`` (NaN outside)."""
        col = np.floor((np.asarray(x) - self.left) / self.res).astype(np.int64)
        row = np.floor((self.top - np.asarray(y)) / self.res).astype(np.int64)
        inside = (col >= 0) & (row >= 0) & (row < self.z.shape[0]) & (col < self.z.shape[1])
        out = np.full(len(col), np.nan)
        out[inside] = self.z[row[inside], col[inside]]
        return out


def building_heights(buildings: pd.DataFrame, *, storey_height_m: float = 3.0) -> np.ndarray:
    """Height of each building's top [m]: ``height``, else ``floors`` × storey height.

    Parameters
    ----------
    buildings : DataFrame
        Canonical buildings (``height`` [m] and/or ``floors``; either may be missing).
    storey_height_m : float
        Storey height [m] for buildings known by their floors only.

    Returns
    -------
    numpy.ndarray
        Heights [m]; NaN where neither is known (or not positive).

    Examples
    --------
    >>> building_heights(pd.DataFrame({"height": [12.0, None, None], "floors": [2, 5, None]}))
    array([12., 15., nan])
    """
    def column(name: str) -> np.ndarray:
        if name in buildings.columns:
            return pd.to_numeric(buildings[name], errors="coerce").to_numpy(dtype=float)
        return np.full(len(buildings), np.nan)

    height, floors = column("height"), column("floors")
    out = np.where(height > 0, height, np.where(floors > 0, floors * storey_height_m, np.nan))
    return out.astype(float)


def _grid(bounds: tuple[float, float, float, float], res: float) -> tuple[float, float, int, int]:
    """Upper-left corner and shape of the grid covering bounds, its corner and size on whole
    blocks of ``BLOCK² × res`` (so blocks line up whichever window is computed)."""
    minx, miny, maxx, maxy = bounds
    size = BLOCK * BLOCK * res
    left = math.floor(minx / size) * size
    top = math.ceil(maxy / size) * size
    width = max(1, int(math.ceil((maxx - left) / size))) * BLOCK * BLOCK
    height = max(1, int(math.ceil((top - miny) / size))) * BLOCK * BLOCK
    return left, top, width, height


def lod1_surface(footprints: Any, tops: np.ndarray, bounds: tuple[float, float, float, float], *,
                 res: float = 1.0, ground: Surface | None = None,
                 out: np.ndarray | None = None) -> Surface:
    """Rasterise footprints as flat-topped prisms (LoD1) onto an aligned grid.

    A cell takes a building's top when its centre lies inside the footprint (holes excluded);
    where footprints overlap, the taller wins.  The burning is a compiled scan-line fill, so
    its cost grows with the cells covered, not with Python calls per building.

    Parameters
    ----------
    footprints : array-like of shapely geometries, or Prisms
        Building footprints [working CRS, metres], or their edges made once
        (:func:`prisms_of`, which then carry the tops: ``tops`` is not read).
    tops : numpy.ndarray
        Absolute height of each building's top [m] (NaN: not an obstacle).
    bounds : tuple
        ``(minx, miny, maxx, maxy)`` the raster must cover [m].
    res : float
        Cell size [m]; the grid's corners are multiples of ``BLOCK² × res``.
    ground : Surface, optional
        Bare ground on the same grid (from :func:`raster_surface` of a DEM); default 0 m.
    out : numpy.ndarray, optional
        A float32 array of the grid's shape to fill and return (reused from tile to tile, it
        spares the memory system a fresh raster each time); default a new one.

    Returns
    -------
    Surface

    Examples
    --------
    >>> s = lod1_surface([shapely.box(0, 0, 2, 1)], np.array([10.0]), (0, 0, 4, 2))
    >>> s.z[-2:, :4].tolist(), s.left, s.z.shape
    ([[0.0, 0.0, 0.0, 0.0], [10.0, 10.0, 0.0, 0.0]], 0.0, (256, 256))
    """
    prisms = footprints if isinstance(footprints, Prisms) else prisms_of(footprints, tops)
    blocks = _lod1_blocks(prisms, bounds, res=res, ground=ground)
    nrow, ncol = blocks.shape
    if out is not None and out.shape == (nrow, ncol) and out.dtype == np.float32:
        z = out
    else:
        z = np.empty((nrow, ncol), dtype=np.float32)
    _unblock(blocks.index, blocks.cells, np.float32(blocks.ground), z)
    return Surface(z=z, left=blocks.left, top=blocks.top, res=blocks.res)


@dataclass(frozen=True)
class Prisms:
    """Footprint edges ready for burning (:func:`prisms_of`), made once for many tiles.

    Attributes
    ----------
    edges : numpy.ndarray
        ``(edges, 4)`` segments ``x1, y1, x2, y2`` [m] of every ring, polygon after polygon.
    start : numpy.ndarray
        ``polygons + 1`` offsets of each polygon's edges.
    heights : numpy.ndarray
        Top of each polygon [m].
    extent : numpy.ndarray
        ``(polygons, 4)`` ``xmin, ymin, xmax, ymax`` of each polygon [m].
    """

    edges: np.ndarray
    start: np.ndarray
    heights: np.ndarray
    extent: np.ndarray


def prisms_of(footprints: Any, tops: np.ndarray) -> Prisms:
    """The edges of footprints (parts and holes) with their tops, for :func:`lod1_surface`.

    Footprints that are missing or empty, or whose top is not finite, are left out.
    """
    geoms = np.asarray(footprints, dtype=object)
    tops = np.asarray(tops, dtype=float)
    keep = np.isfinite(tops) & ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    if not keep.any():
        return Prisms(edges=np.zeros((0, 4)), start=np.zeros(1, np.int64), heights=np.zeros(0),
                      extent=np.zeros((0, 4)))
    parts, owner = shapely.get_parts(geoms[keep], return_index=True)
    coords, ring_of, ring_poly = _ring_coordinates(parts)
    same = ring_of[1:] == ring_of[:-1]  # consecutive vertices of one ring: an edge
    edges = np.concatenate([coords[:-1][same], coords[1:][same]], axis=1)
    edge_poly = ring_poly[ring_of[:-1][same]]
    start = np.searchsorted(edge_poly, np.arange(len(parts) + 1))
    return Prisms(edges=np.ascontiguousarray(edges), start=start.astype(np.int64),
                  heights=tops[keep][owner].astype(np.float64),
                  extent=np.ascontiguousarray(shapely.bounds(parts), dtype=np.float64))


def _ring_coordinates(parts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertices of the rings of ``parts`` (exterior, then holes), the ring of each vertex and
    the part of each ring.  Polygons without holes (most footprints) are read whole: their one
    ring's vertices are theirs, without a geometry object made per ring."""
    if len(parts) and ((shapely.get_type_id(parts) == shapely.GeometryType.POLYGON).all()
                       and not shapely.get_num_interior_rings(parts).any()):
        coords, ring_of = shapely.get_coordinates(parts, return_index=True)
        return coords, ring_of, np.arange(len(parts))
    rings, ring_poly = shapely.get_rings(parts, return_index=True)
    coords, ring_of = shapely.get_coordinates(rings, return_index=True)
    return coords, ring_of, ring_poly


#: Horizontal bands of a raster burned side by side (each band by one thread, race-free).
_BANDS = 16


@njit(parallel=True, cache=True, nogil=True)
def _burn(index, cells, nrow, ncol, left, top, res, edges, start, heights, extent,
          peak, bare):  # pragma: no cover
    """Footprints burnt into the blocks (each cell: the highest top over it) and each block's
    highest cell into ``peak``; ``bare``: the cells hold 0 m before (no ground model)."""
    npoly = start.shape[0] - 1
    right, bottom = left + ncol * res, top - nrow * res
    r0s = np.empty(npoly, np.int64)
    r1s = np.empty(npoly, np.int64)
    most = 2
    for p in range(npoly):
        most = max(most, start[p + 1] - start[p])
        xmin, ymin, xmax, ymax = extent[p, 0], extent[p, 1], extent[p, 2], extent[p, 3]
        if start[p + 1] <= start[p] or xmax < left or xmin > right or ymax < bottom or ymin > top:
            r0s[p], r1s[p] = 1, 0  # nothing of it on this raster
            continue
        r0s[p] = max(0, int(math.floor((top - ymax) / res - 0.5)))
        r1s[p] = min(nrow - 1, int(math.ceil((top - ymin) / res - 0.5)))
    per = ((nrow + _BANDS - 1) // _BANDS + BLOCK - 1) // BLOCK * BLOCK  # whole blocks a band
    # each block's highest cell is followed as cells are raised (a block belongs to one band)
    highest = np.full(index.shape, -np.inf)
    for band in prange(_BANDS):
        lo, hi = band * per, min(nrow, (band + 1) * per) - 1
        xs = np.empty(most)  # one buffer for the crossings of every row of every footprint
        for p in range(npoly):
            ra, rb = max(r0s[p], lo), min(r1s[p], hi)
            if rb < ra:
                continue
            a, b = start[p], start[p + 1]
            h = heights[p]
            for r in range(ra, rb + 1):
                yc = top - (r + 0.5) * res
                m = 0
                for e in range(a, b):
                    y1, y2 = edges[e, 1], edges[e, 3]
                    if (y1 <= yc < y2) or (y2 <= yc < y1):
                        x1, x2 = edges[e, 0], edges[e, 2]
                        x = x1 + (yc - y1) * (x2 - x1) / (y2 - y1)
                        k = m  # insertion sort: a row crosses a footprint a few times
                        while k > 0 and xs[k - 1] > x:
                            xs[k] = xs[k - 1]
                            k -= 1
                        xs[k] = x
                        m += 1
                br, rr = r >> BLOCK_SHIFT, r & (BLOCK - 1)
                for k in range(0, m - 1, 2):
                    c0 = max(0, int(math.ceil((xs[k] - left) / res - 0.5)))
                    c1 = min(ncol - 1, int(math.floor((xs[k + 1] - left) / res - 0.5)))
                    # the span block by block: one look-up of the block, then its cells
                    for bc in range(c0 >> BLOCK_SHIFT, (c1 >> BLOCK_SHIFT) + 1):
                        q = index[br, bc]
                        if q < 0:
                            continue
                        cc0 = max(c0, bc << BLOCK_SHIFT) & (BLOCK - 1)
                        cc1 = min(c1, (bc << BLOCK_SHIFT) + BLOCK - 1) & (BLOCK - 1)
                        for cc in range(cc0, cc1 + 1):
                            if cells[q, rr, cc] < h:
                                cells[q, rr, cc] = h
                                highest[br, bc] = max(highest[br, bc], cells[q, rr, cc])
        # the band's blocks are burnt: their highest cells, without reading the cells again
        # (bare: cells start at 0 m and are only ever raised, so the highest is the highest
        # value written, or 0 m where none was)
        for br in range(lo >> BLOCK_SHIFT, (hi >> BLOCK_SHIFT) + 1):
            for bc in range(index.shape[1]):
                if index[br, bc] < 0:
                    continue
                if bare:
                    m = max(highest[br, bc], 0.0)
                else:  # over a ground model: its cells are read (NaN skipped)
                    k = index[br, bc]
                    m = -np.inf
                    for rr in range(BLOCK):
                        for cc in range(BLOCK):
                            v = cells[k, rr, cc]
                            if v > m:
                                m = v
                peak[br, bc] = m


@dataclass(frozen=True)
class _Blocks:
    """A height raster kept as blocks of ``BLOCK × BLOCK`` cells, where only the blocks holding
    more than bare ground are stored (LoD1: the blocks that footprints reach).

    Attributes
    ----------
    index : numpy.ndarray
        ``(block rows, block columns)`` position of each block in ``cells``; −1: bare ground.
    cells : numpy.ndarray
        ``(blocks stored, BLOCK, BLOCK)`` heights [m] (float32; NaN: no data).
    peak : numpy.ndarray
        ``(block rows, block columns)`` highest cell of each block [m] (−inf: no data).
    ground : float
        Height of the blocks not stored [m].
    shape : tuple
        Rows and columns of cells.
    left, top, res : float
        Upper-left corner and cell size [m].
    """

    index: np.ndarray
    cells: np.ndarray
    peak: np.ndarray
    ground: float
    shape: tuple[int, int]
    left: float
    top: float
    res: float


def _lod1_blocks(prisms: Prisms, bounds: tuple[float, float, float, float], *, res: float = 1.0,
                 ground: Surface | None = None) -> _Blocks:
    """LoD1 heights on the aligned grid over ``bounds``, as :func:`lod1_surface` burns them,
    stored only in the blocks that footprints reach (all of them over a DEM)."""
    left, top, width, height = _grid(bounds, res)
    nbr, nbc = height // BLOCK, width // BLOCK
    if ground is not None:
        blocks = _dense_blocks(np.nan_to_num(ground.z, nan=0.0), left, top, res)
        index, cells = blocks.index, blocks.cells
    else:
        used = np.zeros((nbr, nbc), dtype=np.bool_)
        if len(prisms.heights):
            _mark_blocks(used, float(left), float(top), float(res), prisms.extent,
                         prisms.start)
        index = np.full((nbr, nbc), -1, dtype=np.int64)
        index[used] = np.arange(int(used.sum()))
        cells = np.zeros((int(used.sum()), BLOCK, BLOCK), dtype=np.float32)
    peak = np.zeros((nbr, nbc), dtype=np.float32)  # bare ground: 0 m
    if len(prisms.heights):  # burnt, then each band's blocks' highest cells
        _burn(index, cells, height, width, float(left), float(top), float(res), prisms.edges,
              prisms.start, prisms.heights, prisms.extent, peak, ground is None)
    else:
        _block_peaks(index, cells, peak)
    return _Blocks(index=index, cells=cells, peak=peak, ground=0.0, shape=(height, width),
                   left=float(left), top=float(top), res=float(res))


def _dense_blocks(z: np.ndarray, left: float, top: float, res: float) -> _Blocks:
    """Every block of a raster stored (NaN beyond its last row and column)."""
    nrow, ncol = z.shape
    nbr, nbc = -(-nrow // BLOCK), -(-ncol // BLOCK)
    cells = np.full((nbr * nbc, BLOCK, BLOCK), np.nan, dtype=np.float32)
    _to_blocks(np.ascontiguousarray(z, dtype=np.float32), cells, nbc)
    index = np.arange(nbr * nbc, dtype=np.int64).reshape(nbr, nbc)
    peak = np.empty((nbr, nbc), dtype=np.float32)
    _block_peaks(index, cells, peak)
    return _Blocks(index=index, cells=cells, peak=peak, ground=0.0, shape=(nrow, ncol),
                   left=float(left), top=float(top), res=float(res))


@njit(cache=True)
def _mark_blocks(used, left, top, res, extent, start):  # pragma: no cover
    """Blocks that a footprint's extent reaches (a cell of margin against rounding)."""
    nbr, nbc = used.shape
    nrow, ncol = nbr * BLOCK, nbc * BLOCK
    for p in range(extent.shape[0]):
        if start[p + 1] <= start[p]:
            continue
        c0 = int(math.floor((extent[p, 0] - left) / res - 0.5)) - 1
        c1 = int(math.ceil((extent[p, 2] - left) / res - 0.5)) + 1
        r0 = int(math.floor((top - extent[p, 3]) / res - 0.5)) - 1
        r1 = int(math.ceil((top - extent[p, 1]) / res - 0.5)) + 1
        if c1 < 0 or r1 < 0 or c0 >= ncol or r0 >= nrow:
            continue
        c0, c1 = max(0, c0) >> BLOCK_SHIFT, min(ncol - 1, c1) >> BLOCK_SHIFT
        r0, r1 = max(0, r0) >> BLOCK_SHIFT, min(nrow - 1, r1) >> BLOCK_SHIFT
        for br in range(r0, r1 + 1):
            for bc in range(c0, c1 + 1):
                used[br, bc] = True


@njit(parallel=True, cache=True, nogil=True)
def _block_peaks(index, cells, peak):  # pragma: no cover
    """Highest cell of every stored block (NaN skipped); blocks not stored keep ``peak``."""
    nbr, nbc = index.shape
    for br in prange(nbr):
        for bc in range(nbc):
            k = index[br, bc]
            if k < 0:
                continue
            m = -np.inf
            for r in range(BLOCK):
                for c in range(BLOCK):
                    v = cells[k, r, c]
                    if v > m:  # False for NaN
                        m = v
            peak[br, bc] = m


@njit(parallel=True, cache=True, nogil=True)
def _to_blocks(z, cells, nbc):  # pragma: no cover
    nrow, ncol = z.shape
    for br in prange(-(-nrow // BLOCK)):
        for r in range(br * BLOCK, min(nrow, (br + 1) * BLOCK)):
            for c in range(ncol):
                cells[br * nbc + (c >> BLOCK_SHIFT), r - br * BLOCK, c & (BLOCK - 1)] = z[r, c]


@njit(parallel=True, cache=True, nogil=True)
def _unblock(index, cells, ground, z):  # pragma: no cover
    nrow, ncol = z.shape
    for r in prange(nrow):
        for c in range(ncol):
            k = index[r >> BLOCK_SHIFT, c >> BLOCK_SHIFT]
            z[r, c] = cells[k, r & (BLOCK - 1), c & (BLOCK - 1)] if k >= 0 else ground


def raster_surface(raster: Any, bounds: tuple[float, float, float, float], *, crs: Any = None,
                   grid: Surface | None = None) -> Surface:
    """Read a height raster (DSM or DEM) over ``bounds`` [m], NaN where it has no data.

    Parameters
    ----------
    raster : str, Path or gis.config.LayerSpec
        A GeoTIFF of heights [m]; a layer spec also gives the band and a CRS for a raster that
        has none.
    bounds : tuple
        ``(minx, miny, maxx, maxy)`` in the working CRS.
    crs : optional
        The working CRS; a raster in another CRS is warped to it.
    grid : Surface, optional
        Resample onto this surface's grid (bilinear) instead of reading the raster's own cells.

    Returns
    -------
    Surface
        On the raster's own grid (a whole-pixel window, so equal bounds give equal cells), or on
        ``grid``.
    """
    import rasterio
    from rasterio.vrt import WarpedVRT
    from rasterio.warp import Resampling, reproject
    from rasterio.windows import Window

    from gis.io import raster_ref

    path, band, declared = raster_ref(raster)
    with rasterio.open(path) as src:
        src_crs = src.crs or (rasterio.crs.CRS.from_user_input(declared) if declared else None)
        if grid is not None:
            out = np.full(grid.z.shape, np.nan, dtype=np.float32)
            reproject(rasterio.band(src, band), out, src_crs=src_crs, src_nodata=src.nodata,
                      dst_transform=rasterio.transform.Affine(grid.res, 0, grid.left, 0,
                                                              -grid.res, grid.top),
                      dst_crs=crs or src_crs, dst_nodata=np.nan, resampling=Resampling.bilinear)
            return Surface(z=out, left=grid.left, top=grid.top, res=grid.res)
        ds = src
        if crs is not None and src_crs is not None and rasterio.crs.CRS.from_user_input(
                crs) != src_crs:
            ds = WarpedVRT(src, crs=crs, resampling=Resampling.bilinear)
        t = ds.transform
        res = abs(t.a)
        # whole blocks from the raster's corner, so equal cells and blocks in every window
        big = BLOCK * BLOCK
        col0 = math.floor((bounds[0] - t.c) / res / big) * big
        row0 = math.floor((t.f - bounds[3]) / res / big) * big
        col1 = math.ceil((bounds[2] - t.c) / res / big) * big
        row1 = math.ceil((t.f - bounds[1]) / res / big) * big
        window = Window(col0, row0, max(1, col1 - col0), max(1, row1 - row0))
        data = ds.read(band, window=window, boundless=True, masked=True)
        z = np.ma.filled(data.astype(np.float32), np.nan)
        return Surface(z=z, left=t.c + col0 * res, top=t.f - row0 * res, res=res)


def roof_points(footprints: Any, *, spacing_m: float = 5.0, inset_m: float = 0.8,
                max_points: int = 16, insets: Any = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample points on a grid inside each roof, inset from its edges.

    Points sit at ``(i + ½) × spacing`` in both axes (global multiples), inside the footprint
    shrunk by ``inset_m``.  A roof that would hold more than ``max_points`` takes every k-th grid
    line instead (spacing × k); a roof too small for any grid point gets one point on its surface.

    Parameters
    ----------
    footprints : array-like of shapely geometries
        Roof footprints [m].
    spacing_m : float
        Grid spacing [m].
    inset_m : float
        Distance from the roof edge [m].
    max_points : int
        Most points per roof.
    insets : array-like of shapely geometries, optional
        The footprints shrunk by ``inset_m`` already (``shapely.buffer(footprint, -inset_m,
        join_style="mitre")``, as computed here otherwise), one per footprint.

    Returns
    -------
    owner : numpy.ndarray
        Position of the roof in ``footprints`` (sorted), one per point.
    x, y : numpy.ndarray
        Point coordinates [m].

    Examples
    --------
    >>> owner, x, y = roof_points([shapely.box(0, 0, 9, 6), shapely.box(20, 0, 21, 1)],
    ...                           spacing_m=3.0)
    >>> owner.tolist(), x.tolist(), y.tolist()
    ([0, 0, 0, 0, 0, 0, 1], [1.5, 4.5, 7.5, 1.5, 4.5, 7.5, 20.5], [1.5, 1.5, 1.5, 4.5, 4.5, 4.5, 0.5])
    """
    geoms = np.asarray(footprints, dtype=object)
    n = len(geoms)
    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    inset = geoms.copy()
    if insets is not None and inset_m > 0:
        inset[present] = np.asarray(insets, dtype=object)[present]
    elif inset_m > 0 and present.any():
        inset[present] = shapely.buffer(geoms[present], -inset_m, join_style="mitre")
    inset = np.where(present & ~shapely.is_empty(inset), inset, geoms)
    bounds = np.where(present[:, None], shapely.bounds(np.where(present, inset, None)), 0.0)
    bounds = np.nan_to_num(bounds)
    base = float(spacing_m)
    nx0 = np.maximum(0, np.floor(bounds[:, 2] / base - 0.5) - np.ceil(bounds[:, 0] / base - 0.5) + 1)
    ny0 = np.maximum(0, np.floor(bounds[:, 3] / base - 0.5) - np.ceil(bounds[:, 1] / base - 0.5) + 1)
    # the rough count inside the roof is its area ÷ spacing²; thin the grid where it is too many
    cells = np.maximum(nx0 * ny0, 1.0)
    k = np.where(present, np.maximum(1.0, np.ceil(np.sqrt(cells / max(1, max_points)))), 1.0)
    sp = base * k
    ix0 = np.ceil(bounds[:, 0] / sp - 0.5)
    iy0 = np.ceil(bounds[:, 1] / sp - 0.5)
    nx = np.where(present, np.maximum(0, np.floor(bounds[:, 2] / sp - 0.5) - ix0 + 1), 0)
    ny = np.where(present, np.maximum(0, np.floor(bounds[:, 3] / sp - 0.5) - iy0 + 1), 0)
    counts = (nx * ny).astype(np.int64)
    owner = np.repeat(np.arange(n), counts)
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    j = np.arange(counts.sum()) - start[owner]
    nxo = nx[owner].astype(np.int64)
    x = (ix0[owner] + j % np.maximum(nxo, 1) + 0.5) * sp[owner]
    y = (iy0[owner] + j // np.maximum(nxo, 1) + 0.5) * sp[owner]
    inside = shapely.contains_xy(inset[owner], x, y) if len(owner) else np.zeros(0, bool)
    owner, x, y = owner[inside], x[inside], y[inside]
    # thinning may still leave too many on odd shapes: keep every m-th point of such roofs
    per = np.bincount(owner, minlength=n)
    step = np.maximum(1, np.ceil(per / max(1, max_points))).astype(np.int64)
    rank = np.arange(len(owner)) - np.concatenate([[0], np.cumsum(per)[:-1]])[owner]
    keep = rank % step[owner] == 0
    owner, x, y = owner[keep], x[keep], y[keep]
    lonely = present & (np.bincount(owner, minlength=n) == 0)
    if lonely.any():
        pts = shapely.get_coordinates(shapely.point_on_surface(geoms[lonely]))
        owner = np.concatenate([owner, np.flatnonzero(lonely)])
        x, y = np.concatenate([x, pts[:, 0]]), np.concatenate([y, pts[:, 1]])
        order = np.argsort(owner, kind="stable")
        owner, x, y = owner[order], x[order], y[order]
    return owner, x, y


def sector_azimuths(sectors: int) -> np.ndarray:
    """Centre azimuth [°, clockwise from north, 180 = south] of each horizon sector."""
    return np.arange(sectors) * (360.0 / sectors)


@njit(cache=True, inline="always")
def _to_exit(u, v, bc, br, rdx, rdy, size):  # pragma: no cover
    """Distance [m] along the ray from cell coordinates (u, v) out of its block (``bc``, ``br``)
    of ``size`` cells; ``rdx``, ``rdy``: cell size ÷ the ray's direction (0: parallel)."""
    t = 1e30
    if rdx > 0:
        t = min(t, ((bc + 1) * size - u) * rdx)
    elif rdx < 0:
        t = min(t, (bc * size - u) * rdx)
    if rdy < 0:
        t = min(t, ((br + 1) * size - v) * -rdy)
    elif rdy > 0:
        t = min(t, (br * size - v) * -rdy)
    return t


def _pyramid(z: np.ndarray, levels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Max-pyramid of a height raster: level 0 the raster, level ``L`` the maximum of each
    ``2^L × 2^L`` block of its cells (−inf where a block holds no data).

    Returns the levels flattened one after the other, each level's offset (and the end) and
    columns.
    """
    rows, cols = [z.shape[0]], [z.shape[1]]
    for _ in range(levels):
        rows.append(-(-rows[-1] // 2))
        cols.append(-(-cols[-1] // 2))
    rows_a, cols_a = np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64)
    offset = np.concatenate([[0], np.cumsum(rows_a * cols_a)]).astype(np.int64)
    flat = np.empty(offset[-1], dtype=np.float32)
    flat[: z.size] = z.ravel()
    _pool_levels(flat, offset, rows_a, cols_a)
    return flat, offset, cols_a


@njit(cache=True)
def _pool_levels(flat, offset, rows, cols):  # pragma: no cover
    for level in range(1, offset.shape[0] - 1):  # small arrays: one thread
        src, dst = offset[level - 1], offset[level]
        nr, nc, mc = rows[level - 1], cols[level - 1], cols[level]
        for r in range(rows[level]):
            for c in range(mc):
                m = -np.inf
                for rr in range(2 * r, min(nr, 2 * r + 2)):
                    for cc in range(2 * c, min(nc, 2 * c + 2)):
                        v = flat[src + rr * nc + cc]
                        if v > m:  # False for NaN
                            m = v
                flat[dst + r * mc + c] = m


@njit(cache=True, inline="always")
def _ray_step(d, best, level, x0, y0, eye, rise, stop, dx, dy, rdx, rdy, index, cells, ground,
              nrow, ncol, flat, offset, cols, left, top, res, max_d, floor, floor_from,
              eps):  # pragma: no cover
    """One step of a ray (:func:`_horizon_kernel`) from distance ``d`` [m], with the horizon
    ``best`` (tangent) found so far and the pyramid ``level`` it looks at: the next ``d``,
    ``best`` and ``level``, and True when the ray is done."""
    if d > max_d:
        return d, best, level, True
    # the line a cell must rise above: the horizon found, and far off the floor
    line = max(best, floor) if d >= floor_from else best
    lim = line * d
    # below ``stop`` this sector's horizon changes nothing that is asked of it: a ray may stop
    # once no cell can rise above it (it still samples as it would without it, so the
    # horizons above it are the same to the last digit)
    if max(lim, stop * d) >= rise:
        return d, best, level, True  # no cell can rise above it
    if res == 1.0:  # the same values without two divisions on each step's chain (x / 1 is x)
        u = x0 + d * dx - left
        v = top - (y0 + d * dy)
    else:
        u = (x0 + d * dx - left) / res
        v = (top - (y0 + d * dy)) / res
    if u < 0.0 or v < 0.0:
        return d, best, level, True
    col = int(u)  # floor: u, v ≥ 0
    row = int(v)
    if col >= ncol or row >= nrow:
        return d, best, level, True
    sh = BLOCK_SHIFT + level
    bc, br = col >> sh, row >> sh
    h = flat[offset[level] + br * cols[level] + bc] - eye
    while h > lim and level > 0:  # something in it might: the finer block on the ray
        level -= 1
        sh -= 1
        bc, br = col >> sh, row >> sh
        h = flat[offset[level] + br * cols[level] + bc] - eye
    if h <= lim:
        # nothing in the block rises above the line: go to its far side, and try the next
        # block one level coarser
        d += _to_exit(u, v, bc, br, rdx, rdy, 1 << sh) + eps
        if level < offset.shape[0] - 2:
            level += 1
        return d, best, level, False
    k = index[row >> BLOCK_SHIFT, col >> BLOCK_SHIFT]
    val = cells[k, row & (BLOCK - 1), col & (BLOCK - 1)] if k >= 0 else ground
    rel = val - eye
    # the division only for a cell that may rise above the line: the bound sits a relative
    # 1e-9 below ``lim``, so every cell whose angle exceeds ``line`` passes it whatever the
    # rounding (NaN never does), and the test that decides is the one without it
    if rel > lim * (1.0 - 1e-9):
        tan = rel / d
        if tan > line:
            best = tan
    d += max(0.5 * res, STEP_GROWTH * d)
    return d, best, level, False


@njit(parallel=True, cache=True, nogil=True)
def _horizon_kernel(index, cells, ground, nrow, ncol, flat, offset, cols, left, top, res, px, py,
                    pz, dir_x, dir_y, max_d, zmax, floor, floor_from, floors, floor_of,
                    out):  # pragma: no cover
    """Each point's rays, two opposite sectors at a time: each step waits on the one before
    it (position, look-up, jump), and two independent rays stepped in turn keep the core busy
    while one waits (the demo's march 7–14 % faster, bench/README.md); each ray's steps are
    those it takes alone, so the horizons are the same to the last digit."""
    eps = 1e-6 * res
    sectors = dir_x.shape[0]
    half = (sectors + 1) // 2
    # cell size ÷ each sector's direction (0: parallel to that axis), for :func:`_to_exit`
    rdx = np.zeros(sectors)
    rdy = np.zeros(sectors)
    for s in range(sectors):
        if abs(dir_x[s]) > 1e-12:
            rdx[s] = res / dir_x[s]
        if abs(dir_y[s]) > 1e-12:
            rdy[s] = res / dir_y[s]
    for p in prange(px.shape[0]):
        rise = zmax - pz[p]
        eye = pz[p]
        x0, y0 = px[p], py[p]
        stops = floors[floor_of[p]]
        for a in range(half):
            b = a + half if a + half < sectors else a  # odd count: the last ray twice
            da, besta, levela, donea = 0.5 * res, 0.0, 0, False
            db, bestb, levelb, doneb = 0.5 * res, 0.0, 0, False
            while not (donea and doneb):
                if not donea:
                    da, besta, levela, donea = _ray_step(
                        da, besta, levela, x0, y0, eye, rise, stops[a], dir_x[a], dir_y[a],
                        rdx[a], rdy[a], index, cells, ground, nrow, ncol, flat, offset, cols,
                        left, top, res, max_d, floor, floor_from, eps)
                if not doneb:
                    db, bestb, levelb, doneb = _ray_step(
                        db, bestb, levelb, x0, y0, eye, rise, stops[b], dir_x[b], dir_y[b],
                        rdx[b], rdy[b], index, cells, ground, nrow, ncol, flat, offset, cols,
                        left, top, res, max_d, floor, floor_from, eps)
            out[p, a] = besta
            out[p, b] = bestb


def _horizons(blocks: _Blocks, x: np.ndarray, y: np.ndarray, z: np.ndarray, *, sectors: int,
              max_distance_m: float, floor_tan: np.ndarray | None = None,
              floor_of: np.ndarray | None = None) -> np.ndarray:
    """:func:`horizon_angles` on a surface kept as blocks; ``floor_tan`` (rows × sectors) [-]:
    in each sector, point ``i`` looks only for obstacles seen higher than row ``floor_of[i]``."""
    if floor_tan is None:
        floor_tan, floor_of = np.zeros((1, sectors)), np.zeros(len(x), dtype=np.int64)
    az = np.radians(sector_azimuths(sectors))
    out = np.zeros((len(x), sectors), dtype=np.float64)
    if len(x):
        flat, offset, cols = _pyramid(blocks.peak, SKIP_LEVELS)
        zmax = float(flat[offset[-2]:].max())
        # points handed out in small chunks: a dense estate does not hold up one thread
        with numba.parallel_chunksize(_CHUNK_POINTS):
            _horizon_kernel(blocks.index, blocks.cells, np.float32(blocks.ground),
                            blocks.shape[0], blocks.shape[1], flat, offset, cols, blocks.left,
                            blocks.top, blocks.res, np.ascontiguousarray(x, dtype=np.float64),
                            np.ascontiguousarray(y, dtype=np.float64),
                            np.ascontiguousarray(z, dtype=np.float64), np.sin(az), np.cos(az),
                            float(max_distance_m), zmax,
                            math.tan(math.radians(SEARCH_FLOOR_DEG)), SEARCH_FLOOR_FROM_M,
                            np.ascontiguousarray(floor_tan, dtype=np.float64),
                            np.ascontiguousarray(floor_of, dtype=np.int64), out)
    return np.degrees(np.arctan(out)).astype(np.float32)


def horizon_angles(surface: Surface, x: np.ndarray, y: np.ndarray, z: np.ndarray, *,
                   sectors: int = 72, max_distance_m: float = MAX_DISTANCE_M) -> np.ndarray:
    """Horizon elevation angle [°] per point and azimuth sector.

    Parameters
    ----------
    surface : Surface
        Heights around the points (covering them plus ``max_distance_m`` for a full search).
    x, y : numpy.ndarray
        Points [m].
    z : numpy.ndarray
        Height of the points [m] (the eye level: roof + :data:`POINT_OFFSET_M`).
    sectors : int
        Azimuth sectors (:func:`sector_azimuths`).
    max_distance_m : float
        Search distance [m].

    Returns
    -------
    numpy.ndarray
        ``(points, sectors)`` float32 angles [°], ≥ 0.

    Examples
    --------
    A wall 10 m high, 10 m south of a point at ground level: 45° to the south.

    >>> s = lod1_surface([shapely.box(-50, -11, 50, -10)], np.array([10.0]), (-60, -70, 60, 60))
    >>> h = horizon_angles(s, np.array([0.5]), np.array([0.0]), np.array([0.0]), sectors=4)
    >>> h.round(0).tolist()   # north, east, south, west
    [[0.0, 0.0, 45.0, 0.0]]
    """
    if not len(x):
        return np.zeros((0, sectors), dtype=np.float32)
    blocks = _dense_blocks(surface.z, surface.left, surface.top, surface.res)
    return _horizons(blocks, x, y, z, sectors=sectors, max_distance_m=max_distance_m)


@dataclass
class RoofHorizons:
    """Sample points of the roofs with their horizons (:func:`roof_horizons`).

    Attributes
    ----------
    owner : numpy.ndarray
        Position of each point's roof in the input.
    x, y, z : numpy.ndarray
        Point coordinates and eye height [m].
    horizon_deg : numpy.ndarray
        ``(points, sectors)`` horizon angles [°].
    max_distance_m : float
        Search distance used [m].
    source : str
        ``"lod1"`` or ``"dsm"``.
    cache : dict
        ``enabled`` (with ``folder``, or the ``reason`` it is off), ``tiles``,
        ``tiles_reused`` and ``tiles_computed``; ``files_ignored`` (unreadable or foreign
        files, computed again) and ``files_not_written``.
    """

    owner: np.ndarray
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    horizon_deg: np.ndarray
    max_distance_m: float
    source: str
    cache: dict = field(default_factory=dict)


def default_distance(tops: np.ndarray, ground: float = 0.0) -> float:
    """Search distance [m]: where the tallest top falls below :data:`MIN_OBSTACLE_ANGLE_DEG`.

    Capped at :data:`MAX_DISTANCE_M`; at least 50 m.

    Examples
    --------
    >>> round(default_distance(np.array([10.0, 30.0])))
    859
    """
    finite = np.asarray(tops, dtype=float)
    finite = finite[np.isfinite(finite)]
    top = float(finite.max() - ground) if finite.size else 0.0
    reach = top / math.tan(math.radians(MIN_OBSTACLE_ANGLE_DEG))
    return float(min(MAX_DISTANCE_M, max(50.0, reach)))


def roof_horizons(roofs: Any, *, roof_tops: np.ndarray | None = None,
                  obstacles: Any = None, obstacle_tops: np.ndarray | None = None,
                  dsm: Any = None, dem: Any = None, crs: Any = None, res: float = 1.0,
                  sectors: int = 72, max_distance_m: float | None = None,
                  spacing_m: float = 5.0, inset_m: float = 0.8, max_points: int = 16,
                  tile_m: float = 4000.0, lift_m: np.ndarray | None = None,
                  floor_deg: np.ndarray | None = None,
                  floor_of: np.ndarray | None = None, insets: Any = None,
                  cache: bool | str | os.PathLike | None = None) -> RoofHorizons:
    """Horizons of sample points on every roof, tile by tile.

    Parameters
    ----------
    roofs : array-like of shapely geometries
        Roof footprints [m, working CRS].
    roof_tops : numpy.ndarray, optional
        LoD1: height of each roof above ground [m] (required without ``dsm``).
    obstacles, obstacle_tops : optional
        LoD1: footprints and heights above ground [m] of every building that can cast a shadow
        (default: the roofs themselves).  Must include every building within the search
        distance of the roofs.
    dsm : str, Path or LayerSpec, optional
        Surface model raster [m]; when given, obstacles and heights are read from it.
    dem : str, Path or LayerSpec, optional
        Bare ground [m] under an LoD1 model (default: flat ground at 0 m).
    crs : optional
        Working CRS (for rasters in another CRS).
    res : float
        LoD1 cell size [m].
    sectors : int
        Azimuth sectors (≥ 36; 72 as ``[pv] horizon_sectors``).
    max_distance_m : float, optional
        Search distance [m]; default :func:`default_distance` of the obstacles (LoD1) or
        :data:`MAX_DISTANCE_M` (DSM).
    spacing_m, inset_m, max_points, insets
        Sample grid (:func:`roof_points`).
    tile_m : float
        Tile size [m]; each tile's surface reaches ``max_distance_m`` beyond it.
    lift_m : numpy.ndarray, optional
        Height added to each roof's points above :data:`POINT_OFFSET_M` [m] (one per roof).
    floor_deg, floor_of : numpy.ndarray, optional
        ``(rows, sectors)`` elevations [°] and the row of each roof: in each sector a roof's
        points look only for obstacles seen higher than its row (:func:`horizon_floors`: where
        a lower horizon changes nothing in the roof's shading factors).  Below it a horizon
        is only known to be below it.  Default: every obstacle.
    cache : bool, str or Path, optional
        Keep each tile's horizons in a cache folder and load them on a later call whose tile
        has the same inputs (module notes, "Cache of tiles"): None or True the default
        folder (:func:`cache_folder`), a path that folder, False no cache.  The environment
        variable ``GIS_PLANNER_NO_CACHE=1`` turns it off whatever is passed.  Horizons loaded
        are the very values a computation gives (the key holds every input of the tile).

    Returns
    -------
    RoofHorizons
        With ``cache``: whether the cache was used, its folder, and the tiles reused and
        computed.
    """
    roofs = np.asarray(roofs, dtype=object)
    job = _Job(dsm=dsm, dem=dem, crs=crs, res=float(res), sectors=int(sectors),
               roof_tops=None if roof_tops is None else np.asarray(roof_tops, dtype=float),
               lift_m=None if lift_m is None else np.asarray(lift_m, dtype=float))
    if dsm is None:
        if roof_tops is None:
            raise ValueError("roof_tops are required without a DSM")
        if obstacles is None:
            obstacles, obstacle_tops = roofs, roof_tops
        job.obstacles = np.asarray(obstacles, dtype=object)
        job.obstacle_tops = np.asarray(obstacle_tops, dtype=float)
        if max_distance_m is None:
            max_distance_m = default_distance(job.obstacle_tops)
        # without a DEM every top is absolute already: the edges are made once for all tiles;
        # with one, each tile finds its obstacles and their ground
        if dem is None:
            job.prisms = prisms_of(job.obstacles, job.obstacle_tops)
        else:
            job.tree = shapely.STRtree(job.obstacles)
    elif max_distance_m is None:
        max_distance_m = MAX_DISTANCE_M
    job.max_distance_m = float(max_distance_m)
    job.owner, job.x, job.y = roof_points(roofs, spacing_m=spacing_m, inset_m=inset_m,
                                          max_points=max_points, insets=insets)
    x, y = job.x, job.y
    z = np.full(len(job.owner), np.nan)
    horizon = np.zeros((len(job.owner), sectors), dtype=np.float32)
    keys, order, bounds = _tiles(x, y, tile_m)
    pad = max_distance_m + 2 * res
    if floor_deg is not None:
        # a margin keeps the obstacles left out strictly below the elevation given
        job.floor_tan = np.tan(np.radians(np.clip(np.asarray(floor_deg, float)
                                                  - _FLOOR_MARGIN_DEG, 0.0, 89.0)))
        job.floor_of = np.asarray(floor_of, dtype=np.int64)
    store, stats = _open_cache(cache, dsm, dem)
    base = _cache_base(job, tile_m) if store is not None else None
    tiles = [(order[bounds[t]:bounds[t + 1]],
              (i * tile_m - pad, j * tile_m - pad, (i + 1) * tile_m + pad, (j + 1) * tile_m + pad))
             for t, (i, j) in enumerate(keys)]  # tiles of the district, not buildings
    reused = _march_tiles(job, tiles, store, base, z, horizon)
    if store is not None:
        store.trim()
        stats.update(files_ignored=store.ignored, files_not_written=store.not_written)
    stats.update(tiles=len(keys), tiles_reused=reused, tiles_computed=len(keys) - reused)
    _cache.count(tiles_reused=reused, tiles_computed=len(keys) - reused,
                 files_ignored=stats.get("files_ignored", 0),
                 files_not_written=stats.get("files_not_written", 0))
    return RoofHorizons(owner=job.owner, x=x, y=y, z=z, horizon_deg=horizon,
                        max_distance_m=float(max_distance_m),
                        source="dsm" if dsm is not None else "lod1", cache=stats)


def _march_tiles(job: _Job, tiles: list, store, base, z: np.ndarray, horizon: np.ndarray
                 ) -> int:
    """Each tile's eye heights and horizons into ``z`` and ``horizon``: read from the cache,
    or marched (:class:`_TileMarch`) and stored.  ``tiles``: (points, box) pairs.  Returns how
    many tiles were read from the cache."""
    reused = 0

    def keep(done: list[tuple]) -> None:
        for sel, key, hor in done:
            horizon[sel] = hor
            if store is not None:
                store.put(key, [z[sel], hor])

    with _TileMarch() as march:
        for sel, box in tiles:
            layout = [((len(sel),), np.float64), ((len(sel), job.sectors), np.float32)]
            tile_key = _tile_key(job, base, sel, box) if store is not None else None
            hit = store.get(tile_key, layout) if store is not None else None
            if hit is not None:
                z[sel], horizon[sel] = hit
                reused += 1
                continue
            surface = _tile_surface(job, sel, box)
            z[sel] = surface.z
            keep(march.submit(job, surface, (sel, tile_key)))
        keep(march.drain())
    return reused


def _tiles(x: np.ndarray, y: np.ndarray, tile_m: float
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tiles holding points, in (column, row) order: ``(tiles, 2)`` column and row, the points
    sorted by tile (in their order within one) and each tile's slice of that order."""
    tx = np.floor(x / tile_m).astype(np.int64)
    ty = np.floor(y / tile_m).astype(np.int64)
    span = int(ty.max() - ty.min()) + 1 if len(ty) else 1  # a one-dimensional key
    key = (tx - tx.min()) * span + (ty - ty.min()) if len(tx) else tx
    uniq, tile_of = np.unique(key, return_inverse=True)
    keys = (np.stack([uniq // span + tx.min(), uniq % span + ty.min()], axis=1) if len(tx)
            else np.zeros((0, 2), dtype=np.int64))
    tile_of = tile_of.ravel()
    order = np.argsort(tile_of, kind="stable")  # one sort, not a scan of every point per tile
    return keys, order, np.searchsorted(tile_of[order], np.arange(len(keys) + 1))


@dataclass
class _Job:
    """What every tile of :func:`roof_horizons` shares."""

    dsm: Any
    dem: Any
    crs: Any
    res: float
    sectors: int
    roof_tops: np.ndarray | None
    lift_m: np.ndarray | None
    max_distance_m: float = 0.0
    obstacles: np.ndarray | None = None
    obstacle_tops: np.ndarray | None = None
    prisms: Prisms | None = None
    tree: Any = None
    floor_tan: np.ndarray | None = None
    floor_of: np.ndarray | None = None
    owner: np.ndarray | None = None
    x: np.ndarray | None = None
    y: np.ndarray | None = None


@dataclass
class _TileSurface:
    """A tile's surface as blocks and its points' eyes, ready for the ray march."""

    blocks: _Blocks
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    floor_of: np.ndarray | None


def _tile_march(job: _Job, surface: _TileSurface) -> np.ndarray:
    """Horizons [°] of a tile's points (rows of points without an eye height stay 0)."""
    horizon = np.zeros((len(surface.z), job.sectors), dtype=np.float32)
    ok = np.isfinite(surface.z)
    horizon[ok] = _horizons(surface.blocks, surface.x[ok], surface.y[ok], surface.z[ok],
                            sectors=job.sectors, max_distance_m=job.max_distance_m,
                            floor_tan=job.floor_tan,
                            floor_of=None if surface.floor_of is None else surface.floor_of[ok])
    return horizon


class _TileMarch:
    """Each tile's ray march in a worker thread while this one prepares the next tile (its
    key, LoD1 burn and pyramid) and stores the one before: the march releases the GIL, and
    the preparation (≈ 15 % of a cold run's horizons) no longer leaves the second core idle.

    Only one march runs at a time, and each tile gets exactly the horizons of a march in
    this thread.  Parallel compiled code from two threads at once needs numba's ``omp`` or
    ``tbb`` threading layer (``workqueue`` aborts the process): with any other layer the
    march runs here, one tile after the other.
    """

    def __init__(self) -> None:
        self._pool = None
        self._running = None  # (future, tag) of the tile marching

    def __enter__(self) -> _TileMarch:
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def submit(self, job: _Job, surface: _TileSurface, tag: tuple) -> list[tuple]:
        """Start a tile's march; return ``(*tag, horizons)`` of the tiles done meanwhile (the
        one before, or this one when it marched here)."""
        if not self._concurrent():
            return [(*tag, _tile_march(job, surface))]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gis-march")
        done = self.drain()  # one march at a time: the tile before ends first
        self._running = (self._pool.submit(_tile_march, job, surface), tag)
        return done

    def drain(self) -> list[tuple]:
        """``(*tag, horizons)`` of the tile still marching, once done."""
        if self._running is None:
            return []
        future, tag = self._running
        self._running = None
        return [(*tag, future.result())]

    @staticmethod
    def _concurrent() -> bool:
        try:
            return numba.threading_layer() in ("omp", "tbb")
        except ValueError:  # no parallel region has run yet
            return False


def _tile_surface(job: _Job, sel: np.ndarray, box: tuple[float, float, float, float]
                  ) -> _TileSurface:
    """The surface over ``box`` as blocks, and the eye heights [m] of the points ``sel``."""
    x, y, owner, res = job.x[sel], job.y[sel], job.owner[sel], job.res
    if job.dsm is not None:
        surface = raster_surface(job.dsm, box, crs=job.crs)
        base = surface.sample(x, y)
        blocks = _dense_blocks(surface.z, surface.left, surface.top, surface.res)
    else:
        if job.dem is None:
            blocks = _lod1_blocks(job.prisms, box, res=res)
            ground = None
        else:
            grid = lod1_surface([], np.empty(0), box, res=res)
            ground = raster_surface(job.dem, box, crs=job.crs, grid=grid)
            near = job.tree.query(shapely.box(*box))
            ground_at = ground.sample(*shapely.get_coordinates(
                shapely.point_on_surface(job.obstacles[near])).T)
            blocks = _lod1_blocks(prisms_of(job.obstacles[near],
                                            np.nan_to_num(ground_at) + job.obstacle_tops[near]),
                                  box, res=res, ground=ground)
        own_ground = ground.sample(x, y) if ground is not None else np.zeros(len(sel))
        base = np.nan_to_num(own_ground) + job.roof_tops[owner]
    z = base + POINT_OFFSET_M + (job.lift_m[owner] if job.lift_m is not None else 0.0)
    return _TileSurface(blocks=blocks, x=x, y=y, z=z,
                        floor_of=None if job.floor_tan is None else job.floor_of[owner])


# ---------------------------------------------------------------------------------------------
# Cache of tiles


def cache_folder() -> Path:
    """Default folder of cached horizon tiles: ``horizons`` under the package's cache root
    (``$GIS_PLANNER_CACHE_DIR``, else ``$XDG_CACHE_HOME/gis-planner``, else
    ``~/.cache/gis-planner``)."""
    return _cache.cache_root() / CACHE_NAME


def cache_record(before: dict[str, int], *, on: bool = True, engine: str = "local"
                 ) -> dict[str, Any]:
    """What run.json says of the horizon cache over a step (``settings.horizon_cache``).

    Parameters
    ----------
    before : dict
        :func:`gis._cache.counts` taken when the step began.
    on : bool
        ``[pv] horizon_cache``.
    engine : str
        ``local`` or ``dask`` (whose worker processes keep their own counts).

    Returns
    -------
    dict
        ``enabled``, ``folder`` (or ``reason``), ``tiles_reused``, ``tiles_computed``,
        ``files_ignored``, ``files_not_written`` and ``max_bytes`` (the folder's cap).
    """
    out: dict[str, Any] = {"enabled": bool(on) and not _cache.disabled_by_env()}
    if not on:
        out["reason"] = "[pv] horizon_cache = false"
    elif _cache.disabled_by_env():
        out["reason"] = f"{_cache.ENV_OFF} is set"
    else:
        out["folder"] = str(cache_folder())
        out["max_bytes"] = _cache.MAX_BYTES
    if engine == "dask":
        out["tiles"] = "counted by the dask workers, not here"
        return out
    now = _cache.counts()
    out.update({k: now[k] - before.get(k, 0) for k in now})
    return out


def _open_cache(cache: Any, dsm: Any, dem: Any) -> tuple[_cache.ArrayCache | None, dict]:
    """The tiles' cache (None when off) and what run.json says of it."""
    if _cache.disabled_by_env():
        return None, {"enabled": False, "reason": f"{_cache.ENV_OFF} is set"}
    if cache is False:
        return None, {"enabled": False, "reason": "switched off"}
    from gis.io import raster_ref

    for raster in (dsm, dem):
        if raster is not None and raster_ref(raster)[0].suffix.lower() == ".vrt":
            # a VRT's content does not hold its sources' cells: no key can tell a change
            return None, {"enabled": False, "reason": "a .vrt surface raster"}
    folder = (Path(cache) if isinstance(cache, str | os.PathLike) else cache_folder())
    return _cache.ArrayCache(folder), {"enabled": True, "folder": str(folder)}


@functools.lru_cache(maxsize=1)
def _code_digest() -> str:
    """This module's source and the compilers' versions: a change to the kernels is a new key."""
    return _cache.Digest(CACHE_VERSION, Path(__file__).read_bytes(), numba.__version__,
                         np.__version__).hexdigest()


def _cache_base(job: _Job, tile_m: float) -> _cache.Digest:
    """The digest of what every tile of a call shares: code, settings, rasters' content."""
    from gis.io import file_hash, raster_ref

    base = _cache.Digest(_code_digest(), job.sectors, job.max_distance_m, job.res, float(tile_m),
                         MIN_OBSTACLE_ANGLE_DEG, SEARCH_FLOOR_DEG, SEARCH_FLOOR_FROM_M,
                         STEP_GROWTH, BLOCK, SKIP_LEVELS, POINT_OFFSET_M, _FLOOR_MARGIN_DEG,
                         job.floor_tan, job.roof_tops is None, job.lift_m is None)
    for name, raster in (("dsm", job.dsm), ("dem", job.dem)):
        if raster is not None:
            path, band, declared = raster_ref(raster)
            base.update(name, file_hash(path), band, str(declared), str(job.crs))
    return base


def _tile_key(job: _Job, base: _cache.Digest, sel: np.ndarray,
              box: tuple[float, float, float, float]) -> str:
    """Digest of every input of a tile's horizons: its points (position, roof top, lift,
    floor row), its surface grid and the obstacles reaching it."""
    owner = job.owner[sel]
    left, top, width, height = _grid(box, job.res)
    d = base.copy().update(box, left, top, width, height, job.x[sel], job.y[sel])
    if job.roof_tops is not None:
        d.update(job.roof_tops[owner])
    if job.lift_m is not None:
        d.update(job.lift_m[owner])
    if job.floor_tan is not None:
        d.update(job.floor_of[owner])
    if job.prisms is not None:  # LoD1: the footprint edges the burn of this grid can reach
        ext, m = job.prisms.extent, 2 * job.res
        near = ((ext[:, 2] >= left - m) & (ext[:, 0] <= left + width * job.res + m)
                & (ext[:, 3] >= top - height * job.res - m) & (ext[:, 1] <= top + m))
        counts = np.diff(job.prisms.start)
        d.update(job.prisms.edges[np.repeat(near, counts)], counts[near],
                 job.prisms.heights[near])
    elif job.tree is not None:  # LoD1 over a DEM: the obstacles this tile queries
        near = job.tree.query(shapely.box(*box))
        d.update(b"".join(shapely.to_wkb(job.obstacles[near]).tolist()),
                 job.obstacle_tops[near])
    return d.hexdigest()


# ---------------------------------------------------------------------------------------------
# Sky view and shading


def _svf_integrals(tilt: np.ndarray, azimuth: np.ndarray, sectors: int) -> np.ndarray:
    """∫ from each grid elevation to the zenith of max(0, cos θ) cos α dα, per class and sector.

    Shape ``(classes, sectors, len(_SVF_GRID))``; θ is the incidence angle on the plane of a sky
    direction at elevation α and the sector's azimuth.
    """
    edges = np.radians(_SVF_GRID)
    mid = (edges[:-1] + edges[1:]) / 2
    dalpha = np.diff(edges)
    beta = np.radians(np.asarray(tilt, float))[:, None, None]
    rel = np.radians(sector_azimuths(sectors)[None, :, None]
                     - np.asarray(azimuth, float)[:, None, None])
    cos_inc = np.sin(mid) * np.cos(beta) + np.cos(mid) * np.sin(beta) * np.cos(rel)
    cell = np.clip(cos_inc, 0.0, None) * np.cos(mid) * dalpha
    tail = np.cumsum(cell[..., ::-1], axis=-1)[..., ::-1]
    return np.concatenate([tail, np.zeros(tail.shape[:-1] + (1,))], axis=-1)


def _visible_sky(integrals: np.ndarray, cls: np.ndarray, horizon_deg: np.ndarray,
                 rows: np.ndarray | None = None) -> np.ndarray:
    """Isotropic sky [sr-weighted] each point sees above its horizon (compiled, per point);
    point ``p``'s horizon is row ``rows[p]`` of ``horizon_deg`` (default: row ``p``)."""
    out = np.zeros(len(cls))
    if len(cls):
        _visible_sky_kernel(integrals, np.ascontiguousarray(cls, dtype=np.int64),
                            _float_array(horizon_deg), _rows(rows, len(cls)),
                            float(_SVF_GRID[1] - _SVF_GRID[0]), out)
    return out


def _rows(rows: np.ndarray | None, n: int) -> np.ndarray:
    """The row of the horizons of each of ``n`` points: ``rows``, or each point its own."""
    return np.arange(n, dtype=np.int64) if rows is None else np.ascontiguousarray(rows,
                                                                                dtype=np.int64)


def _no_horizon(rows: int, sectors: int) -> np.ndarray:
    """Zero horizons as float32, the dtype of computed horizons: the kernels then compile once
    for both (each float64 specialisation cost ≈ 1 s on a first run); zero is exact in both."""
    return np.zeros((rows, sectors), np.float32)


def _float_array(values: Any) -> np.ndarray:
    """Contiguous float32 or float64 (horizons stay float32: the kernels widen each value
    exactly, and the points' horizons are not copied)."""
    values = np.asarray(values)
    if values.dtype not in (np.float32, np.float64):
        values = values.astype(np.float64)
    return np.ascontiguousarray(values)


@njit(cache=True, inline="always")
def _sky_above(integrals, c, s, h, step):  # pragma: no cover
    """The integral of class ``c``, sector ``s`` above elevation ``h`` [°] (interpolated)."""
    h = min(max(h, 0.0), 90.0)
    k = min(int(h / step), integrals.shape[2] - 2)
    frac = h / step - k
    lo, hi = integrals[c, s, k], integrals[c, s, k + 1]
    return lo + (hi - lo) * frac


@njit(parallel=True, cache=True, nogil=True)
def _visible_sky_kernel(integrals, cls, hor, rows, step, out):  # pragma: no cover
    for p in prange(cls.shape[0]):
        acc = 0.0
        r = rows[p]
        for s in range(hor.shape[1]):  # sectors in order: the same sum as sector by sector
            acc += _sky_above(integrals, cls[p], s, hor[r, s], step)
        out[p] = acc


@njit(parallel=True, cache=True, nogil=True)
def _direct_kernel(seg, elevation, prefix, cls, hor, rows, out):  # pragma: no cover
    """Beam + circumsolar [Wh/m²] of the hours whose sun stands above each sector's horizon
    (point ``p``'s: row ``rows[p]`` of ``hor``)."""
    for p in prange(cls.shape[0]):
        c = cls[p]
        r = rows[p]
        acc = 0.0
        for s in range(seg.shape[0] - 1):
            a, b = seg[s], seg[s + 1]
            if b == a:
                continue
            h = hor[r, s]
            lo, hi = a, b  # first hour whose elevation is above h (searchsorted, side right)
            while lo < hi:
                mid = (lo + hi) // 2
                if elevation[mid] <= h:
                    lo = mid + 1
                else:
                    hi = mid
            acc += prefix[c, b] - prefix[c, lo]
        out[p] = acc


def orientation_classes(tilt: np.ndarray, azimuth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (tilt, azimuth) pairs [°] as a ``(classes, 2)`` array, sorted by tilt then
    azimuth, and each plane's class (one 1-D unique of tilt + i·azimuth)."""
    pairs, cls = np.unique(np.asarray(tilt, float) + 1j * np.asarray(azimuth, float),
                           return_inverse=True)
    return np.stack([pairs.real, pairs.imag], axis=1), cls.ravel()


def _orientation_classes(horizon_deg, tilt, azimuth) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Horizons as an (n, sectors) array, the distinct (tilt, azimuth) pairs and each point's pair.

    ``tilt`` and ``azimuth`` are one value for every point or one per point.
    """
    horizon_deg = np.atleast_2d(np.asarray(horizon_deg, dtype=float))
    n = horizon_deg.shape[0]
    classes, cls = orientation_classes(np.broadcast_to(np.asarray(tilt, float), (n,)),
                                       np.broadcast_to(np.asarray(azimuth, float), (n,)))
    return horizon_deg, classes, cls


def sky_view_factor(horizon_deg: np.ndarray, tilt: Any, azimuth: Any) -> np.ndarray:
    """Sky-view factor of a tilted plane: isotropic sky seen with the horizon ÷ without.

    Parameters
    ----------
    horizon_deg : numpy.ndarray
        ``(points, sectors)`` horizon angles [°] (sectors as :func:`sector_azimuths`).
    tilt, azimuth : float or array-like
        Plane tilt and azimuth [°] (180 = south), scalars or one per point.

    Returns
    -------
    numpy.ndarray
        Fraction [0, 1] of the plane's unobstructed isotropic sky irradiance it still receives.

    Examples
    --------
    A horizontal plane in a uniform 45° canyon sees ``1 − sin² 45° = 0.5`` of its sky:

    >>> float(sky_view_factor(np.full((1, 72), 45.0), 0.0, 180.0)[0].round(3))
    0.5
    >>> float(sky_view_factor(np.zeros((1, 36)), 30.0, 180.0)[0])
    1.0
    """
    horizon_deg, classes, cls = _orientation_classes(horizon_deg, tilt, azimuth)
    sectors = horizon_deg.shape[1]
    integrals = _svf_integrals(classes[:, 0], classes[:, 1], sectors)
    seen = _visible_sky(integrals, cls, horizon_deg)
    full = _visible_sky(integrals, np.arange(len(classes)),
                        _no_horizon(len(classes), sectors))[cls]  # once per class
    return np.divide(seen, full, out=np.ones(len(horizon_deg)), where=full > 0)


@dataclass(frozen=True)
class SkyTable:
    """Annual sky of a set of orientation classes, arranged for horizon look-ups.

    Attributes
    ----------
    tilt, azimuth : numpy.ndarray
        The classes [°].
    seg : numpy.ndarray
        ``sectors + 1`` offsets of each sector's hours in the sorted order.
    elevation : numpy.ndarray
        Sun elevation [°] of the daylight hours, sorted by sector then elevation.
    direct_prefix : numpy.ndarray
        ``(classes, hours + 1)`` running sums of beam + circumsolar [Wh/m²] in that order.
    diffuse : numpy.ndarray
        Annual isotropic sky + horizon band per class [Wh/m²].
    ground : numpy.ndarray
        Annual ground-reflected irradiation per class [Wh/m²].
    svf_integrals : numpy.ndarray
        See :func:`_svf_integrals`.
    """

    tilt: np.ndarray
    azimuth: np.ndarray
    seg: np.ndarray
    elevation: np.ndarray
    direct_prefix: np.ndarray
    diffuse: np.ndarray
    ground: np.ndarray
    svf_integrals: np.ndarray

    @property
    def sectors(self) -> int:
        return len(self.seg) - 1


def sky_table(weather: tuple[pd.DataFrame, dict], tilts: Any, azimuths: Any, *,
              sectors: int = 72, params: solar.SolarParams | None = None) -> SkyTable:
    """Hourly sky per orientation class summed once for horizon look-ups.

    Parameters
    ----------
    weather : (data, meta)
        As :func:`gis.solar.read_weather` or :func:`gis.solar.climate_model` return.
    tilts, azimuths : array-like
        Equal-length class tilts and azimuths [°].
    sectors : int
        Azimuth sectors of the horizons it will be used with.
    params : gis.solar.SolarParams, optional
        Transposition and albedo (those of the yields).

    Returns
    -------
    SkyTable
    """
    data, meta = weather
    parts = solar.poa_components(data, meta, tilts, azimuths, params=params)
    width = 360.0 / sectors
    sector = np.mod(np.round(parts["sun_azimuth"] / width), sectors).astype(np.int64)
    order = np.lexsort((parts["sun_elevation"], sector))
    seg = np.searchsorted(sector[order], np.arange(sectors + 1))
    direct = (parts["beam"] + parts["circumsolar"])[:, order]
    prefix = np.concatenate([np.zeros((direct.shape[0], 1)), np.cumsum(direct, axis=1)], axis=1)
    tilt = np.atleast_1d(np.asarray(tilts, float))
    azimuth = np.atleast_1d(np.asarray(azimuths, float))
    return SkyTable(tilt=tilt, azimuth=azimuth, seg=seg, elevation=parts["sun_elevation"][order],
                    direct_prefix=prefix,
                    diffuse=(parts["isotropic"] + parts["horizon"]).sum(axis=1),
                    ground=parts["ground"].sum(axis=1),
                    svf_integrals=_svf_integrals(tilt, azimuth, sectors))


def shaded_irradiation(table: SkyTable, cls: np.ndarray, horizon_deg: np.ndarray,
                       rows: np.ndarray | None = None) -> np.ndarray:
    """Annual plane-of-array irradiation [Wh/m²] of points with horizons, per class ``cls``.

    Beam and circumsolar count in the hours whose sun stands above the horizon of its sector;
    the isotropic sky and horizon band are scaled by the plane's sky-view factor; ground
    reflection is unchanged.  ``rows``: the row of ``horizon_deg`` of each point (default:
    row ``p`` for point ``p``), so that points sharing horizons (a gable's two planes) share
    one copy of them.
    """
    horizon_deg = _float_array(horizon_deg)
    if horizon_deg.shape[1] != table.sectors:
        raise ValueError(f"horizons have {horizon_deg.shape[1]} sectors, the table "
                         f"{table.sectors}")
    cls = np.ascontiguousarray(cls, dtype=np.int64)
    rows = _rows(rows, len(cls))
    direct = np.zeros(len(cls))
    if len(cls):
        _direct_kernel(np.asarray(table.seg, dtype=np.int64), table.elevation,
                       np.ascontiguousarray(table.direct_prefix), cls, horizon_deg, rows, direct)
    seen = _visible_sky(table.svf_integrals, cls, horizon_deg, rows)
    # the sky without a horizon is the same for every point of a class: once per class
    classes = np.arange(len(table.tilt))
    full = _visible_sky(table.svf_integrals, classes, _no_horizon(len(classes), table.sectors))[cls]
    svf = np.divide(seen, full, out=np.ones(len(cls)), where=full > 0)
    return direct + table.diffuse[cls] * svf + table.ground[cls]


def table_shading_factors(table: SkyTable, cls: np.ndarray, horizon_deg: np.ndarray,
                          rows: np.ndarray | None = None) -> np.ndarray:
    """Shading factor [-] of points: shaded ÷ unshaded (zero horizon) irradiation of their class
    (``rows`` as in :func:`shaded_irradiation`)."""
    shaded = shaded_irradiation(table, cls, horizon_deg, rows)
    classes = np.arange(len(table.tilt))  # the unshaded sum is one per class
    free = shaded_irradiation(table, classes, _no_horizon(len(classes), table.sectors))[cls]
    return np.clip(np.divide(shaded, free, out=np.ones(len(cls)), where=free > 0), 0.0, 1.0)


def horizon_floors(table: SkyTable) -> np.ndarray:
    """Elevation [°] below which a sector's horizon changes nothing in a class's shading factor.

    Below it the plane faces away from the sky of the sector (the sky-view integral of
    :func:`_svf_integrals` is the same from 0° up to it) and no hour whose sun stands that low
    in the sector brings beam or circumsolar light onto the plane; a lower horizon gives the
    same :func:`shaded_irradiation`, to the last digit.  A south-facing plane tilted 25° sees
    nothing of the northern sky below 25°, so its rays to the north need not look lower.

    Returns
    -------
    numpy.ndarray
        ``(classes, sectors)`` [°], 0 where every elevation matters.

    Examples
    --------
    >>> t = sky_table(solar.climate_model(39.1, 117.4), [25.0], [180.0], sectors=36)
    >>> f = horizon_floors(t)
    >>> float(f[0, 0]), float(f[0, 18])   # due north: the tilt; due south: everything matters
    (25.0, 0.0)
    """
    s_int = table.svf_integrals
    step = float(_SVF_GRID[1] - _SVF_GRID[0])
    same = s_int == s_int[:, :, :1]  # the integral above k equal to the one above 0°
    sky = np.where(same.all(axis=2), 90.0, (np.argmin(same, axis=2) - 1) * step)
    prefix, seg = table.direct_prefix, table.seg
    sun = np.full(sky.shape, 90.0)
    for s in range(table.sectors):  # sectors, not points
        a, b = seg[s], seg[s + 1]
        if b == a:
            continue
        adds = prefix[:, a + 1:b + 1] != prefix[:, a:a + 1]  # hours that add to the sum
        first = np.argmax(adds, axis=1)
        sun[:, s] = np.where(adds.any(axis=1), table.elevation[a + first], 90.0)
    return np.clip(np.minimum(sky, sun), 0.0, 90.0)


def point_shading_factors(horizon_deg: np.ndarray, tilt: Any, azimuth: Any,
                          weather: tuple[pd.DataFrame, dict], *,
                          params: solar.SolarParams | None = None) -> np.ndarray:
    """Shading factor of points on planes of any orientation (one call, classes found here).

    Parameters
    ----------
    horizon_deg : numpy.ndarray
        ``(points, sectors)`` horizon angles [°].
    tilt, azimuth : float or array-like
        Module plane per point [°] (180 = south).
    weather : (data, meta)
        As :func:`gis.solar.read_weather` returns.
    params : gis.solar.SolarParams, optional
        Transposition and albedo.

    Returns
    -------
    numpy.ndarray
        Annual POA irradiation with the horizon ÷ without [-].

    Examples
    --------
    >>> weather = solar.climate_model(39.1, 117.4)
    >>> point_shading_factors(np.zeros((2, 36)), 25.0, 180.0, weather).tolist()
    [1.0, 1.0]
    >>> south_wall = np.zeros((1, 36))
    >>> south_wall[0, 12:25] = 60.0   # 120°–240° blocked up to 60°
    >>> round(float(point_shading_factors(south_wall, 25.0, 180.0, weather)[0]), 2)
    0.42
    """
    horizon_deg, classes, cls = _orientation_classes(horizon_deg, tilt, azimuth)
    table = sky_table(weather, classes[:, 0], classes[:, 1], sectors=horizon_deg.shape[1],
                      params=params)
    return table_shading_factors(table, cls, horizon_deg)

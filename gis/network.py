"""The barrier as a network: habitat patches, landscape metrics, connectivity, corridors, and the
afforestation candidates that join patches.

Method
------
* **Patches.**  Habitat parcels (forest and water, wetland included, by default; green space on
  request: :data:`gis.config.NETWORK_HABITATS`) are clipped to each accounting unit (zone
  feature, level union — labelled as in ``zones.csv``), split into their parts, and parts that
  touch (a shared edge or corner, within :data:`TOUCH_M`) are dissolved into one patch
  (``STRtree`` touching pairs + ``scipy.sparse.csgraph.connected_components``).  Patches smaller
  than ``min_patch_ha`` are ignored in every figure.  Corner contact joins patches as FRAGSTATS's
  8-cell rule does on a raster.
* **Landscape metrics** (McGarigal & Marks, FRAGSTATS 4 documentation, class level with habitat as
  the class): ``n_patches`` (NP); ``largest_patch_index`` (LPI) = largest patch area ÷ zone area ×
  100 [%]; ``mean_patch_area_ha`` (AREA_MN); ``edge_density_m_ha`` (ED) = habitat edge length ÷
  zone area [m/ha], the zone's own boundary not counted as edge (FRAGSTATS's and pylandstats'
  default).
* **Connectivity** (Saura & Pascual-Hortal 2007, Landscape and Urban Planning 83: 91–103):
  edge-to-edge distances d_ij between patches; p_ij = exp(−k d_ij) with k = ln 2 ÷
  ``dispersal_m`` (p = 0.5 at the dispersal distance); p*_ij = the maximum product probability
  over all paths = exp(−shortest path over weights k·d) (``scipy.sparse.csgraph.dijkstra``);
  PC = ΣΣ a_i a_j p*_ij ÷ A_L² (a fraction 0–1, A_L = zone area, i = j included); ECA =
  sqrt(ΣΣ a_i a_j p*_ij) [ha] (Saura et al. 2011, Ecological Indicators 11: 407–416); dPC_k =
  100 (PC − PC_without_k) ÷ PC [%] with A_L unchanged.  Direct links weaker than
  :data:`P_MIN` (beyond ≈ 13.3 dispersal distances) are left out, and so are paths whose
  product falls below it.
* **Corridors** (after Linkage Mapper, McRae & Kavanagh 2011): least-cost paths over a resistance
  raster from the land-use groups (``resistance`` table, :data:`DEFAULT_RESISTANCE`), with
  scikit-image's ``MCP_Geometric`` cost-distance (its algorithm and queue, compiled here:
  :func:`_cost_distance`): one cost-distance run from every patch at once, each cell
  allocated to the patch it is cheapest to reach from; two patches are neighbours where their
  allocation zones meet, and their corridor runs through the cheapest meeting point.  Corridors
  between patches farther apart (edge to edge) than ``corridor_max_m`` are dropped.  The
  non-habitat parcels a corridor crosses are the gaps to close.
* **Candidates.**  An afforestation parcel becoming forest is a new patch linked with p = 1 to the
  patches it touches (that is, it merges them) and by the kernel to the others; the new p* are
  exactly max(p*_ij, p*_ic · p*_cj), so the gain needs no new shortest-path run:
  ``connectivity_gain`` = 100 (PC after − PC before) ÷ PC before [%] in the zone the list serves;
  ``bridges`` = it touches two or more patches.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numba import njit
from scipy import sparse
from scipy.sparse import csgraph

from gis import io
from gis._geom import union_by_group
from gis.config import NETWORK_HABITATS, RESISTANCE_GROUPS

#: Links and paths whose probability falls below this are left out of PC.
P_MIN = 1e-4
#: Parcels closer than this [m] touch (survey parcels share their vertices; this absorbs
#: floating-point noise only).
TOUCH_M = 0.01
#: Relative resistance per land-use group (1 = habitat).  Ordinal values in the manner of
#: minimum-cumulative-resistance studies (Knaapen et al. 1992, Landscape and Urban Planning 23:
#: 1–16; Yu 1996 for Chinese planning practice): water and forest 1, green space 2, cropland 10,
#: other land 30, construction land 100.  A run file overrides any of them.
DEFAULT_RESISTANCE = {"blue": 1.0, "forest": 1.0, "green": 2.0, "cropland": 10.0,
                      "other": 30.0, "construction": 100.0}

PATCH_COLUMNS = ["patch_id", "zone", "level", "area_ha", "classes", "edge_m", "dpc", "geometry"]
CONNECTIVITY_COLUMNS = ["zone", "level", "kind", "area_ha", "n_patches", "habitat_ha",
                        "largest_patch_index", "mean_patch_area_ha", "edge_density_m_ha", "pc",
                        "eca_ha"]
CORRIDOR_COLUMNS = ["corridor_id", "from_patch", "to_patch", "distance_m", "length_m", "cost",
                    "gap_m", "gap_parcels", "n_gap_parcels", "geometry"]
GAP_COLUMNS = ["corridor_id", "id", "code", "group", "name_zh", "crossed_m", "area_ha",
               "geometry"]


@dataclass(frozen=True)
class NetworkOptions:
    """Settings of the ecological network (``[ecology.network]``).

    Attributes
    ----------
    enabled : bool
        Compute the network at all.
    habitat : tuple of str
        Habitat classes: ``forest``, ``water`` (blue land, wetland included), ``green``.
    min_patch_ha : float
        Patches smaller than this [ha] are ignored.
    dispersal_m : float
        Edge-to-edge distance at which the dispersal probability is 0.5 [m].
    resistance : dict
        Relative resistance per land-use group (``blue forest green cropland construction
        other``); land outside every parcel counts as ``other``.
    resolution_m : float
        Cell size of the resistance raster [m].
    max_cells : int
        Largest resistance raster; a coarser cell is taken (and recorded) above it.
    corridor_max_m : float
        Longest edge-to-edge gap a corridor is drawn across [m].
    max_candidates : int
        Most afforestation candidates evaluated per list (nearest to a patch first); the rest
        get ``connectivity_gain`` 0.
    rank_by : str
        ``suitability`` (the list's own order) or ``connectivity``.
    top_candidates : int
        How many candidates (by connectivity gain) the report adds together.
    """

    enabled: bool = True
    habitat: tuple[str, ...] = ("forest", "water")
    min_patch_ha: float = 1.0
    dispersal_m: float = 500.0
    resistance: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_RESISTANCE))
    resolution_m: float = 10.0
    max_cells: int = 1_000_000
    corridor_max_m: float = 2000.0
    max_candidates: int = 1000
    rank_by: str = "suitability"
    top_candidates: int = 10

    @property
    def decay_per_m(self) -> float:
        """k of the kernel p = exp(−k d) [1/m]."""
        return math.log(2.0) / self.dispersal_m

    @property
    def cutoff_m(self) -> float:
        """Distance at which a direct link's probability reaches :data:`P_MIN` [m]."""
        return -math.log(P_MIN) / self.decay_per_m


def network_options(table: Mapping[str, Any] | None = None) -> NetworkOptions:
    """:class:`NetworkOptions` from a checked ``[ecology.network]`` table (see
    :func:`gis.config.parse_runfile`); a partial ``resistance`` table is merged over
    :data:`DEFAULT_RESISTANCE`.

    Examples
    --------
    >>> o = network_options({"dispersal_m": 1000, "resistance": {"cropland": 20}})
    >>> o.dispersal_m, o.resistance["cropland"], o.resistance["construction"], o.habitat
    (1000.0, 20.0, 100.0, ('forest', 'water'))
    """
    table = dict(table or {})
    kw: dict[str, Any] = {}
    for key in ("enabled", "rank_by"):
        if key in table:
            kw[key] = table[key]
    for key in ("min_patch_ha", "dispersal_m", "resolution_m", "corridor_max_m"):
        if key in table:
            kw[key] = float(table[key])
    for key in ("max_cells", "max_candidates", "top_candidates"):
        if key in table:
            kw[key] = int(table[key])
    if "habitat" in table:
        kw["habitat"] = tuple(dict.fromkeys(str(h) for h in table["habitat"]))
    res = dict(DEFAULT_RESISTANCE)
    res.update({str(k): float(v) for k, v in (table.get("resistance") or {}).items()})
    kw["resistance"] = res
    return NetworkOptions(**kw)


# ---------------------------------------------------------------------------------------------
# Habitat and patches
# ---------------------------------------------------------------------------------------------
def habitat_class(classified: pd.DataFrame, habitat: tuple[str, ...] = ("forest", "water")
                  ) -> pd.Series:
    """The habitat class of every parcel (``forest``, ``water``, ``green``) or ``<NA>``.

    Parameters
    ----------
    classified : DataFrame
        Output of :func:`gis.landuse.classify_layer` (flags ``forest``, ``blue``, ``green``,
        ``cropland``).
    habitat : tuple of str
        The classes counted as habitat (:data:`gis.config.NETWORK_HABITATS`).

    Returns
    -------
    pandas.Series of string
        Aligned to ``classified``.  Forest wins over water (mangrove, forest swamp); green is
        green land that is neither forest nor cropland (parks, grass, other forest land).

    Examples
    --------
    >>> import pandas as pd
    >>> flags = pd.DataFrame({"forest": [True, False, False, False],
    ...                       "blue": [False, True, False, False],
    ...                       "green": [True, False, True, False],
    ...                       "cropland": [False, False, False, True]})
    >>> habitat_class(flags).tolist()
    ['forest', 'water', <NA>, <NA>]
    >>> habitat_class(flags, ("forest", "water", "green")).tolist()
    ['forest', 'water', 'green', <NA>]
    """
    forest = classified["forest"].to_numpy(bool)
    water = classified["blue"].to_numpy(bool) & ~forest
    green = (classified["green"].to_numpy(bool) & ~forest & ~water
             & ~classified["cropland"].to_numpy(bool))
    cls = np.select([forest & ("forest" in habitat), water & ("water" in habitat),
                     green & ("green" in habitat)], ["forest", "water", "green"], default="")
    out = pd.Series(cls, index=classified.index, dtype="string")
    return out.mask(out == "")


def find_patches(classified: gpd.GeoDataFrame, units: gpd.GeoDataFrame, *,
                 options: NetworkOptions | None = None) -> gpd.GeoDataFrame:
    """Habitat patches of every unit: touching habitat parcels dissolved, clipped to the unit.

    Parameters
    ----------
    classified : GeoDataFrame
        Output of :func:`gis.landuse.classify_layer`, metric CRS.
    units : GeoDataFrame
        ``zone, level, kind`` polygons (:func:`gis.ecology.accounting_units`).
    options : NetworkOptions, optional

    Returns
    -------
    GeoDataFrame
        ``unit`` (row position in ``units``), ``zone``, ``level``, ``kind``, ``patch_id`` (1 =
        largest, per unit), ``area_ha``, ``classes`` (habitat classes in the patch, ``;``
        joined), ``edge_m`` (edge inside the unit [m]) and the patch geometry; patches below
        ``min_patch_ha`` left out.

    Examples
    --------
    Two forests touching at a corner are one patch; a pond 50 m away is another:

    >>> import geopandas as gpd, shapely
    >>> from gis.landuse import classify_layer
    >>> from gis.ecology import accounting_units
    >>> zones = gpd.GeoDataFrame({"name": ["z"], "level": ["barrier"]},
    ...                          geometry=[shapely.box(0, 0, 1000, 1000)], crs="EPSG:4548")
    >>> parcels = gpd.GeoDataFrame({"id": ["a", "b", "c"], "code": ["0301", "0301", "1104"]},
    ...     geometry=[shapely.box(0, 0, 100, 100), shapely.box(100, 100, 200, 200),
    ...               shapely.box(250, 0, 350, 100)], crs="EPSG:4548")
    >>> p = find_patches(classify_layer(parcels, "gbt21010"), accounting_units(zones)[:1])
    >>> p[["patch_id", "area_ha", "classes", "edge_m"]].round(3)
       patch_id  area_ha classes  edge_m
    0         1      2.0  forest   600.0
    1         2      1.0   water   300.0
    """
    options = options or NetworkOptions()
    crs = classified.crs
    cls = habitat_class(classified, options.habitat)
    hab = cls.notna().to_numpy()
    geoms = classified.geometry.to_numpy()[hab]
    labels = cls.to_numpy()[hab].astype(object)
    ugeom = units.geometry.to_numpy()
    empty = gpd.GeoDataFrame({c: pd.Series(dtype=object) for c in
                              ["unit", "zone", "level", "kind", "patch_id", "area_ha",
                               "classes", "edge_m", "geometry"]}, geometry="geometry", crs=crs)
    if not len(geoms) or not len(ugeom):
        return empty
    from gis.ecology import _clip_pairs

    fi, ui, _, clipped = _clip_pairs(geoms, ugeom)
    parts, src = shapely.get_parts(clipped, return_index=True)
    keep = (shapely.get_type_id(parts) == 3) & (shapely.area(parts) > 0)
    parts, unit, label = parts[keep], ui[src[keep]], labels[fi[src[keep]]]
    if not len(parts):
        return empty
    comp = _touching_components(parts, unit)
    frame = gpd.GeoDataFrame({"comp": comp, "unit": unit, "label": label}, geometry=parts,
                             crs=crs)
    labels_of = frame[["comp", "label"]].drop_duplicates().sort_values(["comp", "label"])
    classes = labels_of.groupby("comp")["label"].agg(";".join)
    merged = _dissolve(parts, comp, unit, crs)
    merged["classes"] = classes.reindex(merged.index).to_numpy()
    merged["area_ha"] = merged.geometry.area / 1e4
    merged = merged[merged["area_ha"] >= options.min_patch_ha].reset_index(drop=True)
    merged["edge_m"] = _edge_inside(merged.geometry.to_numpy(),
                                    ugeom[merged["unit"].to_numpy(int)])
    merged = merged.sort_values(["unit", "area_ha"], ascending=[True, False], kind="stable")
    merged["patch_id"] = merged.groupby("unit").cumcount().to_numpy() + 1
    u = merged["unit"].to_numpy(int)
    out = gpd.GeoDataFrame({
        "unit": u, "zone": units["zone"].to_numpy()[u], "level": units["level"].to_numpy()[u],
        "kind": units["kind"].to_numpy()[u], "patch_id": merged["patch_id"].to_numpy(),
        "area_ha": merged["area_ha"].to_numpy(), "classes": merged["classes"].to_numpy(),
        "edge_m": merged["edge_m"].to_numpy()}, geometry=merged.geometry.to_numpy(), crs=crs)
    return out.reset_index(drop=True)


def _dissolve(parts: np.ndarray, comp: np.ndarray, unit: np.ndarray, crs) -> gpd.GeoDataFrame:
    """Union of the parts of every component (0, 1, … in order) and its unit.

    What ``GeoDataFrame.dissolve("comp", aggfunc="first")`` gives, through
    :func:`gis._geom.union_by_group`.
    """
    first = np.unique(comp, return_index=True)[1]  # each component's first part
    return gpd.GeoDataFrame({"unit": unit[first]}, geometry=union_by_group(parts, comp),
                            crs=crs)


def _touching_components(parts: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Component label of every polygon: polygons of one group that touch are one component."""
    # boxes grown by TOUCH_M give the candidate pairs; only pairs of one group (the level
    # unions overlap their zones) and each pair once are measured: the tree's own ``dwithin``
    # query measured every overlapping pair of every group, both ways (ten times slower)
    x0, y0, x1, y1 = shapely.bounds(parts).T
    a, b = shapely.STRtree(parts).query(
        shapely.box(x0 - TOUCH_M, y0 - TOUCH_M, x1 + TOUCH_M, y1 + TOUCH_M))
    keep = (a < b) & (group[a] == group[b])
    a, b = a[keep], b[keep]
    near = shapely.dwithin(parts[a], parts[b], TOUCH_M)
    a, b = a[near], b[near]
    n = len(parts)
    graph = sparse.coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    return csgraph.connected_components(graph, directed=False)[1]


def _edge_inside(patches: np.ndarray, units: np.ndarray) -> np.ndarray:
    """Length of each patch's boundary that is not on its unit's boundary [m]."""
    if not len(patches):
        return np.zeros(0)
    rings = shapely.boundary(patches)
    length = shapely.length(rings)
    codes, uniq = pd.factorize(pd.Series(shapely.to_wkb(units)))
    first = np.unique(codes, return_index=True)[1]
    rim = shapely.boundary(units[first])
    on_rim = shapely.intersects(rings, rim[codes])
    if on_rim.any():
        # only patches that reach their unit's boundary lose that part of their perimeter
        need = np.unique(codes[on_rim])
        band = np.empty(len(first), dtype=object)
        band[need] = shapely.buffer(rim[need], 1e-6, quad_segs=1, cap_style="flat")
        length[on_rim] = shapely.length(shapely.difference(rings[on_rim], band[codes[on_rim]]))
    return length


# ---------------------------------------------------------------------------------------------
# Connectivity
# ---------------------------------------------------------------------------------------------
@dataclass
class Network:
    """The patch graph of one unit and its connectivity.

    ``area`` [ha] per patch, ``dist`` the shortest-path matrix in units of k·d (∞ = below
    :data:`P_MIN`), ``pstar`` = exp(−dist), ``num`` = ΣΣ a_i a_j p*_ij [ha²], ``area_l_ha``
    the zone area; ``graph`` the sparse link matrix (weights k·d).
    """

    area: np.ndarray
    dist: np.ndarray
    pstar: np.ndarray
    num: float
    area_l_ha: float
    graph: sparse.csr_matrix

    @property
    def pc(self) -> float:
        """Probability of connectivity (0–1)."""
        return self.num / self.area_l_ha ** 2 if self.area_l_ha > 0 else float("nan")

    @property
    def eca_ha(self) -> float:
        """Equivalent connected area [ha]."""
        return math.sqrt(self.num)



@njit(cache=True)
def _heap_push(hv: np.ndarray, hn: np.ndarray, size: int, val: float, node: int) -> int:
    """Push (val, node) on the binary min-heap ``hv``/``hn`` of ``size`` entries."""
    i = size
    hv[i] = val
    hn[i] = node
    while i > 0:
        up = (i - 1) // 2
        if hv[up] <= hv[i]:
            break
        hv[up], hv[i] = hv[i], hv[up]
        hn[up], hn[i] = hn[i], hn[up]
        i = up
    return size + 1


@njit(cache=True)
def _heap_pop(hv: np.ndarray, hn: np.ndarray, size: int) -> int:
    """Remove the smallest entry (read it at index 0 first); returns the new size."""
    size -= 1
    hv[0] = hv[size]
    hn[0] = hn[size]
    i = 0
    while True:
        lo = 2 * i + 1
        if lo >= size:
            break
        if lo + 1 < size and hv[lo + 1] < hv[lo]:
            lo += 1
        if hv[i] <= hv[lo]:
            break
        hv[lo], hv[i] = hv[i], hv[lo]
        hn[lo], hn[i] = hn[i], hn[lo]
        i = lo
    return size


@njit(cache=True)
def _rows_without(indptr: np.ndarray, indices: np.ndarray, weights: np.ndarray,
                  dist: np.ndarray, sources: np.ndarray, through: np.ndarray, limit: float
                  ) -> np.ndarray:
    """Shortest-path lengths from ``sources`` over the graph without a node, for the targets
    ``through[r]`` whose best path ran through it (other entries: ``dist`` unchanged).

    A target not flagged keeps its length: its best path avoided the node, and the graph lost
    no edge of it.  So a search from a source needs only the flagged targets: each starts at
    the best of its unflagged neighbours (length + edge), and a Dijkstra among the flagged
    finishes.  The lengths are those of ``scipy.sparse.csgraph.dijkstra`` from the source,
    bit for bit: with positive weights (each larger than the rounding of the sums) a node's
    length is the smallest rounded ``length(u) + w(u, v)`` over its neighbours, a fixed point
    (the smallest left-to-right rounded sum over the paths) that does not depend on the order
    nodes leave the heap.
    """
    n = dist.shape[1]
    out = np.empty((len(sources), n))
    done = np.zeros(n, np.bool_)
    hv = np.empty(len(indices) + n + 1)
    hn = np.empty(len(indices) + n + 1, np.int64)
    for r in range(len(sources)):
        s = sources[r]
        row = out[r]
        for j in range(n):  # element by element: a slice copy compiles numba's broadcasting (≈ 3 s)
            row[j] = dist[s, j]
        flag = through[r]
        size = 0
        for j in range(n):
            if not flag[j]:
                continue
            done[j] = False
            best = np.inf
            for e in range(indptr[j], indptr[j + 1]):
                m = indices[e]
                if flag[m]:
                    continue
                alt = dist[s, m] + weights[e]
                if alt <= limit and alt < best:
                    best = alt
            row[j] = best
            if best < np.inf:
                size = _heap_push(hv, hn, size, best, j)
        while size > 0:
            val, u = hv[0], hn[0]
            size = _heap_pop(hv, hn, size)
            if done[u]:
                continue
            done[u] = True
            for e in range(indptr[u], indptr[u + 1]):
                v = indices[e]
                if not flag[v] or done[v]:
                    continue
                alt = val + weights[e]
                if alt <= limit and alt < row[v]:
                    row[v] = alt
                    size = _heap_push(hv, hn, size, alt, v)
    return out


@njit(cache=True)
def _through(dist: np.ndarray, k: int, near: np.ndarray) -> np.ndarray:
    """Pairs of ``near`` (i ≠ j) whose shortest path runs through ``k`` (to a relative
    1e-9): ``dist[i, k] + dist[k, j] <= dist[i, j]``, without the n × n temporaries."""
    m = len(near)
    out = np.zeros((m, m), np.bool_)
    for r in range(m):
        dk = dist[near[r], k]
        for c in range(m):
            if c == r:
                continue
            via = dk + dist[k, near[c]]
            if np.isfinite(via) and via <= dist[near[r], near[c]] * (1 + 1e-9) + 1e-12:
                out[r, c] = True
    return out


def patch_links(geoms: np.ndarray, *, max_m: float, group: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs ``i < j`` of polygons within ``max_m`` (of one ``group`` when given) and their
    edge-to-edge distances [m]."""
    if len(geoms) < 2:
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0)
    # boxes grown by max_m find the candidate pairs; one exact distance per pair then decides
    x0, y0, x1, y1 = shapely.bounds(geoms).T
    grown = shapely.box(x0 - max_m, y0 - max_m, x1 + max_m, y1 + max_m)
    i, j = shapely.STRtree(geoms).query(grown)
    keep = i < j
    if group is not None:
        keep &= group[i] == group[j]
    i, j = i[keep], j[keep]
    # a zone's patches are often its level's too (the same geometry in two units): each pair
    # of distinct geometries is measured once
    same, _ = pd.factorize(pd.Series(shapely.to_wkb(geoms)))
    pair, back = np.unique(same[i].astype(np.int64) * len(geoms) + same[j], return_inverse=True)
    first = np.full(len(pair), len(i))
    np.minimum.at(first, back, np.arange(len(i)))
    d = shapely.distance(geoms[i[first]], geoms[j[first]])[back]
    near = d <= max_m
    return i[near], j[near], d[near]


def connectivity(area_ha: np.ndarray, i: np.ndarray, j: np.ndarray, dist_m: np.ndarray, *,
                 area_l_ha: float, options: NetworkOptions | None = None) -> Network:
    """PC and ECA of a patch graph (Saura & Pascual-Hortal 2007).

    Parameters
    ----------
    area_ha : ndarray
        Patch areas [ha].
    i, j, dist_m : ndarray
        Links: patch indices and edge-to-edge distances [m] (from :func:`patch_links`).
    area_l_ha : float
        Landscape (zone) area A_L [ha].
    options : NetworkOptions, optional
        ``dispersal_m`` sets the kernel.

    Returns
    -------
    Network

    Examples
    --------
    Two 10 ha patches 500 m apart (p = 0.5) in a 100 ha zone: PC = (100 + 100 + 2 × 100 × 0.5)
    ÷ 100² = 0.03, ECA = √300 ha.

    >>> net = connectivity(np.array([10.0, 10.0]), np.array([0]), np.array([1]),
    ...                    np.array([500.0]), area_l_ha=100.0)
    >>> round(net.pc, 6), round(net.eca_ha, 3)
    (0.03, 17.321)
    """
    options = options or NetworkOptions()
    n = len(area_ha)
    k = options.decay_per_m
    w = np.maximum(np.asarray(dist_m, float) * k, 1e-12)  # csgraph reads 0 as "no link"
    keep = w <= -math.log(P_MIN)
    graph = sparse.coo_matrix((w[keep], (i[keep], j[keep])), shape=(n, n)).tocsr()
    graph = graph.maximum(graph.T).tocsr()
    if n:
        # the matrix is symmetric: searched as directed, the same distances, and scipy's
        # undirected mode (which pairs every row with its column) costs ten times more
        dist = csgraph.dijkstra(graph, directed=True, limit=-math.log(P_MIN))
    else:
        dist = np.zeros((0, 0))
    pstar = np.exp(-dist)
    a = np.asarray(area_ha, float)
    return Network(area=a, dist=dist, pstar=pstar, num=float(a @ pstar @ a),
                   area_l_ha=float(area_l_ha), graph=graph)


def dpc(net: Network) -> np.ndarray:
    """Importance of every patch: dPC_k = 100 (PC − PC_without_k) ÷ PC [%].

    Removing k takes its area out, and its role as a stepping stone: pairs whose best path ran
    through k (found from the distance matrix) get new shortest paths, computed only from the
    sources concerned.

    Examples
    --------
    Three 10 ha patches in a row, 500 m apart: the middle one is the connector.

    >>> net = connectivity(np.array([10.0, 10.0, 10.0]), np.array([0, 1]), np.array([1, 2]),
    ...                    np.array([500.0, 500.0]), area_l_ha=100.0)
    >>> dpc(net).round(2).tolist()
    [45.45, 63.64, 45.45]
    """
    n = len(net.area)
    a, d, p = net.area, net.dist, net.pstar
    out = np.zeros(n)
    if n == 0 or net.num <= 0:
        return out
    row = p @ a
    limit = -math.log(P_MIN)
    # Shortest paths without k use only edges that are shortest paths themselves ("tight") or
    # whose every shorter path ran through k: a longer edge on a new shortest path could be
    # replaced by a shorter path avoiding k.
    coo = sparse.triu(net.graph, k=1).tocoo()
    ei, ej, ew = coo.row, coo.col, coo.data
    tight = ew <= d[ei, ej] * (1 + 1e-9) + 1e-12
    pos = np.full(n, -1)
    for k in range(n):  # one pass per patch (not per parcel): the body is vectorised
        num_k = net.num - 2 * a[k] * row[k] + a[k] ** 2
        near = np.flatnonzero(np.isfinite(d[:, k]) & (np.arange(n) != k))
        if len(near) > 1:
            through = _through(d, k, near)
            if through.any():
                rows = np.flatnonzero(through.any(axis=1))
                src = near[rows]
                pos[:] = -1
                pos[near] = np.arange(len(near))
                inside = (pos[ei] >= 0) & (pos[ej] >= 0)
                flagged = np.zeros(len(ei), bool)
                flagged[inside] = through[pos[ei[inside]], pos[ej[inside]]]
                use = (tight | flagged) & (ei != k) & (ej != k)
                # both directions of every edge, searched as directed (see connectivity)
                wu, iu, ju = ew[use], ei[use], ej[use]
                g_k = sparse.coo_matrix((np.r_[wu, wu], (np.r_[iu, ju], np.r_[ju, iu])),
                                        shape=(n, n)).tocsr()
                t = through[rows]
                flag = np.zeros((len(src), n), bool)
                flag[:, near] = t
                d_new = _rows_without(g_k.indptr.astype(np.int64), g_k.indices.astype(np.int64),
                                      g_k.data, d, src.astype(np.int64), flag, limit)
                p_new = np.exp(-d_new[:, near])
                delta = (a[src][:, None] * a[near][None, :]
                         * (p_new - p[np.ix_(src, near)]) * t).sum()
                num_k += delta
        out[k] = 100.0 * (net.num - num_k) / net.num
    return out


def _with_node(pstar: np.ndarray, links: np.ndarray) -> np.ndarray:
    """p*_c· of a new node linked directly with probabilities ``links`` (0 = no link)."""
    nb = np.flatnonzero(links > 0)
    if not len(nb):
        return np.zeros(pstar.shape[0])
    return (links[nb, None] * pstar[nb]).max(axis=0)


def _num_with_node(net_p: np.ndarray, a: np.ndarray, pc_vec: np.ndarray, a_c: float,
                   num: float) -> float:
    """ΣΣ a_i a_j p*_ij after adding a node of area ``a_c`` whose p* row is ``pc_vec``."""
    r = np.flatnonzero(pc_vec > P_MIN * P_MIN)
    if not len(r):
        return num + a_c ** 2
    sub = net_p[np.ix_(r, r)]
    better = np.maximum(np.outer(pc_vec[r], pc_vec[r]) - sub, 0.0)
    return float(num + a[r] @ better @ a[r] + 2 * a_c * (pc_vec[r] @ a[r]) + a_c ** 2)


# ---------------------------------------------------------------------------------------------
# Metrics per unit
# ---------------------------------------------------------------------------------------------
def unit_networks(patches: gpd.GeoDataFrame, units: gpd.GeoDataFrame, *,
                  options: NetworkOptions | None = None) -> dict[int, Network]:
    """The :class:`Network` of every unit (by row position in ``units``)."""
    options = options or NetworkOptions()
    geoms = patches.geometry.to_numpy()
    unit = patches["unit"].to_numpy(int) if len(patches) else np.zeros(0, int)
    i, j, d = patch_links(geoms, max_m=options.cutoff_m, group=unit)
    area_l = units.geometry.area.to_numpy() / 1e4
    out = {}
    for u in range(len(units)):  # one graph per zone or level
        idx = np.flatnonzero(unit == u)
        local = np.full(len(geoms), -1)
        local[idx] = np.arange(len(idx))
        sel = (local[i] >= 0) if len(i) else np.zeros(0, bool)
        out[u] = connectivity(patches["area_ha"].to_numpy(float)[idx], local[i[sel]],
                              local[j[sel]], d[sel], area_l_ha=float(area_l[u]), options=options)
    return out


def landscape_metrics(patches: gpd.GeoDataFrame, units: gpd.GeoDataFrame,
                      networks: Mapping[int, Network]) -> pd.DataFrame:
    """``connectivity.csv``: FRAGSTATS class metrics of the habitat, PC and ECA per unit.

    Returns
    -------
    DataFrame
        :data:`CONNECTIVITY_COLUMNS`: ``zone, level, kind`` as in ``zones.csv``, ``area_ha``
        (zone), ``n_patches``, ``habitat_ha`` (in patches), ``largest_patch_index`` [% of zone
        area], ``mean_patch_area_ha``, ``edge_density_m_ha`` [m/ha], ``pc`` (0–1), ``eca_ha``.
    """
    area = units.geometry.area.to_numpy() / 1e4
    unit = patches["unit"].to_numpy(int)
    by = pd.DataFrame({"unit": unit, "a": patches["area_ha"].to_numpy(float),
                       "e": patches["edge_m"].to_numpy(float)}).groupby("unit")
    agg = by.agg(n=("a", "size"), total=("a", "sum"), largest=("a", "max"),
                 mean=("a", "mean"), edge=("e", "sum")).reindex(range(len(units)))
    n = agg["n"].fillna(0).astype(int).to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        out = pd.DataFrame({
            "zone": units["zone"].to_numpy(), "level": units["level"].to_numpy(),
            "kind": units["kind"].to_numpy(), "area_ha": area, "n_patches": n,
            "habitat_ha": agg["total"].fillna(0).to_numpy(),
            "largest_patch_index": agg["largest"].fillna(0).to_numpy() / area * 100,
            "mean_patch_area_ha": agg["mean"].to_numpy(),
            "edge_density_m_ha": agg["edge"].fillna(0).to_numpy() / area,
            "pc": [networks[u].pc for u in range(len(units))],
            "eca_ha": [networks[u].eca_ha for u in range(len(units))],
        })
    return out[CONNECTIVITY_COLUMNS]


# ---------------------------------------------------------------------------------------------
# Corridors
# ---------------------------------------------------------------------------------------------
def resistance_raster(classified: gpd.GeoDataFrame, bounds: tuple[float, float, float, float],
                      *, options: NetworkOptions | None = None
                      ) -> tuple[np.ndarray, Any, float]:
    """The resistance surface over ``bounds``: (array, affine transform, cell size [m]).

    Cells take the resistance of the land-use ``group`` at their centre (``other`` outside every
    parcel); the cell is ``resolution_m``, coarsened so that the raster holds at most
    ``max_cells`` cells.
    """
    from rasterio import features
    from rasterio.transform import from_origin

    options = options or NetworkOptions()
    x0, y0, x1, y1 = bounds
    res = float(options.resolution_m)
    cells = (x1 - x0) * (y1 - y0) / res ** 2
    if cells > options.max_cells:
        res = math.ceil(math.sqrt((x1 - x0) * (y1 - y0) / options.max_cells))
    width, height = max(1, math.ceil((x1 - x0) / res)), max(1, math.ceil((y1 - y0) / res))
    transform = from_origin(x0, y1, res, res)
    table = {**DEFAULT_RESISTANCE, **options.resistance}
    group = classified["group"].astype("string").fillna("other")
    value = group.map(table).fillna(table["other"]).to_numpy(float)
    geoms = classified.geometry.to_numpy()
    box = shapely.box(*bounds)
    sel = shapely.intersects(geoms, box)
    # vertices closer than a quarter cell change no cell centre's side much, and rasterio reads
    # every vertex through Python
    shapes, owner = _polygon_dicts(shapely.simplify(geoms[sel], res / 4))
    out = features.rasterize(zip(shapes, value[sel][owner], strict=True), out_shape=(height, width),
                             transform=transform, fill=table["other"], dtype="float64")
    return out, transform, res


def _polygon_dicts(geoms: np.ndarray) -> tuple[list[dict], np.ndarray]:
    """GeoJSON-like polygons for ``rasterio.features.rasterize``, one per polygon part in order,
    and the index of the geometry each came from.

    rasterio splits multipolygons into such parts itself and skips empty shapes; shapely's
    ``__geo_interface__`` would build every vertex as a Python tuple through a geometry object,
    here the coordinates are listed once for all geometries and sliced per ring.
    """
    parts, owner = shapely.get_parts(geoms, return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    ends = np.cumsum(shapely.get_num_coordinates(rings))
    xy = shapely.get_coordinates(rings).tolist()
    coords = [xy[a:b] for a, b in zip(np.r_[0, ends[:-1]].tolist(), ends.tolist(), strict=True)]
    first = np.searchsorted(ring_part, np.arange(len(parts) + 1)).tolist()
    has_rings = np.diff(first) > 0
    shapes = [{"type": "Polygon", "coordinates": coords[a:b]}
              for a, b, ok in zip(first[:-1], first[1:], has_rings.tolist(), strict=True) if ok]
    return shapes, owner[has_rings]


def least_cost_corridors(classified: gpd.GeoDataFrame, patches: gpd.GeoDataFrame, *,
                         options: NetworkOptions | None = None,
                         within: shapely.Geometry | None = None
                         ) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, dict]:
    """Least-cost corridors between neighbouring patches and the parcels they cross.

    Parameters
    ----------
    classified : GeoDataFrame
        Output of :func:`gis.landuse.classify_layer` (``group``, ``id``, ``code``).
    patches : GeoDataFrame
        The patches of one unit (:func:`find_patches`), with ``patch_id``.
    options : NetworkOptions, optional
    within : shapely geometry, optional
        The unit the corridors must stay in (cells whose centre is outside are impassable).

    Returns
    -------
    (GeoDataFrame, GeoDataFrame, dict)
        Corridors (:data:`CORRIDOR_COLUMNS`: ``cost`` is the accumulated resistance × metres
        between the patch edges, ``length_m`` the path length, ``distance_m`` the straight
        edge-to-edge gap, ``gap_m`` the length over non-habitat parcels, ``gap_parcels`` their
        ids), the gap parcels (:data:`GAP_COLUMNS`, one row per corridor and parcel, with the
        crossed length [m]) and a record of the raster used (cell size, shape).
    """
    options = options or NetworkOptions()
    crs = classified.crs
    empty = (gpd.GeoDataFrame({c: pd.Series(dtype=object) for c in CORRIDOR_COLUMNS},
                              geometry="geometry", crs=crs),
             gpd.GeoDataFrame({c: pd.Series(dtype=object) for c in GAP_COLUMNS},
                              geometry="geometry", crs=crs))
    if len(patches) < 2:
        return *empty, {"corridors": 0}
    pgeom = patches.geometry.to_numpy()
    x0, y0, x1, y1 = shapely.total_bounds(pgeom)
    pad = min(options.corridor_max_m, options.cutoff_m) / 2
    bounds = (x0 - pad, y0 - pad, x1 + pad, y1 + pad)
    cost, transform, res = resistance_raster(classified, bounds, options=options)
    if within is not None:
        from rasterio import features

        outside = features.geometry_mask([within], out_shape=cost.shape, transform=transform)
        cost[outside] = np.inf
    label = _patch_cells(pgeom, cost.shape, transform)
    starts = np.argwhere(_rim_cells(label))
    cum, trace = _cost_distance(np.ascontiguousarray(cost, dtype=np.float64),
                                starts.astype(np.int64))
    alloc = _allocation(label, trace, _OFFSETS)
    pairs = _saddles(cum, cost, alloc)
    record = {"resolution_m": res, "shape": list(cost.shape),
              "patches_without_cells": int(len(pgeom) - len(np.unique(label[label > 0])))}
    if pairs.empty:
        return *empty, {**record, "corridors": 0}
    a, b = pairs["la"].to_numpy() - 1, pairs["lb"].to_numpy() - 1
    gap = shapely.distance(pgeom[a], pgeom[b])
    keep = gap <= options.corridor_max_m
    pairs, a, b, gap = pairs[keep], a[keep], b[keep], gap[keep]
    if pairs.empty:
        return *empty, {**record, "corridors": 0}
    lines = _trace_lines(trace, pairs, transform)
    ids = np.arange(1, len(pairs) + 1)
    pid = patches["patch_id"].to_numpy()
    corr = gpd.GeoDataFrame({
        "corridor_id": ids, "from_patch": pid[a], "to_patch": pid[b], "distance_m": gap,
        "length_m": shapely.length(lines), "cost": pairs["cost"].to_numpy() * res,
    }, geometry=lines, crs=crs)
    gaps = _gap_parcels(classified, corr, options)
    summary = gaps.groupby("corridor_id").agg(gap_m=("crossed_m", "sum"),
                                              n_gap_parcels=("id", "size"))
    summary["gap_parcels"] = _joined(gaps["corridor_id"].to_numpy(),
                                     gaps["id"].astype(str).to_numpy(), summary.index.to_numpy())
    corr = corr.join(summary, on="corridor_id")
    corr["gap_m"] = corr["gap_m"].fillna(0.0)
    corr["n_gap_parcels"] = corr["n_gap_parcels"].fillna(0).astype(int)
    corr["gap_parcels"] = corr["gap_parcels"].fillna("")
    return corr[CORRIDOR_COLUMNS], gaps[GAP_COLUMNS], {**record, "corridors": int(len(corr))}


def _joined(key: np.ndarray, text: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """``";".join`` of the ``text`` of each of ``keys`` (sorted), in the rows' order: what
    ``groupby(key).agg(lambda s: ";".join(s))`` gives, without a Python call per group."""
    order = np.argsort(key, kind="stable")
    k, t = key[order], text[order]
    bounds = np.searchsorted(k, keys, side="left").tolist() + [len(k)]
    t = t.tolist()
    return np.array([";".join(t[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)],
                    dtype=object)


#: the eight moves of the cost-distance run, in scikit-image's order (``make_offsets(2, True)``:
#: row-major over the 3 × 3 window); ``trace`` values index this table
_OFFSETS = np.array([(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)],
                    dtype=np.int8)


@njit(cache=True)
def _leftmost_min(vals: np.ndarray, i: int) -> None:
    """Refresh the minima on the path from leaf node ``i`` to the root of the tree ``vals``."""
    while i > 0:
        i = (i - 1) // 2
        a, b = vals[2 * i + 1], vals[2 * i + 2]
        low = a if a < b else b
        if vals[i] == low:  # nothing above changes either
            break
        vals[i] = low


@njit(cache=True)
def _cost_distance(cost: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Accumulated cost from the nearest start and the move that reached each cell.

    The cost-distance run of scikit-image's ``MCP_Geometric(cost, fully_connected=True)
    .find_costs(starts)``, step for step, so that its outputs are the same bit for bit: a step
    to one of the 8 neighbours costs length × (cost here + cost there) / 2; cells with an
    infinite or negative cost are never entered; starts cost 0.  The queue is the same
    tournament tree (``skimage.graph.heap.FastUpdateBinaryHeap``): values in insertion slots,
    a popped slot refilled by the last, ties going to the leftmost slot, a queued cell updated
    in place only by a strictly lower value — so equal costs are settled, and their moves
    recorded, in the same order.

    Returns
    -------
    (ndarray, ndarray)
        Accumulated cost (``inf`` where unreached) and the index into :data:`_OFFSETS` of the
        move into each cell (``-1`` at starts, ``-2`` where unreached), as ``find_costs``.
    """
    h, w = cost.shape
    size = h * w
    cum = np.full((h, w), np.inf)
    trace = np.full((h, w), -2, np.int16)
    lengths = np.array([math.sqrt(2.0), 1.0, math.sqrt(2.0), 1.0, 1.0, math.sqrt(2.0), 1.0,
                        math.sqrt(2.0)])
    cap = 128
    while cap < len(starts):
        cap *= 2
    vals = np.full(2 * cap - 1, np.inf)
    refs = np.empty(cap, np.int64)
    slot = np.full(size, -1, np.int64)
    count = 0
    for s in range(len(starts)):
        r, c = starts[s, 0], starts[s, 1]
        ref = r * w + c
        trace[r, c] = -1
        if slot[ref] != -1:
            vals[cap - 1 + slot[ref]] = 0.0
            _leftmost_min(vals, cap - 1 + slot[ref])
            continue
        vals[cap - 1 + count] = 0.0
        refs[count] = ref
        slot[ref] = count
        count += 1
        _leftmost_min(vals, cap - 2 + count)
    for _ in range(size):
        if count == 0:
            break
        i = 0
        while i < cap - 1:  # down to the leftmost smallest leaf
            i = 2 * i + 1 if vals[2 * i + 1] <= vals[2 * i + 2] else 2 * i + 2
        k = i - (cap - 1)
        here = vals[i]
        ref = refs[k]
        last = count - 1
        slot[refs[last]] = k
        slot[ref] = -1
        vals[i] = vals[cap - 1 + last]
        refs[k] = refs[last]
        vals[cap - 1 + last] = np.inf
        count -= 1
        _leftmost_min(vals, i)
        _leftmost_min(vals, cap - 1 + last)
        r, c = ref // w, ref - (ref // w) * w
        cum[r, c] = here
        for m in range(8):
            rr, cc = r + _OFFSETS[m, 0], c + _OFFSETS[m, 1]
            if rr < 0 or rr >= h or cc < 0 or cc >= w:
                continue
            if cum[rr, cc] != np.inf:
                continue
            new_cost = cost[rr, cc]
            if new_cost < 0 or new_cost == np.inf:
                continue
            total = here + lengths[m] * 0.5 * (cost[r, c] + new_cost)
            if total == np.inf:
                continue
            nref = rr * w + cc
            at = slot[nref]
            if at != -1:
                if vals[cap - 1 + at] > total:
                    vals[cap - 1 + at] = total
                    _leftmost_min(vals, cap - 1 + at)
                    trace[rr, cc] = m
                continue
            if count == cap:  # a larger tree, the slots kept
                grown = np.full(4 * cap - 1, np.inf)
                for j in range(cap):  # a loop: a slice copy compiles numba's broadcasting
                    grown[2 * cap - 1 + j] = vals[cap - 1 + j]
                for j in range(2 * cap - 2, -1, -1):
                    a, b = grown[2 * j + 1], grown[2 * j + 2]
                    grown[j] = a if a < b else b
                vals = grown
                refs = np.concatenate((refs, np.empty(cap, np.int64)))
                cap *= 2
            vals[cap - 1 + count] = total
            refs[count] = nref
            slot[nref] = count
            count += 1
            _leftmost_min(vals, cap - 2 + count)
            trace[rr, cc] = m
    return cum, trace


@njit(cache=True)
def _trace_cells(trace: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The cells from each end back to its start along ``trace`` (end first), concatenated,
    and the number of cells of each path."""
    total = 0
    counts = np.zeros(len(ends), np.int64)
    for e in range(len(ends)):
        r, c = ends[e, 0], ends[e, 1]
        n = 1
        while trace[r, c] >= 0:
            m = trace[r, c]
            r, c = r - _OFFSETS[m, 0], c - _OFFSETS[m, 1]
            n += 1
        counts[e] = n
        total += n
    out = np.empty((total, 2), np.int64)
    k = 0
    for e in range(len(ends)):
        r, c = ends[e, 0], ends[e, 1]
        out[k, 0], out[k, 1] = r, c
        k += 1
        while trace[r, c] >= 0:
            m = trace[r, c]
            r, c = r - _OFFSETS[m, 0], c - _OFFSETS[m, 1]
            out[k, 0], out[k, 1] = r, c
            k += 1
    return out, counts


def _patch_cells(geoms: np.ndarray, shape: tuple[int, int], transform) -> np.ndarray:
    """Raster of patch numbers (1-based; 0 = no patch); a patch too small for a cell centre
    gets the cell under its representative point."""
    from rasterio import features
    from rasterio.transform import rowcol

    shapes, owner = _polygon_dicts(geoms)
    label = features.rasterize(zip(shapes, owner + 1, strict=True),
                               out_shape=shape, transform=transform, fill=0, dtype="int32")
    missing = np.setdiff1d(np.arange(1, len(geoms) + 1), np.unique(label))
    if len(missing):
        pts = shapely.point_on_surface(geoms[missing - 1])
        r, c = rowcol(transform, shapely.get_x(pts), shapely.get_y(pts))
        r, c = np.clip(np.asarray(r), 0, shape[0] - 1), np.clip(np.asarray(c), 0, shape[1] - 1)
        label[r, c] = missing
    return label


def _rim_cells(label: np.ndarray) -> np.ndarray:
    """Patch cells with a 4-neighbour outside their patch (or on the raster's edge): the only
    cells a path can leave a patch from, so the only start points the cost run needs."""
    padded = np.pad(label, 1, constant_values=-1)
    core = padded[1:-1, 1:-1]
    rim = np.zeros(label.shape, bool)
    for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        rim |= padded[1 + dr:padded.shape[0] - 1 + dr, 1 + dc:padded.shape[1] - 1 + dc] != core
    return rim & (label > 0)


def _allocation(label: np.ndarray, trace: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The patch each cell is reached from, by pointer jumping along the traceback."""
    h, w = label.shape
    flat = np.arange(h * w)
    t = trace.ravel()
    moved = t >= 0
    rows, cols = np.divmod(flat, w)
    parent = flat.copy()
    off = offsets[t[moved]]
    parent[moved] = (rows[moved] - off[:, 0]) * w + (cols[moved] - off[:, 1])
    for _ in range(64):  # log2 of the longest path
        nxt = parent[parent]
        if np.array_equal(nxt, parent):
            break
        parent = nxt
    return label.ravel()[parent].reshape(h, w)


def _saddles(cum: np.ndarray, cost: np.ndarray, alloc: np.ndarray) -> pd.DataFrame:
    """Cheapest meeting point of every pair of neighbouring allocation zones."""
    h, w = cost.shape
    frames = []
    for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
        r0, r1 = 0, h - dr
        c0, c1 = max(0, -dc), w - max(0, dc)
        la = alloc[r0:r1, c0:c1]
        lb = alloc[r0 + dr:r1 + dr, c0 + dc:c1 + dc]
        diff = (la != lb) & (la > 0) & (lb > 0)
        if not diff.any():
            continue
        rr, cc = np.nonzero(diff)
        rr, cc = rr + r0, cc + c0
        step = math.hypot(dr, dc) * (cost[rr, cc] + cost[rr + dr, cc + dc]) / 2
        total = cum[rr, cc] + cum[rr + dr, cc + dc] + step
        la_, lb_ = alloc[rr, cc], alloc[rr + dr, cc + dc]
        swap = la_ > lb_
        frames.append(pd.DataFrame({
            "la": np.where(swap, lb_, la_), "lb": np.where(swap, la_, lb_), "cost": total,
            "ra": np.where(swap, rr + dr, rr), "ca": np.where(swap, cc + dc, cc),
            "rb": np.where(swap, rr, rr + dr), "cb": np.where(swap, cc, cc + dc)}))
    if not frames:
        return pd.DataFrame(columns=["la", "lb", "cost", "ra", "ca", "rb", "cb"])
    allp = pd.concat(frames, ignore_index=True)
    allp = allp[np.isfinite(allp["cost"].to_numpy())]
    best = allp.loc[allp.groupby(["la", "lb"])["cost"].idxmin()]
    return best.sort_values(["la", "lb"], kind="stable").reset_index(drop=True)


def _trace_lines(trace: np.ndarray, pairs: pd.DataFrame, transform) -> np.ndarray:
    """Corridor lines: traceback from both cells of each meeting point to their patches."""
    ends = pairs[["ra", "ca", "rb", "cb"]].to_numpy(np.int64)
    n = len(ends)
    # paths from the a-cells (reversed: patch first) and from the b-cells (patch last)
    cells, counts = _trace_cells(trace, np.concatenate([ends[:, :2], ends[:, 2:]]))
    stops = np.cumsum(counts)
    first = stops - counts
    pos = np.arange(len(cells))
    path = np.repeat(np.arange(2 * n), counts)
    from_a = path < n
    # within an a-path, cell k from the start is cell (count - 1 - k) from the end
    order = np.where(from_a, first[path] + stops[path] - 1 - pos, pos)
    rc = cells[order].astype(float)
    corridor = np.where(from_a, path, path - n)
    # each corridor: its a-path, then its b-path
    seq = np.lexsort((~from_a, corridor))
    rc, corridor = rc[seq], corridor[seq]
    x = transform.c + (rc[:, 1] + 0.5) * transform.a
    y = transform.f + (rc[:, 0] + 0.5) * transform.e
    return shapely.linestrings(np.column_stack([x, y]), indices=corridor)


def _gap_parcels(classified: gpd.GeoDataFrame, corr: gpd.GeoDataFrame,
                 options: NetworkOptions) -> gpd.GeoDataFrame:
    """Non-habitat parcels each corridor crosses, with the crossed length [m]."""
    hab = habitat_class(classified, options.habitat).notna().to_numpy()
    sub = classified[~hab]
    geoms = sub.geometry.to_numpy()
    lines = corr.geometry.to_numpy()
    li, pi = shapely.STRtree(geoms).query(lines, predicate="intersects")
    crossed = shapely.length(shapely.intersection(lines[li], geoms[pi]))
    keep = crossed > 0
    li, pi, crossed = li[keep], pi[keep], crossed[keep]
    part = sub.iloc[pi]

    def col(name):
        if name in part.columns:
            return part[name].astype("string").to_numpy()
        return np.full(len(part), pd.NA)

    ids = col("id") if "id" in part.columns else part.index.astype(str).to_numpy()
    return gpd.GeoDataFrame({
        "corridor_id": corr["corridor_id"].to_numpy()[li], "id": ids, "code": col("code"),
        "group": col("group"), "name_zh": col("name_zh"), "crossed_m": crossed,
        "area_ha": shapely.area(geoms[pi]) / 1e4}, geometry=geoms[pi], crs=classified.crs)


# ---------------------------------------------------------------------------------------------
# Candidates
# ---------------------------------------------------------------------------------------------
def candidate_gain(candidates: gpd.GeoDataFrame, patches: gpd.GeoDataFrame, net: Network, *,
                   options: NetworkOptions | None = None) -> pd.DataFrame:
    """Connectivity gain of each candidate parcel becoming forest, within one unit.

    Parameters
    ----------
    candidates : GeoDataFrame
        Candidate parcels clipped to the unit (``area_ha_geometric`` [ha] or their own area).
    patches : GeoDataFrame
        The unit's patches, in the order of ``net``.
    net : Network
        The unit's network (:func:`connectivity`).
    options : NetworkOptions, optional

    Returns
    -------
    DataFrame
        Aligned to ``candidates``: ``connectivity_gain`` = 100 (PC after − PC before) ÷ PC
        before [%], ``bridges`` (touches two or more patches), ``touches`` (number of patches
        touched), ``evaluated`` (False beyond ``max_candidates`` or already habitat: gain 0).
    """
    options = options or NetworkOptions()
    n_c = len(candidates)
    gain = np.zeros(n_c)
    touches = np.zeros(n_c, int)
    evaluated = np.zeros(n_c, bool)
    cgeom = candidates.geometry.to_numpy()
    pgeom = patches.geometry.to_numpy()
    if n_c == 0:
        return pd.DataFrame({"connectivity_gain": gain, "bridges": touches >= 2,
                             "touches": touches, "evaluated": evaluated})
    a_c = shapely.area(cgeom) / 1e4
    if len(pgeom) == 0 or net.num <= 0:
        # no patch: PC is 0 before, and a relative gain is undefined
        return pd.DataFrame({"connectivity_gain": np.full(n_c, np.nan),
                             "bridges": np.zeros(n_c, bool), "touches": touches,
                             "evaluated": evaluated})
    # boxes grown by the cutoff find the candidate pairs, one exact distance per pair decides
    # (a ``dwithin`` query would measure every pair twice)
    cut = options.cutoff_m
    x0, y0, x1, y1 = shapely.bounds(cgeom).T
    ci, pj = shapely.STRtree(pgeom).query(shapely.box(x0 - cut, y0 - cut, x1 + cut, y1 + cut))
    d = shapely.distance(cgeom[ci], pgeom[pj])
    near = d <= cut
    ci, pj, d = ci[near], pj[near], d[near]
    touch = d <= TOUCH_M
    overlap = np.zeros(n_c, bool)
    if touch.any():
        inter = shapely.area(shapely.intersection(cgeom[ci[touch]], pgeom[pj[touch]]))
        np.logical_or.at(overlap, ci[touch][inter > 1e-6 * 1e4 * a_c[ci[touch]]], True)
        np.add.at(touches, ci[touch], 1)
    nearest = np.full(n_c, np.inf)
    np.minimum.at(nearest, ci, d)
    # a parcel that is habitat already (a water margin) changes nothing; an isolated parcel
    # below the minimum patch size would be ignored as a patch
    eligible = ~overlap & ((touches > 0) | (a_c >= options.min_patch_ha))
    order = np.argsort(nearest, kind="stable")
    order = order[eligible[order]][:options.max_candidates]
    evaluated[order] = True
    k = options.decay_per_m
    p = np.where(touch, 1.0, np.exp(-k * d))
    start = np.searchsorted(ci, np.arange(n_c + 1)) if np.all(np.diff(ci) >= 0) else None
    if start is None:
        srt = np.argsort(ci, kind="stable")
        ci, pj, p = ci[srt], pj[srt], p[srt]
        start = np.searchsorted(ci, np.arange(n_c + 1))
    n = len(pgeom)
    for c in order:  # capped; each body is vectorised over patches
        links = np.zeros(n)
        s, e = start[c], start[c + 1]
        np.maximum.at(links, pj[s:e], p[s:e])
        vec = _with_node(net.pstar, links)
        num = _num_with_node(net.pstar, net.area, vec, a_c[c], net.num)
        gain[c] = 100.0 * (num - net.num) / net.num
    return pd.DataFrame({"connectivity_gain": gain, "bridges": touches >= 2,
                         "touches": touches, "evaluated": evaluated})


def combined_gain(candidates: gpd.GeoDataFrame, patches: gpd.GeoDataFrame, net: Network, *,
                  options: NetworkOptions | None = None) -> float:
    """PC gain [%] of all ``candidates`` becoming forest together (added one after another;
    exact: each new node's p* row from the graph as it stands)."""
    options = options or NetworkOptions()
    if not len(candidates) or net.num <= 0:
        return 0.0
    k = options.decay_per_m
    geoms = np.concatenate([patches.geometry.to_numpy(), candidates.geometry.to_numpy()])
    a_new = shapely.area(candidates.geometry.to_numpy()) / 1e4
    pstar, area, num = net.pstar.copy(), net.area.copy(), net.num
    n0 = len(net.area)
    for t in range(len(candidates)):  # a handful (the report's top candidates)
        c = n0 + t
        d = shapely.distance(geoms[c], geoms[:c])
        links = np.where(d <= TOUCH_M, 1.0, np.exp(-k * d))
        links[links < P_MIN] = 0.0
        vec = _with_node(pstar, links)
        num = _num_with_node(pstar, area, vec, a_new[t], num)
        pstar = np.maximum(pstar, np.outer(vec, vec))
        pstar = np.block([[pstar, vec[:, None]], [vec[None, :], np.ones((1, 1))]])
        area = np.append(area, a_new[t])
    return 100.0 * (num - net.num) / net.num


# ---------------------------------------------------------------------------------------------
# The whole network of a run
# ---------------------------------------------------------------------------------------------
@dataclass
class NetworkResult:
    """What :func:`barrier_network` found.

    ``patches`` (the barrier's, with ``dpc``), ``all_patches`` (every unit's), ``metrics``
    (``connectivity.csv``), ``corridors`` and ``gaps``, ``candidates`` (the afforestation list
    with ``connectivity_gain``, ``bridges``, ``rank_connectivity``), ``top`` (per list: the
    combined gain of its top candidates) and ``definitions`` (for ``run.json``).
    """

    patches: gpd.GeoDataFrame
    all_patches: gpd.GeoDataFrame
    metrics: pd.DataFrame
    corridors: gpd.GeoDataFrame
    gaps: gpd.GeoDataFrame
    candidates: gpd.GeoDataFrame | None
    top: list[dict]
    definitions: dict


def published_level(zones: gpd.GeoDataFrame) -> str | None:
    """The level whose patches are published: ``barrier``, else the first level present."""
    from gis.config import ZONE_LEVELS

    present = set(zones["level"].astype(str))
    return next((lv for lv in ZONE_LEVELS if lv in present), None)


def network_candidates(classified: gpd.GeoDataFrame, zones: gpd.GeoDataFrame, *,
                       options=None) -> gpd.GeoDataFrame | None:
    """Afforestation candidates of the published level when no forest target asks for a list
    (no gap, or no forest target): ranked as usual, ``target_id`` empty, ``closes_gap`` False."""
    from gis.ecology import afforestation_candidates

    level = published_level(zones)
    if level is None:
        return None
    return afforestation_candidates(classified, zones, level=level, gap_ha=0.0, options=options,
                                    target_id="")


def _main_unit(units: gpd.GeoDataFrame) -> int:
    """The unit whose patches are published: the barrier level, else the first level."""
    kind = units["kind"].astype(str).to_numpy()
    level = units["level"].astype(str).to_numpy()
    for sel in ((kind == "level") & (level == "barrier"), kind == "level"):
        if sel.any():
            return int(np.flatnonzero(sel)[0])
    return 0


@io.gc_paused()
def barrier_network(classified: gpd.GeoDataFrame, zones: gpd.GeoDataFrame, *,
                    options: NetworkOptions | None = None,
                    candidates: gpd.GeoDataFrame | None = None,
                    gaps_ha: Mapping[str, float] | None = None) -> NetworkResult:
    """Patches, metrics, PC/ECA/dPC, corridors and candidate gains of a run.

    Parameters
    ----------
    classified : GeoDataFrame
        Output of :func:`gis.landuse.classify_layer`, metric CRS.
    zones : GeoDataFrame
        ``name``, ``level`` (with the barrier feature).
    options : NetworkOptions, optional
    candidates : GeoDataFrame, optional
        The afforestation list (:func:`gis.ecology.ecology_targets`); each row is evaluated in
        the unit named by its ``zone``.
    gaps_ha : dict, optional
        target id → gap [ha]; needed to re-rank with ``rank_by = "connectivity"``.

    Returns
    -------
    NetworkResult
    """
    from gis import ecology

    options = options or NetworkOptions()
    units = ecology.accounting_units(zones)
    # a zone feature that is also its level's union (one first-level zone) is computed once
    same, first = pd.factorize(pd.Series(shapely.to_wkb(units.geometry.to_numpy())))
    first = np.unique(same, return_index=True)[1]
    distinct = units.iloc[first].reset_index(drop=True)
    allp = find_patches(classified, distinct, options=options)
    nets = unit_networks(allp, distinct, options=options)
    metrics = landscape_metrics(allp, distinct, nets).iloc[same].reset_index(drop=True)
    for col in ("zone", "level", "kind"):
        metrics[col] = units[col].to_numpy()
    main = _main_unit(units)
    sel = allp["unit"].to_numpy(int) == same[main]
    patches = allp[sel].reset_index(drop=True)
    patches["zone"] = units["zone"].iloc[main]
    patches["level"] = units["level"].iloc[main]
    patches["dpc"] = dpc(nets[same[main]]) if len(patches) else np.zeros(0)
    corridors, gaps, raster = least_cost_corridors(classified, patches, options=options,
                                                   within=units.geometry.iloc[main])
    cands, top = None, []
    if candidates is not None:
        cands, top = _candidate_columns(candidates, units, same, allp, nets, options, gaps_ha)
    definitions = {
        **{k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(options).items()},
        "decay_per_m": options.decay_per_m, "p_min": P_MIN, "link_cutoff_m": options.cutoff_m,
        "touch_m": TOUCH_M, "published_unit": str(units["zone"].iloc[main]),
        "resistance_raster": raster,
        "method": "PC and ECA after Saura & Pascual-Hortal 2007 and Saura et al. 2011; "
                  "FRAGSTATS class metrics (habitat = the class, 8-cell rule, zone boundary not "
                  "edge); least-cost corridors by scikit-image MCP_Geometric's cost-distance",
    }
    if cands is not None:
        definitions["candidates_evaluated"] = int(cands.attrs.get("evaluated", 0))
        definitions["candidates_not_evaluated"] = int(cands.attrs.get("not_evaluated", 0))
    return NetworkResult(patches=patches[PATCH_COLUMNS], all_patches=allp, metrics=metrics,
                         corridors=corridors, gaps=gaps, candidates=cands, top=top,
                         definitions=definitions)


def _candidate_columns(cands: gpd.GeoDataFrame, units: gpd.GeoDataFrame, same: np.ndarray,
                       allp: gpd.GeoDataFrame, nets: Mapping[int, Network],
                       options: NetworkOptions, gaps_ha: Mapping[str, float] | None
                       ) -> tuple[gpd.GeoDataFrame, list[dict]]:
    from gis.ecology import with_connectivity

    gain = np.zeros(len(cands))
    bridges = np.zeros(len(cands), bool)
    evaluated = np.zeros(len(cands), bool)
    top: list[dict] = []
    zone = cands["zone"].astype(str).to_numpy() if len(cands) else np.zeros(0, str)
    unit_zone = units["zone"].astype(str).to_numpy()
    kind = units["kind"].astype(str).to_numpy()
    for where in pd.unique(zone):  # one evaluation per list (a level or zone)
        hits = np.flatnonzero((unit_zone == where) & (kind == "level"))
        if not len(hits):
            hits = np.flatnonzero(unit_zone == where)
        if not len(hits):
            continue
        u = int(same[hits[0]])
        rows = np.flatnonzero(zone == where)
        up = allp[allp["unit"].to_numpy(int) == u].reset_index(drop=True)
        part = cands.iloc[rows]
        res = candidate_gain(part, up, nets[u], options=options)
        gain[rows] = res["connectivity_gain"].to_numpy()
        bridges[rows] = res["bridges"].to_numpy()
        evaluated[rows] = res["evaluated"].to_numpy()
        best = np.argsort(-res["connectivity_gain"].to_numpy(), kind="stable")
        best = best[res["connectivity_gain"].to_numpy()[best] > 0][:options.top_candidates]
        top.append({
            "zone": where, "pc_before": nets[u].pc, "eca_ha_before": nets[u].eca_ha,
            "n_candidates": int(len(rows)), "n_top": int(len(best)),
            "top_ids": part["id"].astype(str).to_numpy()[best].tolist(),
            "top_gain_each": res["connectivity_gain"].to_numpy()[best].tolist(),
            "combined_gain": combined_gain(part.iloc[best], up, nets[u], options=options),
            "bridges": int(res["bridges"].sum()),
        })
    out = with_connectivity(cands, gain, bridges, rank_by=options.rank_by, gaps_ha=gaps_ha)
    out.attrs["evaluated"] = int(evaluated.sum())
    out.attrs["not_evaluated"] = int((~evaluated).sum())
    return out, top


# ---------------------------------------------------------------------------------------------
# Outputs: files, map layers, report section
# ---------------------------------------------------------------------------------------------
def write_outputs(result: NetworkResult, path) -> None:
    """Write ``patches.gpkg``, ``connectivity.csv`` and ``corridors.gpkg`` (layers
    ``corridors`` and ``gaps``), each atomically; ``path(name)`` gives where a file goes."""
    with io.atomic_path(path("patches.gpkg")) as tmp:
        _typed(result.patches, PATCH_COLUMNS).to_file(tmp, layer="patches", driver="GPKG")
    io.write_csv(path("connectivity.csv"), result.metrics)
    with io.atomic_path(path("corridors.gpkg")) as tmp:
        _typed(result.corridors, CORRIDOR_COLUMNS).to_file(tmp, layer="corridors", driver="GPKG")
        _typed(result.gaps, GAP_COLUMNS).to_file(tmp, layer="gaps", driver="GPKG", mode="a")


_TEXT = {"classes", "zone", "level", "gap_parcels", "id", "code", "group", "name_zh"}


def _typed(gdf: gpd.GeoDataFrame, columns: list[str]) -> gpd.GeoDataFrame:
    """Columns in order with writable dtypes (an empty frame too)."""
    out = {}
    for c in columns[:-1]:
        col = gdf[c] if c in gdf.columns else pd.Series(dtype=object, index=gdf.index)
        if c in _TEXT:
            out[c] = col.astype("string").fillna("").astype(str)
        elif c in ("patch_id", "corridor_id", "from_patch", "to_patch", "n_gap_parcels"):
            out[c] = pd.to_numeric(col).fillna(0).astype("int64")
        else:
            out[c] = pd.to_numeric(col).astype("float64")
    return gpd.GeoDataFrame(out, geometry=gdf.geometry.to_numpy(), crs=gdf.crs,
                            index=gdf.index)


#: dPC classes of the map [%] and their colours (ColorBrewer Greens, Brewer 2002).
DPC_BREAKS = (1.0, 5.0, 10.0, 25.0)
_DPC_COLOURS = ["#c7e9c0", "#74c476", "#31a354", "#006d2c", "#00441b"]


def add_map_layers(m, result: NetworkResult, *, simplify_m: float = 1.0,
                   notes: list[str] | None = None) -> None:
    """Draw the network on a folium map: patches by dPC (one layer per class), corridors, the
    gap parcels they cross (shown on demand), and the bridging candidates; one legend."""
    lines = _line_layers(result, simplify_m)
    # corridors last, so that their lines stay above the parcels they cross
    groups = [_patch_layer(result.patches, simplify_m), lines.get("gaps"),
              _bridge_layer(result.candidates, simplify_m), lines.get("corridors")]
    for fg in groups:
        if fg is not None:
            fg.add_to(m)
    _network_legend(m, result)
    if notes is not None and not len(result.patches):
        notes.append("无生境斑块 — no habitat patches above the minimum size.")


def _patch_layer(p: gpd.GeoDataFrame, simplify_m: float):
    import folium

    from gis import maps

    if not len(p):
        return None
    cls = maps._classes(p["dpc"].to_numpy(float), DPC_BREAKS)
    props = pd.DataFrame({
        "p": p["patch_id"].astype("Int64").astype("string"),
        "a": maps._num(p["area_ha"], 1, "ha"), "k": maps.escape_text(p["classes"]),
        "d": maps._num(p["dpc"], 1, "%")}, index=p.index)
    geoms = pd.Series(list(maps._web_geometry(p.geometry, max(simplify_m, 2.0))), index=p.index)
    fg = folium.FeatureGroup(name="生境斑块 habitat patches (dPC)", show=True)
    for i, colour in enumerate(_DPC_COLOURS):
        sel = cls == i
        if sel.any():
            maps._static_geojson(
                maps._feature_collection(props[sel], geoms[sel]), name=f"dPC {i}", control=False,
                style=maps._style("#00441b", colour, weight=1, fill_opacity=0.7),
                tooltip=maps._tooltip(["p", "a", "k", "d"], ["斑块 patch", "面积 area",
                                                             "生境 habitat", "重要性 dPC"])
            ).add_to(fg)
    return fg


def _line_layers(result: NetworkResult, simplify_m: float) -> dict:
    """The gap parcels (one outline per parcel, however many corridors cross it) and the
    corridors."""
    import folium

    from gis import maps

    gaps = result.gaps
    if len(gaps):
        first = ~gaps["id"].astype(str).duplicated().to_numpy()
        crossed = gaps.groupby(gaps["id"].astype(str), sort=False)["crossed_m"].sum()
        gaps = gaps[first].assign(crossed_m=crossed.to_numpy())
    out = {}
    for layer, frame, name, style, fields, aliases, show in (
        ("gaps", gaps, "廊道缺口地块 corridor gaps (parcels to close)",
         maps._style("#b2182b", "#ef8a62", weight=1.5, fill_opacity=0.6),
         {"i": "id", "c": "code", "n": "name_zh", "x": "crossed_m"},
         ["编号 id", "地类编码 code", "地类 class", "穿越长度 crossed"], False),
        ("corridors", result.corridors, "生态廊道 least-cost corridors",
         {"color": "#e66101", "weight": 2, "opacity": 0.9},
         {"r": "corridor_id", "f": "from_patch", "t": "to_patch", "l": "length_m",
          "g": "gap_m", "q": "gap_parcels"},
         ["廊道 corridor", "自 from patch", "至 to patch", "长度 length", "缺口 gap",
          "缺口地块 gap parcels"], True),
    ):
        if frame is None or not len(frame):
            continue
        props = pd.DataFrame(index=frame.index)
        for key, col in fields.items():
            if col in ("crossed_m", "length_m", "gap_m"):
                props[key] = maps._num(frame[col], 0, "m")
            else:
                props[key] = maps.escape_text(frame[col])
        geoms = maps._web_geometry(frame.geometry, simplify_m)
        fg = folium.FeatureGroup(name=name, show=show)
        maps._static_geojson(maps._feature_collection(props, geoms), name=name, control=False,
                             style=style, tooltip=maps._tooltip(list(fields), aliases)).add_to(fg)
        out[layer] = fg
    return out


def _bridge_layer(cands: gpd.GeoDataFrame | None, simplify_m: float):
    import folium

    from gis import maps

    if cands is None or not len(cands) or not cands["bridges"].any():
        return None
    b = cands[cands["bridges"].to_numpy(bool)]
    props = pd.DataFrame({
        "i": maps.escape_text(b["id"]), "c": maps.escape_text(b["code"]),
        "a": maps._num(b["area_ha"], 2, "ha"), "g": maps._num(b["connectivity_gain"], 2, "%"),
        "r": pd.to_numeric(b["rank_connectivity"]).astype("Int64").astype("string")},
        index=b.index)
    fg = folium.FeatureGroup(name="连接斑块的候选地块 bridging candidates", show=True)
    maps._static_geojson(
        maps._feature_collection(props, maps._web_geometry(b.geometry, simplify_m)),
        name="bridging candidates", control=False,
        style=maps._style("#7a0177", "#f768a1", weight=4, fill_opacity=0.6),
        tooltip=maps._tooltip(["i", "c", "a", "g", "r"],
                              ["编号 id", "地类编码 code", "面积 area", "连通性增益 PC gain",
                               "连通性排名 connectivity rank"])).add_to(fg)
    return fg


def _network_legend(m, result: NetworkResult) -> None:
    from gis import maps

    edges = [None, *DPC_BREAKS, None]
    rows = [(c, maps._break_label(edges[i], edges[i + 1], lambda v: f"{v:g} %"))
            for i, c in enumerate(_DPC_COLOURS)]
    rows += [("#e66101", "生态廊道 corridor"), ("#ef8a62", "廊道缺口 gap parcel"),
             ("#f768a1", "连接斑块的候选 bridging candidate")]
    maps._legend(m, key="network", title="生态网络 ecological network: 斑块重要性 dPC",
                 rows=rows, breaks=DPC_BREAKS,
                 note=f"{len(result.patches)} 斑块 patches ≥ "
                      f"{result.definitions.get('min_patch_ha')} ha, "
                      f"{len(result.corridors)} 廊道 corridors")


def report_section(result: NetworkResult):
    """The report's ecological-network section (a :class:`gis.report.Section`)."""
    from markupsafe import Markup

    from gis.report import Section

    return Section("network", "生态网络 Ecological network", Markup(report_html(result)))


def report_html(result: NetworkResult) -> str:
    """The body of the report's ecological-network section: one block per zone and level.

    Every value from the layers goes through :func:`gis.report.esc`.
    """
    from gis.report import esc, table_html

    d = result.definitions
    parts = [f"<p class='muted'>生境 habitat: {esc(', '.join(d.get('habitat', [])))}; 最小斑块 "
             f"minimum patch {esc(d.get('min_patch_ha'))} ha; 扩散距离 dispersal distance "
             f"{esc(d.get('dispersal_m'))} m (p = 0.5); PC = probability of connectivity "
             "(Saura &amp; Pascual-Hortal 2007), ECA = equivalent connected area; metrics as in "
             "FRAGSTATS (habitat as the class). Files: connectivity.csv, patches.gpkg, "
             "corridors.gpkg.</p>"]
    top = {t["zone"]: t for t in result.top}
    m = result.metrics
    for _, row in m.iterrows():
        parts.append(f"<h3>{esc(row['zone'])} <span class='muted'>({esc(row['level'])}, "
                     f"{esc(row['kind'])})</span></h3>")
        parts.append(
            f"<p>{int(row['n_patches'])} 斑块 patches, {row['habitat_ha']:,.1f} ha · "
            f"最大斑块指数 LPI {row['largest_patch_index']:.1f} % · 平均斑块 mean patch "
            f"{_fmt(row['mean_patch_area_ha'], ' ha')} · 边缘密度 edge density "
            f"{row['edge_density_m_ha']:.1f} m/ha · PC {_fmt(row['pc'], '', 5)} · ECA "
            f"{_fmt(row['eca_ha'], ' ha')}</p>")
        t = top.get(str(row["zone"]))
        has_level = bool(((m["zone"] == row["zone"]) & (m["kind"] == "level")).any())
        if t is not None and (row["kind"] == "level" or not has_level):
            ids = ", ".join(t["top_ids"][:5]) + (" …" if len(t["top_ids"]) > 5 else "")
            parts.append(
                f"<p>造林候选 afforestation candidates: {t['n_candidates']:,}, 其中 "
                f"{t['bridges']:,} 个连接两个以上斑块 bridge two or more patches. 按连通性增益排名"
                f"前 {t['n_top']} 个地块 the top {t['n_top']} by connectivity gain ({esc(ids)}) "
                f"一并造林可使 PC 提高 together raise PC by <b>{t['combined_gain']:.1f} %</b> "
                f"(单个最高 best single {max(t['top_gain_each'] or [0]):.1f} %).</p>")
        if row["kind"] == "level" and str(row["zone"]) == d.get("published_unit"):
            c = result.corridors
            if len(c):
                parts.append(
                    f"<p>{len(c)} 条生态廊道 least-cost corridors, 总长 total "
                    f"{c['length_m'].sum() / 1000:,.1f} km, 其中缺口 of which "
                    f"{c['gap_m'].sum() / 1000:,.1f} km over {result.gaps['id'].nunique():,} "
                    "非生境地块 non-habitat parcels (corridors.gpkg, layer gaps).</p>")
                cols = ["corridor_id", "from_patch", "to_patch", "distance_m", "length_m",
                        "gap_m", "gap_parcels"]
                worst = c.sort_values("gap_m", ascending=False).head(10)
                parts.append(table_html(pd.DataFrame(worst[cols]).round(1), max_rows=10))
            if len(result.patches):
                key = result.patches.sort_values("dpc", ascending=False).head(5)
                parts.append("<p>最重要斑块 most important patches (dPC): " + ", ".join(
                    f"#{int(r.patch_id)} {r.area_ha:,.0f} ha {r.dpc:.1f} %"
                    for r in key.itertuples()) + "</p>")
    return "\n".join(parts)


def _fmt(value, unit: str, digits: int = 1) -> str:
    if value is None or not np.isfinite(float(value)):
        return "–"
    return f"{float(value):,.{digits}f}{unit}"


__all__ = [
    "CONNECTIVITY_COLUMNS", "CORRIDOR_COLUMNS", "DEFAULT_RESISTANCE", "GAP_COLUMNS",
    "NETWORK_HABITATS", "Network", "NetworkOptions", "NetworkResult", "P_MIN", "PATCH_COLUMNS",
    "RESISTANCE_GROUPS", "add_map_layers", "barrier_network", "candidate_gain", "combined_gain", "connectivity",
    "dpc", "find_patches", "habitat_class", "landscape_metrics", "least_cost_corridors",
    "network_candidates", "network_options", "patch_links", "published_level", "report_html", "resistance_raster", "unit_networks",
    "write_outputs",
]

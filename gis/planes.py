"""Roof planes from a digital surface model (DSM), and rooftop PV plane by plane.

A DSM (``[layers.dsm]``: heights [m] of ground, buildings and trees, as from oblique
photogrammetry or LiDAR) is read tile by tile; every building of a tile is handled at once on
labelled arrays (scipy.ndimage, numpy bincount), never in a Python loop over buildings or pixels:

1. **ground**: a bare-ground raster (``[layers.dem]``) when given, else per building the
   :data:`GROUND_PERCENTILE`-th percentile of the DSM on a ring of :data:`GROUND_RING_M` around
   its footprint (the free pixels nearest to it); roof pixels stand at least
   :data:`MIN_ROOF_HEIGHT_M` above it;
2. **slope and aspect** per roof pixel from central differences that only use neighbours on the
   same roof (one-sided at the roof's edge, so walls never enter a gradient), after a 3 × 3 mean
   over the same roof against pixel noise; aspect is an azimuth
   (clockwise from north, 180 = south, the direction the plane faces);
3. **segmentation**: pixels below :data:`FLAT_TILT_DEG` are flat; the others fall into
   :data:`N_ASPECT_CLASSES` aspect classes (steeper than :data:`MAX_ROOF_TILT_DEG`: walls, tree
   crowns, not roof); connected regions of one class within one building are the first segments
   (``scipy.ndimage.label``); a least-squares plane is fitted to each; adjacent segments whose
   planes agree (normals within :data:`MERGE_ANGLE_DEG`, heights at their border within
   :data:`FIT_TOLERANCE_M`) are merged, which undoes splits at aspect-class borders and noise;
   rough segments (fit RMSE above :data:`MAX_RMSE_M`) and slivers (fewer than
   :data:`MIN_CORE_SHARE` of their pixels with all four neighbours in the segment: ridge and hip
   lines, edges) are dissolved, and their pixels join the nearest plane of the same roof when they
   lie on it (within :data:`FIT_TOLERANCE_M`);
4. **planes**: refitted; tilt [°] (0 for a flat roof: the roof, not the modules), azimuth [°,
   180 = south; none for a flat roof], sloped area [m²] = pixel area ÷ cos tilt, pixels cut by a
   crease shared between its two planes (:func:`_crease_counts`); planes smaller
   than ``min_plane_m2`` (default 8 m²) and slivers are dropped; outlines from
   ``rasterio.features.shapes`` clipped to the footprint.

The thresholds follow cse-bristol's solar-wizard (flat below 10°, after the MCS installation
standard MIS 3002 clause 5.8.11) and the aspect-and-region segmentation of roof planes in
raster surface models; the merge by plane fit takes the place of its RANSAC step.

PV per plane reuses :mod:`gis.rooftop` (presets, edge setback, usable fractions, winter-solstice
rows on flat planes, flush modules on pitched planes, north-facing planes bare) and the
orientation-class yield table of :mod:`gis.solar`.  The building row then sums its planes
(:func:`buildings_from_planes`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gis import horizon, rooftop, solar
from gis._errors import InputError, Problem
from gis.config import LayerSpec

#: Planes flatter than this are flat roofs [°] (solar-wizard; MCS MIS 3002 clause 5.8.11).
FLAT_TILT_DEG = 10.0
#: Pixels steeper than this are walls or tree crowns, not roof [°].
MAX_ROOF_TILT_DEG = 60.0
#: Aspect classes of pitched pixels (45° wide, centred on N, NE, E …).
N_ASPECT_CLASSES = 8
#: Roof pixels stand at least this high above the ground [m].
MIN_ROOF_HEIGHT_M = 2.0
#: Without a bare-ground raster: width of the ring around a footprint whose low percentile is
#: the ground [m], and that percentile [%].
GROUND_RING_M = 5.0
GROUND_PERCENTILE = 10.0
#: Adjacent segments whose planes' normals are within this angle [°] …
MERGE_ANGLE_DEG = 8.0
#: … and whose heights agree within this at their border [m] are one plane; a pixel joins a
#: plane when it lies within this of it [m].
FIT_TOLERANCE_M = 0.3
#: Segments whose plane fit leaves a larger RMSE are not planes (trees, equipment) [m].
MAX_RMSE_M = 0.5
#: Segments with a smaller share of core pixels (all four neighbours in the segment) are slivers.
MIN_CORE_SHARE = 0.2
#: Tiles of the DSM processed at once [pixels per side].
TILE_PX = 1024
#: Footprints wider or longer than this get no planes (a broken geometry must not make a window
#: of the whole raster) [m].
MAX_FOOTPRINT_M = 1000.0

#: Margin of the lift of a pitched plane's sample points over its own cells' rise [m], against
#: the rounding of the fitted tilt and of a float32 DSM (:func:`_lift`).
LIFT_MARGIN_M = 0.02

#: Columns of ``roof_planes.gpkg`` (layer ``roof_planes``), in order.
PLANE_COLUMNS = ("building_id", "plane_id", "tilt", "azimuth", "area_m2", "usable_area_m2",
                 "capacity_kwp", "specific_yield_kwh_kwp", "shading_factor", "annual_kwh")


def settings() -> dict[str, float]:
    """The segmentation constants (for run.json)."""
    return {"flat_tilt_deg": FLAT_TILT_DEG, "max_roof_tilt_deg": MAX_ROOF_TILT_DEG,
            "aspect_classes": N_ASPECT_CLASSES, "min_roof_height_m": MIN_ROOF_HEIGHT_M,
            "ground_ring_m": GROUND_RING_M, "ground_percentile": GROUND_PERCENTILE,
            "merge_angle_deg": MERGE_ANGLE_DEG, "fit_tolerance_m": FIT_TOLERANCE_M,
            "max_rmse_m": MAX_RMSE_M, "min_core_share": MIN_CORE_SHARE, "tile_px": TILE_PX,
            "max_footprint_m": MAX_FOOTPRINT_M, "lift_margin_m": LIFT_MARGIN_M}


# ---------------------------------------------------------------------------------------------
# Labelled-array helpers


def _label_percentile(values: np.ndarray, labels: np.ndarray, n: int, q: float) -> np.ndarray:
    """``q``-th percentile (lower value) of ``values`` per label 1..n; NaN where a label is absent."""
    out = np.full(n + 1, np.nan)
    if not values.size:
        return out
    # one sort of a combined key (label, value) instead of a two-key lexsort
    lo = float(values.min())
    span = float(values.max()) - lo + 1.0
    key = np.sort(labels * span + (values - lo))
    counts = np.bincount(labels, minlength=n + 1)
    starts = np.cumsum(counts) - counts
    pick = starts + np.floor(q / 100.0 * np.maximum(counts - 1, 0)).astype(np.int64)
    has = counts > 0
    label = np.flatnonzero(has)
    out[has] = key[pick[has]] - label * span + lo
    return out


def _gradients(z: np.ndarray, lab: np.ndarray, res_x: float, res_y: float
               ) -> tuple[np.ndarray, np.ndarray]:
    """dz/d(east) and dz/d(north) [-], from neighbours on the same roof only.

    Central differences where both neighbours belong to the pixel's roof, one-sided where one
    does, NaN where none does.  Rows run southwards, so dz/d(north) = −dz/d(row) ÷ res_y.
    """
    def along(axis: int, res: float) -> np.ndarray:
        zp = np.full_like(z, np.nan)
        zm = np.full_like(z, np.nan)
        lp = np.zeros_like(lab)
        lm = np.zeros_like(lab)
        if axis == 1:
            zp[:, :-1], zm[:, 1:] = z[:, 1:], z[:, :-1]
            lp[:, :-1], lm[:, 1:] = lab[:, 1:], lab[:, :-1]
        else:
            zp[:-1], zm[1:] = z[1:], z[:-1]
            lp[:-1], lm[1:] = lab[1:], lab[:-1]
        ok_p = (lp == lab) & (lab > 0)
        ok_m = (lm == lab) & (lab > 0)
        with np.errstate(invalid="ignore"):
            return np.select([ok_p & ok_m, ok_p, ok_m],
                             [(zp - zm) / (2 * res), (zp - z) / res, (z - zm) / res], np.nan)

    return along(1, res_x), -along(0, res_y)


def _smooth(z: np.ndarray, lab: np.ndarray) -> np.ndarray:
    """3 × 3 mean of each roof pixel over the neighbours on the same roof (noise before slopes)."""
    total = np.where(lab > 0, z, 0.0)
    count = (lab > 0).astype(float)
    zp, lp = np.pad(np.where(lab > 0, z, 0.0), 1), np.pad(lab, 1)
    h, w = z.shape
    for dr in (-1, 0, 1):  # the eight neighbours: a fixed number of shifts
        for dc in (-1, 0, 1):
            if dr == 0 and dc == 0:
                continue
            same = (lp[1 + dr:1 + dr + h, 1 + dc:1 + dc + w] == lab) & (lab > 0)
            total += np.where(same, zp[1 + dr:1 + dr + h, 1 + dc:1 + dc + w], 0.0)
            count += same
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(lab > 0, total / count, np.nan)


def _fit_planes(seg: np.ndarray, x: np.ndarray, y: np.ndarray, z: np.ndarray, n: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares plane z = a·x + b·y + c per segment 1..n (1-D pixel arrays).

    Returns the coefficients (n + 1, 3), the fit RMSE [m] and the pixel count per segment;
    segments with fewer than three pixels or collinear pixels get NaN.
    """
    cnt = np.bincount(seg, minlength=n + 1).astype(float)
    safe = np.maximum(cnt, 1)
    # centre on each segment's mean for a well-conditioned system
    mx = np.bincount(seg, x, n + 1) / safe
    my = np.bincount(seg, y, n + 1) / safe
    mz = np.bincount(seg, z, n + 1) / safe
    dx, dy, dz = x - mx[seg], y - my[seg], z - mz[seg]
    sxx = np.bincount(seg, dx * dx, n + 1)
    sxy = np.bincount(seg, dx * dy, n + 1)
    syy = np.bincount(seg, dy * dy, n + 1)
    sxz = np.bincount(seg, dx * dz, n + 1)
    syz = np.bincount(seg, dy * dz, n + 1)
    det = sxx * syy - sxy * sxy
    ok = (cnt >= 3) & (det > 1e-9 * np.maximum(sxx * syy, 1e-30))
    with np.errstate(invalid="ignore", divide="ignore"):
        a = np.where(ok, (sxz * syy - syz * sxy) / det, np.nan)
        b = np.where(ok, (syz * sxx - sxz * sxy) / det, np.nan)
    c = mz - a * mx - b * my
    resid = z - (a[seg] * x + b[seg] * y + c[seg])
    rmse = np.sqrt(np.bincount(seg, np.nan_to_num(resid) ** 2, n + 1) / safe)
    rmse[~ok] = np.nan
    return np.stack([a, b, c], axis=1), rmse, cnt


def _neighbour_pairs(seg: np.ndarray, lab: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                  np.ndarray, np.ndarray]:
    """Pixel pairs (4-neighbours) that join two segments of the same roof: flat indices."""
    idx = np.arange(seg.size).reshape(seg.shape)
    pairs = []
    for a, b in ((np.s_[:, :-1], np.s_[:, 1:]), (np.s_[:-1, :], np.s_[1:, :])):
        sa, sb = seg[a], seg[b]
        m = (sa > 0) & (sb > 0) & (sa != sb) & (lab[a] == lab[b])
        pairs.append((idx[a][m], idx[b][m]))
    pa = np.concatenate([p[0] for p in pairs])
    pb = np.concatenate([p[1] for p in pairs])
    flat = seg.ravel()
    return pa, pb, flat[pa], flat[pb]


def _merge_segments(seg: np.ndarray, lab: np.ndarray, coef: np.ndarray, xg: np.ndarray,
                    yg: np.ndarray) -> tuple[np.ndarray, int]:
    """Merge adjacent segments of one roof whose planes agree; relabel 1..n."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = int(seg.max())
    pa, pb, sa, sb = _neighbour_pairs(seg, lab)
    if len(pa):
        x, y = xg.ravel(), yg.ravel()
        # both planes evaluated at the middle of the two border pixels
        xm, ym = (x[pa] + x[pb]) / 2, (y[pa] + y[pb]) / 2
        gap = np.abs(coef[sa, 0] * xm + coef[sa, 1] * ym + coef[sa, 2]
                     - coef[sb, 0] * xm - coef[sb, 1] * ym - coef[sb, 2])
        key = np.minimum(sa, sb).astype(np.int64) * (n + 1) + np.maximum(sa, sb)
        ukey, inv = np.unique(key, return_inverse=True)
        mean_gap = np.bincount(inv, np.nan_to_num(gap, nan=np.inf)) / np.bincount(inv)
        s1, s2 = ukey // (n + 1), ukey % (n + 1)
        normal = np.stack([-coef[:, 0], -coef[:, 1], np.ones(n + 1)], axis=1)
        normal /= np.linalg.norm(normal, axis=1, keepdims=True)
        cos = np.clip(np.sum(normal[s1] * normal[s2], axis=1), -1, 1)
        angle = np.degrees(np.arccos(cos))
        join = (angle <= MERGE_ANGLE_DEG) & (mean_gap <= FIT_TOLERANCE_M)
        s1, s2 = s1[join], s2[join]
    else:
        s1 = s2 = np.empty(0, np.int64)
    graph = coo_matrix((np.ones(len(s1)), (s1, s2)), shape=(n + 1, n + 1))
    _, comp = connected_components(graph, directed=False)
    # component ids renumbered 1.. in order of first segment, background stays 0
    _, new = np.unique(comp[1:], return_inverse=True)
    mapping = np.concatenate([[0], new + 1])
    return mapping[seg], int(new.max() + 1) if n else 0


def _crease_counts(seg: np.ndarray, lab: np.ndarray, coef: np.ndarray, xg: np.ndarray,
                   yg: np.ndarray, res: float, n: int) -> np.ndarray:
    """Pixel count per plane, with the pixels a crease (ridge, hip, valley) cuts shared.

    A pixel on a plane's border whose neighbour lies on another plane of the same roof is cut by
    the line where the two planes meet when that line passes within half a pixel of its centre;
    the part beyond the line goes to the other plane: ``1/2 − d/w`` of the pixel, with ``d``
    the distance of the centre from the line and ``w`` the pixel's width across it.  Counting
    whole pixels instead biases small planes (a hip's triangles) by up to a tenth of their area.
    """
    cnt = np.bincount(seg.ravel(), minlength=n + 1).astype(float)
    pa, pb, sa, sb = _neighbour_pairs(seg, lab)
    if not len(pa):
        return cnt
    pix, own, other = np.concatenate([pa, pb]), np.concatenate([sa, sb]), np.concatenate([sb, sa])
    da = coef[own] - coef[other]
    norm = np.hypot(da[:, 0], da[:, 1])
    x, y = xg.ravel()[pix], yg.ravel()[pix]
    with np.errstate(invalid="ignore", divide="ignore"):
        dist = np.abs(da[:, 0] * x + da[:, 1] * y + da[:, 2]) / norm
        width = res * (np.abs(da[:, 0]) + np.abs(da[:, 1])) / norm
        given = np.nan_to_num(np.clip(0.5 - dist / width, 0.0, 0.5), nan=0.0)
    # a pixel beside several planes: the nearest crease only
    order = np.lexsort((-given, pix))
    first = np.ones(len(order), bool)
    first[1:] = pix[order][1:] != pix[order][:-1]
    pick = order[first]
    cnt -= np.bincount(own[pick], given[pick], n + 1)
    cnt += np.bincount(other[pick], given[pick], n + 1)
    return cnt


def _core_share(seg: np.ndarray, n: int) -> np.ndarray:
    """Share of each segment's pixels whose four neighbours lie in the same segment."""
    core = seg > 0
    core[1:] &= seg[:-1] == seg[1:]
    core[:-1] &= seg[1:] == seg[:-1]
    core[:, 1:] &= seg[:, :-1] == seg[:, 1:]
    core[:, :-1] &= seg[:, 1:] == seg[:, :-1]
    core[0], core[-1], core[:, 0], core[:, -1] = False, False, False, False
    cnt = np.bincount(seg.ravel(), minlength=n + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.bincount(seg.ravel(), core.ravel(), n + 1) / cnt


def _relabel(seg: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, int]:
    """Keep the segments flagged in ``keep`` (indexed by segment id), renumbered 1..n."""
    keep = keep.copy()
    keep[0] = False
    mapping = np.zeros(len(keep), np.int64)
    mapping[keep] = np.arange(1, int(keep.sum()) + 1)
    return mapping[seg], int(keep.sum())


# ---------------------------------------------------------------------------------------------
# Segmentation of one tile


def _ground(dsm: np.ndarray, lab: np.ndarray, n: int, res: tuple[float, float],
            dem: np.ndarray | None) -> np.ndarray:
    """Ground height [m] per pixel: the DEM, else (also where the DEM has no data) each
    building's low ring percentile."""
    if dem is not None and np.isfinite(dem[lab > 0]).all():
        return dem
    from scipy import ndimage

    free = lab == 0
    dist, (ri, ci) = ndimage.distance_transform_edt(free, sampling=(res[1], res[0]),
                                                    return_indices=True)
    ring = free & (dist <= GROUND_RING_M) & np.isfinite(dsm)
    owner = lab[ri, ci]
    ground_b = _label_percentile(dsm[ring], owner[ring], n, GROUND_PERCENTILE)
    # a building walled in by others: the tile's open ground instead
    open_ground = dsm[free & np.isfinite(dsm)]
    fallback = np.percentile(open_ground, GROUND_PERCENTILE) if open_ground.size else np.nan
    ground_b = np.where(np.isfinite(ground_b), ground_b, fallback)
    ground_b[0] = np.nan
    ring_ground = ground_b[lab]
    return ring_ground if dem is None else np.where(np.isfinite(dem), dem, ring_ground)


def _initial_segments(z: np.ndarray, roof_lab: np.ndarray, res: tuple[float, float]
                      ) -> tuple[np.ndarray, int]:
    """Connected regions of one slope/aspect class within one roof, numbered 1..n."""
    from scipy import ndimage

    gx, gy = _gradients(_smooth(z, roof_lab), roof_lab, *res)
    roof = (roof_lab > 0) & np.isfinite(gx) & np.isfinite(gy)
    gx, gy = gx[roof], gy[roof]  # the trigonometry on roof pixels only
    slope = np.degrees(np.arctan(np.hypot(gx, gy)))
    aspect = np.degrees(np.arctan2(-gx, -gy)) % 360.0  # downslope, clockwise from north
    width = 360.0 / N_ASPECT_CLASSES
    cls_roof = np.full(slope.shape, -1, np.int8)
    cls_roof[slope < FLAT_TILT_DEG] = 0
    pitched = (slope >= FLAT_TILT_DEG) & (slope <= MAX_ROOF_TILT_DEG)
    cls_roof[pitched] = 1 + (np.floor((aspect[pitched] + width / 2) / width).astype(np.int8)
                             % N_ASPECT_CLASSES)
    cls = np.full(z.shape, -1, np.int8)
    cls[roof] = cls_roof
    seg = np.zeros(z.shape, np.int64)
    offset = 0
    for c in range(N_ASPECT_CLASSES + 1):  # a fixed number of classes, not buildings or pixels
        comp, k = ndimage.label(cls == c)
        np.add(comp, offset, out=seg, where=comp > 0)
        offset += k
    # a region that runs across two touching roofs becomes one segment per roof
    m = seg > 0
    _, inv = np.unique(seg[m] * (int(roof_lab.max()) + 1) + roof_lab[m], return_inverse=True)
    seg[m] = inv.ravel() + 1
    return seg, int(seg.max())


def _attach_pixels(seg: np.ndarray, roof_lab: np.ndarray, z: np.ndarray, coef: np.ndarray,
                   xg: np.ndarray, yg: np.ndarray, *, passes: int = 3) -> np.ndarray:
    """Roof pixels left out (ridge and hip lines, slivers) join a plane of their roof they lie on.

    A few passes over the four neighbours: the plane that fits best wins; a pixel that fits two
    equally (a hip line through pixel centres, which belongs half to each) goes to one or the
    other by its position, alternating along the line, so that such lines are shared evenly.  What is still
    loose then joins the nearest plane, if it lies on it.  Only the loose pixels are visited.
    """
    from scipy import ndimage

    h, w = seg.shape
    seg = np.pad(seg, 1)
    lab = np.pad(roof_lab, 1)
    zf, xf, yf = (np.pad(a, 1).ravel() for a in (z, xg, yg))
    flat_seg, flat_lab = seg.ravel(), lab.ravel()  # views: updates to seg show through
    steps = np.array([-1, 1, -(w + 2), w + 2])
    for _ in range(passes):  # a fixed number of passes
        loose = np.flatnonzero((flat_lab > 0) & (flat_seg == 0))
        if not loose.size:
            break
        nb = loose[None, :] + steps[:, None]                      # (4, n_loose)
        cand = flat_seg[nb]
        resid = np.abs(zf[loose] - (coef[cand, 0] * xf[loose] + coef[cand, 1] * yf[loose]
                                    + coef[cand, 2]))
        ok = (cand > 0) & (flat_lab[nb] == flat_lab[loose]) & (resid <= FIT_TOLERANCE_M)
        resid = np.where(ok, resid, np.inf)
        tie = ok & (resid <= resid.min(axis=0) + 0.01)
        n_tie = tie.sum(axis=0)
        # row + col // 2 alternates along rows, columns and both diagonals alike
        pick = (loose // (w + 2) + (loose % (w + 2)) // 2) % np.maximum(n_tie, 1)
        chosen = tie & (np.cumsum(tie, axis=0) - 1 == pick)
        new = (cand * chosen).sum(axis=0)
        if not (new > 0).any():
            break
        flat_seg[loose[new > 0]] = new[new > 0]
    seg = seg[1:-1, 1:-1]
    loose = (roof_lab > 0) & (seg == 0)
    if not loose.any() or not (seg > 0).any():
        return seg
    _, (ri, ci) = ndimage.distance_transform_edt(seg == 0, return_indices=True)
    r, c = np.nonzero(loose)
    cand = seg[ri[r, c], ci[r, c]]
    fits = ((roof_lab[ri[r, c], ci[r, c]] == roof_lab[r, c]) & (cand > 0)
            & (np.abs(z[r, c] - (coef[cand, 0] * xg[r, c] + coef[cand, 1] * yg[r, c]
                                 + coef[cand, 2])) <= FIT_TOLERANCE_M))
    seg = seg.copy()
    seg[r[fits], c[fits]] = cand[fits]
    return seg


def _segment_tile(z: np.ndarray, lab: np.ndarray, n: int, transform, dem: np.ndarray | None,
                  min_plane_m2: float) -> tuple[np.ndarray, pd.DataFrame]:
    """Planes of every building of one tile: a plane-id raster and a table per plane.

    ``lab`` holds building numbers 1..n (0 = no building); the table has ``building`` (1..n),
    ``tilt``, ``azimuth``, ``plan_area_m2``, ``area_m2``, ``rmse_m``, indexed by plane id.
    """
    res = (abs(transform.a), abs(transform.e))
    rows, cols = np.indices(z.shape)
    # pixel centres in metres from the tile's corner (east, north)
    xg = (cols + 0.5) * res[0]
    yg = -(rows + 0.5) * res[1]
    ground = _ground(z, lab, n, res, dem)
    with np.errstate(invalid="ignore"):
        roof = (lab > 0) & np.isfinite(z) & (z - ground >= MIN_ROOF_HEIGHT_M)
    roof_lab = np.where(roof, lab, 0)
    zf = np.where(roof, z, 0.0)

    def fit(s, k):
        m = s > 0
        return _fit_planes(s[m], xg[m], yg[m], zf[m], k)

    def planes_of(s, k):
        coef, rmse, cnt = fit(s, k)
        tilt = np.degrees(np.arctan(np.hypot(coef[:, 0], coef[:, 1])))
        azimuth = np.mod(np.round(np.degrees(np.arctan2(-coef[:, 0], -coef[:, 1])), 6), 360.0)
        flat = tilt < FLAT_TILT_DEG
        tilt, azimuth = np.where(flat, 0.0, tilt), np.where(flat, np.nan, azimuth)
        plan = cnt * res[0] * res[1]
        area = plan / np.cos(np.radians(tilt))
        keep = (np.isfinite(rmse) & (rmse <= MAX_RMSE_M) & (area >= min_plane_m2)
                & (_core_share(s, k) >= MIN_CORE_SHARE))
        return coef, rmse, tilt, azimuth, plan, area, keep

    seg, k = _initial_segments(np.where(roof, z, np.nan), roof_lab, res)
    coef, rmse, _ = fit(seg, k)
    seg, k = _merge_segments(seg, roof_lab, coef, xg, yg)
    # twice: small, rough and sliver segments go, their pixels join the planes they lie on
    # (then pieces of one plane kept apart by a sliver merge)
    for _ in range(2):
        keep = planes_of(seg, k)[-1]
        seg, k = _relabel(seg, keep)
        coef = fit(seg, k)[0]
        seg = _attach_pixels(seg, roof_lab, zf, np.nan_to_num(coef), xg, yg)
        coef = fit(seg, k)[0]
        seg, k = _merge_segments(seg, roof_lab, coef, xg, yg)
    coef, rmse, tilt, azimuth, plan, area, keep = planes_of(seg, k)
    # the final areas with the pixels on creases shared (planes too small, slivers: dropped)
    shared = _crease_counts(seg, roof_lab, np.nan_to_num(coef), xg, yg, res[0], k)
    plan = shared * res[0] * res[1]
    area = plan / np.cos(np.radians(tilt))
    keep &= area >= min_plane_m2
    building = np.zeros(k + 1, np.int64)
    flat_seg, flat_lab = seg.ravel(), roof_lab.ravel()
    building[flat_seg[flat_seg > 0]] = flat_lab[flat_seg > 0]
    seg, k2 = _relabel(seg, keep)
    sel = np.flatnonzero(keep[1:]) + 1
    table = pd.DataFrame({"building": building[sel], "tilt": tilt[sel], "azimuth": azimuth[sel],
                          "plan_area_m2": plan[sel], "area_m2": area[sel], "rmse_m": rmse[sel]},
                         index=np.arange(1, k2 + 1))
    return seg, table


# ---------------------------------------------------------------------------------------------
# Reading the DSM tile by tile


def _open_raster(spec, kind: str):
    import rasterio

    from gis.io import raster_ref

    path, band, declared = raster_ref(spec)
    try:
        src = rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(Problem(f"cannot read the {kind} raster: {exc}", file=str(path),
                                 layer=kind)) from None
    return src, band, src.crs or declared


def _tile_windows(bounds: np.ndarray, src, pad_m: float) -> tuple[np.ndarray, list]:
    """Group buildings by the DSM tile of their centre; one pixel window per group."""
    from rasterio.windows import Window

    t = src.transform

    def pixel(x, y):  # north-up rasters (rotated grids are not supported)
        return (x - t.c) / t.a, (y - t.f) / t.e

    cx, cy = (bounds[:, 0] + bounds[:, 2]) / 2, (bounds[:, 1] + bounds[:, 3]) / 2
    col, row = pixel(cx, cy)
    tile = (np.floor(row / TILE_PX).astype(np.int64) * (src.width // TILE_PX + 2)
            + np.floor(col / TILE_PX).astype(np.int64))
    utile, group = np.unique(tile, return_inverse=True)
    # the window of a group: the pixel box around all its footprints, padded for the ground ring
    c0, r0 = pixel(bounds[:, 0] - pad_m, bounds[:, 3] + pad_m)
    c1, r1 = pixel(bounds[:, 2] + pad_m, bounds[:, 1] - pad_m)
    lo_c = pd.Series(np.minimum(c0, c1)).groupby(group).min().to_numpy()
    hi_c = pd.Series(np.maximum(c0, c1)).groupby(group).max().to_numpy()
    lo_r = pd.Series(np.minimum(r0, r1)).groupby(group).min().to_numpy()
    hi_r = pd.Series(np.maximum(r0, r1)).groupby(group).max().to_numpy()
    windows = []
    for i in range(len(utile)):  # one window per tile
        c_a = int(max(0, math.floor(lo_c[i])))
        r_a = int(max(0, math.floor(lo_r[i])))
        c_b = int(min(src.width, math.ceil(hi_c[i])))
        r_b = int(min(src.height, math.ceil(hi_r[i])))
        windows.append(Window(c_a, r_a, c_b - c_a, r_b - r_a) if c_b > c_a and r_b > r_a
                       else None)
    return group, windows


def _read_window(src, band: int, window, dem_vrt) -> tuple[np.ndarray, np.ndarray | None]:
    z = src.read(band, window=window, masked=True).astype(float).filled(np.nan)
    dem = None
    if dem_vrt is not None:
        dem = dem_vrt[0].read(dem_vrt[1], window=window, masked=True).astype(float).filled(np.nan)
    return z, dem


def segment_planes(footprints: gpd.GeoSeries, dsm: str | Path | LayerSpec, *,
                   dem: str | Path | LayerSpec | None = None,
                   min_plane_m2: float = 8.0) -> gpd.GeoDataFrame:
    """Roof planes of every footprint from a DSM.

    Parameters
    ----------
    footprints : geopandas.GeoSeries
        Building footprints in a projected metric CRS (any CRS the DSM can be reprojected from).
    dsm : str, Path or gis.config.LayerSpec
        Surface model [m]: ground + buildings + trees.  Pixels of 0.25–1 m suit roof planes.
    dem : str, Path or gis.config.LayerSpec, optional
        Bare-ground model [m], any grid (resampled bilinearly onto the DSM's); without one (and
        where it has no data) the ground is a low percentile of a ring around each footprint.
    min_plane_m2 : float
        Smaller planes (sloped area) are dropped [m²].

    Returns
    -------
    geopandas.GeoDataFrame
        One row per plane, in the footprints' CRS: ``building`` (position in ``footprints``),
        ``plane_id`` (1.. per building, largest first), ``tilt`` [°, 0 = flat],
        ``azimuth`` [°, 180 = south; NaN when flat], ``plan_area_m2`` [m², horizontal],
        ``area_m2`` [m², sloped], ``rmse_m`` [m, plane fit], ``geometry`` (clipped to the
        footprint).

    Examples
    --------
    A 20 m × 10 m gable roof (ridge east–west, 30°) on flat ground, 0.5 m pixels:

    >>> import pathlib, tempfile
    >>> import rasterio, shapely
    >>> from rasterio.transform import from_origin
    >>> tif = pathlib.Path(tempfile.mkdtemp()) / "dsm.tif"
    >>> y = 4331030 - (np.arange(60) + 0.5) * 0.5          # pixel centres, north to south
    >>> x = 534000 + (np.arange(80) + 0.5) * 0.5
    >>> X, Y = np.meshgrid(x, y)
    >>> inside = (X > 534010) & (X < 534030) & (Y > 4331010) & (Y < 4331020)
    >>> z = np.where(inside, 6 + np.tan(np.radians(30)) * (5 - np.abs(Y - 4331015)), 0.0)
    >>> with rasterio.open(tif, "w", driver="GTiff", width=80, height=60, count=1,
    ...                    dtype="float32", crs="EPSG:4548", nodata=-9999,
    ...                    transform=from_origin(534000, 4331030, 0.5, 0.5)) as dst:
    ...     dst.write(z.astype("float32"), 1)
    >>> roofs = gpd.GeoSeries([shapely.box(534010, 4331010, 534030, 4331020)], crs="EPSG:4548")
    >>> planes = segment_planes(roofs, tif)
    >>> planes[["building", "plane_id", "tilt", "azimuth", "area_m2"]].round(0)
       building  plane_id  tilt  azimuth  area_m2
    0         0         1  30.0    180.0    115.0
    1         0         2  30.0      0.0    115.0
    """
    import rasterio.crs
    from rasterio.vrt import WarpedVRT
    from rasterio.warp import Resampling

    columns = ["building", "plane_id", "tilt", "azimuth", "plan_area_m2", "area_m2", "rmse_m"]
    empty = gpd.GeoDataFrame({c: pd.Series(dtype=float) for c in columns},
                             geometry=gpd.GeoSeries([], crs=footprints.crs), crs=footprints.crs)
    geoms = np.asarray(footprints.geometry.array, dtype=object)
    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    if not present.any():
        return empty
    src, band, raster_crs = _open_raster(dsm, "dsm")
    dem_src = None
    if raster_crs is not None and rasterio.crs.CRS.from_user_input(raster_crs).is_geographic:
        src.close()
        raise InputError(Problem("a surface model in degrees: slopes and areas need metres",
                                 file=str(src.name), layer="dsm", value=str(raster_crs),
                                 hint="reproject it to a metric CRS (gdalwarp -t_srs EPSG:…)"))
    try:
        local = gpd.GeoSeries(geoms[present], crs=footprints.crs)
        if raster_crs is not None and footprints.crs is not None and local.crs != raster_crs:
            local = local.to_crs(raster_crs)
        local_geoms = np.asarray(local.array, dtype=object)
        positions = np.flatnonzero(present)
        box = shapely.bounds(local_geoms)
        sane = np.maximum(box[:, 2] - box[:, 0], box[:, 3] - box[:, 1]) <= MAX_FOOTPRINT_M
        local_geoms, positions = local_geoms[sane], positions[sane]
        dem_vrt = None
        if dem is not None:
            dem_src, dem_band, dem_crs = _open_raster(dem, "dem")
            vrt = WarpedVRT(dem_src, src_crs=dem_crs, crs=raster_crs, transform=src.transform,
                            width=src.width, height=src.height, resampling=Resampling.bilinear)
            dem_vrt = (vrt, dem_band)
        pad = GROUND_RING_M + 2 * max(abs(src.res[0]), abs(src.res[1]))
        group, windows = _tile_windows(shapely.bounds(local_geoms), src, pad)
        parts = []
        for g, window in enumerate(windows):  # loop over tiles only
            if window is None:
                continue
            members = np.flatnonzero(group == g)
            table = _tile_planes(src, band, window, local_geoms[members], dem_vrt, min_plane_m2)
            if table is not None:
                table["building"] = positions[members[table["building"].to_numpy() - 1]]
                parts.append(table)
        if dem_vrt is not None:
            dem_vrt[0].close()
    finally:
        src.close()
        if dem_src is not None:
            dem_src.close()
    if not parts:
        return empty
    out = pd.concat(parts, ignore_index=True)
    # largest first; among equal areas, the one facing nearer south
    out = out.assign(_a=out["area_m2"].round(1),
                     _s=np.abs(np.nan_to_num(out["azimuth"], nan=180.0) - 180.0))
    out = out.sort_values(["building", "_a", "_s"], ascending=[True, False, True], kind="stable")
    out["plane_id"] = out.groupby("building").cumcount() + 1
    out = gpd.GeoDataFrame(out[columns + ["geometry"]].reset_index(drop=True),
                           geometry="geometry", crs=raster_crs or footprints.crs)
    if footprints.crs is not None and out.crs != footprints.crs:
        out = out.to_crs(footprints.crs)
    return out


def _tile_planes(src, band: int, window, geoms: np.ndarray, dem_vrt, min_plane_m2: float
                 ) -> pd.DataFrame | None:
    """Planes of the footprints ``geoms`` (raster CRS) in one DSM window, with outlines.

    ``building`` in the result is 1-based into ``geoms``.
    """
    import json

    import rasterio.features

    transform = src.window_transform(window)
    lab = rasterio.features.rasterize(
        zip(geoms, np.arange(1, len(geoms) + 1), strict=True),
        out_shape=(int(window.height), int(window.width)), transform=transform, fill=0,
        dtype="int32").astype(np.int64)
    z, dem_z = _read_window(src, band, window, dem_vrt)
    seg, table = _segment_tile(z, lab, len(geoms), transform, dem_z, min_plane_m2)
    if table.empty:
        return None
    shapes = list(rasterio.features.shapes(seg.astype("int32"), mask=seg > 0,
                                           transform=transform, connectivity=4))
    pieces = gpd.GeoDataFrame({"seg": np.array([v for _, v in shapes], dtype=np.int64)},
                              geometry=shapely.from_geojson([json.dumps(g) for g, _ in shapes]))
    outline = pieces.dissolve("seg").geometry.reindex(table.index)
    footprint = geoms[table["building"].to_numpy() - 1]
    table["geometry"] = shapely.intersection(shapely.make_valid(outline.to_numpy()),
                                             shapely.make_valid(footprint))
    return table


# ---------------------------------------------------------------------------------------------
# PV per plane


@dataclass
class PlaneShade:
    """Shading of roof planes (:func:`plane_shade`).

    Attributes
    ----------
    factor : numpy.ndarray
        Shading factor per plane [0, 1]: of the part kept (of the whole plane when nothing is).
    keep : numpy.ndarray
        Share of each plane left usable by shading [0, 1].
    source : numpy.ndarray
        What decided: ``"irradiance"``, ``"dsm"`` or ``"none"``.
    """

    factor: np.ndarray
    keep: np.ndarray
    source: np.ndarray


def _module_orientation(planes: pd.DataFrame, params: rooftop.PVParams
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pitched flag, module tilt and azimuth [°]: flush on pitched planes, rows on flat ones."""
    tilt = planes["tilt"].to_numpy(dtype=float)
    az = planes["azimuth"].to_numpy(dtype=float)
    pitched = tilt > 0
    return (pitched, np.where(pitched, tilt, params.flat_tilt),
            np.where(pitched, np.nan_to_num(az, nan=180.0), params.flat_azimuth))


def plane_shade(planes: gpd.GeoDataFrame, *, irradiance: str | Path | LayerSpec | None = None,
                params: rooftop.PVParams | None = None,
                dsm: str | Path | LayerSpec | None = None,
                weather: tuple[pd.DataFrame, dict] | None = None) -> PlaneShade:
    """Shading of each roof plane: the irradiance raster where it covers, else the DSM's horizons.

    As :func:`gis.rooftop.pv_potential` does for whole roofs: where an irradiance raster covers a
    plane, its mean there ÷ the reference (the plane kept whole or not at all); elsewhere, with
    ``[pv] shading = "auto"`` and a DSM, sample points on a grid inside the plane (inset by
    ``edge_setback_m``) at the DSM's height + :data:`gis.horizon.POINT_OFFSET_M` (lifted on a
    pitched plane so that its own cells do not shade it, :func:`_lift`), their horizons on the
    DSM (:func:`gis.horizon.roof_horizons`; horizons behind the plane itself cleared,
    :func:`_behind_plane_cleared`) and their factors for the plane's module orientation
    (:func:`gis.rooftop.point_factors`); points below ``min_shading_factor`` take their share of
    the plane out of the usable area (:func:`gis.rooftop.shading_by_roof`).

    Parameters
    ----------
    planes : geopandas.GeoDataFrame
        Plane outlines with ``tilt`` and ``azimuth`` [°] (:func:`segment_planes`).
    irradiance : str, Path or LayerSpec, optional
        Annual irradiation raster [kWh/m²/yr] (:func:`gis.rooftop.shading_factors`).
    params : PVParams, optional
        Shading settings and the raster's unshaded reference.
    dsm : str, Path or LayerSpec, optional
        Surface model [m] (``[layers.dsm]``).
    weather : (data, meta), optional
        As for :func:`gis.rooftop.pv_potential` (default: the climate model at the planes).

    Returns
    -------
    PlaneShade
    """
    params = params or rooftop.pv_params()
    n = len(planes)
    shade = PlaneShade(factor=np.ones(n), keep=np.ones(n), source=np.full(n, "none", object))
    if not n:
        return shade
    todo = np.ones(n, bool)
    if irradiance is not None:
        factors, _, covered = rooftop.shading_factors(
            planes.geometry, irradiance, reference_kwh_m2=params.shading_reference_kwh_m2,
            reference_percentile=params.shading_reference_percentile, with_coverage=True)
        shade.factor[covered] = factors[covered]
        shade.keep[covered] = factors[covered] >= params.min_shading_factor
        shade.source[covered] = "irradiance"
        todo &= ~covered
    if params.shading == "none" or dsm is None or not todo.any():
        return shade
    if weather is None:
        lon, lat = rooftop._site_lonlat(planes)
        weather = solar.climate_model(lat, lon)
    outline = np.asarray(planes.geometry.array, dtype=object)[todo]
    rh = horizon.roof_horizons(outline, dsm=dsm, crs=planes.crs, lift_m=_lift(planes, dsm)[todo],
                               **rooftop.horizon_options(params))
    rows = np.flatnonzero(todo)[rh.owner]  # the plane of each point
    _, module_tilt, module_az = _module_orientation(planes, params)
    ok = np.isfinite(rh.z)  # points where the DSM has no data say nothing
    rows = rows[ok]
    hor = _behind_plane_cleared(rh.horizon_deg[ok], planes["tilt"].to_numpy(dtype=float)[rows],
                                planes["azimuth"].to_numpy(dtype=float)[rows])
    f = rooftop.point_factors(hor, module_tilt[rows], module_az[rows], weather, params)
    factor, keep, has = rooftop.shading_by_roof(f, rows, n, params.min_shading_factor)
    shade.factor[has] = factor[has]
    shade.keep[has] = keep[has]
    shade.source[todo] = "dsm"
    return shade


def _behind_plane_cleared(horizon_deg: np.ndarray, tilt: np.ndarray, azimuth: np.ndarray
                          ) -> np.ndarray:
    """Horizons [°] with the sectors whose horizon lies behind the point's own plane set to 0.

    Seen from a point on a plane of tilt β facing α, the plane itself rises to
    ``atan(tan β × cos(φ − α − 180°))`` in direction φ; whatever stays below that is behind the
    plane and takes no light from it (its own roof, the ridge).  Cleared, it no longer costs the
    sun-hours that a sector's centre ray judges for the whole sector near the plane's edge.
    """
    own = np.degrees(np.arctan(
        np.tan(np.radians(tilt))[:, None]
        * np.cos(np.radians(horizon.sector_azimuths(horizon_deg.shape[1])[None, :]
                            - np.nan_to_num(azimuth)[:, None] - 180.0))))
    return np.where(horizon_deg <= np.maximum(own, 0.0), 0.0, horizon_deg).astype(np.float32)


def _lift(planes: pd.DataFrame, dsm: str | Path | LayerSpec) -> np.ndarray:
    """Height [m] added to the sample points of each plane so that its own DSM cells never rise
    above the plane through the point (and shade it).

    A point takes the height of the cell it lies in, and a cell ahead of it along a ray stands up
    to the rise of half a cell above the plane where the ray meets it: on a plane of tilt β and
    azimuth α, together at most one cell's rise, ``res × tan β × (|sin α| + |cos α|)``; the
    point's offset :data:`gis.horizon.POINT_OFFSET_M` covers part of it, the rest (with
    :data:`LIFT_MARGIN_M`) is added (0 on flat planes).
    """
    import rasterio

    from gis.io import raster_ref

    with rasterio.open(raster_ref(dsm)[0]) as src:
        res = float(max(abs(src.transform.a), abs(src.transform.e)))
    tilt = np.radians(planes["tilt"].to_numpy(dtype=float))
    az = np.radians(np.nan_to_num(planes["azimuth"].to_numpy(dtype=float)))
    rise = res * np.tan(tilt) * (np.abs(np.sin(az)) + np.abs(np.cos(az)))
    return np.maximum(rise + LIFT_MARGIN_M - horizon.POINT_OFFSET_M, 0.0)


def plane_shading(planes: gpd.GeoDataFrame, *, irradiance: str | Path | LayerSpec | None = None,
                  params: rooftop.PVParams | None = None,
                  dsm: str | Path | LayerSpec | None = None,
                  weather: tuple[pd.DataFrame, dict] | None = None) -> np.ndarray:
    """Shading factor per plane [-] (:func:`plane_shade`): the irradiance raster's plane mean ÷
    reference where it covers, else the DSM's horizons, else 1.

    Parameters
    ----------
    planes, irradiance, params, dsm, weather
        As for :func:`plane_shade`.

    Returns
    -------
    numpy.ndarray
        Factor in [0, 1] per plane.
    """
    return plane_shade(planes, irradiance=irradiance, params=params, dsm=dsm,
                       weather=weather).factor


def plane_potential(planes: gpd.GeoDataFrame, buildings: pd.DataFrame, *,
                    params: rooftop.PVParams | None = None,
                    weather: tuple[pd.DataFrame, dict] | None = None,
                    irradiance: str | Path | LayerSpec | None = None,
                    known_yields: pd.DataFrame | None = None,
                    dsm: str | Path | LayerSpec | None = None) -> gpd.GeoDataFrame:
    """PV per roof plane: flush modules on pitched planes, winter-solstice rows on flat ones.

    Parameters
    ----------
    planes : geopandas.GeoDataFrame
        From :func:`segment_planes` (metric CRS).
    buildings : DataFrame
        The buildings ``planes["building"]`` points into (by position): ``id``, ``category``.
    params : PVParams, optional
        Rooftop assumptions (:func:`gis.rooftop.pv_params`).
    weather, known_yields
        As for :func:`gis.rooftop.pv_potential`.
    irradiance, dsm : optional
        Annual irradiation raster and surface model for :func:`plane_shade`.

    Returns
    -------
    geopandas.GeoDataFrame
        :data:`PLANE_COLUMNS`, then ``module_tilt``, ``module_azimuth`` [°], ``reason`` ("" when
        the plane gets PV), ``shading_source``, ``unshaded_kwh`` [kWh/yr, the whole usable area
        without shading] and ``geometry``.  Usable area [m²] = sloped area × (outline set back by
        ``edge_setback_m`` ÷ outline) × usable fraction × category factor × share kept by
        shading; capacity [kWp] = usable area × module-to-roof ratio × module efficiency ×
        1 kW/m²; annual [kWh/yr] = capacity × specific yield × shading factor.
    """
    params = params or rooftop.pv_params()
    n = len(planes)
    pos = planes["building"].to_numpy(dtype=np.int64)
    tilt = planes["tilt"].to_numpy(dtype=float)
    az = planes["azimuth"].to_numpy(dtype=float)
    pitched, module_tilt, module_az = _module_orientation(planes, params)
    spec_yield = np.full(n, np.nan)
    if n:
        spec_yield, _ = rooftop._class_yields(pitched, module_tilt, module_az, params,
                                              known_yields, weather, planes)
    gcr = (params.ground_coverage_ratio if params.ground_coverage_ratio is not None
           else rooftop.solstice_gcr(rooftop._site_lonlat(planes)[1], params.flat_tilt)
           if n else 1.0)
    ratio = np.where(pitched, 1.0, gcr)
    outline = np.asarray(planes.geometry.array, dtype=object)
    outline_area = np.nan_to_num(shapely.area(outline))
    shrunk = (shapely.area(shapely.buffer(outline, -params.edge_setback_m, join_style="mitre"))
              if params.edge_setback_m > 0 else outline_area)
    with np.errstate(invalid="ignore", divide="ignore"):
        kept = np.where(outline_area > 0, np.nan_to_num(shrunk) / outline_area, 0.0)
    category = (buildings["category"].astype("string").fillna("other").to_numpy(dtype=object)[pos]
                if "category" in buildings.columns else np.full(n, "other", dtype=object))
    factor = pd.Series(category).map(params.category_factor).fillna(1.0).to_numpy(dtype=float)
    fraction = np.where(pitched, params.usable_fraction_pitched, params.usable_fraction_flat)
    area = planes["area_m2"].to_numpy(dtype=float)
    gross = area * kept * fraction * factor
    shade = plane_shade(planes, irradiance=irradiance, params=params, dsm=dsm, weather=weather)
    shading = shade.factor
    kept = gross * shade.keep  # sample points below min_shading_factor take their share out
    north = pitched & (rooftop._angle_from_north(module_az) <= params.north_band_deg)
    reason = np.select([north, gross < params.min_usable_area_m2,
                        kept < params.min_usable_area_m2],
                       ["north-facing", "roof too small", "shaded"], default="")
    usable = np.where(reason == "", kept, 0.0)
    capacity = usable * ratio * params.module_efficiency
    annual = capacity * np.nan_to_num(spec_yield) * shading
    # what the plane would give with no shading by neighbours (its whole usable area)
    unshaded = (np.where(np.isin(reason, ("", "shaded")), gross, 0.0) * ratio
                * params.module_efficiency * np.nan_to_num(spec_yield))
    ids = (buildings["id"].astype("string").to_numpy(dtype=object)[pos]
           if "id" in buildings.columns else pos.astype(str))
    out = pd.DataFrame({
        "building_id": pd.array(ids, dtype="string"),
        "plane_id": planes["plane_id"].to_numpy(dtype=np.int64),
        "tilt": tilt, "azimuth": az, "area_m2": area, "usable_area_m2": usable,
        "capacity_kwp": capacity, "specific_yield_kwh_kwp": spec_yield,
        "shading_factor": shading, "annual_kwh": annual,
        "module_tilt": module_tilt, "module_azimuth": module_az,
        "reason": pd.array(reason, dtype="string"),
        "shading_source": pd.array(shade.source, dtype="string"), "unshaded_kwh": unshaded,
        "building": pos,
    })
    return gpd.GeoDataFrame(out, geometry=planes.geometry.array.copy(), crs=planes.crs)


def buildings_from_planes(pv: gpd.GeoDataFrame, planes: pd.DataFrame, *,
                          grid_co2_t_per_mwh: float = 0.5703,
                          coal_gce_per_kwh: float = 290.0) -> tuple[gpd.GeoDataFrame,
                                                                    pd.DataFrame]:
    """Building rows that sum their planes.

    For every building with at least one plane: ``roof_area_m2``, ``usable_area_m2``,
    ``capacity_kwp`` and ``annual_kwh`` are the sums over its planes (existing PV taken off the
    planes in proportion to their capacity, so that the sums hold); ``specific_yield_kwh_kwp`` and
    ``shading_factor`` the capacity-weighted means; ``roof_type``, ``roof_tilt``, ``roof_azimuth``
    those of the largest plane; ``module_tilt`` and ``module_azimuth`` those of the plane with the
    largest capacity; ``shading_source`` that of the largest plane; ``unshaded_kwh`` the planes'
    sum (existing PV taken off their unshaded capacity) and ``shading_loss_kwh`` = unshaded −
    annual.  Other buildings keep their footprint-based figures.  Adds ``roof_planes``
    (number of planes).

    Parameters
    ----------
    pv : geopandas.GeoDataFrame
        From :func:`gis.rooftop.pv_potential`.
    planes : DataFrame
        From :func:`plane_potential` (``building`` = row position in ``pv``).
    grid_co2_t_per_mwh, coal_gce_per_kwh : float
        As for :func:`gis.rooftop.pv_potential`.

    Returns
    -------
    pv : geopandas.GeoDataFrame
        A new frame (the input is not changed).
    planes : DataFrame
        The planes with existing PV taken off.
    """
    out = pv.copy()
    n = len(pv)
    planes = planes.copy()
    pos = planes["building"].to_numpy(dtype=np.int64)
    count = np.bincount(pos, minlength=n)
    has = count > 0
    out["roof_planes"] = count
    if not has.any():
        return out, planes

    def total(col: str, frame=planes) -> np.ndarray:
        return np.bincount(pos, frame[col].to_numpy(dtype=float), n)

    pv_kw = np.nan_to_num(pd.to_numeric(out["pv_kw"], errors="coerce").to_numpy(dtype=float))
    planes = _existing_pv_off(planes, pv_kw, pos, n)
    cap = planes["capacity_kwp"].to_numpy(dtype=float)
    yld = np.nan_to_num(planes["specific_yield_kwh_kwp"].to_numpy(dtype=float))
    area = planes["area_m2"].to_numpy(dtype=float)
    roof, usable, capacity, annual = (total("area_m2"), total("usable_area_m2"),
                                      total("capacity_kwp"), total("annual_kwh"))
    cap_yield = np.bincount(pos, cap * yld, n)
    area_yield = np.bincount(pos, area * yld, n)
    area_shade = np.bincount(pos, area * planes["shading_factor"].to_numpy(dtype=float), n)
    with np.errstate(invalid="ignore", divide="ignore"):
        spec = np.where(capacity > 0, cap_yield / capacity, area_yield / roof)
        shade = np.where(cap_yield > 0, annual / cap_yield, area_shade / roof)
    # the largest plane, and the plane with the largest capacity, per building
    largest = planes.assign(_a=area).sort_values(["building", "_a"], ascending=[True, False],
                                                 kind="stable").drop_duplicates("building")
    best = planes.assign(_c=cap, _a=area).sort_values(["building", "_c", "_a"],
                                                      ascending=[True, False, False],
                                                      kind="stable").drop_duplicates("building")
    lb, bb = largest["building"].to_numpy(), best["building"].to_numpy()
    reason = out["reason"].astype("string").to_numpy(dtype=object).copy()
    reason[has] = ""
    no_cap = has & (capacity <= 0)
    reason_largest = np.full(n, "", dtype=object)
    reason_largest[lb] = largest["reason"].astype("string").fillna("").to_numpy(dtype=object)
    reason[no_cap] = np.where(reason_largest[no_cap] == "", "roof too small",
                              reason_largest[no_cap])

    cols = {"roof_area_m2": roof, "usable_area_m2": usable, "capacity_kwp": capacity,
            "specific_yield_kwh_kwp": spec, "shading_factor": shade, "annual_kwh": annual,
            "co2_t": annual * grid_co2_t_per_mwh / 1000.0, "coal_t": annual * coal_gce_per_kwh / 1e6}
    for col, values in cols.items():
        col_values = out[col].to_numpy(dtype=float).copy()
        col_values[has] = values[has]
        out[col] = col_values
    out["reason"] = pd.array(reason, dtype="string")
    tilt_l = largest["tilt"].to_numpy(dtype=float)
    for col, values, rows in (("roof_tilt", tilt_l, lb),
                              ("roof_azimuth", largest["azimuth"].to_numpy(dtype=float), lb),
                              ("module_tilt", best["module_tilt"].to_numpy(dtype=float), bb),
                              ("module_azimuth", best["module_azimuth"].to_numpy(dtype=float), bb)):
        col_values = out[col].to_numpy(dtype=float).copy()
        col_values[rows] = values
        out[col] = col_values
    roof_type = out["roof_type"].astype("string").to_numpy(dtype=object).copy()
    roof_type[lb] = np.where(tilt_l > 0, "pitched", "flat")
    out["roof_type"] = pd.array(roof_type, dtype="string")
    if "shading_source" in planes.columns:
        source = out["shading_source"].astype("string").to_numpy(dtype=object).copy()
        source[lb] = largest["shading_source"].astype("string").to_numpy(dtype=object)
        out["shading_source"] = pd.array(source, dtype="string")
    if "unshaded_kwh" in planes.columns:
        unshaded = _unshaded_after_existing(planes, pv_kw, pos, n)
        out["unshaded_kwh"] = np.where(has, unshaded, out["unshaded_kwh"].to_numpy(dtype=float))
        out["shading_loss_kwh"] = np.where(
            has, np.maximum(unshaded - annual, 0.0), out["shading_loss_kwh"].to_numpy(dtype=float))
    out["existing_pv_m2"] = np.where(has, np.minimum(
        out["existing_pv_m2"].to_numpy(dtype=float), roof), out["existing_pv_m2"].to_numpy(dtype=float))
    return out, planes


def _unshaded_after_existing(planes: pd.DataFrame, pv_kw: np.ndarray, pos: np.ndarray, n: int
                             ) -> np.ndarray:
    """Unshaded energy per building [kWh/yr]: its planes' sum, existing PV [kWp] taken off their
    unshaded capacity in proportion (as the footprint model takes it off the unshaded area)."""
    energy = planes["unshaded_kwh"].to_numpy(dtype=float)
    yld = planes["specific_yield_kwh_kwp"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        cap = np.where(yld > 0, energy / yld, 0.0)
    cap_b = np.bincount(pos, cap, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        keep_b = np.where(cap_b > 0, np.clip(1 - pv_kw / cap_b, 0, 1), 0.0)
    return np.bincount(pos, energy, n) * keep_b


def _existing_pv_off(planes: pd.DataFrame, pv_kw: np.ndarray, pos: np.ndarray, n: int
                     ) -> pd.DataFrame:
    """Existing PV [kWp] taken off each building's planes in proportion to their capacity."""
    cap_b = np.bincount(pos, planes["capacity_kwp"].to_numpy(dtype=float), n)
    with np.errstate(invalid="ignore", divide="ignore"):
        keep_b = np.where(cap_b > 0, np.clip(1 - pv_kw / cap_b, 0, 1), 0.0)
    for col in ("usable_area_m2", "capacity_kwp", "annual_kwh"):
        planes[col] = planes[col].to_numpy(dtype=float) * keep_b[pos]
    filled = ((cap_b > 0) & (keep_b == 0))[pos] & (planes["reason"] == "").to_numpy(dtype=bool)
    planes.loc[filled, "reason"] = "existing PV fills the roof"
    return planes


def coverage_problems(pv: pd.DataFrame, dsm: str | Path | LayerSpec, *,
                      dem: str | Path | LayerSpec | None = None) -> list[Problem]:
    """A warning when few roofs that could hold a plane got one (a DSM that does not fit).

    Parameters
    ----------
    pv : DataFrame
        Buildings after :func:`buildings_from_planes` (``roof_planes`` = planes found).
    dsm, dem
        The rasters used, named in the message.

    Returns
    -------
    list of Problem
        One warning when, of at least five footprints of 30 m² or more, under a fifth got planes.
    """
    from gis.io import raster_ref

    geoms = np.asarray(pv.geometry.array, dtype=object) if "geometry" in pv else None
    if geoms is None or "roof_planes" not in pv:
        return []
    big = np.nan_to_num(shapely.area(geoms)) >= 30.0
    found = (pv["roof_planes"].to_numpy() > 0) & big
    if big.sum() < 5 or found.sum() >= 0.2 * big.sum():
        return []
    hint = "check that the DSM covers the buildings and holds heights in metres"
    hint += (", and that [layers.dem] is the bare ground, not a surface model" if dem is not None
             else "")
    return [Problem(f"roof planes found on {int(found.sum())} of {int(big.sum())} buildings of "
                    f"30 m² or more", file=str(raster_ref(dsm)[0]), layer="dsm",
                    severity="warning", hint=hint)]


def roof_planes(buildings: gpd.GeoDataFrame, pv: gpd.GeoDataFrame,
                dsm: str | Path | LayerSpec, *, dem: str | Path | LayerSpec | None = None,
                params: rooftop.PVParams | None = None,
                weather: tuple[pd.DataFrame, dict] | None = None,
                irradiance: str | Path | LayerSpec | None = None,
                known_yields: pd.DataFrame | None = None,
                grid_co2_t_per_mwh: float = 0.5703, coal_gce_per_kwh: float = 290.0
                ) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Roof planes with their PV, and the buildings' rows summed from them.

    Parameters
    ----------
    buildings : geopandas.GeoDataFrame
        Canonical buildings (metric CRS).
    pv : geopandas.GeoDataFrame
        :func:`gis.rooftop.pv_potential` of the same buildings (same row order).
    dsm, dem
        As for :func:`segment_planes`.
    params, weather, irradiance, known_yields, grid_co2_t_per_mwh, coal_gce_per_kwh
        As for :func:`gis.rooftop.pv_potential`; ``params.min_plane_m2`` is the smallest plane.

    Returns
    -------
    pv : geopandas.GeoDataFrame
        Buildings, rows with planes summed from them (:func:`buildings_from_planes`).
    planes : geopandas.GeoDataFrame
        The ``roof_planes`` layer: :data:`PLANE_COLUMNS`, ``module_tilt``, ``module_azimuth``,
        ``reason``, ``geometry``.
    """
    params = params or rooftop.pv_params()
    geo = segment_planes(buildings.geometry, dsm, dem=dem, min_plane_m2=params.min_plane_m2)
    planes = plane_potential(geo, buildings, params=params, weather=weather,
                             irradiance=irradiance, known_yields=known_yields, dsm=dsm)
    pv, planes = buildings_from_planes(pv, planes, grid_co2_t_per_mwh=grid_co2_t_per_mwh,
                                       coal_gce_per_kwh=coal_gce_per_kwh)
    layer = planes[[*PLANE_COLUMNS, "module_tilt", "module_azimuth", "reason", "shading_source",
                    "geometry"]]
    return pv, gpd.GeoDataFrame(layer.reset_index(drop=True), geometry="geometry",
                                crs=planes.crs)

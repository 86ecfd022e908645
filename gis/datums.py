"""Chinese web-map datums: GCJ-02 and BD-09 to WGS84 (CGCS2000 to within centimetres).

Footprints traced on AMap/Gaode, Tencent or Baidu maps are not in WGS84: GCJ-02 ("Mars
coordinates") shifts every point by a smooth, position-dependent 300–700 m in mainland China, and
BD-09 (Baidu) adds a further rotation and offset on top of GCJ-02.  A layer with
``datum = "gcj02"`` or ``"bd09"`` in the run file is converted to WGS84 before anything else
(:func:`to_wgs84`).

The forward transform (WGS84 → GCJ-02, and GCJ-02 → BD-09) is the published one, as implemented
and tested in the open reference implementations (googollee/eviltransform, MIT licence;
wandergis/coordTransform_py, MIT licence): Krasovsky semi-major axis 6 378 245 m, eccentricity²
0.00669342162296594323, the two trigonometric offset series in (lon − 105°, lat − 35°); no shift
outside mainland China's bounding box.  The inverse has no closed form: it is solved by fixed-point
iteration ``p ← p − (f(p) − q)``, which converges to below a millimetre in three or four steps because the
shift changes by less than 1e-4 of the distance between two points.

All functions take and return numpy arrays (longitude, latitude in degrees) and never loop in
Python over points.
"""

from __future__ import annotations

import numpy as np

#: Krasovsky 1940 ellipsoid, as the published GCJ-02 transform uses it
_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = np.pi * 3000.0 / 180.0
DATUMS = ("wgs84", "gcj02", "bd09")
#: fixed-point iterations of the inverse at most; each gains about three decimal places, so the
#: tolerance (1e-10°, about 0.01 mm) is reached in 4 or 5
_ITERATIONS = 12
_TOLERANCE_DEG = 1e-10


def out_of_china(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """True where the published transform applies no shift (outside mainland China's box)."""
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    return (lon < 72.004) | (lon > 137.8347) | (lat < 0.8293) | (lat > 55.8271)


def _series(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pi = np.pi
    common = (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0
    lat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
           + common
           + (20.0 * np.sin(y * pi) + 40.0 * np.sin(y / 3.0 * pi)) * 2.0 / 3.0
           + (160.0 * np.sin(y / 12.0 * pi) + 320.0 * np.sin(y * pi / 30.0)) * 2.0 / 3.0)
    lon = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
           + common
           + (20.0 * np.sin(x * pi) + 40.0 * np.sin(x / 3.0 * pi)) * 2.0 / 3.0
           + (150.0 * np.sin(x / 12.0 * pi) + 300.0 * np.sin(x / 30.0 * pi)) * 2.0 / 3.0)
    return lon, lat


def wgs84_to_gcj02(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 → GCJ-02 [°] (the published forward transform).

    Examples
    --------
    The reference point of the open implementations (Shanghai):

    >>> lon, lat = wgs84_to_gcj02(121.5272106, 31.1774276)
    >>> round(float(lon), 9), round(float(lat), 9)
    (121.531541859, 31.175303984)
    """
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    dlon, dlat = _series(lon - 105.0, lat - 35.0)
    rad = lat / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(rad) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = dlat * 180.0 / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * np.pi)
    dlon = dlon * 180.0 / (_A / sqrt_magic * np.cos(rad) * np.pi)
    outside = out_of_china(lon, lat)
    return np.where(outside, lon, lon + dlon), np.where(outside, lat, lat + dlat)


def gcj02_to_bd09(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 → BD-09 [°] (Baidu's published forward transform)."""
    x, y = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    z = np.hypot(x, y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def wgs84_to_bd09(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 → BD-09 [°]."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def _invert(forward, lon, lat) -> tuple[np.ndarray, np.ndarray]:
    qx, qy = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    px, py = qx.copy(), qy.copy()
    for _ in range(_ITERATIONS):  # whole-array steps, not a loop over points
        fx, fy = forward(px, py)
        dx, dy = fx - qx, fy - qy
        px, py = px - dx, py - dy
        if not (np.nanmax(np.abs(dx), initial=0.0) > _TOLERANCE_DEG
                or np.nanmax(np.abs(dy), initial=0.0) > _TOLERANCE_DEG):
            break
    return px, py


def gcj02_to_wgs84(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 → WGS84 [°], the iterative inverse of :func:`wgs84_to_gcj02` (error < 1 mm).

    Examples
    --------
    >>> lon, lat = gcj02_to_wgs84(121.531541859215, 31.17530398364597)
    >>> round(float(lon), 7), round(float(lat), 7)
    (121.5272106, 31.1774276)
    """
    return _invert(wgs84_to_gcj02, lon, lat)


def bd09_to_wgs84(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """BD-09 → WGS84 [°], the iterative inverse of :func:`wgs84_to_bd09`."""
    return _invert(wgs84_to_bd09, lon, lat)


def to_wgs84(geometries: np.ndarray, datum: str) -> np.ndarray:
    """Shapely geometries in lon/lat of ``datum`` → the same geometries in WGS84 lon/lat.

    Parameters
    ----------
    geometries : array of shapely geometries
        Longitude/latitude [°] in ``datum``.
    datum : {"wgs84", "gcj02", "bd09"}
    """
    import shapely

    if datum == "wgs84":
        return np.asarray(geometries)
    inverse = {"gcj02": gcj02_to_wgs84, "bd09": bd09_to_wgs84}[datum]

    def convert(xy: np.ndarray) -> np.ndarray:
        x, y = inverse(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(np.asarray(geometries), convert)


def shift_m(lon, lat, datum: str = "gcj02") -> np.ndarray:
    """How far [m] ``datum`` moves WGS84 points (east, north), per point: shape (n, 2)."""
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    forward = wgs84_to_gcj02 if datum == "gcj02" else wgs84_to_bd09
    fx, fy = forward(lon, lat)
    m_per_deg = np.pi * 6371008.8 / 180.0
    return np.column_stack([(fx - lon) * m_per_deg * np.cos(np.radians(lat)),
                            (fy - lat) * m_per_deg])


__all__ = ["DATUMS", "wgs84_to_gcj02", "gcj02_to_wgs84", "wgs84_to_bd09", "bd09_to_wgs84",
           "gcj02_to_bd09", "to_wgs84", "out_of_china", "shift_m"]

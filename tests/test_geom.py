"""Shared geometry helpers: the grouped union equals geopandas' dissolve, geometry for geometry."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gis._geom import dissolve_sum, union_by_group


def _polygons(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(0, 100, n), rng.uniform(0, 100, n)
    w, h = rng.uniform(1, 15, n), rng.uniform(1, 15, n)
    return shapely.box(x, y, x + w, y + h)


@pytest.mark.parametrize("method", ["unary", "disjoint_subset"])
def test_grouped_union_is_dissolve_geometry_for_geometry(method):
    # overlapping boxes in groups of 1 to 40 members, unsorted: the same WKB as dissolve
    geoms = _polygons(400, 7)
    key = np.random.default_rng(8).integers(0, 60, 400) ** 2 % 37  # uneven group sizes
    frame = pd.DataFrame({"k": key, "v": np.arange(400.0)})
    table, union = dissolve_sum(frame, geoms, ["k"], ["v"], method=method)
    ref = gpd.GeoDataFrame(frame, geometry=geoms).dissolve(
        by=["k"], aggfunc={"v": "sum"}, method=method).reset_index()
    assert table["k"].tolist() == ref["k"].tolist()
    assert table["v"].tolist() == ref["v"].tolist()
    assert np.array_equal(shapely.to_wkb(union), shapely.to_wkb(ref.geometry.to_numpy()))


def test_grouped_union_by_hand():
    # two unit squares side by side make a 2 m² rectangle; a missing geometry and a row of no
    # group (code −1) are left out; a code no row has gives None
    sq = [shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1), None, shapely.box(9, 9, 10, 10)]
    out = union_by_group(np.array(sq, dtype=object), np.array([0, 0, 0, -1]))
    assert len(out) == 1 and out[0].area == 2.0 and out[0].bounds == (0.0, 0.0, 2.0, 1.0)
    out = union_by_group(np.array(sq[:2], dtype=object), np.array([2, 0]))
    assert out[1] is None and out[0].equals(sq[1]) and out[2].equals(sq[0])


def test_coverage_union_of_cells_is_one_rectangle():
    # a 3 × 2 block of 10 m cells, one group: a single 30 × 20 m rectangle of 600 m²
    cells = shapely.box(np.repeat([0, 10, 20], 2), np.tile([0, 10], 3),
                        np.repeat([10, 20, 30], 2), np.tile([10, 20], 3))
    out = union_by_group(cells, np.zeros(6, dtype=np.int64), method="coverage")
    assert out[0].area == 600.0 and shapely.normalize(out[0]).equals(shapely.box(0, 0, 30, 20))

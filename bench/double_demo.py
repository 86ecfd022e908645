"""The demo district twice, side by side: the "doubled demo" (114 780 buildings) of issue 14.

Usage::

    python bench/double_demo.py --out /tmp/demo-x2          # from layers/demo (written if missing)
    python bench/bench_demo.py --engines local --floor --demo /tmp/demo-x2

``gis-planner demo --scale 2`` doubles the parcels on the same land, so its buildings grow only
to 85 431 (footprints keep their sizes).  This script doubles the district itself: every layer of
the demo is written again with a copy of each feature moved :data:`SHIFT_M` east (27 648 m, more
than the district is wide and a whole number of the irradiance raster's 256-pixel tiles), so
every building, parcel, forest stand, street and zone is there twice and nothing overlaps.

The copies keep every value; their identifiers get the suffix ``-2`` and the names of their
streets and zones ``（二）`` so that ids stay unique and each copy has its own streets and
barrier.  Each file keeps its format, layer name, encoding (the land-use shapefile stays GBK
with no ``.cpg``) and coordinate system (EPSG:4548, the land use in EPSG:4527 with its zone
prefix, the zones in EPSG:4326).  The irradiance raster becomes one tiled GeoTIFF over both
districts' rasters, its empty tiles between them left out (sparse).  The run file is the demo's,
with the project's name marked ×2 and the outputs in ``output`` beside the layers.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import shapely

REPO = Path(__file__).resolve().parents[1]
#: East shift of the copy [m]: 13 824 pixels of 2 m, 54 tiles of 256 pixels, > the 27.4 km district.
SHIFT_M = 27_648.0
ID_SUFFIX = "-2"
NAME_SUFFIX = "（二）"

# file → (layer, id columns suffixed, name columns suffixed, encoding)
VECTORS = {
    "buildings.gpkg": ("buildings", ["BSM"], ["JDMC"], None),
    "forest.gpkg": ("forest", ["XBH"], [], None),
    "streets.fgb": ("streets", [], ["JDMC"], None),
    "zones.geojson": ("zones", [], ["MC"], None),
    "landuse.shp": ("landuse", ["BSM"], [], "gbk"),
}


def doubled(gdf: gpd.GeoDataFrame, ids: list[str], names: list[str]) -> gpd.GeoDataFrame:
    """The layer and its copy :data:`SHIFT_M` east (moved in a metric CRS of the same
    projection; EPSG:4326 through EPSG:4548)."""
    geographic = gdf.crs.is_geographic
    work = gdf.to_crs("EPSG:4548") if geographic else gdf
    copy = work.copy()
    copy.geometry = shapely.transform(work.geometry.values, lambda xy: xy + [SHIFT_M, 0.0])
    for c in ids:
        copy[c] = copy[c].astype(str) + ID_SUFFIX
    for c in names:
        copy[c] = copy[c].where(copy[c].isna(), copy[c].astype(str) + NAME_SUFFIX)
    out = gpd.GeoDataFrame(
        gpd.pd.concat([work, copy], ignore_index=True), geometry=work.geometry.name, crs=work.crs
    )
    return out.to_crs(gdf.crs) if geographic else out


def double_vectors(src: Path, out: Path) -> dict[str, int]:
    from gis import demo

    counts = {}
    for name, (layer, ids, names, encoding) in VECTORS.items():
        gdf = pyogrio.read_dataframe(src / name, layer=layer, encoding=encoding)
        two = doubled(gdf, ids, names)
        counts[name] = len(two)
        if name.endswith(".shp"):
            demo._write_gbk_shapefile(two, out / name)
        elif name.endswith(".gpkg"):
            with demo._fixed_gpkg_timestamp():
                demo._write_vector(two, out / name, "GPKG", layer=layer)
        elif name.endswith(".geojson"):
            demo._write_vector(two, out / name, "GeoJSON", layer=layer,
                               layer_options={"COORDINATE_PRECISION": 7, "RFC7946": "NO"})
        else:
            demo._write_vector(two, out / name, "FlatGeobuf", layer=layer)
    return counts


def double_raster(src: Path, out: Path) -> tuple[int, int]:
    """Both districts' irradiance in one sparse tiled GeoTIFF (width, height in pixels)."""
    import rasterio
    from rasterio.windows import Window

    with rasterio.open(src) as r:
        data, profile, tags = r.read(1), r.profile.copy(), r.tags()
        description = r.descriptions[0]
        res = r.res[0]
    shift_px = SHIFT_M / res
    if shift_px != int(shift_px):
        raise SystemExit(f"{src}: pixel size {res} m does not divide the shift {SHIFT_M} m")
    shift_px = int(shift_px)
    profile.update(width=shift_px + data.shape[1], sparse_ok=True)
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(data, 1, window=Window(0, 0, data.shape[1], data.shape[0]))
        dst.write(data, 1, window=Window(shift_px, 0, data.shape[1], data.shape[0]))
        dst.update_tags(**tags)
        dst.set_band_description(1, description)
    return profile["width"], profile["height"]


def run_file(src: Path, out: Path) -> None:
    text = (src / "run.toml").read_text(encoding="utf-8")
    text = re.sub(r'^(name = ")(.*)(")$', r"\1\2 ×2\3", text, count=1, flags=re.M)
    text = re.sub(r'^dir = ".*"$', 'dir = "output"', text, count=1, flags=re.M)
    (out / "run.toml").write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, default=REPO / "layers" / "demo",
                        help="the demo's layers (default layers/demo, written if missing)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the doubled demo")
    args = parser.parse_args()
    if not (args.src / "run.toml").exists():
        from gis.demo import make_demo

        make_demo(args.src)
    if args.out.resolve() == args.src.resolve():
        raise SystemExit("--out must differ from --src")
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    counts = double_vectors(args.src, args.out)
    size = double_raster(args.src / "irradiance.tif", args.out / "irradiance.tif")
    run_file(args.src, args.out)
    print({**counts, "irradiance.tif": f"{size[0]} × {size[1]} px"}, file=sys.stderr)
    print(args.out / "run.toml")


if __name__ == "__main__":
    np.seterr(all="raise")
    main()

"""A corpus of bad inputs, each made from a small good layer, with the message it must give.

Nothing is stored in the repository: :func:`build` writes every bad file into a folder.  Each
:class:`Case` says which run-file tables it needs and, for each message it must produce, the
file the message must name and the words it must contain.  Cases use different layer slots
(buildings, land use, zones, …), so several independent cases can share one run file.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

X0, Y0 = 520_000.0, 4_330_000.0  # EPSG:4548 (CGCS2000 GK CM 117E), in Dongli
CRS = "EPSG:4548"


# ------------------------------------------------------------------------------------------------
# Good small layers
# ------------------------------------------------------------------------------------------------

def buildings(n: int = 6) -> gpd.GeoDataFrame:
    """n buildings, 20 m × 20 m each (400 m²), 1–n floors of 3 m."""
    xs = X0 + 10 + np.arange(n) * 40.0
    floors = np.arange(1, n + 1, dtype=float)
    return gpd.GeoDataFrame(
        {"BSM": [f"b{i}" for i in range(1, n + 1)], "JZLB": ["住宅"] * n, "CS": floors,
         "GD": 3.0 * floors}, geometry=shapely.box(xs, Y0 + 10, xs + 20, Y0 + 30), crs=CRS)


def parcels() -> gpd.GeoDataFrame:
    """Three 100 m × 100 m parcels (1 ha each): forest, river, grassland (GB/T 21010)."""
    xs = X0 + np.arange(3) * 100.0
    return gpd.GeoDataFrame({"BSM": ["p1", "p2", "p3"], "DLBM": ["0301", "1101", "0404"],
                             "TBDLMJ": [10000.0, 10000.0, 10000.0]},
                            geometry=shapely.box(xs, Y0, xs + 100, Y0 + 100), crs=CRS)


def zones(dx: float = 0.0) -> gpd.GeoDataFrame:
    """One barrier zone over the three parcels (3 ha), shifted ``dx`` metres east."""
    return gpd.GeoDataFrame({"MC": ["屏障区"], "GKJB": ["barrier"]},
                            geometry=[shapely.box(X0 + dx, Y0, X0 + dx + 300, Y0 + 100)], crs=CRS)


BUILDING_COLUMNS = {"id": "BSM", "category": "JZLB", "floors": "CS", "height": "GD"}
ZONE_COLUMNS = {"name": "MC", "level": "GKJB"}


def write_raster(path: Path, *, crs: str | None = CRS, nodata: float | None = -9999.0,
                 fill: float = 1300.0, x0: float = X0 - 100, y0: float = Y0 + 200,
                 dtype: str = "float32") -> Path:
    """A 20 m raster of 20 × 30 pixels over the district, every pixel ``fill``."""
    import rasterio
    from rasterio.transform import Affine

    profile = {"driver": "GTiff", "width": 30, "height": 20, "count": 1, "dtype": dtype,
               "transform": Affine(20.0, 0.0, x0, 0.0, -20.0, y0)}
    if crs:
        profile["crs"] = crs
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.full((1, 20, 30), fill, dtype=dtype))
    return path


def epw_text(hours: int = 8760) -> str:
    """A syntactically valid EPW (EnergyPlus weather) file of ``hours`` hourly records."""
    head = [
        "LOCATION,Tianjin,TJ,CHN,SRC-TMYx,545270,39.083,117.067,8.0,5.0",
        "DESIGN CONDITIONS,0", "TYPICAL/EXTREME PERIODS,0", "GROUND TEMPERATURES,0",
        "HOLIDAYS/DAYLIGHT SAVINGS,No,0,0,0", "COMMENTS 1,test", "COMMENTS 2,test",
        "DATA PERIODS,1,1,Data,Sunday, 1/ 1,12/31",
    ]
    stamps = np.arange("2023-01-01T00", "2024-01-01T00", dtype="datetime64[h]")[:hours]
    rows = []
    for t in stamps.astype(object):  # a fixture of at most 8760 lines, not per-building work
        hour = t.hour + 1
        sun = max(0.0, np.sin((hour - 6) / 12 * np.pi))
        ghi, dni, dhi = 600 * sun, 500 * sun, 150 * sun
        rows.append(f"{t.year},{t.month},{t.day},{hour},60,?9?9?9?9E0?9?9?9*9*9?9?9?9?9?9?9*9?9*9*9?9*9,"
                    f"10.0,0.0,50,101325,0,0,300,{ghi:.0f},{dni:.0f},{dhi:.0f},0,0,0,0,"
                    f"180,2.0,5,5,10.0,77777,9,999999999,0,0.1,0,88,0.2,0.0,1.0")
    return "\n".join(head + rows) + "\n"


def write_osm(path: Path, polygons: list[tuple[list[tuple[float, float]], dict[str, str]]]) -> Path:
    """An OSM XML file with one closed way per polygon (ring of lon/lat) and its tags."""
    nodes, ways, nid = [], [], 1
    for wid, (ring, tags) in enumerate(polygons, start=1):
        refs = []
        for lon, lat in ring[:-1]:
            nodes.append(f'<node id="{nid}" version="1" lat="{lat:.7f}" lon="{lon:.7f}"/>')
            refs.append(nid)
            nid += 1
        refs.append(refs[0])
        nds = "".join(f'<nd ref="{r}"/>' for r in refs)
        tg = "".join(f'<tag k="{k}" v="{v}"/>' for k, v in tags.items())
        ways.append(f'<way id="{wid}" version="1">{nds}{tg}</way>')
    path.write_text('<?xml version="1.0" encoding="UTF-8"?>\n<osm version="0.6" generator="t">\n'
                    + "\n".join(nodes + ways) + "\n</osm>\n", encoding="utf-8")
    return path


def lonlat_square(x: float, y: float, size: float = 100.0) -> list[tuple[float, float]]:
    """A size × size metre square at EPSG:4548 (x, y), as a lon/lat ring."""
    ring = gpd.GeoSeries([shapely.box(x, y, x + size, y + size)], crs=CRS).to_crs(4326).iloc[0]
    return list(ring.exterior.coords)


# ------------------------------------------------------------------------------------------------
# Bad cases
# ------------------------------------------------------------------------------------------------

@dataclass
class Case:
    """One bad input: what it puts in the run file and the messages it must give.

    ``expect`` holds (file name the message names, [words it contains], severity).
    ``slots`` are the run-file tables it occupies (no two cases of a batch share one).
    ``needs_district``: the check compares with the buildings' or parcels' extent;
    ``shapes_ok``: the case's buildings or parcels still give that extent.
    """

    name: str
    make: Callable[[Path], dict]
    expect: list[tuple[str, list[str], str]]
    slots: tuple[str, ...]
    needs_district: bool = False
    shapes_ok: bool = False


def _layer(kind: str, path: str, **kw) -> dict:
    return {"layers": {kind: {"path": path, **kw}}}


def _bld(gdf: gpd.GeoDataFrame, folder: Path, name: str, **kw) -> dict:
    gdf.to_file(folder / name)
    return _layer("buildings", name, columns=BUILDING_COLUMNS, **kw)


def truncated_gpkg(folder: Path) -> dict:
    streets = gpd.GeoDataFrame({"JDMC": ["金桥街道", "华明街道"]},
                               geometry=[shapely.box(X0, Y0, X0 + 150, Y0 + 100),
                                         shapely.box(X0 + 150, Y0, X0 + 300, Y0 + 100)], crs=CRS)
    streets.to_file(folder / "whole.gpkg")
    data = (folder / "whole.gpkg").read_bytes()
    (folder / "truncated.gpkg").write_bytes(data[: len(data) // 3])
    (folder / "whole.gpkg").unlink()
    return _layer("streets", "truncated.gpkg", columns={"name": "JDMC"})


def shp_without_prj(folder: Path) -> dict:
    parcels().to_file(folder / "noprj.shp")
    (folder / "noprj.prj").unlink()
    return _layer("landuse", "noprj.shp", columns={"area": "TBDLMJ"})


def shp_without_dbf(folder: Path) -> dict:
    parcels().to_file(folder / "nodbf.shp")
    (folder / "nodbf.dbf").unlink()
    return _layer("landuse", "nodbf.shp")


def shp_truncated(folder: Path) -> dict:
    parcels().to_file(folder / "cut.shp")
    shp = folder / "cut.shp"
    shp.write_bytes(shp.read_bytes()[:180])
    return _layer("landuse", "cut.shp")


def dbf_truncated(folder: Path) -> dict:
    zones().to_file(folder / "cutdbf.shp", encoding="utf-8")
    dbf = folder / "cutdbf.dbf"
    dbf.write_bytes(dbf.read_bytes()[:-30])
    return _layer("zones", "cutdbf.shp", columns=ZONE_COLUMNS)


def broken_geojson(folder: Path) -> dict:
    text = zones().to_crs(4326).to_json()
    (folder / "broken.geojson").write_text(text[: len(text) // 2], encoding="utf-8")
    return _layer("zones", "broken.geojson", columns=ZONE_COLUMNS)


def point_buildings(folder: Path) -> dict:
    gdf = buildings()
    gdf["geometry"] = gdf.geometry.centroid
    return _bld(gdf, folder, "points.gpkg")


def line_zones(folder: Path) -> dict:
    gdf = zones()
    gdf["geometry"] = gdf.geometry.boundary
    gdf.to_file(folder / "lines.geojson")
    return _layer("zones", "lines.geojson", columns=ZONE_COLUMNS)


def empty_geometries(folder: Path) -> dict:
    gdf = gpd.GeoDataFrame({"XBH": ["s1", "s2"], "MGXJ": [80.0, 60.0]}, geometry=[None, None],
                           crs=CRS)
    gdf.to_file(folder / "nogeom.gpkg")
    return _layer("forest", "nogeom.gpkg", columns={"id": "XBH", "stock_m3_ha": "MGXJ"})


def bad_floors(folder: Path) -> dict:
    gdf = buildings()
    gdf["CS"] = [np.nan, -3.0, 1000.0, 2.0, 3.0, 4.0]
    gdf["GD"] = [3.0, 6.0, 9.0, -5.0, 9999.0, 12.0]
    return _bld(gdf, folder, "floors.gpkg")


def unknown_categories(folder: Path) -> dict:
    gdf = buildings()
    gdf["JZLB"] = ["住宅", "飞船", "火星基地", "住宅", "住宅", "住宅"]
    return _bld(gdf, folder, "categories.gpkg")


def duplicate_ids(folder: Path) -> dict:
    gdf = buildings()
    gdf["BSM"] = ["b1", "b1", "b2", "b3", "b3", "b4"]
    return _bld(gdf, folder, "dupids.gpkg")


def unknown_codes(folder: Path) -> dict:
    gdf = parcels()
    gdf["DLBM"] = ["0301", "9999", "XX1"]
    gdf.to_file(folder / "codes.gpkg")
    return _layer("landuse", "codes.gpkg")


def raster_without_crs(folder: Path) -> dict:
    write_raster(folder / "nocrs.tif", crs=None, fill=10, nodata=0, dtype="uint8")
    return _layer("landcover", "nocrs.tif")


def raster_without_nodata(folder: Path) -> dict:
    write_raster(folder / "nonodata.tif", nodata=None)
    return _layer("irradiance", "nonodata.tif")


def raster_all_nodata(folder: Path) -> dict:
    write_raster(folder / "allnodata.tif", fill=-9999.0)
    return _layer("irradiance", "allnodata.tif")


def raster_elsewhere(folder: Path) -> dict:
    write_raster(folder / "elsewhere.tif", x0=X0 + 50_000)
    return _layer("irradiance", "elsewhere.tif")


def raster_degrees(folder: Path) -> dict:
    write_raster(folder / "metres_as_degrees.tif", crs="EPSG:4326")
    return _layer("irradiance", "metres_as_degrees.tif")


def dsm_in_centimetres(folder: Path) -> dict:
    write_raster(folder / "dsm_cm.tif", fill=15_000.0)  # 150 m written in centimetres
    return _layer("dsm", "dsm_cm.tif")


def landcover_unknown(folder: Path) -> dict:
    write_raster(folder / "landcover.tif", fill=77, nodata=0, dtype="uint8")
    return _layer("landcover", "landcover.tif")


def zones_elsewhere(folder: Path) -> dict:
    zones(dx=30_000).to_crs(4326).to_file(folder / "farzones.geojson")
    return _layer("zones", "farzones.geojson", columns=ZONE_COLUMNS)


def truncated_epw(folder: Path) -> dict:
    (folder / "truncated.epw").write_text(epw_text(100)[:-40], encoding="utf-8")
    return {"weather": {"epw": "truncated.epw"}}


def corrupt_epw(folder: Path) -> dict:
    lines = epw_text(8760).splitlines()
    rows = [";".join(line.split(",")) for line in lines[8:]]  # a spreadsheet's export
    (folder / "corrupt.epw").write_text("\n".join(lines[:8] + rows) + "\n", encoding="utf-8")
    return {"weather": {"epw": "corrupt.epw"}}


def multilayer_gpkg(folder: Path) -> dict:
    gdf = gpd.GeoDataFrame({"XBH": ["s1"], "MGXJ": [80.0]},
                           geometry=[shapely.box(X0, Y0, X0 + 100, Y0 + 100)], crs=CRS)
    gdf.to_file(folder / "stands.gpkg", layer="stands_2020")
    gdf.to_file(folder / "stands.gpkg", layer="stands_2023")
    return _layer("forest", "stands.gpkg", columns={"id": "XBH", "stock_m3_ha": "MGXJ"})


def nan_coordinates(folder: Path) -> dict:
    data = json.loads(gpd.GeoDataFrame({"JDMC": ["街道"]}, geometry=[shapely.box(
        X0, Y0, X0 + 300, Y0 + 100)], crs=CRS).to_crs(4326).to_json())
    data["features"][0]["geometry"]["coordinates"][0][1] = ["__nan__", 39.1]
    (folder / "nan.geojson").write_text(json.dumps(data).replace('"__nan__"', "NaN"),
                                        encoding="utf-8")
    return _layer("streets", "nan.geojson", columns={"name": "JDMC"})


def mixed_property_types(folder: Path) -> dict:
    stands = gpd.GeoDataFrame({"XBH": ["s1", "s2", "s3"], "MGXJ": [80.0, 60.0, 70.0]},
                              geometry=shapely.box(X0 + np.arange(3) * 100.0, Y0,
                                                   X0 + np.arange(3) * 100.0 + 100, Y0 + 100),
                              crs=CRS)
    data = json.loads(stands.to_crs(4326).to_json())
    data["features"][0]["properties"]["MGXJ"] = [80, 90]  # a list where a number belongs
    data["features"][1]["properties"]["MGXJ"] = {"m3": 60}
    data["features"][2]["properties"]["MGXJ"] = True
    (folder / "mixed.geojson").write_text(json.dumps(data), encoding="utf-8")
    return _layer("forest", "mixed.geojson", columns={"id": "XBH", "stock_m3_ha": "MGXJ"})


def bad_options(folder: Path) -> dict:
    return {"pv": {"module_eficiency": 0.2}, "ecology": {"bluegreen": "wide"}}


CASES: dict[str, Case] = {c.name: c for c in [
    Case("truncated_gpkg", truncated_gpkg,
         [("truncated.gpkg", ["cannot open the file", "truncated"], "error")], ("streets",)),
    Case("shp_without_prj", shp_without_prj,
         [("noprj.shp", ["no CRS", ".prj", "crs = "], "error")], ("landuse",)),
    Case("shp_without_dbf", shp_without_dbf,
         [("nodbf.shp", [".dbf missing", "copy all the shapefile's files"], "error")], ("landuse",)),
    Case("shp_truncated", shp_truncated,
         [("cut.shp", ["cut.shp is truncated", "copy the shapefile again"], "error")], ("landuse",)),
    Case("dbf_truncated", dbf_truncated,
         [("cutdbf.shp", ["cutdbf.dbf is truncated"], "error")], ("zones",)),
    Case("broken_geojson", broken_geojson,
         [("broken.geojson", ["cannot open the file", "GeoJSON"], "error")], ("zones",)),
    Case("point_buildings", point_buildings,
         [("points.gpkg", ["6 of 6 features are not polygons", "Point", "needs polygons"],
           "error")], ("buildings",)),
    Case("line_zones", line_zones,
         [("lines.geojson", ["not polygons", "LineString"], "error")], ("zones",)),
    Case("empty_geometries", empty_geometries,
         [("nogeom.gpkg", ["every geometry is empty"], "error")], ("forest",)),
    Case("bad_floors", bad_floors,
         [("floors.gpkg", ["'CS'", "2 values outside 0–200", "-3.0", "1000.0", "fix them"], "error"),
          ("floors.gpkg", ["'GD'", "2 values outside 0–700", "-5.0", "9999.0"], "error"),
          ("floors.gpkg", ["'CS'", "1 buildings have no floor count"], "warning")],
         ("buildings",)),
    Case("unknown_categories", unknown_categories,
         [("categories.gpkg", ["'JZLB'", "2 buildings (33.3%) have an unknown category", "飞船",
                               "火星基地", "[layers.buildings.categories]"], "error")],
         ("buildings",)),
    Case("duplicate_ids", duplicate_ids,
         [("dupids.gpkg", ["'BSM'", "4 features share 2 duplicate ids", "b1", "b3"], "error")],
         ("buildings",)),
    Case("unknown_codes", unknown_codes,
         [("codes.gpkg", ["'code'", "2 parcels (66.7% of the area)", "9999", "XX1", "scheme"],
           "error")], ("landuse",)),
    Case("raster_without_crs", raster_without_crs,
         [("nocrs.tif", ["raster has no CRS", "crs = "], "error")], ("landcover",)),
    Case("raster_without_nodata", raster_without_nodata,
         [("nonodata.tif", ["no nodata value", "-a_nodata"], "warning")], ("irradiance",)),
    Case("raster_all_nodata", raster_all_nodata,
         [("allnodata.tif", ["every pixel of the raster is nodata"], "error")], ("irradiance",)),
    Case("raster_elsewhere", raster_elsewhere,
         [("elsewhere.tif", ["does not overlap the district"], "error")], ("irradiance",),
         needs_district=True),
    Case("raster_degrees", raster_degrees,
         [("metres_as_degrees.tif", ["do not fit its CRS", "WGS 84"], "error")], ("irradiance",)),
    Case("dsm_in_centimetres", dsm_in_centimetres,
         [("dsm_cm.tif", ["heights outside −500…9 000 m", "15000"], "error")], ("dsm",)),
    Case("landcover_unknown", landcover_unknown,
         [("landcover.tif", ["100.0% of the pixels have classes unknown to scheme worldcover",
                             "77"], "error")], ("landcover",)),
    Case("zones_elsewhere", zones_elsewhere,
         [("farzones.geojson", ["zones layer does not overlap the"], "error")],
         ("zones",), needs_district=True),
    Case("truncated_epw", truncated_epw,
         [("truncated.epw", ["hourly records", "8760", "truncated"], "error")], ("weather",)),
    Case("corrupt_epw", corrupt_epw,
         [("corrupt.epw", ["cannot parse the weather file"], "error")], ("weather",)),
    Case("multilayer_gpkg", multilayer_gpkg,
         [("stands.gpkg", ["the file has 2 layers", "stands_2020", "layer = "], "error")],
         ("forest",)),
    Case("nan_coordinates", nan_coordinates,
         [("nan.geojson", ["1 features have NaN or infinite coordinates"], "error")],
         ("streets",)),
    Case("mixed_property_types", mixed_property_types,
         [("mixed.geojson", ["'MGXJ'", "3 values are not numbers", "[80, 90]", "True"], "error")],
         ("forest",)),
    Case("bad_options", bad_options,
         [("run", ["pv.module_eficiency", "unknown PV parameter", "module_efficiency"], "error"),
          ("run", ["ecology.bluegreen", "broad or narrow", "wide"], "error")], ("options",)),
]}


for _name in ("bad_floors", "unknown_categories", "duplicate_ids", "unknown_codes"):
    CASES[_name].shapes_ok = True


def batches(cases: list[Case]) -> list[list[Case]]:
    """Pack cases into as few run files as possible: one case per slot, district kept."""
    out: list[list[Case]] = []
    for case in cases:
        for batch in out:
            slots = {s for c in batch for s in c.slots}
            if slots & set(case.slots):
                continue
            members = [*batch, case]
            district = [c for c in members if c.needs_district]
            blockers = [c for c in members if "buildings" in c.slots and not c.shapes_ok]
            if district and blockers:
                continue
            batch.append(case)
            break
        else:
            out.append([case])
    return out


def merge(*tables: dict) -> dict:
    """Run-file tables merged (layers side by side)."""
    out: dict = {}
    for table in tables:
        for key, value in table.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = merge(out[key], value)
            else:
                out[key] = value
    return out


def toml(table: dict) -> str:
    """A small TOML writer for run files (strings, numbers, booleans, nested tables)."""
    def scalar(v) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        return json.dumps(str(v), ensure_ascii=False)

    lines: list[str] = []

    def emit(prefix: list[str], t: dict) -> None:
        scalars = {k: v for k, v in t.items() if not isinstance(v, dict)}
        if prefix and (scalars or not any(isinstance(v, dict) for v in t.values())):
            lines.append("[" + ".".join(json.dumps(k, ensure_ascii=False) for k in prefix) + "]")
        for k, v in scalars.items():
            lines.append(f"{json.dumps(k, ensure_ascii=False)} = {scalar(v)}")
        for k, v in t.items():
            if isinstance(v, dict):
                emit([*prefix, k], v)

    emit([], table)
    return "\n".join(lines) + "\n"


def good_buildings(folder: Path) -> dict:
    """The good buildings layer (for cases checked against the district)."""
    if not (folder / "good_buildings.gpkg").exists():
        buildings().to_file(folder / "good_buildings.gpkg")
    return _layer("buildings", "good_buildings.gpkg", columns=BUILDING_COLUMNS)


def write_run(folder: Path, cases: list[Case], name: str) -> Path:
    """Write the cases' bad files into ``folder`` and one run file ``name`` that uses them all.

    Raises
    ------
    ValueError
        When two cases need the same slot (they would overwrite each other's table).
    """
    slots = [s for c in cases for s in c.slots]
    if len(slots) != len(set(slots)):
        raise ValueError(f"cases share a slot: {slots}")
    tables = [c.make(folder) for c in cases]
    if any(c.needs_district for c in cases) and "buildings" not in slots:
        tables.append(good_buildings(folder))
    run = merge({"project": {"name": name, "crs": CRS}}, *tables)
    path = folder / f"{name}.toml"
    path.write_text(toml(run), encoding="utf-8")
    return path

"""The demo district: counts, baseline bands, formats, encodings, CRSs and determinism."""

from __future__ import annotations

import tomllib
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import rasterio
import shapely

from gis import demo
from gis._errors import InputError

REFERENCE = Path(__file__).resolve().parents[1] / "gis" / "data" / "landuse_codes.csv"
FILES = (
    "buildings.gpkg",
    "forest.gpkg",
    "irradiance.tif",
    "landuse.dbf",
    "landuse.prj",
    "landuse.shp",
    "landuse.shx",
    "run.toml",
    "streets.fgb",
    "zones.geojson",
)
LEVEL_ZH = {
    "barrier": "屏障区",
    "level1": "一级管控区",
    "level2": "二级管控区",
    "level3": "三级管控区",
}


def _codes(column: str) -> set[str]:
    """Third-survey codes whose flag in the reference table is on by default (1 or cfg1)."""
    ref = pd.read_csv(REFERENCE, dtype=str)
    ref = ref[ref["scheme"] == "sandiao"]
    return set(ref.loc[ref[column].isin(["1", "cfg1"]), "code"])


def _shares(landuse: gpd.GeoDataFrame, zone: shapely.Geometry) -> dict[str, float]:
    """Geometric area shares of a zone: broad blue-green, forest (0301/0302), candidates."""
    clipped = landuse.clip(zone)
    area = clipped.area
    total = zone.area
    code = clipped["DLBM"]
    return {
        "cover": area.sum() / total,
        "bluegreen": area[code.isin(_codes("bg_broad"))].sum() / total,
        "forest": area[code.isin(["0301", "0302"])].sum() / total,
        "afforestable": area[code.isin(["0401", "0404", "0307", "1201", "1206"])].sum() / total,
    }


@pytest.fixture(scope="module")
def full():
    """The full-scale layers, in memory only (about 2 s)."""
    return demo.demo_layers(scale=1.0, seed=2023)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Two small builds with the same arguments, in two folders."""
    a = demo.make_demo(tmp_path_factory.mktemp("a"), scale=0.03, raster_resolution_m=20)
    b = demo.make_demo(tmp_path_factory.mktemp("b"), scale=0.03, raster_resolution_m=20)
    return a, b


# ------------------------------------------------------------------------------ full scale


def test_full_scale_headline_counts(full):
    assert 50_000 <= len(full["buildings"]) <= 80_000
    assert 10_000 <= len(full["landuse"]) <= 30_000
    assert sorted(full["streets"]["JDMC"]) == sorted(demo.STREETS)
    assert len(demo.STREETS) == 11
    zones = full["zones"]
    assert sorted(zones.loc[zones["GKJB"] == "片区", "MC"]) == sorted(demo.SUBZONES)
    assert len(demo.SUBZONES) == 6
    district = full["district"].geometry.iloc[0]
    assert 470e6 <= district.area <= 480e6
    # the streets and the parcels both tile the district
    assert full["streets"].area.sum() == pytest.approx(district.area, rel=1e-9)
    assert full["landuse"].area.sum() == pytest.approx(district.area, rel=1e-6)
    assert full["buildings"]["BSM"].is_unique and full["landuse"]["BSM"].is_unique


def test_full_scale_location_is_dongli(full):
    lon0, lat0, lon1, lat1 = full["district"].to_crs("EPSG:4326").total_bounds
    assert 117.2 < lon0 < lon1 < 117.6
    assert 38.95 < lat0 < lat1 < 39.3


def test_zone_levels_partition_the_barrier(full):
    zones = full["zones"].set_index("MC")
    by_level = full["zones"].dissolve("GKJB").area
    barrier = by_level[LEVEL_ZH["barrier"]]
    district = full["district"].area.iloc[0]
    assert barrier / district == pytest.approx(0.40, abs=0.02)
    parts = sum(by_level[LEVEL_ZH[k]] for k in ("level1", "level2", "level3"))
    assert parts == pytest.approx(barrier, rel=1e-6)
    assert 0.45 <= by_level[LEVEL_ZH["level1"]] / barrier <= 0.55
    sub = zones.loc[list(demo.SUBZONES)]
    assert sub.area.sum() == pytest.approx(barrier, rel=1e-6)
    # every sub-zone lies in the barrier (up to rounding of the cut)
    inside = sub.intersection(zones.geometry[zones["GKJB"] == "屏障区"].iloc[0]).area
    np.testing.assert_allclose(inside, sub.area, rtol=1e-9)


def test_baseline_near_but_below_targets(full):
    zones = full["zones"]
    level = {k: zones.loc[zones["GKJB"] == v].union_all() for k, v in LEVEL_ZH.items()}
    barrier = _shares(full["landuse"], level["barrier"])
    level1 = _shares(full["landuse"], level["level1"])
    assert barrier["cover"] == pytest.approx(1.0, abs=1e-6)
    # targets (dongli-2025): barrier 65 %, level1 85 % blue-green; level1 forest 27.5 %
    assert 0.57 <= barrier["bluegreen"] < 0.63
    assert 0.77 <= level1["bluegreen"] < 0.83
    assert 0.23 <= level1["forest"] <= 0.25
    # grassland, bare, vacant and other forest land could close the forest gap
    gap = 0.275 - level1["forest"]
    assert level1["afforestable"] > 2 * gap


def test_forest_stock_near_target(full):
    stands = full["forest"]
    stock_m3 = (stands.area / 1e4 * stands["MGXJ"]).sum()
    assert 50_000 <= stock_m3 <= 55_000  # target 60 000 m³
    barrier = full["zones"].loc[full["zones"]["GKJB"] == "屏障区"].geometry.iloc[0]
    assert stands.intersection(barrier).area.sum() == pytest.approx(stands.area.sum(), rel=1e-9)
    assert set(stands["SZ"]) <= {"杨树", "柳树", "刺槐", "白蜡", "国槐", "榆树"}
    assert stands["MGXJ"].gt(0).all() and stands["XBH"].is_unique


def test_third_survey_areas(full):
    lu = full["landuse"]
    crop = lu["DLBM"].isin(["0101", "0102", "0103"])
    ratio = lu["KCMJ"] / lu["TBMJ"]
    assert ratio[crop].between(0.029, 0.081).all()
    assert (lu.loc[~crop, "KCMJ"] == 0).all()
    np.testing.assert_allclose(lu["TBDLMJ"], lu["TBMJ"] - lu["KCMJ"], atol=0.011)
    # official parcel area = geometric area within a survey factor of 1 ± 0.3 %
    factor = lu["TBMJ"] / lu.area
    big = lu.area > 100  # rounding to 0.01 m² dominates on slivers
    assert factor[big].between(0.996, 1.004).all()
    assert factor[big].std() > 1e-4
    # construction land for removal: only industrial / homestead parcels
    removal = lu["SFCC"] == "是"
    assert set(lu["SFCC"]) == {"是", "否"}
    assert set(lu.loc[removal, "DLBM"]) <= {"0601", "0702"}
    assert set(lu["ZLDWMC"]) == set(demo.STREETS)
    assert lu["DLMC"].notna().all()


def test_building_mix(full):
    b = full["buildings"]
    share = b["JZLB"].value_counts(normalize=True)
    assert set(share.index) == {
        "党政机关", "学校", "医院", "村委会", "商业", "厂房", "工业", "住宅", "农村住宅", "其他",
    }  # fmt: skip
    assert share[["住宅", "农村住宅", "厂房", "工业"]].sum() >= 0.75
    assert 0.01 <= (b["GFRL"] > 0).mean() <= 0.06
    rural = b[b["JZLB"] == "农村住宅"]
    pitched = rural[rural["WDLX"] == "坡屋顶"]
    assert len(pitched) / len(rural) >= 0.75
    assert pitched["WMQJ"].between(20, 35).all()
    assert pitched["WMCX"].between(150, 210).mean() >= 0.75
    flat = b[b["WDLX"] == "平屋顶"]
    assert (flat["WMQJ"] == 0).all() and flat["WMCX"].isna().all()
    assert b["JCNF"].between(1980, 2025).all()
    # about a third of the new (2022+) public and factory buildings carry PV (target 50 %)
    new = b[(b["JCNF"] >= 2022) & b["JZLB"].isin(["党政机关", "学校", "医院", "村委会", "厂房"])]
    assert len(new) >= 300
    assert (new["GFRL"] > 0).mean() == pytest.approx(1 / 3, abs=0.01)
    public = b["JZLB"].isin(["党政机关", "学校", "医院", "村委会"])
    assert b.loc[public, "JZMC"].notna().all()
    assert b.loc[b["JZLB"] == "农村住宅", "JZMC"].isna().all()
    assert (b["GD"] >= 2.5 * b["CS"]).all()


def test_buildings_do_not_overlap_and_sit_in_the_district(full):
    b = full["buildings"]
    pairs = b.sindex.query(b.geometry.values, predicate="intersects")
    assert (pairs[0] == pairs[1]).all()  # every building touches only itself
    district = full["district"].geometry.iloc[0]
    assert shapely.contains(district, b.geometry.values).all()


# --------------------------------------------------------------------------- written files


def test_same_arguments_same_layers(built):
    a, b = (p.parent for p in built)
    for name in ("buildings.gpkg", "forest.gpkg", "streets.fgb", "zones.geojson", "landuse.shp"):
        kw = {"encoding": "gbk"} if name.endswith(".shp") else {}
        da = pyogrio.read_dataframe(a / name, **kw)
        db = pyogrio.read_dataframe(b / name, **kw)
        pd.testing.assert_frame_equal(da.drop(columns="geometry"), db.drop(columns="geometry"))
        assert shapely.equals_exact(da.geometry.values, db.geometry.values, tolerance=0).all()
    # the drivers allow byte-identical files (fixed GeoPackage and DBF dates, fixed layer names)
    for name in FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_other_seed_other_layers():
    a = demo.demo_layers(scale=0.02, seed=1)
    b = demo.demo_layers(scale=0.02, seed=2)
    assert not a["buildings"].geometry.equals(b["buildings"].geometry)
    # the frame (district, zones, streets) does not depend on the seed
    assert a["zones"].geometry.geom_equals(b["zones"].geometry).all()


def test_gbk_shapefile_without_cpg(built):
    folder = built[0].parent
    assert not (folder / "landuse.cpg").exists()
    gbk = pyogrio.read_dataframe(folder / "landuse.shp", encoding="gbk")
    assert "乔木林地" in set(gbk["DLMC"])
    assert set(gbk["ZLDWMC"]) <= set(demo.STREETS)
    assert gbk.loc[gbk["DLBM"] == "0301", "DLMC"].eq("乔木林地").all()
    assert gbk.loc[gbk["DLBM"] == "1104A", "DLMC"].eq("养殖坑塘").all()
    try:
        utf8 = pyogrio.read_dataframe(folder / "landuse.shp", encoding="utf-8")
    except UnicodeDecodeError:
        return
    assert not utf8["DLMC"].equals(gbk["DLMC"])


def test_landuse_is_zone_prefixed_and_exact(built):
    folder = built[0].parent
    lu = pyogrio.read_dataframe(folder / "landuse.shp", encoding="gbk")
    assert lu.crs.to_epsg() == 4527
    x0, _, x1, _ = lu.total_bounds
    assert 39_000_000 < x0 < x1 < 40_000_000
    mem = demo.demo_layers(scale=0.03)["landuse"]
    # the prefix is a pure shift: areas are those of EPSG:4548
    np.testing.assert_allclose(lu.area.to_numpy(), mem.area.to_numpy(), rtol=1e-7, atol=1e-3)
    back = lu.to_crs(demo.WORK_CRS)
    np.testing.assert_allclose(back.total_bounds, mem.total_bounds, atol=0.01)
    # near-degenerate corners must not fold at 39 5xx xxx m, nor when reprojected back
    assert shapely.is_valid(lu.geometry.values).all()
    assert shapely.is_valid(back.geometry.values).all()


def test_formats_and_crs(built):
    folder = built[0].parent
    zones = pyogrio.read_dataframe(folder / "zones.geojson")
    assert zones.crs.to_epsg() == 4326
    assert set(zones["GKJB"]) == {"屏障区", "一级管控区", "二级管控区", "三级管控区", "片区"}
    assert zones.to_crs(demo.WORK_CRS).area.iloc[0] == pytest.approx(0.40 * 475e6, rel=0.02)
    assert pyogrio.list_layers(folder / "buildings.gpkg")[0][0] == "buildings"
    b = pyogrio.read_dataframe(folder / "buildings.gpkg")
    assert b.crs.to_epsg() == 4548
    assert 500_000 < b.total_bounds[0] < b.total_bounds[2] < 560_000
    assert pyogrio.read_info(folder / "streets.fgb")["driver"] == "FlatGeobuf"
    assert pyogrio.read_info(folder / "forest.gpkg")["features"] > 0
    for name in ("buildings.gpkg", "forest.gpkg", "streets.fgb", "zones.geojson"):
        g = pyogrio.read_dataframe(folder / name).to_crs(demo.WORK_CRS)
        assert g.is_valid.all() and not g.is_empty.any(), name


def test_irradiance_raster(built):
    with rasterio.open(built[0].parent / "irradiance.tif") as src:
        grid = src.read(1)
        assert src.crs.to_epsg() == 4548
        assert src.dtypes[0] == "uint16" and src.nodata == 0
        assert src.profile["compress"] == "deflate"
        assert src.res == (20.0, 20.0)
        assert src.width * src.res[0] == 6000
    valid = grid[grid > 0]
    assert valid.max() == 1500  # unshaded
    assert (valid < 1500).any()  # shade of tall buildings


def test_irradiance_shade_of_one_tower():
    """A 30 m tower: full sun on it and south of it, its shade to the north, by hand."""
    tower = gpd.GeoDataFrame(
        {"GD": [30.0], "CS": [11]}, geometry=[shapely.box(0, 0, 20, 20)], crs=demo.WORK_CRS
    )
    grid, transform = demo._irradiance_grid(tower, shapely.box(-500, -500, 500, 500), 2.0, 200.0)

    def value(y):
        row, col = rasterio.transform.rowcol(transform, 11, y)
        return int(grid[row, col])

    assert value(11) == 1500  # roof
    assert value(-11) == 1500  # south of the tower
    # 30 m north of the tower's last row: horizon 45°, beam loss (45-15)/55, diffuse 1-0.25 sin 45°
    expected = 1500 * (0.55 * (1 - 30 / 55) + 0.45 * (1 - 0.25 * np.sin(np.radians(45))))
    assert value(49) == round(expected)  # 931
    # right next to it: horizon 86°, all beam lost
    assert value(21) == round(1500 * 0.45 * (1 - 0.25 * np.sin(np.arctan(15))))


def test_run_file(built):
    run_file = built[0]
    assert run_file.name == "run.toml"
    cfg = tomllib.loads(run_file.read_text(encoding="utf-8"))
    assert cfg["project"]["synthetic"] is True
    assert "synthetic" in cfg["project"]["name"]
    assert cfg["project"]["crs"] == "EPSG:4548"
    assert cfg["project"]["targets"] == "dongli-2025"
    assert "encoding" not in cfg["layers"]["landuse"]
    assert cfg["output"]["dir"] == "output"
    # every mapped column exists in its file
    for name, layer in cfg["layers"].items():
        path = run_file.parent / layer["path"]
        assert path.exists(), name
        if "columns" in layer:
            fields = set(pyogrio.read_info(path, layer=layer.get("layer"))["fields"])
            assert set(layer["columns"].values()) <= fields, name
    assert cfg["layers"]["landuse"]["values"]["removal"] == {"是": True, "否": False}
    assert cfg["layers"]["zones"]["values"]["level"]["一级管控区"] == "level1"


def test_output_dir_of_the_repository_demo(tmp_path):
    assert demo._output_dir(tmp_path / "layers" / "demo") == "../../maps/dongli"
    assert demo._output_dir(tmp_path / "elsewhere") == "output"


@pytest.mark.parametrize(
    "kw",
    [{"scale": 0}, {"scale": -1}, {"scale": "1"}, {"scale": True}, {"raster_resolution_m": 0.0}],
)
def test_bad_arguments(tmp_path, kw):
    with pytest.raises(InputError):
        demo.make_demo(tmp_path, **kw)
    assert not any(tmp_path.iterdir())

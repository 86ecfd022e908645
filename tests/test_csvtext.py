"""CSV text column-wise (gis.csvtext) against pandas' own ``to_csv``, byte for byte."""

from __future__ import annotations

import csv
import datetime as dt
import threading

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from gis import csvtext, io, sites


def _pandas(frame: pd.DataFrame, lineterminator: str) -> bytes:
    return frame.to_csv(index=False, lineterminator=lineterminator).encode("utf-8")


def _every_case() -> pd.DataFrame:
    floats = [1e-05, 1e16, -0.0, np.nan, 120.0, 0.1, np.inf, -np.inf, 1e15, 9.9e-05, 5e-324,
              1.7976931348623157e308, 12345678901.5, 1e-07, 0.0001, 1 / 3, 0.0, -2.5]
    n = len(floats)
    text = ['a,b', 'say "hi"', "line\nbreak", "cr\rx", "金桥街道", None, "", " lead", "tab\t",
            "é", "x;y", "'q'", '"', ",", "crlf\r\n", "中,文", "plain", "trail "]
    return pd.DataFrame({
        "kwh": floats,
        "n": np.arange(n, dtype="int64") - 5,
        "u8": np.arange(n, dtype="uint8"),
        "new": [True, False] * (n // 2),
        "name": text,
        "名称": pd.array(text, dtype="string"),
        "obj_bool": pd.Series([True, None, False] * (n // 3), dtype=object),
        "obj_int": pd.Series([1, None, 3] * (n // 3), dtype=object),
        "Int64": pd.array([1, None, 3] * (n // 3), dtype="Int64"),
        "boolean": pd.array([True, None, False] * (n // 3), dtype="boolean"),
        "f32": np.array([0.1, np.nan, 3.4e38] * (n // 3), dtype=np.float32),
        "empty": [None] * n,
        "quoted, header": ["x"] * n,
    })


@pytest.mark.parametrize("lineterminator", ["\n", "\r\n"])
def test_every_case_equals_pandas(lineterminator):
    frame = _every_case()
    assert csvtext._supported(frame)  # formatted here, not handed to pandas
    got = csvtext.csv_bytes(frame, lineterminator=lineterminator)
    assert got == _pandas(frame, lineterminator)
    # the values pandas writes in a way Arrow does not, spelled out
    rows = list(csv.reader(got.decode().splitlines(keepends=True)))
    assert rows[0] == ["kwh", "n", "u8", "new", "name", "名称", "obj_bool", "obj_int", "Int64",
                       "boolean", "f32", "empty", "quoted, header"]
    assert [r[0] for r in rows[1:4]] == ["1e-05", "1e+16", "-0.0"]
    assert rows[2][4] == 'say "hi"' and rows[3][4] == "line\nbreak"
    assert got.decode().splitlines()[2].startswith('1e+16,-4,1,False,"say ""hi"""')


def test_floats_at_the_layout_bounds():
    x = np.array([1e-4, np.nextafter(1e-4, 0), 1e16, np.nextafter(1e16, 0), 1e10, 1e10 + 0.5,
                  -1e-4, 2.0**53, 2.0**53 + 2, 123456789.0, 1e-300, -1e300])
    frame = pd.DataFrame({"x": x, "y": -x})
    assert csvtext.csv_bytes(frame) == _pandas(frame, "\n")
    assert csvtext.csv_text(frame).splitlines()[1:4] == [
        "0.0001,-0.0001", "9.999999999999999e-05,-9.999999999999999e-05", "1e+16,-1e+16"]


def test_one_column_writes_empty_fields_quoted():
    frame = pd.DataFrame({"s": ["", "a", None, "b"]})
    assert csvtext.csv_text(frame, lineterminator="\n") == 's\n""\na\n""\nb\n'
    assert csvtext.csv_bytes(frame) == _pandas(frame, "\n")
    nums = pd.DataFrame({"x": [1.0, np.nan]})
    assert csvtext.csv_bytes(nums, lineterminator="\n") == b'x\n1.0\n""\n' == _pandas(nums, "\n")


@pytest.mark.parametrize("frame", [
    pd.DataFrame({"when": pd.to_datetime(["2024-01-02", None]), "x": [1.0, 2.0]}),
    pd.DataFrame({"cat": pd.Categorical(["a", "b"]), "x": [1.0, 2.0]}),
    pd.DataFrame({"mixed": [1, "a"], "x": [1.0, 2.0]}),
    pd.DataFrame({"big": [2**70, 1]}),
    pd.DataFrame({"day": [dt.date(2024, 1, 2), None]}),
    pd.DataFrame({1: [1.0], 2.5: [2.0]}),
    pd.DataFrame(index=[0, 1]),
    pd.DataFrame({"x": pd.array([0.1, None], dtype="Float64")}),
])
def test_other_columns_are_written_by_pandas(frame):
    assert csvtext.csv_bytes(frame) == _pandas(frame, "\n")


def test_long_tables_in_blocks(monkeypatch):
    monkeypatch.setattr(csvtext, "CHUNK_ROWS", 7)
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": rng.standard_normal(50) * 1e5, "id": [f"b{i}" for i in range(50)]})
    assert csvtext.csv_bytes(frame) == _pandas(frame, "\n")
    assert csvtext.csv_bytes(frame.iloc[:0]) == b"x,id\n"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=40),
       st.lists(st.text(alphabet=st.sampled_from('ab,"\n\r 金é'), max_size=5), min_size=40,
                max_size=40))
def test_any_floats_and_text_equal_pandas(values, texts):
    frame = pd.DataFrame({"v": values, "t": texts[: len(values)]})
    assert csvtext.csv_bytes(frame) == _pandas(frame, "\n")


def test_write_csv_writes_pandas_bytes_with_bom(tmp_path):
    frame = _every_case()
    path = io.write_csv(tmp_path / "t.csv", frame.assign(geometry=None))
    assert path.read_bytes() == "\ufeff".encode() + _pandas(frame, "\n")


# ---- io.run_jobs and sites.export_jobs ------------------------------------------------------


def test_run_jobs_returns_in_order_and_raises_after_every_job():
    ran = []
    lock = threading.Lock()

    def job(i):
        def run():
            with lock:
                ran.append(i)
            if i == 1:
                raise ValueError("job 1")
            return i * 10
        return run

    assert io.run_jobs([job(0), job(2), job(3)], threads=2) == [0, 20, 30]
    ran.clear()
    with pytest.raises(ValueError, match="job 1"):
        io.run_jobs([job(0), job(1), job(2), job(3)], threads=2)
    assert sorted(ran) == [0, 1, 2, 3]
    assert io.run_jobs([job(4)], threads=1) == [40]


def _sites(n: int = 30) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(2)
    return gpd.GeoDataFrame(
        {"id": [f"B{i}" for i in range(n)], "street": ["金桥街道", "华明街道, 东"] * (n // 2),
         "category": ["industrial"] * n, "capacity_kwp": rng.uniform(1, 400, n).round(1),
         "annual_kwh": rng.uniform(1e3, 5e5, n), "is_new": [True, False, False] * (n // 3)},
        geometry=[shapely.box(534000 + 50 * i, 4331000, 534030 + 50 * i, 4331020)
                  for i in range(n)], crs="EPSG:4548")


def test_export_jobs_in_threads_equal_export_one_by_one(tmp_path):
    ranked = sites.select_sites(_sites())
    suffixes = (".csv", ".xlsx", ".gpkg")
    jobs = sites.export_jobs(ranked, [tmp_path / f"a{s}" for s in suffixes], kind="sites",
                             max_excel_rows=10, complete_in=("a.csv",))
    written = io.run_jobs(jobs, threads=3)
    assert [p.name for p in written] == ["a.csv", "a.xlsx", "a.gpkg"]
    for s in suffixes:
        one = sites.export(ranked, tmp_path / f"b{s}", kind="sites", max_excel_rows=10,
                           complete_in=("a.csv",))
        if s == ".csv":
            assert one.read_bytes() == (tmp_path / "a.csv").read_bytes()
            assert one.read_bytes()[3:].decode() == sites.csv_text(ranked)
    import openpyxl

    a = openpyxl.load_workbook(tmp_path / "a.xlsx", read_only=True)
    b = openpyxl.load_workbook(tmp_path / "b.xlsx", read_only=True)
    for name in a.sheetnames:
        assert list(a[name].iter_rows(values_only=True)) == list(b[name].iter_rows(values_only=True))
    assert a["sites"].max_row == 11  # header and the first 10 rows


def test_export_jobs_check_every_path_first(tmp_path):
    from gis._errors import InputError

    with pytest.raises(InputError) as err:
        sites.export_jobs(_sites(), [tmp_path / "a.shp", tmp_path / "b.txt", tmp_path / "c.csv"])
    text = str(err.value)
    assert "'a.shp'" in text and "'b.txt'" in text
    assert not list(tmp_path.iterdir())

"""Steps side by side (forked) give a serial run's outputs, warnings, progress and errors."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from gis import _schedule, pipeline
from gis._errors import InputError, Problem

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="steps run side by side on Linux only")

ORIGINAL = {fn.__name__: fn for fn in (pipeline.step_pv, pipeline.step_ecology,
                                       pipeline.step_network, pipeline.step_publish,
                                       pipeline._ground_sites)}


def _ground_sites_noting_pid(ctx, *args):
    ctx.results["ground_sites_pid"] = os.getpid()
    return ORIGINAL["_ground_sites"](ctx, *args)


def _warn_after(name: str, text: str):
    """The step ``name``, then one warning and the id of the process it ran in."""
    step = ORIGINAL[name]

    def wrapped(ctx):
        step(ctx)
        ctx.layers.problems.append(Problem(text, severity="warning"))
        ctx.results[f"{name}_pid"] = os.getpid()

    return wrapped


def _run(demo_dir: Path, out: Path, monkeypatch, *, serial: bool, replace: dict) -> tuple:
    """A run with some steps replaced (the pipeline's own names point to them, as its plan
    recognises the steps by function); returns (context, progress labels)."""
    if serial:
        monkeypatch.setenv(_schedule.SERIAL_ENV, "1")
    else:
        monkeypatch.delenv(_schedule.SERIAL_ENV, raising=False)
    for name, fn in replace.items():
        monkeypatch.setattr(pipeline, name, fn)
    steps = [(label, replace.get(fn.__name__, fn)) for label, fn in pipeline.STEPS]
    labels: list[str] = []
    try:
        ctx = pipeline.run(demo_dir / "run.toml", out_dir=out, offline=False, steps=steps,
                           progress=labels.append)
    finally:
        monkeypatch.undo()
    return ctx, labels


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.name != "run.json"}


def test_side_by_side_gives_the_serial_outputs_warnings_and_progress(demo_dir, tmp_path,
                                                                     monkeypatch):
    replace = {f"step_{name}": _warn_after(f"step_{name}", f"warning from {name}")
               for name in ("pv", "ecology", "network", "publish")}
    replace["_ground_sites"] = _ground_sites_noting_pid
    serial, serial_labels = _run(demo_dir, tmp_path / "serial", monkeypatch, serial=True,
                                 replace=replace)
    side, side_labels = _run(demo_dir, tmp_path / "side", monkeypatch, serial=False,
                             replace=replace)
    me = os.getpid()
    # where each step ran: all here in the serial run; ecology, network and maps forked off
    assert [serial.results[f"step_{n}_pid"] for n in ("pv", "ecology", "network", "publish")] \
        == [me] * 4
    pids = [side.results[f"step_{n}_pid"] for n in ("pv", "ecology", "network", "publish")]
    assert pids[0] == me and pids[1] == pids[2] and len({me, pids[1], pids[3]}) == 3
    # the ground-PV sites: made after the network in its process, used by step_ground here
    assert serial.results["ground_sites_pid"] == me
    assert side.results["ground_sites_pid"] == pids[1] and "ground" not in side.prepared
    # the same files, byte for byte, and the same run.json apart from its clock times
    assert _files(tmp_path / "side") == _files(tmp_path / "serial")
    a = json.loads((tmp_path / "serial" / "run.json").read_text(encoding="utf-8"))
    b = json.loads((tmp_path / "side" / "run.json").read_text(encoding="utf-8"))
    assert list(a["timings_s"]) == list(b["timings_s"]) == [label for label, _ in pipeline.STEPS
                                                            if label != "provenance"]
    for key in ("timings_s", "finished_at", "settings", "run_file"):
        a.pop(key), b.pop(key)
    assert a == b
    # warnings in step order, as the serial run gives them
    expected = [f"warning: warning from {n}" for n in ("pv", "ecology", "network", "publish")]
    assert [w for w in b_warnings(tmp_path / "side") if "warning from" in w] == expected
    assert b_warnings(tmp_path / "side") == b_warnings(tmp_path / "serial")
    assert side_labels == serial_labels
    assert serial.entries == side.entries and list(serial.files) == list(side.files)


def b_warnings(folder: Path) -> list[str]:
    return json.loads((folder / "run.json").read_text(encoding="utf-8"))["warnings"]


def _same_error_serial_and_side(demo_dir, tmp_path, monkeypatch, replace: dict) -> None:
    """The run fails with the same error either way, and leaves no output or staging folder."""
    messages = []
    for serial in (True, False):
        out = tmp_path / f"out-{serial}"
        with pytest.raises(InputError) as info:
            _run(demo_dir, out, monkeypatch, serial=serial, replace=replace)
        messages.append((str(info.value), info.value.problems))
        assert not out.exists()  # nothing written, no staging folder left
        assert list(tmp_path.glob(f".{out.name}.staging-*")) == []
    assert messages[0] == messages[1]


def test_an_error_in_a_forked_step_is_raised_as_in_a_serial_run(demo_dir, tmp_path, monkeypatch):
    def bad_ecology(ctx):
        raise InputError(Problem("the zones are wrong", file="zones.geojson", column="level",
                                 value="x", hint="fix them"))

    _same_error_serial_and_side(demo_dir, tmp_path, monkeypatch, {"step_ecology": bad_ecology})


def test_ground_sites_failing_ahead_of_their_turn_fail_there_as_in_a_serial_run(
        demo_dir, tmp_path, monkeypatch):
    def bad_sites(ctx, *args):
        raise InputError(Problem("the roads are wrong", file="roads.gpkg", column="width",
                                 value=-1, hint="fix them"))

    _same_error_serial_and_side(demo_dir, tmp_path, monkeypatch, {"_ground_sites": bad_sites})


def test_a_result_that_cannot_be_sent_back_is_made_here(demo_dir, tmp_path, monkeypatch):
    def network_with_unpicklable(ctx):
        ORIGINAL["step_network"](ctx)
        ctx.results["step_network_pid"] = os.getpid()
        ctx.extras["callback"] = lambda: None  # a lambda cannot be pickled

    ctx, _ = _run(demo_dir, tmp_path / "out", monkeypatch, serial=False,
                  replace={"step_network": network_with_unpicklable})
    assert ctx.results["step_network_pid"] == os.getpid()  # run again here, after rooftop PV
    assert ctx.results["network"] is not None and callable(ctx.extras["callback"])
    assert (tmp_path / "out" / "connectivity.csv").is_file()


def test_serial_when_asked_or_with_the_dask_engine(monkeypatch):
    monkeypatch.delenv(_schedule.SERIAL_ENV, raising=False)
    assert _schedule.side_by_side_possible("local")
    assert not _schedule.side_by_side_possible("dask")
    monkeypatch.setenv(_schedule.SERIAL_ENV, "1")
    assert not _schedule.side_by_side_possible("local")
    monkeypatch.setenv(_schedule.SERIAL_ENV, "0")
    assert _schedule.side_by_side_possible("local")


def test_the_plan_groups_only_independent_steps():
    plan = pipeline._plan(pipeline.STEPS)
    groups = [item for item in plan if isinstance(item, _schedule.Group)]
    assert [([s[0] for s in g.main], [s[0] for s in g.side]) for g in groups] == [
        (["rooftop PV"], ["ecology", "ecological network"]),
        (["exports", "QGIS styles and project"], ["maps and report"])]
    # a custom list without the maps runs the exports alone, and every step stays in order
    steps = [s for s in pipeline.STEPS if s[1] is not pipeline.step_publish]
    flat = []
    for item in pipeline._plan(steps):
        flat += item.order if isinstance(item, _schedule.Group) else [item[0]]
    assert flat == [label for label, _ in steps[:]]


def test_preload_imports_while_this_thread_waits_in_a_call(monkeypatch):
    import time

    monkeypatch.delitem(sys.modules, "tabnanny", raising=False)
    loader = _schedule._Preload(["tabnanny"])
    start = time.perf_counter()
    # a Python loop (this thread holds the lock): the import waits
    while time.perf_counter() - start < 0.3:
        pass
    assert "tabnanny" not in sys.modules
    # a call that releases the lock (as a shading kernel does): the import goes ahead
    deadline = time.monotonic() + 10
    while "tabnanny" not in sys.modules and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "tabnanny" in sys.modules and not loader.done.is_set()
    loader.finish()
    assert not loader.thread.is_alive()


def test_a_module_failing_in_the_import_thread_fails_again_where_it_is_used(tmp_path,
                                                                         monkeypatch):
    (tmp_path / "gis_broken_mod.py").write_text("raise ImportError('no libfoo: install foo')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    loader = _schedule._Preload(["gis_broken_mod", "tabnanny"], at_once=True)
    loader.finish()
    assert "gis_broken_mod" not in sys.modules and "tabnanny" in sys.modules
    with pytest.raises(ImportError, match="no libfoo: install foo"):
        import gis_broken_mod  # noqa: F401


def test_the_load_imports_its_modules_in_the_order_of_the_import_thread(demo_dir, monkeypatch):
    """The import thread beside the reads follows the load's own order of imports (so that
    neither thread holds a module the other waits for); none is left out."""
    import subprocess

    code = (
        "import sys, threading\n"
        "order = []\n"
        "class Finder:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if threading.current_thread() is threading.main_thread():\n"
        "            order.append(name)\n"
        "sys.meta_path.insert(0, Finder())\n"
        "from gis import pipeline\n"
        "from gis.config import load_runfile\n"
        "from gis.validate import load_run\n"
        "pipeline._preload_for_load = lambda ctx: None\n"
        "start = len(order)\n"
        f"load_run(load_runfile({str(demo_dir / 'run.toml')!r}))\n"
        "wanted = ['rasterio'] + pipeline.LOAD_PRELOAD\n"
        "print(' '.join(n for n in order[start:] if n in wanted))\n")
    monkeypatch.delenv(_schedule.SERIAL_ENV, raising=False)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["rasterio"] + pipeline.LOAD_PRELOAD


def test_the_import_thread_is_left_out_when_serial(demo_dir, monkeypatch):
    from gis.config import load_runfile

    ctx = pipeline.Context(cfg=load_runfile(demo_dir / "run.toml"), out_dir=Path("unused"))
    monkeypatch.setenv(_schedule.SERIAL_ENV, "1")
    assert pipeline._preload_for_load(ctx) is None
    assert "layer_reads" not in ctx.prepared  # nor the layers read in forked processes
    monkeypatch.delenv(_schedule.SERIAL_ENV)
    loader = pipeline._preload_for_load(ctx)
    loader.finish()
    assert loader.modules == ["rasterio"] + pipeline.LOAD_PRELOAD
    assert all(name in sys.modules for name in loader.modules)
    assert loader.then is _schedule.numba_registries
    reads = ctx.prepared.pop("layer_reads")
    assert sorted(reads) == ["forest", "landuse", "streets", "zones"]  # not the buildings
    for forked in reads.values():
        forked.kill()


def test_layers_above_the_size_limit_run_one_step_after_the_other(demo_dir, tmp_path,
                                                                 monkeypatch):
    """At city scale the forked process would add its peak memory to rooftop PV's: serial."""
    monkeypatch.setattr(pipeline, "SIDE_BY_SIDE_MAX_FEATURES", 10)  # the small demo is above it
    replace = {name: _warn_after(name, f"after {name}")
               for name in ("step_pv", "step_ecology", "step_network", "step_publish")}
    ctx, _ = _run(demo_dir, tmp_path / "out", monkeypatch, serial=False, replace=replace)
    assert pipeline._features(ctx) > 10
    assert {ctx.results[f"step_{n}_pid"] for n in ("pv", "ecology", "network", "publish")} \
        == {os.getpid()}


def test_the_site_list_is_formatted_once_beside_the_exports(demo_dir, tmp_path, monkeypatch):
    # sites.csv is written by the maps' process, whose site panel reads it back: no caller
    # formats more than the two rows the read-back is checked with (the panel formatted all
    # the rows again when the exports' process had not written the file yet)
    from gis import sites

    sizes = tmp_path / "sizes.txt"
    original = sites.csv_text

    def counted(gdf):
        with open(sizes, "a", encoding="utf-8") as fh:
            fh.write(f"{os.getpid()} {len(gdf)}\n")
        return original(gdf)

    monkeypatch.setattr(sites, "csv_text", counted)
    ctx, _ = _run(demo_dir, tmp_path / "out", monkeypatch, serial=False,
                  replace={"step_publish": _warn_after("step_publish", "maps made")})
    calls = [tuple(map(int, line.split())) for line in sizes.read_text().splitlines()]
    maps_pid = ctx.results["step_publish_pid"]
    assert maps_pid != os.getpid() and calls and all(pid == maps_pid for pid, _ in calls)
    assert max(n for _, n in calls) <= 2
    text = (tmp_path / "out" / "sites.csv").read_text(encoding="utf-8-sig")
    assert text.count("\n") == len(ctx.results["sites"]) + 1


def test_sites_csv_is_written_when_the_maps_are_made_again_here(demo_dir, tmp_path,
                                                                monkeypatch):
    # the maps' process wrote sites.csv but could not send its results back (a lambda): the
    # maps are made again here, and sites.csv with them, the same bytes as a serial run's
    me, ran = os.getpid(), tmp_path / "ran.txt"

    def publish_unsent(ctx):
        ORIGINAL["step_publish"](ctx)
        with open(ran, "a", encoding="utf-8") as fh:
            fh.write(f"{os.getpid()}\n")
        if os.getpid() != me:
            (ctx.stage / "sites.csv").unlink()  # what the rerun must write again
            ctx.extras["callback"] = lambda: None

    _run(demo_dir, tmp_path / "serial", monkeypatch, serial=True, replace={})
    _run(demo_dir, tmp_path / "side", monkeypatch, serial=False,
         replace={"step_publish": publish_unsent})
    pids = [int(p) for p in ran.read_text().split()]
    assert len(pids) == 2 and pids[0] != me and pids[1] == me  # forked, then made here
    assert ((tmp_path / "side" / "sites.csv").read_bytes()
            == (tmp_path / "serial" / "sites.csv").read_bytes())


def test_the_site_table_is_made_once_before_the_fork(demo_dir, tmp_path, monkeypatch):
    # the table with longitude/latitude and the text of its numbers, shared by sites.csv (the
    # maps' process) and sites.xlsx (here), are made here before the fork: neither process
    # makes them again
    from gis import csvtext, sites

    log = tmp_path / "made.txt"
    table, floats = sites._table_with_lonlat, csvtext.float_strings

    def noted(name, fn):
        def wrapped(arg):
            with open(log, "a", encoding="utf-8") as fh:
                fh.write(f"{name} {os.getpid()} {len(arg)}\n")
            return fn(arg)
        return wrapped

    monkeypatch.setattr(sites, "_table_with_lonlat", noted("table", table))
    monkeypatch.setattr(csvtext, "float_strings", noted("floats", floats))
    ctx, _ = _run(demo_dir, tmp_path / "out", monkeypatch, serial=False, replace={})
    n = len(ctx.results["sites"])
    made = [line.split() for line in log.read_text().splitlines()]
    whole = [(name, int(pid)) for name, pid, rows in made if int(rows) == n]
    tables = [pid for name, pid in whole if name == "table"]
    assert tables == [os.getpid()]  # once, here
    # each float column's text once, here (the workbook's slices reuse it)
    floats_in_table = int((table(ctx.results["sites"]).dtypes == "float64").sum())
    texts = [pid for name, pid in whole if name == "floats"]
    assert texts == [os.getpid()] * floats_in_table and floats_in_table > 10


def test_prepared_site_table_texts_are_those_of_its_columns():
    # made in two threads (the centroids beside the list's own columns): every float column's
    # text, lon and lat included, is the one the column alone gives, under its own position
    import geopandas as gpd
    import numpy as np
    import shapely

    from gis import csvtext, sites

    rng = np.random.default_rng(3)
    n = 500
    x, y = 534000 + rng.uniform(0, 900, n), 4331000 + rng.uniform(0, 900, n)
    gdf = gpd.GeoDataFrame(
        {"id": [f"B{i}" for i in range(n)], "kwh": rng.uniform(0, 1e6, n),
         "share": rng.uniform(0, 1, n), "rank": np.arange(n), "note": ["x"] * n},
        geometry=shapely.box(x, y, x + 20, y + 10).tolist(), crs="EPSG:4548")
    shared = sites._SharedTable(gdf)
    shared.prepare()
    table = sites._table_with_lonlat(gdf)
    floats = [j for j in range(table.shape[1]) if table.iloc[:, j].dtype == np.float64]
    assert list(table.columns[floats]) == ["kwh", "share", "lon", "lat"]
    assert sorted(shared._text) == floats
    for j in floats:
        assert shared._text[j].equals(csvtext.float_strings(table.iloc[:, j].to_numpy()))
    assert shared().equals(table)


def test_arrow_buffers_come_from_a_fork_safe_allocator(monkeypatch):
    # mimalloc (Arrow's default) can be left locked in a forked copy by a thread ending at the
    # fork; a run that forks takes glibc's malloc, unless the user named a pool
    import pyarrow as pa

    before = pa.default_memory_pool()
    try:
        monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "mimalloc")
        pa.set_memory_pool(pa.mimalloc_memory_pool())
        _schedule.fork_safe_allocator()
        assert pa.default_memory_pool().backend_name == "mimalloc"  # the user's choice
        monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL")
        _schedule.fork_safe_allocator()
        assert pa.default_memory_pool().backend_name == "system"
    finally:
        pa.set_memory_pool(before)


def _raise_value_error():
    raise ValueError("made to fail")


def test_a_forked_call_gives_its_value_or_says_it_did_not_return():
    import geopandas as gpd
    import pandas as pd
    import shapely

    frame = gpd.GeoDataFrame(
        {"name": pd.array(["东丽", None], dtype="string[pyarrow]")},
        geometry=[shapely.box(0, 0, 100, 100), shapely.box(100, 0, 200, 50)], crs="EPSG:4548")
    got = _schedule.Forked(lambda: (os.getpid(), frame)).result()
    assert got is not _schedule.NOT_DELIVERED
    pid, back = got
    assert pid != os.getpid()
    pd.testing.assert_frame_equal(back, frame)
    assert back.crs == frame.crs and back.geometry.area.tolist() == [10_000.0, 5_000.0]
    # raised there, or a value that cannot be sent back: the caller makes the call itself
    assert _schedule.Forked(_raise_value_error).result() is _schedule.NOT_DELIVERED
    assert _schedule.Forked(lambda: lambda: 0).result() is _schedule.NOT_DELIVERED
    slow = _schedule.Forked(lambda: __import__("time").sleep(60))
    slow.kill()
    assert slow.pid == 0 and slow.result() is _schedule.NOT_DELIVERED


def _load(cfg, **kw):
    from gis.validate import load_layers

    layers = load_layers(cfg, **kw)
    frames = {k: getattr(layers, k) for k in ("buildings", "landuse", "zones", "streets", "forest")}
    return frames, [repr(p) for p in layers.problems], layers.inputs, layers.crs


def test_layers_read_in_forked_processes_are_those_read_here(demo_dir, monkeypatch):
    """The layers after the buildings are read side by side in forked processes: the same
    frames (columns, dtypes, values, shapes, CRS), problems and input records (with hashes) as
    read here; a read that fails there is made here."""
    import pandas as pd

    from gis import validate
    from gis.config import load_runfile

    cfg = load_runfile(demo_dir / "run.toml")
    here = _load(cfg)
    pids = {}
    read = validate._read_and_hash

    def noting_pid(spec):
        pids[spec.kind] = os.getpid()
        return read(spec)

    monkeypatch.setattr(validate, "_read_and_hash", noting_pid)
    reads = validate.read_beside(cfg)
    assert sorted(reads) == ["forest", "landuse", "streets", "zones"]
    beside = _load(cfg, reads=reads)
    assert pids == {"buildings": os.getpid()}  # the others were read in other processes
    for kind, frame in here[0].items():
        assert frame is not None and len(frame)
        pd.testing.assert_frame_equal(beside[0][kind], frame, check_exact=True)
        assert beside[0][kind].crs == frame.crs
    assert beside[1:] == here[1:]
    # the land use's process fails: it is read here, with the same result
    pids.clear()

    def failing_there(spec):
        if spec.kind == "landuse" and os.getpid() != parent:
            raise MemoryError
        return noting_pid(spec)

    parent = os.getpid()
    monkeypatch.setattr(validate, "_read_and_hash", failing_there)
    again = _load(cfg, reads=validate.read_beside(cfg))
    assert pids == {"buildings": parent, "landuse": parent}
    pd.testing.assert_frame_equal(again[0]["landuse"], here[0]["landuse"], check_exact=True)
    assert again[1:] == here[1:]


def test_interruptions_wait_for_the_fork_to_be_done(monkeypatch):
    """Ctrl+C and SIGTERM are held back while the process forks: raised inside the fork's
    hooks (logging's lock is taken in one) they would be swallowed there, the lock left taken
    and the run hung at its next log call; they are delivered once the fork is done."""
    import signal

    fork = os.fork
    seen = []

    def watching_fork():
        seen.append(signal.pthread_sigmask(signal.SIG_BLOCK, []))
        return fork()

    monkeypatch.setattr(os, "fork", watching_fork)
    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    assert _schedule.Forked(lambda: 7).result() == 7
    assert {signal.SIGINT, signal.SIGTERM} <= seen[0]
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before  # as it was afterwards
    # the copy runs with the mask it was forked from: it can be stopped
    slow = _schedule.Forked(lambda: __import__("time").sleep(60))
    os.kill(slow.pid, signal.SIGTERM)
    assert slow.result() is _schedule.NOT_DELIVERED


def test_numba_registries_are_installed_by_the_import_thread():
    """Installed once before the side process is forked, they are its own at no cost (its
    first cached kernel then loads in ≈ 0.01 s instead of ≈ 0.35 s)."""
    import subprocess

    code = ("from gis import _schedule\n"
            "from numba.core.registry import cpu_target as c\n"
            "before = len(c.target_context._registries), len(c.typing_context._registries)\n"
            "_schedule._Preload([], at_once=True, then=_schedule.numba_registries).finish()\n"
            "print(*before, len(c.target_context._registries), len(c.typing_context._registries))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before_target, before_typing, target, typing = map(int, out.stdout.split())
    assert (before_target, before_typing) == (0, 0) and target > 0 and typing > 0

"""The whole run: load and validate, analyse, check targets, publish — with progress.

The pipeline only wires the domain functions together; each step is a plain function of the run
:class:`Context` and can be called on its own.  Outputs are first written into a staging folder
beside the output folder; only when every file is written does the staging folder replace the
output folder, and the run before it is kept as ``<dir>.previous`` (so ``gis-planner compare``
always has something to compare with, and a killed run never leaves half a result).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from gis import _schedule, io
from gis._errors import InputError, Problem
from gis.config import RunConfig, load_runfile
from gis.validate import Layers, load_run, read_beside

PREVIOUS_SUFFIX = ".previous"


@dataclass
class Context:
    """What one run knows: settings, layers, results, files written, timings."""

    cfg: RunConfig
    out_dir: Path
    stage: Path | None = None
    layers: Layers | None = None
    targets: dict[str, Any] | None = None
    results: dict[str, Any] = field(default_factory=dict)
    entries: list[dict] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    progress: Callable[[str], None] | None = None
    #: work a step was given ahead of its turn (see :mod:`gis._schedule`)
    prepared: dict[str, Any] = field(default_factory=dict)

    def path(self, name: str) -> Path:
        """Where an output file goes (inside the staging folder during the run)."""
        target = (self.stage or self.out_dir) / name
        self.files[name] = name
        return target


Step = tuple[str, Callable[[Context], None]]


def step_load(ctx: Context) -> None:
    """Read the targets and every layer; stop with every error found."""
    ctx.targets, ctx.layers, problems = load_run(ctx.cfg, progress=ctx.progress,
                                                 reads=ctx.prepared.pop("layer_reads", None))
    problems += _output_dir_problems(ctx)
    if any(p.severity == "error" for p in problems):
        raise InputError(problems)


def step_pv(ctx: Context) -> None:
    """Rooftop PV potential per building, roll-ups and the PV targets."""
    if ctx.layers.buildings is None:
        return
    from gis import _cache, horizon, rooftop

    params = rooftop.pv_params(**ctx.cfg.pv)
    weather = _weather(ctx)
    p = ctx.targets["params"]
    irradiance = ctx.layers.rasters.get("irradiance")
    tiles_before = _cache.counts()
    pv = _engine(ctx).pv_potential(
        ctx.layers.buildings, params=params, weather=weather, irradiance=irradiance,
        dsm=ctx.layers.rasters.get("dsm"), dem=ctx.layers.rasters.get("dem"),
        grid_co2_t_per_mwh=p["grid_co2_t_per_mwh"], coal_gce_per_kwh=p["coal_gce_per_kwh"],
        new_building_since=int(p["new_building_since"]))
    pv = _with_roof_planes(ctx, pv, params, weather)
    # horizon tiles reused or computed: run.json only (no output depends on it)
    ctx.extras.setdefault("resolved_settings", {})["horizon_cache"] = horizon.cache_record(
        tiles_before, on=params.horizon_cache, engine=ctx.cfg.engine.kind)
    note = ctx.layers.yields_note
    if note:  # no weather near the district: yields missing, never 0
        pv = rooftop.without_yields(pv, note)
        if ctx.results.get("roof_planes") is not None:
            ctx.results["roof_planes"] = rooftop.without_yields(ctx.results["roof_planes"], note)
    ctx.results["pv"] = pv
    ctx.results["pv_params"] = params
    ctx.results["pv_shading"] = rooftop.shading_summary(pv, params, ctx.layers.buildings)
    ctx.results["pv_rollups"] = rooftop.pv_rollups(pv)
    entries, extras = rooftop.pv_targets(pv, ctx.targets)
    ctx.entries += entries
    ctx.extras.update(extras)


def _weather(ctx: Context):
    """The weather file's data, None for the built-in climate model, or
    :data:`gis.rooftop.NO_WEATHER` when there is no weather near the district."""
    from gis import rooftop, solar

    if ctx.cfg.weather:
        return solar.read_weather(ctx.cfg.weather)
    return rooftop.NO_WEATHER if ctx.layers.yields_note else None


def _with_roof_planes(ctx: Context, pv, params, weather):
    """With a surface model (``[layers.dsm]``): roof planes, and building rows summed from them."""
    dsm = ctx.layers.rasters.get("dsm")
    if dsm is None:
        return pv
    from gis import planes

    p = ctx.targets["params"]
    pv, roof = planes.roof_planes(
        ctx.layers.buildings, pv, dsm, dem=ctx.layers.rasters.get("dem"), params=params,
        weather=weather, irradiance=ctx.layers.rasters.get("irradiance"),
        grid_co2_t_per_mwh=p["grid_co2_t_per_mwh"], coal_gce_per_kwh=p["coal_gce_per_kwh"])
    ctx.results["roof_planes"] = roof
    ctx.layers.problems += planes.coverage_problems(pv, dsm, dem=ctx.layers.rasters.get("dem"))
    return pv


def step_ecology(ctx: Context) -> None:
    """Per-zone blue-green, forest, stock and carbon; the ecology targets and candidates."""
    lay = ctx.layers
    if lay.zones is None or (lay.landuse is None and "landcover" not in lay.rasters):
        return
    from gis import ecology, landuse

    options = landuse.ecology_options(**ctx.cfg.ecology)
    ctx.results["ecology_options"] = options
    zones = _with_barrier(lay.zones)
    if lay.landuse is not None:
        scheme = ctx.cfg.layers["landuse"].scheme
        # overlapping OSM polygons are flattened once, so that the zone table, the candidate
        # lists and the maps all count the same areas
        layer = ecology.flattened_landuse(lay.landuse, scheme, options)
        table = _engine(ctx).zone_accounts(layer, zones, scheme=scheme, options=options,
                                           stands=lay.forest, streets=lay.streets)
        ctx.results["landuse"] = landuse.classify_layer(layer, scheme, options=options)
    else:
        table = None
    if "landcover" in lay.rasters:
        spec = lay.rasters["landcover"]
        raster_table = ecology.landcover_accounts(spec, zones, scheme=spec.scheme,
                                                  options=options)
        ctx.results["landcover_table"] = raster_table
        if table is not None:
            ctx.results["source_comparison"] = ecology.compare_sources(table, raster_table)
        else:
            table = raster_table
    ctx.results["zones"] = table
    entries, extras = ecology.ecology_targets(table, ctx.targets,
                                              landuse_classified=ctx.results.get("landuse"),
                                              zones=zones, options=options)
    ctx.entries += entries
    ctx.extras.update(extras)


def step_network(ctx: Context) -> None:
    """Habitat patches, landscape metrics, PC/ECA/dPC, corridors and the connectivity gain of
    the afforestation candidates; writes patches.gpkg, connectivity.csv, corridors.gpkg."""
    classified = ctx.results.get("landuse")
    if classified is None or ctx.layers.zones is None:
        return
    from gis import network

    options = network.network_options(ctx.cfg.network)
    if not options.enabled:
        return
    gaps = {e["id"]: float(e["gap"]) for e in ctx.entries
            if e.get("gap_unit") == "ha" and e.get("gap") is not None}
    zones = _with_barrier(ctx.layers.zones)
    cands = ctx.extras.get("afforestation")
    if cands is None or not len(cands):
        # no forest gap to close: the parcels that would join patches are still worth listing
        cands = network.network_candidates(classified, zones,
                                           options=ctx.results.get("ecology_options"))
    result = network.barrier_network(classified, zones, options=options, candidates=cands,
                                     gaps_ha=gaps)
    ctx.results["network"] = result
    if result.candidates is not None:
        ctx.extras["afforestation"] = result.candidates
    network.write_outputs(result, ctx.path)


def step_ground(ctx: Context) -> None:
    """Ground-mounted PV (ponds, facility farmland, roadsides), money per site, scenarios."""
    from gis import finance, ground

    fparams = finance.finance_params(**ctx.cfg.finance)
    ctx.extras.setdefault("resolved_settings", {})["finance"] = fparams.as_dict()
    ctx.extras.setdefault("definitions", {})["finance"] = fparams.as_dict()
    if ctx.results.get("pv") is not None:
        ctx.results["pv"] = finance.add_finance(ctx.results["pv"], type_column="category",
                                                params=fparams)
    gap_list = ctx.extras.get("new_building_gap")
    if gap_list is not None and len(gap_list):
        ctx.extras["new_building_gap"] = finance.add_finance(gap_list, type_column="category",
                                                             params=fparams)
    lay = ctx.layers
    if lay.landuse is None:
        return
    gparams = ground.ground_params(**ctx.cfg.ground)
    ctx.extras["resolved_settings"]["ground"] = gparams.as_dict()
    ctx.extras["definitions"]["ground"] = gparams.as_dict()
    # made beside rooftop PV when the steps run side by side (:func:`prepare_ground`)
    made = ctx.prepared.pop("ground", None)
    if made is None:
        made = _ground_sites(ctx, gparams, fparams)
    g = ctx.results["ground"] = made["ground"]
    ctx.results["ground_rollups"] = made["ground_rollups"]
    if "bluegreen_ground" in made:
        ctx.results["bluegreen_ground"] = made["bluegreen_ground"]
    ground.ground_scenario(ctx.entries, g)
    _ground_exports(ctx)


def _ground_sites(ctx: Context, gparams, fparams) -> dict[str, Any]:
    """Ground-PV sites with their money, roll-ups, and blue-green with ground PV: what
    :func:`step_ground` needs of ecology (classes, options, zone table) but not of rooftop PV."""
    from gis import finance, ground, rooftop

    lay = ctx.layers
    roads = None
    if gparams.roads:
        path = ctx.cfg.base / gparams.roads
        roads = ground.read_roads(path, layer=gparams.roads_layer, crs=lay.crs)
        lay.inputs.append({"kind": "roads", "path": str(path), "sha256": io.file_hash(path)})
    p = ctx.targets["params"]
    layer = ctx.results.get("landuse")
    weather = _weather(ctx)
    note = ctx.layers.yields_note
    g = ground.ground_potential(
        layer if layer is not None else lay.landuse, scheme=ctx.cfg.layers["landuse"].scheme,
        zones=_with_barrier(lay.zones) if lay.zones is not None else None, streets=lay.streets,
        params=gparams, pv_params=ctx.results.get("pv_params") or rooftop.pv_params(**ctx.cfg.pv),
        weather=None if note else weather, roads=roads,
        yields={k: float("nan") for k in ground.KINDS} if note else None,
        options=ctx.results.get("ecology_options"), grid_co2_t_per_mwh=p["grid_co2_t_per_mwh"],
        coal_gce_per_kwh=p["coal_gce_per_kwh"])
    if note:
        g = rooftop.without_yields(g, note)
    g = finance.add_finance(g, type_column="kind", params=fparams)
    made = {"ground": g, "ground_rollups": ground.ground_rollups(g)}
    if ctx.results.get("zones") is not None:
        made["bluegreen_ground"] = ground.bluegreen_with_ground(ctx.results["zones"], g,
                                                                params=gparams)
    return made


def prepare_ground(ctx: Context) -> None:
    """Make :func:`step_ground`'s sites ahead of its turn (``ctx.prepared["ground"]``), in the
    forked process of ecology and the network while rooftop PV runs: they read no result of
    rooftop PV (the PV parameters are the run file's, as :func:`step_pv` makes them).  Left
    to the step itself when it fails here: the step then raises the error in its turn."""
    if ctx.layers is None or ctx.layers.landuse is None:
        return
    from gis import finance, ground

    inputs = len(ctx.layers.inputs)
    try:
        made = _ground_sites(ctx, ground.ground_params(**ctx.cfg.ground),
                             finance.finance_params(**ctx.cfg.finance))
    except Exception:  # noqa: BLE001 - not swallowed: step_ground makes them again and raises
        del ctx.layers.inputs[inputs:]
        return
    ctx.prepared["ground"] = made


def _ground_exports(ctx: Context) -> None:
    """Money by street (roofs and ground) in ``ctx.results``; ground_pv.csv/.gpkg, roll-ups by
    street and kind, blue-green with and without ground PV and the money by street named, and
    their writers left to the exports (``ctx.prepared["ground_writes"]``, :func:`_export_jobs`),
    which write them beside the maps instead of here before them."""
    from functools import partial

    from gis import finance

    g = ctx.results["ground"]
    jobs = [partial(io.write_csv, ctx.path("ground_pv.csv"), g.drop(columns="geometry")),
            partial(io.write_gpkg, ctx.path("ground_pv.gpkg"), g, layer="ground_pv")]
    for level, table in ctx.results["ground_rollups"].items():
        jobs.append(partial(io.write_csv, ctx.path(f"ground_by_{level}.csv"), table))
    if ctx.results.get("bluegreen_ground") is not None:
        jobs.append(partial(io.write_csv, ctx.path("bluegreen_ground.csv"),
                            ctx.results["bluegreen_ground"]))
    parts = [g.assign(site="ground", type=g["kind"])]
    if ctx.results.get("pv") is not None:
        pv = ctx.results["pv"]
        parts.append(pv.assign(site="roof", type=pv["category"]))
    both = pd.concat([pd.DataFrame(x.drop(columns="geometry")) for x in parts], ignore_index=True)
    table = finance.finance_by(both, ["street", "site"])
    ctx.results["finance_by_street"] = table
    jobs.append(partial(io.write_csv, ctx.path("finance_by_street.csv"), table))
    ctx.prepared["ground_writes"] = jobs


def step_scorecard(ctx: Context) -> None:
    """Assemble the scorecard and write it."""
    from gis.targets import scorecard

    card = scorecard(ctx.entries, ctx.targets, project=ctx.cfg.name, synthetic=ctx.cfg.synthetic)
    ctx.results["scorecard"] = card
    io.write_text(ctx.path("scorecard.json"), _json(card))


def step_exports(ctx: Context) -> None:
    """Per-building PV, zones, parcels, ranked site and afforestation lists.

    The files are independent: they are written side by side in threads (:func:`io.run_jobs`),
    the longest first.
    """
    jobs = ctx.prepared.pop("export_jobs", None)
    io.run_jobs(_export_jobs(ctx) if jobs is None else jobs)


def _export_jobs(ctx: Context) -> list[Callable[[], Any]]:
    """The writers of :func:`step_exports`, the longest first; every file is named (in
    ``ctx.files``) and the sites ranked (``ctx.results["sites"]``) before any is written."""
    from functools import partial

    from gis import sites

    meta = _meta(ctx)
    first: list[Callable[[], Any]] = []  # the long writers, started first
    jobs: list[Callable[[], Any]] = ctx.prepared.pop("ground_writes", [])  # see _ground_exports
    lists: list[Callable[[], Any]] = []  # afforestation.csv: read by the ecology map's panel
    pages: list[Callable[[], Any]] = []  # beside the exports, run by the maps' process
    pv = ctx.results.get("pv")
    if pv is not None:
        buildings = partial(io.write_gpkg, ctx.path("buildings_pv.gpkg"), pv, layer="buildings_pv")
        # without yields (no weather near the district) the sites are ranked by capacity
        ranked = sites.select_sites(pv, rank_by=_site_rank(pv))
        ctx.results["sites"] = ranked
        csv_, xlsx_, gpkg_ = sites.export_jobs(
            ranked, [ctx.path(f"sites{suffix}") for suffix in (".csv", ".xlsx", ".gpkg")],
            meta=meta, kind="sites", max_excel_rows=ctx.cfg.output.max_excel_rows,
            complete_in=("sites.csv", "sites.gpkg"))
        first += [xlsx_, buildings, gpkg_, csv_]
        pages.append(csv_)
        for level, table in (ctx.results.get("pv_rollups") or {}).items():
            jobs.append(partial(io.write_csv, ctx.path(f"pv_by_{level}.csv"), table))
        roof = ctx.results.get("roof_planes")
        if roof is not None:
            first.append(partial(io.write_gpkg, ctx.path("roof_planes.gpkg"), roof,
                                 layer="roof_planes"))
        gap_list = ctx.extras.get("new_building_gap")
        if gap_list is not None and len(gap_list):
            jobs.append(partial(io.write_csv, ctx.path("new_building_gap.csv"), gap_list))
    zones = ctx.results.get("zones")
    if zones is not None:
        jobs.append(partial(io.write_csv, ctx.path("zones.csv"), zones))
        if "geometry" in zones:
            import geopandas as gpd

            geo = gpd.GeoDataFrame(zones, geometry="geometry", crs=ctx.layers.crs)
            geo = geo[~geo.geometry.isna()]
            jobs.append(partial(io.write_gpkg, ctx.path("zones.gpkg"), geo, layer="zones"))
    for key, name in (("landcover_table", "zones_landcover.csv"),
                      ("source_comparison", "landcover_comparison.csv")):
        table = ctx.results.get(key)
        if table is not None and not (key == "landcover_table" and zones is table):
            jobs.append(partial(io.write_csv, ctx.path(name), table))
    classified = ctx.results.get("landuse")
    if classified is not None:
        cols = [c for c in ("id", "code", "group", "name_zh") if c in classified]
        jobs.append(partial(io.write_csv, ctx.path("parcels.csv"), classified[cols]))
    for name in ("afforestation", "bluegreen_candidates"):
        cand = ctx.extras.get(name)
        if cand is not None and len(cand):
            list_jobs = sites.export_jobs(
                cand, [ctx.path(f"{name}{suffix}") for suffix in (".csv", ".xlsx", ".gpkg")],
                meta=meta, kind="afforestation", max_excel_rows=ctx.cfg.output.max_excel_rows,
                complete_in=(f"{name}.csv", f"{name}.gpkg"))
            jobs += list_jobs
            if name == "afforestation":
                lists.append(list_jobs[0])  # its .csv
    if ctx.prepared.get("exports_alongside"):
        # the maps, made meanwhile in another process, read these CSV files when written;
        # sites.csv is written there, first: its rows are the PV map's site list, formatted
        # once for both (:func:`step_publish`)
        ctx.prepared["pages_jobs"] = pages
        return lists + [job for job in first + jobs if job not in lists and job not in pages]
    return first + jobs


def _site_rank(pv) -> str:
    """``annual_kwh``, or ``capacity_kwp`` when no yield was computed."""
    return "annual_kwh" if pv["annual_kwh"].notna().any() else "capacity_kwp"


def step_publish(ctx: Context) -> None:
    """Maps, report and dashboard.

    Beside the exports (:func:`_prepare_exports`) this step first writes ``sites.csv``, which
    the PV map's site panel then reads back instead of formatting the same rows again.
    """
    from gis import dashboard

    io.run_jobs(ctx.prepared.pop("pages_jobs", []), threads=1)
    written = dashboard.publish(
        ctx.stage or ctx.out_dir, pv=ctx.results.get("pv"), zones=ctx.results.get("zones"),
        landuse=ctx.results.get("landuse"), candidates=ctx.extras.get("afforestation"),
        streets=ctx.layers.streets, scorecard=ctx.results["scorecard"], meta=_meta(ctx),
        rollups=ctx.results.get("pv_rollups"), offline=ctx.cfg.output.offline,
        files=dict(ctx.files), ground=_ground_publish(ctx),
        network=ctx.results.get("network"),
        roof_planes=ctx.results.get("roof_planes"), exported=_exported(ctx))
    for path in written.values():
        ctx.files[Path(path).name] = Path(path).name


def _exported(ctx: Context) -> dict[str, Any]:
    """The ranked site list and the list files the exports wrote, for the maps' site panels."""
    folder = ctx.stage or ctx.out_dir
    out: dict[str, Any] = {"sites": ctx.results.get("sites")}
    alongside = ctx.prepared.get("exports_alongside")
    for name in ("sites.csv", "afforestation.csv"):
        # sites.csv: written by the maps' process itself, first (:func:`step_publish`);
        # afforestation.csv: beside the maps, first of the exports.  A panel reads the file if
        # it is there by then (written whole, then renamed) and checked, and formats the list
        # if not
        if name in ctx.files and (alongside or (folder / name).is_file()):
            out[name] = folder / name
    return out


def _ground_publish(ctx: Context) -> dict[str, Any] | None:
    """What the maps and the report show of ground PV and money (None without them)."""
    if ctx.results.get("ground") is None and ctx.results.get("finance_by_street") is None:
        return None
    rollups = ctx.results.get("ground_rollups") or {}
    entry = next((e for e in ctx.entries if e.get("id") == "renewable-substitution"), {})
    return {"sites": ctx.results.get("ground"), "by_kind": rollups.get("kind"),
            "by_street": rollups.get("street"),
            "finance_by_street": ctx.results.get("finance_by_street"),
            "bluegreen": ctx.results.get("bluegreen_ground"), "scenarios": entry.get("scenarios")}


def step_styles(ctx: Context) -> None:
    """A default QGIS style in every GeoPackage written, and ``project.qgz`` opening them all."""
    from gis import styles

    run = ctx.cfg.name + (" (synthetic demo data)" if ctx.cfg.synthetic else "")
    layers = styles.style_outputs(ctx.stage or ctx.out_dir, targets=ctx.targets,
                                  crs=ctx.layers.crs, title=run, description=f"run {run}")
    if layers:
        ctx.files[styles.PROJECT_FILE] = styles.PROJECT_FILE


def step_provenance(ctx: Context) -> None:
    """run.json: resolved run file, package versions, inputs with hashes, timings, warnings."""
    ctx.files["run.json"] = "run.json"
    record = {
        "project": ctx.cfg.name,
        "synthetic": ctx.cfg.synthetic,
        "run_file": str(ctx.cfg.path) if ctx.cfg.path else None,
        "settings": {**_resolved(ctx.cfg), **ctx.extras.get("resolved_settings", {})},
        "targets": {"name": ctx.targets["name"], "source": ctx.targets["source"],
                    "params": ctx.targets["params"]},
        "working_crs": f"EPSG:{ctx.layers.crs.to_epsg()}" if ctx.layers.crs.to_epsg()
        else ctx.layers.crs.to_string(),
        "inputs": ctx.layers.inputs,
        "warnings": [str(p) for p in ctx.layers.warnings],
        "definitions": _definitions(ctx),
        "versions": _versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "run_id": _run_id(ctx),
        "timings_s": {k: round(v, 3) for k, v in ctx.timings.items()},
        "outputs": sorted(ctx.files),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    io.write_text(ctx.path("run.json"), _json(record))


STEPS: list[Step] = [
    ("load and validate layers", step_load),
    ("rooftop PV", step_pv),
    ("ecology", step_ecology),
    ("ecological network", step_network),
    ("ground PV and finance", step_ground),
    ("scorecard", step_scorecard),
    ("exports", step_exports),
    ("maps and report", step_publish),
    ("QGIS styles and project", step_styles),
    ("provenance", step_provenance),
]


@io.gc_relaxed()
def run(cfg: RunConfig | str | Path, *, out_dir: str | Path | None = None, offline: bool | None = None,
        force: bool = False, steps: list[Step] | None = None,
        progress: Callable[[str], None] | None = None) -> Context:
    """Run the whole job (Python's cyclic garbage collector less often meanwhile:
    :func:`gis.io.gc_relaxed`).

    Parameters
    ----------
    cfg : RunConfig or path
        The run file.
    out_dir : path, optional
        Overrides ``[output] dir``.
    offline : bool, optional
        Overrides ``[output] offline``.
    force : bool
        Discard the previous run instead of keeping it as ``<dir>.previous``, and write into a
        folder that does not look like a run's output.
    steps : list, optional
        The steps to run (default :data:`STEPS`).
    progress : callable, optional
        Called with each step's label.

    Returns
    -------
    Context
        With the results and the files written.
    """
    if not isinstance(cfg, RunConfig):
        cfg = load_runfile(cfg)
    if offline is not None or out_dir is not None:
        from dataclasses import replace

        cfg = replace(cfg, output=replace(
            cfg.output,
            dir=Path(out_dir).resolve() if out_dir is not None else cfg.output.dir,
            offline=cfg.output.offline if offline is None else offline))
    ctx = Context(cfg=cfg, out_dir=cfg.output.dir, progress=progress)
    ctx.extras["force"] = force
    steps = STEPS if steps is None else steps
    first, rest = steps[0], steps[1:]
    if _schedule.side_by_side_possible(cfg.engine.kind):
        _schedule.fork_safe_allocator()  # before any thread or fork of the run
    loader = _preload_for_load(ctx) if first[1] is step_load else None
    try:
        _schedule.run_steps(ctx, [first])
    finally:
        if loader is not None:
            loader.finish()
        for forked in ctx.prepared.pop("layer_reads", {}).values():  # the load did not take it
            forked.kill()
    ctx.out_dir.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_stages(ctx.out_dir)
    ctx.stage = Path(tempfile.mkdtemp(prefix=f".{ctx.out_dir.name}.staging-{os.getpid()}-",
                                      dir=ctx.out_dir.parent))
    import pyogrio

    # GeoPackages record their write time; pin it so that the same inputs give the same bytes
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": "2000-01-01T00:00:00.000Z"})
    try:
        with _terminate_as_interrupt():
            _run_steps(ctx, rest)
            # the ground-PV files, when no exports step wrote them (:func:`_ground_exports`)
            io.run_jobs(ctx.prepared.pop("ground_writes", []))
            _swap_in(ctx.stage, ctx.out_dir, keep_previous=not force)
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": None})
        _close_engine(ctx)
        if ctx.stage.exists():
            shutil.rmtree(ctx.stage, ignore_errors=True)
    ctx.stage = None
    return ctx


class Terminated(KeyboardInterrupt):
    """The run was asked to stop (SIGTERM); the staging folder is removed, outputs untouched."""


@contextlib.contextmanager
def _terminate_as_interrupt():
    """Turn SIGTERM into an exception while the run writes, so its clean-up runs."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _remove_stale_stages(out_dir: Path) -> None:
    """Remove staging folders left by runs that were killed (their process is gone)."""
    for stage in out_dir.parent.glob(f".{out_dir.name}.staging-*"):
        pid = stage.name.removeprefix(f".{out_dir.name}.staging-").split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(stage, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


#: Imported in a thread while rooftop PV sits in compiled calls that release the interpreter
#: lock (:class:`gis._schedule._Preload`), so that neither the exports nor the maps (forked
#: later, see :func:`_plan`) wait for them.
PRELOAD = ("xlsxwriter", "gis.sites", "gis.ground", "gis.finance", "gis.styles", "gis.report",
           "gis.maps", "gis.sitepanel", "gis.dashboard")


def _preload_for_load(ctx: Context):
    """A thread importing what the load's checks import after the layers are read (rasterio,
    pvlib through :mod:`gis.solar`, :mod:`gis.landuse`, numba through :mod:`gis.rooftop`:
    ≈ 1.3 s), and then installing numba's registries (:func:`gis._schedule.numba_registries`,
    inherited by the processes forked later), while the layers are read (pyogrio releases the
    interpreter lock in GDAL); None when the steps run one after the other
    (``GIS_PLANNER_SERIAL``) or outside the main thread.

    The thread imports them in the order the load does (:func:`gis.validate.load_layers`), and
    the reads' own modules (pyogrio, pyarrow's pandas conversion, the targets) are imported
    here first: so the two threads never each hold a module another waits for — the load
    waits at most for a module the thread is still importing.

    Before the thread starts, the layers after the first are forked off to be read side by
    side (:func:`gis.validate.read_beside`, ``ctx.prepared["layer_reads"]``) when steps may run
    side by side: their processes then have every module the reads use, and no thread's lock.
    """
    if _schedule.serial_asked():
        return None
    import pyarrow.pandas_compat  # noqa: F401 - used by the reads; see above
    import pyogrio  # noqa: F401

    import gis.targets  # noqa: F401

    if _schedule.side_by_side_possible(ctx.cfg.engine.kind):
        ctx.prepared["layer_reads"] = read_beside(ctx.cfg)
    rasters = ["rasterio"] if set(ctx.cfg.layers) & {"irradiance", "landcover", "dsm", "dem"} \
        else []
    return _schedule._Preload(rasters + LOAD_PRELOAD, at_once=True,
                              then=_schedule.numba_registries)


#: Imported beside the layers' reads (:func:`_preload_for_load`), in the load's order.
LOAD_PRELOAD = ["gis.solar", "gis.datums", "gis.landuse", "gis.rooftop", "gis.finance",
                "gis.ground"]


#: Above this many buildings + land-use parcels the steps run one after the other: side by
#: side, rooftop PV's and the network's peaks add up (measured at 10⁶ buildings and 2.5 × 10⁵
#: parcels: 10.1 GB side by side against 7.4 GB one after the other, beyond the 8 GB target),
#: while at district scale the second process adds little (demo: 1 067 → 1 114 MiB peak).
SIDE_BY_SIDE_MAX_FEATURES = 300_000


def _features(ctx: Context) -> int:
    layers = ctx.layers
    return sum(len(f) for f in (getattr(layers, "buildings", None), getattr(layers, "landuse", None))
               if f is not None)


def _run_steps(ctx: Context, steps: list[Step]) -> None:
    """Run the steps after loading: side by side where :func:`_plan` allows and the layers hold
    at most :data:`SIDE_BY_SIDE_MAX_FEATURES` buildings and parcels, else in order."""
    if (not _schedule.side_by_side_possible(ctx.cfg.engine.kind)
            or _features(ctx) > SIDE_BY_SIDE_MAX_FEATURES):
        _run_serial(ctx, steps)
        return
    for item in _plan(steps):
        if isinstance(item, _schedule.Group):
            _schedule.run_group(ctx, item)
        else:
            _schedule.run_steps(ctx, [item])


def _run_serial(ctx: Context, steps: list[Step]) -> None:
    """Run the steps one after the other; close the dask engine right after the last step that
    uses it (:data:`ENGINE_STEPS`), so that the later steps run without the cluster's worker
    processes, their memory and the client's threads (a failing step leaves it to the clean-up
    in :func:`run`)."""
    fns = [fn for _, fn in steps]
    last = max((i for i, fn in enumerate(fns) if fn in ENGINE_STEPS), default=-1)
    _schedule.run_steps(ctx, steps[:last + 1])
    _close_engine(ctx)
    _schedule.run_steps(ctx, steps[last + 1:])


def _plan(steps: list[Step]) -> list:
    """The steps, with those that may run side by side grouped (:class:`gis._schedule.Group`).

    What each step reads of the others (``ctx.results``, ``ctx.extras``, ``ctx.entries``):
    ecology reads only the layers; the ecological network reads ecology's land-use classes,
    options, candidates and its gaps (entries in ha); rooftop PV reads only the layers.  So
    ecology and the network run in a forked process while rooftop PV runs here, and there
    after them the ground-PV sites (:func:`prepare_ground`: they read ecology's classes and
    zones, nothing of rooftop PV).  Ground PV and finance reads both branches, the scorecard
    every entry, the exports everything before them.  The maps and report read the exports' ranked sites and file names only, so they run in a
    forked process once the exports are planned (:func:`_export_jobs`) while the files are
    written here, and the QGIS styles (which read every GeoPackage written, and no page) after
    them.  The provenance reads everything.
    """
    fns = [fn for _, fn in steps]
    out: list = []
    i = 0
    while i < len(steps):
        if fns[i] is step_pv and fns[i + 1:i + 3] == [step_ecology, step_network]:
            out.append(_schedule.Group(main=[steps[i]], side=list(steps[i + 1:i + 3]),
                                       preload=PRELOAD if step_publish in fns else (),
                                       order=[label for label, _ in steps[i:i + 3]],
                                       side_after=prepare_ground if fns[i + 3:i + 4]
                                       == [step_ground] else None))
            i += 3
        elif fns[i] is step_exports and fns[i + 1:i + 2] == [step_publish]:
            # the QGIS styles read the GeoPackages only (the maps write none): they follow the
            # exports here while the maps are still being made
            n = 3 if fns[i + 2:i + 3] == [step_styles] else 2
            out.append(_schedule.Group(main=[steps[i]] + list(steps[i + 2:i + n]),
                                       side=[steps[i + 1]], prepare=_prepare_exports,
                                       finish=_finish_exports,
                                       order=[label for label, _ in steps[i:i + n]]))
            i += n
        else:
            out.append(steps[i])
            i += 1
    return out


def _prepare_exports(ctx: Context) -> None:
    """Name the exports' files and rank the sites before the maps are forked off."""
    ctx.prepared["exports_alongside"] = True  # the lists' CSV files first (:func:`_export_jobs`)
    ctx.prepared["export_jobs"] = _export_jobs(ctx)
    # sites.csv (the maps' process) and sites.xlsx (here) share the table with longitude and
    # latitude and the text of its numbers: made once, before the fork, for both
    for job in ctx.prepared.get("pages_jobs", []):
        getattr(job, "prepare", lambda: None)()


def _finish_exports(ctx: Context) -> None:
    ctx.prepared.pop("export_jobs", None)
    ctx.prepared.pop("exports_alongside", None)
    # "pages_jobs" stays: a failed maps process is rerun here after this, and writes sites.csv


def _swap_in(stage: Path, out_dir: Path, *, keep_previous: bool) -> None:
    """Replace ``out_dir`` by the finished ``stage``; keep the old one as ``<dir>.previous``."""
    previous = out_dir.with_name(out_dir.name + PREVIOUS_SUFFIX)
    io.replace_dir(stage, out_dir, previous=previous if keep_previous else None)


def _output_dir_problems(ctx: Context) -> list[Problem]:
    """An output folder that holds inputs, or foreign files, is refused."""
    out = ctx.out_dir.resolve()
    problems = []
    inputs = [Path(i["path"]).resolve() for i in ctx.layers.inputs]
    if ctx.cfg.path:
        inputs.append(ctx.cfg.path.resolve())
    for path in inputs:
        if path == out or out in path.parents:
            problems.append(Problem("the output folder holds an input file: a run replaces its "
                                    "output folder, so inputs would be lost", file=str(path),
                                    column="output.dir", value=str(out),
                                    hint="choose an output folder apart from the layers"))
            break
    if out.exists():
        # never replace a folder that is not a run's output, even with --force: a run swaps
        # its whole output folder, and a planner's own files there would be lost
        if not out.is_dir():
            problems.append(Problem("the output path is a file", column="output.dir", value=str(out),
                                    hint="choose a folder"))
        elif any(out.iterdir()) and not (out / "run.json").exists():
            problems.append(Problem("the output folder is not empty and holds no earlier run: "
                                    "a run replaces its whole output folder",
                                    column="output.dir", value=str(out),
                                    hint="choose a new or empty folder"))
    return problems


#: The steps that run work through :func:`_engine` (a dask engine is closed after the last).
ENGINE_STEPS = (step_pv, step_ecology)


def _close_engine(ctx: Context) -> None:
    """Shut the run's dask engine down, if one was started (a later use starts a new one)."""
    engine = ctx.extras.pop("engine", None)
    if engine is not None:
        engine.close()


def _engine(ctx: Context):
    """What runs the per-building and per-zone work: one dask Engine per run, or local calls."""
    if ctx.cfg.engine.kind == "dask":
        if "engine" not in ctx.extras:
            from gis import distributed

            ctx.extras["engine"] = distributed.Engine(ctx.cfg.engine)
        return ctx.extras["engine"]
    from gis import ecology, rooftop

    class _Local:
        pv_potential = staticmethod(rooftop.pv_potential)
        zone_accounts = staticmethod(ecology.zone_accounts)

    return _Local()


def _with_barrier(zones):
    """Zones with a ``barrier`` feature: the union of the control levels when none is given."""
    if (zones["level"] == "barrier").any():
        return zones
    import geopandas as gpd
    import shapely

    levels = zones[zones["level"].isin(["level1", "level2", "level3"])]
    if levels.empty:
        return zones
    barrier = gpd.GeoDataFrame({"name": ["barrier"], "level": ["barrier"]},
                               geometry=[shapely.union_all(levels.geometry.values)], crs=zones.crs)
    return pd.concat([barrier, zones], ignore_index=True)


def _meta(ctx: Context) -> dict[str, Any]:
    return {
        "project": ctx.cfg.name,
        "run": ctx.cfg.name + (" (synthetic demo data)" if ctx.cfg.synthetic else ""),
        "parameters": {"pv": _plain(ctx.results.get("pv_params")),
                       "targets": ctx.targets["params"] if ctx.targets else None},
        "synthetic": ctx.cfg.synthetic,
        "run_file": str(ctx.cfg.path) if ctx.cfg.path else None,
        "targets": ctx.targets["name"] if ctx.targets else None,
        "title": ctx.targets.get("title", "") if ctx.targets else "",
        "crs": ctx.layers.crs.to_string() if ctx.layers else None,
        "definitions": _definitions(ctx),
        "pv_params": _plain(ctx.results.get("pv_params")),
        # no clock time outside run.json: the same inputs give the same files (a run is named
        # by the fingerprint of its inputs and settings instead)
        "time": None,
        "run_id": _run_id(ctx),
        "preset": ctx.targets["name"] if ctx.targets else None,
        "max_buildings_drawn": ctx.cfg.output.max_buildings_drawn,
        "max_parcels_drawn": ctx.cfg.output.max_parcels_drawn,
    }


def _run_id(ctx: Context) -> str:
    """A short fingerprint of the inputs (hashes) and the resolved settings."""
    import hashlib

    settings = _resolved(ctx.cfg)
    settings.pop("output", None)  # the same inputs and settings written elsewhere: same run
    payload = _json({"inputs": [(i["kind"], i.get("sha256")) for i in ctx.layers.inputs],
                     "settings": settings, "version": _versions().get("gis-planner")})
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:12]


def _definitions(ctx: Context, *, with_pv: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "landuse" in ctx.cfg.layers:
        out["landuse_scheme"] = ctx.cfg.layers["landuse"].scheme
        landuse_layer = ctx.layers.landuse if ctx.layers is not None else None
        out["official_areas"] = bool(landuse_layer is not None
                                     and "area_official_m2" in landuse_layer)
    opts = ctx.results.get("ecology_options")
    if opts is not None:
        out["ecology"] = _plain(opts)
    if ctx.results.get("network") is not None:
        out["network"] = ctx.results["network"].definitions
    params = ctx.results.get("pv_params")
    if params is not None and with_pv:
        out["pv"] = _plain(params)
        if ctx.results.get("pv_shading") is not None:
            out["pv_shading"] = _plain(ctx.results["pv_shading"])
    out.update(ctx.extras.get("definitions", {}))
    out["weather"] = str(ctx.cfg.weather) if ctx.cfg.weather else "built-in climate model"
    if ctx.layers is not None and ctx.layers.yields_note:
        out["weather"] = "none near the district"
        out["yields"] = (f"{ctx.layers.yields_note}: specific yield, annual kWh, CO₂, coal, "
                         "shading by neighbours, savings, payback, NPV and the renewable "
                         "substitution are missing (NaN, column yield_note); areas, capacities, "
                         "installable shares, capex and the ecology are computed; site lists "
                         "are ranked by capacity_kwp")
    if "dsm" in ctx.cfg.layers:
        from gis import planes

        out["roof_planes"] = {**planes.settings(),
                              "ground": "[layers.dem]" if "dem" in ctx.cfg.layers
                              else "low percentile of a ring around each footprint"}
    return out


def _plain(obj: Any) -> Any:
    import dataclasses

    if obj is None:
        return None
    if dataclasses.is_dataclass(obj):
        return {k: _plain(v) for k, v in dataclasses.asdict(obj).items()}
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _resolved(cfg: RunConfig) -> dict[str, Any]:
    out = _plain(cfg.raw)
    for kind, spec in cfg.layers.items():
        out.setdefault("layers", {}).setdefault(kind, {})["path"] = str(spec.path)
    out.setdefault("output", {})["dir"] = str(cfg.output.dir)
    out["output"]["offline"] = cfg.output.offline
    out["output"]["max_excel_rows"] = cfg.output.max_excel_rows
    return out


def _versions() -> dict[str, str]:
    names = ["gis-planner", "geopandas", "shapely", "pyogrio", "pyproj", "rasterio", "exactextract",
             "pvlib", "folium", "branca", "pandas", "numpy", "xlsxwriter", "scipy", "numba"]
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _json(obj: Any) -> str:
    import numpy as np

    def default(o):
        if isinstance(o, np.integer):
            return int(o)
        if isinstance(o, np.floating):
            return None if not np.isfinite(o) else float(o)
        if isinstance(o, np.bool_):
            return bool(o)
        if isinstance(o, Path):
            return str(o)
        if isinstance(o, pd.DataFrame):
            return json.loads(o.drop(columns="geometry", errors="ignore").to_json(orient="records"))
        if isinstance(o, pd.Series):
            return o.tolist()
        if pd.isna(o):
            return None
        return str(o)

    def clean(o):
        if isinstance(o, float) and not np.isfinite(o):
            return None
        if isinstance(o, dict):
            return {str(k): clean(v) for k, v in o.items()}
        if isinstance(o, list | tuple):
            return [clean(v) for v in o]
        return o

    return json.dumps(clean(obj), ensure_ascii=False, indent=2, default=default, allow_nan=False)

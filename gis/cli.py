"""The command line: ``gis-planner run | validate | demo | sites | compare | serve``.

Exit codes: 0 done; 2 bad input or run file (one message per problem on stderr, no traceback);
1 an unexpected failure.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from gis._errors import InputError

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Rooftop PV potential and ecological-barrier accounting for carbon-peak "
                       "planning (Dongli District demo built in).")
err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)

REPO_DEMO = Path("layers") / "demo"

#: Set by a finished ``run`` whose outputs are all written and closed and that left no process
#: or temporary folder to clean up (the local engine): :func:`main` then ends the process at
#: once instead of letting the interpreter free every object of the run one by one (≈ 0.7 s of
#: a demo run, bench/README.md).  Only the console entry point does it, never a caller of
#: :data:`app` in the same process (tests, notebooks).
_DONE_CLEAN = False


def _fail_input(exc: InputError) -> None:
    errors = [p for p in exc.problems if p.severity == "error"]
    for p in exc.problems:
        err.print(str(p), markup=False)
    err.print(f"{len(errors)} error(s), {len(exc.problems) - len(errors)} warning(s): "
              "nothing was written.", markup=False)
    raise typer.Exit(2)


def _guard(fn):
    """Turn InputError into exit 2 and anything unexpected into a one-line exit 1."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except InputError as exc:
            _fail_input(exc)
        except KeyboardInterrupt as exc:
            err.print("interrupted: the previous outputs are unchanged, nothing was written",
                      markup=False)
            terminated = type(exc).__name__ == "Terminated"  # SIGTERM, see gis.pipeline
            raise typer.Exit(143 if terminated else 130) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:  # noqa: BLE001 - the last line of defence of the CLI
            if os.environ.get("GIS_PLANNER_DEBUG"):
                raise
            err.print(f"unexpected failure: {type(exc).__name__}: {exc}", markup=False)
            err.print("nothing was written; rerun with GIS_PLANNER_DEBUG=1 for the traceback "
                      "and report it", markup=False)
            raise typer.Exit(1) from None

    return wrapper


def _progress():
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                    console=err, transient=False, disable=not err.is_terminal)


def _demo_runfile(out_dir: Path | None = None) -> Path:
    from gis import demo

    folder = out_dir or REPO_DEMO
    runfile = folder / "run.toml"
    if not runfile.exists():
        err.print(f"creating the demo district in {folder} …", markup=False)
        runfile = demo.make_demo(folder)
    return runfile


@app.command()
@_guard
def run(
    runfile: Annotated[Path | None, typer.Argument(help="run file (TOML); none: the demo district")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="output folder (overrides [output] dir)")] = None,
    offline: Annotated[bool, typer.Option("--offline", help="maps that need no network")] = False,
    force: Annotated[bool, typer.Option("--force", help="discard the previous run instead of keeping it")] = False,
) -> None:
    """Run the whole job: analyses, targets, maps, report and exports."""
    from gis import pipeline

    runfile = runfile or _demo_runfile()
    with _progress() as bar:
        task = bar.add_task("starting", total=len(pipeline.STEPS))

        def progress(label: str) -> None:
            bar.update(task, description=label, advance=0 if label.startswith("reading") else 1)
            if not err.is_terminal:
                err.print(f"· {label}", markup=False)

        ctx = pipeline.run(runfile, out_dir=out_dir, offline=offline or None, force=force,
                           progress=progress)
    for p in ctx.layers.warnings:
        err.print(str(p), markup=False)
    _print_scorecard(ctx.results.get("scorecard"))
    out.print(f"outputs in {ctx.out_dir} (open {ctx.out_dir / 'index.html'})", markup=False)
    global _DONE_CLEAN
    _DONE_CLEAN = ctx.cfg.engine.kind == "local"


def _print_scorecard(card) -> None:
    if not card:
        return
    from rich.table import Table

    table = Table(title="scorecard")
    for col in ("target", "value", "goal", "met", "gap"):
        table.add_column(col)
    for e in card["targets"]:
        fmt = (lambda v: f"{v:.1%}") if e["unit"] == "share" else (lambda v: f"{v:,.0f}")
        value = "—" if e["value"] is None else fmt(e["value"])
        gap = "—" if e["gap"] is None else f"{e['gap']:,.4g} {e.get('gap_unit') or ''}"
        met = {True: "yes", False: "no", None: "n/a"}[e["met"]]
        table.add_row(e["id"], value, fmt(e["target"]), met, gap)
    out.print(table)


@app.command()
@_guard
def validate(runfile: Annotated[Path, typer.Argument(help="run file (TOML)")]) -> None:
    """Check every layer of a run file and print every problem (exit 2 when any is fatal)."""
    from gis.config import load_runfile
    from gis.validate import load_run

    _, layers, problems = load_run(load_runfile(runfile))
    if any(p.severity == "error" for p in problems):
        raise InputError(problems)
    for p in problems:
        err.print(str(p), markup=False)
    for info in layers.inputs:
        n = info.get("features_read")
        out.print(f"ok  {info['kind']:<11} {info['path']}"
                  + (f"  ({n} features, {info.get('crs')}, encoding {info.get('encoding') or 'utf-8'})"
                     if n is not None else ""), markup=False)
    out.print(f"all layers usable ({len(problems)} warning(s)); working CRS {layers.crs.to_string()}",
              markup=False)


@app.command()
@_guard
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="folder for the demo layers")] = REPO_DEMO,
    scale: Annotated[float, typer.Option(help="multiplies the parcels (0 < F ≤ 5; 1 = the demo); "
                                                 "buildings follow as the parcels hold them")] = 1.0,
    seed: Annotated[int, typer.Option(help="random seed")] = 2023,
) -> None:
    """Write the synthetic demo district (modelled on Dongli) and a run file for it."""
    from gis import demo as demo_mod

    if not 0 < scale <= 5:
        raise InputError("--scale must be in (0, 5]")
    runfile = demo_mod.make_demo(out_dir, scale=scale, seed=seed)
    out.print(f"demo layers and run file written: {runfile}", markup=False)


@app.command()
@_guard
def sites(
    runfile: Annotated[Path, typer.Argument(help="run file (TOML) or a run's output folder")],
    output: Annotated[Path, typer.Option("-o", "--output", help="file: .csv .xlsx .gpkg .geojson .parquet")],
    street: Annotated[list[str] | None, typer.Option(help="street (街道); repeatable")] = None,
    category: Annotated[list[str] | None, typer.Option(help="building category; repeatable")] = None,
    min_kwp: Annotated[float | None, typer.Option(help="minimum capacity [kWp]")] = None,
    new_only: Annotated[bool, typer.Option("--new-only", help="new buildings only")] = False,
    without_pv: Annotated[bool, typer.Option("--without-pv", help="only roofs without PV yet")] = False,
    top: Annotated[int | None, typer.Option(help="keep the first N")] = None,
    rank_by: Annotated[str, typer.Option(help="annual_kwh | capacity_kwp | specific_yield_kwh_kwp | payback_years (shortest first) | npv_yuan | irr | lcoe_yuan_kwh")] = "annual_kwh",
    ground: Annotated[bool, typer.Option("--ground", help="ground-mounted sites (ponds, facility farmland, roadsides) instead of roofs; --category then names kinds")] = False,
) -> None:
    """A ranked rooftop site list, filtered, in the format of the output file's suffix."""
    from gis import sites as sites_mod
    from gis.validate import map_categories

    if ground:
        pv, meta = _ground_results(runfile, category)
        category = None
    else:
        pv, meta = _run_results(runfile)
    if category:  # Chinese or English labels (学校, factory …) as well as canonical names
        import pandas as pd

        labels = pd.Series(category, dtype="string")
        category = map_categories(labels).fillna(labels).tolist()
    ranked = sites_mod.select_sites(pv, street=street or None, category=category or None,
                                    min_kwp=min_kwp, new_only=new_only, without_pv=without_pv,
                                    top=top, rank_by=rank_by)
    if ground:
        ranked = ranked.drop(columns="id")
    path = sites_mod.export(ranked, output, meta=meta, kind="sites")
    out.print(f"{len(ranked)} sites written to {path}", markup=False)


def _ground_results(target: Path, kinds: list[str] | None):
    """The ground PV sites of a run (``ground_pv.gpkg``), optionally of some kinds only."""
    import geopandas as gpd

    from gis._errors import Problem
    from gis.ground import KINDS

    folder = target if target.is_dir() else None
    if folder is None:
        from gis.config import load_runfile

        folder = load_runfile(target).output.dir
    path = folder / "ground_pv.gpkg"
    if not path.is_file():
        raise InputError(Problem(f"no ground_pv.gpkg in {folder}", file=str(path),
                                 hint="run `gis-planner run RUNFILE` with a land-use layer first"))
    unknown = [k for k in kinds or [] if k not in KINDS]
    if unknown:
        raise InputError(Problem(f"unknown ground PV kind(s): {', '.join(unknown)}",
                                 column="kind", hint=f"valid kinds: {', '.join(KINDS)}"))
    sites = gpd.read_file(path, layer="ground_pv")
    if kinds:
        sites = sites[sites["kind"].isin(kinds)]
    _, meta = _run_results(folder) if (folder / "buildings_pv.gpkg").is_file() else (None, {})
    return sites.assign(id=sites["parcel_id"]), meta


def _run_results(target: Path):
    """The PV table of a run: from an output folder, or from a run file's output folder."""
    import json

    from gis import sites as sites_mod

    if target.is_dir():
        folder = target
    else:
        from gis.config import load_runfile

        cfg = load_runfile(target)
        folder = cfg.output.dir
    meta = {}
    if (folder / "run.json").exists():
        meta = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    return sites_mod.sites_from_run(folder), meta


@app.command()
@_guard
def compare(
    run_a: Annotated[Path, typer.Argument(help="earlier run: output folder or run file")],
    run_b: Annotated[Path, typer.Argument(help="later run: output folder or run file")],
    html: Annotated[Path | None, typer.Option(help="write the comparison page here")] = None,
) -> None:
    """What changed between two runs: metrics, targets, sites and parcels."""
    from gis import compare as compare_mod
    from gis._errors import Problem

    missing = [Problem("no such run output folder or run file", value=str(t),
                       hint="give two output folders of `gis-planner run` (each holds run.json), "
                            "or their run files")
               for t in (run_a, run_b) if not t.exists()]
    if missing:
        raise InputError(missing)
    dirs = []
    for target in (run_a, run_b):
        if target.is_dir():
            dirs.append(target)
        else:
            from gis.config import load_runfile

            dirs.append(load_runfile(target).output.dir)
    result = compare_mod.compare_runs(*dirs)
    out.print(compare_mod.format_comparison(result), markup=False)
    page = html or dirs[1] / "compare.html"
    compare_mod.write_comparison_html(result, page)
    out.print(f"comparison page: {page}", markup=False)


@app.command()
@_guard
def serve(
    project_dir: Annotated[Path, typer.Argument(help="project folder (layers, run.toml, output/)")] = Path("."),
    port: Annotated[int, typer.Option(help="TCP port")] = 8765,
    host: Annotated[str, typer.Option(help="address to listen on (default: loopback only)")] = "127.0.0.1",
    max_upload_mb: Annotated[float, typer.Option(help="largest upload accepted [MB]")] = 512,
) -> None:
    """A workspace in the browser: layers, columns, targets, run, outputs, site lists."""
    from gis.serve import serve as serve_app

    if not project_dir.is_dir():
        raise InputError(f"the project folder does not exist: {project_dir}")
    if host not in ("127.0.0.1", "localhost", "::1"):
        err.print(f"warning: listening on {host}: anyone who can reach it can read the project "
                  "folder and start runs", markup=False)
    out.print(f"workspace for {project_dir.resolve()} on http://{host}:{port}/ (Ctrl+C stops it)",
              markup=False)
    serve_app(project_dir, host=host, port=port, max_upload_mb=max_upload_mb)


def main() -> None:
    """Console entry point."""
    try:
        app()
    except SystemExit as exc:
        if _DONE_CLEAN and exc.code in (0, None):
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        sys.exit(exc.code)


if __name__ == "__main__":
    main()

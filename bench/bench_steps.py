"""CPU time of the imports and of each step of a run (in one process), optionally profiled.

Usage::

    python bench/bench_steps.py [--run layers/demo/run.toml] [--shading none] [--upto ground]
                                [--profile /tmp/steps.prof] [--repeat 3]

The imports a run needs (:data:`RUN_MODULES`) are timed first (``time.process_time`` from the interpreter's start,
``python -X importtime`` gives the detail); then the steps of :data:`gis.pipeline.STEPS` up to
``--upto`` run into a temporary folder, each timed in CPU seconds (``time.process_time``) and wall
seconds.  ``--shading none`` runs rooftop PV without shading by neighbours (a copy of the run
file with ``[pv] shading = "none"``).  Prints one JSON line.
"""

from __future__ import annotations

import time

T0 = time.process_time()

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

#: what the steps up to ground PV and finance import (besides the command line's modules)
RUN_MODULES = ("pyogrio", "rasterio", "gis.validate", "gis.rooftop", "gis.ecology", "gis.landuse",
               "gis.network", "gis.ground", "gis.finance", "gis._zonal")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="layers/demo/run.toml")
    ap.add_argument("--shading", default=None, help='"none" to run rooftop PV without shading')
    ap.add_argument("--upto", default="ground PV and finance", help="last step label (prefix)")
    ap.add_argument("--profile", default=None, help="write a cProfile of the steps here")
    ap.add_argument("--repeat", type=int, default=0,
                    help="run load, ecology, network and ground N more times in the same "
                         "process and report each one's lowest CPU time (steadier on a busy "
                         "machine)")
    args = ap.parse_args()

    t = time.process_time()
    from gis import (
        cli,  # noqa: F401 - the start-up the command line pays
        pipeline,
    )
    from gis.config import load_runfile
    cli_s = time.process_time() - t
    # the modules the steps import when they start: timed here, so that a step's figure is
    # its own work
    import importlib

    for name in RUN_MODULES:
        importlib.import_module(name)
    imports_s = time.process_time() - t

    run = Path(args.run).resolve()
    if args.shading is not None:
        text = run.read_text(encoding="utf-8")
        text = text.replace("[pv]\n", f'[pv]\nshading = "{args.shading}"\n', 1)
        copy = run.with_name(".bench_steps.run.toml")
        copy.write_text(text, encoding="utf-8")
        run = copy
    cfg = load_runfile(run)
    labels = [label for label, _ in pipeline.STEPS]
    last = next(i for i, lab in enumerate(labels) if lab.startswith(args.upto))
    steps = []
    cpu: dict[str, float] = {}
    for label, fn in pipeline.STEPS[: last + 1]:
        def timed(ctx, fn=fn, label=label):
            c = time.process_time()
            fn(ctx)
            cpu[label] = round(time.process_time() - c, 3)
        steps.append((label, timed))
    prof = None
    if args.profile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    with tempfile.TemporaryDirectory() as tmp:
        ctx = pipeline.run(cfg, out_dir=Path(tmp) / "out", force=True, steps=steps)
        lowest = _repeat(ctx, pipeline, last, args.repeat, Path(tmp) / "again")
    if prof is not None:
        prof.disable()
        prof.dump_stats(args.profile)
    if args.shading is not None:
        run.unlink()
    print(json.dumps({"start_cpu_s": round(T0, 3), "cli_imports_cpu_s": round(cli_s, 3),
                      "imports_cpu_s": round(imports_s, 3),
                      "steps_cpu_s": cpu,
                      "steps_wall_s": {k: round(v, 3) for k, v in ctx.timings.items()},
                      **({"steps_cpu_lowest_s": lowest} if lowest else {})},
                     ensure_ascii=False))
    sys.stdout.flush()


#: steps that can run again on the context of a finished run (load: its reading and checks
#: only, :func:`gis.validate.load_run`, without the output-folder check of a new run)
REPEATABLE = ("load and validate layers", "ecology", "ecological network", "ground PV and finance")


def _repeat(ctx, pipeline, last: int, times: int, out: Path) -> dict[str, float]:
    """The lowest CPU time of each repeatable step over ``times`` more runs of it."""
    from gis.validate import load_run

    ctx.out_dir = out
    lowest: dict[str, float] = {}
    for _ in range(times):
        for label, fn in pipeline.STEPS[: last + 1]:
            if label not in REPEATABLE:
                continue
            c = time.process_time()
            if label.startswith("load"):
                load_run(ctx.cfg)
            else:
                fn(ctx)
            lowest[label] = round(min(lowest.get(label, float("inf")),
                                      time.process_time() - c), 3)
    return lowest


if __name__ == "__main__":
    main()

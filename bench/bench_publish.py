"""The "maps and report" step of the demo run alone: CPU and wall time, and a profile.

Usage::

    python bench/bench_publish.py [RUNFILE] [--repeat 3] [--profile /tmp/publish.prof]

Runs the steps before it once (load … exports, as ``gis-planner run`` does, into a scratch
folder), then times ``gis.pipeline.step_publish`` ``--repeat`` times on that context.  The
first repeat pays the imports of the step (folium) as the run does; the others show
the step with its modules loaded.  Prints one JSON line per repeat: ``wall_s``, ``cpu_s``
(``time.process_time``: every thread of the process) and the page sizes.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gis import pipeline  # noqa: E402


def prepared(runfile: Path, scratch: Path) -> tuple[pipeline.Context, Path]:
    """The run's context after its exports, and a copy of the folder they were written to."""
    kept: dict = {}

    def keep(ctx: pipeline.Context) -> None:
        shutil.copytree(ctx.stage, scratch / "exports")
        kept["ctx"] = ctx

    labels = [label for label, _ in pipeline.STEPS]
    steps = pipeline.STEPS[:labels.index("maps and report")] + [("keep", keep)]
    pipeline.run(runfile, out_dir=scratch / "run", steps=steps, force=True)
    return kept["ctx"], scratch / "exports"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runfile", nargs="?", default="layers/demo/run.toml")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--profile", help="write a cProfile of the first repeat here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-publish-") as tmp:
        ctx, exports = prepared(Path(args.runfile), Path(tmp))
        for i in range(args.repeat):
            out = Path(tmp) / f"publish-{i}"
            shutil.copytree(exports, out)
            ctx.stage = out
            profile = cProfile.Profile() if args.profile and i == 0 else None
            t0, c0 = time.perf_counter(), time.process_time()
            if profile:
                profile.enable()
            pipeline.step_publish(ctx)
            if profile:
                profile.disable()
                profile.dump_stats(args.profile)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            sizes = {p.name: p.stat().st_size for p in sorted(out.glob("*")) if p.suffix in
                     (".html", ".js")}
            print(json.dumps({"repeat": i, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                              "bytes": sizes}), flush=True)


if __name__ == "__main__":
    main()

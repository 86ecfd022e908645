"""The load step with and without the thread importing its checks' modules beside the reads.

    python bench/bench_load_imports.py --runs 3      # the demo, alternating off / on

Each run is a fresh interpreter running ``gis.pipeline.run`` with the load step alone (into a
temporary folder).  It reports the load's wall time, the CPU time of the main thread during
the load (``time.thread_time``), that of the import thread (:func:`gis.pipeline._preload_for_load`)
and the process's CPU time.  On a busy machine compare the CPU times.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, sys, time
from gis import _schedule, pipeline

info = {}
if sys.argv[3] == "off":
    pipeline._preload_for_load = lambda ctx: None
else:
    work = _schedule._Preload._work

    def timed_work(self):
        c0 = time.thread_time()
        work(self)
        info["thread_cpu_s"] = round(time.thread_time() - c0, 2)

    _schedule._Preload._work = timed_work
timed = pipeline._timed


def timed_load(ctx, step):
    c0 = time.thread_time()
    timed(ctx, step)
    info["main_thread_cpu_s"] = round(time.thread_time() - c0, 2)


pipeline._timed = timed_load
ctx = pipeline.run(sys.argv[1], out_dir=sys.argv[2], force=True, steps=pipeline.STEPS[:1])
info["load_wall_s"] = round(ctx.timings["load and validate layers"], 2)
info["process_cpu_s"] = round(time.process_time(), 2)
print(json.dumps(info))
"""


def one_run(runfile: Path, mode: str) -> dict:
    env = dict(os.environ)
    env.pop("GIS_PLANNER_SERIAL", None)
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        proc = subprocess.run([sys.executable, "-c", CHILD, str(runfile), str(Path(tmp) / "out"),
                               mode], env=env, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runfile", type=Path, default=Path("layers/demo/run.toml"))
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    for i in range(args.runs):
        for mode in ("off", "on"):
            load = os.getloadavg()[0]
            print(f"run {i + 1} import thread {mode:<3}  load average {load:4.1f}  "
                  f"{one_run(args.runfile, mode)}", flush=True)


if __name__ == "__main__":
    main()

"""The whole run with its steps side by side (the default) and one after the other.

    python bench/bench_schedule.py                  # the demo, 2 runs of each, alternating
    python bench/bench_schedule.py --runs 3 --runfile /tmp/demo2/run.toml
    python bench/bench_schedule.py --runs 1 --mode side    # side by side only

Each run is a fresh interpreter (``gis.pipeline.run`` on the run file, into a temporary folder),
with ``GIS_PLANNER_SERIAL`` unset or ``=1``.  It reports the wall time from the interpreter's
start, the CPU time of the process and of the processes it forked (user + system), and per step
its own wall time and the CPU time of the process that ran it (a step run in a forked process
is timed there; the threads of the process that runs rooftop PV — its kernels, the imports of
the later steps — count in that step).  The one-minute load average is printed before each run:
on a busy machine compare CPU times, not wall times.
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
import json, resource, sys, time
t_start = time.perf_counter()
from gis import _schedule, pipeline

cpu = {}


def timed_steps(ctx, steps, *, label=True, _run=_schedule.run_steps):
    for step in steps:
        c0 = time.process_time()
        _run(ctx, [step], label=label)
        ctx.timings[step[0] + " [cpu]"] = time.process_time() - c0


def timed_load(ctx, step, _timed=pipeline._timed):
    c0 = time.process_time()
    _timed(ctx, step)
    ctx.timings[step[0] + " [cpu]"] = time.process_time() - c0


_schedule.run_steps = timed_steps
pipeline._timed = timed_load
ctx = pipeline.run(sys.argv[1], out_dir=sys.argv[2], force=True)
wall = time.perf_counter() - t_start
own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
steps = {k: [round(v, 2), round(ctx.timings.get(k + " [cpu]", float("nan")), 2)]
         for k, v in ctx.timings.items() if not k.endswith(" [cpu]")}
print(json.dumps({"wall_s": round(wall, 2),
                  "cpu_s": round(own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime, 2),
                  "peak_rss_mib": round(max(own.ru_maxrss, kids.ru_maxrss) / 1024),
                  "steps": steps}))
"""


def one_run(runfile: Path, serial: bool) -> dict:
    env = dict(os.environ)
    env.pop("GIS_PLANNER_SERIAL", None)
    if serial:
        env["GIS_PLANNER_SERIAL"] = "1"
    with tempfile.TemporaryDirectory(prefix="bench-schedule-") as tmp:
        proc = subprocess.run([sys.executable, "-c", CHILD, str(runfile), str(Path(tmp) / "out")],
                              env=env, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runfile", type=Path, default=Path("layers/demo/run.toml"))
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--mode", choices=("both", "side", "serial"), default="both",
                        help="side by side only, serial only, or both alternating (default)")
    args = parser.parse_args()
    modes = {"both": (True, False), "side": (False,), "serial": (True,)}[args.mode]
    for i in range(args.runs):
        for serial in modes:
            load = os.getloadavg()[0]
            r = one_run(args.runfile, serial)
            mode = "serial     " if serial else "side by side"
            print(f"run {i + 1} {mode}  load {load:4.1f}  wall {r['wall_s']:6.2f} s  "
                  f"CPU {r['cpu_s']:6.2f} s  peak RSS {r['peak_rss_mib']} MiB", flush=True)
            for step, (wall, cpu) in r["steps"].items():
                print(f"    {step:<26} wall {wall:6.2f} s  CPU {cpu:6.2f} s")


if __name__ == "__main__":
    main()

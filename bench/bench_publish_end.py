"""The publishing end of a demo run in a fresh process: ``exports`` then ``maps and report``.

Usage::

    python bench/bench_publish_end.py OUT                  # CPU and wall of the two steps
    python bench/bench_publish_end.py OUT --compare REF    # and its pages against REF's

The context before the exports is the one ``bench_exports.py`` caches (built once by running
the demo's steps up to the scorecard).  Each call is a new interpreter, so the figures include
the steps' imports (XlsxWriter, folium, …) as a run pays them.  Run it for two checkouts one
after the other (``PYTHONPATH=…``) to compare them on a busy machine: CPU time
(``time.process_time``, every thread) is the figure to compare, wall time follows the load.

``--compare REF`` checks the pages against another output folder: byte for byte, or equal once
the site tables' gzip streams are inflated, or (``report.html``) equal but for the chart images.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import re
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_exports  # noqa: E402
import pyogrio  # noqa: E402

from gis import pipeline  # noqa: E402

PAGES = ("index.html", "report.html", "pv_map.html", "ecology_map.html", "pv_map.pv.js")
_GZIP = re.compile(r"H4sI[A-Za-z0-9+/=]{20,}")  # base64 of a gzip stream
_CHART = re.compile(r'data:image/svg\+xml;base64,[^"]+')


def compare_pages(ref: Path, new: Path) -> dict[str, str]:
    """How each page of ``new`` compares with ``ref``'s."""
    out = {}
    for name in PAGES:
        if not (ref / name).is_file() or not (new / name).is_file():
            out[name] = "missing"
            continue
        a, b = (ref / name).read_text(), (new / name).read_text()
        za, zb = _GZIP.findall(a), _GZIP.findall(b)
        if a == b:
            out[name] = "byte-identical"
        elif (_GZIP.sub("", a) == _GZIP.sub("", b) and len(za) == len(zb)
              and all(gzip.decompress(base64.b64decode(x)) == gzip.decompress(base64.b64decode(y))
                      for x, y in zip(za, zb, strict=True))):
            out[name] = f"equal once its {len(za)} gzip stream(s) are inflated"
        elif name == "report.html" and _CHART.sub("", a) == _CHART.sub("", b):
            out[name] = f"equal but for its {len(_CHART.findall(a))} chart images"
        else:
            out[name] = "DIFFERENT"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--demo", type=Path, default=bench_exports.REPO / "layers" / "demo")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/gis-bench-exports.pkl"))
    ap.add_argument("--compare", type=Path, help="an output folder to compare the pages with")
    args = ap.parse_args()
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": "2000-01-01T00:00:00.000Z"})
    ctx = bench_exports.context(args.demo / "run.toml", args.cache)
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    ctx.stage = args.out
    ctx.files.clear()
    for name, step in (("exports", pipeline.step_exports), ("maps and report",
                                                             pipeline.step_publish)):
        wall, cpu = time.perf_counter(), time.process_time()
        step(ctx)
        print(f"{name}: wall {time.perf_counter() - wall:.2f} s, "
              f"CPU {time.process_time() - cpu:.2f} s", flush=True)
    if args.compare:
        for name, verdict in compare_pages(args.compare, args.out).items():
            print(f"{name}: {verdict}")


if __name__ == "__main__":
    main()

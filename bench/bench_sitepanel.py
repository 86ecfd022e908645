"""The site-list panel of the PV map: time to build its table and the bytes it adds to a page.

Usage::

    python -m gis.cli demo --out /tmp/demo && python -m gis.cli run /tmp/demo/run.toml --out /tmp/run
    python bench/bench_sitepanel.py --run /tmp/run

Reads the run's ``buildings_pv.gpkg`` as ``gis-planner sites`` does, then times
``gis.sites.csv_text`` (the rows as the command line writes them; the same cost as its CSV
export), ``gis.sitepanel.site_table`` (that text plus the ranking orders and filter columns) and
the payload (JSON, gzip at ``sitepanel.GZIP_LEVEL``, base64), and prints the sizes.
"""

from __future__ import annotations

import argparse
import json
import time

from gis import sitepanel, sites


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="a run's output folder")
    args = ap.parse_args()
    pv = sites.sites_from_run(args.run)
    ranked = sites.select_sites(pv)
    t0 = time.perf_counter()
    text = sites.csv_text(ranked)
    t1 = time.perf_counter()
    table = sitepanel.site_table(pv)
    t2 = time.perf_counter()
    payload = sitepanel._payload(table)
    t3 = time.perf_counter()
    raw = json.dumps(table, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    print(json.dumps({
        "buildings": len(pv), "sites": len(ranked),
        "csv_text_s": round(t1 - t0, 2), "site_table_s": round(t2 - t1, 2),
        "payload_s": round(t3 - t2, 2), "csv_bytes": len(text.encode("utf-8")),
        "table_json_bytes": len(raw), "payload_bytes": len(payload),
    }, indent=1))


if __name__ == "__main__":
    main()

"""Time the ecological-network step on the demo district, part by part.

    python bench/bench_network.py                  # full-scale demo written to $TMPDIR
    python bench/bench_network.py --demo DIR       # an existing demo folder (run.toml inside)
    python bench/bench_network.py --scale 0.3

Prints the number of patches, corridors and candidates and the wall and CPU time of each part
(the CPU time of this process says more than the wall time on a shared machine).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo", type=Path, default=None)
    ap.add_argument("--scale", type=float, default=1.0)
    args = ap.parse_args()
    from gis import ecology, landuse, network
    from gis.config import load_runfile
    from gis.pipeline import _with_barrier
    from gis.targets import load_targets
    from gis.validate import load_run

    folder = args.demo
    if folder is None or not (folder / "run.toml").exists():
        from gis.demo import make_demo

        folder = folder or Path(tempfile.gettempdir()) / f"gis-bench-network-{args.scale:g}"
        if not (folder / "run.toml").exists():
            make_demo(folder, scale=args.scale)
    cfg = load_runfile(folder / "run.toml")
    _, layers, _ = load_run(cfg)
    zones = _with_barrier(layers.zones)
    scheme = cfg.layers["landuse"].scheme
    options = landuse.ecology_options(**cfg.ecology)
    lc = landuse.classify_layer(ecology.flattened_landuse(layers.landuse, scheme, options),
                                scheme, options=options)
    table = ecology.zone_accounts(layers.landuse, zones, scheme=scheme, options=options)
    _, lists = ecology.ecology_targets(table, load_targets(cfg.targets), landuse_classified=lc,
                                       zones=zones, options=options)
    cands = lists["afforestation"]
    opts = network.network_options(cfg.network)
    times: dict[str, tuple[float, float]] = {}

    def timed(label, fn, *a, **kw):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn(*a, **kw)
        times[label] = (time.perf_counter() - t0, time.process_time() - c0)
        return out

    units = ecology.accounting_units(zones)
    allp = timed("patches (all units)", network.find_patches, lc, units, options=opts)
    nets = timed("links + PC (all units)", network.unit_networks, allp, units, options=opts)
    main_unit = network._main_unit(units)
    patches = allp[allp["unit"] == main_unit].reset_index(drop=True)
    timed("dPC (barrier)", network.dpc, nets[main_unit])
    corr, gaps, raster = timed("corridors (barrier)", network.least_cost_corridors, lc, patches,
                               options=opts, within=units.geometry.iloc[main_unit])
    res = timed("whole step (barrier_network)", network.barrier_network, lc, zones,
                options=opts, candidates=cands)
    print(f"demo {folder}: {len(lc):,} parcels, {len(allp):,} patches in {len(units)} units, "
          f"{len(patches)} in the barrier, {len(corr)} corridors "
          f"(raster {raster['shape']} at {raster['resolution_m']:g} m), {len(cands):,} candidates "
          f"({res.definitions.get('candidates_evaluated')} evaluated)")
    print(f"{'part':32s} {'wall':>8s} {'CPU':>8s}")
    for label, (wall, cpu) in times.items():
        print(f"{label:32s} {wall:7.2f}s {cpu:7.2f}s")


if __name__ == "__main__":
    main()

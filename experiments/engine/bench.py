"""``sslt bench``: how fast the suite runs on this machine, measured, not asserted (targets live in the issues).

For every registered chapter and profile: the wall time of ``sslt run`` in a fresh results directory, the share
of the cells' time spent in training, probes and theory terms (from each cell's ``meta.json``), and the peak
resident memory of the busiest worker. The paper profile is not run: its wall time is **estimated** from the
chapter's cost model, calibrated on the default run's measured cell times (seconds per cost unit), and printed
as an estimate. Then any micro-benchmarks registered in the entry-point group
``sslt.benchmarks`` (this repository registers batched training and batched probes against loops).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from importlib.metadata import entry_points
from pathlib import Path

from experiments.engine import chapters, runner, timing

BENCH_GROUP = "sslt.benchmarks"


def profile_run(experiment: str, profile: str, jobs: int) -> dict:
    """Wall time, time shares by stage, and peak worker memory of one chapter profile, in a temporary dir."""
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "experiments.engine.cli", "run", experiment, "--profile", profile,
                        "--out", tmp, "--jobs", str(jobs)], check=True, capture_output=True,
                       env={**os.environ, "CI": "1"})
        wall = time.perf_counter() - t0
        metas = [json.loads(p.read_text()) for p in Path(tmp).glob(f"{experiment}/*/meta.json")]
    ch = chapters.get(experiment)
    cost = {cid: ch.cost(cell) for cid, cell in runner.plan(experiment, chapters.load_config(experiment, profile))}
    total = sum(m["seconds"] for m in metas)
    shares = {s: sum(m["stages"].get(s, 0.0) for m in metas) / total if total else float("nan")
              for s in timing.STAGES}
    shares["other"] = 1.0 - sum(shares.values())
    return {"wall_s": wall, "cell_s": total, "cells": len(metas), "shares": shares,
            "peak_mib": max((m["peak_rss_mib"] for m in metas), default=float("nan")),
            "s_per_cost": total / max(sum(cost[m["cell"]] for m in metas), 1e-300)}


def paper_estimate(experiment: str, s_per_cost: float, jobs: int) -> tuple[float, int]:
    """(estimated wall seconds, cells) of the paper profile: cost model x calibration, spread over ``jobs``,
    never less than its costliest cell."""
    ch = chapters.get(experiment)
    costs = [ch.cost(cell) for _, cell in runner.plan(experiment, chapters.load_config(experiment, "paper"))]
    return max(sum(costs) / jobs, max(costs, default=0.0)) * s_per_cost, len(costs)


def main(args) -> int:
    jobs = os.cpu_count() or 1
    w = max([len(c.name) for c in chapters.all_chapters()] + [7]) + 2
    lines = [f"machine: {jobs} cores; chapter profiles run with --jobs {jobs}", "",
             f"{'chapter':<{w}}{'profile':<9}{'wall':>8}{'cells':>7}{'cell time':>11}{'train':>8}{'probes':>8}"
             f"{'theory':>8}{'other':>8}{'peak/worker':>13}"]
    estimates = []
    for ch in chapters.all_chapters():
        for profile in ("quick",) + (() if args.skip_default else ("default",)):
            r = profile_run(ch.name, profile, jobs)
            sh = r["shares"]
            lines.append(f"{ch.name:<{w}}{profile:<9}{r['wall_s']:>7.1f}s{r['cells']:>7}{r['cell_s']:>10.1f}s"
                         + "".join(f"{100 * sh[s]:>7.0f}%" for s in (*timing.STAGES, "other"))
                         + f"{r['peak_mib']:>9.0f} MiB")
        est, n = paper_estimate(ch.name, r["s_per_cost"], jobs)
        estimates.append(f"{ch.name:<{w}}paper    ~{est / 60:>7.0f} min{n:>6} cells   ESTIMATE: cost model calibrated "
                         f"on the {profile} run, not measured")
    lines += ["", "shares are of the summed cell time; 'other' is data generation and evaluation passes;",
              "peak/worker is the largest peak resident memory of one cell's worker process", ""] + estimates
    print("\n".join(lines), flush=True)
    for ep in sorted(entry_points(group=BENCH_GROUP), key=lambda e: e.name):
        print()
        print("\n".join(ep.load()()), flush=True)
    return 0

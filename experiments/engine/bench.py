"""``sslt bench``: how fast the suite runs on this machine, measured, not asserted (targets live in the issues).

For every registered chapter and profile: the wall time of ``sslt run`` in a fresh results directory, the share
of the cells' time spent in training, probes and theory terms (from each cell's ``meta.json``), and the peak
resident memory of the busiest worker. The paper profile is not run: its wall time is **estimated** from the
chapter's cost model times its stored calibration (experiments/engine/calibration.py, fitted on measured cells
of earlier runs, the paper run's among them; a chapter never calibrated uses the default run's seconds per cost
unit), and printed as an estimate naming what it was calibrated on. Then the micro-benchmarks registered in the
entry-point group ``sslt.benchmarks`` (each hot path's new code against the code it replaced, in one process);
``sslt bench --micro [NAME ...]`` runs only those, in seconds.
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

from experiments.engine import calibration, chapters, runner, timing
from experiments.engine import config as config_mod

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


def paper_estimate(experiment: str, s_per_cost: float, jobs: int) -> tuple[float, int, str]:
    """(estimated wall seconds, cells, what it is calibrated on) of the paper profile: every cell's cost model x
    the chapter's stored calibration (else ``s_per_cost``, the default run's), spread over ``jobs``, never less
    than its slowest cell."""
    ch = chapters.get(experiment)
    costs = [ch.cost(cell) for _, cell in runner.plan(experiment, chapters.load_config(experiment, "paper"))]
    fitted = calibration.for_chapter(experiment)
    secs = [fitted.seconds(c) if fitted else c * s_per_cost for c in costs]
    source = f"the stored calibration ({fitted.source})" if fitted else "the default run"
    return max(sum(secs) / jobs, max(secs, default=0.0)), len(costs), source


def micro(names: list[str] = ()) -> list:
    """The micro-benchmarks of the entry-point group (``names``: only those), each one's lines after its name."""
    eps = sorted(entry_points(group=BENCH_GROUP), key=lambda e: e.name)
    unknown = sorted(set(names) - {e.name for e in eps})
    if unknown:
        raise config_mod.ConfigError(f"bench: unknown micro-benchmark {', '.join(unknown)}; known: "
                       f"{', '.join(e.name for e in eps) or 'none registered'}")
    return [e for e in eps if not names or e.name in names]


def main(args) -> int:
    if getattr(args, "micro", None) is not None:
        for ep in micro(args.micro):
            t0 = time.perf_counter()
            lines = ep.load()()
            print(f"== {ep.name} ({time.perf_counter() - t0:.1f} s)\n" + "\n".join(lines) + "\n", flush=True)
        return 0
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
        est, n, source = paper_estimate(ch.name, r["s_per_cost"], jobs)
        estimates += [f"{ch.name:<{w}}paper    ~{est / 60:>7.0f} min{n:>6} cells   ESTIMATE (not measured)",
                      f"{'':<{w}}  cost model x {source}"]
    lines += ["", "shares are of the summed cell time; 'other' is data generation and evaluation passes;",
              "peak/worker is the largest peak resident memory of one cell's worker process", ""] + estimates
    print("\n".join(lines), flush=True)
    for ep in micro():
        print()
        print("\n".join(ep.load()()), flush=True)
    return 0

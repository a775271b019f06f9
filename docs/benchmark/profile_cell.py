"""Profile one paper cell as a sweep worker runs it (one torch thread, one BLAS thread), with cProfile; the method
of docs/benchmark.md. Its seeds are cut to N_SEEDS (one axis scaled down). On SIGTERM (``timeout``) it dumps what
it has, marked partial.

usage: python docs/benchmark/profile_cell.py CHAPTER N_SEEDS [PAPER_CELL_ID] [OUT_DIR]
       (default: the paper cell the chapter's cost model calls costliest; OUT_DIR /tmp/profile)
"""
import cProfile
import dataclasses
import io
import json
import pstats
import signal
import sys
import time
from pathlib import Path

import torch
from threadpoolctl import threadpool_limits

from experiments.engine import chapters, runner, timing

name, n_seeds = sys.argv[1], int(sys.argv[2])
ch = chapters.get(name)
plan = dict(runner.plan(name, chapters.load_config(name, "paper")))
cid = sys.argv[3] if len(sys.argv) > 3 else max(plan, key=lambda k: ch.cost(plan[k]))
out = Path(sys.argv[4] if len(sys.argv) > 4 else "/tmp/profile")
out.mkdir(parents=True, exist_ok=True)
cell = plan[cid]
full_seeds = len(cell.seeds)
cell = dataclasses.replace(cell, seeds=type(cell.seeds)(cell.seeds[:n_seeds]))
torch.set_num_threads(1)
timing.reset()
profiler = cProfile.Profile()
t0, c0 = time.perf_counter(), time.process_time()


def dump(partial: bool) -> None:
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    profiler.dump_stats(out / f"{name}.pstats")
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(40)
    (out / f"{name}.txt").write_text(text.getvalue())
    meta = {"chapter": name, "paper_cell": cid, "seeds": f"{n_seeds} of {full_seeds}", "partial": partial,
            "cost_share": ch.cost(plan[cid]) / sum(ch.cost(c) for c in plan.values()), "cells": len(plan),
            "wall_s": wall, "cpu_s": cpu, "stages": timing.totals(), "peak_rss_mib": timing.peak_rss_mib()}
    (out / f"{name}.json").write_text(json.dumps(meta, indent=1))
    print(json.dumps(meta), flush=True)


def on_term(*_):
    profiler.disable()
    dump(True)
    sys.exit(0)


signal.signal(signal.SIGTERM, on_term)
with threadpool_limits(limits=1):
    profiler.enable()
    ch.run_cell(cell, cid, "cpu")
    profiler.disable()
dump(False)

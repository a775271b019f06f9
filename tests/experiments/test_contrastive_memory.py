"""The contrastive paper profile's memory: the guard accepts it, and its estimate holds against a measured cell.

The paper profile was refused ("eval.n_per_class: a cell would need about 284 GiB"): the old estimate counted
every Monte-Carlo pool as k + 3 pools of n_per_class points with G x (width + d) floats each, while the pools
hold 2 n_per_class + n_neg points and float32 features only. The real peaks were elsewhere: one copy of the
training tuples per model, and Gen_M's single encoder call over all M (k + 2) training points of every model
(about 30 GB on the paper's C = 100, k = 64 cell). Both are gone (experiments.contrastive.run, latent_eval).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from experiments.engine import chapters, resources, runner, runs, store

REPO = Path(__file__).resolve().parents[2]
# How far the estimate may be from the measured peak (it is what the guard refuses on).
FACTOR = 2.0
# The paper profile's largest cell (C = 100, k = 64, the paper's data, encoder, tuples and evaluation sizes),
# with one seed, one learning rate and a few steps, so that it runs in about a minute.
PAPER_CELL = ["bound.enabled=false", "negatives.classes=[100]", "negatives.k=[64]", "sample_complexity.enabled=false",
              "block.enabled=false", "generalisation.enabled=false", "seeds=1", "train.lr=[0.001]",
              "train.n_tuples=6000", "train.steps=5", "train.n_checkpoints=2"]


def _sets(overrides):
    return [a for o in overrides for a in ("--set", o)]


def test_the_paper_profile_is_accepted_by_the_memory_guard():
    ch = chapters.get("contrastive")
    cells = [c for _, c in runner.plan("contrastive", chapters.load_config("contrastive", "paper"))]
    est = resources.guard(ch, cells, jobs=2, max_memory=23.5 * resources.GIB)
    assert est.largest_cell < 12 * resources.GIB, est.describe()


def test_the_estimate_holds_on_a_measured_paper_sized_cell(tmp_path):
    # a small shell in between: a forked child starts with its parent's RSS (see test_runs.py)
    subprocess.run(["sh", "-c", '"$@" & wait $!', "sh", sys.executable, "-m", "experiments.engine.cli", "run",
                    "contrastive", "--profile", "paper", "--jobs", "1", "--out", str(tmp_path), *_sets(PAPER_CELL)],
                   check=True, cwd=REPO, capture_output=True)
    r = runs.latest(tmp_path, "contrastive")
    metas = [json.loads((store.cell_dir(tmp_path, "contrastive", k) / "meta.json").read_text()) for k in r.cells]
    assert len(metas) == 1
    peak = metas[0]["peak_rss_mib"] * resources.MIB
    cells = [c for _, c in runner.plan("contrastive", chapters.load_config("contrastive", "paper", PAPER_CELL))]
    est = resources.estimate(chapters.get("contrastive"), cells, 1)
    assert 1 / FACTOR <= est.largest_cell / peak <= FACTOR, (est.largest_cell / resources.MIB, peak / resources.MIB)
    # the old model's 284 GiB was no measurement of anything: this cell, the largest shape, stays in a few GiB
    assert peak < 4 * resources.GIB

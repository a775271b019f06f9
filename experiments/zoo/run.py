"""One zoo cell: train one objective (all seeds as one batched model) on one data variant, then measure it.

Randomness: the latent-class model, the pairs, the minibatches, the corruption noise and the encoder's
initialisation come from (data-spec hash, seed, stream), NOT from the cell id, so every objective on one data
variant trains on the same pairs in the same order from the same encoder; only the objective differs. The
evaluation pools and the probes' labelled samples are those of ``experiments.latent_eval.EvalSet`` under the
data-spec hash too: every encoder of a variant is probed on the same ground truth.

Momentum and EMA targets (MoCo v2's key encoder, BYOL's target) are tensors with the same leading model axis G
as the online parameters; the loss function updates them in place before each step from the online parameters
(target_s = m target_{s-1} + (1 - m) theta_s, target_0 = theta_0: the papers' update after each optimiser step),
so a batch of G models equals G models run one by one. MoCo's queue is (G, K, d), first in, first out.

Measured at the last step, per seed: the probe curve (``probe_*`` rows), Lemma 4.3's terms (L_un, L_sup_mu,
tau, ... from ``theory.contrastive_terms.mc_terms``, base-2 logistic, k = 1), the collapse measures of
``theory.zoo.collapse_diagnostic`` on the test points, the final training loss, and for the reconstruction
objectives the test reconstruction error (the VAE: its two ELBO terms).
"""
from __future__ import annotations

import pandas as pd

from experiments.engine.config import config_hash
from experiments.engine.rng import numpy_rng
from experiments.zoo.config import Cell
from experiments.zoo.graphs import run_graph
from experiments.zoo.sequences import run_sequences
from experiments.zoo.views import build_model, run_views
from synthetic_data.language import DataSpec as HMMSpec
from synthetic_data.zoo import SBMSpec

__all__ = ["build_model", "run"]


def run(cell: Cell, cell_id: str, device: str = "cpu") -> pd.DataFrame:
    """One zoo cell's tidy rows; the bench is told by the cell's data spec (a block model, an HMM, or latent
    classes). Randomness comes from the data spec's hash, not from ``cell_id`` (see the module docstring)."""
    data_id = config_hash(cell.data)
    model = build_model(cell.data, numpy_rng(data_id, 0, "latent-model"))
    if isinstance(cell.data, SBMSpec):
        return run_graph(cell, model, data_id, device)
    if isinstance(cell.data, HMMSpec):
        return run_sequences(cell, model, data_id, device)
    return run_views(cell, model, data_id, device)

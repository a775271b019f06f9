"""The fast theory-term path against main's code (experiments.latent_eval_reference), on real contrastive cells.

Tolerance (experiments.bench_contrastive_terms.TOLERANCE): |fast - reference| <= 1e-12 (1 + |reference|) for every
term of every model. No term is replaced by a different estimator: the Monte-Carlo estimates and their standard
errors are the same estimates, so the verdict rules (which read the se) are unchanged.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from experiments import bench_contrastive_terms as bench
from experiments import latent_eval_reference as reference
from experiments.latent_eval import EVAL_CHUNK, encode_chunked, seed_rows
from theory.contrastive import LOSSES
from theory.contrastive_terms import FAST_LOSSES

@pytest.mark.parametrize("keep", [lambda c: c.objective in ("logistic", "hinge") and c.k in (1, 8),
                                  lambda c: c.objective == "block"], ids=["tuples", "block"])
def test_theory_terms_match_the_reference(keep):
    n = 0
    with torch.no_grad():
        for cell, make_eval, enc, params, loss_fn, V in bench.workload("quick", keep=keep):
            per_model = None if loss_fn is None else tuple(t.repeat_interleave(V, 0) for t in loss_fn.train_tuples)
            ev_ref, ev_new = make_eval(), make_eval()
            for _ in range(2):
                a = reference.theory_terms(ev_ref, enc, params, per_model)
                b = ev_new.theory_terms(enc, params, loss_fn)
                assert bench.largest_difference(a, b) <= bench.TOLERANCE, (cell, a, b)
                n += 1
            if loss_fn is not None:   # Gen_M was computed, on the seed-level (S, M, ...) tuples
                assert loss_fn.train_tuples[0].shape[0] == len(cell.seeds)
                assert "Gen_M" in b and np.all(np.isfinite(b["Gen_M"]))
    assert n >= 2


def test_the_difference_measure_catches_a_wrong_term():
    a = {"L_un": np.array([0.5, 0.7]), "L_un_se": np.array([0.01, np.nan])}
    assert bench.largest_difference(a, {k: v.copy() for k, v in a.items()}) == 0.0
    assert bench.largest_difference(a, {"L_un": np.array([0.5, 0.7 + 1e-9]), "L_un_se": a["L_un_se"]}) > bench.TOLERANCE
    assert bench.largest_difference(a, {"L_un": a["L_un"], "L_un_se": np.array([0.01, 0.0])}) == float("inf")


def test_fast_logistic_matches_the_loss_it_replaces():
    g = torch.Generator().manual_seed(0)
    for k in (1, 2, 64):
        v = torch.randn(2000, k, generator=g, dtype=torch.float64) * 8
        assert torch.allclose(FAST_LOSSES["logistic"](v), LOSSES["logistic"](v), rtol=0, atol=1e-14)
    v = torch.tensor([[40.0]], dtype=torch.float64)   # a tiny loss: the fast one keeps its digits (log1p)
    assert FAST_LOSSES["logistic"](v).item() == pytest.approx(np.log1p(np.exp(-40.0)) / np.log(2), rel=1e-12)


def test_chunked_encoding_and_seed_rows_give_the_same_numbers():
    from experiments.encoders import encode, init_encoder
    gens = [torch.Generator().manual_seed(i) for i in range(4)]
    p = {k: v.float() for k, v in init_encoder("mlp", 8, 4, 4, gens, width=16).items()}
    x = torch.randn(1, 2 * EVAL_CHUNK + 7, 8, generator=gens[0])
    assert torch.equal(encode_chunked(lambda t: encode(p, t.expand(4, -1, -1)), x), encode(p, x.expand(4, -1, -1)))
    data = torch.randn(2, 50, 3, 8, generator=gens[1])
    idx = torch.randint(0, 50, (4, 9), generator=gens[2])
    assert torch.equal(seed_rows(data, idx), data.repeat_interleave(2, 0)[torch.arange(4)[:, None], idx])

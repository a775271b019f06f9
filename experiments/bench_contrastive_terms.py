"""``sslt bench``: the contrastive theory terms (the cell's ``stage("theory")``), main's code against the fast path.

The workload is the contrastive default profile's own: every trained cell of it, its data, its evaluation pools,
its encoder shape, seeds and learning rates, and ``EvalSet.theory_terms`` called ``train.n_checkpoints`` times
per cell, as a run calls it. One thing differs from a run: the encoder is the cell's initialisation at every
checkpoint (the terms' cost does not depend on the weights' values, and training them would dominate the
benchmark). Timed in CPU seconds of this process (``time.process_time``) with one torch thread, so that the
ratio stands on a loaded machine; the reference is ``experiments.latent_eval_reference`` (main's code, with one
(G, ...) copy of the training tuples per model, as main held them). Also printed: the largest difference of any
term, against the stated tolerance |difference| <= 1e-12 (1 + |reference|).
"""
from __future__ import annotations

import time

import numpy as np
import torch

TOLERANCE = 1e-12   # |new - reference| <= TOLERANCE (1 + |reference|), per term and model


def workload(profile: str = "default", keep=None):
    """(cell, EvalSet factory, encoder, params, loss_fn) of each trained, non-generalisation cell of ``profile``."""
    from experiments.contrastive import run as crun
    from experiments.contrastive.config import UNTRAINED, Cell
    from experiments.engine import chapters, runner
    from experiments.engine.config import config_hash
    from experiments.engine.rng import numpy_rng
    from experiments.latent_eval import EvalSet
    from synthetic_data.contrastive import build_model
    for cid, cell in runner.plan("contrastive", chapters.load_config("contrastive", profile)):
        if not isinstance(cell, Cell) or cell.objective in UNTRAINED or (keep and not keep(cell)):
            continue
        model = build_model(cell.data, numpy_rng(config_hash(cell.data), 0, "latent-model"))
        V = len(cell.train.lr)
        params = crun._init(cell, cid, model, V, "cpu")
        loss_fn = crun._objective(cell, model, [numpy_rng(cid, s, "train-data") for s in cell.seeds], V, "cpu")
        loss_fn = loss_fn if cell.objective in ("logistic", "hinge") else None
        yield (cell, lambda cell=cell, model=model, cid=cid: EvalSet(cell, model, cid, "cpu"),
               crun._encoder_fn(params, len(cell.seeds) * V), params, loss_fn, V)


def largest_difference(ref: dict, new: dict) -> float:
    """max over terms and models of |new - ref| / (1 + |ref|); NaN where both are NaN counts as equal."""
    if ref.keys() != new.keys():
        raise AssertionError(f"terms differ: {sorted(ref.keys() ^ new.keys())}")
    worst = 0.0
    for key in ref:
        a, b = np.asarray(ref[key], dtype=np.float64), np.asarray(new[key], dtype=np.float64)
        if not np.array_equal(np.isnan(a), np.isnan(b)):
            return float("inf")
        ok = ~np.isnan(a)
        if ok.any():
            worst = max(worst, float(np.max(np.abs(a[ok] - b[ok]) / (1.0 + np.abs(a[ok])))))
    return worst


def benchmark(profile: str = "default", keep=None) -> dict:
    from experiments import latent_eval_reference as reference
    times = {"reference": 0.0, "fast": 0.0}
    worst, n_calls = 0.0, 0
    with torch.no_grad(), _one_thread():
        for cell, make_eval, enc, params, loss_fn, V in workload(profile, keep):
            # main held one copy of the training tuples per model
            per_model = None if loss_fn is None else tuple(t.repeat_interleave(V, 0) for t in loss_fn.train_tuples)
            ev_ref, ev_new = make_eval(), make_eval()   # the same pools and the same rng stream for both
            for _ in range(cell.train.n_checkpoints):
                t0 = time.process_time()
                a = reference.theory_terms(ev_ref, enc, params, per_model)
                t1 = time.process_time()
                b = ev_new.theory_terms(enc, params, loss_fn)
                t2 = time.process_time()
                times["reference"] += t1 - t0
                times["fast"] += t2 - t1
                worst = max(worst, largest_difference(a, b))
                n_calls += 1
    return {**times, "ratio": times["reference"] / times["fast"], "largest_difference": worst, "calls": n_calls}


class _one_thread:
    def __enter__(self):
        self.n = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        torch.set_num_threads(self.n)


def lines() -> list[str]:
    r = benchmark()
    verdict = "within" if r["largest_difference"] <= TOLERANCE else "BEYOND"
    return ["contrastive theory terms (EvalSet.theory_terms), the contrastive default profile's workload: "
            f"{r['calls']} calls, CPU seconds, 1 thread",
            f"  reference (main's code, experiments.latent_eval_reference): {r['reference']:.2f} s",
            f"  fast (experiments.latent_eval + theory.contrastive_terms):  {r['fast']:.2f} s",
            f"  ratio {r['ratio']:.2f}x; largest difference {r['largest_difference']:.3g} (relative to 1 + |value|), "
            f"{verdict} the tolerance {TOLERANCE:g}"]


if __name__ == "__main__":
    print("\n".join(lines()))

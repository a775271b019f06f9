"""``sslt bench`` entry: the self_prediction nonlinear family's Gauss-Hermite posterior, the GEMM path
(SelfPredictionModel._quadrature_loglik) against the einsum-and-logsumexp code it replaced
(synthetic_data.self_prediction.quadrature_loglik_reference), in one process, on the default profile's nonlinear
cell: its model (the rule it refines to) and the rows one seed sends through it (the test sample, the pretext
sample, the labelled sample). Prints both times, the ratio, and the largest posterior difference against
POSTERIOR_TOL. Single thread, as a sweep worker runs.
"""
from __future__ import annotations

import time

import numpy as np
import torch
from scipy.special import softmax
from threadpoolctl import threadpool_limits


def _workload():
    from experiments.engine import chapters
    from experiments.engine.config import config_hash
    from experiments.engine.rng import numpy_rng
    from experiments.self_prediction.config import cells
    from synthetic_data.self_prediction import build_model
    cell = next(c for c in cells(chapters.load_config("self_prediction", "default")) if c.data.family == "nonlinear")
    dh = config_hash(cell.data)
    model = build_model(cell.data, numpy_rng(dh, 0, "model"))
    rows = cell.eval.n_test + cell.pretext.n1 + max(cell.eval.probe_n)
    return cell, model, model.sample(rows, numpy_rng(dh, 0, "test"))[0]


def _best(fn, repeats: int) -> tuple[float, np.ndarray]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def benchmark(repeats: int = 2) -> dict:
    from synthetic_data.self_prediction import POSTERIOR_TOL, quadrature_loglik_reference
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):   # numpy's BLAS at one thread, as in a cell's worker
            cell, model, x = _workload()
            t_ref, ref = _best(lambda: quadrature_loglik_reference(model, x), repeats)
            t_new, new = _best(lambda: model.latent_loglik(x), repeats)
    finally:
        torch.set_num_threads(threads)
    logp = np.log(model.latent_probs)[None]
    diff = float(np.max(np.abs(softmax(new + logp, 1) - softmax(ref + logp, 1))))
    return {"rows": x.shape[0], "nodes": model.quad_nodes, "k": model.k, "d1": model.d1, "seeds": len(cell.seeds),
            "ref_s": t_ref, "new_s": t_new, "ratio": t_ref / t_new, "max_diff": diff, "tol": POSTERIOR_TOL}


def lines() -> list[str]:
    r = benchmark()
    return [f"self_prediction posterior (nonlinear, default cell: k={r['k']}, d1={r['d1']}, {r['nodes']} Gauss-Hermite "
            f"nodes, {r['rows']} rows = one seed's test+pretext+labelled), 1 thread",
            f"   einsum+logsumexp reference {r['ref_s']:.3f} s, GEMM path {r['new_s']:.3f} s: {r['ratio']:.1f} x",
            f"   max |posterior diff| {r['max_diff']:.2e} (tolerance {r['tol']:.0e}); the cell also maps each "
            f"pretext block once instead of twice (psi_star, psi_star_full)"]


if __name__ == "__main__":
    print("\n".join(lines()))

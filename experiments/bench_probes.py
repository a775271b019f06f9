"""Timing of ``analysis.probes.fit_probe_grid`` against a loop of scikit-learn fits.

scikit-learn is only the reference here (and in tests); the analysis code
never imports it.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Sequence

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from analysis.probes import fit_probe_grid, subsample_per_class

__all__ = ["benchmark"]


def _bench_data(
    n_classes: int, d: int, n_train_per_class: int, n_test: int, rng: np.random.Generator,
    separation: float = 0.5, anisotropy: float = 10.0,
):
    """Gaussian mixture: class means N(0, separation^2 I), noise N(0, diag(s^2))
    with s log-spaced so that max(s) / min(s) = anisotropy (features not
    pre-whitened, as learned representations are not).

    Returns X_tr (K * n_train_per_class, d), y_tr (K * n_train_per_class,)
    class-sorted, X_te (n_test, d), y_te (n_test,).
    """
    means = separation * rng.standard_normal((n_classes, d))
    scale = np.logspace(-0.5, 0.5, d) ** math.log10(anisotropy)
    y_tr = np.repeat(np.arange(n_classes), n_train_per_class)
    y_te = rng.integers(0, n_classes, n_test)
    X_tr = means[y_tr] + scale * rng.standard_normal((y_tr.size, d))
    X_te = means[y_te] + scale * rng.standard_normal((n_test, d))
    return X_tr, y_tr, X_te, y_te


def benchmark(
    n_per_class: Sequence[int] = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
    seeds: int = 8,
    n_classes: int = 10,
    d: int = 32,
    C: float = 1.0,
    tol: float = 1e-8,
    sklearn_tol: float = 1e-4,
    threads: int | None = None,
    n_test: int = 5000,
    anisotropy: float = 10.0,
) -> dict:
    """Time ``fit_probe_grid`` against a loop of scikit-learn lbfgs fits on the same cells.

    Data: a fixed synthetic Gaussian mixture (``_bench_data``, generator seed 0)
    with 2 * max(n_per_class) training points per class, so seeds draw
    different subsets even at the largest n. scikit-learn runs with its
    default ``tol`` unless ``sklearn_tol`` says otherwise, ``max_iter=10000``.

    Args:
        n_per_class, seeds, n_classes, d, C: the grid and problem size.
        tol: passed to ``fit_probe_grid``.
        sklearn_tol: ``tol`` of the scikit-learn reference fits.
        threads: if given, torch and the BLAS/OpenMP pools used by
            scikit-learn are limited to this many threads during both timings.
        n_test: size of the shared test set.
        anisotropy: ratio of the largest to the smallest noise scale of the
            features (1 = isotropic, the easiest case for unpreconditioned
            scikit-learn lbfgs).

    Returns:
        dict with torch_s, sklearn_s, speedup (sklearn_s / torch_s),
        max_acc_diff_points (max over cells of |accuracy difference| * 100),
        n_cells, threads, all_converged.
    """
    rng = np.random.default_rng(0)
    X_tr, y_tr, X_te, y_te = _bench_data(
        n_classes, d, 2 * max(n_per_class), n_test, rng, anisotropy=anisotropy
    )
    seed_list = list(range(seeds))
    old_threads = torch.get_num_threads()
    limits = threadpool_limits(threads) if threads is not None else None
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        t0 = time.perf_counter()
        df = fit_probe_grid(X_tr, y_tr, X_te, y_te, n_per_class, seed_list, C=C, tol=tol)
        torch_s = time.perf_counter() - t0

        sk_acc = {}
        t0 = time.perf_counter()
        for s in seed_list:
            idx, w = subsample_per_class(y_tr, n_per_class, np.random.default_rng(s))
            for g, n in enumerate(n_per_class):
                ii = idx[g, : int(w[g].sum())]
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    m = LogisticRegression(C=C, tol=sklearn_tol, max_iter=10000).fit(X_tr[ii], y_tr[ii])
                sk_acc[(s, int(n))] = float((m.predict(X_te) == y_te).mean())
        sklearn_s = time.perf_counter() - t0
    finally:
        torch.set_num_threads(old_threads)
        if limits is not None:
            limits.unregister()
    diff = max(abs(r.accuracy - sk_acc[(r.seed, r.n_per_class)]) for r in df.itertuples())
    return {
        "torch_s": torch_s,
        "sklearn_s": sklearn_s,
        "speedup": sklearn_s / torch_s,
        "max_acc_diff_points": 100.0 * diff,
        "n_cells": len(df),
        "threads": threads if threads is not None else old_threads,
        "all_converged": bool(df.converged.all()),
    }

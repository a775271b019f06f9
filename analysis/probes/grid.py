"""Sample-complexity grids: nested class-balanced subsets and one probe per (seed, n) cell."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from analysis.probes.fit import buckets, fit_logistic_probes, test_metrics

__all__ = ["subsample_per_class", "fit_probe_grid"]

def subsample_per_class(
    y: np.ndarray, n_per_class: Sequence[int], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Nested, class-balanced training subsets for one seed.

    Each class gets one random permutation from ``rng``; the subset for n takes
    the first n indices of every class's permutation, so the subset for n is
    contained in the subset for any larger n. Rows are laid out round-robin over
    classes (first draw of each class, then second, ...), which makes every
    subset a prefix of the largest one.

    Args:
        y: (N,) labels (any sortable values).
        n_per_class: G sizes, each >= 1 and <= the smallest class count.
        rng: source of the permutations.

    Returns:
        idx: (G, n_max * K) int64 indices into y, padded with 0 beyond n * K.
        weight: (G, n_max * K) float64, 1 on the first n * K entries, 0 after.
    """
    y = np.asarray(y)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"y: must be a non-empty 1-d array (got shape {y.shape})")
    ns = [int(n) for n in n_per_class]
    if not ns or any(n < 1 or n != m for n, m in zip(ns, n_per_class)):
        raise ValueError(f"n_per_class: must be a non-empty list of integers >= 1 (got {list(n_per_class)})")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: must be a numpy Generator (got {type(rng).__name__})")
    classes = np.unique(y)
    members = [np.flatnonzero(y == c) for c in classes]
    smallest = min(len(m) for m in members)
    n_max = max(ns)
    if n_max > smallest:
        raise ValueError(f"n_per_class: {n_max} exceeds the smallest class size {smallest}")
    draws = np.stack([rng.permutation(m)[:n_max] for m in members], 1)  # (n_max, K)
    order = draws.reshape(-1)
    G, width = len(ns), n_max * len(classes)
    idx = np.zeros((G, width), dtype=np.int64)
    weight = np.zeros((G, width), dtype=np.float64)
    for g, n in enumerate(ns):
        idx[g, : n * len(classes)] = order[: n * len(classes)]
        weight[g, : n * len(classes)] = 1.0
    return idx, weight


def fit_probe_grid(
    features_train,
    y_train,
    features_test,
    y_test,
    n_per_class: Sequence[int],
    seeds: Sequence[int | np.random.Generator],
    C: float = 1.0,
    standardize: bool = False,
    tol: float = 1e-8,
    max_iter: int = 200,
    device: str | torch.device | None = None,
    max_bytes: float = 1e9,
    warm_start: bool = True,
) -> pd.DataFrame:
    """Fit and evaluate a probe for every (seed, n_per_class) cell.

    Args:
        features_train: (N, d) training features (numpy or tensor).
        y_train: (N,) labels; classes are the sorted unique values.
        features_test: (M, d) test features; y_test: (M,) labels (classes of y_train).
        n_per_class: sizes n; cell (seed, n) trains on n examples of every class,
            nested in n (see ``subsample_per_class``).
        seeds: ints (each seeds ``np.random.default_rng``) or Generators (the
            ``seed`` column then holds their position).
        C, tol, max_iter: passed to ``fit_logistic_probes``.
        standardize: if True, centre and scale every feature by the mean and
            standard deviation of ``features_train`` (one transform for all
            cells, applied to the test set too); off by default, because it
            changes the penalised problem.
        device: torch device of the computation (default CPU).
        max_bytes: memory cap of one batched call's padded data.
        warm_start: start each cell from the same seed's fit at the next
            smaller n (nested data, so a nearby optimum); the solutions are
            the same to within ``tol``.

    Returns:
        DataFrame, one row per cell: seed, n_per_class, accuracy (fraction),
        loss (mean test cross-entropy, nats), converged, n_iter.
    """
    Xtr = np.asarray(torch.as_tensor(features_train).cpu(), dtype=np.float64)
    Xte = np.asarray(torch.as_tensor(features_test).cpu(), dtype=np.float64)
    ytr_raw, yte_raw = np.asarray(y_train), np.asarray(y_test)
    if Xtr.ndim != 2 or Xtr.shape[0] != ytr_raw.shape[0]:
        raise ValueError(f"features_train: must have shape (N, d) matching y_train (got {Xtr.shape})")
    if Xte.ndim != 2 or Xte.shape[1] != Xtr.shape[1] or Xte.shape[0] != yte_raw.shape[0]:
        raise ValueError(
            f"features_test: must have shape (M, {Xtr.shape[1]}) matching y_test (got {Xte.shape})"
        )
    classes, ytr = np.unique(ytr_raw, return_inverse=True)
    if not np.isin(yte_raw, classes).all():
        raise ValueError("y_test: contains a class absent from y_train")
    yte = np.searchsorted(classes, yte_raw)
    if len(seeds) == 0:
        raise ValueError("seeds: must be non-empty")
    if standardize:
        mu, sd = Xtr.mean(0), Xtr.std(0)
        sd = np.where(sd > 0, sd, 1.0)
        Xtr, Xte = (Xtr - mu) / sd, (Xte - mu) / sd
    K, d = len(classes), Xtr.shape[1]
    dev = torch.device(device) if device is not None else torch.device("cpu")

    cells = []  # (seed label, n, index array)
    for pos, s in enumerate(seeds):
        rng = s if isinstance(s, np.random.Generator) else np.random.default_rng(int(s))
        label = pos if isinstance(s, np.random.Generator) else int(s)
        idx, w = subsample_per_class(ytr, n_per_class, rng)
        for g, n in enumerate(n_per_class):
            cells.append((label, int(n), idx[g, : int(w[g].sum())]))

    Xtr_t = torch.as_tensor(Xtr, device=dev)
    ytr_t = torch.as_tensor(ytr, device=dev)
    Xte_t = torch.as_tensor(Xte, device=dev).unsqueeze(0)
    yte_t = torch.as_tensor(yte, device=dev)
    # Working memory per padded row: X, logits, probabilities, gradient terms.
    row_bytes = 8 * (2 * d + 6 * K)
    rows = []
    solved: dict[tuple[int, int], tuple[Tensor, Tensor]] = {}
    for bucket in buckets([len(c[2]) for c in cells], row_bytes, max_bytes):
        n_max = max(len(cells[i][2]) for i in bucket)
        idx = torch.zeros(len(bucket), n_max, dtype=torch.long, device=dev)
        weight = torch.zeros(len(bucket), n_max, dtype=torch.float64, device=dev)
        for j, i in enumerate(bucket):
            ii = torch.as_tensor(cells[i][2], device=dev)
            idx[j, : len(ii)] = ii
            weight[j, : len(ii)] = 1.0
        init = None
        if warm_start:
            # Start each cell from its seed's solution at the next smaller n
            # (a subset of its data), when an earlier batch has it.
            W0 = torch.zeros(len(bucket), d, K, dtype=torch.float64, device=dev)
            b0 = torch.zeros(len(bucket), K, dtype=torch.float64, device=dev)
            for j, i in enumerate(bucket):
                label, n = cells[i][0], cells[i][1]
                smaller = [m for (lab, m) in solved if lab == label and m < n]
                if smaller:
                    W0[j], b0[j] = solved[(label, max(smaller))]
            init = (W0, b0)
        fit = fit_logistic_probes(
            Xtr_t[idx], ytr_t[idx], weight, K, C=C, max_iter=max_iter, tol=tol, init=init
        )
        acc, loss = (v.cpu().numpy() for v in test_metrics(fit, Xte_t, yte_t))
        for j, i in enumerate(bucket):
            solved[(cells[i][0], cells[i][1])] = (fit.W[j], fit.b[j])
            rows.append({
                "seed": cells[i][0], "n_per_class": cells[i][1],
                "accuracy": float(acc[j]), "loss": float(loss[j]),
                "converged": bool(fit.converged[j]), "n_iter": int(fit.n_iter[j]),
            })
    df = pd.DataFrame(rows)
    return df.sort_values(["seed", "n_per_class"], kind="stable").reset_index(drop=True)

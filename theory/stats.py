"""Shared numerics of the suite: the mean over seeds and its standard error, with one convention for n = 1.

Across-seed standard error. With n >= 2 finite values it is the sample standard deviation (ddof = 1) over
sqrt(n). With one value the across-seed spread does not exist: the SE is NaN, never a silent 0, so a verdict
judged from it is ``undetermined`` (theory.verdict) rather than a confident "holds" or "violated". Terms that
are exact (computed in closed form or by enumeration) carry SE 0 because they have no sampling noise at all;
that is a different statement from "one seed".
"""
from __future__ import annotations

import warnings

import numpy as np

ONE_SEED_SE = float("nan")


def mean_se(values, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean and across-seed standard error along ``axis``; NaN values count as missing seeds."""
    v = np.asarray(values, dtype=np.float64)
    n = np.sum(np.isfinite(v), axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # one value or none: handled below, not a surprise
        mean = np.nanmean(v, axis=axis) if v.size else np.full(np.shape(n), np.nan)
        sd = np.nanstd(v, axis=axis, ddof=1) if v.size else np.full(np.shape(n), np.nan)
        se = np.where(n >= 2, sd / np.sqrt(np.maximum(n, 1)), ONE_SEED_SE)
    if np.ndim(mean) == 0:
        return np.float64(mean), np.float64(se)
    return mean, se

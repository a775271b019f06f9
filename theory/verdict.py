"""How a measured value is judged against a bound: holds, violated, or vacuous.

- violated: measured exceeds the bound by more than ``n_se`` combined standard errors (Monte-Carlo noise in
  either term does not count as a violation; exact terms have SE 0, so any excess beyond float rounding counts);
- vacuous: not violated, but the bound is at least ``trivial``, the value any trivial predictor reaches (for a
  loss bound, the loss of the zero encoder): such a bound holds without saying anything;
- holds: otherwise;
- assumption not met: the theorem's assumption fails on this distribution (a chapter's own check says so), so
  the bound does not apply and the point is neither a violation nor a confirmation.
Violation is judged first: a violated bound is a finding even when it is also vacuous. A point whose assumption
is not met is never called violated.
"""
from __future__ import annotations

import numpy as np

HOLDS, VIOLATED, VACUOUS, NOT_MET = "holds", "violated", "vacuous", "assumption not met"
N_SE = 3.0
_ROUNDING = 1e-9  # relative slack for exact terms computed in float64


def verdicts(measured, bound, trivial, measured_se=0.0, bound_se=0.0, n_se: float = N_SE,
             assumption_met=True) -> np.ndarray:
    """Vectorised verdicts; all arguments broadcast to one shape. Returns an array of strings."""
    measured, bound, trivial = (np.asarray(a, dtype=np.float64) for a in (measured, bound, trivial))
    se = np.hypot(np.asarray(measured_se, dtype=np.float64), np.asarray(bound_se, dtype=np.float64))
    tol = n_se * se + _ROUNDING * np.maximum(1.0, np.abs(bound))
    out = np.where(measured - bound > tol, VIOLATED, np.where(bound >= trivial, VACUOUS, HOLDS))
    out = np.where(np.asarray(assumption_met, dtype=bool), out, NOT_MET)
    return np.asarray(out, dtype=object)


def slack(measured, bound) -> np.ndarray:
    """bound / measured: 1 is tight, large is loose; inf where the measured value is 0."""
    measured, bound = np.asarray(measured, dtype=np.float64), np.asarray(bound, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(measured > 0, bound / measured, np.inf)

"""How a measured value is judged against a theorem's bound, or read against a reference.

For a **bound** (``kind="bound"``), in this order:

- assumption not met: the theorem's hypothesis fails on this distribution (one of its declared checks says
  so), so the bound does not apply; the point is neither a violation nor a confirmation;
- undetermined: the point cannot be judged: the probe it rests on did not converge, or the measured value,
  the bound or a standard error is not finite (NaN, inf). The reason says which. Never counted as "holds";
- violated: measured exceeds the bound by more than ``n_se`` combined standard errors (Monte-Carlo noise in
  either term does not count as a violation; exact terms have SE 0, so any excess beyond float rounding counts);
- vacuous: not violated, but the bound is at least ``trivial``, the value any trivial predictor reaches (for a
  loss bound, the loss of the zero encoder): such a bound holds without saying anything;
- holds: otherwise.

A **reference** (``kind="reference"``) is a curve, not a theorem: exceeding it is a statement about the
reference. It reads "above reference" (measured exceeds it by more than the same tolerance) or "below
reference", or "undetermined" for the same reasons as a bound; never holds / violated / vacuous.

An **identity** (``kind="identity"``) is an exact statement of the suite's own algebra, "measured <= value" for
every input (an Eckart–Young minimum: no encoder goes below it). It is checked to rounding only, with no
Monte-Carlo allowance: "exact" where measured - value <= ``IDENTITY_RTOL`` · max(1, |value|, |measured|) (relative
1e-9 of the larger magnitude, absolute 1e-9 below magnitude 1: float64 arithmetic on sums of a few thousand
terms stays far inside it), else "broken", the sign of an arithmetic bug; "undetermined" or "assumption not met"
as for a bound. An identity is never "holds": it says nothing about how good a model is.

Standard errors: an across-seed SE from one seed is NaN (theory.stats), so a one-seed point is undetermined.
"""
from __future__ import annotations

import numpy as np

HOLDS, VIOLATED, VACUOUS, NOT_MET = "holds", "violated", "vacuous", "assumption not met"
UNDETERMINED = "undetermined"
ABOVE, BELOW = "above reference", "below reference"
EXACT, BROKEN = "exact", "broken"
BOUND_VERDICTS = (HOLDS, VIOLATED, VACUOUS, NOT_MET, UNDETERMINED)
REFERENCE_VERDICTS = (ABOVE, BELOW, NOT_MET, UNDETERMINED)
IDENTITY_VERDICTS = (EXACT, BROKEN, NOT_MET, UNDETERMINED)
VERDICTS_OF = {"bound": BOUND_VERDICTS, "reference": REFERENCE_VERDICTS, "identity": IDENTITY_VERDICTS}
N_SE = 3.0
_ROUNDING = 1e-9  # relative slack for exact terms computed in float64
IDENTITY_RTOL = 1e-9


def _reasons(measured, bound, trivial, measured_se, bound_se, converged, is_bound) -> np.ndarray:
    reason = np.full(measured.shape, "", dtype=object)

    def note(mask, text):
        mask = np.asarray(mask, dtype=bool) & (reason == "")
        reason[mask] = text

    note(~converged, "probe did not converge")
    for name, v in (("measured", measured), ("bound", bound), ("measured_se", measured_se),
                    ("bound_se", bound_se)):
        note(np.isnan(v), f"{name} is NaN" + (" (one seed: no across-seed SE)" if name == "measured_se" else ""))
        note(np.isinf(v), f"{name} is infinite")
    note(is_bound & np.isnan(trivial), "trivial value is NaN")
    return reason


def verdicts(measured, bound, trivial, measured_se=0.0, bound_se=0.0, n_se: float = N_SE,
             assumption_met=True, converged=True, kind="bound", return_reasons: bool = False):
    """Vectorised verdicts; all arguments broadcast to one shape. Returns an array of strings (and, with
    ``return_reasons``, a second array: why a point is undetermined or outside its assumption, else "")."""
    arrays = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in
                                   (measured, bound, trivial, measured_se, bound_se)))
    measured, bound, trivial, m_se, b_se = (np.array(a) for a in arrays)
    shape = measured.shape
    met = np.broadcast_to(np.asarray(assumption_met, dtype=bool), shape)
    conv = np.broadcast_to(np.asarray(converged, dtype=bool), shape)
    kinds = np.broadcast_to(np.asarray(kind, dtype=object), shape)
    is_bound, is_identity = kinds == "bound", kinds == "identity"
    bad_kind = ~np.isin(kinds, list(VERDICTS_OF))
    if bad_kind.any():
        raise ValueError(f"kind: must be one of {', '.join(VERDICTS_OF)}, got {kinds[bad_kind].ravel()[0]!r}")
    reason = _reasons(measured, bound, trivial, m_se, b_se, conv, is_bound)
    undetermined = reason != ""
    with np.errstate(invalid="ignore"):
        se = np.hypot(m_se, b_se)
        tol = n_se * se + _ROUNDING * np.maximum(1.0, np.abs(bound))
        above = measured - bound > tol
        judged_bound = np.where(above, VIOLATED, np.where(bound >= trivial, VACUOUS, HOLDS))
        rounding = IDENTITY_RTOL * np.maximum(1.0, np.maximum(np.abs(bound), np.abs(measured)))
        judged_identity = np.where(measured - bound > rounding, BROKEN, EXACT)
    judged = np.where(is_bound, judged_bound, np.where(is_identity, judged_identity, np.where(above, ABOVE, BELOW)))
    out = np.where(undetermined, UNDETERMINED, judged)
    out = np.where(met, out, NOT_MET)
    reason = np.where(met, reason, "assumption not met")
    out = np.asarray(out, dtype=object)
    return (out, np.asarray(reason, dtype=object)) if return_reasons else out


def slack(measured, bound) -> np.ndarray:
    """bound / measured: 1 is tight, large is loose; inf where the measured value is 0, NaN where either is."""
    measured, bound = np.asarray(measured, dtype=np.float64), np.asarray(bound, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(measured > 0, bound / measured, np.where(np.isnan(measured), np.nan, np.inf))

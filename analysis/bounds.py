"""The verdict table ``bounds.csv``: every chapter's bound checks, judged, and its printed summary.

A chapter's ``bound_checks(rows)`` returns one row per (theorem, point) with at least ``theorem`` (an id of the
chapter's theorem registry), ``bound``, ``form``, ``measured``, ``measured_se``, ``bound_value``, ``bound_se``,
``trivial`` and every term its theorem's bound function takes. Optional: ``converged`` (False where a probe the
row rests on did not converge) and ``assumption`` ("met" / "not met", a chapter's own check on top of the
theorem's declared ones). Here each row gets the theorem's ``kind`` (bound or reference), the result of every
declared assumption check, its ``verdict`` with a ``reason``, and its ``slack``. ``bound_value`` is the theorem's
own ``bound(**terms)`` of the row: a chapter may leave the column out (it is filled here) or supply it, and then it
must agree (rtol 1e-12) or judging fails, naming the theorem and the first row that disagrees.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from theory.theorems import REFERENCE, Theorem
from theory.verdict import (ABOVE, BELOW, HOLDS, NOT_MET, UNDETERMINED, VACUOUS, VIOLATED, slack,
                            verdicts)

LEAD_COLUMNS = ["run", "experiment", "theorem", "kind", "bound", "form", "measured", "measured_se", "bound_value",
                "bound_se", "trivial", "converged", "assumption", "assumption_checks", "verdict", "reason",
                "slack"]
NOT_MET_LABEL, MET_LABEL = "not met", "met"


def _assumptions(out: pd.DataFrame, theorems: Mapping[str, Theorem]) -> tuple[np.ndarray, np.ndarray]:
    """Every declared assumption of each row's theorem, evaluated on the row's terms: (met, detail)."""
    met = np.ones(len(out), dtype=bool)
    detail = np.full(len(out), "", dtype=object)
    positions = np.arange(len(out))
    for tid, idx in out.groupby("theorem", sort=False).indices.items():
        sub = out.iloc[idx]
        for name, (value, ok) in theorems[tid].check_assumptions(sub).items():
            met[idx] &= ok
            text = np.array([f"{name} = {v:.6g}: {'met' if o else 'not met'}" for v, o in zip(value, ok)],
                            dtype=object)
            detail[positions[idx]] = np.where(detail[idx] == "", text, detail[idx] + "; " + text)
    return met, detail


BOUND_RTOL = 1e-12


class BoundMismatch(ValueError):
    """A row's supplied ``bound_value`` is not its theorem's ``bound`` of the row's terms."""


def _bound_values(out: pd.DataFrame, theorems: Mapping[str, Theorem]) -> np.ndarray:
    """Every row's bound from its theorem's own function; where the chapter supplied ``bound_value``, the two
    must agree (NaN with NaN, inf with inf), else BoundMismatch names the theorem and the first bad row."""
    supplied = out["bound_value"].to_numpy(dtype=np.float64) if "bound_value" in out.columns else None
    values = np.full(len(out), np.nan)
    for tid, idx in out.groupby("theorem", sort=False).indices.items():
        try:
            values[idx] = theorems[tid].bound_from(out.iloc[idx])
        except KeyError as err:
            raise KeyError(f"{tid}: {err.args[0]}") from None
        if supplied is None:
            continue
        ok = np.isclose(supplied[idx], values[idx], rtol=BOUND_RTOL, atol=0.0, equal_nan=True)
        if not ok.all():
            i = idx[np.argmin(ok)]
            raise BoundMismatch(f"{tid}: row {i} supplies bound_value = {supplied[i]!r}, its theorem's "
                                f"bound(**terms) gives {values[i]!r}")
    return values


def judge(checks: pd.DataFrame, theorems: Mapping[str, Theorem] | None = None) -> pd.DataFrame:
    """Verdict, reason and slack for every row; with ``theorems``, each row's kind, bound value and assumptions
    come from the declaration its ``theorem`` column names (an unknown id is an error, not a silent bound)."""
    out = checks.copy().reset_index(drop=True)
    met = np.ones(len(out), dtype=bool)
    if "assumption" in out.columns:
        met &= out["assumption"].ne(NOT_MET_LABEL).to_numpy()
    if theorems is not None and len(out):
        unknown = sorted(set(out["theorem"]) - set(theorems))
        if unknown:
            raise KeyError(f"bound checks name theorems not in the registry: {', '.join(map(str, unknown))}")
        out["kind"] = out["theorem"].map(lambda t: theorems[t].kind)
        values = _bound_values(out, theorems)
        if "bound_value" not in out.columns:
            out["bound_value"] = values
        declared, detail = _assumptions(out, theorems)
        met &= declared
        out["assumption_checks"] = detail
    if "kind" not in out.columns:
        out["kind"] = "bound"
    out["assumption"] = np.where(met, MET_LABEL, NOT_MET_LABEL)
    converged = out["converged"].astype(bool).to_numpy() if "converged" in out.columns else True
    verdict, reason = verdicts(out["measured"], out["bound_value"], out["trivial"], out["measured_se"],
                               out["bound_se"], assumption_met=met, converged=converged,
                               kind=out["kind"].to_numpy(dtype=object), return_reasons=True)
    out["verdict"], out["reason"] = verdict, reason
    out["slack"] = slack(out["measured"], out["bound_value"])
    lead = [c for c in LEAD_COLUMNS if c in out.columns]
    return out[lead + [c for c in out.columns if c not in lead]]


def _median_slack(g: pd.DataFrame) -> str:
    applies = g["slack"][~g["verdict"].isin([NOT_MET, UNDETERMINED])]  # outside its assumption slack means nothing
    finite = applies[np.isfinite(applies)]
    return f"{finite.median():.3g}" if len(finite) else "n/a"


def summary(table: pd.DataFrame) -> str:
    """Two blocks. Bounds: one line per (experiment, theorem, form) counting holds, violated, vacuous,
    assumption not met and undetermined, with the median slack. References, apart: above / below / undetermined;
    a reference is never 'violated'."""
    if table.empty:
        return "no bound checks (no finished cells)"
    kind = table["kind"] if "kind" in table.columns else pd.Series("bound", index=table.index)
    key = "theorem" if "theorem" in table.columns else "bound"
    we = max(11, int(table["experiment"].str.len().max()) + 2)
    wt = max(11, int(table[key].astype(str).str.len().max()) + 2)
    wf = max(6, int(table["form"].astype(str).str.len().max()) + 2)

    def head(what, cols, last):
        return f"{'experiment':<{we}}{what:<{wt}}{'form':<{wf}}{'points':>7}" + "".join(f"{c:>10}" for c in cols) \
            + f"{last:>14}"

    def line(exp, thm, form, g, verdicts):
        c = g["verdict"].value_counts()
        return f"{exp:<{we}}{thm:<{wt}}{form:<{wf}}{len(g):>7}" + "".join(f"{c.get(v, 0):>10}" for v in verdicts) \
            + f"{_median_slack(g):>14}"

    bound_cols = (HOLDS, VIOLATED, VACUOUS, NOT_MET, UNDETERMINED)
    lines = ["bounds (theorems): 'violated' means the theorem's inequality failed where its assumptions are met",
             head("theorem", ("holds", "violated", "vacuous", "not met", "undeterm."), "median slack")]
    bounds = table[kind != REFERENCE]
    for (exp, thm, form), g in bounds.groupby(["experiment", key, "form"], sort=True):
        lines.append(line(exp, thm, form, g, bound_cols))
    refs = table[kind == REFERENCE]
    if len(refs):
        lines += ["", "references (not theorems): where the measurement sits against a reference curve; "
                  "ratio = reference / measured",
                  head("reference", ("above", "below", "not met", "undeterm."), "median ratio")]
        for (exp, thm, form), g in refs.groupby(["experiment", key, "form"], sort=True):
            lines.append(line(exp, thm, form, g, (ABOVE, BELOW, NOT_MET, UNDETERMINED)))
    return "\n".join(lines)


def verdict_counts(table: pd.DataFrame) -> dict[str, int]:
    """Counts of every verdict in a table (for a run's record and ``sslt runs``)."""
    if table.empty:
        return {}
    return {str(k): int(v) for k, v in table["verdict"].value_counts().sort_index().items()}

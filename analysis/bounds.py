"""The verdict table ``bounds.csv``: every chapter's bound checks, judged, and its printed summary.

A chapter's ``bound_checks(rows)`` returns one row per (theorem, point) with at least ``theorem`` (an id of the
chapter's theorem registry), ``bound``, ``form``, ``measured``, ``measured_se``, ``bound_value``, ``bound_se``,
``trivial``, ``model_kind`` (what the measured model is, one of ``MODEL_KINDS``: "trained", optimised by the
suite on its objective; "oracle", built from the ground truth (psi*, p*, an exact minimiser); "constructed", the
ground truth perturbed on purpose (logit noise, tilts); "untrained", step 0, a random encoder or raw inputs) and
every term its theorem's bound function takes. Optional: ``converged`` (False where a probe the
row rests on did not converge) and ``assumption`` ("met" / "not met", a chapter's own check on top of the
theorem's declared ones). Here each row gets the theorem's ``kind`` (bound or reference), the result of every
declared assumption check, its ``verdict`` with a ``reason``, and its ``slack``. ``bound_value`` is the theorem's
own ``bound(**terms)`` of the row: a chapter may leave the column out (it is filled here) or supply it, and then it
must agree (rtol 1e-12) or judging fails, naming the theorem and the first row that disagrees.
    check_model_kinds(checks)
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from theory.theorems import IDENTITY, REFERENCE, Theorem
from theory.verdict import (ABOVE, BELOW, BROKEN, EXACT, HOLDS, NOT_MET, UNDETERMINED, VACUOUS, VIOLATED, slack,
                            verdicts)

LEAD_COLUMNS = ["run", "experiment", "theorem", "kind", "bound", "form", "model_kind", "measured", "measured_se",
                "bound_value", "bound_se", "trivial", "converged", "assumption", "assumption_checks", "verdict",
                "reason", "slack"]
NOT_MET_LABEL, MET_LABEL = "not met", "met"
TRAINED, ORACLE, CONSTRUCTED, UNTRAINED = "trained", "oracle", "constructed", "untrained"
MODEL_KINDS = (TRAINED, ORACLE, CONSTRUCTED, UNTRAINED)


def check_model_kinds(checks: pd.DataFrame) -> None:
    """Every row says what its model is: a missing or unknown ``model_kind`` is an error naming the theorem."""
    if checks.empty:
        return
    name = checks["theorem"] if "theorem" in checks.columns else checks.get("bound", pd.Series("?", checks.index))
    if "model_kind" not in checks.columns:
        raise ValueError(f"model_kind: missing from the bound checks of {', '.join(sorted(set(map(str, name))))} "
                         f"(one of {', '.join(MODEL_KINDS)} per row)")
    bad = ~checks["model_kind"].isin(MODEL_KINDS).to_numpy()
    if bad.any():
        first = checks[bad].iloc[0]
        raise ValueError(f"model_kind: {first['model_kind']!r} in a row of {name[bad].iloc[0]} is not one of "
                         f"{', '.join(MODEL_KINDS)} ({int(bad.sum())} such rows)")


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
    check_model_kinds(checks)
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


def _trained_holds(g: pd.DataFrame) -> str:
    trained = g[g["model_kind"] == TRAINED] if "model_kind" in g.columns else g.iloc[:0]
    return f"{int((trained['verdict'] == HOLDS).sum())}/{len(trained)}"


def summary(table: pd.DataFrame) -> str:
    """Three blocks. Bounds: one line per (experiment, theorem, form) counting holds, the holds among trained
    points (holds / trained points: where a theorem speaks about a model the suite optimised), violated, vacuous,
    assumption not met and undetermined, with the median slack. References, apart: above / below / undetermined;
    a reference is never 'violated'. Identities, apart: exact / broken; never counted among holds."""
    if table.empty:
        return "no bound checks (no finished cells)"
    kind = table["kind"] if "kind" in table.columns else pd.Series("bound", index=table.index)
    key = "theorem" if "theorem" in table.columns else "bound"
    we = max(11, int(table["experiment"].str.len().max()) + 2)
    wt = max(11, int(table[key].astype(str).str.len().max()) + 2)
    wf = max(6, int(table["form"].astype(str).str.len().max()) + 2)

    def head(what, cols, last, trained=False):
        return f"{'experiment':<{we}}{what:<{wt}}{'form':<{wf}}{'points':>7}" + "".join(f"{c:>10}" for c in cols[:1]) \
            + (f"{'trained holds':>15}" if trained else "") + "".join(f"{c:>10}" for c in cols[1:]) + f"{last:>14}"

    def line(exp, thm, form, g, verdicts, trained=False):
        c = g["verdict"].value_counts()
        n = [f"{c.get(v, 0):>10}" for v in verdicts]
        return f"{exp:<{we}}{thm:<{wt}}{form:<{wf}}{len(g):>7}" + n[0] \
            + (f"{_trained_holds(g):>15}" if trained else "") + "".join(n[1:]) + f"{_median_slack(g):>14}"

    bound_cols = (HOLDS, VIOLATED, VACUOUS, NOT_MET, UNDETERMINED)
    lines = ["bounds (theorems): 'violated' means the theorem's inequality failed where its assumptions are met; "
             "'trained holds' = holds / points among models the suite trained",
             head("theorem", ("holds", "violated", "vacuous", "not met", "undeterm."), "median slack", True)]
    bounds = table[~kind.isin([REFERENCE, IDENTITY])]
    for (exp, thm, form), g in bounds.groupby(["experiment", key, "form"], sort=True):
        lines.append(line(exp, thm, form, g, bound_cols, True))
    refs = table[kind == REFERENCE]
    if len(refs):
        lines += ["", "references (not theorems): where the measurement sits against a reference curve; "
                  "ratio = reference / measured",
                  head("reference", ("above", "below", "not met", "undeterm."), "median ratio")]
        for (exp, thm, form), g in refs.groupby(["experiment", key, "form"], sort=True):
            lines.append(line(exp, thm, form, g, (ABOVE, BELOW, NOT_MET, UNDETERMINED)))
    ids = table[kind == IDENTITY]
    if len(ids):
        lines += ["", "identities (exact statements of the suite's algebra, checked to rounding; 'broken' is an "
                  "arithmetic bug; never counted as holds)",
                  head("identity", ("exact", "broken", "not met", "undeterm."), "median ratio")]
        for (exp, thm, form), g in ids.groupby(["experiment", key, "form"], sort=True):
            lines.append(line(exp, thm, form, g, (EXACT, BROKEN, NOT_MET, UNDETERMINED)))
    return "\n".join(lines)


def verdict_counts(table: pd.DataFrame) -> dict[str, int]:
    """Counts of every verdict in a table (for a run's record and ``sslt runs``)."""
    if table.empty:
        return {}
    return {str(k): int(v) for k, v in table["verdict"].value_counts().sort_index().items()}

"""The verdict table ``bounds.csv``: the tidy union of every chapter's bound checks, and its printed summary.

A chapter's ``bound_checks(rows)`` returns one row per (bound, point) with at least ``bound``, ``measured``,
``measured_se``, ``bound_value``, ``bound_se``, ``trivial`` and the theorem's own terms as columns; here each
row gets its ``verdict`` and ``slack``. An optional ``assumption`` column ("met" / "not met") marks points where
the chapter's assumption check fails: those get the verdict "assumption not met", never "violated".
"""
from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import paths, results
from theory.verdict import HOLDS, NOT_MET, VACUOUS, VIOLATED, slack, verdicts

LEAD_COLUMNS = ["experiment", "bound", "form", "measured", "measured_se", "bound_value", "bound_se", "trivial",
                "assumption", "verdict", "slack"]
NOT_MET_LABEL = "not met"


def chapter(experiment: str):
    return importlib.import_module(f"analysis.{experiment}")


def judge(checks: pd.DataFrame) -> pd.DataFrame:
    out = checks.copy()
    met = out["assumption"].ne(NOT_MET_LABEL).to_numpy() if "assumption" in out.columns else True
    out["verdict"] = verdicts(out["measured"], out["bound_value"], out["trivial"], out["measured_se"],
                              out["bound_se"], assumption_met=met)
    out["slack"] = slack(out["measured"], out["bound_value"])
    lead = [c for c in LEAD_COLUMNS if c in out.columns]
    return out[lead + [c for c in out.columns if c not in lead]]


def collect(root: Path, experiments: list[str]) -> pd.DataFrame:
    frames = []
    for name in experiments:
        rows = results.load_rows(root, name)
        if len(rows):
            checks = chapter(name).bound_checks(rows)
            checks.insert(0, "experiment", name)
            frames.append(judge(checks))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=LEAD_COLUMNS)


def summary(table: pd.DataFrame) -> str:
    """One line per (experiment, bound, form): how many points hold, are violated, are vacuous, or fall outside
    the theorem's assumption; median slack."""
    if table.empty:
        return "no bound checks (no finished cells)"
    lines = [f"{'experiment':<17}{'bound':<26}{'form':<16}{'points':>7}{'holds':>7}{'violated':>9}{'vacuous':>8}"
             f"{'not met':>8}{'median slack':>14}"]
    for (exp, bound, form), g in table.groupby(["experiment", "bound", "form"], sort=True):
        counts = g["verdict"].value_counts()
        applies = g["slack"][g["verdict"] != NOT_MET]  # outside its assumption a bound's slack means nothing
        finite = applies[np.isfinite(applies)]
        med = f"{finite.median():.3g}" if len(finite) else "n/a"
        lines.append(f"{exp:<17}{bound:<26}{form:<16}{len(g):>7}{counts.get(HOLDS, 0):>7}"
                     f"{counts.get(VIOLATED, 0):>9}{counts.get(VACUOUS, 0):>8}{counts.get(NOT_MET, 0):>8}{med:>14}")
    return "\n".join(lines)

"""Tidy rows (metric, value) to wide tables: one column per metric, the same way for every chapter."""
from __future__ import annotations

import pandas as pd

PROBE_PREFIX = "probe_"


def scalar_wide(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per ``keys`` with every non-probe metric as a column."""
    scalar = rows[~rows["metric"].str.startswith(PROBE_PREFIX)]
    # unstack, not pivot_table: pivot_table drops metrics that are NaN everywhere (e.g. L_sup_mu when k + 1 > C)
    wide = scalar.set_index(keys + ["metric"])["value"].unstack("metric").reset_index()
    wide.columns.name = None
    return wide


def probe_wide(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per ``keys`` and labelled size ``n_per_class`` with every probe metric as a column."""
    probe = rows[rows["metric"].str.startswith(PROBE_PREFIX)]
    wide = probe.set_index(keys + ["n_per_class", "metric"])["value"].unstack("metric").reset_index()
    wide.columns.name = None
    return wide


def judged_at(judged: pd.DataFrame, points: pd.DataFrame, keys: list[str], col: str = "bound_value",
              **where) -> pd.Series:
    """``col`` of the judged row (of one theorem or form: ``where`` column=value pairs) at each row of ``points``,
    matched on ``keys``; missing (NaN) where the judged table has no such row. Figures read bounds and verdicts
    this way instead of computing them again."""
    if judged.empty or any(k not in judged.columns for k in keys):
        return pd.Series(float("nan"), index=points.index, dtype=object if col in ("verdict", "reason") else float)
    sel = judged
    for name, value in where.items():
        sel = sel[sel[name].isin(value) if isinstance(value, (list, tuple, set)) else sel[name] == value]
    if sel.duplicated(keys).any():
        raise ValueError(f"judged_at: more than one judged row per {keys} for {where}")
    found = points[keys].merge(sel[keys + [col]], on=keys, how="left")[col]
    found.index = points.index
    return found

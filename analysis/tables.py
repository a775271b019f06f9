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

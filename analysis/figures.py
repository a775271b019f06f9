"""Draw a chapter's figures from the rows of one run and its judged table, without training anything.

The protocol of a figure function is ``draw(rows, judged, out_dir, stem) -> list[Path]``: ``rows`` are the run's
stored rows (the measurements), ``judged`` its verdict table (what ``bounds.csv`` holds for that run: every bound
value, verdict and slack, as ``analysis.bounds.judge`` made them). A figure reads bounds and verdicts from
``judged`` and never judges again, so a figure cannot disagree with ``bounds.csv``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping

import pandas as pd

from analysis import plotting


def draw(figures: Mapping[str, Callable], rows: pd.DataFrame, judged: pd.DataFrame, out: Path,
         caption: str) -> list[Path]:
    """Every figure of ``figures`` from ``rows`` and ``judged`` into ``out``; each states ``caption`` at its foot."""
    written: list[Path] = []
    with plotting.provenance(caption):
        for name, draw_fn in figures.items():
            written += draw_fn(rows, judged, Path(out), name)
    return written

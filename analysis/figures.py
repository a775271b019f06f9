"""Draw a chapter's figures from the rows of one run, without training anything."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping

import pandas as pd

from analysis import plotting


def draw(figures: Mapping[str, Callable], rows: pd.DataFrame, out: Path, caption: str) -> list[Path]:
    """Every figure of ``figures`` from ``rows`` into ``out``; each figure states ``caption`` at its foot."""
    written: list[Path] = []
    with plotting.provenance(caption):
        for name, draw_fn in figures.items():
            written += draw_fn(rows, Path(out), name)
    return written

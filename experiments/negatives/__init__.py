"""The negatives chapter (how the number of negatives K enters five published bounds) as one protocol object.

Config and cells: ``experiments.negatives.config``; one cell's run: ``experiments.negatives.run``; the data:
``synthetic_data.negatives``; the theorems: ``theory.negatives``; bound checks and figures: ``analysis.negatives``.
"""
from __future__ import annotations

from pathlib import Path

from analysis import negatives as figures
from experiments.engine.chapters import Chapter
from experiments.negatives.config import Cell, Config, cells, cost
from experiments.negatives.run import run as run_cell
from theory import negatives as th

CHAPTER = Chapter(
    name="negatives",
    config=Config,
    config_file=Path(__file__).parents[1] / "configs" / "negatives.toml",
    cells=cells,
    cost=cost,
    run_cell=run_cell,
    bound_checks=figures.bound_checks,
    figures=figures.FIGURES,
    summary_figures=figures.SUMMARY_FIGURES,
    theorems=th.THEOREMS,
    data_columns=("data", "finite"),
    summary="InfoNCE with K negatives: four upper bounds and one lower bound on the mean classifier's loss",
)

__all__ = ["CHAPTER", "Cell", "Config", "cells", "cost", "run_cell"]

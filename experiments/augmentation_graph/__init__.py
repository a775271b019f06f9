"""The augmentation-graph chapter (HaoChen et al. 2021; Saunshi et al. 2022) as one object of the chapter protocol.

Config and cells: ``experiments.augmentation_graph.config``; one cell's run: ``experiments.augmentation_graph.run``;
the generator: ``synthetic_data.augmentation_graph``; the theorems: ``theory.augmentation_graph``; bound checks and
figures: ``analysis.augmentation_graph``.
"""
from __future__ import annotations

from pathlib import Path

from analysis import augmentation_graph as figures
from experiments.augmentation_graph.config import Cell, Config, cells, cost
from experiments.augmentation_graph.run import run as run_cell
from experiments.engine.chapters import Chapter
from theory import augmentation_graph as th

CHAPTER = Chapter(
    name="augmentation_graph",
    config=Config,
    config_file=Path(__file__).parents[1] / "configs" / "augmentation_graph.toml",
    cells=cells,
    cost=cost,
    run_cell=run_cell,
    bound_checks=figures.bound_checks,
    figures=figures.FIGURES,
    theorems=th.THEOREMS,
    data_columns=("data",),
    figure_studies={"overlap_sweep": "overlap", "matched_loss": "matched", "exact_vs_trained": "overlap|matched"},
    summary="augmentation graph: spectral bounds need same-class overlap; without it the encoder class decides",
)

__all__ = ["CHAPTER", "Cell", "Config", "cells", "cost", "run_cell"]

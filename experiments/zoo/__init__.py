"""The objective zoo: the seed surveys' objectives trained on data with known ground truth, one bench per kind of
data, as one object of the chapter protocol.

Config and cells: ``experiments.zoo.config``; one cell's run: ``experiments.zoo.run``; the generator:
``synthetic_data.contrastive`` (the latent-class model and its variants) and ``synthetic_data.zoo`` (grid images,
the stochastic block model of the graph bench); the theorems, collapse measures and exact block-model spectra:
``theory.zoo``; bound checks and figures: ``analysis.zoo``. docs/theory/zoo.md says what each number means.
"""
from __future__ import annotations

from pathlib import Path

from analysis import zoo as figures
from experiments.engine.chapters import Chapter
from experiments.zoo.config import Cell, Config, cells, cost
from experiments.zoo.run import run as run_cell
from theory import zoo as th

CHAPTER = Chapter(
    name="zoo",
    config=Config,
    config_file=Path(__file__).parents[1] / "configs" / "zoo.toml",
    cells=cells,
    cost=cost,
    run_cell=run_cell,
    bound_checks=figures.bound_checks,
    figures=figures.FIGURES,
    summary_figures=figures.SUMMARY_FIGURES,
    theorems=th.THEOREMS,
    data_columns=("data",),
    summary="every objective on one ground truth: probe labels needed, collapse, and Lemma 4.3 on any encoder",
)

__all__ = ["CHAPTER", "Cell", "Config", "cells", "cost", "run_cell"]

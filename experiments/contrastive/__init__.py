"""The contrastive chapter (Arora et al. 2019, latent classes) as one object of the chapter protocol.

Config and cells: ``experiments.contrastive.config``; one cell's run: ``experiments.contrastive.run``; the
generator: ``synthetic_data.contrastive``; the theorems: ``theory.contrastive``; bound checks and figures:
``analysis.contrastive``.
"""
from __future__ import annotations

from pathlib import Path

from analysis import contrastive as figures
from experiments.contrastive.config import (
    Cell,
    Config,
    cells,
    check_spec,
    cost,
    footprint,
    for_check,
)
from experiments.contrastive.run import run as run_cell
from experiments.engine.chapters import Chapter, CheckHooks
from synthetic_data import contrastive as generator
from theory import contrastive as th

CHAPTER = Chapter(
    name="contrastive",
    config=Config,
    config_file=Path(__file__).parents[1] / "configs" / "contrastive.toml",
    cells=cells,
    cost=cost,
    run_cell=run_cell,
    bound_checks=figures.bound_checks,
    figures=figures.FIGURES,
    summary_figures=figures.SUMMARY_FIGURES,
    theorems=th.THEOREMS,
    data_columns=("data",),
    footprint=footprint,
    check=CheckHooks(prepare=for_check, data_spec=check_spec, build_model=generator.build_model,
                     agreements=generator.plugin_agreements, protocol=generator.PLUGIN_PROTOCOL,
                     plugin_fields=("n_classes", "dim")),
    summary="latent classes: the mean-classifier loss is bounded by (L_un - tau) / (1 - tau)",
)

__all__ = ["CHAPTER", "Cell", "Config", "cells", "cost", "run_cell"]

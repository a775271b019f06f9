"""The self-prediction chapter (Lee, Lei, Saunshi & Zhuo 2021, conditional independence) as one object of the
chapter protocol.

Config and cells: ``experiments.self_prediction.config``; one cell's run: ``experiments.self_prediction.run``;
the generators: ``synthetic_data.self_prediction``; the theorems: ``theory.self_prediction``; bound checks:
``analysis.self_prediction``; figures: ``analysis.self_prediction_figures``.
"""
from __future__ import annotations

from pathlib import Path

from analysis import self_prediction as checks
from analysis import self_prediction_figures as figures
from experiments.engine.chapters import Chapter, CheckHooks
from experiments.self_prediction.config import check_spec, footprint, for_check, Cell, Config, PretextSpec, cells, cost
from experiments.self_prediction.run import run_cell
from synthetic_data import self_prediction as generator
from theory import self_prediction as th

CHAPTER = Chapter(
    name="self_prediction",
    config=Config,
    config_file=Path(__file__).parents[1] / "configs" / "self_prediction.toml",
    cells=cells,
    cost=cost,
    run_cell=run_cell,
    bound_checks=checks.bound_checks,
    figures=figures.FIGURES,
    summary_figures=figures.SUMMARY_FIGURES,
    theorems=th.THEOREMS,
    data_columns=("data",),
    footprint=footprint,
    check=CheckHooks(prepare=for_check, data_spec=check_spec, build_model=generator.build_model,
                     agreements=generator.plugin_agreements, protocol=generator.PLUGIN_PROTOCOL,
                     plugin_fields=("k", "d1", "d2")),
    summary="conditional independence: a linear probe on psi*(X1) needs O(k) labels, not O(d1)",
)

__all__ = ["CHAPTER", "Cell", "Config", "PretextSpec", "cells", "cost", "run_cell"]

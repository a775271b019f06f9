"""The language chapter (Saunshi, Malladi & Arora 2021, natural tasks) as one object of the chapter protocol.

Config and cells: ``experiments.language.config``; one cell's run: ``experiments.language.run``; the HMM
languages and tasks: ``synthetic_data.language``; the theorems: ``theory.language``; bound checks:
``analysis.language``; figures: ``analysis.language_figures``.
"""
from __future__ import annotations

from pathlib import Path

from analysis import language as checks
from analysis import language_figures as figures
from experiments.engine.chapters import Chapter, CheckHooks
from experiments.language.config import check_spec, footprint, for_check, Cell, Config, cells, cost
from experiments.language.run import run as run_cell
from synthetic_data import language as generator
from theory import language as th

CHAPTER = Chapter(
    name="language",
    config=Config,
    config_file=Path(__file__).parents[1] / "configs" / "language.toml",
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
                     plugin_fields=("n_states", "vocab", "context_len")),
    summary="natural tasks: an LM epsilon-close to optimal solves them linearly, within tau + sqrt(2 B^2 eps / gamma)",
)

__all__ = ["CHAPTER", "Cell", "Config", "cells", "cost", "run_cell"]

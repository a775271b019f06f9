"""Experiment names are chapter names; each maps to the experiments module that defines it.

A chapter module provides ``Config`` (the profile dataclass), ``cells(config) -> list`` of frozen cell dataclasses,
and ``run_cell(cell, cell_id, device) -> pandas.DataFrame`` (tidy rows). Its figures and bound checks live in the
analysis module of the same name.
"""
from __future__ import annotations

import importlib
from types import ModuleType

EXPERIMENTS = ("contrastive", "self_prediction", "language")


def get(name: str) -> ModuleType:
    if name not in EXPERIMENTS:
        raise ValueError(f"experiment: unknown {name!r}; known: {', '.join(EXPERIMENTS)}")
    return importlib.import_module(f"experiments.{name}")

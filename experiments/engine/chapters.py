"""One chapter protocol, and the one registry that finds chapters.

A chapter is one result of the thesis, spread over one module of the same name in each package. Here it is one
object: a :class:`Chapter` names its config dataclass and TOML profiles, its cells, their cost, ``run_cell``,
its bound checks, figures and theorems. Chapters are registered as Python entry points in the group
``sslt.chapters`` (see ``pyproject.toml``), so a package outside this repository adds a chapter by declaring
``[project.entry-points."sslt.chapters"] name = "package.module:CHAPTER"``; nothing here imports a chapter
by name.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Callable, Mapping

import pandas as pd

from experiments.engine import config as config_mod
from theory.theorems import index

GROUP = "sslt.chapters"


@dataclass(frozen=True)
class CheckHooks:
    """What ``sslt check`` needs of a chapter to point its theorems at a user's distribution."""
    prepare: Callable[[dict], dict]            # raw profile config with the user's [data] -> config on that one law
    data_spec: Callable[[Any], Any]            # built config -> the data spec that is the user's distribution
    build_model: Callable[[Any, Any], Any]     # (data spec, numpy Generator) -> the chapter's model
    agreements: Callable[[Any, Any], list]     # (model, Generator) -> plug-in declarations against estimates
    protocol: Mapping[str, str] = field(default_factory=dict)   # the plug-in protocol, name -> what it is
    # the data-spec fields a plug-in decides (set from its declarations): the only data.* values of its cells
    # that bounds.csv shows, beside family, generator, generator_args and generator_digest
    plugin_fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class Chapter:
    name: str
    config: type                                        # frozen dataclass of one profile
    config_file: Path                                   # TOML with one table per profile
    cells: Callable[[Any], list]                        # config -> frozen cells (one training run each)
    cost: Callable[[Any], float]                        # cell -> rough relative cost (costly cells start first)
    run_cell: Callable[[Any, str, str], pd.DataFrame]   # (cell, cell id, device) -> tidy rows
    bound_checks: Callable[[pd.DataFrame], pd.DataFrame]  # rows -> one row per (theorem, point)
    figures: Mapping[str, Callable]                     # name -> draw(rows, out_dir, stem) -> paths
    theorems: tuple = ()                                # theory.theorems.Theorem declarations it checks
    data_columns: tuple[str, ...] = ()                  # dotted cell fields that tell runs apart in bounds.csv
    summary: str = ""                                   # one line: the assumption and the bound
    check: CheckHooks | None = None                     # ``sslt check`` support (None: the chapter has none)
    # figure -> the config section (study) whose rows it draws, where the names differ: a name, "a|b" (rows of
    # either), or a tuple of those it needs together; a figure is drawn only while its studies are on (a figure
    # with no such section is always drawn)
    figure_studies: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict)
    # cell -> (peak bytes, seconds) estimated from the config alone, for the resource guard (None: generic)
    footprint: Callable[[Any], tuple[float, float]] | None = None

    @property
    def run_module(self) -> str:
        """The module whose source (and whatever it imports) decides a cell's numbers."""
        return self.run_cell.__module__


def studies_of(ch: "Chapter", figure: str) -> tuple[str, ...]:
    study = ch.figure_studies.get(figure, figure)
    return (study,) if isinstance(study, str) else tuple(study)


def enabled_figures(ch: "Chapter", config: dict) -> dict:
    """The figures of ``ch`` whose study is on in ``config`` (a run's resolved config, as a dict): a figure whose
    study is off is not drawn at all, rather than drawn empty or from rows that are not there."""
    out = {}
    def on(study: str) -> bool:
        section = config.get(study)
        return not (isinstance(section, dict) and section.get("enabled") is False)
    for name, fn in ch.figures.items():
        if all(any(on(s) for s in need.split("|")) for need in studies_of(ch, name)):
            out[name] = fn
    return out


class UnknownChapter(KeyError):
    """No registered chapter has this name."""


class ProtocolError(TypeError):
    """A registered object that is not a usable chapter; the message names the chapter and the field."""


def conformance(ch: Any) -> list[str]:
    """Every way ``ch`` fails the protocol (empty: it conforms)."""
    problems = []
    if not isinstance(ch, Chapter):
        return [f"is a {type(ch).__name__}, not experiments.engine.chapters.Chapter"]
    if not (dataclasses.is_dataclass(ch.config) and isinstance(ch.config, type)):
        problems.append("config: must be a dataclass type")
    elif not ch.config.__dataclass_params__.frozen:
        problems.append("config: must be a frozen dataclass")
    if not Path(ch.config_file).is_file():
        problems.append(f"config_file: {ch.config_file} does not exist")
    for name in ("cells", "cost", "run_cell", "bound_checks"):
        if not callable(getattr(ch, name)):
            problems.append(f"{name}: must be callable")
    if not ch.figures or not all(callable(f) for f in ch.figures.values()):
        problems.append("figures: must map names to drawing functions (at least one)")
    if not ch.theorems:
        problems.append("theorems: must declare at least one theorem")
    for t in ch.theorems:
        if getattr(t, "chapter", None) != ch.name:
            problems.append(f"theorems: {getattr(t, 'id', t)!r} does not belong to chapter {ch.name!r}")
    return problems


@functools.lru_cache(maxsize=1)
def _registry() -> dict[str, Chapter]:
    found: dict[str, Chapter] = {}
    for ep in entry_points(group=GROUP):
        try:
            ch = ep.load()
        except Exception as err:  # a broken third-party chapter must say which one it is
            raise ProtocolError(f"chapter {ep.name!r} ({ep.value}) cannot be loaded: {err}") from err
        problems = conformance(ch)
        if problems:
            raise ProtocolError(f"chapter {ep.name!r} ({ep.value}): " + "; ".join(problems))
        if ch.name != ep.name:
            raise ProtocolError(f"chapter {ep.name!r} ({ep.value}): its name is {ch.name!r}")
        found[ep.name] = ch
    return dict(sorted(found.items()))


def names() -> list[str]:
    return list(_registry())


def get(name: str) -> Chapter:
    reg = _registry()
    if name not in reg:
        raise UnknownChapter(f"experiment: unknown {name!r}; known: {', '.join(reg) or 'none registered'}")
    return reg[name]


def all_chapters() -> list[Chapter]:
    return list(_registry().values())


def theorem_index() -> dict:
    """id -> Theorem over every registered chapter (duplicate ids are an error)."""
    return index(t for ch in all_chapters() for t in ch.theorems)


def load_config(name: str, profile: str, overrides: list[str] = ()) -> Any:
    """A chapter's config for ``profile`` with ``--set`` overrides, validated (ConfigError naming the field)."""
    ch = get(name)
    return config_mod.load(ch.config_file, ch.config, profile, overrides)

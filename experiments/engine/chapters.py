"""One chapter protocol, and the one registry that finds chapters.

A chapter is one result of the thesis, spread over one module of the same name in each package. Here it is one
object: a :class:`Chapter` names its config dataclass and TOML profiles, its cells, their cost, ``run_cell``,
its bound checks, figures and theorems. A figure is ``draw(rows, judged, out_dir, stem) -> paths``: it gets the
run's rows and the run's judged table (its rows of ``bounds.csv``) and reads every bound value and verdict from
that table, never judging again. Chapters are registered as Python entry points in the group
``sslt.chapters`` (see ``pyproject.toml``), so a package outside this repository adds a chapter by declaring
``[project.entry-points."sslt.chapters"] name = "package.module:CHAPTER"``; nothing here imports a chapter
by name.
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
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
    """Everything the engine needs of one chapter, as data: the engine never imports a chapter by name.

    The runner plans ``cells(config)``, starts the costliest first, trains each with ``run_cell`` in a worker and
    stores its rows; ``bound_checks`` turns a run's rows into one row per (theorem, point), which the engine
    judges against ``theorems``; ``figures`` draw from stored rows only. ``run_module`` (where ``run_cell`` lives)
    is what the code fingerprint hashes, with everything it imports. ``conformance`` says what a registered
    object lacks.
    """
    name: str
    config: type                                        # frozen dataclass of one profile
    config_file: Path                                   # TOML with one table per profile
    cells: Callable[[Any], list]                        # config -> frozen cells (one training run each)
    cost: Callable[[Any], float]                        # cell -> rough relative cost (costly cells start first)
    run_cell: Callable[[Any, str, str], pd.DataFrame]   # (cell, cell id, device) -> tidy rows
    bound_checks: Callable[[pd.DataFrame], pd.DataFrame]  # rows -> one row per (theorem, point)
    figures: Mapping[str, Callable]                     # name -> draw(rows, judged, out_dir, stem) -> paths
    # One name per study: a figure is named after the config section (study) whose cells it draws and is drawn
    # by fig_<name>, and only while that study is enabled. A figure that is not one study's (a summary) is declared
    # here with the studies it needs, all of them on: each entry a section, or "a|b" (either will do).
    summary_figures: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    theorems: tuple = ()                                # theory.theorems.Theorem declarations it checks
    data_columns: tuple[str, ...] = ()                  # dotted cell fields that tell runs apart in bounds.csv
    summary: str = ""                                   # one line: the assumption and the bound
    check: CheckHooks | None = None                     # ``sslt check`` support (None: the chapter has none)
    # cell -> (peak bytes, seconds) estimated from the config alone, for the resource guard (None: generic)
    footprint: Callable[[Any], tuple[float, float]] | None = None

    @property
    def run_module(self) -> str:
        """The module whose source (and whatever it imports) decides a cell's numbers."""
        return self.run_cell.__module__


def studies_of(ch: "Chapter", figure: str) -> tuple[str, ...]:
    """What a figure needs on to be drawn: its own study, or a summary figure's declared entries ("a|b": either)."""
    return tuple(ch.summary_figures.get(figure, (figure,)))


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
    else:
        for fname, fn in ch.figures.items():
            if not _takes(fn, 4):
                problems.append(f"figures: {fname!r} must take (rows, judged, out_dir, stem)")
    if not ch.theorems:
        problems.append("theorems: must declare at least one theorem")
    for t in ch.theorems:
        if getattr(t, "chapter", None) != ch.name:
            problems.append(f"theorems: {getattr(t, 'id', t)!r} does not belong to chapter {ch.name!r}")
    if dataclasses.is_dataclass(ch.config) and isinstance(ch.config, type):
        try:
            studies = sections(ch.config)
        except NameError as err:
            problems.append(f"config: a field's type cannot be resolved: {err}")
        else:
            problems += _names(ch, studies)
    return problems


def sections(config: type) -> tuple[str, ...]:
    """The config sections of a chapter's Config: its fields that are dataclasses (data specs and studies)."""
    hints = typing.get_type_hints(config)
    return tuple(f.name for f in dataclasses.fields(config) if dataclasses.is_dataclass(hints[f.name]))


def _names(ch: Chapter, studies: tuple[str, ...]) -> list[str]:
    """One name per study: every theorem's study is a config section and its figures are FIGURES keys; every
    figure is a study's (or a declared summary of studies) and drawn by fig_<name>."""
    problems = []
    figures = ch.figures if isinstance(ch.figures, Mapping) else {}
    for t in ch.theorems:
        tid = getattr(t, "id", t)
        if getattr(t, "study", "") not in studies:
            problems.append(f"theorems: {tid!r}: study {getattr(t, 'study', '')!r} is not a config section "
                            f"({', '.join(studies)})")
        for name in getattr(t, "figures", ()):
            if name not in figures:
                problems.append(f"theorems: {tid!r}: figure {name!r} is not a FIGURES key")
    for name, draw in figures.items():
        if name in ch.summary_figures:
            drawn = ch.summary_figures[name]
            if not drawn or any(s not in studies for need in drawn for s in need.split("|")):
                problems.append(f"summary_figures: {name!r} must list config sections, got {tuple(drawn)}")
        elif name not in studies:
            problems.append(f"figures: {name!r} is neither a config section (one name per study) nor declared in "
                            "summary_figures")
        if getattr(draw, "__name__", None) != f"fig_{name}":
            problems.append(f"figures: {name!r} is drawn by {getattr(draw, '__name__', draw)!r}, not fig_{name}")
    for name in ch.summary_figures:
        if name not in figures:
            problems.append(f"summary_figures: {name!r} is not a FIGURES key")
    return problems


def _takes(fn: Callable, n: int) -> bool:
    try:
        inspect.signature(fn).bind(*([None] * n))
    except (TypeError, ValueError):
        return False
    return True


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

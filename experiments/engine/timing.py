"""Where a cell's time goes: training, probes, theory terms, the rest.

The engine's batched training times itself as ``stage("train")``; a chapter's run code wraps its probe fitting
in ``stage("probes")`` and its theory terms in ``stage("theory")``; the engine times the whole cell, so data
generation and evaluation forward passes are what is left ("other"). The
totals go into the cell's ``meta.json`` (never into ``rows.csv``, whose bytes must not depend on the clock)
and ``sslt bench`` adds them up per chapter.
"""
from __future__ import annotations

import contextlib
import resource
import sys
import time

STAGES = ("train", "probes", "theory")
_totals: dict[str, float] = {}
_open: list[str] = []


def reset() -> None:
    _totals.clear()
    _open.clear()


@contextlib.contextmanager
def stage(name: str):
    """Time the block under ``name``; a stage nested in another counts only once, in the outer one."""
    if name not in STAGES:
        raise ValueError(f"stage: unknown {name!r}; known: {', '.join(STAGES)}")
    if _open:
        yield
        return
    _open.append(name)
    t0 = time.perf_counter()
    try:
        yield
    finally:
        _totals[name] = _totals.get(name, 0.0) + time.perf_counter() - t0
        _open.pop()


def totals() -> dict[str, float]:
    return dict(_totals)


def peak_rss_mib() -> float:
    """This process's peak resident memory so far, in MiB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024

"""The resource guard: from the config alone, each cell's peak memory and the run's time, refused before any work.

A chapter may declare ``footprint(cell) -> Footprint``: the arrays a cell allocates, as bytes per config field
that sizes them, and its time, as seconds per field. The memory models are simple (array sizes from n_classes,
n_tuples, dims and seeds); tests/experiments/test_runs.py holds them against the peaks measured on the quick
profile within the factor stated there. A chapter without a footprint gets the generic guess below (every
integer field of the cell taken as the length of a float64 array as wide as its widest dimension field).

The time of a cell is the chapter's cost model times its calibration (experiments/engine/calibration.py: fitted
on measured cells, stored with their runs, code and machine in experiments/configs/calibration.json); a chapter
never measured falls back to its footprint's own seconds, or to no time estimate.

A run is refused (``ResourceError``, exit 2, naming the field of the largest term) when the ``jobs`` largest
cells together would need more memory than the machine has (or ``--max-memory``), or when the run would take
longer than ``--max-hours`` (no limit unless given; the estimate is always printed).
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

import numpy as np

from experiments.engine import calibration
from experiments.engine import config as config_mod

BASELINE = 400 * 2 ** 20     # bytes: a worker with torch, numpy, scipy, sklearn and the suite imported
MIB, GIB = 2 ** 20, 2 ** 30


class ResourceError(config_mod.ConfigError):
    """A run whose estimated memory or time exceeds the limit; the message names the config field."""


@dataclass(frozen=True)
class Footprint:
    memory: dict = field(default_factory=dict)    # config field -> bytes the arrays it sizes need
    seconds: dict | None = None                   # config field -> seconds; None: not estimated

    @property
    def peak(self) -> float:
        return BASELINE + sum(self.memory.values())

    @property
    def time(self) -> float | None:
        return None if self.seconds is None else sum(self.seconds.values())

    def largest(self, what: str = "memory") -> str:
        terms = self.memory if what == "memory" else (self.seconds or {})
        return max(terms, key=terms.get) if terms else "?"


def machine_memory() -> int:
    """Physical memory of this machine, in bytes."""
    try:
        import psutil
        return int(psutil.virtual_memory().total)
    except ImportError:  # psutil is a dependency, but the guard must not be the thing that breaks
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def _ints(obj, prefix: str = "") -> dict[str, int]:
    out = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if dataclasses.is_dataclass(v):
            out.update(_ints(v, f"{prefix}{f.name}."))
        elif isinstance(v, int) and not isinstance(v, bool):
            out[prefix + f.name] = v
        elif isinstance(v, tuple) and v and all(isinstance(x, int) and not isinstance(x, bool) for x in v):
            out[prefix + f.name] = max(v)
    return out


def generic(cell) -> Footprint:
    """Every integer field as the length of a float64 array as wide as the widest ``*dim``/``width`` field."""
    ints = _ints(cell)
    width = max([v for k, v in ints.items() if k.rsplit(".", 1)[-1].endswith(("dim", "width"))] or [64])
    return Footprint({k: 8.0 * v * width for k, v in ints.items() if k != "seeds"}, None)


@dataclass(frozen=True)
class Estimate:
    n_cells: int
    jobs: int
    peak: float                # bytes: the ``jobs`` largest cells at once
    largest_cell: float        # bytes
    memory_field: str
    seconds: float | None      # wall-clock: the cells' total time over ``jobs`` workers
    time_field: str
    time_source: str = ""      # the calibration the time comes from ("": the footprint's own seconds)

    def describe(self) -> str:
        t = "not estimated" if self.seconds is None else (f"{self.seconds:.0f} s" if self.seconds < 3600
                                                          else f"{self.seconds / 3600:.2f} h")
        how = f" (cost model x calibration on {self.time_source})" if self.time_source and self.seconds else ""
        return (f"estimated: peak memory {self.peak / MIB:.0f} MiB ({min(self.jobs, self.n_cells)} of "
                f"{self.n_cells} cells at once, the largest {self.largest_cell / MIB:.0f} MiB), time {t}{how}")


def estimate(ch, cells: list, jobs: int) -> Estimate:
    fps = [(ch.footprint or generic)(c) for c in cells]
    if not fps:
        return Estimate(0, jobs, 0.0, 0.0, "?", 0.0, "?")
    order = sorted(fps, key=lambda f: -f.peak)
    at_once = order[:max(1, min(jobs, len(order)))]
    fitted = calibration.for_chapter(ch.name)
    times = [fitted.seconds(ch.cost(c)) for c in cells] if fitted else [f.time for f in fps]
    workers = max(1, min(jobs, len(fps)))
    # spread over the workers, but never less than the slowest cell (it runs on one)
    seconds = None if any(t is None for t in times) else max(sum(times) / workers, max(times))
    i = int(np.argmax([t or 0.0 for t in times]))
    field_ = fps[i].largest("seconds") if fps[i].seconds else _time_field(cells[i], fps[i])
    return Estimate(len(fps), jobs, sum(f.peak for f in at_once), order[0].peak, order[0].largest(),
                    seconds, field_, fitted.source if fitted else "")


def _time_field(cell, fp: Footprint) -> str:
    """The field to name when a run without a time model of its own is too long: its steps, else its largest."""
    ints = _ints(cell)
    steps = [k for k in ints if k.rsplit(".", 1)[-1] == "steps"]
    return max(steps, key=ints.get) if steps else fp.largest()


def guard(ch, cells: list, jobs: int, max_memory: float | None = None, max_hours: float | None = None) -> Estimate:
    """Refuse a run that cannot fit (ResourceError naming the field), before any cell starts; else its estimate."""
    est = estimate(ch, cells, jobs)
    limit, what = (max_memory, "--max-memory") if max_memory is not None else (machine_memory(), "this machine")
    if est.peak > limit:
        raise ResourceError(f"{est.memory_field}: a cell would need about {est.largest_cell / GIB:.3g} GiB "
                            f"({est.peak / GIB:.3g} GiB for {min(jobs, est.n_cells)} at once), more than "
                            f"{what} allows ({limit / GIB:.3g} GiB); lower it, or --jobs")
    if max_hours is not None and est.seconds is not None and est.seconds > 3600 * max_hours:
        raise ResourceError(f"{est.time_field}: the run would take about {est.seconds / 3600:.3g} h, more than "
                            f"--max-hours {max_hours:g}")
    return est


def parse_memory(text: str) -> float:
    """'8G', '512M', '2.5GiB', or bytes."""
    t = str(text).strip().upper().removesuffix("IB").removesuffix("B")
    scale = {"K": 2 ** 10, "M": MIB, "G": GIB, "T": 2 ** 40}
    try:
        value = float(t[:-1]) * scale[t[-1]] if t and t[-1] in scale else float(t)
    except ValueError:
        raise config_mod.ConfigError(f"--max-memory: expected a size like 8G or 512M, got {text!r}") from None
    if not value > 0:
        raise config_mod.ConfigError(f"--max-memory: must be > 0, got {text!r}")
    return value

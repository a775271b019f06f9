"""Seconds per unit of a chapter's cost model, fitted on measured cells: how the resource guard and ``sslt bench``
turn ``Chapter.cost`` (a relative number, meant to order cells) into a time.

``experiments/configs/calibration.json`` holds the measurements, not only the fit: per chapter, the measured runs
it was fitted on (results directory, run id, profile, overrides, code fingerprint, machine, when) and per cell its
id, the cost the chapter's cost function gave it then, and the seconds its ``meta.json`` recorded. The fit is made
when the file is read, with the cost function as it is now: each stored cell is found again by id in its run's
re-planned profile and given its current cost (a cell whose id no longer exists, because a profile or a cell
field changed, keeps the cost stored with it). So a chapter that changes its cost function is recalibrated on
the same measurements without anything being re-run; ``sslt calibrate`` records new ones.

The model of one cell is ``seconds = per_cell + per_cost * cost``: a fixed start (data, evaluation, theory terms
that the cost model leaves out) and a rate. It is fitted by non-negative least squares on the relative error of
each measured run's total (its cells' summed seconds), so that a quick run of seconds and a paper run of an hour
weigh alike: a total is what the guard and ``sslt bench`` estimate, and a fit on single cells was dominated by
the many cheap ones (a chapter's cost model orders its cells, it does not time each one). A run's estimate is
meant to be within a small factor of its measured time (tests/experiments/test_calibration.py states it), not a
prediction of the wall clock of a loaded machine.
"""
from __future__ import annotations

import functools
import json
import os
import platform
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

PATH = Path(__file__).resolve().parents[1] / "configs" / "calibration.json"


@dataclass(frozen=True)
class Fit:
    chapter: str
    per_cell: float      # seconds every cell takes whatever its cost
    per_cost: float      # seconds per unit of the chapter's cost model
    n_cells: int         # measured cells it was fitted on
    source: str          # which runs, code and machine, one line

    def seconds(self, cost: float) -> float:
        return self.per_cell + self.per_cost * float(cost)


def fit(costs, seconds, groups=None) -> tuple[float, float]:
    """(per_cell, per_cost) >= 0 minimising the summed squared relative error of each group's total (a group: the
    cells of one measured run; default: every cell its own group) of per_cell + per_cost * cost."""
    c, s = np.asarray(costs, dtype=float), np.asarray(seconds, dtype=float)
    g = np.arange(len(s)) if groups is None else np.asarray(groups)
    keep = (s > 0) & np.isfinite(s) & np.isfinite(c)
    c, s, g = c[keep], s[keep], g[keep]
    if not len(s):
        raise ValueError("calibration: no measured cell with a positive time")
    scale = max(float(c.max()), 1e-300)   # conditioning: costs span ten orders of magnitude
    labels, inv = np.unique(g, return_inverse=True)
    n, cost, secs = (np.bincount(inv, w, len(labels)) for w in (np.ones_like(s), c / scale, s))
    (a, b), _ = nnls(np.stack([n / secs, cost / secs], axis=1), np.ones(len(labels)))
    return float(a), float(b / scale)


def _current_costs(ch, runs_of_chapter: list[dict]) -> dict[str, float]:
    """cell id -> its cost under the current cost function, for every cell of every stored run's profile."""
    from experiments.engine import chapters, runner
    out: dict[str, float] = {}
    for r in runs_of_chapter:
        try:
            cfg = chapters.load_config(ch.name, r["profile"], r.get("overrides", []))
        except Exception:  # a profile or field that no longer exists: the stored costs stand
            continue
        out.update({cid: float(ch.cost(cell)) for cid, cell in runner.plan(ch.name, cfg)})
    return out


def read(path: Path = PATH) -> dict:
    return json.loads(Path(path).read_text()) if Path(path).is_file() else {"chapters": {}}


@functools.lru_cache(maxsize=None)
def for_chapter(name: str, path: str = str(PATH)) -> Fit | None:
    """The chapter's fit on its stored measurements with its current cost function; None: never measured."""
    from experiments.engine import chapters
    return fit_chapter(chapters.get(name), read(Path(path))["chapters"].get(name))


def fit_chapter(ch, entry: dict | None) -> Fit | None:
    """``ch``'s fit on one stored entry of the calibration file, with ``ch.cost`` as it is."""
    if not entry or not entry.get("cells"):
        return None
    now = _current_costs(ch, entry["runs"])
    costs = [now.get(c["cell"], c["cost"]) for c in entry["cells"]]
    a, b = fit(costs, [c["seconds"] for c in entry["cells"]], [c.get("run", c["profile"]) for c in entry["cells"]])
    profiles = sorted({r["profile"] for r in entry["runs"]})
    machines = sorted({r["machine"] for r in entry["runs"]})
    return Fit(ch.name, a, b, len(costs), f"{len(costs)} measured cells of {len(entry['runs'])} runs "
                                          f"({', '.join(profiles)}) on {'; '.join(machines)}")


def machine() -> str:
    return f"{platform.node() or 'unknown host'}, {os.cpu_count()} cores, {platform.machine()}"


def measure(root: Path, experiment: str, run_ids: list[str] = ()) -> tuple[list[dict], list[dict]]:
    """(runs, cells) measured under ``root`` for one chapter: every finished cell of the named runs (default:
    every recorded run of the chapter, finished or still going) with its current cost and its seconds."""
    from experiments.engine import chapters, runner, runs, store
    ch = chapters.get(experiment)
    recorded = [r for r in runs.all_runs(root) if r.experiment == experiment and (not run_ids or r.id in run_ids)]
    out_runs, out_cells, seen = [], [], set()
    for r in recorded:
        cfg = chapters.load_config(experiment, r.profile, r.overrides)
        costs = {cid: float(ch.cost(cell)) for cid, cell in runner.plan(experiment, cfg)}
        got = []
        for key in r.cells:
            cid, _ = store.split_key(key)
            if key in seen or cid not in costs or not store.is_done(store.cell_dir(root, experiment, key)):
                continue
            meta = store.load_meta(root, experiment, key)
            seen.add(key)
            got.append({"cell": cid, "run": r.id, "profile": r.profile, "cost": costs[cid], "seconds": meta["seconds"],
                        "stages": {k: round(v, 4) for k, v in sorted(meta.get("stages", {}).items())}})
        if got:
            out_runs.append({"run": r.id, "profile": r.profile, "overrides": list(r.overrides), "code": r.code,
                             "status": r.status, "backend": r.backend, "machine": machine(),
                             "results": str(Path(root).resolve()), "cells_measured": len(got),
                             "cells_planned": len(r.cells)})
            out_cells += got
    return out_runs, out_cells


def record(roots: list[Path], experiment: str, path: Path = PATH, note: str = "") -> Fit:
    """Replace the chapter's entry in the calibration file by the cells measured under ``roots``; its fit."""
    doc = read(path)
    runs_, cells_ = [], []
    for root in roots:
        r, c = measure(Path(root), experiment)
        runs_ += r
        cells_ += c
    if not cells_:
        raise ValueError(f"calibrate: no finished {experiment} cell under {', '.join(map(str, roots))}")
    doc.setdefault("chapters", {})[experiment] = {"note": note, "runs": runs_, "cells": cells_}
    doc["about"] = ("Measured cell seconds (meta.json) per chapter, with the runs, code and machine they came "
                    "from; experiments/engine/calibration.py fits seconds = per_cell + per_cost * cost on them.")
    doc["chapters"] = dict(sorted(doc["chapters"].items()))
    Path(path).write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")
    for_chapter.cache_clear()
    return for_chapter(experiment, str(path))

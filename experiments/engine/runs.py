"""Runs: one ``sslt run`` of one experiment, recorded so that every number can name what made it.

``<root>/runs/<run id>.json`` records the experiment, profile, overrides, the resolved config, the code
fingerprint, the keys of its cells, when it started and finished, how many cells it ran, reused or found
stale, and its verdict counts. It is written atomically when the run starts (status "running") and again
when it ends ("complete", or "failed" with the error that stopped it: a run never stays "running" because
its process raised). Tables and figures are built from the cells of one run per experiment: by
default the latest complete run of each experiment in that results directory.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from experiments.engine import store

RUNNING, COMPLETE, FAILED = "running", "complete", "failed"
INTERRUPTED = "interrupted"   # Ctrl-C or SIGINT: the finished cells are kept, the same command resumes


class RunNotFound(KeyError):
    """No recorded run matches the id asked for."""


@dataclass
class Run:
    id: str
    experiment: str
    profile: str
    overrides: list[str]
    config: dict
    code: str
    versions: dict
    cells: list[str]                     # store keys "<cell id>-<code>", in plan order
    started: str
    finished: str = ""
    status: str = RUNNING
    n_run: int = 0
    n_reused: int = 0
    n_stale: int = 0
    device: str = "cpu"
    backend: str = "local"
    verdicts: dict = field(default_factory=dict)
    error: str = ""                      # a failed run: what stopped it, one line

    def describe(self) -> str:
        """One line a figure or a table carries: which run, which profile and overrides, which code."""
        over = ", ".join(self.overrides) if self.overrides else "no overrides"
        return f"run {self.id} · {self.experiment} · profile {self.profile} · {over} · code {self.code}"


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_id(experiment: str, started: str) -> str:
    """e.g. 20261201-091500.123456-contrastive: sorts by time, reads as a time, unique per experiment."""
    day, clock = started.rstrip("Z").split("T")
    return f"{day.replace('-', '')}-{clock.replace(':', '')}-{experiment}"


def runs_dir(root: Path) -> Path:
    return Path(root) / "runs"


def save(root: Path, run: Run) -> Path:
    path = runs_dir(root) / f"{run.id}.json"
    store.atomic_write_text(path, json.dumps(asdict(run), indent=1, sort_keys=True) + "\n")
    return path


def all_runs(root: Path) -> list[Run]:
    """Every recorded run under ``root``, oldest first."""
    d = runs_dir(root)
    if not d.is_dir():
        return []
    out = [Run(**json.loads(p.read_text())) for p in sorted(d.glob("*.json"))]
    return sorted(out, key=lambda r: (r.started, r.id))


def latest(root: Path, experiment: str, profile: str | None = None) -> Run | None:
    """The latest complete run of ``experiment`` (of that ``profile``, where one is named), or None."""
    done = [r for r in all_runs(root) if r.experiment == experiment and r.status == COMPLETE
            and (profile is None or r.profile == profile)]
    return done[-1] if done else None


def find(root: Path, run_id: str) -> Run:
    """The run with this id, or the one run whose id starts with it; a clear error otherwise."""
    runs = all_runs(root)
    exact = [r for r in runs if r.id == run_id]
    match = exact or [r for r in runs if r.id.startswith(run_id)]
    if len(match) == 1:
        return match[0]
    if not match:
        raise RunNotFound(f"run: no run {run_id!r} under {root} (see `sslt runs --out {root}`)")
    raise RunNotFound(f"run: {run_id!r} matches {len(match)} runs; give more of the id")

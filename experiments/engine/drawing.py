"""`sslt figures` over worker processes: one task per figure of each selected run.

Drawing is the serial tail of `make figures` and `make quick` (each figure is laid out and rendered twice, PNG and
PDF, in pure-Python matplotlib), so with ``jobs > 1`` the figures are spread over processes, in the serial
order. A worker loads a run's rows and judged table once and draws from them exactly what the serial
path draws: a figure function reads only its arguments, so the bytes do not depend on which process drew it or
after which other figure (tests/experiments/test_drawing.py compares the PNGs of both paths). ``jobs = 1`` draws
in this process, where the tests' spies on ``plotting.save`` see every figure.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from pathlib import Path

from experiments.engine import chapters, runs, store


def _out(fig_root: Path, run: runs.Run, by_run: bool) -> Path:
    return fig_root / "runs" / run.id if by_run else fig_root / run.experiment


def _inputs(root: Path, run: runs.Run):
    """(run, its rows, its judged table): the run's rows of bounds.csv, so figures read verdicts, never re-judge."""
    from experiments.engine import runner
    return run, store.load_rows(root, run.experiment, run.cells), runner.run_table(root, run)


@lru_cache(maxsize=8)   # a worker draws several figures of one run
def _load_once(root: str, run_id: str):
    return _inputs(Path(root), runs.find(Path(root), run_id))


def _draw(run, rows, judged, names, out) -> list[Path]:
    from analysis import figures as figs
    enabled = chapters.enabled_figures(chapters.get(run.experiment), run.config)
    return figs.draw({n: enabled[n] for n in names}, rows, judged, Path(out), run.describe())


def _draw_task(root: str, run_id: str, names: tuple[str, ...], out: str) -> list[str]:
    import torch
    torch.set_num_threads(1)   # a drawing worker computes nothing in torch: no pool to oversubscribe the cores
    return [str(p) for p in _draw(*_load_once(root, run_id), names, out)]


def _context():
    # fork keeps the parent's imports (seconds of torch, scipy and matplotlib per worker); the parent has run no
    # torch op nor drawn anything, so there is no thread or open figure to inherit. spawn where fork is absent.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods and os.name == "posix" else "spawn")


def draw_runs(root: Path, selected: list[runs.Run], fig_root: Path, by_run: bool, jobs: int = 1) -> list[Path]:
    """Every enabled figure of each run of ``selected`` into ``fig_root``, then each run's RUN stamp (written
    last, so a stamp never names figures that are not all there); the paths in the serial order."""
    for r in selected:   # a stamp left by an earlier drawing must not vouch for figures half redrawn
        (_out(fig_root, r, by_run) / "RUN").unlink(missing_ok=True)
    names = {r.id: tuple(chapters.enabled_figures(chapters.get(r.experiment), r.config)) for r in selected}
    tasks = [(r, (n,)) for r in selected for n in names[r.id]]
    if jobs <= 1 or len(tasks) <= 1:
        written = []
        for r in selected:
            written += _draw(*_inputs(root, r), names[r.id], _out(fig_root, r, by_run))
            store.atomic_write_text(_out(fig_root, r, by_run) / "RUN", r.describe() + "\n")
        return written
    with ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=_context()) as pool:
        futures = [pool.submit(_draw_task, str(root), r.id, task, str(_out(fig_root, r, by_run)))
                   for r, task in tasks]
        try:
            written = [Path(p) for f in futures for p in f.result()]
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)   # the first failure stops the drawing, as serially
            raise
    for r in selected:
        store.atomic_write_text(_out(fig_root, r, by_run) / "RUN", r.describe() + "\n")
    return written

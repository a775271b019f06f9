"""Where a paper-profile run stands, whether it finished or not: per chapter, the cells planned and finished, the
wall time (minus the pauses listed in PAUSES, if given), the finished cells' summed seconds, and the verdict counts
of the finished cells (a partial table for a run still going, said so).

    python docs/benchmark/paper_progress.py RESULTS [--pauses log/pauses.log]

Run it with the checkout that made the run (the cells are found by its code fingerprint). ``PAUSES`` holds lines
``stop <epoch s> ...`` / ``cont <epoch s> ...``: the times the run was held (SIGSTOP) while something else was
timed on the same machine.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from datetime import datetime, timezone
from pathlib import Path

from experiments.engine import runner, runs, store


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).replace(tzinfo=timezone.utc).timestamp()


def paused_between(pauses: list[tuple[str, float]], t0: float, t1: float) -> float:
    held, since = 0.0, None
    for kind, t in pauses:
        if kind == "stop":
            since = t
        elif kind == "cont" and since is not None:
            held += max(0.0, min(t, t1) - max(since, t0))
            since = None
    if since is not None:
        held += max(0.0, t1 - max(since, t0))
    return held


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("results", type=Path)
    ap.add_argument("--pauses", type=Path)
    args = ap.parse_args()
    pauses = []
    if args.pauses and args.pauses.is_file():
        pauses = [(w[0], float(w[1])) for w in (line.split() for line in args.pauses.read_text().splitlines()) if w]
    print(f"{'chapter':<20}{'status':<10}{'cells':>12}{'wall min':>10}{'cell s':>10}  verdicts (finished cells)")
    for run in sorted(runs.all_runs(args.results), key=lambda r: r.started):
        if run.profile != "paper":
            continue
        done = set(store.finished(args.results, run.experiment))
        have = [k for k in run.cells if k in done]
        metas = [json.loads((store.cell_dir(args.results, run.experiment, k) / "meta.json").read_text())
                 for k in have]
        t0 = _epoch(run.started)
        t1 = _epoch(run.finished) if run.finished else max((_epoch(m["finished"]) for m in metas), default=t0)
        wall = (t1 - t0 - paused_between(pauses, t0, t1)) / 60
        table = runner.run_table(args.results, dataclasses.replace(run, cells=have)) if have else None
        counts = table["verdict"].value_counts().to_dict() if table is not None and len(table) else {}
        part = "" if len(have) == len(run.cells) else " (partial)"
        print(f"{run.experiment:<20}{run.status:<10}{len(have):>5} of {len(run.cells):<4}{wall:>10.1f}"
              f"{sum(m['seconds'] for m in metas):>10.0f}  "
              + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + part)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

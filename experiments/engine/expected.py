"""Reference answers, kept as sbibm keeps them: ``experiments/configs/<chapter>.expected.json``.

Each file holds what the chapter's quick profile gives: per (theorem, form), the number of points and of each
verdict, and the median slack (``bound / measured``; for a reference, the median ratio ``reference /
measured``) to 3 significant digits, computed as the printed summary computes it (``analysis.bounds``). The
test suite asserts the files against the quick run it builds anyway; ``sslt expected`` makes a fresh quick run
and shows the diff, and ``sslt expected --write`` rewrites the files, so that a changed count is a diff a
reviewer reads rather than a number that drifts unseen. Nothing here names a chapter.
"""
from __future__ import annotations

import difflib
import json
import sys
import tempfile
from pathlib import Path

import pandas as pd

from analysis.bounds import _median_slack
from experiments.engine import chapters, store
from theory.theorems import IDENTITY, REFERENCE
from theory.verdict import ABOVE, BELOW, BROKEN, EXACT, HOLDS, NOT_MET, UNDETERMINED, VACUOUS, VIOLATED

PROFILE = "quick"
# the file's count names -> the verdicts of theory.verdict they count
BOUND_COUNTS = {"holds": HOLDS, "violated": VIOLATED, "vacuous": VACUOUS, "not met": NOT_MET,
                "undetermined": UNDETERMINED}
REFERENCE_COUNTS = {"above": ABOVE, "below": BELOW, "not met": NOT_MET, "undetermined": UNDETERMINED}
IDENTITY_COUNTS = {"exact": EXACT, "broken": BROKEN, "not met": NOT_MET, "undetermined": UNDETERMINED}
COUNTS_OF = {REFERENCE: REFERENCE_COUNTS, IDENTITY: IDENTITY_COUNTS}


def path(name: str) -> Path:
    """Where a chapter's reference answers live: beside its TOML profiles."""
    return Path(chapters.get(name).config_file).with_name(f"{name}.expected.json")


def answers(name: str, table: pd.DataFrame) -> dict:
    """The reference answers of a chapter from the judged table of one of its quick runs."""
    rows = []
    table = table[table["experiment"] == name] if "experiment" in table.columns else table
    for (theorem, form), g in table.groupby(["theorem", "form"], sort=True):
        kind = str(g["kind"].iloc[0])
        names = COUNTS_OF.get(kind, BOUND_COUNTS)
        seen = g["verdict"].value_counts()
        stray = sorted(set(seen.index) - set(names.values()))
        if stray:
            raise ValueError(f"{theorem} ({form}): verdicts {stray} are not counted for a {kind}")
        slack = _median_slack(g)
        rows.append({"theorem": str(theorem), "kind": kind, "form": str(form), "points": int(len(g)),
                     "counts": {k: int(seen.get(v, 0)) for k, v in names.items()},
                     "median_slack": None if slack == "n/a" else slack})
    return {"chapter": name, "profile": PROFILE, "rows": rows}


def dumps(ans: dict) -> str:
    """JSON with one row per line, so that a changed count is a one-line diff."""
    head = json.dumps({k: v for k, v in ans.items() if k != "rows"})[:-1]
    rows = ",\n".join("  " + json.dumps(r) for r in ans["rows"])
    return f"{head},\n \"rows\": [\n{rows}\n ]}}\n"


def load(name: str) -> dict | None:
    p = path(name)
    return json.loads(p.read_text()) if p.is_file() else None


def quick_table(name: str, root: Path, jobs: int = 1) -> pd.DataFrame:
    """The judged table of a fresh quick run of ``name`` under ``root``."""
    from experiments.engine import runner
    cfg = chapters.load_config(name, PROFILE)
    return runner.run_sweep(name, cfg, root, jobs, "cpu", PROFILE, []).table


def main(names: list[str], write: bool = False, jobs: int = 1) -> int:
    """Compare (or, with ``write``, rewrite) every named chapter's file against a fresh quick run in a temporary
    directory. Returns 1 if any file differs (or is missing) and was not rewritten."""
    differ = False
    with tempfile.TemporaryDirectory(prefix="sslt-expected-") as tmp:
        for name in names:
            new = dumps(answers(name, quick_table(name, Path(tmp), jobs)))
            p = path(name)
            old = p.read_text() if p.is_file() else ""
            if write:
                if new != old:
                    store.atomic_write_text(p, new)
                print(f"{name}: {'wrote' if new != old else 'unchanged'} {p}")
            elif new != old:
                differ = True
                sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), new.splitlines(True),
                                                           f"{p} (committed)", f"{p} (this code, quick run)"))
            else:
                print(f"{name}: {p} matches the quick run")
    if differ:
        print("reference answers differ: review the diff, then `sslt expected --write` to accept it", file=sys.stderr)
    return 1 if differ else 0

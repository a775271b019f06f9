"""The result store: one directory per (cell, code), written atomically, ``DONE`` last.

``<root>/<experiment>/<cell id>-<code>/`` holds ``config.json`` (the cell), ``rows.csv`` (its tidy rows),
``meta.json`` (the code fingerprint that made it, versions, timings) and ``DONE``. The cell id hashes the
cell's config and seeds its random streams; ``code`` is the fingerprint of the source its numbers depend on
(experiments.engine.fingerprint). A finished cell made by other code is therefore a different directory: it is
run again, and the older directory stays, so the run that used it can still be drawn.

A directory without ``DONE`` is unfinished, whatever else it holds, and is simply run again: each file is
replaced whole, never appended to, so a sweep killed at any point resumes with nothing lost or duplicated.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pandas as pd

RESULTS = Path("results")  # the default results directory
FLOAT_FORMAT = "%.17g"  # the shortest printf format that round-trips every float64
# pandas < 3 parses floats with a fast, slightly lossy routine unless asked to round-trip; pandas 3 round-trips
# by default and deprecates the option.
_READ = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}


def atomic_write_text(path: Path, text: str) -> None:
    """Write to a temp file in the same directory, fsync, then ``os.replace``: readers see old or new, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def csv_text(df: pd.DataFrame) -> str:
    """CSV with floats as %.17g so that reading them back gives the same bits."""
    return df.to_csv(index=False, float_format=FLOAT_FORMAT, lineterminator="\n")


def read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, **_READ)


def cell_key(cell_id: str, code: str) -> str:
    return f"{cell_id}-{code}"


def split_key(key: str) -> tuple[str, str]:
    cell_id, _, code = key.partition("-")
    return cell_id, code


def cell_dir(root: Path, experiment: str, key: str) -> Path:
    return Path(root) / experiment / key


def is_done(directory: Path) -> bool:
    return (directory / "DONE").exists()


def write_cell(directory: Path, config_json: str, rows: pd.DataFrame, meta: dict | None = None) -> None:
    """Store a finished cell; ``DONE`` is written after the data, so its presence means the data is whole."""
    for stale in directory.glob(".*.tmp") if directory.is_dir() else ():
        stale.unlink(missing_ok=True)  # left by a run killed mid-write
    atomic_write_text(directory / "config.json", config_json + "\n")
    atomic_write_text(directory / "rows.csv", csv_text(rows))
    atomic_write_text(directory / "meta.json", json.dumps(meta or {}, sort_keys=True, indent=1) + "\n")
    atomic_write_text(directory / "DONE", "")


def finished(root: Path, experiment: str) -> list[str]:
    """Keys of every finished cell directory of an experiment, sorted."""
    base = Path(root) / experiment
    if not base.is_dir():
        return []
    return sorted(d.name for d in base.iterdir() if is_done(d))


def load_rows(root: Path, experiment: str, keys: list[str] | None = None) -> pd.DataFrame:
    """The rows of the named finished cells (default: all), with a ``cell`` column (the cell id); empty frame
    if none. A named cell that is missing or unfinished is an error: a run's table must not silently shrink."""
    keys = finished(root, experiment) if keys is None else keys
    frames = []
    for key in keys:
        d = cell_dir(root, experiment, key)
        if not is_done(d):
            raise FileNotFoundError(f"cell {key} of {experiment} is missing or unfinished under {root}")
        df = read_csv(d / "rows.csv")
        df.insert(0, "cell", split_key(key)[0])
        frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def load_config(root: Path, experiment: str, key: str) -> dict:
    return json.loads((cell_dir(root, experiment, key) / "config.json").read_text())


def load_meta(root: Path, experiment: str, key: str) -> dict:
    p = cell_dir(root, experiment, key) / "meta.json"
    return json.loads(p.read_text()) if p.exists() else {}

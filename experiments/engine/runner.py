"""Run a sweep as one recorded run: the cells of a config that this code has not finished yet, in parallel
(local processes, or a dask cluster), each written atomically; then the run's record and verdict table."""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import joblib
import pandas as pd
import torch
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from analysis import bounds as bound_table
from experiments.engine import chapters, runs, store, timing
from experiments.engine import config as config_mod
from experiments.engine.fingerprint import fingerprint
from theory.theorems import index

BACKENDS = ("local", "dask")


@dataclass(frozen=True)
class SweepReport:
    experiment: str
    run: runs.Run
    out: Path
    table: pd.DataFrame      # the run's judged bound checks (its verdict counts come from it)

    @property
    def n_cells(self) -> int:
        return len(self.run.cells)


class WorkerCodeMismatch(RuntimeError):
    """A worker runs other code than the process that planned the run (a cluster with a stale checkout)."""


def _quiet() -> bool:
    return bool(os.environ.get("CI")) or not sys.stdout.isatty()


def run_one(experiment: str, cell, cell_id: str, root: str, device: str, code: str) -> str:
    """Train and evaluate one cell in this process with one torch thread and one BLAS thread, then store it with
    its provenance. The one place thread counts are set: parallelism is across cells, so one thread each keeps
    --jobs N workers from oversubscribing the cores and the numbers independent of --jobs and of the machine
    (numpy's BLAS, used by the theory terms and probes, would otherwise start its own threads in every worker)."""
    torch.set_num_threads(1)
    ch = chapters.get(experiment)
    fp = fingerprint(ch.run_module)
    if fp["code"] != code:
        raise WorkerCodeMismatch(f"{experiment}: this worker's code is {fp['code']}, the run's is {code}; "
                                 "every worker must run the same checkout")
    timing.reset()
    t0 = time.perf_counter()
    with threadpool_limits(limits=1):
        rows = ch.run_cell(cell, cell_id, device)
    seconds = time.perf_counter() - t0
    meta = {"code": code, "cell": cell_id, "modules": fp["modules"], "torch": fp["torch"], "numpy": fp["numpy"],
            "device": device, "seconds": seconds, "stages": timing.totals(), "peak_rss_mib": timing.peak_rss_mib(),
            "finished": runs.now()}
    key = store.cell_key(cell_id, code)
    store.write_cell(store.cell_dir(root, experiment, key), config_mod.to_json(cell), rows, meta)
    return key


def plan(experiment: str, cfg) -> list[tuple[str, object]]:
    """(cell id, cell) for every cell of the config, without duplicates, in a stable order."""
    seen: dict[str, object] = {}
    for cell in chapters.get(experiment).cells(cfg):
        seen.setdefault(config_mod.config_hash(cell), cell)
    return list(seen.items())


def _execute(experiment, todo, root: Path, jobs: int, device: str, code: str, backend: str,
             scheduler: str | None, bar) -> None:
    args = [(experiment, cell, cid, str(root), device, code) for cid, cell in todo]
    if backend == "dask":
        from dask.distributed import Client, LocalCluster, as_completed  # optional at import: only this backend
        import dask
        # dask starts its workers with MALLOC_TRIM_THRESHOLD_=65536, which also turns off glibc's dynamic mmap
        # threshold: every tensor over 128 KiB is then mmapped and faulted in afresh. On the language default
        # that was 82 s of system time and 1.8x the wall time of --backend local (docs/benchmark.md, Dask).
        environ = {k: v for k, v in dask.config.get("distributed.nanny.pre-spawn-environ", {}).items()
                   if k != "MALLOC_TRIM_THRESHOLD_"}
        with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
            cluster = None if scheduler else LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                                                          dashboard_address=None)
        with Client(scheduler or cluster) as client:
            futures = [client.submit(run_one, *a, pure=False) for a in args]
            for fut in as_completed(futures):
                fut.result()
                bar.update()
        if cluster is not None:
            cluster.close()
    elif jobs == 1 or len(todo) == 1:
        for a in args:
            run_one(*a)
            bar.update()
    else:
        parallel = joblib.Parallel(n_jobs=jobs, return_as="generator_unordered")
        for _ in parallel(joblib.delayed(run_one)(*a) for a in args):
            bar.update()


def run_sweep(experiment: str, cfg, out: Path | None = None, jobs: int = 1, device: str = "cpu",
              profile: str = "", overrides: list[str] = (), backend: str = "local",
              scheduler: str | None = None) -> SweepReport:
    """Run one experiment's sweep as one recorded run and return it with its judged verdict table.

    Only cells without a finished result for this code fingerprint are trained; the others are reused, so a
    killed sweep resumes and a finished one does no work. The run record is saved before any cell starts (an
    interrupted run stays visible as incomplete) and again when every cell is done, with its verdict counts. The
    table returned is the run's one judged table: ``sslt run`` writes it and ``sslt check`` reads it, so nothing
    judges the same cells twice.
    """
    root = Path(out) if out is not None else store.RESULTS
    if backend == "dask":
        root = root.resolve()  # every worker must write to the same (shared) directory
    ch = chapters.get(experiment)
    fp = fingerprint(ch.run_module)
    code = fp["code"]
    cells = plan(experiment, cfg)
    finished = set(store.finished(root, experiment))
    done_ids = {store.split_key(k)[0] for k in finished}
    todo = [(cid, cell) for cid, cell in cells if store.cell_key(cid, code) not in finished]
    started = runs.now()
    run = runs.Run(id=runs.new_id(experiment, started), experiment=experiment, profile=profile,
                   overrides=list(overrides), config=_as_dict(cfg), code=code,
                   versions={"torch": fp["torch"], "numpy": fp["numpy"]},
                   cells=[store.cell_key(cid, code) for cid, _ in cells], started=started, device=device,
                   backend=backend, n_run=len(todo), n_reused=len(cells) - len(todo),
                   n_stale=sum(cid in done_ids for cid, _ in todo))
    runs.save(root, run)
    # The costliest cells first, so that the parallel workers finish together.
    todo.sort(key=lambda item: -ch.cost(item[1]))
    bar = tqdm(total=len(cells), initial=len(cells) - len(todo), desc=experiment, unit="cell", disable=_quiet())
    try:
        if todo:
            _execute(experiment, todo, root, jobs, device, code, backend, scheduler, bar)
        table = run_table(root, run)
    except BaseException as err:  # the record says what stopped the run, never "running" forever
        run.finished = runs.now()
        if isinstance(err, KeyboardInterrupt):
            have = len(set(run.cells) & set(store.finished(root, experiment)))
            run.status = runs.INTERRUPTED
            run.error = f"interrupted with {have} of {len(run.cells)} cells finished; the same command resumes"
        else:
            run.status = runs.FAILED
            run.error = f"{type(err).__name__}: {(str(err).strip().splitlines() or [''])[0]}"
        runs.save(root, run)
        raise
    finally:
        bar.close()
    run.verdicts = bound_table.verdict_counts(table)
    run.finished, run.status = runs.now(), runs.COMPLETE
    runs.save(root, run)
    return SweepReport(experiment, run, root, table)


def _as_dict(cfg) -> dict:
    return json.loads(config_mod.to_json(cfg))


def _flatten(prefix: str, value) -> dict:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out.update(_flatten(f"{prefix}.{k}", v))
        return out
    if isinstance(value, list):
        return {prefix: ",".join(map(str, value))}
    return {prefix: value}


PLUGIN_KEYS = ("family", "generator", "generator_args", "generator_digest")


def _declared(ch, section):
    """A plug-in's data section holds the profile's defaults for every field the plug-in does not decide; only
    the fields it declares, and which code it is (module:Class and its source hash), describe its data."""
    if not (isinstance(section, dict) and section.get("generator")):
        return section
    keep = PLUGIN_KEYS + tuple(ch.check.plugin_fields if ch.check else ())
    return {k: v for k, v in section.items() if k in keep}


def data_columns(root: Path, run: runs.Run) -> pd.DataFrame:
    """cell id -> the chapter's declared config sections, flattened to ``section.field`` columns."""
    ch = chapters.get(run.experiment)
    recs = []
    for key in run.cells:
        cfg = store.load_config(root, run.experiment, key)
        rec = {"cell": store.split_key(key)[0]}
        for section in ch.data_columns:
            rec.update(_flatten(section, _declared(ch, cfg.get(section, {}))))
        recs.append(rec)
    return pd.DataFrame(recs)


def run_table(root: Path, run: runs.Run) -> pd.DataFrame:
    """The judged bound checks of one run: every row names the run, its theorem and the data it came from."""
    ch = chapters.get(run.experiment)
    rows = store.load_rows(root, run.experiment, run.cells)
    checks = ch.bound_checks(rows) if len(rows) else pd.DataFrame()
    if checks.empty:
        return pd.DataFrame(columns=bound_table.LEAD_COLUMNS)
    checks = checks.copy()
    if ch.data_columns and "cell" in checks.columns:
        checks = checks.merge(data_columns(root, run), on="cell", how="left", validate="many_to_one")
    checks.insert(0, "experiment", run.experiment)
    checks.insert(0, "run", run.id)
    return bound_table.judge(checks, index(ch.theorems))


def selected_runs(root: Path, experiments: list[str], run_ids: list[str] = ()) -> list[runs.Run]:
    """The runs to show: the named ones, else the latest complete run of each experiment that has one."""
    if run_ids:
        return [runs.find(root, r) for r in run_ids]
    return [r for r in (runs.latest(root, e) for e in experiments) if r is not None]


def write_bounds(root: Path, experiments: list[str], judged: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """``bounds.csv`` from the latest complete run of each experiment under ``root`` (and nothing else).
    ``judged`` maps run ids to tables already built (by ``run_sweep``), which are not judged again."""
    judged = judged or {}
    tables = [judged[r.id] if r.id in judged else run_table(root, r) for r in selected_runs(root, experiments)]
    tables = [t for t in tables if len(t)]
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=bound_table.LEAD_COLUMNS)
    store.atomic_write_text(root / "bounds.csv", store.csv_text(table))
    return table

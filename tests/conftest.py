import fcntl
import os

# Two pytest-xdist workers share two cores: a BLAS or OpenMP pool of its own in each (numpy's, scipy's, sklearn's)
# oversubscribes them, and their spinning threads made a 0.6 s fixture take 31 s in `make test`. Set before any
# of those libraries starts its pool; `_one_thread` below caps the pools already started.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import settings  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: intra-op threads only add synchronisation (badly so on a loaded machine), and a sweep
    worker runs with one thread too."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        yield
    torch.set_num_threads(n)


# CI must be reproducible: there, hypothesis draws the same examples every run (locally it keeps exploring).
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


def cell_bytes(root, experiment) -> dict[str, bytes]:
    """cell id -> the bytes of its rows.csv, for every finished cell of an experiment under ``root``."""
    from experiments.engine import store
    return {store.split_key(k)[0]: (store.cell_dir(root, experiment, k) / "rows.csv").read_bytes()
            for k in store.finished(root, experiment)}


@pytest.fixture(scope="session")
def quick_results(tmp_path_factory):
    """One quick-profile run per chapter, made once per test session and shared (read-only) by every test that
    needs a real run: ``quick_results(name)`` returns its results directory (run with --jobs 2). Under
    pytest-xdist (``make test`` runs two workers) the workers share one directory per chapter, made by whichever
    asks first while the other waits on a file lock: the run is made once, not once per worker."""
    from experiments.engine import cli
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    made: dict[str, object] = {}

    def get(name: str):
        if name not in made:
            out = shared / f"quick_{name}"
            with open(shared / f"quick_{name}.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                if not (out / ".complete").exists():
                    assert cli.main(["run", name, "--profile", "quick", "--out", str(out), "--jobs", "2"]) == 0
                    (out / ".complete").touch()
            made[name] = out
        return made[name]
    return get


def _has_data(ax) -> bool:
    import numpy as np
    for line in ax.get_lines():
        if np.size(line.get_xdata()) and np.isfinite(np.asarray(line.get_ydata(), dtype=float)).any():
            return True
    for coll in ax.collections:
        offsets = coll.get_offsets() if hasattr(coll, "get_offsets") else []
        if np.size(offsets) or (hasattr(coll, "get_paths") and len(coll.get_paths())) or \
                (hasattr(coll, "get_segments") and len(coll.get_segments())):
            return True
    if any(p.get_height() != 0 for p in ax.patches if hasattr(p, "get_height")) or ax.images:
        return True
    return any(t.get_text().strip() for t in ax.texts if t.get_gid() != "message")  # a panel of text


def _says_why_empty(ax) -> bool:
    return any(t.get_gid() == "message" and t.get_text().strip() for t in ax.texts)


def _facts(fig) -> dict:
    """What the figure tests ask of one figure, read as saved (caption added, laid out), before it is freed."""
    from analysis import figure_lint as fl
    axes = [a for a in fig.axes if a.get_visible() and a.axison]
    return {"layout": fl.problems(fig), "trivial": fl.bounds_without_trivial(fig),
            "bound_panels": fl.panels_with_bounds(fig),
            "panels": [(_has_data(a), _says_why_empty(a)) for a in axes],
            "legends": [[t.get_text() for t in a.get_legend().get_texts()] for a in axes
                        if a.get_legend() is not None],
            "caption": [t.get_text() for t in fig.texts if t.get_gid() == "provenance"]}


@pytest.fixture(scope="session")
def quick_figures(quick_results, tmp_path_factory):
    """Every figure of a chapter's shared quick run, drawn once per test session by `sslt figures` (one process,
    as `--jobs 1` draws) and shared like ``quick_results``: ``quick_figures(name)`` returns (figures root, facts,
    handed), with facts[stem] what ``_facts`` read from the figure as saved and ``handed`` the judged tables
    `sslt figures` passed to the figure functions. Drawing is the costliest part of the figure tests; the
    layout lint, the data-and-caption check and the atlas all read this one drawing."""
    import pickle

    from analysis import figures as figs
    from analysis import plotting
    from experiments.engine import cli
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    made: dict[str, tuple] = {}

    def get(name: str):
        if name not in made:
            root, out, facts_file = quick_results(name), shared / "quick_figures", shared / f"figures_{name}.pkl"
            with open(shared / f"figures_{name}.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                if not facts_file.exists():
                    facts, handed = {}, []
                    real_save, real_draw = plotting.save, figs.draw

                    def save_spy(fig, directory, stem):
                        paths = real_save(fig, directory, stem)
                        facts[stem] = _facts(fig)
                        return paths

                    def draw_spy(figures, rows, judged, out, caption):
                        handed.append(judged)
                        return real_draw(figures, rows, judged, out, caption)
                    plotting.save, figs.draw = save_spy, draw_spy
                    try:
                        assert cli.main(["figures", name, "--out", str(root), "--figures", str(out)]) == 0
                    finally:
                        plotting.save, figs.draw = real_save, real_draw
                    tmp = facts_file.with_suffix(".tmp")
                    tmp.write_bytes(pickle.dumps((facts, handed)))
                    tmp.rename(facts_file)
            made[name] = (out, *pickle.loads(facts_file.read_bytes()))
        return made[name]
    return get

import fcntl
import os

import pytest
import torch
from hypothesis import settings


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: intra-op threads only add synchronisation (badly so on a loaded machine), and a sweep
    worker runs with one thread too."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
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

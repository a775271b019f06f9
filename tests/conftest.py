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
    needs a real run: ``quick_results(name)`` returns its results directory (run with --jobs 2)."""
    from experiments.engine import cli
    made: dict[str, object] = {}

    def get(name: str):
        if name not in made:
            out = tmp_path_factory.mktemp(f"quick_{name}")
            assert cli.main(["run", name, "--profile", "quick", "--out", str(out), "--jobs", "2"]) == 0
            made[name] = out
        return made[name]
    return get

import numpy as np
import pandas as pd

from experiments.engine import store


def test_csv_floats_round_trip_exactly(tmp_path):
    rng = np.random.default_rng(0)
    vals = np.concatenate([rng.standard_normal(200) * 10.0 ** rng.integers(-300, 300, 200),
                           [0.1, 1 / 3, np.nextafter(1.0, 2.0), 5e-324, np.inf, -0.0]])
    df = pd.DataFrame({"metric": "x", "value": vals})
    d = tmp_path / "exp" / "cell"
    store.write_cell(d, "{}", df)
    back = store.load_rows(tmp_path, "exp")
    assert np.array_equal(back["value"].to_numpy(), vals)


def test_done_is_written_last_and_unfinished_cells_are_ignored(tmp_path):
    d = store.cell_dir(tmp_path, "exp", "abc")
    d.mkdir(parents=True)
    (d / "rows.csv").write_text("metric,value\nx,1\n")
    assert store.load_rows(tmp_path, "exp").empty, "a cell without DONE is unfinished"
    (d / ".rows.csv.123.tmp").write_text("half")
    store.write_cell(d, "{}", pd.DataFrame({"metric": ["y"], "value": [2.0]}))
    assert store.is_done(d)
    assert not list(d.glob("*.tmp")) and not list(d.glob(".*.tmp"))
    assert store.load_rows(tmp_path, "exp")["value"].tolist() == [2.0]


def test_atomic_write_leaves_old_file_on_failure(tmp_path, monkeypatch):
    p = tmp_path / "f.txt"
    store.atomic_write_text(p, "old")

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(store.os, "replace", boom)
    try:
        store.atomic_write_text(p, "new")
    except OSError:
        pass
    assert p.read_text() == "old"
    assert list(tmp_path.iterdir()) == [p]

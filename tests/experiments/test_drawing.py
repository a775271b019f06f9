"""`sslt figures --jobs N` (experiments/engine/drawing.py) draws the same figures as one process, byte for byte,
and a figure that fails in a worker fails the command and leaves no RUN stamp vouching for the figures."""
from __future__ import annotations

import multiprocessing

import pytest

from experiments.engine import chapters, cli

NAME = "negatives"   # the chapter whose quick figures draw fastest


def test_two_workers_draw_the_same_pngs_as_one_process(quick_results, quick_figures, tmp_path):
    serial_root, facts, _ = quick_figures(NAME)          # drawn in one process (`--jobs 1`)
    assert cli.main(["figures", NAME, "--out", str(quick_results(NAME)), "--figures", str(tmp_path),
                     "--jobs", "2"]) == 0
    serial = sorted((serial_root / NAME).glob("*.png"))
    assert {p.stem for p in serial} == set(facts) == set(chapters.get(NAME).figures)
    for p in serial:
        assert (tmp_path / NAME / p.name).read_bytes() == p.read_bytes(), p.name
    assert (tmp_path / NAME / "RUN").read_text() == (serial_root / NAME / "RUN").read_text()


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(),
                    reason="the patched figure reaches the workers only by fork")
def test_a_figure_failing_in_a_worker_fails_the_command_and_leaves_no_stamp(quick_results, tmp_path, monkeypatch):
    ch = chapters.get(NAME)
    stem = list(ch.figures)[-1]

    def boom(rows, judged, out, name):
        raise RuntimeError(f"figure {name} broke")
    monkeypatch.setitem(ch.figures, stem, boom)        # the workers are forked after this: they draw it too
    (tmp_path / NAME).mkdir()
    (tmp_path / NAME / "RUN").write_text("run an-earlier-one\n")
    with pytest.raises(RuntimeError, match=f"figure {stem} broke"):
        cli.main(["figures", NAME, "--out", str(quick_results(NAME)), "--figures", str(tmp_path), "--jobs", "2"])
    assert not (tmp_path / NAME / "RUN").exists()

"""The chapter notebooks: every registered chapter has one, each executes top to bottom (jupytext py:percent ->
nbclient, matplotlib's Agg backend in the kernel) within its time limit, ends with an assert about what it computed,
and shows theorem statements only through the registry-rendering helper."""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from experiments.engine import chapters
from experiments.engine import report as lesson

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (ROOT / "notebooks").glob("*.py") if not p.name.startswith("_"))
PER_NOTEBOOK_S = 60     # the budget: each notebook under a minute
TIMES: dict[str, float] = {}


def execute(nb, cwd: Path, timeout: int = PER_NOTEBOOK_S):
    """Run every cell of ``nb`` in a fresh python3 kernel started in ``cwd``; raises on the first failing cell."""
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=False,
                            resources={"metadata": {"path": str(cwd)}})
    return client.execute()


def _code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]


def test_every_chapter_has_a_notebook():
    have = {p.stem for p in NOTEBOOKS}
    missing = [n for n in chapters.names() if n not in have]
    assert not missing, f"chapters without notebooks/<chapter>.py: {missing}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_without_outputs_and_ends_with_an_assert(path):
    text = path.read_text()
    assert "format_name: percent" in text, f"{path.name}: not a jupytext py:percent file"
    nb = jupytext.read(path)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    last = _code_cells(nb)[-1].source
    assert "assert " in last, f"{path.name}: the final cell must assert something about what it computed"
    # exercises with answers a teacher can reveal
    answers = [c for c in nb.cells if c.cell_type == "markdown" and "<details><summary>Answer</summary>" in c.source]
    assert len(answers) >= 2, f"{path.name}: needs two or three exercises with hidden answers"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")      # the kernel inherits it; a human's notebook stays inline
    nb = jupytext.read(path)
    t0 = time.perf_counter()
    try:
        done = execute(nb, tmp_path)
    except CellExecutionError as err:
        pytest.fail(f"{path.name} failed:\n{str(err)[-3000:]}")
    seconds = time.perf_counter() - t0
    TIMES[path.stem] = seconds
    print(f"\n{path.name}: executed in {seconds:.1f} s")
    images = sum("image/png" in o.get("data", {}) for c in done.cells if c.cell_type == "code" for o in c.outputs)
    assert images >= 2, f"{path.name}: expected the generator's samples and the suite's figure, got {images} images"
    markdown = [o["data"]["text/markdown"] for c in done.cells if c.cell_type == "code" for o in c.outputs
                if "text/markdown" in o.get("data", {})]
    statements = {t.statement for t in chapters.get(path.stem).theorems} if path.stem in chapters.names() else set()
    assert any(s in m for m in markdown for s in statements), f"{path.name}: no theorem statement rendered"
    assert seconds < PER_NOTEBOOK_S


def test_a_failing_final_assert_fails_the_run(tmp_path):
    """The harness above can fail: a notebook whose last cell asserts something false raises."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1"),
                                         nbformat.v4.new_code_cell("assert x == 2, 'the bound is below the measurement'")])
    with pytest.raises(CellExecutionError, match="the bound is below"):
        execute(nb, tmp_path, timeout=30)


def test_statements_come_from_the_registry(monkeypatch):
    """No notebook holds a copy of a statement: each renders them with the registry helper, and a changed
    registry entry is what that helper returns."""
    reg = chapters._registry()
    for path in NOTEBOOKS:
        text = path.read_text()
        assert "lesson.theorems_markdown(" in text, f"{path.name}: render the theorems from the registry"
        for ch in chapters.all_chapters():
            for t in ch.theorems:
                assert t.statement not in text, f"{path.name} copies the statement of {t.id}"
    name = "contrastive"
    ch = reg[name]
    changed = dataclasses.replace(ch.theorems[0], statement=r"L_{sup}^{\mu}(f) \le 42 \cdot \mathrm{edited}")
    monkeypatch.setitem(reg, name, dataclasses.replace(ch, theorems=(changed, *ch.theorems[1:])))
    md = lesson.theorems_markdown(name, [changed.id])
    assert r"42 \cdot \mathrm{edited}" in md
    assert ch.theorems[0].statement not in md

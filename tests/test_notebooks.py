"""The chapter notebooks: every registered chapter has one, each executes top to bottom (jupytext py:percent ->
nbclient, matplotlib's Agg backend in the kernel) within its time limit, ends with an assert about what it computed,
and shows theorem statements only through the registry-rendering helper.

Exercises: each notebook has two or three cells a student edits (tagged ``exercise``, left with a ``...`` TODO), each
followed by one checker call. After the notebook has run as a student finds it, the same kernel runs, per exercise,
the hidden reference solution of notebooks/_answers/<chapter>.py (the checker must accept it), a wrong solution (the
checker must reject it) and the TODO again (the checker must say so, not pass). Every answer's claims are computed
from the run the notebook made (experiments.exercises.reveal raises on a false one), and each notebook's
CONTRADICTING answer — an answer an earlier version gave, or one that contradicts the output — must fail.
"""
from __future__ import annotations

import dataclasses
import re
import runpy
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


def exercises(nb) -> dict[int, tuple[str, str]]:
    """Exercise number -> (the source of the cell the student edits, the checker call of the cell after it)."""
    cells = _code_cells(nb)
    out = {}
    for i, c in enumerate(cells):
        if "exercise" in c.metadata.get("tags", []):
            n = int(re.match(r"# EXERCISE (\d+):", c.source).group(1))
            out[n] = (c.source, cells[i + 1].source.strip())
    return out


def probes(path: Path, nb) -> list:
    """The cells the test appends to a notebook: per exercise the reference solution (accepted), a wrong one
    (rejected) and the TODO (reported as not attempted); then the answer that contradicts the output (must fail)."""
    answers = runpy.run_path(str(ROOT / "notebooks" / "_answers" / f"{path.stem}.py"))
    new = nbformat.v4.new_code_cell
    cells = []
    for n, (todo, checker) in exercises(nb).items():
        cells += [new(answers["SOLUTIONS"][n] + f"\nassert {checker} is True, 'exercise {n}: the reference rejected'"),
                  new(answers["WRONG"][n] + f"\ntry:\n    {checker}\nexcept AssertionError as err:\n"
                      f"    print('rejected as it should be:', err)\nelse:\n"
                      f"    raise RuntimeError('exercise {n}: a wrong solution was accepted')"),
                  new(todo + f"\nassert {checker} is False, 'exercise {n}: the TODO was not reported'")]
    cells.append(new("from experiments.exercises import AnswerContradicted\ntry:\n"
                     + "".join("    " + line + "\n" for line in answers["CONTRADICTING"].strip().splitlines())
                     + "except AnswerContradicted as err:\n    print('contradicting answer fails:', err)\nelse:\n"
                     "    raise RuntimeError('an answer contradicting the output passed')"))
    return cells


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
    # exercises with answers a teacher can reveal: each answer is a <details><summary>Answer</summary> block that
    # experiments.exercises.reveal displays from the run's numbers
    answers = [c for c in _code_cells(nb) if re.search(r"\bcheck\.answer_\d\(", c.source)]
    assert len(answers) >= 2, f"{path.name}: needs two or three exercises with hidden answers"
    edits = exercises(nb)
    assert 2 <= len(edits) <= 3, f"{path.name}: needs two or three cells a student edits, has {len(edits)}"
    assert len(answers) == len(edits), f"{path.name}: {len(edits)} exercises but {len(answers)} answers"
    for n, (edit, checker) in edits.items():
        assert "..." in edit, f"{path.name}: exercise {n}'s cell should be left with a `...` TODO"
        assert re.fullmatch(rf"check\.exercise_{n}\(.*\)", checker, re.S), f"{path.name}: exercise {n} has no checker"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")      # the kernel inherits it; a human's notebook stays inline
    nb = jupytext.read(path)
    n_cells = len(nb.cells)
    nb.cells += probes(path, nb)
    t0 = time.perf_counter()
    try:
        done = execute(nb, tmp_path)
    except CellExecutionError as err:
        pytest.fail(f"{path.name} failed:\n{str(err)[-3000:]}")
    seconds = time.perf_counter() - t0
    TIMES[path.stem] = seconds
    print(f"\n{path.name}: executed in {seconds:.1f} s")
    done.cells = done.cells[:n_cells]     # what a student sees: the notebook as stored, TODOs and all
    streams = [o for c in done.cells if c.cell_type == "code" for o in c.outputs if o.get("output_type") == "stream"]
    stderr = [o["text"] for o in streams if o["name"] == "stderr"]
    assert not stderr, f"{path.name}: writes to stderr (a progress bar renders as a red block): {stderr[0][:300]}"
    shown = "".join(o["text"] for o in streams)
    for n in exercises(nb):
        assert f"Exercise {n}: not attempted yet" in shown, f"{path.name}: exercise {n}'s TODO is not reported"
    images = sum("image/png" in o.get("data", {}) for c in done.cells if c.cell_type == "code" for o in c.outputs)
    assert images >= 2, f"{path.name}: expected the generator's samples and the suite's figure, got {images} images"
    markdown = [o["data"]["text/markdown"] for c in done.cells if c.cell_type == "code" for o in c.outputs
                if "text/markdown" in o.get("data", {})]
    statements = {t.statement for t in chapters.get(path.stem).theorems} if path.stem in chapters.names() else set()
    assert any(s in m for m in markdown for s in statements), f"{path.name}: no theorem statement rendered"
    assert seconds < PER_NOTEBOOK_S


def test_a_contradicting_answer_fails_and_a_todo_is_reported(tmp_path):
    """The answer machinery can fail: a claim the numbers contradict raises, a TODO is not taken for an answer."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "from experiments import exercises as ex\n"
        "assert ex.todo(..., exercise=1, what='a number') is True and ex.todo(0.5, exercise=1, what='') is False\n"
        "risk = [5.5e-5, 7.4e-5]\n"
        "ex.reveal(1, 'why', [ex.Claim('the risk falls from n = 320 to n = 640', risk[1] < risk[0])])")])
    with pytest.raises(CellExecutionError, match="AnswerContradicted.*the risk falls"):
        execute(nb, tmp_path, timeout=30)


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

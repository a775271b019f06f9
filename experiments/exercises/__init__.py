"""Exercises of the chapter notebooks: checkers that assert on what a student computed, and answers whose every
claim is computed from the run the notebook has just made.

A cell the student edits is tagged ``exercise`` and starts with a line ``# EXERCISE <n>: edit ...``; it is left with
a ``...`` TODO. Its checker (``check.exercise_<n>(...)``, one call in the next cell) returns False and says what to do
while the TODO is there (so the notebook still runs top to bottom and renders), True when the value is right, and
raises ``AssertionError`` naming what was expected when it is wrong.

An answer is prose (the why, with no number in it) plus ``Claim``s: sentences whose numbers are formatted from the
run's tables, each with the truth of what it says, computed from the same numbers. ``reveal`` shows them in a
collapsed ``<details>`` block and raises ``AnswerContradicted`` when a claim is false of this run, so a notebook
whose answer contradicts its own output stops there (tests/test_notebooks.py runs every notebook, and shows that an
answer contradicting the output fails). The reference solutions the tests run are in notebooks/_answers/.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TODO = Ellipsis   # what an unattempted edit cell holds


class AnswerContradicted(AssertionError):
    """An answer states something the run's own numbers contradict."""


@dataclass(frozen=True)
class Claim:
    text: str       # Markdown, its numbers formatted from the run
    holds: bool     # whether the run's numbers bear it out (True for a sentence that only reports them, its wording
    #                 chosen from them; computed from the table for every sentence that asserts something)

    def __post_init__(self):
        object.__setattr__(self, "holds", bool(self.holds))


def todo(value, exercise: int, what: str) -> bool:
    """True (after saying what to do) when ``value`` — what the student's cell holds, or what their function
    returned — is still the ``...`` TODO."""
    if value is TODO or (isinstance(value, (tuple, list)) and any(v is TODO for v in value)):
        print(f"Exercise {exercise}: not attempted yet. Replace the `...` in the cell marked EXERCISE {exercise} "
              f"with {what}, then run that cell and this one again.")
        return True
    return False


def expect(ok, exercise: int, message: str) -> None:
    """The checker's assertion, with the message a student reads."""
    if not bool(np.all(ok)):
        raise AssertionError(f"Exercise {exercise}: not yet. {message}")


def done(exercise: int, message: str) -> bool:
    print(f"Exercise {exercise}: correct. {message}")
    return True


def reveal(exercise: int, why: str, claims: list[Claim]) -> None:
    """Display the answer, collapsed, and fail if any claim is false of this run."""
    from IPython.display import Markdown, display
    wrong = [c.text for c in claims if not c.holds]
    if wrong:
        raise AnswerContradicted(f"Exercise {exercise}: the answer contradicts this run's output: " + " | ".join(wrong))
    lines = "\n".join(f"- {c.text}" for c in claims)
    display(Markdown(f"<details><summary>Answer</summary>\n\n{why}\n\n*From this run's numbers:*\n\n{lines}\n\n"
                     "</details>"))


def fmt(x: float) -> str:
    return f"{x:.3g}"


def train(name: str, overrides: list[str], root, profile: str = "quick"):
    """``lesson.train`` for a notebook cell: the config ``sslt run <name> --profile <profile> --set ...`` reads, and
    one plain line when it is done, not a progress bar (a tqdm bar is a red stderr block in a rendered page)."""
    import time

    from experiments.engine import chapters
    from experiments.engine import report as lesson
    t0 = time.perf_counter()
    run = lesson.train(name, chapters.load_config(name, profile, overrides), root, profile, overrides, progress=False)
    print(f"trained {len(run.cells)} cells of {name} ({profile} profile) in {time.perf_counter() - t0:.1f} s")
    return run

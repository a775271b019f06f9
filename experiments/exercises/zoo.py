"""Checkers and answers of notebooks/zoo.py (Lemma 4.3 on every objective): every number an answer states is read
from the tables of the notebook's own runs."""
from __future__ import annotations

import numpy as np

from experiments.exercises import Claim, done, expect, fmt, reveal, todo
from theory.verdict import VIOLATED


def _counts(r) -> str:
    return ", ".join(f"{k} {v}" for k, v in r["verdict"].value_counts().items())


def exercise_1(lemma_bound, r1) -> bool:
    """The student's bound in its three stored terms, against the suite's ``bound_value``."""
    got = lemma_bound(r1["L_un"].to_numpy(), r1["collision_floor"].to_numpy(), r1["p_distinct"].to_numpy())
    if todo(got, 1, "the bound in L_un, collision_floor and p_distinct"):
        return False
    want = r1["bound_value"].to_numpy()
    expect(np.shape(got) == np.shape(want) and np.allclose(got, want, rtol=1e-9), 1,
           f"at the first point yours is {np.ravel(got)[0]!r}, the suite's {fmt(want[0])}. Take the floor the "
           "collisions leave out of L_un, then divide by the probability that the negative is of another class.")
    return done(1, f"your bound equals the suite's at all {len(want)} points.")


def answer_1(rows, r1) -> None:
    reveal(1, "Every objective has a harder job (the class is no longer linear in the input), so probe errors "
              "change and the bound with them. The lemma cannot be violated by any of them: it holds for *every* "
              "encoder $f$, whatever objective produced it — what differs between objectives is how small they "
              "make $L_{un}$, hence how useful the bound is.", [
        Claim(f"Median measured loss: {fmt(float(rows['measured'].median()))} on the linear classes, "
              f"{fmt(float(r1['measured'].median()))} through the nonlinear map.", True),
        Claim(f"No point is violated through the nonlinear map ({_counts(r1)}).", VIOLATED not in set(r1["verdict"])),
    ])


def _by_objective(rows):
    return rows.groupby("objective")["measured"].median()


def exercise_2(hardest, rows) -> bool:
    """The objective with the largest median measured loss in section 4's table."""
    if todo(hardest, 2, "the name of an objective (a string)"):
        return False
    med = _by_objective(rows)
    expect(hardest in med.index, 2, f"{hardest!r} is not an objective of the run: {sorted(med.index)}.")
    expect(hardest == med.idxmax(), 2, f"{hardest!r} has median measured loss {fmt(float(med[hardest]))}; one "
           f"objective is higher. Group `rows` by 'objective' and take the median of 'measured'.")
    return done(2, f"{hardest} has the largest median measured loss, {fmt(float(med[hardest]))}.")


def answer_2(rows) -> None:
    med = _by_objective(rows)
    worst = med.idxmax()
    w = rows[rows["objective"] == worst]
    reveal(2, "A large loss is not a broken theorem: Lemma 4.3 holds for any encoder, a collapsed one included — "
              "an encoder that maps every input to nearly one point has $L_{un}$ near its trivial value, and the "
              "bound follows it up. The lemma says how the two losses are tied, not that an objective learns.", [
        Claim(f"The largest median measured loss is {worst}'s, {fmt(float(med[worst]))} (trivial value "
              f"{fmt(float(w['trivial'].median()))}); the smallest is {med.idxmin()}'s, {fmt(float(med.min()))}.",
              True),
        Claim(f"{worst}'s points: {_counts(w)}; none violated.", len(w) > 0 and VIOLATED not in set(w["verdict"])),
    ])


def contradicting_answer_1(rows, r1) -> None:
    """An answer that says some objective breaks the lemma through the nonlinear map: none does, so this fails."""
    reveal(1, "", [Claim("Through the nonlinear map some objective's encoder violates Lemma 4.3.",
                         VIOLATED in set(r1["verdict"]))])

"""Checkers and answers of notebooks/language.py (Saunshi, Malladi & Arora 2021): every number an answer states is
read from the tables of the notebook's own runs."""
from __future__ import annotations

import numpy as np

from experiments.exercises import Claim, done, expect, fmt, reveal, todo
from theory.verdict import NOT_MET, VACUOUS, VIOLATED


def _counts(r) -> str:
    return ", ".join(f"{k} {v}" for k, v in r["verdict"].value_counts().items())


def exercise_1(theorem_bound, r1) -> bool:
    """The student's one-line bound, against the suite's ``bound_value`` (epsilon clipped at 0, as the suite does:
    an exact epsilon can come out at -1e-17 by rounding)."""
    eps = np.maximum(r1["epsilon"].to_numpy(), 0.0)
    got = theorem_bound(r1["tau"].to_numpy(), r1["B"].to_numpy(), eps, r1["gamma"].to_numpy())
    if todo(got, 1, "the theorem's bound in tau, B, epsilon and gamma"):
        return False
    want = r1["bound_value"].to_numpy()
    expect(np.shape(got) == np.shape(want) and np.allclose(got, want, rtol=1e-9), 1,
           f"at the first point (tau = {fmt(r1['tau'].iloc[0])}, B = {fmt(r1['B'].iloc[0])}, epsilon = "
           f"{fmt(eps[0])}, gamma = {fmt(r1['gamma'].iloc[0])}) yours is {np.ravel(got)[0]!r}, the suite's "
           f"{fmt(want[0])}. The statement: tau + sqrt(2 B^2 epsilon / gamma), natural logarithms.")
    return done(1, f"your bound equals the suite's at all {len(want)} points.")


def answer_1(r1) -> None:
    noise = r1[r1["model"] == "noise"]
    judged = r1[r1["verdict"] != NOT_MET]
    n0, n3 = noise[noise["level"] == 0.0], noise[noise["level"] == 3.0]
    n3j = n3[n3["verdict"] != NOT_MET]
    triv = float(r1["trivial"].median())
    reveal(1, "$\\epsilon$ (the expected KL from $p^*_s$) grows with the noise, and the bound grows like "
              "$\\sqrt{\\epsilon}$: once it passes $\\log 2$, the loss of the zero probe, it says nothing (vacuous). "
              "The measured loss of the probe on the noisy LM rises much less: the bound is loose far from $p^*$, "
              "but it is never violated where the task is natural.", [
        Claim(f"Median $\\epsilon$ of the noisy LM: {fmt(float(n0['epsilon'].median()))} at $\\eta = 0$, "
              f"{fmt(float(n3['epsilon'].median()))} at $\\eta = 3$.",
              float(n3["epsilon"].median()) > float(n0["epsilon"].median())),
        Claim(f"At $\\eta = 3$ the median bound is {fmt(float(n3j['bound_value'].median()))}, above $\\log 2$ = "
              f"{fmt(triv)}, and every judged point there is vacuous ({_counts(n3)}); the median measured loss is "
              f"{fmt(float(n3j['measured'].median()))}.",
              len(n3j) > 0 and bool((n3j["verdict"] == VACUOUS).all())),
        Claim(f"No judged point of the run is violated ({_counts(r1)}).",
              VIOLATED not in set(judged["verdict"]) and bool((judged["measured"] <= judged["bound_value"]).all())),
    ])


def exercise_2(natural, r2) -> bool:
    """The student's naturalness check (one comparison), against the run's "assumption not met" verdicts."""
    got = natural(r2["natural_gap"].to_numpy(), r2["gap_max"].to_numpy())
    if todo(got, 2, "the test that a task is natural, from natural_gap and gap_max"):
        return False
    want = (r2["verdict"] != NOT_MET).to_numpy()
    got = np.asarray(got)
    expect(got.shape == want.shape and got.dtype == bool and bool((got == want).all()), 2,
           f"your check calls {int(np.sum(got == False))} points not natural; the run has {int((~want).sum())} "  # noqa: E712
           "'assumption not met'. A task is natural when the best bounded probe on p* comes within gap_max of "
           "the Bayes loss: natural_gap <= gap_max (a boolean array).")
    return done(2, f"your check finds the {int((~want).sum())} points that are not natural.")


def _not_met(r):
    nm = r[r["verdict"] == NOT_MET]
    return nm, sorted(set(nm["task"]))


def answer_2(rows, r2) -> None:
    nm9, tasks9 = _not_met(rows)
    nm5, tasks5 = _not_met(r2)
    t9, t5 = float(rows["tau"].median()), float(r2["tau"].median())
    h9, h5 = int((rows["verdict"] == "holds").sum()), int((r2["verdict"] == "holds").sum())
    whole = all(len(r2[r2["task"] == t]) == len(nm5[nm5["task"] == t]) for t in tasks5)
    reveal(2, "The next word is less determined by the context, so even the best linear probe on $p^*_s$ has a "
              "larger loss: $\\tau$ grows, the bound $\\tau + \\sqrt{2B^2\\epsilon/\\gamma}$ with it, and fewer "
              "points hold. The \"assumption not met\" count does not follow: naturalness is a property of the "
              "*task* on $p^*$, checked on every row. The suite's task `non_natural` is built so that no bounded "
              "probe on $p^*$ comes near its Bayes loss; every point of it is not met, at either determinism, and "
              "the count is the number of LMs it is evaluated on.", [
        Claim(f"Median $\\tau$: {fmt(t9)} at determinism 0.9, {fmt(t5)} at 0.5; points that hold: {h9} and {h5}.",
              t5 > t9),
        Claim(f"\"Assumption not met\": {len(nm9)} points at determinism 0.9 and {len(nm5)} at 0.5, all of task "
              f"{', '.join(f'`{t}`' for t in tasks5)}, every point of it"
              f"{' — the same count' if len(nm9) == len(nm5) else ''}.",
              tasks5 == tasks9 and whole),
        Claim(f"Their naturalness gap is at least {fmt(float(nm5['natural_gap'].min()))} nats at 0.5 "
              f"({fmt(float(nm9['natural_gap'].min()))} at 0.9), above gap_max = {fmt(float(r2['gap_max'].max()))}.",
              bool((nm5["natural_gap"] > nm5["gap_max"]).all() and (nm9["natural_gap"] > nm9["gap_max"]).all())),
    ])


def contradicting_answer_2(rows, r2) -> None:
    """The answer the notebook gave before implied that a less predictable language has more tasks that are not
    natural. The run's not-met count does not grow, so this must fail."""
    reveal(2, "", [Claim("At determinism 0.5 more points are \"assumption not met\" than at 0.9.",
                         len(_not_met(r2)[0]) > len(_not_met(rows)[0]))])

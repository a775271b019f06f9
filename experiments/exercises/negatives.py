"""Checkers and answers of notebooks/negatives.py (bounds in the number of negatives K): every number an answer
states is read from the notebook's own run or computed exactly by theory.negatives."""
from __future__ import annotations

import numpy as np

from experiments.exercises import Claim, done, expect, fmt, reveal, todo
from theory import negatives as th
from theory.verdict import VACUOUS, VIOLATED

TARGET = 0.95   # the coverage exercise 1 asks for


def smallest_k(rho, target: float = TARGET) -> int:
    """The smallest K at which the anchor and its K negatives cover every class with probability >= target."""
    return next(K for K in range(1, 100_000) if th.coverage(rho, K + 1) >= target)


def exercise_1(K, zipf) -> bool:
    """The student's smallest K with upsilon_(K+1) >= 0.95 under the Zipf law."""
    if todo(K, 1, f"the smallest K at which upsilon_(K+1) >= {TARGET} under the Zipf law (an integer)"):
        return False
    expect(isinstance(K, (int, np.integer)) and K >= 1, 1, f"K is a number of negatives, an integer >= 1; got {K!r}.")
    up, below = th.coverage(zipf, K + 1), th.coverage(zipf, K)
    expect(up >= TARGET, 1, f"at K = {K}, upsilon_(K+1) = {fmt(up)} < {TARGET}: more negatives are needed.")
    expect(below < TARGET, 1, f"at K = {K - 1} already upsilon_K = {fmt(below)} >= {TARGET}: a smaller K will do.")
    return done(1, f"K = {K}: upsilon = {fmt(up)}.")


def answer_1(uniform, zipf) -> None:
    ku, kz = smallest_k(uniform), smallest_k(zipf)
    cu, cz = th.coverage(uniform, 64), th.coverage(zipf, 64)
    reveal(1, "Under Zipf the rarest class is drawn far less often than under the uniform law, so $K + 1$ draws "
              "miss it more often: $\\upsilon_{K+1}$ is lower, and Nozawa & Sato's coefficient "
              "$2/\\upsilon_{K+1}$ higher. The coverage-based forms pay for the rare classes; Bao et al.'s "
              "$\\Delta_U$ only sees $\\rho_{max} C^2$.", [
        Claim(f"Rarest class: {fmt(float(zipf.min()))} under Zipf, {fmt(float(uniform.min()))} uniform.",
              zipf.min() < uniform.min()),
        Claim(f"$\\upsilon_{{64}}$ = {fmt(cz)} under Zipf against {fmt(cu)} uniform, so $2/\\upsilon$ is "
              f"{fmt(2 / cz)} against {fmt(2 / cu)}.", cz < cu),
        Claim(f"To reach $\\upsilon_{{K+1}} \\ge {TARGET}$: $K$ = {kz} under Zipf, {ku} uniform.", kz > ku),
    ])


def _bao(t):
    return t[(t["theorem"] == "negatives.bao_2022_upper") & (t["model_kind"] == "trained")].sort_values("K")


def exercise_2(log_C, t2) -> bool:
    """The trivial value of the upper bounds for C classes, against the rows' ``trivial``."""
    if todo(log_C, 2, "the loss of a classifier that knows nothing, over C = 10 equally likely classes"):
        return False
    want = float(_bao(t2)["trivial"].median())
    expect(np.isclose(float(log_C), want, rtol=1e-9), 2,
           f"you have {log_C!r}; the rows' trivial value is {fmt(want)}: the cross-entropy of the uniform "
           "prediction over C classes, in nats.")
    return done(2, f"the trivial value is log C = {fmt(want)} nats.")


def answer_2(rows, t2) -> None:
    b1, b2 = _bao(rows), _bao(t2)
    d = float(b2["Delta_U"].median() - b1["Delta_U"].median())
    reveal(2, "Larger norms let the mean classifier separate the classes, so the measured loss can fall, while "
              "Bao et al.'s $\\Delta_U$ pays $\\cosh^2(b^2)$-type terms for the norm: the bound rises, far above "
              "the trivial value $\\log C$. A bound that grows while the loss falls is true and says nothing.", [
        Claim(f"Median $\\Delta_U$: {fmt(float(b1['Delta_U'].median()))} at $b = 1$, "
              f"{fmt(float(b2['Delta_U'].median()))} at $b = 2$ ({fmt(d)} nats more).", d > 0),
        Claim(f"Every trained point at $b = 2$ is vacuous (bounds {', '.join(fmt(x) for x in b2['bound_value'])}, "
              f"trivial {fmt(float(b2['trivial'].median()))}).",
              len(b2) > 0 and bool((b2["verdict"] == VACUOUS).all() and (b2["bound_value"] >= b2["trivial"]).all())),
        Claim(f"The median measured loss falls from {fmt(float(b1['measured'].median()))} at $b = 1$ to "
              f"{fmt(float(b2['measured'].median()))} at $b = 2$; no point is violated.",
              float(b2["measured"].median()) < float(b1["measured"].median())
              and VIOLATED not in set(t2[t2["kind"] == "bound"]["verdict"])),
    ])


def contradicting_answer_2(rows, t2) -> None:
    """An answer that says the larger norm makes Bao et al.'s bound informative: it is vacuous, so this fails."""
    reveal(2, "", [Claim("At b = 2 Bao et al.'s bound falls below log C.",
                         bool((_bao(t2)["bound_value"] < _bao(t2)["trivial"]).any()))])

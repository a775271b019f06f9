"""Checkers and answers of notebooks/contrastive.py (Lemma 4.3 of Arora et al. 2019): every number an answer states
is read from the tables of the notebook's own runs."""
from __future__ import annotations

import numpy as np

from experiments.exercises import Claim, done, expect, fmt, reveal, todo


def exercise_1(lemma_bound, r1) -> bool:
    """The student's one-line Lemma 4.3 bound, against the suite's ``bound_value`` on every point of the run."""
    got = lemma_bound(r1["L_un"].to_numpy(), r1["tau"].to_numpy())
    if todo(got, 1, "the lemma's right-hand side in L_un and tau"):
        return False
    want = r1["bound_value"].to_numpy()
    expect(np.shape(got) == np.shape(want) and np.allclose(got, want, rtol=1e-9), 1,
           f"at the first point (L_un = {fmt(r1['L_un'].iloc[0])}, tau = {fmt(r1['tau'].iloc[0])}) your bound is "
           f"{np.ravel(got)[0]!r}, the suite's is {fmt(want[0])}. Take the collisions (probability tau, where the "
           "negative shares the class and the loss cannot go below its floor) out of L_un, then divide by the "
           "probability 1 - tau that the negative is of another class.")
    return done(1, f"your bound equals the suite's at all {len(want)} points.")


def answer_1(rows, r1) -> None:
    med = lambda t, c: float(t[c].median())   # noqa: E731
    l0, l1, m0, m1 = med(rows, "L_un"), med(r1, "L_un"), med(rows, "measured"), med(r1, "measured")
    n_vac = int((r1["verdict"] == "vacuous").sum())
    vac = r1[r1["verdict"] == "vacuous"]
    reveal(1, "The lemma holds for *every* encoder $f$, so overlap cannot make it false: it moves $L_{un}$ and "
              "the mean classifier's loss, and the bound follows $L_{un}$. What overlap changes is how informative "
              "the bound is: where it reaches the trivial value $\\ell(0)$ it says nothing (vacuous).", [
        Claim(f"Median $L_{{un}}$: {fmt(l0)} at the default spread, {fmt(l1)} at spread 1.5 "
              f"({'higher' if l1 > l0 else 'lower'}); median measured $L^\\mu_{{sup}}$: {fmt(m0)} and {fmt(m1)} "
              f"({'higher' if m1 > m0 else 'lower'}).", True),
        Claim(f"No point of the spread-1.5 run is violated (verdicts: "
              f"{', '.join(f'{k} {v}' for k, v in r1['verdict'].value_counts().items())}).",
              "violated" not in set(r1["verdict"])),
        Claim(f"{n_vac} of {len(r1)} points are vacuous: at each of them the bound is at or above $\\ell(0)$.",
              bool((vac["bound_value"] >= vac["trivial"] - 1e-12).all())),
    ])


def _many(r2):
    """The rows of the C = 20 study: the smallest tau of the run (it also holds the chapter's C = 2 rows)."""
    return r2[np.isclose(r2["tau"], r2["tau"].min())]


def _last(r):
    """The trained encoders' last checkpoint."""
    t = r[r["model_kind"] == "trained"]
    return t[t["step"] == t["step"].max()]


def exercise_2(tau_20, r2) -> bool:
    """The collision probability of 20 uniform classes, against the run's ``tau``."""
    if todo(tau_20, 2, "the probability that a negative shares the positive's class, for 20 uniform classes"):
        return False
    want = float(r2["tau"].min())
    expect(np.isclose(float(tau_20), want, rtol=1e-9), 2,
           f"you have {tau_20!r}, the run's tau is {fmt(want)}. tau = sum_c rho_c^2: the chance that two "
           "independent draws of the class law rho land on the same class.")
    return done(2, f"tau = {fmt(want)}.")


def _barely_trained(r, ratio=0.8):
    """Measured loss within ``1 - ratio`` of the trivial value ell(0): the encoder has learnt little."""
    return float(r["measured"].median()) >= ratio * float(r["trivial"].median())


def answer_2(rows, r2) -> None:
    c2, c20 = rows[np.isclose(rows["tau"], 0.5)], _many(r2)
    t20, s20, s2 = float(c20["tau"].iloc[0]), float(c20["slack"].median()), float(c2["slack"].median())
    m20, triv = float(c20["measured"].median()), float(c20["trivial"].median())
    e20, e2 = float(_last(c20)["measured"].median()), float(_last(c2)["measured"].median())
    reveal(2, "More classes make collisions rarer, so the bound $(L_{un} - \\tau)/(1 - \\tau)$ is closer to $L_{un}$ "
              "itself. But a slack near 1 is not, by itself, a tight theorem: with the same short training, 20 "
              "classes are much harder to separate, and an encoder that has learnt little has both sides of the "
              "inequality near the trivial value $\\ell(0)$, where any true bound is close to the measurement.", [
        Claim(f"$\\tau$ = {fmt(t20)} at $C = 20$ (that is $1/20$), against {fmt(float(c2['tau'].iloc[0]))} at "
              "$C = 2$.", np.isclose(t20, 1 / 20) and t20 < float(c2["tau"].iloc[0])),
        Claim(f"The median slack (bound ÷ measured) is {fmt(s20)} at $C = 20$ and {fmt(s2)} at $C = 2$.", True),
        Claim(f"At $C = 20$ the encoder is barely trained: its median measured loss over the checkpoints is "
              f"{fmt(m20)}, {m20 / triv:.0%} of the trivial value $\\ell(0)$ = {fmt(triv)}; even after the last "
              f"step it is {fmt(e20)}, against {fmt(e2)} at $C = 2$ with the same training.",
              _barely_trained(c20) and e20 > e2),
    ])


def exercise_3(trivial_line, r3) -> bool:
    """The student's horizontal line at ell(0), on the figure of the one-step run."""
    if todo(trivial_line, 3, "`ax.axhline(...)` at the trivial value of r3's rows (its `trivial` column)"):
        return False
    ys = np.unique(np.asarray(trivial_line.get_ydata(), dtype=float))
    want = float(r3["trivial"].median())
    expect(len(ys) == 1 and np.isclose(ys[0], want), 3,
           f"your line is at y = {ys.tolist()}; the trivial value of these rows is {fmt(want)} (the `trivial` "
           "column: the loss of the zero encoder, ell(0)).")
    return done(3, f"the trivial line is at {fmt(want)}.")


def answer_3(r3) -> None:
    triv = float(r3["trivial"].median())
    reveal(3, "Lemma 4.3 is about *any* encoder, trained or not, so one step of training cannot make it false. A "
              "barely trained encoder has $L_{un}$ and $L^\\mu_{sup}$ both near their values at initialisation, "
              "close to $\\ell(0)$: the bound is true but says little. A bound that holds is not yet a bound that "
              "is informative.", [
        Claim(f"No point is violated after one step (verdicts: "
              f"{', '.join(f'{k} {v}' for k, v in r3['verdict'].value_counts().items())}).",
              "violated" not in set(r3["verdict"])),
        Claim(f"Both sides sit near $\\ell(0)$ = {fmt(triv)}: median $L_{{un}}$ {fmt(float(r3['L_un'].median()))}, "
              f"median measured {fmt(float(r3['measured'].median()))}.", _barely_trained(r3)),
    ])


def contradicting_answer_2(rows, r2) -> None:
    """The answer the notebook gave before: the slack at C = 20 is smaller "because of tau", as if the encoder were
    trained as well as at C = 2. The run says otherwise (``_barely_trained``), so this must fail."""
    reveal(2, "", [Claim("At C = 20 the encoder is trained well below the trivial value, so the smaller slack is "
                         "tau's doing.", not _barely_trained(_many(r2)))])

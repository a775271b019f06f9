"""Checkers and answers of notebooks/self_prediction.py (Lee et al. 2021): every number an answer states is read from
the tables of the notebook's own runs."""
from __future__ import annotations

import numpy as np

from experiments.exercises import Claim, done, expect, fmt, reveal, todo
from theory.verdict import BOUND_VERDICTS, VIOLATED

POPULATION = "self_prediction.theorem_4_2_population"


def exercise_1(chernoff_bound, r1) -> bool:
    """The student's one-line exact-CI bound, against the suite's ``bound_value`` at every judged n."""
    got = chernoff_bound(r1["n"].to_numpy(), r1["p"].to_numpy(), r1["sigma2_eff"].to_numpy())
    if todo(got, 1, "the bound in n, p and sigma2_eff"):
        return False
    want = r1["bound_value"].to_numpy()
    expect(np.shape(got) == np.shape(want) and np.allclose(got, want, rtol=1e-9), 1,
           f"at n = {fmt(r1['n'].iloc[0])} your bound is {np.ravel(got)[0]!r}, the suite's is {fmt(want[0])}. "
           "The statement (section 1) is 4 (p + 1) sigma2_eff / n: p + 1 parameters of the probe, each estimated "
           "with variance sigma2_eff / n, times 4 for the design event.")
    return done(1, f"your bound equals the suite's at all {len(want)} judged n.")


def _rises(r1):
    """Consecutive judged n at which the measured excess risk goes up, as (n, risk, next n, next risk)."""
    s = r1.sort_values("n")
    n, m = s["n"].to_numpy(), s["measured"].to_numpy()
    return [(n[i], m[i], n[i + 1], m[i + 1]) for i in range(len(n) - 1) if m[i + 1] > m[i]]


def answer_1(r1, probe_n) -> None:
    s = r1.sort_values("n")
    ratios = s["bound_value"].to_numpy()[1:] / s["bound_value"].to_numpy()[:-1]
    rises = _rises(r1)
    unjudged = sorted(set(probe_n) - set(s["n"].astype(int)))
    steps = "; ".join(f"it rises from {fmt(a)} at n = {int(na)} to {fmt(b)} at n = {int(nb)}"
                      for na, a, nb, b in rises)
    reveal(1, "The bound is $4(p+1)\\sigma^2_{\\mathrm{eff}}/n$, so it halves exactly each time $n$ doubles. The "
              "measured excess risk is one draw of a random design: it falls on average, like $1/n$, but not at "
              "every step, and nothing in the theorem says it must fall as fast as the bound — only that it stays "
              "below. Small $n$ are not judged at all: the statement holds on the design event "
              "$G = \\{\\lambda_{\\min}(S) \\ge 1/2\\}$, and the suite judges only the $n$ at which matrix Chernoff "
              "makes $P(G^c) \\le 0.01$ (`failure_prob`).", [
        Claim(f"Bound ratio at each doubling of $n$: {', '.join(fmt(r) for r in ratios)}.",
              np.allclose(ratios, 0.5, rtol=1e-9)),
        Claim("The measured risk " + (f"does not fall at every step: {steps}." if rises else
                                      "falls at every doubling in this run."), True),
        Claim(f"At every judged $n$ the measured risk is below the bound (verdicts: "
              f"{', '.join(f'{k} {v}' for k, v in s['verdict'].value_counts().items())}).",
              bool((s["measured"] <= s["bound_value"]).all()) and VIOLATED not in set(s["verdict"])),
        Claim(f"Judged: $n$ = {', '.join(str(int(x)) for x in s['n'])} (largest `failure_prob` "
              f"{fmt(float(s['failure_prob'].max()))}); not judged: $n$ = {', '.join(map(str, unjudged))}.",
              bool((s["failure_prob"] <= 0.01).all()) and len(unjudged) > 0),
    ])


def contradicting_answer_1(r1) -> None:
    """The answer the notebook gave before: "the measured excess risk falls at least as fast as the bound". The run
    has it rising between two judged n, so this must fail."""
    s = r1.sort_values("n")
    m, b = s["measured"].to_numpy(), s["bound_value"].to_numpy()
    reveal(1, "", [Claim("The measured excess risk falls at least as fast as the bound.",
                         bool(np.all(m[1:] / m[:-1] <= b[1:] / b[:-1])))])


def _at_scale(t2, scale):
    r = t2[(t2["theorem"] == POPULATION) & (t2["family"] == "nuisance") & (t2["nuisance_scale"] == scale)]
    if r.empty:
        raise ValueError(f"nuisance_scale: no {POPULATION} rows at scale {scale}")
    return r


def exercise_2(prediction, t2) -> bool:
    """The student's predicted verdict of Theorem 4.2 (population) at nuisance scale 4, against the run's."""
    if todo(prediction, 2, f"one of {list(BOUND_VERDICTS)}, as a string"):
        return False
    expect(prediction in BOUND_VERDICTS, 2, f"{prediction!r} is not a verdict; choose one of {list(BOUND_VERDICTS)}.")
    got = _at_scale(t2, 4.0)["verdict"].value_counts()
    expect(prediction == got.index[0], 2,
           f"the run's verdicts at scale 4 are {got.to_dict()}, not {prediction!r}. Theorem 4.2 does not assume "
           "conditional independence: it pays for its failure with epsilon_CI, a term of the bound.")
    return done(2, f"at scale 4 the verdict is {prediction!r} ({int(got.iloc[0])} of {int(got.sum())} points).")


def answer_2(t2, theorem_id) -> None:
    r0, r4 = _at_scale(t2, 0.0), _at_scale(t2, 4.0)
    exact = t2[t2["theorem"] == theorem_id]
    counts = lambda r: ", ".join(f"{k} {v}" for k, v in r["verdict"].value_counts().items())   # noqa: E731
    reveal(2, "A nuisance shared by both views and not explained by $Y$ breaks conditional independence. The "
              "exact-CI bound assumes it, so it is not checked on these cells. Theorem 4.2's population "
              "inequality covers approximate conditional independence: $\\epsilon_{CI}$ is a term of its bound, "
              "so it stays true, and grows until it says nothing (vacuous), rather than being violated.", [
        Claim(f"Theorem 4.2 (population): at scale 0 {counts(r0)}; at scale 4 {counts(r4)}.",
              VIOLATED not in set(r4["verdict"]) | set(r0["verdict"])),
        Claim(f"Its median bound rises from {fmt(float(r0['bound_value'].median()))} at scale 0 to "
              f"{fmt(float(r4['bound_value'].median()))} at scale 4, above the trivial value "
              f"{fmt(float(r4['trivial'].median()))}.",
              float(r4["bound_value"].median()) > float(r0["bound_value"].median())
              and bool((r4["bound_value"] >= r4["trivial"]).all())),
        Claim(f"The exact-CI bound is judged only where conditional independence holds: its {len(exact)} points "
              f"come from the `exact_ci` family ({int((exact['family'] == 'exact_ci').sum())}) and the nuisance "
              f"family at scale 0 ({int((exact['family'] == 'nuisance').sum())}); none at scale 4.",
              not bool(((exact["family"] == "nuisance") & (exact["nuisance_scale"] > 0)).any())),
    ])

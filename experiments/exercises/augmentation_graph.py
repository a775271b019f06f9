"""Checkers and answers of notebooks/augmentation_graph.py (HaoChen et al. 2021): every number an answer states is
read from the tables of the notebook's own runs."""
from __future__ import annotations

import numpy as np

from experiments.exercises import Claim, done, expect, fmt, reveal, todo
from theory.verdict import BOUND_VERDICTS, EXACT, NOT_MET, VACUOUS, VIOLATED

EIGEN = "augmentation_graph.eigenvalue_bound"
SPECTRAL = "augmentation_graph.spectral_minimum"


def _counts(r) -> str:
    return ", ".join(f"{k} {v}" for k, v in r["verdict"].value_counts().items())


def exercise_1(eigen_bound, r1) -> bool:
    """The student's one-line eigenvalue bound, against the suite's ``bound_value``."""
    got = eigen_bound(r1["alpha"].to_numpy(), r1["lambda_next"].to_numpy())
    if todo(got, 1, "the eigenvalue bound in alpha and lambda_next"):
        return False
    want = r1["bound_value"].to_numpy()
    expect(np.shape(got) == np.shape(want) and np.allclose(got, want, rtol=1e-9), 1,
           f"at alpha = {fmt(r1['alpha'].iloc[0])}, lambda_next = {fmt(r1['lambda_next'].iloc[0])} yours is "
           f"{np.ravel(got)[0]!r}, the suite's {fmt(want[0])}. The statement: alpha + 4 alpha / lambda_(d+1), and "
           "an error is never above 1 (the bound is capped at the trivial value).")
    return done(1, f"your bound equals the suite's at all {len(want)} points.")


def answer_1(eig, r1) -> None:
    reveal(1, "$\\alpha$ is the mass that leaks across classes, and the bound $\\min(1, \\alpha + "
              "4\\alpha/\\lambda_{d+1})$ grows at least linearly in it: with enough leak it reaches the trivial "
              "value 1 and says nothing. The measured error of the probe rises too — edges across classes blur the "
              "eigenvectors — but the bound is about every graph with that leak, not this one.", [
        Claim(f"Median $\\alpha$: {fmt(float(eig['alpha'].median()))} in section 3, "
              f"{fmt(float(r1['alpha'].median()))} here; median bound {fmt(float(eig['bound_value'].median()))} and "
              f"{fmt(float(r1['bound_value'].median()))}.", float(r1["alpha"].median()) > float(eig["alpha"].median())),
        Claim(f"At leak 0.3 every point is vacuous ({_counts(r1)}): the bound is at the trivial value.",
              bool((r1["verdict"] == VACUOUS).all() and (r1["bound_value"] >= r1["trivial"]).all())),
        Claim(f"The measured error: median {fmt(float(eig['measured'].median()))} in section 3, "
              f"{fmt(float(r1['measured'].median()))} here, never above the bound.",
              VIOLATED not in set(r1["verdict"]) and bool((r1["measured"] <= r1["bound_value"]).all())),
    ])


def exercise_2(prediction, t2) -> bool:
    """The student's predicted verdict of the eigenvalue bound when the graph has no overlap."""
    if todo(prediction, 2, f"one of {list(BOUND_VERDICTS)}, as a string"):
        return False
    expect(prediction in BOUND_VERDICTS, 2, f"{prediction!r} is not a verdict; choose one of {list(BOUND_VERDICTS)}.")
    got = t2[t2["theorem"] == EIGEN]["verdict"].value_counts()
    expect(prediction == got.index[0], 2,
           f"the run's eigenvalue-bound verdicts are {got.to_dict()}, not {prediction!r}. With no overlap the graph "
           "falls apart into more components than classes: what does that do to lambda_(d+1)?")
    return done(2, f"the eigenvalue bound is {prediction!r} ({int(got.iloc[0])} of {int(got.sum())} points).")


def answer_2(t2) -> None:
    eig, spec = t2[t2["theorem"] == EIGEN], t2[t2["theorem"] == SPECTRAL]
    reveal(2, "With no overlap, each natural point's augmentations form their own component: the graph has more "
              "components than classes, and with $d$ small the top eigenvectors cannot give every class its own "
              "direction — $\\lambda_{d+1}$ is near 0, so the eigenvalue bound reaches the trivial value (or its "
              "assumption fails). The spectral-minimum inequality $-L(f) \\le \\sum_i (\\gamma_i)_+^2$ is still "
              "exact for every encoder: an identity of the algebra, not a statement about downstream error.", [
        Claim(f"Eigenvalue bound: {_counts(eig)}; median $\\lambda_{{d+1}}$ = "
              f"{fmt(float(eig['lambda_next'].median()))}.",
              len(eig) > 0 and set(eig["verdict"]) <= {VACUOUS, NOT_MET}),
        Claim(f"Spectral minimum: {_counts(spec)}.", len(spec) > 0 and set(spec["verdict"]) == {EXACT}),
    ])


def contradicting_answer_2(t2) -> None:
    """An answer that says the bound stays informative without overlap: the run has it vacuous, so this fails."""
    eig = t2[t2["theorem"] == EIGEN]
    reveal(2, "", [Claim("Without overlap the eigenvalue bound still holds below the trivial value.",
                         bool((eig["verdict"] == "holds").any()))])

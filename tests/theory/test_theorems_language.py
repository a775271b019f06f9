"""The language chapter's theorem declarations (theory.language.THEOREMS) against the rows bound_checks emits:
every row names a declared theorem whose bound function, fed the row's term columns, gives its bound_value; the
naturalness assumption reports the gap and flips at gap_max; a row on a non-converged probe is undetermined."""
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import bounds
from analysis import language as lt
from theory import language as th
from theory.theorems import index

REGISTRY = index(th.THEOREMS)
ROOT = Path(__file__).resolve().parents[2]

BASE = {"cell": "c0", "kind": "lm", "model": "xent", "arch": "mlp", "phi": "learned", "d": 4, "target": "next",
        "level": 0.0, "tilt_task": "none", "seed": 0, "lr": 0.01, "step": 10, "feature": "none", "n": 0}
TASK = {"tau": 0.5, "tau_se": 0.0, "B": 2.0, "gamma": 0.5, "bayes": 0.5, "tau_check": 0.5, "natural_gap": 0.0,
        "gap_max": 0.1, "plugin_p": 0.55, "plugin_p_se": 0.0, "probe_p": 0.52, "probe_p_se": 0.0,
        "tau_phi": 0.52, "B_phi": 1.5, "resid_phi": 0.0, "plugin_phi": 0.56, "plugin_phi_se": 0.0,
        "probe_phi_p": 0.53, "probe_phi_p_se": 0.0, "probe_f": 0.54, "probe_f_se": 0.0, "B_quad": 1.2,
        "plugin_quad": 0.57, "plugin_quad_se": 0.0, "probe_p_converged": 1.0, "probe_phi_p_converged": 1.0,
        "probe_f_converged": 1.0}
FREE = {"eps": 0.001, "eps_se": 0.0, "eps_phi": 0.004, "eps_phi_se": 0.0, "eps_quad": 0.002, "eps_quad_se": 0.0}
MAPPING = {("any_lm", "plugin"): "language.theorem_4_1", ("any_lm", "fitted probe"): "language.theorem_4_1",
           ("softmax_phi", "plugin"): "language.theorem_4_2", ("softmax_phi", "fitted probe"): "language.theorem_4_2",
           ("quad", "plugin"): "language.quad", ("quad", "fitted probe"): "language.quad"}


def _rows(task=None, free=None, task_name="logistic", **base):
    b = {**BASE, **base}
    out = [{**b, "task": "none", "metric": k, "value": v} for k, v in {**FREE, **(free or {})}.items()]
    out += [{**b, "task": task_name, "metric": k, "value": v} for k, v in {**TASK, **(task or {})}.items()]
    return pd.DataFrame(out)


def _many_points(n=12, seed=0):
    """Points of an xent and a Quad cell with random terms (some tasks not natural, one gamma < 1)."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n):
        task = {"tau": rng.uniform(0.2, 0.6), "B": rng.uniform(0.1, 3.0), "gamma": rng.choice([1.0, rng.uniform(0.05, 1)]),
                "tau_phi": rng.uniform(0.2, 0.6), "B_phi": rng.uniform(0.1, 3.0), "B_quad": rng.uniform(0.1, 3.0),
                "natural_gap": rng.uniform(0.0, 0.2)}
        free = {"eps": rng.uniform(0, 0.05), "eps_phi": rng.uniform(0, 0.05), "eps_quad": rng.uniform(0, 0.05),
                "eps_se": rng.uniform(0, 1e-3)}
        frames.append(_rows(task, free, step=i, model="quad" if i % 3 == 0 else "xent", cell=f"c{i % 3}"))
    return pd.concat(frames, ignore_index=True)


def test_registry_is_well_formed_and_each_theorem_has_its_documented_section():
    assert set(REGISTRY) == {"language.theorem_4_1", "language.theorem_4_2", "language.quad"}
    text = (ROOT / "docs" / "theory" / "language.md").read_text()
    # GitHub's anchor of a heading: lower case, punctuation other than '-' dropped, spaces to '-'
    anchors = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
               for h in re.findall(r"^#+ (.+)$", text, flags=re.M)}
    for t in th.THEOREMS:
        assert t.chapter == "language" and t.terms == ("tau", "B", "epsilon", "gamma")
        assert t.assumptions and t.assumptions[0] is th.NATURALNESS
        path, anchor = t.doc.split("#")
        assert path == "docs/theory/language.md" and anchor in anchors, (t.id, anchor, sorted(anchors))
        assert float(t.trivial_from({})) == pytest.approx(np.log(2.0))
    assert REGISTRY["language.quad"].status == "derived"
    assert {REGISTRY[i].status for i in ("language.theorem_4_1", "language.theorem_4_2")} == {"reconstructed"}


def test_every_row_names_its_theorem_and_bound_from_reproduces_bound_value():
    checks = lt.bound_checks(_many_points())
    assert set(zip(checks["bound"], checks["form"])) == set(MAPPING), "every (bound, form) is emitted"
    for (bound, form), g in checks.groupby(["bound", "form"]):
        assert (g["theorem"] == MAPPING[(bound, form)]).all()
    for tid, g in checks.groupby("theorem"):
        got = REGISTRY[tid].bound_from(g)
        np.testing.assert_allclose(got, g["bound_value"].to_numpy(), rtol=1e-12, atol=0)
        assert np.array_equal(got, g["bound_value"].to_numpy())
        # the recomputation really reads the terms: a changed epsilon changes it
        bumped = g.assign(epsilon=g["epsilon"] + 0.01)
        assert (REGISTRY[tid].bound_from(bumped) > got).all()
    # the terms are the bound's own: the quad rows read ||u||_2 and eps_quad, the softmax rows tau_Phi and eps_Phi
    q = checks[checks["bound"] == "quad"].iloc[0]
    src = _many_points().query("metric in ['B_quad', 'eps_quad'] and step == @q.step")
    assert q["B"] in set(src["value"]) and q["epsilon"] in set(src["value"])
    judged = bounds.judge(checks, REGISTRY)
    assert set(judged["kind"]) == {"bound"}


def test_naturalness_assumption_reports_the_gap_and_flips_at_gap_max():
    value, met = th.NATURALNESS.evaluate({"natural_gap": np.array([0.0, 0.1, 0.1 + 1e-9, 0.3, np.nan]),
                                          "gap_max": np.full(5, 0.1)})
    np.testing.assert_array_equal(value[:4], [0.0, 0.1, 0.1 + 1e-9, 0.3])
    assert met.tolist() == [True, True, False, False, False]
    at = bounds.judge(lt.bound_checks(_rows(task={"natural_gap": 0.1})), REGISTRY)
    above = bounds.judge(lt.bound_checks(_rows(task={"natural_gap": 0.1 + 1e-6})), REGISTRY)
    assert (at["assumption"] == "met").all() and (at["verdict"] != "assumption not met").all()
    assert (above["assumption"] == "not met").all() and (above["verdict"] == "assumption not met").all()
    assert above["assumption_checks"].str.startswith("naturalness gap = 0.100001: not met").all()
    assert at["assumption_checks"].str.startswith("naturalness gap = 0.1: met").all()
    # tau alone would not flag it: the same tau, B, epsilon, gamma and bound either side of the flip
    assert np.array_equal(at["bound_value"], above["bound_value"])


def test_a_row_on_a_probe_that_did_not_converge_is_undetermined():
    table = bounds.judge(lt.bound_checks(_rows(task={"probe_p_converged": 0.0})), REGISTRY).set_index(["bound", "form"])
    r = table.loc[("any_lm", "fitted probe")]
    assert not r["converged"] and r["verdict"] == "undetermined" and r["reason"] == "probe did not converge"
    assert table.loc[("any_lm", "plugin"), "verdict"] == "holds", "a plug-in row rests on no fit"
    assert table.loc[("softmax_phi", "fitted probe"), "converged"], "each fitted row reads its own probe's flag"
    quad = bounds.judge(lt.bound_checks(_rows(task={"probe_f_converged": 0.0}, model="quad")), REGISTRY)
    quad = quad.set_index(["bound", "form"])
    assert quad.loc[("quad", "fitted probe"), "verdict"] == "undetermined"
    assert quad.loc[("any_lm", "fitted probe"), "verdict"] != "undetermined"

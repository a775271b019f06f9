"""The language chapter's bound checks and slopes, on hand-made rows whose bound is known by hand."""
import math

import numpy as np
import pandas as pd

from analysis import bounds
from analysis import language as lt
from theory.language import THEOREMS
from theory.theorems import index

REGISTRY = index(THEOREMS)

BASE = {"cell": "c0", "kind": "lm", "model": "xent", "arch": "mlp", "phi": "learned", "d": 4, "target": "next",
        "level": 0.0, "tilt_task": "none", "seed": 0, "lr": 0.01, "step": 10, "feature": "none", "n": 0}
TASK = {"tau": 0.5, "tau_se": 0.0, "B": 2.0, "gamma": 0.5, "bayes": 0.5, "tau_check": 0.5, "natural_gap": 0.0,
        "gap_max": 0.1, "plugin_p": 0.55, "plugin_p_se": 0.0, "probe_p": 0.52, "probe_p_se": 0.0,
        "tau_phi": 0.52, "B_phi": 1.5, "resid_phi": 0.0, "plugin_phi": 0.56, "plugin_phi_se": 0.0,
        "probe_phi_p": 0.53, "probe_phi_p_se": 0.0, "probe_f": 0.54, "probe_f_se": 0.0,
        "probe_p_converged": 1.0, "probe_phi_p_converged": 1.0, "probe_f_converged": 1.0}
FREE = {"eps": 0.001, "eps_se": 0.0, "eps_phi": 0.004, "eps_phi_se": 0.0, "eps_quad": 0.002, "eps_quad_se": 0.0}


def _rows(task=None, free=None, task_name="logistic", **base):
    b = {**BASE, **base}
    out = [{**b, "task": "none", "metric": k, "value": v} for k, v in {**FREE, **(free or {})}.items()]
    out += [{**b, "task": task_name, "metric": k, "value": v} for k, v in {**TASK, **(task or {})}.items()]
    return pd.DataFrame(out)


def _one(table, bound, form):
    sel = table[(table["bound"] == bound) & (table["form"] == form)]
    assert len(sel) == 1, sel
    return sel.iloc[0]


def test_each_bound_is_tau_plus_sqrt_of_its_own_terms_and_verdicts_follow():
    table = bounds.judge(lt.bound_checks(_rows()), REGISTRY)
    r = _one(table, "any_lm", "plugin")
    assert np.isclose(r["bound_value"], 0.5 + math.sqrt(2 * 4 * 0.001 / 0.5))   # 0.6265
    assert (r["epsilon"], r["tau"], r["B"], r["gamma"]) == (0.001, 0.5, 2.0, 0.5)
    assert r["measured"] == 0.55 and r["verdict"] == "holds" and r["assumption"] == "met"
    assert r["theorem"] == "language.theorem_4_1" and r["kind"] == "bound"
    assert r["assumption_checks"] == "naturalness gap = 0: met"
    assert np.isclose(r["excess_slack"], math.sqrt(0.016) / 0.05)
    assert _one(table, "any_lm", "fitted probe")["measured"] == 0.52
    s = _one(table, "softmax_phi", "plugin")
    assert np.isclose(s["bound_value"], 0.52 + math.sqrt(2 * 1.5 ** 2 * 0.004 / 0.5))  # 0.7097 >= log 2
    assert s["verdict"] == "vacuous" and s["trivial"] == math.log(2) and s["theorem"] == "language.theorem_4_2"
    assert _one(table, "softmax_phi", "fitted probe")["measured"] == 0.53
    assert not (table["bound"] == "quad").any(), "the quad bound is checked on Quad-trained cells only"


def test_quad_bound_reads_the_l2_norm_and_eps_quad():
    table = lt.bound_checks(_rows(task={"B_quad": 1.2, "plugin_quad": 0.57, "plugin_quad_se": 0.0}, model="quad"))
    r = _one(table, "quad", "plugin")
    assert np.isclose(r["bound_value"], 0.52 + math.sqrt(2 * 1.2 ** 2 * 0.002 / 0.5))
    assert r["B"] == 1.2 and r["epsilon"] == 0.002 and r["measured"] == 0.57 and r["theorem"] == "language.quad"
    assert _one(table, "quad", "fitted probe")["measured"] == 0.54


def test_violation_needs_more_than_three_standard_errors():
    bad = bounds.judge(lt.bound_checks(_rows(task={"plugin_p": 0.66})), REGISTRY)
    assert _one(bad, "any_lm", "plugin")["verdict"] == "violated"
    noisy = bounds.judge(lt.bound_checks(_rows(task={"plugin_p": 0.66, "plugin_p_se": 0.02})), REGISTRY)
    assert _one(noisy, "any_lm", "plugin")["verdict"] == "holds"
    # an epsilon with an SE widens the bound's side too, through the sqrt
    r = _one(lt.bound_checks(_rows(free={"eps_se": 0.001})), "any_lm", "plugin")
    assert np.isclose(r["bound_se"], math.sqrt(2 * 4 / 0.5) * (math.sqrt(0.002) - math.sqrt(0.001)))


def test_a_task_that_fails_the_naturalness_check_is_not_met_never_violated():
    rows = _rows(task={"natural_gap": 0.3, "plugin_p": 0.9}, task_name="non_natural")
    checks = lt.bound_checks(rows)
    assert "assumption" not in checks, "the naturalness check is the theorems' declared assumption, not a column"
    table = bounds.judge(checks, REGISTRY)
    assert (table["assumption"] == "not met").all()
    assert table["assumption_checks"].str.fullmatch(r"naturalness gap = 0\.3: not met").all()
    assert (table["verdict"] == "assumption not met").all()
    table.insert(0, "experiment", "language")
    assert "n/a" in bounds.summary(table)  # its slack is left out of the median


def test_slopes_recover_eps_and_sqrt_eps_regimes_from_points():
    eps = np.geomspace(1e-5, 1e-1, 9)
    frames = []
    for i, e in enumerate(eps):
        for tilt_task in ("logistic", "deterministic"):
            point = {"kind": "ref", "model": "tilt", "arch": "none", "phi": "none", "level": float(i),
                     "tilt_task": tilt_task}
            for task, excess in (("logistic", 3 * e), ("deterministic", 0.5 * np.sqrt(e))):
                r = _rows(task={"plugin_p": 0.5 + excess * (1 if tilt_task == task else 10)}, free={"eps": e},
                          task_name=task, **point)
                frames.append(r if task == "logistic" else r[r["task"] != "none"])
    rows = pd.concat(frames, ignore_index=True)
    s = lt.slopes(rows).set_index(["task", "family"])
    assert np.isclose(s.loc[("logistic", "tilt"), "slope"], 1.0)
    assert np.isclose(s.loc[("deterministic", "tilt"), "slope"], 0.5)
    assert np.isclose(np.exp(s.loc[("logistic", "tilt"), "intercept"]), 3.0), "a tilt counts for its own task only"
    slope, _, n = lt.fit_slope(np.array([1e-3, 0.0, 1e-2]), np.array([1e-3, 1e-4, -1.0]))
    assert n == 1 and np.isnan(slope)


def test_step_zero_and_frozen_phi_checkpoints_stay_out_of_figure_one():
    rows = pd.concat([_rows(step=0), _rows(step=10), _rows(step=10, phi="frozen", cell="c1")], ignore_index=True)
    pts = lt.excess_points(rows)
    assert len(pts) == 1 and pts["step"].iloc[0] == 10 and pts["phi"].iloc[0] == "learned"
    assert np.isclose(pts["excess"].iloc[0], 0.05)


def test_a_missing_standard_error_is_nan_and_undetermined_never_a_silent_zero():
    rows = _rows()
    rows = rows[rows["metric"] != "plugin_p_se"]
    table = bounds.judge(lt.bound_checks(rows), REGISTRY)
    r = _one(table, "any_lm", "plugin")
    assert np.isnan(r["measured_se"]) and r["verdict"] == "undetermined"
    assert _one(table, "any_lm", "fitted probe")["verdict"] == "holds"


def test_bound_checks_do_not_import_the_figures_and_the_figures_map_lives_with_them():
    import subprocess
    import sys
    code = ("import sys, analysis.language as lt; lt.bound_checks; "
            "assert 'analysis.language_figures' not in sys.modules, 'analysis.language imported its figures'; "
            "assert not hasattr(lt, 'FIGURES')")
    subprocess.run([sys.executable, "-c", code], check=True)
    from analysis import language_figures
    assert list(language_figures.FIGURES) == ["bound", "training", "feature_types", "quad", "non_natural",
                                              "masked", "softmax", "frontier"]
    assert all(callable(f) and f.__module__ == "analysis.language_figures" for f in language_figures.FIGURES.values())


def test_model_kind_labels_each_kind_of_point():
    def one(**base):
        return _rows(**base)
    cases = [
        (one(kind="lm", model="xent", step=10), "trained"),
        (one(kind="lm", model="xent_full", phi="frozen", step=600), "trained"),
        (one(kind="lm", model="hmm_em", arch="none", phi="none", d=0, step=120), "trained"),
        (one(kind="ref", model="kgram", arch="none", phi="none", d=0, step=0, level=2.0), "trained"),
        (one(kind="lm", model="xent", step=0), "untrained"),
        (one(kind="ref", model="noise", arch="none", phi="none", step=0, level=0.0), "oracle"),
        (one(kind="ref", model="softmax_noise", phi="frozen", step=0, level=0.0), "oracle"),
        (one(kind="ref", model="tilt", arch="none", phi="none", step=0, level=0.3), "constructed"),
        (one(kind="ref", model="softmax_noise", phi="frozen", step=0, level=0.01), "constructed"),
    ]
    for rows, want in cases:
        table = lt.bound_checks(rows)
        assert len(table) and (table["model_kind"] == want).all(), (rows.iloc[0][["kind", "model"]], want)
    bad = _rows(kind="ref", model="mystery", step=0)
    try:
        lt.bound_checks(bad)
    except ValueError as e:
        assert "model" in str(e) and "mystery" in str(e)
    else:
        raise AssertionError("an unknown model got a model_kind")


def test_covariance_gamma_rows_sit_beside_the_min_ratio_rows_where_the_laws_differ():
    rows = _rows(task={"gamma": 0.01, "gamma_cov": 0.2, "gamma_cov_phi": 0.3}, task_name="prompt")
    table = lt.bound_checks(rows)
    for bound in ("any_lm", "softmax_phi"):
        for form in ("plugin", "fitted probe"):
            s = table[(table["bound"] == bound) & (table["form"] == form)].set_index("gamma_form")
            assert set(s.index) == {"min", "cov"}
            assert s.loc["min", "gamma"] == 0.01 and s.loc["cov", "gamma_min"] == 0.01
            assert s.loc["cov", "gamma"] == (0.2 if bound == "any_lm" else 0.3)
            assert s.loc["cov", "bound_value"] < s.loc["min", "bound_value"]
    # a task on the LM's own law carries no covariance metric: min-ratio rows only
    assert set(lt.bound_checks(_rows())["gamma_form"]) == {"min"}


def test_eps_star_is_where_the_bound_meets_log_2():
    for tau, B, gamma in ((0.28, 2.0, 1.0), (0.51, 2.0, 1.0), (0.4, 1.3, 0.01)):
        star = lt.eps_star(tau, B, gamma)
        assert math.isclose(tl_bound(tau, B, star, gamma), math.log(2), rel_tol=1e-12)
    # the numbers: B = 2, gamma = 1
    got = [lt.eps_star(t, 2.0, 1.0) for t in (0.28, 0.37, 0.45, 0.51)]
    assert np.allclose(got, [0.021, 0.013, 0.0074, 0.0042], rtol=0.05)
    assert lt.eps_star(0.7, 2.0, 1.0) == 0.0


def tl_bound(tau, B, eps, gamma):
    from theory.language import bound
    return bound(tau, B, eps, gamma)

"""Self-prediction experiment: config validation, cells, learners against closed forms, determinism, and the quick
profile end to end (every figure, the bounds.csv columns)."""
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from analysis import self_prediction as sp
from analysis.bounds import judge
from experiments.engine import cli
from experiments.engine import chapters
from experiments.engine import config as config_mod
from experiments.self_prediction import PretextSpec, cells, cost, run_cell
from experiments.self_prediction.learners import fit, lstsq_intercept
from synthetic_data.self_prediction import DataSpec, build_model
from theory import self_prediction as th
from theory.theorems import index

EXP = "self_prediction"

BAD = [
    (["bogus=1"], "bogus"),
    (["pretext.stepz=5"], "pretext.stepz"),
    (["pretext.steps=abc"], "pretext.steps"),
    (["pretext.steps=1.5"], "pretext.steps"),
    (["seeds=true"], "seeds"),
    (["seeds=0"], "seeds"),
    (["data.class_probs=[0.5, 0.3, 0.1]"], "class_probs"),      # quick has k = 3: sums to 0.9
    (["data.class_probs=[0.5, 0.5]"], "class_probs"),           # wrong length
    (["data.d1=0"], "data.d1"),
    (["data.family=nuisance"], "data.family"),
    (["eval.n_fixed=7"], "eval.n_fixed"),
    (["eval.probe_n=[20, 10]"], "eval.probe_n"),
    (["eval.target_fraction=1.5"], "eval.target_fraction"),
    (["pretext.mask_frac=1.0"], "pretext.mask_frac"),
    (["sample_complexity.learners=['dae']"], "sample_complexity.learners"),
    (["sample_complexity.families=['gaussian']"], "sample_complexity.families"),
    (["pretext_budget.learners=['cnn']"], "pretext_budget.learners"),
    (["approx_ci.alphas=[0.5, 0.2]"], "approx_ci.alphas"),
    (["approx_ci.alphas=[1.5]"], "approx_ci.alphas"),
    (["violation.nuisance_scales=[-1.0]"], "violation.nuisance_scales"),
    (["dimension.d1=[0, 4]"], "dimension.d1"),
]


@pytest.mark.parametrize("overrides,field", BAD, ids=[b[1] + str(i) for i, b in enumerate(BAD)])
def test_bad_config_names_the_field_and_runs_nothing(tmp_path, capsys, overrides, field):
    out = tmp_path / "results"
    argv = ["run", EXP, "--profile", "quick", "--out", str(out), "--jobs", "1"]
    for o in overrides:
        argv += ["--set", o]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "config error" in err and field in err, err
    assert err.count("\n") == 1
    assert not out.exists()


def test_every_profile_loads_and_cells_are_merged_by_data_and_budget():
    for profile in config_mod.PROFILES:
        cfg = chapters.load_config(EXP, profile)
        cs = cells(cfg)
        keys = [(c.data, c.pretext.n1) for c in cs]
        assert len(keys) == len(set(keys)), "one cell per (data spec, n1)"
        assert all(cost(c) > 0 for c in cs)
    cfg = chapters.load_config(EXP, "quick")
    base = [c for c in cells(cfg) if c.data == cfg.data and c.pretext.n1 == cfg.pretext.n1]
    assert len(base) == 1
    # the base cell serves every study that uses the base data at the base budget, with the union of learners
    assert {"sample_complexity", "objectives", "pretext_budget"} <= set(base[0].studies)
    assert set(cfg.objectives.learners) | set(cfg.sample_complexity.learners) <= set(base[0].learners)
    approx = [c for c in cells(cfg) if c.data.family == "approx_ci"]
    assert sorted(c.data.alpha for c in approx) == sorted(cfg.approx_ci.alphas)
    assert all(c.data.m == cfg.approx_ci.m for c in approx)
    topic = [c for c in cells(cfg) if c.data.family == "topic"]
    assert all(c.data.d1 == c.data.d2 == cfg.topic_vocab for c in topic)


# ----------------------------------------------------------------------------------------------- learners
def test_lstsq_intercept_matches_numpy_per_problem_with_padding_and_ridge():
    rng = np.random.default_rng(0)
    B, N, p, q = 3, 30, 4, 2
    X, Y = rng.normal(size=(B, N, p)), rng.normal(size=(B, N, q))
    ns = [8, 30, 3]                                   # 3 rows < p + 1: min-norm solution
    w = (np.arange(N)[None] < np.array(ns)[:, None]).astype(float)
    coef, icpt = lstsq_intercept(torch.tensor(X), torch.tensor(Y), torch.tensor(w))
    for b, n in enumerate(ns):
        Xc = X[b, :n] - X[b, :n].mean(0)
        ref = np.linalg.pinv(Xc) @ (Y[b, :n] - Y[b, :n].mean(0))
        assert np.allclose(coef[b].numpy(), ref, atol=1e-10)
        assert np.allclose(icpt[b, 0].numpy(), Y[b, :n].mean(0) - X[b, :n].mean(0) @ ref, atol=1e-10)
    lam = 2.5
    coef, icpt = lstsq_intercept(torch.tensor(X), torch.tensor(Y), ridge=lam)
    Xc, Yc = X[0] - X[0].mean(0), Y[0] - Y[0].mean(0)
    assert np.allclose(coef[0].numpy(), np.linalg.solve(Xc.T @ Xc + lam * np.eye(p), Xc.T @ Yc), atol=1e-10)


def test_rff_ridge_from_chunked_moments_equals_the_direct_solve(monkeypatch):
    import experiments.self_prediction.learners as L
    rng = np.random.default_rng(4)
    x1, x2 = torch.tensor(rng.normal(size=(2, 50, 3))), torch.tensor(rng.normal(size=(2, 50, 2)))
    spec = PretextSpec(n1=50, rff_features=16, rff_ridge=0.01)
    monkeypatch.setattr(L, "CHUNK", 7)   # several chunks, the last one short
    phi = L.fit_rff(x1, x2, spec, [torch.Generator().manual_seed(s) for s in (0, 1)], "cpu")
    # the same random features, drawn again from the same generators, then one direct ridge solve
    gens = [torch.Generator().manual_seed(s) for s in (0, 1)]
    h = L.median_distance(x1)
    W = torch.stack([torch.randn(3, 16, generator=g, dtype=torch.float64) for g in gens]) / h[:, None, None]
    c = torch.stack([torch.rand(1, 16, generator=g, dtype=torch.float64) for g in gens]) * (2 * np.pi)
    z = np.sqrt(2 / 16) * torch.cos(x1 @ W + c)
    coef, icpt = lstsq_intercept(z, x2, ridge=0.01 * 50)
    x = torch.tensor(rng.normal(size=(1, 20, 3)))
    direct = np.sqrt(2 / 16) * torch.cos(x @ W + c) @ coef + icpt
    assert np.allclose(phi(x).numpy(), direct.numpy(), atol=1e-10)


def test_probe_equals_a_numpy_ols_fit_per_seed_and_size():
    """The batched probe (every seed and n in one padded solve) against one numpy least squares per (seed, n)."""
    from experiments.self_prediction.run import _pca, _probe
    rng = np.random.default_rng(3)
    S, n_max, q, k, n_test = 2, 40, 5, 3, 200
    ns = [4, 9, 40]
    # features on a 2-dim affine subspace of R^5: the PCA to r = 2 keeps all of it
    basis = rng.normal(size=(2, q))
    Fall = rng.normal(size=(S, n_max + n_test, 2)) @ basis + rng.normal(size=q)
    y = rng.integers(0, k, size=(S, n_max))
    Y = np.eye(k)[y]
    f_te = rng.dirichlet(np.ones(k), size=n_test)
    y_te = rng.integers(0, k, size=n_test)
    F = torch.tensor(Fall)
    mean, V = _pca(F[:, :n_max], 2)
    Ftr, Fte = (F[:, :n_max] - mean) @ V, (F[:, n_max:] - mean) @ V
    er, acc = _probe(Ftr, torch.tensor(Y), ns, Fte, f_te, y_te)
    for s in range(S):
        for j, n in enumerate(ns):
            Z = np.hstack([np.ones((n, 1)), Fall[s, :n]])
            coef = np.linalg.pinv(Z) @ Y[s, :n]   # min-norm, like the probe where n <= p + 1
            pred = np.hstack([np.ones((n_test, 1)), Fall[s, n_max:]]) @ coef
            if n > 3:   # unique fit: the reduced and unreduced features give the same predictions
                assert np.isclose(er[s, j], ((pred - f_te) ** 2).sum(1).mean(), rtol=1e-8)
                assert np.isclose(acc[s, j], (pred.argmax(1) == y_te).mean())


def _pretext(model, n1, seeds):
    pre = [model.sample(n1, np.random.default_rng(100 + s)) for s in seeds]
    return torch.tensor(np.stack([p[0] for p in pre])), torch.tensor(np.stack([p[1] for p in pre]))


def test_ols_pretext_error_matches_the_gaussian_design_closed_form():
    """With no class signal (separation 0) the nuisance family has psi*(x1) = G x1, linear, and (X1, X2) jointly
    Gaussian. OLS with an intercept then has E eps_pre^2 = tr(Sigma_{22|1}) (1/n1 + (1 + 1/n1) d1/(n1 - d1 - 2))
    [derived; the known-mean form d1/(n1 - d1 - 1), without intercept, is rejected here]."""
    spec = DataSpec(family="nuisance", k=2, d1=6, d2=4, separation=0.0, nuisance_rank=2, nuisance_scale=1.5)
    model = build_model(spec, np.random.default_rng(1))
    cov22 = model.L2 @ model.L2.T + spec.noise2 ** 2 * np.eye(spec.d2)
    cond = np.trace(cov22 - model.L2 @ model.L1.T @ model.S1_inv @ model.L1 @ model.L2.T)
    x_te, _, _ = model.sample(5000, np.random.default_rng(7))
    psi = model.psi_star(x_te)
    seeds, d1 = range(200), spec.d1
    for n1 in (14, 40):
        x1, x2 = _pretext(model, n1, seeds)
        phi = fit("linear", x1, x2, PretextSpec(n1=n1), [torch.Generator() for _ in seeds])
        eps = ((phi(torch.tensor(x_te)[None]).numpy() - psi) ** 2).sum(-1).mean(-1)
        se = eps.std(ddof=1) / np.sqrt(len(eps))
        expect = cond * (1 / n1 + (1 + 1 / n1) * d1 / (n1 - d1 - 2))
        assert abs(eps.mean() - expect) < 3 * se + 0.01 * expect, (n1, eps.mean(), expect)
        assert abs(eps.mean() - cond * d1 / (n1 - d1 - 1)) > 3 * se, "must tell the intercept form apart"


def test_nonlinear_learners_recover_psi_star_where_linear_cannot():
    """Exact-CI Gaussian data in low dimension: psi* = A^T softmax(.) is not linear in x1. The OLS pretext error
    shrinks with n1 only to its misspecification floor, RFF and the MLP go well below it, and the hidden layers
    of the DAE and masked prediction carry f* (e_apx far below the trivial risk)."""
    model = build_model(DataSpec(k=2, d1=3, d2=3, separation=3.0, noise2=0.5), np.random.default_rng(0))
    x_te, _, _ = model.sample(3000, np.random.default_rng(9))
    psi, f = model.psi_star(x_te), model.posterior(x_te)
    spec = PretextSpec(n1=3000, steps=600, width=32, lr=0.01)
    seeds = [0, 1]

    def pre_error(name, n1):
        x1, x2 = _pretext(model, n1, seeds)
        phi = fit(name, x1, x2, replace(spec, n1=n1), [torch.Generator().manual_seed(s) for s in seeds])
        feats = phi(torch.tensor(x_te)[None]).numpy()
        return feats, ((feats - psi) ** 2).sum(-1).mean() if feats.shape[-1] == psi.shape[-1] else np.nan

    lin_small, lin_big = pre_error("linear", 30)[1], pre_error("linear", 3000)[1]
    assert lin_big < 0.7 * lin_small
    for name in ("rff", "mlp"):
        assert pre_error(name, 3000)[1] < 0.3 * lin_big, name
    trivial = th.trivial_risk(f)
    for name in ("dae", "masked"):
        feats, _ = pre_error(name, 3000)
        assert feats.shape == (2, 3000, spec.width)
        assert max(th.approx_error(feats[s], f) for s in range(2)) < 0.1 * trivial, name


# ----------------------------------------------------------------------------------------------- determinism
def _small_cell(seeds=(0, 1)):
    cfg = chapters.load_config(EXP, "quick", ["pretext.steps=30", "eval.n_test=300"])
    cell = [c for c in cells(cfg) if c.data == cfg.data and c.pretext.n1 == cfg.pretext.n1][0]
    return replace(cell, seeds=tuple(seeds))


def test_same_cell_twice_gives_identical_rows_and_seeds_change_them():
    cell = _small_cell()
    a, b = run_cell(cell, config_mod.config_hash(cell)), run_cell(cell, config_mod.config_hash(cell))
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    fulls = {f"{l}_full" for l in cell.learners if l in ("linear", "rff", "mlp", "softmax")}
    assert set(a["representation"]) == {"data", "psi_star", "psi_star_full", "raw", *cell.learners, *fulls}
    er = a[a["metric"] == "er"].pivot_table(index=["representation", "n"], columns="seed", values="value")
    assert not np.allclose(er[0], er[1]), "two seeds must differ (else randomness is ignored)"


def test_a_seeds_numbers_do_not_depend_on_the_other_seeds_in_its_batch():
    both, alone = _small_cell((0, 1)), _small_cell((1,))
    a = run_cell(both, config_mod.config_hash(both))
    b = run_cell(alone, config_mod.config_hash(alone))
    key = ["representation", "n", "metric"]
    a1 = a[a["seed"] == 1].set_index(key)["value"].sort_index()
    b1 = b[b["seed"] == 1].set_index(key)["value"].sort_index()
    assert a1.index.equals(b1.index)
    assert np.allclose(a1.to_numpy(), b1.to_numpy(), rtol=1e-4, atol=1e-7)


def test_quick_profile_end_to_end_every_figure(quick_results, quick_figures):
    a = quick_results(EXP)   # jobs 1 = jobs 2 is checked in test_chapters.py
    fig, _, _ = quick_figures(EXP)   # the session's `sslt figures self_prediction` of that run
    names = list(chapters.get(EXP).figures)
    assert names == ["sample_complexity", "dimension", "approx_ci", "pretext_budget", "violation", "objectives",
                     "frontier"]
    for name in names:
        for ext in ("png", "pdf"):
            path = fig / EXP / f"{name}.{ext}"
            assert path.exists(), path  # content is checked in test_chapters.py; a size proves nothing
    table = pd.read_csv(a / "bounds.csv")
    table = table[table["experiment"] == EXP]
    for col in ("bound", "form", "measured", "measured_se", "bound_value", "bound_se", "trivial", "verdict", "slack",
                "k", "d1", "n", "epsilon_CI", "sigma2", "beta", "eps_pre", "p"):
        assert col in table.columns, col
    assert {"exact_ci", "approx_ci", "learned", "raw_baseline"} <= set(table["bound"])
    refs = table["kind"] == "reference"
    assert set(table.loc[~refs, "verdict"]) <= {"holds", "violated", "vacuous", "assumption not met", "undetermined"}
    assert set(table.loc[refs, "verdict"]) <= {"above reference", "below reference", "assumption not met",
                                               "undetermined"}
    exact = table[table["bound"] == "exact_ci"]
    # the exact-CI form applies exactly where the generator is CI given Y, and nowhere else
    assert (exact[exact["family"].isin(["exact_ci", "nonlinear", "topic"])]["assumption"] == "met").all()
    broken = exact[(exact["family"] == "nuisance") & (exact["nuisance_scale"] > 0)]
    assert len(broken) and (broken["verdict"] == "assumption not met").all()


# ------------------------------------------------------------------------------------- the softmax head, model_kind
def test_softmax_head_is_well_specified_where_the_linear_psi_is_not():
    """exact-CI Gaussian views: psi* = A^T softmax(W x1 + b) is in the softmax head's class, so its pretext error
    falls far below the OLS psi's misspecification floor at the same n1."""
    model = build_model(DataSpec(k=3, d1=4, d2=4, separation=3.0), np.random.default_rng(0))
    x_te, _, _ = model.sample(3000, np.random.default_rng(9))
    psi = model.psi_star(x_te)
    x1, x2 = _pretext(model, 5000, [0, 1])
    spec = PretextSpec(n1=5000, softmax_atoms=model.n_latent)
    gens = [torch.Generator().manual_seed(s) for s in (0, 1)]
    err = {name: ((fit(name, x1, x2, spec, gens)(torch.tensor(x_te)[None]).numpy() - psi) ** 2).sum(-1).mean(-1)
           for name in ("linear", "softmax")}
    assert err["softmax"].max() < 0.2 * err["linear"].min(), err
    with pytest.raises(ValueError, match="^softmax_atoms"):
        fit("softmax", x1, x2, PretextSpec(n1=5000), gens)


def test_a_trained_psi_makes_theorem_4_2_population_informative():
    """The default approx_ci spec at alpha = 0 with the default pretext budget (n1 = 30 000): the softmax head's
    eps_pre is about 0.3 with beta about 1.5 here, so its PCA-reduced population bound 4 (eps_pre / beta)^2 is
    about 0.2 against a trivial risk of about 0.7, and it holds (a linear psi's eps_pre of 0.7-2.5 is vacuous)."""
    cfg = chapters.load_config(EXP, "default", ["seeds=2", "eval.n_test=2000", "approx_ci.alphas=[0.0]",
                                                "approx_ci.learners=['softmax']", "sample_complexity.enabled=false",
                                                "dimension.enabled=false", "pretext_budget.enabled=false",
                                                "violation.enabled=false", "objectives.enabled=false"])
    cell, = cells(cfg)
    rows = run_cell(cell, config_mod.config_hash(cell)).assign(cell="c")
    checks = judge(sp.bound_checks(rows), index(th.THEOREMS))
    pop = checks[(checks["theorem"] == "self_prediction.theorem_4_2_population") & (checks["model_kind"] == "trained")]
    reduced = pop[pop["representation"] == "softmax"].iloc[0]
    assert 0.15 < reduced["eps_pre"] < 0.45 and 1.1 < reduced["beta"] < 2.4, reduced[["eps_pre", "beta"]]
    assert reduced["bound_value"] < 0.5 * reduced["trivial"] and reduced["verdict"] == "holds", reduced["bound_value"]
    assert (pop["verdict"] == "holds").all()


def test_model_kind_labels_psi_star_oracle_raw_untrained_and_every_learner_trained(quick_results):
    table = pd.read_csv(quick_results(EXP) / "bounds.csv")
    table = table[table["experiment"] == EXP]
    kinds = table.groupby("representation")["model_kind"].unique().map(lambda v: tuple(sorted(v)))
    assert kinds["psi_star"] == kinds["psi_star_full"] == ("oracle",) and kinds["raw"] == ("untrained",)
    learned = [r for r in kinds.index if r.removesuffix("_full") in ("linear", "rff", "mlp", "softmax", "dae",
                                                                      "masked")]
    assert {"linear", "softmax", "softmax_full", "mlp"} <= set(learned)
    assert all(kinds[r] == ("trained",) for r in learned)
    assert set(kinds.index) == {"psi_star", "psi_star_full", "raw", *learned}
    # the chapter's promise on the quick profile: a trained psi holds for the population form
    pop = table[(table["theorem"] == "self_prediction.theorem_4_2_population") & (table["model_kind"] == "trained")]
    assert (pop["verdict"] == "holds").sum() >= 1

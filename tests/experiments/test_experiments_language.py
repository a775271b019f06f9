"""The language chapter's experiments: config errors, cells, LMs, reference models, determinism, end to end."""
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from experiments.engine import cli, runner
from experiments.engine import chapters
from experiments.engine import config as config_mod
from experiments import language as L
from experiments.language.eval import World
from experiments.language.models import LM, KGram, logit_noise, noise_direction, tilt
from experiments.engine.rng import torch_generator
from theory import language as th

ONLY = ["bound.enabled=false", "training.enabled=false", "quad.enabled=false", "masked.enabled=false"]


def _cfg(overrides=()):
    return chapters.load_config("language", "quick", list(overrides))


def _cell(overrides, **match):
    found = [c for c in L.cells(_cfg(overrides)) if all(getattr(c, k) == v for k, v in match.items())]
    assert len(found) == 1, found
    return found[0]


def _metric(rows: pd.DataFrame, metric: str, task: str = "none") -> pd.DataFrame:
    return rows[(rows["metric"] == metric) & (rows["task"] == task) & (rows["feature"] == "none")]


# ---------------------------------------------------------------------------------------------- config
BAD = [
    (["lm.widht=3"], "lm.widht"),                      # unknown key
    (["train.steps=abc"], "train.steps"),              # wrong type
    (["seeds=true"], "seeds"),
    (["tasks.B=-1.0"], "tasks.B"),                     # bad values
    (["tasks.gap_max=0.0"], "tasks.gap_max"),
    (["tasks.kinds=['logistic', 'bogus']"], "tasks.kinds"),
    (["lm.n_layers=3"], "lm.n_layers"),
    (["lm.n_heads=3"], "lm.n_heads"),
    (["masked.position=3"], "masked.position"),
    (["data.vocab=1"], "data.vocab"),
    (["data.family=zipf"], "data.family"),
    (["tasks.prompt=[9]"], "tasks.prompt"),
    (["bound.noise_eta=[0.3, 0.1]"], "bound.noise_eta"),
    (["bound.softmax_eta=[-0.1]"], "bound.softmax_eta"),
    (["bound.kgram_orders=[0, 4]"], "bound.kgram_orders"),
    (["training.phi=['learned', 'tied']"], "training.phi"),
    (["quad.d=8"], "quad.d"),
    (["train.batch_size=100000"], "train.batch_size"),
    (["eval.probe_n=[30, 10]"], "eval.probe_n"),
]


@pytest.mark.parametrize("overrides,field", BAD, ids=[b[1] + str(i) for i, b in enumerate(BAD)])
def test_bad_config_names_the_field(tmp_path, capsys, overrides, field):
    out = tmp_path / "results"
    argv = ["run", "language", "--profile", "quick", "--out", str(out), "--jobs", "1"]
    for o in overrides:
        argv += ["--set", o]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "config error" in err and field in err, err
    assert not out.exists()


def test_every_profile_loads_and_studies_share_cells():
    for profile in config_mod.PROFILES:
        cfg = chapters.load_config("language", profile)
        cells = L.cells(cfg)
        ids = [config_mod.config_hash(c) for c in cells]
        assert len(ids) == len(set(ids)), "a run two studies need is one cell"
        assert all(L.cost(c) > 0 for c in cells)
    cfg = _cfg()
    cells = L.cells(cfg)
    # figure 1's trained LM is the training study's mlp/learned cell, which also draws probe curves
    shared = [c for c in cells if c.model == "xent" and c.arch == cfg.lm.arch and c.phi == "learned"
              and c.d == cfg.lm.d]
    assert len(shared) == 1 and shared[0].probe_curves
    # Quad has its cross-entropy partner at the same d
    assert {c.model for c in cells if c.d == cfg.quad.d} == {"quad", "xent"}


# --------------------------------------------------------------------------------------------- models
@pytest.mark.parametrize("arch", ["mlp", "transformer"])
def test_batched_lm_models_are_independent_and_seeded_per_model(arch):
    lm = LM(arch, V=6, L=3, d=4, embed_dim=8, width=16, n_layers=2, n_heads=2)
    gens = lambda: [torch_generator("ab", s, "init") for s in (0, 1, 2)]  # noqa: E731
    p = lm.init(gens(), learn_phi=True)
    alone = lm.init([torch_generator("ab", 1, "init")], learn_phi=True)
    for k in p:
        assert torch.equal(p[k][1:2], alone[k]), k
    words = torch.randint(0, 7, (5, 3), generator=torch.Generator().manual_seed(0))
    f = lm.features(p, words)
    assert f.shape == (3, 5, 4)
    assert torch.allclose(f[1:2], lm.features(alone, words), atol=1e-5)
    q = {k: v.clone() for k, v in p.items()}
    for v in q.values():
        v[2].add_(1.0)  # perturb model 2 only
    f2 = lm.features(q, words)
    assert torch.equal(f2[:2], f[:2]) and not torch.allclose(f2[2], f[2])
    # per-model words: model g reads row block g only
    per = torch.stack([words, words.flip(0), words])
    assert torch.allclose(lm.features(p, per)[1], f[1].flip(0), atol=1e-5)


def test_reference_models_at_zero_are_p_star_and_move_as_designed():
    rng = np.random.default_rng(0)
    P = rng.dirichlet(np.ones(6) * 0.5, size=200)
    words = rng.integers(0, 6, size=(200, 3))
    R = rng.standard_normal((3, 6, 6))
    g = noise_direction(words, R)
    assert np.allclose(noise_direction(words[::-1], R), g[::-1]), "g is a function of the context"
    assert abs(g.std() - 1) < 0.1
    assert np.allclose(logit_noise(P, g, 0.0), P)
    eps = [th.epsilon(P, logit_noise(P, g, eta))[0] for eta in (0.0, 0.1, 0.3, 1.0)]
    assert eps[0] < 1e-15 and np.all(np.diff(eps) > 0)
    v = rng.uniform(-1, 1, 6)
    sign = np.where(rng.random(200) < 0.5, -1.0, 1.0)
    assert np.allclose(tilt(P, v, sign, 0.0), P)
    vp = [sign * (tilt(P, v, sign, eta) @ v) for eta in (0.0, 0.5, 2.0)]
    assert np.all(vp[1] < vp[0]) and np.all(vp[2] < vp[1]), "the tilt pushes v.p against the sign"
    # masked: the masked position does not enter g
    w2 = words.copy()
    w2[:, 1] = (w2[:, 1] + 1) % 6
    assert np.allclose(noise_direction(w2, R, skip=1), noise_direction(words, R, skip=1))


def test_kgram_counts_against_brute_force():
    rng = np.random.default_rng(1)
    docs = rng.integers(0, 3, size=(40, 5))
    for order in (0, 1, 2):
        model = KGram(docs, order, 3, alpha=0.5)
        ctx = rng.integers(0, 3, size=(10, 3))
        got = model.predict(ctx)
        for i, c in enumerate(ctx):
            tail = tuple(c[3 - order:])
            counts = np.zeros(3)
            for d in docs:
                for t in range(order, 5):
                    if tuple(d[t - order:t]) == tail:
                        counts[d[t]] += 1
            assert np.allclose(got[i], (counts + 0.5) / (counts.sum() + 1.5))


def test_logit_noise_cell_eps_is_zero_at_eta_zero_and_grows_with_eta():
    cell = _cell(ONLY[1:], model="noise", target="next")
    rows = L.run_cell(cell, config_mod.config_hash(cell))
    eps = _metric(rows, "eps").pivot_table(index="level", columns="seed", values="value")
    assert (eps.loc[0.0].abs() < 1e-14).all()
    assert (np.diff(eps.to_numpy(), axis=0) > 0).all()
    # and the plug-in excess on the logistic task is 0 at eta = 0, positive after (well-specified labels)
    m = rows[rows["task"] == "logistic"].pivot_table(index=["level", "seed"], columns="metric", values="value")
    excess = (m["plugin_p"] - m["tau"]).groupby("level").mean()
    assert abs(excess.loc[0.0]) < 1e-14 and (excess.drop(0.0) > 0).all()
    # every population probe records whether its solver converged, as 1.0 / 0.0 next to its loss
    assert m["probe_p_converged"].notna().all() and m["probe_p_converged"].isin([0.0, 1.0]).all()
    assert m["probe_p_converged"].eq(1.0).any()


def test_in_class_softmax_references_start_at_the_best_lm_for_phi():
    """At eta = 0 the softmax reference is the best LM with the frozen Phi: epsilon_Phi = 0 (moment matching) while
    epsilon > 0 (Phi has d < V rows); epsilon_Phi then grows with eta, and the softmax bound holds at every level."""
    cell = _cell(ONLY[1:], model="softmax_noise")
    assert cell.phi == "frozen" and cell.d > 0
    rows = L.run_cell(cell, config_mod.config_hash(cell))
    eps_phi = _metric(rows, "eps_phi").pivot_table(index="level", columns="seed", values="value")
    eps = _metric(rows, "eps").pivot_table(index="level", columns="seed", values="value")
    assert (eps_phi.loc[0.0].abs() < 1e-9).all() and (eps.loc[0.0] > 1e-6).all()
    assert (np.diff(eps_phi.to_numpy(), axis=0) > 0).all()
    m = rows[rows["task"] == "logistic"].pivot_table(index=["level", "seed"], columns="metric", values="value")
    # plug-in loss of v_Phi on Phi p_f at the in-class optimum is tau_Phi exactly (Phi p_theta* = Phi p*)
    at0 = m.xs(0.0, level="level")
    assert np.allclose(at0["plugin_phi"], at0["tau_phi"], atol=1e-9)
    from theory.language import bound
    eps_by = _metric(rows, "eps_phi").set_index(["level", "seed"])["value"]
    lhs = m["plugin_phi"]
    rhs = [bound(t, b, e, 1.0) for t, b, e in zip(m["tau_phi"], m["B_phi"], eps_by.loc[m.index])]
    assert (lhs.to_numpy() <= np.asarray(rhs) + 1e-12).all()


EASY = ["seeds=2", "data.family=sparse", "data.n_states=3", "data.vocab=5", "data.context_len=2",
        "data.determinism=0.95", "train.steps=200", "train.n_checkpoints=5", "train.n_train=1500",
        "bound.enabled=false", "quad.enabled=false", "masked.enabled=false", "training.archs=['mlp']",
        "training.phi=['learned']", "training.probe_curves=false", "lm.d=4"]


def test_trained_lm_eps_decreases_along_training_and_runs_are_deterministic():
    cell = _cell(EASY, model="xent")
    cid = config_mod.config_hash(cell)
    rows = L.run_cell(cell, cid)
    eps = _metric(rows, "eps").pivot_table(index="step", columns="seed", values="value")
    assert eps.shape == (5, 2)
    first, last = eps.iloc[0], eps.iloc[-1]
    assert (last < 0.2 * first).all(), eps
    assert (eps.iloc[:-1].min() > last).all(), "the last checkpoint is the best"
    # Phi p_f is in the class softmax(Phi^T .): eps_Phi <= eps
    assert (_metric(rows, "eps_phi")["value"].to_numpy() <= _metric(rows, "eps")["value"].to_numpy() + 1e-12).all()
    again = L.run_cell(cell, cid)
    pd.testing.assert_frame_equal(rows, again)
    other = L.run_cell(replace(cell, seeds=(0, 5)), cid)
    assert not np.allclose(_metric(other, "eps")["value"], _metric(rows, "eps")["value"])


def test_quad_training_recovers_the_top_d_eigenspace():
    cell = _cell(ONLY[:2] + ONLY[3:] + ["train.steps=300", "quad.d=2"], model="quad")
    rows = L.run_cell(cell, config_mod.config_hash(cell))
    angles = rows[rows["metric"].str.startswith("angle_")].groupby(["seed", "step"])["value"].max().unstack("step")
    first, last = angles.iloc[:, 0], angles.iloc[:, -1]
    assert (np.degrees(last) < 10).all(), np.degrees(angles)
    assert (np.degrees(first) > 30).all()
    # and its epsilon_quad falls to near the best f for its Phi
    eq = _metric(rows, "eps_quad").pivot_table(index="step", columns="seed", values="value")
    assert (eq.iloc[-1] < 0.2 * eq.iloc[0]).all()


def test_frozen_phi_makes_natural_tasks_natural_wrt_phi():
    # d + 1 < V: a random Phi (with the free shift along 1) cannot span every v
    cell = _cell(EASY + ["training.phi=['frozen', 'random']", "train.steps=5", "lm.d=3"], model="xent",
                 phi="frozen")
    rows = L.run_cell(cell, config_mod.config_hash(cell))
    for task in ("logistic", "deterministic", "prompt"):
        assert (_metric(rows, "resid_phi", task)["value"] < 1e-9).all()
        assert np.allclose(_metric(rows, "tau", task)["value"], _metric(rows, "tau_phi", task)["value"])
    cell = replace(cell, phi="random")
    rows = L.run_cell(cell, config_mod.config_hash(cell))
    assert (_metric(rows, "resid_phi", "logistic")["value"] > 1e-3).all()


def test_world_terms_are_exact_on_enumerated_contexts():
    world = World(_cell(EASY, model="xent"))
    assert world.exact and np.isclose(world.w.sum(), 1.0)
    for name, t in world.tasks.items():
        assert t.terms["tau_se"] == 0.0
        assert t.terms["natural_gap"] >= -1e-6
    assert world.tasks["non_natural"].terms["natural_gap"] > world.tasks["logistic"].terms["natural_gap"]
    assert 0 < world.tasks["prompt"].gamma < 1 and world.tasks["logistic"].gamma == 1.0


def test_divergence_is_reported_with_step_and_config(tmp_path, capsys):
    argv = ["run", "language", "--profile", "quick", "--out", str(tmp_path), "--jobs", "1",
            "--set", "train.lr=[9.9]", *[a for o in ONLY[:2] + ONLY[3:] for a in ("--set", o)]]
    assert cli.main(argv) == 3
    err = capsys.readouterr().err
    assert "diverged at step" in err and '"lr":[9.9]' in err
    quad = [cid for cid, c in runner.plan("language", _cfg(["train.lr=[9.9]"] + ONLY[:2] + ONLY[3:]))
            if c.model == "quad"]
    assert len(quad) == 1 and not list((tmp_path / "language").glob(f"{quad[0]}-*/DONE"))


# ----------------------------------------------------------------------------------------- end to end
@pytest.fixture
def quick_run(quick_results):
    return quick_results("language")  # the session's shared quick run (jobs 1 = jobs 2 is in test_chapters.py)


def test_quick_profile_end_to_end_figures_and_bounds(quick_run, quick_figures):
    fig, _, _ = quick_figures("language")   # the session's `sslt figures language` of that run
    names = list(chapters.get("language").figures)
    assert len(names) == 8   # the six, the softmax bound's own and the frontier (issue 16)
    for name in names:
        for ext in ("png", "pdf"):
            path = fig / "language" / f"{name}.{ext}"
            assert path.exists(), path  # content is checked in test_chapters.py; a size proves nothing
    table = pd.read_csv(quick_run / "bounds.csv")
    table = table[table["experiment"] == "language"]
    for col in ("bound", "form", "measured", "bound_value", "verdict", "slack", "epsilon", "tau", "B", "gamma",
                "assumption"):
        assert col in table.columns, col
    assert np.allclose(table["bound_value"], th.bound(table["tau"], table["B"], table["epsilon"], table["gamma"]))
    assert {"any_lm", "softmax_phi", "quad"} == set(table["bound"])
    assert set(table["theorem"]) == {"language.theorem_4_1", "language.theorem_4_2", "language.quad"}
    assert table.loc[table["form"] == "plugin", "converged"].all(), "a plug-in rests on no fitted probe"
    assert (table.loc[~table["converged"].astype(bool), "verdict"] == "undetermined").all()
    assert {"plugin", "fitted probe"} == set(table["form"])
    # the theorems hold on exact terms: no point whose assumption is met is violated
    assert (table["verdict"] != "violated").all()
    # the non-natural task is flagged, never judged; the natural ones are judged
    nn = table["task"] == "non_natural"
    assert nn.any() and (table.loc[nn, "verdict"] == "assumption not met").all()
    assert (table.loc[~nn, "verdict"] != "assumption not met").all()
    # the in-class softmax references make the softmax bound informative somewhere (not all vacuous)
    soft = table[(table["bound"] == "softmax_phi") & (table["model"] == "softmax_noise")]
    assert (soft["verdict"] == "holds").any()


# ---------------------------------------------------------------------------------- issue 16: language
def test_masked_tasks_put_no_context_at_margin_zero_as_make_task_sets_b():
    """b of the masked tasks is -balanced_threshold of v . p*_m, as make_task sets it for p*: no context sits on the
    boundary (the weighted median did put 8.3% / 4.7% of the mass there, each context costing log 2)."""
    world = World(_cell(ONLY[:3], model="mlm"))
    assert world.masked and world.exact
    for name in ("masked_logistic", "masked_deterministic"):
        t = world.tasks[name]
        m = t.p_star @ t.v + t.b
        assert t.weights[m == 0].sum() == 0.0, name
        # and the labels stay balanced: the threshold splits the mass as evenly as two distinct margins allow
        assert abs(t.weights[m > 0].sum() - 0.5) < 0.2
    # the next-word tasks (make_task's own b) for comparison: no mass at 0 either
    nxt = World(_cell(ONLY[1:], model="noise", target="next"))
    for name in ("logistic", "deterministic"):
        t = nxt.tasks[name]
        assert t.weights[(t.p_star @ t.v + t.b) == 0].sum() == 0.0


def test_monte_carlo_natural_gap_is_tau_check_minus_bayes_on_the_same_rows():
    cell = _cell(ONLY[1:] + ["eval.enum_limit=100", "eval.n_mc=2000"], model="noise", target="next")
    world = World(cell)
    assert not world.exact
    for name, t in world.tasks.items():
        terms = t.terms
        assert terms["natural_gap"] == terms["tau_check"] - terms["bayes"], name
        assert math.isclose(terms["bayes"], th.label_entropy(t.q[t.ev])[0], rel_tol=1e-12), name
        # tau_check is the check probe's loss on the evaluation rows: the same rows as bayes, so the gap is >= 0
        assert terms["natural_gap"] >= 0, name
        _, v, b = th.tau_fit(t.p_star[t.fit], t.q[t.fit], cell.tasks.check_B)
        assert math.isclose(terms["tau_check"], th.tau(v, b, t.p_star[t.ev], t.q[t.ev])[0], rel_tol=1e-9), name


def test_baum_welch_lm_eps_against_hmmlearns_forward_algorithm():
    """The EM cell's eps recomputed from the fitted matrices by hmmlearn's own forward algorithm: p_f(w | s) =
    exp(score(s + w) - score(s)) under the stationary start; and it is near (parameters) / (2 tokens)."""
    from hmmlearn.hmm import CategoricalHMM
    from experiments.engine.rng import numpy_rng
    from experiments.language.models import fit_hmm_em
    from synthetic_data.language import HMM, stationary
    cell = _cell(ONLY, model="hmm_em")
    cid = config_mod.config_hash(cell)
    rows = L.run_cell(cell, cid)
    world, em = World(cell), cell.em
    eps_rows = _metric(rows, "eps").set_index("seed")["value"]
    for seed in cell.seeds:
        docs, _ = world.hmm.sample(em.n_tokens // em.doc_len, em.doc_len, numpy_rng(world.data_id, seed, "em-text"))
        trans, emit, steps, _ = fit_hmm_em(docs, world.hmm.n_states, world.V, numpy_rng(cid, seed, "em-init"),
                                           em.restarts, em.restart_iters, em.max_iter, em.tol,
                                           restart_docs=-(-em.restart_tokens // em.doc_len))
        m = CategoricalHMM(n_components=world.hmm.n_states, n_features=world.V, init_params="")
        # the LM is the fit as the suite's HMM holds it: emissions floored at 1e-9 (every word possible, KL finite)
        m.startprob_, m.transmat_, m.emissionprob_ = stationary(trans), trans, HMM(stationary(trans), trans, emit).emit
        p = np.empty((len(world.S), world.V))
        for i, s in enumerate(world.S):
            base = m.score(s.reshape(-1, 1))
            p[i] = [np.exp(m.score(np.append(s, w).reshape(-1, 1)) - base) for w in range(world.V)]
        assert np.allclose(p.sum(axis=1), 1.0, atol=1e-9)
        eps = th.epsilon(world.p_star, p, world.w)[0]
        assert math.isclose(eps_rows.loc[seed], eps, rel_tol=1e-6, abs_tol=1e-12), (seed, eps_rows.loc[seed], eps)
        K, V = world.hmm.n_states, world.V
        params = (K - 1) + K * (K - 1) + K * (V - 1)
        assert eps < 5 * params / (2 * em.n_tokens), (seed, eps, params / (2 * em.n_tokens))
        assert int(_metric(rows, "eps").set_index("seed").loc[seed, "step"]) == steps


def test_full_batch_objectives_are_the_minibatch_objectives_on_the_whole_corpus():
    from experiments.language.run import _count_tables, corpus_quad, corpus_xent
    from experiments.objectives import OBJECTIVES
    rng = np.random.default_rng(0)
    V, L_, n, d = 5, 2, 300, 3
    X = [rng.integers(0, V, size=(n, L_)) for _ in range(2)]
    Y = [rng.integers(0, V, size=n) for _ in range(2)]
    Xu, T = _count_tables(X, Y, V)
    assert np.allclose(T.sum(axis=(1, 2)), 1.0)
    lm = LM("mlp", V, L_, d, 4, 8)
    p = lm.init([torch_generator("ab", s, "init") for s in (0, 1)], learn_phi=True)
    p = {k: v.double() for k, v in p.items()}
    f_all = lm.features(p, torch.as_tensor(np.stack(X)))
    y = torch.as_tensor(np.stack(Y))
    f_u = lm.features(p, torch.as_tensor(Xu))
    Tt = torch.as_tensor(T)
    want_x = OBJECTIVES["next_word_xent"](lm.logits(f_all, p["Phi"]), y)
    want_q = OBJECTIVES["quad"](f_all, p["Phi"], y)
    assert torch.allclose(corpus_xent(f_u, p["Phi"], Tt), want_x, atol=1e-10)
    assert torch.allclose(corpus_quad(f_u, p["Phi"], Tt), want_q, atol=1e-10)


def test_quick_run_labels_its_points_and_trained_lms_hold_below_log_2(quick_run):
    table = pd.read_csv(quick_run / "bounds.csv")
    table = table[table["experiment"] == "language"]
    kinds = table.groupby("model")["model_kind"].agg(set)
    assert kinds["hmm_em"] == {"trained"} and kinds["kgram"] == {"trained"}
    assert kinds["xent"] == {"trained", "untrained"} and kinds["xent_full"] == {"trained", "untrained"}
    assert kinds["noise"] == {"oracle", "constructed"} and kinds["softmax_noise"] == {"oracle", "constructed"}
    lm = table[table["model"] == "xent"]
    assert (lm.loc[lm["step"] == 0, "model_kind"] == "untrained").all()
    assert (lm.loc[lm["step"] > 0, "model_kind"] == "trained").all()
    ref = table[table["model"] == "noise"]
    assert ((ref["level"] == 0) == (ref["model_kind"] == "oracle")).all()
    # a trained point holds below log 2 for both theorems, under the min-ratio gamma
    held = table[(table["model_kind"] == "trained") & (table["verdict"] == "holds") & (table["gamma_form"] == "min")]
    assert {"language.theorem_4_1", "language.theorem_4_2"} <= set(held["theorem"])
    assert (held["bound_value"] < np.log(2)).all()
    assert "hmm_em" in set(held.loc[held["theorem"] == "language.theorem_4_1", "model"])
    # the covariance form: its own rows, only where the task's law differs from the LM's, never below gamma_min
    cov = table[table["gamma_form"] == "cov"]
    assert len(cov) and set(cov["task"]) == {"prompt"}
    assert (cov["gamma"] >= cov["gamma_min"] * (1 - 1e-9)).all()
    assert (table.loc[table["gamma_form"] == "min", "gamma"] == table.loc[table["gamma_form"] == "min",
                                                                           "gamma_min"]).all()

"""The zoo chapter's own checks: batched training equals looped (momentum encoders, EMA targets and the queue
included), the collapse diagnostic catches BYOL without its predictor, determinism, config checks, and what the
figures and the bound checks must show."""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from analysis import zoo as an
from experiments.latent_eval import EncoderSpec, EvalSpec
from experiments.engine import chapters, runs, store
from experiments.engine.config import config_hash
from experiments.engine.rng import numpy_rng
from experiments.zoo.config import Config, TrainSpec, cells
from experiments.zoo.run import run
from experiments.zoo.views import Objective, init_params, representation, train_cell
from synthetic_data.contrastive import DataSpec, build_model
from analysis.bounds import judge
from theory import zoo as zoo_th
from theory.theorems import index
from theory.zoo import BENCHES, REFERENCES, collapse_diagnostic

DATA = DataSpec(n_classes=4, dim=6, spread=0.5, out_dim=10)
EVAL = EvalSpec(n_per_class=20, n_mean=50, n_tuples=500, probe_n=(1, 5), probe_test_per_class=20, target_error=0.4)


def _cfg(seeds=2, steps=20, **train):
    tr = TrainSpec(n_pairs=200, steps=steps, batch_size=32, lr=0.01, labelled_per_class=20, moco_queue=64,
                   predictor_width=16, decoder_width=16, swav_prototypes=6, **train)
    return Config(seeds=seeds, data=DATA, encoder=EncoderSpec("mlp", 16, 4), train=tr, eval=EVAL)


def _cell(cfg, objective, variant="class"):
    return next(c for c in cells(cfg) if c.objective == objective and c.variant == variant)


def _train(cell):
    data_id = config_hash(cell.data)
    return train_cell(cell, build_model(cell.data, numpy_rng(data_id, 0, "latent-model")), data_id)


@pytest.mark.parametrize("objective", ["moco_v2", "byol", "byol_nopred", "swav", "simsiam", "vae", "mae", "supervised",
                                       "clip"])
def test_batched_training_equals_one_model_at_a_time(objective):
    """Seeds (0, 1) trained as one batch give each seed's parameters, momentum target and queue trained alone."""
    both = _cell(_cfg(seeds=2), objective)
    p, obj = _train(both)
    for s in (0, 1):
        alone = replace(both, seeds=(s,))
        # a one-seed cell must draw seed s's streams: seeds are values, not positions
        q, obj1 = _train(alone)
        for k in p:
            torch.testing.assert_close(p[k][s:s + 1], q[k], rtol=1e-5, atol=1e-6, msg=f"{objective}: {k}")
        if obj.target is not None:
            for k in obj.target:
                torch.testing.assert_close(obj.target[k][s:s + 1], obj1.target[k], rtol=1e-5, atol=1e-6)
        if obj.queue is not None:
            torch.testing.assert_close(obj.queue[s:s + 1], obj1.queue, rtol=1e-5, atol=1e-6)


def _ema_by_hand(cell, steps):
    """The EMA target recomputed from the online parameters after each of the first ``steps`` updates."""
    data_id = config_hash(cell.data)
    model = build_model(cell.data, numpy_rng(data_id, 0, "latent-model"))
    p0 = init_params(cell, data_id, model.input_dim)
    obj = Objective(cell, model, data_id, p0)
    target = {k: v.clone() for k, v in obj.target.items()}
    params = {k: v.clone().requires_grad_(True) for k, v in p0.items()}
    opt = torch.optim.SGD(params.values(), lr=0.05)
    for s in range(steps):
        m = obj.momentum_at(s)
        for k in target:
            target[k] = m * target[k] + (1 - m) * params[k].detach()
        opt.zero_grad()
        obj(params, s).sum().backward()
        opt.step()
        for k in target:
            torch.testing.assert_close(obj.target[k], target[k], rtol=1e-6, atol=1e-7)
    return obj


@pytest.mark.parametrize("objective", ["moco_v2", "byol"])
def test_momentum_targets_follow_the_papers_update(objective):
    cell = _cell(_cfg(momentum=0.9), objective)
    obj = _ema_by_hand(cell, 5)
    if objective == "byol":   # the cosine schedule from tau_base to 1
        assert obj.momentum_at(0) == pytest.approx(0.9) and obj.momentum_at(cell.train.steps) == pytest.approx(1.0)
    else:
        assert obj.momentum_at(7) == 0.9
        # the queue holds the newest keys first, K of them, unit norm
        assert obj.queue.shape == (2, cell.train.moco_queue, cell.encoder.out_dim)
        np.testing.assert_allclose(obj.queue.norm(dim=-1).numpy(), 1.0, rtol=1e-5)


def test_byol_without_its_predictor_is_flagged_as_collapsed():
    """With no predictor (and target = online, momentum 0) BYOL collapses; with its predictor it does not."""
    cfg = replace(_cfg(steps=300, momentum=0.0), data=replace(DATA, n_classes=5, dim=8), encoder=EncoderSpec("mlp", 32, 8))
    cfg = replace(cfg, train=replace(cfg.train, n_pairs=600, batch_size=64, predictor_width=32))
    flags = {}
    for objective in ("byol_nopred", "byol"):
        cell = _cell(cfg, objective)
        p, _ = _train(cell)
        x, _ = build_model(cell.data, numpy_rng(config_hash(cell.data), 0, "latent-model")).sample_labelled(
            100, np.random.default_rng(0))
        flags[objective] = collapse_diagnostic(representation(cell, p)(torch.as_tensor(x)[None]))
    np.testing.assert_array_equal(flags["byol_nopred"]["collapsed"], 1.0)
    np.testing.assert_array_equal(flags["byol"]["collapsed"], 0.0)
    assert flags["byol_nopred"]["norm_std"].max() < flags["byol"]["norm_std"].min()


def test_every_objective_of_a_variant_starts_from_the_same_encoder_and_trains_on_the_same_pairs():
    cfg = _cfg()
    data_id = config_hash(DATA)
    inits = [init_params(_cell(cfg, o), data_id, DATA.dim) for o in ("random", "simclr", "byol", "swav", "dae")]
    for p in inits[1:]:
        for k in ("W1", "b1", "W2"):
            torch.testing.assert_close(p[k], inits[0][k], rtol=0, atol=0)
    model = build_model(DATA, numpy_rng(data_id, 0, "latent-model"))
    a = Objective(_cell(cfg, "simclr"), model, data_id, inits[1])
    b = Objective(_cell(cfg, "dae"), model, data_id, inits[4])
    torch.testing.assert_close(a.x, b.x, rtol=0, atol=0)
    torch.testing.assert_close(a.batches.idx, b.batches.idx, rtol=0, atol=0)


def test_a_cell_is_deterministic():
    cell = _cell(_cfg(), "moco_v2", "nonlinear")
    a, b = run(cell, "ab" * 8), run(cell, "cd" * 8)     # the cell id does not change the numbers either
    pd.testing.assert_frame_equal(a, b)
    assert {"L_un", "L_sup_mu", "effective_rank", "norm_std", "collapsed", "probe_accuracy", "train_loss"} <= \
        set(a["metric"])


def test_the_vae_reports_its_elbo_terms():
    rows = run(_cell(_cfg(), "vae"), "0" * 16)
    got = rows.set_index(["metric", "seed"])["value"]
    for s in (0, 1):
        assert got[("elbo", s)] == pytest.approx(-(got[("elbo_reconstruction", s)] + got[("elbo_kl", s)]), rel=1e-6)
        assert got[("elbo_kl", s)] >= 0 and math.isfinite(got[("recon_mse", s)])


def test_cells_cover_every_objective_and_variant_once():
    cfg = chapters.load_config("zoo", "default")
    cs = cells(cfg)
    assert len(cs) == len(set(cs))
    for v in cfg.two_views.variants:
        have = {c.objective for c in cs if c.variant == v}
        assert set(BENCHES["two_views"]) | set(REFERENCES) <= have
    assert {c.variant for c in cs} == {"class", "mixture", "nonlinear", "grid", "grid_zipf", "sbm", "sbm_sparse",
                                       "hmm"}
    nonlinear = next(c for c in cs if c.variant == "nonlinear")
    assert nonlinear.data.nonlinear and next(c for c in cs if c.variant == "mixture").data.family == "mixture"


@pytest.mark.parametrize("override,field", [
    ("two_views.objectives=['nope']", "objectives"), ("two_views.variants=['bogus']", "variants"),
    ("reconstruction.objectives=['simclr']", "objectives"), ("train.momentum=1.5", "momentum"),
    ("train.mask_frac=1.0", "mask_frac"), ("train.batch_size=1", "batch_size"),
    ("train.simclr_temperature=0", "simclr_temperature"), ("two_views.references=['oracle']", "references"),
])
def test_impossible_values_are_refused_naming_the_field(override, field):
    with pytest.raises(Exception, match=field):
        chapters.load_config("zoo", "quick", [override])


def test_both_benches_off_is_refused():
    with pytest.raises(Exception, match="enabled"):
        chapters.load_config("zoo", "quick", ["two_views.enabled=false", "reconstruction.enabled=false",
                                              "multimodal.enabled=false", "pretext.enabled=false",
                                              "graphs.enabled=false", "sequences.enabled=false"])


def test_the_summary_counts_are_the_verdicts_of_bounds_csv(quick_results):
    """The zoo summary reads Lemma 4.3's verdicts from the judged table: per (objective, variant) its counts are
    bounds.csv's, every verdict included (a re-derived 'measured <= bound + 3 SE' would count vacuous and
    assumption-not-met points as holding), and a changed verdict in the table changes the summary."""
    root = quick_results("zoo")
    rows = store.load_rows(root, "zoo", list(runs.latest(root, "zoo").cells))
    table = pd.read_csv(root / "bounds.csv")
    # the summary's verdict column is the encoder as trained (s = 1); the chosen-scale rows are its own column
    lemma = table[(table["theorem"] == an.LEMMA) & (table["scale_rule"] == "as_trained")]
    assert len(lemma) and set(lemma["verdict"]) - {"holds"}, "the quick run has points that do not simply hold"
    tab = an.summary_table(rows, table)
    names = {"holds": "lemma_holds", "vacuous": "lemma_vacuous", "violated": "lemma_violated",
             "assumption not met": "lemma_not_met", "undetermined": "lemma_undetermined"}
    want = lemma.groupby(["objective", "variant"])["verdict"].value_counts().unstack(fill_value=0)
    got = tab.drop_duplicates(["objective", "variant"]).set_index(["objective", "variant"])
    for key, counts in want.iterrows():
        assert got.loc[key, "lemma_points"] == counts.sum(), key
        for verdict, col in names.items():
            assert got.loc[key, col] == counts.get(verdict, 0), (key, verdict)
    assert tab.drop_duplicates(["objective", "variant"])["lemma_points"].sum() == len(lemma)
    flipped = table.copy()
    first = lemma.index[0]
    flipped.loc[first, "verdict"] = "violated" if lemma.loc[first, "verdict"] != "violated" else "holds"
    again = an.summary_table(rows, flipped).set_index(["objective", "variant"])
    key = (lemma.loc[first, "objective"], lemma.loc[first, "variant"])
    assert again.loc[[key], "lemma_violated"].iloc[0] != got.loc[key, "lemma_violated"]


def test_bound_checks_and_figures_from_a_quick_run(quick_results, tmp_path):
    root = quick_results("zoo")
    rows = store.load_rows(root, "zoo", list(runs.latest(root, "zoo").cells))
    checks = an.bound_checks(rows)
    assert set(checks["theorem"]) == {"zoo.lemma_4_3_any_encoder"}
    # one row per (cell, seed) and scale rule (s = 1, and s chosen on the selection pool): every encoder, whatever
    # trained it, the references included; none for the graph bench (no i.i.d. positive pairs)
    graph = rows["variant"].str.startswith("sbm") | (rows["variant"] == "hmm")
    for rule in ("as_trained", "chosen"):
        assert (checks["scale_rule"] == rule).sum() == rows[~graph].groupby(["cell", "seed"]).ngroups, rule
    assert not checks["variant"].isin(["sbm", "sbm_sparse", "hmm"]).any() and graph.any()
    assert set(checks["objective"]) >= {"raw", "random", "supervised", "simclr", "byol", "vae"}
    tab = an.summary_table(rows, pd.read_csv(root / "bounds.csv"))
    assert set(tab["bench"]) == {"references", "two_views", "reconstruction", "multimodal", "pretext", "graphs",
                                "sequences"}
    g = tab[tab["variant"] == "sbm"].set_index("objective")
    assert {"raw", "random", "supervised", "spectral", "dgi"} <= set(g.index)
    assert (g["lemma_points"] == 0).all() and g["L_un"].isna().all()
    assert g.loc["spectral", "error_at_max_n"] == 0.0     # the oracle eigenvectors are block-constant
    h = tab[tab["variant"] == "hmm"].set_index("objective")
    assert {"raw", "random", "supervised", "plm", "electra", "cpc"} <= set(h.index) and (h["lemma_points"] == 0).all()
    # at most the representation's dimension (8), or the raw inputs' (16; 64 pixels of the grid images; the
    # one-hot windows of the sequence bench: 5 x 8)
    tab = tab[tab["variant"] != "hmm"]
    raw = tab["objective"] == "raw"
    assert tab.loc[~raw, "effective_rank"].between(1, 8).all() and tab.loc[raw, "effective_rank"].between(1, 64).all()


def test_pretext_inputs_are_the_transformed_images_and_the_labels_the_transformations():
    """The rotation objective's loss equals cross-entropy of its head on x o map[r], r drawn per image."""
    from synthetic_data.zoo import GridSpec, rotation_maps
    cfg = replace(_cfg(), grid=GridSpec(n_classes=3, side=4, max_shift=1))
    cell = _cell(cfg, "rotation", "grid")
    data_id = config_hash(cell.data)
    from experiments.zoo.run import build_model as zoo_model
    model = zoo_model(cell.data, numpy_rng(data_id, 0, "latent-model"))
    p = init_params(cell, data_id, model.input_dim)
    obj = Objective(cell, model, data_id, p)
    np.testing.assert_array_equal(obj.maps.numpy(), rotation_maps(4))
    noise = Objective(cell, model, data_id, p).noise       # the same stream: the same draws of r
    loss = obj(p, 0)
    xb = obj.batches.take(obj.x, 0)
    r = (noise.uniform(xb.shape[1:2]) * 4).long()
    xt = torch.stack([torch.stack([xb[g, b, obj.maps[r[g, b]]] for b in range(xb.shape[1])]) for g in range(2)])
    logits = torch.bmm(representation(cell, p)(xt), p["pretext_W"]) + p["pretext_b"]
    want = torch.nn.functional.cross_entropy(logits.reshape(-1, 4), r.reshape(-1), reduction="none").view(2, -1).mean(1)
    torch.testing.assert_close(loss, want)


def test_clip_pairs_share_only_their_class():
    cell = _cell(_cfg(), "clip")
    data_id = config_hash(cell.data)
    model = build_model(cell.data, numpy_rng(data_id, 0, "latent-model"))
    obj = Objective(cell, model, data_id, init_params(cell, data_id, model.input_dim))
    assert obj.x.shape[-1] == DATA.dim and obj.pos.shape[-1] == DATA.out_dim   # modality B: the nonlinear map
    p, _ = _train(cell)
    assert set(k for k in p if k.startswith("b_")) == {"b_W1", "b_b1", "b_W2"} and p["clip_scale"].shape == (2,)


def test_the_new_benches_have_cells_and_figures():
    cfg = chapters.load_config("zoo", "default")
    objs = {(c.objective, c.variant) for c in cells(cfg)}
    assert {("clip", "class"), ("rotation", "grid"), ("jigsaw", "grid_zipf"), ("raw", "grid")} <= objs
    assert {"two_views", "reconstruction", "multimodal", "pretext", "graphs", "sequences", "summary", "frontier"} == \
        set(chapters.get("zoo").figures)
    assert {("dgi", "sbm"), ("spectral", "sbm_sparse"), ("supervised", "sbm")} <= objs



# ----------------------------------------------------------------------------------------------- the graph bench
from experiments.zoo.graphs import (Graphs, GraphObjective, gcn, graph_init_params, graph_labelled,  # noqa: E402
                                 train_graph_cell)
from experiments.zoo.run import build_model as zoo_model  # noqa: E402
from synthetic_data.zoo import SBMSpec, normalised_adjacency  # noqa: E402


def _graph_cfg(seeds=2, steps=15):
    cfg = replace(_cfg(seeds=seeds), sbm=SBMSpec(n_classes=3, nodes_per_block=30, p_in=0.3, p_out=0.05, dim=5))
    return replace(cfg, graphs=replace(cfg.graphs, steps=steps, test_per_class=10))


def _graph_setup(cell):
    data_id = config_hash(cell.data)
    model = zoo_model(cell.data, numpy_rng(data_id, 0, "latent-model"))
    return data_id, model, Graphs(cell, model, data_id)


@pytest.mark.parametrize("objective", ["dgi", "supervised"])
def test_graph_batched_training_equals_one_seed_at_a_time(objective):
    both = _cell(_graph_cfg(), objective, "sbm")
    data_id, model, graphs = _graph_setup(both)
    p, _ = train_graph_cell(both, model, graphs, data_id)
    for s in (0, 1):
        alone = replace(both, seeds=(s,))
        _, _, g1 = _graph_setup(alone)
        np.testing.assert_array_equal(g1.a.numpy()[0], graphs.a.numpy()[s])      # seed s's own graph and split
        np.testing.assert_array_equal(g1.test[0], graphs.test[s])
        q, _ = train_graph_cell(alone, model, g1, data_id)
        for k in p:
            torch.testing.assert_close(p[k][s:s + 1], q[k], rtol=1e-5, atol=1e-6, msg=f"{objective}: {k}")


def test_the_dgi_loss_is_the_paper_loss_on_a_gcn_and_a_feature_shuffle():
    cell = _cell(_graph_cfg(), "dgi", "sbm")
    data_id, model, graphs = _graph_setup(cell)
    p = graph_init_params(cell, data_id, model.input_dim)
    obj = GraphObjective(cell, graphs, data_id)
    perm = GraphObjective(cell, graphs, data_id).corruption()    # the same stream: this step's shuffle
    loss = obj(p, 0)
    a_hat = normalised_adjacency(graphs.a)
    for g in range(2):
        h = torch.relu(a_hat[g] @ graphs.x[g] @ p["W"][g])
        hc = torch.relu(a_hat[g] @ graphs.x[g][perm[g]] @ p["W"][g])
        s = torch.sigmoid(h.mean(0))
        pos, neg = h @ p["disc_W"][g] @ s, hc @ p["disc_W"][g] @ s
        want = -(torch.nn.functional.logsigmoid(pos).sum() + torch.nn.functional.logsigmoid(-neg).sum()) / 180
        torch.testing.assert_close(loss[g], want, rtol=1e-5, atol=1e-6)
    assert sorted(perm[0].tolist()) == list(range(90)) and not torch.equal(perm[0], perm[1])
    torch.testing.assert_close(gcn(p["W"], graphs.a_hat, graphs.x)[0], torch.relu(a_hat[0] @ graphs.x[0] @ p["W"][0]))


def test_graph_splits_labels_and_a_deterministic_run_without_bound_terms():
    cell = _cell(_graph_cfg(), "supervised", "sbm")
    data_id, model, graphs = _graph_setup(cell)
    for g in range(2):      # test and pool partition the nodes; the test set has test_per_class per block
        assert sorted(np.concatenate([graphs.test[g], graphs.pool[g]]).tolist()) == list(range(90))
        np.testing.assert_array_equal(np.bincount(graphs.y[graphs.test[g]]), 10)
    lab = graph_labelled(cell, graphs)
    assert lab.shape == (2, 3 * 20) and not set(lab[0]) & set(graphs.test[0])     # 20 = min(20 labels, 30 - 10)
    a, b = run(cell, "ab" * 8), run(cell, "cd" * 8)
    pd.testing.assert_frame_equal(a, b)
    assert {"probe_accuracy", "effective_rank", "collapsed", "mean_acc", "train_loss"} <= set(a["metric"])
    assert not {"L_un", "L_sup_mu"} & set(a["metric"])
    spec = run(_cell(_graph_cfg(), "spectral", "sbm"), "0" * 16).set_index(["metric", "seed"])["value"]
    assert spec[("expected_eigengap", 0)] == pytest.approx(30 * (0.3 - 0.05))
    assert spec[("probe_accuracy", 0)].min() == 1.0


@pytest.mark.parametrize("override,field", [
    ("graphs.variants=['bogus']", "variants"), ("graphs.references=['oracle']", "references"),
    ("graphs.objectives=['simclr']", "objectives"), ("sbm.p_out=0.5", "p_out"), ("graphs.steps=0", "steps"),
    ("sbm.nodes_per_block=50", "nodes_per_block"), ("graphs.test_per_class=0", "test_per_class"),
])
def test_impossible_graph_values_are_refused_naming_the_field(override, field):
    with pytest.raises(Exception, match=field):
        chapters.load_config("zoo", "quick", [override])



# ----------------------------------------------------------------------------------------------- the sequence bench
from experiments.zoo.sequences import SeqObjective, plm_inputs, seq_init_params, seq_task, train_seq_cell  # noqa: E402
from synthetic_data.language import DataSpec as HMMSpec  # noqa: E402


def _seq_cfg(seeds=2, steps=12):
    cfg = replace(_cfg(seeds=seeds), hmm=HMMSpec(family="topic", n_states=4, vocab=5, context_len=4, n_topics=2))
    return replace(cfg, sequences=replace(cfg.sequences, n_seqs=200, steps=steps, test_per_class=20, n_excess=64,
                                          generator_width=8))


def _seq_setup(cell):
    data_id = config_hash(cell.data)
    hmm = zoo_model(cell.data, numpy_rng(data_id, 0, "latent-model"))
    return data_id, hmm, seq_task(cell, hmm, data_id)


@pytest.mark.parametrize("objective", ["plm", "electra", "cpc", "supervised"])
def test_sequence_batched_training_equals_one_seed_at_a_time(objective):
    both = _cell(_seq_cfg(), objective, "hmm")
    data_id, hmm, task = _seq_setup(both)
    p, _ = train_seq_cell(both, hmm, task, data_id)
    for s in (0, 1):
        q, _ = train_seq_cell(replace(both, seeds=(s,)), hmm, task, data_id)
        for k in p:
            torch.testing.assert_close(p[k][s:s + 1], q[k], rtol=1e-5, atol=1e-6, msg=f"{objective}: {k}")


def test_plm_inputs_show_exactly_the_earlier_positions_of_the_order():
    words = torch.tensor([[3, 0, 2, 1]])
    order = torch.tensor([[2, 0, 3, 1]])
    x = plm_inputs(words, order, 4)[0]                     # (t, L V + 2 L)
    for t in range(4):
        vis = x[t, 16:20]
        assert vis.tolist() == [1.0 if p in order[0, :t].tolist() else 0.0 for p in range(4)]
        assert x[t, 20:].argmax().item() == order[0, t].item() and x[t, 20:].sum() == 1
        oh = x[t, :16].reshape(4, 4)
        for p in range(4):
            assert oh[p].tolist() == ([1.0 if v == words[0, p] else 0.0 for v in range(4)] if vis[p] else [0.0] * 4)


def test_electra_replaces_only_masked_tokens_and_every_encoder_starts_alike():
    cell = _cell(_seq_cfg(), "electra", "hmm")
    data_id, hmm, task = _seq_setup(cell)
    p = seq_init_params(cell, data_id)
    for o in ("plm", "cpc", "random"):
        q = seq_init_params(_cell(_seq_cfg(), o, "hmm"), data_id)
        for k in ("W1", "b1", "W2"):
            torch.testing.assert_close(p[k], q[k], rtol=0, atol=0)
    obj = SeqObjective(cell, hmm, task, data_id)
    assert obj.x.shape == (2, 200, 4 + cell.sequences.future_steps)
    loss = obj(p, 0)
    assert torch.isfinite(loss).all() and (loss > 0).all()


def test_a_sequence_cell_is_deterministic_with_excess_losses_and_cpc_bounds():
    for objective in ("plm", "electra", "cpc"):
        cell = _cell(_seq_cfg(), objective, "hmm")
        a, b = run(cell, "ab" * 8), run(cell, "cd" * 8)
        pd.testing.assert_frame_equal(a, b)
        m = set(a["metric"])
        assert {"probe_accuracy", "effective_rank", "mean_acc", "train_loss"} <= m and not {"L_un", "L_sup_mu"} & m
        got = a.set_index(["metric", "seed"])["value"]
        if objective == "plm":
            assert got[("plm_excess", 0)] == pytest.approx(got[("plm_test_loss", 0)] - got[("plm_exact_loss", 0)])
            assert got[("plm_excess", 0)] > -0.05        # no model beats the exact conditional (up to MC noise)
        if objective == "electra":
            assert got[("electra_gen_excess", 1)] > -0.05
        if objective == "cpc":
            assert {"cpc_bound_k1", "cpc_mi_exact_k2"} <= m
            assert got[("cpc_bound_k1", 0)] == pytest.approx(math.log(32) - got[("cpc_loss_k1", 0)], abs=1e-6)


@pytest.mark.parametrize("override,field", [
    ("sequences.variants=['bogus']", "variants"), ("sequences.objectives=['dgi']", "objectives"),
    ("sequences.mask_frac=1.0", "mask_frac"), ("sequences.future_steps=0", "future_steps"),
    ("sequences.electra_weight=-1.0", "electra_weight"), ("hmm.vocab=1", "vocab"), ("sequences.n_seqs=10", "n_seqs"),
])
def test_impossible_sequence_values_are_refused_naming_the_field(override, field):
    with pytest.raises(Exception, match=field):
        chapters.load_config("zoo", "quick", [override])


# ------------------------------------------------------------------------------------ the chosen scale, model_kind
def _quick_checks(quick_results):
    root = quick_results("zoo")
    return an.bound_checks(store.load_rows(root, "zoo", list(runs.latest(root, "zoo").cells)))


def test_model_kind_labels_references_untrained_and_every_objective_trained(quick_results):
    checks = _quick_checks(quick_results)
    kinds = checks.groupby("objective")["model_kind"].unique().map(lambda v: tuple(sorted(v)))
    assert kinds["raw"] == kinds["random"] == ("untrained",)
    trained = [o for o in kinds.index if o not in ("raw", "random")]
    assert "supervised" in trained and {"simclr", "vae", "rotation", "clip"} <= set(trained)
    assert all(kinds[o] == ("trained",) for o in trained)


def test_every_two_view_objective_is_informative_at_its_chosen_scale(quick_results):
    """Lemma 4.3 holds for every rescaling s f; at the s chosen on the selection pool, every objective trained on
    latent-class pairs (the two-view bench) is below the trivial value on at least one data variant, on the
    report pool, and holds there. Shown on the quick profile (60 steps); the default run is in the README."""
    checks = judge(_quick_checks(quick_results), index(zoo_th.THEOREMS))
    chosen = checks[(checks["scale_rule"] == "chosen") & checks["objective"].isin(BENCHES["two_views"])]
    assert set(chosen["objective"]) == set(BENCHES["two_views"])
    best = chosen.assign(ratio=chosen["bound_value"] / chosen["trivial"]).groupby(["objective", "variant"])
    informative = best.apply(lambda g: bool(((g["verdict"] == "holds") & (g["ratio"] < 1)).any()))
    assert informative.groupby("objective").any().all(), informative[~informative]
    assert (chosen["pool"] == "report").all() and (chosen["scale_pool"] == "selection").all()
    assert (chosen["scale"] > 0).all() and (checks.loc[checks["scale_rule"] == "as_trained", "scale"] == 1).all()


def test_the_chosen_scale_minimises_the_bound_on_the_selection_pool_only():
    """The 1-D search finds the grid minimum of the bound on the selection pool; the report pool is independent, so
    its bound at the same s differs (it is not the minimiser's optimistic value)."""
    from experiments.latent_eval import EvalSet
    from experiments.zoo.views import _lemma_bound, _target, choose_scales
    cell = _cell(_cfg(seeds=2), "simclr")
    data_id = config_hash(cell.data)
    model = build_model(cell.data, numpy_rng(data_id, 0, "latent-model"))
    params, _ = _train(cell)
    f = representation(cell, params)
    sel = EvalSet(_target(cell), model, config_hash({"data": data_id, "pool": "scale-selection"}), "cpu")
    rep = EvalSet(_target(cell), model, data_id, "cpu")
    s, b = choose_scales(sel, f, model.rho)
    C = cell.data.n_classes
    for ev, name in ((sel, "selection"), (rep, "report")):
        with torch.no_grad():
            pools = [f(x).double().reshape(2, C, -1, 4) for x in ev.pools]
            mu = f(ev.mean_x).double().reshape(2, C, -1, 4).mean(2)
        for g in range(2):
            grid = [_lemma_bound(*(p[g] for p in pools), mu[g], model.rho, s[g] * m) for m in np.geomspace(0.2, 5, 41)]
            at_s = _lemma_bound(*(p[g] for p in pools), mu[g], model.rho, s[g])
            if name == "selection":
                assert at_s == pytest.approx(b[g], abs=1e-12) and at_s <= min(grid) + 1e-6
            else:
                assert abs(at_s - b[g]) > 1e-9


def test_barlow_twins_and_vicreg_keep_a_correlation_rank_of_at_least_c_minus_1(quick_results):
    """With lambda = 1/d (Barlow Twins) and covariance weight 25 (VICReg) the outputs keep C - 1 decorrelated class
    directions on the quick profile, measured as the rank of the outputs' correlation matrix on the test points."""
    root = quick_results("zoo")
    t = an.terms_table(store.load_rows(root, "zoo", list(runs.latest(root, "zoo").cells)))
    C = int(t["n_classes"].iloc[0])
    for obj in ("barlow_twins", "vicreg"):
        r = t.loc[(t["objective"] == obj) & (t["variant"] == "class"), "correlation_rank"]
        assert len(r) and (r >= C - 1).all(), (obj, r.tolist())


def test_correlation_rank_counts_decorrelated_directions_not_scale():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((2000, 3))
    copies = np.hstack([base, base[:, :1] * 5 + 1e-3 * rng.standard_normal((2000, 1)), base[:, 1:2] * 0.01])
    assert float(zoo_th.correlation_rank(torch.tensor(copies)[None])[0]) == 3       # the copies add nothing
    assert float(zoo_th.correlation_rank(torch.tensor(base * [1, 100, 1e-3])[None])[0]) == 3

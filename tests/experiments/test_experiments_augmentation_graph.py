"""The augmentation-graph chapter's own checks: the spectral objective, a tiny cell end to end, impossible configs."""
from __future__ import annotations


import numpy as np
import pytest
import torch

from experiments import objectives
from experiments.augmentation_graph.config import Cell, EncoderSpec, EvalSpec, TrainSpec, cells
from experiments.augmentation_graph.run import run
from experiments.engine import chapters
from experiments.engine.config import ConfigError, config_hash
from synthetic_data.augmentation_graph import DataSpec, build_model
from analysis import augmentation_graph as ag


def test_spectral_objective_matches_a_brute_force():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(2, 5, 3, generator=g, dtype=torch.float64), torch.randn(2, 5, 3, generator=g, dtype=torch.float64)
    out = objectives.spectral(z1, z2)
    for m in range(2):
        a, b = z1[m].numpy(), z2[m].numpy()
        pos = np.mean(np.sum(a * b, 1))
        off = np.mean([(a[i] @ b[j]) ** 2 for i in range(5) for j in range(5) if i != j])
        assert float(out[m]) == pytest.approx(-2 * pos + off, rel=1e-12)
    assert objectives.OBJECTIVES["spectral"] is objectives.spectral
    with pytest.raises(ValueError, match="batch size"):
        objectives.spectral(z1[:, :1], z2[:, :1])


def test_the_batch_estimator_is_unbiased_for_the_population_loss():
    m = build_model(DataSpec(n_natural=2, n_aug=2), np.random.default_rng(0))
    f = np.random.default_rng(1).standard_normal((m.n_inputs, 2))
    a, b = m.sample_pairs(64 * 400, np.random.default_rng(2))
    F = torch.as_tensor(f)
    z1, z2 = F[a].reshape(400, 64, 2), F[b].reshape(400, 64, 2)
    vals = objectives.spectral(z1, z2).numpy()
    from theory.augmentation_graph import spectral_loss
    assert abs(vals.mean() - spectral_loss(f, m.W)) <= 4 * vals.std() / np.sqrt(len(vals))


def _tiny_cell(objective="spectral", family="clusters"):
    data = DataSpec(n_natural=2, n_aug=2, overlap=0.0) if family == "clusters" else \
        DataSpec(family="hypercube", cube_dim=4, label_dim=1, scales=(0.5, 1.0))
    return Cell(objective, ("linear", "mlp", "lookup"), 3, (0, 1), data, EncoderSpec(width=8, out_dim=1),
                TrainSpec(steps=40, batch_size=16, n_checkpoints=5), EvalSpec())


@pytest.mark.parametrize("family", ["clusters", "hypercube"])
def test_trained_encoders_never_go_below_the_closed_form_minimum(family):
    cell = _tiny_cell(family=family)
    rows = run(cell, config_hash(cell))
    ex = ag.exact_table(rows.assign(cell="c"))
    loss = rows[rows["metric"] == "spectral_loss"]
    assert len(loss) == 3 * 2 * 5
    assert (loss["value"] >= float(ex["spectral_min"].iloc[0]) - 1e-9).all()
    lin = loss[loss["encoder_class"] == "linear"]
    assert (lin["value"] >= float(ex["linear_min"].iloc[0]) - 1e-9).all()
    assert float(ex["fstar_loss"].iloc[0]) == pytest.approx(float(ex["spectral_min"].iloc[0]), abs=1e-12)


def test_a_cell_is_deterministic_and_ntxent_is_matched():
    cell = _tiny_cell("ntxent")
    a, b = run(cell, config_hash(cell)), run(cell, config_hash(cell))
    assert a.equals(b)
    m = ag.picked(a.assign(cell="c"), "matched")
    # every class's matched checkpoint is within match_tol of the common target, or its last checkpoint
    ok = m["objective_loss"] <= m["target"] + cell.eval.match_tol * m["target"].abs() + 1e-12
    assert ok.all()


def test_cells_share_runs_and_cover_the_studies():
    cfg = chapters.load_config("augmentation_graph", "quick")
    cs = cells(cfg)
    assert len(cs) == len(set(cs))
    fams = {c.data.family for c in cs}
    assert fams == {"clusters", "hypercube"}
    # the matched study's spectral cell is the overlap sweep's cell at the same overlap
    spectral0 = [c for c in cs if c.data.family == "clusters" and c.objective == "spectral" and c.data.overlap == 0.0]
    assert len(spectral0) == 1 and set(cfg.matched.classes) <= set(spectral0[0].classes)


@pytest.mark.parametrize("override,field", [
    ("data.leak=0.9", "overlap"), ("data.label_dim=2", "data.label_dim"), ("overlap.overlaps=[0.5, 0.2]", "overlap.overlaps"),
    ("matched.objectives=['infonce']", "matched.objectives"), ("hypercube.classes=['cnn']", "hypercube.classes"),
    ("train.batch_size=1", "train.batch_size"), ("hypercube.out_dim=2", "hypercube.out_dim"),
    ("data.family=hypercube", "data.family"), ("eval.match_tol=1.5", "eval.match_tol"),
    ("partition.out_dim=5", "partition.out_dim"), ("partition.out_dim=12", "partition.out_dim"),
    ("fullbatch.tol=0", "fullbatch.tol"), ("fullbatch.lr=2", "fullbatch.lr"),
    ("fullbatch.max_steps=0", "fullbatch.max_steps")])
def test_impossible_values_are_refused(override, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        chapters.load_config("augmentation_graph", "quick", [override])


def test_quick_figures_show_the_story(quick_results):
    from experiments.engine import runs, store
    root = quick_results("augmentation_graph")
    run_ = runs.latest(root, "augmentation_graph")
    rows = store.load_rows(root, "augmentation_graph", run_.cells)
    ex = ag.exact_table(rows)
    cube = ex[ex["family"] == "hypercube"].iloc[0]
    assert cube["perfect_loss"] == pytest.approx(cube["permuted_loss"], abs=1e-10)
    assert cube["perfect_probe_error"] == 0.0
    sweep = ex[(ex["family"] == "clusters") & (ex["objective"] == "spectral")].sort_values("overlap")
    assert sweep["lambda_next"].is_monotonic_increasing


def _quick_table(quick_results):
    import pandas as pd
    return pd.read_csv(quick_results("augmentation_graph") / "bounds.csv")


def test_every_row_says_what_its_model_is(quick_results):
    t = _quick_table(quick_results)
    kinds = t.groupby("theorem")["model_kind"].agg(set).to_dict()
    # the exact minimiser f* is built from the ground truth; Lemma 4.1's permuted f̂ is a construction
    assert kinds["augmentation_graph.eigenvalue_bound"] == {"oracle"}
    assert kinds["augmentation_graph.theorem_3_7_form"] == {"oracle"}
    assert kinds["augmentation_graph.lemma_4_1_permutation"] == {"constructed"}
    for tid in ("spectral_minimum", "linear_class_minimum"):   # every checkpoint of a trained encoder
        g = t[t["theorem"] == f"augmentation_graph.{tid}"]
        assert set(g.loc[g["step"] == 0, "model_kind"]) == {"untrained"}
        assert set(g.loc[g["step"] > 0, "model_kind"]) == {"trained"}
    cor = t[t["theorem"] == "augmentation_graph.corollary_4_2b"]
    assert set(cor.loc[cor["encoder_class"] == "linear_opt", "model_kind"]) == {"oracle"}
    assert set(cor.loc[(cor["encoder_class"] != "linear_opt") & (cor["step"] > 0), "model_kind"]) == {"trained"}


def test_identities_are_identities_and_exact(quick_results):
    t = _quick_table(quick_results)
    ids = t[t["theorem"].isin(["augmentation_graph.spectral_minimum", "augmentation_graph.linear_class_minimum"])]
    assert len(ids) and set(ids["kind"]) == {"identity"} and set(ids["verdict"]) == {"exact"}
    assert not (t.loc[t["kind"] == "identity", "verdict"] == "holds").any()


def test_a_trained_encoder_enters_the_regime_where_corollary_4_2b_speaks(quick_results):
    t = _quick_table(quick_results)
    cor = t[t["theorem"] == "augmentation_graph.corollary_4_2b"]
    trained = cor[cor["model_kind"] == "trained"]
    held = trained[trained["verdict"] == "holds"]
    assert len(held) >= 1 and (held["bound_value"] < held["trivial"]).all()
    assert (held["encoder_class"] == "linear_fullbatch").all()
    # the full-batch descent stopped below its tolerance, on the cell's discretised scales (eigengap 0.1 at (0.5, 1))
    last = cor[cor["encoder_class"] == "linear_fullbatch"].groupby("seed")["step"].idxmax()
    assert (cor.loc[last, "gap"] < 1e-4).all() and (cor.loc[last, "gd_converged"] == 1).all()
    assert cor["T_gap"].to_numpy() == pytest.approx(0.1)


def test_the_eigenvalue_bound_covers_every_tie_break_of_f_star(quick_results):
    t = _quick_table(quick_results)
    e = t[t["theorem"] == "augmentation_graph.eigenvalue_bound"]
    assert (e["measured_tie_min"] <= e["measured"] + 1e-12).all()
    assert (e["measured"] <= e["measured_tie_max"] + 1e-12).all()
    assert (e["measured_tie_max"] <= e["bound_value"] + 1e-12).all()
    tied = e[(e["family"] == "clusters") & (e["overlap"] == 0.0)]
    assert len(tied) and tied["tied_mass"].to_numpy() == pytest.approx(1.0)
    assert tied["measured"].to_numpy() == pytest.approx(0.5)


def test_theorem_3_7_form_can_speak_at_d_at_least_2c_plus_2(quick_results):
    t = _quick_table(quick_results)
    r = t[t["theorem"] == "augmentation_graph.theorem_3_7_form"]
    wide = r[r["d"] >= 2 * r["n_classes"] + 2]
    assert len(wide) >= 2 and (wide["bound_value"] < wide["trivial"]).all()
    narrow = r[(r["d"] <= 2 * r["n_classes"]) & (r["family"] == "clusters")]
    assert (narrow["bound_value"] >= narrow["trivial"]).all()   # ρ_{⌊d/2⌋} is the class cut: vacuous by construction


def test_the_frontier_caption_is_computed_from_the_rows(quick_results, tmp_path, monkeypatch):
    from analysis import plotting
    from experiments.engine import runs, store
    root = quick_results("augmentation_graph")
    rows = store.load_rows(root, "augmentation_graph", runs.latest(root, "augmentation_graph").cells)
    seen = {}
    real = plotting.save

    def spy(fig, directory, stem):
        seen[stem] = fig._suptitle.get_text() if fig._suptitle is not None else ""
        return real(fig, directory, stem)
    monkeypatch.setattr(plotting, "save", spy)
    t = _quick_table(quick_results)
    ag.fig_frontier(rows, t, tmp_path, "frontier")
    cor = t[t["theorem"] == "augmentation_graph.corollary_4_2b"]
    trained = cor[cor["model_kind"] == "trained"]
    k = cor["label_dim"].iloc[0]
    assert f"L − min_lin L ≥ {0.5 / (32 * k):.3g}" in seen["frontier"]
    assert f"{(trained['verdict'] == 'holds').sum()} of {len(trained)} trained points hold" in seen["frontier"]
    alpha = t.loc[(t["theorem"] == "augmentation_graph.eigenvalue_bound") & (t["family"] == "clusters"), "alpha"]
    assert f"λ_(d+1) ≤ {8 * alpha.median() / (1 - 2 * alpha.median()):.3g}" in seen["frontier"]

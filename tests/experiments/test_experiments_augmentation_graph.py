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
    ("data.family=hypercube", "data.family"), ("eval.match_tol=1.5", "eval.match_tol")])
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

"""The finite augmentation models: the graph, its components, the labels, the samplers."""
from __future__ import annotations

import numpy as np
import pytest

from synthetic_data.augmentation_graph import DataSpec, build_model, components, perfect_features
from theory import augmentation_graph as th


@pytest.mark.parametrize("spec", [DataSpec(), DataSpec(overlap=0.0, leak=0.0), DataSpec(n_classes=3, overlap=0.9, leak=0.1),
                                  DataSpec(family="hypercube", cube_dim=4, label_dim=1, scales=(0.5, 1.0))])
def test_adjacency_is_symmetric_with_rows_summing_to_the_marginals(spec):
    m = build_model(spec, np.random.default_rng(0))
    assert np.array_equal(m.W, m.W.T)
    np.testing.assert_allclose(m.W.sum(1), m.w, atol=1e-15)
    np.testing.assert_allclose(m.w, m.p_natural @ m.A, atol=1e-15)
    assert m.W.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(m.joint.sum(1), m.w, atol=1e-15)
    np.testing.assert_allclose(m.A.sum(1), 1.0, atol=1e-12)


@pytest.mark.parametrize("n_classes,n_natural", [(2, 3), (3, 2)])
def test_at_zero_overlap_the_graph_is_disconnected(n_classes, n_natural):
    m = build_model(DataSpec(n_classes=n_classes, n_natural=n_natural, overlap=0.0, leak=0.0), np.random.default_rng(1))
    n_comp = len(np.unique(components(m.W)))
    assert n_comp == n_classes * n_natural
    gam, _ = th.spectrum(m.W)
    assert np.sum(np.abs(gam - 1) < 1e-9) == n_comp
    # any overlap connects each class: one component per class
    m2 = build_model(DataSpec(n_classes=n_classes, n_natural=n_natural, overlap=0.3, leak=0.0), np.random.default_rng(1))
    gam2, _ = th.spectrum(m2.W)
    assert len(np.unique(components(m2.W))) == n_classes == np.sum(np.abs(gam2 - 1) < 1e-9)


def test_hypercube_components_and_labels():
    spec = DataSpec(family="hypercube", cube_dim=5, label_dim=3, scales=(0.5, 1.0))
    m = build_model(spec, np.random.default_rng(0))
    assert len(np.unique(components(m.W))) == 2 ** 5
    assert np.array_equal(np.sign(m.X), m.X[np.arange(m.n_inputs) % 32] / np.abs(m.X[np.arange(m.n_inputs) % 32]))
    assert m.joint.sum(0) == pytest.approx([0.5, 0.5])
    assert th.alpha(m.joint) == pytest.approx(0.0, abs=1e-15)
    g = perfect_features(spec, 4)
    np.testing.assert_allclose(g.T @ g / g.shape[0], np.eye(4), atol=1e-12)


def test_alpha_equals_the_leak():
    for leak in (0.0, 0.05, 0.2):
        m = build_model(DataSpec(leak=leak, overlap=0.3), np.random.default_rng(0))
        assert th.alpha(m.joint) == pytest.approx(leak, abs=1e-12)


def test_sample_pairs_follow_the_graph():
    m = build_model(DataSpec(n_natural=2, n_aug=2), np.random.default_rng(0))
    a, b = m.sample_pairs(200_000, np.random.default_rng(5))
    counts = np.zeros_like(m.W)
    np.add.at(counts, (a, b), 1)
    emp = counts / counts.sum()
    se = np.sqrt(m.W * (1 - m.W) / 200_000)
    assert np.all(np.abs(emp - m.W) <= 5 * se + 1e-12)


def test_determinism_and_rng_only():
    spec = DataSpec()
    a, b = build_model(spec, np.random.default_rng(7)), build_model(spec, np.random.default_rng(7))
    assert np.array_equal(a.X, b.X) and np.array_equal(a.W, b.W)
    c = build_model(spec, np.random.default_rng(8))
    assert not np.array_equal(a.X, c.X)


@pytest.mark.parametrize("kwargs,field", [({"overlap": 0.8, "leak": 0.3}, "overlap"), ({"label_dim": 2}, "label_dim"),
                                          ({"family": "torus"}, "family"), ({"scales": (0.0, 1.0)}, "scales"),
                                          ({"n_natural": 1, "overlap": 0.1}, "overlap"),
                                          ({"family": "hypercube", "cube_dim": 12}, "cube_dim")])
def test_impossible_specs_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=f"^{field}:"):
        DataSpec(**kwargs).check()

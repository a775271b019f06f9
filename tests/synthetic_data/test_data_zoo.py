"""The zoo's grid-image generator: templates, nuisances, the class law, and the exact pixel maps of its pretexts."""
from __future__ import annotations

import numpy as np
import pytest

from synthetic_data.zoo import GridSpec, build_grid_model, jigsaw_maps, rotation_maps


@pytest.mark.parametrize("side", [2, 4, 6])
def test_rotation_maps_are_np_rot90(side):
    img = np.random.default_rng(side).standard_normal((3, side, side))
    maps = rotation_maps(side)
    for r in range(4):
        np.testing.assert_array_equal(img.reshape(3, -1)[:, maps[r]], np.rot90(img, r, axes=(1, 2)).reshape(3, -1))


@pytest.mark.parametrize("side", [2, 4, 8])
def test_jigsaw_maps_permute_the_quadrants(side):
    maps = jigsaw_maps(side)
    h = side // 2
    assert maps.shape == (24, side * side) and len({tuple(m) for m in maps}) == 24
    np.testing.assert_array_equal(maps[0], np.arange(side * side))
    for m in maps:
        assert sorted(m) == list(range(side * side))
    img = np.arange(side * side).reshape(side, side)
    quads = [img[:h, :h], img[:h, h:], img[h:, :h], img[h:, h:]]
    # lexicographic permutation 1 is (0, 1, 3, 2): the bottom quadrants swap
    out = img.reshape(-1)[maps[1]].reshape(side, side)
    np.testing.assert_array_equal(out[h:, :h], quads[3])
    np.testing.assert_array_equal(out[h:, h:], quads[2])
    np.testing.assert_array_equal(out[:h, :h], quads[0])


def test_templates_are_standardised_and_noise_free_samples_are_shifted_templates():
    spec = GridSpec(n_classes=4, side=6, noise=0.0, contrast=0.0, max_shift=2)
    m = build_grid_model(spec, np.random.default_rng(0))
    np.testing.assert_allclose(m.templates.mean(1), 0, atol=1e-12)
    np.testing.assert_allclose(m.templates.std(1), 1, rtol=1e-12)
    c = np.array([0, 1, 2, 3] * 5)
    x = m.sample_x(c, np.random.default_rng(1))
    for xi, ci in zip(x, c):
        t = m.templates[ci].reshape(6, 6)
        shifts = [np.roll(t, (u, v), axis=(0, 1)).reshape(-1) for u in range(-2, 3) for v in range(-2, 3)]
        assert min(np.abs(xi - s).max() for s in shifts) < 1e-5
    still = build_grid_model(GridSpec(n_classes=4, side=6, noise=0.0, contrast=0.0, max_shift=0), np.random.default_rng(0))
    np.testing.assert_allclose(still.sample_x(c, np.random.default_rng(2)), still.templates[c], rtol=1e-6, atol=1e-6)


def test_pixel_energy_and_class_law_against_monte_carlo():
    spec = GridSpec(n_classes=5, class_law="zipf", zipf_s=1.0, side=8, noise=0.6, contrast=0.4, max_shift=1)
    m = build_grid_model(spec, np.random.default_rng(3))
    rng = np.random.default_rng(4)
    c = m.sample_classes(40000, rng)
    freq = np.bincount(c, minlength=5) / c.size
    np.testing.assert_allclose(freq, m.rho, atol=4 * np.sqrt(m.rho * (1 - m.rho) / c.size).max())
    x = m.sample_x(c[:20000], rng).astype(np.float64)
    # E ||x||^2 / D = E[a^2] * 1 + noise^2, E[a^2] = 1 + contrast^2 / 3 (the template has unit pixel variance)
    energy = (x ** 2).mean(1)
    want = 1 + 0.4 ** 2 / 3 + 0.6 ** 2
    assert abs(energy.mean() - want) < 4 * energy.std() / np.sqrt(energy.size)


def test_the_same_rng_gives_the_same_model_and_samples():
    a = build_grid_model(GridSpec(), np.random.default_rng(7))
    b = build_grid_model(GridSpec(), np.random.default_rng(7))
    np.testing.assert_array_equal(a.templates, b.templates)
    np.testing.assert_array_equal(a.sample_labelled(3, np.random.default_rng(8))[0], b.sample_labelled(3, np.random.default_rng(8))[0])


@pytest.mark.parametrize("kwargs,field", [({"side": 7}, "side"), ({"contrast": 1.0}, "contrast"),
                                          ({"max_shift": 4, "side": 8}, "max_shift"), ({"n_classes": 1}, "n_classes"),
                                          ({"class_law": "explicit"}, "class_law"), ({"noise": -1.0}, "noise")])
def test_impossible_specs_are_refused(kwargs, field):
    with pytest.raises(ValueError, match=field):
        GridSpec(**kwargs).check()


# ----------------------------------------------------------------------------------------------- the block model
from synthetic_data.zoo import SBMSpec, build_sbm_model, normalised_adjacency  # noqa: E402


def test_sbm_graphs_are_simple_and_their_edge_frequencies_match_p_in_and_p_out():
    spec = SBMSpec(n_classes=3, nodes_per_block=30, p_in=0.3, p_out=0.05, dim=4)
    m = build_sbm_model(spec, np.random.default_rng(0))
    np.testing.assert_array_equal(m.labels, np.repeat([0, 1, 2], 30))
    rng = np.random.default_rng(1)
    draws = [m.sample_graph(rng)[0] for _ in range(60)]
    for a in draws[:3]:
        np.testing.assert_array_equal(a, a.T)
        assert np.all(np.diag(a) == 0) and set(np.unique(a)) <= {0.0, 1.0}
    freq = np.mean(draws, 0)
    same = (m.labels[:, None] == m.labels[None, :]) & ~np.eye(90, dtype=bool)
    cross = m.labels[:, None] != m.labels[None, :]
    # each mean over pairs: n = 60 graphs x (pairs / 2) independent Bernoullis
    n_in, n_out = 60 * same.sum() / 2, 60 * cross.sum() / 2
    assert abs(freq[same].mean() - 0.3) < 4 * np.sqrt(0.3 * 0.7 / n_in)
    assert abs(freq[cross].mean() - 0.05) < 4 * np.sqrt(0.05 * 0.95 / n_out)
    np.testing.assert_allclose(freq, freq.T)
    np.testing.assert_array_equal(m.edge_probabilities()[same], 0.3)


def test_sbm_features_are_the_block_mean_plus_noise():
    spec = SBMSpec(n_classes=2, nodes_per_block=4000, dim=3, spread=1.0, noise=0.5)
    m = build_sbm_model(spec, np.random.default_rng(2))
    _, x = m.sample_graph(np.random.default_rng(3))
    for c in range(2):
        xc = x[m.labels == c].astype(np.float64)
        np.testing.assert_allclose(xc.mean(0), m.means[c], atol=4 * 0.5 / np.sqrt(4000))
        np.testing.assert_allclose(xc.std(0), 0.5, rtol=0.05)


def test_sbm_same_rng_same_graph_and_the_normalised_adjacency():
    spec = SBMSpec(n_classes=2, nodes_per_block=10, p_in=0.5, p_out=0.1, dim=2)
    a1, x1 = build_sbm_model(spec, np.random.default_rng(4)).sample_graph(np.random.default_rng(5))
    a2, x2 = build_sbm_model(spec, np.random.default_rng(4)).sample_graph(np.random.default_rng(5))
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_array_equal(x1, x2)
    a = a1.astype(np.float64)
    at = a + np.eye(20)
    deg = at.sum(1)
    want = np.array([[at[i, j] / np.sqrt(deg[i] * deg[j]) for j in range(20)] for i in range(20)])
    np.testing.assert_allclose(normalised_adjacency(a).numpy(), want, rtol=1e-12)
    np.testing.assert_allclose(normalised_adjacency(np.stack([a, a])).numpy()[1], want, rtol=1e-12)


@pytest.mark.parametrize("kwargs,field", [({"p_out": 0.05, "p_in": 0.05}, "p_out"), ({"p_in": 1.5}, "p_in"),
                                          ({"nodes_per_block": 1}, "nodes_per_block"), ({"n_classes": 1}, "n_classes"),
                                          ({"noise": -1.0}, "noise"), ({"dim": 0}, "dim")])
def test_impossible_block_models_are_refused(kwargs, field):
    with pytest.raises(ValueError, match=field):
        SBMSpec(**kwargs).check()

"""The zoo's theorem declaration and its collapse measures (effective rank, per-dimension variance)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from theory import contrastive as ctr
from theory import contrastive_terms as ctr_terms
from theory import zoo


def test_the_theorem_is_lemma_4_3_with_the_contrastive_bound_function():
    t, = zoo.THEOREMS
    lemma = next(x for x in ctr.THEOREMS if x.id == "contrastive.lemma_4_3")
    assert t.id == "zoo.lemma_4_3_any_encoder" and t.chapter == "zoo"
    assert t.bound is ctr.bound_from_terms
    assert t.terms == lemma.terms and t.status == "reconstructed" == lemma.status
    assert [a.name for a in t.assumptions] == [a.name for a in lemma.assumptions]
    assert "other objectives" in t.notes.lower() and "Lemma 4.3" in t.number
    assert t.doc.startswith("docs/theory/zoo.md#")


def _brute_erank(z):
    z = np.asarray(z, dtype=np.float64)
    s = np.linalg.svd(z - z.mean(0), compute_uv=False)
    p = s / s.sum()
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 40), st.integers(1, 8), st.integers(0, 2 ** 31 - 1))
def test_effective_rank_against_the_formula_and_its_range(n, d, seed):
    z = np.random.default_rng(seed).standard_normal((n, d)) * np.random.default_rng(seed + 1).uniform(0.1, 3, d)
    er = float(zoo.effective_rank(torch.as_tensor(z)))
    assert er == pytest.approx(_brute_erank(z), rel=1e-10)
    assert 1 - 1e-12 <= er <= min(n, d) + 1e-9
    # invariant to scale, shift and the order of the rows
    assert float(zoo.effective_rank(torch.as_tensor(3 * z[::-1] + 5))) == pytest.approx(er, rel=1e-9)


def test_effective_rank_closed_forms():
    eye = np.vstack([np.eye(4), -np.eye(4)])            # centred, four equal singular values
    assert float(zoo.effective_rank(eye)) == pytest.approx(4.0, rel=1e-12)
    line = np.outer(np.arange(10.0), [1.0, 2.0, -1.0])   # rank one
    assert float(zoo.effective_rank(line)) == pytest.approx(1.0, abs=1e-6)
    assert float(zoo.effective_rank(np.ones((5, 3)))) == 1.0   # every embedding equal
    batched = zoo.effective_rank(np.stack([eye, eye[:, [0, 0, 1, 1]]]))
    np.testing.assert_allclose(batched, [4.0, 2.0], rtol=1e-9)


def test_dimension_variance_is_the_biased_variance():
    z = np.random.default_rng(0).standard_normal((2, 50, 3))
    np.testing.assert_allclose(zoo.dimension_variance(z), z.var(1), rtol=1e-12)


def test_the_collapse_diagnostic_flags_collapse_and_only_collapse():
    rng = np.random.default_rng(1)
    iso = rng.standard_normal((500, 8))
    constant = np.ones((500, 8)) + 1e-4 * rng.standard_normal((500, 8))   # complete collapse (up to noise)
    line = np.outer(rng.standard_normal(500), rng.standard_normal(8))     # dimensional collapse to one line
    d = zoo.collapse_diagnostic(np.stack([iso, constant, line]))
    np.testing.assert_array_equal(d["collapsed"], [0.0, 1.0, 1.0])
    assert d["norm_std"][0] == pytest.approx(1.0, abs=0.05) and d["norm_std"][1] < 1e-3
    assert d["effective_rank"][0] > 7 and d["effective_rank"][2] < 1.01
    assert d["var_min"][0] <= d["var_mean"][0] <= d["var_max"][0]


def test_dimensional_collapse_is_judged_against_the_classes_the_ground_truth_has():
    """A representation on two directions has collapsed where 5 latent classes span 4 (it cannot hold them) but
    not where the task has 2 classes (one direction is all it needs, as a supervised encoder of a binary task
    rightly gives); complete collapse is collapse whatever the classes."""
    rng = np.random.default_rng(2)
    plane = rng.standard_normal((500, 2)) @ rng.standard_normal((2, 8))
    five = np.concatenate([rng.standard_normal((500, 4)), 0.05 * rng.standard_normal((500, 4))], 1)
    constant = np.ones((500, 8)) + 1e-4 * rng.standard_normal((500, 8))
    z = np.stack([plane, five, constant])
    np.testing.assert_array_equal(zoo.collapse_diagnostic(z, 5)["collapsed"], [1.0, 0.0, 1.0])
    np.testing.assert_array_equal(zoo.collapse_diagnostic(z, 2)["collapsed"], [0.0, 0.0, 1.0])
    line = np.outer(rng.standard_normal(500), rng.standard_normal(8))
    assert zoo.collapse_diagnostic(line[None], 2)["collapsed"][0] == 0.0   # a binary task's line: not collapse
    assert zoo.collapse_diagnostic(line[None])["collapsed"][0] == 1.0     # without a ground truth: one line is


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 4), st.integers(1, 3), st.integers(1, 4), st.integers(0, 2 ** 31 - 1))
def test_lemma_4_3_holds_for_any_encoder_on_exact_discrete_models(C, m, d, seed):
    """The zoo's declaration recomputes the bound from exact terms of a random f: it is never below L_sup^mu."""
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((C, m, d)) * rng.uniform(0.1, 3)
    pmf = rng.dirichlet(np.ones(m), size=C)
    rho = rng.dirichlet(np.ones(C))
    terms = ctr_terms.exact_terms(emb, pmf, rho, "logistic", 1)
    t, = zoo.THEOREMS
    bound = float(t.bound_from({k: np.array([terms[k]]) for k in t.terms})[0])
    assert terms["L_sup_mu"] <= bound + 1e-9


# ----------------------------------------------------------------------------------------------- the block model
def _dense(sizes, p_in, p_out):
    y = np.repeat(np.arange(len(sizes)), sizes)
    P = np.where(y[:, None] == y[None, :], p_in, p_out).astype(np.float64)
    np.fill_diagonal(P, 0.0)
    at = P + np.eye(len(y))
    d = at.sum(1)
    return y, P, at / np.sqrt(d[:, None] * d[None, :])


@pytest.mark.parametrize("sizes,p_in,p_out", [([5, 5, 5], 0.6, 0.1), ([3, 7, 4, 6], 0.3, 0.05), ([10, 2], 0.9, 0.0)])
def test_sbm_spectra_match_the_dense_expected_matrices(sizes, p_in, p_out):
    y, P, An = _dense(sizes, p_in, p_out)
    np.testing.assert_allclose(zoo.sbm_adjacency_spectrum(sizes, p_in, p_out), np.linalg.eigvalsh(P)[::-1], atol=1e-12)
    nev = zoo.sbm_normalised_spectrum(sizes, p_in, p_out)
    np.testing.assert_allclose(nev, np.linalg.eigvalsh(An)[::-1], atol=1e-12)
    assert nev[0] == pytest.approx(1.0, abs=1e-12)
    K = len(sizes)
    V = zoo.sbm_top_eigenvectors(y, sizes, p_in, p_out, K)
    np.testing.assert_allclose(V.T @ V, np.eye(K), atol=1e-12)
    np.testing.assert_allclose(An @ V, V * nev[:K], atol=1e-12)
    for c in range(K):                                   # block-constant: every node of a block has one row
        np.testing.assert_allclose(V[y == c], np.broadcast_to(V[y == c][0], V[y == c].shape), atol=1e-14)


def test_sbm_spectrum_closed_form_for_equal_blocks():
    m, K, p_in, p_out = 20, 4, 0.4, 0.1
    ev = zoo.sbm_adjacency_spectrum([m] * K, p_in, p_out)
    assert ev[0] == pytest.approx(m * (p_in + (K - 1) * p_out) - p_in)
    np.testing.assert_allclose(ev[1:K], m * (p_in - p_out) - p_in)
    np.testing.assert_allclose(ev[K:], -p_in)
    assert zoo.sbm_eigengap(ev, K) == pytest.approx(m * (p_in - p_out))
    with pytest.raises(ValueError, match="k"):
        zoo.sbm_top_eigenvectors(np.repeat(np.arange(K), m), [m] * K, p_in, p_out, K + 1)


# ----------------------------------------------------------------------------------------------- the HMM
import itertools  # noqa: E402

from synthetic_data.language import DataSpec as HMMSpec  # noqa: E402
from synthetic_data.language import build_model as build_hmm  # noqa: E402


def _paths(hmm, L):
    for hs in itertools.product(range(hmm.n_states), repeat=L):
        yield hs, hmm.init[hs[0]] * np.prod([hmm.trans[hs[t - 1], hs[t]] for t in range(1, L)])


@pytest.mark.parametrize("seed", [0, 1])
def test_hmm_conditional_against_enumeration_and_masked_word(seed):
    hmm = build_hmm(HMMSpec(n_states=3, vocab=4, context_len=4), np.random.default_rng(seed))
    rng = np.random.default_rng(seed + 10)
    w, _ = hmm.sample(6, 4, rng)
    vis, pos = rng.random((6, 4)) < 0.5, rng.integers(0, 4, 6)
    got = zoo.hmm_conditional(hmm, w, vis, pos)
    for i in range(6):
        p = np.zeros(4)
        for hs, ph in _paths(hmm, 4):
            ev = np.prod([hmm.emit[hs[t], w[i, t]] for t in range(4) if vis[i, t] and t != pos[i]])
            p += ph * ev * hmm.emit[hs[pos[i]]]
        np.testing.assert_allclose(got[i], p / p.sum(), atol=1e-12)
    np.testing.assert_allclose(zoo.hmm_conditional(hmm, w, np.ones((6, 4), bool), 1), hmm.masked_word(w, 1), atol=1e-12)
    np.testing.assert_allclose(zoo.hmm_conditional(hmm, w, np.zeros((6, 4), bool), 2),
                               np.broadcast_to(hmm.init @ hmm.emit, (6, 4)), atol=1e-12)


@pytest.mark.parametrize("k", [1, 2])
def test_hmm_future_mi_against_enumeration(k):
    hmm = build_hmm(HMMSpec(n_states=2, vocab=3, context_len=2), np.random.default_rng(3))
    L = 2
    s = np.array(list(itertools.product(range(3), repeat=L)))
    mi, se = zoo.hmm_future_mi(hmm, s, k)
    hw = []
    for ws in s:                                   # p(w_{L+k} | s) by brute force over the L + k states
        p = np.zeros(3)
        for hs, ph in _paths(hmm, L + k):
            p += ph * np.prod([hmm.emit[hs[t], ws[t]] for t in range(L)]) * hmm.emit[hs[L + k - 1]]
        p /= p.sum()
        hw.append(-(p * np.log(p)).sum())
    m = hmm.init @ hmm.emit
    assert mi == pytest.approx(-(m * np.log(m)).sum() - np.mean(hw), abs=1e-12) and se > 0

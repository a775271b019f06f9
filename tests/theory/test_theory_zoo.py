"""The zoo's theorem declaration and its collapse measures (effective rank, per-dimension variance)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from theory import contrastive as ctr
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


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 4), st.integers(1, 3), st.integers(1, 4), st.integers(0, 2 ** 31 - 1))
def test_lemma_4_3_holds_for_any_encoder_on_exact_discrete_models(C, m, d, seed):
    """The zoo's declaration recomputes the bound from exact terms of a random f: it is never below L_sup^mu."""
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((C, m, d)) * rng.uniform(0.1, 3)
    pmf = rng.dirichlet(np.ones(m), size=C)
    rho = rng.dirichlet(np.ones(C))
    terms = ctr.exact_terms(emb, pmf, rho, "logistic", 1)
    t, = zoo.THEOREMS
    bound = float(t.bound_from({k: np.array([terms[k]]) for k in t.terms})[0])
    assert terms["L_sup_mu"] <= bound + 1e-9

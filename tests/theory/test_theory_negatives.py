"""The negatives chapter's exact terms against simulation and enumeration, the optimum rows against the formulas of
the statement of record (Bao et al.'s public code, re-derived here, exact harmonic number), and the five forms on
the finite instance, where every quantity is exact."""
from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from synthetic_data.negatives import FiniteSpec, finite_instance, sample_finite
from theory import negatives as th


def zipf(C, s=1.0):
    r = np.arange(1, C + 1, dtype=np.float64) ** -s
    return r / r.sum()


LAWS = {"uniform": lambda C: np.full(C, 1.0 / C), "zipf": zipf}


@pytest.mark.parametrize("law", ["uniform", "zipf"])
@pytest.mark.parametrize("C,n", [(3, 3), (5, 8), (10, 20), (10, 40)])
def test_coverage_against_a_simulation(law, C, n):
    rho = LAWS[law](C)
    rng = np.random.default_rng(C * 100 + n)
    draws = rng.choice(C, size=(100_000, n), p=rho)
    hit = np.zeros((draws.shape[0], C), dtype=bool)
    np.put_along_axis(hit, draws, True, axis=1)
    covered = hit.all(1)
    est, se = covered.mean(), covered.std() / math.sqrt(covered.size)
    assert abs(th.coverage(rho, n) - est) <= 4 * se + 1e-4


@pytest.mark.parametrize("law", ["uniform", "zipf"])
@pytest.mark.parametrize("C", [2, 4, 7])
def test_coverage_against_inclusion_exclusion_and_zero_below_c(law, C):
    rho = LAWS[law](C)
    for n in range(0, 3 * C):
        exact = th.coverage(rho, n)
        assert exact == pytest.approx(th.coverage_inclusion_exclusion(rho, n), abs=1e-12)
        assert (exact == 0.0) == (n < C)


def test_coverage_of_a_large_zipf_law_is_a_probability_and_grows():
    rho = zipf(100)
    vals = [th.coverage(rho, n) for n in (100, 200, 513, 2000)]
    assert all(0 < v < 1 for v in vals) and vals == sorted(vals)


@pytest.mark.parametrize("law", ["uniform", "zipf"])
@pytest.mark.parametrize("C,K", [(2, 1), (3, 4), (4, 5)])
def test_collision_and_tau_against_enumeration(law, C, K):
    rho = LAWS[law](C)
    coll = tau = 0.0
    for c in range(C):
        for negs in itertools.product(range(C), repeat=K):
            p = rho[c] * np.prod(rho[list(negs)])
            m = sum(n == c for n in negs)
            coll += p * math.log1p(m)
            tau += p * (m >= 1)
    assert th.collision(rho, K) == pytest.approx(coll, abs=1e-13)
    assert th.tau_k(rho, K) == pytest.approx(tau, abs=1e-13)
    assert th.no_collision(rho, K) == pytest.approx(1 - tau, abs=1e-13)
    if law == "uniform":
        assert th.tau_k(rho, K) == pytest.approx(1 - (1 - 1 / C) ** K, abs=1e-15)


def test_no_collision_keeps_its_precision_where_one_minus_tau_is_zero():
    rho = np.full(10, 0.1)
    assert 1 - th.tau_k(rho, 512) == 0.0
    assert th.no_collision(rho, 512) == pytest.approx(0.9 ** 512, rel=1e-12)


def test_harmonic_is_exact_and_the_file_approximation_differs():
    for n in (1, 9, 49, 99):
        assert th.harmonic(n) == float(sum(Fraction(1, j) for j in range(1, n + 1)))
    # the statement-of-record file uses log n + 0.577: a relative error we do not carry
    assert abs(th.harmonic(9) - (math.log(9) + 0.577)) > 0.05


def test_coupon_constant_uniform_and_a_skewed_law_by_simulation():
    assert th.coupon_constant(np.full(10, 0.1)) == pytest.approx(9 * th.harmonic(9), rel=1e-15)
    rho = zipf(5)
    rng = np.random.default_rng(3)
    times = []
    for _ in range(4000):
        c = rng.choice(5, p=rho)
        q = np.delete(rho, c) / (1 - rho[c])
        seen, t = set(), 0
        while len(seen) < 4:
            seen.add(int(rng.choice(4, p=q)))
            t += 1
        times.append(t)
    times = np.asarray(times)
    assert abs(th.coupon_constant(rho) - times.mean()) < 4 * times.std() / math.sqrt(times.size)


# ------------------------------------------------------------------ the optimum rows against the published formulas
def _upsilon_published(n, C):
    """P(n uniform draws cover C classes) = sum_j (-1)^j comb(C, j) (1 - j / C)^n, in exact rationals."""
    return float(sum(Fraction((-1) ** j * math.comb(C, j)) * Fraction(C - j, C) ** n for j in range(C + 1)))


def _published(C, K, b):
    p = 1.0 / C
    binom = [math.comb(K, m) * p ** m * (1 - p) ** (K - m) for m in range(K + 1)]
    r_cont = sum(w * math.log(1 + m + (K - m) * math.exp(-2 * b * b)) for m, w in enumerate(binom))
    r_supv = math.log(1 + (C - 1) * math.exp(-2 * b * b))
    collision = sum(w * math.log(1 + m) for m, w in enumerate(binom))
    tau = 1 - (1 - p) ** K
    v = _upsilon_published(K + 1, C)
    H = sum(1.0 / j for j in range(1, C))
    ub = r_cont + math.log(p * C ** 2 * math.cosh(b * b) ** 2 / K)
    arora = (r_cont - collision) / ((1 - tau) * v) if v > 0 else math.inf
    nozawa = (2 * r_cont - collision) / v if v > 0 else math.inf
    ash = 2 * max(1, 2 * (C - 1) * H / K) * (r_cont - collision) / (1 - tau)
    return {"R_cont": r_cont, "R_supv": r_supv, "arora_2019": arora, "nozawa_sato_2021": nozawa, "ash_2022": ash,
            "bao_2022_upper": ub}


@pytest.mark.parametrize("C,K,b", [(10, 1, 1.0), (10, 9, 1.0), (10, 16, 0.5), (10, 64, 2.0), (50, 128, 1.0),
                                   (100, 512, 1.0)])
def test_optimum_values_against_the_published_formulas(C, K, b):
    ref = _published(C, K, b)
    assert th.r_cont_optimum(C, K, b) == pytest.approx(ref["R_cont"], rel=1e-12)
    assert th.r_supv_optimum(C, b) == pytest.approx(ref["R_supv"], rel=1e-12)
    t = th.law_terms(np.full(C, 1.0 / C), K, b)
    R = th.r_cont_optimum(C, K, b)
    got = {"arora_2019": th.arora_bound(R, t["collision"], t["no_collision"], t["upsilon"]),
           "nozawa_sato_2021": th.nozawa_bound(R, t["collision"], t["upsilon"]),
           "ash_2022": th.ash_bound(R, t["collision"], t["no_collision"], K, t["coupon"]),
           "bao_2022_upper": th.bao_upper_bound(R, t["Delta_U"])}
    for name, value in got.items():
        if math.isinf(ref[name]):
            assert np.isinf(value), name
        else:
            assert float(value) == pytest.approx(ref[name], rel=1e-12), name


def test_delta_lower_matches_the_published_intercept():
    C, K, b = 10, 7, 1.3
    ref = math.log(C) + math.log(K) - 2 * math.log(1 + K) - 2 * math.log(math.cosh(b * b))
    assert float(th.delta_lower(np.full(C, 1 / C), K, b)) == pytest.approx(ref, rel=1e-12)


# ------------------------------------------------------------------------------ exact losses on the finite instance
def test_exact_r_cont_against_brute_force_enumeration_and_simulation():
    spec = FiniteSpec(n_classes=3, class_law="zipf", overlap=0.4, n_shared=1)
    rho, D = finite_instance(spec)
    N = D.shape[1]
    F = th.project(torch.randn(1, N, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64), 1.3)
    f = F[0].numpy()
    p = rho @ D
    pair = np.einsum("c,cx,cy->xy", rho, D, D)
    for K in (1, 2, 3):
        brute = 0.0
        for x in range(N):
            for y in range(N):
                for negs in itertools.product(range(N), repeat=K):
                    w = pair[x, y] * np.prod(p[list(negs)])
                    s = [f[x] @ f[y]] + [f[x] @ f[j] for j in negs]
                    brute += w * (math.log(sum(math.exp(v) for v in s)) - s[0])
        assert float(th.exact_r_cont(F, rho, D, K)[0]) == pytest.approx(brute, rel=1e-12)
    K = 6
    s = sample_finite(spec, 100_000, K, np.random.default_rng(2))
    sc = np.concatenate([np.sum(f[s["x"]] * f[s["pos"]], 1)[:, None],
                         np.einsum("nd,nkd->nk", f[s["x"]], f[s["neg"]])], 1)
    per = np.log(np.exp(sc).sum(1)) - sc[:, 0]
    assert abs(float(th.exact_r_cont(F, rho, D, K)[0]) - per.mean()) < 4 * per.std() / math.sqrt(per.size)


def test_exact_supervised_at_the_zero_encoder_is_log_c_with_no_accuracy():
    rho, D = finite_instance(FiniteSpec(n_classes=4))
    loss, acc = th.exact_supervised(torch.zeros(2, D.shape[1], 3, dtype=torch.float64), rho, D)
    assert torch.allclose(loss, torch.full((2,), math.log(4), dtype=torch.float64)) and float(acc.max()) == 0.0


# Forms that fail somewhere on the finite instance (exact, so any excess counts). None found so far: a form that
# starts failing changes this set and the test, and the finding goes in docs/theory/negatives.md.
KNOWN_FAILURES: set[str] = set()


def _violations(rho, D, F, K, b):
    r_cont = th.exact_r_cont(F, rho, D, K).numpy()
    r_supv = th.exact_supervised(F, rho, D)[0].numpy()
    t = th.law_terms(rho, K, b)
    out = set()
    uppers = {"arora_2019": th.arora_bound(r_cont, t["collision"], t["no_collision"], t["upsilon"]),
              "nozawa_sato_2021": th.nozawa_bound(r_cont, t["collision"], t["upsilon"]),
              "ash_2022": th.ash_bound(r_cont, t["collision"], t["no_collision"], K, t["coupon"]),
              "bao_2022_upper": th.bao_upper_bound(r_cont, t["Delta_U"])}
    for name, bound in uppers.items():
        if np.any(r_supv > bound + 1e-10):
            out.add(name)
    if np.any(r_cont > th.bao_lower_as_upper(r_supv, t["Delta_L"]) + 1e-10):
        out.add("bao_2022_lower")
    return out


@settings(max_examples=40, deadline=None)
@given(C=st.integers(2, 4), shared=st.integers(1, 2), law=st.sampled_from(["uniform", "zipf"]),
       overlap=st.floats(0.0, 0.9), b=st.sampled_from([0.3, 1.0, 2.0, 3.0]), K=st.sampled_from([1, 2, 3, 5, 8]),
       seed=st.integers(0, 10_000))
def test_the_five_forms_bracket_the_exact_values_at_random_encoders(C, shared, law, overlap, b, K, seed):
    rho, D = finite_instance(FiniteSpec(C, law, 1.0, overlap, shared))
    G = torch.randn(3, D.shape[1], D.shape[1], generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    assert _violations(rho, D, th.project(G, b), K, b) <= KNOWN_FAILURES


def test_the_five_forms_bracket_the_exact_values_at_clustered_encoders():
    """Encoders that put each class's own input on its own direction (the near-optimal region), shared inputs
    anywhere: where the bounds are tightest."""
    for C, b, K in [(2, 2.0, 1), (3, 1.0, 2), (3, 3.0, 8), (4, 2.0, 4)]:
        rho, D = finite_instance(FiniteSpec(C, "uniform", 1.0, 0.2, 1))
        N = D.shape[1]
        G = torch.zeros(2, N, N, dtype=torch.float64)
        G[:, :C, :C] = torch.eye(C)
        G[0, C:, :] = 1.0
        G[1, C:, 0] = 1.0
        assert _violations(rho, D, th.project(G, b), K, b) <= KNOWN_FAILURES

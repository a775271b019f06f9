"""The zoo's losses against brute-force loops written from each paper's pseudocode, at degenerate points with
closed forms, for their symmetries, their stop-gradients and their finiteness at small temperatures."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from experiments import objectives as ob

GRID = [(1, 4, 2), (2, 5, 3), (3, 8, 4)]  # (G, B, d)


def _rand(*shape, seed=0):
    g = torch.Generator().manual_seed(seed + 17 * len(shape) + sum(shape))
    return torch.randn(*shape, generator=g, dtype=torch.float64)


def _cos(a, b):
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


# ----------------------------------------------------------------------------------------------- brute force
def bf_infonce_queue(q, k, queue, T):
    out = []
    for g in range(q.shape[0]):
        tot = 0.0
        for b in range(q.shape[1]):
            logits = [_cos(q[g, b], k[g, b]) / T] + [_cos(q[g, b], queue[g, j]) / T for j in range(queue.shape[1])]
            m = max(logits)
            tot += -(logits[0] - m) + math.log(sum(math.exp(v - m) for v in logits))
        out.append(tot / q.shape[1])
    return np.array(out)


def bf_byol(p1, p2, t1, t2):
    def norm(v):
        return v / np.linalg.norm(v)
    return np.array([np.mean([np.sum((norm(p1[g, b]) - norm(t2[g, b])) ** 2) + np.sum((norm(p2[g, b]) - norm(t1[g, b])) ** 2)
                              for b in range(p1.shape[1])]) for g in range(p1.shape[0])])


def bf_simsiam(p1, p2, z1, z2):
    return np.array([np.mean([-0.5 * (_cos(p1[g, b], z2[g, b]) + _cos(p2[g, b], z1[g, b])) for b in range(p1.shape[1])])
                     for g in range(p1.shape[0])])


def bf_barlow(z1, z2, lambd, eps):
    out = []
    for g in range(z1.shape[0]):
        a, b = z1[g], z2[g]
        N, D = a.shape
        an = (a - a.mean(0)) / np.sqrt(a.var(0) + eps)
        bn = (b - b.mean(0)) / np.sqrt(b.var(0) + eps)
        loss = 0.0
        for i in range(D):
            for j in range(D):
                c = sum(an[n, i] * bn[n, j] for n in range(N)) / N
                loss += (1 - c) ** 2 if i == j else lambd * c ** 2
        out.append(loss)
    return np.array(out)


def bf_vicreg(x, y, eps=1e-4):
    out = []
    for g in range(x.shape[0]):
        a, b = x[g], y[g]
        N, D = a.shape
        repr_loss = np.mean((a - b) ** 2)
        a, b = a - a.mean(0), b - b.mean(0)
        std_a, std_b = np.sqrt(a.var(0, ddof=1) + eps), np.sqrt(b.var(0, ddof=1) + eps)
        std_loss = np.mean(np.maximum(0, 1 - std_a)) / 2 + np.mean(np.maximum(0, 1 - std_b)) / 2
        cov_a, cov_b = a.T @ a / (N - 1), b.T @ b / (N - 1)
        off = lambda c: sum(c[i, j] ** 2 for i in range(D) for j in range(D) if i != j)  # noqa: E731
        cov_loss = off(cov_a) / D + off(cov_b) / D
        out.append(25 * repr_loss + 25 * std_loss + cov_loss)
    return np.array(out)


def bf_sinkhorn(scores, eps, niters):
    """The SwAV paper's pseudocode, per model, in float64 without the max shift."""
    out = []
    for s in scores:
        Q = np.exp(s / eps).T
        Q /= Q.sum()
        K, B = Q.shape
        r, c = np.ones(K) / K, np.ones(B) / B
        for _ in range(niters):
            u = Q.sum(1)
            Q *= (r / u)[:, None]
            Q *= (c / Q.sum(0))[None, :]
        out.append((Q / Q.sum(0, keepdims=True)).T)
    return np.stack(out)


def bf_swav(s1, s2, T, eps, niters):
    q1, q2 = bf_sinkhorn(s1, eps, niters), bf_sinkhorn(s2, eps, niters)

    def logsm(v):
        v = v / T
        return v - (v.max() + math.log(np.exp(v - v.max()).sum()))
    out = []
    for g in range(s1.shape[0]):
        out.append(np.mean([-0.5 * (np.dot(q2[g, b], logsm(s1[g, b])) + np.dot(q1[g, b], logsm(s2[g, b])))
                            for b in range(s1.shape[1])]))
    return np.array(out)


def bf_vae(x, xh, mu, lv, s2):
    rec = [[np.sum((x[g, b] - xh[g, b]) ** 2) / (2 * s2) + 0.5 * x.shape[2] * math.log(2 * math.pi * s2)
            for b in range(x.shape[1])] for g in range(x.shape[0])]
    kl = [[0.5 * sum(mu[g, b, j] ** 2 + math.exp(lv[g, b, j]) - 1 - lv[g, b, j] for j in range(mu.shape[2]))
           for b in range(x.shape[1])] for g in range(x.shape[0])]
    return np.mean(rec, 1), np.mean(kl, 1)


# ----------------------------------------------------------------------------------------------- vs brute force
@pytest.mark.parametrize("G,B,d", GRID)
@pytest.mark.parametrize("T", [0.07, 0.2, 1.0])
@pytest.mark.parametrize("K", [1, 6])
def test_infonce_queue_matches_the_loop(G, B, d, T, K):
    q, k, Q = _rand(G, B, d, seed=1), _rand(G, B, d, seed=2), _rand(G, K, d, seed=3)
    np.testing.assert_allclose(ob.infonce_queue(q, k, Q, T).numpy(), bf_infonce_queue(q.numpy(), k.numpy(), Q.numpy(), T),
                               rtol=1e-10)


@pytest.mark.parametrize("G,B,d", GRID)
def test_byol_and_simsiam_match_the_loops(G, B, d):
    a, b, c, e = (_rand(G, B, d, seed=s) for s in range(4))
    np.testing.assert_allclose(ob.byol(a, b, c, e).numpy(), bf_byol(*(t.numpy() for t in (a, b, c, e))), rtol=1e-10)
    np.testing.assert_allclose(ob.simsiam(a, b, c, e).numpy(), bf_simsiam(*(t.numpy() for t in (a, b, c, e))),
                               rtol=1e-10)


@pytest.mark.parametrize("G,B,d", GRID)
@pytest.mark.parametrize("lambd,eps", [(5e-3, 1e-5), (0.5, 0.0)])
def test_barlow_twins_matches_the_loop(G, B, d, lambd, eps):
    z1, z2 = _rand(G, B, d, seed=5), _rand(G, B, d, seed=6)
    np.testing.assert_allclose(ob.barlow_twins(z1, z2, lambd, eps).numpy(), bf_barlow(z1.numpy(), z2.numpy(), lambd, eps),
                               rtol=1e-10)


@pytest.mark.parametrize("G,B,d", GRID)
@pytest.mark.parametrize("scale", [0.1, 3.0])
def test_vicreg_matches_the_official_arithmetic(G, B, d, scale):
    z1, z2 = scale * _rand(G, B, d, seed=7), scale * _rand(G, B, d, seed=8)
    np.testing.assert_allclose(ob.vicreg(z1, z2).numpy(), bf_vicreg(z1.numpy(), z2.numpy()), rtol=1e-10)


@pytest.mark.parametrize("G,B,K", [(1, 4, 3), (2, 6, 5), (2, 16, 4)])
@pytest.mark.parametrize("eps,iters", [(0.05, 3), (0.5, 1), (0.1, 10)])
def test_sinkhorn_and_swav_match_the_paper_pseudocode(G, B, K, eps, iters):
    s1, s2 = torch.tanh(_rand(G, B, K, seed=9)), torch.tanh(_rand(G, B, K, seed=10))
    codes = ob.sinkhorn(s1, eps, iters)
    np.testing.assert_allclose(codes.numpy(), bf_sinkhorn(s1.numpy(), eps, iters), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(codes.sum(-1).numpy(), 1.0, rtol=1e-12)
    np.testing.assert_allclose(ob.swav(s1, s2, 0.1, eps, iters).numpy(), bf_swav(s1.numpy(), s2.numpy(), 0.1, eps, iters),
                               rtol=1e-9)


def test_sinkhorn_balances_the_clusters_with_many_iterations():
    s = torch.tanh(_rand(2, 12, 4, seed=11))
    codes = ob.sinkhorn(s, 0.5, 200)
    np.testing.assert_allclose(codes.sum(1).numpy(), 12 / 4, rtol=1e-6)   # each prototype gets B / K of the mass


@pytest.mark.parametrize("G,B,D,d", [(1, 3, 4, 2), (2, 5, 3, 3)])
@pytest.mark.parametrize("s2", [0.1, 1.0])
def test_vae_terms_match_the_loop(G, B, D, d, s2):
    x, xh, mu, lv = _rand(G, B, D, seed=12), _rand(G, B, D, seed=13), _rand(G, B, d, seed=14), _rand(G, B, d, seed=15)
    t = ob.vae_terms(x, xh, mu, lv, s2)
    rec, kl = bf_vae(x.numpy(), xh.numpy(), mu.numpy(), lv.numpy(), s2)
    np.testing.assert_allclose(t["reconstruction"].numpy(), rec, rtol=1e-10)
    np.testing.assert_allclose(t["kl"].numpy(), kl, rtol=1e-10)
    np.testing.assert_allclose(ob.vae(x, xh, mu, lv, s2).numpy(), rec + kl, rtol=1e-10)


def bf_clip(za, zb, t):
    out = []
    for g in range(za.shape[0]):
        B = za.shape[1]
        L = np.array([[min(math.exp(t[g]), 100.0) * _cos(za[g, i], zb[g, j]) for j in range(B)] for i in range(B)])
        img = np.mean([-L[i, i] + math.log(sum(math.exp(L[i, j]) for j in range(B))) for i in range(B)])
        txt = np.mean([-L[j, j] + math.log(sum(math.exp(L[i, j]) for i in range(B))) for j in range(B)])
        out.append((img + txt) / 2)
    return np.array(out)


@pytest.mark.parametrize("G,B,d", GRID)
@pytest.mark.parametrize("t", [0.0, math.log(1 / 0.07), 6.0])
def test_clip_matches_the_paper_pseudocode(G, B, d, t):
    za, zb = _rand(G, B, d, seed=16), _rand(G, B, d, seed=17)
    ts = torch.full((G,), t, dtype=torch.float64)
    np.testing.assert_allclose(ob.clip(za, zb, ts).numpy(), bf_clip(za.numpy(), zb.numpy(), ts.numpy()), rtol=1e-10)


# ----------------------------------------------------------------------------------------------- closed forms
def test_barlow_twins_is_zero_at_identical_decorrelated_views():
    z = torch.tensor([[1.0, 1.0, 1.0], [1.0, -1.0, -1.0], [-1.0, 1.0, -1.0], [-1.0, -1.0, 1.0]], dtype=torch.float64)
    z = (3.0 * z + 0.5)[None]    # any scale and shift: the standardisation removes them
    assert float(ob.barlow_twins(z, z, eps=0.0)) == pytest.approx(0.0, abs=1e-24)
    assert float(ob.barlow_twins(z, z)) < 1e-9                 # the default eps costs only (eps / var)^2 per dim
    assert float(ob.barlow_twins(z, -z, eps=0.0)) == pytest.approx(4.0 * 3)   # anti-correlated: (1 - (-1))^2 per dim


def test_vicreg_variance_term_at_collapsed_embeddings_is_its_hinge_value():
    z = torch.full((2, 6, 4), 0.7, dtype=torch.float64)
    t = ob.vicreg_terms(z, z)
    np.testing.assert_allclose(t["variance"].numpy(), 1 - math.sqrt(1e-4), rtol=1e-12)
    np.testing.assert_allclose(t["invariance"].numpy(), 0.0, atol=1e-30)
    np.testing.assert_allclose(t["covariance"].numpy(), 0.0, atol=1e-30)
    np.testing.assert_allclose(ob.vicreg(z, z).numpy(), 25 * (1 - math.sqrt(1e-4)), rtol=1e-12)


@pytest.mark.parametrize("K", [1, 7, 100])
def test_infonce_with_equal_embeddings_is_log_n(K):
    z = torch.ones(2, 5, 3, dtype=torch.float64)
    np.testing.assert_allclose(ob.infonce_queue(z, z, torch.ones(2, K, 3, dtype=torch.float64), 0.2).numpy(),
                               math.log(K + 1), rtol=1e-12)
    np.testing.assert_allclose(ob.ntxent(z, z, 0.2).numpy(), math.log(2 * 5 - 1), rtol=1e-12)
    np.testing.assert_allclose(ob.clip(z, z, 2.0).numpy(), math.log(5), rtol=1e-12)


def test_byol_and_simsiam_at_aligned_predictions():
    z = _rand(2, 5, 3, seed=20)
    np.testing.assert_allclose(ob.byol(z, 2 * z, 3 * z, z).numpy(), 0.0, atol=1e-12)
    np.testing.assert_allclose(ob.simsiam(z, z, 2 * z, z).numpy(), -1.0, rtol=1e-12)
    np.testing.assert_allclose(ob.byol(z, z, -z, -z).numpy(), 8.0, rtol=1e-12)   # opposite: (2 + 2) per direction


def test_swav_with_uniform_scores_is_log_k():
    s = torch.zeros(2, 6, 5, dtype=torch.float64)
    np.testing.assert_allclose(ob.swav(s, s).numpy(), math.log(5), rtol=1e-12)


def test_vae_kl_is_zero_at_the_prior():
    x = _rand(1, 4, 3, seed=21)
    t = ob.vae_terms(x, x, torch.zeros(1, 4, 2, dtype=torch.float64), torch.zeros(1, 4, 2, dtype=torch.float64), 1.0)
    assert float(t["kl"]) == 0.0
    assert float(t["reconstruction"]) == pytest.approx(1.5 * math.log(2 * math.pi))


# ----------------------------------------------------------------------------------------------- symmetries
@pytest.mark.parametrize("G,B,d", GRID)
def test_symmetric_losses_are_symmetric(G, B, d):
    a, b, c, e = (_rand(G, B, d, seed=30 + s) for s in range(4))
    for f in (ob.barlow_twins, ob.vicreg, ob.swav, lambda x, y: ob.ntxent(x, y, 0.5)):
        torch.testing.assert_close(f(a, b), f(b, a), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ob.byol(a, b, c, e), ob.byol(b, a, e, c), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ob.clip(a, b, 1.5), ob.clip(b, a, 1.5), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ob.simsiam(a, b, c, e), ob.simsiam(b, a, e, c), rtol=1e-12, atol=1e-12)


def test_losses_are_per_model():
    """Model g's loss reads only slice g: perturbing model 1 leaves model 0's loss unchanged."""
    a, b = _rand(2, 6, 3, seed=40), _rand(2, 6, 3, seed=41)
    b2 = b.clone()
    b2[1] = 2.0 * b2[1] + _rand(6, 3, seed=42)
    for f in (ob.barlow_twins, ob.vicreg, ob.swav, lambda x, y: ob.infonce_queue(x, y, y, 0.2),
              lambda x, y: ob.byol(x, y, x, y), lambda x, y: ob.simsiam(x, y, x, y)):
        assert float(f(a, b)[0]) == float(f(a, b2)[0])
        assert float(f(a, b)[1]) != float(f(a, b2)[1])


# ----------------------------------------------------------------------------------------------- stop-gradients
def test_targets_get_no_gradient():
    p1, p2, z1, z2 = (_rand(1, 5, 3, seed=50 + s).requires_grad_(True) for s in range(4))
    for f in (ob.byol, ob.simsiam):
        g = torch.autograd.grad(f(p1, p2, z1, z2).sum(), (p1, z1, z2), allow_unused=True)
        assert g[0] is not None and float(g[0].abs().sum()) > 0
        assert g[1] is None and g[2] is None
    q, k, Q = (_rand(1, 5, 3, seed=60 + s).requires_grad_(True) for s in range(3))
    gq, gk, gQ = torch.autograd.grad(ob.infonce_queue(q, k, Q[:, :4]).sum(), (q, k, Q), allow_unused=True)
    assert gq is not None and gk is None and gQ is None


# ----------------------------------------------------------------------------------------------- finiteness
@pytest.mark.parametrize("T", [1e-3, 5e-3])
def test_finite_at_small_temperature_in_float32(T):
    a, b, Q = (_rand(2, 16, 4, seed=70 + s).float().requires_grad_(True) for s in range(3))
    for loss in (ob.infonce_queue(a, b, Q, T), ob.swav(torch.tanh(a), torch.tanh(b), T, eps=T),
                 ob.clip(a, b, math.log(1 / T))):
        assert torch.isfinite(loss).all()
        g, = torch.autograd.grad(loss.sum(), (a,))
        assert torch.isfinite(g).all()


def test_barlow_twins_is_finite_at_collapsed_embeddings():
    z = torch.ones(1, 8, 3, requires_grad=True)
    loss = ob.barlow_twins(z, z)
    assert torch.isfinite(loss).all() and float(loss.detach()) == pytest.approx(3.0)
    g, = torch.autograd.grad(loss.sum(), (z,))
    assert torch.isfinite(g).all()


def test_registry_names_and_shape_errors():
    for name in ("simclr", "moco_v2", "infonce_queue", "byol", "simsiam", "barlow_twins", "vicreg", "swav", "vae",
                 "autoencoder", "dae", "mae", "clip"):
        assert name in ob.OBJECTIVES
    assert ob.OBJECTIVES["simclr"] is ob.ntxent and ob.OBJECTIVES["mae"] is ob.mse
    with pytest.raises(ValueError, match="z2"):
        ob.barlow_twins(torch.ones(1, 4, 3), torch.ones(1, 4, 2))
    with pytest.raises(ValueError, match="batch size"):
        ob.vicreg(torch.ones(1, 1, 3), torch.ones(1, 1, 3))
    with pytest.raises(ValueError, match="temperature"):
        ob.infonce_queue(torch.ones(1, 2, 3), torch.ones(1, 2, 3), torch.ones(1, 4, 3), 0.0)


# ----------------------------------------------------------------------------------------------- Deep Graph Infomax
def bf_dgi(h, hc, s, W, b):
    """Velickovic et al. (2019), eq. 1, one term at a time: D(h, s) = sigmoid(h^T W s + b)."""
    def sig(v):
        return 1 / (1 + math.exp(-v))
    out = []
    for g in range(h.shape[0]):
        N, M = h.shape[1], hc.shape[1]
        tot = sum(-math.log(sig(float(h[g, i] @ W[g] @ s[g]) + b[g])) for i in range(N))
        tot += sum(-math.log(1 - sig(float(hc[g, j] @ W[g] @ s[g]) + b[g])) for j in range(M))
        out.append(tot / (N + M))
    return np.array(out)


@pytest.mark.parametrize("G,N,d", GRID)
@pytest.mark.parametrize("M", [None, 3])
def test_dgi_matches_the_paper_equation(G, N, d, M):
    h, hc = _rand(G, N, d, seed=80), _rand(G, M or N, d, seed=81)
    W, b = 0.5 * _rand(G, d, d, seed=82), _rand(G, seed=83)
    s = ob.dgi_readout(h)
    np.testing.assert_allclose(s.numpy(), 1 / (1 + np.exp(-h.numpy().mean(1))), rtol=1e-12)
    np.testing.assert_allclose(ob.dgi(h, hc, s, W, b).numpy(), bf_dgi(h.numpy(), hc.numpy(), s.numpy(), W.numpy(),
                                                                     b.numpy()), rtol=1e-10)


def test_dgi_with_a_zero_discriminator_is_log_2_per_term():
    h, hc = _rand(2, 6, 3, seed=84), _rand(2, 6, 3, seed=85)
    loss = ob.dgi(h, hc, ob.dgi_readout(h), torch.zeros(2, 3, 3, dtype=torch.float64))
    np.testing.assert_allclose(loss.numpy(), math.log(2), rtol=1e-12)
    # per (positive, negative) pair: log 2 + log 2
    np.testing.assert_allclose(2 * loss.numpy(), 2 * math.log(2), rtol=1e-12)
    # a discriminator that is certain and right costs (nearly) nothing; certain and wrong, a lot
    s = torch.ones(1, 1, dtype=torch.float64)
    pos, neg = torch.full((1, 4, 1), 20.0, dtype=torch.float64), torch.full((1, 4, 1), -20.0, dtype=torch.float64)
    eye = torch.ones(1, 1, 1, dtype=torch.float64)
    assert float(ob.dgi(pos, neg, s, eye)) < 1e-8
    assert float(ob.dgi(neg, pos, s, eye)) == pytest.approx(20.0, rel=1e-6)


def test_dgi_batched_equals_looped_and_is_deterministic():
    h, hc, W = _rand(3, 7, 4, seed=86), _rand(3, 7, 4, seed=87), _rand(3, 4, 4, seed=88)
    b = _rand(3, seed=89)
    s = ob.dgi_readout(h)
    batched = ob.dgi(h, hc, s, W, b)
    looped = torch.cat([ob.dgi(h[g:g + 1], hc[g:g + 1], s[g:g + 1], W[g:g + 1], b[g:g + 1]) for g in range(3)])
    torch.testing.assert_close(batched, looped, rtol=1e-12, atol=1e-12)
    assert torch.equal(batched, ob.dgi(h, hc, s, W, b))


def test_dgi_gradient_flows_through_the_readout_and_registry():
    h = _rand(1, 5, 3, seed=90).requires_grad_(True)
    W = _rand(1, 3, 3, seed=91)
    hc = _rand(1, 5, 3, seed=92)
    g_with, = torch.autograd.grad(ob.dgi(h, hc, ob.dgi_readout(h), W).sum(), (h,))
    g_without, = torch.autograd.grad(ob.dgi(h, hc, ob.dgi_readout(h).detach(), W).sum(), (h,))
    assert not torch.allclose(g_with, g_without)       # the summary is part of the graph, as in the paper
    assert ob.OBJECTIVES["dgi"] is ob.dgi
    with pytest.raises(ValueError, match="W"):
        ob.dgi(h, hc, ob.dgi_readout(h), torch.ones(1, 3, 2, dtype=torch.float64))


# ----------------------------------------------------------------------------------------------- sequences
def _logsm(v):
    m = max(v)
    return [x - m - math.log(sum(math.exp(y - m) for y in v)) for x in v]


def bf_plm(logits, words, order):
    G, B, L, V = logits.shape
    return np.array([np.mean([-np.mean([_logsm(list(logits[g, b, t]))[words[g, b, order[g, b, t]]] for t in range(L)])
                              for b in range(B)]) for g in range(G)])


def bf_electra(gl, words, mask, dl, rep, lam):
    out = []
    for g in range(gl.shape[0]):
        gen = [-_logsm(list(gl[g, b, t]))[words[g, b, t]] for b in range(gl.shape[1]) for t in range(gl.shape[2])
               if mask[g, b, t]]
        sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
        disc = [-(math.log(sig(dl[g, b, t])) if rep[g, b, t] else math.log(1 - sig(dl[g, b, t])))
                for b in range(gl.shape[1]) for t in range(gl.shape[2])]
        out.append((np.mean(gen) if gen else 0.0) + lam * np.mean(disc))
    return np.array(out)


def bf_cpc(c, z, W):
    G, B, K = c.shape[0], c.shape[1], z.shape[2]
    out = np.zeros((G, K))
    for g in range(G):
        for k in range(K):
            tot = 0.0
            for i in range(B):
                s = [float(z[g, j, k] @ W[g, k] @ c[g, i]) for j in range(B)]
                tot += -_logsm(s)[i]
            out[g, k] = tot / B
    return out


def _ints(high, *shape, seed=0):
    return torch.randint(0, high, shape, generator=torch.Generator().manual_seed(seed))


def _perms(G, B, L, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.stack([torch.stack([torch.randperm(L, generator=g) for _ in range(B)]) for _ in range(G)])


@pytest.mark.parametrize("G,B,L,V", [(1, 2, 3, 4), (2, 3, 4, 5), (3, 4, 5, 3)])
def test_sequence_losses_match_the_loops(G, B, L, V):
    logits, words, order = _rand(G, B, L, V, seed=100), _ints(V, G, B, L, seed=101), _perms(G, B, L, seed=102)
    np.testing.assert_allclose(ob.permutation_lm(logits, words, order).numpy(),
                               bf_plm(logits.numpy(), words.numpy(), order.numpy()), rtol=1e-10)
    mask = _ints(2, G, B, L, seed=103).bool()
    rep = _ints(2, G, B, L, seed=104).bool() & mask
    dl = _rand(G, B, L, seed=105)
    np.testing.assert_allclose(ob.electra(logits, words, mask, dl, rep).numpy(),
                               bf_electra(logits.numpy(), words.numpy(), mask.numpy(), dl.numpy(), rep.numpy(), 50.0),
                               rtol=1e-10)
    c, z, W = _rand(G, B, 3, seed=106), _rand(G, B, 2, 4, seed=107), 0.5 * _rand(G, 2, 4, 3, seed=108)
    np.testing.assert_allclose(ob.cpc_terms(c, z, W).numpy(), bf_cpc(c.numpy(), z.numpy(), W.numpy()), rtol=1e-10)
    np.testing.assert_allclose(ob.cpc(c, z, W).numpy(), bf_cpc(c.numpy(), z.numpy(), W.numpy()).mean(1), rtol=1e-10)


def test_sequence_losses_closed_forms():
    G, B, L, V = 2, 4, 5, 7
    words, order = _ints(V, G, B, L, seed=110), _perms(G, B, L, seed=111)
    zeros = torch.zeros(G, B, L, V, dtype=torch.float64)
    np.testing.assert_allclose(ob.permutation_lm(zeros, words, order).numpy(), math.log(V), rtol=1e-12)
    mask = torch.ones(G, B, L, dtype=torch.bool)
    np.testing.assert_allclose(ob.electra(zeros, words, mask, torch.zeros(G, B, L, dtype=torch.float64), mask).numpy(),
                               math.log(V) + 50 * math.log(2), rtol=1e-12)
    t = ob.electra_terms(zeros, words, torch.zeros_like(mask), torch.zeros(G, B, L, dtype=torch.float64), mask)
    np.testing.assert_allclose(t["generator"].numpy(), 0.0)           # no masked position: no generator loss
    c = torch.zeros(G, 6, 3, dtype=torch.float64)                    # equal scores: InfoNCE = log N
    np.testing.assert_allclose(ob.cpc_terms(c, _rand(G, 6, 2, 4, seed=112), _rand(G, 2, 4, 3, seed=113)).numpy(),
                               math.log(6), rtol=1e-12)


def test_sequence_losses_batched_equals_looped_and_registry():
    G, B, L, V = 3, 4, 4, 5
    logits, words, order = _rand(G, B, L, V, seed=120), _ints(V, G, B, L, seed=121), _perms(G, B, L, seed=122)
    mask, dl = _ints(2, G, B, L, seed=123).bool(), _rand(G, B, L, seed=124)
    c, z, W = _rand(G, B, 3, seed=125), _rand(G, B, 2, 3, seed=126), _rand(G, 2, 3, 3, seed=127)
    for f, args in ((ob.permutation_lm, (logits, words, order)), (ob.electra, (logits, words, mask, dl, mask)),
                    (ob.cpc, (c, z, W))):
        batched = f(*args)
        looped = torch.cat([f(*(a[g:g + 1] for a in args)) for g in range(G)])
        torch.testing.assert_close(batched, looped, rtol=1e-12, atol=1e-12)
        assert torch.equal(batched, f(*args))
    assert ob.OBJECTIVES["plm"] is ob.permutation_lm and ob.OBJECTIVES["electra"] is ob.electra
    assert ob.OBJECTIVES["cpc"] is ob.cpc

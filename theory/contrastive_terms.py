"""Estimators of the contrastive terms (Arora et al., ICML 2019): exact by enumeration on discrete latent-class
models, exact samplers of the class tuples, and Monte-Carlo estimates with standard errors on any encoder.

The theorems and their bound functions live in ``theory.contrastive``; this module measures the terms they take
(L_un and its collision parts, L_sup^mu, the block loss). Everything is float64; inputs are numpy arrays or
tensors, outputs floats.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import torch

from theory.contrastive import (_LN2, LOSSES, _check_k, _check_loss, _check_rho, _log_esp, collision_floor,
                                collision_terms, p_distinct, tau_k)


# --------------------------------------------------------------------------- the losses the estimators use

def _logistic_fast(v: torch.Tensor) -> torch.Tensor:
    """``theory.contrastive.logistic_loss`` without its concatenated zero column: log2(1 + e^{-v}) as one
    logaddexp at k = 1 (7x faster on the (C, C, n) margins of ``_mc_over_class_pairs``), and for k > 1 the
    max-shifted sum written out. Tolerance against logistic_loss: 1e-15 absolute per value; it is the more
    accurate of the two where the loss is tiny (log1p instead of log(1 + tiny)), so relative differences up
    to 1e-6 occur at losses below 1e-10."""
    if v.shape[-1] == 1:
        return torch.logaddexp(torch.zeros((), dtype=v.dtype), -v[..., 0]) / _LN2
    m = torch.clamp((-v).amax(-1), min=0.0)
    return (m + torch.log(torch.exp(-m) + torch.exp(-v - m[..., None]).sum(-1))) / _LN2


# Which losses the Monte-Carlo estimators evaluate: LOSSES (main's, the reference of the equivalence test and
# the benchmark) or these (the same functions, faster; the hinge is already one kernel).
FAST_LOSSES = {"logistic": _logistic_fast, "hinge": LOSSES["hinge"]}


# --------------------------------------------------------------------------- exact population terms

def _t64(a) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        return a.detach().to(torch.float64)
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


def _check_discrete(emb, pmf, rho):
    e, p = _t64(emb), _t64(pmf)
    r = _check_rho(rho)
    if e.dim() != 3:
        raise ValueError(f"emb: must have shape (C, m, d) (got {tuple(e.shape)})")
    C, m, _ = e.shape
    if tuple(p.shape) != (C, m):
        raise ValueError(f"pmf: must have shape {(C, m)} (got {tuple(p.shape)})")
    if torch.any(p < 0) or torch.any((p.sum(1) - 1).abs() > 1e-9):
        raise ValueError("pmf: rows must be >= 0 and sum to 1")
    if r.shape[0] != C:
        raise ValueError(f"rho: must have length C={C} (got {r.shape[0]})")
    return e, p, r


def _ordered_distinct(C: int, K: int) -> np.ndarray:
    """All ordered K-tuples of distinct classes, shape (C!/(C-K)!, K)."""
    return np.array(list(itertools.permutations(range(C), K)), dtype=np.int64).reshape(-1, K)


def _sup_mu_margins(x_emb: torch.Tensor, label: torch.Tensor, others: torch.Tensor,
                    mu: torch.Tensor) -> torch.Tensor:
    """Mean-classifier margins f(x)^T (mu_label - mu_other); x_emb (..., d), label (...), others (..., k)."""
    diff = mu[label].unsqueeze(-2) - mu[others]  # (..., k, d)
    return torch.einsum("...d,...kd->...k", x_emb, diff)


def distinct_margins(v: torch.Tensor, neg_cls: torch.Tensor) -> torch.Tensor:
    """v (..., k) with every repeated negative class (after its first occurrence) set to +inf: a +inf margin is
    no entry at all for both losses (exp(-inf) = 0 in the logistic sum, -inf in the hinge's max)."""
    k = neg_cls.shape[-1]
    earlier = torch.triu(torch.ones(k, k, dtype=torch.bool), diagonal=1)  # [i, j]: i < j
    repeat = ((neg_cls[..., :, None] == neg_cls[..., None, :]) & earlier).any(dim=-2)
    return torch.where(repeat, torch.full_like(v, float("inf")), v)


def distinct_count_law(rho, k: int, max_subsets: int = 1 << 14, n_mc: int = 400_000) -> tuple[np.ndarray, bool]:
    """P(J = j | no collision), j = 0..k, J = number of distinct classes among k negatives, given that none is c+.

    Given c+ = c (probability prop. to rho_c (1 - rho_c)^k), the negatives are i.i.d. from rho restricted to the
    other classes. Exact for a uniform rho (a birth chain: a new draw is new w.p. (n - j)/n) and, for other laws, by
    inclusion-exclusion over subsets while 2^(C-1) <= max_subsets; otherwise Monte Carlo with n_mc seeded draws.
    Returns (law, exact).
    """
    r = _check_rho(rho)
    k = _check_k(k)
    w = r * np.exp(k * np.log1p(-np.minimum(r, 1.0)))
    if w.sum() <= 0:
        raise ValueError("rho: no tuple avoids c+ (a class has all the mass)")
    w = w / w.sum()
    law = np.zeros(k + 1)
    if np.allclose(r, r[0]):
        n = r.size - 1
        p = np.zeros(k + 1)
        p[0] = 1.0
        for _ in range(k):
            stay = p * np.arange(k + 1) / n
            move = p * (n - np.arange(k + 1)) / n
            p = stay + np.concatenate([[0.0], move[:-1]])
        return p, True
    C = r.size
    if 2 ** (C - 1) <= max_subsets:
        for c in np.nonzero(w > 0)[0]:
            q = np.delete(r, c) / (1 - r[c])
            n = q.size
            A = np.zeros(n + 1)  # A_u = sum_{|U| = u} q(U)^k
            for mask in range(1 << n):
                sel = [(mask >> i) & 1 for i in range(n)]
                A[sum(sel)] += float(np.dot(sel, q)) ** k
            for j in range(1, min(k, n) + 1):
                law[j] += w[c] * sum((-1) ** (j - u) * math.comb(n - u, j - u) * A[u] for u in range(j + 1))
        return np.clip(law, 0.0, 1.0), True
    rng = np.random.default_rng(20190209)
    c_pos, c_neg = _sample_no_collision(r, k, n_mc, rng)
    J = (np.diff(np.sort(c_neg, axis=1), axis=1) != 0).sum(1) + 1
    return np.bincount(J, minlength=k + 1)[: k + 1] / n_mc, False


def distinct_zero_loss(rho, k: int, loss: str) -> float:
    """E[ell(0_J) | no collision]: the de-duplicated bound's trivial value, the zero encoder's loss on the
    tuple's own distinct-class task (1 for the hinge, E log2(1 + J) for the base-2 logistic)."""
    _check_loss(loss)
    if loss == "hinge":
        return 1.0
    law, _ = distinct_count_law(rho, k)
    return float(np.dot(law, np.log2(1.0 + np.arange(law.size))))


def exact_terms(emb, pmf, rho, loss: str, k: int = 1, max_terms: float = 2e8) -> dict:
    """Exact population terms on a discrete latent-class model, by enumeration.

    emb (C, m, d): embeddings f of the support points; pmf (C, m): D_c; rho (C,).
    Returns floats:
      tau        = tau_k = P(c+ in {c-_i})                   (= sum rho^2 at k = 1)
      L_un       = E ell({f(x)^T(f(x+) - f(x-_i))}_i)         (paper Sec. 2, k negatives)
      L_un_eq    = L_un conditioned on c+ in {c-_i}, L_un_neq on c+ not in {c-_i},
                   so L_un = (1 - tau) L_un_neq + tau L_un_eq (paper Sec. 4.2 / 6.1)
      L_sup_mu   = mean-classifier loss, mu_c = sum_i pmf[c,i] emb[c,i], averaged over
                   (k+1)-way tasks ~ rho^{k+1} | distinct with a uniform label (Def. 2.1-2.2)
      p_distinct, collision_floor: see those functions.
    Cost ~ C m^2 (C m)^k k for L_un and C^(k+1) m k for L_sup_mu; raises
    ValueError("k: ...") beyond max_terms.
    """
    _check_loss(loss)
    k = _check_k(k)
    e, p, r = _check_discrete(emb, pmf, rho)
    C, m, _ = e.shape
    N = C * m
    if C * m * m * float(N) ** k * k > max_terms or float(C) ** (k + 1) * m * k > max_terms:
        raise ValueError(f"k: enumeration too large for C={C}, m={m}, k={k}")
    ell = LOSSES[loss]
    rt = torch.as_tensor(r)
    pts = e.reshape(N, -1)
    gram = pts @ pts.T
    q = (rt[:, None] * p).reshape(N)  # marginal law of a negative point
    cls = torch.arange(C).repeat_interleave(m)
    n_tup = N ** k
    step = max(1, int(4_000_000 // (m * m * k)))  # bounds the memory of one margin block
    total = eq = 0.0
    for lo in range(0, n_tup, step):
        # negative k-tuples of flat support points, lo .. lo+step-1 in lexicographic order
        flat = np.arange(lo, min(n_tup, lo + step))
        neg_idx = torch.as_tensor(np.stack(np.unravel_index(flat, (N,) * k), axis=1))
        w_neg = q[neg_idx].prod(dim=1)
        neg_cls = cls[neg_idx]
        for c in range(C):
            rows = torch.arange(c * m, (c + 1) * m)
            gap = gram[rows][:, rows]  # (m anchors, m positives)
            neg = gram[rows][:, neg_idx]  # (m, T, k)
            v = gap[:, :, None, None] - neg[:, None, :, :]  # (m, m, T, k)
            w = rt[c] * p[c][:, None, None] * p[c][None, :, None] * w_neg[None, None, :]
            lw = ell(v) * w
            hit = (neg_cls == c).any(dim=1)
            total += float(lw.sum())
            eq += float(lw[:, :, hit].sum())
    tk = tau_k(r, k)
    mu = torch.einsum("cm,cmd->cd", p, e)
    tuples = torch.as_tensor(_ordered_distinct(C, k + 1))
    pd = p_distinct(r, k)
    if tuples.shape[0] == 0 or pd == 0.0:
        sup = float("nan")
    else:
        w_t = rt[tuples].prod(dim=1) / pd  # (T,)
        lab = tuples[:, 0]
        v = _sup_mu_margins(e[lab], lab[:, None].expand(-1, m), tuples[:, None, 1:].expand(-1, m, -1), mu)
        sup = float((ell(v) * p[lab] * w_t[:, None]).sum())
    # The de-duplicated lemma's measured term: c+ ~ rho, c-_i ~ rho i.i.d. | c+ not in {c-_i}, label c+, one
    # margin f(x)^T (mu_c+ - mu_s) per distinct negative class s.
    cls_t = torch.as_tensor(np.array(list(itertools.product(range(C), repeat=k + 1)))).reshape(-1, k + 1)
    keep = ~(cls_t[:, 1:] == cls_t[:, :1]).any(dim=1)
    cls_t = cls_t[keep]
    if tk < 1 and cls_t.shape[0]:
        # normalised by its own sum, which is 1 - tau_k: computed as 1 - tk it loses every digit that tau_k
        # shares with 1 (1e-10 relative at tau_k = 1 - 8e-7, found by hypothesis), a sum of products loses none
        w_t = rt[cls_t].prod(dim=1)
        w_t = w_t / w_t.sum()
        lab = cls_t[:, 0]
        negs = cls_t[:, None, 1:].expand(-1, m, -1)
        v = distinct_margins(_sup_mu_margins(e[lab], lab[:, None].expand(-1, m), negs, mu), negs)
        sup_distinct = float((ell(v) * p[lab] * w_t[:, None]).sum())
    else:
        sup_distinct = float("nan")
    return {
        "tau": tk,
        "L_sup_mu_distinct": sup_distinct,
        "L_un": total,
        "L_un_eq": eq / tk if tk > 0 else float("nan"),
        "L_un_neq": (total - eq) / (1 - tk) if tk < 1 else float("nan"),
        "L_sup_mu": sup,
        "p_distinct": pd,
        "collision_floor": collision_floor(r, k, loss),
    }


def exact_block_loss(emb, pmf, rho, loss: str, b: int) -> float:
    """Exact block (CURL) loss of the paper's Sec. 6.3 on a discrete model (one negative block).

    L_un^block = E ell( f(x)^T ( mean_i f(x+_i) - mean_i f(x-_i) ) ), c+, c- ~ rho^2,
    x, x+_1..x+_b ~ D_{c+}, x-_1..x-_b ~ D_{c-} (all b negatives share c-).
    emb (C, m, d), pmf (C, m), rho (C,).  Cost C^2 m^(2b+1).
    """
    _check_loss(loss)
    b = _check_k(b)
    e, p, r = _check_discrete(emb, pmf, rho)
    C, m, d = e.shape
    idx = torch.as_tensor(np.array(list(itertools.product(range(m), repeat=b)))).reshape(-1, b)
    blk_mean = e[:, idx].mean(dim=2)  # (C, m^b, d)
    blk_w = p[:, idx].prod(dim=2)  # (C, m^b)
    rt = torch.as_tensor(r)
    ell = LOSSES[loss]
    total = 0.0
    for a in range(C):
        s_pos = e[a] @ blk_mean[a].T  # (m, m^b)
        s_neg = torch.einsum("jd,cbd->jcb", e[a], blk_mean)  # (m, C, m^b)
        v = s_pos[:, None, :, None, None] - s_neg[:, :, None, :, None]  # (m, C, m^b, m^b, 1)
        w = (rt[a] * p[a])[:, None, None, None] * rt[None, :, None, None] \
            * blk_w[a][None, None, :, None] * blk_w[None, :, None, :]
        total += float((ell(v) * w).sum())
    return total


# --------------------------------------------------------------------------- samplers (exact)

def sample_task_tuples(rho, k: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """n ordered (k+1)-tuples ~ rho^{k+1} | all distinct (the paper's task law), shape (n, k+1).

    Exact: rejection while its acceptance (k+1)! e_{k+1}(rho) >= 0.2, else a
    conditional-Poisson pass (set S with P(S) prop. to prod rho, uniform order).
    """
    r = _check_rho(rho)
    k = _check_k(k)
    K, C = k + 1, r.shape[0]
    if K > int(np.sum(r > 0)):
        raise ValueError(f"k: k+1={K} exceeds the number of classes with positive mass")
    if n == 0:
        return np.empty((0, K), dtype=np.int64)
    le = _log_esp(r, K)
    acc = math.exp(math.lgamma(K + 1) + le[K])
    if acc >= 0.2:
        kept, have = [], 0
        while have < n:
            draw = rng.choice(C, size=(int(math.ceil((n - have) / acc * 1.2)) + 16, K), p=r)
            ok = np.all(np.diff(np.sort(draw, axis=1), axis=1) != 0, axis=1)
            kept.append(draw[ok])
            have += int(ok.sum())
        return np.concatenate(kept)[:n].astype(np.int64)
    with np.errstate(divide="ignore"):
        lr = np.log(r)
    suffix = np.full((C + 1, K + 1), -np.inf)
    suffix[C, 0] = 0.0
    for j in range(C - 1, -1, -1):
        suffix[j, 0] = 0.0
        suffix[j, 1:] = np.logaddexp(suffix[j + 1, 1:], lr[j] + suffix[j + 1, :-1])
    out = np.empty((n, K), dtype=np.int64)
    left = np.full(n, K, dtype=np.int64)
    for j in range(C):
        act = np.nonzero(left > 0)[0]
        if act.size == 0:
            break
        rem = left[act]
        with np.errstate(invalid="ignore"):
            pr = np.exp(lr[j] + suffix[j + 1, rem - 1] - suffix[j, rem])
        take = act[rng.random(act.size) < np.nan_to_num(pr, nan=0.0)]
        out[take, K - left[take]] = j
        left[take] -= 1
    return rng.permuted(out, axis=1)


def _sample_excluding(r: np.ndarray, excl: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """(n, k) i.i.d. classes from rho restricted to classes != excl[row] (requires rho[excl] < 1)."""
    cum = np.cumsum(r)
    cum[-1] = 1.0
    re = r[excl][:, None]
    t = rng.random((excl.shape[0], k)) * (1.0 - re)
    before = (cum[excl] - r[excl])[:, None]
    # Skip the excluded class's interval of the CDF.
    t = np.where(t >= before, t + re, t)
    out = np.searchsorted(cum, t, side="right")
    return np.minimum(out, r.shape[0] - 1)


def _sample_collision(r: np.ndarray, k: int, n: int, rng: np.random.Generator):
    """(c_pos (n,), c_neg (n, k)) ~ rho^{k+1} conditioned on c+ in {c-_i}."""
    C = r.shape[0]
    with np.errstate(divide="ignore"):
        hit = -np.expm1(k * np.log1p(-r))  # P(at least one collision | c+ = c)
    w = r * hit
    c_pos = rng.choice(C, size=n, p=w / w.sum())
    rc, qc = r[c_pos], hit[c_pos]
    # First collision position J (1-based): P(J=j) = (1-rc)^{j-1} rc / qc, by inverse CDF.
    u = rng.random(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        j = np.ceil(np.log1p(-u * qc) / np.log1p(-rc))
    j = np.clip(np.nan_to_num(j, nan=1.0), 1, k).astype(np.int64)
    pos = np.arange(1, k + 1)[None, :]
    # Rows with rc == 1 have J = 1 and never read their 'before' draws.
    before = _sample_excluding(r, c_pos, k, rng)
    after = rng.choice(C, size=(n, k), p=r)
    c_neg = np.where(pos < j[:, None], before, np.where(pos == j[:, None], c_pos[:, None], after))
    return c_pos.astype(np.int64), c_neg.astype(np.int64)


def _sample_no_collision(r: np.ndarray, k: int, n: int, rng: np.random.Generator):
    """(c_pos (n,), c_neg (n, k)) ~ rho^{k+1} conditioned on c+ not in {c-_i}."""
    C = r.shape[0]
    w = r * np.exp(k * np.log1p(-np.minimum(r, 1.0)))
    c_pos = rng.choice(C, size=n, p=w / w.sum())
    return c_pos.astype(np.int64), _sample_excluding(r, c_pos, k, rng).astype(np.int64)


# --------------------------------------------------------------------------- Monte-Carlo terms

def _mean_se(z: torch.Tensor) -> tuple[float, float]:
    n = z.shape[0]
    return float(z.mean()), float(z.std(unbiased=True) / math.sqrt(n)) if n > 1 else float("nan")


def mc_terms(emb_anchor, emb_pos, emb_neg, mu, rho, loss: str, k: int, rng: np.random.Generator,
             n_tuples: int | None = None, max_pairs: int = 100_000, chunk: int = 4_000_000,
             losses: dict = FAST_LOSSES) -> dict:
    """Monte-Carlo estimates, with standard errors, of the ``exact_terms`` keys on any model.

    emb_anchor, emb_pos: (C, n, d); emb_neg: (C, n_neg, d).  Entry [c, j] is the
    embedding of a fresh x ~ D_c; all entries must be independent (three
    separate pools, each column an independent draw per class).  mu (C, d):
    class means, estimated by the caller from yet another sample; L_sup_mu and
    its SE are conditional on this mu.  rho (C,).

    Two regimes, chosen automatically:
    * k = 1 and C^2 <= max_pairs: exact over classes (``_mc_over_class_pairs``).
    * otherwise: class tuples are sampled, stratified on collision (``_mc_sampled_tuples``).
    Returns dict of floats with keys tau, p_distinct, collision_floor, L_un,
    L_un_eq, L_un_neq, L_sup_mu and each with "_se", plus "exact_over_classes" (bool).
    ``losses``: FAST_LOSSES (default) or ``theory.contrastive.LOSSES``, main's (the reference); they agree
    to 1e-15 per value, so the estimates agree to about 1e-13 absolute (tests/experiments/test_latent_eval_fast.py).
    """
    _check_loss(loss)
    k = _check_k(k)
    r = _check_rho(rho)
    A, P, Ng, M = _t64(emb_anchor), _t64(emb_pos), _t64(emb_neg), _t64(mu)
    C = r.shape[0]
    if A.dim() != 3 or A.shape[0] != C or P.shape != A.shape:
        raise ValueError(f"emb_anchor: emb_anchor and emb_pos must both have shape (C={C}, n, d)")
    if Ng.dim() != 3 or Ng.shape[0] != C or Ng.shape[2] != A.shape[2]:
        raise ValueError(f"emb_neg: must have shape (C={C}, n_neg, d={A.shape[2]})")
    if tuple(M.shape) != (C, A.shape[2]):
        raise ValueError(f"mu: must have shape {(C, A.shape[2])} (got {tuple(M.shape)})")
    out = dict(_collision_terms(r.tobytes(), k, loss)) if losses is FAST_LOSSES else collision_terms(r, k, loss)
    pairs_exact = k == 1 and C * C <= max_pairs
    out["exact_over_classes"] = pairs_exact
    if pairs_exact:
        out.update(_mc_over_class_pairs(A, P, Ng, M, r, losses[loss], chunk))
    else:
        out.update(_mc_sampled_tuples(A, P, Ng, M, r, losses[loss], k, out["tau"], out["p_distinct"], rng,
                                      n_tuples))
    return out


@functools.lru_cache(maxsize=256)
def _collision_terms(rho_bytes: bytes, k: int, loss: str) -> dict:
    """``collision_terms`` (rho's part of the terms, the same for every model and checkpoint), computed once."""
    return collision_terms(np.frombuffer(rho_bytes, dtype=np.float64), k, loss)


def _mc_over_class_pairs(A: torch.Tensor, P: torch.Tensor, Ng: torch.Tensor, M: torch.Tensor, r: np.ndarray,
                         ell, chunk: int) -> dict:
    """k = 1, exact over classes: column j gives
    Z_j = sum_{a,b} rho_a rho_b ell(f(x_aj)^T (f(x+_aj) - f(x-_bj))), i.i.d. over j,
    so mean and SE are those of Z (likewise for the eq / neq / sup parts with
    their exact conditional weights).  Uses min(n, n_neg) columns."""
    C = r.shape[0]
    rt = torch.as_tensor(r)
    out = {}
    n = min(A.shape[1], Ng.shape[1])
    if n < 2:
        raise ValueError("emb_anchor: need at least 2 columns for a standard error")
    a, pp, ng = A[:, :n], P[:, :n], Ng[:, :n]
    w_pair = rt[:, None] * rt[None, :]
    off = 1.0 - torch.eye(C, dtype=torch.float64)
    z_all = torch.zeros(n, dtype=torch.float64)
    z_eq = torch.zeros(n, dtype=torch.float64)
    z_sup = torch.zeros(n, dtype=torch.float64)
    step = max(1, int(chunk // max(1, C * n)))
    for s in range(0, C, step):
        sl = slice(s, min(C, s + step))
        g_pos = (a[sl] * pp[sl]).sum(-1)  # (c, n)
        g_neg = torch.einsum("ajd,bjd->abj", a[sl], ng)  # (c, C, n)
        lv = ell((g_pos[:, None, :] - g_neg)[..., None])  # (c, C, n)
        z_all += torch.einsum("ab,abj->j", w_pair[sl], lv)
        z_eq += torch.einsum("ab,abj->j", (w_pair * torch.eye(C, dtype=torch.float64))[sl], lv)
        # Mean classifier on 2-way tasks {a, b}: margin f(x_a)^T (mu_a - mu_b).
        sv = torch.einsum("ajd,abd->abj", a[sl], M[sl][:, None, :] - M[None, :, :])
        z_sup += torch.einsum("ab,abj->j", (w_pair * off)[sl], ell(sv[..., None]))
    t1 = float(np.sum(r ** 2))
    out["L_un"], out["L_un_se"] = _mean_se(z_all)
    out["L_un_eq"], out["L_un_eq_se"] = _mean_se(z_eq / t1)
    if t1 < 1:
        out["L_un_neq"], out["L_un_neq_se"] = _mean_se((z_all - z_eq) / (1 - t1))
        out["L_sup_mu"], out["L_sup_mu_se"] = _mean_se(z_sup / (1 - t1))
    else:
        out["L_un_neq"] = out["L_un_neq_se"] = out["L_sup_mu"] = out["L_sup_mu_se"] = float("nan")
    return out


def _mc_sampled_tuples(A: torch.Tensor, P: torch.Tensor, Ng: torch.Tensor, M: torch.Tensor, r: np.ndarray, ell,
                       k: int, tk: float, pd: float, rng: np.random.Generator, n_tuples: int | None) -> dict:
    """Class tuples sampled, stratified on collision: n_tuples tuples ~ rho^{k+1} | c+ in {c-_i} and n_tuples |
    c+ not in {c-_i}, so both L_un_eq and L_un_neq are estimated even when tau is tiny; L_un =
    tau L_un_eq + (1 - tau) L_un_neq with the exact tau (``tk``).  Every draw a tuple needs of class c is read
    from the next unused column of class c's pool (anchor and positive share a column index in their two pools),
    so all tuples are independent and the SE is honest.  Default n_tuples: the largest count whose expected
    per-class usage, plus 5 SD, fits the pools (about n / (2 max_c usage)); a pool that still runs out raises
    ValueError.  L_sup_mu: tasks ~ rho^{k+1} | distinct, label = first class, x from the next unused anchor
    column of the label class."""
    C = r.shape[0]
    out = {}
    n, n_neg = A.shape[1], Ng.shape[1]
    use = _stratum_usage(r, k)
    if n_tuples is None:
        n_t = min(_fit_count(use["anchor_eq"] + use["anchor_neq"], n),
                  _fit_count(use["neg_eq"] + use["neg_neq"], n_neg))
    else:
        n_t = int(n_tuples)
    if n_t < 2:
        raise ValueError(f"n_tuples: need at least 2 tuples per stratum (got {n_t}; pools n={n}, "
                         f"n_neg={n_neg} are too small for k={k})")
    a_off = np.zeros(C, dtype=np.int64)
    n_off = np.zeros(C, dtype=np.int64)

    def stratum(c_pos: np.ndarray, c_neg: np.ndarray, distinct: bool = False):
        nonlocal a_off, n_off
        cols, a_off = _fresh_columns(c_pos, a_off, n, "emb_anchor")
        ncols, n_off = _fresh_columns(c_neg.reshape(-1), n_off, n_neg, "emb_neg")
        cp, cols = torch.as_tensor(c_pos), torch.as_tensor(cols)
        x, xp = A[cp, cols], P[cp, cols]
        xn = Ng[torch.as_tensor(c_neg), torch.as_tensor(ncols).reshape(c_neg.shape)]  # (n_t, k, d)
        v = (x * xp).sum(-1)[:, None] - torch.einsum("td,tkd->tk", x, xn)
        if not distinct:
            return ell(v)
        # the same anchors against the class means of the tuple's distinct negative classes (label c+)
        cn = torch.as_tensor(c_neg)
        return ell(v), ell(distinct_margins(_sup_mu_margins(x, cp, cn, M), cn))

    out["L_un_eq"], out["L_un_eq_se"] = _mean_se(stratum(*_sample_collision(r, k, n_t, rng)))
    if tk < 1:
        z_neq, z_dist = stratum(*_sample_no_collision(r, k, n_t, rng), distinct=True)
        out["L_un_neq"], out["L_un_neq_se"] = _mean_se(z_neq)
        out["L_sup_mu_distinct"], out["L_sup_mu_distinct_se"] = _mean_se(z_dist)
        neq, neq_se = out["L_un_neq"], out["L_un_neq_se"]
    else:
        out["L_un_neq"], out["L_un_neq_se"] = float("nan"), float("nan")
        out["L_sup_mu_distinct"] = out["L_sup_mu_distinct_se"] = float("nan")
        neq, neq_se = 0.0, 0.0
    out["L_un"] = tk * out["L_un_eq"] + (1 - tk) * neq
    out["L_un_se"] = math.sqrt((tk * out["L_un_eq_se"]) ** 2 + ((1 - tk) * neq_se) ** 2)
    if k + 1 > int(np.sum(r > 0)) or pd == 0.0:
        out["L_sup_mu"] = out["L_sup_mu_se"] = float("nan")
        return out
    # P(label = c) <= min(rho_c / p_distinct, 1/(k+1)): a conservative per-class usage for sizing.
    n_sup = n_t if n_tuples is not None else _fit_count(np.minimum(r / pd, 1.0 / (k + 1)), n)
    tasks = sample_task_tuples(r, k, max(n_sup, 2), rng)
    cols, _ = _fresh_columns(tasks[:, 0], np.zeros(C, dtype=np.int64), n, "emb_anchor")
    tasks = torch.as_tensor(tasks)
    x = A[tasks[:, 0], torch.as_tensor(cols)]
    out["L_sup_mu"], out["L_sup_mu_se"] = _mean_se(ell(_sup_mu_margins(x, tasks[:, 0], tasks[:, 1:], M)))
    return out


def _stratum_usage(r: np.ndarray, k: int) -> dict:
    """Expected number of pool entries of each class one tuple reads, per stratum; each (C,).

    Collision stratum: c+ ~ v prop. to rho_c hit_c (hit_c = 1 - (1 - rho_c)^k);
    given c+ = a, E[#negatives equal to a] = k rho_a / hit_a and the other
    negatives are i.i.d. rho restricted to classes != a.  No-collision stratum:
    c+ ~ w prop. to rho_c (1 - rho_c)^k, negatives i.i.d. rho restricted != c+.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        hit = -np.expm1(k * np.log1p(-r))
        v = r * hit / np.sum(r * hit)
        w_raw = r * np.exp(k * np.log1p(-np.minimum(r, 1.0)))
        w = w_raw / w_raw.sum() if w_raw.sum() > 0 else np.zeros_like(r)
        own = np.where(hit > 0, k * r / hit, 0.0)  # E[m | m >= 1]
        s = np.where(r < 1, v * (k - own) / (1 - r), 0.0)
        t = np.where(r < 1, w / (1 - r), 0.0)
    return {"anchor_eq": v, "neg_eq": v * own + r * (s.sum() - s),
            "anchor_neq": w, "neg_neq": k * r * (t.sum() - t)}


def _fit_count(rate: np.ndarray, pool: int) -> int:
    """Largest n with n u + 5 sqrt(n u) + 5 <= pool for every class usage rate u > 0 (5-SD margin)."""
    if pool < 5:
        return 0
    y = (-5.0 + math.sqrt(25.0 + 4.0 * (pool - 5))) / 2.0
    u = rate[rate > 0]
    return int(math.floor(np.min(y * y / u))) if u.size else 0


def _fresh_columns(classes: np.ndarray, offset: np.ndarray, pool: int, name: str):
    """Assign each entry the next unused pool column of its class: (columns, new offset).

    Fresh columns make every sampled tuple read independent draws, so the SE is honest.
    """
    c = np.asarray(classes, dtype=np.int64).reshape(-1)
    order = np.argsort(c, kind="stable")
    sc = c[order]
    rank = np.empty_like(c)
    rank[order] = np.arange(c.size) - np.searchsorted(sc, sc, side="left")
    cols = offset[c] + rank
    if cols.size and cols.max() >= pool:
        raise ValueError(f"{name}: pool of {pool} draws per class is too small for the requested "
                         f"tuples (pass a smaller n_tuples or larger pools)")
    return cols, offset + np.bincount(c, minlength=offset.shape[0])

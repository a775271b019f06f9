"""Pretext learners for self-prediction: fit psi(x1) ~ E[X2 | X1 = x1] on n1 unlabelled pairs, all seeds at once.

Every learner takes the pretext samples of S seeds stacked along a leading axis, x1 (S, n1, d1) and x2 (S, n1,
d2), and returns a feature map ``phi(x) -> (S, N, q)`` that maps seed s's inputs through seed s's fit (float64,
on the CPU). Seed s's fit reads only slice s of the data and its own torch.Generator, so its numbers do not
depend on how many seeds share the batch.

* "linear": OLS with an intercept, psi(x) = b + x B (closed form, min-norm when n1 <= d1).
* "rff": random Fourier features z(x) = sqrt(2/D) cos(x W / h + c), W ~ N(0, I), c ~ U(0, 2 pi), bandwidth h
  = rff_bandwidth * the median pairwise distance of the seed's x1 (median heuristic), then ridge with an
  unpenalised intercept, lambda = rff_ridge * n1 (a kernel-ridge approximation, Rahimi & Recht 2007).
* "mlp": psi(x) = relu(x W1 + b1) W2 + b2, mean squared error, batched Adam (experiments.engine.train).
* "softmax": the well-specified head psi(x) = A softmax(W x + b) with K = spec.softmax_atoms atoms (the run sets
  K = n_latent), mean squared error, batched Adam. For the Gaussian families with shared isotropic noise
  (exact_ci, approx_ci at alpha = 0) psi*(x1) = A_latent^T softmax(M1 x1 / s^2 - ||M1||^2 / (2 s^2) + log p), so
  the class contains psi*, and eps_pre is the estimation and optimisation error alone, not an approximation error
  (the standardisation of both views is affine and the softmax sums to 1, so it keeps the class).
* "dae": denoising autoencoder on X1 (x1 + Gaussian noise -> x1); the representation is the hidden layer.
* "masked": masked-coordinate prediction on X1 (each coordinate hidden with probability mask_frac, set to its
  mean, and predicted from the rest; loss on the hidden coordinates only); the representation is the hidden
  layer of the unmasked input.
The regression learners (output in R^{d2}) are the psi of the theorem; dae and masked are the other
self-prediction objectives of the issue, compared on the same probe. The torch learners standardise both views
per coordinate with the seed's pretext mean and std, and undo it on the output.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from experiments import objectives
from experiments.encoders import encode, init_encoder
from experiments.engine.train import gather_rows, train

REGRESSION = ("linear", "rff", "mlp", "softmax")
HIDDEN = ("dae", "masked")
LEARNERS = REGRESSION + HIDDEN

FeatureMap = Callable[[Tensor], Tensor]
CHUNK = 8192   # rows per block where a learner's intermediate features would be large


# ------------------------------------------------------------------------------------- least squares
def lstsq_intercept(X: Tensor, Y: Tensor, weight: Tensor | None = None, ridge: float = 0.0):
    """Batched (weighted) least squares with an unpenalised intercept, float64 on the CPU.

    Args:
        X: (B, N, p) features; Y: (B, N, q) targets.
        weight: (B, N) in {0, 1} (rows with weight 0 are left out: a padded batch of unequal sample sizes), or
            None for all ones.
        ridge: lambda >= 0 of the penalty lambda ||coef||_F^2; 0 gives OLS, min-norm where X is rank deficient.

    Returns:
        coef (B, p, q), intercept (B, 1, q): the prediction is X coef + intercept.
    """
    X, Y = X.double().cpu(), Y.double().cpu()
    w = torch.ones(X.shape[:2], dtype=X.dtype) if weight is None else weight.double().cpu()
    tot = w.sum(1, keepdim=True).clamp_min(1.0)[..., None]          # (B, 1, 1)
    mx = (w[..., None] * X).sum(1, keepdim=True) / tot
    my = (w[..., None] * Y).sum(1, keepdim=True) / tot
    sw = w.sqrt()[..., None]
    Xc, Yc = sw * (X - mx), sw * (Y - my)
    if ridge > 0:
        gram = Xc.transpose(1, 2) @ Xc + ridge * torch.eye(X.shape[2], dtype=X.dtype)
        coef = torch.cholesky_solve(Xc.transpose(1, 2) @ Yc, torch.linalg.cholesky(gram))
    else:
        coef = torch.linalg.lstsq(Xc, Yc, driver="gelsd").solution
    return coef, my - mx @ coef


def _affine(coef: Tensor, intercept: Tensor) -> FeatureMap:
    return lambda x: x.double().cpu() @ coef + intercept


# ------------------------------------------------------------------------------------- closed form
def fit_linear(x1: Tensor, x2: Tensor, spec, gens, device: str) -> FeatureMap:
    return _affine(*lstsq_intercept(x1, x2))


def median_distance(x: Tensor, max_points: int = 500) -> Tensor:
    """(S,) median pairwise Euclidean distance among the first ``max_points`` rows of each seed's x (S, n, d)."""
    x = x[:, :max_points].double()
    d = torch.cdist(x, x)
    iu = torch.triu_indices(x.shape[1], x.shape[1], offset=1)
    return d[:, iu[0], iu[1]].median(dim=1).values


def fit_rff(x1: Tensor, x2: Tensor, spec, gens, device: str) -> FeatureMap:
    S, n1, d1 = x1.shape
    D = spec.rff_features
    h = (spec.rff_bandwidth * median_distance(x1)).clamp_min(1e-12)  # (S,)
    W = torch.stack([torch.randn(d1, D, generator=g, dtype=torch.float64) for g in gens]) / h[:, None, None]
    c = torch.stack([torch.rand(1, D, generator=g, dtype=torch.float64) for g in gens]) * (2 * math.pi)

    def features(x: Tensor) -> Tensor:
        return math.sqrt(2.0 / D) * torch.cos(x.double().cpu() @ W + c)

    # Ridge with an unpenalised intercept from accumulated moments, CHUNK rows at a time: the (S, n1, D)
    # feature matrix is never held whole (n1 = 60000, D = 256 and 6 seeds would be 740 MB).
    gram, cross = torch.zeros(S, D, D, dtype=torch.float64), torch.zeros(S, D, x2.shape[2], dtype=torch.float64)
    sz, sy = torch.zeros(S, 1, D, dtype=torch.float64), torch.zeros(S, 1, x2.shape[2], dtype=torch.float64)
    for i in range(0, n1, CHUNK):
        z, y = features(x1[:, i:i + CHUNK]), x2[:, i:i + CHUNK].double()
        gram += z.transpose(1, 2) @ z
        cross += z.transpose(1, 2) @ y
        sz += z.sum(1, keepdim=True)
        sy += y.sum(1, keepdim=True)
    mz, my = sz / n1, sy / n1
    gram_c = gram - n1 * mz.transpose(1, 2) @ mz + spec.rff_ridge * n1 * torch.eye(D, dtype=torch.float64)
    coef = torch.cholesky_solve(cross - n1 * mz.transpose(1, 2) @ my, torch.linalg.cholesky(gram_c))
    intercept = my - mz @ coef
    return lambda x: features(x) @ coef + intercept


# ------------------------------------------------------------------------------------- torch learners
class _Standard:
    """Per-seed, per-coordinate standardisation fitted on the pretext sample (S, n, d)."""

    def __init__(self, x: Tensor):
        self.mean = x.mean(1, keepdim=True)
        self.std = x.std(1, keepdim=True).clamp_min(1e-8)

    def __call__(self, x: Tensor) -> Tensor:
        return (x.double().cpu() - self.mean) / self.std

    def undo(self, z: Tensor) -> Tensor:
        return z * self.std + self.mean


def _batches(gens, n: int, steps: int, batch: int, device: str) -> Tensor:
    """(S, steps, batch) minibatch indices, seed s's from its own generator."""
    return torch.stack([torch.randint(n, (steps, batch), generator=g) for g in gens]).to(device)


def _train_net(x_in: Tensor, target: Tensor, spec, gens, device: str, corrupt=None, context: str = "") -> dict:
    """Train S one-hidden-layer nets relu(x W1 + b1) W2 + b2 on (standardised) x_in -> target, MSE.

    ``corrupt(xb, step) -> (xb_in, mask)`` may corrupt the input batch and return a (S, B, d_out) weight of the
    coordinates the loss counts (None: all). Returns the float32 parameters after ``spec.steps`` Adam steps.
    """
    S, n, d_in = x_in.shape
    d_out = target.shape[2]
    params = init_encoder("mlp", d_in, d_out, S, gens, width=spec.width, device=device)
    params["b2"] = torch.zeros(S, 1, d_out, device=device)
    same = target is x_in   # dae / masked reconstruct their input: one gather serves both
    xs = x_in.float().to(device)
    ts = xs if same else target.float().to(device)
    batch = min(spec.batch_size, n)
    idx = _batches(gens, n, spec.steps, batch, device)

    def loss_fn(p: dict, step: int) -> Tensor:
        xb = gather_rows(xs, idx[:, step])
        tb = xb if same else gather_rows(ts, idx[:, step])
        mask = None
        if corrupt is not None:
            xb, mask = corrupt(xb, step)
        return objectives.mse(encode({k: p[k] for k in ("W1", "b1", "W2")}, xb) + p["b2"], tb, mask)

    (_, out), = train(params, loss_fn, spec.steps, spec.lr, [spec.steps], context=context,
                      weight_decay=spec.weight_decay)
    return out


def _hidden(p: dict) -> FeatureMap:
    W1, b1 = p["W1"].double().cpu(), p["b1"].double().cpu()
    return lambda z: torch.relu(z @ W1 + b1)  # matmul broadcasts a shared (1, N, d) input over the seeds


def fit_mlp(x1: Tensor, x2: Tensor, spec, gens, device: str) -> FeatureMap:
    s1, s2 = _Standard(x1), _Standard(x2)
    p = _train_net(s1(x1), s2(x2), spec, gens, device, context="mlp pretext")
    hid, W2, b2 = _hidden(p), p["W2"].double().cpu(), p["b2"].double().cpu()
    return lambda x: s2.undo(hid(s1(x)) @ W2 + b2)


def _noise(gens, shape: tuple[int, ...], device: str) -> Tensor:
    return torch.stack([torch.randn(shape, generator=g) for g in gens]).to(device)


def fit_dae(x1: Tensor, x2: Tensor, spec, gens, device: str) -> FeatureMap:
    s1 = _Standard(x1)
    z = s1(x1)
    batch = min(spec.batch_size, z.shape[1])

    def corrupt(xb, step):
        return xb + spec.dae_noise * _noise(gens, (batch, z.shape[2]), device), None

    p = _train_net(z, z, spec, gens, device, corrupt, context="dae pretext")
    hid = _hidden(p)
    return lambda x: hid(s1(x))


def fit_masked(x1: Tensor, x2: Tensor, spec, gens, device: str) -> FeatureMap:
    s1 = _Standard(x1)
    z = s1(x1)
    batch = min(spec.batch_size, z.shape[1])

    def corrupt(xb, step):
        u = torch.stack([torch.rand((batch, z.shape[2]), generator=g) for g in gens]).to(device)
        mask = (u < spec.mask_frac).float()
        return xb * (1.0 - mask), mask  # a standardised coordinate set to 0 is set to its mean

    p = _train_net(z, z, spec, gens, device, corrupt, context="masked pretext")
    hid = _hidden(p)
    return lambda x: hid(s1(x))


def fit_softmax(x1: Tensor, x2: Tensor, spec, gens, device: str) -> FeatureMap:
    """psi(x) = A softmax(x W + b), fitted by MSE with its own Adam budget (softmax_steps, softmax_batch,
    softmax_lr): a small, smooth model on up to 60 000 pairs wants fewer, larger steps than the MLP's. Init: W
    small (std 0.1), b = 0, the atoms A = K random standardised x2 of the seed's own sample."""
    s1, s2 = _Standard(x1), _Standard(x2)
    z1, z2 = s1(x1).float().to(device), s2(x2).float().to(device)
    S, n, d1 = z1.shape
    K = spec.softmax_atoms
    if K < 1:
        raise ValueError(f"softmax_atoms: must be >= 1 when the softmax learner is fitted, got {K}")
    W = torch.stack([0.1 * torch.randn(d1, K, generator=g) for g in gens]).to(device)
    rows = torch.stack([torch.randint(n, (K,), generator=g) for g in gens]).to(device)
    params = {"W": W, "b": torch.zeros(S, 1, K, device=device), "A": gather_rows(z2, rows).clone()}
    batch = min(spec.softmax_batch, n)
    idx = _batches(gens, n, spec.softmax_steps, batch, device)

    def head(p: dict, z: Tensor) -> Tensor:
        return torch.softmax(z @ p["W"] + p["b"], -1) @ p["A"]

    def loss_fn(p: dict, step: int) -> Tensor:
        return objectives.mse(head(p, gather_rows(z1, idx[:, step])), gather_rows(z2, idx[:, step]))

    (_, out), = train(params, loss_fn, spec.softmax_steps, spec.softmax_lr, [spec.softmax_steps],
                      context="softmax pretext", weight_decay=spec.weight_decay)
    p64 = {k: v.double().cpu() for k, v in out.items()}
    return lambda x: s2.undo(head(p64, s1(x)))


FIT = {"linear": fit_linear, "rff": fit_rff, "mlp": fit_mlp, "softmax": fit_softmax, "dae": fit_dae,
       "masked": fit_masked}


def fit(name: str, x1: Tensor, x2: Tensor, spec, gens: list[torch.Generator], device: str = "cpu") -> FeatureMap:
    """Fit learner ``name`` on each seed's pretext pairs x1 (S, n1, d1), x2 (S, n1, d2) (float64).

    ``spec`` is the chapter's PretextSpec; ``gens`` holds one CPU torch.Generator per seed (random features,
    initialisation, minibatches, corruption). Returns phi: (S, N, d1) -> (S, N, q) float64 on the CPU, with q =
    d2 for the regression learners and q = spec.width for dae / masked. phi also takes one shared input (1, N,
    d1) and broadcasts it over the seeds.
    """
    if name not in FIT:
        raise ValueError(f"learner: unknown {name!r}; known: {', '.join(LEARNERS)}")
    if len(gens) != x1.shape[0]:
        raise ValueError(f"gens: need one generator per seed ({x1.shape[0]}), got {len(gens)}")
    phi = FIT[name](x1.double(), x2.double(), spec, gens, device)
    # applied CHUNK rows at a time so that wide intermediate features (rff: D per row) stay small
    return lambda x: torch.cat([phi(x[:, i:i + CHUNK]) for i in range(0, x.shape[1], CHUNK)], dim=1)

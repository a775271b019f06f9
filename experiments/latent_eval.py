"""Latent-class evaluation shared by the chapters that train encoders on ``synthetic_data.contrastive``'s model.

The contrastive chapter and the zoo measure the same things on the same latent-class model: the mean classifier's
accuracy, the theory's terms (L_un, L_sup^mu, tau, Gen_M) in float64, and batched linear-probe curves. Both import
this one public module, so neither chapter imports the other (the independence contract in pyproject.toml).
An :class:`EvalSet` reads from its ``task`` only ``data``, ``encoder``, ``eval``, ``objective``, ``loss``, ``k``,
``block_size`` and ``probe_n``: a contrastive ``Cell`` has them, and other chapters build a :class:`Target`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from analysis.probes import (
    fit_logistic_probes,
    probe_accuracy,
    probe_loss,
    subsample_per_class,
)
from experiments.encoders import ENCODERS, encode, param_norms
from experiments.engine.config import positive as _positive
from experiments.engine.rng import numpy_rng
from experiments.engine.train import gather_rows
from synthetic_data.contrastive import DataSpec
from theory import contrastive as th
from theory.contrastive_terms import FAST_LOSSES, distinct_zero_loss, mc_terms


@dataclass(frozen=True)
class EncoderSpec:
    kind: str = "mlp"       # "linear" | "mlp"
    width: int = 64         # hidden width of the mlp
    out_dim: int = 16       # representation dimension d

    def check(self) -> None:
        if self.kind not in ENCODERS:
            raise ValueError(f"kind: unknown encoder {self.kind!r}; known: {', '.join(ENCODERS)}")
        _positive("width", self.width)
        _positive("out_dim", self.out_dim)


@dataclass(frozen=True)
class EvalSpec:
    n_per_class: int = 200               # fresh samples per class in each Monte-Carlo pool
    n_mean: int = 1000                   # samples per class for the class means mu_c
    n_tuples: int = 20000                # Monte-Carlo class tuples where enumerating classes costs too much
    probe_n: tuple[int, ...] = (1, 2, 5, 10, 20, 50, 100)   # labelled examples per class
    probe_test_per_class: int = 200
    probe_C: float = 1.0                 # inverse L2 strength, sklearn's convention
    target_error: float = 0.2            # the error at which "labels needed" is read off
    delta: float = 0.05                  # confidence of the generalisation term

    def check(self) -> None:
        for name in ("n_per_class", "n_mean", "n_tuples", "probe_test_per_class"):
            _positive(name, getattr(self, name))
        if not self.probe_n or any(n < 1 for n in self.probe_n):
            raise ValueError(f"probe_n: needs values >= 1, got {self.probe_n}")
        if list(self.probe_n) != sorted(set(self.probe_n)):
            raise ValueError(f"probe_n: must be strictly increasing, got {self.probe_n}")
        if not 0 < self.target_error < 1:
            raise ValueError(f"target_error: must be in (0, 1), got {self.target_error}")
        if not 0 < self.delta < 1:
            raise ValueError(f"delta: must be in (0, 1), got {self.delta}")
        if self.probe_C <= 0:
            raise ValueError(f"probe_C: must be > 0, got {self.probe_C}")


@dataclass(frozen=True)
class Target:
    """What an :class:`EvalSet` measures, for a chapter whose cells are not contrastive cells."""
    objective: str
    data: DataSpec
    encoder: EncoderSpec
    eval: EvalSpec
    probe_n: tuple[int, ...] = ()
    loss: str = "logistic"
    k: int = 1
    block_size: int = 1


def as_tensor(a: np.ndarray, device: str) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32, device=device)


def per_model(arrays: list[np.ndarray], repeat: int, device: str) -> torch.Tensor:
    """Stack one array per seed and repeat each for its learning-rate variants: (G, ...)."""
    return as_tensor(np.stack(arrays), device).repeat_interleave(repeat, dim=0)


def per_seed(samples, n_seeds: int, device: str, keys=("x", "pos", "neg")) -> tuple[torch.Tensor, ...]:
    """Seed-level (S, ...) float32 tensors of ``keys``, filled from ``samples`` (an iterator of one dict per seed)
    one seed at a time, so only one seed's float64 sample is alive at once (the paper profile's k = 64 tuples are
    0.7 GB a seed in float64). Learning-rate variants read their seed's rows through :class:`Batches` and
    :func:`seed_rows`, instead of a repeated copy per model."""
    out = None
    for s, sample in enumerate(samples):
        if out is None:
            out = [torch.empty((n_seeds, *np.shape(sample[k])), dtype=torch.float32, device=device) for k in keys]
        for t, k in zip(out, keys):
            t[s] = as_tensor(sample[k], device)
        del sample
    return tuple(out)


def metric_rows(base: dict, step: int, values: dict, seeds_lrs: list[tuple[int, float]]) -> list[dict]:
    """Long rows (one metric per row) for every model g; values maps metric -> array of G."""
    out = []
    for metric, vals in values.items():
        for g, (seed, lr) in enumerate(seeds_lrs):
            out.append({**base, "seed": seed, "lr": lr, "step": step, "metric": metric, "n_per_class": 0,
                        "value": float(vals[g])})
    return out


class Batches:
    """Each model's own minibatch indices, drawn from its seed's stream before training starts."""

    def __init__(self, rngs, steps, batch, n, repeat, device):
        idx = np.stack([r.integers(0, n, size=(steps, batch)) for r in rngs])
        self.idx = torch.as_tensor(idx, device=device).repeat_interleave(repeat, dim=0)  # (G, steps, B)

    def take(self, data: torch.Tensor, step: int) -> torch.Tensor:
        """Model g's rows of ``data`` at ``step``: data is (G, N, ...) or seed-level (S, N, ...) with
        G = S * repeat, model g reading seed g // repeat (the same rows a repeated copy would give)."""
        idx = self.idx[:, step]
        G = idx.shape[0]
        if data.shape[0] == G:
            return gather_rows(data, idx)
        return seed_rows(data, idx)


# Points a model per encoder call in the evaluation: the hidden activations of one call are then at most
# G x EVAL_CHUNK x width float32 (335 MB for the paper's G = 20, width 256), whatever the pool sizes. Chunks this
# large give every row the bits of one whole call on this CPU build (tests/experiments/test_latent_eval_fast.py).
EVAL_CHUNK = 16384


def encode_chunked(enc, x: torch.Tensor) -> torch.Tensor:
    """enc over x (1 or G, N, D) in chunks of EVAL_CHUNK points, concatenated: (G, N, d) float32."""
    N = x.shape[1]
    if N <= EVAL_CHUNK:
        return enc(x)
    return torch.cat([enc(x[:, lo:lo + EVAL_CHUNK]) for lo in range(0, N, EVAL_CHUNK)], 1)


def seed_rows(data: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """out[g, m] = data[g // (G / S), idx[g, m]] for seed-level data (S, N, ...) and idx (G, M)."""
    S, N = data.shape[:2]
    G = idx.shape[0]
    if G % S:
        raise ValueError(f"idx: {G} models are not a multiple of {S} seeds")
    src = torch.arange(G, device=idx.device) // (G // S)
    flat = data.reshape(S * N, *data.shape[2:]).index_select(0, (idx + src[:, None] * N).reshape(-1))
    return flat.view(G, idx.shape[1], *data.shape[2:])


def encode_tuple(p, x, pos, neg):
    """Encode anchors (G,B,D), positives (G,B,D) or (G,B,b,D), negatives (G,B,k,D) in one batched call."""
    G, B, D = x.shape
    parts = [x, pos.reshape(G, -1, D), neg.reshape(G, -1, D)]
    z = encode(p, torch.cat(parts, dim=1))
    d = z.shape[-1]
    zx, zp, zn = torch.split(z, [p_.shape[1] for p_ in parts], dim=1)
    return zx, zp.reshape(*pos.shape[:-1], d), zn.reshape(*neg.shape[:-1], d)


def encoder_params(params: dict) -> dict:
    """The encoder's own parameters (the supervised reference also trains a linear head)."""
    return {k: v for k, v in params.items() if k != "head"}


def probe_metric_rows(fit, x_test, y_test, ns, base: dict, step: int, seeds_lrs) -> list[dict]:
    """Rows of the probe curves: accuracy, loss and convergence of each (model g, size n) probe of ``fit``, whose
    G * L problems are ordered model-major; x_test, y_test are the matching (G * L, T, .) test sets."""
    G, L = len(seeds_lrs), len(ns)
    acc = probe_accuracy(fit, x_test, y_test).reshape(G, L).cpu().numpy()
    loss = probe_loss(fit, x_test, y_test).reshape(G, L).cpu().numpy()
    # a probe the solver left unconverged is recorded as such, so a reader never takes it for the optimum
    converged = fit.converged.reshape(G, L).double().cpu().numpy()
    rows = []
    for g, (seed, lr) in enumerate(seeds_lrs):
        for j, n in enumerate(ns):
            for metric, vals in (("probe_accuracy", acc), ("probe_loss", loss), ("probe_converged", converged)):
                rows.append({**base, "seed": seed, "lr": lr, "step": step, "metric": metric,
                             "n_per_class": n, "value": float(vals[g, j])})
    return rows


class EvalSet:
    """Fresh evaluation samples shared by every model of the cell, and the measurements made on them."""

    def __init__(self, cell, model, cell_id: str, device: str):
        self.cell, self.model, self.cell_id, self.device = cell, model, cell_id, device
        e, C = cell.eval, cell.data.n_classes
        rng = numpy_rng(cell_id, 0, "eval")
        per_class = np.repeat(np.arange(C), e.n_per_class)
        self.pools = [as_tensor(model.sample_x(per_class, rng), device)[None] for _ in range(2)]
        # Where classes are sampled (k > 1), each of the 2 n_t k negatives reads a fresh draw of its class;
        # n_t shrinks with k so that the cost stays about that of eval.n_tuples single negatives.
        self.n_neg = e.n_per_class
        if cell.k > 1:
            n_t = max(200, e.n_tuples // cell.k)
            self.n_neg = max(e.n_per_class, int(1.3 * 2 * n_t * cell.k * float(model.rho.max())) + 50)
        self.pools.append(as_tensor(model.sample_x(np.repeat(np.arange(C), self.n_neg), rng), device)[None])
        self.mean_x = as_tensor(model.sample_x(np.repeat(np.arange(C), e.n_mean), rng), device)[None]
        x_test, self.y_test = model.sample_labelled(e.probe_test_per_class, rng)
        self.x_test = as_tensor(x_test, device)[None]
        self.rng = rng

    def _means(self, enc) -> torch.Tensor:
        C, d_mean = self.cell.data.n_classes, self.cell.eval.n_mean
        # whole classes per encoder call, so each class mean reduces the very numbers one call would give
        per = max(1, EVAL_CHUNK // d_mean)
        mus = []
        for lo in range(0, C, per):
            hi = min(C, lo + per)
            z = enc(self.mean_x[:, lo * d_mean:hi * d_mean]).double()
            mus.append(z.reshape(z.shape[0], hi - lo, d_mean, -1).mean(dim=2))
        return torch.cat(mus, 1)  # (G, C, d)

    def mean_classifier_accuracy(self, enc) -> np.ndarray:
        """Accuracy of argmax_c mu_c . f(x) on the full C-way task (what a practitioner would read off)."""
        mu = self._means(enc)
        scores = torch.bmm(encode_chunked(enc, self.x_test).double(), mu.transpose(1, 2))
        y = torch.as_tensor(self.y_test, device=scores.device)
        return (scores.argmax(-1) == y).double().mean(-1).cpu().numpy()

    def theory_terms(self, enc, params, loss_fn) -> dict:
        cell = self.cell
        C = cell.data.n_classes
        with torch.no_grad():
            # float32 features, encoded in chunks; each model's turn in float64 (the theory runs in float64 on
            # the CPU whatever the training device): the same numbers as one (G, N, d) float64 copy, a quarter
            # of its memory
            pools = [(z := encode_chunked(enc, x).cpu()).reshape(z.shape[0], C, -1, z.shape[-1]) for x in self.pools]
        mu = self._means(enc).cpu()
        rho = self.model.rho
        G = mu.shape[0]
        out: dict[str, list] = {}
        for g in range(G):
            terms = mc_terms(pools[0][g].double(), pools[1][g].double(), pools[2][g].double(), mu[g], rho,
                             cell.loss, cell.k, rng=np.random.default_rng(self.rng.integers(2**63)))
            terms["tau_k"] = terms.pop("tau")  # mc_terms' tau is the k-negative collision probability
            terms["tau"] = th.tau(rho)
            if "L_sup_mu_distinct" in terms:
                terms["trivial_distinct"] = self._trivial_distinct()
            for key, val in terms.items():
                out.setdefault(key, []).append(float(val))
        if loss_fn is not None and params is not None:
            out.update(self._generalisation(params, loss_fn.train_tuples))
        if cell.objective == "block":
            out.update(self._block_loss(enc))
        return {k: np.asarray(v) for k, v in out.items()}

    def _trivial_distinct(self) -> float:
        """The de-duplicated k-negative bound's trivial value, once per evaluation set (it depends on rho only)."""
        if not hasattr(self, "_zero_distinct"):
            self._zero_distinct = distinct_zero_loss(self.model.rho, self.cell.k, self.cell.loss)
        return self._zero_distinct

    def _generalisation(self, params, train_tuples) -> dict:
        """Empirical loss on the M training tuples and the Gen_M term for the encoder's norm class.

        Two stand-ins, stated in the README: the norm class F is the one of the checkpoint's own norms (chosen
        after training; a union bound over a grid of norm classes would add a log term), and R, which the theorem
        takes as a bound on ||f(x)|| over the data's support, is the largest ||f(x)|| on the M training tuples
        (the Gaussian support is unbounded).

        ``train_tuples`` (x, pos, neg) is seed-level (S, M, ...) or per model (G, M, ...). The tuples are encoded
        in chunks of whole tuples (at most EVAL_CHUNK points a model per call), never all M (k + 2) points of
        every model at once (30 GB on the paper's k = 64 cell); the Rademacher sum of squares of the sample,
        which no checkpoint changes, is computed once per sample. Tolerance against
        ``experiments.latent_eval_reference.generalisation`` (main's code): |difference| <= 1e-12 (1 + |value|),
        from the faster loss (FAST_LOSSES) alone, given the encoder's float32 GEMM gives each row the same bits
        whatever the chunk (tested on this machine's CPU build; another BLAS may move L_hat_un and R by float32
        rounding, about 1e-7 relative).
        """
        cell, k = self.cell, self.cell.k
        x, pos, neg = train_tuples
        p = encoder_params(params)
        norms = param_norms(p)
        G = next(iter(p.values())).shape[0]
        S, M, D = x.shape
        src = torch.arange(G, device=x.device) // (G // S) if S != G else torch.arange(G, device=x.device)
        per = max(1, EVAL_CHUNK // (k + 2))
        losses = torch.empty((G, M), dtype=torch.float64, device=x.device)
        R = torch.zeros(G, dtype=torch.float64, device=x.device)
        with torch.no_grad():
            for lo in range(0, M, per):
                sl = slice(lo, min(M, lo + per))
                z, zp, zn = encode_tuple(p, x[src, sl], pos[src, sl], neg[src, sl])
                v = (z[:, :, None, :] * (zp[:, :, None, :] - zn)).sum(-1).double()
                losses[:, sl] = FAST_LOSSES[cell.loss](v)
                for part in (z, zp, zn):
                    R = torch.maximum(R, part.double().norm(dim=-1).flatten(1).amax(1))
            l_hat = losses.mean(1)
        sums = self._rademacher_sums(x, pos, neg)
        rad, gen = [], []
        for g in range(G):
            s_sq, n_pts = sums[int(src[g])]
            if cell.encoder.kind == "linear":
                r = th.rademacher_linear_sums(s_sq, n_pts, float(norms["W_fro"][g]), cell.encoder.out_dim)
            else:
                # the hidden bias is a weight on a constant input 1 (rademacher_mlp's convention)
                b1 = float(np.hypot(float(norms["W1_fro"][g]), float(norms["b1_l2"][g])))
                r = th.rademacher_mlp_sums(s_sq, n_pts, b1, float(norms["W2_fro"][g]), cell.encoder.out_dim)
            rad.append(r)
            gen.append(th.gen_term(r, float(R[g]), k, M, cell.eval.delta, cell.loss))
        return {"L_hat_un": l_hat.cpu().numpy(), "R": R.cpu().numpy(), "Rad_S": np.asarray(rad),
                "Gen_M": np.asarray(gen), "M": np.full(G, M), "delta": np.full(G, cell.eval.delta)}

    def _rademacher_sums(self, x, pos, neg) -> list[tuple[float, int]]:
        """(sum of squared norms, number of points) of each sample's (k + 2) M points, the MLP's constant input 1
        included, summed as ``rademacher_*`` sums them (np.sum of the float64 stack): once per sample."""
        held = getattr(self, "_rad_sample", None)
        if held is None or any(a is not b for a, b in zip(held, (x, pos, neg))):
            mlp = self.cell.encoder.kind != "linear"
            sums = []
            for s in range(x.shape[0]):
                pts = torch.cat([x[s], pos[s].reshape(-1, x.shape[-1]), neg[s].reshape(-1, x.shape[-1])], 0)
                pts = pts.double().cpu().numpy()
                if mlp:
                    pts = np.hstack([pts, np.ones((pts.shape[0], 1))])
                sums.append((th.sum_of_squares(pts), pts.shape[0]))
                del pts
            self._rad_sample, self._rad_sums = (x, pos, neg), sums
        return self._rad_sums

    def _block_loss(self, enc) -> dict:
        """Monte-Carlo population block loss L_un^block on fresh blocks, with its standard error."""
        cell = self.cell
        b = self.model.sample_blocks(cell.eval.n_tuples // 4, cell.block_size, self.rng)
        x, pos, neg = (as_tensor(b[key], self.device)[None] for key in ("x", "pos", "neg"))
        with torch.no_grad():
            zx = enc(x)
            G = zx.shape[0]
            zp = enc(pos.reshape(1, -1, pos.shape[-1])).reshape(G, *pos.shape[1:3], -1).mean(2)
            zn = enc(neg.reshape(1, -1, neg.shape[-1])).reshape(G, *neg.shape[1:3], -1).mean(2)
            v = (zx * (zp - zn)).sum(-1, keepdim=True).double()
            per = FAST_LOSSES[cell.loss](v)
        return {"L_block": per.mean(1).cpu().numpy(),
                "L_block_se": (per.std(1) / per.shape[1] ** 0.5).cpu().numpy()}

    def probe_rows(self, enc, base: dict, step: int, seeds_lrs) -> list[dict]:
        cell, e = self.cell, self.cell.eval
        feats, ys = [], []
        for s, _ in seeds_lrs:
            x, y = self.model.sample_labelled(max(cell.probe_n), numpy_rng(self.cell_id, s, "probe-labels"))
            feats.append(x)
            ys.append(y)
        with torch.no_grad():
            # model g probes its own features of its own seed's labelled sample
            f_train = enc(as_tensor(np.stack(feats), self.device))
            f_test = enc(self.x_test)
        ns = list(cell.probe_n)
        idx_w = [subsample_per_class(y, ns, numpy_rng(self.cell_id, s, "probe-subsets"))
                 for y, (s, _) in zip(ys, seeds_lrs)]
        G, L = len(seeds_lrs), len(ns)
        idx = torch.as_tensor(np.stack([iw[0] for iw in idx_w]), device=self.device)  # (G, L, width)
        rows_g = torch.arange(G, device=self.device)[:, None, None]
        X = f_train.double()[rows_g, idx].reshape(G * L, idx.shape[-1], -1)
        y = torch.as_tensor(np.stack(ys), device=self.device)[rows_g, idx].reshape(G * L, -1)
        w = torch.as_tensor(np.stack([iw[1] for iw in idx_w]), device=self.device).reshape(G * L, -1)
        fit = fit_logistic_probes(X, y, w, cell.data.n_classes, C=e.probe_C)
        x_test = f_test.double().repeat_interleave(L, dim=0)
        y_test = torch.as_tensor(self.y_test, device=self.device).expand(G * L, -1)
        return probe_metric_rows(fit, x_test, y_test, ns, base, step, seeds_lrs)

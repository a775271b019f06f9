"""One contrastive cell: sample, train every seed and variant as one batched model, evaluate every checkpoint.

Randomness: the latent-class model comes from the data spec's own hash, so every cell on the same data spec
sees the same classes; training data, initialisation, probe labels and evaluation pools come from
(cell id, seed, stream). Learning-rate variants of one seed share its data and its initialisation, so they
differ only in the learning rate.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from analysis.probes import fit_logistic_probes, probe_accuracy, probe_loss, subsample_per_class
from experiments import objectives
from experiments.engine.config import config_hash, to_json
from experiments.contrastive_config import UNTRAINED, Cell
from experiments.engine.schedule import checkpoint_steps
from experiments.engine.timing import stage
from experiments.encoders import encode, init_encoder, param_norms
from experiments.engine.rng import numpy_rng, torch_generator
from experiments.engine.train import gather_rows, train
from synthetic_data.contrastive import build_model
from theory import contrastive as th


def _t(a: np.ndarray, device: str) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32, device=device)


def _per_model(arrays: list[np.ndarray], repeat: int, device: str) -> torch.Tensor:
    """Stack one array per seed and repeat each for its learning-rate variants: (G, ...)."""
    return _t(np.stack(arrays), device).repeat_interleave(repeat, dim=0)


def _rows(base: dict, step: int, values: dict, seeds_lrs: list[tuple[int, float]]) -> list[dict]:
    """Long rows (one metric per row) for every model g; values maps metric -> array of G."""
    out = []
    for metric, vals in values.items():
        for g, (seed, lr) in enumerate(seeds_lrs):
            out.append({**base, "seed": seed, "lr": lr, "step": step, "metric": metric, "n_per_class": 0,
                        "value": float(vals[g])})
    return out


class _Batches:
    """Each model's own minibatch indices, drawn from its seed's stream before training starts."""

    def __init__(self, rngs, steps, batch, n, repeat, device):
        idx = np.stack([r.integers(0, n, size=(steps, batch)) for r in rngs])
        self.idx = torch.as_tensor(idx, device=device).repeat_interleave(repeat, dim=0)  # (G, steps, B)

    def take(self, data: torch.Tensor, step: int) -> torch.Tensor:
        return gather_rows(data, self.idx[:, step])


def _objective(cell: Cell, model, rngs, n_variants: int, device: str):
    """loss_fn(params, step) -> (G,) for the cell's objective; ``loss_fn.train_tuples`` keeps the sample."""
    tr, obj = cell.train, cell.objective
    rep = n_variants
    if obj == "supervised":
        labelled = [model.sample_labelled(tr.labelled_per_class, r) for r in rngs]
        x = _per_model([xy[0] for xy in labelled], rep, device)
        y = torch.as_tensor(np.stack([xy[1] for xy in labelled]), device=device).repeat_interleave(rep, 0)
        batches = _Batches(rngs, tr.steps, tr.batch_size, x.shape[1], rep, device)

        def loss_fn(p, step):
            z = encode(_encoder_params(p), batches.take(x, step))
            return objectives.supervised_ce(torch.bmm(z, p["head"]), batches.take(y, step))
        return loss_fn
    if obj == "block":
        blocks = [model.sample_blocks(tr.n_tuples, cell.block_size, r) for r in rngs]
    else:
        blocks = [model.sample_tuples(tr.n_tuples, cell.k, r) for r in rngs]
    x = _per_model([b["x"] for b in blocks], rep, device)
    pos = _per_model([b["pos"] for b in blocks], rep, device)
    neg = _per_model([b["neg"] for b in blocks], rep, device)
    batches = _Batches(rngs, tr.steps, tr.batch_size, tr.n_tuples, rep, device)
    temperature = tr.temperature

    def loss_fn(p, step):
        xb, pb, nb = batches.take(x, step), batches.take(pos, step), batches.take(neg, step)
        if obj == "ntxent":
            return objectives.ntxent(encode(p, xb), encode(p, pb), temperature)
        z, zp, zn = _encode_tuple(p, xb, pb, nb)
        if obj == "block":
            return objectives.block(z, zp, zn, base=cell.loss)
        return objectives.OBJECTIVES[obj](z, zp, zn)
    loss_fn.train_tuples = (x, pos, neg)
    return loss_fn


def _encode_tuple(p, x, pos, neg):
    """Encode anchors (G,B,D), positives (G,B,D) or (G,B,b,D), negatives (G,B,k,D) in one batched call."""
    G, B, D = x.shape
    parts = [x, pos.reshape(G, -1, D), neg.reshape(G, -1, D)]
    z = encode(p, torch.cat(parts, dim=1))
    d = z.shape[-1]
    zx, zp, zn = torch.split(z, [p_.shape[1] for p_ in parts], dim=1)
    return zx, zp.reshape(*pos.shape[:-1], d), zn.reshape(*neg.shape[:-1], d)


def _init(cell: Cell, cell_id: str, model, n_models_per_seed: int, device: str) -> dict:
    gens = [torch_generator(cell_id, s, "init") for s in cell.seeds for _ in range(n_models_per_seed)]
    enc = cell.encoder
    params = init_encoder(enc.kind, model.input_dim, enc.out_dim, len(gens), gens, width=enc.width, device=device)
    if cell.objective == "supervised":
        C, d = cell.data.n_classes, enc.out_dim
        head = torch.stack([(torch.rand(d, C, generator=g) * 2 - 1) / d ** 0.5 for g in gens]).to(device)
        params["head"] = head
    return params


def _encoder_params(params: dict) -> dict:
    """The encoder's own parameters (the supervised reference also trains a linear head)."""
    return {k: v for k, v in params.items() if k != "head"}


def _encoder_fn(params, n_models: int):
    """x (1 or G, N, D) -> features (G, N, d); ``params`` None means the raw inputs are the features."""
    enc_params = None if params is None else _encoder_params(params)

    def enc(x: torch.Tensor) -> torch.Tensor:
        x = x.expand(n_models, *x.shape[1:]) if x.shape[0] == 1 else x
        return x if enc_params is None else encode(enc_params, x)
    return enc


def run(cell: Cell, cell_id: str, device: str = "cpu") -> pd.DataFrame:
    model = build_model(cell.data, numpy_rng(config_hash(cell.data), 0, "latent-model"))
    seeds_lrs = [(s, lr) for s in cell.seeds for lr in cell.train.lr]
    V = len(cell.train.lr)
    base = {"objective": cell.objective, "loss": cell.loss, "n_classes": cell.data.n_classes, "k": cell.k,
            "block_size": cell.block_size, "target_error": cell.eval.target_error}

    loss_fn = None
    if cell.objective == "raw":
        checkpoints = [(0, None)]
    else:
        params = _init(cell, cell_id, model, V, device)
        if cell.objective == "random":
            checkpoints = [(0, params)]
        else:
            rngs = [numpy_rng(cell_id, s, "train-data") for s in cell.seeds]
            loss_fn = _objective(cell, model, rngs, V, device)
            lr = torch.tensor([lr for _, lr in seeds_lrs], device=device)
            steps = checkpoint_steps(cell.train.steps, cell.train.n_checkpoints)
            checkpoints = train(params, loss_fn, cell.train.steps, lr, steps, context=to_json(cell),
                                weight_decay=cell.train.weight_decay)
    with torch.no_grad():
        return pd.DataFrame(_evaluate(cell, cell_id, model, checkpoints, base, seeds_lrs, device,
                                      loss_fn if cell.objective in ("logistic", "hinge") else None))


def _evaluate(cell, cell_id, model, checkpoints, base, seeds_lrs, device, loss_fn) -> list[dict]:
    ev = _EvalSet(cell, model, cell_id, device)
    rows: list[dict] = []
    for i, (step, p) in enumerate(checkpoints):
        enc = _encoder_fn(p, len(seeds_lrs))
        values = {"mean_acc": ev.mean_classifier_accuracy(enc)}
        if cell.objective not in UNTRAINED:
            with stage("theory"):
                values.update(ev.theory_terms(enc, p, loss_fn))
        rows += _rows(base, step, values, seeds_lrs)
        if cell.probe_n and i == len(checkpoints) - 1:
            with stage("probes"):
                rows += ev.probe_rows(enc, base, step, seeds_lrs)
    return rows


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


class _EvalSet:
    """Fresh evaluation samples shared by every model of the cell, and the measurements made on them."""

    def __init__(self, cell: Cell, model, cell_id: str, device: str):
        self.cell, self.model, self.cell_id, self.device = cell, model, cell_id, device
        e, C = cell.eval, cell.data.n_classes
        rng = numpy_rng(cell_id, 0, "eval")
        per_class = np.repeat(np.arange(C), e.n_per_class)
        self.pools = [_t(model.sample_x(per_class, rng), device)[None] for _ in range(2)]
        # Where classes are sampled (k > 1), each of the 2 n_t k negatives reads a fresh draw of its class;
        # n_t shrinks with k so that the cost stays about that of eval.n_tuples single negatives.
        self.n_neg = e.n_per_class
        if cell.k > 1:
            n_t = max(200, e.n_tuples // cell.k)
            self.n_neg = max(e.n_per_class, int(1.3 * 2 * n_t * cell.k * float(model.rho.max())) + 50)
        self.pools.append(_t(model.sample_x(np.repeat(np.arange(C), self.n_neg), rng), device)[None])
        self.mean_x = _t(model.sample_x(np.repeat(np.arange(C), e.n_mean), rng), device)[None]
        x_test, self.y_test = model.sample_labelled(e.probe_test_per_class, rng)
        self.x_test = _t(x_test, device)[None]
        self.rng = rng

    def _means(self, enc) -> torch.Tensor:
        C, d_mean = self.cell.data.n_classes, self.cell.eval.n_mean
        z = enc(self.mean_x).double()
        return z.reshape(z.shape[0], C, d_mean, -1).mean(dim=2)  # (G, C, d)

    def mean_classifier_accuracy(self, enc) -> np.ndarray:
        """Accuracy of argmax_c mu_c . f(x) on the full C-way task (what a practitioner would read off)."""
        mu = self._means(enc)
        scores = torch.bmm(enc(self.x_test).double(), mu.transpose(1, 2))
        y = torch.as_tensor(self.y_test, device=scores.device)
        return (scores.argmax(-1) == y).double().mean(-1).cpu().numpy()

    def theory_terms(self, enc, params, loss_fn) -> dict:
        cell, e = self.cell, self.cell.eval
        C, n = cell.data.n_classes, e.n_per_class
        with torch.no_grad():
            # the theory runs in float64 on the CPU whatever the training device
            pools = [(z := enc(x).double().cpu()).reshape(z.shape[0], C, -1, z.shape[-1]) for x in self.pools]
        mu = self._means(enc).cpu()
        rho = self.model.rho
        G = mu.shape[0]
        out: dict[str, list] = {}
        for g in range(G):
            terms = th.mc_terms(pools[0][g], pools[1][g], pools[2][g], mu[g], rho, cell.loss, cell.k,
                                rng=np.random.default_rng(self.rng.integers(2**63)))
            terms["tau_k"] = terms.pop("tau")  # mc_terms' tau is the k-negative collision probability
            terms["tau"] = th.tau(rho)
            for key, val in terms.items():
                out.setdefault(key, []).append(float(val))
        if loss_fn is not None and params is not None:
            out.update(self._generalisation(params, loss_fn))
        if cell.objective == "block":
            out.update(self._block_loss(enc))
        return {k: np.asarray(v) for k, v in out.items()}

    def _generalisation(self, params, loss_fn) -> dict:
        """Empirical loss on the M training tuples and the Gen_M term for the encoder's norm class.

        Two stand-ins, stated in the README: the norm class F is the one of the checkpoint's own norms (chosen
        after training; a union bound over a grid of norm classes would add a log term), and R, which the theorem
        takes as a bound on ||f(x)|| over the data's support, is the largest ||f(x)|| on the M training tuples
        (the Gaussian support is unbounded).
        """
        cell, k = self.cell, self.cell.k
        x, pos, neg = loss_fn.train_tuples
        p = _encoder_params(params)
        with torch.no_grad():
            z, zp, zn = _encode_tuple(p, x, pos, neg)
            v = (z[:, :, None, :] * (zp[:, :, None, :] - zn)).sum(-1).double()
            l_hat = th.LOSSES[cell.loss](v).mean(1)
            points = torch.cat([x, pos.reshape(x.shape[0], -1, x.shape[-1]), neg.reshape(x.shape[0], -1, x.shape[-1])], 1)
            R = torch.cat([z, zp.reshape(z.shape[0], -1, z.shape[-1]), zn.reshape(z.shape[0], -1, z.shape[-1])], 1)
            R = R.double().norm(dim=-1).amax(1)
        norms = param_norms(p)
        M = x.shape[1]
        rad, gen = [], []
        for g in range(x.shape[0]):
            pts = points[g].double().cpu().numpy()
            if cell.encoder.kind == "linear":
                r = th.rademacher_linear(pts, float(norms["W_fro"][g]), cell.encoder.out_dim)
            else:
                # the hidden bias is a weight on a constant input 1 (rademacher_mlp's convention)
                pts = np.hstack([pts, np.ones((pts.shape[0], 1))])
                b1 = float(np.hypot(float(norms["W1_fro"][g]), float(norms["b1_l2"][g])))
                r = th.rademacher_mlp(pts, b1, float(norms["W2_fro"][g]), cell.encoder.out_dim)
            rad.append(r)
            gen.append(th.gen_term(r, float(R[g]), k, M, cell.eval.delta, cell.loss))
        return {"L_hat_un": l_hat.cpu().numpy(), "R": R.cpu().numpy(), "Rad_S": np.asarray(rad),
                "Gen_M": np.asarray(gen), "M": np.full(x.shape[0], M), "delta": np.full(x.shape[0], cell.eval.delta)}

    def _block_loss(self, enc) -> dict:
        """Monte-Carlo population block loss L_un^block on fresh blocks, with its standard error."""
        cell = self.cell
        b = self.model.sample_blocks(cell.eval.n_tuples // 4, cell.block_size, self.rng)
        x, pos, neg = (_t(b[key], self.device)[None] for key in ("x", "pos", "neg"))
        with torch.no_grad():
            zx = enc(x)
            G = zx.shape[0]
            zp = enc(pos.reshape(1, -1, pos.shape[-1])).reshape(G, *pos.shape[1:3], -1).mean(2)
            zn = enc(neg.reshape(1, -1, neg.shape[-1])).reshape(G, *neg.shape[1:3], -1).mean(2)
            v = (zx * (zp - zn)).sum(-1, keepdim=True).double()
            per = th.LOSSES[cell.loss](v)
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
            f_train = enc(_t(np.stack(feats), self.device))
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

"""The zoo's sequence bench: permutation LM, ELECTRA and CPC on the language chapter's HMM."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from experiments import objectives
from experiments.encoders import encode, init_encoder
from experiments.engine.config import to_json
from experiments.engine.rng import numpy_rng, torch_generator
from experiments.engine.timing import stage
from experiments.engine.train import train
from experiments.latent_eval import Batches, metric_rows
from experiments.zoo.config import Cell
from experiments.zoo.views import Noise, net, part, probe_curve_rows
from synthetic_data.language_tasks import TaskSpec, make_task
from theory import zoo as th
from theory.zoo import collapse_diagnostic

# ============================================================================================= the sequence bench
# The language chapter's HMM (synthetic_data.language): windows s of L = hmm.context_len words (plus, for CPC, the
# future_steps words after them), each seed its own training windows (stream "train-data") and minibatches
# ("batches"), per-step orders, masks and Gumbel draws from stream "corruption". Every objective's encoder reads
# one layout, [one-hot(w) * visible (L V), visible (L), one-hot(query position) (L)], from stream "init"; the
# representation is the encoder on the whole window (all visible, no query). Evaluation windows (test, excess
# losses, CPC bounds) are shared by the seeds (stream "eval", seed 0); each seed probes its own labelled pool
# ("probe-labels"). The probe's labels: the language chapter's deterministic natural task on p*_s. No Lemma 4.3
# rows (no positive pairs of the latent-class model).


def seq_input(words: torch.Tensor, visible: torch.Tensor, query: torch.Tensor | None, V: int) -> torch.Tensor:
    """(..., L) words, (..., L) 0/1 visibility, (...) query positions or None -> (..., L V + 2 L) encoder input."""
    L = words.shape[-1]
    vis = visible.to(torch.float32)
    oh = torch.nn.functional.one_hot(words.long(), V).to(torch.float32) * vis[..., None]
    q = torch.zeros_like(vis) if query is None else torch.nn.functional.one_hot(query.long(), L).to(torch.float32)
    return torch.cat([oh.flatten(-2), vis, q], -1)


def seq_full(words: torch.Tensor, V: int) -> torch.Tensor:
    """The whole window visible, no query: the representation's input."""
    return seq_input(words, torch.ones_like(words), None, V)


def seq_init_params(cell: Cell, data_id: str, device: str = "cpu") -> dict:
    """The shared encoder (stream "init"), then the objective's parts: the PLM's output layer (plm_W, plm_b),
    ELECTRA's generator (gen_*, a one-hidden-layer MLP to L V logits) and replaced-token head (disc_W, disc_b), CPC's
    future-word embedding (cpc_E) and bilinear critics (cpc_W, one per future step), the supervised head."""
    enc, q, seeds = cell.encoder, cell.sequences, cell.seeds
    G, d = len(seeds), enc.out_dim
    L, V = cell.data.context_len, cell.data.vocab
    din = L * V + 2 * L
    p = init_encoder(enc.kind, din, d, G, [torch_generator(data_id, s, "init") for s in seeds], width=enc.width,
                     device=device)

    def unif(name, *shape, fan):
        return torch.stack([(torch.rand(*shape, generator=torch_generator(data_id, s, f"init-{name}")) * 2 - 1)
                            / fan ** 0.5 for s in seeds]).to(device)
    if cell.objective == "plm":
        p["plm_W"], p["plm_b"] = unif("plm", d, V, fan=d), torch.zeros(G, 1, V, device=device)
    if cell.objective == "electra":
        gen = init_encoder("mlp", din, L * V, G, [torch_generator(data_id, s, "init-gen") for s in seeds],
                           width=q.generator_width, device=device)
        gen["b2"] = torch.zeros(G, 1, L * V, device=device)
        p.update({f"gen_{k}": v for k, v in gen.items()})
        p["disc_W"], p["disc_b"] = unif("disc", d, L, fan=d), torch.zeros(G, 1, L, device=device)
    if cell.objective == "cpc":
        p["cpc_E"] = unif("cpc-e", V, d, fan=1)
        p["cpc_W"] = unif("cpc-w", q.future_steps, d, d, fan=d)
    if cell.objective == "supervised":
        p["head_W"] = unif("head", d, 2, fan=d)
    return p


def _orders(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Uniform draws (..., L) -> (order, rank): a uniformly random permutation and its inverse."""
    order = torch.argsort(u, -1)
    return order, torch.argsort(order, -1)


def plm_inputs(words: torch.Tensor, order: torch.Tensor, V: int) -> torch.Tensor:
    """(..., L) words and orders -> (..., L, L V + 2 L): row t predicts position order_t from order_<t."""
    L = words.shape[-1]
    rank = torch.argsort(order, -1)
    t = torch.arange(L, device=words.device)
    visible = rank[..., None, :] < t[:, None]                                   # (..., L_t, L_pos)
    w = words[..., None, :].expand(*words.shape[:-1], L, L)
    return seq_input(w, visible, order, V)


def seq_labels(task, hmm, words: np.ndarray) -> np.ndarray:
    """The deterministic natural task's labels in {0, 1}: 1[v . p*_s + b > 0]."""
    return (task.context_label_prob(hmm, words) > 0.5).astype(np.int64)


def _balanced(words: np.ndarray, y: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first n windows of each label (label 0 first); ValueError if a label has fewer than n."""
    idx = [np.flatnonzero(y == c)[:n] for c in (0, 1)]
    if min(len(i) for i in idx) < n:
        raise ValueError(f"sequences: a task label has fewer than {n} windows in the sample")
    idx = np.concatenate(idx)
    return words[idx], y[idx]


class SeqObjective:
    """loss(params, step) -> (G,) for the PLM, ELECTRA, CPC or the supervised encoder on HMM windows."""

    def __init__(self, cell: Cell, hmm, task, data_id: str, device: str = "cpu"):
        self.cell, self.obj, self.q, self.device = cell, cell.objective, cell.sequences, device
        self.L, self.V = cell.data.context_len, cell.data.vocab
        seeds, tr = cell.seeds, cell.train
        self.history: list[torch.Tensor] = []
        rngs = [numpy_rng(data_id, s, "train-data") for s in seeds]
        if self.obj == "supervised":
            lab = []
            for r in rngs:
                w, _ = hmm.sample(4 * tr.labelled_per_class + 400, self.L, r)
                lab.append(_balanced(w, seq_labels(task, hmm, w), tr.labelled_per_class))
            self.x = torch.as_tensor(np.stack([a[0] for a in lab]), device=device)
            self.y = torch.as_tensor(np.stack([a[1] for a in lab]), device=device)
        else:
            self.x = torch.as_tensor(np.stack([hmm.sample(tr.n_pairs, self.L + self.q.future_steps, r)[0]
                                               for r in rngs]), device=device)
        batch = min(tr.batch_size, self.x.shape[1])
        self.batches = Batches([numpy_rng(data_id, s, "batches") for s in seeds], tr.steps, batch, self.x.shape[1],
                                1, device)
        self.noise = Noise(data_id, seeds, "corruption", device)

    def __call__(self, p: dict, step: int) -> torch.Tensor:
        loss = self._loss(p, step)
        self.history.append(loss.detach())
        return loss

    def _loss(self, p: dict, step: int) -> torch.Tensor:
        L, V = self.L, self.V
        enc = part(p, "")
        wb = self.batches.take(self.x, step)
        G, B = wb.shape[:2]
        if self.obj == "supervised":
            return objectives.supervised_ce(torch.bmm(encode(enc, seq_full(wb, V)), p["head_W"]),
                                            self.batches.take(self.y, step))
        w = wb[..., :L]
        if self.obj == "plm":
            order, _ = _orders(self.noise.uniform((B, L)))
            h = encode(enc, plm_inputs(w, order, V).reshape(G, B * L, -1))
            logits = (torch.bmm(h, p["plm_W"]) + p["plm_b"]).reshape(G, B, L, V)
            return objectives.permutation_lm(logits, w, order)
        if self.obj == "electra":
            mask = self.noise.uniform((B, L)) < self.q.mask_frac
            gen_logits = net(part(p, "gen_"), seq_input(w, ~mask, None, V)).reshape(G, B, L, V)
            u = self.noise.uniform((B, L, V)).clamp(1e-12, 1 - 1e-7)
            with torch.no_grad():   # a sample from the generator (Gumbel-max); no gradient through it
                sample = (gen_logits - torch.log(-torch.log(u))).argmax(-1)
            corrupted = torch.where(mask, sample, w)
            disc = torch.bmm(encode(enc, seq_full(corrupted, V)), p["disc_W"]) + p["disc_b"]
            return objectives.electra(gen_logits, w, mask, disc, corrupted != w, self.q.electra_weight)
        if self.obj == "cpc":
            c = encode(enc, seq_full(w, V))
            fut = wb[..., L:]
            z = p["cpc_E"][torch.arange(G, device=wb.device)[:, None, None], fut]          # (G, B, K, d)
            return objectives.cpc(c, z, p["cpc_W"])
        raise ValueError(f"objective: unknown sequence objective {self.obj!r}")


def train_seq_cell(cell: Cell, hmm, task, data_id: str, device: str = "cpu"):
    params = seq_init_params(cell, data_id, device)
    loss_fn = SeqObjective(cell, hmm, task, data_id, device)
    (_, final), = train(params, loss_fn, cell.train.steps, cell.train.lr, [cell.train.steps], context=to_json(cell),
                        weight_decay=cell.train.weight_decay)
    return final, loss_fn


def seq_task(cell: Cell, hmm, data_id: str):
    """The probe's task: the language chapter's deterministic natural task on p*_s (stream "task")."""
    return make_task(TaskSpec(kind="deterministic"), hmm, numpy_rng(data_id, 0, "task"),
                     context_len=cell.data.context_len)


def seq_excess(cell: Cell, hmm, params: dict, words: np.ndarray, rng: np.random.Generator) -> dict:
    """Excess losses against the HMM's exact conditionals on the evaluation windows, per seed (nats):
    plm: one random order per window, every step t: -log q(w_{o_t} | w_{o_<t}) against -log p(...) exact;
    electra: the generator on a random mask (mask_frac), each masked position against p(w_pos | unmasked)."""
    L, V, G = cell.data.context_len, cell.data.vocab, len(cell.seeds)
    n = words.shape[0]
    w = torch.as_tensor(words)
    enc = part(params, "")
    out = {}
    if cell.objective == "plm":
        order = np.argsort(rng.random((n, L)), -1)
        rank = np.argsort(order, -1)
        vis = rank[:, None, :] < np.arange(L)[:, None]                                        # (n, t, L)
        exact = th.hmm_conditional(hmm, np.repeat(words, L, 0), vis.reshape(n * L, L), order.reshape(-1))
        target = words[np.arange(n)[:, None], order]                                          # (n, L)
        ex = -np.log(exact[np.arange(n * L), target.reshape(-1)]).mean()
        x = plm_inputs(w, torch.as_tensor(order), V).reshape(1, n * L, -1).expand(G, -1, -1)
        logits = (torch.bmm(encode(enc, x), params["plm_W"]) + params["plm_b"]).reshape(G, n, L, V)
        model = objectives.permutation_lm(logits, w.expand(G, -1, -1), torch.as_tensor(order).expand(G, -1, -1))
        out = {"plm_test_loss": model.numpy(), "plm_exact_loss": np.full(G, ex), "plm_excess": model.numpy() - ex}
    if cell.objective == "electra":
        mask = rng.random((n, L)) < cell.sequences.mask_frac
        rows, cols = np.nonzero(mask)
        exact = th.hmm_conditional(hmm, words[rows], ~mask[rows], cols)
        ex = -np.log(exact[np.arange(rows.size), words[rows, cols]]).mean()
        gl = net(part(params, "gen_"), seq_input(w, torch.as_tensor(~mask), None, V)[None].expand(G, -1, -1))
        lp = torch.log_softmax(gl.reshape(G, n, L, V), -1)[:, torch.as_tensor(rows), torch.as_tensor(cols),
                                                             torch.as_tensor(words[rows, cols])]
        model = (-lp.mean(1)).numpy()
        out = {"electra_gen_loss": model, "electra_gen_exact": np.full(G, ex), "electra_gen_excess": model - ex}
    return out


def cpc_bounds(cell: Cell, hmm, params: dict, words: np.ndarray) -> dict:
    """Per future step k: CPC's test InfoNCE loss L_k on batches of train.batch_size windows, the bound
    log N - L_k (N the batch size) and the exact I(s; w_{L+k}) it lower-bounds (``theory.zoo.hmm_future_mi``)."""
    L, G, N = cell.data.context_len, len(cell.seeds), cell.train.batch_size
    n = (words.shape[0] // N) * N
    w = torch.as_tensor(words[:n]).reshape(1, -1, words.shape[1]).expand(G, -1, -1)
    c = encode(part(params, ""), seq_full(w[..., :L], cell.data.vocab))
    z = params["cpc_E"][torch.arange(G)[:, None, None], w[..., L:]]
    nb = n // N
    per = objectives.cpc_terms(c.reshape(G * nb, N, -1), z.reshape(G * nb, N, *z.shape[2:]),
                               params["cpc_W"].repeat_interleave(nb, 0)).reshape(G, nb, -1).mean(1)   # (G, K)
    out = {}
    for k in range(per.shape[1]):
        mi, _ = th.hmm_future_mi(hmm, words[:, :L], k + 1)
        out[f"cpc_loss_k{k + 1}"] = per[:, k].numpy()
        out[f"cpc_bound_k{k + 1}"] = math.log(N) - per[:, k].numpy()
        out[f"cpc_mi_exact_k{k + 1}"] = np.full(G, mi)
    return out


def seq_representation(cell: Cell, params: dict | None):
    """(N, L) windows -> (G, N, q): the one-hot window (raw) or the encoder on the whole window."""
    G, V = len(cell.seeds), cell.data.vocab

    def f(words: np.ndarray) -> torch.Tensor:
        w = torch.as_tensor(words)
        if params is None:
            return torch.nn.functional.one_hot(w, V).to(torch.float32).flatten(-2)[None].expand(G, -1, -1)
        return encode(part(params, ""), seq_full(w, V)[None].expand(G, -1, -1))
    return f


def run_sequences(cell: Cell, hmm, data_id: str, device: str = "cpu") -> pd.DataFrame:
    """One sequence-bench cell: train, then the probe curve on the natural task, the mean classifier, the collapse
    measures, the excess losses against the exact conditionals (PLM, ELECTRA's generator) and CPC's bounds."""
    q, L = cell.sequences, cell.data.context_len
    task = seq_task(cell, hmm, data_id)
    seeds_lrs = [(s, cell.train.lr) for s in cell.seeds]
    base = {"objective": cell.objective, "variant": cell.variant, "n_classes": 2, "loss": "none", "k": 0,
            "target_error": cell.eval.target_error}
    params, values, step = None, {}, 0
    if cell.objective == "random":
        params = seq_init_params(cell, data_id, device)
    elif cell.objective != "raw":
        params, loss_fn = train_seq_cell(cell, hmm, task, data_id, device)
        step = cell.train.steps
        tail = torch.stack(loss_fn.history[-max(1, min(10, len(loss_fn.history))):])
        values["train_loss"] = tail.mean(0).cpu().numpy()
    rng = numpy_rng(data_id, 0, "eval")
    w_test, _ = hmm.sample(8 * q.test_per_class + 400, L, rng)
    w_test, y_test = _balanced(w_test, seq_labels(task, hmm, w_test), q.test_per_class)
    w_ex, _ = hmm.sample(q.n_excess, L + q.future_steps, rng)
    n_pool = max(cell.probe_n)
    pools = []
    for s in cell.seeds:
        w, _ = hmm.sample(4 * n_pool + 400, L, numpy_rng(data_id, s, "probe-labels"))
        pools.append(_balanced(w, seq_labels(task, hmm, w), n_pool))
    with torch.no_grad():
        f = seq_representation(cell, params)
        G = len(cell.seeds)
        z_test = f(w_test)
        f_pool = torch.stack([f(pw)[g] for g, (pw, _) in enumerate(pools)])
        y_pool = np.stack([py for _, py in pools])
        mu = f_pool.double().reshape(G, 2, n_pool, -1).mean(2)
        values["mean_acc"] = (torch.bmm(z_test.double(), mu.transpose(1, 2)).argmax(-1)
                              == torch.as_tensor(y_test)).double().mean(-1).numpy()
        values.update(collapse_diagnostic(z_test, 2))   # the natural task is binary
        if cell.objective in ("plm", "electra"):
            values.update(seq_excess(cell, hmm, params, w_ex[:, :L], numpy_rng(data_id, 0, "eval-orders")))
        if cell.objective == "cpc":
            values.update(cpc_bounds(cell, hmm, params, w_ex))
        rows = metric_rows(base, step, values, seeds_lrs)
        with stage("probes"):
            rows += probe_curve_rows(cell, f_pool, y_pool, z_test, np.tile(y_test, (G, 1)), 2,
                                     base, step, data_id, seeds_lrs)
    return pd.DataFrame(rows)

"""One language cell: build the reference models or train the LMs (every seed and variant as one batched model),
then measure every point (a reference level, or a checkpoint) on the world's contexts and tasks.

Randomness (``experiments.engine.rng``): the HMM, the tasks, the contexts, the training text, the k-gram text, the logit
noise, the frozen Phi and the labelled probe samples come from the data spec's hash, so cells that differ only in
their model see the same language, text and labels (paired comparisons); initialisation and minibatches come from
(cell id, seed). Learning-rate variants of one seed share its text, initialisation and batches.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from experiments.engine.config import to_json
from experiments.engine.schedule import checkpoint_steps
from experiments.language.config import Cell
from experiments.language.eval import (NOT_NATURAL, Point, World, labelled_sample, model_terms, one_hot,
                                       population_probes, probe_curves)
from experiments.language.models import LM, KGram, fit_hmm_em, logit_noise, noise_direction, tilt
from experiments import objectives
from experiments.engine.rng import numpy_rng, torch_generator
from experiments.engine.timing import stage
from experiments.engine.train import gather_rows, train
from synthetic_data.language import HMM, stationary
from theory import language_softmax as ths

_CHUNK = 8192  # contexts per forward pass at evaluation (bounds activation memory)


def run(cell: Cell, cell_id: str, device: str = "cpu") -> pd.DataFrame:
    """One language cell: a reference sweep (logit noise, tilt, k-gram: no training) or a trained LM.

    Every term (epsilon, tau, B, gamma, the plug-in and fitted-probe losses) is computed exactly over all
    contexts in the quick and default profiles; the rows feed ``analysis.language.bound_checks``.
    """
    world = World(cell)
    if cell.kind == "ref":
        points, curves = _reference_points(cell, world), []
    elif cell.model == "hmm_em":
        points, curves = _em_points(cell, cell_id, world), []
    else:
        points, curves = _trained_points(cell, cell_id, world, device)
    base = {"kind": cell.kind, "model": cell.model, "arch": cell.arch, "phi": cell.phi, "d": cell.d,
            "target": cell.target}
    return pd.DataFrame(_rows(cell, world, base, points) + [{**base, **r} for r in curves])


# ------------------------------------------------------------------------------------------- references
def _reference_points(cell: Cell, world: World) -> list[Point]:
    """A reference family at each level: an LM given as a function of the context and of p* there."""
    skip = world.position if world.masked else None
    out = []
    for seed in cell.seeds:
        if cell.model == "noise":
            R = numpy_rng(world.data_id, seed, "logit-noise").standard_normal((world.L, world.V, world.V))
            for eta in cell.levels:
                def lm(words, p_star, eta=eta):
                    return logit_noise(p_star, noise_direction(words, R, skip), eta)
                out.append(_ref_point(world, lm, {"seed": seed, "level": eta}))
        elif cell.model == "tilt":
            for name in cell.tilt_tasks:
                t = world.tasks[f"masked_{name}" if world.masked else name]
                for eta in cell.levels:
                    def lm(words, p_star, t=t, eta=eta):
                        return tilt(p_star, t.v, np.sign(p_star @ t.v + t.b), eta)
                    out.append(_ref_point(world, lm, {"seed": seed, "level": eta, "tilt_task": name}))
        elif cell.model == "kgram":
            docs, _ = world.hmm.sample(cell.kgram_n_train, world.L + 1, numpy_rng(world.data_id, seed, "kgram-text"))
            for k in cell.levels:
                model = KGram(docs, int(k), world.V, cell.kgram_smoothing)
                out.append(_ref_point(world, lambda words, p_star, m=model: m.predict(words),
                                      {"seed": seed, "level": k}))
        elif cell.model == "softmax_noise":
            out += _softmax_points(cell, world, seed, skip)
        else:
            raise ValueError(f"model: unknown reference {cell.model!r}")
    return out


def _softmax_points(cell: Cell, world: World, seed: int, skip) -> list[Point]:
    """Softmax LMs with the frozen Phi: f(s) = theta*(s) + eta g(s), theta* the in-class optimum (best_logits).

    At eta = 0 the LM is the best one with this Phi (epsilon_Phi = 0, moment matching); g is a fixed random
    function of the context in R^d, so every level is an LM. These points carry Phi and f, so the softmax and
    conditional-mean measurements apply to them as to trained LMs.
    """
    Phi = fixed_phi(world, "frozen", cell.d)
    R = numpy_rng(world.data_id, seed, "softmax-noise").standard_normal((world.L, world.V, cell.d))
    # the tasks mostly share the world's contexts: solve and draw once per distinct context array
    laws = {id(world.S): (world.S, world.p_star)}
    for t in world.tasks.values():
        laws.setdefault(id(t.contexts), (t.contexts, t.p_star))
    with stage("theory"):
        best = {k: ths.best_logits(Phi, p) for k, (_, p) in laws.items()}
    noise = {k: noise_direction(words, R, skip) for k, (words, _) in laws.items()}
    out = []
    for eta in cell.levels:
        def feats(words, eta=eta):
            return best[id(words)] + eta * noise[id(words)]
        per_task = {}
        for name, t in world.tasks.items():
            f = feats(t.contexts)
            per_task[name] = {"f": f, "p": ths.softmax(f @ Phi)}
        f_S = feats(world.S)
        out.append(Point({"lr": 0.0, "step": 0, "tilt_task": "none", "seed": seed, "level": eta},
                         ths.softmax(f_S @ Phi), per_task, Phi, f_S))
    return out


def _ref_point(world: World, lm, key: dict) -> Point:
    per_task = {name: {"p": lm(t.contexts, t.p_star)} for name, t in world.tasks.items()}
    return Point({"lr": 0.0, "step": 0, "tilt_task": "none", **key}, lm(world.S, world.p_star), per_task)


# ---------------------------------------------------------------------------------------------- Baum-Welch
def _em_points(cell: Cell, cell_id: str, world: World) -> list[Point]:
    """The well-specified LM: per seed, an HMM with the true number of states fitted by EM to its own corpus (the
    seed's text stream, cut into documents), evaluated by exact forward filtering under the stationary law of its
    fitted trans, with the suite's emission floor (``synthetic_data.language._EMIT_FLOOR``: EM drives some emissions
    to 1e-100 and below; floored, every word stays possible and the KL finite). One point per seed, at its EM step
    count."""
    em, out = cell.em, []
    for seed in cell.seeds:
        docs, _ = world.hmm.sample(em.n_tokens // em.doc_len, em.doc_len, numpy_rng(world.data_id, seed, "em-text"))
        with stage("train"):
            trans, emit, steps, _ = fit_hmm_em(docs, world.hmm.n_states, world.V, numpy_rng(cell_id, seed, "em-init"),
                                               em.restarts, em.restart_iters, em.max_iter, em.tol,
                                               restart_docs=-(-em.restart_tokens // em.doc_len))
        fitted = HMM(stationary(trans), trans, emit)
        per_task = {name: {"p": fitted.next_word(t.contexts)} for name, t in world.tasks.items()}
        out.append(Point({"seed": seed, "lr": 0.0, "step": steps, "level": 0.0, "tilt_task": "none"},
                         fitted.next_word(world.S), per_task))
    return out


# -------------------------------------------------------------------------------------------- training
def fixed_phi(world: World, mode: str, d: int) -> np.ndarray:
    """A frozen Phi (d, V) with orthonormal rows scaled by sqrt(V) (entries of order 1).

    "frozen": its row space contains every natural task's v (the tasks are natural w.r.t. Phi), filled up with
    random directions; "random": random directions only (the tasks are, in general, not natural w.r.t. Phi).
    """
    rng = numpy_rng(world.data_id, 0, f"phi-{mode}")
    V = world.V
    rows = [t.v - t.v.mean() for k, t in world.source.items() if k != NOT_NATURAL] if mode == "frozen" else []
    M = np.concatenate([np.asarray(rows).reshape(-1, V), rng.standard_normal((d, V))])[:d]
    Q, _ = np.linalg.qr(M.T)  # Gram-Schmidt in order: the first rows' span is kept
    return Q.T * math.sqrt(V)


def _mask(words: np.ndarray, world: World) -> np.ndarray:
    if not world.masked:
        return words
    out = words.copy()
    out[:, world.position] = world.V  # the MASK token
    return out


def _trained_points(cell: Cell, cell_id: str, world: World, device: str):
    lm_spec, tr = cell.lm, cell.train
    L, V = world.L, world.V
    lm = LM(cell.arch, V, L, cell.d, lm_spec.embed_dim, lm_spec.width, lm_spec.n_layers, lm_spec.n_heads,
            readout=world.position if world.masked else L - 1)
    models = [(s, lr) for s in cell.seeds for lr in tr.lr]
    rep = len(tr.lr)
    G = len(models)
    X, Y = [], []
    for s in cell.seeds:
        text, _ = world.hmm.sample(tr.n_train, L if world.masked else L + 1,
                                   numpy_rng(world.data_id, s, "train-text"))
        X.append(_mask(text[:, :L], world))
        Y.append(text[:, world.position] if world.masked else text[:, L])
    learn = cell.phi == "learned"
    params = lm.init([torch_generator(cell_id, s, "init") for s, _ in models], learn, device)
    frozen = None if learn else torch.as_tensor(fixed_phi(world, cell.phi, cell.d), dtype=torch.float32,
                                                device=device).expand(G, -1, -1)
    quad = cell.model.startswith("quad")
    if tr.full_batch:
        Xu, T = _count_tables(X, Y, V)
        Xu = torch.as_tensor(Xu, device=device).repeat_interleave(rep, 0)                            # (G, U, L)
        T = torch.as_tensor(T, dtype=torch.float32, device=device).repeat_interleave(rep, 0)         # (G, U, V)

        def loss_fn(p, step):
            f = lm.features(p, Xu)
            Phi = p["Phi"] if learn else frozen
            return (corpus_quad if quad else corpus_xent)(f, Phi, T)
    else:
        X = torch.as_tensor(np.stack(X), device=device).repeat_interleave(rep, 0)           # (G, n, L)
        Y = torch.as_tensor(np.stack(Y), device=device).repeat_interleave(rep, 0)[..., None]  # (G, n, 1)
        idx = np.stack([numpy_rng(cell_id, s, "batches").integers(0, tr.n_train, size=(tr.steps, tr.batch_size))
                        for s in cell.seeds])
        idx = torch.as_tensor(idx, device=device).repeat_interleave(rep, 0)                  # (G, steps, B)

        def loss_fn(p, step):
            xb, yb = gather_rows(X, idx[:, step]), gather_rows(Y, idx[:, step])[..., 0]
            f = lm.features(p, xb)
            Phi = p["Phi"] if learn else frozen
            if quad:
                return objectives.quad(f, Phi, yb)
            return objectives.supervised_ce(lm.logits(f, Phi), yb)   # next-word (or masked-word) cross-entropy

    lr = torch.tensor([lr for _, lr in models], device=device)
    ckpts = train(params, loss_fn, tr.steps, lr, checkpoint_steps(tr.steps, tr.n_checkpoints), context=to_json(cell),
                  weight_decay=tr.weight_decay)
    points, last = [], None
    with torch.no_grad():
        for step, p in ckpts:
            Phi = (p["Phi"] if learn else frozen).double().cpu().numpy()
            f_S = _features(lm, p, _mask(world.S, world), device)
            per_task_f = {name: (f_S if t.contexts is world.S else _features(lm, p, _mask(t.contexts, world), device))
                          for name, t in world.tasks.items()}
            for g, (s, lr_) in enumerate(models):
                per_task = {name: {"f": f[g], "p": ths.softmax(f[g] @ Phi[g])} for name, f in per_task_f.items()}
                points.append(Point({"seed": s, "lr": lr_, "step": step, "level": 0.0, "tilt_task": "none"},
                                    ths.softmax(f_S[g] @ Phi[g]), per_task, Phi[g], f_S[g]))
            last = (step, Phi, per_task_f)
    curves = _curves(cell, world, models, *last) if cell.probe_curves else []
    return points, curves


def _count_tables(X: list[np.ndarray], Y: list[np.ndarray], V: int) -> tuple[np.ndarray, np.ndarray]:
    """Each seed's corpus (contexts (n, L), next words (n,)) as its distinct contexts and their joint frequencies
    T[u, w] = #(context u, word w) / n, padded with zero-weight rows to a common count U: (G, U, L) int64, (G, U, V).
    Any objective linear in the one-hot target (cross-entropy, Quad) is the same on the table as on the corpus."""
    tables = []
    n_tokens = int(max(x.max() for x in X)) + 1   # V, or V + 1 with the MASK token
    for x, y in zip(X, Y):
        code = np.ravel_multi_index(x.T, (n_tokens,) * x.shape[1])   # one integer per context: a 1-d unique
        keys, inv = np.unique(code, return_inverse=True)
        ctx = np.stack(np.unravel_index(keys, (n_tokens,) * x.shape[1]), axis=1).astype(np.int64)
        t = np.bincount(inv * V + y, minlength=len(keys) * V).reshape(len(keys), V).astype(np.float64)
        tables.append((ctx, t / len(y)))
    U = max(len(c) for c, _ in tables)
    Xu = np.zeros((len(tables), U, X[0].shape[1]), dtype=np.int64)
    T = np.zeros((len(tables), U, V))
    for g, (c, t) in enumerate(tables):
        Xu[g, :len(c)], T[g, :len(c)] = c, t
    return Xu, T


def corpus_xent(f, Phi, T):
    """The corpus's cross-entropy -sum_{u, w} T[u, w] log p_f(u)_w from its count table (G, U, V): per model (G,).
    The same number as ``next_word_xent`` on every window at once (a new objective of this chapter only)."""
    return -(T * torch.log_softmax(LM.logits(f, Phi), dim=-1)).sum(dim=(1, 2))


def corpus_quad(f, Phi, T):
    """The corpus's Quad loss sum_u [-f(u) . Phi T[u] + 1/2 (sum_w T[u, w]) ||Phi^T f(u)||^2]: per model (G,),
    ``objectives.quad`` on every window at once."""
    lin = (f * torch.bmm(T, Phi.transpose(1, 2))).sum(dim=(1, 2))
    return -lin + 0.5 * (T.sum(-1) * LM.logits(f, Phi).pow(2).sum(-1)).sum(-1)


def _features(lm: LM, params, words: np.ndarray, device: str) -> np.ndarray:
    """f(s) of every model for shared contexts (n, L): (G, n, d) float64."""
    out = []
    for lo in range(0, words.shape[0], _CHUNK):
        w = torch.as_tensor(words[lo:lo + _CHUNK], device=device)
        out.append(lm.features(params, w).double().cpu().numpy())
    return np.concatenate(out, axis=1)


# ----------------------------------------------------------------------------------------------- rows
def _rows(cell: Cell, world: World, base: dict, points: list[Point]) -> list[dict]:
    quad_bound = cell.model.startswith("quad")
    rows = []
    with stage("theory"):
        terms = [model_terms(world, pt, quad_bound) for pt in points]
    with stage("probes"):
        probes = _population(cell, world, points)
    for i, (pt, (free, per_task)) in enumerate(zip(points, terms)):
        head = {**base, **pt.key}
        rows += [{**head, "task": "none", "feature": "none", "n": 0, "metric": k, "value": float(v)}
                 for k, v in free.items()]
        for name, m in per_task.items():
            m = {**m, **{k: vals[i] for k, vals in probes[name].items()}}
            rows += [{**head, "task": name, "feature": "none", "n": 0, "metric": k, "value": float(v)}
                     for k, v in m.items()]
    return rows


def _population(cell: Cell, world: World, points: list[Point]) -> dict:
    """Population probes of every point, batched per (task, feature type): {task: {metric: (n_points,)}}: the loss,
    its paired SE and ``probe_<feature>_converged`` (1.0 where the probe's solver met its gradient test, else 0.0; the
    bound checks call a row resting on a non-converged probe undetermined)."""
    out = {}
    C = cell.eval.population_C
    for name, t in world.tasks.items():
        res = {}
        for feat, get in _FEATURES.items():
            if get is None or (feat != "p" and points[0].Phi is None):
                continue
            X = np.stack([get(pt, name) for pt in points])
            loss, se, converged = population_probes(t, X, C)
            res[f"probe_{feat}"], res[f"probe_{feat}_se"] = loss, se
            res[f"probe_{feat}_converged"] = converged.astype(np.float64)  # 1.0 / 0.0: the solver's gradient test
        out[name] = res
    return out


_FEATURES = {
    "p": lambda pt, name: pt.per_task[name]["p"],
    "phi_p": lambda pt, name: ths.conditional_mean(pt.Phi, pt.per_task[name]["p"]),
    "f": lambda pt, name: pt.per_task[name]["f"],
    "raw": None,  # finite-n curves only
}


def _curves(cell: Cell, world: World, models, step, Phi, per_task_f) -> list[dict]:
    """Figure 3: probe loss and error against labelled examples n, per feature type, at the last checkpoint."""
    ns = list(cell.eval.probe_n)
    rows = []
    for name, t in world.tasks.items():
        draws = [labelled_sample(t, ns[-1], numpy_rng(world.data_id, s, f"labels-{name}")) for s, _ in models]
        labelled = (np.stack([r for r, _ in draws]), np.stack([y for _, y in draws]))
        f = per_task_f[name]
        p = np.stack([ths.softmax(f[g] @ Phi[g]) for g in range(len(models))])
        raw = one_hot(_mask(t.contexts, world), world.V + 1)
        feats = {"f": f, "phi_p": np.einsum("gnv,gdv->gnd", p, Phi), "p": p,
                 "raw": np.broadcast_to(raw, (len(models),) + raw.shape)}
        for feat, X in feats.items():
            with stage("probes"):
                loss, err = probe_curves(t, X, ns, labelled, cell.eval.probe_C)
            for g, (s, lr) in enumerate(models):
                for j, n in enumerate(ns):
                    key = {"seed": s, "lr": lr, "step": step, "level": 0.0, "tilt_task": "none", "task": name,
                           "feature": feat, "n": n}
                    rows += [{**key, "metric": "curve_loss", "value": float(loss[g, j])},
                             {**key, "metric": "curve_error", "value": float(err[g, j])}]
    return rows

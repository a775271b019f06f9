"""The language chapter's evaluation: context sets, the tasks on them, and every measurement of one LM.

The context set of a cell: every length-L context with its exact probability when V^L <= eval.enum_limit (every term
then exact, SE 0), else eval.n_mc Monte-Carlo contexts (the KL and expected losses inside stay exact; the mean over
contexts has an SE). On a Monte-Carlo set the population probes are fitted on one half and every task term is
measured on the other, so a probe is never scored on the contexts it was fitted on.

Paired standard errors. tau, the plug-in losses and the probe losses are averages over the same contexts, so their
Monte-Carlo noise is shared; what decides a verdict is ``measured - tau``, and its SE is that of the per-context
difference (``*_se`` columns). On an enumerated set every SE is 0.

Masked target: the "LM" predicts word ``position`` of the context from the others, p*_m = p*(w_pos | rest) from
forward-backward; the tasks are the logistic and deterministic tasks' v on p*_m, with b re-centred on p*_m as
``make_task`` sets it on p*: b = -``balanced_threshold`` of the margins v . p*_m over the cell's contexts (under their
law), a threshold midway between two distinct margins that splits the mass as evenly as possible, so no context sits
at margin 0 (the median itself is some context's margin, and every copy of it would cost log 2).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from analysis.probes import fit_binary_probes, fit_logistic_probes
from experiments.engine.config import config_hash
from experiments.engine.rng import numpy_rng
from synthetic_data.language import balanced_threshold, build_model, make_task
from theory import language as th
from theory import language_softmax as ths

NOT_NATURAL = "non_natural"


@dataclass
class TaskEval:
    """One task on its context set. contexts (n, L) are the LM's input (the masked LM masks them itself)."""
    name: str
    contexts: np.ndarray
    weights: np.ndarray | None       # exact law (sums to 1) or None (i.i.d. Monte-Carlo rows)
    p_star: np.ndarray               # (n, V) the task's features p* on its contexts
    q: np.ndarray                    # (n,) P(y = +1 | context)
    v: np.ndarray
    b: float
    gamma: float
    fit: np.ndarray                  # rows that fit population probes
    ev: np.ndarray                   # rows every term is measured on
    terms: dict                      # tau, B, gamma and the naturalness check
    w_lm: np.ndarray | None = None   # the LM's probability of each row where the task's law differs (the prompt task;
    # Monte-Carlo rows: P(prompt | s) / n, the importance weight of each sampled s), else None: the laws coincide

    def w_ev(self):
        return None if self.weights is None else self.weights[self.ev]

    def w_fit(self) -> np.ndarray:
        w = np.ones(len(self.fit)) if self.weights is None else self.weights[self.fit]
        return w / w.sum()


def _halves(n: int, exact: bool) -> tuple[np.ndarray, np.ndarray]:
    idx = np.arange(n)
    return (idx, idx) if exact else (idx[: n // 2], idx[n // 2:])


class World:
    """The language, its context set, p* on it, and the tasks: all fixed by the data spec's hash and the task set.

    Every cell on the same data and tasks sees the same HMM, the same tasks and the same contexts.
    """

    def __init__(self, cell):
        self.cell = cell
        self.data_id = config_hash(cell.data)
        hmm = build_model(cell.data, numpy_rng(self.data_id, 0, "hmm"))
        self.hmm, self.L, self.V = hmm, cell.data.context_len, cell.data.vocab
        self.exact = self.V ** self.L <= cell.eval.enum_limit
        if self.exact:
            self.S, self.w = hmm.enumerate_contexts(self.L, limit=cell.eval.enum_limit)
        else:
            self.S, _ = hmm.sample(cell.eval.n_mc, self.L, numpy_rng(self.data_id, 0, "eval-contexts"))
            self.w = None
        self.masked = cell.target == "masked"
        self.position = cell.position
        self.p_star = hmm.masked_word(self.S, self.position) if self.masked else hmm.next_word(self.S)
        self.omega = ths.omega(self.p_star, self.w)
        self.source = {k: make_task(cell.tasks.spec(k), hmm, numpy_rng(self.data_id, 0, f"task-{k}"))
                       for k in cell.tasks.kinds}
        self.tasks = self._masked_tasks() if self.masked else self._next_tasks()

    # ---- tasks
    def _next_tasks(self) -> dict[str, TaskEval]:
        out = {}
        for kind, task in self.source.items():
            w_lm = None
            if kind == "prompt":
                s, w, gamma, w_lm = self._prompt_contexts(task)
                contexts = task.context(s)
                p_star = task.features(self.hmm, s)
                q = task.context_label_prob(self.hmm, s)
            else:
                contexts, w, gamma, p_star = self.S, self.w, 1.0, self.p_star
                q = task.context_label_prob(self.hmm, self.S)
            out[kind] = self._task(kind, contexts, w, p_star, q, task.v, task.b, gamma, w_lm)
        return out

    def _prompt_contexts(self, task):
        """Base contexts s of the prompt task, their law, gamma = min_s P(s + prompt) / P(s) = min P(prompt | s), and
        the LM's probability of each row (``TaskEval.w_lm``)."""
        e = self.cell.eval
        if self.exact:
            s, p_task, p_lm = task.context_laws(self.hmm, self.L, limit=e.enum_limit)
            return s, p_task, th.transfer_coefficient(p_lm, p_task), p_lm
        # Monte-Carlo: gamma is the minimum over the sampled s, an estimate from above of the minimum over the support.
        s, _ = self.hmm.sample(e.n_mc, task.base_len(self.L), numpy_rng(self.data_id, 0, "eval-prompt"))
        ratio = np.exp(self.hmm.log_prob(task.context(s)) - self.hmm.log_prob(s))
        return s, None, float(ratio.min()), ratio

    def _masked_tasks(self) -> dict[str, TaskEval]:
        out = {}
        for kind in ("logistic", "deterministic"):
            if kind not in self.source:
                continue
            v = self.source[kind].v
            b = -balanced_threshold(self.p_star @ v, self.w)
            m = self.p_star @ v + b
            q = (m > 0).astype(float) if kind == "deterministic" else np.exp(-np.logaddexp(0.0, -m))
            out[f"masked_{kind}"] = self._task(f"masked_{kind}", self.S, self.w, self.p_star, q, v, b, 1.0)
        return out

    def _task(self, name, contexts, w, p_star, q, v, b, gamma, w_lm=None) -> TaskEval:
        ts = self.cell.tasks
        fit, ev = _halves(len(contexts), w is not None)
        wf = None if w is None else w[fit]
        we = None if w is None else w[ev]
        # The naturalness check's probe is fitted on the fit rows and, like every task term, scored on the evaluation
        # rows, where the Bayes loss is measured too: natural_gap = tau_check - bayes on the same contexts (on an
        # enumerated set both halves are every context, and tau_check is the exact minimum).
        bayes = th.label_entropy(q[ev], we)[0]
        _, v_check, b_check = th.tau_fit(p_star[fit], q[fit], ts.check_B, wf)
        tau_check = th.tau(v_check, b_check, p_star[ev], q[ev], we)[0]
        if name == NOT_NATURAL:
            # Its own (v, b) is arbitrary: the best probe with ||v||_inf <= B stands in, as the definition asks.
            _, v, b = th.tau_fit(p_star[fit], q[fit], ts.B, wf)
        tau, tau_se = th.tau(v, b, p_star[ev], q[ev], we)
        gap = tau_check - bayes
        terms = {"tau": tau, "tau_se": tau_se, "B": th.half_range(v), "gamma": gamma, "bayes": bayes,
                 "tau_check": tau_check, "natural_gap": gap, "gap_max": ts.gap_max}
        return TaskEval(name, contexts, w, p_star, q, np.asarray(v, float), float(b), gamma, fit, ev, terms, w_lm)


# ------------------------------------------------------------------------------------------ measurements
@dataclass
class Point:
    """One LM to evaluate: a reference model at one level, or one trained model at one checkpoint.

    key: its identifying columns (seed, lr, step, level, tilt_task); p: (n, V) on the world's contexts; per_task:
    task name -> {"p": (n_T, V), "f": (n_T, d) or absent}; Phi (d, V) and f (n, d) for softmax LMs, else None.
    """
    key: dict
    p: np.ndarray
    per_task: dict
    Phi: np.ndarray | None = None
    f: np.ndarray | None = None


def _paired(loss: np.ndarray, ref: np.ndarray, w) -> tuple[float, float, float]:
    """(mean loss, mean(loss - ref), SE of that difference) over the same contexts."""
    diff, diff_se = th.mean_se(loss - ref, w)
    return th.mean_se(loss, w)[0], diff, diff_se


def model_terms(world: World, pt: Point, quad_bound: bool) -> tuple[dict, dict]:
    """Task-free metrics and {task: metrics} of one point, except the fitted probes."""
    P, w = world.p_star, world.w
    eps, eps_se = th.epsilon(P, pt.p, w)
    free = {"eps": eps, "eps_se": eps_se}
    if pt.Phi is not None:
        free["eps_phi"], free["eps_phi_se"] = ths.epsilon_phi(pt.Phi, P, pt.p, w)
        free["r2_affine"] = ths.affine_r2(pt.f, ths.conditional_mean(pt.Phi, pt.p), w)
        free["eps_quad"], free["eps_quad_se"] = ths.epsilon_quad(pt.f, pt.Phi, P, w)
        free["quad_loss"] = ths.quad_loss(pt.f, pt.Phi, P, w)
        d = pt.Phi.shape[0]
        if d < world.V:
            free["quad_min"] = ths.quad_min_loss(world.omega, d)
            for i, a in enumerate(ths.principal_angles(pt.Phi, ths.quad_optimal_phi(world.omega, d))):
                free[f"angle_{i}"] = float(a)
    per_task = {}
    for name, t in world.tasks.items():
        ev, we = t.ev, t.w_ev()
        q, Ps = t.q[ev], t.p_star[ev]
        ref = th.expected_logistic_loss(Ps @ t.v + t.b, q)
        m = dict(t.terms)
        pf = pt.per_task[name]["p"][ev]
        m["plugin_p"], _, m["plugin_p_se"] = _paired(th.expected_logistic_loss(pf @ t.v + t.b, q), ref, we)
        if pt.Phi is not None:
            lam, c, resid = ths.phi_coords(pt.Phi, t.v)
            v_phi = pt.Phi.T @ lam + c
            ref_phi = th.expected_logistic_loss(Ps @ v_phi + t.b, q)
            m.update(B_phi=th.half_range(v_phi), tau_phi=th.mean_se(ref_phi, we)[0], resid_phi=resid)
            m["plugin_phi"], _, m["plugin_phi_se"] = _paired(
                th.expected_logistic_loss(pf @ v_phi + t.b, q), ref_phi, we)
            if quad_bound:
                # u = Phi^T lambda lies in Phi's row space exactly; u . p + b + c = v_phi . p + b on any distribution.
                u = pt.Phi.T @ lam
                fq = pt.per_task[name]["f"][ev] @ pt.Phi
                m["B_quad"] = float(np.linalg.norm(u))
                m["plugin_quad"], _, m["plugin_quad_se"] = _paired(
                    th.expected_logistic_loss(fq @ u + t.b + c, q), ref_phi, we)
        if t.w_lm is not None:
            _gamma_cov(m, t, pt, name, quad_bound)
        per_task[name] = m
    return free, per_task


def _gamma_cov(m: dict, t: TaskEval, pt: Point, name: str, quad_bound: bool) -> None:
    """The covariance form of gamma for each bound's own error vector on the task's evaluation rows (its change of
    measure is applied to that vector): p_f - p* (Theorem 4.1), p_f - p_theta* (4.2: the error along v_Phi is the
    distance to the in-class optimum), Phi^T f - P_Phi p* (Quad)."""
    ev = t.ev
    w_task = np.ones(len(ev)) if t.weights is None else t.weights[ev]
    w_lm = t.w_lm[ev] / (len(ev) if t.weights is None else 1.0)
    Ps, pf = t.p_star[ev], pt.per_task[name]["p"][ev]
    m["gamma_cov"] = th.transfer_coefficient_cov(pf - Ps, w_task, w_lm)
    if pt.Phi is None:
        return
    best = ths.softmax(ths.best_logits(pt.Phi, Ps) @ pt.Phi)
    m["gamma_cov_phi"] = th.transfer_coefficient_cov(pf - best, w_task, w_lm)
    if quad_bound:
        proj = ths.quad_optimal_f(pt.Phi, Ps) @ pt.Phi  # P_Phi p*_s: the projection on Phi's row space
        m["gamma_cov_quad"] = th.transfer_coefficient_cov(pt.per_task[name]["f"][ev] @ pt.Phi - proj, w_task, w_lm)


def _standardise(X: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean and sd of each column of X (..., n, d) under w (n,); sd 0 becomes 1 (a constant column)."""
    mu = np.einsum("...nd,n->...d", X, w)
    sd = np.sqrt(np.maximum(np.einsum("...nd,n->...d", (X - mu[..., None, :]) ** 2, w), 0))
    return mu, np.where(sd > 1e-12, sd, 1.0)


def _expected(world_task: TaskEval, X_ev: np.ndarray, coef: np.ndarray, icpt: np.ndarray):
    """Per-context expected logistic loss and 0-1 error (P, n) of the margins X_ev (P, n, d) @ coef (P, d) + icpt,
    under the task's label law on its evaluation rows."""
    t = world_task
    m = np.einsum("pnd,pd->pn", X_ev, coef) + icpt[:, None]
    q = t.q[t.ev]
    loss = th.expected_logistic_loss(m, q[None])
    err = np.where(m > 0, 1 - q[None], q[None])   # predict +1 iff m > 0 (ties go to -1, like argmax)
    return loss, err


def population_probes(task: TaskEval, feats: np.ndarray, C: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The best linear probe on features (P, n, d), fitted on the task's exact label law over its fit rows.

    Each fit context enters with the soft target q (as y = +1 with weight w q and y = -1 with weight w (1 - q)), so
    the fit minimises the population logistic loss itself (plus ||W||^2 / 2C, a stand-in for the unconstrained infimum the theorem
    bounds). Returns (loss (P,), SE (P,) of loss - tau paired per context, converged (P,) bool: the solver's own
    gradient test, ``analysis.probes.ProbeFit.converged``; a loss from a probe that did not converge is not the
    infimum the theorem bounds, and its bound rows are undetermined).
    """
    P, n, d = feats.shape
    wf = task.w_fit()
    Xf = feats[:, task.fit]
    mu, sd = _standardise(Xf, wf)
    Xs = (Xf - mu[:, None]) / sd[:, None]
    q = task.q[task.fit]
    # soft targets: the same objective as each row twice (y = +1 with weight w q, y = -1 with w (1 - q)), half the rows
    fit = fit_binary_probes(torch.as_tensor(Xs), torch.as_tensor(q).expand(P, -1),
                            torch.as_tensor(wf).expand(P, -1), C=C)
    coef, icpt = _binary(fit)
    Xe = (feats[:, task.ev] - mu[:, None]) / sd[:, None]
    loss, _ = _expected(task, Xe, coef, icpt)
    ref = th.expected_logistic_loss(task.p_star[task.ev] @ task.v + task.b, task.q[task.ev])
    we = task.w_ev()
    out = np.array([th.mean_se(l_, we)[0] for l_ in loss])
    se = np.array([th.mean_se(l_ - ref, we)[1] for l_ in loss])
    return out, se, fit.converged.numpy().astype(bool)


def _binary(fit) -> tuple[np.ndarray, np.ndarray]:
    """(coef (P, d), intercept (P,)) of the two-class fit: the margin for y = +1 (class 1) against y = -1."""
    W, b = fit.W.numpy(), fit.b.numpy()
    b = np.where(np.isfinite(b), b, 0.0)
    return W[:, :, 1] - W[:, :, 0], b[:, 1] - b[:, 0]


def probe_curves(task: TaskEval, feats: np.ndarray, ns, labelled: tuple[np.ndarray, np.ndarray], C: float):
    """Finite-n probes: for each model (G, n, d) and n in ns, fit on the first n of the model's labelled rows.

    labelled = (rows (G, n_max) into the task's contexts, labels (G, n_max) in {0, 1}). Features are standardised by
    their law over the fit rows (unlabelled data is free). Returns (loss, error), each (G, len(ns)), exact over the
    task's evaluation rows.
    """
    G, _, d = feats.shape
    rows, labels = labelled
    mu, sd = _standardise(feats[:, task.fit], task.w_fit())
    gi = np.arange(G)[:, None]
    Xtr = (feats[gi, rows] - mu[:, None]) / sd[:, None]                      # (G, n_max, d)
    L = len(ns)
    X = np.repeat(Xtr, L, axis=0)
    y = np.repeat(labels, L, axis=0)
    wt = np.zeros(X.shape[:2])
    for j, n in enumerate(ns):
        wt[j::L, :n] = 1.0
    fit = fit_logistic_probes(torch.as_tensor(X), torch.as_tensor(y), torch.as_tensor(wt), 2, C=C)
    coef, icpt = _binary(fit)
    Xe = np.repeat((feats[:, task.ev] - mu[:, None]) / sd[:, None], L, axis=0)
    loss, err = _expected(task, Xe, coef, icpt)
    we = task.w_ev()
    mean = lambda a: np.array([th.mean_se(r, we)[0] for r in a]).reshape(G, L)  # noqa: E731
    return mean(loss), mean(err)


def labelled_sample(task: TaskEval, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n labelled examples: contexts drawn from the task's law over its fit rows, y ~ Bernoulli(q), as (rows, 0/1)."""
    rows = task.fit[rng.choice(len(task.fit), size=n, p=task.w_fit())]
    y = (rng.random(n) < task.q[rows]).astype(np.int64)
    return rows, y


def one_hot(contexts: np.ndarray, n_tokens: int) -> np.ndarray:
    """Raw context features: the one-hot of each position's token, (n, L * n_tokens)."""
    n, L = contexts.shape
    out = np.zeros((n, L * n_tokens))
    out[np.arange(n)[:, None], np.arange(L) * n_tokens + contexts] = 1.0
    return out

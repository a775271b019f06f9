"""Language models and natural tasks (Saunshi, Malladi & Arora, ICLR 2021): the config, its cells, their cost.

A cell is either one LM trained on the HMM language (all seeds and learning-rate variants as one batched model,
evaluated at checkpoints along training) or one family of reference models that sweeps the excess cross-entropy
epsilon in a controlled way (logit noise, an adversarial tilt, smoothed k-grams), all its levels and seeds in one
cell. Every cell evaluates the same downstream tasks, so each figure selects its points by the cell's parameters:

1. ``bound``: reference sweeps and trained checkpoints, downstream excess loss against epsilon;
2. ``training``: LMs of each architecture and Phi mode along training;
3. the same cells' probe curves against labelled examples n (f(s), Phi p_f(s), p_f(s), raw one-hots);
4. ``quad``: the Quad objective against cross-entropy at the same feature dimension;
5. the non-natural task, evaluated by every cell (``tasks.kinds``);
6. ``masked``: figure 1 for the masked-word conditional.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace



from experiments.engine.config import increasing
from experiments.engine.config import positive as _positive
from synthetic_data import plugins
from synthetic_data.language import PLUGIN_PROTOCOL, DataSpec, plugin_matrices
from synthetic_data.language_tasks import TASK_KINDS, TaskSpec

ARCHS = ("mlp", "transformer")
PHI_MODES = ("learned", "frozen", "random")   # frozen: rows span the tasks' v (natural w.r.t. Phi); random: not
OBJECTIVES = ("xent", "quad", "mlm")
REFERENCES = ("noise", "tilt", "kgram", "softmax_noise")   # softmax_noise: in-class noise for a frozen Phi
NATURAL = ("logistic", "deterministic")       # the tasks whose masked-word versions figure 6 uses


def _in(name: str, values, allowed) -> None:
    for v in values:
        if v not in allowed:
            raise ValueError(f"{name}: unknown {v!r}; known: {', '.join(allowed)}")


@dataclass(frozen=True)
class LMSpec:
    """The softmax LM p_f(s) = softmax(Phi^T f(s)); f an MLP over the window's input embeddings or a transformer."""
    arch: str = "mlp"          # default architecture of the studies that name none
    embed_dim: int = 16        # input word embeddings (and the transformer's model width)
    width: int = 64            # MLP hidden width; transformer feed-forward width
    d: int = 8                 # feature dimension: f(s) in R^d, Phi in R^{d x V}
    n_layers: int = 1          # transformer blocks (1 or 2)
    n_heads: int = 2

    def check(self) -> None:
        _in("arch", (self.arch,), ARCHS)
        for name in ("embed_dim", "width", "d", "n_heads"):
            _positive(name, getattr(self, name))
        if self.n_layers not in (1, 2):
            raise ValueError(f"n_layers: must be 1 or 2, got {self.n_layers}")
        if self.embed_dim % self.n_heads:
            raise ValueError(f"n_heads: {self.n_heads} does not divide embed_dim = {self.embed_dim}")


@dataclass(frozen=True)
class TrainSpec:
    n_train: int = 5000                  # training contexts (with their next word) per seed
    steps: int = 400
    batch_size: int = 128
    lr: tuple[float, ...] = (3e-3,)      # variants; batched with the seeds as one model
    weight_decay: float = 0.0
    n_checkpoints: int = 6               # evaluated along training, step 0 (the random LM) included
    # every step on the whole corpus (batch_size unused), through its table of distinct contexts and their next-word
    # counts: the corpus's own cross-entropy (or Quad) exactly, at the cost of the distinct contexts, not of n_train
    full_batch: bool = False

    def check(self) -> None:
        for name in ("n_train", "steps", "batch_size"):
            _positive(name, getattr(self, name))
        if self.n_checkpoints < 2:
            raise ValueError(f"n_checkpoints: must be >= 2 (the start and the end), got {self.n_checkpoints}")
        if not self.lr or any(not (0 < lr < 10) for lr in self.lr):
            raise ValueError(f"lr: needs at least one value in (0, 10), got {self.lr}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay: must be >= 0, got {self.weight_decay}")
        if self.batch_size > self.n_train:
            raise ValueError(f"batch_size: {self.batch_size} exceeds n_train = {self.n_train}")


@dataclass(frozen=True)
class EvalSpec:
    enum_limit: int = 20000              # enumerate all V^L contexts (exact terms) when there are at most this many
    n_mc: int = 20000                    # otherwise Monte-Carlo contexts (half fit the probes, half evaluate)
    probe_n: tuple[int, ...] = (10, 30, 100, 300, 1000)   # labelled examples for the probe curves (figure 3)
    probe_C: float = 1.0                 # inverse L2 strength of the finite-n probes (standardised features)
    population_C: float = 1e5            # the same for the population probe (a stand-in for the best linear probe)

    def check(self) -> None:
        for name in ("enum_limit", "n_mc"):
            _positive(name, getattr(self, name))
        if self.n_mc < 100:
            raise ValueError(f"n_mc: must be >= 100 (half fit, half evaluate), got {self.n_mc}")
        if not self.probe_n or any(n < 2 for n in self.probe_n):
            raise ValueError(f"probe_n: needs values >= 2, got {self.probe_n}")
        if list(self.probe_n) != sorted(set(self.probe_n)):
            raise ValueError(f"probe_n: must be strictly increasing, got {self.probe_n}")
        for name in ("probe_C", "population_C"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: must be > 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class TaskSet:
    """The downstream tasks every cell evaluates; one TaskSpec per kind is built from these shared fields."""
    kinds: tuple[str, ...] = TASK_KINDS
    B: float = 2.0                       # half-range of v
    prompt: tuple[int, ...] = (0,)       # words appended to s for the prompt kind
    hidden_weight: float = 1.0           # non_natural: share of the label set by a hidden state p*_s forgets
    hidden_pos: int = 0
    direction: str = "pca"
    n_fit: int = 4096
    check_B: float = 50.0                # naturalness check: the best probe on p* with ||v||_inf <= check_B ...
    gap_max: float = 0.1                 # ... leaving more than this above the Bayes loss: "assumption not met"

    def check(self) -> None:
        _in("kinds", self.kinds, TASK_KINDS)
        if not self.kinds or len(set(self.kinds)) != len(self.kinds):
            raise ValueError(f"kinds: needs distinct task kinds, got {self.kinds}")
        for kind in self.kinds:
            self.spec(kind).check()
        if not self.check_B >= self.B:
            raise ValueError(f"check_B: must be >= B = {self.B}, got {self.check_B}")
        if not self.gap_max > 0:
            raise ValueError(f"gap_max: must be > 0, got {self.gap_max}")

    def spec(self, kind: str) -> TaskSpec:
        return TaskSpec(kind=kind, B=self.B, prompt=self.prompt if kind == "prompt" else (),
                        hidden_weight=self.hidden_weight, hidden_pos=self.hidden_pos, direction=self.direction,
                        n_fit=self.n_fit)


@dataclass(frozen=True)
class BoundStudy:
    """Figure 1: reference LMs sweeping epsilon, plus every trained checkpoint."""
    enabled: bool = True
    noise_eta: tuple[float, ...] = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)    # softmax(log p* + eta g(s))
    tilt_eta: tuple[float, ...] = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0)          # p ∝ p* exp(-eta sign(m_s) v)
    tilt_tasks: tuple[str, ...] = NATURAL
    kgram_orders: tuple[int, ...] = (0, 1, 2)
    kgram_smoothing: float = 0.5         # add-alpha smoothing of the counts
    kgram_n_train: int = 20000           # training windows per seed
    # softmax(Phi^T (theta*(s) + eta g(s))) for the frozen Phi: epsilon_Phi sweeps up from 0 inside the class, so
    # the softmax bound is seen where it is informative (trained LMs stop at epsilon_Phi of a few 1e-2)
    softmax_eta: tuple[float, ...] = (0.0, 0.003, 0.01, 0.03, 0.1, 0.3)

    def check(self) -> None:
        increasing("noise_eta", self.noise_eta, low=0.0)
        increasing("softmax_eta", self.softmax_eta, low=0.0)
        increasing("tilt_eta", self.tilt_eta, low=0.0)
        _in("tilt_tasks", self.tilt_tasks, NATURAL)
        increasing("kgram_orders", self.kgram_orders, low=0.0)
        if not self.kgram_smoothing > 0:
            raise ValueError(f"kgram_smoothing: must be > 0, got {self.kgram_smoothing}")
        _positive("kgram_n_train", self.kgram_n_train)


@dataclass(frozen=True)
class TrainingStudy:
    """Figures 2 and 3: next-word LMs along training, per architecture and Phi mode; probe curves at the end."""
    enabled: bool = True
    archs: tuple[str, ...] = ARCHS
    phi: tuple[str, ...] = ("learned", "frozen")
    probe_curves: bool = True

    def check(self) -> None:
        _in("archs", self.archs, ARCHS)
        _in("phi", self.phi, PHI_MODES)


@dataclass(frozen=True)
class QuadStudy:
    """Figure 4: Quad against cross-entropy, both with a learned Phi of d rows (d below the rank of Omega*)."""
    enabled: bool = True
    arch: str = "mlp"
    d: int = 3

    def check(self) -> None:
        _in("arch", (self.arch,), ARCHS)
        _positive("d", self.d)


@dataclass(frozen=True)
class EMStudy:
    """A well-specified LM: an HMM with the true number of states fitted by Baum-Welch (hmmlearn) on a sampled
    corpus, restarts from random initialisations, the best likelihood kept; its p_f goes through every probe and
    bound (Theorem 4.1). Its excess loss should be about (free parameters) / (2 tokens)."""
    enabled: bool = True
    n_tokens: int = 80000                # per seed, cut into documents of doc_len words
    doc_len: int = 2000
    restarts: int = 10                   # random initialisations, each run restart_iters EM steps on the first
    restart_iters: int = 20              # restart_tokens of the corpus (a basin needs less text than convergence) ...
    restart_tokens: int = 10000
    max_iter: int = 300                  # ... then the best one to convergence (log-likelihood gain < tol)
    tol: float = 1e-2

    def check(self) -> None:
        for name in ("n_tokens", "doc_len", "restarts", "restart_iters", "restart_tokens", "max_iter"):
            _positive(name, getattr(self, name))
        if self.doc_len > self.n_tokens:
            raise ValueError(f"doc_len: {self.doc_len} exceeds n_tokens = {self.n_tokens}")
        if not self.tol > 0:
            raise ValueError(f"tol: must be > 0, got {self.tol}")


@dataclass(frozen=True)
class FullBatchStudy:
    """Softmax LMs trained into the informative regime: full-batch Adam on a large sampled corpus (the count table of
    its distinct contexts), frozen Phi (its rows span the natural tasks' v, so tau_Phi = tau), cross-entropy and Quad
    (convex in f for a fixed Phi). Their models are named ``<objective>_full``."""
    enabled: bool = True
    objectives: tuple[str, ...] = ("xent", "quad")
    n_train: int = 2_000_000             # training windows per seed
    steps: int = 600
    lr: float = 0.01
    n_checkpoints: int = 4

    def check(self) -> None:
        _in("objectives", self.objectives, ("xent", "quad"))
        for name in ("n_train", "steps"):
            _positive(name, getattr(self, name))
        if not 0 < self.lr < 10:
            raise ValueError(f"lr: must be in (0, 10), got {self.lr}")
        if self.n_checkpoints < 2:
            raise ValueError(f"n_checkpoints: must be >= 2 (the start and the end), got {self.n_checkpoints}")


@dataclass(frozen=True)
class MaskedStudy:
    """Figure 6: a masked LM predicting word ``position`` of the context from the others, and reference sweeps."""
    enabled: bool = True
    position: int = 1
    arch: str = "mlp"
    noise_eta: tuple[float, ...] = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
    tilt_eta: tuple[float, ...] = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0)

    def check(self) -> None:
        if self.position < 0:
            raise ValueError(f"position: must be >= 0, got {self.position}")
        _in("arch", (self.arch,), ARCHS)
        increasing("noise_eta", self.noise_eta, low=0.0)
        increasing("tilt_eta", self.tilt_eta, low=0.0)


@dataclass(frozen=True)
class Config:
    """One profile of the language chapter: the HMM, its tasks, the LM family and training, then one section per
    study (figure). ``check`` also rejects a masked position outside the context."""
    seeds: int = 3
    data: DataSpec = field(default_factory=lambda: DataSpec(vocab=10, context_len=4))
    tasks: TaskSet = field(default_factory=TaskSet)
    lm: LMSpec = field(default_factory=LMSpec)
    train: TrainSpec = field(default_factory=TrainSpec)
    eval: EvalSpec = field(default_factory=EvalSpec)
    bound: BoundStudy = field(default_factory=BoundStudy)
    training: TrainingStudy = field(default_factory=TrainingStudy)
    quad: QuadStudy = field(default_factory=QuadStudy)
    masked: MaskedStudy = field(default_factory=MaskedStudy)
    em: EMStudy = field(default_factory=EMStudy)
    full_batch: FullBatchStudy = field(default_factory=FullBatchStudy)

    def check(self) -> None:
        _positive("seeds", self.seeds)
        L, V = self.data.context_len, self.data.vocab
        if self.masked.enabled and self.masked.position >= L:
            raise ValueError(f"masked.position: {self.masked.position} is outside a context of length {L}")
        if "prompt" in self.tasks.kinds:
            if len(self.tasks.prompt) >= L:
                raise ValueError(f"tasks.prompt: {len(self.tasks.prompt)} words leave no context (context_len = {L})")
            if max(self.tasks.prompt) >= V:
                raise ValueError(f"tasks.prompt: word ids must be < data.vocab = {V}, got {self.tasks.prompt}")
        if self.bound.enabled:
            missing = [k for k in self.bound.tilt_tasks if k not in self.tasks.kinds]
            if missing:
                raise ValueError(f"bound.tilt_tasks: {missing} not in tasks.kinds")
            if max(self.bound.kgram_orders) > L:
                raise ValueError(f"bound.kgram_orders: order {max(self.bound.kgram_orders)} exceeds context_len = {L}")
        if self.lm.d > V:
            raise ValueError(f"lm.d: the feature dimension must be <= data.vocab = {V}, got {self.lm.d}")
        if self.quad.enabled and self.quad.d >= V:
            raise ValueError(f"quad.d: must be < data.vocab = {V}, got {self.quad.d}")
        if ("frozen" in self.training.phi and self.training.enabled) or self.full_batch.enabled:
            natural = [k for k in self.tasks.kinds if k != "non_natural"]
            if len(natural) > self.lm.d:
                raise ValueError(f"lm.d: a frozen Phi spans the {len(natural)} natural tasks' v; d = {self.lm.d}")


@dataclass(frozen=True)
class Cell:
    kind: str                    # "lm" (trained) or "ref" (reference family)
    model: str                   # OBJECTIVES for "lm", REFERENCES for "ref"
    arch: str                    # "none" for references
    phi: str                     # PHI_MODES, "none" for references
    d: int                       # feature dimension (0 for references)
    target: str                  # "next" or "masked"
    levels: tuple[float, ...]    # the reference family's eta or k-gram orders (empty for LMs)
    tilt_tasks: tuple[str, ...]  # tilt only: the tasks whose label direction is tilted against
    probe_curves: bool
    seeds: tuple[int, ...]
    data: DataSpec
    tasks: TaskSet
    lm: LMSpec
    train: TrainSpec
    eval: EvalSpec
    position: int                # masked position (target "masked"), else -1
    kgram_smoothing: float
    kgram_n_train: int
    em: EMStudy | None = None    # the Baum-Welch cell (model "hmm_em") only


def cells(cfg: Config) -> list[Cell]:
    """The reference sweeps and trained LMs the enabled studies ask for; a run two studies need is one cell.

    The tilt is a deterministic function of p*, so its cells use one seed; the masked study adds the
    masked-word references and a masked LM on the same HMM.
    """
    seeds = tuple(range(cfg.seeds))
    b, m = cfg.bound, cfg.masked

    def cell(kind, model, arch="none", phi="none", d=0, target="next", levels=(), tilt_tasks=(), probe_curves=False,
             n_seeds=None, train=None):
        return Cell(kind, model, arch, phi, d, target, tuple(float(x) for x in levels), tuple(tilt_tasks),
                    probe_curves, seeds if n_seeds is None else seeds[:n_seeds], cfg.data, cfg.tasks, cfg.lm,
                    cfg.train if train is None else train, cfg.eval, m.position if target == "masked" else -1,
                    b.kgram_smoothing if model == "kgram" else 0.0, b.kgram_n_train if model == "kgram" else 0,
                    cfg.em if model == "hmm_em" else None)

    out: list[Cell] = []
    if b.enabled:
        # The tilt is a deterministic function of p*: one seed says all.
        out += [cell("ref", "noise", levels=b.noise_eta), cell("ref", "tilt", levels=b.tilt_eta,
                                                               tilt_tasks=b.tilt_tasks, n_seeds=1),
                cell("ref", "kgram", levels=b.kgram_orders)]
        if b.softmax_eta:
            out.append(cell("ref", "softmax_noise", phi="frozen", d=cfg.lm.d, levels=b.softmax_eta))
        out.append(cell("lm", "xent", cfg.lm.arch, "learned", cfg.lm.d))
    if cfg.training.enabled:
        out += [cell("lm", "xent", a, phi, cfg.lm.d, probe_curves=cfg.training.probe_curves)
                for a in cfg.training.archs for phi in cfg.training.phi]
    if cfg.quad.enabled:
        out += [cell("lm", obj, cfg.quad.arch, "learned", cfg.quad.d) for obj in ("quad", "xent")]
    if m.enabled:
        tilt = [t for t in NATURAL if t in cfg.tasks.kinds]
        out += [cell("ref", "noise", target="masked", levels=m.noise_eta),
                cell("ref", "tilt", target="masked", levels=m.tilt_eta, tilt_tasks=tilt, n_seeds=1),
                cell("lm", "mlm", m.arch, "learned", cfg.lm.d, target="masked")]
    if cfg.em.enabled:
        out.append(cell("lm", "hmm_em"))
    fb = cfg.full_batch
    if fb.enabled:
        tr = replace(cfg.train, n_train=fb.n_train, steps=fb.steps, lr=(fb.lr,), n_checkpoints=fb.n_checkpoints,
                     batch_size=min(cfg.train.batch_size, fb.n_train), full_batch=True)
        out += [cell("lm", f"{obj}_full", cfg.lm.arch, "frozen", cfg.lm.d, train=tr) for obj in fb.objectives]
    # A run two studies need is one cell; it draws probe curves if either asks.
    merged: dict[Cell, bool] = {}
    for c in out:
        key = replace(c, probe_curves=False)
        merged[key] = merged.get(key, False) or c.probe_curves
    return [replace(c, probe_curves=pc) for c, pc in merged.items()]


def n_contexts(cell: Cell) -> int:
    n = cell.data.vocab ** cell.data.context_len
    return n if n <= cell.eval.enum_limit else cell.eval.n_mc


def cost(cell: Cell) -> float:
    """A rough relative cost, only used to start the slowest cells first."""
    n = n_contexts(cell) * len(cell.seeds)
    if cell.kind == "ref":
        return n * len(cell.levels) * (1 + len(cell.tilt_tasks)) * 4
    if cell.em is not None:
        em = cell.em
        return (min(em.restart_tokens, em.n_tokens) * em.restarts * em.restart_iters + em.n_tokens * 50) \
            * len(cell.seeds) // 20
    batch = min(n_contexts(cell), cell.train.n_train) if cell.train.full_batch else cell.train.batch_size
    per_step = batch * (8 if cell.arch == "transformer" else 1)
    train = cell.train.steps * per_step * len(cell.seeds) * len(cell.train.lr)
    evals = n * len(cell.train.lr) * cell.train.n_checkpoints * (12 if cell.arch == "transformer" else 6)
    return train + evals + (50_000 * len(cell.seeds) if cell.probe_curves else 0)


# The resource guard's model (tests/experiments/test_runs.py holds it against measured peaks and times): seconds
# per unit of ``cost`` and per cell on one core, and the temporaries of exact inference over the contexts.
# Time goes mostly into judging every task at every evaluation point (a reference level, or a checkpoint of
# each lr variant), over the task's fitting sample and the contexts.
SECONDS_PER_COST, SECONDS_PER_CELL, SECONDS_PER_POINT_CONTEXT, SECONDS_PER_CURVE, TEMPORARIES = \
    1e-6, 0.3, 8.7e-6, 1.25, 3.0


def footprint(cell: Cell):
    """The arrays of one cell per config field that sizes them, and its time."""
    from experiments.engine.resources import Footprint
    d, e, tr, lm = cell.data, cell.eval, cell.train, cell.lm
    K, V, L = d.n_states * max(1, d.n_hmms if d.family == "ginc" else 1), d.vocab, d.context_len
    n = n_contexts(cell)
    G = len(cell.seeds) * len(tr.lr)
    levels = max(1, len(cell.levels))
    contexts = "data.vocab" if n == V ** L else "eval.n_mc"
    mem = {
        # p*, the filtered states, the features and the reference LMs over every context
        contexts: 8 * n * (L + 2 * K + 3 * V + lm.d) * (1 + (cell.kind == "ref") * levels),
        "train.n_train": (4 * G * tr.n_train * (L + 1) + 8 * tr.n_train * (V + K)) * (cell.kind == "lm"),
        "train.batch_size": 4 * G * tr.batch_size * L * (lm.embed_dim + lm.width + V) * 4 * (cell.kind == "lm"),
        "data.n_states": 8 * (K * K + K * V) * 4,
        "tasks.n_fit": 8 * cell.tasks.n_fit * (V + K + lm.d),
        "eval.probe_n": 8 * max(e.probe_n) * (V + lm.d) * 4 * cell.probe_curves,
        "kgram_n_train": 8 * cell.kgram_n_train * (L + 1) + 8 * V ** min(L + 1, 6) * (cell.model == "kgram"),
    }
    points = levels if cell.kind == "ref" else tr.n_checkpoints * len(tr.lr)
    secs = {"train.steps": SECONDS_PER_CELL + SECONDS_PER_COST * cost(cell),
            "tasks.n_fit": SECONDS_PER_POINT_CONTEXT * points * len(cell.tasks.kinds) * len(cell.seeds)
            * (cell.tasks.n_fit + n),
            "eval.probe_n": SECONDS_PER_CURVE * len(cell.seeds) * cell.probe_curves}
    return Footprint({k: TEMPORARIES * float(v) for k, v in mem.items()}, secs)


def for_check(raw: dict) -> dict:
    """``sslt check``: explicit ``init``/``trans``/``emit`` matrices in ``[data]`` become the built-in
    ExplicitHMM plug-in; a plug-in fixes n_states and vocab from its matrices."""
    data = raw.setdefault("data", {})
    given = [k for k in ("init", "trans", "emit") if k in data]
    if given:
        if len(given) != 3:
            raise ValueError(f"data: explicit matrices need init, trans and emit together (got {', '.join(given)})")
        if data.get("generator"):
            raise ValueError("data: give explicit matrices or a generator, not both")
        data["generator"] = "synthetic_data.language:ExplicitHMM"
        data["generator_args"] = json.dumps({k: data.pop(k) for k in ("init", "trans", "emit")}, sort_keys=True)
    if data.get("generator"):
        g = plugins.instantiate(data["generator"], data.get("generator_args", ""), PLUGIN_PROTOCOL)
        _, _, emit = plugin_matrices(g)
        data["family"], data["n_states"], data["vocab"] = "plugin", int(emit.shape[0]), int(emit.shape[1])
        # the profile's feature sizes were chosen for its own vocabulary: fit them to this one
        V = data["vocab"]
        lm, quad = raw.setdefault("lm", {}), raw.setdefault("quad", {})
        lm["d"] = min(int(lm.get("d", LMSpec().d)), V)
        quad["d"] = min(int(quad.get("d", QuadStudy().d)), V - 1)
    return raw


def check_spec(cfg: Config):
    return cfg.data

"""Self-prediction under conditional independence (Lee et al. 2021): the experiment's config, cells and cost.

A cell is one data spec and one pretext budget n1: every pretext learner the studies ask of that pair, every
seed, and the linear probe at every labelled size n, all inside one cell. Six studies (one per figure) ask for
cells; studies that need the same (data, n1) share one cell, which records every study that asked for it (the
figures select their cells by that column). One cell's run is in experiments/self_prediction/run.py.
"""
from __future__ import annotations

import json

from dataclasses import dataclass, field, replace


from experiments.engine.config import increasing as _increasing
from experiments.engine.config import positive as _positive
from experiments.self_prediction.learners import LEARNERS, REGRESSION
from synthetic_data import plugins
from synthetic_data.self_prediction import FAMILIES, PLUGIN_FAMILY, PLUGIN_PROTOCOL, DataSpec

STUDIES = ("sample_complexity", "dimension", "approx_ci", "pretext_budget", "violation", "objectives")


def _check_learners(name: str, learners, allowed=LEARNERS) -> None:
    for learner in learners:
        if learner not in allowed:
            raise ValueError(f"{name}: unknown learner {learner!r}; known: {', '.join(allowed)}")
    if len(set(learners)) != len(learners):
        raise ValueError(f"{name}: repeated learner in {learners}")


def _check_family(name: str, family: str) -> None:
    if family not in FAMILIES + (PLUGIN_FAMILY,):
        raise ValueError(f"{name}: unknown family {family!r}; known: {', '.join(FAMILIES + (PLUGIN_FAMILY,))}")


@dataclass(frozen=True)
class PretextSpec:
    n1: int = 2000                # unlabelled pairs per seed (the pretext_budget study varies it)
    width: int = 64               # hidden width of mlp, dae and masked
    steps: int = 800              # Adam steps of the torch learners
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 0.0
    rff_features: int = 256
    rff_bandwidth: float = 1.0    # multiple of the median pairwise distance of x1
    rff_ridge: float = 1e-3       # lambda = rff_ridge * n1
    dae_noise: float = 0.5        # std of the DAE corruption, per standardised coordinate
    mask_frac: float = 0.3        # probability that masked prediction hides a coordinate
    softmax_atoms: int = 0        # K of the softmax head A softmax(W x + b); 0: the data's n_latent (contains psi*)
    softmax_steps: int = 800      # the softmax head's own Adam budget (learners.fit_softmax)
    softmax_batch: int = 512
    softmax_lr: float = 0.02

    def check(self) -> None:
        for name in ("n1", "width", "steps", "batch_size", "rff_features", "softmax_steps", "softmax_batch"):
            _positive(name, getattr(self, name))
        for name in ("lr", "softmax_lr"):
            if not 0 < getattr(self, name) < 10:
                raise ValueError(f"{name}: must be in (0, 10), got {getattr(self, name)}")
        if self.softmax_atoms < 0:
            raise ValueError(f"softmax_atoms: must be >= 0 (0: the data's n_latent), got {self.softmax_atoms}")
        for name in ("weight_decay", "rff_ridge", "dae_noise"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be >= 0, got {getattr(self, name)}")
        if not self.rff_bandwidth > 0:
            raise ValueError(f"rff_bandwidth: must be > 0, got {self.rff_bandwidth}")
        if not 0 < self.mask_frac < 1:
            raise ValueError(f"mask_frac: must be in (0, 1), got {self.mask_frac}")


@dataclass(frozen=True)
class EvalSpec:
    probe_n: tuple[int, ...] = (10, 20, 40, 80, 160, 320, 640, 1280)   # labelled sizes n of the probe
    n_fixed: int = 320            # the n at which figures 3-5 compare representations (one of probe_n)
    n_test: int = 5000            # fresh x1 on which ER (against the exact f*) and the terms are measured
    target_fraction: float = 0.2  # figure 2's target risk = target_fraction * trivial risk (tr Cov f*)

    def check(self) -> None:
        _increasing("probe_n", self.probe_n, low=2)
        if self.n_fixed not in self.probe_n:
            raise ValueError(f"n_fixed: must be one of probe_n {self.probe_n}, got {self.n_fixed}")
        _positive("n_test", self.n_test)
        if self.n_test < 100:
            raise ValueError(f"n_test: must be >= 100 for the Monte-Carlo terms, got {self.n_test}")
        if not 0 < self.target_fraction < 1:
            raise ValueError(f"target_fraction: must be in (0, 1), got {self.target_fraction}")


@dataclass(frozen=True)
class SampleStudy:
    """Figure 1: ER against n for psi*, learned psi and raw X1, per family, with the bounds."""
    enabled: bool = True
    families: tuple[str, ...] = ("exact_ci", "nonlinear", "topic")
    learners: tuple[str, ...] = ("linear", "mlp")

    def check(self) -> None:
        if not self.families:
            raise ValueError("families: needs at least one family")
        for f in self.families:
            _check_family("families", f)
            if f in ("approx_ci",):
                raise ValueError("families: approx_ci has its own study (approx_ci.alphas)")
        _check_learners("learners", self.learners, REGRESSION)


@dataclass(frozen=True)
class DimensionStudy:
    """Figure 2: the n needed to reach a target risk as d1 grows at fixed k (exact_ci)."""
    enabled: bool = True
    d1: tuple[int, ...] = (10, 20, 40, 80)     # the target risk is eval.target_fraction * trivial risk
    learners: tuple[str, ...] = ()

    def check(self) -> None:
        _increasing("d1", self.d1)
        _check_learners("learners", self.learners, REGRESSION)


@dataclass(frozen=True)
class ApproxStudy:
    """Figure 3: ER and bound as eps_CI grows (approx_ci family, the paper's alpha knob)."""
    enabled: bool = True
    m: int = 2                    # values of the latent Z
    alphas: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7)
    learners: tuple[str, ...] = ("linear", "softmax")   # softmax: well specified at alpha = 0

    def check(self) -> None:
        _positive("m", self.m)
        _increasing("alphas", self.alphas, low=0.0)
        if self.alphas[-1] > 1:
            raise ValueError(f"alphas: must lie in [0, 1], got {self.alphas}")
        _check_learners("learners", self.learners, REGRESSION)


@dataclass(frozen=True)
class BudgetStudy:
    """Figure 4: downstream ER against the number of pretext pairs n1, per learner."""
    enabled: bool = True
    family: str = "exact_ci"
    n1: tuple[int, ...] = (100, 300, 1000, 3000)
    learners: tuple[str, ...] = LEARNERS

    def check(self) -> None:
        _check_family("family", self.family)
        _increasing("n1", self.n1, low=2)
        _check_learners("learners", self.learners)


@dataclass(frozen=True)
class ViolationStudy:
    """Figure 5: a nuisance shared by both views that Y does not explain (nuisance family)."""
    enabled: bool = True
    nuisance_rank: int = 1
    nuisance_scales: tuple[float, ...] = (0.0, 1.0, 2.0, 4.0)
    learners: tuple[str, ...] = ("linear",)

    def check(self) -> None:
        _positive("nuisance_rank", self.nuisance_rank)
        _increasing("nuisance_scales", self.nuisance_scales, low=0.0)
        _check_learners("learners", self.learners, REGRESSION)


@dataclass(frozen=True)
class ObjectivesStudy:
    """Figure 6: denoising AE and masked prediction against psi on the same probe."""
    enabled: bool = True
    family: str = "exact_ci"
    learners: tuple[str, ...] = ("linear", "mlp", "dae", "masked")

    def check(self) -> None:
        _check_family("family", self.family)
        _check_learners("learners", self.learners)


@dataclass(frozen=True)
class Config:
    """One profile of the self-prediction chapter: a base exact-CI data spec that every study moves to its own
    family and knob, the pretext and evaluation specs, then one section per study (figure)."""
    seeds: int = 4
    topic_vocab: int = 40         # the topic family's vocabulary size: its d1 = d2 (other fields from data)
    data: DataSpec = field(default_factory=DataSpec)   # the base spec; each study sets its family and knob
    pretext: PretextSpec = field(default_factory=PretextSpec)
    eval: EvalSpec = field(default_factory=EvalSpec)
    sample_complexity: SampleStudy = field(default_factory=SampleStudy)
    dimension: DimensionStudy = field(default_factory=DimensionStudy)
    approx_ci: ApproxStudy = field(default_factory=ApproxStudy)
    pretext_budget: BudgetStudy = field(default_factory=BudgetStudy)
    violation: ViolationStudy = field(default_factory=ViolationStudy)
    objectives: ObjectivesStudy = field(default_factory=ObjectivesStudy)

    def check(self) -> None:
        _positive("seeds", self.seeds)
        _positive("topic_vocab", self.topic_vocab)
        if self.data.family not in ("exact_ci", "plugin"):
            raise ValueError(f"data.family: the base spec is exact_ci (the studies set the family), "
                             f"got {self.data.family!r}")
        cells(self)  # every data spec a study derives must pass DataSpec.check(); errors name the study


def _data(cfg: Config, where: str, family: str = "exact_ci", **knobs) -> DataSpec:
    """The base spec moved to ``family`` (topic: d1 = d2 = topic_vocab) with the study's knobs."""
    if family == "topic":
        knobs = {"d1": cfg.topic_vocab, "d2": cfg.topic_vocab, **knobs}
    spec = replace(cfg.data, family=family, **knobs)
    try:
        spec.check()
    except ValueError as err:
        raise ValueError(f"{where}: the derived data spec is invalid: {err}") from None
    return spec


@dataclass(frozen=True)
class Cell:
    data: DataSpec
    learners: tuple[str, ...]     # pretext learners fitted in this cell (sorted); psi* and raw X1 always probed
    studies: tuple[str, ...]      # the studies (figures) that asked for this cell (sorted)
    seeds: tuple[int, ...]
    pretext: PretextSpec          # with this cell's n1
    eval: EvalSpec


def cells(cfg: Config) -> list[Cell]:
    """One cell per (data spec, n1) that any enabled study asks for, fitting the union of the learners asked.

    The studies overlap (a dimension-study d1 can be the sample-complexity study's exact_ci spec); merging
    keeps one training per distribution and budget, and the cell records which studies asked for it.
    """
    seeds = tuple(range(cfg.seeds))
    asks: list[tuple[str, DataSpec, int, tuple[str, ...]]] = []   # (study, data, n1, learners)
    n1 = cfg.pretext.n1
    s = cfg.sample_complexity
    if s.enabled:
        asks += [("sample_complexity", _data(cfg, "sample_complexity.families", f), n1, s.learners)
                 for f in s.families]
    d = cfg.dimension
    if d.enabled:
        asks += [("dimension", _data(cfg, "dimension.d1", d1=v), n1, d.learners) for v in d.d1]
    a = cfg.approx_ci
    if a.enabled:
        asks += [("approx_ci", _data(cfg, "approx_ci", "approx_ci", m=a.m, alpha=v), n1, a.learners)
                 for v in a.alphas]
    b = cfg.pretext_budget
    if b.enabled:
        asks += [("pretext_budget", _data(cfg, "pretext_budget.family", b.family), v, b.learners) for v in b.n1]
    v = cfg.violation
    if v.enabled:
        asks += [("violation", _data(cfg, "violation", "nuisance", nuisance_rank=v.nuisance_rank,
                                     nuisance_scale=sc), n1, v.learners) for sc in v.nuisance_scales]
    o = cfg.objectives
    if o.enabled:
        asks.append(("objectives", _data(cfg, "objectives.family", o.family), n1, o.learners))
    # One cell per (data, n1): the union of the learners and of the studies that asked for it.
    merged: dict[tuple[DataSpec, int], tuple[set, set]] = {}
    for study, data, n, learners in asks:
        ls, ss = merged.setdefault((data, n), (set(), set()))
        ls.update(learners)
        ss.add(study)
    return [Cell(data, tuple(l for l in LEARNERS if l in ls), tuple(sorted(ss)), seeds,
                 replace(cfg.pretext, n1=n), cfg.eval)
            for (data, n), (ls, ss) in merged.items()]


def cost(cell: Cell) -> float:
    """The cell's time in seconds on one core, by parts: the resource guard's estimate and the order in which
    the slowest cells start.

    Every torch learner pays a per-step overhead (the batched step of this chapter's small nets is dominated by
    the ~20 small kernels of a step, not by its multiply-adds) plus its multiply-adds; then the random-feature
    fit and maps, the learned feature maps over every sample, the probes, and the quadrature posterior of the
    nonlinear family (GEMM path, each pretext block mapped once). The rates (TIME_RATES) were fitted to the 24
    cells of the default profile measured on the 2-core machine under load (docs/benchmark/
    self_prediction_posterior.md); the former model counted a training multiply-add at 1.2e-8 s, about 100x
    its cost, and estimated the default at 2.42 h (--jobs 1) against 11.4 min measured.
    """
    p, d, e = cell.pretext, cell.data, cell.eval
    r = TIME_RATES
    S = len(cell.seeds)
    steps = {"mlp": p.steps, "dae": p.steps, "masked": p.steps, "softmax": p.softmax_steps}
    per_row = {"mlp": p.batch_size * p.width * (d.d1 + d.d2), "dae": p.batch_size * p.width * 2 * d.d1,
               "masked": p.batch_size * p.width * 2 * d.d1, "softmax": p.softmax_batch * d.k * d.m * (d.d1 + d.d2)}
    torch_ls = [l for l in cell.learners if l in steps]
    train = sum(steps[l] * (r["step"] + r["train_mac"] * S * 3 * per_row[l]) for l in torch_ls)
    rows = S * p.n1 + e.n_test + S * max(e.probe_n)          # every sample a feature map sees
    # random features: each (row, feature) evaluated (x W + c, cos, the map to d2) over every sample the cell maps,
    # and the D x D Gram accumulated over the pretext sample (a float64 GEMM)
    rff = (r["rff_feature"] * S * (p.n1 + e.n_test + max(e.probe_n)) * p.rff_features
           + r["gram_mac"] * S * p.n1 * p.rff_features ** 2) * ("rff" in cell.learners)
    maps = r["map_mac"] * rows * (p.width * d.d1 * sum(l in ("mlp", "dae", "masked") for l in cell.learners)
                                  + d.d1 * d.d2 * (1 + len(cell.learners)))
    reps = 3 + len(cell.learners) + sum(l in REGRESSION for l in cell.learners)
    probes = r["probe_mac"] * S * reps * len(e.probe_n) * max(e.probe_n) * d.d1 ** 2
    # the rule is refined from quad_nodes (doubled at least once on the default specs)
    nodes = (2 * d.quad_nodes) ** d.latent_dim if d.family == "nonlinear" else 0
    truth = r["quad_mac"] * (S * p.n1 + e.n_test) * d.k * d.m * nodes * d.d1
    return train + rff + maps + probes + truth


# Seconds per unit of each part of ``cost`` (fitted by non-negative least squares to the measured default cells,
# rounded): a step's overhead, a training multiply-add (forward + backward), a random feature at one row, a
# feature-map multiply-add, a probe's Gram multiply-add, and a quadrature (row, node, coordinate) term. The rff
# Gram's float64 multiply-add is measured apart (a (6, 8192, 256) Gram, 1 thread, same load: 2-3e-10 s): the
# default profile has one D, so the fit could not tell D from D^2, and the paper profile's D = 2048 needs both.
TIME_RATES = {"step": 7e-3, "train_mac": 5e-11, "rff_feature": 1.1e-6, "gram_mac": 3e-10, "map_mac": 3.6e-9,
              "probe_mac": 5e-10, "quad_mac": 1e-9}

# The resource guard's model (tests/experiments/test_runs.py holds it against measured peaks and times): ``cost``
# is in seconds; a cell's fixed time on one core; a sample's temporaries as a multiple of its array.
SECONDS_PER_COST, SECONDS_PER_CELL, TEMPORARIES = 1.0, 0.7, 3.0


def footprint(cell: Cell):
    """The float64 arrays of one cell per config field that sizes them (one seed at a time), and its time."""
    from experiments.engine.resources import Footprint
    from synthetic_data.self_prediction import K_PSI_NEIGHBOURS, N_PSI_REFERENCE
    p, d, e = cell.pretext, cell.data, cell.eval
    width = d.d1 + d.d2
    latent = d.k * d.m * (d.quad_nodes ** d.latent_dim if d.family == "nonlinear" else 1)
    mem = {
        "pretext.n1": 8 * p.n1 * (width + 2 * d.d2),
        "pretext.rff_features": 8 * ((p.n1 + e.n_test) * p.rff_features + p.rff_features ** 2)
        * ("rff" in cell.learners),
        "pretext.batch_size": 4 * 6 * p.batch_size * p.width,
        "eval.n_test": 8 * e.n_test * (width + 4 * d.k + latent),
        "eval.probe_n": 8 * max(e.probe_n) * (d.d1 + d.d2) * 4,
        "data.d1": 8 * (d.d1 + d.d2) ** 2 * 4,
        # an undeclared psi* is a k-NN mean over a reference sample of the plug-in
        "data.generator": (8 * N_PSI_REFERENCE * width * 2 + 8 * e.n_test * K_PSI_NEIGHBOURS * d.d2)
        * (d.family == "plugin"),
    }
    return Footprint({k: TEMPORARIES * float(v) for k, v in mem.items()},
                     {"pretext.n1": SECONDS_PER_CELL + SECONDS_PER_COST * cost(cell)})


def for_check(raw: dict) -> dict:
    """``sslt check``: the studies that run on the one distribution of the assumption file, and none that move
    it (dimension, violation; approx_ci only for an approx_ci file, at its own alpha). Explicit ``means1`` /
    ``means2`` in ``[data]`` (with optional ``noise1``, ``noise2``, ``class_probs``) become the built-in
    ExplicitGaussianViews plug-in; a plug-in fixes k, d1 and d2."""
    data = raw.setdefault("data", {})
    if "means1" in data or "means2" in data:
        if data.get("generator"):
            raise ValueError("data: give explicit means or a generator, not both")
        args = {k: data.pop(k) for k in ("means1", "means2", "class_probs") if k in data}
        args.update({k: data[k] for k in ("noise1", "noise2") if k in data})
        data["generator"] = "synthetic_data.self_prediction:ExplicitGaussianViews"
        data["generator_args"] = json.dumps(args, sort_keys=True)
    family = data.get("family", "exact_ci")
    if data.get("generator"):
        g = plugins.instantiate(data["generator"], data.get("generator_args", ""), PLUGIN_PROTOCOL)
        family = "plugin"
        data.update(family="plugin", k=int(g.k), d1=int(g.d1), d2=int(g.d2))
    for study in ("dimension", "violation"):
        raw.setdefault(study, {})["enabled"] = False
    if family == "approx_ci":
        raw["approx_ci"] = {**raw.get("approx_ci", {}), "enabled": True, "alphas": [data.pop("alpha", 0.0)],
                            "m": data.pop("m", 1)}
        data["family"] = "exact_ci"
        for study in ("sample_complexity", "pretext_budget", "objectives"):
            raw.setdefault(study, {})["enabled"] = False
        return raw
    raw.setdefault("approx_ci", {})["enabled"] = False
    raw.setdefault("sample_complexity", {})["families"] = [family]
    raw.setdefault("pretext_budget", {})["family"] = family
    raw.setdefault("objectives", {})["family"] = family
    if family == "topic":
        raw["topic_vocab"] = data.get("d1", raw.get("topic_vocab", 40))
    if family != "plugin":
        data["family"] = "exact_ci"  # the base spec; the studies move it to the file's family
    return raw


def check_spec(cfg: Config) -> DataSpec:
    """The distribution the check is about: the sample-complexity study's (or the approx_ci study's)."""
    if cfg.approx_ci.enabled:
        return _data(cfg, "approx_ci", "approx_ci", m=cfg.approx_ci.m, alpha=cfg.approx_ci.alphas[0])
    return _data(cfg, "sample_complexity.families", cfg.sample_complexity.families[0])

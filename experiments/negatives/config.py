"""More negatives: InfoNCE with K negatives on latent classes, and the finite instance; config and cells.

A trained cell is one (C, class law, K, b): every seed trains one batched encoder on InfoNCE with K negatives,
features projected onto the sphere of radius b. Three studies ask for trained cells (the main sweep over C and
K, the norm sweep over b, the Zipf law), and the runner trains a cell two studies share once. A finite cell is
the finite instance at every K of its study: the population optimum and a few random encoders, all exact.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from math import comb

from experiments.engine.config import positive as _positive
from experiments.latent_eval import EncoderSpec
from synthetic_data.negatives import DataSpec, FiniteSpec

TRAINED, FINITE = "trained", "finite"
MAX_K = 1024                   # negatives cost memory linearly; more is refused
MAX_ENUMERATION = 4_000_000    # count vectors x inputs^2 of the finite instance's exact sum at its largest K


@dataclass(frozen=True)
class TrainSpec:
    n_pairs: int = 4000          # positive pairs per seed
    n_pool: int = 8000           # marginal samples per seed the negatives are drawn from
    steps: int = 300
    batch_size: int = 128        # anchors per step; the step's K negatives are shared by its anchors
    lr: float = 3e-3
    weight_decay: float = 0.0

    def check(self) -> None:
        for name in ("n_pairs", "n_pool", "steps", "batch_size"):
            _positive(name, getattr(self, name))
        if not 0 < self.lr < 10:
            raise ValueError(f"lr: must lie in (0, 10), got {self.lr}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay: must be >= 0, got {self.weight_decay}")
        if self.batch_size > self.n_pairs:
            raise ValueError(f"batch_size: {self.batch_size} exceeds n_pairs = {self.n_pairs}")


@dataclass(frozen=True)
class EvalSpec:
    n_tuples: int = 1000         # held-out anchors for R_cont, each with its own K negatives
    n_pool: int = 20000          # held-out marginal samples the evaluation negatives are drawn from
    n_mean: int = 200            # per class, for the class means mu_c
    n_test: int = 100            # per class, for the mean classifier's loss and accuracy

    def check(self) -> None:
        for name in ("n_tuples", "n_pool", "n_mean", "n_test"):
            _positive(name, getattr(self, name))


def _check_ks(name: str, ks) -> None:
    if not ks or any(k < 1 for k in ks):
        raise ValueError(f"{name}: needs values >= 1, got {ks}")
    if max(ks) > MAX_K:
        raise ValueError(f"{name}: {max(ks)} negatives exceed {MAX_K}")


def _check_bs(name: str, bs) -> None:
    if not bs or any(not (0 < b <= 10) for b in bs):
        raise ValueError(f"{name}: needs norms in (0, 10], got {bs}")


def _check_classes(name: str, classes) -> None:
    if not classes or any(c < 2 for c in classes):
        raise ValueError(f"{name}: needs class counts >= 2, got {classes}")


@dataclass(frozen=True)
class SweepStudy:
    """Figures 1-3: every K for each number of classes, uniform law, at the norms b."""
    enabled: bool = True
    classes: tuple[int, ...] = (10, 50, 100)
    k: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
    b: tuple[float, ...] = (1.0,)

    def check(self) -> None:
        _check_classes("classes", self.classes)
        _check_ks("k", self.k)
        _check_bs("b", self.b)


@dataclass(frozen=True)
class NormStudy:
    """The norm b as a knob (the papers' bounded-feature setting): a few K at more norms, one C."""
    enabled: bool = True
    classes: int = 10
    k: tuple[int, ...] = (1, 8, 64, 512)
    b: tuple[float, ...] = (0.5, 2.0, 4.0)

    def check(self) -> None:
        _check_classes("classes", (self.classes,))
        _check_ks("k", self.k)
        _check_bs("b", self.b)


@dataclass(frozen=True)
class ZipfStudy:
    """Figure 4: the same bounds under a skewed class law rho_c ~ c^(-s)."""
    enabled: bool = True
    classes: tuple[int, ...] = (10,)
    k: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
    b: float = 1.0
    zipf_s: float = 1.0

    def check(self) -> None:
        _check_classes("classes", self.classes)
        _check_ks("k", self.k)
        _check_bs("b", (self.b,))
        if self.zipf_s < 0:
            raise ValueError(f"zipf_s: must be >= 0, got {self.zipf_s}")


@dataclass(frozen=True)
class FiniteStudy:
    """The finite instance (every quantity exact): the five forms, and Awasthi et al.'s question."""
    enabled: bool = True
    n_classes: int = 3
    class_laws: tuple[str, ...] = ("uniform", "zipf")
    zipf_s: float = 1.0
    overlap: float = 0.3
    n_shared: int = 1
    k: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    b: tuple[float, ...] = (1.0, 2.0)
    restarts: int = 3            # random starts of the full-batch optimisation; the best is the optimum
    n_random: int = 4            # random encoders judged beside the optimum
    max_iter: int = 300          # L-BFGS iterations per start

    def specs(self) -> list[FiniteSpec]:
        return [FiniteSpec(self.n_classes, law, self.zipf_s, self.overlap, self.n_shared) for law in self.class_laws]

    def check(self) -> None:
        if not self.class_laws:
            raise ValueError("class_laws: needs at least one law")
        for spec in self.specs():
            try:
                spec.check()
            except ValueError as err:   # the study's field is class_laws, the spec's class_law
                raise ValueError(str(err).replace("class_law:", "class_laws:", 1)) from None
        _check_ks("k", self.k)
        _check_bs("b", self.b)
        for name in ("restarts", "n_random", "max_iter"):
            _positive(name, getattr(self, name))
        N = self.n_classes + self.n_shared
        size = comb(max(self.k) + N - 1, N - 1) * N * N
        if size > MAX_ENUMERATION:
            raise ValueError(f"k: the exact sum at K = {max(self.k)} over {N} inputs has {size} terms "
                             f"(more than {MAX_ENUMERATION}); use fewer negatives or inputs")


@dataclass(frozen=True)
class Config:
    seeds: int = 3
    data: DataSpec = field(default_factory=DataSpec)
    encoder: EncoderSpec = field(default_factory=EncoderSpec)
    train: TrainSpec = field(default_factory=TrainSpec)
    eval: EvalSpec = field(default_factory=EvalSpec)
    sweep: SweepStudy = field(default_factory=SweepStudy)
    norms: NormStudy = field(default_factory=NormStudy)
    zipf: ZipfStudy = field(default_factory=ZipfStudy)
    finite: FiniteStudy = field(default_factory=FiniteStudy)

    def check(self) -> None:
        _positive("seeds", self.seeds)
        if self.data.family == "plugin":
            raise ValueError("data.family: the negatives chapter sets the class law itself; no plug-in here")
        for c in self.sweep.classes + (self.norms.classes,) + self.zipf.classes:
            _data_for(self.data, c, "uniform", 1.0, "classes")


def _data_for(data: DataSpec, n_classes: int, law: str, zipf_s: float, where: str) -> DataSpec:
    spec = replace(data, n_classes=n_classes, class_law=law, zipf_s=zipf_s, class_probs=())
    try:
        spec.check()
    except ValueError as err:
        raise ValueError(f"{where}: {n_classes} classes do not fit data: {err}") from None
    return spec


@dataclass(frozen=True)
class Cell:
    study: str                   # TRAINED or FINITE
    K: int                       # negatives (trained cells); 0 for a finite cell, which runs every K of ks
    b: float                     # feature norm (trained cells); 0 for a finite cell (it runs every b of bs)
    seeds: tuple[int, ...]
    data: DataSpec
    encoder: EncoderSpec
    train: TrainSpec
    eval: EvalSpec
    finite: FiniteSpec | None = None
    ks: tuple[int, ...] = ()
    bs: tuple[float, ...] = ()
    restarts: int = 0
    n_random: int = 0
    max_iter: int = 0


def cells(cfg: Config) -> list[Cell]:
    seeds = tuple(range(cfg.seeds))

    def trained(C, law, zipf_s, K, b):
        return Cell(TRAINED, K, float(b), seeds, _data_for(cfg.data, C, law, zipf_s, "data"), cfg.encoder,
                    cfg.train, cfg.eval)

    out: list[Cell] = []
    if cfg.sweep.enabled:
        out += [trained(C, "uniform", 1.0, K, b) for C in cfg.sweep.classes for K in cfg.sweep.k for b in cfg.sweep.b]
    if cfg.norms.enabled:
        out += [trained(cfg.norms.classes, "uniform", 1.0, K, b) for K in cfg.norms.k for b in cfg.norms.b]
    if cfg.zipf.enabled:
        out += [trained(C, "zipf", cfg.zipf.zipf_s, K, cfg.zipf.b) for C in cfg.zipf.classes for K in cfg.zipf.k]
    if cfg.finite.enabled:
        f = cfg.finite
        for spec in f.specs():
            data = DataSpec(n_classes=spec.n_classes, class_law=spec.class_law, zipf_s=spec.zipf_s,
                            family="discrete", support_size=1 + spec.n_shared)
            out.append(Cell(FINITE, 0, 0.0, seeds, data, cfg.encoder, cfg.train, cfg.eval, spec,
                            tuple(sorted(set(f.k))), tuple(sorted(set(f.b))), f.restarts, f.n_random, f.max_iter))
    return list(dict.fromkeys(out))        # a cell two studies ask for is trained once


# The finite study's cost in the trained study's units (floating-point operations), fitted on its measured cells
# (quick 1.45 s, default 2.26 s, paper 14.4 s a cell, 2026-12-06, experiments/configs/calibration.json): a fixed
# start (the exact multinomial tables, once per cell) and one unit per optimiser evaluation of one K. Counting the
# multinomial terms instead, as before, grew 16,000x from quick to paper where the time grew 10x, and so the fit
# gave the trained cells, 98% of the paper run, no rate at all.
FINITE_START = 1.6e10
FINITE_PER_EVALUATION = 3.0e6


def cost(cell: Cell) -> float:
    """Roughly the cell's floating-point operations (a multiply-add counts 2, forward and backward 3 passes), so
    that one rate of the calibration turns it into seconds; the runner also starts the costliest cells first."""
    if cell.study == FINITE:
        evaluations = len(cell.bs) * (cell.restarts * cell.max_iter + cell.n_random) * len(cell.ks)
        return FINITE_START + FINITE_PER_EVALUATION * evaluations
    tr, ev, d = cell.train, cell.eval, cell.data
    in_dim = d.out_dim if d.nonlinear else d.dim
    width = cell.encoder.width if cell.encoder.kind == "mlp" else 0
    per_sample = in_dim * width + width * cell.encoder.out_dim if width else in_dim * cell.encoder.out_dim
    step = (2 * tr.batch_size + cell.K) * per_sample + tr.batch_size * (cell.K + 1) * cell.encoder.out_dim
    evaluation = (ev.n_pool + d.n_classes * (ev.n_mean + ev.n_test)) * per_sample \
        + ev.n_tuples * (cell.K + 2) * cell.encoder.out_dim
    return float(len(cell.seeds) * 2 * (3 * tr.steps * step + evaluation))

"""Contrastive learning with latent classes (Arora et al. 2019): the experiment's config and its cells.

A cell is one objective trained on one latent-class model, all its seeds and learning-rate variants as one
batched model. Each cell evaluates the theory's terms at every checkpoint (one point of the bound figure each)
and, when asked, linear-probe learning curves at the last checkpoint. The four figures select cells by their
parameters, so a cell that two studies need (say logistic, k = 1, C = 10) is trained once.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from experiments.contrastive import generalisation
from experiments.contrastive.generalisation import ORACLE, TRAINED as BALL, GenCell
from experiments.engine.config import positive as _positive
from experiments.latent_eval import EncoderSpec, EvalSpec
from synthetic_data import plugins
from synthetic_data.contrastive import PLUGIN_PROTOCOL, DataSpec
from theory.contrastive import LOSSES

TRAINED = ("logistic", "hinge", "block", "ntxent", "supervised")
UNTRAINED = ("raw", "random")


@dataclass(frozen=True)
class TrainSpec:
    n_tuples: int = 4000                 # M, unlabelled tuples (or blocks, or pairs) per model
    steps: int = 400
    batch_size: int = 128
    lr: tuple[float, ...] = (3e-3,)      # variants; batched with the seeds as one model
    weight_decay: float = 0.0
    n_checkpoints: int = 6               # evaluated along training, step 0 (the random encoder) included
    temperature: float = 0.1             # NT-Xent only
    labelled_per_class: int = 200        # labels for the supervised reference encoder

    def check(self) -> None:
        for name in ("n_tuples", "steps", "batch_size", "labelled_per_class"):
            _positive(name, getattr(self, name))
        if self.n_checkpoints < 2:
            raise ValueError(f"n_checkpoints: must be >= 2 (the start and the end), got {self.n_checkpoints}")
        if not self.lr or any(not (0 < lr < 10) for lr in self.lr):
            raise ValueError(f"lr: needs at least one value in (0, 10), got {self.lr}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay: must be >= 0, got {self.weight_decay}")
        if not self.temperature > 0:
            raise ValueError(f"temperature: must be > 0, got {self.temperature}")
        if self.batch_size > self.n_tuples:
            raise ValueError(f"batch_size: {self.batch_size} exceeds n_tuples = {self.n_tuples}")


def _check_classes(name: str, classes) -> None:
    if not classes or any(c < 2 for c in classes):
        raise ValueError(f"{name}: needs class counts >= 2, got {classes}")


def _check_loss(name: str, loss: str) -> None:
    if loss not in LOSSES:
        raise ValueError(f"{name}: unknown loss {loss!r}; known: {', '.join(LOSSES)}")


@dataclass(frozen=True)
class BoundStudy:
    """Figure 1: L_sup^mu against the bound at every checkpoint, across numbers of classes."""
    enabled: bool = True
    classes: tuple[int, ...] = (2, 5, 10, 50, 100)
    losses: tuple[str, ...] = ("logistic", "hinge")

    def check(self) -> None:
        _check_classes("classes", self.classes)
        for loss in self.losses:
            _check_loss("losses", loss)


@dataclass(frozen=True)
class NegativesStudy:
    """Figure 2: the number of negatives k, for a few numbers of classes."""
    enabled: bool = True
    classes: tuple[int, ...] = (10, 50)
    k: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    loss: str = "logistic"
    max_k: int = 256                     # negatives cost memory linearly; more is refused
    probe_n: int = 20                    # labelled examples per class for the probe accuracy in this figure

    def check(self) -> None:
        _check_classes("classes", self.classes)
        _check_loss("loss", self.loss)
        if not self.k or any(k < 1 for k in self.k):
            raise ValueError(f"k: needs values >= 1, got {self.k}")
        if max(self.k) > self.max_k:
            raise ValueError(f"k: {max(self.k)} negatives exceed max_k = {self.max_k}")
        _positive("probe_n", self.probe_n)


@dataclass(frozen=True)
class SampleStudy:
    """Figure 3: probe error against labelled examples per class, for several encoders."""
    enabled: bool = True
    classes: int = 10
    encoders: tuple[str, ...] = ("raw", "random", "logistic", "ntxent", "supervised")

    def check(self) -> None:
        _check_classes("classes", (self.classes,))
        for enc in self.encoders:
            if enc not in UNTRAINED + TRAINED or enc == "block":
                raise ValueError(f"encoders: unknown {enc!r}; known: {', '.join(UNTRAINED + TRAINED[:2] + TRAINED[3:])}")


@dataclass(frozen=True)
class BlockStudy:
    """Figure 4: the block contrastive loss for block sizes b (b = 1 is the standard loss)."""
    enabled: bool = True
    classes: int = 10
    block_sizes: tuple[int, ...] = (1, 2, 4, 8)
    loss: str = "logistic"

    def check(self) -> None:
        _check_classes("classes", (self.classes,))
        _check_loss("loss", self.loss)
        if not self.block_sizes or any(b < 1 for b in self.block_sizes):
            raise ValueError(f"block_sizes: needs values >= 1, got {self.block_sizes}")


@dataclass(frozen=True)
class GeneralisationStudy:
    """Theorem 4.1 with Gen_M on a Frobenius ball: a ball-constrained linear encoder and the oracle, against M."""
    enabled: bool = True
    classes: tuple[int, ...] = (2, 10)
    n_tuples: tuple[int, ...] = (10_000, 100_000, 1_000_000)   # M
    radii: tuple[float, ...] = (0.75, 2.0)   # R of ||W||_F <= R; each its own class and its own delta
    spread: float = 0.3                       # the discrete family's support spread
    dim: int = 16
    out_dim: int = 0                          # d; 0: C - 1, the span of the centred class means
    steps: int = 300
    batch_size: int = 256
    lr: float = 0.05
    n_checkpoints: int = 4

    def check(self) -> None:
        _check_classes("classes", self.classes)
        if not self.n_tuples or any(isinstance(M, bool) or not isinstance(M, int) or M < 1 for M in self.n_tuples):
            raise ValueError(f"n_tuples: needs integers >= 1, got {self.n_tuples}")
        if not self.radii or any(not r > 0 for r in self.radii):
            raise ValueError(f"radii: needs values > 0, got {self.radii}")
        if not self.spread >= 0:
            raise ValueError(f"spread: must be >= 0, got {self.spread}")
        for name in ("dim", "steps", "batch_size"):
            _positive(name, getattr(self, name))
        if self.out_dim < 0:
            raise ValueError(f"out_dim: must be >= 0 (0: C - 1), got {self.out_dim}")
        if not 0 < self.lr < 10:
            raise ValueError(f"lr: must be in (0, 10), got {self.lr}")
        if self.n_checkpoints < 2:
            raise ValueError(f"n_checkpoints: must be >= 2, got {self.n_checkpoints}")


@dataclass(frozen=True)
class Config:
    """One profile of the contrastive chapter: the shared data, encoder, training and evaluation specs, then one
    section per study (figure). A study's ``enabled`` switches it off without changing the other cells' ids."""
    seeds: int = 4
    data: DataSpec = field(default_factory=DataSpec)
    encoder: EncoderSpec = field(default_factory=EncoderSpec)
    train: TrainSpec = field(default_factory=TrainSpec)
    eval: EvalSpec = field(default_factory=EvalSpec)
    bound: BoundStudy = field(default_factory=BoundStudy)
    negatives: NegativesStudy = field(default_factory=NegativesStudy)
    sample_complexity: SampleStudy = field(default_factory=SampleStudy)
    block: BlockStudy = field(default_factory=BlockStudy)
    generalisation: GeneralisationStudy = field(default_factory=GeneralisationStudy)

    def check(self) -> None:
        _positive("seeds", self.seeds)
        # Every class count a study asks for must make a valid latent-class model (explicit laws fix C).
        for study in ("bound", "negatives"):
            for c in getattr(self, study).classes:
                _data_for(self.data, c, f"{study}.classes")
        for study in ("sample_complexity", "block"):
            _data_for(self.data, getattr(self, study).classes, f"{study}.classes")
        for c in self.generalisation.classes:
            _data_for(_gen_data(self.generalisation), c, "generalisation.classes")


def _gen_data(g: GeneralisationStudy) -> DataSpec:
    """The study's own data: the discrete family (finite support, so every population term is exact)."""
    return DataSpec(family="discrete", spread=g.spread, dim=g.dim, nonlinear=False)


def generalisation_cells(g: GeneralisationStudy, n_seeds: int, delta: float) -> list[GenCell]:
    """One trained and one oracle cell per (C, M, R) of the generalisation study."""
    seeds = tuple(range(n_seeds))
    return [GenCell(obj, M, float(R), g.out_dim or c - 1, seeds, _data_for(_gen_data(g), c, "generalisation"),
                    g.steps if obj == BALL else 0, g.batch_size, g.lr, g.n_checkpoints, delta)
            for c in g.classes for M in g.n_tuples for R in g.radii for obj in (BALL, ORACLE)]


def _data_for(data: DataSpec, n_classes: int, where: str) -> DataSpec:
    spec = replace(data, n_classes=n_classes)
    try:
        spec.check()
    except ValueError as err:
        raise ValueError(f"{where}: {n_classes} classes do not fit data: {err}") from None
    return spec


@dataclass(frozen=True)
class Cell:
    objective: str          # one of TRAINED + UNTRAINED
    loss: str               # the paper's ell used by logistic/hinge/block objectives and by the theory terms
    k: int                  # negatives per tuple
    block_size: int         # positives and negatives per block (block objective only)
    probe_n: tuple[int, ...]  # labelled examples per class for probes at the last checkpoint (empty: none)
    seeds: tuple[int, ...]
    data: DataSpec
    encoder: EncoderSpec
    train: TrainSpec
    eval: EvalSpec


def cells(cfg: Config) -> list[Cell]:
    """The cells the enabled studies ask for, one per distinct training run.

    Two studies that need the same training (the bound study's k = 1 cell is also the negatives study's
    k = 1 point) share one cell, probed at the union of their sizes, so nothing is trained twice and the cell id
    (the hash of the cell) does not depend on which study asked first.
    """
    seeds = tuple(range(cfg.seeds))

    curve = tuple(cfg.eval.probe_n)

    def cell(objective, n_classes, loss="logistic", k=1, block_size=1, probe_n=()):
        if objective == "block" and block_size == 1:
            objective = loss  # b = 1 is the standard loss: the same cell
        return Cell(objective, loss, k, block_size, probe_n, seeds, _data_for(cfg.data, n_classes, "data"),
                    cfg.encoder, cfg.train, cfg.eval)

    out: list[Cell] = []
    if cfg.bound.enabled:
        out += [cell(loss, c, loss) for c in cfg.bound.classes for loss in cfg.bound.losses]
    if cfg.negatives.enabled:
        out += [cell(cfg.negatives.loss, c, cfg.negatives.loss, k=k, probe_n=(cfg.negatives.probe_n,))
                for c in cfg.negatives.classes for k in cfg.negatives.k]
    if cfg.sample_complexity.enabled:
        out += [cell(enc, cfg.sample_complexity.classes, probe_n=curve) for enc in cfg.sample_complexity.encoders]
    if cfg.block.enabled:
        out += [cell("block", cfg.block.classes, cfg.block.loss, block_size=b, probe_n=curve)
                for b in cfg.block.block_sizes]
    # Studies that need the same training run share one cell, probing at the union of their sizes.
    merged: dict[Cell, set[int]] = {}
    for c in out:
        merged.setdefault(replace(c, probe_n=()), set()).update(c.probe_n)
    out = [replace(c, probe_n=tuple(sorted(ns))) for c, ns in merged.items()]
    if cfg.generalisation.enabled:   # its own cell type: the M tuples are support indices, the encoder a ball
        out += generalisation_cells(cfg.generalisation, cfg.seeds, cfg.eval.delta)
    return out


def cost(cell: Cell) -> float:
    """A rough relative cost, only used to start the slowest cells first."""
    if isinstance(cell, GenCell):
        return len(cell.seeds) * (cell.steps * cell.batch_size * 3 + cell.n_tuples)
    per_example = cell.k + 2 if cell.objective in ("logistic", "hinge") else 2 * cell.block_size + 1
    train = 0 if cell.objective in UNTRAINED else cell.train.steps * cell.train.batch_size * per_example
    n = cell.data.n_classes
    probes = 20 * n * n * max(cell.probe_n, default=0)
    return len(cell.seeds) * len(cell.train.lr) * (train + 50 * n * n + 100 * n * cell.eval.n_per_class + probes)


# The time and memory model of the resource guard, measured on one core (tests/experiments/test_runs.py holds
# it against measured peaks and times within the factors stated there): seconds per unit of ``cost``, per
# sampled training tuple element, and per cell; and the temporaries of a sample (noise and means drawn in
# float64, added, then copied to float32 for every model) as a multiple of its array.
SECONDS_PER_COST, SECONDS_PER_TUPLE, SECONDS_PER_CELL, TEMPORARIES = 2e-6, 6e-6, 0.1, 3.0
# bytes a sampled point costs while it is drawn: latent, noise and the nonlinear map's float64 temporaries,
# about three float64 copies of the point (synthetic_data.contrastive.sample_x), alive one sample at a time
SAMPLING = 3 * 8


def _rho_max(d: DataSpec) -> float:
    """The largest class probability (the negatives' pool is sized by it, ``EvalSet``)."""
    if d.class_law == "explicit" and d.class_probs:
        return max(d.class_probs) / sum(d.class_probs)
    if d.class_law == "zipf":
        return 1.0 / sum((i + 1) ** -d.zipf_s for i in range(d.n_classes))
    return 1.0 / d.n_classes


def footprint(cell: Cell):
    """The arrays a cell allocates, per config field that sizes them, and its time from ``cost``; for the
    resource guard. The evaluation holds float32 features and encodes at most EVAL_CHUNK points a model per
    call (experiments.latent_eval); the training tuples are held once per seed in float32 and drawn one seed at
    a time (experiments.contrastive.run). Measured against a paper-sized cell (C = 100, k = 64) in
    tests/experiments/test_contrastive_memory.py."""
    from experiments.engine.resources import Footprint
    from experiments.latent_eval import EVAL_CHUNK
    if isinstance(cell, GenCell):   # support indices, not samples: its own arrays, timed like a cell's tuples
        return Footprint(generalisation.footprint(cell).memory,
                         {"generalisation.n_tuples": SECONDS_PER_CELL + SECONDS_PER_TUPLE * 3 * cell.n_tuples
                          * len(cell.seeds)})
    d, tr, e, enc = cell.data, cell.train, cell.eval, cell.encoder
    S = len(cell.seeds)
    G, C = S * len(tr.lr), d.n_classes
    D = max(d.out_dim if d.nonlinear else d.dim, d.dim)
    width, out = enc.width + enc.out_dim, enc.out_dim
    per_tuple = cell.k + 2 if cell.objective != "block" else 2 * cell.block_size + 1
    trained = cell.objective not in UNTRAINED
    tuples = cell.objective not in ("supervised",) and trained
    n_neg = e.n_per_class
    if cell.k > 1:
        n_t = max(200, e.n_tuples // cell.k)
        n_neg = max(e.n_per_class, int(1.3 * 2 * n_t * cell.k * _rho_max(d)) + 50)
    # the largest encoder call of the evaluation: hidden and output activations, float32, and their float64 copy
    chunk = G * EVAL_CHUNK * (4 * width + 8 * out)
    mem = {
        # the seed-level float32 sample, and one seed's draw in flight (or, later, the Rademacher sum's float64
        # stack of one seed's (k + 2) M points, D + 1 columns, and its square)
        "train.n_tuples": tuples * (4 * S * tr.n_tuples * per_tuple * D
                                    + max(SAMPLING * tr.n_tuples * per_tuple * D,
                                          16 * tr.n_tuples * per_tuple * (D + 1))),
        "train.labelled_per_class": TEMPORARIES * (S * 8 + G * 4) * tr.labelled_per_class * C * D
        * (cell.objective == "supervised"),
        "train.batch_size": TEMPORARIES * 3 * 4 * G * tr.batch_size * per_tuple * width * trained,
        # the three Monte-Carlo pools as float32 inputs (drawn in float64) and float32 features of every model
        "eval.n_per_class": C * (2 * e.n_per_class + n_neg) * (4 * D + 4 * G * out) + SAMPLING * C * n_neg * D,
        "eval.n_mean": C * e.n_mean * 4 * D + SAMPLING * C * e.n_mean * D + chunk,
        "eval.probe_test_per_class": C * e.probe_test_per_class * (4 * D + 8 * G * out + SAMPLING * D),
        # the sampled class tuples' margins (per model), the training tuples' per-model losses, the block loss
        "eval.n_tuples": 8 * 4 * max(200, e.n_tuples // max(cell.k, 1)) * (cell.k + 2) * out
        + 8 * G * tr.n_tuples * trained
        + (cell.objective == "block") * (e.n_tuples // 4) * per_tuple * (SAMPLING * D + 4 * G * width),
        # the class law, the class means in every model's space, and the C x C distance tables
        "data.n_classes": TEMPORARIES * 8 * C * (D * (1 + d.n_subclusters + d.support_size) + 4 * G * C + 4),
        "eval.probe_n": TEMPORARIES * (8 * D + 4 * G * width) * C * max(cell.probe_n, default=0),
    }
    secs = {"train.steps": SECONDS_PER_CELL + SECONDS_PER_COST * cost(cell),
            "train.n_tuples": SECONDS_PER_TUPLE * tr.n_tuples * per_tuple * len(cell.seeds) * trained}
    return Footprint({k: float(v) for k, v in mem.items()}, secs)


def for_check(raw: dict) -> dict:
    """``sslt check``: every study on the one distribution of the assumption file (C fixed by it)."""
    data = raw.setdefault("data", {})
    if data.get("generator"):
        g = plugins.instantiate(data["generator"], data.get("generator_args", ""), PLUGIN_PROTOCOL)
        # the plug-in's own C and dimension: never the profile's (they name the data in bounds.csv)
        data["family"], data["n_classes"], data["dim"] = "plugin", int(g.n_classes), int(g.input_dim)
        data["nonlinear"] = False
    C = data.get("n_classes", DataSpec().n_classes)
    if isinstance(C, bool) or not isinstance(C, int):
        return raw  # the config's own validation names data.n_classes
    for study in ("bound", "negatives"):
        raw.setdefault(study, {})["classes"] = [C]
    for study in ("sample_complexity", "block"):
        raw.setdefault(study, {})["classes"] = C
    # the generalisation study needs the discrete family's exact support, not the assumption file's distribution
    raw.setdefault("generalisation", {})["enabled"] = False
    return raw


def check_spec(cfg: Config) -> DataSpec:
    return cfg.data

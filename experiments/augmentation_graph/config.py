"""The augmentation-graph chapter's config and cells.

A cell is one data set (a cluster model at one overlap, or the hypercube) and one objective; every encoder class
it names (linear, mlp, mlp_wd, lookup) is trained on the same pairs, all seeds of a class as one batched model,
so that checkpoints at a matched loss can be picked across classes inside the cell. Studies that need the same
data and objective share one cell (the union of their encoder classes).

Two studies put the theorems where they can speak: ``fullbatch`` adds to the hypercube cell the linear encoder
trained by exact full-batch gradient descent on the finite population (class ``linear_fullbatch``, the same
initialisation as ``linear``) until L − min_lin L < ``tol``, where Corollary 4.2(b) is below its trivial value
(it needs L − min_lin L < 1/(64k)); ``partition`` adds cluster cells with d >= 2C + 2 and strong within-class
overlap, where Theorem 3.7's ρ_{⌊d/2⌋} must cut inside a class instead of between classes.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from experiments.engine.config import positive as _positive
from synthetic_data.augmentation_graph import DataSpec

CLASSES = ("linear", "mlp", "mlp_wd", "lookup")
FULLBATCH = "linear_fullbatch"            # the linear encoder by exact full-batch GD (the fullbatch study only)
ALL_CLASSES = CLASSES + (FULLBATCH,)
OBJECTIVES = ("spectral", "ntxent")
_CLUSTER_FIELDS = ("n_classes", "n_natural", "n_aug", "dim", "overlap", "leak", "radius", "natural_spread",
                   "aug_spread")
_CUBE_FIELDS = ("cube_dim", "label_dim", "scales")


def _check_classes(name: str, classes) -> None:
    if not classes:
        raise ValueError(f"{name}: needs at least one encoder class")
    for c in classes:
        if c not in CLASSES:
            raise ValueError(f"{name}: unknown encoder class {c!r}; known: {', '.join(CLASSES)}")
    if len(set(classes)) != len(classes):
        raise ValueError(f"{name}: repeats a class ({classes})")


@dataclass(frozen=True)
class EncoderSpec:
    width: int = 32             # hidden width of the mlp
    out_dim: int = 4            # d on the cluster data
    lookup_scale: float = 0.1   # the lookup table's initial entries ~ N(0, lookup_scale^2)

    def check(self) -> None:
        _positive("width", self.width)
        _positive("out_dim", self.out_dim)
        if not self.lookup_scale > 0:
            raise ValueError(f"lookup_scale: must be > 0, got {self.lookup_scale}")


@dataclass(frozen=True)
class TrainSpec:
    steps: int = 600
    batch_size: int = 128
    lr_linear: float = 0.01
    lr_mlp: float = 0.01
    lr_lookup: float = 0.03
    weight_decay: float = 0.003   # the mlp_wd class only
    n_checkpoints: int = 31       # fine enough to pick checkpoints at a matched loss
    temperature: float = 0.5      # NT-Xent only

    def check(self) -> None:
        _positive("steps", self.steps)
        if self.batch_size < 2:
            raise ValueError(f"batch_size: must be >= 2 (off-diagonal pairs), got {self.batch_size}")
        for name in ("lr_linear", "lr_mlp", "lr_lookup"):
            if not 0 < getattr(self, name) < 10:
                raise ValueError(f"{name}: must be in (0, 10), got {getattr(self, name)}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay: must be >= 0, got {self.weight_decay}")
        if self.n_checkpoints < 2:
            raise ValueError(f"n_checkpoints: must be >= 2, got {self.n_checkpoints}")
        if self.n_checkpoints > self.steps + 1:
            raise ValueError(f"n_checkpoints: at most steps + 1 = {self.steps + 1}, got {self.n_checkpoints}")
        if not self.temperature > 0:
            raise ValueError(f"temperature: must be > 0, got {self.temperature}")


@dataclass(frozen=True)
class EvalSpec:
    probe_C: float = 100.0        # inverse L2 strength of the exact-law logistic probe (weights sum to N)
    ntxent_batches: int = 8       # fixed evaluation batches for the NT-Xent value
    match_tol: float = 0.005      # a checkpoint is matched when its loss <= target + match_tol * |target|

    def check(self) -> None:
        if not self.probe_C > 0:
            raise ValueError(f"probe_C: must be > 0, got {self.probe_C}")
        _positive("ntxent_batches", self.ntxent_batches)
        if not 0 <= self.match_tol < 1:
            raise ValueError(f"match_tol: must be in [0, 1), got {self.match_tol}")


@dataclass(frozen=True)
class OverlapStudy:
    """Figure 1: the overlap sweep on cluster data."""
    enabled: bool = True
    overlaps: tuple[float, ...] = (0.0, 0.05, 0.2, 0.5, 0.8)
    classes: tuple[str, ...] = ("linear", "lookup")

    def check(self) -> None:
        if not self.overlaps or any(not 0 <= o <= 1 for o in self.overlaps):
            raise ValueError(f"overlaps: needs values in [0, 1], got {self.overlaps}")
        if list(self.overlaps) != sorted(set(self.overlaps)):
            raise ValueError(f"overlaps: must be strictly increasing, got {self.overlaps}")
        _check_classes("classes", self.classes)


@dataclass(frozen=True)
class MatchedStudy:
    """Figures 2 and 3: every class at a matched loss, on cluster data at one overlap."""
    enabled: bool = True
    overlap: float = 0.0
    objectives: tuple[str, ...] = ("spectral", "ntxent")
    classes: tuple[str, ...] = ("linear", "mlp", "lookup")

    def check(self) -> None:
        if not 0 <= self.overlap <= 1:
            raise ValueError(f"overlap: must be in [0, 1], got {self.overlap}")
        if not self.objectives or any(o not in OBJECTIVES for o in self.objectives):
            raise ValueError(f"objectives: needs values among {OBJECTIVES}, got {self.objectives}")
        _check_classes("classes", self.classes)


@dataclass(frozen=True)
class CubeStudy:
    """Figure 4: the function class on the hypercube (Example 1 of Saunshi et al. 2022)."""
    enabled: bool = True
    out_dim: int = 5
    classes: tuple[str, ...] = ("linear", "mlp", "mlp_wd", "lookup")

    def check(self) -> None:
        _positive("out_dim", self.out_dim)
        _check_classes("classes", self.classes)


@dataclass(frozen=True)
class FullBatchStudy:
    """The linear encoder on the hypercube by exact gradient descent on the population spectral loss."""
    enabled: bool = True
    tol: float = 1e-4             # stop once every seed has L − min_lin L < tol
    lr: float = 0.1
    max_steps: int = 20000

    def check(self) -> None:
        if not 0 < self.tol < 1:
            raise ValueError(f"tol: must be in (0, 1), got {self.tol}")
        if not 0 < self.lr < 1:
            raise ValueError(f"lr: must be in (0, 1), got {self.lr}")
        _positive("max_steps", self.max_steps)


@dataclass(frozen=True)
class PartitionStudy:
    """Theorem 3.7's form where it is not vacuous by construction: d >= 2C + 2, strongly connected classes."""
    enabled: bool = True
    out_dim: int = 6
    overlaps: tuple[float, ...] = (0.6, 0.8)
    classes: tuple[str, ...] = ("linear",)

    def check(self) -> None:
        _positive("out_dim", self.out_dim)
        if not self.overlaps or any(not 0 <= o <= 1 for o in self.overlaps):
            raise ValueError(f"overlaps: needs values in [0, 1], got {self.overlaps}")
        if list(self.overlaps) != sorted(set(self.overlaps)):
            raise ValueError(f"overlaps: must be strictly increasing, got {self.overlaps}")
        _check_classes("classes", self.classes)


@dataclass(frozen=True)
class Config:
    """One profile of the augmentation-graph chapter: the cluster (or hypercube) data, encoder, training and
    evaluation specs, then the overlap, matched-loss and hypercube studies."""
    seeds: int = 3
    data: DataSpec = field(default_factory=DataSpec)
    encoder: EncoderSpec = field(default_factory=EncoderSpec)
    train: TrainSpec = field(default_factory=TrainSpec)
    eval: EvalSpec = field(default_factory=EvalSpec)
    overlap: OverlapStudy = field(default_factory=OverlapStudy)
    matched: MatchedStudy = field(default_factory=MatchedStudy)
    hypercube: CubeStudy = field(default_factory=CubeStudy)
    fullbatch: FullBatchStudy = field(default_factory=FullBatchStudy)
    partition: PartitionStudy = field(default_factory=PartitionStudy)

    def check(self) -> None:
        _positive("seeds", self.seeds)
        if self.data.family != "clusters":
            raise ValueError("data.family: the studies choose the family; the data section describes the clusters "
                             f"(and the hypercube's cube_dim, label_dim, scales): leave it 'clusters' (got "
                             f"{self.data.family!r})")
        overlaps = list(self.overlap.overlaps) + [self.matched.overlap]
        for o in overlaps:
            _data_for(self.data, "overlap", o)
        if self.partition.enabled:
            for o in self.partition.overlaps:
                _data_for(self.data, "partition", o)
            C, n = self.data.n_classes, self.data.n_classes * self.data.n_natural * self.data.n_aug
            if not max(2 * C + 2, self.encoder.out_dim + 1) <= self.partition.out_dim < n:
                raise ValueError(f"partition.out_dim: must be >= 2C + 2 = {2 * C + 2}, > encoder.out_dim = "
                                 f"{self.encoder.out_dim} (the overlap sweep's d) and < the {n} inputs, got "
                                 f"{self.partition.out_dim}")
        if self.data.n_classes * self.data.n_natural * self.data.n_aug <= self.encoder.out_dim:
            raise ValueError(f"encoder.out_dim: must be < the number of inputs "
                             f"{self.data.n_classes * self.data.n_natural * self.data.n_aug}")
        cube = _cube(self.data)
        n_cube = 2 ** cube.cube_dim * len(cube.scales)
        if self.hypercube.out_dim < cube.label_dim or self.hypercube.out_dim >= n_cube:
            raise ValueError(f"hypercube.out_dim: must be in [label_dim = {cube.label_dim}, {n_cube})")
        from_pairs = cube.label_dim + (cube.cube_dim - cube.label_dim) * (cube.cube_dim - cube.label_dim - 1) // 2
        if self.hypercube.out_dim > from_pairs:
            raise ValueError(f"hypercube.out_dim: the perfect representation has at most {from_pairs} features")


def _data_for(data: DataSpec, name: str, overlap: float) -> DataSpec:
    defaults = DataSpec()
    spec = replace(data, family="clusters", overlap=overlap, **{f: getattr(defaults, f) for f in _CUBE_FIELDS})
    try:
        spec.check()
    except ValueError as err:
        raise ValueError(f"{name}: overlap {overlap} does not fit data: {err}") from None
    return spec


def _cube(data: DataSpec) -> DataSpec:
    defaults = DataSpec()
    spec = replace(data, family="hypercube", **{f: getattr(defaults, f) for f in _CLUSTER_FIELDS})
    try:
        spec.check()
    except ValueError as err:
        raise ValueError(f"data: the hypercube does not fit: {err}") from None
    return spec


@dataclass(frozen=True)
class Cell:
    objective: str
    classes: tuple[str, ...]
    out_dim: int
    seeds: tuple[int, ...]
    data: DataSpec
    encoder: EncoderSpec
    train: TrainSpec
    eval: EvalSpec
    fullbatch: FullBatchStudy | None = None   # set on the hypercube cell when its class list has FULLBATCH


def cells(cfg: Config) -> list[Cell]:
    """One cell per (objective, data, d), training the union of the encoder classes the studies ask for.

    All encoder classes of a cell train on the same pairs, which is what makes a matched-loss comparison
    between them fair. With every study disabled, the base cluster data still gets one cell, so the exact theory
    runs.
    """
    seeds = tuple(range(cfg.seeds))
    enc = replace(cfg.encoder, out_dim=1)   # the cell's own out_dim field says d

    def cell(objective, classes, data, d):
        return Cell(objective, tuple(classes), d, seeds, data, enc, cfg.train, cfg.eval)

    out: list[Cell] = []
    if cfg.overlap.enabled:
        out += [cell("spectral", cfg.overlap.classes, _data_for(cfg.data, "overlap", o), cfg.encoder.out_dim)
                for o in cfg.overlap.overlaps]
    if cfg.matched.enabled:
        out += [cell(obj, cfg.matched.classes, _data_for(cfg.data, "matched", cfg.matched.overlap),
                     cfg.encoder.out_dim) for obj in cfg.matched.objectives]
    if cfg.partition.enabled:
        out += [cell("spectral", cfg.partition.classes, _data_for(cfg.data, "partition", o), cfg.partition.out_dim)
                for o in cfg.partition.overlaps]
    if cfg.hypercube.enabled:
        cube = cell("spectral", cfg.hypercube.classes, _cube(cfg.data), cfg.hypercube.out_dim)
        if cfg.fullbatch.enabled:
            cube = replace(cube, classes=cube.classes + (FULLBATCH,), fullbatch=cfg.fullbatch)
        out.append(cube)
    if not out:   # every study disabled: the exact theory of the base cluster data still runs
        out.append(cell("spectral", ("linear",), _data_for(cfg.data, "data", cfg.data.overlap), cfg.encoder.out_dim))
    merged: dict[Cell, set[str]] = {}
    for c in out:
        merged.setdefault(replace(c, classes=()), set()).update(c.classes)
    return [replace(c, classes=tuple(k for k in ALL_CLASSES if k in ks)) for c, ks in merged.items()]


def cost(cell: Cell) -> float:
    d = cell.data
    n = d.n_classes * d.n_natural * d.n_aug if d.family == "clusters" else 2 ** d.cube_dim * len(d.scales)
    train = cell.train.steps * cell.train.batch_size * (cell.encoder.width + cell.out_dim)
    evals = cell.train.n_checkpoints * n * n * cell.out_dim
    full = cell.fullbatch.max_steps * d.cube_dim ** 2 * cell.out_dim if cell.fullbatch else 0
    return float(len(cell.seeds) * (len(cell.classes) * (train + evals) + full) + n ** 3)

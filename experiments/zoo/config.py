"""The objective zoo: its config and its cells.

One cell is one objective (or one reference: raw inputs, a random encoder, a supervised encoder) trained on one
data variant of the latent-class model, all its seeds as one batched model. Every objective of a bench trains on
the same pairs (or inputs), with the same encoder, initialisation, minibatches and Adam, so the probes, the
collapse measures and Lemma 4.3 compare objectives and nothing else. The references are shared by the benches.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from experiments.latent_eval import EncoderSpec, EvalSpec
from experiments.engine.config import positive as _positive
from synthetic_data.contrastive import DataSpec
from synthetic_data.language import DataSpec as HMMSpec
from synthetic_data.zoo import GridSpec, SBMSpec
from theory.zoo import BENCHES, GRAPH_REFERENCES, REFERENCES

VARIANTS = ("class", "mixture", "nonlinear")
GRID_VARIANTS = ("grid", "grid_zipf")    # the pretext bench's data: grid images (uniform or Zipf class law)
GRAPH_VARIANTS = ("sbm", "sbm_sparse")  # the graph bench's data: the block model as given, or 4x sparser
SEQ_VARIANTS = ("hmm",)                  # the sequence bench's data: the language chapter's HMM of `hmm`
TRAINED = tuple(o for objs in BENCHES.values() for o in objs) + ("supervised",)


def modality_b(data: DataSpec) -> DataSpec:
    """CLIP's second modality: the same classes and class law, Gaussian classes through the nonlinear map."""
    return replace(data, family="gaussian", nonlinear=True)


def variant_data(data: DataSpec, variant: str) -> DataSpec:
    """The data of one variant: the class law with Gaussian classes, the sub-cluster mixture, or the Gaussian
    classes pushed through the fixed random nonlinear map (the class law, n_classes, dims of ``data`` kept)."""
    if variant == "class":
        return replace(data, family="gaussian", nonlinear=False)
    if variant == "mixture":
        return replace(data, family="mixture", nonlinear=False)
    if variant == "nonlinear":
        return replace(data, family="gaussian", nonlinear=True)
    raise ValueError(f"variants: unknown {variant!r}; known: {', '.join(VARIANTS)}")


def grid_data(grid: GridSpec, variant: str) -> GridSpec:
    """The pretext bench's data: ``grid`` as given ("grid"), or with a Zipf class law ("grid_zipf")."""
    if variant == "grid":
        return grid
    if variant == "grid_zipf":
        return replace(grid, class_law="zipf")
    raise ValueError(f"variants: unknown {variant!r}; known: {', '.join(GRID_VARIANTS)}")


def graph_data(sbm: SBMSpec, variant: str) -> SBMSpec:
    """The graph bench's data: ``sbm`` as given ("sbm"), or with p_in and p_out divided by 4 ("sbm_sparse": a
    quarter of the edges, the same ratio p_in / p_out, closer to the detectability threshold)."""
    if variant == "sbm":
        return sbm
    if variant == "sbm_sparse":
        return replace(sbm, p_in=sbm.p_in / 4, p_out=sbm.p_out / 4)
    raise ValueError(f"variants: unknown {variant!r}; known: {', '.join(GRAPH_VARIANTS)}")


@dataclass(frozen=True)
class TrainSpec:
    n_pairs: int = 3000                  # unlabelled positive pairs (x, x+) per seed; reconstruction uses the x
    steps: int = 300
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 0.0
    labelled_per_class: int = 100        # labels of the supervised reference encoder
    simclr_temperature: float = 0.5      # SimCLR's CIFAR value
    moco_temperature: float = 0.2        # MoCo v2
    moco_queue: int = 1024               # K negatives in the queue
    momentum: float = 0.99               # MoCo's m and BYOL's base tau (cosine schedule to 1)
    predictor_width: int = 64            # BYOL / SimSiam predictor (one hidden layer)
    barlow_lambda_dim: float = 4.0       # Barlow Twins: lambda = barlow_lambda_dim / d (4/d: rank C - 1 at d = 16,
    #                                      where Tsai et al. 2021's 1/d kept 7-8 of 9; docs/theory/zoo.md)
    barlow_lambda: float = 5e-3          # barlow_twins_paper: the paper's lambda (for its 8192-d projector)
    vicreg_sim: float = 25.0             # VICReg's invariance, variance and covariance weights; the covariance
    vicreg_std: float = 25.0             # weight 25 (the paper's 1) keeps the d = 16 outputs decorrelated;
    vicreg_cov: float = 25.0             # vicreg_paper keeps the paper's 25 / 25 / 1
    swav_prototypes: int = 20
    swav_temperature: float = 0.1
    sinkhorn_eps: float = 0.05
    decoder_width: int = 64              # reconstruction decoders (one hidden layer)
    dae_noise: float = 0.5               # std of the denoising AE's Gaussian corruption
    mask_frac: float = 0.5               # MAE: share of coordinates hidden
    vae_sigma2: float = 0.1              # the VAE decoder's fixed variance
    clip_temperature: float = 0.07       # CLIP's initial temperature (learned: log(1/T) is a parameter)

    def check(self) -> None:
        for name in ("n_pairs", "steps", "batch_size", "labelled_per_class", "moco_queue", "predictor_width",
                     "swav_prototypes", "decoder_width"):
            _positive(name, getattr(self, name))
        if not 0 < self.lr < 10:
            raise ValueError(f"lr: must be in (0, 10), got {self.lr}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay: must be >= 0, got {self.weight_decay}")
        for name in ("simclr_temperature", "moco_temperature", "swav_temperature", "sinkhorn_eps", "vae_sigma2",
                     "clip_temperature"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: must be > 0, got {getattr(self, name)}")
        if not 0 <= self.momentum <= 1:
            raise ValueError(f"momentum: must be in [0, 1], got {self.momentum}")
        for name in ("barlow_lambda", "barlow_lambda_dim", "vicreg_sim", "vicreg_std", "vicreg_cov", "dae_noise"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be >= 0, got {getattr(self, name)}")
        if not 0 < self.mask_frac < 1:
            raise ValueError(f"mask_frac: must be in (0, 1), got {self.mask_frac}")
        if self.batch_size < 2 or self.batch_size > self.n_pairs:
            raise ValueError(f"batch_size: must be in [2, n_pairs = {self.n_pairs}], got {self.batch_size}")


@dataclass(frozen=True)
class Bench:
    """One bench: the objectives it trains on every data variant, beside the references."""
    enabled: bool = True
    variants: tuple[str, ...] = VARIANTS
    objectives: tuple[str, ...] = ()
    references: tuple[str, ...] = REFERENCES

    def check_for(self, bench: str, known: tuple[str, ...] = VARIANTS, refs: tuple[str, ...] = REFERENCES) -> None:
        if not self.variants:
            raise ValueError("variants: needs at least one data variant")
        for v in self.variants:
            if v not in known:
                raise ValueError(f"variants: unknown {v!r}; known: {', '.join(known)}")
        for o in self.objectives:
            if o not in BENCHES[bench]:
                raise ValueError(f"objectives: unknown {o!r} for bench {bench}; known: {', '.join(BENCHES[bench])}")
        for r in self.references:
            if r not in refs:
                raise ValueError(f"references: unknown {r!r}; known: {', '.join(refs)}")
        if len(set(self.objectives)) != len(self.objectives) or len(set(self.variants)) != len(self.variants):
            raise ValueError("objectives: each objective and variant at most once")


@dataclass(frozen=True)
class TwoViews(Bench):
    objectives: tuple[str, ...] = BENCHES["two_views"]

    def check(self) -> None:
        self.check_for("two_views")


@dataclass(frozen=True)
class Reconstruction(Bench):
    objectives: tuple[str, ...] = BENCHES["reconstruction"]

    def check(self) -> None:
        self.check_for("reconstruction")


@dataclass(frozen=True)
class Multimodal(Bench):
    """CLIP: modality A is the variant's data; modality B is the nonlinear map of a second latent-class model with
    the same classes and class law (its own means and map), so a pair shares only its class."""
    variants: tuple[str, ...] = ("class",)
    objectives: tuple[str, ...] = BENCHES["multimodal"]

    def check(self) -> None:
        self.check_for("multimodal")


@dataclass(frozen=True)
class Pretext(Bench):
    """Pretext classification on grid images: which of the 4 rotations (Gidaris et al. 2018), which of the 24
    quadrant permutations (a 2 x 2 jigsaw, after Noroozi & Favaro 2016)."""
    variants: tuple[str, ...] = ("grid",)
    objectives: tuple[str, ...] = BENCHES["pretext"]

    def check(self) -> None:
        self.check_for("pretext", GRID_VARIANTS)


@dataclass(frozen=True)
class Graphs(Bench):
    """Deep Graph Infomax on the stochastic block model of ``sbm`` (one graph per seed, full-batch training of a
    one-layer GCN): ``steps`` and ``lr`` replace train.steps and train.lr for this bench's cells (a full-batch
    step sees every node). References: raw node features, the random GCN, a supervised GCN (cross-entropy on
    train.labelled_per_class labelled nodes per block, at most what the probe pool holds) and "spectral", the top-K
    eigenvectors of the expected normalised adjacency."""
    variants: tuple[str, ...] = ("sbm",)
    objectives: tuple[str, ...] = BENCHES["graphs"]
    references: tuple[str, ...] = REFERENCES + GRAPH_REFERENCES
    steps: int = 300
    lr: float = 0.01
    test_per_class: int = 100            # test nodes per block (replaces eval.probe_test_per_class here)

    def check(self) -> None:
        self.check_for("graphs", GRAPH_VARIANTS, REFERENCES + GRAPH_REFERENCES)
        _positive("steps", self.steps)
        _positive("test_per_class", self.test_per_class)
        if not 0 < self.lr < 10:
            raise ValueError(f"lr: must be in (0, 10), got {self.lr}")


@dataclass(frozen=True)
class Sequences(Bench):
    """The language chapter's HMM (``hmm``; windows of hmm.context_len words): an XLNet-style permutation LM, ELECTRA
    replaced-token detection with a small generator, and CPC with a bilinear critic over ``future_steps`` words
    after the window. Every objective's encoder reads one input layout, [one-hot words x visible, visible, query
    position], so all start from the same encoder; the representation is the encoder on the full window (all
    visible, no query). The probe's labels: the language chapter's deterministic natural task, y = 1[v . p*_s + b
    > 0] (``synthetic_data.language_tasks``). ``steps``, ``lr`` and ``n_seqs`` replace train.steps, train.lr and
    train.n_pairs for this bench."""
    enabled: bool = True
    variants: tuple[str, ...] = SEQ_VARIANTS
    objectives: tuple[str, ...] = BENCHES["sequences"]
    n_seqs: int = 4000                   # training windows per seed
    steps: int = 600
    lr: float = 0.003
    future_steps: int = 2                # CPC: predict the K words after the window
    mask_frac: float = 0.3               # ELECTRA: share of positions masked (L is short: 0.15 of 6 is ~1)
    electra_weight: float = 50.0         # lambda, the discriminator loss weight (the paper's 50)
    generator_width: int = 16            # ELECTRA's small generator (one hidden layer)
    test_per_class: int = 200            # probe test windows per label
    n_excess: int = 2000                 # test windows for the excess losses and the CPC bounds

    def check(self) -> None:
        self.check_for("sequences", SEQ_VARIANTS)
        for name in ("n_seqs", "steps", "future_steps", "generator_width", "test_per_class", "n_excess"):
            _positive(name, getattr(self, name))
        if not 0 < self.lr < 10:
            raise ValueError(f"lr: must be in (0, 10), got {self.lr}")
        if not 0 < self.mask_frac < 1:
            raise ValueError(f"mask_frac: must be in (0, 1), got {self.mask_frac}")
        if self.electra_weight < 0:
            raise ValueError(f"electra_weight: must be >= 0, got {self.electra_weight}")


@dataclass(frozen=True)
class Config:
    """One profile of the zoo: the latent-class data, encoder, training and evaluation specs shared by every
    bench, the grid, block-model and HMM specs of the benches that need other data, then one section per bench."""
    seeds: int = 3
    data: DataSpec = field(default_factory=DataSpec)
    encoder: EncoderSpec = field(default_factory=EncoderSpec)
    train: TrainSpec = field(default_factory=TrainSpec)
    eval: EvalSpec = field(default_factory=EvalSpec)
    two_views: TwoViews = field(default_factory=TwoViews)
    reconstruction: Reconstruction = field(default_factory=Reconstruction)
    multimodal: Multimodal = field(default_factory=Multimodal)
    grid: GridSpec = field(default_factory=GridSpec)
    pretext: Pretext = field(default_factory=Pretext)
    sbm: SBMSpec = field(default_factory=SBMSpec)
    graphs: Graphs = field(default_factory=Graphs)
    hmm: HMMSpec = field(default_factory=HMMSpec)
    sequences: Sequences = field(default_factory=Sequences)

    def check(self) -> None:
        _positive("seeds", self.seeds)
        for v in VARIANTS:
            try:
                variant_data(self.data, v).check()
            except ValueError as err:
                raise ValueError(f"data: variant {v} is not a valid model: {err}") from None
        if not (self.two_views.enabled or self.reconstruction.enabled or self.multimodal.enabled
                or self.pretext.enabled or self.graphs.enabled or self.sequences.enabled):
            raise ValueError("two_views.enabled: at least one bench must be enabled")
        if self.sequences.enabled:
            self.hmm.check()
            if self.sequences.n_seqs < self.train.batch_size:
                raise ValueError(f"sequences.n_seqs: must be >= train.batch_size = {self.train.batch_size}, got "
                                 f"{self.sequences.n_seqs}")
        if self.graphs.enabled:
            for v in self.graphs.variants:
                graph_data(self.sbm, v).check()
            if not graph_probe_n(self.sbm, self.eval, self.graphs.test_per_class):
                raise ValueError(f"sbm.nodes_per_block: must leave graphs.test_per_class = "
                                 f"{self.graphs.test_per_class} test nodes per block and at least "
                                 f"min(eval.probe_n) = {min(self.eval.probe_n, default=0)} probe nodes, got "
                                 f"{self.sbm.nodes_per_block}")


@dataclass(frozen=True)
class Cell:
    objective: str            # a name of theory.zoo.BENCHES, or "raw" / "random" / "supervised"
    variant: str              # one of VARIANTS
    probe_n: tuple[int, ...]  # labelled examples per class of the probe curve
    seeds: tuple[int, ...]
    data: DataSpec | GridSpec | SBMSpec | HMMSpec  # the variant's data spec
    encoder: EncoderSpec
    train: TrainSpec
    eval: EvalSpec
    sequences: Sequences | None = None   # the sequence bench's settings (its cells only)


def graph_probe_n(sbm: SBMSpec, ev: EvalSpec, test_per_class: int) -> tuple[int, ...]:
    """The probe sizes the graph bench can afford: a block keeps test_per_class test nodes, the rest is the
    probe's labelled pool."""
    return tuple(n for n in ev.probe_n if n <= sbm.nodes_per_block - test_per_class)


def cells(cfg: Config) -> list[Cell]:
    """One cell per (objective or reference, data variant) of every enabled bench.

    The references (raw inputs, random and supervised encoders) are shared by the benches that use the same
    variant, so each is one cell; the graph and sequence benches carry their own training lengths.
    """
    seeds = tuple(range(cfg.seeds))
    out: list[Cell] = []
    for bench in (cfg.two_views, cfg.reconstruction, cfg.multimodal, cfg.pretext):
        if not bench.enabled:
            continue
        for v in bench.variants:
            data = grid_data(cfg.grid, v) if v in GRID_VARIANTS else variant_data(cfg.data, v)
            for obj in tuple(bench.references) + tuple(bench.objectives):
                c = Cell(obj, v, tuple(cfg.eval.probe_n), seeds, data, cfg.encoder, cfg.train, cfg.eval)
                if c not in out:  # the references are shared by the benches: one cell each
                    out.append(c)
    if cfg.graphs.enabled:
        g = cfg.graphs
        train = replace(cfg.train, steps=g.steps, lr=g.lr)
        ev = replace(cfg.eval, probe_test_per_class=g.test_per_class)
        for v in g.variants:
            for obj in tuple(g.references) + tuple(g.objectives):
                out.append(Cell(obj, v, graph_probe_n(cfg.sbm, cfg.eval, g.test_per_class), seeds,
                                graph_data(cfg.sbm, v), cfg.encoder, train, ev))
    if cfg.sequences.enabled:
        q = cfg.sequences
        train = replace(cfg.train, steps=q.steps, lr=q.lr, n_pairs=q.n_seqs)
        for v in q.variants:
            for obj in tuple(q.references) + tuple(q.objectives):
                out.append(Cell(obj, v, tuple(cfg.eval.probe_n), seeds, cfg.hmm, cfg.encoder, train, cfg.eval, q))
    return out


def cost(cell: Cell) -> float:
    """A rough relative cost, only used to start the slowest cells first."""
    per_step = {"raw": 0, "random": 0, "moco_v2": 4, "byol": 5, "byol_nopred": 4, "simsiam": 3, "swav": 3}
    train = cell.train.steps * cell.train.batch_size * per_step.get(cell.objective, 2)
    if isinstance(cell.data, SBMSpec):   # full batch: every step multiplies the (N, N) propagation matrix
        train = cell.train.steps * cell.data.n_nodes ** 2 // 50 * (cell.objective not in ("raw", "spectral"))
    n = getattr(cell.data, "n_classes", 2)
    probes = 20 * n * n * max(cell.probe_n, default=0)
    return len(cell.seeds) * (train + 50 * n * n + 100 * n * cell.eval.n_per_class + probes)

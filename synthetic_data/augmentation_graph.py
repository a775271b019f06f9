"""Finite input spaces with explicit augmentation kernels, so the augmentation graph is a matrix we can write down.

A model is a finite set of natural points x̄ (law ``p_natural``, label ``y_natural``) and a finite set of N
augmented inputs x in R^D (``X``), with an explicit kernel A(x | x̄) (``A``, shape (M, N), rows summing to 1).
The augmentation graph (HaoChen et al. 2021) is then exact:

    w(x, x') = Σ_x̄ p(x̄) A(x|x̄) A(x'|x̄)       (``W``, symmetric, entries summing to 1)
    w(x)     = Σ_x' w(x, x')                     (``w``, the marginal of one augmentation)

and so is the downstream law P(x, y) = Σ_x̄ p(x̄) A(x|x̄) 1{y(x̄) = y} (``joint``).

Families (``DataSpec.family``):

* ``clusters``: ``n_classes`` classes, ``n_natural`` natural points per class, ``n_aug`` augmented inputs per
  natural point (disjoint sets, so N = C · n_natural · n_aug). The kernel spreads the mass of x̄ as
  (1 − overlap − leak) uniformly over its own augmentations, ``overlap`` uniformly over the augmentations of
  the other natural points of its class, and ``leak`` uniformly over the augmentations of other classes.
  ``overlap`` is the knob: 0 leaves each natural point its own component (disconnected within a class when
  leak = 0), larger values connect the class. ``leak`` > 0 makes the labels of augmentations ambiguous
  (alpha = leak exactly). Coordinates: class means at distance ``radius`` in random directions, natural points
  ``natural_spread`` · N(0, I/D) around them, augmentations ``aug_spread`` · N(0, I/D) around their natural point.
* ``hypercube``: Example 1 of Saunshi et al. (2022): natural points are all of {±1}^D (D = ``cube_dim``,
  uniform), the label is linear in the first k = ``label_dim`` coordinates (1{Σ_{i<k} x̄_i > 0}, k odd so the
  classes are balanced), and an augmentation multiplies the last D − k coordinates by one scale τ drawn
  uniformly from the finite set ``scales`` (our discretisation of τ ~ U(0, 1]; one τ per augmentation).
  Augmentations are disjoint: sign(x) recovers x̄, so the graph has 2^D components.

Everything is float64; nothing random is global: ``build_model`` takes an explicit ``numpy.random.Generator``.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, fields

import numpy as np

from synthetic_data.checks import check_int as _check_int
from synthetic_data.checks import check_real as _check_real

FAMILIES = ("clusters", "hypercube")
MAX_INPUTS = 4096          # the graph is a dense N x N matrix


@dataclass(frozen=True)
class DataSpec:
    family: str = "clusters"
    n_classes: int = 2
    n_natural: int = 3          # natural points per class (clusters)
    n_aug: int = 2              # augmented inputs per natural point (clusters)
    dim: int = 6                # input dimension (clusters)
    overlap: float = 0.5        # mass an augmentation puts on the class's other natural points (clusters)
    leak: float = 0.05          # mass an augmentation puts on other classes (clusters); alpha = leak
    radius: float = 2.0
    natural_spread: float = 1.0
    aug_spread: float = 0.3
    cube_dim: int = 6           # D (hypercube)
    label_dim: int = 3          # k, odd (hypercube)
    scales: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)   # the finite set of tau (hypercube)

    def __post_init__(self) -> None:
        if isinstance(self.scales, list):
            object.__setattr__(self, "scales", tuple(self.scales))

    def check(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"family: must be one of {FAMILIES} (got {self.family!r})")
        _check_int(self.n_classes, "n_classes", 2)
        _check_int(self.n_natural, "n_natural", 1)
        _check_int(self.n_aug, "n_aug", 1)
        _check_int(self.dim, "dim", 1)
        for name in ("overlap", "leak", "radius", "natural_spread", "aug_spread"):
            _check_real(getattr(self, name), name, 0.0)
        if self.overlap + self.leak > 1:
            raise ValueError(f"overlap: overlap + leak must be <= 1 (got {self.overlap} + {self.leak})")
        if self.n_natural == 1 and self.overlap > 0:
            raise ValueError("overlap: needs n_natural >= 2 (a class with one natural point has nothing to overlap)")
        if self.family == "clusters" and self.n_classes * self.n_natural * self.n_aug > MAX_INPUTS:
            raise ValueError(f"n_aug: n_classes * n_natural * n_aug must be <= {MAX_INPUTS}")
        _check_int(self.cube_dim, "cube_dim", 2)
        _check_int(self.label_dim, "label_dim", 1)
        if self.label_dim % 2 == 0:
            raise ValueError(f"label_dim: must be odd so that the majority label is balanced (got {self.label_dim})")
        if self.label_dim >= self.cube_dim:
            raise ValueError(f"label_dim: must be < cube_dim = {self.cube_dim} (got {self.label_dim})")
        if not self.scales or any(not (0 < s <= 1) for s in self.scales):
            raise ValueError(f"scales: needs values in (0, 1] (got {self.scales})")
        if len(set(self.scales)) != len(self.scales):
            raise ValueError(f"scales: must be distinct (got {self.scales})")
        if self.family == "hypercube" and 2 ** self.cube_dim * len(self.scales) > MAX_INPUTS:
            raise ValueError(f"cube_dim: 2^cube_dim * len(scales) must be <= {MAX_INPUTS}")

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["scales"] = list(out["scales"])
        return out


class AugmentationModel:
    """A finite augmentation model (see the module docstring). Attributes, all float64 / int64:

    X (N, D) inputs; A (M, N) kernel; p_natural (M,); y_natural (M,); natural_of (N,) the natural point whose
    own augmentation x is; W (N, N); w (N,); joint (N, C) = P(x, y); n_classes; family; spec.
    """

    def __init__(self, spec: DataSpec, X, A, p_natural, y_natural, natural_of):
        self.spec, self.family, self.n_classes = spec, spec.family, spec.n_classes
        self.X = np.asarray(X, dtype=np.float64)
        self.A = np.asarray(A, dtype=np.float64)
        self.p_natural = np.asarray(p_natural, dtype=np.float64)
        self.y_natural = np.asarray(y_natural, dtype=np.int64)
        self.natural_of = np.asarray(natural_of, dtype=np.int64)
        pa = self.p_natural[:, None] * self.A
        self.W = self.A.T @ pa
        self.W = 0.5 * (self.W + self.W.T)       # exactly symmetric
        self.w = self.W.sum(1)
        onehot = np.eye(self.n_classes)[self.y_natural]
        self.joint = pa.T @ onehot               # (N, C)

    @property
    def n_inputs(self) -> int:
        return self.X.shape[0]

    @property
    def labels(self) -> np.ndarray:
        """The Bayes label of each input, argmax_y P(x, y) (ties to the smaller class)."""
        return np.argmax(self.joint, axis=1)

    def sample_pairs(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """n positive pairs (x, x+) drawn i.i.d. from w(x, x') (the law of x̄ ~ p, x, x+ ~ A(.|x̄) independently);
        returns input indices a, b, each (n,) int64."""
        _check_int(n, "n", 0)
        N = self.n_inputs
        cdf = np.cumsum(self.W.ravel())
        cdf /= cdf[-1]
        flat = np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), N * N - 1)
        return (flat // N).astype(np.int64), (flat % N).astype(np.int64)


def _clusters(spec: DataSpec, rng: np.random.Generator) -> AugmentationModel:
    C, m, a, D = spec.n_classes, spec.n_natural, spec.n_aug, spec.dim
    dirs = rng.standard_normal((C, D))
    dirs /= np.maximum(np.linalg.norm(dirs, axis=1, keepdims=True), 1e-12)
    means = spec.radius * dirs
    natural = means[:, None, :] + spec.natural_spread * rng.standard_normal((C, m, D)) / np.sqrt(D)
    aug = natural[:, :, None, :] + spec.aug_spread * rng.standard_normal((C, m, a, D)) / np.sqrt(D)
    X = aug.reshape(-1, D)
    M, N = C * m, C * m * a
    y_nat = np.repeat(np.arange(C), m)
    natural_of = np.repeat(np.arange(M), a)
    cls_of = y_nat[natural_of]
    A = np.zeros((M, N))
    for j in range(M):
        own = natural_of == j
        same = (cls_of == y_nat[j]) & ~own
        other = cls_of != y_nat[j]
        A[j, own] = (1.0 - spec.overlap - spec.leak) / own.sum()
        if same.any():
            A[j, same] += spec.overlap / same.sum()
        A[j, other] += spec.leak / other.sum()
    return AugmentationModel(spec, X, A, np.full(M, 1.0 / M), y_nat, natural_of)


def hypercube_points(D: int) -> np.ndarray:
    """All of {±1}^D, (2^D, D) float64, in lexicographic order."""
    return np.array(list(itertools.product((-1.0, 1.0), repeat=D)))


def _hypercube(spec: DataSpec) -> AugmentationModel:
    D, k, S = spec.cube_dim, spec.label_dim, len(spec.scales)
    nat = hypercube_points(D)
    M = nat.shape[0]
    y = (nat[:, :k].sum(1) > 0).astype(np.int64)
    X = np.concatenate([np.concatenate([nat[:, :k], s * nat[:, k:]], axis=1) for s in spec.scales])  # (S*M, D)
    natural_of = np.tile(np.arange(M), S)
    A = np.zeros((M, S * M))
    A[natural_of, np.arange(S * M)] = 1.0 / S
    return AugmentationModel(spec, X, A, np.full(M, 1.0 / M), y, natural_of)


def build_model(spec: DataSpec, rng: np.random.Generator) -> AugmentationModel:
    """The finite augmentation model of ``spec``; ``rng`` fixes the cluster coordinates (the hypercube has none)."""
    spec.check()
    return _clusters(spec, rng) if spec.family == "clusters" else _hypercube(spec)


def components(W: np.ndarray, tol: float = 0.0) -> np.ndarray:
    """Connected-component label of each node of the graph with edges where W > tol, (N,) int64."""
    N = W.shape[0]
    label = -np.ones(N, dtype=np.int64)
    c = 0
    for s in range(N):
        if label[s] >= 0:
            continue
        stack = [s]
        label[s] = c
        while stack:
            u = stack.pop()
            for v in np.nonzero(W[u] > tol)[0]:
                if label[v] < 0:
                    label[v] = c
                    stack.append(v)
        c += 1
    return label


def perfect_features(spec: DataSpec, d: int) -> np.ndarray:
    """Saunshi et al.'s perfect representation on the hypercube, as a function of the natural point: (2^D, d).

    The first k coordinates x̄_1..x̄_k, then d − k products x̄_i x̄_j of pairs of the last D − k coordinates (in a
    fixed order). Under the uniform law these d features are orthonormal, so (as f(x) = g(x̄(x))) the spectral
    loss is −d, the global minimum whenever 2^D >= d; the label is a linear function of the first k.
    """
    D, k = spec.cube_dim, spec.label_dim
    nat = hypercube_points(D)
    pairs = list(itertools.combinations(range(k, D), 2))
    if d < k or d - k > len(pairs):
        raise ValueError(f"d: the perfect representation needs {k} <= d <= {k + len(pairs)} (got {d})")
    extra = [nat[:, i] * nat[:, j] for i, j in pairs[: d - k]]
    return np.column_stack([nat[:, :k]] + extra) if extra else nat[:, :k].copy()

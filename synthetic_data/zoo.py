"""Grid images with latent classes, for the zoo's pretext-classification bench (rotation, jigsaw).

Classes c ~ rho (uniform or Zipf); class c has a fixed template T_c, a side x side image: white noise smoothed by
a Gaussian blur of width ``smooth`` pixels (periodic, by FFT) and standardised to mean 0 and unit pixel variance.
An image of class c is x = a shift_{u,v}(T_c) + noise * N(0, I): the template circularly translated by (u, v), each
uniform in [-max_shift, max_shift], with a random contrast a ~ U(1 - contrast, 1 + contrast) (two nuisances the
label does not explain; the translation makes the class a nonlinear function of the pixels), flattened row-major
to side^2 pixels. The templates are random, so no class
is invariant under a rotation or a shuffle of its quadrants (up to probability 0): the pretext labels (which
rotation, which permutation) are recoverable only by recognising the class's template.

Ground truth: rho, tau = sum rho^2, the templates, and the pixel permutations of every pretext transformation
(``rotation_maps``, ``jigsaw_maps``), so x o map[r] is exactly the transformed image.
Every sampler takes an explicit ``numpy.random.Generator``.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, fields

import numpy as np

from synthetic_data.checks import check_int as _check_int
from synthetic_data.checks import check_real as _check_real

CLASS_LAWS = ("uniform", "zipf")


@dataclass(frozen=True)
class GridSpec:
    n_classes: int = 10
    class_law: str = "uniform"
    zipf_s: float = 1.0
    side: int = 8              # images are side x side pixels (even: the jigsaw cuts it into four quadrants)
    smooth: float = 1.0        # Gaussian blur width of the templates, in pixels
    noise: float = 0.7         # pixel noise std (templates have unit pixel variance)
    contrast: float = 0.3      # a ~ U(1 - contrast, 1 + contrast)
    max_shift: int = 2         # a circular translation by (u, v), each uniform in [-max_shift, max_shift]

    def check(self) -> None:
        _check_int(self.n_classes, "n_classes", 2)
        if self.class_law not in CLASS_LAWS:
            raise ValueError(f"class_law: must be one of {CLASS_LAWS} (got {self.class_law!r})")
        _check_real(self.zipf_s, "zipf_s", 0.0)
        _check_int(self.side, "side", 2)
        if self.side % 2:
            raise ValueError(f"side: must be even (the jigsaw cuts the image into four quadrants), got {self.side}")
        _check_real(self.smooth, "smooth", 0.0)
        _check_real(self.noise, "noise", 0.0)
        _check_real(self.contrast, "contrast", 0.0)
        if self.contrast >= 1:
            raise ValueError(f"contrast: must be < 1 (a > 0), got {self.contrast}")
        _check_int(self.max_shift, "max_shift", 0)
        if 2 * self.max_shift >= self.side:
            raise ValueError(f"max_shift: 2 * max_shift must be < side = {self.side}, got {self.max_shift}")

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def rotation_maps(side: int) -> np.ndarray:
    """(4, side^2) pixel indices: x[..., maps[r]] is x rotated by r * 90 degrees counter-clockwise (np.rot90)."""
    idx = np.arange(side * side).reshape(side, side)
    return np.stack([np.rot90(idx, r).reshape(-1) for r in range(4)])


def jigsaw_maps(side: int) -> np.ndarray:
    """(24, side^2) pixel indices: x[..., maps[p]] puts quadrant perm[q] of x in position q, for the 24
    permutations of the four quadrants (top-left, top-right, bottom-left, bottom-right) in lexicographic order;
    permutation 0 is the identity."""
    h = side // 2
    idx = np.arange(side * side).reshape(side, side)
    quads = [idx[:h, :h], idx[:h, h:], idx[h:, :h], idx[h:, h:]]
    out = []
    for perm in itertools.permutations(range(4)):
        q = [quads[i] for i in perm]
        out.append(np.block([[q[0], q[1]], [q[2], q[3]]]).reshape(-1))
    return np.stack(out)


def _blur(noise: np.ndarray, width: float) -> np.ndarray:
    """Periodic Gaussian blur of (..., s, s) images by FFT; width 0 leaves them as they are."""
    if width == 0:
        return noise
    s = noise.shape[-1]
    f = np.fft.fftfreq(s)
    kernel = np.exp(-2 * (np.pi * width) ** 2 * (f[:, None] ** 2 + f[None, :] ** 2))
    return np.real(np.fft.ifft2(np.fft.fft2(noise) * kernel))


class GridModel:
    """A sampled grid-image latent-class model; build it with ``build_grid_model``.

    Attributes: spec, rho (C,), tau, n_classes, input_dim = side^2, templates (C, side^2) float64.
    """

    def __init__(self, spec: GridSpec, rng: np.random.Generator):
        spec.check()
        self.spec = spec
        C, s = spec.n_classes, spec.side
        rho = np.full(C, 1.0 / C) if spec.class_law == "uniform" else (np.arange(C) + 1.0) ** (-float(spec.zipf_s))
        self.rho = rho / rho.sum()
        self.tau = float(np.sum(self.rho ** 2))
        self.n_classes, self.input_dim = C, s * s
        t = _blur(rng.standard_normal((C, s, s)), spec.smooth).reshape(C, -1)
        t = t - t.mean(1, keepdims=True)
        self.templates = t / t.std(1, keepdims=True)

    def sample_classes(self, n: int, rng: np.random.Generator) -> np.ndarray:
        _check_int(n, "n", 0)
        return rng.choice(self.n_classes, size=n, p=self.rho).astype(np.int64)

    def sample_x(self, classes, rng: np.random.Generator) -> np.ndarray:
        """x = a T_c + noise N(0, I) for each entry of ``classes``; (n, side^2) float32."""
        c = np.asarray(classes).astype(np.int64).reshape(-1)
        if c.size and (c.min() < 0 or c.max() >= self.n_classes):
            raise ValueError(f"classes: must lie in [0, {self.n_classes})")
        s, m = self.spec.side, self.spec.max_shift
        a = rng.uniform(1 - self.spec.contrast, 1 + self.spec.contrast, size=(c.size, 1))
        uv = rng.integers(-m, m + 1, size=(c.size, 2))
        rows = (np.arange(s)[None, :, None] - uv[:, 0, None, None]) % s          # (n, s, 1)
        cols = (np.arange(s)[None, None, :] - uv[:, 1, None, None]) % s          # (n, 1, s)
        img = self.templates.reshape(-1, s, s)[c[:, None, None], rows, cols]     # shift_{u,v}(T_c)[i, j]
        x = a * img.reshape(c.size, -1) + self.spec.noise * rng.standard_normal((c.size, self.input_dim))
        return x.astype(np.float32)

    def sample_labelled(self, n_per_class: int, rng: np.random.Generator, classes=None):
        """Balanced labelled sample, classes in order: X (n_per_class * C', side^2), y."""
        _check_int(n_per_class, "n_per_class", 0)
        cls = np.arange(self.n_classes) if classes is None else np.asarray(classes).astype(np.int64).reshape(-1)
        y = np.repeat(cls, n_per_class).astype(np.int64)
        return self.sample_x(y, rng), y


def build_grid_model(spec: GridSpec, rng: np.random.Generator) -> GridModel:
    """rng fixes the templates."""
    return GridModel(spec, rng)


# ============================================================================================= the graph bench
# A stochastic block model whose blocks are the latent classes (the zoo's graph bench, Deep Graph Infomax).
#
# K = n_classes blocks of exactly ``nodes_per_block`` nodes each (node i of block c = i // nodes_per_block), so the
# block sizes, and with them every exact spectral quantity of ``theory.zoo``, are fixed by the spec. An undirected
# simple graph: A_ij = A_ji ~ Bernoulli(p_in) if i, j share a block, Bernoulli(p_out) otherwise, for i < j; no
# self-loops (A_ii = 0). Node features x_i = mu_{c_i} + noise * N(0, I_dim), the class means mu_c ~ N(0, spread^2
# I_dim) drawn once per model (``build_sbm_model``'s rng), so the features alone are a Gaussian latent-class model
# and the graph adds the block structure. Labels = blocks.


@dataclass(frozen=True)
class SBMSpec:
    n_classes: int = 5          # K blocks = the latent classes
    nodes_per_block: int = 200
    p_in: float = 0.05          # edge probability inside a block
    p_out: float = 0.01         # between blocks (assortative: p_out < p_in)
    dim: int = 16               # node-feature dimension
    spread: float = 0.3         # class-mean scale: mu_c ~ N(0, spread^2 I)
    noise: float = 1.0          # feature noise std

    def check(self) -> None:
        _check_int(self.n_classes, "n_classes", 2)
        _check_int(self.nodes_per_block, "nodes_per_block", 2)
        _check_int(self.dim, "dim", 1)
        for name in ("p_in", "p_out"):
            _check_real(getattr(self, name), name, 0.0)
            if getattr(self, name) > 1:
                raise ValueError(f"{name}: must be a probability in [0, 1], got {getattr(self, name)}")
        if not self.p_out < self.p_in:
            raise ValueError(f"p_out: must be < p_in = {self.p_in} (an assortative block model), got {self.p_out}")
        _check_real(self.spread, "spread", 0.0)
        _check_real(self.noise, "noise", 0.0)

    @property
    def n_nodes(self) -> int:
        return self.n_classes * self.nodes_per_block

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class SBMModel:
    """A sampled block model (its class means); ``sample_graph`` draws one graph with its node features.

    Attributes: spec, n_classes, input_dim = dim, rho (uniform), tau, labels (N,) int64, sizes (K,), means (K, dim).
    """

    def __init__(self, spec: SBMSpec, rng: np.random.Generator):
        spec.check()
        self.spec = spec
        K = spec.n_classes
        self.n_classes, self.input_dim = K, spec.dim
        self.rho = np.full(K, 1.0 / K)
        self.tau = float(np.sum(self.rho ** 2))
        self.sizes = np.full(K, spec.nodes_per_block, dtype=np.int64)
        self.labels = np.repeat(np.arange(K), spec.nodes_per_block).astype(np.int64)
        self.means = spec.spread * rng.standard_normal((K, spec.dim))

    def edge_probabilities(self) -> np.ndarray:
        """(N, N) P_ij = P(A_ij = 1): p_in inside a block, p_out across, 0 on the diagonal (no self-loops)."""
        same = self.labels[:, None] == self.labels[None, :]
        p = np.where(same, self.spec.p_in, self.spec.p_out)
        np.fill_diagonal(p, 0.0)
        return p

    def sample_graph(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One graph: the adjacency A (N, N) float32, symmetric 0/1 with a zero diagonal, and the node features
        X (N, dim) float32 (x_i = mu_{c_i} + noise N(0, I)); node i's label is ``labels[i]``."""
        N = self.spec.n_nodes
        u = rng.random((N, N))
        upper = np.triu(u < self.edge_probabilities(), 1)
        a = (upper | upper.T).astype(np.float32)
        x = self.means[self.labels] + self.spec.noise * rng.standard_normal((N, self.spec.dim))
        return a, x.astype(np.float32)


def build_sbm_model(spec: SBMSpec, rng: np.random.Generator) -> SBMModel:
    """rng fixes the class means."""
    return SBMModel(spec, rng)


def normalised_adjacency(a):
    """Kipf & Welling's D~^{-1/2} (A + I) D~^{-1/2}, D~ the degrees of A + I; a (..., N, N) array or tensor."""
    import torch
    t = torch.as_tensor(a)
    at = t + torch.eye(t.shape[-1], dtype=t.dtype, device=t.device)
    d = at.sum(-1).rsqrt()
    return d[..., :, None] * at * d[..., None, :]

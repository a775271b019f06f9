"""Latent-class data for contrastive learning (Arora et al., ICML 2019, Sec. 2).

The model: a finite set of classes with law rho; each class c has an input
distribution D_c.  Similar pairs draw c ~ rho then x, x+ ~ D_c independently;
each negative draws its own class c- ~ rho, then x- ~ D_{c-}.

Families of D_c (all built from one ``np.random.Generator`` in ``build_model``):

* ``gaussian``: N(mean_c, spread^2 I) in R^dim, class means on the sphere of
  radius ``mean_radius`` (uniformly random directions).
* ``mixture``:  each class is a uniform mixture of ``n_subclusters`` Gaussians
  N(centre, spread^2 I); the centres sit at distance ``subcluster_radius`` from
  the class mean in uniformly random directions.
* ``discrete``: each class has ``support_size`` points drawn like the gaussian
  family (mean_c + spread * N(0, I)) and a pmf drawn from Dirichlet(1, ..., 1).
  Finite support lets the theory enumerate every population quantity exactly.

With ``nonlinear=True`` every latent point z in R^dim is pushed through one
fixed random map  x = tanh(z A + a) B,  A: (dim, out_dim), a: (out_dim,),
B: (out_dim, out_dim), so that the classes are no longer linearly arranged and a
linear encoder cannot undo the map.  A has N(0, (2/s)^2) entries, where s is the
typical latent norm sqrt(mean_radius^2 [+ subcluster_radius^2] + dim spread^2);
the pre-activations then have std about 2, well inside tanh's curved range.
a ~ N(0, 1) and B has N(0, 1/out_dim) entries, which keeps outputs O(1).

Everything is float64 internally; samples are returned as float32 arrays.
Nothing random is stored globally: every sampler takes an explicit rng.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from synthetic_data.checks import check_int as _check_int
from synthetic_data.checks import check_real as _check_real
from synthetic_data import plugins
from theory.contrastive_terms import sample_task_tuples

CLASS_LAWS = ("uniform", "zipf", "explicit")
FAMILIES = ("gaussian", "mixture", "discrete")  # built-in; "plugin" (PLUGIN_FAMILY) is a user generator
PLUGIN_FAMILY = "plugin"
_GEN = plugins.generator_fields()


@dataclass(frozen=True)
class DataSpec:
    """Configuration of a latent-class model; every field has a default and is JSON-able."""

    n_classes: int = 10
    class_law: str = "uniform"
    zipf_s: float = 1.0
    class_probs: tuple[float, ...] = ()
    family: str = "gaussian"
    dim: int = 16
    mean_radius: float = 1.0
    spread: float = 0.3
    n_subclusters: int = 3
    subcluster_radius: float = 0.5
    support_size: int = 4
    nonlinear: bool = False
    out_dim: int = 64
    # A user's own generator (family "plugin"; see synthetic_data.plugins and docs/plugins.md). Left out of the
    # spec's hash while empty, so built-in specs keep their ids.
    generator: str = _GEN[0]
    generator_args: str = _GEN[1]
    generator_digest: str = _GEN[2]

    def __post_init__(self) -> None:
        # JSON/TOML give lists; a tuple keeps the frozen spec hashable.
        if isinstance(self.class_probs, list):
            object.__setattr__(self, "class_probs", tuple(self.class_probs))

    def check(self) -> None:
        """Raise ValueError("field: message") if any field has an impossible value."""
        _check_int(self.n_classes, "n_classes", 2)
        if self.class_law not in CLASS_LAWS:
            raise ValueError(f"class_law: must be one of {CLASS_LAWS} (got {self.class_law!r})")
        _check_real(self.zipf_s, "zipf_s", 0.0)
        probs = tuple(self.class_probs)
        if self.class_law == "explicit":
            if len(probs) != self.n_classes:
                raise ValueError(
                    f"class_probs: must have length n_classes={self.n_classes} (got {len(probs)})")
            try:
                arr = np.asarray(probs, dtype=np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"class_probs: must be numbers (got {probs!r})") from None
            if not np.all(np.isfinite(arr)) or np.any(arr < 0):
                raise ValueError(f"class_probs: must be finite and >= 0 (got {probs})")
            if abs(float(arr.sum()) - 1.0) > 1e-9:
                raise ValueError(f"class_probs: must sum to 1 (got {float(arr.sum())!r})")
        elif probs:
            raise ValueError(
                f"class_probs: only used with class_law='explicit' (class_law is {self.class_law!r})")
        if self.family not in FAMILIES + (PLUGIN_FAMILY,):
            raise ValueError(f"family: must be one of {FAMILIES + (PLUGIN_FAMILY,)} (got {self.family!r})")
        _check_int(self.dim, "dim", 1)
        _check_real(self.mean_radius, "mean_radius", 0.0)
        _check_real(self.spread, "spread", 0.0)
        _check_int(self.n_subclusters, "n_subclusters", 1)
        _check_real(self.subcluster_radius, "subcluster_radius", 0.0)
        _check_int(self.support_size, "support_size", 1)
        if not isinstance(self.nonlinear, (bool, np.bool_)):
            raise ValueError(f"nonlinear: must be a bool (got {self.nonlinear!r})")
        _check_int(self.out_dim, "out_dim", 1)
        if (self.family == "plugin") != bool(self.generator):
            raise ValueError("generator: family 'plugin' needs a generator, and a generator needs family 'plugin'")

    def to_dict(self) -> dict:
        """Plain dict of the fields (class_probs as a list), for JSON."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["class_probs"] = list(out["class_probs"])
        return out


def class_law(spec: DataSpec) -> np.ndarray:
    """Class law rho, shape (n_classes,), float64, summing to 1."""
    spec.check()
    c = spec.n_classes
    if spec.class_law == "uniform":
        rho = np.full(c, 1.0 / c)
    elif spec.class_law == "zipf":
        rho = (np.arange(c, dtype=np.float64) + 1.0) ** (-float(spec.zipf_s))
    else:
        rho = np.asarray(spec.class_probs, dtype=np.float64)
    # Renormalise so that sums of rho are 1 to rounding, not to the 1e-9 tolerance.
    return rho / rho.sum()


def _unit_rows(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Uniformly random unit vectors along the last axis."""
    z = rng.standard_normal(shape)
    norms = np.linalg.norm(z, axis=-1, keepdims=True)
    # A zero draw has probability 0; guard anyway so no NaN can appear.
    return z / np.where(norms > 0, norms, 1.0)


class LatentClassModel:
    """A sampled latent-class model (see module docstring); build it with ``build_model``.

    Attributes: spec, rho (C,), tau = sum_c rho_c^2, input_dim, n_classes;
    means (C, dim); for mixture ``subcentres`` (C, n_subclusters, dim); for
    discrete ``support`` (C, m, input_dim) float64 and ``pmf`` (C, m).
    """

    def __init__(self, spec: DataSpec, rng: np.random.Generator):
        spec.check()
        self.spec = spec
        self.rho = class_law(spec)
        self.tau = float(np.sum(self.rho ** 2))
        self.n_classes = spec.n_classes
        self.input_dim = spec.out_dim if spec.nonlinear else spec.dim
        C, dim = spec.n_classes, spec.dim
        self.means = spec.mean_radius * _unit_rows(rng, (C, dim))
        self.subcentres = None
        if spec.family == "mixture":
            offsets = _unit_rows(rng, (C, spec.n_subclusters, dim))
            self.subcentres = self.means[:, None, :] + spec.subcluster_radius * offsets
        latent_support = None
        if spec.family == "discrete":
            noise = rng.standard_normal((C, spec.support_size, dim))
            latent_support = self.means[:, None, :] + spec.spread * noise
            self.pmf = rng.dirichlet(np.ones(spec.support_size), size=C)
        self._map = None
        if spec.nonlinear:
            sub = spec.subcluster_radius ** 2 if spec.family == "mixture" else 0.0
            scale = math.sqrt(spec.mean_radius ** 2 + sub + dim * spec.spread ** 2)
            scale = scale if scale > 0 else 1.0
            A = rng.standard_normal((dim, spec.out_dim)) * (2.0 / scale)
            a = rng.standard_normal(spec.out_dim)
            B = rng.standard_normal((spec.out_dim, spec.out_dim)) / math.sqrt(spec.out_dim)
            self._map = (A, a, B)
        if latent_support is not None:
            flat = self._push(latent_support.reshape(-1, dim))
            self.support = flat.reshape(C, spec.support_size, self.input_dim)

    def _push(self, z: np.ndarray) -> np.ndarray:
        """Apply the fixed nonlinear map (identity when nonlinear=False); z: (n, dim) float64."""
        if self._map is None:
            return z
        A, a, B = self._map
        return np.tanh(z @ A + a) @ B

    def _check_classes(self, classes) -> np.ndarray:
        c = np.asarray(classes)
        if c.size and (not np.issubdtype(c.dtype, np.integer)):
            raise ValueError(f"classes: must be integers (got dtype {c.dtype})")
        c = c.astype(np.int64)
        if c.size and (c.min() < 0 or c.max() >= self.n_classes):
            raise ValueError(f"classes: must lie in [0, {self.n_classes}) (got {c.min()}..{c.max()})")
        return c

    def sample_x(self, classes, rng: np.random.Generator) -> np.ndarray:
        """Draw x ~ D_c for each entry of ``classes`` (n,) int; returns (n, input_dim) float32."""
        c = self._check_classes(classes).reshape(-1)
        n, spec = c.shape[0], self.spec
        if spec.family == "discrete":
            cdf = np.cumsum(self.pmf[c], axis=1)
            idx = np.sum(cdf < rng.random(n)[:, None], axis=1)
            idx = np.minimum(idx, spec.support_size - 1)
            return self.support[c, idx].astype(np.float32)
        if spec.family == "mixture":
            sub = rng.integers(spec.n_subclusters, size=n)
            centre = self.subcentres[c, sub]
        else:
            centre = self.means[c]
        z = centre + spec.spread * rng.standard_normal((n, spec.dim))
        return self._push(z).astype(np.float32)

    def sample_classes(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n classes drawn i.i.d. from rho; returns (n,) int64."""
        _check_int(n, "n", 0)
        return rng.choice(self.n_classes, size=n, p=self.rho).astype(np.int64)

    def sample_tuples(self, m: int, k: int, rng: np.random.Generator) -> dict:
        """m contrastive tuples with k negatives, drawn as in the paper (Sec. 2).

        c+ ~ rho; x, x+ ~ D_{c+} independently; each negative class c-_i ~ rho
        i.i.d. (negatives may collide with c+ and with each other), x-_i ~ D_{c-_i}.
        Returns dict x (m, D), pos (m, D), neg (m, k, D), c_pos (m,), c_neg (m, k).
        """
        _check_int(m, "m", 0)
        _check_int(k, "k", 1)
        c_pos = self.sample_classes(m, rng)
        x = self.sample_x(c_pos, rng)
        pos = self.sample_x(c_pos, rng)
        c_neg = self.sample_classes(m * k, rng).reshape(m, k)
        neg = self.sample_x(c_neg.reshape(-1), rng).reshape(m, k, self.input_dim)
        return {"x": x, "pos": pos, "neg": neg, "c_pos": c_pos, "c_neg": c_neg}

    def sample_blocks(self, m: int, b: int, rng: np.random.Generator) -> dict:
        """m block tuples for the paper's block (CURL) loss, Sec. 6.3 / Prop. 6.2.

        c+, c- ~ rho i.i.d.; x and the b positives ~ D_{c+}; the b negatives ALL
        come from the single class c- (they share one class).
        Returns dict x (m, D), pos (m, b, D), neg (m, b, D), c_pos (m,), c_neg (m,).
        """
        _check_int(m, "m", 0)
        _check_int(b, "b", 1)
        c_pos = self.sample_classes(m, rng)
        c_neg = self.sample_classes(m, rng)
        x = self.sample_x(c_pos, rng)
        pos = self.sample_x(np.repeat(c_pos, b), rng).reshape(m, b, self.input_dim)
        neg = self.sample_x(np.repeat(c_neg, b), rng).reshape(m, b, self.input_dim)
        return {"x": x, "pos": pos, "neg": neg, "c_pos": c_pos, "c_neg": c_neg}

    def sample_labelled(self, n_per_class: int, rng: np.random.Generator, classes=None):
        """Balanced labelled sample: n_per_class points of each class, classes in order.

        classes: (C',) ints, default all classes.  Returns X (n_per_class*C', D)
        float32 and y (n_per_class*C',) int64 with y = repeat(classes, n_per_class).
        """
        _check_int(n_per_class, "n_per_class", 0)
        cls = np.arange(self.n_classes) if classes is None else self._check_classes(classes).reshape(-1)
        y = np.repeat(cls, n_per_class).astype(np.int64)
        return self.sample_x(y, rng), y

    def sample_tasks(self, n_tasks: int, k: int, rng: np.random.Generator) -> np.ndarray:
        """n_tasks (k+1)-way tasks, shape (n_tasks, k+1) int64.

        As in the paper's Def. 2.2: (c_1..c_{k+1}) ~ rho^{k+1} conditioned on all
        classes being distinct (i.i.d. from rho, not uniform over subsets).  The
        row order is exchangeable, so column 0 is a uniformly random class of the task.
        """
        _check_int(n_tasks, "n_tasks", 0)
        _check_int(k, "k", 1)
        n_pos = int(np.sum(self.rho > 0))
        if k + 1 > n_pos:
            raise ValueError(f"k: k+1={k + 1} exceeds the {n_pos} classes with positive mass")
        return sample_task_tuples(self.rho, k, n_tasks, rng)  # the one exact sampler of the task law


def build_model(spec: DataSpec, rng: np.random.Generator) -> LatentClassModel:
    """Build a latent-class model; rng fixes the class means, sub-clusters, support and map (or, for family
    "plugin", is handed to the user's generator)."""
    if spec.family == "plugin":
        return PluginLatentClassModel(spec, rng)
    return LatentClassModel(spec, rng)


# ------------------------------------------------------------------------------------------------ plug-ins
PLUGIN_PROTOCOL = {
    "n_classes": "int attribute: the number of latent classes C",
    "input_dim": "int attribute: the dimension of x",
    "sample_classes": "sample_classes(n, rng) -> (n,) int array of classes drawn i.i.d. from the class law",
    "sample_x": "sample_x(classes, rng) -> (n, input_dim) float array, x ~ D_c for each given class",
    "class_probs": "class_probs() -> (C,) array summing to 1, the exact class law; or None if unknown",
}
N_LAW_ESTIMATE = 200_000  # class draws used to estimate an undeclared class law (and to test a declared one)


class PluginLatentClassModel(LatentClassModel):
    """A user's latent-class generator behind the built-in model's interface: tuples, blocks, tasks and labelled
    samples are drawn by the inherited code from the plug-in's ``sample_classes`` and ``sample_x``. The class law
    is the declared one, or, if the plug-in returns None, the empirical law of N_LAW_ESTIMATE draws
    (``rho_estimated`` True, ``rho_se`` its standard errors)."""

    estimated_quantities: list[str] = []

    def __init__(self, spec: DataSpec, rng: np.random.Generator):
        spec.check()
        self.spec = spec
        self.plugin = plugins.instantiate(spec.generator, spec.generator_args, PLUGIN_PROTOCOL)
        C, D = int(self.plugin.n_classes), int(self.plugin.input_dim)
        if C != spec.n_classes:
            raise plugins.PluginError(f"n_classes: the plug-in has {C} classes, the data spec {spec.n_classes}")
        self.n_classes, self.input_dim, self._map = C, D, None
        declared = self.plugin.class_probs()
        self.rho_estimated = declared is None
        if declared is None:
            draws = self.sample_classes(N_LAW_ESTIMATE, rng)
            freq = np.bincount(draws, minlength=C) / draws.size
            self.rho, self.rho_se = freq, np.sqrt(freq * (1 - freq) / draws.size)
            self.estimated_quantities = [f"class_probs: not declared; estimated from {draws.size} draws (largest "
                                         f"SE {float(self.rho_se.max()):.2g}); tau = {float(np.sum(freq ** 2)):.6g} "
                                         "rests on the estimate"]
        else:
            self.rho, self.rho_se = plugins.probability_vector("class_probs", declared, C), np.zeros(C)
        self.tau = float(np.sum(self.rho ** 2))

    def sample_x(self, classes, rng: np.random.Generator) -> np.ndarray:
        c = self._check_classes(classes).reshape(-1)
        x = plugins.as_array("sample_x", self.plugin.sample_x(c, rng), (c.shape[0], self.input_dim))
        return x.astype(np.float32)

    def sample_classes(self, n: int, rng: np.random.Generator) -> np.ndarray:
        _check_int(n, "n", 0)
        c = plugins.as_array("sample_classes", self.plugin.sample_classes(n, rng), (n,), kind="i")
        if c.size and (c.min() < 0 or c.max() >= self.n_classes):
            raise plugins.PluginError(f"sample_classes: classes must lie in [0, {self.n_classes}), "
                                      f"got {c.min()}..{c.max()}")
        return c.astype(np.int64)


def plugin_agreements(model: PluginLatentClassModel, rng: np.random.Generator) -> list[plugins.Agreement]:
    """Each exact quantity the plug-in declares against the suite's estimate from the plug-in's samples: the
    class law (per class) and tau = P(c = c') against the collision rate of independent class pairs."""
    if not isinstance(model, PluginLatentClassModel):
        return []  # a built-in law is the suite's own
    model.sample_labelled(2, rng)  # every sampler once, so a wrong shape, dtype or a NaN fails before any work
    if model.rho_estimated:
        return []  # an undeclared law was estimated from these very samples: nothing to compare
    n = N_LAW_ESTIMATE
    a, b = model.sample_classes(n, rng), model.sample_classes(n, rng)
    hit = (a == b).astype(np.float64)
    out = [plugins.Agreement("tau (collision probability of two classes)", model.tau, float(hit.mean()),
                             float(max(hit.std(ddof=1), 1.0 / n) / np.sqrt(n)))]
    return out + plugins.frequency_agreements("class_probs", model.rho, a) + [
        plugins.log_loss_agreement("class_probs", model.rho[a], model.rho[None, :])]

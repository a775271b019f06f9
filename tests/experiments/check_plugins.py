"""Plug-ins the check tests use (not a test module): right and deliberately wrong declarations."""
from __future__ import annotations

import json

import numpy as np

from experiments.engine.rng import numpy_rng
from synthetic_data.contrastive import DataSpec, LatentClassModel
from synthetic_data.language import ExplicitHMM


class BuiltinEquivalent:
    """The built-in Gaussian latent-class model behind the plug-in protocol, with the same random parts."""

    def __init__(self, spec: str, data_id: str):
        self.model = LatentClassModel(DataSpec(**json.loads(spec)), numpy_rng(data_id, 0, "latent-model"))
        self.n_classes, self.input_dim = self.model.n_classes, self.model.input_dim

    def class_probs(self):
        return self.model.rho

    def sample_classes(self, n, rng):
        return self.model.sample_classes(n, rng)

    def sample_x(self, classes, rng):
        return self.model.sample_x(classes, rng)


class WrongTau:
    """Samples classes uniformly but declares a skewed law (so tau and the class law are wrong)."""
    n_classes, input_dim = 4, 3

    def class_probs(self):
        return np.array([0.4, 0.3, 0.2, 0.1])

    def sample_classes(self, n, rng):
        return rng.integers(self.n_classes, size=n)

    def sample_x(self, classes, rng):
        return np.eye(4, 3)[np.asarray(classes)] * 3 + rng.standard_normal((len(classes), 3))


class RightTau(WrongTau):
    def sample_classes(self, n, rng):
        return rng.choice(self.n_classes, size=n, p=self.class_probs())


class NaNSampler(RightTau):
    def sample_x(self, classes, rng):
        return np.full((len(classes), 3), np.nan)


class WrongShape(RightTau):
    def sample_x(self, classes, rng):
        return np.zeros((len(classes), 5))


class NoSampleX:
    n_classes, input_dim = 3, 2

    def class_probs(self):
        return np.full(3, 1 / 3)

    def sample_classes(self, n, rng):
        return rng.integers(3, size=n)


class StringClasses(RightTau):
    def sample_classes(self, n, rng):
        return np.array(["a"] * n)


class HMMWithSampler(ExplicitHMM):
    """Declares its matrices; samples from ``true_emit`` (equal to emit when right, different when wrong)."""

    def __init__(self, init, trans, emit, true_emit=None):
        super().__init__(init, trans, emit)
        self.true_emit = np.asarray(true_emit if true_emit is not None else emit, dtype=float)

    def sample(self, n, length, rng):
        K, V = self.true_emit.shape
        h = rng.choice(K, size=n, p=self._init)
        words = np.empty((n, length), dtype=np.int64)
        ct, ce = np.cumsum(self._trans, 1), np.cumsum(self.true_emit, 1)
        for t in range(length):
            if t:
                h = np.minimum((ct[h] < rng.random((n, 1))).sum(1), K - 1)
            words[:, t] = np.minimum((ce[h] < rng.random((n, 1))).sum(1), V - 1)
        return words


class GaussianViews:
    """Exact-CI Gaussian views; ``psi_scale`` != 1 makes the declared psi* wrong."""

    def __init__(self, psi_scale=1.0):
        self.k, self.d1, self.d2, self.s = 2, 3, 2, float(psi_scale)
        self.M1 = np.array([[1.5, 0.0, 0.0], [-1.5, 0.0, 0.5]])
        self.M2 = np.array([[1.0, 0.0], [0.0, 1.0]])

    def latent_probs(self):
        return np.array([0.5, 0.5])

    def latent_label(self):
        return np.arange(2)

    def latent_means2(self):
        return self.M2

    def sample(self, n, rng):
        y = rng.integers(2, size=n)
        return self.M1[y] + rng.standard_normal((n, 3)), self.M2[y] + 0.5 * rng.standard_normal((n, 2)), y

    def latent_posterior(self, x1):
        z = x1 @ self.M1.T - 0.5 * (self.M1 ** 2).sum(1)
        z = np.exp(z - z.max(1, keepdims=True))
        return z / z.sum(1, keepdims=True)

    def psi_star(self, x1):
        return self.s * self.latent_posterior(x1) @ self.M2


class GaussianViewsNoPsi(GaussianViews):
    """The same views with psi* declared unknown: the suite must estimate it."""

    def psi_star(self, x1):
        return None


class RightTauNoLaw(RightTau):
    def class_probs(self):
        return None

    def sample_classes(self, n, rng):
        return rng.choice(self.n_classes, size=n, p=[0.4, 0.3, 0.2, 0.1])


# ----------------------------------------------------------------------------- plug-ins whose own code raises
class RaisingViews(GaussianViews):
    def sample(self, n, rng):
        raise RuntimeError("sampler exploded")


class BadSamplerHMM(ExplicitHMM):
    """Its sampler hands numpy a law that does not sum to 1: numpy's ValueError must read as the plug-in's."""

    def sample(self, n, length, rng):
        return rng.choice(3, size=(n, length), p=[0.5, 0.6, 0.1])


class RaisesInRun(RightTau):
    """Passes every check before the run, then raises inside a cell (a large batch of x)."""

    def sample_x(self, classes, rng):
        if len(classes) > 50:
            raise MemoryError("no room for this batch")
        return super().sample_x(classes, rng)


class RaisingInit:
    def __init__(self):
        raise KeyError("missing setting")


class RaisingProperty(RightTau):
    @property
    def n_classes(self):
        raise ZeroDivisionError("division by zero")


def a_function():
    """A function where a class is expected."""


# ----------------------------------------------------------------------------- malformed declarations
class ShortX1(GaussianViews):
    """x1 one column short: must be refused by shape before psi_star sees it."""

    def sample(self, n, rng):
        x1, x2, y = super().sample(n, rng)
        return x1[:, :2], x2, y


class NegativeLaw(RightTau):
    def class_probs(self):
        return np.array([0.6, 0.5, -0.2, 0.1])   # sums to 1.0


class TooFewTargetDims(GaussianViews):
    """d2 = 1 < n_latent = 2: Assumption 4.1's rank fails, so no theorem of the chapter can be judged."""

    def __init__(self):
        super().__init__()
        self.d2, self.M2 = 1, np.array([[1.0], [0.0]])

    def sample(self, n, rng):
        x1, _, y = super().sample(n, rng)
        return x1, self.M2[y] + 0.5 * rng.standard_normal((n, 1)), y


# ----------------------------------------------------------------------------- liars
class ReversedLaw(WrongTau):
    """Declares [0.4, 0.3, 0.2, 0.1] and samples the reverse."""

    def sample_classes(self, n, rng):
        return rng.choice(4, size=n, p=[0.1, 0.2, 0.3, 0.4])


class StickierHMM(HMMWithSampler):
    """Declares its transition matrix but samples from a stickier chain."""

    def __init__(self, init, trans, emit, true_trans):
        super().__init__(init, trans, emit)
        self._declared_trans = self._trans
        self._true_trans = np.asarray(true_trans, dtype=float)

    def sample(self, n, length, rng):
        declared, self._trans = self._trans, self._true_trans
        try:
            return super().sample(n, length, rng)
        finally:
            self._trans = declared


class NoisyMeanViews(GaussianViews):
    """X2's noise has mean 0.3, which the declared psi* leaves out."""

    def sample(self, n, rng):
        x1, x2, y = super().sample(n, rng)
        return x1, x2 + 0.3, y


class StudentTViews:
    """X1 | Y = M1[y] + Student-t noise (nu = 2.5), X2 | Y Gaussian, independent given Y. ``gaussian_posterior``
    declares the posterior a Gaussian-noise model would give (psi* stays right): its mean is close to the truth
    on average, so the moment checks pass; it is wrong point by point, which only the log loss sees."""

    def __init__(self, gaussian_posterior=False, nu=2.5):
        self.k, self.d1, self.d2, self.nu, self.wrong = 2, 2, 2, float(nu), bool(gaussian_posterior)
        self.M1 = np.array([[1.0, 0.0], [-1.0, 0.0]])
        self.M2 = np.array([[1.0, 0.0], [0.0, 1.0]])

    def latent_probs(self):
        return np.array([0.5, 0.5])

    def latent_label(self):
        return np.arange(2)

    def latent_means2(self):
        return self.M2

    def sample(self, n, rng):
        y = rng.integers(2, size=n)
        return self.M1[y] + rng.standard_t(self.nu, size=(n, 2)), self.M2[y] + 0.5 * rng.standard_normal((n, 2)), y

    def _posterior(self, x1, gaussian):
        r = x1[:, None, :] - self.M1[None]
        z = -0.5 * (r ** 2).sum(-1) if gaussian else -0.5 * (self.nu + 1) * np.log1p(r ** 2 / self.nu).sum(-1)
        z = np.exp(z - z.max(1, keepdims=True))
        return z / z.sum(1, keepdims=True)

    def latent_posterior(self, x1):
        return self._posterior(x1, self.wrong)

    def psi_star(self, x1):  # always the true one: only the declared posterior is wrong
        return self._posterior(x1, False) @ self.M2

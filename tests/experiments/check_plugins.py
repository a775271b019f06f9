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

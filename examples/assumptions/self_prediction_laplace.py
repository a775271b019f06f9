"""A two-view plug-in written as a user would: X1 | Y has Laplace noise (not Gaussian), X2 | Y is Gaussian, and
the views are independent given Y. Every exact quantity is in closed form: P(Y | x1) from the Laplace
densities, and psi*(x1) = E[X2 | x1] = P(Y | x1) @ means2."""
import numpy as np
from scipy.special import softmax


class LaplaceViews:
    def __init__(self, k=3, d1=6, d2=4, separation=2.5, scale1=0.8, noise2=0.7, seed=1):
        rng = np.random.default_rng(seed)
        self.k, self.d1, self.d2 = int(k), int(d1), int(d2)
        self.M1 = separation * rng.standard_normal((self.k, self.d1)) / np.sqrt(self.d1)
        self.M2 = rng.standard_normal((self.k, self.d2))
        self.b, self.s2 = float(scale1), float(noise2)

    def latent_probs(self):
        return np.full(self.k, 1.0 / self.k)

    def latent_label(self):
        return np.arange(self.k)

    def latent_means2(self):
        return self.M2

    def sample(self, n, rng):
        y = rng.integers(self.k, size=n)
        x1 = self.M1[y] + rng.laplace(0.0, self.b, size=(n, self.d1))
        x2 = self.M2[y] + self.s2 * rng.standard_normal((n, self.d2))
        return x1, x2, y

    def latent_posterior(self, x1):
        return softmax(-np.abs(x1[:, None, :] - self.M1[None]).sum(-1) / self.b, axis=1)

    def psi_star(self, x1):
        return self.latent_posterior(x1) @ self.M2

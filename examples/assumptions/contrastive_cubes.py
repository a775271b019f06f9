"""A latent-class model written as a user would write it: each class is uniform on a small cube.

The class law is declared exactly (so tau is exact); the class means of the encoder's features are left to the
suite, which estimates them from samples. See docs/plugins.md for the protocol.
"""
import numpy as np


class Cubes:
    def __init__(self, n_classes=6, dim=8, side=0.6, spacing=1.0, seed=0, weights=None):
        self.n_classes, self.input_dim, self.side = int(n_classes), int(dim), float(side)
        # cube corners on a random lattice-like layout, fixed by the plug-in's own seed
        self.corners = np.random.default_rng(seed).normal(0.0, spacing, size=(self.n_classes, self.input_dim))
        w = np.ones(self.n_classes) if weights is None else np.asarray(weights, dtype=float)
        self.weights = w / w.sum()

    def class_probs(self):
        return self.weights

    def sample_classes(self, n, rng):
        return rng.choice(self.n_classes, size=n, p=self.weights)

    def sample_x(self, classes, rng):
        classes = np.asarray(classes)
        return self.corners[classes] + self.side * rng.random((classes.shape[0], self.input_dim))

"""An HMM plug-in written as a user would: a "sticky" chain where each state mostly repeats and mostly emits
its own block of words. It declares its matrices and has its own sampler, which the suite uses only to test
that the declared matrices are the law it samples from."""
import numpy as np


class StickyHMM:
    def __init__(self, n_states=4, vocab=8, stay=0.85, own=0.8):
        K, V = int(n_states), int(vocab)
        self.T = np.full((K, K), (1 - stay) / (K - 1))
        np.fill_diagonal(self.T, stay)
        self.E = np.full((K, V), (1 - own) / (V - V // K))
        for k in range(K):
            block = slice(k * (V // K), (k + 1) * (V // K))
            self.E[k] = (1 - own) / (V - V // K)
            self.E[k, block] = own / (V // K)
        self.E /= self.E.sum(1, keepdims=True)
        self.p0 = np.full(K, 1.0 / K)

    def init(self):
        return self.p0

    def trans(self):
        return self.T

    def emit(self):
        return self.E

    def sample(self, n, length, rng):
        K, V = self.E.shape
        h = rng.choice(K, size=n, p=self.p0)
        words = np.empty((n, length), dtype=np.int64)
        for t in range(length):
            if t:
                h = np.array([rng.choice(K, p=self.T[s]) for s in h])
            words[:, t] = [rng.choice(V, p=self.E[s]) for s in h]
        return words

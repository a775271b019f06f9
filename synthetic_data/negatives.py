"""Data of the negatives chapter: the contrastive chapter's latent classes, and one finite instance.

The trained sweep uses ``synthetic_data.contrastive``'s latent-class generator unchanged (uniform and Zipf class
laws, any number of classes); this module re-exports it so the chapter reads its data from one place.

The finite instance is where every quantity is exact: C <= 6 classes over N = C + n_shared discrete inputs.
Class c puts mass 1 - overlap on its own input c and spreads ``overlap`` evenly over the n_shared shared inputs,
which every class uses, so no encoder separates the classes perfectly. An encoder on N discrete inputs is a table
of N feature vectors, so the population optimum over all encoders of norm b is a finite-dimensional problem.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synthetic_data.checks import check_int as _check_int
from synthetic_data.checks import check_real as _check_real
from synthetic_data.contrastive import DataSpec, build_model, class_law

FINITE_LAWS = ("uniform", "zipf")
MAX_FINITE_CLASSES = 6

__all__ = ["DataSpec", "build_model", "class_law", "FiniteSpec", "finite_instance", "FINITE_LAWS"]


@dataclass(frozen=True)
class FiniteSpec:
    n_classes: int = 3
    class_law: str = "uniform"
    zipf_s: float = 1.0
    overlap: float = 0.3          # each class's mass on the shared inputs
    n_shared: int = 1

    def check(self) -> None:
        _check_int(self.n_classes, "n_classes", 2)
        if self.n_classes > MAX_FINITE_CLASSES:
            raise ValueError(f"n_classes: the finite instance has at most {MAX_FINITE_CLASSES} classes "
                             f"(got {self.n_classes})")
        if self.class_law not in FINITE_LAWS:
            raise ValueError(f"class_law: must be one of {FINITE_LAWS} (got {self.class_law!r})")
        _check_real(self.zipf_s, "zipf_s", 0.0)
        _check_real(self.overlap, "overlap", 0.0)
        if not self.overlap < 1:
            raise ValueError(f"overlap: must be < 1 (got {self.overlap})")
        _check_int(self.n_shared, "n_shared", 1)


def finite_instance(spec: FiniteSpec) -> tuple[np.ndarray, np.ndarray]:
    """(rho (C,), D (C, N)): the class law and each class's pmf over the N inputs, float64, rows summing to 1."""
    spec.check()
    C, S = spec.n_classes, spec.n_shared
    rho = class_law(DataSpec(n_classes=C, class_law=spec.class_law, zipf_s=spec.zipf_s))
    D = np.zeros((C, C + S))
    D[np.arange(C), np.arange(C)] = 1.0 - spec.overlap
    D[:, C:] = spec.overlap / S
    return rho, D


def sample_finite(spec: FiniteSpec, n: int, K: int, rng: np.random.Generator) -> dict:
    """n tuples on the finite instance: anchor class c ~ rho, x, x+ ~ D_c, K negatives from the marginal.
    Returns input indices x (n,), pos (n,), neg (n, K) (used to test the exact terms against simulation)."""
    rho, D = finite_instance(spec)
    N = D.shape[1]
    c = rng.choice(rho.size, size=n, p=rho)
    cdf = np.cumsum(D[c], axis=1)
    x = np.minimum((cdf < rng.random(n)[:, None]).sum(1), N - 1)
    pos = np.minimum((cdf < rng.random(n)[:, None]).sum(1), N - 1)
    neg = rng.choice(N, size=(n, K), p=rho @ D)
    return {"c": c, "x": x, "pos": pos, "neg": neg}

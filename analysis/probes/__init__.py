"""Batched linear probes: many independent multinomial logistic regressions at once.

A sample-complexity sweep fits one probe per (n_per_class, seed) cell. Instead of
a Python loop of scikit-learn fits, all cells are stacked along a leading problem
axis P and solved together in torch, on the device of the input tensors.

Objective, per problem p (exactly scikit-learn's multinomial
``LogisticRegression(penalty="l2", C=C, fit_intercept=True)``)::

    f_p(W, b) = 0.5 * ||W||_F^2 + C * sum_i weight_i * CE(x_i W + b, y_i)

with the intercept b not penalised and CE the natural-log cross-entropy. The
solver minimises F_p = f_p / (C * sum_i weight_i), the scaling scikit-learn
uses, so ``tol`` means what scikit-learn's ``tol`` means for ``solver="lbfgs"``:
the largest absolute entry of the gradient of F_p.

Normalisation of the solution. f is invariant to adding a constant to all
logits, so b is only defined up to a shift; like scikit-learn's lbfgs (whose
iterates never leave that subspace) the returned b sums to zero over the
present classes, and so does every row of W (the penalty forces that).

Classes absent from a problem (zero total weight) have no finite optimum (their
intercept would run to -inf). They are left out of that problem, as
scikit-learn leaves out classes it never saw: their column of W is 0, their
intercept is ``-inf`` (probability exactly 0), and ``ProbeFit.present`` marks
them. A test point of such a class then has infinite cross-entropy.

Two classes. scikit-learn >= 1.5 fits a *binary* model when only two classes
are present; that is our symmetric multinomial solution with ``C_binary = 2*C``
and ``coef_ = W[:, 1] - W[:, 0]``, ``intercept_ = b[1] - b[0]``.

Layout (each module imports only those above it):

- ``solver``: the general optimiser, a batched preconditioned L-BFGS;
- ``newton``: the fast path for two classes, batched Newton on the binary model;
- ``fit``: ``ProbeFit``, ``fit_logistic_probes`` (and ``fit_logistic_probes_reference``, L-BFGS alone, the
  oracle of the fast path) and the test metrics;
- ``grid``: ``subsample_per_class`` and ``fit_probe_grid``.

Timings against scikit-learn: ``experiments.bench_probes``.
"""

from analysis.probes.fit import (
    ProbeFit, fit_binary_probes, fit_logistic_probes, fit_logistic_probes_reference, probe_accuracy, probe_logits, probe_loss,
)
from analysis.probes.grid import fit_probe_grid, subsample_per_class

__all__ = [
    "ProbeFit",
    "fit_binary_probes",
    "fit_logistic_probes",
    "fit_logistic_probes_reference",
    "probe_logits",
    "probe_accuracy",
    "probe_loss",
    "subsample_per_class",
    "fit_probe_grid",
]

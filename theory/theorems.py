"""Theorems as data: what a bound says, what it assumes, which terms it takes, and how it is computed.

Every theory module declares its results as ``THEOREMS``, a tuple of :class:`Theorem`. A chapter names the
tuple it checks; ``bounds.csv`` names the theorem of every row in its ``theorem`` column, and the theorem's
``bound`` function, fed that row's ``terms`` columns, recomputes the row's ``bound_value`` (a test does this
over every row of a quick run). Nothing here looks at a measured value: a bound is a function of its terms.

Status says how much to trust the statement itself:

- ``paper``: the paper's statement, checked against the paper;
- ``reconstructed``: our reading of a statement whose exact wording or constants we could not confirm;
- ``derived``: our own derivation (the proof is in ``docs/theory/<chapter>.md``);
- ``reference``: not a theorem at all but a reference curve (an exact formula under a simpler model, a
  heuristic). A reference row reads above or below its reference; it is never "violated" or "holds".

Kind says how a row is judged (theory.verdict): a ``bound`` holds, is violated or vacuous; a ``reference`` reads
above or below; an ``identity`` (``identity=True``) is an exact statement of the suite's own algebra (an
Eckart–Young minimum, say), true for every input, so it can fail only through an arithmetic bug: it is "exact"
to rounding or "broken", and never counted among a bound's holds.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Mapping

import numpy as np

STATUSES = ("paper", "reconstructed", "derived", "reference")
BOUND, REFERENCE, IDENTITY = "bound", "reference", "identity"
KINDS = (BOUND, REFERENCE, IDENTITY)


@dataclass(frozen=True)
class Assumption:
    """A hypothesis of a theorem, checked numerically on the rows it is judged on.

    ``check(**terms)`` receives the named columns as float64 arrays and returns ``(value, met)``: the number the
    check computes (tau, epsilon_CI, a naturalness gap, ...) and whether the hypothesis holds at each row.
    """
    name: str
    statement: str
    terms: tuple[str, ...]
    check: Callable[..., tuple[np.ndarray, np.ndarray]]

    def evaluate(self, table: Mapping) -> tuple[np.ndarray, np.ndarray]:
        value, met = self.check(**{t: _column(table, t) for t in self.terms})
        n = len(next(iter(_column(table, t) for t in self.terms))) if self.terms else 1
        return (np.broadcast_to(np.asarray(value, dtype=np.float64), (n,)).copy(),
                np.broadcast_to(np.asarray(met, dtype=bool), (n,)).copy())


@dataclass(frozen=True)
class Trivial:
    """The value a trivial predictor reaches (for a loss bound, the loss of the zero encoder): a bound at or above
    it is vacuous. ``value(**terms)``, where given, recomputes the rows' ``trivial`` column from their terms."""
    statement: str                                  # in words
    terms: tuple[str, ...] = ()
    value: Callable[..., np.ndarray] | None = None


@dataclass(frozen=True)
class Theorem:
    id: str                              # "<chapter>.<name>", e.g. "contrastive.lemma_4_3"
    paper: str                           # "Arora et al. 2019"
    number: str                          # the statement's number in the paper, e.g. "Lemma 4.3"
    statement: str                       # one line of LaTeX, as the suite checks it
    status: str                          # one of STATUSES
    terms: tuple[str, ...]               # the columns ``bound`` takes, in its argument order
    bound: Callable[..., np.ndarray]     # the bound (or reference value) from its terms, vectorised
    trivial: Trivial                     # the value a trivial predictor reaches
    assumptions: tuple[Assumption, ...] = ()
    measured: str = ""                   # in words: what the bound is compared with
    doc: str = ""                        # section of docs/theory/<chapter>.md
    notes: str = ""                      # known looseness, stand-ins
    study: str = ""                      # the config section (study) whose cells are built to check it
    figures: tuple[str, ...] = ()        # the chapter's FIGURES keys that draw it (empty: none draws it)
    identity: bool = False               # an exact statement of the suite's algebra (kind IDENTITY)

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"{self.id}: status must be one of {STATUSES}, got {self.status!r}")
        if "." not in self.id:
            raise ValueError(f"{self.id}: an id is '<chapter>.<name>'")
        if not isinstance(self.trivial, Trivial):
            raise TypeError(f"{self.id}: trivial must be a theory.theorems.Trivial, got {type(self.trivial).__name__}")
        if isinstance(self.figures, str):
            raise TypeError(f"{self.id}: figures is a tuple of FIGURES keys, got the string {self.figures!r}")
        if self.identity and self.status == "reference":
            raise ValueError(f"{self.id}: a reference curve cannot be an identity")

    @property
    def chapter(self) -> str:
        return self.id.split(".", 1)[0]

    @property
    def kind(self) -> str:
        if self.identity:
            return IDENTITY
        return REFERENCE if self.status == "reference" else BOUND

    def bound_from(self, table: Mapping) -> np.ndarray:
        """The bound at every row of ``table`` (a DataFrame or a mapping of columns), from its terms only."""
        return np.asarray(self.bound(**{t: _column(table, t) for t in self.terms}), dtype=np.float64)

    def trivial_from(self, table: Mapping) -> np.ndarray | None:
        if self.trivial.value is None:
            return None
        return np.asarray(self.trivial.value(**{t: _column(table, t) for t in self.trivial.terms}),
                          dtype=np.float64)

    def check_assumptions(self, table: Mapping) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return {a.name: a.evaluate(table) for a in self.assumptions}


def _column(table: Mapping, name: str) -> np.ndarray:
    try:
        col = table[name]
    except KeyError:
        raise KeyError(f"term {name!r} is not a column of the rows") from None
    values = np.asarray(col)
    if values.dtype.kind in "biuf":
        return values.astype(np.float64)
    return values


def index(theorems: Iterable[Theorem]) -> dict[str, Theorem]:
    """id -> theorem, refusing duplicate ids (two declarations of one id would make rows ambiguous)."""
    out: dict[str, Theorem] = {}
    for t in theorems:
        if t.id in out:
            raise ValueError(f"theorem id {t.id!r} is declared twice")
        out[t.id] = t
    return out


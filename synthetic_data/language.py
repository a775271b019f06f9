"""A hidden-Markov language with its exact next-word law, the ground truth for Saunshi, Malladi & Arora (ICLR 2021).

A document is w_1 w_2 ... drawn from an HMM: h_1 ~ init, h_{t+1} ~ trans[h_t], w_t ~ emit[h_t]. A context s is a
window of ``context_len`` words, and the theorem's ground truth is p*_s = p*(. | s) = P(h_{L+1} | s) @ emit, which
forward filtering gives exactly. ``init`` is a stationary law of ``trans`` (of the lazy chain (I + trans) / 2, so it
exists and is found even for periodic or reducible chains): a window at any offset of a document then has the same
law as the first L words, so ``log_prob`` is the law of contexts however they are cut from text.

Families (all built from one ``np.random.Generator`` in ``build_model``):

* ``dirichlet``: every row of trans and emit ~ Dirichlet(concentration * 1).
* ``sparse``: near-deterministic. Row k of trans puts ``determinism`` on a favourite next state (a random
  permutation of the states) and spreads the rest by Dirichlet(concentration); row k of emit likewise on a favourite
  word, the favourites distinct while n_states <= vocab (so the states stay identifiable from the words).
* ``topic``: the states and the vocabulary are cut into ``n_topics`` contiguous blocks; a state moves inside its
  block and emits words of its block, each with mass 1 - ``leak``; the other ``leak`` is spread over everything by
  Dirichlet(concentration). Topics are sticky, so p*_s carries the topic of the whole context.
* ``ginc``: a mixture of ``n_hmms`` HMMs in the style of GINC (Xie et al., ICLR 2022): each component ("concept")
  has its own near-deterministic transition matrix over ``n_states`` states (as ``sparse``), all share one
  near-deterministic emission matrix, and the concept is drawn once per document. It is represented as ONE HMM on
  the product space (concept, state), index concept * n_states + state, with block-diagonal trans, tiled emit and
  init = uniform(concept) x stationary(state | concept), so every routine below applies unchanged. [recon]: GINC's
  entity/property factorisation and its delimiter token are left out.

Every emission entry is floored at ``_EMIT_FLOOR`` (then rows renormalised): every context then has positive
probability, p*_s > 0, and KL(p*_s || p) is finite for any LM with full support.

Float64 throughout; word and state arrays are int64. Nothing random is stored globally.
Tasks defined from p* live in ``synthetic_data/language_tasks.py`` and are re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from synthetic_data import plugins
from synthetic_data.checks import check_int as _check_int
from synthetic_data.checks import check_real as _check_real

FAMILIES = ("dirichlet", "sparse", "topic", "ginc")  # built-in; "plugin" (PLUGIN_FAMILY) is a user generator
PLUGIN_FAMILY = "plugin"
_GEN = plugins.generator_fields()
_EMIT_FLOOR = 1e-9
_STATIONARY_SQUARINGS = 60  # (lazy chain)^(2^60): converged for any chain this suite can build


@dataclass(frozen=True)
class DataSpec:
    """Configuration of an HMM language; every field has a default and is JSON-able.

    n_states: hidden states (for ``ginc``: per component; the HMM has n_hmms * n_states states).
    vocab: words V. context_len: L, the length of a context s.
    concentration: Dirichlet parameter of random rows (all families; small = peaked rows).
    determinism: ``sparse``/``ginc`` mass of each row's favourite entry, in [0, 1].
    n_topics, leak: ``topic`` blocks and the mass that leaves a block, leak in [0, 1].
    n_hmms: ``ginc`` mixture components.
    """

    family: str = "dirichlet"
    n_states: int = 6
    vocab: int = 12
    context_len: int = 6
    concentration: float = 0.3
    determinism: float = 0.9
    n_topics: int = 2
    leak: float = 0.05
    n_hmms: int = 2
    # A user's HMM (family "plugin": explicit matrices or a plug-in class; see synthetic_data.plugins and
    # docs/plugins.md). Left out of the spec's hash while empty, so built-in specs keep their ids.
    generator: str = _GEN[0]
    generator_args: str = _GEN[1]
    generator_digest: str = _GEN[2]

    def check(self) -> None:
        """Raise ValueError("field: message") if any field has an impossible value."""
        if self.family not in FAMILIES + (PLUGIN_FAMILY,):
            raise ValueError(f"family: must be one of {FAMILIES + (PLUGIN_FAMILY,)} (got {self.family!r})")
        _check_int(self.n_states, "n_states", 1)
        _check_int(self.vocab, "vocab", 2)
        _check_int(self.context_len, "context_len", 1)
        _check_real(self.concentration, "concentration", 0.0)
        if self.concentration <= 0:
            raise ValueError(f"concentration: must be > 0 (got {self.concentration})")
        _check_real(self.determinism, "determinism", 0.0)
        if self.determinism > 1:
            raise ValueError(f"determinism: must be in [0, 1] (got {self.determinism})")
        _check_int(self.n_topics, "n_topics", 1)
        _check_real(self.leak, "leak", 0.0)
        if self.leak > 1:
            raise ValueError(f"leak: must be in [0, 1] (got {self.leak})")
        _check_int(self.n_hmms, "n_hmms", 1)
        if (self.family == "plugin") != bool(self.generator):
            raise ValueError("generator: family 'plugin' needs a generator, and a generator needs family 'plugin'")
        if self.family == "topic" and self.n_topics > min(self.n_states, self.vocab):
            raise ValueError(f"n_topics: must be <= min(n_states, vocab) = {min(self.n_states, self.vocab)} "
                             f"for family 'topic' (got {self.n_topics})")

    def to_dict(self) -> dict:
        """Plain dict of the fields, for JSON."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


# --------------------------------------------------------------------------- construction

def _dirichlet_rows(rng: np.random.Generator, n: int, m: int, conc: float) -> np.ndarray:
    rows = rng.dirichlet(np.full(m, conc), size=n)
    # Gamma draws with tiny shape can all underflow to 0 in a row: fall back to uniform there.
    bad = ~np.isfinite(rows).all(axis=1) | (rows.sum(axis=1) <= 0)
    rows[bad] = 1.0 / m
    return rows


def _favourite_rows(rng, n: int, m: int, favourite: np.ndarray, mass: float, conc: float) -> np.ndarray:
    rows = (1.0 - mass) * _dirichlet_rows(rng, n, m, conc)
    rows[np.arange(n), favourite] += mass
    return rows


def _distinct_favourites(rng, n: int, m: int) -> np.ndarray:
    return rng.permutation(m)[:n] if n <= m else rng.integers(m, size=n)


def _blocks(n: int, k: int) -> np.ndarray:
    """Block label of each of n items cut into k contiguous, near-equal blocks."""
    return (np.arange(n) * k) // n


def stationary(trans: np.ndarray, start: np.ndarray | None = None) -> np.ndarray:
    """A stationary law of ``trans`` (K, K): the limit of start @ ((I + trans) / 2)^t, start default uniform.

    The lazy chain is aperiodic and has the same stationary laws, so the limit exists for every chain; for a
    reducible chain it is the one reached from ``start``.
    """
    K = trans.shape[0]
    lazy = 0.5 * (np.eye(K) + trans)
    for _ in range(_STATIONARY_SQUARINGS):
        nxt = lazy @ lazy
        nxt /= nxt.sum(axis=1, keepdims=True)
        if np.max(np.abs(nxt - lazy)) < 1e-15:
            lazy = nxt
            break
        lazy = nxt
    pi = (np.full(K, 1.0 / K) if start is None else np.asarray(start, np.float64)) @ lazy
    return pi / pi.sum()


def build_model(spec: DataSpec, rng: np.random.Generator) -> "HMM":
    """Draw the HMM of ``spec``'s family; its random parts are fixed by ``rng`` alone."""
    spec.check()
    K, V, c = spec.n_states, spec.vocab, spec.concentration
    if spec.family == "plugin":
        return plugin_hmm(spec)
    if spec.family == "dirichlet":
        trans = _dirichlet_rows(rng, K, K, c)
        emit = _dirichlet_rows(rng, K, V, c)
    elif spec.family == "sparse":
        trans = _favourite_rows(rng, K, K, rng.permutation(K), spec.determinism, c)
        emit = _favourite_rows(rng, K, V, _distinct_favourites(rng, K, V), spec.determinism, c)
    elif spec.family == "topic":
        sb, wb = _blocks(K, spec.n_topics), _blocks(V, spec.n_topics)
        inside_t = _dirichlet_rows(rng, K, K, c) * (sb[:, None] == sb[None, :])
        inside_e = _dirichlet_rows(rng, K, V, c) * (sb[:, None] == wb[None, :])
        inside_t = _renorm_or_uniform(inside_t, sb[:, None] == sb[None, :])
        inside_e = _renorm_or_uniform(inside_e, sb[:, None] == wb[None, :])
        trans = (1 - spec.leak) * inside_t + spec.leak * _dirichlet_rows(rng, K, K, c)
        emit = (1 - spec.leak) * inside_e + spec.leak * _dirichlet_rows(rng, K, V, c)
    else:  # ginc
        M = spec.n_hmms
        emit1 = _favourite_rows(rng, K, V, _distinct_favourites(rng, K, V), spec.determinism, c)
        trans = np.zeros((M * K, M * K))
        init = np.zeros(M * K)
        for m in range(M):
            t_m = _favourite_rows(rng, K, K, rng.permutation(K), spec.determinism, c)
            sl = slice(m * K, (m + 1) * K)
            trans[sl, sl] = t_m
            init[sl] = stationary(t_m) / M
        return HMM(init, trans, np.tile(emit1, (M, 1)), spec)
    return HMM(stationary(trans), trans, emit, spec)


def _renorm_or_uniform(rows: np.ndarray, mask: np.ndarray) -> np.ndarray:
    s = rows.sum(axis=1, keepdims=True)
    uni = mask / mask.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(s > 0, rows / np.where(s > 0, s, 1.0), uni)


# --------------------------------------------------------------------------- the HMM

class HMM:
    """An HMM language: init (K,), trans (K, K), emit (K, V), float64, rows summing to 1.

    Batched exact inference over n contexts at once; every recursion is normalised at each step and accumulates
    the log normalisers, so contexts of any length stay finite and normalised (the scaled forward algorithm, the
    log-space forward algorithm up to where the logs are taken).
    """

    def __init__(self, init, trans, emit, spec: DataSpec | None = None):
        self.init = np.asarray(init, dtype=np.float64)
        self.trans = np.asarray(trans, dtype=np.float64)
        emit = np.maximum(np.asarray(emit, dtype=np.float64), _EMIT_FLOOR)
        self.emit = emit / emit.sum(axis=1, keepdims=True)
        self.spec = spec
        K, V = self.emit.shape
        if self.init.shape != (K,) or self.trans.shape != (K, K):
            raise ValueError(f"trans: shapes init {self.init.shape}, trans {self.trans.shape}, emit {self.emit.shape} "
                             "do not agree")
        for name, a in (("init", self.init), ("trans", self.trans)):
            if np.any(a < 0) or np.any(np.abs(a.sum(axis=-1) - 1) > 1e-9):
                raise ValueError(f"{name}: must be non-negative with rows summing to 1")
        self.n_states, self.vocab = K, V

    # ---- sampling

    def sample(self, n: int, length: int, rng: np.random.Generator):
        """n documents of ``length`` words from the stationary process: (words (n, length), states (n, length))."""
        _check_int(n, "n", 0)
        _check_int(length, "length", 0)
        words = np.empty((n, length), dtype=np.int64)
        states = np.empty((n, length), dtype=np.int64)
        ct, ce = np.cumsum(self.trans, axis=1), np.cumsum(self.emit, axis=1)
        h = _draw(np.broadcast_to(np.cumsum(self.init), (n, self.n_states)), rng)
        for t in range(length):
            if t > 0:
                h = _draw(ct[h], rng)
            states[:, t] = h
            words[:, t] = _draw(ce[h], rng)
        return words, states

    def sample_contexts(self, n: int, rng: np.random.Generator, length: int | None = None):
        """n contexts of ``length`` (default spec.context_len) words with their hidden states; see ``sample``."""
        return self.sample(n, self._length(length), rng)

    def _length(self, length):
        if length is None:
            if self.spec is None:
                raise ValueError("length: required when the HMM has no spec")
            return self.spec.context_len
        return length

    # ---- exact inference

    def _words(self, words) -> np.ndarray:
        w = np.asarray(words)
        if w.ndim != 2:
            raise ValueError(f"words: must have shape (n, L) (got {w.shape})")
        if w.size and (not np.issubdtype(w.dtype, np.integer) or w.min() < 0 or w.max() >= self.vocab):
            raise ValueError(f"words: must be integers in [0, {self.vocab})")
        return w.astype(np.int64, copy=False)

    def _forward(self, words: np.ndarray):
        """(P(h_{L+1} | s) (n, K), log P(s) (n,)): filter then predict, normalising at each step."""
        n, L = words.shape
        pred = np.broadcast_to(self.init, (n, self.n_states)).copy()
        logp = np.zeros(n)
        for t in range(L):
            a = pred * self.emit[:, words[:, t]].T
            c = a.sum(axis=1)
            logp += np.log(c)
            pred = (a / c[:, None]) @ self.trans
        return pred, logp

    def next_state(self, words) -> np.ndarray:
        """P(h_{L+1} | s) for each context s = words[i], shape (n, K); forward filtering, batched over n."""
        return self._forward(self._words(words))[0]

    def next_word(self, words) -> np.ndarray:
        """p*(. | s) = P(h_{L+1} | s) @ emit, shape (n, V): the theorem's p*_s."""
        return self.next_state(words) @ self.emit

    def log_prob(self, words) -> np.ndarray:
        """log P(s) (natural log) of each context, shape (n,), under the stationary process."""
        return self._forward(self._words(words))[1]

    def _smoothing(self, words: np.ndarray, pos: int):
        """(P(h_pos | w_<pos) (n, K), b (n, K) proportional to P(w_>pos | h_pos)), both per-step normalised."""
        n, L = words.shape
        if isinstance(pos, bool) or not isinstance(pos, (int, np.integer)) or not 0 <= pos < L:
            raise ValueError(f"pos: must be an integer in [0, {L}) (got {pos!r})")
        pred, _ = self._forward(words[:, :pos])
        back = np.ones((n, self.n_states))
        for t in range(L - 1, pos, -1):
            back = (back * self.emit[:, words[:, t]].T) @ self.trans.T
            back /= back.sum(axis=1, keepdims=True)
        return pred, back

    def masked_word(self, words, pos: int) -> np.ndarray:
        """p*(w_pos = . | all other words of s), shape (n, V); forward-backward. words[:, pos] is ignored."""
        pred, back = self._smoothing(self._words(words), pos)
        p = (pred * back) @ self.emit
        return p / p.sum(axis=1, keepdims=True)

    def state_posterior(self, words, pos: int) -> np.ndarray:
        """P(h_pos | s), shape (n, K): the smoothed posterior of one hidden state given the whole context."""
        w = self._words(words)
        pred, back = self._smoothing(w, pos)
        q = pred * back * self.emit[:, w[:, pos]].T
        return q / q.sum(axis=1, keepdims=True)

    def enumerate_contexts(self, L: int | None = None, limit: int = 200_000):
        """Every context of length L (default spec.context_len) with its probability: (words (V^L, L), prob).

        Rows in lexicographic order; prob = exp(log_prob), which sums to 1. ValueError when V^L > limit.
        """
        L = self._length(L)
        _check_int(L, "L", 0)
        if self.vocab ** L > limit:
            raise ValueError(f"L: V^L = {self.vocab}^{L} = {self.vocab ** L} contexts exceed limit={limit}")
        idx = np.arange(self.vocab ** L)
        words = np.stack(np.unravel_index(idx, (self.vocab,) * L), axis=1).astype(np.int64) if L else \
            np.zeros((1, 0), dtype=np.int64)
        return words, np.exp(self.log_prob(words))


def _draw(cdf: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One index per row from row-wise cumulative sums (n, m)."""
    u = rng.random(cdf.shape[0]) * cdf[:, -1]
    return np.minimum(np.sum(cdf <= u[:, None], axis=1), cdf.shape[1] - 1).astype(np.int64)


# ------------------------------------------------------------------------------------------------ plug-ins
PLUGIN_PROTOCOL = {
    "init": "init() -> (K,) initial state law",
    "trans": "trans() -> (K, K) transition matrix, rows summing to 1",
    "emit": "emit() -> (K, V) emission matrix, rows summing to 1",
}
# Optional: sample(n, length, rng) -> (n, length) int words, the plug-in's own sampler. The suite always samples
# from the declared matrices (it needs the hidden states); the plug-in's sampler is used only to test that the
# matrices it declares are the law it samples from.
N_CHECK_DOCS = 40_000


class ExplicitHMM:
    """The built-in "plug-in" for an HMM given by its matrices (``[data] init, trans, emit`` of ``sslt check``)."""

    def __init__(self, init, trans, emit):
        self._init, self._trans, self._emit = (np.asarray(a, dtype=np.float64) for a in (init, trans, emit))

    def init(self):
        return self._init

    def trans(self):
        return self._trans

    def emit(self):
        return self._emit


def _stochastic(name: str, a, shape) -> np.ndarray:
    arr = plugins.as_array(name, a, shape).astype(np.float64)
    if np.any(arr < 0):
        at = np.unravel_index(int(np.argmin(arr)), arr.shape)
        raise plugins.PluginError(f"{name}: must be >= 0 with rows summing to 1 (entry {list(map(int, at))} is "
                                  f"{float(arr[at])!r})")
    if np.max(np.abs(arr.sum(axis=-1) - 1)) > 1e-9:
        raise plugins.PluginError(f"{name}: must be >= 0 with rows summing to 1 "
                                  f"(row sums {np.round(np.atleast_1d(arr.sum(axis=-1)), 6).tolist()})")
    return arr


def plugin_matrices(g) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A plug-in's (init, trans, emit), checked: shapes that agree, entries >= 0, rows summing to 1."""
    emit = np.asarray(g.emit())
    if emit.ndim != 2:
        raise plugins.PluginError(f"emit: expected a (K, V) matrix, got shape {emit.shape}")
    K, V = emit.shape
    return (_stochastic("init", g.init(), (K,)), _stochastic("trans", g.trans(), (K, K)),
            _stochastic("emit", emit, (K, V)))


def plugin_hmm(spec: DataSpec) -> "HMM":
    g = plugins.instantiate(spec.generator, spec.generator_args, PLUGIN_PROTOCOL)
    init, trans, emit = plugin_matrices(g)
    K, V = emit.shape
    if (K, V) != (spec.n_states, spec.vocab):
        raise plugins.PluginError(f"emit: the plug-in has K={K} states and V={V} words, the data spec "
                                  f"n_states={spec.n_states}, vocab={spec.vocab}")
    hmm = HMM(init, trans, emit, spec)
    hmm.plugin = g
    return hmm


def plugin_agreements(hmm: "HMM", rng: np.random.Generator, n_docs: int = N_CHECK_DOCS,
                      n_contexts: int = 8) -> list[plugins.Agreement]:
    """The declared next-word law against the plug-in's own sampler: for the most frequent one- and two-word
    prefixes, the empirical frequency of each next word against p*(w | prefix) from the declared matrices
    (exact forward filtering). A plug-in without a sampler has nothing to compare: empty list."""
    g = getattr(hmm, "plugin", None)
    if g is None or not callable(getattr(g, "sample", None)):
        return []
    words = plugins.as_array("sample", g.sample(n_docs, 3, rng), (n_docs, 3), kind="i").astype(np.int64)
    if words.min() < 0 or words.max() >= hmm.vocab:
        raise plugins.PluginError(f"sample: words must lie in [0, {hmm.vocab})")
    out = []
    for m in (1, 2):
        prefixes, counts = np.unique(words[:, :m], axis=0, return_counts=True)
        for prefix in prefixes[np.argsort(-counts)][:n_contexts]:
            rows = np.all(words[:, :m] == prefix, axis=1)
            declared = hmm.next_word(prefix[None, :])[0]
            out += plugins.frequency_agreements(f"p*(w | s = {prefix.tolist()})", declared, words[rows, m])
    out += plugins.frequency_agreements("P(w_1 = w)", hmm.init @ hmm.emit, words[:, 0])
    # p* as a distribution at every position of every sampled document, not only after the frequent prefixes:
    # its log loss on the sampled next words against the entropy it implies
    laws = [np.broadcast_to(hmm.init @ hmm.emit, (n_docs, hmm.vocab))] + [hmm.next_word(words[:, :m]) for m in (1, 2)]
    law = np.concatenate(laws)
    seen = np.concatenate([words[:, m] for m in range(3)])
    return out + [plugins.log_loss_agreement("p*(w | s) over every prefix", law[np.arange(seen.size), seen], law)]


from synthetic_data.language_tasks import TASK_KINDS, Task, TaskSpec, balanced_threshold, make_task  # noqa: E402,F401

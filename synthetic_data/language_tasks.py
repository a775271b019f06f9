"""Downstream binary tasks defined from an HMM language's exact p*_s: natural tasks (Saunshi et al., ICLR 2021) [recon].

Labels y in {-1, +1}. With m_s = v . p*_{c(s)} + b, where c(s) is the task's context (s itself, or s followed by
a fixed prompt):

* ``logistic``: y ~ Bernoulli(sigmoid(m_s)): well specified, the plug-in (v, b) is Bayes optimal.
* ``deterministic``: y = sign(m_s) (label_prob = 1[m_s > 0]).
* ``prompt``: logistic on the prompted context c(s) = s + prompt words; s has length
  ``context_len - len(prompt)`` so that c(s) has the LM's context length.
* ``non_natural``: P(y = +1 | s, h) = (1 - w) sigmoid(m_s) + w 1[g(h_pos) = +1], w = ``hidden_weight``, with a
  fixed sign g on hidden states, h_pos the hidden state at context position ``hidden_pos`` (default 0, the
  first word's). p*_s is a function of the filtered posterior of h_{L+1} only, so it forgets h_1 in a mixing chain:
  no v reaches a small loss, and tau_fit flags "assumption not met". (hidden_pos = -1 uses h_L instead; that is
  only weakly non-natural, since P(h_L | s) is a linear image of p*_s whenever trans @ emit has rank K.)

v has half-range exactly B (max v - min v = 2B; by 1^T p = 1 and a free bias only the half-range matters). Its
direction: ``pca`` (default) is the top principal direction of p*_{c(s)} over ``n_fit`` sampled contexts, so v . p*
varies as much as a half-range B allows (a random v on a spread-out p* gives nearly constant margins, labels close
to coin flips and tau close to log 2); ``random`` draws the direction uniformly. b = -median of v . p* on the same
sample (precisely: a threshold midway between two distinct sampled margins, so no sampled context sits on the
boundary), so labels are roughly balanced.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

TASK_KINDS = ("logistic", "deterministic", "prompt", "non_natural")
DIRECTIONS = ("pca", "random")
_SIGN_DRAWS = 256


@dataclass(frozen=True)
class TaskSpec:
    """Configuration of a downstream task; every field has a default and is JSON-able.

    kind: one of TASK_KINDS. B: half-range of v (> 0). prompt: word ids appended to s (kind 'prompt', non-empty).
    hidden_weight: non_natural's share of the label taken from the hidden state, in [0, 1].
    hidden_pos: non_natural's context position whose hidden state sets the label (Python index into the context).
    direction: 'pca' or 'random' (see module docstring). n_fit: contexts sampled to choose v and b.
    """

    kind: str = "logistic"
    B: float = 2.0
    prompt: tuple[int, ...] = ()
    hidden_weight: float = 1.0
    hidden_pos: int = 0
    direction: str = "pca"
    n_fit: int = 4096

    def __post_init__(self) -> None:
        if isinstance(self.prompt, list):
            object.__setattr__(self, "prompt", tuple(self.prompt))

    def check(self) -> None:
        """Raise ValueError("field: message") if any field has an impossible value."""
        if self.kind not in TASK_KINDS:
            raise ValueError(f"kind: must be one of {TASK_KINDS} (got {self.kind!r})")
        if isinstance(self.B, bool) or not isinstance(self.B, (int, float, np.integer, np.floating)) \
                or not math.isfinite(self.B) or self.B <= 0:
            raise ValueError(f"B: must be a finite number > 0 (got {self.B!r})")
        if not isinstance(self.prompt, tuple) or any(
                isinstance(w, bool) or not isinstance(w, (int, np.integer)) or w < 0 for w in self.prompt):
            raise ValueError(f"prompt: must be a tuple of word ids >= 0 (got {self.prompt!r})")
        if self.kind == "prompt" and not self.prompt:
            raise ValueError("prompt: must name at least one word id for kind 'prompt'")
        if self.kind != "prompt" and self.prompt:
            raise ValueError(f"prompt: only used with kind 'prompt' (kind is {self.kind!r})")
        w = self.hidden_weight
        if isinstance(w, bool) or not isinstance(w, (int, float, np.integer, np.floating)) \
                or not math.isfinite(w) or not 0 <= w <= 1:
            raise ValueError(f"hidden_weight: must be in [0, 1] (got {w!r})")
        if isinstance(self.hidden_pos, bool) or not isinstance(self.hidden_pos, (int, np.integer)):
            raise ValueError(f"hidden_pos: must be an integer (got {self.hidden_pos!r})")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction: must be one of {DIRECTIONS} (got {self.direction!r})")
        if isinstance(self.n_fit, bool) or not isinstance(self.n_fit, (int, np.integer)) or self.n_fit < 2:
            raise ValueError(f"n_fit: must be an integer >= 2 (got {self.n_fit!r})")

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["prompt"] = list(out["prompt"])
        return out


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -z))


@dataclass(frozen=True, eq=False)
class Task:
    """A drawn task: v (V,), b, prompt (P,) int64, hidden_sign (K,) in {-1, +1} (used by non_natural only)."""

    spec: TaskSpec
    v: np.ndarray
    b: float
    prompt: np.ndarray
    hidden_sign: np.ndarray

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def B(self) -> float:
        """Half-range of v (= spec.B)."""
        return 0.5 * float(self.v.max() - self.v.min())

    def base_len(self, L: int) -> int:
        """Length of s whose task context c(s) has length L (L - len(prompt) for the prompt kind)."""
        return L - self.prompt.shape[0]

    def context(self, words) -> np.ndarray:
        """The task's context c(s) for each s = words[i]: s followed by the prompt, shape (n, L + P)."""
        w = np.asarray(words, dtype=np.int64)
        if not self.prompt.size:
            return w
        return np.concatenate([w, np.broadcast_to(self.prompt, (w.shape[0], self.prompt.size))], axis=1)

    def features(self, hmm, words) -> np.ndarray:
        """p*_{c(s)}, shape (n, V): the features on which the task is natural."""
        return hmm.next_word(self.context(words))

    def margin(self, hmm, words) -> np.ndarray:
        """v . p*_{c(s)} + b, shape (n,)."""
        return self.features(hmm, words) @ self.v + self.b

    def _hidden_pos(self, L: int) -> int:
        pos = int(self.spec.hidden_pos)
        if not -L <= pos < L:
            raise ValueError(f"hidden_pos: must index a context of length {L} (got {pos})")
        return pos % L

    def label_prob(self, hmm, words, states) -> np.ndarray:
        """P(y = +1 | s, hidden states), shape (n,); states (n, L) are the context's hidden states."""
        m = self.margin(hmm, words)
        if self.kind == "deterministic":
            return (m > 0).astype(np.float64)
        p = _sigmoid(m)
        if self.kind != "non_natural":
            return p
        st = np.asarray(states, dtype=np.int64)
        h = st[:, self._hidden_pos(st.shape[1])]
        w = float(self.spec.hidden_weight)
        return (1 - w) * p + w * (self.hidden_sign[h] > 0)

    def context_label_prob(self, hmm, words) -> np.ndarray:
        """P(y = +1 | s), shape (n,): label_prob averaged over the hidden states given s (forward-backward).

        The logistic loss is linear in the label's law, so the population loss of any probe on s-features is
        computed exactly from this (for the natural kinds it equals label_prob).
        """
        if self.kind != "non_natural":
            return self.label_prob(hmm, words, None)
        w_arr = np.asarray(words, dtype=np.int64)
        post = hmm.state_posterior(w_arr, self._hidden_pos(w_arr.shape[1]))
        w = float(self.spec.hidden_weight)
        return (1 - w) * _sigmoid(self.margin(hmm, w_arr)) + w * (post @ (self.hidden_sign > 0))

    def sample_labels(self, hmm, words, states, rng: np.random.Generator) -> np.ndarray:
        """Labels in {-1, +1}, shape (n,) int64, y ~ Bernoulli(label_prob)."""
        p = self.label_prob(hmm, words, states)
        return np.where(rng.random(p.shape[0]) < p, 1, -1).astype(np.int64)

    def context_laws(self, hmm, L: int | None = None, limit: int = 200_000):
        """Exact laws for the transfer coefficient: (s (m, L'), p_task (m,), p_lm (m,)).

        s runs over every base context (L' = base_len(L), L default spec.context_len); p_task(c(s)) = P(s) is the
        task's law of its context c(s), p_lm(c(s)) = P(c(s)) the LM's law of the same length-L context (for the
        prompt kind P(s) P(prompt | s); otherwise equal to p_task).
        """
        L = hmm.spec.context_len if L is None else L
        s, p_task = hmm.enumerate_contexts(self.base_len(L), limit=limit)
        p_lm = np.exp(hmm.log_prob(self.context(s))) if self.prompt.size else p_task.copy()
        return s, p_task, p_lm


def make_task(spec: TaskSpec, hmm, rng: np.random.Generator, context_len: int | None = None) -> Task:
    """Draw v, b (and the hidden sign of non_natural) for ``spec`` on ``hmm``; fixed by ``rng`` alone.

    context_len: the LM's context length L (default hmm.spec.context_len); the prompt kind's s has L - len(prompt).
    """
    spec.check()
    L = hmm.spec.context_len if context_len is None else context_len
    prompt = np.asarray(spec.prompt, dtype=np.int64)
    if prompt.size and prompt.max() >= hmm.vocab:
        raise ValueError(f"prompt: word ids must be < vocab={hmm.vocab} (got {spec.prompt})")
    if prompt.size >= L:
        raise ValueError(f"prompt: must be shorter than the context length {L} (got {prompt.size} words)")
    V = hmm.vocab
    probe = Task(spec, np.zeros(V), 0.0, prompt, np.ones(hmm.n_states))
    words, _ = hmm.sample(int(spec.n_fit), probe.base_len(L), rng)
    feats = probe.features(hmm, words)
    u = None
    if spec.direction == "pca":
        _, vecs = np.linalg.eigh(np.cov(feats, rowvar=False))
        u = vecs[:, -1] * rng.choice([-1.0, 1.0])
    if u is None or np.ptp(u) < 1e-12:
        u = rng.uniform(-1.0, 1.0, V)
    v = float(spec.B) * (2.0 * (u - u.min()) / np.ptp(u) - 1.0)
    b = -balanced_threshold(feats @ v)
    return Task(spec, v, b, prompt, _balanced_signs(hmm.init, rng))


def balanced_threshold(m, weights=None) -> float:
    """A threshold between two distinct margins m (n,) that splits their (weighted) mass as evenly as possible.

    Not the median itself: contexts are discrete, so the median is some context's margin, and a deterministic label
    sign(m - threshold) would be decided by rounding on every copy of that context. make_task sets b = -threshold.
    """
    m = np.asarray(m, dtype=np.float64).reshape(-1)
    w = np.ones_like(m) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    order = np.argsort(m, kind="stable")
    srt, cw = m[order], np.cumsum(w[order]) / np.sum(w)
    u = np.unique(srt)
    if u.size == 1:
        return float(u[0]) + 1.0
    below = cw[np.searchsorted(srt, u[:-1], side="right") - 1]  # mass at or below each distinct value
    j = int(np.argmin(np.abs(below - 0.5)))
    return 0.5 * float(u[j] + u[j + 1])


def _balanced_signs(pi: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Signs g (K,) with both values present (K >= 2) and P_pi(g = +1) as close to 1/2 as a few draws allow."""
    K = pi.shape[0]
    if K == 1:
        return np.ones(1)
    g = rng.choice([-1.0, 1.0], size=(_SIGN_DRAWS, K))
    g[:, 0], g[:, 1] = 1.0, -1.0  # both signs present; the shuffle below hides which states
    g = rng.permuted(g, axis=1)
    best = int(np.argmin(np.abs((g > 0) @ pi - 0.5)))
    return g[best]

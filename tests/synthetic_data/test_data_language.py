"""Tests of the HMM language synthetic_data/language.py (+ language_tasks.py) against brute-force path sums."""

import dataclasses
import itertools
import json

import numpy as np
import pytest
from scipy.stats import chisquare

from synthetic_data.language import (FAMILIES, TASK_KINDS, HMM, DataSpec, TaskSpec, balanced_threshold, build_model,
                                     make_task)

TINY = {  # every family, small enough to sum over all hidden paths; sparse has more states than words
    "dirichlet": dict(n_states=3, vocab=3),
    "sparse": dict(n_states=3, vocab=2, determinism=0.7),
    "topic": dict(n_states=3, vocab=3, n_topics=2, leak=0.2),
    "ginc": dict(n_states=2, vocab=3, n_hmms=2, determinism=0.8),
}


def _tiny(family, seed=0, L=3):
    return build_model(DataSpec(family=family, context_len=L, **TINY[family]), np.random.default_rng(seed))


def _path_joint(hmm, words):
    """P(words, h_1..h_T) for every hidden path by an explicit product: (n, K^T), paths (K^T, T)."""
    words = np.asarray(words)
    n, T = words.shape
    paths = np.array(list(itertools.product(range(hmm.n_states), repeat=T)), dtype=np.int64).reshape(-1, T)
    out = np.zeros((n, len(paths)))
    for j, h in enumerate(paths):
        pr = np.full(n, hmm.init[h[0]]) if T else np.ones(n)
        for t in range(T):
            if t:
                pr = pr * hmm.trans[h[t - 1], h[t]]
            pr = pr * hmm.emit[h[t], words[:, t]]
        out[:, j] = pr
    return out, paths


def _all_words(V, L):
    return np.array(list(itertools.product(range(V), repeat=L)), dtype=np.int64).reshape(-1, L)


def _freq_ok(counts, probs):
    counts, probs = np.asarray(counts, float), np.asarray(probs, float)
    return chisquare(counts, probs / probs.sum() * counts.sum()).pvalue > 1e-4


# ------------------------------------------------------------------ spec

@pytest.mark.parametrize("kwargs,field", [
    ({"family": "ngram"}, "family"),
    ({"n_states": 0}, "n_states"),
    ({"vocab": 1}, "vocab"),
    ({"context_len": 0}, "context_len"),
    ({"concentration": 0.0}, "concentration"),
    ({"concentration": float("inf")}, "concentration"),
    ({"determinism": 1.5}, "determinism"),
    ({"determinism": -0.1}, "determinism"),
    ({"leak": 2.0}, "leak"),
    ({"n_topics": 0}, "n_topics"),
    ({"family": "topic", "n_topics": 7, "n_states": 6}, "n_topics"),
    ({"n_hmms": 0}, "n_hmms"),
    ({"n_states": 2.0}, "n_states"),
    ({"vocab": True}, "vocab"),
])
def test_check_rejects_bad_specs(kwargs, field):
    spec = DataSpec(**kwargs)
    with pytest.raises(ValueError, match=f"^{field}:"):
        spec.check()
    with pytest.raises(ValueError, match=f"^{field}:"):
        build_model(spec, np.random.default_rng(0))


def test_default_spec_valid_hashable_json():
    DataSpec().check()
    assert hash(DataSpec()) == hash(DataSpec())
    assert all(f.default is not dataclasses.MISSING for f in dataclasses.fields(DataSpec))
    s = DataSpec(family="ginc", n_hmms=3)
    assert DataSpec(**json.loads(json.dumps(s.to_dict()))) == s


# ------------------------------------------------------------------ construction

@pytest.mark.parametrize("family", FAMILIES)
def test_families_are_stochastic_stationary_and_deterministic(family):
    spec = DataSpec(family=family)
    h = build_model(spec, np.random.default_rng(3))
    K = spec.n_states * (spec.n_hmms if family == "ginc" else 1)
    assert h.trans.shape == (K, K) and h.emit.shape == (K, spec.vocab) and h.init.shape == (K,)
    for a in (h.init, h.trans, h.emit):
        assert np.all(a >= 0)
        np.testing.assert_allclose(a.sum(axis=-1), 1.0, atol=1e-12)
    assert np.all(h.emit > 0)  # every context has positive probability
    np.testing.assert_allclose(h.init @ h.trans, h.init, atol=1e-12)  # stationary
    h2 = build_model(spec, np.random.default_rng(3))
    for a, b in ((h.init, h2.init), (h.trans, h2.trans), (h.emit, h2.emit)):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(build_model(spec, np.random.default_rng(4)).emit, h.emit)


def test_family_structure():
    sp = build_model(DataSpec(family="sparse", determinism=0.9), np.random.default_rng(0))
    assert np.all(sp.trans.max(axis=1) >= 0.9) and np.all(sp.emit.max(axis=1) >= 0.9 - 1e-6)
    assert len(set(sp.emit.argmax(axis=1))) == sp.n_states  # distinct favourite words (K <= V)
    tp = build_model(DataSpec(family="topic", n_states=6, vocab=12, n_topics=2, leak=0.05),
                     np.random.default_rng(0))
    sb, wb = np.arange(6) // 3, np.arange(12) // 6
    assert np.all((tp.trans * (sb[:, None] == sb[None, :])).sum(1) >= 0.95 - 1e-12)
    assert np.all((tp.emit * (sb[:, None] == wb[None, :])).sum(1) >= 0.95 - 1e-6)
    g = build_model(DataSpec(family="ginc", n_states=3, n_hmms=2), np.random.default_rng(0))
    assert np.all(g.trans[:3, 3:] == 0) and np.all(g.trans[3:, :3] == 0)  # the concept never changes
    np.testing.assert_array_equal(g.emit[:3], g.emit[3:])  # shared emissions
    np.testing.assert_allclose(g.init[:3].sum(), 0.5, atol=1e-12)
    assert not np.allclose(g.trans[:3, :3], g.trans[3:, 3:])


# ------------------------------------------------------------------ exact inference vs brute force

@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("L", [1, 3])
def test_forward_filtering_matches_path_sums(family, L):
    h = _tiny(family, seed=L)
    s = _all_words(h.vocab, L)
    ext = np.concatenate([np.repeat(s, h.vocab, axis=0), np.tile(np.arange(h.vocab), len(s))[:, None]], axis=1)
    joint, paths = _path_joint(h, ext)  # P(s, w, h_1..h_{L+1})
    p_sw = joint.sum(axis=1).reshape(len(s), h.vocab)
    p_s = p_sw.sum(axis=1)
    np.testing.assert_allclose(h.log_prob(s), np.log(p_s), rtol=1e-12)
    np.testing.assert_allclose(h.next_word(s), p_sw / p_s[:, None], atol=1e-13)
    # P(h_{L+1} = k | s): sum over w of P(s, w, h) on the paths ending in k
    p_sk = np.stack([(joint[:, paths[:, -1] == k]).sum(axis=1) for k in range(h.n_states)], axis=1)
    p_sk = p_sk.reshape(len(s), h.vocab, h.n_states).sum(axis=1)
    np.testing.assert_allclose(h.next_state(s), p_sk / p_s[:, None], atol=1e-13)


@pytest.mark.parametrize("family", FAMILIES)
def test_forward_backward_matches_path_sums(family):
    h, L = _tiny(family, seed=7, L=4), 4
    s = _all_words(h.vocab, L)
    for pos in range(L):
        joint, paths = _path_joint(h, s)
        # p(w_pos = w | rest): the contexts that agree off pos, normalised over w
        rest = np.delete(s, pos, axis=1)
        key = np.ravel_multi_index(rest.T, (h.vocab,) * (L - 1)) if L > 1 else np.zeros(len(s), int)
        tot = np.bincount(key, weights=joint.sum(1))
        want = np.zeros((len(s), h.vocab))
        for i in range(len(s)):
            same = np.nonzero(key == key[i])[0]
            want[i, s[same, pos]] = joint[same].sum(1) / tot[key[i]]
        got = h.masked_word(s, pos)
        np.testing.assert_allclose(got, want, atol=1e-13)
        # the masked word is ignored: changing it changes nothing
        s2 = s.copy()
        s2[:, pos] = (s2[:, pos] + 1) % h.vocab
        np.testing.assert_allclose(h.masked_word(s2, pos), got, atol=1e-15)
        post = np.stack([joint[:, paths[:, pos] == k].sum(1) for k in range(h.n_states)], axis=1)
        np.testing.assert_allclose(h.state_posterior(s, pos), post / post.sum(1, keepdims=True), atol=1e-13)


def test_bad_words_and_positions():
    h = _tiny("dirichlet")
    with pytest.raises(ValueError, match="^words"):
        h.next_word(np.array([[0, 3]]))
    with pytest.raises(ValueError, match="^words"):
        h.next_word(np.array([0, 1]))
    with pytest.raises(ValueError, match="^pos"):
        h.masked_word(np.array([[0, 1]]), 2)


def test_enumerate_contexts():
    h = _tiny("topic", L=4)
    w, p = h.enumerate_contexts()
    assert w.shape == (3 ** 4, 4)
    np.testing.assert_array_equal(w, _all_words(3, 4))  # lexicographic
    assert p.sum() == pytest.approx(1.0, abs=1e-13)
    np.testing.assert_allclose(np.log(p), h.log_prob(w), rtol=1e-14)
    np.testing.assert_allclose(p, _path_joint(h, w)[0].sum(1), rtol=1e-12)
    with pytest.raises(ValueError, match="^L"):
        h.enumerate_contexts(4, limit=80)
    w0, p0 = h.enumerate_contexts(0)
    assert w0.shape == (1, 0) and p0[0] == pytest.approx(1.0)


@pytest.mark.parametrize("family", FAMILIES)
def test_long_context_is_stable(family):
    h = build_model(DataSpec(family=family), np.random.default_rng(1))
    w, _ = h.sample(4, 500, np.random.default_rng(2))
    for p in (h.next_word(w), h.masked_word(w, 250), h.masked_word(w, 0), h.next_state(w), h.state_posterior(w, 499)):
        assert np.all(np.isfinite(p)) and np.all(p >= 0)
        np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)
    lp = h.log_prob(w)
    assert np.all(np.isfinite(lp)) and np.all(lp < -100)  # far below float64's exp range: per-step scaling works


# ------------------------------------------------------------------ sampling

@pytest.mark.parametrize("family", FAMILIES)
def test_samples_follow_the_exact_law(family):
    h = _tiny(family, seed=2)
    n = 30000
    w, st = h.sample(n, 4, np.random.default_rng(5))
    assert w.dtype == np.int64 and st.dtype == np.int64 and w.shape == st.shape == (n, 4)
    s, p = h.enumerate_contexts(2)
    key = w[:, 0] * h.vocab + w[:, 1]
    assert _freq_ok(np.bincount(key, minlength=len(p)), p)
    # windows cut later in the document have the same law (init is stationary)
    assert _freq_ok(np.bincount(w[:, 2] * h.vocab + w[:, 3], minlength=len(p)), p)
    # (s, next word): P(s) p*(w | s) from forward filtering
    sw = (key * h.vocab + w[:, 2])
    assert _freq_ok(np.bincount(sw, minlength=len(p) * h.vocab), (p[:, None] * h.next_word(s)).ravel())
    # emissions given the sampled states
    for k in range(h.n_states):
        sel = st[:, 1] == k
        if sel.sum() > 200:
            assert _freq_ok(np.bincount(w[sel, 1], minlength=h.vocab), h.emit[k])
    w2, _ = h.sample(n, 4, np.random.default_rng(5))
    np.testing.assert_array_equal(w, w2)


# ------------------------------------------------------------------ tasks

def _sig(z):
    return 1.0 / (1.0 + np.exp(-z))


@pytest.mark.parametrize("kwargs,field", [
    ({"kind": "regression"}, "kind"),
    ({"B": 0.0}, "B"),
    ({"B": float("nan")}, "B"),
    ({"kind": "prompt"}, "prompt"),
    ({"prompt": (1,)}, "prompt"),
    ({"kind": "prompt", "prompt": (-1,)}, "prompt"),
    ({"hidden_weight": 1.5}, "hidden_weight"),
    ({"hidden_pos": 0.5}, "hidden_pos"),
    ({"direction": "up"}, "direction"),
    ({"n_fit": 1}, "n_fit"),
])
def test_task_check_rejects_bad_specs(kwargs, field):
    with pytest.raises(ValueError, match=f"^{field}:"):
        TaskSpec(**kwargs).check()
    TaskSpec().check()
    h = _tiny("dirichlet")
    with pytest.raises(ValueError, match="^prompt"):
        make_task(TaskSpec(kind="prompt", prompt=(5,)), h, np.random.default_rng(0))
    with pytest.raises(ValueError, match="^prompt"):
        make_task(TaskSpec(kind="prompt", prompt=(0, 1, 2)), h, np.random.default_rng(0))


@pytest.mark.parametrize("kind", TASK_KINDS)
@pytest.mark.parametrize("direction", ["pca", "random"])
def test_task_vector_and_balance(kind, direction):
    h = build_model(DataSpec(family="topic"), np.random.default_rng(0))
    spec = TaskSpec(kind=kind, B=1.5, direction=direction, prompt=(2, 5) if kind == "prompt" else ())
    t = make_task(spec, h, np.random.default_rng(1))
    assert t.v.shape == (h.vocab,)
    assert 0.5 * (t.v.max() - t.v.min()) == pytest.approx(1.5, abs=1e-12) and t.B == pytest.approx(1.5)
    assert np.max(np.abs(t.v)) == pytest.approx(1.5, abs=1e-12)
    w, st = h.sample(4000, t.base_len(6), np.random.default_rng(2))
    y = t.sample_labels(h, w, st, np.random.default_rng(3))
    assert set(np.unique(y)) <= {-1, 1}
    assert 0.2 < np.mean(y > 0) < 0.8  # b makes the labels roughly balanced
    t2 = make_task(spec, h, np.random.default_rng(1))
    np.testing.assert_array_equal(t.v, t2.v)
    assert t.b == t2.b


def test_pca_direction_spreads_the_margins():
    h = build_model(DataSpec(family="dirichlet"), np.random.default_rng(0))
    w, _ = h.sample(3000, 6, np.random.default_rng(1))
    sd = {d: np.std(make_task(TaskSpec(direction=d), h, np.random.default_rng(2)).margin(h, w))
          for d in ("pca", "random")}
    assert sd["pca"] > sd["random"]


@pytest.mark.parametrize("family", FAMILIES)
def test_label_probabilities_match_their_definitions(family):
    h = _tiny(family, seed=4)
    s, st = h.sample(500, 3, np.random.default_rng(0))
    rng = np.random.default_rng(1)
    # definitions from brute-force conditionals (path sums), not from the forward filter
    ext = np.concatenate([np.repeat(s, h.vocab, axis=0), np.tile(np.arange(h.vocab), len(s))[:, None]], axis=1)
    p_sw = _path_joint(h, ext)[0].sum(1).reshape(len(s), h.vocab)
    pstar = p_sw / p_sw.sum(1, keepdims=True)
    for kind in ("logistic", "deterministic", "non_natural"):
        t = make_task(TaskSpec(kind=kind, B=3.0), h, rng)
        m = pstar @ t.v + t.b
        got = t.label_prob(h, s, st)
        if kind == "logistic":
            np.testing.assert_allclose(got, _sig(m), atol=1e-12)
        elif kind == "deterministic":
            np.testing.assert_array_equal(got, (m > 0).astype(float))
        else:
            np.testing.assert_allclose(got, (1 - 1.0) * _sig(m) + 1.0 * (t.hidden_sign[st[:, 0]] > 0), atol=1e-12)
            joint, paths = _path_joint(h, s)
            post_plus = (joint * (t.hidden_sign[paths[:, 0]] > 0)).sum(1) / joint.sum(1)
            np.testing.assert_allclose(t.context_label_prob(h, s), post_plus, atol=1e-12)
    t = make_task(TaskSpec(kind="non_natural", hidden_weight=0.3, hidden_pos=-1), h, rng)
    np.testing.assert_allclose(t.label_prob(h, s, st),
                               0.7 * _sig(pstar @ t.v + t.b) + 0.3 * (t.hidden_sign[st[:, -1]] > 0), atol=1e-12)
    assert set(np.unique(t.hidden_sign)) == {-1.0, 1.0}


def test_prompt_features_and_labels():
    h = _tiny("ginc", seed=1, L=3)
    t = make_task(TaskSpec(kind="prompt", prompt=(2,)), h, np.random.default_rng(0))
    assert t.base_len(3) == 2
    s = _all_words(h.vocab, 2)
    c = t.context(s)
    np.testing.assert_array_equal(c[:, :2], s)
    assert np.all(c[:, 2] == 2)
    ext = np.concatenate([np.repeat(c, h.vocab, axis=0), np.tile(np.arange(h.vocab), len(c))[:, None]], axis=1)
    p_cw = _path_joint(h, ext)[0].sum(1).reshape(len(c), h.vocab)
    np.testing.assert_allclose(t.features(h, s), p_cw / p_cw.sum(1, keepdims=True), atol=1e-13)
    np.testing.assert_allclose(t.label_prob(h, s, None), _sig(p_cw / p_cw.sum(1, keepdims=True) @ t.v + t.b),
                               atol=1e-12)
    s_all, p_task, p_lm = t.context_laws(h)
    np.testing.assert_array_equal(s_all, s)
    np.testing.assert_allclose(p_task, _path_joint(h, s)[0].sum(1), rtol=1e-12)
    np.testing.assert_allclose(p_lm, _path_joint(h, c)[0].sum(1), rtol=1e-12)


def test_sampled_labels_follow_label_prob():
    h = _tiny("dirichlet", seed=9)
    t = make_task(TaskSpec(kind="logistic", B=4.0), h, np.random.default_rng(0))
    s = np.zeros((20000, 3), dtype=np.int64)
    s[:, 2] = 1
    q = t.label_prob(h, s[:1], None)[0]
    y = t.sample_labels(h, s, None, np.random.default_rng(1))
    assert abs(np.mean(y > 0) - q) < 4 * np.sqrt(q * (1 - q) / len(y))


def test_hmm_rejects_bad_matrices():
    with pytest.raises(ValueError, match="^trans"):
        HMM(np.ones(2) / 2, np.ones((2, 3)) / 3, np.ones((2, 2)) / 2)
    with pytest.raises(ValueError, match="^init"):
        HMM(np.array([0.7, 0.7]), np.eye(2), np.ones((2, 2)) / 2)


def test_balanced_threshold_splits_between_distinct_margins():
    rng = np.random.default_rng(0)
    for _ in range(20):
        m = rng.integers(0, 6, size=40).astype(float)  # many ties, as on a discrete context set
        w = rng.random(40)
        thr = balanced_threshold(m, w)
        assert not np.any(m == thr)
        u = np.unique(m)
        best = min(abs(w[m <= a].sum() / w.sum() - 0.5) for a in u[:-1])  # brute force over every split
        assert abs(w[m < thr].sum() / w.sum() - 0.5) == pytest.approx(best, abs=1e-12)
    assert balanced_threshold(np.array([1.0, 2.0, 3.0, 4.0])) == 2.5
    assert balanced_threshold(np.full(3, 0.5)) > 0.5  # one value: every label on one side

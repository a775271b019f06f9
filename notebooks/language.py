# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Why language models help downstream: natural tasks (Saunshi, Malladi & Arora, ICLR 2021)
#
# A *natural* task is one a linear function of the true next-word distribution $p^*_s$ solves well. The theorem:
# a language model $\epsilon$-close to optimal in cross-entropy solves such a task linearly, within
# $\tau + \sqrt{2B^2\epsilon/\gamma}$. Here the text comes from a hidden Markov model, so $p^*_s$, $\epsilon$
# and the task's loss are exact. Everything is imported from the suite; nothing is re-implemented.

# %%
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Image, Markdown, display
from matplotlib_inline.backend_inline import set_matplotlib_formats

from experiments import exercises as ex
from experiments.engine import chapters
from experiments.engine import report as lesson
from experiments.exercises import language as check
from synthetic_data import language as data

NAME = "language"
THEOREM = "language.theorem_4_1"
chapter = chapters.get(NAME)
theorem = {t.id: t for t in chapter.theorems}[THEOREM]
work = Path(tempfile.mkdtemp(prefix="sslt-notebook-"))   # this lecture's results directory (a scratch one)
set_matplotlib_formats("png")   # display(fig) shows a PNG under any backend (inline for you, Agg in the tests)

# %% [markdown]
# ## 1. The theorem, as the registry states it

# %%
display(Markdown(lesson.theorems_markdown(NAME, [THEOREM])))

# %% [markdown]
# ## 2. The generator: sentences from an HMM
#
# The quick profile's language: a `sparse` HMM with 4 hidden states and 8 words (each state has a favourite next
# state and a favourite word). Below: sampled sentences, with the hidden states under the words, and the
# transition and emission matrices.

# %%
spec = data.DataSpec(family="sparse", n_states=4, vocab=8, context_len=3)
hmm = data.build_model(spec, np.random.default_rng(0))
words, states = hmm.sample(6, 12, np.random.default_rng(1))
for w, h in zip(words, states):
    print("words : " + " ".join(f"w{x}" for x in w))
    print("states: " + " ".join(f"h{x}" for x in h) + "\n")
fig, ax = plt.subplots(1, 2, figsize=(8, 3.2))
ax[0].imshow(hmm.trans, cmap="Blues", vmin=0, vmax=1)
ax[0].set_title("transitions P(h' | h)")
ax[1].imshow(hmm.emit, cmap="Greens", vmin=0, vmax=1)
ax[1].set_title("emissions P(w | h)")
display(fig)
plt.close(fig)
print("p*(next word | 'w0 w1 w2') =", np.round(hmm.next_word(np.array([[0, 1, 2]]))[0], 3))

# %% [markdown]
# ## 3. Train a small language model, live
#
# The quick profile trimmed to the bound study: a trained MLP LM at several checkpoints, plus LMs at a known
# distance from $p^*$ (noise and tilts of size $\eta$), and $k$-gram models. (The Baum-Welch HMM and the
# full-batch LMs of the quick profile are left out here, to keep the notebook within a minute.)

# %%
OVERRIDES = ["training.enabled=false", "quad.enabled=false", "masked.enabled=false", "em.enabled=false",
             "full_batch.enabled=false"]
run = ex.train(NAME, OVERRIDES, work)
print(run.describe())

# %% [markdown]
# ## 4. The bound from its terms, beside the measurement

# %%
table = lesson.verdict_table(work, run)
rows = table[table["theorem"] == THEOREM]
assert np.allclose(theorem.bound_from(rows), rows["bound_value"], equal_nan=True)
print("terms:", theorem.terms)
print(rows["verdict"].value_counts().to_string())
display(rows.sort_values("slack")[[*theorem.terms, "measured", "bound_value", "verdict", "slack"]].head(6))

# %% [markdown]
# The theorem's own figure (its `figures` names `bound`, drawn by `analysis/language_figures.py`'s `fig_bound`): the
# task loss against the LM's $\epsilon$, with the bound's curve.

# %%
png, = lesson.draw(work, run, theorem.figures[0], work / "figures")
display(Image(filename=str(png)))

# %% [markdown]
# ## 5. Exercises: change a knob, edit a line, check it
#
# Each exercise runs the suite once with a changed knob (cells that did not change are reused from section 3),
# then asks you to edit the cell marked **EXERCISE n** (replace its `...`), and checks what you computed with
# `check.exercise_n`. The answer below it is collapsed: predict first, then open it. Every number in an answer is
# read from the run above it.
#
# **Exercise 1.** Push the LM further from $p^*$: `bound.noise_eta=[0.0, 3.0]`. Predict $\epsilon$ and the
# verdicts at $\eta = 3$. Then write the theorem's bound yourself from its four terms.

# %%
ex1 = [*OVERRIDES, "bound.noise_eta=[0.0, 3.0]"]
run1 = ex.train(NAME, ex1, work)
t1 = lesson.verdict_table(work, run1)
r1 = t1[t1["theorem"] == THEOREM]
print(r1[r1["model"] == "noise"].groupby(["level", "verdict"])[["epsilon", "measured", "bound_value"]].median())

# %% tags=["exercise"]
# EXERCISE 1: edit this cell. Replace the `...` by the bound in tau, B, epsilon and gamma (numpy arrays in, array
# out; natural logarithms).
def theorem_bound(tau, B, epsilon, gamma):
    return ...


# %%
check.exercise_1(theorem_bound, r1)

# %%
check.answer_1(r1)

# %% [markdown]
# **Exercise 2.** A less predictable language: `data.determinism=0.5` (each state's favourite gets half the mass,
# not 0.9). Predict the task's Bayes-level term $\tau$, and how many points are "assumption not met" — and which.
# Then write the naturalness check the verdict uses: a task is natural when the best bounded probe on $p^*$ comes
# within `gap_max` of the Bayes loss (the row's `natural_gap`).

# %%
ex2 = [*OVERRIDES, "data.determinism=0.5"]
run2 = ex.train(NAME, ex2, work)
t2 = lesson.verdict_table(work, run2)
r2 = t2[t2["theorem"] == THEOREM]
print("median tau", r2["tau"].median(), "(was", rows["tau"].median(), ")")
print(r2.groupby(["task", "verdict"]).size().to_string())

# %% tags=["exercise"]
# EXERCISE 2: edit this cell. Replace the `...` by the naturalness check: True where the task is natural
# (numpy arrays in, a boolean array out).
def natural(natural_gap, gap_max):
    return ...


# %%
check.exercise_2(natural, r2)

# %%
check.answer_2(rows, r2)

# %% [markdown]
# ## 6. What we computed

# %%
verdicts = set(rows["verdict"])
assert "violated" not in verdicts and "holds" in verdicts, verdicts
held = rows[rows["verdict"] == "holds"]
assert (held["bound_value"] >= held["measured"]).all()
print(f"{THEOREM}: {len(held)} of {len(rows)} points hold; none violated")

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
# # Predicting what you already know helps (Lee, Lei, Saunshi & Zhuo, NeurIPS 2021)
#
# Two views $X_1, X_2$ of one example and a label $Y$. If the views are conditionally independent given $Y$, the
# pretext target $\psi^*(x_1) = E[X_2 \mid X_1 = x_1]$ is a linear image of the posterior $P(Y \mid x_1)$, so a
# linear probe on $\psi$ needs about $k$ labels where one on raw $X_1$ needs about $d_1$. This notebook states the
# bound from the registry, shows the two views, fits a pretext learner live, and compares the probe's excess risk
# with the bound computed from its terms. Everything comes from the suite; nothing is re-implemented.

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
from experiments.exercises import self_prediction as check
from synthetic_data import self_prediction as data

NAME = "self_prediction"
THEOREM = "self_prediction.exact_ci_chernoff"
chapter = chapters.get(NAME)
theorem = {t.id: t for t in chapter.theorems}[THEOREM]
work = Path(tempfile.mkdtemp(prefix="sslt-notebook-"))   # this lecture's results directory (a scratch one)
set_matplotlib_formats("png")   # display(fig) shows a PNG under any backend (inline for you, Agg in the tests)

# %% [markdown]
# ## 1. The theorems, as the registry states them
#
# Rendered from `theory/self_prediction.py`'s `THEOREMS`: the rigorous exact-CI bound, and the population
# inequality of Theorem 4.2 that covers approximate conditional independence.

# %%
display(Markdown(lesson.theorems_markdown(NAME, [THEOREM, "self_prediction.theorem_4_2_population"])))

# %% [markdown]
# ## 2. The generator: two views, conditionally independent given the label
#
# `exact_ci`: Gaussian class-conditional $X_1 \mid Y$ and $X_2 \mid Y$, drawn independently. Three classes, each
# view in two dimensions so that we can see both.

# %%
spec = data.DataSpec(family="exact_ci", k=3, d1=2, d2=2, separation=3.0)
model = data.build_model(spec, np.random.default_rng(0))
x1, x2, y = model.sample(600, np.random.default_rng(1))
fig, ax = plt.subplots(1, 2, figsize=(8, 3.6))
ax[0].scatter(x1[:, 0], x1[:, 1], c=y, cmap="tab10", s=6)
ax[0].set_title("view 1: $X_1$ by class")
ax[1].scatter(x2[:, 0], x2[:, 1], c=y, cmap="tab10", s=6)
ax[1].set_title("view 2: $X_2$ by class")
display(fig)
plt.close(fig)
print("psi*(x1) = E[X2 | x1] for three points:\n", np.round(model.psi_star(x1[:3]), 3))
print("posterior P(Y | x1):\n", np.round(model.posterior(x1[:3]), 3))

# %% [markdown]
# ## 3. Fit a pretext learner, live
#
# The quick profile trimmed to the sample-complexity study on `exact_ci` with the OLS learner.

# %%
OVERRIDES = ["dimension.enabled=false", "approx_ci.enabled=false", "pretext_budget.enabled=false",
             "violation.enabled=false", "objectives.enabled=false", 'sample_complexity.families=["exact_ci"]',
             'sample_complexity.learners=["linear"]']
run = ex.train(NAME, OVERRIDES, work)
print(run.describe())

# %% [markdown]
# ## 4. The bound from its terms, beside the measurement
#
# Each row is one number of labelled examples $n$; the bound is recomputed from the row's terms with the
# theorem's own function and must equal the stored `bound_value`.

# %%
table = lesson.verdict_table(work, run)
rows = table[table["theorem"] == THEOREM]
assert np.allclose(theorem.bound_from(rows), rows["bound_value"], equal_nan=True)
print("terms:", theorem.terms)
display(rows[[*theorem.terms, "measured", "bound_value", "verdict", "slack"]])

# %% [markdown]
# The chapter's own figure (`analysis/self_prediction_figures.py`'s `fig_sample_complexity`): excess risk against
# $n$ for $\psi^*$, the learned $\psi$ and raw $X_1$, each with its bound.

# %%
png, = lesson.draw(work, run, "sample_complexity", work / "figures")
display(Image(filename=str(png)))

# %% [markdown]
# ## 5. Exercises: change a knob, edit a line, check it
#
# Each exercise runs the suite once with a changed knob, then asks you to edit the cell marked **EXERCISE n**
# (replace its `...`), and checks what you computed with `check.exercise_n`. The answer below it is collapsed:
# predict first, then open it. Every number in an answer is read from the run above it.
#
# **Exercise 1.** More labels: `eval.probe_n=[10, 20, ..., 1280]`. Predict how the bound changes each time $n$
# doubles, whether the measured risk follows it, and at which $n$ the theorem is checked at all. Then write the
# bound yourself from its terms.

# %%
PROBE_N = [10, 20, 40, 80, 160, 320, 640, 1280]
ex1 = [*OVERRIDES, f"eval.probe_n={PROBE_N}"]
run1 = ex.train(NAME, ex1, work / "ex1")
t1 = lesson.verdict_table(work / "ex1", run1)
r1 = t1[t1["theorem"] == THEOREM]
display(r1[["n", "failure_prob", "measured", "bound_value", "verdict"]])

# %% tags=["exercise"]
# EXERCISE 1: edit this cell. Replace the `...` by the exact-CI bound in n, p and sigma2_eff (arrays in, array out).
def chernoff_bound(n, p, sigma2_eff):
    return ...


# %%
check.exercise_1(chernoff_bound, r1)

# %%
check.answer_1(r1, PROBE_N)

# %% [markdown]
# **Exercise 2.** Break the assumption: turn on the violation study, a nuisance shared by both views that $Y$
# does not explain (`violation.nuisance_scales=[0.0, 4.0]`). Predict which theorems are judged on those cells, and
# the verdict of Theorem 4.2's population inequality at scale 4.

# %%
ex2 = [*OVERRIDES[:3], "objectives.enabled=false", 'sample_complexity.families=["exact_ci"]',
       'sample_complexity.learners=["linear"]', "violation.nuisance_scales=[0.0, 4.0]"]
run2 = ex.train(NAME, ex2, work / "ex2")
t2 = lesson.verdict_table(work / "ex2", run2)
print(t2[t2["kind"] == "bound"].groupby(["theorem", "verdict"]).size().to_string())

# %% tags=["exercise"]
# EXERCISE 2: edit this cell. Replace the `...` by your predicted verdict of self_prediction.theorem_4_2_population
# at nuisance scale 4: "holds", "violated", "vacuous", "assumption not met" or "undetermined".
prediction = ...

# %%
check.exercise_2(prediction, t2)

# %%
check.answer_2(t2, THEOREM)

# %% [markdown]
# ## 6. What we computed
#
# Under exact conditional independence the bound is never violated, and holds at some point.

# %%
verdicts = set(rows["verdict"])
assert "violated" not in verdicts and "holds" in verdicts, verdicts
held = rows[rows["verdict"] == "holds"]
assert (held["bound_value"] >= held["measured"] - 3 * held["measured_se"].fillna(0)).all()
print(f"{THEOREM}: {len(held)} of {len(rows)} points hold; none violated")

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
# # More negatives: five bounds on one ground truth
#
# Practitioners use hundreds of negatives. Four published upper bounds on the mean classifier's supervised loss,
# in terms of the InfoNCE loss $R_{cont}$ with $K$ negatives, disagree on why that helps, and one lower bound
# pins the gap from below. This notebook states them from the registry, shows the terms that carry $K$, trains a
# few InfoNCE encoders live and judges every form on them. Everything is imported from the suite.

# %%
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Image, Markdown, display
from matplotlib_inline.backend_inline import set_matplotlib_formats

from experiments import exercises as ex
from experiments.engine import chapters
from experiments.engine import report as lesson
from experiments.exercises import negatives as check
from synthetic_data import negatives as data
from theory import negatives as th

NAME = "negatives"
chapter = chapters.get(NAME)
FORMS = ["negatives.arora_2019", "negatives.nozawa_sato_2021", "negatives.ash_2022", "negatives.bao_2022_upper",
         "negatives.bao_2022_lower"]
work = Path(tempfile.mkdtemp(prefix="sslt-notebook-"))
set_matplotlib_formats("png")   # display(fig) shows a PNG under any backend

# %% [markdown]
# ## 1. The five forms, as the registry states them

# %%
display(Markdown(lesson.theorems_markdown(NAME, FORMS)))

# %% [markdown]
# ## 2. The generator: latent classes, uniform or Zipf
#
# The contrastive chapter's latent-class generator (`synthetic_data.negatives` re-exports it). An anchor and its
# positive share a class; the K negatives come from the marginal, so under a Zipf law they rarely show the rare
# classes. Here six classes in two dimensions, Zipf law.

# %%
spec = data.DataSpec(n_classes=6, dim=2, spread=0.3, class_law="zipf")
model = data.build_model(spec, np.random.default_rng(0))
c = model.sample_classes(600, np.random.default_rng(1))
X = model.sample_x(c, np.random.default_rng(2))
print("class law rho =", np.round(model.rho, 3))
fig, ax = plt.subplots(figsize=(4.5, 4))
ax.scatter(X[:, 0], X[:, 1], c=c, cmap="tab10", s=8)
ax.set_title("600 marginal draws (the negatives' law), Zipf over 6 classes")
display(fig)
plt.close(fig)

# %% [markdown]
# ## 3. The terms that carry K
#
# $\tau_K$ (a negative shares the anchor's class), $\upsilon_{K+1}$ (the anchor and its $K$ negatives cover all
# $C$ classes), the collision term $\mathbb{E}\log(1+m)$ and Bao et al.'s $\Delta_U$, all exact, for ten uniform
# classes. The coefficients on $R_{cont}$ follow from them.

# %%
rho = np.full(10, 0.1)
table = pd.DataFrame([{"K": K, **th.law_terms(rho, K, 1.0)} for K in (1, 4, 9, 16, 64, 256)])
for form in ("arora_2019", "nozawa_sato_2021", "ash_2022"):
    table["coef " + form] = th.coefficient(form, table["no_collision"], table["upsilon"], table["K"], table["coupon"])
display(table[["K", "tau_K", "upsilon", "collision", "Delta_U", "coef arora_2019", "coef nozawa_sato_2021",
               "coef ash_2022"]].round(4))

# %% [markdown]
# ## 4. Train InfoNCE encoders, live, and judge the forms
#
# The quick profile trimmed to ten classes and two values of $K$, plus the finite instance (every quantity exact).

# %%
OVERRIDES = ["sweep.k=[1, 16]", "norms.enabled=false", "zipf.enabled=false", "finite.k=[1, 4]"]
run = ex.train(NAME, OVERRIDES, work)
verdicts = lesson.verdict_table(work, run)
rows = verdicts[verdicts["theorem"].isin(FORMS)]
theorems = {t.id: t for t in chapter.theorems}
for tid, g in rows.groupby("theorem"):   # each bound recomputed from its row's terms by the theorem's own function
    assert np.allclose(theorems[tid].bound_from(g), g["bound_value"], equal_nan=True)
display(rows[rows["model_kind"] == "trained"][["theorem", "form", "K", "C", "b", "R_cont", "measured",
                                               "bound_value", "verdict"]].round(3))

# %%
png, = lesson.draw(work, run, "bounds_vs_k", work / "figures")
display(Image(filename=str(png)))

# %% [markdown]
# ## 5. Exercises: change a knob, edit a line, check it
#
# Edit the cell marked **EXERCISE n** (replace its `...`); `check.exercise_n` checks what you computed. The answer
# below it is collapsed: predict first, then open it. Every number in an answer is read from the run, or computed
# exactly by `theory.negatives`.
#
# **Exercise 1.** A skewed law: Zipf over ten classes. Predict $\upsilon_{K+1}$ at $K = 63$ against the uniform
# law's, and what that does to Nozawa & Sato's coefficient $2/\upsilon_{K+1}$. Then find, with `th.coverage`, how
# many negatives the Zipf law needs before the anchor and its negatives cover all ten classes with probability 0.95.

# %%
zipf = 1.0 / np.arange(1, 11)
zipf /= zipf.sum()
print("upsilon_64 uniform", th.coverage(rho, 64), " zipf", th.coverage(zipf, 64))

# %% tags=["exercise"]
# EXERCISE 1: edit this cell. Replace the `...` by the smallest K (an int) with th.coverage(zipf, K + 1) >= 0.95.
K_ZIPF = ...

# %%
check.exercise_1(K_ZIPF, zipf)

# %%
check.answer_1(rho, zipf)

# %% [markdown]
# **Exercise 2.** The norm knob: `sweep.b=[2.0]`. Predict what happens to Bao et al.'s $\Delta_U$, to the bound
# against its trivial value, and to the measured loss. Then write the trivial value yourself.

# %%
ex2 = [*OVERRIDES, "sweep.b=[2.0]", "finite.enabled=false"]
run2 = ex.train(NAME, ex2, work)
t2 = lesson.verdict_table(work, run2)
print(t2[(t2["theorem"] == "negatives.bao_2022_upper") & (t2["model_kind"] == "trained")][
    ["K", "R_cont", "Delta_U", "measured", "bound_value", "trivial", "verdict"]].round(3).to_string())

# %% tags=["exercise"]
# EXERCISE 2: edit this cell. Replace the `...` by the trivial value of these bounds: the cross-entropy (in nats) of
# a classifier that predicts the uniform law over C = 10 classes.
log_C = ...

# %%
check.exercise_2(log_C, t2)

# %%
check.answer_2(rows, t2)

# %% [markdown]
# ## 6. What we computed
#
# No form is violated at any point, trained or exact, and some point holds.

# %%
judged = verdicts[verdicts["kind"] == "bound"]
assert "violated" not in set(judged["verdict"]), judged["verdict"].value_counts()
assert (judged["verdict"] == "holds").any()
print(judged.groupby(["theorem", "verdict"]).size().to_string())

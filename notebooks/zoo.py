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
# # The objective zoo: every SSL objective on one ground truth
#
# SimCLR, MoCo, BYOL, SimSiam, Barlow Twins, VICReg, SwAV and the paper's logistic loss, trained on the same
# latent-class data with the same encoder and the same minibatches: only the objective differs. Lemma 4.3 of
# Arora et al. holds for *any* encoder, so it is checked on every one of them. Everything is imported from the
# suite; nothing is re-implemented here.

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
from experiments.exercises import zoo as check
from synthetic_data import contrastive as data
from synthetic_data import zoo as grid

NAME = "zoo"
THEOREM = "zoo.lemma_4_3_any_encoder"
chapter = chapters.get(NAME)
theorem = {t.id: t for t in chapter.theorems}[THEOREM]
work = Path(tempfile.mkdtemp(prefix="sslt-notebook-"))   # this lecture's results directory (a scratch one)
set_matplotlib_formats("png")   # display(fig) shows a PNG under any backend (inline for you, Agg in the tests)

# %% [markdown]
# ## 1. The theorem, as the registry states it

# %%
display(Markdown(lesson.theorems_markdown(NAME)))

# %% [markdown]
# ## 2. The generators: two views of one class, and grid images
#
# The two-view bench: a positive pair is two independent draws of one latent class (left, lines join the two
# views). The pretext bench uses grid images: a class template, shifted, with contrast and noise (right).

# %%
spec = data.DataSpec(n_classes=4, dim=2, spread=0.35)
model = data.build_model(spec, np.random.default_rng(0))
rng = np.random.default_rng(1)
c = model.sample_classes(40, rng)
x, xp = model.sample_x(c, rng), model.sample_x(c, rng)
g = grid.build_grid_model(grid.GridSpec(n_classes=4, side=8, max_shift=1), np.random.default_rng(2))
imgs, labels = g.sample_labelled(2, np.random.default_rng(3))
fig = plt.figure(figsize=(10, 3.4))
ax = fig.add_subplot(1, 3, 1)
for a, b in zip(x, xp):
    ax.plot([a[0], b[0]], [a[1], b[1]], color="0.8", lw=0.6)
ax.scatter(x[:, 0], x[:, 1], c=c, cmap="tab10", s=10, label="x")
ax.scatter(xp[:, 0], xp[:, 1], c=c, cmap="tab10", s=10, marker="^", label="x+")
ax.set_title("positive pairs (x, x+)")
ax.legend(fontsize=7)
for i in range(4):
    a2 = fig.add_subplot(2, 6, [3, 4, 9, 10][i])   # a 2 x 2 block beside the scatter
    a2.imshow(imgs[2 * i].reshape(8, 8), cmap="gray")
    a2.set_title(f"class {labels[2 * i]}", fontsize=7)
    a2.axis("off")
display(fig)
plt.close(fig)

# %% [markdown]
# ## 3. Train every two-view objective, live
#
# The quick profile trimmed to the two-view bench on Gaussian classes: one cell per objective (seeds batched),
# plus the references (raw inputs, a random and a supervised encoder).

# %%
OVERRIDES = ["reconstruction.enabled=false", "multimodal.enabled=false", "pretext.enabled=false",
             'two_views.variants=["class"]']
run = ex.train(NAME, OVERRIDES, work)
print(run.describe())

# %% [markdown]
# ## 4. The bound from its terms, on every encoder

# %%
table = lesson.verdict_table(work, run)
rows = table[table["theorem"] == THEOREM]
assert np.allclose(theorem.bound_from(rows), rows["bound_value"], equal_nan=True)
print("terms:", theorem.terms)
by = "objective" if "objective" in rows else "cell"
display(rows.groupby(by).agg(measured=("measured", "median"), bound=("bound_value", "median"),
                             verdicts=("verdict", lambda v: ", ".join(sorted(set(v))))))

# %% [markdown]
# The chapter's own figure (`analysis/zoo.py`'s `fig_two_views`): probe error against labels per objective.

# %%
png, = lesson.draw(work, run, "two_views", work / "figures")
display(Image(filename=str(png)))

# %% [markdown]
# ## 5. Exercises: change a knob, edit a line, check it
#
# Edit the cell marked **EXERCISE n** (replace its `...`); `check.exercise_n` checks what you computed. The answer
# below it is collapsed: predict first, then open it. Every number in an answer is read from the run it is about.
#
# **Exercise 1.** Push the classes through a fixed random nonlinear map: `two_views.variants=["nonlinear"]`.
# Predict which objectives suffer, and whether Lemma 4.3 can be violated. Then write the bound from the three
# terms the suite stores on every row.

# %%
ex1 = [*OVERRIDES[:3], 'two_views.variants=["nonlinear"]']
run1 = ex.train(NAME, ex1, work)
t1 = lesson.verdict_table(work, run1)
r1 = t1[t1["theorem"] == THEOREM]
print(r1["verdict"].value_counts().to_string())

# %% tags=["exercise"]
# EXERCISE 1: edit this cell. Replace the `...` by the bound in L_un, collision_floor and p_distinct (arrays in,
# array out).
def lemma_bound(L_un, collision_floor, p_distinct):
    return ...


# %%
check.exercise_1(lemma_bound, r1)

# %%
check.answer_1(rows, r1)

# %% [markdown]
# **Exercise 2.** Back to section 4's run. Which objective ends with the largest measured loss — and does that
# encoder break the lemma? Find it from `rows` (one line of pandas).

# %% tags=["exercise"]
# EXERCISE 2: edit this cell. Replace the `...` by the name of the objective with the largest median `measured`
# in `rows` (e.g. with rows.groupby("objective")["measured"].median()).
hardest = ...

# %%
check.exercise_2(hardest, rows)

# %%
check.answer_2(rows)

# %% [markdown]
# ## 6. What we computed

# %%
verdicts = set(rows["verdict"])
assert "violated" not in verdicts and "holds" in verdicts, verdicts
print(f"{THEOREM}: {int((rows['verdict'] == 'holds').sum())} of {len(rows)} points hold; none violated")

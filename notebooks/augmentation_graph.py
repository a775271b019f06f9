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
# # Spectral contrastive learning on the augmentation graph (HaoChen, Wei, Gaidon & Ma 2021)
#
# Inputs are the nodes of a graph: two inputs are joined with the probability that they are augmentations of one
# natural point. The spectral contrastive loss is minimised by the top eigenvectors of the normalised adjacency,
# and downstream error is bounded when classes are well connected inside and sparsely connected across (the
# leak $\alpha$). This notebook states the bounds from the registry, shows the graph, trains encoders live and sets
# the bounds beside the measurements. Everything comes from the suite.

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
from experiments.exercises import augmentation_graph as check
from synthetic_data import augmentation_graph as data

NAME = "augmentation_graph"
THEOREMS = ["augmentation_graph.spectral_minimum", "augmentation_graph.eigenvalue_bound"]
chapter = chapters.get(NAME)
by_id = {t.id: t for t in chapter.theorems}
work = Path(tempfile.mkdtemp(prefix="sslt-notebook-"))   # this lecture's results directory (a scratch one)
set_matplotlib_formats("png")   # display(fig) shows a PNG under any backend (inline for you, Agg in the tests)

# %% [markdown]
# ## 1. The theorems, as the registry states them

# %%
display(Markdown(lesson.theorems_markdown(NAME, THEOREMS)))

# %% [markdown]
# ## 2. The generator: the augmentation graph
#
# Two classes, three natural points each, two augmentations per natural point. `overlap` is the mass an
# augmentation puts on its class's other natural points, `leak` the mass on other classes ($\alpha$).
# The matrix $W(x, x')$ is the law of positive pairs.

# %%
spec = data.DataSpec(n_classes=2, n_natural=3, n_aug=2, dim=6, overlap=0.2, leak=0.05)
model = data.build_model(spec, np.random.default_rng(0))
order = np.argsort(model.labels, kind="stable")
fig, ax = plt.subplots(1, 2, figsize=(8.5, 3.6))
im = ax[0].imshow(model.W[np.ix_(order, order)], cmap="magma")
ax[0].set_title(f"W(x, x'), inputs sorted by class ({model.n_inputs} inputs)")
fig.colorbar(im, ax=ax[0], fraction=0.046)
a, b = model.sample_pairs(2000, np.random.default_rng(1))
same = model.labels[a] == model.labels[b]
ax[1].bar(["same class", "across classes"], [same.mean(), 1 - same.mean()], color=["C2", "C3"])
ax[1].set_title("2000 sampled positive pairs")
display(fig)
plt.close(fig)
print("components of the graph:", data.components(model.W))

# %% [markdown]
# ## 3. Train encoders, live
#
# The quick profile trimmed to the overlap study: linear and lookup-table encoders trained with the spectral loss
# at three overlaps.

# %%
OVERRIDES = ["matched.enabled=false", "hypercube.enabled=false", "partition.enabled=false"]
run = ex.train(NAME, OVERRIDES, work)
print(run.describe())

# %% [markdown]
# ## 4. The bounds from their terms, beside the measurements

# %%
table = lesson.verdict_table(work, run)
for tid in THEOREMS:
    rows = table[table["theorem"] == tid]
    assert np.allclose(by_id[tid].bound_from(rows), rows["bound_value"], equal_nan=True)
    print(tid, "terms:", by_id[tid].terms)
    print(rows["verdict"].value_counts().to_string(), "\n")
display(table[table["theorem"] == THEOREMS[1]][["cell", *by_id[THEOREMS[1]].terms, "measured", "bound_value",
                                                "verdict"]])

# %% [markdown]
# The chapter's own figure (`analysis/augmentation_graph.py`'s `fig_overlap`): probe error of $f^*$ and of trained
# encoders, and the bounds, as the same-class overlap shrinks.

# %%
png, = lesson.draw(work, run, by_id[THEOREMS[1]].figures[0], work / "figures")   # "overlap", the study's figure
display(Image(filename=str(png)))

# %% [markdown]
# ## 5. Exercises: change a knob, edit a line, check it
#
# Each exercise runs the suite once with a changed knob, then asks you to edit the cell marked **EXERCISE n**
# (replace its `...`), and checks what you computed with `check.exercise_n`. The answer below it is collapsed:
# predict first, then open it. Every number in an answer is read from the run above it.
#
# **Exercise 1.** Let more mass leak across classes: `data.leak=0.3` (it was 0.05). Predict the eigenvalue bound.
# Then write it yourself from its two terms.

# %%
ex1 = [*OVERRIDES, "data.leak=0.3"]
run1 = ex.train(NAME, ex1, work)
t1 = lesson.verdict_table(work, run1)
r1 = t1[t1["theorem"] == THEOREMS[1]]
print(r1[["alpha", "lambda_next", "measured", "bound_value", "verdict"]])

# %% tags=["exercise"]
# EXERCISE 1: edit this cell. Replace the `...` by the eigenvalue bound in alpha and lambda_next (arrays in, array
# out; an error is at most 1).
def eigen_bound(alpha, lambda_next):
    return ...


# %%
check.exercise_1(eigen_bound, r1)

# %%
check.answer_1(table[table["theorem"] == THEOREMS[1]], r1)

# %% [markdown]
# **Exercise 2.** Cut the graph inside each class: `overlap.overlaps=[0.0]`. Predict what the spectral minimiser
# $f^*$ can and cannot tell apart, and the verdict of the eigenvalue bound.

# %%
ex2 = [*OVERRIDES, "overlap.overlaps=[0.0]"]
run2 = ex.train(NAME, ex2, work)
t2 = lesson.verdict_table(work, run2)

# %% tags=["exercise"]
# EXERCISE 2: edit this cell. Replace the `...` by your predicted verdict of the eigenvalue bound at overlap 0:
# "holds", "violated", "vacuous", "assumption not met" or "undetermined". Then run the next cells.
prediction = ...

# %%
check.exercise_2(prediction, t2)

# %%
print(t2.groupby("theorem")["verdict"].value_counts().to_string())
check.answer_2(t2)

# %% [markdown]
# ## 6. What we computed

# %%
spec_rows = table[table["theorem"] == THEOREMS[0]]
assert len(spec_rows) and set(spec_rows["verdict"]) == {"exact"}, set(spec_rows["verdict"])   # an identity
assert (spec_rows["bound_value"] >= spec_rows["measured"] - 1e-9).all()
print(f"{THEOREMS[0]}: all {len(spec_rows)} points exact (an identity of the algebra, not a bound that holds)")

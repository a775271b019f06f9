"""Contrastive learning with latent classes: bound checks and the chapter's four figures, from stored rows.

Every bound value here is computed from the theorem's terms as measured in the cell (theory.contrastive does
the arithmetic); nothing is fitted to the measured curves. The figures read bound values and verdicts from the
run's judged table (its rows of bounds.csv), never computing or judging them again.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import plotting, tables
from theory import contrastive as th
from theory.verdict import HOLDS

THEOREMS = th.THEOREMS
# the ids of theory.contrastive.THEOREMS each row names: (population, gen_M) x (k = 1, k > 1), and the block bound
LEMMA, LEMMA_K = "contrastive.lemma_4_3", "contrastive.lemma_4_3_k_negatives"
THEOREM, THEOREM_K = "contrastive.theorem_4_1", "contrastive.theorem_4_1_k_negatives"
BLOCK = "contrastive.proposition_6_2"
THEOREM_BALL = "contrastive.theorem_4_1_norm_ball"
DISTINCT = "contrastive.lemma_4_3_distinct_negatives"
ORACLE_OBJECTIVES = ("oracle_linear",)   # built from the true class means (experiments.contrastive.generalisation)
KEYS = ["cell", "objective", "loss", "n_classes", "k", "block_size", "seed", "lr", "step"]
POINT = ["cell", "seed", "lr", "step"]   # one checkpoint of one seed: what a judged row of one theorem is at
PAPER_LOSSES = ("logistic", "hinge")
UNTRAINED_OBJECTIVES = ("raw", "random")   # experiments.contrastive.config.UNTRAINED: encoders nothing optimised


def terms_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (cell, seed, lr, step) with every scalar metric as a column."""
    return tables.scalar_wide(rows, KEYS)


def probe_table(rows: pd.DataFrame) -> pd.DataFrame:
    return tables.probe_wide(rows, KEYS)


def bound_checks(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows for bounds.csv: the mean-classifier bound (population and with Gen_M) and the block bound.

    Every row names its theorem (``theory.contrastive.THEOREMS``) in the ``theorem`` column: Lemma 4.3 and
    Theorem 4.1's form at k = 1, our k-negative forms of both at k > 1, Prop. 6.2 for the block loss. Each row carries
    every term of its theorem's bound, trivial value and assumptions, so ``theorem.bound_from(rows)`` recomputes
    ``bound_value``; the assumptions are the theorems' own (``analysis.bounds.judge`` evaluates them). Points where
    no (k+1)-way task exists (p_distinct = 0, or L_sup^mu undefined because k + 1 exceeds the classes with mass)
    have no row of the old forms; the de-duplicated k-negative lemma has a row at every k >= 2 point, and the
    generalisation study's cells (a ``radius`` column) name the norm-ball Theorem 4.1. Every row has a
    ``model_kind`` (issue 16). docs/theory/contrastive.md states each theorem as checked here.
    """
    t = terms_table(rows)
    if "L_un" not in t:
        return pd.DataFrame()
    frames = _distinct_rows(t) if "L_sup_mu_distinct" in t else []
    t = t[t["L_un"].notna() & (t["p_distinct"] > 0) & t["L_sup_mu"].notna()].copy()
    trivial = th.trivial_from_terms(t["loss"].to_numpy(), t["k"].to_numpy())
    one = t["k"].to_numpy() == 1
    common = {c: t[c].to_numpy() for c in KEYS + ["tau", "tau_k", "p_distinct", "collision_floor", "L_un",
                                                    "L_un_se", "L_un_neq", "L_un_eq", "L_sup_mu", "L_sup_mu_se"]
              if c in t}
    common["model_kind"] = model_kind(t)
    floor, p_distinct = t["collision_floor"].to_numpy(), t["p_distinct"].to_numpy()
    pop = th.bound_from_terms(t["L_un"].to_numpy(), floor, p_distinct)
    frames.append(pd.DataFrame({"theorem": np.where(one, LEMMA, LEMMA_K), "bound": "mean_classifier",
                                "form": "population",
                                "measured": t["L_sup_mu"].to_numpy(), "measured_se": t["L_sup_mu_se"].to_numpy(),
                                "bound_value": pop, "bound_se": t["L_un_se"].to_numpy() / p_distinct,
                                "trivial": trivial, **common}))
    if "Gen_M" in t:
        g = t["Gen_M"].notna().to_numpy()
        # Uniform convergence: with prob. >= 1 - delta, L_un(f) <= L^_un(f) + Gen_M / 2 for every f in the class.
        gen = th.gen_bound_from_terms(t["L_hat_un"].to_numpy(), t["Gen_M"].to_numpy(), floor, p_distinct)
        extra = {c: t[c].to_numpy() for c in ("L_hat_un", "Gen_M", "Rad_S", "R", "M", "delta")}
        ball = t["radius"].notna().to_numpy() if "radius" in t else np.zeros(len(t), dtype=bool)
        if ball.any():
            extra.update({c: t[c].to_numpy() for c in ("radius", "support_norm", "W_fro")})
        frames.append(pd.DataFrame({"theorem": np.where(ball, THEOREM_BALL, np.where(one, THEOREM, THEOREM_K)),
                                    "bound": "mean_classifier",
                                    "form": "gen_M",
                                    "measured": t["L_sup_mu"].to_numpy(), "measured_se": t["L_sup_mu_se"].to_numpy(),
                                    "bound_value": gen, "bound_se": 0.0, "trivial": trivial, **common, **extra})[g])
    if "L_block" in t:
        b = t["L_block"].notna().to_numpy()
        blk = th.block_bound_from_terms(t["L_block"].to_numpy(), t["tau"].to_numpy())
        frames.append(pd.DataFrame({"theorem": BLOCK, "bound": "block", "form": "population",
                                    "measured": t["L_sup_mu"].to_numpy(), "measured_se": t["L_sup_mu_se"].to_numpy(),
                                    "bound_value": blk, "bound_se": t["L_block_se"].to_numpy() / (1 - t["tau"].to_numpy()),
                                    "trivial": trivial, **common, "L_block": t["L_block"].to_numpy()})[b])
    return pd.concat(frames, ignore_index=True)


def _distinct_rows(t: pd.DataFrame) -> list[pd.DataFrame]:
    """The de-duplicated k-negative lemma at every k >= 2 point, also where k + 1 exceeds the classes (no
    (k+1)-way task, so the old form has no row there, but the tuple's own distinct classes still form a task)."""
    t = t[t["L_un"].notna() & t["L_sup_mu_distinct"].notna() & (t["k"] > 1) & (t["tau_k"] < 1)]
    if t.empty:
        return []
    tk, floor = t["tau_k"].to_numpy(), t["collision_floor"].to_numpy()
    common = {c: t[c].to_numpy() for c in KEYS + ["tau", "tau_k", "p_distinct", "collision_floor", "L_un", "L_un_se",
                                                    "L_un_neq", "L_un_eq", "L_sup_mu", "L_sup_mu_se"] if c in t}
    return [pd.DataFrame({"theorem": DISTINCT, "bound": "mean_classifier_distinct", "form": "population",
                          "measured": t["L_sup_mu_distinct"].to_numpy(),
                          "measured_se": t["L_sup_mu_distinct_se"].to_numpy(),
                          "bound_value": th.distinct_bound_from_terms(t["L_un"].to_numpy(), floor, tk),
                          "bound_se": t["L_un_se"].to_numpy() / (1 - tk),
                          "trivial": t["trivial_distinct"].to_numpy(), **common, "model_kind": model_kind(t),
                          "L_sup_mu_distinct": t["L_sup_mu_distinct"].to_numpy(),
                          "trivial_distinct": t["trivial_distinct"].to_numpy()})]


def model_kind(t: pd.DataFrame) -> np.ndarray:
    """issue 16 section 1: "oracle" (built from the true class means), "untrained" (raw inputs, the random encoder,
    every trained cell's step 0, which is its random initialisation), else "trained"."""
    obj, step = t["objective"].to_numpy(), t["step"].to_numpy()
    return np.where(np.isin(obj, ORACLE_OBJECTIVES), "oracle",
                    np.where(np.isin(obj, UNTRAINED_OBJECTIVES) | (step == 0), "untrained", "trained"))


# ----------------------------------------------------------------------------------------------- figures
def _final(t: pd.DataFrame) -> pd.DataFrame:
    last = t.groupby("cell")["step"].transform("max")
    return t[t["step"] == last]


def _mean_sd(df: pd.DataFrame, by: list[str], col: str) -> pd.DataFrame:
    return df.groupby(by)[col].agg(["mean", "std"]).reset_index().fillna({"std": 0.0})


def fig_bound(rows: pd.DataFrame, judged: pd.DataFrame, out: Path, stem: str) -> list[Path]:
    """L_sup^mu against the bound at every checkpoint (k = 1 cells of the paper's losses), with y = x."""
    checks = judged
    checks = checks[(checks["k"] == 1) & checks["objective"].isin(PAPER_LOSSES) & (checks["bound"] == "mean_classifier")]
    fig, ax = plotting.new(3)
    panels = [("population", "bound (L_un - tau)/(1 - tau)", ax[0, 0]),
              (None, "tau-free L_un^neq", ax[0, 1]),
              ("gen_M", "bound with Gen_M (log scale)", ax[0, 2])]
    classes = sorted(checks["n_classes"].unique())
    cmap = plotting.plt.get_cmap("viridis")
    for form, label, a in panels:
        sub = checks[checks["form"] == (form or "population")]
        for i, c in enumerate(classes):
            for loss, marker in zip(PAPER_LOSSES, "o^"):
                s = sub[(sub["n_classes"] == c) & (sub["loss"] == loss)]
                if s.empty:
                    continue
                x = s["L_un_neq"] if form is None else s["bound_value"]
                a.scatter(x, s["measured"], s=14, marker=marker, color=cmap(i / max(1, len(classes) - 1)),
                          label=f"C={c} ({loss})", alpha=0.8, gid=plotting.BOUND)
        lo = 0.0
        hi = max(sub["measured"].max(), (sub["L_un_neq"] if form is None else sub["bound_value"]).max())
        a.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="y = x")
        for j, triv in enumerate(sorted(sub["trivial"].dropna().unique())):   # ell(0) of each loss: 1 for both
            plotting.trivial_line(a, triv, f"trivial ell(0) = {triv:g}: a bound right of it is vacuous"
                                  if j == 0 else None, vertical=True)
        if form == "gen_M":
            a.set_xscale("log")
            a.set_yscale("log")
            a.set_xlim(min(sub["measured"].min(), sub["bound_value"].min()) / 2, hi * 2)
        a.set_xlabel(label)
        a.set_ylabel("measured L_sup^mu (mean classifier)")
    ax[0, 0].set_title("Lemma 4.3 (population): below y = x holds")
    ax[0, 1].set_title("tau-free L_un^neq >= L_sup^mu (Jensen)")
    ax[0, 2].set_title("with Gen_M (Theorem 4.1 form), log-log")
    ax[0, 0].legend(ncol=2, fontsize=6)
    return plotting.save(fig, out, stem)


def fig_negatives(rows: pd.DataFrame, judged: pd.DataFrame, out: Path, stem: str) -> list[Path]:
    """Accuracy, L_un and the bound as the number of negatives k grows, for each number of classes."""
    t = _final(terms_table(rows))
    t = t[t["objective"].isin(PAPER_LOSSES)]
    ks = t.groupby(["n_classes", "loss"])["k"].nunique()
    keep = ks[ks > 1].index
    t = t.set_index(["n_classes", "loss"]).loc[keep].reset_index()
    p = _final(probe_table(rows))
    p = p[p["cell"].isin(t["cell"])]
    population = {"theorem": (LEMMA, LEMMA_K), "form": "population"}
    t["bound"] = tables.judged_at(judged, t, POINT, **population).astype(float)
    t["verdict"] = tables.judged_at(judged, t, POINT, "verdict", **population)
    # the zero encoder's loss; where the all-distinct form has no row (k + 1 > C), the distinct form's own
    t["trivial"] = tables.judged_at(judged, t, POINT, "trivial", **population).astype(float).fillna(
        tables.judged_at(judged, t, POINT, "trivial", theorem=DISTINCT).astype(float))
    # the de-duplicated form (k >= 2; at k = 1 it is Lemma 4.3 itself), judged beside the old one
    one = t["k"] == 1
    t["bound_distinct"] = np.where(one, t["bound"], tables.judged_at(judged, t, POINT, theorem=DISTINCT).astype(float))
    t["verdict_distinct"] = np.where(one, t["verdict"], tables.judged_at(judged, t, POINT, "verdict", theorem=DISTINCT))
    t["measured_distinct"] = np.where(one, t["L_sup_mu"], t.get("L_sup_mu_distinct", np.nan))
    fig, ax = plotting.new(2, height=4.8)
    for i, c in enumerate(sorted(t["n_classes"].unique())):
        color = f"C{i}"
        s = t[t["n_classes"] == c]
        for col, style, name in (("mean_acc", "-o", "mean classifier"),):
            m = _mean_sd(s, ["k"], col)
            ax[0, 0].errorbar(m["k"], m["mean"], m["std"], fmt=style, color=color, ms=3, label=f"C={c} {name}")
        ps = p[p["n_classes"] == c]
        # the probe size measured in every cell of this sweep (a cell shared with another study measures more)
        sizes = ps.groupby("cell")["n_per_class"].apply(set)
        shared = sorted(set.intersection(*sizes)) if len(sizes) else []
        ps = ps[ps["n_per_class"] == shared[-1]] if shared else ps.iloc[0:0]
        if len(ps):
            m = _mean_sd(ps, ["k"], "probe_accuracy")
            ax[0, 0].errorbar(m["k"], m["mean"], m["std"], fmt="--s", color=color, ms=3,
                              label=f"C={c} probe (n={shared[-1]}/class)")
        for col, style, name in (("L_un", "-o", "L_un"), ("L_sup_mu", ":^", "L_sup^mu"), ("bound", "--s", "bound"),
                                 ("measured_distinct", ":v", "L^mu on distinct classes"),
                                 ("bound_distinct", "-.d", "bound, distinct negatives")):
            m = _mean_sd(s, ["k"], col)
            ax[0, 1].errorbar(m["k"], m["mean"], m["std"], fmt=style, color=color, ms=3, label=f"C={c} {name}",
                              gid=plotting.BOUND if col.startswith("bound") else None)
        m = _mean_sd(s, ["k"], "trivial")   # the zero encoder's loss ell(0_k): a bound above it says nothing
        ax[0, 1].plot(m["k"], m["mean"], ":", color="0.45", lw=1.2, gid=plotting.TRIVIAL,
                      label=f"C={c} trivial: the zero encoder's loss")
        _coverage_marks(ax[0], s, color, c)
    for a in ax[0]:
        a.set_xscale("log", base=2)
        a.set_xlabel("negatives k")
    ax[0, 0].set_ylabel(f"downstream accuracy (C-way)")
    ax[0, 1].set_ylabel("loss (log2 normalisation)")
    ax[0, 1].set_yscale("log")
    ax[0, 0].set_title("accuracy against k (dotted: coverage E[T])")
    ax[0, 1].set_title("L_un, L_sup^mu and the bound against k")
    for a in ax[0]:
        a.legend(fontsize=5, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.16))
    return plotting.save(fig, out, stem)


def coverage_view(s: pd.DataFrame) -> dict:
    """For one number of classes: the k at which k negatives cover every class in expectation (the coupon
    collector, theory.coverage_negatives on the cell's class law), the largest k at which the bound is
    informative (every judged point there holds: not vacuous, not violated, as bounds.csv's ``verdict`` column
    says), and the smallest k whose mean accuracy is within one point of the best over k (where accuracy stops
    improving)."""
    C = int(s["n_classes"].iloc[0])
    tau_val = float(s["tau"].iloc[0])
    # the shipped class laws are uniform or Zipf; the cell stores tau, not rho: uniform iff tau = 1/C
    rho = np.full(C, 1.0 / C) if abs(tau_val - 1.0 / C) < 1e-12 else None
    m = s.groupby("k")[["mean_acc"]].mean()
    judged = s[s["verdict"].notna()]
    holds = judged.groupby("k")["verdict"].agg(lambda v: bool((v == HOLDS).all()))
    informative = holds.index[holds.to_numpy(dtype=bool)]
    plateau = m.index[m["mean_acc"] >= m["mean_acc"].max() - 0.01]
    return {"coverage": th.coverage_negatives(rho) if rho is not None else float("nan"),
            "informative_k": float(informative.max()) if len(informative) else float("nan"),
            "plateau_k": float(plateau.min()) if len(plateau) else float("nan")}


def _coverage_marks(axes, s: pd.DataFrame, color, c: int) -> None:
    v = coverage_view(s)
    for a in axes:
        if np.isfinite(v["coverage"]):
            a.axvline(v["coverage"], color=color, ls=":", lw=1, label=f"C={c} coverage E[T] = {v['coverage']:.0f}")
    if np.isfinite(v["plateau_k"]):
        axes[0].axvline(v["plateau_k"], color=color, ls="-.", lw=0.8, alpha=0.6,
                        label=f"C={c} accuracy within 1 pt of best from k={v['plateau_k']:.0f}")
    if np.isfinite(v["informative_k"]):
        axes[1].axvline(v["informative_k"], color=color, ls="-.", lw=0.8, alpha=0.6,
                        label=f"C={c} bound holds, not vacuous (bounds.csv), up to k={v['informative_k']:.0f}")
    if "verdict_distinct" in s:
        w = coverage_view(s.assign(verdict=s["verdict_distinct"]))
        if np.isfinite(w["informative_k"]):
            axes[1].axvline(w["informative_k"], color=color, ls="--", lw=1.2, alpha=0.8,
                            label=f"C={c} distinct-negatives bound informative up to k={w['informative_k']:.0f}")


def labels_needed(curve: pd.DataFrame, target_error: float) -> float:
    """Smallest n (log-linear interpolation of the mean error curve) at which error <= target; inf if never."""
    curve = curve.sort_values("n_per_class")
    n, err = curve["n_per_class"].to_numpy(float), curve["mean"].to_numpy(float)
    below = np.nonzero(err <= target_error)[0]
    if len(below) == 0:
        return float("inf")
    j = below[0]
    if j == 0:
        return float(n[0])
    x0, x1, y0, y1 = np.log(n[j - 1]), np.log(n[j]), err[j - 1], err[j]
    return float(np.exp(x0 + (target_error - y0) * (x1 - x0) / (y1 - y0)))


SAMPLE_ENCODERS = {"raw": "raw inputs", "random": "random encoder", "logistic": "contrastive (logistic)",
                   "hinge": "contrastive (hinge)", "ntxent": "contrastive (NT-Xent)", "supervised": "supervised (reference)"}


def sample_complexity_table(rows: pd.DataFrame, target_error: float) -> pd.DataFrame:
    p = _final(probe_table(rows))
    p = p[(p["k"] == 1) & (p["block_size"] == 1)]
    p["error"] = 1 - p["probe_accuracy"]
    out = []
    for (obj, c), s in p.groupby(["objective", "n_classes"]):
        curve = _mean_sd(s, ["n_per_class"], "error")
        out.append({"objective": obj, "n_classes": c, "target_error": target_error,
                    "labels_per_class_needed": labels_needed(curve, target_error), "curve": curve})
    return pd.DataFrame(out)


def fig_sample_complexity(rows: pd.DataFrame, judged: pd.DataFrame, out: Path, stem: str) -> list[Path]:
    """Probe error against labelled examples per class, for raw, random, contrastive and supervised encoders."""
    target_error = float(rows["target_error"].dropna().iloc[0]) if "target_error" in rows else 0.2
    table = sample_complexity_table(rows, target_error)
    fig, ax = plotting.new(2)
    table = table[table["objective"].isin(SAMPLE_ENCODERS)]
    for c in sorted(table["n_classes"].unique()):
        if table[table["n_classes"] == c]["objective"].nunique() < 3:
            continue
        for i, r in enumerate(table[table["n_classes"] == c].itertuples()):
            cv = r.curve
            need = r.labels_per_class_needed
            lab = f"{SAMPLE_ENCODERS[r.objective]}: n*={need:.3g}" if np.isfinite(need) else \
                f"{SAMPLE_ENCODERS[r.objective]}: n*>{int(cv['n_per_class'].max())}"
            ax[0, 0].errorbar(cv["n_per_class"], cv["mean"], cv["std"], fmt="-o", ms=3, color=f"C{i}", label=lab)
            ax[0, 1].bar(i, need if np.isfinite(need) else cv["n_per_class"].max() * 2, color=f"C{i}",
                         hatch=None if np.isfinite(need) else "//")
        ax[0, 0].set_title(f"C = {c} classes")
        names = [SAMPLE_ENCODERS[o] for o in table[table["n_classes"] == c]["objective"]]
        ax[0, 1].set_xticks(range(len(names)), names, rotation=30, ha="right")
        break
    ax[0, 0].axhline(target_error, color="k", lw=0.7, ls=":")
    ax[0, 0].set_xscale("log")
    ax[0, 0].set_xlabel("labelled examples per class n")
    ax[0, 0].set_ylabel("probe test error")
    ax[0, 0].legend(fontsize=6)
    ax[0, 1].set_yscale("log")
    ax[0, 1].set_ylabel(f"labels per class to reach error {target_error:g}")
    ax[0, 1].set_title("hatched: not reached within the sweep")
    return plotting.save(fig, out, stem)


def fig_block(rows: pd.DataFrame, judged: pd.DataFrame, out: Path, stem: str) -> list[Path]:
    """Block sizes b against the standard loss (b = 1), in loss and in downstream accuracy."""
    t = _final(terms_table(rows))
    std = t[t["objective"].isin(PAPER_LOSSES) & (t["k"] == 1)].copy()
    blk = t[t["objective"] == "block"].copy()
    if blk.empty:
        return []
    c, loss = int(blk["n_classes"].iloc[0]), blk["loss"].iloc[0]
    std = std[(std["n_classes"] == c) & (std["loss"] == loss)].copy()
    std["L_block"], std["block_size"] = std["L_un"], 1
    t = pd.concat([std, blk], ignore_index=True)
    # the judged bound of each point: Prop. 6.2 for the block cells, Lemma 4.3 (its b = 1 case) for the standard
    blocks = t["objective"].to_numpy() == "block"
    t["block_bound"] = np.where(blocks, tables.judged_at(judged, t, POINT, theorem=BLOCK).astype(float),
                                tables.judged_at(judged, t, POINT, theorem=LEMMA, form="population").astype(float))
    t["trivial"] = np.where(blocks, tables.judged_at(judged, t, POINT, "trivial", theorem=BLOCK).astype(float),
                            tables.judged_at(judged, t, POINT, "trivial", theorem=LEMMA, form="population")
                            .astype(float))
    p = probe_table(rows)
    p = _final(p[p["cell"].isin(t["cell"])])
    p = p[p["n_per_class"] == p["n_per_class"].max()]
    fig, ax = plotting.new(2)
    for col, fmt, name in (("L_block", "-o", "block loss L_un^block (population)"),
                           ("L_un", "--s", "standard L_un of the same encoder"),
                           ("L_sup_mu", ":^", "L_sup^mu"),
                           ("block_bound", "-.v", "Prop. 6.2 bound (L_un^block - tau)/(1 - tau)")):
        m = _mean_sd(t, ["block_size"], col)
        ax[0, 0].errorbar(m["block_size"], m["mean"], m["std"], fmt=fmt, ms=3, label=name,
                          gid=plotting.BOUND if col == "block_bound" else None)
    m = _mean_sd(t, ["block_size"], "trivial")
    ax[0, 0].plot(m["block_size"], m["mean"], ":", color="0.45", lw=1.2, gid=plotting.TRIVIAL,
                  label="trivial: the zero encoder's loss")
    m = _mean_sd(t, ["block_size"], "mean_acc")
    ax[0, 1].errorbar(m["block_size"], m["mean"], m["std"], fmt="-o", ms=3, label="mean classifier")
    if len(p):
        m = _mean_sd(p, ["block_size"], "probe_accuracy")
        ax[0, 1].errorbar(m["block_size"], m["mean"], m["std"], fmt="--s", ms=3,
                          label=f"probe (n={int(p['n_per_class'].max())}/class)")
    for a in ax[0]:
        a.set_xscale("log", base=2)
        a.set_xlabel("block size b (b = 1: standard loss)")
        a.legend(fontsize=6)
    ax[0, 0].set_ylabel(f"loss ({loss}, log2 normalisation)")
    ax[0, 1].set_ylabel(f"downstream accuracy ({c}-way)")
    ax[0, 0].set_title(f"C = {c}: training on blocks")
    return plotting.save(fig, out, stem)


def _last(j: pd.DataFrame) -> pd.DataFrame:
    """The judged rows at each cell's last checkpoint (the oracle has only step 0)."""
    return j[j["step"] == j.groupby("cell")["step"].transform("max")] if len(j) else j


def generalisation_view(judged: pd.DataFrame) -> pd.DataFrame:
    """Theorem 4.1 on the norm ball at the last checkpoint: mean over seeds of bound / trivial and measured /
    trivial per (model kind, C, R, M), with the share of points that hold (bounds.csv's verdicts)."""
    j = _last(judged[judged["theorem"] == THEOREM_BALL]) if "theorem" in judged else judged.iloc[0:0]
    if j.empty:
        return pd.DataFrame()
    j = j.assign(ratio=j["bound_value"] / j["trivial"], measured_ratio=j["measured"] / j["trivial"],
                 holds=(j["verdict"] == HOLDS).astype(float))
    return (j.groupby(["model_kind", "n_classes", "radius", "M"])[["ratio", "measured_ratio", "holds"]]
            .mean().reset_index())


def negatives_view(judged: pd.DataFrame) -> pd.DataFrame:
    """The two k-negative forms at the last checkpoint of the trained negatives cells: mean bound / trivial and
    measured / trivial per (form, C, k), with the share of points that hold."""
    if "theorem" not in judged:
        return pd.DataFrame()
    j = judged[judged["theorem"].isin([LEMMA, LEMMA_K, DISTINCT]) & (judged["form"] == "population")
               & judged["objective"].isin(PAPER_LOSSES)]
    j = _last(j)
    ks = j.groupby("n_classes")["k"].nunique()
    j = j[j["n_classes"].isin(ks[ks > 1].index)]
    if j.empty:
        return pd.DataFrame()
    j = j.assign(form_name=np.where(j["theorem"] == DISTINCT, "distinct negatives", "all k + 1 distinct"),
                 ratio=j["bound_value"] / j["trivial"], measured_ratio=j["measured"] / j["trivial"],
                 holds=(j["verdict"] == HOLDS).astype(float))
    # at k = 1 the two forms coincide (Lemma 4.3): draw it on both lines
    one = j[j["k"] == 1].assign(form_name="distinct negatives")
    j = pd.concat([j, one], ignore_index=True)
    return j.groupby(["form_name", "n_classes", "k"])[["ratio", "measured_ratio", "holds"]].mean().reset_index()


def _where(view: pd.DataFrame, knob: str, informative_from_below: bool) -> str:
    """'C=2: M >= 1e+05' style: the knob values at which every point holds, per group, in words."""
    parts = []
    by = [c for c in view.columns if c not in (knob, "ratio", "measured_ratio", "holds")]
    for key, s in view.groupby(by):
        good = s[s["holds"] == 1.0][knob]
        name = ", ".join(v if isinstance(v, str) else f"{c}={v:g}"
                         for c, v in zip(by, key if isinstance(key, tuple) else (key,)))
        if good.empty:
            parts.append(f"{name}: nowhere in the sweep")
        elif informative_from_below:
            parts.append(f"{name}: up to {knob} = {good.max():g}")
        else:
            parts.append(f"{name}: from {knob} = {good.min():g}")
    return "; ".join(parts)


def frontier_caption(judged: pd.DataFrame) -> str:
    """One sentence, computed from the judged rows: where each theorem stops saying anything."""
    out = []
    g = generalisation_view(judged)
    if len(g):
        t = g[g["model_kind"] == "trained"][["n_classes", "radius", "M", "ratio", "measured_ratio", "holds"]]
        t = t.rename(columns={"n_classes": "C", "radius": "R"})
        out.append("Theorem 4.1 on the ball holds below the trivial value for every trained point at "
                   + _where(t, "M", False))
    n = negatives_view(judged)
    if len(n):
        out.append("the k-negative forms hold below it (every trained point) for " +
                   _where(n.rename(columns={"n_classes": "C"}), "k", True))
    return ("Where the theory bites: " + "; and ".join(out) + ".") if out else "No frontier rows in this run."


def fig_frontier(rows: pd.DataFrame, judged: pd.DataFrame, out: Path, stem: str) -> list[Path]:
    """Bound / trivial against M (Theorem 4.1 on the ball) and against k (the two k-negative forms); the line
    bound = trivial; trained and oracle points apart; the measured value / trivial beside (grey)."""
    g, n = generalisation_view(judged), negatives_view(judged)
    if g.empty and n.empty:
        return []
    fig, ax = plotting.new(2, width=5.2, height=3.9)
    if g.empty:
        plotting.message(ax[0, 0], "no generalisation rows in this run")
    for i, ((c, R), s) in enumerate(g.groupby(["n_classes", "radius"]) if len(g) else ()):
        for kind, marker, fill in (("trained", "o", f"C{i}"), ("oracle", "^", "none")):
            k = s[s["model_kind"] == kind].sort_values("M")
            if k.empty:
                continue
            ax[0, 0].plot(k["M"], k["ratio"], "-" if kind == "trained" else "--", marker=marker, color=f"C{i}",
                          mfc=fill, label=f"C={c}, R={R:g} {kind}", gid=plotting.BOUND)
            if kind == "trained":
                ax[0, 0].plot(k["M"], k["measured_ratio"], ":", marker=".", color="0.5", lw=0.8)
    classes = sorted(n["n_classes"].unique()) if len(n) else []
    if n.empty:
        plotting.message(ax[0, 1], "no k-negative sweep in this run")
    for (form, c), s in n.groupby(["form_name", "n_classes"]) if len(n) else ():
        s = s.sort_values("k")
        distinct = form.startswith("distinct")
        ax[0, 1].plot(s["k"], s["ratio"].clip(upper=1e3), "-" if distinct else "--", marker="o" if distinct else "s",
                      color=f"C{classes.index(c)}", mfc=None if distinct else "none",
                      label=f"C={c} {form} (trained)", gid=plotting.BOUND)
        ax[0, 1].plot(s["k"], s["measured_ratio"], ":", marker=".", color="0.5", lw=0.8)
    for a, knob in ((ax[0, 0], "tuples M"), (ax[0, 1], "negatives k")):
        plotting.trivial_line(a, 1.0, "bound = trivial", color="k", ls="-")
        a.set_xscale("log")
        a.set_yscale("log")
        a.set_xlabel(knob)
        a.set_ylabel("bound / trivial (grey dotted: measured / trivial)")
        a.legend(fontsize=6)
    ax[0, 0].set_title("Theorem 4.1, Gen_M on ||W||_F <= R")
    ax[0, 1].set_title("k negatives: two forms of Lemma 4.3 (clipped at 1e3)")
    fig.suptitle(textwrap.fill(frontier_caption(judged), 150), fontsize=6.5, y=0.995, va="top")
    return plotting.save(fig, out, stem)


def fig_generalisation(rows: pd.DataFrame, judged: pd.DataFrame, out: Path, stem: str) -> list[Path]:
    """Theorem 4.1 on the norm ball: bound, L^_un + Gen_M / 2 and measured L_sup^mu against M, per C and R."""
    g = generalisation_view(judged)
    if g.empty:
        return []
    classes = sorted(g["n_classes"].unique())
    fig, ax = plotting.new(len(classes))
    for a, c in zip(ax[0], classes):
        s = g[g["n_classes"] == c]
        for i, (R, r) in enumerate(s.groupby("radius")):
            for kind, marker, fill in (("trained", "o", f"C{i}"), ("oracle", "^", "none")):
                k = r[r["model_kind"] == kind].sort_values("M")
                a.plot(k["M"], k["ratio"], "-" if kind == "trained" else "--", marker=marker, color=f"C{i}",
                       mfc=fill, label=f"R={R:g} {kind}: bound", gid=plotting.BOUND)
                a.plot(k["M"], k["measured_ratio"], ":", marker="." if kind == "trained" else "x", color=f"C{i}",
                       alpha=0.6,
                       label=f"R={R:g} {kind}: measured L_sup^mu")
        plotting.trivial_line(a, 1.0, "trivial (ell(0) = 1)", color="k", ls="-")
        a.set_xscale("log")
        a.set_yscale("log")
        a.set_xlabel("tuples M")
        a.set_ylabel("value / trivial")
        a.set_title(f"C = {c}: Theorem 4.1 on the ball")
        a.legend(fontsize=6)
    return plotting.save(fig, out, stem)


# One name per study: each figure is named after the config section (study) whose cells it draws.
FIGURES = {"bound": fig_bound, "negatives": fig_negatives, "sample_complexity": fig_sample_complexity,
           "block": fig_block, "generalisation": fig_generalisation, "frontier": fig_frontier}
SUMMARY_FIGURES: dict[str, tuple[str, ...]] = {"frontier": ("generalisation|negatives",)}   # needed on (either)

"""The augmentation-graph chapter: bound checks and four figures, from stored rows.

Every bound value is computed by the theorem's own function (theory.augmentation_graph) from the row's term
columns; the terms are exact (enumerated graphs), so every SE is 0. The figures read bound values from the run's
judged table (its rows of bounds.csv), never computing them again.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from scipy.optimize import brentq

from analysis import plotting, tables
from analysis.bounds import CONSTRUCTED, HOLDS, ORACLE, TRAINED, UNTRAINED
from theory import augmentation_graph as th

T = {t.id.split(".", 1)[1]: t for t in th.THEOREMS}
CLASS_NAMES = {"linear": "linear", "mlp": "MLP", "mlp_wd": "MLP + weight decay", "lookup": "lookup table",
               "linear_fullbatch": "linear, exact full-batch GD"}


def exact_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per cell: every exact scalar, plus ';'-joined eigenvalue lists (gammas: top d; T_eigs: top d)."""
    ex = rows[rows["encoder_class"] == "exact"]
    sc = ex[ex["i"] == 0].set_index(["cell", "family", "objective", "d", "metric"])["value"].unstack("metric")
    sc = sc.reset_index()
    sc.columns.name = None
    sc["overlap"] = sc["cell"].map(rows.groupby("cell")["overlap"].first())
    gam = {c: g.sort_values("i")["value"].to_numpy() for c, g in ex[ex["metric"] == "gamma"].groupby("cell")}
    teig = {c: g.sort_values("i")["value"].to_numpy() for c, g in ex[ex["metric"] == "T_eig"].groupby("cell")}
    sc["gammas"] = [th.encode_values(gam[c][: int(d)]) for c, d in zip(sc["cell"], sc["d"])]
    sc["T_eigs"] = [th.encode_values(teig[c][: int(d)]) for c, d in zip(sc["cell"], sc["d"])]
    return sc


def _curve(rows: pd.DataFrame, metric: str) -> pd.DataFrame:
    c = rows[(rows["metric"] == metric) & (rows["encoder_class"] != "exact")]
    return c[["cell", "family", "objective", "overlap", "d", "encoder_class", "seed", "step", "value"]]


def picked(rows: pd.DataFrame, role: str) -> pd.DataFrame:
    """One row per (cell, class, seed) at the matched or final checkpoint, metrics as columns."""
    r = rows[rows["metric"].str.startswith(role + "_")].copy()
    r["metric"] = r["metric"].str[len(role) + 1:]
    w = r.set_index(["cell", "family", "objective", "overlap", "d", "encoder_class", "seed", "step", "metric"])[
        "value"].unstack("metric").reset_index()
    w.columns.name = None
    return w


def trained_kind(step) -> np.ndarray:
    """A trained encoder's checkpoint: "untrained" at step 0 (its initialisation), else "trained"."""
    return np.where(np.asarray(step) == 0, UNTRAINED, TRAINED).astype(object)


def corollary_rows(rows: pd.DataFrame, cube: pd.DataFrame) -> pd.DataFrame:
    """Corollary 4.2(b)'s points: each linear encoder trained by SGD at its last checkpoint, the exact full-batch
    descent at every checkpoint of its path, and the closed-form linear minimiser (oracle). The corollary's
    constant is derived for τ ~ U(0, 1] (T's eigengap 1/4); the rows are judged on the discretised scales of the
    cell, whose eigengap 1 − λ_{k+1}(T) is in ``T_gap``."""
    keep = ["cell", "family", "objective", "overlap", "d", "encoder_class", "seed", "step"]
    fin, path = picked(rows, "final"), picked(rows, "path")
    sgd = fin[(fin["family"] == "hypercube") & (fin["encoder_class"] == "linear")].assign(pick="final")
    parts = [sgd] + ([path[path["family"] == "hypercube"].assign(pick="path")] if len(path) else [])
    lin = pd.concat(parts, ignore_index=True)
    terms = cube[["cell", "linear_min", "label_dim", "majority_error", "alpha", "T_eigs", "linear_opt_loss",
                  "linear_opt_probe_error", "linear_opt_probe_converged"]]
    lin = lin.merge(terms, on="cell")
    opt = cube.assign(encoder_class="linear_opt", seed=-1, step=0, pick="oracle", spectral=cube["linear_opt_loss"],
                      probe_error=cube["linear_opt_probe_error"], probe_converged=cube["linear_opt_probe_converged"])
    lin = pd.concat([lin, opt[[c for c in lin.columns if c in opt.columns]]], ignore_index=True)
    kind = np.where(lin["pick"] == "oracle", ORACLE, trained_kind(lin["step"]))
    t_gap = [1.0 - float(th.decode_values(v)[int(k)]) if len(th.decode_values(v)) > int(k) else np.nan
             for v, k in zip(lin["T_eigs"], lin["label_dim"])]
    f5 = lin[keep + ["pick"]].assign(
        theorem=T["corollary_4_2b"].id, bound="probe_error", form="linear class", model_kind=kind,
        measured=lin["probe_error"].to_numpy(), measured_se=0.0, bound_se=0.0,
        trivial=lin["majority_error"].to_numpy(), converged=lin["probe_converged"] > 0,
        loss=lin["spectral"].to_numpy(), loss_min_linear=lin["linear_min"].to_numpy(),
        gap=lin["spectral"].to_numpy() - lin["linear_min"].to_numpy(), T_gap=t_gap,
        label_dim=lin["label_dim"].to_numpy(), majority_error=lin["majority_error"].to_numpy(),
        alpha=lin["alpha"].to_numpy())
    if "gd_converged" in lin:
        f5["gd_converged"] = lin["gd_converged"].to_numpy()
    return f5


def bound_checks(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows for bounds.csv, one per (theorem, point); docs/theory/augmentation_graph.md states each theorem."""
    if rows.empty or "encoder_class" not in rows:
        return pd.DataFrame()
    ex = exact_table(rows)
    cols = ["cell", "family", "objective", "overlap", "d", "alpha", "majority_error"]
    frames = []
    # 1, 2: no encoder below the closed-form minimum (all f), nor a linear one below the linear minimum
    loss = _curve(rows, "spectral_loss").merge(ex[["cell", "gammas", "T_eigs", "majority_error"]], on="cell")
    base = {"measured": -loss["value"].to_numpy(), "measured_se": 0.0, "bound_se": 0.0,
            "trivial": np.inf, "converged": True}
    keep = ["cell", "family", "objective", "overlap", "d", "encoder_class", "seed", "step"]
    f1 = loss[keep + ["gammas"]].assign(theorem=T["spectral_minimum"].id, bound="spectral_minimum", form="all f",
                                        loss=loss["value"], model_kind=trained_kind(loss["step"]), **base)
    f1["bound_value"] = T["spectral_minimum"].bound_from(f1)
    frames.append(f1)
    lin = loss[loss["encoder_class"].isin(th.LINEAR_CLASSES)]
    f2 = lin[keep + ["T_eigs"]].assign(theorem=T["linear_class_minimum"].id, bound="linear_minimum",
                                       form="linear class", loss=lin["value"], measured=-lin["value"].to_numpy(),
                                       measured_se=0.0, bound_se=0.0, trivial=np.inf, converged=True,
                                       model_kind=trained_kind(lin["step"]))
    f2["bound_value"] = T["linear_class_minimum"].bound_from(f2)
    frames.append(f2)
    # 3, 4: HaoChen's bounds at the closed-form minimiser, from the data and augmentations only
    # one row per data set: cells that differ only in the objective share the graph (keep the spectral one)
    e = ex.sort_values(["family", "overlap", "objective"], ascending=[True, True, False], na_position="last")
    e = e.drop_duplicates(["family", "overlap", "d", "n_inputs", "alpha", "lambda_next"])
    e = e[cols + ["lambda_next", "gamma_d", "rho", "rho_exact", "fstar_ls_error", "fstar_probe_converged",
                  "n_classes", "fstar_ls_error_min", "fstar_ls_error_max", "fstar_ls_tied"]].copy()
    # f* is one pick from the top-d eigenspace; where γ_d = γ_{d+1} its LS head can tie exactly, so the measured
    # error breaks ties uniformly (the expected error) and the best and worst tie-breaks stand beside it
    common = {"measured": e["fstar_ls_error"].to_numpy(), "measured_tie_min": e["fstar_ls_error_min"].to_numpy(),
              "measured_tie_max": e["fstar_ls_error_max"].to_numpy(), "tied_mass": e["fstar_ls_tied"].to_numpy(),
              "measured_se": 0.0, "bound_se": 0.0,
              "trivial": e["majority_error"].to_numpy(), "converged": True, "encoder_class": "exact",
              "model_kind": ORACLE}
    f3 = e.assign(theorem=T["eigenvalue_bound"].id, bound="probe_error", form="eigenvalue", **common)
    f3["bound_value"] = T["eigenvalue_bound"].bound_from(f3)
    f4 = e.assign(theorem=T["theorem_3_7_form"].id, bound="probe_error", form="sparsest partition",
                  rho_source=np.where(e["rho_exact"] > 0, "exact", "cheeger_lower (lambda_m / 2 <= rho_m)"), **common)
    f4["bound_value"] = T["theorem_3_7_form"].bound_from(f4)
    frames += [f3, f4]
    # 5, 6: the hypercube: the function-class-aware bound and the permuted minimiser
    cube = ex[ex["family"] == "hypercube"]
    if len(cube):
        f5 = corollary_rows(rows, cube)
        f5["bound_value"] = T["corollary_4_2b"].bound_from(f5)
        c = cube[cols + ["n_natural", "max_overlap", "permuted_probe_error", "permuted_probe_converged",
                         "permuted_loss", "perfect_loss"]]
        f6 = c.assign(theorem=T["lemma_4_1_permutation"].id, bound="probe_error", form="permuted minimiser",
                      measured=c["permuted_probe_error"].to_numpy(), measured_se=0.0, bound_se=0.0,
                      trivial=c["majority_error"].to_numpy(), converged=c["permuted_probe_converged"] > 0,
                      encoder_class="permuted", model_kind=CONSTRUCTED)
        f6["bound_value"] = T["lemma_4_1_permutation"].bound_from(f6)
        frames += [f5, f6]
    out = pd.concat(frames, ignore_index=True)
    out["converged"] = out["converged"].astype(bool)
    return out


# ----------------------------------------------------------------------------------------------- figures
def _ms(df: pd.DataFrame, by, col) -> pd.DataFrame:
    return df.groupby(by)[col].agg(["mean", "std"]).reset_index().fillna({"std": 0.0})


def _sweep_d(ex: pd.DataFrame) -> int:
    """The overlap sweep's d: the smallest d among the cluster cells (the partition study's cells are wider)."""
    cl = ex[ex["family"] == "clusters"]
    return int(cl["d"].min()) if len(cl) else 0


def _overlap_cells(rows: pd.DataFrame) -> pd.DataFrame:
    ex = exact_table(rows)
    ex = ex[(ex["family"] == "clusters") & (ex["objective"] == "spectral")]
    return ex[ex["d"] == _sweep_d(ex)].sort_values("overlap")


def fig_overlap(rows: pd.DataFrame, judged: pd.DataFrame, out: Path, stem: str) -> list[Path]:
    """Probe error of f* and trained encoders, and HaoChen's bounds, as the same-class overlap shrinks."""
    ex = _overlap_cells(rows)
    fig, ax = plotting.new(2)
    if ex["overlap"].nunique() < 2:
        for a in ax[0]:
            plotting.message(a, "the overlap study is disabled (fewer than two overlaps)")
        return plotting.save(fig, out, stem)
    x = ex["overlap"].to_numpy()
    a = ax[0, 0]
    for tid, style, label, gid in (("eigenvalue_bound", "k-s", "bound α + 4α/λ_{d+1} (derived)", plotting.BOUND),
                                   ("theorem_3_7_form", "k:^", "α/ρ² (Thm 3.7 form, reference)", plotting.REFERENCE)):
        a.plot(x, tables.judged_at(judged, ex, ["cell"], theorem=T[tid].id).astype(float), style, ms=4, label=label,
               gid=gid)
    a.plot(x, ex["fstar_ls_error"], "C3-o", ms=4, label="f* (exact minimiser), LS head, ties broken at random")
    if "fstar_ls_error_min" in ex:
        a.fill_between(x, ex["fstar_ls_error_min"], ex["fstar_ls_error_max"], color="C3", alpha=0.15, lw=0,
                       label="f*: best to worst tie-break (f* is one pick of a tied eigenspace)")
    fin = picked(rows, "final")
    fin = fin[fin["cell"].isin(ex["cell"])]
    for i, (cls, g) in enumerate(fin.groupby("encoder_class")):
        m = _ms(g, ["overlap"], "probe_error")
        a.errorbar(m["overlap"], m["mean"], m["std"], fmt="--o", ms=3, color=f"C{i}",
                   label=f"trained {CLASS_NAMES[cls]}, probe")
    plotting.trivial_line(a, float(ex["majority_error"].iloc[0]), "trivial (majority)", color="0.5", lw=0.8, ls="--")
    a.set_ylim(0, 1.05)
    a.set_xlabel("same-class overlap")
    a.set_ylabel("downstream error")
    a.set_title("bounds from the graph go vacuous as overlap shrinks")
    a.legend(fontsize=6)
    b = ax[0, 1]
    b.plot(x, ex["lambda_next"], "-o", ms=4, label="λ_{d+1} = 1 − γ_{d+1}")
    b.plot(x, ex["rho"], "-s", ms=4, label="ρ_{⌊d/2⌋} (exact where enumerable)")
    b.plot(x, ex["alpha"], "-^", ms=4, label="α")
    b.set_xlabel("same-class overlap")
    b.set_title("the graph's quantities")
    b.legend(fontsize=6)
    return plotting.save(fig, out, stem)


def _matched_rows(rows: pd.DataFrame) -> pd.DataFrame:
    m = picked(rows, "matched")
    m = m[m["family"] == "clusters"]
    m = m[m["d"] == m["d"].min()] if len(m) else m
    if m.empty:
        return m
    # the matched study's cells: those with the most classes at the overlap of an ntxent cell, else the smallest
    nt = m[m["objective"] == "ntxent"]
    ov = nt["overlap"].iloc[0] if len(nt) else m.groupby("overlap")["encoder_class"].nunique().idxmax()
    return m[m["overlap"] == ov]


def fig_matched(rows: pd.DataFrame, judged: pd.DataFrame, out: Path, stem: str) -> list[Path]:
    """Encoder classes at a matched contrastive loss: downstream error far apart, alignment/uniformity alike."""
    m = _matched_rows(rows)
    fig, ax = plotting.new(3)
    if m.empty:
        for a in ax[0]:
            plotting.message(a, "the matched study is disabled")
        return plotting.save(fig, out, stem)
    groups = list(m.groupby(["objective", "encoder_class"]))
    labels = [f"{o}\n{CLASS_NAMES[c]}" for (o, c), _ in groups]
    for j, (col, title) in enumerate((("probe_error", "downstream error (exact probe)"),
                                      ("objective_loss", "contrastive loss at the matched checkpoint"),
                                      ("align", "alignment (bars) and uniformity (dots)"))):
        a = ax[0, j]
        for i, (_, g) in enumerate(groups):
            a.bar(i, g[col].mean(), yerr=g[col].std() if len(g) > 1 else 0, color=f"C{i}")
            if col == "align":
                a.plot([i], [g["uniform"].mean()], "ko", ms=4)
        a.set_xticks(range(len(groups)), labels, rotation=30, ha="right", fontsize=6)
        a.set_title(title)
    ov = m["overlap"].iloc[0]
    ax[0, 0].set_ylabel(f"clusters at overlap {ov:g}")
    return plotting.save(fig, out, stem)


def fig_exact_vs_trained(rows: pd.DataFrame, judged: pd.DataFrame, out: Path, stem: str) -> list[Path]:
    """Loss gap to the closed-form minimum and the subspace angle to the top eigenspace, per class."""
    fin = picked(rows, "final")
    ex = exact_table(rows)[["cell", "spectral_min"]]
    fin = fin[(fin["family"] == "clusters") & (fin["objective"] == "spectral")].merge(ex, on="cell")
    fin = fin[fin["d"] == fin["d"].min()] if len(fin) else fin
    fig, ax = plotting.new(2)
    if fin.empty:
        for a in ax[0]:
            plotting.message(a, "no spectral cells on cluster data")
        return plotting.save(fig, out, stem)
    fin["gap"] = fin["spectral"] - fin["spectral_min"]
    for i, (cls, g) in enumerate(fin.groupby("encoder_class")):
        for a, col in ((ax[0, 0], "gap"), (ax[0, 1], "angle")):
            mm = _ms(g, ["overlap"], col)
            a.errorbar(mm["overlap"], mm["mean"], mm["std"], fmt="-o", ms=3, color=f"C{i}", label=CLASS_NAMES[cls])
    ax[0, 0].set_yscale("symlog", linthresh=1e-3)
    ax[0, 0].set_ylabel("L(f) − min L  (>= 0)")
    ax[0, 1].set_ylabel("largest principal angle (deg)")
    for a in ax[0]:
        a.set_xlabel("same-class overlap")
        a.legend(fontsize=6)
    ax[0, 0].set_title("loss gap at the last checkpoint")
    ax[0, 1].set_title("subspace angle (ties at γ_d included)")
    return plotting.save(fig, out, stem)


def fig_hypercube(rows: pd.DataFrame, judged: pd.DataFrame, out: Path, stem: str) -> list[Path]:
    """Example 1: perfect vs permuted minimisers and trained linear / MLP / lookup encoders."""
    ex = exact_table(rows)
    cube = ex[ex["family"] == "hypercube"]
    fig, ax = plotting.new(3)
    if cube.empty:
        for a in ax[0]:
            plotting.message(a, "the hypercube study is disabled")
        return plotting.save(fig, out, stem)
    c = cube.iloc[0]
    fin = picked(rows, "final")
    fin = fin[fin["cell"] == c["cell"]]
    names = ["perfect f", "permuted f̂ (Lemma 4.1)"]
    errs = [(c["perfect_probe_error"], 0.0), (c["permuted_probe_error"], 0.0)]
    losses = [(c["perfect_loss"], 0.0), (c["permuted_loss"], 0.0)]
    for cls, g in fin.groupby("encoder_class", sort=False):
        names.append(CLASS_NAMES[cls])
        errs.append((g["probe_error"].mean(), g["probe_error"].std() if len(g) > 1 else 0.0))
        losses.append((g["spectral"].mean(), g["spectral"].std() if len(g) > 1 else 0.0))
    for i, ((e, es), (l, ls)) in enumerate(zip(errs, losses)):
        for a, v, se in ((ax[0, 0], e, es), (ax[0, 1], -l, ls)):
            a.bar(i, v, yerr=se, color=f"C{i}")
            if abs(v) < 5e-4:   # a zero-height bar is invisible: mark its value where it stands
                a.plot([i - 0.4, i + 0.4], [0, 0], color=f"C{i}", lw=3, solid_capstyle="butt")
                a.annotate("0", (i, 0), xytext=(0, 3), textcoords="offset points", ha="center", va="bottom",
                           fontsize=7, color=f"C{i}")
    for a in ax[0, :2]:
        a.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=6)
    lemma = judged[judged["theorem"] == T["lemma_4_1_permutation"].id]
    chance = float(lemma["trivial"].iloc[0]) if len(lemma) else 0.5
    plotting.trivial_line(ax[0, 0], chance, f"trivial: chance {chance:g}", color="k", lw=0.7)
    if len(lemma):   # the permuted minimiser (bar 1) against Lemma 4.1's reference, a lower bound on its error
        ref = float(lemma["bound_value"].iloc[0])
        shown = max(ref, 0.0)
        ax[0, 0].plot([0.6, 1.4], [shown, shown], color="k", lw=1.4, ls="--", gid=plotting.REFERENCE,
                      label=f"Lemma 4.1 reference 1/2 − √(d ln N/N)\n= {ref:.2f}" +
                            (" < 0 (drawn at 0): says nothing" if ref < 0 else " (f̂'s error expected above)"))
    ax[0, 0].set_ylim(0, 0.62)
    ax[0, 0].legend(fontsize=6, loc="upper left")
    ax[0, 0].set_title("downstream error (exact probe)")
    ax[0, 1].axhline(-c["spectral_min"], color="k", ls="--", lw=0.8, label="−min over all f", gid=plotting.BOUND)
    ax[0, 1].axhline(-c["linear_min"], color="C1", ls=":", lw=0.8, label="−min over linear f")
    plotting.no_trivial(ax[0, 1], "no trivial value: the closed-form\nminimum is exact (Eckart–Young)", loc="upper right")
    ax[0, 1].set_ylim(0, 1.25 * max(-c["spectral_min"], max(-l for l, _ in losses)))
    ax[0, 1].set_title("−spectral loss (higher is lower loss)")
    ax[0, 1].legend(fontsize=6, loc="upper left")
    cor = judged[judged["theorem"] == T["corollary_4_2b"].id]
    if len(cor):   # the full-batch path at its last step only (the frontier figure draws the whole path)
        last = cor.groupby(["encoder_class", "seed"])["step"].transform("max")
        cor = cor[(cor["pick"] != "path") | (cor["step"] == last)]
    a = ax[0, 2]
    if len(cor):
        a.scatter(cor["bound_value"], cor["measured"], s=14, gid=plotting.BOUND,
                  label="linear encoders (SGD, full-batch\nGD: last step; minimiser)")
        triv = float(cor["trivial"].iloc[0])
        a.plot([0, 1], [0, 1], "k--", lw=0.8, label="y = x (below: holds)")
        plotting.trivial_line(a, triv, f"trivial {triv:g}: a bound right of\nit is vacuous", vertical=True)
        plotting.trivial_line(a, triv, None)
        a.set_ylim(-0.03, 1.0)   # an error lies in [0, 1]; the bound runs on along x
        a.set_xlim(left=-0.03 * max(1.0, float(cor["bound_value"].max())))
        a.set_xlabel("Cor. 4.2(b): 32k (L − inf_lin L)")
        a.set_ylabel("measured error")
        a.legend(fontsize=6, loc="upper right")
        a.set_title("function-class-aware bound")
    else:
        plotting.message(a, "no linear encoder on the hypercube")
    return plotting.save(fig, out, stem)


def vacuity_point(fn, trivial: float, lo: float, hi: float) -> float:
    """Where the bound ``fn(x)`` (monotone in x on [lo, hi]) crosses the trivial value, found on the theorem's own
    function (so the frontier follows the bound, not a formula copied beside it); nan if it does not cross."""
    g = lambda x: float(np.asarray(fn(x)).ravel()[0]) - trivial  # noqa: E731
    if not np.isfinite(g(lo)) or not np.isfinite(g(hi)) or g(lo) * g(hi) > 0:
        return float("nan")
    return float(brentq(g, lo, hi, xtol=1e-15, rtol=1e-12))


FLOOR = 1e-8   # where a gap or a bound of exactly 0 (the oracle) is drawn on a log axis


def fig_frontier(rows: pd.DataFrame, judged: pd.DataFrame, out: Path, stem: str) -> list[Path]:
    """Where the theorems stop saying anything: Corollary 4.2(b)'s bound ÷ trivial against L − min_lin L (trained
    by SGD, by exact full-batch descent, the closed-form oracle), the measured error beside it, and the eigenvalue
    bound ÷ trivial against λ_{d+1} at the exact minimiser. The caption's thresholds come from the bound functions."""
    fig, ax = plotting.new(3)
    if judged.empty:
        for a in ax[0]:
            plotting.message(a, "no bound checks")
        return plotting.save(fig, out, stem)
    cor = judged[judged["theorem"] == T["corollary_4_2b"].id]
    sentence = []
    if len(cor):
        k, triv = float(cor["label_dim"].iloc[0]), float(cor["trivial"].iloc[0])
        fn = lambda g: T["corollary_4_2b"].bound_from({"label_dim": [k], "loss": [g], "loss_min_linear": [0.0]})  # noqa
        g_star = vacuity_point(fn, triv, 0.0, 10.0)
        x = np.maximum(cor["gap"].to_numpy(), FLOOR)
        styles = [("trained: exact full-batch GD path", (cor["pick"] == "path") & (cor["model_kind"] == TRAINED),
                   "C3", "s", 14),
                  ("trained: SGD, last checkpoint", (cor["pick"] == "final") & (cor["model_kind"] == TRAINED),
                   "C0", "o", 30),
                  ("untrained (step 0)", cor["model_kind"] == UNTRAINED, "0.5", "x", 16),
                  (f"oracle: linear minimiser (gap 0, drawn at {FLOOR:g})", cor["model_kind"] == ORACLE, "k", "*", 40)]
        for label, m, color, marker, size in styles:
            m = m.to_numpy()
            if m.any():
                ax[0, 0].scatter(x[m], np.maximum(cor["bound_value"].to_numpy()[m] / triv, FLOOR), s=size, c=color,
                                 marker=marker, label=label, edgecolors="k" if marker == "o" else None, linewidths=0.4,
                                 gid=plotting.BOUND)
                ax[0, 1].scatter(x[m], cor["measured"].to_numpy()[m] / triv, s=size, c=color, marker=marker,
                                 label=label, edgecolors="k" if marker == "o" else None, linewidths=0.4)
        for a in ax[0, :2]:
            a.axvline(g_star, color="k", ls=":", lw=0.8, label=f"bound = trivial at gap {g_star:.3g}")
            a.set_xscale("log")
            a.set_xlabel("L(f) − min over linear f  (exact)")
        plotting.trivial_line(ax[0, 0], 1.0, "bound = trivial", color="k", ls="--", lw=0.8)
        ax[0, 0].set_yscale("log")
        ax[0, 0].set_ylabel("Cor. 4.2(b) bound ÷ trivial (1/2)")
        ax[0, 0].set_title("Cor. 4.2(b): 32k (L − min_lin L)")
        plotting.trivial_line(ax[0, 1], 1.0, None, color="k", ls="--", lw=0.8)
        ax[0, 1].set_ylim(-0.05, 1.1)
        ax[0, 1].set_ylabel("measured probe error ÷ trivial")
        ax[0, 1].set_title("measured, same points")
        ax[0, 0].legend(fontsize=5, loc="lower right")
        trained = cor[cor["model_kind"] == TRAINED]
        gap_t = float(cor["T_gap"].iloc[0])
        sentence.append(f"Corollary 4.2(b) stops saying anything once L − min_lin L ≥ {g_star:.3g} (k = {k:g}; "
                        f"{int((trained['verdict'] == HOLDS).sum())} of {len(trained)} trained points hold, judged on "
                        f"the discretised scales, T's eigengap {gap_t:.3g} against 1/4 for τ ~ U(0, 1])")
    else:
        for a in ax[0, :2]:
            plotting.message(a, "the hypercube study is disabled")
    eig = judged[(judged["theorem"] == T["eigenvalue_bound"].id) & (judged["family"] == "clusters")]
    eig = eig[eig["d"] == eig["d"].min()] if len(eig) else eig   # the overlap sweep: the knob that moves λ_{d+1}
    a = ax[0, 2]
    if len(eig):
        eig = eig.sort_values("lambda_next")
        alpha, triv = float(eig["alpha"].median()), float(eig["trivial"].median())
        fn = lambda lam: T["eigenvalue_bound"].bound_from({"alpha": [alpha], "lambda_next": [lam]})  # noqa
        lam_star = vacuity_point(fn, triv, 1e-9, 2.0)
        lam = eig["lambda_next"].to_numpy()
        a.plot(lam, eig["bound_value"] / eig["trivial"], "k-s", ms=4, label="bound α + 4α/λ_{d+1}, capped at 1",
               gid=plotting.BOUND)
        lo, hi = eig["measured_tie_min"] / eig["trivial"], eig["measured_tie_max"] / eig["trivial"]
        mid = eig["measured"] / eig["trivial"]
        a.errorbar(lam, mid, [mid - lo, hi - mid], fmt="o", ms=4, color="C3", capsize=2,
                   label="oracle f*: LS head, ties broken at random (bar: best to worst tie-break)")
        plotting.trivial_line(a, 1.0, "bound = trivial", color="k", ls="--", lw=0.8)
        a.axvline(lam_star, color="k", ls=":", lw=0.8, label=f"vacuous below λ_(d+1) = {lam_star:.3g}")
        a.set_xlabel(f"λ_(d+1) = 1 − γ_(d+1) (overlap sweep, d = {int(eig['d'].iloc[0])})")
        a.set_ylabel("÷ trivial (majority error)")
        a.set_title("eigenvalue bound at the exact minimiser")
        a.legend(fontsize=5)
        sentence.append(f"the eigenvalue bound stops once λ_(d+1) ≤ {lam_star:.3g} (α = {alpha:.3g})")
    else:
        plotting.message(a, "no cluster cells")
    if sentence:
        fig.suptitle("; ".join(sentence) + ".", fontsize=7, wrap=True)
    return plotting.save(fig, out, stem)


# One name per study: a figure named after a config section draws that study's cells; SUMMARY_FIGURES lists the
# studies of each figure that is not one study's.
FIGURES = {"overlap": fig_overlap, "matched": fig_matched, "exact_vs_trained": fig_exact_vs_trained,
           "hypercube": fig_hypercube, "frontier": fig_frontier}
# the studies a summary figure needs on (each entry; "a|b": either)
SUMMARY_FIGURES = {"exact_vs_trained": ("overlap|matched",),            # every spectral cell on cluster data
                   "frontier": ("hypercube|fullbatch|overlap",)}       # where Cor. 4.2(b) and the eigenvalue bound stop

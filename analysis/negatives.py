"""More negatives: the five forms' bound checks, the Awasthi et al. check, and the chapter's figures.

Every bound value is computed from its theorem's terms (theory.negatives does the arithmetic), never fitted to a
measured curve. Trained rows (form "measured") are means over seeds with across-seed SEs; finite-instance rows
(form "exact") have no sampling noise; optimum rows (form "optimum") are references, read above / below.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis import plotting, tables
from theory import negatives as th
from theory.stats import mean_se

KEYS = ["cell", "study", "n_classes", "law", "K", "b", "model_kind", "seed", "step"]
POINT = ["cell", "study", "n_classes", "law", "K", "b", "model_kind", "step"]
UPPER = ("arora_2019", "nozawa_sato_2021", "ash_2022", "bao_2022_upper")
LOWER = "bao_2022_lower"
# Every registry id a row of bound_checks names, written out so that `sslt theorems --where` finds each one; the
# rows are checked against it, so a renamed theorem cannot leave this list stale.
ROW_THEOREMS = ("negatives.arora_2019", "negatives.nozawa_sato_2021", "negatives.ash_2022",
                "negatives.bao_2022_upper", "negatives.bao_2022_lower", "negatives.optimum_arora_2019",
                "negatives.optimum_nozawa_sato_2021", "negatives.optimum_ash_2022", "negatives.optimum_bao_2022_upper")
LABELS = {"arora_2019": "Arora et al. 2019", "nozawa_sato_2021": "Nozawa & Sato 2021", "ash_2022": "Ash et al. 2022",
          "bao_2022_upper": "Bao et al. 2022 (upper)", LOWER: "Bao et al. 2022 (lower)"}
EXACT = ("tau_K", "no_collision", "upsilon", "collision", "coupon", "Delta_U", "Delta_L", "rho_max", "H_rho")
MEASURED = ("R_cont", "R_mu_supv", "mean_acc")
_BOUND = {"arora_2019": lambda t, R: th.arora_bound(R, t["collision"], t["no_collision"], t["upsilon"]),
          "nozawa_sato_2021": lambda t, R: th.nozawa_bound(R, t["collision"], t["upsilon"]),
          "ash_2022": lambda t, R: th.ash_bound(R, t["collision"], t["no_collision"], t["K"], t["coupon"]),
          "bao_2022_upper": lambda t, R: th.bao_upper_bound(R, t["Delta_U"])}


def points(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per point (cell, K, b, model kind, step): the measured terms' means over seeds with their
    across-seed SEs, and the exact terms."""
    if rows.empty:
        return pd.DataFrame()
    wide = tables.scalar_wide(rows, KEYS)
    out = []
    for key, g in wide.groupby(POINT, sort=True):
        rec = dict(zip(POINT, key))
        for m in MEASURED:
            rec[m], rec[m + "_se"] = mean_se(g[m].to_numpy())
        for m in EXACT + ("R_cont_opt", "R_supv_opt"):
            if m in g:
                rec[m] = float(g[m].iloc[0])
        rec["n_seeds"] = len(g)
        out.append(rec)
    t = pd.DataFrame(out)
    t["C"] = t["n_classes"]
    return t


def _finite_rows(wide: pd.DataFrame) -> pd.DataFrame:
    """Finite-instance rows are exact: one point per encoder, SE 0."""
    t = wide.copy()
    for m in MEASURED:
        t[m + "_se"] = 0.0
    t["C"] = t["n_classes"]
    return t


def _frame(t: pd.DataFrame, form: str) -> list[pd.DataFrame]:
    cols = [c for c in ["cell", "study", "law", "C", "K", "b", "model_kind", "step", "seed", "R_cont", "R_cont_se",
                        "R_mu_supv", "R_mu_supv_se", "mean_acc", "mean_acc_se", *EXACT] if c in t]
    common = {c: t[c].to_numpy() for c in cols}
    K = t["K"].to_numpy(dtype=np.float64)
    frames = []
    for name in UPPER:
        coef = th.coefficient(name, t["no_collision"].to_numpy(), t["upsilon"].to_numpy(), K, t["coupon"].to_numpy())
        with np.errstate(invalid="ignore"):
            b_se = np.abs(coef) * t["R_cont_se"].to_numpy()
        frames.append(pd.DataFrame({
            "theorem": f"negatives.{name}", "bound": "mean_classifier", "form": form,
            "measured": t["R_mu_supv"].to_numpy(), "measured_se": t["R_mu_supv_se"].to_numpy(),
            "bound_value": _BOUND[name](t, t["R_cont"].to_numpy()), "bound_se": b_se,
            "trivial": th.trivial_log_c(t["C"].to_numpy()), "coefficient": coef, **common}))
    frames.append(pd.DataFrame({
        "theorem": f"negatives.{LOWER}", "bound": "contrastive_loss", "form": form,
        "measured": t["R_cont"].to_numpy(), "measured_se": t["R_cont_se"].to_numpy(),
        "bound_value": th.bao_lower_as_upper(t["R_mu_supv"].to_numpy(), t["Delta_L"].to_numpy()),
        "bound_se": t["R_mu_supv_se"].to_numpy(),
        "trivial": th.trivial_lower(t["R_mu_supv"].to_numpy(), t["R_cont"].to_numpy()),
        "lower_bound": t["R_cont"].to_numpy() + t["Delta_L"].to_numpy(), **common}))
    return frames


def _optimum_frames(t: pd.DataFrame) -> list[pd.DataFrame]:
    """The optimum reference rows: each upper form at R_cont* against R_mu_supv* (uniform law, one per C, K, b)."""
    if "R_cont_opt" not in t:
        return []
    o = t[t["R_cont_opt"].notna() & (t["model_kind"] == "trained")].drop_duplicates(["C", "K", "b"]).copy()
    if o.empty:
        return []
    o["R_cont"], o["R_mu_supv"] = o["R_cont_opt"], o["R_supv_opt"]
    common = {c: o[c].to_numpy() for c in ["cell", "study", "law", "C", "K", "b", "R_cont", "R_mu_supv", *EXACT]}
    return [pd.DataFrame({"theorem": f"negatives.optimum_{name}", "bound": "mean_classifier", "form": "optimum",
                          "measured": o["R_supv_opt"].to_numpy(), "measured_se": 0.0,
                          "bound_value": _BOUND[name](o, o["R_cont_opt"].to_numpy()), "bound_se": 0.0,
                          "trivial": th.trivial_log_c(o["C"].to_numpy()), **common, "model_kind": "oracle"})
            for name in UPPER]


def bound_checks(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows for bounds.csv: the five forms at every trained point (form "measured": means over seeds, across-seed
    SEs) and at every finite-instance encoder (form "exact"), and the optimum reference rows (form "optimum").

    Each row carries K, C, b, R_cont and every term of its theorem, so ``theorem.bound_from(rows)`` recomputes
    ``bound_value``, and ``model_kind``: "trained" (InfoNCE-trained), "untrained" (step 0, or a random table on
    the finite instance), "oracle" (the finite instance's population optimum, and the paper's optimum values).
    Bao et al.'s lower bound is judged as the upper bound R_cont <= R_mu_supv - Delta_L (its "measured" is R_cont).
    """
    if rows.empty:
        return pd.DataFrame()
    frames = []
    trained = rows[rows["study"] != "finite"]
    if len(trained):
        t = points(trained)
        frames += _frame(t, "measured") + _optimum_frames(t)
    finite = rows[rows["study"] == "finite"]
    if len(finite):
        frames += _frame(_finite_rows(tables.scalar_wide(finite, KEYS)), "exact")
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    stray = sorted(set(out.get("theorem", ())) - set(ROW_THEOREMS))
    if stray:
        raise KeyError(f"negatives.bound_checks: rows name theorems outside ROW_THEOREMS: {', '.join(stray)}")
    return out


def awasthi_check(rows: pd.DataFrame, tol: float = 1e-6) -> pd.DataFrame:
    """Awasthi, Dikkala & Kamath (2022): does the population optimum's downstream loss degrade with K?

    On the finite instance: per (law, b, K) the exact R_mu_supv and accuracy of the optimum of R_cont at that K,
    the change from the smallest K, and ``degrades`` where it rose by more than ``tol`` over the previous K.
    """
    finite = rows[(rows["study"] == "finite") & (rows["model_kind"] == "oracle")]
    if finite.empty:
        return pd.DataFrame()
    w = tables.scalar_wide(finite, KEYS).sort_values(["law", "b", "K"])
    w["change_from_first"] = w["R_mu_supv"] - w.groupby(["law", "b"])["R_mu_supv"].transform("first")
    w["degrades"] = w.groupby(["law", "b"])["R_mu_supv"].diff().fillna(0.0) > tol
    return w[["law", "n_classes", "b", "K", "R_cont", "R_mu_supv", "mean_acc", "change_from_first", "degrades"]]


def tracking(checks: pd.DataFrame, edges=(1, 8, 64, 1024)) -> pd.DataFrame:
    """Median bound / measured of each upper form over the trained points, per range of K [lo, hi), and the
    smallest K from which the form is vacuous (bound >= log C) at every larger K of its C (NaN: never)."""
    t = checks[(checks["form"] == "measured") & (checks["model_kind"] == "trained")
               & checks["theorem"].isin([f"negatives.{n}" for n in UPPER])].copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        t["ratio"] = t["bound_value"] / t["measured"]
    t["range"] = pd.cut(t["K"], list(edges), right=False).astype(str)
    med = t[np.isfinite(t["ratio"])].pivot_table(index=["theorem", "law", "C"], columns="range", values="ratio",
                                                 aggfunc="median")
    vac = []
    for (tid, law, C, b), g in t.groupby(["theorem", "law", "C", "b"]):
        g = g.sort_values("K")
        bad = (g["bound_value"] >= g["trivial"]).to_numpy()
        first = next((int(k) for i, k in enumerate(g["K"]) if bad[i:].all()), np.nan)
        vac.append({"theorem": tid, "law": law, "C": C, "b": b, "vacuous_from_K": first})
    return med.reset_index(), pd.DataFrame(vac)


# ----------------------------------------------------------------------------------------------------- figures
def _final_trained(checks: pd.DataFrame) -> pd.DataFrame:
    if checks.empty:
        return checks
    return checks[(checks["form"] == "measured") & (checks["model_kind"] == "trained")]


def _first_b(c: pd.DataFrame) -> float:
    return float(c["b"].value_counts().idxmax())


def _panel_bounds(a, c: pd.DataFrame, title: str) -> None:
    for name in UPPER:
        s = c[c["theorem"] == f"negatives.{name}"].sort_values("K")
        y = s["bound_value"].where(np.isfinite(s["bound_value"]) & (s["bound_value"] > 0))
        a.plot(s["K"], y, marker=".", label=LABELS[name], gid=plotting.BOUND)
    low = c[c["theorem"] == f"negatives.{LOWER}"].sort_values("K")
    a.plot(low["K"], low["lower_bound"].where(low["lower_bound"] > 0), "k:", marker="v", ms=3,
           label=LABELS[LOWER] + " (where > 0)", gid=plotting.BOUND)
    m = c[c["theorem"] == "negatives.bao_2022_upper"].sort_values("K")
    a.errorbar(m["K"], m["measured"], yerr=m["measured_se"].fillna(0), color="k", marker="o", ms=3, lw=1.5,
               label="measured R_mu-supv")
    plotting.trivial_line(a, float(np.log(m["C"].iloc[0])), "log C (trivial)", color="0.5", lw=0.8, ls="--")
    a.set_xscale("log", base=2)
    a.set_yscale("log")
    a.set_xlabel("K (negatives)")
    a.set_ylabel("C-way loss of the mean classifier (nats)")
    a.set_title(title)


def fig_bounds_vs_k(rows: pd.DataFrame, judged: pd.DataFrame, out: Path, stem: str) -> list[Path]:
    """(1) The four upper bounds and the lower bound against K, with the measured loss: one panel per C."""
    c = _final_trained(judged)
    c = c[(c["law"] == "uniform") & (c["study"] == "trained")] if len(c) else c
    classes = sorted(c["C"].unique()) if len(c) else []
    fig, ax = plotting.new(max(1, len(classes)))
    if not classes:
        plotting.message(ax[0, 0], "no trained points (sweep disabled?)")
        return plotting.save(fig, out, stem)
    b = _first_b(c)
    for i, C in enumerate(classes):
        _panel_bounds(ax[0, i], c[(c["C"] == C) & (c["b"] == b)], f"C = {C}, uniform, b = {b:g}")
    ax[0, 0].legend(fontsize=6)
    return plotting.save(fig, out, stem)


def fig_coefficient(rows: pd.DataFrame, judged: pd.DataFrame, out: Path, stem: str) -> list[Path]:
    """(2) The coefficient on R_cont of each upper form against K (Bao et al.'s is 1), one panel per C."""
    c = _final_trained(judged)
    c = c[c["law"] == "uniform"] if len(c) else c
    classes = sorted(c["C"].unique()) if len(c) else []
    fig, ax = plotting.new(max(1, len(classes)))
    if not classes:
        plotting.message(ax[0, 0], "no trained points (sweep disabled?)")
        return plotting.save(fig, out, stem)
    for i, C in enumerate(classes):
        a = ax[0, i]
        s0 = c[c["C"] == C].drop_duplicates(["theorem", "K"])
        for name in UPPER:
            s = s0[s0["theorem"] == f"negatives.{name}"].sort_values("K")
            a.plot(s["K"], s["coefficient"].where(np.isfinite(s["coefficient"])), marker=".", label=LABELS[name])
        a.axvline(C - 1, color="0.5", ls=":", lw=0.8, label="K + 1 = C")
        a.set_xscale("log", base=2)
        a.set_yscale("log")
        a.set_xlabel("K (negatives)")
        a.set_ylabel("coefficient on R_cont")
        a.set_title(f"C = {C}, uniform law")
    ax[0, 0].legend(fontsize=6)
    return plotting.save(fig, out, stem)


def fig_accuracy(rows: pd.DataFrame, judged: pd.DataFrame, out: Path, stem: str) -> list[Path]:
    """(3) The mean classifier's accuracy against K, with the coverage point K = C H_C marked."""
    c = _final_trained(judged)
    c = c[c["theorem"] == "negatives.bao_2022_upper"] if len(c) else c
    fig, ax = plotting.new(1)
    a = ax[0, 0]
    if c.empty:
        plotting.message(a, "no trained points (sweep disabled?)")
        return plotting.save(fig, out, stem)
    b = _first_b(c)
    for i, ((C, law), s) in enumerate(c[c["b"] == b].groupby(["C", "law"])):
        s = s.sort_values("K")
        line = a.errorbar(s["K"], s["mean_acc"], yerr=s["mean_acc_se"].fillna(0), marker="o", ms=3,
                          label=f"C = {C} ({law})")
        a.axvline(C * th.harmonic(C), color=line[0].get_color(), ls=":", lw=0.8)
    a.set_xscale("log", base=2)
    a.set_xlabel("K (negatives); dotted: K = C H_C,\nthe expected draws to cover all classes")
    a.set_ylabel("mean-classifier accuracy (C-way)")
    a.set_title(f"accuracy against K (b = {b:g})")
    a.legend(fontsize=6)
    return plotting.save(fig, out, stem)


def fig_zipf(rows: pd.DataFrame, judged: pd.DataFrame, out: Path, stem: str) -> list[Path]:
    """(4) How each bound reacts to a skewed class law: bound / measured against K, uniform against Zipf."""
    c = _final_trained(judged)
    fig, ax = plotting.new(2)
    zipf_c = sorted(c[c["law"] == "zipf"]["C"].unique()) if len(c) else []
    if not zipf_c:
        for a in ax[0]:
            plotting.message(a, "no Zipf points (zipf study disabled?)")
        return plotting.save(fig, out, stem)
    C = zipf_c[0]
    b = float(c[(c["law"] == "zipf") & (c["C"] == C)]["b"].iloc[0])
    s0 = c[(c["C"] == C) & (c["b"] == b)]
    _panel_bounds(ax[0, 0], s0[s0["law"] == "zipf"], f"C = {C}, Zipf law, b = {b:g}")
    ax[0, 0].legend(fontsize=6)
    a = ax[0, 1]
    for i, name in enumerate(UPPER):
        for law, ls in (("uniform", "-"), ("zipf", "--")):
            s = s0[(s0["theorem"] == f"negatives.{name}") & (s0["law"] == law)].sort_values("K")
            if s.empty:
                continue
            with np.errstate(divide="ignore", invalid="ignore"):
                r = s["bound_value"] / s["measured"]
            a.plot(s["K"], r.where(np.isfinite(r) & (r > 0)), ls=ls, color=f"C{i}", marker=".",
                   label=f"{LABELS[name]} ({law})", gid=plotting.BOUND)
            if i == 0:   # the trivial log C on the same ratio axis: trivial / measured, per law
                with np.errstate(divide="ignore", invalid="ignore"):
                    tr = s["trivial"] / s["measured"]
                a.plot(s["K"], tr.where(np.isfinite(tr) & (tr > 0)), ls=ls, color="0.45", lw=1.2, gid=plotting.TRIVIAL,
                       label=f"trivial log C / measured ({law})")
    a.axhline(1.0, color="k", lw=0.8)
    a.set_xscale("log", base=2)
    a.set_yscale("log")
    a.set_xlabel("K (negatives)")
    a.set_ylabel("bound / measured")
    a.set_title(f"uniform (solid) against Zipf (dashed), C = {C}")
    a.legend(fontsize=5, ncol=2)
    return plotting.save(fig, out, stem)


def fig_finite(rows: pd.DataFrame, judged: pd.DataFrame, out: Path, stem: str) -> list[Path]:
    """The finite instance: the optimum's exact downstream loss against K (Awasthi et al.'s question) beside the
    five forms at that optimum."""
    aw = awasthi_check(rows)
    fig, ax = plotting.new(2)
    if aw.empty:
        for a in ax[0]:
            plotting.message(a, "no finite instance (finite study disabled?)")
        return plotting.save(fig, out, stem)
    a = ax[0, 0]
    for (law, b), s in aw.groupby(["law", "b"]):
        a.plot(s["K"], s["R_mu_supv"], marker="o", ms=3, label=f"R_mu-supv at the optimum ({law}, b = {b:g})")
    a.set_xscale("log", base=2)
    a.set_xlabel("K (negatives)")
    a.set_ylabel("exact R_mu-supv of argmin R_cont (nats)")
    a.set_title("the optimum's downstream loss against K")
    a.legend(fontsize=6)
    c = judged[(judged["form"] == "exact") & (judged["model_kind"] == "oracle")] if len(judged) else judged
    law, b = aw["law"].iloc[0], float(aw["b"].iloc[0])
    _panel_bounds(ax[0, 1], c[(c["law"] == law) & (c["b"] == b)], f"finite instance, optimum ({law}, b = {b:g})")
    ax[0, 1].set_ylabel("exact loss (nats)")
    ax[0, 1].legend(fontsize=6)
    return plotting.save(fig, out, stem)


FIGURES = {"bounds_vs_k": fig_bounds_vs_k, "coefficient": fig_coefficient, "accuracy": fig_accuracy,
           "zipf": fig_zipf, "finite": fig_finite}
# Three views of the K sweep (the norms study adds its b values to the same cells): not one study's figure each.
SUMMARY_FIGURES = {"bounds_vs_k": ("sweep",), "coefficient": ("sweep",), "accuracy": ("sweep",)}   # needed on

"""The self-prediction chapter's six figures, drawn from stored rows (tables in analysis/self_prediction.py).

``FIGURES`` (name -> draw(rows, judged, out_dir, stem)) is defined here and only here: analysis/self_prediction.py does
not import this module, so either can be imported first.

Conventions in every panel: solid lines with error bars are measured means over seeds (+- 1 SE); dashed lines
of the same colour are the bounds of theory.self_prediction evaluated at the measured terms, with their verdicts,
as the run's judged table (its rows of bounds.csv) holds them: nothing here judges again; a hollow marker on a
bound is a vacuous point (bound >= the trivial risk tr Cov f*), a red cross on a measured point is a violated one,
a grey square marks a bound whose assumption is not met. The dotted grey line is the trivial risk.
"""
from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
from matplotlib.ticker import NullFormatter
import pandas as pd

from analysis import plotting
from analysis import self_prediction as sp
from theory import self_prediction as th
from theory.verdict import NOT_MET, VACUOUS, VIOLATED

LABELS = {"psi_star": "psi* (top r PCs)", "psi_star_full": "psi* (all d2)", "raw": "raw X1", "linear": "OLS psi",
          "rff": "RFF ridge psi", "mlp": "MLP psi", "softmax": "softmax-head psi", "dae": "DAE hidden",
          "masked": "masked-pred. hidden"}
COLORS = {"psi_star": "C0", "psi_star_full": "C9", "raw": "k", "linear": "C1", "rff": "C2", "mlp": "C3",
          "softmax": "C6", "dae": "C4", "masked": "C5"}
for _r in sp.REGRESSION:   # a learned psi probed whole (p = d2): same colour, its own label
    LABELS[f"{_r}_full"], COLORS[f"{_r}_full"] = f"{LABELS[_r]} (all d2)", COLORS[_r]
ORDER = list(LABELS)
CLIP = 30   # risk axes stop at CLIP x the trivial risk
OWN_BOUND = {"psi_star": "exact_ci", "psi_star_full": "exact_ci", "raw": "raw_baseline"}


def _reps(df: pd.DataFrame, drop=(), learned_full: bool = False) -> list[str]:
    """Representations present in df, in a fixed order; the unreduced learned psi only if asked."""
    present = set(df["representation"])
    return [r for r in ORDER if r in present and r not in drop
            and (learned_full or not (r.endswith("_full") and r != "psi_star_full"))]


def _verdict_marks(ax, x, bound, measured, verdicts, color) -> None:
    x, bound, measured, verdicts = map(np.asarray, (x, bound, measured, verdicts))
    fin = np.isfinite(bound)
    vac = fin & (verdicts == VACUOUS)
    ax.plot(x[vac], bound[vac], "o", mfc="none", mec=color, ms=6)
    nm = fin & (verdicts == NOT_MET)
    ax.plot(x[nm], bound[nm], "s", mfc="none", mec="0.5", ms=6)
    bad = verdicts == VIOLATED
    ax.plot(x[bad], measured[bad], "x", color="red", ms=8, mew=2)


def _bound_curve(ax, b: pd.DataFrame, xcol: str, color, label=None, style="--") -> tuple[int, int, int]:
    """Draw the finite part of a bound against ``xcol``; returns (points, vacuous, violated)."""
    b = b.sort_values(xcol)
    fin = np.isfinite(b["bound_value"].to_numpy())
    ax.plot(b[xcol][fin], b["bound_value"][fin], style, color=color, lw=1.2, label=label, gid=plotting.BOUND)
    _verdict_marks(ax, b[xcol], b["bound_value"], b["measured"], b["verdict"], color)
    return len(b), int((b["verdict"] == VACUOUS).sum()), int((b["verdict"] == VIOLATED).sum())


def _own_bound(checks, cell, rep) -> pd.DataFrame:
    """The reference or derived form drawn beside a representation's curve (the rigorous form is drawn apart)."""
    sub = checks[(checks["cell"] == cell) & (checks["representation"] == rep) & checks["n"].notna()
                 & (checks["form"] != "chernoff")]
    if rep == "psi_star_full" or rep == "psi_star":
        exact = sub[sub["bound"] == "exact_ci"]
        return exact if len(exact) and (exact["assumption"] == "met").all() else sub[sub["bound"] == "approx_ci"]
    return sub[sub["bound"] == OWN_BOUND.get(rep, "learned")]


def _at(curves: pd.DataFrame, n_col="n_fixed") -> pd.DataFrame:
    return curves[curves["n"] == curves[n_col]]


def _trivial(ax, value) -> None:
    plotting.trivial_line(ax, value, "trivial risk tr Cov f*", color="0.5")


def _empty(ax, what: str) -> None:
    plotting.message(ax, f"no cells for {what}\n(study disabled?)")


# ------------------------------------------------------------------------------------------- figure 1
def fig_sample_complexity(rows: pd.DataFrame, judged: pd.DataFrame, out: Path, stem: str) -> list[Path]:
    """ER against n (log-log) per family: psi*, learned psi, raw X1, each with its bound and fitted slope."""
    er = sp.in_study(sp.curves(rows), "sample_complexity")
    checks, slopes = judged, sp.slopes(rows, checks=judged)
    cells = er.drop_duplicates("cell").sort_values("family", key=lambda f: f.map(lambda v: ORDER_FAMILY.get(v, 9)))
    fig, ax = plotting.new(max(1, len(cells)), width=4.6, height=5.6)   # room below for the legend
    if cells.empty:
        _empty(ax[0, 0], "sample_complexity")
    terms = sp.cell_terms(rows).set_index("cell")
    for a, cell in zip(ax[0], cells["cell"]):
        c = er[er["cell"] == cell]
        t = terms.loc[cell]
        counts = np.zeros(3, dtype=int)
        # psi* whole equals psi* reduced under exact CI (rank k - 1); dae / masked are figure 6's
        for rep in _reps(c, drop=("psi_star_full", "dae", "masked"), learned_full=True):
            full = rep.endswith("_full")
            cr = c[c["representation"] == rep].sort_values("n")
            sl = slopes[(slopes["cell"] == cell) & (slopes["representation"] == rep)]
            s, bs = (float(sl["slope"].iloc[0]), float(sl["bound_slope"].iloc[0])) if len(sl) else (math.nan,) * 2
            bound_txt = f"bound {bs:.2f}" if np.isfinite(bs) else "bound: no finite slope"
            a.errorbar(cr["n"], cr["mean"], cr["se"], fmt=":^" if full else "-o", ms=3, color=COLORS[rep],
                       lw=0.8 if full else 1.5, label=f"{LABELS[rep]}: slope {s:.2f} ({bound_txt})")
            b = _own_bound(checks, cell, rep)
            counts += _bound_curve(a, b, "n", COLORS[rep], style="-." if full else "--")
            rig = checks[(checks["cell"] == cell) & (checks["representation"] == rep) & (checks["form"] == "chernoff")]
            if len(rig) and (rig["assumption"] == "met").all():
                counts += _bound_curve(a, rig, "n", COLORS[rep], style="-", label="psi*: rigorous bound "
                                       "4(p+1) sigma2_eff/n (where P(design fails) <= 1%)")
        _trivial(a, t["trivial"])
        a.set_xscale("log")
        a.set_yscale("log")
        # OLS at n close to p has rare, huge errors (near-singular designs) that rule the mean; clip the axis
        a.set_ylim(top=CLIP * float(t["trivial"]))
        a.set_xlabel("labelled samples n")
        a.set_ylabel(f"excess risk E||f* - W phi||^2\n(axis clipped at {CLIP}x trivial)")
        a.set_title(f"{t['family']}: k={int(t['k'])}, d1={int(t['d1'])}, d2={int(t['d2'])}, sigma2={t['sigma2']:.3f}\n"
                    f"bounds: {counts[1]}/{counts[0]} vacuous, {counts[2]}/{counts[0]} violated; "
                    f"slopes fitted on n >= {sp.SLOPE_FROM}(p+2)", fontsize=8)
        # below the panel: inside, its entries covered the psi* curve
        a.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=1)
    return plotting.save(fig, out, stem)


ORDER_FAMILY = {"exact_ci": 0, "nonlinear": 1, "topic": 2, "approx_ci": 3, "nuisance": 4}


# ------------------------------------------------------------------------------------------- figure 2
def dimension_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per dimension cell and representation: the target risk, the n measured to reach it and the bound's n."""
    er = sp.in_study(sp.curves(rows), "dimension")
    terms = sp.cell_terms(rows).set_index("cell")
    table = sp.seed_table(rows)
    cols = ["p", "e_apx"] + [c for c in ("sigma2_eff", "leverage_max") if c in table.columns]
    seeds = table.groupby(["cell", "representation"])[cols].agg(
        {c: ("max" if c == "leverage_max" else "mean") for c in cols})
    out = []
    for (cell, rep), c in er.groupby(["cell", "representation"]):
        if rep == "psi_star_full":
            continue
        t = terms.loc[cell]
        target = float(t["target_fraction"] * t["trivial"])
        p = int(seeds.loc[(cell, rep), "p"])
        if rep == "raw":
            e = float(seeds.loc[(cell, rep), "e_apx"])
            fn = lambda n, p=p, e=e, s=float(t["sigma2"]): th.risk_bound(s, p, n, e)  # noqa: E731
        elif rep == "psi_star":
            fn = lambda n, p=p, s=float(t["sigma2"]): th.risk_bound(s, p, n, 0.0)  # noqa: E731
        else:
            fn = None
        rigorous = math.nan
        if rep == "psi_star" and "sigma2_eff" in seeds.columns:
            rigorous = sp.rigorous_n_to_reach(float(seeds.loc[(cell, rep), "sigma2_eff"]), p,
                                              float(seeds.loc[(cell, rep), "leverage_max"]), target)
        out.append({"cell": cell, "representation": rep, "d1": int(t["d1"]), "target": target, "p": p,
                    "bound_n_rigorous": rigorous,
                    "n_needed": sp.n_to_reach(c["n"], c["mean"], target),
                    "bound_n": sp.bound_n_to_reach(fn, target) if fn else math.nan, "n_max": float(c["n"].max()),
                    "n_min": float(c["n"].min()),
                    "er_fixed": float(_at(c)["mean"].mean()) if len(_at(c)) else math.nan})
    return pd.DataFrame(out)


def fig_dimension(rows: pd.DataFrame, judged: pd.DataFrame, out: Path, stem: str) -> list[Path]:
    """As d1 grows at fixed k: the n needed to reach the target risk (measured and from the bound)."""
    tab = dimension_table(rows)
    fig, ax = plotting.new(2, height=5.4)   # legends below the panels: inside, they covered the y-label
    if tab.empty:
        _empty(ax[0, 0], "dimension")
        return plotting.save(fig, out, stem)
    top = tab["n_max"].max() * 2
    n_cells = tab["cell"].nunique()
    every = tab.groupby("representation")["cell"].nunique()
    for rep in _reps(tab[tab["representation"].isin(every[every == n_cells].index)]):
        s = tab[tab["representation"] == rep].sort_values("d1")
        reached = np.isfinite(s["n_needed"])
        first = s["n_needed"] == s["n_min"]   # already below the target at the smallest n measured
        ax[0, 0].plot(s["d1"][first], s["n_needed"][first], "v", mfc="none", ms=9, color=COLORS[rep],
                      label=f"{LABELS[rep]}: reached at the smallest n" if first.any() else None)
        ax[0, 0].plot(s["d1"], np.where(reached, s["n_needed"], np.nan), "-o", ms=4, color=COLORS[rep],
                      label=f"{LABELS[rep]} (measured)")
        ax[0, 0].plot(s["d1"][~reached], np.full((~reached).sum(), top), "^", mfc="none", ms=8, color=COLORS[rep],
                      label=f"{LABELS[rep]}: not reached by n={int(s['n_max'].max())}" if (~reached).any() else None)
        if s["bound_n"].notna().any():
            fin = np.isfinite(s["bound_n"])
            ax[0, 0].plot(s["d1"][fin], s["bound_n"][fin], "--s", ms=3, color=COLORS[rep],
                          label=f"{LABELS[rep]}: n where the bound reaches the target", gid=plotting.BOUND)
        if "bound_n_rigorous" in s and s["bound_n_rigorous"].notna().any():
            ax[0, 0].plot(s["d1"], s["bound_n_rigorous"], "-.D", ms=3, color=COLORS[rep],
                          label=f"{LABELS[rep]}: n where the rigorous bound reaches it\n(P(design fails) <= 1%)",
                          gid=plotting.BOUND)
        ax[0, 1].plot(s["d1"], s["er_fixed"], "-o", ms=4, color=COLORS[rep], label=LABELS[rep])
    frac = sp.cell_terms(rows)["target_fraction"].iloc[0]
    ax[0, 0].set_title(f"n to reach ER = {frac:g} x trivial risk", fontsize=9)
    ax[0, 1].set_title(f"ER at n = {int(sp.cell_terms(rows)['n_fixed'].iloc[0])}", fontsize=9)
    for a in ax[0]:
        a.set_xscale("log")
        a.set_yscale("log")
        a.set_xlabel("input dimension d1 (k fixed)")
        a.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.16))
    # an n axis has no trivial value: the trivial predictor never reaches a target below its own risk
    plotting.no_trivial(ax[0, 0], "no trivial n: the trivial risk never\nreaches the target fraction of itself",
                        loc="lower right")
    ax[0, 0].set_ylabel("labelled samples needed")
    ax[0, 1].set_ylabel("excess risk")
    return plotting.save(fig, out, stem)


# ------------------------------------------------------------------------------------------- figure 3
def crossing(x, a, b) -> float:
    """First x (linear interpolation) where curve a stops being below curve b; NaN if it never does."""
    x, d = np.asarray(x, dtype=float), np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    idx = np.nonzero(d >= 0)[0]
    if len(idx) == 0:
        return math.nan
    j = idx[0]
    if j == 0:
        return float(x[0])
    return float(x[j - 1] + (x[j] - x[j - 1]) * (-d[j - 1]) / (d[j] - d[j - 1]))


def _versus_knob(ax, rows, judged: pd.DataFrame, study: str, xcol: str, x_of_cell: dict | None = None) -> pd.DataFrame:
    """ER at n_fixed against a per-cell knob (the cell term ``xcol``, or ``x_of_cell``: cell -> x) for every
    representation, with the psi* bounds; returns the fixed-n curves with the x in column ``xcol``."""
    er = _at(sp.in_study(sp.curves(rows), study))
    terms = sp.cell_terms(rows).set_index("cell")
    x_of = x_of_cell if x_of_cell is not None else terms[xcol].to_dict()
    er = er.assign(**{xcol: er["cell"].map(x_of).to_numpy()})
    checks = judged
    checks = _at(checks[checks["cell"].isin(er["cell"])].dropna(subset=["n"]))
    checks = checks.assign(**{xcol: checks["cell"].map(x_of).to_numpy()})
    for rep in _reps(er):
        s = er[er["representation"] == rep].sort_values(xcol)
        ax.errorbar(s[xcol], s["mean"], s["se"], fmt="-o", ms=3, color=COLORS[rep], label=LABELS[rep])
    for rep, style in (("psi_star", "--"), ("psi_star_full", "-.")):
        b = checks[(checks["representation"] == rep) & (checks["bound"] == "approx_ci")]
        if len(b):
            _bound_curve(ax, b, xcol, COLORS[rep], f"Thm 4.2 bound, {LABELS[rep]}", style)
    triv = terms.loc[er["cell"].unique(), "trivial"]
    _trivial(ax, float(triv.mean()))
    ax.set_yscale("log")
    low = er["mean"][er["mean"] > 0].min() if (er["mean"] > 0).any() else 1e-4
    ax.set_ylim(low / 3, 3 * float(triv.max()))   # bounds above 3x the trivial risk are vacuous anyway
    return er


def fig_approx_ci(rows: pd.DataFrame, judged: pd.DataFrame, out: Path, stem: str) -> list[Path]:
    """ER and bound as eps_CI grows, with the point where psi* stops beating raw X1; right: e_apx(psi*)
    against its population bound (eps_CI / beta)^2."""
    fig, ax = plotting.new(2, width=4.8)
    terms = sp.in_study(sp.cell_terms(rows), "approx_ci").sort_values("epsilon_CI")
    if terms.empty:
        _empty(ax[0, 0], "approx_ci")
        return plotting.save(fig, out, stem)
    er = _versus_knob(ax[0, 0], rows, judged, "approx_ci", "epsilon_CI")
    ps = er[er["representation"] == "psi_star"].sort_values("epsilon_CI")
    raw = er[er["representation"] == "raw"].set_index("cell").loc[ps["cell"]]
    x = crossing(ps["epsilon_CI"], ps["mean"], raw["mean"])
    if np.isfinite(x):
        ax[0, 0].axvline(x, color="0.3", lw=1)
        msg = f"psi* stops beating raw X1 at eps_CI ~ {x:.2f}"
    else:
        msg = "psi* beats raw X1 over the whole sweep"
    n_fixed = int(terms["n_fixed"].iloc[0])
    ax[0, 0].set_title(f"approx. CI (m={int(terms['m'].iloc[0])}), ER at n={n_fixed}\n{msg}", fontsize=8)
    ax[0, 0].set_xlabel("eps_CI (Definition 4.1)")
    ax[0, 0].set_ylabel("excess risk")
    ax[0, 0].legend(fontsize=6)
    checks = judged
    pop = checks[(checks["form"] == sp.POPULATION) & checks["cell"].isin(terms["cell"])
                 & checks["representation"].isin(sp.PSI)]
    for rep, style in (("psi_star", "--"), ("psi_star_full", "-.")):
        b = pop[pop["representation"] == rep].sort_values("epsilon_CI")
        ax[0, 1].plot(b["epsilon_CI"], b["measured"], "-o", ms=3, color=COLORS[rep], label=f"e_apx, {LABELS[rep]}")
        _bound_curve(ax[0, 1], b, "epsilon_CI", COLORS[rep],
                     ("4 " if rep == "psi_star" else "") + "(eps_CI / beta)^2", style)
    _trivial(ax[0, 1], float(terms["trivial"].mean()))
    ax[0, 1].set_yscale("log")   # the eps_CI = 0 point has e_apx = bound = 0 and no row
    ax[0, 1].set_xlabel("eps_CI")
    ax[0, 1].set_ylabel("approximation error e_apx")
    ax[0, 1].set_title("population: e_apx(psi*) <= (eps_CI/beta)^2 (x4 after PCA)", fontsize=8)
    ax[0, 1].legend(fontsize=6)
    return plotting.save(fig, out, stem)


# ------------------------------------------------------------------------------------------- figure 4
def fig_pretext_budget(rows: pd.DataFrame, judged: pd.DataFrame, out: Path, stem: str) -> list[Path]:
    """Downstream ER at n_fixed, e_apx and eps_pre^2 against the number of pretext pairs n1, per learner."""
    fig, ax = plotting.new(3, width=4.0)
    er = _at(sp.in_study(sp.curves(rows), "pretext_budget"))
    if er.empty:
        _empty(ax[0, 0], "pretext_budget")
        return plotting.save(fig, out, stem)
    seeds = sp.seed_table(rows)
    seeds = seeds[seeds["cell"].isin(er["cell"])].merge(er[["cell", "n1"]].drop_duplicates(), on="cell")
    for rep in _reps(er, drop=("psi_star_full",)):
        s = er[er["representation"] == rep].sort_values("n1")
        style = "--" if rep in ("psi_star", "raw") else "-o"
        ax[0, 0].errorbar(s["n1"], s["mean"], s["se"], fmt=style, ms=3, color=COLORS[rep], label=LABELS[rep])
        for col, a in (("e_apx", ax[0, 1]), ("eps_pre2", ax[0, 2])):
            if col not in seeds or rep == "psi_star":   # e_apx(psi*) = 0 under CI: nothing to draw on a log axis
                continue
            m = seeds[seeds["representation"] == rep].groupby("n1")[col].agg(["mean", "std", "count"]).dropna(
                subset=["mean"])
            if len(m) and (m["mean"] > 0).any():
                a.errorbar(m.index, m["mean"], (m["std"] / np.sqrt(m["count"])).fillna(0), fmt=style, ms=3,
                           color=COLORS[rep], label=LABELS[rep])
    t = sp.in_study(sp.cell_terms(rows), "pretext_budget")
    _trivial(ax[0, 0], float(t["trivial"].mean()))
    ax[0, 0].set_title(f"{t['family'].iloc[0]}: ER at n={int(t['n_fixed'].iloc[0])}", fontsize=9)
    ax[0, 0].set_ylabel("excess risk")
    ax[0, 1].set_title("approximation error of the probed features", fontsize=9)
    ax[0, 1].set_ylabel("e_apx")
    ax[0, 2].set_title("pretext error eps_pre^2 = E||psi - psi*||^2", fontsize=9)
    ax[0, 2].set_ylabel("eps_pre^2")
    for a in ax[0]:
        a.set_xscale("log")
        a.set_yscale("log")
        a.set_xlabel("pretext pairs n1")
        a.legend(fontsize=6)
    return plotting.save(fig, out, stem)


# ------------------------------------------------------------------------------------------- figure 5
def fig_violation(rows: pd.DataFrame, judged: pd.DataFrame, out: Path, stem: str) -> list[Path]:
    """A nuisance shared by both views: ER and bounds against its scale, the CI check's eps_CI on the axis."""
    fig, ax = plotting.new(2, width=4.8)
    terms = sp.in_study(sp.cell_terms(rows), "violation").sort_values("nuisance_scale")
    if terms.empty:
        _empty(ax[0, 0], "violation")
        return plotting.save(fig, out, stem)
    # equally spaced positions, one per nuisance scale, so that the labels with eps_CI never overlap
    pos = {c: i for i, c in enumerate(terms["cell"])}
    _versus_knob(ax[0, 0], rows, judged, "violation", "position", pos)
    ax[0, 0].set_xticks(range(len(terms)),
                        [f"{s:g}\neps_CI\n={e:.2f}" for s, e in zip(terms["nuisance_scale"], terms["epsilon_CI"])],
                        fontsize=7)
    ax[0, 0].set_xlabel("nuisance scale (the CI check's eps_CI below it)")
    ax[0, 0].set_ylabel("excess risk")
    ax[0, 0].set_title(f"violation: ER at n={int(terms['n_fixed'].iloc[0])}", fontsize=9)
    ax[0, 0].legend(fontsize=6)
    worst = terms.iloc[-1]
    er = sp.curves(rows)
    er = er[er["cell"] == worst["cell"]]
    checks = judged
    for rep in _reps(er):
        s = er[er["representation"] == rep].sort_values("n")
        ax[0, 1].errorbar(s["n"], s["mean"], s["se"], fmt="-o", ms=3, color=COLORS[rep], label=LABELS[rep])
        if rep in sp.PSI:
            sub = checks[(checks["cell"] == worst["cell"]) & (checks["representation"] == rep) & checks["n"].notna()]
            _bound_curve(ax[0, 1], sub[(sub["bound"] == "exact_ci") & (sub["form"] != "chernoff")], "n",
                         COLORS[rep], None, ":")
            _bound_curve(ax[0, 1], sub[sub["bound"] == "approx_ci"], "n", COLORS[rep], None, "--")
    _trivial(ax[0, 1], float(worst["trivial"]))
    met = "met" if worst["eps_ci2"] <= 1e-18 else "NOT met"
    ax[0, 1].set_title(f"nuisance scale {worst['nuisance_scale']:g}: exact-CI check eps_CI = "
                       f"{worst['epsilon_CI']:.3g} ({met})\ndotted: exact-CI form, dashed: Thm 4.2 form", fontsize=8)
    ax[0, 1].set_xscale("log")
    ax[0, 1].set_yscale("log")
    ax[0, 1].set_ylim(top=CLIP * float(worst["trivial"]))
    ax[0, 1].set_xlabel("labelled samples n")
    ax[0, 1].legend(fontsize=6)
    return plotting.save(fig, out, stem)


# ------------------------------------------------------------------------------------------- figure 6
def fig_objectives(rows: pd.DataFrame, judged: pd.DataFrame, out: Path, stem: str) -> list[Path]:
    """Denoising AE and masked prediction against psi on the same probe: ER vs n, and e_apx / ER at n_fixed."""
    fig, ax = plotting.new(2, width=4.8)
    er = sp.in_study(sp.curves(rows), "objectives")
    if er.empty:
        _empty(ax[0, 0], "objectives")
        return plotting.save(fig, out, stem)
    cell = er["cell"].iloc[0]
    er = er[er["cell"] == cell]
    t = sp.cell_terms(rows).set_index("cell").loc[cell]
    reps = _reps(er, drop=("psi_star_full",))
    for rep in reps:
        s = er[er["representation"] == rep].sort_values("n")
        ax[0, 0].errorbar(s["n"], s["mean"], s["se"], fmt="-o", ms=3, color=COLORS[rep], label=LABELS[rep])
    _trivial(ax[0, 0], float(t["trivial"]))
    ax[0, 0].set_xscale("log")
    ax[0, 0].set_yscale("log")
    ax[0, 0].set_ylim(top=CLIP * float(t["trivial"]))
    ax[0, 0].set_xlabel("labelled samples n")
    ax[0, 0].set_ylabel("excess risk (same OLS probe)")
    ax[0, 0].set_title(f"{t['family']}: k={int(t['k'])}, d1={int(t['d1'])}, n1={int(t['n1'])}", fontsize=9)
    ax[0, 0].legend(fontsize=6)
    seeds = sp.seed_table(rows)
    seeds = seeds[seeds["cell"] == cell].groupby("representation")[["e_apx", "p"]].mean()
    fixed = _at(er).set_index("representation")["mean"]
    x = np.arange(len(reps))
    ax[0, 1].bar(x - 0.2, [seeds.loc[r, "e_apx"] for r in reps], 0.4, color=[COLORS[r] for r in reps],
                 label="e_apx (n -> inf)")
    ax[0, 1].bar(x + 0.2, [fixed.get(r, np.nan) for r in reps], 0.4, color=[COLORS[r] for r in reps], alpha=0.45,
                 hatch="//", label=f"ER at n={int(t['n_fixed'])}")
    for i, r in enumerate(reps):
        if seeds.loc[r, "e_apx"] < 1e-12:
            ax[0, 1].text(i - 0.2, 0, "0", ha="center", va="bottom", fontsize=7)
    ax[0, 1].set_xticks(x, [f"{LABELS[r]}\np={int(seeds.loc[r, 'p'])}" for r in reps], rotation=30, ha="right",
                        fontsize=7)
    ax[0, 1].set_yscale("symlog", linthresh=1e-3)
    ax[0, 1].set_ylabel("risk")
    ax[0, 1].legend(fontsize=6)
    return plotting.save(fig, out, stem)


# ------------------------------------------------------------------------------------------- frontier
FLOOR = 1e-3   # the frontier's ratio axis stops here (psi* unreduced has e_apx ~ 1e-31: marked "v" at the floor)


def frontier_table(judged: pd.DataFrame) -> pd.DataFrame:
    """Theorem 4.2's population rows, judged, with the knob x = (eps_CI + eps_pre) / beta (eps_pre: the mean over
    seeds, 0 for psi*), bound / trivial and measured / trivial; the bound is c_PCA x^2 up to the across-seed
    spread, so it passes the trivial risk at x = sqrt(trivial / c_PCA). ``judged``: the run's judged table."""
    c = judged[judged["theorem"].str.startswith("self_prediction.")] if "theorem" in judged.columns else judged
    if c.empty:
        return c
    pop = c[c["form"] == sp.POPULATION].copy()
    pop["x"] = (pop["epsilon_CI"] + pop["eps_pre_mean"]) / pop["beta"]
    pop["c_pca"] = np.where(pop["pca"].astype(bool), 4.0, 1.0)
    pop["x_frontier"] = np.sqrt(pop["trivial"] / pop["c_pca"])
    pop["bound_ratio"] = pop["bound_value"] / pop["trivial"]
    pop["measured_ratio"] = pop["measured"] / pop["trivial"]
    return pop


def frontier_caption(pop: pd.DataFrame) -> str:
    """One sentence from the rows: where the bound stops saying anything, and what the trained points reach."""
    parts = []
    for pca, name in ((True, "after PCA (c = 4)"), (False, "whole (c = 1)")):
        s = pop[pop["pca"].astype(bool) == pca]
        if len(s):
            parts.append(f"{s['x_frontier'].min():.2f}-{s['x_frontier'].max():.2f} {name}")
    trained = pop[pop["model_kind"] == "trained"]
    held = trained[trained["verdict"] == "holds"]
    best = trained.loc[trained["bound_ratio"].idxmin()] if len(trained) else None
    tail = (f"; trained psi: {len(held)} of {len(trained)} hold, best {best['representation']} at "
            f"(eps_CI + eps_pre)/beta = {best['x']:.2f}, bound = {best['bound_ratio']:.2f} x trivial"
            if best is not None else "; no trained psi")
    return "the bound stops saying anything once (eps_CI + eps_pre)/beta > " + ", ".join(parts) + tail


def fig_frontier(rows: pd.DataFrame, judged: pd.DataFrame, out: Path, stem: str) -> list[Path]:
    """Theorem 4.2's population bound / trivial risk against (eps_CI + eps_pre) / beta, trained psi (filled) and
    psi* (oracle, hollow) apart, measured e_apx / trivial beside each (x), the line bound = trivial, one panel per
    PCA factor."""
    pop = frontier_table(judged)
    fig, ax = plotting.new(2, width=4.8, height=3.8)
    if pop.empty:
        _empty(ax[0, 0], "the population form")
        _empty(ax[0, 1], "the population form")
        return plotting.save(fig, out, stem)
    for a, pca in zip(ax[0], (True, False)):
        s = pop[(pop["pca"].astype(bool) == pca) & np.isfinite(pop["bound_ratio"])]
        c = 4.0 if pca else 1.0
        if s.empty:
            _empty(a, "this form")
            continue
        pos = s["x"][s["x"] > 0]
        xs = np.geomspace(max(0.5 * pos.min(), 1e-3) if len(pos) else 1e-3, max(2 * s["x"].max(), 1e-2), 200)
        a.plot(xs, c * xs ** 2 / s["trivial"].median(), color="0.6", lw=0.8, label=f"{c:g} x^2 / median trivial")
        plotting.trivial_line(a, 1.0, "bound = trivial", color="k")
        for rep in _reps(s, learned_full=True):
            r = s[s["representation"] == rep]
            base = rep.removesuffix("_full") if rep not in sp.PSI else rep
            oracle = (r["model_kind"] == "oracle").all()
            a.plot(r["x"], r["bound_ratio"], "D" if oracle else "o", ms=5, color=COLORS[base], mfc="none" if oracle
                   else COLORS[base], ls="none", label=f"{LABELS[rep]} ({'oracle' if oracle else 'trained'})",
                   gid=plotting.BOUND)
            m = r["measured_ratio"].to_numpy()
            a.plot(r["x"], np.maximum(m, FLOOR), "x", ms=4, color=COLORS[base], ls="none")
            a.plot(r["x"][m < FLOOR], np.full(int((m < FLOOR).sum()), FLOOR), "v", ms=4, color=COLORS[base], ls="none")
        a.axvline(float(s["x_frontier"].median()), color="0.3", lw=0.8, ls="--")
        a.set_xscale("log")
        a.set_yscale("log")
        a.xaxis.set_minor_formatter(NullFormatter())   # 2x10^-1, 3x10^-1, ... ran into each other
        a.set_ylim(bottom=FLOOR)
        a.set_xlabel("(eps_CI + eps_pre) / beta\n(eps_pre: mean over seeds; 0 for psi*)")
        a.set_ylabel("bound / trivial\n(x: measured e_apx / trivial; v: below)")
        a.set_title(f"Theorem 4.2, population form, {'PCA to r PCs' if pca else 'whole psi'} (c = {c:g})",
                    fontsize=8)
        a.legend(fontsize=5.5)
    fig.suptitle(textwrap.fill(frontier_caption(pop), 150), fontsize=7, y=0.995, va="top")
    return plotting.save(fig, out, stem)


# One name per study: each figure is named after the config section (study) whose cells it draws.
FIGURES = {"sample_complexity": fig_sample_complexity, "dimension": fig_dimension, "approx_ci": fig_approx_ci,
           "pretext_budget": fig_pretext_budget, "violation": fig_violation, "objectives": fig_objectives,
           "frontier": fig_frontier}
# the frontier draws Theorem 4.2's population rows of every study
SUMMARY_FIGURES: dict[str, tuple[str, ...]] = {"frontier": ("sample_complexity|dimension|approx_ci",)}

"""The language chapter's figures (``FIGURES`` below: name -> draw(rows, judged, out, stem)): the issue's six and the
softmax bound's own, each drawn from stored rows and the run's judged table. ``analysis.language`` (the bound
checks) does not import this module; the chapter takes ``FIGURES`` from here.

Bound curves come from ``theory.language.bound`` evaluated at the task's measured tau, B and gamma over a grid of
epsilon: never fitted. A bound at a measured point is read from the run's judged table (its rows of
bounds.csv). Only the slopes of figures 1 and 6 are fitted (log-log least squares of the measured excess).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis import language as lt
from analysis import plotting
from theory import language as th

FEATURES = {"f": "f(s)", "phi_p": "Phi p_f(s)", "p": "p_f(s)", "raw": "raw context one-hots"}
MARKERS = {"noise": "o", "tilt": "^", "kgram": "s", "xent": "D", "mlm": "D", "softmax_noise": "v", "hmm_em": "P",
           "xent_full": "P"}


def _mean_sd(df: pd.DataFrame, by: list[str], col: str) -> pd.DataFrame:
    return df.groupby(by)[col].agg(["mean", "std"]).reset_index().fillna({"std": 0.0})


def _empty(a, text: str) -> None:
    plotting.message(a, text, fontsize=8)


# ------------------------------------------------------------------------------------------ figures 1, 6
def _excess_panels(rows, out: Path, stem: str, target: str, tasks: tuple[str, ...], what: str,
                   bound: str = "any_lm") -> list[Path]:
    pts = lt.excess_points(rows, target, bound)
    table = lt.slopes(rows, target, bound)
    families = lt.FAMILIES if bound == "any_lm" else lt.SOFTMAX_FAMILIES
    fig, ax = plotting.new(len(tasks))
    for a, task in zip(ax[0], tasks):
        s = pts[pts["task"] == task]
        if s.empty:
            _empty(a, f"no points for task {task}")
            continue
        lo, hi = np.inf, 0.0
        hidden: list[str] = []
        for i, fam in enumerate(f for f in families if f in set(s["family"])):
            g = s[s["family"] == fam]
            ok = (g["eps"] > 1e-12) & (g["excess"] > 1e-12)
            fit = table[(table["task"] == task) & (table["family"] == fam)].iloc[0]
            label = f"{families[fam]}: slope {fit['slope']:.2f}" if np.isfinite(fit["slope"]) else families[fam]
            if not ok.any():   # nothing to draw on log axes: said in the title, not as a legend entry without data
                hidden.append(families[fam])
                continue
            a.scatter(g["eps"][ok], g["excess"][ok], s=14, marker=MARKERS[fam], color=f"C{i}", alpha=0.75, label=label)
            if np.isfinite(fit["slope"]):
                x = np.geomspace(g["eps"][ok].min(), g["eps"][ok].max(), 20)
                a.plot(x, np.exp(fit["intercept"]) * x ** fit["slope"], "--", color=f"C{i}", lw=0.8)
            if ok.any():
                lo, hi = min(lo, g["eps"][ok].min()), max(hi, g["eps"][ok].max())
        if hi > 0:
            tau, B, gamma = (float(s[c].iloc[0]) for c in ("tau", "B", "gamma"))
            grid = np.geomspace(lo, hi, 50)
            a.plot(grid, th.bound(tau, B, grid, gamma) - tau, "k-", lw=1.2, gid=plotting.BOUND,
                   label=f"bound - tau = sqrt(2 B^2 eps / gamma), B={B:.2g}, gamma={gamma:.2g}")
            # the zero probe's loss log 2, on this excess axis: a bound above it says nothing
            plotting.trivial_line(a, lt.TRIVIAL - tau, f"trivial: log 2 - tau = {lt.TRIVIAL - tau:.3g}")
        a.set_xscale("log")
        a.set_yscale("log")
        a.set_xlabel(f"epsilon = E KL(p* || p) ({what}, nats)" if bound == "any_lm" else
                     f"epsilon_Phi: excess over the best LM with this Phi (nats)")
        a.set_ylabel("plug-in excess loss l_T(v on p) - tau" if bound == "any_lm" else
                     "plug-in excess l_T(v_Phi on Phi p_f) - tau_Phi")
        a.set_title(f"{task} labels" + (f"\nno point with eps, excess > 0: {', '.join(hidden)}" if hidden else ""),
                    fontsize=9 if not hidden else 7)
        if a.get_legend_handles_labels()[0]:
            a.legend(fontsize=6)
    return plotting.save(fig, out, stem)


def fig_bound(rows, judged, out: Path, stem: str) -> list[Path]:
    """Figure 1: downstream excess loss against epsilon, log-log, with the bound curve and fitted slopes."""
    return _excess_panels(rows, out, stem, "next", ("logistic", "deterministic"), "next word")


def fig_softmax(rows, judged, out: Path, stem: str) -> list[Path]:
    """Figure 7: the softmax-LM bound for the conditional-mean features Phi p_f, against epsilon_Phi (in-class
    references with a frozen Phi, and trained softmax LMs), with the bound tau_Phi + sqrt(2 B_Phi^2 eps_Phi)."""
    return _excess_panels(rows, out, stem, "next", ("logistic", "deterministic"), "next word", "softmax_phi")


def fig_masked(rows, judged, out: Path, stem: str) -> list[Path]:
    """Figure 6: figure 1 for the masked-word conditional p*(w_t | rest) and a masked LM."""
    return _excess_panels(rows, out, stem, "masked", ("masked_logistic", "masked_deterministic"), "masked word")


# --------------------------------------------------------------------------------------------- figure 2
def _training_cells(t: pd.DataFrame) -> pd.DataFrame:
    t = t[(t["kind"] == "lm") & (t["model"] == "xent") & (t["target"] == "next")]
    return t[t["d"] == t["d"].max()] if len(t) else t


def fig_training(rows, judged, out: Path, stem: str) -> list[Path]:
    """Figure 2: epsilon, the downstream loss of each feature type, and how affine Phi p_f is in f (the R^2 that
    decides whether a probe on f inherits the bound), at every checkpoint."""
    free = _training_cells(lt.free_table(rows))
    tasks = _training_cells(lt.task_table(rows))
    fig, grid = plotting.new(2, 2)   # 2 x 2, not 4 in a row: a 2520-px strip is unreadable on a slide
    ax = grid.reshape(1, 4)
    for i, ((arch, phi), g) in enumerate(free.groupby(["arch", "phi"])):
        m = _mean_sd(g, ["step"], "eps")
        ax[0, 0].errorbar(m["step"], m["mean"], m["std"], fmt="-o", ms=3, color=f"C{i}", label=f"{arch}, Phi {phi}")
    ax[0, 0].set_yscale("log")
    ax[0, 0].set_ylabel("epsilon (nats)")
    ax[0, 0].set_title("excess cross-entropy along training")
    styles = {"probe_f": "-o", "probe_phi_p": "--s", "probe_p": ":^", "plugin_p": "-."}
    names = {"probe_f": "probe on f", "probe_phi_p": "probe on Phi p_f", "probe_p": "probe on p_f",
             "plugin_p": "plug-in v on p_f"}
    if "r2_affine" in free:
        for i, ((arch, phi), g) in enumerate(free.groupby(["arch", "phi"])):
            m = _mean_sd(g, ["step"], "r2_affine")
            ax[0, 3].errorbar(m["step"], m["mean"], m["std"], fmt="-o", ms=3, color=f"C{i}", label=f"{arch}, Phi {phi}")
        ax[0, 3].legend(fontsize=6)
    ax[0, 3].set_ylabel("R^2 of Phi p_f(s) ~ A f(s) + b")
    ax[0, 3].set_title("is the conditional mean affine in f?")
    for a, task in zip(ax[0, 1:3], ("logistic", "deterministic")):
        s = tasks[(tasks["task"] == task) & (tasks["phi"] == "learned")]
        if s.empty:
            _empty(a, f"no learned-Phi LM with task {task}")
            continue
        for i, (arch, g) in enumerate(s.groupby("arch")):
            for col, fmt in styles.items():
                m = _mean_sd(g, ["step"], col)
                a.errorbar(m["step"], m["mean"], m["std"], fmt=fmt, ms=3, color=f"C{i}", label=f"{arch}: {names[col]}")
        a.axhline(float(s["tau"].iloc[0]), color="k", lw=0.8, label="tau (plug-in on p*)")
        a.set_ylabel("downstream logistic loss (population)")
        a.set_title(f"{task} task, learned Phi")
        a.legend(fontsize=6)
    for a in ax[0]:
        a.set_xscale("symlog", linthresh=1)
        a.set_xlim(left=0)   # steps are >= 0: the margin would add a spurious -10^0 tick
        a.set_xlabel("training step")
    ax[0, 0].legend(fontsize=6)
    return plotting.save(fig, out, stem)


# --------------------------------------------------------------------------------------------- figure 3
def fig_feature_types(rows, judged, out: Path, stem: str) -> list[Path]:
    """Figure 3: probe error and loss against labelled examples n for f(s), Phi p_f(s), p_f(s) and raw one-hots."""
    c = lt.curve_table(rows) if (rows["feature"] != "none").any() else pd.DataFrame()
    fig, ax = plotting.new(3)
    if c.empty:
        for a in ax[0]:
            _empty(a, "no probe curves in these results")
        return plotting.save(fig, out, stem)
    pick = c[(c["arch"] == "mlp") & (c["phi"] == "learned")]
    c = pick if len(pick) else c[c["cell"] == c["cell"].iloc[0]]
    arch, phi = c["arch"].iloc[0], c["phi"].iloc[0]
    t = lt.task_table(rows)
    panels = [("logistic", "curve_error", ax[0, 0]), ("deterministic", "curve_error", ax[0, 1]),
              ("logistic", "curve_loss", ax[0, 2])]
    for task, col, a in panels:
        s = c[c["task"] == task]
        if s.empty:
            _empty(a, f"no curves for task {task}")
            continue
        for i, (feat, name) in enumerate(FEATURES.items()):
            m = _mean_sd(s[s["feature"] == feat], ["n"], col)
            a.errorbar(m["n"], m["mean"], m["std"], fmt="-o", ms=3, color=f"C{i}", label=name)
        if col == "curve_loss":
            tt = t[t["task"] == task]
            a.axhline(float(tt["tau"].iloc[0]), color="k", lw=0.8, label="tau (plug-in on p*)")
            a.axhline(float(tt["bayes"].iloc[0]), color="k", lw=0.8, ls=":", label="Bayes loss of y given s")
        a.set_xscale("log")
        a.set_xlabel("labelled examples n")
        a.set_ylabel("probe test " + ("error" if col == "curve_error" else "logistic loss") + " (population)")
        a.set_title(f"{task} task ({arch}, Phi {phi})")
        a.legend(fontsize=6)
    return plotting.save(fig, out, stem)


# --------------------------------------------------------------------------------------------- figure 4
def fig_quad(rows, judged, out: Path, stem: str) -> list[Path]:
    """Figure 4: principal angles between the learned Phi and Omega*'s top-d eigenspace; Quad against xent."""
    free, tasks = lt.free_table(rows), lt.task_table(rows)
    q = free[free["model"] == "quad"]
    fig, ax = plotting.new(2)
    if q.empty:
        for a in ax[0]:
            _empty(a, "no Quad cell in these results")
        return plotting.save(fig, out, stem)
    d, arch = int(q["d"].iloc[0]), q["arch"].iloc[0]
    sel = lambda t: t[(t["model"].isin(["quad", "xent"])) & (t["d"] == d) & (t["arch"] == arch)  # noqa: E731
                      & (t["phi"] == "learned") & (t["target"] == "next")]
    free, tasks = sel(free), sel(tasks)
    angles = [c for c in free.columns if c.startswith("angle_")]
    free = free.assign(angle_max=np.degrees(free[angles].max(axis=1)), angle_mean=np.degrees(free[angles].mean(axis=1)))
    for i, (obj, g) in enumerate(free.groupby("model")):
        for col, fmt in (("angle_max", "-o"), ("angle_mean", "--s")):
            m = _mean_sd(g, ["step"], col)
            ax[0, 0].errorbar(m["step"], m["mean"], m["std"], fmt=fmt, ms=3, color=f"C{i}",
                              label=f"{obj}: {'largest' if col == 'angle_max' else 'mean'} angle")
    ax[0, 0].set_ylabel("angle to top-d eigenspace of Omega* (deg)")
    ax[0, 0].set_title(f"principal angles, d = {d}")
    for i, (obj, g) in enumerate(tasks.groupby("model")):
        for task, fmt in (("logistic", "-o"), ("deterministic", "--s")):
            m = _mean_sd(g[g["task"] == task], ["step"], "probe_f")
            ax[0, 1].errorbar(m["step"], m["mean"], m["std"], fmt=fmt, ms=3, color=f"C{i}", label=f"{obj}: {task}")
    for task, ls in (("logistic", "-"), ("deterministic", "--")):
        s = tasks[tasks["task"] == task]
        if len(s):
            ax[0, 1].axhline(float(s["tau"].iloc[0]), color="k", lw=0.7, ls=ls, label=f"tau ({task})")
    ax[0, 1].set_ylabel("loss of the best probe on f(s) (population)")
    ax[0, 1].set_title("downstream: Quad against cross-entropy")
    for a in ax[0]:
        a.set_xscale("symlog", linthresh=1)
        a.set_xlabel("training step")
        a.legend(fontsize=6)
    return plotting.save(fig, out, stem)


# --------------------------------------------------------------------------------------------- figure 5
def fig_non_natural(rows, judged, out: Path, stem: str) -> list[Path]:
    """Figure 5: the naturalness check of every task, and what the probe and the bound say on each."""
    t = lt.task_table(rows)
    t = t[t["target"] == "next"]
    fig, ax = plotting.new(2, width=5.2)
    if t.empty:
        for a in ax[0]:
            _empty(a, "no next-word task in these results")
        return plotting.save(fig, out, stem)
    tasks = list(dict.fromkeys(t["task"]))
    check = t.groupby("task")[["natural_gap", "gap_max", "tau", "tau_check", "bayes"]].first().loc[tasks]
    _, met = th.NATURALNESS.evaluate(check)  # the theorems' declared assumption, as the verdicts read it
    x = np.arange(len(tasks))
    ax[0, 0].bar(x, check["natural_gap"], color=np.where(met, "C2", "C3"))
    ax[0, 0].axhline(float(check["gap_max"].iloc[0]), color="k", ls="--", lw=0.8, label="gap_max")
    for i, ok in enumerate(met):
        ax[0, 0].text(i, check["natural_gap"].iloc[i], "met" if ok else "assumption\nnot met", ha="center",
                      va="bottom", fontsize=7)
    ax[0, 0].set_ylim(0, 1.35 * max(float(check["natural_gap"].max()), float(check["gap_max"].iloc[0])))
    ax[0, 0].set_xticks(x, tasks, rotation=20)
    ax[0, 0].set_ylabel("natural gap (nats):\nbest probe on p* - Bayes loss")
    ax[0, 0].set_title("naturalness check: is y linear in p*_s?")
    ax[0, 0].legend(fontsize=7)
    lm = _training_cells(t)
    lm = lm[(lm["phi"] == "learned") & (lm["step"] == lm["step"].max())]
    checks = judged.reindex(columns=list(dict.fromkeys([*judged.columns, "cell", "step", "task"])))
    checks = checks[(checks["bound"] == "any_lm") & (checks["form"] == "plugin") & checks["cell"].isin(lm["cell"])
                    & (checks["step"] == lm["step"].max())]
    bars = [("Bayes loss (y | s)", check["bayes"].to_numpy(), [0.0] * len(tasks)),
            ("tau (probe on p*)", check["tau"].to_numpy(), [0.0] * len(tasks))]
    for col, name in (("probe_p", "best probe on p_f"), ("plugin_p", "plug-in on p_f")):
        m = lm.groupby("task")[col].agg(["mean", "std"]).reindex(tasks)
        bars.append((name, m["mean"].to_numpy(), m["std"].fillna(0).to_numpy()))
    m = checks.groupby("task")["bound_value"].agg(["mean", "std"]).reindex(tasks)
    bars.append(("bound tau + sqrt(2B^2 eps/gamma)", m["mean"].to_numpy(), m["std"].fillna(0).to_numpy()))
    width = 0.8 / len(bars)
    for j, (name, vals, err) in enumerate(bars):
        ax[0, 1].bar(x + (j - len(bars) / 2 + 0.5) * width, vals, width, yerr=err, label=name, color=f"C{j}",
                     gid=plotting.BOUND if name.startswith("bound") else None)
    plotting.trivial_line(ax[0, 1], lt.TRIVIAL, "log 2 (trivial)", color="k", lw=0.8)
    ax[0, 1].set_xticks(x, [f"{k}\n({'met' if ok else 'not met'})" for k, ok in zip(tasks, met)], fontsize=7)
    ax[0, 1].set_ylabel("downstream logistic loss (nats)")
    ax[0, 1].set_title("trained LM (last checkpoint): probe, plug-in, bound")
    top = 1.5  # a bound far above log 2 (small gamma) is clipped and its value written on the bar
    ax[0, 1].set_ylim(0, top)
    for j, (_, vals, _) in enumerate(bars):
        for i, val in enumerate(vals):
            if np.isfinite(val) and val > top:
                ax[0, 1].text(x[i] + (j - len(bars) / 2 + 0.5) * width, top * 0.97, f"{val:.3g}", ha="center",
                              va="top", fontsize=6, rotation=90)
    ax[0, 1].legend(fontsize=6)
    return plotting.save(fig, out, stem)


# --------------------------------------------------------------------------------------------- frontier
KIND_STYLE = {"trained": dict(marker="o", color="C0"), "untrained": dict(marker="o", color="0.6", facecolors="none"),
              "oracle": dict(marker="*", color="C2"), "constructed": dict(marker="x", color="C3")}
_THEOREMS = (("language.theorem_4_1", "Theorem 4.1 (any LM)"), ("language.theorem_4_2", "Theorem 4.2 (softmax)"),
             ("language.quad", "Quad bound"))
_FLOOR = 1e-7  # epsilon = 0 (the oracle) drawn at this floor of the log axis


def frontier_caption(summary: pd.DataFrame) -> str:
    """One sentence per (theorem, task) on where the theorem stops saying anything, from ``frontier_summary``."""
    parts = []
    for _, r in summary[summary["gamma_form"] == "min"].iterrows():
        parts.append(f"{r['theorem'].split('.')[-1]} on {r['task']}: vacuous beyond eps* = {r['eps_star']:.2g} "
                     f"(tau {r['tau']:.3f}, B {r['B']:.2g}, gamma {r['gamma']:.2g}); "
                     f"{r['trained_informative_hold']} of {r['trained']} trained points hold below log 2")
    return "; ".join(parts)


def fig_frontier(rows, judged, out: Path, stem: str) -> list[Path]:
    """The frontier: bound / log 2 against the theorem's epsilon for every plug-in point of the natural next-word
    tasks (min-ratio gamma), trained, untrained, oracle and constructed points marked apart, each with its measured
    loss / log 2 beside it (small grey dot), the line bound = trivial and eps* = gamma (log 2 - tau)^2 / (2 B^2) drawn
    at the trained points' terms; the title of each panel says where the theorem stops saying anything."""
    checks = judged
    tasks = [t for t in lt.FRONTIER_TASKS if len(checks) and t in set(checks["task"])]
    fig, ax = plotting.new(max(len(tasks), 1), len(_THEOREMS), width=4.4, height=3.6)
    if not tasks:
        _empty(ax[0, 0], "no next-word natural task in these results")
        return plotting.save(fig, out, stem)
    pts = lt.frontier_points(checks)
    pts = pts[pts["gamma_form"] == "min"]
    summary = lt.frontier_summary(checks)
    for i, (thm, name) in enumerate(_THEOREMS):
        for j, task in enumerate(tasks):
            a = ax[i, j]
            s = pts[(pts["theorem"] == thm) & (pts["task"] == task)]
            if s.empty:
                _empty(a, f"no {name} points on {task}")
                continue
            x = np.maximum(s["epsilon"].to_numpy(), _FLOOR)
            for kind, style in KIND_STYLE.items():
                k = (s["model_kind"] == kind).to_numpy()
                if k.any():
                    a.scatter(x[k], s["bound_ratio"][k], s=16, alpha=0.8, label=f"{kind}: bound", gid=plotting.BOUND,
                              **style)
            a.scatter(x, s["measured_ratio"], s=4, color="0.35", alpha=0.6, label="measured loss (each point)")
            plotting.trivial_line(a, 1.0, "bound = trivial (log 2)", color="k", ls="-")
            r = summary[(summary["theorem"] == thm) & (summary["task"] == task)
                        & (summary["gamma_form"] == "min")].iloc[0]
            grid = np.geomspace(min(x.min(), r["eps_star"] / 10 if r["eps_star"] > 0 else x.min()), x.max(), 60)
            a.plot(grid, th.bound(r["tau"], r["B"], grid, r["gamma"]) / lt.TRIVIAL, "k--", lw=0.8,
                   label="bound at the trained terms")
            if r["eps_star"] > 0:
                a.axvline(r["eps_star"], color="C1", lw=1.0, label=f"eps* = {r['eps_star']:.2g}")
            a.set_xscale("log")
            a.set_yscale("log")
            a.set_xlabel("epsilon of the theorem (nats; 0 drawn at 1e-7)")
            a.set_ylabel("bound / log 2 (measured / log 2: grey)")
            a.set_title(f"{name}, {task}:\nsays nothing beyond eps* = {r['eps_star']:.2g}; "
                        f"{r['trained_informative_hold']} of {r['trained']}\ntrained points hold below log 2",
                        fontsize=7)
            a.legend(fontsize=5)
    fig.suptitle(frontier_caption(summary), fontsize=5.5, wrap=True)
    return plotting.save(fig, out, stem)


# One name per study: a figure named after a config section draws that study's cells. The others are not one
# study's; SUMMARY_FIGURES lists the studies each draws (the chapter protocol accepts them by this declaration).
FIGURES = {"bound": fig_bound, "training": fig_training, "feature_types": fig_feature_types, "quad": fig_quad,
           "non_natural": fig_non_natural, "masked": fig_masked, "softmax": fig_softmax,
           "frontier": fig_frontier}
# the studies a summary figure needs on (each entry; "a|b": either)
SUMMARY_FIGURES = {
    "feature_types": ("training",),           # the training study's probe curves at the last checkpoint
    "non_natural": ("bound",),                # every next-word task's naturalness check (and trained LMs, if any)
    "softmax": ("bound", "training"),         # the bound study's in-class references and the trained softmax LMs
    "frontier": ("bound|training|em|full_batch",),   # every LM's epsilon against where the theorems stop
}

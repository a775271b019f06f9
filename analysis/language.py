"""Language models and natural tasks: the bound checks and the points of the chapter's figures, from stored rows.

Every bound is computed from the theorem's terms measured in the cell (theory.language does the arithmetic);
nothing is fitted to a measured curve. Three bounds, each a theorem of ``theory.language.THEOREMS`` (the row's
``theorem`` column), all of the form tau + sqrt(2 B^2 epsilon / gamma) so that ``bound_value`` recomputes from the
row's ``tau``, ``B``, ``epsilon`` and ``gamma`` with the theorem's ``bound_from``:

* ``any_lm`` (language.theorem_4_1): features p_f(s); epsilon = E KL(p* || p_f); tau, B = the task's (v, b).
* ``softmax_phi`` (language.theorem_4_2): features Phi p_f(s); epsilon = eps_Phi (excess over the best LM with this
  Phi); tau and B are those of v_Phi = Phi^T lambda + c 1, the least-squares image of v in Phi's row space (a valid
  naturalness certificate w.r.t. Phi; v_Phi = v when the task is natural w.r.t. Phi).
* ``quad`` (language.quad): features Phi^T f(s) (a probe on f); epsilon = eps_quad for this Phi; B = ||Phi^T
  lambda||_2 (the quad bound's l2 norm, not a half-range).

Forms: ``plugin`` is the proof's own probe (v, b) on the features; ``fitted probe`` the best linear probe, fitted on
the task's exact label law (regularised by 1 / population_C: a stand-in for the infimum the theorem bounds). A fitted
probe whose solver did not converge (metric ``probe_<feature>_converged`` = 0) gives ``converged`` = False, so its
row is undetermined; plug-in rows rest on no fit.
``measured_se`` is the SE of measured - tau over the same contexts (tau's own noise cancels in the verdict; NaN where
the rows carry none), ``bound_se`` the SE the bound inherits from epsilon; ``excess_slack`` = (bound - tau) /
(measured - tau) compares the bound's sqrt term with the measured excess over tau (``slack`` = bound / measured
counts tau on both sides). Every row carries ``natural_gap`` and ``gap_max``, the terms of the theorems' declared
naturalness assumption (theory.language.NATURALNESS): the best probe on p* (||v||_inf <= tasks.check_B) must leave
at most tasks.gap_max nats above the Bayes loss of y given s; ``analysis.bounds.judge(checks, index(THEOREMS))``
marks a task that fails it "assumption not met". The trivial loss is log 2, the zero probe's.
Every row carries ``gamma_form`` ("min": gamma is the min-ratio coefficient; "cov": its covariance form, rows of their
own where the task's context law differs from the LM's, with ``gamma_min`` beside) and ``model_kind`` (``model_kind``:
trained, untrained, oracle or constructed).
Derivations and what is loose: docs/theory/language.md. The figures are in ``analysis.language_figures``
(``FIGURES``); this module never imports it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from theory import language as th

KEYS = ["cell", "kind", "model", "arch", "phi", "d", "target", "level", "tilt_task", "seed", "lr", "step"]
TRIVIAL = th.TRIVIAL_LOSS
# bound -> the id of its theorem in theory.language.THEOREMS
THEOREM_OF = {"any_lm": "language.theorem_4_1", "softmax_phi": "language.theorem_4_2", "quad": "language.quad"}
# bound -> (measured by form, epsilon, its SE, tau, B): the columns of the task table each bound reads.
BOUNDS = {
    "any_lm": ({"plugin": "plugin_p", "fitted probe": "probe_p"}, "eps", "eps_se", "tau", "B"),
    "softmax_phi": ({"plugin": "plugin_phi", "fitted probe": "probe_phi_p"}, "eps_phi", "eps_phi_se", "tau_phi",
                    "B_phi"),
    "quad": ({"plugin": "plugin_quad", "fitted probe": "probe_f"}, "eps_quad", "eps_quad_se", "tau_phi", "B_quad"),
}
QUAD_MODELS = ("quad", "quad_full")   # the cells Quad trained (minibatch, and full batch on a frozen Phi)
# gamma_form -> the column holding each bound's gamma: the min-ratio form on every task; the covariance form (of the
# bound's own error vector) where the task's context law differs from the LM's, the only rows where the two differ
GAMMAS = {"min": {b: "gamma" for b in BOUNDS},
          "cov": {"any_lm": "gamma_cov", "softmax_phi": "gamma_cov_phi", "quad": "gamma_cov_quad"}}


def _wide(rows: pd.DataFrame, extra: list[str]) -> pd.DataFrame:
    # unstack, not pivot_table: pivot_table drops metrics that are NaN everywhere
    wide = rows.set_index(KEYS + extra + ["metric"])["value"].unstack("metric").reset_index()
    wide.columns.name = None
    return wide


def free_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per point (a reference level or a checkpoint of one model): its task-free metrics (eps, angles...)."""
    return _wide(rows[(rows["task"] == "none") & (rows["feature"] == "none")], [])


def task_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (point, task): the task's terms, plug-in and probe losses, and the point's task-free metrics."""
    t = _wide(rows[(rows["task"] != "none") & (rows["feature"] == "none")], ["task"])
    return t.merge(free_table(rows), on=KEYS, how="left")


def curve_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Finite-n probe curves: one row per (point, task, feature, n) with curve_loss and curve_error."""
    return _wide(rows[rows["feature"] != "none"], ["task", "feature", "n"])


def _converged(s: pd.DataFrame, col: str, form: str) -> np.ndarray:
    """False where the fitted probe behind ``col`` did not converge; a plug-in rests on no fit. Rows stored before
    convergence was recorded (no ``<col>_converged`` metric) count as converged."""
    flag = f"{col}_converged"
    if form != "fitted probe" or flag not in s:
        return np.ones(len(s), dtype=bool)
    v = s[flag].to_numpy(dtype=np.float64)
    return ~(v == 0.0)


# reference families built from the ground truth: p* itself (or the in-class optimum theta*) at level 0, perturbed on
# purpose above it
_PERTURBED = ("noise", "tilt", "softmax_noise")


def model_kind(rows: pd.DataFrame) -> np.ndarray:
    """What each point is (issue 16, CONVENTIONS item 2), from its cell columns (kind, model, level, step).

    * ``trained``: an LM the suite fitted to sampled text by its own objective: a trained softmax LM after step 0
      (xent, quad, mlm), the Baum-Welch HMM (``hmm_em``), and the k-gram models (add-alpha counts on sampled text);
    * ``untrained``: a trained LM's step 0 (its random initialisation);
    * ``oracle``: a reference family at level 0, which is the ground truth: p* (noise, tilt) or the exact in-class
      minimiser theta* = argmin_theta l_s(theta) for the frozen Phi (softmax_noise);
    * ``constructed``: the same families at level > 0 (logit noise, an adversarial tilt, in-class noise).
    """
    kind, model = rows["kind"].to_numpy(dtype=object), rows["model"].to_numpy(dtype=object)
    level = rows["level"].to_numpy(dtype=np.float64)
    step = rows["step"].to_numpy(dtype=np.float64)
    fitted = (kind == "lm") | (model == "kgram")
    perturbed = (kind == "ref") & np.isin(model, _PERTURBED)
    out = np.full(len(rows), "", dtype=object)
    out[fitted] = "trained"
    out[(kind == "lm") & (step == 0)] = "untrained"
    out[perturbed & (level == 0)] = "oracle"
    out[perturbed & (level != 0)] = "constructed"
    unknown = sorted(set(model[out == ""]))
    if unknown:
        raise ValueError(f"model: no model_kind for {', '.join(map(str, unknown))}")
    return out


def bound_checks(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows for bounds.csv: one per (bound, form, point, task) where the bound's terms were measured."""
    if rows.empty:
        return pd.DataFrame()
    t = task_table(rows)
    frames = []
    for (bound, (measured, eps, eps_se, tau, B)), (gamma_form, gammas) in (
            (b, g) for b in BOUNDS.items() for g in GAMMAS.items()):
        gamma = gammas[bound]
        for form, col in measured.items():
            if col not in t or eps not in t or gamma not in t:
                continue
            s = t[t[col].notna() & t[eps].notna() & t[gamma].notna()]
            if bound == "quad":
                s = s[s["model"].isin(QUAD_MODELS)]  # valid for any (f, Phi), but checked where Quad trained them
            if s.empty:
                continue
            se_col = f"{col}_se"
            terms = {"tau": s[tau].to_numpy(), "B": s[B].to_numpy(), "epsilon": s[eps].to_numpy(),
                     "gamma": s[gamma].to_numpy()}
            value = th.bound(terms["tau"], terms["B"], terms["epsilon"], terms["gamma"])
            frames.append(pd.DataFrame({
                "theorem": THEOREM_OF[bound], "bound": bound, "form": form, "gamma_form": gamma_form,
                "model_kind": model_kind(s),
                "measured": s[col].to_numpy(),
                "measured_se": s[se_col].to_numpy() if se_col in s else np.full(len(s), np.nan),
                "bound_value": value,
                "bound_se": th.bound_se(0.0, terms["B"], terms["epsilon"], s[eps_se].to_numpy(), terms["gamma"]),
                "trivial": TRIVIAL, "converged": _converged(s, col, form), **terms,
                "natural_gap": s["natural_gap"].to_numpy(), "gap_max": s["gap_max"].to_numpy(),
                "gamma_min": s["gamma"].to_numpy(),
                "excess_slack": _excess_slack(s[col].to_numpy() - terms["tau"], value - terms["tau"]),
                "epsilon_se": s[eps_se].to_numpy(), "task": s["task"].to_numpy(),
                **{k: s[k].to_numpy() for k in KEYS},
                **{k: s[k].to_numpy() for k in ("tau_check", "bayes", "resid_phi") if k in s}}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _excess_slack(excess: np.ndarray, room: np.ndarray) -> np.ndarray:
    """(bound - tau) / (measured - tau): how far the excess over tau sits below the bound's sqrt term (inf where
    the measured loss is at or below tau, e.g. a fitted probe that beats the plug-in on p*)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(excess > 0, room / excess, np.inf)


# --------------------------------------------------------------------------------------------- slopes
FAMILIES = {"noise": "logit noise", "tilt": "adversarial tilt", "kgram": "k-gram", "xent": "trained (xent)",
            "mlm": "trained (masked LM)", "hmm_em": "trained (Baum-Welch HMM)"}
# the softmax bound's figure: LMs that carry a Phi (in-class references and trained softmax LMs)
SOFTMAX_FAMILIES = {"softmax_noise": "in-class noise, frozen Phi", "xent": "trained (xent), frozen Phi",
                    "xent_full": "trained full batch (xent), frozen Phi"}
# bound -> (epsilon, plug-in loss, tau, B) columns of the task table
EXCESS_TERMS = {"any_lm": ("eps", "plugin_p", "tau", "B"), "softmax_phi": ("eps_phi", "plugin_phi", "tau_phi", "B_phi")}


def excess_points(rows: pd.DataFrame, target: str = "next", bound: str = "any_lm") -> pd.DataFrame:
    """Figures 1, 6 and 7's points: the plug-in excess loss over tau against epsilon, per (task, family), in the
    terms of ``bound`` (written to the columns eps, excess, tau, B whichever bound it is).

    A tilt point belongs to the task it tilts against; trained LMs enter at every checkpoint after step 0 (for
    any_lm those with a learned Phi; for softmax_phi those with the frozen Phi the in-class references use, whose
    rows span the tasks' v, so every point shares tau_Phi = tau and B_Phi = B and one bound curve is exact).
    """
    fams = FAMILIES if bound == "any_lm" else SOFTMAX_FAMILIES
    t = task_table(rows)
    t = t[(t["target"] == target) & t["model"].isin(list(fams))].copy()
    t = t[(t["model"] != "tilt") | (t["tilt_task"] == t["task"].str.replace("masked_", "", regex=False))]
    phis = ["learned", "none"] if bound == "any_lm" else ["frozen"]   # "none": the Baum-Welch HMM
    t = t[(t["kind"] == "ref") | ((t["step"] > 0) & t["phi"].isin(phis))]
    eps, plugin, tau, B = EXCESS_TERMS[bound]
    t["excess"] = t[plugin] - t[tau]
    t["eps"], t["tau"], t["B"] = t[eps], t[tau], t[B]
    t["family"] = t["model"]
    return t


def fit_slope(eps: np.ndarray, excess: np.ndarray) -> tuple[float, float, int]:
    """(slope, intercept, n) of the least-squares line log(excess) ~ log(eps) over points with both > 0."""
    ok = (eps > 1e-12) & (excess > 1e-12)
    if ok.sum() < 3:
        return float("nan"), float("nan"), int(ok.sum())
    slope, icpt = np.polyfit(np.log(eps[ok]), np.log(excess[ok]), 1)
    return float(slope), float(icpt), int(ok.sum())


def slopes(rows: pd.DataFrame, target: str = "next", bound: str = "any_lm") -> pd.DataFrame:
    """The fitted log-log slope of excess against eps, per (task, family): eps^1 and eps^1/2 regimes."""
    pts = excess_points(rows, target, bound)
    out = []
    for (task, fam), g in pts.groupby(["task", "family"]):
        s, c, n = fit_slope(g["eps"].to_numpy(), g["excess"].to_numpy())
        out.append({"task": task, "family": fam, "slope": s, "intercept": c, "n_points": n})
    return pd.DataFrame(out, columns=["task", "family", "slope", "intercept", "n_points"])


# ------------------------------------------------------------------------------------------- frontier
FRONTIER_TASKS = ("logistic", "deterministic", "prompt")


def eps_star(tau, B, gamma, trivial=TRIVIAL):
    """The largest epsilon at which tau + sqrt(2 B^2 epsilon / gamma) is below the trivial loss: gamma (trivial -
    tau)^2 / (2 B^2), 0 where tau is already at or above it. Beyond it the theorem says nothing."""
    tau, B, gamma = (np.asarray(a, dtype=np.float64) for a in (tau, B, gamma))
    out = gamma * np.maximum(trivial - tau, 0.0) ** 2 / (2.0 * B ** 2)
    return float(out) if out.ndim == 0 else out


def frontier_points(checks: pd.DataFrame) -> pd.DataFrame:
    """The frontier figure's points: plug-in rows (the theorem's own probe) of the next-word natural tasks, with
    bound / trivial, measured / trivial, and each row's own eps* and epsilon / eps*."""
    c = checks[(checks["form"] == "plugin") & (checks["target"] == "next") & checks["task"].isin(FRONTIER_TASKS)]
    c = c.copy()
    c["bound_ratio"] = c["bound_value"] / c["trivial"]
    c["measured_ratio"] = c["measured"] / c["trivial"]
    c["eps_star"] = eps_star(c["tau"], c["B"], c["gamma"], c["trivial"])
    return c


def frontier_summary(checks: pd.DataFrame) -> pd.DataFrame:
    """Per (theorem, task, gamma_form): eps* at the median tau, B, gamma of its trained points (their terms are
    the task's), the smallest trained epsilon, and how many trained points fall below eps* (the bound is then below
    log 2 by construction) and how many of those hold: ``checks`` is the run's judged table, and a hold is its
    verdict, never judged again here."""
    if "verdict" not in checks.columns:
        raise ValueError("frontier_summary: needs the judged table (a 'verdict' column), not bare bound checks")
    pts = frontier_points(checks)
    out = []
    for (thm, task, gf), g in pts.groupby(["theorem", "task", "gamma_form"]):
        tr = g[g["model_kind"] == "trained"]
        ref = tr if len(tr) else g
        star = eps_star(ref["tau"].median(), ref["B"].median(), ref["gamma"].median(), float(ref["trivial"].iloc[0]))
        inside = tr[(tr["epsilon"] < tr["eps_star"]) & (tr["natural_gap"] <= tr["gap_max"])]
        out.append({"theorem": thm, "task": task, "gamma_form": gf, "tau": ref["tau"].median(),
                    "B": ref["B"].median(), "gamma": ref["gamma"].median(), "eps_star": star,
                    "trained": len(tr), "trained_min_eps": tr["epsilon"].min() if len(tr) else np.nan,
                    "trained_informative": len(inside),
                    "trained_informative_hold": int((inside["verdict"] == "holds").sum())})
    return pd.DataFrame(out)

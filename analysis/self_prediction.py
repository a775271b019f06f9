"""Self-prediction under conditional independence: bound checks and the tables the six figures draw.

Every bound value is computed by theory.self_prediction from the terms the cell measured (sigma2, eps_CI^2,
beta, eps_pre^2, e_apx of raw X1); nothing is fitted to the measured curves. The slopes shown in figure 1 are a
description of the measured curves (a log-log least-squares fit), never used by a bound. The figures themselves
are in analysis/self_prediction_figures.py (its FIGURES). Statements, assumptions and derivations:
docs/theory/self_prediction.md; the declarations are theory.self_prediction.THEOREMS.

Bounds (one bounds.csv row per (bound, form, cell, representation, n), measured = mean over seeds; the
``theorem`` column names the declaration, whose bound function recomputes ``bound_value`` from the row's terms
and whose Assumption checks decide "assumption not met"):
* exact_ci, forms ref_r / ref_d2 (theorem self_prediction.ref_gaussian_ols, a reference): psi* reduced to
  r = n_latent - 1 PCs (and psi* unreduced, p = d2): risk_bound with e_apx = 0, i.e. the Gaussian-design OLS
  risk sigma2 (1/n + (1 + 1/n) p/(n - p - 2)), the reference form of Theorem 3.2's O(sigma2 k / n). Its
  assumptions: eps_CI = 0 (Lemma 3.1), and beta > 0.
* exact_ci, form "chernoff" (self_prediction.exact_ci_chernoff, derived and rigorous): Theorem 3.2 with constants
  for psi* reduced, 4 (p + 1) sigma2_eff / n (theory.self_prediction.exact_ci_bound), checked at the n where the
  matrix-Chernoff bound on the design's failure probability is <= FAILURE_MAX (columns sigma2_eff, leverage_max,
  failure_prob; the failure probability is also a declared assumption, recomputed from p, n and leverage_max).
* approx_ci, forms derived_r / derived_d2 (self_prediction.theorem_4_2_risk, a reference): the same
  representations, with e_apx bounded by apx_bound(eps_CI^2, beta) (x4 after PCA) plus the Gaussian-design OLS
  variance: the derived form of Theorem 4.2 (Remark 4.1 for the PCA). Assumption 4.1: beta > 0, d2 >= n_latent.
* learned (same theorem): each regression learner's psi, PCA-reduced ("<learner>", x4) and whole
  ("<learner>_full", p = d2), with apx_bound(eps_CI^2, beta, eps_pre^2), eps_pre^2 measured per seed against the
  exact psi* (the bound is averaged over seeds like the measured ER; its terms are eps_pre_mean and eps_pre, the
  mean and RMS of eps_pre over seeds, which give that average exactly).
* raw_baseline, form ref_d1 (self_prediction.ref_gaussian_ols_raw, a reference): raw X1 (p = d1): e_apx(X1)
  estimated on the test sample (column e_apx_raw) plus the OLS variance (order sigma2 d1 / n); no assumption.
* approx_ci / learned, form "population" (self_prediction.theorem_4_2_population, derived): the population
  inequality e_apx(psi) <= apx_bound itself, with the e_apx measured on the test sample (n is empty: it does not
  depend on the probe's sample size).
Across-seed SEs follow theory.stats (NaN from one seed, so a one-seed point is "undetermined").
"""
from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd

from theory import self_prediction as th
from theory.stats import ONE_SEED_SE, mean_se

PARAMS = ["cell", "family", "k", "d1", "d2", "m", "alpha", "nuisance_scale", "n1", "studies", "n_fixed",
          "target_fraction"]
REGRESSION = ("linear", "rff", "mlp", "softmax")     # learners whose psi lives in R^d2 (eps_pre is defined)
PSI = ("psi_star", "psi_star_full")
# form -> what it is; the form's name stays short for the summary table, the note goes into bounds.csv.
FORMS = {
    "ref_r": "[derived reference] Gaussian-design OLS risk with e_apx = 0, p = r = n_latent - 1 PCs of psi "
             "(constants for Thm 3.2's O(sigma2 k / n); exact only for a Gaussian design, homoscedastic noise)",
    "chernoff": "[derived, rigorous] E[ER; G] <= 4 (p + 1) sigma2_eff / n for OLS on r = n_latent - 1 PCs of psi* under "
                "exact CI, checked only where the matrix-Chernoff bound on P(not G) is <= FAILURE_MAX",
    "ref_d2": "[derived reference] Gaussian-design OLS risk with e_apx = 0, p = d2 (psi unreduced)",
    "derived_r": "[derived reference] 4 ((eps_CI + eps_pre) / beta)^2 + OLS risk with noise sigma2 + that, p = r "
                 "PCs (Thm 4.2 with Remark 4.1's PCA; the variance term is the Gaussian-design reference)",
    "derived_d2": "[derived reference] ((eps_CI + eps_pre) / beta)^2 + OLS risk with noise sigma2 + that, p = d2 "
                  "(Thm 4.2; the variance term is the Gaussian-design reference)",
    "ref_d1": "[derived reference] e_apx(X1) (estimated on the test sample) + OLS risk, p = d1 (order sigma2 d1 / n)",
    "population": "[derived] e_apx(psi) <= ((eps_CI + eps_pre) / beta)^2 (x4 after PCA), no probe sample",
}
POPULATION = "population"
FAILURE_MAX = th.FAILURE_MAX   # the rigorous exact-CI bound is checked where P(lambda_min(S) < 1/2) <= this
# (bound, form) -> the id of its declaration in theory.self_prediction.THEOREMS
THEOREM_OF = {("exact_ci", "ref_r"): "self_prediction.ref_gaussian_ols",
              ("exact_ci", "ref_d2"): "self_prediction.ref_gaussian_ols",
              ("exact_ci", "chernoff"): "self_prediction.exact_ci_chernoff",
              ("raw_baseline", "ref_d1"): "self_prediction.ref_gaussian_ols_raw",
              **{(b, f): "self_prediction.theorem_4_2_risk" for b in ("approx_ci", "learned")
                 for f in ("derived_r", "derived_d2")},
              **{(b, POPULATION): "self_prediction.theorem_4_2_population" for b in ("approx_ci", "learned")}}
_PSI_FORMS = {"psi_star": ("ref_r", "derived_r"), "psi_star_full": ("ref_d2", "derived_d2")}


def cell_terms(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per cell with its parameters and the data terms (sigma2, eps_ci2, beta, trivial, r, ...)."""
    d = rows[rows["representation"] == "data"]
    wide = d.set_index(PARAMS + ["metric"])["value"].unstack("metric").reset_index()
    wide.columns.name = None
    wide["epsilon_CI"] = np.sqrt(wide["eps_ci2"])
    return wide


def seed_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (cell, representation, seed): p, e_apx, e_apx_full, eps_pre2 (where defined)."""
    s = rows[(rows["representation"] != "data") & (rows["n"] == 0)]
    wide = s.set_index(["cell", "representation", "seed", "metric"])["value"].unstack("metric").reset_index()
    wide.columns.name = None
    return wide


def curves(rows: pd.DataFrame, metric: str = "er") -> pd.DataFrame:
    """Mean and SE over seeds of ``metric`` per (cell, representation, n), with the cell's parameters."""
    c = rows[(rows["metric"] == metric) & (rows["n"] > 0)]
    g = c.groupby(PARAMS + ["representation", "n"])["value"]
    out = g.agg(["mean", "std", "count"]).reset_index()
    # theory.stats' convention (the same numbers as mean_se for >= 2 seeds): no across-seed SE from one seed
    out["se"] = np.where(out["count"] >= 2, out["std"] / np.sqrt(out["count"]), ONE_SEED_SE)
    return out


def _seed_mean_se(values: np.ndarray) -> tuple[float, float]:
    """Mean and across-seed SE (theory.stats.mean_se: NaN SE from one seed)."""
    m, se = mean_se(np.asarray(values, dtype=float))
    return float(m), float(se)


def _se_by_difference(fn, values: dict, ses: dict) -> float:
    """First-order propagated SE of fn(**values) from independent SEs (central differences)."""
    var = 0.0
    for name, se in ses.items():
        if not se or not np.isfinite(se):
            continue
        h = dict(values)
        lo, hi = max(values[name] - se, 0.0), values[name] + se
        h[name] = hi
        up = fn(**h)
        h[name] = lo
        down = fn(**h)
        if np.isfinite(up) and np.isfinite(down):
            var += ((up - down) / (hi - lo) * se) ** 2
    return math.sqrt(var)


def _row(bound, form, measured, measured_se, value, value_se, n, eps_pre, common, eps_pre_mean=0.0) -> dict:
    # the assumptions (exact CI, Assumption 4.1, the design event) are the theorems' declared checks, evaluated
    # by analysis.bounds.judge on the row's terms: eps_ci2, trivial, beta, d2, n_latent, p, n, leverage_max
    return {"theorem": THEOREM_OF[(bound, form)], "bound": bound, "form": form, "measured": measured,
            "measured_se": measured_se, "bound_value": value, "bound_se": value_se, "n": n, "eps_pre": eps_pre,
            "eps_pre_mean": eps_pre_mean, **common}


def _curve_rows(curve, bound, form, fn, values: dict, ses: dict, common) -> list[dict]:
    """One row per n of the measured ER curve; the bound is fn(n, **values), its SE propagated from ``ses``."""
    out = []
    for n, mean, se in curve[["n", "mean", "se"]].itertuples(index=False):
        f_n = functools.partial(fn, int(n))
        b = f_n(**values)
        out.append(_row(bound, form, mean, se, b, _se_by_difference(f_n, values, ses) if np.isfinite(b) else 0.0,
                        int(n), 0.0, common))
    return out


def _learned_rows(curve, s, t, p: int, pca: bool, common) -> list[dict]:
    """The learned-psi bound per n and its population form; each seed's bound uses its own eps_pre^2 and the
    bounds are averaged over seeds like the measured values (their spread gives the SE)."""
    eps_pre2 = s["eps_pre2"].to_numpy()
    eps2, beta, sigma2 = float(t["eps_ci2"]), float(t["beta"]), float(t["sigma2"])
    eps_pre = math.sqrt(float(eps_pre2.mean()))                  # RMS over seeds
    eps_pre_mean = float(np.mean(np.sqrt(eps_pre2)))             # mean over seeds: with the RMS, gives the mean bound
    apx = [th.apx_bound(eps2, beta, e, pca) for e in eps_pre2]
    form = "derived_r" if pca else "derived_d2"
    out = []
    for n, mean, se in curve[["n", "mean", "se"]].itertuples(index=False):
        per_seed = [th.risk_bound(sigma2, p, int(n), a) for a in apx]
        b, b_se = _seed_mean_se(per_seed) if np.all(np.isfinite(per_seed)) else (math.inf, 0.0)
        out.append(_row("learned", form, mean, se, b, b_se, int(n), eps_pre, common, eps_pre_mean))
    m, m_se = _seed_mean_se(s["e_apx"].to_numpy())
    b, b_se = _seed_mean_se(apx) if np.all(np.isfinite(apx)) else (math.inf, 0.0)
    out.append(_row("learned", POPULATION, m, m_se, b, b_se, np.nan, eps_pre, common, eps_pre_mean))
    return out


def _chernoff_rows(curve, s, p: int, common) -> list[dict]:
    """The rigorous exact-CI bound per n where the design event G has failure probability <= FAILURE_MAX. Each
    seed's bound uses its own PCA's sigma2_eff; the bound's SE is the Monte-Carlo SE of sigma2_eff (shared test
    sample, so not reduced by averaging seeds); L is the largest over seeds."""
    s2, s2_se = s["sigma2_eff"].to_numpy(), float(s["sigma2_eff_se"].mean())
    L = float(s["leverage_max"].max())
    out = []
    for n, mean, se in curve[["n", "mean", "se"]].itertuples(index=False):
        fail = th.design_failure_prob(p, int(n), L)
        if fail > FAILURE_MAX:
            continue
        b = float(np.mean([th.exact_ci_bound(v, p, int(n)) for v in s2]))
        row = _row("exact_ci", "chernoff", mean, se, b, th.exact_ci_bound(s2_se, p, int(n)), int(n), 0.0, common)
        out.append({**row, "sigma2_eff": float(s2.mean()), "leverage_max": L, "failure_prob": fail})
    return out


ORACLE = PSI      # psi* itself, reduced or whole: built from the ground truth
UNTRAINED = ("raw",)


def model_kind(rows: pd.DataFrame) -> np.ndarray:
    """The model_kind of each bounds row, from its representation: "oracle" for psi* (the exact E[X2 | X1], PCA
    fitted on the pretext sample or whole), "untrained" for raw X1, "trained" for every pretext learner's psi (its
    PCA-reduced and whole forms). The chapter has no constructed model."""
    rep = rows["representation"].astype(str)
    return np.where(rep.isin(ORACLE), "oracle", np.where(rep.isin(UNTRAINED), "untrained", "trained"))


def bound_checks(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows for bounds.csv (see the module docstring): ``theorem`` (the id in theory.self_prediction.THEOREMS)
    and every term its bound and assumptions take as columns (n, sigma2, p, eps_ci2, beta, pca, eps_pre,
    eps_pre_mean, e_apx_raw, sigma2_eff, leverage_max, trivial, d2, n_latent; also k, d1, epsilon_CI), and a
    ``form_note`` saying what each form is. Judge it with analysis.bounds.judge(checks, index(THEOREMS))."""
    if rows.empty or "representation" not in rows:
        return pd.DataFrame()
    terms = cell_terms(rows).set_index("cell")
    er = curves(rows, "er")
    out: list[dict] = []
    for (cell, rep), s in seed_table(rows).groupby(["cell", "representation"]):
        t = terms.loc[cell]
        p, eps2, beta = int(s["p"].iloc[0]), float(t["eps_ci2"]), float(t["beta"])
        pca = not rep.endswith("_full") and rep != "raw" and p < int(t["d2"])
        common = {"cell": cell, "representation": rep, "k": int(t["k"]), "d1": int(t["d1"]), "d2": int(t["d2"]),
                  "epsilon_CI": math.sqrt(eps2), "eps_ci2": eps2, "sigma2": float(t["sigma2"]), "beta": beta, "p": p,
                  "pca": pca, "n_latent": float(t["n_latent"]), "trivial": float(t["trivial"]),
                  **{c: t[c] for c in PARAMS if c not in ("cell", "k", "d1", "d2")}}
        curve = er[(er["cell"] == cell) & (er["representation"] == rep)]
        sig, sig_se = {"sigma2": float(t["sigma2"])}, {"sigma2": float(t["sigma2_se"])}
        eps, eps_se = {"eps_ci2": eps2}, {"eps_ci2": float(t["eps_ci2_se"])}
        if rep in PSI:
            ref, derived = _PSI_FORMS[rep]
            out += _curve_rows(curve, "exact_ci", ref, functools.partial(th.ols_reference_bound, p=p, e_apx=0.0),
                               sig, sig_se, common)
            if rep == "psi_star" and "sigma2_eff" in s:
                out += _chernoff_rows(curve, s, p, common)
            out += _curve_rows(curve, "approx_ci", derived,
                               functools.partial(th.thm42_risk_bound, p=p, beta=beta, pca=pca), {**sig, **eps},
                               {**sig_se, **eps_se}, common)
            if eps2 > 0:   # at eps_CI = 0 both sides are 0 (Lemma 3.1): no slack to report
                fn = functools.partial(th.apx_bound, beta=beta, eps_pre2=0.0, pca=pca)
                m, m_se = _seed_mean_se(s["e_apx"].to_numpy())
                out.append(_row("approx_ci", POPULATION, m, m_se, fn(eps2), _se_by_difference(fn, eps, eps_se),
                                np.nan, 0.0, common))
        elif rep == "raw":
            e_raw = float(s["e_apx"].mean())
            out += _curve_rows(curve, "raw_baseline", "ref_d1",
                               functools.partial(th.ols_reference_bound, p=p, e_apx=e_raw), sig, sig_se,
                               {**common, "e_apx_raw": e_raw})
        elif rep.removesuffix("_full") in REGRESSION:
            out += _learned_rows(curve, s, t, p, pca, common)
    table = pd.DataFrame(out)
    if len(table):
        table.insert(3, "model_kind", model_kind(table))
        table.insert(4, "form_note", table["form"].map(FORMS))
    return table


# ----------------------------------------------------------------------------------------- curve summaries
SLOPE_FROM = 5   # slopes are fitted on n >= SLOPE_FROM * (p + 2)


def fit_slope(n, er, p: int) -> tuple[float, float, float]:
    """Log-log least-squares slope of a mean ER curve over n >= 5 (p + 2), away from the blow-up of OLS near
    n = p, where the mean over seeds is ruled by rare near-singular designs; returns (slope, n_min, n_max) of the
    window, slope NaN with fewer than 2 positive points."""
    n, er = np.asarray(n, dtype=float), np.asarray(er, dtype=float)
    keep = (n >= SLOPE_FROM * (p + 2)) & (er > 0) & np.isfinite(er)
    if keep.sum() < 2:
        return math.nan, math.nan, math.nan
    slope = np.polyfit(np.log(n[keep]), np.log(er[keep]), 1)[0]
    return float(slope), float(n[keep].min()), float(n[keep].max())


def slopes(rows: pd.DataFrame, study: str = "sample_complexity", checks: pd.DataFrame | None = None) -> pd.DataFrame:
    """Fitted slopes of the measured ER curves (and of the matching bound over the same window) per family; the
    bound values come from ``checks`` (a figure passes the run's judged table), else from ``bound_checks(rows)``."""
    er = curves(rows)
    er = er[er["studies"].str.split("+").apply(lambda s: study in s)]
    seeds = seed_table(rows).groupby(["cell", "representation"])["p"].first()
    checks = bound_checks(rows) if checks is None else checks
    own = {"psi_star": "exact_ci", "psi_star_full": "exact_ci", "raw": "raw_baseline"}   # else "learned"
    out = []
    for (cell, rep), c in er.groupby(["cell", "representation"]):
        p = int(seeds.loc[(cell, rep)])
        slope, lo, hi = fit_slope(c["n"], c["mean"], p)
        b = checks[(checks["cell"] == cell) & (checks["representation"] == rep)
                   & (checks["bound"] == own.get(rep, "learned")) & checks["n"].notna() & (checks["form"] != "chernoff")]
        b = b[(b["n"] >= lo) & (b["n"] <= hi) & np.isfinite(b["bound_value"])]
        bslope = np.polyfit(np.log(b["n"]), np.log(b["bound_value"]), 1)[0] if len(b) >= 2 and \
            (b["bound_value"] > 0).all() else math.nan
        out.append({"cell": cell, "family": c["family"].iloc[0], "representation": rep, "p": p, "slope": slope,
                    "bound_slope": float(bslope), "n_min": lo, "n_max": hi})
    return pd.DataFrame(out)


def n_to_reach(n, er, target: float) -> float:
    """Smallest n at which the curve reaches ``target``, by log-log interpolation between the sizes measured;
    inf if it never does within the sweep (and NaN for an empty curve)."""
    n, er = np.asarray(n, dtype=float), np.asarray(er, dtype=float)
    if len(n) == 0:
        return math.nan
    order = np.argsort(n)
    n, er = n[order], er[order]
    below = np.nonzero(er <= target)[0]
    if len(below) == 0:
        return math.inf
    j = below[0]
    if j == 0:
        return float(n[0])
    x0, x1, y0, y1 = np.log(n[j - 1]), np.log(n[j]), np.log(er[j - 1]), np.log(max(er[j], 1e-300))
    return float(np.exp(x0 + (np.log(target) - y0) * (x1 - x0) / (y1 - y0)))


def bound_n_to_reach(bound_fn, target: float, n_max: float = 1e7) -> float:
    """Smallest integer n with bound_fn(n) <= target (the bound decreases in n), by bisection; inf if none."""
    if not bound_fn(int(n_max)) <= target:
        return math.inf
    lo, hi = 1, int(n_max)
    while lo < hi:
        mid = (lo + hi) // 2
        if bound_fn(mid) <= target:
            hi = mid
        else:
            lo = mid + 1
    return float(lo)


def rigorous_n_to_reach(sigma2_eff: float, p: int, L: float, target: float) -> float:
    """Smallest n at which the rigorous exact-CI bound is both checked (design failure probability <=
    FAILURE_MAX) and <= target: the sample complexity the proven statement gives for psi*."""
    by_bound = bound_n_to_reach(lambda n: th.exact_ci_bound(sigma2_eff, p, n), target)
    by_design = bound_n_to_reach(lambda n: th.design_failure_prob(p, n, L), FAILURE_MAX)
    return max(by_bound, by_design)


def in_study(df: pd.DataFrame, study: str) -> pd.DataFrame:
    return df[df["studies"].astype(str).str.split("+").apply(lambda s: study in s)]

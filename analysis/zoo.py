"""The objective zoo: Lemma 4.3's bound checks on every encoder, one figure per bench and a summary table.

Every bound value is ``theory.contrastive.bound_from_terms`` of the row's own terms (the function of
``zoo.lemma_4_3_any_encoder``); nothing is fitted to a measured curve. The summary's verdict counts and slack are
read from the run's judged table (its rows of bounds.csv), never judged again. Labels needed are read off the mean
probe error curve by ``analysis.contrastive.labels_needed`` (log-linear interpolation, inf where never reached).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis import plotting, tables
from analysis.bounds import ORACLE, TRAINED, UNTRAINED
from analysis.contrastive import labels_needed
from theory import contrastive as ctr
from theory.verdict import HOLDS, NOT_MET, UNDETERMINED, VACUOUS, VIOLATED
from theory.zoo import BENCHES, CONTROLS, GRAPH_REFERENCES, REFERENCES

LEMMA = "zoo.lemma_4_3_any_encoder"
KEYS = ["cell", "objective", "variant", "n_classes", "loss", "k", "seed", "lr", "step"]
NAMES = {"raw": "raw inputs", "random": "random encoder", "supervised": "supervised", "simclr": "SimCLR",
         "moco_v2": "MoCo v2", "byol": "BYOL", "simsiam": "SimSiam", "barlow_twins": "Barlow Twins",
         "vicreg": "VICReg", "swav": "SwAV", "logistic": "Arora logistic", "byol_nopred": "BYOL, no predictor",
         "clip": "CLIP (modality A)", "rotation": "rotation (4-way)", "jigsaw": "jigsaw (24-way)",
         "autoencoder": "autoencoder", "dae": "denoising AE", "vae": "VAE (mu)", "mae": "MAE-style",
         "dgi": "DGI", "spectral": "E[A^] top-K (oracle)", "plm": "permutation LM", "electra": "ELECTRA (disc.)",
         "cpc": "CPC"}
STYLE = {"raw": ("k", ":"), "random": ("0.5", "--"), "supervised": ("k", "-"), "spectral": ("0.3", "-.")}
NO_BOUND = ("graphs", "sequences")   # no Lemma 4.3 rows: no i.i.d. positive pairs of the latent-class model
PALETTE = ("C3", "C4", "C1", "C6", "C2", "C8", "C9", "C0", "C5", "#17becf", "#bcbd22")   # no grey: the references


def model_kinds(objective) -> np.ndarray:
    """Provisional labels (issue 16 §1; the zoo's own branch refines them): raw inputs and the random encoder are
    "untrained", the graph's exact top-K eigenvectors "oracle", every objective the suite optimises "trained"."""
    objective = np.asarray(objective, dtype=object)
    return np.where(np.isin(objective, ("raw", "random")), UNTRAINED,
                    np.where(objective == "spectral", ORACLE, TRAINED)).astype(object)


def terms_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (cell, seed) with every scalar metric as a column."""
    return tables.scalar_wide(rows, KEYS)


def probe_table(rows: pd.DataFrame) -> pd.DataFrame:
    return tables.probe_wide(rows, KEYS)


def bound_checks(rows: pd.DataFrame) -> pd.DataFrame:
    """One ``zoo.lemma_4_3_any_encoder`` row per (cell, seed): L_sup^mu of the encoder's representation against
    (L_un - tau) / (1 - tau), with every term and the collapse measures beside it (docs/theory/zoo.md)."""
    t = terms_table(rows)
    if "L_un" not in t:
        return pd.DataFrame()
    t = t[t["L_un"].notna() & t["L_sup_mu"].notna() & (t["p_distinct"] > 0)].reset_index(drop=True)
    cols = [c for c in KEYS + ["tau", "tau_k", "p_distinct", "collision_floor", "L_un", "L_un_se", "L_un_eq",
                               "L_un_neq", "L_sup_mu", "L_sup_mu_se", "mean_acc", "effective_rank", "norm_std",
                               "collapsed", "var_min", "var_mean", "var_max"] if c in t]
    common = {c: t[c].to_numpy() for c in cols}
    p = t["p_distinct"].to_numpy()
    return pd.DataFrame({"theorem": LEMMA, "bound": "mean_classifier", "form": "population",
                         "measured": t["L_sup_mu"].to_numpy(), "measured_se": t["L_sup_mu_se"].to_numpy(),
                         "bound_value": ctr.bound_from_terms(t["L_un"].to_numpy(), t["collision_floor"].to_numpy(), p),
                         "bound_se": t["L_un_se"].to_numpy() / p,
                         "trivial": ctr.trivial_from_terms(t["loss"].to_numpy(), t["k"].to_numpy()),
                         "model_kind": model_kinds(t["objective"].to_numpy()), **common})


def _target(rows: pd.DataFrame) -> float:
    return float(rows["target_error"].dropna().iloc[0]) if "target_error" in rows and len(rows) else 0.2


def curves(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean and SD over seeds of the probe test error, per (objective, variant, n)."""
    p = probe_table(rows)
    if p.empty:
        return p
    p = p.assign(error=1 - p["probe_accuracy"])
    g = p.groupby(["objective", "variant", "n_per_class"])["error"]
    out = g.agg(["mean", "std"]).reset_index().fillna({"std": 0.0})
    return out.merge(p.groupby(["objective", "variant", "n_per_class"])["probe_converged"].min().reset_index(),
                     on=["objective", "variant", "n_per_class"])


def summary_table(rows: pd.DataFrame, judged: pd.DataFrame) -> pd.DataFrame:
    """Per (bench, objective, variant): labels per class needed to reach the target error, effective rank,
    normalised std, collapse flag (share of seeds), and Lemma 4.3's median slack and verdict counts as the run's
    judged table (bounds.csv) holds them: the slack over points where the lemma applies (not 'assumption not met',
    not undetermined), as bounds.csv's summary takes it."""
    target = _target(rows)
    cv = curves(rows)
    t = terms_table(rows)
    lemma = judged[judged["theorem"] == LEMMA] if "theorem" in judged.columns else judged.iloc[0:0]
    out = []
    for bench, objs in {"references": REFERENCES + GRAPH_REFERENCES, **BENCHES}.items():
        for obj in objs:
            for v in sorted(t.loc[t["objective"] == obj, "variant"].unique()):
                s = t[(t["objective"] == obj) & (t["variant"] == v)]
                c = cv[(cv["objective"] == obj) & (cv["variant"] == v)] if len(cv) else cv
                b = lemma[(lemma["objective"] == obj) & (lemma["variant"] == v)] if len(lemma) else lemma
                counts = b["verdict"].value_counts() if len(b) else pd.Series(dtype=int)
                applies = b["slack"][~b["verdict"].isin([NOT_MET, UNDETERMINED])] if len(b) else b
                applies = applies[np.isfinite(applies.astype(float))] if len(applies) else applies
                out.append({"bench": bench, "objective": obj, "variant": v, "target_error": target,
                            "labels_needed": labels_needed(c, target) if len(c) else float("nan"),
                            "error_at_max_n": float(c.sort_values("n_per_class")["mean"].iloc[-1]) if len(c)
                            else float("nan"),
                            "effective_rank": float(s["effective_rank"].mean()),
                            "norm_std": float(s["norm_std"].mean()),
                            "collapsed": float(s["collapsed"].mean()),
                            "L_un": float(s["L_un"].mean()) if "L_un" in s else float("nan"),
                            "L_sup_mu": float(s["L_sup_mu"].mean()) if "L_sup_mu" in s else float("nan"),
                            "lemma_slack": float(applies.median()) if len(applies) else float("nan"),
                            "lemma_holds": int(counts.get(HOLDS, 0)), "lemma_vacuous": int(counts.get(VACUOUS, 0)),
                            "lemma_violated": int(counts.get(VIOLATED, 0)),
                            "lemma_not_met": int(counts.get(NOT_MET, 0)),
                            "lemma_undetermined": int(counts.get(UNDETERMINED, 0)), "lemma_points": len(b)})
    return pd.DataFrame(out)


def _verdicts_cell(r) -> str:
    """'3/4 hold, 1 vac.': the judged verdicts of one summary row, the zero counts left out."""
    if not r.lemma_points:
        return "n/a (no pairs)"
    rest = [f"{n} {name}" for n, name in ((r.lemma_vacuous, "vac."), (r.lemma_violated, "viol."),
                                          (r.lemma_not_met, "n.m."), (r.lemma_undetermined, "und.")) if n]
    return ", ".join([f"{r.lemma_holds}/{r.lemma_points} hold"] + rest)


def _bench_figure(rows: pd.DataFrame, out: Path, stem: str, bench: str) -> list[Path]:
    """Probe error against labelled n for every objective of the bench, one panel per data variant, with the
    raw, random and supervised references."""
    cv = curves(rows)
    target = _target(rows)
    objs = REFERENCES + (GRAPH_REFERENCES if bench == "graphs" else ()) + BENCHES[bench]
    t = terms_table(rows) if bench in NO_BOUND else None
    variants = sorted(cv.loc[cv["objective"].isin(BENCHES[bench]), "variant"].unique()) if len(cv) else []
    fig, ax = plotting.new(max(1, len(variants)), width=4.6, height=3.8)
    if not variants:
        plotting.message(ax[0, 0], f"bench {bench} disabled: no cells")
        return plotting.save(fig, out, stem)
    for a, v in zip(ax[0], variants):
        for i, obj in enumerate(objs):
            c = cv[(cv["objective"] == obj) & (cv["variant"] == v)].sort_values("n_per_class")
            if c.empty:
                continue
            need = labels_needed(c, target)
            color, ls = STYLE.get(obj, (PALETTE[(i - len(REFERENCES)) % len(PALETTE)],
                                        "-" if obj not in CONTROLS else "-."))
            lab = f"{NAMES[obj]}: n*={need:.3g}" if np.isfinite(need) else \
                f"{NAMES[obj]}: n*>{int(c['n_per_class'].max())}"
            a.errorbar(c["n_per_class"], c["mean"], c["std"], color=color, ls=ls, marker="o", ms=2.5, lw=1, label=lab,
                       alpha=0.9 if obj not in CONTROLS else 0.5)
        a.axhline(target, color="k", lw=0.6, ls=":")
        a.set_xscale("log")
        a.set_xlabel("labelled examples per class n")
        a.set_ylabel("linear-probe test error")
        title = f"{bench.replace('_', ' ')}: data variant '{v}'"
        if t is not None:
            tv = t[t["variant"] == v]
            extra = []
            if "expected_eigengap" in tv and tv["expected_eigengap"].notna().any():
                extra.append(f"E[A] eigengap {float(tv['expected_eigengap'].dropna().iloc[0]):.3g}")
            for col, lab in (("plm_excess", "PLM excess"), ("electra_gen_excess", "ELECTRA gen. excess")):
                if col in tv and tv[col].notna().any():
                    extra.append(f"{lab} {float(tv[col].mean()):.3f} nats")
            if "cpc_bound_k1" in tv and tv["cpc_bound_k1"].notna().any():
                extra.append(f"CPC log N - L_1 {float(tv['cpc_bound_k1'].mean()):.2f} "
                             f"(exact I {float(tv['cpc_mi_exact_k1'].mean()):.2f})")
            title += "\n" + "\n".join(extra + ["no Lemma 4.3 rows (no i.i.d. pairs)"])
        a.set_title(title, fontsize=8)
        a.legend(fontsize=5.5, ncol=1)
    return plotting.save(fig, out, stem)


def fig_two_views(rows: pd.DataFrame, judged: pd.DataFrame, out: Path, stem: str) -> list[Path]:
    return _bench_figure(rows, out, stem, "two_views")


def fig_reconstruction(rows: pd.DataFrame, judged: pd.DataFrame, out: Path, stem: str) -> list[Path]:
    return _bench_figure(rows, out, stem, "reconstruction")


def fig_summary(rows: pd.DataFrame, judged: pd.DataFrame, out: Path, stem: str) -> list[Path]:
    """A table across benches: labels needed, effective rank, normalised std and Lemma 4.3's slack, per
    (bench, objective, data variant)."""
    tab = summary_table(rows, judged)
    fig, ax = plotting.new(1, width=12, height=0.9 + 0.16 * max(1, len(tab)))
    a = ax[0, 0]
    a.set_xticks([])
    a.set_yticks([])
    a.grid(False)
    for spine in a.spines.values():
        spine.set_visible(False)
    if tab.empty:
        plotting.message(a, "no cells")
        return plotting.save(fig, out, stem)

    def fmt(x, spec=".3g"):
        return "inf" if x == float("inf") else ("n/a" if not np.isfinite(x) else format(x, spec))
    body = [[r.bench, NAMES[r.objective], r.variant, fmt(r.labels_needed), fmt(r.error_at_max_n, ".2f"),
             fmt(r.effective_rank, ".2f"), fmt(r.norm_std, ".2f"), "yes" if r.collapsed >= 0.5 else "no",
             fmt(r.L_un), fmt(r.L_sup_mu), fmt(r.lemma_slack),
             _verdicts_cell(r)]
            for r in tab.itertuples()]
    head = ["bench", "objective", "variant", f"n* (err <= {tab['target_error'].iloc[0]:g})",
            "err at max n", "eff. rank", "norm std", "collapsed", "L_un", "L_sup^mu", "L4.3 slack",
            "L4.3 verdicts"]
    table = a.table(cellText=body, colLabels=head, cellLoc="center", bbox=(0.0, 0.04, 1.0, 0.95))
    table.auto_set_font_size(False)
    table.set_fontsize(6)
    a.text(0.5, 0.0, "labels: log-linear interpolation of the mean probe error curve (inf: not reached); eff. rank "
           "and norm std (mean per-dim std of f/||f||, x sqrt(d)) on the test points; slack = bound / L_sup^mu, median "
           "over the seeds where the lemma applies;\nverdicts as bounds.csv holds them (vac. vacuous, viol. violated, "
           "n.m. assumption not met, und. undetermined)", ha="center", va="bottom", fontsize=6, transform=a.transAxes)
    a.set_title("objective zoo: labels needed, collapse (effective rank = exp entropy of normalised singular "
                "values) and Lemma 4.3 on every encoder", fontsize=8)
    return plotting.save(fig, out, stem)


def fig_multimodal(rows: pd.DataFrame, judged: pd.DataFrame, out: Path, stem: str) -> list[Path]:
    return _bench_figure(rows, out, stem, "multimodal")


def fig_pretext(rows: pd.DataFrame, judged: pd.DataFrame, out: Path, stem: str) -> list[Path]:
    return _bench_figure(rows, out, stem, "pretext")


def fig_graphs(rows: pd.DataFrame, judged: pd.DataFrame, out: Path, stem: str) -> list[Path]:
    """Deep Graph Infomax on the block model against raw features, the random and supervised GCN and the oracle
    top-K eigenvectors of the expected normalised adjacency; no Lemma 4.3 rows for this bench."""
    return _bench_figure(rows, out, stem, "graphs")


def fig_sequences(rows: pd.DataFrame, judged: pd.DataFrame, out: Path, stem: str) -> list[Path]:
    """The permutation LM, ELECTRA and CPC on the HMM's windows against the one-hot window, the random and the
    supervised encoder, probed on the deterministic natural task; no Lemma 4.3 rows for this bench."""
    return _bench_figure(rows, out, stem, "sequences")


# One name per study: a figure per bench, named after its config section; the summary is not one bench's.
FIGURES = {"two_views": fig_two_views, "reconstruction": fig_reconstruction, "multimodal": fig_multimodal,
           "pretext": fig_pretext, "graphs": fig_graphs, "sequences": fig_sequences, "summary": fig_summary}
SUMMARY_FIGURES = {"summary": tuple(BENCHES)}   # one table across every bench

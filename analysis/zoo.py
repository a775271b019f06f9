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
from analysis.contrastive import UNTRAINED_OBJECTIVES, labels_needed
from theory import contrastive as ctr
from theory.verdict import HOLDS, NOT_MET, UNDETERMINED, VACUOUS, VIOLATED
from theory.zoo import BENCHES, CONTROLS, GRAPH_REFERENCES, REFERENCES

LEMMA = "zoo.lemma_4_3_any_encoder"
KEYS = ["cell", "objective", "variant", "n_classes", "loss", "k", "seed", "lr", "step"]
NAMES = {"raw": "raw inputs", "random": "random encoder", "supervised": "supervised", "simclr": "SimCLR",
         "moco_v2": "MoCo v2", "byol": "BYOL", "simsiam": "SimSiam", "barlow_twins": "Barlow Twins (c/d)",
         "vicreg": "VICReg (cov 25)", "barlow_twins_paper": "Barlow Twins, paper lambda",
         "vicreg_paper": "VICReg, paper 25/25/1", "swav": "SwAV", "logistic": "Arora logistic",
         "byol_nopred": "BYOL, no predictor",
         "clip": "CLIP (modality A)", "rotation": "rotation (4-way)", "jigsaw": "jigsaw (24-way)",
         "autoencoder": "autoencoder", "dae": "denoising AE", "vae": "VAE (mu)", "mae": "MAE-style",
         "dgi": "DGI", "spectral": "E[A^] top-K (oracle)", "plm": "permutation LM", "electra": "ELECTRA (disc.)",
         "cpc": "CPC"}
STYLE = {"raw": ("k", ":"), "random": ("0.5", "--"), "supervised": ("k", "-"), "spectral": ("0.3", "-.")}
NO_BOUND = ("graphs", "sequences")   # no Lemma 4.3 rows: no i.i.d. positive pairs of the latent-class model
PALETTE = ("C3", "C4", "C1", "C6", "C2", "C8", "C9", "C0", "C5", "navy", "olive")   # no grey: the references


def terms_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (cell, seed) with every scalar metric as a column."""
    return tables.scalar_wide(rows, KEYS)


def probe_table(rows: pd.DataFrame) -> pd.DataFrame:
    return tables.probe_wide(rows, KEYS)


SCALE_RULES = {"as_trained": "s = 1: the encoder as its objective left it",
               "chosen": "s minimising the bound on the selection pool (its own EvalSet), reported on the report pool"}
LEMMA_TERMS = ("tau", "tau_k", "p_distinct", "collision_floor", "L_un", "L_un_se", "L_sup_mu", "L_sup_mu_se")


def model_kind(rows: pd.DataFrame) -> np.ndarray:
    """The model_kind of each bounds row: "untrained" for raw inputs and the random encoder, "trained" for every
    objective and the supervised reference (optimised by the suite; a rescaled trained encoder stays trained).
    The latent-class benches have no oracle encoder (the graph bench's spectral oracle has no Lemma 4.3 rows)."""
    return np.where(rows["objective"].isin(UNTRAINED_OBJECTIVES), "untrained", "trained")


def _lemma_rows(t: pd.DataFrame, rule: str, prefix: str = "") -> pd.DataFrame:
    terms = {c: t[prefix + c].to_numpy() for c in LEMMA_TERMS if prefix + c in t}
    rest = [c for c in KEYS + ["L_un_eq", "L_un_neq", "mean_acc", "effective_rank", "norm_std", "collapsed",
                               "var_min", "var_mean", "var_max", "scale_selection_bound"] if c in t]
    p = terms["p_distinct"]
    scale = t["scale"].to_numpy() if rule == "chosen" else np.ones(len(t))
    return pd.DataFrame({"theorem": LEMMA, "bound": "mean_classifier", "form": "population",
                         "measured": terms["L_sup_mu"], "measured_se": terms["L_sup_mu_se"],
                         "bound_value": ctr.bound_from_terms(terms["L_un"], terms["collision_floor"], p),
                         "bound_se": terms["L_un_se"] / p,
                         "trivial": ctr.trivial_from_terms(t["loss"].to_numpy(), t["k"].to_numpy()),
                         "scale_rule": rule, "scale": scale, "pool": "report",
                         "scale_pool": "selection" if rule == "chosen" else "none",
                         **terms, **{c: t[c].to_numpy() for c in rest}})


def bound_checks(rows: pd.DataFrame) -> pd.DataFrame:
    """``zoo.lemma_4_3_any_encoder`` rows per (cell, seed): L_sup^mu of the encoder's representation against
    (L_un - tau) / (1 - tau), with every term and the collapse measures beside it (docs/theory/zoo.md), twice:
    scale_rule "as_trained" (s = 1) and "chosen" (s chosen on the selection pool, the terms of s f measured on
    the report pool, column ``scale``). Both are instances of the lemma, which holds for every encoder."""
    t = terms_table(rows)
    if "L_un" not in t:
        return pd.DataFrame()
    t = t[t["L_un"].notna() & t["L_sup_mu"].notna() & (t["p_distinct"] > 0)].reset_index(drop=True)
    parts = [_lemma_rows(t, "as_trained")]
    if "scaled_L_un" in t:
        parts.append(_lemma_rows(t[t["scaled_L_un"].notna()], "chosen", "scaled_"))
    out = pd.concat(parts, ignore_index=True)
    out.insert(3, "model_kind", model_kind(out))
    return out


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
                c_b = b[b["scale_rule"] == "chosen"] if len(b) else b
                b = b[b["scale_rule"] == "as_trained"] if len(b) else b
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
                            "lemma_undetermined": int(counts.get(UNDETERMINED, 0)), "lemma_points": len(b),
                            "chosen_bound": float(c_b["bound_value"].median()) if len(c_b) else float("nan")})
    return pd.DataFrame(out)


def _verdicts_cell(r) -> str:
    """'3/4 hold, 1 vac.': the judged verdicts of one summary row, the zero counts left out."""
    if not r.lemma_points:
        return "n/a (no pairs)"
    rest = [f"{n} {name}" for n, name in ((r.lemma_vacuous, "vac."), (r.lemma_violated, "viol."),
                                          (r.lemma_not_met, "n.m."), (r.lemma_undetermined, "und.")) if n]
    return ", ".join([f"{r.lemma_holds}/{r.lemma_points} hold"] + rest)


# Small multiples: a bench with many objectives is drawn one family per panel, each beside the same references
# (twelve curves in one panel could not be told apart).
FAMILIES = {"two_views": {"contrastive": ("simclr", "moco_v2", "logistic", "swav"),
                          "self-distillation": ("byol", "simsiam", "byol_nopred"),
                          "decorrelation": ("barlow_twins", "vicreg", "barlow_twins_paper", "vicreg_paper")}}


def _bench_figure(rows: pd.DataFrame, out: Path, stem: str, bench: str) -> list[Path]:
    """Probe error against labelled n for every objective of the bench, one row of panels per data variant and
    one panel per family of objectives (``FAMILIES``), each with the raw, random and supervised references."""
    cv = curves(rows)
    target = _target(rows)
    refs = REFERENCES + (GRAPH_REFERENCES if bench == "graphs" else ())
    families = FAMILIES.get(bench, {"": BENCHES[bench]})
    t = terms_table(rows) if bench in NO_BOUND else None
    variants = sorted(cv.loc[cv["objective"].isin(BENCHES[bench]), "variant"].unique()) if len(cv) else []
    fig, ax = plotting.new(len(families), max(1, len(variants)), width=4.6, height=3.8)
    if not variants:
        plotting.message(ax[0, 0], f"bench {bench} disabled: no cells")
        for a in ax.flat[1:]:
            a.set_visible(False)
        return plotting.save(fig, out, stem)
    panels = [(a, v, fam, refs + objs) for row, v in zip(ax, variants) for a, (fam, objs) in zip(row, families.items())]
    for a, v, fam, objs in panels:
        for obj in objs:
            i = (REFERENCES + BENCHES[bench]).index(obj) if obj in REFERENCES + BENCHES[bench] else 0
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
        title = f"{bench.replace('_', ' ')}: data variant '{v}'" + (f", {fam}" if fam else "")
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
             fmt(r.L_un), fmt(r.L_sup_mu), fmt(r.lemma_slack), fmt(r.chosen_bound),
             _verdicts_cell(r)]
            for r in tab.itertuples()]
    head = ["bench", "objective", "variant", f"n* (err <= {tab['target_error'].iloc[0]:g})",
            "err at max n", "eff. rank", "norm std", "collapsed", "L_un", "L_sup^mu", "L4.3 slack",
            "bound at chosen s", "L4.3 verdicts (s = 1)"]
    # each column as wide as its longest entry (equal widths let long names and headers spill into the next)
    chars = np.array([max(len(str(x)) for x in [h, *(row[j] for row in body)]) + 2 for j, h in enumerate(head)])
    table = a.table(cellText=body, colLabels=head, cellLoc="center", bbox=(0.0, 0.04, 1.0, 0.95),
                    colWidths=list(chars / chars.sum()))
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


def frontier_table(judged: pd.DataFrame) -> pd.DataFrame:
    """Per (objective, variant, scale rule): the median over seeds of s, bound / trivial and measured / trivial,
    with model_kind and how many seeds hold, as the run's judged table (bounds.csv) says."""
    c = judged[judged["theorem"] == LEMMA] if "theorem" in judged.columns else judged.iloc[0:0]
    if c.empty:
        return c
    c = c.assign(bound_ratio=c["bound_value"] / c["trivial"], measured_ratio=c["measured"] / c["trivial"],
                 held=(c["verdict"] == "holds").astype(int))
    g = c.groupby(["objective", "variant", "scale_rule", "model_kind"])
    return g.agg(scale=("scale", "median"), bound_ratio=("bound_ratio", "median"),
                 measured_ratio=("measured_ratio", "median"), held=("held", "sum"),
                 seeds=("held", "size")).reset_index()


def frontier_caption(tab: pd.DataFrame) -> str:
    """One sentence from the rows: how many trained (objective, variant) pairs are informative at s = 1 and at the
    chosen s, and which stay at or above the trivial value at every scale the search tried."""
    tr = tab[tab["model_kind"] == "trained"]
    at = {r: tr[tr["scale_rule"] == r] for r in ("as_trained", "chosen")}
    ok = {r: int((t["bound_ratio"] < 1).sum()) for r, t in at.items()}
    never = at["chosen"].loc[at["chosen"]["bound_ratio"] >= 1, ["objective", "variant"]]
    names = ", ".join(f"{NAMES.get(o, o)} ({v})" for o, v in never.itertuples(index=False)) or "none"
    return (f"Lemma 4.3 is informative (median bound < trivial) for {ok['as_trained']} of {len(at['as_trained'])} "
            f"trained (objective, variant) at s = 1 and {ok['chosen']} of {len(at['chosen'])} at the s chosen on the "
            f"selection pool (reported on the report pool); it stops saying anything at every scale for: {names}")


def fig_frontier(rows: pd.DataFrame, judged: pd.DataFrame, out: Path, stem: str) -> list[Path]:
    """Lemma 4.3's bound / trivial against the scale s of s f: each (objective, variant) at s = 1 and at the chosen
    s (median over seeds), joined by a line; trained filled, untrained (raw, random) hollow; measured L_sup^mu /
    trivial beside (x); the line bound = trivial."""
    import textwrap
    tab = frontier_table(judged)
    fig, ax = plotting.new(1, width=9.0, height=5.0)
    a = ax[0, 0]
    if tab.empty:
        plotting.message(a, "no Lemma 4.3 rows (no latent-class bench enabled)")
        return plotting.save(fig, out, stem)
    objs = [o for o in dict.fromkeys(tab["objective"])]
    for i, obj in enumerate(objs):
        color = STYLE.get(obj, (PALETTE[i % len(PALETTE)], "-"))[0]
        first = True
        for v, g in tab[tab["objective"] == obj].groupby("variant"):
            g = g.set_index("scale_rule")
            if not {"as_trained", "chosen"} <= set(g.index):
                continue
            untrained = (g["model_kind"] == "untrained").all()
            pts = g.loc[["as_trained", "chosen"]]
            a.plot(pts["scale"], pts["bound_ratio"], "-", color=color, lw=0.6, alpha=0.6)
            a.plot(pts["scale"], pts["bound_ratio"], "s" if untrained else "o", ms=4, color=color,
                   mfc="none" if untrained else color, ls="none", gid=plotting.BOUND,
                   label=f"{NAMES.get(obj, obj)} ({'untrained' if untrained else 'trained'})" if first else None)
            a.plot(pts["scale"].iloc[1:], pts["measured_ratio"].iloc[1:], "x", ms=4, color=color, ls="none")
            first = False
    plotting.trivial_line(a, 1.0, "bound = trivial (l(0) = 1)", color="k")
    a.set_xscale("log")
    a.set_yscale("log")
    a.set_xlabel("scale s of the encoder s f (s = 1: as trained; the other end: chosen on the selection pool)")
    a.set_ylabel("Lemma 4.3 bound / trivial  (x: measured L_sup^mu / trivial at the chosen s)")
    a.legend(fontsize=5, ncol=2)
    a.set_title(textwrap.fill(frontier_caption(tab), 140), fontsize=7)
    return plotting.save(fig, out, stem)


# One name per study: a figure per bench, named after its config section; the summary and the frontier are not
# one bench's.
FIGURES = {"two_views": fig_two_views, "reconstruction": fig_reconstruction, "multimodal": fig_multimodal,
           "pretext": fig_pretext, "graphs": fig_graphs, "sequences": fig_sequences, "summary": fig_summary,
           "frontier": fig_frontier}
# the studies a summary figure needs on (each entry; "a|b": either)
SUMMARY_FIGURES = {"summary": ("|".join(BENCHES),),   # one table across every bench that ran
                   "frontier": ("two_views|reconstruction|multimodal|pretext",)}   # the latent-class benches


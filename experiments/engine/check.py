"""``sslt check ASSUMPTION.toml``: does each theorem of a chapter hold, and how tightly, on *my* distribution?

An assumption file names a ``chapter`` and a ``name`` and describes one distribution, either by the chapter's own
data-spec fields in ``[data]`` (beyond what the shipped configs use: a Zipf law over 37 classes, an HMM given by
its matrices, two views given by their class means) or by a plug-in, ``generator = "package.module:Class"`` with
its keyword arguments in ``[args]``. An optional ``[sweep]`` table overrides the chapter's config (sizes, seeds,
probe n). The check then

1. validates everything before any work (exit 2 and one line naming the problem; nothing is written);
2. compares every exact quantity a plug-in declares with the suite's estimate from the plug-in's own samples,
   and stops with exit 1 where they disagree by more than 4 standard errors (a wrong plug-in);
3. runs the chapter's pipeline on that distribution as a run of its own, under ``results/check/<name>/``;
4. reports, for every theorem: each declared assumption with its number and met / not met, the verdict counts,
   the median and worst slack, and the worst point with its terms; a violation where the assumptions are met is
   flagged as a counterexample or a bug, a violation where one is not met as expected;
5. writes the terminal table (also ``check.txt``), ``check.json``, the run's ``bounds.csv`` and the chapter's
   figures under ``figures/check/<name>/``;
6. exits 0 when no theorem is violated where its assumptions are met, 1 otherwise, 2 on bad input or when the
   plug-in's own code raised (one line: ``plug-in <module:Class>.<method> raised <Type>: <message>``; nothing
   is left behind), and NOTHING_JUDGED (4) when no theorem could be judged at a point where its assumptions
   are met: then there is no verdict to give.

Before any model is built, the resource guard (``experiments.engine.resources``) estimates each cell's peak
memory and the run's time from the config alone, prints them, and refuses (exit 2, naming the field) a check
that would not fit.
"""
from __future__ import annotations

import copy
import json
import os
import re
import shutil
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import figures as figs
from experiments.engine import chapters, resources, runner, store
from experiments.engine import config as config_mod
from experiments.engine.rng import numpy_rng
from synthetic_data import plugins
from theory.verdict import HOLDS, NOT_MET, UNDETERMINED, VACUOUS, VIOLATED, verdicts

KEYS = {"chapter", "name", "description", "data", "sweep", "generator", "args"}
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class CheckInputError(ValueError):
    """Bad input: the message names the field or the problem; exit 2, nothing written."""


class PluginDisagrees(RuntimeError):
    """A plug-in's declared exact quantity disagrees with its own samples; exit 1."""


class PluginFailed(RuntimeError):
    """The plug-in's own code raised; the message is the one line ``plug-in <module:Class>.<method> raised ...``."""


NOTHING_JUDGED = 4  # the exit code when no theorem could be judged where its assumptions are met


@dataclass
class Prepared:
    chapter: chapters.Chapter
    name: str
    config: object
    source: Path
    model: object
    agreements: list
    estimated: list
    resources: object = None


def _deep_merge(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in extra.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def read(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckInputError(f"{path}: no such assumption file")
    try:
        with open(path, "rb") as fh:
            spec = tomllib.load(fh)
    except tomllib.TOMLDecodeError as err:
        raise CheckInputError(f"{path.name}: malformed TOML: {err}") from None
    unknown = sorted(set(spec) - KEYS)
    if unknown:
        raise CheckInputError(f"{', '.join(unknown)}: unknown key (allowed: {', '.join(sorted(KEYS))})")
    for key in ("chapter", "name"):
        if not isinstance(spec.get(key), str):
            raise CheckInputError(f"{key}: required, a string")
    if not NAME.match(spec["name"]):
        raise CheckInputError(f"name: letters, digits, '.', '_' or '-' only (it names a directory), got {spec['name']!r}")
    for key in ("data", "sweep", "args"):
        if key in spec and not isinstance(spec[key], dict):
            raise CheckInputError(f"{key}: must be a table")
    if "args" in spec and "generator" not in spec:
        raise CheckInputError("args: given without a generator")
    if "generator" in spec and not isinstance(spec["generator"], str):
        raise CheckInputError("generator: must be a string 'package.module:ClassName'")
    return spec


def _importable(folder: Path) -> None:
    """A plug-in module beside its assumption file is importable here and in every worker process."""
    folder = str(folder.resolve())
    if folder not in sys.path:
        sys.path.insert(0, folder)
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if folder not in parts:
        os.environ["PYTHONPATH"] = os.pathsep.join([folder, *parts])


def prepare(path: Path, profile: str, jobs: int = 1, max_memory: float | None = None,
            max_hours: float | None = None, overrides: list[str] = ()) -> Prepared:
    """Everything up to the run, with no file written: any problem is a CheckInputError, PluginFailed or
    PluginDisagrees. The resource guard runs before the model is built (a model of 10^9 classes is refused
    here, not by a MemoryError)."""
    spec = read(path)
    _importable(Path(path).parent)
    try:
        ch = chapters.get(spec["chapter"])
    except chapters.UnknownChapter as err:
        raise CheckInputError(f"chapter: {err.args[0].split(': ', 1)[1]}") from None
    if ch.check is None:
        raise CheckInputError(f"chapter: {ch.name!r} does not support sslt check")
    if profile not in config_mod.PROFILES:
        raise CheckInputError(f"profile: must be one of {config_mod.PROFILES}, got {profile!r}")
    with open(ch.config_file, "rb") as fh:
        raw = copy.deepcopy(tomllib.load(fh)[profile])
    data = dict(raw.get("data", {}))
    data.update(spec.get("data", {}))
    try:
        if "generator" in spec:
            data.update(family="plugin", generator=spec["generator"],
                        generator_args=json.dumps(spec.get("args", {}), sort_keys=True, separators=(",", ":")))
        raw["data"] = data
        raw = ch.check.prepare(raw)  # may turn explicit matrices or means into a built-in generator
        if raw["data"].get("generator"):
            raw["data"]["generator_digest"] = plugins.source_digest(raw["data"]["generator"])
        raw = _deep_merge(raw, spec.get("sweep", {}))
        for item in overrides:  # --set, over the file's [sweep]
            key, value = config_mod.parse_override(ch.config, item)
            config_mod._set_path(raw, key, value)
        cfg = config_mod.build(ch.config, raw)
        est = resources.guard(ch, [c for _, c in runner.plan(ch.name, cfg)], jobs, max_memory, max_hours)
        data_spec = ch.check.data_spec(cfg)
        rng = numpy_rng(config_mod.config_hash(data_spec), 0, "check")
        model = ch.check.build_model(data_spec, rng)
        found = ch.check.agreements(model, rng)
    except config_mod.ConfigError as err:
        raise CheckInputError(str(err)) from None
    except plugins.PluginRaised as err:
        raise PluginFailed(str(err)) from None
    except plugins.PluginError as err:
        raise CheckInputError(str(err)) from None
    except (ValueError, TypeError) as err:  # a generator spec the chapter refuses, e.g. matrices of the wrong shape
        raise CheckInputError(str(err).splitlines()[0]) from None
    return Prepared(ch, spec["name"], cfg, Path(path), model, found, list(getattr(model, "estimated_quantities", [])),
                    est)


# ------------------------------------------------------------------------------------------------ the report
def _assumption_summary(theorem, rows: pd.DataFrame) -> list[dict]:
    out = []
    for name, (value, met) in theorem.check_assumptions(rows).items():
        finite = value[np.isfinite(value)]
        decl = next(a for a in theorem.assumptions if a.name == name)
        terms = {}
        for t in decl.terms:  # the terms at the points where it fails: what to change
            col = pd.to_numeric(rows[t], errors="coerce").to_numpy()[~met] if t in rows else np.array([])
            col = col[np.isfinite(col)]
            if col.size:
                terms[t] = (float(col.min()), float(col.max()))
        out.append({"name": name, "statement": decl.statement, "terms_where_not_met": terms,
                    "met": int(met.sum()), "not_met": int((~met).sum()),
                    "min": float(finite.min()) if finite.size else None,
                    "max": float(finite.max()) if finite.size else None})
    return out


def _json_value(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        return float(v) if np.isfinite(v) else str(v)
    if isinstance(v, (np.bool_,)):
        return bool(v)
    return v if isinstance(v, (int, str, bool)) or v is None else str(v)


def theorem_records(table: pd.DataFrame, theorems) -> list[dict]:
    """One record per theorem of the chapter: assumptions, counts, slack, the worst point with every term."""
    recs = []
    for t in theorems:
        rows = table[table["theorem"] == t.id] if len(table) else table
        rec = {"theorem": t.id, "kind": t.kind, "status": t.status, "paper": t.paper, "number": t.number,
               "statement": t.statement, "points": int(len(rows))}
        if rows.empty:
            rec.update(note="no point of this run is checked against this theorem", counts={}, assumptions=[])
            recs.append(rec)
            continue
        rec["counts"] = {str(k): int(v) for k, v in rows["verdict"].value_counts().items()}
        rec["assumptions"] = _assumption_summary(t, rows)
        rec["judged"] = int((~rows["verdict"].isin([NOT_MET, UNDETERMINED])).sum())
        if not rec["judged"]:
            rec["note"] = "nothing checked: " + _why_nothing(rec)
        # What the verdict would be were every assumption met: a violation outside the assumptions is expected.
        raw = verdicts(rows["measured"], rows["bound_value"], rows["trivial"], rows["measured_se"],
                       rows["bound_se"], kind=t.kind)
        not_met = rows["verdict"].to_numpy() == NOT_MET
        rec["violated_where_met"] = int((rows["verdict"] == VIOLATED).sum())
        rec["violated_where_not_met"] = int(np.sum(not_met & (raw == VIOLATED)))
        judged = rows[~rows["verdict"].isin([NOT_MET, UNDETERMINED])]
        sl = judged["slack"][np.isfinite(judged["slack"])]
        rec["median_slack"] = float(sl.median()) if len(sl) else None
        rec["worst_slack"] = float(sl.min()) if len(sl) else None
        # a reference (or a lower bound) at or below 0 makes its ratio negative: counted so that a page can say so
        rec["reference_nonpositive"] = int((judged["bound_value"] <= 0).sum())
        if len(judged):
            se = np.hypot(judged["measured_se"].fillna(0), judged["bound_se"].fillna(0))
            excess = (judged["measured"] - judged["bound_value"]) / np.maximum(se, 1e-300)
            worst = judged.loc[excess.idxmax()]
            rec["worst_point"] = {c: _json_value(worst[c]) for c in
                                  ("measured", "measured_se", "bound_value", "bound_se", "trivial", "verdict",
                                   "slack", "form", *t.terms) if c in worst.index}
        mc = [c for c in ("measured_se", "bound_se") if c in rows and rows[c].fillna(0).gt(0).any()]
        rec["monte_carlo"] = bool(mc)
        recs.append(rec)
    return recs


def _why_nothing(rec: dict) -> str:
    """Which assumption kept every point of a theorem from being judged, with its value."""
    unmet = [a for a in rec["assumptions"] if a["not_met"]]
    if not unmet:
        return "every point is undetermined (the measured and bound values are within their standard errors)"
    out = []
    for a in unmet:
        value = "" if a["min"] is None else (f" = {a['min']:.4g}" if a["min"] == a["max"]
                                               else f" in [{a['min']:.4g}, {a['max']:.4g}]")
        terms = ", ".join(f"{t} = {lo:.4g}" if lo == hi else f"{t} in [{lo:.4g}, {hi:.4g}]"
                          for t, (lo, hi) in a.get("terms_where_not_met", {}).items())
        out.append(f"assumption {a['name']}{value} not met at {a['not_met']} of {a['met'] + a['not_met']} points"
                   + (f" ({terms})" if terms else "") + f": {a['statement']}")
    return "; ".join(out)


def exit_code(records: list[dict]) -> int:
    if any(r.get("violated_where_met") for r in records):
        return 1
    bounds = [r for r in records if r["kind"] == "bound"]
    return NOTHING_JUDGED if bounds and not any(r.get("judged") for r in bounds) else 0


def render(name: str, ch, run, records: list[dict], agreements: list, estimated: list = (),
           resource_line: str = "") -> str:
    lines = [f"sslt check {name}: chapter {ch.name}, {run.describe()}", ""]
    if resource_line:
        lines += [resource_line, ""]
    for note in estimated:
        lines += [f"estimated, not declared: {note}"]
    if estimated:
        lines.append("")
    if agreements:
        worst = max(agreements, key=lambda a: a.gap_se)
        lines.append(f"plug-in declarations: {len(agreements)} compared with the plug-in's own samples, all within "
                     f"{plugins.N_SE:g} SE (largest: {worst.describe()})")
        lines.append("")
    for r in records:
        head = f"{r['theorem']} [{r['kind']}, {r['status']}] {r['paper']}, {r['number']}"
        lines.append(head)
        if not r["points"]:
            lines.append(f"  {r['note']}")
            lines.append("")
            continue
        for a in r["assumptions"]:
            rng = "" if a["min"] is None else (f" = {a['min']:.4g}" if a["min"] == a["max"]
                                                 else f" in [{a['min']:.4g}, {a['max']:.4g}]")
            state = "met" if not a["not_met"] else ("NOT met" if not a["met"] else "met at some points")
            lines.append(f"  assumption {a['name']}{rng}: {state} ({a['met']} met, {a['not_met']} not met) — "
                         f"{a['statement']}")
        c = r["counts"]
        if r["kind"] == "bound":
            lines.append(f"  verdicts: {c.get(HOLDS, 0)} holds, {c.get(VIOLATED, 0)} violated, {c.get(VACUOUS, 0)} "
                         f"vacuous, {c.get(NOT_MET, 0)} not met, {c.get(UNDETERMINED, 0)} undetermined "
                         f"of {r['points']}")
        elif r["kind"] == "identity":
            lines.append("  an identity of the suite's algebra, checked to rounding: "
                         + ", ".join(f"{v} {k}" for k, v in sorted(c.items())))
        else:
            lines.append("  a reference, not a theorem: " + ", ".join(f"{v} {k}" for k, v in sorted(c.items())))
        if r.get("median_slack") is not None:
            what = "slack (bound / measured)" if r["kind"] == "bound" else "ratio (reference / measured)"
            lines.append(f"  {what}: median {r['median_slack']:.3g}, lowest {r['worst_slack']:.3g}"
                         + ("; terms estimated by Monte Carlo, standard errors in check.json" if r["monte_carlo"]
                            else "; exact terms"))
        if r.get("worst_point"):
            wp = r["worst_point"]
            terms = ", ".join(f"{k}={_fmt(v)}" for k, v in wp.items()
                              if k not in ("verdict", "slack", "form"))
            lines.append(f"  worst point ({wp.get('form', '')}, {wp.get('verdict')}): {terms}")
        if r.get("violated_where_met"):
            lines.append(f"  ** {r['violated_where_met']} VIOLATED WITH EVERY ASSUMPTION MET: a counterexample or a "
                         "bug **")
        if r.get("violated_where_not_met"):
            lines.append(f"  {r['violated_where_not_met']} points exceed the bound where an assumption is not met: "
                         "expected, the theorem does not apply there")
        if r.get("note"):
            lines.append(f"  {r['note']}")
        lines.append("")
    bad = sum(r.get("violated_where_met", 0) for r in records)
    code = exit_code(records)
    empty = [r for r in records if r["kind"] == "bound" and not r.get("judged")]
    if code == NOTHING_JUDGED:
        lines.append(f"result: nothing checked, no verdict: {ch.name}: no theorem could be judged at a point where "
                     "its assumptions are met")
        for r in empty:
            lines.append(f"  {r['theorem']}: {r.get('note', '')}")
    else:
        lines.append("result: " + ("no theorem is violated where its assumptions are met" if not bad else
                                   f"{bad} violated points with every assumption met"))
        for r in empty:
            lines.append(f"  but {r['theorem']}: {r.get('note', '')}")
    return "\n".join(lines) + "\n"


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def run_check(path: Path, profile: str, out: Path | None, fig_root: Path | None, jobs: int,
              device: str = "cpu", max_memory: float | None = None, max_hours: float | None = None,
              overrides: list[str] = ()) -> tuple[int, str]:
    prep = prepare(path, profile, jobs, max_memory, max_hours, overrides)
    bad = [a for a in prep.agreements if not a.ok]
    if bad:
        raise PluginDisagrees("; ".join(a.describe() for a in sorted(bad, key=lambda a: -a.gap_se)[:3])
                              + f" — beyond {plugins.N_SE:g} standard errors: the plug-in's declared quantity is "
                                "not the law it samples from")
    root = Path(out) if out is not None else store.RESULTS / "check" / prep.name
    figures_dir = Path(fig_root) if fig_root is not None else Path("figures") / "check" / prep.name
    fresh = [d for d in (root, figures_dir) if not d.exists()]
    try:
        return _run_and_report(prep, profile, root, figures_dir, jobs, device)
    except BaseException as err:
        # Nothing left behind: what this check created goes; an existing results directory keeps its run
        # record, marked "failed" by the runner.
        for d in fresh:
            shutil.rmtree(d, ignore_errors=True)
        if isinstance(err, plugins.PluginRaised):
            raise PluginFailed(str(err)) from None
        if isinstance(err, plugins.PluginError):
            raise CheckInputError(str(err)) from None
        raise


def _run_and_report(prep: Prepared, profile: str, root: Path, figures_dir: Path, jobs: int, device: str):
    rep = runner.run_sweep(prep.chapter.name, prep.config, root, jobs, device, profile,
                           [f"check {prep.source.name}"])
    table = rep.table
    records = theorem_records(table, prep.chapter.theorems)
    text = render(prep.name, prep.chapter, rep.run, records, prep.agreements, prep.estimated,
                  prep.resources.describe())
    rows = store.load_rows(root, prep.chapter.name, rep.run.cells)
    figs.draw(chapters.enabled_figures(prep.chapter, rep.run.config), rows, table, figures_dir, rep.run.describe())
    code = exit_code(records)
    doc = {"name": prep.name, "chapter": prep.chapter.name, "assumption_file": str(prep.source),
           "run": rep.run.id, "code": rep.run.code, "profile": profile, "results": str(root),
           "figures": str(figures_dir),
           "plugin_agreements": [{"quantity": a.quantity, "declared": a.declared, "estimate": a.estimate,
                                  "se": a.se, "gap_se": a.gap_se} for a in prep.agreements],
           "estimated_quantities": prep.estimated,
           "resources": {"peak_bytes": prep.resources.peak, "seconds": prep.resources.seconds},
           "theorems": records,
           "exit": code}
    store.atomic_write_text(root / "bounds.csv", store.csv_text(table))
    store.atomic_write_text(root / "check.json", json.dumps(doc, indent=1, default=_json_value) + "\n")
    store.atomic_write_text(root / "check.txt", text)
    return code, text

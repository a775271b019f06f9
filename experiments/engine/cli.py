"""The ``sslt`` command: list, run, runs, figures, check, theorems, expected, report, bench, calibrate."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from experiments.engine import chapters, runs, store
from experiments.engine import config as config_mod
from experiments.engine.train import TrainingDiverged
from synthetic_data.plugins import PluginError


def _names(given: list[str]) -> list[str]:
    known = chapters.names()
    names = known if not given or given == ["all"] else given
    for n in names:
        if n not in known:
            raise config_mod.ConfigError(f"experiment: unknown {n!r}; known: {', '.join(known)}")
    return names


def _root(out) -> Path:
    return Path(out) if out is not None else store.RESULTS


def cmd_list(args) -> int:
    for ch in chapters.all_chapters():
        print(f"{ch.name}: {ch.summary}")
        for fig in ch.figures:
            print(f"  figure: {fig}")
        for t in ch.theorems:
            print(f"  theorem: {t.id} ({t.kind}, {t.status})")
    return 0


def _with_plugin_digest(overrides: list[str]) -> list[str]:
    """A plug-in named by ``--set data.generator=module:Class`` gets the hash of its whole code as
    ``data.generator_digest`` (as in ``sslt check``), so that an edit to it, or to a base class, re-runs its cells."""
    from synthetic_data import plugins
    given = {k.strip(): v.strip() for k, v in (item.split("=", 1) for item in overrides if "=" in item)}
    gen = given.get("data.generator", "").strip("'\"")
    if gen and "data.generator_digest" not in given:
        return [*overrides, f"data.generator_digest={plugins.source_digest(gen)}"]
    return list(overrides)


def cmd_run(args) -> int:
    from analysis import bounds as bound_table
    from experiments.engine import runner
    names = _names(args.experiment)
    # Every config is validated before any cell of any experiment runs.
    cfgs = {n: config_mod.load(chapters.get(n).config_file, chapters.get(n).config, args.profile, args.set)
            for n in names}
    with_digest = _with_plugin_digest(args.set)
    if with_digest != args.set:
        args.set = with_digest
        cfgs = {n: config_mod.load(chapters.get(n).config_file, chapters.get(n).config, args.profile, args.set)
                for n in names}
    if args.device == "cuda":
        import torch
        if not torch.cuda.is_available():
            raise config_mod.ConfigError("device: cuda requested but no GPU is visible")
    if args.scheduler and args.backend != "dask":
        raise config_mod.ConfigError("scheduler: only the dask backend takes a scheduler address")
    from experiments.engine import resources
    max_memory = resources.parse_memory(args.max_memory) if args.max_memory else None
    for n in names:  # every experiment is sized before any cell of any experiment runs
        est = resources.guard(chapters.get(n), [c for _, c in runner.plan(n, cfgs[n])], args.jobs, max_memory,
                              args.max_hours)
        print(f"{n}: {est.describe()}" + ("" if args.max_hours is not None else "; no --max-hours limit"),
              file=sys.stderr)  # stdout stays the run's own lines
    root = _root(args.out)
    judged = {}
    for n in names:
        rep = runner.run_sweep(n, cfgs[n], root, args.jobs, args.device, args.profile, args.set, args.backend,
                               args.scheduler)
        r = rep.run
        judged[r.id] = rep.table
        print(f"{n}: run {r.id}: {rep.n_cells} cells, {r.n_run} run now ({r.n_stale} stale: made by other code), "
              f"{r.n_reused} already done -> {root / n}")
    table = runner.write_bounds(root, chapters.names(), judged)
    print(bound_table.summary(table))
    print(f"verdict table: {root / 'bounds.csv'} (latest run of each experiment)")
    return 0


def cmd_runs(args) -> int:
    recorded = runs.all_runs(_root(args.out))
    if not recorded:
        print(f"no runs under {_root(args.out)}")
        return 0
    w = max(len(r.id) for r in recorded) + 2
    print(f"{'run':<{w}}{'started (UTC)':<21}{'profile':<9}{'cells':>6}{'ran':>5}{'stale':>6}  "
          f"{'code':<18}{'overrides':<40}verdicts")
    for r in recorded:
        counts = ", ".join(f"{k} {v}" for k, v in r.verdicts.items()) if r.status == runs.COMPLETE else r.status
        if r.status in (runs.FAILED, runs.INTERRUPTED) and r.error:
            counts += f" ({r.error})"
        over = " ".join(r.overrides) or "-"
        print(f"{r.id:<{w}}{r.started[:19]:<21}{r.profile:<9}{len(r.cells):>6}{r.n_run:>5}{r.n_stale:>6}  "
              f"{r.code:<18}{over:<40}{counts}")
    return 0


def cmd_figures(args) -> int:
    from experiments.engine import drawing, runner
    root = _root(args.out)
    fig_root = Path(args.figures) if args.figures is not None else Path("figures")
    names = _names(args.experiment)
    selected = runner.selected_runs(root, names, args.run)
    have = {r.experiment for r in selected}
    # Named experiments must all have a run; 'all' draws those that have one, but at least one.
    missing = [n for n in names if n not in have] if args.experiment and not args.run else []
    if not selected:
        missing = names
    if missing:
        raise FileNotFoundError(f"no complete run for {', '.join(map(repr, missing))} under {root}: "
                                f"run `sslt run {' '.join(missing)}` first")
    for p in drawing.draw_runs(root, selected, fig_root, by_run=bool(args.run), jobs=args.jobs):
        print(p)
    return 0


def cmd_check(args) -> int:
    from experiments.engine import check, resources
    try:
        max_memory = resources.parse_memory(args.max_memory) if args.max_memory else None
        code, text = check.run_check(args.assumption, args.profile, args.out, args.figures, args.jobs, args.device,
                                     max_memory, args.max_hours, args.set)
    except (check.CheckInputError, config_mod.ConfigError) as err:
        print(f"sslt check: bad input: {err}", file=sys.stderr)
        return 2
    except check.PluginFailed as err:
        print(f"sslt check: {err}", file=sys.stderr)
        return 2
    except check.PluginDisagrees as err:
        print(f"sslt check: the plug-in is wrong: {err}", file=sys.stderr)
        return 1
    print(text, end="")
    return code


def cmd_theorems(args) -> int:
    from experiments.engine import theorem_docs, where
    if args.where:
        try:
            print("\n".join(where.text(tid) for tid in args.where), end="")
        except where.UnknownTheorem as err:
            print(f"sslt: error: {err.args[0]}", file=sys.stderr)
            return 2
        return 0
    print(theorem_docs.markdown() if args.markdown else theorem_docs.table(), end="")
    return 0


def cmd_expected(args) -> int:
    from experiments.engine import expected
    return expected.main(_names(args.experiment), args.write, args.jobs)


def cmd_readme(args) -> int:
    from experiments.engine import readme
    try:
        return readme.main(args.path, args.write)
    except readme.ReadmeError as err:
        print(f"sslt readme: {err}", file=sys.stderr)
        return 2


def cmd_report(args) -> int:
    from experiments.engine import report
    return report.main(_root(args.out), Path(args.site), args.check, args.profile)


def cmd_bench(args) -> int:
    from experiments.engine import bench
    return bench.main(args)


def cmd_calibrate(args) -> int:
    from experiments.engine import calibration
    chapters.get(args.experiment)
    try:
        fit = calibration.record(args.out, args.experiment, args.path or calibration.PATH, args.note)
    except ValueError as err:
        raise config_mod.ConfigError(str(err)) from None
    print(f"{args.experiment}: seconds = {fit.per_cell:.4g} + {fit.per_cost:.4g} x cost ({fit.source})")
    return 0


CHECK_EXIT_CODES = """exit codes:
  0  no theorem is violated where its assumptions are met
  1  a theorem is violated with every assumption met (a counterexample or a bug), or the plug-in's declared
     quantities disagree with its own samples (a wrong plug-in)
  2  bad input (one line naming the field), a run too large for --max-memory / the machine / --max-hours, or an
     exception raised by the plug-in's own code ("plug-in <module:Class>.<method> raised <Type>: <message>");
     nothing is written
  4  nothing checked: no theorem could be judged at a point where its assumptions are met (no verdict)
"""


def _limits(p) -> None:
    p.add_argument("--max-memory", default=None, metavar="SIZE",
                   help="refuse a run whose estimated peak memory exceeds SIZE, e.g. 8G (default: this machine's)")
    p.add_argument("--max-hours", type=float, default=None, metavar="H",
                   help="refuse a run whose estimated time exceeds H hours (default: no limit; the estimate is "
                        "printed)")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sslt", description="Self-supervised learning theory, checked on synthetic data.")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="chapters, their figures and theorems").set_defaults(func=cmd_list)
    r = sub.add_parser("run", help="run a sweep as one recorded run (cells this code finished are reused)")
    r.add_argument("experiment", nargs="*", help="experiment names, or 'all' (default)")
    r.add_argument("--profile", choices=config_mod.PROFILES, default="default")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
    r.add_argument("--out", type=Path, default=None, help="results directory (default: results/)")
    r.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="cells run in parallel")
    r.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    r.add_argument("--backend", choices=("local", "dask"), default="local",
                   help="local processes, or a dask cluster (the results directory must be shared)")
    r.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="dask scheduler address (default: a local cluster of --jobs workers)")
    _limits(r)
    r.set_defaults(func=cmd_run)
    rs = sub.add_parser("runs", help="list the recorded runs")
    rs.add_argument("--out", type=Path, default=None, help="results directory (default: results/)")
    rs.set_defaults(func=cmd_runs)
    f = sub.add_parser("figures", help="draw figures from stored results (no training)")
    f.add_argument("experiment", nargs="*")
    f.add_argument("--run", action="append", default=[], metavar="ID",
                   help="draw this run (default: the latest run of each experiment); repeatable")
    f.add_argument("--out", type=Path, default=None, help="results directory to read (default: results/)")
    f.add_argument("--figures", type=Path, default=None, help="where to write figures (default: figures/)")
    f.add_argument("--jobs", type=int, default=1, help="figures drawn in parallel processes (default 1)")
    f.set_defaults(func=cmd_figures)
    c = sub.add_parser("check", help="point every theorem of a chapter at a distribution of your own",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=CHECK_EXIT_CODES)
    c.add_argument("assumption", type=Path, help="an assumption file (see examples/assumptions/ and docs/plugins.md)")
    c.add_argument("--profile", choices=config_mod.PROFILES, default="quick")
    c.add_argument("--out", type=Path, default=None, help="results directory (default: results/check/<name>/)")
    c.add_argument("--figures", type=Path, default=None, help="figures directory (default: figures/check/<name>/)")
    c.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    c.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    c.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, over the file's [sweep]")
    _limits(c)
    c.set_defaults(func=cmd_check)
    t = sub.add_parser("theorems", help="the theorem registry")
    t.add_argument("--markdown", action="store_true", help="print docs/theorems.md")
    t.add_argument("--where", action="append", default=[], metavar="ID",
                   help="file:line of every place the theorem touches (data, cells, run, bound, checks, figures, "
                        "doc, tests); repeatable")
    t.set_defaults(func=cmd_theorems)
    e = sub.add_parser("expected", help="the reference answers: verdict counts of the quick profile, per theorem "
                                        "and form, against experiments/configs/<chapter>.expected.json")
    e.add_argument("experiment", nargs="*", help="chapter names, or 'all' (default)")
    e.add_argument("--write", action="store_true", help="rewrite the files instead of comparing (exit 1 on a diff)")
    e.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="cells run in parallel")
    e.set_defaults(func=cmd_expected)
    rd = sub.add_parser("readme", help="the README's verdict table, from the reference answers (quick profile)")
    rd.add_argument("--write", action="store_true", help="rewrite the table between README.md's markers")
    rd.add_argument("--path", type=Path, default=Path("README.md"), help="the file to rewrite (default: README.md)")
    rd.set_defaults(func=cmd_readme)
    rp = sub.add_parser("report", help="the theorem atlas: a static site from the latest run of each chapter")
    rp.add_argument("--out", type=Path, default=None, help="results directory to read (default: results/)")
    rp.add_argument("--site", type=Path, default=Path("report"), help="where to write the site (default: report/)")
    rp.add_argument("--check", action="store_true", help="then open every page in headless Chromium and check it")
    rp.add_argument("--profile", choices=config_mod.PROFILES, default=None,
                    help="build from the latest run of this profile only (default: the latest run, any profile)")
    rp.set_defaults(func=cmd_report)
    b = sub.add_parser("bench", help="time the suite on this machine")
    b.add_argument("--skip-default", action="store_true", help="skip timing the default profile")
    b.add_argument("--micro", nargs="*", metavar="NAME", default=None,
                   help="run only the micro-benchmarks (entry points sslt.benchmarks; NAME: only those), in seconds")
    b.set_defaults(func=cmd_bench)
    cb = sub.add_parser("calibrate", help="record measured cell times as the cost model's calibration")
    cb.add_argument("experiment", help="chapter name")
    cb.add_argument("--out", type=Path, action="append", required=True,
                    help="results directory whose finished cells (of any recorded run) are measured; repeatable")
    cb.add_argument("--note", default="", help="what the measurements are (machine load, commit), stored with them")
    cb.add_argument("--path", type=Path, default=None, help="calibration file (default: the package's own)")
    cb.set_defaults(func=cmd_calibrate)
    return p


def main(argv: list[str] | None = None) -> int:
    import matplotlib
    matplotlib.use("Agg")  # the command draws to files; a notebook importing the analysis keeps its own backend
    args = parser().parse_args(argv)
    if getattr(args, "jobs", 1) < 1:
        print("sslt: error: --jobs: must be >= 1", file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except config_mod.ConfigError as err:
        print(f"sslt: config error: {err}", file=sys.stderr)
        return 2
    except FileNotFoundError as err:  # nothing to draw yet, a run whose cells were deleted
        print(f"sslt: error: {err}", file=sys.stderr)
        return 2
    except (runs.RunNotFound, chapters.UnknownChapter) as err:
        print(f"sslt: error: {err.args[0] if err.args else err}", file=sys.stderr)
        return 2
    except PluginError as err:  # a plug-in named by --set data.generator=...
        print(f"sslt: {err}", file=sys.stderr)
        return 2
    except TrainingDiverged as err:
        print(f"sslt: training diverged: {err}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:   # Ctrl-C: one line, not a traceback; a run's record says how far it got
        print("sslt: interrupted; every finished cell is kept, and the same command resumes from there",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

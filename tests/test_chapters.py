"""One protocol test for every registered chapter: conformance, the quick profile end to end, byte-identical
rows at --jobs 1 and 2, a malformed-config corpus, every bounds.csv row recomputed from its theorem, and
figures that have data in them."""
from __future__ import annotations

import dataclasses
import json
import typing

import matplotlib
import numpy as np
import pandas as pd
import pytest

from conftest import cell_bytes
from experiments.engine import chapters, cli, expected, runner, runs, store
from theory.theorems import STATUSES, index
from theory.verdict import VERDICTS_OF

NAMES = chapters.names()


def test_the_shipped_chapters_are_registered():
    assert {"contrastive", "self_prediction", "language"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_conformance(name):
    ch = chapters.get(name)
    assert chapters.conformance(ch) == []
    for profile in ("quick", "default", "paper"):
        cfg = chapters.load_config(name, profile)
        cells = ch.cells(cfg)
        assert cells, f"{profile}: no cells"
        for cell in cells:
            assert dataclasses.is_dataclass(cell) and cell.__dataclass_params__.frozen
            c = ch.cost(cell)
            assert np.isfinite(c) and c >= 0
    ids = [t.id for t in ch.theorems]
    assert len(ids) == len(set(ids))
    for t in ch.theorems:
        assert t.status in STATUSES and t.statement and t.paper and t.number and t.terms
        assert t.doc.startswith(f"docs/theory/{name}.md"), t.id
        assert t.study in chapters.sections(ch.config) and set(t.figures) <= set(ch.figures), t.id


@pytest.mark.parametrize("name", NAMES)
def test_one_name_per_study(name):
    """Config section = FIGURES key = fig_<name>; a summary figure is declared with the studies it draws; a
    theorem names a study that exists and figures that exist. Each break of the rule fails conformance."""
    ch = chapters.get(name)
    studies = chapters.sections(ch.config)
    for fig, draw in ch.figures.items():
        assert draw.__name__ == f"fig_{fig}", fig
        needs = {s for need in ch.summary_figures.get(fig, ("?",)) for s in need.split("|")}   # "a|b": either
        assert fig in studies or needs <= set(studies), fig
    t = ch.theorems[0]
    lost = dataclasses.replace(t, study="no_such_study")
    assert any("no_such_study" in p for p in chapters.conformance(dataclasses.replace(ch, theorems=(lost,))))
    ghost = dataclasses.replace(t, figures=("no_such_figure",))
    assert any("no_such_figure" in p for p in chapters.conformance(dataclasses.replace(ch, theorems=(ghost,))))
    first, draw = next(iter(ch.figures.items()))
    renamed = dataclasses.replace(ch, figures={**ch.figures, "renamed_figure": draw})
    problems = chapters.conformance(renamed)
    assert any("'renamed_figure' is neither a config section" in p for p in problems)
    assert any(f"is drawn by 'fig_{first}', not fig_renamed_figure" in p for p in problems)
    for fig in ch.summary_figures:
        undeclared = dataclasses.replace(ch, summary_figures={k: v for k, v in ch.summary_figures.items() if k != fig})
        assert any(f"{fig!r} is neither a config section" in p for p in chapters.conformance(undeclared))
        wrong = dataclasses.replace(ch, summary_figures={**ch.summary_figures, fig: ("no_such_study",)})
        assert any(p.startswith(f"summary_figures: {fig!r}") for p in chapters.conformance(wrong))


def test_a_non_chapter_fails_the_protocol():
    ch = chapters.get(NAMES[0])
    assert chapters.conformance(object())
    broken = dataclasses.replace(ch, theorems=(), figures={})
    problems = chapters.conformance(broken)
    assert any(p.startswith("theorems") for p in problems) and any(p.startswith("figures") for p in problems)
    foreign = dataclasses.replace(ch, name="other")
    assert any("does not belong" in p for p in chapters.conformance(foreign))
    # a figure of the old protocol, draw(rows, out_dir, stem), would never see the judged table
    old = dataclasses.replace(ch, figures={"old": lambda rows, out, stem: []})
    assert "figures: 'old' must take (rows, judged, out_dir, stem)" in chapters.conformance(old)


@pytest.mark.parametrize("name", NAMES)
def test_quick_profile_end_to_end(name, quick_results):
    root = quick_results(name)
    run = runs.latest(root, name)
    assert run is not None and run.status == runs.COMPLETE and run.profile == "quick"
    planned = {store.cell_key(cid, run.code) for cid, _ in runner.plan(name, chapters.load_config(name, "quick"))}
    assert set(run.cells) == planned
    table = pd.read_csv(root / "bounds.csv")
    assert len(table) > 0 and set(table["run"]) == {run.id} and set(table["experiment"]) == {name}
    ch = chapters.get(name)
    registry = index(ch.theorems)
    assert set(table["theorem"]) <= set(registry)
    for tid, g in table.groupby("theorem"):
        t = registry[tid]
        assert set(g["kind"]) == {t.kind}
        assert set(g["verdict"]) <= set(VERDICTS_OF[t.kind]), tid
        # the theorem's own function, fed the row's terms, gives the row's bound: nothing was fitted
        np.testing.assert_allclose(t.bound_from(g), g["bound_value"].to_numpy(), rtol=1e-12, atol=0,
                                   equal_nan=True, err_msg=tid)
    assert table["model_kind"].isin(("trained", "oracle", "constructed", "untrained")).all()
    undetermined = table[table["verdict"] == "undetermined"]
    assert undetermined["reason"].notna().all(), "every undetermined point says why"
    data_cols = [c for c in table.columns if c.startswith("data.")]
    assert data_cols, "rows carry the data assumptions that tell runs apart"


@pytest.mark.parametrize("name", NAMES)
def test_reference_answers(name, quick_results):
    """The quick run's verdict counts and median slack per (theorem, form) are the committed reference answers
    (experiments/configs/<chapter>.expected.json): a change is a diff to review, `sslt expected --write`."""
    root = quick_results(name)
    got = expected.answers(name, runner.run_table(root, runs.latest(root, name)))
    committed = expected.path(name)
    assert committed.is_file(), f"no reference answers: run `sslt expected --write {name}`"
    assert expected.dumps(got) == committed.read_text(), \
        f"{name}: the quick run differs from {committed.name}; review `sslt expected {name}`"
    assert json.loads(committed.read_text()) == got
    keys = [(r["theorem"], r["form"]) for r in got["rows"]]
    assert keys == sorted(keys) and len(keys) == len(set(keys))
    for r in got["rows"]:
        assert sum(r["counts"].values()) == r["points"] > 0, r


def test_sslt_expected_shows_a_changed_count_and_writes_on_request(quick_results, tmp_path, monkeypatch, capsys):
    name = NAMES[0]
    root = quick_results(name)
    table = runner.run_table(root, runs.latest(root, name))
    monkeypatch.setattr(expected, "quick_table", lambda n, r, jobs=1: table)
    target = tmp_path / f"{name}.expected.json"
    monkeypatch.setattr(expected, "path", lambda n: target)
    assert cli.main(["expected", name, "--jobs", "1"]) == 1, "a missing file is a difference"
    assert cli.main(["expected", name, "--write", "--jobs", "1"]) == 0
    assert target.read_text() == expected.dumps(expected.answers(name, table))
    capsys.readouterr()
    assert cli.main(["expected", name, "--jobs", "1"]) == 0
    ans = json.loads(target.read_text())
    row = ans["rows"][0]
    verdict = next(k for k, v in row["counts"].items() if v > 0)
    row["counts"][verdict] -= 1
    target.write_text(expected.dumps(ans))
    capsys.readouterr()
    assert cli.main(["expected", name, "--jobs", "1"]) == 1
    diff = capsys.readouterr().out
    assert f'-  {json.dumps(row)}' in diff and row["theorem"] in diff


@pytest.mark.parametrize("name", NAMES)
def test_same_rows_at_jobs_1_and_jobs_2(name, quick_results, tmp_path):
    one = tmp_path / "jobs1"
    assert cli.main(["run", name, "--profile", "quick", "--out", str(one), "--jobs", "1"]) == 0
    a, b = cell_bytes(one, name), cell_bytes(quick_results(name), name)
    assert len(a) >= 2 and a == b


# ------------------------------------------------------------------------------------ malformed configs
def _leaves(cls, prefix=""):
    for f in dataclasses.fields(cls):
        hint = typing.get_type_hints(cls)[f.name]
        if dataclasses.is_dataclass(hint):
            yield from _leaves(hint, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", hint


def _type_cases(cls) -> list[tuple[str, str]]:
    """(override, field) pairs that are malformed whatever the chapter: each leaf field given a value of a
    type it cannot take. Drawn from the config dataclass itself, so a new chapter gets its corpus for free."""
    cases = [("bogus_top=1", "bogus_top")]
    sections = [f.name for f in dataclasses.fields(cls) if dataclasses.is_dataclass(typing.get_type_hints(cls)[f.name])]
    for s in sections:
        cases += [(f"{s}.bogus_key=1", f"{s}.bogus_key"), (f"{s}=5", s)]
    for field, hint in _leaves(cls):
        if hint is bool:
            cases += [(f"{field}=maybe", field), (f"{field}=[true]", field)]
        elif hint is int:
            cases += [(f"{field}=abc", field), (f"{field}=1.5", field), (f"{field}=true", field),
                      (f"{field}=[1, 2]", field)]
        elif hint is float:
            cases += [(f"{field}=abc", field), (f"{field}=[1.0, 2.0]", field), (f"{field}={{a = 1}}", field)]
        elif hint is str:
            cases += [(f"{field}=[1, 2]", field), (f"{field}=3", field)]
        elif typing.get_origin(hint) is tuple and typing.get_args(hint)[:1] in ((int,), (float,)):
            cases += [(f"{field}=abc", field), (f"{field}={{a = 1}}", field), (f"{field}=['x']", field)]
    return cases


def _corpus(name):
    return _type_cases(chapters.get(name).config) + [("=3", ""), ("noequals", "noequals")]


@pytest.mark.parametrize("name", NAMES)
def test_malformed_config_corpus(name, tmp_path, capsys):
    cases = _corpus(name)
    assert len(cases) >= 20
    for override, field in cases:
        out = tmp_path / "results"
        code = cli.main(["run", name, "--profile", "quick", "--out", str(out), "--jobs", "1", "--set", override])
        err = capsys.readouterr().err
        assert code == 2, (override, err)
        assert "config error" in err and field in err, (override, err)
        assert err.count("\n") == 1, f"one line: {err!r}"
        assert not out.exists(), f"{override}: left something behind"


@pytest.mark.parametrize("name", NAMES)
def test_unambiguous_inputs_are_accepted(name):
    """A lone value for a list field is that one-element list; a quoted TOML string is the string."""
    cls = chapters.get(name).config
    tuples = [(f, h) for f, h in _leaves(cls) if typing.get_origin(h) is tuple and typing.get_args(h)[:1] == (int,)]
    strs = [f for f, h in _leaves(cls) if h is str]
    base = chapters.load_config(name, "quick")

    def get(cfg, dotted):
        for part in dotted.split("."):
            cfg = getattr(cfg, part)
        return cfg
    for f, _ in tuples:
        current = get(base, f)
        if current:
            try:
                cfg = chapters.load_config(name, "quick", [f"{f}={current[0]}"])
            except Exception as err:  # a one-element list may be refused by the chapter's own range check
                assert "config error" not in str(err) or f.split(".")[-1] in str(err)
                continue
            assert get(cfg, f) == (current[0],)
            break
    for f in strs:
        current = get(base, f)
        cfg = chapters.load_config(name, "quick", [f'{f}="{current}"'])
        assert get(cfg, f) == current


# ------------------------------------------------------------------------------------ figures have data
@pytest.mark.parametrize("name", NAMES)
def test_every_figure_has_data_and_names_its_run(name, quick_results, quick_figures):
    root = quick_results(name)
    fig_root, seen, handed = quick_figures(name)   # drawn once per session by `sslt figures`, spied as saved
    run = runs.latest(root, name)
    assert set(seen) == set(chapters.get(name).figures)
    for stem, info in seen.items():
        assert info["panels"], stem
        assert any(d for d, _ in info["panels"]), f"{stem}: no panel has data"
        for i, (data, why) in enumerate(info["panels"]):
            assert data or why, f"{stem}: panel {i} is empty and does not say why"
        for labels in info["legends"]:
            assert labels and all(lbl.strip() for lbl in labels), f"{stem}: empty legend entry"
        assert info["caption"] and run.id in info["caption"][0] and "profile quick" in info["caption"][0], stem
    assert (fig_root / name / "RUN").read_text().startswith(f"run {run.id}")
    # the figures were handed the run's judged table: bounds.csv's rows of that run, verdict for verdict
    table = pd.read_csv(root / "bounds.csv")
    judged, = handed
    assert set(judged["run"]) == {run.id} and len(judged) == len(table)
    assert list(judged["verdict"]) == list(table["verdict"]) and list(judged["theorem"]) == list(table["theorem"])
    np.testing.assert_allclose(judged["bound_value"].to_numpy(float), table["bound_value"].to_numpy(float),
                               rtol=1e-15, atol=0, equal_nan=True)


def test_the_cli_chooses_the_backend_not_the_import():
    import importlib
    import analysis.plotting
    before = matplotlib.get_backend()
    importlib.reload(analysis.plotting)
    assert matplotlib.get_backend() == before

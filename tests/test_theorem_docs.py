"""docs/theorems.md is generated from the registry and must not drift from it; the README links to it."""
from __future__ import annotations

from pathlib import Path

from experiments.engine import chapters, cli, theorem_docs, where

ROOT = Path(__file__).resolve().parents[1]


def test_docs_theorems_md_is_up_to_date():
    on_disk = (ROOT / "docs" / "theorems.md").read_text()
    assert on_disk == theorem_docs.markdown(), \
        "docs/theorems.md is stale: regenerate it with `sslt theorems --markdown > docs/theorems.md`"


def test_every_theorem_is_in_the_docs_and_the_cli(capsys):
    assert cli.main(["theorems"]) == 0
    printed = capsys.readouterr().out
    md = theorem_docs.markdown()
    for ch in chapters.all_chapters():
        for t in ch.theorems:
            assert t.id in printed and f"`{t.id}`" in md
            doc, _, anchor = t.doc.partition("#")
            assert (ROOT / doc).is_file(), t.doc


def test_the_readme_links_to_the_registry():
    assert "docs/theorems.md" in (ROOT / "README.md").read_text()


def test_the_registry_table_has_a_figure_column():
    md = theorem_docs.markdown()
    assert "| trivial value | figures |" in md
    for ch in chapters.all_chapters():
        for t in ch.theorems:
            line = next(x for x in md.splitlines() if x.startswith(f"| `{t.id}` |"))
            assert line.endswith(f"(study `{t.study}`) |"), t.id
            assert all(f"`{f}`" in line.rsplit("|", 2)[1] for f in t.figures), t.id


def _line(where: str) -> str:
    file, _, n = where.rpartition(":")
    return (ROOT / file).read_text().splitlines()[int(n) - 1]


def test_where_names_every_place(capsys):
    """Every theorem: each place `sslt theorems --where` prints is a real file:line, and it is the right line."""
    for ch in chapters.all_chapters():
        for t in ch.theorems:
            got = where.places(t.id)
            kinds = {what for what, _, _ in got}
            assert {"data spec", "study", "cells", "run", "bound function", "bound check", "doc", "test"} <= kinds
            assert ("figure" in kinds) == bool(t.figures), t.id
            for what, at, detail in got:
                text = _line(at)   # raises if the file or the line is not there
                if what == "figure":
                    assert text.startswith(f"def fig_{detail.split(':')[0]}("), (t.id, at)
                if what in ("bound function", "run"):
                    assert text.lstrip().startswith("def "), (t.id, what, at)
                if what == "study":
                    assert text.startswith("class "), (t.id, at)
                if what == "cells":
                    assert t.study in text, (t.id, at, text)
                if what == "doc":
                    assert text.startswith("#") or 'id="' in text, (t.id, at)
            naming = [at for what, at, detail in got if what == "bound check" and detail.startswith("names ")]
            assert naming, f"{t.id}: no line of the bound checks names it"
            assert all(t.id in _line(at) or f'["{t.id.split(".", 1)[1]}"]' in _line(at) for at in naming), t.id
    assert cli.main(["theorems", "--where", "contrastive.lemma_4_3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("contrastive.lemma_4_3\n") and "analysis/contrastive.py:" in out and "fig_bound" in out
    assert cli.main(["theorems", "--where", "contrastive.no_such"]) == 2
    assert "unknown 'contrastive.no_such'" in capsys.readouterr().err


def test_a_broken_doc_anchor_is_reported():
    assert where.doc_line("docs/theory/contrastive.md#no-such-section")[1] is None
    assert where.slug("Theorem 4.1 with Gen_M") == "theorem-41-with-gen_m"

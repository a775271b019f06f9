"""docs/theorems.md is generated from the registry and must not drift from it; the README links to it."""
from __future__ import annotations

from pathlib import Path

from experiments.engine import chapters, cli, theorem_docs

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

"""The why beside each theorem (experiments/engine/why.py): every registered theorem has an intuition of three to
six lines and a reading of its figure, its derivation anchor names a section of docs/theory/<chapter>.md that
renders without LaTeX left in the text, and the takeaway is computed from the run's judged rows (it changes when
they change). `make report PROFILE=...` builds from that profile's runs."""
from __future__ import annotations

import html
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from experiments.engine import chapters, mathhtml, report, runs, why
from theory.verdict import HOLDS, VACUOUS

ROOT = Path(__file__).resolve().parents[1]
ALL = [t for ch in chapters.all_chapters() for t in ch.theorems]


def _visible(html_text: str) -> str:
    text = re.sub(r"<math.*?</math>|<pre.*?</pre>|<code>.*?</code>", " ", html_text, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", text))


@pytest.mark.parametrize("t", ALL, ids=[t.id for t in ALL])
def test_every_theorem_has_its_why_and_a_derivation_that_renders(t):
    w = why.of(t)                                   # raises on a missing entry, an empty text, a bad length
    assert w.intuition and w.reading
    assert 3 <= len(w.intuition.splitlines()) <= 6
    md, anchor = why.doc_target(t)
    assert md == ROOT / "docs" / "theory" / f"{t.chapter}.md", t.doc
    body = why.section(t)                           # raises where no heading carries the anchor
    assert body.strip()
    text = md.read_text()
    headings = {mathhtml.slug(h) for h in re.findall(r"^#+ (.+)$", text, flags=re.M)}
    assert anchor in headings or f'<a id="{anchor}"></a>' in text
    for part in (w.intuition, w.reading, body):     # a chapter page fails on LaTeX left in its text
        visible = _visible(mathhtml.markdown(part))
        assert not mathhtml.RAW_TEX.search(visible) and "$" not in visible, (t.id, visible[:300])


def test_no_why_entry_names_a_theorem_that_is_not_registered():
    ids = {t.id for t in ALL}
    for ch in chapters.all_chapters():
        assert set(why.load(ch.name)) <= ids, sorted(set(why.load(ch.name)) - ids)
        for tid, w in why.load(ch.name).items():
            assert tid.startswith(f"{ch.name}."), tid


def test_a_missing_or_too_short_why_and_a_dangling_anchor_are_errors(monkeypatch, tmp_path):
    t = chapters.get("contrastive").theorems[0]
    monkeypatch.setattr(why, "WHY_DIR", tmp_path)
    with pytest.raises(why.WhyError, match="no entry"):
        why.of(t)
    (tmp_path / "contrastive.toml").write_text(f"[\"{t.id}\"]\nintuition = '''\none\ntwo\n'''\nreading = 'r'\n")
    with pytest.raises(why.WhyError, match="2 lines"):
        why.of(t)
    (tmp_path / "contrastive.toml").write_text(f"[\"{t.id}\"]\nintuition = 'a\\nb\\nc'\nreading = ''\n")
    with pytest.raises(why.WhyError, match="empty reading"):
        why.of(t)
    import dataclasses
    with pytest.raises(why.WhyError, match="no heading with anchor #no-such-section"):
        why.section(dataclasses.replace(t, doc="docs/theory/contrastive.md#no-such-section"))


def test_a_section_ends_at_the_next_heading_of_its_level():
    t = chapters.get("contrastive").theorems[0]       # Lemma 4.3: its section is followed by the k-negative one
    body = why.section(t)
    assert "Statement as checked" in body and "Lemma 4.3 with k negatives" not in body


@pytest.fixture(scope="session")
def ag_run(quick_results):
    root = quick_results("augmentation_graph")
    run = runs.latest(root, "augmentation_graph")
    return root, run


def test_the_takeaway_is_read_from_the_run_and_changes_with_its_numbers(ag_run, tmp_path):
    root, run = ag_run
    t = next(x for x in chapters.get("augmentation_graph").theorems if x.id.endswith("eigenvalue_bound"))
    table = pd.read_csv(root / "bounds.csv")
    rows = table[table["theorem"] == t.id]
    counts = rows["verdict"].value_counts()
    sentence = why.takeaway(t, table, run.id, "overlap")
    assert run.id in sentence
    assert f"{counts.get(HOLDS, 0)} of {len(rows)} points hold" in sentence
    assert f"{counts.get(VACUOUS, 0)} are vacuous" in sentence
    assert f"{rows['slack'].median():.3g}" in sentence
    # one verdict flipped in a copy of bounds.csv: the sentence follows
    copy = tmp_path / "bounds.csv"
    flipped = table.copy()
    i = flipped.index[(flipped["theorem"] == t.id) & (flipped["verdict"] == HOLDS)][0]
    flipped.loc[i, "verdict"] = VACUOUS
    flipped.to_csv(copy, index=False)
    again = why.takeaway(t, pd.read_csv(copy), run.id, "overlap")
    assert again != sentence
    assert f"{counts.get(HOLDS, 0) - 1} of {len(rows)} points hold" in again
    assert f"{counts.get(VACUOUS, 0) + 1} are vacuous" in again
    # and a changed slack moves the median it reports
    slacker = table.copy()
    slacker.loc[table["theorem"] == t.id, "slack"] *= 2
    assert why.takeaway(t, slacker, run.id, "overlap") != sentence


def test_the_chapter_page_shows_the_why_and_the_takeaway_of_its_run(ag_run, tmp_path):
    root, run = ag_run
    site = tmp_path / "site"
    report.build(root, site, notebooks=None, fig_root=None)
    page = (site / "augmentation_graph.html").read_text()
    table = report.verdict_table(root, run)
    for t in chapters.get("augmentation_graph").theorems:
        section = page.split(f'<h3 id="{t.id}">', 1)[1].split("<h3 id=", 1)[0]
        assert "<h4>Intuition</h4>" in section and "<h4>How to read" in section
        assert html.escape(why.takeaway(t, table, run.id, why.of(t).axis)) in section
        assert 'class="derivation"' in section or "Derivation: as for" in section
        assert f'href="theory/augmentation_graph.html#{why.doc_target(t)[1]}"' in section


def test_report_profile_selects_that_profiles_runs(ag_run, tmp_path):
    root, run = ag_run
    assert runs.latest(root, "augmentation_graph", "quick").id == run.id
    assert runs.latest(root, "augmentation_graph", "default") is None
    site = tmp_path / "site"
    report.build(root, site, notebooks=None, fig_root=None, profile="default")
    page = (site / "augmentation_graph.html").read_text()
    assert "No complete run" in page and run.id not in page
    assert "--profile default" in (site / "index.html").read_text()


def test_make_report_makes_and_reads_the_profiles_runs():
    done = subprocess.run(["make", "-n", "report", "PROFILE=default", "RESULTS=/tmp/r"], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "sslt run all --profile default" in done.stdout and "--out /tmp/r" in done.stdout
    assert "sslt report --out /tmp/r --site report --profile default --check" in done.stdout


def test_a_theorem_without_its_why_is_named_on_its_page(monkeypatch, tmp_path):
    """A plug-in chapter that has not written its why yet gets a page that says so, not a failed build."""
    monkeypatch.setattr(why, "WHY_DIR", tmp_path / "none")
    site = tmp_path / "site"
    report.build(tmp_path / "no-results", site, notebooks=None, fig_root=None)
    page = (site / "zoo.html").read_text()
    assert "No why for this theorem yet" in page and "docs/theory/why/zoo.toml" in page


def test_sslt_report_takes_a_profile(tmp_path):
    from experiments.engine import cli
    assert cli.main(["report", "--out", str(tmp_path / "none"), "--site", str(tmp_path / "site"),
                     "--profile", "default"]) == 0
    assert "of profile <b>default</b>" in (tmp_path / "site" / "index.html").read_text()

"""The theorem atlas (`sslt report`): built from quick runs of every chapter, opened in headless Chromium (every
image loads, no console error, every link between pages resolves, no network request, no LaTeX left in the text),
and showing the registry's statements as MathML. The browser tests skip, saying why, where Chromium is absent."""
from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from experiments.engine import chapters, cli, runs
from experiments.engine import report

# One pytest-xdist worker runs this file (`make test` uses --dist loadgroup): its fixtures, a copy of every
# chapter's quick run and one built site, are then made once, not once per worker.
# (Session scope, not module: a worker may interleave other files between these tests, and module fixtures
# would then be built again each time the file resumes.)
pytestmark = pytest.mark.xdist_group("test_report")

ROOT = Path(__file__).resolve().parents[1]


def _chromium() -> str:
    found = report.chromium_binary()
    if found:
        return found
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "chromium"], capture_output=True)
    found = report.chromium_binary()
    if not found:
        pytest.skip("the browser check needs headless Chromium: `sudo apt-get install -y chromium` "
                    "(or `make chromium`)")
    return found


@pytest.fixture(scope="session")
def results(quick_results, tmp_path_factory):
    """One results directory holding a quick run of every registered chapter."""
    root = tmp_path_factory.mktemp("atlas_results")
    for name in chapters.names():
        shutil.copytree(quick_results(name), root, dirs_exist_ok=True)
    return root


@pytest.fixture(scope="session")
def site(results, quick_figures, tmp_path_factory):
    notebooks = tmp_path_factory.mktemp("notebook_html")
    for name in chapters.names():   # stand-ins for `make notebooks` output, so the notebook links are exercised
        (notebooks / f"{name}.html").write_text(f"<!DOCTYPE html><html><body><h1>{name}</h1></body></html>")
    out = tmp_path_factory.mktemp("atlas") / "report"
    # the session's one drawing of each quick run, as `make report` hands `sslt figures`' output to the atlas
    # (test_the_cli_builds_the_site has the atlas draw its own)
    fig_root = {quick_figures(name)[0] for name in chapters.names()}.pop()
    report.build(results, out, notebooks=notebooks, fig_root=fig_root)
    return out


def test_the_cli_builds_the_site(quick_results, tmp_path):
    one = quick_results("augmentation_graph")     # one chapter with a run; the others get theorem-only pages
    assert cli.main(["report", "--out", str(one), "--site", str(tmp_path / "site")]) == 0
    assert (tmp_path / "site" / "index.html").is_file()
    docs = {p.stem for p in (ROOT / "docs").glob("*.md")} - {"start-here"}     # start-here is the index
    assert {p.stem for p in (tmp_path / "site").glob("*.html")} == {"index", *chapters.names(), *docs}
    theory = {p.stem for p in (tmp_path / "site" / "theory").glob("*.html")}
    assert "notation" in docs and theory >= set(chapters.names())


def test_index_lists_every_chapter_and_theorem_with_status_and_counts(site, results):
    index = (site / "index.html").read_text()
    for ch in chapters.all_chapters():
        assert f'href="{ch.name}.html"' in index
        run = runs.latest(results, ch.name)
        assert run.describe().replace("·", "&middot;") in index or run.describe() in index
        for t in ch.theorems:
            assert f'href="{ch.name}.html#{t.id}"' in index
    assert "holds " in index and "violated " in index


def test_chapter_pages_show_figures_verdicts_command_and_notebook(site, results):
    for ch in chapters.all_chapters():
        page = (site / f"{ch.name}.html").read_text()
        run = runs.latest(results, ch.name)
        assert run.describe() in page
        assert f"sslt run {ch.name} --profile quick" in page and "sslt report" in page
        assert f'href="notebooks/{ch.name}.html"' in page
        for fig in ch.figures:
            assert f'src="figures/{ch.name}/{fig}.png"' in page
            assert (site / "figures" / ch.name / f"{fig}.png").stat().st_size > 0
        for t in ch.theorems:
            assert f'id="{t.id}"' in page
        assert "Worst point of" in page and "median slack" in page
    assert "https://" not in "".join(p.read_text() for p in site.glob("*.html")).replace("http://www.w3.org", "")


def test_every_page_opens_in_headless_chromium(site):
    problems = report.check_site(site, _chromium())
    # every page strictly, docs/theory's derivations included (their notation is $...$ math now, issue 19 §3)
    assert not problems, "\n".join(problems)


def test_every_atlas_page_links_the_notation_and_the_first_page(site):
    for page in site.rglob("*.html"):
        if page.parent.name == "notebooks":
            continue
        text = page.read_text()
        up = "../" if page.parent != site else ""
        assert f'href="{up}notation.html"' in text and f'href="{up}index.html"' in text, page
    index = (site / "index.html").read_text()
    assert "<h1 id=\"start-here\">Start here</h1>" in index
    assert index.index("Start here") < index.index("<h1 id=\"atlas\">")
    for ch in chapters.names():
        assert f'href="theory/{ch}.html"' in (site / f"{ch}.html").read_text()
        assert (site / "theory" / f"{ch}.html").is_file()


def test_statements_and_assumptions_are_mathml_not_latex(site):
    page = (site / "self_prediction.html").read_text()
    body = page.split("<h2>Theorems</h2>", 1)[1].split("<h2>Verdicts", 1)[0]
    visible = report.html.unescape(re.sub(r"<math.*?</math>", "", body, flags=re.S))
    visible = re.sub(r"<[^>]+>", "", visible)
    assert not re.search(r"\\[A-Za-z]+|[_^]\{|\$", visible), visible[:400]
    ch = chapters.get("self_prediction")
    # one display formula per statement (the derivations below each add their own display math)
    statements = re.findall(r'<div class="formula">(<math[^>]*>)', body)
    assert len(statements) == len(ch.theorems) and all('display="block"' in m for m in statements)
    assert "<code>" not in body.split("It assumes")[1].split("</ul>")[0]


def test_the_browser_check_can_fail(site, tmp_path):
    """A broken image, a dangling link and a console error are each reported."""
    bad = tmp_path / "site"   # the index and the broken page only: opening every page again proves nothing more
    bad.mkdir()
    shutil.copy2(site / "index.html", bad / "index.html")
    (bad / "broken.html").write_text(
        "<!DOCTYPE html><html><body><img src=\"figures/nothing.png\"><a href=\"missing.html\">x</a>"
        "<a href=\"index.html#no-such-anchor\">y</a><script>console.error('boom')</script></body></html>")
    problems = report.check_site(bad, _chromium())
    text = "\n".join(problems)
    assert "broken.html: image figures/nothing.png did not load" in text
    assert "broken.html: link missing.html does not resolve" in text
    assert "no anchor 'no-such-anchor'" in text
    assert "boom" in text


def test_statements_shown_come_from_the_registry(monkeypatch, tmp_path):
    reg = chapters._registry()
    name = "contrastive"
    ch = reg[name]
    new = r"L_{sup}^{\mu}(f) \le 7 + \mathrm{edited}(\tau)"
    changed = dataclasses.replace(ch.theorems[0], statement=new)
    monkeypatch.setitem(reg, name, dataclasses.replace(ch, theorems=(changed, *ch.theorems[1:])))
    site = tmp_path / "site"
    report.build(tmp_path / "no-results", site, notebooks=None, fig_root=None)
    page = (site / f"{name}.html").read_text()
    assert report.html.escape(new, quote=True) in page and ch.theorems[0].statement not in page
    assert report.mathhtml.formula(new) in page and "<mi>&#x003C4;</mi>" in report.mathhtml.formula(new)
    assert "No complete run" in page
    # and the notebooks' helper returns the edited statement too
    assert new in report.theorems_markdown(name)


def test_a_statement_that_cannot_be_rendered_is_an_error_naming_it(monkeypatch, tmp_path):
    reg = chapters._registry()
    ch = reg["contrastive"]
    new = r"\notamacro{x} \le \alsonot"
    changed = dataclasses.replace(ch.theorems[0], statement=new)
    monkeypatch.setitem(reg, "contrastive", dataclasses.replace(ch, theorems=(changed, *ch.theorems[1:])))
    with pytest.raises(report.ReportError, match=re.escape(changed.id) + ".*alsonot"):
        report.build(tmp_path / "no-results", tmp_path / "site", notebooks=None, fig_root=None)
    assert report.main(tmp_path / "no-results", tmp_path / "site2") == 2


def test_an_assumption_with_latex_outside_dollars_is_an_error(monkeypatch, tmp_path):
    reg = chapters._registry()
    ch = reg["self_prediction"]
    t = next(t for t in ch.theorems if t.assumptions)
    bad = dataclasses.replace(t.assumptions[0], statement=r"rank needs d_2 \ge n_{latent}")
    changed = dataclasses.replace(t, assumptions=(bad, *t.assumptions[1:]))
    monkeypatch.setitem(reg, "self_prediction", dataclasses.replace(
        ch, theorems=tuple(changed if x.id == t.id else x for x in ch.theorems)))
    with pytest.raises(report.ReportError, match="outside"):
        report.build(tmp_path / "no-results", tmp_path / "site", notebooks=None, fig_root=None)

"""The browser check (experiments/engine/browser.py) fails on each fault it is there for, each shown on a tiny page
of its own: an image that does not load, a console error, an uncaught exception, a link that does not resolve, a
missing anchor, a request that leaves file:// (an image, a script, a fetch), and LaTeX left in the rendered text
($$, \\frac, _{) — while TeX inside code, and math that MathJax (the local copy) has typeset, pass. The formula
helpers (experiments/engine/mathhtml.py) and the registry's statements are checked here too."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from experiments.engine import browser, chapters, mathhtml

CLEAN = "<p>fine</p><a href=\"#here\">here</a><span id=\"here\"></span><a href=\"other.html\">other</a>"


def _chromium() -> str:
    found = browser.binary()
    if not found:
        pytest.skip("the browser check needs headless Chromium: `sudo apt-get install -y chromium` "
                    "(or `make chromium`)")
    return found


def _problems(tmp_path: Path, body: str, head: str = "") -> list[str]:
    site = tmp_path / "pages"
    site.mkdir(exist_ok=True)
    (site / "other.html").write_text("<!DOCTYPE html><html><body><p>other</p></body></html>")
    (site / "page.html").write_text(f"<!DOCTYPE html><html><head>{head}</head><body>{body}</body></html>")
    return [p for p in browser.check([site], _chromium()) if "page.html" in p]


def test_a_clean_page_passes(tmp_path):
    assert _problems(tmp_path, CLEAN + "<pre>$$ \\frac{a}{b} $$ x_{1}</pre><code>\\le</code>") == []


@pytest.mark.parametrize("body, expected", [
    ("<img src=\"figures/none.png\">", "image figures/none.png did not load"),
    ("<script>console.error('boom')</script>", "console: boom"),
    ("<script>undefinedFunction()</script>", "console: ReferenceError: undefinedFunction is not defined"),
    ("<a href=\"missing.html\">x</a>", "link missing.html does not resolve"),
    ("<a href=\"other.html#nowhere\">x</a>", "no anchor 'nowhere' in other.html"),
    ("<a href=\"#nowhere\">x</a>", "no anchor 'nowhere' in page.html"),
    ("<a href=\"https://example.org/\">x</a>", "link 'https://example.org/' leaves the site"),
    ("<img src=\"https://cdn.example.org/a.png\">", "network request https://cdn.example.org/a.png"),
    ("<script src=\"http://cdn.example.org/mj.js\"></script>", "network request http://cdn.example.org/mj.js"),
    ("<script>fetch('https://api.example.org/x').catch(() => 0)</script>", "network request https://api.example.org/x"),
    ("<p>$$ L_{sup} \\le 1 $$</p>", "raw TeX '$$'"),
    ("<p>the bound \\frac{a}{b}</p>", "raw TeX '\\\\frac'"),
    ("<p>lambda_{d+1}</p>", "raw TeX '_{'"),
], ids=["image", "console", "exception", "link", "anchor", "own-anchor", "external-link", "net-image", "net-script",
        "net-fetch", "dollars", "frac", "subscript"])
def test_each_fault_fails_the_check(tmp_path, body, expected):
    problems = _problems(tmp_path, CLEAN + body)
    assert any(expected in p for p in problems), problems


def test_math_typeset_by_the_local_mathjax_passes_and_untypeset_math_fails(tmp_path):
    mathjax = Path(__import__("jupyter_server_mathjax").__file__).parent / "static"
    template = (Path(__file__).resolve().parents[1] / "notebooks" / "_offline" / "index.html.j2").read_text()
    config = re.search(r'<script type="text/x-mathjax-config">.*?</script>', template, re.S).group(0)
    shutil.copytree(mathjax, tmp_path / "pages" / "mathjax")
    head = ("<script src=\"mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe\"></script>" + config +
            "<script type=\"text/x-mathjax-config\">MathJax.Hub.Config({tex2jax: {inlineMath: [['$','$']]}});</script>")
    body = CLEAN + "<p>$$ L_{sup}^{\\mu}(f) \\le \\frac{L_{un}(f) - \\tau}{1 - \\tau} $$ and $\\mathbb{E} x_{1}$</p>"
    assert _problems(tmp_path, body, head) == []
    shutil.rmtree(tmp_path / "pages" / "mathjax")   # MathJax gone: the same page shows its TeX, and fails
    problems = _problems(tmp_path, body, head)
    assert any("raw TeX '$$'" in p for p in problems) and any("did not resolve" in p or "ERR_FILE_NOT_FOUND" in p
                                                              for p in problems), problems


def test_pages_are_found_recursively_without_the_mathjax_copy(tmp_path):
    for rel in ("index.html", "theory/a.html", "notebooks/b.html", "notebooks/mathjax/test/c.html"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("<html></html>")
    assert [p.relative_to(tmp_path).as_posix() for p in browser.pages(tmp_path)] == [
        "index.html", "notebooks/b.html", "theory/a.html"]


def test_every_registry_statement_renders_as_mathml():
    for ch in chapters.all_chapters():
        for t in ch.theorems:
            out = mathhtml.formula(t.statement)
            assert out.startswith("<math alttext=") and "\\" not in re.sub(r'alttext="[^"]*"', "", out), t.id
            for text in (t.measured or "", t.trivial.statement, *(a.statement for a in t.assumptions)):
                mathhtml.prose(text)                         # LaTeX outside $...$ raises


def test_assumptions_read_as_prose_plus_a_formula():
    for ch in chapters.all_chapters():
        for t in ch.theorems:
            for a in t.assumptions:
                outside = "".join(re.split(r"\$[^$]+\$", a.statement))
                assert not mathhtml.RAW_TEX.search(outside), (t.id, a.name)
                assert len(re.findall(r"[A-Za-z]{3,}", outside)) >= 2, (t.id, a.name, "no prose around the formula")


def test_the_formula_helpers_refuse_what_would_show_as_source():
    with pytest.raises(mathhtml.MathError, match="notamacro"):
        mathhtml.formula(r"\notamacro{x}")
    with pytest.raises(mathhtml.MathError, match="outside"):
        mathhtml.prose(r"rank d_2 \ge n_{latent}")
    assert "<math" in mathhtml.prose(r"rank $d_2 \ge n_{latent}$") and mathhtml.prose("no math") == "no math"
    assert "arg" in mathhtml.formula(r"g = \arg\max_y p(y)")
    page = mathhtml.markdown("# A b\n\n[n](notation.md) $\\tau$\n", links=lambda u: u.replace(".md", ".html"))
    assert '<h1 id="a-b">' in page and 'href="notation.html"' in page and "<math" in page


def test_a_notebook_rendered_as_make_notebooks_does_loads_nothing_from_the_network(tmp_path):
    """The Makefile's nbconvert options (template notebooks/_offline, the local MathJax) on a one-cell notebook:
    no CDN script in the page, and in Chromium its formula is typeset with nothing requested from the network."""
    import nbformat
    from nbconvert import HTMLExporter
    from traitlets.config import Config
    root = Path(__file__).resolve().parents[1]
    make = (root / "Makefile").read_text()
    url = re.search(r"--HTMLExporter\.mathjax_url='([^']+)'", make).group(1)
    assert "--template _offline" in make and "--TemplateExporter.extra_template_basedirs=notebooks" in make
    cfg = Config()
    cfg.TemplateExporter.extra_template_basedirs = [str(root / "notebooks")]
    cfg.HTMLExporter.template_name = "_offline"
    cfg.HTMLExporter.mathjax_url = url
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
        "The bound: $$ L_{sup}^{\\mu}(f) \\le \\frac{L_{un}(f) - \\tau}{1 - \\tau} $$ "
        "with $\\tau = \\sum_c \\rho(c)^2$.")])
    page, _ = HTMLExporter(config=cfg).from_notebook_node(nb)
    assert not re.search(r"<script[^>]+src=\"https?://", page), "a script from the network"
    site = tmp_path / "pages"
    site.mkdir()
    (site / "nb.html").write_text(page)
    shutil.copytree(Path(__import__("jupyter_server_mathjax").__file__).parent / "static", site / "mathjax")
    assert browser.check([site], _chromium()) == []

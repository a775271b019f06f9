"""Teaching material: the theorem atlas (a static, offline site built from the latest runs) and the helpers the
chapter notebooks use.

Everything shown about a theorem — its one-line statement, its assumptions, its status — is read from the
registry (``chapters.get(name).theorems``) at the moment a page or a notebook cell is rendered, so a notebook, the
atlas and ``docs/theorems.md`` cannot drift apart. Verdicts come from the latest complete run of each chapter
(``runs.latest``), judged by ``runner.run_table`` and summarised by ``check.theorem_records``; figures are the
chapter's own drawing functions (``chapter.figures``), never re-implemented here.

``sslt report [--out results] [--site report]`` writes ``<site>/index.html`` (docs/start-here.md, then every
chapter, every theorem with its status and verdict counts), ``<site>/notation.html`` (docs/notation.md),
``<site>/theory/<chapter>.html`` (docs/theory/<chapter>.md) and ``<site>/<chapter>.html`` (statement, assumptions,
and the why of each theorem from ``why``: its intuition and how to read its figure (docs/theory/why/<chapter>.toml),
a takeaway computed from the run's judged rows and its derivation cut from docs/theory/<chapter>.md; then every
figure of the run with its provenance, the verdict table with each theorem's worst point, the command that
regenerates the page, and the chapter's notebook). ``--profile`` builds from the latest run of that profile only.
Formulas are MathML converted from the registry's LaTeX (``mathhtml``); one the converter cannot render is an error
naming it, never LaTeX source on a page. Pages load nothing from the network: no scripts, fonts or styles; the
notebook pages load the MathJax copied beside them.
"""
from __future__ import annotations

import html
import posixpath
import re
import shutil
import tempfile
from pathlib import Path

from tqdm import tqdm

from analysis import figures as figs
from experiments.engine import browser, chapters, check, mathhtml, runner, runs, store, why
from experiments.engine.fingerprint import fingerprint
from theory.verdict import (ABOVE, BELOW, BOUND_VERDICTS, BROKEN, EXACT, HOLDS, NOT_MET, UNDETERMINED, VACUOUS,
                            VERDICTS_OF, VIOLATED)

NOTEBOOK_HTML = Path("docs/notebooks")   # where `make notebooks` renders each chapter's notebook
DOCS = Path(__file__).resolve().parents[2] / "docs"
MATHJAX_DIR = "mathjax"                  # the MathJax copy beside the notebook pages (`make notebooks`)


class ReportError(ValueError):
    """A page that would show the reader something broken (a formula as LaTeX source)."""


# --------------------------------------------------------------------------------------------------------------
# The registry, in words (notebooks and the atlas both use these)

def _math_in_text(text: str) -> str:
    """An assumption statement is prose with its formulas in ``$...$``: MathJax renders them in a notebook."""
    return mathhtml.markdown_math(text)


def theorem_markdown(t) -> str:
    """One theorem as Markdown with LaTeX: id, paper and number, status, the statement, what it is compared with,
    its trivial value and every declared assumption — all read from the ``Theorem`` itself."""
    lines = [f"### `{t.id}` — {t.paper}, {t.number}",
             "",
             f"*status:* **{t.status}** ({t.kind}){'  ·  notes: ' + t.doc if t.doc else ''}",
             "",
             f"$$ {t.statement} $$",
             ""]
    if t.measured:
        lines += [f"*Measured:* {t.measured}", ""]
    if t.trivial.statement:
        lines += [f"*Trivial value:* {t.trivial.statement}", ""]
    if t.assumptions:
        lines.append("*Assumes* (each is checked numerically on every row; where one fails the verdict is "
                     "\"assumption not met\", never \"violated\"):")
        lines.append("")
        lines += [f"- **{a.name}**: {_math_in_text(a.statement)}" for a in t.assumptions]
    else:
        lines.append("*Assumes:* nothing beyond the definitions.")
    if t.terms:
        lines += ["", "*Terms* (the `bounds.csv` columns its bound takes): " + ", ".join(f"`{x}`" for x in t.terms)]
    return "\n".join(lines) + "\n"


def theorems_markdown(name: str, ids=None) -> str:
    """The theorems of chapter ``name`` (or those of ``ids``), as the registry states them now."""
    ch = chapters.get(name)
    chosen = [t for t in ch.theorems if ids is None or t.id in ids]
    if ids is not None and len(chosen) != len(ids):
        missing = set(ids) - {t.id for t in chosen}
        raise KeyError(f"theorem: {sorted(missing)} not in chapter {name!r}")
    return f"## {ch.name}: {ch.summary}\n\n" + "\n".join(theorem_markdown(t) for t in chosen)


# --------------------------------------------------------------------------------------------------------------
# Live training for a notebook: the engine's own cells, with a progress bar, recorded as a run

def train(name: str, cfg, root: Path, profile: str = "quick", overrides=(), progress: bool = True) -> runs.Run:
    """Train every cell of ``cfg`` (one at a time, a tqdm bar over cells), then record them as one run with
    ``runner.run_sweep`` (which finds them all done and only writes the run's record)."""
    root = Path(root)
    code = fingerprint(chapters.get(name).run_module)["code"]
    done = set(store.finished(root, name))
    todo = [(cid, cell) for cid, cell in runner.plan(name, cfg) if store.cell_key(cid, code) not in done]
    for cid, cell in tqdm(todo, desc=f"training {name}", unit="cell", disable=not progress):
        runner.run_one(name, cell, cid, str(root), "cpu", code)
    return runner.run_sweep(name, cfg, root, 1, "cpu", profile, list(overrides)).run


def verdict_table(root: Path, run: runs.Run):
    """The judged bound checks of ``run`` (one row per theorem and point, with every term)."""
    return runner.run_table(Path(root), run)


def records(root: Path, run: runs.Run, table=None) -> list[dict]:
    """Per theorem of the run's chapter: counts, slack, assumptions and the worst point with its terms."""
    table = verdict_table(root, run) if table is None else table
    return check.theorem_records(table, chapters.get(run.experiment).theorems)


def draw(root: Path, run: runs.Run, names, out: Path, judged=None) -> list[Path]:
    """Draw the chapter's own figures ``names`` from the run's rows and judged table (``verdict_table`` unless
    given) into ``out``; returns the PNG paths."""
    ch = chapters.get(run.experiment)
    rows = store.load_rows(Path(root), run.experiment, run.cells)
    judged = verdict_table(root, run) if judged is None else judged
    chosen = {n: ch.figures[n] for n in ([names] if isinstance(names, str) else names)}
    return [p for p in figs.draw(chosen, rows, judged, Path(out), run.describe()) if p.suffix == ".png"]


# --------------------------------------------------------------------------------------------------------------
# Formulas: MathML from the registry's LaTeX (experiments/engine/mathhtml.py)

def formula_html(t) -> str:
    """A theorem's statement as a display ``<math>`` element; a statement that cannot be rendered is an error."""
    try:
        return mathhtml.formula(t.statement, "block")
    except mathhtml.MathError as err:
        raise ReportError(f"theorem {t.id}: {err}") from err


def prose_html(t, text: str) -> str:
    """Prose of theorem ``t`` (an assumption, what it measures) with its ``$...$`` math as MathML."""
    try:
        return mathhtml.prose(text)
    except mathhtml.MathError as err:
        raise ReportError(f"theorem {t.id}: {err}") from err


# --------------------------------------------------------------------------------------------------------------
# The site

CSS = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1,h2,h3{line-height:1.2}table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:3px 7px;
font-size:.92em;vertical-align:top}th{background:#f3f3f3}code{background:#f6f6f6;padding:0 3px}
.formula{background:#fbfbf7;border:1px solid #e4e4d8;padding:.5em;margin:.4em 0;overflow-x:auto}
.muted{color:#666;font-size:.9em}.violated{color:#b00;font-weight:bold}.holds{color:#070}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #ddd}pre{background:#f6f6f6;padding:.6em;
overflow-x:auto}nav{margin-bottom:1em}.takeaway{background:#f2f7fb;border-left:3px solid #68a;padding:.4em .7em}
details.derivation{border:1px solid #e4e4d8;padding:.3em .8em;margin:.6em 0 1.4em}h4{margin:.9em 0 .2em}"""

_COUNT_COLUMNS = VERDICTS_OF
_SHORT = {HOLDS: "holds", VIOLATED: "violated", VACUOUS: "vacuous", NOT_MET: "not met", UNDETERMINED: "undeterm.",
          ABOVE: "above", BELOW: "below", EXACT: "exact", BROKEN: "broken"}


def _e(x) -> str:
    return html.escape(str(x), quote=True)


def _nav(up: str = "") -> str:
    """The links every atlas page carries: the first page, the notation, the chapters."""
    chs = " · ".join(f"<a href=\"{up}{_e(n)}.html\">{_e(n)}</a>" for n in chapters.names())
    return (f"<nav><a href=\"{up}index.html\">start here &amp; all theorems</a> · <a href=\"{up}notation.html\">"
            f"notation</a> · {chs}</nav>")


def _page(title: str, body: str, up: str = "") -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{_e(title)}</title>"
            f"<style>{CSS}</style></head>\n<body>\n{_nav(up)}\n{body}\n</body></html>\n")


def _doc_link(url: str, up: str = "") -> str:
    """A link in a rendered docs/*.md: to another document the site renders, its page; anything else unchanged
    (the browser check then reports it if it does not resolve)."""
    path, _, anchor = url.partition("#")
    rendered = {p.name: f"{p.stem}.html" for p in DOCS.glob("*.md")}
    rendered.update({f"theory/{p.name}": f"theory/{p.stem}.html" for p in (DOCS / "theory").glob("*.md")})
    rendered["start-here.md"] = "index.html"
    key = path[len("../"):] if up and path.startswith("../") else (f"theory/{path}" if up and path else path)
    if key in rendered:
        return f"{up}{rendered[key]}" + (f"#{anchor}" if anchor else "")
    if key.startswith("img/"):
        return f"{up}{key}"       # docs/img is copied into the site
    return url


def _doc_page(md: Path, title: str, up: str = "") -> str:
    """A docs/*.md file as an atlas page, its math as MathML."""
    try:
        body = mathhtml.markdown(md.read_text(), links=lambda u: _doc_link(u, up))
    except mathhtml.MathError as err:
        raise ReportError(f"{md.name}: {err}") from err
    return _page(title, f"{body}\n<p class=\"muted\">Rendered from <code>docs/{_e(md.relative_to(DOCS))}</code>.</p>",
                 up)


def _slack_cell(kind: str, rec: dict) -> str:
    """What the median of a theorem's ``slack`` column means, by kind: a bound's slack (bound ÷ measured, 1 is
    tight); a reference's ratio (reference ÷ measured, not a slack: a reference is not a bound), and where the
    reference is at or below 0 at every judged point (a lower bound such as 1/2 − √(d ln N / N) at small N) it
    says nothing there, which a negative "slack" would hide; an identity has none (it is exact or broken)."""
    if kind == "identity" or rec.get("median_slack") is None:
        return ""
    if kind != "reference":
        return _fmt(rec["median_slack"])
    text = f"ratio {_fmt(rec['median_slack'])}"
    if rec.get("judged") and rec.get("reference_nonpositive") == rec["judged"]:
        text += " (reference ≤ 0 at every point: it says nothing here)"
    return text


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _counts_cells(kind: str, counts: dict) -> str:
    cols = _COUNT_COLUMNS[kind]
    out = []
    for c in cols:
        n = counts.get(c, 0)
        cls = " class=\"violated\"" if c == VIOLATED and n else ""
        out.append(f"<td{cls}>{_SHORT[c]} {n}</td>")
    out += ["<td></td>"] * (len(BOUND_VERDICTS) - len(cols))
    return "".join(out)


def _command(root: Path, site: Path, run: runs.Run | None, name: str) -> str:
    if run is None:
        return f"sslt run {name} --profile quick --out {root} && sslt report --out {root} --site {site}"
    sets = "".join(f" --set {o}" for o in run.overrides)
    profile = run.profile or "default"
    return (f"sslt run {name} --profile {profile}{sets} --out {root} && "
            f"sslt report --out {root} --site {site} --profile {profile}")


def _latest_figures(fig_root: Path | None, run: runs.Run, names) -> dict[str, Path] | None:
    """The PNGs `sslt figures` already drew from exactly this run, if every one is there."""
    if fig_root is None:
        return None
    d = Path(fig_root) / run.experiment
    stamp = d / "RUN"
    if not stamp.is_file() or stamp.read_text().strip() != run.describe():
        return None
    found = {n: d / f"{n}.png" for n in names}
    return found if all(p.is_file() for p in found.values()) else None


def _header_section(ch, root: Path, site: Path, run, notebook: str | None) -> list[str]:
    """The page's title, summary, notebook link, the run it was built from and the command that rebuilds it."""
    name = ch.name
    body = [f"<h1>{_e(name)}</h1>", f"<p>{_e(ch.summary)}</p>",
            f"<p>Derivations, what is proven and what is only a reference: <a href=\"theory/{_e(name)}.html\">"
            f"docs/theory/{_e(name)}.md</a>. Symbols: <a href=\"notation.html\">notation</a>.</p>"]
    if notebook:
        body.append(f"<p>Notebook: <a href=\"{_e(notebook)}\">the executed notebook of this chapter</a> "
                    f"(source <code>notebooks/{_e(name)}.py</code>).</p>")
    else:
        body.append(f"<p class=\"muted\">Notebook: <code>notebooks/{_e(name)}.py</code> (not rendered yet: "
                    f"<code>make notebooks</code>, then rebuild this site).</p>")
    if run is None:
        body.append(f"<p class=\"violated\">No complete run of {_e(name)} under <code>{_e(root)}</code>: the "
                    "theorems are listed, nothing is judged.</p>")
    else:
        body.append(f"<p>Built from <code>{_e(run.describe())}</code> (finished {_e(run.finished)}, "
                    f"{len(run.cells)} cells).</p>")
    body.append(f"<p>Regenerate this page:</p><pre>{_e(_command(root, site, run, name))}</pre>")
    return body


def _theorems_section(ch, site: Path, recs, run=None, table=None) -> list[str]:
    """Each theorem as the registry states it (formula, status, assumptions with this run's counts), then its why:
    intuition, how to read its figure, the takeaway of this run and the derivation from docs/theory."""
    by_id = {r["theorem"]: r for r in recs}
    body = ["<h2>Theorems</h2>"]
    shown: dict[str, str] = {}      # derivation anchor -> the first theorem of the page that showed it
    for t in ch.theorems:
        formula = f"<div class=\"formula\">{formula_html(t)}</div>"
        rec = by_id.get(t.id, {})
        body.append(f"<h3 id=\"{_e(t.id)}\"><code>{_e(t.id)}</code> — {_e(t.paper)}, {_e(t.number)}</h3>")
        body.append(f"<p>status <b>{_e(t.status)}</b> ({_e(t.kind)}). It compares "
                    f"<i>{prose_html(t, t.measured or 'the measurement')}</i> with its bound, and the trivial value "
                    f"is <i>{prose_html(t, t.trivial.statement)}</i>.</p>")
        body.append(formula)
        if t.assumptions:
            met = {a["name"]: a for a in rec.get("assumptions", [])}
            items = []
            for a in t.assumptions:
                m = met.get(a.name)
                state = "" if m is None else f" <span class=\"muted\">(this run: {m['met']} met, {m['not_met']} not met)</span>"
                text = prose_html(t, a.statement)
                items.append(f"<li><b>{_e(a.name)}</b>: {text}{state}</li>")
            body.append("<p>It assumes:</p><ul>" + "".join(items) + "</ul>")
        else:
            body.append("<p>It assumes nothing beyond the definitions.</p>")
        if t.doc:
            target = _doc_link(t.doc[len("docs/"):]) if t.doc.startswith("docs/") else t.doc
            link = (f"<a href=\"{_e(target)}\"><code>{_e(t.doc)}</code></a>" if target.split("#")[0].endswith(".html")
                    else f"<code>{_e(t.doc)}</code>")
            body.append(f"<p class=\"muted\">Derivation and known looseness: {link}</p>")
        body += _why_html(t, ch, run, table, shown)
    return body


def _md_html(t, text: str, links=None) -> str:
    try:
        return mathhtml.markdown(text, links=links)
    except mathhtml.MathError as err:
        raise ReportError(f"theorem {t.id}: {err}") from err


def _excerpt_link(url: str, chapter: str) -> str:
    """A link of docs/theory/<chapter>.md as seen from a chapter page at the site's root."""
    if url.startswith("#"):
        return f"theory/{chapter}.html{url}"
    target = _doc_link(url, up="../")
    if "://" in target or target.startswith("mailto:"):
        return target
    path, sep, anchor = target.partition("#")
    return posixpath.normpath(posixpath.join("theory", path)) + sep + anchor


def _why_html(t, ch, run, table, shown: dict) -> list[str]:
    """Intuition, how to read the figure, the run's takeaway and the derivation (docs/theory's section)."""
    try:
        w = why.of(t)
        excerpt = why.section(t)
    except why.WhyError as err:     # a plug-in chapter may not have written it yet: say so on the page
        return [f"<p class=\"violated\">No why for this theorem yet: {_e(str(err))}.</p>"]
    figs = "".join(f' <a href="#figure-{_e(f)}">{_e(f)}</a>' for f in t.figures if f in ch.figures)
    out = [f"<h4>Intuition</h4>{_md_html(t, w.intuition)}",
           f"<h4>How to read {'its figure' if t.figures else 'its rows'}</h4>{_md_html(t, w.reading)}"
           + (f"<p class=\"muted\">Figures of this page that draw it:{figs}</p>" if figs else "")]
    if run is not None and table is not None:
        out.append(f"<p class=\"takeaway\"><b>Takeaway of this run</b> (computed from its judged rows): "
                   f"{_e(why.takeaway(t, table, run.id, w.axis))}</p>")
    md, anchor = why.doc_target(t)
    source = f"docs/{md.relative_to(DOCS).as_posix()}#{anchor}"
    link = f'<a href="{_e(_excerpt_link("#" + anchor, ch.name))}">{_e(source)}</a>'
    if anchor in shown:
        out.append(f"<p>Derivation: as for <a href=\"#{_e(shown[anchor])}\"><code>{_e(shown[anchor])}</code></a>"
                   f" ({link}).</p>")
        return out
    shown[anchor] = t.id
    body = _md_html(t, excerpt, links=lambda u: _excerpt_link(u, ch.name))
    body = re.sub(r"<h([1-6]) id=\"[^\"]*\">", lambda m: f"<h{min(6, int(m.group(1)) + 2)}>", body)
    body = re.sub(r"</h([1-6])>", lambda m: f"</h{min(6, int(m.group(1)) + 2)}>", body)
    out.append(f"<details class=\"derivation\" open><summary><b>Derivation</b>, from {link}</summary>{body}"
               "</details>")
    return out


def _verdicts_section(recs) -> list[str]:
    """The run's verdict counts per theorem, then each theorem's worst point with its terms."""
    body = ["<h2>Verdicts of this run</h2>",
            "<table><tr><th>theorem</th><th>status</th><th>points</th><th colspan=\"5\">verdicts</th>"
            "<th>median slack (reference: ratio)</th><th>worst slack</th></tr>"]
    for r in recs:
        ms = _slack_cell(r["kind"], r)
        ws = "" if r.get("worst_slack") is None else _fmt(r["worst_slack"])
        body.append(f"<tr><td><a href=\"#{_e(r['theorem'])}\">{_e(r['theorem'])}</a></td><td>{_e(r['status'])}"
                    f"</td><td>{r['points']}</td>{_counts_cells(r['kind'], r.get('counts', {}))}<td>{ms}</td>"
                    f"<td>{ws}</td></tr>")
    body.append("</table>")
    body.append("<p class=\"muted\">Median slack = median bound ÷ measured over judged points; the worst point "
                "is the one whose measurement comes closest to (or furthest above) its bound, in combined "
                "standard errors.</p>")
    for r in recs:
        wp = r.get("worst_point")
        if not wp:
            if r.get("note"):
                body.append(f"<p><code>{_e(r['theorem'])}</code>: {_e(r['note'])}</p>")
            continue
        cells = "".join(f"<tr><th>{_e(k)}</th><td>{_e(_fmt(v))}</td></tr>" for k, v in wp.items())
        body.append(f"<h3>Worst point of <code>{_e(r['theorem'])}</code></h3><table>{cells}</table>")
    return body


def _figures_section(ch, root: Path, site: Path, run, fig_root) -> list[str]:
    """The run's figures, copied from an up-to-date figures directory or drawn afresh, each with its caption."""
    name = ch.name
    body = ["<h2>Figures</h2>"]
    figdir = site / "figures" / name
    figdir.mkdir(parents=True, exist_ok=True)
    ready = _latest_figures(fig_root, run, list(ch.figures))
    if ready is None:
        with tempfile.TemporaryDirectory() as tmp:
            drawn = {p.stem: p for p in draw(root, run, list(ch.figures), Path(tmp))}
            for stem, p in drawn.items():
                shutil.copy2(p, figdir / p.name)
    else:
        for p in ready.values():
            shutil.copy2(p, figdir / p.name)
    for fname, fn in ch.figures.items():
        png = figdir / f"{fname}.png"
        if not png.is_file():
            body.append(f"<p class=\"violated\">figure {_e(fname)}: not drawn</p>")
            continue
        doc = (fn.__doc__ or "").strip().split("\n")[0]
        body.append(f"<figure id=\"figure-{_e(fname)}\">"
                    f"<img src=\"figures/{_e(name)}/{_e(png.name)}\" alt=\"{_e(fname)}\">"
                    f"<figcaption><b>{_e(fname)}</b>. {_e(doc)}<br><span class=\"muted\">from "
                    f"{_e(run.describe())}</span></figcaption></figure>")
    return body


def _chapter_page(ch, root: Path, site: Path, run, table, recs, notebook: str | None, fig_root) -> str:
    """One chapter's atlas page, section by section; a chapter without a run gets its theorems only."""
    body = _header_section(ch, root, site, run, notebook) + _theorems_section(ch, site, recs, run, table)
    if run is not None:
        body += _verdicts_section(recs) + _figures_section(ch, root, site, run, fig_root)
    return _page(f"{ch.name} — theorem atlas", "\n".join(body))


def build(root: Path = store.RESULTS, site: Path = Path("report"), notebooks: Path | None = NOTEBOOK_HTML,
          fig_root: Path | None = Path("figures"), profile: str | None = None) -> Path:
    """Write the atlas for every registered chapter from the latest run of each under ``root`` (of ``profile``,
    where one is named); returns the index page. Chapters without such a run get their theorems, no verdicts."""
    root, site = Path(root), Path(site)
    if site.exists():
        shutil.rmtree(site)
    (site / "theory").mkdir(parents=True)
    rows_html = []
    for ch in chapters.all_chapters():
        run = runs.latest(root, ch.name, profile)
        table = verdict_table(root, run) if run is not None else None
        recs = records(root, run, table) if run is not None else []
        nb = _copy_notebook(notebooks, ch.name, site)
        (site / f"{ch.name}.html").write_text(_chapter_page(ch, root, site, run, table, recs, nb, fig_root))
        by_id = {r["theorem"]: r for r in recs}
        nb_link = f' · <a href="{_e(nb)}">notebook</a>' if nb else ""
        head = (f"<tr><th colspan=\"9\" style=\"text-align:left\"><a href=\"{_e(ch.name)}.html\">{_e(ch.name)}</a>"
                f" — {_e(ch.summary)}<br><span class=\"muted\">"
                f"{_e(run.describe()) if run else 'no complete run: nothing judged'}{nb_link}</span></th></tr>")
        rows_html.append(head)
        for t in ch.theorems:
            r = by_id.get(t.id, {})
            ms = _slack_cell(t.kind, r)
            counts = _counts_cells(t.kind, r.get("counts", {})) if run else "<td colspan=\"5\"></td>"
            rows_html.append(f"<tr><td><a href=\"{_e(ch.name)}.html#{_e(t.id)}\"><code>{_e(t.id)}</code></a><br>"
                             f"<span class=\"muted\">{_e(t.paper)}, {_e(t.number)}</span></td><td>{_e(t.status)}</td>"
                             f"<td>{r.get('points', '')}</td>{counts}<td>{ms}</td></tr>")
    for md in sorted((DOCS / "theory").glob("*.md")):
        (site / "theory" / f"{md.stem}.html").write_text(_doc_page(md, f"{md.stem}: theory", up="../"))
    for md in sorted(DOCS.glob("*.md")):     # every document docs/ links to is a page of the site
        if md.name != "start-here.md":
            (site / f"{md.stem}.html").write_text(_doc_page(md, md.stem))
    shutil.copytree(DOCS / "img", site / "img")
    start = mathhtml.markdown((DOCS / "start-here.md").read_text(), links=_doc_link)
    regen = f"sslt report --out {root} --site {site}" + (f" --profile {profile}" if profile else "")
    body = [start, "<h1 id=\"atlas\">Theorem atlas</h1>",
            "<p>Every theorem the suite checks, chapter by chapter, judged on the latest complete run of each "
            f"chapter under <code>{_e(root)}</code>{f' of profile <b>{_e(profile)}</b>' if profile else ''}. "
            "A chapter's page states each theorem and what it assumes, "
            "gives, beside each theorem, an intuition, how to read its figure, a takeaway computed from the run and "
            "its derivation; then every figure of that run, its verdict table and the worst point of each theorem.</p>",
            "<p><b>holds</b>: measured ≤ bound within 3 standard errors; <b>violated</b>: above it by more, "
            "where the assumptions are met; <b>vacuous</b>: holds but no better than the trivial value; "
            "<b>not met</b>: a declared assumption fails there; <b>undetermined</b>: cannot be judged. A "
            "<i>reference</i> is not a theorem: it reads above or below.</p>",
            "<table><tr><th>theorem</th><th>status</th><th>points</th><th colspan=\"5\">verdicts</th>"
            "<th>median slack (reference: ratio)</th></tr>", *rows_html, "</table>",
            f"<p>Regenerate: <code>{_e(regen)}</code> (or "
            "<code>make report</code>).</p>"]
    index = site / "index.html"
    index.write_text(_page("Theorem atlas", "\n".join(body)))
    return index


def _copy_notebook(notebooks: Path | None, name: str, site: Path) -> str | None:
    """Copy the rendered notebook of chapter ``name`` (and the MathJax beside it) into the site; its link."""
    if notebooks is None or not (Path(notebooks) / f"{name}.html").is_file():
        return None
    (site / "notebooks").mkdir(exist_ok=True)
    shutil.copy2(Path(notebooks) / f"{name}.html", site / "notebooks" / f"{name}.html")
    mj = Path(notebooks) / MATHJAX_DIR
    if mj.is_dir() and not (site / "notebooks" / MATHJAX_DIR).exists():
        shutil.copytree(mj, site / "notebooks" / MATHJAX_DIR)
    return f"notebooks/{name}.html"


# --------------------------------------------------------------------------------------------------------------
# Opening the pages in headless Chromium (experiments/engine/browser.py): images loaded, links resolve, no console
# error, no network request, no LaTeX left in the rendered text

def chromium_binary() -> str | None:
    return browser.binary()


def check_site(site: Path, chromium: str | None = None, extra=()) -> list[str]:
    """Every page under ``site`` (and under each of ``extra``, e.g. docs/notebooks) opened in headless Chromium:
    the problems found (empty: the pages are sound)."""
    return browser.check([Path(site), *[Path(x) for x in extra if Path(x).is_dir()]], chromium)


def main(root: Path, site: Path, check_browser: bool = False, profile: str | None = None) -> int:
    try:
        index = build(root, site, profile=profile)
    except ReportError as err:
        print(f"report: {err}")
        return 2
    print(f"atlas: {index} ({len(browser.pages(Path(site)))} pages)")
    if check_browser:
        problems = check_site(site, extra=[NOTEBOOK_HTML])
        for p in problems:
            print(f"  problem: {p}")
        if problems:
            return 1
        print(f"  opened in headless Chromium, network blocked: {site}/ and {NOTEBOOK_HTML}/ — every image "
              "loaded, every link resolves, no console error, no request left file://, no LaTeX left in the text")
    return 0

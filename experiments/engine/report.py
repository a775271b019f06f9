"""Teaching material: the theorem atlas (a static, offline site built from the latest runs) and the helpers the
chapter notebooks use.

Everything shown about a theorem — its one-line statement, its assumptions, its status — is read from the
registry (``chapters.get(name).theorems``) at the moment a page or a notebook cell is rendered, so a notebook, the
atlas and ``docs/theorems.md`` cannot drift apart. Verdicts come from the latest complete run of each chapter
(``runs.latest``), judged by ``runner.run_table`` and summarised by ``check.theorem_records``; figures are the
chapter's own drawing functions (``chapter.figures``), never re-implemented here.

``sslt report [--out results] [--site report]`` writes ``<site>/index.html`` (every chapter, every theorem with
its status and verdict counts) and ``<site>/<chapter>.html`` (statement as a formula image, assumptions, every
figure of the run with its provenance, the verdict table with each theorem's worst point, the command that
regenerates the page, and the chapter's notebook). Formulas are rendered with matplotlib's mathtext to SVG;
a statement mathtext cannot parse is shown as its LaTeX source in ``<code>``, with a note. Pages load nothing
from the network: no scripts, fonts or styles.
"""
from __future__ import annotations

import html
import io
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from tqdm import tqdm

from analysis import figures as figs
from experiments.engine import chapters, check, runner, runs, store
from experiments.engine.fingerprint import fingerprint
from theory.verdict import (ABOVE, BELOW, BOUND_VERDICTS, BROKEN, EXACT, HOLDS, NOT_MET, UNDETERMINED, VACUOUS,
                            VERDICTS_OF, VIOLATED)

NOTEBOOK_HTML = Path("docs/notebooks")   # where `make notebooks` renders each chapter's notebook


# --------------------------------------------------------------------------------------------------------------
# The registry, in words (notebooks and the atlas both use these)

def _math_in_text(text: str) -> str:
    """An assumption statement is prose, sometimes with LaTeX in it: keep it verbatim, marking LaTeX as code."""
    return f"`{text}`" if "\\" in text else text


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
# Formulas: matplotlib mathtext to SVG, or the LaTeX source where mathtext cannot parse it

_MATHTEXT_FIXES = [
    (re.compile(r"\\le(?![a-zA-Z])"), r"\\leq"),
    (re.compile(r"\\ge(?![a-zA-Z])"), r"\\geq"),
    (re.compile(r"\\mathbb\s*([A-Za-z])"), r"\\mathbb{\1}"),
    (re.compile(r"\\[bB]igg?[lr]?(?![a-zA-Z])"), ""),
    (re.compile(r"\\[td]frac(?![a-zA-Z])"), r"\\frac"),
    (re.compile(r"\\frac\s*(\d)\s*(\d)"), r"\\frac{\1}{\2}"),
]


def mathtext_source(statement: str) -> str:
    """The statement in the subset of LaTeX mathtext reads (\\le -> \\leq, \\big dropped, \\tfrac -> \\frac)."""
    s = statement
    for pat, rep in _MATHTEXT_FIXES:
        s = pat.sub(rep, s)
    return s


def formula_svg(statement: str, fontsize: float = 15) -> str | None:
    """The statement rendered as SVG text by mathtext, or None if mathtext cannot parse it."""
    from matplotlib import mathtext
    from matplotlib.font_manager import FontProperties
    buf = io.BytesIO()
    try:
        mathtext.math_to_image(f"${mathtext_source(statement)}$", buf, prop=FontProperties(size=fontsize),
                               format="svg")
    except (ValueError, RuntimeError):
        return None
    return buf.getvalue().decode()


# --------------------------------------------------------------------------------------------------------------
# The site

CSS = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1,h2,h3{line-height:1.2}table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:3px 7px;
font-size:.92em;vertical-align:top}th{background:#f3f3f3}code{background:#f6f6f6;padding:0 3px}
.formula{background:#fbfbf7;border:1px solid #e4e4d8;padding:.5em;margin:.4em 0;overflow-x:auto}
.muted{color:#666;font-size:.9em}.violated{color:#b00;font-weight:bold}.holds{color:#070}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #ddd}pre{background:#f6f6f6;padding:.6em;
overflow-x:auto}nav{margin-bottom:1em}"""

_COUNT_COLUMNS = VERDICTS_OF
_SHORT = {HOLDS: "holds", VIOLATED: "violated", VACUOUS: "vacuous", NOT_MET: "not met", UNDETERMINED: "undeterm.",
          ABOVE: "above", BELOW: "below", EXACT: "exact", BROKEN: "broken"}


def _e(x) -> str:
    return html.escape(str(x), quote=True)


def _page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{_e(title)}</title>"
            f"<style>{CSS}</style></head>\n<body>\n{body}\n</body></html>\n")


def _formula(t, out_dir: Path) -> tuple[str, bool]:
    """HTML for a theorem's statement: an <img> of the mathtext SVG, or the source in <code> with a note."""
    svg = formula_svg(t.statement)
    alt = _e(t.statement)
    if svg is None:
        return (f"<div class=\"formula\"><code>{alt}</code><br><span class=\"muted\">(matplotlib mathtext cannot "
                f"parse this statement; its LaTeX source is shown)</span></div>", False)
    name = f"{t.id.replace('.', '_')}.svg"
    (out_dir / name).write_text(svg)
    return f"<div class=\"formula\"><img src=\"formulas/{name}\" alt=\"{alt}\" title=\"{alt}\"></div>", True


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
    return (f"sslt run {name} --profile {run.profile or 'default'}{sets} --out {root} && "
            f"sslt report --out {root} --site {site}")


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
    body = ["<nav><a href=\"index.html\">&larr; all chapters</a></nav>", f"<h1>{_e(name)}</h1>",
            f"<p>{_e(ch.summary)}</p>"]
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


def _theorems_section(ch, site: Path, recs) -> list[str]:
    """Each theorem as the registry states it: formula, status, assumptions (with this run's counts), notes."""
    by_id = {r["theorem"]: r for r in recs}
    body = ["<h2>Theorems</h2>"]
    for t in ch.theorems:
        formula, _ = _formula(t, site / "formulas")
        rec = by_id.get(t.id, {})
        body.append(f"<h3 id=\"{_e(t.id)}\"><code>{_e(t.id)}</code> — {_e(t.paper)}, {_e(t.number)}</h3>")
        body.append(f"<p>status <b>{_e(t.status)}</b> ({_e(t.kind)}). It compares <i>{_e(t.measured or 'the measurement')}"
                    f"</i> with its bound, and the trivial value is <i>{_e(t.trivial.statement)}</i>.</p>")
        body.append(formula)
        if t.assumptions:
            met = {a["name"]: a for a in rec.get("assumptions", [])}
            items = []
            for a in t.assumptions:
                m = met.get(a.name)
                state = "" if m is None else f" <span class=\"muted\">(this run: {m['met']} met, {m['not_met']} not met)</span>"
                text = f"<code>{_e(a.statement)}</code>" if "\\" in a.statement else _e(a.statement)
                items.append(f"<li><b>{_e(a.name)}</b>: {text}{state}</li>")
            body.append("<p>It assumes:</p><ul>" + "".join(items) + "</ul>")
        else:
            body.append("<p>It assumes nothing beyond the definitions.</p>")
        if t.doc:
            body.append(f"<p class=\"muted\">Derivation and known looseness: <code>{_e(t.doc)}</code></p>")
    return body


def _verdicts_section(recs) -> list[str]:
    """The run's verdict counts per theorem, then each theorem's worst point with its terms."""
    body = ["<h2>Verdicts of this run</h2>",
            "<table><tr><th>theorem</th><th>status</th><th>points</th><th colspan=\"5\">verdicts</th>"
            "<th>median slack</th><th>worst slack</th></tr>"]
    for r in recs:
        ms = "" if r.get("median_slack") is None else _fmt(r["median_slack"])
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
        body.append(f"<figure><img src=\"figures/{_e(name)}/{_e(png.name)}\" alt=\"{_e(fname)}\">"
                    f"<figcaption><b>{_e(fname)}</b>. {_e(doc)}<br><span class=\"muted\">from "
                    f"{_e(run.describe())}</span></figcaption></figure>")
    return body


def _chapter_page(ch, root: Path, site: Path, run, table, recs, notebook: str | None, fig_root) -> str:
    """One chapter's atlas page, section by section; a chapter without a run gets its theorems only."""
    body = _header_section(ch, root, site, run, notebook) + _theorems_section(ch, site, recs)
    if run is not None:
        body += _verdicts_section(recs) + _figures_section(ch, root, site, run, fig_root)
    return _page(f"{ch.name} — theorem atlas", "\n".join(body))


def build(root: Path = store.RESULTS, site: Path = Path("report"), notebooks: Path | None = NOTEBOOK_HTML,
          fig_root: Path | None = Path("figures")) -> Path:
    """Write the atlas for every registered chapter from the latest run of each under ``root``; returns the
    index page. Chapters without a complete run get a page with their theorems and no verdicts."""
    root, site = Path(root), Path(site)
    if site.exists():
        shutil.rmtree(site)
    (site / "formulas").mkdir(parents=True)
    rows_html = []
    unparsed = []
    for ch in chapters.all_chapters():
        run = runs.latest(root, ch.name)
        table = verdict_table(root, run) if run is not None else None
        recs = records(root, run, table) if run is not None else []
        nb = None
        if notebooks is not None and (Path(notebooks) / f"{ch.name}.html").is_file():
            (site / "notebooks").mkdir(exist_ok=True)
            shutil.copy2(Path(notebooks) / f"{ch.name}.html", site / "notebooks" / f"{ch.name}.html")
            nb = f"notebooks/{ch.name}.html"
        (site / f"{ch.name}.html").write_text(_chapter_page(ch, root, site, run, table, recs, nb, fig_root))
        by_id = {r["theorem"]: r for r in recs}
        nb_link = f' · <a href="{_e(nb)}">notebook</a>' if nb else ""
        head = (f"<tr><th colspan=\"9\" style=\"text-align:left\"><a href=\"{_e(ch.name)}.html\">{_e(ch.name)}</a>"
                f" — {_e(ch.summary)}<br><span class=\"muted\">"
                f"{_e(run.describe()) if run else 'no complete run: nothing judged'}{nb_link}</span></th></tr>")
        rows_html.append(head)
        for t in ch.theorems:
            if formula_svg(t.statement) is None:
                unparsed.append(t.id)
            r = by_id.get(t.id, {})
            ms = "" if r.get("median_slack") is None else _fmt(r["median_slack"])
            counts = _counts_cells(t.kind, r.get("counts", {})) if run else "<td colspan=\"5\"></td>"
            rows_html.append(f"<tr><td><a href=\"{_e(ch.name)}.html#{_e(t.id)}\"><code>{_e(t.id)}</code></a><br>"
                             f"<span class=\"muted\">{_e(t.paper)}, {_e(t.number)}</span></td><td>{_e(t.status)}</td>"
                             f"<td>{r.get('points', '')}</td>{counts}<td>{ms}</td></tr>")
    body = ["<h1>Theorem atlas</h1>",
            "<p>Every theorem the suite checks, chapter by chapter, judged on the latest complete run of each "
            f"chapter under <code>{_e(root)}</code>. A chapter's page states each theorem and what it assumes, "
            "shows every figure of that run, its verdict table and the worst point of each theorem.</p>",
            "<p><b>holds</b>: measured ≤ bound within 3 standard errors; <b>violated</b>: above it by more, "
            "where the assumptions are met; <b>vacuous</b>: holds but no better than the trivial value; "
            "<b>not met</b>: a declared assumption fails there; <b>undetermined</b>: cannot be judged. A "
            "<i>reference</i> is not a theorem: it reads above or below.</p>",
            "<table><tr><th>theorem</th><th>status</th><th>points</th><th colspan=\"5\">verdicts</th>"
            "<th>median slack</th></tr>", *rows_html, "</table>",
            f"<p>Regenerate: <code>{_e(f'sslt report --out {root} --site {site}')}</code> (or "
            "<code>make report</code>).</p>"]
    if unparsed:
        body.append(f"<p class=\"muted\">Shown as LaTeX source (mathtext cannot parse): "
                    f"{_e(', '.join(unparsed))}</p>")
    index = site / "index.html"
    index.write_text(_page("Theorem atlas", "\n".join(body)))
    return index


# --------------------------------------------------------------------------------------------------------------
# Opening the site in headless Chromium: images loaded, links between pages resolve, no console error

_PROBE = """<script>
window.addEventListener('load', function () {
  var bad = [];
  var imgs = document.images;
  for (var i = 0; i < imgs.length; i++) {
    if (!imgs[i].complete || imgs[i].naturalWidth === 0) bad.push(imgs[i].getAttribute('src'));
  }
  var links = [];
  var as = document.getElementsByTagName('a');
  for (var j = 0; j < as.length; j++) links.push(as[j].getAttribute('href'));
  var out = document.createElement('pre');
  out.id = 'sslt-probe';
  out.textContent = JSON.stringify({images: imgs.length, broken: bad, links: links});
  document.body.appendChild(out);
});
</script>"""


def chromium_binary() -> str | None:
    for b in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(b)
        if p:
            return p
    return None


def open_page(page: Path, browser: str, timeout: float = 60) -> dict:
    """Open a copy of ``page`` (same folder, so relative paths hold) with a probe script in Chromium; returns
    the probe's findings (image count, broken images, links) and the console errors it logged."""
    page = Path(page).resolve()
    probe = page.with_name(f".probe-{page.name}")
    probe.write_text(page.read_text().replace("</body>", _PROBE + "</body>"))
    try:
        with tempfile.TemporaryDirectory() as profile:
            done = subprocess.run(
                [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--allow-file-access-from-files", f"--user-data-dir={profile}",
                 "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
                capture_output=True, text=True, timeout=timeout)
    finally:
        probe.unlink(missing_ok=True)
    m = re.search(r'<pre id="sslt-probe">(.*?)</pre>', done.stdout, re.S)
    found = json.loads(html.unescape(m.group(1))) if m else {"images": 0, "broken": [], "links": [],
                                                               "error": "the probe did not run"}
    found["console"] = [ln for ln in done.stderr.splitlines() if "CONSOLE" in ln]
    return found


def check_site(site: Path, browser: str | None = None) -> list[str]:
    """Every page of the site opened in headless Chromium: the problems found (empty: the site is sound)."""
    browser = browser or chromium_binary()
    if browser is None:
        return ["no Chromium on PATH (apt-get install -y chromium, or `make chromium`)"]
    site = Path(site).resolve()
    problems = []
    for page in sorted(site.glob("*.html")):
        found = open_page(page, browser)
        if "error" in found:
            problems.append(f"{page.name}: {found['error']}")
        problems += [f"{page.name}: image {src} did not load" for src in found["broken"]]
        problems += [f"{page.name}: console: {c}" for c in found["console"]]
        for href in found["links"]:
            if not href or re.match(r"^[a-z]+:", href):
                problems.append(f"{page.name}: link {href!r} leaves the site")
                continue
            target, _, anchor = href.partition("#")
            dest = (page.parent / target) if target else page
            if not dest.is_file():
                problems.append(f"{page.name}: link {href} does not resolve")
            elif anchor and dest.suffix == ".html" and f'id="{anchor}"' not in dest.read_text():
                problems.append(f"{page.name}: link {href}: no anchor {anchor!r} in {dest.name}")
    return problems


def main(root: Path, site: Path, check_browser: bool = False) -> int:
    index = build(root, site)
    print(f"atlas: {index} ({len(list(Path(site).glob('*.html')))} pages)")
    if check_browser:
        problems = check_site(site)
        for p in problems:
            print(f"  problem: {p}")
        if problems:
            return 1
        print("  opened in headless Chromium: every image loaded, every link resolves, no console error")
    return 0


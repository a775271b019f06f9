"""The why beside each theorem in the atlas: an intuition, how to read its figure, its derivation and a takeaway.

The prose lives in ``docs/theory/why/<chapter>.toml``, one table per theorem id with ``intuition`` (three to six
lines) and ``reading`` (how to read the figure that draws it), and optionally ``axis``: the column of the judged
table the figure plots along its x-axis, which the takeaway uses to say where the bound holds and where it is
vacuous. It is a docs file, not a field of ``theory.theorems.Theorem``: prose edits must not change the code
fingerprint of every cell (``fingerprint`` hashes the theory modules), and a teacher edits a text file.

The derivation is the section of ``docs/theory/<chapter>.md`` that ``Theorem.doc``'s anchor names, cut at the next
heading of the same or a higher level. The takeaway is a sentence computed from the run's judged table (the rows
``bounds.csv`` holds): every number in it is read from those rows at the moment the page is built.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from theory.verdict import (ABOVE, BELOW, BROKEN, EXACT, HOLDS, NOT_MET, UNDETERMINED, VACUOUS, VIOLATED)

DOCS = Path(__file__).resolve().parents[2] / "docs"
WHY_DIR = DOCS / "theory" / "why"
INTUITION_LINES = (3, 6)


class WhyError(ValueError):
    """A theorem without its why (no entry, an empty field, an anchor that names no section)."""


@dataclass(frozen=True)
class Why:
    intuition: str
    reading: str
    axis: str = ""


def path_of(chapter: str) -> Path:
    return WHY_DIR / f"{chapter}.toml"


def load(chapter: str) -> dict[str, Why]:
    """Every entry of ``docs/theory/why/<chapter>.toml``; an unknown key is an error naming it."""
    p = path_of(chapter)
    if not p.is_file():
        return {}
    out = {}
    for tid, entry in tomllib.loads(p.read_text()).items():
        unknown = set(entry) - {"intuition", "reading", "axis"}
        if unknown:
            raise WhyError(f"{p.name}: {tid}: unknown field(s) {sorted(unknown)}")
        out[tid] = Why(entry.get("intuition", "").strip(), entry.get("reading", "").strip(), entry.get("axis", ""))
    return out


def of(t) -> Why:
    """The why of theorem ``t``, checked: both texts there, the intuition three to six lines long."""
    w = load(t.chapter).get(t.id)
    where = f"docs/theory/why/{t.chapter}.toml"
    if w is None:
        raise WhyError(f"{t.id}: no entry [\"{t.id}\"] in {where}")
    for field in ("intuition", "reading"):
        if not getattr(w, field):
            raise WhyError(f"{t.id}: empty {field} in {where}")
    lo, hi = INTUITION_LINES
    n = len(w.intuition.splitlines())
    if not lo <= n <= hi:
        raise WhyError(f"{t.id}: the intuition in {where} is {n} lines; it must be {lo} to {hi}")
    return w


# --------------------------------------------------------------------------------------------------------------
# The derivation: one section of docs/theory/<chapter>.md

_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_ANCHOR = re.compile(r'^<a id="([^"]+)"></a>\s*$')


def doc_target(t) -> tuple[Path, str]:
    """(markdown file, anchor) that ``t.doc`` names, e.g. docs/theory/contrastive.md#lemma-43."""
    path, _, anchor = t.doc.partition("#")
    if not path.startswith("docs/") or not anchor:
        raise WhyError(f"{t.id}: doc {t.doc!r} is not 'docs/theory/<chapter>.md#<anchor>'")
    return DOCS / path[len("docs/"):], anchor


def section(t) -> str:
    """The Markdown of the section ``t.doc`` names, without its heading: from the heading whose GitHub anchor (or
    an ``<a id>`` line just above it) is the anchor, to the next heading of the same or a higher level."""
    from experiments.engine.mathhtml import slug
    md, anchor = doc_target(t)
    if not md.is_file():
        raise WhyError(f"{t.id}: {md} does not exist")
    lines = md.read_text().splitlines()
    in_code, start, level = False, None, 0
    for i, line in enumerate(lines):
        if line.startswith("```"):
            in_code = not in_code
        m = None if in_code else _HEADING.match(line)
        if start is None:
            if m and (slug(m.group(2)) == anchor or (i and _ANCHOR.match(lines[i - 1]) and
                                                    _ANCHOR.match(lines[i - 1]).group(1) == anchor)):
                start, level = i + 1, len(m.group(1))
            continue
        if m and len(m.group(1)) <= level:
            end = i - 1 if i and _ANCHOR.match(lines[i - 1]) else i
            return "\n".join(lines[start:end]).strip() + "\n"
    if start is None:
        raise WhyError(f"{t.id}: no heading with anchor #{anchor} in docs/{md.relative_to(DOCS)}")
    return "\n".join(lines[start:]).strip() + "\n"


# --------------------------------------------------------------------------------------------------------------
# The takeaway: one sentence from the run's judged rows

def _g(v: float) -> str:
    return f"{v:.3g}"


def _of(n: int, total: int, what: str) -> str:
    return f"{n} of {total} {what}"


def _by_kind(rows: pd.DataFrame, verdict: str) -> str:
    """'trained 40 of 48, oracle 6 of 6': the verdict's count among each model kind's points."""
    if "model_kind" not in rows or rows["model_kind"].nunique() < 2:
        return ""
    parts = [f"{kind} {int((g['verdict'] == verdict).sum())} of {len(g)}"
             for kind, g in rows.groupby("model_kind", sort=True)]
    return " (" + ", ".join(parts) + ")"


def _span(rows: pd.DataFrame, axis: str, mask) -> str:
    """The values of ``axis`` at the rows of ``mask``: each value where there are few, else their range."""
    values = np.unique(pd.to_numeric(rows.loc[mask, axis], errors="coerce").dropna().to_numpy(dtype=float))
    if not len(values):
        return ""
    if len(values) <= 6:
        return f"{axis} = " + ", ".join(_g(x) for x in values)
    return f"{axis} between {_g(values[0])} and {_g(values[-1])} ({len(values)} values)"


def takeaway(t, table: pd.DataFrame, run_id: str, axis: str = "") -> str:
    """One sentence on what run ``run_id`` shows for theorem ``t``, every number read from ``table`` (the judged
    rows: ``verdict``, ``slack``, ``model_kind`` and the terms); ``axis``, a column, locates holds and vacuity."""
    rows = table[table["theorem"] == t.id] if len(table) else table
    if rows.empty:
        return f"Run {run_id} checks no point against this theorem."
    n = len(rows)
    v = rows["verdict"]
    count = {k: int((v == k).sum()) for k in (HOLDS, VIOLATED, VACUOUS, NOT_MET, UNDETERMINED, ABOVE, BELOW,
                                             EXACT, BROKEN)}
    unjudged = [f"{count[NOT_MET]} do not meet an assumption"] if count[NOT_MET] else []
    unjudged += [f"{count[UNDETERMINED]} are undetermined"] if count[UNDETERMINED] else []
    judged = rows[~v.isin([NOT_MET, UNDETERMINED])]
    slack = pd.to_numeric(judged.get("slack", pd.Series(dtype=float)), errors="coerce")
    slack = slack[np.isfinite(slack)]
    if t.kind == "identity":
        head = (f"On run {run_id}, {_of(count[EXACT], n, 'points')} are exact to rounding and "
                f"{count[BROKEN]} broken")
        return head + "".join(f", {u}" for u in unjudged) + "."
    if t.kind == "reference":
        head = (f"On run {run_id}, {_of(count[ABOVE], n, 'points')} read above the reference{_by_kind(rows, ABOVE)} "
                f"and {count[BELOW]} below it")
        ref = pd.to_numeric(judged["bound_value"], errors="coerce")
        if len(judged) and (ref <= 0).any():   # a ratio to a value <= 0 reads as nothing
            tail = (f"; the reference is at or below 0 at {int((ref <= 0).sum())} of {len(judged)} judged points "
                    f"(from {_g(float(ref.min()))} to {_g(float(ref.max()))}), where it says nothing")
        else:
            tail = (f"; the median reference ÷ measured is {_g(float(slack.median()))}" if len(slack) else "")
        return head + "".join(f", {u}" for u in unjudged) + tail + " (a reference is read, never held or violated)."
    parts = [f"On run {run_id}, {_of(count[HOLDS], n, 'points')} hold{_by_kind(rows, HOLDS)}",
             f"{count[VACUOUS]} are vacuous", f"{count[VIOLATED]} violated"] + unjudged
    sentence = ", ".join(parts)
    if len(slack):
        finite = "" if len(slack) == len(judged) else f" of {len(judged)} where it is finite"
        sentence += (f"; the median slack (bound ÷ measured) over the {len(slack)} judged points{finite} is "
                     f"{_g(float(slack.median()))}")
    if axis and axis in rows:
        where = [(HOLDS, "the points that hold lie at"), (VACUOUS, "the vacuous ones at"),
                 (VIOLATED, "the violated ones at")]
        spans = [f"{label} {s}" for verdict, label in where if (s := _span(rows, axis, v == verdict))]
        if spans:
            sentence += "; " + ", ".join(spans)
    if count[VIOLATED]:
        sentence += ". A violation where the assumptions are met is a failure of the statement or of the code"
    return sentence + "."

"""``sslt theorems --where ID``: every place in the source a theorem touches, as ``file:line``.

Functions and classes are found with ``inspect`` from the chapter object (so a chapter outside this repository is
served too); the line inside ``cells`` that reads the theorem's study, the lines of the bound checks that name the
theorem, the doc section (a Markdown heading whose GitHub anchor, or an explicit ``<a id>``, is the theorem's
``doc`` anchor) and the tests (a grep of ``tests/`` for the id) are found by reading the files.
"""
from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import re
import typing
from pathlib import Path

from experiments.engine import chapters

ROOT = Path(__file__).resolve().parents[2]


# The protocol tests that check every registered theorem without naming it: (file under tests/, test, what).
EVERY_THEOREM = (("test_chapters.py", "test_quick_profile_end_to_end", "every row's bound recomputed from its terms"),
                 ("test_chapters.py", "test_reference_answers", "quick-run verdict counts = <chapter>.expected.json"),
                 ("test_theorem_docs.py", "test_where_names_every_place", "these places exist"))


class UnknownTheorem(KeyError):
    """No registered chapter declares this theorem id."""


def _rel(path: Path) -> str:
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _source(obj) -> tuple[Path, list[str], int] | None:
    """(file, source lines, first line) of a function or class; None where inspect cannot tell (a builtin)."""
    while isinstance(obj, functools.partial):
        obj = obj.func
    obj = inspect.unwrap(obj)
    try:
        lines, start = inspect.getsourcelines(obj)
    except (TypeError, OSError):
        return None
    # the def or class line, past any decorator
    skip = next((i for i, line in enumerate(lines) if line.lstrip().startswith(("def ", "class ", "async def "))), 0)
    return Path(inspect.getsourcefile(obj)), lines[skip:], max(start, 1) + skip


def _at(obj) -> str:
    src = _source(obj)
    return f"{_rel(src[0])}:{src[2]}" if src else "(source not found)"


def _name(obj) -> str:
    while isinstance(obj, functools.partial):
        obj = obj.func
    return getattr(obj, "__qualname__", repr(obj))


def slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def doc_line(doc: str) -> tuple[str, int | None]:
    """(file, line of the section) for ``docs/...md#anchor``; the line is None where no heading or ``<a id>``
    carries the anchor (a broken link)."""
    file, _, anchor = doc.partition("#")
    path = ROOT / file
    if not path.is_file():
        return file, None
    for i, line in enumerate(path.read_text().splitlines(), 1):
        heading = re.match(r"#{1,6}\s+(.*)", line)
        if (heading and slug(heading.group(1)) == anchor) or re.search(rf'<a\s+(id|name)="{re.escape(anchor)}"', line):
            return file, i
    return file, None


def _grep(path: Path, pattern: re.Pattern) -> list[int]:
    return [i for i, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]


def _module_level(path: Path) -> set[int]:
    """Lines of a module's top-level statements other than functions and classes (its constants)."""
    skip = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return {i for node in ast.parse(path.read_text()).body if not isinstance(node, skip)
            for i in range(node.lineno, node.end_lineno + 1)}


def places(tid: str) -> list[tuple[str, str, str]]:
    """(what, file:line, detail) for each place theorem ``tid`` touches, in the order a reader follows it."""
    owner = next((ch for ch in chapters.all_chapters() for t in ch.theorems if t.id == tid), None)
    if owner is None:
        known = ", ".join(sorted(chapters.theorem_index()))
        raise UnknownTheorem(f"theorem: unknown {tid!r}; known: {known}")
    t = next(t for t in owner.theorems if t.id == tid)
    out: list[tuple[str, str, str]] = []
    hints = typing.get_type_hints(owner.config)
    if "data" in hints and dataclasses.is_dataclass(hints["data"]):
        out.append(("data spec", _at(hints["data"]), f"{_name(hints['data'])} (config section [data])"))
    if t.study in hints:
        out.append(("study", _at(hints[t.study]), f"{_name(hints[t.study])} (config section [{t.study}])"))
    src = _source(owner.cells)
    if src:
        study = re.compile(rf"\b{re.escape(t.study)}\b") if t.study else None
        hit = next((i for i, line in enumerate(src[1]) if study and study.search(line)), None)
        line = src[2] + (hit or 0)
        out.append(("cells", f"{_rel(src[0])}:{line}",
                    _name(owner.cells) + (f" (reads study {t.study})" if hit is not None else "")))
    out.append(("run", _at(owner.run_cell), _name(owner.run_cell)))
    out.append(("bound function", _at(t.bound), _name(t.bound)))
    if t.trivial.value is not None:
        out.append(("trivial value", _at(t.trivial.value), _name(t.trivial.value)))
    for a in t.assumptions:
        out.append(("assumption", _at(a.check), f"{a.name}: {_name(a.check)}"))
    out.append(("bound check", _at(owner.bound_checks), _name(owner.bound_checks)))
    src = _source(owner.bound_checks)
    if src:
        # the id in quotes, or its short name as a subscript (T["spectral_minimum"]); inside bound_checks or at
        # module level (a constant it reads), not in the figure functions of the same module
        short = re.escape(tid.split(".", 1)[1])
        named = re.compile(rf"[\"']{re.escape(tid)}[\"']|\[[\"']{short}[\"']\]")
        inside = set(range(src[2], src[2] + len(src[1]))) | _module_level(src[0])
        out += [("bound check", f"{_rel(src[0])}:{i}", f"names {tid}") for i in _grep(src[0], named) if i in inside]
    for name in t.figures:
        draw = owner.figures.get(name)
        out.append(("figure", _at(draw) if draw else "(not a FIGURES key)", f"{name}: {_name(draw)}"))
    if t.doc:
        file, line = doc_line(t.doc)
        out.append(("doc", f"{file}:{line}" if line else f"{file}: NO SECTION", "#" + t.doc.partition("#")[2]))
    tests = ROOT / "tests"
    for file, test, what in EVERY_THEOREM:
        if (tests / file).is_file():
            out += [("test", f"tests/{file}:{i}", what) for i in _grep(tests / file, re.compile(rf"def {test}\("))]
    if tests.is_dir():
        mention = re.compile(rf"{re.escape(tid)}(?!\w)")
        for path in sorted(tests.rglob("*.py")):
            for i in _grep(path, mention):
                out.append(("test", f"{_rel(path)}:{i}", "names the id"))
    return out


def text(tid: str) -> str:
    rows = places(tid)
    w = max(len(what) for what, _, _ in rows) + 2
    return f"{tid}\n" + "".join(f"  {what:<{w}}{where}  {detail}\n" for what, where, detail in rows)

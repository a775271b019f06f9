"""The design card's layering, checked: import-linter's contracts (pyproject.toml), the engine's allow-list, and
no import cycle anywhere (function-level imports included: grimp reads them)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("theory", "synthetic_data", "experiments", "analysis")
# What the engine may import outside itself: the generic judging, registry and drawing code, never a chapter.
ENGINE_MAY_IMPORT = {"theory.theorems", "theory.verdict", "theory.stats", "analysis.bounds", "analysis.figures",
                     "analysis.plotting", "synthetic_data.plugins", "synthetic_data.checks"}


def _graph():
    return grimp.build_graph(*PACKAGES, cache_dir=None)


def test_import_linter_contracts_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml")], cwd=ROOT, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "broken" in done.stdout and " 0 broken" in done.stdout


def test_the_engine_imports_no_chapter():
    g = _graph()
    engine = {m for m in g.modules if m == "experiments.engine" or m.startswith("experiments.engine.")}
    outside = set()
    for m in engine:
        outside |= {i for i in g.find_modules_directly_imported_by(m) if i not in engine}
    assert outside <= ENGINE_MAY_IMPORT, sorted(outside - ENGINE_MAY_IMPORT)
    # and, through them, nothing of a chapter either
    reach = set().union(*(g.find_upstream_modules(m) for m in ENGINE_MAY_IMPORT))
    assert reach <= ENGINE_MAY_IMPORT | {"theory", "analysis", "synthetic_data"}, sorted(reach - ENGINE_MAY_IMPORT)


def test_no_import_cycles():
    g = _graph()
    edges = {m: {i for i in g.find_modules_directly_imported_by(m) if i != m} for m in g.modules}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for n in sorted(edges.get(m, ())):
            if state.get(n) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(n):] + [n]))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = 2
    sys.setrecursionlimit(10_000)
    for m in sorted(edges):
        if m not in state:
            visit(m)


def test_the_cycle_finder_can_fail():
    """The check above would see a cycle: build one in a scratch package and look."""
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        pkg = Path(tmp) / "cyc"
        pkg.mkdir()
        (pkg / "__init__.py").write_text("")
        (pkg / "a.py").write_text("def f():\n    from cyc import b\n")
        (pkg / "b.py").write_text("from cyc import a\n")
        sys.path.insert(0, tmp)
        try:
            g = grimp.build_graph("cyc", cache_dir=None)
            assert "cyc.b" in g.find_modules_directly_imported_by("cyc.a")
            assert "cyc.a" in g.find_modules_directly_imported_by("cyc.b")
        finally:
            sys.path.remove(tmp)


def test_an_import_across_chapters_breaks_the_independence_contract(tmp_path):
    """The independence contract covers every module of a chapter's package: one new import from the zoo's
    sequence bench into the contrastive chapter's config is reported broken."""
    import shutil
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    victim = tmp_path / "experiments" / "zoo" / "sequences.py"
    victim.write_text(victim.read_text() + "\n\ndef _leak():\n    from experiments.contrastive import config  # noqa\n")
    lint = Path(sys.executable).with_name("lint-imports")
    env = {**__import__("os").environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run([str(lint), "--config", str(tmp_path / "pyproject.toml"), "--no-cache"], cwd=tmp_path,
                          capture_output=True, text=True, env=env)
    assert done.returncode != 0, done.stdout[-2000:]
    assert "Chapters are independent of each other BROKEN" in done.stdout
    assert "experiments.zoo.sequences -> experiments.contrastive.config" in done.stdout

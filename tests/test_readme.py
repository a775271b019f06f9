"""The README is an entry point whose numbers are generated: its verdict table is rendered from the committed
reference answers (a drift test, as for docs/theorems.md), its library quick start runs as written, and every
repository path it or docs/ names exists."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from experiments.engine import chapters, cli, readme

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TOP = {"theory", "synthetic_data", "experiments", "analysis", "tests", "docs", "notebooks", "examples"}


def test_the_readme_verdict_table_is_up_to_date():
    assert readme.block(README.read_text()) == readme.table(), \
        "README.md's verdict table is stale: regenerate it with `sslt readme --write`"


def test_every_registered_theorem_has_a_line_with_its_reference_counts():
    table = readme.table()
    for ch in chapters.all_chapters():
        data = readme.load_expected(ch)
        assert data is not None and data["profile"] == "quick", ch.name
        for t in ch.theorems:
            assert table.count(f"| `{t.id}` |") == 1, t.id
        for r in data["rows"]:
            line = next(x for x in table.splitlines() if x.startswith(f"| `{r['theorem']}` |"))
            assert f"{r['form']}: " in line and f" of {r['points']}" in line, (r, line)


def test_a_changed_reference_answer_changes_the_table(tmp_path, monkeypatch):
    # The drift test can fail: a count edited in a reference file shows in the rendered line, bold if violated.
    ch = chapters.get("contrastive")
    data = json.loads(readme.expected_path(ch).read_text())
    row = data["rows"][0]
    row["counts"] = {**row["counts"], "violated": 3}
    fake = tmp_path / "contrastive.expected.json"
    fake.write_text(json.dumps(data))
    before = readme.table()
    real = readme.expected_path
    monkeypatch.setattr(readme, "expected_path", lambda c: fake if c.name == "contrastive" else real(c))
    after = readme.table()
    assert after != before and "**3 violated**" in after
    assert readme.block(README.read_text()) != after


def test_verdict_names_of_either_spelling_render_alike():
    row = {"theorem": "x", "kind": "bound", "form": "f", "points": 5, "median_slack": "1.5"}
    short = readme._counts_text({**row, "counts": {"holds": 3, "not met": 2}})
    long = readme._counts_text({**row, "counts": {"holds": 3, "assumption not met": 2}})
    assert short == long == "f: 3 holds, 2 not met of 5; median slack 1.5"
    ref = readme._counts_text({**row, "kind": "reference", "median_slack": None,
                               "counts": {"above reference": 1, "below": 4}})
    assert ref == "f: 1 above, 4 below of 5"


def test_a_stale_theorem_in_a_reference_file_is_an_error(tmp_path, monkeypatch):
    fake = tmp_path / "contrastive.expected.json"
    fake.write_text(json.dumps({"chapter": "contrastive", "profile": "quick", "rows": [
        {"theorem": "contrastive.gone", "kind": "bound", "form": "f", "points": 1, "counts": {"holds": 1},
         "median_slack": None}]}))
    real = readme.expected_path
    monkeypatch.setattr(readme, "expected_path", lambda c: fake if c.name == "contrastive" else real(c))
    with pytest.raises(readme.ReadmeError, match="contrastive.gone"):
        readme.table()


def test_sslt_readme_writes_the_block_and_refuses_a_file_without_markers(tmp_path, capsys):
    target = tmp_path / "README.md"
    target.write_text(f"# x\n\n{readme.BEGIN}\nSTALE-BLOCK\n{readme.END}\n\nafter\n")
    assert cli.main(["readme", "--write", "--path", str(target)]) == 0
    text = target.read_text()
    assert readme.block(text) == readme.table() and text.endswith("\n\nafter\n") and "STALE-BLOCK" not in text
    assert cli.main(["readme", "--write", "--path", str(target)]) == 0   # idempotent
    assert target.read_text() == text
    (tmp_path / "bare.md").write_text("no markers\n")
    assert cli.main(["readme", "--write", "--path", str(tmp_path / "bare.md")]) == 2
    assert "verdicts:begin" in capsys.readouterr().err


def test_the_readme_is_an_entry_point():
    text = README.read_text()
    assert len(text.splitlines()) <= 250
    for needle in ("make figures", "make test", "source .venv/bin/activate", "sslt check", "make report",
                   "make notebooks", "docs/theorems.md", "docs/benchmark.md", "experiments/engine/",
                   "experiments/latent_eval.py"):
        assert needle in text, needle
    for ch in chapters.names():
        assert f"docs/theory/{ch}.md" in text, ch


def _quick_start() -> str:
    section = README.read_text().split("## The library in ten lines", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "the quick start is one python block"
    return blocks[0]


def test_the_quick_start_is_ten_lines_and_runs(capsys):
    code = _quick_start()
    assert len([line for line in code.splitlines() if line.strip()]) <= 10
    exec(compile(code, "README.md quick start", "exec"), {})
    printed = capsys.readouterr().out
    assert "holds" in printed   # the verdict counts of lemma 4.3 on the quick run


def _expand(path: str) -> list[str]:
    m = re.search(r"\{([^{}]*)\}", path)
    if not m:
        return [path]
    return [x for alt in m.group(1).split(",") for x in _expand(path[:m.start()] + alt.strip() + path[m.end():])]


# what `make` writes (ignored by git): named in the docs as outputs, never present in a fresh clone
GENERATED = ("results/", "figures/", "report/", "docs/notebooks/")


def _named_paths(doc: Path, text: str):
    """(how, path) for every backticked or linked string that looks like a path of this repository."""
    found = [("code", m.group(1)) for m in re.finditer(r"`([^`\n]+)`", text)]
    found += [("link", m.group(1)) for m in re.finditer(r"\]\(([^)\s]+)\)", text)]
    for how, raw in found:
        path = raw.split("#")[0].strip()
        path = re.sub(r":\w+$", "", path)                     # analysis/contrastive.py:bound_checks
        if not path or "://" in path or any(c in path for c in "<>*…$ =") or "..." in path or path.startswith("."):
            continue                                           # URLs, placeholders, globs, commands, `.py`
        if path.startswith(GENERATED):
            continue                                           # what `make` writes, absent from a fresh clone
        repo_like = "/" in path and path.split("/")[0] in TOP
        if how == "link" or repo_like or path.endswith((".py", ".md", ".toml")):
            yield from ((how, p) for p in _expand(path))


def test_every_repository_path_in_the_readme_and_docs_exists():
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split()
    basenames = {Path(f).name for f in listed}
    docs = [README, *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "docs" / "theory").glob("*.md"))]
    missing, checked = [], 0
    for doc in docs:
        for how, path in _named_paths(doc, doc.read_text()):
            checked += 1
            base = doc.parent if how == "link" else ROOT
            # a bare file name (`learners.py`) names a file somewhere in the repository
            if not ((base / path).exists() or ("/" not in path and path in basenames)):
                missing.append(f"{doc.relative_to(ROOT)}: {path}")
    assert checked > 100
    assert not missing, "paths named in the docs that do not exist:\n" + "\n".join(missing)


def test_the_path_check_can_fail():
    named = list(_named_paths(README, "see `experiments/train.py` and [x](docs/nothing.md), not `make test`"))
    assert named == [("code", "experiments/train.py"), ("link", "docs/nothing.md")]

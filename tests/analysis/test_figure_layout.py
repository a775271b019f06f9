"""Every figure of every chapter's quick run is readable: no two text boxes overlap, no text is cut off, no table
entry spills out of its cell (from the renderer's own extents, analysis.figure_lint), and every panel that draws a
bound or a reference also draws the trivial value's line or says why it has none. The lint is shown to fail on
deliberately broken figures."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from analysis import figure_lint as fl  # noqa: E402
from analysis import plotting  # noqa: E402
from experiments.engine import chapters  # noqa: E402

NAMES = chapters.names()


@pytest.fixture
def drawn(quick_figures):
    """name -> {figure stem: (layout problems, trivial problems, bound panels)}, read from the session's one
    drawing of each chapter's quick run (tests/conftest.py)."""
    def get(name: str) -> dict:
        _, facts, _ = quick_figures(name)
        return {stem: (f["layout"], f["trivial"], f["bound_panels"]) for stem, f in facts.items()}
    return get


@pytest.mark.parametrize("name", NAMES)
def test_no_text_overlaps_or_is_clipped_in_any_figure(name, drawn):
    figures = drawn(name)
    assert set(figures) == set(chapters.get(name).figures)
    bad = {stem: layout for stem, (layout, _, _) in figures.items() if layout}
    assert not bad, bad


@pytest.mark.parametrize("name", NAMES)
def test_every_panel_with_a_bound_draws_the_trivial_line(name, drawn):
    figures = drawn(name)
    bad = {stem: triv for stem, (_, triv, _) in figures.items() if triv}
    assert not bad, bad
    # and the bounds are marked: each theorem (bound or reference) that names figures is drawn as one in one
    for t in chapters.get(name).theorems:
        if t.kind != "identity" and t.figures:
            assert any(figures[f][2] for f in t.figures if f in figures), f"{t.id}: no panel of {t.figures} " \
                "marks a bound (gid 'bound' / 'reference')"


# ------------------------------------------------------------------------------------ the lint can fail
def _fig():
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1], [0, 1])
    ax.set_title("a title")
    fig.tight_layout()
    return fig, ax


def test_the_lint_passes_a_clean_figure_and_slanted_tick_labels_side_by_side():
    fig, ax = _fig()
    ax.set_xticks([0, 0.33, 0.66, 1], ["first label", "second label", "third label", "fourth"], rotation=30,
                  ha="right", fontsize=6)
    fig.tight_layout()
    assert fl.overlaps(fig) == [] and fl.clipped(fig) == []
    plt.close(fig)


def test_the_lint_finds_a_label_running_into_the_title():
    fig, ax = _fig()
    ax.text(0.5, 1.02, "runs into the title", transform=ax.transAxes, ha="center")
    assert any("title" in p and "overlaps" in p for p in fl.overlaps(fig))
    plt.close(fig)


def test_the_lint_finds_a_legend_over_the_y_label():
    fig, ax = _fig()
    ax.set_ylabel("excess risk")
    ax.plot([0, 1], [1, 0], label="a legend entry long enough to reach the y label")
    ax.legend(loc="center right", bbox_to_anchor=(0.3, 0.5))
    problems = fl.overlaps(fig)
    assert any("ylabel" in p and "legend" in p for p in problems), problems
    plt.close(fig)


def test_the_lint_finds_clipped_text_and_a_spilling_table_cell():
    fig, ax = _fig()
    ax.set_ylabel("a y label far too long to fit in a figure of this height at all, cut off")
    assert any("ylabel" in p and "clipped" in p for p in fl.clipped(fig))
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(3, 1))
    ax.axis("off")
    table = ax.table(cellText=[["a long entry in a narrow cell", "x"]], colLabels=["h1", "h2"], bbox=(0, 0, 1, 1),
                     colWidths=[0.1, 0.9])
    table.auto_set_font_size(False)   # as fig_summary: a fixed size, else matplotlib shrinks the text to fit
    table.set_fontsize(9)
    assert any("spills out of its cell" in p for p in fl.overlaps(fig))
    plt.close(fig)


def test_the_lint_finds_a_bound_without_its_trivial_line():
    fig, ax = _fig()
    ax.plot([0, 1], [2, 1], gid=plotting.BOUND)
    assert fl.bounds_without_trivial(fig) and fl.panels_with_bounds(fig) == 1
    plotting.trivial_line(ax, 1.5)
    assert fl.bounds_without_trivial(fig) == []
    plt.close(fig)
    fig, ax = _fig()
    ax.plot([0, 1], [2, 1], gid=plotting.REFERENCE)
    plotting.no_trivial(ax, "no trivial value: exact")
    assert fl.bounds_without_trivial(fig) == []
    plt.close(fig)


def test_a_reference_at_or_below_zero_is_not_shown_as_a_slack():
    """The index showed a 'median slack' of -0.36 for Lemma 4.1's reference 1/2 - sqrt(d ln N / N): a reference's
    number is a ratio, and where the reference is <= 0 at every point it says nothing; an identity shows none."""
    from experiments.engine.report import _slack_cell
    ref = {"median_slack": -0.36, "judged": 1, "reference_nonpositive": 1}
    assert _slack_cell("reference", ref) == "ratio -0.36 (reference ≤ 0 at every point: it says nothing here)"
    assert _slack_cell("reference", {**ref, "median_slack": 0.8, "reference_nonpositive": 0}) == "ratio 0.8"
    assert _slack_cell("bound", {"median_slack": 1.5}) == "1.5"
    assert _slack_cell("identity", {"median_slack": 1.0}) == ""

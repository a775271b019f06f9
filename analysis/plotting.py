"""Figure plumbing: one style, one save function for PNG + PDF, and the provenance line every figure carries.

The matplotlib backend is not chosen here: the ``sslt`` command selects Agg (no display needed), while a
notebook that imports the analysis keeps its inline backend.
"""
from __future__ import annotations

import contextlib
from pathlib import Path

import matplotlib.pyplot as plt

STYLE = {"figure.dpi": 110, "savefig.dpi": 150, "axes.grid": True, "grid.alpha": 0.3, "font.size": 9,
         "axes.titlesize": 10, "legend.fontsize": 8}
_CAPTION: list[str] = []  # the provenance of the figures being drawn; set by ``provenance``


@contextlib.contextmanager
def provenance(text: str):
    """Every figure saved inside this block states ``text`` (the run, profile, overrides and code it draws)."""
    _CAPTION.append(text)
    try:
        yield
    finally:
        _CAPTION.pop()


def new(ncols: int = 1, nrows: int = 1, width: float = 4.2, height: float = 3.4):
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)
    return fig, axes


def _wrap(caption: str, width: int) -> str:
    """The caption in lines of at most ``width`` characters, broken only between its " · " fields (a field, such
    as "profile quick", stays whole)."""
    lines: list[str] = []
    for part in caption.split(" · "):
        if lines and len(lines[-1]) + 3 + len(part) <= width:
            lines[-1] += " · " + part
        else:
            lines.append(part)
    return "\n".join(lines)


def _top(fig) -> float:
    """The top of the panels' area: below the suptitle's lines where there is one (tight_layout leaves it out)."""
    sup = fig._suptitle
    if sup is None or not sup.get_text().strip():
        return 1.0
    lines = sup.get_text().count("\n") + 1
    return 1.0 - (lines * sup.get_fontsize() * 1.3 + 6) / 72 / fig.get_size_inches()[1]


def save(fig, directory: Path, stem: str) -> list[Path]:
    """Write ``stem.png`` and ``stem.pdf`` (with the provenance line at the foot); returns both paths."""
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    with plt.rc_context(STYLE):
        if _CAPTION:
            # wrapped to the figure's width (a narrow figure would cut it off), with room kept for its lines
            width_in, height_in = fig.get_size_inches()
            text = _wrap(_CAPTION[-1], max(40, int(width_in * 72 / (6 * 0.56))))
            fig.text(0.5, 0.005, text, ha="center", va="bottom", fontsize=6, color="0.35", gid="provenance")
            fig.tight_layout(rect=(0, min(0.3, (text.count("\n") + 1) * 8 / 72 / height_in + 0.01), 1, _top(fig)))
        else:
            fig.tight_layout(rect=(0, 0, 1, _top(fig)))
        for ext in ("png", "pdf"):
            path = directory / f"{stem}.{ext}"
            fig.savefig(path)
            out.append(path)
    plt.close(fig)
    return out


# gids a panel's artists carry, so that a test can tell a bound from its trivial line (analysis.figure_lint)
BOUND, REFERENCE, TRIVIAL, NO_TRIVIAL = "bound", "reference", "trivial", "no_trivial"


def trivial_line(ax, value: float, label: str = "trivial value", vertical: bool = False, **style):
    """The trivial value (the theorem's Trivial: what a constant or zero predictor reaches) as a line: a bound at
    or above it says nothing. ``vertical`` where the bound runs along x (a bound-against-measured scatter)."""
    style = {"color": "0.45", "ls": ":", "lw": 1.0, **style}
    draw = ax.axvline if vertical else ax.axhline
    return draw(value, label=label, gid=TRIVIAL, **style)


_CORNERS = {"lower left": (0.02, 0.02, "left", "bottom"), "lower right": (0.98, 0.02, "right", "bottom"),
            "upper left": (0.02, 0.98, "left", "top"), "upper right": (0.98, 0.98, "right", "top")}


def no_trivial(ax, why: str, loc: str = "lower left") -> None:
    """Say in the panel that its bound has no trivial value (``why``), where the trivial line would be."""
    x, y, ha, va = _CORNERS[loc]
    ax.text(x, y, why, transform=ax.transAxes, ha=ha, va=va, fontsize=6, color="0.35", gid=NO_TRIVIAL)


def message(ax, text: str, fontsize: float | None = None) -> None:
    """Say in an empty panel why it is empty (a study disabled, no points), instead of leaving it blank."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=fontsize, gid="message")

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


def save(fig, directory: Path, stem: str) -> list[Path]:
    """Write ``stem.png`` and ``stem.pdf`` (with the provenance line at the foot); returns both paths."""
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    with plt.rc_context(STYLE):
        if _CAPTION:
            fig.text(0.5, 0.005, _CAPTION[-1], ha="center", va="bottom", fontsize=6, color="0.35",
                     gid="provenance")
            fig.tight_layout(rect=(0, 0.03, 1, 1))
        else:
            fig.tight_layout()
        for ext in ("png", "pdf"):
            path = directory / f"{stem}.{ext}"
            fig.savefig(path)
            out.append(path)
    plt.close(fig)
    return out


def message(ax, text: str, fontsize: float | None = None) -> None:
    """Say in an empty panel why it is empty (a study disabled, no points), instead of leaving it blank."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=fontsize, gid="message")

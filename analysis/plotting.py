"""Figure plumbing: the Agg backend (no display needed) and one save function for PNG + PDF."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

STYLE = {"figure.dpi": 110, "savefig.dpi": 150, "axes.grid": True, "grid.alpha": 0.3, "font.size": 9,
         "axes.titlesize": 10, "legend.fontsize": 8}


def new(ncols: int = 1, nrows: int = 1, width: float = 4.2, height: float = 3.4):
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)
    return fig, axes


def save(fig, directory: Path, stem: str) -> list[Path]:
    """Write ``stem.png`` and ``stem.pdf``; returns both paths."""
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    with plt.rc_context(STYLE):
        fig.tight_layout()
        for ext in ("png", "pdf"):
            path = directory / f"{stem}.{ext}"
            fig.savefig(path)
            out.append(path)
    plt.close(fig)
    return out


def message(ax, text: str, fontsize: float | None = None) -> None:
    """Say in an empty panel why it is empty (a study disabled, no points), instead of leaving it blank."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=fontsize)

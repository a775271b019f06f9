"""What makes a figure unreadable, found from the renderer's own extents: text boxes that overlap, text cut off at
the figure's edge or spilling out of its table cell, and a panel that draws a bound without the trivial line.

Every text a reader sees is collected (the suptitle and figure texts, each panel's titles, axis labels, the tick
labels the axis draws, offset texts, annotations, legend texts and titles, table cells) with its extent in
display pixels, as ``fig.canvas.get_renderer()`` lays it out. A rotated text is compared as its rotated rectangle
(separating axis test), not as the axis-aligned box around it, so that slanted tick labels side by side do not
count as overlapping. A legend's frame is a box too: a legend drawn over an axis label or a title covers it.

Panels mark what they draw with gids (``analysis.plotting``): ``bound`` or ``reference`` on a theorem's curve or
points, ``trivial`` on the trivial value's line, ``no_trivial`` on the note that says a bound has none.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.legend import Legend
from matplotlib.text import Text

TOL = 0.5   # pixels: extents that touch within rounding do not overlap
BOUND_GIDS = ("bound", "reference")
TRIVIAL_GIDS = ("trivial", "no_trivial")


@dataclass
class Box:
    name: str          # what the text is, for the message: "ax 1 ylabel 'excess risk'"
    corners: np.ndarray    # (4, 2) display pixels, a rectangle (rotated where the text is)
    group: str         # boxes of one group (one legend, one table) are laid out by their owner: not compared
    rotated: bool = False
    cell: object = None    # a table cell's rectangle: its text must lie inside it


def _rect(bb) -> np.ndarray:
    return np.array([[bb.x0, bb.y0], [bb.x1, bb.y0], [bb.x1, bb.y1], [bb.x0, bb.y1]], dtype=float)


def _corners(t: Text, renderer) -> tuple[np.ndarray, bool]:
    bb = t.get_window_extent(renderer)
    angle = t.get_rotation() % 180
    if angle in (0, 90) or not t.get_text().strip():
        return _rect(bb), False
    # the unrotated layout's size (the same text at rotation 0), turned about the centre of the axis-aligned
    # extent, which is the rotated rectangle's centre whatever the alignment
    rotation = t.get_rotation()
    t.set_rotation(0)
    flat = t.get_window_extent(renderer)
    t.set_rotation(rotation)
    w, h = flat.width, flat.height
    c = np.array([(bb.x0 + bb.x1) / 2, (bb.y0 + bb.y1) / 2])
    r = np.deg2rad(t.get_rotation())
    u, v = np.array([np.cos(r), np.sin(r)]) * w / 2, np.array([-np.sin(r), np.cos(r)]) * h / 2
    return np.array([c - u - v, c + u - v, c + u + v, c - u + v]), True


def _shown(t) -> bool:
    return t is not None and t.get_visible() and bool(t.get_text().strip())


def _drawn_ticklabels(axis):
    for tick in axis._update_ticks():   # the ticks the axis draws (within its view interval), major and minor
        for lab in (tick.label1, tick.label2):
            if lab.get_visible() and tick.get_visible() and lab.get_text().strip():
                yield lab


def text_boxes(fig) -> list[Box]:
    """Every visible, non-empty text of ``fig`` (and every legend frame), laid out by the figure's renderer."""
    if not hasattr(fig.canvas, "get_renderer"):   # a closed pyplot figure keeps only a base canvas
        FigureCanvasAgg(fig)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes: list[Box] = []

    def add(t, name, group, cell=None):
        if _shown(t):
            corners, rot = _corners(t, renderer)
            boxes.append(Box(f"{name} {t.get_text()[:40]!r}", corners, group, rot, cell))

    for i, t in enumerate(fig.texts):
        add(t, f"figure text {i}", f"fig{i}")
    for legend in fig.legends:
        _legend(legend, "figure legend", renderer, boxes, add)
    for k, ax in enumerate(a for a in fig.axes if a.get_visible()):
        p = f"ax {k}"
        for where in ("title", "_left_title", "_right_title"):
            add(getattr(ax, where), f"{p} title", f"{p}{where}")
        if ax.axison:
            for axis, name in ((ax.xaxis, "x"), (ax.yaxis, "y")):
                add(axis.label, f"{p} {name}label", f"{p}{name}label")
                add(axis.get_offset_text(), f"{p} {name} offset", f"{p}{name}offset")
                for j, lab in enumerate(_drawn_ticklabels(axis)):
                    add(lab, f"{p} {name}tick", f"{p}{name}tick{j}")
        for j, t in enumerate(ax.texts):
            add(t, f"{p} text", f"{p}text{j}")
        if ax.get_legend() is not None:
            _legend(ax.get_legend(), f"{p} legend", renderer, boxes, add)
        for j, table in enumerate(ax.tables):
            for (r, c), cell in table.get_celld().items():
                add(cell.get_text(), f"{p} table cell ({r}, {c})", f"{p}table{j}",
                    _rect(cell.get_window_extent(renderer)))
    return boxes


def _legend(legend: Legend, name, renderer, boxes, add) -> None:
    if not legend.get_visible():
        return
    group = f"{name}{id(legend)}"
    boxes.append(Box(f"{name} frame", _rect(legend.get_window_extent(renderer)), group))
    add(legend.get_title(), f"{name} title", group)
    for t in legend.get_texts():
        add(t, f"{name} entry", group)


def _intersect(a: np.ndarray, b: np.ndarray, tol: float = TOL) -> bool:
    """Two convex quadrilaterals overlap by more than ``tol`` pixels along every separating direction."""
    for poly in (a, b):
        for i in range(4):
            edge = poly[(i + 1) % 4] - poly[i]
            n = np.array([-edge[1], edge[0]])
            norm = np.hypot(*n)
            if norm == 0:
                continue
            n /= norm
            pa, pb = a @ n, b @ n
            if min(pa.max(), pb.max()) - max(pa.min(), pb.min()) <= tol:
                return False
    return True


def _owners_differ(a: Box, b: Box) -> bool:
    return not (a.group == b.group or (a.group.split("table")[0] == b.group.split("table")[0]
                                       and "table" in a.group and "table" in b.group))


def _candidates(boxes: list[Box]) -> np.ndarray:
    """(n, n) mask of the pairs whose axis-aligned extents touch or overlap. Two convex shapes that are apart are
    apart along one of their edge normals (the separating axis theorem), where ``_intersect`` then finds a gap
    below its tolerance; so a pair whose extents are apart along x or y cannot overlap, and only the rest is
    tested one by one (a figure holds hundreds of tick labels: the pairs are what the lint's time went into)."""
    if not boxes:
        return np.zeros((0, 0), dtype=bool)
    c = np.stack([b.corners for b in boxes])
    lo, hi = c.min(1), c.max(1)
    apart = (lo[:, None, :] > hi[None, :, :]) | (lo[None, :, :] > hi[:, None, :])
    return ~apart.any(-1)


def overlaps(fig, boxes: list[Box] | None = None) -> list[str]:
    """'A overlaps B' for every two text boxes of ``fig`` from different owners that overlap, and 'A spills out
    of its cell' for a table cell's text wider or taller than its cell (``boxes``: ``text_boxes(fig)``, if
    already collected)."""
    boxes = text_boxes(fig) if boxes is None else boxes
    near = _candidates(boxes)
    out = []
    for i, a in enumerate(boxes):
        if a.cell is not None and not _inside(a.corners, a.cell):
            out.append(f"{a.name} spills out of its cell")
        for j in np.flatnonzero(near[i, i + 1:]) + i + 1:
            b = boxes[j]
            if _owners_differ(a, b) and _intersect(a.corners, b.corners):
                out.append(f"{a.name} overlaps {b.name}")
    return out


def problems(fig) -> list[str]:
    """``overlaps(fig) + clipped(fig)``, from one collection of the figure's text boxes."""
    boxes = text_boxes(fig)
    return overlaps(fig, boxes) + clipped(fig, boxes)


def _inside(corners: np.ndarray, frame: np.ndarray, tol: float = TOL) -> bool:
    lo, hi = frame.min(0), frame.max(0)
    return bool((corners.min(0) >= lo - tol).all() and (corners.max(0) <= hi + tol).all())


def clipped(fig, boxes: list[Box] | None = None) -> list[str]:
    """Every text box of ``fig`` that does not lie wholly inside the figure (cut off when saved)."""
    frame = _rect(fig.bbox)
    boxes = text_boxes(fig) if boxes is None else boxes
    return [f"{b.name} is clipped by the figure's edge" for b in boxes if not _inside(b.corners, frame)]


def _gids(ax):
    for art in (*ax.lines, *ax.collections, *ax.patches, *ax.texts, *ax.images):
        yield art.get_gid()
    legend = ax.get_legend()
    if legend is not None:
        for t in legend.get_texts():
            yield t.get_gid()


def bounds_without_trivial(fig) -> list[str]:
    """Every panel that draws a bound or a reference (gid ``bound`` / ``reference``) but neither the trivial line
    (gid ``trivial``) nor a note that the bound has no trivial value (gid ``no_trivial``)."""
    out = []
    for k, ax in enumerate(a for a in fig.axes if a.get_visible()):
        gids = set(_gids(ax))
        if gids & set(BOUND_GIDS) and not gids & set(TRIVIAL_GIDS):
            out.append(f"ax {k} ({ax.get_title()[:50]!r}) draws a bound without the trivial line")
    return out


def panels_with_bounds(fig) -> int:
    return sum(bool(set(_gids(a)) & set(BOUND_GIDS)) for a in fig.axes if a.get_visible())

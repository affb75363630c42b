"""What every figure shares: a Figure of its own, legends outside the data, light spines, PNG bytes.

A figure made here belongs to no ``pyplot`` state machine: nothing selects a backend, so a notebook's inline backend
keeps showing figures after ``rjcma predict`` code rendered one, and a headless process needs no display. A notebook
shows the figure it gets back (the last expression of a cell, or ``display(fig)``).
"""

from __future__ import annotations

import io

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.legend import Legend

LEGEND_FONT = 7
# The book shows a figure at most BOOK_COLUMN_PX wide (the text column of a page in a 1280 px window), so a figure
# drawn wider is shrunk, and its text with it: 7-point legends of a 13-inch figure came out about 5 px tall. Figures
# are drawn at most MAX_WIDTH inches wide (wider requests keep their aspect), so the smallest text the figures use
# (7 pt) stays at least MIN_TEXT_PX tall on the page (tests/test_figures.py checks every figure).
BOOK_COLUMN_PX = 770
MAX_WIDTH = 8.8
MIN_TEXT_PX = 8.0


def new_figure(width: float, height: float, dpi: int | None = None) -> Figure:
    """A figure with constrained layout (room is made for legends outside the axes); ``dpi`` None: rcParams. A
    width over :data:`MAX_WIDTH` inches is brought down to it, the height with it."""
    if width > MAX_WIDTH:
        width, height = MAX_WIDTH, height * MAX_WIDTH / width
    return Figure(figsize=(width, height), dpi=dpi, layout="constrained")


def shown_text_px(fig: Figure, dpi: float) -> float:
    """The height in page pixels of the smallest visible text of ``fig`` rendered at ``dpi`` (the book's
    ``figure_dpi``) as the book shows it: points x dpi / 72 image pixels, shrunk with the image when it is wider
    than :data:`BOOK_COLUMN_PX`."""
    from matplotlib.text import Text

    shrink = min(1.0, BOOK_COLUMN_PX / (fig.get_size_inches()[0] * dpi))
    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    return min(sizes, default=0.0) * dpi / 72 * shrink


def legend_right(ax: Axes, **kw) -> Legend | None:
    """The axes' legend to the right of its data area (nothing drawn is covered); None when nothing is labelled."""
    if not ax.get_legend_handles_labels()[0]:
        return None
    return ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, fontsize=LEGEND_FONT,
                     frameon=False, **kw)


def legend_above(ax: Axes, ncol: int = 3) -> Legend | None:
    """The axes' legend in one band above its data area (for axes without a title of their own)."""
    if not ax.get_legend_handles_labels()[0]:
        return None
    return ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.01), borderaxespad=0.0, ncol=ncol,
                     fontsize=LEGEND_FONT, frameon=False)


def despine(*axes: Axes) -> None:
    for ax in axes:
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)


def png_bytes(fig: Figure) -> bytes:
    """The figure rendered by Agg (no backend involved), as PNG bytes."""
    buf = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buf)
    return buf.getvalue()

"""One visual style for every report figure: palette, fonts, sizes, and how figures are saved.

Colours follow Okabe & Ito's colour-blind-safe palette ("Color Universal Design", 2008). Each augmentation
keeps its colour in every figure (assigned in study order); the baseline is always dark grey. Figures are
built on :class:`matplotlib.figure.Figure` directly, never through ``pyplot``: they render with Agg, need
no display, and leave matplotlib's global backend and figure registry alone.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from auglens.augment.base import BASELINE
from auglens.store import write_atomic

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["BASELINE_COLOUR", "CAM_CMAP", "CORRELATION_CMAP", "OKABE_ITO", "SEGMENT_COLOURS",
           "augmentation_colours", "new_figure", "save_figure", "style"]

#: Okabe-Ito, without black (reserved for text) and with yellow last (weak contrast on white).
OKABE_ITO: tuple[str, ...] = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#F0E442")
BASELINE_COLOUR = "#555555"
#: Correctness segments (Appendix C), distinct from nothing else on the same plot.
SEGMENT_COLOURS: dict[str, str] = {"both_correct": "#009E73", "both_wrong": "#D55E00",
                                   "only_baseline_correct": "#56B4E9", "only_augmented_correct": "#E69F00"}
#: Perceptually uniform and colour-blind safe; used for CAM overlays.
CAM_CMAP = "inferno"
#: Diverging (red = positive, blue = negative correlation), readable with red-green colour blindness.
CORRELATION_CMAP = "RdBu_r"

#: Resolution of the PNGs (the SVGs are resolution-free).
PNG_DPI = 110

_RC = {
    "font.size": 9.5,
    "axes.titlesize": 10.5,
    "axes.titleweight": "bold",
    "axes.labelsize": 9.5,
    "xtick.labelsize": 8.5,
    "ytick.labelsize": 8.5,
    "legend.fontsize": 8.5,
    "figure.titlesize": 12,
    "figure.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.grid.axis": "y",
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "axes.axisbelow": True,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "svg.fonttype": "none",  # keep text as text in SVGs: smaller, searchable, selectable
    "svg.hashsalt": "auglens",  # deterministic SVG ids, so identical inputs give identical files
    "image.interpolation": "nearest",
}


@contextmanager
def style() -> Iterator[None]:
    """Context in which every figure is built and saved (rcParams are read at draw time too)."""
    import matplotlib as mpl  # here, not at the top: a rebuild that draws nothing never imports matplotlib

    with mpl.rc_context(_RC):
        yield


def new_figure(width: float, height: float) -> Figure:
    """A figure of ``width x height`` inches with constrained layout (labels never overlap or clip)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _mix(colour: str, other: str, share: float) -> str:
    """``colour`` moved ``share`` of the way towards ``other`` (both ``#rrggbb``)."""
    a = [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
    b = [int(other[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(x + (y - x) * share):02x}" for x, y in zip(a, b))


def augmentation_colours(names: Sequence[str], baseline: str = BASELINE,
                         controls: Sequence[str] = ()) -> dict[str, str]:
    """A fixed colour per augmentation name: baseline grey, the rest Okabe-Ito in order.

    Studies of more than seven augmentations (single augmentations beside policies and pipelines) would
    repeat colours; the second round takes the same hues darkened, the third lightened, so every
    augmentation keeps a distinct colour within one hue family of the colour-blind-safe palette. Retraining
    controls (``controls``: baselines retrained with one setting changed) get lighter greys, and take no
    colour from the augmentations, which keep theirs whether or not a study has controls.
    """
    shades = (lambda c: c, lambda c: _mix(c, "#000000", 0.45), lambda c: _mix(c, "#ffffff", 0.5))
    colours, i = {}, 0
    greys = [name for name in names if name in set(controls)]
    for j, name in enumerate(greys):
        colours[name] = _mix(BASELINE_COLOUR, "#ffffff", 0.35 + 0.4 * j / max(1, len(greys)))
    for name in names:
        if name in colours:
            continue
        if name == baseline:
            colours[name] = BASELINE_COLOUR
        else:
            round_, k = divmod(i, len(OKABE_ITO))
            colours[name] = shades[round_ % len(shades)](OKABE_ITO[k])
            i += 1
    return colours


def save_figure(fig: Figure, directory: Path, name: str) -> bytes:
    """Write ``directory/name.png`` and ``directory/name.svg``; return the PNG bytes (for embedding)."""
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=PNG_DPI)
    # The layout is in inches, so the PNG's is right for the SVG too: freezing it skips a second
    # constrained-layout pass (~40% of the SVG's time).
    fig.set_layout_engine("none")
    svg = io.BytesIO()
    fig.savefig(svg, format="svg", metadata={"Date": None})
    write_atomic(str(directory / f"{name}.png"), png.getvalue())
    write_atomic(str(directory / f"{name}.svg"), svg.getvalue())
    return png.getvalue()

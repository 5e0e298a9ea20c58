"""Plotting helpers of the distortion analyses' figures (each analysis module defines its own figure).

Figures show means over runs with bars/bands of the std over runs, in auglens's report style
(:mod:`auglens.report.style`: Okabe–Ito colour-blind-safe palette, Agg through
:class:`matplotlib.figure.Figure`, never pyplot); each model type keeps its colour in every figure.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from auglens.report.style import OKABE_ITO, augmentation_colours, new_figure

__all__ = ["OKABE_ITO", "augmentation_colours", "grouped_bars", "new_figure", "std_or_zero"]


def std_or_zero(values) -> np.ndarray:
    return np.nan_to_num(np.asarray(values, dtype=float))  # one run: no spread to draw


def grouped_bars(ax, categories: Sequence[str], series: dict[str, tuple[np.ndarray, np.ndarray]],
                 colours: dict[str, str]) -> None:
    """Bars of each series side by side per category; series = {label: (means, stds)}."""
    x = np.arange(len(categories))
    width = 0.8 / max(len(series), 1)
    for i, (label, (means, stds)) in enumerate(series.items()):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, means, width, yerr=std_or_zero(stds), capsize=2,
               color=colours[label], label=label, error_kw={"elinewidth": 0.8})
    rotate = sum(len(str(c)) for c in categories) > 40
    ax.set_xticks(x, categories, rotation=35 if rotate else 0, ha="right" if rotate else "center")

"""CAM overlays: grids of the extreme test images (thesis Appendix A, Figures A.1-A.16) and the CAM browser's
per-image strips.

For one metric, each row is one extreme image (highest mean, highest std across augmentations); the
columns are the image itself, the baseline's CAM and each augmentation's CAM, overlaid on the image, with
the model's predicted class. One model per augmentation is shown: the first seed's (the first row of that
augmentation in ``performance.csv``), since a CAM belongs to one model, not to a seed average. matplotlib is
imported where a function draws (see :mod:`auglens.report.figures`).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from auglens.cam import upsample_maps
from auglens.report.style import CAM_CMAP, new_figure
from auglens.store import write_atomic

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["GridColumn", "GridRow", "browser_strip", "display_maps", "extreme_image_grid", "write_browser_strips"]


@dataclass(frozen=True)
class GridColumn:
    """One model's column for the extreme images of a grid (one entry per grid row).

    Attributes:
        title: column title, e.g. ``"affine-s1"``.
        maps: display maps ``(rows, H, W)`` in [0, 1] (see :func:`display_maps`).
        predictions: the model's predicted class per row.
        values: the model's metric value per row (shown under the panel), or None (baseline).
    """

    title: str
    maps: np.ndarray
    predictions: Sequence[int]
    values: Sequence[float] | None = None


@dataclass(frozen=True)
class GridRow:
    """One extreme image: which statistic picked it, the image index, its label and the statistic's value."""

    statistic: str
    image: int
    label: int
    value: float


def display_maps(maps: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """Low-res maps ``(n, h, w)`` -> display maps ``(n, H, W)`` in [0, 1].

    The same bilinear upsampling + min-max normalisation the metrics were computed on
    (``auglens.cam.upsample_maps``), so what is shown is what was measured.
    """
    return upsample_maps(maps.float(), size).numpy()


def _to_rgb(image: np.ndarray) -> np.ndarray:
    """``(C, H, W)`` uint8, C = 1 or 3 -> ``(H, W, 3)`` float in [0, 1]."""
    rgb = np.repeat(image[:1], 3, axis=0) if image.shape[0] == 1 else image[:3]
    return np.transpose(rgb, (1, 2, 0)).astype(np.float64) / 255.0


def extreme_image_grid(metric: str, rows: Sequence[GridRow], images: np.ndarray, classes: Sequence[str],
                       columns: Sequence[GridColumn], alpha: float = 0.55) -> Figure:
    """Grid ``len(rows) x (1 + len(columns))``: the image, then each model's CAM overlaid on it.

    The panels are composed into one mosaic image drawn on a single axes (one ``imshow`` instead of one
    axes per panel: several times faster to lay out and save, which matters with 8 metrics x 8+ models).

    Args:
        metric: metric column the rows are extreme for (titles).
        rows: the extreme images (from ``auglens.analysis.extreme_images``).
        images: the rows' test images ``(rows, C, H, W)`` uint8, ``C`` 1 (grey) or 3 (colour).
        classes: class names, indexed by label.
        columns: baseline first, then one column per augmentation.
        alpha: opacity of the CAM overlay.
    """
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    def name(index: int) -> str:
        return str(classes[index]) if 0 <= index < len(classes) else str(index)

    height, width = (int(s) for s in images.shape[-2:])
    cmap = colormaps[CAM_CMAP]
    # Upscale tiny images by pixel repetition so every panel is ~100 px: crisp pixels, room for text.
    scale = max(1, int(np.ceil(100 / max(height, width))))
    ph, pw = height * scale, width * scale
    gap_x, pitch_y = int(0.1 * pw), int(1.55 * ph)  # vertical pitch leaves room for two caption lines
    ncols = 1 + len(columns)
    mosaic = np.ones(((len(rows) - 1) * pitch_y + ph, ncols * pw + (ncols - 1) * gap_x, 3))

    def place(r: int, c: int, rgb: np.ndarray) -> tuple[float, float, float]:
        top, left = r * pitch_y, c * (pw + gap_x)
        mosaic[top:top + ph, left:left + pw] = np.kron(rgb, np.ones((scale, scale, 1)))
        return left + pw / 2, top, top + ph

    fig = new_figure(1.5 * ncols + 2.4, 2.1 * len(rows) + 0.7)
    ax = fig.subplots()
    for r, row in enumerate(rows):
        base = _to_rgb(images[r])
        x, top, bottom = place(r, 0, base)
        ax.text(-gap_x, top + ph / 2, f"highest {row.statistic}\nimage {row.image}\nlabel: {name(row.label)}\n"
                f"{row.statistic} = {row.value:.3g}", ha="right", va="center", fontsize=8.5)
        if r == 0:
            ax.text(x, top - 0.05 * ph, "image", ha="center", va="bottom", fontsize=8.5, fontweight="bold")
        for c, column in enumerate(columns):
            blended = (1 - alpha) * base + alpha * cmap(column.maps[r])[..., :3]
            x, top, bottom = place(r, c + 1, blended)
            if r == 0:
                ax.text(x, top - 0.05 * ph, column.title, ha="center", va="bottom", fontsize=8.5,
                        fontweight="bold")
            pred = int(column.predictions[r])
            text = f"pred: {name(pred)} {'✓' if pred == row.label else '✗'}"
            if column.values is not None:
                value = float(column.values[r])
                text += f"\n{metric} = " + ("NaN" if np.isnan(value) else f"{value:.3g}")
            ax.text(x, bottom + 0.05 * ph, text, ha="center", va="top", fontsize=8)
    ax.imshow(mosaic, interpolation="nearest")
    ax.set_axis_off()
    fig.colorbar(ScalarMappable(Normalize(0, 1), cmap), ax=ax, shrink=0.7, label="CAM activation (0–1)")
    fig.suptitle(f"{metric}: test images with the highest mean / std across augmentations")
    return fig


def browser_strip(image: np.ndarray, maps: Sequence[np.ndarray], alpha: float = 0.55) -> bytes:
    """One PNG: the image ``(C, H, W)`` uint8, then each display map ``(H, W)`` overlaid on it, side by side
    (native size, 2-pixel gaps)."""
    from matplotlib import colormaps
    from PIL import Image

    rgb = _to_rgb(image)
    cmap = colormaps[CAM_CMAP]
    panels = [rgb] + [(1 - alpha) * rgb + alpha * cmap(m)[..., :3] for m in maps]
    gap = np.ones((rgb.shape[0], 2, 3))
    strip = np.concatenate([p for panel in panels for p in (panel, gap)][:-1], axis=1)
    buffer = io.BytesIO()
    Image.fromarray((strip * 255).round().astype(np.uint8)).save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def write_browser_strips(paths: Sequence[str], images: np.ndarray, maps: Sequence[np.ndarray]) -> None:
    """Write ``paths[i]``: the strip of ``images[i]`` ``(n, C, H, W)`` and each model's display map ``maps[m][i]``
    (``maps[m]``: ``(n, H, W)``, from :func:`display_maps`). Pure numpy and PIL: it runs in forked workers,
    where a torch operation could hang (OpenMP's thread pool does not survive a fork)."""
    for i, path in enumerate(paths):
        # Not fsynced: a thousand small files that a rebuild redraws (their fsyncs took most of the report's time).
        write_atomic(path, browser_strip(images[i], [model_maps[i] for model_maps in maps]), durable=False)

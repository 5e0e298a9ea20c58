"""Report figures over the study tables: each function takes frames, returns a matplotlib ``Figure``.

Thesis figures reproduced: performance bars (Figs 5.6-5.9), per-epoch test metrics and training time of
the candidate architectures (Figs 5.1-5.5), the same per model of a study (validation curves, training
time), metric boxplots (Figs 5.10, 5.12, ... 5.24),
correlation maps (Figs 5.11, 5.13, ... 5.25), segmented boxplots (Appendix C). Beyond the thesis:
dendrograms of the correlation maps. Build them inside :func:`auglens.report.style.style`.

matplotlib is imported inside the functions that draw, not with this module: a report rebuilt over
unchanged tables draws nothing (:mod:`auglens.report.keys`) and so never pays for importing it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.cluster import hierarchy

from auglens.analysis import (
    PERFORMANCE_METRICS,
    SEGMENTS,
    VALIDATION_METRICS,
    ClusterResult,
    correctness_segments,
    higher_is_better,
)
from auglens.metrics import spec_for_column
from auglens.report.style import CORRELATION_CMAP, OKABE_ITO, SEGMENT_COLOURS, new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["architecture_curves", "architecture_time_bars", "cka_heatmap", "correlation_heatmap", "dendrograms",
           "metric_axis_label", "metric_boxplot", "performance_bars", "segmented_boxplot", "training_time_bars",
           "validation_curves"]

_PRETTY = {"accuracy": "Accuracy", "precision_macro": "Precision (macro)", "recall_macro": "Recall (macro)",
           "f1_macro": "F1-score (macro)"}
_THESIS_FIGURE = {"accuracy": "5.6", "precision_macro": "5.7", "recall_macro": "5.8", "f1_macro": "5.9"}
_LINESTYLES = ("-", "--", ":", "-.")



def _label_epoch_panel(ax, split: str, metric: str) -> None:
    """Title and axes of one per-epoch panel of a classification metric (a fraction)."""
    ax.set_title(f"{split} {_PRETTY.get(metric, metric).lower()}")
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{_PRETTY.get(metric, metric)} (fraction, 0–1)")
    ax.xaxis.get_major_locator().set_params(integer=True)

def metric_axis_label(metric: str) -> str:
    """Two-line axis label for a metric column: name, then which direction means "more similar"."""
    direction = higher_is_better(metric)
    if direction is None:
        return f"{metric} (unitless)"
    return f"{metric} (unitless)\n{'higher' if direction else 'lower'} = {spec_for_column(metric).higher_means}"


def _rotate(ax, labels: Sequence[str], width_inches: float) -> None:
    """Tick labels at the categories, rotated only when they would not fit side by side."""
    longest = max((len(line) for label in labels for line in str(label).splitlines()), default=0)
    rotate = longest * 0.075 * len(labels) > 0.9 * width_inches  # ~0.075 in per character at 8.5 pt
    ax.set_xticks(range(len(labels)), labels, rotation=35 if rotate else 0, ha="right" if rotate else "center")


def performance_bars(performance: pd.DataFrame, summary: pd.DataFrame, colours: Mapping[str, str],
                     metrics: Sequence[str] = PERFORMANCE_METRICS) -> Figure:
    """Test-set performance per augmentation: bar = mean over seeds, error bar = std, dots = single seeds.

    Thesis Figures 5.6 (accuracy), 5.7 (precision), 5.8 (recall), 5.9 (F1). A single seed has no std: the
    error bar is omitted (drawn as 0).
    """
    order = list(summary["augmentation"])
    ncols = 2 if len(metrics) > 1 else 1
    nrows = math.ceil(len(metrics) / ncols)
    fig = new_figure(max(6.5, 1.0 + 0.9 * len(order) * ncols), 2.9 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    x = np.arange(len(order))
    for ax, metric in zip(axes, metrics):
        means = summary[f"{metric}_mean"].to_numpy(dtype=float)
        stds = np.nan_to_num(summary[f"{metric}_std"].to_numpy(dtype=float), nan=0.0)
        ax.bar(x, means, yerr=stds, color=[colours[a] for a in order], width=0.7, capsize=3,
               error_kw={"elinewidth": 1.0, "ecolor": "#222222"}, edgecolor="white")
        for i, augmentation in enumerate(order):
            seeds = performance.loc[performance["augmentation"] == augmentation, metric].to_numpy(dtype=float)
            ax.plot(np.full(seeds.shape, i), seeds, "o", ms=3, color="#222222", mfc="white", mew=0.8, zorder=3)
            if np.isfinite(means[i]):
                ax.text(i, min(means[i] + stds[i], 1.0) + 0.02, f"{means[i]:.3f}", ha="center", va="bottom",
                        fontsize=7.5)
        ax.set_ylim(0, 1.12)
        ax.set_title(f"Test {_PRETTY.get(metric, metric).lower()} (thesis Fig. {_THESIS_FIGURE.get(metric, '–')})")
        ax.set_ylabel(f"{_PRETTY.get(metric, metric)} (fraction, 0–1)")
        _rotate(ax, order, fig.get_figwidth() / ncols)
    for ax in axes[len(metrics):]:
        ax.set_visible(False)
    fig.suptitle("Classification performance on the test set: mean ± std over seeds")
    return fig


def validation_curves(history: pd.DataFrame, colours: Mapping[str, str],
                      metrics: Sequence[str] = VALIDATION_METRICS) -> Figure:
    """Validation metric per epoch for every model (thesis Figs 5.1-5.4): colour = augmentation, dash = seed."""
    from matplotlib.lines import Line2D

    metrics = [m for m in metrics if m in history]
    fig = new_figure(10.5, 6.2)
    axes = fig.subplots(2, 2, squeeze=False).ravel()
    seeds = list(dict.fromkeys(history["seed"]))
    dash = {s: _LINESTYLES[i % len(_LINESTYLES)] for i, s in enumerate(seeds)}
    for ax, metric in zip(axes, metrics):
        for model, rows in history.groupby("model", sort=False):
            rows = rows.sort_values("epoch")
            augmentation = rows["augmentation"].iloc[0]
            ax.plot(rows["epoch"], rows[metric], dash[rows["seed"].iloc[0]], color=colours.get(augmentation, "#000"),
                    lw=1.4, marker="o", ms=2.5)
        name = metric.removeprefix("val_")
        _label_epoch_panel(ax, "Validation", name)
    for ax in axes[len(metrics):]:
        ax.set_visible(False)
    handles = [Line2D([], [], color=c, lw=2, label=a) for a, c in colours.items()]
    handles += [Line2D([], [], color="#222222", ls=dash[s], lw=1.4, label=f"seed {s}") for s in seeds]
    fig.legend(handles=handles, loc="outside right center", frameon=False)
    fig.suptitle("Validation metrics per epoch, one line per model")
    return fig


def training_time_bars(performance: pd.DataFrame, colours: Mapping[str, str]) -> Figure:
    """Total training time of every model (thesis Fig. 5.5), coloured by augmentation."""
    models = performance["model"].astype(str).tolist()
    fig = new_figure(max(6.0, 0.45 * len(models) + 1.5), 3.4)
    ax = fig.subplots()
    seconds = performance["train_seconds"].to_numpy(dtype=float)
    ax.bar(np.arange(len(models)), seconds, color=[colours.get(a, "#000") for a in performance["augmentation"]],
           width=0.75)
    ax.set_ylabel("training time (s)")
    ax.set_xlabel("model (augmentation-seed)")
    ax.set_title("Training time per model (all epochs)")
    ax.set_xticks(np.arange(len(models)), models, rotation=60, ha="right")
    return fig


def _architecture_colours(names: Sequence[str]) -> dict[str, str]:
    return {name: OKABE_ITO[i % len(OKABE_ITO)] for i, name in enumerate(names)}


def architecture_curves(architectures: pd.DataFrame, metrics: Sequence[str] = PERFORMANCE_METRICS,
                        split: str = "test") -> Figure:
    """Per-epoch ``split`` metrics of the candidate architectures (thesis Figs 5.1-5.4), one panel per metric.

    ``architectures``: ``architectures.csv`` (architecture, epoch, split, metric columns, seconds).
    """
    from matplotlib.lines import Line2D

    rows = architectures[architectures["split"] == split]
    names = list(dict.fromkeys(rows["architecture"].astype(str)))
    colours = _architecture_colours(names)
    columns = 1 if len(metrics) == 1 else 2
    fig = new_figure(4.6 * columns + 1.8, 3.2 * math.ceil(len(metrics) / columns))
    axes = fig.subplots(math.ceil(len(metrics) / columns), columns, squeeze=False).ravel()
    for ax, metric in zip(axes, metrics):
        for name in names:
            curve = rows[rows["architecture"].astype(str) == name].sort_values("epoch")
            ax.plot(curve["epoch"], curve[metric], color=colours[name], lw=1.6, marker="o", ms=2.5)
        _label_epoch_panel(ax, split.capitalize(), metric)
    for ax in axes[len(metrics):]:
        ax.set_visible(False)
    fig.legend(handles=[Line2D([], [], color=colours[n], lw=2, label=n) for n in names], loc="outside right center",
               frameon=False)
    return fig


def architecture_time_bars(architectures: pd.DataFrame) -> Figure:
    """Training time of each candidate architecture over all its epochs (thesis Fig. 5.5)."""
    total = architectures.groupby("architecture", sort=False)["seconds"].max()
    names = [str(n) for n in total.index]
    colours = _architecture_colours(names)
    fig = new_figure(max(4.5, 1.1 * len(names) + 2.0), 3.4)
    ax = fig.subplots()
    bars = ax.bar(np.arange(len(names)), total.to_numpy(dtype=float), color=[colours[n] for n in names], width=0.6)
    ax.bar_label(bars, fmt="%.1f", fontsize=8)
    ax.set_ylabel("training time (s),\nevaluation excluded")
    ax.set_title("Training time per architecture")
    _rotate(ax, names, fig.get_figwidth())
    return fig


def _defined(values: np.ndarray) -> np.ndarray:
    return values[~np.isnan(values)]


def metric_boxplot(wide: pd.DataFrame, metric: str, colours: Mapping[str, str],
                   floor: tuple[float, float] | None = None) -> Figure:
    """Distribution over the test images of one metric per augmentation (Figs 5.10, 5.12, ..., 5.24).

    ``wide`` is ``(images, augmentations)`` of seed-averaged values. Boxes: quartiles; whiskers: 1.5 IQR;
    points: outliers. NaN values are left out and counted in the tick labels. ``floor``: the retraining
    controls' band ``(low, high)`` (:func:`auglens.analysis.control_floor`), drawn as a grey band behind the
    boxes, to be read against their median lines.
    """
    order = [str(c) for c in wide.columns]
    data = [_defined(wide[c].to_numpy(dtype=float)) for c in wide.columns]
    fig = new_figure(max(5.5, 0.85 * len(order) + 1.8), 3.8)
    ax = fig.subplots()
    if floor is not None and np.isfinite(floor).all():
        ax.axhspan(floor[0], floor[1], color="#9a9a9a", alpha=0.3, lw=0, zorder=0,
                   label="retraining floor: controls' median intervals")
        if floor[0] == floor[1]:
            ax.axhline(floor[0], color="#9a9a9a", lw=1.2, zorder=0)
        ax.legend(loc="best", fontsize="small", frameon=False)
    parts = ax.boxplot([d if d.size else [np.nan] for d in data], positions=np.arange(len(order)),
                       widths=0.6, patch_artist=True, showfliers=True,
                       medianprops={"color": "#111111", "lw": 1.4},
                       flierprops={"marker": "o", "ms": 2.2, "alpha": 0.45, "mec": "none", "mfc": "#444444"})
    for box, name in zip(parts["boxes"], order):
        box.set_facecolor(colours.get(name, "#999999"))
        box.set_alpha(0.85)
    labels = [f"{name}\n(n={d.size}" + (f", {int(wide[name].isna().sum())} NaN)" if wide[name].isna().any() else ")")
              for name, d in zip(order, data)]
    _rotate(ax, labels, fig.get_figwidth())
    ax.set_ylabel(metric_axis_label(metric))
    ax.set_xlabel("augmentation")
    ax.set_title(f"{metric}: distribution over test images (seed-averaged)")
    return fig


def correlation_heatmap(corr: pd.DataFrame, metric: str) -> Figure:
    """Pearson correlation of one metric between augmentations over the test images (Figs 5.11, ..., 5.25).

    The map is symmetric with a diagonal of ones, so only the lower triangle is drawn (every cell
    annotated). The colour scale is fixed to [-1, 1] so maps of different metrics compare.
    """
    from matplotlib import colormaps

    names = [str(c) for c in corr.columns]
    k = len(names)
    values = corr.to_numpy(dtype=float)
    if k >= 2:
        rows, cols = names[1:], names[:-1]
        shown = np.where(np.tril(np.ones((k, k), dtype=bool), -1), values, np.inf)[1:, :-1]
    else:  # a single augmentation: its 1x1 map (r = 1 or NaN)
        rows = cols = names
        shown = values
    side = max(3.4, 0.62 * len(rows) + 2.3)
    fig = new_figure(side + 0.9, side)
    ax = fig.subplots()
    masked = np.ma.masked_where(~np.isfinite(shown), shown)
    image = ax.imshow(masked, cmap=colormaps[CORRELATION_CMAP].with_extremes(bad="#ffffff"), vmin=-1, vmax=1)
    for i in range(len(rows)):
        for j in range(len(cols)):
            v = shown[i, j]
            if np.isinf(v):
                continue  # upper triangle: not drawn
            nan = np.isnan(v)
            text = "n/a" if nan else f"{round(v, 2) + 0.0:.2f}"  # + 0.0: no "-0.00"
            ax.text(j, i, text, ha="center", va="center", fontsize=8 if k <= 8 else 6.5,
                    color="#777777" if nan else ("white" if abs(v) > 0.6 else "#111111"))
    ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.grid(False)
    ax.spines[:].set_visible(False)
    ax.set_title(f"{metric}: correlation between augmentations")
    fig.colorbar(image, ax=ax, shrink=0.8, label="Pearson r over test images")
    return fig


def cka_heatmap(cka: pd.DataFrame, augmentations: Sequence[str], estimator: str) -> Figure:
    """CKA between the baseline and each augmentation's models, layer (rows, input to output) x augmentation.

    ``cka``: ``aug_cka.csv`` (mean over seeds per augmentation and layer). Models trained from the same initial
    weights often stay above 0.9, so the colour scale runs from the lowest value (down to a multiple of 0.05) to 1
    rather than from 0; every cell is annotated.
    """
    from matplotlib import colormaps

    layers = list(dict.fromkeys(cka.sort_values("layer_index")["layer"]))
    columns = [a for a in augmentations if a in set(cka["augmentation"])]
    values = cka.pivot_table(index="layer", columns="augmentation", values="cka", sort=False)
    shown = values.reindex(index=layers, columns=columns).to_numpy(dtype=float)
    fig = new_figure(max(3.6, 0.75 * len(columns) + 2.6), max(2.6, 0.42 * len(layers) + 1.6))
    ax = fig.subplots()
    finite = shown[np.isfinite(shown)]
    low = min(0.95, math.floor(20 * float(finite.min())) / 20) if finite.size else 0.0
    image = ax.imshow(np.ma.masked_invalid(shown), cmap=colormaps["viridis"].with_extremes(bad="#ffffff"),
                      vmin=low, vmax=1, aspect="auto")
    for i in range(len(layers)):
        for j in range(len(columns)):
            v = shown[i, j]
            ax.text(j, i, "n/a" if np.isnan(v) else f"{v:.3f}", ha="center", va="center", fontsize=7.5,
                    color="#777777" if np.isnan(v) else ("#111111" if v > low + 0.6 * (1 - low) else "white"))
    _rotate(ax, columns, fig.get_figwidth())
    ax.set_yticks(range(len(layers)), layers)
    ax.grid(False)
    ax.spines[:].set_visible(False)
    ax.set_xlabel("augmentation")
    ax.set_ylabel("layer (input at the top)")
    ax.set_title(f"CKA with the baseline ({estimator})")
    fig.colorbar(image, ax=ax, shrink=0.8, label="CKA (1 = same up to rotation, scale)")
    return fig


def dendrograms(clusters: Mapping[str, ClusterResult]) -> Figure:
    """Average-linkage dendrogram of the augmentations per metric (distance 1 - r), one panel each."""
    metrics = list(clusters)
    ncols = min(4, len(metrics))
    nrows = math.ceil(len(metrics) / ncols)
    k = len(next(iter(clusters.values())).labels)
    fig = new_figure(3.1 * ncols + 0.4, (1.2 + 0.28 * k) * nrows + 0.4)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, metric in zip(axes, metrics):
        result = clusters[metric]
        hierarchy.dendrogram(result.linkage, labels=result.labels, orientation="right", ax=ax,
                             link_color_func=lambda _: "#0072B2", leaf_font_size=8)
        ax.set_title(metric)
        ax.set_xlabel("distance 1 − r")
        ax.grid(axis="x", color="#dddddd", lw=0.6)
        ax.grid(axis="y", visible=False)
        ax.set_xlim(left=0)
    for ax in axes[len(metrics):]:
        ax.set_visible(False)
    fig.suptitle("Hierarchical clustering of augmentations (average linkage on 1 − r)")
    return fig


def segmented_boxplot(cam_metrics: pd.DataFrame, metric: str, order: Sequence[str]) -> Figure:
    """One metric split by correctness segment, per augmentation (Appendix C, Figs C.1-C.7 side by side).

    Per-model values (``cam_metrics``, every seed), because correctness belongs to one model. Under each
    augmentation: the number of (seed, image) rows with a defined value in each segment, in legend order.
    Outliers are not drawn (the per-metric boxplot shows them); the boxes are what is compared here.
    """
    from matplotlib.patches import Patch

    segments = correctness_segments(cam_metrics).to_numpy()
    values = cam_metrics[metric].to_numpy(dtype=float)
    augmentations = cam_metrics["augmentation"].to_numpy(dtype=str)
    width = 0.8 / len(SEGMENTS)
    data, positions, colours, counts = [], [], [], []
    for i, augmentation in enumerate(order):
        ns = []
        for s, segment in enumerate(SEGMENTS):
            x = _defined(values[(augmentations == augmentation) & (segments == segment)])
            ns.append(x.size)
            if x.size:
                data.append(x)
                positions.append(i + (s - (len(SEGMENTS) - 1) / 2) * width)
                colours.append(SEGMENT_COLOURS[segment])
        counts.append(ns)
    fig = new_figure(max(7.0, 1.45 * len(order) + 2.6), 4.2)
    ax = fig.subplots()
    if data:
        parts = ax.boxplot(data, positions=positions, widths=width * 0.85, patch_artist=True, showfliers=False,
                           medianprops={"color": "#111111", "lw": 1.2})
        for box, colour in zip(parts["boxes"], colours):
            box.set_facecolor(colour)
    ax.set_xticks(range(len(order)), [f"{a}\n" + " · ".join(str(n) for n in ns) for a, ns in zip(order, counts)])
    ax.set_xlim(-0.6, len(order) - 0.4)
    ax.set_xlabel("augmentation (under each name: rows per segment, in legend order)")
    ax.set_ylabel(metric_axis_label(metric))
    fig.suptitle(f"{metric} by correctness of baseline / augmented model (all seeds)")
    fig.legend(handles=[Patch(facecolor=SEGMENT_COLOURS[s], label=s.replace("_", " ")) for s in SEGMENTS],
               loc="outside lower center", ncols=len(SEGMENTS), frameon=False)
    return fig

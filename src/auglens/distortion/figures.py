"""One figure per distortion analysis, built from its tables (mean over runs; bars/bands = std over runs).

Figures use auglens's report style (:mod:`auglens.report.style`: Okabe–Ito colour-blind-safe palette, Agg
through :class:`matplotlib.figure.Figure`, never pyplot); each model type keeps its colour in every figure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from auglens.report.style import OKABE_ITO, augmentation_colours, new_figure

__all__ = ["FIGURES"]


def _std(values) -> np.ndarray:
    return np.nan_to_num(np.asarray(values, dtype=float))  # one run: no spread to draw


def _grouped_bars(ax, categories: Sequence[str], series: dict[str, tuple[np.ndarray, np.ndarray]],
                  colours: dict[str, str]) -> None:
    """Bars of each series side by side per category; series = {label: (means, stds)}."""
    x = np.arange(len(categories))
    width = 0.8 / max(len(series), 1)
    for i, (label, (means, stds)) in enumerate(series.items()):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, means, width, yerr=_std(stds), capsize=2,
               color=colours[label], label=label, error_kw={"elinewidth": 0.8})
    rotate = sum(len(str(c)) for c in categories) > 40
    ax.set_xticks(x, categories, rotation=35 if rotate else 0, ha="right" if rotate else "center")


def interference_figure(tables: dict[str, pd.DataFrame], config) -> Figure:
    """Per-class increase of wrong predictions per distortion, in the configured normalisation; legend: DI mean ± std."""
    normalisation = config.interference.normalisation
    increases = tables["increases"]
    increases = increases[increases["trained_without"].fillna("") == ""]
    summary = tables["di_summary"]
    distortions = list(dict.fromkeys(increases["distortion"]))
    labels = list(dict.fromkeys(increases["augmentation"]))
    colours = augmentation_colours(labels)
    fig = new_figure(max(6.0, 4.2 * len(distortions)), 3.4)
    axes = np.atleast_1d(fig.subplots(1, len(distortions), squeeze=False)).ravel()
    for ax, distortion in zip(axes, distortions):
        part = increases[increases["distortion"] == distortion]
        stats = part.groupby(["augmentation", "class", "class_name"], sort=False)[f"increase_{normalisation}"].agg(["mean", "std"])
        stats = stats.reset_index()
        classes = list(dict.fromkeys(stats["class_name"]))
        series, named = {}, {}
        for label in labels:
            rows = stats[stats["augmentation"] == label]
            di = summary[(summary["augmentation"] == label) & (summary["distortion"] == distortion)].iloc[0]
            mean, std = di[f"di_{normalisation}_mean"], np.nan_to_num(di[f"di_{normalisation}_std"])
            name = f"{label} (DI {mean:.2f} ± {std:.2f} %)"
            series[name] = (rows["mean"].to_numpy(), rows["std"].to_numpy())
            named[name] = colours[label]
        _grouped_bars(ax, classes, series, named)
        ax.axhline(0.0, color="black", linewidth=0.6)
        ax.set_title(distortion.replace("_", " "))
        ax.set_ylabel("increase in wrong predictions as class\n"
                      + ("(share of wrong predictions × K/100)" if normalisation == "release" else "(% of test images)"))
        ax.legend(frameon=False)
    return fig


def occlusion_figure(tables: dict[str, pd.DataFrame], config) -> Figure:
    """CutOcclusion (test accuracy, in-bounds boxes) and iOcclusion per masking over the occluded fraction."""
    summary = tables["occlusion_summary"]
    occluders = list(dict.fromkeys(summary["occluder"]))
    maskings = list(dict.fromkeys(summary["masking"]))
    labels = list(dict.fromkeys(summary["augmentation"]))
    colours = augmentation_colours(labels)
    panels = [("CutOcclusion (box)", "box", "test_accuracy", "test accuracy (%)")] + [
        (f"iOcclusion ({m})", m, "i_occlusion", "iOcclusion (unitless)") for m in maskings]
    fig = new_figure(3.0 * len(panels), 2.8 * len(occluders))
    axes = fig.subplots(len(occluders), len(panels), squeeze=False)
    for r, occluder in enumerate(occluders):
        for c, (title, masking, value, ylabel) in enumerate(panels):
            ax = axes[r, c]
            for label in labels:
                rows = summary[(summary["augmentation"] == label) & (summary["occluder"] == occluder)
                               & (summary["masking"] == masking)].sort_values("fraction")
                x, mean, std = rows["fraction"] * 100, rows[f"{value}_mean"], _std(rows[f"{value}_std"])
                ax.plot(x, mean, color=colours[label], label=label, marker="o", markersize=3)
                ax.fill_between(x, mean - std, mean + std, color=colours[label], alpha=0.2, linewidth=0)
            ax.set_title(f"{title}, {occluder}")
            ax.set_xlabel("occluded pixels (%)")
            ax.set_ylabel(ylabel)
    axes[0, 0].legend(frameon=False)
    return fig


def affinity_figure(tables: dict[str, pd.DataFrame], config) -> Figure:
    """Affinity against Diversity and MixDiversity, one point per augmentation (error bars: std over runs)."""
    summary = tables["affinity_summary"]
    colours = augmentation_colours(list(summary["augmentation"]))
    fig = new_figure(7.5, 3.2)
    axes = fig.subplots(1, 2)
    kind = summary["affinity_kind"].iloc[0] if len(summary) else "difference"
    for ax, column, title in zip(axes, ("diversity", "mix_diversity"), ("Diversity (majority-label CE)",
                                                                          "MixDiversity (λ-weighted CE)")):
        for _, row in summary.iterrows():
            ax.errorbar(row[f"{column}_mean"], row["affinity_mean"], xerr=_std(row[f"{column}_std"]),
                        yerr=_std(row["affinity_std"]), fmt="o", color=colours[row["augmentation"]],
                        label=row["augmentation"], capsize=2)
        ax.set_xlabel(f"{title} (nats)")
        ax.set_ylabel("affinity (accuracy points)" if kind == "difference" else "affinity (ratio)")
        ax.grid(True, axis="both")
    axes[0].legend(frameon=False)
    return fig


def interdataset_figure(tables: dict[str, pd.DataFrame], config) -> Figure:
    """Test accuracy per augmentation when partners come from the same data set or another one."""
    summary = tables["interdataset_summary"]
    augmentations = list(dict.fromkeys(summary["augmentation"]))
    partners = list(dict.fromkeys(summary["partner"]))
    colours = {p: OKABE_ITO[i % len(OKABE_ITO)] for i, p in enumerate(partners)}
    series = {}
    for partner in partners:
        rows = summary[summary["partner"] == partner].set_index("augmentation").loc[augmentations]
        series[partner] = (rows["accuracy_mean"].to_numpy(), rows["accuracy_std"].to_numpy())
    fig = new_figure(max(5.0, 1.6 * len(augmentations) + 2), 3.2)
    ax = fig.subplots()
    _grouped_bars(ax, augmentations, series, colours)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Mixing with another data set (reformulated objective)")
    ax.legend(title="partners", frameon=False)
    return fig


def simplicity_figure(tables: dict[str, pd.DataFrame], config) -> Figure:
    """Accuracy against each half's label on randomly recombined stacked test pairs."""
    summary = tables["simplicity_summary"]
    names = [a if not h else f"{a} ({h} half)" for a, h in zip(summary["augmentation"], summary["mixed_half"])]
    series = {"simple half's label": (summary["simple_label_accuracy_mean"].to_numpy(),
                                      summary["simple_label_accuracy_std"].to_numpy()),
              "complex half's label": (summary["complex_label_accuracy_mean"].to_numpy(),
                                       summary["complex_label_accuracy_std"].to_numpy())}
    fig = new_figure(max(5.0, 1.8 * len(names) + 2), 3.2)
    ax = fig.subplots()
    _grouped_bars(ax, names, series, dict(zip(series, OKABE_ITO)))
    ax.set_ylabel("accuracy on recombined pairs (%)")
    ax.set_title("Simplicity bias: which half does the model read?")
    ax.legend(frameon=False)
    return fig


def cue_conflict_figure(tables: dict[str, pd.DataFrame], config) -> Figure:
    """Shape and texture accuracy (left) and shape bias (right) per model type."""
    summary = tables["cue_conflict_summary"]
    labels = list(summary["augmentation"])
    fig = new_figure(max(7.0, 2.2 * len(labels) + 2), 3.2)
    left, right = fig.subplots(1, 2)
    series = {"shape": (summary["shape_accuracy_mean"].to_numpy(), summary["shape_accuracy_std"].to_numpy()),
              "texture": (summary["texture_accuracy_mean"].to_numpy(), summary["texture_accuracy_std"].to_numpy())}
    _grouped_bars(left, labels, series, dict(zip(series, OKABE_ITO)))
    left.set_ylabel("accuracy on cue-conflict images (%)")
    left.legend(frameon=False)
    colours = augmentation_colours(labels)
    _grouped_bars(right, labels, {"shape bias": (summary["shape_bias_mean"].to_numpy(),
                                                 summary["shape_bias_std"].to_numpy())}, {"shape bias": OKABE_ITO[2]})
    for patch, label in zip(right.patches, labels):
        patch.set_color(colours[label])
    right.set_ylim(0, 1)
    right.set_ylabel("shape bias (shape / (shape + texture) hits)")
    return fig


FIGURES: dict[str, Callable[[dict[str, pd.DataFrame]], Figure]] = {
    "interference": interference_figure,
    "occlusion": occlusion_figure,
    "affinity": affinity_figure,
    "interdataset": interdataset_figure,
    "simplicity": simplicity_figure,
    "cue_conflict": cue_conflict_figure,
}

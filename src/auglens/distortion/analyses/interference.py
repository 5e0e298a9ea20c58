"""Data Interference (Tables 1, 3 and 6): DI of each model type under test-time distortions, and after
retraining without the class the distortion pushes predictions to.

Per model and distortion, the wrong predictions per predicted class on the clean and the distorted test
set (``wrong_predictions.csv``) give DI in both normalisations (:mod:`auglens.distortion.interference`,
Eq. 1). With ``class_removal``, every model type is retrained without one class and measured again: by default
(``removed_class = "auto"``) the basic model's c_max for every type, as the paper removes Truck for all models;
``"per_model"`` removes each type's own c_max.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from auglens.data.prepared import PreparedData
from auglens.distortion.analyses.common import (
    RESULT_VERSION,
    check_occluder,
    occluder_fill,
    floats,
    summarise,
)
from auglens.distortion.analyses.registry import register_analysis
from auglens.distortion.analyses.sections import InterferenceConfig
from auglens.distortion.distortions import (
    cut_occlusion,
    fourier_occlusion_masks,
    grid_shuffle,
    occlude,
    occlusion_fractions,
)
from auglens.distortion.interference import (
    NORMALISATIONS,
    di_index,
    misclassification_increase,
    wrong_prediction_counts,
)
from auglens.distortion.runner import BASELINE, Model

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from auglens.distortion.runner import Runner


def validate(config) -> list[str]:
    inter, errors = config.interference, []
    removal = inter.removal_distortion
    if removal is not None and removal not in inter.distortions:
        errors.append(f"interference.removal_distortion: {removal!r} is not one of interference.distortions "
                      f"{inter.distortions}")
    check_occluder("interference", [inter.occluder], inter.occluder_dataset, errors)
    if inter.removed_class == "":
        errors.append("interference.removed_class: expected 'auto', 'per_model' or a class name of the data set, "
                      "got ''")
    return errors


def removed_classes(removed_class: str, chosen: pd.DataFrame, classes: list[str], normalisation: str) -> dict[str, int]:
    """The class each model type is retrained without (Table 6), by model label.

    ``chosen``: the DI summary rows of the removal distortion, one per model type. ``"per_model"``: each type's
    own c_max; ``"auto"``: the basic model's c_max for every type (the paper's reading); a class name: that class
    for every type.
    """
    c_max = dict(zip(chosen["augmentation"], chosen[f"c_max_{normalisation}"].astype(int)))
    if removed_class == "per_model":
        return c_max
    if removed_class == "auto":
        removed = c_max[BASELINE]
    elif removed_class in classes:
        removed = classes.index(removed_class)
    else:
        raise ValueError(f"interference.removed_class: {removed_class!r} is not a class of the data set; valid: "
                         f"auto, per_model, {', '.join(classes)}")
    return {label: removed for label in c_max}


def interference_figure(tables: dict[str, pd.DataFrame], config) -> Figure:
    """Per-class increase of wrong predictions per distortion, in the configured normalisation; legend: DI mean ± std."""
    from auglens.distortion.figures import grouped_bars, new_figure, augmentation_colours

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
        grouped_bars(ax, classes, series, named)
        ax.axhline(0.0, color="black", linewidth=0.6)
        ax.set_title(distortion.replace("_", " "))
        ax.set_ylabel("increase in wrong predictions as class\n"
                      + ("(share of wrong predictions × K/100)" if normalisation == "release" else "(% of test images)"))
        ax.legend(frameon=False)
    return fig


def _distort(runner: Runner, name: str, images: torch.Tensor, keys: torch.Tensor, data: PreparedData) -> torch.Tensor:
    cfg = runner.config.interference
    if name == "grid_shuffle":
        return grid_shuffle(images, cfg.grid, keys)
    fill = occluder_fill(runner, cfg.occluder, cfg.occluder_dataset, images, keys, data)
    fraction = occlusion_fractions(keys, *cfg.occlusion_beta) if cfg.fraction is None else cfg.fraction
    if name == "fourier_occlusion":
        h, w = images.shape[-2:]
        return occlude(images, fourier_occlusion_masks(fraction, keys, h, w, cfg.decay_power), fill)
    return cut_occlusion(images, keys, fraction, restricted=cfg.restricted, fill=fill)


def _wrong_counts(runner: Runner, model: Model, data: PreparedData, data_key: str, distortion: str) -> dict:
    """Wrong predictions per predicted class on the clean and the distorted test (sub)set of one model."""
    cfg = runner.config.interference
    settings = {"grid": cfg.grid} if distortion == "grid_shuffle" else {
        "beta": cfg.occlusion_beta, "fraction": cfg.fraction, "occluder": cfg.occluder,
        "occluder_dataset": cfg.occluder_dataset,
        **({"decay_power": cfg.decay_power} if distortion == "fourier_occlusion" else {"restricted": cfg.restricted})}

    def compute():
        test = runner.subset(data.test, cfg.max_test_images)
        images = floats(test.images, runner.device)
        distorted = _distort(runner, distortion, images, runner.keys(model.seed, len(test)), data)
        clean = wrong_prediction_counts(runner.predict(model, images, data), test.labels, data.num_classes)
        wrong = wrong_prediction_counts(runner.predict(model, distorted, data), test.labels, data.num_classes)
        return {"clean_wrong": clean.tolist(), "distorted_wrong": wrong.tolist(), "test_images": len(test)}

    return runner.cached("distortion-interference", {
        "v": RESULT_VERSION, "model": model.key, "data": data_key, "max_test": cfg.max_test_images,
        "distortion": distortion, "settings": settings, "distortion_seed": runner.config.runs.distortion_seed,
    }, compute)


def _di_tables(wrong: pd.DataFrame, by: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-run DI in both normalisations (own weight and worst case) and mean ± std per group."""
    runs = []
    for group_values, group in wrong.groupby(by, sort=False):
        clean = group.pivot(index="seed", columns="class", values="clean_wrong")
        distorted = group.pivot(index="seed", columns="class", values="distorted_wrong").loc[clean.index, clean.columns]
        test_images = int(group["test_images"].iloc[0])
        names = group.drop_duplicates("class").set_index("class")["class_name"]
        row_parts: list[dict] = [{**dict(zip(by, group_values)), "seed": seed} for seed in clean.index]
        for normalisation in NORMALISATIONS:
            counts = (torch.tensor(clean.to_numpy()), torch.tensor(distorted.to_numpy()), test_images, normalisation)
            result, worst = di_index(*counts), di_index(*counts, worst=True)
            c_max = int(clean.columns[result.c_max])
            for i, part in enumerate(row_parts):
                part.update({f"c_max_{normalisation}": c_max, f"c_max_{normalisation}_name": names[c_max],
                             f"di_{normalisation}": float(result.per_run[i]),
                             f"di_{normalisation}_worst": float(worst.per_run[i])})
        runs += row_parts
    runs = pd.DataFrame(runs)
    c_max = [f"c_max_{n}{suffix}" for n in NORMALISATIONS for suffix in ("", "_name")]
    summary = summarise(runs, [*by, *c_max], [f"di_{n}{s}" for n in NORMALISATIONS for s in ("", "_worst")])
    return runs, summary


def _count_rows(model: Model, distortion: str, counts: dict, class_ids: list[int], class_names: list[str],
                trained_without: str) -> list[dict]:
    return [{"augmentation": model.label, "trained_without": trained_without, "distortion": distortion,
             "seed": model.seed, "class": class_ids[k], "class_name": class_names[class_ids[k]],
             "clean_wrong": clean, "distorted_wrong": wrong, "test_images": counts["test_images"]}
            for k, (clean, wrong) in enumerate(zip(counts["clean_wrong"], counts["distorted_wrong"]))]


def _increases(wrong: pd.DataFrame) -> pd.DataFrame:
    """Signed per-class increases of every run in both normalisations, from the wrong-prediction counts."""
    keys = ["augmentation", "trained_without", "distortion", "seed"]
    parts = []
    for _, group in wrong.groupby(keys, sort=False):
        clean, distorted = torch.tensor(group["clean_wrong"].to_numpy()), torch.tensor(group["distorted_wrong"].to_numpy())
        part = group[[*keys, "class", "class_name"]].copy()
        for normalisation in NORMALISATIONS:
            part[f"increase_{normalisation}"] = misclassification_increase(
                clean, distorted, int(group["test_images"].iloc[0]), normalisation).numpy()
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


@register_analysis("interference", InterferenceConfig, interference_figure, validate)
def interference(runner: Runner) -> dict[str, pd.DataFrame]:
    """DI index per model type and distortion (Eq. 1), worst case, class removal (Table 6)."""
    cfg = runner.config.interference
    data, data_key = runner.data()
    everything = list(range(data.num_classes))
    rows = []
    for model in runner.models(data, data_key):
        for distortion in cfg.distortions:
            counts = _wrong_counts(runner, model, data, data_key, distortion)
            rows += _count_rows(model, distortion, counts, everything, data.classes, "")
    wrong = pd.DataFrame(rows)
    di_runs, di_summary = _di_tables(wrong, ["augmentation", "distortion"])
    tables = {"wrong_predictions": wrong, "di_runs": di_runs, "di_summary": di_summary}
    if cfg.class_removal:
        # Table 6: retrain each model type without the removed class, measure again under the removal distortion.
        distortion = cfg.removal_distortion or cfg.distortions[0]
        removal_rows = []
        chosen = di_summary[di_summary["distortion"] == distortion]
        params = {a.name: a.params for a in runner.config.augmentations} | {BASELINE: {}}
        removals = list(removed_classes(cfg.removed_class, chosen, data.classes, cfg.normalisation).items())
        reduced = {removed: runner.derived_data("without_class", data_key, removed=removed)
                   for removed in dict.fromkeys(removed for _, removed in removals)}
        runner.train([runner.job(runner.train_spec(label, params[label], seed), reduced[removed][1])
                      for label, removed in removals for seed in runner.config.runs.seeds])  # all at once
        for label, removed in removals:
            reduced_data, reduced_key = reduced[removed]
            original = [k for k in everything if k != removed]
            for seed in runner.config.runs.seeds:
                model = runner.model(runner.train_spec(label, params[label], seed), reduced_data, reduced_key)
                counts = _wrong_counts(runner, model, reduced_data, reduced_key, distortion)
                removal_rows += _count_rows(model, distortion, counts, original, data.classes, data.classes[removed])
        removal = pd.DataFrame(removal_rows)
        removal_runs, removal_summary = _di_tables(removal, ["augmentation", "trained_without", "distortion"])
        tables["wrong_predictions"] = wrong = pd.concat([wrong, removal], ignore_index=True)
        tables["class_removal_runs"] = removal_runs
        tables["class_removal_summary"] = removal_summary
    tables["increases"] = _increases(wrong)
    return tables

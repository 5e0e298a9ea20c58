"""Occlusion robustness (Section 3, Figures 3, 4 and B.4): CutOcclusion and iOcclusion (Eq. 2) over occluded
fractions, per masking (Grad-CAM saliency, in-bounds box, Fourier mask) and occluder (black, mean colour,
another data set's images), on all images and on user-given subsets (typical and tail images, Figure 4).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import pandas as pd

from auglens.data.datasets import ImageSet
from auglens.data.prepared import PreparedData
from auglens.distortion.analyses.common import (
    RESULT_VERSION,
    TRAIN_OFFSET,
    accuracy,
    check_occluder,
    check_subsets,
    floats,
    index_subsets,
    occluder_fill,
    summarise,
)
from auglens.distortion.analyses.registry import register_analysis
from auglens.distortion.analyses.sections import OcclusionConfig
from auglens.distortion.distortions import occlude
from auglens.distortion.occlusion import i_occlusion, occlusion_masks, saliency_maps
from auglens.distortion.runner import Model

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from auglens.distortion.runner import Runner


def validate(config) -> list[str]:
    from auglens.cam import CAM_METHODS

    occ, errors = config.occlusion, []
    if occ.cam_method not in CAM_METHODS:
        errors.append(f"occlusion.cam_method: {CAM_METHODS.unknown_message(occ.cam_method)}")
    check_occluder("occlusion", occ.occluders, occ.occluder_dataset, errors)
    if "occlusion" in config.analyses:
        check_subsets("occlusion", occ.subsets, errors)
    return errors


def occlusion_figure(tables: dict[str, pd.DataFrame], config) -> Figure:
    """CutOcclusion (test accuracy, in-bounds boxes) and iOcclusion per masking over the occluded fraction."""
    from auglens.distortion.figures import augmentation_colours, new_figure, std_or_zero

    summary = tables["occlusion_summary"]
    summary = summary[summary["subset"] == "all"]
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
                x, mean, std = rows["fraction"] * 100, rows[f"{value}_mean"], std_or_zero(rows[f"{value}_std"])
                ax.plot(x, mean, color=colours[label], label=label, marker="o", markersize=3)
                ax.fill_between(x, mean - std, mean + std, color=colours[label], alpha=0.2, linewidth=0)
            ax.set_title(f"{title}, {occluder}")
            ax.set_xlabel("occluded pixels (%)")
            ax.set_ylabel(ylabel)
    axes[0, 0].legend(frameon=False)
    return fig


def _occlusion_rows(runner: Runner, model: Model, data: PreparedData, data_key: str,
                    maskings: list[str]) -> list[dict]:
    cfg = runner.config.occlusion

    def accuracies(images_set: ImageSet, offset: int) -> dict:
        images = floats(images_set.images, runner.device)
        keys = runner.keys(model.seed, len(images), offset)
        h, w = images.shape[-2:]
        out = {"clean": accuracy(runner.predict(model, images, data), images_set.labels)}
        saliency = None
        if "saliency" in maskings:
            layer = cfg.target_layer or getattr(model.network, "auglens_occlusion_layer", None)
            saliency = saliency_maps(model.network, images, *runner.stats(model, data), model.spec.input_size,
                                     cfg.cam_method, layer, model.spec.eval_batch_size)
        for occluder in cfg.occluders:
            fill = occluder_fill(runner, occluder, cfg.occluder_dataset, images, keys, data)
            for masking in maskings:
                for p in cfg.fractions:
                    masks = occlusion_masks(masking, p, keys, h, w, saliency, cfg.order, cfg.decay_power,
                                            cfg.fourier_fraction)
                    preds = runner.predict(model, occlude(images, masks, fill), data)
                    out[f"{occluder}/{masking}/{p}"] = accuracy(preds, images_set.labels)
        return out

    def rows_of(subset: str, train: dict, test: dict) -> list[dict]:
        rows = []
        for occluder in cfg.occluders:
            for masking in maskings:
                for p in cfg.fractions:
                    name = f"{occluder}/{masking}/{p}"
                    rows.append({"subset": subset, "occluder": occluder, "masking": masking, "fraction": p,
                                 "train_accuracy": 100 * train[name], "test_accuracy": 100 * test[name],
                                 "clean_train_accuracy": 100 * train["clean"],
                                 "clean_test_accuracy": 100 * test["clean"]})
        return rows

    def compute():
        train = runner.subset(data.train, cfg.max_train_images)
        test = runner.subset(data.test, cfg.max_test_images)
        rows = rows_of("all", accuracies(train, TRAIN_OFFSET), accuracies(test, 0))
        for name, index in index_subsets(cfg.subsets, data).items():
            # A subset without train (test) indices uses all of the (sub)sampled train (test) images.
            part_train = data.train.subset(index["train"]) if "train" in index else train
            part_test = data.test.subset(index["test"]) if "test" in index else test
            rows += rows_of(name, accuracies(part_train, TRAIN_OFFSET), accuracies(part_test, 0))
        return rows

    settings = dataclasses.asdict(cfg) | {"maskings": maskings,
                                          "subset_files": {k: _digest(v) for k, v in cfg.subsets.items()}}
    rows = runner.cached("distortion-occlusion", {"v": RESULT_VERSION, "model": model.key, "data": data_key,
                                                  "settings": settings,
                                                  "distortion_seed": runner.config.runs.distortion_seed}, compute)
    for row in rows:
        row.update(augmentation=model.label, seed=model.seed,
                   i_occlusion=float(i_occlusion(row["train_accuracy"], row["test_accuracy"],
                                                 row["clean_train_accuracy"], row["clean_test_accuracy"])))
    return rows


def _digest(path: str) -> str:
    """Content hash of a subset file: editing the file invalidates the cached results."""
    import hashlib
    from pathlib import Path

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@register_analysis("occlusion", OcclusionConfig, occlusion_figure, validate)
def occlusion(runner: Runner) -> dict[str, pd.DataFrame]:
    """CutOcclusion (test accuracy under in-bounds boxes) and iOcclusion (Eq. 2) over occluded fractions."""
    cfg = runner.config.occlusion
    data, data_key = runner.data()
    maskings = list(cfg.maskings) + ([] if "box" in cfg.maskings else ["box"])
    rows = [row for model in runner.models(data, data_key)
            for row in _occlusion_rows(runner, model, data, data_key, maskings)]
    columns = ["augmentation", "seed", "subset", "occluder", "masking", "fraction", "train_accuracy", "test_accuracy",
               "clean_train_accuracy", "clean_test_accuracy", "i_occlusion"]
    runs = pd.DataFrame(rows)[columns]
    summary = summarise(runs, ["augmentation", "subset", "occluder", "masking", "fraction"],
                        ["i_occlusion", "test_accuracy", "train_accuracy"])
    return {"occlusion_runs": runs, "occlusion_summary": summary}

"""Simplicity bias with stacked images (Section 4.1, after Shah et al.): which half does a model read, and does
mixing one half change it?
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import pandas as pd
import torch

from auglens.config import config_field
from auglens.data.datasets import ImageSet, load_dataset
from auglens.data.prepared import PreparedData
from auglens.data.split import stratified_split, stratified_subset
from auglens.data.transforms import channel_stats
from auglens.distortion.analyses.common import RESULT_VERSION, accuracy, summarise
from auglens.distortion.analyses.interdataset import mixed_family_errors
from auglens.distortion.analyses.registry import register_analysis
from auglens.distortion.runner import BASELINE
from auglens.distortion.simplicity import matched_pairs, pick_classes, random_pairs, stacked_set

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from auglens.distortion.runner import Runner


@dataclass
class SimplicityConfig:
    simple: str = config_field("mnist", "data set stacked on top (the paper: MNIST)")
    simple_classes: list[int] | None = config_field(None, "class indices of the simple set, in pairing order (None: all)")
    complex: str = config_field("cifar10", "data set below (the paper: CIFAR-10); its label is the training label")
    complex_classes: list[int] | None = config_field(None, "class indices of the complex set (None: all)")
    simple_root: str | None = config_field(None, "folder of the simple data set (default: as data.root)")
    complex_root: str | None = config_field(None, "folder of the complex data set (default: as data.root)")
    train_subset: int | None = config_field(None, "stratified subset of the complex training set (None: all)", min=10)
    test_subset: int | None = config_field(None, "stratified subset of the complex test set (None: all)", min=1)
    augmentations: list[str] = config_field(["fmix"], "mixed-sample augmentations applied to one half", min_len=1)
    half: Literal["simple", "complex"] = config_field("simple", "the half that is mixed (the paper: the simple one)")
    objective: Literal["mixed", "reformulated"] = config_field(
        "reformulated", "loss of the mixed half: reformulated (first label only, as the release's *_simplicity "
        "trainers) or mixed (both labels; the mixed half then carries the mixing and becomes the informative one)")
    alpha: float = config_field(1.0, "lambda ~ Beta(alpha + 1, alpha) (reformulated) or Beta(alpha, alpha) (mixed)",
                          min=0.0, exclusive_min=True)
    pairing_seed: int = config_field(0, "seed of the class-matched training pairs and the random test pairs")


def validate(config) -> list[str]:
    from auglens.data import DATASETS

    simple, errors = config.simplicity, []
    for key in ("simple", "complex"):
        if getattr(simple, key) not in DATASETS:
            errors.append(f"simplicity.{key}: {DATASETS.unknown_message(getattr(simple, key))}")
    if (simple.simple_classes is not None and simple.complex_classes is not None
            and len(simple.simple_classes) != len(simple.complex_classes)):
        errors.append(f"simplicity: simple_classes and complex_classes must have the same length, got "
                      f"{len(simple.simple_classes)} and {len(simple.complex_classes)}")
    return errors + mixed_family_errors("simplicity", simple.augmentations)


def simplicity_figure(tables: dict[str, pd.DataFrame], config) -> Figure:
    """Accuracy against each half's label on randomly recombined stacked test pairs."""
    from auglens.distortion.figures import OKABE_ITO, grouped_bars, new_figure

    summary = tables["simplicity_summary"]
    names = [a if not h else f"{a} ({h} half)" for a, h in zip(summary["augmentation"], summary["mixed_half"])]
    series = {"simple half's label": (summary["simple_label_accuracy_mean"].to_numpy(),
                                      summary["simple_label_accuracy_std"].to_numpy()),
              "complex half's label": (summary["complex_label_accuracy_mean"].to_numpy(),
                                       summary["complex_label_accuracy_std"].to_numpy())}
    fig = new_figure(max(5.0, 1.8 * len(names) + 2), 3.2)
    ax = fig.subplots()
    grouped_bars(ax, names, series, dict(zip(series, OKABE_ITO)))
    ax.set_ylabel("accuracy on recombined pairs (%)")
    ax.set_title("Simplicity bias: which half does the model read?")
    ax.legend(frameon=False)
    return fig


def _stacked_data(runner: Runner) -> tuple[PreparedData, ImageSet, torch.Tensor]:
    """(class-matched stacked data for training/validation/test, randomly recombined test set, its simple labels)."""
    cfg, split = runner.config.simplicity, runner.config.split
    simple = load_dataset(cfg.simple, cfg.simple_root or runner.config.data.root, runner.config.data.download)
    complex_ = load_dataset(cfg.complex, cfg.complex_root or runner.config.data.root, runner.config.data.download)
    simple = {k: pick_classes(v, cfg.simple_classes) for k, v in simple.items()}
    complex_ = {k: pick_classes(v, cfg.complex_classes) for k, v in complex_.items()}
    if simple["train"].num_classes != complex_["train"].num_classes:
        raise ValueError(f"simplicity: {cfg.simple} has {simple['train'].num_classes} classes and {cfg.complex} "
                         f"{complex_['train'].num_classes}; pick the same number with simple_classes/complex_classes")
    full = complex_["train"].subset(stratified_subset(complex_["train"].labels, cfg.train_subset, 0))
    test = complex_["test"].subset(stratified_subset(complex_["test"].labels, cfg.test_subset, 0))
    train_idx, val_idx = stratified_split(full.labels, split.validation_fraction, split.seed)
    sets = []
    for i, part in enumerate((full.subset(train_idx), full.subset(val_idx), test)):
        pairs = matched_pairs(simple["train" if i < 2 else "test"].labels, part.labels, cfg.pairing_seed + i)
        sets.append(stacked_set(simple["train" if i < 2 else "test"], part, pairs)[0])
    mean, std = channel_stats(sets[0].images)
    recombined, simple_labels = stacked_set(simple["test"], test,
                                            random_pairs(len(test), len(simple["test"]), cfg.pairing_seed + 3))
    return PreparedData(sets[0], sets[1], sets[2], mean, std), recombined, simple_labels


@register_analysis("simplicity", SimplicityConfig, simplicity_figure, validate)
def simplicity(runner: Runner) -> dict[str, pd.DataFrame]:
    """Accuracy against the simple and the complex half's label on randomly recombined stacked pairs."""
    cfg = runner.config.simplicity
    key_obj = {"simplicity": {k: v for k, v in dataclasses.asdict(cfg).items()
                              if k not in ("augmentations", "half", "alpha", "objective")},
               "split": dataclasses.asdict(runner.config.split), "root": runner.config.data.root}
    (data, recombined, simple_labels), data_key = runner.custom_data(key_obj, lambda: _stacked_data(runner))
    region = "top" if cfg.half == "simple" else "bottom"
    trained = [(BASELINE, {})] + [(name, {"alpha": cfg.alpha, "region": region, "objective": cfg.objective})
                                  for name in cfg.augmentations]
    rows = []
    for name, params in trained:
        for seed in runner.config.runs.seeds:
            # Stacked images are not square: models see them at their own size.
            model = runner.model(runner.train_spec(name, params, seed, input_size=None), data, data_key)

            def compute(model=model):
                preds = runner.predict(model, recombined.images, data)
                matched = runner.predict(model, data.test.images, data)
                return {"simple_label_accuracy": 100 * accuracy(preds, simple_labels),
                        "complex_label_accuracy": 100 * accuracy(preds, recombined.labels),
                        "matched_accuracy": 100 * accuracy(matched, data.test.labels)}

            row = runner.cached("distortion-simplicity", {"v": RESULT_VERSION, "model": model.key, "data": data_key},
                                compute)
            rows.append({"augmentation": name, "mixed_half": "" if name == BASELINE else cfg.half, "seed": seed, **row})
    runs = pd.DataFrame(rows)
    summary = summarise(runs, ["augmentation", "mixed_half"],
                        ["simple_label_accuracy", "complex_label_accuracy", "matched_accuracy"])
    return {"simplicity_runs": runs, "simplicity_summary": summary}

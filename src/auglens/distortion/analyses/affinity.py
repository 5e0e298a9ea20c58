"""Affinity and diversity (Section 4, Table 5, after Gontijo-Lopes et al.): how far the reference model
finds augmented test data from clean data, and the augmented models' final training losses.

Test images are augmented where the augmented model's training augmented them (``training.
augmentation_resolution``): as stored, or resized to the model's input size.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from auglens.augment import build_augmentation
from auglens.distortion import affinity as aff
from auglens.distortion.analyses.common import (
    RESULT_VERSION,
    accuracy,
    augment_in_chunks,
    check_subsets,
    floats,
    index_subsets,
    summarise,
)
from auglens.distortion.analyses.registry import register_analysis
from auglens.distortion.analyses.sections import AffinityConfig
from auglens.distortion.runner import BASELINE
from auglens.hashing import stable_hash
from auglens.train.epochs import augmentation_input

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from auglens.distortion.runner import Runner


def validate(config) -> list[str]:
    errors: list[str] = []
    if "affinity" in config.analyses:
        check_subsets("affinity", config.affinity.subsets, errors)
    return errors


def affinity_figure(tables: dict[str, pd.DataFrame], config) -> Figure:
    """Affinity against Diversity and MixDiversity, one point per augmentation (error bars: std over runs)."""
    from auglens.distortion.figures import augmentation_colours, new_figure, std_or_zero

    summary = tables["affinity_summary"]
    summary = summary[summary["subset"] == "all"]
    colours = augmentation_colours(list(summary["augmentation"]))
    fig = new_figure(7.5, 3.2)
    axes = fig.subplots(1, 2)
    kind = summary["affinity_kind"].iloc[0] if len(summary) else "difference"
    for ax, column, title in zip(axes, ("diversity", "mix_diversity"), ("Diversity (majority-label CE)",
                                                                          "MixDiversity (λ-weighted CE)")):
        for _, row in summary.iterrows():
            ax.errorbar(row[f"{column}_mean"], row["affinity_mean"], xerr=std_or_zero(row[f"{column}_std"]),
                        yerr=std_or_zero(row["affinity_std"]), fmt="o", color=colours[row["augmentation"]],
                        label=row["augmentation"], capsize=2)
        ax.set_xlabel(f"{title} (nats)")
        ax.set_ylabel("affinity (accuracy points)" if kind == "difference" else "affinity (ratio)")
        ax.grid(True, axis="both")
    axes[0].legend(frameon=False)
    return fig


@register_analysis("affinity", AffinityConfig, affinity_figure, validate)
def affinity(runner: Runner) -> dict[str, pd.DataFrame]:
    """Affinity (reference model, augmented vs clean test data) and Diversity / MixDiversity (Table 5).

    Diversity and MixDiversity are read from the training history: the final epoch's mean training loss of
    the augmented model against the majority label, and its λ-weighted objective; ``*_ratio`` divides them
    by the basic model's final training loss of the same run.
    """
    cfg = runner.config.affinity
    data, data_key = runner.data()
    tests = {"all": (runner.subset(data.test, cfg.max_test_images), None)}
    tests |= {name: (data.test.subset(index["test"]), index["test"].tolist())
              for name, index in index_subsets(cfg.subsets, data).items()}
    wanted = [(BASELINE, {})] + [(a.name, a.params) for a in runner.config.augmentations]
    runner.train([runner.job(runner.train_spec(name, params, seed), data_key)  # all at once: in parallel on Ray
                  for name, params in wanted for seed in runner.config.runs.seeds])
    rows = []
    for aug in runner.config.augmentations:
        for seed in runner.config.runs.seeds:
            # The run's own augmentation: what is drawn once per training run (Random Masks' masks) is that run's.
            augmentation = build_augmentation(aug.name, run_seed=seed, **aug.params)
            reference = runner.model(runner.train_spec(BASELINE, {}, seed), data, data_key)
            model = runner.model(runner.train_spec(aug.name, aug.params, seed), data, data_key)

            for subset, (test, index) in tests.items():
                def compute(reference=reference, model=model, augmentation=augmentation, test=test):
                    # Augmented where the model's training augmented: as stored or resized for the model.
                    images = augmentation_input(floats(test.images, runner.device), model.spec.augmentation_resolution,
                                                model.spec.input_size)
                    labels = test.labels.to(runner.device)
                    augmented = augment_in_chunks(augmentation, images, labels, runner.keys(model.seed, len(test)),
                                                  model.spec.eval_batch_size)
                    clean = accuracy(runner.predict(reference, images, data), test.labels)
                    shifted = accuracy(runner.predict(reference, augmented.images, data), aff.majority_labels(augmented))
                    return {"clean_accuracy": 100 * clean, "augmented_accuracy": 100 * shifted}

                row = runner.cached("distortion-affinity", {
                    "v": RESULT_VERSION, "reference": reference.key, "model": model.key, "data": data_key,
                    "max_test": cfg.max_test_images, "distortion_seed": runner.config.runs.distortion_seed,
                    "test_index": None if index is None else stable_hash(index)}, compute)
                rows.append(_row(runner, aug.name, seed, subset, row, model, reference, cfg.kind))
    runs = pd.DataFrame(rows)
    summary = summarise(runs, ["augmentation", "subset"], ["affinity", "diversity", "mix_diversity", "diversity_ratio",
                                                           "mix_diversity_ratio", "augmented_accuracy",
                                                           "clean_accuracy"])
    summary.insert(1, "affinity_kind", cfg.kind)
    return {"affinity_runs": runs, "affinity_summary": summary}


def _row(runner, augmentation, seed, subset, row, model, reference, kind) -> dict:
    """Affinity of one run on one test subset; Diversity from the models' final training epoch."""
    final, basic = runner.history(model)[-1], runner.history(reference)[-1]
    return {"augmentation": augmentation, "seed": seed, "subset": subset, **row,
            "affinity": float(aff.affinity(row["augmented_accuracy"], row["clean_accuracy"], kind)),
            "diversity": final["train_loss_majority"], "mix_diversity": final["train_loss"],
            "basic_train_loss": basic["train_loss"],
            "diversity_ratio": final["train_loss_majority"] / basic["train_loss"],
            "mix_diversity_ratio": final["train_loss"] / basic["train_loss"]}

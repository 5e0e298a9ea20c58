"""Simplicity bias with stacked images (Section 4.1, after Shah et al.): which half does a model read, and does
mixing one half change it?
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from auglens.distortion.analyses.common import RESULT_VERSION, accuracy, summarise
from auglens.distortion.analyses.interdataset import mixed_family_errors
from auglens.distortion.analyses.registry import register_analysis
from auglens.distortion.analyses.sections import SimplicityConfig
from auglens.distortion.derived import stacked_data
from auglens.distortion.runner import BASELINE

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from auglens.distortion.runner import Runner


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


@register_analysis("simplicity", SimplicityConfig, simplicity_figure, validate)
def simplicity(runner: Runner) -> dict[str, pd.DataFrame]:
    """Accuracy against the simple and the complex half's label on randomly recombined stacked pairs."""
    cfg = runner.config.simplicity
    root, split = runner.config.data.root, runner.config.split
    data, data_key = runner.derived_data(
        "stacked", simple=cfg.simple, simple_root=cfg.simple_root or root, complex=cfg.complex,
        complex_root=cfg.complex_root or root, simple_classes=cfg.simple_classes, complex_classes=cfg.complex_classes,
        train_subset=cfg.train_subset, test_subset=cfg.test_subset, pairing_seed=cfg.pairing_seed,
        validation_fraction=split.validation_fraction, split_seed=split.seed, download=runner.config.data.download,
        # How the simple half is fitted to the complex images (stack_halves: zero-padded, as the paper). Part
        # of the data key, so models trained on stacks made otherwise are not taken for these.
        simple_fit="pad")
    _, recombined, simple_labels = stacked_data(runner.spec(data_key))
    region = "top" if cfg.half == "simple" else "bottom"
    trained = [(BASELINE, {})] + [(name, {"alpha": cfg.alpha, "region": region, "objective": cfg.objective})
                                  for name in cfg.augmentations]
    # Stacked images are not square: models see them at their own size.
    specs = [(name, seed, runner.train_spec(name, params, seed, input_size=None))
             for name, params in trained for seed in runner.config.runs.seeds]
    runner.train([runner.job(spec, data_key) for _, _, spec in specs])  # all at once: in parallel on Ray
    rows = []
    for name, seed, spec in specs:
        model = runner.model(spec, data, data_key)

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

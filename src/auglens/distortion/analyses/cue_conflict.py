"""Shape/texture cue conflict (Section 2.1, Table 2): shape and texture accuracy and shape bias of every
model on cue-conflict images, optionally through a many-to-one class mapping (ImageNet -> 16 classes).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import torch

from auglens.distortion.analyses.common import summarise
from auglens.distortion.analyses.registry import register_analysis
from auglens.distortion.analyses.sections import CueConflictConfig
from auglens.distortion.cue_conflict import coarse_predictions, load_class_mapping, load_cue_conflict, shape_bias

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from auglens.distortion.runner import Runner


def validate(config) -> list[str]:
    errors: list[str] = []
    if "cue_conflict" not in config.analyses:
        return errors
    folder = config.cue_conflict.folder
    if not folder:
        errors.append("cue_conflict.folder: the cue_conflict analysis needs a folder of images named "
                      "<shape><n>-<texture><n>.png; set it or drop 'cue_conflict' from analyses")
    elif not Path(folder).is_dir():
        errors.append(f"cue_conflict.folder: {folder} is not a folder")
    mapping = config.cue_conflict.class_mapping
    if mapping and not Path(mapping).is_file():
        errors.append(f"cue_conflict.class_mapping: {mapping} is not a file; give a JSON file "
                      f"{{cue class: [model class names or indices]}} or drop the key")
    return errors


def cue_conflict_figure(tables: dict[str, pd.DataFrame], config) -> Figure:
    """Shape and texture accuracy (left) and shape bias (right) per model type."""
    from auglens.distortion.figures import OKABE_ITO, augmentation_colours, grouped_bars, new_figure

    summary = tables["cue_conflict_summary"]
    labels = list(summary["augmentation"])
    fig = new_figure(max(7.0, 2.2 * len(labels) + 2), 3.2)
    left, right = fig.subplots(1, 2)
    series = {"shape": (summary["shape_accuracy_mean"].to_numpy(), summary["shape_accuracy_std"].to_numpy()),
              "texture": (summary["texture_accuracy_mean"].to_numpy(), summary["texture_accuracy_std"].to_numpy())}
    grouped_bars(left, labels, series, dict(zip(series, OKABE_ITO)))
    left.set_ylabel("accuracy on cue-conflict images (%)")
    left.legend(frameon=False)
    colours = augmentation_colours(labels)
    grouped_bars(right, labels, {"shape bias": (summary["shape_bias_mean"].to_numpy(),
                                                 summary["shape_bias_std"].to_numpy())}, {"shape bias": OKABE_ITO[2]})
    for patch, label in zip(right.patches, labels):
        patch.set_color(colours[label])
    right.set_ylim(0, 1)
    right.set_ylabel("shape bias (shape / (shape + texture) hits)")
    return fig


@register_analysis("cue_conflict", CueConflictConfig, cue_conflict_figure, validate, default=False)
def cue_conflict(runner: Runner) -> dict[str, pd.DataFrame]:
    """Shape accuracy, texture accuracy and shape bias of every model on a folder of cue-conflict images."""
    cfg = runner.config.cue_conflict
    if runner.config.model.pretrained:  # an ImageNet model: no data set needed, its own classes and input size
        from auglens.models.pretrained import pretrained_classes

        data, models = None, [runner.pretrained()]
        classes = pretrained_classes(runner.config.model.architecture)
        c, h, w = 3, models[0].spec.input_size, models[0].spec.input_size
    else:
        data, data_key = runner.data()
        models, classes = runner.models(data, data_key), data.classes
        _, c, h, w = data.test.images.shape
    mapping = load_class_mapping(cfg.class_mapping, classes) if cfg.class_mapping else None
    cue = load_cue_conflict(cfg.folder, list(mapping) if mapping else classes, c, h, w, cfg.class_map)
    rows = []
    for model in models:
        if mapping:
            probabilities = torch.softmax(runner.logits(model, cue.images, data).double(), dim=1).cpu()
            preds = coarse_predictions(probabilities, list(mapping.values()))
        else:
            preds = runner.predict(model, cue.images, data)
        rows.append({"augmentation": model.label, "seed": model.seed, **shape_bias(preds, cue.shape, cue.texture)})
    runs = pd.DataFrame(rows)
    for column in ("shape_accuracy", "texture_accuracy"):
        runs[column] = 100 * runs[column]
    summary = summarise(runs, ["augmentation"], ["shape_accuracy", "texture_accuracy", "shape_bias"])
    return {"cue_conflict_runs": runs, "cue_conflict_summary": summary}

"""Inter-dataset mixing (Section 4.1, Table 7): reformulated MSDA whose partners come from another data set."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from auglens.distortion.analyses.common import RESULT_VERSION, accuracy, summarise
from auglens.distortion.analyses.registry import register_analysis
from auglens.distortion.analyses.sections import InterDatasetConfig

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from auglens.distortion.runner import Runner


def validate(config) -> list[str]:
    from auglens.data import DATASETS

    errors = [f"interdataset.partners[{i}]: {DATASETS.unknown_message(p)}"
              for i, p in enumerate(config.interdataset.partners) if p not in DATASETS]
    errors += mixed_family_errors("interdataset", config.interdataset.augmentations)
    return errors


def mixed_family_errors(section: str, names: list[str]) -> list[str]:
    """Names that are not mixed-sample augmentations with partner/region options."""
    from auglens.augment import AUGMENTATIONS

    family = [n for n in AUGMENTATIONS.names() if "partner_dataset" in AUGMENTATIONS.parameters(n)]
    return [f"{section}.augmentations[{i}]: {name!r} is not a mixed-sample augmentation with partner/region "
            f"options; valid: {', '.join(family)}" for i, name in enumerate(names) if name not in family]


def interdataset_figure(tables: dict[str, pd.DataFrame], config) -> Figure:
    """Test accuracy per augmentation when partners come from the same data set or another one."""
    from auglens.distortion.figures import OKABE_ITO, grouped_bars, new_figure

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
    grouped_bars(ax, augmentations, series, colours)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Mixing with another data set (reformulated objective)")
    ax.legend(title="partners", frameon=False)
    return fig


@register_analysis("interdataset", InterDatasetConfig, interdataset_figure, validate)
def interdataset(runner: Runner) -> dict[str, pd.DataFrame]:
    """Test accuracy of reformulated MSDA with partners from the same (``baseline``) or another data set (Table 7)."""
    cfg = runner.config.interdataset
    data, data_key = runner.data()
    root = cfg.partner_root or runner.config.data.root
    specs = []
    for name in cfg.augmentations:
        for partner in ["baseline", *cfg.partners]:
            params = {"alpha": cfg.alpha, "objective": "reformulated"}
            if partner != "baseline":
                params |= {"partner_dataset": partner, "partner_root": root}
            specs += [(name, partner, seed, runner.train_spec(name, params, seed)) for seed in runner.config.runs.seeds]
    runner.train([runner.job(spec, data_key) for *_, spec in specs])  # all at once: in parallel on Ray
    rows = []
    for name, partner, seed, spec in specs:
        model = runner.model(spec, data, data_key)
        score = runner.cached(
            "distortion-accuracy", {"v": RESULT_VERSION, "model": model.key, "data": data_key},
            lambda model=model: 100 * accuracy(runner.predict(model, data.test.images, data), data.test.labels))
        rows.append({"augmentation": name, "partner": partner, "seed": seed, "accuracy": score})
    runs = pd.DataFrame(rows)
    return {"interdataset_runs": runs, "interdataset_summary": summarise(runs, ["augmentation", "partner"], ["accuracy"])}

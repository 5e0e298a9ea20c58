"""Sanity checks of a study's models: a model near chance level, or far below the baseline, makes its CAM
comparisons hard to read (its maps explain a classifier that has not learned the task).

Thresholds (a choice of ours, neither paper sets one):

- near chance: test accuracy below ``chance + CHANCE_MARGIN * (1 - chance)``, i.e. within the first 10% of the
  way from chance (1/K for K classes) to a perfect score — 0.19 for 10 classes, 0.325 for 4;
- far below the baseline: an augmentation's mean accuracy over seeds more than ``BASELINE_GAP`` (10 points of
  accuracy) below the baseline's mean.
"""

from __future__ import annotations

import pandas as pd

from auglens.augment.base import BASELINE

__all__ = ["BASELINE_GAP", "CHANCE_MARGIN", "sanity_problems"]

CHANCE_MARGIN = 0.1
BASELINE_GAP = 0.10


def sanity_problems(performance: pd.DataFrame, num_classes: int, baseline: str = BASELINE) -> list[str]:
    """One sentence per model near chance level and per augmentation far below the baseline.

    Args:
        performance: ``performance.csv`` (columns ``model``, ``augmentation``, ``accuracy``).
        num_classes: number of classes K (chance level 1/K).
        baseline: the baseline's augmentation name.
    """
    problems = []
    if performance.empty or num_classes < 1:
        return problems
    chance = 1.0 / num_classes
    floor = chance + CHANCE_MARGIN * (1.0 - chance)
    for row in performance.itertuples():
        if row.accuracy < floor:
            problems.append(f"model {row.model}: test accuracy {row.accuracy:.3f} is near chance level "
                            f"({chance:.3f} for {num_classes} classes); its CAMs explain a model that has not "
                            "learned the task (train longer, or check the data and learning rate)")
    means = performance.groupby("augmentation", sort=False)["accuracy"].mean()
    if baseline in means.index:
        base = float(means[baseline])
        for augmentation, accuracy in means.items():
            if augmentation != baseline and accuracy < base - BASELINE_GAP:
                problems.append(f"augmentation {augmentation}: mean test accuracy {accuracy:.3f} is "
                                f"{base - accuracy:.3f} below the baseline's {base:.3f}; differences in its CAMs "
                                "may reflect a worse model rather than what the augmentation taught")
    return problems

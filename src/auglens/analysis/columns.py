"""Which columns of the study tables are keys and which are metric values, and which way a metric points.

The set of metric columns varies with the config (``overlap_<Y>`` for every configured Y, any metric
subset), so nothing downstream lists them: every column that is not a key is a metric.
"""

from __future__ import annotations

import pandas as pd

from auglens.augment.base import BASELINE
from auglens.metrics import column_higher_is_better
from auglens.registry import UnknownNameError

__all__ = ["AUG_KEYS", "BASELINE", "CONTROL", "KINDS", "PER_IMAGE_KEYS", "control_name", "is_control",
           "metric_columns_of", "higher_is_better"]

#: Key columns of ``cam_metrics.parquet`` (one row per augmentation x seed x test image). ``kind`` says what
#: the row's model is (:data:`KINDS`); tables written before controls existed lack it (all augmentations).
PER_IMAGE_KEYS: tuple[str, ...] = ("augmentation", "kind", "seed", "image", "label", "baseline_pred", "model_pred")

#: Columns of ``aug_metrics.parquet`` (seed mean per augmentation x image) that are not metrics.
AUG_KEYS: tuple[str, ...] = ("augmentation", "kind", "image", "label", "n_seeds", "model_correct_share")

#: The ``kind`` of a model in the tables: the baseline, an augmented model, or a retraining control (a model
#: without augmentation that differs from the baseline in one setting, ``[[controls]]``).
KINDS: tuple[str, ...] = ("baseline", "augmentation", "control")
CONTROL = "control"


def control_name(setting: str, value: object) -> str:
    """The name a control's models carry in the tables' ``augmentation`` column: ``control:init_seed=1``."""
    return f"{CONTROL}:{setting}={value}"


def is_control(frame: pd.DataFrame) -> pd.Series:
    """Which rows of a study table are a control's (bool per row); none in a table without a ``kind`` column."""
    if "kind" not in frame:
        return pd.Series(False, index=frame.index)
    return frame["kind"].astype(str) == CONTROL


def metric_columns_of(frame: pd.DataFrame) -> list[str]:
    """The metric columns of a ``cam_metrics`` or ``aug_metrics`` frame, in table order."""
    keys = set(PER_IMAGE_KEYS) | set(AUG_KEYS)
    return [c for c in frame.columns if c not in keys]


def higher_is_better(column: str) -> bool | None:
    """Whether a higher value means "more similar to the baseline"; ``None`` for a column no metric spec owns.

    Reports use this for wording ("higher = more similar") and for which side of a test is the more
    similar one; an unknown column (a metric added later, a hand-made table) just gets no direction.
    """
    try:
        return column_higher_is_better(column)
    except UnknownNameError:
        return None

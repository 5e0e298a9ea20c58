"""``architecture_summary``: per candidate, the epoch a study would keep and the test metrics there."""

from __future__ import annotations

import pandas as pd
import pytest

from auglens.analysis import ARCHITECTURE_COLUMNS, architecture_summary


def _rows(name, validation_accuracy, test_accuracy, seconds):
    rows = []
    for epoch, (val, test, s) in enumerate(zip(validation_accuracy, test_accuracy, seconds)):
        rows.append((name, epoch, "validation", val, 0.1, 0.2, 0.3, s))
        rows.append((name, epoch, "test", test, 0.4 + epoch, 0.5, 0.6, s))
    return rows


def test_kept_epoch_is_the_first_best_validation_accuracy_and_metrics_are_the_test_rows():
    table = pd.DataFrame(_rows("b", [0.5, 0.8, 0.8, 0.7], [0.55, 0.75, 0.9, 0.6], [1.0, 2.0, 3.0, 4.5])
                         + _rows("a", [0.9, 0.1], [0.3, 0.2], [2.0, 5.0]), columns=list(ARCHITECTURE_COLUMNS))
    summary = architecture_summary(table)
    assert list(summary["architecture"]) == ["b", "a"]  # order of appearance
    b, a = summary.iloc[0], summary.iloc[1]
    assert (b["epochs"], b["best_epoch"], b["accuracy"], b["precision_macro"]) == (4, 1, 0.75, 1.4)  # tie: earliest
    assert (b["seconds_to_best"], b["train_seconds"]) == (2.0, 4.5)
    assert (a["best_epoch"], a["accuracy"], a["seconds_to_best"], a["train_seconds"]) == (0, 0.3, 2.0, 5.0)


def test_missing_columns_are_named():
    with pytest.raises(KeyError, match="seconds"):
        architecture_summary(pd.DataFrame(columns=list(ARCHITECTURE_COLUMNS[:-1])))

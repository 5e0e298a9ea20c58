"""The command line's summary of a finished study."""

from __future__ import annotations

import pandas as pd

from auglens.study.manifest import summary_table
from auglens.study.tables import StudyResult


def test_one_model_shows_its_accuracy_without_a_spread(tmp_path):
    performance = pd.DataFrame({"augmentation": ["none", "cutmix", "cutmix"], "accuracy": [0.85, 0.8, 0.9]})
    empty = pd.DataFrame()
    text = summary_table(StudyResult(tmp_path, performance, empty, empty))
    rows = dict(line.split(maxsplit=1) for line in text.splitlines()[3:])
    assert rows == {"none": "0.8500", "cutmix": "0.8500 ± 0.0707"}

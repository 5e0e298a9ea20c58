"""DI's dominant class c_max is the class with the largest MEAN increase over runs, not the largest single one."""

from __future__ import annotations

import pytest
import torch

from auglens.distortion.interference import data_interference


def test_the_dominant_class_is_chosen_by_the_mean_over_runs():
    # Class 0 has the largest single increase (40) but class 1 the largest mean (20 against 13.3).
    increase = torch.tensor([[40.0, 0.0], [0.0, 30.0], [0.0, 30.0]])
    result = data_interference(increase)
    assert result.c_max == 1
    assert torch.allclose(result.per_run, torch.tensor([0.0, 30.0, 30.0], dtype=torch.float64))
    assert result.mean == pytest.approx(20.0)

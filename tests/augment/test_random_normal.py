"""Counter-based normal draws: Box–Muller on two hashed uniform streams, and standard normal in distribution."""

from __future__ import annotations

import math

import torch
from scipy import stats

from auglens.augment import random as rnd
from auglens.augment import sample_keys


def test_normal_is_box_muller_of_the_stream_and_its_partner_stream():
    keys = sample_keys(3, 1, torch.arange(50))
    draws = rnd.normal(keys, 17, count=4)
    u1 = rnd.uniform(keys, 17, 4)
    u2 = rnd.uniform(keys, 17 + 1_000_003, 4)
    expected = torch.sqrt(-2.0 * torch.log(1.0 - u1)) * torch.cos(2.0 * math.pi * u2)
    assert draws.shape == (50, 4) and draws.dtype == torch.float64
    assert torch.allclose(draws, expected, rtol=1e-12, atol=1e-12)
    assert rnd.normal(keys, 17).shape == (50, 1)  # one draw per key by default


def test_normal_draws_are_standard_normal():
    draws = rnd.normal(sample_keys(0, 0, torch.arange(20_000)), 5).squeeze(1).numpy()
    assert stats.kstest(draws, "norm").pvalue > 1e-3

"""The counter-based hash every augmentation's randomness comes from: SplitMix64, on both code paths."""

from __future__ import annotations

import torch

from auglens.augment.random import _mix64_torch, mix64

MASK = (1 << 64) - 1


def splitmix64(x: int) -> int:
    """Reference SplitMix64 finaliser on Python integers (Steele, Lea & Flood 2014)."""
    z = (x + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def test_first_splitmix64_output_from_state_zero():
    # The published first output of a SplitMix64 generator seeded with 0.
    assert mix64(torch.tensor([0])).item() == _signed(0xE220A8397B1DCDAF)


def test_both_paths_equal_the_reference_on_edge_and_random_inputs():
    g = torch.Generator().manual_seed(0)
    values = torch.cat([torch.tensor([0, 1, -1, 2**63 - 1, -(2**63), 12345, -987654321]),
                        torch.randint(-(2**63), 2**63 - 1, (500,), generator=g, dtype=torch.int64)])
    expected = torch.tensor([_signed(splitmix64(v & MASK)) for v in values.tolist()])
    assert torch.equal(mix64(values), expected)  # the CPU (numpy) path
    assert torch.equal(_mix64_torch(values), expected)  # the path CUDA tensors take
    grid = values[:500].view(50, 10).t()  # non-contiguous, 2-D
    assert torch.equal(mix64(grid), _mix64_torch(grid))

"""Stratified, seeded splits and subsets: the same indices for every model of a study."""

from __future__ import annotations

import torch


def stratified_split(labels: torch.Tensor, validation_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split indices into (train, validation) keeping each class's share; (N,) -> ((N_t,), (N_v,)).

    Each class contributes ``round(validation_fraction * n_c)`` images to validation, chosen by a
    generator seeded with ``seed`` alone, so the split depends on nothing but (labels, fraction, seed).
    Both index sets come back sorted, so the training set keeps the data set's order.
    """
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    generator = torch.Generator().manual_seed(seed)
    labels = labels.cpu()
    validation = []
    for cls in torch.unique(labels, sorted=True):
        members = torch.nonzero(labels == cls).flatten()
        order = members[torch.randperm(len(members), generator=generator)]
        validation.append(order[: round(validation_fraction * len(members))])
    validation_idx = torch.sort(torch.cat(validation)).values
    mask = torch.ones(len(labels), dtype=torch.bool)
    mask[validation_idx] = False
    return torch.nonzero(mask).flatten(), validation_idx


def stratified_subset(labels: torch.Tensor, size: int | None, seed: int) -> torch.Tensor:
    """Indices of a class-balanced subset of ``size`` images (all indices when ``size`` is None or >= N).

    Used to shrink a study to laptop scale while keeping class proportions.
    """
    n = len(labels)
    if size is None or size >= n:
        return torch.arange(n)
    if size <= 0:
        raise ValueError(f"subset size must be positive, got {size}")
    _, keep = stratified_split(labels, size / n, seed)
    return keep

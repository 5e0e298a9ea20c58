"""Stratified, seeded splits and subsets: the same indices for every model of a study."""

from __future__ import annotations

import torch


def _stratified_pick(labels: torch.Tensor, counts: list[int], seed: int) -> torch.Tensor:
    """``counts[i]`` indices of the i-th class (in sorted label order) drawn by a generator seeded with ``seed``;
    the indices of all classes, sorted."""
    generator = torch.Generator().manual_seed(seed)
    picked = []
    for cls, count in zip(torch.unique(labels, sorted=True), counts, strict=True):
        members = torch.nonzero(labels == cls).flatten()
        order = members[torch.randperm(len(members), generator=generator)]
        picked.append(order[:count])
    return torch.sort(torch.cat(picked)).values


def stratified_split(labels: torch.Tensor, validation_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split indices into (train, validation) keeping each class's share; (N,) -> ((N_t,), (N_v,)).

    Each class contributes ``round(validation_fraction * n_c)`` images to validation, chosen by a
    generator seeded with ``seed`` alone, so the split depends on nothing but (labels, fraction, seed).
    Both index sets come back sorted, so the training set keeps the data set's order.
    """
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    labels = labels.cpu()
    sizes = torch.unique(labels, sorted=True, return_counts=True)[1].tolist()
    validation_idx = _stratified_pick(labels, [round(validation_fraction * n_c) for n_c in sizes], seed)
    mask = torch.ones(len(labels), dtype=torch.bool)
    mask[validation_idx] = False
    return torch.nonzero(mask).flatten(), validation_idx


def subset_counts(class_sizes: list[int], size: int) -> list[int]:
    """Images per class of a stratified subset of exactly ``size`` of the ``sum(class_sizes)`` images.

    Each class gets its share ``size * n_c / N`` rounded (``round``, as the validation split), and where
    the rounded shares do not add up to ``size``, the classes whose rounding went furthest from their share
    give back (or take) one image each: the largest-remainder allocation, the earlier class keeping (or
    taking) the image on ties. Every class stays within one image of its share, as scikit-learn's stratified
    splitters allocate.
    """
    n = sum(class_sizes)
    counts = [round(size / n * n_c) for n_c in class_sizes]
    excess = sum(counts) - size
    if excess:
        # How far each class's count lies above its share, in units of 1/n (exact integers).
        above = [count * n - size * n_c for count, n_c in zip(counts, class_sizes)]
        step = 1 if excess > 0 else -1
        candidates = sorted(range(len(counts)), key=lambda c: (-step * above[c], -step * c))
        for c in candidates[: abs(excess)]:
            counts[c] -= step
    return counts


def stratified_subset(labels: torch.Tensor, size: int | None, seed: int) -> torch.Tensor:
    """Sorted indices of a class-balanced subset of exactly ``size`` images (all indices when ``size`` is None
    or >= N); each class within one image of its share (:func:`subset_counts`).

    Used to shrink a study to laptop scale while keeping class proportions.
    """
    n = len(labels)
    if size is None or size >= n:
        return torch.arange(n)
    if size <= 0:
        raise ValueError(f"subset size must be positive, got {size}")
    labels = labels.cpu()
    sizes = torch.unique(labels, sorted=True, return_counts=True)[1].tolist()
    return _stratified_pick(labels, subset_counts(sizes, size), seed)

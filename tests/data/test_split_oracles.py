"""Splits and subsets against independent oracles: scikit-learn's stratified splitters and hand counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.model_selection import StratifiedShuffleSplit, train_test_split

from auglens.data import stratified_split, stratified_subset

#: MNIST's training images per digit: class shares that no subset size of 1000 divides evenly.
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def _labels(counts: list[int], shuffle_seed: int | None = None) -> torch.Tensor:
    labels = np.repeat(np.arange(len(counts)), counts)
    if shuffle_seed is not None:
        labels = np.random.default_rng(shuffle_seed).permutation(labels)
    return torch.from_numpy(labels)


@pytest.mark.parametrize("size", [1000, 5000, 37, 11])
def test_a_subset_has_exactly_the_requested_size_like_sklearns(size):
    labels = _labels(MNIST_TRAIN_COUNTS, shuffle_seed=1)
    keep = stratified_subset(labels, size, seed=0)
    theirs, _ = train_test_split(np.arange(len(labels)), train_size=size, stratify=labels.numpy(), random_state=0)
    assert len(keep) == len(theirs) == size
    assert len(set(keep.tolist())) == size and torch.equal(keep, torch.sort(keep).values)
    # Every class within one image of its share, as sklearn's allocation.
    quota = size * np.asarray(MNIST_TRAIN_COUNTS) / len(labels)
    ours = np.bincount(labels[keep].numpy(), minlength=10)
    assert np.all(np.abs(ours - quota) < 1)
    assert np.all(np.abs(np.bincount(labels.numpy()[theirs], minlength=10) - quota) < 1)


@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.5])
def test_split_counts_are_sklearns_on_classes_its_fraction_divides(fraction):
    # Class sizes that `fraction` divides exactly: StratifiedShuffleSplit takes the same number from each.
    labels = _labels([40, 30, 20, 10], shuffle_seed=2) + 3  # labels 3..6: not 0-based, not contiguous from 0
    train, val = stratified_split(labels, fraction, seed=5)
    _, theirs = next(StratifiedShuffleSplit(n_splits=1, test_size=fraction, random_state=0)
                     .split(np.zeros(len(labels)), labels.numpy()))
    assert np.array_equal(np.bincount(labels[val].numpy()), np.bincount(labels.numpy()[theirs]))
    assert np.array_equal(np.bincount(labels[train].numpy()), np.bincount(labels.numpy()) - np.bincount(labels[val].numpy()))
    assert np.array_equal(np.sort(np.concatenate([train.numpy(), val.numpy()])), np.arange(len(labels)))
    assert torch.equal(train, torch.sort(train).values) and torch.equal(val, torch.sort(val).values)
    assert train.dtype == val.dtype == torch.int64


def test_split_counts_by_hand_and_the_fraction_bounds():
    # round(f * n_c) per class, Python's rounding: 0.25 * [10, 6, 2, 1] = [2.5, 1.5, 0.5, 0.25] -> [2, 2, 0, 0].
    labels = _labels([10, 6, 2, 1], shuffle_seed=3)
    _, val = stratified_split(labels, 0.25, seed=0)
    assert np.bincount(labels[val].numpy(), minlength=4).tolist() == [2, 2, 0, 0]
    train, val = stratified_split(labels, 0.0, seed=0)
    assert torch.equal(train, torch.arange(len(labels))) and len(val) == 0
    _, val = stratified_split(labels, 0.95, seed=0)  # just under 1: 10, 6, 2, 1 of them
    assert np.bincount(labels[val].numpy(), minlength=4).tolist() == [10, 6, 2, 1]
    for fraction in (1.0, -0.1):
        with pytest.raises(ValueError):
            stratified_split(labels, fraction, seed=0)


def test_split_depends_on_its_seed_alone_and_draws_every_member_alike():
    labels = _labels([30, 20], shuffle_seed=4)
    torch.manual_seed(123)
    first = stratified_split(labels, 0.2, seed=9)
    torch.manual_seed(456)  # the global generator changes nothing
    torch.rand(7)
    second = stratified_split(labels, 0.2, seed=9)
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    # Over many seeds every image lands in validation about `fraction` of the time (uniform draws).
    hits = np.zeros(len(labels))
    for seed in range(400):
        hits[stratified_split(labels, 0.2, seed=seed)[1].numpy()] += 1
    assert np.all(np.abs(hits / 400 - 0.2) < 0.08)
    # ... and the two classes' draws are not tied to each other (another seed moves both).
    vals = [stratified_split(labels, 0.2, seed=s)[1] for s in range(20)]
    for cls in (0, 1):
        assert len({tuple(v[labels[v] == cls].tolist()) for v in vals}) > 15


@pytest.mark.parametrize("class_sizes, size, expected", [
    ([5, 5], 5, [3, 2]),  # 2.5 and 2.5 both round to 2: the first class on the tie takes the fifth
    ([3, 3], 3, [2, 1]),  # 1.5 and 1.5 both round to 2: the second class on the tie gives one back
    ([3, 3, 3], 4, [2, 1, 1]),
    ([2, 2, 1], 4, [2, 1, 1]),  # 1.6, 1.6, 0.8 round to 2, 2, 1: one of the furthest above (0.4) gives back
    ([2, 1, 1], 1, [1, 0, 0]),  # 0.5, 0.25, 0.25 round to 0, 0, 0: the furthest below (0.5) takes one
    ([2, 1, 1], 3, [1, 1, 1]),  # 1.5, 0.75, 0.75 round to 2, 1, 1: the furthest above (0.5) gives back
    ([7, 2, 1], 5, [4, 1, 0]),  # shares 3.5, 1, 0.5 round to 4, 1, 0 (Python rounds halves to even)
    ([6, 3, 1], 3, [2, 1, 0]),  # shares 1.8, 0.9, 0.3
    ([50, 30, 20], 10, [5, 3, 2]),
])
def test_subset_counts_by_hand(class_sizes, size, expected):
    labels = _labels(class_sizes, shuffle_seed=6)
    keep = stratified_subset(labels, size, seed=1)
    assert np.bincount(labels[keep].numpy(), minlength=len(class_sizes)).tolist() == expected


def test_subset_bounds():
    labels = _labels([4, 3])
    assert torch.equal(stratified_subset(labels, 7, seed=0), torch.arange(7))  # all of them: no draw
    assert torch.equal(stratified_subset(labels, 8, seed=0), torch.arange(7))
    assert torch.equal(stratified_subset(labels, None, seed=0), torch.arange(7))
    assert len(stratified_subset(labels, 1, seed=0)) == 1
    for size in (0, -1):
        with pytest.raises(ValueError):
            stratified_subset(labels, size, seed=0)

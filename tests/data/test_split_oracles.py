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

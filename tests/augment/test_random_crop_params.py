"""RandomResizedCrop's boxes against torchvision's algorithm written out by hand with the documented streams:
ten tries of (area share, log aspect ratio), the first that fits, else the centred fallback."""

from __future__ import annotations

import math

import pytest
import torch

from auglens.augment import AUGMENTATIONS, sample_keys
from auglens.augment import random as rnd


def _hand_boxes(keys, height, width, scale, ratio):
    n = len(keys)
    shares = rnd.uniform_range(keys, 1, *scale, count=10)
    log_ratios = rnd.uniform_range(keys, 2, math.log(ratio[0]), math.log(ratio[1]), count=10)
    u_top, u_left = rnd.uniform(keys, 3).squeeze(1), rnd.uniform(keys, 4).squeeze(1)
    boxes = []
    for i in range(n):
        for t in range(10):
            area = height * width * float(shares[i, t])
            aspect = math.exp(float(log_ratios[i, t]))
            w, h = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
            if 0 < w <= width and 0 < h <= height:
                boxes.append((math.floor(float(u_top[i]) * (height - h + 1)),
                              math.floor(float(u_left[i]) * (width - w + 1)), h, w))
                break
        else:  # torchvision's fallback: the largest centred crop with an aspect ratio within ``ratio``
            if width / height < ratio[0]:
                h, w = round(width / ratio[0]), width
            elif width / height > ratio[1]:
                h, w = height, round(height * ratio[1])
            else:
                h, w = height, width
            boxes.append(((height - h) // 2, (width - w) // 2, h, w))
    return boxes


@pytest.mark.parametrize("height, width, scale, ratio, some_fall_back", [
    (12, 9, (0.08, 1.0), (3 / 4, 4 / 3), False),
    (10, 10, (1.0, 1.0), (0.5, 2.0), True),  # a full-area box only fits at an aspect near 1
    (4, 40, (0.9, 1.0), (0.5, 2.0), True),  # never fits: wider than any allowed ratio
    (40, 4, (0.9, 1.0), (0.5, 2.0), True),  # never fits: taller than any allowed ratio
    (6, 6, (0.001, 0.002), (3 / 4, 4 / 3), True),  # boxes round to 0 pixels
    (6, 6, (0.03, 0.03), (1.0, 1.0), False),  # boxes of one pixel
    (10, 10, (0.004, 0.006), (0.1, 10.0), True),  # one side rounds to 0 pixels, the other not
    (10, 20, (0.5, 0.5), (1.0, 1.0), False),  # square boxes as tall as the image
])
def test_boxes_follow_torchvisions_algorithm(height, width, scale, ratio, some_fall_back):
    keys = sample_keys(2, 0, torch.arange(60))
    params = AUGMENTATIONS.build("random_crop", scale=scale, ratio=ratio).params(keys, height, width)
    got = list(zip(*(params[k].tolist() for k in ("top", "left", "height", "width"))))
    assert got == _hand_boxes(keys, height, width, scale, ratio)
    fallback = [box for box in got if box[:2] == ((height - box[2]) // 2, (width - box[3]) // 2)]
    assert bool(fallback) or not some_fall_back


def test_fixed_size_fraction_boxes():
    keys = sample_keys(0, 0, torch.arange(20))
    tiny = AUGMENTATIONS.build("random_crop", size_fraction=0.01).params(keys, 12, 9)
    assert set(tiny["height"].tolist()) == {1} and set(tiny["width"].tolist()) == {1}  # at least a pixel
    half = AUGMENTATIONS.build("random_crop", size_fraction=0.5).params(keys, 12, 9)
    assert set(half["height"].tolist()) == {6} and set(half["width"].tolist()) == {4}  # round(4.5) = 4
    assert half["top"].dtype == torch.int64 and half["height"].dtype == torch.int64
    top = (rnd.uniform(keys, 3).squeeze(1) * 7).floor().long()
    left = (rnd.uniform(keys, 4).squeeze(1) * 6).floor().long()
    assert torch.equal(half["top"], top) and torch.equal(half["left"], left)

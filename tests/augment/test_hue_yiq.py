"""The YIQ hue rotation (``color_jitter(hue_space="yiq")``) against a numpy computation with the NTSC matrix."""

from __future__ import annotations

import numpy as np
import torch

from auglens.augment.filters import rotate_hue_yiq

# NTSC RGB -> YIQ (Y luma, I and Q chroma)
_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def _reference(images: np.ndarray, shift: np.ndarray) -> np.ndarray:
    out = np.empty_like(images)
    for n, (image, turns) in enumerate(zip(images, shift)):
        y, i, q = np.einsum("ij,jhw->ihw", _YIQ, image)
        angle = 2 * np.pi * turns  # a shift of one turn is the identity
        i2, q2 = i * np.cos(angle) - q * np.sin(angle), i * np.sin(angle) + q * np.cos(angle)
        out[n] = np.clip(np.einsum("ij,jhw->ihw", np.linalg.inv(_YIQ), np.stack([y, i2, q2])), 0.0, 1.0)
    return out


def test_rotation_of_the_chroma_plane_equals_numpy():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(5, 3, 6, 7, generator=g, dtype=torch.float64)
    shift = torch.tensor([0.0, 0.1, -0.25, 0.5, 0.37], dtype=torch.float64)
    out = rotate_hue_yiq(images, shift)
    assert out.dtype == torch.float64
    # the matrix is a float32 constant: its entries differ from the decimal ones by about 1e-8
    np.testing.assert_allclose(out.numpy(), _reference(images.numpy(), shift.numpy()), atol=1e-6)
    assert torch.allclose(out[0], images[0], atol=1e-12)  # no shift: unchanged
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert bool((out == 0).any()) and bool((out == 1).any())  # the rotation leaves the cube: clipped both ways
    single = rotate_hue_yiq(images.float(), shift.float())
    assert single.dtype == torch.float32
    np.testing.assert_allclose(single.numpy(), _reference(images.numpy(), shift.numpy()), atol=1e-5)


def test_one_channel_images_are_returned_as_they_are():
    grey = torch.rand(2, 1, 4, 4)
    assert rotate_hue_yiq(grey, torch.tensor([0.3, 0.1])) is grey

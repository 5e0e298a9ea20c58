"""The entry points around the augmentations: ``build_augmentation`` (the baseline's name gives no
augmentation), the default repr, and the [0, 1] range of every non-mixing augmentation's output even where
float rounding of convex weights overshoots 1."""

from __future__ import annotations

import pytest
import torch

from auglens.augment import AUGMENTATIONS, BASELINE, build_augmentation, sample_keys


def test_build_augmentation_passes_name_and_parameters_and_the_baseline_is_none():
    assert build_augmentation(BASELINE) is None
    blur = build_augmentation("gaussian_blur", kernel_size=3, sigma=0.7)
    assert type(blur) is type(AUGMENTATIONS.build("gaussian_blur"))
    assert blur.kernel_size == 3 and blur.sigma == (0.7, 0.7)


def test_default_repr_names_the_class_and_its_parameters():
    assert repr(build_augmentation("gaussian_blur", kernel_size=3, sigma=0.7)) == \
        "GaussianBlur(kernel_size=3, sigma=(0.7, 0.7))"
    assert repr(build_augmentation("equalize", p=0.25)) == "Equalize(p=0.25)"


@pytest.mark.parametrize("name", [n for n in AUGMENTATIONS.names() if not AUGMENTATIONS.get(n).mixes_samples])
def test_output_stays_in_the_unit_interval_on_white_images(name):
    # White images are where rounding pushes values past 1: AugMix's mixing weights sum to 1 only up to
    # float32 rounding, so without the final clamp some of its pixels come out at 1 + 2**-23.
    x = torch.ones(256, 3, 16, 16)
    out = AUGMENTATIONS.build(name)(x, torch.zeros(256, dtype=torch.int64), sample_keys(0, 0, torch.arange(256)))
    assert float(out.images.max()) <= 1.0 and float(out.images.min()) >= 0.0

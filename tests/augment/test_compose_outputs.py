"""What a pipeline hands to the loss: labels, partner labels and lam for pipelines with and without a mixing
step (a mixing step applied to every image included), in the images' dtype; steps that are not tables and
probabilities that are not numbers are refused; the pipeline's repr names its steps."""

from __future__ import annotations

import pytest
import torch

from auglens.augment import AUGMENTATIONS, sample_keys
from auglens.augment import random as rnd
from auglens.augment.compose import _STEP_KEYS


def _batch(n=12, dtype=torch.float32, seed=0):
    x = torch.rand(n, 3, 10, 10, generator=torch.Generator().manual_seed(seed), dtype=dtype)
    return x, torch.arange(n), sample_keys(1, 0, torch.arange(n))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_pipeline_without_mixing_trains_every_image_on_its_own_label(dtype):
    x, labels, keys = _batch(dtype=dtype)
    out = AUGMENTATIONS.build("compose", steps=[{"name": "affine"}, {"name": "equalize", "p": 0.5}])(x, labels, keys)
    assert torch.equal(out.labels, labels) and torch.equal(out.partner_labels, labels)
    # lam in the images' dtype, as a single augmentation returns it (the loss weighs in that precision).
    single = AUGMENTATIONS.build("affine")(x, labels, keys)
    assert out.lam.dtype == single.lam.dtype == dtype and bool((out.lam == 1).all())


def test_a_mixing_step_applied_to_every_image_gives_the_step_alone():
    # p = 1 (the default): every image is mixed, exactly as the mixing augmentation on its own would mix it
    # with the step's keys.
    x, labels, keys = _batch(n=16)
    out = AUGMENTATIONS.build("compose", steps=[{"name": "cutmix", "label": "mixed"}])(x, labels, keys)
    alone = AUGMENTATIONS.build("cutmix", label="mixed")(x, labels, rnd.derive_keys(keys, _STEP_KEYS))
    assert torch.equal(out.images, alone.images)
    assert torch.equal(out.labels, labels) and torch.equal(out.partner_labels, alone.partner_labels)
    assert torch.equal(out.lam, alone.lam) and out.lam.dtype == x.dtype
    assert bool((out.partner_labels != labels).any()) and bool((out.lam < 1).any())


@pytest.mark.parametrize("step", ["affine", ["affine"], 3, None])
def test_steps_that_are_not_tables_are_refused(step):
    with pytest.raises(ValueError, match="expected a table"):
        AUGMENTATIONS.build("compose", steps=[step])


@pytest.mark.parametrize("p", [True, False, "0.5", None])
def test_probabilities_that_are_not_numbers_are_refused(p):
    # True and False are ints to Python, but a probability written as a boolean is a mistake in a config.
    with pytest.raises(ValueError, match=r"steps\[0\]\.p"):
        AUGMENTATIONS.build("compose", steps=[{"name": "equalize", "p": p}])


def test_repr_lists_the_steps_as_given():
    steps = [{"name": "affine", "degrees": 5.0}, {"name": "equalize", "p": 0.5}]
    pipeline = AUGMENTATIONS.build("compose", steps=steps)
    assert repr(pipeline) == "Compose(steps=[{'name': 'affine', 'degrees': 5.0}, {'name': 'equalize', 'p': 0.5}])"

"""Composed pipelines: order, per-step probabilities, per-step keys, one mixing step, config round trip."""

from __future__ import annotations

import math
from auglens._tomllib import tomllib

import pytest
import torch

from auglens import config
from auglens.augment import AUGMENTATIONS, sample_keys
from auglens.augment import random as rnd
from auglens.augment.compose import _STEP_KEYS


def _dark_images(n, c=1, size=20, seed=0):
    # Dark random images of more than 255 pixels: equalisation always changes them (PIL and torchvision leave
    # images of fewer pixels as they are), so "changed" means "the step applied".
    return torch.randint(0, 60, (n, c, size, size), generator=torch.Generator().manual_seed(seed)).float() / 255


def test_steps_apply_in_order_with_their_own_keys():
    x = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    labels = torch.zeros(6, dtype=torch.int64)
    keys = sample_keys(0, 0, torch.arange(6))
    pipeline = AUGMENTATIONS.build("compose", steps=[{"name": "affine", "degrees": 30.0}, {"name": "equalize"}])
    affine = AUGMENTATIONS.build("affine", degrees=30.0)
    equalize = AUGMENTATIONS.build("equalize")
    moved = affine(x, labels, rnd.derive_keys(keys, _STEP_KEYS)).images
    expected = equalize(moved, labels, keys).images
    assert torch.equal(pipeline(x, labels, keys).images, expected)
    swapped = AUGMENTATIONS.build("compose", steps=[{"name": "equalize"}, {"name": "affine", "degrees": 30.0}])
    assert not torch.allclose(swapped(x, labels, keys).images, expected, atol=1e-3)


def test_repeated_steps_draw_different_parameters():
    x = torch.rand(4, 1, 16, 16, generator=torch.Generator().manual_seed(2))
    labels = torch.zeros(4, dtype=torch.int64)
    keys = sample_keys(0, 0, torch.arange(4))
    twice = AUGMENTATIONS.build("compose", steps=[{"name": "affine"}, {"name": "affine"}])(x, labels, keys).images
    affine = AUGMENTATIONS.build("affine")
    first = affine(x, labels, rnd.derive_keys(keys, _STEP_KEYS)).images
    same_again = affine(first, labels, rnd.derive_keys(keys, _STEP_KEYS)).images
    assert not torch.allclose(twice, same_again, atol=1e-3)


@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_each_step_applies_with_its_probability(p):
    n = 4000
    x = _dark_images(n)
    labels = torch.zeros(n, dtype=torch.int64)
    out = AUGMENTATIONS.build("compose", steps=[{"name": "equalize", "p": p}])(x, labels,
                                                                             sample_keys(3, 0, torch.arange(n)))
    changed = (out.images != x).flatten(1).any(1)
    rate = float(changed.double().mean())
    assert abs(rate - p) <= 5 * math.sqrt(p * (1 - p) / n) + 1e-12
    equalized = AUGMENTATIONS.build("equalize")(x, labels, sample_keys(3, 0, torch.arange(n))).images
    assert torch.equal(out.images[changed], equalized[changed])


def test_a_mixing_step_with_probability_keeps_unmixed_samples_whole():
    n = 400
    x = torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    labels = torch.arange(n)
    steps = [{"name": "equalize"}, {"name": "cutmix", "p": 0.5, "label": "mixed"}]  # labels mixed by area
    pipeline = AUGMENTATIONS.build("compose", steps=steps)
    assert pipeline.mixes_samples
    out = pipeline(x, labels, sample_keys(0, 0, torch.arange(n)))
    equalized = AUGMENTATIONS.build("equalize")(x, labels, sample_keys(0, 0, torch.arange(n))).images
    mixed = out.partner_labels != labels  # every partner is another sample, with another label here
    assert 0.4 < float(mixed.double().mean()) < 0.6
    assert torch.equal(out.images[~mixed], equalized[~mixed])
    assert bool((out.lam[~mixed] == 1).all())
    assert bool((out.lam[mixed] < 1).double().mean() > 0.9)  # lam = 1 only where the box is empty


def test_steps_given_as_a_tuple_build_the_same_pipeline():
    # A study freezes an augmentation's list parameters into tuples before building it.
    steps = [{"name": "affine"}, {"name": "equalize", "p": 0.5}]
    x = torch.rand(4, 1, 12, 12)
    labels, keys = torch.zeros(4, dtype=torch.int64), sample_keys(0, 0, torch.arange(4))
    as_list = AUGMENTATIONS.build("compose", steps=steps)(x, labels, keys).images
    assert torch.equal(AUGMENTATIONS.build("compose", steps=tuple(steps))(x, labels, keys).images, as_list)


def test_nested_pipelines_and_policies_as_steps():
    x = torch.rand(5, 3, 12, 12)
    steps = [{"name": "randaugment", "num_ops": 1}, {"name": "compose", "steps": [{"name": "gaussian_blur", "p": 0.5}]}]
    out = AUGMENTATIONS.build("compose", steps=steps)(x, torch.zeros(5, dtype=torch.int64),
                                                      sample_keys(0, 0, torch.arange(5)))
    assert out.images.shape == x.shape


def test_errors_name_every_bad_step_and_the_fix():
    with pytest.raises(ValueError) as info:
        AUGMENTATIONS.build("compose", steps=[{"name": "afine"}, {"name": "equalize", "p": 2},
                                              {"name": "affine", "rotation": 3}])
    message = str(info.value)
    assert "steps[0].name" in message and "Did you mean 'affine'" in message
    assert "steps[1].p" in message and "[0, 1]" in message
    assert "steps[2]" in message and "rotation" in message and "degrees" in message
    with pytest.raises(ValueError, match="at most one step may mix"):
        AUGMENTATIONS.build("compose", steps=[{"name": "cutmix"}, {"name": "mixup"}])
    with pytest.raises(ValueError, match="non-empty"):
        AUGMENTATIONS.build("compose", steps=[])


def test_pipeline_in_a_study_config_round_trips():
    text = """
[data]
name = "fashion_mnist"
[[augmentations]]
name = "compose"
steps = [{ name = "affine", degrees = 10.0, scale = [0.9, 1.0] }, { name = "equalize", p = 0.5 }]
[[augmentations]]
name = "augmix"
severity = 2
"""
    cfg = config.from_dict(tomllib.loads(text))
    assert cfg.augmentations[0].params["steps"][1] == {"name": "equalize", "p": 0.5}
    again = config.from_dict(tomllib.loads(config.dump_toml(cfg)))
    assert again.augmentations == cfg.augmentations
    with pytest.raises(config.ConfigError, match=r"augmentations\[0\]: compose: steps\[1\]\.p"):
        config.from_dict(tomllib.loads(text.replace("p = 0.5", "p = 1.5")))

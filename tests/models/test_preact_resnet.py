"""The two PreAct-ResNet18 variants: He et al.'s (the default) and the distortion paper's release."""

from __future__ import annotations

import pytest
import torch

from auglens.models import build_model
from auglens.models.preact_resnet import PreActBlock


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_parameter_counts_and_forward_shapes():
    ours, release = build_model("preact_resnet18", 10, 3), build_model("preact_resnet18_release", 10, 3)
    # The release's count: the CIFAR-10 PreActResNet18 it builds on (11,171,146) plus its stem BN (2 x 64).
    assert _count(release) == 11_171_146 + 2 * 64
    # Ours has the final BN over 512 channels instead of the stem BN over 64.
    assert _count(ours) - _count(release) == 2 * 512 - 2 * 64
    x = torch.randn(2, 3, 32, 32)
    assert ours(x).shape == release(x).shape == (2, 10)
    assert release.final is None and release.stem_bn is not None and release.auglens_target_layer == "layer4"
    assert ours.final is not None and ours.stem_bn is None and ours.auglens_target_layer == "final"
    assert ours.auglens_occlusion_layer == release.auglens_occlusion_layer == "layer3"


def test_identity_shortcut_carries_x_in_ours_and_the_preactivated_x_in_the_release():
    """With the residual branch zeroed a block returns its shortcut: x for He et al., BN-ReLU(x) for the release."""
    x = torch.tensor([-2.0, -0.5, 0.5, 2.0]).view(1, 1, 2, 2)
    eps = 1e-5
    for preactivated, expected in ((False, x), (True, torch.relu(x / (1 + eps) ** 0.5))):
        block = PreActBlock(1, 1, 1, preactivated_identity=preactivated).eval()  # fresh BN: mean 0, var 1
        torch.nn.init.zeros_(block.conv2.weight)
        torch.testing.assert_close(block(x), expected, rtol=0, atol=1e-7)
    # The negative inputs are what tells them apart: the release's shortcut drops them.
    release = PreActBlock(1, 1, 1, preactivated_identity=True).eval()
    torch.nn.init.zeros_(release.conv2.weight)
    assert float(release(x).detach().min()) == 0.0


def test_the_default_is_unchanged_by_the_variant():
    """The default's weights under one seed are the same as before the release variant existed: same modules,
    same order of draws (no new module in between), so stored preact_resnet18 models stay valid."""
    torch.manual_seed(0)
    model = build_model("preact_resnet18", 10, 3)
    names = [name for name, _ in model.named_parameters()]
    assert names[0] == "stem.weight" and names[-4:] == ["final.0.weight", "final.0.bias", "classifier.weight",
                                                         "classifier.bias"]
    assert not any("stem_bn" in name for name in names)


def _release_count(width: int, in_channels: int = 3, num_classes: int = 10) -> int:
    """The release's parameter count from its layout, written out independently of the module: 3x3 convs of
    w*w*2724 weights in all (stages of w, 2w, 4w, 8w channels, 1x1 projection shortcuts included), batch norms
    of 106w pairs plus the stem's, the stem conv and the classifier over 8w features."""
    convs = 2724 * width**2 + 9 * in_channels * width
    norms = 2 * (53 * width + width)
    return convs + norms + (8 * width + 1) * num_classes


def test_width_scales_every_stage_and_64_is_the_papers_network():
    assert _release_count(64) == 11_171_146 + 2 * 64  # the count the first test pins
    for width in (64, 16):
        release = build_model("preact_resnet18_release", 10, 3, width=width)
        ours = build_model("preact_resnet18", 10, 3, width=width)
        assert _count(release) == _release_count(width)
        # Ours: the final BN over 8w channels instead of the stem BN over w.
        assert _count(ours) - _count(release) == 2 * 8 * width - 2 * width
        x = torch.randn(2, 3, 28, 28)
        assert ours(x).shape == release(x).shape == (2, 10)
    assert _release_count(16) == 700_794
    narrow = build_model("preact_resnet18_release", 10, 1, width=16)
    assert narrow.layer4[1].conv2.out_channels == 128 and narrow.classifier.in_features == 128
    assert narrow(torch.randn(3, 1, 28, 28)).shape == (3, 10)
    with pytest.raises(ValueError, match="width"):
        build_model("preact_resnet18", 10, 3, width=0)


def test_width_64_is_the_default_draw_for_draw():
    """An explicit width = 64 builds the default's network with the same initial weights, so state dicts and
    artifact keys made before the parameter existed stay valid."""
    for name in ("preact_resnet18", "preact_resnet18_release"):
        torch.manual_seed(0)
        default = build_model(name, 10, 3).state_dict()
        torch.manual_seed(0)
        explicit = build_model(name, 10, 3, width=64).state_dict()
        assert list(default) == list(explicit)
        assert all(torch.equal(default[k], explicit[k]) for k in default)

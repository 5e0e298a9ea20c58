"""Parity with pytorch-grad-cam on torchvision's ResNet-18 (random weights, 3x64x64 inputs)."""

from __future__ import annotations

import pytest
import torch

from auglens.cam import compute, resolve_target_layer

from cam_testing import assert_maps_informative, make_blob_images, reference_cam  # tests/cam is on sys.path

pytest.importorskip("pytorch_grad_cam")
torchvision = pytest.importorskip("torchvision")

ATOL = 1e-5
GRADIENT_METHODS = ["gradcam", "gradcam++", "hirescam", "xgradcam", "layercam"]


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    return torchvision.models.resnet18(num_classes=10).eval()


@pytest.fixture(scope="module")
def images():
    return make_blob_images(2, size=64, seed=0)


def _runner_up(model, images):
    # The second most likely class: a real alternative target, and (unlike argmax + 1) its maps are not
    # all-negative at initialisation.
    with torch.no_grad():
        return model(images).topk(2, dim=1).indices[:, 1]


@pytest.mark.parametrize("target_mode", ["predicted", "explicit"])
@pytest.mark.parametrize("layer_name", ["layer4.1", "layer3"])
@pytest.mark.parametrize("method", GRADIENT_METHODS + ["eigencam"])
def test_resnet18_matches_pytorch_grad_cam(resnet, images, method, layer_name, target_mode):
    targets = _runner_up(resnet, images) if target_mode == "explicit" else None
    ours = compute(resnet, images, method=method, target_layer=layer_name, targets=targets)
    theirs = reference_cam(resnet, resolve_target_layer(resnet, layer_name), images, method, targets)
    assert_maps_informative(ours, min_fraction=1.0)
    assert (ours - theirs).abs().max().item() <= ATOL


def test_resnet18_scorecam_matches_pytorch_grad_cam(resnet):
    # Score-CAM costs one forward per channel for each implementation, so one 32x32 image at layer3
    # (256 channels, 2x2 maps) here; layer4.1 at 64x64 is in test_cam_parity_resnet_scorecam.py (slow).
    one = make_blob_images(1, size=32, seed=1)
    targets = _runner_up(resnet, one)
    ours = compute(resnet, one, method="scorecam", target_layer="layer3", targets=targets, score_batch_size=64)
    theirs = reference_cam(resnet, resnet.layer3, one, "scorecam", targets)
    assert_maps_informative(ours, min_fraction=1.0)
    assert (ours - theirs).abs().max().item() <= ATOL

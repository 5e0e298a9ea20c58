"""Score-CAM parity with pytorch-grad-cam on ResNet-18 at layer4.1 (512 forwards per implementation)."""

from __future__ import annotations

import pytest
import torch

from auglens.cam import compute

from cam_testing import assert_maps_informative, make_blob_images, reference_cam  # tests/cam is on sys.path

pytest.importorskip("pytorch_grad_cam")
torchvision = pytest.importorskip("torchvision")


@pytest.mark.slow
def test_resnet18_layer4_scorecam_matches_pytorch_grad_cam():
    torch.manual_seed(0)
    resnet = torchvision.models.resnet18(num_classes=10).eval()
    one = make_blob_images(1, size=64, seed=0)
    with torch.no_grad():
        targets = resnet(one).topk(2, dim=1).indices[:, 1]
    ours = compute(resnet, one, method="scorecam", target_layer="layer4.1", targets=targets, score_batch_size=128)
    theirs = reference_cam(resnet, resnet.layer4[1], one, "scorecam", targets)
    assert_maps_informative(ours, min_fraction=1.0)
    assert (ours - theirs).abs().max().item() <= 1e-5

"""Every CAM method equals pytorch-grad-cam's implementation to 1e-5 (float32) on a small CNN."""

from __future__ import annotations

import pytest
import torch

from auglens.cam import CAM_METHODS, compute, compute_lowres, resolve_target_layer, upsample_maps

from cam_testing import (  # tests/cam is on sys.path (rootdir-relative "prepend" import mode)
    NUM_CLASSES,
    assert_maps_informative,
    make_blob_images,
    make_tiny_net,
    reference_cam,
)

pytest.importorskip("pytorch_grad_cam")

ATOL = 1e-5
# features.9: the last ReLU (the usual CAM layer); features.8: the last conv, before its ReLU (negative
# activations); features.5 / features.3: a mid-depth ReLU and conv at twice the resolution.
LAYERS = ["features.9", "features.8", "features.5", "features.3"]
METHODS = ["gradcam", "gradcam++", "hirescam", "xgradcam", "layercam", "eigencam", "scorecam"]


@pytest.fixture(scope="module")
def model():
    return make_tiny_net()


@pytest.fixture(scope="module")
def images():
    return make_blob_images(6)


def test_every_registered_method_is_covered():
    assert sorted(METHODS) == CAM_METHODS.names()


def _explicit_targets(model, images):
    # Not the predicted class, so explicit targets really change the maps of the gradient methods.
    with torch.no_grad():
        return (model(images).argmax(dim=1) + 1) % NUM_CLASSES


@pytest.mark.parametrize("target_mode", ["predicted", "explicit"])
@pytest.mark.parametrize("layer_name", LAYERS)
@pytest.mark.parametrize("method", METHODS)
def test_matches_pytorch_grad_cam(model, images, method, layer_name, target_mode):
    layer = resolve_target_layer(model, layer_name)
    targets = _explicit_targets(model, images) if target_mode == "explicit" else None
    ours = compute(model, images, method=method, target_layer=layer_name, targets=targets)
    theirs = reference_cam(model, layer, images, method, targets)
    assert ours.shape == theirs.shape == images.shape[:1] + images.shape[2:]
    assert ours.dtype == torch.float32
    assert_maps_informative(ours)
    assert (ours - theirs).abs().max().item() <= ATOL


def test_lowres_then_upsample_is_compute(model, images):
    result = compute_lowres(model, images, method="gradcam++", target_layer="features.8")
    assert result.maps.shape == (6, 8, 8)
    assert torch.equal(upsample_maps(result.maps, images.shape[-2:]),
                       compute(model, images, method="gradcam++", target_layer="features.8"))


def test_inplace_relu_after_target_uses_the_layer_output():
    """Quirk we do NOT copy: with ReLU(inplace=True) after the target conv, pytorch-grad-cam on CPU stores
    an alias of the conv output, which the ReLU then overwrites (on CUDA its .cpu() copy does not alias).
    We keep the layer's real output on every device, i.e. equal the reference on the non-in-place twin."""
    images = make_blob_images(4)
    inplace, plain = make_tiny_net(inplace=True), make_tiny_net(inplace=False)
    for method in ["gradcam", "hirescam", "eigencam"]:
        ours = compute(inplace, images, method=method, target_layer="features.8")
        theirs = reference_cam(plain, plain.features[8], images, method)
        assert (ours - theirs).abs().max().item() <= ATOL
    # The in-place model's own output is untouched by our hooks (we hand a copy downstream).
    with torch.no_grad():
        assert torch.allclose(inplace(images), plain(images), atol=1e-6)


@pytest.mark.parametrize("layer_name, conv_index", [("features.9", 8), ("features.7", 6)])
def test_eigencam_with_dead_channels_matches_pytorch_grad_cam(images, layer_name, conv_index):
    """Dead (all-zero) channels make the SVD input rank-deficient, where LAPACK's sign follows one-ulp
    input differences; parity here needs the bit-identical numpy centring of our numpy backend."""
    model = make_tiny_net()
    with torch.no_grad():
        conv = model.features[conv_index]
        conv.weight[[0, 5, 11]] = 0
        conv.bias[[0, 5, 11]] = 0
    layer = resolve_target_layer(model, layer_name)
    ours = compute(model, images, method="eigencam", target_layer=layer_name)
    theirs = reference_cam(model, layer, images, "eigencam")
    assert_maps_informative(ours)
    assert (ours - theirs).abs().max().item() <= ATOL

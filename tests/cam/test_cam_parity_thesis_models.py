"""Parity with pytorch-grad-cam on the thesis's candidates EfficientNet-B0 and DenseNet-121, in float64 too.

Random weights with BatchNorm statistics measured on the test images (so activations are O(1) at every
depth, as in a trained network), 96x96 inputs. pytorch-grad-cam computes in the activations' dtype and
returns float32 maps; so do we. In float64 the only remaining difference is the float32 output (about one
float32 ulp, 1.2e-7), far inside the 1e-5 bound; casting float64 activations to float32 before the channel
sum, as auglens once did, gives 7e-7 to 2e-6 here, which the 3-ulp bound below catches.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from auglens.cam import compute, resolve_target_layer

from cam_testing import assert_maps_informative, make_blob_images, reference_cam  # tests/cam is on sys.path

pytest.importorskip("pytorch_grad_cam")
torchvision = pytest.importorskip("torchvision")

ATOL = 1e-5
FLOAT64_ATOL = 3 * 2.0**-23  # three float32 ulps at 1: the float32 output is all that may differ


def _calibrated(factory, images):
    torch.manual_seed(0)
    model = factory(num_classes=10)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # cumulative average over the calibration pass
    model.train()
    with torch.no_grad():
        model(images)
    return model.eval()


class _OutOfPlaceDenseNet(torch.nn.Module):
    """torchvision's DenseNet forward with the ReLU after ``features.norm5`` out of place, for the reference:
    on CPU pytorch-grad-cam would otherwise read the ReLU-overwritten activation (see auglens.cam.base)."""

    def __init__(self, densenet):
        super().__init__()
        self.features, self.classifier = densenet.features, densenet.classifier

    def forward(self, x):
        out = F.adaptive_avg_pool2d(F.relu(self.features(x)), 1)
        return self.classifier(torch.flatten(out, 1))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # float64 depthwise convolutions on a few small images: intra-op threads cost more than they give.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def images():
    return make_blob_images(2, size=96, seed=0).double()


@pytest.fixture(scope="module")
def efficientnet(images):
    return _calibrated(torchvision.models.efficientnet_b0, images.float()).double()


@pytest.fixture(scope="module")
def densenet(images):
    return _calibrated(torchvision.models.densenet121, images.float()).double()


def _check(model, layer_name, images, method, dtype, out_of_place_twin=False):
    model, images = copy.deepcopy(model).to(dtype), images.to(dtype)
    reference_model = _OutOfPlaceDenseNet(model) if out_of_place_twin else model
    ours = compute(model, images, method=method, target_layer=layer_name)
    theirs = reference_cam(reference_model, resolve_target_layer(reference_model, layer_name), images, method)
    assert_maps_informative(ours, min_fraction=1.0)
    error = (ours - theirs).abs().max().item()
    assert error <= ATOL
    if dtype == torch.float64:
        assert error <= FLOAT64_ATOL, error


@pytest.mark.slow
@pytest.mark.parametrize("method, dtype", [("gradcam", torch.float64), ("gradcam", torch.float32),
                                           ("gradcam++", torch.float64), ("hirescam", torch.float64)])
def test_efficientnet_b0_matches_pytorch_grad_cam(efficientnet, images, method, dtype):
    # "features" (the whole stage stack) is the thesis's last convolutional layer: 1,280 channels, 3x3.
    _check(efficientnet, "features", images, method, dtype)


@pytest.mark.slow
@pytest.mark.parametrize("layer_name, dtype", [("features.norm5", torch.float64), ("features.norm5", torch.float32),
                                               ("features.denseblock4", torch.float64)])
def test_densenet121_matches_pytorch_grad_cam(densenet, images, layer_name, dtype):
    _check(densenet, layer_name, images, "gradcam", dtype, out_of_place_twin=layer_name == "features.norm5")

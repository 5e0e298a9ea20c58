"""The shared CAM machinery (``BaseCAM.__call__``, ``compute_lowres``) against oracles computed by hand:
precision of the arithmetic, the logits check, target and batch validation, one-image batches, the
context a method sees, and what the error messages name."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from auglens.cam import BaseCAM, compute, compute_lowres, resolve_target_layer

from cam_testing import NUM_CLASSES, make_blob_images, make_tiny_net, reference_cam  # tests/cam is on sys.path


def _gradcam_by_hand(model, images, layer):
    """Grad-CAM from its definition, in float64 from whatever precision the model ran in: the layer output A
    and dA of the predicted class's logit, w_c = mean(dA_c), ReLU(sum_c w_c A_c), then pytorch-grad-cam's
    per-image ``x - min`` and ``x / (1e-7 + max)``."""
    stored = []
    handle = layer.register_forward_hook(lambda module, inputs, output: stored.append(output))
    try:
        logits = model(images.detach().requires_grad_(True))
        targets = logits.argmax(dim=1)
        (gradients,) = torch.autograd.grad(logits.gather(1, targets[:, None]).sum(), stored[0])
    finally:
        handle.remove()
    a, g = stored[0].detach().double(), gradients.double()
    cam = (g.mean(dim=(2, 3))[:, :, None, None] * a).sum(dim=1).clamp_min(0)
    cam = cam - cam.amin(dim=(1, 2), keepdim=True)
    return cam / (1e-7 + cam.amax(dim=(1, 2), keepdim=True)), stored[0].dtype


@pytest.mark.parametrize("layer", ["features.8", "features.5"])
def test_autocast_activations_are_combined_in_float32(layer):
    """Under autocast the target layer outputs bfloat16; the CAM arithmetic must still run in float32 (the
    channel sum of bfloat16 values, as autocast would make torch.einsum do, is off by ~5e-3)."""
    model, images = make_tiny_net(), make_blob_images(4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours = compute_lowres(model, images, target_layer=layer).maps
        expected, dtype = _gradcam_by_hand(model, images, resolve_target_layer(model, layer))
    assert dtype == torch.bfloat16  # the premise: autocast is on for the layer
    assert ours.dtype == torch.float32
    assert (ours.double() - expected).abs().max().item() <= 1e-5


def test_bfloat16_model_maps_are_computed_in_float32():
    model, images = make_tiny_net().to(torch.bfloat16), make_blob_images(4).to(torch.bfloat16)
    ours = compute_lowres(model, images, target_layer="features.8")
    expected, dtype = _gradcam_by_hand(model, images, model.features[8])
    assert dtype == torch.bfloat16
    assert ours.maps.dtype == torch.float32 and ours.logits.dtype == torch.float32
    # float32 arithmetic on the bfloat16 activations: ~1e-7; bfloat16 arithmetic: ~1e-2
    assert (ours.maps.double() - expected).abs().max().item() <= 1e-5


class _OnePixelProbe(nn.Module):
    """A 1x1 conv with weight 1 (the target layer: A = the image), then ``h*w * mean`` as logit 0 and its
    negative as logit 1: dA of logit 0 is 1 at every pixel, so Grad-CAM's map is the image itself."""

    def __init__(self, h: int, w: int):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 1, bias=False)
        self.fc = nn.Linear(1, 2, bias=False)
        with torch.no_grad():
            self.conv.weight.fill_(1.0)
            self.fc.weight.copy_(torch.tensor([[h * w], [-h * w]], dtype=torch.float32))

    def forward(self, x):
        return self.fc(self.conv(x).mean(dim=(2, 3)))


def test_float64_model_maps_keep_float64_precision():
    # 1000 + 1e-6 * p: float32 cannot tell the pixels apart (its spacing at 1000 is 6e-5), float64 can
    p = torch.arange(12, dtype=torch.float64).reshape(1, 1, 3, 4) / 11
    model = _OnePixelProbe(3, 4).double().eval()
    result = compute_lowres(model, 1000 + 1e-6 * p, target_layer="conv")
    assert result.targets.tolist() == [0]
    # ReLU(A) - min = 1e-6 p, divided by 1e-7 + 1e-6 * max(p) = 1.1e-6
    np.testing.assert_allclose(result.maps.numpy(), (p / 1.1)[:, 0].numpy(), atol=1e-6)


class _Returns(nn.Module):
    def __init__(self, wrap):
        super().__init__()
        self.net, self.wrap = make_tiny_net(), wrap

    def forward(self, x):
        return self.wrap(self.net(x))


@pytest.mark.parametrize("method", ["gradcam", "eigencam"])  # with and without a backward pass
def test_model_must_return_two_dimensional_logits(method):
    images = make_blob_images(3)
    as_tuple, one_dim = _Returns(lambda y: (y,)), _Returns(lambda y: y[:, 0])
    with pytest.raises(TypeError, match=r"logits of shape \(N, num_classes\); got tuple$"):
        compute_lowres(as_tuple, images, method=method, target_layer="net.features.8")
    with pytest.raises(TypeError, match=r"logits of shape \(N, num_classes\); got shape \(3,\)$"):
        compute_lowres(one_dim, images, method=method, target_layer="net.features.8")


@pytest.mark.parametrize("method", ["gradcam", "eigencam"])
def test_targets_must_be_below_the_number_of_classes(method):
    model, images = make_tiny_net(), make_blob_images(3)
    with pytest.raises(ValueError, match=r"class indices in \[0, 5\); got values in \[4, 5\]"):
        compute_lowres(model, images, method=method, target_layer="features.8", targets=[4, 5, 4])
    last = compute_lowres(model, images, method=method, target_layer="features.8", targets=[NUM_CLASSES - 1] * 3)
    assert last.targets.tolist() == [NUM_CLASSES - 1] * 3


def test_integer_targets_of_any_width_are_int64_and_bool_targets_are_refused():
    model, images = make_tiny_net(), make_blob_images(4)
    wanted = [0, 3, 1, 4]
    reference = compute_lowres(model, images, target_layer="features.8", targets=torch.tensor(wanted))
    for targets in (torch.tensor(wanted, dtype=torch.int32), np.array(wanted, dtype=np.int32),
                    torch.tensor(wanted, dtype=torch.uint8), np.array(wanted, dtype=np.int16)):
        got = compute_lowres(model, images, target_layer="features.8", targets=targets)
        assert got.targets.dtype == torch.int64 and got.targets.tolist() == wanted
        assert torch.equal(got.maps, reference.maps)
    with pytest.raises(TypeError, match="integer class indices; got dtype torch.bool"):
        compute_lowres(model, images, target_layer="features.8", targets=torch.tensor([True, False, True, True]))


def test_one_image_and_one_image_chunks():
    model, images = make_tiny_net(), make_blob_images(5)
    single = compute(model, images[:1], target_layer="features.8")
    expected = reference_cam(model, model.features[8], images[:1], "gradcam")
    assert single.shape == (1, 32, 32) and (single - expected).abs().max().item() <= 1e-5
    whole = compute_lowres(model, images, target_layer="features.8")
    ones = compute_lowres(model, images, target_layer="features.8", batch_size=1)
    assert torch.allclose(ones.maps, whole.maps, atol=1e-6) and torch.equal(ones.targets, whole.targets)


@pytest.mark.parametrize("batch_size", [True, 2.0, "4", -1])
def test_batch_size_must_be_a_positive_int(batch_size):
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        compute_lowres(make_tiny_net(), make_blob_images(3), target_layer="features.8", batch_size=batch_size)


def test_image_errors_name_what_was_given():
    model = make_tiny_net()
    with pytest.raises(ValueError, match=r"\(N, C, H, W\); got torch.int64 tensor of shape \(2, 3, 32, 32\)$"):
        compute_lowres(model, torch.zeros(2, 3, 32, 32, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\); got list$"):
        compute_lowres(model, [make_blob_images(1)])


def test_layer_errors_name_the_layer_and_the_default_attribute():
    model, images = make_tiny_net(), make_blob_images(2)
    with pytest.raises(RuntimeError, match=r"^the CAM target layer \(Conv2d\) did not run"):
        compute_lowres(model, images, target_layer=nn.Conv2d(3, 3, 1))
    model.auglens_target_layer = "features.99"
    with pytest.raises(ValueError, match=r"^no layer named 'features.99' \(from TinyNet.auglens_target_layer\) "):
        resolve_target_layer(model, None)
    # difflib's ratio of "fea" and "features" is 6/11: above the hint's 0.5 cutoff (below difflib's default 0.6)
    with pytest.raises(ValueError, match=r"in TinyNet\. Did you mean 'features'\? "):
        resolve_target_layer(model, "fea")


@pytest.mark.parametrize("gradients", [True, False])
def test_a_method_sees_the_documented_context(gradients):
    seen = []

    class Probe(BaseCAM):
        uses_gradients = gradients

        def combine(self, activations, grads, context):
            seen.append(context)
            return activations.sum(dim=1)

    model, images = make_tiny_net(), make_blob_images(3)
    targets = torch.tensor([2, 0, 4])
    compute_lowres(model, images, method=Probe(), target_layer="features.8", targets=targets)
    (context,) = seen
    with torch.no_grad():
        logits = model(images)
    assert context.model is model and torch.equal(context.images, images)
    assert torch.equal(context.targets, targets)
    assert not context.logits.requires_grad and torch.allclose(context.logits, logits, atol=1e-6)


def test_scorecam_on_a_bfloat16_model_agrees_with_the_float32_reference():
    # The masks are built from the widened (float32) activations and must be cast back to the images' dtype
    # before the model sees the masked images.
    model, images = make_tiny_net(), make_blob_images(4)
    expected = reference_cam(model, model.features[8], images, "scorecam")
    ours = compute(make_tiny_net().to(torch.bfloat16), images.to(torch.bfloat16), method="scorecam",
                   target_layer="features.8")
    assert ours.dtype == torch.float32
    assert (ours - expected).abs().max().item() <= 0.05  # bfloat16 forward passes: ~1e-2 here

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

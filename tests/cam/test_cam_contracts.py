"""Contracts of the CAM engine that the parity tests leave open: the unknown-layer message (closest
candidates first, capped list), EigenCAM on NaN activations against pytorch-grad-cam's projections."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from auglens.cam import EigenCAM, resolve_target_layer
from auglens.cam.base import CamContext

from cam_testing import make_tiny_net  # tests/cam is on sys.path


def _layer_error(model, name):
    with pytest.raises(ValueError) as info:
        resolve_target_layer(model, name)
    return str(info.value)


def _candidates(message):
    listed = message.split("top-level blocks): ", 1)[1].split(". Expected", 1)[0]
    return listed.split(", ")


def test_unknown_layer_message_lists_the_five_closest_names_then_convs_and_blocks():
    model = make_tiny_net()
    message = _layer_error(model, "features.80")
    assert message.startswith("no layer named 'features.80' in TinyNet. Did you mean 'features.8'? ")
    # difflib's five closest names (features.8, .0, .9, .7, .6), then the other conv (features.3), then the
    # top-level blocks; no "more" when everything fits
    assert _candidates(message) == ["features.8", "features.0", "features.9", "features.7", "features.6",
                                    "features.3", "features", "pool", "fc"]
    far = _layer_error(model, "zzz")
    assert "Did you mean" not in far and "in TinyNet. Candidate layers" in far
    assert _candidates(far) == ["features.0", "features.3", "features.6", "features.8", "features", "pool", "fc"]
    assert "Candidate layers (closest first, then conv layers and top-level blocks): (none)." in _layer_error(
        nn.Identity(), "x")


@pytest.mark.parametrize("convs, more", [(25, None), (26, 1), (40, 15)])
def test_unknown_layer_message_shows_at_most_25_candidates(convs, more):
    model = nn.Sequential(*[nn.Conv2d(1, 1, 1) for _ in range(convs)])  # candidates "0" ... str(convs - 1)
    message = _layer_error(model, "zzz")
    listed = _candidates(message)
    if more is None:
        assert listed == [str(i) for i in range(convs)] and "more)" not in message
    else:
        assert listed[:25] == [str(i) for i in range(25)] and listed[25] == f"... (+{more} more)"
        assert len(listed) == 26


def _eigen_activations():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(3, 6, 5, 4, generator=g)
    a[0, 1, 2, 3] = float("nan")
    a[2, :, 0, 0] = float("nan")
    return a


def _context(activations):
    n = len(activations)
    return CamContext(model=nn.Identity(), images=torch.zeros(n, 1, 5, 4), targets=torch.zeros(n, dtype=torch.int64),
                      logits=torch.zeros(n, 2))


def test_eigencam_treats_nan_activations_as_zero_like_pytorch_grad_cam():
    svd = pytest.importorskip("pytorch_grad_cam.utils.svd_on_activations")
    a = _eigen_activations()
    got = EigenCAM().combine(a, None, _context(a))
    assert got.dtype == torch.float32 and not torch.isnan(got).any()
    np.testing.assert_allclose(got.numpy(), svd.get_2d_projection(a.numpy()), rtol=1e-5, atol=1e-6)


def test_eigencam_torch_backend_is_the_sign_corrected_projection():
    svd = pytest.importorskip("pytorch_grad_cam.utils.svd_on_activations")
    a = _eigen_activations().double()
    got = EigenCAM(svd_backend="torch").combine(a, None, _context(a))
    expected = svd.get_2d_projection_with_sign_correction(a.numpy())
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_gradcam_plusplus_weights_by_hand_with_gradients_of_exactly_one_and_zero():
    from auglens.cam.gradcam_plusplus import GradCAMPlusPlus

    a = torch.tensor([[[[1.0, 2.0], [0.5, 0.0]]]], dtype=torch.float64)  # (1, 1, 2, 2), sum 3.5
    g = torch.tensor([[[[1.0, 0.0], [-2.0, 0.5]]]], dtype=torch.float64)
    got = GradCAMPlusPlus().channel_weights(a, g, _context(a))
    # alpha = g^2 / (2 g^2 + sum(A) g^3 + 1e-6); w = sum alpha * ReLU(g)
    expected = 0.0
    for gi in (1.0, 0.0, -2.0, 0.5):
        alpha = gi**2 / (2 * gi**2 + 3.5 * gi**3 + 1e-6) if gi != 0 else 0.0
        expected += alpha * max(gi, 0.0)
    assert got.shape == (1, 1) and float(got) == pytest.approx(expected, rel=1e-12)


def test_xgradcam_adds_its_epsilon_to_the_channel_sum():
    from auglens.cam.xgradcam import XGradCAM

    a = torch.tensor([[[[4e-7, 6e-7]]]], dtype=torch.float64)  # channel sum 1e-6, the same order as eps
    g = torch.tensor([[[[2.0, 1.0]]]], dtype=torch.float64)
    got = XGradCAM().channel_weights(a, g, _context(a))
    assert float(got) == pytest.approx((2.0 * 4e-7 + 1.0 * 6e-7) / (1e-6 + 1e-7), rel=1e-12)


def test_scorecam_weights_by_hand_in_double_precision():
    from scipy.special import softmax

    from auglens.cam.scorecam import ScoreCAM

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(2 * 6 * 6, 3)).double().eval()
    images = torch.rand(2, 2, 6, 6, dtype=torch.float64)
    a = torch.rand(2, 5, 3, 3, dtype=torch.float64)
    targets = torch.tensor([2, 0])
    context = CamContext(model=model, images=images, targets=targets, logits=model(images).detach())
    with torch.no_grad():  # as BaseCAM calls it
        got = ScoreCAM(score_batch_size=3).channel_weights(a, None, context)
    assert got.dtype == torch.float64
    expected = np.empty((2, 5))
    with torch.no_grad():
        for i in range(2):
            scores = []
            for c in range(5):
                # pytorch-grad-cam's masks: nn.UpsamplingBilinear2d (align_corners=True), min-max to [0, 1]
                up = nn.UpsamplingBilinear2d(size=(6, 6))(a[i : i + 1, c : c + 1])
                mask = (up - up.min()) / (up.max() - up.min() + 1e-8)
                scores.append(float(model(images[i : i + 1] * mask)[0, targets[i]]))
            expected[i] = softmax(np.array(scores))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-15)


def test_compute_defaults_to_grad_cam_and_passes_method_options_on():
    from auglens.cam import compute, compute_lowres, upsample_maps

    from cam_testing import make_blob_images, reference_cam

    model, images = make_tiny_net(), make_blob_images(3)
    reference = reference_cam(model, model.features[5], images, "gradcam")  # the model's default layer
    torch.testing.assert_close(compute(model, images), reference, atol=1e-5, rtol=1e-4)
    torch_backend = compute(model, images, method="eigencam", target_layer="features.9", svd_backend="torch")
    lowres = compute_lowres(model, images, method="eigencam", target_layer="features.9", svd_backend="torch")
    assert torch.equal(torch_backend, upsample_maps(lowres.maps, (32, 32)))
    with pytest.raises(ValueError, match="score_batch_size"):
        compute(model, images, method="scorecam", score_batch_size=0)


def test_class_zero_is_a_valid_target_and_float32_activations_are_computed_in_float32():
    from auglens.cam import compute
    from auglens.cam.base import compute_dtype

    from cam_testing import make_blob_images, reference_cam

    model, images = make_tiny_net(), make_blob_images(3)
    zeros = torch.zeros(3, dtype=torch.int64)
    reference = reference_cam(model, model.features[5], images, "gradcam", targets=zeros)
    torch.testing.assert_close(compute(model, images, targets=zeros), reference, atol=1e-5, rtol=1e-4)
    assert compute_dtype(torch.float32) == torch.float32 and compute_dtype(torch.float16) == torch.float32
    assert compute_dtype(torch.float64) == torch.float64

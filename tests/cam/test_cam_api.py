"""The CAM engine's contract: layer resolution, chunking, targets, model state, errors, devices."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from auglens.cam import (
    CAM_METHODS,
    BaseCAM,
    CamResult,
    EigenCAM,
    compute,
    compute_lowres,
    maps_from_storage,
    maps_to_storage,
    minmax_normalise,
    resolve_target_layer,
    upsample_maps,
)
from auglens.registry import UnknownNameError

from cam_testing import NUM_CLASSES, TinyNet, make_blob_images, make_tiny_net  # tests/cam is on sys.path

ALL_METHODS = ["gradcam", "gradcam++", "hirescam", "xgradcam", "layercam", "eigencam", "scorecam"]


@pytest.fixture
def model():
    return make_tiny_net()


@pytest.fixture
def images():
    return make_blob_images(8)


# --- resolve_target_layer -------------------------------------------------------------------------------


def test_resolve_by_dotted_name(model):
    assert resolve_target_layer(model, "features.6") is model.features[6]
    assert resolve_target_layer(model, "fc") is model.fc


def test_resolve_nested_dotted_name_in_resnet():
    torchvision = pytest.importorskip("torchvision")
    resnet = torchvision.models.resnet18(num_classes=10)
    assert resolve_target_layer(resnet, "layer4.1.conv2") is resnet.layer4[1].conv2
    assert resolve_target_layer(resnet, "layer4.1") is resnet.layer4[1]
    assert resolve_target_layer(resnet, "last_conv") is resnet.layer4[1].conv2


def test_resolve_module_is_returned_as_is(model):
    layer = model.features[3]
    assert resolve_target_layer(model, layer) is layer


def test_resolve_last_conv(model):
    assert resolve_target_layer(model, "last_conv") is model.features[8]


def test_resolve_none_uses_model_attribute_then_last_conv(model):
    assert resolve_target_layer(model, None) is model.features[5]  # TinyNet.auglens_target_layer
    plain = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.Flatten())
    assert resolve_target_layer(plain, None) is plain[2]


def test_resolve_wrong_name_lists_candidates(model):
    with pytest.raises(ValueError) as info:
        resolve_target_layer(model, "features.80")
    message = str(info.value)
    assert "'features.80'" in message
    assert "features.8" in message and "features.0" in message  # conv layers listed
    assert "fc" in message and "pool" in message  # top-level blocks listed
    assert "last_conv" in message
    # closest matches come first
    assert message.index("features.8") < message.index("pool")


def test_resolve_wrong_default_attribute_says_where_it_came_from(model):
    model.auglens_target_layer = "features.99"
    with pytest.raises(ValueError, match="auglens_target_layer"):
        resolve_target_layer(model, None)


def test_resolve_last_conv_without_conv_and_bad_type():
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    with pytest.raises(ValueError, match="no nn.Conv2d"):
        resolve_target_layer(mlp, "last_conv")
    with pytest.raises(TypeError, match="nn.Module, a dotted layer name"):
        resolve_target_layer(mlp, 3)
    with pytest.raises(ValueError):
        resolve_target_layer(mlp, "")  # the model itself is not a layer


# --- results, chunking, targets ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ALL_METHODS)
def test_result_shapes_dtypes_and_range(model, images, method):
    result = compute_lowres(model, images, method=method, target_layer="features.9")
    assert isinstance(result, CamResult)
    assert result.maps.shape == (8, 8, 8) and result.maps.dtype == torch.float32
    assert result.logits.shape == (8, NUM_CLASSES) and result.logits.dtype == torch.float32
    assert result.targets.shape == (8,) and result.targets.dtype == torch.int64
    assert result.maps.min() >= 0 and result.maps.max() < 1
    with torch.no_grad():
        logits = model(images)
    assert torch.allclose(result.logits, logits, atol=1e-5)
    assert torch.equal(result.targets, logits.argmax(dim=1))


@pytest.mark.parametrize("method", ALL_METHODS)
def test_chunking_gives_the_same_maps(model, images, method):
    whole = compute_lowres(model, images, method=method, target_layer="features.8", batch_size=8)
    chunked = compute_lowres(model, images, method=method, target_layer="features.8", batch_size=3)
    assert torch.allclose(whole.maps, chunked.maps, atol=1e-6)
    assert torch.equal(whole.targets, chunked.targets)
    assert torch.allclose(whole.logits, chunked.logits, atol=1e-6)


def test_explicit_targets_are_used(model, images):
    predicted = compute_lowres(model, images, target_layer="features.8")
    other = (predicted.targets + 1) % NUM_CLASSES
    for targets in (other, other.tolist(), other.numpy()):
        explicit = compute_lowres(model, images, target_layer="features.8", targets=targets)
        assert torch.equal(explicit.targets, other)
    assert not torch.allclose(explicit.maps, predicted.maps)
    # explicit target == predicted class gives the predicted-class maps
    same = compute_lowres(model, images, target_layer="features.8", targets=predicted.targets)
    assert torch.equal(same.maps, predicted.maps)


def test_eigencam_ignores_targets(model, images):
    a = compute_lowres(model, images, method="eigencam", target_layer="features.9")
    b = compute_lowres(model, images, method="eigencam", target_layer="features.9", targets=(a.targets + 1) % 5)
    assert torch.equal(a.maps, b.maps)
    assert torch.equal(b.targets, (a.targets + 1) % 5)


def test_eigencam_torch_backend_sign_convention(model, images):
    numpy_maps = compute_lowres(model, images, method="eigencam", target_layer="features.9").maps
    torch_result = compute_lowres(model, images, method="eigencam", target_layer="features.9", svd_backend="torch")
    # Same principal axis, so each torch map equals the numpy map or the map of the opposite sign; the
    # torch backend's sign puts the larger-magnitude side positive.
    raw_np = EigenCAM(svd_backend="numpy")._combine_numpy(_activations(model, images, model.features[9]))
    raw_t = EigenCAM(svd_backend="torch").combine(_activations(model, images, model.features[9]), None, None)
    assert torch.allclose(raw_t.abs(), raw_np.abs(), atol=1e-5)
    assert (raw_t.flatten(1).amax(1) >= raw_t.flatten(1).amin(1).abs()).all()
    assert torch_result.maps.shape == numpy_maps.shape


def _activations(model, images, layer):
    store = []
    handle = layer.register_forward_hook(lambda m, i, o: store.append(o.detach()))
    try:
        with torch.no_grad():
            model(images)
    finally:
        handle.remove()
    return store[0]


@pytest.mark.parametrize("score_batch_size", [1, 50])
def test_scorecam_batch_size_does_not_change_maps(model, images, score_batch_size):
    a = compute_lowres(model, images, method="scorecam", target_layer="features.8", score_batch_size=16)
    b = compute_lowres(model, images, method="scorecam", target_layer="features.8", score_batch_size=score_batch_size)
    assert torch.allclose(a.maps, b.maps, atol=1e-6)


def test_compute_is_upsampled_lowres(model, images):
    low = compute_lowres(model, images, method="layercam", target_layer="features.5")
    assert low.maps.shape == (8, 16, 16)
    full = compute(model, images, method="layercam", target_layer="features.5")
    assert full.shape == (8, 32, 32)
    assert torch.equal(full, upsample_maps(low.maps, (32, 32)))


# --- upsampling and storage -------------------------------------------------------------------------------


def test_upsample_maps_matches_pytorch_grad_cam_scaling():
    image_module = pytest.importorskip("pytorch_grad_cam.utils.image")
    g = torch.Generator().manual_seed(0)
    # low-contrast maps (a large offset) are where the (1e-7 + max) convention shows
    maps = 0.5 + 0.01 * torch.rand(5, 7, 9, generator=g)
    for size in [(32, 40), (7, 9), (5, 4), (224, 224)]:
        # compute_lowres returns maps after the first normalisation; upsample_maps does resize + the second
        ours = upsample_maps(minmax_normalise(maps), size)
        # reference: first normalisation + cv2 resize (compute_cam_per_layer), then the second one
        theirs = image_module.scale_cam_image(image_module.scale_cam_image(maps.numpy(), size[::-1]))
        assert ours.shape == (5, *size)
        assert np.abs(ours.numpy() - theirs).max() <= 1e-5


def test_upsample_maps_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"^maps must be a Tensor of shape \(N, h, w\); got shape \(7, 7\)$"):
        upsample_maps(torch.rand(7, 7), (14, 14))
    with pytest.raises(ValueError, match=r"^maps must be a Tensor of shape \(N, h, w\); got list$"):
        upsample_maps([[[0.5]]], (14, 14))
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        upsample_maps(torch.rand(1, 7, 7), (14, 14, 1))


def test_storage_roundtrip_dtypes():
    maps = torch.rand(3, 7, 7)
    stored = maps_to_storage(maps)
    assert stored.dtype == torch.float16
    back = maps_from_storage(stored)
    assert back.dtype == torch.float32 and back.shape == maps.shape
    assert (back - maps).abs().max() <= 2**-12  # float16 half-spacing in [0.5, 1)
    with pytest.raises(TypeError, match="floating-point"):
        maps_to_storage(torch.zeros(2, 3, 3, dtype=torch.int64))


# --- model state, hooks, gradients ------------------------------------------------------------------------


def _hook_count(model):
    return sum(len(m._forward_hooks) + len(m._backward_hooks) for m in model.modules())


@pytest.mark.parametrize("method", ["gradcam", "scorecam", "eigencam"])
def test_model_state_is_restored(images, method):
    model = make_tiny_net()
    model.train()
    model.features[1].eval()  # mixed modes must come back exactly, not as model.train(True)
    model.features[0].weight.requires_grad_(False)
    modes = [m.training for m in model.modules()]
    flags = [p.requires_grad for p in model.parameters()]
    running_mean = model.features[1].running_mean.clone()

    compute_lowres(model, images, method=method, target_layer="features.8", batch_size=3)

    assert [m.training for m in model.modules()] == modes
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())
    assert _hook_count(model) == 0
    assert torch.equal(model.features[1].running_mean, running_mean)  # ran in eval: no BN update


def test_maps_computed_in_eval_mode(images):
    model = make_tiny_net()
    reference = compute_lowres(model, images, target_layer="features.8").maps
    model.train()
    assert torch.equal(compute_lowres(model, images, target_layer="features.8").maps, reference)
    assert model.training


def test_fully_frozen_model_still_gets_gradient_cams(images):
    model = make_tiny_net()
    reference = compute_lowres(model, images, target_layer="features.8").maps
    for p in model.parameters():
        p.requires_grad_(False)
    frozen = compute_lowres(model, images, target_layer="features.8").maps
    assert torch.equal(frozen, reference)
    assert not any(p.requires_grad for p in model.parameters())


def test_existing_grads_are_left_alone(model, images):
    model.fc.weight.grad = torch.ones_like(model.fc.weight)
    compute_lowres(model, images, target_layer="features.8")
    assert torch.equal(model.fc.weight.grad, torch.ones_like(model.fc.weight))
    assert model.features[0].weight.grad is None


def test_errors_restore_state_and_remove_hooks(model, images):
    model.train()
    with pytest.raises(ValueError, match=r"targets must be class indices in \[0, 5\)"):
        compute_lowres(model, images, target_layer="features.8", targets=[7] * 8)
    assert model.training and _hook_count(model) == 0


# --- argument validation ----------------------------------------------------------------------------------


def test_unknown_method_lists_valid_names(model, images):
    with pytest.raises(UnknownNameError) as info:
        compute_lowres(model, images, method="gradcampp")
    message = str(info.value)
    assert "Did you mean" in message
    for name in ALL_METHODS:
        assert name in message


def test_unknown_method_option(model, images):
    with pytest.raises(TypeError, match="score_batch_size"):
        compute_lowres(model, images, method="scorecam", batch_sise=4)
    with pytest.raises(TypeError, match=r"\(none\)"):
        compute_lowres(model, images, method="gradcam", eps=1.0)


@pytest.mark.parametrize(
    "kwargs, error, pattern",
    [
        (dict(targets=[0, 1]), ValueError, r"shape \(8,\)"),
        (dict(targets=torch.zeros(8)), TypeError, "integer class indices"),
        (dict(batch_size=0), ValueError, "batch_size"),
    ],
)
def test_argument_errors(model, images, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        compute_lowres(model, images, target_layer="features.8", **kwargs)


def test_image_and_layer_errors(model, images):
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        compute_lowres(model, images[0])
    with pytest.raises(ValueError, match="empty"):
        compute_lowres(model, images[:0])
    with pytest.raises(ValueError, match=r"\(N, C, h, w\)"):
        compute_lowres(model, images, target_layer="fc")
    detached = nn.Conv2d(3, 3, 1)  # not part of the model: never runs
    with pytest.raises(RuntimeError, match="did not run"):
        compute_lowres(model, images, target_layer=detached)
    assert _hook_count(model) == 0 and len(detached._forward_hooks) == 0


def test_layer_called_twice_is_rejected(images):
    class Twice(TinyNet):
        def forward(self, x):
            h = self.features[:3](x)
            h = self.features[2](h)  # the ReLU module runs twice
            return self.fc(self.pool(self.features[3:](h)).flatten(1))

    with pytest.raises(RuntimeError, match="ran 2 times"):
        compute_lowres(Twice(), images, target_layer="features.2")


def test_method_instance_and_registry(model, images):
    assert set(ALL_METHODS) == set(CAM_METHODS.names())
    assert all(issubclass(CAM_METHODS.get(n), BaseCAM) for n in ALL_METHODS)
    by_name = compute_lowres(model, images, method="xgradcam", target_layer="features.8")
    by_instance = compute_lowres(model, images, method=CAM_METHODS.build("xgradcam"), target_layer="features.8")
    assert torch.equal(by_name.maps, by_instance.maps)


# --- devices ----------------------------------------------------------------------------------------------


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("method", ALL_METHODS)
def test_cuda_matches_cpu(method):
    model, images = make_tiny_net(), make_blob_images(6)
    cpu = compute_lowres(model, images, method=method, target_layer="features.8")
    gpu = compute_lowres(model.cuda(), images.cuda(), method=method, target_layer="features.8")
    assert gpu.maps.device.type == "cuda" and gpu.logits.device.type == "cuda"
    assert torch.equal(gpu.targets.cpu(), cpu.targets)
    assert (gpu.maps.cpu() - cpu.maps).abs().max() <= 1e-4

"""Every registered architecture builds for any classes/channels and yields real CAMs at its default layer."""

from __future__ import annotations

import sys

import pytest
import torch

from auglens import cam
from auglens.models import MODELS, build_model


@pytest.mark.parametrize("name", MODELS.names())
@pytest.mark.parametrize("channels", [1, 3])
def test_architecture_builds_and_knows_its_cam_layer(name, channels):
    torch.manual_seed(0)
    model = build_model(name, num_classes=7, in_channels=channels).eval()
    x = torch.randn(2, channels, 64, 64)
    assert model(x).shape == (2, 7)
    layer = dict(model.named_modules())[model.auglens_target_layer]
    assert layer is cam.resolve_target_layer(model, None)
    maps = cam.compute(model, x)
    assert maps.shape == (2, 64, 64) and float(maps.max()) <= 1.0 and float(maps.min()) >= 0.0


def test_same_init_seed_gives_same_weights():
    torch.manual_seed(3)
    a = build_model("resnet18", 10, 3).state_dict()
    torch.manual_seed(3)
    b = build_model("resnet18", 10, 3).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_user_factory_by_dotted_path(tmp_path, monkeypatch):
    (tmp_path / "my_models.py").write_text(
        "import torch.nn as nn\n"
        "def make(num_classes, in_channels, hidden=4):\n"
        "    return nn.Sequential(nn.Conv2d(in_channels, hidden, 3, padding=1), nn.ReLU(),\n"
        "                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(hidden, num_classes))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    model = build_model("my_models:make", num_classes=3, in_channels=1, hidden=6)
    assert model[0].out_channels == 6
    assert cam.compute(model.eval(), torch.randn(2, 1, 8, 8), target_layer="last_conv").shape == (2, 8, 8)
    sys.modules.pop("my_models", None)
    with pytest.raises(ValueError, match="cannot load model factory"):
        build_model("my_models:absent", num_classes=3)


def test_unknown_architecture_lists_valid_names():
    with pytest.raises(KeyError, match="resnet18"):
        build_model("resnet19", num_classes=3)


def test_timm_models_work_with_the_cam_engine():
    timm = pytest.importorskip("timm", reason="timm is an optional extra: pip install 'auglens[timm]'")
    torch.manual_seed(0)
    model = timm.create_model("resnet18", pretrained=False, num_classes=5).eval()
    x = torch.randn(2, 3, 64, 64)
    by_name = cam.compute(model, x, target_layer="layer4")
    assert by_name.shape == (2, 64, 64) and float(by_name.std()) > 0
    assert torch.allclose(cam.compute(model, x, target_layer=model.layer4), by_name)


@pytest.mark.parametrize("convs", [[1, 1, 2], [2, 2, 2]])
def test_small_cnn_pool_before_norm_is_conv_pool_norm_relu(convs):
    """``pool_before_norm``: each of the first two blocks pools its last convolution's output, then normalises
    it with statistics of the pooled values, then applies ReLU; checked against the same network written out
    with torch.nn.functional, in training mode (batch statistics) and in eval mode (running statistics)."""
    import torch.nn.functional as F

    torch.manual_seed(0)
    model = build_model("small_cnn", 10, 1, width=4, convs_per_block=convs, pool_before_norm=True)
    names = [name for name, _ in model.features.named_children()]
    assert names == ["block1", "block2", "block3"]  # the pools are inside the blocks

    def reference(x, training):
        convs_ = [m for m in model.features.modules() if isinstance(m, torch.nn.Conv2d)]
        norms = [m for m in model.features.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        pooled_after = {convs[0] - 1, convs[0] + convs[1] - 1}  # the last conv of blocks 1 and 2
        for i, (conv, bn) in enumerate(zip(convs_, norms)):
            x = F.conv2d(x, conv.weight, padding=1)
            if i in pooled_after:
                x = F.max_pool2d(x, 2)
            x = F.relu(F.batch_norm(x, bn.running_mean.clone(), bn.running_var.clone(), bn.weight, bn.bias,
                                    training=training, eps=bn.eps))
        return F.linear(x.mean(dim=(2, 3)), model.classifier.weight, model.classifier.bias)

    x = torch.randn(5, 1, 28, 28)
    for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(-1.0, 1.0)  # negative scales too: BN does not commute with pooling then
    expected_train, expected_eval = reference(x, True), reference(x, False)
    torch.testing.assert_close(model.eval()(x), expected_eval)  # first: a training-mode pass updates the stats
    torch.testing.assert_close(model.train()(x), expected_train)
    assert dict(model.named_modules())["features.block3"](torch.zeros(1, 8, 7, 7)).shape == (1, 16, 7, 7)
    assert model.features[:2](x).shape[-2:] == (7, 7)  # the CAM layer still sees a 7x7 map on 28x28 inputs
    # Another architecture, not a reordering of the default one: a positive-only check would not tell them apart.
    default = build_model("small_cnn", 10, 1, width=4, convs_per_block=convs)
    assert set(default.state_dict()) != set(model.state_dict())
    with pytest.raises(ValueError, match="pool_before_norm"):
        build_model("small_cnn", 10, 1, pool_before_norm="yes")

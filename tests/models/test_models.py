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

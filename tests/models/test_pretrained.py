"""Pretrained ImageNet models come from the user's torch cache, in torchvision's on-disk layout."""

from __future__ import annotations

import pytest
import torch
import torchvision

from auglens.models.pretrained import load_pretrained, pretrained_classes, pretrained_weights_path

ARCH = "squeezenet1_1"  # the smallest torchvision ImageNet classifier (5 MB of weights)


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    return tmp_path


def test_weights_are_read_from_the_torch_cache(torch_home):
    torch.manual_seed(3)
    fake = torchvision.models.get_model(ARCH, weights=None).state_dict()
    # torchvision's layout: $TORCH_HOME/hub/checkpoints/<last part of the weights' URL>
    path = torch_home / "hub" / "checkpoints" / "squeezenet1_1-b8a52dc0.pth"
    assert pretrained_weights_path(ARCH) == path
    path.parent.mkdir(parents=True)
    torch.save(fake, path)
    model = load_pretrained(ARCH)
    for name, value in model.state_dict().items():
        assert torch.equal(value, fake[name]), name
    assert len(pretrained_classes(ARCH)) == 1000 and pretrained_classes(ARCH)[0] == "tench"


def test_missing_weights_name_the_file_and_the_fix(torch_home):
    with pytest.raises(FileNotFoundError) as info:
        load_pretrained(ARCH)
    message = str(info.value)
    assert str(torch_home / "hub" / "checkpoints" / "squeezenet1_1-b8a52dc0.pth") in message
    assert "model.pretrained = false" in message and "weights='DEFAULT'" in message


def test_unknown_architecture_lists_the_valid_ones():
    with pytest.raises(ValueError, match="resnet101"):
        pretrained_weights_path("resnet1001")


def test_cue_conflict_with_a_pretrained_model_and_a_class_mapping(torch_home, tmp_path):
    import json

    import numpy as np
    from PIL import Image

    from auglens import distortion
    from auglens.distortion.cue_conflict import coarse_predictions, load_cue_conflict
    from auglens.models.pretrained import IMAGENET_MEAN, IMAGENET_STD

    torch.manual_seed(0)
    fake = torchvision.models.get_model(ARCH, weights=None)
    path = torch_home / "hub" / "checkpoints" / "squeezenet1_1-b8a52dc0.pth"
    path.parent.mkdir(parents=True)
    torch.save(fake.state_dict(), path)
    folder = tmp_path / "cue"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, (shape, texture) in enumerate([("cat", "dog"), ("dog", "cat"), ("cat", "dog"), ("dog", "dog")]):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(folder / f"{shape}{i}-{texture}{i}.png")
    mapping = {"cat": list(range(281, 286)), "dog": ["beagle", "pug"]}  # ImageNet indices and names
    (tmp_path / "mapping.json").write_text(json.dumps(mapping))
    config = {"analyses": ["cue_conflict"], "model": {"architecture": ARCH, "pretrained": True, "input_size": 64},
              "cue_conflict": {"folder": str(folder), "class_mapping": str(tmp_path / "mapping.json")},
              "runtime": {"device": "cpu", "progress": False}}
    threads = torch.get_num_threads()
    try:
        runs = distortion.run_analysis("cue_conflict", config, tmp_path / "out")["cue_conflict_runs"]
    finally:
        torch.set_num_threads(threads)
    assert list(runs["augmentation"]) == ["none"] and list(runs["trials"]) == [3]
    # the same decisions by hand: ImageNet normalisation, softmax, mean over each cue class's members
    cue = load_cue_conflict(folder, ["cat", "dog"], 3, 64, 64)
    x = (cue.images.float() / 255 - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        probabilities = torch.softmax(fake.eval()(x).double(), dim=1)
    members = [list(range(281, 286)), [162, 254]]  # beagle, pug
    preds = coarse_predictions(probabilities, members)
    conflict = cue.shape != cue.texture
    expected = float((preds[conflict] == cue.shape[conflict]).double().mean()) * 100
    assert runs["shape_accuracy"].iloc[0] == pytest.approx(expected)

"""A study's models start from pretrained weights (``model.pretrained``): the file's weights but a new head.

The oracles: the file's own tensors (every weight but the head), the from-scratch model of the same
``init_seed`` (the head), hashlib (the SHA-256 recorded), a 3-channel model fed the grey image on every
channel (the 1-channel adaptation), and a training fed ImageNet statistics by hand (the normalisation).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

from auglens import config as cfg
from auglens.config import ConfigError
from auglens.data.prepared import normalised_with, prepare_data
from auglens.errors import UserError
from auglens.models import build_model
from auglens.models.pretrained import head_layer, read_pretrained_state, start_from_pretrained
from auglens.preflight import preflight
from auglens.study.plan import plan_study
from auglens.study.runtime import ComputeSpec
from auglens.train.loop import initial_model, train_model

CPU = ComputeSpec("cpu", 1, True)
NUM_CLASSES, IN_CHANNELS = 4, 1  # the synthetic data set's


def _weights(path: Path, seed: int, in_channels: int = IN_CHANNELS, num_classes: int = 7,
             architecture: str = "tiny_cnn") -> dict[str, torch.Tensor]:
    """A state dict of ``architecture`` drawn from ``seed`` with trained-looking BN statistics, saved to ``path``."""
    torch.manual_seed(seed)
    model = build_model(architecture, num_classes, in_channels)
    state = model.state_dict()
    for key, value in state.items():
        if key.endswith(("running_mean", "running_var")):  # not their init values (0, 1): a copy must be seen
            value.copy_(torch.rand_like(value) + 0.5)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save(state, path)
    return state


def _study(pretrained: str | None = None, **model) -> cfg.Config:
    return cfg.from_dict({"data": {"name": "synthetic", "train_subset": 80, "test_subset": 20},
                          "model": {"architecture": "tiny_cnn", "input_size": 16, "pretrained": pretrained, **model},
                          "training": {"epochs": 1, "batch_size": 16}, "study": {"seeds": [1, 2]},
                          "augmentations": [{"name": "affine"}, {"name": "cutmix"}],
                          "runtime": {"device": "cpu", "num_threads": 1, "progress": False, "report": False}})


def _scratch_head(spec, init_seed: int) -> dict[str, torch.Tensor]:
    model = initial_model(dataclasses.replace(spec, pretrained_sha256=None, pretrained_path=None, init_seed=init_seed),
                          NUM_CLASSES, IN_CHANNELS)
    return {k: v for k, v in model.state_dict().items() if k.startswith("classifier.")}


# A file whose head has the data's class count (4) too: its head is still not taken.
@pytest.mark.parametrize("suffix, file_classes", [(".pth", 7), (".safetensors", NUM_CLASSES)])
def test_every_model_starts_from_the_file_but_the_head_which_is_init_seeds_draw(tmp_path, suffix, file_classes):
    file = _weights(tmp_path / f"start{suffix}", seed=99, num_classes=file_classes)
    config = _study(str(tmp_path / f"start{suffix}"), init_seed=3)
    plan = plan_study(config, CPU)
    assert len(plan.train_jobs) == 5  # the baseline and two augmentations x two seeds
    heads = []
    for job in plan.train_jobs:
        state = initial_model(job.spec, NUM_CLASSES, IN_CHANNELS).state_dict()
        assert set(state) == set(file)
        for key, value in state.items():
            if key.startswith("classifier."):
                continue
            assert torch.equal(value, file[key]), key
        heads.append({k: v for k, v in state.items() if k.startswith("classifier.")})
    expected = _scratch_head(plan.train_jobs[0].spec, 3)
    assert all(head.keys() == expected.keys() and all(torch.equal(head[k], expected[k]) for k in head)
               for head in heads)
    assert expected["classifier.weight"].shape == (NUM_CLASSES, 32)  # the data's classes, not the file's
    assert not torch.equal(expected["classifier.weight"][:NUM_CLASSES], file["classifier.weight"][:NUM_CLASSES])
    other = _scratch_head(plan.train_jobs[0].spec, 4)
    assert not torch.equal(other["classifier.weight"], expected["classifier.weight"])  # the seed decides the head


def test_a_grey_image_through_the_adapted_first_conv_equals_it_on_every_channel(tmp_path):
    rgb = _weights(tmp_path / "rgb.pth", seed=5, in_channels=3)
    torch.manual_seed(0)
    grey_model = start_from_pretrained(build_model("tiny_cnn", NUM_CLASSES, 1), read_pretrained_state(tmp_path / "rgb.pth"))
    rgb_model = build_model("tiny_cnn", NUM_CLASSES, 3)
    rgb_model.load_state_dict({**rgb, **{k: v for k, v in grey_model.state_dict().items() if k.startswith("classifier.")}})
    assert torch.equal(grey_model.features.block1[0].weight, rgb["features.block1.0.weight"].sum(1, keepdim=True))
    x = torch.rand(6, 1, 16, 16)
    with torch.no_grad():
        grey, repeated = grey_model.eval()(x), rgb_model.eval()(x.repeat(1, 3, 1, 1))
    # One conv's sum over three channels, in another order: float32 rounding of the activations (|.| < 10),
    # a few eps per layer of the 6-layer network.
    torch.testing.assert_close(grey, repeated, rtol=0, atol=1e-4)


def test_weights_that_do_not_fit_are_refused_with_the_reason(tmp_path):
    _weights(tmp_path / "small.pth", seed=1, architecture="small_cnn")
    with pytest.raises(ValueError, match="shape"):
        start_from_pretrained(build_model("tiny_cnn", NUM_CLASSES, 1), read_pretrained_state(tmp_path / "small.pth"))
    _weights(tmp_path / "two.pth", seed=1, in_channels=2)
    with pytest.raises(ValueError, match="the data has 3 channel.*take 2"):
        start_from_pretrained(build_model("tiny_cnn", NUM_CLASSES, 3), read_pretrained_state(tmp_path / "two.pth"))
    # Preflight reports the mismatch before any work, naming the file.
    with pytest.raises(ConfigError, match="small.pth does not fit tiny_cnn"):
        preflight(_study(str(tmp_path / "small.pth")))


def test_the_key_follows_the_files_bytes_not_its_path_and_from_scratch_keys_are_unchanged(tmp_path):
    _weights(tmp_path / "a.pth", seed=1)
    shutil.copy(tmp_path / "a.pth", tmp_path / "elsewhere.pth")
    _weights(tmp_path / "b.pth", seed=2)
    keys = {name: [job.key for job in plan_study(_study(str(tmp_path / name)), CPU).train_jobs]
            for name in ("a.pth", "elsewhere.pth", "b.pth")}
    scratch = plan_study(_study(None), CPU).train_jobs
    assert keys["a.pth"] == keys["elsewhere.pth"]
    assert not set(keys["a.pth"]) & set(keys["b.pth"])
    assert not set(keys["a.pth"]) & {job.key for job in scratch}
    assert [job.key for job in plan_study(_study("none"), CPU).train_jobs] == [job.key for job in scratch]
    fields = scratch[0].spec.key_fields()
    assert not {"pretrained_sha256", "pretrained_path", "normalisation"} & set(fields)
    spec = plan_study(_study(str(tmp_path / "a.pth")), CPU).train_jobs[0].spec
    assert spec.pretrained_sha256 == hashlib.sha256((tmp_path / "a.pth").read_bytes()).hexdigest()
    assert spec.key_fields()["pretrained_sha256"] == spec.pretrained_sha256
    assert "pretrained_path" not in spec.key_fields()


def test_a_file_changed_after_planning_is_refused(tmp_path):
    _weights(tmp_path / "a.pth", seed=1)
    job = plan_study(_study(str(tmp_path / "a.pth")), CPU).train_jobs[0]
    _weights(tmp_path / "a.pth", seed=2)
    with pytest.raises(UserError, match="changed since the study was planned"):
        initial_model(job.spec, NUM_CLASSES, IN_CHANNELS)


def test_a_missing_file_is_an_error_before_any_work_naming_the_file(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere" / "weights.pth"
    config = _study(str(missing))  # the config is well formed; the file is checked against the world
    with pytest.raises(ConfigError, match=str(missing)):
        preflight(config)
    with pytest.raises(UserError, match=str(missing)):
        plan_study(config, CPU)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    imagenet = _study("imagenet", architecture="resnet18")
    expected = tmp_path / "torch" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    with pytest.raises(ConfigError) as info:
        preflight(imagenet)
    assert str(expected) in str(info.value) and "weights='DEFAULT'" in str(info.value)
    with pytest.raises(ConfigError, match="torchvision's classifiers only"):
        _study("imagenet")  # tiny_cnn has no ImageNet weights
    with pytest.raises(ConfigError, match="neither"):
        _study(str(tmp_path / "weights.txt"))


def test_imagenet_reads_torchvisions_cache_file_and_normalises_with_imagenets_statistics(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    file = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    state = _weights(file, seed=8, in_channels=3, num_classes=1000, architecture="resnet18")
    config = _study("imagenet", architecture="resnet18", input_size=32)
    preflight(config)
    spec = plan_study(config, CPU).train_jobs[0].spec
    assert (spec.pretrained_path, spec.normalisation) == (str(file), "imagenet")
    model = initial_model(spec, NUM_CLASSES, IN_CHANNELS)
    assert head_layer(model) == "fc" and model.fc.out_features == NUM_CLASSES
    for key, value in model.state_dict().items():
        if key == "conv1.weight":
            assert torch.equal(value, state[key].sum(1, keepdim=True))
        elif not key.startswith("fc."):
            assert torch.equal(value, state[key]), key
    # Normalisation: "auto" follows the weights; "data" keeps the data's statistics.
    assert plan_study(_study("imagenet", architecture="resnet18", normalisation="data"), CPU
                      ).train_jobs[0].spec.normalisation == "data"
    assert plan_study(_study(None, normalisation="imagenet"), CPU).train_jobs[0].spec.normalisation == "imagenet"
    data = normalised_with(prepare_data(plan_study(config, CPU).data), "imagenet")
    # 1-channel data: the three channels' statistics averaged (the grey image on every channel).
    torch.testing.assert_close(data.mean, torch.tensor([(0.485 + 0.456 + 0.406) / 3]))
    torch.testing.assert_close(data.std, torch.tensor([(0.229 + 0.224 + 0.225) / 3]))


def test_imagenet_normalisation_is_what_the_training_is_fed(tmp_path):
    config = _study(None, normalisation="imagenet")
    job = plan_study(config, CPU).train_jobs[0]
    data = prepare_data(job.data)
    torch.set_num_threads(1)
    fed = train_model(job.spec, data, "cpu").state_dict
    by_hand = dataclasses.replace(data, mean=torch.tensor([0.449]), std=torch.tensor([0.226]))
    plain = train_model(dataclasses.replace(job.spec, normalisation="data"), by_hand, "cpu").state_dict
    own = train_model(dataclasses.replace(job.spec, normalisation="data"), data, "cpu").state_dict
    assert all(torch.equal(fed[k], plain[k]) for k in fed)
    assert any(not torch.equal(fed[k], own[k]) for k in fed)


def test_densenet_files_old_key_names_are_read_as_its_modules_names(tmp_path):
    old = {"features.denseblock1.denselayer1.norm.1.weight": torch.ones(2),
           "features.denseblock1.denselayer1.conv.2.weight": torch.zeros(2, 2, 1, 1),
           "features.norm5.weight": torch.ones(2)}
    torch.save(old, tmp_path / "densenet.pth")
    assert set(read_pretrained_state(tmp_path / "densenet.pth")) == {
        "features.denseblock1.denselayer1.norm1.weight", "features.denseblock1.denselayer1.conv2.weight",
        "features.norm5.weight"}


def test_the_study_and_the_architectures_command_record_the_files_sha256(tmp_path, capsys):
    from auglens.cli import main
    from auglens.config.base import dump_toml
    from auglens.study.run import run_study

    _weights(tmp_path / "start.pth", seed=4)
    digest = hashlib.sha256((tmp_path / "start.pth").read_bytes()).hexdigest()
    config = _study(str(tmp_path / "start.pth"))
    run_study(dataclasses.replace(config, augmentations=config.augmentations[:1]), tmp_path / "study")
    manifest = json.loads((tmp_path / "study" / "manifest.json").read_text())
    assert manifest["pretrained"] == {"setting": str(tmp_path / "start.pth"), "file": str(tmp_path / "start.pth"),
                                      "sha256": digest}
    assert manifest["normalisation"] == "data"

    config_path = tmp_path / "study.toml"
    config_path.write_text(dump_toml(config))
    assert main(["architectures", str(config_path), "--out", str(tmp_path / "architectures"), "--candidates",
                 "tiny_cnn", "--no-progress"]) == 0
    record = json.loads((tmp_path / "architectures" / "architectures.json").read_text())
    assert record["pretrained"]["tiny_cnn"]["sha256"] == digest
    # A candidate the file does not fit is refused before any training.
    assert main(["architectures", str(config_path), "--out", str(tmp_path / "refused"), "--candidates",
                 "tiny_cnn,small_cnn", "--no-progress"]) != 0
    assert "small_cnn: model.pretrained" in capsys.readouterr().err
    assert not (tmp_path / "refused" / "architectures.csv").exists()

"""Checks before any work (auglens.preflight): each problem found in seconds and named by its config key."""

from __future__ import annotations

import pytest
import torch

from auglens import config as cfg
from auglens import preflight
from auglens.models import MODELS


def _config(**sections) -> cfg.Config:
    data = {"data": {"name": "synthetic"}, "model": {"architecture": "tiny_cnn", "input_size": 16},
            "runtime": {"device": "cpu"}}
    for key, value in sections.items():
        data.setdefault(key, {}).update(value)
    return cfg.from_dict(data)


def _errors(config) -> list[str]:
    with pytest.raises(cfg.ConfigError) as error:
        preflight.preflight(config)
    return error.value.errors


def test_a_good_config_passes_and_says_where_the_data_come_from():
    checked = preflight.preflight(_config())
    assert checked.source.name == "synthetic" and checked.source.folder is None


@pytest.mark.parametrize("name", ["gpu", "cuda:x", "tpu", "cuda0"])
def test_misspelt_device(name):
    (error,) = preflight.check_device(name)
    assert error.startswith("runtime.device:") and repr(name) in error and "cuda:N" in error


def test_device_that_this_machine_lacks(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    (error,) = preflight.check_device("cuda")
    assert "CUDA is not available" in error and "'cpu'" in error
    assert preflight.check_device("cuda", available=False) == []  # a Ray head node: the workers have the GPUs
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    (error,) = preflight.check_device("cuda:2")
    assert "2 CUDA device(s)" in error
    assert preflight.check_device("cuda:1") == [] and preflight.check_device("auto") == []


def test_missing_image_folder(tmp_path):
    (tmp_path / "train" / "cat").mkdir(parents=True)
    (tmp_path / "train" / "cat" / "a.png").write_bytes(b"")
    errors = _errors(_config(data={"name": "image_folder", "root": str(tmp_path)}))
    assert len(errors) == 1 and errors[0].startswith("data.root:") and f"{tmp_path / 'test'} is missing" in errors[0]


def test_absent_data_set_without_download(tmp_path):
    errors = _errors(_config(data={"name": "cifar10", "root": str(tmp_path), "download": False}))
    assert errors[0].startswith("data.download:") and "data_batch_1" in errors[0]


def test_absent_data_set_whose_download_cannot_start(tmp_path, monkeypatch):
    monkeypatch.setattr(preflight, "_reachable", lambda urls, timeout=3.0: (False, "host: no route"))
    errors = _errors(_config(data={"name": "mnist", "root": str(tmp_path)}))
    assert errors[0].startswith("data.download:") and "no route" in errors[0]
    monkeypatch.setattr(preflight, "_reachable", lambda urls, timeout=3.0: (True, ""))
    assert preflight.preflight(_config(data={"name": "mnist", "root": str(tmp_path)})).source.found is False


def test_unreachable_host_is_reported_by_a_real_connection_attempt():
    ok, reason = preflight._reachable(["http://nonexistent.invalid/data.tar.gz"], timeout=1.0)
    assert not ok and "nonexistent.invalid" in reason


def test_model_parameter_of_the_wrong_type_and_name():
    errors = _errors(_config(model={"architecture": "small_cnn", "params": {"width": "wide"}}))
    assert errors == ["model.params.width: expected an integer, got 'wide'"]


def test_unknown_target_layer_found_before_training():
    (error,) = _errors(_config(cam={"target_layer": "features.block9"}))
    assert error.startswith("cam.target_layer:") and "Did you mean" in error and "features.block3" in error


def test_target_layer_without_a_spatial_output():
    (error,) = _errors(_config(cam={"target_layer": "classifier"}))
    assert error.startswith("cam.target_layer:") and "(1, 4)" in error


def test_input_too_small_for_the_architecture():
    (error,) = _errors(_config(model={"architecture": "tiny_cnn", "input_size": None}, data={"image_size": 2}))
    assert error.startswith("data.image_size:") and "(1, 1, 2, 2)" in error and "too small" in error


def test_user_factory_import_and_build_errors(tmp_path, monkeypatch):
    (tmp_path / "auglens_preflight_user_models.py").write_text(
        "import torch.nn as nn\n"
        "def net(num_classes, in_channels, depth: int = 2):\n"
        "    if depth < 1:\n"
        "        raise ValueError('depth must be >= 1')\n"
        "    return nn.Sequential(nn.Conv2d(in_channels, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),\n"
        "                         nn.Linear(4, num_classes))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert preflight.preflight(_config(model={"architecture": "auglens_preflight_user_models:net"})).source is not None
    (error,) = _errors(_config(model={"architecture": "auglens_preflight_user_models:net", "params": {"depth": 0}}))
    assert error.startswith("model.params:") and "depth must be >= 1" in error
    (error,) = _errors(_config(model={"architecture": "auglens_preflight_user_models:net", "params": {"depht": 3}}))
    assert error.startswith("model.params.depht:") and "valid: depth" in error
    (error,) = _errors(_config(model={"architecture": "no_such_module_here:net"}))
    assert error.startswith("model.architecture:") and "cannot import" in error


def test_every_problem_at_once(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    errors = _errors(_config(runtime={"device": "cuda"}, data={"name": "image_folder", "root": str(tmp_path)},
                             model={"architecture": "small_cnn", "params": {"width": "wide"}}))
    assert [e.split(":")[0] for e in errors] == ["runtime.device", "data.root", "model.params.width"]


@pytest.mark.parametrize("name", MODELS.names())
def test_every_registered_model_passes_on_the_meta_device(name):
    assert preflight.check_model(name, {}, None, 10, 3, 32) == []
    assert preflight.check_model(name, {}, "last_conv", 10, 1, 32) == []

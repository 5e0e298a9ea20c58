"""Config loading: every kind of error is reported, all at once, before any work."""

from __future__ import annotations

import pytest

from auglens import config as cfg
from auglens.config import ConfigError


def _errors(text: str, tmp_path, overrides=None) -> list[str]:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        cfg.load(path, overrides)
    return info.value.errors


def test_defaults_are_the_thesis_values():
    c = cfg.Config()
    assert (c.model.architecture, c.model.input_size) == ("efficientnet_b0", 224)
    assert (c.training.optimizer, c.training.lr, c.training.weight_decay) == ("adam", 1e-3, 1e-5)
    assert (c.training.batch_size, c.training.epochs) == (32, 30)
    assert c.study.seeds == [1, 2, 3] and c.split.validation_fraction == 0.1
    assert (c.cam.method, c.cam.target) == ("gradcam", "predicted")


def test_shipped_examples_validate():
    for name in ("fashion-mnist-quick.toml", "thesis-cifar10.toml"):
        config = cfg.load(f"examples/{name}")
        assert config.augmentations, name


def test_unknown_key_names_the_key_and_suggests(tmp_path):
    errors = _errors("[training]\nepoch = 3\n", tmp_path)
    assert len(errors) == 1
    assert "training.epoch" in errors[0] and "did you mean 'epochs'" in errors[0]


def test_unknown_section(tmp_path):
    errors = _errors("[trainig]\nepochs = 3\n", tmp_path)
    assert "trainig" in errors[0] and "training" in errors[0]


def test_wrong_types(tmp_path):
    errors = _errors('[training]\nepochs = "ten"\nlr = true\n[study]\nseeds = 3\n', tmp_path)
    joined = "\n".join(errors)
    assert "training.epochs: expected an integer" in joined
    assert "training.lr: expected a number" in joined
    assert "study.seeds" in joined
    assert len(errors) == 3


def test_out_of_range(tmp_path):
    errors = _errors("[training]\nepochs = 0\nlr = 0\n[split]\nvalidation_fraction = 1.5\n", tmp_path)
    joined = "\n".join(errors)
    assert "training.epochs: must be >= 1" in joined
    assert "training.lr: must be > 0" in joined
    assert "split.validation_fraction: must be <= 0.9" in joined
    no_validation = "\n".join(_errors("[split]\nvalidation_fraction = 0\n", tmp_path))
    assert "split.validation_fraction: must be > 0" in no_validation


def test_unknown_registry_names_list_valid_ones(tmp_path):
    text = ('[data]\nname = "cifar11"\n[model]\narchitecture = "resnet19"\n[cam]\nmethod = "gradcamm"\n'
            '[metrics]\nnames = ["mad", "pearsn"]\n[[augmentations]]\nname = "afine"\n')
    joined = "\n".join(_errors(text, tmp_path))
    assert "data.name: unknown dataset 'cifar11'" in joined and "cifar10" in joined
    assert "model.architecture" in joined and "resnet18" in joined
    assert "cam.method" in joined and "'gradcam'" in joined
    assert "metrics.names[1]" in joined and "pearson" in joined
    assert "augmentations[0].name" in joined and "'affine'" in joined


def test_bad_augmentation_parameters(tmp_path):
    text = ('[[augmentations]]\nname = "affine"\ndegree = 3\n'
            '[[augmentations]]\nname = "gaussian_blur"\nkernel_size = 4\n'
            '[[augmentations]]\nname = "random_crop"\nsize_fraction = "big"\n')
    joined = "\n".join(_errors(text, tmp_path))
    assert "augmentations[0].degree: unknown key (did you mean 'degrees'?)" in joined
    assert "augmentations[1]: gaussian_blur: kernel_size must be odd" in joined
    assert "augmentations[2].size_fraction: expected a number" in joined


def test_all_errors_reported_together(tmp_path):
    errors = _errors('[training]\nepochs = 0\n[data]\nname = "nope"\n[cam]\ntarget = "truth"\n', tmp_path)
    assert len(errors) == 3


def test_overrides_parse_toml_values(tiny_config_path):
    config = cfg.load(tiny_config_path, ["training.epochs=5", "study.seeds=[4, 5]", "cam.method=layercam"])
    assert config.training.epochs == 5 and config.study.seeds == [4, 5] and config.cam.method == "layercam"


def test_bad_override_is_reported(tiny_config_path):
    with pytest.raises(ConfigError, match="training.epochs"):
        cfg.load(tiny_config_path, ["training.epochs=-1"])
    with pytest.raises(ConfigError, match="key=value"):
        cfg.load(tiny_config_path, ["training.epochs"])


def test_resolved_config_round_trips(tiny_config_path, tmp_path):
    config = cfg.load(tiny_config_path)
    again = tmp_path / "again.toml"
    again.write_text(cfg.dump_toml(config))
    assert cfg.load(again).to_dict() == config.to_dict()


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        cfg.load(tmp_path / "absent.toml")
    errors = _errors("[training\n", tmp_path)
    assert "not valid TOML" in errors[0]


def test_configuration_reference_is_up_to_date():
    from pathlib import Path

    path = Path(__file__).parents[2] / "docs" / "configuration.md"
    assert path.read_text() == cfg.reference_markdown(), "regenerate: python -m auglens.config > docs/configuration.md"

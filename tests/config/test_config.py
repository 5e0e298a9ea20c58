"""Config loading: every kind of error is reported, all at once, before any work."""

from __future__ import annotations

import copy
import typing
from pathlib import Path

import pytest

from auglens import config as cfg
from auglens.config import ConfigError
from auglens.config_reference import reference_markdown


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
    assert "metrics[1].name" in joined and "pearson" in joined
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
    assert path.read_text() == reference_markdown(), "regenerate: python -m auglens.config_reference > docs/configuration.md"


def test_configuration_reference_covers_both_configs_and_the_metric_parameters():
    from auglens.distortion.config import DistortionConfig

    text = reference_markdown()
    assert text == reference_markdown(cfg.Config, DistortionConfig)
    study, distortion = text.split("## Distortion analyses")
    assert "## Study" in study and "`study.seeds`" in study and "`runs.seeds`" not in study
    assert "`runs.seeds`" in distortion and "`occlusion." in distortion and "`study.seeds`" not in distortion
    # The distortion config's own defaults, not the study's: the shared section, documented with each default.
    assert '| `training.optimizer` | `"sgd"` |' in distortion and '| `training.optimizer` | `"adam"` |' in study
    # Metric parameters come from the registry entries; the older [metrics] keys are documented as such.
    assert "| `metrics.overlap.percents` | `[20.0, 10.0, 5.0]` |" in study
    assert "| `metrics.class_kld.epsilon` | `1e-10` |" in study
    assert "| `metrics.overlap_percents` |" in study and "| `metrics.kld_epsilon` |" in study


def _example(name):
    return Path(__file__).parents[2] / "examples" / name


@pytest.mark.parametrize("config_class, example", [(cfg.Config, "fashion-mnist-quick.toml"),
                                                   ("distortion", "distortion-quick.toml")])
def test_round_trip_of_both_configs(config_class, example):
    from auglens.distortion.config import DistortionConfig

    config_class = DistortionConfig if config_class == "distortion" else config_class
    for config in (config_class.from_dict({}), config_class.load(_example(example))):
        assert isinstance(config, cfg.ConfigBase)
        assert config_class.from_dict(config.to_dict()) == config
    assert config_class.from_dict({}) == config_class()


def test_every_shipped_example_loads_with_its_config():
    from auglens.distortion.config import DistortionConfig

    examples = sorted(_example("").glob("*.toml"))
    assert len(examples) >= 10
    for path in examples:
        text = path.read_text()
        loader = DistortionConfig if "auglens distortion" in text else cfg.Config
        loader.load(path)


def test_shared_sections_are_defined_and_checked_once():
    from auglens.distortion.config import DistortionConfig

    for section in ("data", "split", "model", "training", "runtime"):
        study_section = typing.get_type_hints(cfg.Config)[section]
        distortion_section = typing.get_type_hints(DistortionConfig)[section]
        assert issubclass(distortion_section, study_section), section
    bad = {"data": {"name": "cifar11"}, "model": {"architecture": "small_cnn", "params": {"widht": 3}},
           "augmentations": [{"name": "none"}, {"name": "afine"}]}
    for config_class in (cfg.Config, DistortionConfig):
        with pytest.raises(ConfigError) as info:
            config_class.from_dict(bad)
        joined = "\n".join(info.value.errors)
        assert "data.name: unknown dataset 'cifar11'" in joined
        assert "model.params.widht: unknown key" in joined
        assert "augmentations[0]: 'none' is the baseline" in joined and "augmentations[1].name" in joined


def test_older_and_newer_metrics_forms_give_the_same_config():
    older = cfg.from_dict({"metrics": {"names": ["mad", "overlap", "class_kld", "mask_iou"],
                                       "overlap_percents": [10, 2.5], "kld_epsilon": 1e-6, "batch_size": 64},
                           "data": {"name": "synthetic"}})
    newer = cfg.from_dict({"metrics": [{"name": "mad"}, {"name": "overlap", "percents": [10.0, 2.5]},
                                       {"name": "class_kld", "epsilon": 1e-6},
                                       {"name": "mask_iou", "percents": [10, 2.5]}],
                           "runtime": {"metric_batch_size": 64}, "data": {"name": "synthetic"}})
    assert older == newer
    assert [(m.name, m.params) for m in newer.metrics] == [
        ("mad", {}), ("overlap", {"percents": [10.0, 2.5]}), ("class_kld", {"epsilon": 1e-6}),
        ("mask_iou", {"percents": [10.0, 2.5]})]
    # No [metrics] at all: the thesis's six metrics with their registry defaults, as the older form's defaults.
    assert cfg.from_dict({}).metrics == cfg.from_dict({"metrics": {"batch_size": 1000}}).metrics
    assert cfg.dump_toml(newer).count("[[metrics]]") == 4


def test_unknown_metric_parameter_names_the_metric_and_its_parameters(tmp_path):
    text = ('[[metrics]]\nname = "overlap"\npercent = [10]\n'
            '[[metrics]]\nname = "class_kld"\nepsilon = -1.0\n'
            '[[metrics]]\nname = "mad"\nepsilon = 1.0\n'
            '[[metrics]]\nname = "overlap"\n')
    errors = _errors(text, tmp_path)
    assert errors == [
        "metrics[0]: metric 'overlap' has no parameter 'percent'; its parameters: percents",
        "metrics[1]: metric 'class_kld', epsilon: must be a finite number >= 0, got -1.0",
        "metrics[2]: metric 'mad' has no parameter 'epsilon'; its parameters: none",
        "metrics[3].name: 'overlap' is listed twice",
    ]
    older = "\n".join(_errors("[metrics]\nnames = [\"mad\"]\noverlap_percent = [10]\n", tmp_path))
    assert "metrics.overlap_percent: unknown key (did you mean 'overlap_percents'?)" in older


def test_overrides_name_an_entry_of_an_array_of_tables(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[[metrics]]\nname = "mad"\n[[metrics]]\nname = "overlap"\n')
    config = cfg.load(path, ["metrics.overlap.percents=[10, 5]"])
    assert config.metrics[1].params == {"percents": [10.0, 5.0]}
    with pytest.raises(ConfigError, match="metrics has no entry named 'class_kld'; its entries: mad, overlap"):
        cfg.load(path, ["metrics.class_kld.epsilon=1e-6"])
    with pytest.raises(ConfigError, match="metrics is an array of tables; name an entry"):
        cfg.load(path, ['metrics.names=["mad"]'])
    # Over the older form, or no [metrics] at all, the older keys and named entries both work.
    assert cfg.load(tiny := _example("fashion-mnist-quick.toml"),
                    ["metrics.overlap.percents=[10]"]).metrics[4].params == {"percents": [10.0]}
    assert [m.name for m in cfg.load(tiny, ['metrics.names=["mad"]']).metrics] == ["mad"]


def test_none_is_reachable_from_a_file_for_keys_whose_default_is_not_none(tiny_config_path, tmp_path):
    """TOML has no null: ``"none"`` sets None where leaving the key out would give another default (the
    native input size, every occlusion image), and the resolved config writes it back the same way."""
    from auglens.distortion.config import DistortionConfig

    assert cfg.Config().model.input_size == 224  # the default the spelling must override
    config = cfg.load(tiny_config_path, ["model.input_size=none"])
    assert config.model.input_size is None
    assert config.to_dict()["model"]["input_size"] == "none"
    again = tmp_path / "again.toml"
    again.write_text(cfg.dump_toml(config))
    assert cfg.load(again) == config
    # None and the default are different configs, so they must not share artifact keys
    assert config.fingerprint("model") != cfg.load(tiny_config_path, ["model.input_size=224"]).fingerprint("model")
    assert cfg.load(tiny_config_path, ['model.input_size="None"']).model.input_size is None

    occlusion = DistortionConfig.from_dict({"occlusion": {"max_train_images": "none", "max_test_images": 10}})
    assert occlusion.occlusion.max_train_images is None and occlusion.occlusion.max_test_images == 10
    assert DistortionConfig.from_dict(occlusion.to_dict()) == occlusion
    # keys whose None is their default are still simply left out
    assert "train_subset" not in cfg.Config().to_dict()["data"]


def test_a_string_key_keeps_the_string_none_and_other_words_are_refused(tiny_config_path, tmp_path):
    config = cfg.load(tiny_config_path, ["cam.target_layer=none"])
    assert config.cam.target_layer == "none"  # a string key: "none" may be a name, so it stays a string
    errors = _errors('[model]\ninput_size = "native"\n', tmp_path)
    assert any('model.input_size: expected int or "none"' in e for e in errors), errors


def test_validate_leaves_its_input_unchanged_and_returns_the_resolved_copy():
    config = cfg.Config(data=cfg.DataConfig(name="synthetic"),
                        augmentations=[cfg.AugmentationConfig("affine", {"degrees": 5})],
                        metrics=[cfg.MetricConfig("mad"), cfg.MetricConfig("overlap", {"percents": [10]})])
    before = copy.deepcopy(config)
    problems, resolved = config.validate()
    assert problems == []
    assert config == before and type(config.augmentations[0].params["degrees"]) is int  # 5 == 5.0
    assert type(resolved.augmentations[0].params["degrees"]) is float
    assert [m.params for m in resolved.metrics] == [{}, {"percents": [10.0]}]
    assert config.checked() == resolved and config == before
    # Loading returns the resolved copy, as before validate stopped writing into its input.
    loaded = cfg.from_dict(config.to_dict())
    assert loaded == resolved and type(loaded.augmentations[0].params["degrees"]) is float


def test_the_older_metrics_keys_are_documented_from_the_same_map_the_upgrade_reads():
    from auglens.config.legacy import legacy_keys

    rows = {key for key, _, _ in cfg.describe_fields()}
    assert {f"metrics.{key}" for key in legacy_keys()} <= rows
    assert sorted((name, param.name) for name, param in legacy_keys()["overlap_percents"]) == [
        ("mask_iou", "percents"), ("overlap", "percents")]

"""``[[controls]]``: what a study config accepts as a retraining control, and what it refuses."""

from __future__ import annotations

import pytest

from auglens import config as cfg

BASE = {"data": {"name": "synthetic"}, "model": {"architecture": "tiny_cnn"}, "study": {"seeds": [1]}}


def _problems(controls) -> list[str]:
    with pytest.raises(cfg.ConfigError) as error:
        cfg.from_dict({**BASE, "controls": controls})
    return error.value.errors


def test_controls_are_read_and_written_back():
    config = cfg.from_dict({**BASE, "controls": [{"name": "init_seed", "values": [1, 2]},
                                                 {"name": "sampling_seed", "values": [7]}]})
    assert [(c.name, c.values) for c in config.controls] == [("init_seed", [1, 2]), ("sampling_seed", [7])]
    assert cfg.from_dict(config.to_dict()) == config
    assert '[[controls]]\nname = "init_seed"\nvalues = [\n    1,\n    2,\n]' in cfg.dump_toml(config)


def test_a_config_without_controls_writes_what_it_wrote_before_controls_existed():
    # No "controls" key: config.toml and the config fingerprint of existing studies stay as they were.
    config = cfg.from_dict(BASE)
    assert "controls" not in config.to_dict() and "controls" not in cfg.dump_toml(config)
    assert config.fingerprint() == cfg.from_dict({**BASE, "controls": []}).fingerprint()


@pytest.mark.parametrize(("controls", "expected"), [
    ([{"name": "init_sed", "values": [1]}], "controls[0].name: unknown control 'init_sed' (did you mean 'init_seed'?)"),
    ([{"name": "data_order", "values": [1]}], "controls[0].name: unknown control 'data_order'"),
    ([{"name": "init_seed", "values": []}], "controls[0].values: needs a non-empty list of integers"),
    ([{"name": "init_seed"}], "controls[0].values: needs a non-empty list of integers, got None"),
    ([{"name": "init_seed", "values": 1}], "controls[0].values: needs a non-empty list of integers, got 1"),
    ([{"name": "init_seed", "values": [1.5]}], "controls[0].values[0]: expected an integer, got 1.5"),
    ([{"name": "init_seed", "values": [True]}], "controls[0].values[0]: expected an integer, got True"),
    ([{"name": "init_seed", "values": [1, 1]}], "controls[0].values: values must be distinct"),
    ([{"name": "init_seed", "values": [1], "value": 2}], "controls[0].value: unknown key (did you mean 'values'?)"),
    ([{"name": "sampling_seed", "values": [1]}, {"name": "sampling_seed", "values": [2]}],
     "controls[1].name: 'sampling_seed' is listed twice"),
    # The study's own value is the baseline itself, not a control.
    ([{"name": "init_seed", "values": [3, 0]}], "controls[0].values: 0 is model.init_seed itself"),
    ([{"name": "sampling_seed", "values": [1234]}], "controls[0].values: 1234 is split.sampling_seed itself"),
])
def test_config_errors(controls, expected):
    problems = _problems(controls)
    assert len(problems) == 1 and problems[0].startswith(expected), problems


def test_the_baseline_value_is_the_study_s_own_not_the_default():
    data = {**BASE, "model": {**BASE["model"], "init_seed": 5}, "controls": [{"name": "init_seed", "values": [0]}]}
    assert cfg.from_dict(data).controls[0].values == [0]  # 0 is not this study's value
    data["controls"] = [{"name": "init_seed", "values": [5]}]
    with pytest.raises(cfg.ConfigError, match="5 is model.init_seed itself"):
        cfg.from_dict(data)


def test_an_override_names_a_control_by_its_setting():
    data = cfg.apply_overrides({**BASE, "controls": [{"name": "init_seed", "values": [1]}]},
                               ["controls.init_seed.values=[2,3]"])
    assert cfg.from_dict(data).controls[0].values == [2, 3]

"""The analysis registry: every analysis brings its config section, figure and checks; the valid analysis names
and the figures are read from it, and the config holds a field of each registered section."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field

import pytest

from auglens.config import ConfigError, config_field
from auglens.distortion import config as dcfg
from auglens.distortion.analyses import ANALYSES, analysis_names, register_analysis
from auglens.distortion.analyses import registry as registry_module


@pytest.mark.parametrize("name", analysis_names())
def test_every_analysis_has_its_section_figure_and_docstring(name):
    analysis = ANALYSES.get(name)
    fields = {f.name: f for f in dataclasses.fields(dcfg.DistortionConfig)}
    assert typing.get_type_hints(dcfg.DistortionConfig)[name] is analysis.config
    assert dataclasses.is_dataclass(analysis.config) and callable(analysis.figure)
    assert (analysis.run.__doc__ or "").strip(), "the run function documents what it measures"
    assert name in typing.get_args(typing.get_args(typing.get_type_hints(dcfg.DistortionConfig)["analyses"])[0])
    assert fields[name].default_factory() == analysis.config()


def test_default_analyses_are_those_that_need_no_user_files():
    assert dcfg.from_dict({}).analyses == [n for n in analysis_names() if n != "cue_conflict"]


def test_a_new_analysis_brings_its_section_and_checks():
    @dataclass
    class ToyConfig:
        level: int = config_field(1, "a toy level", min=0)

    # (make_dataclass: a local class is not reachable from a string annotation)
    ToyDistortionConfig = dataclasses.make_dataclass(  # noqa: N806
        "ToyDistortionConfig", [("toy", ToyConfig, field(default_factory=ToyConfig))], bases=(dcfg.DistortionConfig,))

    def checks(config):
        return ["toy.level: must not be 3"] if config.toy.level == 3 else []

    def toy(runner):
        """A toy analysis."""
        return {}

    register_analysis("toy", ToyConfig, lambda tables, config: None, checks, default=False)(toy)
    try:
        # A new analysis's section is a field of DistortionConfig, written out (until it is, the section test
        # of tests/distortion/test_distortion_config.py fails); its checks run with the others.
        assert "toy" not in typing.get_type_hints(dcfg.DistortionConfig)
        assert typing.get_type_hints(ToyDistortionConfig)["toy"] is ToyConfig
        with pytest.raises(ConfigError, match="toy.level: must not be 3"):
            ToyDistortionConfig.from_dict({"toy": {"level": 3}})
    finally:
        del ANALYSES._entries["toy"]
        registry_module._ORDER.remove("toy")

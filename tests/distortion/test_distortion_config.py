"""The distortion config: paper defaults, TOML + overrides, every problem reported at once."""

from __future__ import annotations

import copy
import dataclasses
import typing
from pathlib import Path

import pytest

from auglens.config import AugmentationConfig, ConfigError
from auglens.distortion import config as dcfg
from auglens.distortion.analyses import ANALYSES, analysis_names

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "distortion-quick.toml"


def test_defaults_follow_the_paper():
    config = dcfg.from_dict({})
    assert config.runs.seeds == [1, 2, 3, 4, 5]
    assert config.model.input_size is None and config.training.optimizer == "sgd" and config.training.lr == 0.1
    assert config.interference.occlusion_beta == (2.0, 1.0) and not config.interference.restricted
    assert [a.name for a in config.augmentations] == ["mixup", "fmix", "cutmix"]
    assert config.affinity.kind == "difference" and config.occlusion.order == "most"
    # the paper's protocol: full training set, reshuffled every epoch, last epoch kept
    assert config.split.validation_fraction == 0.0 and config.split.reshuffle_each_epoch
    assert config.training.checkpoint == "last" and config.training.augment_every_sample
    assert config.interference.normalisation == "release"


def test_shipped_example_is_valid_and_round_trips():
    config = dcfg.load(EXAMPLE)
    assert dcfg.from_dict(dcfg.to_dict(config)) == config
    first_line = EXAMPLE.read_text().splitlines()[2]
    assert "auglens distortion examples/distortion-quick.toml --out" in first_line


def test_overrides_apply():
    config = dcfg.load(EXAMPLE, ["runs.seeds=[7]", "interference.grid=4", 'analyses=["affinity"]'])
    assert config.runs.seeds == [7] and config.interference.grid == 4 and config.analyses == ["affinity"]


def test_every_problem_is_reported_together():
    # (As in auglens.config, a section with a type or range error keeps its defaults for the later
    # cross-field checks, so each section below carries one kind of problem.)
    bad = {
        "analysis": ["affinity"],
        "runs": {"seeds": [1, 1]},
        "interference": {"grid": 0, "distortions": ["grid_shufle"]},
        "occlusion": {"occluders": ["images"], "cam_method": "gradkam"},
        "affinity": {"kind": "log"},
        "interdataset": {"augmentations": ["affine"], "partners": ["cifar1000"]},
        "augmentations": [{"name": "fmix", "alpah": 1.0}, {"name": "mixupp"}],
        "analyses": ["cue_conflict"],
        "model": {"architecture": "tiny_cnnn"},
        "training": {"checkpoint": "best"},
    }
    with pytest.raises(ConfigError) as info:
        dcfg.from_dict(bad)
    text = str(info.value)
    for fragment in ("analysis: unknown key (did you mean 'analyses'?)", "runs.seeds: seeds must be distinct",
                     "interference.grid: must be >= 1", "interference.distortions[0]",
                     "occlusion.occluder_dataset", "occlusion.cam_method", "affinity.kind",
                     "interdataset.augmentations[0]", "interdataset.partners[0]", "augmentations[0].alpah",
                     "augmentations[1].name", "cue_conflict.folder", "model.architecture",
                     "training.checkpoint: 'best' picks the best validation epoch"):
        assert fragment in text, fragment
    assert len(info.value.errors) == 14


@pytest.mark.parametrize("name", analysis_names())
def test_every_registered_analysis_is_a_typed_field_of_the_config(name):
    """A newly registered analysis fails here until its section is written out as a field of DistortionConfig."""
    hints = typing.get_type_hints(dcfg.DistortionConfig)
    assert hints.get(name) is ANALYSES.get(name).config


def test_the_analysis_names_of_the_config_are_the_registered_ones():
    assert typing.get_args(dcfg.AnalysisName) == tuple(analysis_names())
    sections = [f.name for f in dataclasses.fields(dcfg.DistortionConfig) if f.name in analysis_names()]
    assert sections == analysis_names()  # the paper's order, as the TOML and docs show them


def test_validate_leaves_its_input_unchanged():
    config = dcfg.DistortionConfig(augmentations=[AugmentationConfig("mixup", {"alpha": 2})])
    before = copy.deepcopy(config)
    problems, resolved = config.validate()
    assert problems == [] and config == before
    assert type(config.augmentations[0].params["alpha"]) is int  # 2 == 2.0, so equality alone cannot tell
    assert type(resolved.augmentations[0].params["alpha"]) is float  # coerced to the factory's annotation

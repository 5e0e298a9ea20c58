"""The shipped configs state the label rule they claim; class removal as the paper reads it; paper_tables.md says
what it is (provenance, units, n) and lists every table it could not make."""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd
import pytest

from auglens import config as study_config
from auglens import distortion
from auglens._tomllib import tomllib
from auglens.augment import BASELINE, resolved_params
from auglens.config import ConfigError
from auglens.distortion import config as distortion_config
from auglens.distortion.analyses.interference import removed_classes

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# Each shipped config's mixing augmentations and the label rule its header claims: the thesis's configs give
# CutMix's label to the pasted-on image ("receiver"); the distortion paper mixes labels by area ("mixed") and
# trains MixUp, FMix and Random Masks on both labels ("mixed" objective).
CLAIMED_RULES = {
    "distortion-quick.toml": {"mixup": "mixed", "fmix": "mixed"},
    "fashion-mnist-quick.toml": {"cutmix": "receiver"},
    "fast-fashion-mnist.toml": {"cutmix": "receiver"},
    "paper-cifar10-affinity.toml": {"mixup": "mixed", "fmix": "mixed"},
    "paper-cifar10-di.toml": {"mixup": "mixed", "fmix": "mixed", "cutmix": "mixed"},
    "paper-cifar10-occlusion.toml": {"mixup": "mixed", "cutmix": "mixed", "fmix": "mixed", "random_masks": "mixed"},
    "paper-fmnist-di.toml": {"mixup": "mixed", "fmix": "mixed", "cutmix": "mixed"},
    "paper-simplicity.toml": {"mixup": "mixed", "fmix": "mixed", "cutmix": "mixed"},  # the distortion defaults
    "policies-fashion-mnist.toml": {"cutmix": "receiver"},
    "ray-cluster.toml": {"cutmix": "receiver"},
    "thesis-cifar10.toml": {"cutmix": "receiver"},
}


def _label_rule(name: str, params: dict) -> str | None:
    """How a mixing augmentation labels its images: CutMix's ``label``, the other MSDAs' ``objective``."""
    resolved = resolved_params(name, params)
    return resolved.get("label", resolved.get("objective"))


def _load(path: Path):
    kind = distortion_config.config_kind(tomllib.loads(path.read_text()))
    return distortion_config.load(path) if kind == "distortion" else study_config.load(path)


def test_every_shipped_config_is_in_the_table():
    assert sorted(p.name for p in EXAMPLES.glob("*.toml")) == sorted(CLAIMED_RULES)


@pytest.mark.parametrize("name", sorted(CLAIMED_RULES))
def test_each_mixing_augmentation_resolves_to_the_claimed_label_rule(name):
    config = _load(EXAMPLES / name)
    rules = {a.name: _label_rule(a.name, a.params) for a in config.augmentations}
    assert {k: v for k, v in rules.items() if v is not None} == CLAIMED_RULES[name]


@pytest.mark.parametrize("name", sorted(n for n in CLAIMED_RULES if n.startswith("paper-")))
def test_paper_configs_follow_the_papers_reading(name):
    config = _load(EXAMPLES / name)
    assert config.training.standard_augmentation == "crop_flip"  # no table's text says otherwise
    assert config.model.architecture == "preact_resnet18_release"
    assert config.interference.removed_class == "auto"
    for augmentation in config.augmentations:
        if augmentation.name == "cutmix":
            assert augmentation.params["label"] == "mixed"  # written out, not left to a default


def test_cutmix_without_a_label_is_an_error_naming_both_papers_values():
    data = {"augmentations": [{"name": "cutmix"}]}
    with pytest.raises(ConfigError) as error:
        distortion_config.from_dict(data)
    message = str(error.value)
    assert 'label = "mixed"' in message and "distortion paper" in message
    assert 'label = "receiver"' in message and "thesis" in message
    distortion_config.from_dict({"augmentations": [{"name": "cutmix", "label": "mixed"}]})


# ---------------------------------------------------------------------------------------------- class removal

CHOSEN = pd.DataFrame({"augmentation": [BASELINE, "mixup", "fmix"], "c_max_release": [9, 3, 1],
                       "c_max_paper": [9, 9, 5]})
CLASSES = ["plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def test_auto_removes_the_basic_models_c_max_from_every_model_type():
    assert removed_classes("auto", CHOSEN, CLASSES, "release") == {BASELINE: 9, "mixup": 9, "fmix": 9}
    assert removed_classes("per_model", CHOSEN, CLASSES, "release") == {BASELINE: 9, "mixup": 3, "fmix": 1}
    assert removed_classes("per_model", CHOSEN, CLASSES, "paper") == {BASELINE: 9, "mixup": 9, "fmix": 5}
    assert removed_classes("cat", CHOSEN, CLASSES, "release") == {BASELINE: 3, "mixup": 3, "fmix": 3}
    with pytest.raises(ValueError, match="auto, per_model, plane"):
        removed_classes("boat", CHOSEN, CLASSES, "release")


# ---------------------------------------------------------------------------------------------- tiny run

TINY = {
    "name": "tiny-tables",
    "analyses": ["interference", "occlusion"],
    "data": {"name": "synthetic", "train_subset": 80, "test_subset": 40},
    "model": {"architecture": "tiny_cnn", "input_size": 16},
    "training": {"optimizer": "adam", "lr": 3e-3, "batch_size": 32, "epochs": 1},
    "runs": {"seeds": [1, 2]},
    "augmentations": [{"name": "fmix"}],
    "interference": {"grid": 2, "distortions": ["grid_shuffle", "cut_occlusion"], "removed_class": "auto"},
    # 0.3, the paper's Table 4 fraction, is not among the fractions: Table 4 cannot be made.
    "occlusion": {"fractions": [0.0, 0.5], "maskings": ["box"], "max_train_images": 20, "max_test_images": 20,
                  "table_fraction": 0.3},
    "runtime": {"device": "cpu", "progress": False, "num_threads": 1},
}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tables")
    tables = distortion.run_distortion(copy.deepcopy(TINY), out)
    return tables, out / "distortion"


@pytest.mark.slow
def test_paper_tables_open_with_the_runs_provenance(tiny_run):
    _, root = tiny_run
    text = (root / "paper_tables.md").read_text()
    assert "reproduced" not in text
    head = text.split("## Table")[0]
    for fact in ("synthetic", "a stratified subset of 80", "test images: 40", "tiny_cnn", "1 epochs", "adam",
                 "runs: 2 (seeds 1, 2)", "standard augmentation: on (crop_flip)", "DI normalisation: release",
                 "grid shuffle: 2x2", "interference/manifest.json", "occlusion/manifest.json"):
        assert fact in head, fact
    differs = [line for line in head.splitlines() if line.startswith("**Differs from the paper's recipe:**")]
    assert len(differs) == 1
    for difference in ("1 epochs (paper: 200)", "80-image training subset", "model tiny_cnn", "2 runs (paper: 5)"):
        assert difference in differs[0]


@pytest.mark.slow
def test_each_table_states_its_unit_and_n_and_table6_its_removed_class(tiny_run):
    tables, root = tiny_run
    text = (root / "paper_tables.md").read_text()
    for section in text.split("\n## ")[1:]:
        if section.startswith("Table"):
            assert "Unit: " in section and "n = 2 runs" in section, section[:80]
    table6 = pd.read_csv(root / "paper_table6.csv")
    summary = tables["interference"]["di_summary"]
    basic = summary[(summary["augmentation"] == BASELINE) & (summary["distortion"] == "grid_shuffle")].iloc[0]
    # removed_class = "auto": the basic model's c_max, for every model type, named with its distortion.
    assert list(table6["removed class"]) == [basic["c_max_release_name"]]
    assert list(table6["distortion"]) == ["grid_shuffle"]
    assert {"basic", "FMix"} <= set(table6.columns)


@pytest.mark.slow
def test_a_table_that_cannot_be_made_is_listed_with_the_setting_that_makes_it(tiny_run):
    _, root = tiny_run
    text = (root / "paper_tables.md").read_text()
    assert not (root / "paper_table4.csv").exists()
    missing = text.split("## Not made")[1]
    assert "Table 4" in missing and "occlusion.table_fraction (0.3) among occlusion.fractions (0, 0.5)" in missing
    assert "Table 5" in missing and "affinity" in missing
    assert "Table 7" in missing and "interdataset" in missing

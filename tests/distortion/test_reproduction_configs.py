"""The shipped reproduction configs (examples/paper-*.toml) stay runnable: each is headed by its command and the
published numbers, and runs end to end shrunk by key=value overrides (tiny subsets, tiny model, 1 epoch)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from auglens import distortion
from auglens.data.datasets import DEBIAN_FASHION_MNIST

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CONFIGS = sorted(p.name for p in EXAMPLES.glob("paper-*.toml"))

SHRINK = ["data.train_subset=64", "data.test_subset=32", "model.architecture=tiny_cnn", "training.epochs=1",
          "training.batch_size=32", "training.lr_milestones=[]", "runs.seeds=[1]", "runtime.device=cpu",
          "runtime.progress=false", "runtime.num_threads=1"]
# CIFAR, MNIST and the other data sets are not available offline: the small synthetic set stands in.
OFFLINE = ['data.name="synthetic"', 'interference.occluder_dataset="synthetic"',
           'occlusion.occluder_dataset="synthetic"', "occlusion.fractions=[0.0, 0.3]", "occlusion.max_train_images=32",
           "occlusion.max_test_images=32", 'interdataset.partners=["synthetic"]', 'simplicity.simple="synthetic"',
           'simplicity.complex="synthetic"', "simplicity.complex_classes=[3, 2, 1, 0]", "simplicity.train_subset=64",
           "simplicity.test_subset=32"]


def test_every_paper_table_we_can_run_has_a_config():
    assert CONFIGS == ["paper-cifar10-affinity.toml", "paper-cifar10-di.toml", "paper-cifar10-occlusion.toml",
                       "paper-fmnist-di.toml", "paper-simplicity.toml"]


@pytest.mark.parametrize("name", CONFIGS)
def test_config_is_headed_by_its_command_and_the_published_numbers(name):
    lines = (EXAMPLES / name).read_text().splitlines()
    commands = [i for i, line in enumerate(lines) if line.strip("# ").startswith("auglens ")]
    assert commands and commands[0] <= 4, "the command that runs it, at the top"
    assert lines[commands[0]].strip("# ").startswith(f"auglens distortion examples/{name} --out results/")
    header = [line for line in lines if line.startswith("#")]
    assert sum("±" in line for line in header) >= 2, "the published numbers to compare against"
    assert any("Compute" in line for line in header)
    distortion.load(EXAMPLES / name)  # valid as shipped


@pytest.mark.slow
@pytest.mark.parametrize("name", CONFIGS)
def test_config_runs_shrunk(name, tmp_path):
    config = distortion.load(EXAMPLES / name)
    real_fashion = config.data.name == "fashion_mnist" and DEBIAN_FASHION_MNIST.exists()
    overrides = SHRINK + ([] if real_fashion else OFFLINE)
    threads = torch.get_num_threads()
    try:
        tables = distortion.run_from_toml(EXAMPLES / name, tmp_path, overrides)
    finally:
        torch.set_num_threads(threads)
    assert list(tables) == config.analyses
    out = tmp_path / "distortion"
    for analysis in config.analyses:
        assert (out / analysis / "manifest.json").exists()
    assert (out / "paper_tables.md").exists()

"""A run never replaces a study of another config silently: it stops, naming the differences, or moves the
old study aside with --force."""

from __future__ import annotations

import pytest

from auglens import config as cfg
from auglens.cli import main
from auglens.study.run import ConfigMismatch, config_differences, run_study
from tests.conftest import TINY_STUDY

SMALL = ["training.epochs=1", "study.seeds=[1]", "metrics.names=[\"mad\"]"]


@pytest.fixture
def folder(tmp_path):
    """A results folder holding the tiny study's config (nothing else is read before the check)."""
    (tmp_path / "tiny.toml").write_text(TINY_STUDY)
    out = tmp_path / "out"
    out.mkdir()
    (out / "config.toml").write_text(cfg.dump_toml(cfg.load(tmp_path / "tiny.toml")))
    (out / "performance.csv").write_text("model,accuracy\nold,0.5\n")
    return out


def test_differences_name_each_key_path_old_and_new(tiny_config_path):
    before = cfg.load(tiny_config_path)
    after = cfg.load(tiny_config_path, ["training.epochs=3", "augmentations.affine.degrees=5",
                                        "runtime.num_threads=1", "runtime.progress=true"])
    assert config_differences(before, after) == ["augmentations.affine.degrees: (not set) -> 5.0",
                                                 "training.epochs: 2 -> 3"]
    fewer = cfg.load(tiny_config_path, ["augmentations=[{name=\"cutmix\"}]"])
    assert config_differences(before, fewer) == ['augmentations: ["affine", "cutmix"] -> ["cutmix"]']
    assert config_differences(before, before) == []


def test_a_run_of_another_config_stops_before_any_work(folder, tiny_config_path, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("no work before the config check")

    monkeypatch.setattr("auglens.study.run.plan_study", forbidden)
    before = (folder / "config.toml").read_text()
    with pytest.raises(ConfigMismatch, match=r"(?s)training\.epochs: 2 -> 1.*another --out.*--force"):
        run_study(cfg.load(tiny_config_path, ["training.epochs=1"]), folder)
    assert (folder / "config.toml").read_text() == before
    assert not list(folder.glob("replaced-*"))


def test_the_command_line_exits_2_naming_the_difference(folder, tiny_config_path, capsys):
    assert main(["run", str(tiny_config_path), "--out", str(folder), "study.seeds=[1,3]", "--no-report"]) == 2
    error = capsys.readouterr().err
    assert "study.seeds: [1, 2] -> [1, 3]" in error and "--force" in error


@pytest.mark.slow  # trains two one-epoch models
def test_force_moves_the_old_study_aside_and_runs_the_new_one(folder, tiny_config_path):
    old_config = (folder / "config.toml").read_text()
    result = run_study(cfg.load(tiny_config_path, SMALL), folder, force=True)
    (moved,) = folder.glob("replaced-*")
    assert (moved / "config.toml").read_text() == old_config
    assert (moved / "performance.csv").read_text() == "model,accuracy\nold,0.5\n"
    assert cfg.load(folder / "config.toml").training.epochs == 1
    assert list(result.performance["model"]) == ["none-s1", "affine-s1", "cutmix-s1"]

"""A finished study opened in Python gives the study's numbers; its models compared by name reuse its work."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

import auglens
from auglens import cam
from auglens import config as cfg
from auglens.errors import UserError
from auglens.metrics import classification_report


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One finished run of the tiny study, shared by the read-only tests below."""
    from tests.conftest import TINY_STUDY

    root = tmp_path_factory.mktemp("opened")
    (root / "tiny.toml").write_text(TINY_STUDY)
    auglens.run_study(auglens.load_config(root / "tiny.toml"), root / "out", progress=False)
    return root / "out"


def test_import_auglens_lists_its_entry_points_without_importing_torch():
    import subprocess
    import sys

    script = ("import sys, auglens; print(sorted(n for n in dir(auglens) if not n.startswith('_'))); "
              "print('torch' in sys.modules)")
    lines = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split("\n")
    assert set(eval(lines[0])) >= {"load_config", "run_study", "open_study", "run_distortion", "compare_checkpoints",
                                   "compare_study", "build_report"}
    assert lines[1] == "False"
    for name in auglens.__all__:
        assert getattr(auglens, name) is not None
        if callable(getattr(auglens, name)):
            assert getattr(auglens, name).__doc__, f"auglens.{name} has no docstring"


@pytest.mark.slow  # shares a module-scoped tiny study (tens of seconds of CPU)
def test_opened_study_holds_the_tables_config_and_models_by_name(finished):
    study = auglens.open_study(finished)
    assert study.model_ids == ["none-s1", "affine-s1", "affine-s2", "cutmix-s1", "cutmix-s2"]
    pd.testing.assert_frame_equal(study.performance, pd.read_csv(finished / "performance.csv"))
    pd.testing.assert_frame_equal(study.cam_metrics, pd.read_parquet(finished / "cam_metrics.parquet"))
    pd.testing.assert_frame_equal(study.aug_metrics, pd.read_parquet(finished / "aug_metrics.parquet"))
    assert study.config.to_dict() == cfg.load(finished / "config.toml").to_dict()
    model = study.model("cutmix", seed=2)
    assert not model.training and next(model.parameters()).device.type == "cpu"
    # The shared baseline is trained with the first seed: "none", "none-s1" and baseline() are one model.
    for a, b in zip(study.baseline().state_dict().values(), study.model("none-s1").state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(UserError, match="no model cutmix-s7; its models: none-s1, affine-s1"):
        study.model("cutmix", seed=7)


@pytest.mark.slow  # shares a module-scoped tiny study (tens of seconds of CPU)
def test_reloaded_models_give_the_stored_accuracy_and_cams(finished):
    study = auglens.open_study(finished)
    images, labels = study.test_images(), study.test_labels()
    assert images.dtype == torch.float32 and images.shape == (120, 1, 16, 16)
    # Normalised with the training subset's statistics, as in training: not the raw [0, 1] pixels.
    assert not torch.equal(images, study.data.test.images.float() / 255)
    for row in study.performance.itertuples():
        model = study.model(row.model)
        with torch.no_grad():
            predicted = model(images).argmax(1)
        report = classification_report(predicted, labels, len(study.classes))
        assert float(report["accuracy"]) == row.accuracy, row.model
    # The stored CAM set was computed in chunks of cam.batch_size (128: all 120 images at once); CPU kernels
    # pick their algorithm by batch shape, so 64 images at once agree with it to float32 rounding only.
    stored = cam.upsample_maps(study.cam_set("cutmix", seed=1)["maps"].float(), (16, 16))
    maps = cam.compute(study.model("cutmix", seed=1), study.test_images(slice(0, 64)))
    torch.testing.assert_close(maps, stored[:64], rtol=0, atol=1e-5)
    whole = cam.compute(study.model("cutmix", seed=1), images, batch_size=study.config.cam.batch_size)
    torch.testing.assert_close(whole, stored, rtol=0, atol=1e-6)


@pytest.mark.slow  # shares a module-scoped tiny study (tens of seconds of CPU)
def test_compare_study_names_models_by_id_and_recomputes_nothing(finished, tmp_path, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("the study's CAM sets must be reused, not recomputed")

    monkeypatch.setattr("auglens.cam.compute_lowres", forbidden)
    print(auglens.compare_study(finished, tmp_path / "cmp", models=["cutmix"], progress=False))
    perf = pd.read_csv(tmp_path / "cmp" / "performance.csv")
    study_perf = pd.read_csv(finished / "performance.csv").set_index("model")
    assert perf["model"].tolist() == ["none-s1", "cutmix-s1", "cutmix-s2"]
    for row in perf.itertuples():
        assert row.accuracy == study_perf.loc[row.model, "accuracy"]
        assert row.checkpoint_key == study_perf.loc[row.model, "checkpoint_key"]
    cam_metrics = pd.read_parquet(tmp_path / "cmp" / "cam_metrics.parquet")
    expected = pd.read_parquet(finished / "cam_metrics.parquet").query("augmentation == 'cutmix'")
    pd.testing.assert_frame_equal(cam_metrics, expected.reset_index(drop=True))
    manifest = json.loads((tmp_path / "cmp" / "manifest.json").read_text())
    assert manifest["command"] == "compare" and manifest["study"] == str(finished.resolve())


@pytest.mark.slow  # shares a module-scoped tiny study (tens of seconds of CPU)
def test_compare_study_all_pairs_from_the_command_line(finished, tmp_path):
    from auglens.cli import main

    out = tmp_path / "pairs"
    assert main(["compare", "--study", str(finished), "--models", "affine-s1,cutmix-s2", "--all-pairs",
                 "--out", str(out), "--no-progress"]) == 0
    pairs = pd.read_parquet(out / "pair_metrics.parquet")
    assert sorted(set(zip(pairs["model_a"], pairs["model_b"]))) == [
        ("affine-s1", "cutmix-s2"), ("none-s1", "affine-s1"), ("none-s1", "cutmix-s2")]
    assert main(["compare", "--study", str(finished), "--models", "colour", "--out", str(out)]) == 1
    assert main(["compare", "--study", str(finished), "--arch", "tiny_cnn", "--out", str(out)]) == 2

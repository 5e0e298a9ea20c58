"""What a run leaves besides its tables: stage lines on the console, a log file, the manifest's provenance
(timings summed over resumes) and, when asked, TensorBoard event files."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from auglens.cli import main

SMALL = ["training.epochs=1", "study.seeds=[1]", "metrics.names=[\"mad\"]", "augmentations=[\"affine\"]"]


@pytest.mark.slow
def test_stage_lines_log_and_manifest_provenance_across_a_resume(tiny_config_path, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", str(tiny_config_path), "--out", str(out), "--no-progress", *SMALL]) == 0
    err = capsys.readouterr().err
    assert "data: synthetic from generated in memory" in err
    assert "train 1/2: none-s1 done in" in err and "train: 2 job(s) run in" in err  # even without progress bars
    assert "metric: 1 job(s) run in" in err
    (log,) = (out / "logs").glob("run-*.log")
    assert "train 2/2: affine-s1 done" in log.read_text()

    first = json.loads((out / "manifest.json").read_text())
    (run,) = first["runs"]
    assert run["command_line"][:3] == ["auglens", "run", str(tiny_config_path)] and run["overrides"] == SMALL
    assert run["host"] and run["started_at"] <= run["finished_at"]
    assert first["device"].startswith("cpu (") and first["data_source"]["name"] == "synthetic"
    assert first["timings_seconds"]["train_seconds"] > 0

    # Resume after losing one model: the second run retrains it; the manifest keeps both runs' work.
    checkpoint = first["models"]["affine-s1"]["train_key"]
    (out / "artifacts" / "checkpoints" / f"{checkpoint}.safetensors").unlink()
    assert main(["run", str(tiny_config_path), "--out", str(out), "--no-progress", *SMALL]) == 0
    err = capsys.readouterr().err
    assert "train: 1 job(s) run in" in err and "(1 already done)" in err
    second = json.loads((out / "manifest.json").read_text())
    assert len(second["runs"]) == 2 and len(list((out / "logs").glob("run-*.log"))) >= 1
    for key, total in second["timings_seconds"].items():
        assert total == pytest.approx(sum(r["timings_seconds"][key] for r in second["runs"]))
    assert second["timings_seconds"]["train_seconds"] > second["runs"][1]["timings_seconds"]["train_seconds"]


@pytest.mark.slow
def test_tensorboard_curves_and_cam_overlays(tiny_config_path, tmp_path, capsys):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "out"
    assert main(["run", str(tiny_config_path), "--out", str(out), "--no-progress", "runtime.tensorboard=true",
                 *SMALL, "training.epochs=2"]) == 0
    history = pd.read_csv(out / "training_history.csv")
    for model in ("none-s1", "affine-s1"):
        events = EventAccumulator(str(out / "tensorboard" / model), size_guidance={"images": 0}).Reload()
        loss = events.Scalars("train/train_loss")
        expected = history[history["model"] == model].sort_values("epoch")
        assert [e.step for e in loss] == [1, 2]
        assert [e.value for e in loss] == pytest.approx(expected["train_loss"].tolist(), rel=1e-6)
        accuracy = [e.value for e in events.Scalars("validation/accuracy")]
        assert accuracy == pytest.approx(expected["val_accuracy"].tolist(), rel=1e-6)
        (overlays,) = events.Images("cam_overlays")[:1]
        assert overlays.width > 0 and overlays.height > 0
    capsys.readouterr()


def test_tensorboard_without_the_package_is_a_config_error(tiny_config_path, tmp_path, capsys, monkeypatch):
    import auglens.tracking

    monkeypatch.setattr(auglens.tracking, "tensorboard_available", lambda: False)
    assert main(["validate", str(tiny_config_path), "runtime.tensorboard=true"]) == 2
    assert "runtime.tensorboard: true, but the tensorboard package is not installed" in capsys.readouterr().err

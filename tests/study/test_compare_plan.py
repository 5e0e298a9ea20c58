"""``auglens compare`` as a plan: CAM jobs on weights files and metric jobs, under the study's keys."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import save_file

from auglens import config as cfg
from auglens.compare import compare_checkpoints, plan_compare
from auglens.models import build_model
from auglens.errors import UserError
from auglens.store import ArtifactStore
from auglens.study.jobs import WeightsFile, run_cam_job
from tests.weights_testing import save_tiny_weights


def _config(**cam) -> cfg.Config:
    return cfg.from_dict({"data": {"name": "synthetic", "test_subset": 24}, "split": {"validation_fraction": 0.1},
                          "model": {"architecture": "tiny_cnn", "input_size": None},
                          "cam": cam, "metrics": [{"name": "mad"}], "runtime": {"device": "cpu", "progress": False}})


def _weights(folder: Path, count: int = 3) -> list[Path]:
    return save_tiny_weights(folder, count)


def test_cam_keys_follow_the_file_the_cam_settings_and_the_batch_size(tmp_path):
    paths = _weights(tmp_path)
    names = [p.stem for p in paths]
    plan = plan_compare(_config(), paths, names)
    assert all(isinstance(job.model, WeightsFile) and job.dependencies == () for job in plan.models)
    assert [job.label for job in plan.models] == names
    again = plan_compare(_config(), paths, names)
    assert [job.key for job in again.models] == [job.key for job in plan.models]
    # cam.batch_size moves stored maps in their last bits: a study keys it, and so does compare
    other_batch = plan_compare(_config(batch_size=7), paths, names)
    assert not {job.key for job in other_batch.models} & {job.key for job in plan.models}
    options = plan_compare(_config(method="scorecam", params={"score_batch_size": 4}), paths, names)
    no_options = plan_compare(_config(method="scorecam"), paths, names)
    assert not {job.key for job in options.models} & {job.key for job in no_options.models}
    assert dict(options.models[0].params) == {"score_batch_size": 4}
    # the same bytes under another name are the same model: the key is the file's content, not its path
    copy = tmp_path / "copy" / "model0.safetensors"
    copy.parent.mkdir()
    copy.write_bytes(paths[0].read_bytes())
    assert plan_compare(_config(), [copy], ["model0"]).models[0].key == plan.models[0].key
    # every pair with the baseline is one metric job of the baseline's group, shared with all pairs
    every = plan_compare(_config(), paths, names, all_pairs=True)
    assert {p.key for p in every.pairs} <= {p.key for p in every.all_pairs} and len(every.all_pairs) == 3


def test_unknown_cam_options_are_config_errors():
    with pytest.raises(cfg.ConfigError, match=r"cam.params.score_batchsize: unknown key .*score_batch_size"):
        _config(method="scorecam", params={"score_batchsize": 4})
    with pytest.raises(cfg.ConfigError, match="cam.params.eps: gradcam takes no options"):
        _config(params={"eps": 1.0})


def test_a_weights_file_changed_after_planning_is_refused(tmp_path):
    paths = _weights(tmp_path, 2)
    plan = plan_compare(_config(), paths, [p.stem for p in paths])
    torch.manual_seed(9)
    save_file(build_model("tiny_cnn", 4, 1).state_dict(), paths[1])
    with pytest.raises(UserError, match="changed since the comparison was planned"):
        run_cam_job(plan.models[1], ArtifactStore(tmp_path / "store"), torch.device("cpu"))


def test_compare_reuses_its_cam_sets_and_gives_the_same_tables(tmp_path):
    paths = _weights(tmp_path)
    out = tmp_path / "out"
    overrides = ['metrics.names=["mad", "pearson"]']
    compare_checkpoints("tiny_cnn", paths[0], paths[1:], "synthetic", out, all_pairs=True, overrides=overrides,
                        progress=False)
    tables = {name: pd.read_parquet(out / name) for name in ("cam_metrics.parquet", "pair_metrics.parquet")}
    assert tables["cam_metrics.parquet"]["augmentation"].unique().tolist() == ["model1", "model2"]
    assert list(tables["pair_metrics.parquet"].columns[:6]) == ["model_a", "model_b", "image", "label", "pred_a",
                                                                 "pred_b"]
    pairs = tables["pair_metrics.parquet"][["model_a", "model_b"]].drop_duplicates().values.tolist()
    assert pairs == [["model0", "model1"], ["model0", "model2"], ["model1", "model2"]]
    stored = {p: p.stat().st_mtime_ns for p in (out / "artifacts").rglob("*") if p.is_file()}
    compare_checkpoints("tiny_cnn", paths[0], paths[1:], "synthetic", out, all_pairs=True, overrides=overrides,
                        progress=False)
    assert {p: p.stat().st_mtime_ns for p in (out / "artifacts").rglob("*") if p.is_file()} == stored
    for name, frame in tables.items():
        pd.testing.assert_frame_equal(pd.read_parquet(out / name), frame)
    performance = pd.read_csv(out / "performance.csv")
    assert performance["augmentation"].tolist() == ["none", "model1", "model2"]

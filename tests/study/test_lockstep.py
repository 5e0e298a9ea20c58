"""training.models_at_once: a study's models trained in lockstep groups, as the study's jobs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from auglens import config as cfg
from auglens import study
from auglens._tomllib import tomllib
from auglens.config import ConfigError
from auglens.store import ArtifactStore
from auglens.study.jobs import TrainGroupJob, TrainJob
from auglens.study.plan import plan_study
from auglens.study.runtime import ComputeSpec
from auglens.train.loop import TrainSpec
from auglens.train.stacked import AUTO_MAX_MODELS, auto_models_at_once
from tests.conftest import TINY_STUDY

CPU = ComputeSpec("cpu", 1, True)


def _config(**training) -> cfg.Config:
    data = tomllib.loads(TINY_STUDY)
    data["training"].update(training)
    data["runtime"]["num_threads"] = 1
    return cfg.from_dict(data)


def _train_jobs(plan):
    return [job for job in plan.jobs if job.stage == "train"]


def test_models_at_once_takes_a_count_or_auto():
    assert _config(models_at_once=3).training.models_at_once == 3
    assert _config(models_at_once="auto").training.models_at_once == "auto"
    assert _config().training.models_at_once == 1
    for bad in (0, "many", 1.5):
        with pytest.raises(ConfigError, match="models_at_once"):
            _config(models_at_once=bad)


def test_plan_groups_the_augmented_models_and_keys_them_apart():
    alone, grouped = plan_study(_config(), CPU), plan_study(_config(models_at_once=3), CPU)
    # The models, their order and their pairs are the same; only how they are trained differs.
    assert [m.model.model_id for m in alone.models] == [m.model.model_id for m in grouped.models]
    jobs = _train_jobs(grouped)
    # baseline alone (its batch layout differs), then the 4 augmented models in groups of 3 and 1
    assert [type(job) for job in jobs] == [TrainJob, TrainGroupJob, TrainJob]
    assert [t.model_id for t in jobs[1].trains] == ["affine-s1", "affine-s2", "cutmix-s1"]
    assert [j.lockstep for j in jobs[1].trains] == [3, 3, 3] and jobs[2].lockstep == 1
    keys_alone = {m.model.model_id: m.model.key for m in alone.models}
    keys_grouped = {m.model.model_id: m.model.key for m in grouped.models}
    same = {name for name in keys_alone if keys_alone[name] == keys_grouped[name]}
    assert same == {"none-s1", "cutmix-s2"}  # trained alone either way: the same artifact
    assert [job.stage for job in grouped.artifact_jobs].count("train") == 5


def test_auto_is_one_on_a_cpu_and_groups_small_fp32_models_on_cuda():
    auto = _config(models_at_once="auto")
    assert all(isinstance(job, TrainJob) for job in _train_jobs(plan_study(auto, CPU)))
    assert [m.model.key for m in plan_study(auto, CPU).models] == [m.model.key for m in plan_study(_config(), CPU).models]
    cuda = _train_jobs(plan_study(auto, ComputeSpec("cuda", 1, True)))
    assert [len(job.members) for job in cuda] == [1, 4]
    small = TrainSpec("tiny_cnn", "affine")
    assert auto_models_at_once(small, "cuda", 10, 3) == AUTO_MAX_MODELS
    assert auto_models_at_once(small, "cpu", 10, 3) == 1
    assert auto_models_at_once(dataclasses.replace(small, precision="auto"), "cuda", 10, 3) == 1  # bf16 on CUDA
    assert auto_models_at_once(TrainSpec("resnet18", "affine"), "cuda", 10, 3) == 1  # 11M parameters
    assert auto_models_at_once(TrainSpec("efficientnet_b0", "affine"), "cuda", 10, 3) == 1  # dropout, drop path


def _checkpoints(out: Path, plan) -> dict[str, dict[str, torch.Tensor]]:
    store = ArtifactStore(out / "artifacts")
    return {m.model.model_id: store.load_tensors("checkpoints", m.model.key) for m in plan.models}


@pytest.mark.slow
def test_lockstep_study_equals_one_model_at_a_time(tmp_path):
    one, four = _config(), _config(models_at_once=4)
    a = study.run_study(one, tmp_path / "one")
    b = study.run_study(four, tmp_path / "four")
    weights_a = _checkpoints(tmp_path / "one", plan_study(one, CPU))
    weights_b = _checkpoints(tmp_path / "four", plan_study(four, CPU))
    for model, state in weights_a.items():  # 54 steps of each model
        for name, value in state.items():
            # Batch-norm running statistics average the activations themselves: relative tolerance there.
            rtol = 1e-3 if "running" in name else 0.0
            torch.testing.assert_close(weights_b[model][name], value, rtol=rtol, atol=1e-4, msg=f"{model} {name}")
    perf_a = a.performance.set_index(["augmentation", "seed"]).sort_index()
    perf_b = b.performance.set_index(["augmentation", "seed"]).sort_index()
    assert perf_a["accuracy"].tolist() == perf_b["accuracy"].tolist()
    cm_a, cm_b = a.cam_metrics, b.cam_metrics
    assert cm_a["model_pred"].tolist() == cm_b["model_pred"].tolist()  # identical predictions on the test set


@pytest.mark.slow
def test_interrupted_group_resumes_mid_training_to_the_same_weights(tmp_path, monkeypatch):
    import auglens.train.stacked as stacked

    config = _config(models_at_once=4)
    study.run_study(config, tmp_path / "whole")
    real = stacked.train_stacked
    seen: list[list] = []

    def killed_after_first_epoch(specs, data, device, progress, snapshots, on_epoch_end):
        def hook(i, state):
            on_epoch_end(i, state)
            if i == len(specs) - 1:
                raise KeyboardInterrupt  # every member's epoch-0 snapshot written: the run dies here
        return real(specs, data, device, progress, snapshots, on_epoch_end=hook)

    def spied(specs, data, device, progress, snapshots, on_epoch_end):
        seen.append([None if s is None else s["epoch"] for s in snapshots])
        return real(specs, data, device, progress, snapshots, on_epoch_end=on_epoch_end)

    monkeypatch.setattr(stacked, "train_stacked", killed_after_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        study.run_study(config, tmp_path / "resumed")
    monkeypatch.setattr(stacked, "train_stacked", spied)
    study.run_study(config, tmp_path / "resumed")
    assert seen == [[0, 0, 0, 0]]  # the group resumed together from its members' snapshots
    plan = plan_study(config, CPU)
    whole, resumed = _checkpoints(tmp_path / "whole", plan), _checkpoints(tmp_path / "resumed", plan)
    for model, state in whole.items():
        for name, value in state.items():
            assert torch.equal(resumed[model][name], value), f"{model} {name}"


@pytest.mark.slow
def test_a_group_retrains_only_its_missing_members(tmp_path):
    config = _config(models_at_once=4)
    out = tmp_path / "out"
    study.run_study(config, out)
    plan = plan_study(config, CPU)
    store = ArtifactStore(out / "artifacts")
    group = next(job for job in plan.jobs if isinstance(job, TrainGroupJob))
    lost, kept = group.trains[1], [t for t in group.trains if t is not group.trains[1]]
    before = {t.key: store.load_tensors("checkpoints", t.key) for t in group.trains}
    mtimes = {t.key: (out / "artifacts" / "checkpoints" / f"{t.key}.safetensors").stat().st_mtime_ns for t in kept}
    store.delete("checkpoints", lost.key, "safetensors")
    study.run_study(config, out)
    assert {t.key: (out / "artifacts" / "checkpoints" / f"{t.key}.safetensors").stat().st_mtime_ns
            for t in kept} == mtimes
    again = store.load_tensors("checkpoints", lost.key)
    for name, value in before[lost.key].items():  # trained alone now, in the group before
        torch.testing.assert_close(again[name], value, rtol=1e-3 if "running" in name else 0.0, atol=1e-4, msg=name)


def test_distortion_configs_refuse_models_at_once():
    from auglens.distortion.config import DistortionConfig

    with pytest.raises(ConfigError, match="one model at a time"):
        DistortionConfig.from_dict({"training": {"models_at_once": 2}})


def test_small_cnn_with_fewer_convolutions_per_block():
    from auglens.models import build_model

    full = build_model("small_cnn", 10, 1, width=8)
    lean = build_model("small_cnn", 10, 1, width=8, convs_per_block=[1, 1, 2])
    convs = [sum(isinstance(m, torch.nn.Conv2d) for m in getattr(net.features, b).modules())
             for net in (full, lean) for b in ("block1", "block2", "block3")]
    assert convs == [2, 2, 2, 1, 1, 2]
    assert lean(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert lean.features.block3[-1].__class__ is torch.nn.ReLU  # the CAM layer's output: the same 7x7 map
    with pytest.raises(ValueError, match="convs_per_block"):
        build_model("small_cnn", 10, 1, convs_per_block=[1, 0, 2])

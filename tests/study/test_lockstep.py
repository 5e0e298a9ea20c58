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
from auglens.models import build_model
from tests.conftest import TINY_STUDY
from tests.float_order import assert_within_float_order, record_steps, reduction_terms

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


#: Plain SGD for the comparisons below: its step is linear in the gradient, so the float-order bound of
#: tests/float_order.py holds; one epoch (27 steps per model) keeps the trajectories in that bound's regime.
SGD = {"optimizer": "sgd", "lr": 0.01, "momentum": 0.0, "epochs": 1}


def _assert_within_float_order(ours: dict[str, torch.Tensor], reference: dict[str, torch.Tensor], log, label: str):
    terms = reduction_terms(build_model("tiny_cnn", num_classes=4, in_channels=1), 32, 16)  # batch 32, 16 px
    assert_within_float_order(ours, reference, log, terms, label)


@pytest.mark.slow
def test_lockstep_study_equals_one_model_at_a_time(tmp_path):
    one, four = _config(**SGD), _config(models_at_once=4, **SGD)
    with record_steps() as log:
        a = study.run_study(one, tmp_path / "one")
    b = study.run_study(four, tmp_path / "four")
    assert log.steps == 27
    weights_a = _checkpoints(tmp_path / "one", plan_study(one, CPU))
    weights_b = _checkpoints(tmp_path / "four", plan_study(four, CPU))
    assert sorted(weights_a) == sorted(weights_b)
    for model, state in weights_a.items():
        assert sorted(weights_b[model]) == sorted(state)
        _assert_within_float_order(weights_b[model], state, log, model)
    # Same rows in every table; their values follow from the weights compared above. (Equal accuracies are
    # not asserted: a test image within float order of a decision boundary may flip on another CPU.)
    rows = ["augmentation", "seed"]
    assert a.performance[rows].sort_values(rows).values.tolist() == b.performance[rows].sort_values(rows).values.tolist()
    assert len(a.cam_metrics) == len(b.cam_metrics)


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
    config = _config(models_at_once=4, **SGD)
    out = tmp_path / "out"
    with record_steps() as log:
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
    _assert_within_float_order(again, before[lost.key], log, "retrained alone")  # in the group before


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

"""Retraining controls: each differs from the baseline in its one setting, is compared with it as an
augmented model is, and shows in every table marked as a control; studies without controls keep their keys."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from auglens import config as cfg
from auglens import study
from auglens.study.plan import plan_study
from auglens.study.runtime import compute_spec
from auglens.train.loop import initial_model
from auglens.train.order import training_order

CPU = compute_spec(cfg.RuntimeConfig(device="cpu", num_threads=1), "cpu")
CONTROLS = [{"name": "init_seed", "values": [1]}, {"name": "sampling_seed", "values": [7, 8]}]


def _config(controls=CONTROLS, **study_section) -> cfg.Config:
    data = {"data": {"name": "synthetic"}, "model": {"architecture": "tiny_cnn", "input_size": 16},
            "study": {"seeds": [1, 2], **study_section}, "augmentations": [{"name": "affine"}],
            "runtime": {"device": "cpu", "num_threads": 1}}
    if controls:
        data["controls"] = controls
    return cfg.from_dict(data)


def _differing(a, b) -> set[str]:
    a, b = dataclasses.asdict(a), dataclasses.asdict(b)
    return {k for k in a if a[k] != b[k]}


@pytest.mark.parametrize("baseline", ["shared", "per_seed"])
def test_each_control_is_the_baseline_with_one_setting_changed(baseline):
    plan = plan_study(_config(baseline=baseline), CPU)
    controls = [job for job in plan.models if job.model.kind == "control"]
    assert [job.model.model_id for job in controls] == [
        "control:init_seed=1-s1", "control:init_seed=1-s2", "control:sampling_seed=7-s1",
        "control:sampling_seed=7-s2", "control:sampling_seed=8-s1", "control:sampling_seed=8-s2"]
    pairs = {pair.other.key: pair for pair in plan.pairs}
    for job in controls:
        setting, value = job.model.control
        assert job.model.name == f"control:{setting}={value}"
        assert job.model.spec.augmentation == "none" and getattr(job.model.spec, setting) == value
        # Compared with the baseline exactly as an augmented model of its seed is.
        base = pairs[job.key].baseline
        augmented = next(p for p in plan.pairs if p.other.model.name == "affine"
                         and p.other.model.spec.seed == job.model.spec.seed)
        assert base is augmented.baseline
        # The spec differs from its seed's baseline spec in the one setting (and nothing else); from the
        # baseline it is compared with also in the starting state when that baseline is shared.
        own_seed = study.train_spec(_config(baseline=baseline), "none", {}, job.model.spec.seed)
        assert _differing(job.model.spec, own_seed) == {setting}
        expected = {setting} | ({"seed"} if base.model.spec.seed != job.model.spec.seed else set())
        assert _differing(job.model.spec, base.model.spec) == expected
        assert job.model.data == base.model.data and job.model.compute == base.model.compute


def test_init_seed_changes_the_initial_weights_and_sampling_seed_the_training_order():
    plan = plan_study(_config(), CPU)
    baseline = plan.models[0].model
    by_name = {job.model.name: job.model for job in plan.models if job.model.spec.seed == 1}
    weights = {name: initial_model(job.spec, 4, 1).state_dict() for name, job in by_name.items()}
    orders = {name: training_order(200, False, job.spec.sampling_seed) for name, job in by_name.items()}
    base_weights = initial_model(baseline.spec, 4, 1).state_dict()
    base_order = training_order(200, False, baseline.spec.sampling_seed)

    def same_weights(state):
        return all(torch.equal(state[k], base_weights[k]) for k in state)

    assert not same_weights(weights["control:init_seed=1"])
    assert torch.equal(orders["control:init_seed=1"], base_order)
    for name in ("control:sampling_seed=7", "control:sampling_seed=8"):
        assert same_weights(weights[name])
        assert not torch.equal(orders[name], base_order)


def test_the_name_is_not_part_of_the_key():
    # A control's training is the baseline's spec with the one field changed: named or not, one training.
    plan = plan_study(_config(), CPU)
    control = next(job.model for job in plan.models if job.model.kind == "control")
    assert dataclasses.replace(control, control=None).key == control.key
    assert control.key != plan.models[0].model.key


@pytest.mark.parametrize("models_at_once", [1, 2])
def test_controls_leave_the_keys_of_a_study_without_them_unchanged(models_at_once):
    def jobs(controls):
        config = _config(controls)
        config.training.models_at_once = models_at_once
        plan = plan_study(config.checked(), CPU)
        return plan, {job.key: job for job in plan.artifact_jobs}

    without, keys_without = jobs(None)
    with_controls, keys_with = jobs(CONTROLS)
    assert set(keys_without) <= set(keys_with)  # every training, CAM set and metric table of the plain study
    assert [job.key for job in with_controls.models[:len(without.models)]] == [job.key for job in without.models]
    added = [job for job in with_controls.train_jobs if job.kind == "control"]
    assert len(added) == 6 and not {job.key for job in added} & set(keys_without)
    if models_at_once > 1:  # controls train in groups of their own: none joins a baseline or augmented group
        assert {job.lockstep for job in added} == {2}


def test_a_study_with_controls_marks_their_rows_in_every_table(tmp_path, monkeypatch):
    config = cfg.from_dict({
        "data": {"name": "synthetic"}, "split": {"validation_fraction": 0.1},
        "model": {"architecture": "tiny_cnn", "input_size": 16},
        "training": {"batch_size": 32, "epochs": 1}, "study": {"seeds": [1]},
        "augmentations": [{"name": "affine"}],
        "controls": [{"name": "init_seed", "values": [1]}, {"name": "sampling_seed", "values": [7]}],
        "metrics": [{"name": "mad"}, {"name": "pearson"}],
        "faithfulness": {"enabled": True, "measures": ["deletion"], "steps": 4, "test_subset": 8},
        "cka": {"test_subset": 16},
        "runtime": {"device": "cpu", "progress": False, "report": False, "num_threads": 1}})
    result = study.run_study(config, tmp_path / "out")
    names = ["none", "affine", "control:init_seed=1", "control:sampling_seed=7"]
    kinds = ["baseline", "augmentation", "control", "control"]
    perf = pd.read_csv(tmp_path / "out" / "performance.csv")
    assert perf["augmentation"].tolist() == names and perf["kind"].tolist() == kinds
    assert perf["model"].tolist() == [f"{n}-s1" for n in names]
    history = pd.read_csv(tmp_path / "out" / "training_history.csv")
    assert dict(zip(history["augmentation"], history["kind"])) == dict(zip(names, kinds))
    cam_metrics = pd.read_parquet(tmp_path / "out" / "cam_metrics.parquet")
    assert list(cam_metrics.columns[:3]) == ["augmentation", "kind", "seed"]
    assert list(pd.unique(cam_metrics["augmentation"])) == names[1:]
    assert dict(zip(cam_metrics["augmentation"], cam_metrics["kind"])) == dict(zip(names[1:], kinds[1:]))
    aug = pd.read_parquet(tmp_path / "out" / "aug_metrics.parquet")
    assert dict(zip(aug["augmentation"], aug["kind"])) == dict(zip(names[1:], kinds[1:]))
    assert study.PER_IMAGE_KEYS == ["augmentation", "kind", "seed", "image", "label", "baseline_pred", "model_pred"]
    # The per-model analyses name a control by its control name too, never as the baseline ("none").
    faithfulness = pd.read_parquet(tmp_path / "out" / "model_faithfulness.parquet")
    assert dict(zip(faithfulness["augmentation"], faithfulness["kind"])) == dict(zip(names, kinds))
    assert (faithfulness.groupby("augmentation").size() == 8).all()
    aug_faithfulness = pd.read_parquet(tmp_path / "out" / "aug_faithfulness.parquet")
    assert dict(zip(aug_faithfulness["augmentation"], aug_faithfulness["kind"])) == dict(zip(names, kinds))
    cka = pd.read_csv(tmp_path / "out" / "model_cka.csv")
    assert dict(zip(cka["augmentation"], cka["kind"])) == dict(zip(names[1:], kinds[1:]))
    aug_cka = pd.read_csv(tmp_path / "out" / "aug_cka.csv")
    assert list(pd.unique(aug_cka["augmentation"])) == names[1:] and (aug_cka["n_seeds"] == 1).all()
    assert set(study.metric_value_columns(cam_metrics)) == {"mad", "pearson"}
    # Retraining changes the CAMs: a control's maps are not the baseline's (MAD > 0 on some image).
    for name in names[2:]:
        assert (cam_metrics.loc[cam_metrics["augmentation"] == name, "mad"] > 0).any()
    # The controls' checkpoints are the trainings of their specs; rerunning the study computes nothing.
    plan = study.plan_study(config)
    from auglens.study.opened import open_study

    store = open_study(tmp_path / "out").store
    states = [store.load_tensors("checkpoints", job.model.key) for job in plan.models]
    for state in states[2:]:
        assert any(not torch.equal(state[k], states[0][k]) for k in state)

    def forbidden(*args, **kwargs):
        raise AssertionError("a finished study must not recompute anything")

    monkeypatch.setattr("auglens.study.jobs.train_model", forbidden)
    monkeypatch.setattr("auglens.cam.compute_lowres", forbidden)
    again = study.run_study(config, tmp_path / "out")
    pd.testing.assert_frame_equal(again.aug_metrics, result.aug_metrics)
    assert np.isfinite(result.aug_metrics["mad"]).all()

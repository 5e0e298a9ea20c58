"""Faithfulness and CKA jobs in the study plan: planned per model / per compared pair, keyed by their settings,
run into tables, resumed without recomputation, and equal to the core functions called directly."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from auglens import config as cfg
from auglens import study
from auglens._tomllib import tomllib
from auglens.study.model_jobs import MODEL_ANALYSES, CkaJob, FaithfulnessJob
from auglens.study.plan import plan_study
from tests.conftest import TINY_STUDY


def _config(**sections) -> cfg.Config:
    data = tomllib.loads(TINY_STUDY)
    data["runtime"]["num_threads"] = 1
    data["faithfulness"] = {"enabled": True, "test_subset": 24, "steps": 4, "percentiles": [25, 75],
                            "batch_size": 10}
    data["cka"] = {"test_subset": 30, "batch_size": 16}
    for name, values in sections.items():
        data[name] = values if isinstance(values, list) else {**data.get(name, {}), **values}  # [[tables]] as they are
    return cfg.from_dict(data)


def test_plan_has_one_faithfulness_job_per_model_and_one_cka_job_per_pair():
    plan = plan_study(_config())
    assert [job.cams for job in plan.faithfulness] == plan.models
    assert [(job.baseline, job.other) for job in plan.cka] == [(p.baseline.model, p.other.model) for p in plan.pairs]
    assert plan.jobs[-len(plan.faithfulness) - len(plan.cka):] == [*plan.cka, *plan.faithfulness]  # name order
    assert all(job in plan.artifact_jobs for job in (*plan.faithfulness, *plan.cka))
    assert all(job.dependencies == (job.cams,) for job in plan.faithfulness)
    assert all(job.dependencies == (job.baseline, job.other) for job in plan.cka)
    off = plan_study(_config(faithfulness={"enabled": False}, cka={"enabled": False}))
    assert off.faithfulness == [] and off.cka == []


@pytest.mark.parametrize("name", MODEL_ANALYSES.names())
def test_every_registered_analysis_has_its_section_and_plans_its_jobs(name):
    """A registered analysis is switched by its own config section, and only its own jobs appear."""
    assert hasattr(cfg.Config(), name) and hasattr(getattr(cfg.Config(), name), "enabled")
    everything_off = {other: {"enabled": False} for other in MODEL_ANALYSES.names()}
    assert plan_study(_config(**everything_off)).analysis_jobs == []
    only = plan_study(_config(**{**everything_off, name: {"enabled": True}}))
    assert only.analysis_jobs and {job.stage for job in only.analysis_jobs} == {name}
    assert set(only.analyses) == set(MODEL_ANALYSES.names())


@pytest.mark.parametrize("section, change", [
    ("faithfulness", {"steps": 5}), ("faithfulness", {"baseline": "blur"}), ("faithfulness", {"percentiles": [50]}),
    ("faithfulness", {"noise": 0.0}), ("faithfulness", {"seed": 1}), ("faithfulness", {"test_subset": 20}),
    ("faithfulness", {"measures": ["road"]}), ("cka", {"estimator": "unbiased"}), ("cka", {"test_subset": 20}),
    ("cka", {"layers": ["features.block3"]}), ("cka", {"batch_size": 20}),
])
def test_every_setting_is_in_the_key(section, change):
    before, after = plan_study(_config()), plan_study(_config(**{section: change}))
    jobs = "faithfulness" if section == "faithfulness" else "cka"
    assert not {job.key for job in getattr(before, jobs)} & {job.key for job in getattr(after, jobs)}
    other = "cka" if jobs == "faithfulness" else "faithfulness"
    assert [j.key for j in getattr(before, other)] == [j.key for j in getattr(after, other)]


def test_cka_keys_ignore_the_cam_settings_and_faithfulness_keys_follow_them():
    before, after = plan_study(_config()), plan_study(_config(cam={"method": "gradcam++"}))
    assert [j.key for j in before.cka] == [j.key for j in after.cka]
    assert not {j.key for j in before.faithfulness} & {j.key for j in after.faithfulness}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("model-jobs") / "out"
    return out, study.run_study(_config(), out)


@pytest.mark.slow  # a whole tiny study with both analyses (about 20 s of CPU)
def test_tables_and_resume(finished):
    out, result = finished
    faithfulness = pd.read_parquet(out / "model_faithfulness.parquet")
    assert list(faithfulness.columns) == ["augmentation", "kind", "seed", "image", "label", "target", "model_pred",
                                          "deletion", "insertion", "road_morf", "road_lerf", "road_combined"]
    assert len(faithfulness) == 5 * 24  # models x subset
    assert faithfulness[["deletion", "insertion"]].apply(lambda c: c.between(0, 1)).all().all()
    aug = pd.read_parquet(out / "aug_faithfulness.parquet")
    assert set(aug["augmentation"]) == {"none", "affine", "cutmix"} and len(aug) == 3 * 24
    mean = faithfulness[faithfulness["augmentation"] == "affine"].groupby("image")["deletion"].mean()
    assert np.allclose(aug[aug["augmentation"] == "affine"].set_index("image")["deletion"], mean, rtol=0, atol=0)
    cka = pd.read_csv(out / "model_cka.csv")
    assert len(cka) == 4 * 5 and cka["cka"].between(0, 1 + 1e-12).all()  # 4 pairs x the small CNN's 5 blocks
    aug_cka = pd.read_csv(out / "aug_cka.csv")
    assert len(aug_cka) == 2 * 5 and (aug_cka["n_seeds"] == 2).all()
    manifest = __import__("json").loads((out / "manifest.json").read_text())
    assert {"model_faithfulness.parquet", "model_cka.csv"} <= set(manifest["tables_sha256"])
    assert len(manifest["faithfulness"]) == 5 and len(manifest["cka"]) == 4

    before = {p: p.stat().st_mtime_ns for p in (out / "artifacts").rglob("*") if p.is_file()}
    study.run_study(_config(), out)  # computes nothing: no artifact is written again
    assert {p: p.stat().st_mtime_ns for p in (out / "artifacts").rglob("*") if p.is_file()} == before
    pd.testing.assert_frame_equal(pd.read_parquet(out / "model_faithfulness.parquet"), faithfulness, check_exact=True)


@pytest.mark.slow
def test_job_values_equal_the_core_functions(finished):
    """A stored faithfulness row and CKA row recomputed from the checkpoint and CAM set with the core functions."""
    from auglens import cam
    from auglens.data.prepared import model_input, prepare_data
    from auglens.metrics import cka, faithfulness as fm
    from auglens.store import ArtifactStore
    from auglens.study.jobs import load_trained_model

    out, _ = finished
    config = _config()
    plan = plan_study(config)
    store = ArtifactStore(out / "artifacts")
    job: FaithfulnessJob = plan.faithfulness[1]
    data = prepare_data(plan.data)
    model = load_trained_model(job.cams.model, store, data, torch.device("cpu"))
    stored = store.load_table("faithfulness", job.key)
    images = torch.tensor(stored["image"].to_numpy()[:3])
    cams = store.load_tensors("cams", job.cams.key)
    x = model_input(data.test.images[images], data.mean, data.std, 16)
    maps = cam.upsample_maps(cams["maps"][images].float(), (16, 16))
    noise = fm.road_noise(images.tolist(), (1, 16, 16), 0, 4)
    direct = fm.faithfulness_scores(model, x, maps, cams["targets"][images], ["deletion", "insertion", "road"],
                                    steps=4, percentiles=[25, 75], noise=noise, noise_std=0.01)
    # float32 forward passes on batches of another shape: probabilities agree to a few float32 eps
    for column, values in direct.items():
        assert np.allclose(stored[column].to_numpy()[:3], values.double().numpy(), atol=1e-5, rtol=0)

    pair: CkaJob = plan.cka[0]
    stored_cka = store.load_table("cka", pair.key)
    subset = study.model_jobs.analysis_subset(data, 30)
    x = model_input(data.test.images[subset], data.mean, data.std, 16)
    models = [load_trained_model(m, store, data, torch.device("cpu")) for m in (pair.baseline, pair.other)]
    acts = [cka.layer_activations(m, ["features.block2"], x)["features.block2"] for m in models]
    row = stored_cka[stored_cka["layer"] == "features.block2"]
    # float64 CKA of float32 activations: the Gram and sums forms agree to ~1e-6 (test_metrics_cka)
    assert abs(float(row["cka"].iloc[0]) - float(cka.linear_cka(*acts))) < 1e-6


def test_specs_carry_every_config_field():
    """Each [faithfulness] and [cka] field but `enabled` reaches its job's spec, under the same name."""
    from auglens.config.study import CkaConfig, FaithfulnessConfig
    from auglens.study.model_jobs import CkaSpec, FaithfulnessSpec

    for section, spec in ((FaithfulnessConfig, FaithfulnessSpec), (CkaConfig, CkaSpec)):
        fields = {f.name for f in dataclasses.fields(section)} - {"enabled"}
        assert fields == {f.name for f in dataclasses.fields(spec)}
        defaults = section()
        for f in dataclasses.fields(spec):
            value = getattr(defaults, f.name)
            assert (tuple(value) if isinstance(value, list) else value) == f.default, f.name

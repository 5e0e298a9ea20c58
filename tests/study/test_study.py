"""A whole tiny study: tables, determinism, resuming after a crash, skipping finished work."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import auglens
from auglens import config as cfg
from auglens import study
from auglens.metrics import mad, pearson
from tests.tables import assert_same_tables, read_tables





@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One finished run of the tiny study, shared by the read-only tests below."""
    from tests.conftest import TINY_STUDY

    root = tmp_path_factory.mktemp("study")
    (root / "tiny.toml").write_text(TINY_STUDY)
    config = cfg.load(root / "tiny.toml")
    result = study.run_study(config, root / "out")
    return config, result, root


@pytest.mark.slow  # shares a module-scoped tiny study (tens of seconds of CPU)
def test_tables_have_the_documented_shape(finished):
    config, result, root = finished
    out = root / "out"
    perf = pd.read_csv(out / "performance.csv")
    assert list(perf.columns[:9]) == ["model", "augmentation", "kind", "seed", "accuracy", "precision_macro",
                                      "recall_macro", "f1_macro", "best_epoch"]
    assert perf["augmentation"].tolist() == ["none", "affine", "affine", "cutmix", "cutmix"]
    assert perf["kind"].tolist() == ["baseline"] + ["augmentation"] * 4
    cam_metrics = pd.read_parquet(out / "cam_metrics.parquet")
    assert list(cam_metrics.columns) == ["augmentation", "kind", "seed", "image", "label", "baseline_pred", "model_pred",
                                         "mad", "msd", "pearson", "spearman", "overlap_20", "overlap_10",
                                         "overlap_5", "class_kld"]
    assert len(cam_metrics) == 2 * 2 * 120  # augmentations x seeds x test images
    assert (cam_metrics["kind"] == "augmentation").all()
    aug = pd.read_parquet(out / "aug_metrics.parquet")
    assert len(aug) == 2 * 120 and (aug["n_seeds"] == 2).all() and (aug["kind"] == "augmentation").all()
    for name in ("config.toml", "manifest.json", "test_set.safetensors"):
        assert (out / name).exists()
    assert cfg.load(out / "config.toml").to_dict() == config.to_dict()


@pytest.mark.slow  # shares a module-scoped tiny study (tens of seconds of CPU)
def test_trained_models_learn_the_synthetic_task(finished):
    _, result, _ = finished
    assert (result.performance["accuracy"] > 0.6).all()


@pytest.mark.slow  # shares a module-scoped tiny study (tens of seconds of CPU)
def test_seed_average_is_the_mean_over_seeds(finished):
    _, result, _ = finished
    cm, aug = result.cam_metrics, result.aug_metrics
    expected = cm.groupby(["augmentation", "image"])["mad"].mean()
    got = aug.set_index(["augmentation", "image"])["mad"]
    pd.testing.assert_series_equal(got.sort_index(), expected.sort_index(), check_names=False)


@pytest.mark.slow  # shares a module-scoped tiny study (tens of seconds of CPU)
def test_metric_rows_recompute_from_stored_cam_sets(finished):
    """Independent recomputation of one model pair from the CAM sets on disk."""
    from safetensors.torch import load_file

    from auglens.cam import upsample_maps

    _, result, root = finished
    out = root / "out"
    perf = result.performance.set_index("model")
    base = load_file(out / perf.loc["none-s1", "cam_set"])
    other = load_file(out / perf.loc["cutmix-s2", "cam_set"])
    b = upsample_maps(base["maps"].float(), (16, 16))
    o = upsample_maps(other["maps"].float(), (16, 16))
    rows = result.cam_metrics.query("augmentation == 'cutmix' and seed == 2").sort_values("image")
    assert np.allclose(rows["mad"].to_numpy(), mad(b, o).numpy(), atol=1e-12)
    assert np.allclose(rows["pearson"].to_numpy(), pearson(b, o).numpy(), atol=1e-12, equal_nan=True)
    assert (rows["model_pred"].to_numpy() == other["logits"].argmax(1).numpy()).all()


@pytest.mark.slow  # shares a module-scoped tiny study (tens of seconds of CPU)
def test_same_config_gives_identical_tables(finished, tmp_path):
    config, _, root = finished
    study.run_study(config, tmp_path / "again")
    assert_same_tables(root / "out", tmp_path / "again")


@pytest.mark.slow  # shares a module-scoped tiny study (tens of seconds of CPU)
def test_rerunning_a_finished_study_trains_and_computes_nothing(finished, monkeypatch):
    config, _, root = finished

    def forbidden(*args, **kwargs):
        raise AssertionError("a finished study must not recompute anything")

    monkeypatch.setattr("auglens.study.jobs.train_model", forbidden)
    monkeypatch.setattr("auglens.cam.compute_lowres", forbidden)
    study.run_study(config, root / "out")


@pytest.mark.slow  # shares a module-scoped tiny study (tens of seconds of CPU)
def test_changing_a_setting_retrains_only_what_depends_on_it(finished):
    config, _, _ = finished
    plan = study.plan_study(config)
    changed = cfg.from_dict({**config.to_dict(), "cam": {**config.to_dict()["cam"], "method": "layercam"}})
    plan2 = study.plan_study(changed)
    assert [m.model.key for m in plan.models] == [m.model.key for m in plan2.models]
    assert not set(m.key for m in plan.models) & set(m.key for m in plan2.models)


@pytest.mark.slow  # shares a module-scoped tiny study (tens of seconds of CPU)
def test_per_seed_baselines_pair_each_model_with_its_seed(finished):
    config, _, _ = finished
    data = config.to_dict()
    data["study"]["baseline"] = "per_seed"
    plan = study.plan_study(cfg.from_dict(data))
    assert [m.model.model_id for m in plan.models[:2]] == ["none-s1", "none-s2"]
    for pair in plan.pairs:
        assert pair.baseline.model.spec.seed == pair.other.model.spec.seed


@pytest.mark.slow  # shares a module-scoped tiny study (tens of seconds of CPU)
def test_every_model_starts_from_the_same_weights(finished):
    config, _, _ = finished
    from auglens.train.loop import initial_model

    plan = study.plan_study(config)
    states = [initial_model(m.model.spec, 4, 1).state_dict() for m in plan.models]
    for state in states[1:]:
        assert all(torch.equal(state[k], states[0][k]) for k in state)


@pytest.mark.slow
def test_killed_run_resumes_to_identical_tables(tiny_config_path, tmp_path, finished):
    _, _, root = finished
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(Path(auglens.__file__).parents[1])}  # the code under test
    command = [sys.executable, "-m", "auglens.cli", "run", str(tiny_config_path), "--out", str(out),
               "--no-progress", "--no-report"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    # Kill -9 once the run is mid-way: the first model finished and another one part-trained.
    while time.time() < deadline:
        checkpoints = list((out / "artifacts" / "checkpoints").glob("*.safetensors"))
        snapshots = list((out / "artifacts" / "snapshots").glob("*.pt"))
        if checkpoints and snapshots:
            break
        if process.poll() is not None:
            pytest.fail("the run ended before it could be interrupted")
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (out / "cam_metrics.parquet").exists()
    completed = subprocess.run(command, env=env, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    assert_same_tables(root / "out", out)
    assert [p for p in out.rglob("*") if ".tmp-" in p.name] == []


@pytest.mark.slow  # shares a module-scoped tiny study (tens of seconds of CPU)
def test_compare_brought_checkpoints_reproduces_the_study_tables(finished, tmp_path):
    """``auglens compare`` on the study's own checkpoints gives the study's metric rows, without training."""
    from auglens.cli import main

    config, result, root = finished
    plan = study.plan_study(config)
    store_dir = root / "out" / "artifacts" / "checkpoints"
    baseline = tmp_path / "base.safetensors"
    baseline.write_bytes((store_dir / f"{plan.models[0].model.key}.safetensors").read_bytes())
    other_job = next(m for m in plan.models if m.model.model_id == "cutmix-s1")
    # The other model as a torch.save file: loaded with weights_only=True.
    from safetensors.torch import load_file

    other = tmp_path / "cutmix.pt"
    torch.save({"state_dict": load_file(store_dir / f"{other_job.model.key}.safetensors")}, other)
    code = main(["compare", "--arch", "tiny_cnn", "--baseline", str(baseline), str(other), "--data",
                 str(root / "tiny.toml"), "--out", str(tmp_path / "cmp"), "--all-pairs", "--no-progress"])
    assert code == 0
    got = pd.read_parquet(tmp_path / "cmp" / "cam_metrics.parquet")
    expected = result.cam_metrics.query("augmentation == 'cutmix' and seed == 1").reset_index(drop=True)
    values = [c for c in expected.columns if c not in ("augmentation", "seed")]
    pd.testing.assert_frame_equal(got[values], expected[values], check_exact=True)
    pairs = pd.read_parquet(tmp_path / "cmp" / "pair_metrics.parquet")
    assert set(zip(pairs["model_a"], pairs["model_b"])) == {("base", "cutmix")}


def test_compare_refuses_pickled_objects(tmp_path):
    from auglens.compare import load_state_dict
    from auglens.errors import UserError

    path = tmp_path / "evil.pt"
    torch.save({"weights": torch.zeros(2), "callback": print}, path)
    with pytest.raises(UserError, match="evil.pt: not loadable as plain weights"):
        load_state_dict(path)


@pytest.mark.slow  # shares a module-scoped tiny study (tens of seconds of CPU)
def test_artifacts_in_an_fsspec_store_give_the_same_tables(finished, tmp_path):
    """runtime.artifacts accepts any fsspec URL; memory:// stands in for s3:// here."""
    config, _, root = finished
    data = config.to_dict()
    data["runtime"]["artifacts"] = "memory://auglens-test-store"
    result = study.run_study(cfg.from_dict(data), tmp_path / "remote")
    assert result.performance["cam_set"].str.startswith("memory://").all()
    ours, theirs = read_tables(tmp_path / "remote"), read_tables(root / "out")
    for name in ("cam_metrics", "aug_metrics", "history"):
        pd.testing.assert_frame_equal(ours[name], theirs[name], check_exact=True, obj=name)


@pytest.mark.slow  # shares a module-scoped tiny study (tens of seconds of CPU)
def test_metric_group_recomputes_only_missing_members_identically(finished):
    from auglens.store import ArtifactStore
    from auglens.study.jobs import metric_groups

    config, _, root = finished
    store = ArtifactStore(root / "out" / "artifacts")
    (group,) = metric_groups(study.plan_study(config).pairs)  # one shared baseline: one group of 4 models
    assert len(group.pairs) == 4 and group.done(store)
    victim = group.pairs[2]
    before = store.load_table("metrics", victim.key)
    store.delete("metrics", victim.key, "parquet")
    assert not group.done(store)
    done = []
    group.run(store, torch.device("cpu"), done.append)
    assert sum(done) == 4 and group.done(store)
    pd.testing.assert_frame_equal(store.load_table("metrics", victim.key), before)


_OLDER_METRICS = """[metrics]
names = ["mad", "pearson", "overlap", "class_kld"]
overlap_percents = [10.0, 2.5]
kld_epsilon = 1e-6
batch_size = 40
"""
_NEWER_METRICS = """[[metrics]]
name = "mad"
[[metrics]]
name = "pearson"
[[metrics]]
name = "overlap"
percents = [10, 2.5]
[[metrics]]
name = "class_kld"
epsilon = 1e-6
"""


@pytest.mark.slow  # shares a module-scoped tiny study (tens of seconds of CPU)
def test_older_and_newer_metrics_forms_give_identical_metric_tables(finished, tmp_path):
    """``[metrics] names/overlap_percents/kld_epsilon`` and ``[[metrics]]`` tables with the same values: the same
    config, the same job keys, and metric tables computed afresh (from the shared trainings and CAM sets) equal."""
    import shutil

    from tests.conftest import TINY_STUDY

    config, _, root = finished
    assert "[metrics]\nbatch_size = 40\n" in TINY_STUDY
    runtime = "[runtime]\nmetric_batch_size = 40\n"
    newer_defaults = TINY_STUDY.replace("[metrics]\nbatch_size = 40\n", "".join(
        f'[[metrics]]\nname = "{name}"\n' for name in ("mad", "msd", "pearson", "spearman"))
        + '[[metrics]]\nname = "overlap"\npercents = [20, 10, 5]\n[[metrics]]\nname = "class_kld"\nepsilon = 1e-10\n'
    ).replace("[runtime]\n", runtime)
    (tmp_path / "defaults.toml").write_text(newer_defaults)
    assert cfg.load(tmp_path / "defaults.toml") == config
    assert [p.key for p in study.plan_study(cfg.load(tmp_path / "defaults.toml")).pairs] == \
        [p.key for p in study.plan_study(config).pairs]

    outs = []
    for name, metrics, extra in (("older", _OLDER_METRICS, "[runtime]\n"), ("newer", _NEWER_METRICS, runtime)):
        path = tmp_path / f"{name}.toml"
        path.write_text(TINY_STUDY.replace("[metrics]\nbatch_size = 40\n", metrics).replace("[runtime]\n", extra))
        out = tmp_path / name
        shutil.copytree(root / "out" / "artifacts", out / "artifacts", ignore=shutil.ignore_patterns("metrics"))
        study.run_study(cfg.load(path), out)
        outs.append(out)
    older, newer = (cfg.load(tmp_path / f"{name}.toml") for name in ("older", "newer"))
    assert older == newer and older.runtime.metric_batch_size == 40
    assert_same_tables(*outs)
    cam_metrics = pd.read_parquet(outs[1] / "cam_metrics.parquet")
    keys = ("augmentation", "kind", "seed", "image", "label", "baseline_pred", "model_pred")
    assert [c for c in cam_metrics.columns if c not in keys] == ["mad", "pearson", "overlap_10", "overlap_2.5",
                                                                 "class_kld"]
    default_kld = pd.read_parquet(root / "out" / "cam_metrics.parquet")["class_kld"]
    assert not np.allclose(cam_metrics["class_kld"], default_kld)  # the epsilon reached the column

"""A study whose store goes wrong: damaged artifacts, `auglens verify`, a full disk, two runs on one folder,
and runtime settings that change results."""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from auglens import config as cfg
from auglens import store as store_module
from auglens import study
from auglens.cli import main
from tests.tables import assert_same_tables


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One undamaged run of the tiny study: the tables every healed run must reproduce."""
    from tests.conftest import TINY_STUDY

    root = tmp_path_factory.mktemp("reference")
    (root / "tiny.toml").write_text(TINY_STUDY)
    study.run_study(cfg.load(root / "tiny.toml"), root / "out")
    return root


@pytest.fixture
def copy(reference, tmp_path):
    """A copy of the reference results folder, free to damage."""
    out = tmp_path / "out"
    shutil.copytree(reference / "out", out)
    return out


def _partial_files(folder):
    return [p for p in folder.rglob("*") if ".tmp-" in p.name]


def _jobs(reference):
    plan = study.plan_study(cfg.load(reference / "tiny.toml"))
    model = next(m for m in plan.models if m.model.model_id == "affine-s1")
    return plan, model


def _run_args(reference, out):
    return ["run", str(reference / "tiny.toml"), "--out", str(out), "--no-progress", "--no-report"]


# ------------------------------------------------------------------------------------------ damage heals

@pytest.mark.slow
def test_damaged_checkpoint_and_cam_set_are_reported_and_recomputed_with_their_dependants(
        reference, copy, monkeypatch, caplog):
    plan, model = _jobs(reference)
    other = next(m for m in plan.models if m.model.model_id == "cutmix-s2")
    artifacts = copy / "artifacts"
    checkpoint = artifacts / "checkpoints" / f"{model.model.key}.safetensors"
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])  # truncated
    cams = artifacts / "cams" / f"{other.key}.safetensors"
    cams.write_bytes(os.urandom(len(cams.read_bytes())))  # garbage of the same size

    trained, cam_sets, metric_rows = [], [], []
    train_job, cam_job, metric_group = study.jobs.run_train_job, study.jobs.run_cam_job, study.jobs.run_metric_group

    def record_metric_group(group, store, *a):  # the pairs of a group that this run computes
        metric_rows.extend(pair.label for pair in group.pairs if not pair.done(store))
        return metric_group(group, store, *a)

    monkeypatch.setattr(study.jobs, "run_train_job", lambda job, *a: trained.append(job.model_id) or train_job(job, *a))
    monkeypatch.setattr(study.jobs, "run_cam_job", lambda job, *a: cam_sets.append(job.label) or cam_job(job, *a))
    monkeypatch.setattr(study.jobs, "run_metric_group", record_metric_group)
    with caplog.at_level(logging.WARNING, logger="auglens"):
        study.run_study(cfg.load(reference / "tiny.toml"), copy)

    # Exactly the damaged ones and everything downstream of them, nothing else.
    assert trained == ["affine-s1"]
    assert sorted(cam_sets) == ["affine-s1", "cutmix-s2"]
    assert sorted(metric_rows) == ["affine-s1", "cutmix-s2"]
    messages = "\n".join(r.getMessage() for r in caplog.records)
    assert f"checkpoints/{model.model.key}.safetensors (train job affine-s1): truncated" in messages
    assert f"cams/{other.key}.safetensors (cam job cutmix-s2): corrupt" in messages
    assert_same_tables(reference / "out", copy)


@pytest.mark.slow
def test_a_missing_checkpoint_with_existing_cams_is_retrained_and_a_bad_snapshot_dropped(reference, copy, caplog):
    _, model = _jobs(reference)
    store = store_module.ArtifactStore(copy / "artifacts")
    store.delete("checkpoints", model.model.key, "safetensors")
    store.save_torch("snapshots", model.model.key, {"epoch": 0})
    (copy / "artifacts" / "snapshots" / f"{model.model.key}.pt").write_bytes(b"not a snapshot")
    with caplog.at_level(logging.WARNING, logger="auglens"):
        study.run_study(cfg.load(reference / "tiny.toml"), copy)
    messages = "\n".join(r.getMessage() for r in caplog.records)
    # CKA (on by default) compares the retrained model with the baseline too.
    assert ("(train job affine-s1): missing; 3 dependant job(s): cam affine-s1, cka affine-s1 vs none-s1, "
            "metric affine-s1") in messages
    assert "snapshots artifact" in messages and "from its first epoch" in messages
    assert_same_tables(reference / "out", copy)


# ------------------------------------------------------------------------------------------ auglens verify

def test_verify_a_sound_folder_exits_0(reference, capsys):
    assert main(["verify", str(reference / "out")]) == 0
    assert "sound" in capsys.readouterr().out


def test_verify_lists_every_damaged_or_missing_artifact_and_table(reference, copy, capsys):
    plan, model = _jobs(reference)
    (copy / "artifacts" / "checkpoints" / f"{model.model.key}.safetensors").write_bytes(b"\0" * 10)
    os.remove(copy / "artifacts" / "metrics" / f"{plan.pairs[0].key}.parquet")
    with open(copy / "cam_metrics.parquet", "ab") as handle:
        handle.write(b"x")
    os.remove(copy / "training_history.csv")
    assert main(["verify", str(copy)]) == 1
    out = capsys.readouterr().out
    assert f"checkpoints/{model.model.key}.safetensors (train affine-s1): truncated" in out
    assert f"metrics/{plan.pairs[0].key}.parquet (metric {plan.pairs[0].label}): missing" in out
    assert "cam_metrics.parquet: corrupt (SHA-256 differs from the manifest's)" in out
    assert "training_history.csv: missing" in out
    assert "4 problem(s)" in out


@pytest.mark.slow
def test_verify_repair_recomputes_and_ends_sound(reference, copy, capsys):
    plan, model = _jobs(reference)
    (copy / "artifacts" / "cams" / f"{model.key}.safetensors").write_bytes(b"garbage")
    (copy / "aug_metrics.parquet").write_bytes(b"garbage")
    assert main(["verify", str(copy), "--repair", "--no-progress"]) == 0
    assert "after repair" in capsys.readouterr().out
    assert [p.name.split("-")[0] for p in (copy / "logs").glob("*.log")].count("verify") == 1  # what was redone
    assert main(["verify", str(copy)]) == 0
    assert_same_tables(reference / "out", copy)


def _upload(local: Path, url: str) -> None:
    import fsspec

    fs, base = fsspec.core.url_to_fs(url)
    for path in local.rglob("*"):
        if path.is_file():
            fs.pipe_file(f"{base}/{path.relative_to(local).as_posix()}", path.read_bytes())


def test_verify_a_results_folder_at_an_fsspec_url(reference, capsys):
    """memory:// stands in for s3:// and the like."""
    import fsspec

    url = f"memory://auglens-verify-{uuid.uuid4().hex}"
    _upload(reference / "out", url)
    assert main(["verify", url]) == 0
    _, model = _jobs(reference)
    fs, base = fsspec.core.url_to_fs(url)
    fs.pipe_file(f"{base}/artifacts/cams/{model.key}.safetensors", b"garbage")
    assert main(["verify", url]) == 1
    assert f"cams/{model.key}.safetensors (cam affine-s1): truncated" in capsys.readouterr().out


def test_verify_a_folder_without_a_study_is_a_clean_error(tmp_path, capsys):
    assert main(["verify", str(tmp_path)]) == 2
    assert "no config.toml" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ failing disks

@pytest.mark.slow
def test_a_disk_that_fills_up_mid_study_is_a_clean_error_and_the_next_run_continues(reference, tmp_path,
                                                                                   monkeypatch, capsys):
    out = tmp_path / "out"
    real_fsync, calls = os.fsync, []

    def fsync(descriptor):
        calls.append(descriptor)
        if len(calls) >= 12:  # the disk is full from the 12th write on: a few models in
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(descriptor)

    monkeypatch.setattr(store_module.os, "fsync", fsync)
    assert main(_run_args(reference, out)) == 1
    message = capsys.readouterr().err
    assert f"cannot write to {out}" in message and "ENOSPC" in message and "rerun the same command" in message
    assert _partial_files(out) == []
    store = store_module.ArtifactStore(out / "artifacts")
    written = [a for a in store.artifacts() if a[0] != "snapshots"]
    assert written and all(store.check(*artifact).ok for artifact in written)

    monkeypatch.setattr(store_module.os, "fsync", real_fsync)
    assert main(_run_args(reference, out)) == 0
    assert_same_tables(reference / "out", out)
    assert _partial_files(out) == []


# ------------------------------------------------------------------------------------------ two runs, one folder

RUNNER = textwrap.dedent("""
    import logging, sys
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    from auglens.cli import main
    print("ready", flush=True)
    sys.stdin.readline()  # both runs start together
    sys.exit(main(sys.argv[1:]))
""")


@pytest.mark.slow
def test_two_runs_on_one_folder_train_each_model_once(reference, tmp_path):
    out = tmp_path / "shared"
    env = {**os.environ, "PYTHONPATH": str(Path(study.__file__).parents[2])}
    runs = [subprocess.Popen([sys.executable, "-c", RUNNER, *_run_args(reference, out)], env=env, text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    for run in runs:
        assert run.stdout.readline().strip() == "ready"
    for run in runs:
        run.stdin.write("go\n")
        run.stdin.flush()
    logs = []
    for run in runs:
        _, err = run.communicate(timeout=900)
        assert run.returncode == 0, err
        logs.append(err)
    # The console writes "auglens: computing train <model>" for each training a run computes.
    trained = [[line.split()[-1] for line in log.splitlines()
                if line.removeprefix("auglens: ").startswith("computing train ")] for log in logs]
    everything = sorted(trained[0] + trained[1])
    assert everything == sorted(["none-s1", "affine-s1", "affine-s2", "cutmix-s1", "cutmix-s2"])  # each once
    assert trained[0] and trained[1]  # and the work was shared
    assert_same_tables(reference / "out", out)
    assert list((out / "artifacts" / "claims").glob("*.claim")) == []


# ------------------------------------------------------------------------------------------ settings in the keys

def test_runtime_settings_that_change_results_are_in_every_key(tiny_config_path):
    config = cfg.load(tiny_config_path)
    base = study.plan_study(config, study.ComputeSpec("cpu", 1, True))
    keys = {m.key for m in base.models} | {p.key for p in base.pairs}
    for changed in (study.ComputeSpec("cpu", 2, True), study.ComputeSpec("cuda", 1, True),
                    study.ComputeSpec("cpu", 1, False)):
        plan = study.plan_study(config, changed)
        assert not keys & ({m.key for m in plan.models} | {p.key for p in plan.pairs}), changed
    # The metric chunk size does not change results (test_metric_chunk_size_does_not_change_results): left out.
    # The CAM chunk size does (CPU kernels pick their algorithm by batch shape): in the CAM keys.
    data = config.to_dict()
    data["runtime"]["metric_batch_size"] = 13
    same = study.plan_study(cfg.from_dict(data), study.ComputeSpec("cpu", 1, True))
    assert {m.key for m in same.models} | {p.key for p in same.pairs} == keys
    data["cam"]["batch_size"] = 7
    other = study.plan_study(cfg.from_dict(data), study.ComputeSpec("cpu", 1, True))
    assert [m.model.key for m in other.models] == [m.model.key for m in base.models]
    assert not {m.key for m in other.models} & keys


def test_a_folder_of_other_settings_is_refused_naming_the_setting(reference, copy, capsys):
    manifest = json.loads((copy / "manifest.json").read_text())
    threads = manifest["compute"]["num_threads"]
    args = [*_run_args(reference, copy), f"runtime.num_threads={threads + 1}"]
    assert main(args) == 2
    error = capsys.readouterr().err
    assert f"runtime.num_threads = {threads}" in error and f"runtime.num_threads = {threads + 1}" in error
    assert f"runtime.num_threads={threads}" in error and "--force" in error


def test_metric_chunk_size_does_not_change_results(reference):
    """runtime.metric_batch_size is left out of the keys: it must not change a single bit."""
    import torch

    from auglens.data.prepared import prepare_data
    from auglens.metrics import resolve_metrics

    plan, model = _jobs(reference)
    store = store_module.ArtifactStore(reference / "out" / "artifacts")
    labels = prepare_data(plan.data).test.labels
    base, other = (store.load_tensors("cams", job.key) for job in (plan.models[0], model))
    metrics = resolve_metrics(["mad", "msd", "pearson", "spearman", "overlap", "class_kld"])
    frames = [study.pair_metric_frame(base, other, labels, 16, metrics, size, torch.device("cpu"))
              for size in (7, 13, 1000)]
    assert frames[0].equals(frames[1]) and frames[0].equals(frames[2])

"""Thesis step 2: candidate architectures trained as baselines, validation and test metrics after every epoch.

The oracle retrains each candidate with the plain training loop (same spec, same thread count: the same
weights), takes the weights after every epoch from the loop's own snapshots and final state, and scores
the predictions with scikit-learn.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from auglens import config as study_config
from auglens.analysis import ARCHITECTURE_COLUMNS
from auglens.cli import main
from auglens.data.prepared import model_input, prepare_data
from auglens.errors import UserError
from auglens.store import ArtifactStore
from auglens.study import architectures as arch
from auglens.study.architectures import architecture_jobs, check_candidates, select_architectures
from auglens.study.runtime import compute_spec
from auglens.train.loop import initial_model, train_model

EPOCHS = 2
CANDIDATES = ["tiny_cnn", "small_cnn"]
CONFIG = f"""
name = "architectures"
[data]
name = "synthetic"
test_subset = 60
[model]
architecture = "small_cnn"
params = {{ width = 4 }}
input_size = 16
[training]
batch_size = 32
lr = 3e-4
epochs = {EPOCHS}
[study]
seeds = [2, 5]
[runtime]
device = "cpu"
num_threads = 1
progress = false
"""


@pytest.fixture(scope="module")
def config_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("config") / "architectures.toml"
    path.write_text(CONFIG)
    return path


@pytest.fixture(scope="module")
def reference(config_path, tmp_path_factory):
    """One uninterrupted run: (config, results folder, selection)."""
    config = study_config.load(config_path)
    out = tmp_path_factory.mktemp("reference")
    return config, out, select_architectures(config, CANDIDATES, out, progress=False)


def _csv(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "architectures.csv")


def test_table_schema_rows_and_files(reference):
    config, out, selection = reference
    table = _csv(out)
    assert list(table.columns) == list(ARCHITECTURE_COLUMNS) == [
        "architecture", "epoch", "split", "accuracy", "precision_macro", "recall_macro", "f1_macro", "seconds"]
    assert len(table) == len(CANDIDATES) * EPOCHS * 2
    assert list(dict.fromkeys(table["architecture"])) == CANDIDATES  # in the order given
    for (_, _), rows in table.groupby(["architecture", "epoch"]):
        assert sorted(rows["split"]) == ["test", "validation"]
        assert rows["seconds"].nunique() == 1  # one training time per epoch, whichever split
    assert set(table["epoch"]) == set(range(1, EPOCHS + 1))  # counted as the log counts: "epoch 1/N" first
    metrics = table[["accuracy", "precision_macro", "recall_macro", "f1_macro"]].to_numpy()
    assert ((metrics >= 0) & (metrics <= 1)).all()
    pd.testing.assert_frame_equal(table, selection.table, check_dtype=False)
    for name in ("accuracy", "precision", "recall", "f1", "training_time"):
        png = out / f"architectures_{name}.png"
        assert png.read_bytes().startswith(b"\x89PNG"), name
    assert [p.name for p in selection.figures] == [f"architectures_{n}.png" for n in
                                                   ("accuracy", "precision", "recall", "f1", "training_time")]
    record = json.loads((out / "architectures.json").read_text())
    assert list(record["candidates"]) == CANDIDATES and len(record["runs"]) == 1
    assert "evaluation excluded" in record["seconds"]


def test_seconds_strictly_increase_per_architecture(reference):
    table = _csv(reference[1])
    for name, rows in table[table["split"] == "test"].groupby("architecture"):
        seconds = rows.sort_values("epoch")["seconds"].to_numpy()
        assert (seconds > 0).all() and (np.diff(seconds) > 0).all(), name


def _oracle_rows(config, candidates) -> pd.DataFrame:
    """Each candidate retrained by the loop alone; its weights after every epoch scored by scikit-learn."""
    rows = []
    for job in architecture_jobs(config, candidates, compute_spec(config.runtime, "cpu")):
        data = prepare_data(job.data)
        snapshots = []
        # checkpoint="last" returns the final weights; training is the same (the rule only picks what is kept).
        result = train_model(dataclasses.replace(job.spec, checkpoint="last"), data, "cpu",
                             on_epoch_end=lambda state: snapshots.append(state["model"]))
        states = [*snapshots, result.state_dict]
        assert len(states) == EPOCHS
        for epoch, state in enumerate(states, start=1):  # the weights after `epoch` epochs
            model = initial_model(job.spec, data.num_classes, data.in_channels)
            model.load_state_dict(state)
            model.eval()
            for split, part in (("validation", data.validation), ("test", data.test)):
                with torch.no_grad():
                    pred = model(model_input(part.images, data.mean, data.std, job.spec.input_size)).argmax(1).numpy()
                true = part.labels.numpy()
                rows.append({"architecture": job.spec.architecture, "epoch": epoch, "split": split,
                             "accuracy": accuracy_score(true, pred),
                             "precision_macro": precision_score(true, pred, average="macro", zero_division=0),
                             "recall_macro": recall_score(true, pred, average="macro", zero_division=0),
                             "f1_macro": f1_score(true, pred, average="macro", zero_division=0)})
    return pd.DataFrame(rows)


def test_metrics_equal_sklearn_on_each_epochs_predictions(reference):
    config, out, _ = reference
    table = _csv(out)
    expected = _oracle_rows(config, CANDIDATES)
    merged = table.merge(expected, on=["architecture", "epoch", "split"], suffixes=("", "_sklearn"), validate="1:1")
    assert len(merged) == len(table) == len(expected)
    for metric in ("accuracy", "precision_macro", "recall_macro", "f1_macro"):
        np.testing.assert_allclose(merged[metric], merged[f"{metric}_sklearn"], rtol=0, atol=1e-12, err_msg=metric)
    # the epochs score differently, so rows of the wrong epoch (the last one's missing, say) could not pass
    for name, rows in table[table["split"] == "test"].groupby("architecture"):
        values = rows.sort_values("epoch")[["accuracy", "f1_macro"]].to_numpy()
        assert not np.array_equal(values[0], values[-1]), name


def test_each_candidate_is_the_studys_baseline_with_its_own_params(reference):
    config, _, _ = reference
    tiny, small = architecture_jobs(config, CANDIDATES, compute_spec(config.runtime, "cpu"))
    assert (tiny.spec.augmentation, tiny.spec.seed, tiny.spec.init_seed) == ("none", 2, config.model.init_seed)
    assert tiny.spec.architecture_params == ()  # model.params belong to model.architecture (small_cnn) only
    assert small.spec.architecture_params == (("width", 4),)
    assert dataclasses.replace(tiny.spec, architecture="small_cnn", architecture_params=(("width", 4),)) == small.spec
    assert tiny.spec.sampling_seed == config.split.sampling_seed and tiny.spec.lr == 3e-4
    assert tiny.key != small.key and tiny.data == small.data


def test_rerun_after_the_first_candidate_resumes_without_retraining_it(reference, config_path, tmp_path,
                                                                       monkeypatch):
    config, ref_out, _ = reference
    out = tmp_path / "resumed"
    trained: list[str] = []

    def counting(spec, *args, **kwargs):
        trained.append(spec.architecture)
        if spec.architecture == CANDIDATES[1] and interrupt:
            raise KeyboardInterrupt  # Ctrl-C as the second candidate starts
        return train_model(spec, *args, **kwargs)

    monkeypatch.setattr(arch, "train_model", counting)
    interrupt = True
    with pytest.raises(KeyboardInterrupt):
        select_architectures(config, CANDIDATES, out, progress=False)
    assert trained == CANDIDATES and not (out / "architectures.csv").exists()
    store = ArtifactStore(out / "artifacts")
    first = architecture_jobs(config, CANDIDATES, compute_spec(config.runtime, "cpu"))[0]
    artifact = Path(store.path("architectures", first.key, "parquet"))
    before = (artifact.stat().st_mtime_ns, store.load_table("architectures", first.key))

    interrupt, trained[:] = False, []
    select_architectures(config, CANDIDATES, out, progress=False)
    assert trained == [CANDIDATES[1]]  # the first candidate was not retrained
    assert artifact.stat().st_mtime_ns == before[0]
    table, uninterrupted = _csv(out), _csv(ref_out)
    pd.testing.assert_frame_equal(table.drop(columns="seconds"), uninterrupted.drop(columns="seconds"))
    first_rows = table[table["architecture"] == CANDIDATES[0]].reset_index(drop=True)
    # Kept as written, seconds included; the artifact keeps the loop's epoch index, the table counts from 1.
    pd.testing.assert_frame_equal(first_rows, before[1].assign(epoch=before[1]["epoch"] + 1), check_dtype=False)

    trained[:] = []
    select_architectures(config, CANDIDATES, out, progress=False)
    assert trained == [] and len(json.loads((out / "architectures.json").read_text())["runs"]) == 2


def test_interrupted_candidate_resumes_from_its_epoch_snapshot(reference, tmp_path, monkeypatch):
    config, ref_out, _ = reference
    out = tmp_path / "mid"
    original = ArtifactStore.save_torch
    snapshots_given: list[bool] = []

    def save_then_stop(self, kind, key, obj):
        path = original(self, kind, key, obj)
        if kind == "architecture_snapshots":
            raise KeyboardInterrupt  # killed right after the first epoch's snapshot
        return path

    def recording(spec, data, device, progress, snapshot, **kwargs):
        snapshots_given.append(snapshot is not None)
        return train_model(spec, data, device, progress, snapshot, **kwargs)

    monkeypatch.setattr(arch, "train_model", recording)
    monkeypatch.setattr(ArtifactStore, "save_torch", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        select_architectures(config, CANDIDATES[:1], out, progress=False)
    monkeypatch.setattr(ArtifactStore, "save_torch", original)
    select_architectures(config, CANDIDATES[:1], out, progress=False)
    assert snapshots_given == [False, True]  # the second call resumed after epoch 1
    table = _csv(out)
    reference_rows = _csv(ref_out).query("architecture == @CANDIDATES[0]").reset_index(drop=True)
    pd.testing.assert_frame_equal(table.drop(columns="seconds"), reference_rows.drop(columns="seconds"))
    seconds = table[table["split"] == "test"]["seconds"].to_numpy()
    assert (np.diff(seconds) > 0).all()  # the count continues from the snapshot's
    assert not list((out / "artifacts").glob("architecture_snapshots/*.pt"))  # removed once finished


@pytest.mark.parametrize("candidates, message", [
    ([], "no candidate architectures"),
    (["tiny_cnn", "tiny_cnn"], "'tiny_cnn' is listed twice"),
    (["tiny_cnn", "resnet81"], "unknown model 'resnet81'. Did you mean 'resnet18'?"),
    (["tiny_cnn", ""], "an empty name"),
])
def test_bad_candidates_are_clear_errors(reference, candidates, message):
    config = reference[0]
    with pytest.raises(UserError, match=message.replace("?", r"\?").replace(".", r"\.")) as error:
        check_candidates(candidates, config)
    if "unknown" in message:
        assert "Valid names:" in str(error.value) and "efficientnet_b0" in str(error.value)


def test_every_problem_is_listed_at_once(reference):
    with pytest.raises(UserError) as error:
        check_candidates(["resnet81", "tiny_cnn", "tiny_cnn"], reference[0])
    assert "resnet81" in str(error.value) and "listed twice" in str(error.value)


@pytest.mark.slow  # three commands, each with its checks
def test_cli_runs_resumes_and_rejects_bad_candidates(config_path, tmp_path, capsys):
    out = tmp_path / "cli"
    argv = ["architectures", str(config_path), "--out", str(out), "--candidates", "tiny_cnn", "training.epochs=1"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "tiny_cnn epoch 1/1: validation accuracy" in captured.err and "tiny_cnn" in captured.out
    assert len(_csv(out)) == 2 and list(_csv(out)["epoch"]) == [1, 1]  # the log's "epoch 1/1"
    assert main(argv) == 0
    assert "1 already done" in capsys.readouterr().err
    bad = tmp_path / "bad"
    code = main(["architectures", str(config_path), "--out", str(bad), "--candidates", "tiny_cnn,densenet12"])
    err = capsys.readouterr().err
    assert code == 1 and "Did you mean 'densenet121'?" in err and "Traceback" not in err
    assert not bad.exists()  # rejected before any work


def test_default_candidates_are_the_thesis_three():
    from auglens.cli import parse_arguments

    args = parse_arguments(["architectures", "examples/thesis-cifar10.toml", "--out", "x"])
    assert args.candidates.split(",") == list(arch.THESIS_CANDIDATES) == ["efficientnet_b0", "resnet18", "densenet121"]
    assert os.path.isfile(Path(__file__).resolve().parents[2] / "examples" / "thesis-cifar10.toml")


@pytest.mark.slow  # two studies
def test_a_study_on_the_same_folder_uses_the_candidate_as_its_baseline(reference, tmp_path, monkeypatch):
    """The candidate of the study's own architecture is the study's baseline training: a study run into the
    folder afterwards trains only its augmented models, and its baseline equals a fresh study's bit for bit."""
    from safetensors.torch import load_file

    from auglens.study import jobs as study_jobs
    from auglens.study import run_study
    from auglens.study.plan import plan_study

    config, _, _ = reference
    config = copy.deepcopy(config)
    config.augmentations = [study_config.AugmentationConfig("gaussian_blur")]
    config.study.seeds = [2]
    out, fresh = tmp_path / "selected", tmp_path / "fresh"
    select_architectures(config, ["small_cnn"], out, progress=False)  # the study's model.architecture

    baseline = next(job for job in plan_study(config, compute_spec(config.runtime, "cpu")).jobs
                    if job.stage == "train" and job.spec.augmentation == "none")
    trained: list[str] = []
    real_train = study_jobs.train_model

    def counting(spec, *args, **kwargs):
        trained.append(spec.augmentation)
        return real_train(spec, *args, **kwargs)

    monkeypatch.setattr(study_jobs, "train_model", counting)
    run_study(config, out, progress=False)
    assert trained == [config.augmentations[0].name]  # the baseline came from the architecture step
    trained.clear()
    run_study(config, fresh, progress=False)
    assert sorted(trained) == sorted(["none", config.augmentations[0].name])
    path = ("artifacts", "checkpoints", f"{baseline.key}.safetensors")
    reused, retrained = load_file(out.joinpath(*path)), load_file(fresh.joinpath(*path))
    assert reused.keys() == retrained.keys()
    for name in reused:
        assert torch.equal(reused[name], retrained[name]), name
    kept = json.loads(out.joinpath("artifacts", "histories", f"{baseline.key}.json").read_text())["best_epoch"]
    assert kept == json.loads(fresh.joinpath("artifacts", "histories", f"{baseline.key}.json").read_text())["best_epoch"]

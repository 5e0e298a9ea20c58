"""The loop's ``on_epoch_trained`` hook: after every epoch, the last included, with the training-only time."""

from __future__ import annotations

import pytest
import torch

from auglens.data.prepared import DataSpec, prepare_data
from auglens.train import TrainSpec, train_model

SPEC = TrainSpec("tiny_cnn", "none", epochs=3, batch_size=24, input_size=None, checkpoint="last")


@pytest.fixture(scope="module")
def data():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: threads only add contention
    yield prepare_data(DataSpec("synthetic", train_subset=96, validation_fraction=0.25))
    torch.set_num_threads(threads)


def test_called_after_every_epoch_with_the_weights_of_that_epoch(data):
    records, weights, snapshots = [], [], []

    def hook(model, record):
        records.append(record)
        weights.append({k: v.detach().clone() for k, v in model.state_dict().items()})

    result = train_model(SPEC, data, on_epoch_end=snapshots.append, on_epoch_trained=hook)
    assert [r["epoch"] for r in records] == [0, 1, 2]
    assert len(snapshots) == 2  # on_epoch_end is not called after the last epoch: the hook is the only way
    for snapshot, seen in zip(snapshots, weights):
        assert all(torch.equal(snapshot["model"][k], seen[k]) for k in seen)
    assert all(torch.equal(result.state_dict[k], weights[-1][k]) for k in weights[-1])
    for record, row in zip(records, result.history):
        assert {k: record[k] for k in row} == row  # the history row, plus the training-only time
    seconds = [r["train_seconds"] for r in records]
    assert 0 < seconds[0] < seconds[1] < seconds[2]
    assert all(r["train_seconds"] < r["elapsed_seconds"] for r in records)  # validation excluded


def test_a_hook_that_evaluates_leaves_training_unchanged_and_resumes_count_on(data):
    from auglens.train.loop import evaluate

    plain = train_model(SPEC, data)
    snapshots = []

    def evaluate_test(model, record):
        evaluate(model, data.test.images, data.test.labels, data.mean, data.std, None, 64, "cpu", data.num_classes)

    hooked = train_model(SPEC, data, on_epoch_end=snapshots.append, on_epoch_trained=evaluate_test)
    assert all(torch.equal(plain.state_dict[k], hooked.state_dict[k]) for k in plain.state_dict)
    records = []
    train_model(SPEC, data, snapshot=snapshots[0], on_epoch_trained=lambda model, record: records.append(record))
    assert [r["epoch"] for r in records] == [1, 2]
    assert records[0]["train_seconds"] > snapshots[0]["train_elapsed"] > 0

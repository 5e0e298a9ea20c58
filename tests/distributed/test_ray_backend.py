"""The Ray backend on a local 2-CPU Ray: same tables as the local backend, survives a killed worker, resumes."""

from __future__ import annotations

from auglens._tomllib import tomllib
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from auglens import config as cfg  # noqa: E402
from auglens import study  # noqa: E402
from tests.distributed import kill_once  # noqa: E402
from tests.conftest import TINY_STUDY  # noqa: E402
from tests.tables import assert_same_tables  # noqa: E402

pytestmark = pytest.mark.slow  # whole studies on a local Ray


def _tiny_config() -> cfg.Config:
    data = tomllib.loads(TINY_STUDY)
    # CPU convolutions sum in a thread-count-dependent order; one thread per task also keeps 2 cores busy
    # with 2 tasks instead of oversubscribing them.
    data["runtime"]["num_threads"] = 1
    return cfg.from_dict(data)


@pytest.fixture(scope="module")
def local_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("local") / "out"
    study.run_study(_tiny_config(), out, backend="local")
    return out


@pytest.fixture(scope="module")
def ray_cluster():
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 2**20, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def ray_run(ray_cluster, tmp_path_factory) -> tuple[Path, dict[str, float]]:
    out = tmp_path_factory.mktemp("ray") / "out"
    result = study.run_study(_tiny_config(), out, backend="ray")
    return out, result.timings


def test_ray_tables_equal_local_tables(local_run, ray_run):
    out, timings = ray_run
    assert_same_tables(local_run, out)
    assert all(timings[f"{stage}_seconds"] > 0 for stage in ("train", "cam", "metric"))
    assert ray.is_initialized()  # a Ray the caller started is left running for the caller


def test_finished_study_submits_nothing(ray_run):
    out, _ = ray_run
    before = {p: p.stat().st_mtime_ns for p in (out / "artifacts").rglob("*") if p.is_file()}
    result = study.run_study(_tiny_config(), out, backend="ray")
    assert result.timings["train_seconds"] == result.timings["cam_seconds"] == result.timings["metric_seconds"] == 0
    assert {p: p.stat().st_mtime_ns for p in (out / "artifacts").rglob("*") if p.is_file()} == before


def test_killed_worker_is_retried_and_resumes(local_run, ray_cluster, tmp_path, monkeypatch):
    import auglens.study.run

    marker = tmp_path / "killed"
    # Workers cannot import the tests: the wrapped job travels by value.
    ray.cloudpickle.register_pickle_by_value(kill_once)
    plan_study = auglens.study.run.plan_study
    monkeypatch.setattr(auglens.study.run, "plan_study", lambda *args: kill_once.kill_one_training(
        plan_study(*args), str(marker)))
    out = tmp_path / "out"
    study.run_study(_tiny_config(), out, backend="ray")
    assert marker.exists()  # a training worker was SIGKILLed after its first epoch snapshot
    assert not list((out / "artifacts").rglob("*.tmp-*"))
    assert not list((out / "artifacts" / "snapshots").glob("*.pt"))  # the retried job finished and cleaned up
    assert_same_tables(local_run, out)


def test_workers_get_an_absolute_store_root(tmp_path, monkeypatch):
    from auglens.study.backends.ray import shared_root
    from auglens.store import ArtifactStore

    monkeypatch.chdir(tmp_path)
    assert shared_root(ArtifactStore("out/artifacts")) == str(tmp_path / "out" / "artifacts")
    assert shared_root(ArtifactStore("memory://study/artifacts")) == "memory://study/artifacts"


def test_a_lockstep_group_is_one_ray_task_with_the_local_tables(ray_cluster, tmp_path, monkeypatch):
    import auglens.study.backends.ray as ray_backend

    config = _tiny_config()
    config.training.models_at_once = 4
    study.run_study(config, tmp_path / "local", backend="local")
    submitted: list[dict] = []
    submit = ray_backend._submit

    def counting(*args):
        stage_of = submit(*args)
        submitted.append(stage_of)
        return stage_of

    monkeypatch.setattr(ray_backend, "_submit", counting)
    study.run_study(config, tmp_path / "ray", backend="ray")
    stages = list(submitted[0].values())
    assert stages.count("train") == 2  # the baseline, and the 4 augmented models as one group
    assert stages.count("cam") == 5
    assert_same_tables(tmp_path / "local", tmp_path / "ray")


def test_architecture_candidates_train_as_ray_tasks_with_the_local_table(ray_cluster, tmp_path, monkeypatch):
    """Thesis step 2 on Ray: one task per candidate, the local run's table but for the training seconds."""
    import pandas as pd

    from auglens.study.architectures import select_architectures
    from auglens.study.backends import ray as ray_backend

    submitted = []
    real_submit = ray_backend._submit

    def counting_submit(ray_, jobs, *args):
        stage_of = real_submit(ray_, jobs, *args)
        submitted.extend(stage_of.values())
        return stage_of

    monkeypatch.setattr(ray_backend, "_submit", counting_submit)
    config = _tiny_config()
    config.training.epochs = 2
    candidates = ["tiny_cnn", "small_cnn"]
    local = select_architectures(config, candidates, tmp_path / "local", progress=False, backend="local")
    on_ray = select_architectures(config, candidates, tmp_path / "ray", progress=False, backend="ray")
    assert submitted == ["architecture", "architecture"]
    pd.testing.assert_frame_equal(local.table.drop(columns="seconds"), on_ray.table.drop(columns="seconds"))
    assert (on_ray.table["seconds"] > 0).all()
    submitted.clear()
    select_architectures(config, candidates, tmp_path / "ray", progress=False, backend="ray")
    assert submitted == []  # finished candidates are not trained again


def test_compare_runs_its_cam_and_metric_jobs_as_ray_tasks_with_the_local_tables(ray_cluster, tmp_path):
    import pandas as pd

    from auglens.compare import compare_checkpoints
    from tests.weights_testing import save_tiny_weights

    paths = save_tiny_weights(tmp_path, 3, "m")
    settings = ['metrics.names=["mad", "spearman"]', "runtime.num_threads=1"]
    outs = {}
    for backend in ("local", "ray"):
        outs[backend] = tmp_path / backend
        compare_checkpoints("tiny_cnn", paths[0], paths[1:], "synthetic", outs[backend], all_pairs=True,
                            overrides=settings, progress=False, backend=backend)
    for table in ("cam_metrics.parquet", "aug_metrics.parquet", "pair_metrics.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(outs["local"] / table), pd.read_parquet(outs["ray"] / table))
    pd.testing.assert_frame_equal(pd.read_csv(outs["local"] / "performance.csv"),
                                  pd.read_csv(outs["ray"] / "performance.csv"))

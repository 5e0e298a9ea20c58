"""`auglens distortion --backend ray`: the analyses' trainings run as the study's jobs on Ray, and every table
equals the local run's; models trained by the study's jobs are the distortion analyses' models (same keys)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import tomli_w
import torch

from auglens import distortion
from auglens.distortion.runner import Runner
from auglens.store import ArtifactStore
from auglens.study.backends.local import run_local
from auglens.study.jobs import TrainJob
from auglens.study.runtime import compute_spec

CONFIG = {
    "name": "tiny-ray-distortion",
    "analyses": ["interference", "affinity", "simplicity"],
    "data": {"name": "synthetic", "train_subset": 80, "test_subset": 40},
    "model": {"architecture": "tiny_cnn", "input_size": 16},
    "training": {"optimizer": "adam", "lr": 3e-3, "batch_size": 32, "epochs": 2},
    "runs": {"seeds": [1, 2]},
    "augmentations": [{"name": "fmix"}],
    "interference": {"grid": 2},  # with class removal: trainings on derived data (a class dropped)
    "simplicity": {"simple": "synthetic", "complex": "synthetic", "complex_classes": [3, 2, 1, 0],
                   "train_subset": 60, "test_subset": 20, "augmentations": ["fmix"]},  # stacked data
    # CPU results depend on the thread count: one per task, as in the local run
    "runtime": {"device": "cpu", "progress": False, "num_threads": 1},
}


def _tables(out: Path) -> dict[str, bytes]:
    """Every CSV the run wrote (tables and paper-layout tables), by relative path."""
    root = out / "distortion"
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.csv"))
            if "artifacts" not in p.parts}


@pytest.fixture(scope="module")
def config_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("config") / "tiny.toml"
    path.write_text(tomli_w.dumps(CONFIG))
    return path


def _run(config_path: Path, out: Path, backend: str):
    threads = torch.get_num_threads()
    try:
        return distortion.run_from_toml(config_path, out, backend=backend)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow
def test_ray_backend_gives_the_local_tables(config_path, tmp_path):
    ray = pytest.importorskip("ray")
    local, remote = tmp_path / "local", tmp_path / "ray"
    _run(config_path, local, "local")
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 2**20, log_to_driver=False)
    try:
        _run(config_path, remote, "ray")
    finally:
        ray.shutdown()
    expected, got = _tables(local), _tables(remote)
    assert {"interference/wrong_predictions.csv", "interference/class_removal_summary.csv",
            "simplicity/simplicity_summary.csv", "affinity/affinity_summary.csv"} <= set(got)
    assert got.keys() == expected.keys()
    for name in expected:
        assert got[name] == expected[name], name
    # the same models, under the same content keys
    keys = {p.name for p in (local / "distortion" / "artifacts" / "checkpoints").iterdir()}
    assert keys == {p.name for p in (remote / "distortion" / "artifacts" / "checkpoints").iterdir()}


@pytest.mark.slow
def test_a_model_trained_by_the_study_jobs_is_reused(config_path, tmp_path):
    config = distortion.load(config_path, ['analyses=["interference"]', "interference.class_removal=false",
                                           f"runtime.artifacts={str(tmp_path / 'store')!r}"])
    runner = Runner(config, tmp_path / "out")
    data, key = runner.data()
    spec = runner.train_spec("none", {}, 1)
    job = TrainJob(runner.data_spec, spec, compute_spec(config.runtime))  # the study's job, built by hand
    assert runner.job(spec, key).key == job.key
    store = ArtifactStore(tmp_path / "store")
    run_local([job], store, torch.device("cpu"), progress=False)
    trained = store.path("checkpoints", job.key, "safetensors")
    before = Path(trained).stat().st_mtime_ns
    threads = torch.get_num_threads()
    try:
        distortion.run_analysis("interference", dataclasses.replace(config), tmp_path / "out", runner)
    finally:
        torch.set_num_threads(threads)
    assert Path(trained).stat().st_mtime_ns == before  # reused, not retrained
    histories = {p.stem for p in (tmp_path / "store" / "histories").glob("*.json")}
    assert job.key in histories and len(histories) == 4  # 2 model types x 2 runs, one of them the study's

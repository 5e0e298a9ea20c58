"""runtime.workers: a stage's jobs computed by local worker processes, pinned to their cores."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import torch

from auglens import config as cfg
from auglens import study
from auglens._tomllib import tomllib
from auglens.store import ArtifactStore
from auglens.study import runtime as rt
from auglens.study.backends.local import run_local
from auglens.study.jobs import Job
from auglens.study.plan import plan_study
from tests.conftest import TINY_STUDY


def _runtime(**settings) -> cfg.RuntimeConfig:
    data = tomllib.loads(TINY_STUDY)
    data["runtime"].update(settings)
    return cfg.from_dict(data).runtime


@dataclass(frozen=True)
class ProbeJob(Job):
    """Writes where it ran: the process, its cores, torch's thread count and determinism switch."""

    stage = "probe"
    artifact = ("probe", "json")
    name: str
    seconds: float = 0.0
    fail: bool = False

    @property
    def key(self) -> str:
        return self.name

    def run(self, store, device, progress=None) -> str:
        time.sleep(self.seconds)  # long enough that every worker gets a job
        if self.fail:
            raise ValueError(f"probe {self.name} failed on purpose")
        if progress is not None:
            progress(1)
        store.save_json("probe", self.key, {
            "pid": os.getpid(), "cores": sorted(os.sched_getaffinity(0)), "threads": torch.get_num_threads(),
            "deterministic": torch.are_deterministic_algorithms_enabled(), "device": str(device)})
        return self.key


def test_thread_count_per_model_is_one_with_several_workers_unless_set():
    assert rt.threads_per_model(_runtime()) == rt.DEFAULT_NUM_THREADS
    assert rt.threads_per_model(_runtime(workers=2)) == 1
    assert rt.threads_per_model(_runtime(workers="auto")) == 1
    assert rt.threads_per_model(_runtime(workers=2, num_threads=3)) == 3
    assert rt.compute_spec(_runtime(workers="auto")).num_threads == 1


def test_auto_worker_count_fills_the_usable_cores_and_never_exceeds_the_jobs(monkeypatch):
    monkeypatch.setattr(rt, "usable_cores", lambda: [0, 1, 2, 3, 4, 5])
    auto = _runtime(workers="auto")
    assert rt.worker_count(auto, "cpu", 100) == 6
    assert rt.worker_count(auto, "cpu", 4) == 4
    assert rt.worker_count(_runtime(workers="auto", num_threads=2), "cpu", 100) == 3
    assert rt.worker_count(_runtime(workers="auto", num_threads=8), "cpu", 100) == 1
    assert rt.worker_count(auto, "cuda", 100) == 1  # one GPU computes one job at a time
    assert rt.worker_count(_runtime(workers=3), "cpu", 100) == 3
    assert rt.worker_count(_runtime(workers=3), "cpu", 2) == 2
    assert rt.worker_count(_runtime(), "cpu", 100) == 1


def test_each_worker_has_its_own_cores_unless_they_are_too_few(monkeypatch):
    monkeypatch.setattr(rt, "usable_cores", lambda: [2, 3, 5, 7])
    assert [rt.worker_cores(i, 2, 2) for i in range(2)] == [[2, 3], [5, 7]]
    assert [rt.worker_cores(i, 4, 1) for i in range(4)] == [[2], [3], [5], [7]]
    assert rt.worker_cores(0, 3, 2) is None  # 6 threads on 4 cores: left to the scheduler


def test_the_worker_count_is_in_no_key():
    keys = []
    for workers in (1, 2, "auto"):
        data = tomllib.loads(TINY_STUDY)
        data["runtime"].update(workers=workers, num_threads=1)
        plan = plan_study(cfg.from_dict(data), rt.compute_spec(cfg.from_dict(data).runtime))
        keys.append([job.key for job in plan.jobs])
    assert keys[0] == keys[1] == keys[2]


class _Bar:
    def __init__(self, total):
        self.total, self.n = total, 0

    def update(self, amount):
        self.n += amount

    def set_postfix_str(self, text):
        pass


@pytest.mark.skipif(len(rt.usable_cores()) < 2, reason="pinning two workers needs two cores")
def test_workers_are_separate_pinned_processes_with_the_runs_settings(tmp_path, monkeypatch):
    from auglens.study.backends import local

    bars = []
    monkeypatch.setattr(local, "_bar", lambda total, desc, unit, enabled: _Recorded(total, bars))
    store = ArtifactStore(tmp_path / "store")
    jobs = [ProbeJob(f"p{i}", seconds=1.0) for i in range(4)]
    run_local(jobs, store, torch.device("cpu"), progress=False, runtime=_runtime(workers=2))
    seen = [store.load_json("probe", job.key) for job in jobs]
    assert len({s["pid"] for s in seen}) == 2 and os.getpid() not in {s["pid"] for s in seen}
    cores = rt.usable_cores()
    assert sorted(map(tuple, {tuple(s["cores"]) for s in seen})) == [(cores[0],), (cores[1],)]
    assert all(s["threads"] == 1 and s["deterministic"] and s["device"] == "cpu" for s in seen)
    assert bars[0].n == bars[0].total == 4  # every job's progress reached this process's bar


class _Recorded(_Bar):
    def __init__(self, total, bars):
        super().__init__(total)
        bars.append(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_a_failing_job_stops_the_run_with_its_error_and_keeps_what_finished(tmp_path):
    store = ArtifactStore(tmp_path / "store")
    jobs = [ProbeJob("ok"), ProbeJob("bad", seconds=0.5, fail=True)]
    with pytest.raises(ValueError, match="probe bad failed on purpose"):
        run_local(jobs, store, torch.device("cpu"), progress=False, runtime=_runtime(workers=2))
    assert store.exists("probe", "ok", "json") and not store.exists("probe", "bad", "json")
    run_local(jobs[:1], store, torch.device("cpu"), progress=False, runtime=_runtime(workers=2))  # nothing to do


def _checkpoints(out: Path, config) -> dict[str, dict[str, torch.Tensor]]:
    plan = plan_study(config, rt.compute_spec(config.runtime))
    store = ArtifactStore(out / "artifacts")
    return {m.model.model_id: store.load_tensors("checkpoints", m.model.key) for m in plan.models}


@pytest.mark.slow
def test_a_study_on_two_workers_equals_one_worker_at_the_same_thread_count(tmp_path):
    results, configs = {}, {}
    for workers in (1, 2):
        data = tomllib.loads(TINY_STUDY)
        data["runtime"].update(workers=workers, num_threads=1)
        configs[workers] = cfg.from_dict(data)
        results[workers] = study.run_study(configs[workers], tmp_path / f"w{workers}")
    one, two = _checkpoints(tmp_path / "w1", configs[1]), _checkpoints(tmp_path / "w2", configs[2])
    for model, state in one.items():
        for name, value in state.items():
            assert torch.equal(two[model][name], value), f"{model} {name}"  # bit for bit: the same computation
    pd.testing.assert_frame_equal(results[1].cam_metrics, results[2].cam_metrics)
    pd.testing.assert_frame_equal(results[1].performance.drop(columns=["train_seconds"], errors="ignore"),
                                  results[2].performance.drop(columns=["train_seconds"], errors="ignore"))

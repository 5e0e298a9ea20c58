"""The one runner: what opening a run sets up, where its jobs go, and what it records about the CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from auglens import logs
from auglens.config import RuntimeConfig
from auglens.study.run import check_cpu
from auglens.study.runner import open_run
from auglens.study.runtime import ComputeSpec, cpu_description


def test_opening_a_run_applies_the_runtime_and_resolves_the_store(tmp_path):
    runtime = RuntimeConfig(device="cpu", num_threads=1, progress=False)
    run = open_run(runtime, tmp_path / "artifacts")
    assert torch.get_num_threads() == 1 and run.device == torch.device("cpu")
    assert run.compute == ComputeSpec("cpu", 1, True) and run.backend == "local" and run.progress is False
    assert run.store.root.endswith("artifacts")
    elsewhere = open_run(RuntimeConfig(device="cpu", num_threads=1, artifacts=str(tmp_path / "shared")),
                         tmp_path / "artifacts", progress=True)
    assert elsewhere.store.root.endswith("shared") and elsewhere.progress is True
    assert run.provenance["cpu"] == cpu_description()
    with pytest.raises(ValueError, match="backend must be one of local, ray"):
        open_run(runtime, tmp_path / "artifacts", backend="slurm")


def test_execute_is_the_one_place_that_chooses_the_backend(tmp_path, monkeypatch):
    calls = []
    import auglens.study.backends.local as local
    import auglens.study.backends.ray as ray_backend

    monkeypatch.setattr(local, "run_local", lambda jobs, *a, **k: calls.append("local") or {})
    monkeypatch.setattr(ray_backend, "run_ray", lambda jobs, *a, **k: calls.append("ray") or {})
    monkeypatch.setattr(ray_backend, "device_type", lambda runtime: "cpu")  # no cluster to ask here
    runtime = RuntimeConfig(device="cpu", num_threads=1)
    open_run(runtime, tmp_path).execute([])
    open_run(runtime, tmp_path, backend="ray").execute([])
    open_run(RuntimeConfig(device="cpu", num_threads=1, backend="ray"), tmp_path).execute([])
    assert calls == ["local", "ray", "ray"]


def test_the_log_file_is_opened_only_for_the_command_line(tmp_path):
    open_run(RuntimeConfig(device="cpu", num_threads=1), tmp_path / "a", log_folder=tmp_path / "lib")
    assert not (tmp_path / "lib").exists()  # a library caller set no logging up: no file
    logs.setup(0, "run")
    try:
        open_run(RuntimeConfig(device="cpu", num_threads=1), tmp_path / "a", log_folder=tmp_path / "cli")
        (path,) = (tmp_path / "cli" / "logs").glob("run-*.log")
        assert logs.log_path() == path
        open_run(RuntimeConfig(device="cpu", num_threads=1), tmp_path / "a", log_folder=tmp_path / "again")
        assert not (tmp_path / "again").exists()  # one log file per command
    finally:
        logs.reset()


def test_the_cpu_capability_is_read_as_torch_chose_it():
    script = "from auglens.study.runtime import cpu_description; print(cpu_description()['capability'])"
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "default"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "DEFAULT"


def _manifest(folder, capability):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").write_text(json.dumps({"runs": [{"cpu": {"model": "x", "capability": "AVX2"}},
                                                               {"cpu": {"model": "y", "capability": capability}}]}))


def test_a_cpu_study_resumed_on_another_capability_is_warned_about(tmp_path, caplog):
    cpu, cuda = ComputeSpec("cpu", 1, True), ComputeSpec("cuda", 1, True)
    _manifest(tmp_path / "same", "AVX512")
    assert check_cpu(tmp_path / "same", cpu, {"capability": "AVX512"}) is None
    _manifest(tmp_path / "other", "DEFAULT")  # the last run's capability counts
    with caplog.at_level("WARNING", logger="auglens.study"):
        message = check_cpu(tmp_path / "other", cpu, {"capability": "AVX512"})
    assert "'DEFAULT'" in message and "'AVX512'" in message and "ATEN_CPU_CAPABILITY=default" in message
    assert message in caplog.text
    assert check_cpu(tmp_path / "other", cuda, {"capability": "AVX512"}) is None  # GPU kernels do the work
    assert check_cpu(tmp_path / "new", cpu, {"capability": "AVX512"}) is None  # nothing to resume


def test_determinism_is_switched_on_only_when_a_job_is_computed(tmp_path, monkeypatch):
    import auglens.study.backends.local as local
    from auglens.study.jobs import Job

    class Pending(Job):
        stage, artifact = "test", ("tests", "json")
        key = "pending"

        def done(self, store):
            return False

    switched = []
    monkeypatch.setattr(torch, "use_deterministic_algorithms", lambda *a, **k: switched.append(a))
    monkeypatch.setattr(torch, "are_deterministic_algorithms_enabled", lambda: False)
    monkeypatch.setattr(local, "run_local", lambda jobs, *a, **k: {})
    run = open_run(RuntimeConfig(device="cpu", num_threads=1), tmp_path)
    run.execute([])  # a finished study: nothing to compute, no switch (it imports torch's compiler stack)
    assert switched == []
    run.execute([Pending()])
    assert switched == [(True,)]
    open_run(RuntimeConfig(device="cpu", num_threads=1, deterministic=False), tmp_path).execute([Pending()])
    assert switched == [(True,)]

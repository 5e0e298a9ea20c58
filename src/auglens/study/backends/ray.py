"""The Ray backend: jobs as Ray tasks, scheduled in dependency order across a cluster.

Every pending job becomes one Ray task that runs the job's own idempotent :meth:`~auglens.study.jobs.Job.run`,
exactly as the local backend does. A task receives the ObjectRefs of its pending dependencies (a CAM job
that of its model's training, a metric group those of its baseline's and its models' CAM jobs), so Ray
starts each task only when its inputs exist; the driver only submits, waits and counts. Workers exchange
nothing but artifact keys: every result goes to the :class:`~auglens.store.ArtifactStore`, whose root must
therefore be reachable from every node (a shared filesystem or an fsspec URL).

Fault tolerance comes from the store, not from Ray's object store: a task whose worker dies is retried
(``max_retries``), and since jobs skip finished artifacts, writes are atomic and training resumes from its
last epoch snapshot, a retry — or a rerun after the driver died — redoes at most the current epoch of each
interrupted training. Jobs whose artifact already exists are not submitted at all.

Results equal the local backend's bit for bit because each worker applies the driver's runtime settings
(deterministic algorithms and, crucially, the same torch CPU thread count: CPU convolutions reduce in a
thread-count-dependent order, and training amplifies the difference: docs/artifacts.md measures it).
The thread count and the device are also part of every artifact key, so a store never mixes results
computed under different ones. Each task runs its job under the job's claim in the store, so a retried
task, or one submitted by a restarted driver, never computes a job that another live worker is computing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import torch

from auglens.config import RuntimeConfig
from auglens.store import ArtifactStore
from auglens.study.backends import stages
from auglens.study.jobs import Job, run_claimed
from auglens.study.runtime import threads_per_model, worker_setup

__all__ = ["MAX_RETRIES", "device_type", "run_ray", "shared_root"]

MAX_RETRIES = 3  # attempts after a worker dies (node lost, OOM-killed, preempted); Python errors are not retried


# ------------------------------------------------------------------------------------------ worker side

def _worker_setup(runtime: RuntimeConfig, threads: int) -> torch.device:
    """Apply the driver's determinism and thread settings in this worker; returns the device to use."""
    device = worker_setup(runtime, threads)  # Ray, not auglens, places the task on its CPUs
    # Ray exposes only the task's own GPU(s) through CUDA_VISIBLE_DEVICES: it is always "cuda:0" here.
    return torch.device("cuda") if device.type == "cuda" else device


def _task(job: Job, root: str, runtime: RuntimeConfig, threads: int, *upstream: str | None) -> str:
    # ``upstream``: results of the pending dependencies' tasks, passed only so that Ray orders the tasks.
    # The claim keeps a job from running twice at once: e.g. a retried task while the first attempt's
    # worker still runs, or a restarted driver's task beside a task of the old driver's still running.
    run_claimed(job, ArtifactStore(root), _worker_setup(runtime, threads))
    return job.key


# ------------------------------------------------------------------------------------------ driver side

def _import_ray():
    try:
        import ray
    except ImportError as error:
        raise ImportError("runtime.backend = 'ray' needs Ray on the driver and every node: "
                          "pip install 'auglens[ray]' (or pip install 'ray>=2.9'), or use backend 'local'") from error
    return ray


def _connect(ray, address: str | None) -> bool:
    """Connect to (or start) Ray; returns whether this call started it, and so must shut it down."""
    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address)
    else:
        ray.init(include_dashboard=False)
    return True


def device_type(runtime: RuntimeConfig) -> str:
    """The device type the tasks compute on (part of the artifact keys): ``"auto"`` is "cuda" on a cluster with GPUs."""
    if runtime.device != "auto":
        return torch.device(runtime.device).type
    ray = _import_ray()
    started_ray = _connect(ray, runtime.ray_address)
    try:
        return "cuda" if ray.cluster_resources().get("GPU", 0) > 0 else "cpu"
    finally:
        if started_ray:
            ray.shutdown()


def _task_resources(ray, runtime: RuntimeConfig, threads: int) -> dict[str, Any]:
    """Ray resource request of every task (train, CAM and metric tasks need the same)."""
    device = runtime.device
    cluster = ray.cluster_resources()
    if device.startswith("cuda") or (device == "auto" and cluster.get("GPU", 0) > 0):
        # The heavy work is on the GPU: one CPU is reserved, though torch still runs ``threads`` threads
        # for the little CPU work (data statistics) so that it sums in the same order as a local run.
        return {"num_gpus": runtime.ray_gpus_per_task, "num_cpus": 1}
    # One CPU per thread: never more busy threads than cores, which would slow every task down.
    largest = max((node["Resources"].get("CPU", 0) for node in ray.nodes() if node["Alive"]), default=0)
    if threads > largest:
        raise ValueError(f"each Ray task runs torch with {threads} CPU thread(s) (runtime.num_threads, or torch's "
                         f"default on the driver) but the largest node has {largest:g} CPU(s); set "
                         f"runtime.num_threads to at most {int(largest)} (and the same in any local run you compare)")
    return {"num_cpus": threads}


def run_ray(jobs: Sequence[Job], store: ArtifactStore, runtime: RuntimeConfig,
            progress: bool | None = None) -> dict[str, float]:
    """Run every pending job of ``jobs`` (in dependency order) as a Ray task and wait for all; returns stage timings.

    Connects to ``runtime.ray_address`` (``"auto"``, ``"ray://host:port"``), reuses a Ray already
    initialised in this process, or starts a local one. Each timing is the wall time from submission until
    the stage's last task finished (stages overlap: CAMs of early models run while others still train).
    """
    ray = _import_ray()
    progress = runtime.progress if progress is None else progress
    started_ray = _connect(ray, runtime.ray_address)
    try:
        # Resolved here so every worker uses exactly the thread count a local run on this machine would.
        threads = threads_per_model(runtime)
        resources = _task_resources(ray, runtime, threads)
        store.remove_stale_temporaries()  # left by writers now dead; live ones' are kept
        started = time.perf_counter()
        stage_of = _submit(ray, jobs, store, runtime, threads, resources)
        return _wait(ray, stage_of, stages(jobs), started, progress)
    finally:
        if started_ray:
            ray.shutdown()


def shared_root(store: ArtifactStore) -> str:
    """The store's root as workers must see it: URLs as they are, local paths made absolute.

    Workers do not share the driver's working directory, so a relative ``--out`` would otherwise point
    each node somewhere else; a local path must also be mounted at the same place on every node.
    """
    return store.root if "://" in store.root else os.path.abspath(store.root)


def _submit(ray, jobs, store, runtime, threads, resources) -> dict[Any, str]:
    """Submit every job whose artifact is missing, after its dependencies; returns {ObjectRef: stage}."""
    task = ray.remote(_task)
    options = {**resources, "max_retries": MAX_RETRIES}
    root, shared = shared_root(store), ray.put(runtime)
    refs: dict[str, Any] = {}  # job key -> ObjectRef of its pending task
    stage_of = {}
    for job in jobs:
        if job.key in refs or job.done(store):
            continue
        upstream = list(dict.fromkeys(refs.get(dependency.key) for dependency in job.dependencies))
        ref = task.options(name=f"auglens.{job.stage}", **options).remote(job, root, shared, threads, *upstream)
        refs.update({member.key: ref for member in (job, *job.members)})  # a group's members: one task
        stage_of[ref] = job.stage
    return stage_of


def _wait(ray, stage_of: dict[Any, str], names: list[str], started: float, progress: bool) -> dict[str, float]:
    """Wait for every task, counting finished ones per stage; returns each stage's time to its last task."""
    from tqdm.auto import tqdm

    timings = {f"{stage}_seconds": 0.0 for stage in names}
    total = {stage: list(stage_of.values()).count(stage) for stage in names}
    finished_count = dict.fromkeys(names, 0)
    pending = list(stage_of)
    with tqdm(total=len(pending), desc="ray tasks", unit="task", disable=not progress, dynamic_ncols=True) as bar:
        try:
            while pending:
                finished, pending = ray.wait(pending, num_returns=1)
                ray.get(finished)  # raises the task's error once its retries are spent
                stage = stage_of[finished[0]]
                timings[f"{stage}_seconds"] = time.perf_counter() - started
                finished_count[stage] += 1
                bar.set_postfix_str(" ".join(f"{s} {finished_count[s]}/{total[s]}" for s in names if total[s]))
                bar.update()
        except BaseException:
            # Finished artifacts stay in the store: rerunning resumes from them.
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
    return timings

"""The Ray backend: a study's jobs as Ray tasks, scheduled in dependency order across a cluster.

Every pending job of a :class:`~auglens.study.StudyPlan` becomes one Ray task running the same
idempotent job function as the local backend (:func:`~auglens.study.run_train_job`,
:func:`~auglens.study.run_cam_job`, :func:`~auglens.study.run_metric_job`). A CAM task receives the
ObjectRef of its model's training task and a metric task those of its two CAM tasks, so Ray starts each
task only when its inputs exist; the driver only submits, waits and counts. Workers exchange nothing but
artifact keys: every result goes to the :class:`~auglens.store.ArtifactStore`, whose root must therefore be
reachable from every node (a shared filesystem or an fsspec URL).

Fault tolerance comes from the store, not from Ray's object store: a task whose worker dies is retried
(``max_retries``), and since the job functions skip finished artifacts, writes are atomic and training
resumes from its last epoch snapshot, a retry — or a rerun of the whole study after the driver
died — redoes at most the current epoch of each interrupted training. Jobs whose artifact already
exists are not submitted at all.

Results equal the local backend's bit for bit because each worker applies the driver's runtime settings
(deterministic algorithms and, crucially, the same torch CPU thread count: CPU convolutions reduce in a
thread-count-dependent order, so 1 and 2 threads give tables that differ in the 5th decimal).
"""

from __future__ import annotations

import os
import signal
import time
from typing import TYPE_CHECKING, Any

import torch

from auglens.store import ArtifactStore
from auglens.study import (
    CamJob,
    MetricJob,
    StudyPlan,
    TrainJob,
    configure_runtime,
    run_cam_job,
    run_metric_job,
    DEFAULT_NUM_THREADS,
    run_train_job,
)

if TYPE_CHECKING:
    from auglens.config import Config

MAX_RETRIES = 3  # attempts after a worker dies (node lost, OOM-killed, preempted); Python errors are not retried
KILL_ONCE_ENV = "AUGLENS_TEST_KILL_ONCE"  # test hook: path of a marker file, see _maybe_die


# ------------------------------------------------------------------------------------------ worker side

def _worker_setup(config: Config, threads: int) -> torch.device:
    """Apply the driver's determinism and thread settings in this worker; returns the device to use."""
    device = configure_runtime(config.runtime)
    torch.set_num_threads(threads)
    # Ray exposes only the task's own GPU(s) through CUDA_VISIBLE_DEVICES: it is always "cuda:0" here.
    return torch.device("cuda") if device.type == "cuda" else device


def _maybe_die(job: TrainJob, store: ArtifactStore, marker: str | None) -> None:
    """Test hook: kill this worker once, mid-training, after an epoch snapshot was written."""
    if marker is None or not store.exists("snapshots", job.key, "pt"):
        return
    try:
        with open(marker, "x"):  # exclusive create: exactly one task of the study dies
            pass
    except FileExistsError:
        return
    os.kill(os.getpid(), signal.SIGKILL)


def _train_task(job: TrainJob, root: str, config: Config, threads: int, kill_once: str | None = None) -> str:
    store = ArtifactStore(root)
    device = _worker_setup(config, threads)
    progress = (lambda _: _maybe_die(job, store, kill_once)) if kill_once else None
    return run_train_job(job, store, device, progress)


def _cam_task(job: CamJob, root: str, config: Config, threads: int, trained: str | None = None) -> str:
    # ``trained`` is the upstream training task's result: Ray starts this task only once it exists.
    return run_cam_job(job, ArtifactStore(root), _worker_setup(config, threads))


def _metric_task(job: MetricJob, root: str, config: Config, threads: int, *cams: str | None) -> str:
    # ``cams``: results of the pending upstream CAM tasks (baseline's, model's), again only to order the tasks.
    return run_metric_job(job, ArtifactStore(root), _worker_setup(config, threads))


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


def _task_resources(ray, config: Config, threads: int) -> dict[str, Any]:
    """Ray resource request of every task (train, CAM and metric tasks need the same)."""
    device = config.runtime.device
    cluster = ray.cluster_resources()
    if device.startswith("cuda") or (device == "auto" and cluster.get("GPU", 0) > 0):
        # The heavy work is on the GPU: one CPU is reserved, though torch still runs ``threads`` threads
        # for the little CPU work (data statistics) so that it sums in the same order as a local run.
        return {"num_gpus": config.runtime.ray_gpus_per_task, "num_cpus": 1}
    # One CPU per thread: never more busy threads than cores, which would slow every task down.
    largest = max((node["Resources"].get("CPU", 0) for node in ray.nodes() if node["Alive"]), default=0)
    if threads > largest:
        raise ValueError(f"each Ray task runs torch with {threads} CPU thread(s) (runtime.num_threads, or torch's "
                         f"default on the driver) but the largest node has {largest:g} CPU(s); set "
                         f"runtime.num_threads to at most {int(largest)} (and the same in any local run you compare)")
    return {"num_cpus": threads}


def run_ray(plan: StudyPlan, store: ArtifactStore, config: Config, progress: bool | None = None) -> dict[str, float]:
    """Run every pending job of ``plan`` as a Ray task and wait for all; returns stage timings.

    Connects to ``config.runtime.ray_address`` (``"auto"``, ``"ray://host:port"``), reuses a Ray already
    initialised in this process, or starts a local one. Each timing is the wall time from submission until
    the stage's last task finished (stages overlap: CAMs of early models run while others still train).
    """
    ray = _import_ray()
    progress = config.runtime.progress if progress is None else progress
    started_ray = _connect(ray, config.runtime.ray_address)
    try:
        # Resolved here so every worker uses exactly the thread count a local run on this machine would.
        threads = config.runtime.num_threads or DEFAULT_NUM_THREADS
        resources = _task_resources(ray, config, threads)
        return _submit_and_wait(ray, plan, store, config, threads, resources, progress)
    finally:
        if started_ray:
            ray.shutdown()


def shared_root(store: ArtifactStore) -> str:
    """The store's root as workers must see it: URLs as they are, local paths made absolute.

    Workers do not share the driver's working directory, so a relative ``--out`` would otherwise point
    each node somewhere else; a local path must also be mounted at the same place on every node.
    """
    return store.root if "://" in store.root else os.path.abspath(store.root)


STAGES = ("train", "cam", "metric")


def _submit_and_wait(ray, plan, store, config, threads, resources, progress) -> dict[str, float]:
    store.remove_stale_temporaries()  # left by workers killed mid-write in an earlier run; none runs now
    started = time.perf_counter()
    stage_of = _submit(ray, plan, store, config, threads, resources)
    return _wait(ray, stage_of, started, progress)


def _submit(ray, plan, store, config, threads, resources) -> dict[Any, str]:
    """Submit every job whose artifact is missing; returns {ObjectRef: stage}."""
    options = {**resources, "max_retries": MAX_RETRIES}
    train_task = ray.remote(_train_task).options(name="auglens.train", **options)
    cam_task = ray.remote(_cam_task).options(name="auglens.cam", **options)
    metric_task = ray.remote(_metric_task).options(name="auglens.metrics", **options)
    root, shared = shared_root(store), ray.put(config)
    kill_once = os.environ.get(KILL_ONCE_ENV)

    trains: dict[str, Any] = {}  # TrainJob key -> ObjectRef, or None when already trained
    cams: dict[str, Any] = {}  # CamJob key -> ObjectRef, for pending CAM jobs only
    for job in plan.models:
        if job.train.key not in trains:
            trained = store.exists("checkpoints", job.train.key, "safetensors")
            trains[job.train.key] = None if trained else train_task.remote(job.train, root, shared, threads, kill_once)
        if job.key not in cams and not store.exists("cams", job.key, "safetensors"):
            cams[job.key] = cam_task.remote(job, root, shared, threads, trains[job.train.key])
    metrics = [metric_task.remote(pair, root, shared, threads, cams.get(pair.baseline.key), cams.get(pair.other.key))
               for pair in plan.pairs if not store.exists("metrics", pair.key, "parquet")]
    stage_of = {}
    for stage, refs in zip(STAGES, (trains.values(), cams.values(), metrics)):
        stage_of.update({ref: stage for ref in refs if ref is not None})
    return stage_of


def _wait(ray, stage_of: dict[Any, str], started: float, progress: bool) -> dict[str, float]:
    """Wait for every task, counting finished ones per stage; returns each stage's time to its last task."""
    from tqdm.auto import tqdm

    timings = {f"{stage}_seconds": 0.0 for stage in STAGES}
    total = {stage: list(stage_of.values()).count(stage) for stage in STAGES}
    finished_count = dict.fromkeys(STAGES, 0)
    pending = list(stage_of)
    with tqdm(total=len(pending), desc="ray tasks", unit="task", disable=not progress, dynamic_ncols=True) as bar:
        try:
            while pending:
                finished, pending = ray.wait(pending, num_returns=1)
                ray.get(finished)  # raises the task's error once its retries are spent
                stage = stage_of[finished[0]]
                timings[f"{stage}_seconds"] = time.perf_counter() - started
                finished_count[stage] += 1
                bar.set_postfix_str(" ".join(f"{s} {finished_count[s]}/{total[s]}" for s in STAGES if total[s]))
                bar.update()
        except BaseException:
            # Finished artifacts stay in the store: rerunning the study resumes from them.
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
    return timings

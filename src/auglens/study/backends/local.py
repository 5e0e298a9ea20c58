"""The local backend: every pending job on this machine, one stage after another, a progress bar per stage.

With ``runtime.workers`` at 1 the jobs run in this process. With more, a stage's pending jobs are computed by
that many worker processes at once (started once per run, each pinned to its own cores, with the same torch
thread count and determinism switches as this process would use), and this process only hands out jobs,
counts progress and logs. Independent trainings are embarrassingly parallel: on a CPU, processes scale where
intra-op threads on small convolutions do not, and they do not collapse when the machine is busy. A job's
result does not depend on which process computed it, so the numbers equal one worker's at the same thread
count (tested).

Each job runs under its claim (:func:`~auglens.study.jobs.run_claimed`), so several runs may share a results
folder: a job another live process is computing is put aside, the others are computed here, and at the end
of the stage this run waits for the ones put aside (taking over any whose claim goes stale).

Each finished job and each stage is also logged (``auglens.study``): one line per job when progress bars are
off (``--no-progress``), so a long run is never silent, and a summary per stage either way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import torch

from auglens.config import RuntimeConfig
from auglens.store import ArtifactStore
from auglens.study.backends import stages
from auglens.study.backends.workers import WorkerPool
from auglens.study.jobs import Job, run_claimed
from auglens.study.runtime import worker_count

__all__ = ["run_local"]

log = logging.getLogger("auglens.study")


def _bar(total: int, desc: str, unit: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, dynamic_ncols=True, smoothing=0.1)


def run_local(jobs: Sequence[Job], store: ArtifactStore, device: torch.device, progress: bool,
              on_done: Callable[[Job, ArtifactStore], None] | None = None,
              runtime: RuntimeConfig | None = None) -> dict[str, float]:
    """Run every pending job of ``jobs`` (in dependency order) on this machine; returns
    ``{<stage>_seconds: wall time}``.

    ``on_done(job, store)`` is called after each job this call ran (e.g. TensorBoard logging), in this process.
    ``runtime``: its ``workers`` (default: one, this process) and the settings the workers apply.
    """
    job_level = logging.DEBUG if progress else logging.INFO
    store.remove_stale_temporaries()  # of killed earlier runs only: another live run's are kept
    timings = {}
    pool = None
    failed = True
    try:
        for stage in stages(jobs):
            started = time.perf_counter()
            # Pending is decided when the stage starts: earlier stages have written what it depends on.
            pending = [job for job in jobs if job.stage == stage and not job.done(store)]
            already = sum(job.stage == stage for job in jobs) - len(pending)
            if pending:
                if pool is None and runtime is not None and worker_count(runtime, device.type, len(pending)) > 1:
                    pool = WorkerPool(runtime, worker_count(runtime, device.type, len(jobs)))
                with _bar(sum(job.size() for job in pending), stage, pending[0].unit, progress) as bar:
                    if pool is not None and len(pending) > 1:
                        elsewhere = pool.run(pending, store, bar, job_level, on_done)
                    else:
                        elsewhere = _run_here(pending, store, device, bar, job_level, on_done)
                    _wait_elsewhere(elsewhere, store, device, bar, job_level)
            timings[f"{stage}_seconds"] = time.perf_counter() - started
            log.info(f"{stage}: {len(pending)} job(s) run in {timings[f'{stage}_seconds']:.1f} s"
                     + (f" ({already} already done)" if already else ""))
        failed = False
    finally:
        if pool is not None:
            pool.close(failed)
    return timings


def _run_here(pending: Sequence[Job], store: ArtifactStore, device: torch.device, bar, job_level: int,
              on_done) -> list[Job]:
    """Run ``pending`` in this process, one after another; returns those another live process had claimed."""
    elsewhere = []  # claimed by another live process: waited for once the rest is done
    for i, job in enumerate(pending):
        bar.set_postfix_str(f"{job.label} ({i + 1}/{len(pending)})")
        job_started = time.perf_counter()
        if not _run(job, store, device, bar, wait=False):
            elsewhere.append(job)
            continue
        log.log(job_level, f"{job.stage} {i + 1}/{len(pending)}: {job.label} done in "
                           f"{time.perf_counter() - job_started:.1f} s")
        if on_done is not None:
            on_done(job, store)
    return elsewhere


def _wait_elsewhere(elsewhere: Sequence[Job], store: ArtifactStore, device: torch.device, bar, job_level: int):
    """Wait for the jobs another live process is computing (taking over any whose claim goes stale)."""
    for job in elsewhere:
        bar.set_postfix_str(f"{job.label} (computed elsewhere)")
        _run(job, store, device, bar, wait=True)
        log.log(job_level, f"{job.stage}: {job.label} finished by another run")


def _run(job: Job, store: ArtifactStore, device: torch.device, bar, wait: bool) -> bool:
    reported = 0

    def report(amount: int) -> None:
        nonlocal reported
        reported += amount
        bar.update(amount)

    finished = run_claimed(job, store, device, report, wait=wait)
    if finished:
        bar.update(max(0, job.size() - reported))  # jobs that report no progress (or ran elsewhere) count when done
    return finished

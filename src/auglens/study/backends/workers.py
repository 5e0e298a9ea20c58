"""Local worker processes for ``runtime.workers``: a stage's independent jobs computed side by side.

Each worker is a fresh interpreter (the ``spawn`` start method: a fork would inherit torch's thread pools
without their threads), pinned to its own cores (:func:`~auglens.study.runtime.worker_cores`), with the torch
thread count and determinism switches of the run (:func:`~auglens.study.runtime.worker_setup`). Jobs are
handed out one at a time, so a worker slowed by another process on its core simply takes fewer of them.
Workers exchange only job descriptions and artifact keys with this process; every result goes to the
artifact store under the job's claim, exactly as on the Ray backend, so a run killed midway resumes from the
store, and the numbers do not depend on which worker computed which job.

Progress (images trained, maps computed) travels back through a queue to this process's progress bar.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import signal
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

import torch

from auglens.config import RuntimeConfig
from auglens.store import ArtifactStore
from auglens.study.jobs import Job, run_claimed
from auglens.study.runtime import threads_per_model, usable_cores, worker_cores, worker_setup

__all__ = ["WorkerPool"]

log = logging.getLogger("auglens.study")

# Set in each worker process by _start_worker.
_device: torch.device | None = None
_progress: multiprocessing.Queue | None = None


def _start_worker(runtime: RuntimeConfig, threads: int, slots: multiprocessing.Queue,
                  progress: multiprocessing.Queue) -> None:
    global _device, _progress
    # Ctrl-C reaches the whole process group: this process (the run) stops the workers itself, so they do
    # not each print a KeyboardInterrupt traceback; what they had finished is in the store.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cores = slots.get()  # each worker takes its own cores (None: not pinned)
    _device = worker_setup(runtime, threads, cores)
    _progress = progress


def _compute(job: Job, root: str) -> bool:
    """In a worker: run ``job`` under its claim; False when another live process holds the claim."""
    def report(amount: int) -> None:
        _progress.put(amount)

    return run_claimed(job, ArtifactStore(root), _device, report, wait=False)


class WorkerPool:
    """``workers`` local processes computing jobs; started once and reused by every stage of a run."""

    def __init__(self, runtime: RuntimeConfig, workers: int):
        context = multiprocessing.get_context("spawn")
        threads = threads_per_model(runtime)
        slots = context.Queue()
        for index in range(workers):
            slots.put(worker_cores(index, workers, threads))
        self._progress = context.Queue()
        self.workers = workers
        self._executor = ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                                             initargs=(runtime, threads, slots, self._progress))
        load = _load_average()
        log.info(f"{workers} worker processes, {threads} torch thread(s) each, on {len(usable_cores())} usable "
                 f"core(s)" + (f" (load average {load:.1f}: other processes share them)" if load >= 0.5 else ""))

    def run(self, pending: Sequence[Job], store: ArtifactStore, bar, job_level: int,
            on_done: Callable[[Job, ArtifactStore], None] | None) -> list[Job]:
        """Compute ``pending`` on the workers; returns the jobs another live process (not ours) had claimed."""
        futures: dict[Future, tuple[Job, float]] = {}
        for job in pending:
            futures[self._executor.submit(_compute, job, store.root)] = (job, time.perf_counter())
        elsewhere, finished = [], 0
        waiting = set(futures)
        try:
            while waiting:
                done, waiting = wait(waiting, timeout=0.2, return_when=FIRST_COMPLETED)
                self._drain(bar)
                for future in done:
                    job, submitted = futures[future]
                    if not future.result():  # a worker's error is raised here, with its traceback
                        elsewhere.append(job)
                        continue
                    finished += 1
                    log.log(job_level, f"{job.stage} {finished}/{len(pending)}: {job.label} done "
                                       f"({time.perf_counter() - submitted:.1f} s after it was queued)")
                    if on_done is not None:
                        on_done(job, store)
                bar.set_postfix_str(f"{finished}/{len(pending)} on {self.workers} workers")
        except BaseException:
            for future in futures:
                future.cancel()  # queued jobs never start; running ones leave their snapshots to resume from
            raise
        self._drain(bar)
        # Some jobs report progress as they go, others only by finishing: the bar ends full but for the jobs
        # left to wait for.
        bar.update(max(0, bar.total - sum(job.size() for job in elsewhere) - bar.n))
        return elsewhere

    def _drain(self, bar) -> None:
        while True:
            try:
                bar.update(self._progress.get_nowait())
            except queue.Empty:
                return

    def close(self, failed: bool = False) -> None:
        """Stop the workers: once their jobs are done, or at once after a failure (a job cut short leaves
        only its claim, which goes stale, and its last epoch snapshot, which the next run resumes from)."""
        if failed:
            for process in list(getattr(self._executor, "_processes", {}).values()):
                process.terminate()
        self._executor.shutdown(wait=True, cancel_futures=True)


def _load_average() -> float:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0

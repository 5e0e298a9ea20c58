"""The local backend: every pending job in this process, one stage after another, a progress bar per stage.

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

from auglens.store import ArtifactStore
from auglens.study.backends import stages
from auglens.study.jobs import Job, run_claimed

__all__ = ["run_local"]

log = logging.getLogger("auglens.study")


def _bar(total: int, desc: str, unit: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, dynamic_ncols=True, smoothing=0.1)


def run_local(jobs: Sequence[Job], store: ArtifactStore, device: torch.device, progress: bool,
              on_done: Callable[[Job, ArtifactStore], None] | None = None) -> dict[str, float]:
    """Run every pending job of ``jobs`` (in dependency order) here; returns ``{<stage>_seconds: wall time}``.

    ``on_done(job, store)`` is called after each job this call ran (e.g. TensorBoard logging).
    """
    job_level = logging.DEBUG if progress else logging.INFO
    store.remove_stale_temporaries()  # of killed earlier runs only: another live run's are kept
    timings = {}
    for stage in stages(jobs):
        started = time.perf_counter()
        # Pending is decided when the stage starts: earlier stages have written what it depends on.
        pending = [job for job in jobs if job.stage == stage and not job.done(store)]
        already = sum(job.stage == stage for job in jobs) - len(pending)
        if pending:
            with _bar(sum(job.size() for job in pending), stage, pending[0].unit, progress) as bar:
                elsewhere = []  # claimed by another live process: waited for once the rest is done
                for i, job in enumerate(pending):
                    bar.set_postfix_str(f"{job.label} ({i + 1}/{len(pending)})")
                    job_started = time.perf_counter()
                    if not _run(job, store, device, bar, wait=False):
                        elsewhere.append(job)
                        continue
                    log.log(job_level, f"{stage} {i + 1}/{len(pending)}: {job.label} done in "
                                       f"{time.perf_counter() - job_started:.1f} s")
                    if on_done is not None:
                        on_done(job, store)
                for job in elsewhere:
                    bar.set_postfix_str(f"{job.label} (computed elsewhere)")
                    _run(job, store, device, bar, wait=True)
                    log.log(job_level, f"{stage}: {job.label} finished by another run")
        timings[f"{stage}_seconds"] = time.perf_counter() - started
        log.info(f"{stage}: {len(pending)} job(s) run in {timings[f'{stage}_seconds']:.1f} s"
                 + (f" ({already} already done)" if already else ""))
    return timings


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

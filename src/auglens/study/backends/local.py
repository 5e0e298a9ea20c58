"""The local backend: every pending job in this process, one stage after another, a progress bar per stage.

Each job runs under its claim (:func:`~auglens.study.jobs.run_claimed`), so several runs may share a results
folder: a job another live process is computing is put aside, the others are computed here, and at the end
of the stage this run waits for the ones put aside (taking over any whose claim goes stale).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch

from auglens.store import ArtifactStore
from auglens.study.backends import stages
from auglens.study.jobs import Job, run_claimed

__all__ = ["run_local"]


def _bar(total: int, desc: str, unit: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, dynamic_ncols=True, smoothing=0.1)


def run_local(jobs: Sequence[Job], store: ArtifactStore, device: torch.device, progress: bool) -> dict[str, float]:
    """Run every pending job of ``jobs`` (in dependency order) here; returns ``{<stage>_seconds: wall time}``."""
    store.remove_stale_temporaries()  # of killed earlier runs only: another live run's are kept
    timings = {}
    for stage in stages(jobs):
        started = time.perf_counter()
        # Pending is decided when the stage starts: earlier stages have written what it depends on.
        pending = [job for job in jobs if job.stage == stage and not job.done(store)]
        if pending:
            with _bar(sum(job.size() for job in pending), stage, pending[0].unit, progress) as bar:
                elsewhere = []  # claimed by another live process: waited for once the rest is done
                for i, job in enumerate(pending):
                    bar.set_postfix_str(f"{job.label} ({i + 1}/{len(pending)})")
                    if not _run(job, store, device, bar, wait=False):
                        elsewhere.append(job)
                for job in elsewhere:
                    bar.set_postfix_str(f"{job.label} (computed elsewhere)")
                    _run(job, store, device, bar, wait=True)
        timings[f"{stage}_seconds"] = time.perf_counter() - started
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

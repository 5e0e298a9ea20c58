"""The local backend: every pending job in this process, one stage after another, a progress bar per stage."""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch

from auglens.store import ArtifactStore
from auglens.study.backends import stages
from auglens.study.jobs import Job

__all__ = ["run_local"]


def _bar(total: int, desc: str, unit: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, dynamic_ncols=True, smoothing=0.1)


def run_local(jobs: Sequence[Job], store: ArtifactStore, device: torch.device, progress: bool) -> dict[str, float]:
    """Run every pending job of ``jobs`` (in dependency order) here; returns ``{<stage>_seconds: wall time}``."""
    store.remove_stale_temporaries()  # a killed earlier run may have left some; nothing else writes now
    timings = {}
    for stage in stages(jobs):
        started = time.perf_counter()
        # Pending is decided when the stage starts: earlier stages have written what it depends on.
        pending = [job for job in jobs if job.stage == stage and not job.done(store)]
        if pending:
            with _bar(sum(job.size() for job in pending), stage, pending[0].unit, progress) as bar:
                for i, job in enumerate(pending):
                    bar.set_postfix_str(f"{job.label} ({i + 1}/{len(pending)})")
                    reported = 0

                    def report(amount: int) -> None:
                        nonlocal reported
                        reported += amount
                        bar.update(amount)

                    job.run(store, device, report)
                    bar.update(max(0, job.size() - reported))  # jobs that report no progress count when done
        timings[f"{stage}_seconds"] = time.perf_counter() - started
    return timings

"""Backends run any list of :class:`~auglens.study.jobs.Job` in dependency order and return stage timings.

``local`` runs them in this process; ``ray`` runs each as a Ray task across a cluster. Both skip jobs
whose artifact exists and know nothing about what a job computes.
"""

from __future__ import annotations

from collections.abc import Sequence

from auglens.study.jobs import Job

__all__ = ["stages"]


def stages(jobs: Sequence[Job]) -> list[str]:
    """The jobs' stage names in order of first appearance."""
    return list(dict.fromkeys(job.stage for job in jobs))

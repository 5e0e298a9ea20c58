"""Artifacts that heal: find a plan's damaged or missing artifacts, recompute them with their dependants.

Every artifact's checksum is recorded by the store when written (:mod:`auglens.store`). Before a run
computes anything, :func:`heal` reads every artifact of the plan's jobs once and compares it with its
checksum. A damaged artifact (truncated, overwritten, without a checksum) is reported, deleted, and so
recomputed by the run, together with every job downstream of it whose artifact exists — a CAM set
computed from a checkpoint that is now being retrained is recomputed as well, so the tables never mix
artifacts of two trainings. An artifact that is *missing* while a job downstream of it has its artifact
(deleted by hand, lost in a copy) is reported and recomputed the same way; a missing artifact with nothing
downstream is simply pending work.

:func:`verify_results` checks a whole results folder (artifacts and tables against the hashes in its
manifest) without changing anything: ``auglens verify DIR``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from auglens.store import ArtifactStatus, ArtifactStore
from auglens.study.jobs import Job

__all__ = ["Finding", "heal", "inspect_jobs"]

log = logging.getLogger("auglens.study")


@dataclass(frozen=True)
class Finding:
    """One damaged or missing artifact, the job that writes it, and the jobs recomputed because of it."""

    job: Job
    status: ArtifactStatus
    dependants: tuple[Job, ...] = ()

    def __str__(self) -> str:
        s = self.status
        text = f"{s.kind}/{s.key}.{s.ext} ({self.job.stage} job {self.job.label}): {s.problem}"
        if self.dependants:
            text += f"; {len(self.dependants)} dependant job(s): " + ", ".join(
                f"{d.stage} {d.label}" for d in self.dependants)
        return text


def inspect_jobs(jobs: Sequence[Job], store: ArtifactStore
                 ) -> tuple[dict[int, list[ArtifactStatus]], list[Finding], list[Job]]:
    """Every artifact's status, every damaged artifact of ``jobs`` (in dependency order), every job to recompute.

    Reads each existing artifact once. Returns the statuses (by ``id(job)``, one per :attr:`Job.outputs`),
    the findings (one per damaged or wrongly missing artifact) and the jobs whose artifacts must be
    deleted so that the run recomputes them.
    """
    statuses = {id(job): [store.check(kind, job.key, ext) for kind, ext in job.outputs] for job in jobs}
    finished = {id(job): _marker(job, statuses[id(job)]).problem != "missing" for job in jobs}
    downstream: dict[int, list[Job]] = {id(job): [] for job in jobs}
    for job in jobs:
        for dependency in job.dependencies:
            downstream.setdefault(id(dependency), []).append(job)

    def transitive(job: Job) -> list[Job]:
        seen: dict[int, Job] = {}
        queue = list(downstream.get(id(job), []))
        while queue:
            nxt = queue.pop(0)
            if id(nxt) not in seen:
                seen[id(nxt)] = nxt
                queue.extend(downstream.get(id(nxt), []))
        return list(seen.values())

    findings: list[Finding] = []
    redo: dict[int, Job] = {}
    for job in jobs:
        below = [d for d in transitive(job) if finished.get(id(d))]
        problems = []
        for status in statuses[id(job)]:
            if status.ok:
                continue
            if status.problem != "missing" or finished[id(job)] or below:
                problems.append(status)
        if not problems:
            continue
        for status in problems:
            findings.append(Finding(job, status, tuple(below)))
        for affected in (job, *below):
            redo[id(affected)] = affected
    return statuses, findings, [job for job in jobs if id(job) in redo]


def _marker(job: Job, statuses: list[ArtifactStatus]) -> ArtifactStatus:
    kind, ext = job.artifact
    return next(s for s in statuses if (s.kind, s.ext) == (kind, ext))


def heal(jobs: Sequence[Job], store: ArtifactStore) -> list[Finding]:
    """Report every damaged artifact of ``jobs`` and delete it with its dependants' so the run recomputes them."""
    _, findings, redo = inspect_jobs(jobs, store)
    for finding in findings:
        log.warning("damaged artifact, recomputing: %s", finding)
    for job in redo:
        for kind, ext in job.outputs:
            store.delete(kind, job.key, ext)
    return findings

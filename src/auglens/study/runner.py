"""The one runner every command goes through: open a run, heal its store, run its jobs on a backend, record it.

A study (``auglens run``), architecture selection, the distortion analyses, ``auglens compare`` and ``auglens
verify --repair`` each plan their work as jobs (:mod:`~auglens.study.jobs`) and hand them to a :class:`Run`,
which holds everything that decides where and how the jobs compute:

- the device and torch's CPU thread count (:func:`~auglens.study.runtime.configure_runtime`), and the
  determinism switches once there is a job to compute,
- the resolved settings that change results (:class:`~auglens.study.runtime.ComputeSpec`, part of every
  training key): on Ray those of the workers' device, which the driver may lack,
- the artifact store (``runtime.artifacts``, or the pipeline's own folder),
- the integrity check: damaged artifacts of the jobs are reported and recomputed with their dependants
  (:func:`~auglens.study.integrity.heal`),
- the log file in the results folder (when the command line set logging up),
- the run's provenance, for the manifest's run history, with the CPU it computes on (model, torch's CPU
  capability).

:meth:`Run.execute` is the only place that chooses between the local backend and Ray.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from auglens.config import RuntimeConfig
from auglens.store import ArtifactStore
from auglens.study.jobs import Job
from auglens.study.runtime import ComputeSpec, apply_determinism, compute_spec, configure_runtime, cpu_description

__all__ = ["BACKENDS", "Run", "backend_compute_spec", "open_run", "run_store"]

log = logging.getLogger("auglens.study")

#: Where jobs may run: this process, or a Ray cluster.
BACKENDS = ("local", "ray")


def backend_compute_spec(runtime: RuntimeConfig, backend: str, device: torch.device) -> ComputeSpec:
    """The resolved settings the jobs run with: on Ray the workers' device (which this machine, the driver,
    may lack), otherwise ``device``, this process's."""
    if backend == "ray":
        from auglens.study.backends.ray import device_type

        return compute_spec(runtime, device_type(runtime))
    return compute_spec(runtime, device.type)


def run_store(runtime: RuntimeConfig, default_root: str | Path) -> ArtifactStore:
    """The artifact store of a run: ``runtime.artifacts``, else the pipeline's own folder ``default_root``."""
    return ArtifactStore(runtime.artifacts or default_root)


@dataclass
class Run:
    """An opened run: where its jobs compute and store, and what it records about itself."""

    runtime: RuntimeConfig
    backend: str  # "local" or "ray"
    device: torch.device  # this process's device (the driver's, on Ray)
    compute: ComputeSpec  # the resolved settings the jobs compute with (part of the training keys)
    store: ArtifactStore
    progress: bool
    provenance: dict[str, Any] = field(default_factory=dict)  # auglens.provenance.run_provenance()
    started: float = field(default_factory=time.perf_counter)

    def heal(self, jobs: Sequence[Job]):
        """Report every damaged artifact of ``jobs`` and delete it with its dependants', so :meth:`execute`
        recomputes them; returns the findings."""
        from auglens.study.integrity import heal

        return heal(jobs, self.store)

    def execute(self, jobs: Sequence[Job], on_done: Callable[[Job, ArtifactStore], None] | None = None
                ) -> dict[str, float]:
        """Run every pending job of ``jobs`` (in dependency order) on the run's backend; returns stage timings.

        ``on_done(job, store)`` is called for each job this call computed: as it finishes on the local
        backend, once all are done on Ray (the driver learns of them only then).
        """
        if self.backend == "ray":  # each worker applies the runtime settings itself
            from auglens.study.backends.ray import run_ray

            pending = [job for job in jobs if not job.done(self.store)]
            timings = run_ray(jobs, self.store, self.runtime, self.progress)
            if on_done is not None:
                for job in pending:
                    on_done(job, self.store)
            return timings
        from auglens.study.backends.local import run_local

        if any(not job.done(self.store) for job in jobs):
            apply_determinism(self.runtime)
        return run_local(jobs, self.store, self.device, self.progress, on_done=on_done, runtime=self.runtime)

    def computes_here(self) -> None:
        """Apply the determinism switches before computing outside :meth:`execute` (e.g. evaluating a model)."""
        apply_determinism(self.runtime)

    def seconds(self) -> float:
        """Wall time since the run was opened."""
        return time.perf_counter() - self.started

    def history(self, previous: dict | None, timings: dict[str, float]) -> dict[str, Any]:
        """The manifest's run history with this run appended (:func:`auglens.provenance.record_run`)."""
        from auglens.provenance import record_run

        return record_run(previous, self.provenance, timings)


def open_run(runtime: RuntimeConfig, store_root: str | Path, backend: str | None = None,
             progress: bool | None = None, provenance: dict | None = None,
             log_folder: str | Path | None = None) -> Run:
    """Open a run: apply ``runtime`` (device, threads, determinism), resolve its compute settings, open its store.

    ``store_root``: the pipeline's own artifact folder, used unless ``runtime.artifacts`` is set.
    ``backend``: ``"local"`` or ``"ray"`` (default ``runtime.backend``). ``progress``: progress bars (default
    ``runtime.progress``). ``provenance``: who and what started the run (default: this process's).
    ``log_folder``: the results folder, whose ``logs/`` gets this command's log file when the command line
    set logging up and no log file is open yet.
    """
    from auglens.provenance import run_provenance

    backend = backend or runtime.backend
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    if log_folder is not None:
        from auglens import logs

        if logs.collecting() and logs.log_path() is None:
            logs.log_to_folder(log_folder)
    device = configure_runtime(runtime, determinism=False)  # applied once there is something to compute
    compute = backend_compute_spec(runtime, backend, device)
    # The CPU joins every run's record: CPU results depend on its capability (cpu_description).
    provenance = {**(provenance or run_provenance()), "cpu": cpu_description()}
    return Run(runtime, backend, device, compute, run_store(runtime, store_root),
               runtime.progress if progress is None else progress, provenance)

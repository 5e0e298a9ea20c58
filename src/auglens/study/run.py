"""Run a study: plan its jobs, run them on a backend, write the tables, config and manifest."""

from __future__ import annotations

import time
from pathlib import Path

from auglens.config import Config, dump_toml
from auglens.store import ArtifactStore, write_text_atomic
from auglens.study.manifest import write_manifest
from auglens.study.plan import plan_study
from auglens.study.runtime import configure_runtime
from auglens.study.tables import StudyResult, assemble_tables

__all__ = ["run_study"]


def run_study(config: Config, out_dir: str | Path, progress: bool | None = None,
              backend: str | None = None, provenance: dict | None = None) -> StudyResult:
    """Run (or resume) a whole study into ``out_dir`` and write its tables, config and manifest.

    ``provenance`` (:func:`auglens.provenance.run_provenance`: command line, overrides, host, start time;
    default: this process's) is recorded in the manifest, whose run history spans every resume.
    """
    from auglens.provenance import run_provenance

    run = provenance or run_provenance()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    progress = config.runtime.progress if progress is None else progress
    backend = backend or config.runtime.backend
    device = configure_runtime(config.runtime)
    started = time.perf_counter()
    write_text_atomic(out_dir / "config.toml", dump_toml(config))
    plan = plan_study(config)
    store = ArtifactStore(config.runtime.artifacts or out_dir / "artifacts")
    board = None
    if config.runtime.tensorboard:
        from auglens.tracking import TensorBoardLog

        board = TensorBoardLog(out_dir / "tensorboard")
    if backend == "ray":
        from auglens.study.backends.ray import run_ray

        pending = [job for job in plan.jobs if not job.done(store)]  # what this run does, for TensorBoard
        timings = run_ray(plan.jobs, store, config.runtime, progress)
        if board is not None:
            for job in pending:
                board.job_done(job, store)
    else:
        from auglens.study.backends.local import run_local

        timings = run_local(plan.jobs, store, device, progress, on_done=board.job_done if board else None)
    if board is not None:
        board.close()
    result = assemble_tables(plan, store, out_dir, config)
    timings["total_seconds"] = time.perf_counter() - started
    result.timings = timings
    write_manifest(out_dir, config, plan, timings, device, backend, run)
    return result

"""Run a study: open a run, plan its jobs, run them through the runner, write the tables, config and manifest."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from auglens.config import Config, dump_toml
from auglens.store import write_text_atomic
from auglens.study.manifest import write_manifest
from auglens.study.plan import plan_study
from auglens.study.runner import open_run
from auglens.study.runtime import ComputeSpec
from auglens.study.tables import StudyResult, assemble_tables

__all__ = ["SettingsMismatch", "check_settings", "run_study"]

log = logging.getLogger("auglens.study")


class SettingsMismatch(ValueError):
    """A results folder holds results computed under other runtime settings than this run's."""


def check_settings(out_dir: Path, compute: ComputeSpec) -> None:
    """Refuse to run into a folder whose manifest records other result-changing settings than ``compute``.

    The settings are part of the artifact keys, so nothing would mix; but the run would silently recompute
    the whole study, and the folder's tables would change meaning. Raises :class:`SettingsMismatch`.
    """
    path = out_dir / "manifest.json"
    if not path.exists():
        return
    recorded = json.loads(path.read_text()).get("compute")
    if not recorded:
        return
    before = ComputeSpec(**recorded)
    differing = compute.differences(before)
    if differing:
        was = ", ".join(f"{name} = {getattr(before, name.split('.')[1])!r}" for name in differing)
        now = ", ".join(f"{name} = {getattr(compute, name.split('.')[1])!r}" for name in differing)
        fix = " ".join(f"{name}={str(getattr(before, name.split('.')[1])).lower()}" for name in differing)
        raise SettingsMismatch(
            f"{out_dir} holds results computed with {was}, but this run uses {now}; these settings change the "
            f"numbers, so it would recompute the whole study instead of reusing them. Rerun with `{fix}` to "
            f"reuse and resume them, choose another --out, or pass --force to compute the results of the new "
            f"settings here (the old artifacts stay in the store)")


def run_study(config: Config, out_dir: str | Path, progress: bool | None = None,
              backend: str | None = None, force: bool = False, provenance: dict | None = None) -> StudyResult:
    """Run (or resume) a whole study into ``out_dir`` and write its tables, config and manifest.

    The run is opened by :func:`~auglens.study.runner.open_run`: damaged or missing artifacts of an earlier
    run are reported and recomputed with everything downstream of them. A folder finished under other
    result-changing runtime settings is refused (:func:`check_settings`) unless ``force``. ``provenance``
    (:func:`auglens.provenance.run_provenance`: command line, overrides, host, start time; default: this
    process's) is recorded in the manifest, whose run history spans every resume. The HTML report is not
    part of the run: build it with :func:`auglens.report.build_report` (``auglens run`` does, unless
    ``runtime.report = false``); open the finished study with :func:`auglens.study.opened.open_study`.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    run = open_run(config.runtime, out_dir / "artifacts", backend, progress, provenance, log_folder=out_dir)
    if not force:
        check_settings(out_dir, run.compute)
    write_text_atomic(out_dir / "config.toml", dump_toml(config))
    plan = plan_study(config, run.compute)
    run.heal(plan.artifact_jobs)
    board = None
    if config.runtime.tensorboard:
        from auglens.tracking import TensorBoardLog

        board = TensorBoardLog(out_dir / "tensorboard")
    timings = run.execute(plan.jobs, on_done=board.job_done if board else None)
    if board is not None:
        board.close()
    result = assemble_tables(plan, run.store, out_dir, config)
    timings["total_seconds"] = run.seconds()
    result.timings = timings
    write_manifest(out_dir, config, plan, timings, run.device, run.backend, run.compute, run.provenance)
    return result

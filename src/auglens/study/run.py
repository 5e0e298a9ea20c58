"""Run a study: open a run, plan its jobs, run them through the runner, write the tables, config and manifest."""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from auglens.config import Config, ConfigError, dump_toml, load
from auglens.store import write_text_atomic
from auglens.study.manifest import OPTIONAL_TABLES, TABLES, write_manifest
from auglens.study.plan import plan_study
from auglens.study.runner import open_run
from auglens.study.runtime import ComputeSpec
from auglens.study.tables import StudyResult, assemble_tables

__all__ = ["ConfigMismatch", "SettingsMismatch", "check_config", "check_cpu", "check_settings", "config_differences",
           "replace_results", "run_study"]

log = logging.getLogger("auglens.study")


class SettingsMismatch(ValueError):
    """A results folder holds results computed under other runtime settings than this run's."""


class ConfigMismatch(SettingsMismatch):
    """A results folder holds a study of another config than this run's."""


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested config dict -> ``{dotted key: value}``; an array of ``[[tables]]`` is keyed by its entries' names
    (``augmentations.affine.degrees``), as overrides name them."""
    flat: dict[str, Any] = {}
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, list) and data and all(isinstance(e, dict) and "name" in e for e in data):
        flat[prefix] = [entry["name"] for entry in data]  # which entries, in which order
        items = [(entry["name"], {k: v for k, v in entry.items() if k != "name"}) for entry in data]
    else:
        return {prefix: data}
    for key, value in items:
        flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def config_differences(before: Config, after: Config) -> list[str]:
    """``key: old -> new`` for every setting of the two configs that differs, the runtime section aside (its
    result-changing settings are checked by :func:`check_settings`; the others change no result)."""
    old, new = (_flatten({k: v for k, v in c.to_dict().items() if k != "runtime"}) for c in (before, after))
    absent = object()

    def shown(value: Any) -> str:
        return "(not set)" if value is absent else json.dumps(value)

    return [f"{key}: {shown(old.get(key, absent))} -> {shown(new.get(key, absent))}"
            for key in sorted(old.keys() | new.keys()) if old.get(key, absent) != new.get(key, absent)]


def check_config(out_dir: Path, config: Config) -> list[str]:
    """Raise :class:`ConfigMismatch` when ``out_dir`` holds a study of another config than ``config`` (its
    ``config.toml`` differs outside ``[runtime]``), naming every difference; returns them ([] when none)."""
    path = out_dir / "config.toml"
    if not path.is_file():
        return []
    try:
        differences = config_differences(load(path), config)
    except ConfigError as error:
        differences = [f"its config.toml does not load as a study config ({error})"]
    if differences:
        raise ConfigMismatch(
            f"{out_dir} holds a study of another config ({len(differences)} difference(s), folder -> this run):\n"
            + "\n".join(f"  {line}" for line in differences)
            + f"\nChoose another --out, or pass --force to replace the study there (its config.toml, manifest and "
              f"tables move to {out_dir}/replaced-<UTC time>/; its artifacts stay and are reused where they fit)")
    return differences


def replace_results(out_dir: Path) -> Path | None:
    """Move a folder's study files (config, manifest, tables, report) to ``replaced-<UTC time>/`` inside it,
    so a run of another config does not overwrite them; the artifacts stay. Returns the new folder (None when
    there was nothing to move)."""
    names = ["config.toml", "manifest.json", *TABLES, *OPTIONAL_TABLES, "report"]
    present = [name for name in names if (out_dir / name).exists()]
    if not present:
        return None
    target = out_dir / f"replaced-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    target.mkdir()
    for name in present:
        shutil.move(str(out_dir / name), str(target / name))
    log.warning("moved the replaced study's %s to %s", ", ".join(present), target)
    return target


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


def check_cpu(out_dir: Path, compute: ComputeSpec, cpu: dict | None) -> str | None:
    """Warn when a CPU study is resumed on a CPU of another torch capability than its last run's; returns the
    warning (None when there is none).

    Not refused: the capability is not part of the artifact keys (a user moving a study to another machine
    keeps its finished models), but models trained from here on sum in another order than the finished ones,
    so the folder's results then mix capabilities. Each run's capability is in the manifest's run history.
    """
    path = out_dir / "manifest.json"
    if compute.device != "cpu" or cpu is None or not path.exists():
        return None
    runs = json.loads(path.read_text()).get("runs") or [{}]
    before = (runs[-1].get("cpu") or {}).get("capability")
    if before is None or before == cpu.get("capability"):
        return None
    message = (f"{out_dir} was last computed with torch's CPU capability {before!r}, this run uses "
               f"{cpu.get('capability')!r}: finished artifacts are reused, but what this run computes sums in "
               f"another order, so the study's models will mix capabilities (results differ across capabilities "
               f"in the last bits, amplified by training: docs/artifacts.md). For results of one capability use "
               f"another --out, or ATEN_CPU_CAPABILITY={before.lower()} if this CPU supports it")
    log.warning(message)
    return message


def run_study(config: Config, out_dir: str | Path, progress: bool | None = None,
              backend: str | None = None, force: bool = False, provenance: dict | None = None) -> StudyResult:
    """Run (or resume) a whole study into ``out_dir`` and write its tables, config and manifest.

    The run is opened by :func:`~auglens.study.runner.open_run`: damaged or missing artifacts of an earlier
    run are reported and recomputed with everything downstream of them. A folder holding a study of another
    config (:func:`check_config`) or finished under other result-changing runtime settings
    (:func:`check_settings`) is refused before any work; with ``force`` its study files are moved aside
    (:func:`replace_results`) and the new study written there. ``provenance``
    (:func:`auglens.provenance.run_provenance`: command line, overrides, host, start time; default: this
    process's) is recorded in the manifest, whose run history spans every resume. The HTML report is not
    part of the run: build it with :func:`auglens.report.build_report` (``auglens run`` does, unless
    ``runtime.report = false``); open the finished study with :func:`auglens.study.opened.open_study`.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    run = open_run(config.runtime, out_dir / "artifacts", backend, progress, provenance, log_folder=out_dir)
    try:
        check_config(out_dir, config)
        check_settings(out_dir, run.compute)
        check_cpu(out_dir, run.compute, run.provenance.get("cpu"))
    except SettingsMismatch:
        if not force:
            raise
        replace_results(out_dir)
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

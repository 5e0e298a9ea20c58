"""``auglens verify DIR``: is every artifact and table of a results folder sound?

A results folder (a local path or an fsspec URL) holds its config (``config.toml``), its manifest (the
artifact keys, the settings that change results, the tables' SHA-256) and, unless ``runtime.artifacts``
points elsewhere, the artifact store. Verifying plans the study from the folder's own config and settings,
reads every artifact of that plan and compares it with the checksum recorded when it was written, reads
every other artifact of the store (epoch snapshots, artifacts of other configs) the same way, and hashes
every table the manifest lists. Nothing is changed; :func:`repair_results` reruns the study, which
recomputes what is damaged or missing (with every job downstream of it) and rewrites the tables.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from auglens import config as cfg
from auglens.config import ConfigError
from auglens.store import ArtifactStore, write_atomic
from auglens.study.integrity import inspect_jobs
from auglens.study.manifest import OPTIONAL_TABLES, TABLES
from auglens.study.plan import plan_study
from auglens.study.runner import run_store
from auglens.study.runtime import ComputeSpec, compute_spec

__all__ = ["VerifyReport", "repair_results", "verify_results"]

#: Files of a results folder that :func:`repair_results` copies back to a remote folder.
RESULT_FILES = ("config.toml", "manifest.json", *TABLES, *OPTIONAL_TABLES)


@dataclass
class VerifyReport:
    folder: str
    checked: int = 0  # artifacts and tables read
    problems: list[str] = field(default_factory=list)  # one line per damaged or missing thing

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        head = (f"{self.folder}: sound ({self.checked} artifacts and tables checked)" if self.ok else
                f"{self.folder}: {len(self.problems)} problem(s) in {self.checked} artifacts and tables checked")
        return "\n".join([head, *(f"  {line}" for line in self.problems)])


def _folder(folder: str):
    import fsspec

    fs, base = fsspec.core.url_to_fs(folder)
    return fs, base.rstrip("/")


def _read(fs, path: str) -> bytes | None:
    try:
        return fs.cat_file(path)
    except FileNotFoundError:
        return None


def load_results_config(folder: str, overrides: list[str] | None = None):
    """The config and manifest (None when absent) of a results folder; raises ConfigError when it has no config."""
    fs, base = _folder(folder)
    text = _read(fs, f"{base}/config.toml")
    if text is None:
        raise ConfigError([f"{folder} has no config.toml: not a results folder of `auglens run` "
                           f"(expected the --out folder of a study)"])
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "config.toml"
        path.write_bytes(text)
        config = cfg.load(path, overrides)
    raw = _read(fs, f"{base}/manifest.json")
    return config, (json.loads(raw) if raw is not None else None)


def store_of(folder: str, config) -> ArtifactStore:
    """The store a run of ``config`` into ``folder`` uses (:func:`auglens.study.runner.run_store`)."""
    return run_store(config.runtime, f"{folder.rstrip('/')}/artifacts")


def verify_results(folder: str) -> VerifyReport:
    """Check every artifact and table of the results folder ``folder``; changes nothing."""
    config, manifest = load_results_config(folder)
    report = VerifyReport(folder)
    recorded = (manifest or {}).get("compute")
    compute = ComputeSpec(**recorded) if recorded else compute_spec(config.runtime)
    plan = plan_study(config, compute)
    store = store_of(folder, config)

    statuses, findings, _ = inspect_jobs(plan.artifact_jobs, store)
    planned = set()
    for job in plan.artifact_jobs:
        for status in statuses[id(job)]:
            planned.add((status.kind, status.key, status.ext))
            report.checked += 1
            if not status.ok:
                report.problems.append(f"{status.kind}/{status.key}.{status.ext} ({job.stage} {job.label}): "
                                       f"{status.problem}")
    for artifact in store.artifacts():
        if artifact in planned:
            continue
        status = store.check(*artifact)
        report.checked += 1
        if not status.ok:
            report.problems.append(f"{status.kind}/{status.key}.{status.ext} (not of this config): {status.problem}")

    fs, base = _folder(folder)
    if manifest is None:
        report.problems.append("manifest.json: missing (the study never finished here): its tables cannot be checked")
        return report
    for name, digest in manifest.get("tables_sha256", {}).items():
        report.checked += 1
        data = _read(fs, f"{base}/{name}")
        if data is None:
            report.problems.append(f"{name}: missing")
        elif digest is not None and hashlib.sha256(data).hexdigest() != digest:
            report.problems.append(f"{name}: corrupt (SHA-256 differs from the manifest's)")
    return report


def repair_results(folder: str, overrides: list[str] | None = None, progress: bool = False) -> VerifyReport:
    """Recompute whatever is damaged or missing in ``folder`` (and its dependants), rewrite the tables, verify."""
    from auglens.study.run import run_study

    config, _ = load_results_config(folder, overrides)
    fs, base = _folder(folder)
    if "://" not in folder or folder.startswith("file://"):
        run_study(config, Path(base), progress=progress)
    else:
        # A remote folder: the study runs against its store, the tables are assembled here and copied back.
        config.runtime.artifacts = config.runtime.artifacts or f"{folder.rstrip('/')}/artifacts"
        with tempfile.TemporaryDirectory() as scratch:
            manifest = _read(fs, f"{base}/manifest.json")
            if manifest is not None:
                (Path(scratch) / "manifest.json").write_bytes(manifest)
            run_study(config, Path(scratch), progress=progress)
            for name in RESULT_FILES:
                if name in OPTIONAL_TABLES and not (Path(scratch) / name).is_file():
                    continue
                write_atomic(f"{base}/{name}", (Path(scratch) / name).read_bytes(), fs)
    return verify_results(folder)

"""Where a result came from: auglens's version and git commit, the command line, the host, the data's files.

Collected once per run and written into ``manifest.json`` beside the results, so a table can be traced to
the code, the machine and the exact data files that produced it.
"""

from __future__ import annotations

import getpass
import hashlib
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import auglens

__all__ = ["data_provenance", "device_description", "file_sha256", "git_commit", "record_run", "run_provenance", "utc_now",
           "version_string"]

# Image folders can hold tens of thousands of files: past this many, only a digest over all of them is kept.
_MAX_LISTED_FILES = 32


def git_commit(path: str | Path | None = None) -> str | None:
    """The commit of the git checkout auglens is imported from (``+dirty`` with uncommitted changes); None
    when auglens is installed from a package, or git is missing."""
    folder = Path(path) if path is not None else Path(auglens.__file__).resolve().parent
    try:
        top = subprocess.run(["git", "-C", str(folder), "rev-parse", "--show-toplevel"], capture_output=True,
                             text=True, timeout=10)
        if top.returncode != 0 or not (Path(top.stdout.strip()) / "src" / "auglens").is_dir():
            return None  # not a checkout, or a checkout of something else that vendors auglens
        commit = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10)
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no", "--",
                                "."], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return commit.stdout.strip() + ("+dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")


def version_string() -> str:
    """``auglens 0.1.0`` plus the git commit when run from a checkout."""
    commit = git_commit()
    return f"auglens {auglens.__version__}" + (f" (git {commit})" if commit else "")


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def run_provenance(argv: list[str] | None = None, overrides: list[str] | None = None) -> dict[str, Any]:
    """The run's who/what/where: version, commit, command line, overrides, host, user, Python, start time."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        user = None
    return {
        "auglens": auglens.__version__,
        "git_commit": git_commit(),
        "command_line": list(sys.argv if argv is None else argv),
        "overrides": list(overrides or []),
        "host": socket.gethostname(),
        "user": user,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "started_at": utc_now(),
    }


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def data_provenance(source: Any) -> dict[str, Any] | None:
    """The data source actually read (a :class:`~auglens.data.datasets.DataSource`): folder and checksums.

    Up to 32 files are listed with their SHA-256; more (an image folder) are summarised by their count and
    one SHA-256 over every (relative path, file digest) pair.
    """
    if source is None:
        return None
    if source.folder is None:
        return {"name": source.name, "path": None, "note": "generated in memory"}
    files = {str(p.relative_to(source.folder)) if p.is_relative_to(source.folder) else str(p): file_sha256(p)
             for p in source.files}
    out: dict[str, Any] = {"name": source.name, "path": str(source.folder.resolve()), "n_files": len(files)}
    if len(files) <= _MAX_LISTED_FILES:
        out["files_sha256"] = files
    else:
        combined = hashlib.sha256("".join(f"{k}\0{v}\n" for k, v in sorted(files.items())).encode()).hexdigest()
        out["all_files_sha256"] = combined
    return out


def device_description(device: Any) -> str:
    """``cuda:0 (NVIDIA H100 80GB HBM3)``, ``cpu (x86_64, 16 threads)``: the device and what it is."""
    import torch

    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        return f"{device} ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({platform.machine() or 'unknown machine'}, {torch.get_num_threads()} threads)"
    return str(device)


def record_run(previous: dict[str, Any] | None, run: dict[str, Any], timings: dict[str, float]) -> dict[str, Any]:
    """The manifest's run history: ``runs`` (one entry per invocation on the folder, this one last, each with
    its own timings) and ``timings_seconds`` summed over all of them, so a resumed study reports the work of
    every invocation rather than only the last (near-zero) one."""
    runs = list((previous or {}).get("runs", [])) + [{**run, "finished_at": utc_now(), "timings_seconds": timings}]
    total: dict[str, float] = {}
    for entry in runs:
        for key, value in entry.get("timings_seconds", {}).items():
            total[key] = total.get(key, 0.0) + float(value)
    return {"runs": runs, "timings_seconds": total}

"""The artifact store: the only place auglens writes study artifacts.

Artifacts are addressed by ``(kind, key)`` where ``key`` is a hash of exactly the configuration the
artifact depends on, so a changed setting produces a new artifact instead of silently reusing an old one,
and an unchanged one is found and skipped on the next run.

Every write is atomic: bytes go to a temporary name in the destination folder, are flushed and fsynced,
then renamed over the final name. A crash (Ctrl-C, ``kill -9``, a dead Ray worker) therefore leaves either
the complete artifact or none — never a partial one that a rerun would trust. The root is a local path or
any fsspec URL (``s3://bucket/study``); remote stores write to a temporary object then move it.

Every artifact's SHA-256 and size are recorded in a sidecar ``<key>.<ext>.sha256``, written (atomically)
just *before* the artifact itself, and checked on every read: a truncated, overwritten or half-copied
artifact raises :class:`ArtifactError` naming it instead of being deserialised, and :meth:`ArtifactStore.check`
tells the orchestration which artifacts must be recomputed.

Jobs are claimed (:meth:`ArtifactStore.try_claim`) so that two processes sharing a store never compute the
same job at the same time. A claim is a small file refreshed by a heartbeat thread; it is stale — and taken
over — once its heartbeat is older than ``claim_ttl`` seconds, or at once when its process is known dead
(same host, pid gone), so a killed process never leaves a job stuck.

A full disk or a read-only folder raises :class:`StoreWriteError` naming the folder; the temporary file is
removed first, so the next run continues from the artifacts already complete.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import logging
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

TEMP_MARKER = ".tmp-"
CHECKSUM_EXT = "sha256"
CLAIMS = "claims"  # folder of the store holding job claims
#: A claim whose heartbeat is older than this (seconds) is stale; holders refresh it every quarter of it.
CLAIM_TTL = 120.0
#: A temporary file untouched this long (seconds) belongs to a dead writer even on another host.
TEMP_TTL = 3600.0
#: Errors of a write that a user fixes by freeing space or changing permissions, not by reading a traceback.
USER_FIXABLE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}

_log = logging.getLogger("auglens.store")
_HOST = re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname())[:40] or "host"


class ArtifactError(Exception):
    """An artifact is missing, has no recorded checksum, or does not match it."""

    def __init__(self, kind: str, key: str, ext: str, path: str, problem: str):
        self.kind, self.key, self.ext, self.path, self.problem = kind, key, ext, path, problem
        super().__init__(f"{kind} artifact {key}.{ext} is {problem} ({path})")


class StoreWriteError(OSError):
    """A write failed for a reason the user fixes (full disk, read-only folder); nothing partial was left."""

    def __init__(self, folder: str, error: OSError):
        code = errno.errorcode.get(error.errno, str(error.errno))
        reason = error.strerror or str(error)
        fix = ("free some space" if error.errno in (errno.ENOSPC, errno.EDQUOT)
               else "make the folder writable")
        super().__init__(error.errno, f"cannot write to {folder}: {reason} ({code}). No partial file was left; "
                                      f"{fix} or choose another --out / runtime.artifacts, then rerun the same "
                                      f"command to continue from the artifacts already complete")
        self.folder = folder

    def __str__(self) -> str:
        return self.strerror


@dataclass(frozen=True)
class ArtifactStatus:
    kind: str
    key: str
    ext: str
    problem: str | None  # None: sound; else "missing", "truncated (…)", "corrupt (…)", "without a checksum"

    @property
    def ok(self) -> bool:
        return self.problem is None


class ArtifactStore:
    def __init__(self, root: str | os.PathLike, claim_ttl: float = CLAIM_TTL):
        self.root = str(root)
        self.claim_ttl = claim_ttl
        self._fs = None
        if "://" in self.root and not self.root.startswith("file://"):
            import fsspec

            self._fs, self._base = fsspec.core.url_to_fs(self.root)
        else:
            self._base = self.root.removeprefix("file://")
            try:
                Path(self._base).mkdir(parents=True, exist_ok=True)
            except OSError as error:
                if error.errno in USER_FIXABLE_ERRNOS:
                    raise StoreWriteError(self._base, error) from error
                raise

    # -------------------------------------------------------------------------- paths
    def path(self, kind: str, key: str, ext: str) -> str:
        """Where an artifact lives: a local path, or a full URL (``s3://…``) for remote stores."""
        path = f"{self._base}/{kind}/{key}.{ext}"
        return self._fs.unstrip_protocol(path) if self._fs else path

    def _exists(self, target: str) -> bool:
        return self._fs.exists(target) if self._fs else os.path.exists(target)

    def _read(self, target: str) -> bytes:
        if self._fs:
            with self._fs.open(target, "rb") as handle:
                return handle.read()
        with open(target, "rb") as handle:
            return handle.read()

    def _remove(self, target: str) -> None:
        try:
            if self._fs:
                self._fs.rm(target)
            else:
                os.remove(target)
        except FileNotFoundError:
            pass

    def exists(self, kind: str, key: str, ext: str) -> bool:
        """Whether the artifact is present (not whether it is sound: see :meth:`check`)."""
        return self._exists(self.path(kind, key, ext))

    def delete(self, kind: str, key: str, ext: str) -> None:
        target = self.path(kind, key, ext)
        self._remove(target)
        self._remove(f"{target}.{CHECKSUM_EXT}")

    def remove_stale_temporaries(self) -> int:
        """Delete temporary files of dead writers: on this host once their process is gone, elsewhere when old.

        Safe while other processes write to the store (their temporaries are alive and fresh).
        """
        if self._fs is not None:
            return 0
        return remove_stale_temporaries(self._base)

    # -------------------------------------------------------------------------- bytes
    def write_bytes(self, kind: str, key: str, ext: str, data: bytes) -> str:
        """Write an artifact and, just before it, its checksum; both atomically."""
        target = self.path(kind, key, ext)
        record = json.dumps({"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}).encode()
        write_atomic(f"{target}.{CHECKSUM_EXT}", record, self._fs)
        write_atomic(target, data, self._fs)
        return target

    def read_bytes(self, kind: str, key: str, ext: str) -> bytes:
        """The artifact's bytes, verified against its recorded checksum; raises :class:`ArtifactError`."""
        target = self.path(kind, key, ext)
        try:
            data = self._read(target)
        except FileNotFoundError:
            raise ArtifactError(kind, key, ext, target, "missing") from None
        problem = self._problem(target, data)
        if problem:
            raise ArtifactError(kind, key, ext, target, problem)
        return data

    def check(self, kind: str, key: str, ext: str) -> ArtifactStatus:
        """Read one artifact and compare it with its checksum; ``problem`` says what is wrong, if anything."""
        target = self.path(kind, key, ext)
        try:
            data = self._read(target)
        except FileNotFoundError:
            return ArtifactStatus(kind, key, ext, "missing")
        return ArtifactStatus(kind, key, ext, self._problem(target, data))

    def sound(self, kind: str, key: str, ext: str) -> bool:
        """Whether the artifact exists and matches its checksum. A damaged one is reported (logged) and
        deleted, so that the caller recomputes it instead of failing on it."""
        status = self.check(kind, key, ext)
        if status.problem not in (None, "missing"):
            _log.warning("%s artifact %s.%s is %s: recomputing it", kind, key, ext, status.problem)
            self.delete(kind, key, ext)
        return status.ok

    def _problem(self, target: str, data: bytes) -> str | None:
        try:
            record = json.loads(self._read(f"{target}.{CHECKSUM_EXT}"))
            size, digest = int(record["bytes"]), str(record["sha256"])
        except FileNotFoundError:
            return "without a checksum"
        except (ValueError, KeyError, TypeError):
            return "without a readable checksum"
        if len(data) != size:
            return f"truncated ({len(data)} of {size} bytes)" if len(data) < size else \
                f"corrupt ({len(data)} bytes, {size} recorded)"
        if hashlib.sha256(data).hexdigest() != digest:
            return "corrupt (SHA-256 differs from the one recorded)"
        return None

    def artifacts(self, kind: str | None = None) -> Iterator[tuple[str, str, str]]:
        """Every artifact ``(kind, key, ext)`` in the store (sound or not), claims and temporaries aside."""
        kinds = [kind] if kind else sorted(self._kinds())
        for name in kinds:
            folder = f"{self._base}/{name}"
            if self._fs:
                files = [p.rsplit("/", 1)[-1] for p in self._fs.ls(folder, detail=False)] \
                    if self._fs.isdir(folder) else []
            else:
                files = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
            for file in files:
                if TEMP_MARKER in file or file.endswith(f".{CHECKSUM_EXT}") or "." not in file:
                    continue
                key, ext = file.split(".", 1)
                yield name, key, ext

    def _kinds(self) -> list[str]:
        if self._fs:
            if not self._fs.isdir(self._base):
                return []
            entries = self._fs.ls(self._base, detail=True)
            names = [e["name"].rstrip("/").rsplit("/", 1)[-1] for e in entries if e["type"] == "directory"]
        else:
            names = [p.name for p in Path(self._base).iterdir() if p.is_dir()]
        return [n for n in names if n != CLAIMS]

    # -------------------------------------------------------------------------- typed helpers
    def save_json(self, kind: str, key: str, obj: Any) -> str:
        return self.write_bytes(kind, key, "json", json.dumps(obj, indent=1, sort_keys=True, default=str).encode())

    def load_json(self, kind: str, key: str) -> Any:
        return json.loads(self.read_bytes(kind, key, "json"))

    def save_tensors(self, kind: str, key: str, tensors: dict[str, torch.Tensor],
                     metadata: dict[str, str] | None = None) -> str:
        from safetensors.torch import save

        tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        return self.write_bytes(kind, key, "safetensors", save(tensors, metadata=metadata))

    def load_tensors(self, kind: str, key: str, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
        from safetensors.torch import load

        tensors = load(self.read_bytes(kind, key, "safetensors"))
        return {k: v.to(device) for k, v in tensors.items()}

    def save_torch(self, kind: str, key: str, obj: Any) -> str:
        """Resume snapshots (tensors, numbers, lists, dicts only): loaded back with ``weights_only=True``."""
        import torch

        buffer = io.BytesIO()
        torch.save(obj, buffer)
        return self.write_bytes(kind, key, "pt", buffer.getvalue())

    def load_torch(self, kind: str, key: str) -> Any:
        import torch

        return torch.load(io.BytesIO(self.read_bytes(kind, key, "pt")), weights_only=True, map_location="cpu")

    def save_table(self, kind: str, key: str, frame) -> str:
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        return self.write_bytes(kind, key, "parquet", buffer.getvalue())

    def load_table(self, kind: str, key: str):
        import pandas as pd

        return pd.read_parquet(io.BytesIO(self.read_bytes(kind, key, "parquet")))

    # -------------------------------------------------------------------------- claims
    def _claim_path(self, name: str) -> str:
        return f"{self._base}/{CLAIMS}/{name}.claim"

    def claim_holder(self, name: str) -> dict[str, Any] | None:
        """Who holds the claim ``name`` (``host``, ``pid``, ``heartbeat``, ``token``), or None when nobody does."""
        try:
            return _parse_claim(self._read(self._claim_path(name)))
        except FileNotFoundError:
            return None

    def is_stale(self, holder: dict[str, Any]) -> bool:
        """A claim expires when its heartbeat is older than ``claim_ttl``, or at once when its process is gone."""
        if time.time() - holder.get("heartbeat", 0.0) > self.claim_ttl:
            return True
        return holder.get("host") == _HOST and not _process_alive(holder.get("pid", -1))

    def try_claim(self, name: str) -> Claim | None:
        """Take the claim ``name`` (one job) unless a live process holds it; None when one does.

        The caller computes the job only while holding the claim, and checks first whether the job's
        artifact appeared meanwhile. A stale claim (dead holder) is broken and taken over.
        """
        path = self._claim_path(name)
        for _ in range(3):
            claim = Claim(self, name, path)
            if self._create_exclusive(path, claim.record()):
                claim.start()
                return claim
            try:
                holder = _parse_claim(self._read(path))
            except FileNotFoundError:
                continue  # released meanwhile: try again
            if holder is None:
                # Created but not yet written (or unreadable): fresh unless its file is old.
                if not self._older_than(path, self.claim_ttl):
                    return None
            elif not self.is_stale(holder):
                return None
            self._break_claim(path, holder)
        return None

    def _create_exclusive(self, path: str, data: bytes) -> bool:
        if self._fs is not None:
            self._fs.makedirs(os.path.dirname(path), exist_ok=True)
            try:
                with self._fs.open(path, "xb") as handle:
                    handle.write(data)
                return True
            except FileExistsError:
                return False
            except (ValueError, NotImplementedError):
                # No exclusive create on this filesystem: write, then read back (best effort, documented).
                if self._fs.exists(path):
                    return False
                self._fs.pipe_file(path, data)
                return _parse_claim(self._fs.cat_file(path)) == _parse_claim(data)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        except OSError as error:
            if error.errno in USER_FIXABLE_ERRNOS:
                raise StoreWriteError(os.path.dirname(path), error) from error
            raise
        try:
            os.write(descriptor, data)
            os.fsync(descriptor)
        except BaseException as error:
            os.close(descriptor)
            os.remove(path)  # a half-written claim would look fresh to everyone until it expires
            if isinstance(error, OSError) and error.errno in USER_FIXABLE_ERRNOS:
                raise StoreWriteError(os.path.dirname(path), error) from error
            raise
        os.close(descriptor)
        return True

    def _older_than(self, path: str, seconds: float) -> bool:
        try:
            if self._fs is not None:
                info = self._fs.info(path)
                modified = info.get("mtime") or info.get("created") or info.get("LastModified")
                if modified is None:
                    return True
                stamp = modified.timestamp() if hasattr(modified, "timestamp") else float(modified)
            else:
                stamp = os.path.getmtime(path)
        except FileNotFoundError:
            return True
        return time.time() - stamp > seconds

    def _break_claim(self, path: str, stale: dict[str, Any] | None) -> None:
        """Remove a stale claim — only the one judged stale, not a fresh one another process made meanwhile."""
        if self._fs is not None:
            self._remove(path)  # no atomic rename on object stores: a race here only duplicates work
            return
        tomb = f"{path}.broken-{uuid.uuid4().hex}"
        try:
            os.rename(path, tomb)  # atomic: of several processes breaking it, one wins
        except FileNotFoundError:
            return
        try:
            with open(tomb, "rb") as handle:
                moved = _parse_claim(handle.read())
            if stale is not None and moved is not None and moved.get("token") != stale.get("token"):
                try:  # a fresh claim was made in between: put it back unless yet another one exists
                    os.link(tomb, path)
                except FileExistsError:
                    pass
        finally:
            os.remove(tomb)


class Claim:
    """A held job claim: refreshed by a daemon thread until :meth:`release` (or the end of a ``with``)."""

    def __init__(self, store: ArtifactStore, name: str, path: str):
        self.store, self.name, self.path = store, name, path
        self.token = uuid.uuid4().hex
        self.started = time.time()
        self.lost = False  # set when another process took the claim over (we were judged stale)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def record(self) -> bytes:
        return json.dumps({"token": self.token, "host": _HOST, "pid": os.getpid(), "started": self.started,
                           "heartbeat": time.time()}).encode()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._beat, name=f"auglens-claim-{self.name}", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.store.claim_ttl / 4):
            try:
                self.refresh()
            except Exception:  # a heartbeat that cannot write is retried; the claim may expire meanwhile
                continue
            if self.lost:
                return

    def held(self) -> bool:
        try:
            holder = _parse_claim(self.store._read(self.path))
        except FileNotFoundError:
            return False
        return holder is not None and holder.get("token") == self.token

    def refresh(self) -> None:
        if not self.held():
            self.lost = True
            return
        write_atomic(self.path, self.record(), self.store._fs)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        if self.held():
            self.store._remove(self.path)

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _parse_claim(data: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(data)
    except ValueError:
        return None
    return record if isinstance(record, dict) and "token" in record else None


def _process_alive(pid: int) -> bool:
    """Whether a process of this host runs (a zombie — killed, not yet reaped — counts as dead)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def _temporary_name(target: str) -> str:
    return f"{target}{TEMP_MARKER}{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:12]}"


_TEMP_OWNER = re.compile(re.escape(TEMP_MARKER) + r"(?P<host>[A-Za-z0-9_]+)-(?P<pid>\d+)-[0-9a-f]+$")


def remove_stale_temporaries(folder: str | os.PathLike) -> int:
    """Delete the temporaries under ``folder`` whose writer is dead (this host) or that are older than TEMP_TTL."""
    removed = 0
    now = time.time()
    for path in Path(folder).rglob(f"*{TEMP_MARKER}*"):
        if not path.is_file():
            continue
        owner = _TEMP_OWNER.search(path.name)
        dead = owner is not None and owner["host"] == _HOST and not _process_alive(int(owner["pid"]))
        try:
            if dead or now - path.stat().st_mtime > TEMP_TTL:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            pass  # renamed into place or removed by its writer meanwhile
    return removed


def write_atomic(target: str, data: bytes, fs=None, durable: bool = True) -> None:
    """Write ``data`` to ``target`` so readers see all of it or nothing (temporary name, fsync, rename).

    ``durable=False`` skips the fsync: a reader still never sees part of a file, but a power cut may lose it.
    For files that are cheap to regenerate and many (the report's thousand CAM-browser images, where the
    fsyncs took most of the report's time).

    A full disk or a read-only folder raises :class:`StoreWriteError` after the temporary is removed.
    """
    temporary = _temporary_name(target)
    folder = os.path.dirname(target) or "."
    try:
        if fs is not None:
            fs.makedirs(folder, exist_ok=True)
            with fs.open(temporary, "wb") as handle:
                handle.write(data)
            fs.mv(temporary, target)
        else:
            os.makedirs(folder, exist_ok=True)
            with open(temporary, "wb") as handle:
                handle.write(data)
                if durable:
                    handle.flush()
                    os.fsync(handle.fileno())
            os.replace(temporary, target)
    except BaseException as error:
        _discard(temporary, fs)
        if isinstance(error, OSError) and error.errno in USER_FIXABLE_ERRNOS:
            raise StoreWriteError(folder, error) from error
        raise


def _discard(temporary: str, fs=None) -> None:
    """Remove a failed write's temporary file, if there is one; a failure to remove it is not the error."""
    try:
        if fs is None:
            os.remove(temporary)
        elif fs.exists(temporary):
            fs.rm(temporary)
    except Exception:
        pass


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    write_atomic(str(path), text.encode())

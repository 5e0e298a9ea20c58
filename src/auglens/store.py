"""The artifact store: the only place auglens writes study artifacts.

Artifacts are addressed by ``(kind, key)`` where ``key`` is a hash of exactly the configuration the
artifact depends on, so a changed setting produces a new artifact instead of silently reusing an old one,
and an unchanged one is found and skipped on the next run.

Every write is atomic: bytes go to a temporary name in the destination folder, are flushed and fsynced,
then renamed over the final name. A crash (Ctrl-C, ``kill -9``, a dead Ray worker) therefore leaves either
the complete artifact or none — never a partial one that a rerun would trust. The root is a local path or
any fsspec URL (``s3://bucket/study``); remote stores write to a temporary object then move it.
"""

from __future__ import annotations

import io
import json
import os
import uuid
from pathlib import Path
from typing import Any

import torch

TEMP_MARKER = ".tmp-"


class ArtifactStore:
    def __init__(self, root: str | os.PathLike):
        self.root = str(root)
        self._fs = None
        if "://" in self.root and not self.root.startswith("file://"):
            import fsspec

            self._fs, self._base = fsspec.core.url_to_fs(self.root)
        else:
            self._base = self.root.removeprefix("file://")
            Path(self._base).mkdir(parents=True, exist_ok=True)

    # -------------------------------------------------------------------------- paths
    def path(self, kind: str, key: str, ext: str) -> str:
        """Where an artifact lives: a local path, or a full URL (``s3://…``) for remote stores."""
        path = f"{self._base}/{kind}/{key}.{ext}"
        return self._fs.unstrip_protocol(path) if self._fs else path

    def exists(self, kind: str, key: str, ext: str) -> bool:
        target = self.path(kind, key, ext)
        return self._fs.exists(target) if self._fs else os.path.exists(target)

    def delete(self, kind: str, key: str, ext: str) -> None:
        target = self.path(kind, key, ext)
        if self._fs:
            if self._fs.exists(target):
                self._fs.rm(target)
        elif os.path.exists(target):
            os.remove(target)

    def remove_stale_temporaries(self) -> int:
        """Delete temporary files left by a killed writer (local stores; call only with no writer running)."""
        if self._fs is not None:
            return 0
        stale = [p for p in Path(self._base).rglob(f"*{TEMP_MARKER}*") if p.is_file()]
        for path in stale:
            path.unlink()
        return len(stale)

    # -------------------------------------------------------------------------- bytes
    def write_bytes(self, kind: str, key: str, ext: str, data: bytes) -> str:
        target = self.path(kind, key, ext)
        write_atomic(target, data, self._fs)
        return target

    def read_bytes(self, kind: str, key: str, ext: str) -> bytes:
        target = self.path(kind, key, ext)
        if self._fs:
            with self._fs.open(target, "rb") as handle:
                return handle.read()
        with open(target, "rb") as handle:
            return handle.read()

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
        buffer = io.BytesIO()
        torch.save(obj, buffer)
        return self.write_bytes(kind, key, "pt", buffer.getvalue())

    def load_torch(self, kind: str, key: str) -> Any:
        return torch.load(io.BytesIO(self.read_bytes(kind, key, "pt")), weights_only=True, map_location="cpu")

    def save_table(self, kind: str, key: str, frame) -> str:
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        return self.write_bytes(kind, key, "parquet", buffer.getvalue())

    def load_table(self, kind: str, key: str):
        import pandas as pd

        return pd.read_parquet(io.BytesIO(self.read_bytes(kind, key, "parquet")))


def write_atomic(target: str, data: bytes, fs=None) -> None:
    """Write ``data`` to ``target`` so readers see all of it or nothing (temporary name, fsync, rename)."""
    temporary = f"{target}{TEMP_MARKER}{uuid.uuid4().hex}"
    if fs is not None:
        fs.makedirs(os.path.dirname(target), exist_ok=True)
        with fs.open(temporary, "wb") as handle:
            handle.write(data)
        fs.mv(temporary, target)
        return
    os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    write_atomic(str(path), text.encode())

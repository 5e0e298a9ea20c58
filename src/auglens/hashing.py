"""A stable content hash, for the keys of content-keyed artifacts and result caches."""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["stable_hash"]


def stable_hash(obj: Any) -> str:
    """16 hex digits of sha256 over canonical JSON."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]

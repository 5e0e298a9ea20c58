"""Content keys of the report's outputs, so a rebuild redraws and recomputes only what its inputs changed.

Drawing is most of a report's time (a default study: ~40 s of figures and CAM-browser images against ~2 s
of statistics, half of that the bootstrap and permutation tests), and a rerun of a finished study usually
changes no table a figure shows. Every drawn output (a figure's PNG + SVG, a chunk of browser images) and
every costly statistics table gets a key: a SHA-256 over the function that makes it, the data it is given
(:func:`fingerprint`), and the code (:func:`code_version`: auglens's version and the source of the drawing
modules and of the function's own module). ``report/build.json`` maps each output file to its key; a build
whose key for an output matches the recorded one, with the files still there, keeps them untouched.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Callable, Mapping
from functools import cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import auglens
from auglens.store import write_text_atomic

__all__ = ["BUILD_RECORD", "BuildRecord", "code_version", "fingerprint", "output_key"]

#: The record of a build's outputs and their keys, under ``report/``.
BUILD_RECORD = "build.json"
#: Modules whose code decides what a drawn file looks like (the style, every figure, the CAM overlays).
_DRAWING_MODULES = ("auglens.report.style", "auglens.report.figures", "auglens.report.cam_grid")


@cache
def code_version(module: str) -> str:
    """auglens's version and a digest of the source of ``module`` and of the drawing modules (read, not
    imported): a changed figure or statistic redraws or recomputes even in a checkout whose version number
    did not move."""
    digest = hashlib.sha256(auglens.__version__.encode())
    for name in dict.fromkeys((*_DRAWING_MODULES, module)):
        digest.update(Path(find_spec(name).origin).read_bytes())
    return digest.hexdigest()[:16]


def _feed(digest, value: Any) -> None:
    """Add ``value`` to ``digest``, tagged by kind so that e.g. ``1``, ``1.0``, ``"1"`` and ``[1]`` differ."""
    if value is None or isinstance(value, (bool, int, str, np.bool_, np.integer)):
        digest.update(f"{type(value).__name__}:{value!r};".encode())
    elif isinstance(value, (float, np.floating)):
        digest.update(f"float:{float(value).hex() if not math.isnan(value) else 'nan'};".encode())
    elif isinstance(value, np.ndarray):
        array = np.ascontiguousarray(value)
        digest.update(f"ndarray:{array.dtype.str}:{array.shape};".encode())
        digest.update(array.tobytes() if array.dtype != object else repr(array.tolist()).encode())
    elif isinstance(value, pd.DataFrame):
        digest.update(f"frame:{list(map(str, value.columns))}:{[str(t) for t in value.dtypes]}:{value.shape};".encode())
        # hash_pandas_object: one 64-bit hash per row over its values and index (strings included, vectorised).
        digest.update(pd.util.hash_pandas_object(value, index=True).to_numpy().tobytes())
    elif isinstance(value, pd.Series):
        digest.update(f"series:{value.name!r}:{value.dtype};".encode())
        digest.update(pd.util.hash_pandas_object(value, index=True).to_numpy().tobytes())
    elif isinstance(value, Mapping):
        digest.update(f"mapping:{len(value)};".encode())
        for key, item in value.items():  # insertion order matters: it is the legend's and the colours' order
            _feed(digest, key)
            _feed(digest, item)
    elif isinstance(value, (list, tuple)):
        digest.update(f"{type(value).__name__}:{len(value)};".encode())
        for item in value:
            _feed(digest, item)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        digest.update(f"{type(value).__qualname__};".encode())
        for f in dataclasses.fields(value):
            _feed(digest, f.name)
            _feed(digest, getattr(value, f.name))
    elif type(value).__module__ == "torch" and hasattr(value, "numpy"):  # a tensor, without importing torch
        _feed(digest, value.detach().cpu().numpy())
    else:
        raise TypeError(f"cannot fingerprint a {type(value).__name__} (a figure input): expected numbers, strings, "
                        "arrays, tensors, data frames, series, dataclasses, or lists, tuples and mappings of them")


def fingerprint(value: Any) -> str:
    """SHA-256 (hex) of ``value``'s content: equal for equal data, whatever the objects' identity."""
    digest = hashlib.sha256()
    _feed(digest, value)
    return digest.hexdigest()


def output_key(function: Callable[..., Any], inputs: Any) -> str:
    """The key of what ``function(*inputs)`` makes (a figure, files, a table): its name, its inputs' content
    and the code (:func:`code_version`)."""
    return fingerprint((code_version(function.__module__), f"{function.__module__}.{function.__qualname__}", inputs))


class BuildRecord:
    """``report/build.json``: each drawn output's key, the previous build's read at start, this build's written
    at the end (only outputs this build produced, so a removed figure leaves no entry behind)."""

    def __init__(self, root: Path):
        self.path = root / BUILD_RECORD
        try:
            previous = json.loads(self.path.read_text()) if self.path.is_file() else {}
        except (json.JSONDecodeError, UnicodeDecodeError):  # a damaged record: everything is redrawn
            previous = {}
        outputs = previous.get("outputs") if isinstance(previous, dict) else None
        self.previous: dict[str, str] = outputs if isinstance(outputs, dict) else {}
        self.current: dict[str, str] = {}

    def unchanged(self, key: str, files: list[Path]) -> bool:
        """Whether every one of ``files`` was drawn with ``key`` and is still there."""
        return all(self.previous.get(self._name(f)) == key and f.is_file() for f in files)

    def record(self, key: str, files: list[Path]) -> None:
        for f in files:
            self.current[self._name(f)] = key

    def _name(self, path: Path) -> str:
        return path.relative_to(self.path.parent).as_posix()

    def save(self) -> None:
        text = json.dumps({"auglens": auglens.__version__, "outputs": dict(sorted(self.current.items()))},
                          indent=1) + "\n"
        if not (self.path.is_file() and self.path.read_text() == text):
            write_text_atomic(self.path, text)

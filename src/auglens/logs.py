"""Logging of the command line: console messages by verbosity, and one log file per run in its results folder.

Library modules log through ``logging.getLogger("auglens....")``; nothing is printed unless a handler is
installed, which :func:`setup` does for the command line. Records are kept in memory from the start, and
:func:`log_to_folder` writes them, and every later one, to ``<folder>/logs/<command>-<UTC time>.log`` once
the results folder is known to be wanted (after the checks, so a rejected config leaves no folder behind).
Console messages go through ``tqdm.write`` so they do not tear progress bars.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["LOGGER", "close", "collecting", "crash_log", "log_path", "log_to_folder", "setup"]

LOGGER = logging.getLogger("auglens")
_FILE_FORMAT = logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S")


class _Console(logging.Handler):
    """Plain messages on stderr (``warning:``/``error:`` prefixed), written around any active progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        prefix = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
        try:
            tqdm.write(f"auglens: {prefix}{record.getMessage()}", file=sys.stderr)
        except Exception:  # never let a console problem end the run
            self.handleError(record)


class _Buffer(logging.Handler):
    """Every record until the log file exists."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


_state: dict[str, object] = {"command": "auglens", "file": None, "buffer": None}


def setup(verbosity: int = 0, command: str = "auglens") -> None:
    """Console at INFO (``verbosity`` 0), DEBUG (> 0) or WARNING (< 0); every record kept for the log file."""
    for handler in list(LOGGER.handlers):
        LOGGER.removeHandler(handler)
        handler.close()
    LOGGER.setLevel(logging.DEBUG)
    LOGGER.propagate = False
    console = _Console(logging.DEBUG if verbosity > 0 else logging.INFO if verbosity == 0 else logging.WARNING)
    buffer = _Buffer()
    LOGGER.addHandler(console)
    LOGGER.addHandler(buffer)
    _state.update(command=command, file=None, buffer=buffer)


def log_to_folder(folder: str | Path) -> Path | None:
    """Start ``<folder>/logs/<command>-<UTC time>.log`` with every record so far; returns its path.

    Remote folders (URLs) get no log file; None is returned.
    """
    if "://" in str(folder):
        return None
    logs = Path(folder) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    return _start_file(logs / f"{_state['command']}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.log")


def _start_file(path: Path) -> Path:
    """Log every record to ``path`` from now on, after the ones buffered since :func:`setup`."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(_FILE_FORMAT)
    buffer = _state["buffer"]
    if isinstance(buffer, _Buffer):
        for record in buffer.records:
            handler.handle(record)
        LOGGER.removeHandler(buffer)
        _state["buffer"] = None
    LOGGER.addHandler(handler)
    _state["file"] = path
    return path


def collecting() -> bool:
    """Whether the command line set logging up (:func:`setup`) and records wait for a log file: a library
    caller that did not gets no log file in its results folder."""
    return isinstance(_state["buffer"], _Buffer)


def log_path() -> Path | None:
    """The current log file, if one was started."""
    path = _state["file"]
    return path if isinstance(path, Path) else None


def crash_log() -> Path:
    """The log file to hold a traceback: the run's own, else a new one in the temporary folder."""
    path = log_path()
    if path is not None:
        return path
    handle = tempfile.NamedTemporaryFile("w", prefix=f"auglens-{_state['command']}-", suffix=".log", delete=False)
    handle.close()
    return _start_file(Path(handle.name))


def close() -> None:
    """Stop writing the log file (at the end of a command); console messages continue."""
    for handler in list(LOGGER.handlers):
        if isinstance(handler, (logging.FileHandler, _Buffer)):
            LOGGER.removeHandler(handler)
            handler.close()
    _state.update(file=None, buffer=None)


def reset() -> None:
    """Hand ``auglens`` records back to the root logger (as before :func:`setup`): for a library caller (or a
    test) that runs a command in-process and then uses the library."""
    close()
    for handler in list(LOGGER.handlers):
        LOGGER.removeHandler(handler)
        handler.close()
    LOGGER.propagate = True
    LOGGER.setLevel(logging.NOTSET)

"""The one exception type for a user's mistake found at run time (a file, a checkpoint, a device).

Config mistakes raise :class:`auglens.config.ConfigError` (exit code 2); a :class:`UserError` is reported by
the command line as one message without a traceback (exit code 1). Anything else is a bug or an
environment failure: the command line prints a short message and writes the traceback to the run's log.
"""

from __future__ import annotations

__all__ = ["UserError"]


class UserError(RuntimeError):
    """A problem the user can fix; the message says what was expected, what was found and what to do."""

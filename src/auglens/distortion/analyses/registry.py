"""The registry of distortion analyses: each registers its function with its config section and figure.

An analysis is one module of :mod:`auglens.distortion.analyses`: a function ``Runner -> {table: DataFrame}``,
the dataclass of its ``[<name>]`` config section, a figure ``(tables, config) -> Figure`` and, optionally,
cross-field checks ``config -> [error messages]``. The distortion config's sections, the valid names of
``analyses`` and the figure of each analysis are all read from here, so adding an analysis touches its own
module (and its test) alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from auglens.registry import Registry

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from auglens.distortion.runner import Runner

__all__ = ["ANALYSES", "Analysis", "analysis_names", "register_analysis"]


@dataclass(frozen=True)
class Analysis:
    name: str
    run: Callable[[Runner], dict[str, pd.DataFrame]]
    config: type  # dataclass of the [name] config section
    figure: Callable[[dict[str, pd.DataFrame], Any], Figure]
    validate: Callable[[Any], list[str]] | None = None  # cross-field checks on the whole config
    default: bool = True  # run by default (False: needs the user's files, e.g. cue-conflict images)

    def __call__(self, runner: Runner) -> dict[str, pd.DataFrame]:
        return self.run(runner)


ANALYSES: Registry[Analysis] = Registry("distortion analysis")
_ORDER: list[str] = []  # registration order: the paper's order, in which analyses run by default


def register_analysis(name: str, config: type, figure: Callable, validate: Callable | None = None,
                      default: bool = True) -> Callable:
    """Decorator registering ``run`` as the analysis ``name`` with its config section and figure."""
    def decorator(run: Callable[[Runner], dict[str, pd.DataFrame]]) -> Callable:
        ANALYSES.register(name)(Analysis(name, run, config, figure, validate, default))
        _ORDER.append(name)
        return run

    return decorator


def analysis_names(default_only: bool = False) -> list[str]:
    """Registered analyses in the paper's order (only those run by default when ``default_only``)."""
    return [n for n in _ORDER if not default_only or ANALYSES.get(n).default]

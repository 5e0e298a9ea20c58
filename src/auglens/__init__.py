"""auglens: what does a data augmentation change in what an image classifier has learned?

Stages (one sub-package each, dependencies flow one way):
data -> augment -> models -> train -> cam -> metrics -> analysis -> report; ``config``, ``store``, ``study``
and ``cli`` sit on top.

The entry points of a notebook, each the function a command-line subcommand calls (docs/api.md):

- :func:`load_config` — a study config from TOML, with ``key=value`` overrides (``auglens validate``),
- :func:`run_study` — run or resume a study into a folder (``auglens run``),
- :func:`open_study` — a finished study's tables, models by name and test data as the models saw it,
- :func:`build_report` — the HTML report of a results folder (``auglens report``),
- :func:`compare_checkpoints` — your own weights files compared (``auglens compare --arch``),
- :func:`compare_study` — a study's models compared by name (``auglens compare --study``),
- :func:`run_distortion` — the distortion paper's analyses (``auglens distortion``).

They are imported on first use, so ``import auglens`` (and the command line's start) does not load torch.
"""

import importlib as _importlib

__version__ = "0.1.0"

#: Exported name -> the module that defines it (imported on first access).
_ENTRY_POINTS = {
    "load_config": ("auglens.config", "load"),
    "run_study": ("auglens.study.run", "run_study"),
    "open_study": ("auglens.study.opened", "open_study"),
    "build_report": ("auglens.report", "build_report"),
    "compare_checkpoints": ("auglens.compare", "compare_checkpoints"),
    "compare_study": ("auglens.compare", "compare_study"),
    "run_distortion": ("auglens.distortion", "run_distortion"),
}

__all__ = [*_ENTRY_POINTS, "__version__"]


def __getattr__(name: str) -> object:
    if name in _ENTRY_POINTS:
        module, attribute = _ENTRY_POINTS[name]
        value = getattr(_importlib.import_module(module), attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'auglens' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*(name for name in globals() if not name.startswith("_")), *__all__})

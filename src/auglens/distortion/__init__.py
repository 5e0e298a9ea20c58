"""The analyses of "On the Effects of Artificial Data Modification" (Marcu & Prügel-Bennett, ICML 2022).

Pure, batched maths (one module per family, each citing its equation):

- :mod:`~auglens.distortion.distortions`: grid shuffle, CutOcclusion (unrestricted / in-bounds), Fourier
  and saliency occlusion masks, uniform and non-uniform occluders;
- :mod:`~auglens.distortion.interference`: the Data Interference index (Eq. 1);
- :mod:`~auglens.distortion.occlusion`: iOcclusion (Eq. 2) and CAM-based saliency masks;
- :mod:`~auglens.distortion.affinity`: affinity, Diversity and MixDiversity;
- :mod:`~auglens.distortion.simplicity`: stacked simple/complex images;
- :mod:`~auglens.distortion.cue_conflict`: shape/texture cue conflict and shape bias.

The mixed-sample augmentations (MixUp, FMix, Random Masks, box mixing; reformulated objective; partners
from another data set) live in :mod:`auglens.augment.mixed`.

Orchestration: :func:`run_analysis` runs one analysis over several runs, resumably, and writes its tables
(CSV) and figure (PNG + SVG) to ``out_dir/distortion/<analysis>/``; :func:`run_distortion` runs the
analyses a config lists (:func:`run_from_toml`: read from TOML, ``examples/distortion-quick.toml``), their
models trained through the study's runner, and writes the paper-layout tables
(:mod:`~auglens.distortion.paper_tables`: ``out_dir/distortion/paper_tables.md`` and ``paper_*.csv``).
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from auglens.config import dump_toml
from auglens.distortion.analyses import ANALYSES, analysis_names, summarise
from auglens.distortion.config import DistortionConfig, coerce_config, load, to_dict
from auglens.distortion.paper_tables import paper_tables, write_paper_tables
from auglens.distortion.runner import Runner, timer
from auglens.store import write_atomic, write_text_atomic

__all__ = ["ANALYSES", "analysis_names", "DistortionConfig", "load", "paper_tables", "run_analysis", "run_distortion",
           "run_from_toml", "summarise", "write_paper_tables"]


def run_analysis(name: str, config: DistortionConfig | dict[str, Any], out_dir: str | Path,
                 runner: Runner | None = None) -> dict[str, pd.DataFrame]:
    """Run (or resume) one analysis; write ``out_dir/distortion/<name>/`` (tables, figure, manifest); return its tables.

    ``config``: a :class:`DistortionConfig` or a dict in the TOML layout (validated; all problems reported
    together). ``runner`` lets several analyses share one process's loaded data.
    """
    analysis = ANALYSES.get(name)  # unknown name -> error listing the valid ones
    config = coerce_config(config)
    runner = runner or Runner(config, out_dir)
    elapsed = timer()
    tables = analysis(runner)
    folder = runner.root / name
    folder.mkdir(parents=True, exist_ok=True)
    for table, frame in tables.items():
        write_atomic(str(folder / f"{table}.csv"), frame.to_csv(index=False).encode())
    _write_figure(name, tables, config, folder)
    _write_manifest(folder, name, config, runner, tables, elapsed())
    return tables


def run_distortion(config: DistortionConfig | dict[str, Any], out_dir: str | Path, analyses: list[str] | None = None,
                   backend: str | None = None, provenance: dict | None = None) -> dict[str, dict[str, pd.DataFrame]]:
    """Run a distortion config's analyses (or the ones named) into ``out_dir/distortion/``, resumably.

    ``config``: a :class:`DistortionConfig` or a dict in the TOML layout (validated). ``backend``: where the
    models train, ``"local"`` or ``"ray"`` (default: ``runtime.backend``); the tables are the same either way.
    Writes the resolved config, each analysis's tables, figure and manifest, and the paper-layout tables.
    """
    config = coerce_config(config)
    wanted = analyses or list(config.analyses)
    for name in wanted:
        ANALYSES.get(name)
    runner = Runner(config, out_dir, backend, provenance)
    if not config.runtime.artifacts:  # our own store: a killed earlier run may have left temporaries
        runner.store.remove_stale_temporaries()
    write_text_atomic(runner.root / "config.toml", dump_toml(config))
    tables = {name: run_analysis(name, config, out_dir, runner) for name in wanted}
    write_paper_tables(runner.root, runner.root)
    return tables


def run_from_toml(path: str | Path, out_dir: str | Path, overrides: list[str] | None = None,
                  analyses: list[str] | None = None, backend: str | None = None) -> dict[str, dict[str, pd.DataFrame]]:
    """Load a distortion config (TOML + ``key=value`` overrides) and run its analyses (:func:`run_distortion`)."""
    return run_distortion(load(path, overrides), out_dir, analyses, backend)


def _write_figure(name: str, tables: dict[str, pd.DataFrame], config: DistortionConfig, folder: Path) -> None:
    from auglens.report.style import save_figure, style

    with style():
        save_figure(ANALYSES.get(name).figure(tables, config), folder, name)


def _write_manifest(folder: Path, name: str, config: DistortionConfig, runner: Runner,
                    tables: dict[str, pd.DataFrame], seconds: float) -> None:
    import dataclasses

    import numpy as np
    import torch

    import auglens
    from auglens.config import stable_hash

    manifest = {
        "analysis": name,
        "auglens": auglens.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "versions": {"torch": torch.__version__, "numpy": np.__version__, "pandas": pd.__version__},
        "device": str(runner.device),
        "backend": runner.backend,
        "compute": dataclasses.asdict(runner.compute),
        "config_fingerprint": stable_hash(to_dict(config)),
        "config": to_dict(config),
        "seeds": {"runs": config.runs.seeds, "distortion_seed": config.runs.distortion_seed,
                  "init_seed": config.model.init_seed, "split_seed": config.split.seed,
                  "sampling_seed": config.split.sampling_seed},
        "tables": sorted(f"{t}.csv" for t in tables),
        "seconds": seconds,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_text_atomic(folder / "manifest.json", json.dumps(manifest, indent=1, default=str))

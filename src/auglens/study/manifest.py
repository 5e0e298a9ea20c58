"""What a finished study records beside its tables: ``manifest.json`` and the summary printed by the CLI.

The manifest says where the results came from (:mod:`auglens.provenance`): auglens's version and git commit,
the device, the data files read (path and SHA-256), and one entry per run on the folder (command line,
overrides, host, start and end time, stage timings); ``timings_seconds`` sums the runs, so a resumed study
reports all the work that produced it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from auglens.config import Config
from auglens.store import write_text_atomic
from auglens.study.plan import StudyPlan
from auglens.study.runtime import ComputeSpec
from auglens.study.tables import StudyResult, metric_value_columns

__all__ = ["OPTIONAL_TABLES", "TABLES", "pretrained_record", "summary_table", "write_manifest"]

#: Files a study writes beside its artifacts; the manifest records the SHA-256 of each (``auglens verify``).
TABLES = ("performance.csv", "training_history.csv", "confusion_matrices.csv", "cam_metrics.parquet",
          "aug_metrics.parquet", "test_set.safetensors")
#: Tables written when their analysis is enabled ([faithfulness], [cka]); recorded when present.
OPTIONAL_TABLES = ("model_faithfulness.parquet", "aug_faithfulness.parquet", "model_cka.csv", "aug_cka.csv")


def write_manifest(out_dir: Path, config: Config, plan: StudyPlan, timings: dict[str, float],
                   device: torch.device, backend: str, compute: ComputeSpec, run: dict | None = None) -> None:
    import auglens
    from auglens.data.datasets import locate_dataset
    from auglens.provenance import data_provenance, device_description, record_run, run_provenance

    run = run or run_provenance()

    def digest(name):
        path = out_dir / name
        return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None

    manifest = {
        "auglens": auglens.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "versions": {"torch": torch.__version__, "torchvision": _torchvision_version(),
                     "numpy": np.__version__, "pandas": pd.__version__},
        "git_commit": run.get("git_commit"),
        "device": (device_description(device) if backend == "local"
                   else f"ray ({config.runtime.ray_address or 'local'})"),
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        # Model and torch's CPU capability: CPU results are identical only on the same capability.
        "cpu": run.get("cpu"),
        "backend": backend,
        # The resolved settings that change results (part of the artifact keys); a rerun checks them.
        "compute": dataclasses.asdict(compute),
        "config_fingerprint": config.fingerprint(),
        "seeds": {"starting_states": config.study.seeds, "init_seed": config.model.init_seed,
                  "split_seed": config.split.seed, "sampling_seed": config.split.sampling_seed},
        # Where every model started: None (from scratch), or the pretrained file and its SHA-256 (in every key).
        "pretrained": pretrained_record(config.model.pretrained, plan.train_jobs[0].spec),
        "normalisation": plan.train_jobs[0].spec.normalisation,
        "models": {job.model.model_id: {"train_key": job.model.key, "cam_key": job.key} for job in plan.models},
        "pairs": {f"{p.other.model.model_id}~{p.baseline.model.model_id}": p.key for p in plan.pairs},
        "faithfulness": {job.cams.model.model_id: job.key for job in plan.faithfulness},
        "cka": {f"{job.other.model_id}~{job.baseline.model_id}": job.key for job in plan.cka},
        "tables_sha256": {name: digest(name) for name in (*TABLES, *OPTIONAL_TABLES)
                          if name in TABLES or (out_dir / name).is_file()},
        "data_source": data_provenance(locate_dataset(config.data.name, config.data.root)),
    }
    path = out_dir / "manifest.json"
    try:
        previous = json.loads(path.read_text()) if path.is_file() else None
    except json.JSONDecodeError:  # a damaged manifest loses its history, not the run
        previous = None
    manifest.update(record_run(previous, run, timings))
    write_text_atomic(out_dir / "manifest.json", json.dumps(manifest, indent=1))


def pretrained_record(setting: str | None, spec) -> dict | None:
    """The starting weights of a training spec, for a record: the ``model.pretrained`` setting, the file read
    and its SHA-256; None for a training from scratch."""
    if spec.pretrained_sha256 is None:
        return None
    return {"setting": setting, "file": spec.pretrained_path, "sha256": spec.pretrained_sha256}


def _torchvision_version() -> str | None:
    """The installed torchvision's version, read without importing it (about 2 s, which a rerun of a finished
    study would pay for this one string); the same string whether or not the run imported it."""
    import importlib.metadata

    try:
        return importlib.metadata.version("torchvision")
    except importlib.metadata.PackageNotFoundError:
        return None


def summary_table(result: StudyResult) -> str:
    """Per augmentation: accuracy (mean ± std over seeds; the value alone for one model) and the median of each
    seed-averaged metric."""
    perf = result.performance.groupby("augmentation", sort=False)["accuracy"].agg(["mean", "std"])
    # One seed has no spread: its accuracy is shown alone, not as "± 0.0000".
    rows = pd.DataFrame({"accuracy": [f"{m:.4f}" if np.isnan(s) else f"{m:.4f} ± {s:.4f}" for m, s in perf.to_numpy()]},
                        index=perf.index)
    if not result.aug_metrics.empty:
        values = [c for c in metric_value_columns(result.aug_metrics) if c not in ("n_seeds", "model_correct_share")]
        medians = result.aug_metrics.groupby("augmentation", sort=False)[values].median()
        rows = rows.join(medians.map(lambda v: f"{v:.4f}"), how="left").fillna("")
        nan_counts = result.cam_metrics[values].isna().sum()
        nan_counts = nan_counts[nan_counts > 0]
        footer = ("\nundefined values (constant maps -> NaN): "
                  + ", ".join(f"{k}={v}" for k, v in nan_counts.items())) if len(nan_counts) else ""
    else:
        footer = ""
    return "median of seed-averaged metrics per augmentation\n" + rows.to_string() + footer

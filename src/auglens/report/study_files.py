"""Reading a finished study folder (the report's only input). All report I/O on the input side is here.

A study folder is what ``auglens.study.run_study`` writes: ``performance.csv``, ``training_history.csv``
(absent from ``auglens compare`` folders: nothing was trained), ``cam_metrics.parquet``, ``aug_metrics.parquet``, ``test_set.safetensors``, the CAM sets named in
``performance.csv`` (column ``cam_set``, relative to the folder), ``config.toml`` and ``manifest.json``; when
their analyses ran, ``model_faithfulness.parquet`` and ``model_cka.csv``; and, when ``auglens architectures``
wrote into it, ``architectures.csv``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors import safe_open

__all__ = ["ARCHITECTURES_FILE", "REQUIRED_FILES", "CamSet", "StudyFiles", "load_architectures", "load_cam_set",
           "load_study"]

REQUIRED_FILES = ("performance.csv", "cam_metrics.parquet", "aug_metrics.parquet", "test_set.safetensors")
#: Written by ``auglens architectures`` (thesis step 2), alone or beside a study's files.
ARCHITECTURES_FILE = "architectures.csv"


@dataclass
class StudyFiles:
    """The contents of a study folder, as the report needs them."""

    root: Path
    performance: pd.DataFrame
    history: pd.DataFrame
    cam_metrics: pd.DataFrame
    aug_metrics: pd.DataFrame
    images: np.ndarray  # (N, C, H, W) uint8 test images
    labels: np.ndarray  # (N,) int64
    classes: list[str]
    config_text: str | None  # config.toml, verbatim; None when absent
    manifest: dict[str, Any] | None  # manifest.json; None when absent
    faithfulness: pd.DataFrame | None = None  # model_faithfulness.parquet ([faithfulness]); None when absent
    cka: pd.DataFrame | None = None  # model_cka.csv ([cka]); None when absent

    def class_name(self, index: int) -> str:
        return self.classes[index] if 0 <= index < len(self.classes) else str(index)


@dataclass
class CamSet:
    """One model's CAM set: low-resolution maps ``(N, h, w)``, logits ``(N, K)``, targets ``(N,)``."""

    path: Path
    maps: torch.Tensor
    logits: torch.Tensor
    targets: torch.Tensor
    metadata: dict[str, str]

    @property
    def predictions(self) -> np.ndarray:
        return self.logits.argmax(dim=1).numpy()


def load_study(root: str | Path) -> StudyFiles:
    """Read a study folder; raises ``FileNotFoundError`` listing every missing required file at once."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"study folder {root} does not exist (expected the --out folder of `auglens run`)")
    missing = [name for name in REQUIRED_FILES if not (root / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{root} is not a finished study folder; missing {missing} "
                                f"(expected all of {list(REQUIRED_FILES)}, written by `auglens run` or `auglens compare`)")
    with safe_open(str(root / "test_set.safetensors"), framework="numpy") as f:
        images, labels = f.get_tensor("images"), f.get_tensor("labels")
        classes = json.loads((f.metadata() or {}).get("classes", "[]"))
    if images.ndim != 4:
        raise ValueError(f"test_set.safetensors 'images' must be (N, C, H, W); got shape {images.shape}")
    config = root / "config.toml"
    manifest = root / "manifest.json"
    return StudyFiles(
        root=root,
        performance=pd.read_csv(root / "performance.csv"),
        history=(pd.read_csv(root / "training_history.csv") if (root / "training_history.csv").is_file()
                 else pd.DataFrame(columns=["model", "augmentation", "seed", "epoch"])),
        cam_metrics=pd.read_parquet(root / "cam_metrics.parquet"),
        aug_metrics=pd.read_parquet(root / "aug_metrics.parquet"),
        images=images,
        labels=labels,
        classes=[str(c) for c in classes],
        config_text=config.read_text() if config.is_file() else None,
        manifest=json.loads(manifest.read_text()) if manifest.is_file() else None,
        faithfulness=(pd.read_parquet(root / "model_faithfulness.parquet")
                      if (root / "model_faithfulness.parquet").is_file() else None),
        cka=pd.read_csv(root / "model_cka.csv") if (root / "model_cka.csv").is_file() else None,
    )


def load_cam_set(root: Path, relative: str) -> CamSet:
    """Read the CAM set at ``root / relative`` (a ``performance.csv`` ``cam_set`` entry)."""
    path = root / relative
    if not path.is_file():
        raise FileNotFoundError(f"CAM set {path} (named in performance.csv, column cam_set) does not exist")
    with safe_open(str(path), framework="pt") as f:
        return CamSet(path, f.get_tensor("maps"), f.get_tensor("logits"), f.get_tensor("targets"),
                      dict(f.metadata() or {}))


def load_architectures(root: str | Path) -> pd.DataFrame | None:
    """``root/architectures.csv`` (thesis step 2), or None when absent; raises ``ValueError`` naming any
    missing column."""
    from auglens.analysis import ARCHITECTURE_COLUMNS

    path = Path(root) / ARCHITECTURES_FILE
    if not path.is_file():
        return None
    frame = pd.read_csv(path)
    missing = [c for c in ARCHITECTURE_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path} lacks columns {missing}: expected {list(ARCHITECTURE_COLUMNS)}, as "
                         "`auglens architectures` writes it")
    return frame

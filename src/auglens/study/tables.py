"""A study's result tables (thesis step 12), assembled from its artifacts alone.

Because the tables read nothing but the store, every backend that fills the store with the same
artifacts gives identical tables.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from auglens.analysis.columns import PER_IMAGE_KEYS as _PER_IMAGE_KEYS
from auglens.analysis.model_analyses import cka_seed_average, faithfulness_seed_average
from auglens.config import Config
from auglens.data.prepared import PreparedData, prepare_data
from auglens.store import ArtifactStore, write_atomic
from auglens.study.plan import StudyPlan

__all__ = ["PER_IMAGE_KEYS", "StudyResult", "assemble_tables", "cka_seed_average", "faithfulness_seed_average",
           "metric_value_columns", "seed_average", "with_kind", "write_csv", "write_parquet", "write_test_set"]

PER_IMAGE_KEYS = list(_PER_IMAGE_KEYS)


@dataclass
class StudyResult:
    out_dir: Path
    performance: pd.DataFrame
    cam_metrics: pd.DataFrame
    aug_metrics: pd.DataFrame
    timings: dict[str, float] = field(default_factory=dict)
    faithfulness: pd.DataFrame | None = None  # per model and image; None when [faithfulness] is off
    cka: pd.DataFrame | None = None  # per compared model and layer; None when [cka] is off


def _model_rows(plan: StudyPlan, store: ArtifactStore, out_dir: Path, data: PreparedData):
    # Epochs count from 1 in every table, as in the log ("epoch 1/3") and architectures.csv: the number of
    # epochs trained when the row was measured. The artifacts keep the training loop's 0-based index.
    from auglens.metrics import classification_report

    performance, history, confusion = [], [], []
    labels = data.test.labels
    for job in plan.models:
        spec = job.model.spec
        cams = store.load_tensors("cams", job.key)
        hist = store.load_json("histories", job.model.key)
        report = classification_report(cams["logits"].argmax(1), labels, data.num_classes)
        name, kind = job.model.name, job.model.kind
        performance.append({
            "model": job.model.model_id, "augmentation": name, "kind": kind, "seed": spec.seed,
            "accuracy": float(report["accuracy"]), "precision_macro": float(report["precision_macro"]),
            "recall_macro": float(report["recall_macro"]), "f1_macro": float(report["f1_macro"]),
            "best_epoch": hist["best_epoch"] + 1, "train_seconds": hist["train_seconds"],
            "checkpoint_key": job.model.key,
            "cam_set": _artifact_reference(store.path("cams", job.key, "safetensors"), store, out_dir),
        })
        for row in hist["history"]:
            history.append({"model": job.model.model_id, "augmentation": name, "kind": kind, "seed": spec.seed,
                            **row, "epoch": row["epoch"] + 1})
        matrix = torch.as_tensor(report["confusion_matrix"]).numpy()
        for true in range(matrix.shape[0]):
            for pred in range(matrix.shape[1]):
                confusion.append({"model": job.model.model_id, "augmentation": name, "kind": kind,
                                  "seed": spec.seed, "true": true, "pred": pred, "count": int(matrix[true, pred])})
    return pd.DataFrame(performance), pd.DataFrame(history), pd.DataFrame(confusion)


def _artifact_reference(path: str, store: ArtifactStore, out_dir: Path) -> str:
    """Relative to the results folder for local stores; the full URL for remote ones."""
    return path if "://" in store.root else os.path.relpath(path, out_dir)


def assemble_tables(plan: StudyPlan, store: ArtifactStore, out_dir: Path, config: Config) -> StudyResult:
    """Write the study's tables from its artifacts (nothing else), atomically."""
    data = prepare_data(plan.data)
    performance, history, confusion = _model_rows(plan, store, out_dir, data)
    write_csv(performance, out_dir / "performance.csv")
    write_csv(history, out_dir / "training_history.csv")
    write_csv(confusion, out_dir / "confusion_matrices.csv")

    frames = [with_kind(store.load_table("metrics", job.key), job.other.model.kind) for job in plan.pairs]
    cam_metrics = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=PER_IMAGE_KEYS)
    write_parquet(cam_metrics, out_dir / "cam_metrics.parquet")
    aug_metrics = seed_average(cam_metrics)
    write_parquet(aug_metrics, out_dir / "aug_metrics.parquet")

    write_test_set(out_dir, data)
    result = StudyResult(out_dir, performance, cam_metrics, aug_metrics)
    if plan.faithfulness:
        result.faithfulness = pd.concat([store.load_table("faithfulness", job.key) for job in plan.faithfulness],
                                        ignore_index=True)
        write_parquet(result.faithfulness, out_dir / "model_faithfulness.parquet")
        write_parquet(faithfulness_seed_average(result.faithfulness), out_dir / "aug_faithfulness.parquet")
    if plan.cka:
        result.cka = pd.concat([store.load_table("cka", job.key) for job in plan.cka], ignore_index=True)
        write_csv(result.cka, out_dir / "model_cka.csv")
        write_csv(cka_seed_average(result.cka), out_dir / "aug_cka.csv")
    return result


def with_kind(frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    """A metric artifact's rows with the ``kind`` of their model (``augmentation`` or ``control``) beside its
    name; the artifacts themselves do not hold it, so those computed before controls existed still fit."""
    if "kind" not in frame:
        frame.insert(int(frame.columns.get_loc("augmentation")) + 1, "kind", kind)
    return frame


def write_test_set(out_dir: Path, data: PreparedData) -> None:
    """The test images (uint8, native size) and labels beside the tables, so reports need nothing else."""
    from safetensors.torch import save

    write_atomic(str(out_dir / "test_set.safetensors"),
                 save({"images": data.test.images.contiguous(), "labels": data.test.labels},
                      metadata={"classes": json.dumps(data.classes)}))


def metric_value_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in PER_IMAGE_KEYS]


def seed_average(cam_metrics: pd.DataFrame) -> pd.DataFrame:
    """Step 12: the mean over starting states per augmentation (or control) and test image (NaNs skipped,
    counted); the ``kind`` column, where ``cam_metrics`` has one, is carried over."""
    values = metric_value_columns(cam_metrics)
    carried = [c for c in ("kind", "label") if c in cam_metrics]
    if cam_metrics.empty:
        return pd.DataFrame(columns=["augmentation", "image", *carried, *values, "n_seeds", "model_correct_share"])
    frame = cam_metrics.assign(model_correct_share=(cam_metrics["model_pred"] == cam_metrics["label"]).astype(float))
    grouped = frame.groupby(["augmentation", "image"], sort=False)
    out = pd.concat([grouped[carried].first(), grouped[values].mean()], axis=1)
    out["n_seeds"] = grouped.size()
    out["model_correct_share"] = grouped["model_correct_share"].mean()
    return out.reset_index()


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    write_atomic(str(path), frame.to_csv(index=False).encode())


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    write_atomic(str(path), buffer.getvalue())

"""Comparing the tables of two study folders, timing columns aside (shared by the study and Ray tests)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

TIMING_COLUMNS = {"train_seconds", "elapsed_seconds"}


def read_tables(out: Path) -> dict[str, pd.DataFrame]:
    tables = {
        "performance": pd.read_csv(out / "performance.csv"),
        "history": pd.read_csv(out / "training_history.csv"),
        "cam_metrics": pd.read_parquet(out / "cam_metrics.parquet"),
        "aug_metrics": pd.read_parquet(out / "aug_metrics.parquet"),
    }
    return {k: v.drop(columns=[c for c in v.columns if c in TIMING_COLUMNS]) for k, v in tables.items()}


def assert_same_tables(a: Path, b: Path) -> None:
    ta, tb = read_tables(a), read_tables(b)
    for name in ta:
        pd.testing.assert_frame_equal(ta[name], tb[name], check_exact=True, obj=name)

"""Seed averages of the per-model analyses' tables (faithfulness per image, CKA per layer): written by the study
beside its other tables and shown by the report."""

from __future__ import annotations

import pandas as pd

__all__ = ["FAITHFULNESS_KEYS", "cka_seed_average", "faithfulness_seed_average"]


#: Columns of model_faithfulness.parquet that are not scores.
FAITHFULNESS_KEYS = ["augmentation", "kind", "seed", "image", "label", "target", "model_pred"]


def faithfulness_seed_average(faithfulness: pd.DataFrame) -> pd.DataFrame:
    """The mean over starting states per augmentation (the baseline included) and test image; NaNs skipped."""
    scores = [c for c in faithfulness.columns if c not in FAITHFULNESS_KEYS]
    grouped = faithfulness.groupby(["augmentation", "image"], sort=False)
    carried = [c for c in ("kind", "label") if c in faithfulness]
    out = pd.concat([grouped[carried].first(), grouped[scores].mean()], axis=1)
    out["n_seeds"] = grouped.size()
    return out.reset_index()


def cka_seed_average(cka: pd.DataFrame) -> pd.DataFrame:
    """CKA per augmentation and layer: mean and standard deviation over starting states, and their count."""
    keys = ["augmentation", "kind", "layer_index", "layer"] if "kind" in cka else ["augmentation", "layer_index", "layer"]
    grouped = cka.groupby(keys, sort=False)["cka"]
    out = grouped.agg(["mean", "std", "count"]).rename(columns={"mean": "cka", "std": "cka_std", "count": "n_seeds"})
    return out.reset_index()

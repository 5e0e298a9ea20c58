"""The distortion paper's tables in its own layout: data set x model cells "mean ± std" over runs.

Built from the long tables that the analyses wrote (``<out>/distortion/<analysis>/*_summary.csv``) and
the resolved ``config.toml`` beside them, so results of several runs (one per data set, say) combine
into one table: :func:`paper_tables` takes any number of ``<out>/distortion`` folders.

- Table 1: DI (%) on grid-shuffled images; Table 3: DI (%) under CutOcclusion (its occluder);
- Table 4: DI, CutOcclusion (test accuracy, %) and iOcclusion at one occluded fraction (e.g. 0.3);
- Table 5: affinity, Diversity, MixDiversity; Table 6: DI after removing c_max;
- Table 7: accuracy (%) of reformulated MSDA with partners from the same or another data set.

A cell shows the mean ± the sample std over runs (the mean alone for a single run) and ``(n=k)`` when
fewer runs than the table's most have a value. Tables whose analysis was not run are left out.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from auglens.augment.base import BASELINE

__all__ = ["paper_tables", "write_paper_tables"]

DATASET_NAMES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "fashion_mnist": "FashionMNIST", "mnist": "MNIST",
                 "synthetic": "synthetic"}
MODEL_NAMES = {BASELINE: "basic", "mixup": "MixUp", "fmix": "FMix", "cutmix": "CutMix", "random_masks": "RM",
               "boxmix": "BoxMix"}
TITLES = {
    "table1": "Table 1: DI index (%) on grid-shuffled images",
    "table3": "Table 3: DI index (%) under CutOcclusion",
    "table4": "Table 4: DI index (%) and occlusion robustness at a fixed occluded fraction",
    "table5": "Table 5: affinity and diversity",
    "table6": "Table 6: DI index (%) after training without the class with the highest increase",
    "table7": "Table 7: accuracy (%) when mixing with samples from another data set (reformulated objective)",
}


def cell(mean: float, std: float, runs: int, most: int) -> str:
    """``"2.90 ± 1.10"``; the mean alone when std is undefined (one run); ``(n=k)`` when k < most runs."""
    if pd.isna(mean):
        return "–"
    text = f"{mean:.2f}" if pd.isna(std) else f"{mean:.2f} ± {std:.2f}"
    return text if runs >= most else f"{text} (n={runs})"


def _read(folder: Path, analysis: str, table: str) -> pd.DataFrame | None:
    path = folder / analysis / f"{table}.csv"
    return pd.read_csv(path, keep_default_na=False, na_values=[""]) if path.exists() else None


def _wide(rows: list[dict], index: list[str], columns: str, order: list[str]) -> pd.DataFrame:
    """Long rows {index..., columns, mean, std, runs} -> one formatted cell per (index, column)."""
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame(rows)
    most = int(frame["runs"].max())
    frame["cell"] = [cell(m, s, int(r), most) for m, s, r in zip(frame["mean"], frame["std"], frame["runs"])]
    wide = frame.pivot(index=index, columns=columns, values="cell")
    wide = wide[[c for c in order if c in wide.columns]].reset_index()
    wide.columns.name = None
    return wide.fillna("–")


def _models(config) -> list[str]:
    return [BASELINE, *[a.name for a in config.augmentations]]


def _one_folder(folder: Path, taken: set[str]) -> dict[str, tuple[list[dict], list[str], str, list[str]]]:
    from auglens.distortion.config import load

    config = load(folder / "config.toml")
    dataset = DATASET_NAMES.get(config.data.name, config.data.name)
    if dataset in taken:  # two results folders of the same data set: tell them apart by folder
        dataset = f"{dataset} ({folder.resolve().parent.name})"
    taken.add(dataset)
    norm = config.interference.normalisation
    order = [MODEL_NAMES.get(m, m) for m in _models(config)]
    out: dict[str, tuple[list[dict], list[str], str, list[str]]] = {}

    def rows_of(frame, value, **fixed):
        return [{"data set": dataset, **fixed, "model": MODEL_NAMES.get(r["augmentation"], r["augmentation"]),
                 "mean": r[f"{value}_mean"], "std": r[f"{value}_std"], "runs": r["runs"]}
                for _, r in frame.iterrows()]

    di = _read(folder, "interference", "di_summary")
    if di is not None:
        grid = di[di["distortion"] == "grid_shuffle"]
        if len(grid):
            out["table1"] = (rows_of(grid, f"di_{norm}", grid=config.interference.grid), ["data set", "grid"], "model",
                             order)
        cut = di[di["distortion"] == "cut_occlusion"]
        if len(cut):
            out["table3"] = (rows_of(cut, f"di_{norm}", occluder=config.interference.occluder),
                             ["data set", "occluder"], "model", order)
    removal = _read(folder, "interference", "class_removal_summary")
    if removal is not None:
        out["table6"] = (rows_of(removal, f"di_{norm}"), ["data set"], "model", order)

    occlusion = _read(folder, "occlusion", "occlusion_summary")
    if occlusion is not None:
        occlusion = occlusion[occlusion["subset"] == "all"]
    fraction = config.occlusion.table_fraction
    if occlusion is not None and np.isclose(occlusion["fraction"], fraction).any():
        at = occlusion[np.isclose(occlusion["fraction"], fraction)]
        occluder = "images" if "images" in set(at["occluder"]) else at["occluder"].iloc[0]
        at = at[at["occluder"] == occluder]
        rows = []
        if di is not None and len(di[di["distortion"] == "cut_occlusion"]):
            rows += rows_of(di[di["distortion"] == "cut_occlusion"], f"di_{norm}", measure="DI index")
        rows += rows_of(at[at["masking"] == "box"], "test_accuracy", measure=f"CutOcclusion ({occluder}, p = {fraction:g})")
        if "saliency" in set(at["masking"]):
            rows += rows_of(at[at["masking"] == "saliency"], "i_occlusion",
                            measure=f"iOcclusion ({occluder}, p = {fraction:g})")
        out["table4"] = (rows, ["data set", "measure"], "model", order)

    affinity = _read(folder, "affinity", "affinity_summary")
    if affinity is not None:
        affinity = affinity[affinity["subset"] == "all"]
    if affinity is not None:  # as the paper: one row per model, one column per measure
        measures = {"Affinity": "affinity", "Diversity": "diversity", "MixDiversity": "mix_diversity"}
        rows = [{**r, "measure": label} for label, value in measures.items() for r in rows_of(affinity, value)]
        out["table5"] = (rows, ["data set", "model"], "measure", list(measures))

    inter = _read(folder, "interdataset", "interdataset_summary")
    if inter is not None:
        rows = [{"data set": dataset, "partners": r["partner"], "model": MODEL_NAMES.get(r["augmentation"], r["augmentation"]),
                 "mean": r["accuracy_mean"], "std": r["accuracy_std"], "runs": r["runs"]} for _, r in inter.iterrows()]
        out["table7"] = (rows, ["data set", "partners"], "model",
                         [MODEL_NAMES.get(a, a) for a in config.interdataset.augmentations])
    return out


def paper_tables(folders: Path | str | Iterable[Path | str]) -> dict[str, pd.DataFrame]:
    """Paper-layout tables (``table1`` ... ``table7``) of one or several ``<out>/distortion`` folders."""
    folders = [Path(folders)] if isinstance(folders, (str, Path)) else [Path(f) for f in folders]
    merged: dict[str, tuple[list[dict], list[str], str, list[str]]] = {}
    taken: set[str] = set()
    for folder in folders:
        for name, (rows, index, columns, order) in _one_folder(folder, taken).items():
            if name in merged:
                merged[name][0].extend(rows)
                merged[name][3].extend(o for o in order if o not in merged[name][3])
            else:
                merged[name] = (list(rows), index, columns, list(order))
    tables = {name: _wide(*merged[name]) for name in sorted(merged)}
    return {name: frame for name, frame in tables.items() if len(frame)}


def write_paper_tables(folders: Path | str | Iterable[Path | str], out_dir: Path | str) -> dict[str, pd.DataFrame]:
    """Write ``paper_tables.md`` and ``paper_<table>.csv`` into ``out_dir``; returns the tables."""
    from auglens.store import write_text_atomic

    out_dir = Path(out_dir)
    tables = paper_tables(folders)
    parts = ["# The distortion paper's tables, reproduced\n",
             "Mean ± sample std over runs; `(n=k)`: only k runs have a value. Long tables: one folder per analysis.\n"]
    for name, frame in tables.items():
        write_text_atomic(out_dir / f"paper_{name}.csv", frame.to_csv(index=False))
        parts.append(f"## {TITLES[name]}\n\n{_markdown(frame)}\n")
    write_text_atomic(out_dir / "paper_tables.md", "\n".join(parts))
    return tables


def _markdown(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])

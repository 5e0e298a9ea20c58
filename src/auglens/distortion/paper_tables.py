"""The distortion paper's tables in its own layout: data set x model cells "mean ± std" over runs.

Built from the long tables that the analyses wrote (``<out>/distortion/<analysis>/*_summary.csv``) and
the resolved ``config.toml`` beside them, so results of several runs (one per data set, say) combine
into one table: :func:`paper_tables` takes any number of ``<out>/distortion`` folders.

- Table 1: DI (%) on grid-shuffled images; Table 3: DI (%) under CutOcclusion (its occluder);
- Table 4: DI, CutOcclusion (test accuracy, %) and iOcclusion at one occluded fraction (e.g. 0.3);
- Table 5: affinity, Diversity, MixDiversity; Table 6: DI after removing c_max;
- Table 7: accuracy (%) of reformulated MSDA with partners from the same or another data set.

A cell shows the mean ± the sample std over runs (the mean alone for a single run) and ``(n=k)`` when
fewer runs than the table's most have a value. ``paper_tables.md`` opens with the provenance of each results
folder (data, model, recipe, runs, standard augmentation, DI normalisation, grid, versions from the manifests),
one line naming where the recipe differs from the paper's, each table's unit and n, and the tables that the
run's settings could not make, each with the setting that would make it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from auglens.augment.base import BASELINE

__all__ = ["missing_tables", "paper_tables", "provenance", "write_paper_tables"]

DATASET_NAMES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "fashion_mnist": "FashionMNIST", "mnist": "MNIST",
                 "synthetic": "synthetic"}
MODEL_NAMES = {BASELINE: "basic", "mixup": "MixUp", "fmix": "FMix", "cutmix": "CutMix", "random_masks": "RM",
               "boxmix": "BoxMix"}
TITLES = {
    "table1": "Table 1: DI index (%) on grid-shuffled images",
    "table3": "Table 3: DI index (%) under CutOcclusion",
    "table4": "Table 4: DI index (%) and occlusion robustness at a fixed occluded fraction",
    "table5": "Table 5: affinity and diversity",
    "table6": "Table 6: DI index (%) after training without one class (interference.removed_class)",
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
        rows = [{**row, "removed class": r["trained_without"], "distortion": r["distortion"]}
                for row, (_, r) in zip(rows_of(removal, f"di_{norm}"), removal.iterrows())]
        out["table6"] = (rows, ["data set", "distortion", "removed class"], "model", order)

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


def _merged(folders: list[Path]) -> dict[str, tuple[list[dict], list[str], str, list[str]]]:
    merged: dict[str, tuple[list[dict], list[str], str, list[str]]] = {}
    taken: set[str] = set()
    for folder in folders:
        for name, (rows, index, columns, order) in _one_folder(folder, taken).items():
            if name in merged:
                merged[name][0].extend(rows)
                merged[name][3].extend(o for o in order if o not in merged[name][3])
            else:
                merged[name] = (list(rows), index, columns, list(order))
    return {name: merged[name] for name in sorted(merged) if merged[name][0]}


def _folders(folders: Path | str | Iterable[Path | str]) -> list[Path]:
    return [Path(folders)] if isinstance(folders, (str, Path)) else [Path(f) for f in folders]


def paper_tables(folders: Path | str | Iterable[Path | str]) -> dict[str, pd.DataFrame]:
    """Paper-layout tables (``table1`` ... ``table7``) of one or several ``<out>/distortion`` folders."""
    tables = {name: _wide(*parts) for name, parts in _merged(_folders(folders)).items()}
    return {name: frame for name, frame in tables.items() if len(frame)}


#: The paper's recipe (Section 2, Appendix A, the authors' trainer), for the one line naming where a run differs.
PAPER_RECIPE = {"epochs": 200, "runs": 5, "optimizer": "sgd", "lr": 0.1, "batch_size": 128,
                "architectures": ("preact_resnet18", "preact_resnet18_release")}


def _units(name: str, config) -> str:
    norm = config.interference.normalisation
    di = f"DI index in % ({norm} normalisation, docs/distortion.md)"
    if name in ("table1", "table3", "table6"):
        return di
    if name == "table4":
        return f"{di}; CutOcclusion: test accuracy in %; iOcclusion: a ratio of accuracy gaps (no unit)"
    if name == "table5":
        affinity = ("percentage points of test accuracy (A(augmented) - A(clean))" if config.affinity.kind == "difference"
                    else "a ratio of test accuracies (A(augmented) / A(clean))")
        return f"Affinity: {affinity}; Diversity, MixDiversity: final-epoch training cross-entropy (nats)"
    return "test accuracy in %"


def _recipe(config) -> str:
    t = config.training
    if t.lr_schedule == "one_cycle":
        schedule = "one-cycle (lr/10 up to lr over 20 %, then linearly to 0)"
    elif t.lr_milestones:
        schedule = f"x{t.lr_gamma:g} at epochs {', '.join(map(str, t.lr_milestones))}"
    else:
        schedule = "constant"
    momentum = f", momentum {t.momentum:g}" if t.optimizer == "sgd" else ""
    return (f"{t.epochs} epochs, {t.optimizer} (lr {t.lr:g}{momentum}, weight decay {t.weight_decay:g}, batch "
            f"{t.batch_size}), learning rate {schedule}, {t.checkpoint} epoch kept")


def _differences(config) -> list[str]:
    """Where the run's recipe differs from the paper's, in words."""
    t, d, out = config.training, config.data, []
    if t.epochs != PAPER_RECIPE["epochs"]:
        out.append(f"{t.epochs} epochs (paper: {PAPER_RECIPE['epochs']})")
    if d.train_subset is not None:
        out.append(f"a {d.train_subset}-image training subset (paper: the full training set)")
    if d.test_subset is not None:
        out.append(f"a {d.test_subset}-image test subset (paper: the full test set)")
    if config.model.architecture not in PAPER_RECIPE["architectures"]:
        out.append(f"model {config.model.architecture} (paper: PreAct-ResNet18)")
    if len(config.runs.seeds) != PAPER_RECIPE["runs"]:
        out.append(f"{len(config.runs.seeds)} runs (paper: {PAPER_RECIPE['runs']})")
    if t.optimizer != PAPER_RECIPE["optimizer"] or t.lr != PAPER_RECIPE["lr"] or t.batch_size != PAPER_RECIPE["batch_size"]:
        out.append(f"{t.optimizer}, lr {t.lr:g}, batch {t.batch_size} (paper: sgd, lr 0.1, batch 128)")
    if t.standard_augmentation == "none":
        out.append("no standard augmentation (paper: random crop and flip)")
    if t.augmentation_copies == "fixed":
        out.append("augmented copies drawn once per image and reused every epoch (paper: drawn anew each epoch)")
    if t.augmentation_resolution == "model_input" and config.model.input_size is not None:
        out.append(f"augmentations applied after resizing to {config.model.input_size} pixels (paper: native size)")
    return out


def _manifests(folder: Path) -> dict[str, dict]:
    manifests = {}
    for path in sorted(folder.glob("*/manifest.json")):
        manifests[path.parent.name] = json.loads(path.read_text())
    return manifests


def _test_images(folder: Path) -> int | None:
    wrong = _read(folder, "interference", "wrong_predictions")
    if wrong is not None and len(wrong):
        return int(wrong["test_images"].iloc[0])
    return None


def provenance(folder: Path | str) -> str:
    """The Markdown provenance block of one ``<out>/distortion`` folder, from its resolved config and manifests."""
    from auglens.distortion.config import load

    folder = Path(folder)
    config = load(folder / "config.toml")
    manifests = _manifests(folder)
    d = config.data
    dataset = DATASET_NAMES.get(d.name, d.name)
    train = f"a stratified subset of {d.train_subset}" if d.train_subset is not None else "all"
    tested = _test_images(folder)
    test = (f"{tested} (interference)" if tested is not None
            else f"a stratified subset of {d.test_subset}" if d.test_subset is not None else "all")
    model = config.model.architecture + (" (pretrained)" if config.model.pretrained else "")
    size = config.model.input_size or "native"
    models = ", ".join(MODEL_NAMES.get(m, m) for m in _models(config))
    lines = [f"### Run: {config.name} ({dataset})", "",
             f"- data set: {dataset}; training images: {train} (validation fraction "
             f"{config.split.validation_fraction:g}); test images: {test}",
             f"- model: {model}, input size {size}; model types: {models}",
             f"- training: {_recipe(config)}",
             f"- runs: {len(config.runs.seeds)} (seeds {', '.join(map(str, config.runs.seeds))})",
             f"- standard augmentation: {'on' if config.training.standard_augmentation != 'none' else 'off'} "
             f"({config.training.standard_augmentation})",
             f"- DI normalisation: {config.interference.normalisation}; grid shuffle: {config.interference.grid}x"
             f"{config.interference.grid} tiles ({dataset})",
             f"- analyses: {', '.join(config.analyses)}"]
    if manifests:
        first = next(iter(manifests.values()))
        finished = max(m.get("finished_at", "") for m in manifests.values())
        lines.append(f"- made by auglens {first.get('auglens')} (torch {first.get('versions', {}).get('torch')}) on "
                     f"{first.get('device')}, finished {finished}; config fingerprint "
                     f"{first.get('config_fingerprint')}; manifests: "
                     f"{', '.join(f'{name}/manifest.json' for name in manifests)}")
    differences = _differences(config)
    lines += ["", f"**Differs from the paper's recipe:** {'; '.join(differences)}." if differences
              else "The recipe is the paper's (PreAct-ResNet18, 200 epochs, SGD, 5 runs, the full data set)."]
    return "\n".join(lines) + "\n"


def missing_tables(folder: Path | str, made: Iterable[str]) -> dict[str, str]:
    """The tables a results folder could not make, each with the setting that would make it."""
    from auglens.distortion.config import load

    folder = Path(folder)
    config = load(folder / "config.toml")
    made, ran, out = set(made), set(config.analyses), {}
    distortions = config.interference.distortions
    needs = {
        "table1": ("interference" in ran and "grid_shuffle" in distortions,
                   'run the interference analysis with "grid_shuffle" in interference.distortions'),
        "table3": ("interference" in ran and "cut_occlusion" in distortions,
                   'run the interference analysis with "cut_occlusion" in interference.distortions'),
        "table4": ("occlusion" in ran and any(np.isclose(f, config.occlusion.table_fraction)
                                              for f in config.occlusion.fractions),
                   f"run the occlusion analysis with occlusion.table_fraction ({config.occlusion.table_fraction:g}) "
                   f"among occlusion.fractions ({', '.join(f'{f:g}' for f in config.occlusion.fractions)}); the paper: "
                   f"0.3"),
        "table5": ("affinity" in ran, "run the affinity analysis (analyses = [..., \"affinity\"])"),
        "table6": ("interference" in ran and config.interference.class_removal,
                   "run the interference analysis with interference.class_removal = true"),
        "table7": ("interdataset" in ran, "run the interdataset analysis (analyses = [..., \"interdataset\"])"),
    }
    for name, (possible, setting) in needs.items():
        if name not in made:
            out[name] = setting if not possible else "its analysis wrote no rows for it (see the analysis's tables)"
    return out


def write_paper_tables(folders: Path | str | Iterable[Path | str], out_dir: Path | str) -> dict[str, pd.DataFrame]:
    """Write ``paper_tables.md`` and ``paper_<table>.csv`` into ``out_dir``; returns the tables.

    The Markdown opens with each folder's provenance (:func:`provenance`), states each table's unit and n, and
    lists the tables that could not be made with the setting that would make them (:func:`missing_tables`).
    """
    from auglens.distortion.config import load
    from auglens.store import write_text_atomic

    out_dir, folders = Path(out_dir), _folders(folders)
    merged = _merged(folders)
    tables = {name: _wide(*parts) for name, parts in merged.items()}
    tables = {name: frame for name, frame in tables.items() if len(frame)}
    config = load(folders[0] / "config.toml")
    parts = ["# The distortion paper's tables, as made by this run\n",
             "Made from the results folders below, with their own settings: compare with the paper's published "
             "numbers (the shipped configs' headers) only where the recipe is the paper's.\n",
             "## Provenance\n", *[provenance(folder) for folder in folders]]
    for name, frame in tables.items():
        write_text_atomic(out_dir / f"paper_{name}.csv", frame.to_csv(index=False))
        n = int(max(row["runs"] for row in merged[name][0]))
        parts.append(f"## {TITLES[name]}\n\nUnit: {_units(name, config)}. Cells: mean ± sample std over n = {n} "
                     f"runs; `(n=k)`: only k runs have a value.\n\n{_markdown(frame)}\n")
    missing: dict[str, list[str]] = {}
    for folder in folders:
        for name, setting in missing_tables(folder, tables).items():
            missing.setdefault(name, []).append(setting if len(folders) == 1 else f"{folder}: {setting}")
    if missing:
        parts.append("## Not made\n")
        parts += [f"- {TITLES[name]}: {'; '.join(settings)}" for name, settings in sorted(missing.items())]
        parts.append("")
    write_text_atomic(out_dir / "paper_tables.md", "\n".join(parts))
    return tables


def _markdown(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])

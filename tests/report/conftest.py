"""A synthetic but complete study folder, written the way ``auglens.study`` writes a real one.

Random but valid data: a baseline and augmented models per seed with random logits (biased towards the
label, so accuracies are realistic) and random low-resolution CAMs, a few of them constant so that Pearson /
Spearman are NaN as in real studies. The per-image metrics are computed with the real metric code
(``auglens.metrics.compute_pair_metrics`` on ``auglens.cam.upsample_maps``-ed maps).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import save_file

from auglens.cam import upsample_maps
from auglens.metrics import compute_pair_metrics

ALL_METRICS = ["mad", "msd", "pearson", "spearman", "overlap", "class_kld"]
# The default fixture keeps one metric of each kind (difference, correlation -> NaNs, overlap, class KLD):
# every code path, half the figures of the full set, so the report tests stay fast.
DEFAULT_METRICS = ["mad", "pearson", "overlap", "class_kld"]
KEYS = ["augmentation", "seed", "image", "label", "baseline_pred", "model_pred"]


def _macro_scores(pred: np.ndarray, label: np.ndarray, n_classes: int) -> dict[str, float]:
    precision, recall, f1 = [], [], []
    for c in range(n_classes):
        tp = np.sum((pred == c) & (label == c))
        p = tp / max(np.sum(pred == c), 1)
        r = tp / max(np.sum(label == c), 1)
        precision.append(p)
        recall.append(r)
        f1.append(0.0 if p + r == 0 else 2 * p * r / (p + r))
    return {"accuracy": float(np.mean(pred == label)), "precision_macro": float(np.mean(precision)),
            "recall_macro": float(np.mean(recall)), "f1_macro": float(np.mean(f1))}


def write_synthetic_study(root: Path, *, augmentations: Sequence[str] = ("affine", "cutmix", "equalize"),
                          seeds: Sequence[int] = (1, 2), n_images: int = 50, image_size: int = 8,
                          map_size: int = 4, channels: int = 1, n_classes: int = 4, epochs: int = 3,
                          constant_maps: int = 3, metrics: Sequence[str] = DEFAULT_METRICS,
                          overlap_percents: Sequence[float] = (20,), seed: int = 0,
                          controls: Sequence[tuple[str, int]] = ()) -> Path:
    """Write every file of a finished study folder into ``root`` and return ``root``.

    ``controls``: retraining controls as ``(setting, value)``, written as models named
    ``control:<setting>=<value>`` after the augmentations; with them the tables get their ``kind`` column
    (without, they keep the layout of tables written before controls existed)."""
    control_names = [f"control:{setting}={value}" for setting, value in controls]
    compared = [*augmentations, *control_names]

    def kind(name: str) -> dict[str, str]:
        if not controls:
            return {}
        return {"kind": "control" if name in control_names else "baseline" if name == "none" else "augmentation"}

    rng = np.random.default_rng(seed)
    root = Path(root)
    (root / "artifacts" / "cams").mkdir(parents=True, exist_ok=True)
    classes = ["cat", "dog", "ship", "frog", "car", "bird", "deer", "horse", "truck", "plane"][:n_classes]
    images = torch.from_numpy(rng.integers(0, 256, (n_images, channels, image_size, image_size), dtype=np.uint8))
    labels = torch.from_numpy(rng.integers(0, n_classes, n_images).astype(np.int64))
    save_file({"images": images, "labels": labels}, str(root / "test_set.safetensors"),
              metadata={"classes": json.dumps(classes)})

    models = [("none", s) for s in seeds] + [(a, s) for a in compared for s in seeds]
    cams, performance, history, confusion = {}, [], [], []
    for augmentation, s in models:
        model = f"{augmentation}-s{s}"
        logits = rng.normal(size=(n_images, n_classes)).astype(np.float32)
        logits[np.arange(n_images), labels.numpy()] += 1.5
        maps = rng.random((n_images, map_size, map_size)).astype(np.float32)
        maps[rng.choice(n_images, constant_maps, replace=False)] = 0.0  # constant CAMs -> NaN correlations
        tensors = {"maps": torch.from_numpy(maps).half(), "logits": torch.from_numpy(logits),
                   "targets": torch.from_numpy(logits.argmax(1).astype(np.int64))}
        relative = f"artifacts/cams/{model}.safetensors"
        save_file(tensors, str(root / relative),
                  metadata={"model": model, "method": "gradcam", "input_size": str(image_size)})
        cams[(augmentation, s)] = tensors
        pred = logits.argmax(1)
        performance.append({"model": model, "augmentation": augmentation, **kind(augmentation), "seed": s,
                            **_macro_scores(pred, labels.numpy(), n_classes),
                            "best_epoch": int(rng.integers(0, epochs)), "train_seconds": float(rng.uniform(5, 20)),
                            "cam_set": relative})
        elapsed = 0.0
        for epoch in range(epochs):
            elapsed += float(rng.uniform(1, 5))
            val = rng.uniform(0.3, 0.9, 4)
            history.append({"model": model, "augmentation": augmentation, "seed": s, "epoch": epoch,
                            "train_loss": float(rng.uniform(0.2, 2.0)), "val_accuracy": val[0],
                            "val_precision_macro": val[1], "val_recall_macro": val[2], "val_f1_macro": val[3],
                            "elapsed_seconds": elapsed})
        matrix = np.zeros((n_classes, n_classes), dtype=int)
        np.add.at(matrix, (labels.numpy(), pred), 1)
        confusion += [{"model": model, "augmentation": augmentation, "seed": s, "true": t, "pred": p,
                       "count": int(matrix[t, p])} for t in range(n_classes) for p in range(n_classes)]
    pd.DataFrame(performance).to_csv(root / "performance.csv", index=False)
    pd.DataFrame(history).to_csv(root / "training_history.csv", index=False)
    pd.DataFrame(confusion).to_csv(root / "confusion_matrices.csv", index=False)

    frames = []
    for augmentation in compared:
        for s in seeds:
            base, other = cams[("none", s)], cams[(augmentation, s)]
            size = (image_size, image_size)
            requests = [(m, {"percents": list(overlap_percents)}) if m == "overlap" else m for m in metrics]
            values = compute_pair_metrics(requests, upsample_maps(base["maps"].float(), size),
                                          upsample_maps(other["maps"].float(), size),
                                          torch.softmax(base["logits"].double(), 1),
                                          torch.softmax(other["logits"].double(), 1))
            frames.append(pd.DataFrame({
                "augmentation": augmentation, **kind(augmentation), "seed": s, "image": np.arange(n_images),
                "label": labels.numpy(),
                "baseline_pred": base["logits"].argmax(1).numpy(), "model_pred": other["logits"].argmax(1).numpy(),
                **{column: value.numpy() for column, value in values.items()}}))
    keys = [*KEYS, "kind"] if controls else KEYS
    cam_metrics = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=keys)
    cam_metrics.to_parquet(root / "cam_metrics.parquet", index=False)
    metric_cols = [c for c in cam_metrics.columns if c not in keys]
    if cam_metrics.empty:  # a baseline-only study
        aug = pd.DataFrame(columns=["augmentation", "image", "label", *metric_cols, "n_seeds", "model_correct_share"])
    else:  # the seed average, as auglens.study.seed_average computes it
        grouped = cam_metrics.groupby(["augmentation", "image"], sort=False)
        aug = pd.concat([grouped[["kind", "label"] if controls else ["label"]].first(), grouped[metric_cols].mean()],
                        axis=1)
        aug["n_seeds"] = grouped.size()
        aug["model_correct_share"] = grouped.apply(lambda g: float((g["model_pred"] == g["label"]).mean()),
                                                   include_groups=False)
        aug = aug.reset_index()
    aug.to_parquet(root / "aug_metrics.parquet", index=False)

    (root / "config.toml").write_text(
        f'name = "synthetic"\n\n[study]\nseeds = {list(seeds)}\n\n'
        + "".join(f'[[augmentations]]\nname = "{a}"\n\n' for a in augmentations)
        + "".join(f'[[controls]]\nname = "{setting}"\nvalues = [{value}]\n\n' for setting, value in controls)
        + f"[metrics]\nnames = {json.dumps(list(metrics))}\noverlap_percents = {list(overlap_percents)}\n")
    (root / "manifest.json").write_text(json.dumps({"auglens": "0.1.0", "seeds": {"starting_states": list(seeds)},
                                                    "timings_seconds": {"total_seconds": 1.0}}, indent=1))
    return root


@pytest.fixture(scope="session")
def synthetic_study(tmp_path_factory) -> Path:
    """The default synthetic study: 3 augmentations x 2 seeds, 50 grey 8x8 images, 4x4 maps, 4 metrics."""
    return write_synthetic_study(tmp_path_factory.mktemp("study"))


@pytest.fixture(scope="session")
def built_report(synthetic_study) -> Path:
    """``build_report`` run once on the default synthetic study (small n_boot / n_perm: speed)."""
    from auglens.report import build_report

    return build_report(synthetic_study, n_boot=200, n_perm=500)


@pytest.fixture
def make_study(tmp_path):
    """Factory: ``make_study(**kwargs)`` writes a synthetic study with other shapes into a fresh folder."""
    def make(**kwargs) -> Path:
        return write_synthetic_study(tmp_path / "study", **kwargs)

    return make

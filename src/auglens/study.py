"""Run a study: the thesis's steps 6–12 as independent, resumable jobs, then the result tables.

A study is planned into three kinds of job, each a pure function of its typed spec that writes one
artifact to the :class:`~auglens.store.ArtifactStore` under a key derived from everything it depends on:

- ``TrainJob``  (one per augmentation x starting state, plus the baseline): best-validation weights,
- ``CamJob``    (one per model): the CAM set and logits on the test set,
- ``MetricJob`` (one per augmented model): every CAM metric against the baseline, per test image.

Jobs whose artifact exists are skipped, so rerunning after a crash resumes, and rerunning a finished
study trains nothing. Training also snapshots every epoch, so an interrupted training resumes mid-way
and ends with the same weights. The local backend runs the jobs in this process; the Ray backend
(:mod:`auglens.distributed`) runs the same functions as Ray tasks. Tables are then assembled from the
artifacts alone — which is why both backends give identical tables.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from auglens.analysis.columns import BASELINE
from auglens.analysis.columns import PER_IMAGE_KEYS as _PER_IMAGE_KEYS
from auglens.config import Config, RuntimeConfig, dump_toml, stable_hash
from auglens.data.prepared import DataSpec, PreparedData, model_input, prepare_data
from auglens.store import ArtifactStore, write_atomic, write_text_atomic
from auglens.train.loop import TrainSpec, initial_model, train_model

PER_IMAGE_KEYS = list(_PER_IMAGE_KEYS)


# ------------------------------------------------------------------------------------------ job specs

@dataclass(frozen=True)
class TrainJob:
    data: DataSpec
    spec: TrainSpec

    @property
    def key(self) -> str:
        return stable_hash({"data": dataclasses.asdict(self.data), "train": dataclasses.asdict(self.spec)})

    @property
    def model_id(self) -> str:
        return f"{self.spec.augmentation}-s{self.spec.seed}"


@dataclass(frozen=True)
class CamJob:
    train: TrainJob
    method: str = "gradcam"
    target_layer: str | None = None
    target: str = "predicted"
    storage_dtype: str = "float32"
    batch_size: int = 128  # does not change results, so it is not part of the key

    @property
    def key(self) -> str:
        return stable_hash({"train": self.train.key, "method": self.method, "layer": self.target_layer,
                            "target": self.target, "dtype": self.storage_dtype})


@dataclass(frozen=True)
class MetricJob:
    baseline: CamJob
    other: CamJob
    names: tuple[str, ...]
    overlap_percents: tuple[float, ...]
    kld_epsilon: float
    batch_size: int = 1000  # not part of the key

    @property
    def key(self) -> str:
        return stable_hash({"baseline": self.baseline.key, "other": self.other.key, "names": self.names,
                            "overlap": self.overlap_percents, "eps": self.kld_epsilon})


@dataclass
class StudyPlan:
    models: list[CamJob]  # one per model, baseline(s) first; each carries its TrainJob
    pairs: list[MetricJob]
    data: DataSpec


def data_spec(config: Config) -> DataSpec:
    d, s = config.data, config.split
    return DataSpec(d.name, d.root, d.download, d.image_size, d.train_subset, d.test_subset, d.subset_seed,
                    s.validation_fraction, s.seed)


def _train_spec(config: Config, augmentation: str, params: dict[str, Any], seed: int) -> TrainSpec:
    t = config.training
    frozen = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in params.items()))
    arch_params = tuple(sorted(config.model.params.items()))
    return TrainSpec(config.model.architecture, augmentation, arch_params, frozen, seed, config.model.init_seed,
                     config.model.input_size, t.optimizer, t.lr, t.weight_decay, t.momentum, t.batch_size,
                     t.eval_batch_size, t.epochs, config.split.sampling_seed, config.split.reshuffle_each_epoch,
                     t.precision, t.channels_last, t.compile, t.augment_every_sample,
                     tuple(t.lr_milestones), t.lr_gamma)


def plan_study(config: Config) -> StudyPlan:
    """Every job of the study, in dependency order (baselines first)."""
    data = data_spec(config)
    c = config.cam

    def cam_job(augmentation, params, seed):
        train = TrainJob(data, _train_spec(config, augmentation, params, seed))
        return CamJob(train, c.method, c.target_layer, c.target, c.storage_dtype, c.batch_size)

    seeds = config.study.seeds
    baseline_seeds = seeds if config.study.baseline == "per_seed" else seeds[:1]
    baselines = {seed: cam_job(BASELINE, {}, seed) for seed in baseline_seeds}
    models = list(baselines.values())
    pairs = []
    m = config.metrics
    for aug in config.augmentations:
        for seed in seeds:
            job = cam_job(aug.name, aug.params, seed)
            models.append(job)
            base = baselines.get(seed, baselines[seeds[0]])
            pairs.append(MetricJob(base, job, tuple(m.names), tuple(m.overlap_percents), m.kld_epsilon,
                                   m.batch_size))
    return StudyPlan(models, pairs, data)


# ------------------------------------------------------------------------------------------ job functions

def run_train_job(job: TrainJob, store: ArtifactStore, device: torch.device,
                  progress: Callable[[int], None] | None = None) -> str:
    """Train (or resume) one model; writes ``checkpoints/<key>`` and ``histories/<key>``. Idempotent."""
    if store.exists("checkpoints", job.key, "safetensors"):
        return job.key
    data = prepare_data(job.data)
    snapshot = store.load_torch("snapshots", job.key) if store.exists("snapshots", job.key, "pt") else None
    if snapshot is not None and progress is not None:
        progress(_images_per_epoch(job, data) * (snapshot["epoch"] + 1))
    result = train_model(job.spec, data, device, progress, snapshot,
                         on_epoch_end=lambda state: store.save_torch("snapshots", job.key, state))
    store.save_json("histories", job.key, {"history": result.history, "best_epoch": result.best_epoch,
                                           "train_seconds": result.train_seconds, "model": job.model_id})
    # The checkpoint is written last: its presence is what marks the job complete.
    store.save_tensors("checkpoints", job.key, result.state_dict,
                       metadata={"best_epoch": str(result.best_epoch), "spec": json.dumps(dataclasses.asdict(job.spec))})
    store.delete("snapshots", job.key, "pt")
    return job.key


def _images_per_epoch(job: TrainJob, data: PreparedData) -> int:
    doubled = job.spec.augmentation != BASELINE and not job.spec.augment_every_sample
    return len(data.train) * (2 if doubled else 1)


def load_trained_model(job: TrainJob, store: ArtifactStore, data: PreparedData, device: torch.device):
    model = initial_model(job.spec, data.num_classes, data.in_channels)
    model.load_state_dict(store.load_tensors("checkpoints", job.key))
    return model.to(device).eval()


def map_side(input_size: int | None, data: PreparedData) -> int:
    """Side of the model input, which CAMs are upsampled to: ``input_size``, or the images' own (square) side."""
    return input_size or int(data.test.images.shape[-1])


def compute_cam_set(model: torch.nn.Module, data: PreparedData, input_size: int | None, method: str,
                    target_layer: str | None, target: str, batch_size: int, storage_dtype: str,
                    device: torch.device) -> dict[str, torch.Tensor]:
    """Step 10 for one model: low-resolution CAMs, logits and CAM targets of every test image.

    Returns ``maps`` (N, h, w) in ``storage_dtype``, ``logits`` (N, K) float32, ``targets`` (N,) int64.
    The test set is fed in chunks of ``batch_size``, so memory stays bounded on any test-set size.
    """
    from auglens import cam

    maps, logits, targets = [], [], []
    test = data.test
    for start in range(0, len(test), batch_size):
        x = model_input(test.images[start : start + batch_size].to(device), data.mean, data.std, input_size)
        wanted = test.labels[start : start + batch_size].to(device) if target == "label" else None
        result = cam.compute_lowres(model, x, method=method, target_layer=target_layer, targets=wanted,
                                    batch_size=batch_size)
        maps.append(result.maps.cpu())
        logits.append(result.logits.cpu())
        targets.append(result.targets.cpu())
    dtype = torch.float16 if storage_dtype == "float16" else torch.float32
    return {"maps": torch.cat(maps).to(dtype), "logits": torch.cat(logits).float(),
            "targets": torch.cat(targets).to(torch.int64)}


def run_cam_job(job: CamJob, store: ArtifactStore, device: torch.device) -> str:
    """CAM set of one trained model on the test set. Idempotent."""
    if store.exists("cams", job.key, "safetensors"):
        return job.key
    data = prepare_data(job.train.data)
    model = load_trained_model(job.train, store, data, device)
    spec = job.train.spec
    cam_set = compute_cam_set(model, data, spec.input_size, job.method, job.target_layer, job.target,
                              job.batch_size, job.storage_dtype, device)
    store.save_tensors("cams", job.key, cam_set, metadata={"model": job.train.model_id, "method": job.method,
                                                           "input_size": str(map_side(spec.input_size, data))})
    return job.key


def pair_metric_frame(base: dict[str, torch.Tensor], other: dict[str, torch.Tensor], labels: torch.Tensor,
                      size: int, names: tuple[str, ...], overlap_percents: tuple[float, ...], kld_epsilon: float,
                      batch_size: int, device: torch.device) -> pd.DataFrame:
    """Step 11 for one pair of CAM sets: one row per test image with every metric column.

    Maps are upsampled to ``size`` chunk by chunk, so a study's full-resolution maps never sit in memory.
    """
    from auglens import cam
    from auglens.metrics import compute_pair_metrics

    base_probs = torch.softmax(base["logits"].double(), dim=1)
    other_probs = torch.softmax(other["logits"].double(), dim=1)
    columns: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(labels), batch_size):
        part = slice(start, start + batch_size)
        base_maps = cam.upsample_maps(base["maps"][part].to(device).float(), (size, size))
        other_maps = cam.upsample_maps(other["maps"][part].to(device).float(), (size, size))
        values = compute_pair_metrics(list(names), base_maps, other_maps, base_probs[part].to(device),
                                      other_probs[part].to(device), overlap_percents, kld_epsilon)
        for column, value in values.items():
            columns.setdefault(column, []).append(value.double().cpu().numpy())
    return pd.DataFrame({
        "image": np.arange(len(labels)),
        "label": labels.numpy(),
        "baseline_pred": base["logits"].argmax(1).numpy(),
        "model_pred": other["logits"].argmax(1).numpy(),
        **{column: np.concatenate(parts) for column, parts in columns.items()},
    })


def run_metric_job(job: MetricJob, store: ArtifactStore, device: torch.device) -> str:
    """Every configured metric of one augmented model against the baseline, per test image. Idempotent."""
    if store.exists("metrics", job.key, "parquet"):
        return job.key
    data = prepare_data(job.other.train.data)
    size = map_side(job.other.train.spec.input_size, data)
    frame = pair_metric_frame(store.load_tensors("cams", job.baseline.key), store.load_tensors("cams", job.other.key),
                              data.test.labels, size, job.names, job.overlap_percents, job.kld_epsilon,
                              job.batch_size, device)
    frame.insert(0, "seed", job.other.train.spec.seed)
    frame.insert(0, "augmentation", job.other.train.spec.augmentation)
    store.save_table("metrics", job.key, frame)
    return job.key


# ------------------------------------------------------------------------------------------ running

def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"runtime.device = {name!r} but CUDA is not available; use 'auto' or 'cpu'")
    return device


#: torch's thread count when auglens was imported: what ``runtime.num_threads = None`` means. Set explicitly on
#: every run because CPU results depend on it, and an earlier run in the same process may have changed it.
DEFAULT_NUM_THREADS = torch.get_num_threads()


def configure_runtime(runtime: RuntimeConfig) -> torch.device:
    """Determinism switches of Appendix B and thread count; returns the device to use."""
    torch.set_num_threads(runtime.num_threads or DEFAULT_NUM_THREADS)
    if runtime.deterministic:
        # cuBLAS needs a fixed workspace to be deterministic; must be set before its first use.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    return resolve_device(runtime.device)


@dataclass
class StudyResult:
    out_dir: Path
    performance: pd.DataFrame
    cam_metrics: pd.DataFrame
    aug_metrics: pd.DataFrame
    timings: dict[str, float] = field(default_factory=dict)


def _bar(total: int, desc: str, unit: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, dynamic_ncols=True, smoothing=0.1)


def run_local(plan: StudyPlan, store: ArtifactStore, device: torch.device, progress: bool) -> dict[str, float]:
    """Run every pending job in this process with a progress bar per stage; returns stage timings."""
    timings = {}
    trains = [job.train for job in plan.models if not store.exists("checkpoints", job.train.key, "safetensors")]
    started = time.perf_counter()
    if trains:
        data = prepare_data(plan.data)
        total = sum(_images_per_epoch(t, data) * t.spec.epochs for t in trains)
        with _bar(total, "train", "img", progress) as bar:
            for i, job in enumerate(trains):
                bar.set_postfix_str(f"{job.model_id} ({i + 1}/{len(trains)})")
                run_train_job(job, store, device, bar.update)
    timings["train_seconds"] = time.perf_counter() - started

    # CAMs per model, then metrics per augmented model: one bar each, finished jobs skipped inside the jobs.
    for stage, jobs, run in (("cam", plan.models, run_cam_job), ("metric", plan.pairs, run_metric_job)):
        started = time.perf_counter()
        with _bar(len(jobs), f"{stage}s", "model", progress) as bar:
            for job in jobs:
                run(job, store, device)
                bar.update()
        timings[f"{stage}_seconds"] = time.perf_counter() - started
    return timings


def run_study(config: Config, out_dir: str | Path, progress: bool | None = None,
              backend: str | None = None) -> StudyResult:
    """Run (or resume) a whole study into ``out_dir`` and write its tables, config and manifest."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    progress = config.runtime.progress if progress is None else progress
    backend = backend or config.runtime.backend
    device = configure_runtime(config.runtime)
    started = time.perf_counter()
    write_text_atomic(out_dir / "config.toml", dump_toml(config))
    plan = plan_study(config)
    store = ArtifactStore(config.runtime.artifacts or out_dir / "artifacts")
    if backend == "ray":
        from auglens.distributed import run_ray

        timings = run_ray(plan, store, config, progress)
    else:
        store.remove_stale_temporaries()  # a killed earlier run may have left some; nothing else writes now
        timings = run_local(plan, store, device, progress)
    result = assemble_tables(plan, store, out_dir, config)
    timings["total_seconds"] = time.perf_counter() - started
    result.timings = timings
    write_manifest(out_dir, config, plan, timings, device, backend)
    return result


# ------------------------------------------------------------------------------------------ tables

def _model_rows(plan: StudyPlan, store: ArtifactStore, out_dir: Path, data: PreparedData):
    from auglens.metrics import classification_report

    performance, history, confusion = [], [], []
    labels = data.test.labels
    for job in plan.models:
        spec = job.train.spec
        cams = store.load_tensors("cams", job.key)
        hist = store.load_json("histories", job.train.key)
        report = classification_report(cams["logits"].argmax(1), labels, data.num_classes)
        performance.append({
            "model": job.train.model_id, "augmentation": spec.augmentation, "seed": spec.seed,
            "accuracy": float(report["accuracy"]), "precision_macro": float(report["precision_macro"]),
            "recall_macro": float(report["recall_macro"]), "f1_macro": float(report["f1_macro"]),
            "best_epoch": hist["best_epoch"], "train_seconds": hist["train_seconds"],
            "cam_set": _artifact_reference(store.path("cams", job.key, "safetensors"), store, out_dir),
        })
        for row in hist["history"]:
            history.append({"model": job.train.model_id, "augmentation": spec.augmentation, "seed": spec.seed, **row})
        matrix = torch.as_tensor(report["confusion_matrix"]).numpy()
        for true in range(matrix.shape[0]):
            for pred in range(matrix.shape[1]):
                confusion.append({"model": job.train.model_id, "augmentation": spec.augmentation,
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

    frames = [store.load_table("metrics", job.key) for job in plan.pairs]
    cam_metrics = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=PER_IMAGE_KEYS)
    write_parquet(cam_metrics, out_dir / "cam_metrics.parquet")
    aug_metrics = seed_average(cam_metrics)
    write_parquet(aug_metrics, out_dir / "aug_metrics.parquet")

    write_test_set(out_dir, data)
    return StudyResult(out_dir, performance, cam_metrics, aug_metrics)


def write_test_set(out_dir: Path, data: PreparedData) -> None:
    """The test images (uint8, native size) and labels beside the tables, so reports need nothing else."""
    from safetensors.torch import save

    write_atomic(str(out_dir / "test_set.safetensors"),
                 save({"images": data.test.images.contiguous(), "labels": data.test.labels},
                      metadata={"classes": json.dumps(data.classes)}))


def metric_value_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in PER_IMAGE_KEYS]


def seed_average(cam_metrics: pd.DataFrame) -> pd.DataFrame:
    """Step 12: the mean over starting states per augmentation and test image (NaNs skipped, counted)."""
    values = metric_value_columns(cam_metrics)
    if cam_metrics.empty:
        return pd.DataFrame(columns=["augmentation", "image", "label", *values, "n_seeds", "model_correct_share"])
    frame = cam_metrics.assign(model_correct_share=(cam_metrics["model_pred"] == cam_metrics["label"]).astype(float))
    grouped = frame.groupby(["augmentation", "image"], sort=False)
    out = pd.concat([grouped[["label"]].first(), grouped[values].mean()], axis=1)
    out["n_seeds"] = grouped.size()
    out["model_correct_share"] = grouped["model_correct_share"].mean()
    return out.reset_index()


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    write_atomic(str(path), frame.to_csv(index=False).encode())


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    import io

    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    write_atomic(str(path), buffer.getvalue())


def write_manifest(out_dir: Path, config: Config, plan: StudyPlan, timings: dict[str, float],
                   device: torch.device, backend: str) -> None:
    import hashlib

    import torchvision

    import auglens

    def digest(name):
        path = out_dir / name
        return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None

    manifest = {
        "auglens": auglens.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "versions": {"torch": torch.__version__, "torchvision": torchvision.__version__,
                     "numpy": np.__version__, "pandas": pd.__version__},
        "device": str(device) if backend == "local" else f"ray ({config.runtime.ray_address or 'local'})",
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "backend": backend,
        "config_fingerprint": config.fingerprint(),
        "seeds": {"starting_states": config.study.seeds, "init_seed": config.model.init_seed,
                  "split_seed": config.split.seed, "sampling_seed": config.split.sampling_seed},
        "models": {job.train.model_id: {"train_key": job.train.key, "cam_key": job.key} for job in plan.models},
        "pairs": {f"{p.other.train.model_id}~{p.baseline.train.model_id}": p.key for p in plan.pairs},
        "tables_sha256": {name: digest(name) for name in
                          ("performance.csv", "cam_metrics.parquet", "aug_metrics.parquet")},
        "timings_seconds": timings,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_text_atomic(out_dir / "manifest.json", json.dumps(manifest, indent=1))


def summary_table(result: StudyResult) -> str:
    """Per augmentation: accuracy (mean ± std over seeds) and the median of each seed-averaged metric."""
    perf = result.performance.groupby("augmentation", sort=False)["accuracy"].agg(["mean", "std"])
    rows = pd.DataFrame({"accuracy": [f"{m:.4f} ± {0.0 if np.isnan(s) else s:.4f}" for m, s in perf.to_numpy()]},
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

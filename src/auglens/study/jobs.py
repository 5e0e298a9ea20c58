"""The study's jobs: typed, frozen specs, each with a content key, its dependencies and the function it runs.

A job is a pure function of its spec that writes one artifact to the :class:`~auglens.store.ArtifactStore`
under :attr:`Job.key`, a hash of everything the artifact depends on. It skips itself when that artifact
exists, so rerunning after a crash resumes and rerunning a finished run does nothing. Backends
(:mod:`auglens.study.backends`) run any list of jobs in dependency order, knowing only this interface:

- ``TrainJob``  (one per augmentation x starting state, plus the baseline and the retraining controls):
  best-validation weights; with
  ``training.models_at_once`` > 1 the plan runs them in ``TrainGroupJob``s, several models in lockstep,
- ``CamJob``    (one per model): the CAM set and logits on the test set,
- ``MetricJob`` (one per augmented model): every CAM metric against the baseline, per test image; the plan
  runs them as one ``MetricGroupJob`` per baseline, so each baseline map is summarised once.

A new kind of job subclasses :class:`Job` (a frozen dataclass with a ``key`` property, ``stage``,
``artifact``, ``dependencies`` and ``run``); the backends need no change.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import torch

from auglens.analysis.columns import BASELINE, CONTROL, control_name
from auglens.config import stable_hash
from auglens.data.prepared import DataSpec, PreparedData, model_input, normalised_with, prepare_data
from auglens.metrics import MetricList
from auglens.errors import UserError
from auglens.store import ArtifactError, ArtifactStore
from auglens.study.runtime import ComputeSpec
from auglens.train.loop import TrainSpec, initial_model, train_model

__all__ = ["CamJob", "Job", "MetricGroupJob", "MetricJob", "TrainGroupJob", "TrainJob", "baseline_metric_frames",
           "compute_cam_set", "load_snapshot", "load_trained_model", "map_side", "metric_groups", "pair_metric_frame",
           "run_cam_job", "run_claimed", "run_metric_group", "run_metric_job", "run_train_group", "run_train_job"]

Progress = Callable[[int], None]
log = logging.getLogger("auglens.study")


class Job:
    """What a backend needs of a job; subclasses are frozen dataclasses that define ``key`` and ``run``."""

    #: Stage name: backends group progress bars and timings by it ("train", "cam", "metric", ...).
    stage: ClassVar[str]
    #: ``(kind, ext)`` of the artifact whose presence in the store marks the job finished.
    artifact: ClassVar[tuple[str, str]]
    #: Progress unit of :meth:`size` ("model", or "img" for a training).
    unit: ClassVar[str] = "model"

    @property
    def key(self) -> str:
        raise NotImplementedError

    @property
    def dependencies(self) -> tuple[Job, ...]:
        """Jobs whose artifacts this one reads: a backend runs them first."""
        return ()

    @property
    def label(self) -> str:
        """Short name for progress bars."""
        return self.key[:12]

    @property
    def outputs(self) -> tuple[tuple[str, str], ...]:
        """``(kind, ext)`` of every artifact the job writes, :attr:`artifact` (written last) included."""
        return (self.artifact,)

    @property
    def members(self) -> tuple[Job, ...]:
        """The jobs whose artifacts this one writes: itself, or a group's members (which other jobs depend on)."""
        return (self,)

    @property
    def claim(self) -> str:
        """Name of the job's claim in the store: one process at a time computes it."""
        return f"{self.stage}-{self.key}"

    def done(self, store: ArtifactStore) -> bool:
        kind, ext = self.artifact
        return store.exists(kind, self.key, ext)

    def size(self) -> int:
        """Amount of work in :attr:`unit`, for progress bars."""
        return 1

    def run(self, store: ArtifactStore, device: torch.device, progress: Progress | None = None) -> str:
        """Write the artifact (unless it exists); returns :attr:`key`. ``progress`` receives work done in units."""
        raise NotImplementedError


# ------------------------------------------------------------------------------------------ job specs

@dataclass(frozen=True)
class TrainJob(Job):
    data: DataSpec
    spec: TrainSpec
    compute: ComputeSpec  # device, threads, determinism: they change the trained weights
    # Models trained in lockstep with this one, itself included (training.models_at_once): a stacked
    # computation equals one model at a time to float rounding only, so it is part of the key when > 1.
    lockstep: int = 1
    # A retraining control (``[[controls]]``): the setting and the value in which this baseline-like training
    # differs from the study's baseline. Not part of the key: the spec holds the value, and the training is
    # the same whatever it is called.
    control: tuple[str, int] | None = None

    stage: ClassVar[str] = "train"
    artifact: ClassVar[tuple[str, str]] = ("checkpoints", "safetensors")
    unit: ClassVar[str] = "img"

    @property
    def key(self) -> str:
        fields = {"data": dataclasses.asdict(self.data), "train": self.spec.key_fields(),
                  "compute": dataclasses.asdict(self.compute)}
        if self.lockstep > 1:
            fields["lockstep"] = self.lockstep
        return stable_hash(fields)

    @property
    def name(self) -> str:
        """What the tables call the model's kind of training (their ``augmentation`` column): the augmentation,
        ``none`` for the baseline, ``control:<setting>=<value>`` for a control."""
        return control_name(*self.control) if self.control else self.spec.augmentation

    @property
    def kind(self) -> str:
        """``baseline``, ``augmentation`` or ``control`` (the tables' ``kind`` column)."""
        if self.control:
            return CONTROL
        return "baseline" if self.spec.augmentation == BASELINE else "augmentation"

    @property
    def model_id(self) -> str:
        return f"{self.name}-s{self.spec.seed}"

    @property
    def label(self) -> str:
        return self.model_id

    @property
    def outputs(self) -> tuple[tuple[str, str], ...]:
        return (("histories", "json"), self.artifact)

    def size(self) -> int:
        return images_per_epoch(self, prepare_data(self.data)) * self.spec.epochs

    def run(self, store: ArtifactStore, device: torch.device, progress: Progress | None = None) -> str:
        return run_train_job(self, store, device, progress)


@dataclass(frozen=True)
class TrainGroupJob(Job):
    """Trainings run in lockstep as one stacked computation (``training.models_at_once``): each member's
    artifacts are written under the member's own key, so CAM jobs, resumes and the tables see ordinary
    trainings. Finished members are skipped; the others resume together from their epoch snapshots."""

    trains: tuple[TrainJob, ...]

    stage: ClassVar[str] = "train"
    artifact: ClassVar[tuple[str, str]] = ("checkpoints", "safetensors")
    unit: ClassVar[str] = "img"

    def __post_init__(self) -> None:
        if len(self.trains) < 2 or any(train.lockstep != len(self.trains) for train in self.trains):
            raise ValueError("a training group needs at least two trainings, each with lockstep = the group's size")

    @property
    def key(self) -> str:
        return stable_hash({"trains": [train.key for train in self.trains]})

    @property
    def label(self) -> str:
        return "+".join(train.model_id for train in self.trains)

    @property
    def members(self) -> tuple[Job, ...]:
        return self.trains

    @property
    def outputs(self) -> tuple[tuple[str, str], ...]:
        return self.trains[0].outputs

    def done(self, store: ArtifactStore) -> bool:
        return all(train.done(store) for train in self.trains)

    def size(self) -> int:
        return sum(train.size() for train in self.trains)

    def run(self, store: ArtifactStore, device: torch.device, progress: Progress | None = None) -> str:
        return run_train_group(self, store, device, progress)


@dataclass(frozen=True)
class WeightsFile:
    """A trained model given as a weights file (``auglens compare``): nothing to train, keyed by the file's
    SHA-256, the architecture and the data it is evaluated on.

    It offers what a CAM job needs of a training: ``key``, ``data``, ``spec`` (the architecture, its
    parameters and the input size; ``augmentation`` holds the model's name and ``seed`` is 0, which is how
    the tables name it) and ``model_id``. The file must be readable wherever the CAM job runs (on Ray: every
    node, like the store).
    """

    path: str
    sha256: str  # of the file when planned: a file changed since is refused, never silently mixed in
    data: DataSpec
    spec: TrainSpec

    @property
    def key(self) -> str:
        return stable_hash({"weights": self.sha256, "architecture": self.spec.architecture,
                            "params": list(self.spec.architecture_params), "input_size": self.spec.input_size,
                            "data": dataclasses.asdict(self.data)})

    @property
    def model_id(self) -> str:
        return self.spec.augmentation

    @property
    def name(self) -> str:
        return self.spec.augmentation

    @property
    def kind(self) -> str:
        return "baseline" if self.spec.augmentation == BASELINE else "augmentation"

    @property
    def dependencies(self) -> tuple[Job, ...]:
        return ()


@dataclass(frozen=True)
class CamJob(Job):
    #: The model whose CAMs are computed: a training of the study (run first), or a weights file.
    model: TrainJob | WeightsFile
    method: str = "gradcam"
    target_layer: str | None = None
    target: str = "predicted"
    storage_dtype: str = "float32"
    # Part of the key: CPU kernels pick their algorithm by batch shape, so the chunk size moves maps in
    # their last bits (about 1e-6, docs/artifacts.md).
    batch_size: int = 128
    #: The CAM method's options (``cam.params``), as sorted (name, value) pairs.
    params: tuple[tuple[str, object], ...] = ()

    stage: ClassVar[str] = "cam"
    artifact: ClassVar[tuple[str, str]] = ("cams", "safetensors")

    @property
    def key(self) -> str:
        # "train" names the model's key, a training's or a weights file's; the options join the key only when
        # set, so the keys of CAM sets computed before options existed still hold.
        fields = {"train": self.model.key, "method": self.method, "layer": self.target_layer,
                  "target": self.target, "dtype": self.storage_dtype, "batch": self.batch_size}
        if self.params:
            fields["params"] = [list(item) for item in self.params]
        return stable_hash(fields)

    @property
    def label(self) -> str:
        return self.model.model_id

    @property
    def dependencies(self) -> tuple[Job, ...]:
        return (self.model,) if isinstance(self.model, TrainJob) else ()

    def run(self, store: ArtifactStore, device: torch.device, progress: Progress | None = None) -> str:
        return run_cam_job(self, store, device)


@dataclass(frozen=True)
class MetricJob(Job):
    baseline: CamJob
    other: CamJob
    metrics: MetricList  # every parameter resolved (auglens.metrics.resolve_metrics): the key names every value
    batch_size: int = 1000  # not part of the key: per-image metrics do not depend on it, bit for bit (tested)

    stage: ClassVar[str] = "metric"
    artifact: ClassVar[tuple[str, str]] = ("metrics", "parquet")

    @property
    def key(self) -> str:
        return stable_hash({"baseline": self.baseline.key, "other": self.other.key, "metrics": self.metrics})

    @property
    def label(self) -> str:
        return self.other.model.model_id

    @property
    def dependencies(self) -> tuple[Job, ...]:
        return (self.baseline, self.other)

    def run(self, store: ArtifactStore, device: torch.device, progress: Progress | None = None) -> str:
        return run_metric_job(self, store, device)


@dataclass(frozen=True)
class MetricGroupJob(Job):
    """The metric jobs of every model compared with one baseline, run together: each baseline map is then
    summarised (sorted, ranked, thresholded) once for all of them. It writes the member jobs' own artifacts,
    so tables, resumes and keys are those of the members; finished members are skipped."""

    pairs: tuple[MetricJob, ...]

    stage: ClassVar[str] = "metric"
    artifact: ClassVar[tuple[str, str]] = ("metrics", "parquet")

    def __post_init__(self) -> None:
        if not self.pairs or len({pair.baseline.key for pair in self.pairs}) != 1:
            raise ValueError("a metric group needs at least one pair, all with the same baseline")

    @property
    def key(self) -> str:
        return stable_hash({"pairs": [pair.key for pair in self.pairs]})

    @property
    def label(self) -> str:
        return f"vs {self.pairs[0].baseline.model.model_id}"

    @property
    def dependencies(self) -> tuple[Job, ...]:
        return (self.pairs[0].baseline, *(pair.other for pair in self.pairs))

    def done(self, store: ArtifactStore) -> bool:
        return all(pair.done(store) for pair in self.pairs)

    def size(self) -> int:
        return len(self.pairs)

    def run(self, store: ArtifactStore, device: torch.device, progress: Progress | None = None) -> str:
        return run_metric_group(self, store, device, progress)


def metric_groups(pairs: list[MetricJob]) -> list[MetricGroupJob]:
    """``pairs`` grouped by baseline, in order of first appearance."""
    groups: dict[str, list[MetricJob]] = {}
    for pair in pairs:
        groups.setdefault(pair.baseline.key, []).append(pair)
    return [MetricGroupJob(tuple(members)) for members in groups.values()]


# ------------------------------------------------------------------------------------------ job functions

def run_train_job(job: TrainJob, store: ArtifactStore, device: torch.device,
                  progress: Progress | None = None) -> str:
    """Train (or resume) one model; writes ``checkpoints/<key>`` and ``histories/<key>``. Idempotent."""
    if store.exists("checkpoints", job.key, "safetensors"):
        return job.key
    data = prepare_data(job.data)
    snapshot = _load_snapshot(job, store)
    if snapshot is not None and progress is not None:
        progress(images_per_epoch(job, data) * (snapshot["epoch"] + 1))
    result = train_model(job.spec, data, device, progress, snapshot,
                         on_epoch_end=lambda state: store.save_torch("snapshots", job.key, state))
    save_trained(job, store, result)
    return job.key


def run_train_group(group: TrainGroupJob, store: ArtifactStore, device: torch.device,
                    progress: Progress | None = None) -> str:
    """Train (or resume) a group's unfinished members in lockstep; each member's artifacts as ``run_train_job``'s.

    Members resume together from their snapshots when all are at the same epoch; otherwise (a run killed
    while it wrote them) they start over together.
    """
    from auglens.train.stacked import train_stacked

    pending = [train for train in group.trains if not train.done(store)]
    if not pending:
        return group.key
    data = prepare_data(pending[0].data)
    snapshots = [_load_snapshot(train, store) for train in pending]
    if len({None if s is None else s["epoch"] for s in snapshots}) > 1:
        log.warning("%s: snapshots of different epochs; training the group from its first epoch", group.label)
        snapshots = [None] * len(pending)
    if snapshots[0] is not None and progress is not None:
        progress(sum(images_per_epoch(train, data) for train in pending) * (snapshots[0]["epoch"] + 1))
    results = train_stacked([train.spec for train in pending], data, device, progress, snapshots,
                            on_epoch_end=lambda i, state: store.save_torch("snapshots", pending[i].key, state))
    for train, result in zip(pending, results):
        save_trained(train, store, result)
    return group.key


def save_trained(job: TrainJob, store: ArtifactStore, result) -> None:
    """A finished training's artifacts under ``job``'s key: its history, then its checkpoint."""
    store.save_json("histories", job.key, {"history": result.history, "best_epoch": result.best_epoch,
                                           "train_seconds": result.train_seconds, "model": job.model_id})
    # The checkpoint is written last: its presence is what marks the job complete.
    store.save_tensors("checkpoints", job.key, result.state_dict,
                       metadata={"best_epoch": str(result.best_epoch), "spec": json.dumps(dataclasses.asdict(job.spec))})
    store.delete("snapshots", job.key, "pt")


def load_snapshot(store: ArtifactStore, kind: str, key: str, label: str) -> dict | None:
    """The last epoch snapshot stored as ``kind/<key>.pt``, or None; a damaged one is reported and dropped
    (the training of ``label`` starts over)."""
    if not store.exists(kind, key, "pt"):
        return None
    try:
        return store.load_torch(kind, key)
    except ArtifactError as error:
        log.warning("%s: training %s from its first epoch", error, label)
        store.delete(kind, key, "pt")
        return None


def _load_snapshot(job: TrainJob, store: ArtifactStore) -> dict | None:
    return load_snapshot(store, "snapshots", job.key, job.model_id)


def run_claimed(job: Job, store: ArtifactStore, device: torch.device, progress: Progress | None = None,
                wait: bool = True, poll: float = 2.0) -> bool:
    """Run ``job`` unless it is done, holding its claim so that no other process computes it meanwhile.

    When another live process holds the claim: with ``wait``, poll until it finishes (its artifact appears)
    or its claim goes stale (then take over); without, return False at once. Returns True once the job is done.
    """
    announced = False
    while not job.done(store):
        claim = store.try_claim(job.claim)
        if claim is not None:
            with claim:
                if not job.done(store):  # finished by the previous holder just before we got the claim
                    log.info("computing %s %s", job.stage, job.label)
                    job.run(store, device, progress)
            return True
        if not wait:
            return False
        if not announced:
            holder = store.claim_holder(job.claim) or {}
            log.info("waiting for %s %s: computed by %s (pid %s)", job.stage, job.label, holder.get("host", "?"),
                     holder.get("pid", "?"))
            announced = True
        time.sleep(poll)
    return True


def images_per_epoch(job: TrainJob, data: PreparedData) -> int:
    doubled = job.spec.augmentation != BASELINE and not job.spec.augment_every_sample
    return len(data.train) * (2 if doubled else 1)


def load_trained_model(job: TrainJob | WeightsFile, store: ArtifactStore, data: PreparedData,
                       device: torch.device) -> torch.nn.Module:
    """The trained model of ``job`` in eval mode on ``device``: a training's checkpoint from the store, or a
    weights file (whose SHA-256 must still be the planned one)."""
    model = initial_model(job.spec, data.num_classes, data.in_channels, pretrained=False)
    if isinstance(job, WeightsFile):
        from auglens.models.weights import load_state_dict
        from auglens.provenance import file_sha256

        if file_sha256(job.path) != job.sha256:
            raise UserError(f"{job.path} changed since the comparison was planned (its SHA-256 differs); "
                                "rerun the command to compare the file as it is now")
        model.load_state_dict(load_state_dict(job.path))
    else:
        model.load_state_dict(store.load_tensors("checkpoints", job.key))
    return model.to(device).eval()


def map_side(input_size: int | None, data: PreparedData) -> int:
    """Side of the model input, which CAMs are upsampled to: ``input_size``, or the images' own (square) side."""
    return input_size or int(data.test.images.shape[-1])


def compute_cam_set(model: torch.nn.Module, data: PreparedData, input_size: int | None, method: str,
                    target_layer: str | None, target: str, batch_size: int, storage_dtype: str,
                    device: torch.device, method_params: dict | None = None) -> dict[str, torch.Tensor]:
    """Step 10 for one model: low-resolution CAMs, logits and CAM targets of every test image.

    Returns ``maps`` (N, h, w) in ``storage_dtype``, ``logits`` (N, K) float32, ``targets`` (N,) int64.
    The test set is fed in chunks of ``batch_size``, so memory stays bounded on any test-set size.
    ``method_params``: the CAM method's options (e.g. ``score_batch_size`` for Score-CAM).
    """
    from auglens import cam

    maps, logits, targets = [], [], []
    test = data.test
    for start in range(0, len(test), batch_size):
        x = model_input(test.images[start : start + batch_size].to(device), data.mean, data.std, input_size)
        wanted = test.labels[start : start + batch_size].to(device) if target == "label" else None
        result = cam.compute_lowres(model, x, method=method, target_layer=target_layer, targets=wanted,
                                    batch_size=batch_size, **(method_params or {}))
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
    spec = job.model.spec
    data = normalised_with(prepare_data(job.model.data), spec.normalisation)
    model = load_trained_model(job.model, store, data, device)
    cam_set = compute_cam_set(model, data, spec.input_size, job.method, job.target_layer, job.target,
                              job.batch_size, job.storage_dtype, device, dict(job.params))
    store.save_tensors("cams", job.key, cam_set, metadata={"model": job.model.model_id, "method": job.method,
                                                           "input_size": str(map_side(spec.input_size, data))})
    return job.key


def pair_metric_frame(base: dict[str, torch.Tensor], other: dict[str, torch.Tensor], labels: torch.Tensor,
                      size: int, metrics: MetricList, batch_size: int, device: torch.device,
                      masks: torch.Tensor | None = None) -> pd.DataFrame:
    """Step 11 for one pair of CAM sets: one row per test image with every metric column."""
    return baseline_metric_frames(base, [other], labels, size, metrics, batch_size, device, masks)[0]


#: Bytes of upsampled float32 maps one metric chunk may hold (baseline + every model of a group).
METRIC_CHUNK_BYTES = 512 << 20


def baseline_metric_frames(base: dict[str, torch.Tensor], others: list[dict[str, torch.Tensor]],
                           labels: torch.Tensor, size: int, metrics: MetricList, batch_size: int,
                           device: torch.device, masks: torch.Tensor | None = None) -> list[pd.DataFrame]:
    """Step 11 for one baseline CAM set against several models' sets: per model, one row per test image.

    Maps are upsampled to ``size`` chunk by chunk (at most ``batch_size`` images, and at most
    ``METRIC_CHUNK_BYTES`` of maps), so a study's full-resolution maps never sit in memory; within a chunk
    each baseline map is summarised once for every model (``auglens.metrics.compute_baseline_metrics``).
    ``masks`` (N, size, size) bool: the test images' object masks at the maps' size, for the mask metrics.
    """
    from auglens import cam
    from auglens.metrics import compute_baseline_metrics

    base_probs = torch.softmax(base["logits"].double(), dim=1)
    other_probs = [torch.softmax(other["logits"].double(), dim=1) for other in others]
    columns: list[dict[str, list[np.ndarray]]] = [{} for _ in others]
    rows = max(1, min(batch_size, METRIC_CHUNK_BYTES // (4 * size * size * (len(others) + 1))))
    for start in range(0, len(labels), rows):
        part = slice(start, start + rows)
        base_maps = cam.upsample_maps(base["maps"][part].to(device).float(), (size, size))
        other_maps = [cam.upsample_maps(other["maps"][part].to(device).float(), (size, size)) for other in others]
        part_masks = None if masks is None else masks[part].to(device)
        values = compute_baseline_metrics(metrics, base_maps, other_maps, base_probs[part].to(device),
                                          [probs[part].to(device) for probs in other_probs], part_masks)
        for model_columns, model_values in zip(columns, values):
            for column, value in model_values.items():
                model_columns.setdefault(column, []).append(value.double().cpu().numpy())
    return [pd.DataFrame({
        "image": np.arange(len(labels)),
        "label": labels.numpy(),
        "baseline_pred": base["logits"].argmax(1).numpy(),
        "model_pred": other["logits"].argmax(1).numpy(),
        **{column: np.concatenate(parts) for column, parts in model_columns.items()},
    }) for other, model_columns in zip(others, columns)]


def _test_masks(job: MetricJob, data: PreparedData, size: int) -> torch.Tensor | None:
    """The test images' object masks at the maps' size when ``job`` asks for a mask metric, else None."""
    from auglens.data import resize_masks
    from auglens.metrics import MASK_METRIC_NAMES

    wanted = [name for name, _ in job.metrics if name in MASK_METRIC_NAMES]
    if not wanted:
        return None
    if data.test.masks is None:
        raise ValueError(f"metrics {', '.join(wanted)} need object masks, and data set "
                         f"{job.other.model.data.name!r} has none for its test images")
    return resize_masks(data.test.masks, size)


def run_metric_job(job: MetricJob, store: ArtifactStore, device: torch.device) -> str:
    """Every configured metric of one augmented (or control) model against the baseline, per test image; its
    ``augmentation`` column holds the model's :attr:`TrainJob.name`. Idempotent."""
    if store.exists("metrics", job.key, "parquet"):
        return job.key
    data = prepare_data(job.other.model.data)
    size = map_side(job.other.model.spec.input_size, data)
    frame = pair_metric_frame(store.load_tensors("cams", job.baseline.key), store.load_tensors("cams", job.other.key),
                              data.test.labels, size, job.metrics, job.batch_size, device,
                              _test_masks(job, data, size))
    frame.insert(0, "seed", job.other.model.spec.seed)
    frame.insert(0, "augmentation", job.other.model.name)
    store.save_table("metrics", job.key, frame)
    return job.key


def run_metric_group(group: MetricGroupJob, store: ArtifactStore, device: torch.device,
                     progress: Progress | None = None) -> str:
    """The pending metric jobs of ``group`` in one pass over the baseline's maps. Idempotent."""
    pending = [pair for pair in group.pairs if not pair.done(store)]
    if progress is not None and len(pending) < len(group.pairs):
        progress(len(group.pairs) - len(pending))
    if not pending:
        return group.key
    first = pending[0]
    data = prepare_data(first.other.model.data)
    # Pairs compared alike (same metrics, map size) share one pass; others (rare) get their own.
    passes: dict[tuple, list[MetricJob]] = {}
    for pair in pending:
        shape = (pair.metrics, pair.batch_size,
                 map_side(pair.other.model.spec.input_size, prepare_data(pair.other.model.data)))
        passes.setdefault(shape, []).append(pair)
    base = store.load_tensors("cams", first.baseline.key)
    for (metrics, batch_size, size), members in passes.items():
        frames = baseline_metric_frames(base, [store.load_tensors("cams", pair.other.key) for pair in members],
                                        data.test.labels, size, metrics, batch_size, device,
                                        _test_masks(members[0], data, size))
        for pair, frame in zip(members, frames):
            frame.insert(0, "seed", pair.other.model.spec.seed)
            frame.insert(0, "augmentation", pair.other.model.name)
            store.save_table("metrics", pair.key, frame)
            if progress is not None:
                progress(1)
    return group.key

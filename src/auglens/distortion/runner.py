"""Shared machinery of the distortion analyses: models trained once and reused, results cached per run.

Every trained model and every per-run result is an artifact of the :class:`~auglens.store.ArtifactStore`
under ``<out>/distortion/artifacts``, keyed by a hash of exactly what it depends on (the data, the
:class:`~auglens.train.loop.TrainSpec`, the analysis settings). A rerun therefore skips finished work, an
interrupted training resumes from its last epoch snapshot, and analyses that need the same model (the
baseline of seed 1, say) share it.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from auglens.augment import sample_keys
from auglens.config import stable_hash
from auglens.data.prepared import DataSpec, PreparedData, prepare_data
from auglens.data.split import stratified_subset
from auglens.store import ArtifactStore
from auglens.study.runtime import configure_runtime
from auglens.train.loop import TrainSpec, initial_model, predict_logits, train_model

if TYPE_CHECKING:
    from auglens.distortion.config import DistortionConfig

BASELINE = "none"


@dataclasses.dataclass(frozen=True)
class Model:
    """One model of an analysis: what it was trained with, and the loaded network."""

    label: str  # augmentation name ("none" for the baseline)
    seed: int
    key: str
    spec: TrainSpec
    network: torch.nn.Module
    # Input normalisation when it is not the data's (a pretrained ImageNet model's), (C,) each.
    mean: torch.Tensor | None = None
    std: torch.Tensor | None = None


class Runner:
    """Trains/loads models and caches per-run results for one :class:`DistortionConfig` and output folder."""

    def __init__(self, config: DistortionConfig, out_dir: str | Path):
        self.config = config
        self.root = Path(out_dir) / "distortion"
        self.store = ArtifactStore(config.runtime.artifacts or self.root / "artifacts")
        self.device = configure_runtime(config.runtime)
        self._data: dict[str, PreparedData] = {}

    # ------------------------------------------------------------------ data
    @property
    def data_spec(self) -> DataSpec:
        d, s = self.config.data, self.config.split
        return DataSpec(d.name, d.root, d.download, d.image_size, d.train_subset, d.test_subset, d.subset_seed,
                        s.validation_fraction, s.seed)

    def data(self) -> tuple[PreparedData, str]:
        """The study's prepared data and its key."""
        return prepare_data(self.data_spec), stable_hash(dataclasses.asdict(self.data_spec))

    def custom_data(self, key_obj: Any, build: Callable[[], Any]) -> tuple[Any, str]:
        """Data derived from the study's (a class removed, stacked pairs), built once per process, and its key."""
        key = stable_hash(key_obj)
        if key not in self._data:
            self._data[key] = build()
        return self._data[key], key

    # ------------------------------------------------------------------ models
    def train_spec(self, augmentation: str, params: dict[str, Any], seed: int, **changes: Any) -> TrainSpec:
        """The TrainSpec of one model of run ``seed``; ``changes`` override fields (e.g. ``input_size=None``)."""
        c, t = self.config, self.config.training
        frozen = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in params.items() if v is not None))
        # The paper's runs are independent trainings: run s gets its own initial weights and data order
        # (shared by every model type of that run, so the types are compared on paired runs).
        spec = TrainSpec(
            architecture=c.model.architecture, augmentation=augmentation,
            architecture_params=tuple(sorted(c.model.params.items())), augmentation_params=frozen, seed=seed,
            init_seed=c.model.init_seed + seed, input_size=c.model.input_size, optimizer=t.optimizer, lr=t.lr,
            weight_decay=t.weight_decay, momentum=t.momentum, batch_size=t.batch_size,
            eval_batch_size=t.eval_batch_size, epochs=t.epochs, sampling_seed=c.split.sampling_seed + seed,
            reshuffle_each_epoch=c.split.reshuffle_each_epoch, precision=t.precision,
            channels_last=t.channels_last, compile=t.compile, augment_every_sample=t.augment_every_sample,
            lr_milestones=tuple(t.lr_milestones), lr_gamma=t.lr_gamma, checkpoint=t.checkpoint)
        return dataclasses.replace(spec, **changes)

    def model(self, spec: TrainSpec, data: PreparedData, data_key: str, label: str | None = None) -> Model:
        """Train (or resume, or load) one model; weights are stored under ``checkpoints/<key>``."""
        key = stable_hash({"data": data_key, "train": dataclasses.asdict(spec)})
        if not self.store.exists("checkpoints", key, "safetensors"):
            self.log(f"training {spec.augmentation} (seed {spec.seed}, {spec.epochs} epochs)")
            snapshot = self.store.load_torch("snapshots", key) if self.store.exists("snapshots", key, "pt") else None
            result = train_model(spec, data, self.device, snapshot=snapshot,
                                 on_epoch_end=lambda state: self.store.save_torch("snapshots", key, state))
            self.store.save_json("histories", key, {"history": result.history, "best_epoch": result.best_epoch,
                                                    "train_seconds": result.train_seconds,
                                                    "spec": dataclasses.asdict(spec)})
            self.store.save_tensors("checkpoints", key, result.state_dict)  # written last: marks completion
            self.store.delete("snapshots", key, "pt")
        network = initial_model(spec, data.num_classes, data.in_channels)
        network.load_state_dict(self.store.load_tensors("checkpoints", key))
        return Model(label or spec.augmentation, spec.seed, key, spec, network.to(self.device).eval())

    def history(self, model: Model) -> list[dict[str, float]]:
        """The per-epoch training history of a trained model (losses, validation scores, time)."""
        return self.store.load_json("histories", model.key)["history"]

    def pretrained(self) -> Model:
        """torchvision's pretrained ImageNet model (``model.pretrained``): one run of the basic model, no training."""
        from auglens.models.pretrained import IMAGENET_MEAN, IMAGENET_STD, load_pretrained, pretrained_weights_path

        c = self.config
        path = pretrained_weights_path(c.model.architecture)
        network = load_pretrained(c.model.architecture)
        spec = TrainSpec(c.model.architecture, BASELINE, seed=c.runs.seeds[0], input_size=c.model.input_size or 224,
                         eval_batch_size=c.training.eval_batch_size)
        key = stable_hash({"pretrained": c.model.architecture, "file": path.name, "bytes": path.stat().st_size})
        return Model(BASELINE, spec.seed, key, spec, network.to(self.device).eval(),
                     torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD))

    def models(self, data: PreparedData, data_key: str, **changes: Any) -> list[Model]:
        """The baseline and every configured augmentation, for every seed (baseline first).

        With ``model.pretrained``: the pretrained model alone.
        """
        if self.config.model.pretrained:
            return [self.pretrained()]
        wanted = [(BASELINE, {})] + [(a.name, a.params) for a in self.config.augmentations]
        return [self.model(self.train_spec(name, params, seed, **changes), data, data_key)
                for name, params in wanted for seed in self.config.runs.seeds]

    # ------------------------------------------------------------------ evaluation
    def logits(self, model: Model, images: torch.Tensor, data: PreparedData | None) -> torch.Tensor:
        """Logits of uint8 or [0, 1] float images in eval mode; (N, C, H, W) -> (N, K) on the device."""
        mean, std = self.stats(model, data)
        return predict_logits(model.network, images, mean, std, model.spec.input_size, model.spec.eval_batch_size,
                              self.device)

    def predict(self, model: Model, images: torch.Tensor, data: PreparedData | None) -> torch.Tensor:
        """Predicted classes of uint8 or [0, 1] float images; (N, C, H, W) -> (N,) int64 on the CPU."""
        return self.logits(model, images, data).argmax(1).cpu()

    @staticmethod
    def stats(model: Model, data: PreparedData | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The model's input normalisation: its own (pretrained models) or the training data's."""
        return (model.mean, model.std) if model.mean is not None else (data.mean, data.std)

    def keys(self, run_seed: int, count: int, offset: int = 0) -> torch.Tensor:
        """Keys of one run's test-time distortions: (distortion_seed, run seed, offset + image index).

        Every model of a run sees the same distorted images; ``offset`` separates image sets (train/test).
        """
        return sample_keys(self.config.runs.distortion_seed, run_seed, torch.arange(count) + offset).to(self.device)

    @staticmethod
    def subset(images, size: int | None, seed: int = 0):
        """Stratified subset of an ImageSet (all when size is None)."""
        return images.subset(stratified_subset(images.labels, size, seed))

    def cached(self, kind: str, key_obj: Any, compute: Callable[[], Any]) -> Any:
        """A per-run result (JSON-able) computed once and stored atomically under ``kind/<hash of key_obj>``."""
        key = stable_hash(key_obj)
        if self.store.exists(kind, key, "json"):
            return self.store.load_json(kind, key)
        self.store.save_json(kind, key, compute())
        # Read back, so a fresh result and a cached one are the same object (JSON sorts keys, floats round-trip).
        return self.store.load_json(kind, key)

    def log(self, message: str) -> None:
        if self.config.runtime.progress:
            print(f"auglens distortion: {message}", file=sys.stderr, flush=True)


def timer() -> Callable[[], float]:
    started = time.perf_counter()
    return lambda: time.perf_counter() - started

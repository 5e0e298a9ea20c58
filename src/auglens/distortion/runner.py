"""Shared machinery of the distortion analyses: models trained once and reused, results cached per run.

Models are trained by the study's jobs (:class:`~auglens.study.jobs.TrainJob`) on the study's backends
(``local`` here, or ``ray``: ``runtime.backend`` or ``auglens distortion --backend``), into the
:class:`~auglens.store.ArtifactStore` under ``<out>/distortion/artifacts`` (or ``runtime.artifacts``) with
the study's content keys: a model a study trained with the same data and recipe is reused, not retrained.
Per-run results are artifacts too, keyed by a hash of exactly what they depend on (the model, the data,
the analysis settings). A rerun therefore skips finished work, an interrupted training resumes from its
last epoch snapshot, and analyses that need the same model (the baseline of seed 1, say) share it.
Analyses hand every training they need to :meth:`Runner.train` at once, so Ray runs them in parallel;
the evaluation then runs in this process on the stored weights.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from auglens.augment import BASELINE, sample_keys
from auglens.config import stable_hash
from auglens.data.prepared import DataSpec, PreparedData, prepare_data
from auglens.data.split import stratified_subset
from auglens.distortion.derived import DerivedData, derived
from auglens.store import ArtifactStore
from auglens.study.jobs import TrainJob
from auglens.study.runner import open_run
from auglens.study.runtime import ComputeSpec
from auglens.study.specs import data_spec, train_spec
from auglens.train.loop import TrainSpec, initial_model, predict_logits



@dataclasses.dataclass(frozen=True)
class Model:
    """One model of an analysis: what it was trained with, and the loaded network."""

    label: str  # augmentation name (BASELINE for the baseline)
    seed: int
    key: str
    spec: TrainSpec
    network: torch.nn.Module
    # Input normalisation when it is not the data's (a pretrained ImageNet model's), (C,) each.
    mean: torch.Tensor | None = None
    std: torch.Tensor | None = None


class Runner:
    """Trains/loads models and caches per-run results for one :class:`DistortionConfig` and output folder."""

    def __init__(self, config: Any, out_dir: str | Path, backend: str | None = None, provenance: dict | None = None):
        # ``config``: a validated DistortionConfig (not imported, even for typing: the config module reads the
        # analysis registry, whose entries name this class)
        self.config = config
        self.root = Path(out_dir) / "distortion"
        # The study's runner: device, thread and determinism settings, the resolved settings that change
        # results (part of every training key, as in a study), the store and the backend.
        self.run = open_run(config.runtime, self.root / "artifacts", backend, provenance=provenance,
                            log_folder=out_dir)
        self.run.computes_here()  # the analyses evaluate models in this process
        self._specs: dict[str, DataSpec | DerivedData] = {}  # data key -> the spec its jobs carry

    @property
    def store(self) -> ArtifactStore:
        return self.run.store

    @property
    def device(self) -> torch.device:
        return self.run.device

    @property
    def backend(self) -> str:
        return self.run.backend

    @property
    def compute(self) -> ComputeSpec:
        return self.run.compute

    # ------------------------------------------------------------------ data
    @property
    def data_spec(self) -> DataSpec:
        return data_spec(self.config.data, self.config.split)

    def data(self) -> tuple[PreparedData, str]:
        """The configured data, prepared, and its key."""
        return self._register(self.data_spec)

    def derived_data(self, recipe: str, base_key: str | None = None, **params: Any) -> tuple[PreparedData, str]:
        """Data derived from the configured data (:mod:`auglens.distortion.derived`), prepared, and its key."""
        return self._register(derived(recipe, self._specs[base_key] if base_key else None, **params))

    def spec(self, data_key: str) -> DataSpec | DerivedData:
        """The data spec registered under ``data_key``."""
        return self._specs[data_key]

    def _register(self, spec: DataSpec | DerivedData) -> tuple[PreparedData, str]:
        key = stable_hash(dataclasses.asdict(spec))
        self._specs[key] = spec
        return prepare_data(spec), key

    # ------------------------------------------------------------------ models
    def train_spec(self, augmentation: str, params: dict[str, Any], seed: int, **changes: Any) -> TrainSpec:
        """The TrainSpec of one model of run ``seed``; ``changes`` override fields (e.g. ``input_size=None``).

        Built by the study's builder (:func:`auglens.study.specs.train_spec`), so every training setting
        reaches it. The paper's runs are independent trainings: run s gets its own initial weights and data
        order (``run_offset = s``), shared by every model type of that run, so the types are compared on
        paired runs.
        """
        c = self.config
        spec = train_spec(c.model, c.training, c.split, augmentation, params, seed, run_offset=seed)
        return dataclasses.replace(spec, **changes)

    def job(self, spec: TrainSpec, data_key: str) -> TrainJob:
        """The study's training job of one model on registered data (same content key as a study's)."""
        return TrainJob(self._specs[data_key], spec, self.compute)

    def train(self, jobs: list[TrainJob]) -> None:
        """Run the pending trainings through the study's runner: here, or as Ray tasks in parallel."""
        pending = list({job.key: job for job in jobs if not job.done(self.store)}.values())
        if not pending:
            return
        self.log(f"training {len(pending)} model(s) on the {self.backend} backend")
        self.run.execute(pending)

    def model(self, spec: TrainSpec, data: PreparedData, data_key: str, label: str | None = None) -> Model:
        """Train (or resume, or load) one model; weights are stored under ``checkpoints/<key>``."""
        job = self.job(spec, data_key)
        self.train([job])
        network = initial_model(spec, data.num_classes, data.in_channels)
        network.load_state_dict(self.store.load_tensors("checkpoints", job.key))
        return Model(label or spec.augmentation, spec.seed, job.key, spec, network.to(self.device).eval())

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
        specs = [self.train_spec(name, params, seed, **changes) for name, params in wanted
                 for seed in self.config.runs.seeds]
        self.train([self.job(spec, data_key) for spec in specs])  # all at once: in parallel on Ray
        return [self.model(spec, data, data_key) for spec in specs]

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
        if self.store.sound(kind, key, "json"):
            return self.store.load_json(kind, key)
        self.store.save_json(kind, key, compute())
        # Read back, so a fresh result and a cached one are the same object (JSON sorts keys, floats round-trip).
        return self.store.load_json(kind, key)

    def log(self, message: str) -> None:
        if self.run.progress:
            print(f"auglens distortion: {message}", file=sys.stderr, flush=True)


def timer() -> Callable[[], float]:
    started = time.perf_counter()
    return lambda: time.perf_counter() - started

"""The study's per-model analyses as jobs: faithfulness of each model's CAMs, CKA of each compared model's layers.

- ``FaithfulnessJob`` (one per model, baselines included): deletion, insertion and ROAD scores of the model's
  stored CAMs (:mod:`auglens.metrics.faithfulness`) on a stratified subset of the test images, one row per
  image; keyed by the CAM set's key and every setting, so a rerun computes nothing.
- ``CkaJob`` (one per model compared with a baseline, i.e. per metric pair of the plan): the CKA between the two
  trained models' activations at every block (:mod:`auglens.metrics.cka`), one row per layer; keyed by the two
  models' keys and the settings (not by the CAM settings: the maps play no part).

Both are ordinary :class:`~auglens.study.jobs.Job`\\ s: the local and Ray backends run them like the others.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from collections.abc import Callable
from typing import ClassVar

import numpy as np
import pandas as pd
import torch

from auglens.config import Config, stable_hash
from auglens.data.prepared import PreparedData, model_input, prepare_data
from auglens.store import ArtifactStore
from auglens.registry import Registry
from auglens.study.jobs import CamJob, Job, MetricJob, Progress, TrainJob, WeightsFile, load_trained_model, map_side

__all__ = ["MODEL_ANALYSES", "CkaJob", "CkaSpec", "FaithfulnessJob", "FaithfulnessSpec", "ModelAnalysis",
           "analysis_subset", "cka_jobs", "faithfulness_jobs", "run_cka_job", "run_faithfulness_job"]

#: Seed of the stratified test subsets the analyses use (auglens's choice; fixed, so every model sees the same
#: images and the subset is part of no key beyond its size).
SUBSET_SEED = 0


def analysis_subset(data: PreparedData, size: int | None) -> torch.Tensor:
    """Sorted indices of the stratified test subset of ``size`` images (all of them for None or more than there are)."""
    from auglens.data.split import stratified_subset

    return stratified_subset(data.test.labels, size, SUBSET_SEED)


@dataclass(frozen=True)
class FaithfulnessSpec:
    """The settings of ``[faithfulness]`` that change its values (all of them: every one is in the key)."""

    measures: tuple[str, ...] = ("deletion", "insertion", "road")
    steps: int = 20
    baseline: str = "mean"
    blur_sigma: float = 5 / 224
    percentiles: tuple[float, ...] = (10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0)
    noise: float = 0.01
    seed: int = 0
    test_subset: int | None = 200
    batch_size: int = 64


@dataclass(frozen=True)
class CkaSpec:
    """The settings of ``[cka]``; ``layers`` empty: the architecture's blocks (:func:`auglens.metrics.cka.default_layers`)."""

    estimator: str = "linear"
    layers: tuple[str, ...] = ()
    test_subset: int | None = 250
    batch_size: int = 100


@dataclass(frozen=True)
class FaithfulnessJob(Job):
    cams: CamJob
    spec: FaithfulnessSpec

    stage: ClassVar[str] = "faithfulness"
    artifact: ClassVar[tuple[str, str]] = ("faithfulness", "parquet")

    @property
    def key(self) -> str:
        return stable_hash({"cams": self.cams.key, "faithfulness": dataclasses.asdict(self.spec)})

    @property
    def label(self) -> str:
        return self.cams.model.model_id

    @property
    def dependencies(self) -> tuple[Job, ...]:
        return (self.cams,)

    def run(self, store: ArtifactStore, device: torch.device, progress: Progress | None = None) -> str:
        return run_faithfulness_job(self, store, device)


@dataclass(frozen=True)
class CkaJob(Job):
    baseline: TrainJob | WeightsFile
    other: TrainJob | WeightsFile
    spec: CkaSpec

    stage: ClassVar[str] = "cka"
    artifact: ClassVar[tuple[str, str]] = ("cka", "parquet")

    @property
    def key(self) -> str:
        return stable_hash({"baseline": self.baseline.key, "other": self.other.key, "cka": dataclasses.asdict(self.spec)})

    @property
    def label(self) -> str:
        return f"{self.other.model_id} vs {self.baseline.model_id}"

    @property
    def dependencies(self) -> tuple[Job, ...]:
        return tuple(model for model in (self.baseline, self.other) if isinstance(model, TrainJob))

    def run(self, store: ArtifactStore, device: torch.device, progress: Progress | None = None) -> str:
        return run_cka_job(self, store, device)


def _model_columns(model: TrainJob | WeightsFile) -> dict[str, object]:
    # The model's name in every table: its augmentation, "none" for the baseline, control:<setting>=<value> for
    # a retraining control (whose spec's augmentation is "none" too), and its kind beside it.
    return {"augmentation": model.name, "kind": model.kind, "seed": model.spec.seed}


def run_faithfulness_job(job: FaithfulnessJob, store: ArtifactStore, device: torch.device) -> str:
    """Faithfulness of one model's CAMs on the subset, one row per image. Idempotent."""
    from auglens import cam
    from auglens.metrics.faithfulness import faithfulness_scores, road_noise

    if store.exists("faithfulness", job.key, "parquet"):
        return job.key
    spec, model_job = job.spec, job.cams.model
    data = prepare_data(model_job.data)
    model = load_trained_model(model_job, store, data, device)
    cams = store.load_tensors("cams", job.cams.key)
    size = map_side(model_job.spec.input_size, data)
    indices = analysis_subset(data, spec.test_subset)
    columns: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(indices), spec.batch_size):
        part = indices[start : start + spec.batch_size]
        x = model_input(data.test.images[part].to(device), data.mean, data.std, model_job.spec.input_size)
        maps = cam.upsample_maps(cams["maps"][part].to(device).float(), (size, size))
        noise = None
        if "road" in spec.measures:
            noise = road_noise(part.tolist(), tuple(x.shape[1:]), spec.seed, 2 * len(spec.percentiles))
        scores = faithfulness_scores(model, x, maps, cams["targets"][part].to(device), spec.measures,
                                     spec.steps, spec.baseline, spec.blur_sigma, spec.percentiles, noise, spec.noise)
        for column, values in scores.items():
            columns.setdefault(column, []).append(values.double().cpu().numpy())
    frame = pd.DataFrame({
        **_model_columns(model_job),
        "image": indices.numpy(),
        "label": data.test.labels[indices].numpy(),
        "target": cams["targets"][indices].numpy(),
        "model_pred": cams["logits"][indices].argmax(1).numpy(),
        **{column: np.concatenate(parts) for column, parts in columns.items()},
    })
    store.save_table("faithfulness", job.key, frame)
    return job.key


def run_cka_job(job: CkaJob, store: ArtifactStore, device: torch.device) -> str:
    """CKA between the baseline and the other model at every layer, on the subset; one row per layer. Idempotent."""
    from auglens.metrics.cka import CkaAccumulator, default_layers, layer_activations

    if store.exists("cka", job.key, "parquet"):
        return job.key
    spec = job.spec
    data = prepare_data(job.other.data)
    models = [load_trained_model(m, store, data, device) for m in (job.baseline, job.other)]
    layers = list(spec.layers) or default_layers(models[1])
    indices = analysis_subset(data, spec.test_subset)
    accumulators = {layer: CkaAccumulator(spec.estimator, len(indices)) for layer in layers}
    for start in range(0, len(indices), spec.batch_size):
        part = indices[start : start + spec.batch_size]
        images = data.test.images[part].to(device)
        acts = [layer_activations(model, layers, model_input(images, data.mean, data.std, m.spec.input_size))
                for model, m in zip(models, (job.baseline, job.other))]
        for layer in layers:
            accumulators[layer].update(acts[0][layer], acts[1][layer])
    frame = pd.DataFrame({
        **_model_columns(job.other),
        "baseline_model": job.baseline.model_id,
        "layer_index": np.arange(len(layers)),
        "layer": layers,
        "cka": [accumulators[layer].value() for layer in layers],
        "estimator": spec.estimator,
        "images": len(indices),
    })
    store.save_table("cka", job.key, frame)
    return job.key


def faithfulness_jobs(config: Config, models: list[CamJob]) -> list[FaithfulnessJob]:
    """One faithfulness job per model's CAM set when ``[faithfulness]`` is enabled."""
    f = config.faithfulness
    if not f.enabled:
        return []
    spec = FaithfulnessSpec(tuple(f.measures), f.steps, f.baseline, float(f.blur_sigma),
                            tuple(float(p) for p in f.percentiles), float(f.noise), f.seed, f.test_subset, f.batch_size)
    return [FaithfulnessJob(job, spec) for job in models]


def cka_jobs(config: Config, pairs: list[MetricJob]) -> list[CkaJob]:
    """One CKA job per model compared with a baseline (each metric pair's two models) when ``[cka]`` is enabled."""
    c = config.cka
    if not c.enabled:
        return []
    spec = CkaSpec(c.estimator, tuple(c.layers), c.test_subset, c.batch_size)
    unique = {(pair.baseline.model.key, pair.other.model.key): CkaJob(pair.baseline.model, pair.other.model, spec)
              for pair in pairs}
    return list(unique.values())


@dataclass(frozen=True)
class ModelAnalysis:
    """A per-model analysis of a study: its config section and how the plan makes its jobs from the models (their
    CAM sets) and the compared pairs. Its jobs run on every backend and resume like the others."""

    name: str  # also the config section's name
    plan: Callable[[Config, list[CamJob], list[MetricJob]], list[Job]]
    description: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "__doc__", self.description)  # what Registry.describe (auglens ls) reads

    def __call__(self) -> ModelAnalysis:  # the registry holds factories; an analysis is its own
        return self


#: The study's per-model analyses, planned after the metric tables (in name order).
MODEL_ANALYSES: Registry[ModelAnalysis] = Registry("model analysis")
for _analysis in (
    ModelAnalysis("faithfulness", lambda config, models, pairs: faithfulness_jobs(config, models),
                  "Deletion, insertion and ROAD scores of every model's CAMs ([faithfulness], off by default)"),
    ModelAnalysis("cka", lambda config, models, pairs: cka_jobs(config, pairs),
                  "Linear CKA between the baseline and each compared model at every block ([cka])"),
):
    MODEL_ANALYSES.register(_analysis.name)(_analysis)

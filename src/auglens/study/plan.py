"""A study's plan: the config unpacked into its jobs (thesis steps 6–11), baselines first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from auglens.analysis.columns import BASELINE
from auglens.config import Config
from auglens.data.prepared import DataSpec
from auglens.metrics import resolve_metrics
from auglens.study.jobs import CamJob, Job, MetricJob, TrainJob, metric_groups
from auglens.study.runtime import ComputeSpec, compute_spec
from auglens.train.loop import TrainSpec

__all__ = ["StudyPlan", "data_spec", "plan_study", "train_spec"]


@dataclass
class StudyPlan:
    models: list[CamJob]  # one per model, baseline(s) first; each carries its TrainJob
    pairs: list[MetricJob]
    data: DataSpec

    @property
    def jobs(self) -> list[Job]:
        """Every job in dependency order: the trainings, the CAM sets, the metric tables (one group per baseline)."""
        return [*self._trains(), *self.models, *metric_groups(self.pairs)]

    @property
    def artifact_jobs(self) -> list[Job]:
        """Every job that writes an artifact under its own key (the metric pairs, not their groups), in
        dependency order: what checking and healing the store walk through."""
        return [*self._trains(), *self.models, *self.pairs]

    def _trains(self) -> list[TrainJob]:
        return list({job.train.key: job.train for job in self.models}.values())


def data_spec(config: Config) -> DataSpec:
    d, s = config.data, config.split
    return DataSpec(d.name, d.root, d.download, d.image_size, d.train_subset, d.test_subset, d.subset_seed,
                    s.validation_fraction, s.seed)


def train_spec(config: Config, augmentation: str, params: dict[str, Any], seed: int) -> TrainSpec:
    t = config.training
    frozen = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in params.items()))
    arch_params = tuple(sorted(config.model.params.items()))
    return TrainSpec(config.model.architecture, augmentation, arch_params, frozen, seed, config.model.init_seed,
                     config.model.input_size, t.optimizer, t.lr, t.weight_decay, t.momentum, t.batch_size,
                     t.eval_batch_size, t.epochs, config.split.sampling_seed, config.split.reshuffle_each_epoch,
                     t.precision, t.channels_last, t.compile, t.augment_every_sample,
                     tuple(t.lr_milestones), t.lr_gamma, t.lr_schedule)


def plan_study(config: Config, compute: ComputeSpec | None = None) -> StudyPlan:
    """Every job of the study, in dependency order (baselines first).

    ``compute``: the resolved runtime settings the jobs run with (default: ``config.runtime`` on this machine).
    """
    data = data_spec(config)
    c = config.cam
    compute = compute or compute_spec(config.runtime)

    def cam_job(augmentation, params, seed):
        train = TrainJob(data, train_spec(config, augmentation, params, seed), compute)
        return CamJob(train, c.method, c.target_layer, c.target, c.storage_dtype, c.batch_size)

    seeds = config.study.seeds
    baseline_seeds = seeds if config.study.baseline == "per_seed" else seeds[:1]
    baselines = {seed: cam_job(BASELINE, {}, seed) for seed in baseline_seeds}
    models = list(baselines.values())
    pairs = []
    metrics = resolve_metrics(config.metrics)
    for aug in config.augmentations:
        for seed in seeds:
            job = cam_job(aug.name, aug.params, seed)
            models.append(job)
            base = baselines.get(seed, baselines[seeds[0]])
            pairs.append(MetricJob(base, job, metrics, config.runtime.metric_batch_size))
    return StudyPlan(models, pairs, data)

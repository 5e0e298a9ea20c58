"""A study's plan: the config unpacked into its jobs (thesis steps 6–11), baselines first."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from auglens.analysis.columns import BASELINE
from auglens.augment import frozen_params
from auglens.config import Config
from auglens.data.prepared import DataSpec
from auglens.metrics import resolve_metrics
from auglens.study.jobs import CamJob, Job, MetricJob, TrainJob, metric_groups, train_groups
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
        return [*train_groups(self._trains()), *self.models, *metric_groups(self.pairs)]

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


def _frozen(params: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    """Parameters as sorted (name, value) pairs, lists as tuples: hashable, as TrainSpec must be."""
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in params.items()))


def train_spec(config: Config, augmentation: str, params: dict[str, Any], seed: int) -> TrainSpec:
    t = config.training
    frozen = frozen_params(augmentation, params)
    arch_params = _frozen(config.model.params)
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

    seeds = config.study.seeds
    baseline_seeds = seeds if config.study.baseline == "per_seed" else seeds[:1]
    wanted = [(BASELINE, {}, seed) for seed in baseline_seeds]
    wanted += [(aug.name, aug.params, seed) for aug in config.augmentations for seed in seeds]
    trains = _lockstep([TrainJob(data, train_spec(config, *model), compute) for model in wanted],
                       config.training.models_at_once, compute.device)
    models = [CamJob(train, c.method, c.target_layer, c.target, c.storage_dtype, c.batch_size) for train in trains]
    baselines = {seed: job for seed, job in zip(baseline_seeds, models)}
    pairs = []
    metrics = resolve_metrics(config.metrics)
    for (_, _, seed), job in zip(wanted[len(baselines):], models[len(baselines):]):
        base = baselines.get(seed, baselines[seeds[0]])
        pairs.append(MetricJob(base, job, metrics, config.runtime.metric_batch_size))
    return StudyPlan(models, pairs, data)


def _lockstep(trains: list[TrainJob], models_at_once: int | str, device_type: str) -> list[TrainJob]:
    """``trains`` with each one's lockstep group size set (``training.models_at_once``): the trainings that may
    run together (:func:`auglens.train.stacked.group_key`) in consecutive groups of up to N, in plan order."""
    if models_at_once == 1 or (models_at_once == "auto" and device_type != "cuda"):
        return trains  # "auto" on a CPU: 1 (auglens.train.stacked.auto_models_at_once)
    from auglens.data.prepared import prepare_data
    from auglens.train.stacked import auto_models_at_once, group_key

    kinds: dict[tuple, list[int]] = {}
    for i, train in enumerate(trains):
        kinds.setdefault(group_key(train.spec), []).append(i)
    sized = list(trains)
    for indices in kinds.values():
        spec = trains[indices[0]].spec
        if models_at_once == "auto":
            data = prepare_data(trains[indices[0]].data)
            n = auto_models_at_once(spec, device_type, data.num_classes, data.in_channels)
        else:
            n = int(models_at_once)
        for start in range(0, len(indices), n):
            chunk = indices[start : start + n]
            for i in chunk:
                sized[i] = replace(trains[i], lockstep=len(chunk))
    return sized

"""A study's plan: the config unpacked into its jobs (thesis steps 6–11), baselines first.

Beyond the thesis, each ``[[controls]]`` value adds, per seed, a training without augmentation whose spec is
the baseline's of that seed with the one setting changed (:func:`control_spec`); it is compared with the
baseline exactly as an augmented model is, so its metrics are what retraining alone does to the CAMs.

The plan holds the trainings as the backends run them: one :class:`~auglens.study.jobs.TrainJob` per model,
or, with ``training.models_at_once`` > 1, :class:`~auglens.study.jobs.TrainGroupJob`\\ s of trainings run in
lockstep, each member keyed with its group's size. Groups are formed here, once.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from auglens.analysis.columns import BASELINE
from auglens.config import Config
from auglens.data.prepared import DataSpec
from auglens.metrics import resolve_metrics
from auglens.study.jobs import CamJob, Job, MetricJob, TrainGroupJob, TrainJob, metric_groups
from auglens.study.model_jobs import MODEL_ANALYSES, CkaJob, FaithfulnessJob
from auglens.study.runtime import ComputeSpec, compute_spec
from auglens.study.specs import data_spec as _data_spec
from auglens.study.specs import frozen
from auglens.study.specs import train_spec as _train_spec
from auglens.train.loop import TrainSpec

__all__ = ["StudyPlan", "control_spec", "data_spec", "lockstep_groups", "plan_study", "train_spec"]


@dataclass
class StudyPlan:
    models: list[CamJob]  # one per model, baseline(s) first; each carries its TrainJob
    pairs: list[MetricJob]
    data: DataSpec
    # The trainings as the backends run them (TrainJob or TrainGroupJob), in plan order; None: one job per
    # model's training.
    trainings: list[Job] | None = None
    # The per-model analyses' jobs (auglens.study.model_jobs.MODEL_ANALYSES), by analysis name, each [] when
    # its section is off.
    analyses: dict[str, list[Job]] = field(default_factory=dict)

    @property
    def faithfulness(self) -> list[FaithfulnessJob]:
        """One job per model ([faithfulness])."""
        return self.analyses.get("faithfulness", [])

    @property
    def cka(self) -> list[CkaJob]:
        """One job per compared pair ([cka])."""
        return self.analyses.get("cka", [])

    @property
    def analysis_jobs(self) -> list[Job]:
        """Every per-model analysis's jobs, in registry order."""
        return [job for jobs in self.analyses.values() for job in jobs]

    @property
    def jobs(self) -> list[Job]:
        """Every job in dependency order: the trainings, the CAM sets, the metric tables (one group per baseline),
        the faithfulness scores and the CKA tables."""
        trainings = self.trainings if self.trainings is not None else self.train_jobs
        return [*trainings, *self.models, *metric_groups(self.pairs), *self.analysis_jobs]

    @property
    def artifact_jobs(self) -> list[Job]:
        """Every job that writes an artifact under its own key (the trainings and metric pairs, not their
        groups), in dependency order: what checking and healing the store walk through."""
        return [*self.train_jobs, *self.models, *self.pairs, *self.analysis_jobs]

    @property
    def train_jobs(self) -> list[TrainJob]:
        """Every model's training, once each, in plan order."""
        return list({job.model.key: job.model for job in self.models}.values())


def data_spec(config: Config) -> DataSpec:
    """The study's :class:`DataSpec` (:func:`auglens.study.specs.data_spec` of its data and split sections)."""
    return _data_spec(config.data, config.split)


def train_spec(config: Config, augmentation: str, params: dict[str, Any], seed: int) -> TrainSpec:
    """The :class:`TrainSpec` of one model of the study (:func:`auglens.study.specs.train_spec`)."""
    return _train_spec(config.model, config.training, config.split, augmentation, params, seed)


def control_spec(config: Config, setting: str, value: int, seed: int) -> TrainSpec:
    """The :class:`TrainSpec` of a control: the baseline's of ``seed`` with the spec field ``setting`` (a
    :data:`~auglens.config.study.CONTROL_SETTINGS` name, which is the field's name) set to ``value``, and
    nothing else changed."""
    return replace(train_spec(config, BASELINE, {}, seed), **{setting: value})


def plan_study(config: Config, compute: ComputeSpec | None = None) -> StudyPlan:
    """Every job of the study, in dependency order (baselines first).

    ``compute``: the resolved runtime settings the jobs run with (default: ``config.runtime`` on this machine).
    """
    data = data_spec(config)
    c = config.cam
    compute = compute or compute_spec(config.runtime)

    seeds = config.study.seeds
    baseline_seeds = seeds if config.study.baseline == "per_seed" else seeds[:1]
    wanted: list[TrainJob] = [TrainJob(data, train_spec(config, BASELINE, {}, seed), compute)
                              for seed in baseline_seeds]
    wanted += [TrainJob(data, train_spec(config, aug.name, aug.params, seed), compute)
               for aug in config.augmentations for seed in seeds]
    wanted += [TrainJob(data, control_spec(config, control.name, value, seed), compute, control=(control.name, value))
               for control in config.controls for value in control.values for seed in seeds]
    trains, trainings = lockstep_groups(wanted, config.training.models_at_once, compute.device)
    models = [CamJob(train, c.method, c.target_layer, c.target, c.storage_dtype, c.batch_size, frozen(c.params))
              for train in trains]
    baselines = {seed: job for seed, job in zip(baseline_seeds, models)}
    pairs = []
    metrics = resolve_metrics(config.metrics)
    for job in models[len(baselines):]:
        base = baselines.get(job.model.spec.seed, baselines[seeds[0]])
        pairs.append(MetricJob(base, job, metrics, config.runtime.metric_batch_size))
    analyses = {name: MODEL_ANALYSES.build(name).plan(config, models, pairs) for name in MODEL_ANALYSES}
    return StudyPlan(models, pairs, data, trainings, analyses)


def lockstep_groups(trains: list[TrainJob], models_at_once: int | str, device_type: str
                    ) -> tuple[list[TrainJob], list[Job]]:
    """``trains`` grouped for lockstep training (``training.models_at_once``).

    The trainings that may run together (:func:`auglens.train.stacked.group_key`: the same settings and batch
    layout) are cut, in plan order, into consecutive groups of up to N. Returns ``trains`` in their order
    with each one's ``lockstep`` set to its group's size (part of its key when above 1), and the jobs the
    backends run: one :class:`TrainGroupJob` per group of two or more, placed where its first member is,
    and the trainings left alone.
    """
    if models_at_once == 1 or (models_at_once == "auto" and device_type != "cuda"):
        return list(trains), list(trains)  # "auto" on a CPU: 1 (auglens.train.stacked.auto_models_at_once)
    from auglens.train.stacked import auto_models_at_once, group_key

    kinds: dict[tuple, list[int]] = {}
    for i, train in enumerate(trains):
        kinds.setdefault(group_key(train.spec), []).append(i)
    sized = list(trains)
    group_of: dict[int, list[int]] = {}  # index -> the indices of its group
    for indices in kinds.values():
        if models_at_once == "auto":
            num_classes, in_channels = _class_and_channel_counts(trains[indices[0]].data)
            n = auto_models_at_once(trains[indices[0]].spec, device_type, num_classes, in_channels)
        else:
            n = int(models_at_once)
        for start in range(0, len(indices), n):
            chunk = indices[start : start + n]
            for i in chunk:
                sized[i] = replace(trains[i], lockstep=len(chunk))
                group_of[i] = chunk
    jobs: list[Job] = []
    for i, train in enumerate(sized):
        chunk = group_of.get(i, [i])
        if len(chunk) == 1:
            jobs.append(train)
        elif chunk[0] == i:
            jobs.append(TrainGroupJob(tuple(sized[j] for j in chunk)))
    return sized, jobs


def _class_and_channel_counts(data: DataSpec) -> tuple[int, int]:
    """The data set's class and channel counts: from its files' description where it gives them (nothing is
    read), else from the prepared data (a data set registered without a locator)."""
    from auglens.data.datasets import locate_dataset

    source = locate_dataset(data.name, data.root)
    if source is not None and source.num_classes and source.in_channels:
        return source.num_classes, source.in_channels
    from auglens.data.prepared import prepare_data

    prepared = prepare_data(data)
    return prepared.num_classes, prepared.in_channels

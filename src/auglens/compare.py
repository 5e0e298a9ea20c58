"""Bring your own checkpoints: CAM sets and CAM metrics of trained models against a baseline, no training.

``compare_checkpoints`` loads each weights file into the named architecture, computes its CAM set on the
test set of the given data (a study config, or a data set name with default settings), and writes the
same tables as ``auglens run``: ``performance.csv``, ``cam_metrics.parquet`` (each model against the
baseline; ``augmentation`` holds the model's name, ``seed`` is 0), ``aug_metrics.parquet`` and, with
``all_pairs``, ``pair_metrics.parquet`` (every pair of models, columns ``model_a``/``model_b``).

Before any work, the config passes :mod:`auglens.preflight`'s checks and every weights file is matched
against the architecture (built on the meta device): a file that does not fit is named with a summary of
its missing, unexpected and mis-shaped tensors, all files at once.

The comparison is a plan of the study's own jobs (:func:`plan_compare`): one
:class:`~auglens.study.jobs.CamJob` per weights file (a :class:`~auglens.study.jobs.WeightsFile`, keyed by
the file's SHA-256) and one :class:`~auglens.study.jobs.MetricJob` per compared pair, under the study's keys,
run by the study's runner on the local backend or Ray; a rerun reuses every CAM set and metric table.

Weights are never unpickled: ``.safetensors`` files are read with safetensors, anything else with
``torch.load(weights_only=True)``, which refuses arbitrary objects (:mod:`auglens.models.weights`).
"""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from auglens import config as cfg
from auglens.augment.base import BASELINE
from auglens.data.prepared import DataSpec, prepare_data
from auglens.metrics import resolve_metrics
from auglens.errors import UserError
from auglens.models.weights import load_state_dict
from auglens.store import write_text_atomic
from auglens.study.jobs import CamJob, Job, MetricJob, WeightsFile, metric_groups
from auglens.study.plan import StudyPlan, data_spec
from auglens.study.runner import open_run
from auglens.study.specs import frozen
from auglens.study.tables import seed_average, with_kind, write_csv, write_parquet, write_test_set
from auglens.train.loop import TrainSpec

__all__ = ["ComparePlan", "check_checkpoints", "checkpoint_mismatch", "compare_checkpoints", "compare_study",
           "load_state_dict", "plan_compare", "plan_study_compare"]


def _examples(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... (+{len(names) - limit} more)" if len(names) > limit else "")


def checkpoint_mismatch(path: str | Path, state: dict[str, torch.Tensor], model: torch.nn.Module) -> str | None:
    """None when ``state`` fits ``model`` exactly; else one line naming the file and summarising the mismatch."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    missing = [k for k in expected if k not in got]
    unexpected = [k for k in got if k not in expected]
    shapes = [f"{k} {got[k]} vs {expected[k]}" for k in expected if k in got and got[k] != expected[k]]
    if not (missing or unexpected or shapes):
        return None
    parts = []
    if missing:
        parts.append(f"{len(missing)} of the model's {len(expected)} tensors missing ({_examples(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected ({_examples(unexpected)})")
    if shapes:
        parts.append(f"{len(shapes)} of another shape, file vs model ({_examples(shapes, 2)})")
    hint = "check --arch, model.params and the data set (number of classes, grey or colour)"
    if unexpected and all(k.startswith("module.") for k in unexpected):
        hint = "its keys start with 'module.' (saved from DataParallel/DDP): save model.module.state_dict()"
    return f"{path}: does not fit {type(model).__name__}: {'; '.join(parts)}; {hint}"


def check_checkpoints(paths: list[Path], arch: str, params: dict, num_classes: int, in_channels: int) -> None:
    """Raise one :class:`UserError` naming every weights file that is unreadable or does not fit the model."""
    from auglens.models import build_model

    with torch.device("meta"):
        model = build_model(arch, num_classes, in_channels, **params)
    problems = []
    for path in paths:
        try:
            problem = checkpoint_mismatch(path, load_state_dict(path), model)
        except UserError as error:
            problem = str(error)
        if problem:
            problems.append(problem)
    if problems:
        raise UserError(f"{len(problems)} of {len(paths)} checkpoint(s) cannot be compared:\n"
                        + "\n".join(f"  - {p}" for p in problems))


def _config_for(arch: str, data: str, overrides: list[str]) -> cfg.Config:
    if data.endswith(".toml") or Path(data).is_file():
        config = cfg.load(data, overrides)
    else:
        config = cfg.from_dict(cfg.apply_overrides({"data": {"name": data}, "model": {"input_size": None}},
                                                   overrides), f"--data {data}")
    config.model.architecture = arch
    errors, config = config.validate()
    if errors:
        raise cfg.ConfigError(errors, "compare")
    return config


@dataclass
class ComparePlan:
    """The jobs of a comparison: the CAM set of every weights file, each model against the baseline and,
    with all pairs, every pair of models."""

    models: list[CamJob]  # baseline first
    pairs: list[MetricJob]  # each model against the baseline
    all_pairs: list[MetricJob]  # every pair (a, b), a before b; empty unless asked
    data: DataSpec

    @property
    def jobs(self) -> list[Job]:
        """Every job in dependency order: the CAM sets, then the metric tables (one group per baseline)."""
        pairs = list({pair.key: pair for pair in (*self.pairs, *self.all_pairs)}.values())
        return [*self.models, *metric_groups(pairs)]

    @property
    def artifact_jobs(self) -> list[Job]:
        return [*self.models, *{pair.key: pair for pair in (*self.pairs, *self.all_pairs)}.values()]


def plan_compare(config: cfg.Config, paths: list[Path], names: list[str], all_pairs: bool = False) -> ComparePlan:
    """The comparison's jobs: ``paths[0]`` is the baseline; ``names`` name the models in the tables.

    Each CAM job's model is a :class:`WeightsFile` with the config's architecture, its parameters and input
    size; the CAM and metric settings are the config's, exactly as a study's (``cam.batch_size`` included).
    """
    from auglens.provenance import file_sha256

    data = data_spec(config)
    m, c = config.model, config.cam
    models = []
    for path, name in zip(paths, names):
        spec = TrainSpec(m.architecture, name, frozen(m.params), seed=0, input_size=m.input_size)
        weights = WeightsFile(os.path.abspath(path), file_sha256(path), data, spec)
        models.append(CamJob(weights, c.method, c.target_layer, c.target, c.storage_dtype, c.batch_size,
                             frozen(c.params)))
    metrics = resolve_metrics(config.metrics)
    batch = config.runtime.metric_batch_size
    pairs = [MetricJob(models[0], other, metrics, batch) for other in models[1:]]
    every = [MetricJob(a, b, metrics, batch) for a, b in itertools.combinations(models, 2)] if all_pairs else []
    return ComparePlan(models, pairs, every, data)


def compare_checkpoints(arch: str, baseline: str | Path, models: list[str | Path], data: str, out: str | Path,
                        all_pairs: bool = False, overrides: list[str] | None = None, progress: bool = True,
                        provenance: dict | None = None, backend: str | None = None) -> str:
    """Compute CAM sets and metrics of ``models`` against ``baseline``; returns a one-line summary.

    ``provenance`` (:func:`auglens.provenance.run_provenance`, default: this process's) goes into the manifest.
    ``backend``: ``"local"`` or ``"ray"`` (default ``runtime.backend``).
    """
    from auglens.preflight import preflight
    from auglens.provenance import data_provenance, device_description, run_provenance

    config = _config_for(arch, data, overrides or [])
    checked = preflight(config, "compare", check_availability=(backend or config.runtime.backend) != "ray")
    paths = [Path(baseline), *map(Path, models)]
    names = [p.stem for p in paths]
    if len(set(names)) != len(names):
        raise UserError(f"checkpoint file names must differ (their stems name the models): {names}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # Opened before the files are read, so that a file that does not fit is reported in the folder's log too.
    run = open_run(config.runtime, out / "artifacts", backend, progress,
                   provenance or run_provenance(overrides=overrides), log_folder=out)
    for path in paths:
        if not path.is_file():
            raise UserError(f"checkpoint {path} does not exist")
    source = checked.source
    if source is not None and source.num_classes and source.in_channels:
        check_checkpoints(paths, arch, config.model.params, source.num_classes, source.in_channels)
    prepared = prepare_data(data_spec(config))
    if source is None or not (source.num_classes and source.in_channels):
        check_checkpoints(paths, arch, config.model.params, prepared.num_classes, prepared.in_channels)
    plan = plan_compare(config, paths, names, all_pairs)
    run.heal(plan.artifact_jobs)
    timings = run.execute(plan.jobs)
    store = run.store

    checkpoints = {job.key: str(path) for path, job in zip(paths, plan.models)}
    _write_tables(out, store, plan, prepared, lambda job: {
        "augmentation": BASELINE if job is plan.models[0] else job.model.model_id, "seed": 0,
        "checkpoint": checkpoints[job.key]})
    write_test_set(out, prepared)
    write_text_atomic(out / "config.toml", cfg.dump_toml(config))
    previous = json.loads((out / "manifest.json").read_text()) if (out / "manifest.json").is_file() else None
    timings["total_seconds"] = run.seconds()
    manifest = {"command": "compare", "baseline": str(baseline), "models": [str(p) for p in models],
                "all_pairs": all_pairs, "auglens": run.provenance["auglens"],
                "git_commit": run.provenance["git_commit"], "device": device_description(run.device),
                "backend": run.backend, "data_source": data_provenance(source),
                "checkpoints_sha256": {str(p): job.model.sha256 for p, job in zip(paths, plan.models)},
                "cam_keys": {job.model.model_id: job.key for job in plan.models},
                **run.history(previous, timings)}
    write_text_atomic(out / "manifest.json", json.dumps(manifest, indent=1))
    return f"compared {len(names) - 1} model(s) with {names[0]} on {len(prepared.test)} test images -> {out}"


def _write_tables(out: Path, store, plan: ComparePlan, prepared, describe) -> None:
    """A comparison's tables in ``out``: ``cam_metrics.parquet`` (each model against its baseline),
    ``aug_metrics.parquet``, ``pair_metrics.parquet`` (with all pairs) and ``performance.csv``, whose rows are
    ``model``, ``describe(job)`` (augmentation, seed and the model's source), the metrics and ``cam_set``."""
    from auglens.metrics import classification_report

    cam_metrics = pd.concat([with_kind(store.load_table("metrics", pair.key), pair.other.model.kind)
                             for pair in plan.pairs], ignore_index=True)
    write_parquet(cam_metrics, out / "cam_metrics.parquet")
    write_parquet(seed_average(cam_metrics), out / "aug_metrics.parquet")
    if plan.all_pairs:
        frames = []
        for pair in plan.all_pairs:
            frame = store.load_table("metrics", pair.key).drop(columns=["augmentation", "seed"])
            frame = frame.rename(columns={"baseline_pred": "pred_a", "model_pred": "pred_b"})
            frame.insert(0, "model_b", pair.other.model.model_id)
            frame.insert(0, "model_a", pair.baseline.model.model_id)
            frames.append(frame)
        write_parquet(pd.concat(frames, ignore_index=True), out / "pair_metrics.parquet")

    performance = []
    for job in plan.models:
        logits = store.load_tensors("cams", job.key)["logits"]
        report = classification_report(logits.argmax(1), prepared.test.labels, prepared.num_classes)
        cam_path = store.path("cams", job.key, "safetensors")
        performance.append({"model": job.model.model_id, **describe(job),
                            **{k: float(report[k]) for k in ("accuracy", "precision_macro", "recall_macro", "f1_macro")},
                            "cam_set": cam_path if "://" in store.root else os.path.relpath(cam_path, out)})
    write_csv(pd.DataFrame(performance), out / "performance.csv")


def plan_study_compare(study_plan: StudyPlan, models: list[str] | None = None, all_pairs: bool = False
                       ) -> ComparePlan:
    """A comparison of a study's own models: its CAM jobs and metric jobs, under the study's keys.

    ``models``: augmentations (every seed of each) or model ids (``cutmix-s1``); default: every model. The
    study's baseline(s) are always included; each model is compared with its baseline by the study's own metric
    job, and with ``all_pairs`` every pair of the chosen models (baselines included) is compared too.
    """
    known = {job.model.model_id: job for job in study_plan.models}
    baselines = [job for job in study_plan.models if job.model.kind == "baseline"]
    if models is None:
        chosen = list(study_plan.models)
    else:
        wanted, unknown = set(), []
        for name in models:
            matches = [i for i, job in known.items() if name in (i, job.model.name)]
            if not matches:
                unknown.append(name)
            wanted.update(matches)
        if unknown:
            augmentations = dict.fromkeys(job.model.name for job in study_plan.models)
            raise UserError(f"the study has no model {', '.join(map(repr, unknown))}; name an augmentation "
                            f"({', '.join(augmentations)}) or a model id ({', '.join(known)})")
        chosen = [job for job in study_plan.models if job in baselines or job.model.model_id in wanted]
    keys = {job.key for job in chosen}
    pairs = [pair for pair in study_plan.pairs if pair.other.key in keys and pair.baseline.key in keys]
    every = []
    if all_pairs:
        reference = study_plan.pairs[0] if study_plan.pairs else None
        if reference is not None:
            every = [MetricJob(a, b, reference.metrics, reference.batch_size)
                     for a, b in itertools.combinations(chosen, 2)]
    return ComparePlan(chosen, pairs, every, study_plan.data)


def compare_study(folder: str | Path, out: str | Path, models: list[str] | None = None, all_pairs: bool = False,
                  progress: bool = True, provenance: dict | None = None, backend: str | None = None) -> str:
    """Compare a finished study's models by name; returns a one-line summary.

    Architecture, parameters, data, normalisation, CAM and metric settings are the study's (its
    ``config.toml``); the models are named by the study's model ids (``<augmentation>-s<seed>``). The jobs are
    the study's own (:func:`plan_study_compare`) and run against the study's store, so every CAM set and
    metric table the study computed is reused, and only new pairs (``all_pairs``) are computed. ``out`` gets
    the tables of ``auglens compare`` (``performance.csv`` with each model's ``checkpoint_key``), the study's
    config and a manifest naming the study. ``models``: augmentations or model ids (default: every model).
    """
    from auglens.provenance import run_provenance
    from auglens.study.opened import open_study

    study = open_study(folder)
    plan = plan_study_compare(study.plan, models, all_pairs)
    missing = [job.model.model_id for job in plan.models if not job.done(study.store)
               and not job.model.done(study.store)]
    if missing:
        raise UserError(f"{folder}: neither the CAM set nor the checkpoint of {', '.join(missing)} is in "
                        f"{study.store.root}; run `auglens verify {folder} --repair` first")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    run = open_run(study.config.runtime, study.store.root, backend, progress, provenance or run_provenance(),
                   log_folder=out)
    timings = run.execute(plan.jobs)
    prepared = prepare_data(plan.data)
    _write_tables(out, run.store, plan, prepared, lambda job: {
        "augmentation": job.model.name, "kind": job.model.kind, "seed": job.model.spec.seed,
        "checkpoint_key": job.model.key})
    write_test_set(out, prepared)
    write_text_atomic(out / "config.toml", cfg.dump_toml(study.config))
    previous = json.loads((out / "manifest.json").read_text()) if (out / "manifest.json").is_file() else None
    timings["total_seconds"] = run.seconds()
    manifest = {"command": "compare", "study": str(Path(folder).resolve()),
                "models": [job.model.model_id for job in plan.models], "all_pairs": all_pairs,
                "auglens": run.provenance["auglens"], "git_commit": run.provenance["git_commit"],
                "backend": run.backend, "store": run.store.root,
                "cam_keys": {job.model.model_id: job.key for job in plan.models},
                **run.history(previous, timings)}
    write_text_atomic(out / "manifest.json", json.dumps(manifest, indent=1))
    others = [job.model.model_id for job in plan.models if job.model.kind != "baseline"]
    return (f"compared {len(others)} model(s) of {folder} with its baseline on {len(prepared.test)} test images"
            f"{' (and every pair)' if all_pairs else ''} -> {out}")

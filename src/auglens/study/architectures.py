"""Thesis step 2, architecture selection: candidate architectures trained side by side as baselines.

Dorneles (2024), §5.1: three candidates (EfficientNet-B0, ResNet-18, DenseNet-121) trained for 30 epochs,
their test accuracy, precision, recall and F1 measured after every epoch (Figures 5.1-5.4) and their
training time compared (Figure 5.5); the architecture with the best balance of the two is chosen.

Each candidate is an :class:`ArchitectureJob`: the study's baseline training with the candidate as
``model.architecture`` (:func:`~auglens.study.plan.train_spec`: the same initial-weight seed, data order,
split and recipe as every model of the study), with the test set evaluated after every epoch, the last
included. Its artifact is the candidate's per-epoch table, so a rerun skips finished candidates and keeps
their rows as they were (``seconds`` included); an interrupted candidate resumes from its last epoch
snapshot, with the rows of the epochs before it.

``seconds`` is the cumulative time of the training steps alone: the validation and test evaluations are
excluded, so candidates are compared on what their training costs.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pandas as pd
import torch

from auglens.analysis.columns import BASELINE
from auglens.analysis.performance import ARCHITECTURE_COLUMNS, PERFORMANCE_METRICS, architecture_summary
from auglens.config import Config, stable_hash
from auglens.data.prepared import DataSpec, normalised_with, prepare_data
from auglens.report.study_files import ARCHITECTURES_FILE
from auglens.errors import UserError
from auglens.store import ArtifactStore, write_text_atomic
from auglens.study.jobs import Job, Progress, TrainJob, load_snapshot, save_trained
from auglens.study.plan import data_spec, train_spec
from auglens.study.runtime import ComputeSpec
from auglens.train.loop import TrainSpec, evaluate, train_model

__all__ = ["THESIS_CANDIDATES", "ArchitectureJob", "ArchitectureSelection", "architecture_jobs", "check_candidates",
           "run_architecture_job", "select_architectures", "write_architecture_figures"]

log = logging.getLogger("auglens.study")

#: The thesis's candidates (§5.1), in its order.
THESIS_CANDIDATES: tuple[str, ...] = ("efficientnet_b0", "resnet18", "densenet121")
RECORD = "architectures.json"
SPLITS = ("validation", "test")
_SNAPSHOTS = "architecture_snapshots"
#: Figure files written beside the table: one per test metric (Figs 5.1-5.4), then the training time (Fig 5.5).
FIGURES = {"accuracy": "architectures_accuracy", "precision_macro": "architectures_precision",
           "recall_macro": "architectures_recall", "f1_macro": "architectures_f1"}
TIME_FIGURE = "architectures_training_time"


@dataclass(frozen=True)
class ArchitectureJob(Job):
    """One candidate trained as the study's baseline; its artifact: validation and test metrics per epoch.

    It holds that baseline training (data, spec and compute settings): its key is made from the training's,
    and the trained model is also stored as that training, for a study to reuse.
    """

    train: TrainJob

    stage: ClassVar[str] = "architecture"
    artifact: ClassVar[tuple[str, str]] = ("architectures", "parquet")
    unit: ClassVar[str] = "img"

    @property
    def data(self) -> DataSpec:
        return self.train.data

    @property
    def spec(self) -> TrainSpec:
        return self.train.spec

    @property
    def key(self) -> str:
        return stable_hash({"job": "architecture", "train": self.train.key})

    @property
    def label(self) -> str:
        return self.spec.architecture

    def size(self) -> int:
        return self.train.size()

    def run(self, store: ArtifactStore, device: torch.device, progress: Progress | None = None) -> str:
        return run_architecture_job(self, store, device, progress)


def run_architecture_job(job: ArchitectureJob, store: ArtifactStore, device: torch.device,
                         progress: Progress | None = None) -> str:
    """Train (or resume) one candidate, evaluating both splits after every epoch. Idempotent.

    Writes ``architectures/<key>.parquet`` (the :data:`~auglens.analysis.ARCHITECTURE_COLUMNS` rows of the
    candidate) once training ends; until then ``architecture_snapshots/<key>.pt`` after every epoch.
    """
    kind, ext = job.artifact
    if store.exists(kind, job.key, ext):
        return job.key
    spec = job.spec
    data = normalised_with(prepare_data(job.data), spec.normalisation)
    saved = load_snapshot(store, _SNAPSHOTS, job.key, spec.architecture)
    rows: list[dict] = list(saved["rows"]) if saved is not None else []
    if saved is not None:
        log.info("%s: resuming after epoch %d of %d", spec.architecture, saved["train"]["epoch"] + 1, spec.epochs)
        if progress is not None:
            progress(len(data.train) * (saved["train"]["epoch"] + 1))

    def record(model: torch.nn.Module, epoch: dict[str, float]) -> None:
        # Called after every epoch, the last included (on_epoch_end is not: the last epoch leaves no snapshot).
        test = evaluate(model, data.test.images, data.test.labels, data.mean, data.std, spec.input_size,
                        spec.eval_batch_size, device, data.num_classes)
        validation = {metric: epoch[f"val_{metric}"] for metric in PERFORMANCE_METRICS}
        for split, values in zip(SPLITS, (validation, test)):
            rows.append({"architecture": spec.architecture, "epoch": int(epoch["epoch"]), "split": split,
                         **{metric: float(values[metric]) for metric in PERFORMANCE_METRICS},
                         "seconds": float(epoch["train_seconds"])})
        log.info("%s epoch %d/%d: validation accuracy %.4f, test accuracy %.4f, %.1f s of training",
                 spec.architecture, int(epoch["epoch"]) + 1, spec.epochs, validation["accuracy"], test["accuracy"],
                 epoch["train_seconds"])

    def snapshot(state: dict) -> None:
        store.save_torch(_SNAPSHOTS, job.key, {"train": state, "rows": rows})

    result = train_model(spec, data, device, progress, saved["train"] if saved is not None else None,
                         on_epoch_end=snapshot, on_epoch_trained=record)
    # The candidate was trained exactly as a study trains its baseline with this architecture (the same data,
    # spec and compute settings, so the same key; the evaluations in between change no weight): stored as
    # that training too, a study run on the same artifact store uses it instead of training it again.
    if not job.train.done(store):
        save_trained(job.train, store, result)
    store.save_table(kind, job.key, pd.DataFrame(rows, columns=list(ARCHITECTURE_COLUMNS)))
    store.delete(_SNAPSHOTS, job.key, "pt")
    return job.key


# ------------------------------------------------------------------------------------------ orchestration

def _candidate_config(config: Config, architecture: str) -> Config:
    """``config`` with ``architecture`` as its model; ``model.params`` belong to the config's own architecture."""
    candidate = copy.deepcopy(config)
    candidate.model.architecture = architecture
    if architecture != config.model.architecture:
        candidate.model.params = {}
    return candidate


def check_candidates(candidates: Sequence[str], config: Config) -> None:
    """Raise :class:`UserError` listing every problem with ``candidates``, before any work.

    Each must be a registered model name (``auglens ls models``) or ``package.module:factory``, listed once,
    and buildable for the config's data on PyTorch's meta device (no memory, about a second per model).
    """
    from auglens.data.datasets import locate_dataset
    from auglens.models import MODELS
    from auglens.preflight import _model_side, check_model, check_pretrained

    if not candidates:
        raise UserError("no candidate architectures: expected a comma-separated list of model names, e.g. "
                        f"--candidates {','.join(THESIS_CANDIDATES)} (auglens ls models lists them)")
    errors, seen = [], set()
    for name in candidates:
        if not name:
            errors.append("an empty name (two commas in a row, or a comma at an end)")
        elif name in seen:
            errors.append(f"{name!r} is listed twice; list each candidate once")
        elif ":" not in name and name not in MODELS:
            errors.append(MODELS.unknown_message(name))
        seen.add(name)
    if not errors:
        try:
            source = locate_dataset(config.data.name, config.data.root)
        except (FileNotFoundError, ValueError):  # reported by the config's own checks
            source = None
        num_classes = (source.num_classes if source is not None else None) or 10
        in_channels = (source.in_channels if source is not None else None) or 3
        side = _model_side(config.model.input_size, config.data.name, config.data.image_size, source)
        for name in candidates:
            model = _candidate_config(config, name).model
            problems = check_model(name, model.params, None, num_classes, in_channels, side)
            problems = problems or check_pretrained(name, model.params, model.pretrained, num_classes, in_channels)
            errors += [f"{name}: {e}" for e in problems]
    if errors:
        raise UserError("--candidates: " + "; ".join(errors))


def architecture_jobs(config: Config, candidates: Sequence[str], compute: ComputeSpec) -> list[ArchitectureJob]:
    """One job per candidate: the study's baseline (first seed, no augmentation) with that architecture, its
    spec from the study's builder (:func:`~auglens.study.plan.train_spec`)."""
    data = data_spec(config)
    seed = config.study.seeds[0]  # the shared baseline's starting state
    return [ArchitectureJob(TrainJob(data, train_spec(_candidate_config(config, name), BASELINE, {}, seed), compute))
            for name in candidates]


@dataclass
class ArchitectureSelection:
    """What :func:`select_architectures` wrote: the per-epoch table, its summary and the figure files."""

    out_dir: Path
    table: pd.DataFrame  # architectures.csv
    summary: pd.DataFrame  # per candidate: the kept (best-validation) epoch and its test metrics
    figures: list[Path]
    seconds: float = 0.0

    def __str__(self) -> str:
        shown = self.summary.copy()
        for column in (*PERFORMANCE_METRICS, "seconds_to_best", "train_seconds"):
            shown[column] = shown[column].map(lambda v: f"{v:.4f}" if column in PERFORMANCE_METRICS else f"{v:.1f}")
        return ("best-validation epoch per architecture, test metrics at that epoch\n"
                + shown.to_string(index=False))


def select_architectures(config: Config, candidates: Sequence[str], out_dir: str | Path,
                         progress: bool | None = None, provenance: dict | None = None,
                         checked: bool = False, backend: str | None = None) -> ArchitectureSelection:
    """Thesis step 2: train every candidate as the study's baseline; write the per-epoch table and figures.

    Writes ``out_dir/architectures.csv`` (:data:`~auglens.analysis.ARCHITECTURE_COLUMNS`: a validation and a
    test row per candidate and epoch, candidates in the given order, epochs counted from 1 as the log counts
    them), the figures (test metrics per epoch,
    Figs 5.1-5.4; training time, Fig 5.5) as PNG and SVG, and ``architectures.json`` (settings, keys, runs).
    Artifacts go to ``runtime.artifacts`` (default ``out_dir/artifacts``), keyed by everything a training
    depends on: rerunning resumes, and a finished candidate is never retrained. ``checked``: the caller has
    run :func:`check_candidates` already. ``backend``: ``"local"`` or ``"ray"`` (default ``runtime.backend``):
    on Ray every candidate is one task, and the table is the local one but for the ``seconds`` column.
    """
    from auglens.study.runner import open_run
    from auglens.study.tables import write_csv

    if not checked:
        check_candidates(candidates, config)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    run = open_run(config.runtime, out_dir / "artifacts", backend, progress, provenance, log_folder=out_dir)
    jobs = architecture_jobs(config, candidates, run.compute)
    run.heal(jobs)
    log.info("architecture selection: %d candidate(s) (%s), %d epoch(s) each -> %s", len(jobs),
             ", ".join(candidates), config.training.epochs, out_dir)
    timings = run.execute(jobs)
    # The table is assembled from the artifacts alone: a resumed run gives the rows an uninterrupted one would.
    table = pd.concat([run.store.load_table(job.artifact[0], job.key) for job in jobs], ignore_index=True)
    table = table[list(ARCHITECTURE_COLUMNS)]
    # The artifacts keep the training loop's epoch index (0 = the first epoch); the table counts epochs as the
    # log does ("epoch 1/3"): a row's epoch is the number of epochs trained when it was measured.
    table["epoch"] = table["epoch"] + 1
    write_csv(table, out_dir / ARCHITECTURES_FILE)
    figures = write_architecture_figures(table, out_dir)
    timings["total_seconds"] = run.seconds()
    _write_record(out_dir, config, jobs, run.compute, run.history(_previous_runs(out_dir), timings))
    return ArchitectureSelection(out_dir, table, architecture_summary(table), figures, timings["total_seconds"])


def write_architecture_figures(table: pd.DataFrame, out_dir: Path) -> list[Path]:
    """The test metrics per epoch (one figure per metric, Figs 5.1-5.4) and the training time (Fig 5.5)."""
    from auglens.report import figures
    from auglens.report.style import save_figure, style

    written = []
    with style():
        for metric, name in FIGURES.items():
            save_figure(figures.architecture_curves(table, [metric]), out_dir, name)
            written.append(out_dir / f"{name}.png")
        save_figure(figures.architecture_time_bars(table), out_dir, TIME_FIGURE)
        written.append(out_dir / f"{TIME_FIGURE}.png")
    return written


def _previous_runs(out_dir: Path) -> dict | None:
    path = out_dir / RECORD
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except json.JSONDecodeError:  # a damaged record loses its run history, not the results
        return None


def _write_record(out_dir: Path, config: Config, jobs: list[ArchitectureJob], compute: ComputeSpec,
                  runs: dict) -> None:
    """``architectures.json``: versions, the resolved config and settings, each candidate's key, every run."""
    import auglens
    from auglens.study.manifest import pretrained_record

    record = {"auglens": auglens.__version__, "torch": torch.__version__, "compute": dataclasses.asdict(compute),
              "candidates": {job.spec.architecture: job.key for job in jobs},
              "pretrained": {job.spec.architecture: pretrained_record(config.model.pretrained, job.spec)
                             for job in jobs},
              "seconds": "cumulative time of the training steps; validation and test evaluation excluded",
              "config": config.to_dict(), **runs}
    write_text_atomic(out_dir / RECORD, json.dumps(record, indent=1, default=str))

"""A finished study opened in Python: its tables, its config, its models by name, and its test data as the
models saw it.

:func:`open_study` rebuilds the study's own plan (:func:`~auglens.study.plan.plan_study` of its
``config.toml``, with the compute settings its ``manifest.json`` records), so every checkpoint and CAM set
is found in the store under the key that wrote it: nothing is guessed from file names. The test images come
from the same :class:`~auglens.data.prepared.DataSpec`, normalised with the training subset's mean and
standard deviation and resized to the model input, which is what the models were trained and evaluated on:
``cam.compute(study.model("cutmix", seed=1), study.test_images(slice(0, 64)))`` gives the stored CAMs (upsampled),
and the reloaded model's accuracy is ``performance.csv``'s.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from auglens.analysis.columns import BASELINE
from auglens.config import Config, load
from auglens.data.prepared import PreparedData, model_input, normalised_with, prepare_data
from auglens.errors import UserError
from auglens.store import ArtifactStore
from auglens.study.jobs import CamJob, load_trained_model
from auglens.study.plan import StudyPlan, plan_study
from auglens.study.runner import run_store
from auglens.study.runtime import ComputeSpec

__all__ = ["OpenedStudy", "open_study"]


@dataclass
class OpenedStudy:
    """A finished study folder: tables, config, plan and store (:func:`open_study` builds it)."""

    folder: Path
    config: Config
    plan: StudyPlan
    store: ArtifactStore
    device: torch.device
    performance: pd.DataFrame  # performance.csv: one row per model
    _tables: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)

    @property
    def cam_metrics(self) -> pd.DataFrame:
        """cam_metrics.parquet: one row per augmented model and test image."""
        return self._table("cam_metrics")

    @property
    def aug_metrics(self) -> pd.DataFrame:
        """aug_metrics.parquet: the mean over seeds per augmentation and test image."""
        return self._table("aug_metrics")

    @property
    def history(self) -> pd.DataFrame:
        """training_history.csv: per model and epoch."""
        if "history" not in self._tables:
            self._tables["history"] = pd.read_csv(self.folder / "training_history.csv")
        return self._tables["history"]

    def _table(self, name: str) -> pd.DataFrame:
        if name not in self._tables:
            self._tables[name] = pd.read_parquet(self.folder / f"{name}.parquet")
        return self._tables[name]

    @property
    def model_ids(self) -> list[str]:
        """The models' names, ``<augmentation>-s<seed>``, baseline(s) first (as in ``performance.csv``)."""
        return [job.model.model_id for job in self.plan.models]

    @property
    def data(self) -> PreparedData:
        """The study's data, prepared as for training (subsets, split, normalisation statistics)."""
        return prepare_data(self.plan.data)

    @property
    def classes(self) -> list[str]:
        return self.data.classes

    def cam_job(self, augmentation: str, seed: int | None = None) -> CamJob:
        """The CAM job of one model: ``augmentation`` (or a model id such as ``"cutmix-s1"``) and ``seed``
        (default: the study's first seed, which is the shared baseline's). Raises :class:`UserError` listing
        the study's models when there is no such model."""
        if seed is None and augmentation not in self.model_ids:
            seed = self.config.study.seeds[0]
        wanted = augmentation if seed is None else f"{augmentation}-s{seed}"
        for job in self.plan.models:
            if job.model.model_id == wanted:
                return job
        if augmentation == BASELINE and self.config.study.baseline == "shared":
            wanted += " (the shared baseline is trained with the first seed"
            wanted += f", {self.config.study.seeds[0]})"
        raise UserError(f"{self.folder} has no model {wanted}; its models: {', '.join(self.model_ids)}")

    def model(self, augmentation: str, seed: int | None = None) -> torch.nn.Module:
        """The trained model (best-validation checkpoint) of ``augmentation`` and ``seed``, in eval mode on the
        study's device; ``augmentation`` may also be a model id (``"cutmix-s1"``). ``seed`` defaults to the
        study's first seed."""
        job = self.cam_job(augmentation, seed)
        if not job.model.done(self.store):
            raise UserError(f"the checkpoint of {job.model.model_id} is not in {self.store.root}; run "
                            f"`auglens verify {self.folder} --repair` to recompute it")
        return load_trained_model(job.model, self.store, self.data, self.device)

    def baseline(self, seed: int | None = None) -> torch.nn.Module:
        """The baseline model (no augmentation): ``model("none", seed)``."""
        return self.model(BASELINE, seed)

    def cam_set(self, augmentation: str, seed: int | None = None) -> dict[str, torch.Tensor]:
        """The stored CAM set of a model: ``maps`` (N, h, w) at the target layer's resolution, ``logits``
        (N, K), ``targets`` (N,); upsample the maps with :func:`auglens.cam.upsample_maps`."""
        return self.store.load_tensors("cams", self.cam_job(augmentation, seed).key)

    def test_images(self, index: slice | Sequence[int] | torch.Tensor | None = None) -> torch.Tensor:
        """The test images as the models saw them: float32 (N, C, S, S), resized to ``model.input_size`` and
        normalised as the models were (the training subset's mean and std, or ImageNet's with
        ``model.normalisation``), on the study's device.

        ``index`` (a slice, indices or a bool mask) picks images before converting them, so a large test set
        need not sit in memory as floats: ``test_images(slice(0, 64))``.
        """
        data = normalised_with(self.data, self.plan.models[0].model.spec.normalisation)
        images = data.test.images if index is None else data.test.images[index]
        return model_input(images.to(self.device), data.mean.to(self.device), data.std.to(self.device),
                           self.config.model.input_size)

    def test_labels(self, index: slice | Sequence[int] | torch.Tensor | None = None) -> torch.Tensor:
        """The test labels (N,) int64, in the order of :meth:`test_images`."""
        labels = self.data.test.labels
        return labels if index is None else labels[index]

    def __repr__(self) -> str:
        return f"OpenedStudy({str(self.folder)!r}, models: {', '.join(self.model_ids)})"


def open_study(folder: str | Path, device: str | torch.device = "cpu") -> OpenedStudy:
    """Open a finished study folder (the ``--out`` of ``auglens run``, or :func:`~auglens.study.run.run_study`'s).

    Returns an :class:`OpenedStudy`: ``performance``, ``cam_metrics`` and ``aug_metrics`` (DataFrames), the
    resolved ``config``, ``model(augmentation, seed)`` / ``baseline()`` (loaded, eval mode, on ``device``),
    ``cam_set(augmentation, seed)`` (the stored CAMs), and ``test_images()`` / ``test_labels()`` prepared
    as the models saw them. Checkpoints and CAM sets are found by the keys of the study's own plan, with the
    compute settings recorded in ``manifest.json``. Raises :class:`~auglens.errors.UserError` when the folder
    is not a finished study or was written by an auglens whose keys differ.
    """
    folder = Path(folder)
    missing = [name for name in ("config.toml", "manifest.json", "performance.csv") if not (folder / name).is_file()]
    if missing:
        raise UserError(f"{folder} is not a finished study folder (no {', '.join(missing)}); expected the --out "
                        "folder of `auglens run`")
    manifest = json.loads((folder / "manifest.json").read_text())
    if manifest.get("command") == "compare" or "compute" not in manifest:
        raise UserError(f"{folder} holds an `auglens compare` result, not a study: read its tables with pandas, "
                        "or open the study its models came from")
    config = load(folder / "config.toml")
    plan = plan_study(config, ComputeSpec(**manifest["compute"]))
    recorded = manifest.get("models", {})
    stale = [job.model.model_id for job in plan.models
             if job.model.model_id in recorded and recorded[job.model.model_id].get("train_key") != job.model.key]
    if stale:
        raise UserError(f"{folder}: the models {', '.join(stale)} were trained under other keys than this auglens "
                        f"({manifest.get('auglens', '?')} wrote the study) computes; open it with that version, "
                        "or rerun the study")
    store = run_store(config.runtime, folder / "artifacts")
    return OpenedStudy(folder, config, plan, store, torch.device(device), pd.read_csv(folder / "performance.csv"))

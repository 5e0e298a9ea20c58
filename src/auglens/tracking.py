"""Optional TensorBoard logging of a study (``runtime.tensorboard = true``; ``pip install "auglens[tensorboard]"``).

Each model gets its own run folder, ``<out>/tensorboard/<model id>``, so TensorBoard overlays the models'
curves: the training loss and the validation metrics of every epoch, written as soon as the model has
trained (watch a running study with ``tensorboard --logdir <out>/tensorboard``), and once the model's CAMs
exist, its CAMs of the first test images overlaid on them. The files are a view of the run, not a result:
the tables and the report never read them. The local backend logs each model as it finishes; the Ray
backend logs every model when the cluster's jobs are done.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from auglens.errors import UserError

__all__ = ["TensorBoardLog", "tensorboard_available"]

#: Test images whose CAM overlays are logged per model.
N_OVERLAYS = 8


def tensorboard_available() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


class TensorBoardLog:
    """Writes event files under ``folder/<model id>``; one writer per model, opened on first use."""

    def __init__(self, folder: str | Path):
        if not tensorboard_available():
            raise UserError('runtime.tensorboard = true needs the tensorboard package: pip install "auglens[tensorboard]" '
                            "(or set runtime.tensorboard = false)")
        self.folder = Path(folder)
        self._writers: dict[str, Any] = {}

    def _writer(self, model_id: str):
        from torch.utils.tensorboard import SummaryWriter

        if model_id not in self._writers:
            self._writers[model_id] = SummaryWriter(str(self.folder / model_id))
        return self._writers[model_id]

    def epoch(self, model_id: str, row: dict[str, float]) -> None:
        """One epoch's history row (``epoch``, ``train_loss``, ``val_*``) as scalars at step ``epoch + 1``."""
        writer = self._writer(model_id)
        step = int(row["epoch"]) + 1
        for key, value in row.items():
            if key == "epoch":
                continue
            group = "train" if key.startswith("train") else "validation" if key.startswith("val_") else "time"
            writer.add_scalar(f"{group}/{key.removeprefix('val_')}", float(value), step)
        writer.flush()

    def cam_overlays(self, model_id: str, images: torch.Tensor, maps: torch.Tensor, alpha: float = 0.5) -> None:
        """The first test images with the model's CAM blended over them.

        Args:
            images: ``(n, C, H, W)`` uint8 test images (C = 1 or 3).
            maps: ``(n, H, W)`` CAMs in [0, 1] at the images' size.
        """
        from matplotlib import colormaps

        from auglens.report.style import CAM_CMAP

        n = min(N_OVERLAYS, len(images))
        rgb = images[:n].float() / 255.0
        rgb = rgb.expand(-1, 3, -1, -1) if rgb.shape[1] == 1 else rgb[:, :3]
        heat = torch.from_numpy(colormaps[CAM_CMAP](maps[:n].cpu().numpy())[..., :3]).permute(0, 3, 1, 2).float()
        writer = self._writer(model_id)
        writer.add_images("cam_overlays", (1 - alpha) * rgb + alpha * heat, 0, dataformats="NCHW")
        writer.flush()

    def job_done(self, job: Any, store: Any) -> None:
        """Log what a finished study job produced: a training's history, or a CAM set's first overlays."""
        if job.stage == "train":
            for train in job.members:  # a group of lockstep trainings: each member's curves
                history = store.load_json("histories", train.key)
                for row in history["history"]:
                    self.epoch(train.model_id, row)
        elif job.stage == "cam":
            from auglens.cam import upsample_maps
            from auglens.data.prepared import prepare_data

            images = prepare_data(job.model.data).test.images[:N_OVERLAYS]
            maps = store.load_tensors("cams", job.key)["maps"][:N_OVERLAYS].float()
            self.cam_overlays(job.model.model_id, images, upsample_maps(maps, tuple(images.shape[-2:])))

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()

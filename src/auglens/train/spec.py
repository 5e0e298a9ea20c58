"""What determines one trained model: :class:`TrainSpec`, hashable, the key of every training artifact.

Its own module so that the epoch loop (:mod:`auglens.train.epochs`) and the trainers that use it
(:mod:`auglens.train.loop`, :mod:`auglens.train.stacked`) all read it without importing each other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = ["TrainSpec"]


@dataclass(frozen=True)
class TrainSpec:
    """Everything that determines one trained model (hashable; the study keys artifacts on it)."""

    architecture: str
    augmentation: str
    architecture_params: tuple[tuple[str, Any], ...] = ()
    augmentation_params: tuple[tuple[str, Any], ...] = ()
    seed: int = 1  # the starting state
    init_seed: int = 0
    input_size: int | None = None
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 1e-5
    momentum: float = 0.9
    batch_size: int = 32
    eval_batch_size: int = 256
    epochs: int = 30
    sampling_seed: int = 1234
    reshuffle_each_epoch: bool = False
    precision: str = "fp32"  # "bf16": autocast the forward pass (changes numerics); "auto": bf16 on CUDA only
    channels_last: bool = False
    compile: bool = False
    augment_every_sample: bool = False  # True: every sample augmented each epoch (the usual recipe), no originals
    lr_milestones: tuple[int, ...] = ()  # epochs at which the learning rate is multiplied by lr_gamma
    lr_gamma: float = 0.1
    lr_schedule: str = "step"  # "step": lr_milestones / lr_gamma; "one_cycle": warm-up then linear decay, per batch
    checkpoint: str = "best"  # "best": highest validation accuracy; "last": the final epoch
    # Applied to every training image before the augmentation (auglens.augment.standard): "none" or "crop_flip".
    standard_augmentation: str = field(default="none", metadata={"key": "omit_default"})
    # "per_epoch": each augmented copy drawn anew every epoch; "fixed": drawn once per image and starting state,
    # the same in every epoch (auglens.train.epochs).
    augmentation_copies: str = field(default="per_epoch", metadata={"key": "omit_default"})
    # "native": augmentations run on the stored images, before resizing to input_size; "model_input": after it.
    augmentation_resolution: str = field(default="native", metadata={"key": "omit_default"})
    # Pretrained starting weights (model.pretrained): the file's SHA-256 is in the key, its path is not (the
    # same bytes anywhere are the same start). None: from scratch.
    pretrained_sha256: str | None = field(default=None, metadata={"key": "omit_default"})
    pretrained_path: str | None = field(default=None, metadata={"key": "never"})
    # Input normalisation statistics: "data" (the training images') or "imagenet" (auglens.data.prepared).
    normalisation: str = field(default="data", metadata={"key": "omit_default"})

    def key_fields(self) -> dict[str, Any]:
        """The fields an artifact key hashes: every field, but those marked ``metadata={"key": "omit_default"}``
        while they hold their default, and those marked ``metadata={"key": "never"}`` (where a file is read
        from: its content is keyed by another field).

        A field added after models were trained and stored is marked so: left at its default it stays out of
        the key, so every key made before it existed stays valid and those models are reused; set, it enters
        the key.
        """
        values = asdict(self)
        for f in fields(self):
            if f.metadata.get("key") == "never" or (f.metadata.get("key") == "omit_default"
                                                    and getattr(self, f.name) == f.default):
                del values[f.name]
        return values

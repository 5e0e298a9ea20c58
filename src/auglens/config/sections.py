"""The sections every top-level config shares: data, split, model, training, ``[[augmentations]]``, runtime.

Each is defined once here, with the thesis's values as defaults (Dorneles 2024, Section 5.1); a config that
needs other defaults subclasses a section and changes only its defaults (as the distortion config does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from auglens.config.coercion import config_field

__all__ = ["AugmentationConfig", "DataConfig", "ModelConfig", "RuntimeConfig", "SplitConfig", "TableEntry",
           "TrainingConfig"]


@dataclass
class TableEntry:
    """An entry of an array of ``[[tables]]``: a registry name plus that entry's own parameters, written flat
    in its table (``name = "affine"`` then ``degrees = 10``). A config field holding a list of a subclass reads
    and writes as ``[[<field>]]``."""

    name: str
    params: dict[str, Any]


@dataclass
class DataConfig:
    name: str = config_field("cifar10", "data set registry name (auglens ls datasets)")
    root: str | None = config_field(None, "folder holding/receiving the data (default $AUGLENS_DATA or ~/.cache/auglens/data)")
    download: bool = config_field(True, "let torchvision download the data set when absent")
    image_size: int | None = config_field(None, "side (pixels) images are resized to at load time: image_folder, oxford_iiit_pet (needed: sizes vary), "
                                               "synthetic (default 16); "
                                               "ignored by the fixed-size torchvision data sets", min=1)
    train_subset: int | None = config_field(None, "use a stratified subset of this many training images (None: all)", min=10)
    test_subset: int | None = config_field(None, "use a stratified subset of this many test images (None: all)", min=1)
    subset_seed: int = config_field(0, "seed of the subset selection")


@dataclass
class SplitConfig:
    validation_fraction: float = config_field(
        0.1, "share of the training images held out for validation (stratified); the best-validation checkpoint "
        "needs some", min=0.0, exclusive_min=True, max=0.9)
    seed: int = config_field(0, "seed of the stratified train/validation split (the same for every model)")
    sampling_seed: int = config_field(1234, "seed of the training order, separate from the starting states (Appendix B)")
    reshuffle_each_epoch: bool = config_field(False, "draw a new order every epoch (same for every model); the thesis keeps one order")


@dataclass
class ModelConfig:
    architecture: str = config_field("efficientnet_b0", "model registry name, or package.module:factory")
    params: dict[str, Any] = config_field({}, "extra keyword arguments of the architecture (e.g. width = 16 for small_cnn)")
    input_size: int | None = config_field(224, 'side (pixels) images are resized to, aspect ratio kept ("none": native '
                                          'size)', min=8)
    init_seed: int = config_field(0, "seed of the initial weights, shared by every model (Appendix B)")
    pretrained: str | None = config_field(
        None, 'where every model starts: "none" (None: from scratch, auglens\'s choice: the thesis does not say), "imagenet" '
        "(torchvision's default ImageNet weights of model.architecture, read from the torch cache "
        "$TORCH_HOME/hub/checkpoints, never downloaded), or the path of a state-dict file (.pth, .pt, "
        ".safetensors); the classifier head is always new, drawn from init_seed for the data's classes "
        "(docs/methodology.md)")
    normalisation: Literal["auto", "data", "imagenet"] = config_field(
        "auto", "input normalisation statistics: data (the training images' mean and std), imagenet (ImageNet's, as "
        "pretrained weights expect), auto: imagenet with pretrained = \"imagenet\", else data")


@dataclass
class TrainingConfig:
    optimizer: Literal["adam", "adamw", "sgd"] = config_field("adam", "optimizer")
    lr: float = config_field(1e-3, "learning rate", min=0.0, exclusive_min=True)
    weight_decay: float = config_field(1e-5, "weight decay (adam, sgd: L2 added to the gradient, as torch applies it; adamw: decoupled)", min=0.0)
    momentum: float = config_field(0.9, "SGD momentum (sgd only)", min=0.0, max=1.0)
    batch_size: int = config_field(32, "training batch size (images)", min=1)
    eval_batch_size: int = config_field(256, "batch size for validation and test inference (images)", min=1)
    epochs: int = config_field(30, "training epochs; the best-validation-accuracy epoch is kept", min=1)
    precision: Literal["fp32", "bf16", "auto"] = config_field(
        "fp32", "bf16 autocasts the forward pass (faster on GPUs, changes numerics, so the thesis protocol uses "
        "fp32; about 9x slower on CPUs without bf16 units); auto: bf16 on CUDA, fp32 elsewhere")
    channels_last: bool = config_field(False, "channels-last memory format (faster convolutions on GPUs)")
    compile: bool = config_field(False, "torch.compile the model (pays a compile time once per model)")
    lr_milestones: list[int] = config_field([], "epochs at which the learning rate is multiplied by lr_gamma "
                                            "(the thesis: none; FMix's recipe: [100, 150])", min=0)
    lr_gamma: float = config_field(0.1, "learning-rate factor at each milestone", min=0.0, exclusive_min=True)
    lr_schedule: Literal["step", "one_cycle"] = config_field(
        "step", "step: lr, multiplied by lr_gamma at each of lr_milestones (the thesis: constant); one_cycle: per "
        "batch, from lr/10 up to lr over the first 20% of training, then linearly down to 0")
    augment_every_sample: bool = config_field(
        False, "false: each epoch sees the originals plus one augmented copy of each (the thesis); "
        "true: every sample is augmented each epoch (the usual recipe, the distortion paper's)")
    models_at_once: int | Literal["auto"] = config_field(
        1, "models trained in lockstep as one stacked (vmap-ed) computation: the models that share a batch "
        "layout (the augmented ones; the baselines) in groups of up to N, each with its own augmented copies, "
        "optimizer state and best-validation checkpoint; equal to one at a time to float rounding, not bit for "
        "bit (so part of each model's key). auto: 1 on CPUs (stacking measured slower there), on CUDA up to 8 "
        "for models of at most 5M parameters without random layers, in fp32 without compile (docs/artifacts.md)",
        min=1)
    checkpoint: Literal["best", "last"] = config_field(
        "best", "weights kept: the best validation accuracy's, earliest on ties (the thesis), or the last epoch's")
    standard_augmentation: Literal["none", "crop_flip"] = config_field(
        "none", "applied to every training image (never validation or test), baseline included, before the "
        "augmentation: none (the thesis), or crop_flip: a random crop of the image's size from it padded with 4 "
        "black pixels, then a horizontal flip with p = 0.5, per sample (the distortion paper's trainer.py, line 43: "
        "--augment True; auglens.augment.standard)")
    augmentation_copies: Literal["per_epoch", "fixed"] = config_field(
        "per_epoch", "per_epoch: each image's augmented copy is drawn anew every epoch (the thesis's §5.1: 'online "
        "during batch fetching'); fixed: drawn once per image and starting state and reused in every epoch (its "
        "Appendix B: 'an initial, purely augmented dataset is instantiated'); a mixing partner, another image of "
        "the batch, stays fixed only while the order does (split.reshuffle_each_epoch = false). The standard "
        "augmentation is drawn anew every epoch either way (docs/methodology.md)")
    augmentation_resolution: Literal["native", "model_input"] = config_field(
        "native", "where the [[augmentations]] run: native: on the stored images, before resizing to "
        "model.input_size; model_input: after that resize (the same when model.input_size is none). Parameters in "
        "pixels (blur kernel and sigma, elastic alpha and sigma) are pixels of the image they are applied to, so "
        "at model_input they act input_size/native times weaker relative to the object; shares of the image "
        "(affine translation, crop area, CutMix box) do not change. "
        "The standard augmentation runs at native resolution either way; validation and test images are only "
        "resized (docs/methodology.md)")


@dataclass
class AugmentationConfig(TableEntry):
    name: str = config_field("none", "augmentation registry name (auglens ls augmentations)")
    params: dict[str, Any] = config_field({}, "the augmentation's parameters (identical across starting states)")


@dataclass
class RuntimeConfig:
    device: str = config_field("auto", "auto (cuda when available), cpu, cuda, cuda:N")
    deterministic: bool = config_field(True, "torch deterministic algorithms (Appendix B)")
    fill_uninitialized_memory: bool = config_field(
        False, "with deterministic on, fill every new tensor with NaN before use (torch's default there: a guard "
        "against operations that read memory nothing wrote). No auglens computation reads such memory, so the "
        "numbers are the same either way (tested); off saves a write pass over every new tensor (with "
        "reuse_freed_memory the two make the default study's CPU step 1.13x faster: docs/artifacts.md, "
        "bench/cpu_step_settings.py)")
    reuse_freed_memory: bool = config_field(
        True, "keep memory the process frees for reuse instead of returning it to the system at once (glibc's "
        "malloc thresholds; no effect elsewhere): a CPU training step then allocates its activations without "
        "page faults (the default study's small CNN: 1,400-2,100 a step otherwise). It keeps up to 256 MiB of "
        "freed memory per process; the numbers are the same either way (tested)")
    num_threads: int | None = config_field(None, "CPU threads for torch, per worker (None: torch's default, or 1 with "
                                     "several workers); results depend on it "
                                     "(CPU sums are thread-order dependent), and each Ray CPU task uses and "
                                     "reserves this many CPUs", min=1)
    backend: Literal["local", "ray"] = config_field("local", "where jobs run: this process, or a Ray cluster")
    workers: int | Literal["auto"] = config_field(
        1, "local backend: processes computing a stage's jobs at once (independent trainings, CAM sets), each "
        "pinned to its own cores and running num_threads torch threads (1 when num_threads is unset and workers "
        "is not 1); auto: one per core this process may use (os.sched_getaffinity). The worker count never "
        "changes a result, the thread count does (docs/artifacts.md)", min=1)
    ray_address: str | None = config_field(None, "Ray cluster address ('auto', 'ray://host:port'); None: $RAY_ADDRESS, else a cluster started "
                                          "with `ray start` on this machine, else a new local Ray for this run")
    ray_gpus_per_task: float = config_field(1.0, "share of a GPU each Ray task reserves on CUDA (0.5: two models per GPU)",
                                      min=0.0, exclusive_min=True, max=1.0)
    artifacts: str | None = config_field(None, "artifact store location, a path or fsspec URL every Ray node can reach "
                                   "(None: <out>/artifacts; auglens distortion: <out>/distortion/artifacts)")
    metric_batch_size: int = config_field(1000, "image pairs per metric chunk (bounds memory; the values do not depend "
                                          "on it)", min=1)
    progress: bool = config_field(True, "show progress bars")
    report: bool = config_field(True, "write the HTML report at the end of auglens run")
    tensorboard: bool = config_field(False, "auglens run: also log each model's training curves and CAM overlays to "
                                     "<out>/tensorboard (pip install \"auglens[tensorboard]\")")

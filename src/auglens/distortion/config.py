"""Typed configuration of the distortion analyses, in :mod:`auglens.config`'s pattern.

One TOML file describes the data, the models (a baseline plus ``[[augmentations]]``, one per run seed)
and one section per analysis. Loading applies ``key=value`` overrides and validates everything —
unknown keys, wrong types, out-of-range values, unknown registry names, cross-field rules — raising one
:class:`~auglens.config.ConfigError` that lists every problem before any work starts.

The data, split, model and training sections are the study's (:mod:`auglens.config`) with the distortion
paper's defaults: CIFAR-10 at native resolution, PreAct-ResNet18, FMix's recipe (SGD, lr 0.1, momentum 0.9,
weight decay 1e-4, batch 128, 200 epochs, learning rate x0.1 at epochs 100 and 150), 5 runs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from auglens.config import (
    AugmentationConfig,
    ConfigError,
    DataConfig,
    ModelConfig,
    RuntimeConfig,
    SplitConfig,
    TrainingConfig,
    build_section,
    check_augmentation_params,
    drop_none,
    config_field,
    parse_augmentations,
    read_toml,
)

__all__ = ["ANALYSIS_NAMES", "DistortionConfig", "from_dict", "load", "to_dict"]

ANALYSIS_NAMES = ("interference", "occlusion", "affinity", "interdataset", "simplicity", "cue_conflict")
Occluder = Literal["black", "mean", "images"]


@dataclass
class DistortionSplitConfig(SplitConfig):
    validation_fraction: float = config_field(
        0.0, "share of the training images held out for validation (stratified); 0: train on the full training "
        "set, as the paper (training.checkpoint = 'best' needs some)", min=0.0, max=0.9)
    reshuffle_each_epoch: bool = config_field(True, "draw a new training order every epoch, as the paper (false: one "
                                              "fixed order, the thesis's control; mixing partners then come only "
                                              "from a sample's own batch of that order)")


@dataclass
class DistortionModelConfig(ModelConfig):
    architecture: str = config_field("preact_resnet18", "model registry name (the paper: PreAct-ResNet18)")
    input_size: int | None = config_field(None, "side (pixels) images are resized to (None: native size, as the paper)", min=8)
    pretrained: bool = config_field(
        False, "evaluate torchvision's pretrained ImageNet model of this architecture (read from the torch cache, "
        "$TORCH_HOME/hub/checkpoints) instead of training: one run of the basic model, 224x224 unless input_size")


@dataclass
class DistortionTrainingConfig(TrainingConfig):
    optimizer: Literal["adam", "adamw", "sgd"] = config_field("sgd", "optimizer (FMix's recipe: SGD)")
    lr: float = config_field(0.1, "learning rate", min=0.0, exclusive_min=True)
    lr_milestones: list[int] = config_field([100, 150], "epochs at which the learning rate is multiplied by lr_gamma "
                                            "(FMix's recipe)", min=0)
    weight_decay: float = config_field(1e-4, "weight decay", min=0.0)
    batch_size: int = config_field(128, "training batch size (images)", min=1)
    epochs: int = config_field(200, "training epochs", min=1)
    checkpoint: Literal["last", "best"] = config_field(
        "last", "weights kept: the last epoch's (the paper's protocol) or the best validation accuracy's (the thesis's)")
    augment_every_sample: bool = config_field(True, "every sample augmented each epoch, as the paper trains "
                                              "(false: originals plus one augmented copy, the thesis's protocol)")


@dataclass
class RunsConfig:
    seeds: list[int] = config_field([1, 2, 3, 4, 5], "runs (the paper: 5): run s trains every model type from initial weights "
                              "model.init_seed + s, in data order split.sampling_seed + s", min_len=1)
    distortion_seed: int = config_field(0, "seed of the test-time distortions: image i of run s gets key (seed, s, i)")


@dataclass
class InterferenceConfig:
    distortions: list[Literal["grid_shuffle", "cut_occlusion", "fourier_occlusion"]] = config_field(
        ["grid_shuffle", "cut_occlusion"], "test-time distortions whose DI index is measured (fourier_occlusion: an "
        "FMix-shaped occluder, Appendix B.4)", min_len=1)
    grid: int = config_field(4, "grid shuffle: tiles per side (the paper: 2 Fashion-MNIST, 4 CIFAR, 8 ImageNet)", min=1)
    occlusion_beta: tuple[float, float] = config_field((2.0, 1.0), "CutOcclusion: occluded fraction ~ Beta(a, b)", min=0.0,
                                                 exclusive_min=True)
    fraction: float | None = config_field(
        None, "occluded fraction of every image (None: drawn per image from occlusion_beta, the paper's Tables 1, 3; "
        "Table 4: 0.3)", min=0.0, max=0.99)
    decay_power: float = config_field(3.0, "fourier_occlusion: spectrum decay power of the FMix-shaped occluder",
                                      min=0.0, exclusive_min=True)
    restricted: bool = config_field(False, "CutOcclusion: keep the box inside the image (False: the paper's DI setting)")
    occluder: Occluder = config_field("black", "CutOcclusion fill: black, the data set's mean colour, or images of occluder_dataset")
    occluder_dataset: str | None = config_field(None, "data set whose images fill the boxes when occluder = 'images'")
    normalisation: Literal["release", "paper"] = config_field(
        "release", "DI's increase: shares of the wrong predictions x K/100, weighted by the mean over runs (the "
        "authors' release, which produced the paper's tables) or percent of the test images, each run's own weight "
        "(Eq. 1 read literally); both are written, this one picks c_max for class removal and the figure")
    class_removal: bool = config_field(True, "retrain without each model type's c_max and measure DI again (Table 6)")
    removal_distortion: str | None = config_field(None, "distortion whose c_max is removed (None: the first listed)")
    max_test_images: int | None = config_field(None, "stratified subset of the test set (None: all)", min=1)


@dataclass
class OcclusionConfig:
    fractions: list[float] = config_field([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
                                    "occluded fractions p of each image", min_len=1, min=0.0, max=0.99)
    maskings: list[Literal["saliency", "box", "fourier"]] = config_field(
        ["saliency", "box", "fourier"], "iOcclusion masks: most salient pixels, an in-bounds box, an FMix mask "
        "(box is always computed: it is CutOcclusion)", min_len=1)
    occluders: list[Occluder] = config_field(["black"], "fills: black (uniform), mean colour, or images (non-uniform)",
                                       min_len=1)
    occluder_dataset: str | None = config_field(None, "data set whose images are pasted when 'images' is an occluder")
    cam_method: str = config_field("gradcam", "CAM method of the saliency masks (auglens ls cams)")
    target_layer: str | None = config_field(
        None, "CAM target layer of the saliency masks (None: the architecture's occlusion layer where it declares one — "
        "layer3 for preact_resnet18, the authors' choice — else its CAM target layer)")
    order: Literal["most", "least", "coin"] = config_field(
        "most", "saliency masks occlude the most salient pixels (paper), the least, or either (release)")
    decay_power: float = config_field(3.0, "Fourier masks: spectrum decay power", min=0.0, exclusive_min=True)
    fourier_fraction: Literal["exact", "release"] = config_field(
        "exact", "Fourier masks occlude exactly p (the paper) or a share ~ Beta(p, p) per image (the authors' release, "
        "which passes p to FMix as alpha)")
    table_fraction: float = config_field(0.3, "occluded fraction reported in the paper-layout Table 4 (when it is one "
                                         "of the fractions)", min=0.0, max=0.99)
    max_train_images: int | None = config_field(2000, "stratified subset of the training set (None: all)", min=1)
    max_test_images: int | None = config_field(2000, "stratified subset of the test set (None: all)", min=1)


@dataclass
class AffinityConfig:
    kind: Literal["difference", "ratio"] = config_field("difference", "affinity as A(aug) - A(clean) (paper) or A(aug) / A(clean)")
    max_test_images: int | None = config_field(None, "stratified test subset for affinity (None: all)", min=1)


@dataclass
class InterDatasetConfig:
    partners: list[str] = config_field(["cifar100"], "data sets whose images are mixed in, labels ignored", min_len=1)
    partner_root: str | None = config_field(None, "folder of the partner data sets (default: as data.root)")
    augmentations: list[str] = config_field(["mixup", "fmix", "boxmix"],
                                      "mixed-sample augmentations, run with the reformulated objective", min_len=1)
    alpha: float = config_field(1.0, "lambda ~ Beta(alpha + 1, alpha)", min=0.0, exclusive_min=True)


@dataclass
class SimplicityConfig:
    simple: str = config_field("mnist", "data set stacked on top (the paper: MNIST)")
    simple_classes: list[int] | None = config_field(None, "class indices of the simple set, in pairing order (None: all)")
    complex: str = config_field("cifar10", "data set below (the paper: CIFAR-10); its label is the training label")
    complex_classes: list[int] | None = config_field(None, "class indices of the complex set (None: all)")
    simple_root: str | None = config_field(None, "folder of the simple data set (default: as data.root)")
    complex_root: str | None = config_field(None, "folder of the complex data set (default: as data.root)")
    train_subset: int | None = config_field(None, "stratified subset of the complex training set (None: all)", min=10)
    test_subset: int | None = config_field(None, "stratified subset of the complex test set (None: all)", min=1)
    augmentations: list[str] = config_field(["fmix"], "mixed-sample augmentations applied to one half", min_len=1)
    half: Literal["simple", "complex"] = config_field("simple", "the half that is mixed (the paper: the simple one)")
    objective: Literal["mixed", "reformulated"] = config_field(
        "reformulated", "loss of the mixed half: reformulated (first label only, as the release's *_simplicity "
        "trainers) or mixed (both labels; the mixed half then carries the mixing and becomes the informative one)")
    alpha: float = config_field(1.0, "lambda ~ Beta(alpha + 1, alpha) (reformulated) or Beta(alpha, alpha) (mixed)",
                          min=0.0, exclusive_min=True)
    pairing_seed: int = config_field(0, "seed of the class-matched training pairs and the random test pairs")


@dataclass
class CueConflictConfig:
    folder: str | None = config_field(None, "folder of cue-conflict images named <shape><n>-<texture><n>.png")
    class_map: dict[str, str] = config_field({}, "file-name class -> model class, where they differ")
    class_mapping: str | None = config_field(
        None, "JSON file {cue class: [model class names or indices]}: many model classes make one cue class (e.g. the "
        "16 coarse classes from ImageNet's 1,000); decisions by the mean probability of each cue class's members")


@dataclass
class DistortionConfig:
    name: str = config_field("distortion", "name shown in the outputs")
    analyses: list[Literal["interference", "occlusion", "affinity", "interdataset", "simplicity", "cue_conflict"]] = \
        config_field(list(ANALYSIS_NAMES[:5]), "analyses run by run_from_toml, in order", min_len=1)
    data: DataConfig = field(default_factory=DataConfig)
    split: DistortionSplitConfig = field(default_factory=DistortionSplitConfig)
    model: DistortionModelConfig = field(default_factory=DistortionModelConfig)
    training: DistortionTrainingConfig = field(default_factory=DistortionTrainingConfig)
    runs: RunsConfig = field(default_factory=RunsConfig)
    augmentations: list[AugmentationConfig] = field(default_factory=lambda: [
        AugmentationConfig("mixup"), AugmentationConfig("fmix"), AugmentationConfig("cutmix")])
    interference: InterferenceConfig = field(default_factory=InterferenceConfig)
    occlusion: OcclusionConfig = field(default_factory=OcclusionConfig)
    affinity: AffinityConfig = field(default_factory=AffinityConfig)
    interdataset: InterDatasetConfig = field(default_factory=InterDatasetConfig)
    simplicity: SimplicityConfig = field(default_factory=SimplicityConfig)
    cue_conflict: CueConflictConfig = field(default_factory=CueConflictConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)


def to_dict(config: DistortionConfig) -> dict[str, Any]:
    """Plain nested dict in the TOML layout (None dropped); ``from_dict(to_dict(c))`` == c."""
    data = drop_none(dataclasses.asdict(config))
    data["augmentations"] = [{"name": a["name"], **a["params"]} for a in data["augmentations"]]
    return data


def from_dict(data: dict[str, Any], source: str | None = None) -> DistortionConfig:
    """Build and validate; raises :class:`ConfigError` listing every problem."""
    errors: list[str] = []
    data = dict(data)
    augmentations = parse_augmentations(data["augmentations"], errors) if "augmentations" in data else None
    data.pop("augmentations", None)
    config = build_section(DistortionConfig, data, "", errors)
    if augmentations is not None:
        config.augmentations = augmentations
    errors.extend(_validate(config))
    if errors:
        raise ConfigError(errors, source)
    return config


def load(path: str | Path, overrides: list[str] | None = None) -> DistortionConfig:
    """Read a TOML file, apply ``key=value`` overrides, validate; raises :class:`ConfigError`."""
    return from_dict(read_toml(path, overrides), str(path))


def coerce_config(config: DistortionConfig | dict[str, Any]) -> DistortionConfig:
    """A validated config from a config object or a plain dict in the TOML layout."""
    if isinstance(config, DistortionConfig):
        errors = _validate(config)
        if errors:
            raise ConfigError(errors)
        return config
    return from_dict(config)


def _validate(config: DistortionConfig) -> list[str]:
    from auglens.augment import AUGMENTATIONS
    from auglens.cam import CAM_METHODS
    from auglens.data import DATASETS
    from auglens.models import MODELS

    errors: list[str] = []

    def check(path: str, registry, name: str | None) -> bool:
        if name is not None and name not in registry:
            errors.append(f"{path}: {registry.unknown_message(name)}")
            return False
        return True

    check("data.name", DATASETS, config.data.name)
    if ":" not in config.model.architecture and not config.model.pretrained:
        check("model.architecture", MODELS, config.model.architecture)
    if config.data.name == "image_folder" and not config.data.root:
        errors.append("data.root: image_folder needs data.root (a folder with train/ and test/ class folders)")
    if config.training.checkpoint == "best" and config.split.validation_fraction == 0:
        errors.append("training.checkpoint: 'best' picks the best validation epoch, but split.validation_fraction "
                      "is 0 (no validation set); set split.validation_fraction > 0 or training.checkpoint = 'last'")
    if config.model.pretrained:
        from auglens.models.pretrained import pretrained_names

        if config.model.architecture not in pretrained_names():
            errors.append(f"model.architecture: pretrained weights exist for torchvision's ImageNet classifiers only, got "
                          f"{config.model.architecture!r}; valid: {', '.join(pretrained_names())}")
        trains = [a for a in config.analyses if a in ("affinity", "interdataset", "simplicity")]
        if config.interference.class_removal and "interference" in config.analyses:
            trains.append("interference with class_removal")
        if trains:
            errors.append(f"model.pretrained: {', '.join(trains)} train(s) models; with a pretrained model run only "
                          f"interference (class_removal = false), occlusion or cue_conflict")
    if len(set(config.runs.seeds)) != len(config.runs.seeds):
        errors.append(f"runs.seeds: seeds must be distinct, got {config.runs.seeds}")
    if config.runtime.backend != "local":
        errors.append("runtime.backend: the distortion analyses run locally only; set runtime.backend = 'local'")
    if len(set(config.analyses)) != len(config.analyses):
        errors.append(f"analyses: listed twice: {config.analyses}")

    seen = set()
    for i, aug in enumerate(config.augmentations):
        path = f"augmentations[{i}]"
        if aug.name == "none":
            errors.append(f"{path}: 'none' is the baseline, which every analysis trains; list only augmentations")
        elif check(f"{path}.name", AUGMENTATIONS, aug.name):
            if aug.name in seen:
                errors.append(f"{path}.name: {aug.name!r} is listed twice")
            seen.add(aug.name)
            errors.extend(check_augmentation_params(path, aug))

    inter = config.interference
    removal = inter.removal_distortion
    if removal is not None and removal not in inter.distortions:
        errors.append(f"interference.removal_distortion: {removal!r} is not one of interference.distortions "
                      f"{inter.distortions}")
    _check_occluder("interference", [inter.occluder], inter.occluder_dataset, errors, check)

    occ = config.occlusion
    check("occlusion.cam_method", CAM_METHODS, occ.cam_method)
    _check_occluder("occlusion", occ.occluders, occ.occluder_dataset, errors, check)

    mixed_family = [n for n in AUGMENTATIONS.names() if "partner_dataset" in AUGMENTATIONS.parameters(n)]
    for i, partner in enumerate(config.interdataset.partners):
        check(f"interdataset.partners[{i}]", DATASETS, partner)
    for section, names in (("interdataset", config.interdataset.augmentations),
                           ("simplicity", config.simplicity.augmentations)):
        for i, name in enumerate(names):
            if name not in mixed_family:
                errors.append(f"{section}.augmentations[{i}]: {name!r} is not a mixed-sample augmentation with "
                              f"partner/region options; valid: {', '.join(mixed_family)}")

    simple = config.simplicity
    check("simplicity.simple", DATASETS, simple.simple)
    check("simplicity.complex", DATASETS, simple.complex)
    if (simple.simple_classes is not None and simple.complex_classes is not None
            and len(simple.simple_classes) != len(simple.complex_classes)):
        errors.append(f"simplicity: simple_classes and complex_classes must have the same length, got "
                      f"{len(simple.simple_classes)} and {len(simple.complex_classes)}")

    if "cue_conflict" in config.analyses:
        folder = config.cue_conflict.folder
        if not folder:
            errors.append("cue_conflict.folder: the cue_conflict analysis needs a folder of images named "
                          "<shape><n>-<texture><n>.png; set it or drop 'cue_conflict' from analyses")
        elif not Path(folder).is_dir():
            errors.append(f"cue_conflict.folder: {folder} is not a folder")
        mapping = config.cue_conflict.class_mapping
        if mapping and not Path(mapping).is_file():
            errors.append(f"cue_conflict.class_mapping: {mapping} is not a file; give a JSON file "
                          f"{{cue class: [model class names or indices]}} or drop the key")
    return errors


def _check_occluder(section, occluders, dataset, errors, check) -> None:
    from auglens.data import DATASETS

    if "images" in occluders and not dataset:
        errors.append(f"{section}.occluder_dataset: occluding with 'images' needs a data set to cut patches from")
    check(f"{section}.occluder_dataset", DATASETS, dataset)

"""Typed configuration of the distortion analyses: the config core of :mod:`auglens.config` plus one section
per analysis.

One TOML file describes the data, the models (a baseline plus ``[[augmentations]]``, one per run seed)
and one section per analysis. :class:`DistortionConfig` is a dataclass on
:class:`~auglens.config.ConfigBase`, so loading, ``key=value`` overrides, the dict round trip and the shared
sections' validation are the study's; it holds one field per registered analysis, typed with the section
dataclass the analysis registers (:mod:`auglens.distortion.analyses.sections`), and runs each analysis's own
checks. Everything is validated at once — unknown keys, wrong types, out-of-range values, unknown registry
names, cross-field rules — raising one :class:`~auglens.config.ConfigError` that lists every problem before
any work starts.

The data, split, model, training and runtime sections are the study's; split, model and training change
only their defaults to the distortion paper's: CIFAR-10 at native resolution, PreAct-ResNet18, FMix's recipe
(SGD, lr 0.1, momentum 0.9, weight decay 1e-4, batch 128, 200 epochs, learning rate x0.1 at epochs 100 and
150) with the authors' standard augmentation (random crop with 4 pixels of zero padding, horizontal flip:
their trainer's default), 5 runs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from auglens.config import (
    AugmentationConfig,
    ConfigBase,
    DataConfig,
    ModelConfig,
    RuntimeConfig,
    SplitConfig,
    TrainingConfig,
    config_field,
)
from auglens.distortion.analyses.registry import ANALYSES, analysis_names
from auglens.distortion.analyses.sections import (
    AffinityConfig,
    CueConflictConfig,
    InterDatasetConfig,
    InterferenceConfig,
    OcclusionConfig,
    SimplicityConfig,
)

__all__ = ["AnalysisName", "DistortionConfig", "from_dict", "config_kind", "load", "to_dict"]

#: The registered analyses, in the paper's order (a test checks it against the registry).
AnalysisName = Literal["interference", "occlusion", "affinity", "interdataset", "simplicity", "cue_conflict"]


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
    normalisation: Literal["auto"] = config_field(
        "auto", "auto only: trained models see the training data's mean and std, a pretrained model ImageNet's")


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
    standard_augmentation: Literal["none", "crop_flip"] = config_field(
        "crop_flip", "applied to every training image (never validation or test), basic model included, before "
        "the mixing: crop_flip (the authors' trainer.py, line 43, --augment True: RandomCrop(size, padding=4) and "
        "RandomHorizontalFlip, per sample) or none")
    models_at_once: int | Literal["auto"] = config_field(
        1, "must be 1: the distortion analyses train one model at a time (their models differ in data and batch "
        "layout)", min=1)


@dataclass
class RunsConfig:
    seeds: list[int] = config_field([1, 2, 3, 4, 5], "runs (the paper: 5): run s trains every model type from initial weights "
                              "model.init_seed + s, in data order split.sampling_seed + s", min_len=1)
    distortion_seed: int = config_field(0, "seed of the test-time distortions: image i of run s gets key (seed, s, i)")


def _default_analyses() -> list[str]:
    return analysis_names(default_only=True)


@dataclass
class DistortionConfig(ConfigBase):
    """A distortion config: data, split, model, training, runs, [[augmentations]], one section per analysis
    (auglens.distortion.analyses) and runtime."""

    name: str = config_field("distortion", "name shown in the outputs")
    analyses: list[AnalysisName] = field(default_factory=_default_analyses, metadata={
        "help": "analyses run by run_from_toml, in order", "min_len": 1})
    data: DataConfig = field(default_factory=DataConfig)
    split: DistortionSplitConfig = field(default_factory=DistortionSplitConfig)
    model: DistortionModelConfig = field(default_factory=DistortionModelConfig)
    training: DistortionTrainingConfig = field(default_factory=DistortionTrainingConfig)
    runs: RunsConfig = field(default_factory=RunsConfig)
    augmentations: list[AugmentationConfig] = field(default_factory=lambda: [
        AugmentationConfig("mixup"), AugmentationConfig("fmix"), AugmentationConfig("cutmix", {"label": "mixed"})])
    # One section per registered analysis, in the paper's order, typed with the class it registers.
    interference: InterferenceConfig = field(default_factory=InterferenceConfig)
    occlusion: OcclusionConfig = field(default_factory=OcclusionConfig)
    affinity: AffinityConfig = field(default_factory=AffinityConfig)
    interdataset: InterDatasetConfig = field(default_factory=InterDatasetConfig)
    simplicity: SimplicityConfig = field(default_factory=SimplicityConfig)
    cue_conflict: CueConflictConfig = field(default_factory=CueConflictConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    seeds_key: ClassVar[str] = "runs.seeds"
    baseline_trained_by: ClassVar[str] = "every analysis"
    doc_title: ClassVar[str] = "Distortion analyses (`auglens distortion`, `auglens validate`)"
    doc_intro: ClassVar[str] = (
        "Data, split, model, training, `[[augmentations]]` and runtime are the study's sections; defaults are the "
        "distortion paper's (PreAct-ResNet18, FMix's training recipe, 5 runs), e.g. `auglens distortion "
        "config.toml --out DIR runs.seeds=[1,2] training.epochs=2`.")

    def validate(self) -> tuple[list[str], DistortionConfig]:
        """The shared sections' checks (:meth:`ConfigBase.validate`), the cross-field rules of the distortion
        analyses, then each registered analysis's own checks.

        Returns ``(problems, resolved)`` as :meth:`ConfigBase.validate`; this config is left unchanged.
        """
        errors, resolved = super().validate()
        if self.training.checkpoint == "best" and self.split.validation_fraction == 0:
            errors.append("training.checkpoint: 'best' picks the best validation epoch, but split.validation_fraction "
                          "is 0 (no validation set); set split.validation_fraction > 0 or training.checkpoint = 'last'")
        if self.model.pretrained:
            trains = [a for a in self.analyses if a in ("affinity", "interdataset", "simplicity")]
            if self.interference.class_removal and "interference" in self.analyses:
                trains.append("interference with class_removal")
            if trains:
                errors.append(f"model.pretrained: {', '.join(trains)} train(s) models; with a pretrained model run "
                              f"only interference (class_removal = false), occlusion or cue_conflict")
        for i, augmentation in enumerate(self.augmentations):
            # The two papers read CutMix's label differently, so a distortion config must say which it means.
            if augmentation.name == "cutmix" and "label" not in augmentation.params:
                errors.append(f"augmentations[{i}] (cutmix): state its label: label = \"mixed\" (the distortion "
                              f"paper, as Yun et al.: labels mixed by the pasted area) or label = \"receiver\" (the "
                              f"thesis: the pasted-on image keeps its class)")
        if len(set(self.analyses)) != len(self.analyses):
            errors.append(f"analyses: listed twice: {self.analyses}")
        if self.training.models_at_once != 1:
            errors.append("training.models_at_once: the distortion analyses train one model at a time (their models "
                          "differ in data and batch layout); set it to 1")
        for name in analysis_names():
            checks = ANALYSES.get(name).validate
            if checks is not None:
                errors.extend(checks(resolved))
        return errors, resolved

    def validate_model(self) -> list[str]:
        """A pretrained model is one of torchvision's ImageNet classifiers; otherwise the study's check."""
        if not self.model.pretrained:
            return super().validate_model()
        from auglens.models.pretrained import pretrained_names

        if self.model.architecture not in pretrained_names():
            return [f"model.architecture: pretrained weights exist for torchvision's ImageNet classifiers only, got "
                    f"{self.model.architecture!r}; valid: {', '.join(pretrained_names())}"]
        return []


def to_dict(config: DistortionConfig) -> dict[str, Any]:
    """Plain nested dict in the TOML layout (None dropped); ``from_dict(to_dict(c))`` == c."""
    return config.to_dict()


def from_dict(data: dict[str, Any], source: str | None = None) -> DistortionConfig:
    """Build and validate; raises :class:`~auglens.config.ConfigError` listing every problem."""
    return DistortionConfig.from_dict(data, source)


def load(path: str | Path, overrides: list[str] | None = None) -> DistortionConfig:
    """Read a TOML file, apply ``key=value`` overrides, validate; raises :class:`~auglens.config.ConfigError`."""
    return DistortionConfig.load(path, overrides)


def config_kind(data: dict[str, Any]) -> str | None:
    """``"distortion"`` or ``"study"`` for a config in the TOML layout that has a top-level key only that kind
    has (distortion: ``analyses``, ``runs`` or an analysis's section; study: ``study``, ``cam``, ``metrics``),
    None when it has only the shared sections (data, model, training, ...), which both read."""
    from auglens.config import Config

    study_keys = {f.name for f in dataclasses.fields(Config)}
    distortion_keys = {f.name for f in dataclasses.fields(DistortionConfig)}
    if (distortion_keys - study_keys) & set(data):
        return "distortion"
    if (study_keys - distortion_keys) & set(data):
        return "study"
    return None


def coerce_config(config: DistortionConfig | dict[str, Any]) -> DistortionConfig:
    """A validated config from a config object or a plain dict in the TOML layout."""
    return config.checked() if isinstance(config, ConfigBase) else from_dict(config)

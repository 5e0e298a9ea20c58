"""The study's config (``auglens run``): the shared sections plus the study, CAM and ``[[metrics]]`` sections.

Its defaults are the thesis's values (Dorneles 2024, Section 5.1: EfficientNet-B0 at 224x224, Adam, lr 1e-3,
weight decay 1e-5, batch 32, 30 epochs, 3 starting states, stratified 90/10 split, Grad-CAM at the last
convolutional layer for the predicted class). Its ``[[metrics]]`` tables take the parameters each metric
declares in its registry entry (:mod:`auglens.metrics`); the older ``[metrics]`` table is still read
(:mod:`auglens.config.legacy`).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from auglens.config.base import ConfigBase, registered_entries
from auglens.config.coercion import coerce, config_field, unknown_key
from auglens.config.legacy import legacy_metrics
from auglens.config.sections import (
    AugmentationConfig,
    DataConfig,
    ModelConfig,
    RuntimeConfig,
    SplitConfig,
    TableEntry,
    TrainingConfig,
)

__all__ = ["CONTROL_SETTINGS", "CamConfig", "CkaConfig", "Config", "ControlConfig", "FaithfulnessConfig",
           "MetricConfig", "StudyConfig", "default_metrics", "from_dict", "load", "plain_params"]


@dataclass
class StudyConfig:
    seeds: list[int] = config_field([1, 2, 3], "starting states: one augmented model per augmentation and seed", min_len=1)
    baseline: Literal["shared", "per_seed"] = config_field(
        "shared", "shared: one baseline (trained with the first seed), as the thesis; per_seed: one baseline per seed, "
        "each augmented model compared with the baseline of its seed")


@dataclass
class CamConfig:
    method: str = config_field("gradcam", "CAM method registry name (auglens ls cams)")
    target_layer: str | None = config_field(None, "dotted module name or 'last_conv' (None: the architecture's last conv stage)")
    target: Literal["predicted", "label"] = config_field("predicted", "class the CAM explains: the model's prediction or the true label")
    batch_size: int = config_field(128, "images per CAM chunk (bounds memory)", min=1)
    storage_dtype: Literal["float16", "float32"] = config_field(
        "float32", "dtype CAM sets are stored in, at the target layer's resolution; float16 halves the size but "
        "moves overlap rates by up to 1e-2 (docs/cam.md)")
    params: dict[str, Any] = config_field({}, "the CAM method's options, e.g. score_batch_size = 16 for scorecam "
                                          "(auglens ls cams); part of the CAM sets' keys")


@dataclass
class MetricConfig(TableEntry):
    """One ``[[metrics]]`` table: a metric and its parameters, declared with their defaults in its registry entry."""

    name: str = config_field("mad", "metric registry name (auglens ls metrics)")
    params: dict[str, Any] = config_field({}, "the metric's parameters, e.g. percents = [20, 10, 5] for overlap")


#: The settings a ``[[controls]]`` entry may change, by name: ``(section, field)`` of the config key it changes
#: (its name is also the :class:`~auglens.train.spec.TrainSpec` field the spec builder fills from that key),
#: and what a change of it alone changes in training.
CONTROL_SETTINGS: dict[str, tuple[str, str, str]] = {
    "init_seed": ("model", "init_seed", "the initial weights"),
    "sampling_seed": ("split", "sampling_seed", "the training order (every epoch's, with split.reshuffle_each_epoch)"),
}


@dataclass
class ControlConfig(TableEntry):
    """One ``[[controls]]`` table: a setting every model shares (``name``, one of :data:`CONTROL_SETTINGS`) and
    the other ``values`` it is retrained with, one baseline-like model (no augmentation) per value and seed."""

    name: str = config_field("init_seed", "the setting changed: " + ", ".join(CONTROL_SETTINGS))
    params: dict[str, Any] = config_field({}, "values = [...]: the setting's other values, each one retrained model "
                                          "per seed")

    @property
    def values(self) -> list[int]:
        return list(self.params.get("values", []))


@dataclass
class FaithfulnessConfig:
    """Are the compared maps faithful to their models? Deletion, insertion and ROAD per model (docs/methodology.md)."""

    enabled: bool = config_field(False, "score every model's CAMs on test_subset test images (one job per model); off "
                                 "by default: on the default study it takes longer than the study itself (docs/methodology.md)")
    measures: list[str] = config_field(["deletion", "insertion", "road"], "faithfulness measures (auglens ls "
                                       "faithfulness): deletion, insertion (RISE), road (Rong et al. 2022)", min_len=1)
    steps: int = config_field(20, "deletion/insertion: the curve's steps, each removing or revealing 1/steps of the "
                              "pixels, highest CAM value first (steps + 1 forward passes per image and curve)", min=1)
    baseline: Literal["mean", "blur"] = config_field(
        "mean", "deletion/insertion: what removed pixels become: mean (the training mean colour, 0 in the normalised "
        "input) or blur (a Gaussian blur of the image)")
    blur_sigma: float = config_field(5 / 224, "baseline = blur: the blur's standard deviation as a share of the "
                                     "input side (RISE's 5 px at 224 px)", min=0.0, exclusive_min=True)
    percentiles: list[float] = config_field([10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0],
                                            "road: shares (%) of pixels removed, each in (0, 100); the scores are "
                                            "averaged over them (ROAD's and pytorch-grad-cam's 10, 20, ..., 90)",
                                            min_len=1)
    noise: float = config_field(0.01, "road: standard deviation of the noise added to imputed pixels, in units of the "
                                "normalised input (pytorch-grad-cam's NoisyLinearImputer)", min=0.0)
    seed: int = config_field(0, "road: seed of the imputation noise (per image: the same for every model)")
    test_subset: int | None = config_field(200, "score a stratified subset of this many test images (None: all)",
                                           min=1)
    batch_size: int = config_field(64, "images per chunk (bounds memory; part of the key: CPU kernels pick their "
                                   "algorithm by batch shape)", min=1)


@dataclass
class CkaConfig:
    """What changed inside the network? Linear CKA between the baseline and each compared model, per block."""

    enabled: bool = config_field(True, "compare each model with its baseline at every layer (one job per pair)")
    estimator: Literal["linear", "unbiased"] = config_field(
        "linear", "linear: Kornblith et al.'s linear CKA (biased HSIC) over all test_subset images, exact and "
        "streamed; unbiased: minibatch CKA with the unbiased HSIC (Nguyen et al. 2021) over batches of batch_size")
    layers: list[str] = config_field([], "dotted module names whose outputs are compared ([]: the architecture's "
                                     "blocks: the children of its features module, else its top-level "
                                     "convolutional children)")
    test_subset: int | None = config_field(250, "compare on a stratified subset of this many test images (None: "
                                           "all)", min=4)
    batch_size: int = config_field(100, "images per forward pass; with estimator = unbiased also the minibatch size "
                                   "(part of the key)", min=4)


def default_metrics() -> list[MetricConfig]:
    """The thesis's six metrics, each with every parameter at its registry default."""
    from auglens.metrics import ALL_METRIC_NAMES, get_metric

    return [MetricConfig(name, plain_params(get_metric(name).resolve())) for name in ALL_METRIC_NAMES]


def plain_params(params: dict[str, Any]) -> dict[str, Any]:
    """Tuples as lists, so a resolved entry reads and writes as TOML."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}


@dataclass
class Config(ConfigBase):
    """A study of the thesis: ``auglens run``."""

    name: str = config_field("study", "study name, shown in the report")
    data: DataConfig = field(default_factory=DataConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    study: StudyConfig = field(default_factory=StudyConfig)
    augmentations: list[AugmentationConfig] = field(default_factory=list)
    controls: list[ControlConfig] = field(default_factory=list)
    cam: CamConfig = field(default_factory=CamConfig)
    metrics: list[MetricConfig] = field(default_factory=default_metrics)
    faithfulness: FaithfulnessConfig = field(default_factory=FaithfulnessConfig)
    cka: CkaConfig = field(default_factory=CkaConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    seeds_key: ClassVar[str] = "study.seeds"
    baseline_trained_by: ClassVar[str] = "every study"
    doc_title: ClassVar[str] = "Study (`auglens run`, `auglens validate`, `auglens compare`)"
    doc_intro: ClassVar[str] = ("Defaults are the thesis's values, e.g. `auglens run study.toml --out DIR "
                                "training.epochs=2 study.seeds=[1,2]`.")

    def to_dict(self) -> dict[str, Any]:
        """:meth:`ConfigBase.to_dict`, without ``controls`` when there are none: the config files (and the
        fingerprints) of studies without controls stay what they were before controls existed."""
        data = super().to_dict()
        if not data.get("controls"):
            data.pop("controls", None)
        return data

    @classmethod
    def upgrade(cls, data: dict[str, Any], errors: list[str]) -> dict[str, Any]:
        """The older ``[metrics]`` table (``names``, ``overlap_percents``, ...) as ``[[metrics]]`` tables."""
        if isinstance(data.get("metrics"), dict):
            data = legacy_metrics(data, errors)
        return data

    def validate(self) -> tuple[list[str], Config]:
        """The shared sections' checks (:meth:`ConfigBase.validate`), then the CAM method and the metrics.

        Returns ``(problems, resolved)``; in the resolved copy each ``[[metrics]]`` table holds every parameter
        of its metric, at its given or default value, in canonical form. This config is left unchanged.
        """
        from auglens.cam import CAM_METHODS
        from auglens.data import DATASETS, DATASETS_WITH_MASKS, has_masks
        from auglens.metrics import CAM_METRICS

        errors, resolved = super().validate()
        errors.extend(_pretrained_problems(self.model))
        if self.cam.method not in CAM_METHODS:
            errors.append(f"cam.method: {CAM_METHODS.unknown_message(self.cam.method)}")
        else:
            errors.extend(_cam_option_problems(self.cam.method, self.cam.params))
        errors.extend(_control_problems(self))
        if not self.metrics:
            errors.append("metrics: needs at least one [[metrics]] table (auglens ls metrics)")
        masked = []
        for path, metric in registered_entries("metrics", enumerate(resolved.metrics), CAM_METRICS, errors):
            spec = CAM_METRICS.get(metric.name)
            if spec.input == "mask":
                masked.append(metric.name)
            try:
                params = spec.resolve(metric.params)
            except ValueError as error:
                errors.append(f"{path}: {error}")
            else:  # every value recorded, so the resolved config shows all the tables depend on
                metric.params = plain_params(params)
        if masked and self.data.name in DATASETS and not has_masks(self.data.name, self.data.root):
            errors.append(f"metrics: {', '.join(masked)} score CAMs against object masks, which data set "
                          f"{self.data.name!r} does not have; use {', '.join(DATASETS_WITH_MASKS)} or an "
                          "image_folder with a masks/ tree, or remove them")
        errors.extend(_faithfulness_problems(self.faithfulness))
        return errors, resolved


def _faithfulness_problems(section: FaithfulnessConfig) -> list[str]:
    from auglens.metrics.faithfulness import FAITHFULNESS_MEASURES

    problems = [f"faithfulness.measures: {FAITHFULNESS_MEASURES.unknown_message(name)}"
                for name in section.measures if name not in FAITHFULNESS_MEASURES]
    problems += [f"faithfulness.measures: {name!r} is listed twice" for name in
                 dict.fromkeys(n for n in section.measures if section.measures.count(n) > 1)]
    problems += [f"faithfulness.percentiles: each share must lie in (0, 100), got {value!r}"
                 for value in section.percentiles if not 0 < value < 100]
    return problems


def from_dict(data: dict[str, Any], source: str | None = None) -> Config:
    """Build and validate a study :class:`Config` (resolved); raises :class:`ConfigError` listing every problem."""
    return Config.from_dict(data, source)


def load(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read a study TOML config, apply ``key=value`` overrides, validate; the resolved config; raises
    :class:`ConfigError`."""
    return Config.load(path, overrides)



def _control_problems(config: Config) -> list[str]:
    """Each ``[[controls]]`` entry names a known setting once, and lists distinct integers other than the
    study's own value of it (that value is the baseline itself, not a control)."""
    errors = []
    seen = set()
    for i, control in enumerate(config.controls):
        path = f"controls[{i}]"
        if control.name not in CONTROL_SETTINGS:
            close = difflib.get_close_matches(str(control.name), list(CONTROL_SETTINGS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            errors.append(f"{path}.name: unknown control {control.name!r}{hint}; the controls: "
                          f"{', '.join(CONTROL_SETTINGS)}")
            continue
        if control.name in seen:
            errors.append(f"{path}.name: {control.name!r} is listed twice; list all its values in one table")
        seen.add(control.name)
        extra = [key for key in control.params if key != "values"]
        errors.extend(unknown_key(f"{path}.", key, ["values"]) for key in extra)
        values = control.params.get("values")
        if not isinstance(values, list) or not values:
            errors.append(f"{path}.values: needs a non-empty list of integers, got {values!r}")
            continue
        typed: list[str] = []
        coerce(values, list[int], f"{path}.values", typed)
        errors.extend(typed)
        if typed:
            continue
        if len(set(values)) != len(values):
            errors.append(f"{path}.values: values must be distinct, got {values}")
        section, key = CONTROL_SETTINGS[control.name][:2]
        own = getattr(getattr(config, section), key)
        if own in values:
            errors.append(f"{path}.values: {own} is {section}.{key} itself, the value every model of the study "
                          "is trained with: its control would be the baseline; list other values")
    return errors


def _cam_option_problems(method: str, params: dict[str, Any]) -> list[str]:
    """``cam.params`` are options of ``method`` that build it (:func:`auglens.cam.build_method`)."""
    from auglens.cam import CAM_METHODS, build_method

    accepted = list(CAM_METHODS.parameters(method))
    unknown = [key for key in params if key not in accepted]
    if unknown:
        return [unknown_key("cam.params.", key, accepted) if accepted else f"cam.params.{key}: {method} takes no options"
                for key in unknown]
    try:
        build_method(method, **params)
    except (TypeError, ValueError) as error:
        return [f"cam.params: {error}"]
    return []


#: Suffixes of the weights files ``model.pretrained`` reads (auglens.models.weights).
PRETRAINED_SUFFIXES = (".pth", ".pt", ".safetensors")


def _pretrained_problems(model: ModelConfig) -> list[str]:
    """``model.pretrained`` names a start auglens can read: "imagenet" for a torchvision ImageNet classifier it
    registers, or a weights file by its suffix (that the file exists and fits is checked before the run,
    :func:`auglens.preflight.check_pretrained`)."""
    setting = model.pretrained
    if setting is None or setting.lower() == "none":
        return []
    if setting.lower() == "imagenet":
        from auglens.models import MODELS
        from auglens.models.pretrained import pretrained_names

        if ":" in model.architecture or model.architecture not in MODELS or model.architecture not in pretrained_names():
            shared = sorted(set(MODELS.names()) & set(pretrained_names()))
            return [f"model.pretrained: \"imagenet\" reads torchvision's ImageNet weights, which exist for "
                    f"torchvision's classifiers only, not {model.architecture!r}"
                    + (f" (auglens registers {', '.join(shared)})" if shared else "")
                    + "; give a weights file's path instead, or \"none\""]
        return []
    if Path(setting).suffix not in PRETRAINED_SUFFIXES:
        return [f"model.pretrained: {setting!r} is neither \"none\", \"imagenet\" nor a weights file "
                f"({', '.join(PRETRAINED_SUFFIXES)})"]
    return []

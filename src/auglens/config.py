"""Typed configuration: the config core every top-level config shares, and the study's config.

A config is grouped by pipeline stage; every field documents its meaning and unit. The shared sections
(data, split, model, training, ``[[augmentations]]``, runtime) are defined once here, and so are the dict
round trip, TOML loading, ``key=value`` overrides and validation, in :class:`ConfigBase`. The study's
:class:`Config` and the distortion analyses' config (:mod:`auglens.distortion.config`) extend it with their
own sections and checks.

The study's defaults are the thesis's values (Dorneles 2024, Section 5.1: EfficientNet-B0 at 224x224, Adam,
lr 1e-3, weight decay 1e-5, batch 32, 30 epochs, 3 starting states, stratified 90/10 split, Grad-CAM at
the last convolutional layer for the predicted class). Its ``[[metrics]]`` tables take the parameters each
metric declares in its registry entry (:mod:`auglens.metrics`); the older ``[metrics]`` table is still read.

Validation collects *every* problem — unknown keys, wrong types, out-of-range values, unknown registry
names, bad augmentation or metric parameters — and raises one :class:`ConfigError` listing them with their
key paths, before any work starts.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from auglens._tomllib import tomllib

if TYPE_CHECKING:
    from typing_extensions import Self


class ConfigError(ValueError):
    """One or more problems in a config; ``errors`` holds one message per problem."""

    def __init__(self, errors: list[str], source: str | None = None):
        self.errors = list(errors)
        where = f" in {source}" if source else ""
        listing = "\n".join(f"  - {e}" for e in self.errors)
        super().__init__(f"{len(self.errors)} problem(s){where}:\n{listing}")


def config_field(default: Any, help: str, **checks: Any) -> Any:
    metadata = {"help": help, **checks}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return field(default=default, metadata=metadata)


# ------------------------------------------------------------------------------------------ sections

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


@dataclass
class StudyConfig:
    seeds: list[int] = config_field([1, 2, 3], "starting states: one augmented model per augmentation and seed", min_len=1)
    baseline: Literal["shared", "per_seed"] = config_field(
        "shared", "shared: one baseline (trained with the first seed), as the thesis; per_seed: one baseline per seed, "
        "each augmented model compared with the baseline of its seed")


@dataclass
class AugmentationConfig:
    name: str = config_field("none", "augmentation registry name (auglens ls augmentations)")
    params: dict[str, Any] = config_field({}, "the augmentation's parameters (identical across starting states)")


@dataclass
class CamConfig:
    method: str = config_field("gradcam", "CAM method registry name (auglens ls cams)")
    target_layer: str | None = config_field(None, "dotted module name or 'last_conv' (None: the architecture's last conv stage)")
    target: Literal["predicted", "label"] = config_field("predicted", "class the CAM explains: the model's prediction or the true label")
    batch_size: int = config_field(128, "images per CAM chunk (bounds memory)", min=1)
    storage_dtype: Literal["float16", "float32"] = config_field(
        "float32", "dtype CAM sets are stored in, at the target layer's resolution; float16 halves the size but "
        "moves overlap rates by up to 1e-2 (docs/cam.md)")


@dataclass
class MetricConfig:
    """One ``[[metrics]]`` table: a metric and its parameters, declared with their defaults in its registry entry."""

    name: str = config_field("mad", "metric registry name (auglens ls metrics)")
    params: dict[str, Any] = config_field({}, "the metric's parameters, e.g. percents = [20, 10, 5] for overlap")


def default_metrics() -> list[MetricConfig]:
    """The thesis's six metrics, each with every parameter at its registry default."""
    from auglens.metrics import ALL_METRIC_NAMES, get_metric

    return [MetricConfig(name, _plain(get_metric(name).resolve())) for name in ALL_METRIC_NAMES]


def _plain(params: dict[str, Any]) -> dict[str, Any]:
    """Tuples as lists, so a resolved entry reads and writes as TOML."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}


@dataclass
class RuntimeConfig:
    device: str = config_field("auto", "auto (cuda when available), cpu, cuda, cuda:N")
    deterministic: bool = config_field(True, "torch deterministic algorithms (Appendix B)")
    num_threads: int | None = config_field(None, "CPU threads for torch (None: torch's default); results depend on it "
                                     "(CPU sums are thread-order dependent), and each Ray CPU task uses and "
                                     "reserves this many CPUs", min=1)
    backend: Literal["local", "ray"] = config_field("local", "where jobs run: this process, or a Ray cluster")
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


def stable_hash(obj: Any) -> str:
    """16 hex digits of sha256 over canonical JSON."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


#: How a config file says None (TOML has no null) for a key whose default is something else, e.g.
#: ``model.input_size = "none"`` for the native size. Keys whose type allows a string keep the string.
NONE = "none"


def _spells_none(value: Any, tp: Any) -> bool:
    args = typing.get_args(tp)
    return isinstance(value, str) and value.lower() == NONE and type(None) in args and str not in args


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else None


def _spell_none(section: Any, data: dict[str, Any]) -> None:
    """Write ``"none"`` into ``data`` (the section's dict with None dropped) for each None whose default is not
    None: dropping it would read back as the default."""
    for f in dataclasses.fields(section):
        value = getattr(section, f.name)
        if dataclasses.is_dataclass(value) and isinstance(data.get(f.name), dict):
            _spell_none(value, data[f.name])
        elif value is None and _field_default(f) is not None:
            data[f.name] = NONE


def drop_none(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: drop_none(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [drop_none(v) for v in obj]
    if isinstance(obj, tuple):
        return [drop_none(v) for v in obj]
    return obj


# ------------------------------------------------------------------------------------------ parsing

def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in typing.get_args(tp) if a is not type(None)]
        args = typing.get_args(tp)
        optional = "" if type(None) not in args else " (or leave it out)" if str in args else f' or "{NONE}"'
        return " or ".join(names) + optional
    if origin is list:
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    if origin is dict:
        return "table"
    if origin is tuple:
        return f"list of {len(typing.get_args(tp))} numbers"
    if tp is float:
        return "a number"
    return getattr(tp, "__name__", str(tp))


def coerce(value: Any, tp: Any, path: str, errors: list[str]) -> Any:
    """Check ``value`` against type ``tp`` (int->float widening, list->tuple); append an error on mismatch."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if (value is None and type(None) in args) or _spells_none(value, tp):
            return None
        for arg in args:
            if arg is type(None):
                continue
            trial: list[str] = []
            result = coerce(value, arg, path, trial)
            if not trial:
                return result
        errors.append(f"{path}: expected {_type_name(tp)}, got {value!r}")
        return value
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            errors.append(f"{path}: expected one of {', '.join(map(repr, choices))}, got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list):
            errors.append(f"{path}: expected {_type_name(tp)}, got {value!r}")
            return value
        (item_type,) = typing.get_args(tp)
        return [coerce(v, item_type, f"{path}[{i}]", errors) for i, v in enumerate(value)]
    if origin is tuple:
        item_types = typing.get_args(tp)
        if not isinstance(value, (list, tuple)) or len(value) != len(item_types):
            errors.append(f"{path}: expected {_type_name(tp)}, got {value!r}")
            return value
        return tuple(coerce(v, t, f"{path}[{i}]", errors) for i, (v, t) in enumerate(zip(value, item_types)))
    if origin is dict:
        if not isinstance(value, dict):
            errors.append(f"{path}: expected a table, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            errors.append(f"{path}: expected a number, got {value!r}")
            return value
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append(f"{path}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            errors.append(f"{path}: expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            errors.append(f"{path}: expected a string, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            errors.append(f"{path}: expected a table, got {value!r}")
            return tp()
        return build_section(tp, value, path, errors)
    raise TypeError(f"unsupported config type {tp} at {path}")


def _check_range(value: Any, meta: dict, path: str, errors: list[str]) -> None:
    if value is None:
        return
    if "min_len" in meta and isinstance(value, list) and len(value) < meta["min_len"]:
        errors.append(f"{path}: needs at least {meta['min_len']} item(s), got {len(value)}")
    numbers = value if isinstance(value, list) else [value]
    for number in numbers:
        if not isinstance(number, (int, float)) or isinstance(number, bool):
            continue
        if "min" in meta and (number < meta["min"] or (meta.get("exclusive_min") and number == meta["min"])):
            bound = ">" if meta.get("exclusive_min") else ">="
            errors.append(f"{path}: must be {bound} {meta['min']}, got {number}")
        if "max" in meta and number > meta["max"]:
            errors.append(f"{path}: must be <= {meta['max']}, got {number}")


def _unknown_key(path: str, key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{path}{key}: unknown key{hint}; valid keys: {', '.join(valid)}"


def build_section(cls: type, data: dict[str, Any], path: str, errors: list[str]) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    prefix = f"{path}." if path else ""
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            errors.append(_unknown_key(prefix, key, list(fields)))
            continue
        sub = f"{prefix}{key}"
        before = len(errors)
        value = coerce(value, hints[key], sub, errors)
        if len(errors) > before:
            continue  # keep the default so later checks see well-typed values; the error is recorded
        _check_range(value, dict(fields[key].metadata), sub, errors)
        kwargs[key] = value
    return cls(**kwargs)


# ------------------------------------------------------------------------------------------ top-level configs

class ConfigBase:
    """What every top-level config shares: the TOML-shaped dict round trip, loading, overrides, validation.

    A top-level config is a dataclass subclassing this one and listing its sections. The shared sections
    (``data``, ``split``, ``model``, ``training``, ``[[augmentations]]``, ``runtime``) are the classes above,
    defined once; a config that needs other defaults subclasses a section and changes only its defaults (as
    the distortion config does). A subclass adds its own checks by extending :meth:`validate`.
    """

    #: Dotted key of the config's list of seeds (one model per augmentation and seed); they must be distinct.
    seeds_key: ClassVar[str]
    #: What the baseline is trained for, in the "list only augmentations" error.
    baseline_trained_by: ClassVar[str]
    #: Heading of this config's table in docs/configuration.md, and a line about its defaults.
    doc_title: ClassVar[str]
    doc_intro: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict in the TOML layout: ``from_dict(c.to_dict())`` == c.

        None values are dropped, but for a key whose default is not None, written as ``"none"``.
        """
        data = drop_none(dataclasses.asdict(self))
        _spell_none(self, data)
        for key in entry_lists(type(self)):
            data[key] = [{"name": entry["name"], **entry["params"]} for entry in data[key]]
        return data

    def fingerprint(self, *sections: str) -> str:
        """Stable hash of the named sections (all when none), for content-keyed artifacts."""
        data = self.to_dict()
        picked = {s: data.get(s) for s in sections} if sections else data
        return stable_hash(picked)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str | None = None) -> Self:
        """Build and validate; raises :class:`ConfigError` listing every problem.

        An absent array of ``[[tables]]`` (``augmentations``, ``metrics``) keeps the config's default list.
        """
        errors: list[str] = []
        data = cls.upgrade(dict(data), errors)
        # Arrays of [[tables]]: a registry name plus that entry's own parameters.
        entries = {key: parse_entries(key, data.pop(key), entry_type, errors)
                   for key, entry_type in entry_lists(cls).items() if key in data}
        config = build_section(cls, data, "", errors)
        for key, value in entries.items():
            setattr(config, key, value)
        errors.extend(config.validate())
        if errors:
            raise ConfigError(errors, source)
        return config

    @classmethod
    def upgrade(cls, data: dict[str, Any], errors: list[str]) -> dict[str, Any]:
        """Older layouts a config still reads, rewritten to the current one (none here)."""
        return data

    @classmethod
    def load(cls, path: str | Path, overrides: list[str] | None = None) -> Self:
        """Read a TOML file, apply ``key=value`` overrides, validate; raises :class:`ConfigError`."""
        return cls.from_dict(read_toml(path, overrides), str(path))

    def checked(self) -> Self:
        """This config, validated (for configs built in code); raises :class:`ConfigError`."""
        errors = self.validate()
        if errors:
            raise ConfigError(errors)
        return self

    def validate(self) -> list[str]:
        """Checks beyond types of the shared sections: registry names, augmentation parameters, cross-field rules."""
        from auglens.augment import AUGMENTATIONS, BASELINE
        from auglens.data import DATASETS

        errors = []
        if self.data.name not in DATASETS:
            errors.append(f"data.name: {DATASETS.unknown_message(self.data.name)}")
        if self.data.name == "image_folder" and not self.data.root:
            errors.append("data.root: image_folder needs data.root (a folder with train/ and test/ class folders)")
        errors.extend(self.validate_model())
        section, key = self.seeds_key.split(".")
        seeds = getattr(getattr(self, section), key)
        if len(set(seeds)) != len(seeds):
            errors.append(f"{self.seeds_key}: seeds must be distinct, got {seeds}")

        augmentations = []
        for i, aug in enumerate(self.augmentations):
            if aug.name == BASELINE:
                errors.append(f"augmentations[{i}]: {BASELINE!r} is the baseline, which {self.baseline_trained_by} "
                              "trains; list only augmentations")
            else:
                augmentations.append((i, aug))
        for path, aug in registered_entries("augmentations", augmentations, AUGMENTATIONS, errors):
            errors.extend(check_augmentation_params(path, aug))
        return errors

    def validate_model(self) -> list[str]:
        """``model.architecture`` is registered (or ``package.module:factory``) and takes ``model.params``."""
        from auglens.models import MODELS

        model = self.model
        if ":" in model.architecture:
            return []
        if model.architecture not in MODELS:
            return [f"model.architecture: {MODELS.unknown_message(model.architecture)}"]
        accepted = set(MODELS.parameters(model.architecture)) - {"num_classes", "in_channels"}
        return [_unknown_key("model.params.", key, sorted(accepted)) if accepted
                else f"model.params.{key}: {model.architecture} takes no extra parameters"
                for key in model.params if key not in accepted]


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
    cam: CamConfig = field(default_factory=CamConfig)
    metrics: list[MetricConfig] = field(default_factory=default_metrics)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    seeds_key: ClassVar[str] = "study.seeds"
    baseline_trained_by: ClassVar[str] = "every study"
    doc_title: ClassVar[str] = "Study (`auglens run`, `auglens validate`, `auglens compare`)"
    doc_intro: ClassVar[str] = ("Defaults are the thesis's values, e.g. `auglens run study.toml --out DIR "
                                "training.epochs=2 study.seeds=[1,2]`.")

    @classmethod
    def upgrade(cls, data: dict[str, Any], errors: list[str]) -> dict[str, Any]:
        """The older ``[metrics]`` table (``names``, ``overlap_percents``, ...) as ``[[metrics]]`` tables."""
        if isinstance(data.get("metrics"), dict):
            data = legacy_metrics(data, errors)
        return data

    def validate(self) -> list[str]:
        from auglens.cam import CAM_METHODS
        from auglens.data import DATASETS, DATASETS_WITH_MASKS, has_masks
        from auglens.metrics import CAM_METRICS

        errors = super().validate()
        if self.cam.method not in CAM_METHODS:
            errors.append(f"cam.method: {CAM_METHODS.unknown_message(self.cam.method)}")
        if not self.metrics:
            errors.append("metrics: needs at least one [[metrics]] table (auglens ls metrics)")
        masked = []
        for path, metric in registered_entries("metrics", enumerate(self.metrics), CAM_METRICS, errors):
            spec = CAM_METRICS.get(metric.name)
            if spec.input == "mask":
                masked.append(metric.name)
            try:
                resolved = spec.resolve(metric.params)
            except ValueError as error:
                errors.append(f"{path}: {error}")
            else:  # every value recorded, so the resolved config shows all the tables depend on
                metric.params = _plain(resolved)
        if masked and self.data.name in DATASETS and not has_masks(self.data.name, self.data.root):
            errors.append(f"metrics: {', '.join(masked)} score CAMs against object masks, which data set "
                          f"{self.data.name!r} does not have; use {', '.join(DATASETS_WITH_MASKS)} or an "
                          "image_folder with a masks/ tree, or remove them")
        return errors


def registered_entries(key: str, entries: Iterable[tuple[int, Any]], registry: Any,
                       errors: list[str]) -> Iterator[tuple[str, Any]]:
    """The ``(path, entry)`` of each ``(index, entry)`` of the array of ``[[tables]]`` ``key`` whose name is in
    ``registry``; an unknown name, or a name listed twice, is reported to ``errors`` (the repeat still yields)."""
    seen = set()
    for i, entry in entries:
        path = f"{key}[{i}]"
        if entry.name not in registry:
            errors.append(f"{path}.name: {registry.unknown_message(entry.name)}")
            continue
        if entry.name in seen:
            errors.append(f"{path}.name: {entry.name!r} is listed twice")
        seen.add(entry.name)
        yield path, entry


#: Keys of the older ``[metrics]`` table besides the metric parameters' ``legacy_key``: the metric names, and
#: the chunk size, now ``runtime.metric_batch_size``.
_LEGACY_METRICS_KEYS = ("names", "batch_size")


def legacy_metrics(data: dict[str, Any], errors: list[str]) -> dict[str, Any]:
    """``[metrics] names = [...] overlap_percents = [...] kld_epsilon = ... batch_size = ...`` as ``[[metrics]]``.

    Each metric parameter's ``legacy_key`` (declared in its registry entry) names its key in this form, where one
    key may feed several metrics (``overlap_percents``: overlap and mask_iou). A sub-table named after a metric
    (``metrics.overlap.percents=[10]`` given as an override) sets that metric's parameters.
    """
    from auglens.metrics import ALL_METRIC_NAMES, CAM_METRICS

    data = copy.deepcopy(data)
    old = data.pop("metrics")
    legacy: dict[str, list[tuple[str, str]]] = {}
    for name in CAM_METRICS.names():
        for param in CAM_METRICS.get(name).params:
            if param.legacy_key:
                legacy.setdefault(param.legacy_key, []).append((name, param.name))
    named = {key: value for key, value in old.items() if key in CAM_METRICS and isinstance(value, dict)}
    for key in old:
        if key not in legacy and key not in _LEGACY_METRICS_KEYS and key not in named:
            errors.append(_unknown_key("metrics.", key, [*_LEGACY_METRICS_KEYS, *legacy]))
    names = old.get("names", list(ALL_METRIC_NAMES))
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        errors.append(f"metrics.names: expected a list of metric names, got {names!r}")
        names = []
    entries = [{"name": name} for name in names]
    for entry in entries:
        for key, targets in legacy.items():
            for name, param in targets:
                if key in old and name == entry["name"]:
                    entry[param] = copy.deepcopy(old[key])
        entry.update(named.get(entry["name"], {}))
    for name in named:
        if name not in names:
            errors.append(f"metrics.{name}: {name!r} is not among metrics.names {names}")
    data["metrics"] = entries
    if "batch_size" in old:
        runtime = data.setdefault("runtime", {})
        if isinstance(runtime, dict):
            runtime.setdefault("metric_batch_size", old["batch_size"])
    return data


#: Types of the arrays of ``[[tables]]`` a config may hold: a registry name plus that entry's parameters.
ENTRY_TYPES = (AugmentationConfig, MetricConfig)


def entry_lists(cls: type) -> dict[str, type]:
    """``{field: entry type}`` of the fields of ``cls`` that are arrays of ``[[tables]]``."""
    hints = typing.get_type_hints(cls)
    return {f.name: typing.get_args(hints[f.name])[0] for f in dataclasses.fields(cls)
            if typing.get_origin(hints[f.name]) is list and typing.get_args(hints[f.name])[0] in ENTRY_TYPES}


def parse_entries(key: str, entries: Any, entry_type: type, errors: list[str]) -> list[Any]:
    """``[[key]]`` tables (or bare names) as ``entry_type(name, params)``."""
    if not isinstance(entries, list):
        errors.append(f"{key}: expected an array of tables ([[{key}]]), got {entries!r}")
        return []
    out = []
    for i, entry in enumerate(entries):
        path = f"{key}[{i}]"
        if isinstance(entry, str):
            entry = {"name": entry}
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            errors.append(f"{path}: expected a table with a string 'name', got {entry!r}")
            continue
        params = {k: v for k, v in entry.items() if k != "name"}
        out.append(entry_type(name=entry["name"], params=params))
    return out


def from_dict(data: dict[str, Any], source: str | None = None) -> Config:
    """Build and validate a study :class:`Config`; raises :class:`ConfigError` listing every problem."""
    return Config.from_dict(data, source)


def check_augmentation_params(path: str, aug: AugmentationConfig) -> list[str]:
    from auglens.augment import AUGMENTATIONS

    errors: list[str] = []
    accepted = AUGMENTATIONS.parameters(aug.name)
    factory = AUGMENTATIONS.get(aug.name)
    hints = typing.get_type_hints(factory.__init__ if isinstance(factory, type) else factory)
    coerced = {}
    for key, value in aug.params.items():
        if key not in accepted:
            errors.append(_unknown_key(f"{path}.", key, list(accepted)) if accepted
                          else f"{path}.{key}: {aug.name} takes no parameters")
            continue
        coerced[key] = coerce(value, hints.get(key, Any), f"{path}.{key}", errors)
    if not errors:
        try:
            AUGMENTATIONS.build(aug.name, **coerced)
        except ValueError as error:
            errors.append(f"{path}: {error}")
        else:
            aug.params = coerced
    return errors


def read_toml(path: str | Path, overrides: list[str] | None = None) -> dict[str, Any]:
    """A TOML file as a dict with ``key=value`` overrides applied; raises :class:`ConfigError`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError([f"config file {path} does not exist"])
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ConfigError([f"not valid TOML: {error}"], str(path)) from error
    return apply_overrides(data, overrides or [])


def load(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read a study TOML config, apply ``key=value`` overrides, validate; raises :class:`ConfigError`."""
    return Config.load(path, overrides)


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``training.epochs=2`` style overrides; values parse as TOML (``[1,2]``, ``true``), else as strings.

    An entry of an array of ``[[tables]]`` is named by its ``name``: ``metrics.overlap.percents=[10]``,
    ``augmentations.affine.degrees=5``.
    """
    data = copy.deepcopy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError([f"override {item!r}: expected key=value, e.g. training.epochs=2"])
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        node = data
        parts = key.strip().split(".")
        for depth, part in enumerate(parts[:-1]):
            if isinstance(node, list):  # an array of [[tables]]: the entry with this name
                named = [entry for entry in node if isinstance(entry, dict) and entry.get("name") == part]
                if not named:
                    listed = [entry.get("name") for entry in node if isinstance(entry, dict)]
                    raise ConfigError([f"override {item!r}: {'.'.join(parts[:depth])} has no entry named "
                                       f"{part!r}; its entries: {', '.join(map(str, listed)) or 'none'}"])
                node = named[0]
                continue
            node = node.setdefault(part, {})
            if not isinstance(node, (dict, list)):
                raise ConfigError([f"override {item!r}: {part} is not a table"])
        if isinstance(node, list):
            raise ConfigError([f"override {item!r}: {'.'.join(parts[:-1])} is an array of tables; name an entry "
                               f"and its parameter, e.g. {'.'.join(parts[:-1])}.<name>.<parameter>=..."])
        node[parts[-1]] = value
    return data


def dump_toml(config: ConfigBase) -> str:
    """The resolved config as TOML (the parameters of each ``[[table]]`` entry flattened back into it)."""
    import tomli_w

    return tomli_w.dumps(config.to_dict())


def describe_fields(cls: type = Config, prefix: str = "") -> list[tuple[str, str, Any]]:
    """(key, help, default) for every field, for docs and ``auglens validate``.

    An array of ``[[tables]]`` gets one row, and for ``[[metrics]]`` one row per metric parameter (declared in
    the metric registry, as ``metrics.<name>.<parameter>``) and one per key of the older ``[metrics]`` table.
    """
    rows = []
    hints = typing.get_type_hints(cls)
    entries = entry_lists(cls) if not prefix else {}
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(hints[f.name]):
            rows.extend(describe_fields(hints[f.name], f"{key}."))
            continue
        if entries.get(f.name) is AugmentationConfig:
            rows.append(("[[augmentations]]", "one table per augmentation: name = registry name, then its "
                         "parameters (auglens ls augmentations)",
                         [{"name": a.name, **a.params} for a in f.default_factory()]))
            continue
        if entries.get(f.name) is MetricConfig:
            rows.extend(_metric_rows(f.default_factory()))
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        rows.append((key, f.metadata.get("help", ""), default))
    return rows


def _metric_rows(default: list[MetricConfig]) -> list[tuple[str, str, Any]]:
    from auglens.metrics import CAM_METRICS

    rows = [("[[metrics]]", "one table per metric between each augmented model and the baseline: name = registry "
             "name, then its parameters (auglens ls metrics)", [m.name for m in default])]
    legacy: dict[str, list[str]] = {}
    for name in CAM_METRICS.names():
        for param in CAM_METRICS.get(name).params:
            rows.append((f"metrics.{name}.{param.name}", param.help, _plain({"v": param.default})["v"]))
            if param.legacy_key:
                legacy.setdefault(param.legacy_key, []).append(f"`metrics.{name}.{param.name}`")
    older = "older `[metrics]` table form, still read:"
    rows.append(("metrics.names", f"{older} the metric names, one [[metrics]] table each", [m.name for m in default]))
    for key, targets in legacy.items():
        param = next(p for n in CAM_METRICS.names() for p in CAM_METRICS.get(n).params if p.legacy_key == key)
        rows.append((f"metrics.{key}", f"{older} {' and '.join(targets)}", _plain({"v": param.default})["v"]))
    rows.append(("metrics.batch_size", f"{older} `runtime.metric_batch_size`", RuntimeConfig.metric_batch_size))
    return rows

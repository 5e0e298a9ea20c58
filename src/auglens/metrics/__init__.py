"""Metrics: CAM / prediction similarity against the baseline (``CAM_METRICS``) and classification performance.

The maths lives once, in ``auglens.metrics.functional`` (pure batched functions) and
``auglens.metrics.performance``. This module adds what configs and reports need on top:

* ``CAM_METRICS``: registry of ``MetricSpec`` (name -> function + metadata). Config names are
  ``mad``, ``msd``, ``pearson``, ``spearman``, ``overlap``, ``class_kld``, and for data sets with object
  masks ``mask_energy`` and ``mask_iou`` (ground-truth localisation, ``auglens.metrics.localisation``).
* ``MetricParam``: a metric's parameters are declared in its spec (config key, the one default, the function
  argument it feeds, whether each value gives a column, its key in the older ``[metrics]`` table), so configs,
  validation, job keys and column names read them from the registry:
  ``[[metrics]] name = "overlap" percents = [20, 10, 5]``.
* ``metric_columns``: the table columns a list of metrics produces (``overlap`` -> ``overlap_20`` ...;
  a mask metric gives the augmented model's value and ``<column>_change``, its difference from the
  baseline's on the same image).
* ``compute_pair_metrics``: all requested columns for a batch of (baseline, augmented) pairs;
  ``compute_baseline_metrics``: the same for one baseline batch against several models (each map sorted once).
* ``column_higher_is_better`` / ``spec_for_column``: metadata lookup by column name, so report code
  (sorting, colour maps, "best" markers) needs no per-metric special cases.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from auglens.metrics import functional, stage
from auglens.metrics.functional import (
    DEFAULT_KLD_EPS,
    class_kld,
    mad,
    msd,
    overlap_rate,
    pearson,
    spearman,
    top_count,
)
from auglens.metrics.localisation import energy_pointing_game, top_region_iou
from auglens.metrics.performance import classification_report, confusion_matrix
from auglens.registry import Registry, UnknownNameError

__all__ = [
    "ALL_METRIC_NAMES",
    "CAM_METRICS",
    "CHANGE_SUFFIX",
    "DEFAULT_KLD_EPS",
    "MetricParam",
    "MetricSpec",
    "class_kld",
    "classification_report",
    "column_higher_is_better",
    "compute_baseline_metrics",
    "compute_pair_metrics",
    "confusion_matrix",
    "functional",
    "get_metric",
    "MASK_METRIC_NAMES",
    "mad",
    "metric_columns",
    "msd",
    "MetricList",
    "resolve_metrics",
    "overlap_rate",
    "pearson",
    "spearman",
    "spec_for_column",
]

#: What a metric reads: "cam" and "probs" compare the baseline's with the augmented model's maps or class
#: probabilities; "mask" scores one model's maps against the object masks.
_INPUTS = ("cam", "probs", "mask")
#: Column suffix of a mask metric's difference augmented - baseline.
CHANGE_SUFFIX = "_change"
_CHANGE = "__change__"  # plan marker: this column is the difference


@dataclass(frozen=True)
class MetricParam:
    """One parameter of a metric, declared in its spec: the one place its name and default live."""

    name: str  # key in the metric's [[metrics]] table, e.g. "percents"
    default: Any  # the one default: configs, calls through the registry and the docs read it
    argument: str  # keyword argument of the metric's function it feeds, e.g. "top_percent"
    help: str
    check: Callable[[Any], Any]  # a value (each value, if per_column) -> its canonical form; ValueError if bad
    per_column: bool = False  # a list of values, one result column <metric>_<value> each
    legacy_key: str | None = None  # its key in the older [metrics] table form, e.g. "overlap_percents"

    def canonical(self, value: Any) -> Any:
        """``value`` checked and in canonical form (a tuple for a ``per_column`` parameter); raises ``ValueError``."""
        if not self.per_column:
            return self.check(value)
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
            raise ValueError(f"expected a non-empty list, got {value!r}")
        return tuple(self.check(item) for item in value)


@dataclass(frozen=True)
class MetricSpec:
    """One similarity metric: its function and the metadata configs and reports rely on.

    A spec is callable (it forwards to ``fn``) and carries ``fn``'s signature and ``description`` as its
    own, so the generic ``Registry`` helpers work on it: ``CAM_METRICS.build("mad", p=a, q=b)`` computes,
    ``CAM_METRICS.parameters("overlap")`` lists ``top_percent``, ``CAM_METRICS.describe(...)`` gives the
    description for ``auglens ls``.
    """

    name: str  # registry name used in configs
    fn: Callable[..., Tensor]  # batched functional implementation: (baseline, augmented, ...) -> (N,)
    input: str  # "cam": compares maps (N, H, W); "probs": class-probability vectors (N, C); "mask": maps vs masks
    higher_is_better: bool  # True when a higher value is the better side of ``higher_means``
    description: str
    higher_means: str = "closer to baseline"  # what the better direction means, for report labels
    params: tuple[MetricParam, ...] = ()  # the parameters a [[metrics]] table may set; at most one per_column

    def __post_init__(self) -> None:
        if self.input not in _INPUTS:
            raise ValueError(f"MetricSpec.input must be one of {_INPUTS}, got {self.input!r}")
        if sum(p.per_column for p in self.params) > 1:
            raise ValueError(f"metric {self.name!r}: at most one parameter can give one column per value")
        # Instance attributes (the dataclass is frozen, hence object.__setattr__) read by inspect.getdoc /
        # inspect.signature, which Registry.describe / Registry.parameters use.
        object.__setattr__(self, "__doc__", self.description)
        object.__setattr__(self, "__signature__", inspect.signature(self.fn))

    def __call__(self, *args: Any, **kwargs: Any) -> Tensor:
        return self.fn(*args, **kwargs)

    def defaults(self) -> dict[str, Any]:
        """``{parameter: default}`` of every declared parameter."""
        return {p.name: p.default for p in self.params}

    def resolve(self, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Every parameter's value, canonical: ``given`` over the defaults.

        Raises:
            ValueError: an undeclared parameter (the message names the metric and its parameters) or a bad value.
        """
        given = dict(given or {})
        declared = {p.name: p for p in self.params}
        unknown = sorted(set(given) - set(declared))
        if unknown:
            valid = ", ".join(declared) if declared else "none"
            raise ValueError(f"metric {self.name!r} has no parameter {unknown[0]!r}; its parameters: {valid}")
        values = {}
        for name, value in {**self.defaults(), **given}.items():
            try:
                values[name] = declared[name].canonical(value)
            except (TypeError, ValueError) as error:
                raise ValueError(f"metric {self.name!r}, {name}: {error}") from None
        return values

    def columns(self, given: Mapping[str, Any] | None = None) -> list[tuple[str, dict[str, Any]]]:
        """``(column, keyword arguments of fn)`` per result column, in order (``overlap`` -> ``overlap_20``, ...)."""
        values = self.resolve(given)
        fixed = {p.argument: values[p.name] for p in self.params if not p.per_column}
        split = [p for p in self.params if p.per_column]
        if not split:
            return [(self.name, fixed)]
        (param,) = split
        return [(f"{self.name}_{_format_value(v)}", {**fixed, param.argument: v}) for v in values[param.name]]


CAM_METRICS: Registry[Tensor] = Registry("metric")

#: Registered functions the metric stage computes from shared summaries (``auglens.metrics.stage``).
_STAGE_QUANTITIES: dict[Callable[..., Tensor], str] = {mad: "mad", msd: "msd", pearson: "pearson",
                                                       spearman: "spearman"}


def _register(spec: MetricSpec) -> None:
    CAM_METRICS.register(spec.name)(spec)


def _top_percent(y: Any) -> float:
    if isinstance(y, bool) or not isinstance(y, (int, float)):
        raise ValueError(f"each must be a number in (0, 100], got {y!r}")
    top_count(y, 1)  # raises unless 0 < y <= 100
    return float(y)


def _epsilon(eps: Any) -> float:
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not (math.isfinite(eps) and eps >= 0):
        raise ValueError(f"must be a finite number >= 0, got {eps!r}")
    return float(eps)


#: The top-Y% thresholds of overlap and mask_iou; the thesis reports the Overlap Rate at 20 %, 10 % and 5 %.
_TOP_PERCENTS = MetricParam("percents", (20.0, 10.0, 5.0), "top_percent",
                            "top-Y% thresholds, one column <metric>_<Y> each (the thesis: 20, 10 and 5)",
                            _top_percent, per_column=True, legacy_key="overlap_percents")


_register(
    MetricSpec("mad", mad, "cam", False, "Mean Absolute Difference between the baseline and augmented CAMs.")
)
_register(
    MetricSpec("msd", msd, "cam", False, "Mean Squared Difference between the baseline and augmented CAMs.")
)
_register(
    MetricSpec(
        "pearson", pearson, "cam", True, "Pearson correlation of the flattened CAMs (NaN if one is constant)."
    )
)
_register(
    MetricSpec(
        "spearman",
        spearman,
        "cam",
        True,
        "Spearman rank correlation of the CAMs, average ranks for ties (NaN if one is constant).",
    )
)
_register(
    MetricSpec(
        "overlap",
        overlap_rate,
        "cam",
        True,
        "Overlap Rate: IoU of the top-Y% pixel regions of the CAMs, ties included; one column per Y (overlap_<Y>).",
        params=(_TOP_PERCENTS,),
    )
)
_register(
    MetricSpec(
        "class_kld",
        class_kld,
        "probs",
        False,
        "Class-KLD: sum_i Q_i log(eps + Q_i / P_i) between baseline (P) and augmented (Q) class probabilities.",
        params=(MetricParam("epsilon", DEFAULT_KLD_EPS, "eps", "epsilon inside Class-KLD's log(eps + q/p)", _epsilon,
                            legacy_key="kld_epsilon"),),
    )
)

_register(
    MetricSpec(
        "mask_energy",
        energy_pointing_game,
        "mask",
        True,
        "Energy-based pointing game: share of the CAM's energy inside the object mask (data sets with masks); "
        "mask_energy_change = the augmented model's minus the baseline's.",
        "more on the object",
    )
)
_register(
    MetricSpec(
        "mask_iou",
        top_region_iou,
        "mask",
        True,
        "IoU of the CAM's top-Y% region with the object mask (data sets with masks); one column per Y "
        "(mask_iou_<Y>), and mask_iou_<Y>_change = the augmented model's minus the baseline's.",
        "more on the object",
        params=(_TOP_PERCENTS,),
    )
)

#: Metrics that score CAMs against object masks; they need a data set with masks.
MASK_METRIC_NAMES: tuple[str, ...] = ("mask_energy", "mask_iou")

#: The thesis's metrics, in its order (a convenient default for configs; the mask metrics need masks).
ALL_METRIC_NAMES: tuple[str, ...] = ("mad", "msd", "pearson", "spearman", "overlap", "class_kld")


def get_metric(name: str) -> MetricSpec:
    """The spec registered under ``name``; unknown names raise ``UnknownNameError`` listing the valid ones."""
    return CAM_METRICS.get(name)  # type: ignore[return-value]


def _format_value(value: float) -> str:
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)


def _request(item: Any) -> tuple[str, Mapping[str, Any]]:
    if isinstance(item, str):
        return item, {}
    if (isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str)
            and isinstance(item[1], (Mapping, tuple, list))):
        params = item[1]
        # A frozen job entry: ((parameter, value), ...).
        return item[0], dict(params) if isinstance(params, (tuple, list)) else params
    name, params = getattr(item, "name", None), getattr(item, "params", None)
    if isinstance(name, str) and isinstance(params, Mapping):  # a config's [[metrics]] entry
        return name, params
    raise TypeError(f"a metric is a name or (name, {{parameter: value}}), got {item!r}")


def _plan(metrics: Sequence[Any]) -> list[tuple[str, MetricSpec, dict[str, Any]]]:
    """(column, spec, kwargs of fn) per output column, in order. Single source for columns and computation."""
    if isinstance(metrics, str):
        raise TypeError(f"metrics must be a list of metric names, got the string {metrics!r}")
    requests = [_request(item) for item in metrics]
    specs = [get_metric(name) for name, _ in requests]  # validate every name before any work
    plan = [(column, spec, kwargs) for spec, (_, given) in zip(specs, requests)
            for column, kwargs in spec.columns(given)]
    # Each mask column is followed by its change: the augmented model's value minus the baseline's.
    plan = [entry for column, spec, kwargs in plan
            for entry in ([(column, spec, kwargs), (column + CHANGE_SUFFIX, spec, {**kwargs, _CHANGE: True})]
                          if spec.input == "mask" else [(column, spec, kwargs)])]
    columns = [column for column, _, _ in plan]
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    if duplicates:
        raise ValueError(f"duplicate metric columns {duplicates} (from {list(metrics)!r})")
    return plan


#: Metrics with every parameter resolved, hashable and in column order: ``((name, ((parameter, value), ...)), ...)``.
MetricList = tuple[tuple[str, tuple[tuple[str, Any], ...]], ...]


def resolve_metrics(metrics: Sequence[Any]) -> MetricList:
    """``metrics`` (as ``metric_columns`` takes them) with every parameter at its given or default value, in
    canonical form: a job's key over it names every value its columns depend on, whichever form set them.

    Raises:
        UnknownNameError, ValueError: as ``metric_columns``.
    """
    _plan(metrics)  # unknown names, bad parameters, duplicate columns
    requests = [_request(item) for item in metrics]
    return tuple((name, tuple(sorted(get_metric(name).resolve(given).items()))) for name, given in requests)


def metric_columns(metrics: Sequence[Any]) -> list[str]:
    """Column names, in order, that ``compute_pair_metrics(metrics, ...)`` returns.

    Each item is a metric name (its parameters at their registry defaults), ``(name, {parameter: value})`` or
    a config's ``[[metrics]]`` entry. A parameter declared ``per_column`` gives one column per value,
    ``<name>_<value>`` with integral values written without ``.0``:
    ``metric_columns(["mad", ("overlap", {"percents": [20, 12.5]})])`` -> ``["mad", "overlap_20", "overlap_12.5"]``.

    Raises:
        UnknownNameError: a name is not registered (the message lists the valid names).
        ValueError: an unknown or invalid parameter, or duplicate columns.
    """
    return [column for column, _, _ in _plan(metrics)]


def _batch_size(a: Any, b: Any, what: str) -> int:
    if a is None or b is None:
        raise ValueError(f"the requested metrics need both base_{what} and other_{what}")
    return int(a.shape[0])


def compute_pair_metrics(
    metrics: Sequence[Any],
    base_maps: Tensor | None = None,
    other_maps: Tensor | None = None,
    base_probs: Tensor | None = None,
    other_probs: Tensor | None = None,
    masks: Tensor | None = None,
) -> dict[str, Tensor]:
    """Every requested metric for ``N`` (baseline, augmented) pairs, keyed by column name.

    Args:
        metrics: registry names, e.g. ``["mad", "msd", "pearson", "spearman", "overlap", "class_kld"]``, each
            optionally with its parameters, ``(name, {parameter: value})``, e.g.
            ``("overlap", {"percents": [20, 10, 5]})``; parameters left out take their registry defaults.
        base_maps: baseline CAMs ``(N, H, W)`` (or ``(N, ...)``); needed by "cam" metrics.
        other_maps: augmented-model CAMs, same shape.
        base_probs: baseline class probabilities ``(N, C)``; needed by "probs" metrics.
        other_probs: augmented-model class probabilities ``(N, C)``.
        masks: object masks ``(N, H, W)`` bool, the maps' shape; needed by "mask" metrics.

    Returns:
        ``{column: (N,) float64 tensor}`` in ``metric_columns(metrics)`` order, on the inputs' device.
    """
    return compute_baseline_metrics(metrics, base_maps, [other_maps], base_probs, [other_probs], masks)[0]


def compute_baseline_metrics(
    metrics: Sequence[Any],
    base_maps: Tensor | None,
    other_maps: Sequence[Tensor | None],
    base_probs: Tensor | None = None,
    other_probs: Sequence[Tensor | None] | None = None,
    masks: Tensor | None = None,
) -> list[dict[str, Tensor]]:
    """``compute_pair_metrics`` of one baseline batch against several models' batches of the same images.

    The study's metric stage: each baseline map is sorted and summarised once and reused for every model
    (see :mod:`auglens.metrics.stage`); the values are those of ``compute_pair_metrics`` on each pair.

    Args:
        metrics, base_maps, base_probs, masks: as in ``compute_pair_metrics``.
        other_maps: one ``(N, ...)`` batch per model (``None`` entries when only "probs" metrics are asked).
        other_probs: one ``(N, C)`` batch per model, or ``None`` when no "probs" metric is asked.

    Returns:
        One ``{column: (N,) float64}`` dict per model, in ``other_maps`` order.
    """
    plan = _plan(metrics)
    inputs = {spec.input for _, spec, _ in plan}
    other_probs = list(other_probs) if other_probs is not None else [None] * len(other_maps)
    if len(other_probs) != len(other_maps):
        raise ValueError(f"got {len(other_maps)} map batches but {len(other_probs)} probability batches")
    if "mask" in inputs and masks is None:
        raise ValueError("the mask metrics (mask_energy, mask_iou) need object masks; this data set has none")
    for maps, probs in zip(other_maps, other_probs):
        sizes = {}
        if "cam" in inputs or "mask" in inputs:
            sizes["maps"] = _batch_size(base_maps, maps, "maps")
        if "mask" in inputs:
            sizes["masks"] = int(masks.shape[0])
        if "probs" in inputs:
            sizes["probs"] = _batch_size(base_probs, probs, "probs")
        if len(set(sizes.values())) > 1:
            raise ValueError(f"maps, probs and masks describe different numbers of images: {sizes}")
    # The registered implementations of these columns are served by the stage's shared summaries.
    fast: dict[str, str | int] = {}
    if "cam" in inputs:
        base_maps = torch.as_tensor(base_maps)
        other_maps = [torch.as_tensor(maps) for maps in other_maps]
        pixels = math.prod(base_maps.shape[1:])
        for column, spec, kwargs in plan:
            if spec.fn is overlap_rate:
                fast[column] = top_count(kwargs["top_percent"], pixels)
            elif spec.fn in _STAGE_QUANTITIES:
                fast[column] = _STAGE_QUANTITIES[spec.fn]
    results: list[dict[str, Tensor]] = [{} for _ in other_maps]
    if fast:
        quantities = [q for q in fast.values() if isinstance(q, str)]
        ks = [k for k in fast.values() if isinstance(k, int)]
        for result, values in zip(results, stage.compare_with_baseline(base_maps, other_maps, quantities, ks)):
            result.update({column: values[key] for column, key in fast.items()})
    baseline_mask_values: dict[str, Tensor] = {}  # the baseline's side of each ``_change`` column, once
    out = []
    for result, maps, probs in zip(results, other_maps, other_probs):
        ordered = {}
        for column, spec, kwargs in plan:
            if column in result:
                ordered[column] = result[column]
            elif spec.input == "mask":
                kwargs = dict(kwargs)
                if kwargs.pop(_CHANGE, False):
                    if column not in baseline_mask_values:
                        baseline_mask_values[column] = spec.fn(base_maps, masks, **kwargs)
                    ordered[column] = ordered[column[: -len(CHANGE_SUFFIX)]] - baseline_mask_values[column]
                else:
                    ordered[column] = spec.fn(maps, masks, **kwargs)
            else:
                base, other = (base_maps, maps) if spec.input == "cam" else (base_probs, probs)
                ordered[column] = spec.fn(base, other, **kwargs)
        out.append(ordered)
    return out


def spec_for_column(column: str) -> MetricSpec:
    """The spec a result column comes from: a registry name, ``<name>_<value>`` of a metric whose parameter
    gives one column per value (``overlap_10`` -> ``overlap``, ``mask_iou_5`` -> ``mask_iou``), and a mask
    column's ``<column>_change`` -> that column's spec."""
    if column in CAM_METRICS:
        return get_metric(column)
    if column.endswith(CHANGE_SUFFIX):
        try:
            spec = spec_for_column(column[: -len(CHANGE_SUFFIX)])
        except UnknownNameError:
            pass
        else:
            if spec.input == "mask":
                return spec
    for name in CAM_METRICS.names():
        spec = get_metric(name)
        suffix = column[len(name) + 1:]
        if not (column.startswith(name + "_") and suffix):
            continue
        for param in spec.params:
            if param.per_column:
                try:
                    param.canonical([float(suffix)])
                except (TypeError, ValueError):
                    continue
                return spec
    raise UnknownNameError(
        CAM_METRICS.unknown_message(column) + " (the overlap metric gives columns overlap_<percent>, e.g. overlap_10)"
    )


def column_higher_is_better(column: str) -> bool:
    """Whether a higher value in ``column`` means more similar to the baseline (for sorting / colouring)."""
    return spec_for_column(column).higher_is_better

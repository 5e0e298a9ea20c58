"""Metrics: CAM / prediction similarity against the baseline (``CAM_METRICS``) and classification performance.

The maths lives once, in ``auglens.metrics.functional`` (pure batched functions) and
``auglens.metrics.performance``. This module adds what configs and reports need on top:

* ``CAM_METRICS``: registry of ``MetricSpec`` (name -> function + metadata). Config names are
  ``mad``, ``msd``, ``pearson``, ``spearman``, ``overlap``, ``class_kld``, and for data sets with object
  masks ``mask_energy`` and ``mask_iou`` (ground-truth localisation, ``auglens.metrics.localisation``).
* ``metric_columns``: the table columns a list of names produces (``overlap`` -> ``overlap_20`` ...;
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
from collections.abc import Callable, Sequence
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
    "DEFAULT_OVERLAP_PERCENTS",
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
    "overlap_rate",
    "pearson",
    "spearman",
    "spec_for_column",
]

#: The thesis reports the Overlap Rate at the top 20 %, 10 % and 5 %.
DEFAULT_OVERLAP_PERCENTS: tuple[float, ...] = (20, 10, 5)

#: What a metric reads: "cam" and "probs" compare the baseline's with the augmented model's maps or class
#: probabilities; "mask" scores one model's maps against the object masks.
_INPUTS = ("cam", "probs", "mask")
#: Column suffix of a mask metric's difference augmented - baseline.
CHANGE_SUFFIX = "_change"
_CHANGE = "__change__"  # plan marker: this column is the difference


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

    def __post_init__(self) -> None:
        if self.input not in _INPUTS:
            raise ValueError(f"MetricSpec.input must be one of {_INPUTS}, got {self.input!r}")
        # Instance attributes (the dataclass is frozen, hence object.__setattr__) read by inspect.getdoc /
        # inspect.signature, which Registry.describe / Registry.parameters use.
        object.__setattr__(self, "__doc__", self.description)
        object.__setattr__(self, "__signature__", inspect.signature(self.fn))

    def __call__(self, *args: Any, **kwargs: Any) -> Tensor:
        return self.fn(*args, **kwargs)


CAM_METRICS: Registry[Tensor] = Registry("metric")

#: Registered functions the metric stage computes from shared summaries (``auglens.metrics.stage``).
_STAGE_QUANTITIES: dict[Callable[..., Tensor], str] = {mad: "mad", msd: "msd", pearson: "pearson",
                                                       spearman: "spearman"}


def _register(spec: MetricSpec) -> None:
    CAM_METRICS.register(spec.name)(spec)


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
    )
)
_register(
    MetricSpec(
        "class_kld",
        class_kld,
        "probs",
        False,
        "Class-KLD: sum_i Q_i log(eps + Q_i / P_i) between baseline (P) and augmented (Q) class probabilities.",
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
    )
)

#: Metrics that score CAMs against object masks; they need a data set with masks.
MASK_METRIC_NAMES: tuple[str, ...] = ("mask_energy", "mask_iou")

#: The thesis's metrics, in its order (a convenient default for configs; the mask metrics need masks).
ALL_METRIC_NAMES: tuple[str, ...] = ("mad", "msd", "pearson", "spearman", "overlap", "class_kld")


def get_metric(name: str) -> MetricSpec:
    """The spec registered under ``name``; unknown names raise ``UnknownNameError`` listing the valid ones."""
    return CAM_METRICS.get(name)  # type: ignore[return-value]


def _format_percent(y: float) -> str:
    value = float(y)
    return str(int(value)) if value.is_integer() else repr(value)


def _plan(
    names: Sequence[str], overlap_percents: Sequence[float], kld_eps: float
) -> list[tuple[str, MetricSpec, dict[str, Any]]]:
    """(column, spec, extra kwargs) per output column, in order. Single source for columns and computation."""
    if isinstance(names, str):
        raise TypeError(f"names must be a list of metric names, got the string {names!r}")
    specs = [get_metric(name) for name in names]  # validate every name before any work
    plan: list[tuple[str, MetricSpec, dict[str, Any]]] = []
    for spec in specs:
        if spec.name in ("overlap", "mask_iou"):
            if isinstance(overlap_percents, (str, int, float)) or not overlap_percents:
                raise ValueError(f"{spec.name!r} needs a non-empty list of overlap_percents, got {overlap_percents!r}")
            for y in overlap_percents:
                top_count(y, 1)  # validates 0 < y <= 100
                plan.append((f"{spec.name}_{_format_percent(y)}", spec, {"top_percent": y}))
        elif spec.name == "class_kld":
            plan.append((spec.name, spec, {"eps": kld_eps}))
        else:
            plan.append((spec.name, spec, {}))
    # Each mask column is followed by its change: the augmented model's value minus the baseline's.
    plan = [entry for column, spec, kwargs in plan
            for entry in ([(column, spec, kwargs), (column + CHANGE_SUFFIX, spec, {**kwargs, _CHANGE: True})]
                          if spec.input == "mask" else [(column, spec, kwargs)])]
    columns = [column for column, _, _ in plan]
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    if duplicates:
        raise ValueError(
            f"duplicate metric columns {duplicates} (from names {list(names)}, overlap_percents {overlap_percents!r})"
        )
    return plan


def metric_columns(names: Sequence[str], overlap_percents: Sequence[float] = DEFAULT_OVERLAP_PERCENTS) -> list[str]:
    """Column names, in order, that ``compute_pair_metrics(names, ...)`` returns.

    ``"overlap"`` expands to one column per percent, ``overlap_<Y>`` with integral Y written without ``.0``:
    ``metric_columns(["mad", "overlap"], [20, 10, 5])`` -> ``["mad", "overlap_20", "overlap_10", "overlap_5"]``
    (and ``12.5`` -> ``overlap_12.5``).

    Raises:
        UnknownNameError: a name is not registered (the message lists the valid names).
        ValueError: duplicate columns, or ``overlap`` with no / invalid percents.
    """
    return [column for column, _, _ in _plan(names, overlap_percents, DEFAULT_KLD_EPS)]


def _batch_size(a: Any, b: Any, what: str) -> int:
    if a is None or b is None:
        raise ValueError(f"the requested metrics need both base_{what} and other_{what}")
    return int(a.shape[0])


def compute_pair_metrics(
    names: Sequence[str],
    base_maps: Tensor | None = None,
    other_maps: Tensor | None = None,
    base_probs: Tensor | None = None,
    other_probs: Tensor | None = None,
    overlap_percents: Sequence[float] = DEFAULT_OVERLAP_PERCENTS,
    kld_eps: float = DEFAULT_KLD_EPS,
    masks: Tensor | None = None,
) -> dict[str, Tensor]:
    """Every requested metric for ``N`` (baseline, augmented) pairs, keyed by column name.

    Args:
        names: registry names, e.g. ``["mad", "msd", "pearson", "spearman", "overlap", "class_kld"]``.
        base_maps: baseline CAMs ``(N, H, W)`` (or ``(N, ...)``); needed by "cam" metrics.
        other_maps: augmented-model CAMs, same shape.
        base_probs: baseline class probabilities ``(N, C)``; needed by "probs" metrics.
        other_probs: augmented-model class probabilities ``(N, C)``.
        overlap_percents: the Y values of the ``overlap`` and ``mask_iou`` columns.
        kld_eps: ``eps`` of ``class_kld``.
        masks: object masks ``(N, H, W)`` bool, the maps' shape; needed by "mask" metrics.

    Returns:
        ``{column: (N,) float64 tensor}`` in ``metric_columns(names, overlap_percents)`` order, on the
        inputs' device.
    """
    return compute_baseline_metrics(names, base_maps, [other_maps], base_probs, [other_probs], overlap_percents,
                                    kld_eps, masks)[0]


def compute_baseline_metrics(
    names: Sequence[str],
    base_maps: Tensor | None,
    other_maps: Sequence[Tensor | None],
    base_probs: Tensor | None = None,
    other_probs: Sequence[Tensor | None] | None = None,
    overlap_percents: Sequence[float] = DEFAULT_OVERLAP_PERCENTS,
    kld_eps: float = DEFAULT_KLD_EPS,
    masks: Tensor | None = None,
) -> list[dict[str, Tensor]]:
    """``compute_pair_metrics`` of one baseline batch against several models' batches of the same images.

    The study's metric stage: each baseline map is sorted and summarised once and reused for every model
    (see :mod:`auglens.metrics.stage`); the values are those of ``compute_pair_metrics`` on each pair.

    Args:
        names, base_maps, base_probs, overlap_percents, kld_eps, masks: as in ``compute_pair_metrics``.
        other_maps: one ``(N, ...)`` batch per model (``None`` entries when only "probs" metrics are asked).
        other_probs: one ``(N, C)`` batch per model, or ``None`` when no "probs" metric is asked.

    Returns:
        One ``{column: (N,) float64}`` dict per model, in ``other_maps`` order.
    """
    plan = _plan(names, overlap_percents, kld_eps)
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
    """The spec a result column comes from: a registry name, ``overlap_<Y>`` -> ``overlap``, ``mask_iou_<Y>`` ->
    ``mask_iou``, and a mask column's ``<column>_change`` -> that column's spec."""
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
    for name in ("overlap", "mask_iou"):
        prefix, suffix = column[: len(name)], column[len(name) + 1:]
        if prefix == name and column[len(name):len(name) + 1] == "_" and suffix:
            try:
                top_count(float(suffix), 1)
            except (TypeError, ValueError):
                continue
            return get_metric(name)
    raise UnknownNameError(
        CAM_METRICS.unknown_message(column) + " (the overlap metric gives columns overlap_<percent>, e.g. overlap_10)"
    )


def column_higher_is_better(column: str) -> bool:
    """Whether a higher value in ``column`` means more similar to the baseline (for sorting / colouring)."""
    return spec_for_column(column).higher_is_better

"""The older ``[metrics]`` table of the study config, still read: rewritten as ``[[metrics]]`` tables.

The older form is one table, ``[metrics] names = [...] overlap_percents = [...] kld_epsilon = ... batch_size
= ...``, where one key may feed several metrics' parameters. Each metric parameter declares its key in this
form as ``legacy_key`` in its registry entry (:mod:`auglens.metrics`); :func:`legacy_keys` collects them once,
for the upgrade and for the configuration reference.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from auglens.config.coercion import unknown_key

if TYPE_CHECKING:
    from auglens.metrics import MetricParam

__all__ = ["LEGACY_METRICS_KEYS", "legacy_keys", "legacy_metrics"]

#: Keys of the older ``[metrics]`` table besides the metric parameters' ``legacy_key``: the metric names, and
#: the chunk size, now ``runtime.metric_batch_size``.
LEGACY_METRICS_KEYS = ("names", "batch_size")


def legacy_keys() -> dict[str, list[tuple[str, MetricParam]]]:
    """``{older key: [(metric name, parameter), ...]}``: the metric parameters each key of the older
    ``[metrics]`` table sets, in registry order (``overlap_percents``: overlap's and mask_iou's ``percents``)."""
    from auglens.metrics import CAM_METRICS

    legacy: dict[str, list[tuple[str, MetricParam]]] = {}
    for name in CAM_METRICS.names():
        for param in CAM_METRICS.get(name).params:
            if param.legacy_key:
                legacy.setdefault(param.legacy_key, []).append((name, param))
    return legacy


def legacy_metrics(data: dict[str, Any], errors: list[str]) -> dict[str, Any]:
    """``[metrics] names = [...] overlap_percents = [...] kld_epsilon = ... batch_size = ...`` as ``[[metrics]]``.

    Returns a copy of ``data`` in the current layout; problems go to ``errors``. A sub-table named after a
    metric (``metrics.overlap.percents=[10]`` given as an override) sets that metric's parameters.
    """
    from auglens.metrics import ALL_METRIC_NAMES, CAM_METRICS

    data = copy.deepcopy(data)
    old = data.pop("metrics")
    legacy = legacy_keys()
    named = {key: value for key, value in old.items() if key in CAM_METRICS and isinstance(value, dict)}
    for key in old:
        if key not in legacy and key not in LEGACY_METRICS_KEYS and key not in named:
            errors.append(unknown_key("metrics.", key, [*LEGACY_METRICS_KEYS, *legacy]))
    names = old.get("names", list(ALL_METRIC_NAMES))
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        errors.append(f"metrics.names: expected a list of metric names, got {names!r}")
        names = []
    entries = [{"name": name} for name in names]
    for entry in entries:
        for key, targets in legacy.items():
            for name, param in targets:
                if key in old and name == entry["name"]:
                    entry[param.name] = copy.deepcopy(old[key])
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

"""The rows of the configuration reference: every key of a config with its meaning and default.

Read by docs/configuration.md (:mod:`auglens.config_reference`), ``auglens validate`` and the docs' tests.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from auglens.config.base import entry_lists
from auglens.config.legacy import legacy_keys
from auglens.config.sections import AugmentationConfig, RuntimeConfig
from auglens.config.study import Config, ControlConfig, MetricConfig, plain_params

__all__ = ["describe_fields"]


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
        if entries.get(f.name) is ControlConfig:
            rows.append(("[[controls]]", "one table per control: name = the setting (init_seed: model.init_seed, the "
                         "initial weights; sampling_seed: split.sampling_seed, the training order), values = its "
                         "other values; each value trains one more model per seed, without augmentation, differing "
                         "from the baseline in that setting alone, and compared with the baseline as an augmented "
                         "model is (docs/methodology.md, \"Retraining controls\")", []))
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
    for name in CAM_METRICS.names():
        for param in CAM_METRICS.get(name).params:
            rows.append((f"metrics.{name}.{param.name}", param.help, _plain_value(param.default)))
    older = "older `[metrics]` table form, still read:"
    rows.append(("metrics.names", f"{older} the metric names, one [[metrics]] table each", [m.name for m in default]))
    for key, targets in legacy_keys().items():
        sets = " and ".join(f"`metrics.{name}.{param.name}`" for name, param in targets)
        rows.append((f"metrics.{key}", f"{older} {sets}", _plain_value(targets[0][1].default)))
    rows.append(("metrics.batch_size", f"{older} `runtime.metric_batch_size`", RuntimeConfig.metric_batch_size))
    return rows


def _plain_value(value: Any) -> Any:
    return plain_params({"v": value})["v"]

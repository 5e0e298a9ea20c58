"""Typed configuration: the config core every top-level config shares, and the study's config.

A config is grouped by pipeline stage; every field documents its meaning and unit. The parts, one module each:

- :mod:`~auglens.config.coercion`: a TOML value checked against a field's type and range (:func:`coerce`,
  :func:`config_field`, the ``"none"`` spelling of None, :class:`ConfigError`);
- :mod:`~auglens.config.sections`: the sections every config shares (data, split, model, training,
  ``[[augmentations]]``, runtime), defined once;
- :mod:`~auglens.config.base`: :class:`ConfigBase`, the dict round trip, loading and validation of every
  top-level config;
- :mod:`~auglens.config.study`: the study's :class:`Config` (``auglens run``); the distortion analyses' config
  is :mod:`auglens.distortion.config`;
- :mod:`~auglens.config.legacy`: the older ``[metrics]`` table, still read;
- :mod:`~auglens.config.overrides`: reading a TOML file with ``key=value`` overrides;
- :mod:`~auglens.config.docs`: the rows of docs/configuration.md.

Validation collects *every* problem — unknown keys, wrong types, out-of-range values, unknown registry
names, bad augmentation or metric parameters — and raises one :class:`ConfigError` listing them with their
key paths, before any work starts. ``validate`` leaves the config it checks unchanged and returns the
problems with a resolved copy; loading returns that copy.
"""

from __future__ import annotations

from auglens.config.base import (
    ConfigBase,
    check_augmentation_params,
    dump_toml,
    entry_lists,
    parse_entries,
    registered_entries,
)
from auglens.config.coercion import NONE, ConfigError, build_section, coerce, config_field, drop_none
from auglens.config.docs import describe_fields
from auglens.config.legacy import legacy_metrics
from auglens.config.overrides import apply_overrides, read_toml
from auglens.config.sections import (
    AugmentationConfig,
    DataConfig,
    ModelConfig,
    RuntimeConfig,
    SplitConfig,
    TableEntry,
    TrainingConfig,
)
from auglens.config.study import (
    CamConfig,
    CkaConfig,
    Config,
    FaithfulnessConfig,
    MetricConfig,
    StudyConfig,
    default_metrics,
    from_dict,
    load,
)
from auglens.hashing import stable_hash

__all__ = [
    "NONE", "AugmentationConfig", "CamConfig", "CkaConfig", "Config", "ConfigBase", "ConfigError", "DataConfig", "FaithfulnessConfig", "MetricConfig",
    "ModelConfig", "RuntimeConfig", "SplitConfig", "StudyConfig", "TableEntry", "TrainingConfig",
    "apply_overrides", "build_section", "check_augmentation_params", "coerce", "config_field", "default_metrics",
    "describe_fields", "drop_none", "dump_toml", "entry_lists", "from_dict", "legacy_metrics", "load",
    "parse_entries", "read_toml", "registered_entries", "stable_hash",
]

"""The config core every top-level config shares: the dict round trip, loading and validation.

A top-level config (the study's :class:`~auglens.config.study.Config`, the distortion analyses'
:class:`~auglens.distortion.config.DistortionConfig`) is a dataclass subclassing :class:`ConfigBase` and
listing its sections. Validation collects *every* problem — unknown keys, wrong types, out-of-range values,
unknown registry names, bad augmentation parameters — and loading raises one :class:`ConfigError` listing
them with their key paths, before any work starts.
"""

from __future__ import annotations

import copy
import dataclasses
import typing
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from auglens.config.coercion import ConfigError, build_section, coerce, drop_none, spell_none, unknown_key
from auglens.config.overrides import read_toml
from auglens.config.sections import AugmentationConfig, TableEntry
from auglens.hashing import stable_hash

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["ConfigBase", "check_augmentation_params", "dump_toml", "entry_lists", "parse_entries",
           "registered_entries"]


class ConfigBase:
    """What every top-level config shares: the TOML-shaped dict round trip, loading, overrides, validation.

    A top-level config is a dataclass subclassing this one and listing its sections. The shared sections
    (``data``, ``split``, ``model``, ``training``, ``[[augmentations]]``, ``runtime``) are those of
    :mod:`auglens.config.sections`, defined once; a config that needs other defaults subclasses a section and
    changes only its defaults (as the distortion config does). A subclass adds its own checks by extending
    :meth:`validate`.
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
        spell_none(self, data)
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
        """Build and validate; the resolved config (see :meth:`validate`); raises :class:`ConfigError` listing
        every problem.

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
        problems, resolved = config.validate()
        errors.extend(problems)
        if errors:
            raise ConfigError(errors, source)
        return resolved

    @classmethod
    def upgrade(cls, data: dict[str, Any], errors: list[str]) -> dict[str, Any]:
        """Older layouts a config still reads, rewritten to the current one (none here)."""
        return data

    @classmethod
    def load(cls, path: str | Path, overrides: list[str] | None = None) -> Self:
        """Read a TOML file, apply ``key=value`` overrides, validate; the resolved config; raises
        :class:`ConfigError`."""
        return cls.from_dict(read_toml(path, overrides), str(path))

    def checked(self) -> Self:
        """This config validated (for configs built in code): its resolved copy; raises :class:`ConfigError`."""
        problems, resolved = self.validate()
        if problems:
            raise ConfigError(problems)
        return resolved

    def validate(self) -> tuple[list[str], Self]:
        """Checks beyond types of the shared sections: registry names, augmentation parameters, cross-field rules.

        Returns ``(problems, resolved)``: one message per problem found (empty when the config is valid), and
        a copy of this config with its values resolved — each augmentation's parameters coerced to the types
        its factory declares (a subclass resolves more, e.g. the study's metric parameters). This config is
        left unchanged. A subclass extends this method: it calls ``super().validate()``, then checks, and
        resolves values of, the copy it gets.
        """
        from auglens.augment import AUGMENTATIONS, BASELINE
        from auglens.data import DATASETS

        resolved = copy.deepcopy(self)
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
        for i, aug in enumerate(resolved.augmentations):
            if aug.name == BASELINE:
                errors.append(f"augmentations[{i}]: {BASELINE!r} is the baseline, which {self.baseline_trained_by} "
                              "trains; list only augmentations")
            else:
                augmentations.append((i, aug))
        for path, aug in registered_entries("augmentations", augmentations, AUGMENTATIONS, errors):
            problems, params = check_augmentation_params(path, aug)
            errors.extend(problems)
            aug.params = params  # the copy's entry
        return errors, resolved

    def validate_model(self) -> list[str]:
        """``model.architecture`` is registered (or ``package.module:factory``) and takes ``model.params``."""
        from auglens.models import MODELS

        model = self.model
        if ":" in model.architecture:
            return []
        if model.architecture not in MODELS:
            return [f"model.architecture: {MODELS.unknown_message(model.architecture)}"]
        accepted = set(MODELS.parameters(model.architecture)) - {"num_classes", "in_channels"}
        return [unknown_key("model.params.", key, sorted(accepted)) if accepted
                else f"model.params.{key}: {model.architecture} takes no extra parameters"
                for key in model.params if key not in accepted]


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


def check_augmentation_params(path: str, aug: AugmentationConfig) -> tuple[list[str], dict[str, Any]]:
    """``(problems, params)``: the problems of ``aug``'s parameters (names, types, the augmentation's own
    checks), and the parameters coerced to the types its factory declares (as given when there are problems)."""
    from auglens.augment import AUGMENTATIONS

    errors: list[str] = []
    accepted = AUGMENTATIONS.parameters(aug.name)
    factory = AUGMENTATIONS.get(aug.name)
    hints = typing.get_type_hints(factory.__init__ if isinstance(factory, type) else factory)
    coerced = {}
    for key, value in aug.params.items():
        if key not in accepted:
            errors.append(unknown_key(f"{path}.", key, list(accepted)) if accepted
                          else f"{path}.{key}: {aug.name} takes no parameters")
            continue
        coerced[key] = coerce(value, hints.get(key, Any), f"{path}.{key}", errors)
    if errors:
        return errors, aug.params
    try:
        AUGMENTATIONS.build(aug.name, **coerced)
    except ValueError as error:
        return [f"{path}: {error}"], aug.params
    return [], coerced


def entry_lists(cls: type) -> dict[str, type]:
    """``{field: entry type}`` of the fields of ``cls`` that are arrays of ``[[tables]]`` (lists of a
    :class:`~auglens.config.sections.TableEntry`)."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        if typing.get_origin(hints[f.name]) is list:
            (item,) = typing.get_args(hints[f.name])
            if isinstance(item, type) and issubclass(item, TableEntry):
                out[f.name] = item
    return out


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


def dump_toml(config: ConfigBase) -> str:
    """The resolved config as TOML (the parameters of each ``[[table]]`` entry flattened back into it)."""
    import tomli_w

    return tomli_w.dumps(config.to_dict())

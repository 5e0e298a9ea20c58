"""The coercion engine of every config: a TOML value checked against a field's type and range.

A config section is a dataclass whose fields are declared with :func:`config_field` (default, meaning and
unit, range checks). :func:`build_section` builds one from a TOML table, and :func:`coerce` checks a value
against a type hint (``int`` widens to ``float``, a list becomes a tuple where the hint says so); both append
one message per problem to an ``errors`` list instead of raising, so a config reports every problem at once.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import types
import typing
from dataclasses import field
from typing import Any, Literal

__all__ = ["NONE", "ConfigError", "build_section", "check_range", "coerce", "config_field", "drop_none",
           "spell_none", "type_name", "unknown_key"]


class ConfigError(ValueError):
    """One or more problems in a config; ``errors`` holds one message per problem."""

    def __init__(self, errors: list[str], source: str | None = None):
        self.errors = list(errors)
        where = f" in {source}" if source else ""
        listing = "\n".join(f"  - {e}" for e in self.errors)
        super().__init__(f"{len(self.errors)} problem(s){where}:\n{listing}")


def config_field(default: Any, help: str, **checks: Any) -> Any:
    """A dataclass field with its meaning (``help``) and range checks (``min``, ``exclusive_min``, ``max``,
    ``min_len``); a list or dict default is copied for each instance."""
    metadata = {"help": help, **checks}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return field(default=default, metadata=metadata)


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


def spell_none(section: Any, data: dict[str, Any]) -> None:
    """Write ``"none"`` into ``data`` (the section's dict with None dropped) for each None whose default is not
    None: dropping it would read back as the default."""
    for f in dataclasses.fields(section):
        value = getattr(section, f.name)
        if dataclasses.is_dataclass(value) and isinstance(data.get(f.name), dict):
            spell_none(value, data[f.name])
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


def type_name(tp: Any) -> str:
    """A type hint in the words of an error message: ``int or "none"``, ``list of a number``."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        names = [type_name(a) for a in typing.get_args(tp) if a is not type(None)]
        args = typing.get_args(tp)
        optional = "" if type(None) not in args else " (or leave it out)" if str in args else f' or "{NONE}"'
        return " or ".join(names) + optional
    if origin is list:
        return f"list of {type_name(typing.get_args(tp)[0])}"
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
        errors.append(f"{path}: expected {type_name(tp)}, got {value!r}")
        return value
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            errors.append(f"{path}: expected one of {', '.join(map(repr, choices))}, got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list):
            errors.append(f"{path}: expected {type_name(tp)}, got {value!r}")
            return value
        (item_type,) = typing.get_args(tp)
        return [coerce(v, item_type, f"{path}[{i}]", errors) for i, v in enumerate(value)]
    if origin is tuple:
        item_types = typing.get_args(tp)
        if not isinstance(value, (list, tuple)) or len(value) != len(item_types):
            errors.append(f"{path}: expected {type_name(tp)}, got {value!r}")
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


def check_range(value: Any, meta: dict, path: str, errors: list[str]) -> None:
    """The range checks of a field's metadata (see :func:`config_field`) on a value or each number of a list."""
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


def unknown_key(path: str, key: str, valid: list[str]) -> str:
    """The message for an unknown key: the closest valid key, if any, and every valid one."""
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{path}{key}: unknown key{hint}; valid keys: {', '.join(valid)}"


def build_section(cls: type, data: dict[str, Any], path: str, errors: list[str]) -> Any:
    """The dataclass ``cls`` from the TOML table ``data`` at key ``path``; every problem goes to ``errors``."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    prefix = f"{path}." if path else ""
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            errors.append(unknown_key(prefix, key, list(fields)))
            continue
        sub = f"{prefix}{key}"
        before = len(errors)
        value = coerce(value, hints[key], sub, errors)
        if len(errors) > before:
            continue  # keep the default so later checks see well-typed values; the error is recorded
        check_range(value, dict(fields[key].metadata), sub, errors)
        kwargs[key] = value
    return cls(**kwargs)

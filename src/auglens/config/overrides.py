"""A TOML config file read as a dict, with ``key=value`` command-line overrides applied."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from auglens._tomllib import tomllib
from auglens.config.coercion import ConfigError

__all__ = ["apply_overrides", "read_toml"]


def read_toml(path: str | Path, overrides: list[str] | None = None) -> dict[str, Any]:
    """A TOML file as a dict with ``key=value`` overrides applied; raises :class:`ConfigError`."""
    path = Path(path)
    if path.is_dir():
        hint = f" (a results folder's config is {path / 'config.toml'})" if (path / "config.toml").is_file() else ""
        raise ConfigError([f"config file {path} is a folder; give a TOML file{hint}"])
    if not path.is_file():
        raise ConfigError([f"config file {path} does not exist"])
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ConfigError([f"not valid TOML: {error}"], str(path)) from error
    return apply_overrides(data, overrides or [])


def _parses(text: str) -> bool:
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return False
    return True


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``training.epochs=2`` style overrides; values parse as TOML (``[1,2]``, ``true``), else as strings.

    An entry of an array of ``[[tables]]`` is named by its ``name``: ``metrics.overlap.percents=[10]``,
    ``augmentations.affine.degrees=5``.
    """
    if isinstance(overrides, str):
        raise ConfigError([f"overrides must be a list of key=value strings, e.g. [{overrides!r}]; got the string "
                           f"{overrides!r}"])
    data = copy.deepcopy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError([f"override {item!r}: expected key=value, e.g. training.epochs=2"])
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
            if "," in raw and _parses(f"v = [{raw}]"):  # e.g. study.seeds=1,2: a list needs its brackets
                raise ConfigError([f"override {item!r}: {raw} is not one value; write a list as "
                                   f"{key.strip()}=[{raw}]"]) from None
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


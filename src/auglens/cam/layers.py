"""Finding the CAM target layer of a model from a module, a dotted name, ``"last_conv"`` or the model's default."""

from __future__ import annotations

import difflib

import torch.nn as nn

__all__ = ["resolve_target_layer", "LAST_CONV", "DEFAULT_LAYER_ATTRIBUTE"]

#: Special name: the last ``nn.Conv2d`` in ``model.named_modules()`` order.
LAST_CONV = "last_conv"
#: Model attribute (a dotted module name) set by auglens' model factories to name their CAM layer.
DEFAULT_LAYER_ATTRIBUTE = "auglens_target_layer"

# Long candidate lists (DenseNet has ~120 convs) are cut so the error stays readable.
_MAX_LISTED = 25


def _candidates(model: nn.Module) -> list[str]:
    """Conv layers and top-level blocks, in model order, without duplicates."""
    names = [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    names += [name for name, _ in model.named_children()]
    return list(dict.fromkeys(names))


def _unknown_layer_error(model: nn.Module, name: str, origin: str) -> ValueError:
    all_names = [n for n, _ in model.named_modules() if n]
    close = difflib.get_close_matches(name, all_names, n=5, cutoff=0.5)
    listed = close + [c for c in _candidates(model) if c not in close]
    more = len(listed) - _MAX_LISTED
    shown = ", ".join(listed[:_MAX_LISTED]) + (f", ... (+{more} more)" if more > 0 else "")
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ValueError(
        f"no layer named {name!r}{origin} in {type(model).__name__}.{hint} "
        f"Candidate layers (closest first, then conv layers and top-level blocks): {shown or '(none)'}. "
        f"Expected a dotted name from model.named_modules(), {LAST_CONV!r}, an nn.Module, or None."
    )


def resolve_target_layer(model: nn.Module, target_layer: nn.Module | str | None = None) -> nn.Module:
    """The module whose output the CAM is computed on.

    Args:
        model: the classifier.
        target_layer: an ``nn.Module`` (returned as is); a dotted name as in ``model.named_modules()``
            (``"features.8"``, ``"layer4.1.conv2"``); ``"last_conv"`` for the last ``nn.Conv2d`` in
            ``named_modules()`` order; or ``None`` for the model's ``auglens_target_layer`` attribute if it
            has one, else ``"last_conv"``.

    Raises:
        ValueError: the name matches no module (the message lists candidate layers, closest first), or the
            model has no ``nn.Conv2d`` for ``"last_conv"``.
        TypeError: ``target_layer`` is of another type.
    """
    if isinstance(target_layer, nn.Module):
        return target_layer
    origin = ""
    if target_layer is None:
        target_layer = getattr(model, DEFAULT_LAYER_ATTRIBUTE, None)
        if target_layer is None:
            target_layer = LAST_CONV
        else:
            origin = f" (from {type(model).__name__}.{DEFAULT_LAYER_ATTRIBUTE})"
    if not isinstance(target_layer, str):
        raise TypeError(
            f"target_layer must be an nn.Module, a dotted layer name, {LAST_CONV!r} or None; "
            f"got {type(target_layer).__name__}"
        )
    if target_layer == LAST_CONV:
        convs = [m for _, m in model.named_modules() if isinstance(m, nn.Conv2d)]
        if not convs:
            raise ValueError(
                f"{type(model).__name__} has no nn.Conv2d, so {LAST_CONV!r} does not apply; pass a dotted "
                f"name or a module. Top-level blocks: {', '.join(n for n, _ in model.named_children()) or '(none)'}"
            )
        return convs[-1]
    # "" is the model itself in named_modules(); its output is the logits, never a spatial map.
    modules = dict(model.named_modules())
    if target_layer and target_layer in modules:
        return modules[target_layer]
    raise _unknown_layer_error(model, target_layer, origin)

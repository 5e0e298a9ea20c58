"""Weights files read safely: ``.safetensors`` with safetensors, anything else with ``torch.load(weights_only=True)``.

A weights file is never unpickled, so a file from elsewhere cannot run code; a state dict saved under
``state_dict`` or ``model`` (the usual training-script layouts) is taken from inside it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from auglens.errors import UserError

__all__ = ["load_state_dict"]


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Weights from ``.safetensors`` or a ``torch.save`` file (plain state dict, or under 'state_dict'/'model')."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises UnpicklingError subclasses and RuntimeError here
        raise UserError(f"{path}: not loadable as plain weights ({error}); save a state_dict or .safetensors") from error
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserError(f"{path}: expected a state dict of tensors (name -> tensor), got {type(obj).__name__}")
    return obj

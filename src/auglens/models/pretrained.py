"""torchvision's pretrained ImageNet classifiers, loaded from the user's torch cache (never downloaded here).

torchvision keeps downloaded weights in ``$TORCH_HOME/hub/checkpoints/<file>`` (``torch.hub.get_dir()``;
``~/.cache/torch/hub`` by default), the file name being the last part of the weights' URL, e.g.
``resnet101-cd907fc2.pth``. :func:`load_pretrained` reads exactly that file, so runs are reproducible and
work offline; a missing file is an error naming it and saying how to fetch it once.

The models expect ImageNet-normalised input (:data:`IMAGENET_MEAN`, :data:`IMAGENET_STD`) and predict
the 1,000 ImageNet classes (:func:`pretrained_classes`, torchvision's class order).

A study's models can also *start* from pretrained weights (the study's ``model.pretrained``): torchvision's
ImageNet weights of the architecture from the same cache, or a state-dict file of the user's
(:func:`pretrained_file`). :func:`start_from_pretrained` copies every weight of the file into the model but
the classifier head (:func:`head_layer`), which keeps the draw of ``model.init_seed`` for the data set's class
count, so every model of a study starts identical. On 1-channel data the first convolution's weights are
summed over the file's input channels: the same as feeding the grey image repeated on every channel (timm's
``adapt_input_conv`` does the same); other channel mismatches are refused.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import torch
import torch.nn as nn

from auglens.data.transforms import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "head_layer", "load_pretrained", "pretrained_classes", "pretrained_file",
           "pretrained_names", "pretrained_problems", "pretrained_sha256", "pretrained_weights_path",
           "read_pretrained_state", "start_from_pretrained"]


def pretrained_names() -> list[str]:
    """torchvision's ImageNet classification architectures (those with pretrained weights)."""
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def _weights(architecture: str):
    import torchvision

    names = pretrained_names()
    if architecture not in names:
        raise ValueError(f"model.pretrained: {architecture!r} is not a torchvision ImageNet classifier; valid: "
                         f"{', '.join(names)}")
    return torchvision.models.get_model_weights(architecture).DEFAULT


def pretrained_weights_path(architecture: str) -> Path:
    """Where torchvision caches the default ImageNet weights of ``architecture`` (the file need not exist)."""
    url = _weights(architecture).url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def pretrained_classes(architecture: str) -> list[str]:
    """The ImageNet class names, in the model's output order."""
    return list(_weights(architecture).meta["categories"])


def load_pretrained(architecture: str) -> nn.Module:
    """The architecture with its default ImageNet weights from the torch cache; raises FileNotFoundError if absent."""
    import torchvision

    path = pretrained_weights_path(architecture)
    if not path.is_file():
        raise FileNotFoundError(
            f"pretrained weights of {architecture} not found: expected {path} (torchvision's cache, "
            f"$TORCH_HOME/hub/checkpoints). Fetch them once on a machine with internet access, e.g. "
            f"python -c \"import torchvision; torchvision.models.get_model('{architecture}', weights='DEFAULT')\", "
            f"and copy the file there; or set model.pretrained = false")
    model = torchvision.models.get_model(architecture, weights=None)
    model.load_state_dict(read_pretrained_state(path))
    return model


# ------------------------------------------------------------------------------------------ a study's start

#: torchvision's DenseNet files name the layers of a dense layer ``norm.1``, ``conv.2``, ...; its modules
#: are ``norm1``, ``conv2``: torchvision renames the keys when it loads them, and so does this module.
_DENSENET_OLD_KEY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")


def pretrained_file(setting: str | None, architecture: str) -> Path | None:
    """The weights file a study's ``model.pretrained`` names (it need not exist): None for None or "none"
    (trained from scratch), torchvision's cache file of ``architecture``'s default ImageNet weights for
    "imagenet", else the given path (``~`` expanded, made absolute)."""
    if setting is None or setting.lower() == "none":
        return None
    if setting.lower() == "imagenet":
        return pretrained_weights_path(architecture)
    return Path(setting).expanduser().absolute()


def missing_file_message(setting: str, architecture: str, path: Path) -> str:
    """What to do about a weights file ``model.pretrained`` names that does not exist."""
    if setting.lower() == "imagenet":
        return (f"model.pretrained: torchvision's ImageNet weights of {architecture} not found: expected {path} "
                f"(torchvision's cache, $TORCH_HOME/hub/checkpoints; auglens never downloads them). Fetch them once "
                f"on a machine with internet access, e.g. python -c \"import torchvision; "
                f"torchvision.models.get_model('{architecture}', weights='DEFAULT')\", and copy the file there; "
                f"or set model.pretrained = \"none\" to train from scratch")
    return (f"model.pretrained: weights file {path} not found; give the path of a state dict (.pth, .pt or "
            f".safetensors), \"imagenet\" or \"none\"")


@functools.lru_cache(maxsize=16)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    from auglens.provenance import file_sha256

    return file_sha256(path)


def pretrained_sha256(path: str | Path) -> str:
    """SHA-256 of a weights file, computed once per file version (path, size, modification time) per process:
    a study's spec builder asks for it once per model."""
    stat = Path(path).stat()
    return _sha256(str(path), stat.st_size, stat.st_mtime_ns)


def read_pretrained_state(path: str | Path) -> dict[str, torch.Tensor]:
    """A weights file's state dict (:func:`auglens.models.weights.load_state_dict`: never unpickled), with
    torchvision's old DenseNet key names renamed to its modules' names."""
    from auglens.models.weights import load_state_dict

    state = load_state_dict(path)
    renamed = {}
    for key, value in state.items():
        old = _DENSENET_OLD_KEY.match(key)
        renamed[old.group(1) + old.group(2) if old else key] = value
    return renamed


def head_layer(model: nn.Module) -> str:
    """Dotted name of the model's classifier head: its ``auglens_head_layer`` attribute where it sets one, else
    its last ``nn.Linear`` (torchvision's ``fc`` or ``classifier``, the small CNN's ``classifier``)."""
    name = getattr(model, "auglens_head_layer", None)
    if name:
        return name
    linear = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    if not linear:
        raise ValueError(f"{type(model).__name__} has no nn.Linear classifier head; set its auglens_head_layer "
                         "attribute to the head's dotted name")
    return linear[-1]


def _first_conv(model: nn.Module) -> str | None:
    return next((name for name, module in model.named_modules() if isinstance(module, nn.Conv2d)), None)


def _in_head(key: str, head: str) -> bool:
    return key.startswith(head + ".")


def _adapted(model_shape: torch.Size, file_shape: torch.Size) -> bool:
    """A 1-input-channel convolution weight from a file's weight with several input channels (same otherwise)."""
    return (len(model_shape) == len(file_shape) == 4 and model_shape[1] == 1 and file_shape[1] > 1
            and model_shape[0] == file_shape[0] and model_shape[2:] == file_shape[2:])


def pretrained_problems(model: nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """Why ``state`` cannot start ``model`` (empty when it can): every weight and buffer of the model but
    the head must be in the file with the same shape (the first convolution may go from the file's input
    channels to one); the file holds nothing else but the head's weights."""
    head = head_layer(model)
    own = {k: v for k, v in model.state_dict().items() if not _in_head(k, head)}
    given = {k: v for k, v in state.items() if not _in_head(k, head)}
    first = _first_conv(model)
    problems = []
    missing = [k for k in own if k not in given]
    unexpected = [k for k in given if k not in own]
    if missing:
        problems.append(f"{len(missing)} of the model's weights are not in the file (e.g. {', '.join(missing[:3])})")
    if unexpected:
        problems.append(f"the file holds {len(unexpected)} weights the model does not have "
                        f"(e.g. {', '.join(unexpected[:3])}): weights of another architecture?")
    for key in own.keys() & given.keys():
        mine, theirs = own[key].shape, given[key].shape
        if mine == theirs:
            continue
        if key == f"{first}.weight" and _adapted(mine, theirs):
            continue
        if key == f"{first}.weight" and len(mine) == len(theirs) == 4 and mine[1] != theirs[1]:
            problems.append(f"{key}: the data has {mine[1]} channel(s), the weights take {theirs[1]}; auglens "
                            "adapts 1-channel data (the first convolution's weights summed over its input "
                            "channels) and refuses other mismatches")
        else:
            problems.append(f"{key}: shape {tuple(theirs)} in the file, {tuple(mine)} in the model")
    return problems


def start_from_pretrained(model: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module:
    """Copy ``state`` into ``model`` (in place; returned), all but the classifier head, which keeps its own
    initial weights; raises ValueError listing :func:`pretrained_problems` when they do not fit."""
    problems = pretrained_problems(model, state)
    if problems:
        raise ValueError("model.pretrained: the weights do not fit the model: " + "; ".join(problems))
    head = head_layer(model)
    own = model.state_dict()
    first = f"{_first_conv(model)}.weight"
    loaded = {}
    for key, value in own.items():
        if _in_head(key, head):
            loaded[key] = value
            continue
        given = state[key]
        if given.shape != value.shape:  # the first convolution, from the file's channels to one
            given = given.sum(dim=1, keepdim=True)
            assert key == first
        loaded[key] = given.to(value.dtype)
    model.load_state_dict(loaded)
    return model

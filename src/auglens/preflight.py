"""Checks before any work: everything about a run that can be known without training a model.

:mod:`auglens.config` checks a config's shape (keys, types, ranges, registry names). This module checks it
against the world, in seconds: the device exists on this machine; the data set's files are there, or can
be downloaded; the model can be built with the given parameters (on the ``meta`` device, so no memory is
allocated and no weights are initialised) and a forward pass of one image (on meta, or for a small model on
the CPU) reaches the CAM target layer with a spatial feature map. ``auglens validate``
runs these checks, and so do ``run``, ``compare`` and ``distortion`` before they start, so a mistake costs
seconds rather than a training run.

Every problem is reported as ``"<config key>: what is wrong; what to do"`` and all are raised together as
one :class:`~auglens.config.ConfigError`.
"""

from __future__ import annotations

import inspect
import os
import socket
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import torch

from auglens.config import Config, ConfigError, coerce
from auglens.data.datasets import DataSource, locate_dataset
from auglens.errors import UserError

if TYPE_CHECKING:
    from auglens.distortion.config import DistortionConfig

__all__ = ["Preflight", "check_data", "check_device", "check_model", "check_pretrained", "preflight"]

#: Seconds to wait for a download host before calling it unreachable.
CONNECT_TIMEOUT = 3.0

_DEVICE_TYPES = ("cpu", "cuda", "mps")
#: Models of at most this many parameters check their CAM layer's output with a CPU pass, larger ones on meta
#: (at this size building on the CPU and one image's pass take well under the meta pass's first-use cost).
_CPU_PASS_PARAMETERS = 1_000_000


@dataclass
class Preflight:
    """What the checks found: the main data set's source (None for a data set of unknown layout), and the CAM
    target layer with the shape of its output for one input image (None when the input size is unknown)."""

    source: DataSource | None
    target_layer: str | None = None
    feature_shape: tuple[int, ...] | None = None

    def describe(self) -> str:
        parts = []
        if self.source is not None:
            parts.append(f"data {self.source.name} from {self.source.description}")
        if self.target_layer is not None:
            shape = f" -> {self.feature_shape}" if self.feature_shape is not None else ""
            parts.append(f"CAM layer {self.target_layer!r}{shape}")
        return "; ".join(parts)


# ------------------------------------------------------------------------------------------ device

def check_device(name: str, key: str = "runtime.device", available: bool = True) -> list[str]:
    """Errors for a device name that torch does not know, or (``available``) that this machine lacks."""
    if name == "auto":
        return []
    expected = "expected auto, cpu, cuda, cuda:N or mps"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        return [f"{key}: {name!r} is not a device name; {expected}"]
    if device.type not in _DEVICE_TYPES:
        return [f"{key}: {name!r} is not a device auglens runs on; {expected}"]
    if not available:
        return []
    if device.type == "cuda":
        if not torch.cuda.is_available():
            built = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "built without CUDA"
            return [f"{key}: {name!r}, but CUDA is not available on this machine (torch {torch.__version__}, "
                    f"{built}); use 'auto' (the GPU when there is one) or 'cpu'"]
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            return [f"{key}: {name!r}, but this machine has {count} CUDA device(s) (cuda:0 to cuda:{count - 1})"]
    if device.type == "mps" and not torch.backends.mps.is_available():
        return [f"{key}: 'mps', but Apple's Metal backend is not available here; use 'auto' or 'cpu'"]
    return []


# ------------------------------------------------------------------------------------------ data

def _reachable(urls: Iterable[str], timeout: float = CONNECT_TIMEOUT) -> tuple[bool, str]:
    """Whether a TCP connection to any of the URLs' hosts opens; else the last error, in words."""
    reason = "no download address"
    for url in urls:
        parsed = urlparse(url)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            with socket.create_connection((parsed.hostname, port), timeout=timeout):
                return True, ""
        except OSError as error:
            reason = f"{parsed.hostname}: {error}"
    return False, reason


def _writable(folder: Path) -> bool:
    """Whether ``folder`` (or, when it does not exist yet, its nearest existing parent) can be written."""
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            return os.access(candidate, os.W_OK | os.X_OK)
    return False


def check_data(name: str, root: str | None, download: bool, key: str = "data",
               root_key: str | None = None) -> tuple[list[str], DataSource | None]:
    """Errors when data set ``name`` is neither under ``root`` nor downloadable; and where it will be read from.

    ``key`` prefixes the messages (``data`` -> ``data.root``, ``data.download``); ``root_key`` names the key
    that sets the root when it is not ``<key>.root``.
    """
    root_key = root_key or f"{key}.root"
    source = locate_dataset(name, root)
    if source is None or source.found:
        return [], source
    where = f"{name} is not under {source.folder} ({source.problem})"
    if not source.download_urls:
        return [f"{root_key}: {where}; point {root_key} at the data set's folder"], source
    if not download:
        return [f"{key}.download: {where} and {key}.download is false; set {key}.download = true, or put "
                f"torchvision's files for it under {root_key} (or $AUGLENS_DATA)"], source
    if not _writable(source.folder):
        return [f"{root_key}: {where}, and it cannot be downloaded there: {source.folder} is not writable; "
                f"set {root_key} to a writable folder"], source
    ok, reason = _reachable(source.download_urls)
    if not ok:
        return [f"{key}.download: {where}, and the download cannot start ({reason}); download it where the "
                f"internet is reachable and put the files under {root_key} (or $AUGLENS_DATA)"], source
    return [], source


# ------------------------------------------------------------------------------------------ model

def _factory(architecture: str) -> tuple[Any, list[str]]:
    from auglens.models import MODELS

    if ":" not in architecture:
        return (MODELS.get(architecture) if architecture in MODELS else None), []
    import importlib

    module_name, _, attribute = architecture.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attribute), []
    except ImportError as error:
        return None, [f"model.architecture: cannot import module {module_name!r} ({error}); expected "
                      "'package.module:factory' importable from this environment, or a registry name (auglens ls models)"]
    except AttributeError:
        return None, [f"model.architecture: module {module_name!r} has no {attribute!r}; expected "
                      "'package.module:factory'"]


def _check_params(architecture: str, factory: Any, params: dict[str, Any]) -> list[str]:
    """Parameter names against the factory's signature and values against its annotations."""
    target = factory.__init__ if isinstance(factory, type) else factory
    signature = inspect.signature(target)
    open_ended = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    accepted = {k for k, p in signature.parameters.items()
                if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and k != "self"}
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # unresolvable annotations in a user's module: check names only
        hints = {}
    errors: list[str] = []
    for key, value in params.items():
        if key in ("num_classes", "in_channels"):
            errors.append(f"model.params.{key}: set by auglens from the data set; remove it")
        elif key not in accepted and not open_ended:
            valid = sorted(accepted - {"num_classes", "in_channels"})
            errors.append(f"model.params.{key}: {architecture} has no parameter {key!r}; "
                          + (f"valid: {', '.join(valid)}" if valid else "it takes no extra parameters"))
        elif key in hints:
            coerce(value, hints[key], f"model.params.{key}", errors)
    return errors


def check_model(architecture: str, params: dict[str, Any], target_layer: str | None, num_classes: int,
                in_channels: int, side: int | None, target_key: str = "cam.target_layer",
                side_key: str = "model.input_size", found: dict[str, Any] | None = None) -> list[str]:
    """Errors from building the model on the meta device, resolving its CAM target layer and a forward pass.

    ``side`` is the model input's side in pixels (None: unknown, the forward pass is skipped). Building on
    the meta device allocates no memory, so this takes about a second even for large architectures; a model
    of at most a million parameters runs its forward pass on the CPU (see the comment below).
    ``found`` (optional) receives ``target_layer`` (its dotted name), ``feature_shape`` (its output) and
    ``parameters`` (the model's number of weights).
    """
    found = found if found is not None else {}
    from auglens.cam.layers import resolve_target_layer
    from auglens.models import build_model

    factory, errors = _factory(architecture)
    if factory is None:
        return errors  # an unknown registry name is reported by the config's own validation
    errors = _check_params(architecture, factory, params)
    if errors:
        return errors
    try:
        with torch.device("meta"):
            model = build_model(architecture, num_classes, in_channels, **params)
        if not isinstance(model, torch.nn.Module):
            return [f"model.architecture: {architecture} returned {type(model).__name__}, expected a torch.nn.Module"]
        # A pass on the meta device costs nothing per layer, but PyTorch runs meta tensors through Python
        # decompositions whose first use imports torch._dynamo and sympy: 1-2 s. A small model is built again
        # on the CPU instead (initialised in milliseconds) and runs its one image there in a fraction of that.
        found["parameters"] = sum(p.numel() for p in model.parameters())
        device = "cpu" if found["parameters"] <= _CPU_PASS_PARAMETERS else "meta"
        if device == "cpu" and side is not None:
            with torch.random.fork_rng(devices=[]):  # initialising draws from the global generator: leave it as it was
                model = build_model(architecture, num_classes, in_channels, **params)
    except Exception as error:  # a user's factory may raise anything; report it against the keys that feed it
        return [f"model.params: building {architecture} with {params or 'no extra parameters'} fails: "
                f"{type(error).__name__}: {error}"]
    try:
        layer = resolve_target_layer(model, target_layer)
    except (ValueError, TypeError) as error:
        return [f"{target_key}: {error}"]
    found["target_layer"] = next((name for name, module in model.named_modules() if module is layer), None)
    if side is None:
        return []
    captured: list[Any] = []
    handle = layer.register_forward_hook(lambda module, inputs, output: captured.append(output))
    shape = (1, in_channels, side, side)
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(shape, device=device))
    except Exception as error:
        return [f"{side_key}: a forward pass of {architecture} on {shape} inputs fails: "
                f"{type(error).__name__}: {error}"]
    finally:
        handle.remove()
    output = captured[0] if captured else None
    if not isinstance(output, torch.Tensor) or output.ndim != 4:
        got = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        name = target_layer or "the default target layer"
        return [f"{target_key}: {name!r} outputs {got}, not a (N, C, h, w) feature map a CAM can be computed "
                "on; choose a convolutional stage ('last_conv', or a name from model.named_modules())"]
    found["feature_shape"] = tuple(output.shape[1:])
    return []


def check_pretrained(architecture: str, params: dict[str, Any], setting: str | None, num_classes: int,
                     in_channels: int) -> list[str]:
    """Errors of a study's ``model.pretrained``: the file it names exists, holds a state dict, and fits the
    model built for the data (on the meta device) but for its classifier head."""
    from auglens.models import build_model
    from auglens.models.pretrained import (
        missing_file_message,
        pretrained_file,
        pretrained_problems,
        read_pretrained_state,
    )

    path = pretrained_file(setting, architecture)
    if path is None:
        return []
    if not path.is_file():
        return [missing_file_message(setting, architecture, path)]
    try:
        state = read_pretrained_state(path)
    except UserError as error:
        return [f"model.pretrained: {error}"]
    try:
        with torch.device("meta"):
            model = build_model(architecture, num_classes, in_channels, **params)
        problems = pretrained_problems(model, state)
    except Exception as error:  # a user's factory may raise anything; check_model reports the build itself
        return [f"model.pretrained: cannot match {path} with {architecture}: {type(error).__name__}: {error}"]
    return [f"model.pretrained: {path} does not fit {architecture} ({in_channels} channel(s), {num_classes} "
            f"classes): {problem}" for problem in problems]


# ------------------------------------------------------------------------------------------ whole configs

def _model_side(input_size: int | None, name: str, image_size: int | None, source: DataSource | None) -> int | None:
    """The model input's side: ``model.input_size``, else the images' (``data.image_size`` where the data set
    takes it, else the data set's native side); None when unknown (an image folder without image_size)."""
    from auglens.data import DATASETS

    if input_size:
        return input_size
    if image_size and name in DATASETS and "image_size" in DATASETS.parameters(name):
        return image_size
    return source.image_side if source is not None else None


def _extra_datasets(config: DistortionConfig) -> list[tuple[str, str, str | None, str]]:
    """(key, name, root, root key) of the distortion analyses' other data sets, for the analyses that run."""
    analyses = config.analyses
    root = config.data.root
    out = []
    if "interference" in analyses and config.interference.occluder_dataset:
        out.append(("interference.occluder_dataset", config.interference.occluder_dataset, root, "data.root"))
    if "occlusion" in analyses and config.occlusion.occluder_dataset:
        out.append(("occlusion.occluder_dataset", config.occlusion.occluder_dataset, root, "data.root"))
    if "interdataset" in analyses:
        partner_root = config.interdataset.partner_root or root
        key = "interdataset.partner_root" if config.interdataset.partner_root else "data.root"
        out += [(f"interdataset.partners[{i}]", name, partner_root, key)
                for i, name in enumerate(config.interdataset.partners)]
    if "simplicity" in analyses:
        s = config.simplicity
        out.append(("simplicity.simple", s.simple, s.simple_root or root,
                    "simplicity.simple_root" if s.simple_root else "data.root"))
        out.append(("simplicity.complex", s.complex, s.complex_root or root,
                    "simplicity.complex_root" if s.complex_root else "data.root"))
    return out


def preflight(config: Config | DistortionConfig, source_name: str | None = None,
              check_availability: bool = True) -> Preflight:
    """Run every check on a study or distortion config; raises :class:`ConfigError` listing every problem.

    Args:
        config: a :class:`~auglens.config.Config` or :class:`~auglens.distortion.config.DistortionConfig`.
        source_name: shown in the error's first line (the config file).
        check_availability: check that the device exists here (False for a Ray cluster's head node,
            where the workers, not this machine, run the jobs).
    """
    # Not an isinstance check on DistortionConfig: importing the distortion package imports the whole training
    # stack (seconds), which `auglens validate` on a study config never needs.
    distortion = not isinstance(config, Config)
    errors = check_device(config.runtime.device, available=check_availability)
    if config.runtime.tensorboard:
        from auglens.tracking import tensorboard_available

        if not tensorboard_available():
            errors.append('runtime.tensorboard: true, but the tensorboard package is not installed; '
                          'pip install "auglens[tensorboard]", or set runtime.tensorboard = false')
    data = config.data
    data_errors, source = check_data(data.name, data.root, data.download)
    errors += data_errors
    seen = {(data.name, data.root)}
    for key, name, root, root_key in (_extra_datasets(config) if distortion else []):
        if (name, root) in seen:
            continue
        seen.add((name, root))
        more, _ = check_data(name, root, data.download, key="data", root_key=root_key)
        errors += [f"{key} ({name}): {e}" for e in more]
    num_classes = (source.num_classes if source is not None else None) or 10
    in_channels = (source.in_channels if source is not None else None) or 3
    if distortion:  # the CAMs of the distortion analyses are occlusion's saliency masks
        target_layer, target_key = config.occlusion.target_layer, "occlusion.target_layer"
    else:
        target_layer, target_key = config.cam.target_layer, "cam.target_layer"
    side_key = "model.input_size" if config.model.input_size else "data.image_size"
    found: dict[str, Any] = {}
    errors += check_model(config.model.architecture, config.model.params, target_layer, num_classes, in_channels,
                          _model_side(config.model.input_size, data.name, data.image_size, source), target_key,
                          side_key, found)
    if not distortion and not errors:
        errors += check_pretrained(config.model.architecture, config.model.params, config.model.pretrained,
                                   num_classes, in_channels)
    if errors:
        raise ConfigError(errors, source_name)
    return Preflight(source, found.get("target_layer"), found.get("feature_shape"))

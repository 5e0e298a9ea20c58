"""Entry points: CAMs for a batch of images, chunked, with the model's state left as it was found."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch import Tensor

from auglens.cam.base import CAM_METHODS, BaseCAM
from auglens.cam.layers import resolve_target_layer
from auglens.cam.scaling import upsample_maps

__all__ = ["CamResult", "compute_lowres", "compute", "build_method"]


@dataclass
class CamResult:
    """CAMs at the target layer's native resolution.

    Attributes:
        maps: ``(N, h, w)`` float32, after ReLU and per-image min-max normalisation, in ``[0, 1)``.
        logits: ``(N, num_classes)`` float32, the model output on the images (eval mode).
        targets: ``(N,)`` int64, the classes the maps were computed for.
    """

    maps: Tensor
    logits: Tensor
    targets: Tensor


def build_method(method: str | BaseCAM, **method_kwargs) -> BaseCAM:
    """A method instance from its registry name and options (or an instance, returned as is)."""
    if isinstance(method, BaseCAM):
        if method_kwargs:
            raise TypeError(f"options {sorted(method_kwargs)} given with a method instance; set them on it")
        return method
    factory = CAM_METHODS.get(method)  # unknown name -> error with did-you-mean and the valid names
    accepted = CAM_METHODS.parameters(method)
    unknown = sorted(set(method_kwargs) - set(accepted))
    if unknown:
        raise TypeError(
            f"CAM method {method!r} got unknown option(s) {', '.join(unknown)}; "
            f"valid options: {', '.join(accepted) or '(none)'}"
        )
    return factory(**method_kwargs)


def _as_targets(targets: Tensor | Sequence[int] | None, n: int, device: torch.device) -> Tensor | None:
    if targets is None:
        return None
    t = torch.as_tensor(targets)
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"targets must be integer class indices; got dtype {t.dtype}")
    if t.shape != (n,):
        raise ValueError(f"targets must have shape ({n},), one class per image; got {tuple(t.shape)}")
    return t.to(device=device, dtype=torch.int64)


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    # Each module's flag is restored individually: model.train(previous) would also flip submodules that
    # were deliberately in another mode (e.g. frozen BatchNorm kept in eval inside a training model).
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


def compute_lowres(
    model: nn.Module,
    images: Tensor,
    method: str | BaseCAM = "gradcam",
    target_layer: nn.Module | str | None = None,
    targets: Tensor | Sequence[int] | None = None,
    batch_size: int = 64,
    **method_kwargs,
) -> CamResult:
    """CAMs at the target layer's resolution: ``images (N, C, H, W) -> maps (N, h, w)``.

    Args:
        model: classifier returning logits ``(N, num_classes)``; must live on ``images``' device.
        images: float images, already normalised for the model.
        method: a name in ``CAM_METHODS`` (``gradcam``, ``gradcam++``, ``hirescam``, ``xgradcam``,
            ``layercam``, ``eigencam``, ``scorecam``) or a method instance.
        target_layer: see :func:`resolve_target_layer`.
        targets: ``(N,)`` class per image; default: the predicted class (argmax of the logits).
        batch_size: images per forward (+ backward) pass; bounds memory.
        **method_kwargs: the method's options (e.g. ``score_batch_size`` for Score-CAM).

    Returns:
        :class:`CamResult` on ``images``' device.

    The model is put in eval mode for the computation and every module's mode is restored afterwards;
    parameters' ``requires_grad`` and ``.grad`` are left untouched; hooks are removed even on error.
    """
    cam = build_method(method, **method_kwargs)
    layer = resolve_target_layer(model, target_layer)
    if not isinstance(images, Tensor) or images.ndim != 4 or not images.is_floating_point():
        if isinstance(images, Tensor):
            got = f"{images.dtype} tensor of shape {tuple(images.shape)}"
        else:
            got = type(images).__name__
        raise ValueError(f"images must be a float tensor of shape (N, C, H, W); got {got}")
    n = images.shape[0]
    if n == 0:
        raise ValueError("images is an empty batch (N = 0)")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
    targets = _as_targets(targets, n, images.device)

    maps, logits, chosen = [], [], []
    with _eval_mode(model):
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            chunk_targets = None if targets is None else targets[start:stop]
            m, lg, t = cam(model, layer, images[start:stop], chunk_targets)
            maps.append(m)
            logits.append(lg)
            chosen.append(t)
    return CamResult(maps=torch.cat(maps), logits=torch.cat(logits), targets=torch.cat(chosen))


def compute(
    model: nn.Module,
    images: Tensor,
    method: str | BaseCAM = "gradcam",
    target_layer: nn.Module | str | None = None,
    targets: Tensor | Sequence[int] | None = None,
    batch_size: int = 64,
    **method_kwargs,
) -> Tensor:
    """CAMs at image resolution: ``images (N, C, H, W) -> (N, H, W)`` float32 in ``[0, 1)``.

    ``upsample_maps(compute_lowres(...).maps, images.shape[-2:])``; equal to pytorch-grad-cam's output for
    the same method, model, layer and targets (to ~1e-6). Arguments as in :func:`compute_lowres`.
    """
    result = compute_lowres(model, images, method, target_layer, targets, batch_size, **method_kwargs)
    return upsample_maps(result.maps, tuple(images.shape[-2:]))

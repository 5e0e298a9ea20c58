"""The shared machinery of every CAM method: capture the target layer, pick targets, combine, ReLU, normalise.

A method is a subclass of :class:`BaseCAM` that overrides one small hook:

* :meth:`BaseCAM.channel_weights` — one weight per channel, ``(N, C, h, w) -> (N, C)``; the map is then
  the weighted sum of the activation channels (Grad-CAM, Grad-CAM++, XGrad-CAM, Score-CAM), or
* :meth:`BaseCAM.combine` — the whole map, ``(N, C, h, w) -> (N, h, w)``, for methods that do not factor
  into channel weights (HiResCAM, LayerCAM, EigenCAM).

Everything else — hooks, the forward (and backward) pass, choosing the target classes, the ReLU and the
per-image min-max normalisation — lives here, once. The numerics follow pytorch-grad-cam (the reference the
tests compare against): ReLU, then ``x - min`` and ``x / (1e-7 + max)`` per image.

One reference behaviour is deliberately not reproduced. When the model overwrites the target layer's
output in place afterwards (DenseNet's ``F.relu(features, inplace=True)`` after ``features.norm5``,
``ReLU(inplace=True)`` after a conv, ``out += identity`` after a ResNet ``bn2``), pytorch-grad-cam on CPU
keeps an alias of the output, so it pairs the *overwritten* activation with the gradient of the original
one (on CUDA its ``.cpu()`` copy avoids this). We always use the layer's real output, on every device:
equal to pytorch-grad-cam on CUDA and on out-of-place models; on DenseNet-121 at ``features.norm5`` on CPU
the two differ by up to ~0.15.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn as nn
from torch import Tensor

from auglens.registry import Registry

__all__ = ["CAM_METHODS", "BaseCAM", "CamContext", "compute_dtype", "minmax_normalise", "NORMALISE_EPS"]

#: Every CAM method, by name. Each entry is a :class:`BaseCAM` subclass; its ``__init__`` keywords are the
#: method's options (``CAM_METHODS.build("scorecam", score_batch_size=64)``).
CAM_METHODS: Registry[BaseCAM] = Registry("CAM method")

#: Added to the maximum before dividing, as pytorch-grad-cam's ``scale_cam_image`` does, so an all-zero map
#: stays all zero instead of becoming NaN.
NORMALISE_EPS = 1e-7


def minmax_normalise(maps: Tensor) -> Tensor:
    """Per-map ``x - min`` then ``x / (1e-7 + max)``: ``(N, h, w) -> (N, h, w)``, values in ``[0, 1)``.

    The maximum is taken *after* subtracting the minimum and the epsilon is added to it (not to the
    range), in this order, because that is what pytorch-grad-cam does and its output is our reference:
    on low-contrast maps a different order shifts values by ~1e-4.
    """
    maps = maps - maps.amin(dim=(-2, -1), keepdim=True)
    return maps / (NORMALISE_EPS + maps.amax(dim=(-2, -1), keepdim=True))


@dataclass
class CamContext:
    """What a method may need besides the activations and gradients (Score-CAM re-runs the model).

    Attributes:
        model: the classifier, in eval mode.
        images: ``(N, C_in, H, W)`` input chunk, on the model's device.
        targets: ``(N,)`` int64 class indices the maps are computed for.
        logits: ``(N, num_classes)`` model output on ``images`` (detached).
    """

    model: nn.Module
    images: Tensor
    targets: Tensor
    logits: Tensor


class _LayerCapture:
    """Forward hook that records the target layer's output tensor during one forward pass."""

    def __init__(self, layer: nn.Module):
        self.layer = layer
        self.outputs: list[Tensor] = []

    def hook(self, module: nn.Module, inputs: tuple, output: object) -> Tensor:
        if not isinstance(output, Tensor):
            raise TypeError(
                f"the CAM target layer {type(module).__name__} must output a Tensor (N, C, h, w); "
                f"got {type(output).__name__}"
            )
        self.outputs.append(output)
        # Hand a copy downstream and keep the original: models often overwrite a layer's output in place
        # (ReLU(inplace=True) after a conv or BN, `out += identity` in ResNet blocks, DenseNet's
        # F.relu(features, inplace=True)). Without the copy our activation would silently become the
        # post-ReLU value and autograd would differentiate w.r.t. the overwritten tensor.
        return output.clone()

    def activation(self) -> Tensor:
        if len(self.outputs) != 1:
            if not self.outputs:
                raise RuntimeError(
                    f"the CAM target layer ({type(self.layer).__name__}) did not run during the forward pass; "
                    "pass a layer that the model's forward() actually calls"
                )
            raise RuntimeError(
                f"the CAM target layer ({type(self.layer).__name__}) ran {len(self.outputs)} times in one "
                "forward pass; a module reused at several depths gives no single activation map, pass a "
                "layer that runs once"
            )
        act = self.outputs[0]
        if act.ndim != 4:
            raise ValueError(
                f"the CAM target layer ({type(self.layer).__name__}) must output (N, C, h, w); "
                f"got shape {tuple(act.shape)}"
            )
        return act


@contextmanager
def _capture(layer: nn.Module) -> Iterator[_LayerCapture]:
    capture = _LayerCapture(layer)
    handle = layer.register_forward_hook(capture.hook)
    try:
        yield capture
    finally:
        handle.remove()


def _check_logits(logits: object) -> Tensor:
    if not isinstance(logits, Tensor) or logits.ndim != 2:
        got = f"shape {tuple(logits.shape)}" if isinstance(logits, Tensor) else type(logits).__name__
        raise TypeError(f"the model must return logits of shape (N, num_classes); got {got}")
    return logits


def _resolve_targets(logits: Tensor, targets: Tensor | None) -> Tensor:
    """Explicit targets, validated against the logits, or the predicted classes: ``-> (N,)`` int64."""
    if targets is None:
        return logits.detach().argmax(dim=1)
    num_classes = logits.shape[1]
    if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= num_classes):
        raise ValueError(
            f"targets must be class indices in [0, {num_classes}); got values in "
            f"[{int(targets.min())}, {int(targets.max())}]"
        )
    return targets


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype CAM arithmetic runs in for activations of ``dtype``: float64 stays, anything else is float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


class BaseCAM:
    """Base class of all CAM methods; subclasses override :meth:`channel_weights` or :meth:`combine`.

    A method instance holds only its options, so one instance can be reused across models and batches.
    """

    #: Whether the method needs d(target logit)/d(activation). If False, no backward pass is run.
    uses_gradients: ClassVar[bool] = True

    def channel_weights(self, activations: Tensor, gradients: Tensor | None, context: CamContext) -> Tensor:
        """One weight per channel: ``(N, C, h, w) -> (N, C)``."""
        raise NotImplementedError(f"{type(self).__name__} must override channel_weights() or combine()")

    def combine(self, activations: Tensor, gradients: Tensor | None, context: CamContext) -> Tensor:
        """The raw map before ReLU: ``(N, C, h, w) -> (N, h, w)``. Default: channel-weighted sum."""
        weights = self.channel_weights(activations, gradients, context)
        return torch.einsum("nc,nchw->nhw", weights, activations)

    def __call__(self, model: nn.Module, layer: nn.Module, images: Tensor,
                 targets: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Maps for one chunk: ``images (N, C_in, H, W) -> (maps (N, h, w), logits (N, K), targets (N,))``.

        ``maps`` are ReLU'd and min-max normalised per image at the layer's resolution, computed in the
        activations' precision (float64 for a float64 model, else float32, also under autocast) and returned
        as float32. The model
        must already be in the mode the caller wants (``compute_lowres`` puts it in eval). One forward pass,
        plus one backward pass to the target layer only for gradient methods.
        """
        gradients = None
        if self.uses_gradients:
            with _capture(layer) as capture, torch.enable_grad():
                # The input requires grad so the activation is differentiable even when every parameter is
                # frozen; we never touch the parameters' requires_grad flags.
                inputs = images.detach().requires_grad_(True)
                logits = _check_logits(model(inputs))
                activations = capture.activation()
                targets = _resolve_targets(logits, targets)
                # Summing over the batch is safe: image i's logit depends only on image i (eval mode), so
                # each image gets its own gradient. autograd.grad w.r.t. the activation stops the backward
                # there and leaves the parameters' .grad untouched.
                score = logits.gather(1, targets[:, None]).sum()
                (gradients,) = torch.autograd.grad(score, activations)
        else:
            with _capture(layer) as capture, torch.no_grad():
                logits = _check_logits(model(images))
                activations = capture.activation()
            targets = _resolve_targets(logits, targets)

        # Autocast is off from here on: it would run torch.einsum (and the Eigen-CAM projection) in half
        # precision again, whatever dtype the operands are widened to (~5e-3 on a bfloat16 autocast CPU).
        # Score-CAM's masked forward passes therefore run in the model's own precision.
        with torch.no_grad(), torch.autocast(activations.device.type, enabled=False):
            # In the activations' own precision (float64 in, float64 arithmetic): the channel sum cancels
            # heavily on wide layers, so rounding to float32 first costs ~1e-4 on EfficientNet-B0's 1,280
            # channels. Half-precision activations (autocast) are widened to float32.
            dtype = compute_dtype(activations.dtype)
            activations = activations.detach().to(dtype)
            if gradients is not None:
                gradients = gradients.to(dtype)
            context = CamContext(model=model, images=images.detach(), targets=targets, logits=logits.detach())
            cam = self.combine(activations, gradients, context)
            maps = minmax_normalise(cam.clamp_min(0))
        return maps.float(), logits.detach().float(), targets

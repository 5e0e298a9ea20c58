"""Faithfulness of a model's CAMs to the model itself: does removing what a map ranks high change the prediction?

Three perturbation measures, each scoring one map of one model on one image by the probability the model gives
the map's class (the CAM set's ``targets``: the predicted class, or the label with ``cam.target = "label"``)
on copies of the image in which pixels are replaced, in the order the map ranks them:

* **deletion** (Petsiuk et al., RISE, BMVC 2018): the ``k/steps`` share of pixels ranked highest is replaced
  by the substitute, ``k = 0 .. steps``; the score is the area under the probability curve over the share
  removed (trapezoids on ``[0, 1]``). Lower = more faithful: removing what the map points at lowers the
  probability quickly.
* **insertion** (same paper): the mirror image, starting from the substitute and revealing the highest-ranked
  pixels first. Higher = more faithful.
* **road** (Rong et al., "A Consistent and Efficient Evaluation Strategy for Attribution Methods", ICML 2022):
  remove-and-debias. The removed pixels are not set to a constant, whose shape would itself tell the model
  where the removed pixels were, but imputed from their neighbours by a noisy linear imputation: each removed
  pixel equals the weighted mean of its eight neighbours (weights 1/6 for the four edge neighbours, 1/12 for
  the diagonals; a sparse linear system per image and channel), plus Gaussian noise. Columns:
  ``road_morf`` (most relevant first) and ``road_lerf`` (least relevant first): the mean over ``percentiles``
  of the probability change (perturbed minus original) when that share of pixels is removed;
  ``road_combined = (road_lerf - road_morf) / 2`` (pytorch-grad-cam's ``ROADCombined``). Higher combined =
  more faithful.

Substitutes of deletion and insertion (``baseline``): ``"mean"``, the training images' mean colour (0 in the
normalised model input), or ``"blur"``, a Gaussian blur of the image (RISE's insertion substitute) whose standard
deviation is ``blur_sigma`` times the input's side (default 5/224: RISE's 5 px at 224 px). One substitute for
both curves, so that they are two readings of one perturbation (auglens's choice; RISE pairs deletion with
zeros and insertion with a blur).

Deliberate details, each auglens's choice where a paper leaves it open:

* Pixels are ranked by the map upsampled to the model input (as the CAM metrics do); ties, e.g. the zeros of a
  Grad-CAM after its ReLU, are broken by pixel index in row-major order, so the curves are deterministic.
  Step ``k`` removes ``round(k * P / steps)`` of the ``P`` pixels.
* ROAD removes pixels by threshold exactly as pytorch-grad-cam's ``RemoveMostRelevantFirst`` does: at a
  removal share ``q`` %, most relevant first removes the pixels whose map value is at least the
  ``(100 - q)``-th percentile of the map (numpy's linear interpolation), least relevant first those whose
  ``1 - map`` is. So ties are removed together, and a constant map removes every pixel; an image with every
  pixel removed has nothing to impute from and gets the substitute ``"mean"`` (0) plus the noise.
* The linear system is solved by conjugate gradients in float64 (the system is symmetric positive definite
  whenever a pixel is kept: each connected group of removed pixels touches a kept one) to a relative residual
  of 1e-10, where pytorch-grad-cam factorises it with scipy's sparse solver; both give the system's solution.
* The imputation noise is drawn per image from a generator seeded with ``(seed, image index)``, so every model
  sees the same noise on the same image, whatever the batch it is scored in.

Every function is batched over images: ``images (N, C, H, W)``, ``maps (N, H, W)``, ``targets (N,)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from auglens.registry import Registry

__all__ = ["BASELINES", "DEFAULT_BLUR_SIGMA", "FAITHFULNESS_MEASURES", "FaithfulnessMeasure",
           "ROAD_NEIGHBOUR_WEIGHTS", "curve_auc", "deletion_curve", "faithfulness_columns",
           "faithfulness_scores", "gaussian_blur", "insertion_curve", "noisy_linear_imputation", "pixel_ranks",
           "road_noise", "road_removed", "road_scores", "substitute_images", "target_probability"]

Logits = Callable[[Tensor], Tensor]  # model: (N, C, H, W) -> (N, K) logits

#: Substitutes of the deletion and insertion curves.
BASELINES = ("mean", "blur")
#: Standard deviation of the blur substitute as a share of the input side: RISE's 5 px at 224 px.
DEFAULT_BLUR_SIGMA = 5 / 224
#: ROAD's neighbour weights (Rong et al. 2022): edge neighbours 1/6, diagonal neighbours 1/12, as a 3x3 kernel.
ROAD_NEIGHBOUR_WEIGHTS = ((1 / 12, 1 / 6, 1 / 12), (1 / 6, 0.0, 1 / 6), (1 / 12, 1 / 6, 1 / 12))


def target_probability(model: Logits, images: Tensor, targets: Tensor) -> Tensor:
    """Softmax probability of ``targets`` under ``model``: ``(N, C, H, W), (N,) -> (N,)`` float32."""
    with torch.no_grad():
        logits = model(images)
    return torch.softmax(logits.float(), dim=1).gather(1, targets[:, None].to(logits.device))[:, 0]


# ------------------------------------------------------------------------------------------ deletion, insertion

def pixel_ranks(maps: Tensor) -> Tensor:
    """Each pixel's rank by map value, highest first, ties by pixel index: ``(N, H, W) -> (N, H*W)`` int64.

    ``ranks[n, p] < k`` selects the ``k`` pixels of image ``n`` the map ranks highest.
    """
    flat = maps.reshape(maps.shape[0], -1)
    order = torch.sort(flat, dim=1, descending=True, stable=True).indices
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(flat.shape[1], device=flat.device).expand_as(order))
    return ranks


def _step_counts(pixels: int, steps: int) -> list[int]:
    """Pixels removed at each step: ``round(k * pixels / steps)``, halves up, in integers (exact for any size)."""
    if steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    return [(2 * k * pixels + steps) // (2 * steps) for k in range(steps + 1)]


def _curve(model: Logits, start: Tensor, end: Tensor, maps: Tensor, targets: Tensor, steps: int) -> Tensor:
    """Probability of ``targets`` as the highest-ranked pixels of ``start`` are replaced by ``end``'s, step by
    step: ``(N, steps + 1)``."""
    ranks = pixel_ranks(maps).reshape(maps.shape)[:, None]  # (N, 1, H, W), broadcast over channels
    values = []
    for count in _step_counts(ranks[0].numel(), steps):
        values.append(target_probability(model, torch.where(ranks < count, end, start), targets))
    return torch.stack(values, dim=1)


def deletion_curve(model: Logits, images: Tensor, maps: Tensor, targets: Tensor, substitute: Tensor,
                   steps: int) -> Tensor:
    """Deletion (RISE): probability of ``targets`` as the top ``k/steps`` of pixels by ``maps`` are replaced by
    ``substitute``, ``k = 0 .. steps``: ``(N, C, H, W), (N, H, W), (N,), (N, C, H, W) -> (N, steps + 1)``."""
    return _curve(model, images, substitute, maps, targets, steps)


def insertion_curve(model: Logits, images: Tensor, maps: Tensor, targets: Tensor, substitute: Tensor,
                    steps: int) -> Tensor:
    """Insertion (RISE): probability of ``targets`` as the top ``k/steps`` of pixels by ``maps`` are revealed on
    ``substitute``, ``k = 0 .. steps``; shapes as :func:`deletion_curve`."""
    return _curve(model, substitute, images, maps, targets, steps)


def curve_auc(curves: Tensor) -> Tensor:
    """Area under curves sampled at ``k/S``, ``k = 0 .. S``, by trapezoids on ``[0, 1]``: ``(N, S + 1) -> (N,)``."""
    steps = curves.shape[1] - 1
    if steps < 1:
        raise ValueError(f"a curve needs at least two points, got {curves.shape[1]}")
    return (curves.sum(dim=1) - (curves[:, 0] + curves[:, -1]) / 2) / steps


def gaussian_blur(images: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur, kernel radius ``ceil(3 sigma)`` (at most the image side - 1), reflected borders:
    ``(N, C, H, W) -> (N, C, H, W)``. ``sigma`` in pixels; 0 returns the images."""
    if sigma <= 0:
        return images
    n, c, h, w = images.shape
    radius = max(1, min(math.ceil(3 * sigma), min(h, w) - 1))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64, device=images.device)
    kernel = torch.exp(-offsets**2 / (2 * sigma**2))
    kernel = (kernel / kernel.sum()).to(images.dtype)
    x = images.reshape(n * c, 1, h, w)
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1))
    x = F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), kernel.view(1, 1, -1, 1))
    return x.reshape(n, c, h, w)


def substitute_images(images: Tensor, baseline: str, blur_sigma: float = DEFAULT_BLUR_SIGMA) -> Tensor:
    """What deletion puts in and insertion starts from, for normalised model inputs ``(N, C, H, W)``: ``"mean"``
    (zeros: the training mean after normalisation) or ``"blur"`` (sigma ``blur_sigma`` x the image side)."""
    if baseline == "mean":
        return torch.zeros_like(images)
    if baseline == "blur":
        return gaussian_blur(images, blur_sigma * max(images.shape[-2:]))
    raise ValueError(f"baseline must be one of {', '.join(BASELINES)}; got {baseline!r}")


# ------------------------------------------------------------------------------------------ ROAD

def road_removed(maps: Tensor, shares: Sequence[float], most_relevant_first: bool) -> Tensor:
    """Pixels ROAD removes at each share (in %): ``(N, H, W) -> (N, Q, H, W)`` bool.

    Most relevant first: map value >= its ``(100 - q)``-th percentile; least relevant first: ``1 - map`` >= its
    ``(100 - q)``-th percentile (pytorch-grad-cam's ``RemoveMostRelevantFirst(100 - q)`` and
    ``RemoveLeastRelevantFirst(100 - q)``, which keep ``mask < percentile``).
    """
    scores = maps if most_relevant_first else 1 - maps
    flat = scores.reshape(scores.shape[0], -1).double()  # numpy's percentile interpolates in float64
    levels = torch.tensor([(100 - q) / 100 for q in shares], dtype=torch.float64, device=maps.device)
    thresholds = torch.quantile(flat, levels, dim=1, interpolation="linear").T  # (N, Q)
    return scores[:, None] >= thresholds[:, :, None, None].to(scores.dtype)


def _neighbour_sum(x: Tensor) -> Tensor:
    """Weighted sum of each pixel's in-image neighbours (ROAD's weights): ``(M, H, W) -> (M, H, W)``.

    Written as eight shifted adds rather than a convolution: CPU convolutions in float64 have no fast kernel,
    and this is the inner loop of the imputation's solver."""
    p = F.pad(x, (1, 1, 1, 1))  # zero padding: neighbours outside the image count nothing
    (dd, de, _), _, _ = ROAD_NEIGHBOUR_WEIGHTS
    edges = p[:, :-2, 1:-1] + p[:, 2:, 1:-1] + p[:, 1:-1, :-2] + p[:, 1:-1, 2:]
    diagonals = p[:, :-2, :-2] + p[:, :-2, 2:] + p[:, 2:, :-2] + p[:, 2:, 2:]
    return de * edges + dd * diagonals


def noisy_linear_imputation(images: Tensor, removed: Tensor, noise: Tensor | None = None, tol: float = 1e-10,
                            max_iter: int | None = None) -> Tensor:
    """ROAD's imputation: ``removed`` pixels replaced by the solution of the linear system in which each equals
    the weighted mean of its in-image neighbours (kept neighbours fixed), plus ``noise`` there.

    Shapes: ``images (N, C, H, W)``, ``removed (N, H, W)`` bool, ``noise (N, C, H, W)`` or None -> ``(N, C, H, W)``
    in ``images``' dtype. Solved per image and channel by conjugate gradients in float64, to a residual of
    ``tol`` times the right-hand side's norm (``max_iter`` default: 20 x (H + W), far above what a hole spanning
    the image needs).
    """
    n, c, h, w = images.shape
    if removed.shape != (n, h, w):
        raise ValueError(f"removed must be (N, H, W) = {(n, h, w)}; got {tuple(removed.shape)}")
    x_known = images.double().reshape(n * c, h, w)
    unknown = removed.double().repeat_interleave(c, dim=0)  # (N*C, H, W), 1 where imputed
    known = 1 - unknown
    # The system M v = b on the removed pixels: M v = u (s v - W(u v)), s = the in-image neighbour weight sum,
    # b = u W(known pixels). M is the negated system of pytorch-grad-cam's NoisyLinearImputer, symmetric
    # positive definite on the removed pixels when some pixel is kept.
    degree = _neighbour_sum(torch.ones_like(x_known[:1]))

    def apply(v: Tensor) -> Tensor:
        return unknown * (degree * v - _neighbour_sum(unknown * v))

    b = unknown * _neighbour_sum(known * x_known)
    solution = torch.zeros_like(b)
    residual = b.clone()
    direction = residual.clone()
    rr = (residual * residual).sum(dim=(1, 2))
    limit = (tol**2) * rr
    for _ in range(max_iter or 20 * (h + w)):
        active = rr > limit
        if not bool(active.any()):
            break
        product = apply(direction)
        curvature = (direction * product).sum(dim=(1, 2))
        alpha = torch.where(active, rr / torch.where(active, curvature, 1.0), 0.0)[:, None, None]
        solution = solution + alpha * direction
        residual = residual - alpha * product
        rr_next = (residual * residual).sum(dim=(1, 2))
        beta = torch.where(active, rr_next / torch.where(active, rr, 1.0), 0.0)[:, None, None]
        direction = residual + beta * direction
        rr = torch.where(active, rr_next, rr)
    filled = known * x_known + unknown * solution
    if noise is not None:
        filled = filled + unknown * noise.double().reshape(n * c, h, w)
    return filled.reshape(n, c, h, w).to(images.dtype)


def road_noise(image_indices: Sequence[int], shape: tuple[int, ...], seed: int, count: int) -> Tensor:
    """Standard normal noise of ``count`` imputations per image: ``(N, count, *shape)`` float32 on the CPU, image
    ``i``'s drawn from a generator seeded with ``(seed, i)`` so that it depends on nothing else."""
    noise = torch.empty(len(image_indices), count, *shape)
    for row, index in enumerate(image_indices):
        generator = torch.Generator().manual_seed((int(seed) * 1_000_003 + int(index)) % (2**63))
        noise[row] = torch.randn(count, *shape, generator=generator)
    return noise


#: Pixel values (float64) one conjugate-gradient solve holds per vector (it keeps five): 2^22 x 8 B = 32 MiB each.
IMPUTATION_CHUNK_VALUES = 1 << 22


def road_scores(model: Logits, images: Tensor, maps: Tensor, targets: Tensor, shares: Sequence[float],
                noise: Tensor | None = None, noise_std: float = 0.01) -> dict[str, Tensor]:
    """ROAD (Rong et al. 2022): mean probability change of ``targets`` over ``shares`` (in %) of pixels removed
    and imputed, most relevant first and least relevant first, and their combination.

    ``noise`` ``(N, 2 * Q, C, H, W)``: standard normal draws (:func:`road_noise`; the first Q for most relevant
    first), scaled by ``noise_std`` (in units of the normalised input); None: no noise. Returns ``road_morf``,
    ``road_lerf``, ``road_combined``, each ``(N,)`` float32. Every imputation of the batch is solved together,
    in chunks of at most ``IMPUTATION_CHUNK_VALUES`` pixel values (each system stops on its own residual, so a
    system's solution does not depend on the others in its chunk).
    """
    shares = list(shares)
    q = len(shares)
    n, c, h, w = images.shape
    before = target_probability(model, images, targets)
    # (N, 2Q, H, W): most relevant first, then least relevant first; image-major, so row i * 2Q + j is image i.
    removed = torch.cat([road_removed(maps, shares, True), road_removed(maps, shares, False)], dim=1)
    removed = removed.reshape(n * 2 * q, h, w)
    draws = None if noise is None else (noise_std * noise.to(images.device)).reshape(n * 2 * q, c, h, w)
    per_solve = max(1, IMPUTATION_CHUNK_VALUES // (c * h * w))
    probabilities = []
    for start in range(0, n * 2 * q, per_solve):
        rows = torch.arange(start, min(start + per_solve, n * 2 * q), device=images.device)
        source = images[rows // (2 * q)]
        imputed = noisy_linear_imputation(source, removed[rows], None if draws is None else draws[rows])
        probabilities.append(target_probability(model, imputed, targets[(rows // (2 * q)).to(targets.device)]))
    change = torch.cat(probabilities).reshape(n, 2, q) - before[:, None, None]
    morf, lerf = change.mean(dim=2).unbind(dim=1)
    return {"road_morf": morf, "road_lerf": lerf, "road_combined": (lerf - morf) / 2}


# ------------------------------------------------------------------------------------------ registry

@dataclass(frozen=True)
class FaithfulnessMeasure:
    """One faithfulness measure: its result columns and which direction of each is the more faithful."""

    name: str
    columns: tuple[str, ...]
    higher_is_better: tuple[bool, ...]  # per column: True when a higher value means a more faithful map
    description: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "__doc__", self.description)  # what Registry.describe (auglens ls) reads

    def __call__(self) -> FaithfulnessMeasure:  # the registry holds factories; a measure is its own
        return self


FAITHFULNESS_MEASURES: Registry[FaithfulnessMeasure] = Registry("faithfulness measure")
for _measure in (
    FaithfulnessMeasure("deletion", ("deletion",), (False,),
                        "Deletion AUC (RISE): probability of the CAM's class as its top pixels are replaced; lower = more faithful"),
    FaithfulnessMeasure("insertion", ("insertion",), (True,),
                        "Insertion AUC (RISE): probability of the CAM's class as its top pixels are revealed; higher = more faithful"),
    FaithfulnessMeasure("road", ("road_morf", "road_lerf", "road_combined"), (False, True, True),
                        "ROAD (Rong et al. 2022): probability change with pixels removed and imputed from neighbours"),
):
    FAITHFULNESS_MEASURES.register(_measure.name)(_measure)


def faithfulness_columns(measures: Sequence[str]) -> dict[str, bool]:
    """``{column: higher_is_better}`` of ``measures``, in order."""
    columns = {}
    for name in measures:
        measure = FAITHFULNESS_MEASURES.build(name)
        columns.update(zip(measure.columns, measure.higher_is_better))
    return columns


def faithfulness_scores(model: Logits, images: Tensor, maps: Tensor, targets: Tensor, measures: Sequence[str],
                        steps: int = 20, baseline: str = "mean", blur_sigma: float = DEFAULT_BLUR_SIGMA,
                        percentiles: Sequence[float] = (10, 20, 30, 40, 50, 60, 70, 80, 90),
                        noise: Tensor | None = None, noise_std: float = 0.01) -> dict[str, Tensor]:
    """Every column of ``measures`` for a batch: normalised inputs ``images (N, C, H, W)``, ``maps (N, H, W)`` at
    the input's size, ``targets (N,)`` -> ``{column: (N,)}`` float32. ``noise``: ROAD's (:func:`road_scores`)."""
    out: dict[str, Tensor] = {}
    wanted = set(measures)
    unknown = sorted(name for name in wanted if name not in FAITHFULNESS_MEASURES)
    if unknown:
        FAITHFULNESS_MEASURES.get(unknown[0])  # raises, listing the valid names
    if wanted & {"deletion", "insertion"}:
        substitute = substitute_images(images, baseline, blur_sigma)
        if "deletion" in wanted:
            out["deletion"] = curve_auc(deletion_curve(model, images, maps, targets, substitute, steps))
        if "insertion" in wanted:
            out["insertion"] = curve_auc(insertion_curve(model, images, maps, targets, substitute, steps))
    if "road" in wanted:
        out.update(road_scores(model, images, maps, targets, percentiles, noise, noise_std))
    return {column: out[column] for column in faithfulness_columns(measures)}

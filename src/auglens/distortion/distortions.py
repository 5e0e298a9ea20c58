"""Test-time distortions of the distortion paper (Marcu & Prügel-Bennett, ICML 2022), as pure batched functions.

Every function takes float images ``(N, C, H, W)`` in [0, 1] at the data set's native resolution and
per-sample int64 keys ``(N,)`` (:func:`auglens.augment.sample_keys`), so a distorted test set is a pure
function of (images, keys) on any device.

- **Grid shuffle** (Section 2.1): the image is cut into ``grid x grid`` tiles that are put back in a
  random order (one permutation per image). Sides that ``grid`` does not divide leave their last
  ``H mod grid`` rows / ``W mod grid`` columns in place (the authors' release silently drops them).
- **CutOcclusion** (Section 2.2): a black box covering a fraction lam ~ Beta(2, 1) of the image; its side
  is ``sqrt(lam)`` times the image's and its centre is uniform over the image, so the box may lie partly
  outside and then covers less than lam (``restricted = False``, the DI experiments). The restricted
  variant keeps the box inside the image so the fraction removed is lam up to rounding the side to whole
  pixels (Section 3's CutOcclusion and iOcclusion with rectangles).
- **Fourier occlusion**: an FMix mask (:func:`auglens.augment.mixed.fourier_masks`) removing exactly a
  fraction p of the pixels (up to one pixel) — the paper's "Fourier-sampled masks" of Appendix C.4. The
  authors' release instead occludes a share drawn from Beta(p, p) (:func:`release_fourier_fractions`).
- **Saliency occlusion**: the p most salient pixels of a saliency map (the paper's Grad-CAM iOcclusion);
  ties are broken at random from the key (Grad-CAM maps have many exact zeros after the ReLU).
- **Occluders** (:func:`occlude`): black (the paper), a uniform colour, or patches cut, at the same place,
  from images of another data set (the paper's non-uniform occluders).

Occluding with black means 0 in [0, 1] pixel space, before normalisation. The authors' release zeroes
*normalised* tensors, which fills with the data set's mean colour; pass ``fill = mean`` to reproduce that.
"""

from __future__ import annotations

import math

import torch

from auglens.augment import random as rnd
from auglens.augment.mixed import fourier_masks
from auglens.augment.mixing import box_masks

__all__ = ["box_occlusion_masks", "cut_occlusion", "fourier_occlusion_masks", "grid_shuffle", "occlude",
           "occlusion_fractions", "release_fourier_fractions", "saliency_occlusion_masks"]

# Random streams of this module (auglens.augment.random); distinct from the augmentations' streams.
_PERMUTATION, _FRACTION, _CORNER, _TIEBREAK, _COIN, _RELEASE_FRACTION = 401, 402, 403, 404, 405, 406


def grid_shuffle(images: torch.Tensor, grid: int, keys: torch.Tensor) -> torch.Tensor:
    """Shuffle ``grid x grid`` tiles of each image, one permutation per image; (N, C, H, W) -> same shape."""
    n, c, h, w = images.shape
    th, tw = (h // grid, w // grid) if grid >= 1 else (0, 0)
    if th == 0 or tw == 0:
        raise ValueError(f"grid must be between 1 and the image side ({h}x{w}), got {grid}")
    permutation = rnd.uniform(keys, _PERMUTATION, grid * grid).argsort(dim=1).to(images.device)
    body = images[..., : grid * th, : grid * tw]
    tiles = body.reshape(n, c, grid, th, grid, tw).permute(0, 2, 4, 1, 3, 5).reshape(n, grid * grid, c, th, tw)
    shuffled = tiles[torch.arange(n, device=images.device).unsqueeze(1), permutation]
    out = images.clone()
    out[..., : grid * th, : grid * tw] = (shuffled.reshape(n, grid, grid, c, th, tw).permute(0, 3, 1, 4, 2, 5)
                                          .reshape(n, c, grid * th, grid * tw))
    return out


def occlusion_fractions(keys: torch.Tensor, a: float = 2.0, b: float = 1.0) -> torch.Tensor:
    """Occluded fractions lam ~ Beta(a, b), Beta(2, 1) by default (the paper's DI experiments); (N,) -> (N,) float64."""
    return rnd.beta(keys, _FRACTION, a, b)


def box_occlusion_masks(fraction: torch.Tensor, keys: torch.Tensor, height: int, width: int,
                        restricted: bool = False) -> torch.Tensor:
    """Boxes of side ``sqrt(fraction)`` times the image's; (N,) -> (N, H, W) bool, True = occluded.

    Unrestricted: centre uniform over the image, clipped at the border (CutMix's boxes). Restricted: the box
    lies inside the image (top-left corner uniform over the valid positions), so it covers ``fraction`` up
    to rounding the side to whole pixels.
    """
    fraction = torch.as_tensor(fraction, dtype=torch.float64, device=keys.device).expand(len(keys))
    if not restricted:
        return box_masks(1.0 - fraction, keys, height, width)
    side_h = (fraction.sqrt() * height).round().clamp(0, height)
    side_w = (fraction.sqrt() * width).round().clamp(0, width)
    corner = rnd.uniform(keys, _CORNER, count=2)
    y0 = (corner[:, 0] * (height - side_h + 1)).floor()
    x0 = (corner[:, 1] * (width - side_w + 1)).floor()
    ys = torch.arange(height, device=keys.device).view(1, height, 1)
    xs = torch.arange(width, device=keys.device).view(1, 1, width)
    inside_y = (ys >= y0.view(-1, 1, 1)) & (ys < (y0 + side_h).view(-1, 1, 1))
    inside_x = (xs >= x0.view(-1, 1, 1)) & (xs < (x0 + side_w).view(-1, 1, 1))
    return inside_y & inside_x


def fourier_occlusion_masks(fraction: torch.Tensor | float, keys: torch.Tensor, height: int, width: int,
                            decay_power: float = 3.0) -> torch.Tensor:
    """FMix masks occluding exactly ``fraction`` of the pixels (up to one); (N,) -> (N, H, W) bool, True = occluded."""
    fraction = torch.as_tensor(fraction, dtype=torch.float64, device=keys.device).expand(len(keys))
    return ~fourier_masks(1.0 - fraction, keys, height, width, decay_power)


def release_fourier_fractions(p: float, keys: torch.Tensor) -> torch.Tensor:
    """The authors' release's Fourier occlusion (``fout``): occluded share ~ Beta(p, p) per image, not p.

    Its ``iOcclusion_random`` hands the fraction p to FMix's ``sample_mask`` as the Beta parameter alpha,
    so the kept share is lam ~ Beta(p, p) (and the occluded share 1 - lam ~ Beta(p, p) too, symmetric):
    its mean is 0.5 whatever p. p = 0, where Beta(0, 0) is undefined, occludes nothing. (N,) -> (N,) float64.
    """
    if p <= 0:
        return torch.zeros(len(keys), dtype=torch.float64, device=keys.device)
    return rnd.beta(keys, _RELEASE_FRACTION, p, p)


def saliency_occlusion_masks(saliency: torch.Tensor, fraction: float, keys: torch.Tensor,
                             order: str = "most") -> torch.Tensor:
    """Occlude the ``ceil(fraction * H * W)`` most (or least) salient pixels; (N, H, W) -> (N, H, W) bool.

    ``order``: ``"most"`` (the paper), ``"least"``, or ``"coin"`` (most or least per image from its key, as
    the authors' release does per batch). Ties are broken by a uniform draw per pixel from the key.
    """
    if order not in ("most", "least", "coin"):
        raise ValueError(f"order must be 'most', 'least' or 'coin', got {order!r}")
    n, h, w = saliency.shape
    flat = saliency.reshape(n, h * w).to(torch.float64)
    most = torch.ones(n, dtype=torch.bool, device=saliency.device)
    if order == "least":
        most[:] = False
    elif order == "coin":
        most = rnd.bernoulli(keys, _COIN).to(saliency.device)
    signed = torch.where(most.unsqueeze(1), flat, -flat)
    # Rank by saliency, ties by a random draw: sort by the tiebreak first, then stably by saliency.
    tiebreak = rnd.uniform(keys, _TIEBREAK, h * w).to(saliency.device)
    first = tiebreak.argsort(dim=1)
    second = signed.gather(1, first).argsort(dim=1, descending=True, stable=True)
    order_idx = first.gather(1, second)
    count = math.ceil(round(fraction * h * w, 9))
    occluded = torch.zeros(n, h * w, dtype=torch.bool, device=saliency.device)
    occluded.scatter_(1, order_idx[:, :count], True)
    return occluded.view(n, h, w)


def occlude(images: torch.Tensor, masks: torch.Tensor, fill: torch.Tensor | float = 0.0) -> torch.Tensor:
    """Replace the masked pixels; (N, C, H, W), (N, H, W) bool -> (N, C, H, W).

    ``fill``: a number (0 = black), a colour (C,), or occluder images (N, C, H, W) whose pixels at the
    same places are pasted in (non-uniform occluders).
    """
    fill = torch.as_tensor(fill, dtype=images.dtype, device=images.device)
    if fill.ndim == 1:
        fill = fill.view(1, -1, 1, 1)
    return torch.where(masks.to(images.device).unsqueeze(1), fill.expand_as(images), images)


def cut_occlusion(images: torch.Tensor, keys: torch.Tensor, fraction: torch.Tensor | float | None = None,
                  restricted: bool = False, fill: torch.Tensor | float = 0.0,
                  beta: tuple[float, float] = (2.0, 1.0)) -> torch.Tensor:
    """CutOcclusion: one box per image covering ``fraction`` (default lam ~ Beta(2, 1) per image); -> (N, C, H, W)."""
    n, _, h, w = images.shape
    if fraction is None:
        fraction = occlusion_fractions(keys, *beta)
    return occlude(images, box_occlusion_masks(fraction, keys, h, w, restricted), fill)

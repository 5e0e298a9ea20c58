"""Similarity metrics between a baseline model's outputs and an augmented model's outputs (thesis Sec. 5.1).

Every function here is pure and batched: it takes two tensors holding ``N`` pairs and returns one value per
pair, shape ``(N,)``. The first argument is always the *baseline* (``P`` in the thesis), the second the
*augmented* model (``Q``); only ``class_kld`` is asymmetric, the order matters nowhere else.

Conventions shared by all functions
-----------------------------------
* CAM inputs have shape ``(N, ...)``: ``(N, H, W)`` maps, ``(N, D)`` flattened maps, or any trailing shape;
  everything after dim 0 is flattened to ``D`` pixels. A single map must be given as a batch of one
  (``cam[None]``); a 1-D tensor is rejected instead of being read as ``N`` one-pixel maps.
* Inputs may be any real dtype (float16/32/64, integer, bool), numpy arrays included. The arithmetic is done
  in float64 and the result is returned as **float64** on the inputs' device: the values end up in tables
  and correlation analyses over thousands of images, so we keep the extra digits rather than round them
  away (cast with ``.float()`` if you need float32).
* Undefined values are reported as NaN, never as an invented number and never as an exception: Pearson
  and Spearman of a constant map (zero variance), and Spearman / overlap of a map containing NaN.
* No device is hard-coded; every tensor created here lives on the inputs' device, so the same code runs
  on CPU and CUDA.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "DEFAULT_KLD_EPS",
    "class_kld",
    "mad",
    "msd",
    "overlap_rate",
    "pearson",
    "spearman",
    "top_count",
    "top_region",
]

#: Default regularisation constant of ``class_kld``, and of the class_kld metric's ``epsilon`` parameter (one
#: value for direct calls and table columns alike). The thesis writes ``log(eps + Q_i / P_i)`` without a value; its
#: source for the formula (Bylinskii et al., "What do different evaluation metrics tell us about saliency
#: models?") uses MATLAB's ``eps`` (2.2e-16) in its reference code. auglens uses 1e-10: for any eps the
#: result exceeds the plain KL(Q || P) by sum_i Q_i log(1 + eps P_i / Q_i) <= eps * sum_i P_i <= eps, so
#: either value leaves it exact far below any difference a study reports (KLD(P, P) = log(1 + eps), not 0).
DEFAULT_KLD_EPS: float = 1e-10

# Replacement for P_i == 0 in class_kld: the smallest positive normal float64, the dtype the sum is computed
# in. It is used whatever the input dtype, so the same probabilities give the same Class-KLD whether they
# arrived as float32 or float64, and Q_i / P_i <= 1 / 2.2e-308 stays finite (each such term <= ~708 * Q_i).
_P_FLOOR: float = float(torch.finfo(torch.float64).tiny)


def _as_real_tensor(x: Any, what: str) -> Tensor:
    x = torch.as_tensor(x)
    if x.is_complex():
        raise TypeError(f"{what} must be real, got dtype {x.dtype}")
    return x


def _flatten_pair(p: Any, q: Any) -> tuple[Tensor, Tensor]:
    """Validate a pair of map batches and return them as float64 ``(N, D)``."""
    p = _as_real_tensor(p, "p")
    q = _as_real_tensor(q, "q")
    if p.shape != q.shape:
        raise ValueError(f"p and q must have the same shape, got {tuple(p.shape)} and {tuple(q.shape)}")
    if p.ndim < 2:
        raise ValueError(
            f"expected a batch of shape (N, ...) with at least 2 dims, got shape {tuple(p.shape)}; "
            "pass a single map as map[None]"
        )
    if p.device != q.device:
        raise ValueError(f"p and q are on different devices ({p.device} and {q.device})")
    # flatten(1), not reshape(N, -1): the latter is ambiguous (and raises) for an empty batch.
    p = p.flatten(1).to(torch.float64)
    q = q.flatten(1).to(torch.float64)
    if p.shape[1] == 0:
        raise ValueError("maps have no pixels (trailing dims contain a 0)")
    return p, q


def _rows_with_nan(p: Tensor, q: Tensor) -> Tensor:
    return torch.isnan(p).any(dim=1) | torch.isnan(q).any(dim=1)


def _is_constant(x: Tensor) -> Tensor:
    # Compared on the raw values, exactly: centring a constant float map in floating point can leave
    # ~1e-17 residues, so "variance == 0" would miss it and return a meaningless correlation.
    return x.amax(dim=1) == x.amin(dim=1)


def _pearson_rows(x: Tensor, y: Tensor) -> Tensor:
    """Row-wise Pearson r of float64 ``(N, D)`` tensors; NaN where a row is constant."""
    xc = x - x.mean(dim=1, keepdim=True)
    yc = y - y.mean(dim=1, keepdim=True)
    r = (xc * yc).sum(dim=1) / (torch.linalg.vector_norm(xc, dim=1) * torch.linalg.vector_norm(yc, dim=1))
    # Rounding can push |r| a hair past 1 (scipy clips the same way); clamp keeps NaN as NaN.
    r = r.clamp(-1.0, 1.0)
    return torch.where(_is_constant(x) | _is_constant(y), torch.full_like(r, math.nan), r)


def _average_ranks(x: Tensor) -> Tensor:
    """1-based ranks along dim 1, ties sharing the mean of their positions (``rankdata(method="average")``).

    Shape ``(N, D)`` -> ``(N, D)`` float64, batched with no Python loop: one sort per row, then in sorted
    order each run of equal values occupies positions ``first .. last`` (0-based) and gets rank
    ``(first + last) / 2 + 1``; the ranks are then scattered back to the pixels. CPU tensors take a numpy
    path (its sort is ~4x faster there), others a torch one; both are tested against scipy.
    """
    return _sort_and_rank(x)[1]


def _sort_and_rank(x: Tensor, ranks: bool = True) -> tuple[Tensor, Tensor | None]:
    """Rows of float64 ``(N, D)`` sorted ascending, and their average ranks (``None`` unless ``ranks``).

    One sort serves both: the metric stage reads overlap thresholds off the sorted rows and Spearman off the
    ranks. numpy on the CPU, torch elsewhere.
    """
    if x.device.type == "cpu":
        return _sort_and_rank_numpy(x, ranks)
    return _sort_and_rank_torch(x, ranks)


def _average_ranks_torch(x: Tensor) -> Tensor:
    """:func:`_average_ranks` with torch ops (what runs off the CPU)."""
    return _sort_and_rank_torch(x)[1]


def _average_ranks_numpy(x: Tensor) -> Tensor:
    """:func:`_average_ranks` with numpy (what runs on the CPU)."""
    return _sort_and_rank_numpy(x)[1]


def _sort_and_rank_torch(x: Tensor, ranks: bool = True) -> tuple[Tensor, Tensor | None]:
    """``first`` is a running max of the run-start positions, ``last`` a reversed running min of the run-end
    positions. (Two ``searchsorted`` calls give the same ranks but were ~2x slower on 224x224 maps.)"""
    if not ranks:
        return x.sort(dim=1).values, None
    s, order = x.sort(dim=1)
    n, d = s.shape
    pos = torch.arange(d, device=x.device).expand(n, d)
    starts = torch.ones_like(s, dtype=torch.bool)
    starts[:, 1:] = s[:, 1:] != s[:, :-1]  # a new run of equal values starts here
    ends = torch.ones_like(starts)
    ends[:, :-1] = starts[:, 1:]  # a run ends where the next one starts
    first = torch.where(starts, pos, 0).cummax(dim=1).values
    last = torch.where(ends, pos, d - 1).flip(1).cummin(dim=1).values.flip(1)
    # first + last + 2 is an exact integer and /2 is exact in float64, so tied values get bit-identical ranks.
    avg = (first + last + 2).to(torch.float64) / 2
    return s, torch.empty_like(avg).scatter_(1, order, avg)


def _sort_and_rank_numpy(x: Tensor, ranks: bool = True) -> tuple[Tensor, Tensor | None]:
    """The same as :func:`_sort_and_rank_torch` with numpy, whose AVX-512 sorts are ~4x faster on the CPU.

    Untied sorted positions ``j`` simply get rank ``j + 1``; only the tied ones (CAMs' zeros and saturated
    maxima, a minority of pixels) are visited to give each run of equal values its average rank.
    """
    a = x.detach().contiguous().numpy()
    if not ranks:
        return torch.from_numpy(np.sort(a, axis=1)), None
    n, d = a.shape
    order = np.argsort(a, axis=1)
    s = np.take_along_axis(a, order, axis=1)
    ranked = np.empty((n, d), dtype=np.float64)
    ranked[:] = np.arange(1, d + 1, dtype=np.float64)
    # Flat positions (in the (n, d) sorted array) of every element equal to its right neighbour.
    tied = np.flatnonzero(s[:, 1:] == s[:, :-1])
    if tied.size:
        tied += tied // (d - 1)  # (n, d - 1) flat index -> (n, d) flat index; runs never cross rows
        new_run = np.empty(tied.size, dtype=bool)
        new_run[0] = True
        np.not_equal(tied[1:], tied[:-1] + 1, out=new_run[1:])
        run = np.cumsum(new_run) - 1  # run number of each tied element
        first = tied[new_run]
        last = tied[np.append(np.flatnonzero(new_run)[1:], tied.size) - 1] + 1  # the run's last element
        # 1-based average of positions first .. last within the row; first + last + 2 is an exact integer.
        average = (first % d + last % d + 2) * 0.5
        flat = ranked.reshape(-1)
        flat[tied] = average[run]
        flat[last] = average
    out = np.empty((n, d), dtype=np.float64)
    np.put_along_axis(out, order, ranked, axis=1)
    return torch.from_numpy(s), torch.from_numpy(out)


def mad(p: Any, q: Any) -> Tensor:
    """Mean Absolute Difference, ``mean_j |P_j - Q_j|`` per pair.

    Args:
        p: baseline maps, ``(N, ...)``.
        q: augmented-model maps, same shape.

    Returns:
        ``(N,)`` float64. 0 for identical maps; lower = more similar.
    """
    p, q = _flatten_pair(p, q)
    return (p - q).abs().mean(dim=1)


def msd(p: Any, q: Any) -> Tensor:
    """Mean Squared Difference, ``mean_j (P_j - Q_j)^2`` per pair.

    Args:
        p: baseline maps, ``(N, ...)``.
        q: augmented-model maps, same shape.

    Returns:
        ``(N,)`` float64. 0 for identical maps; lower = more similar.
    """
    p, q = _flatten_pair(p, q)
    return (p - q).square().mean(dim=1)


def pearson(p: Any, q: Any) -> Tensor:
    """Pearson correlation ``cov(P, Q) / (sigma(P) sigma(Q))`` of the flattened maps, per pair.

    Args:
        p: baseline maps, ``(N, ...)``.
        q: augmented-model maps, same shape.

    Returns:
        ``(N,)`` float64 in ``[-1, 1]``; NaN where either map is constant (the correlation is undefined),
        matching ``scipy.stats.pearsonr``. Higher = more similar.
    """
    p, q = _flatten_pair(p, q)
    return _pearson_rows(p, q)


def spearman(p: Any, q: Any) -> Tensor:
    """Spearman rank correlation: Pearson of the ranks, ties given their average rank, per pair.

    Identical to ``scipy.stats.spearmanr`` (``rankdata(method="average")`` then Pearson); the average
    ranks matter because CAMs are full of ties (zeros after ReLU, saturated maxima after normalisation).

    Args:
        p: baseline maps, ``(N, ...)``.
        q: augmented-model maps, same shape.

    Returns:
        ``(N,)`` float64 in ``[-1, 1]``; NaN where either map is constant or contains NaN.
        Higher = more similar.
    """
    p, q = _flatten_pair(p, q)
    r = _pearson_rows(_average_ranks(p), _average_ranks(q))
    # Sorting places NaN somewhere and would yield a finite but meaningless rank; scipy propagates NaN.
    return torch.where(_rows_with_nan(p, q), torch.full_like(r, math.nan), r)


def top_count(top_percent: float, num_pixels: int) -> int:
    """Rank ``k = ceil(top_percent / 100 * num_pixels)`` of the overlap threshold (see ``overlap_rate``).

    ``top_percent`` is read as the decimal number it prints as (``0.1`` is exactly 1/10, not the binary
    0.1000000000000000055...) and the product is taken in exact rational arithmetic, so e.g. 7 % of 100
    pixels is k = 7, where float arithmetic (0.07 * 100 = 7.000000000000001) would give 8.

    Raises:
        ValueError: unless ``0 < top_percent <= 100``.
    """
    try:
        value = float(top_percent)
    except (TypeError, ValueError):
        raise TypeError(f"top_percent must be a real number, got {top_percent!r}") from None
    if not (math.isfinite(value) and 0.0 < value <= 100.0):
        raise ValueError(f"top_percent must be in (0, 100], got {top_percent!r}")
    return math.ceil(Fraction(str(value)) * num_pixels / 100)


def top_region(x: Tensor, top_percent: float) -> Tensor:
    """The top-``top_percent`` % region of each flattened map, ties included (see ``overlap_rate``); (N, D) -> (N, D) bool."""
    k = top_count(top_percent, x.shape[1])
    # The k-th largest value is the smallest of the top k; an unsorted topk is ~3x faster than kthvalue.
    threshold = torch.topk(x, k, dim=1, sorted=False).values.amin(dim=1, keepdim=True)
    return x >= threshold


def overlap_rate(p: Any, q: Any, top_percent: float) -> Tensor:
    """Overlap Rate: IoU of the top-``top_percent`` % regions of the two maps, ties included.

    Definition (thesis Sec. 5.1: "if Y = 10 and the 10th percentile highest value is 0.7, we will select
    all pixels with value equal to or higher than 0.7"). For each map with ``D`` pixels:

    * ``k = ceil(Y / 100 * D)`` (exact arithmetic, see ``top_count``), at least 1;
    * threshold ``t`` = the k-th largest pixel value (counting repeated values with multiplicity);
    * region = ``{pixels with value >= t}``. This is the smallest region of the form ``{x >= t}`` that holds
      at least Y % of the pixels; with ties at ``t`` it holds more than Y % (all tied pixels are taken).

    ``t`` equals ``-numpy.percentile(-x, Y, method="inverted_cdf")`` (the inverse-CDF percentile of the upper
    tail), up to numpy's float rounding of ``Y / 100 * D``. It selects the same region as thresholding at
    numpy's default (linear) ``percentile(x, 100 - Y)`` whenever ``Y * D / 100`` is an integer or has
    fractional part ``>= Y / 100`` -- e.g. for 7x7, 14x14, 28x28 and 224x224 maps at Y = 20, 10, 5 -- and
    otherwise differs from it by one rank position.

    The result is ``|A & B| / |A | B|``; both regions are non-empty, so it is always defined.

    Args:
        p: baseline maps, ``(N, ...)``.
        q: augmented-model maps, same shape.
        top_percent: Y in ``(0, 100]``.

    Returns:
        ``(N,)`` float64 in ``[0, 1]``; NaN where either map contains NaN. Higher = more similar.
    """
    p, q = _flatten_pair(p, q)
    a = top_region(p, top_percent)
    b = top_region(q, top_percent)
    iou = (a & b).sum(dim=1).to(torch.float64) / (a | b).sum(dim=1).to(torch.float64)
    return torch.where(_rows_with_nan(p, q), torch.full_like(iou, math.nan), iou)


def class_kld(p: Any, q: Any, eps: float = DEFAULT_KLD_EPS) -> Tensor:
    """Class-KLD, ``sum_i Q_i * log(eps + Q_i / P_i)`` over classes, per pair, exactly as the thesis writes it.

    ``P`` is the baseline model's class-probability vector (softmax output), ``Q`` the augmented model's,
    so with ``eps = 0`` this is KL(Q || P). Guards, so that no input yields NaN or inf:

    * terms with ``Q_i == 0`` contribute 0 (the ``0 log 0 = 0`` convention; without it ``eps = 0`` would give
      ``0 * -inf = NaN``);
    * ``P_i`` is clamped to the smallest positive normal float64 (2.2e-308), so ``P_i == 0`` with ``Q_i > 0``
      gives a large finite term instead of inf.

    Args:
        p: baseline class probabilities, ``(N, C)``.
        q: augmented-model class probabilities, ``(N, C)``.
        eps: regularisation constant inside the log, ``>= 0``; default ``DEFAULT_KLD_EPS`` (1e-10, the study's
            default too -- see its comment).

    Returns:
        ``(N,)`` float64. ~0 for identical predictions; lower = more similar.
    """
    p = _as_real_tensor(p, "p")
    q = _as_real_tensor(q, "q")
    if p.shape != q.shape or p.ndim != 2:
        raise ValueError(
            f"p and q must both be (N, C) class-probability batches, got {tuple(p.shape)} and {tuple(q.shape)}"
        )
    if p.device != q.device:
        raise ValueError(f"p and q are on different devices ({p.device} and {q.device})")
    eps = float(eps)
    if not (math.isfinite(eps) and eps >= 0.0):
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")
    p = p.to(torch.float64).clamp_min(_P_FLOOR)
    q = q.to(torch.float64)
    terms = q * torch.log(eps + q / p)
    terms = torch.where(q == 0, torch.zeros_like(terms), terms)
    return terms.sum(dim=1)

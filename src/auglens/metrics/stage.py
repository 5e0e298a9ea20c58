"""The metric stage's fast path: one baseline batch of CAMs against many models' CAMs, each map sorted once.

A study compares the baseline's CAM of every test image with the CAM of every augmented model for the same
image. The per-pair functions of :mod:`auglens.metrics.functional` would sort the baseline map again for each
model and each overlap threshold. Here a block of maps is first *summarised* once (:func:`summarise`):

* its float64 values, centred, with their norm (MAD, MSD, Pearson),
* its average ranks, centred, with their norm (Spearman),
* its top-``k`` mask and size for every overlap threshold (Overlap Rate),

all from **one sort per map**: the sort gives the ranks, and the ``k``-th largest value is ``sorted[D - k]``.
Comparing two summaries (:func:`compare`) is then a few dot products and mask counts per pair, so one
baseline summary serves every augmented model. The values equal the per-pair functions' to float64 rounding
(tested against them and against scipy).

The maths is written once against an array namespace ``xp``: numpy on the CPU, torch elsewhere. On the CPU
the images are cut into blocks of a few maps that stay in cache, and the blocks go to a pool of
``torch.get_num_threads()`` threads, each running single-threaded numpy (which releases the GIL): on a
2-core machine that was several times faster than torch's own intra-op threads on the same arrays, and
numpy's AVX-512 argsort is ~4x ``torch.sort``.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from auglens.metrics.functional import _sort_and_rank

__all__ = ["CAM_QUANTITIES", "MapSummary", "compare", "compare_with_baseline", "summarise"]

#: What a comparison can compute; overlap rates are asked for separately, by their top counts ``k``.
CAM_QUANTITIES = ("mad", "msd", "pearson", "spearman")

#: Pixels per CPU block: a block's float64 arrays (~2 MB each at 224x224) stay in the core's cache.
_BLOCK_PIXELS = 1 << 18
#: Pixels per device chunk: bounds the memory of the float64 temporaries (64 MB each).
_CHUNK_PIXELS = 1 << 23


@dataclass(frozen=True)
class MapSummary:
    """What the CAM metrics need from ``n`` maps of ``D`` pixels (numpy arrays or torch tensors)."""

    values: Any  # (n, D) float64
    centred: Any  # (n, D) values minus their row mean
    norm: Any  # (n,) Euclidean norm of ``centred``
    constant: Any  # (n,) bool: every pixel equal (correlations undefined)
    has_nan: Any  # (n,) bool
    rank_centred: Any  # (n, D) average ranks minus their mean (D + 1) / 2, or None
    rank_norm: Any  # (n,) or None
    top_masks: dict[int, Any]  # k -> (n, D) bool: pixels >= the k-th largest value (ties included)
    top_sizes: dict[int, Any]  # k -> (n,) float64: pixels in that mask


def _float64(xp: Any, a: Any) -> Any:
    return a.astype(np.float64) if xp is np else a.double()


def _as_torch(a: Any) -> Tensor:
    return torch.from_numpy(a) if isinstance(a, np.ndarray) else a


def summarise(x: Any, xp: Any, ranks: bool, top_counts: Sequence[int]) -> MapSummary:
    """Summarise float64 ``(n, D)`` maps; ``xp`` is ``numpy`` (``x`` an array) or ``torch`` (``x`` a tensor)."""
    d = x.shape[1]
    centred = x - (x.sum(1) / d)[:, None]
    norm = xp.sqrt(xp.einsum("ij,ij->i", centred, centred))
    if not (ranks or top_counts):
        # Compared on the raw values, exactly: centring a constant map can leave ~1e-17 residues.
        return MapSummary(x, centred, norm, xp.amax(x, 1) == xp.amin(x, 1), xp.isnan(x).any(1), None, None, {}, {})
    sorted_rows, average_ranks = _sort_and_rank(_as_torch(x), ranks)
    if xp is np:
        sorted_rows, average_ranks = sorted_rows.numpy(), None if average_ranks is None else average_ranks.numpy()
    # NaN sorts last (numpy and torch alike); a map is constant when its smallest and largest pixels are equal.
    has_nan = xp.isnan(sorted_rows[:, -1])
    constant = sorted_rows[:, 0] == sorted_rows[:, -1]
    rank_centred = rank_norm = None
    if ranks:
        # The mean of average ranks is exactly (D + 1) / 2 whatever the ties; subtracting it is exact.
        rank_centred = average_ranks - (d + 1) / 2
        rank_norm = xp.sqrt(xp.einsum("ij,ij->i", rank_centred, rank_centred))
    masks, sizes = {}, {}
    for k in top_counts:
        masks[k] = x >= sorted_rows[:, d - k, None]
        sizes[k] = _float64(xp, xp.count_nonzero(masks[k], 1))
    return MapSummary(x, centred, norm, constant, has_nan, rank_centred, rank_norm, masks, sizes)


def _correlation(xp: Any, a: Any, b: Any, norm_a: Any, norm_b: Any, undefined: Any) -> Any:
    # Rounding can push |r| a hair past 1 (scipy clips the same way).
    r = xp.clip(xp.einsum("ij,ij->i", a, b) / (norm_a * norm_b), -1.0, 1.0)
    return xp.where(undefined, math.nan, r)


def compare(base: MapSummary, other: MapSummary, xp: Any, quantities: Sequence[str],
            top_counts: Sequence[int]) -> dict[str | int, Any]:
    """The CAM metrics of ``n`` (baseline, other) pairs from their summaries: ``{quantity or k: (n,) float64}``."""
    d = base.values.shape[1]
    nan_rows = base.has_nan | other.has_nan
    out: dict[str | int, Any] = {}
    if "mad" in quantities or "msd" in quantities:
        diff = base.values - other.values
        if "mad" in quantities:
            out["mad"] = xp.abs(diff).sum(1) / d
        if "msd" in quantities:
            out["msd"] = xp.einsum("ij,ij->i", diff, diff) / d
    if "pearson" in quantities:
        out["pearson"] = _correlation(xp, base.centred, other.centred, base.norm, other.norm,
                                      base.constant | other.constant | nan_rows)
    if "spearman" in quantities:
        out["spearman"] = _correlation(xp, base.rank_centred, other.rank_centred, base.rank_norm, other.rank_norm,
                                       base.constant | other.constant | nan_rows)
    for k in top_counts:
        inter = _float64(xp, xp.count_nonzero(base.top_masks[k] & other.top_masks[k], 1))
        out[k] = xp.where(nan_rows, math.nan, inter / (base.top_sizes[k] + other.top_sizes[k] - inter))
    return out


def _check_maps(base_maps: Tensor, other_maps: Sequence[Tensor]) -> None:
    if base_maps.ndim < 2:
        raise ValueError(f"expected a batch of maps of shape (N, ...) with at least 2 dims, got shape "
                         f"{tuple(base_maps.shape)}; pass a single map as map[None]")
    if math.prod(base_maps.shape[1:]) == 0:
        raise ValueError("maps have no pixels (trailing dims contain a 0)")
    for maps in (base_maps, *other_maps):
        if maps.is_complex():
            raise TypeError(f"maps must be real, got dtype {maps.dtype}")
        if maps.shape != base_maps.shape:
            raise ValueError(f"baseline and model maps must have the same shape, got {tuple(base_maps.shape)} "
                             f"and {tuple(maps.shape)}")
        if maps.device != base_maps.device:
            raise ValueError(f"baseline and model maps are on different devices ({base_maps.device} and "
                             f"{maps.device})")


_POOLS: dict[int, ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def _forget_pools() -> None:
    # A forked child (multiprocessing's default start method on Linux, a worker forked by a scheduler) inherits
    # the pools but not their threads: work submitted to them would wait forever. The child makes its own.
    global _POOLS_LOCK
    _POOLS.clear()
    _POOLS_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):  # POSIX; elsewhere processes are spawned, not forked
    os.register_at_fork(after_in_child=_forget_pools)


def _pool(workers: int) -> ThreadPoolExecutor:
    with _POOLS_LOCK:
        if workers not in _POOLS:
            _POOLS[workers] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="auglens-metrics")
        return _POOLS[workers]


def compare_with_baseline(base_maps: Tensor, other_maps: Sequence[Tensor], quantities: Sequence[str],
                          top_counts: Sequence[int]) -> list[dict[str | int, Tensor]]:
    """Every requested CAM quantity of each model's maps against the same images' baseline maps.

    Args:
        base_maps: ``(N, ...)`` baseline maps; everything after dim 0 is flattened to ``D`` pixels.
        other_maps: one ``(N, ...)`` batch per model, shaped like ``base_maps``, on the same device.
        quantities: any of ``CAM_QUANTITIES``.
        top_counts: the ``k`` (``functional.top_count(Y, D)``) of each overlap rate wanted, each in ``[1, D]``.

    Returns:
        Per model, ``{quantity or k: (N,) float64 tensor}`` on the maps' device.
    """
    unknown = sorted(set(quantities) - set(CAM_QUANTITIES))
    if unknown:
        raise ValueError(f"unknown quantities {unknown}; valid: {list(CAM_QUANTITIES)}")
    _check_maps(base_maps, other_maps)
    n = base_maps.shape[0]
    d = math.prod(base_maps.shape[1:])
    top_counts = sorted({int(k) for k in top_counts})
    if any(not 1 <= k <= d for k in top_counts):
        raise ValueError(f"top counts must be in [1, {d}] for maps of {d} pixels, got {top_counts}")
    keys = [q for q in CAM_QUANTITIES if q in quantities] + top_counts
    flat = [m.reshape(n, d) for m in (base_maps, *other_maps)]

    if base_maps.device.type != "cpu":
        return _compare_in_chunks(flat, quantities, top_counts, keys)
    return _compare_in_blocks(flat, quantities, top_counts, keys)


def _compare_in_chunks(flat: list[Tensor], quantities: Sequence[str], top_counts: list[int],
                       keys: list) -> list[dict[str | int, Tensor]]:
    """torch path (any device): chunks of images bounded in memory."""
    n, d = flat[0].shape
    ranks = "spearman" in quantities
    rows = max(1, _CHUNK_PIXELS // d)
    parts: list[dict] = [{key: [] for key in keys} for _ in flat[1:]]
    for start in range(0, n, rows):
        base = summarise(flat[0][start : start + rows].double(), torch, ranks, top_counts)
        for part, maps in zip(parts, flat[1:]):
            other = summarise(maps[start : start + rows].double(), torch, ranks, top_counts)
            for key, value in compare(base, other, torch, quantities, top_counts).items():
                part[key].append(value)
    empty = torch.zeros(0, dtype=torch.float64, device=flat[0].device)
    return [{key: torch.cat(part[key]) if part[key] else empty for key in keys} for part in parts]


def _compare_in_blocks(flat: list[Tensor], quantities: Sequence[str], top_counts: list[int],
                       keys: list) -> list[dict[str | int, Tensor]]:
    """numpy path (CPU): cache-sized blocks of images spread over a thread pool."""
    n, d = flat[0].shape
    ranks = "spearman" in quantities
    arrays = [m.detach().contiguous().numpy() for m in flat]
    results = [{key: np.empty(n, dtype=np.float64) for key in keys} for _ in arrays[1:]]

    def run_block(start: int, stop: int) -> None:
        with np.errstate(invalid="ignore", divide="ignore"):  # 0 / 0 of constant maps: NaN by design
            base = summarise(arrays[0][start:stop].astype(np.float64), np, ranks, top_counts)
            for result, maps in zip(results, arrays[1:]):
                other = summarise(maps[start:stop].astype(np.float64), np, ranks, top_counts)
                for key, value in compare(base, other, np, quantities, top_counts).items():
                    result[key][start:stop] = value

    rows = max(1, _BLOCK_PIXELS // d)
    blocks = [(start, min(start + rows, n)) for start in range(0, n, rows)]
    workers = torch.get_num_threads()
    if workers > 1 and len(blocks) > 1:
        for future in [_pool(workers).submit(run_block, *block) for block in blocks]:
            future.result()
    else:
        for block in blocks:
            run_block(*block)
    return [{key: torch.from_numpy(value) for key, value in result.items()} for result in results]

"""Counter-based random numbers: every draw is a pure function of (seed, epoch, sample index, stream).

The thesis asks that augmented data depend only on the starting state. We go one step further: each
sample's random parameters are a hash of (starting state, epoch, sample index), so

- reruns and resumed runs produce identical images with no generator state to save,
- the batch composition, the device (CPU or CUDA) and the number of workers do not change any draw,
- whole batches are drawn at once on the device, with no per-sample Python loop.

The hash is SplitMix64 (Steele, Lea & Flood, 2014) on int64 tensors; torch's int64 multiplication wraps
modulo 2**64 on CPU and CUDA alike, which is what the mixer needs. Logical right shifts are emulated with
a mask because ``>>`` on signed integers is arithmetic.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


_GOLDEN = _signed(0x9E3779B97F4A7C15)
_MIX1 = _signed(0xBF58476D1CE4E5B9)
_MIX2 = _signed(0x94D049BB133111EB)


def _shift_right(x: torch.Tensor, bits: int) -> torch.Tensor:
    return (x >> bits) & ((1 << (64 - bits)) - 1)


_UNSIGNED = tuple(np.uint64(v & ((1 << 64) - 1)) for v in (_GOLDEN, _MIX1, _MIX2))


def _mix64_numpy(x: torch.Tensor) -> torch.Tensor:
    # The same arithmetic on uint64, where shifts are logical and products wrap: for the few keys of a CPU
    # batch numpy's per-operation cost is about a third of torch's, and these hashes run for every batch.
    golden, mix1, mix2 = _UNSIGNED
    a = np.ascontiguousarray(x.numpy()).view(np.uint64) + golden
    a = (a ^ (a >> np.uint64(30))) * mix1
    a = (a ^ (a >> np.uint64(27))) * mix2
    return torch.from_numpy((a ^ (a >> np.uint64(31))).view(np.int64))


def mix64(x: torch.Tensor) -> torch.Tensor:
    """SplitMix64 finaliser on an int64 tensor (elementwise, wraps modulo 2**64)."""
    if x.device.type == "cpu" and x.dtype == torch.int64 and not x.requires_grad:
        return _mix64_numpy(x)
    return _mix64_torch(x)


def _mix64_torch(x: torch.Tensor) -> torch.Tensor:
    x = x + _GOLDEN
    x = (x ^ _shift_right(x, 30)) * _MIX1
    x = (x ^ _shift_right(x, 27)) * _MIX2
    return x ^ _shift_right(x, 31)


def sample_keys(seed: int, epoch: int, indices: torch.Tensor) -> torch.Tensor:
    """One 64-bit key per sample from (seed, epoch, sample index); (N,) int -> (N,) int64."""
    base = mix64(torch.tensor([seed], dtype=torch.int64))
    base = mix64(base ^ epoch)
    return mix64(base.to(indices.device) ^ indices.to(torch.int64))


def _stream_offsets(stream: int, count: int, device: torch.device) -> torch.Tensor:
    # A different stream per parameter, so adding a draw to one augmentation never shifts another's.
    return mix64(torch.arange(count, dtype=torch.int64, device=device) + (stream << 32))


def uniform(keys: torch.Tensor, stream: int, count: int = 1) -> torch.Tensor:
    """Uniform draws in [0, 1): (N,) keys -> (N, count) float64; the same numbers on every device."""
    bits = mix64(keys.unsqueeze(1) ^ _stream_offsets(stream, count, keys.device).unsqueeze(0))
    return _shift_right(bits, 11).to(torch.float64) * (1.0 / (1 << 53))


def uniform_range(keys: torch.Tensor, stream: int, low: float, high: float, count: int = 1) -> torch.Tensor:
    """Uniform draws in [low, high): (N,) -> (N, count) float64."""
    return low + (high - low) * uniform(keys, stream, count)


def normal(keys: torch.Tensor, stream: int, count: int = 1) -> torch.Tensor:
    """Standard normal draws by Box–Muller: (N,) -> (N, count) float64."""
    u1 = uniform(keys, stream, count)
    u2 = uniform(keys, stream + 1_000_003, count)
    return torch.sqrt(-2.0 * torch.log1p(-u1)) * torch.cos(2.0 * math.pi * u2)


def beta(keys: torch.Tensor, stream: int, a: float, b: float) -> torch.Tensor:
    """Beta(a, b) draws by inverting the CDF of a hashed uniform: (N,) -> (N,) float64.

    Inversion (scipy's ``betaincinv``) keeps the draw a pure function of the key. It runs on the CPU on
    N numbers, which is negligible next to the images.
    """
    from scipy.special import betaincinv

    u = uniform(keys, stream).squeeze(1).cpu().numpy()
    return torch.from_numpy(betaincinv(a, b, u)).to(keys.device)


def bernoulli(keys: torch.Tensor, stream: int, p: float = 0.5) -> torch.Tensor:
    """Coin flips: (N,) -> (N,) bool."""
    return uniform(keys, stream).squeeze(1) < p


def randint(keys: torch.Tensor, stream: int, high: int) -> torch.Tensor:
    """Integers in [0, high): (N,) -> (N,) int64."""
    return (uniform(keys, stream).squeeze(1) * high).floor().to(torch.int64).clamp_(max=high - 1)


def gamma(keys: torch.Tensor, stream: int, shape: float, count: int = 1) -> torch.Tensor:
    """Gamma(shape, 1) draws by inverting the CDF of hashed uniforms (scipy's ``gammaincinv``): (N,) -> (N, count)."""
    from scipy.special import gammaincinv

    u = uniform(keys, stream, count).cpu().numpy()
    return torch.from_numpy(gammaincinv(shape, u)).to(keys.device)


def dirichlet(keys: torch.Tensor, stream: int, alpha: float, count: int) -> torch.Tensor:
    """Symmetric Dirichlet(alpha, ..., alpha) draws as normalised Gamma draws: (N,) -> (N, count) float64."""
    draws = gamma(keys, stream, alpha, count)
    # All-zero rows need every uniform to be exactly 0 (probability 2**-53 per entry); the guard keeps them finite.
    return draws / draws.sum(dim=1, keepdim=True).clamp_min(torch.finfo(torch.float64).tiny)


def derive_keys(keys: torch.Tensor, stream: int) -> torch.Tensor:
    """Fresh per-sample keys for a sub-augmentation (e.g. one step of a pipeline): (N,) int64 -> (N,) int64."""
    return mix64(keys ^ _stream_offsets(stream, 1, keys.device))

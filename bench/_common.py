"""Shared helpers for the benchmarks: timing, device choice, JSON output."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import torch


def pick_device(name: str | None) -> torch.device:
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_time(fn, device: torch.device, repeats: int = 3, warmup: int = 1) -> float:
    """Best wall time of ``repeats`` calls after ``warmup`` calls (seconds)."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return min(times)


def best_wall_and_cpu(fn, device: torch.device, repeats: int = 3, warmup: int = 1) -> tuple[float, float]:
    """(wall, process CPU) seconds of the fastest of ``repeats`` calls after ``warmup`` calls.

    CPU time counts every thread of this process, so on a machine shared with other work, where wall times
    are inflated, ``work / cpu`` still compares implementations by the core-seconds they consume.
    """
    for _ in range(warmup):
        fn()
    synchronize(device)
    best = (float("inf"), float("inf"))
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        synchronize(device)
        best = min(best, (time.perf_counter() - wall, time.process_time() - cpu))
    return best


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def write_json(path: str | Path, payload: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1))
    print(f"wrote {path}")


def print_table(rows: list[dict]) -> None:
    if not rows:
        return
    keys = list(rows[0])
    widths = {k: max(len(k), *(len(f"{r[k]:.4g}" if isinstance(r[k], float) else str(r[k])) for r in rows)) for k in keys}
    print("  ".join(k.ljust(widths[k]) for k in keys))
    for r in rows:
        print("  ".join((f"{r[k]:.4g}" if isinstance(r[k], float) else str(r[k])).ljust(widths[k]) for k in keys))

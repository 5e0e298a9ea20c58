"""Where and how a run computes: the device, torch's CPU thread count and the determinism switches.

Every pipeline (a study, the distortion analyses, ``auglens compare``) and every Ray worker calls
:func:`configure_runtime` before any computation, because CPU results depend on the thread count: CPU
convolutions reduce in a thread-count-dependent order.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import torch

from auglens.config import RuntimeConfig

__all__ = ["DEFAULT_NUM_THREADS", "ComputeSpec", "apply_determinism", "compute_spec", "configure_runtime",
           "cpu_description", "resolve_device", "reuse_freed_memory", "threads_per_model", "usable_cores",
           "worker_count", "worker_cores", "worker_setup"]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"runtime.device = {name!r} but CUDA is not available; use 'auto' or 'cpu'")
    return device


#: torch's thread count when auglens was imported: what ``runtime.num_threads = None`` means. Set explicitly on
#: every run because CPU results depend on it, and an earlier run in the same process may have changed it.
DEFAULT_NUM_THREADS = torch.get_num_threads()


def threads_per_model(runtime: RuntimeConfig) -> int:
    """torch's CPU thread count for every job: ``runtime.num_threads``, else torch's default here with one
    worker, else 1 (several workers share the cores between them, each a single-threaded process)."""
    if runtime.num_threads:
        return runtime.num_threads
    return DEFAULT_NUM_THREADS if runtime.workers == 1 else 1


def usable_cores() -> list[int]:
    """The CPU cores this process may run on (its affinity: a container's or a batch job's share, not the
    machine's count)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


def worker_count(runtime: RuntimeConfig, device_type: str, pending: int) -> int:
    """How many local worker processes compute ``pending`` jobs: ``runtime.workers``, or for ``"auto"`` as many
    as fit the usable cores at ``threads_per_model`` threads each (one on a GPU, which runs one job at a time
    anyway); never more than there are jobs.

    The load of the machine is not subtracted: a worker's results do not depend on how many there are, and
    under a fair scheduler each extra runnable worker takes a further share of a busy machine, whereas extra
    torch threads in one process wait on each other at every parallel region (measured: 2 threads on a busy
    2-core machine ran 16x slower than 1). The load is logged, so a slow run on a busy machine says why.
    """
    if runtime.workers != "auto":
        wanted = int(runtime.workers)
    elif device_type != "cpu":
        wanted = 1
    else:
        wanted = max(1, len(usable_cores()) // threads_per_model(runtime))
    return max(1, min(wanted, pending))


def worker_cores(index: int, workers: int, threads: int) -> list[int] | None:
    """The cores worker ``index`` of ``workers`` is pinned to: its own ``threads`` of the usable cores, or None
    (not pinned) when the workers' threads outnumber the cores."""
    cores = usable_cores()
    if workers * threads > len(cores):
        return None
    return cores[index * threads : (index + 1) * threads]


def worker_setup(runtime: RuntimeConfig, threads: int | None = None, cores: list[int] | None = None) -> torch.device:
    """Prepare a worker process (local or Ray) to compute jobs as the driver would: pinned to ``cores`` (when
    given), with ``threads`` torch threads (default :func:`threads_per_model`) and the determinism switches;
    returns the device to use."""
    if cores is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cores)
    device = configure_runtime(runtime)
    torch.set_num_threads(threads or threads_per_model(runtime))
    return device


def configure_runtime(runtime: RuntimeConfig, determinism: bool = True) -> torch.device:
    """Thread count and, unless ``determinism`` is False, the determinism switches of Appendix B
    (:func:`apply_determinism`); returns the device to use.

    The runner passes ``determinism=False`` and applies the switches only once a job is to be computed
    (:meth:`auglens.study.runner.Run.execute`): turning them on imports torch's compiler stack (about 1.5 s),
    which a rerun of a finished study would otherwise pay for nothing.
    """
    torch.set_num_threads(threads_per_model(runtime))
    if runtime.reuse_freed_memory:
        reuse_freed_memory()
    if determinism:
        apply_determinism(runtime)
    return resolve_device(runtime.device)


#: glibc's mallopt parameters (malloc.h) and the values :func:`reuse_freed_memory` sets.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD_BYTES = 32 * 2**20  # glibc's largest: its own adaptive threshold never goes above it
_TRIM_THRESHOLD_BYTES = 256 * 2**20


@functools.cache  # process-wide and irreversible: once per process is all there is to do
def reuse_freed_memory() -> bool:
    """Have glibc's malloc keep freed memory for reuse in this process: blocks up to 32 MiB come from the heap
    rather than a fresh ``mmap`` each, and up to 256 MiB of free heap is kept rather than returned to the
    system. Returns whether it applied (glibc only; elsewhere nothing changes). It is the process's setting from
    then on: glibc has no way back to its adaptive thresholds, so a later run in the same process with
    ``runtime.reuse_freed_memory = false`` keeps it (harmless: no number depends on it).

    Why: torch allocates every activation and gradient of a CPU training step anew and frees it at the end
    of the step. Blocks of a few MiB are ``mmap``-ed and ``munmap``-ed each time, so every page of them is
    faulted in again at every step: 1,400-2,100 page faults per step of the default study's small CNN
    (bench/cpu_step_settings.py). Where a block comes from changes no number: torch aligns every block the
    same way (64 bytes), and the kernels read the same values.
    """
    import ctypes
    import ctypes.util
    import platform

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return False
    # Both calls return 1 on success; setting either turns glibc's adaptive thresholds off, hence both.
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)
                and libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD_BYTES))


def apply_determinism(runtime: RuntimeConfig) -> None:
    """Deterministic algorithms (``runtime.deterministic``, Appendix B), before any computation that depends on them."""
    if not runtime.deterministic:
        return
    # cuBLAS needs a fixed workspace to be deterministic; must be set before its first use.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if not (torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()):
        torch.use_deterministic_algorithms(True, warn_only=True)
    # torch's deterministic mode also fills each new tensor with NaN, against kernels that read memory
    # nothing wrote; none of auglens's computations does (the same numbers either way, tested), and the fill
    # is a write pass over every activation of a training step.
    torch.utils.deterministic.fill_uninitialized_memory = runtime.fill_uninitialized_memory
    torch.backends.cudnn.benchmark = False


@dataclass(frozen=True)
class ComputeSpec:
    """The runtime settings that change a run's numbers, resolved; part of every training's artifact key.

    Measured in docs/artifacts.md: the thread count moves every CAM metric (CPU sums are thread-order
    dependent and training amplifies the last bits), the device changes the kernels (and, with
    ``training.precision = "auto"``, the precision), and deterministic algorithms change CUDA kernels.
    """

    device: str  # device type the jobs compute on: "cpu", "cuda", "mps"
    num_threads: int  # torch CPU threads
    deterministic: bool  # torch deterministic algorithms

    def differences(self, other: ComputeSpec) -> list[str]:
        """``runtime.<setting>`` of every field that differs from ``other``."""
        return [f"runtime.{name}" for name in ("device", "num_threads", "deterministic")
                if getattr(self, name) != getattr(other, name)]


def compute_spec(runtime: RuntimeConfig, device_type: str | None = None) -> ComputeSpec:
    """The resolved settings of ``runtime``: ``device = "auto"`` as this machine (or ``device_type``) resolves it,
    ``num_threads = None`` as :func:`threads_per_model` resolves it."""
    device = device_type or resolve_device(runtime.device).type
    return ComputeSpec(device, threads_per_model(runtime), runtime.deterministic)


def cpu_description() -> dict[str, str | None]:
    """The CPU this process computes on: its model name and torch's CPU capability.

    The capability (``ATEN_CPU_CAPABILITY``: ``default``, ``avx2``, ``avx512``, ...) is the vector instruction
    set torch chose its CPU kernels for. Kernels of different capabilities sum in different orders, so CPU
    results are identical only on the same capability (with the same thread count and versions); training
    amplifies the last-bit differences (docs/artifacts.md measures how far). It is recorded with every run
    rather than put in the artifact keys: a study resumed on another capability is warned about
    (:func:`auglens.study.run.check_cpu`), not recomputed.
    """
    model = None
    try:
        with open("/proc/cpuinfo") as info:
            model = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), None)
    except OSError:
        pass
    import platform

    return {"model": model or platform.processor() or None, "capability": torch.backends.cpu.get_cpu_capability()}

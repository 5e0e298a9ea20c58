"""Wall time of the tiny test study on a local Ray with 1 vs 2 worker CPUs, against the local backend.

    python bench/ray_workers.py --repeats 3 --json bench/ray_workers.json

Every run writes into a fresh output folder, so nothing is resumed. Ray start-up — ``ray.init`` plus
one warm-up task per CPU, which starts the worker processes and imports torch and auglens in them — is
timed separately from the study, as a cluster is started once and serves many studies. Torch runs one
thread per task (runtime.num_threads = 1) in every run, as results depend on the thread count. The local
backend, timed in the same run, is the reference: compare ratios, not seconds, across machines.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.conftest

import ray  # noqa: E402

from auglens import config as cfg  # noqa: E402
from auglens import study  # noqa: E402
from auglens._tomllib import tomllib  # noqa: E402
from tests.conftest import TINY_STUDY  # noqa: E402

from _common import write_json  # noqa: E402


def tiny_config() -> cfg.Config:
    data = tomllib.loads(TINY_STUDY)
    data["runtime"]["num_threads"] = 1
    return cfg.from_dict(data)


def _warm_up() -> int:
    import auglens.study  # noqa: F401  the import a study's first task would otherwise pay for

    time.sleep(1.0)  # hold this worker so that each warm-up task starts its own
    return os.getpid()


def time_study(backend: str, scratch: Path) -> tuple[float, dict[str, float]]:
    """Wall time of one fresh study and its stage timings (Ray's overlap: time until a stage's last task)."""
    out = Path(tempfile.mkdtemp(dir=scratch))
    started = time.perf_counter()
    result = study.run_study(tiny_config(), out, progress=False, backend=backend)
    return time.perf_counter() - started, {k: round(v, 2) for k, v in result.timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per setting (interleaved)")
    parser.add_argument("--json", default="bench/results/ray_workers.json", help="output JSON path")
    args = parser.parse_args()

    runs: dict[str, list[float]] = {"local": [], "ray_1_cpu": [], "ray_2_cpus": []}
    stages: dict[str, list[dict[str, float]]] = {name: [] for name in runs}
    startup: dict[str, list[float]] = {"ray_1_cpu": [], "ray_2_cpus": []}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as scratch:
        for _ in range(args.repeats):
            seconds, timings = time_study("local", Path(scratch))
            runs["local"].append(seconds)
            stages["local"].append(timings)
            for name, cpus in (("ray_1_cpu", 1), ("ray_2_cpus", 2)):
                started = time.perf_counter()
                ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
                workers = ray.get([ray.remote(_warm_up).options(num_cpus=1).remote() for _ in range(cpus)])
                assert len(set(workers)) == cpus
                startup[name].append(time.perf_counter() - started)
                try:
                    seconds, timings = time_study("ray", Path(scratch))
                    runs[name].append(seconds)
                    stages[name].append(timings)
                finally:
                    ray.shutdown()

    median = {name: statistics.median(times) for name, times in runs.items()}
    result = {
        "study": "tests/conftest.py TINY_STUDY (5 models x 2 epochs, 4 metric pairs), runtime.num_threads = 1",
        "machine": f"{platform.platform()}, {os.cpu_count()} CPUs",
        "load_average_1_5_15min": {"before": load_before, "after": os.getloadavg()},
        "repeats": args.repeats,
        "study_seconds": runs,
        "median_study_seconds": median,
        "stage_seconds": stages,
        "ray_startup_seconds": startup,
        "speedup_2_vs_1_cpu": median["ray_1_cpu"] / median["ray_2_cpus"],
        "ray_2_cpus_vs_local": median["local"] / median["ray_2_cpus"],
    }
    print(json.dumps(result, indent=1))
    write_json(args.json, result)


if __name__ == "__main__":
    main()

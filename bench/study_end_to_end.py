"""End-to-end study time of a preset (default: the fast preset) against the same study without the fast path.

Reference (same run, same device): the same config with ``training.precision = "fp32"``,
``channels_last = false`` and ``compile = false`` — what the study costs without auglens's speed options.
Both run into fresh folders (no artifact reuse), without the report. Prints the stage timings of each,
the ratio, and the baseline's test accuracy; writes JSON. Extra ``key=value`` arguments shrink the study
for a CPU smoke run, e.g. ``data.train_subset=2000 data.test_subset=500 training.epochs=1 study.seeds=[1]``.

    python bench/study_end_to_end.py [--config examples/fast-fashion-mnist.toml] [key=value ...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import describe_device, print_table, write_json  # noqa: E402

from auglens import config as cfg  # noqa: E402
from auglens.study import resolve_device, run_study  # noqa: E402

PLAIN = ["training.precision=fp32", "training.channels_last=false", "training.compile=false"]


def _run(config_path: str, overrides: list[str]) -> dict:
    config = cfg.load(config_path, overrides + ["runtime.report=false", "runtime.progress=false"])
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        result = run_study(config, out)
        total = time.perf_counter() - started
    baseline = result.performance.query("augmentation == 'none'")["accuracy"].mean()
    return {"total_s": total, **{k: v for k, v in result.timings.items() if k != "total_seconds"},
            "baseline_accuracy": float(baseline), "models": len(result.performance)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="examples/fast-fashion-mnist.toml")
    parser.add_argument("--json", default="bench/results/study_end_to_end.json")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    fast = _run(args.config, args.overrides)
    plain = _run(args.config, args.overrides + PLAIN)
    rows = [{"variant": "preset", **fast}, {"variant": "preset without fast path", **plain}]
    device = describe_device(resolve_device(cfg.load(args.config).runtime.device))
    print(f"device: {device}; config {args.config} {' '.join(args.overrides)}")
    print_table(rows)
    print(f"ratio (without / with fast path): {plain['total_s'] / fast['total_s']:.2f}x")
    write_json(args.json, {"device": device, "config": args.config, "overrides": args.overrides, "rows": rows,
                           "ratio": plain["total_s"] / fast["total_s"]})


if __name__ == "__main__":
    main()

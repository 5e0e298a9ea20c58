"""Collect bench/device_suite.sh's results into one JSON and a summary table, each figure beside its target.

    python bench/device_summary.py OUT_DIR [gpu|smoke]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

# (figure, target as text, predicate on the figure); targets are for one H100/H200 (gpu mode).
TARGETS = {
    "fast_preset_seconds": ("<= 60 s", lambda v: v <= 60),
    "fast_preset_baseline_accuracy": (">= 0.94", lambda v: v >= 0.94),
    "metric_pairs_per_s": (">= 30000", lambda v: v >= 30000),
    "gradcam_speedup": (">= 5x pytorch-grad-cam", lambda v: v >= 5),
    "augmentation_overhead_max": ("<= 1.10", lambda v: v <= 1.10),
    "train_images_per_s": ("(no target)", None),
    "stacked_training_ratio": ("(no target: what models_at_once = auto should do)", None),
    "rerun_max_param_diff": ("(no target: 0 is a bit-identical rerun)", None),
    "rerun_prediction_disagreement": ("(no target: share of test images predicted differently)", None),
}


def _load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def collect(out: Path) -> dict:
    steps = {}
    for line in (out / "steps.tsv").read_text().splitlines():
        name, status, seconds = line.split("\t")
        steps[name] = {"exit_status": int(status), "wall_seconds": float(seconds)}
    figures: dict[str, float] = {}
    preset = out / "fast-preset"
    if steps.get("fast_preset", {}).get("exit_status") == 0:
        figures["fast_preset_seconds"] = steps["fast_preset"]["wall_seconds"]
        perf = pd.read_csv(preset / "performance.csv")
        figures["fast_preset_baseline_accuracy"] = float(perf.query("augmentation == 'none'")["accuracy"].mean())
        figures["fast_preset_models"] = len(perf)
        figures["fast_preset_test_images"] = int(pd.read_parquet(preset / "cam_metrics.parquet")["image"].nunique())
    if (metrics := _load(out / "metrics.json")) is not None:
        figures["metric_pairs_per_s"] = metrics["rows"][0]["pairs_per_s"]
        figures["metric_ratio_vs_scipy"] = metrics["ratio"]
    if (cams := _load(out / "cams.json")) is not None:
        figures["gradcam_speedup"] = cams["speedup_ours_over_theirs"]
    if (augment := _load(out / "augment.json")) is not None:
        figures["augmentation_overhead_max"] = max(row["overhead"] for row in augment["rows"])
    if (throughput := _load(out / "throughput.json")) is not None:
        figures["train_images_per_s"] = throughput["rows"][0]["images_per_s"]
    if (stacked := _load(out / "stacked.json")) is not None:
        figures["stacked_training_ratio"] = stacked["ratio"]
    if (rerun := _load(out / "rerun.json")) is not None:
        figures["rerun_max_param_diff"] = rerun["rows"][0]["max_param_diff"]
        figures["rerun_max_buffer_diff"] = rerun["rows"][0]["max_buffer_diff"]
        figures["rerun_prediction_disagreement"] = rerun["rows"][0]["prediction_disagreement"]
    return {"steps": steps, "figures": figures}


def summary_table(result: dict, mode: str) -> str:
    lines = [f"Device suite ({mode} mode)", "", "| figure | value | target | met |", "| --- | --- | --- | --- |"]
    for name, value in result["figures"].items():
        target, check = TARGETS.get(name, ("", None))
        met = "" if check is None or mode != "gpu" else ("yes" if check(value) else "NO")
        lines.append(f"| {name} | {value:.4g} | {target} | {met} |")
    failed = [name for name, step in result["steps"].items() if step["exit_status"] != 0]
    lines += ["", f"steps failed or timed out: {', '.join(failed) if failed else 'none'}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    out = Path(sys.argv[1])
    mode = sys.argv[2] if len(sys.argv) > 2 else "gpu"
    result = {"mode": mode, **collect(out)}
    (out / "suite.json").write_text(json.dumps(result, indent=1))
    table = summary_table(result, mode)
    (out / "summary.md").write_text(table)
    print(table)
    print(f"wrote {out / 'suite.json'} and {out / 'summary.md'}")


if __name__ == "__main__":
    main()

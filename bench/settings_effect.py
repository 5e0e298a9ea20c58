"""How much a runtime setting (thread count, device, ...) changes a study's numbers: two results folders compared.

Run the same study twice, changing one setting, then compare the two folders' tables. For every CAM metric
column it prints the largest and the mean absolute difference per image (``cam_metrics.parquet``, one row
per augmentation x seed x test image), the largest difference of a seed-averaged value
(``aug_metrics.parquet``) and of a per-augmentation median (what the report's summary shows); then the
largest accuracy difference and the share of test predictions that changed. Writes JSON.

    auglens run examples/fashion-mnist-quick.toml --out results/threads1 runtime.device=cpu runtime.num_threads=1
    auglens run examples/fashion-mnist-quick.toml --out results/threads2 runtime.device=cpu runtime.num_threads=2
    python bench/settings_effect.py results/threads1 results/threads2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_table, write_json  # noqa: E402

KEYS = ["augmentation", "seed", "image"]
NOT_METRICS = {"augmentation", "kind", "seed", "image", "label", "baseline_pred", "model_pred", "n_seeds",
               "model_correct_share"}


def compare(a: Path, b: Path) -> dict:
    cam_a, cam_b = (pd.read_parquet(d / "cam_metrics.parquet").set_index(KEYS).sort_index() for d in (a, b))
    aug_a, aug_b = (pd.read_parquet(d / "aug_metrics.parquet").set_index(["augmentation", "image"]).sort_index()
                    for d in (a, b))
    if not cam_a.index.equals(cam_b.index):
        raise SystemExit(f"{a} and {b} hold different studies (their metric rows differ); compare runs of one config")
    rows = []
    for column in (c for c in cam_a.columns if c not in NOT_METRICS):
        diff = (cam_a[column] - cam_b[column]).abs()
        aug_diff = (aug_a[column] - aug_b[column]).abs()
        medians = (aug_a.groupby(level=0)[column].median() - aug_b.groupby(level=0)[column].median()).abs()
        rows.append({"metric": column, "max_abs_per_image": float(np.nanmax(diff)),
                     "mean_abs_per_image": float(np.nanmean(diff)),
                     "max_abs_seed_averaged": float(np.nanmax(aug_diff)),
                     "max_abs_median_per_augmentation": float(np.nanmax(medians))})
    perf_a, perf_b = (pd.read_csv(d / "performance.csv").set_index("model").sort_index() for d in (a, b))
    changed = float((cam_a["model_pred"] != cam_b["model_pred"]).mean())
    return {"a": str(a), "b": str(b), "metrics": rows,
            "max_abs_accuracy": float((perf_a["accuracy"] - perf_b["accuracy"]).abs().max()),
            "share_of_predictions_changed": changed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", type=Path, help="results folder of the first run")
    parser.add_argument("b", type=Path, help="results folder of the same study with one setting changed")
    parser.add_argument("--json", default="bench/results/settings_effect.json")
    args = parser.parse_args()
    result = compare(args.a, args.b)
    print_table(result["metrics"])
    print(f"max |accuracy difference| {result['max_abs_accuracy']:.4g}; "
          f"test predictions changed: {100 * result['share_of_predictions_changed']:.2f}%")
    write_json(args.json, result)


if __name__ == "__main__":
    main()

"""Metric-stage throughput as a study runs it, against a per-pair scipy/numpy loop.

The study compares one baseline CAM of each test image with the CAM of every augmented model for that image
(the thesis's 7 augmentations x 2 seeds = 14 models by default). auglens's stage is timed exactly so: the
stored low-resolution maps of a chunk of images are upsampled to ``--size`` (baseline once per chunk), and
``compute_baseline_metrics`` gives all 8 columns (MAD, MSD, Pearson, Spearman, overlap at 20/10/5 %,
Class-KLD) for every model against the baseline.

Reference, measured in the same run: the loop a researcher would write, per (model, image) pair on maps
already upsampled (its upsampling is not timed): numpy MAD/MSD, ``scipy.stats.pearsonr``,
``scipy.stats.spearmanr``, numpy overlap at the three thresholds, numpy Class-KLD. Prints pairs/s of both,
the ratio (of wall times, and of CPU times, which a shared machine inflates less) and the largest difference between the two; writes JSON.

    python bench/metrics_vs_scipy.py --size 224 --images 128 --models 14 [--device cuda]
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch
from scipy import stats

sys.path.insert(0, str(Path(__file__).parent))
from _common import best_wall_and_cpu, describe_device, pick_device, print_table, write_json  # noqa: E402

from auglens.cam import upsample_maps  # noqa: E402
from auglens.metrics import compute_baseline_metrics  # noqa: E402

PERCENTS = (20.0, 10.0, 5.0)
EPS = 1e-10
NAMES = ["mad", "msd", "pearson", "spearman", ("overlap", {"percents": PERCENTS}), ("class_kld", {"epsilon": EPS})]


def reference(p: np.ndarray, q: np.ndarray, pp: np.ndarray, qq: np.ndarray) -> list[float]:
    p, q = p.ravel(), q.ravel()
    out = [np.abs(p - q).mean(), ((p - q) ** 2).mean(), stats.pearsonr(p, q)[0], stats.spearmanr(p, q)[0]]
    for y in PERCENTS:
        k = math.ceil(y / 100 * p.size)
        a = p >= np.sort(p)[-k]
        b = q >= np.sort(q)[-k]
        out.append((a & b).sum() / (a | b).sum())
    out.append(float(np.sum(qq * np.log(EPS + qq / pp))))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=224, help="side of the compared maps")
    parser.add_argument("--low", type=int, default=7, help="side of the stored low-resolution CAMs")
    parser.add_argument("--images", type=int, default=128, help="test images")
    parser.add_argument("--models", type=int, default=14, help="augmented models compared with the baseline")
    parser.add_argument("--chunk", type=int, default=128, help="images per chunk, as runtime.metric_batch_size")
    parser.add_argument("--reference-pairs", type=int, default=64, help="pairs timed for the scipy loop")
    parser.add_argument("--device")
    parser.add_argument("--json", default="bench/results/metrics_vs_scipy.json")
    args = parser.parse_args()
    device = pick_device(args.device)
    g = torch.Generator().manual_seed(0)
    # CAM-like maps: low-resolution, ReLU'd (zeros tie), then upsampled and min-max normalised as the study does.
    low = (torch.rand(args.models + 1, args.images, args.low, args.low, generator=g) - 0.3).clamp_min(0)
    low[:, :, 0, 0] += 0.01  # no constant maps
    probs = torch.softmax(torch.randn(args.models + 1, args.images, 10, generator=g) * 3, dim=-1).double()
    low_dev, probs_dev = low.to(device), probs.to(device)
    size = (args.size, args.size)

    def ours():
        for s in range(0, args.images, args.chunk):
            part = slice(s, s + args.chunk)
            base = upsample_maps(low_dev[0, part], size)
            others = [upsample_maps(low_dev[m, part], size) for m in range(1, args.models + 1)]
            compute_baseline_metrics(NAMES, base, others, probs_dev[0, part],
                                     [probs_dev[m, part] for m in range(1, args.models + 1)])

    # The reference's pairs: model m vs the baseline on image i, cycling over models, on upsampled maps.
    n_ref = min(args.reference_pairs, args.images * args.models)
    pairs = [(1 + j % args.models, j // args.models) for j in range(n_ref)]
    up = {(m, i): upsample_maps(low[m, i : i + 1], size)[0].double().numpy() for m, i in pairs}
    up.update({(0, i): upsample_maps(low[0, i : i + 1], size)[0].double().numpy() for _, i in pairs})
    np_probs = probs.numpy()

    def theirs():
        return [reference(up[0, i], up[m, i], np_probs[0, i], np_probs[m, i]) for m, i in pairs]

    t_ours, cpu_ours = best_wall_and_cpu(ours, device)
    t_ref, cpu_ref = best_wall_and_cpu(theirs, torch.device("cpu"), repeats=2, warmup=0)

    # Same values: every reference pair against auglens's value for it.
    checked = compute_baseline_metrics(NAMES, upsample_maps(low[0], size),
                                       [upsample_maps(low[m], size) for m in range(1, args.models + 1)],
                                       probs[0], list(probs[1:]))
    ours_values = np.array([[float(v[i]) for v in checked[m - 1].values()] for m, i in pairs])
    max_diff = float(np.nanmax(np.abs(ours_values - np.array(theirs()))))

    total_pairs = args.images * args.models
    rows = [
        {"implementation": "auglens stage (one baseline, all models)", "device": describe_device(device),
         "pairs_per_s": total_pairs / t_ours, "pairs_per_cpu_s": total_pairs / cpu_ours},
        {"implementation": "scipy/numpy per-pair loop", "device": describe_device(torch.device("cpu")),
         "pairs_per_s": n_ref / t_ref, "pairs_per_cpu_s": n_ref / cpu_ref},
    ]
    ratio = rows[0]["pairs_per_s"] / rows[1]["pairs_per_s"]
    cpu_ratio = rows[0]["pairs_per_cpu_s"] / rows[1]["pairs_per_cpu_s"]
    print_table(rows)
    print(f"ratio auglens / scipy: {ratio:.2f}x wall, {cpu_ratio:.2f}x per CPU-second   "
          f"max |difference|: {max_diff:.2e}   "
          f"({args.size}x{args.size} maps, {args.models} models x {args.images} images)")
    write_json(args.json, {"size": args.size, "images": args.images, "models": args.models, "chunk": args.chunk,
                           "rows": rows, "ratio": ratio, "cpu_ratio": cpu_ratio, "max_abs_diff": max_diff})


if __name__ == "__main__":
    main()

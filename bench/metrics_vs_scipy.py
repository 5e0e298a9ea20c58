"""Metric-stage throughput: auglens's batched metrics versus a per-pair scipy/numpy reference.

Reference (measured in the same run, on the same maps): for each pair, numpy MAD/MSD, ``scipy.stats.pearsonr``,
``scipy.stats.spearmanr``, numpy overlap at the three thresholds, numpy Class-KLD — the loop a researcher
would write. Prints pairs/s of both and the ratio; writes JSON.

    python bench/metrics_vs_scipy.py --size 224 --pairs 512 [--device cuda]
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
from _common import best_time, describe_device, pick_device, print_table, write_json  # noqa: E402

from auglens.metrics import compute_pair_metrics  # noqa: E402

NAMES = ["mad", "msd", "pearson", "spearman", "overlap", "class_kld"]
PERCENTS = (20.0, 10.0, 5.0)


def reference(p: np.ndarray, q: np.ndarray, pp: np.ndarray, qq: np.ndarray) -> list[float]:
    out = [np.abs(p - q).mean(), ((p - q) ** 2).mean(), stats.pearsonr(p.ravel(), q.ravel())[0],
           stats.spearmanr(p.ravel(), q.ravel())[0]]
    for y in PERCENTS:
        k = math.ceil(y / 100 * p.size)
        a = p.ravel() >= np.sort(p.ravel())[-k]
        b = q.ravel() >= np.sort(q.ravel())[-k]
        out.append((a & b).sum() / (a | b).sum())
    out.append(float(np.sum(qq * np.log(1e-10 + qq / pp))))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--pairs", type=int, default=512)
    parser.add_argument("--reference-pairs", type=int, default=64, help="pairs timed for the scipy loop")
    parser.add_argument("--chunk", type=int, default=256)
    parser.add_argument("--device")
    parser.add_argument("--json", default="bench/results/metrics_vs_scipy.json")
    args = parser.parse_args()
    device = pick_device(args.device)
    g = torch.Generator().manual_seed(0)
    # Realistic maps: low-resolution CAMs upsampled, so there are smooth regions and ties.
    low = torch.rand(args.pairs, 2, 7, 7, generator=g)
    maps = torch.nn.functional.interpolate(low, size=(args.size, args.size), mode="bilinear", align_corners=False)
    maps = (maps * 255).round() / 255
    probs = torch.softmax(torch.randn(args.pairs, 2, 10, generator=g) * 3, dim=-1)
    base, other = maps[:, 0].to(device), maps[:, 1].to(device)
    pb, po = probs[:, 0].double().to(device), probs[:, 1].double().to(device)

    def ours():
        for s in range(0, args.pairs, args.chunk):
            compute_pair_metrics(NAMES, base[s : s + args.chunk], other[s : s + args.chunk], pb[s : s + args.chunk],
                                 po[s : s + args.chunk], PERCENTS, 1e-10)

    n_ref = min(args.reference_pairs, args.pairs)
    np_maps, np_probs = maps.double().numpy(), probs.double().numpy()

    def theirs():
        for i in range(n_ref):
            reference(np_maps[i, 0], np_maps[i, 1], np_probs[i, 0], np_probs[i, 1])

    t_ours = best_time(ours, device)
    t_ref = best_time(theirs, torch.device("cpu"), repeats=1, warmup=0)
    check = compute_pair_metrics(NAMES, base[:n_ref], other[:n_ref], pb[:n_ref], po[:n_ref], PERCENTS, 1e-10)
    ours_values = torch.stack([v.cpu() for v in check.values()], dim=1).numpy()
    ref_values = np.array([reference(np_maps[i, 0], np_maps[i, 1], np_probs[i, 0], np_probs[i, 1]) for i in range(n_ref)])
    rows = [
        {"implementation": "auglens (batched)", "device": describe_device(device), "pairs_per_s": args.pairs / t_ours},
        {"implementation": "scipy/numpy loop", "device": describe_device(torch.device("cpu")), "pairs_per_s": n_ref / t_ref},
    ]
    ratio = rows[0]["pairs_per_s"] / rows[1]["pairs_per_s"]
    max_diff = float(np.nanmax(np.abs(ours_values - ref_values)))
    print_table(rows)
    print(f"ratio auglens / scipy: {ratio:.2f}x   max |difference|: {max_diff:.2e}   ({args.size}x{args.size} maps)")
    write_json(args.json, {"size": args.size, "pairs": args.pairs, "rows": rows, "ratio": ratio, "max_abs_diff": max_diff})


if __name__ == "__main__":
    main()

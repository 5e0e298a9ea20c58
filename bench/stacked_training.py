"""Stacked training (several models in lockstep, one vmap-ed computation) against one model at a time.

Reference, same run and device: ``train_model`` on each model in turn. Both train the same ``--models``
augmented models (the thesis's augmentations cycled, distinct starting states) for one epoch on the same
random images; prints images/s of both (images counted over all models) and the ratio; writes JSON.

    python bench/stacked_training.py --models 7 --images 2048 --arch small_cnn [--device cuda]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import best_wall_and_cpu, describe_device, pick_device, print_table, write_json  # noqa: E402

from auglens.data.datasets import ImageSet  # noqa: E402
from auglens.data.prepared import PreparedData  # noqa: E402
from auglens.train.loop import TrainSpec, train_model  # noqa: E402
from auglens.train.stacked import train_stacked  # noqa: E402

AUGMENTATIONS = ["affine", "cutmix", "color_jitter", "elastic", "equalize", "gaussian_blur", "random_crop"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=7)
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--arch", default="small_cnn")
    parser.add_argument("--device")
    parser.add_argument("--json", default="bench/results/stacked_training.json")
    args = parser.parse_args()
    device = pick_device(args.device)
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.images + 256, 1, args.size, args.size), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, 10, (args.images + 256,), generator=g)
    classes = [str(k) for k in range(10)]
    data = PreparedData(ImageSet(images[: args.images], labels[: args.images], classes),
                        ImageSet(images[args.images :], labels[args.images :], classes),
                        ImageSet(images[args.images :], labels[args.images :], classes),
                        torch.tensor([0.5]), torch.tensor([0.25]))
    base = TrainSpec(args.arch, "affine", batch_size=args.batch, eval_batch_size=256, epochs=1)
    specs = [dataclasses.replace(base, augmentation=AUGMENTATIONS[i % len(AUGMENTATIONS)], seed=1 + i)
             for i in range(args.models)]
    seen = 2 * args.images * args.models  # originals + augmented copies, every model

    wall_one, cpu_one = best_wall_and_cpu(lambda: [train_model(s, data, device) for s in specs], device, repeats=1)
    wall_all, cpu_all = best_wall_and_cpu(lambda: train_stacked(specs, data, device), device, repeats=1)
    rows = [{"training": f"stacked ({args.models} models at once)", "images_per_s": seen / wall_all,
             "images_per_cpu_s": seen / cpu_all},
            {"training": "one model at a time", "images_per_s": seen / wall_one, "images_per_cpu_s": seen / cpu_one}]
    ratio = wall_one / wall_all
    print(f"device: {describe_device(device)}; {args.arch}, {args.images} images 1x{args.size}x{args.size}, "
          f"batch {args.batch}")
    print_table(rows)
    print(f"ratio stacked / one at a time: {ratio:.2f}x wall, {cpu_one / cpu_all:.2f}x per CPU-second")
    write_json(args.json, {"device": describe_device(device), "args": vars(args), "rows": rows, "ratio": ratio,
                           "cpu_ratio": cpu_one / cpu_all})


if __name__ == "__main__":
    main()

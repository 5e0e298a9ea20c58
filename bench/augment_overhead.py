"""Augmentation overhead: time of an augmented training epoch over a plain one at equal image count.

The reference is the same training loop with no augmentation, on the same images, model and device, in the
same run. Overhead = augmented / plain (1.00 = free). Prints a table per augmentation; writes JSON.

    python bench/augment_overhead.py --images 4096 --arch small_cnn [--device cuda]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import best_time, describe_device, pick_device, print_table, write_json  # noqa: E402

from auglens.augment import AUGMENTATIONS, sample_keys  # noqa: E402
from auglens.models import build_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--arch", default="small_cnn")
    parser.add_argument("--device")
    parser.add_argument("--json", default="bench/results/augment_overhead.json")
    args = parser.parse_args()
    device = pick_device(args.device)
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.images, args.channels, args.size, args.size), generator=g, dtype=torch.uint8).to(device)
    labels = torch.randint(0, 10, (args.images,), generator=g).to(device)
    model = build_model(args.arch, 10, args.channels).to(device)
    optimizer = torch.optim.Adam(model.parameters())

    def epoch(augmentation):
        for start in range(0, args.images, args.batch):
            x = images[start : start + args.batch].float() / 255
            y = labels[start : start + args.batch]
            lam = torch.ones(len(y), device=device)
            partner = y
            if augmentation is not None:
                out = augmentation(x, y, sample_keys(1, 0, torch.arange(start, start + len(y), device=device)))
                x, partner, lam = out.images, out.partner_labels, out.lam
            logits = model(x)
            ce = torch.nn.functional.cross_entropy
            loss = (lam * ce(logits, y, reduction="none") + (1 - lam) * ce(logits, partner, reduction="none")).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    plain = best_time(lambda: epoch(None), device)
    rows = []
    for name in AUGMENTATIONS.names():
        seconds = best_time(lambda: epoch(AUGMENTATIONS.build(name)), device)
        rows.append({"augmentation": name, "epoch_s": seconds, "plain_epoch_s": plain, "overhead": seconds / plain})
    print(f"device: {describe_device(device)}; {args.images} images {args.channels}x{args.size}x{args.size}, {args.arch}")
    print_table(rows)
    write_json(args.json, {"device": describe_device(device), "args": vars(args), "rows": rows})


if __name__ == "__main__":
    main()

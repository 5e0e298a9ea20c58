"""Training throughput: auglens's batched, device-resident augmented training versus a plain reference.

Reference (measured in the same run, same model, images, batch size and device): the usual PyTorch recipe —
a Dataset applying torchvision.transforms.v2 per sample (RandomAffine, the thesis's affine augmentation),
a DataLoader with worker processes, and an eager training loop. Ours: ``auglens.train.loop`` machinery —
uint8 data held in memory (on the GPU when there is one), one batched augmentation call per batch with
per-sample parameters. Prints images/s of each and the ratio; writes JSON.

    python bench/train_throughput.py --images 8192 --arch small_cnn [--device cuda] [--workers 2]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from _common import best_time, describe_device, pick_device, print_table, write_json  # noqa: E402

from auglens.augment import AUGMENTATIONS, sample_keys  # noqa: E402
from auglens.models import build_model  # noqa: E402


class _PerSampleDataset(torch.utils.data.Dataset):
    def __init__(self, images, labels):
        from torchvision.transforms import v2

        self.images, self.labels = images, labels
        self.transform = v2.Compose([v2.RandomAffine(degrees=15, translate=(0.1, 0.1), scale=(0.9, 1.1), shear=10),
                                     v2.ToDtype(torch.float32, scale=True)])

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.transform(self.images[i]), self.labels[i]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=8192)
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--arch", default="small_cnn")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device")
    parser.add_argument("--json", default="bench/results/train_throughput.json")
    args = parser.parse_args()
    device = pick_device(args.device)
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.images, args.channels, args.size, args.size), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, 10, (args.images,), generator=g)
    model = build_model(args.arch, 10, args.channels).to(device)
    optimizer = torch.optim.Adam(model.parameters())

    def step(x, y):
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    loader = torch.utils.data.DataLoader(_PerSampleDataset(images, labels), batch_size=args.batch,
                                         num_workers=args.workers, persistent_workers=args.workers > 0)

    def reference_epoch():
        for x, y in loader:
            step(x.to(device, non_blocking=True), y.to(device, non_blocking=True))

    resident, resident_labels = images.to(device), labels.to(device)
    affine = AUGMENTATIONS.build("affine")

    def auglens_epoch():
        for start in range(0, args.images, args.batch):
            x = resident[start : start + args.batch].float() / 255
            y = resident_labels[start : start + args.batch]
            keys = sample_keys(1, 0, torch.arange(start, start + len(y), device=device))
            step(affine(x, y, keys).images, y)

    t_ref = best_time(reference_epoch, device)
    t_ours = best_time(auglens_epoch, device)
    rows = [{"pipeline": "auglens batched augmentation", "images_per_s": args.images / t_ours},
            {"pipeline": f"torchvision v2 per sample + DataLoader({args.workers} workers)",
             "images_per_s": args.images / t_ref}]
    ratio = t_ref / t_ours
    print(f"device: {describe_device(device)}; {args.images} images {args.channels}x{args.size}x{args.size}, "
          f"{args.arch}, batch {args.batch}, affine augmentation")
    print_table(rows)
    print(f"ratio auglens / reference: {ratio:.2f}x")
    write_json(args.json, {"device": describe_device(device), "args": vars(args), "rows": rows, "ratio": ratio})


if __name__ == "__main__":
    main()

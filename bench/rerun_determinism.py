"""The same training twice on one device: how far apart are the two models? (not a speed figure)

Trains the thesis's model (EfficientNet-B0 at its input size by default) twice with one spec, one data set and
``runtime.deterministic = true`` (``torch.use_deterministic_algorithms`` in warn-only mode), then reports the
largest absolute difference of any parameter and of any buffer (batch-norm statistics), how many tensors
differ at all, the share of test images the two models predict differently and the largest logit difference.
Every warning torch gave about an operation without a deterministic implementation is listed: on CUDA,
EfficientNet-B0's squeeze-excitation blocks (``AdaptiveAvgPool2d``) have a non-deterministic backward, so
two runs may differ there; on a CPU both runs are expected to be identical.

The images are random (uint8, 3x32x32, CIFAR-10's shape and class count, resized to ``--size``): the question
is whether the arithmetic repeats, not what the model learns.

    python bench/rerun_determinism.py                                   # efficientnet_b0 at 224, 2 epochs
    python bench/rerun_determinism.py --size 64 --images 64 --epochs 1 --device cpu    # a quick CPU run
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import describe_device, pick_device, print_table, write_json  # noqa: E402

from auglens.config import RuntimeConfig  # noqa: E402
from auglens.data.datasets import ImageSet  # noqa: E402
from auglens.data.prepared import PreparedData  # noqa: E402
from auglens.study.runtime import apply_determinism  # noqa: E402
from auglens.train.loop import TrainSpec, initial_model, predict_logits, train_model  # noqa: E402


def _data(images: int, test_images: int, side: int) -> PreparedData:
    g = torch.Generator().manual_seed(0)
    total = images + 2 * test_images
    pixels = torch.randint(0, 256, (total, 3, side, side), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, 10, (total,), generator=g)
    classes = [str(k) for k in range(10)]
    parts = [slice(0, images), slice(images, images + test_images), slice(images + test_images, total)]
    train, validation, test = (ImageSet(pixels[p], labels[p], classes) for p in parts)
    mean = pixels[:images].float().div(255).mean(dim=(0, 2, 3))
    std = pixels[:images].float().div(255).std(dim=(0, 2, 3))
    return PreparedData(train, validation, test, mean, std)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="efficientnet_b0")
    parser.add_argument("--size", type=int, default=224, help="model input side (the thesis: 224)")
    parser.add_argument("--images", type=int, default=2048, help="training images")
    parser.add_argument("--test-images", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32, help="training batch (the thesis: 32)")
    parser.add_argument("--augmentation", default="none", help="e.g. affine: originals plus augmented copies")
    parser.add_argument("--device")
    parser.add_argument("--json", default="bench/results/rerun_determinism.json")
    args = parser.parse_args()
    device = pick_device(args.device)
    apply_determinism(RuntimeConfig(deterministic=True))  # before any CUDA work: fixes cuBLAS's workspace
    data = _data(args.images, args.test_images, 32)
    spec = TrainSpec(args.arch, args.augmentation, input_size=args.size, batch_size=args.batch,
                     eval_batch_size=128, epochs=args.epochs, checkpoint="last")

    runs, seconds, notes = [], [], set()
    for _ in range(2):
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = train_model(spec, data, device)
        seconds.append(time.perf_counter() - start)
        notes |= {str(w.message).split("\n")[0] for w in caught if "deterministic" in str(w.message)}
        model = initial_model(spec, data.num_classes, data.in_channels, pretrained=False)
        model.load_state_dict(result.state_dict)
        model.to(device)
        logits = predict_logits(model, data.test.images, data.mean, data.std, args.size, 128, device).cpu()
        runs.append(({k: v.cpu() for k, v in result.state_dict.items()}, logits))

    (first, logits_a), (second, logits_b) = runs
    parameter_names = {name for name, _ in model.named_parameters()}

    def largest(names) -> float:
        diffs = [(first[k].double() - second[k].double()).abs().max().item() for k in names
                 if first[k].is_floating_point() and first[k].numel()]
        return max(diffs, default=0.0)

    differing = [k for k in first if not torch.equal(first[k], second[k])]
    disagreement = (logits_a.argmax(1) != logits_b.argmax(1)).double().mean().item()
    row = {"arch": args.arch, "input": args.size, "images": args.images, "epochs": args.epochs,
           "max_param_diff": largest(parameter_names), "max_buffer_diff": largest(set(first) - parameter_names),
           "tensors_differing": len(differing), "tensors": len(first),
           "prediction_disagreement": disagreement,
           "max_logit_diff": (logits_a - logits_b).abs().max().item(),
           "seconds_per_training": min(seconds)}
    print(f"device: {describe_device(device)}")
    print_table([row])
    print("warnings about non-deterministic operations: " + ("; ".join(sorted(notes)) if notes else "none"))
    write_json(args.json, {"device": describe_device(device), "torch": torch.__version__, "rows": [row],
                           "nondeterministic_warnings": sorted(notes), "differing_tensors": differing[:50],
                           "args": vars(args)})


if __name__ == "__main__":
    main()

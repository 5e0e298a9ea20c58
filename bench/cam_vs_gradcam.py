"""Benchmark: auglens' Grad-CAM vs pytorch-grad-cam's GradCAM, same model, images, layer and device.

Run on purpose (not a test):

    PYTHONPATH=src python bench/cam_vs_gradcam.py                      # resnet18, 256 x 3x64x64
    PYTHONPATH=src python bench/cam_vs_gradcam.py --arch vgg11 --n 64 --size 128 --device cpu

Both implementations get the same chunks of ``--batch-size`` images (memory-bounded, as auglens uses it),
produce full-resolution maps for the predicted class, and are timed after one warm-up run as the best of
``--repeats`` (runs of the two interleaved, so load drift on a shared machine hits both alike). Prints a table (images/s, ours/theirs, max |difference|) and writes it as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from auglens.cam import compute, resolve_target_layer

# Standard CAM layer per architecture (the last block's output); other archs use the last conv.
DEFAULT_LAYERS = {"resnet18": "layer4", "resnet34": "layer4", "resnet50": "layer4", "vgg11": "features.19",
                  "densenet121": "features.norm5", "efficientnet_b0": "features.8",
                  "mobilenet_v3_small": "features.12"}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet18", help="torchvision model name (random weights)")
    parser.add_argument("--layer", default=None, help="target layer (dotted name); default depends on --arch")
    parser.add_argument("--n", type=int, default=256, help="number of images")
    parser.add_argument("--size", type=int, default=64, help="image side length")
    parser.add_argument("--num-classes", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64, help="images per chunk, for both implementations")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs after one warm-up; best is kept")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default="bench/results/cam_vs_gradcam.json", help="output JSON path")
    return parser.parse_args(argv)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best_times(fns: dict, device: torch.device, repeats: int) -> tuple[dict, dict]:
    """Best wall time and last output of each function; one warm-up each (allocator, cuDNN / oneDNN
    algorithm selection), then the timed runs interleaved so load drift on a shared machine hits both."""
    outputs = {name: fn() for name, fn in fns.items()}
    _sync(device)
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            outputs[name] = fn()
            _sync(device)
            best[name] = min(best[name], time.perf_counter() - start)
    return best, outputs


def main(argv=None) -> dict:
    args = parse_args(argv)
    import torchvision
    from pytorch_grad_cam import GradCAM

    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    model = torchvision.models.get_model(args.arch, weights=None, num_classes=args.num_classes).to(device).eval()
    layer_name = args.layer or DEFAULT_LAYERS.get(args.arch, "last_conv")
    layer = resolve_target_layer(model, layer_name)
    generator = torch.Generator().manual_seed(args.seed + 1)
    images = torch.randn(args.n, 3, args.size, args.size, generator=generator).to(device)
    chunks = images.split(args.batch_size)

    def ours() -> torch.Tensor:
        return compute(model, images, method="gradcam", target_layer=layer, batch_size=args.batch_size)

    reference = GradCAM(model=model, target_layers=[layer])

    def theirs() -> torch.Tensor:
        return torch.cat([torch.from_numpy(reference(input_tensor=chunk, targets=None)) for chunk in chunks])

    try:
        times, maps = _best_times({"ours": ours, "theirs": theirs}, device, args.repeats)
    finally:
        reference.activations_and_grads.release()
        model.zero_grad(set_to_none=True)  # pytorch-grad-cam leaves parameter gradients behind

    t_ours, t_theirs = times["ours"], times["theirs"]
    result = {
        "arch": args.arch, "layer": layer_name, "n": args.n, "size": args.size, "batch_size": args.batch_size,
        "device": str(device),
        "device_name": (torch.cuda.get_device_name(device) if device.type == "cuda"
                        else platform.processor() or platform.machine()),
        "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "repeats": args.repeats,
        "torch": torch.__version__,
        "ours_images_per_s": args.n / t_ours, "theirs_images_per_s": args.n / t_theirs,
        "ours_s": t_ours, "theirs_s": t_theirs, "speedup_ours_over_theirs": t_theirs / t_ours,
        "max_abs_diff": (maps["ours"].cpu() - maps["theirs"]).abs().max().item(),
    }

    print(f"Grad-CAM, {args.arch} @ {layer_name}, {args.n} x 3x{args.size}x{args.size}, chunks of "
          f"{args.batch_size}, {device} ({result['torch_threads']} threads), best of {args.repeats}")
    print(f"{'implementation':<20}{'images/s':>12}{'seconds':>10}")
    print(f"{'auglens':<20}{result['ours_images_per_s']:>12.1f}{t_ours:>10.3f}")
    print(f"{'pytorch-grad-cam':<20}{result['theirs_images_per_s']:>12.1f}{t_theirs:>10.3f}")
    print(f"ours/theirs (throughput): {result['speedup_ours_over_theirs']:.2f}x   "
          f"max |difference|: {result['max_abs_diff']:.2e}")

    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()

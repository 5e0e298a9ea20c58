"""What storing low-resolution maps as float16 (and upsampling on read) does to the CAM similarity metrics.

The study stores ``compute_lowres`` maps with ``maps_to_storage`` (float16) and upsamples them on read;
the metrics compare a baseline model's maps with an augmented model's. This measures, for every method,
how far each metric moves when both maps go through float16 storage instead of staying float32, and
bounds it. Run with ``-s`` to print the table.
"""

from __future__ import annotations

import pytest
import torch

from auglens.cam import compute_lowres, maps_from_storage, maps_to_storage, upsample_maps

from cam_testing import make_blob_images, make_tiny_net  # tests/cam is on sys.path

functional = pytest.importorskip("auglens.metrics.functional")

METHODS = ["gradcam", "gradcam++", "hirescam", "xgradcam", "layercam", "eigencam", "scorecam"]
METRICS = {
    "mad": functional.mad,
    "msd": functional.msd,
    "pearson": functional.pearson,
    "spearman": functional.spearman,
    "overlap_10": lambda p, q: functional.overlap_rate(p, q, 10),
    "overlap_20": lambda p, q: functional.overlap_rate(p, q, 20),
}
# Bounds on the largest change over all images, methods and layers. Continuous metrics move by float16's
# rounding (<= 2**-12 per low-res pixel); rank-based ones can move by a swap of two nearly tied pixels.
BOUNDS = {"maps": 5e-4, "mad": 2e-4, "msd": 2e-4, "pearson": 1e-3, "spearman": 5e-3,
          "overlap_10": 0.05, "overlap_20": 0.05}


def _perturbed(model, scale, seed):
    """The "augmented" model: the baseline with every weight jittered by ``scale`` x its std."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * p.std() * torch.randn(p.shape, generator=g))
    return model


def measure_float16_storage_error(n_images: int = 32) -> dict[str, float]:
    """Largest |metric(float32 maps) - metric(float16-stored maps)| per metric (+ "maps": largest pixel
    change of the upsampled maps), over methods, two layers and ``n_images`` images."""
    baseline = make_tiny_net()
    augmented = _perturbed(make_tiny_net(), 0.3, seed=1)
    images = make_blob_images(n_images, seed=3)
    size = tuple(images.shape[-2:])
    worst = dict.fromkeys(["maps", *METRICS], 0.0)
    for method in METHODS:
        for layer in ["features.9", "features.5"]:
            options = {"score_batch_size": 256} if method == "scorecam" else {}
            p_low = compute_lowres(baseline, images, method=method, target_layer=layer, **options).maps
            q_low = compute_lowres(augmented, images, method=method, target_layer=layer, **options).maps
            p32, q32 = upsample_maps(p_low, size), upsample_maps(q_low, size)
            p16 = upsample_maps(maps_from_storage(maps_to_storage(p_low)), size)
            q16 = upsample_maps(maps_from_storage(maps_to_storage(q_low)), size)
            worst["maps"] = max(worst["maps"], (p16 - p32).abs().max().item(), (q16 - q32).abs().max().item())
            for name, metric in METRICS.items():
                change = (metric(p32, q32) - metric(p16, q16)).abs()
                change = change[~change.isnan()]  # NaN only for constant maps, in both variants alike
                if change.numel():
                    worst[name] = max(worst[name], change.max().item())
    return worst


def test_float16_storage_changes_metrics_negligibly():
    worst = measure_float16_storage_error()
    print("\nlargest change from float16 low-res storage:", {k: f"{v:.2e}" for k, v in worst.items()})
    for name, bound in BOUNDS.items():
        assert worst[name] <= bound, f"{name}: float16 storage changed it by {worst[name]:.3g} > {bound}"

"""Shared models, images and the pytorch-grad-cam reference for the CAM tests."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

NUM_CLASSES = 5

# Our method names -> pytorch-grad-cam class names.
REFERENCE_CLASSES = {
    "gradcam": "GradCAM",
    "gradcam++": "GradCAMPlusPlus",
    "hirescam": "HiResCAM",
    "xgradcam": "XGradCAM",
    "layercam": "LayerCAM",
    "eigencam": "EigenCAM",
    "scorecam": "ScoreCAM",
}


class TinyNet(nn.Module):
    """conv-BN-ReLU x2, conv-ReLU, conv-ReLU, GAP, linear: maps 16x16 (features.0-5) and 8x8 (features.6-9)
    on 32x32 inputs. ``inplace`` makes every ReLU in-place (the pytorch-grad-cam aliasing quirk)."""

    auglens_target_layer = "features.5"

    def __init__(self, num_classes: int = NUM_CLASSES, inplace: bool = False):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace),
            nn.Conv2d(8, 16, 3, padding=1, stride=2), nn.BatchNorm2d(16), nn.ReLU(inplace),
            nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(inplace),
            nn.Conv2d(16, 24, 3, padding=1, stride=2), nn.ReLU(inplace),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(24, num_classes)

    def forward(self, x):
        return self.fc(self.pool(self.features(x)).flatten(1))


def make_tiny_net(seed: int = 6, inplace: bool = False) -> TinyNet:
    """Random but non-degenerate: BN statistics and affine parameters are randomised too, so BN is not the
    identity. Seed 6 gives non-constant maps for every method, layer and target choice used in the tests."""
    torch.manual_seed(seed)
    model = TinyNet(inplace=inplace)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
    return model.eval()


def make_blob_images(n: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    """``(n, 3, size, size)``: three coloured Gaussian blobs on weak noise per image, so CAMs have structure
    to localise (pure noise gives flatter maps)."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    images = 0.3 * torch.randn(n, 3, size, size, generator=g)
    for _ in range(3):
        centre = torch.rand(n, 2, generator=g) * size
        sigma = 2 + 4 * torch.rand(n, generator=g)
        amplitude = 2 * torch.randn(n, 3, generator=g)
        d2 = (yy - centre[:, 0, None, None]) ** 2 + (xx - centre[:, 1, None, None]) ** 2
        bump = torch.exp(-d2 / (2 * sigma[:, None, None] ** 2))
        images = images + amplitude[:, :, None, None] * bump[:, None]
    return images


def reference_cam(model, layer, images, method, targets=None):
    """pytorch-grad-cam's maps ``(N, H, W)`` for our method name; hooks released even on error."""
    pgc = pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    cam = getattr(pgc, REFERENCE_CLASSES[method])(model=model, target_layers=[layer])
    try:
        wrapped = None if targets is None else [ClassifierOutputTarget(int(t)) for t in targets]
        return torch.from_numpy(cam(input_tensor=images, targets=wrapped))
    finally:
        cam.activations_and_grads.release()


def assert_maps_informative(maps: torch.Tensor, min_fraction: float = 0.75) -> None:
    """Guard against vacuous parity: most maps must be far from constant (std > 0.05)."""
    std = maps.flatten(1).std(dim=1)
    fraction = (std > 0.05).float().mean().item()
    assert fraction >= min_fraction, f"maps too flat for a meaningful comparison: per-image std {std.tolist()}"

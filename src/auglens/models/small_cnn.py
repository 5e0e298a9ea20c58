"""A small VGG-style CNN for laptop-sized studies (Fashion-MNIST, CIFAR at native resolution).

Three conv blocks (conv-BN-ReLU x2, then pooling except after the last), global average pooling and a
linear classifier. The last block keeps a 7x7 map on 28x28 inputs (8x8 on 32x32), so CAMs at the
target layer still localise.
"""

from __future__ import annotations

import torch.nn as nn

from auglens.models.registry import MODELS


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=False),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=False),
    )


class SmallCNN(nn.Module):
    auglens_target_layer = "features.block3"

    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: int = 32):
        super().__init__()
        self.features = nn.Sequential()
        self.features.add_module("block1", _block(in_channels, width))
        self.features.add_module("pool1", nn.MaxPool2d(2))
        self.features.add_module("block2", _block(width, 2 * width))
        self.features.add_module("pool2", nn.MaxPool2d(2))
        self.features.add_module("block3", _block(2 * width, 4 * width))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(4 * width, num_classes)

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)).flatten(1))


@MODELS.register("small_cnn")
def small_cnn(num_classes: int, in_channels: int = 1, width: int = 32) -> SmallCNN:
    """Small VGG-style CNN (3 conv blocks, GAP, linear) for CPU-sized studies."""
    return SmallCNN(num_classes, in_channels, width)


@MODELS.register("tiny_cnn")
def tiny_cnn(num_classes: int, in_channels: int = 1) -> SmallCNN:
    """The small CNN at width 8: for tests and smoke runs."""
    return SmallCNN(num_classes, in_channels, width=8)

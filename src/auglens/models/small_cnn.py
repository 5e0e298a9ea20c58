"""A small VGG-style CNN for laptop-sized studies (Fashion-MNIST, CIFAR at native resolution).

Three conv blocks (conv-BN-ReLU, twice by default, then pooling except after the last), global average
pooling and a linear classifier. The last block keeps a 7x7 map on 28x28 inputs (8x8 on 32x32), so CAMs at
the target layer still localise. ``convs_per_block = [1, 1, 2]`` drops the second convolution of the first
two blocks: on a CPU most of the training time goes to the full- and half-resolution layers (their
normalisation, activation and pooling are memory bound), so it trains about 1.6x faster per image, at the
cost of about 0.015 Fashion-MNIST test accuracy in the default study's recipe.
"""

from __future__ import annotations

import torch.nn as nn

from auglens.models.registry import MODELS


def _block(c_in: int, c_out: int, convs: int = 2) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(convs):
        layers += [nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                   nn.ReLU(inplace=False)]
    return nn.Sequential(*layers)


class SmallCNN(nn.Module):
    auglens_target_layer = "features.block3"

    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: int = 32,
                 convs_per_block: tuple[int, int, int] | list[int] = (2, 2, 2)):
        super().__init__()
        if len(convs_per_block) != 3 or any(int(c) < 1 for c in convs_per_block):
            raise ValueError(f"convs_per_block: three counts >= 1 (one per block), got {list(convs_per_block)}")
        c1, c2, c3 = (int(c) for c in convs_per_block)
        self.features = nn.Sequential()
        self.features.add_module("block1", _block(in_channels, width, c1))
        self.features.add_module("pool1", nn.MaxPool2d(2))
        self.features.add_module("block2", _block(width, 2 * width, c2))
        self.features.add_module("pool2", nn.MaxPool2d(2))
        self.features.add_module("block3", _block(2 * width, 4 * width, c3))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(4 * width, num_classes)

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)).flatten(1))


@MODELS.register("small_cnn")
def small_cnn(num_classes: int, in_channels: int = 1, width: int = 32,
              convs_per_block: tuple[int, int, int] | list[int] = (2, 2, 2)) -> SmallCNN:
    """Small VGG-style CNN (3 conv blocks, GAP, linear) for CPU-sized studies."""
    return SmallCNN(num_classes, in_channels, width, convs_per_block)


@MODELS.register("tiny_cnn")
def tiny_cnn(num_classes: int, in_channels: int = 1) -> SmallCNN:
    """The small CNN at width 8: for tests and smoke runs."""
    return SmallCNN(num_classes, in_channels, width=8)

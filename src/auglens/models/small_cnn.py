"""A small VGG-style CNN for laptop-sized studies (Fashion-MNIST, CIFAR at native resolution).

Three conv blocks (conv-BN-ReLU, twice by default, then pooling except after the last), global average
pooling and a linear classifier. The last block keeps a 7x7 map on 28x28 inputs (8x8 on 32x32), so CAMs at
the target layer still localise. ``convs_per_block = [1, 1, 2]`` drops the second convolution of the first
two blocks: on a CPU most of the training time goes to the full- and half-resolution layers (their
normalisation, activation and pooling are memory bound), so it trains about 1.6x faster per image, at the
cost of about 0.015 Fashion-MNIST test accuracy in the default study's recipe.

``pool_before_norm = True`` moves each pooling of the first two blocks from after the ReLU to straight after
the block's last convolution (conv -> max-pool -> BN -> ReLU), so that normalisation and activation run on a
quarter of the pixels. ReLU commutes with max-pooling exactly; the BN does not quite: its statistics are taken
over the pooled values. It is another architecture (another key), not a faster route to the same one. In the
default study's recipe it trained about 1.15x faster per step and, at learning rate 1e-2, reached a higher
test accuracy (docs/methodology.md, "The default study's model").
"""

from __future__ import annotations

import torch.nn as nn

from auglens.models.registry import MODELS


def _block(c_in: int, c_out: int, convs: int = 2, pool_before_norm: bool = False) -> nn.Sequential:
    """``convs`` x (conv, BN, ReLU); ``pool_before_norm``: a 2x2 max-pool between the last conv and its BN."""
    layers: list[nn.Module] = []
    for i in range(convs):
        layers.append(nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1, bias=False))
        if pool_before_norm and i == convs - 1:
            layers.append(nn.MaxPool2d(2))
        layers += [nn.BatchNorm2d(c_out), nn.ReLU(inplace=False)]
    return nn.Sequential(*layers)


class SmallCNN(nn.Module):
    auglens_target_layer = "features.block3"

    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: int = 32,
                 convs_per_block: tuple[int, int, int] | list[int] = (2, 2, 2), pool_before_norm: bool = False):
        super().__init__()
        if len(convs_per_block) != 3 or any(int(c) < 1 for c in convs_per_block):
            raise ValueError(f"convs_per_block: three counts >= 1 (one per block), got {list(convs_per_block)}")
        if not isinstance(pool_before_norm, bool):
            raise ValueError(f"pool_before_norm: true or false, got {pool_before_norm!r}")
        c1, c2, c3 = (int(c) for c in convs_per_block)
        self.features = nn.Sequential()
        # With pool_before_norm the pools live inside blocks 1 and 2, so there are no pool1/pool2 modules.
        self.features.add_module("block1", _block(in_channels, width, c1, pool_before_norm))
        if not pool_before_norm:
            self.features.add_module("pool1", nn.MaxPool2d(2))
        self.features.add_module("block2", _block(width, 2 * width, c2, pool_before_norm))
        if not pool_before_norm:
            self.features.add_module("pool2", nn.MaxPool2d(2))
        self.features.add_module("block3", _block(2 * width, 4 * width, c3))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(4 * width, num_classes)

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)).flatten(1))


@MODELS.register("small_cnn")
def small_cnn(num_classes: int, in_channels: int = 1, width: int = 32,
              convs_per_block: tuple[int, int, int] | list[int] = (2, 2, 2), pool_before_norm: bool = False
              ) -> SmallCNN:
    """Small VGG-style CNN (3 conv blocks, GAP, linear) for CPU-sized studies."""
    return SmallCNN(num_classes, in_channels, width, convs_per_block, pool_before_norm)


@MODELS.register("tiny_cnn")
def tiny_cnn(num_classes: int, in_channels: int = 1) -> SmallCNN:
    """The small CNN at width 8: for tests and smoke runs."""
    return SmallCNN(num_classes, in_channels, width=8)

"""HiResCAM: the element-wise product of gradients and activations, summed over channels.

Draelos, Carin. "Use HiResCAM instead of Grad-CAM for faithful explanations of convolutional neural
networks". 2020. https://arxiv.org/abs/2011.08891

``map = ReLU(sum_c g_c * A_c)``: unlike Grad-CAM the gradient is not averaged over space first, so for a
CNN ending in global average pooling + linear layer the map provably sums to the target logit (before
ReLU and normalisation).
"""

from __future__ import annotations

from torch import Tensor

from auglens.cam.base import CAM_METHODS, BaseCAM, CamContext


@CAM_METHODS.register("hirescam")
class HiResCAM(BaseCAM):
    """HiResCAM (Draelos & Carin, 2020): sum over channels of gradient x activation."""

    def combine(self, activations: Tensor, gradients: Tensor, context: CamContext) -> Tensor:
        """``(N, C, h, w) -> (N, h, w)``."""
        return (gradients * activations).sum(dim=1)

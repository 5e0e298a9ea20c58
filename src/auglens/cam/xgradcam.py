"""XGrad-CAM: channel weights are gradients averaged with the normalised activation as weights.

Fu, Hu, Dong, Wang, Li, Liu. "Axiom-based Grad-CAM: Towards Accurate Visualization and Explanation of
CNNs". BMVC 2020. https://arxiv.org/abs/2008.02312

``w_c = sum_ij g_cij * A_cij / sum_ab A_cab`` (Eq. 12).

Matched from pytorch-grad-cam (our exactness reference): ``eps = 1e-7`` is added to the per-channel
activation sum itself (not to its absolute value). For a target layer before its ReLU the sum can be near
0 or negative, and the channel's weight then blows up or changes sign; we reproduce that rather than
guard against it.
"""

from __future__ import annotations

from torch import Tensor

from auglens.cam.base import CAM_METHODS, BaseCAM, CamContext


@CAM_METHODS.register("xgradcam")
class XGradCAM(BaseCAM):
    """XGrad-CAM (Fu et al., 2020): activation-weighted average of gradients."""

    def __init__(self, eps: float = 1e-7):
        self.eps = eps

    def channel_weights(self, activations: Tensor, gradients: Tensor, context: CamContext) -> Tensor:
        """``(N, C, h, w) -> (N, C)``."""
        sum_activations = activations.sum(dim=(2, 3), keepdim=True)  # (N, C, 1, 1)
        # Product first, then the division: the reference's evaluation order, kept for bit-closeness.
        return (gradients * activations / (sum_activations + self.eps)).sum(dim=(2, 3))

"""Grad-CAM: channel weights are the spatially averaged gradients of the target logit.

Selvaraju, Cogswell, Das, Vedantam, Parikh, Batra. "Grad-CAM: Visual Explanations from Deep Networks via
Gradient-based Localization". ICCV 2017. https://arxiv.org/abs/1610.02391

``w_c = mean_ij dy/dA_cij`` and ``map = ReLU(sum_c w_c A_c)`` (Eq. 1-2).
"""

from __future__ import annotations

from torch import Tensor

from auglens.cam.base import CAM_METHODS, BaseCAM, CamContext


@CAM_METHODS.register("gradcam")
class GradCAM(BaseCAM):
    """Grad-CAM (Selvaraju et al., 2017): gradient-averaged channel weights."""

    def channel_weights(self, activations: Tensor, gradients: Tensor, context: CamContext) -> Tensor:
        """``(N, C, h, w) -> (N, C)``: global-average-pooled gradients."""
        return gradients.mean(dim=(2, 3))

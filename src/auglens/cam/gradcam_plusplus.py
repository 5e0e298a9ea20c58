"""Grad-CAM++: channel weights from positive gradients, each pixel weighted by a closed-form ``alpha``.

Chattopadhyay, Sarkar, Howlader, Balasubramanian. "Grad-CAM++: Improved Visual Explanations for Deep
Convolutional Networks". WACV 2018. https://arxiv.org/abs/1710.11063

With ``g = dy/dA`` the paper's exponential-output approximation (Eq. 19) gives
``alpha_cij = g^2 / (2 g^2 + sum_ab A_cab * g^3)`` and ``w_c = sum_ij alpha_cij ReLU(g_cij)``.

Matched from pytorch-grad-cam (our exactness reference):

* ``eps = 1e-6`` is added to the denominator of ``alpha``;
* ``alpha`` is set to 0 wherever the gradient is exactly 0 (not where the denominator is 0);
* ``alpha`` is used as is, without the per-channel renormalisation of the alphas that some
  implementations add.
"""

from __future__ import annotations

import torch
from torch import Tensor

from auglens.cam.base import CAM_METHODS, BaseCAM, CamContext


@CAM_METHODS.register("gradcam++")
class GradCAMPlusPlus(BaseCAM):
    """Grad-CAM++ (Chattopadhyay et al., 2018): alpha-weighted positive gradients."""

    def __init__(self, eps: float = 1e-6):
        self.eps = eps

    def channel_weights(self, activations: Tensor, gradients: Tensor, context: CamContext) -> Tensor:
        """``(N, C, h, w) -> (N, C)``."""
        g2 = gradients * gradients
        g3 = g2 * gradients
        sum_activations = activations.sum(dim=(2, 3), keepdim=True)  # (N, C, 1, 1)
        alpha = g2 / (2 * g2 + sum_activations * g3 + self.eps)
        alpha = torch.where(gradients != 0, alpha, torch.zeros_like(alpha))
        return (gradients.clamp_min(0) * alpha).sum(dim=(2, 3))

"""LayerCAM: activations weighted pixel by pixel by the positive part of their gradient.

Jiang, Zhang, Hou, Cheng, Wei. "LayerCAM: Exploring Hierarchical Class Activation Maps for
Localization". IEEE Transactions on Image Processing 30, 2021. https://doi.org/10.1109/TIP.2021.3089943

``map = ReLU(sum_c ReLU(g_c) * A_c)`` (Eq. 6-7). The paper's extra tanh scaling for shallow layers when
fusing several layers is not applied (one layer here, as in pytorch-grad-cam).
"""

from __future__ import annotations

from torch import Tensor

from auglens.cam.base import CAM_METHODS, BaseCAM, CamContext


@CAM_METHODS.register("layercam")
class LayerCAM(BaseCAM):
    """LayerCAM (Jiang et al., 2021): sum over channels of ReLU(gradient) x activation."""

    def combine(self, activations: Tensor, gradients: Tensor, context: CamContext) -> Tensor:
        """``(N, C, h, w) -> (N, h, w)``."""
        return (gradients.clamp_min(0) * activations).sum(dim=1)

"""Class activation maps (CAMs): which pixels a classifier's decision rests on.

The engine mirrors pytorch-grad-cam's design and reproduces its numbers (tests compare every method to it
at 1e-5): :class:`~auglens.cam.base.BaseCAM` owns the hooks, targets, ReLU and normalisation, and each
method overrides one hook in its own module. Unlike pytorch-grad-cam the computation is pure batched
torch on the images' device, backpropagates only down to the target layer and leaves the model as found.

Typical use::

    from auglens.cam import compute, compute_lowres, upsample_maps
    maps = compute(model, images, method="gradcam")               # (N, H, W)
    res = compute_lowres(model, images, method="scorecam")         # res.maps (N, h, w), store these
    maps = upsample_maps(res.maps, images.shape[-2:])               # same as compute()
"""

from __future__ import annotations

# Importing each method module (explicitly, below) is what registers it in CAM_METHODS.
from auglens.cam.api import CamResult, build_method, compute, compute_lowres
from auglens.cam.base import CAM_METHODS, BaseCAM, CamContext, minmax_normalise
from auglens.cam.eigencam import EigenCAM
from auglens.cam.gradcam import GradCAM
from auglens.cam.gradcam_plusplus import GradCAMPlusPlus
from auglens.cam.hirescam import HiResCAM
from auglens.cam.layercam import LayerCAM
from auglens.cam.layers import resolve_target_layer
from auglens.cam.scaling import maps_from_storage, maps_to_storage, upsample_maps
from auglens.cam.scorecam import ScoreCAM
from auglens.cam.xgradcam import XGradCAM

__all__ = [
    "CAM_METHODS",
    "BaseCAM",
    "CamContext",
    "CamResult",
    "EigenCAM",
    "GradCAM",
    "GradCAMPlusPlus",
    "HiResCAM",
    "LayerCAM",
    "ScoreCAM",
    "XGradCAM",
    "build_method",
    "compute",
    "compute_lowres",
    "maps_from_storage",
    "maps_to_storage",
    "minmax_normalise",
    "resolve_target_layer",
    "upsample_maps",
]

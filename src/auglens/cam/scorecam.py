"""Score-CAM: each channel is weighted by how much the target logit keeps when the image is masked by it.

Wang, Wang, Du, Yang, Zhang, Ding, Mardziel, Hu. "Score-CAM: Score-Weighted Visual Explanations for
Convolutional Neural Networks". CVPR Workshops 2020. https://arxiv.org/abs/1910.01279

For channel ``c``: upsample ``A_c`` to the input size, min-max normalise it to ``[0, 1]``, multiply the
input by it, run the model, read the target logit ``s_c``; ``w = softmax_c(s)`` and
``map = ReLU(sum_c w_c A_c)``. No gradients; ``N * C`` extra forward passes.

Quirks matched from pytorch-grad-cam (our exactness reference):

* the activation upsampling is bilinear with ``align_corners=True`` (``nn.UpsamplingBilinear2d``), unlike
  the final map upsampling (``align_corners=False``, as cv2.resize);
* each upsampled channel is normalised as ``(x - min) / (max - min + 1e-8)``;
* the score is the raw target **logit** of the masked image (the paper scores the increase of the target
  output over a baseline input), and the weights are a softmax of these logits **across the channels**
  of one image, not a softmax over classes;
* masked images go through the model 16 at a time by default (``score_batch_size``). In eval mode the batch
  composition does not change the scores, so this only trades memory for speed; unlike the reference we
  also pack channels of different images into one batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from auglens.cam.base import CAM_METHODS, BaseCAM, CamContext

#: Added to each upsampled channel's range before dividing (pytorch-grad-cam's value).
MASK_EPS = 1e-8


@CAM_METHODS.register("scorecam")
class ScoreCAM(BaseCAM):
    """Score-CAM (Wang et al., 2020): softmax over channels of the target logit of channel-masked inputs."""

    uses_gradients = False

    def __init__(self, score_batch_size: int = 16):
        if int(score_batch_size) < 1:
            raise ValueError(f"score_batch_size must be a positive integer; got {score_batch_size!r}")
        self.score_batch_size = int(score_batch_size)

    def channel_weights(self, activations: Tensor, gradients: Tensor | None, context: CamContext) -> Tensor:
        """``(N, C, h, w) -> (N, C)``."""
        n, c, h, w = activations.shape
        images = context.images
        size = tuple(images.shape[-2:])
        # The N*C masked images never exist all at once (N=64, C=512 at 224^2 would be ~20 GB): each
        # sub-batch of (image, channel) pairs is built, scored and dropped.
        channels = activations.reshape(n * c, 1, h, w)
        image_of = torch.arange(n, device=activations.device).repeat_interleave(c)  # pair -> image index
        scores = torch.empty(n * c, dtype=activations.dtype, device=activations.device)
        for start in range(0, n * c, self.score_batch_size):
            stop = min(start + self.score_batch_size, n * c)
            masks = F.interpolate(channels[start:stop], size=size, mode="bilinear", align_corners=True)
            lo = masks.amin(dim=(2, 3), keepdim=True)
            hi = masks.amax(dim=(2, 3), keepdim=True)
            masks = (masks - lo) / (hi - lo + MASK_EPS)  # (B, 1, H, W)
            idx = image_of[start:stop]
            logits = context.model(images[idx] * masks.to(images.dtype))
            scores[start:stop] = logits.gather(1, context.targets[idx, None])[:, 0].to(scores.dtype)
        return torch.softmax(scores.reshape(n, c), dim=-1)

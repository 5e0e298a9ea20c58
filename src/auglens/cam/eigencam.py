"""EigenCAM: the projection of the activations on their first principal component; no gradients, no class.

Muhammad, Yeasin. "Eigen-CAM: Class Activation Map using Principal Components". IJCNN 2020.
https://arxiv.org/abs/2008.00299

Per image, the activations are read as ``h*w`` samples of ``C`` features, centred per channel, and
projected on the first right singular vector: ``map = ReLU(A_centred @ v_1)``.

Quirks matched from pytorch-grad-cam (our exactness reference):

* **Targets are ignored.** The map depends only on the activations; ``targets`` (and the predicted class)
  are still returned with the result, but every class gets the same map.
* **NaN activations are replaced by 0** before the SVD.
* **The sign is whatever LAPACK returns.** A singular vector is defined only up to sign, and the ReLU that
  follows keeps only one side of the projection, so flipping the sign gives a different map, not a negated
  one. pytorch-grad-cam uses ``numpy.linalg.svd`` as is, and LAPACK builds disagree on the sign (we measured
  numpy/OpenBLAS and torch/MKL returning opposite signs for 199 of 200 random centred 16x256 matrices).
  Worse, the sign is unstable when the activations are rank-deficient, e.g. when some channels are dead
  (all zero over the map, common after a ReLU): then LAPACK's sign follows rounding-level differences.
  On our test CNN (2 dead channels of 24) random 1e-8 perturbations of the live channels flipped 40-50 %
  of the maps; with the dead channels removed none flipped, even at 1e-4. The only way
  to reproduce the reference is bit-identical input to the same routine, so the default
  ``svd_backend="numpy"`` copies the activations to the host and runs the reference's numpy float32
  centring and numpy's stacked (batched, no Python loop) SVD; the map is moved back to the input's device.
* ``svd_backend="torch"`` keeps everything on the device (``torch.linalg.svd``, batched) and makes the
  sign well defined instead: the projection is flipped when ``|min| > |max|`` (the sign correction of
  Chung & Ying, "Seg-Eigen-CAM", Appl. Sci. 15(13) 7562, 2025, Eq. 13). It does not match
  pytorch-grad-cam's EigenCAM wherever LAPACK's sign happens to differ.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from auglens.cam.base import CAM_METHODS, BaseCAM, CamContext

SVD_BACKENDS = ("numpy", "torch")


@CAM_METHODS.register("eigencam")
class EigenCAM(BaseCAM):
    """EigenCAM (Muhammad & Yeasin, 2020): first principal component of the activations; class-agnostic."""

    uses_gradients = False

    def __init__(self, svd_backend: str = "numpy"):
        if svd_backend not in SVD_BACKENDS:
            raise ValueError(f"svd_backend must be one of {', '.join(SVD_BACKENDS)}; got {svd_backend!r}")
        self.svd_backend = svd_backend

    def combine(self, activations: Tensor, gradients: Tensor | None, context: CamContext) -> Tensor:
        """``(N, C, h, w) -> (N, h, w)``."""
        if self.svd_backend == "numpy":
            return self._combine_numpy(activations)
        n, c, h, w = activations.shape
        activations = torch.where(torch.isnan(activations), torch.zeros_like(activations), activations)
        samples = activations.reshape(n, c, h * w).transpose(1, 2)  # (N, h*w, C)
        centred = samples - samples.mean(dim=1, keepdim=True)
        first = torch.linalg.svd(centred, full_matrices=False).Vh[:, 0, :]  # (N, C)
        projection = torch.bmm(centred, first[:, :, None]).reshape(n, h, w)
        flip = projection.amin(dim=(1, 2)).abs() > projection.amax(dim=(1, 2)).abs()
        return torch.where(flip[:, None, None], -projection, projection)

    @staticmethod
    def _combine_numpy(activations: Tensor) -> Tensor:
        """pytorch-grad-cam's ``get_2d_projection``, stacked over the batch instead of looped."""
        n, c, h, w = activations.shape
        a = activations.detach().cpu().numpy().astype(np.float32, copy=True)
        a[np.isnan(a)] = 0
        # Centred in numpy float32 with the reference's memory layout (a transposed view whose reduction
        # axis is contiguous), so the SVD input is bit-identical to the reference's. It has to be: with dead
        # channels the matrix is rank-deficient and LAPACK's sign follows one-ulp differences in the input
        # (torch's centring differs from numpy's by ~1 ulp and flipped 2 of 4 maps in our first attempt).
        samples = a.reshape(n, c, h * w).transpose(0, 2, 1)  # (N, h*w, C)
        centred = samples - samples.mean(axis=1, keepdims=True)
        # full_matrices=False computes the same V as the reference's full_matrices=True (checked bit for
        # bit on numpy's LAPACK) without the (h*w, h*w) U that can reach 3136^2 per image.
        first = np.linalg.svd(centred, full_matrices=False)[2][:, 0, :]  # (N, C)
        projection = np.matmul(centred, first[:, :, None]).reshape(n, h, w)
        return torch.from_numpy(np.ascontiguousarray(projection, dtype=np.float32)).to(activations.device)

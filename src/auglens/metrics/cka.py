"""Representation similarity between two networks: centred kernel alignment (CKA) of their layers' activations.

Linear CKA (Kornblith et al., "Similarity of Neural Network Representations Revisited", ICML 2019, Eq. 4 with a
linear kernel): for activations ``X (n, d_x)`` and ``Y (n, d_y)`` of the same ``n`` images, column-centred,

    CKA(X, Y) = ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)  =  HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)),

with ``K = X X^T``, ``L = Y Y^T`` and the biased HSIC estimator ``tr(K H L H) / (n - 1)^2``. It is 1 for
identical representations and invariant to orthogonal transforms and isotropic scaling of either, not to
general invertible linear maps. A convolutional layer's activation ``(C, H, W)`` is flattened to ``d = C H W``.

Two estimators (``estimator``):

* ``"linear"``: the biased estimator above, exact over every evaluated image, streamed batch by batch. The
  centred cross-products are accumulated without Gram matrices: running sums of ``x``, ``y``, ``X^T X``,
  ``Y^T Y`` and ``X^T Y`` in float64, centred at the end (``X_c^T Y_c = X^T Y - n mean_x mean_y^T``): memory
  ``8 (d_x + d_y)^2`` bytes, independent of the number of images. Where that exceeds what the ``n`` images'
  features take (``4 n (d_x + d_y)`` bytes plus two ``n x n`` Grams, the usual case for early layers with large
  ``C H W``), the features are kept instead and the same value is computed from the centred Grams; which form
  is used is decided by the sizes only and changes the value by float rounding only.
* ``"unbiased"``: minibatch CKA (Nguyen, Raghu & Kornblith, "Do Wide and Deep Networks Learn the Same Things?",
  ICLR 2021): the unbiased HSIC estimator (Song et al., JMLR 2012) computed on each minibatch of ``m`` images and
  averaged over the minibatches, ``CKA = mean HSIC_1(K, L) / sqrt(mean HSIC_1(K, K) mean HSIC_1(L, L))``. Memory
  ``m x m`` per layer, whatever ``n`` and ``d``; the value depends on how the images are cut into minibatches
  (consecutive chunks of ``batch_size`` in test-set order; a last chunk of fewer than 4 images, on which the
  estimator is undefined, is left out). It removes the biased estimator's dependence on ``n`` (its value for
  independent representations tends to 0 rather than to a positive constant).

Activations are taken with forward hooks on modules named as in ``model.named_modules()``, as CAM target layers
are (:mod:`auglens.cam.layers`); :func:`default_layers` gives an architecture's blocks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import contextmanager

import torch
import torch.nn as nn
from torch import Tensor

__all__ = ["ESTIMATORS", "CkaAccumulator", "default_layers", "hsic_biased", "hsic_unbiased", "layer_activations",
           "linear_cka", "minibatch_cka"]

ESTIMATORS = ("linear", "unbiased")
#: Attribute an architecture may set to name its blocks for CKA (dotted module names), overriding the rule.
BLOCKS_ATTRIBUTE = "auglens_blocks"


# ------------------------------------------------------------------------------------------ maths

def _centred_gram(x: Tensor) -> Tensor:
    xc = x - x.mean(dim=0, keepdim=True)
    return xc @ xc.T


def hsic_biased(k: Tensor, l: Tensor) -> Tensor:  # noqa: E741  (the papers' name)
    """Biased HSIC of Gram matrices ``(n, n), (n, n) -> ()``: ``tr(K H L H) / (n - 1)^2``, ``H`` the centring matrix."""
    n = k.shape[0]
    h = torch.eye(n, dtype=k.dtype, device=k.device) - 1.0 / n
    return torch.trace(k @ h @ l @ h) / (n - 1) ** 2


def hsic_unbiased(k: Tensor, l: Tensor) -> Tensor:  # noqa: E741
    """Unbiased HSIC (Song et al. 2012, Eq. 5) of Gram matrices ``(n, n), (n, n) -> ()``, ``n >= 4``: with
    ``K~``, ``L~`` their copies with a zero diagonal,
    ``[tr(K~ L~) + 1^T K~ 1 1^T L~ 1 / ((n-1)(n-2)) - 2/(n-2) 1^T K~ L~ 1] / (n (n-3))``."""
    n = k.shape[0]
    if n < 4:
        raise ValueError(f"the unbiased HSIC needs at least 4 samples, got {n}")
    k = k - torch.diag(torch.diagonal(k))
    l = l - torch.diag(torch.diagonal(l))  # noqa: E741
    k_rows, l_rows = k.sum(dim=1), l.sum(dim=1)
    value = (k * l).sum() + k_rows.sum() * l_rows.sum() / ((n - 1) * (n - 2)) - 2 / (n - 2) * (k_rows @ l_rows)
    return value / (n * (n - 3))


def linear_cka(x: Tensor, y: Tensor) -> Tensor:
    """Linear CKA, biased HSIC, of activations ``(n, d_x), (n, d_y) -> ()`` float64 (all images at once)."""
    k, l = _centred_gram(x.flatten(1).double()), _centred_gram(y.flatten(1).double())  # noqa: E741
    return (k * l).sum() / torch.sqrt((k * k).sum() * (l * l).sum())


def minibatch_cka(xs: Iterable[Tensor], ys: Iterable[Tensor]) -> Tensor:
    """Minibatch CKA with the unbiased HSIC (Nguyen et al. 2021) over paired minibatches ``(m_i, d_x), (m_i, d_y)``."""
    sums = torch.zeros(3, dtype=torch.float64)
    for x, y in zip(xs, ys):
        sums += _unbiased_terms(x, y).cpu()
    return sums[0] / torch.sqrt(sums[1] * sums[2])


def _unbiased_terms(x: Tensor, y: Tensor) -> Tensor:
    k, l = x.flatten(1).double() @ x.flatten(1).double().T, y.flatten(1).double() @ y.flatten(1).double().T  # noqa: E741
    return torch.stack([hsic_unbiased(k, l), hsic_unbiased(k, k), hsic_unbiased(l, l)])


class CkaAccumulator:
    """One layer's CKA between two networks, fed batch by batch with :meth:`update`; :meth:`value` at the end.

    ``estimator``: ``"linear"`` or ``"unbiased"`` (module docstring). ``n``: images that will be fed (decides the
    linear estimator's form: whichever of the cross-product sums and the stored features takes less memory).
    """

    def __init__(self, estimator: str, n: int):
        if estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {', '.join(ESTIMATORS)}; got {estimator!r}")
        self.estimator, self.n = estimator, n
        self.count = 0
        self.form: str | None = None  # "sums" or "features" (linear), "minibatch" (unbiased)
        self.state: dict[str, Tensor] = {}
        self.parts: list[tuple[Tensor, Tensor]] = []

    def update(self, x: Tensor, y: Tensor) -> None:
        """Add a batch of paired activations ``(m, ...)`` of the two networks on the same images."""
        x, y = x.flatten(1), y.flatten(1)
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"paired activations need the same images: {x.shape[0]} vs {y.shape[0]} rows")
        self.count += x.shape[0]
        if self.estimator == "unbiased":
            self.form = "minibatch"
            if x.shape[0] >= 4:
                terms = _unbiased_terms(x, y)
                self.state["terms"] = self.state.get("terms", torch.zeros_like(terms)) + terms
            return
        if self.form is None:
            dx, dy = x.shape[1], y.shape[1]
            sums_bytes = 8 * (dx + dy) ** 2
            features_bytes = 4 * self.n * (dx + dy) + 2 * 8 * self.n**2
            self.form = "sums" if sums_bytes <= features_bytes else "features"
        if self.form == "features":
            self.parts.append((x.float(), y.float()))
            return
        x, y = x.double(), y.double()
        for name, value in (("sx", x.sum(0)), ("sy", y.sum(0)), ("xx", x.T @ x), ("yy", y.T @ y), ("xy", x.T @ y)):
            self.state[name] = self.state[name] + value if name in self.state else value

    def value(self) -> float:
        """The layer's CKA over everything fed; NaN where it is undefined (a constant activation, no images)."""
        if self.form == "minibatch":
            terms = self.state.get("terms")
            return float("nan") if terms is None else float(terms[0] / torch.sqrt(terms[1] * terms[2]))
        if self.form == "features":
            x = torch.cat([p[0] for p in self.parts])
            y = torch.cat([p[1] for p in self.parts])
            return float(linear_cka(x, y))
        if self.form is None:
            return float("nan")
        n, s = self.count, self.state
        xx = s["xx"] - torch.outer(s["sx"], s["sx"]) / n  # centred: X_c^T X_c
        yy = s["yy"] - torch.outer(s["sy"], s["sy"]) / n
        xy = s["xy"] - torch.outer(s["sx"], s["sy"]) / n
        return float((xy * xy).sum() / torch.sqrt((xx * xx).sum() * (yy * yy).sum()))


# ------------------------------------------------------------------------------------------ activations

def default_layers(model: nn.Module) -> list[str]:
    """The blocks whose activations CKA compares, as dotted module names.

    The model's ``auglens_blocks`` attribute when it has one; else the children of its ``features`` module
    (torchvision's EfficientNet and DenseNet, auglens's small CNN: each stage or block); else its top-level
    children that hold a convolution (ResNets: the stem and the four stages).
    """
    named = getattr(model, BLOCKS_ATTRIBUTE, None)
    if named:
        return list(named)
    features = getattr(model, "features", None)
    if isinstance(features, nn.Sequential) and len(features) > 0:
        return [f"features.{name}" for name, _ in features.named_children()]
    return [name for name, child in model.named_children()
            if any(isinstance(m, (nn.Conv2d, nn.Conv1d, nn.Conv3d)) for m in child.modules())]


@contextmanager
def _recording(model: nn.Module, layers: Sequence[str]):
    from auglens.cam.layers import resolve_target_layer

    modules = [resolve_target_layer(model, name) for name in layers]  # unknown names -> the layer error
    seen: dict[str, Tensor] = {}
    handles = []
    for name, module in zip(layers, modules):
        def hook(_module, _inputs, output, name=name):
            seen[name] = output.detach()
        handles.append(module.register_forward_hook(hook))
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()


def layer_activations(model: nn.Module, layers: Sequence[str], images: Tensor) -> dict[str, Tensor]:
    """``model``'s activations at ``layers`` on ``images`` (forward hooks, no gradients): ``{layer: (N, ...)}``.

    Raises ``ValueError`` (listing candidate layers) for a name that is no module of ``model``; a layer whose
    output is not a tensor (e.g. a tuple) raises ``TypeError``.
    """
    with _recording(model, layers) as seen, torch.no_grad():
        model(images)
    for name in layers:
        if not isinstance(seen.get(name), Tensor):
            raise TypeError(f"layer {name!r} of {type(model).__name__} did not output one tensor; "
                            "choose a module that does (cka.layers)")
    return {name: seen[name] for name in layers}

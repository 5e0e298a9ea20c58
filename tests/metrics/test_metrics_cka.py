"""CKA against an independent numpy implementation (full Gram matrices) and its known properties."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from auglens.metrics import cka

# float64 throughout: sums of n * d products of O(1) values, relative error ~ n d eps64 ~ 1e-11 at these sizes.
TOL = 1e-9


def _numpy_linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Kornblith et al. 2019: HSIC with the centring matrix H, linear kernels."""
    n = x.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    k, l = x @ x.T, y @ y.T  # noqa: E741

    def hsic(a, b):
        return np.trace(a @ h @ b @ h) / (n - 1) ** 2

    return hsic(k, l) / np.sqrt(hsic(k, k) * hsic(l, l))


def _numpy_unbiased_hsic(k: np.ndarray, l: np.ndarray) -> float:  # noqa: E741
    """Song et al. 2012, Eq. 5, written with explicit loops over the formula's terms."""
    n = k.shape[0]
    kt, lt = k.copy(), l.copy()
    np.fill_diagonal(kt, 0)
    np.fill_diagonal(lt, 0)
    ones = np.ones(n)
    term1 = np.trace(kt @ lt)
    term2 = (ones @ kt @ ones) * (ones @ lt @ ones) / ((n - 1) * (n - 2))
    term3 = 2 / (n - 2) * (ones @ kt @ lt @ ones)
    return (term1 + term2 - term3) / (n * (n - 3))


def _features(seed: int, n: int = 40, dx: int = 12, dy: int = 7):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dx)) + 3.0  # an offset, as ReLU activations have: centring must remove it
    y = np.tanh(x[:, :dy] @ rng.normal(size=(dy, dy))) + rng.normal(scale=0.3, size=(n, dy))
    return x, y


def test_linear_cka_matches_numpy():
    x, y = _features(0)
    assert abs(float(cka.linear_cka(torch.tensor(x), torch.tensor(y))) - _numpy_linear_cka(x, y)) < TOL


@pytest.mark.parametrize("n, dx", [(200, 12), (40, 300)])  # d^2 < n d: the sums form; d^2 > n d: the features form
def test_streamed_linear_cka_matches_numpy(n, dx):
    x, y = _features(1, n=n, dx=dx)
    accumulator = cka.CkaAccumulator("linear", n)
    for start in range(0, n, 13):
        accumulator.update(torch.tensor(x[start:start + 13]), torch.tensor(y[start:start + 13]))
    assert accumulator.form == ("sums" if dx == 12 else "features")
    expected = _numpy_linear_cka(x, y)
    # the features form stores float32 activations: relative rounding 6e-8 per value, through squared sums
    tolerance = TOL if accumulator.form == "sums" else 1e-6
    assert abs(accumulator.value() - expected) < tolerance


def test_minibatch_unbiased_cka_matches_numpy():
    x, y = _features(2, n=50)
    accumulator = cka.CkaAccumulator("unbiased", 50)
    chunks = [slice(s, s + 16) for s in range(0, 50, 16)]  # 16, 16, 16 and 2: the last (< 4) is left out
    for part in chunks:
        accumulator.update(torch.tensor(x[part]), torch.tensor(y[part]))
    sums = np.zeros(3)
    for part in chunks[:3]:
        k, l = x[part] @ x[part].T, y[part] @ y[part].T  # noqa: E741
        sums += [_numpy_unbiased_hsic(k, l), _numpy_unbiased_hsic(k, k), _numpy_unbiased_hsic(l, l)]
    expected = sums[0] / np.sqrt(sums[1] * sums[2])
    assert abs(accumulator.value() - expected) < TOL
    k, l = torch.tensor(x @ x.T), torch.tensor(y @ y.T)  # noqa: E741
    assert abs(float(cka.hsic_unbiased(k, l)) - _numpy_unbiased_hsic(k.numpy(), l.numpy())) < TOL


@pytest.mark.parametrize("estimator", cka.ESTIMATORS)
def test_invariances(estimator):
    """1 for identical representations; unchanged by an orthogonal transform and an isotropic scaling; changed by a
    general invertible linear map."""
    x, _ = _features(3, n=64, dx=10)
    rng = np.random.default_rng(4)
    q, _ = np.linalg.qr(rng.normal(size=(10, 10)))
    stretch = np.diag(np.linspace(0.1, 10, 10)) @ q  # invertible, far from orthogonal

    def value(a, b):
        accumulator = cka.CkaAccumulator(estimator, 64)
        for start in range(0, 64, 16):
            accumulator.update(torch.tensor(a[start:start + 16]), torch.tensor(b[start:start + 16]))
        return accumulator.value()

    x_centred = x - x.mean(0)  # a translation changes the minibatch estimator's Grams but not centred CKA
    base = x_centred if estimator == "unbiased" else x
    assert abs(value(base, base) - 1) < TOL
    y = np.tanh(base[:, :6] @ rng.normal(size=(6, 6)))
    reference = value(base, y)
    assert abs(value(base @ q, y) - reference) < TOL
    assert abs(value(3.7 * base, y) - reference) < TOL
    assert abs(value(base @ stretch, y) - reference) > 1e-3


def test_layer_activations_and_default_layers():
    from auglens.models import build_model

    model = build_model("tiny_cnn", num_classes=3, in_channels=1).eval()
    layers = cka.default_layers(model)
    assert layers == ["features.block1", "features.pool1", "features.block2", "features.pool2", "features.block3"]
    images = torch.randn(5, 1, 16, 16)
    acts = cka.layer_activations(model, layers, images)
    assert acts["features.block3"].shape == (5, 32, 4, 4)
    assert torch.equal(acts["features.block1"], model.features.block1(images).detach())
    assert not model.features.block1._forward_hooks  # hooks removed
    with pytest.raises(ValueError, match="no layer named"):
        cka.layer_activations(model, ["features.block9"], images)

    class Resnetish(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(1, 2, 3)
            self.layer1 = nn.Sequential(nn.Conv2d(2, 2, 3), nn.ReLU())
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(2, 3)

    assert cka.default_layers(Resnetish()) == ["stem", "layer1"]

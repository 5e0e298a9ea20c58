"""Faithfulness measures: ROAD against pytorch-grad-cam's implementation, deletion and insertion against curves
computed by hand for a model whose probability is a known function of the visible pixels."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from auglens.metrics import faithfulness as fm

road = pytest.importorskip("pytorch_grad_cam.metrics.road")
perturbation = pytest.importorskip("pytorch_grad_cam.metrics.perturbation_confidence")
targets_module = pytest.importorskip("pytorch_grad_cam.utils.model_targets")

EPS32 = float(torch.finfo(torch.float32).eps)


def _tiny_model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                          nn.Linear(16, 3))
    return model.eval()


def _grad_cam_imputer(percentile, most_relevant_first):
    # pytorch-grad-cam's ROAD removal and imputation, without its (unseeded) noise.
    removal = perturbation.RemoveMostRelevantFirst if most_relevant_first else perturbation.RemoveLeastRelevantFirst
    return perturbation.PerturbationConfidenceMetric(removal(percentile, road.NoisyLinearImputer(noise=0.0)))


def test_imputation_solves_grad_cam_system():
    """The imputed pixels solve pytorch-grad-cam's sparse system (scipy's direct solver, float64).

    Tolerance: conjugate gradients stop at a relative residual of 1e-10; the system's condition number is at most
    about (H + W)^2 ~ 3e3 for 28 x 28 holes, so the relative error is below 1e-6 of the largest value.
    """
    from scipy.sparse import csc_matrix
    from scipy.sparse.linalg import spsolve

    torch.manual_seed(1)
    images = torch.randn(2, 3, 28, 28, dtype=torch.float64)
    maps = torch.rand(2, 28, 28)
    removed = fm.road_removed(maps, [10, 50, 90], most_relevant_first=True)
    for share in range(3):
        mine = fm.noisy_linear_imputation(images, removed[:, share])
        for i in range(2):
            keep = (~removed[i, share]).double().numpy()
            a, b = road.NoisyLinearImputer.setup_sparse_system(keep, images[i].numpy(), road.neighbors_weights)
            solution = spsolve(csc_matrix(a), b)  # (unknowns, C)
            expected = images[i].reshape(3, -1).clone()
            expected[:, torch.from_numpy(np.argwhere(keep.flatten() == 0).flatten())] = torch.from_numpy(solution.T)
            scale = float(images.abs().max())
            assert torch.allclose(mine[i].reshape(3, -1), expected, rtol=0, atol=1e-6 * scale)
            assert torch.equal(mine[i][:, ~removed[i, share]], images[i][:, ~removed[i, share]])


@pytest.mark.parametrize("most_relevant_first", [True, False])
def test_removed_pixels_are_grad_cam_thresholds(most_relevant_first):
    """Removal at share q % is pytorch-grad-cam's removal at percentile 100 - q, ties (quantised maps) included."""
    torch.manual_seed(2)
    maps = torch.randint(0, 6, (3, 10, 10)).float() / 5  # many ties
    shares = [10, 30, 50, 70, 90]
    removed = fm.road_removed(maps, shares, most_relevant_first)
    for j, share in enumerate(shares):
        removal_type = perturbation.RemoveMostRelevantFirst if most_relevant_first else perturbation.RemoveLeastRelevantFirst
        removal = removal_type(100 - share, lambda image, mask: mask)  # the "imputer" returns the kept mask
        for i in range(3):
            kept = removal(None, maps[i])
            assert torch.equal(removed[i, j], kept < 0.5)


def test_road_scores_match_grad_cam():
    """road_morf / road_lerf / road_combined equal pytorch-grad-cam's ROAD averagers and ROADCombined (no noise).

    Tolerance: the imputations differ by float32 rounding of pytorch-grad-cam's solve (~1e-7 of the input scale,
    below), and the probabilities of this small network move by at most its Lipschitz constant (< 10) times
    that; 1e-5 covers both with room.
    """
    model = _tiny_model()
    torch.manual_seed(3)
    images = torch.randn(4, 3, 12, 12)
    maps = torch.rand(4, 12, 12)
    with torch.no_grad():
        targets = model(images).argmax(1)
    percentiles = [10, 30, 50, 70, 90]
    mine = fm.road_scores(model, images, maps, targets, percentiles, noise=None)
    wanted = [targets_module.ClassifierOutputSoftmaxTarget(int(t)) for t in targets]
    cams = maps.numpy()
    morf = np.mean([_grad_cam_imputer(p, True)(images, cams, wanted, model) for p in percentiles], axis=0)
    lerf = np.mean([_grad_cam_imputer(p, False)(images, cams, wanted, model) for p in percentiles], axis=0)
    # pytorch-grad-cam's percentile p removes the (100 - p) % share: {10..90} maps to itself.
    assert np.allclose(mine["road_morf"].numpy(), morf, atol=1e-5, rtol=0)
    assert np.allclose(mine["road_lerf"].numpy(), lerf, atol=1e-5, rtol=0)
    assert np.allclose(mine["road_combined"].numpy(), (lerf - morf) / 2, atol=1e-5, rtol=0)
    assert float(np.abs(morf).max()) > 1e-3  # the perturbation does change the predictions


def test_road_noise_depends_on_image_not_batch():
    """Noise is drawn per image: the same draws for an image in any batch, and scores in two batches equal the
    one-batch scores up to float32 rounding of the forward passes on other batch shapes (probabilities in [0, 1],
    averaged over 3 shares: a few eps)."""
    model = _tiny_model()
    torch.manual_seed(4)
    images, maps = torch.randn(4, 3, 8, 8), torch.rand(4, 8, 8)
    targets = torch.tensor([0, 1, 2, 0])
    noise = fm.road_noise(range(4), (3, 8, 8), seed=7, count=2 * 3)
    whole = fm.road_scores(model, images, maps, targets, [20, 50, 80], noise, 0.05)
    halves = [fm.road_scores(model, images[s], maps[s], targets[s], [20, 50, 80],
                             fm.road_noise(range(4)[s], (3, 8, 8), seed=7, count=6), 0.05)
              for s in (slice(0, 2), slice(2, 4))]
    assert torch.equal(noise[2:], fm.road_noise([2, 3], (3, 8, 8), seed=7, count=6))
    for column, values in whole.items():
        assert torch.allclose(values, torch.cat([h[column] for h in halves]), atol=16 * EPS32, rtol=0)
    other = fm.road_scores(model, images, maps, targets, [20, 50, 80], fm.road_noise(range(4), (3, 8, 8), 8, 6), 0.05)
    assert not torch.equal(other["road_morf"], whole["road_morf"])  # the seed does reach the noise


class _WeightedPixels(nn.Module):
    """Two classes; logit of class 0 = a * sum(w * x) - c over one channel, class 1's logit 0: the probability of
    class 0 is sigmoid(a * sum of the visible weights - c) on an image of ones over zeros."""

    def __init__(self, weights: torch.Tensor, a: float, c: float):
        super().__init__()
        self.weights, self.a, self.c = weights, a, c

    def forward(self, x):
        score = self.a * (x[:, 0] * self.weights).sum(dim=(1, 2)) - self.c
        return torch.stack([score, torch.zeros_like(score)], dim=1)


def _hand_curve(weights: np.ndarray, order: np.ndarray, steps: int, a: float, c: float, insertion: bool):
    pixels = weights.size
    values = []
    for k in range(steps + 1):
        count = math.floor(k * pixels / steps + 0.5)  # round half up
        top = order[:count]
        visible = weights.flatten()[top].sum() if insertion else weights.sum() - weights.flatten()[top].sum()
        values.append(1 / (1 + math.exp(-(a * visible - c))))
    return np.array(values)


@pytest.mark.parametrize("steps", [5, 8, 16])
def test_deletion_and_insertion_match_hand_computed_curves(steps):
    """A faithful map (the model's own weights) and a reversed one, against curves computed with numpy.

    Tolerance: float32 sums of 16 weights (error <= 16 eps |w|) through a sigmoid of slope <= 1/4 x a.
    """
    rng = np.random.default_rng(5)
    weights = rng.permutation(np.arange(1, 17)).reshape(4, 4).astype(np.float64) / 16
    a, c = 1.0, 4.0
    model = _WeightedPixels(torch.tensor(weights, dtype=torch.float32), a, c)
    images, substitute = torch.ones(2, 1, 4, 4), torch.zeros(2, 1, 4, 4)
    maps = torch.tensor(np.stack([weights, -weights]), dtype=torch.float32)
    targets = torch.zeros(2, dtype=torch.int64)
    deletion = fm.deletion_curve(model, images, maps, targets, substitute, steps).numpy()
    insertion = fm.insertion_curve(model, images, maps, targets, substitute, steps).numpy()
    tolerance = 16 * EPS32 * a * 16 / 4
    for i, order in enumerate([np.argsort(-weights.flatten(), kind="stable"), np.argsort(weights.flatten(), kind="stable")]):
        expected_deletion = _hand_curve(weights, order, steps, a, c, insertion=False)
        expected_insertion = _hand_curve(weights, order, steps, a, c, insertion=True)
        assert np.allclose(deletion[i], expected_deletion, atol=tolerance, rtol=0)
        assert np.allclose(insertion[i], expected_insertion, atol=tolerance, rtol=0)
        assert math.isclose(float(fm.curve_auc(torch.tensor(deletion[i:i + 1], dtype=torch.float64))),
                            float(np.trapezoid(expected_deletion, dx=1 / steps) if hasattr(np, "trapezoid")
                                  else np.trapz(expected_deletion, dx=1 / steps)), abs_tol=tolerance)
    auc_del, auc_ins = fm.curve_auc(torch.tensor(deletion)), fm.curve_auc(torch.tensor(insertion))
    assert auc_del[0] < auc_del[1] and auc_ins[0] > auc_ins[1]  # the faithful map scores as more faithful


def test_ties_are_broken_by_pixel_index():
    """A constant map removes pixels in row-major order."""
    ranks = fm.pixel_ranks(torch.zeros(1, 3, 3))
    assert ranks.tolist() == [list(range(9))]


def test_blur_matches_torchvision():
    """The blur substitute equals torchvision's gaussian_blur (same kernel size, reflected borders) to float32
    rounding of a 2 x 13-tap convolution (26 eps of the largest value)."""
    from torchvision.transforms.functional import gaussian_blur

    torch.manual_seed(6)
    images = torch.randn(2, 3, 20, 20)
    sigma = 2.0
    mine = fm.gaussian_blur(images, sigma)
    radius = math.ceil(3 * sigma)
    theirs = gaussian_blur(images, [2 * radius + 1] * 2, [sigma, sigma])
    assert torch.allclose(mine, theirs, atol=26 * EPS32 * float(images.abs().max()), rtol=0)
    assert torch.equal(fm.substitute_images(images, "mean"), torch.zeros_like(images))


def test_faithfulness_scores_columns_and_errors():
    model = _tiny_model()
    images, maps = torch.randn(2, 3, 8, 8), torch.rand(2, 8, 8)
    targets = torch.tensor([0, 1])
    scores = fm.faithfulness_scores(model, images, maps, targets, ["insertion", "deletion"], steps=4)
    assert list(scores) == ["insertion", "deletion"]
    assert all(v.shape == (2,) and bool(((v >= 0) & (v <= 1)).all()) for v in scores.values())
    with pytest.raises(KeyError, match="Valid names: deletion, insertion, road"):
        fm.faithfulness_scores(model, images, maps, targets, ["delete"])
    with pytest.raises(ValueError, match="baseline must be one of"):
        fm.substitute_images(images, "zeros")

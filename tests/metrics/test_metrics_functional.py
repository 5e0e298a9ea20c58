"""auglens.metrics.functional against independent oracles (numpy / scipy), on data with many ties."""

from __future__ import annotations

import math
import warnings
from fractions import Fraction

import numpy as np
import pytest
import scipy.stats
import torch
from scipy.special import rel_entr

from auglens.metrics import functional as F

N, H, W = 12, 10, 12  # D = 120 pixels


def quantised_maps(seed: int, levels: int = 8, n: int = N, h: int = H, w: int = W) -> tuple[np.ndarray, np.ndarray]:
    """Two CAM-like batches in [0, 1] with only ``levels`` distinct values: every map is full of ties."""
    rng = np.random.default_rng(seed)
    p = rng.integers(0, levels, size=(n, h, w)) / (levels - 1)
    # q correlated with p so the correlations are not all ~0
    q = np.clip(p + rng.integers(-2, 3, size=(n, h, w)) / (levels - 1), 0, 1)
    q = np.round(q * (levels - 1)) / (levels - 1)
    return p, q


@pytest.fixture(params=[0, 1, 2])
def maps(request) -> tuple[np.ndarray, np.ndarray]:
    return quantised_maps(request.param)


def rows(x: np.ndarray) -> np.ndarray:
    return x.reshape(x.shape[0], -1)


# ---------------------------------------------------------------- MAD / MSD


def test_mad_msd_match_numpy(maps):
    p, q = maps
    np.testing.assert_allclose(F.mad(torch.from_numpy(p), torch.from_numpy(q)).numpy(),
                               np.abs(rows(p) - rows(q)).mean(axis=1), rtol=1e-13, atol=0)
    np.testing.assert_allclose(F.msd(torch.from_numpy(p), torch.from_numpy(q)).numpy(),
                               ((rows(p) - rows(q)) ** 2).mean(axis=1), rtol=1e-13, atol=0)


def test_outputs_are_float64_of_shape_n_for_float32_input(maps):
    p, q = (torch.from_numpy(x).float() for x in maps)
    for fn in (F.mad, F.msd, F.pearson, F.spearman):
        out = fn(p, q)
        assert out.shape == (N,) and out.dtype == torch.float64
    out = F.overlap_rate(p, q, 10)
    assert out.shape == (N,) and out.dtype == torch.float64


def test_map_shape_and_flattened_shape_agree(maps):
    p, q = (torch.from_numpy(x) for x in maps)
    for fn in (F.mad, F.msd, F.pearson, F.spearman):
        torch.testing.assert_close(fn(p, q), fn(p.flatten(1), q.flatten(1)), rtol=0, atol=0)
    torch.testing.assert_close(F.overlap_rate(p, q, 20), F.overlap_rate(p.flatten(1), q.flatten(1), 20))


def test_rejects_single_map_and_shape_mismatch():
    with pytest.raises(ValueError, match="map\\[None\\]"):
        F.mad(torch.rand(5), torch.rand(5))
    with pytest.raises(ValueError, match="same shape"):
        F.pearson(torch.rand(2, 3, 3), torch.rand(2, 3, 4))


def test_empty_batch_gives_empty_result():
    e = torch.zeros(0, 4, 4)
    for fn in (F.mad, F.msd, F.pearson, F.spearman):
        assert fn(e, e).shape == (0,)
    assert F.overlap_rate(e, e, 10).shape == (0,)


# ---------------------------------------------------------------- Pearson / Spearman


def test_pearson_matches_scipy_per_row(maps):
    p, q = maps
    ours = F.pearson(torch.from_numpy(p), torch.from_numpy(q)).numpy()
    ref = [scipy.stats.pearsonr(a, b).statistic for a, b in zip(rows(p), rows(q))]
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)


def test_spearman_matches_scipy_per_row(maps):
    p, q = maps
    ours = F.spearman(torch.from_numpy(p), torch.from_numpy(q)).numpy()
    ref = np.array([scipy.stats.spearmanr(a, b).statistic for a, b in zip(rows(p), rows(q))])
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)


def test_spearman_data_discriminates_tie_handling(maps):
    """The data above must make a wrong tie rule fail: ordinal ranks give visibly different values."""
    p, q = maps
    ref = np.array([scipy.stats.spearmanr(a, b).statistic for a, b in zip(rows(p), rows(q))])
    ordinal = np.array([
        scipy.stats.pearsonr(scipy.stats.rankdata(a, method="ordinal"), scipy.stats.rankdata(b, method="ordinal"))
        .statistic for a, b in zip(rows(p), rows(q))
    ])
    assert np.abs(ordinal - ref).max() > 1e-3


@pytest.mark.parametrize("ranker", ["_average_ranks", "_average_ranks_torch", "_average_ranks_numpy"])
@pytest.mark.parametrize("levels", [1, 2, 3, 8, 10_000])
def test_average_ranks_match_scipy_rankdata(levels, ranker):
    # Both implementations are checked on the CPU: the torch one is what runs on GPUs.
    x = np.random.default_rng(levels).integers(0, levels, size=(9, 37)).astype(np.float64)
    ours = getattr(F, ranker)(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(ours, scipy.stats.rankdata(x, method="average", axis=1))


def test_spearman_float32_input_matches_scipy_on_the_float32_values():
    p, q = quantised_maps(3, levels=5)
    p32, q32 = p.astype(np.float32), q.astype(np.float32)
    ours = F.spearman(torch.from_numpy(p32), torch.from_numpy(q32)).numpy()
    ref = [scipy.stats.spearmanr(a, b).statistic for a, b in zip(rows(p32), rows(q32))]
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)


def test_correlations_of_constant_maps_are_nan_without_error_or_warning():
    p, q = (torch.from_numpy(x) for x in quantised_maps(4))
    p[1] = 0.0  # all-zero CAM (e.g. Grad-CAM after ReLU on a dead region)
    q[3] = 0.3  # constant non-zero: centring in float leaves residues, must still be NaN
    p[5], q[5] = 1.0, 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for fn in (F.pearson, F.spearman):
            out = fn(p, q)
            assert torch.isnan(out[[1, 3, 5]]).all(), fn.__name__
            assert torch.isfinite(out[[0, 2, 4, 6]]).all(), fn.__name__


def test_constant_map_with_centring_residue_is_nan():
    """Mean of 49 copies of 0.3 is not exactly 0.3 in float64: a variance test would see a non-constant map."""
    p = torch.full((1, 7, 7), 0.3, dtype=torch.float64)
    assert (p.flatten(1) - p.flatten(1).mean(dim=1, keepdim=True) != 0).any()  # the trap exists
    q = torch.rand(1, 7, 7, dtype=torch.float64)
    assert torch.isnan(F.pearson(p, q)).all() and torch.isnan(F.pearson(q, p)).all()
    assert torch.isnan(F.spearman(p, q)).all()


def test_constant_float32_map_is_nan_for_pearson():
    # a constant float32 map given directly (not via numpy float64)
    p = torch.full((1, 120), 0.1, dtype=torch.float32)
    q = torch.rand(1, 120)
    assert torch.isnan(F.pearson(p, q)).all() and torch.isnan(F.spearman(p, q)).all()


def test_correlation_of_identical_maps_is_one_and_bounded():
    p = torch.from_numpy(quantised_maps(5)[0])
    torch.testing.assert_close(F.pearson(p, p), torch.ones(N, dtype=torch.float64), rtol=0, atol=1e-15)
    torch.testing.assert_close(F.spearman(p, p), torch.ones(N, dtype=torch.float64), rtol=0, atol=1e-15)
    assert (F.pearson(p, -p) >= -1).all() and (F.pearson(p, p) <= 1).all()


def test_nan_in_map_gives_nan_not_a_fake_value():
    p, q = (torch.from_numpy(x) for x in quantised_maps(6))
    p[2, 0, 0] = float("nan")
    for out in (F.pearson(p, q), F.spearman(p, q), F.overlap_rate(p, q, 10), F.mad(p, q)):
        assert torch.isnan(out[2]) and torch.isfinite(out[[0, 1, 3]]).all()


# ---------------------------------------------------------------- Overlap Rate


def overlap_oracle(p: np.ndarray, q: np.ndarray, y: float) -> np.ndarray:
    """Independent loop implementation of the documented definition."""
    out = []
    for a, b in zip(rows(p), rows(q)):
        d = a.size
        k = math.ceil(Fraction(str(float(y))) * d / 100)
        ta = np.sort(a)[::-1][k - 1]  # k-th largest
        tb = np.sort(b)[::-1][k - 1]
        sa, sb = a >= ta, b >= tb
        out.append(np.logical_and(sa, sb).sum() / np.logical_or(sa, sb).sum())
    return np.array(out)


@pytest.mark.parametrize("y", [20, 10, 5, 12.5, 1, 100])
def test_overlap_matches_loop_oracle(maps, y):
    p, q = maps
    ours = F.overlap_rate(torch.from_numpy(p), torch.from_numpy(q), y).numpy()
    np.testing.assert_array_equal(ours, overlap_oracle(p, q, y))


@pytest.mark.parametrize("levels", [3, 8, 1000])
@pytest.mark.parametrize("y", [20, 10, 5])
def test_overlap_matches_oracle_at_cam_resolutions(levels, y):
    for h in (7, 14):  # EfficientNet-B0 last-conv map at 224 px input, and a 14x14 map
        p, q = quantised_maps(7, levels=levels, n=6, h=h, w=h)
        ours = F.overlap_rate(torch.from_numpy(p), torch.from_numpy(q), y).numpy()
        np.testing.assert_array_equal(ours, overlap_oracle(p, q, y))


def test_overlap_threshold_is_numpy_inverted_cdf_upper_percentile(maps):
    """Cross-check of the documented threshold against numpy's own percentile definition."""
    p, _ = maps
    for y in (20, 10, 5):
        k = F.top_count(y, H * W)
        for a in rows(p):
            assert np.sort(a)[::-1][k - 1] == -np.percentile(-a, y, method="inverted_cdf")


def test_overlap_data_exercises_ties(maps):
    """With 8 levels, the region {x >= t} is larger than k for most maps (the thesis's tie rule matters)."""
    p, _ = maps
    k = F.top_count(10, H * W)
    sizes = [(a >= np.sort(a)[::-1][k - 1]).sum() for a in rows(p)]
    assert max(sizes) > k


def test_overlap_hand_computed_2x3_with_ties():
    p = torch.tensor([[[0.1, 0.7, 0.7], [0.7, 0.2, 0.3]]])
    q = torch.tensor([[[0.5, 0.5, 0.2], [0.1, 0.1, 0.1]]])
    # Y=10: k = ceil(0.6) = 1. p: t=0.7 -> {(0,1),(0,2),(1,0)}, 3 of 6 pixels (50% > 10%) because of ties;
    #       q: t=0.5 -> {(0,0),(0,1)}. Intersection {(0,1)}, union of 4 -> 1/4.
    assert F.overlap_rate(p, q, 10).item() == 0.25
    # Y=50: k = 3. p: t=0.7 (same 3 pixels); q: t=0.2 -> {(0,0),(0,1),(0,2)}. |A&B| = 2, |A|B| = 4.
    assert F.overlap_rate(p, q, 50).item() == 0.5
    # Y=60: k = ceil(3.6) = 4. p: t=0.3 -> 4 pixels; q: t=0.1 -> all 6 pixels (100% > 60%). 4/6.
    assert F.overlap_rate(p, q, 60).item() == pytest.approx(4 / 6, abs=1e-15)
    assert F.overlap_rate(p, q, 100).item() == 1.0


def test_overlap_rank_uses_exact_arithmetic():
    """7% of 100 pixels is k = 7, although 0.07 * 100 == 7.000000000000001 in floating point."""
    assert math.ceil(7 / 100 * 100) == 8  # the trap
    assert F.top_count(7, 100) == 7
    assert F.top_count(0.1, 1000) == 1
    p = torch.arange(100.0)[None]  # distinct values; top 7 = indices 93..99; 8th largest = index 92
    q = p.clone()
    q[0, 92], q[0, 0] = q[0, 0].item(), q[0, 92].item()  # q's 8th largest is at index 0, not 92
    assert F.overlap_rate(p, q, 7).item() == 1.0  # k = 8 would give 7/9


@pytest.mark.parametrize("y", [0, -5, 100.5, float("nan"), float("inf")])
def test_overlap_rejects_invalid_percent(y):
    with pytest.raises(ValueError):
        F.overlap_rate(torch.rand(2, 4, 4), torch.rand(2, 4, 4), y)


def test_overlap_of_constant_maps_selects_everything():
    p = torch.zeros(1, 4, 4)
    q = torch.rand(1, 4, 4)
    # p selects all 16 pixels, q (distinct values) selects its top ceil(1.6) = 2 -> 2/16
    assert F.overlap_rate(p, q, 10).item() == 2 / 16


# ---------------------------------------------------------------- Class-KLD


def kld_oracle(p: np.ndarray, q: np.ndarray, eps: float) -> np.ndarray:
    """Loop over images and classes: sum_i Q_i log(eps + Q_i / P_i), with the documented guards."""
    tiny = np.finfo(np.float64).tiny
    out = []
    for prow, qrow in zip(p, q):
        total = 0.0
        for pi, qi in zip(prow, qrow):
            if qi == 0:
                continue
            total += qi * math.log(eps + qi / max(float(pi), tiny))
        out.append(total)
    return np.array(out)


def random_probs(seed: int, n: int = 16, c: int = 10, zeros: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = scipy.special.softmax(rng.normal(scale=3, size=(n, c)), axis=1)
    q = scipy.special.softmax(rng.normal(scale=3, size=(n, c)), axis=1)
    if zeros:
        p[0, 3] = 0.0
        q[1, 2] = 0.0
        p[2, 5] = q[2, 5] = 0.0
        p[3] = q[3] = np.eye(c)[1]  # one-hot predictions
    return p, q


@pytest.mark.parametrize("eps", [F.DEFAULT_KLD_EPS, 1e-10, 1e-3, 0.0])
@pytest.mark.parametrize("zeros", [False, True])
def test_class_kld_matches_loop_oracle(eps, zeros):
    p, q = random_probs(0, zeros=zeros)
    ours = F.class_kld(torch.from_numpy(p), torch.from_numpy(q), eps=eps).numpy()
    np.testing.assert_allclose(ours, kld_oracle(p, q, eps), rtol=1e-12, atol=1e-15)
    assert np.isfinite(ours).all()


def test_class_kld_is_kl_of_augmented_from_baseline():
    """eps = 0 gives KL(Q || P) = sum rel_entr(Q, P): the baseline is the reference distribution."""
    p, q = random_probs(1)
    ours = F.class_kld(torch.from_numpy(p), torch.from_numpy(q), eps=0.0).numpy()
    np.testing.assert_allclose(ours, rel_entr(q, p).sum(axis=1), rtol=1e-12)
    swapped = F.class_kld(torch.from_numpy(q), torch.from_numpy(p), eps=0.0).numpy()
    assert np.abs(swapped - ours).max() > 1e-3  # asymmetric: the argument order is tested


def test_class_kld_hand_computed_two_classes():
    p = torch.tensor([[0.5, 0.5]], dtype=torch.float64)  # baseline
    q = torch.tensor([[0.9, 0.1]], dtype=torch.float64)  # augmented
    # 0.9 ln(1.8) + 0.1 ln(0.2) = 0.9 * 0.5877866649 - 0.1 * 1.6094379124 = 0.3680642072
    assert F.class_kld(p, q, eps=0.0).item() == pytest.approx(0.3680642071684, abs=1e-12)
    # eps = 0.1: 0.9 ln(1.9) + 0.1 ln(0.3) = 0.9 * 0.6418538862 - 0.1 * 1.2039728043 = 0.4572712171
    assert F.class_kld(p, q, eps=0.1).item() == pytest.approx(0.4572712171, abs=1e-9)


def test_class_kld_identity_and_guards():
    p, _ = random_probs(2, zeros=True)
    t = torch.from_numpy(p)
    same = F.class_kld(t, t)
    # sum_i Q_i log(1 + eps): log1p(eps) times each row's mass (rows with zeroed classes need not sum to 1)
    # (1 + eps is rounded to float64 before the log: an absolute error up to one ulp of 1, 2.2e-16)
    torch.testing.assert_close(same, math.log1p(F.DEFAULT_KLD_EPS) * t.sum(1), rtol=0, atol=2.3e-16)
    # eps = 0 and Q_i = 0: the 0 * log(0) term is 0, not NaN
    assert F.class_kld(torch.tensor([[0.5, 0.5]]), torch.tensor([[1.0, 0.0]]), eps=0.0).item() == pytest.approx(
        math.log(2)
    )
    # P_i = 0 with Q_i > 0: large but finite
    big = F.class_kld(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.5, 0.5]]), eps=0.0).item()
    assert math.isfinite(big) and big > 300


def test_class_kld_float32_input_is_computed_in_float64():
    p, q = random_probs(3)
    ours = F.class_kld(torch.from_numpy(p).float(), torch.from_numpy(q).float())
    ref = kld_oracle(p.astype(np.float32).astype(np.float64), q.astype(np.float32).astype(np.float64),
                     F.DEFAULT_KLD_EPS)
    assert ours.dtype == torch.float64
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-12, atol=1e-15)


def test_class_kld_rejects_bad_input():
    with pytest.raises(ValueError):
        F.class_kld(torch.rand(3, 4), torch.rand(3, 5))
    with pytest.raises(ValueError):
        F.class_kld(torch.rand(4), torch.rand(4))
    with pytest.raises(ValueError):
        F.class_kld(torch.rand(3, 4), torch.rand(3, 4), eps=-1.0)


@pytest.mark.parametrize("side", [7, 14, 28, 224])
@pytest.mark.parametrize("y", [20, 10, 5])
def test_overlap_region_equals_numpy_default_percentile_region_at_cam_sizes(side, y):
    """Pins the docstring claim: at these sizes, thresholding at numpy's default (linear) percentile
    ``np.percentile(x, 100 - Y)`` selects the same pixels as our k-th-largest threshold."""
    rng = np.random.default_rng(side + y)
    x = rng.random((2, side * side))
    k = F.top_count(y, side * side)
    for a in x:
        ours = a >= np.sort(a)[::-1][k - 1]
        numpy_default = a >= np.percentile(a, 100 - y)
        np.testing.assert_array_equal(ours, numpy_default)


def test_class_kld_has_one_default_for_direct_calls_and_the_study_column():
    """A direct ``class_kld`` call and the study's class_kld column use the same epsilon unless told otherwise."""
    from auglens import config as cfg
    from auglens.metrics import compute_pair_metrics, get_metric

    default = {m.name: m.params for m in cfg.Config().metrics}["class_kld"]["epsilon"]
    assert default == get_metric("class_kld").defaults()["epsilon"] == F.DEFAULT_KLD_EPS
    legacy = cfg.from_dict({"metrics": {"names": ["class_kld"]}}).metrics[0].params["epsilon"]
    assert legacy == F.DEFAULT_KLD_EPS
    p = torch.softmax(torch.randn(6, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64), 1)
    q = torch.softmax(torch.randn(6, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64), 1)
    column = compute_pair_metrics(["class_kld"], base_probs=p, other_probs=q)["class_kld"]
    torch.testing.assert_close(column, F.class_kld(p, q), rtol=0, atol=0)

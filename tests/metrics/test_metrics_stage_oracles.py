"""The metric stage against scipy and numpy for every subset of quantities a study can ask for, on both of its
paths (numpy blocks; torch chunks with torch's ranks, as on a GPU, run here on the CPU), with the maps that trip
a shortcut: one-hot and all-but-one-saturated maps, constant maps whose centring leaves residues, NaN, one-pixel
and flattened maps, empty batches, top counts of 1 and of every pixel; and the dispatch off the CPU on the meta
device (shapes, dtype, device and keys; the values off the CPU are compared with the CPU's on CUDA in
``test_metrics_device.py``)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.stats
import torch

from auglens.metrics import compute_baseline_metrics, compute_pair_metrics, metric_columns
from auglens.metrics import functional as F
from auglens.metrics import stage

SIDE = 3  # 3 x 3 maps: D = 9
D = SIDE * SIDE


def tricky_maps(models: int = 2, n: int = 14, seed: int = 0) -> np.ndarray:
    """``(models + 1, n, 3, 3)`` float64 maps; row i of every batch is a case (see the comments)."""
    rng = np.random.default_rng(seed)
    maps = rng.integers(0, 4, size=(models + 1, n, D)) / 3  # quantised: ties everywhere
    maps[:, 8:] = rng.random((models + 1, n - 8, D))  # untied rows
    maps[0, 0] = np.eye(D)[4]  # one-hot baseline map: smallest pixel tied, largest unique
    maps[1, 1] = 1.0 - np.eye(D)[7]  # all pixels saturated but one: smallest unique, largest tied
    maps[2 % (models + 1), 1] = np.eye(D)[2]
    maps[0, 2] = 0.9  # constant; its float64 mean is not 0.9 exactly, so centring leaves residues
    maps[1, 3] = 0.9  # the same on the model's side only
    maps[models, 4] = 0.1  # constant: residues under torch's sum
    maps[:, 5] = 0.0  # constant on both sides
    maps[0, 6, 3] = math.nan
    maps[models, 7, 0] = math.nan
    return maps.reshape(models + 1, n, SIDE, SIDE)


def oracle(p: np.ndarray, q: np.ndarray, percent: float | None = None) -> dict[str, np.ndarray]:
    """Row by row with numpy and scipy: NaN where a map has NaN, correlations NaN where a map is constant."""
    out: dict[str, list[float]] = {"mad": [], "msd": [], "pearson": [], "spearman": [], "overlap": []}
    for a, b in zip(p.reshape(len(p), -1), q.reshape(len(q), -1)):
        out["mad"].append(np.abs(a - b).mean())
        out["msd"].append(((a - b) ** 2).mean())
        nan = bool(np.isnan(a).any() or np.isnan(b).any())
        constant = nan or np.ptp(a) == 0 or np.ptp(b) == 0
        out["pearson"].append(math.nan if constant else scipy.stats.pearsonr(a, b).statistic)
        out["spearman"].append(math.nan if constant else scipy.stats.spearmanr(a, b).statistic)
        if percent is not None:
            if nan:
                out["overlap"].append(math.nan)
            else:
                # The region above the inverse-CDF percentile of the upper tail (ties included).
                ra = a >= -np.percentile(-a, percent, method="inverted_cdf")
                rb = b >= -np.percentile(-b, percent, method="inverted_cdf")
                out["overlap"].append((ra & rb).sum() / (ra | rb).sum())
    return {key: np.array(values, dtype=np.float64) for key, values in out.items()}


@pytest.fixture(params=["blocks", "chunks"])
def path(request, monkeypatch):
    """Blocks of 3 images; or the torch path (chunks of 4 images) with torch's ranks, which the CPU never takes."""
    monkeypatch.setattr(stage, "_BLOCK_PIXELS", 3 * D)
    monkeypatch.setattr(stage, "_CHUNK_PIXELS", 4 * D)
    if request.param == "chunks":
        monkeypatch.setattr(stage, "_compare_in_blocks", stage._compare_in_chunks)
        monkeypatch.setattr(stage, "_sort_and_rank", F._sort_and_rank_torch)
    return request.param


REQUESTS = [
    ["mad"],
    ["msd"],
    ["pearson"],
    ["spearman"],
    [("overlap", {"percents": [100]})],  # k = D: every pixel
    [("overlap", {"percents": [20]})],  # k = 2
    [("overlap", {"percents": [5]})],  # k = 1
    ["mad", "pearson"],
    ["msd", "spearman", ("overlap", {"percents": [40]})],
    ["pearson", ("overlap", {"percents": [60]})],
]


@pytest.mark.parametrize("metrics", REQUESTS, ids=lambda m: "+".join(x if isinstance(x, str) else
                                                                      f"{x[0]}{x[1]['percents'][0]}" for x in m))
def test_every_subset_of_quantities_matches_numpy_and_scipy(metrics, path):
    maps = tricky_maps()
    out = compute_baseline_metrics(metrics, torch.from_numpy(maps[0]), [torch.from_numpy(m) for m in maps[1:]])
    assert len(out) == 2
    for m, result in enumerate(out, start=1):
        assert list(result) == metric_columns(metrics)
        for column, values in result.items():
            name, _, percent = column.partition("_")
            expected = oracle(maps[0], maps[m], float(percent) if percent else None)[name]
            assert values.dtype == torch.float64 and values.shape == (maps.shape[1],)
            np.testing.assert_allclose(values.numpy(), expected, rtol=0, atol=1e-12, err_msg=f"model {m}, {column}")
    # The planted cases are there: finite correlations of the one-hot and saturated maps, NaN of the constant ones.
    if "pearson" in metrics:
        assert torch.isfinite(out[0]["pearson"][[0, 1]]).all() and torch.isfinite(out[1]["pearson"][[0, 1]]).all()
        assert torch.isnan(out[0]["pearson"][[2, 3, 5]]).all() and torch.isnan(out[1]["pearson"][[2, 4, 5]]).all()


def test_correlations_of_a_map_with_itself_and_its_reverse_are_one_and_minus_one_at_most(path):
    """Unclipped, rounding gives |r| = 1 + 2e-16 for many maps: for untied 17-pixel maps, the squared norm of the
    centred ranks is 408 and sqrt(408)**2 < 408; for random 9-pixel maps, about one in four."""
    x = torch.from_numpy(np.random.default_rng(1).random((40, 17)))
    for other, sign in ((x, 1.0), (-x, -1.0)):
        out = compute_pair_metrics(["pearson", "spearman"], x, other)
        for column in ("pearson", "spearman"):
            values = out[column].numpy()
            assert (np.abs(values) <= 1.0).all(), column
            reference = [getattr(scipy.stats, column + "r")(a, b).statistic for a, b in zip(x.numpy(), other.numpy())]
            np.testing.assert_allclose(values, reference, rtol=0, atol=5e-16)
            np.testing.assert_allclose(values, sign, rtol=0, atol=5e-16)


def test_flattened_and_one_pixel_maps_are_valid(path):
    maps = torch.from_numpy(tricky_maps())
    metrics = ["mad", "msd", "pearson", "spearman", ("overlap", {"percents": [20, 5]})]
    shaped = compute_baseline_metrics(metrics, maps[0], list(maps[1:]))
    flat = compute_baseline_metrics(metrics, maps[0].flatten(1), [m.flatten(1) for m in maps[1:]])
    for a, b in zip(shaped, flat):
        for column in a:
            torch.testing.assert_close(a[column], b[column], rtol=0, atol=0, equal_nan=True)
    p, q = torch.tensor([[1.0], [2.0], [0.5]]), torch.tensor([[3.0], [2.0], [0.25]])
    out = compute_pair_metrics(metrics, p[:, :, None], q[:, :, None])
    assert out["mad"].tolist() == [2.0, 0.0, 0.25] and out["msd"].tolist() == [4.0, 0.0, 0.0625]
    assert out["overlap_20"].tolist() == [1.0, 1.0, 1.0] and out["overlap_5"].tolist() == [1.0, 1.0, 1.0]
    assert torch.isnan(out["pearson"]).all() and torch.isnan(out["spearman"]).all()  # one pixel: constant


def test_maps_without_pixels_are_refused():
    for shape in ((2, 0), (2, 3, 0)):
        with pytest.raises(ValueError, match="no pixels"):
            compute_pair_metrics(["mad"], torch.zeros(shape), torch.zeros(shape))


def test_an_empty_batch_gives_empty_float64_columns_on_both_paths(monkeypatch):
    monkeypatch.setattr(stage, "_CHUNK_PIXELS", 2 * D)
    metrics = ["mad", "msd", "pearson", "spearman", ("overlap", {"percents": [10]})]
    empty = torch.zeros(0, SIDE, SIDE)
    for result in (compute_pair_metrics(metrics, empty, empty),
                   stage._compare_in_chunks([empty.flatten(1)] * 2, stage.CAM_QUANTITIES, [1],
                                            list(stage.CAM_QUANTITIES) + [1])[0]):
        assert len(result) == 5
        for values in result.values():
            assert values.dtype == torch.float64 and values.shape == (0,) and values.device.type == "cpu"


def test_the_stage_neither_warns_nor_errs_on_constant_maps():
    maps = torch.from_numpy(tricky_maps())[:, [2, 3, 4, 5, 8]]  # constant rows, no NaN
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = compute_baseline_metrics(["mad", "pearson", "spearman"], maps[0], list(maps[1:]))
    assert torch.isnan(out[0]["pearson"][[0, 1, 3]]).all() and torch.isnan(out[1]["pearson"][[0, 2, 3]]).all()
    assert torch.isfinite(out[0]["pearson"][4]) and torch.isfinite(out[1]["pearson"][4])


# ------------------------------------------------------------------------------------------ off the CPU: meta device

def test_off_the_cpu_the_stage_takes_the_torch_path_on_the_maps_device(monkeypatch):
    """Meta tensors carry shapes, dtypes and devices but no values: every step of the torch path must run on them
    (a numpy step, or a tensor made on the CPU, fails there as it would on a GPU)."""
    monkeypatch.setattr(stage, "_CHUNK_PIXELS", 2 * D)  # chunks of 2, 2 and 1 images, joined on the device
    base = torch.empty(5, SIDE, SIDE, device="meta")
    out = stage.compare_with_baseline(base, [torch.empty_like(base)] * 2, ["spearman", "mad", "msd", "pearson"],
                                      [9, 1, 4, 1])
    assert len(out) == 2
    for result in out:
        assert list(result) == ["mad", "msd", "pearson", "spearman", 1, 4, 9]
        for values in result.values():
            assert values.device.type == "meta" and values.dtype == torch.float64 and values.shape == (5,)
    out = stage.compare_with_baseline(base, [torch.empty_like(base)], [], [3])[0]
    assert list(out) == [3] and out[3].shape == (5,)
    empty = torch.empty(0, SIDE, SIDE, device="meta")
    out = stage.compare_with_baseline(empty, [empty], ["mad"], [2])[0]
    for values in out.values():
        assert values.device.type == "meta" and values.dtype == torch.float64 and values.shape == (0,)


@pytest.mark.parametrize("ranks", [True, False])
def test_off_the_cpu_rows_are_sorted_and_ranked_by_torch(ranks):
    x = torch.empty(3, 7, dtype=torch.float64, device="meta")
    sorted_rows, average_ranks = F._sort_and_rank(x, ranks)
    assert sorted_rows.device.type == "meta" and sorted_rows.shape == (3, 7)
    if ranks:
        assert average_ranks.device.type == "meta" and average_ranks.shape == (3, 7)
        assert average_ranks.dtype == torch.float64
    else:
        assert average_ranks is None


def test_torch_sorts_and_ranks_rows_like_numpy_and_scipy():
    x = np.random.default_rng(2).integers(0, 5, size=(6, 11)).astype(np.float64)
    for ranks in (False, True):
        sorted_rows, average_ranks = F._sort_and_rank_torch(torch.from_numpy(x), ranks)
        np.testing.assert_array_equal(sorted_rows.numpy(), np.sort(x, axis=1))
        if ranks:
            assert average_ranks.dtype == torch.float64
            np.testing.assert_array_equal(average_ranks.numpy(), scipy.stats.rankdata(x, axis=1))
        else:
            assert average_ranks is None


# ----------------------------------------------------------------------------------------------- the thread pool

def test_forgetting_the_pools_gives_a_working_lock_and_fresh_pools(monkeypatch):
    """What a forked child runs first: the parent's pools and lock are replaced, and the stage still computes."""
    maps = torch.from_numpy(tricky_maps(n=20))
    monkeypatch.setattr(stage, "_BLOCK_PIXELS", 2 * D)  # several blocks, so the pool is used
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    before = compute_baseline_metrics(["mad", "spearman"], maps[0], list(maps[1:]))
    old_pools = dict(stage._POOLS)
    assert old_pools
    try:
        stage._forget_pools()
        assert not stage._POOLS
        after = compute_baseline_metrics(["mad", "spearman"], maps[0], list(maps[1:]))
        assert stage._POOLS and all(stage._POOLS[w] is not old_pools.get(w) for w in stage._POOLS)
    finally:
        for pool in old_pools.values():
            pool.shutdown(wait=True)
    for a, b in zip(before, after):
        for column in a:
            torch.testing.assert_close(a[column], b[column], rtol=0, atol=0, equal_nan=True)

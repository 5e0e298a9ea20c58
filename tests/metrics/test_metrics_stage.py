"""The metric stage (one baseline against several models, each map sorted once) against the per-pair functions
and scipy, on both of its paths (numpy blocks on a thread pool; torch chunks), with ties, constant maps and NaN."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import scipy.stats
import torch

from auglens.metrics import compute_baseline_metrics, compute_pair_metrics, metric_columns
from auglens.metrics import functional as F
from auglens.metrics import stage

ALL = ["mad", "msd", "pearson", "spearman", "overlap", "class_kld"]
PERCENTS = (20, 10, 5)
WITH_PARAMS = [("overlap", {"percents": PERCENTS}) if n == "overlap" else n for n in ALL]


def cam_like(seed: int, models: int, n: int = 11, side: int = 9) -> torch.Tensor:
    """``(models + 1, n, side, side)`` float32 maps with many ties (quantised), some constant, one with NaN."""
    g = torch.Generator().manual_seed(seed)
    maps = (torch.randint(0, 6, (models + 1, n, side, side), generator=g) / 5).float()
    maps[0, 1] = 0.0  # constant baseline map
    maps[1 % (models + 1), 4] = 0.5  # constant model map
    maps[models, 6, 2, 3] = math.nan
    return maps


def reference(p: torch.Tensor, q: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"mad": F.mad(p, q), "msd": F.msd(p, q), "pearson": F.pearson(p, q), "spearman": F.spearman(p, q),
            **{k: F.overlap_rate(p, q, y) for k, y in zip((17, 9, 5), PERCENTS)}}


@pytest.mark.parametrize("path", ["blocks", "chunks"])
def test_stage_equals_per_pair_functions(path, monkeypatch):
    maps = cam_like(0, models=3)
    d = maps.shape[-1] * maps.shape[-2]
    ks = [F.top_count(y, d) for y in PERCENTS]
    assert ks == [17, 9, 5]
    monkeypatch.setattr(stage, "_BLOCK_PIXELS", 3 * d)  # 4 blocks of <= 3 images, several on the pool
    monkeypatch.setattr(stage, "_CHUNK_PIXELS", 4 * d)
    flat = [m.reshape(m.shape[0], d) for m in maps]
    keys = list(stage.CAM_QUANTITIES) + sorted(ks)
    run = stage._compare_in_blocks if path == "blocks" else stage._compare_in_chunks
    out = run(flat, stage.CAM_QUANTITIES, sorted(ks), keys)
    assert len(out) == 3
    for m, result in enumerate(out, start=1):
        expected = reference(maps[0], maps[m])
        for key, value in result.items():
            assert value.dtype == torch.float64 and value.shape == (maps.shape[1],)
            torch.testing.assert_close(value, expected[key], rtol=1e-12, atol=1e-12, equal_nan=True,
                                       msg=f"model {m}, {key}")
    # The planted cases: constant maps give NaN correlations, NaN maps NaN everywhere.
    assert torch.isnan(out[0]["pearson"][[1, 4]]).all() and torch.isnan(out[0]["spearman"][[1, 4]]).all()
    assert torch.isnan(out[2]["mad"][6]) and torch.isnan(out[2][5][6]) and torch.isnan(out[2]["spearman"][6])
    assert torch.isfinite(out[2]["spearman"][[0, 2, 3, 5, 7]]).all()


def test_stage_matches_scipy_spearman_on_float32_cams():
    maps = cam_like(1, models=2, n=9, side=14)[:, [0, 1, 2, 3, 4, 5, 7, 8]]  # constant rows kept, NaN row not
    out = compute_baseline_metrics(["spearman", "pearson"], maps[0], list(maps[1:]))
    for m in (1, 2):
        p, q = maps[0].flatten(1).double().numpy(), maps[m].flatten(1).double().numpy()
        ref = [scipy.stats.spearmanr(a, b).statistic if np.ptp(a) and np.ptp(b) else math.nan for a, b in zip(p, q)]
        np.testing.assert_allclose(out[m - 1]["spearman"].numpy(), ref, rtol=0, atol=1e-12)
        ref = [scipy.stats.pearsonr(a, b).statistic if np.ptp(a) and np.ptp(b) else math.nan for a, b in zip(p, q)]
        np.testing.assert_allclose(out[m - 1]["pearson"].numpy(), ref, rtol=0, atol=1e-12)


def test_thread_count_does_not_change_results(monkeypatch):
    maps = cam_like(2, models=2, n=20)
    monkeypatch.setattr(stage, "_BLOCK_PIXELS", 2 * 81)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = compute_baseline_metrics(ALL[:-1], maps[0], list(maps[1:]))
        torch.set_num_threads(3)
        three = compute_baseline_metrics(ALL[:-1], maps[0], list(maps[1:]))
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(one, three):
        for column in a:
            torch.testing.assert_close(a[column], b[column], rtol=0, atol=0, equal_nan=True)


def test_compute_baseline_metrics_equals_compute_pair_metrics_per_model():
    maps = cam_like(3, models=3)
    g = torch.Generator().manual_seed(3)
    probs = torch.softmax(torch.randn(4, maps.shape[1], 10, generator=g), dim=-1)
    many = compute_baseline_metrics(WITH_PARAMS, maps[0], list(maps[1:]), probs[0], list(probs[1:]))
    for m, result in enumerate(many, start=1):
        assert list(result) == metric_columns(WITH_PARAMS)
        single = compute_pair_metrics(WITH_PARAMS, maps[0], maps[m], probs[0], probs[m])
        for column in single:
            torch.testing.assert_close(result[column], single[column], rtol=0, atol=0, equal_nan=True)
        torch.testing.assert_close(result["overlap_10"], F.overlap_rate(maps[0], maps[m], 10), equal_nan=True)
        torch.testing.assert_close(result["class_kld"], F.class_kld(probs[0], probs[m], 1e-10))


def test_stage_rejects_mismatched_maps():
    with pytest.raises(ValueError, match="same shape"):
        compute_baseline_metrics(["mad"], torch.rand(2, 3, 3), [torch.rand(2, 3, 3), torch.rand(2, 3, 4)])
    with pytest.raises(ValueError, match="map\\[None\\]"):
        compute_baseline_metrics(["mad"], torch.rand(5), [torch.rand(5)])
    with pytest.raises(ValueError, match="unknown quantities"):
        stage.compare_with_baseline(torch.rand(2, 3, 3), [torch.rand(2, 3, 3)], ["median"], [])


def _compare_in_child(maps, queue) -> None:
    try:
        results = compute_baseline_metrics(ALL[:-1], maps[0], list(maps[1:]))
        queue.put(("ok", [{k: v.numpy() for k, v in r.items()} for r in results]))
    except Exception:  # reported as such, not as a hang
        import traceback

        queue.put(("error", traceback.format_exc()))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX-only")
def test_a_process_forked_after_the_thread_pool_started_computes_too(monkeypatch):
    """The parent's pool threads do not survive a fork; a child that reused the pool would wait forever."""
    import multiprocessing

    maps = cam_like(2, models=2, n=20)
    monkeypatch.setattr(stage, "_BLOCK_PIXELS", 2 * 81)  # several blocks, so the pool is used
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        here = compute_baseline_metrics(ALL[:-1], maps[0], list(maps[1:]))  # starts the pool's threads
        assert stage._POOLS
        context = multiprocessing.get_context("fork")
        queue = context.Queue()
        child = context.Process(target=_compare_in_child, args=(maps, queue))
        child.start()
        try:
            status, there = queue.get(timeout=30)
        except Exception:  # queue.Empty: the child is stuck
            child.kill()
            pytest.fail("the forked process hung on the parent's thread pool")
        child.join(timeout=30)
        assert status == "ok", there
    finally:
        torch.set_num_threads(threads)
    assert child.exitcode == 0
    for a, b in zip(here, there):
        for column in a:
            np.testing.assert_array_equal(a[column].numpy(), b[column])

"""Contracts of the metric functions that the parity tests do not pin down: float64 results from any float
input, NaN rows kept apart, one-pixel maps, the error for a missing input, custom metric specs."""

from __future__ import annotations

import inspect
import math

import pytest
import torch

from auglens.metrics import CAM_METRICS, MetricSpec, compute_pair_metrics, functional as F

MAP_METRICS = {"mad": {}, "msd": {}, "pearson": {}, "spearman": {}, "overlap": {"top_percent": 20.0}}


@pytest.mark.parametrize("name", [*MAP_METRICS, "class_kld"])
def test_float32_inputs_are_computed_in_float64(name):
    generator = torch.Generator().manual_seed(1)
    if name == "class_kld":
        p = torch.rand(6, 10, generator=generator).softmax(1).float()
        q = torch.rand(6, 10, generator=generator).softmax(1).float()
    else:
        p = torch.rand(6, 32, 32, generator=generator).float()
        q = (p + 0.3 * torch.rand(6, 32, 32, generator=generator)).float()
    kwargs = MAP_METRICS.get(name, {})
    got = CAM_METRICS.build(name, p=p, q=q, **kwargs)
    # float32 values are exact in float64: the same numbers computed in float64 are the reference.
    expected = CAM_METRICS.build(name, p=p.double(), q=q.double(), **kwargs)
    assert got.dtype == torch.float64
    assert torch.equal(got, expected)


@pytest.mark.parametrize("name", [*MAP_METRICS, "class_kld"])
def test_a_nan_in_one_row_of_either_input_marks_that_row_only(name):
    p = torch.rand(3, 4, 4, generator=torch.Generator().manual_seed(2)).double() + 0.1
    if name == "class_kld":
        p = p.flatten(1) / p.flatten(1).sum(1, keepdim=True)
    for side in ("p", "q"):
        a, b = p.clone(), p.flip(0).clone()
        (a if side == "p" else b)[1].view(-1)[0] = math.nan
        got = CAM_METRICS.build(name, p=a, q=b, **MAP_METRICS.get(name, {}))
        assert torch.isnan(got).tolist() == [False, True, False], (side, got)


@pytest.mark.parametrize("name", ["mad", "msd", "overlap"])
def test_single_pixel_maps_are_valid(name):
    p, q = torch.tensor([[1.0], [2.0]]), torch.tensor([[3.0], [2.0]])
    got = CAM_METRICS.build(name, p=p, q=q, **MAP_METRICS[name])
    expected = {"mad": [2.0, 0.0], "msd": [4.0, 0.0], "overlap": [1.0, 1.0]}[name]
    assert got.tolist() == expected


def test_complex_inputs_are_rejected_naming_the_argument():
    real = torch.ones(2, 3)
    with pytest.raises(TypeError, match="^p must be real"):
        F.mad(real.to(torch.complex64), real)
    with pytest.raises(TypeError, match="^q must be real"):
        F.mad(real, real.to(torch.complex64))
    with pytest.raises(TypeError, match="^p must be real"):
        F.class_kld(real.to(torch.complex64), real)
    with pytest.raises(TypeError, match="^q must be real"):
        F.class_kld(real, real.to(torch.complex64))


def test_the_epsilon_parameter_reaches_class_kld():
    p = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], dtype=torch.float64)
    q = torch.tensor([[0.5, 0.4, 0.1], [0.3, 0.3, 0.4]], dtype=torch.float64)
    got = compute_pair_metrics([("class_kld", {"epsilon": 0.5})], base_probs=p, other_probs=q)["class_kld"]
    assert torch.equal(got, F.class_kld(p, q, eps=0.5))
    assert not torch.allclose(got, F.class_kld(p, q))


@pytest.mark.parametrize(("missing", "match"), [("base_maps", "maps"), ("other_maps", "maps"),
                                                ("base_probs", "probs"), ("other_probs", "probs")])
def test_a_missing_input_is_named(missing, match):
    inputs = {"base_maps": torch.rand(3, 4, 4), "other_maps": torch.rand(3, 4, 4),
              "base_probs": torch.full((3, 2), 0.5), "other_probs": torch.full((3, 2), 0.5)}
    inputs[missing] = None
    with pytest.raises(ValueError, match=match):
        compute_pair_metrics(["mad", "class_kld"], **inputs)


def test_different_batch_sizes_are_reported_with_both_sizes():
    with pytest.raises(ValueError, match=r"'maps': 3.*'probs': 2"):
        compute_pair_metrics(["mad", "class_kld"], base_maps=torch.rand(3, 4, 4), other_maps=torch.rand(3, 4, 4),
                             base_probs=torch.full((2, 2), 0.5), other_probs=torch.full((2, 2), 0.5))


def test_a_metric_spec_carries_its_description_and_signature():
    def double_gap(p, q, scale: float = 2.0):
        return scale * (p - q).abs().flatten(1).mean(1)

    spec = MetricSpec("double_gap", double_gap, "cam", False, "Twice the mean absolute difference.")
    assert inspect.getdoc(spec) == "Twice the mean absolute difference."
    assert inspect.signature(spec) == inspect.signature(double_gap)
    assert spec(torch.ones(1, 2), torch.zeros(1, 2)).tolist() == [2.0]
    with pytest.raises(ValueError, match="input"):
        MetricSpec("bad", double_gap, "pixels", False, "")

"""auglens.metrics: registry of metric specs, column naming, pair computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from auglens.metrics import (
    ALL_METRIC_NAMES,
    MASK_METRIC_NAMES,
    CAM_METRICS,
    MetricSpec,
    column_higher_is_better,
    compute_pair_metrics,
    functional as F,
    get_metric,
    metric_columns,
    resolve_metrics,
    spec_for_column,
)
from auglens.registry import UnknownNameError

ALL = ["mad", "msd", "pearson", "spearman", "overlap", "class_kld"]


def test_registry_holds_the_thesis_metrics_with_metadata():
    assert CAM_METRICS.names() == sorted([*ALL, *MASK_METRIC_NAMES]) and sorted(ALL) == sorted(ALL_METRIC_NAMES)
    expected = {"mad": False, "msd": False, "class_kld": False, "pearson": True, "spearman": True, "overlap": True}
    for name, higher in expected.items():
        spec = get_metric(name)
        assert isinstance(spec, MetricSpec) and spec.name == name
        assert spec.higher_is_better is higher
        assert spec.input == ("probs" if name == "class_kld" else "cam")
        assert spec.description and CAM_METRICS.describe(name) == spec.description.splitlines()[0]
    assert "top_percent" in CAM_METRICS.parameters("overlap")
    assert "eps" in CAM_METRICS.parameters("class_kld")


def test_unknown_name_lists_valid_names():
    with pytest.raises(UnknownNameError) as err:
        get_metric("spearmn")
    message = str(err.value)
    assert "'spearman'" in message  # did-you-mean
    for name in ALL:
        assert name in message
    with pytest.raises(UnknownNameError, match="Valid names"):
        metric_columns(["mad", "ssim"])
    with pytest.raises(UnknownNameError, match="Valid names"):
        compute_pair_metrics(["nope"], torch.rand(2, 3, 3), torch.rand(2, 3, 3))


def _overlap(*percents):
    return ("overlap", {"percents": list(percents)})


def test_metric_columns_expansion():
    assert metric_columns(ALL) == [
        "mad", "msd", "pearson", "spearman", "overlap_20", "overlap_10", "overlap_5", "class_kld",
    ]
    assert metric_columns([_overlap(20.0, 12.5, 0.5), "mad"]) == ["overlap_20", "overlap_12.5", "overlap_0.5", "mad"]
    assert metric_columns([("mask_iou", {"percents": [20, 5]})]) == [
        "mask_iou_20", "mask_iou_20_change", "mask_iou_5", "mask_iou_5_change"]
    with pytest.raises(ValueError, match="non-empty list"):
        metric_columns([_overlap()])
    with pytest.raises(ValueError):
        metric_columns([_overlap(20, 20.0)])  # duplicate column
    with pytest.raises(ValueError):
        metric_columns(["mad", "mad"])
    with pytest.raises(ValueError, match=r"metric 'overlap', percents: .*\(0, 100\]"):
        metric_columns([_overlap(150)])
    with pytest.raises(TypeError):
        metric_columns("mad")


def test_parameters_are_declared_in_the_registry_entries():
    assert get_metric("overlap").defaults() == {"percents": (20.0, 10.0, 5.0)}
    assert get_metric("mask_iou").defaults() == {"percents": (20.0, 10.0, 5.0)}
    assert get_metric("class_kld").defaults() == {"epsilon": F.DEFAULT_KLD_EPS}
    assert all(not get_metric(name).params for name in ("mad", "msd", "pearson", "spearman", "mask_energy"))
    # Each declared parameter feeds an argument the metric's function takes.
    for name in CAM_METRICS.names():
        for param in get_metric(name).params:
            assert param.argument in CAM_METRICS.parameters(name), (name, param.name)
    # Canonical values: ints and floats alike, so [20, 10, 5] and [20.0, 10.0, 5.0] are one job key.
    assert get_metric("overlap").resolve({"percents": [20, 10, 5]}) == get_metric("overlap").resolve()
    assert resolve_metrics([_overlap(20, 10, 5), "class_kld"]) == resolve_metrics(
        [_overlap(20.0, 10.0, 5.0), ("class_kld", {"epsilon": 1e-10})])


def test_an_unknown_or_bad_parameter_names_the_metric_and_its_parameters():
    with pytest.raises(ValueError, match="metric 'overlap' has no parameter 'percent'; its parameters: percents"):
        metric_columns([("overlap", {"percent": [10]})])
    with pytest.raises(ValueError, match="metric 'mad' has no parameter 'epsilon'; its parameters: none"):
        metric_columns([("mad", {"epsilon": 1.0})])
    with pytest.raises(ValueError, match="metric 'class_kld', epsilon: must be a finite number >= 0"):
        metric_columns([("class_kld", {"epsilon": -1.0})])
    with pytest.raises(ValueError, match="metric 'overlap', percents"):
        metric_columns([("overlap", {"percents": ["20"]})])


def test_a_new_metric_with_a_parameter_needs_only_its_registry_entry():
    """Config validation, columns, computation and the config's docs read the new entry; nothing else changes."""
    from auglens import config as cfg
    from auglens.metrics import MetricParam, _register

    def shifted_mad(p, q, shift=0.0):
        return F.mad(p, q) + shift

    def check(value):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"must be a number, got {value!r}")
        return float(value)

    _register(MetricSpec("shifted_mad", shifted_mad, "cam", False, "MAD plus a shift.",
                         params=(MetricParam("shifts", (0.0, 1.0), "shift", "shifts, one column each", check,
                                             per_column=True),)))
    try:
        config = cfg.from_dict({"metrics": [{"name": "shifted_mad", "shifts": [2, 0.5]}]})
        assert config.metrics[0].params == {"shifts": [2.0, 0.5]}
        with pytest.raises(cfg.ConfigError, match="metric 'shifted_mad' has no parameter 'shift'; its parameters: "
                                                  "shifts"):
            cfg.from_dict({"metrics": [{"name": "shifted_mad", "shift": 2}]})
        a, b = torch.rand(3, 4, 4), torch.rand(3, 4, 4)
        out = compute_pair_metrics(config.metrics, a, b)
        assert list(out) == ["shifted_mad_2", "shifted_mad_0.5"]
        torch.testing.assert_close(out["shifted_mad_0.5"], F.mad(a, b).double() + 0.5)
        assert spec_for_column("shifted_mad_2").name == "shifted_mad"
        assert ("metrics.shifted_mad.shifts", "shifts, one column each", [0.0, 1.0]) in cfg.describe_fields()
    finally:
        del CAM_METRICS._entries["shifted_mad"]


def test_column_higher_is_better():
    assert [column_higher_is_better(c) for c in metric_columns(ALL)] == [
        False, False, True, True, True, True, True, False,
    ]
    assert column_higher_is_better("overlap_12.5") is True
    assert spec_for_column("overlap_5").name == "overlap"
    for bad in ("overlap_", "overlap_x", "overlap_0", "accuracy", "mad_10", "area_20"):
        with pytest.raises(UnknownNameError, match="Valid names"):
            column_higher_is_better(bad)


def test_compute_pair_metrics_matches_functional():
    rng = np.random.default_rng(0)
    base_maps = torch.from_numpy(rng.integers(0, 8, size=(5, 7, 7)) / 7).float()
    other_maps = torch.from_numpy(rng.integers(0, 8, size=(5, 7, 7)) / 7).float()
    base_probs = torch.softmax(torch.from_numpy(rng.normal(size=(5, 10))), dim=1)
    other_probs = torch.softmax(torch.from_numpy(rng.normal(size=(5, 10))), dim=1)
    out = compute_pair_metrics(ALL, base_maps, other_maps, base_probs, other_probs)
    assert list(out) == metric_columns(ALL)
    for column, values in out.items():
        assert values.shape == (5,) and values.dtype == torch.float64, column
    torch.testing.assert_close(out["mad"], F.mad(base_maps, other_maps))
    torch.testing.assert_close(out["spearman"], F.spearman(base_maps, other_maps))
    torch.testing.assert_close(out["overlap_10"], F.overlap_rate(base_maps, other_maps, 10))
    torch.testing.assert_close(out["overlap_5"], F.overlap_rate(base_maps, other_maps, 5))
    torch.testing.assert_close(out["class_kld"], F.class_kld(base_probs, other_probs, eps=1e-10))


def test_compute_pair_metrics_only_needs_the_inputs_it_uses():
    maps = torch.rand(3, 4, 4)
    assert list(compute_pair_metrics(["mad"], maps, maps)) == ["mad"]
    probs = torch.softmax(torch.rand(3, 5), dim=1)
    assert list(compute_pair_metrics(["class_kld"], base_probs=probs, other_probs=probs)) == ["class_kld"]
    with pytest.raises(ValueError, match="probs"):
        compute_pair_metrics(["mad", "class_kld"], maps, maps)
    with pytest.raises(ValueError, match="different numbers"):
        compute_pair_metrics(["mad", "class_kld"], maps, maps, probs[:2], probs[:2])


def test_spec_is_callable_through_the_registry():
    a, b = torch.rand(2, 3, 3), torch.rand(2, 3, 3)
    torch.testing.assert_close(CAM_METRICS.build("overlap", p=a, q=b, top_percent=20), F.overlap_rate(a, b, 20))
    torch.testing.assert_close(get_metric("msd")(a, b), F.msd(a, b))


# ---------------------------------------------------------------------------- parameters and requests, refused or kept

def test_a_per_column_parameter_must_be_a_non_empty_list():
    for bad in ("20", 20, {20.0}, b"20", []):
        with pytest.raises(ValueError, match="non-empty list"):
            metric_columns([("overlap", {"percents": bad})])


def test_a_spec_with_two_parameters_lists_both_and_allows_one_per_column():
    from auglens.metrics import MetricParam

    def fn(p, q, a=1.0, b=1.0):
        return F.mad(p, q) * a * b

    a = MetricParam("as", (1.0,), "a", "", float, per_column=True)
    b = MetricParam("b", 1.0, "b", "", float)
    spec = MetricSpec("two", fn, "cam", False, "", params=(a, b))
    with pytest.raises(ValueError, match="its parameters: as, b$"):
        spec.resolve({"c": 1})
    with pytest.raises(ValueError, match="at most one parameter"):
        MetricSpec("three", fn, "cam", False, "", params=(a, MetricParam("bs", (1.0,), "b", "", float,
                                                                          per_column=True)))


def test_epsilon_zero_is_plain_kl_and_booleans_are_refused():
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    q = np.array([[0.5, 0.4, 0.1], [0.3, 0.3, 0.4]])
    out = compute_pair_metrics([("class_kld", {"epsilon": 0})], base_probs=torch.from_numpy(p),
                               other_probs=torch.from_numpy(q))["class_kld"]
    import scipy.stats

    np.testing.assert_allclose(out.numpy(), scipy.stats.entropy(q, p, axis=1), rtol=1e-14)  # KL(Q || P)
    for bad in (True, False, "0.1", None):
        with pytest.raises(ValueError, match="metric 'class_kld', epsilon"):
            metric_columns([("class_kld", {"epsilon": bad})])


def test_resolved_metrics_keep_the_given_values_and_are_accepted_back():
    given = [("overlap", {"percents": [10, 2.5]}), ("class_kld", {"epsilon": 0.5}), "mad"]
    resolved = resolve_metrics(given)
    assert resolved == (("overlap", (("percents", (10.0, 2.5)),)), ("class_kld", (("epsilon", 0.5),)), ("mad", ()))
    # The frozen form, ((parameter, value), ...), is a request too: a job's key gives the same columns and values.
    assert metric_columns(resolved) == metric_columns(given) == ["overlap_10", "overlap_2.5", "class_kld", "mad"]
    assert resolve_metrics(resolved) == resolved
    maps = torch.rand(3, 4, 4, generator=torch.Generator().manual_seed(0))
    probs = torch.softmax(torch.rand(3, 5, generator=torch.Generator().manual_seed(1)), dim=1)
    a = compute_pair_metrics(resolved, maps, maps.flip(0), probs, probs.flip(0))
    b = compute_pair_metrics(given, maps, maps.flip(0), probs, probs.flip(0))
    assert list(a) == list(b)
    for column in a:
        torch.testing.assert_close(a[column], b[column], rtol=0, atol=0)


def test_a_request_that_is_neither_a_name_nor_a_pair_nor_a_config_entry_is_refused():
    from types import SimpleNamespace

    for bad in (5, SimpleNamespace(name="mad"), SimpleNamespace(name="mad", params=None),
                SimpleNamespace(name=None, params={}), ("mad",), ("mad", "percents")):
        with pytest.raises(TypeError, match="a metric is a name"):
            metric_columns([bad])
    assert metric_columns([SimpleNamespace(name="overlap", params={"percents": [7]})]) == ["overlap_7"]


def test_input_checks_name_what_is_missing_or_mismatched():
    maps, masks = torch.rand(2, 4, 4), torch.ones(3, 4, 4, dtype=torch.bool)
    with pytest.raises(ValueError, match="need both base_maps and other_maps"):
        compute_pair_metrics(["mask_energy"], None, None, masks=masks[:2])
    with pytest.raises(ValueError, match="need both base_maps and other_maps"):
        compute_pair_metrics(["mad"], maps, None)
    with pytest.raises(ValueError, match="need both base_probs and other_probs"):
        compute_pair_metrics(["class_kld"], base_probs=torch.full((2, 2), 0.5))
    with pytest.raises(ValueError, match=r"different numbers of images: \{'maps': 2, 'masks': 3\}"):
        compute_pair_metrics(["mask_energy"], maps, maps, masks=masks)
    with pytest.raises(ValueError, match=r"different numbers of images: \{'maps': 2, 'masks': 3\}"):
        compute_pair_metrics([("mask_iou", {"percents": [10]})], maps, maps, masks=masks)


def test_a_column_that_only_ends_like_a_metric_column_is_unknown():
    for bad in ("accuracy10", "xoverlap_10", "overlap10", "mask_iou10"):
        with pytest.raises(UnknownNameError, match="Valid names"):
            spec_for_column(bad)

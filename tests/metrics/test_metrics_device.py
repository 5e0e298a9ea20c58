"""The metrics run on the inputs' device (CUDA when available) and give the CPU results there."""

from __future__ import annotations

import pytest
import torch

from auglens.metrics import ALL_METRIC_NAMES, classification_report, compute_pair_metrics

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_pair_metrics_stay_on_input_device_and_match_cpu(device):
    g = torch.Generator().manual_seed(0)
    base_maps = torch.randint(0, 8, (6, 14, 14), generator=g) / 7
    other_maps = torch.randint(0, 8, (6, 14, 14), generator=g) / 7
    base_maps[0] = 0.0  # constant map -> NaN correlations
    base_probs = torch.softmax(torch.randn(6, 10, generator=g), dim=1)
    other_probs = torch.softmax(torch.randn(6, 10, generator=g), dim=1)
    cpu = compute_pair_metrics(ALL_METRIC_NAMES, base_maps, other_maps, base_probs, other_probs)
    dev = compute_pair_metrics(
        ALL_METRIC_NAMES,
        base_maps.to(device),
        other_maps.to(device),
        base_probs.to(device),
        other_probs.to(device),
    )
    assert list(dev) == list(cpu)
    for column in cpu:
        assert dev[column].device.type == device, column
        torch.testing.assert_close(dev[column].cpu(), cpu[column], rtol=1e-12, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("device", DEVICES)
def test_classification_report_on_device(device):
    g = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 5, (100,), generator=g)
    preds = torch.randint(0, 5, (100,), generator=g)
    cpu = classification_report(preds, labels, 5)
    dev = classification_report(preds.to(device), labels.to(device), 5)
    assert dev["confusion_matrix"].device.type == device
    for key in ("accuracy", "precision_macro", "recall_macro", "f1_macro"):
        assert dev[key] == pytest.approx(cpu[key], abs=1e-12)
    torch.testing.assert_close(dev["confusion_matrix"].cpu(), cpu["confusion_matrix"])

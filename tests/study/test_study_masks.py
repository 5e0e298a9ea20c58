"""A tiny study with object masks: localisation columns in the tables and the report, recomputable from disk."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from auglens import config as cfg
from auglens import study
from auglens.data import resize_masks
from auglens.data.prepared import prepare_data
from auglens.metrics.localisation import energy_pointing_game, top_region_iou

STUDY = """
name = "tiny-masks"
[data]
name = "synthetic"
train_subset = 160
test_subset = 40
[split]
validation_fraction = 0.1
[model]
architecture = "tiny_cnn"
input_size = 24
[training]
batch_size = 32
epochs = 1
[study]
seeds = [1]
[[augmentations]]
name = "compose"
steps = [{ name = "randaugment", num_ops = 1 }, { name = "cutmix", p = 0.5 }]
[cam]
method = "gradcam"
[metrics]
names = ["mad", "mask_energy", "mask_iou"]
overlap_percents = [20.0, 5.0]
[runtime]
device = "cpu"
progress = false
report = false
"""


@pytest.mark.slow
def test_mask_metrics_in_the_tables_and_the_report(tmp_path):
    from safetensors.torch import load_file

    from auglens.cam import upsample_maps
    from auglens.report import build_report

    (tmp_path / "study.toml").write_text(STUDY)
    config = cfg.load(tmp_path / "study.toml")
    result = study.run_study(config, tmp_path / "out")
    cm = pd.read_parquet(tmp_path / "out" / "cam_metrics.parquet")
    columns = ["mask_energy", "mask_energy_change", "mask_iou_20", "mask_iou_20_change", "mask_iou_5",
               "mask_iou_5_change"]
    assert list(cm.columns[-len(columns):]) == columns
    assert set(cm["augmentation"]) == {"compose"}

    # Recompute one model's and the baseline's localisation from the stored CAM sets and the data set's masks,
    # brought to the maps' 24x24 size by the images' own resize.
    out = tmp_path / "out"
    perf = result.performance.set_index("model")
    base = upsample_maps(load_file(out / perf.loc["none-s1", "cam_set"])["maps"].float(), (24, 24))
    other = upsample_maps(load_file(out / perf.loc["compose-s1", "cam_set"])["maps"].float(), (24, 24))
    masks = prepare_data(study.data_spec(config)).test.masks
    masks = resize_masks(masks, 24)
    assert masks.shape == (40, 24, 24) and bool(masks.any(dim=(1, 2)).all())
    rows = cm.query("augmentation == 'compose'").sort_values("image")
    np.testing.assert_allclose(rows["mask_energy"], energy_pointing_game(other, masks).numpy(), atol=1e-12)
    np.testing.assert_allclose(rows["mask_energy_change"],
                               (energy_pointing_game(other, masks) - energy_pointing_game(base, masks)).numpy(),
                               atol=1e-12)
    np.testing.assert_allclose(rows["mask_iou_5"], top_region_iou(other, masks, 5.0).numpy(), atol=1e-12)
    assert cm[columns].stack().dropna().between(-1, 1).all()  # NaN: a CAM with no positive value

    html = build_report(out).read_text()
    assert "mask_energy_change" in html and "attention moved onto the object" in html

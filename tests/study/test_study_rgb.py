"""A colour ImageFolder study whose images are resized for the model: the paths the grey tiny study skips."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from auglens import config as cfg
from auglens import study


def _write_folder(root, size=12, per_class=12, seed=0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    colours = {"red": (200, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 200)}
    for split, count in (("train", per_class), ("test", per_class // 2)):
        for name, colour in colours.items():
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 60, (size, size + 4, 3), dtype=np.uint8)  # not square: cropped on load
                top, left = rng.integers(0, size - 4, 2)
                pixels[top : top + 4, left : left + 4] = colour
                Image.fromarray(pixels).save(root / split / name / f"{i}.png")


@pytest.mark.slow  # a whole study
def test_colour_folder_study_with_resizing(tmp_path):
    _write_folder(tmp_path / "images")
    config = cfg.from_dict({
        "name": "rgb", "data": {"name": "image_folder", "root": str(tmp_path / "images"), "image_size": 12},
        "split": {"validation_fraction": 0.25},
        "model": {"architecture": "tiny_cnn", "input_size": 20},
        "training": {"batch_size": 8, "epochs": 1},
        "study": {"seeds": [1]},
        "augmentations": [{"name": "color_jitter"}, {"name": "random_crop"}],
        "cam": {"method": "gradcam++", "target": "label"},
        "runtime": {"device": "cpu", "progress": False, "report": False},
    })
    result = study.run_study(config, tmp_path / "out")
    assert len(result.cam_metrics) == 2 * 18
    assert result.cam_metrics[["mad", "msd", "overlap_20"]].notna().all().all()
    perf = pd.read_csv(tmp_path / "out" / "performance.csv")
    assert perf["augmentation"].tolist() == ["none", "color_jitter", "random_crop"]
    from safetensors.torch import load_file

    cam_set = load_file(tmp_path / "out" / perf.loc[0, "cam_set"])
    # target = "label": the CAMs explain the true class, whatever the model predicted
    assert cam_set["targets"].tolist() == result.cam_metrics.query("augmentation == 'color_jitter'")["label"].tolist()
    test_set = load_file(tmp_path / "out" / "test_set.safetensors")
    assert tuple(test_set["images"].shape) == (18, 3, 12, 12)

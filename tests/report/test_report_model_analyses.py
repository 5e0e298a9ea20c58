"""The report's faithfulness and CKA section: present with their tables, absent without them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from auglens.report import build_report
from auglens.report.build import faithfulness_summary


def _add_tables(root, augmentations=("affine", "cutmix", "equalize"), seeds=(1, 2), images=10):
    rng = np.random.default_rng(0)
    rows = []
    for augmentation, model_seeds in [("none", seeds[:1]), *[(a, seeds) for a in augmentations]]:
        for seed in model_seeds:
            for image in range(images):
                rows.append({"augmentation": augmentation, "seed": seed, "image": image, "label": image % 4,
                             "target": image % 4, "model_pred": image % 4, "deletion": rng.uniform(),
                             "insertion": rng.uniform()})
    pd.DataFrame(rows).to_parquet(root / "model_faithfulness.parquet", index=False)
    layers = ["features.block1", "features.block2", "features.block3"]
    cka = [{"augmentation": a, "seed": s, "baseline_model": "none-s1", "layer_index": i, "layer": layer,
            "cka": 1 - 0.1 * i * (k + 1) - 0.01 * s, "estimator": "linear", "images": images}
           for k, a in enumerate(augmentations) for s in seeds for i, layer in enumerate(layers)]
    pd.DataFrame(cka).to_csv(root / "model_cka.csv", index=False)


def test_section_with_summary_table_and_heatmap(make_study):
    root = make_study()
    _add_tables(root)
    index = build_report(root, n_boot=20, n_perm=20, jobs=1, browser_images=0)
    html = index.read_text()
    assert "Faithfulness and representation similarity" in html
    assert (root / "report" / "figures" / "cka_heatmap.png").is_file()
    summary = pd.read_csv(root / "report" / "tables" / "faithfulness_summary.csv")
    assert summary["augmentation"].tolist() == ["none", "affine", "cutmix", "equalize"]
    faithfulness = pd.read_parquet(root / "model_faithfulness.parquet")
    affine = faithfulness[faithfulness["augmentation"] == "affine"].groupby("seed")["deletion"].mean().mean()
    baseline = faithfulness[faithfulness["augmentation"] == "none"]["deletion"].mean()
    row = summary.set_index("augmentation").loc["affine"]
    assert np.isclose(row["deletion"], affine) and np.isclose(row["deletion change"], affine - baseline)
    # the last layer (index 2) of cutmix (k = 1): 1 - 0.4 - 0.01 s, mean over seeds 1 and 2
    assert np.isclose(summary.set_index("augmentation").loc["cutmix", "cka last layer"], 1 - 0.4 - 0.015)
    by_layer = pd.read_csv(root / "report" / "tables" / "cka_by_layer.csv")
    assert len(by_layer) == 3 * 3 and (by_layer["n_seeds"] == 2).all()


def test_no_section_without_the_tables(built_report):
    assert "Faithfulness and representation similarity" not in built_report.read_text()


def test_summary_without_faithfulness_has_cam_change_and_cka_only():
    aug_metrics = pd.DataFrame({"augmentation": ["affine"] * 3, "image": [0, 1, 2], "mad": [0.1, 0.2, 0.4]})
    cka = pd.DataFrame({"augmentation": ["affine"], "seed": [1], "layer_index": [0], "layer": ["a"], "cka": [0.9]})
    table = faithfulness_summary(None, aug_metrics, cka, ["affine"], ["mad"])
    assert list(table.columns) == ["augmentation", "mad median", "cka last layer"]
    assert table["mad median"].tolist()[1] == 0.2 and table["cka last layer"].tolist()[1] == 0.9

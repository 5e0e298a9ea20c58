"""Every distortion analysis end to end on tiny data (synthetic, tiny_cnn, 1 epoch), and resuming."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from auglens import distortion
from auglens.data import load_dataset

pytestmark = pytest.mark.slow  # every analysis trains models

TINY = {
    "name": "tiny-distortion",
    "analyses": ["interference", "occlusion", "affinity", "interdataset", "simplicity", "cue_conflict"],
    "data": {"name": "synthetic", "train_subset": 120, "test_subset": 40},
    "model": {"architecture": "tiny_cnn", "input_size": 16},
    "training": {"optimizer": "adam", "lr": 3e-3, "batch_size": 32, "epochs": 1},
    "runs": {"seeds": [1, 2]},
    "augmentations": [{"name": "fmix"}],
    "interference": {"grid": 2, "distortions": ["grid_shuffle", "cut_occlusion", "fourier_occlusion"]},
    "occlusion": {"fractions": [0.0, 0.5], "maskings": ["saliency", "fourier"], "occluders": ["black", "images"],
                  "occluder_dataset": "synthetic", "max_train_images": 40, "max_test_images": 40,
                  "table_fraction": 0.5},
    "affinity": {"max_test_images": 40},
    "interdataset": {"partners": ["synthetic"], "augmentations": ["mixup"]},
    "simplicity": {"simple": "synthetic", "complex": "synthetic", "complex_classes": [3, 2, 1, 0],
                   "train_subset": 80, "test_subset": 40, "augmentations": ["fmix"]},
    "runtime": {"device": "cpu", "progress": False, "num_threads": 1},
}


def _cue_conflict_folder(root: Path) -> Path:
    """Synthetic images named <shape class><n>-<texture class><n>.png; the shape is the image's true class."""
    from PIL import Image

    test = load_dataset("synthetic")["test"]
    folder = root / "cue"
    folder.mkdir()
    for i in range(12):
        shape, texture = int(test.labels[i]), (int(test.labels[i]) + 1 + i % 3) % 4
        name = f"{test.classes[shape]}{i}-{test.classes[texture]}{i}.png"
        Image.fromarray(test.images[i, 0].numpy()).save(folder / name)
    Image.fromarray(test.images[0, 0].numpy()).save(folder / f"{test.classes[0]}90-{test.classes[0]}91.png")
    return folder


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    root = tmp_path_factory.mktemp("distortion")
    config = copy.deepcopy(TINY)
    config["cue_conflict"] = {"folder": str(_cue_conflict_folder(root))}
    # index subsets: "same" = every test image (must reproduce "all"), "firsts" = the first 10 train/test images
    (root / "same.json").write_text(json.dumps({"test": list(range(40))}))
    (root / "firsts.json").write_text(json.dumps({"train": list(range(10)), "test": list(range(10))}))
    subsets = {"same": str(root / "same.json"), "firsts": str(root / "firsts.json")}
    config["occlusion"] = {**config["occlusion"], "subsets": subsets}
    config["affinity"] = {**config["affinity"], "subsets": {"same": subsets["same"]}}
    path = root / "tiny.toml"
    import tomli_w

    path.write_text(tomli_w.dumps(config))
    threads = torch.get_num_threads()  # runtime.num_threads is process-wide: restore it for other tests
    try:
        tables = distortion.run_from_toml(path, root / "out")
        yield tables, root / "out" / "distortion", path
    finally:
        torch.set_num_threads(threads)


def test_every_analysis_writes_tables_figure_and_manifest(finished):
    tables, out, _ = finished
    assert list(tables) == TINY["analyses"]
    for name, frames in tables.items():
        folder = out / name
        for table in frames:
            assert (folder / f"{table}.csv").exists(), (name, table)
        for suffix in ("png", "svg"):
            assert (folder / f"{name}.{suffix}").stat().st_size > 1000
        assert (folder / "manifest.json").exists()
    assert (out / "config.toml").exists()


def _release_di(clean: np.ndarray, distorted: np.ndarray) -> np.ndarray:
    """DI.py's get_index on (runs, K) wrong-prediction counts, per run, in percent (numpy, independent)."""
    k = clean.shape[1]

    def shares(counts):  # no wrong predictions at all: zeros, where the release would divide by zero
        return counts / np.maximum(counts.sum(1, keepdims=True), 1)

    increase = np.clip(shares(distorted) - shares(clean), 0, None)
    increase = increase * k / 100
    c_max = increase.mean(0).argmax()
    with np.errstate(invalid="ignore"):
        share = np.nan_to_num(increase[:, c_max] / increase.sum(1))
    return 100 * share * increase[:, c_max].mean()


def test_interference_tables(finished):
    t, out = finished[0]["interference"], finished[1] / "interference"
    wrong, runs, summary = t["wrong_predictions"], t["di_runs"], t["di_summary"]
    assert list(wrong.columns[:8]) == ["augmentation", "trained_without", "distortion", "seed", "class", "class_name",
                                       "clean_wrong", "distorted_wrong"]
    assert (out / "wrong_predictions.csv").exists()
    assert set(summary["augmentation"]) == {"none", "fmix"}
    assert set(summary["distortion"]) == {"grid_shuffle", "cut_occlusion", "fourier_occlusion"}
    assert (summary["runs"] == 2).all()
    # Both DIs recomputed from the written counts alone.
    full = pd.read_csv(out / "wrong_predictions.csv", keep_default_na=False)
    full = full[full["trained_without"] == ""]
    for (label, distortion), part in full.groupby(["augmentation", "distortion"]):
        clean = part.pivot(index="seed", columns="class", values="clean_wrong").to_numpy(float)
        distorted = part.pivot(index="seed", columns="class", values="distorted_wrong").to_numpy(float)
        mine = runs[(runs["augmentation"] == label) & (runs["distortion"] == distortion)].sort_values("seed")
        assert np.allclose(mine["di_release"], _release_di(clean, distorted))
        row = summary[(summary["augmentation"] == label) & (summary["distortion"] == distortion)].iloc[0]
        assert row["di_release_mean"] == pytest.approx(_release_di(clean, distorted).mean())
        assert row["di_release_std"] == pytest.approx(_release_di(clean, distorted).std(ddof=1))
        increase = np.clip(100 * (distorted - clean) / part["test_images"].iloc[0], 0, None)
        c_max = increase.mean(0).argmax()
        expected = increase[:, c_max] ** 2 / np.maximum(increase.sum(1), 1e-300)  # no increase: DI 0
        assert np.allclose(mine["di_paper"], expected)
        assert (mine["di_paper_worst"] >= mine["di_paper"] - 1e-9).all()
    # class removal: retrained without c_max, which then gets no wrong predictions of its own
    removal = t["class_removal_summary"]
    assert set(removal["augmentation"]) == {"none", "fmix"}
    removed = dict(zip(removal["augmentation"], removal["trained_without"]))
    for label, name in removed.items():
        rows = wrong[(wrong["augmentation"] == label) & (wrong["trained_without"] == name)]
        assert len(rows) and name not in set(rows["class_name"])


def test_occlusion_tables(finished):
    t = finished[0]["occlusion"]
    runs = t["occlusion_runs"]
    assert set(runs["masking"]) == {"saliency", "fourier", "box"}  # box always: it is CutOcclusion
    assert set(runs["occluder"]) == {"black", "images"}
    clean = runs[runs["fraction"] == 0.0]
    assert np.allclose(clean["test_accuracy"], clean["clean_test_accuracy"])
    gap = runs["clean_train_accuracy"] - runs["clean_test_accuracy"]
    expected = ((runs["train_accuracy"] - runs["test_accuracy"]) / gap.where(gap != 0)).abs()
    assert np.allclose(runs["i_occlusion"], expected, equal_nan=True)
    summary = t["occlusion_summary"]
    assert {"i_occlusion_mean", "i_occlusion_std", "test_accuracy_mean"} <= set(summary.columns)


def test_index_subsets(finished):
    runs = finished[0]["occlusion"]["occlusion_runs"]
    assert set(runs["subset"]) == {"all", "same", "firsts"}
    columns = ["train_accuracy", "test_accuracy", "clean_train_accuracy", "clean_test_accuracy"]
    every, same = runs[runs["subset"] == "all"], runs[runs["subset"] == "same"]
    assert np.array_equal(every[columns].to_numpy(), same[columns].to_numpy())
    firsts = runs[runs["subset"] == "firsts"]
    assert ((firsts["clean_test_accuracy"] * 10 / 100).round(9) % 1 == 0).all()  # 10 images: multiples of 10 %
    affinity = finished[0]["affinity"]["affinity_runs"]
    a, b = affinity[affinity["subset"] == "all"], affinity[affinity["subset"] == "same"]
    assert np.array_equal(a[["affinity", "clean_accuracy"]].to_numpy(), b[["affinity", "clean_accuracy"]].to_numpy())


def test_affinity_tables(finished):
    runs = finished[0]["affinity"]["affinity_runs"]
    runs = runs[runs["subset"] == "all"]
    assert list(runs["augmentation"]) == ["fmix", "fmix"]
    assert np.allclose(runs["affinity"], runs["augmented_accuracy"] - runs["clean_accuracy"])
    assert (runs["mix_diversity"] > 0).all() and (runs["diversity"] > 0).all()
    # Diversity is the augmented model's final-epoch training loss, from its training history
    artifacts = finished[1] / "artifacts" / "histories"
    finals = [json.loads(p.read_text())["history"][-1] for p in artifacts.glob("*.json")]
    for _, row in runs.iterrows():
        assert any(f["train_loss_majority"] == row["diversity"] and f["train_loss"] == row["mix_diversity"]
                   for f in finals)
        assert row["diversity_ratio"] == pytest.approx(row["diversity"] / row["basic_train_loss"])


def test_interdataset_tables(finished):
    summary = finished[0]["interdataset"]["interdataset_summary"]
    assert list(summary["partner"]) == ["baseline", "synthetic"]
    assert summary["accuracy_mean"].between(0, 100).all()


def test_simplicity_tables(finished):
    summary = finished[0]["simplicity"]["simplicity_summary"]
    assert list(summary["augmentation"]) == ["none", "fmix"] and list(summary["mixed_half"]) == ["", "simple"]
    for column in ("simple_label_accuracy_mean", "complex_label_accuracy_mean", "matched_accuracy_mean"):
        assert summary[column].between(0, 100).all()


def test_cue_conflict_tables(finished):
    runs = finished[0]["cue_conflict"]["cue_conflict_runs"]
    assert (runs["trials"] == 12).all()  # the agreeing image is dropped
    assert (runs["shape_accuracy"] + runs["texture_accuracy"] <= 100 + 1e-9).all()
    biased = runs.dropna(subset=["shape_bias"])
    assert biased["shape_bias"].between(0, 1).all()


def test_paper_layout_tables(finished):
    tables, out, _ = finished
    assert (out / "paper_tables.md").exists()
    written = {p.stem for p in out.glob("paper_table*.csv")}
    assert written == {f"paper_table{n}" for n in (1, 3, 4, 5, 6, 7)}
    di = tables["interference"]["di_summary"].set_index(["augmentation", "distortion"])
    table1 = pd.read_csv(out / "paper_table1.csv")
    assert list(table1.columns) == ["data set", "grid", "basic", "FMix"] and list(table1["data set"]) == ["synthetic"]
    row = di.loc[("none", "grid_shuffle")]
    assert table1["basic"].iloc[0] == f"{row['di_release_mean']:.2f} ± {row['di_release_std']:.2f}"
    table4 = pd.read_csv(out / "paper_table4.csv").set_index("measure")
    occlusion = tables["occlusion"]["occlusion_summary"]
    box = occlusion[(occlusion["masking"] == "box") & (occlusion["occluder"] == "images")
                    & (occlusion["fraction"] == 0.5) & (occlusion["augmentation"] == "fmix")].iloc[0]
    assert table4.loc["CutOcclusion (images, p = 0.5)", "FMix"].startswith(f"{box['test_accuracy_mean']:.2f}")
    assert {"DI index", "iOcclusion (images, p = 0.5)"} <= set(table4.index)
    table5 = pd.read_csv(out / "paper_table5.csv")
    assert list(table5.columns) == ["data set", "model", "Affinity", "Diversity", "MixDiversity"]
    # two results folders of the same data set combine into one table, told apart by folder
    combined = distortion.paper_tables([out, out])["table1"]
    assert len(combined) == 2 and combined["data set"].nunique() == 2


def test_paper_table_cells():
    from auglens.distortion.paper_tables import cell

    assert cell(2.904, 1.1, 5, 5) == "2.90 ± 1.10"
    assert cell(0.82, float("nan"), 1, 1) == "0.82"  # one run (the paper's ImageNet row)
    assert cell(1.0, 0.5, 3, 5) == "1.00 ± 0.50 (n=3)"
    assert cell(float("nan"), float("nan"), 0, 5) == "–"


def test_rerun_resumes_without_training_and_gives_the_same_tables(finished):
    tables, out, path = finished
    checkpoints = out / "artifacts" / "checkpoints"
    before = {p.name: p.stat().st_mtime_ns for p in checkpoints.iterdir()}
    again = distortion.run_from_toml(path, out.parent, analyses=["interference", "affinity"])
    assert {p.name: p.stat().st_mtime_ns for p in checkpoints.iterdir()} == before
    for name in again:
        for table, frame in again[name].items():
            pd.testing.assert_frame_equal(frame, tables[name][table], obj=f"{name}/{table}")


def test_run_analysis_accepts_a_dict_and_rejects_unknown_names(tmp_path):
    with pytest.raises(KeyError, match="Did you mean 'occlusion'"):
        distortion.run_analysis("oclusion", TINY, tmp_path)

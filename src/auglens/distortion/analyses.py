"""The distortion paper's analyses, each over several runs: per-run results, then mean ± std tables.

Each analysis is a function ``Runner -> {table name: DataFrame}`` registered in :data:`ANALYSES`;
:func:`auglens.distortion.run_analysis` runs one and writes its tables and figure. Per-run results are
cached in the artifact store (see :mod:`auglens.distortion.runner`), so reruns resume.

- ``interference``: DI index (Eq. 1) of each model type under grid shuffle and CutOcclusion, the
  worst-case variant, per-class increases, and DI after retraining without c_max (Table 6).
- ``occlusion``: CutOcclusion and iOcclusion (Eq. 2) curves over occluded fractions, per masking and occluder.
- ``affinity``: affinity of each augmentation for the clean-trained reference model, Diversity and
  MixDiversity of the augmentation-trained model (Table 5).
- ``interdataset``: accuracy after mixed-sample training whose partners come from another data set (Table 7).
- ``simplicity``: stacked simple/complex images, accuracy against each half's label on recombined pairs,
  without and with mixing of one half (Section 4.1).
- ``cue_conflict``: shape accuracy, texture accuracy and shape bias on cue-conflict images (Table 2).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pandas as pd
import torch

from auglens.augment import build_augmentation
from auglens.augment import random as rnd
from auglens.augment.base import AugmentedBatch
from auglens.augment.mixed import conform_images, foreign_images
from auglens.data.datasets import ImageSet, load_dataset
from auglens.data.prepared import PreparedData
from auglens.data.split import stratified_split, stratified_subset
from auglens.data.transforms import channel_stats
from auglens.distortion import affinity as aff
from auglens.distortion.cue_conflict import coarse_predictions, load_class_mapping, load_cue_conflict, shape_bias
from auglens.distortion.distortions import (
    cut_occlusion,
    fourier_occlusion_masks,
    grid_shuffle,
    occlude,
    occlusion_fractions,
)
from auglens.distortion.interference import (
    NORMALISATIONS,
    di_index,
    misclassification_increase,
    wrong_prediction_counts,
)
from auglens.distortion.occlusion import i_occlusion, occlusion_masks, saliency_maps
from auglens.distortion.runner import BASELINE, Model, Runner
from auglens.distortion.simplicity import matched_pairs, pick_classes, random_pairs, stacked_set
from auglens.registry import Registry

__all__ = ["ANALYSES", "summarise", "without_class"]

ANALYSES: Registry[Callable[[Runner], dict[str, pd.DataFrame]]] = Registry("distortion analysis")

#: Bump to invalidate cached per-run results when their computation changes.
_RESULT_VERSION = 2
_OCCLUDER_STREAM = 410
_TRAIN_OFFSET = 1 << 40  # training images get keys apart from the test images'


# ---------------------------------------------------------------------------------------------- helpers

def summarise(frame: pd.DataFrame, by: list[str], values: list[str]) -> pd.DataFrame:
    """Mean and sample std (ddof = 1; NaN for one run) of ``values`` per group, NaNs skipped.

    ``runs`` counts the runs with a value of the first (headline) measure, e.g. iOcclusion is undefined for
    a run without generalisation gap.
    """
    grouped = frame.groupby(by, sort=False)
    out = grouped[values].agg(["mean", "std"])
    out.columns = [f"{value}_{stat}" for value, stat in out.columns]
    out["runs"] = grouped[values[0]].count()
    return out.reset_index()


def _floats(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    return images.to(device).float().div_(255.0)


def _accuracy(preds: torch.Tensor, labels: torch.Tensor) -> float:
    return float((preds == labels.cpu()).double().mean())


def _fill(runner: Runner, occluder: str, dataset: str | None, images: torch.Tensor, keys: torch.Tensor,
          data: PreparedData):
    """What occluded pixels become: 0 (black), the training mean colour, or another data set's images."""
    if occluder == "black":
        return 0.0
    if occluder == "mean":
        return data.mean.to(images.device)
    pool = foreign_images(dataset, runner.config.data.root)
    index = rnd.randint(keys, _OCCLUDER_STREAM, len(pool)).cpu()
    _, c, h, w = images.shape
    return conform_images(pool[index], c, h, w).to(images.device).float().div_(255.0)


def _augment(augmentation, images: torch.Tensor, labels: torch.Tensor, keys: torch.Tensor,
             chunk: int) -> AugmentedBatch:
    """Apply a (mixing) augmentation chunk by chunk: partners are drawn within each chunk."""
    parts = [augmentation(images[s : s + chunk], labels[s : s + chunk], keys[s : s + chunk])
             for s in range(0, len(images), chunk)]
    return AugmentedBatch(*(torch.cat([getattr(p, f.name) for p in parts])
                            for f in dataclasses.fields(AugmentedBatch)))


def without_class(data: PreparedData, removed: int) -> PreparedData:
    """The same data without one class; the classes above it move down by one (Table 6's retraining)."""
    def drop(images: ImageSet) -> ImageSet:
        keep = images.labels != removed
        labels = images.labels[keep]
        return ImageSet(images.images[keep], labels - (labels > removed).long(),
                        [name for i, name in enumerate(images.classes) if i != removed])

    train = drop(data.train)
    mean, std = channel_stats(train.images)
    return PreparedData(train, drop(data.validation), drop(data.test), mean, std)


# ---------------------------------------------------------------------------------------------- interference

def _distort(runner: Runner, name: str, images: torch.Tensor, keys: torch.Tensor, data: PreparedData) -> torch.Tensor:
    cfg = runner.config.interference
    if name == "grid_shuffle":
        return grid_shuffle(images, cfg.grid, keys)
    fill = _fill(runner, cfg.occluder, cfg.occluder_dataset, images, keys, data)
    fraction = occlusion_fractions(keys, *cfg.occlusion_beta) if cfg.fraction is None else cfg.fraction
    if name == "fourier_occlusion":
        h, w = images.shape[-2:]
        return occlude(images, fourier_occlusion_masks(fraction, keys, h, w, cfg.decay_power), fill)
    return cut_occlusion(images, keys, fraction, restricted=cfg.restricted, fill=fill)


def _wrong_counts(runner: Runner, model: Model, data: PreparedData, data_key: str, distortion: str) -> dict:
    """Wrong predictions per predicted class on the clean and the distorted test (sub)set of one model."""
    cfg = runner.config.interference
    settings = {"grid": cfg.grid} if distortion == "grid_shuffle" else {
        "beta": cfg.occlusion_beta, "fraction": cfg.fraction, "occluder": cfg.occluder,
        "occluder_dataset": cfg.occluder_dataset,
        **({"decay_power": cfg.decay_power} if distortion == "fourier_occlusion" else {"restricted": cfg.restricted})}

    def compute():
        test = runner.subset(data.test, cfg.max_test_images)
        images = _floats(test.images, runner.device)
        distorted = _distort(runner, distortion, images, runner.keys(model.seed, len(test)), data)
        clean = wrong_prediction_counts(runner.predict(model, images, data), test.labels, data.num_classes)
        wrong = wrong_prediction_counts(runner.predict(model, distorted, data), test.labels, data.num_classes)
        return {"clean_wrong": clean.tolist(), "distorted_wrong": wrong.tolist(), "test_images": len(test)}

    return runner.cached("distortion-interference", {
        "v": _RESULT_VERSION, "model": model.key, "data": data_key, "max_test": cfg.max_test_images,
        "distortion": distortion, "settings": settings, "distortion_seed": runner.config.runs.distortion_seed,
    }, compute)


def _di_tables(wrong: pd.DataFrame, by: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-run DI in both normalisations (own weight and worst case) and mean ± std per group."""
    runs = []
    for group_values, group in wrong.groupby(by, sort=False):
        clean = group.pivot(index="seed", columns="class", values="clean_wrong")
        distorted = group.pivot(index="seed", columns="class", values="distorted_wrong").loc[clean.index, clean.columns]
        test_images = int(group["test_images"].iloc[0])
        names = group.drop_duplicates("class").set_index("class")["class_name"]
        row_parts: list[dict] = [{**dict(zip(by, group_values)), "seed": seed} for seed in clean.index]
        for normalisation in NORMALISATIONS:
            counts = (torch.tensor(clean.to_numpy()), torch.tensor(distorted.to_numpy()), test_images, normalisation)
            result, worst = di_index(*counts), di_index(*counts, worst=True)
            c_max = int(clean.columns[result.c_max])
            for i, part in enumerate(row_parts):
                part.update({f"c_max_{normalisation}": c_max, f"c_max_{normalisation}_name": names[c_max],
                             f"di_{normalisation}": float(result.per_run[i]),
                             f"di_{normalisation}_worst": float(worst.per_run[i])})
        runs += row_parts
    runs = pd.DataFrame(runs)
    c_max = [f"c_max_{n}{suffix}" for n in NORMALISATIONS for suffix in ("", "_name")]
    summary = summarise(runs, [*by, *c_max], [f"di_{n}{s}" for n in NORMALISATIONS for s in ("", "_worst")])
    return runs, summary


def _count_rows(model: Model, distortion: str, counts: dict, class_ids: list[int], class_names: list[str],
                trained_without: str) -> list[dict]:
    return [{"augmentation": model.label, "trained_without": trained_without, "distortion": distortion,
             "seed": model.seed, "class": class_ids[k], "class_name": class_names[class_ids[k]],
             "clean_wrong": clean, "distorted_wrong": wrong, "test_images": counts["test_images"]}
            for k, (clean, wrong) in enumerate(zip(counts["clean_wrong"], counts["distorted_wrong"]))]


def _increases(wrong: pd.DataFrame) -> pd.DataFrame:
    """Signed per-class increases of every run in both normalisations, from the wrong-prediction counts."""
    keys = ["augmentation", "trained_without", "distortion", "seed"]
    parts = []
    for _, group in wrong.groupby(keys, sort=False):
        clean, distorted = torch.tensor(group["clean_wrong"].to_numpy()), torch.tensor(group["distorted_wrong"].to_numpy())
        part = group[[*keys, "class", "class_name"]].copy()
        for normalisation in NORMALISATIONS:
            part[f"increase_{normalisation}"] = misclassification_increase(
                clean, distorted, int(group["test_images"].iloc[0]), normalisation).numpy()
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


@ANALYSES.register("interference")
def interference(runner: Runner) -> dict[str, pd.DataFrame]:
    """DI index per model type and distortion (Eq. 1), worst case, class removal (Table 6)."""
    cfg = runner.config.interference
    data, data_key = runner.data()
    everything = list(range(data.num_classes))
    rows = []
    for model in runner.models(data, data_key):
        for distortion in cfg.distortions:
            counts = _wrong_counts(runner, model, data, data_key, distortion)
            rows += _count_rows(model, distortion, counts, everything, data.classes, "")
    wrong = pd.DataFrame(rows)
    di_runs, di_summary = _di_tables(wrong, ["augmentation", "distortion"])
    tables = {"wrong_predictions": wrong, "di_runs": di_runs, "di_summary": di_summary}
    if cfg.class_removal:
        # Table 6: retrain each model type without its c_max under the removal distortion, measure again.
        distortion = cfg.removal_distortion or cfg.distortions[0]
        removal_rows = []
        chosen = di_summary[di_summary["distortion"] == distortion]
        params = {a.name: a.params for a in runner.config.augmentations} | {BASELINE: {}}
        for label, removed in zip(chosen["augmentation"], chosen[f"c_max_{cfg.normalisation}"]):
            removed = int(removed)
            reduced, reduced_key = runner.custom_data({"data": data_key, "without": removed},
                                                      lambda removed=removed: without_class(data, removed))
            original = [k for k in everything if k != removed]
            for seed in runner.config.runs.seeds:
                model = runner.model(runner.train_spec(label, params[label], seed), reduced, reduced_key)
                counts = _wrong_counts(runner, model, reduced, reduced_key, distortion)
                removal_rows += _count_rows(model, distortion, counts, original, data.classes, data.classes[removed])
        removal = pd.DataFrame(removal_rows)
        removal_runs, removal_summary = _di_tables(removal, ["augmentation", "trained_without", "distortion"])
        tables["wrong_predictions"] = wrong = pd.concat([wrong, removal], ignore_index=True)
        tables["class_removal_runs"] = removal_runs
        tables["class_removal_summary"] = removal_summary
    tables["increases"] = _increases(wrong)
    return tables


# ---------------------------------------------------------------------------------------------- occlusion

def _occlusion_rows(runner: Runner, model: Model, data: PreparedData, data_key: str,
                    maskings: list[str]) -> list[dict]:
    cfg = runner.config.occlusion

    def accuracies(images_set: ImageSet, offset: int) -> dict:
        images = _floats(images_set.images, runner.device)
        keys = runner.keys(model.seed, len(images), offset)
        h, w = images.shape[-2:]
        out = {"clean": _accuracy(runner.predict(model, images, data), images_set.labels)}
        saliency = None
        if "saliency" in maskings:
            layer = cfg.target_layer or getattr(model.network, "auglens_occlusion_layer", None)
            saliency = saliency_maps(model.network, images, *runner.stats(model, data), model.spec.input_size,
                                     cfg.cam_method, layer, model.spec.eval_batch_size)
        for occluder in cfg.occluders:
            fill = _fill(runner, occluder, cfg.occluder_dataset, images, keys, data)
            for masking in maskings:
                for p in cfg.fractions:
                    masks = occlusion_masks(masking, p, keys, h, w, saliency, cfg.order, cfg.decay_power,
                                            cfg.fourier_fraction)
                    preds = runner.predict(model, occlude(images, masks, fill), data)
                    out[f"{occluder}/{masking}/{p}"] = _accuracy(preds, images_set.labels)
        return out

    def compute():
        train = accuracies(runner.subset(data.train, cfg.max_train_images), _TRAIN_OFFSET)
        test = accuracies(runner.subset(data.test, cfg.max_test_images), 0)
        rows = []
        for occluder in cfg.occluders:
            for masking in maskings:
                for p in cfg.fractions:
                    name = f"{occluder}/{masking}/{p}"
                    rows.append({"occluder": occluder, "masking": masking, "fraction": p,
                                 "train_accuracy": 100 * train[name], "test_accuracy": 100 * test[name],
                                 "clean_train_accuracy": 100 * train["clean"],
                                 "clean_test_accuracy": 100 * test["clean"]})
        return rows

    settings = {k: v for k, v in dataclasses.asdict(cfg).items()} | {"maskings": maskings}
    rows = runner.cached("distortion-occlusion", {"v": _RESULT_VERSION, "model": model.key, "data": data_key,
                                                  "settings": settings,
                                                  "distortion_seed": runner.config.runs.distortion_seed}, compute)
    for row in rows:
        row.update(augmentation=model.label, seed=model.seed,
                   i_occlusion=float(i_occlusion(row["train_accuracy"], row["test_accuracy"],
                                                 row["clean_train_accuracy"], row["clean_test_accuracy"])))
    return rows


@ANALYSES.register("occlusion")
def occlusion(runner: Runner) -> dict[str, pd.DataFrame]:
    """CutOcclusion (test accuracy under in-bounds boxes) and iOcclusion (Eq. 2) over occluded fractions."""
    cfg = runner.config.occlusion
    data, data_key = runner.data()
    maskings = list(cfg.maskings) + ([] if "box" in cfg.maskings else ["box"])
    rows = [row for model in runner.models(data, data_key)
            for row in _occlusion_rows(runner, model, data, data_key, maskings)]
    columns = ["augmentation", "seed", "occluder", "masking", "fraction", "train_accuracy", "test_accuracy",
               "clean_train_accuracy", "clean_test_accuracy", "i_occlusion"]
    runs = pd.DataFrame(rows)[columns]
    summary = summarise(runs, ["augmentation", "occluder", "masking", "fraction"],
                        ["i_occlusion", "test_accuracy", "train_accuracy"])
    return {"occlusion_runs": runs, "occlusion_summary": summary}


# ---------------------------------------------------------------------------------------------- affinity

@ANALYSES.register("affinity")
def affinity(runner: Runner) -> dict[str, pd.DataFrame]:
    """Affinity (reference model, augmented vs clean test data) and Diversity / MixDiversity (Table 5).

    Diversity and MixDiversity are read from the training history: the final epoch's mean training loss of
    the augmented model against the majority label, and its λ-weighted objective; ``*_ratio`` divides them
    by the basic model's final training loss of the same run.
    """
    cfg = runner.config.affinity
    data, data_key = runner.data()
    rows = []
    for aug in runner.config.augmentations:
        augmentation = build_augmentation(aug.name, **aug.params)
        for seed in runner.config.runs.seeds:
            reference = runner.model(runner.train_spec(BASELINE, {}, seed), data, data_key)
            model = runner.model(runner.train_spec(aug.name, aug.params, seed), data, data_key)

            def compute(reference=reference, model=model, augmentation=augmentation):
                test = runner.subset(data.test, cfg.max_test_images)
                images = _floats(test.images, runner.device)
                labels = test.labels.to(runner.device)
                augmented = _augment(augmentation, images, labels, runner.keys(model.seed, len(test)),
                                     model.spec.eval_batch_size)
                clean = _accuracy(runner.predict(reference, images, data), test.labels)
                shifted = _accuracy(runner.predict(reference, augmented.images, data), aff.majority_labels(augmented))
                return {"clean_accuracy": 100 * clean, "augmented_accuracy": 100 * shifted}

            row = runner.cached("distortion-affinity", {
                "v": _RESULT_VERSION, "reference": reference.key, "model": model.key, "data": data_key,
                "max_test": cfg.max_test_images, "distortion_seed": runner.config.runs.distortion_seed}, compute)
            final, basic = runner.history(model)[-1], runner.history(reference)[-1]
            rows.append({"augmentation": aug.name, "seed": seed, **row,
                         "affinity": float(aff.affinity(row["augmented_accuracy"], row["clean_accuracy"], cfg.kind)),
                         "diversity": final["train_loss_majority"], "mix_diversity": final["train_loss"],
                         "basic_train_loss": basic["train_loss"],
                         "diversity_ratio": final["train_loss_majority"] / basic["train_loss"],
                         "mix_diversity_ratio": final["train_loss"] / basic["train_loss"]})
    runs = pd.DataFrame(rows)
    summary = summarise(runs, ["augmentation"], ["affinity", "diversity", "mix_diversity", "diversity_ratio",
                                                 "mix_diversity_ratio", "augmented_accuracy", "clean_accuracy"])
    summary.insert(1, "affinity_kind", cfg.kind)
    return {"affinity_runs": runs, "affinity_summary": summary}


# ---------------------------------------------------------------------------------------------- inter-dataset

@ANALYSES.register("interdataset")
def interdataset(runner: Runner) -> dict[str, pd.DataFrame]:
    """Test accuracy of reformulated MSDA with partners from the same (``baseline``) or another data set (Table 7)."""
    cfg = runner.config.interdataset
    data, data_key = runner.data()
    root = cfg.partner_root or runner.config.data.root
    rows = []
    for name in cfg.augmentations:
        for partner in ["baseline", *cfg.partners]:
            params = {"alpha": cfg.alpha, "objective": "reformulated"}
            if partner != "baseline":
                params |= {"partner_dataset": partner, "partner_root": root}
            for seed in runner.config.runs.seeds:
                model = runner.model(runner.train_spec(name, params, seed), data, data_key)
                accuracy = runner.cached("distortion-accuracy", {"v": _RESULT_VERSION, "model": model.key,
                                                                 "data": data_key},
                                         lambda model=model: 100 * _accuracy(runner.predict(model, data.test.images, data),
                                                                             data.test.labels))
                rows.append({"augmentation": name, "partner": partner, "seed": seed, "accuracy": accuracy})
    runs = pd.DataFrame(rows)
    return {"interdataset_runs": runs, "interdataset_summary": summarise(runs, ["augmentation", "partner"], ["accuracy"])}


# ---------------------------------------------------------------------------------------------- simplicity

def _stacked_data(runner: Runner) -> tuple[PreparedData, ImageSet, torch.Tensor]:
    """(class-matched stacked data for training/validation/test, randomly recombined test set, its simple labels)."""
    cfg, split = runner.config.simplicity, runner.config.split
    simple = load_dataset(cfg.simple, cfg.simple_root or runner.config.data.root, runner.config.data.download)
    complex_ = load_dataset(cfg.complex, cfg.complex_root or runner.config.data.root, runner.config.data.download)
    simple = {k: pick_classes(v, cfg.simple_classes) for k, v in simple.items()}
    complex_ = {k: pick_classes(v, cfg.complex_classes) for k, v in complex_.items()}
    if simple["train"].num_classes != complex_["train"].num_classes:
        raise ValueError(f"simplicity: {cfg.simple} has {simple['train'].num_classes} classes and {cfg.complex} "
                         f"{complex_['train'].num_classes}; pick the same number with simple_classes/complex_classes")
    full = complex_["train"].subset(stratified_subset(complex_["train"].labels, cfg.train_subset, 0))
    test = complex_["test"].subset(stratified_subset(complex_["test"].labels, cfg.test_subset, 0))
    train_idx, val_idx = stratified_split(full.labels, split.validation_fraction, split.seed)
    sets = []
    for i, part in enumerate((full.subset(train_idx), full.subset(val_idx), test)):
        pairs = matched_pairs(simple["train" if i < 2 else "test"].labels, part.labels, cfg.pairing_seed + i)
        sets.append(stacked_set(simple["train" if i < 2 else "test"], part, pairs)[0])
    mean, std = channel_stats(sets[0].images)
    recombined, simple_labels = stacked_set(simple["test"], test,
                                            random_pairs(len(test), len(simple["test"]), cfg.pairing_seed + 3))
    return PreparedData(sets[0], sets[1], sets[2], mean, std), recombined, simple_labels


@ANALYSES.register("simplicity")
def simplicity(runner: Runner) -> dict[str, pd.DataFrame]:
    """Accuracy against the simple and the complex half's label on randomly recombined stacked pairs."""
    cfg = runner.config.simplicity
    key_obj = {"simplicity": {k: v for k, v in dataclasses.asdict(cfg).items()
                              if k not in ("augmentations", "half", "alpha", "objective")},
               "split": dataclasses.asdict(runner.config.split), "root": runner.config.data.root}
    (data, recombined, simple_labels), data_key = runner.custom_data(key_obj, lambda: _stacked_data(runner))
    region = "top" if cfg.half == "simple" else "bottom"
    trained = [(BASELINE, {})] + [(name, {"alpha": cfg.alpha, "region": region, "objective": cfg.objective})
                                  for name in cfg.augmentations]
    rows = []
    for name, params in trained:
        for seed in runner.config.runs.seeds:
            # Stacked images are not square: models see them at their own size.
            model = runner.model(runner.train_spec(name, params, seed, input_size=None), data, data_key)

            def compute(model=model):
                preds = runner.predict(model, recombined.images, data)
                matched = runner.predict(model, data.test.images, data)
                return {"simple_label_accuracy": 100 * _accuracy(preds, simple_labels),
                        "complex_label_accuracy": 100 * _accuracy(preds, recombined.labels),
                        "matched_accuracy": 100 * _accuracy(matched, data.test.labels)}

            row = runner.cached("distortion-simplicity", {"v": _RESULT_VERSION, "model": model.key, "data": data_key},
                                compute)
            rows.append({"augmentation": name, "mixed_half": "" if name == BASELINE else cfg.half, "seed": seed, **row})
    runs = pd.DataFrame(rows)
    summary = summarise(runs, ["augmentation", "mixed_half"],
                        ["simple_label_accuracy", "complex_label_accuracy", "matched_accuracy"])
    return {"simplicity_runs": runs, "simplicity_summary": summary}


# ---------------------------------------------------------------------------------------------- cue conflict

@ANALYSES.register("cue_conflict")
def cue_conflict(runner: Runner) -> dict[str, pd.DataFrame]:
    """Shape accuracy, texture accuracy and shape bias of every model on a folder of cue-conflict images."""
    cfg = runner.config.cue_conflict
    if runner.config.model.pretrained:  # an ImageNet model: no data set needed, its own classes and input size
        from auglens.models.pretrained import pretrained_classes

        data, models = None, [runner.pretrained()]
        classes = pretrained_classes(runner.config.model.architecture)
        c, h, w = 3, models[0].spec.input_size, models[0].spec.input_size
    else:
        data, data_key = runner.data()
        models, classes = runner.models(data, data_key), data.classes
        _, c, h, w = data.test.images.shape
    mapping = load_class_mapping(cfg.class_mapping, classes) if cfg.class_mapping else None
    cue = load_cue_conflict(cfg.folder, list(mapping) if mapping else classes, c, h, w, cfg.class_map)
    rows = []
    for model in models:
        if mapping:
            probabilities = torch.softmax(runner.logits(model, cue.images, data).double(), dim=1).cpu()
            preds = coarse_predictions(probabilities, list(mapping.values()))
        else:
            preds = runner.predict(model, cue.images, data)
        rows.append({"augmentation": model.label, "seed": model.seed, **shape_bias(preds, cue.shape, cue.texture)})
    runs = pd.DataFrame(rows)
    for column in ("shape_accuracy", "texture_accuracy"):
        runs[column] = 100 * runs[column]
    summary = summarise(runs, ["augmentation"], ["shape_accuracy", "texture_accuracy", "shape_bias"])
    return {"cue_conflict_runs": runs, "cue_conflict_summary": summary}


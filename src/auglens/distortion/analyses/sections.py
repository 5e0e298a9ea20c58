"""The config sections of the distortion analyses: one dataclass per analysis, its ``[<name>]`` TOML table.

Each analysis registers its section with its function (:mod:`auglens.distortion.analyses.registry`), and
:class:`~auglens.distortion.config.DistortionConfig` holds one field per section. They live here, apart from
the analyses' code, so the config reads them without importing what the analyses run on (models, training).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from auglens.config import config_field

__all__ = ["AffinityConfig", "CueConflictConfig", "InterDatasetConfig", "InterferenceConfig", "Occluder",
           "OcclusionConfig", "SimplicityConfig"]

#: Fills of an occluded region: black, the data set's mean colour, or images of another data set.
Occluder = Literal["black", "mean", "images"]


@dataclass
class InterferenceConfig:
    """``[interference]``: the DI index under test-time distortions, and after class removal (:mod:`.interference`)."""

    distortions: list[Literal["grid_shuffle", "cut_occlusion", "fourier_occlusion"]] = config_field(
        ["grid_shuffle", "cut_occlusion"], "test-time distortions whose DI index is measured (fourier_occlusion: an "
        "FMix-shaped occluder, Appendix B.4)", min_len=1)
    grid: int = config_field(4, "grid shuffle: tiles per side (the paper: 2 Fashion-MNIST, 4 CIFAR, 8 ImageNet)", min=1)
    occlusion_beta: tuple[float, float] = config_field((2.0, 1.0), "CutOcclusion: occluded fraction ~ Beta(a, b)", min=0.0,
                                                 exclusive_min=True)
    fraction: float | None = config_field(
        None, "occluded fraction of every image (None: drawn per image from occlusion_beta, the paper's Tables 1, 3; "
        "Table 4: 0.3)", min=0.0, max=0.99)
    decay_power: float = config_field(3.0, "fourier_occlusion: spectrum decay power of the FMix-shaped occluder",
                                      min=0.0, exclusive_min=True)
    restricted: bool = config_field(False, "CutOcclusion: keep the box inside the image (False: the paper's DI setting)")
    occluder: Occluder = config_field("black", "CutOcclusion fill: black, the data set's mean colour, or images of occluder_dataset")
    occluder_dataset: str | None = config_field(None, "data set whose images fill the boxes when occluder = 'images'")
    normalisation: Literal["release", "paper"] = config_field(
        "release", "DI's increase: shares of the wrong predictions x K/100, weighted by the mean over runs (the "
        "authors' release, which produced the paper's tables) or percent of the test images, each run's own weight "
        "(Eq. 1 read literally); both are written, this one picks c_max for class removal and the figure")
    class_removal: bool = config_field(True, "retrain without one class and measure DI again (Table 6)")
    removed_class: str = config_field(
        "auto", "class removed for class_removal: auto (one class for every model type, the basic model's c_max under "
        "removal_distortion: the paper's reading, which removes Truck from CIFAR-10 for all models), a class name "
        "of the data set (one class for every model type), or per_model (each model type without its own c_max)")
    removal_distortion: str | None = config_field(None, "distortion whose c_max is removed (None: the first listed)")
    max_test_images: int | None = config_field(None, "stratified subset of the test set (None: all)", min=1)


@dataclass
class OcclusionConfig:
    """``[occlusion]``: CutOcclusion and iOcclusion curves over occluded fractions (:mod:`.occlusion`)."""

    fractions: list[float] = config_field([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
                                    "occluded fractions p of each image", min_len=1, min=0.0, max=0.99)
    maskings: list[Literal["saliency", "box", "fourier"]] = config_field(
        ["saliency", "box", "fourier"], "iOcclusion masks: most salient pixels, an in-bounds box, an FMix mask "
        "(box is always computed: it is CutOcclusion)", min_len=1)
    occluders: list[Occluder] = config_field(["black"], "fills: black (uniform), mean colour, or images (non-uniform)",
                                       min_len=1)
    occluder_dataset: str | None = config_field(None, "data set whose images are pasted when 'images' is an occluder")
    cam_method: str = config_field("gradcam", "CAM method of the saliency masks (auglens ls cams)")
    target_layer: str | None = config_field(
        None, "CAM target layer of the saliency masks (None: the architecture's occlusion layer where it declares one — "
        "layer3 for preact_resnet18, the authors' choice — else its CAM target layer)")
    order: Literal["most", "least", "coin"] = config_field(
        "most", "saliency masks occlude the most salient pixels (paper), the least, or either (release)")
    decay_power: float = config_field(3.0, "Fourier masks: spectrum decay power", min=0.0, exclusive_min=True)
    fourier_fraction: Literal["exact", "release"] = config_field(
        "exact", "Fourier masks occlude exactly p (the paper) or a share ~ Beta(p, p) per image (the authors' release, "
        "which passes p to FMix as alpha)")
    table_fraction: float = config_field(0.3, "occluded fraction reported in the paper-layout Table 4 (when it is one "
                                         "of the fractions)", min=0.0, max=0.99)
    subsets: dict[str, str] = config_field(
        {}, "named subsets (e.g. typical and tail images, Figure 4): name -> JSON file {\"train\": [indices], "
        "\"test\": [indices]} into the prepared training and test sets; measured beside all images")
    max_train_images: int | None = config_field(2000, 'stratified subset of the training set ("none": all)', min=1)
    max_test_images: int | None = config_field(2000, 'stratified subset of the test set ("none": all)', min=1)


@dataclass
class AffinityConfig:
    """``[affinity]``: affinity, Diversity and MixDiversity of each augmentation (:mod:`.affinity`)."""

    kind: Literal["difference", "ratio"] = config_field("difference", "affinity as A(aug) - A(clean) (paper) or A(aug) / A(clean)")
    subsets: dict[str, str] = config_field(
        {}, "named test subsets (e.g. typical and tail images): name -> JSON file {\"test\": [indices]} into the "
        "prepared test set; affinity is measured on each beside all images")
    max_test_images: int | None = config_field(None, "stratified test subset for affinity (None: all)", min=1)


@dataclass
class InterDatasetConfig:
    """``[interdataset]``: mixed-sample training with partners from other data sets (:mod:`.interdataset`)."""

    partners: list[str] = config_field(["cifar100"], "data sets whose images are mixed in, labels ignored", min_len=1)
    partner_root: str | None = config_field(None, "folder of the partner data sets (default: as data.root)")
    augmentations: list[str] = config_field(["mixup", "fmix", "boxmix"],
                                      "mixed-sample augmentations, run with the reformulated objective", min_len=1)
    alpha: float = config_field(1.0, "lambda ~ Beta(alpha + 1, alpha)", min=0.0, exclusive_min=True)


@dataclass
class SimplicityConfig:
    """``[simplicity]``: stacked simple/complex images, one half mixed (:mod:`.simplicity`)."""

    simple: str = config_field("mnist", "data set stacked on top (the paper: MNIST)")
    simple_classes: list[int] | None = config_field(None, "class indices of the simple set, in pairing order (None: all)")
    complex: str = config_field("cifar10", "data set below (the paper: CIFAR-10); its label is the training label")
    complex_classes: list[int] | None = config_field(None, "class indices of the complex set (None: all)")
    simple_root: str | None = config_field(None, "folder of the simple data set (default: as data.root)")
    complex_root: str | None = config_field(None, "folder of the complex data set (default: as data.root)")
    train_subset: int | None = config_field(None, "stratified subset of the complex training set (None: all)", min=10)
    test_subset: int | None = config_field(None, "stratified subset of the complex test set (None: all)", min=1)
    augmentations: list[str] = config_field(["fmix"], "mixed-sample augmentations applied to one half", min_len=1)
    half: Literal["simple", "complex"] = config_field("simple", "the half that is mixed (the paper: the simple one)")
    objective: Literal["mixed", "reformulated"] = config_field(
        "reformulated", "loss of the mixed half: reformulated (first label only, as the release's *_simplicity "
        "trainers) or mixed (both labels; the mixed half then carries the mixing and becomes the informative one)")
    alpha: float = config_field(1.0, "lambda ~ Beta(alpha + 1, alpha) (reformulated) or Beta(alpha, alpha) (mixed)",
                          min=0.0, exclusive_min=True)
    pairing_seed: int = config_field(0, "seed of the class-matched training pairs and the random test pairs")


@dataclass
class CueConflictConfig:
    """``[cue_conflict]``: shape bias on cue-conflict images (:mod:`.cue_conflict`)."""

    folder: str | None = config_field(None, "folder of cue-conflict images named <shape><n>-<texture><n>.png "
                                      "(or .jpg, .jpeg, .bmp; subfolders are searched too)")
    class_map: dict[str, str] = config_field({}, "file-name class -> model class, where they differ")
    class_mapping: str | None = config_field(
        None, "JSON file {cue class: [model class names or indices]}: many model classes make one cue class (e.g. the "
        "16 coarse classes from ImageNet's 1,000); decisions by the mean probability of each cue class's members")

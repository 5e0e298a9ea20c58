"""Image classification data sets as in-memory uint8 tensors.

Every loader returns the same thing, an :class:`ImageSet` per split (``train``/``test``) holding
``images`` (N, C, H, W) uint8 and ``labels`` (N,) int64. Keeping the raw bytes (rather than float tensors)
costs 4x less memory, lets small data sets live on the GPU whole, and makes the augmentations operate on
exactly the pixels a user would see.

Sources:
- ``fashion_mnist``: idx files (gzipped or not) under ``root`` (or torchvision's ``root/FashionMNIST/raw``),
  else Debian's ``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist``), else torchvision's
  downloader into ``root``. Debian's copy stands in only when no root is given: an explicit ``root`` without
  the files is refused (when it does not exist, or downloads are off), or downloaded into.
- ``mnist``, ``cifar10``, ``cifar100``: torchvision's own classes (downloaded into ``root`` when absent and
  ``download`` is true) — we read their in-memory arrays, so the on-disk formats are torchvision's.
- ``image_folder``: ``root/train/<class>/<image>`` and ``root/test/<class>/<image>`` trees (torchvision's
  ImageFolder layout, one per split); images are resized
  (aspect ratio kept, centre crop) to ``image_size`` at load time so they stack into one tensor. Object
  masks, when present, come from a parallel tree ``root/masks/<split>/<class>/<image stem>.<any image
  extension>`` (any non-zero pixel is object).
- ``oxford_iiit_pet``: torchvision's ``OxfordIIITPet`` (37 breeds; ``trainval`` -> train, ``test`` -> test)
  with its segmentation trimaps as masks: pet and its boundary band (trimap values 1 and 3) are object,
  background (2) is not. Its images differ in size: set ``image_size`` (resized like ``image_folder``).

Masks (``ImageSet.masks``, (N, H, W) bool, aligned with the images) feed the ground-truth localisation
metrics (:mod:`auglens.metrics.localisation`); masks and images go through the same resize and crop.

:func:`locate_dataset` says, without loading anything, which files a loader would read (or that they are
absent and where they would be downloaded from): the checks before a run and the manifest's provenance use it.
"""

from __future__ import annotations

import gzip
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from auglens.registry import Registry

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]


@dataclass
class ImageSet:
    """One split of a data set: ``images`` (N, C, H, W) uint8, ``labels`` (N,) int64, and optionally
    ``masks`` (N, H, W) bool object masks aligned with the images (None when the data set has none)."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    masks: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(f"images must be (N, C, H, W) uint8, got {tuple(self.images.shape)} {self.images.dtype}")
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(f"labels must be ({self.images.shape[0]},), got {tuple(self.labels.shape)}")
        self.labels = self.labels.to(torch.int64)
        if self.masks is not None:
            expected = (self.images.shape[0], *self.images.shape[2:])
            if tuple(self.masks.shape) != expected:
                raise ValueError(f"masks must be (N, H, W) = {expected} like the images, got {tuple(self.masks.shape)}")
            self.masks = self.masks.to(torch.bool)

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def subset(self, indices: torch.Tensor) -> "ImageSet":
        masks = None if self.masks is None else self.masks[indices]
        return ImageSet(self.images[indices], self.labels[indices], self.classes, masks)


DATASETS: Registry[dict[str, ImageSet]] = Registry("dataset")

#: Data sets whose images always come with object masks (``image_folder`` has them when its masks/ tree exists).
DATASETS_WITH_MASKS: tuple[str, ...] = ("oxford_iiit_pet", "synthetic")


def has_masks(name: str, root: str | os.PathLike | None) -> bool:
    """Whether data set ``name`` (at ``root``) comes with object masks, without loading it."""
    if name == "image_folder":
        return root is not None and (Path(root) / "masks").is_dir()
    return name in DATASETS_WITH_MASKS


def load_dataset(name: str, root: str | os.PathLike | None = None, download: bool = True,
                 image_size: int | None = None) -> dict[str, ImageSet]:
    """Load ``{"train": ImageSet, "test": ImageSet}`` for a registered data set name."""
    factory = DATASETS.get(name)
    root = Path(root) if root is not None else default_root()
    kwargs = {"root": root, "download": download}
    if "image_size" in DATASETS.parameters(name):
        kwargs["image_size"] = image_size
    return factory(**kwargs)


def default_root() -> Path:
    """Where downloaders put data when the config names no root: ``$AUGLENS_DATA`` or ``~/.cache/auglens/data``."""
    return Path(os.environ.get("AUGLENS_DATA", Path.home() / ".cache" / "auglens" / "data"))


# ---------------------------------------------------------------------------------------------- locating

@dataclass(frozen=True)
class DataSource:
    """Where a data set's files are, found without loading them.

    Attributes:
        name: data set registry name.
        folder: the folder the files are read from (or would be downloaded into); None for generated data.
        files: the files the loader reads, when all are present; empty when absent (or generated).
        found: whether the loader can read the data set now without a download.
        download_urls: where torchvision downloads it from when absent (empty: cannot be downloaded).
        problem: when not found, what is missing, in words.
        num_classes, in_channels, image_side: the data set's shape where known without loading (None: unknown;
            ``image_side`` is the native side, before ``data.image_size``).
    """

    name: str
    folder: Path | None
    files: tuple[Path, ...] = ()
    found: bool = True
    download_urls: tuple[str, ...] = ()
    problem: str = ""
    num_classes: int | None = None
    in_channels: int | None = None
    image_side: int | None = None

    @property
    def description(self) -> str:
        if self.folder is None:
            return "generated in memory (no files)"
        if not self.found:
            return f"{self.folder} (absent: {self.problem})"
        return f"{self.folder} ({len(self.files)} file(s))"


_LOCATORS: dict[str, Callable[[Path], DataSource]] = {}


def _locator(name: str):
    def decorator(function: Callable[[Path], DataSource]) -> Callable[[Path], DataSource]:
        _LOCATORS[name] = function
        return function

    return decorator


def locate_dataset(name: str, root: str | os.PathLike | None = None) -> DataSource | None:
    """The files ``load_dataset(name, root)`` would read, or why they are absent; None for data sets registered
    without a locator (a user's own), about which nothing is known before loading."""
    if name not in _LOCATORS:
        return None
    return _LOCATORS[name](Path(root) if root is not None else default_root())


_IDX_STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _idx_files(directory: Path) -> list[Path] | None:
    found = [_find_idx(directory, stem) for stem in _IDX_STEMS]
    return None if any(p is None for p in found) else found


def _explicit(root: Path) -> bool:
    """Whether ``root`` was given (``data.root``) rather than the default download folder it stands for."""
    return Path(root) != default_root()


def _fashion_mnist_directories(root: Path) -> list[Path]:
    """Search order: the given root (or torchvision's layout under it), then, when no root was given, Debian's
    package."""
    return [root, root / "FashionMNIST" / "raw", *([] if _explicit(root) else [DEBIAN_FASHION_MNIST])]


def _explicit_root_problem(root: Path) -> str:
    """Why an explicit Fashion-MNIST root without its files is refused; names Debian's copy when installed."""
    problem = f"data.root = {str(root)!r} holds no Fashion-MNIST idx files (looked in it and in {root / 'FashionMNIST' / 'raw'})"
    if not root.exists():
        problem = f"data.root = {str(root)!r} does not exist"
    if DEBIAN_FASHION_MNIST.is_dir() and _idx_files(DEBIAN_FASHION_MNIST) is not None:
        problem += f"; Debian's copy is installed at {DEBIAN_FASHION_MNIST}: leave data.root unset to use it"
    return problem


def _urls(dataset_cls) -> tuple[str, ...]:
    if hasattr(dataset_cls, "mirrors"):
        return tuple(dataset_cls.mirrors)
    return (dataset_cls.url,)


@_locator("fashion_mnist")
def _locate_fashion_mnist(root: Path) -> DataSource:
    for directory in _fashion_mnist_directories(root):
        files = _idx_files(directory) if directory.is_dir() else None
        if files is not None:
            return DataSource("fashion_mnist", directory, tuple(files), num_classes=10, in_channels=1, image_side=28)
    if _explicit(root) and not root.is_dir():  # a folder that does not exist: no download into a mistyped path
        return DataSource("fashion_mnist", root, found=False, problem=_explicit_root_problem(root),
                          num_classes=10, in_channels=1, image_side=28)
    # Imported only here, for its download addresses: torchvision takes seconds to import.
    from torchvision.datasets import FashionMNIST

    return DataSource("fashion_mnist", root / "FashionMNIST" / "raw", found=False, download_urls=_urls(FashionMNIST),
                      problem=f"no idx files under {root}, {root / 'FashionMNIST' / 'raw'} or {DEBIAN_FASHION_MNIST}",
                      num_classes=10, in_channels=1, image_side=28)


@_locator("mnist")
def _locate_mnist(root: Path) -> DataSource:
    from torchvision.datasets import MNIST

    folder = root / "MNIST" / "raw"
    files = [folder / stem for stem in _IDX_STEMS]  # torchvision reads the unzipped files
    missing = [f.name for f in files if not f.is_file()]
    return DataSource("mnist", folder, () if missing else tuple(files), not missing, _urls(MNIST),
                      f"missing {', '.join(missing)}" if missing else "", 10, 1, 28)


def _locate_cifar(name: str, dataset_cls, num_classes: int, root: Path) -> DataSource:
    folder = root / dataset_cls.base_folder
    names = [entry[0] for entry in (*dataset_cls.train_list, *dataset_cls.test_list)] + [dataset_cls.meta["filename"]]
    files = [folder / n for n in names]
    missing = [f.name for f in files if not f.is_file()]
    return DataSource(name, folder, () if missing else tuple(files), not missing, _urls(dataset_cls),
                      f"missing {', '.join(missing)}" if missing else "", num_classes, 3, 32)


@_locator("cifar10")
def _locate_cifar10(root: Path) -> DataSource:
    from torchvision.datasets import CIFAR10

    return _locate_cifar("cifar10", CIFAR10, 10, root)


@_locator("cifar100")
def _locate_cifar100(root: Path) -> DataSource:
    from torchvision.datasets import CIFAR100

    return _locate_cifar("cifar100", CIFAR100, 100, root)


@_locator("image_folder")
def _locate_image_folder(root: Path) -> DataSource:
    from torchvision.datasets.folder import IMG_EXTENSIONS

    files, classes, problems = [], {}, []
    for split in ("train", "test"):
        folder = root / split
        if not folder.is_dir():
            problems.append(f"{folder} is missing")
            continue
        classes[split] = sorted(p.name for p in folder.iterdir() if p.is_dir())
        images = sorted(p for c in classes[split] for p in (folder / c).rglob("*")
                        if p.is_file() and p.suffix.lower() in IMG_EXTENSIONS)
        if not images:
            problems.append(f"{folder} has no <class>/<image> files ({', '.join(IMG_EXTENSIONS)})")
        files += images
    if len(classes) == 2 and classes["train"] != classes["test"]:
        problems.append(f"train and test class folders differ: {classes['train']} vs {classes['test']}")
    n_classes = len(classes["train"]) if "train" in classes else None
    return DataSource("image_folder", root, () if problems else tuple(files), not problems, (), "; ".join(problems),
                      n_classes or None, 3)


@_locator("synthetic")
def _locate_synthetic(root: Path) -> DataSource:
    return DataSource("synthetic", None, num_classes=4, in_channels=1, image_side=16)


# ---------------------------------------------------------------------------------------------- idx files

def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an idx file (the MNIST family's format; ``.gz`` or plain) into a numpy array."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path} is not an idx file (bad magic number)")
    type_code, ndim = data[2], data[3]
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if type_code not in dtypes:
        raise ValueError(f"{path}: unknown idx element type 0x{type_code:02x}")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    array = np.frombuffer(data, dtype=dtypes[type_code], offset=4 + 4 * ndim)
    if array.size != int(np.prod(shape)):
        raise ValueError(f"{path}: expected {int(np.prod(shape))} elements for shape {shape}, found {array.size}")
    return array.reshape(shape)


def _find_idx(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.exists():
            return candidate
    return None


def load_idx_directory(directory: Path, classes: list[str]) -> dict[str, ImageSet] | None:
    """Load the four standard MNIST-family idx files from one folder, or None if any is missing."""
    stems = {
        "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    }
    found = {split: [_find_idx(directory, s) for s in pair] for split, pair in stems.items()}
    if any(p is None for pair in found.values() for p in pair):
        return None
    out = {}
    for split, (images_path, labels_path) in found.items():
        images = torch.from_numpy(read_idx(images_path).copy()).unsqueeze(1)
        labels = torch.from_numpy(read_idx(labels_path).astype(np.int64))
        out[split] = ImageSet(images, labels, classes)
    return out


# ---------------------------------------------------------------------------------------------- loaders

def _from_torchvision(dataset_cls, root: Path, download: bool, channels_last_data: bool) -> dict[str, ImageSet]:
    out = {}
    for split, train in (("train", True), ("test", False)):
        try:
            ds = dataset_cls(root=str(root), train=train, download=download)
        except (RuntimeError, OSError) as error:  # missing/corrupt files, or no network for the download
            raise FileNotFoundError(
                f"{dataset_cls.__name__} not found under {root} and could not be downloaded "
                f"(download={download}): {error}. Put torchvision's files for it under data.root "
                "(or $AUGLENS_DATA), or run where the download can reach the internet."
            ) from error
        data = torch.as_tensor(np.asarray(ds.data))
        images = data.permute(0, 3, 1, 2).contiguous() if channels_last_data else data.unsqueeze(1)
        labels = torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64)
        out[split] = ImageSet(images.to(torch.uint8), labels, list(ds.classes))
    return out


@DATASETS.register("fashion_mnist")
def fashion_mnist(root: Path, download: bool = True) -> dict[str, ImageSet]:
    """Fashion-MNIST, 28x28 grey, 10 classes (from root, else Debian's package when installed, else torchvision)."""
    root = Path(root)
    for directory in _fashion_mnist_directories(root):
        if directory.is_dir():
            loaded = load_idx_directory(directory, FASHION_MNIST_CLASSES)
            if loaded is not None:
                return loaded
    if _explicit(root) and (not root.is_dir() or not download):
        raise FileNotFoundError(_explicit_root_problem(root) + ("" if download else "; data.download is false"))
    from torchvision.datasets import FashionMNIST

    return _from_torchvision(FashionMNIST, root, download, channels_last_data=False)


@DATASETS.register("mnist")
def mnist(root: Path, download: bool = True) -> dict[str, ImageSet]:
    """MNIST handwritten digits, 28x28 grey, 10 classes (torchvision)."""
    from torchvision.datasets import MNIST

    return _from_torchvision(MNIST, Path(root), download, channels_last_data=False)


@DATASETS.register("cifar10")
def cifar10(root: Path, download: bool = True) -> dict[str, ImageSet]:
    """CIFAR-10, 32x32 colour, 10 classes (torchvision)."""
    from torchvision.datasets import CIFAR10

    return _from_torchvision(CIFAR10, Path(root), download, channels_last_data=True)


@DATASETS.register("cifar100")
def cifar100(root: Path, download: bool = True) -> dict[str, ImageSet]:
    """CIFAR-100, 32x32 colour, 100 fine classes (torchvision)."""
    from torchvision.datasets import CIFAR100

    return _from_torchvision(CIFAR100, Path(root), download, channels_last_data=True)


def _resized(tensor: torch.Tensor, image_size: int | None) -> torch.Tensor:
    """(C, H, W) uint8 -> (C, S, S) uint8 by ``resize_keep_aspect`` (or unchanged without a size)."""
    from auglens.data.transforms import resize_keep_aspect

    if image_size is None:
        return tensor
    return resize_keep_aspect(tensor.unsqueeze(0).float(), image_size).round().clamp(0, 255).squeeze(0).to(torch.uint8)


def _resized_mask(mask: np.ndarray, image_size: int | None) -> torch.Tensor:
    """(H, W) bool -> (S, S) bool, through the images' resize and crop (unchanged without a size)."""
    from auglens.data.transforms import resize_masks

    tensor = torch.from_numpy(mask)
    return tensor if image_size is None else resize_masks(tensor.unsqueeze(0), image_size)[0]


def _stack(images: list[torch.Tensor], where: Path) -> torch.Tensor:
    shapes = {tuple(t.shape) for t in images}
    if len(shapes) != 1:
        raise ValueError(
            f"images under {where} have different sizes {sorted(shapes)[:3]}...; "
            "set data.image_size so they are resized to one size at load time"
        )
    return torch.stack(images)


def _image_folder_masks(root: Path, split: str, samples: list[tuple[str, int]],
                        image_size: int | None) -> torch.Tensor | None:
    """Masks of ``root/masks/<split>/<class>/<stem>.*`` for each sample, or None without a masks tree."""
    from PIL import Image

    folder = root / "masks" / split
    if not folder.is_dir():
        return None
    masks, missing = [], []
    for path, _ in samples:
        relative = Path(path).relative_to(root / split)
        candidates = sorted((folder / relative.parent).glob(f"{relative.stem}.*"))
        if not candidates:
            missing.append(str(relative))
            continue
        with Image.open(candidates[0]) as image:
            size = image.size
            mask = np.asarray(image.convert("L")) > 0
        with Image.open(path) as source:
            if source.size != size:
                raise ValueError(f"mask {candidates[0]} is {size[0]}x{size[1]} but its image {path} is "
                                 f"{source.size[0]}x{source.size[1]}; masks must have their image's size")
        masks.append(_resized_mask(mask, image_size))
    if missing:
        raise FileNotFoundError(f"{folder} holds masks but none for {len(missing)} image(s), e.g. {missing[:3]}; "
                                f"add masks/{split}/<class>/<image stem>.png for every image, or remove {folder}")
    return torch.stack(masks)


@DATASETS.register("image_folder")
def image_folder(root: Path, download: bool = False, image_size: int | None = None) -> dict[str, ImageSet]:
    """Your own images: ``root/train/<class>/*`` and ``root/test/<class>/*`` (torchvision ImageFolder layout).

    Optional object masks in ``root/masks/<split>/<class>/<image stem>.*``."""
    from torchvision.datasets import ImageFolder

    root = Path(root)
    out = {}
    for split in ("train", "test"):
        if not (root / split).is_dir():
            raise FileNotFoundError(f"image_folder expects {root / split}/<class>/<images>; {root / split} is missing")
        folder = ImageFolder(str(root / split))
        images = []
        for path, _ in folder.samples:
            image = folder.loader(path).convert("RGB")
            images.append(_resized(torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1), image_size))
        stacked = _stack(images, root / split)
        labels = torch.tensor([label for _, label in folder.samples], dtype=torch.int64)
        masks = _image_folder_masks(root, split, folder.samples, image_size)
        out[split] = ImageSet(stacked, labels, list(folder.classes), masks)
    if out["train"].classes != out["test"].classes:
        raise ValueError(f"train and test class folders differ: {out['train'].classes} vs {out['test'].classes}")
    return out


#: Oxford-IIIT Pet trimap values: 1 pet, 2 background, 3 the uncertain band along the pet's outline.
PET_BACKGROUND = 2


@DATASETS.register("oxford_iiit_pet")
def oxford_iiit_pet(root: Path, download: bool = True, image_size: int | None = None) -> dict[str, ImageSet]:
    """Oxford-IIIT Pet (37 cat and dog breeds) with its segmentation trimaps as object masks (torchvision)."""
    from torchvision.datasets import OxfordIIITPet

    out = {}
    for split, theirs in (("train", "trainval"), ("test", "test")):
        try:
            ds = OxfordIIITPet(str(root), split=theirs, target_types=("category", "segmentation"), download=download)
        except (RuntimeError, OSError) as error:
            raise FileNotFoundError(
                f"OxfordIIITPet not found under {root} and could not be downloaded (download={download}): {error}. "
                "Put torchvision's oxford-iiit-pet/ folder (images/, annotations/) under data.root "
                "(or $AUGLENS_DATA), or run where the download can reach the internet."
            ) from error
        images, labels, masks = [], [], []
        for i in range(len(ds)):
            image, (label, trimap) = ds[i]
            images.append(_resized(torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1), image_size))
            masks.append(_resized_mask(np.asarray(trimap) != PET_BACKGROUND, image_size))
            labels.append(label)
        # Class names from the training split (torchvision names only the classes a split holds).
        classes = out["train"].classes if split == "test" else list(ds.classes)
        out[split] = ImageSet(_stack(images, Path(root) / "oxford-iiit-pet" / "images"),
                              torch.tensor(labels, dtype=torch.int64), classes, torch.stack(masks))
    return out


@DATASETS.register("synthetic")
def synthetic(root: Path, download: bool = False, image_size: int | None = None) -> dict[str, ImageSet]:
    """Generated shapes (4 classes, 16x16 grey): for tests and smoke runs; needs no files.

    Class k is a bright 5x5 square in quadrant k over low-amplitude noise, jittered by up to 2 pixels, so
    a trained model's CAMs have a known correct location; the square is the image's object mask. Fully
    determined by a fixed seed.
    """
    size = image_size or 16
    generator = torch.Generator().manual_seed(20240101)
    out = {}
    for split, count in (("train", 480), ("test", 120)):
        labels = torch.arange(count) % 4
        images = torch.rand(count, 1, size, size, generator=generator) * 60
        masks = torch.zeros(count, size, size, dtype=torch.bool)
        jitter = torch.randint(-2, 3, (count, 2), generator=generator)
        half = size // 2
        for i in range(count):
            k = int(labels[i])
            top = (k // 2) * half + half // 2 - 2 + int(jitter[i, 0])
            left = (k % 2) * half + half // 2 - 2 + int(jitter[i, 1])
            top, left = max(0, min(size - 5, top)), max(0, min(size - 5, left))
            images[i, 0, top : top + 5, left : left + 5] = 200 + torch.rand(5, 5, generator=generator) * 55
            masks[i, top : top + 5, left : left + 5] = True
        out[split] = ImageSet(images.round().to(torch.uint8), labels,
                              ["top-left", "top-right", "bottom-left", "bottom-right"], masks)
    return out

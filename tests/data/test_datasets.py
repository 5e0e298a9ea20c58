"""Loaders read the real on-disk formats (written here in miniature); splits are stratified and fixed."""

from __future__ import annotations

import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

from auglens.data import datasets as ds
from auglens.data import channel_stats, load_dataset, normalize, resize_keep_aspect, stratified_split, stratified_subset


def write_idx(path, array: np.ndarray, compress: bool) -> None:
    codes = {np.dtype(np.uint8): 0x08}
    header = bytes([0, 0, codes[array.dtype], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        with gzip.open(str(path) + ".gz", "wb") as handle:
            handle.write(data)
    else:
        path.write_bytes(data)


def write_mnist_family(directory, n_train=30, n_test=10, compress=False, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) % 10).astype(np.uint8),
    }
    for name, array in arrays.items():
        write_idx(directory / name, array, compress)
    return arrays


def test_read_idx_plain_and_gz(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a", array, compress=False)
    write_idx(tmp_path / "b", array, compress=True)
    assert np.array_equal(ds.read_idx(tmp_path / "a"), array)
    assert np.array_equal(ds.read_idx(tmp_path / "b.gz"), array)
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an idx file"):
        ds.read_idx(tmp_path / "bad")


def test_fashion_mnist_from_debian_layout(tmp_path, monkeypatch):
    arrays = write_mnist_family(tmp_path / "debian", compress=True)
    monkeypatch.setattr(ds, "DEBIAN_FASHION_MNIST", tmp_path / "debian")
    monkeypatch.setenv("AUGLENS_DATA", str(tmp_path / "unused"))  # no data.root: the default folder, then Debian's
    data = load_dataset("fashion_mnist", root=None, download=False)
    assert data["train"].images.shape == (30, 1, 28, 28)
    assert torch.equal(data["train"].images[:, 0], torch.from_numpy(arrays["train-images-idx3-ubyte"]))
    assert torch.equal(data["test"].labels, torch.from_numpy(arrays["t10k-labels-idx1-ubyte"].astype(np.int64)))
    assert data["train"].classes[0] == "T-shirt/top"


@pytest.mark.parametrize("layout", ["flat", "torchvision"])
def test_an_explicit_root_wins_over_the_debian_copy(tmp_path, monkeypatch, layout):
    write_mnist_family(tmp_path / "debian", compress=True, seed=0)
    monkeypatch.setattr(ds, "DEBIAN_FASHION_MNIST", tmp_path / "debian")
    folder = tmp_path / "mine" / ("FashionMNIST/raw" if layout == "torchvision" else "")
    mine = write_mnist_family(folder, n_train=20, compress=False, seed=7)
    data = load_dataset("fashion_mnist", root=tmp_path / "mine", download=False)
    assert torch.equal(data["train"].images[:, 0], torch.from_numpy(mine["train-images-idx3-ubyte"]))
    source = ds.locate_dataset("fashion_mnist", tmp_path / "mine")
    assert source.found and source.folder == folder
    assert [p.name for p in source.files] == ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                              "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    # without a root, Debian's copy is used
    monkeypatch.setenv("AUGLENS_DATA", str(tmp_path / "empty"))
    assert ds.locate_dataset("fashion_mnist", None).folder == tmp_path / "debian"


@pytest.mark.parametrize("exists", [False, True])
def test_an_explicit_root_without_the_files_is_refused_not_replaced_by_debians(tmp_path, monkeypatch, exists):
    from auglens.preflight import check_data

    write_mnist_family(tmp_path / "debian", compress=True, seed=0)
    monkeypatch.setattr(ds, "DEBIAN_FASHION_MNIST", tmp_path / "debian")
    root = tmp_path / "typo"
    if exists:
        root.mkdir()
    said = "holds no Fashion-MNIST idx files" if exists else "does not exist"
    with pytest.raises(FileNotFoundError, match=f"data.root = '{root}' {said}.*Debian's copy is installed"):
        load_dataset("fashion_mnist", root=root, download=False)
    source = ds.locate_dataset("fashion_mnist", root)
    assert not source.found and source.folder != tmp_path / "debian"
    if not exists:  # a folder that does not exist is not downloaded into: preflight stops the run
        (error,) = check_data("fashion_mnist", str(root), download=True)[0]
        assert error.startswith("data.root:") and "does not exist" in error and str(tmp_path / "debian") in error


def test_locate_dataset_without_loading(tmp_path):
    absent = ds.locate_dataset("cifar10", tmp_path)
    assert not absent.found and absent.files == () and "data_batch_1" in absent.problem
    assert absent.download_urls and absent.num_classes == 10 and absent.in_channels == 3
    assert ds.locate_dataset("synthetic").folder is None
    for split in ("train", "test"):
        for cls in ("a", "b"):
            (tmp_path / "images" / split / cls).mkdir(parents=True)
            (tmp_path / "images" / split / cls / "x.png").write_bytes(b"")
    folder = ds.locate_dataset("image_folder", tmp_path / "images")
    assert folder.found and folder.num_classes == 2 and len(folder.files) == 4
    (tmp_path / "images" / "test" / "c").mkdir()
    assert "class folders differ" in ds.locate_dataset("image_folder", tmp_path / "images").problem


@pytest.mark.parametrize("name, folder", [("fashion_mnist", "FashionMNIST"), ("mnist", "MNIST")])
def test_mnist_family_through_torchvision(tmp_path, monkeypatch, name, folder):
    monkeypatch.setattr(ds, "DEBIAN_FASHION_MNIST", tmp_path / "absent")
    arrays = write_mnist_family(tmp_path / "root" / folder / "raw", compress=False, seed=1)
    data = load_dataset(name, root=tmp_path / "root", download=False)
    assert torch.equal(data["test"].images[:, 0], torch.from_numpy(arrays["t10k-images-idx3-ubyte"]))
    assert len(data["train"].classes) == 10


def _write_cifar(root, folder, train_files, test_file, meta_file, label_key, classes, n=8, seed=0):
    rng = np.random.default_rng(seed)
    base = root / folder
    base.mkdir(parents=True)
    written = {}
    for name in [*train_files, test_file]:
        data = rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8)
        labels = list(rng.integers(0, len(classes), n))
        with open(base / name, "wb") as handle:
            pickle.dump({"data": data, label_key: labels}, handle)
        written[name] = (data, labels)
    with open(base / meta_file, "wb") as handle:
        pickle.dump({"label_names" if label_key == "labels" else "fine_label_names": classes}, handle)
    return written


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_through_torchvision(tmp_path, monkeypatch, name):
    from torchvision import datasets as tv

    if name == "cifar10":
        cls, folder = tv.CIFAR10, "cifar-10-batches-py"
        written = _write_cifar(tmp_path, folder, [f"data_batch_{i}" for i in range(1, 6)], "test_batch",
                               "batches.meta", "labels", [f"c{i}" for i in range(10)])
        test_name = "test_batch"
    else:
        cls, folder = tv.CIFAR100, "cifar-100-python"
        written = _write_cifar(tmp_path, folder, ["train"], "test", "meta", "fine_labels",
                               [f"c{i}" for i in range(100)])
        test_name = "test"
    # Our miniature files cannot match torchvision's published checksums; everything else is the real format.
    monkeypatch.setattr(cls, "_check_integrity", lambda self: True)
    monkeypatch.setattr(cls, "_load_meta", lambda self: _load_meta(self))
    data = load_dataset(name, root=tmp_path, download=False)
    expected, labels = written[test_name]
    assert data["test"].images.shape == (8, 3, 32, 32)
    assert torch.equal(data["test"].images, torch.from_numpy(expected.reshape(8, 3, 32, 32)))
    assert data["test"].labels.tolist() == [int(v) for v in labels]
    assert len(data["train"].images) == (40 if name == "cifar10" else 8)


def _load_meta(self):
    import os

    path = os.path.join(self.root, self.base_folder, self.meta["filename"])
    with open(path, "rb") as handle:
        data = pickle.load(handle, encoding="latin1")
    self.classes = data[self.meta["key"]]
    self.class_to_idx = {c: i for i, c in enumerate(self.classes)}


def test_missing_torchvision_data_without_download_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=False"):
        load_dataset("cifar10", root=tmp_path, download=False)


def test_image_folder_resizes_and_keeps_classes(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for cls in ("cat", "dog"):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(3):
                size = (40, 30) if i % 2 else (30, 30)
                Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(
                    tmp_path / split / cls / f"{i}.png")
    data = load_dataset("image_folder", root=tmp_path, image_size=24)
    assert data["train"].images.shape == (6, 3, 24, 24)
    assert data["train"].classes == ["cat", "dog"] and data["test"].labels.tolist() == [0, 0, 0, 1, 1, 1]
    with pytest.raises(ValueError, match="image_size"):
        load_dataset("image_folder", root=tmp_path)


def test_stratified_split_keeps_class_shares_and_is_fixed():
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    train, val = stratified_split(labels, 0.1, seed=3)
    assert sorted(torch.cat([train, val]).tolist()) == list(range(100))
    assert torch.bincount(labels[val]).tolist() == [5, 3, 2]
    again_train, again_val = stratified_split(labels, 0.1, seed=3)
    assert torch.equal(val, again_val) and torch.equal(train, again_train)
    _, other_val = stratified_split(labels, 0.1, seed=4)
    assert not torch.equal(val, other_val)


def test_stratified_subset():
    labels = torch.arange(1000) % 10
    keep = stratified_subset(labels, 100, seed=0)
    assert len(keep) == 100 and torch.bincount(labels[keep]).tolist() == [10] * 10
    assert torch.equal(stratified_subset(labels, None, 0), torch.arange(1000))


def test_channel_stats_and_normalize_match_numpy():
    images = torch.randint(0, 256, (20, 3, 5, 7), dtype=torch.uint8)
    mean, std = channel_stats(images, chunk=6)
    x = images.numpy().astype(np.float64) / 255
    assert np.allclose(mean.numpy(), x.mean(axis=(0, 2, 3)), atol=1e-6)
    assert np.allclose(std.numpy(), x.std(axis=(0, 2, 3)), atol=1e-6)
    z = normalize(images.float() / 255, mean, std)
    assert torch.allclose(z.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)


def test_resize_keep_aspect_crops_the_centre():
    images = torch.zeros(1, 1, 20, 40)
    images[..., 10:30] = 1.0  # the central 20x20 square of a 20x40 image
    out = resize_keep_aspect(images, 10)
    assert out.shape == (1, 1, 10, 10)
    # Antialiasing blends the outermost columns with the cropped-away zeros; the rest is the centre square.
    assert torch.allclose(out[..., 1:-1], torch.ones(1, 1, 10, 8))
    assert bool((out[..., [0, -1]] > 0.5).all())
    assert resize_keep_aspect(torch.zeros(2, 3, 8, 8), 8).shape == (2, 3, 8, 8)


def test_failed_download_is_a_clear_error(tmp_path, monkeypatch):
    from torchvision import datasets as tv

    def offline(self, *args, **kwargs):
        raise OSError("Name or service not known")

    monkeypatch.setattr(tv.CIFAR10, "download", offline)
    with pytest.raises(FileNotFoundError, match="data.root"):
        load_dataset("cifar10", root=tmp_path, download=True)

"""Mixed-sample data augmentation (MSDA) of the distortion paper: MixUp, FMix, Random Masks and box mixing.

Sources:
- MixUp (Zhang et al., ICLR 2018): ``lam * x + (1 - lam) * x_partner``, lam ~ Beta(alpha, alpha), alpha = 1.
- FMix (Harris et al., "FMix: Enhancing mixed sample data augmentation", 2020; reference code
  ``ecs-vlc/FMix``, ``fmix.py``): a complex Gaussian spectrum scaled by ``1 / max(f, 1 / max(H, W)) ** delta``
  (delta = 3), the real part of its inverse FFT, binarised so that the top ``ceil(lam * H * W)`` or
  ``floor(lam * H * W)`` pixels (a coin flip) come from the image and the rest from its partner.
  lam ~ Beta(alpha, alpha), alpha = 1. FMix min-max normalises the grey image before binarising; the
  ranking, and therefore the mask, does not change, so we skip it.
- Random Masks, "RM" (Marcu & Prügel-Bennett, "On the Effects of Artificial Data Modification", ICML
  2022, Section 3): "at the beginning of the training process three masks are randomly sampled from
  Fourier space. For each batch, one of the three is chosen uniformly at random." So by default every
  training run draws its own three masks, from its starting state (``build_augmentation(..., run_seed=s)``,
  which the training loop does), and each batch uses one of them, chosen from the batch's first key.
  ``seed = <int>`` draws the masks from that seed instead (every run then shares them); ``per_batch =
  false`` chooses a mask per sample from its key.
- Box mixing, ``boxmix``: CutMix's boxes (Yun et al., ICCV 2019; :func:`auglens.augment.mixing.box_masks`)
  with this module's options, so the distortion paper's CutMix experiments (reformulated objective,
  partners from another data set) can be run; plain ``cutmix`` stays the thesis's.

Options shared by the four:
- ``objective = "mixed"``: the loss is lam * CE(label) + (1 - lam) * CE(partner label), with lam the share
  of the image's own pixels actually kept (for masks, the realised share, which differs from the drawn
  lambda by at most one pixel).
  ``objective = "reformulated"`` (Harris et al.'s reformulation, used by the distortion paper for mixing
  between data sets): targets are not mixed — the loss is plain CE on the first image's label — and lam is
  drawn from the imbalanced Beta(alpha + 1, alpha), so the first image dominates on average.
- ``partner_dataset``: partners are training images of another registered data set (resized to the
  images' size, grey <-> colour converted) whose labels are ignored — the paper's inter-dataset MSDA
  (Section 4.1). Requires ``objective = "reformulated"``.
- ``region = "top" | "bottom"``: mix only that half of the image rows (the paper's simplicity-bias
  experiment mixes only the MNIST half of stacked MNIST/CIFAR images); lam is the kept share of that half.

Partners come from the same batch (:func:`auglens.augment.mixing.partner_indices`) or, with
``partner_dataset``, from the key; every random number is a pure function of the sample's key.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from auglens.augment import random as rnd
from auglens.augment.base import AUGMENTATIONS, AugmentedBatch, Augmentation
from auglens.augment.mixing import box_masks, partner_indices

__all__ = ["BoxMix", "FMix", "MixUp", "MixedSample", "RandomMasks", "binarise_top", "conform_images",
           "foreign_images", "fourier_masks", "low_frequency_images"]

Objective = Literal["mixed", "reformulated"]
Region = Literal["all", "top", "bottom"]

# Random streams of this module (see auglens.augment.random); distinct so that adding a draw to one
# augmentation never shifts another's.
_LAMBDA, _PARTNER, _SPECTRUM, _ROUNDING, _CHOICE = 301, 302, 303, 305, 306


# ---------------------------------------------------------------------------------------------- masks

def low_frequency_images(keys: torch.Tensor, height: int, width: int, decay_power: float = 3.0) -> torch.Tensor:
    """FMix's grey images: real inverse FFT of a 1/f**delta-scaled complex Gaussian spectrum; (N,) -> (N, H, W).

    The spectrum is drawn per sample from its key (float64 on the keys' device), batched over N.
    """
    device = keys.device
    fy = torch.fft.fftfreq(height, dtype=torch.float64, device=device).unsqueeze(1)
    fx = torch.fft.rfftfreq(width, dtype=torch.float64, device=device).unsqueeze(0)
    frequency = torch.sqrt(fx * fx + fy * fy)
    # 1/max(f, 1/max(H, W)) keeps the DC term finite, as the reference code does.
    scale = frequency.clamp_min(1.0 / max(height, width)) ** -decay_power
    shape = (len(keys), height, fx.shape[1])
    count = shape[1] * shape[2]
    real = rnd.normal(keys, _SPECTRUM, count).view(shape)
    imag = rnd.normal(keys, _SPECTRUM + 1, count).view(shape)
    return torch.fft.irfft2(torch.complex(real * scale, imag * scale), s=(height, width))


def binarise_top(values: torch.Tensor, lam: torch.Tensor, keys: torch.Tensor, stream: int = _ROUNDING) -> torch.Tensor:
    """True at the ``ceil(lam * P)`` or ``floor(lam * P)`` (per-sample coin flip) largest values; (N, P) -> (N, P) bool.

    So the share of True entries is lam up to one entry — exactly as FMix binarises its masks.
    """
    n, p = values.shape
    lam = lam.to(torch.float64).to(values.device)
    up = rnd.bernoulli(keys, stream).to(values.device)
    count = torch.where(up, torch.ceil(lam * p), torch.floor(lam * p)).to(torch.int64)
    order = values.argsort(dim=1, descending=True, stable=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(p, device=values.device).expand(n, p))
    return rank < count.unsqueeze(1)


def fourier_masks(lam: torch.Tensor, keys: torch.Tensor, height: int, width: int,
                  decay_power: float = 3.0) -> torch.Tensor:
    """FMix masks keeping a lam share of the pixels (True = keep the image's own pixel); (N,) -> (N, H, W) bool."""
    grey = low_frequency_images(keys, height, width, decay_power)
    return binarise_top(grey.flatten(1), lam, keys).view(-1, height, width)


# ---------------------------------------------------------------------------------------------- other data sets

_FOREIGN_CACHE: dict[tuple[str, str | None], torch.Tensor] = {}


def conform_images(images: torch.Tensor, channels: int, height: int, width: int) -> torch.Tensor:
    """Bring images to (C, H, W): grey -> colour by repetition, colour -> grey by ITU-R 601 luma, bilinear resize.

    (M, C', H', W') uint8 or float -> (M, C, H, W) of the same dtype.
    """
    dtype = images.dtype
    x = images.float()
    if x.shape[1] != channels:
        if x.shape[1] == 1:
            x = x.expand(-1, channels, -1, -1)
        elif channels == 1 and x.shape[1] == 3:
            weights = torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)
            x = (x * weights).sum(dim=1, keepdim=True)
        else:
            raise ValueError(f"cannot convert {x.shape[1]}-channel images to {channels} channels")
    if tuple(x.shape[-2:]) != (height, width):
        x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False,
                          antialias=height < images.shape[-2] or width < images.shape[-1])
    return x if dtype.is_floating_point else x.round().clamp(0, 255).to(dtype)


def foreign_images(name: str, root: str | None = None, split: str = "train") -> torch.Tensor:
    """A registered data set's images, uint8 (M, C, H, W), loaded once per process (labels are not needed)."""
    cache_key = (f"{name}/{split}", root)
    if cache_key not in _FOREIGN_CACHE:
        from auglens.data import load_dataset

        _FOREIGN_CACHE[cache_key] = load_dataset(name, root)[split].images
    return _FOREIGN_CACHE[cache_key]


# ---------------------------------------------------------------------------------------------- augmentations

class MixedSample(Augmentation):
    """Shared machinery: lambda, partners (batch or other data set), region, objective. Subclasses implement :meth:`mix`."""

    mixes_samples = True

    def __init__(self, alpha: float = 1.0, objective: Objective = "mixed", partner_dataset: str | None = None,
                 partner_root: str | None = None, region: Region = "all"):
        name = type(self).__name__
        if alpha <= 0:
            raise ValueError(f"{name}: alpha must be > 0, got {alpha}")
        if objective not in ("mixed", "reformulated"):
            raise ValueError(f"{name}: objective must be 'mixed' or 'reformulated', got {objective!r}")
        if region not in ("all", "top", "bottom"):
            raise ValueError(f"{name}: region must be 'all', 'top' or 'bottom', got {region!r}")
        if partner_dataset is not None:
            if objective != "reformulated":
                raise ValueError(f"{name}: partner_dataset needs objective = 'reformulated' (the other data set's "
                                 f"labels are ignored), got objective = {objective!r}")
            from auglens.data import DATASETS

            if partner_dataset not in DATASETS:
                raise ValueError(f"{name}: partner_dataset: {DATASETS.unknown_message(partner_dataset)}")
        self.alpha, self.objective, self.region = alpha, objective, region
        self.partner_dataset, self.partner_root = partner_dataset, partner_root

    def mix(self, images: torch.Tensor, partners: torch.Tensor, lam: torch.Tensor,
            keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, C, H, W) twice, lam (N,) float64 -> (mixed images, share of own pixels kept (N,))."""
        raise NotImplementedError

    def sample_lambda(self, keys: torch.Tensor) -> torch.Tensor:
        """lam ~ Beta(alpha, alpha), or Beta(alpha + 1, alpha) for the reformulated objective; (N,) float64."""
        a = self.alpha + 1.0 if self.objective == "reformulated" else self.alpha
        return rnd.beta(keys, _LAMBDA, a, self.alpha)

    def _partners(self, images, labels, keys):
        if self.partner_dataset is None:
            index = partner_indices(keys)
            return images[index], labels[index]
        pool = foreign_images(self.partner_dataset, self.partner_root)
        index = rnd.randint(keys, _PARTNER, len(pool)).cpu()
        n, c, h, w = images.shape
        partners = conform_images(pool[index].to(images.device), c, h, w).to(images.dtype) / 255.0
        return partners, labels

    def __call__(self, images, labels, keys):
        h = images.shape[-2]
        partners, partner_labels = self._partners(images, labels, keys)
        rows = {"all": slice(0, h), "top": slice(0, h // 2), "bottom": slice(h // 2, h)}[self.region]
        lam = self.sample_lambda(keys)
        mixed, kept = self.mix(images[..., rows, :], partners[..., rows, :], lam, keys)
        out = images.clone()
        out[..., rows, :] = mixed.to(images.dtype)
        if self.objective == "reformulated":
            ones = torch.ones(len(labels), dtype=images.dtype, device=images.device)
            return AugmentedBatch(out, labels, labels, ones)
        return AugmentedBatch(out, labels, partner_labels, kept.to(images.dtype).to(images.device))


def _masked(images, partners, keep):
    """Own pixels where ``keep`` (N, H, W) is True, partner's elsewhere; plus the kept share (N,)."""
    mixed = torch.where(keep.unsqueeze(1), images, partners)
    return mixed, keep.flatten(1).to(torch.float64).mean(dim=1)


@AUGMENTATIONS.register("mixup")
class MixUp(MixedSample):
    """MixUp: lam * x + (1 - lam) * partner, lam ~ Beta(alpha, alpha) (Zhang et al. 2018)."""

    def __init__(self, alpha: float = 1.0, objective: Objective = "mixed", partner_dataset: str | None = None,
                 partner_root: str | None = None, region: Region = "all"):
        super().__init__(alpha, objective, partner_dataset, partner_root, region)

    def mix(self, images, partners, lam, keys):
        weight = lam.to(images.dtype).to(images.device).view(-1, 1, 1, 1)
        return weight * images + (1 - weight) * partners, lam


@AUGMENTATIONS.register("fmix")
class FMix(MixedSample):
    """FMix: binarised low-frequency Fourier mask keeping exactly a lam share of pixels (Harris et al. 2020)."""

    def __init__(self, alpha: float = 1.0, decay_power: float = 3.0, objective: Objective = "mixed",
                 partner_dataset: str | None = None, partner_root: str | None = None, region: Region = "all"):
        if decay_power <= 0:
            raise ValueError(f"FMix: decay_power must be > 0, got {decay_power}")
        super().__init__(alpha, objective, partner_dataset, partner_root, region)
        self.decay_power = decay_power

    def mix(self, images, partners, lam, keys):
        h, w = images.shape[-2:]
        return _masked(images, partners, fourier_masks(lam, keys, h, w, self.decay_power).to(images.device))


@AUGMENTATIONS.register("random_masks")
class RandomMasks(MixedSample):
    """Random Masks (RM): one of ``num_masks`` FMix masks drawn once per training run (Marcu & Prügel-Bennett 2022)."""

    def __init__(self, alpha: float = 1.0, decay_power: float = 3.0, num_masks: int = 3, seed: int | None = None,
                 per_batch: bool = True, objective: Objective = "mixed", partner_dataset: str | None = None,
                 partner_root: str | None = None, region: Region = "all"):
        if decay_power <= 0 or num_masks < 1:
            raise ValueError(f"RandomMasks: decay_power must be > 0 and num_masks >= 1, got {decay_power}, {num_masks}")
        super().__init__(alpha, objective, partner_dataset, partner_root, region)
        self.decay_power, self.num_masks, self.seed, self.per_batch = decay_power, num_masks, seed, per_batch
        self.run_seed = 0  # the training run's starting state (start_run); used when seed is None
        self._bank: dict[tuple[int, int], torch.Tensor] = {}

    def start_run(self, run_seed: int) -> None:
        """Bind the training run whose starting state draws the masks (when ``seed`` is None)."""
        if int(run_seed) != self.run_seed:
            self.run_seed = int(run_seed)
            self._bank.clear()

    def masks(self, height: int, width: int) -> torch.Tensor:
        """The fixed masks at this size, (num_masks, H, W) bool (True = keep own pixel); drawn once per size.

        From ``seed`` when given, else from the run's starting state (epoch -1 of its keys: no training
        sample's key, so the bank's draws are not those of any sample)."""
        if (height, width) not in self._bank:
            if self.seed is not None:
                keys = rnd.sample_keys(self.seed, 0, torch.arange(self.num_masks))
            else:
                keys = rnd.sample_keys(self.run_seed, -1, torch.arange(self.num_masks))
            # The fixed masks' lambdas follow the same Beta as the other augmentations' per-sample ones.
            self._bank[(height, width)] = fourier_masks(self.sample_lambda(keys), keys, height, width,
                                                        self.decay_power)
        return self._bank[(height, width)]

    def mix(self, images, partners, lam, keys):
        h, w = images.shape[-2:]
        choice = rnd.randint(keys[:1] if self.per_batch else keys, _CHOICE, self.num_masks)
        keep = self.masks(h, w).to(images.device)[choice.to(images.device)].expand(len(images), h, w)
        return _masked(images, partners, keep)


@AUGMENTATIONS.register("boxmix")
class BoxMix(MixedSample):
    """CutMix's boxes with this module's options (reformulated objective, partner data set, half-image region)."""

    def __init__(self, alpha: float = 1.0, objective: Objective = "mixed", partner_dataset: str | None = None,
                 partner_root: str | None = None, region: Region = "all"):
        super().__init__(alpha, objective, partner_dataset, partner_root, region)

    def mix(self, images, partners, lam, keys):
        h, w = images.shape[-2:]
        return _masked(images, partners, ~box_masks(lam, keys, h, w).to(images.device))


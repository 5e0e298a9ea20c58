"""Shape/texture cue conflict (Geirhos et al., ICLR 2019), scored as bethgelab's model-vs-human does.

Each image carries a shape of one class and a texture of another, both named in the file name:
``dog10-bird2.png`` has a dog's shape and a bird's texture (trailing digits are instance numbers).
Images whose shape and texture agree are dropped. Over the remaining trials,

- shape accuracy = share of predictions equal to the shape class,
- texture accuracy = share equal to the texture class,
- shape bias = shape hits / (shape hits + texture hits) (NaN when there is neither).

Class names are matched to the model's classes case-insensitively, after an optional ``class_map``
(file-name class -> model class) for data sets whose class names differ from the file names'.

When many model classes make up one cue class (the 16 coarse classes of the style-transfer images from
ImageNet's 1,000), a class-mapping file (JSON: ``{"cue class": [model class names or indices], ...}``)
turns the model's probabilities into cue-class decisions as model-vs-human does: the mean probability of
each cue class's members, then the most probable cue class (:func:`coarse_predictions`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from auglens.augment.mixed import conform_images

__all__ = ["CueConflictSet", "coarse_predictions", "load_class_mapping", "load_cue_conflict", "parse_cue_conflict_name",
           "shape_bias"]

_NAME = re.compile(r"^(?P<shape>.+?)\d+-(?P<texture>.+?)\d+$")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def parse_cue_conflict_name(stem: str) -> tuple[str, str]:
    """``"dog10-bird2"`` -> ``("dog", "bird")``; raises ValueError for names that do not follow the pattern."""
    match = _NAME.match(stem)
    if match is None:
        raise ValueError(f"cue-conflict file name {stem!r} is not <shape><n>-<texture><n> (e.g. dog10-bird2.png)")
    return match["shape"], match["texture"]


@dataclass
class CueConflictSet:
    images: torch.Tensor  # (N, C, H, W) uint8
    shape: torch.Tensor  # (N,) int64 class indices of the model
    texture: torch.Tensor  # (N,) int64
    files: list[str]


def load_cue_conflict(folder: str | Path, classes: list[str], channels: int, height: int, width: int,
                      class_map: dict[str, str] | None = None) -> CueConflictSet:
    """Read every image under ``folder`` (recursively), conformed to (C, H, W), with its shape and texture classes."""
    from PIL import Image

    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {folder}")
    index = {name.lower(): i for i, name in enumerate(classes)}
    mapping = {k.lower(): v.lower() for k, v in (class_map or {}).items()}
    images, shapes, textures, unknown = [], [], [], set()
    for path in files:
        names = parse_cue_conflict_name(path.stem)
        resolved = [mapping.get(n.lower(), n.lower()) for n in names]
        unknown.update(n for n in resolved if n not in index)
        with Image.open(path) as image:
            array = np.asarray(image.convert("RGB" if channels == 3 else "L"))
        tensor = torch.from_numpy(array.copy())
        tensor = tensor.permute(2, 0, 1) if tensor.ndim == 3 else tensor.unsqueeze(0)
        images.append(conform_images(tensor.unsqueeze(0), channels, height, width)[0])
        if not unknown:
            shapes.append(index[resolved[0]])
            textures.append(index[resolved[1]])
    if unknown:
        raise ValueError(f"cue-conflict classes {sorted(unknown)} are not classes of the model "
                         f"({', '.join(classes)}); rename the files or set cue_conflict.class_map")
    return CueConflictSet(torch.stack(images), torch.tensor(shapes), torch.tensor(textures),
                          [str(p.relative_to(folder)) for p in files])


def shape_bias(preds: torch.Tensor, shape: torch.Tensor, texture: torch.Tensor) -> dict[str, float]:
    """Shape accuracy, texture accuracy, shape bias and the number of conflict trials; (N,) x3 -> dict."""
    conflict = shape != texture
    preds, shape, texture = preds[conflict], shape[conflict], texture[conflict]
    n = int(conflict.sum())
    shape_hits = int((preds == shape).sum())
    texture_hits = int((preds == texture).sum())
    hits = shape_hits + texture_hits
    return {
        "shape_accuracy": shape_hits / n if n else float("nan"),
        "texture_accuracy": texture_hits / n if n else float("nan"),
        "shape_bias": shape_hits / hits if hits else float("nan"),
        "trials": n,
    }


def load_class_mapping(path: str | Path, model_classes: list[str]) -> dict[str, list[int]]:
    """Read ``{"cue class": [model class names or indices]}`` (JSON) -> cue class -> model class indices."""
    import json

    raw = json.loads(Path(path).read_text())
    index = {name.lower(): i for i, name in enumerate(model_classes)}
    mapping, unknown = {}, []
    for cue, members in raw.items():
        resolved = []
        for member in members:
            if isinstance(member, int) and 0 <= member < len(model_classes):
                resolved.append(member)
            elif isinstance(member, str) and member.lower() in index:
                resolved.append(index[member.lower()])
            else:
                unknown.append(member)
        mapping[cue] = resolved
    if unknown or not mapping or not all(mapping.values()):
        raise ValueError(f"class mapping {path}: expected {{cue class: [model class names or indices 0..."
                         f"{len(model_classes) - 1}]}} with members for every cue class; unknown members: "
                         f"{unknown[:10]}, empty cue classes: {[c for c, m in mapping.items() if not m]}")
    return mapping


def coarse_predictions(probabilities: torch.Tensor, members: list[list[int]]) -> torch.Tensor:
    """Cue class of the highest mean member probability; (N, K) probabilities -> (N,) indices into ``members``."""
    coarse = torch.stack([probabilities[:, m].mean(dim=1) for m in members], dim=1)
    return coarse.argmax(dim=1)

"""Composed pipelines: registered augmentations applied in order, each with an optional probability.

``compose`` with ``steps = [{ name = "affine" }, { name = "equalize", p = 0.5 }]`` applies ``affine`` to
every image, then ``equalize`` to each image with probability 1/2 — the ``Compose`` / ``RandomApply``
chains of torchvision and timm training recipes. Each step's table holds the augmentation's registry name,
its parameters, and ``p`` (default 1).

Determinism: step s draws from keys derived from the sample's key and s, so two steps never share random
numbers (two ``affine`` steps move an image twice, differently), and whether a step applies is a coin flip
of the sample's key. A step runs only on the images it applies to; since every non-mixing augmentation
treats samples independently, an image's output never depends on its batch.

At most one step may mix samples (CutMix, MixUp, ...): it runs on the whole batch, so partners come from
the batch, and images it does not apply to keep their own pixels and label (lam = 1). Steps after it
transform the mixed images; the labels and lam it produced are the pipeline's.
"""

from __future__ import annotations

from typing import Any

import torch

from auglens.augment import random as rnd
from auglens.augment.base import AUGMENTATIONS, AugmentedBatch, Augmentation
from auglens.augment.base import BASELINE
from auglens.registry import UnknownNameError

# Random streams: step s uses keys derived with stream _STEP_KEYS + s and its coin flip is on stream _APPLY + s.
_STEP_KEYS, _APPLY = 8_000, 9_000


def _build_step(i: int, step: Any) -> tuple[Augmentation, float]:
    where = f"compose: steps[{i}]"
    if not isinstance(step, dict) or not isinstance(step.get("name"), str):
        raise ValueError(f"{where}: expected a table with a string 'name' (and optional 'p' and parameters), "
                         f"e.g. {{ name = \"equalize\", p = 0.5 }}, got {step!r}")
    params = {k: v for k, v in step.items() if k not in ("name", "p")}
    name, p = step["name"], step.get("p", 1.0)
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{where}.p: the step's probability must be a number in [0, 1], got {p!r}")
    if name == BASELINE:
        raise ValueError(f"{where}: 'none' is not an augmentation; leave the step out")
    try:
        factory = AUGMENTATIONS.get(name)
    except UnknownNameError as error:
        raise ValueError(f"{where}.name: {error}") from None
    accepted = AUGMENTATIONS.parameters(name)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        valid = ", ".join(accepted) if accepted else "none"
        raise ValueError(f"{where}: {name} has no parameter(s) {', '.join(unknown)}; its parameters: {valid}")
    try:
        augmentation = factory(**params)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None
    return augmentation, float(p)


@AUGMENTATIONS.register("compose")
class Compose(Augmentation):
    """A pipeline: registered augmentations in order, each applied with probability p (default 1)."""

    def __init__(self, steps: list[dict[str, Any]] | None = None):
        steps = [{"name": "affine"}, {"name": "equalize", "p": 0.5}] if steps is None else steps
        if not isinstance(steps, (list, tuple)) or not steps:  # a study freezes lists into tuples
            raise ValueError(f"compose: steps must be a non-empty list of tables, e.g. "
                             f"[{{ name = \"affine\" }}, {{ name = \"equalize\", p = 0.5 }}], got {steps!r}")
        built, errors = [], []
        for i, step in enumerate(steps):
            try:
                built.append(_build_step(i, step))
            except ValueError as error:
                errors.append(str(error))
        if errors:
            raise ValueError("; ".join(errors))
        mixing = [i for i, (aug, _) in enumerate(built) if aug.mixes_samples]
        if len(mixing) > 1:
            raise ValueError(f"compose: at most one step may mix samples (its labels become the pipeline's); "
                             f"steps {mixing} all do")
        self.steps = [dict(step) for step in steps]
        self._built = built
        self.mixes_samples = bool(mixing)

    def __repr__(self) -> str:
        return f"Compose(steps={self.steps!r})"

    def __call__(self, images, labels, keys):
        out = images.clone()
        partner_labels = labels
        lam = torch.ones(len(labels), dtype=images.dtype, device=images.device)
        for s, (augmentation, p) in enumerate(self._built):
            step_keys = rnd.derive_keys(keys, _STEP_KEYS + s)
            applied = rnd.bernoulli(keys, _APPLY + s, p).to(images.device) if p < 1.0 else None
            if augmentation.mixes_samples:
                mixed = augmentation(out, labels, step_keys)
                keep = torch.ones_like(lam, dtype=torch.bool) if applied is None else applied
                out = torch.where(keep.view(-1, 1, 1, 1), mixed.images, out)
                partner_labels = torch.where(keep, mixed.partner_labels, labels)
                lam = torch.where(keep, mixed.lam.to(lam.dtype), lam)
            elif applied is None:
                out = augmentation(out, labels, step_keys).images
            else:
                chosen = applied.nonzero().squeeze(1)
                if chosen.numel():
                    out[chosen] = augmentation(out[chosen], labels[chosen], step_keys[chosen]).images
        return AugmentedBatch(out, labels, partner_labels, lam)

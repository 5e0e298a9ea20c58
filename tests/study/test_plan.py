"""What a planned training's key depends on: every augmentation parameter, defaults included."""

from __future__ import annotations

from auglens import config as cfg
from auglens.augment import AUGMENTATIONS, resolved_params
from auglens.study.plan import plan_study
from auglens.study.runtime import compute_spec

CPU = compute_spec(cfg.RuntimeConfig(device="cpu", num_threads=1), "cpu")


def _config(**params) -> cfg.Config:
    return cfg.from_dict({"data": {"name": "synthetic"}, "model": {"architecture": "tiny_cnn"},
                          "study": {"seeds": [1]}, "augmentations": [{"name": "random_masks", **params}],
                          "runtime": {"device": "cpu", "num_threads": 1}})


def _augmented(config: cfg.Config):
    (job,) = [job for job in plan_study(config, CPU).jobs if job.stage == "train" and job.spec.augmentation != "none"]
    return job


def test_a_default_written_out_or_left_out_is_the_same_training():
    implicit, explicit = _augmented(_config()), _augmented(_config(per_batch=True, num_masks=3))
    assert implicit.key == explicit.key
    defaults = resolved_params("random_masks", {})
    assert dict(implicit.spec.augmentation_params) == {k: v for k, v in defaults.items() if v is not None}
    assert ("per_batch", True) in implicit.spec.augmentation_params  # a default, not written in the config
    assert _augmented(_config(per_batch=False)).key != implicit.key


def test_a_changed_default_changes_the_key(monkeypatch):
    """Models trained under an older default are not reused as if they were trained under the new one."""
    before = _augmented(_config()).key
    current = AUGMENTATIONS.parameters

    def older_defaults(name: str):
        params = current(name)
        if name == "random_masks":  # as it was: one mask per sample
            params = {**params, "per_batch": params["per_batch"].replace(default=False)}
        return params

    monkeypatch.setattr(AUGMENTATIONS, "parameters", older_defaults)
    assert _augmented(_config()).key != before
    assert _augmented(_config()).key == _augmented(_config(per_batch=False)).key


def test_the_baseline_has_no_parameters():
    (baseline,) = [job for job in plan_study(_config(), CPU).jobs if job.stage == "train" and job.spec.augmentation == "none"]
    assert baseline.spec.augmentation_params == ()

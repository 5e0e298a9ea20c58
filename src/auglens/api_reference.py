"""docs/api.md, generated from the docstrings of the entry points ``auglens`` exports.

``python -m auglens.api_reference > docs/api.md``; a test checks the page is up to date, and runs its examples.
"""

from __future__ import annotations

import inspect

import auglens

__all__ = ["api_markdown"]

INTRO = """# Python API

Generated from the docstrings (`python -m auglens.api_reference > docs/api.md`). `import auglens` gives the
entry points below, each the function a command-line subcommand calls; they load torch on first use.

A notebook session: run a study (or resume it: the same call again), build its report, then open it to get its
models by name and the test images exactly as the models saw them. The images must be normalised with the
training subset's mean and standard deviation and resized to `model.input_size`: `study.test_images()` does
that, so a reloaded model's accuracy is the one in `performance.csv` and its CAMs are the stored ones.

```python
import auglens
from auglens import cam, metrics

config = auglens.load_config("examples/fashion-mnist-quick.toml", ["training.epochs=1"])
result = auglens.run_study(config, "results/nb")       # .performance, .cam_metrics, .aug_metrics
auglens.build_report("results/nb")                     # results/nb/report/index.html

study = auglens.open_study("results/nb")               # models on the CPU; open_study(..., device="cuda")
print(study.model_ids)                                 # ['none-s1', 'affine-s1', ..., 'random_crop-s2']
baseline, cutmix = study.baseline(), study.model("cutmix", seed=1)
images, labels = study.test_images(slice(0, 64)), study.test_labels(slice(0, 64))
maps_a = cam.compute(baseline, images)                 # (64, H, W), as the stored CAM set (upsampled)
maps_b = cam.compute(cutmix, images)
print(metrics.spearman(maps_a, maps_b).mean())
print(study.performance[["model", "accuracy", "checkpoint_key"]])
```

Two of the study's models compared by name, reusing its CAM sets (`auglens compare --study`):

```python
import auglens

auglens.compare_study("results/nb", "results/nb-pairs", models=["cutmix", "affine"], all_pairs=True)
auglens.build_report("results/nb-pairs")
```
"""


def _signature(function) -> str:
    return f"{function.__name__}{inspect.signature(function)}".replace("'", '"')


def _section(title: str, function) -> list[str]:
    return [f"## `{title}`", "", "```", _signature(function), "```", "",
            inspect.cleandoc(function.__doc__ or "(no docstring)"), ""]


def api_markdown() -> str:
    """docs/api.md: the intro with its examples, then every exported entry point and the opened study's
    methods, each with its signature and docstring."""
    from auglens.study.opened import OpenedStudy

    lines = [INTRO]
    for name in auglens.__all__:
        value = getattr(auglens, name)
        if callable(value):
            lines += _section(f"auglens.{name}", value)
    lines += ["## The opened study", "", inspect.cleandoc(OpenedStudy.__doc__), "",
              "Attributes: `folder`, `config`, `plan` (its jobs and keys), `store`, `device`, `performance`; "
              "read on first use: `cam_metrics`, `aug_metrics`, `history`, `data`, `classes`, `model_ids`.", ""]
    for name, member in inspect.getmembers(OpenedStudy, inspect.isfunction):
        if not name.startswith("_"):
            lines += [f"### `OpenedStudy.{name}`", "", "```", _signature(member), "```", "",
                      inspect.cleandoc(member.__doc__ or ""), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(api_markdown(), end="")

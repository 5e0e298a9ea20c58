"""docs/configuration.md, generated from the config classes of both pipelines.

Its own module because it needs the study's and the distortion analyses' configs, and the distortion config
imports the config core: generating the page from :mod:`auglens.config` would make the two import each other.
"""

from __future__ import annotations

import json

from auglens.config import Config, ConfigBase, describe_fields
from auglens.distortion.config import DistortionConfig

__all__ = ["reference_markdown"]


def reference_markdown(*configs: type[ConfigBase]) -> str:
    """docs/configuration.md: one table per top-level config (default: the study's and the distortion
    analyses'), generated from the config classes so it cannot drift from the code."""
    configs = configs or (Config, DistortionConfig)
    lines = ["# Configuration reference", "",
             "Generated from the config classes (`python -m auglens.config_reference > docs/configuration.md`). "
             "Override any key on the command line as `key=value`; an entry of an array of tables is named by "
             "its name, e.g. `metrics.overlap.percents=[10]`. TOML has no null: a key shown with default `none` "
             "is None when left out, and a number key whose meaning names `\"none\"` takes that string to mean "
             "None (e.g. `model.input_size=none`).", ""]
    for config in configs:
        lines += [f"## {config.doc_title}", "", config.doc_intro, "",
                  "| key | default | meaning |", "| --- | --- | --- |"]
        for key, help_text, default in describe_fields(config):
            shown = "none" if default is None else json.dumps(default)
            lines.append(f"| `{key}` | `{shown}` | {help_text} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(reference_markdown(), end="")

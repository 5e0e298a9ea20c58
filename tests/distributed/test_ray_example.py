"""The shipped Ray example: valid, set up for a cluster, headed by the command that runs it (no Ray needed)."""

from __future__ import annotations

from pathlib import Path

from auglens import config as cfg

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ray-cluster.toml"


def test_ray_example_validates_and_uses_a_running_cluster():
    config = cfg.load(EXAMPLE)
    assert config.runtime.backend == "ray" and config.runtime.ray_address == "auto"
    assert config.runtime.num_threads is not None  # results depend on it: pinned, not the machine's default
    assert not config.data.download  # concurrent workers must not download into one shared folder


def test_ray_example_is_headed_by_its_command():
    head = [line for line in EXAMPLE.read_text().splitlines()[:12] if line.startswith("#   ")]
    assert head and head[0].strip("# ").startswith("auglens run examples/ray-cluster.toml --out ")

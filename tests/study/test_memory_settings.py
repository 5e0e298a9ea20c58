"""``runtime.reuse_freed_memory`` and ``runtime.fill_uninitialized_memory`` change how fast a CPU step runs,
never its numbers.

Both act on the whole process (glibc's malloc thresholds cannot be put back to adaptive once set), so each
setting trains in its own fresh interpreter.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

# Trains the small CNN for a few Adam steps under configure_runtime with the given settings (deterministic
# algorithms on, as in every study), then prints a digest of every weight and the page faults of the last steps.
_TRAIN = r"""
import hashlib, json, resource, sys
import torch
import torch.nn.functional as F
from auglens.config import RuntimeConfig
from auglens.models import build_model
from auglens.study.runtime import configure_runtime

settings = json.loads(sys.argv[1])
configure_runtime(RuntimeConfig(num_threads=1, **settings))
torch.manual_seed(0)
model = build_model("small_cnn", 10, 1, width=16, convs_per_block=[1, 1, 2]).to(memory_format=torch.channels_last)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
x = torch.randn(64, 1, 28, 28).contiguous(memory_format=torch.channels_last)
y = torch.randint(0, 10, (64,))

def step():
    optimizer.zero_grad()
    F.cross_entropy(model(x), y).backward()
    optimizer.step()

for _ in range(10):
    step()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    step()
faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / 5
digest = hashlib.sha256(b"".join(t.detach().contiguous().numpy().tobytes() for t in model.state_dict().values()
                                 if t.is_floating_point())).hexdigest()
print(json.dumps({"digest": digest, "faults_per_step": faults}))
"""


def _train(**settings) -> dict:
    out = subprocess.run([sys.executable, "-c", _TRAIN, json.dumps(settings)], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def runs() -> dict[str, dict]:
    return {"torch's defaults": _train(reuse_freed_memory=False, fill_uninitialized_memory=True),
            "auglens's defaults": _train(),
            "freed memory returned": _train(reuse_freed_memory=False, fill_uninitialized_memory=False)}


def test_memory_settings_change_no_number(runs):
    assert len({run["digest"] for run in runs.values()}) == 1


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_reusing_freed_memory_stops_the_page_faults_of_each_step(runs):
    """What the setting is for: without it each step of the small CNN faults its activations in anew (several
    hundred pages a step, measured); with it the freed blocks are reused."""
    returned = runs["freed memory returned"]["faults_per_step"]
    assert returned > 100
    assert runs["auglens's defaults"]["faults_per_step"] < returned / 10

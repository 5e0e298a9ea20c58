"""What the CPU step of the default study's model costs under each memory setting and each model variant.

Times the training step (zero_grad, forward, cross-entropy, backward, Adam step; batch 64 of 1x28x28,
channels-last, 1 thread, deterministic algorithms on as in every study) of the small CNN (width 16, one
convolution in each of the first two blocks):

- the reference: torch's own defaults inside a study, ``runtime.reuse_freed_memory = false`` and
  ``runtime.fill_uninitialized_memory = true`` (every new tensor NaN-filled, freed blocks returned to the
  system), with the previous default study's model (pooling after the ReLU);
- each memory setting alone and both (auglens's defaults), same model;
- auglens's defaults with ``pool_before_norm = true`` (the default study's model since).

glibc's malloc thresholds cannot be put back once set, so every setting runs in its own fresh interpreter; the
settings take turns, ``--rounds`` times, and each keeps its best round (ms per step over ``--steps`` steps).
Page faults per step (``ru_minflt``) are reported beside, since they are what ``reuse_freed_memory`` removes.

    python bench/cpu_step_settings.py [--rounds 5] [--steps 40] [--out bench/results/cpu_step_settings.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_table, write_json  # noqa: E402

from auglens.study.runtime import cpu_description  # noqa: E402

_STEP = r"""
import json, resource, sys, time
import torch
import torch.nn.functional as F
from auglens.config import RuntimeConfig
from auglens.models import build_model
from auglens.study.runtime import configure_runtime

settings, steps = json.loads(sys.argv[1]), int(sys.argv[2])
pool_before_norm = settings.pop("pool_before_norm")
configure_runtime(RuntimeConfig(num_threads=1, **settings))
torch.manual_seed(0)
model = build_model("small_cnn", 10, 1, width=16, convs_per_block=[1, 1, 2], pool_before_norm=pool_before_norm)
model = model.to(memory_format=torch.channels_last)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, foreach=True)
x = torch.randn(64, 1, 28, 28).contiguous(memory_format=torch.channels_last)
y = torch.randint(0, 10, (64,))

def step():
    optimizer.zero_grad()
    F.cross_entropy(model(x), y).backward()
    optimizer.step()

for _ in range(10):
    step()
faults, start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
for _ in range(steps):
    step()
ms = (time.perf_counter() - start) / steps * 1e3
print(json.dumps({"ms": ms, "faults": (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / steps}))
"""

SETTINGS = {
    "reference (torch's defaults, previous model)": dict(reuse_freed_memory=False, fill_uninitialized_memory=True,
                                                         pool_before_norm=False),
    "fill_uninitialized_memory = false": dict(reuse_freed_memory=False, fill_uninitialized_memory=False,
                                              pool_before_norm=False),
    "reuse_freed_memory = true": dict(reuse_freed_memory=True, fill_uninitialized_memory=True,
                                      pool_before_norm=False),
    "both (auglens's defaults)": dict(reuse_freed_memory=True, fill_uninitialized_memory=False,
                                      pool_before_norm=False),
    "both + pool_before_norm (the default study's model)": dict(reuse_freed_memory=True,
                                                                fill_uninitialized_memory=False,
                                                                pool_before_norm=True),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--out", default="bench/results/cpu_step_settings.json")
    args = parser.parse_args()
    best: dict[str, dict] = {}
    for _ in range(args.rounds):
        for name, settings in SETTINGS.items():
            out = subprocess.run([sys.executable, "-c", _STEP, json.dumps(settings), str(args.steps)],
                                 capture_output=True, text=True, check=True)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            if name not in best or result["ms"] < best[name]["ms"]:
                best[name] = result
    reference = best[next(iter(SETTINGS))]["ms"]
    rows = [{"setting": name, "ms_per_step": round(r["ms"], 2), "page_faults_per_step": round(r["faults"]),
             "speed_vs_reference": round(reference / r["ms"], 2)} for name, r in best.items()]
    cpu = cpu_description()
    print(f"CPU {cpu['model']} ({cpu['capability']}), 1 thread; small CNN width 16, batch 64, best of {args.rounds} "
          f"rounds of {args.steps} steps")
    print_table(rows)
    write_json(args.out, {"cpu": cpu, "rounds": args.rounds, "steps": args.steps, "rows": rows})


if __name__ == "__main__":
    main()

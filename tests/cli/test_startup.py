"""Start-up imports only what a command uses: ``import auglens.cli`` loads no heavy library, ``validate``
no training stack, report code, plotting or torchvision (each costs seconds on a small CPU)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("torch", "torchvision", "torch._dynamo", "matplotlib", "pandas", "scipy", "auglens.study",
         "auglens.distortion", "auglens.report", "auglens.analysis")


def _loaded_after(code: str) -> list[str]:
    """The modules of :data:`HEAVY` a fresh interpreter has imported after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_the_cli_imports_no_heavy_library():
    assert _loaded_after("import auglens.cli") == []


def test_version_imports_no_heavy_library():
    assert _loaded_after("from auglens.cli import main\ntry:\n    main(['--version'])\nexcept SystemExit:\n    pass") == []


def test_validate_imports_torch_for_the_model_check_and_nothing_else_heavy(tiny_config_path):
    loaded = _loaded_after(f"from auglens.cli import main\nassert main(['validate', {str(tiny_config_path)!r}]) == 0")
    assert loaded == ["torch"]  # the model is built and run on one image; no study, report, plotting or dynamo

"""The Python version the project states is the one its code needs.

``requires-python`` in pyproject.toml and the README's "Python 3.X+" must agree, and vermin (an
independent analyser of which Python version each construct, module and member needs) must find
nothing in ``src/`` that the stated minimum lacks. Where that interpreter is installed, it also
byte-compiles every source file, which catches syntax vermin does not model.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from auglens._tomllib import tomllib

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"


def stated_minimum() -> tuple[int, int]:
    spec = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    match = re.fullmatch(r">=\s*(\d+)\.(\d+)", spec.strip())
    assert match, f"requires-python should be a plain lower bound, got {spec!r}"
    return int(match[1]), int(match[2])


def test_readme_states_the_same_minimum_as_pyproject():
    major, minor = stated_minimum()
    stated = set(re.findall(r"Python (\d+\.\d+)\+", (ROOT / "README.md").read_text()))
    assert stated == {f"{major}.{minor}"}


def test_vermin_finds_nothing_newer_than_the_minimum():
    pytest.importorskip("vermin")
    major, minor = stated_minimum()
    # `--exclude long`: vermin reads torch's `tensor.long()` as Python 2's `long` builtin.
    result = subprocess.run(
        [sys.executable, "-c", "import sys, vermin; sys.exit(vermin.main())", f"--target={major}.{minor}-", "--violations", "--no-tips",
         "--exclude", "long", str(SRC)],
        capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def minimum_interpreter(major: int, minor: int) -> str | None:
    """``$AUGLENS_MIN_PYTHON``, else ``pythonX.Y`` on PATH, else a pyenv-installed X.Y."""
    if os.environ.get("AUGLENS_MIN_PYTHON"):
        return os.environ["AUGLENS_MIN_PYTHON"]
    candidates = []
    if shutil.which("pyenv"):
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=False).stdout.strip()
        candidates += sorted(Path(root).glob(f"versions/{major}.{minor}.*/bin/python{major}.{minor}"))
    on_path = shutil.which(f"python{major}.{minor}")
    candidates += [Path(on_path)] if on_path else []
    for candidate in candidates:
        probe = subprocess.run([str(candidate), "-c", "import sys; print(sys.version_info[:2])"],
                               capture_output=True, text=True, check=False)
        if probe.returncode == 0 and probe.stdout.strip() == f"({major}, {minor})":
            return str(candidate)
    return None


def test_minimum_interpreter_compiles_every_source_file(tmp_path):
    major, minor = stated_minimum()
    interpreter = minimum_interpreter(major, minor)
    if interpreter is None:
        pytest.skip(f"no Python {major}.{minor} interpreter found (set AUGLENS_MIN_PYTHON)")
    files = sorted(str(p) for p in SRC.rglob("*.py"))
    script = ("import py_compile, sys\n"
              "for f in sys.argv[1:]:\n"
              "    py_compile.compile(f, cfile=f + '.check', doraise=True)\n")
    # Compile into throwaway copies so the minimum interpreter leaves no caches in the tree.
    copies = []
    for f in files:
        target = tmp_path / Path(f).relative_to(SRC)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(Path(f).read_text())
        copies.append(str(target))
    result = subprocess.run([interpreter, "-c", script, *copies], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr

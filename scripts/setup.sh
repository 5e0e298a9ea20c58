#!/usr/bin/env bash
# Install what auglens needs on a fresh machine with only Python: system packages (when we can),
# PyTorch, then auglens itself with the requested extras. Safe to run again: it skips what is there.
#   scripts/setup.sh [EXTRAS]    e.g. scripts/setup.sh test,ray
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
PYTHON="${PYTHON:-python3}"

apt_install() {
  # Debian packages: the embedded Fashion-MNIST and (for the report's browser test) Chromium.
  local missing=("$@")
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      echo "setup: please install Debian packages: ${missing[*]} (needs root)" >&2; return 0; fi
  fi
  if command -v apt-get >/dev/null 2>&1; then
    $sudo apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: no apt-get; install ${missing[*]} yourself (auglens falls back to torchvision's downloader)" >&2
  fi
}

packages=()
[ -d /usr/share/datasets/fashion-mnist ] || packages+=(dataset-fashion-mnist)
if [[ ",$extras," == *",test,"* ]] && ! command -v chromium >/dev/null 2>&1; then packages+=(chromium); fi
apt_install "${packages[@]}" || echo "setup: could not install ${packages[*]}; continuing" >&2

# PyTorch first, at the versions auglens is tested with, unless a torch is already installed.
# (found, not imported: importing torch takes seconds, and this runs before every default study)
if ! "$PYTHON" -c "import importlib.util as u, sys; sys.exit(not (u.find_spec('torch') and u.find_spec('torchvision')))" \
    >/dev/null 2>&1; then
  "$PYTHON" -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
fi
target="."
[ -n "$extras" ] && target=".[$extras]"
# pip resolves every dependency again even when nothing changed (10 to 30 s): skipped when this interpreter
# already imports auglens from this folder, installed with the same extras from the same pyproject.toml.
stamp=".setup-stamp"
wanted="$("$PYTHON" -c 'import sys; print(sys.executable)') $extras $(sha256sum pyproject.toml | cut -c1-16)"
here="$(pwd -P)/src/auglens"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ] && \
   [ "$("$PYTHON" -c 'import importlib.util as u, os; print(os.path.dirname(os.path.realpath(u.find_spec("auglens").origin)))' 2>/dev/null)" = "$here" ]; then
  exit 0
fi
"$PYTHON" -m pip install -q -e "$target"
echo "$wanted" > "$stamp"

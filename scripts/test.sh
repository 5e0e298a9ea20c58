#!/usr/bin/env bash
# Set up (first time only) and run the test suite on the CPU. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test,ray
PYTHON="${PYTHON:-python3}"
exec "$PYTHON" -m pytest "$@"

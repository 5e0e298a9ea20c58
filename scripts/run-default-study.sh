#!/usr/bin/env bash
# Set up (first time only) and run the embedded default study: Fashion-MNIST, baseline + the thesis's
# seven augmentations, on this machine's CPU or GPU. Results land in results/fashion-mnist-quick/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PYTHON="${PYTHON:-python3}"
exec "$PYTHON" -m auglens.cli run examples/fashion-mnist-quick.toml --out results/fashion-mnist-quick "$@"

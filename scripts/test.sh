#!/usr/bin/env bash
# Set up (first time only) and run the test suite on the CPU. Extra arguments go to pytest.
#
#   scripts/test.sh [PYTEST ARGS]                  the suite, once
#   scripts/test.sh --portability [PYTEST ARGS]    the suite under every CPU kernel family torch can use here
#                                                  (ATEN_CPU_CAPABILITY = default, avx2, the native one) x 1 and
#                                                  2 threads: what another x86-64 CPU would run
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test,ray
PYTHON="${PYTHON:-python3}"
if [[ "${1:-}" != "--portability" ]]; then
    exec "$PYTHON" -m pytest "$@"
fi
shift
native="$("$PYTHON" -c 'import torch; print(torch.backends.cpu.get_cpu_capability().lower())')"
capabilities=(default)
[[ "$native" != default ]] && capabilities+=(avx2)
[[ "$native" != default && "$native" != avx2 ]] && capabilities+=("$native")
failed=()
for capability in "${capabilities[@]}"; do
    for threads in 1 2; do
        echo "== ATEN_CPU_CAPABILITY=$capability, $threads thread(s)"
        if ! ATEN_CPU_CAPABILITY="$capability" OMP_NUM_THREADS="$threads" \
                "$PYTHON" -m pytest -p no:cacheprovider "$@"; then
            failed+=("$capability/$threads")
        fi
    done
done
if (( ${#failed[@]} )); then
    echo "failed under: ${failed[*]}" >&2
    exit 1
fi
echo "passed under every capability (${capabilities[*]}) and thread count (1, 2)"

#!/usr/bin/env bash
# Every device figure in one run: the fast preset end to end (22 models, CAMs of the whole test set, every
# metric, the report), then every benchmark, then the thesis's model (EfficientNet-B0 at 224x224) trained
# twice with one config, to see how far a rerun on the same device moves it; writes one JSON (suite.json) and
# a summary table (summary.md) with each figure beside its target.
#
#   bash bench/device_suite.sh            # on a GPU machine: an estimated 8 minutes on one H100/H200
#   bash bench/device_suite.sh --smoke    # tiny sizes on the CPU: checks that every step runs (minutes)
#
#   ONLY=rerun bash bench/device_suite.sh --smoke    # only the named steps (space-separated)
#
# Environment: OUT (results folder, default bench/results/device_suite), PYTHON (default python3), ONLY,
# AUGLENS_DATA (folder holding Fashion-MNIST, for machines without network access), WHEELS (a folder of
# wheels installed offline first, e.g. grad-cam and its dependencies for the Grad-CAM comparison).
# A step that fails or times out is recorded as such and the suite goes on.
set -uo pipefail
cd "$(dirname "$0")/.."

MODE=gpu
[[ "${1:-}" == "--smoke" ]] && MODE=smoke
OUT="${OUT:-bench/results/device_suite}"
PYTHON="${PYTHON:-python3}"
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT"
: > "$OUT/steps.tsv"

if [[ -n "${WHEELS:-}" ]]; then
    "$PYTHON" -m pip install --quiet --no-index --find-links "$WHEELS" "$WHEELS"/*.whl || true
fi

# Per-step time limits (s); the smoke mode allows more, for a CPU shared with other work.
if [[ "$MODE" == gpu ]]; then
    LIMIT_PRESET=420 LIMIT_BENCH=120
    DEVICE=cuda
    PRESET=()
    METRICS=(--size 224 --images 2048 --models 14 --chunk 512 --reference-pairs 64)
    CAMS=(--arch efficientnet_b0 --size 224 --n 512 --batch-size 128)
    AUGMENT=(--images 32768 --batch 512)
    THROUGHPUT=(--images 32768 --batch 512)
    STACKED=(--models 7 --images 16384 --batch 512)
    RERUN=(--arch efficientnet_b0 --size 224 --images 2048 --test-images 512 --epochs 2 --batch 32)
else
    LIMIT_PRESET=1800 LIMIT_BENCH=900
    DEVICE=cpu
    PRESET=(data.train_subset=300 data.test_subset=50 training.epochs=1 "study.seeds=[1]" training.batch_size=64
            model.params.width=8 runtime.device=cpu)
    METRICS=(--size 32 --images 16 --models 2 --chunk 8 --reference-pairs 4)
    CAMS=(--arch resnet18 --size 32 --n 8 --batch-size 4 --repeats 1)
    AUGMENT=(--images 128 --batch 64)
    THROUGHPUT=(--images 128 --batch 64 --workers 0)
    STACKED=(--models 2 --images 64 --batch 32 --arch tiny_cnn)
    RERUN=(--arch efficientnet_b0 --size 32 --images 32 --test-images 16 --epochs 1 --batch 16)
fi

# step NAME TIMEOUT_S COMMAND...: runs it, logs to $OUT/NAME.log, records status and wall seconds.
step() {
    local name=$1 limit=$2
    shift 2
    if [[ -n "${ONLY:-}" && " $ONLY " != *" $name "* ]]; then
        return
    fi
    echo "== $name: $*"
    local started status
    started=$(date +%s.%N)
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    status=$?
    local seconds
    seconds=$(echo "$(date +%s.%N) - $started" | bc)
    printf '%s\t%s\t%s\n' "$name" "$status" "$seconds" >> "$OUT/steps.tsv"
    tail -n 4 "$OUT/$name.log"
}

[[ -z "${ONLY:-}" || " $ONLY " == *" fast_preset "* ]] && rm -rf "$OUT/fast-preset"
step fast_preset "$LIMIT_PRESET" "$PYTHON" -m auglens.cli run examples/fast-fashion-mnist.toml --out "$OUT/fast-preset" \
    runtime.progress=false "${PRESET[@]}"
step metrics "$LIMIT_BENCH" "$PYTHON" bench/metrics_vs_scipy.py --device "$DEVICE" "${METRICS[@]}" --json "$OUT/metrics.json"
step cams "$LIMIT_BENCH" "$PYTHON" bench/cam_vs_gradcam.py --device "$DEVICE" "${CAMS[@]}" --json "$OUT/cams.json"
step augment "$LIMIT_BENCH" "$PYTHON" bench/augment_overhead.py --device "$DEVICE" "${AUGMENT[@]}" --json "$OUT/augment.json"
step throughput "$LIMIT_BENCH" "$PYTHON" bench/train_throughput.py --device "$DEVICE" "${THROUGHPUT[@]}" \
    --json "$OUT/throughput.json"
step stacked "$LIMIT_BENCH" "$PYTHON" bench/stacked_training.py --device "$DEVICE" "${STACKED[@]}" \
    --json "$OUT/stacked.json"
step rerun "$LIMIT_BENCH" "$PYTHON" bench/rerun_determinism.py --device "$DEVICE" "${RERUN[@]}" --json "$OUT/rerun.json"

"$PYTHON" bench/device_summary.py "$OUT" "$MODE"

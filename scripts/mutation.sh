#!/usr/bin/env bash
# Mutation testing of the modules whose bugs change research results (run on purpose, not in CI).
#
#   pip install -e ".[test,mutation]"
#   nice -n 10 scripts/mutation.sh                  # every module below, one after the other
#   nice -n 10 scripts/mutation.sh metrics train    # only these
#   nice -n 10 scripts/mutation.sh stacked          # only train/stacked.py, with its own tests (a part of train)
#   nice -n 10 scripts/mutation.sh cam_core         # cam's shared machinery, without the slow model parity tests
#
# Each module is mutated with mutmut in its own scratch copy of src/ and tests/ (the working tree is never
# touched), and each mutant is tested only by the tests of that module that reach the mutated function.
# Per module it prints the score and writes, under $MUTATION_OUT (default: a temporary folder):
#   MODULE/stats.json      killed / survived / timeout / no_tests counts (mutmut's CI/CD stats)
#   MODULE/survivors.diff  the diff of every mutant that no test killed, to kill or to explain
# Set MUTATION_JOBS for the number of parallel test processes (default: the number of CPUs).
set -euo pipefail
set -f  # the mutation globs are matched by mutmut, not expanded by the shell
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
PYTHON="${PYTHON:-python3}"
JOBS="${MUTATION_JOBS:-$(nproc)}"
OUT="${MUTATION_OUT:-$(mktemp -d -t auglens-mutation-XXXXXX)}"
mkdir -p "$OUT"

if ! "$PYTHON" -m mutmut --help >/dev/null 2>&1; then
    echo "mutmut is not installed; install it with: pip install -e \".[test,mutation]\"" >&2
    exit 2
fi

# module -> "files to mutate (globs relative to the repository)|tests that cover them|mutant-name filter"
declare -A MODULES=(
    [metrics]="src/auglens/metrics/*|tests/metrics|"
    [cam]="src/auglens/cam/*|tests/cam/test_cam_api.py tests/cam/test_cam_parity.py tests/cam/test_cam_parity_resnet.py tests/cam/test_cam_parity_thesis_models.py tests/cam/test_cam_storage.py tests/cam/test_cam_contracts.py tests/cam/test_cam_engine.py|"
    [cam_core]="src/auglens/cam/base.py src/auglens/cam/api.py src/auglens/cam/layers.py|tests/cam/test_cam_api.py tests/cam/test_cam_parity.py tests/cam/test_cam_storage.py tests/cam/test_cam_contracts.py tests/cam/test_cam_engine.py|"
    [train]="src/auglens/train/*|tests/train|"
    [stacked]="src/auglens/train/stacked.py|tests/train/test_stacked.py|"
    [augment]="src/auglens/augment/*|tests/augment tests/distortion/test_distortion_masks.py|"
    [augment_mixed]="src/auglens/augment/mixed.py src/auglens/augment/mixing.py|tests/augment tests/distortion/test_distortion_masks.py|"
    [seed_average]="src/auglens/study*|tests/study/test_seed_average.py|*seed_average*"
    [distortion]="src/auglens/distortion/interference.py src/auglens/distortion/affinity.py src/auglens/distortion/occlusion.py src/auglens/distortion/simplicity.py src/auglens/distortion/distortions.py src/auglens/distortion/cue_conflict.py|tests/distortion/test_distortion_formulas.py tests/distortion/test_distortion_masks.py tests/distortion/test_distortion_dominant_class.py tests/distortion/test_distortion_contracts.py tests/distortion/test_distortion_data_helpers.py|"
    [analysis]="src/auglens/analysis/*|tests/analysis|"
    [data]="src/auglens/data/split.py src/auglens/data/prepared.py src/auglens/data/transforms.py|tests/data|"
)
ORDER=(metrics cam train augment seed_average distortion analysis data)  # augment_mixed, stacked, cam_core: parts of augment, train, cam, on request
if [ "$#" -gt 0 ]; then ORDER=("$@"); fi

toml_list() {  # words (globs are kept as globs) -> a TOML list of strings
    local out="" word
    for word in "$@"; do out+="\"$word\", "; done
    echo "[${out%, }]"
}

for module in "${ORDER[@]}"; do
    if [ -z "${MODULES[$module]+set}" ]; then
        echo "unknown module '$module'; valid: ${!MODULES[*]}" >&2
        exit 2
    fi
    IFS='|' read -r globs tests filter <<<"${MODULES[$module]}"
    work="$OUT/$module/work"
    rm -rf "$work" && mkdir -p "$work"
    cp -r src tests pyproject.toml "$work"/
    # shellcheck disable=SC2086
    {
        echo
        echo "[tool.mutmut]"
        echo "source_paths = [\"src\"]"
        echo "only_mutate = $(toml_list $globs)"
        echo "pytest_add_cli_args = [\"-p\", \"no:cacheprovider\", \"-q\"]"
        echo "pytest_add_cli_args_test_selection = $(toml_list $tests)"
        echo "also_copy = [\"tests\"]"
        # A mutant that makes its tests run 5x longer (plus 10 s) than the clean run is counted as a timeout.
        echo "timeout_multiplier = 5.0"
        echo "timeout_constant = 10.0"
        # An error message cannot change a result (whether the error is raised is decided on another line).
        echo "do_not_mutate_patterns = ['^\\s*raise ', '^\\s*warnings\\.warn\\(']"
    } >>"$work/pyproject.toml"
    echo "== $module: mutating $globs, testing with $tests"
    started=$(date +%s)
    # shellcheck disable=SC2086
    # One torch thread per test process: the parallelism is mutmut's, and idle OpenMP threads spin.
    (cd "$work" && env -u PYTHONPATH OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 "$PYTHON" -m mutmut run --max-children "$JOBS" ${filter:+"$filter"} \
        >"$OUT/$module/run.log" 2>&1) || echo "   mutmut exited with $? (see $OUT/$module/run.log)"
    (cd "$work" && "$PYTHON" -m mutmut export-cicd-stats >/dev/null && cp mutants/mutmut-cicd-stats.json "$OUT/$module/stats.json")
    (cd "$work" && "$PYTHON" -m mutmut results --all true 2>/dev/null) >"$OUT/$module/results.txt" || true
    # Survivors: every mutant of this module that no test killed, with its diff (one process: mutmut's API).
    (cd "$work" && "$PYTHON" - "$filter" <<'EOF' >"$OUT/$module/survivors.diff") || true
import fnmatch, re, sys
from mutmut.__main__ import find_mutant, get_diff_for_mutant
pattern = sys.argv[1] or "*"
for line in open("../results.txt"):
    match = re.match(r"\s*(\S+): (survived|no tests)$", line)
    if match and fnmatch.fnmatch(match.group(1), pattern):
        print(f"# {match.group(1)}: {match.group(2)}")
        print(get_diff_for_mutant(match.group(1), path=find_mutant(match.group(1)).path))
EOF
    "$PYTHON" - "$OUT/$module" "$filter" "$(( $(date +%s) - started ))" <<'EOF'
import fnmatch, re, sys
from pathlib import Path
folder, pattern, seconds = Path(sys.argv[1]), sys.argv[2] or "*", int(sys.argv[3])
counts = {}
for line in (folder / "results.txt").read_text().splitlines():
    match = re.match(r"\s*(\S+): (.+)$", line)
    if match and fnmatch.fnmatch(match.group(1), pattern):
        counts[match.group(2)] = counts.get(match.group(2), 0) + 1
killed = counts.get("killed", 0) + counts.get("timeout", 0)
total = sum(v for k, v in counts.items() if k != "skipped")
score = 100.0 * killed / total if total else float("nan")
print(f"   {folder.name}: {killed}/{total} killed ({score:.1f}%) {counts} in {seconds} s")
(folder / "score.txt").write_text(f"{folder.name} {killed} {total} {score:.1f} {counts} {seconds}\n")
EOF
done
echo "results in $OUT"

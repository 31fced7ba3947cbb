#!/usr/bin/env bash
# The first thing to run on a machine with an NVIDIA GPU (docs/gpu.rst): builds convlab, runs
# the GPU tests, then the GPU benchmarks at every compute precision next to PyTorch CUDA with
# TF32 off, TF32 on and bf16 autocast, and writes every output under $OUT (default
# ./gpu-check). Each stage has a time budget (timeout) and the script goes on past a failing
# stage; the summary at the end (also $OUT/summary.txt) says how each went. Under 8 minutes
# with the default budgets.
#
#   bash benchmarks/gpu_check.sh                       # on the GPU machine, from the repo root
#   GPU_CHECK_TINY=1 bash benchmarks/gpu_check.sh      # smoke run on the CUDA emulator (CI)
#
# Outputs (at most 8 files, flat): env.txt, build.log, pytest.log, bench.log, bench.json,
# bench.rst, summary.txt.
#
# Settings (environment):
#   OUT                  where the outputs go (default ./gpu-check)
#   GPU_CHECK_TINY=1     no GPU needed: the CUDA emulator, no build (the checkout's install
#                        is used), the tensor-core tests only, tiny benchmark shapes, 1 repeat
#   GPU_CHECK_BUILD=0    skip the build (use the convlab already installed)
#   GPU_CHECK_TESTS      pytest arguments (default: -k gpu over the whole suite)
#   GPU_CHECK_BUILD_S, GPU_CHECK_TEST_S, GPU_CHECK_BENCH_S   the stages' budgets in seconds
#                        (170, 140, 120; each stage may take 15 s more to stop: 8 min at most)
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo" || exit 1
out=${OUT:-./gpu-check}
mkdir -p "$out"
out=$(cd "$out" && pwd)
python=${PYTHON:-python3}
export PYTHONUNBUFFERED=1

tiny=${GPU_CHECK_TINY:-0}
if [ "$tiny" = 1 ]; then
    export CONVLAB_CUDA_EMULATOR=1 CONVLAB_BENCH_TINY=1
    build=${GPU_CHECK_BUILD:-0}
    tests=${GPU_CHECK_TESTS:-"-k gpu tests/test_gpu_tensor_cores.py"}
    repeats=(--repeats 1)
else
    build=${GPU_CHECK_BUILD:-1}
    tests=${GPU_CHECK_TESTS:-"-k gpu"}
    repeats=()
fi
build_s=${GPU_CHECK_BUILD_S:-170}
test_s=${GPU_CHECK_TEST_S:-140}
bench_s=${GPU_CHECK_BENCH_S:-120}

summary=()
failed=0

# stage NAME BUDGET_S LOG COMMAND...: runs COMMAND under timeout with its output in LOG (and
# on the terminal), then records ok / FAILED (exit status) / TIMED OUT and the seconds taken
stage() {
    local name=$1 budget=$2 log=$3
    shift 3
    printf '\n=== %s (budget %ss) -> %s\n' "$name" "$budget" "$log"
    local start=$SECONDS rc
    # SIGINT first: pytest and Python print what they have before stopping
    timeout -s INT -k 15 "$budget" "$@" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    local took=$((SECONDS - start)) status
    if [ "$rc" -eq 0 ]; then
        status="ok"
    elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        status="TIMED OUT"
        failed=1
    else
        status="FAILED (exit $rc)"
        failed=1
    fi
    summary+=("$(printf '%-10s %-18s %4ss' "$name" "$status" "$took")")
}

skip() {
    summary+=("$(printf '%-10s %-18s' "$1" "skipped ($2)")")
}

{
    date -u
    echo "repo: $repo ($(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo 'no git'))"
    echo "tiny: $tiny"
    uname -a
    command -v nvidia-smi >/dev/null && nvidia-smi \
        --query-gpu=name,compute_cap,memory.total,driver_version --format=csv
    "$python" - <<'EOF'
import importlib
for name in ("numpy", "cupy", "torch"):
    try:
        module = importlib.import_module(name)
        extra = ""
        if name == "torch":
            extra = f", CUDA {module.version.cuda}, available {module.cuda.is_available()}"
        print(f"{name} {module.__version__}{extra}")
    except Exception as err:  # missing or broken: say so and go on
        print(f"{name}: {type(err).__name__}: {err}")
EOF
} >"$out/env.txt" 2>&1
cat "$out/env.txt"

if [ "$build" = 1 ]; then
    stage build "$build_s" "$out/build.log" \
        "$python" -m pip install --no-build-isolation --no-deps .
else
    skip build "GPU_CHECK_BUILD=0 or tiny"
fi

# shellcheck disable=SC2086  # GPU_CHECK_TESTS is a list of arguments
stage tests "$test_s" "$out/pytest.log" "$python" -m pytest -q -p no:cacheprovider $tests

stage bench "$bench_s" "$out/bench.log" "$python" benchmarks/run.py --device gpu --quick \
    --precision highest --precision high --precision medium "${repeats[@]}" \
    --json "$out/bench.json" --rst "$out/bench.rst"

{
    echo
    echo "=== gpu_check summary ($( [ "$tiny" = 1 ] && echo 'tiny, CUDA emulator' || echo 'GPU'))"
    printf '%s\n' "${summary[@]}"
    grep -E '^(=+ .*(passed|failed|error).*|[0-9]+ (passed|failed).*)$' "$out/pytest.log" \
        2>/dev/null | tail -1 | sed 's/^/tests: /'
    echo
    grep -E '^\|' "$out/bench.log" 2>/dev/null
    echo
    echo "outputs: $out"
} | tee "$out/summary.txt"
exit "$failed"

#!/usr/bin/env bash
# Runs every fuzz target of a fuzz build (docs/fuzzing.md).
#
#   fuzz/run.sh BUILD_DIR SECONDS [smoke]
#
# Each BUILD_DIR/fuzz/fuzz_* target first runs every seed of
# fuzz/corpus/<target>/ once (with `smoke`), then fuzzes for SECONDS over
# BUILD_DIR/corpus/<target>/, a copy of its seeds that keeps the new inputs
# it finds (the tree is never written). fuzz/<target>.dict is used when it
# exists. Up to FUZZ_JOBS targets (default: the CPU count) run at a time;
# logs go to BUILD_DIR/fuzz-logs/, crash inputs to BUILD_DIR/artifacts/.
# At the end one line per target gives its executions and the exit status
# is 1 when any target failed.
set -euo pipefail

[ $# -ge 2 ] || { sed -n '4p' "$0" | sed 's/^# *//' >&2; exit 2; }
build=$(cd "$1" && pwd)
seconds=$2
smoke=${3:-}
src=$(cd "$(dirname "$0")" && pwd)
jobs=${FUZZ_JOBS:-$(nproc)}

targets=()
for bin in "$build"/fuzz/fuzz_*; do
    [ -f "$bin" ] && [ -x "$bin" ] && targets+=("$(basename "$bin")")
done
[ ${#targets[@]} -gt 0 ] || { echo "fuzz/run.sh: no fuzz targets in $build/fuzz" >&2; exit 1; }
mkdir -p "$build/fuzz-logs" "$build/artifacts"

# Runs one target; its log is fuzz-logs/<target>.log, its result
# fuzz-logs/<target>.status.
run_target() {
    local t=$1 bin=$build/fuzz/$1 seeds=$src/corpus/$1 corpus=$build/corpus/$1
    local log=$build/fuzz-logs/$t.log artifacts=$build/artifacts/$t/
    local flags=(-print_final_stats=1 -timeout=20 -artifact_prefix="$artifacts")
    [ -f "$src/$t.dict" ] && flags+=(-dict="$src/$t.dict")
    mkdir -p "$corpus" "$artifacts"
    : >"$log"
    if [ -d "$seeds" ]; then
        cp "$seeds"/* "$corpus"/ 2>/dev/null || true
        if [ "$smoke" = smoke ] && [ -n "$(ls -A "$seeds")" ]; then
            if ! "$bin" "${flags[@]}" "$seeds"/* </dev/null >>"$log" 2>&1; then
                echo seeds >"$build/fuzz-logs/$t.status"
                return
            fi
        fi
    fi
    if "$bin" "${flags[@]}" -max_total_time="$seconds" "$corpus" </dev/null >>"$log" 2>&1; then
        echo ok >"$build/fuzz-logs/$t.status"
    else
        echo failed >"$build/fuzz-logs/$t.status"
    fi
}
export -f run_target
export build src seconds smoke

rm -f "$build"/fuzz-logs/*.status
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'run_target {}'

failed=0
printf '%-26s %14s %10s %8s  %s\n' target executions exec/s corpus result
for t in "${targets[@]}"; do
    log=$build/fuzz-logs/$t.log
    status=$(cat "$build/fuzz-logs/$t.status" 2>/dev/null || echo missing)
    execs=$(awk '/stat::number_of_executed_units:/ {n=$2} END {print n+0}' "$log")
    rate=$(awk '/stat::average_exec_per_sec:/ {n=$2} END {print n+0}' "$log")
    files=$(find "$build/corpus/$t" -type f | wc -l)
    printf '%-26s %14s %10s %8s  %s\n' "$t" "$execs" "$rate" "$files" "$status"
    if [ "$status" != ok ]; then
        failed=1
        grep -m1 -E 'ERROR: |invariant failed' "$log" | sed 's/^/    /' || true
        if [ "$status" = seeds ]; then
            grep 'Running: ' "$log" | tail -n 1 | sed 's/^Running: /    seed: /' || true
        fi
        grep -o "Test unit written to .*" "$log" | sed "s|^Test unit written to |    reproduce: $build/fuzz/$t |" || true
        echo "    log: $log"
    fi
done
exit $failed

#!/bin/sh
# The whole test suite N times in a row under CPU load: stress-ng keeps every
# core busy (one CPU hog per core) while ctest runs, as on a GX whose CPU is
# taken by other services. Stops at the first failing run.
#
#   test/load/run.sh [RUNS] [--sanitize] [ctest options]
#
# RUNS defaults to 5. --sanitize runs the ASan/UBSan build (build-asan/).
# Each run's ctest output goes to <build>/load-run-<k>.log; a line per run and
# a summary are printed.
set -eu
cd "$(dirname "$0")/../.."
runs=5
case "${1:-}" in [0-9]*) runs=$1; shift ;; esac
build=build
setup_flag=""
if [ "${1:-}" = "--sanitize" ]; then
    shift
    build=build-asan
    setup_flag=--sanitize
fi
. ./cmake/debian-packages.sh
install_missing_packages load stress-ng
# shellcheck disable=SC2086
./cmake/setup.sh build $setup_flag
cores=$(nproc 2>/dev/null || echo 2)
stress-ng --cpu "$cores" --cpu-method matrixprod --quiet &
load=$!
trap 'kill $load 2>/dev/null || true' EXIT INT TERM
echo "load: stress-ng --cpu $cores running (pid $load); $runs run(s) of the suite in $build/" >&2
k=1
failed=0
while [ "$k" -le "$runs" ]; do
    start=$(date +%s)
    log="$build/load-run-$k.log"
    if (cd "$build" && ctest --output-on-failure -j "$cores" "$@") >"$log" 2>&1; then
        result=passed
    else
        result=FAILED
        failed=1
    fi
    summary=$(grep -E "tests passed|tests failed out of" "$log" | tail -1)
    echo "load: run $k/$runs $result in $(( $(date +%s) - start )) s, load $(cut -d' ' -f1-3 /proc/loadavg): $summary ($log)"
    if [ "$failed" -ne 0 ]; then
        grep -A30 "The following tests FAILED" "$log" >&2 || true
        exit 1
    fi
    k=$((k + 1))
done
echo "load: $runs of $runs runs passed"

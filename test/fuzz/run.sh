#!/bin/sh
# libFuzzer runs of the fuzz targets (test/fuzz/README.md), built with
# Debian's clang 14 under ASan+UBSan in build-fuzz/ (reused; ccache).
#   test/fuzz/run.sh smoke                    every target for 30 s, two at a time (CI)
#   test/fuzz/run.sh long [SECONDS] [TARGET...]  SECONDS (default 600) each, two at a time
#   test/fuzz/run.sh build                    only build
# New inputs go to build-fuzz/fuzz-corpus/<target>/, crashes to
# build-fuzz/fuzz-crashes/<target>-crash-*. Installs the Debian packages
# clang-14 and libclang-rt-14-dev (libFuzzer and the sanitizer runtimes)
# when they are missing.
set -eu
cd "$(dirname "$0")/../.."
what=${1:-smoke}
[ $# -gt 0 ] && shift

. ./cmake/debian-packages.sh
install_missing_packages fuzz clang-14 libclang-rt-14-dev

build=build-fuzz
seconds=30
case "$what" in
    smoke|build) ;;
    long)
        seconds=${1:-600}
        [ $# -gt 0 ] && shift ;;
    *) echo "usage: $0 smoke | long [SECONDS] [TARGET...] | build" >&2; exit 2 ;;
esac

jobs=$(nproc 2>/dev/null || echo 2)
# ccache hits across clones and worktrees: paths relative to the checkout.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$(pwd)}" CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-true}"
# The config target loads the normal build's plugins (build/plugins).
if [ ! -f build/plugins/sim.so ]; then
    cmake -S . -B build >/dev/null
    cmake --build build -j "$jobs"
fi
CC=clang-14 CXX=clang++-14 cmake -S . -B "$build" -DMOAT_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug \
    -DMOAT_FUZZ_SECONDS="$seconds" >/dev/null
if [ "$what" = long ] && [ $# -gt 0 ]; then
    cmake --build "$build" -j "$jobs" --target $(printf 'fuzz-%s ' "$@")
else
    cmake --build "$build" -j "$jobs" --target fuzz-all
fi
[ "$what" = build ] && exit 0

cd "$build"
# Two fuzzers at a time: each is one process on one core.
if [ $# -gt 0 ]; then
    pattern=$(echo "$*" | sed 's/ /|/g')
    exec ctest -L fuzz-smoke -R "fuzz-smoke\\.($pattern)\$" -j 2 --output-on-failure
fi
exec ctest -L fuzz-smoke -j 2 --output-on-failure

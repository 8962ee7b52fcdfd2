#!/bin/sh
# Build the moat-bms fuzz targets with clang 14 (libFuzzer, ASan, UBSan; the
# rpc target ASan only) and
# run each for SECONDS (default 600), one job each, over its seed corpus.
# New interesting inputs stay in build-fuzz/corpus/<target>; crashes go to
# build-fuzz/crash-<target>-*: copy a fixed one into corpus/<target>/ so
# ctest replays it for ever.
#   plugins/shared/moat-link/fuzz/run-fuzzers.sh [SECONDS] [TARGET...]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$here/..
root=$(cd "$src/../../.." && pwd)
out=$root/build-fuzz
seconds=${1:-600}
[ $# -gt 0 ] && shift
targets=${*:-"msgpack frame_stream serial_packer cell_payload rpc"}
mkdir -p "$out"
flags="-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I$src -I$root/core/include"
common="$src/msgpack.cpp $src/frame_stream.cpp $src/serial_packer.cpp $src/cell_packet.cpp $src/conversions.cpp $src/config_merge.cpp $src/sim_ring.cpp"
for t in $targets; do
    extra=""
    libs="-lfmt"
    tflags=$flags
    if [ "$t" = rpc ]; then
        extra="$src/rpc.cpp $src/device_client.cpp $src/sim_controller.cpp $root/core/lib/loop.cpp $root/core/lib/task.cpp $root/core/lib/log.cpp"
        libs="-lfmt -luv"
        # clang 14's UBSan cannot compile our coroutines ("Cannot represent a
        # difference across sections"): this target runs under ASan only.
        tflags=$(echo "$flags" | sed 's/,undefined//; s/ -fno-sanitize-recover=undefined//')
    fi
    # shellcheck disable=SC2086
    clang++-14 $tflags -o "$out/fuzz-$t" "$here/fuzz_$t.cpp" $common $extra $libs
    mkdir -p "$out/corpus/$t"
    "$out/fuzz-$t" -max_total_time="$seconds" -artifact_prefix="$out/crash-$t-" -print_final_stats=1 \
        "$out/corpus/$t" "$here/corpus/$t" 2>&1 | tail -n 12
done

#!/bin/sh
# One entry point for a fresh Debian 12 checkout (run as root, or with sudo
# available): installs the missing Debian packages, builds, then
#   setup.sh demo [--sanitize] [-- host options]   runs `moat-victron --demo`
#   setup.sh test [--sanitize] [ctest options]      runs the whole test suite
#   setup.sh build [--sanitize]                     only builds
#   setup.sh bundle [armhf|arm64|all] [--check|--test]
#                                                   cross-builds the GX bundles
#                                                   dist/moat-victron-<version>-<arch>.tar.gz;
#                                                   --check: readelf and the host under qemu,
#                                                   --test: also the unit tests under qemu
# The build directory is build/ (build-asan/ with --sanitize) and is reused;
# ccache keeps rebuilds short.
set -eu

cd "$(dirname "$0")/.."
what=${1:-}
[ $# -gt 0 ] && shift
# The GX bundles have a script of their own (a cross build in build-<arch>/).
[ "$what" = bundle ] && exec ./cmake/bundle.sh "$@"
build=build
cmake_flags=""
if [ "${1:-}" = "--sanitize" ]; then
    shift
    build=build-asan
    cmake_flags="-DMOAT_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug"
fi

case "$what" in
    demo|test|build) ;;
    *) echo "usage: $0 demo|test|build [--sanitize] [...]" >&2
       echo "       $0 bundle [armhf|arm64|all] [--check|--test]" >&2; exit 2 ;;
esac

# Build and test dependencies, all from Debian 12 (README.md says why each is there).
packages="cmake g++ make pkg-config ccache libsdbus-c++-dev libsystemd-dev libuv1-dev
          libtomlplusplus-dev libfmt-dev catch2 dbus-daemon libglib2.0-bin python3 python3-dbus python3-gi
          python3-pymodbus python3-serial-asyncio python3-msgpack daemontools
          python3-matplotlib"   # the soak's plot (test/soak/)
. ./cmake/debian-packages.sh
# shellcheck disable=SC2086
install_missing_packages setup $packages

jobs=$(nproc 2>/dev/null || echo 2)
echo "setup: building in $build/ with $jobs jobs" >&2
# shellcheck disable=SC2086
cmake -S . -B "$build" $cmake_flags >/dev/null
cmake --build "$build" -j "$jobs"

case "$what" in
    build) ;;
    demo)
        [ "${1:-}" = "--" ] && shift
        exec "./$build/moat-victron" --demo "$@" ;;
    test)
        cd "$build"
        exec ctest --output-on-failure -j "$jobs" "$@" ;;
esac

#!/bin/sh
# bundle.sh [armhf|arm64|all] [--check|--test]: the self-contained GX bundles
# dist/moat-victron-<version>-<arch>.tar.gz (what `./cmake/setup.sh bundle` runs).
#
# Installs what the cross build needs from Debian (the cross compiler,
# qemu-user-static; as root, or with sudo), unpacks the target's libraries
# into build-<arch>/sysroot (apt-get download + dpkg -x: nothing of the other
# architecture is installed on this machine), builds in build-<arch>/, stages
# the bundle in build-<arch>/bundle/moat-victron/ and packs it. --check then
# checks the bundle (ctest -L cross -R bundle_: readelf, and the staged host
# under qemu); --test builds the unit tests too and runs the whole label
# `cross` (unit tests under qemu as well).
set -eu

cd "$(dirname "$0")/.."
archs=armhf
run_tests=no
for a in "$@"; do
    case "$a" in
        armhf|arm64) archs=$a ;;
        all) archs="armhf arm64" ;;
        --check) run_tests=bundle ;;
        --test) run_tests=yes ;;
        *) echo "usage: $0 [armhf|arm64|all] [--check|--test]" >&2; exit 2 ;;
    esac
done

. ./cmake/debian-packages.sh  # sudo, installed, install_missing_packages
jobs=$(nproc 2>/dev/null || echo 2)
# The target's libraries: what we link (-dev), what they need at run time
# (bundled), and catch2 for the unit tests.
target_packages="libsdbus-c++-dev libsdbus-c++1 libsystemd-dev libsystemd0 libcap2 libgcrypt20 libgpg-error0
                 liblzma5 libzstd1 liblz4-1 libuv1-dev libuv1 libfmt-dev libfmt9 libtomlplusplus-dev"

for arch in $archs; do
    case $arch in
        armhf) triplet=arm-linux-gnueabihf; qemu=qemu-arm-static; machines="armv7l armv7 armv8l" ;;
        arm64) triplet=aarch64-linux-gnu; qemu=qemu-aarch64-static; machines="aarch64" ;;
    esac
    build=build-$arch
    sysroot=$PWD/$build/sysroot
    t0=$(date +%s)

    if ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
        echo "bundle: adding the Debian architecture $arch (package lists only; nothing of it is installed)" >&2
        $sudo dpkg --add-architecture "$arch"
        $sudo apt-get update -qq
    fi
    install_missing_packages bundle "g++-$triplet" qemu-user-static cmake make pkg-config ccache file

    stamp="$sysroot/.packages"
    want=$(echo $target_packages catch2)
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        echo "bundle: unpacking the $arch libraries into $sysroot" >&2
        rm -rf "$sysroot" "$build/debs"
        mkdir -p "$sysroot" "$build/debs"
        list=""
        for p in $target_packages; do list="$list $p:$arch"; done
        # catch2 (v2) is headers and CMake files: any architecture's package does.
        (cd "$build/debs" && apt-get download $list catch2 2>&1 | grep -v "^Get:\|unsandboxed" >&2 || true)
        for deb in "$build"/debs/*.deb; do dpkg -x "$deb" "$sysroot"; done
        echo "$want" > "$stamp"
    fi

    stage=$PWD/$build/bundle/moat-victron
    export CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=true
    cmake -S . -B "$build" -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-$arch.cmake -DMOAT_SYSROOT="$sysroot" \
          -DMOAT_BUNDLE=ON -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" \
          -DMOAT_BUNDLE_STAGE="$stage" >/dev/null
    echo "bundle: building $arch in $build/ with $jobs jobs" >&2
    cmake --build "$build" -j "$jobs" --target host-and-plugins
    t_build=$(date +%s)

    # ---- stage: bin, lib (private libraries), plugins, share, service, VERSION, manifest
    rm -rf "$build/install" "$stage"
    cmake --install "$build" --prefix "$PWD/$build/install" >/dev/null
    mkdir -p "$stage/bin" "$stage/lib" "$stage/share"
    cp "$build/install/bin/moat-victron" "$stage/bin/"
    cp -L "$build"/install/lib/libmoat.so.* "$stage/lib/"
    cp -r "$build/install/lib/moat-victron" "$stage/lib/"
    cp -r "$build/install/share/moat-victron" "$stage/share/"
    # The private libraries: every NEEDED that is not glibc, libstdc++,
    # libgcc_s or libm, found in the sysroot, until nothing new is needed.
    system_libs=" libc.so.6 libm.so.6 libstdc++.so.6 libgcc_s.so.1 ld-linux-armhf.so.3 ld-linux-aarch64.so.1 libdl.so.2 libpthread.so.0 librt.so.1 "
    while :; do
        added=no
        for f in "$stage/bin/moat-victron" "$stage"/lib/*.so* "$stage"/lib/moat-victron/plugins/*.so; do
            for n in $($triplet-readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
                case "$system_libs" in *" $n "*) continue ;; esac
                [ -e "$stage/lib/$n" ] && continue
                src=""
                for d in "$sysroot/usr/lib/$triplet" "$sysroot/lib/$triplet"; do
                    [ -e "$d/$n" ] && { src="$d/$n"; break; }
                done
                [ -n "$src" ] || { echo "bundle: $f needs $n, which is not in $sysroot" >&2; exit 1; }
                cp -L "$src" "$stage/lib/$n"
                added=yes
            done
        done
        [ $added = yes ] || break
    done
    $triplet-strip --strip-unneeded "$stage/bin/moat-victron" "$stage"/lib/*.so* "$stage"/lib/moat-victron/plugins/*.so
    # bin/moat-victron becomes the launcher that checks machine and glibc
    # (the program moves to libexec/; $ORIGIN/../lib holds from there too).
    glibc=$(./cmake/bundle-launcher.sh "$stage" "$arch" "$machines" "$triplet-readelf")
    echo "bundle: the $arch programs need glibc $glibc or newer (checked by bin/moat-victron)" >&2

    version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build/CMakeCache.txt")
    if git rev-parse --git-dir >/dev/null 2>&1 && ! git describe --exact-match --tags >/dev/null 2>&1; then
        version="$version+g$(git rev-parse --short HEAD)$(git diff --quiet HEAD 2>/dev/null || echo .dirty)"
    fi
    echo "$version" > "$stage/VERSION"

    # Service templates as `setup --install` writes them for / (for reference
    # and for installing by hand).
    factor=1
    [ "$arch" = arm64 ] && factor=4
    mkdir -p "$stage/service/moat-victron/log"
    cat > "$stage/service/moat-victron/run" <<EOF_RUN
#!/bin/sh
echo '*** starting moat-victron ***'
exec 2>&1
exec softlimit -d $((100000000 * factor)) -s 1000000 -a $((100000000 * factor)) /data/moat-victron/current/bin/moat-victron --config /data/moat-victron/moat-victron.toml
EOF_RUN
    cat > "$stage/service/moat-victron/log/run" <<'EOF_LOG'
#!/bin/sh
exec 2>&1
exec multilog t s25000 n4 /var/log/moat-victron
EOF_LOG
    chmod 755 "$stage/service/moat-victron/run" "$stage/service/moat-victron/log/run"
    sed -e "s/@ARCH@/$arch/" cmake/bundle-install.sh.in > "$stage/install.sh"
    chmod 755 "$stage/install.sh"
    (cd "$stage" && find . -type f ! -name MANIFEST.sha256 | sort | sed 's,^\./,,' | xargs sha256sum > MANIFEST.sha256)

    mkdir -p dist
    tarball=dist/moat-victron-$version-$arch.tar.gz
    tar -C "$build/bundle" --owner=0 --group=0 --transform "s,^moat-victron,moat-victron-$version-$arch," \
        -czf "$tarball" moat-victron
    size=$(stat -c %s "$tarball")
    unpacked=$(du -sk "$stage" | cut -f1)
    t_end=$(date +%s)
    echo "bundle: $tarball: $size bytes compressed ($((size / 1024)) KiB; $unpacked KiB unpacked);" \
         "build $((t_build - t0)) s, staging $((t_end - t_build)) s" >&2
    [ "$size" -lt 6291456 ] || echo "bundle: warning: $tarball is larger than 6 MB" >&2

    if [ $run_tests = bundle ]; then
        (cd "$build" && ctest -L cross -R '^cross\.bundle_' --output-on-failure)
        echo "bundle: $arch bundle checks took $(( $(date +%s) - t_end )) s" >&2
    elif [ $run_tests = yes ]; then
        echo "bundle: building the $arch unit tests" >&2
        cmake --build "$build" -j "$jobs"
        echo "bundle: $arch unit tests built in $(( $(date +%s) - t_end )) s" >&2
        (cd "$build" && ctest -L cross --output-on-failure -j "$jobs")
        echo "bundle: $arch tests took $(( $(date +%s) - t_end )) s" >&2
    fi
done

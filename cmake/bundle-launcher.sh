#!/bin/sh
# bundle-launcher.sh STAGE ARCH "MACHINES" READELF: turns the staged tree's
# bin/moat-victron into the launcher of cmake/launcher.sh.in (checks
# `uname -m` against MACHINES and the C library against the newest GLIBC_
# symbol version of the tree's ELF files, then execs libexec/moat-victron).
# cmake/bundle.sh runs it for every bundle; the setup tests run it on a
# native install tree. Prints the recorded glibc version.
set -eu
stage=$1
arch=$2
machines=$3
readelf=$4
here=$(cd "$(dirname "$0")" && pwd)

if [ ! -x "$stage/libexec/moat-victron" ]; then
    mkdir -p "$stage/libexec"
    mv "$stage/bin/moat-victron" "$stage/libexec/moat-victron"
fi
need=0
for f in $(find "$stage" -type f | sort); do
    [ "$(head -c 4 "$f" | od -An -c | tr -d ' ')" = "177ELF" ] || continue
    for v in $($readelf -V "$f" | grep -o 'GLIBC_2\.[0-9]*' | sed 's/GLIBC_2\.//' | sort -un); do
        [ "$v" -gt "$need" ] && need=$v
    done
done
[ "$need" -gt 0 ] || { echo "bundle-launcher: no GLIBC_2.x symbol version in $stage" >&2; exit 1; }
sed -e "s/@GLIBC@/2.$need/" -e "s/@ARCH@/$arch/" -e "s/@MACHINES@/$machines/" \
    "$here/launcher.sh.in" > "$stage/bin/moat-victron"
chmod 755 "$stage/bin/moat-victron"
echo "2.$need"

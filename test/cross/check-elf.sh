#!/bin/sh
# check-elf.sh STAGE TRIPLET: what a GX can load. Every ELF file of the staged
# bundle needs only glibc, libstdc++, libgcc_s, libm and the libraries in its
# own lib/; no GLIBC_2.x symbol version above 2.36 (Debian 12; Venus OS 3.60
# has 2.39); the host carries DT_RPATH $ORIGIN/../lib (RUNPATH would not reach
# the dependencies of our dependencies); everything is stripped; the launcher
# bin/moat-victron asks for exactly the newest GLIBC_2.x version found.
set -eu
stage=$1
readelf=$2-readelf
allowed="libc.so.6 libm.so.6 libstdc++.so.6 libgcc_s.so.1 ld-linux-armhf.so.3 ld-linux-aarch64.so.1
         libdl.so.2 libpthread.so.0 librt.so.1"
[ -x "$stage/bin/moat-victron" ] || { echo "no bundle staged in $stage: run ./cmake/setup.sh bundle first"; exit 1; }
# The program is libexec/moat-victron; bin/moat-victron its launcher script.
prog=$stage/libexec/moat-victron
[ -x "$prog" ] || { echo "FAIL: no libexec/moat-victron in $stage (bin/moat-victron is not the launcher)"; exit 1; }
[ "$(head -n 1 "$stage/bin/moat-victron")" = "#!/bin/sh" ] || { echo "FAIL: bin/moat-victron is not the launcher script"; exit 1; }
fail=0
count=0
max_all=0
for f in $(find "$stage" -type f | sort); do
    [ "$(head -c 4 "$f" | od -An -c | tr -d ' ')" = "177ELF" ] || continue
    count=$((count + 1))
    for n in $($readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
        case " $(echo $allowed) " in *" $n "*) continue ;; esac
        if [ ! -e "$stage/lib/$n" ]; then
            echo "FAIL $f: NEEDED $n is neither glibc, libstdc++, libgcc_s, libm nor in lib/"
            fail=1
        fi
    done
    max=$($readelf -V "$f" | grep -o 'GLIBC_2\.[0-9]*' | sed 's/GLIBC_2\.//' | sort -n | tail -1)
    if [ -n "$max" ]; then
        [ "$max" -gt "$max_all" ] && max_all=$max
        if [ "$max" -gt 36 ]; then
            echo "FAIL $f: needs GLIBC_2.$max (Debian 12 and Venus OS 3.60 agree on 2.36 at most)"
            fail=1
        fi
    fi
    if $readelf -S "$f" | grep -q '\.symtab'; then
        echo "FAIL $f: not stripped"
        fail=1
    fi
done
dyn=$($readelf -d "$prog")
if ! echo "$dyn" | grep -q '(RPATH).*\[\$ORIGIN/../lib\]' || echo "$dyn" | grep -q '(RUNPATH)'; then
    echo "FAIL $prog: wants DT_RPATH \$ORIGIN/../lib and no RUNPATH, has:"
    echo "$dyn" | grep 'PATH' || echo "  (none)"
    fail=1
fi
if ! grep -qx "need=2\.$max_all" "$stage/bin/moat-victron"; then
    echo "FAIL bin/moat-victron: the launcher does not ask for glibc 2.$max_all: $(grep '^need=' "$stage/bin/moat-victron")"
    fail=1
fi
echo "checked $count ELF files in $stage: highest GLIBC_2.$max_all; bundled: $(cd "$stage/lib" && ls *.so* | tr '\n' ' ')"
[ "$count" -gt 3 ] || { echo "FAIL: only $count ELF files"; fail=1; }
exit $fail

#!/bin/sh
# smoke.sh STAGE QEMU PREFIX: the staged bundle's host started under qemu
# (PREFIX holds the target's glibc and libstdc++, as Venus OS would): it
# prints its version, loads every plugin, accepts the GX example, and runs
# the demo (simulated Venus system on a private dbus-daemon, the controller
# writing to the simulated Multi) until SIGTERM (what svc -d sends), which
# must end it with 0 after the safe state. The launcher bin/moat-victron
# refuses this machine (not the bundle's architecture) and, on the right
# machine, a glibc older than the one it asks for.
set -eu
stage=$1
qemu=$2
prefix=$3
host="$stage/libexec/moat-victron"
launcher="$stage/bin/moat-victron"
[ -x "$host" ] || { echo "no bundle staged in $stage: run ./cmake/setup.sh bundle first"; exit 1; }
run() { "$qemu" -L "$prefix" "$host" "$@"; }

run --version
run --list-plugins
run --check-config "$stage/share/moat-victron/gx.toml"
run setup --help | grep -q -- "--install"

tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

# The launcher, as far as it goes without binfmt (it ends in exec).
{
    expect() {  # expect MESSAGE: the launcher's one line on stderr, exit 1, nothing run
        rc=0
        out=$(PATH="$tmp/fake:$PATH" "$launcher" --version 2>&1) || rc=$?
        if [ $rc -ne 1 ] || [ "$out" != "$1" ]; then
            echo "FAIL: the launcher said (exit $rc): $out"; echo "wanted: $1"; exit 1
        fi
        echo "launcher: $out"
    }
    arch=$(sed -n 's/^arch=//p' "$launcher")
    need=$(sed -n 's/^need=//p' "$launcher")
    machine=$(sed -n 's/^machines="\([^ "]*\).*/\1/p' "$launcher")
    mkdir "$tmp/fake"
    expect "moat-victron: this is the $arch build; this machine is $(uname -m): install the bundle for it"
    printf '#!/bin/sh\necho %s\n' "$machine" > "$tmp/fake/uname"
    printf '#!/bin/sh\necho "glibc 2.31"\n' > "$tmp/fake/getconf"
    chmod 755 "$tmp/fake/uname" "$tmp/fake/getconf"
    expect "moat-victron: this build needs glibc $need or newer (Venus OS 3.60 or later); this system has glibc 2.31. Update the GX firmware first."
}
# (qemu itself in the background, so that $! is the host: a background
# subshell would ignore the signal)
XDG_RUNTIME_DIR=$tmp "$qemu" -L "$prefix" "$host" --demo > "$tmp/demo.log" 2>&1 &
pid=$!
# wait (up to 3 minutes under emulation) for the controller's first real write
i=0
until grep -q '\[inverter\] SET inverter -' "$tmp/demo.log"; do
    if ! kill -0 "$pid" 2>/dev/null || [ $i -ge 1800 ]; then
        echo "FAIL: the demo did not reach a setpoint write:"; cat "$tmp/demo.log"; exit 1
    fi
    i=$((i + 1))
    sleep 0.1
done
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=
if [ $rc -ne 0 ] || ! grep -q 'safe state reached' "$tmp/demo.log"; then
    echo "FAIL: the demo ended with $rc:"; cat "$tmp/demo.log"; exit 1
fi
grep -E 'SET inverter|safe state' "$tmp/demo.log" | tail -3
echo "demo under $qemu: wrote setpoints, stopped with 0 after the safe state"

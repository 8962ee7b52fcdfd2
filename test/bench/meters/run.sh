#!/bin/sh
# Benchmark of the meters plugin's Modbus side on loopback:
#   test/bench/meters/run.sh [BUILD_DIR] [SECONDS]
# polls a 3-phase SDM630 served by (1) the pymodbus peer of the integration
# tests and (2) build/test/meter-sim, and reports CPU per poll and poll rate.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../../build}
seconds=${2:-3}
py=/usr/bin/python3
port=$($py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
$py "$here/../../integration/pymodbus_meters.py" "$port" >/dev/null 2>&1 &
peer=$!
mkfifo "${TMPDIR:-/tmp}/meters-bench.$$"
fifo="${TMPDIR:-/tmp}/meters-bench.$$"
trap 'kill $peer ${sim:-} 2>/dev/null; rm -f "$fifo"' EXIT
sleep 1.5
echo "pymodbus peer (python3-pymodbus $($py -c 'import pymodbus; print(pymodbus.__version__)')):"
"$build/test/meters-bench" --port "$port" --seconds "$seconds" --peer-pid $peer
(sleep $((seconds + 5)) > "$fifo" &) 
"$build/test/meter-sim" --tcp 0 --meter sdm630v2:1 < "$fifo" > "$fifo.out" &
sim=$!
sleep 0.5
simport=$(awk '/^tcp/ {print $3; exit}' "$fifo.out")
echo "meter-sim:"
"$build/test/meters-bench" --port "$simport" --seconds "$seconds" --peer-pid $sim
rm -f "$fifo.out"

#!/usr/bin/env python3
"""What the whole MoaT BMS bridge costs on this machine: the real host with
the moat-bms plugin reads the simulator (build/test/moat-bms-tool sim on a
pty) and publishes the battery on a private dbus-daemon. For 16 and 32 cells
it reports the host's CPU per cell-poll cycle and per second (from
/proc/PID/task/*/schedstat over a window after the battery registered) and its RSS, and
the CPU per cycle as a ratio to the link-only benchmark's cost of one 16-cell
voltage poll (build/test/bench/moat-bms-bench, `poll`). Not run by ctest:

    python3 test/bench/moat-bms/bench_bridge.py [--window 30]
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.join(SOURCE, "test", "integration"))

from moattest import BUILD_DIR, DBusDaemon, HostProcess, spawn, stop_process, toml_string, _readline_with_timeout  # noqa: E402

TOOL = os.path.join(BUILD_DIR, "test", "moat-bms-tool")
LINK_BENCH = os.path.join(BUILD_DIR, "test", "bench", "moat-bms-bench")
T_CELLVOLTAGE = 2.0  # the simulator's t.cellvoltage (s)


def cpu_seconds(pid):
    """Run time of every thread in ns resolution (/proc/PID/task/*/schedstat; stat counts 10 ms ticks)."""
    total = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{t}/schedstat") as f:
            total += int(f.read().split()[0])
    return total * 1e-9


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def run(cells, window, tmp):
    bus = DBusDaemon()
    link = os.path.join(tmp, f"tty{cells}")
    sim = spawn([TOOL, "sim", "--link", link, "--cells", str(cells)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, text=True)
    host = None
    try:
        lines = [_readline_with_timeout(sim.stdout, 5.0) for _ in range(2)]
        assert "ready\n" in lines, lines
        config = os.path.join(tmp, f"bench{cells}.toml")
        with open(config, "w") as f:
            f.write(f"""[host]
plugin_dir = {toml_string(os.path.join(BUILD_DIR, "plugins"))}
bus = {toml_string(bus.address)}
log_level = "info"

[moat-bms]
device = {toml_string(link)}
work_state = {toml_string(os.path.join(tmp, f"w{cells}"))}
""")
        host = HostProcess(["--config", config], log_path=os.path.join(tmp, f"host{cells}.log"))
        host.wait_for(r"com\.victronenergy\.battery\.batt registered", 60.0)
        time.sleep(2)  # past the start-up
        c0, t0 = cpu_seconds(host.proc.pid), time.monotonic()
        time.sleep(window)
        c1, t1 = cpu_seconds(host.proc.pid), time.monotonic()
        rss = rss_kib(host.proc.pid)
        per_s = (c1 - c0) / (t1 - t0)
        return per_s, per_s * T_CELLVOLTAGE, rss
    finally:
        if host:
            host.stop()
        stop_process(sim)
        bus.stop()


def link_poll_us():
    out = subprocess.run([LINK_BENCH], capture_output=True, text=True, timeout=300).stdout
    return float(re.search(r"^poll\s+([\d.]+) us", out, re.M).group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--window", type=float, default=30.0, help="seconds measured per cell count")
    a = ap.parse_args()
    poll = link_poll_us()
    print(f"link-only: {poll:.2f} us host CPU per 16-cell voltage poll (moat-bms-bench)")
    with tempfile.TemporaryDirectory(prefix="moat-bms-bench-") as tmp:
        rows = {n: run(n, a.window, tmp) for n in (16, 32)}
    for n, (per_s, per_cycle, rss) in rows.items():
        print(f"{n} cells: {per_s * 1e3:.2f} ms CPU/s ({per_s * 100:.2f} % of a core), "
              f"{per_cycle * 1e3:.2f} ms CPU per cell-poll cycle (everything in {T_CELLVOLTAGE:g} s), "
              f"{per_cycle * 1e6 / poll:.0f}x the link-only poll; RSS {rss / 1024:.1f} MiB")
    print(f"32/16 cells: CPU {rows[32][0] / rows[16][0]:.2f}x, RSS {rows[32][2] / rows[16][2]:.2f}x")


if __name__ == "__main__":
    main()

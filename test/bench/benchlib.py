"""Helpers shared by the benchmark runner (run.py) and its smoke test: a
private dbus-daemon with Venus's limits, programs started the way the
contract starts them (sh -c 'exec COMMAND', new session, stdin /dev/null),
CPU and memory of a process tree from /proc, and a python3-dbus client."""

import os
import shlex
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.abspath(os.environ.get("MOAT_SOURCE_DIR", os.path.join(HERE, "..", "..")))
BUILD_DIR = os.path.abspath(os.environ.get("MOAT_BUILD_DIR", os.path.join(SOURCE_DIR, "build")))
BENCH_BIN = os.path.join(BUILD_DIR, "test", "bench")
BUS_CONFIG = os.path.join(HERE, "bench-bus.conf")
BUSITEM = "com.victronenergy.BusItem"
TICK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def make_catalogue(paths, directory, instance=0):
    """(json, tsv) file names of a fresh catalogue with `paths` items."""
    base = os.path.join(directory, f"catalogue-{paths}-{instance}")
    subprocess.run([sys.executable, os.path.join(HERE, "make_catalogue.py"), "--paths", str(paths),
                    "--instance", str(instance), "--json", base + ".json", "--tsv", base + ".tsv"], check=True)
    return base + ".json", base + ".tsv"


def read_tsv(tsv):
    """[(path, type, value, format)], [dynamic paths]."""
    items, dynamic = [], []
    with open(tsv) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("#dynamic\t"):
                dynamic.append(line.split("\t")[1])
            elif line and not line.startswith("#"):
                p, t, v, fm = (line.split("\t") + [""])[:4]
                items.append((p, t, v, fm))
    return items, dynamic


class Daemon:
    """A private dbus-daemon in its own process group."""

    def __init__(self):
        self.proc = subprocess.Popen(["dbus-daemon", f"--config-file={BUS_CONFIG}", "--nofork", "--nopidfile",
                                      "--print-address=1"], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        self.address = self.proc.stdout.readline().decode().strip()
        if not self.address:
            raise RuntimeError("dbus-daemon did not print its address")
        self.pid = self.proc.pid

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()


class Program:
    """COMMAND run as the contract runs it; stdout piped (consumers) or to a log."""

    def __init__(self, command, env, log_path, stdout_pipe=False):
        self.command = command
        self._log = open(log_path, "w")
        self.log_path = log_path
        self.started = time.monotonic()
        self.proc = subprocess.Popen(["/bin/sh", "-c", "exec " + command], env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE if stdout_pipe else self._log, stderr=self._log,
                                     start_new_session=True)
        self.pid = self.proc.pid

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=5.0):
        """SIGTERM; (exit code, seconds to exit); SIGKILL to the group after `timeout`."""
        if self.proc.poll() is not None:
            return self.proc.returncode, 0.0
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            rc = self.proc.wait()
        took = time.monotonic() - t0
        if self.proc.stdout:
            self.proc.stdout.close()
        self._log.close()
        return rc, took

    def log(self):
        with open(self.log_path) as f:
            return f.read()


def tree(pid):
    """`pid` and its live descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            pass
    return out


def cpu_s(pid):
    """CPU seconds of `pid` and its descendants: the scheduler's run time of
    every live thread (/proc/*/task/*/schedstat, nanoseconds), or user +
    system clock ticks (10 ms) where the kernel has no schedstat."""
    total = 0.0
    for p in tree(pid):
        try:
            ns, tasks = 0, os.listdir(f"/proc/{p}/task")
            for t in tasks:
                with open(f"/proc/{p}/task/{t}/schedstat") as f:
                    ns += int(f.read().split()[0])
            total += ns / 1e9
        except (FileNotFoundError, ProcessLookupError):
            try:
                with open(f"/proc/{p}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / TICK
            except (FileNotFoundError, ProcessLookupError):
                pass
    return total


def memory_kb(pid):
    """{"rss_kb", "pss_kb", "uss_kb", "hwm_kb"} summed over the tree."""
    m = {"rss_kb": 0, "pss_kb": 0, "uss_kb": 0, "hwm_kb": 0}
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        m["rss_kb"] += int(line.split()[1])
                    elif line.startswith("VmHWM:"):
                        m["hwm_kb"] += int(line.split()[1])
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    k = line.split(":")[0]
                    if k == "Pss":
                        m["pss_kb"] += int(line.split()[1])
                    elif k in ("Private_Clean", "Private_Dirty"):
                        m["uss_kb"] += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            pass
    return m


def context_switches(pid):
    n = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if "ctxt_switches" in line:
                        n += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return n


def program_env(address, **extra):
    env = dict(os.environ)
    env["BENCH_BUS_ADDRESS"] = env["DBUS_SESSION_BUS_ADDRESS"] = env["DBUS_SYSTEM_BUS_ADDRESS"] = address
    env.update({k: str(v) for k, v in extra.items()})
    return env


class Client:
    """A python3-dbus connection with a GLib loop, recording BusItem signals
    and noting when names get an owner."""

    def __init__(self, address):
        import dbus
        import dbus.mainloop.glib
        from gi.repository import GLib
        self.dbus, self.GLib = dbus, GLib
        self.conn = dbus.bus.BusConnection(address, mainloop=dbus.mainloop.glib.DBusGMainLoop())
        self.signals = []  # (member, path, arg, monotonic time)
        self.owned = {}    # name -> monotonic time it got an owner
        self.conn.add_signal_receiver(self._on_signal, dbus_interface=BUSITEM, path_keyword="path",
                                      member_keyword="member")
        self.conn.add_signal_receiver(self._on_owner, signal_name="NameOwnerChanged",
                                      dbus_interface="org.freedesktop.DBus", bus_name="org.freedesktop.DBus")

    def close(self):
        self.conn.close()

    def _on_signal(self, arg, path=None, member=None):
        self.signals.append((str(member), str(path), arg, time.monotonic()))

    def _on_owner(self, name, old, new):
        if new:
            self.owned[str(name)] = time.monotonic()

    def pump(self, until, timeout):
        """Run the GLib loop until `until()` or `timeout` s; returns until()."""
        ctx = self.GLib.MainContext.default()
        deadline = time.monotonic() + timeout
        while not until():
            left = deadline - time.monotonic()
            if left <= 0:
                return bool(until())
            tid = self.GLib.timeout_add(max(1, int(min(left, 0.05) * 1000)), lambda: False)
            ctx.iteration(True)
            self.GLib.source_remove(tid) if ctx.find_source_by_id(tid) else None
        return True

    def call(self, dest, path, method, *args, signature=None, iface=BUSITEM, timeout=10.0):
        return self.conn.call_blocking(dest, path, iface, method, signature, args, timeout=timeout)

    def has_owner(self, name):
        return bool(self.call("org.freedesktop.DBus", "/org/freedesktop/DBus", "NameHasOwner", name,
                              signature="s", iface="org.freedesktop.DBus"))


def quote(*argv):
    return " ".join(shlex.quote(a) for a in argv)

"""Support for the integration tests of moat-victron.

Starts a private dbus-daemon, writes temporary TOML configurations, runs the
real host as a subprocess with its log captured (and waitable line by line),
and runs a "recorder" D-Bus service the test plugins report to.

Every process started here is stopped by its PID when the test ends (also on
failure) and, as a last resort, at interpreter exit; the children also get
PR_SET_PDEATHSIG so that they do not outlive a killed test run.

Run as a script (`python3 moattest.py --recorder ADDRESS NAME FILE`), this
module is the recorder service itself (it needs python3-dbus and python3-gi).
"""

import atexit
import ctypes
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.abspath(os.environ.get("MOAT_SOURCE_DIR", os.path.join(HERE, "..", "..")))
BUILD_DIR = os.path.abspath(os.environ.get("MOAT_BUILD_DIR", os.path.join(SOURCE_DIR, "build")))
HOST = os.path.join(BUILD_DIR, "moat-victron")
TEST_PLUGINS = os.path.join(BUILD_DIR, "test-plugins")
BUS_CONFIG = os.path.join(SOURCE_DIR, "test", "fixtures", "dbus-test.conf")

RECORDER_NAME = "org.moat.test.Recorder"
RECORDER_IFACE = "org.moat.test.Recorder"

# --------------------------------------------------------------------------
# process hygiene

_live = {}  # pid -> (Popen, kill the whole process group?)
_live_lock = threading.Lock()

try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover
    _libc = None
PR_SET_PDEATHSIG = 1


def _child_setup(own_group):
    def setup():
        if own_group:
            os.setpgid(0, 0)
        if _libc is not None:
            _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    return setup


def spawn(argv, own_group=False, **kw):
    """Popen that is remembered (killed at exit if still alive) and dies with us."""
    p = subprocess.Popen(argv, preexec_fn=_child_setup(own_group), **kw)
    with _live_lock:
        _live[p.pid] = (p, own_group)
    return p


def stop_process(p, sig=signal.SIGTERM, timeout=3.0):
    """Stop a process started by spawn(): `sig`, then SIGKILL; reaps it."""
    with _live_lock:
        own_group = _live.pop(p.pid, (None, False))[1]
    if p.poll() is None:
        try:
            if own_group:
                os.killpg(p.pid, sig)
            else:
                p.send_signal(sig)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                if own_group:
                    os.killpg(p.pid, signal.SIGKILL)
                else:
                    p.kill()
            except ProcessLookupError:
                pass
            p.wait()
    elif own_group:
        # the leader is gone; anything left in its group goes too
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


@atexit.register
def _kill_leftovers():
    with _live_lock:
        procs = [p for p, _ in _live.values()]
    for p in procs:
        stop_process(p, signal.SIGKILL, timeout=1.0)


def pid_alive(pid):
    """True if `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def _readline_with_timeout(stream, timeout):
    """One line from a binary pipe within `timeout` s ('' at EOF, None on timeout)."""
    fd = stream.fileno()
    deadline = time.monotonic() + timeout
    buf = b""
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            return None
        chunk = os.read(fd, 1)
        if not chunk:
            break
        buf += chunk
    return buf.decode(errors="replace")


# --------------------------------------------------------------------------
# the private bus

class DBusDaemon:
    """A private dbus-daemon on the test configuration, in its own process group."""

    def __init__(self, config=BUS_CONFIG):
        self.proc = spawn(["dbus-daemon", f"--config-file={config}", "--nofork", "--nopidfile",
                           "--print-address=1"],
                          own_group=True, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
        line = _readline_with_timeout(self.proc.stdout, 10.0)
        if not line or not line.strip():
            self.stop()
            raise RuntimeError(f"dbus-daemon did not print its address (got {line!r})")
        self.address = line.strip()
        self.pid = self.proc.pid

    def stop(self, sig=signal.SIGTERM):
        stop_process(self.proc, sig)
        if self.proc.stdout:
            self.proc.stdout.close()
            self.proc.stdout = None

    def kill(self):
        """Kill it at once (the "lost bus" case)."""
        self.stop(signal.SIGKILL)


def dbus_python():
    """An interpreter that can import dbus and gi: ours, or Debian's."""
    global _dbus_python
    if _dbus_python is None:
        _dbus_python = ""
        for exe in (sys.executable, "/usr/bin/python3"):
            if exe and os.path.exists(exe) and subprocess.run(
                    [exe, "-c", "import dbus, dbus.mainloop.glib, dbus.service; from gi.repository import GLib"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0:
                _dbus_python = exe
                break
    return _dbus_python


_dbus_python = None


class Recorder:
    """The recorder service as a child process: every Record(s) call becomes a
    line of a file, which the test reads."""

    def __init__(self, address, path, name=RECORDER_NAME):
        exe = dbus_python()
        if not exe:
            raise unittest.SkipTest("no Python with python3-dbus and python3-gi (apt-get install python3-dbus python3-gi)")
        self.name = name
        self.path = path
        open(path, "w").close()
        self.proc = spawn([exe, os.path.abspath(__file__), "--recorder", address, name, path],
                          stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        line = _readline_with_timeout(self.proc.stdout, 10.0)
        if line is None or line.strip() != "ready":
            self.stop()
            raise RuntimeError(f"the recorder did not start (said {line!r})")

    def records(self):
        with open(self.path) as f:
            return [line.rstrip("\n") for line in f]

    def events(self, instance):
        """What `instance` reported, in order (without the "instance:" prefix)."""
        prefix = instance + ":"
        return [r[len(prefix):] for r in self.records() if r.startswith(prefix)]

    def stop(self):
        stop_process(self.proc)
        if self.proc.stdout:
            self.proc.stdout.close()
            self.proc.stdout = None


def _run_recorder(address, name, path):
    import dbus
    import dbus.mainloop.glib
    import dbus.service
    from gi.repository import GLib

    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    conn = dbus.bus.BusConnection(address)
    out = open(path, "a", buffering=1)
    loop = GLib.MainLoop()

    class Service(dbus.service.Object):
        @dbus.service.method(RECORDER_IFACE, in_signature="s", out_signature="")
        def Record(self, event):
            out.write(str(event).replace("\n", "\\n") + "\n")
            out.flush()

    service = Service(conn, "/")
    bus_name = dbus.service.BusName(name, bus=conn, do_not_queue=True)
    conn.call_on_disconnection(lambda *_: loop.quit())
    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGTERM, lambda: (loop.quit(), False)[1])
    print("ready", flush=True)
    loop.run()
    out.close()
    os._exit(0)  # no teardown: releasing the name on a dead bus only makes noise


# --------------------------------------------------------------------------
# the host

class HostProcess:
    """build/moat-victron as a subprocess; stderr and stdout are collected line
    by line (and copied to a file) so a test can wait for a line."""

    def __init__(self, args, log_path=None, env=None):
        self.argv = [HOST] + list(args)
        self.lines = []
        self._cond = threading.Condition()
        self._eof = False
        self._log = open(log_path, "w") if log_path else None
        self.started = time.monotonic()
        self.proc = spawn(self.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          stdin=subprocess.DEVNULL, env=env)
        self.pid = self.proc.pid
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            with self._cond:
                self.lines.append((time.monotonic(), line))
                if self._log:
                    self._log.write(line + "\n")
                    self._log.flush()
                self._cond.notify_all()
        self.proc.stdout.close()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    @property
    def log(self):
        with self._cond:
            return "\n".join(l for _, l in self.lines)

    def describe(self):
        with self._cond:
            return self.describe_locked()

    def mark(self):
        """A position in the log; wait_for(..., since=mark) looks only after it."""
        with self._cond:
            return len(self.lines)

    def find(self, pattern, since=0):
        rx = re.compile(pattern)
        with self._cond:
            for _, line in self.lines[since:]:
                m = rx.search(line)
                if m:
                    return m
        return None

    def find_all(self, pattern, since=0):
        rx = re.compile(pattern)
        with self._cond:
            return [m for m in (rx.search(l) for _, l in self.lines[since:]) if m]

    def wait_for(self, pattern, timeout=5.0, since=0):
        """Wait for a log line matching `pattern`; returns (match, time seen).
        Raises AssertionError (with the log) on timeout or when the host ends first."""
        m, t, _ = self._wait_index(pattern, timeout, since)
        return m, t

    def wait_for_in_order(self, patterns, timeout=5.0, since=0):
        """Wait for lines matching `patterns`, each after the line of the one before."""
        for pattern in patterns:
            _, _, since = self._wait_index(pattern, timeout, since)
            since += 1

    def wait_for_count(self, pattern, count, timeout=5.0, since=0):
        """Wait for `count` lines matching `pattern` after `since`; returns the times they were seen.
        With lines of a known cadence this proves that the host's own time passed
        (a sleep of the test's proves nothing about a host that was not scheduled)."""
        times = []
        for _ in range(count):
            _, t, since = self._wait_index(pattern, timeout, since)
            since += 1
            times.append(t)
        return times

    def wait_ticks(self, count, since, name="clock", timeout=5.0):
        """Wait for `count` ticks of a clock_table() instance after `since`: at
        least count x its period of the host's own time has passed, and its
        loop was running."""
        return self.wait_for_count(rf"INFO \[{name}\] tick \d+$", count, timeout, since)

    def _wait_index(self, pattern, timeout, since):
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        i = since
        with self._cond:
            while True:
                while i < len(self.lines):
                    t, line = self.lines[i]
                    i += 1
                    m = rx.search(line)
                    if m:
                        return m, t, i - 1
                if self._eof:
                    raise AssertionError(f"the host ended before logging /{pattern}/\n{self.describe_locked()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no log line /{pattern}/ within {timeout} s\n{self.describe_locked()}")
                self._cond.wait(left)

    def describe_locked(self):
        rc = self.proc.poll()
        return (f"command: {' '.join(self.argv)}\nexit code: {'still running' if rc is None else rc}\n--- host log ---\n"
                + "\n".join(l for _, l in self.lines) + "\n--- end of log ---")

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout):
        """Wait for the exit; returns (exit code, monotonic time of the exit).
        On timeout the host is killed and an AssertionError carries the log."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            what = self.describe()
            self.stop()
            raise AssertionError(f"the host did not exit within {timeout} s (killed it)\n{what}") from None
        ended = time.monotonic()
        self._reader.join(5.0)
        with _live_lock:
            _live.pop(self.proc.pid, None)
        return rc, ended

    def running(self):
        return self.proc.poll() is None

    def stop(self):
        stop_process(self.proc, signal.SIGKILL)
        self._reader.join(5.0)
        if self._log:
            self._log.close()
            self._log = None


def run_host(args, timeout=10.0, env=None):
    """Run the host to completion: (exit code, stdout, stderr)."""
    p = spawn([HOST] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
              stdin=subprocess.DEVNULL, env=env)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_process(p, signal.SIGKILL)
        raise AssertionError(f"{' '.join([HOST] + list(args))} did not finish within {timeout} s") from None
    with _live_lock:
        _live.pop(p.pid, None)
    return p.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def env_without_bus():
    """The environment without any D-Bus address, the system bus pointing nowhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBUS_")}
    env["DBUS_SYSTEM_BUS_ADDRESS"] = "unix:path=/nonexistent/moat-test-no-bus"
    env["DBUS_SESSION_BUS_ADDRESS"] = "unix:path=/nonexistent/moat-test-no-bus"
    return env


# --------------------------------------------------------------------------
# test base

def line_of(path, needle, nth=1):
    """1-based number of the nth line of the file at `path` containing `needle`."""
    seen = 0
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if needle in line:
                seen += 1
                if seen == nth:
                    return n
    raise AssertionError(f"{needle!r} is not in {path}")


# A bus address where no daemon listens: for tests that must not reach one.
NO_BUS = "unix:path=/nonexistent/moat-test-no-bus"


def clock_table(name="clock", tick_ms=100):
    """An instance of the worker test plugin (TEST_PLUGINS) that logs every tick:
    a clock inside the host that HostProcess.wait_ticks() waits for, so a
    "nothing happened" is bounded by the host's time, not by a sleep of the test's."""
    return f'[{name}]\nkind = "worker"\ntick_ms = {tick_ms}\nlog_ticks = true\n\n'


def toml_string(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class HostTestCase(unittest.TestCase):
    """Gives each test a temporary directory and cleans up every process."""

    def setUp(self):
        if not os.access(HOST, os.X_OK):
            self.fail(f"{HOST} is not built (cmake --build {BUILD_DIR})")
        self.tmp = tempfile.mkdtemp(prefix="moat-it-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.bus = None
        self.recorder = None

    def start_bus(self):
        self.bus = DBusDaemon()
        self.addCleanup(self.bus.stop)
        return self.bus

    def start_recorder(self):
        if self.bus is None:
            self.start_bus()
        self.recorder = Recorder(self.bus.address, os.path.join(self.tmp, "records.txt"))
        self.addCleanup(self.recorder.stop)
        return self.recorder

    def host_header(self, bus=None, plugin_dir=TEST_PLUGINS, **keys):
        """A [host] table: fast timings unless overridden."""
        values = {"stop_timeout": 1.0, "watchdog": 5.0, "restart_delay": 0.2,
                  "restart_max_delay": 1.0, "restart_factor": 1.5}
        values.update(keys)
        lines = ["[host]", f"plugin_dir = {toml_string(plugin_dir)}"]
        if bus is None and self.bus is not None:
            bus = self.bus.address
        if bus is not None:
            lines.append(f"bus = {toml_string(bus)}")
        for k, v in values.items():
            lines.append(f"{k} = {toml_value(v)}")
        return "\n".join(lines) + "\n"

    def write_config(self, body, name="moat.toml", header=True, **host_keys):
        """Write [host] (unless header=False) and `body`; returns the path."""
        path = os.path.join(self.tmp, name)
        text = (self.host_header(**host_keys) + "\n" if header else "") + textwrap.dedent(body)
        with open(path + ".new", "w") as f:
            f.write(text)
        os.replace(path + ".new", path)  # a reload never sees a half-written file
        return path

    def start_host(self, config, *extra, env=None):
        h = HostProcess(["--config", config] + list(extra), log_path=os.path.join(self.tmp, "host.log"), env=env)
        self.addCleanup(h.stop)
        return h

    def wait_until(self, what, predicate, timeout, host=None):
        """Poll `predicate` until true; fails with `what`, the records and the log."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                self.fail(f"timed out after {timeout} s waiting for: {what}\n{self.context(host)}")
            if host is not None and not host.running():
                value = predicate()
                if value:
                    return value
                self.fail(f"the host ended while waiting for: {what}\n{self.context(host)}")
            time.sleep(0.02)

    def context(self, host=None):
        parts = []
        if self.recorder is not None:
            parts.append("records: " + repr(self.recorder.records()))
        if host is not None:
            parts.append(host.describe())
        return "\n".join(parts)


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return toml_string(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return repr(v)


if __name__ == "__main__" and len(sys.argv) == 5 and sys.argv[1] == "--recorder":
    _run_recorder(sys.argv[2], sys.argv[3], sys.argv[4])


# --------------------------------------------------------------------------
# exported Venus services: the conformance service and a python3-dbus client

CONFORMANCE_SERVICE = os.path.join(BUILD_DIR, "test", "conformance-service")
CATALOGUE = os.path.join(SOURCE_DIR, "test", "conformance", "catalogue.json")
CONFORMANCE_NAME = "com.victronenergy.battery.conformance"
BUSITEM = "com.victronenergy.BusItem"


class ServiceProcess:
    """build/test/conformance-service on `address`; waits for its "ready" line
    unless wait=False. stderr goes to a file (`log()` reads it)."""

    def __init__(self, address, tmp, name=CONFORMANCE_NAME, extra_paths=0, wait=True, catalogue=CATALOGUE):
        if not os.access(CONFORMANCE_SERVICE, os.X_OK):
            raise AssertionError(f"{CONFORMANCE_SERVICE} is not built")
        env = dict(os.environ)
        env["DBUS_SESSION_BUS_ADDRESS"] = address
        env["DBUS_SYSTEM_BUS_ADDRESS"] = address
        self.name = name
        self.err_path = os.path.join(tmp, f"service-{name}-{time.monotonic_ns()}.log")
        self._err = open(self.err_path, "w")
        argv = [CONFORMANCE_SERVICE, "--catalogue", catalogue, "--name", name]
        if extra_paths:
            argv += ["--extra-paths", str(extra_paths)]
        self.proc = spawn(argv, stdout=subprocess.PIPE, stderr=self._err, stdin=subprocess.DEVNULL, env=env)
        self.pid = self.proc.pid
        if wait:
            line = _readline_with_timeout(self.proc.stdout, 10.0)
            if not line or not line.startswith("ready"):
                self.stop()
                raise AssertionError(f"the conformance service did not start (said {line!r})\n{self.log()}")

    def log(self):
        with open(self.err_path) as f:
            return f.read()

    def wait(self, timeout=5.0):
        """Exit code (kills it and fails after `timeout`)."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"the service did not exit within {timeout} s\n{self.log()}")

    def stop(self, sig=signal.SIGTERM):
        stop_process(self.proc, sig)
        if self.proc.stdout:
            self.proc.stdout.close()
            self.proc.stdout = None
        if not self._err.closed:
            self._err.close()


class BusClient:
    """A python3-dbus connection to a private bus that records every
    com.victronenergy.BusItem signal (and NameOwnerChanged) in arrival order,
    interleaved with the replies of calls made with call_ordered()."""

    def __init__(self, address):
        import dbus
        import dbus.mainloop.glib
        from gi.repository import GLib
        self.dbus = dbus
        self.GLib = GLib
        self.conn = dbus.bus.BusConnection(address, mainloop=dbus.mainloop.glib.DBusGMainLoop())
        self.events = []  # ("signal", member, path, arg) | ("reply", tag, value) | ("error", tag, name)
        self.conn.add_signal_receiver(self._on_signal, dbus_interface=BUSITEM,
                                      path_keyword="path", member_keyword="member")

    def close(self):
        self.conn.close()

    def _on_signal(self, arg, path=None, member=None):
        self.events.append(("signal", str(member), str(path), arg))

    def signals(self):
        return [e for e in self.events if e[0] == "signal"]

    def call(self, path, method, *args, signature=None, iface=BUSITEM, dest=CONFORMANCE_NAME, timeout=5.0):
        """A blocking call; returns the reply (one value) or raises DBusException."""
        return self.conn.call_blocking(dest, path, iface, method, signature, args, timeout=timeout)

    def error_name(self, *a, **kw):
        """The D-Bus error name a call fails with (fails if it succeeds)."""
        try:
            r = self.call(*a, **kw)
        except self.dbus.exceptions.DBusException as e:
            return e.get_dbus_name()
        raise AssertionError(f"call {a} succeeded with {r!r}")

    def call_ordered(self, path, method, *args, signature=None, iface=BUSITEM, dest=CONFORMANCE_NAME, tag=None,
                     timeout=5.0):
        """An asynchronous call whose reply is recorded in `events` in arrival
        order with the signals; pumps the main loop until it came. Returns it."""
        box = []
        tag = tag or f"{path} {method}"

        def ok(*r):
            v = r[0] if len(r) == 1 else r
            box.append(("reply", tag, v))
            self.events.append(("reply", tag, v))

        def err(e):
            box.append(("error", tag, e.get_dbus_name()))
            self.events.append(("error", tag, e.get_dbus_name()))

        self.conn.call_async(dest, path, iface, method, signature, args, ok, err, timeout=timeout)
        self.pump(until=lambda: box, timeout=timeout)
        if not box:
            raise AssertionError(f"no reply to {tag} within {timeout} s")
        return box[0]

    def settle(self):
        """Wait until everything the service sent so far has arrived: a round
        trip to it (signals sent before its reply are dispatched first)."""
        self.call_ordered("/", "GetValue", tag="settle")
        self.events = [e for e in self.events if e[1] != "settle"]

    def pump(self, until=None, timeout=2.0):
        ctx = self.GLib.MainContext.default()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            while ctx.pending():
                ctx.iteration(False)
            if until is not None and until():
                return True
            time.sleep(0.002)
        return until() if until is not None else True

    def introspect_children(self, path, dest=CONFORMANCE_NAME):
        import xml.etree.ElementTree as ET
        xml = self.call(path, "Introspect", iface="org.freedesktop.DBus.Introspectable", dest=dest)
        root = ET.fromstring(str(xml))
        return sorted(n.get("name") for n in root.findall("node"))

    def name_has_owner(self, name=CONFORMANCE_NAME):
        return bool(self.call("/org/freedesktop/DBus", "NameHasOwner", name, signature="s",
                              iface="org.freedesktop.DBus", dest="org.freedesktop.DBus"))

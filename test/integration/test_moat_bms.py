"""Integration tests of the moat-bms plugin: the real host talks to our
controller simulator (build/test/moat-bms-tool sim) over a pty behind a
symlink, on a private bus. Faults are switched on the simulator's stdin: a
silent device ends the session on a timeout and the link comes back with
back-off; end of file and a new pty behind the same symlink; invalid msgpack
resyncs; the port is exclusive (a probe while the host has it: port busy).
"""

import os
import subprocess
import time
import unittest

from moattest import BUILD_DIR, HostTestCase, _readline_with_timeout, spawn, stop_process, toml_string

TOOL = os.path.join(BUILD_DIR, "test", "moat-bms-tool")
PLUGINS = os.path.join(BUILD_DIR, "plugins")
# The moat-bms plugin's link state service for the instance [moat-bms].
LINK_SERVICE = "org.m_o_a_t.bms.moat_bms"
# The sim plugin's /Sim/MoatBms paths for the instance [sim].
SIM_SERVICE = "org.m_o_a_t.sim.sim"


class BmsSim:
    """build/test/moat-bms-tool sim with its command channel on stdin."""

    def __init__(self, link, *args, log=None):
        self.link = link
        self.log_path = log
        where = [] if "--unix" in args else ["--link", link]
        self.log_file = open(log, "w") if log else subprocess.DEVNULL
        self.proc = spawn([TOOL, "sim"] + where + list(args) + (["--verbose"] if log else []), stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=self.log_file, text=True)
        lines = [_readline_with_timeout(self.proc.stdout, 5.0) for _ in range(2)]
        if "ready\n" not in lines:
            self.stop()
            raise AssertionError(f"moat-bms-tool sim did not start: {lines!r}")

    def command(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        while True:
            answer = _readline_with_timeout(self.proc.stdout, 5.0)
            if answer is None or not answer.startswith(("pty ", "unix ")):
                break
        if answer is None or answer.strip() != "ok":
            raise AssertionError(f"sim command {line!r}: {answer!r}")

    def requests(self):
        """The paths the simulated controller received, in order (from its log)."""
        with open(self.log_path) as f:
            return [l.split("request ", 1)[1].split()[1] for l in f if "] request " in l]

    def stop(self):
        if self.log_path:
            self.log_file.close()
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        stop_process(self.proc)


class MoatBmsHost(HostTestCase):
    def setUp(self):
        super().setUp()
        self.start_bus()
        self.link = os.path.join(self.tmp, "ttyBMS")
        self.sim = BmsSim(self.link, "--noise", "5", log=os.path.join(self.tmp, "sim.log"))
        self.addCleanup(self.sim.stop)
        config = self.write_config(f"""
            [moat-bms]
            device = {toml_string(self.link)}
            backoff_initial_s = 0.5
            backoff_max_s = 2
            rpc_timeout_s = 1
            """, plugin_dir=PLUGINS)
        self.host = self.start_host(config)
        self.host.wait_for_in_order([r"\[moat-bms\].*link up on " + self.link, r"\[moat-bms\].*ring: 16 modules"], 15.0)

    def test_session_order_in_the_simulators_log(self):
        self.host.wait_for(r"\[moat-bms\].*ring: 16 modules", 10.0)
        req = self.wait_until("the info long poll in the simulator's log",
                              lambda: (lambda r: r if "batt.info" in r[10:] else None)(self.sim.requests()), 10.0, self.host)
        self.assertEqual(req[:3], ["sys.cfg", "sys.test", "sys.is_up"], req)
        # Then the energy left over (info with reset), the battery's start-up
        # sequence on the ring (size, Identify, balance levels, settings, PID),
        # the first keepalive and the info long poll.
        self.assertEqual(req[3:10], ["batt.info"] + ["ser.send"] * 5 + ["batt.live"], req)
        self.assertIn("batt.info", req[10:])

    def test_console_lines_are_logged(self):
        self.host.wait_for(r"\[moat-bms\].*C: (RELAY 1 Check OK|DLY 10000|UL 41\.2)", 10.0)

    def test_silent_device_ends_the_session_and_the_link_comes_back(self):
        since = self.host.mark()
        self.sim.command("mute 1")
        # A pending call (the info long poll after poll.t x 14 = 3.5 s, or a ring request after 1 s) times out first.
        self.host.wait_for(r"\[moat-bms\].*link down: [a-z.]+: no reply within [0-9.]+ s; reconnecting in 0\.5 s", 10.0, since)
        # While muted every new session times out in its config fetch: the delay grows.
        self.host.wait_for(r"reconnecting in 0\.7 s", 10.0, since)
        self.sim.command("mute 0")
        self.host.wait_for(r"\[moat-bms\].*link state: up \(session 2\)", 15.0, since)

    def test_end_of_file_and_a_new_pty(self):
        since = self.host.mark()
        self.sim.command("eof")  # seen by a read (end of file), or by a write first
        self.host.wait_for_in_order([r"link down: .*(end of file|(read|write): (Broken pipe|Input/output error|Connection reset))", r"link up on " + self.link], 15.0, since)

    def test_invalid_msgpack_resyncs(self):
        since = self.host.mark()
        self.sim.command("invalid 3")
        # Three resyncs (they may come in one burst: counted from one mark).
        self.wait_until("three resyncs", lambda: len(self.host.find_all(r"msgpack: .*\(resync on the next message\)",
                                                                         since)) >= 3, 10.0)
        # The session goes on: the counters on D-Bus move, the session does not end.
        self.wait_until("three decode errors on D-Bus", lambda: self.link_state().get("/Link/DecodeErrors", 0) >= 3, 10.0)
        after = self.host.mark()
        self.host.wait_for(r"\[moat-bms\] C: ", 15.0, after)  # later console text read by the same session
        self.assertEqual(self.link_state()["/Link/Session"], 1)
        self.assertIsNone(self.host.find(r"link down", since))

    def link_state(self):
        """The plugin's link state service read with python3-dbus."""
        import dbus
        bus = dbus.bus.BusConnection(self.bus.address)
        try:
            items = bus.call_blocking(LINK_SERVICE, "/", "com.victronenergy.BusItem", "GetItems", "", [])
            return {str(p): v["Value"] for p, v in items.items()}
        except dbus.exceptions.DBusException:
            return {}  # not on the bus (yet)
        finally:
            bus.close()

    def test_the_link_state_on_dbus(self):
        state = self.wait_until("the link up on D-Bus", lambda: self.link_state().get("/Link/Up") == 1, 10.0)
        self.assertEqual(self.link_state()["/Link/Session"], 1)
        self.assertEqual(self.link_state()["/Link/Reason"], "")
        since = self.host.mark()
        self.sim.command("mute 1")
        self.host.wait_for(r"\[moat-bms\].*link down: ", 10.0, since)
        s = self.wait_until("the link down on D-Bus", lambda: (lambda s: s if s.get("/Link/Up") == 0 else None)(self.link_state()), 10.0)
        self.assertIn("no reply", s["/Link/Reason"])
        self.assertGreaterEqual(s["/Link/Failures"], 1)
        self.sim.command("mute 0")
        self.wait_until("session 2 on D-Bus", lambda: self.link_state().get("/Link/Session") == 2 and self.link_state().get("/Link/Up") == 1, 15.0)
        # gdbus, an independent client, reads the same counters.
        out = subprocess.run(["gdbus", "call", "--address", self.bus.address, "--dest", LINK_SERVICE,
                              "--object-path", "/Link/Session", "--method", "com.victronenergy.BusItem.GetValue"],
                             capture_output=True, text=True, timeout=10)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertRegex(out.stdout, r"<(int64 )?2>")
        # Decode errors are counted.
        self.sim.command("invalid 2")
        self.wait_until("decode errors on D-Bus", lambda: self.link_state().get("/Link/DecodeErrors", 0) >= 2, 10.0)

    def test_the_port_is_exclusive(self):
        p = subprocess.run([TOOL, "probe", "--device", self.link, "--timeout", "5"], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("port busy: " + self.link, p.stderr)


if __name__ == "__main__":
    unittest.main()


class MoatBmsWithTheSimPlugin(HostTestCase):
    """[sim.moat_bms] serves the controller inside the host; the plugin reads it."""

    def test_the_plugin_reads_the_sim_plugins_controller(self):
        self.start_bus()
        link = os.path.join(self.tmp, "ttyBMS")
        config = self.write_config(f"""
            [sim]
            [sim.moat_bms]
            enabled = true
            link = {toml_string("pty:" + link)}
            cells = 8

            [moat-bms]
            device = {toml_string(link)}
            """, plugin_dir=PLUGINS)
        host = self.start_host(config)
        host.wait_for_in_order([r"\[sim/moat-bms\] serving a simulated controller on " + link,
                                r"\[moat-bms\].*link up on " + link + r" \(8 cells",
                                r"\[moat-bms\].*ring: 8 modules"], 20.0)

    def test_the_sim_plugins_controller_on_dbus(self):
        """/Sim/MoatBms/...: faults written and observables read with python3-dbus."""
        import dbus
        self.start_bus()
        link = os.path.join(self.tmp, "ttyBMS")
        config = self.write_config(f"""
            [sim]
            [sim.moat_bms]
            enabled = true
            link = {toml_string("pty:" + link)}
            cells = 4

            [moat-bms]
            device = {toml_string(link)}
            backoff_initial_s = 0.5
            backoff_max_s = 1
            rpc_timeout_s = 1
            """, plugin_dir=PLUGINS)
        host = self.start_host(config)
        host.wait_for(r"\[moat-bms\].*ring: 4 modules", 20.0)
        bus = dbus.bus.BusConnection(self.bus.address)
        self.addCleanup(bus.close)

        def get(path, service=SIM_SERVICE):
            return bus.call_blocking(service, path, "com.victronenergy.BusItem", "GetValue", "", [])

        def set_(path, value):
            return bus.call_blocking(SIM_SERVICE, path, "com.victronenergy.BusItem", "SetValue", "v", [value])

        self.assertEqual(get("/Sim/MoatBms/Connected"), 1)
        first_pty = str(get("/Sim/MoatBms/Pty"))
        self.assertTrue(first_pty.startswith("/dev/pts/"), first_pty)
        self.assertEqual(os.path.realpath(link), first_pty)
        self.wait_until("ring packets counted", lambda: get("/Sim/MoatBms/Ring/Packets") > 0, 10.0)
        self.assertAlmostEqual(float(get("/Sim/MoatBms/Cell/0/Voltage")), 3.3, places=2)
        # A true cell voltage overridden.
        self.assertEqual(set_("/Sim/MoatBms/Cell/2/Voltage", dbus.Double(3.61)), 0)
        self.assertAlmostEqual(float(get("/Sim/MoatBms/Cell/2/Voltage")), 3.61, places=3)
        # A silent device: the link goes down, and comes back when it speaks again.
        since = host.mark()
        self.assertEqual(set_("/Sim/MoatBms/Mute", dbus.Int32(1)), 0)
        host.wait_for(r"\[moat-bms\].*link down: .*no reply", 15.0, since)
        self.wait_until("link down on D-Bus", lambda: get("/Link/Up", LINK_SERVICE) == 0, 10.0)
        self.assertEqual(set_("/Sim/MoatBms/Mute", dbus.Int32(0)), 0)
        host.wait_for(r"\[moat-bms\].*link state: up \(session 2\)", 15.0, since)
        # A hard reset: a new pty behind the same symlink, a fresh controller.
        since = host.mark()
        self.assertEqual(set_("/Sim/MoatBms/Reset", dbus.Int32(2)), 0)
        self.wait_until("a new pty", lambda: str(get("/Sim/MoatBms/Pty")) not in ("", first_pty), 10.0)
        host.wait_for(r"\[moat-bms\].*link state: up \(session 3\)", 20.0, since)
        self.assertEqual(os.path.realpath(link), str(get("/Sim/MoatBms/Pty")))
        self.assertEqual(get("/Link/Session", LINK_SERVICE), 3)

    def test_the_plugin_reads_the_sim_plugins_controller_on_a_socket(self):
        self.start_bus()
        path = os.path.join(self.tmp, "bms.sock")
        config = self.write_config(f"""
            [sim]
            [sim.moat_bms]
            enabled = true
            link = {toml_string("unix:" + path)}
            cells = 3

            [moat-bms]
            socket = {toml_string(path)}
            """, plugin_dir=PLUGINS)
        host = self.start_host(config)
        host.wait_for_in_order([r"\[moat-bms\].*link up on " + path + r" \(3 cells",
                                r"\[moat-bms\].*ring: 3 modules"], 20.0)


class MoatBmsOnASocket(HostTestCase):
    """socket = PATH: plain msgpack to the simulator's Unix socket."""

    def test_socket_session_and_probe(self):
        self.start_bus()
        path = os.path.join(self.tmp, "bms.sock")
        sim = BmsSim(path, "--unix", path, "--cells", "4")
        self.addCleanup(sim.stop)
        # The probe first (one connection at a time), then the host.
        p = subprocess.run([TOOL, "probe", "--socket", path, "--json", "--timeout", "20"], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn('"hops":4', p.stdout)
        config = self.write_config(f"""
            [moat-bms]
            socket = {toml_string(path)}
            """, plugin_dir=PLUGINS)
        host = self.start_host(config)
        host.wait_for_in_order([r"\[moat-bms\].*link up on " + path + r" \(4 cells", r"\[moat-bms\].*ring: 4 modules"], 20.0)
        since = host.mark()
        sim.command("eof")  # the simulator drops the connection (seen by a read, or by a write first)
        host.wait_for_in_order([r"link down: .*(end of file|(read|write): (Broken pipe|Input/output error|Connection reset))", r"link up on " + path], 15.0, since)

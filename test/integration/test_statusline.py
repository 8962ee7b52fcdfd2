"""Integration tests of the statusline plugin and `moat-victron status`: the
real build/moat-victron on a private dbus-daemon, with Python publishers
(test/fixtures/venus_publisher.py) standing in for the solar chargers,
batteries, the Multi (vebus) and the system service. Expected lines are the
worked examples of the spec (shared/specs/statusline.md §6) or derived from
them by hand.

Run: cd test/integration && MOAT_BUILD_DIR=../../build MOAT_SOURCE_DIR=../.. python3 -m unittest -v test_statusline
"""

import json
import os
import re
import signal
import subprocess
import time
import unittest

from moattest import (BUILD_DIR, HOST, SOURCE_DIR, HostTestCase, _readline_with_timeout, dbus_python, run_host,
                      spawn, stop_process, toml_string)

PLUGINS = os.path.join(BUILD_DIR, "plugins")
PUBLISHER = os.path.join(SOURCE_DIR, "test", "fixtures", "venus_publisher.py")
LINE_SERVICE = "com.victronenergy.moat.statusline"
LINE_RX = r"INFO \[statusline\] (?!started|publishing|writing|finished|safe)(.*)$"

E1 = ("53.15+2.1V  Sol  2840W  52.5A <100  Bat  12.3A >-200.0<140.0  Inv -40.2A  "
      "-700: -5/816  -650: -1/339  -600:  3/618")
E2 = "27.61+.39V  Sol    66W   2.4A <  5  Bat   2.0A > -2.0\u226a  0.0  Inv  -0.3A    12:  2/ -2"


# --------------------------------------------------------------------------
# the stand-in services

def charger(suffix, voltage, current, link, power, instance, **extra):
    return dict(name=f"com.victronenergy.solarcharger.{suffix}",
                items={"/DeviceInstance": instance, "/Dc/0/Voltage": voltage, "/Dc/0/Current": current,
                       "/Link/ChargeCurrent": link, "/Yield/Power": power}, **extra)


def battery(suffix, voltage, current, max_chg, max_chg_v, max_dis, allow_chg, allow_dis, instance, **extra):
    return dict(name=f"com.victronenergy.battery.{suffix}",
                items={"/DeviceInstance": instance, "/Dc/0/Voltage": voltage, "/Dc/0/Current": current,
                       "/Info/MaxChargeCurrent": max_chg, "/Info/MaxChargeVoltage": max_chg_v,
                       "/Info/MaxDischargeCurrent": max_dis, "/Io/AllowToCharge": allow_chg,
                       "/Io/AllowToDischarge": allow_dis}, **extra)


def vebus(suffix, dc_current, phases, instance=276, **extra):
    """phases: [(setpoint, Multi's AC-in power), ...]"""
    items = {"/DeviceInstance": instance, "/Dc/0/Current": dc_current, "/Dc/0/Voltage": 53.0}
    for i, (setp, runp) in enumerate(phases, 1):
        items[f"/Hub4/L{i}/AcPowerSetpoint"] = setp
        items[f"/Ac/ActiveIn/L{i}/P"] = runp
    return dict(name=f"com.victronenergy.vebus.{suffix}", items=items, **extra)


def system(vebus_service, powers, **extra):
    """powers: the system's AC-in power per phase (their number is the phase count)."""
    items = {"/DeviceInstance": 0, "/VebusService": vebus_service, "/Ac/ActiveIn/NumberOfPhases": len(powers)}
    for i, p in enumerate(powers, 1):
        items[f"/Ac/ActiveIn/L{i}/Power"] = p
    return dict(name="com.victronenergy.system", items=items, **extra)


def e1_services(**extra):
    """The spec's E1: two chargers, one battery, three phases."""
    return [
        charger("ttyO1", 53.12, 30.4, 60.0, 1650, 0, **extra),
        charger("ttyO2", 53.18, 22.1, 40.0, 1190, 1, **extra),
        battery("socketcan_can0", 53.0, 12.3, 140.0, 55.2, 200.0, 1, 1, 512, **extra),
        vebus("ttyS4", -40.2, [(-700, -695.2), (-650, -648.9), (-600, -603.3)], **extra),
        system("com.victronenergy.vebus.ttyS4", [120.5, -310.0, 15.0], **extra),
    ]


def e2_services():
    """The spec's E2: one phase, charging blocked by the BMS."""
    return [
        charger("ttyO1", 27.61, 2.35, 5.0, 66, 0),
        battery("socketcan_can0", 27.5, 2.0, 0.0, 28.0, 2.0, 0, 1, 512),
        vebus("ttyS4", -0.3, [(12, 10.0)]),
        system("com.victronenergy.vebus.ttyS4", [8.0]),
    ]


class Publisher:
    """venus_publisher.py with some services, each on a connection of its own."""

    def __init__(self, address, services):
        exe = dbus_python()
        if not exe:
            raise unittest.SkipTest("no Python with python3-dbus and python3-gi")
        self.address = address
        self.proc = spawn([exe, PUBLISHER, address, json.dumps({"services": services})],
                          stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        line = _readline_with_timeout(self.proc.stdout, 20.0)
        if not line or line.strip() != "READY":
            self.stop()
            raise AssertionError(f"the publisher did not start (said {line!r})")

    def set(self, service, path, gvariant, how="prop"):
        """Publish a new value: `gvariant` in GVariant text ("<12.5>", "<-700>", "<'text'>")."""
        subprocess.run(["gdbus", "call", "--address", self.address, "--dest", service, "--object-path",
                        "/moat_test", "--method", "org.moat.test.Control.Set", path, gvariant, how],
                       check=True, stdout=subprocess.DEVNULL, timeout=10)

    def stop(self, sig=signal.SIGTERM):
        stop_process(self.proc, sig)
        if self.proc.stdout:
            self.proc.stdout.close()
            self.proc.stdout = None


def read_file(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return None


def file_versions(path, count, timeout, case):
    """The contents of the next `count` versions of the status file: each tick
    replaces it by a rename, so a new (inode, mtime) is a new tick."""
    seen, out = None, []
    try:
        st = os.stat(path)
        seen = (st.st_ino, st.st_mtime_ns)
    except FileNotFoundError:
        pass
    deadline = time.monotonic() + timeout
    while len(out) < count:
        try:
            with open(path, encoding="utf-8") as f:
                st = os.fstat(f.fileno())
                content = f.read()
            if (st.st_ino, st.st_mtime_ns) != seen:
                seen = (st.st_ino, st.st_mtime_ns)
                out.append(content)
                continue
        except FileNotFoundError:
            pass
        if time.monotonic() > deadline:
            case.fail(f"only {len(out)} of {count} new versions of {path} within {timeout} s: {out}")
        time.sleep(0.01)
    return out


def gdbus_get_line(address, service=LINE_SERVICE):
    """/StatusLine read with gdbus (GetValue); None when the call fails."""
    r = subprocess.run(["gdbus", "call", "--address", address, "--dest", service, "--object-path", "/StatusLine",
                        "--method", "com.victronenergy.BusItem.GetValue"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
    if r.returncode != 0:
        return None
    out = r.stdout.decode().strip()
    m = re.fullmatch(r"\(<'(.*)'>,\)", out)
    return m.group(1) if m else out


class StatusLineTest(HostTestCase):

    def publish(self, services):
        if self.bus is None:
            self.start_bus()
        p = Publisher(self.bus.address, services)
        self.addCleanup(p.stop)
        return p

    def start_statusline(self, **keys):
        """The host with one statusline instance (fast ticks unless given)."""
        values = {"interval": 0.2}
        values.update(keys)
        body = "[statusline]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in values.items())
        path = self.write_config(body, plugin_dir=PLUGINS)
        return self.start_host(path)

    def lines(self, host, since=0):
        return [m.group(1) for m in host.find_all(LINE_RX, since)]

    def wait_line(self, host, expected, timeout=5.0, since=0):
        """Wait for a status line equal to `expected` in the log; returns its arrival time."""
        _, t = host.wait_for(LINE_RX.replace("(.*)$", re.escape(expected) + "$"), timeout, since)
        return t

    def status_once(self, *extra, timeout=15.0):
        return run_host(["status", "--once", "--bus", self.bus.address] + list(extra), timeout=timeout)

    # -- the line, its outputs ---------------------------------------------

    def test_e1_in_the_log_the_file_and_on_dbus(self):
        self.publish(e1_services())
        path = os.path.join(self.tmp, "status.txt")
        h = self.start_statusline(file="status.txt")
        self.wait_line(h, E1)
        self.wait_until("the file holds E1", lambda: read_file(path) == E1 + "\n", 5, h)
        self.wait_until("/StatusLine is E1", lambda: gdbus_get_line(self.bus.address) == E1, 5, h)
        # a Venus service: the mandatory paths are there (MQTT needs /DeviceInstance)
        r = subprocess.run(["gdbus", "call", "--address", self.bus.address, "--dest", LINE_SERVICE,
                            "--object-path", "/DeviceInstance", "--method", "com.victronenergy.BusItem.GetValue"],
                           stdout=subprocess.PIPE, check=True, timeout=10)
        self.assertEqual(r.stdout.decode().strip(), "(<0>,)")
        self.assertFalse(os.path.exists(path + ".tmp"))
        # stopping removes the file and the service: nothing shows an old line as current
        h.signal(signal.SIGTERM)
        rc, _ = h.wait(5)
        self.assertEqual(rc, 0, h.describe())
        self.assertFalse(os.path.exists(path), "the file outlived the plugin")
        self.assertIsNone(gdbus_get_line(self.bus.address))

    def test_status_once_prints_the_same_line_as_the_plugin(self):
        self.publish(e1_services())
        h = self.start_statusline()
        self.wait_until("/StatusLine is E1", lambda: gdbus_get_line(self.bus.address) == E1, 5, h)
        rc, out, err = self.status_once()
        self.assertEqual((rc, out), (0, E1 + "\n"), err)
        self.assertEqual(err, "")

    def test_status_once_without_the_plugin(self):
        self.publish(e2_services())
        rc, out, err = self.status_once()
        self.assertEqual((rc, out), (0, E2 + "\n"), err)

    def test_status_once_without_a_system_service_exits_7(self):
        self.publish([charger("ttyO1", 27.61, 2.35, 5.0, 66, 0)])
        t = time.monotonic()
        rc, out, err = self.status_once("--wait", "0.5")
        self.assertEqual(rc, 7, err)
        self.assertEqual(out, "")
        self.assertIn("no com.victronenergy.system service", err)
        self.assertLess(time.monotonic() - t, 5)

    def test_status_prints_every_interval_until_interrupted(self):
        self.start_bus()
        self.publish(e2_services())
        p = spawn([HOST, "status", "--bus", self.bus.address, "--interval", "0.2"], stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self.addCleanup(p.stderr.close)
        self.addCleanup(p.stdout.close)
        self.addCleanup(stop_process, p, signal.SIGKILL)
        times = []
        for _ in range(11):
            line = _readline_with_timeout(p.stdout, 5.0)
            self.assertEqual(line, E2 + "\n")
            times.append(time.monotonic())
        p.send_signal(signal.SIGINT)
        self.assertEqual(p.wait(5), 0)
        # The rate between two observed lines: a single gap between receipt
        # times says more about this reader's scheduling than about the command.
        self.assertAlmostEqual((times[-1] - times[0]) / (len(times) - 1), 0.2, delta=0.05)

    def test_lines_come_at_the_configured_rate(self):
        # the chargers' power ramps, so every line differs (the log summarises repeats)
        services = e1_services(heartbeat=0.05)
        services[0]["ramp"] = ["/Yield/Power"]
        self.publish(services)
        h = self.start_statusline(interval=0.25)
        h.wait_for(LINE_RX, 5)
        start = h.mark()
        # The rate between two observed lines, ten intervals apart (not a count
        # after a sleep of the test's, nor single gaps between receipt times).
        times = h.wait_for_count(LINE_RX, 11, 5, since=start)
        self.assertAlmostEqual((times[-1] - times[0]) / (len(times) - 1), 0.25, delta=0.05)
        self.assertTrue(all(re.search(r"Sol  \d{4}W", l) for l in self.lines(h, start)), h.log)

    def test_config_errors_name_file_line_and_key(self):
        path = self.write_config("[statusline]\ninterval = 0.0\n", plugin_dir=PLUGINS, bus="unix:path=/nonexistent")
        rc, _, err = run_host(["--check-config", path])
        self.assertEqual(rc, 3)
        self.assertIn(f"{path}:", err)
        self.assertRegex(err, re.escape(path) + r":\d+: \[statusline\] key 'interval'")
        # a file in a directory that does not exist: the plugin says so and is restarted
        self.start_bus()
        self.publish(e2_services())
        h = self.start_statusline(file="no/such/dir/status.txt")
        m, _ = h.wait_for(r"ERROR \[statusline\] failed: (.*)", 5)
        self.assertRegex(m.group(1), re.escape(self.tmp) + r"/moat.toml:\d+: \[statusline\] key 'file': "
                         r"the directory .*no/such/dir does not exist")

    # -- changes and degradation -------------------------------------------

    def test_a_published_change_shows_in_the_next_line(self):
        p = self.publish(e1_services())
        path = os.path.join(self.tmp, "status.txt")
        h = self.start_statusline(file="status.txt")
        self.wait_line(h, E1)
        mark = h.mark()
        p.set("com.victronenergy.vebus.ttyS4", "/Hub4/L1/AcPowerSetpoint", "<-800>")
        # The publisher sends the change before its reply to the set, on the
        # same connection; the daemon keeps that order, so once the host has
        # answered a call made after the set, it has the change: every line
        # from the next tick on (the file gets every tick) shows it.
        self.assertIsNotNone(gdbus_get_line(self.bus.address), "the host answers")
        changed = E1.replace("-700: -5/816", "-800:-105/816")
        self.assertEqual(file_versions(path, 1, 5.0, self), [changed + "\n"], h.log)
        self.wait_line(h, changed, 2, mark)
        # an invalid phase value: every block switches to the raw form (§4 layer 2)
        p.set("com.victronenergy.system", "/Ac/ActiveIn/L2/Power", "<@ai []>")
        self.wait_line(h, "53.15+2.1V  Sol  2840W  52.5A <100  Bat  12.3A >-200.0<140.0  Inv -40.2A "
                          "-800:120.5/-695.2 -650:None/-648.9 -600:15.0/-603.3", 2, mark)

    def test_vanished_vebus_degrades_to_the_fallback_form_then_recovers(self):
        self.start_bus()
        p = self.publish(e1_services()[:2] + e1_services()[2:3] + e1_services()[4:])
        multi = self.publish([e1_services()[3]])
        h = self.start_statusline()
        self.wait_line(h, E1)
        mark = h.mark()
        multi.stop(signal.SIGKILL)
        # no vebus: iv is None (§4 layer 3) and so are the phase values (layer 2)
        self.wait_line(h, "U=53.15 55.2  Sol I=52.5 100.0 2840  Bat I=12.3 140.0 200.0  Inv I=None "
                          "P=None:120.5/None None:-310.0/None None:15.0/None", 3, mark)
        mark = h.mark()
        self.publish([e1_services()[3]])
        self.wait_line(h, E1, 5, mark)

    def test_vanished_or_frozen_charger_gives_incomplete_data(self):
        self.start_bus()
        services = e1_services(heartbeat=0.1)
        rest = self.publish(services[1:])
        solar = self.publish(services[:1])
        path = os.path.join(self.tmp, "status.txt")
        h = self.start_statusline(max_age=1.0, file="status.txt")
        self.wait_line(h, E1)
        # A change the host must have received after t_set: the charger's last
        # update is no earlier, so no staleness may show before t_set + max_age.
        t_set = time.monotonic()
        solar.set("com.victronenergy.solarcharger.ttyO1", "/Yield/Power", "<1651>")
        e1_set = E1.replace("Sol  2840W", "Sol  2841W")
        self.wait_line(h, e1_set, 3)
        # frozen: still on the bus, but silent
        mark = h.mark()
        os.kill(solar.proc.pid, signal.SIGSTOP)
        try:
            t = self.wait_line(h, "Incomplete data", 4, mark)
            self.assertGreater(t - t_set, 1.0, h.log)
            # the line stays degraded while it is frozen: the file gets every
            # tick (the log summarises repeats), three ticks in a row say so
            self.assertEqual(file_versions(path, 3, 3.0, self), ["Incomplete data\n"] * 3)
            self.assertEqual(self.lines(h, mark)[-1], "Incomplete data")
        finally:
            os.kill(solar.proc.pid, signal.SIGCONT)
        mark = h.mark()
        self.wait_line(h, e1_set, 3, mark)
        # vanished: the line carries on with the other charger
        solar.stop(signal.SIGKILL)
        self.wait_line(h, "53.18+2.0V  Sol  1190W  22.1A < 40  Bat  12.3A >-200.0<140.0  Inv -40.2A  "
                          "-700: -5/816  -650: -1/339  -600:  3/618", 3, mark)
        # a frozen system service: Incomplete data too
        mark = h.mark()
        os.kill(rest.proc.pid, signal.SIGSTOP)
        try:
            self.wait_line(h, "Incomplete data", 4, mark)
        finally:
            os.kill(rest.proc.pid, signal.SIGCONT)

    def test_single_phase_and_blocked_charging(self):
        self.publish(e2_services())
        h = self.start_statusline()
        self.wait_line(h, E2)

    def test_several_batteries_are_summed_and_the_lowest_voltage_limit_counts(self):
        services = e1_services()
        services[2:3] = [battery("socketcan_can0", 53.0, 10.0, 100.0, 55.2, 150.0, 1, 1, 512),
                         battery("socketcan_can1", 53.1, 2.3, 40.0, 56.0, 50.0, 0, 1, 513)]
        self.publish(services)
        h = self.start_statusline()
        # 10.0 + 2.3 A, 100 + 40 A, 150 + 50 A, min(55.2, 56.0) V; one battery forbids charging
        self.wait_line(h, E1.replace(">-200.0<140.0", ">-200.0\u226a140.0"))

    def test_the_vebus_service_follows_system_vebusservice(self):
        services = e1_services()
        services.append(vebus("ttyS5", -7.5, [(-100, -90.0), (-100, -95.0), (-100, -99.0)], instance=277))
        p = self.publish(services)
        h = self.start_statusline()
        self.wait_line(h, E1)
        mark = h.mark()
        p.set("com.victronenergy.system", "/VebusService", "<'com.victronenergy.vebus.ttyS5'>")
        self.wait_line(h, "53.15+2.1V  Sol  2840W  52.5A <100  Bat  12.3A >-200.0<140.0  Inv  -7.5A  "
                          "-100:-10/210  -100: -5/-215  -100: -1/114", 3, mark)


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return toml_string(v)
    return repr(v)


if __name__ == "__main__":
    unittest.main()

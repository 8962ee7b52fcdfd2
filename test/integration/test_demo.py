"""The demo as a newcomer meets it: the commands it prints work as pasted
(with --bus demo), a mode change shows in the extended status line, two
demos at once use their own bus and their own meter port, and the bus
record goes when the demo ends."""

import os
import re
import signal
import subprocess
import time
import unittest

from moattest import HOST, HostProcess, HostTestCase, env_without_bus, run_host

TRY = re.compile(r"INFO \[host\]   (\S+moat-victron) (status|inverter) (.*)$", re.M)


class DemoTalkTest(HostTestCase):

    def setUp(self):
        super().setUp()
        # Each test has its own runtime directory: its demos' bus records are its own.
        self.env = env_without_bus()
        self.env["XDG_RUNTIME_DIR"] = self.tmp
        self.record = os.path.join(self.tmp, "moat-victron", "demo-bus")

    def start_demo(self, name):
        h = HostProcess(["--demo"], log_path=os.path.join(self.tmp, f"{name}.log"), env=self.env)
        self.addCleanup(h.stop)
        h.wait_for(r"\[inverter\] control interface", 20)
        return h

    def client(self, argv, timeout=20):
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=self.env)
        return p.returncode, p.stdout, p.stderr

    def test_the_printed_commands_work_as_pasted(self):
        h = self.start_demo("demo")
        commands = TRY.findall(h.log)
        self.assertEqual([c[1] for c in commands], ["status", "inverter", "inverter"], h.describe())
        for exe, _, _ in commands:
            self.assertEqual(os.path.realpath(exe), os.path.realpath(HOST))
        with open(self.record) as f:
            m = re.search(r"demo: private dbus-daemon \(pid \d+\) at (\S+)", h.log)
            self.assertEqual(f.read().strip(), m.group(1))
        # status --bus demo --extended (as printed, plus --once for a script)
        # The first lines after the start may still lack values: wait for a complete one.
        exe, _, rest = commands[0]
        line = re.compile(r"Inv .*  Grid +-?\d+W \(-?\d+/-?\d+/-?\d+\)  p_grid -50W\n$")
        deadline = time.monotonic() + 30
        while True:
            rc, out, err = self.client([exe, "status"] + rest.split() + ["--once"])
            self.assertEqual(rc, 0, err)
            if line.search(out):
                break
            self.assertLess(time.monotonic(), deadline, out)
            time.sleep(0.2)
        exe, _, rest = commands[1]
        rc, out, err = self.client([exe, "inverter"] + rest.split())
        self.assertEqual(rc, 0, err)
        self.assertIn("mode: p_grid", out)
        exe, _, rest = commands[2]
        self.assertEqual(rest, "--bus demo set-mode p_grid power=-200")
        # The lock-out after the start may refuse it at first: wait until the controller takes it.
        deadline = time.monotonic() + 30
        while True:
            rc, out, err = self.client([exe, "inverter"] + rest.split())
            if rc == 0:
                break
            self.assertIn("too_early", err)
            self.assertLess(time.monotonic(), deadline, err)
            time.sleep(0.5)
        self.assertEqual(out.strip(), "OK")
        # The change shows in the extended status line of the demo's own log.
        h.wait_for(r"\[statusline\] .*  Grid .*  p_grid -200W", 15, since=h.mark())
        h.signal(signal.SIGINT)
        rc, _ = h.wait(10)
        self.assertEqual(rc, 0, h.describe())
        self.assertFalse(os.path.exists(self.record), "the bus record must go with the demo")
        rc, out, err = self.client([HOST, "status", "--bus", "demo", "--once"])
        self.assertEqual(rc, 4, out + err)
        self.assertIn("no demo is running", err)

    def test_the_log_at_info_is_quiet(self):
        h = self.start_demo("quiet")
        h.wait_for(r"\[statusline\] .*  Grid +-?\d+W", 20)
        h.wait_for(r"\[sim/settings\] \d+ new settings \(the list at log level debug\)", 5)
        self.assertNotIn("Failed to set fd limit", h.log)  # the private bus's own warning
        self.assertNotIn("new setting /Settings/CGwacs/Hub4Mode", h.log)  # the start's 31: one summary line
        self.assertNotRegex(h.log, r"WARNING \[inverter\] not writing to the Multi")  # the start-up race
        self.assertNotIn("AcPowerSetpoint written by", h.log)  # the Multi's writes are debug detail
        self.assertEqual(len(re.findall(r"\[heartbeat\] beat", h.log)), 1)  # every 60 s

    def test_two_demos_use_their_own_bus_and_meter_port(self):
        a = self.start_demo("a")
        b = self.start_demo("b")
        port = re.compile(r"grid meter: simulated \S+ \(unit 1, serial \d+\) on Modbus TCP 127\.0\.0\.1:(\d+)")
        pa, pb = port.search(a.log).group(1), port.search(b.log).group(1)
        self.assertNotEqual(pa, pb)
        for h, p in ((a, pa), (b, pb)):
            # Each meters plugin reads its own demo's meter.
            h.wait_for(rf"\[grid-meter\] TCP 127\.0\.0\.1:{p}: ", 20)
            h.wait_for(r"\[grid-meter/unit1\] found Eastron SDM630", 20)
            self.assertNotIn("address already in use", h.log)
        # The record names the later demo; the first one's end leaves it alone.
        with open(self.record) as f:
            self.assertIn(re.search(r"private dbus-daemon \(pid \d+\) at (\S+)", b.log).group(1), f.read())
        a.signal(signal.SIGINT)
        self.assertEqual(a.wait(10)[0], 0, a.describe())
        self.assertTrue(os.path.exists(self.record))

    def test_demo_and_check_config_contradict(self):
        rc, out, err = run_host(["--demo", "--check-config", "x.toml"], env=self.env)
        self.assertEqual(rc, 2, out + err)
        self.assertIn("--demo and --check-config contradict each other", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)

"""The MoaT BMS in the demo, as the README shows it: a copy of
config/demo.toml with the README's two tables appended; the system selects
com.victronenergy.battery.batt; killing the simulated cell ring with gdbus
drops the limits to 0 within the stale-cell deadline, and they come back."""

import os
import subprocess
import time
import unittest

from moattest import SOURCE_DIR, HostProcess, HostTestCase, env_without_bus

BATTERY = "com.victronenergy.battery.batt"


class MoatBmsDemoTest(HostTestCase):

    def setUp(self):
        super().setUp()
        self.env = env_without_bus()
        self.env["XDG_RUNTIME_DIR"] = self.tmp
        readme = open(os.path.join(SOURCE_DIR, "README.md")).read()
        tables = readme.split("    [sim.moat_bms]\n", 1)[1].split("\n\n", 2)
        tables = "[sim.moat_bms]\n" + tables[0] + "\n\n" + tables[1] + "\n"
        config = os.path.join(self.tmp, "demo.toml")
        with open(config, "w") as f:
            f.write(open(os.path.join(SOURCE_DIR, "config", "demo.toml")).read() + "\n" + tables.replace("\n    ", "\n"))
        self.host = HostProcess(["--demo", "--config", config], log_path=os.path.join(self.tmp, "demo.log"), env=self.env)
        self.addCleanup(self.host.stop)
        self.host.wait_for(r"com\.victronenergy\.battery\.batt registered", 40)
        with open(os.path.join(self.tmp, "moat-victron", "demo-bus")) as f:
            self.bus_address = f.read().strip()

    def gdbus(self, dest, path, method, *args):
        p = subprocess.run(["gdbus", "call", "--address", self.bus_address, "--dest", dest, "--object-path", path,
                            "--method", method] + list(args), capture_output=True, text=True, timeout=20, env=self.env)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout.strip()

    def text(self, path):
        return self.gdbus(BATTERY, path, "com.victronenergy.BusItem.GetText")

    def test_the_system_runs_on_the_bms_and_a_dead_ring_drops_the_limits(self):
        self.assertEqual(self.gdbus("com.victronenergy.system", "/Dc/Battery/BatteryService",
                                    "com.victronenergy.BusItem.GetValue"), f"(<'{BATTERY}'>,)")
        self.wait_until("limits above 0", lambda: self.text("/Info/MaxChargeCurrent") not in ("('0.00 A',)", "('---',)"),
                        20, self.host)
        since = time.monotonic()
        self.gdbus("org.m_o_a_t.sim.sim", "/Sim/MoatBms/Dead", "com.victronenergy.BusItem.SetValue", "<1>")
        self.wait_until("the charge limit at 0", lambda: self.text("/Info/MaxChargeCurrent") == "('0.00 A',)", 20, self.host)
        self.assertEqual(self.text("/Info/MaxDischargeCurrent"), "('0.00 A',)")
        self.assertLessEqual(time.monotonic() - since, 16.0)
        self.gdbus("org.m_o_a_t.sim.sim", "/Sim/MoatBms/Dead", "com.victronenergy.BusItem.SetValue", "<0>")
        self.wait_until("limits back", lambda: self.text("/Info/MaxChargeCurrent") != "('0.00 A',)", 40, self.host)


if __name__ == "__main__":
    unittest.main()

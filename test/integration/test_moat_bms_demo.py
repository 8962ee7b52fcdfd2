"""The MoaT BMS in the demo, as the README shows it: `moat-victron --demo`
on config/demo.toml; the system selects com.victronenergy.battery.batt and
the status line shows its limits; then the README's shell commands, run with
bash as they stand (the bus address from the runtime directory, gdbus): the
limits, the simulated cell ring killed, the limits at 0 and both directions
forbidden within the stale-cell deadline, the ring back, the limits back."""

import os
import re
import subprocess
import sys
import time
import unittest

from moattest import SOURCE_DIR, HostProcess, HostTestCase, env_without_bus

BATTERY = "com.victronenergy.battery.batt"
CURRENTS = ("/Info/MaxChargeCurrent", "/Info/MaxDischargeCurrent")
ALLOWED = ("/Io/AllowToCharge", "/Io/AllowToDischarge")


def readme_commands():
    """The README's demo commands: the set-up (up to the end of the function)
    and each further command (continuation lines joined)."""
    with open(os.path.join(SOURCE_DIR, "README.md")) as f:
        readme = f.read()
    block = "    BUS=$(cat" + readme.split("    BUS=$(cat", 1)[1].split("\n\n", 1)[0]
    lines = [l[4:] for l in block.split("\n")]
    end = lines.index("}") + 1
    steps, current = [], ""
    for l in lines[end:]:
        current += l + "\n"
        if not l.endswith("\\"):
            steps.append(current)
            current = ""
    return "\n".join(lines[:end]) + "\n", steps


class MoatBmsDemoTest(HostTestCase):

    def setUp(self):
        super().setUp()
        self.env = env_without_bus()
        self.env["XDG_RUNTIME_DIR"] = self.tmp
        config = os.path.join(SOURCE_DIR, "config", "demo.toml")
        self.host = HostProcess(["--demo", "--config", config], log_path=os.path.join(self.tmp, "demo.log"), env=self.env)
        self.addCleanup(self.host.stop)
        self.host.wait_for(r"com\.victronenergy\.battery\.batt registered", 40)
        with open(os.path.join(self.tmp, "moat-victron", "demo-bus")) as f:
            self.bus_address = f.read().strip()
        self.setup, self.steps = readme_commands()

    def gdbus(self, dest, path, method, *args):
        p = subprocess.run(["gdbus", "call", "--address", self.bus_address, "--dest", dest, "--object-path", path,
                            "--method", method] + list(args), capture_output=True, text=True, timeout=20, env=self.env)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout.strip()

    def run_step(self, step):
        p = subprocess.run(["bash", "-c", self.setup + step], capture_output=True, text=True, timeout=60, env=self.env)
        self.assertEqual(p.returncode, 0, f"{step}: {p.stderr}")
        return p.stdout

    def limits(self, step):
        """What the README's `limits` prints: path -> text."""
        out = {}
        for line in self.run_step(step).splitlines():
            m = re.fullmatch(r"(\S+) \('(.*)',\)", line)
            self.assertTrue(m, f"limits prints {line!r}")
            out[m.group(1)] = m.group(2)
        self.assertEqual(set(out), set(CURRENTS + ALLOWED))
        return out

    def test_the_system_runs_on_the_bms_and_the_readme_kills_the_ring(self):
        self.assertEqual(self.gdbus("com.victronenergy.system", "/Dc/Battery/BatteryService",
                                    "com.victronenergy.BusItem.GetValue"), f"(<'{BATTERY}'>,)")
        self.assertEqual([s.split()[0] for s in self.steps], ["limits", "gdbus", "limits", "gdbus", "limits"])
        show, kill, watch, revive, watch_again = self.steps

        def allowed(l):
            return all(l[p] == "1" for p in ALLOWED) and all(l[p] != "0.00 A" for p in CURRENTS)

        def forbidden(l):
            return all(l[p] == "0" for p in ALLOWED) and all(l[p] == "0.00 A" for p in CURRENTS)

        self.wait_until("the limits above 0", lambda: allowed(self.limits(show)), 20, self.host)
        # The status line runs on the BMS's limits (CCL/DCL of the battery it follows).
        self.host.wait_for(r"INFO \[statusline\] ", 10)
        since = time.monotonic()
        self.run_step(kill)
        got = self.wait_until("the README's limits at 0", lambda: (lambda l: l if forbidden(l) else None)(self.limits(watch)),
                              30, self.host)
        took = time.monotonic() - since
        print(f"\n  [demo] ring killed -> limits 0 and both directions forbidden: {took:.2f} s (stale_cell_s 15)", file=sys.stderr)
        self.assertLessEqual(took, 15.0 + 2.0, got)
        self.run_step(revive)
        self.wait_until("the README's limits back", lambda: allowed(self.limits(watch_again)), 40, self.host)
        # Ctrl-C: a clean end saves the energy record, and the run's own directory
        # (@RUN_DIR@: the pty's symlink, the record) goes with the host.
        link = self.host.find(r"serving a simulated controller on (\S+)").group(1)
        run_dir = os.path.dirname(link)
        self.assertRegex(os.path.basename(run_dir), r"^moat-victron-run-")
        self.assertEqual(os.path.dirname(run_dir), self.tmp, "made under $XDG_RUNTIME_DIR")
        self.host.signal(2)
        self.assertEqual(self.host.wait(10)[0], 0, self.host.describe())
        self.assertNotIn("energy record not saved", self.host.log)
        self.assertFalse(os.path.lexists(run_dir), "the demo leaves nothing behind")

if __name__ == "__main__":
    unittest.main()

"""The moat-bms battery's balancing, configuration changes on the controller
and GetWork(clear) through the simulator (build/test/moat-bms-tool sim on a
pty; the set-up of test_moat_bms_battery).

Balancing: three cells are pushed above the start level in the simulator;
with the limit of cells balancing at once lowered to 2 on the controller
(`cfg` on the simulator's stdin: its mplex.cfg notification), the two highest
get a balance level, the third none; back at the others' voltage, their levels
are cleared. Seen through org.m_o_a_t.bms GetBalanceVoltage (python3-dbus), the
plugin's log and the simulated modules' levels (the simulator's log).

Configuration: a TOML override (`balance.r`) is logged as differing from the
controller's copy at the session start, and again when the controller reports
a change of that key: the override still wins. A change that breaks the
configuration ends the session: the safe state at once, a retry in 30 s. A
new keepalive period starts a new session that uses it.

GetWork(true, true) through gdbus starts the counters over and leaves the SoC
as it was (the work record's energy content is kept).
"""

import re
import subprocess
import unittest

from test_moat_bms_battery import BATTERY, BatteryHost

HIGH = {3: 3.56, 7: 3.55, 11: 3.54}  # all above the start level 3.50 (min 3.45 + d 0.05)


class Balancing(BatteryHost):
    EXTRA = """
            [moat-bms.config.batt.cell.balance]
            r = 0.1
            """

    def sim_levels(self, change):
        """Modules whose balance level changed as `change` says, from the simulator's log."""
        with open(self.sim.log_path) as f:
            return [int(m.group(1)) for m in (re.search(r"module (\d+): balance level raw \d+ (-> \d+)$", l.rstrip())
                                               for l in f) if m and re.search(change, m.group(2))]

    def levels(self):
        return {i: float(self.bms(f"/bms/0/{i}", "GetBalanceVoltage")) for i in range(self.CELLS)}

    def test_the_highest_cells_balance_within_the_limit_and_stop_below(self):
        # The override differs from the controller's 0.05: logged at the session start.
        self.host.wait_for(r"TOML override wins: batt\.cell\.balance\.r: controller 0\.05, TOML 0\.1\b", 5)
        self.assertEqual(self.levels(), {i: 0.0 for i in range(self.CELLS)})

        # A change on the controller (mplex.cfg) reaches the model: n 4 -> 2.
        mark = self.host.mark()
        self.sim.command("cfg batt.cell.balance.n 2")
        self.host.wait_for(r"configuration change \(mplex\.cfg\): \{batt: \{cell: \{balance: \{n: 2\}\}\}\}", 10, since=mark)
        # One of the overridden key: the TOML value stays in force, and says so.
        mark = self.host.mark()
        self.sim.command("cfg batt.cell.balance.r 0.2")
        self.host.wait_for(r"TOML override wins: batt\.cell\.balance\.r: controller 0\.2, TOML 0\.1\b", 10, since=mark)

        mark = self.host.mark()
        for cell, volts in HIGH.items():
            self.sim.command(f"voltage {cell} {volts}")
        got = self.wait_until("two cells balancing", lambda: (lambda l: l if sum(v > 0 for v in l.values()) >= 2 else None)(self.levels()),
                              60, self.host)
        # The two highest, down to the target max(lowest cell, balance.min) = 3.45 V; not the third (n = 2).
        self.assertEqual({i for i, v in got.items() if v > 0}, {3, 7}, got)
        self.assertAlmostEqual(got[3], 3.45, places=6)
        self.assertAlmostEqual(got[7], 3.45, places=6)
        self.host.wait_for(r"balancing: cell 3 \(3\.5\d\d V\) down to 3\.450 V \(cells from 3\.500 V start, at most 2 at once\)", 5, since=mark)
        self.assertFalse(self.host.find(r"balancing: cell 11 .*down to", since=mark), "n = 2: the third waits")
        # The simulated modules got the levels (the simulator's own record).
        set_levels = self.wait_until("the levels in the simulator", lambda: (lambda l: l if len(l) >= 2 else None)(
            self.sim_levels(r"-> [1-9]\d*$")), 10, self.host)
        self.assertEqual(sorted(set_levels), [3, 7], set_levels)

        # Back below: the spread is under 2d, every level is cleared.
        mark = self.host.mark()
        for cell in HIGH:
            self.sim.command(f"voltage {cell} 3.30")
        self.wait_until("no cell balancing", lambda: all(v == 0 for v in self.levels().values()), 60, self.host)
        for cell in (3, 7):
            self.host.wait_for(rf"balancing: cell {cell} \(3\.[23]\d\d V\) stopped", 5, since=mark)
        self.assertEqual(sorted(self.wait_until("the levels cleared in the simulator", lambda: (lambda l: l if len(l) >= 2 else None)(
            self.sim_levels(r"-> 0$")), 10, self.host)), [3, 7])


class BadChangeOnTheController(BatteryHost):
    def test_a_bad_change_ends_the_session_with_the_safe_state(self):
        since = self.mark()
        self.sim.command("cfg batt.cell.balance.d -0.1")
        self.wait_for_s(since, "a bad configuration change on the controller", 1.0)
        self.host.wait_for(r"balance\.d.*must be above 0 V.*retrying in 30 s", 5)


class KeepaliveChangeOnTheController(BatteryHost):
    def test_a_new_poll_k_starts_a_new_session_with_the_new_keepalive(self):
        mark = self.host.mark()
        self.sim.command("cfg batt.poll.k 10000")
        self.host.wait_for_in_order([r"poll\.\* changed on the controller: the start-up runs again",
                                     r"link up on .* keepalive every 4\.76 s"], 15, since=mark)
        self.recovers()


class ClearingTheCounters(BatteryHost):
    def test_get_work_clear_keeps_the_soc(self):
        soc = float(self.items()["/Soc"])
        before = self.bms("/bms/0", "GetWork", False, False, signature="bb")
        out = subprocess.run(["gdbus", "call", "--address", self.bus.address, "--dest", BATTERY, "--object-path", "/bms/0",
                              "--method", "org.m_o_a_t.bms.GetWork", "true", "true"], capture_output=True, text=True, timeout=10)
        self.assertEqual(out.returncode, 0, out.stderr)
        after = self.bms("/bms/0", "GetWork", False, False, signature="bb")
        self.assertLessEqual(float(after["t"]), float(before["t"]))
        self.assertEqual(float(after["sum"]), float(before["sum"]), "the energy content is kept")
        self.assertEqual(float(self.items()["/Soc"]), soc, "the SoC does not move on a clear")


if __name__ == "__main__":
    unittest.main()

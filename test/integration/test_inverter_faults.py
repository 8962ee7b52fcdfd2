"""The inverter plugin's safety when things go wrong inside it or in the
battery: an exception anywhere in the plugin (fault points, MOAT_FAULT) and
the low-battery clamp in every mode (§18.5), under the real host against the
fake ESS services of test_inverter.py, every write recorded by the fake vebus."""

import os
import time
import unittest

import moattest
from test_inverter import InverterTestCase, SYSTEM, BATTERY


# Every mode, configured to discharge the battery (the fake system: 300 W load
# and 300 W import per phase, 3 phases, SoC 50 %).
INVERTING = {
    "off": "power = 900",
    "idle": "power = 900",
    "p_grid": "power = 0",          # the inverter covers the 900 W load
    "p_inv": "power = 900",
    "i_batt": "current = 20",       # discharge 20 A
    "soc": "dest_soc = 0.0",        # above the target: grid power_out 0, the inverter covers the load
    "remote": "power_override = 900",
}


class TestLowBattery(InverterTestCase):
    """§18.5: in every mode the inverter power is clamped to <= 0 (setpoints
    >= 0: nothing fed from the battery) while the battery is low."""

    def start_mode(self, mode, **keys):
        return self.start(mode, extra=f"[inverter.modes.{mode}]\n{INVERTING[mode]}\n", **keys)

    def negative(self, since=0.0):
        return [w for w in self.writes(since) if w[2] < 0.0]

    def test_the_modes_discharge_when_the_battery_is_fine(self):
        # The other tests' premise: each mode above does invert.
        for mode in INVERTING:
            with self.subTest(mode=mode):
                t0 = time.monotonic()
                self.start_mode(mode)
                try:
                    self.wait_until(f"{mode} inverts on every phase",
                                    lambda: {k for _, k, _ in self.negative(t0)} == {1, 2, 3}, 5, self.host)
                finally:
                    self.host.stop()

    def test_a_low_battery_at_the_start_is_never_discharged(self):
        self.client.set(SYSTEM, "/Dc/Battery/Soc", 4.0)  # below soc_cutoff 0.05
        for mode in INVERTING:
            with self.subTest(mode=mode):
                t0 = time.monotonic()
                self.start_mode(mode)
                try:
                    self.host.wait_for(r"LOW_BATT.*SoC 0\.040 <= soc_cutoff 0\.050", timeout=5)
                    self.wait_until(f"{mode} wrote every phase",
                                    lambda: {k for _, k, _ in self.writes(t0)} == {1, 2, 3}, 5, self.host)
                    time.sleep(1.0)  # cycles and refreshes
                    self.assertEqual(self.negative(t0), [])
                    self.assertIn("SoC", self.client.state()["low_battery"])
                finally:
                    self.host.stop()

    def becomes_low(self, mode, make_low, why, **keys):
        self.start_mode(mode, **keys)
        self.wait_until("inverting", lambda: {k for _, k, _ in self.negative()} == {1, 2, 3}, 10, self.host)
        t0 = time.monotonic()
        make_low()
        self.host.wait_for(r"battery low \(" + why + r"\).*restarting the mode", timeout=2)
        self.wait_for_setpoints([0.0] * 3, since=t0, timeout=2)
        # The safe write: the first 0 W on every phase after the battery turned low.
        t_safe = self.first_on_every_phase(0.0, since=t0)
        self.assertLess(t_safe - t0, 1.0, "0 W within a second")
        time.sleep(1.5)  # refreshes (0.5 s) and, for closed-loop modes, cycles
        self.assertEqual(self.negative(t_safe), [], "nothing discharges the battery after the safe write")
        return t_safe

    def test_off_stops_discharging_when_the_battery_becomes_low_and_resumes_after_the_hold(self):
        # off computes once; the refresh would repeat -300 W forever.
        self.becomes_low("off", lambda: self.client.set(SYSTEM, "/Dc/Battery/Soc", 4.0), r"SoC 0\.040.*",
                         low_battery_hold=1.5)
        t1 = time.monotonic()
        self.client.set(SYSTEM, "/Dc/Battery/Soc", 50.0)
        self.host.wait_for(r"restarting mode off: battery no longer low", timeout=4)
        self.wait_for_setpoints([-300.0] * 3, since=t1, timeout=2)
        first = min(t for t, k, v in self.writes(t1) if v < 0.0)
        self.assertGreater(first - t1, 1.5 - 0.2, "not before low_battery_hold")

    def test_a_flapping_low_reading_does_not_restart_in_a_loop(self):
        self.start_mode("off", low_battery_hold=30.0)
        self.wait_until("inverting", lambda: {k for _, k, _ in self.negative()} == {1, 2, 3}, 10, self.host)
        t0 = time.monotonic()
        for i in range(6):  # SoC flaps across soc_cutoff every 0.25 s
            self.client.set(SYSTEM, "/Dc/Battery/Soc", 4.0 if i % 2 == 0 else 6.0)
            time.sleep(0.25)
        time.sleep(0.5)
        self.assertEqual(len(self.host.find_all(r"battery low \(")), 1, "one restart, not one per flap")
        self.assertEqual(self.host.find_all(r"restarting mode off"), [])
        self.assertEqual([w for w in self.writes(t0) if w[2] < 0.0 and w[0] > t0 + 1.0], [],
                         "the battery stays protected while it flaps")

    def test_idle_stops_discharging_before_its_next_cycle(self):
        self.becomes_low("idle", lambda: self.client.set(BATTERY, "/Io/AllowToDischarge", 0),
                         "the BMS does not allow discharging", idle_sleep=30.0)

    def test_a_closed_loop_mode_stops_discharging_before_its_loop_settles(self):
        # trigger_sleep 3 s: the settle loop alone would keep -300 W for several seconds.
        self.becomes_low("p_inv", lambda: self.client.set(BATTERY, "/Info/MaxDischargeCurrent", 0.0),
                         "the BMS's discharge current limit is 0", trigger_sleep=3.0, trigger_wait=0.5)


class TestCrash(InverterTestCase):
    """§18 "the plugin crashing": an exception anywhere in the plugin (a fault
    point, MOAT_FAULT) ends it; the host runs its safe state — 0 W on every
    phase, seen by the fake vebus — before it restarts it, and the restarted
    plugin resumes the configured mode."""

    RESTART = 1.0  # [host] restart_delay: the gap between the safe writes and the restart

    def crash(self, point, provoke=None):
        self.start("p_grid", fault=f"inverter:{point}",
                   host_keys=dict(restart_delay=self.RESTART, restart_max_delay=self.RESTART))
        self.host.wait_for(r"fault injection is on \(MOAT_FAULT\): inverter:" + point)
        self.wait_for_setpoints([-300.0] * 3)
        deadline = time.monotonic() + 10
        while provoke and not self.host.find(r"\[inverter\] failed: injected fault"):
            self.assertLess(time.monotonic(), deadline, f"{point} did not fail\n{self.host.describe()}")
            provoke()
        name = point.split("@")[0]
        failed = r"\[inverter\] failed: injected fault at inverter:" + name + r" \(pass"
        _, t_failed = self.host.wait_for(failed, timeout=10)
        # In this order: the failure, the safe state, the restart.
        self.host.wait_for_in_order([failed] + [r"\[inverter\] " + line for line in (
            r"safe setpoints \(stop\)", r"SET inverter 0 ∑ 0 0 0", r"safe state reached", r"restarting in 1 s",
            r"started \(inverter")], timeout=3)
        # The restarted plugin holds the grid again.
        after = self.wait_for_setpoints([-300.0] * 3, since=t_failed, timeout=5)
        writes = self.writes()
        first_after = min(t for t, _ in after.values())
        # The last setpoints the failed plugin wrote, then only the safe ones until the restart.
        before = [w for w in writes if w[0] < first_after and w[2] != 0.0]
        self.assertTrue(before, "setpoints were written before the failure")
        t_last = max(t for t, _, _ in before)
        safe = [w for w in writes if t_last < w[0] < first_after]
        self.assertEqual(sorted(k for _, k, _ in safe), [1, 2, 3], f"one safe write per phase: {safe}")
        self.assertTrue(all(v == 0.0 for _, _, v in safe), safe)
        t_safe = max(t for t, _, _ in safe)
        self.assertLess(t_safe - t_last, 2.0, "the safe setpoints follow the failure within 2 s")
        # They came before the restart: the restart delay separates them from the next write.
        self.assertGreater(first_after - t_safe, self.RESTART - 0.05)
        st = self.client.state()
        self.assertEqual(st["mode"][0], "p_grid")
        return st

    def test_failure_in_a_background_task(self):
        self.crash("i_batt_average@3")  # the 3rd pass: 2.2 s after the start

    def test_failure_in_the_input_guard(self):
        self.crash("guard@25")  # ~2.5 s after the start

    def test_failure_in_the_refresh_task(self):
        self.crash("refresh@20")

    def test_failure_in_the_mode_supervisor(self):
        # The supervisor runs when something changes: mode changes until it fails there.
        modes = iter(["p_inv", "p_grid"] * 10)
        def provoke():
            try:
                self.set_mode(next(modes), power=600.0)
            except Exception:
                pass  # the lock-out (0.5 s) or the plugin gone: try again
            time.sleep(0.6)
        self.crash("supervisor@4", provoke)

    def test_failure_between_two_phases_writes_ends_the_mode_at_0_w(self):
        # A write from the mode that fails after L1: the mode fails (§18.2) and
        # off writes 0 W on every phase; the plugin stays up, the error is kept.
        self.start("p_grid", fault="inverter:mode_write@3")
        self.host.wait_for(r"mode p_grid failed: injected fault at inverter:mode_write.*falling back to off at 0 W")
        self.wait_for_setpoints([0.0] * 3)  # the last write of every phase
        st = self.client.state()
        self.assertEqual(st["mode"][0], "off")
        self.assertIn("injected fault at inverter:mode_write", st["error"])
        self.assertIsNone(self.host.find(r"\[inverter\] failed:"))

    def test_a_malformed_fault_spec_is_a_usage_error(self):
        env = dict(os.environ, MOAT_FAULT="inverter")
        h = moattest.HostProcess(["--config", self.config("off")], env=env)
        self.addCleanup(h.stop)
        self.assertEqual(h.wait(5)[0], 2)
        self.assertIn("MOAT_FAULT: fault point 'inverter': no ':'", h.log)


if __name__ == "__main__":
    unittest.main()

"""The inverter's safe state is reported only when it was reached: every
phase is written in parallel with its own budget, and a phase that hangs or
refuses is reported as "not reached" (host log, GetState), never as reached.

Run: cd test/integration && MOAT_BUILD_DIR=../../build MOAT_SOURCE_DIR=../.. python3 -m unittest -v test_inverter_safe_state
"""

import signal
import time
import unittest

from test_inverter import SETTINGS, VEBUS, InverterTestCase


def setpoint(k):
    return f"/Hub4/L{k}/AcPowerSetpoint"


class TestSafeStateOutcome(InverterTestCase):
    def write_fault(self, phase, how):
        self.client.conn.call_blocking(VEBUS, "/moat_test", "org.moat.test.Control", "WriteFault", "ss",
                                       [setpoint(phase), how], timeout=5)

    def stop(self):
        t0 = time.monotonic()
        self.host.signal(signal.SIGTERM)
        rc, _ = self.host.wait(10)
        self.assertEqual(rc, 0, self.host.describe())
        return t0

    def test_a_hanging_l1_does_not_keep_l2_and_l3_from_0_w(self):
        self.start("p_grid", stop_write_timeout=1.0, host_keys={"stop_timeout": 3.0})
        self.wait_for_setpoints([-300.0] * 3)
        self.write_fault(1, "hang")
        t0 = self.stop()
        last = {k: (t, v) for t, k, v in self.writes(t0)}
        self.assertEqual(sorted(last), [2, 3], f"only L2 and L3 were written: {self.writes(t0)}")
        for k in (2, 3):
            self.assertEqual(last[k][1], 0.0)
            # written at once, not after L1's budget of 1 s
            self.assertLess(last[k][0] - t0, 1.0, self.host.log)
        self.assertRegex(self.host.log, r"ERROR \[inverter\] safe state NOT reached: L1 not confirmed: no reply "
                         r"within 1\.0 s")
        self.assertNotIn("safe state reached", self.host.log)

    def test_a_refused_phase_is_reported_as_not_reached(self):
        self.start("p_grid")
        self.wait_for_setpoints([-300.0] * 3)
        self.write_fault(2, "refuse:2")
        t0 = self.stop()
        self.assertEqual(sorted((k, v) for t, k, v in self.writes(t0)), [(1, 0.0), (3, 0.0)])
        self.assertIn(f"ERROR [inverter] safe state NOT reached: L2 refused by {VEBUS} (2)", self.host.log)
        self.assertNotIn("safe state reached", self.host.log)

    def test_all_phases_confirmed_is_reached(self):
        self.start("p_grid")
        self.wait_for_setpoints([-300.0] * 3)
        t0 = self.stop()
        self.assertEqual(sorted((k, v) for t, k, v in self.writes(t0)), [(1, 0.0), (2, 0.0), (3, 0.0)])
        self.assertIn("INFO [inverter] safe state reached", self.host.log)
        self.assertNotIn("NOT reached", self.host.log)

    def test_get_state_shows_a_safe_write_that_was_not_reached(self):
        self.start("p_grid", mode_lockout=0.0)
        self.wait_for_setpoints([-300.0] * 3)
        self.assertIsNone(self.client.state().get("safe_state"))
        self.write_fault(3, "refuse:2")
        self.client.set(SETTINGS, "/Settings/CGwacs/OvervoltageFeedIn", 1)  # the mode falls back: safe setpoints
        st = self.wait_until("GetState's safe_state", lambda: (lambda s: s if s.get("safe_state") else None)(
            self.client.state()), 5, self.host)
        self.assertEqual(st["safe_state"], f"not reached: L3 refused by {VEBUS} (2)")
        self.write_fault(3, "none")
        self.client.set(SETTINGS, "/Settings/CGwacs/OvervoltageFeedIn", 0)


if __name__ == "__main__":
    unittest.main()

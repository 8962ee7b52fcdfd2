"""The soak's invariant checks on made-up records: each check must fail on
the violation it exists for, and pass on the same run without it."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import checks  # noqa: E402
from schedule import Fault, plan  # noqa: E402

VEBUS = "com.victronenergy.vebus.sim"
H = 5.0


def write(t, phase, v):
    return {"k": "set", "t": t, "dst": VEBUS, "path": f"/Hub4/L{phase}/AcPowerSetpoint", "v": v, "snd": ":1.3"}


def grid(t, v):
    return {"k": "val", "t": t, "svc": "com.victronenergy.grid.cg_1", "path": "/Ac/Power", "v": v}


def context(records, events=(), faults=(), host_lines=(), modes=((0.0, "p_grid", {"power": -50.0}),)):
    return checks.Context(records=list(records), events=list(events), faults=list(faults),
                          host_lines=list(host_lines), mode_timeline=list(modes), t0=0.0, H=H, hours=8,
                          exit_rc=0, early=False, t_term=1000.0)


def frozen_battery(index=0):
    return Fault(index, "service_freeze", 4.1, 4.8, 7.0, {"service": "battery", "fault": 1})


def fault_events(f):
    return [{"what": "fault-begin", "index": f.index, "t": f.start_h * H},
            {"what": "fault-end", "index": f.index, "t": f.end_h * H}]


class SafeSetpoints(unittest.TestCase):

    def test_zero_on_every_phase_in_time_passes_and_late_fails(self):
        f = frozen_battery()
        t = f.start_h * H
        good = [write(t + 1.7, k, 0.0) for k in (1, 2, 3)]
        self.assertTrue(checks.check_safe_setpoints(context(good, fault_events(f), [f])).ok)
        late = [write(t + 2.5, k, 0.0) for k in (1, 2, 3)]
        r = checks.check_safe_setpoints(context(late, fault_events(f), [f]))
        self.assertFalse(r.ok)
        self.assertIn("no 0 W", r.detail)
        two_phases = [write(t + 1.0, k, 0.0) for k in (1, 2)]
        self.assertFalse(checks.check_safe_setpoints(context(two_phases, fault_events(f), [f])).ok)


class NoDischarge(unittest.TestCase):

    def flags(self):
        return [{"k": "val", "t": 10.0, "svc": "com.victronenergy.battery.sim", "path": "/Io/AllowToDischarge", "v": 0},
                {"k": "val", "t": 20.0, "svc": "com.victronenergy.battery.sim", "path": "/Io/AllowToDischarge", "v": 1}]

    def test_an_inverting_write_while_disallowed_fails(self):
        ok = self.flags() + [write(10.2, 1, -300.0), write(11.0, 1, 0.0), write(21.0, 1, -300.0)]
        self.assertTrue(checks.check_no_discharge(context(ok)).ok, "before the grace and after the span")
        bad = self.flags() + [write(12.0, 2, -120.0)]
        self.assertFalse(checks.check_no_discharge(context(bad)).ok)


class Hub4Mode(unittest.TestCase):

    def events(self):
        return [{"what": "set", "t": 10.0, "path": "/Settings/CGwacs/Hub4Mode", "value": 1.0},
                {"what": "set", "t": 14.0, "path": "/Settings/CGwacs/Hub4Mode", "value": 3.0}]

    def test_a_write_while_not_3_fails(self):
        self.assertTrue(checks.check_no_write_without_hub4mode_3(context([write(10.1, 1, -5.0)], self.events())).ok)
        r = checks.check_no_write_without_hub4mode_3(context([write(12.0, 1, -5.0)], self.events()))
        self.assertFalse(r.ok)
        self.assertIn("1 write(s)", r.detail)


class Recovery(unittest.TestCase):

    def test_the_grid_must_come_back_into_the_band(self):
        f = frozen_battery()
        end = f.end_h * H
        back = [grid(end + 1 + i, -50.0 + 20 * (-1) ** i) for i in range(4)]
        svc = [{"k": "val", "t": end + 1, "svc": "com.victronenergy.battery.sim", "path": "/Soc", "v": 60.0}]
        r = checks.check_recovery(context(back + svc, fault_events(f), [f]))
        self.assertTrue(r.ok, r.detail)
        away = [grid(end + 1 + i, 400.0) for i in range(8)]
        self.assertFalse(checks.check_recovery(context(away + svc, fault_events(f), [f])).ok)
        once = [grid(end + 1, -50.0), grid(end + 2, 400.0)]
        self.assertFalse(checks.check_recovery(context(once + svc, fault_events(f), [f])).ok, "one sample is not held")
        self.assertFalse(checks.check_recovery(context(back, fault_events(f), [f])).ok, "the service never came back")


class Limits(unittest.TestCase):

    def test_a_setpoint_beyond_the_phase_limit_fails(self):
        self.assertTrue(checks.check_limits(context([write(1, 1, -4500.0)])).ok)
        self.assertFalse(checks.check_limits(context([write(1, 1, -4600.0)])).ok)


class Schedule(unittest.TestCase):

    def test_a_week_has_every_kind_and_faults_stay_inside_their_blocks(self):
        modes, faults = plan(168, 1)
        self.assertEqual(len([m for m in modes]), 168)
        kinds = {f.kind for f in faults}
        from schedule import FAULT_KINDS
        self.assertEqual(kinds, set(FAULT_KINDS))
        for f in faults:
            block = int(f.start_h) // 4 * 4
            self.assertLess(f.end_h, block + 1, f)
            self.assertEqual(f.judge_until_h, block + 3)
        self.assertEqual(plan(168, 1)[1][5].kind, faults[5].kind, "the same seed, the same plan")


if __name__ == "__main__":
    unittest.main(verbosity=2)

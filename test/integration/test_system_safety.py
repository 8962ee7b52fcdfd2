"""The inverter controller's safety on the simulation (inverter-control.md
§18): every fault is injected through the simulation (/Sim/Fault, /Sim/Soc,
its settings service) or the host (MOAT_FAULT), and an independent
python3-dbus client reads what the simulated Multi is told and does."""

import os
import re
import time
import unittest

import dbus

from test_system import BATTERY, INVERTER, SETTINGS, SIM, SYSTEM, VEBUS, SystemCase

CONTROL = "org.m_o_a_t.inv.main"


def p_inv(power, extra=""):
    return INVERTER.format(mode="p_inv", extra=f"[inverter.modes.p_inv]\npower = {power}\n{extra}")


class SafetyOnTheSimulation(SystemCase):

    def setpoints(self):
        return [float(self.get(VEBUS, f"/Hub4/L{k}/AcPowerSetpoint")) for k in (1, 2, 3)]

    def inverting(self, watts=850, timeout=10):
        self.until(f"the Multi inverts {watts} W", lambda: sum(self.multi()) < -watts, timeout)

    def zero_setpoints(self, timeout):
        self.until("0 W on every phase", lambda: self.setpoints() == [0.0, 0.0, 0.0], timeout)

    def next_write_is_zero(self, cause, mark):
        """The host's own log, in order: its next write after `cause` is 0 W on
        every phase; the sim then gets time to show it (the test's scheduling
        under load is no property of the host)."""
        self.host.wait_for_in_order([cause, r"INFO \[inverter\] SET inverter "], 4, since=mark)
        lines = self.host.log.splitlines()[mark:]
        at = next(i for i, line in enumerate(lines) if re.search(cause, line))
        first_set = next(line for line in lines[at:] if "INFO [inverter] SET inverter " in line)
        self.assertRegex(first_set, r"SET inverter 0 \u2211 0 0 0$", self.host.describe())
        self.zero_setpoints(10)

    def state(self):
        return self.conn.call_blocking(CONTROL, "/Control", "org.m_o_a_t.inv", "GetState", "", (), timeout=5)

    def test_a_vanished_multi_stops_the_loop_and_it_resumes_when_back(self):
        self.start_system(SIM + "faults = { vanish_seconds = 2.0 }\n" + p_inv(900))
        self.inverting()
        mark = self.host.mark()
        self.set(VEBUS, "/Sim/Fault", dbus.Int32(3))
        self.host.wait_for(r"\[inverter\] input lost, stopping the control loop: .*vebus", 3, since=mark)
        self.host.wait_for(r"\[inverter\] inputs are back; resuming mode p_inv", 6, since=mark)
        self.inverting()

    def test_a_frozen_battery_gets_0_w_and_the_loop_resumes(self):
        self.start_system(SIM + p_inv(900))
        self.inverting()
        t0 = time.monotonic()
        mark = self.host.mark()
        self.set(BATTERY, "/Sim/Fault", dbus.Int32(1))
        self.host.wait_for(r"input lost.*no update from the battery service", 4)
        self.assertGreater(time.monotonic() - t0, 2.0 - 0.3, "not before input_timeout (2 s)")
        self.next_write_is_zero(r"input lost", mark)
        self.until("the Multi stops inverting", lambda: sum(self.multi()) > -30, 4)
        self.set(BATTERY, "/Sim/Fault", dbus.Int32(0))
        self.inverting()

    def test_with_the_system_service_gone_the_last_known_multi_gets_0_w(self):
        # The system service names the Multi; without it the safe setpoints
        # still go to the Multi it named last, never left at -900 W.
        self.start_system(SIM + "faults = { vanish_seconds = 120.0 }\n" + p_inv(900))
        self.inverting()
        mark = self.host.mark()
        self.set(SYSTEM, "/Sim/Fault", dbus.Int32(3))
        self.host.wait_for(r"input lost, stopping the control loop", 4, since=mark)
        self.host.wait_for(r"writing the safe setpoints to com\.victronenergy\.vebus\.sim although no "
                           r"com\.victronenergy\.system service", 4, since=mark)
        self.next_write_is_zero(r"input lost", mark)
        self.until("the Multi stops inverting", lambda: sum(self.multi()) > -30, 4)
        self.assertEqual(str(self.state()["safe_state"]), "reached")
        self.assertNotIn("safe state not reached", "\n".join(self.host.log.splitlines()[mark:]))

    def test_invalid_multi_values_still_get_the_safe_setpoints(self):
        # Its AssistantId unknown, the Multi may not be written by a mode, but
        # 0 W is safer than the last setpoint: written, and confirmed.
        self.start_system(SIM + p_inv(900))
        self.inverting()
        mark = self.host.mark()
        self.set(VEBUS, "/Sim/Fault", dbus.Int32(2))
        self.host.wait_for(r"input lost, stopping the control loop", 5, since=mark)
        self.host.wait_for(r"writing the safe setpoints to com\.victronenergy\.vebus\.sim although no ESS "
                           r"assistant \(AssistantId unknown\)", 4, since=mark)
        self.host.wait_for(r"INFO \[inverter\] SET inverter 0 \u2211 0 0 0$", 4, since=mark)
        self.until("the safe state is reached", lambda: str(self.state()["safe_state"]) == "reached", 10)
        self.assertNotIn("safe state not reached", "\n".join(self.host.log.splitlines()[mark:]))
        self.set(VEBUS, "/Sim/Fault", dbus.Int32(0))
        self.host.wait_for(r"\[inverter\] inputs are back; resuming mode p_inv", 10, since=mark)

    def test_invalid_battery_values_get_0_w(self):
        self.start_system(SIM + p_inv(900))
        self.inverting()
        mark = self.host.mark()
        self.set(BATTERY, "/Sim/Fault", dbus.Int32(2))
        self.host.wait_for(r"input lost.*(MaxChargeVoltage|BatteryLowVoltage|Capacity|invalid)", 5)
        self.next_write_is_zero(r"input lost", mark)
        self.set(BATTERY, "/Sim/Fault", dbus.Int32(0))
        self.inverting()

    def test_overvoltage_feed_in_turning_1_ends_a_closed_loop_mode_at_0_w(self):
        self.start_system(SIM + p_inv(900))
        self.inverting()
        mark = self.host.mark()
        self.assertEqual(self.set(SETTINGS, "/Settings/CGwacs/OvervoltageFeedIn", dbus.Int32(1)), 0)
        self.host.wait_for(r"ERROR \[inverter\] mode p_inv refused: .*OvervoltageFeedIn.*falling back to off at 0 W", 2)
        self.next_write_is_zero(r"mode p_inv refused", mark)
        st = self.state()
        self.assertEqual(str(st["mode"][0]), "off")
        self.assertIn("OvervoltageFeedIn", str(st["error"]))
        self.assertEqual(dict(st["critical_settings"]), {"/Settings/CGwacs/OvervoltageFeedIn": 1})
        self.assertEqual(self.set(SETTINGS, "/Settings/CGwacs/OvervoltageFeedIn", dbus.Int32(0)), 0)
        self.until("no critical setting left", lambda: len(self.state()["critical_settings"]) == 0, 2)
        self.until("the Multi stops inverting", lambda: sum(self.multi()) > -30, 4)

    def test_the_refresh_keeps_a_single_setpoint_alive_past_the_multis_timeout(self):
        # off writes once; the simulated Multi drops a setpoint not rewritten for 2 s.
        sim = SIM.replace("vebus = { tau = 0.3 }", "vebus = { tau = 0.3, timeout = 2.0 }")
        self.start_system(sim + INVERTER.format(mode="off", extra="[inverter.modes.off]\npower = 900\n"))
        self.inverting()
        for _ in range(12):  # 6 s: three times the Multi's timeout
            time.sleep(0.5)
            self.assertLess(sum(self.multi()), -850, "still inverting: the setpoint was refreshed")

    def test_a_battery_becoming_low_in_off_stops_discharging_at_once(self):
        self.start_system(SIM + INVERTER.format(mode="off", extra="[inverter.modes.off]\npower = 900\n"))
        self.inverting()
        mark = self.host.mark()
        self.set(BATTERY, "/Sim/Soc", dbus.Double(3.0))  # below soc_cutoff and the BMS's empty_soc
        self.host.wait_for(r"battery low \(.*\).*restarting the mode", 3)
        self.next_write_is_zero(r"battery low", mark)
        self.until("the Multi stops inverting", lambda: sum(self.multi()) > -30, 4)

    def test_a_plugin_failure_leaves_0_w_on_the_multi_before_the_restart(self):
        self.start_system(SIM + p_inv(1200), env=dict(os.environ, MOAT_FAULT="inverter:refresh@30"),
                          restart_delay=1.5, restart_max_delay=1.5)
        self.inverting(1100)
        seen = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and seen is None:
            if self.setpoints() == [0.0, 0.0, 0.0]:
                seen = time.monotonic()
            time.sleep(0.01)
        self.assertIsNotNone(seen, self.host.describe())
        self.host.wait_for_in_order([r"\[inverter\] " + line for line in (
            r"failed: injected fault at inverter:refresh", r"safe state reached", r"restarting in 1\.5 s",
            r"started")], timeout=3)
        self.until("the restarted controller asks for inverting again", lambda: sum(self.setpoints()) < -1000, 10)
        # 0 W stood on the Multi for at least the restart delay: it was written before the restart.
        self.assertGreater(time.monotonic() - seen, 1.5)


if __name__ == "__main__":
    unittest.main()

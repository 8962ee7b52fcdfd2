"""The inverter's analyze mode end to end on our own MoaT BMS: one host runs
the sim (a small battery whose cells are the simulated MoaT BMS controller's
ring, on a pty), the moat-bms plugin reading that controller and publishing
com.victronenergy.battery.batt with org.m_o_a_t.bms, and the inverter
controller, which finds the BMS through the system service's
/Dc/Battery/BatteryService. Nothing is faked: the cells' voltages follow the
simulated battery, the controller counts the energy it measures, and
SetCapacity is written to the controller's configuration. Independent
python3-dbus clients check the result on the BMS (GetWork, GetConfig), the
controller's state and the simulated Multi.

Run: cd test/integration && MOAT_BUILD_DIR=../../build python3 -m unittest -v test_analyze_on_moat_bms
"""

import os
import sys
import time
import unittest

import dbus

from moattest import BUSITEM, HostTestCase, toml_string
from test_inverter_analyze import CAPACITY_AH, PLUGINS, small_system

VEBUS = "com.victronenergy.vebus.sim"
SYSTEM_SERVICE = "com.victronenergy.system"
BMS = "com.victronenergy.battery.batt"
BMS_IFACE = "org.m_o_a_t.bms"
CONTROL = "org.m_o_a_t.inv.main"

# The 1 Ah battery of the other analyze tests, its 16 cells the simulated
# controller's ring, with a linear open-circuit voltage of 48..57 V (3.0..3.56 V
# a cell). The controller's default configuration has cell.u.lim 3.0..3.4 V,
# ext 2.9..3.58 V and balance.d 0.05 V, so analyze balances above 3.49 V (87 %
# of the OCV line), goes below 3.22 V (39 %), charges above 3.34 V (60 %),
# discharges below 3.033 V (6 %) and charges again. The simulated system is
# static while the battery rests (no measurement noise), so the controller's
# input timeout keeps its default of 10 s.
# The battery stores 90 % of the charge that goes in: the loss analyze measures.
# (Where the steps end moves the measured loss by up to about ±0.05 on this
# small battery; 10 % keeps it well above 0, where analyze would report
# "chg>dis" instead of setting the capacity.)
CHARGE_EFFICIENCY = 0.9


def config(tmp):
    link = os.path.join(tmp, "bms")
    return small_system(ocv_top=57.0, battery_extra=f", charge_efficiency = {CHARGE_EFFICIENCY}", inverter_extra="",
                        sim_extra=f"""
[sim.moat_bms]
enabled = true
link = {toml_string("pty:" + link)}
baud = 9600
battery = "{BMS}"

[moat-bms]
device = {toml_string(link)}
backoff_initial_s = 0.2
work_state = {toml_string(os.path.join(tmp, "bms.work"))}
""")


class AnalyzeOnTheMoatBms(HostTestCase):

    def setUp(self):
        super().setUp()
        self.start_bus()
        self.host = self.start_host(self.write_config(config(self.tmp), plugin_dir=PLUGINS))
        self.conn = dbus.bus.BusConnection(self.bus.address)
        self.addCleanup(self.conn.close)
        self.host.wait_for(r"\[moat-bms/battery\].*com\.victronenergy\.battery\.batt registered", 30)
        self.host.wait_for(r"\[inverter\] MODE START p_inv", 10)

    def call(self, service, path, iface, method, sig="", args=()):
        return self.conn.call_blocking(service, path, iface, method, sig, args, timeout=15)

    def get(self, service, path):
        return self.call(service, path, BUSITEM, "GetValue")

    def state(self):
        return self.call(CONTROL, "/Control", "org.m_o_a_t.inv", "GetState")

    def until(self, what, fn, timeout):
        return self.wait_until(what, fn, timeout, self.host)

    def test_a_run_with_small_cells_ends_in_a_capacity_the_bms_shows(self):
        self.until("the system names the MoaT BMS as its battery",
                   lambda: str(self.get(SYSTEM_SERVICE, "/Dc/Battery/BatteryService")) == BMS, 10)
        before = self.call(BMS, "/bms", BMS_IFACE, "GetConfig")
        cap_before = float(before["batt"]["cap"]["cur"])

        t0 = time.monotonic()
        args = dbus.Dictionary({"p_chg": -5000.0, "p_dis": 5000.0, "balance": 1.0}, signature="sv")
        self.assertTrue(self.call(CONTROL, "/Control", "org.m_o_a_t.inv", "SetMode", "sa{sv}", ("analyze", args)))
        self.host.wait_for(r"\[inverter\] analyze: the MoaT BMS on " + BMS.replace(".", r"\."), 10)

        # The cells follow the battery: the run has to move them across the whole range.
        # (About 100 s; the limits leave room for a loaded machine.)
        self.host.wait_for(r"\[inverter\] analyze: step discharge", 300)
        low = self.until("a cell below 3.1 V", lambda: (lambda v: v if v < 3.1 else None)(
            float(self.call(BMS, "/bms", BMS_IFACE, "GetVoltages")[0]["min_cell"])), 150)
        self.host.wait_for(r"\[inverter\] mode analyze is done \(analyze finished\); switching to p_inv", 150)
        took = time.monotonic() - t0
        self.assertLess(took, 300, "a whole run with a 1 Ah battery, under 5 minutes")

        # The controller's result ...
        st = self.until("p_inv runs", lambda: (lambda s: s if str(s["mode"][0]) == "p_inv" else None)(self.state()), 5)
        result = st["analyze"]
        self.assertEqual(str(result["step"]), "result")
        self.assertTrue(bool(result.get("done")), dict(result))
        self.assertNotIn("error", result)
        cap, loss = float(result["capacity"]), float(result["loss"])
        print(f"\nanalyze on the MoaT BMS: {took:.0f} s, lowest cell {low:.3f} V, "
              f"capacity {cap:.0f} W·s (was {cap_before:.0f}), loss {loss:.4f}", file=sys.stderr)
        # The discharge went from the top (min cell > 3.34 V, 60 % of the OCV line) to the
        # bottom (min cell < 3.033 V, 6 %), each held 4 rounds more: about 55 % of 1 Ah at 51 V.
        full = CAPACITY_AH * 3600 * 51
        self.assertGreater(cap, 0.4 * full, f"{cap} W·s")
        self.assertLess(cap, 0.85 * full, f"{cap} W·s")
        self.assertNotAlmostEqual(cap, cap_before, delta=1.0)
        # The charge the battery does not store (10 %) and its internal resistance at 5 kW,
        # give or take where the steps ended: a round moves this small battery by about 3 %,
        # so the discharge and the recharge can cover ranges a few per cent apart.
        self.assertGreater(loss, 0.0)
        self.assertLess(loss, 0.3)

        # ... is what the BMS now shows: the capacity and loss in the controller's configuration,
        # and the energy record set to full (top = true).
        cfg = self.call(BMS, "/bms", BMS_IFACE, "GetConfig")
        self.assertAlmostEqual(float(cfg["batt"]["cap"]["cur"]), cap, delta=1e-6 * cap)
        self.assertAlmostEqual(float(cfg["batt"]["cap"]["loss"]), loss, delta=1e-6)
        work = self.call(BMS, "/bms/0", BMS_IFACE, "GetWork", "bb", (False, False))
        # Read right after the hand-over: the charge of a few seconds at most since SetCapacity.
        self.assertAlmostEqual(float(work["sum"]), cap, delta=0.02 * cap)
        # The SoC of a full record with the cells inside cell.u.lim is 95 %, and
        # /InstalledCapacity is the measured energy at the pack's nominal voltage.
        self.assertAlmostEqual(float(self.get(BMS, "/Soc")), 95.0, delta=1.0)
        u_nom = 16 * float(cfg["cell"]["u"]["nom"])
        self.assertAlmostEqual(float(self.get(BMS, "/InstalledCapacity")), cap / 3600 / u_nom, delta=0.01)
        # p_inv at 0 W: the Multi neither charges nor inverts.
        self.until("0 W on the Multi", lambda: abs(float(self.get(VEBUS, "/Hub4/L1/AcPowerSetpoint"))) < 1, 10)


if __name__ == "__main__":
    unittest.main()

"""The inverter's analyze mode on the simulation: the real host runs the sim
(a small battery, so that a whole capacity test takes a minute or two) and the
inverter controller; a python3-dbus fake MoaT BMS (this file, run with
--fake-bms) serves the org.m_o_a_t.bms methods analyze uses, with cell
voltages and energy counters taken from the simulated battery, and records
every call. Independent python3-dbus clients check the controller's state and
what the simulated Multi is told.

Run: cd test/integration && MOAT_BUILD_DIR=../../build python3 -m unittest -v test_inverter_analyze
"""

import json
import os
import signal
import subprocess
import sys
import time
import unittest

import dbus

from moattest import BUILD_DIR, BUSITEM, NO_BUS, HostTestCase, env_without_bus, line_of, run_host, spawn, stop_process

PLUGINS = os.path.join(BUILD_DIR, "plugins")
VEBUS = "com.victronenergy.vebus.sim"
BATTERY = "com.victronenergy.battery.sim"
FAKE_BMS = "com.victronenergy.battery.fakebms"
CONTROL = "org.m_o_a_t.inv.main"
BMS_IFACE = "org.m_o_a_t.bms"

# The fake BMS's cell limits (V) and cell count: the simulated battery's linear
# open-circuit voltage 48..56 V is 3.0..3.5 V per cell.
CELLS = 16
LIM_MIN, LIM_MAX, EXT_MIN, EXT_MAX, BALANCE_D = 3.1, 3.4, 3.0, 3.5, 0.01
CAPACITY_AH = 1.0  # the simulation's smallest battery
# The simulated battery stores what it is given (its internal resistance aside);
# the fake BMS counts the charged energy this much higher, as for a battery that
# keeps 1/1.1 of it: the loss analyze measures is then about 0.09.
CHARGE_FACTOR = 1.1


def small_system(ocv_top=56.0, battery_extra="", sim_extra="", inverter_extra="input_timeout = 2.0"):
    """A night (no PV), one phase, a 1 Ah battery with a linear OCV from 48 V to
    `ocv_top` and a big Multi (5 kW take 100% of the battery in about 40 s). The
    controller's voltage tapers scale with the battery's capacity (Ah / cap_scale
    amperes per umax_diff volts): for a 1 Ah battery they are made steep."""
    return f"""
[sim]
phases = 1
start_hour = 0.0
seed = 3
update_interval = 0.1
stop_linger = 2.0
load = {{ base = [300.0], noise = 0.0 }}
vebus = {{ tau = 0.2, rating = 8000.0, max_charge_current = 250.0 }}
battery = {{ capacity = {CAPACITY_AH}, soc = 80.0, ocv = [48.0, {ocv_top}], r_internal = 0.002, max_charge_voltage = 57.0, low_voltage = 46.0, max_charge_current = 250.0, max_discharge_current = 250.0{battery_extra} }}
{sim_extra}
[inverter]
mode = "p_inv"
mode_lockout = 0.0
refresh_interval = 0.5
trigger_sleep = 0.05
trigger_wait = 0.3
cap_scale = 0.1
umax_diff = 0.01
umin_diff = 0.01
p_per_phase = 10000.0
{inverter_extra}
"""


# --------------------------------------------------------------------------
# the fake MoaT BMS (a separate process: python3 test_inverter_analyze.py --fake-bms ...)

def run_fake_bms(address, record_path):
    import dbus.service
    from dbus.mainloop.glib import DBusGMainLoop
    from gi.repository import GLib

    DBusGMainLoop(set_as_default=True)
    conn = dbus.bus.BusConnection(address)
    record = open(record_path, "a", buffering=1)
    state = {"v": None, "last": None, "chg": 0.0, "dis": 0.0, "t": 0.0}

    def log(path, method, *args):
        record.write(json.dumps({"t": time.monotonic(), "path": path, "method": method,
                                 "args": [bool(a) if isinstance(a, (bool, dbus.Boolean)) else float(a) for a in args]}) + "\n")

    def sim(path):
        return float(conn.call_blocking(BATTERY, path, BUSITEM, "GetValue", "", (), timeout=2))

    def integrate():
        # Energy at the battery (+ = charging), as the BMS's controller counts it.
        try:
            v, p = sim("/Dc/0/Voltage"), sim("/Dc/0/Power")
        except (dbus.DBusException, TypeError, ValueError):
            return True
        now = time.monotonic()
        if state["last"] is not None:
            dt = now - state["last"]
            state["t"] += dt
            if p > 0:
                state["chg"] += p * dt * CHARGE_FACTOR
            else:
                state["dis"] -= p * dt
        state["last"], state["v"] = now, v
        return True

    def cells():
        if state["v"] is None:
            raise dbus.DBusException("no data yet", name="org.m_o_a_t.bms.Error.NotReady")
        u = state["v"] / CELLS
        return u - 0.003, u + 0.003

    def work_record():
        return dbus.Dictionary({"sum": 0.0, "t": state["t"], "chg": state["chg"], "dis": state["dis"],
                                "over_chg": 0.0, "over_dis": 0.0, "cfg": 1e6}, signature="sd")

    def get_work(poll, clear):
        w = work_record()
        if clear:
            state.update(chg=0.0, dis=0.0, t=0.0)
        return w

    def sv(d):
        return dbus.Dictionary(d, signature="sv")

    class Root(dbus.service.Object):
        # A Venus service's root, so that monitors can read it.
        @dbus.service.method(BUSITEM, in_signature="", out_signature="a{sa{sv}}")
        def GetItems(self):
            return {"/ProductName": {"Value": "Fake MoaT BMS", "Text": "Fake MoaT BMS"},
                    "/DeviceInstance": {"Value": dbus.Int32(77), "Text": "77"}}

    class Controller(dbus.service.Object):
        @dbus.service.method(BMS_IFACE, in_signature="", out_signature="y")
        def GetNBatteries(self):
            log("/bms", "GetNBatteries")
            return dbus.Byte(1)

        @dbus.service.method(BMS_IFACE, in_signature="", out_signature="aa{sd}")
        def GetVoltages(self):
            lo, hi = cells()
            log("/bms", "GetVoltages")
            return [dbus.Dictionary({"min_cell": lo, "max_cell": hi, "cells": state["v"], "bms": state["v"]},
                                    signature="sd")]

        @dbus.service.method(BMS_IFACE, in_signature="", out_signature="ad")
        def GetCurrents(self):
            return [0.0]

        @dbus.service.method(BMS_IFACE, in_signature="", out_signature="a{sv}")
        def GetConfig(self):
            log("/bms", "GetConfig")
            return sv({"serial": "fake", "cell": sv({
                "u": sv({"lim": sv({"min": LIM_MIN, "max": LIM_MAX}), "ext": sv({"min": EXT_MIN, "max": EXT_MAX})}),
                "balance": sv({"d": BALANCE_D, "n": dbus.Int32(3)})})})

        @dbus.service.method(BMS_IFACE, in_signature="bb", out_signature="aa{sd}")
        def GetWork(self, poll, clear):
            log("/bms", "GetWork", poll, clear)
            return [get_work(poll, clear)]

    class Battery(dbus.service.Object):
        @dbus.service.method(BMS_IFACE, in_signature="ddb", out_signature="b")
        def SetCapacity(self, cap, loss, top):
            log("/bms/0", "SetCapacity", cap, loss, top)
            return 0 <= loss < 1

        @dbus.service.method(BMS_IFACE, in_signature="bb", out_signature="a{sd}")
        def GetWork(self, poll, clear):
            log("/bms/0", "GetWork", poll, clear)
            return get_work(poll, clear)

    # (kept alive: an unreferenced object or name leaves the bus)
    state["objects"] = [Root(conn, "/"), Controller(conn, "/bms"), Battery(conn, "/bms/0")]
    integrate()
    GLib.timeout_add(100, integrate)
    state["name"] = dbus.service.BusName(FAKE_BMS, conn, do_not_queue=True)
    print("READY", flush=True)
    GLib.MainLoop().run()


# --------------------------------------------------------------------------
# the tests

class AnalyzeOnTheSimulation(HostTestCase):

    def start_system(self, extra="", fake_bms=True):
        self.start_bus()
        self.records = os.path.join(self.tmp, "bms-calls.jsonl")
        self.fake = None
        if fake_bms:
            self.fake = spawn([sys.executable, os.path.abspath(__file__), "--fake-bms", self.bus.address, self.records],
                              stdout=subprocess.PIPE)
            self.addCleanup(self.fake.stdout.close)
            self.addCleanup(stop_process, self.fake)
            self.assertEqual(self.fake.stdout.readline().strip(), b"READY")
        self.host = self.start_host(self.write_config(small_system(inverter_extra="input_timeout = 2.0\n" + extra),
                                                      plugin_dir=PLUGINS))
        self.conn = dbus.bus.BusConnection(self.bus.address)
        self.addCleanup(self.conn.close)
        self.host.wait_for(r"\[sim\] simulating", 10)
        self.host.wait_for(r"\[inverter\] MODE START p_inv", 10)

    def calls(self):
        if not os.path.exists(self.records):
            return []
        with open(self.records) as f:
            return [json.loads(line) for line in f if line.endswith("\n")]

    def state(self):
        return self.conn.call_blocking(CONTROL, "/Control", "org.m_o_a_t.inv", "GetState", "", (), timeout=5)

    def set_mode(self, mode, **args):
        a = dbus.Dictionary({k: v for k, v in args.items()}, signature="sv")
        return self.conn.call_blocking(CONTROL, "/Control", "org.m_o_a_t.inv", "SetMode", "sa{sv}", (mode, a),
                                       timeout=5)

    def get(self, service, path):
        return self.conn.call_blocking(service, path, BUSITEM, "GetValue", "", (), timeout=5)

    def setpoint(self):
        return float(self.get(VEBUS, "/Hub4/L1/AcPowerSetpoint"))

    def until(self, what, fn, timeout):
        return self.wait_until(what, fn, timeout, self.host)

    def analyze_step(self):
        st = self.state()
        return str(st["analyze"].get("step", "")) if "analyze" in st else ""

    def analyze_moving(self):
        """analyze with the fake BMS, without balancing: below the top, then the charge; the Multi
        inverts or charges 5000 W."""
        self.start_system(f'bms_service = "{FAKE_BMS}"\n')
        self.assertTrue(self.set_mode("analyze", p_chg=-5000.0, p_dis=5000.0, balance=-1.0))
        self.until("analyze moving 5000 W", lambda: self.analyze_step() in ("below_top", "charge") and
                   abs(self.setpoint()) > 4900, 20)

    def test_a_run_with_small_cells_ends_in_set_capacity_and_p_inv(self):
        self.start_system(f'bms_service = "{FAKE_BMS}"\n')
        t0 = time.monotonic()
        self.assertTrue(self.set_mode("analyze", p_chg=-5000.0, p_dis=5000.0, balance=1.0))
        self.host.wait_for(r"\[inverter\] analyze: the MoaT BMS on " + FAKE_BMS.replace(".", r"\."), 5)

        set_capacity = self.until("SetCapacity reached the BMS",
                                  lambda: [c for c in self.calls() if c["method"] == "SetCapacity"], 240)
        took = time.monotonic() - t0
        self.assertLess(took, 200, "a whole run with a 1 Ah battery")
        self.assertEqual(len(set_capacity), 1)
        cap, loss, top = set_capacity[0]["args"]
        print(f"\nanalyze on the simulation: {took:.0f} s, SetCapacity({cap:.0f} W·s, loss {loss:.3f})", file=sys.stderr)
        self.assertIs(top, True)
        # The discharge went from the top (min cell > 3.367 V, 72 % of the linear OCV, and 4 rounds more)
        # to the bottom (min cell < 3.133 V, 27 %, and 4 rounds more): about 60 % of the 1 Ah at about 51 V.
        full = CAPACITY_AH * 3600 * 51
        self.assertGreater(cap, 0.4 * full, f"{cap} W·s")
        self.assertLess(cap, 0.8 * full, f"{cap} W·s")
        # The counted loss (1 - 1/1.1), give or take the steps' ends and the internal resistance.
        self.assertGreater(loss, 0.03)
        self.assertLess(loss, 0.16)

        # The counters were cleared before the discharge and read (and cleared) after it and after the recharge.
        methods = [(c["path"], c["method"], c["args"]) for c in self.calls()]
        clears = [i for i, m in enumerate(methods) if m[1] == "GetWork" and m[2] == [True, True]]
        self.assertEqual(len(clears), 3, methods)
        self.assertLess(clears[-1], methods.index(("/bms/0", "SetCapacity", [cap, loss, True])))

        # Every step in order, each logged once; then the controller goes on with p_inv at 0 W.
        self.host.wait_for_in_order([r"\[inverter\] analyze: step " + s for s in
                                     ("balance ", "balance_hold", "below_top", "charge", "discharge", "recharge")] +
                                    [r"\[inverter\] analyze: \{.*'step': 'result'",
                                     r"\[inverter\] mode analyze is done \(analyze finished\); switching to p_inv",
                                     r"\[inverter\] MODE START p_inv \{'excess': None, 'phase': None, 'power': 0\.0\}"],
                                    timeout=5)
        st = self.until("p_inv runs", lambda: (lambda s: s if str(s["mode"][0]) == "p_inv" else None)(self.state()), 5)
        self.assertEqual(float(st["mode"][1]["power"]), 0.0)
        result = st["analyze"]
        self.assertEqual(str(result["step"]), "result")
        self.assertEqual(float(result["dis"]), cap)
        self.assertEqual(float(result["capacity"]), cap)
        self.assertEqual(float(result["loss"]), loss)
        self.assertTrue(bool(result["done"]))
        self.assertNotIn("error", result)
        self.assertEqual(str(result["next"]), "p_inv")
        self.assertFalse(bool(st["error"]) if "error" in st else False)

    def test_a_battery_service_without_the_bms_interface_refuses_analyze(self):
        # No bms_service: the battery service the system names (the simulated one) is asked.
        self.start_system(fake_bms=False)
        mark = self.host.mark()
        self.assertTrue(self.set_mode("analyze", p_chg=-1000.0, p_dis=1000.0))
        self.host.wait_for(r"ERROR \[inverter\] mode analyze failed: the battery service com\.victronenergy\.battery"
                           r"\.sim has no (object /bms|org\.m_o_a_t\.bms interface on /bms).*; analyze needs the MoaT "
                           r"BMS.*; falling back to off at 0 W", 5, since=mark)
        st = self.until("off", lambda: (lambda s: s if str(s["mode"][0]) == "off" else None)(self.state()), 5)
        self.assertIn("com.victronenergy.battery.sim has no", str(st["error"]))
        self.assertIn("org.m_o_a_t.bms", str(st["error"]))
        self.until("0 W on the Multi", lambda: self.setpoint() == 0.0, 5)

    def test_the_bms_going_away_ends_the_run_in_off_with_the_safe_setpoints(self):
        self.analyze_moving()
        mark = self.host.mark()
        self.fake.send_signal(signal.SIGKILL)
        t0 = time.monotonic()
        self.until("0 W on the Multi", lambda: self.setpoint() == 0.0, 5)
        took = time.monotonic() - t0
        print(f"\nBMS killed -> 0 W on the Multi in {took:.2f} s", file=sys.stderr)
        self.assertLess(took, 2.0, "the name watch asks every 0.5 s")
        self.host.wait_for_in_order([
            r"ERROR \[inverter\] mode analyze failed: .*(the MoaT BMS went away: " + FAKE_BMS.replace(".", r"\.") +
            r" left the bus|/bms \w+ failed).*; falling back to off at 0 W",
            r"\[inverter\] safe setpoints \(mode analyze failed: ",
            r"\[inverter\] MODE START off \{'power': 0\.0\}"], timeout=3, since=mark)
        st = self.state()
        self.assertEqual(str(st["mode"][0]), "off")
        self.assertEqual(str(st["safe_state"]), "reached")
        self.assertIn("mode analyze failed", str(st["error"]))
        self.until("the Multi stops inverting", lambda: abs(float(self.get(VEBUS, "/Ac/ActiveIn/L1/P"))) < 30, 5)

    def test_a_bms_that_stops_answering_ends_the_run_within_its_call_timeout(self):
        self.analyze_moving()
        mark = self.host.mark()
        self.fake.send_signal(signal.SIGSTOP)  # its name stays on the bus; its replies never come
        self.addCleanup(self.fake.send_signal, signal.SIGCONT)
        t0 = time.monotonic()
        self.until("0 W on the Multi", lambda: self.setpoint() == 0.0, 15)
        took = time.monotonic() - t0
        print(f"\nBMS stopped -> 0 W on the Multi in {took:.2f} s", file=sys.stderr)
        # the next round's BMS call (a round takes about a second here), then its 10 s timeout
        self.assertGreater(took, 9.0)
        self.assertLess(took, 13.0)
        self.host.wait_for_in_order([
            r"ERROR \[inverter\] mode analyze failed: the MoaT BMS on " + FAKE_BMS.replace(".", r"\.") +
            r": /bms \w+ failed: org\.freedesktop\.DBus\.Error\.NoReply.*; falling back to off at 0 W",
            r"\[inverter\] safe setpoints \(mode analyze failed: ",
            r"\[inverter\] MODE START off \{'power': 0\.0\}"], timeout=3, since=mark)

    def test_in_fake_mode_the_bms_is_only_read(self):
        # Steps 0-4 skipped: the energies come from the parameters; the counters' clear and SetCapacity remain.
        self.start_system(f'bms_service = "{FAKE_BMS}"\nfake = true\nname = "main"\n')
        self.assertTrue(self.set_mode("analyze", p_dis=1000.0, skip=5, e_dis=36000.0, e_chg=40000.0))
        self.host.wait_for(r"ERROR \[inverter\] NO-OP SetCapacity\(36000, 0\.1000\d*, true\) on " +
                           FAKE_BMS.replace(".", r"\.") + " /bms/0", 10)
        self.host.wait_for(r"\[inverter\] MODE START p_inv \{'excess': None, 'phase': None, 'power': 0\.0\}", 5)
        calls = [(c["method"], c["args"]) for c in self.calls() if c["method"] in ("GetWork", "SetCapacity")]
        self.assertEqual(calls, [("GetWork", [True, False])])
        result = self.state()["analyze"]
        self.assertTrue(bool(result["done"]))
        self.assertAlmostEqual(float(result["loss"]), 1 - 36000 / 40001)

    def test_bms_service_must_name_a_battery_service(self):
        path = self.write_config('[inverter]\nbms_service = "com.victronenergy.vebus.x"\n', bus=NO_BUS,
                                 plugin_dir=PLUGINS)
        rc, out, err = run_host(["--check-config", path], env=env_without_bus())
        self.assertEqual(rc, 3, f"stdout: {out}\nstderr: {err}")
        expected = (f"{path}:{line_of(path, 'bms_service')}: [inverter] key 'bms_service': 'com.victronenergy.vebus.x' "
                    "is not a battery service name")
        self.assertTrue(any(line.startswith(expected) for line in err.splitlines()), err)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--fake-bms":
        run_fake_bms(sys.argv[2], sys.argv[3])
    else:
        unittest.main()

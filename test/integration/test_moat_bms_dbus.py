"""The org.m_o_a_t.bms interface of the moat-bms plugin against the
simulated controller on a pty (the set-up of test_moat_bms_battery): the
complete introspection that the `dbus` CLI and gdbus rely on, the struct
results, the three signals, every live method (answered by the controller or
the cell modules, so a change made through one method shows in another, or
in the simulator), SetCapacity's write of batt.cap, argument errors, and the
LinkDown error while the link is down.
"""

import math
import subprocess
import unittest
import xml.etree.ElementTree as ET

from test_moat_bms_battery import BATTERY, BMS, BatteryHost

# Every member of org.m_o_a_t.bms per object: name → (in, out) signatures.
CONTROLLER = {"GetNBatteries": ("", "y"), "GetVoltages": ("", "aa{sd}"), "GetCurrents": ("", "ad"),
              "GetConfig": ("", "a{sv}"), "GetWork": ("bb", "aa{sd}")}
BATTERY_METHODS = {
    "GetVoltages": ("", "a{sd}"), "GetCellVoltages": ("", "ad"), "GetBalancing": ("", "a(dbdb)"),
    "GetTemperatures": ("", "a(dd)"), "GetConfig": ("", "a{sv}a{sv}"), "GetCurrent": ("", "d"),
    "GetCurrentOffset": ("", "d"), "GetSoC": ("", "d"), "GetNCells": ("", "y"), "GetName": ("", "s"),
    "GetWork": ("bb", "a{sd}"), "SetWork": ("d", "b"), "SetCapacity": ("ddb", "b"), "Identify": ("", "b"),
    "ForceRelay": ("b", "b"), "ReleaseRelay": ("", "b"), "GetRelayState": ("", "bb"), "SetVoltage": ("d", "b"),
    "SetExternalVoltage": ("d", "b"), "SetCurrent": ("d", "b"), "SetCurrentOffset": ("d", "b")}
BATTERY_SIGNALS = {"VoltageChanged": "ddbb", "CellVoltageChanged": "a(db)", "CellTemperatureChanged": "a(vv)"}
CELL_METHODS = {
    "GetData": ("", "a{sv}"), "GetConfig": ("", "v"), "GetVoltage": ("", "d"), "GetTemperature": ("", "dd"),
    "GetPIDparams": ("", "uuu"), "SetPIDparams": ("uuu", "b"), "GetPIDpwm": ("", "d"),
    "GetTemperatureLimit": ("", "d"), "SetTemperatureLimit": ("d", "b"), "Identify": ("", "b"),
    "SetBalanceVoltage": ("d", "b"), "GetBalanceVoltage": ("", "d"), "SetVoltage": ("d", "b"),
    "SetVoltageOffset": ("d", "i")}
NAMES = {("/bms/0", "SetCapacity"): ["cap", "loss", "top"], ("/bms/0", "GetWork"): ["poll", "clear"],
         ("/bms", "GetWork"): ["poll", "clear"], ("/bms/0", "ForceRelay"): ["on"], ("/bms/0", "SetWork"): ["work"],
         ("/bms/0/3", "SetPIDparams"): ["kp", "ki", "kd"]}


def gdbus(address, *args):
    out = subprocess.run(["gdbus", *args[:1], "--address", address, "--dest", BATTERY, *args[1:]],
                         capture_output=True, text=True, timeout=20)
    return out


class Interface(BatteryHost):
    def introspect(self, path):
        out = gdbus(self.bus.address, "introspect", "--xml", "--object-path", path)
        self.assertEqual(out.returncode, 0, out.stderr)
        root = ET.fromstring(out.stdout)
        iface = [i for i in root.findall("interface") if i.get("name") == BMS]
        self.assertEqual(len(iface), 1, f"{path}: {BMS} introspected once")
        return iface[0]

    def check_members(self, path, methods, signals):
        iface = self.introspect(path)
        found = {}
        for m in iface.findall("method"):
            args = m.findall("arg")
            found[m.get("name")] = ("".join(a.get("type") for a in args if a.get("direction") == "in"),
                                    "".join(a.get("type") for a in args if a.get("direction") == "out"))
            names = NAMES.get((path, m.get("name")))
            if names:
                self.assertEqual([a.get("name") for a in args if a.get("direction") == "in"], names, m.get("name"))
        self.assertEqual(found, methods, path)
        sigs = {s.get("name"): "".join(a.get("type") for a in s.findall("arg")) for s in iface.findall("signal")}
        self.assertEqual(sigs, signals, path)

    def test_introspection_is_complete(self):
        self.check_members("/bms", CONTROLLER, {})
        self.check_members("/bms/0", BATTERY_METHODS, BATTERY_SIGNALS)
        self.check_members("/bms/0/3", CELL_METHODS, {"DataChanged": "a{sv}"})
        self.assertNotIn("SetSoC", BATTERY_METHODS)

    def test_struct_results_through_gdbus_and_python(self):
        bal = self.bms("/bms/0", "GetBalancing")
        self.assertEqual(len(bal), 16)
        for threshold, in_balance, pwm, forced in bal:
            self.assertIsInstance(threshold, self.client.dbus.Double)
            self.assertIsInstance(in_balance, self.client.dbus.Boolean)
            self.assertTrue(pwm == -1.0 or 0.0 <= pwm <= 1.0, pwm)
            self.assertFalse(forced)
        # A manual balance level shows as forced with its threshold.
        v3 = float(self.bms("/bms/0/3", "GetVoltage"))
        self.assertTrue(self.bms("/bms/0/3", "SetBalanceVoltage", v3 - 0.01, signature="d"))
        self.wait_until("the forced level of cell 3",
                        lambda: (lambda b: b[3][3] and abs(b[3][0] - (v3 - 0.01)) < 0.002)(self.bms("/bms/0", "GetBalancing")),
                        15, self.host)
        temps = self.bms("/bms/0", "GetTemperatures")
        self.assertEqual(len(temps), 16)
        for load, cell in temps:
            self.assertTrue(-40 < load < 100 and -40 < cell < 100, (load, cell))
        out = gdbus(self.bus.address, "call", "--object-path", "/bms/0", "--method", "org.m_o_a_t.bms.GetTemperatures")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertRegex(out.stdout, r"^\(\[\(-?\d+\.\d+, -?\d+\.\d+\)")

    def test_signals(self):
        got = []

        def on_signal(*args, member=None, path=None):
            got.append((str(member), str(path), args))

        self.client.conn.add_signal_receiver(on_signal, dbus_interface=BMS, member_keyword="member", path_keyword="path")
        seen = lambda m: [g for g in got if g[0] == m]
        self.client.pump(until=lambda: seen("VoltageChanged"), timeout=10)
        self.sim.command("voltage 2 3.25")  # a change: CellVoltageChanged follows the next cell read
        self.sim.command("traw 4 600")      # and a temperature change
        cell2 = lambda: [g for g in seen("CellVoltageChanged") if abs(float(g[2][0][2][0]) - 3.25) < 0.01]
        self.client.pump(until=lambda: cell2() and seen("CellTemperatureChanged"), timeout=20)
        member, path, (u, i, chg, dis) = seen("VoltageChanged")[0]
        self.assertEqual(path, "/bms/0")
        self.assertIsInstance(u, self.client.dbus.Double)
        self.assertAlmostEqual(float(u), 16 * 3.3, delta=1.0)
        self.assertIsInstance(chg, self.client.dbus.Boolean)
        self.assertTrue(chg and dis)
        self.assertTrue(cell2(), "a CellVoltageChanged with the new voltage of cell 2")
        (cells,) = cell2()[0][2]
        self.assertEqual(len(cells), 16)
        self.assertEqual(cells.signature, "(db)")
        self.assertIsInstance(cells[2][1], self.client.dbus.Boolean)
        (temps,) = seen("CellTemperatureChanged")[-1][2]
        self.assertEqual(temps.signature, "(vv)")
        self.assertEqual(len(temps), 16)
        self.assertIsInstance(temps[4][0], self.client.dbus.Double)

    def test_live_relay_and_identify(self):
        self.assertEqual(tuple(self.bms("/bms/0", "GetRelayState")), (True, False))
        self.assertTrue(self.bms("/bms/0", "ForceRelay", False, signature="b"))
        self.wait_until("the relay forced off on the controller",
                        lambda: tuple(self.bms("/bms/0", "GetRelayState")) == (False, True), 10, self.host)
        self.assertTrue(self.bms("/bms/0", "ReleaseRelay"))
        # Automatic again: not forced at once, on after the controller's switch delay (batt.relay.t, 10 s).
        self.wait_until("the relay no longer forced",
                        lambda: not self.bms("/bms/0", "GetRelayState")[1], 10, self.host)
        self.wait_until("the relay back on by the controller",
                        lambda: tuple(self.bms("/bms/0", "GetRelayState")) == (True, False), 25, self.host)
        self.assertTrue(self.bms("/bms/0", "Identify", timeout=20))
        self.assertTrue(self.bms("/bms/0/7", "Identify", timeout=20))
        # The installation procedure through gdbus.
        out = gdbus(self.bus.address, "call", "--object-path", "/bms/0/7", "--method", "org.m_o_a_t.bms.Identify")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.strip(), "(true,)")

    def test_live_cell_methods(self):
        # GetVoltage asks the module: the simulator's new voltage shows at once.
        self.sim.command("voltage 5 3.2")
        self.assertAlmostEqual(float(self.bms("/bms/0/5", "GetVoltage", timeout=20)), 3.2, delta=0.005)
        load, cell = self.bms("/bms/0/5", "GetTemperature", timeout=20)
        self.assertTrue(-40 < load < 100 and -40 < cell < 100, (load, cell))
        # PID parameters: written to the module, read back from it.
        self.assertTrue(self.bms("/bms/0/5", "SetPIDparams", 1200, 30, 7, signature="uuu", timeout=20))
        self.assertEqual(tuple(int(x) for x in self.bms("/bms/0/5", "GetPIDparams", timeout=20)), (1200, 30, 7))
        pwm = float(self.bms("/bms/0/5", "GetPIDpwm", timeout=20))
        self.assertTrue(0.0 <= pwm <= 1.0, pwm)
        # The load temperature limit: written, then reported (within the raw step).
        self.assertTrue(self.bms("/bms/0/5", "SetTemperatureLimit", 55.0, signature="d", timeout=20))
        self.assertAlmostEqual(float(self.bms("/bms/0/5", "GetTemperatureLimit")), 55.0, delta=0.5)
        # Per-cell calibration: a reference 1 % above the reading; the module stores the new factor
        # and the readings follow it.
        v = float(self.bms("/bms/0/6", "GetVoltage", timeout=20))
        self.assertTrue(self.bms("/bms/0/6", "SetVoltage", v * 1.01, signature="d", timeout=20))
        self.assertAlmostEqual(float(self.bms("/bms/0/6", "GetVoltage", timeout=20)), v * 1.01, delta=0.005)
        self.assertEqual(self.client.error_name("/bms/0/6", "SetVoltage", v * 3, signature="d", iface=BMS, dest=BATTERY),
                         "org.m_o_a_t.bms.Error.InvalidArgument")
        # A cell offset: the live reading moves by it.
        v = float(self.bms("/bms/0/8", "GetVoltage", timeout=20))
        self.assertEqual(self.bms("/bms/0/8", "SetVoltageOffset", 0.05, signature="d"), 0)
        self.assertAlmostEqual(float(self.bms("/bms/0/8", "GetVoltage", timeout=20)), v + 0.05, delta=0.003)

    def test_get_work_polls_the_controller(self):
        self.sim.command("current 20")
        self.wait_until("charging current", lambda: float(self.bms("/bms/0", "GetCurrent")) > 15, 10, self.host)
        before = self.bms("/bms/0", "GetWork", False, False, signature="bb")
        w = self.bms("/bms", "GetWork", True, False, signature="bb")[0]
        self.assertGreater(float(w["chg"]), float(before["chg"]), "the controller's sums went into the record")
        out = gdbus(self.bus.address, "call", "--object-path", "/bms/0", "--method", "org.m_o_a_t.bms.GetWork", "true", "false")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("'chg'", out.stdout)

    def test_set_capacity_writes_the_controller(self):
        self.assertTrue(self.bms("/bms/0", "SetCapacity", 3.6e6, 0.05, True, signature="ddb"))
        self.wait_until("batt.cap in the controller's configuration",
                        lambda: (lambda c: float(c["batt"]["cap"]["cur"]) == 3.6e6
                                 and abs(float(c["batt"]["cap"]["loss"]) - 0.05) < 1e-6)(self.bms("/bms", "GetConfig")),
                        10, self.host)
        self.host.wait_for(r"batt\.cap\.cur = 3\.6e\+06, batt\.cap\.loss = 0\.05 \(sent to the controller\)", 5.0)
        self.host.wait_for(r"controller configuration changed and stored", 5.0)
        self.assertEqual(float(self.bms("/bms/0", "GetWork", False, False, signature="bb")["sum"]), 3.6e6)
        # loss outside [0, 1): false, nothing written.
        self.assertFalse(self.bms("/bms/0", "SetCapacity", 1e6, 1.0, False, signature="ddb"))
        self.assertEqual(float(self.bms("/bms", "GetConfig")["batt"]["cap"]["cur"]), 3.6e6)

    def test_argument_errors(self):
        err = lambda path, method, *a, signature=None: self.client.error_name(path, method, *a, signature=signature,
                                                                              iface=BMS, dest=BATTERY)
        self.assertEqual(err("/bms/0/3", "SetTemperatureLimit", "hot", signature="s"), "org.freedesktop.DBus.Error.InvalidArgs")
        self.assertEqual(err("/bms/0/3", "SetTemperatureLimit", math.nan, signature="d"), "org.m_o_a_t.bms.Error.InvalidArgument")
        self.assertEqual(err("/bms/0/3", "SetTemperatureLimit", 250.0, signature="d"), "org.m_o_a_t.bms.Error.InvalidArgument")
        self.assertEqual(err("/bms/0/3", "SetPIDparams", 1, 2, signature="uu"), "org.freedesktop.DBus.Error.InvalidArgs")
        self.assertEqual(err("/bms/0/3", "SetVoltageOffset", 5.0, signature="d"), "org.m_o_a_t.bms.Error.InvalidArgument")
        for method in ("GetVoltage", "Identify", "GetPIDparams", "GetTemperature"):
            self.assertEqual(err("/bms/0/20", method), "org.m_o_a_t.bms.Error.NoSuchCell", method)
        self.assertEqual(err("/bms/0", "SetCapacity", 1e6, math.inf, False, signature="ddb"),
                         "org.m_o_a_t.bms.Error.InvalidArgument")

    def test_live_calls_while_the_link_is_down(self):
        self.sim.command("mute 1")
        self.until_items("the link down (safe state)", lambda i: i["/Connected"] == 0, 15)
        err = lambda path, method, *a, signature=None: self.client.error_name(path, method, *a, signature=signature,
                                                                              iface=BMS, dest=BATTERY)
        for path, method, args, sig in (("/bms/0", "GetRelayState", (), None), ("/bms/0", "Identify", (), None),
                                        ("/bms/0/2", "GetVoltage", (), None), ("/bms/0/2", "GetPIDparams", (), None),
                                        ("/bms/0/2", "SetTemperatureLimit", (50.0,), "d"),
                                        ("/bms/0", "GetWork", (True, False), "bb"), ("/bms", "GetWork", (True, False), "bb"),
                                        ("/bms/0", "SetCapacity", (1e6, 0.1, False), "ddb")):
            self.assertEqual(err(path, method, *args, signature=sig), "org.m_o_a_t.bms.Error.LinkDown", f"{path} {method}")
        # What the model holds still answers.
        self.assertEqual(len(self.bms("/bms/0", "GetBalancing")), 16)
        self.assertIn("sum", self.bms("/bms/0", "GetWork", False, False, signature="bb"))
        self.sim.command("mute 0")
        self.recovers()
        self.assertEqual(len(self.bms("/bms/0", "GetRelayState")), 2)

    def test_a_call_in_flight_when_the_link_goes_down(self):
        # The controller falls silent while a live call waits for it: the call fails (LinkDown or Timeout), promptly.
        self.sim.command("mute 1")
        name = self.client.error_name("/bms/0", "GetRelayState", iface=BMS, dest=BATTERY, timeout=20)
        self.assertIn(name, ("org.m_o_a_t.bms.Error.LinkDown", "org.m_o_a_t.bms.Error.Timeout"))
        self.sim.command("mute 0")
        self.recovers()

    def test_a_module_that_does_not_see_the_request(self):
        self.sim.command("seen 0")  # the packets come back unmarked: no module took them
        self.assertFalse(self.bms("/bms/0/4", "Identify", timeout=20))
        self.assertEqual(float(self.bms("/bms/0/4", "GetVoltage", timeout=20)), 0.0)
        self.assertEqual(float(self.bms("/bms/0/4", "GetPIDpwm", timeout=20)), -1.0)
        self.sim.command("seen 1")


if __name__ == "__main__":
    unittest.main()

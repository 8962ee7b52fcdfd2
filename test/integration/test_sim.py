"""The sim plugin under the real host on a private dbus-daemon, checked from
outside with python3-dbus and gdbus: services, paths and types, moving values,
the energy balance, external setpoints, the BMS flags and fault injection."""

import os
import subprocess
import time
import unittest

import dbus

from moattest import BUILD_DIR, BUSITEM, SOURCE_DIR, BusClient, HostProcess, HostTestCase, env_without_bus, pid_alive

PLUGINS = os.path.join(BUILD_DIR, "plugins")
VEBUS = "com.victronenergy.vebus.sim"
BATTERY = "com.victronenergy.battery.sim"
SOLAR = "com.victronenergy.solarcharger.sim_0"
GRID = "com.victronenergy.grid.sim"
SYSTEM = "com.victronenergy.system"
SETTINGS = "com.victronenergy.settings"
MANDATORY = ["/Mgmt/ProcessName", "/Mgmt/ProcessVersion", "/Mgmt/Connection", "/DeviceInstance", "/ProductId",
             "/ProductName", "/FirmwareVersion", "/HardwareVersion", "/Connected"]

# A night without noise: the numbers are exact enough to check magnitudes.
NIGHT = """
[sim]
start_hour = 0.0
update_interval = 0.25
load = { noise = 0.0 }
vebus = { tau = 0.5 }
"""


def is_invalid(v):
    return isinstance(v, dbus.Array) and len(v) == 0 and v.signature == "i"


class SimCase(HostTestCase):

    def start_sim(self, body, wait=True):
        self.start_bus()
        cfg = self.write_config(body, plugin_dir=PLUGINS)
        self.host = self.start_host(cfg)
        self.conn = dbus.bus.BusConnection(self.bus.address)
        self.addCleanup(self.conn.close)
        if wait:
            self.wait_until("the system service", lambda: self.has_owner(SYSTEM), 10, self.host)
        return self.host

    def has_owner(self, name):
        return bool(self.conn.call_blocking("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                            "NameHasOwner", "s", (name,), timeout=5))

    def get(self, service, path):
        return self.conn.call_blocking(service, path, BUSITEM, "GetValue", "", (), timeout=5)

    def items(self, service):
        raw = self.conn.call_blocking(service, "/", BUSITEM, "GetItems", "", (), timeout=5)
        return {str(p): v["Value"] for p, v in raw.items()}

    def set(self, service, path, value):
        return int(self.conn.call_blocking(service, path, BUSITEM, "SetValue", "v", (value,), timeout=5))

    def gdbus_set(self, service, path, text):
        out = subprocess.run(["gdbus", "call", "--address", self.bus.address, "--dest", service, "--object-path", path,
                              "--method", f"{BUSITEM}.SetValue", text], capture_output=True, text=True, timeout=10)
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout.strip()

    def until(self, what, fn, timeout=5.0):
        return self.wait_until(what, fn, timeout, self.host)


class ServicesTest(SimCase):

    def test_services_and_paths_exist_with_venus_types(self):
        self.start_sim('[sim]\nphases = 3\n')
        expect = {
            VEBUS: {"/Ac/ActiveIn/L1/P": dbus.Double, "/Ac/ActiveIn/L3/P": dbus.Double, "/Ac/ActiveIn/P": dbus.Double,
                    "/Ac/Out/L2/P": dbus.Double, "/Dc/0/Voltage": dbus.Double, "/Dc/0/Current": dbus.Double,
                    "/Dc/0/Power": dbus.Double, "/Hub/ChargeVoltage": dbus.Double,
                    "/Hub4/L1/AcPowerSetpoint": dbus.Double, "/Hub4/L3/AcPowerSetpoint": dbus.Double,
                    "/Hub4/DisableCharge": dbus.Int32, "/Hub4/DisableFeedIn": dbus.Int32,
                    "/Hub4/AssistantId": dbus.Int32, "/Mode": dbus.Int32, "/State": dbus.Int32},
            BATTERY: {"/Info/MaxChargeVoltage": dbus.Double, "/Info/MaxChargeCurrent": dbus.Double,
                      "/Info/MaxDischargeCurrent": dbus.Double, "/Info/BatteryLowVoltage": dbus.Double,
                      "/Io/AllowToCharge": dbus.Int32, "/Io/AllowToDischarge": dbus.Int32, "/Soc": dbus.Double,
                      "/Capacity": dbus.Double, "/Dc/0/Voltage": dbus.Double, "/Dc/0/Current": dbus.Double,
                      "/Dc/0/Power": dbus.Double},
            SOLAR: {"/Dc/0/Voltage": dbus.Double, "/Dc/0/Current": dbus.Double, "/Yield/Power": dbus.Double},
            GRID: {"/Ac/L1/Power": dbus.Double, "/Ac/L3/Power": dbus.Double, "/Ac/Power": dbus.Double,
                   "/NrOfPhases": dbus.Int32},
            SYSTEM: {"/Dc/Battery/Voltage": dbus.Double, "/Dc/Battery/Current": dbus.Double,
                     "/Dc/Battery/Power": dbus.Double, "/Dc/Battery/Soc": dbus.Double,
                     "/Dc/Battery/BatteryService": dbus.String, "/Dc/Pv/Current": dbus.Double,
                     "/Dc/Pv/Power": dbus.Double, "/Dc/Vebus/Current": dbus.Double, "/Dc/Vebus/Power": dbus.Double,
                     "/Ac/Grid/L1/Power": dbus.Double, "/Ac/Grid/L3/Power": dbus.Double,
                     "/Ac/Consumption/L2/Power": dbus.Double, "/Ac/ActiveIn/L1/Power": dbus.Double,
                     "/Ac/ActiveIn/NumberOfPhases": dbus.Int32, "/VebusService": dbus.String},
        }
        for service, paths in expect.items():
            items = self.items(service)
            for path in MANDATORY:
                self.assertIn(path, items, f"{service} lacks {path}")
            self.assertIs(type(items["/DeviceInstance"]), dbus.Int32)
            for path, cls in paths.items():
                with self.subTest(service=service, path=path):
                    self.assertIn(path, items)
                    self.assertIs(type(items[path]), cls)
        self.assertEqual(self.get(VEBUS, "/Hub4/AssistantId"), 5)
        self.assertEqual(self.get(SOLAR, "/Link/ChargeCurrent").signature, "i", "an unset link value is invalid")
        self.assertEqual(self.get(SYSTEM, "/Dc/Battery/BatteryService"), BATTERY)
        self.assertEqual(self.get(SYSTEM, "/VebusService"), VEBUS)
        self.assertEqual(self.get(SYSTEM, "/Ac/ActiveIn/NumberOfPhases"), 3)
        # One connection per service (venus-dbus.md §1.3).
        owners = {self.conn.call_blocking("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                          "GetNameOwner", "s", (n,)) for n in expect}
        self.assertEqual(len(owners), len(expect))

    def test_values_move_and_the_balance_holds(self):
        self.start_sim('[sim]\nupdate_interval = 0.25\nbattery = { r_internal = 0.02 }\n')
        first = self.items(SYSTEM)
        self.until("the SoC moves", lambda: self.get(SYSTEM, "/Dc/Battery/Soc") != first["/Dc/Battery/Soc"])
        self.until("the load moves", lambda: self.get(SYSTEM, "/Ac/Consumption/L1/Power")
                   != first["/Ac/Consumption/L1/Power"])
        self.set(VEBUS, "/Hub4/L1/AcPowerSetpoint", dbus.Double(-800.0))
        for _ in range(8):
            s = self.items(SYSTEM)  # one snapshot: one update
            pv, multi, bat = s["/Dc/Pv/Current"], s["/Dc/Vebus/Current"], s["/Dc/Battery/Current"]
            self.assertGreater(pv, 1.0, "midday: the sun shines")
            self.assertAlmostEqual(pv + multi, bat, delta=0.01, msg=f"DC balance {s}")
            self.assertAlmostEqual(s["/Dc/Pv/Power"] + s["/Dc/Vebus/Power"], s["/Dc/Battery/Power"], delta=1.0)
            grid, cons = s["/Ac/Grid/L1/Power"], s["/Ac/Consumption/L1/Power"]
            multi_ac = self.get(VEBUS, "/Ac/ActiveIn/L1/P")  # may be one update later: noise
            self.assertAlmostEqual(grid, cons + multi_ac, delta=150, msg="AC balance")
            time.sleep(0.25)


class SetpointTest(SimCase):

    def test_external_setpoint_moves_grid_and_battery(self):
        self.start_sim(NIGHT)
        time.sleep(0.5)
        grid0 = self.get(GRID, "/Ac/L1/Power")
        bat0 = self.get(BATTERY, "/Dc/0/Current")
        volts = self.get(BATTERY, "/Dc/0/Voltage")
        self.assertAlmostEqual(grid0, 400.0, delta=1, msg="the default load, no noise")
        self.assertEqual(self.gdbus_set(VEBUS, "/Hub4/L1/AcPowerSetpoint", "<-1500.0>"), "(0,)")
        self.until("the Multi feeds 1500 W", lambda: abs(self.get(VEBUS, "/Ac/ActiveIn/L1/P") + 1500) < 15, 4)
        time.sleep(0.5)
        grid1 = self.get(GRID, "/Ac/L1/Power")
        bat1 = self.get(BATTERY, "/Dc/0/Current")
        self.assertAlmostEqual(grid1 - grid0, -1500, delta=20, msg="export grows by the setpoint")
        self.assertAlmostEqual(self.get(SYSTEM, "/Ac/Grid/L1/Power"), grid1, delta=20)
        expected = -1500 / 0.95 / volts  # efficiency 0.95
        self.assertAlmostEqual(bat1 - bat0, expected, delta=abs(expected) * 0.05, msg="the battery pays for it")
        self.assertEqual(self.get(VEBUS, "/State"), 9, "inverting")
        # Charging from the grid: the other direction.
        self.gdbus_set(VEBUS, "/Hub4/L1/AcPowerSetpoint", "<1000>")
        self.until("the Multi charges", lambda: abs(self.get(VEBUS, "/Ac/ActiveIn/L1/P") - 1000) < 10, 4)
        self.assertGreater(self.get(BATTERY, "/Dc/0/Current"), 1000 * 0.95 / volts * 0.9)
        self.assertAlmostEqual(self.get(GRID, "/Ac/L1/Power"), 1400, delta=20)

    def test_a_battery_that_disallows_discharge_stops_inverting(self):
        self.start_sim(NIGHT)
        self.set(VEBUS, "/Hub4/L1/AcPowerSetpoint", dbus.Double(-1500.0))
        self.until("inverting", lambda: self.get(VEBUS, "/Ac/ActiveIn/L1/P") < -1400)
        self.assertEqual(self.set(BATTERY, "/Sim/AllowToDischarge", dbus.Int32(0)), 0)
        self.until("the BMS says no", lambda: self.get(BATTERY, "/Io/AllowToDischarge") == 0)
        self.assertEqual(self.get(BATTERY, "/Info/MaxDischargeCurrent"), 0.0)
        self.until("the Multi stops inverting", lambda: self.get(VEBUS, "/Ac/ActiveIn/L1/P") > -5, 4)
        self.assertGreater(self.get(BATTERY, "/Dc/0/Current"), -0.1)
        self.assertAlmostEqual(self.get(GRID, "/Ac/L1/Power"), 400, delta=10)
        # A low SoC does the same through the BMS itself.
        self.set(BATTERY, "/Sim/AllowToDischarge", dbus.Int32(-1))
        self.until("inverting again", lambda: self.get(VEBUS, "/Ac/ActiveIn/L1/P") < -1400, 4)
        self.set(BATTERY, "/Sim/Soc", dbus.Double(3.0))
        self.until("empty battery stops it", lambda: self.get(VEBUS, "/Ac/ActiveIn/L1/P") > -5, 4)
        self.assertEqual(self.get(BATTERY, "/Io/AllowToDischarge"), 0)

    def test_the_multi_falls_back_when_the_setpoint_is_not_rewritten(self):
        self.start_sim(NIGHT.replace("vebus = { tau = 0.5 }", "vebus = { tau = 0.5, timeout = 2.0 }"))
        end = time.monotonic() + 4
        while time.monotonic() < end:  # rewriting the same value keeps it alive
            self.set(VEBUS, "/Hub4/L1/AcPowerSetpoint", dbus.Double(-1000.0))
            time.sleep(0.4)
        self.assertAlmostEqual(self.get(VEBUS, "/Ac/ActiveIn/L1/P"), -1000, delta=10)
        self.assertEqual(self.get(VEBUS, "/Sim/FallenBack"), 0)
        stopped = time.monotonic()
        self.until("fallen back to 0 W", lambda: abs(self.get(VEBUS, "/Ac/ActiveIn/L1/P")) < 5, 6)
        self.assertGreater(time.monotonic() - stopped, 1.5, "not before the timeout")
        self.assertEqual(self.get(VEBUS, "/Sim/FallenBack"), 1)
        self.assertEqual(self.get(VEBUS, "/Hub4/L1/AcPowerSetpoint"), -1000.0, "the written value stays readable")


class SystemServiceTest(SimCase):

    def test_the_paths_consumers_read_with_systemcalcs_types(self):
        self.start_sim(NIGHT)
        items = self.items(SYSTEM)
        expect = {"/Control/Dvcc": (dbus.Boolean, True), "/Control/SolarChargeVoltage": (dbus.Int32, 1),
                  "/Control/SolarChargeCurrent": (dbus.Int32, 1), "/Control/BmsParameters": (dbus.Int32, 1),
                  "/Control/MaxChargeCurrent": (dbus.Int32, 1), "/Control/EssState": (dbus.Int32, 2),
                  "/Control/ActiveSocLimit": (dbus.Double, 10.0), "/Control/EffectiveChargeVoltage": (dbus.Double, 55.2),
                  "/Ac/ConsumptionOnOutput/L1/Power": (dbus.Int32, 0), "/Ac/In/0/ServiceName": (dbus.String, GRID),
                  "/Ac/In/0/DeviceInstance": (dbus.Int32, 30), "/ActiveBmsService": (dbus.String, BATTERY),
                  "/AutoSelectedBatteryService": (dbus.String, "MoaT simulated battery on Simulation"),
                  "/Dc/Battery/ChargeVoltage": (dbus.Double, 55.2), "/Serial": (dbus.String, None),
                  "/SystemState/DischargeDisabled": (dbus.Int32, 0), "/Dvcc/Alarms/MultipleBatteries": (dbus.Int32, 0)}
        for path, (cls, value) in expect.items():
            with self.subTest(path=path):
                self.assertIn(path, items)
                self.assertIs(type(items[path]), cls)
                if value is not None:
                    self.assertEqual(items[path], value)
        self.assertIn('"com.victronenergy.battery/512"', items["/AvailableBatteryServices"])
        # DVCC's voltage written to the Multi shows as the effective charge voltage
        self.assertEqual(self.set(VEBUS, "/BatteryOperationalLimits/MaxChargeVoltage", dbus.Double(54.0)), 0)
        self.until("the system shows the written voltage",
                   lambda: self.get(SYSTEM, "/Control/EffectiveChargeVoltage") == 54.0)

    def test_system_false_leaves_room_for_victrons_systemcalc(self):
        self.start_sim(NIGHT + "system = false\n", wait=False)
        self.host.wait_for("simulating 1 phase", 10)
        for name in (VEBUS, BATTERY, SOLAR, GRID, SETTINGS):
            self.assertTrue(self.has_owner(name), name)
        self.assertFalse(self.has_owner(SYSTEM))
        # the name is free for another program (Victron's systemcalc)
        self.assertEqual(self.conn.request_name(SYSTEM, dbus.bus.NAME_FLAG_DO_NOT_QUEUE),
                         dbus.bus.REQUEST_NAME_REPLY_PRIMARY_OWNER)


class DvccTest(SimCase):
    """What Victron's systemcalc writes to a Multi every second with DVCC on."""

    def systemcalc_set(self, path, value):
        # dbusmonitor's SetValue: a wrapped value, no interface field
        return int(self.conn.call_blocking(VEBUS, path, None, "SetValue", "v", (value,), timeout=5))

    def test_the_multi_takes_dvccs_limits_and_honours_them(self):
        self.start_sim(NIGHT)
        limits = {"/BatteryOperationalLimits/MaxChargeVoltage": dbus.Double(55.0),
                  "/BatteryOperationalLimits/MaxChargeCurrent": dbus.Int32(10),
                  "/BatteryOperationalLimits/MaxDischargeCurrent": dbus.Double(150.0),
                  "/BatteryOperationalLimits/BatteryLowVoltage": dbus.Double(46.0)}
        for path, value in limits.items():
            self.assertEqual(self.systemcalc_set(path, value), 0, path)
        v = self.get(VEBUS, "/BatteryOperationalLimits/MaxChargeCurrent")
        self.assertEqual((v, type(v)), (10.0, dbus.Double), "stored with the Venus type")
        self.set(VEBUS, "/Hub4/L1/AcPowerSetpoint", dbus.Double(3000.0))
        # no sun: the battery current is the Multi's, held to the written limit
        self.until("the battery charges with 10 A", lambda: abs(self.get(BATTERY, "/Dc/0/Current") - 10) < 0.2, 5)
        self.until("the grid pays only for 10 A",
                   lambda: self.get(VEBUS, "/Ac/ActiveIn/L1/P") < 10 * 56 / 0.95 + 5, 3)
        # the Multi's own charge current limit, held in RAM
        self.assertEqual(self.systemcalc_set("/Dc/0/MaxChargeCurrent", dbus.Double(4.0)), 0)
        self.until("the battery charges with 4 A", lambda: abs(self.get(BATTERY, "/Dc/0/Current") - 4) < 0.2, 5)
        self.assertEqual(self.get(VEBUS, "/Dc/0/MaxChargeCurrent"), 4.0)
        # the discharge limit, as DVCC passes the BMS's on
        self.assertEqual(self.systemcalc_set("/BatteryOperationalLimits/MaxDischargeCurrent", dbus.Double(5.0)), 0)
        self.set(VEBUS, "/Hub4/L1/AcPowerSetpoint", dbus.Double(-3000.0))
        self.until("the battery gives 5 A", lambda: abs(self.get(BATTERY, "/Dc/0/Current") + 5) < 0.2, 5)
        # refused: negative limits, and paths a Multi does not let anyone write
        self.assertEqual(self.systemcalc_set("/BatteryOperationalLimits/MaxChargeCurrent", dbus.Double(-1.0)), 2)
        self.assertEqual(self.systemcalc_set("/BatteryOperationalLimits/MaxChargeCurrent", dbus.Double(-2.0)), 2)
        self.assertEqual(self.systemcalc_set("/Dc/0/Voltage", dbus.Double(50.0)), 1)
        self.assertEqual(self.systemcalc_set("/Dc/0/Voltage", dbus.Double(51.0)), 1)
        self.host.wait_for("MaxChargeCurrent by .* refused with 2: its validator said no", 3)
        self.host.wait_for("/Dc/0/Voltage by .* refused with 1: not writeable", 3)
        self.assertEqual(len(self.host.find_all("INFO.*MaxChargeCurrent by .* refused")), 1, "once per path and reason")
        self.assertEqual(len(self.host.find_all("INFO.*/Dc/0/Voltage by .* refused")), 1, "once per path and reason")


class SettingsTest(SimCase):

    def test_ess_and_dvcc_settings_exist_with_their_types(self):
        self.start_sim(NIGHT)
        self.until("the settings service", lambda: self.has_owner(SETTINGS))
        expect = {
            "/Settings/CGwacs/Hub4Mode": (dbus.Int32, 3), "/Settings/CGwacs/OvervoltageFeedIn": (dbus.Int32, 0),
            "/Settings/CGwacs/PreventFeedback": (dbus.Int32, 0), "/Settings/CGwacs/MaxFeedInPower": (dbus.Double, -1),
            "/Settings/CGwacs/AcPowerSetPoint": (dbus.Double, 50),
            "/Settings/CGwacs/BatteryLife/MinimumSocLimit": (dbus.Double, 10),
            "/Settings/CGwacs/BatteryLife/State": (dbus.Int32, 2),
            "/Settings/SystemSetup/MaxChargeCurrent": (dbus.Int32, -1),
            "/Settings/SystemSetup/MaxChargeVoltage": (dbus.Double, 0), "/Settings/Services/Bol": (dbus.Int32, 1),
            "/Settings/SystemSetup/BatteryService": (dbus.String, "default"),
        }
        for path, (cls, value) in expect.items():
            with self.subTest(path=path):
                v = self.get(SETTINGS, path)
                self.assertIs(type(v), cls)
                self.assertEqual(v, value)
        self.assertEqual(self.set(SETTINGS, "/Settings/CGwacs/Hub4Mode", dbus.Int32(7)), -1, "out of range")
        self.assertEqual(self.set(SETTINGS, "/Settings/CGwacs/MaxFeedInPower", dbus.Int32(500)), 0)
        self.assertEqual(type(self.get(SETTINGS, "/Settings/CGwacs/MaxFeedInPower")), dbus.Double, "kept its type")

    def test_the_multi_follows_setpoints_only_in_hub4_mode_3(self):
        self.start_sim(NIGHT)
        self.set(VEBUS, "/Hub4/L1/AcPowerSetpoint", dbus.Double(-1000.0))
        self.until("inverting", lambda: self.get(VEBUS, "/Ac/ActiveIn/L1/P") < -950)
        self.assertEqual(self.set(SETTINGS, "/Settings/CGwacs/Hub4Mode", dbus.Int32(1)), 0)
        self.until("the Multi ignores the setpoint", lambda: abs(self.get(VEBUS, "/Ac/ActiveIn/L1/P")) < 5, 4)
        self.set(VEBUS, "/Hub4/L1/AcPowerSetpoint", dbus.Double(-800.0))
        time.sleep(1.0)
        self.assertLess(abs(self.get(VEBUS, "/Ac/ActiveIn/L1/P")), 5, "a new setpoint is ignored too")
        self.host.wait_for(r"Hub4Mode 3 -> 1: the Multi ignores")
        self.set(SETTINGS, "/Settings/CGwacs/Hub4Mode", dbus.Int32(3))
        self.set(VEBUS, "/Hub4/L1/AcPowerSetpoint", dbus.Double(-800.0))
        self.until("back in mode 3", lambda: abs(self.get(VEBUS, "/Ac/ActiveIn/L1/P") + 800) < 10, 4)

    def test_settings_persist_in_the_configured_file(self):
        file = os.path.join(self.tmp, "sim-settings.toml")
        self.start_sim(NIGHT + 'settings = { file = "sim-settings.toml" }\n')
        self.until("the settings service", lambda: self.has_owner(SETTINGS))
        self.assertEqual(self.set(SETTINGS, "/Settings/CGwacs/AcPowerSetPoint", dbus.Double(-120.0)), 0)
        self.host.signal(15)
        rc, _ = self.host.wait(6)
        self.assertEqual(rc, 0, self.host.describe())
        with open(file) as f:
            self.assertIn("-120.0", f.read())
        self.host = self.start_host(os.path.join(self.tmp, "moat.toml"))
        self.wait_until("the settings service again", lambda: self.has_owner(SETTINGS), 10, self.host)
        self.assertEqual(self.get(SETTINGS, "/Settings/CGwacs/AcPowerSetPoint"), -120.0, "read back")

    def test_settings_can_be_left_to_another_service(self):
        self.start_sim(NIGHT + "settings = { enabled = false }\n")
        time.sleep(0.3)
        self.assertFalse(self.has_owner(SETTINGS))


class FaultTest(SimCase):
    BODY = '[sim]\nupdate_interval = 0.25\nfaults = { vanish_seconds = 2.0 }\n'

    def test_freeze_stops_updates_but_the_service_answers(self):
        self.start_sim(self.BODY)
        a = self.get(BATTERY, "/Soc")
        self.until("the SoC moves", lambda: self.get(BATTERY, "/Soc") != a)
        self.assertEqual(self.set(BATTERY, "/Sim/Fault", dbus.Int32(7)), 2, "out of range: refused")
        self.assertEqual(self.set(BATTERY, "/Soc", dbus.Double(50.0)), 1, "a measurement is not writeable")
        self.assertEqual(self.set(BATTERY, "/Sim/Fault", dbus.Int32(1)), 0)
        time.sleep(0.6)
        frozen = self.get(BATTERY, "/Soc")
        time.sleep(1.5)
        self.assertEqual(self.get(BATTERY, "/Soc"), frozen, "a frozen service does not update")
        self.assertEqual(self.get(SYSTEM, "/Dc/Battery/Soc"), frozen, "the system sees what is on the bus")
        self.assertEqual(self.get(BATTERY, "/Sim/Fault"), 1)
        self.set(BATTERY, "/Sim/Fault", dbus.Int32(0))
        self.until("updates again", lambda: self.get(BATTERY, "/Soc") != frozen)

    def test_invalid_publishes_invalid_values_but_keeps_the_identity(self):
        self.start_sim(self.BODY)
        self.set(GRID, "/Sim/Fault", dbus.Int32(2))
        self.until("invalid grid power", lambda: is_invalid(self.get(GRID, "/Ac/L1/Power")))
        self.assertIs(type(self.get(GRID, "/DeviceInstance")), dbus.Int32, "the identity stays valid")
        self.assertEqual(self.get(GRID, "/ProductName"), "MoaT simulated grid meter")
        self.until("the system has no grid figure", lambda: is_invalid(self.get(SYSTEM, "/Ac/Grid/L1/Power")))
        self.set(GRID, "/Sim/Fault", dbus.Int32(0))
        self.until("valid again", lambda: isinstance(self.get(GRID, "/Ac/L1/Power"), dbus.Double))

    def test_vanish_leaves_without_invalidating_and_comes_back(self):
        self.start_sim(self.BODY)
        watcher = BusClient(self.bus.address)  # records every BusItem signal
        self.addCleanup(watcher.close)
        self.set(BATTERY, "/Sim/Fault", dbus.Int32(3))
        gone = time.monotonic()
        self.until("the battery left the bus", lambda: not self.has_owner(BATTERY), 2)
        watcher.pump(timeout=0.5)
        for _, member, path, arg in watcher.signals():
            if member == "ItemsChanged":
                for key in ("/Soc", "/Info/MaxChargeVoltage"):
                    if key in arg:
                        self.assertFalse(is_invalid(arg[key]["Value"]), f"{key} was invalidated on the way out")
        self.until("the system lost its battery", lambda: is_invalid(self.get(SYSTEM, "/Dc/Battery/Soc")), 2)
        self.until("the battery is back", lambda: self.has_owner(BATTERY), 5)
        self.assertGreater(time.monotonic() - gone, 1.5)
        self.assertEqual(self.get(BATTERY, "/Sim/Fault"), 0)
        self.until("the system has its battery again",
                   lambda: isinstance(self.get(SYSTEM, "/Dc/Battery/Soc"), dbus.Double), 2)

    def test_faults_from_the_configuration(self):
        self.start_sim('[sim]\nupdate_interval = 0.25\nfaults = { grid = "invalid", vebus = "vanish", '
                       'vanish_seconds = 0.0 }\n')
        self.assertTrue(is_invalid(self.get(GRID, "/Ac/Power")))
        self.assertEqual(self.get(GRID, "/Sim/Fault"), 2)
        time.sleep(1)
        self.assertFalse(self.has_owner(VEBUS), "vanished from the start, for good")
        self.assertTrue(is_invalid(self.get(SYSTEM, "/VebusService")))


class DemoTest(SimCase):

    def test_demo_runs_the_controller_and_the_status_line_on_the_simulation(self):
        demo = os.path.join(SOURCE_DIR, "config", "demo.toml")
        # debug: the simulated Multi logs its setpoint writes there
        h = HostProcess(["--demo", "--config", demo, "--plugin-dir", PLUGINS, "--log-level", "debug"],
                        log_path=os.path.join(self.tmp, "demo.log"), env=env_without_bus())
        self.addCleanup(h.stop)
        m, _ = h.wait_for(r"demo: private dbus-daemon \(pid (\d+)\) at (\S+)", 10)
        pid, address = int(m.group(1)), m.group(2)
        self.addCleanup(lambda: pid_alive(pid) and os.kill(pid, 9))
        h.wait_for(r"\[sim\] simulating", 10)
        conn = dbus.bus.BusConnection(address)
        try:
            soc = conn.call_blocking(SYSTEM, "/Dc/Battery/Soc", BUSITEM, "GetValue", "", (), timeout=5)
            self.assertIsInstance(soc, dbus.Double)
            hub4 = conn.call_blocking(SETTINGS, "/Settings/CGwacs/Hub4Mode", BUSITEM, "GetValue", "", (), timeout=5)
            self.assertEqual(hub4, 3)
        finally:
            conn.close()
        h.wait_for(r"\[inverter\] SET inverter -\d+ ∑", 10)  # the controller writes for real
        h.wait_for(r"INFO \[statusline\] \d+\.\d+[+-]", 5)  # the line in the log
        mark = h.mark()
        h.signal(2)
        rc, _ = h.wait(6)
        self.assertEqual(rc, 0, h.describe())
        self.assertTrue(h.find(r"\[inverter\] SET inverter 0 ∑ 0 0 0", since=mark), h.describe())
        self.assertTrue(h.find(r"\[sim\] every phase got a setpoint after the stop", since=mark), h.describe())
        for k in (1, 2, 3):  # the sim logs changed setpoints ("-397 W"): the last value of each phase is 0
            changes = h.find_all(rf"/Hub4/L{k}/AcPowerSetpoint written by \S+: \S+ W -> (\S+) W")
            last = float(changes[-1].group(1)) if changes else 0.0  # never changed: still the initial 0 W
            self.assertEqual(last, 0.0, f"L{k}: not left at 0 W on Ctrl-C\n{h.describe()}")
        self.assertTrue(h.find(r"/Hub4/L\d/AcPowerSetpoint written by \S+: \S+ W -> -?\d+ W"), "writes are logged")
        self.assertFalse(h.find(r"not writing SET inverter 0", since=mark), h.describe())
        self.assertFalse(pid_alive(pid), "the private dbus-daemon is gone")
        children = subprocess.run(["pgrep", "-P", str(h.pid)], capture_output=True, text=True).stdout.split()
        self.assertEqual(children, [], "no stray child process")


if __name__ == "__main__":
    unittest.main(verbosity=2)

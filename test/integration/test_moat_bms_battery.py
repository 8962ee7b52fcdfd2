"""The moat-bms battery through the simulator's faults: the host reads the
simulated controller (build/test/moat-bms-tool sim on a pty) and publishes
com.victronenergy.battery.batt on a private bus. python3-dbus records every
ItemsChanged with its arrival time; each fault is injected on the simulator's
stdin and the time until the safe state S (or one blocked direction) shows is
measured against its deadline. The measured times are printed (-v) for the
issue note.

S: AllowToCharge = AllowToDischarge = 0, both current limits 0, /Connected 0,
/Dc/0/* invalid, /State 10, /Error 12, /Alarms/InternalFailure 2, all in one
ItemsChanged; /Info/MaxChargeVoltage and /Info/BatteryLowVoltage stay valid.
"""

import os
import signal
import subprocess
import sys
import time
import unittest

from moattest import BusClient, HostTestCase, env_without_bus, run_host, toml_string
from test_moat_bms import PLUGINS, BmsSim

BATTERY = "com.victronenergy.battery.batt"
BUSITEM = "com.victronenergy.BusItem"
BMS = "org.m_o_a_t.bms"

S_VALUES = {"/Io/AllowToCharge": 0, "/Io/AllowToDischarge": 0, "/Info/MaxChargeCurrent": 0.0,
            "/Info/MaxDischargeCurrent": 0.0, "/Connected": 0, "/State": 10, "/Error": 12,
            "/Alarms/InternalFailure": 2}
S_INVALID = ["/Dc/0/Voltage", "/Dc/0/Current", "/Dc/0/Power"]


def invalid(v):
    return hasattr(v, "signature") and len(v) == 0  # an empty array: the Venus "no value"


def report(what, seconds, deadline):
    print(f"\n  [fault-to-S] {what}: {seconds:.2f} s (deadline {deadline:g} s)", file=sys.stderr)


class TimedClient(BusClient):
    """BusClient whose signals carry their arrival time."""

    def _on_signal(self, arg, path=None, member=None):
        self.events.append(("signal", str(member), str(path), arg, time.monotonic()))

    def items_changed(self, since):
        return [(e[3], e[4]) for e in self.events if e[0] == "signal" and e[1] == "ItemsChanged" and e[4] >= since]


class BatteryHost(HostTestCase):
    CELLS = 16
    SIM_ARGS = ()
    EXTRA = ""
    ENV = None

    def setUp(self):
        super().setUp()
        self.start_bus()
        self.link = os.path.join(self.tmp, "ttyBMS")
        self.sim = BmsSim(self.link, "--cells", str(self.CELLS), *self.SIM_ARGS, log=os.path.join(self.tmp, "sim.log"))
        self.addCleanup(self.sim.stop)
        self.work = os.path.join(self.tmp, "batt.work")
        config = self.write_config(f"""
            [moat-bms]
            device = {toml_string(self.link)}
            backoff_initial_s = 0.5
            backoff_max_s = 1
            rpc_timeout_s = 1
            work_state = {toml_string(self.work)}
            """ + self.EXTRA, plugin_dir=PLUGINS)
        self.client = TimedClient(self.bus.address)
        self.addCleanup(self.client.close)
        self.host = self.start_host(config, env=dict(os.environ, **self.ENV) if self.ENV else None)
        self.host.wait_for(r"\[moat-bms/battery\].*com\.victronenergy\.battery\.batt registered", 30.0)
        self.until_items("both directions allowed", lambda i: i["/Io/AllowToCharge"] == 1 and i["/Io/AllowToDischarge"] == 1, 10)

    def mark(self):
        """Now, after every signal sent so far was taken in (and dropped)."""
        self.client.pump(timeout=0.1)
        self.client.events.clear()
        return time.monotonic()

    # ---- reading ----
    def items(self):
        items = self.client.call("/", "GetItems", dest=BATTERY)
        return {str(p): v["Value"] for p, v in items.items()}

    def until_items(self, what, pred, timeout):
        return self.wait_until(what, lambda: (lambda i: i if pred(i) else None)(self.items()), timeout, self.host)

    def bms(self, path, method, *args, signature=None, timeout=5.0):
        return self.client.call(path, method, *args, signature=signature, iface=BMS, dest=BATTERY, timeout=timeout)

    def assert_safe(self, i):
        for p, v in S_VALUES.items():
            self.assertEqual(i[p], v, p)
        for p in S_INVALID:
            self.assertTrue(invalid(i[p]), f"{p} = {i[p]!r}")
        self.assertFalse(invalid(i["/Info/MaxChargeVoltage"]), "MaxChargeVoltage stays valid (DVCC applies the zeros)")
        self.assertFalse(invalid(i["/Info/BatteryLowVoltage"]))

    def wait_for_s(self, since, what, deadline, still_there=True, timed=True):
        """The first ItemsChanged after `since` that carries S as a whole; returns its delay."""
        def found():
            self.client.pump(timeout=0.05)
            for changes, at in self.client.items_changed(since):
                c = {str(p): v["Value"] for p, v in changes.items()}
                if c.get("/Io/AllowToCharge") == 0 or c.get("/Connected") == 0:
                    return c, at
            return None
        c, at = self.wait_until(f"S after {what}", found, deadline + 10, self.host)
        for p, v in S_VALUES.items():
            if p in ("/Info/MaxChargeCurrent", "/Info/MaxDischargeCurrent", "/Io/AllowToCharge", "/Io/AllowToDischarge", "/Alarms/InternalFailure") and p not in c:
                continue  # already at the S value before the fault
            self.assertEqual(c.get(p), v, f"{p} in the one ItemsChanged of S: {c!r}; all: {self.client.items_changed(since)!r}")
        for p in S_INVALID:
            self.assertTrue(invalid(c.get(p, [1])), f"{p} invalid in the same ItemsChanged: {c!r}")
        delay = at - since
        if timed:
            report(what, delay, deadline)
            self.assertLessEqual(delay, deadline + 1.0, what)
        if still_there:
            self.assert_safe(self.items())
        return delay

    def recovers(self, timeout=30):
        i = self.until_items("recovery: both directions allowed again",
                             lambda i: i["/Io/AllowToCharge"] == 1 and i["/Io/AllowToDischarge"] == 1 and i["/Connected"] == 1, timeout)
        self.assertFalse(invalid(i["/Dc/0/Voltage"]))
        self.assertEqual(i["/State"], 9)


class BatteryService(BatteryHost):
    def test_the_service_at_first_readiness_has_real_values(self):
        i = self.items()
        self.assertEqual(i["/ProductId"], 0x1E14A)
        self.assertEqual(str(self.client.call("/ProductId", "GetText", dest=BATTERY)), "0x1E14A")
        self.assertEqual(str(i["/ProductName"]), "MoaT BMS")
        self.assertIsInstance(i["/DeviceInstance"], self.client.dbus.Int32)
        self.assertEqual(i["/DeviceInstance"], 512)  # no settings service here: the preferred one
        self.assertEqual(float(i["/Capacity"]), 280.0)
        self.assertIsInstance(i["/Dc/0/Voltage"], self.client.dbus.Double)
        self.assertAlmostEqual(float(i["/Dc/0/Voltage"]), 16 * 3.3, delta=0.2)
        self.assertIsInstance(i["/State"], self.client.dbus.Int32)
        self.assertEqual(i["/State"], 9)
        self.assertEqual(i["/Error"], 0)
        self.assertEqual(i["/Connected"], 1)
        self.assertEqual(i["/System/NrOfCellsPerBattery"], 16)
        self.assertIsInstance(i["/System/MinVoltageCellId"], self.client.dbus.String)
        self.assertGreater(float(i["/Info/MaxChargeCurrent"]), 0)
        self.assertGreater(float(i["/Info/MaxDischargeCurrent"]), 0)
        self.assertGreater(float(i["/Info/MaxChargeVoltage"]), 50)
        self.assertTrue(invalid(i["/Soh"]))
        self.assertFalse(invalid(i["/Soc"]))
        self.assertRegex(str(self.client.call("/Dc/0/Voltage", "GetText", dest=BATTERY)), r"^5\d\.\d\dV$")
        # gdbus, an independent client.
        out = subprocess.run(["gdbus", "call", "--address", self.bus.address, "--dest", BATTERY, "--object-path",
                              "/Info/MaxChargeVoltage", "--method", "com.victronenergy.BusItem.GetText"],
                             capture_output=True, text=True, timeout=10)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertRegex(out.stdout, r"'\d+\.\d\d V'")

    def test_the_bms_interface(self):
        self.assertEqual(self.bms("/bms", "GetNBatteries"), 1)
        v = self.bms("/bms/0", "GetVoltages")
        self.assertAlmostEqual(float(v["cells"]), 16 * 3.3, delta=0.2)
        self.assertEqual(len(self.bms("/bms/0", "GetCellVoltages")), 16)
        self.assertEqual(self.bms("/bms/0", "GetNCells"), 16)
        self.assertEqual(str(self.bms("/bms/0", "GetName")), "battery1")
        cfg = self.bms("/bms", "GetConfig")
        self.assertAlmostEqual(float(cfg["cell"]["u"]["lim"]["max"]), 3.4, places=5)  # a float32 on the wire
        work = self.bms("/bms/0", "GetWork", False, False, signature="bb")
        self.assertIn("sum", work)
        # Bad arguments: false or a clear error, the state unchanged.
        self.assertFalse(self.bms("/bms/0", "SetCapacity", 1e6, 1.5, False, signature="ddb"))
        self.assertFalse(self.bms("/bms/0", "SetWork", -1.0, signature="d"))
        self.assertEqual(self.bms("/bms/0", "GetWork", False, False, signature="bb")["sum"], work["sum"])
        self.assertEqual(self.client.error_name("/bms/0/20", "GetVoltage", iface=BMS, dest=BATTERY),
                         "org.m_o_a_t.bms.Error.NoSuchCell")
        self.assertEqual(self.client.error_name("/bms/0", "SetWork", "x", signature="s", iface=BMS, dest=BATTERY),
                         "org.freedesktop.DBus.Error.InvalidArgs")
        self.assertFalse(self.bms("/bms/0/3", "SetBalanceVoltage", 4.0, signature="d"), "above the cell: refused")
        self.assertEqual(self.bms("/bms/0/3", "GetBalanceVoltage"), 0.0)

    def test_calibration(self):
        scale = float(self.bms("/bms", "GetConfig")["batt"]["u"]["scale"])
        pack = float(self.bms("/bms/0", "GetVoltages")["bms"])
        # A reference 2 % above the reading: the scale grows by 2 % on the controller (and is stored).
        self.assertTrue(self.bms("/bms/0", "SetVoltage", pack * 1.02, signature="d"))
        self.wait_until("the new scale in the controller's configuration",
                        lambda: abs(float(self.bms("/bms", "GetConfig")["batt"]["u"]["scale"]) - scale * 1.02) < scale * 1e-4, 10, self.host)
        self.host.wait_for(r"controller configuration changed and stored", 5.0)
        # A factor outside [0.5, 2]: refused, nothing changed.
        self.assertEqual(self.client.error_name("/bms/0", "SetVoltage", pack * 3, signature="d", iface=BMS, dest=BATTERY),
                         "org.m_o_a_t.bms.Error.InvalidArgument")
        # No current flows: |reading - offset| < 1 A, refused.
        self.assertEqual(self.client.error_name("/bms/0", "SetCurrent", 10.0, signature="d", iface=BMS, dest=BATTERY),
                         "org.m_o_a_t.bms.Error.InvalidArgument")
        self.assertTrue(self.bms("/bms/0", "SetCurrentOffset", 0.25, signature="d"))
        self.wait_until("the current offset", lambda: float(self.bms("/bms/0", "GetCurrentOffset")) == 0.25, 10, self.host)
        # The installation procedure's calls through gdbus (introspection gives it the signatures).
        out = subprocess.run(["gdbus", "call", "--address", self.bus.address, "--dest", BATTERY, "--object-path", "/bms/0",
                              "--method", "org.m_o_a_t.bms.GetWork", "true", "true"], capture_output=True, text=True, timeout=10)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("'sum'", out.stdout)

    def test_the_energy_record_is_saved_on_stop(self):
        since = self.mark()
        self.host.signal(signal.SIGTERM)
        self.assertEqual(self.host.wait(10)[0], 0)
        self.wait_for_s(since, "orderly stop (SIGTERM)", 1.0, still_there=False)
        self.host.wait_for(r"safe state reached", 1.0)
        self.assertFalse(self.client.name_has_owner(BATTERY), "the name is released after S")
        with open(self.work) as f:
            self.assertTrue(f.read().startswith("moat-bms-work 1 "))


class CellLimits(BatteryHost):
    def test_cell_high_blocks_charging_then_trips(self):
        since = self.mark()
        self.sim.command("voltage 3 3.61")  # >= hi_set 3.605
        i = self.until_items("charging blocked", lambda i: i["/Io/AllowToCharge"] == 0, 10)
        report("cell high (3.61 V): charging blocked", time.monotonic() - since, 2.0 + 1)
        self.assertEqual(i["/Io/AllowToDischarge"], 1, "discharging untouched")
        self.assertEqual(float(i["/Info/MaxChargeCurrent"]), 0.0)
        self.sim.command("voltage 3 3.3")
        self.until_items("charging allowed again", lambda i: i["/Io/AllowToCharge"] == 1, 10)
        # At cell.u.max (3.63): a trip, the relay forced off, until ReleaseRelay.
        self.sim.command("voltage 3 3.64")
        i = self.until_items("the trip", lambda i: i["/Alarms/HighCellVoltage"] == 2 and i["/Io/AllowToDischarge"] == 0, 10)
        self.host.wait_for(r"trip: .*relay forced off until ReleaseRelay", 5.0)
        self.host.wait_for(r"relay: rly st=false sent", 5.0)
        self.sim.command("voltage 3 3.3")
        self.wait_until("the model reads 3.3 V again", lambda: float(self.bms("/bms/0", "GetCellVoltages")[3]) < 3.4, 10, self.host)
        i = self.items()
        self.assertEqual(i["/Alarms/HighCellVoltage"], 2, "latched until ReleaseRelay")
        self.assertEqual(i["/Io/AllowToCharge"], 0)
        self.assertEqual(i["/Io/AllowToDischarge"], 0)
        self.assertTrue(self.bms("/bms/0", "ReleaseRelay"))
        self.recovers()

    def test_cell_low_blocks_discharging(self):
        self.sim.command("voltage 7 2.79")  # <= lo_set 2.8
        i = self.until_items("discharging blocked", lambda i: i["/Io/AllowToDischarge"] == 0, 10)
        self.assertEqual(i["/Io/AllowToCharge"], 1, "charging untouched")
        self.sim.command("voltage 7 3.3")
        self.until_items("discharging allowed again", lambda i: i["/Io/AllowToDischarge"] == 1, 10)


class PackAndTemperature(BatteryHost):
    def test_pack_high_blocks_charging_then_trips(self):
        pack = float(self.bms("/bms/0", "GetVoltages")["bms"])
        since = self.mark()
        self.sim.command(f"u_gain {57.9 / pack:.5f}")  # 57.9 V: above umax_p, below batt.u.max 58
        i = self.until_items("charging blocked", lambda i: i["/Io/AllowToCharge"] == 0, 10)
        report("pack high: charging blocked", time.monotonic() - since, 5.0 + 1)
        self.assertEqual(i["/Io/AllowToDischarge"], 1, "discharging untouched")
        self.assertEqual(i["/Alarms/HighVoltage"], 1)
        self.sim.command("u_gain 1")
        self.until_items("charging allowed again", lambda i: i["/Io/AllowToCharge"] == 1, 10)
        self.sim.command("u_gain 1.12")  # 59.1 V: a trip
        i = self.until_items("the trip", lambda i: i["/Alarms/HighVoltage"] == 2 and i["/Io/AllowToDischarge"] == 0, 10)
        self.host.wait_for(r"trip: pack .* batt\.u\.max", 5.0)
        self.sim.command("u_gain 1")
        self.wait_until("the pack reads normal again", lambda: float(self.bms("/bms/0", "GetVoltages")["bms"]) < 55, 10, self.host)
        self.assertTrue(self.bms("/bms/0", "ReleaseRelay"))
        self.recovers()

    def test_pack_low_blocks_discharging(self):
        self.sim.command("u_gain 0.81")  # 42.8 V: below umin_p, above batt.u.min 41.6
        i = self.until_items("discharging blocked", lambda i: i["/Io/AllowToDischarge"] == 0, 10)
        self.assertEqual(i["/Io/AllowToCharge"], 1, "charging untouched")
        self.assertEqual(i["/Alarms/LowVoltage"], 1)
        self.sim.command("u_gain 1")
        self.recovers()

    def test_temperature(self):
        since = self.mark()
        self.sim.command("traw 4 729")  # 47 °C: above cell.batt.max 45
        i = self.until_items("charging blocked", lambda i: i["/Io/AllowToCharge"] == 0, 15)
        report("cell at 47 °C: charging blocked", time.monotonic() - since, 5.0 + 1)
        self.assertEqual(i["/Io/AllowToDischarge"], 1, "discharging untouched")
        self.assertAlmostEqual(float(i["/System/MaxCellTemperature"]), 47.0, delta=0.6)
        self.assertEqual(str(i["/System/MaxTemperatureCellId"]), "4")
        self.sim.command("traw 4 768")  # 52 °C: more than 5 °C above: no discharging either
        self.until_items("discharging blocked", lambda i: i["/Io/AllowToDischarge"] == 0, 15)
        self.assertEqual(self.items()["/Connected"], 1, "no trip, not the safe state")
        self.sim.command("traw 4 512")  # 25 °C
        self.recovers()

    def test_relay_off_blocks_both_directions(self):
        self.assertTrue(self.bms("/bms/0", "ForceRelay", False, signature="b"))
        i = self.until_items("both blocked", lambda i: i["/Io/AllowToCharge"] == 0 and i["/Io/AllowToDischarge"] == 0, 10)
        self.assertEqual(i["/Connected"], 1, "not the safe state: the battery is there, its relay is open")
        self.wait_until("the relay reported off", lambda: tuple(self.bms("/bms/0", "GetRelayState")) == (False, True), 10, self.host)
        self.assertTrue(self.bms("/bms/0", "ReleaseRelay"))
        self.recovers()


class NameTaken(HostTestCase):
    def test_a_taken_name_is_a_clear_error(self):
        import dbus
        self.start_bus()
        squatter = dbus.bus.BusConnection(self.bus.address)
        self.addCleanup(squatter.close)
        squatter.request_name(BATTERY, dbus.bus.NAME_FLAG_DO_NOT_QUEUE)
        link = os.path.join(self.tmp, "ttyBMS")
        sim = BmsSim(link, "--cells", "4")
        self.addCleanup(sim.stop)
        config = self.write_config(f"""
            [moat-bms]
            device = {toml_string(link)}
            work_state = {toml_string(os.path.join(self.tmp, "w"))}
            """, plugin_dir=PLUGINS)
        host = self.start_host(config)
        host.wait_for(r"com\.victronenergy\.battery\.batt is already owned by :1\.\d+", 30.0)


class ConfigErrors(HostTestCase):
    """--check-config finds the battery keys' errors with file, line and key."""

    def check(self, body):
        path = self.write_config(body, plugin_dir=PLUGINS)
        rc, out, err = run_host(["--check-config", path], env=env_without_bus())
        return rc, path, err

    def test_staleness_below_three_poll_intervals(self):
        rc, path, err = self.check("""
            [moat-bms]
            device = "/dev/ttyACM0"
            stale_cell_s = 5
            """)
        self.assertEqual(rc, 3, err)
        self.assertRegex(err, os.path.basename(path) + r":\d+: \[moat-bms\] .*stale_cell_s.*below 3 × t\.cellvoltage")

    def test_an_override_that_is_no_number(self):
        rc, path, err = self.check("""
            [moat-bms]
            device = "/dev/ttyACM0"
            [moat-bms.config.batt.cell.u.lim]
            max = nan
            """)
        self.assertEqual(rc, 3, err)
        self.assertRegex(err, os.path.basename(path) + r":\d+: \[moat-bms\] .*config\.batt\.cell\.u\.lim\.max.*finite")

    def test_a_local_configuration_is_checked_whole(self):
        rc, path, err = self.check("""
            [moat-bms]
            device = "/dev/ttyACM0"
            config_source = "local"
            [moat-bms.config.batt.batt]
            n = 40
            """)
        self.assertEqual(rc, 3, err)
        self.assertRegex(err, os.path.basename(path) + r":\d+: \[moat-bms\] config\.batt\.batt\.n: ")
        self.assertIn("'batt.cell.u.max': missing (required)", err)

    def test_a_good_configuration(self):
        rc, path, err = self.check("""
            [moat-bms]
            device = "/dev/ttyACM0"
            [moat-bms.config.batt.cell.u.lim]
            max = 3.45
            """)
        self.assertEqual(rc, 0, err)


if __name__ == "__main__":
    unittest.main()

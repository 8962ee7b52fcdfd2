"""The inverter plugin under the real host, against fake ESS services
(test/fixtures/fake_ess.py: system, vebus, battery, settings) on a private bus.

Every setpoint the plugin writes is recorded by the fake vebus service with a
CLOCK_MONOTONIC timestamp, so the tests check signs, magnitudes and timing
from an independent process. Time constants are small (config keys)."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import unittest

import moattest
from moattest import HostTestCase, spawn, stop_process, _readline_with_timeout

FIXTURES = os.path.join(moattest.SOURCE_DIR, "test", "fixtures")
FAKE_ESS = os.path.join(FIXTURES, "fake_ess.py")
PLUGINS = os.path.join(moattest.BUILD_DIR, "plugins")

VEBUS = "com.victronenergy.vebus.ttyS4"
BATTERY = "com.victronenergy.battery.ttyO1"
SYSTEM = "com.victronenergy.system"
SETTINGS = "com.victronenergy.settings"
CONTROL = "org.m_o_a_t.inv.main"
VENUS = "com.victronenergy.moatinv.main"
INV = "org.m_o_a_t.inv"


def system_items():
    items = {
        "/VebusService": VEBUS, "/Dc/Battery/BatteryService": BATTERY,
        "/Ac/ActiveIn/NumberOfPhases": 3, "/Dc/Pv/Current": 0.0, "/Dc/Battery/Voltage": 52.0,
        "/Dc/Battery/Current": 0.0, "/Dc/Vebus/Current": 0.0, "/Dc/Battery/Soc": 50.0,
    }
    for k in (1, 2, 3):
        items[f"/Ac/Consumption/L{k}/Power"] = 300.0
        items[f"/Ac/Grid/L{k}/Power"] = 300.0
        items[f"/Ac/ConsumptionOnOutput/L{k}/Power"] = None
    return items


def vebus_items():
    items = {"/Ac/ActiveIn/P": 0.0, "/Hub4/AssistantId": 5, "/DeviceInstance": 276, "/Mode": 3}
    for k in (1, 2, 3):
        items[f"/Hub4/L{k}/AcPowerSetpoint"] = 0.0
        items[f"/Ac/ActiveIn/L{k}/P"] = 0.0
    return items


def battery_items():
    return {"/Info/BatteryLowVoltage": 48.0, "/Info/MaxChargeVoltage": 56.0, "/Info/MaxChargeCurrent": 100.0,
            "/Info/MaxDischargeCurrent": 100.0, "/Io/AllowToCharge": 1, "/Io/AllowToDischarge": 1,
            "/Capacity": 280.0, "/Dc/0/Voltage": 52.0, "/DeviceInstance": 512}


def settings_items():
    return {"/Settings/CGwacs/Hub4Mode": 3, "/Settings/CGwacs/OvervoltageFeedIn": 0}


class FakeService:
    def __init__(self, address, config):
        exe = moattest.dbus_python()
        if not exe:
            raise unittest.SkipTest("no Python with python3-dbus and python3-gi")
        self.address = address
        self.config = config
        self.name = config["name"]
        self.start()

    def start(self):
        self.proc = spawn([moattest.dbus_python(), FAKE_ESS, self.address, json.dumps(self.config)],
                          stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        line = _readline_with_timeout(self.proc.stdout, 10.0)
        if not line or line.strip() != "READY":
            self.stop()
            raise AssertionError(f"fake service {self.name} did not start ({line!r})")

    def stop(self):
        stop_process(self.proc, signal.SIGKILL)
        if self.proc.stdout:
            self.proc.stdout.close()
            self.proc.stdout = None


class Client:
    """A python3-dbus client: the fakes' test control, the plugin's interfaces."""

    def __init__(self, address):
        import dbus
        sys.path.insert(0, FIXTURES)
        import venus_publisher
        self.dbus = dbus
        self.wrap = venus_publisher.wrap
        self.conn = dbus.bus.BusConnection(address)

    def set(self, service, path, value):
        self.conn.call_blocking(service, "/moat_test", "org.moat.test.Control", "Set", "svs",
                                [path, self.wrap(value), "prop"], timeout=5)

    def freeze(self, service, frozen):
        self.conn.call_blocking(service, "/moat_test", "org.moat.test.Control", "Freeze", "b", [frozen], timeout=5)

    def inv(self, method, *args, signature=None):
        return self.conn.call_blocking(CONTROL, "/Control", INV, method, signature, args, timeout=5)

    def error_of(self, method, *args, signature=None):
        try:
            r = self.inv(method, *args, signature=signature)
        except self.dbus.exceptions.DBusException as e:
            return e.get_dbus_name(), e.get_dbus_message()
        raise AssertionError(f"{method}{args} succeeded: {r!r}")

    def state(self):
        return plain(self.inv("GetState"))

    def item(self, path, dest=VENUS):
        return plain(self.conn.call_blocking(dest, path, "com.victronenergy.BusItem", "GetValue", "", [], timeout=5))

    def set_item(self, path, value, dest=VENUS):
        return int(self.conn.call_blocking(dest, path, "com.victronenergy.BusItem", "SetValue", "v",
                                           [self.wrap(value)], timeout=5))


def plain(v):
    import dbus
    if isinstance(v, dbus.Boolean):
        return bool(v)
    if isinstance(v, (dbus.Int16, dbus.UInt16, dbus.Int32, dbus.UInt32, dbus.Int64, dbus.UInt64, dbus.Byte)):
        return int(v)
    if isinstance(v, dbus.Double):
        return float(v)
    if isinstance(v, dbus.String):
        return str(v)
    if isinstance(v, dbus.Array):
        return None if len(v) == 0 and v.signature == "i" else [plain(x) for x in v]
    if isinstance(v, dbus.Dictionary):
        return {str(k): plain(x) for k, x in v.items()}
    return v


class InverterTestCase(HostTestCase):
    timing = dict(input_timeout=1.0, mode_lockout=0.5, refresh_interval=0.5, trigger_sleep=0.05,
                  trigger_wait=0.2, idle_sleep=0.3)

    def setUp(self):
        super().setUp()
        self.start_bus()
        self.record = os.path.join(self.tmp, "writes.txt")
        open(self.record, "w").close()
        a = self.bus.address
        self.system = self.fake({"name": SYSTEM, "items": system_items(), "ticks": ["/Dc/Vebus/Current"]})
        self.vebus = self.fake({"name": VEBUS, "items": vebus_items(), "ticks": ["/Ac/ActiveIn/P"],
                                "record": self.record})
        self.battery = self.fake({"name": BATTERY, "items": battery_items(), "ticks": ["/Dc/0/Voltage"]})
        self.settings = self.fake({"name": SETTINGS, "items": settings_items()})
        self.client = Client(a)

    def fake(self, config):
        f = FakeService(self.bus.address, config)
        self.addCleanup(f.stop)
        return f

    def config(self, mode="off", extra="", host_keys=None, **keys):
        values = dict(self.timing)
        values.update(keys)
        lines = [f"mode = {moattest.toml_value(mode)}"]
        lines += [f"{k} = {moattest.toml_value(v)}" for k, v in values.items()]
        body = "[inverter]\n" + "\n".join(lines) + "\n" + extra
        return self.write_config(body, plugin_dir=PLUGINS, **(host_keys or {}))

    def start(self, mode="off", extra="", log_level="debug", host_keys=None, fault=None, **keys):
        """Runs the host with [inverter] in `mode`; `fault` sets MOAT_FAULT."""
        env = None
        if fault is not None:
            env = dict(os.environ, MOAT_FAULT=fault)
        self.host = self.start_host(self.config(mode, extra, host_keys, **keys), "--log-level", log_level, env=env)
        self.host.wait_for(r"control interface org\.m_o_a_t\.inv\.main", timeout=10)
        return self.host

    def writes(self, since=0.0):
        """[(time, phase, value)] recorded by the fake vebus."""
        out = []
        with open(self.record) as f:
            for line in f:
                t, path, value = line.split(" ", 2)
                if float(t) >= since and path.startswith("/Hub4/L"):
                    out.append((float(t), int(path[len("/Hub4/L")]), float(value)))
        return out

    def first_on_every_phase(self, value, since=0.0):
        """When `value` had been written to every phase after `since` (the latest of the firsts)."""
        return max(min(t for t, k, v in self.writes(since) if k == phase and v == value) for phase in (1, 2, 3))

    def wait_for_setpoints(self, expected, since=0.0, timeout=5.0, tol=0.01):
        """Wait until the last write of every phase (after `since`) equals `expected`."""
        def ok():
            last = {}
            for t, k, v in self.writes(since):
                last[k] = (t, v)
            if all(k in last and abs(last[k][1] - e) <= tol for k, e in enumerate(expected, 1)):
                return last
            return None
        return self.wait_until(f"setpoints {expected} since {since}", ok, timeout, self.host)

    def assert_next_write_is_safe(self, loss_pattern, since):
        """The host's own log, in order: after the loss line, its next write
        to the Multi is 0 W on every phase (how soon the fake Multi records
        it depends on the test's scheduling, not on the host)."""
        lines = self.host.log.splitlines()[since:]
        loss = next((i for i, l in enumerate(lines) if re.search(loss_pattern, l)), None)
        self.assertIsNotNone(loss, self.host.describe())
        first_set = next((l for l in lines[loss:] if re.search(r"INFO \[inverter\] SET inverter ", l)), "")
        self.assertRegex(first_set, r"SET inverter 0 \u2211 0 0 0$", self.host.describe())

    def set_mode(self, mode, **args):
        # dbus-python turns Python floats into 'd' and ints into 'i' inside the a{sv}
        return self.client.inv("SetMode", mode, {k: v for k, v in args.items()}, signature="sa{sv}")


class TestWrites(InverterTestCase):
    def test_p_grid_holds_the_grid_at_its_setpoint(self):
        # 300 W consumption and import per phase, power 0: the inverter covers it all.
        self.start("p_grid")
        self.wait_for_setpoints([-300.0, -300.0, -300.0])
        m, _ = self.host.wait_for(r"SET inverter -900 ∑ -300 -300 -300")
        self.assertTrue(m)

    def test_p_grid_export_target(self):
        self.start("p_grid", extra="[inverter.modes.p_grid]\npower = -150\n")
        # export 150 W: inverter 900 + 150 = 1050 W, written -350 per phase
        self.wait_for_setpoints([-350.0, -350.0, -350.0])

    def test_p_inv_and_i_batt_signs_and_magnitudes(self):
        self.start("p_inv", mode_lockout=0.0, extra="[inverter.modes.p_inv]\npower = 600\n")
        self.wait_for_setpoints([-200.0, -200.0, -200.0])
        t0 = time.monotonic()
        self.assertTrue(self.set_mode("i_batt", current=-10.0))
        # charge 10 A at 52 V, eff 0.9: -577.78 W on the AC side, +192.59 written per phase (S14 style)
        self.wait_for_setpoints([192.59, 192.59, 192.59], since=t0)

    def test_bms_charge_limit_fires_rules_listed_in_get_state(self):
        # S4: charge limit 50 A, p_inv -3000 -> I_MAX then IB_ERR_L, 962.96 W written per phase
        self.client.set(BATTERY, "/Info/MaxChargeCurrent", 50.0)
        self.start("p_inv", extra="[inverter.modes.p_inv]\npower = -3000\n")
        self.wait_for_setpoints([962.96, 962.96, 962.96])
        st = self.client.state()
        rules = [e["rule"] for e in st["inverter"]["limits"]]
        self.assertIn("I_MAX", rules)
        self.assertIn("IB_ERR_L", rules)
        self.assertAlmostEqual(st["inverter"]["dest"], -2888.89, places=1)
        self.host.wait_for(r"DEBUG.*IB_ERR_L")

    def test_remote_mode_exports_its_target_capped_by_the_reference(self):
        # §20 remote table: state 0, power 1000, power_ref 1500, consumption 300/phase
        # -> calc_grid_p(-1000, excess=500) -> 1900 W, 633.33 per phase
        self.start("remote", extra="[inverter.modes.remote]\npower = 1000\npower_ref = 1500\n")
        self.wait_for_setpoints([-633.33] * 3)
        st = self.client.state()
        self.assertEqual(st["remote"]["mode"], 0)
        self.assertEqual(st["mode"][1]["mode"], 0.0)

    def test_soc_mode_below_target_charges_at_power_in(self):
        # SoC 50 % below dest 0.8: grid power power_in (-100: export 100 W) -> inverter 1000 W
        self.start("setsoc", extra="[inverter.modes.soc]\ndest_soc = 0.8\npower_in = -100\n")
        self.wait_for_setpoints([-1000 / 3] * 3)
        st = self.wait_until("to_soc in GetState", lambda: (lambda s: s if "to_soc" in s else None)(self.client.state()),
                             5, self.host)
        self.assertAlmostEqual(st["to_soc"]["now"], 0.5)
        self.assertAlmostEqual(st["to_soc"]["dest"], 0.8)
        self.assertEqual(st["mode"][0], "soc")

    def test_fake_mode_never_writes(self):
        self.host = self.start_host(self.config("p_grid", fake=True, name="main"), "--log-level", "debug")
        self.host.wait_for(r"NO-OP SET inverter -900 ∑ -300 -300 -300", timeout=10)
        self.host.signal(signal.SIGTERM)
        self.host.wait(5)
        self.assertEqual(self.writes(), [])


class TestControlInterface(InverterTestCase):
    def test_methods_and_errors(self):
        self.start("off", mode_lockout=3.0)
        self.host.wait_for(r"MODE START off")  # the lock-out counts from the mode's start
        c = self.client
        self.assertEqual([str(m) for m in c.inv("GetModes")],
                         ["off", "idle", "p_grid", "p_inv", "i_batt", "soc", "remote", "analyze"])
        info = plain(c.inv("GetModeInfo", "p_grid", signature="s"))
        self.assertEqual(set(info), {"power", "excess", "_l"})
        self.assertEqual(c.error_of("GetModeInfo", "nonsense", signature="s")[0], "org.m_o_a_t.inv.unknown")
        # within the lock-out
        name, msg = c.error_of("SetMode", "p_inv", {}, signature="sa{sv}")
        self.assertEqual(name, "org.m_o_a_t.inv.too_early")
        self.assertRegex(msg, r"mode off started less than 3 s ago; try again in [1-3] s")
        # the end of the lock-out, as the plugin reports it (not a sleep of the test's)
        self.wait_until("the lock-out is over", lambda: self.client.state().get("lockout") == 0, 5, self.host)
        self.assertEqual(c.error_of("SetMode", "nonsense", {}, signature="sa{sv}")[0], "org.m_o_a_t.inv.unknown")
        name, msg = c.error_of("SetMode", "p_inv", {"bogus": 1.0}, signature="sa{sv}")
        self.assertEqual(name, "org.m_o_a_t.inv.unknown_parameter")
        self.assertIn("(the parameters of p_inv: ", msg)
        self.assertIn("power", msg)
        name, msg = c.error_of("SetMode", "p_inv", {"phase": 4}, signature="sa{sv}")
        self.assertEqual(name, "org.m_o_a_t.inv.invalid_value")
        self.assertIn("phase: 4 is out of range [", msg)
        self.assertEqual(c.error_of("SetMode", "p_inv", {"power": "x"}, signature="sa{sv}")[0],
                         "org.m_o_a_t.inv.invalid_value")
        # analyze is a mode like the others (its BMS is checked when it runs); its arguments are checked here
        name, msg = c.error_of("SetMode", "analyze", {"skip": 9.0}, signature="sa{sv}")
        self.assertEqual(name, "org.m_o_a_t.inv.invalid_value")
        self.assertIn("skip: 9 is out of range [0, 7]", msg)
        # old name as an alias
        self.assertTrue(c.inv("SetMode", "gridsetpoint", {"power": -100.0}, signature="sa{sv}"))
        self.wait_until("p_grid running", lambda: c.state()["mode"][0] == "p_grid", 5, self.host)
        self.assertEqual(c.state()["mode"][1]["power"], -100.0)
        t0 = time.monotonic()
        self.assertTrue(c.inv("SetModeParam", "power", 50.0, signature="sv"))
        self.wait_for_setpoints([-(900 - 50) / 3] * 3, since=t0)
        self.assertEqual(c.error_of("SetModeParam", "current", 1.0, signature="sv")[0],
                         "org.m_o_a_t.inv.unknown_parameter")
        self.assertEqual(c.error_of("SetModeParam", "_x", 1.0, signature="sv")[0], "org.m_o_a_t.inv.unknown_parameter")
        # mandatory Victron items
        self.assertEqual(c.item("/ProductId"), 123211)
        self.assertEqual(c.item("/ProductName"), "MoaT Inverter Controller")
        self.assertEqual(c.item("/Mgmt/Connection"), "MoaT Inv ttyS4")
        self.assertEqual(c.item("/Serial"), "123457")

    def test_mode_item_write_through_set_value(self):
        self.start("off")
        c = self.client
        self.assertEqual(c.item("/Mode"), "off")
        # the lock-out (0.5 s) counts from the mode's start, which waits for complete inputs
        self.wait_until("the lock-out is over", lambda: self.client.state().get("lockout") == 0.0, 5, self.host)
        self.assertEqual(c.set_item("/Mode", "nonsense"), 2)
        t0 = time.monotonic()
        self.assertEqual(c.set_item("/Mode", "p_inv"), 0)
        self.host.wait_for(r"remote write /Mode by .*: 'off' -> 'p_inv'")
        self.wait_for_setpoints([0.0, 0.0, 0.0], since=t0)
        self.assertEqual(c.set_item("/Power", 300.0), 0)
        self.wait_for_setpoints([-100.0, -100.0, -100.0], since=t0)
        self.host.wait_for(r"remote write /Power by .*: 0\.0 -> 300\.0")
        self.assertEqual(c.item("/Power"), 300.0)
        self.assertEqual(c.set_item("/Current", 5.0), 2)  # not a parameter of p_inv

    def test_cli_client(self):
        self.start("off", mode_lockout=0.0)
        env = dict(os.environ)
        base = [moattest.HOST, "inverter", "--bus", self.bus.address]
        r = subprocess.run(base + ["modes"], capture_output=True, text=True, timeout=10, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("p_grid", r.stdout)
        r = subprocess.run(base + ["mode-info", "p_inv"], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("phase", r.stdout)
        t0 = time.monotonic()
        r = subprocess.run(base + ["set-mode", "p_inv", "power=600"], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.wait_for_setpoints([-200.0] * 3, since=t0)
        r = subprocess.run(base + ["set-param", "power", "300"], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.wait_for_setpoints([-100.0] * 3, since=t0)
        r = subprocess.run(base + ["--json", "state"], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)
        st = json.loads(r.stdout)
        self.assertEqual(st["mode"][0], "p_inv")
        self.assertEqual(st["mode"][1]["power"], 300.0)
        r = subprocess.run(base + ["state"], capture_output=True, text=True, timeout=10)
        self.assertIn("mode: p_inv", r.stdout)
        # For people: booleans as yes/no, numbers rounded; the JSON form keeps them.
        self.assertRegex(r.stdout, r"(?m)^fake: (yes|no)$")
        self.assertNotRegex(r.stdout, r"\b(True|False)\b")
        self.assertNotRegex(r.stdout, r"\d\.\d{4,}")
        # A controller that is not there: exit 7, naming those that are.
        r = subprocess.run(base[:2] + ["--name", "nosuch"] + base[2:] + ["state"], capture_output=True, text=True,
                           timeout=10)
        self.assertEqual(r.returncode, 7, r.stdout + r.stderr)
        self.assertIn("no controller named 'nosuch' on the bus (found: main)", r.stderr)
        r = subprocess.run(base + ["set-mode", "nonsense"], capture_output=True, text=True, timeout=10)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("org.m_o_a_t.inv.unknown", r.stderr)


class TestSafety(InverterTestCase):
    def test_sigterm_writes_the_safe_setpoint_on_every_phase_within_2_s(self):
        self.start("p_grid")
        self.wait_for_setpoints([-300.0] * 3)
        t0 = time.monotonic()
        self.host.signal(signal.SIGTERM)
        rc, _ = self.host.wait(5)
        self.assertEqual(rc, 0)
        last = self.wait_for_setpoints([0.0] * 3, since=t0, timeout=0.1)
        for k in (1, 2, 3):
            self.assertLess(last[k][0] - t0, 2.0)

    def test_disabled_by_sighup_writes_the_safe_setpoint(self):
        self.start("p_grid")
        self.wait_for_setpoints([-300.0] * 3)
        self.config("p_grid", extra="", enabled=False)
        t0 = time.monotonic()
        self.host.signal(signal.SIGHUP)
        last = self.wait_for_setpoints([0.0] * 3, since=t0, timeout=3)
        for k in (1, 2, 3):
            self.assertLess(last[k][0] - t0, 2.0)
        self.host.wait_for(r"safe state reached")

    def test_off_mode_writes_zero(self):
        self.start("p_grid", mode_lockout=0.0)
        self.wait_for_setpoints([-300.0] * 3)
        t0 = time.monotonic()
        self.set_mode("off")
        self.wait_for_setpoints([0.0] * 3, since=t0)

    def test_mode_failure_falls_back_to_off_at_0_w(self):
        self.start("p_grid", mode_lockout=0.0)
        self.wait_for_setpoints([-300.0] * 3)
        t0 = time.monotonic()
        self.client.set(SETTINGS, "/Settings/CGwacs/OvervoltageFeedIn", 1)  # §18.6 ends the running p_grid
        self.host.wait_for(r"ERROR.*mode p_grid refused: .*OvervoltageFeedIn.*falling back to off at 0 W")
        self.wait_for_setpoints([0.0] * 3, since=t0)
        t_safe = self.first_on_every_phase(0.0, since=t0)
        t1 = time.monotonic()
        self.wait_until("off runs", lambda: self.client.state()["mode"][0] == "off" and "pending_mode" not in
                        self.client.state(), 5, self.host)
        self.set_mode("p_inv", power=600.0)  # accepted, then refused: off at 0 W
        self.host.wait_for(r"ERROR.*mode p_inv (failed|refused): .*OvervoltageFeedIn.*falling back to off at 0 W")
        self.wait_for_setpoints([0.0] * 3, since=t1)
        self.assertEqual([w for w in self.writes(t_safe) if w[2] != 0.0], [], "only 0 W since the safe write")
        st = self.wait_until("off with an error", lambda: (lambda s: s if s["mode"][0] == "off" and s.get("error")
                                                          else None)(self.client.state()), 5, self.host)
        self.assertRegex(st["error"], "mode p_inv (failed|refused)")
        self.assertIn("OvervoltageFeedIn", st["error"])
        self.assertIn("OvervoltageFeedIn", self.client.item("/Error"))
        # the interface stays up
        self.assertEqual(len(self.client.inv("GetModes")), 8)

    def test_vebus_vanishes_then_comes_back(self):
        self.start("p_grid")
        self.wait_for_setpoints([-300.0] * 3)
        self.vebus.stop()
        self.host.wait_for(r"input lost.*vebus", timeout=3)
        self.wait_until("state shows the loss", lambda: not self.client.state()["running"], 3, self.host)
        t0 = time.monotonic()
        self.vebus.start()
        self.host.wait_for(r"inputs are back", timeout=5)
        self.wait_for_setpoints([-300.0] * 3, since=t0)

    def test_battery_frozen_longer_than_the_timeout_writes_0_w_and_resumes(self):
        self.start("p_grid")
        self.wait_for_setpoints([-300.0] * 3)
        self.client.freeze(BATTERY, True)
        # One last update, sent after t0: the host receives it after t0, so
        # the loss (input_timeout 1 s after the last update) cannot come before t0 + 1 s.
        t0 = time.monotonic()
        mark = self.host.mark()
        self.client.set(BATTERY, "/Dc/0/Voltage", 52.0005)
        m, t_lost = self.host.wait_for(r"input lost.*no update from the battery service", timeout=4)
        self.assertGreater(t_lost - t0, 1.0)
        self.host.wait_for_in_order([r"input lost.*no update from the battery service", r"INFO \[inverter\] SET inverter "],
                                    timeout=4, since=mark)
        self.assert_next_write_is_safe(r"input lost.*no update from the battery service", mark)
        last = self.wait_for_setpoints([0.0] * 3, since=t0, timeout=10)
        # nothing but 0 W while it is frozen: until the plugin's own clock says the
        # battery has been silent for 2 s (GetState's input_problem counts it)
        def silent_for():
            m = re.search(r"no update from the battery service for ([0-9.]+) s", self.client.state()["input_problem"] or "")
            return m and float(m.group(1)) >= 2.0
        self.wait_until("the battery silent for 2 s", silent_for, 4, self.host)
        first_safe = min(t for t, _ in last.values())
        self.assertTrue(all(v == 0.0 for t, k, v in self.writes(first_safe)), self.writes(first_safe))
        t1 = time.monotonic()
        self.client.freeze(BATTERY, False)
        self.wait_for_setpoints([-300.0] * 3, since=t1)

    def test_implausible_input_counts_as_invalid(self):
        self.start("p_grid")
        self.wait_for_setpoints([-300.0] * 3)
        t0 = time.monotonic()
        mark = self.host.mark()
        self.client.set(BATTERY, "/Info/MaxChargeVoltage", 0.0)
        self.host.wait_for(r"input lost.*MaxChargeVoltage", timeout=4)
        self.host.wait_for_in_order([r"input lost.*MaxChargeVoltage", r"INFO \[inverter\] SET inverter "], timeout=4,
                                    since=mark)
        self.assert_next_write_is_safe(r"input lost.*MaxChargeVoltage", mark)
        self.wait_for_setpoints([0.0] * 3, since=t0, timeout=10)
        t1 = time.monotonic()
        self.client.set(BATTERY, "/Info/MaxChargeVoltage", 56.0)
        self.wait_for_setpoints([-300.0] * 3, since=t1)

    def test_ess_mode_change_away_from_3_stops_writes_at_once(self):
        self.start("p_grid")
        self.wait_for_setpoints([-300.0] * 3)
        self.client.set(SETTINGS, "/Settings/CGwacs/Hub4Mode", 1)
        # Events, not a margin of time: the guard saw the change, then a write
        # of the running mode was attempted and held back.
        self.host.wait_for(r"not writing to the Multi: ESS mode \(Hub4Mode\) is 1, not 3")
        self.host.wait_for(r"not writing SET inverter .*: ESS mode \(Hub4Mode\) is 1, not 3")
        before = len(self.writes())
        # a stop does not write either, and says that the safe state was not reached
        self.host.signal(signal.SIGTERM)
        self.host.wait(5)
        self.assertIn("safe state NOT reached: not written: ESS mode (Hub4Mode) is 1, not 3", self.host.log)
        self.assertEqual(self.writes()[before:], [])

    def test_no_ess_assistant_no_writes(self):
        self.client.set(VEBUS, "/Hub4/AssistantId", 0)
        self.start("p_grid")
        self.host.wait_for(r"not writing to the Multi: .*no ESS assistant", timeout=5)
        # a write of the mode was attempted and held back (an event, not a sleep)
        self.host.wait_for(r"not writing SET inverter .*no ESS assistant", timeout=5)
        self.host.signal(signal.SIGTERM)
        self.host.wait(5)
        self.assertRegex(self.host.log, r"safe state NOT reached: not written: .*no ESS assistant")
        self.assertEqual(self.writes(), [])

    def test_a_write_skipped_before_the_settings_came_is_made_up(self):
        # The settings service comes after the vebus: "off" wants 0 W while Hub4Mode is still unknown.
        self.settings.stop()
        self.start("off", refresh_interval=0.3)
        self.host.wait_for(r"not writing SET inverter 0 ∑ 0 0 0: ESS mode \(Hub4Mode\) is unknown", timeout=5)
        self.assertEqual(self.writes(), [])
        self.settings.start()
        self.wait_for_setpoints([0.0] * 3, timeout=3)

    def test_setpoints_are_refreshed(self):
        self.start("off", refresh_interval=0.3)
        self.wait_for_setpoints([0.0] * 3)
        t0 = time.monotonic()
        # Five refreshes of L1 (events), then their rate between the first and
        # the last one: every refresh_interval (0.3 s), checked each 0.3 / 4 s.
        times = self.wait_until("five refreshes of L1",
                                lambda: (lambda ts: ts if len(ts) >= 5 else None)(
                                    sorted(t for t, k, v in self.writes(t0) if k == 1)), 5, self.host)
        self.assertTrue(all(v == 0.0 for t, k, v in self.writes(t0)), self.writes(t0))
        mean = (times[-1] - times[0]) / (len(times) - 1)
        self.assertGreater(mean, 0.3 - 0.05, times)
        self.assertLess(mean, 0.3 + 0.3 / 4 + 0.05, times)

    def test_a_new_closed_loop_mode_writes_only_after_a_fresh_reading(self):
        # §18.8: a new closed-loop mode's first output waits for the settle loop's first
        # trigger, a change of the vebus /Ac/ActiveIn/P. The vebus is frozen (no changes;
        # shorter than input_timeout) while p_inv starts, and trigger_wait is long.
        self.start("off", mode_lockout=0.0, input_timeout=5.0, trigger_sleep=0.05, trigger_wait=3.0)
        self.wait_for_setpoints([0.0] * 3)
        self.client.freeze(VEBUS, True)
        # A tick the vebus sent before it answered the freeze is queued for the
        # host before this call: once the host answers, it has read it.
        self.client.state()
        t0 = time.monotonic()
        mark = self.host.mark()
        self.assertTrue(self.set_mode("p_inv", power=600.0))
        self.host.wait_for(r"MODE START p_inv", timeout=3, since=mark)
        # Two refreshes of the last setpoints (refresh_interval 0.5 s) mark the
        # plugin's own time passing without a reading: still no output.
        started = time.monotonic()
        self.wait_until("two refreshes of L1 while p_inv waits",
                        lambda: len([w for w in self.writes(started) if w[1] == 1]) >= 2, 3, self.host)
        self.assertEqual([w for w in self.writes(t0) if w[2] != 0.0], [], "no output before the first reading")
        t1 = time.monotonic()
        self.client.freeze(VEBUS, False)
        self.wait_for_setpoints([-200.0] * 3, since=t1, timeout=3)
        first = min(t for t, k, v in self.writes(t1) if v != 0.0)
        # the reading released it (ticks every 0.1 s), not the end of trigger_wait (t0 + 3 s)
        self.assertLess(first - t1, 0.8)


if __name__ == "__main__":
    unittest.main()

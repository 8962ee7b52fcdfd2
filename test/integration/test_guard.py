"""The critical-settings guard on the simulation: the real host runs the sim
(its settings, vebus, battery and system services) and the guard on a
private dbus-daemon; an independent python3-dbus client flips the settings
and reads what com.victronenergy.moatguard publishes. Also the client
command `moat-victron guard` and, with the inverter running beside the
guard, the inverter's own refusal of closed-loop modes."""

import json
import time
import unittest

import dbus

from moattest import HOST, NO_BUS, run_host
from test_inverter import FakeService
from test_system import BATTERY, INVERTER, SETTINGS, SIM, VEBUS, SystemCase

GUARD = "com.victronenergy.moatguard"
STATE = {"ok": 0, "warning": 1, "critical": 2, "unknown": 3}
# The sim's system service has no DVCC debug offsets: those three checks stay unknown there.
DEBUG_OFFSETS = ["SolarVoltageOffset", "VebusVoltageOffset", "CurrentOffset"]


def guard_table(fix=(), ignore=DEBUG_OFFSETS, **keys):
    lines = ["[guard]", "interval = 0.5", f"fix = {json.dumps(list(fix))}", f"ignore = {json.dumps(list(ignore))}"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in keys.items()]
    return "\n".join(lines) + "\n"


class GuardCase(SystemCase):

    def start_bus(self):
        # start_system() starts the bus, unless a test needed it earlier (for a fake service)
        return self.bus if self.bus is not None else super().start_bus()

    def start_guard(self, fix=(), ignore=DEBUG_OFFSETS, extra="", **keys):
        self.start_system(SIM + "faults = { vanish_seconds = 2.0 }\n" + guard_table(fix, ignore, **keys) + extra,
                          log_level="debug")
        self.host.wait_for(r"\[guard\] re-read #\d+ of \d+ checks", 10)
        self.until("every check read", lambda: int(self.get(GUARD, "/Unknown")) == 0, 5)
        return self.host

    def check(self, name, leaf):
        return self.get(GUARD, f"/Checks/{name}/{leaf}")

    def state(self, name):
        return int(self.check(name, "State"))

    def wait_state(self, name, state, timeout=3):
        self.until(f"{name} {state}", lambda: self.state(name) == STATE[state], timeout)


class GuardStates(GuardCase):

    def test_each_setting_flipped_is_seen_published_and_logged_once(self):
        self.start_guard(planned_export=500.0)
        self.assertEqual(int(self.get(GUARD, "/Critical")), 0)
        self.assertEqual(int(self.get(GUARD, "/Alarms/CriticalSettings")), 0)
        flips = [
            # check, service, path, bad value, good value, state, text
            ("OvervoltageFeedIn", SETTINGS, "/Settings/CGwacs/OvervoltageFeedIn", dbus.Int32(1), dbus.Int32(0),
             "critical", "nothing protects the battery"),
            ("Hub4Mode", SETTINGS, "/Settings/CGwacs/Hub4Mode", dbus.Int32(1), dbus.Int32(3),
             "warning", "ESS mode 1: Victron's own loop"),
            ("Dvcc", SETTINGS, "/Settings/Services/Bol", dbus.Int32(0), dbus.Int32(1),
             "critical", "DVCC is off"),
            ("MaxChargeCurrent", SETTINGS, "/Settings/SystemSetup/MaxChargeCurrent", dbus.Int32(0), dbus.Int32(-1),
             "warning", "all charging is blocked"),
            ("MaxFeedInPower", SETTINGS, "/Settings/CGwacs/MaxFeedInPower", dbus.Double(100.0), dbus.Double(-1.0),
             "warning", "below the planned export of 500 W"),
            ("DisableFeedIn", VEBUS, "/Hub4/DisableFeedIn", dbus.Int32(1), dbus.Int32(0),
             "warning", "feed-in is blocked"),
            ("DisableCharge", VEBUS, "/Hub4/DisableCharge", dbus.Int32(1), dbus.Int32(0),
             "warning", "charging is blocked"),
        ]
        for name, service, path, bad, good, state, text in flips:
            with self.subTest(name):
                mark = self.host.mark()
                self.assertEqual(self.set(service, path, bad), 0)
                self.host.wait_for(rf"(ERROR|WARNING) \[guard\] {name} is {state}: {service} {path} = ", 3, since=mark)
                self.wait_state(name, state)
                self.assertIn(text, str(self.check(name, "Text")))
                self.assertEqual(self.check(name, "Value"), bad)
                self.assertEqual(int(self.get(GUARD, "/Alarms/CriticalSettings")), 2 if state == "critical" else 1)
                self.assertEqual(int(self.get(GUARD, "/Critical")), 1 if state == "critical" else 0)
                # the next re-reads see the same state: no second line
                reread = self.host.mark()
                self.host.wait_for(r"\[guard\] re-read", 3, since=reread)
                self.host.wait_for(r"\[guard\] re-read", 3, since=self.host.mark())
                self.assertEqual(len(self.host.find_all(rf"\[guard\] {name} is ", since=mark)), 1, self.host.describe())
                self.assertEqual(self.set(service, path, good), 0)
                self.host.wait_for(rf"INFO \[guard\] {name} is ok: .*\(was {state}, value ", 3, since=mark)
                self.wait_state(name, "ok")
        self.assertEqual(int(self.get(GUARD, "/Alarms/CriticalSettings")), 0)

    def test_two_critical_settings_count_two(self):
        self.start_guard()
        self.set(SETTINGS, "/Settings/CGwacs/OvervoltageFeedIn", dbus.Int32(1))
        self.set(SETTINGS, "/Settings/Services/Bol", dbus.Int32(2))
        self.until("two critical checks", lambda: int(self.get(GUARD, "/Critical")) == 2, 3)
        self.assertEqual(self.check("Dvcc", "Expected"), "bit 0 set")
        self.assertEqual(self.check("OvervoltageFeedIn", "Fix"), "off")  # not in `fix`: only reported
        self.assertEqual(int(self.get(SETTINGS, "/Settings/CGwacs/OvervoltageFeedIn")), 1)

    def test_an_invalid_bms_charge_voltage_is_critical(self):
        self.start_guard()
        self.set(BATTERY, "/Sim/Fault", dbus.Int32(2))  # every value of the battery invalid
        self.host.wait_for(r"ERROR \[guard\] BmsChargeVoltage is critical: com.victronenergy.battery.sim "
                           r"/Info/MaxChargeVoltage = ---", 4)
        self.assertEqual(self.check("BmsChargeVoltage", "Value"), dbus.Array([], signature="i"))
        self.set(BATTERY, "/Sim/Fault", dbus.Int32(0))
        self.host.wait_for(r"INFO \[guard\] BmsChargeVoltage is ok: .*= 55.2 .*\(was critical, value ---\)", 4)

    def test_a_missing_service_is_unknown_not_ok(self):
        self.start_guard()
        mark = self.host.mark()
        self.set(VEBUS, "/Sim/Fault", dbus.Int32(3))  # the Multi leaves the bus for 2 s
        for name in ("AssistantId", "DisableFeedIn", "DisableCharge"):
            self.host.wait_for(rf"WARNING \[guard\] {name} is unknown: .*not on the bus", 4, since=mark)
        self.wait_state("AssistantId", "unknown")
        self.assertEqual(int(self.get(GUARD, "/Unknown")), 3)
        self.assertEqual(int(self.get(GUARD, "/Alarms/CriticalSettings")), 1)
        self.host.wait_for(r"INFO \[guard\] AssistantId is ok: .*\(was unknown, value ---\)", 6, since=mark)

    def test_a_missing_path_is_unknown(self):
        self.start_guard(ignore=[])
        # The sim's system service exists but has no /Debug paths.
        for name in DEBUG_OFFSETS:
            self.assertEqual(self.state(name), STATE["unknown"])
            self.assertIn("not on the bus", str(self.check(name, "Text")))
            self.assertEqual(str(self.check(name, "Service")), "com.victronenergy.system")
        self.host.wait_for(r"WARNING \[guard\] SolarVoltageOffset is unknown: com.victronenergy.system "
                           r"/Debug/BatteryOperationalLimits/SolarVoltageOffset = ---", 1)

    # GuardCase.start_guard waits for /Unknown 0; with nothing ignored 3 stay unknown.
    def start_guard(self, fix=(), ignore=DEBUG_OFFSETS, extra="", **keys):
        if ignore:
            return super().start_guard(fix, ignore, extra, **keys)
        self.start_system(SIM + guard_table(fix, ignore, **keys) + extra, log_level="debug")
        self.host.wait_for(r"\[guard\] re-read #\d+ of \d+ checks", 10)
        self.until("all but the debug offsets read", lambda: int(self.get(GUARD, "/Unknown")) == 3, 5)
        return self.host


class GuardFixes(GuardCase):

    def test_fix_writes_the_safe_value_and_reads_it_back(self):
        self.start_guard(fix=["OvervoltageFeedIn"])
        self.assertEqual(self.check("OvervoltageFeedIn", "Fix"), "ready")
        mark = self.host.mark()
        self.assertEqual(self.set(SETTINGS, "/Settings/CGwacs/OvervoltageFeedIn", dbus.Int32(1)), 0)
        self.host.wait_for_in_order([
            r"ERROR \[guard\] OvervoltageFeedIn is critical: .* = 1 .*\(was ok, value 0\)",
            r"WARNING \[guard\] OvervoltageFeedIn: fixing: writing 0 to com.victronenergy.settings "
            r"/Settings/CGwacs/OvervoltageFeedIn \(it is 1\)",
            r"INFO \[guard\] OvervoltageFeedIn: fixed: .* reads back 0"], 3, since=mark)
        # (the change signal of our own write may tell the state before the read-back does)
        self.host.wait_for(r"INFO \[guard\] OvervoltageFeedIn is ok: .*= 0 .*\(was critical, value 1\)", 3, since=mark)
        self.assertEqual(int(self.get(SETTINGS, "/Settings/CGwacs/OvervoltageFeedIn")), 0)
        self.assertEqual(self.check("OvervoltageFeedIn", "Fix"), "fixed")
        self.wait_state("OvervoltageFeedIn", "ok")

    def test_a_write_war_is_reported_not_looped(self):
        self.start_guard(fix=["OvervoltageFeedIn"], war_limit=3, war_window=5.0)
        path = "/Settings/CGwacs/OvervoltageFeedIn"
        mark = self.host.mark()
        rounds = 0
        for rounds in range(1, 8):  # the other writer: sets 1 whenever the guard made it 0
            self.set(SETTINGS, path, dbus.Int32(1))
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline and int(self.get(SETTINGS, path)) != 0:
                time.sleep(0.01)
            if int(self.get(SETTINGS, path)) != 0:
                break
        self.host.wait_for(r"ERROR \[guard\] OvervoltageFeedIn: write war: com.victronenergy.settings "
                           r"/Settings/CGwacs/OvervoltageFeedIn was turned back to 1 within 5 s of our fix 3 times", 3,
                           since=mark)
        self.assertEqual(rounds, 4, "the first bad value and three turn-backs")
        self.assertEqual(len(self.host.find_all(r"OvervoltageFeedIn: fixing", since=mark)), 3)
        # Re-reads go on and see 1, but nothing is written any more.
        war = self.host.mark()
        for _ in range(3):
            self.host.wait_for(r"\[guard\] re-read", 3, since=self.host.mark())
        self.assertIsNone(self.host.find(r"OvervoltageFeedIn: fixing", since=war), self.host.describe())
        self.assertEqual(int(self.get(SETTINGS, path)), 1)
        self.assertEqual(self.state("OvervoltageFeedIn"), STATE["critical"])
        self.assertTrue(str(self.check("OvervoltageFeedIn", "Fix")).startswith("write war"))
        self.assertIn("write war", str(self.check("OvervoltageFeedIn", "Text")))
        # Somebody sets it right: the war is over and fixing resumes.
        self.set(SETTINGS, path, dbus.Int32(0))
        self.host.wait_for(r"INFO \[guard\] OvervoltageFeedIn: the write war is over", 3, since=war)
        self.assertEqual(self.check("OvervoltageFeedIn", "Fix"), "ready")
        again = self.host.mark()
        self.set(SETTINGS, path, dbus.Int32(1))
        self.host.wait_for(r"INFO \[guard\] OvervoltageFeedIn: fixed", 3, since=again)

    def test_debug_offsets_fixed_and_a_refused_fix_is_critical(self):
        # The sim without its system service; a fake com.victronenergy.system (python3-dbus) with DVCC's
        # debug offsets, one of them read-only (SetValue answers 1), so its fix fails.
        self.start_bus()
        debug = "/Debug/BatteryOperationalLimits/"
        fake = FakeService(self.bus.address, {
            "name": "com.victronenergy.system",
            "items": {debug + "SolarVoltageOffset": 0.5, debug + "VebusVoltageOffset": 0.3, debug + "CurrentOffset": 0.0},
            "readonly": [debug + "SolarVoltageOffset"]})
        self.addCleanup(fake.stop)
        self.start_system(SIM + "system = false\n" + guard_table(fix=DEBUG_OFFSETS, ignore=[]), log_level="debug")
        self.host.wait_for(r"INFO \[guard\] VebusVoltageOffset: fixed: com.victronenergy.system "
                           r"/Debug/BatteryOperationalLimits/VebusVoltageOffset reads back 0.0", 10)
        self.host.wait_for(r"ERROR \[guard\] SolarVoltageOffset: fix failed: com.victronenergy.system refused the "
                           r"write of 0.0 to /Debug/BatteryOperationalLimits/SolarVoltageOffset \(SetValue result 1\)", 5)
        self.wait_state("SolarVoltageOffset", "critical")
        self.assertIn("fix failed", str(self.check("SolarVoltageOffset", "Text")))
        # Tried again on every re-read, logged once.
        mark = self.host.mark()
        for _ in range(2):
            self.host.wait_for(r"DEBUG \[guard\] SolarVoltageOffset: trying the fix again", 3, since=self.host.mark())
        self.assertEqual(len(self.host.find_all(r"SolarVoltageOffset: fix failed", since=0)), 1)
        self.assertIsNone(self.host.find(r"SolarVoltageOffset: fixing", since=mark))
        self.assertEqual(float(self.get("com.victronenergy.system", "/Debug/BatteryOperationalLimits/VebusVoltageOffset")), 0.0)
        self.assertEqual(float(self.get("com.victronenergy.system", "/Debug/BatteryOperationalLimits/SolarVoltageOffset")), 0.5)
        self.wait_state("VebusVoltageOffset", "ok")
        self.assertEqual(self.state("CurrentOffset"), STATE["ok"])
        self.assertEqual(self.check("CurrentOffset", "Fix"), "ready")  # nothing to fix


class GuardConfig(GuardCase):

    def test_check_config_names_bad_fix_and_ignore_entries(self):
        cases = [
            ('fix = ["OvervoltageFeedIn", "Overvoltage"]\n', "key 'fix': unknown check 'Overvoltage'"),
            ('fix = ["Hub4Mode"]\n', "key 'fix': 'Hub4Mode' has no safe value to write"),
            ('ignore = ["Nope"]\n', "key 'ignore': unknown check 'Nope'"),
            ('fix = ["OvervoltageFeedIn"]\nignore = ["OvervoltageFeedIn"]\n', "'OvervoltageFeedIn' is also ignored"),
            ('war_limit = 0\n', "war_limit"),
        ]
        for body, message in cases:
            with self.subTest(body):
                path = self.write_config("[guard]\n" + body, bus=NO_BUS, plugin_dir=f"{HOST.rsplit('/', 1)[0]}/plugins")
                rc, out, err = run_host(["--check-config", path])
                self.assertEqual(rc, 3, out + err)
                self.assertIn(message, err)
                self.assertRegex(err, rf"{path}:\d+: \[guard\]")
        good = self.write_config('[guard]\nfix = ["OvervoltageFeedIn", "CurrentOffset"]\n', bus=NO_BUS,
                                 plugin_dir=f"{HOST.rsplit('/', 1)[0]}/plugins")
        rc, out, err = run_host(["--check-config", good])
        self.assertEqual(rc, 0, out + err)


class GuardCommand(GuardCase):

    def guard(self, *args):
        return run_host(["guard", "--bus", self.bus.address] + list(args), timeout=15)

    def test_table_json_and_exit_codes(self):
        self.start_system(SIM)  # no guard plugin: the command judges by itself
        rc, out, err = self.guard()
        self.assertEqual(rc, 1, out + err)  # the debug offsets are unknown on the sim
        self.assertRegex(out, r"OvervoltageFeedIn\s+ok\s+0\s+0\s")
        self.assertRegex(out, r"SolarVoltageOffset\s+unknown\s+---")
        self.assertIn("unknown: 0 critical, 0 warning, 3 unknown, 15 ok", out)
        ignore = sum((["--ignore", n] for n in DEBUG_OFFSETS), [])
        rc, out, err = self.guard(*ignore)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("ok: 0 critical, 0 warning, 0 unknown, 15 ok", out)
        self.set(SETTINGS, "/Settings/CGwacs/Hub4Mode", dbus.Int32(2))
        rc, out, err = self.guard(*ignore)
        self.assertEqual(rc, 1, out + err)
        self.set(SETTINGS, "/Settings/CGwacs/OvervoltageFeedIn", dbus.Int32(1))
        rc, out, err = self.guard("--json", *ignore)
        self.assertEqual(rc, 2, out + err)
        doc = json.loads(out)
        self.assertEqual(doc["worst"], "critical")
        self.assertEqual(doc["critical"], 1)
        by_name = {c["name"]: c for c in doc["checks"]}
        self.assertEqual(by_name["OvervoltageFeedIn"]["value"], 1)
        self.assertEqual(by_name["OvervoltageFeedIn"]["state"], "critical")
        self.assertEqual(by_name["OvervoltageFeedIn"]["service"], SETTINGS)
        self.assertEqual(by_name["Hub4Mode"]["state"], "warning")
        self.assertEqual(by_name["BmsChargeVoltage"]["value"], 55.2)
        self.assertNotIn("SolarVoltageOffset", by_name)

    def test_no_services_every_check_unknown(self):
        self.start_bus()
        rc, out, err = self.guard("--wait", "0.3")
        self.assertEqual(rc, 1, out + err)
        self.assertIn("0 critical, 0 warning, 18 unknown, 0 ok", out)
        self.assertIn("every check is unknown", err)

    def test_usage_errors(self):
        rc, _, err = run_host(["guard", "--bus", NO_BUS, "--ignore", "Nope"])
        self.assertEqual(rc, 2)
        self.assertIn("unknown check 'Nope'", err)


class InverterWithGuard(GuardCase):
    """The inverter refuses closed-loop modes while OvervoltageFeedIn is 1 by
    itself; with the guard running beside it (not fixing) that still holds,
    and the guard reports the setting."""

    def test_the_inverter_refuses_closed_loop_modes_while_the_guard_watches(self):
        self.start_system(SIM + guard_table() + INVERTER.format(mode="p_inv", extra="[inverter.modes.p_inv]\npower = 900\n"))
        self.until("the Multi inverts", lambda: sum(self.multi()) < -850, 10)
        self.assertEqual(self.set(SETTINGS, "/Settings/CGwacs/OvervoltageFeedIn", dbus.Int32(1)), 0)
        self.host.wait_for(r"ERROR \[inverter\] mode p_inv refused: .*OvervoltageFeedIn.*falling back to off at 0 W", 2)
        self.host.wait_for(r"ERROR \[guard\] OvervoltageFeedIn is critical", 2)
        self.until("0 W on every phase",
                   lambda: [float(self.get(VEBUS, f"/Hub4/L{k}/AcPowerSetpoint")) for k in (1, 2, 3)] == [0.0] * 3, 2)
        self.assertEqual(int(self.get(GUARD, "/Critical")), 1)
        # A closed-loop mode asked for now is accepted, then refused: off at 0 W again.
        control = ("org.m_o_a_t.inv.main", "/Control", "org.m_o_a_t.inv")
        self.until("off runs", lambda: str(self.conn.call_blocking(*control, "GetState", "", (), timeout=5)["mode"][0])
                   == "off", 5)
        mark = self.host.mark()
        self.conn.call_blocking(*control, "SetMode", "sa{sv}", ("p_grid", {}), timeout=5)
        self.host.wait_for(r"ERROR \[inverter\] mode p_grid (failed|refused): .*OvervoltageFeedIn.*falling back to off",
                           3, since=mark)
        self.assertEqual([float(self.get(VEBUS, f"/Hub4/L{k}/AcPowerSetpoint")) for k in (1, 2, 3)], [0.0] * 3)
        self.assertEqual(self.state("OvervoltageFeedIn"), STATE["critical"])
        self.assertEqual(int(self.get(SETTINGS, "/Settings/CGwacs/OvervoltageFeedIn")), 1, "the guard does not fix")


if __name__ == "__main__":
    unittest.main()

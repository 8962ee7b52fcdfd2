"""The settings service (build/test/settings-service, moat::SettingsService)
checked from outside with python3-dbus and gdbus on a private dbus-daemon:
the methods, codes, conversions and signals of venus-dbus.md §11."""

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import dbus

from moattest import BUILD_DIR, BusClient, DBusDaemon, _readline_with_timeout, spawn, stop_process

SETTINGS = "com.victronenergy.settings"
SETTINGS_IFACE = "com.victronenergy.Settings"
PROGRAM = os.path.join(BUILD_DIR, "test", "settings-service")
UNKNOWN_OBJECT = "org.freedesktop.DBus.Error.UnknownObject"
UNKNOWN_METHOD = "org.freedesktop.DBus.Error.UnknownMethod"


class SettingsProcess:
    def __init__(self, address, file, tmp):
        env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS=address)
        self.err_path = os.path.join(tmp, f"settings-{time.monotonic_ns()}.log")
        self._err = open(self.err_path, "w")
        self.proc = spawn([PROGRAM, "--file", file], stdout=subprocess.PIPE, stderr=self._err,
                          stdin=subprocess.DEVNULL, env=env)
        line = _readline_with_timeout(self.proc.stdout, 10.0)
        if not line or not line.startswith("ready"):
            self.stop()
            raise AssertionError(f"settings-service did not start (said {line!r})\n{self.log()}")

    def log(self):
        with open(self.err_path) as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM):
        stop_process(self.proc, sig)
        if self.proc.stdout:
            self.proc.stdout.close()
            self.proc.stdout = None
        if not self._err.closed:
            self._err.close()


def invalid():
    return dbus.Array([], signature="i")


class SettingsCase(unittest.TestCase):
    def setUp(self):
        if not os.access(PROGRAM, os.X_OK):
            self.fail(f"{PROGRAM} is not built")
        self.tmp = tempfile.mkdtemp(prefix="moat-settings-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.file = os.path.join(self.tmp, "settings.toml")
        self.bus = DBusDaemon()
        self.addCleanup(self.bus.stop)
        self.client = BusClient(self.bus.address)
        self.addCleanup(self.client.close)
        self.service = self.start()

    def start(self):
        s = SettingsProcess(self.bus.address, self.file, self.tmp)
        self.addCleanup(s.stop)
        return s

    def call(self, path, method, *args, signature=None, iface="com.victronenergy.BusItem"):
        return self.client.call(path, method, *args, signature=signature, iface=iface, dest=SETTINGS)

    def add(self, group, name, default, type_, mn, mx, path="/Settings", silent=False):
        return int(self.call(path, "AddSilentSetting" if silent else "AddSetting", group, name, default, type_, mn,
                             mx, signature="ssvsvv", iface=SETTINGS_IFACE))

    def add_many(self, entries, path="/"):
        return [dict(r) for r in self.call(path, "AddSettings", entries, signature="aa{sv}", iface=SETTINGS_IFACE)]

    def set(self, path, value, signature="v"):
        return int(self.call(path, "SetValue", value, signature=signature))

    def error_name(self, *a, **kw):
        try:
            r = self.call(*a, **kw)
        except dbus.exceptions.DBusException as e:
            return e.get_dbus_name()
        raise AssertionError(f"call {a} succeeded with {r!r}")

    def signals_of(self, fn):
        """The BusItem signals `fn` caused, in order (after a round trip)."""
        self.client.call_ordered("/", "GetValue", dest=SETTINGS, tag="settle")
        self.client.events.clear()
        fn()
        self.client.call_ordered("/", "GetValue", dest=SETTINGS, tag="settle")
        out = [(e[1], e[2], dict(e[3])) for e in self.client.events if e[0] == "signal"]
        self.all_signals = getattr(self, "all_signals", []) + out
        return out


class AddTest(SettingsCase):
    def test_add_setting_and_the_error_codes(self):
        self.assertEqual(self.add("Foo", "Bar", 5, "i", 0, 10), 0)
        self.assertEqual(self.call("/Settings/Foo/Bar", "GetValue"), 5)
        # group "" and a name with slashes; leading slashes tolerated
        self.assertEqual(self.add("", "Deep/Er", 1.5, "f", 0.0, 0.0), 0)
        self.assertEqual(self.add("/Lead", "/X", "s", "s", "", ""), 0)
        self.assertEqual(self.call("/Settings/Lead/X", "GetValue"), "s")
        self.assertEqual(self.add("Foo", "_Hidden", 1, "i", 0, 0), -2)
        self.assertEqual(self.add("Foo", "T", 1, "b", 0, 0), -3)
        self.assertEqual(self.add("Foo", "Bar", "5", "s", "", ""), -5)
        self.assertEqual(self.add("Foo", "BadDefault", "abc", "i", 0, 0), -6)
        self.assertEqual(self.add("Foo", "Out", 11, "i", 0, 10), -7)
        self.assertEqual(self.add("", "Foo", 1, "i", 0, 0), -8)
        self.assertEqual(self.add("Other", "X", 1, "i", 0, 0, path="/"), -9)
        self.assertEqual(self.add("Settings/Ok", "X", 1, "i", 0, 0, path="/"), 0)
        # Adding again keeps the value.
        self.assertEqual(self.set("/Settings/Foo/Bar", 7), 0)
        self.assertEqual(self.add("Foo", "Bar", 5, "i", 0, 10), 0)
        self.assertEqual(self.call("/Settings/Foo/Bar", "GetValue"), 7)

    def test_add_settings(self):
        results = self.add_many([
            {"path": "/Settings/A/Int", "default": dbus.Int32(3), "min": 0, "max": 10},
            {"path": "/Settings/A/Big", "default": dbus.Int64(5000000000)},
            {"path": "/Settings/A/Float", "default": 2.5, "silent": True},
            {"path": "/Settings/A/Str", "default": "x"},
            {"path": "/Settings/A/Bool", "default": True},
            {"path": "/Settings/A/Unsigned", "default": dbus.UInt32(1)},
            {"default": 1},
            {"path": dbus.Int32(5), "default": 1},
            {"path": "/Elsewhere/X", "default": 1},
            {"path": "/Settings/A/Out", "default": 20, "min": 0, "max": 10},
        ])
        self.assertEqual(results[0], {"path": "/Settings/A/Int", "error": 0, "value": 3})
        self.assertEqual(type(results[1]["value"]), dbus.Int64)
        self.assertEqual(results[2]["value"], 2.5)
        self.assertEqual(results[3]["value"], "x")
        self.assertEqual([r["error"] for r in results[4:]], [-3, -3, -4, -4, -9, -7])
        self.assertNotIn("path", results[6])
        self.assertNotIn("value", results[4])
        self.assertTrue(self.call("/Settings/A/Float", "GetSilent", iface=SETTINGS_IFACE))
        self.assertFalse(self.call("/Settings/A/Int", "GetSilent", iface=SETTINGS_IFACE))
        # relative to a group
        r = self.add_many([{"path": "B/C", "default": 1}], path="/Settings/A")
        self.assertEqual(r[0]["error"], 0)
        self.assertEqual(self.call("/Settings/A/B/C", "GetValue"), 1)

    def test_remove_settings(self):
        self.add_many([{"path": "/Settings/R/A", "default": 1}, {"path": "/Settings/R/B", "default": 2}])
        sig = self.signals_of(lambda: self.assertEqual(
            list(self.call("/Settings", "RemoveSettings", ["R/A", "R/Nope"], signature="as", iface=SETTINGS_IFACE)),
            [0, -1]))
        self.assertEqual(len(sig), 1)
        member, path, body = sig[0]
        self.assertEqual((member, path), ("PropertiesChanged", "/Settings/R/A"))
        self.assertEqual(body["Value"].signature, "i")
        self.assertEqual(len(body["Value"]), 0)
        self.assertEqual(body["Text"], "")
        self.assertEqual(self.error_name("/Settings/R/A", "GetValue"), UNKNOWN_OBJECT)
        self.assertEqual(list(self.call("/", "RemoveSettings", ["/Settings/R/B"], signature="as", iface=SETTINGS_IFACE)),
                         [0])
        self.assertEqual(self.error_name("/Settings/R", "GetValue"), UNKNOWN_OBJECT)


INVALID_ARGS = "org.freedesktop.DBus.Error.InvalidArgs"


class PlainTypesTest(SettingsCase):
    """What velib's SettingsDevice and Victron's systemcalc send: dbus-python
    proxies without introspection, so no interface field and plain types
    where the methods declare variants (`ssssii`, `ssbsii`, ...)."""

    def proxy(self, path):
        # velib: bus.get_object(service, path, introspect=False); method calls
        # on it carry no interface and guess each argument's type.
        return self.client.conn.get_object(SETTINGS, path, introspect=False)

    def velib_add_setting(self, path, value, mn, mx, silent=False):
        """SettingsDevice.addSetting's steps for one setting, as velib takes
        them: None when the setting is there with these attributes, else the
        AddSetting result."""
        item = self.proxy(path)
        try:
            exists = True
            item.GetValue()
        except dbus.exceptions.DBusException as e:
            self.assertEqual(e.get_dbus_name(), UNKNOWN_OBJECT)
            exists = False
        if exists and (value, mn, mx, silent) == item.GetAttributes():
            return None
        # velib's type choice: isinstance(value, int) (bools included) -> 'i'
        type_ = "i" if isinstance(value, int) else "f" if isinstance(value, float) else "s"
        relative = path.replace("/Settings/", "", 1)
        method = self.proxy("/Settings").AddSilentSetting if silent else self.proxy("/Settings").AddSetting
        return int(method("", relative, value, type_, mn, mx))

    def test_velib_add_setting_without_interface(self):
        # systemcalc's battery-service setting: ssssii
        self.assertEqual(self.velib_add_setting("/Settings/SystemSetup/BatteryService", "default", 0, 0), 0)
        self.assertEqual(self.call("/Settings/SystemSetup/BatteryService", "GetValue"), "default")
        self.assertEqual(self.velib_add_setting("/Settings/P/Int", 5, 0, 10), 0)  # ssisii
        self.assertEqual((self.call("/Settings/P/Int", "GetValue"), self.call("/Settings/P/Int", "GetMax")), (5, 10))
        self.assertEqual(self.velib_add_setting("/Settings/P/Float", 2.5, 0, 0), 0)  # ssdsii
        v = self.call("/Settings/P/Float", "GetValue")
        self.assertEqual((v, type(v)), (2.5, dbus.Double))
        self.assertEqual(self.velib_add_setting("/Settings/P/Range", 1.5, 0.5, 3.5), 0)  # ssdsdd
        self.assertEqual(self.call("/Settings/P/Range", "GetMin"), 0.5)
        self.assertEqual(self.velib_add_setting("/Settings/P/Quiet", 1, 0, 1, silent=True), 0)
        self.assertTrue(self.call("/Settings/P/Quiet", "GetSilent", iface=SETTINGS_IFACE))
        # found the second time round (GetValue and GetSilent without interface): no add
        self.assertIsNone(self.velib_add_setting("/Settings/P/Quiet", 1, 0, 1, silent=True))
        # an existing setting keeps its value
        self.assertEqual(self.set("/Settings/P/Int", 7), 0)
        self.assertEqual(int(self.proxy("/Settings").AddSetting("", "P/Int", 5, "i", 0, 10)), 0)
        self.assertEqual(self.call("/Settings/P/Int", "GetValue"), 7)

    def test_systemcalcs_battery_configuration(self):
        # systemcalc's battery-data code: two string settings (ssssii), one
        # integer (ssisii), then SetValue on the first one
        base = "/Settings/SystemSetup/Batteries/Configuration/com_victronenergy_battery_512"
        self.assertEqual(self.velib_add_setting(base + "/Service", "", 0, 0), 0)
        self.assertEqual(self.velib_add_setting(base + "/Name", "", 0, 0), 0)
        self.assertEqual(self.velib_add_setting(base + "/Enabled", 0, 0, 1), 0)
        self.assertEqual(int(self.proxy(base + "/Service").SetValue("com.victronenergy.battery/512")), 0)
        self.assertEqual(self.call(base + "/Service", "GetValue"), "com.victronenergy.battery/512")
        # the next start finds all three as they were added: no second add
        for path, value, mn, mx in ((base + "/Service", "", 0, 0), (base + "/Enabled", 0, 0, 1)):
            self.assertIsNone(self.velib_add_setting(path, value, mn, mx), path)

    def test_bool_default_ssbsii(self):
        self.assertEqual(self.velib_add_setting("/Settings/B/Velib", True, 0, 1), 0)  # velib: a bool is an 'i'
        self.assertEqual(self.call("/Settings/B/Velib", "GetValue"), 1)

        # a bool where the default goes, with and without the interface
        self.assertEqual(int(self.proxy("/Settings").AddSetting("", "B/Flag", True, "i", 0, 1)), 0)
        v = self.call("/Settings/B/Flag", "GetValue")
        self.assertEqual((v, type(v)), (1, dbus.Int32))
        self.assertEqual(self.call("/Settings", "AddSetting", "", "B/Off", False, "i", 0, 1, signature="ssbsii",
                                   iface=SETTINGS_IFACE), 0)
        self.assertEqual(self.call("/Settings/B/Off", "GetValue"), 0)

    def test_plain_types_with_the_interface_and_the_codes(self):
        def add(sig, *args, path="/Settings", method="AddSetting"):
            return int(self.call(path, method, *args, signature=sig, iface=SETTINGS_IFACE))
        self.assertEqual(add("ssssii", "", "Q/Str", "x", "s", 0, 0), 0)
        self.assertEqual(self.call("/Settings/Q/Str", "GetValue"), "x")
        self.assertEqual(add("ssisii", "Q", "Int", 3, "i", 0, 5, method="AddSilentSetting"), 0)
        self.assertTrue(self.call("/Settings/Q/Int", "GetSilent", iface=SETTINGS_IFACE))
        self.assertEqual(add("ssdsdd", "Q", "F", 0.5, "f", 0.0, 1.0, path="/"), -9)
        self.assertEqual(add("ssdsdd", "Settings/Q", "F", 0.5, "f", 0.0, 1.0, path="/"), 0)
        # the rules hold for the converted values
        self.assertEqual(add("ssisii", "Q", "Out", 11, "i", 0, 10), -7)
        self.assertEqual(add("ssssss", "Q", "Bad", "abc", "i", "", ""), -6)
        self.assertEqual(add("ssisii", "Q", "T", 1, "b", 0, 0), -3)
        self.assertEqual(add("ssisii", "Q", "_U", 1, "i", 0, 0), -2)
        self.assertEqual(add("ssssii", "Q", "Int", "3", "s", 0, 0), -5)
        self.assertEqual(add("ssssii", "", "Q", "3", "i", 0, 0), -8)
        self.assertEqual(add("ssssii", "Q", "IntFromText", "42", "i", 0, 100), 0)
        v = self.call("/Settings/Q/IntFromText", "GetValue")
        self.assertEqual((v, type(v)), (42, dbus.Int32))
        # the older device-instance form, plain (velib: strings for min and max)
        self.assertEqual(add("ssssss", "dev_1", "ClassAndVrmInstance", "battery:1", "s", "", "",
                             path="/Settings/Devices"), 0)
        self.assertEqual(self.call("/Settings/Devices/dev_1/ClassAndVrmInstance", "GetValue"), "battery:1")
        # a struct where the default goes cannot be converted: -6, as before
        self.assertEqual(self.call("/Settings", "AddSetting", "Q", "Tuple", dbus.Struct(("battery", 1), signature="si"),
                                   "s", "", "", signature="ssvsvv", iface=SETTINGS_IFACE), -6)
        self.assertEqual(self.call("/Settings", "AddSetting", "Q", "Tuple2", ("battery", 1), "s", 0, 0,
                                   signature="ss(si)sii", iface=None), -6)
        # not six arguments, or no string where the group goes: InvalidArgs
        self.assertEqual(self.error_name("/Settings", "AddSetting", "", "X", 1, "i", 0, signature="ssisi",
                                         iface=SETTINGS_IFACE), INVALID_ARGS)
        self.assertEqual(self.error_name("/Settings", "AddSetting", 1, "X", 1, "i", 0, 0, signature="isisii",
                                         iface=None), INVALID_ARGS)

    def test_add_settings_and_remove_settings_plain(self):
        # dbus-python guesses a{ss} from a dict of strings
        r = self.proxy("/").AddSettings([{"path": "/Settings/R/S", "default": "x"}])
        self.assertEqual([dict(e) for e in r], [{"path": "/Settings/R/S", "error": 0, "value": "x"}])
        r = self.call("/Settings", "AddSettings", [{"path": "R/T", "default": "4"}], signature="aa{ss}",
                      iface=SETTINGS_IFACE)
        self.assertEqual(dict(r[0])["error"], 0)
        self.assertEqual(self.call("/Settings/R/T", "GetValue"), "4")
        r = self.call("/Settings", "AddSettings", [{"path": 3, "default": 4}], signature="aa{si}",
                      iface=SETTINGS_IFACE)
        self.assertEqual(dict(r[0])["error"], -4)
        # RemoveSettings without an interface
        self.assertEqual(list(self.proxy("/Settings").RemoveSettings(["R/S", "R/Nope"])), [0, -1])
        self.assertEqual(self.error_name("/Settings/R/S", "GetValue"), UNKNOWN_OBJECT)
        self.assertEqual(self.error_name("/Settings", "RemoveSettings", 5, signature="i", iface=SETTINGS_IFACE),
                         INVALID_ARGS)

    def test_get_attributes_without_interface(self):
        self.assertEqual(self.velib_add_setting("/Settings/A/X", 3, 0, 9), 0)
        self.assertEqual(tuple(self.proxy("/Settings/A/X").GetAttributes()), (3, 0, 9, 0))


class RefusedWriteLogTest(SettingsCase):
    def test_a_refused_write_is_logged_once_per_path_and_reason(self):
        self.add_many([{"path": "/Settings/L/F", "default": 1.5, "min": 0.0, "max": 2.0},
                       {"path": "/Settings/L/G", "default": 1.5}])
        for _ in range(3):
            self.assertEqual(self.set("/Settings/L/F", "abc"), -1)
            self.assertEqual(self.set("/Settings/L/G", "abc"), -1)
        self.assertEqual(self.set("/Settings/L/F", 1.0), 0)  # a write that takes is logged as before
        self.service.stop()  # the log is complete
        log = self.service.log()
        refused = [line for line in log.splitlines() if "refused" in line]
        self.assertEqual(len([x for x in refused if "/Settings/L/F" in x]), 1, log)
        self.assertEqual(len([x for x in refused if "/Settings/L/G" in x]), 1, log)
        self.assertIn("'abc'", refused[0])


class ValueTest(SettingsCase):
    def setUp(self):
        super().setUp()
        self.add_many([
            {"path": "/Settings/V/Int", "default": 5, "min": 0, "max": 100},
            {"path": "/Settings/V/Float", "default": 1.5},
            {"path": "/Settings/V/Str", "default": "abc"},
        ])

    def test_set_value_conversions_and_failures(self):
        cases = [("/Settings/V/Int", dbus.Double(3.7), 0, 3, dbus.Int32),
                 ("/Settings/V/Int", "4", 0, 4, dbus.Int32),
                 ("/Settings/V/Int", "2.5", -1, 4, dbus.Int32),
                 ("/Settings/V/Int", 101, -1, 4, dbus.Int32),
                 ("/Settings/V/Int", invalid(), -1, 4, dbus.Int32),
                 ("/Settings/V/Int", dbus.Array([], signature="u"), -1, 4, dbus.Int32),
                 ("/Settings/V/Str", 3, 0, "3", dbus.String),
                 ("/Settings/V/Float", 3, 0, 3.0, dbus.Double),
                 ("/Settings/V/Float", "x", -1, 3.0, dbus.Double)]
        for path, value, code, after, cls in cases:
            with self.subTest(path=path, value=value):
                self.assertEqual(self.set(path, value), code)
                v = self.call(path, "GetValue")
                self.assertEqual(v, after)
                self.assertIs(type(v), cls)
        self.assertEqual(self.call("/Settings/V/Float", "GetText"), "3.0")

    def test_signals_on_write_equal_and_add(self):
        sig = self.signals_of(lambda: self.assertEqual(self.set("/Settings/V/Int", 9), 0))
        self.assertEqual(sig, [("PropertiesChanged", "/Settings/V/Int", {"Value": 9, "Text": "9"})])
        self.assertEqual(self.signals_of(lambda: self.set("/Settings/V/Int", 9.0)), [], "equal: no signal")
        sig = self.signals_of(lambda: self.add_many([{"path": "/Settings/V/New", "default": 2.5, "min": 0.0,
                                                      "max": 5.0}]))
        self.assertEqual(sig, [("PropertiesChanged", "/Settings/V/New",
                                {"Value": 2.5, "Text": "2.5", "Default": 2.5, "Min": 0.0, "Max": 5.0})])
        sig = self.signals_of(lambda: self.add_many([{"path": "/Settings/V/Str2", "default": "q"}]))
        self.assertEqual(sig, [("PropertiesChanged", "/Settings/V/Str2", {"Value": "q", "Text": "q", "Default": "q"})])
        # an unlimited number: Min/Max i 0
        sig = self.signals_of(lambda: self.add_many([{"path": "/Settings/V/Free", "default": 1.0}]))
        self.assertEqual(sig[0][2]["Min"], 0)
        self.assertIs(type(sig[0][2]["Min"]), dbus.Int32)
        # re-adding unchanged: nothing; with new limits: the full set again
        self.assertEqual(self.signals_of(lambda: self.add_many([{"path": "/Settings/V/Free", "default": 1.0}])), [])
        sig = self.signals_of(lambda: self.add_many([{"path": "/Settings/V/Free", "default": 1.0, "max": 9.0}]))
        self.assertEqual(sig[0][2]["Max"], 9.0)
        self.assertTrue(all(s[0] == "PropertiesChanged" for s in self.all_signals), "never ItemsChanged")

    def test_min_max_default(self):
        self.assertEqual(self.call("/Settings/V/Int", "GetMin"), 0)
        self.assertEqual(self.call("/Settings/V/Int", "GetMax"), 100)
        self.assertEqual(self.call("/Settings/V/Int", "GetDefault"), 5)
        self.assertEqual(self.call("/Settings/V/Float", "GetMin"), 0)
        self.assertIs(type(self.call("/Settings/V/Float", "GetMin")), dbus.Int32, "unlimited float: i 0")
        self.assertEqual(tuple(self.call("/Settings/V/Int", "GetAttributes", iface=SETTINGS_IFACE)), (5, 0, 100, 0))
        self.set("/Settings/V/Int", 50)
        self.assertEqual(self.call("/Settings/V/Int", "SetDefault"), 0)
        self.assertEqual(self.call("/Settings/V/Int", "GetValue"), 5)
        self.set("/Settings/V/Int", 50)
        self.set("/Settings/V/Str", "zzz")
        self.assertEqual(self.call("/Settings/V", "SetDefault"), 0)
        self.assertEqual((self.call("/Settings/V/Int", "GetValue"), self.call("/Settings/V/Str", "GetValue")),
                         (5, "abc"))

    def test_tree_and_get_items(self):
        v = self.call("/Settings/V", "GetValue")
        self.assertEqual(dict(v), {"Int": 5, "Float": 1.5, "Str": "abc"})
        t = self.call("/Settings", "GetText")
        self.assertEqual(t.signature, "ss")
        self.assertEqual(dict(t)["V/Float"], "1.5")
        items = self.call("/", "GetItems")
        self.assertEqual(items.signature, "sa{sv}")
        self.assertEqual(dict(items["/Settings/V/Int"]), {"Value": 5, "Text": "5", "Default": 5, "Min": 0, "Max": 100})
        self.assertEqual(dict(items["/Settings/V/Str"]), {"Value": "abc", "Text": "abc", "Default": "abc"})
        self.assertEqual(self.error_name("/Settings/V", "GetItems"), UNKNOWN_METHOD)
        self.assertEqual(self.error_name("/Settings/Nope", "GetValue"), UNKNOWN_OBJECT)
        # gdbus, an independent client
        out = subprocess.run(["gdbus", "call", "--address", self.bus.address, "--dest", SETTINGS, "--object-path",
                              "/Settings/V/Float", "--method", "com.victronenergy.BusItem.GetValue"],
                             capture_output=True, text=True, timeout=10)
        self.assertEqual(out.stdout.strip(), "(<1.5>,)")


class InstanceTest(SettingsCase):
    def test_class_and_vrm_instance(self):
        def alloc(dev, default):
            r = self.add_many([{"path": f"{dev}/ClassAndVrmInstance", "default": default}], path="/Settings/Devices")
            return r[0].get("value"), r[0]["error"]
        self.assertEqual(alloc("bms_1", "battery:1"), ("battery:1", 0))
        self.assertEqual(alloc("bms_2", "battery:1"), ("battery:2", 0))
        self.assertEqual(alloc("bms_1", "battery:1"), ("battery:1", 0), "an existing entry is returned unchanged")
        self.assertEqual(alloc("em_1", "grid:40"), ("grid:40", 0))
        self.assertEqual(alloc("bad_1", "battery")[1], -6)
        # the older form
        self.assertEqual(self.add("bms_3", "ClassAndVrmInstance", "battery:1", "s", "", "", path="/Settings/Devices"), 0)
        self.assertEqual(self.call("/Settings/Devices/bms_3/ClassAndVrmInstance", "GetValue"), "battery:3")
        # a write to a taken one stores the next free
        p = "/Settings/Devices/bms_1/ClassAndVrmInstance"
        self.assertEqual(self.set(p, "battery:2"), 0)
        self.assertEqual(self.call(p, "GetValue"), "battery:4")
        self.assertEqual(self.set(p, "garbage"), -1)
        self.assertEqual(self.call(p, "GetValue"), "battery:4")


class PersistenceTest(SettingsCase):
    def test_kept_across_a_restart(self):
        self.add_many([{"path": "/Settings/P/Int", "default": 5}, {"path": "/Settings/P/F", "default": 0.1}])
        self.set("/Settings/P/Int", 77)
        self.service.stop()  # SIGTERM: unsaved changes are written
        self.service = self.start()
        self.assertEqual(self.call("/Settings/P/Int", "GetValue"), 77)
        self.assertEqual(self.call("/Settings/P/F", "GetValue"), 0.1)
        self.assertEqual(self.call("/Settings/P/Int", "GetDefault"), 5)

    def test_written_after_the_debounce(self):
        self.add_many([{"path": "/Settings/P/Int", "default": 5}])
        deadline = time.monotonic() + 5
        while not os.path.exists(self.file) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertTrue(os.path.exists(self.file), "written within 5 s")
        with open(self.file) as f:
            self.assertIn('"/Settings/P/Int"', f.read())

    def test_a_corrupt_file_is_kept_aside(self):
        self.service.stop()
        with open(self.file, "w") as f:
            f.write("format = 1\n[settings.\"/Settings/A\"\n")
        self.service = self.start()
        aside = glob.glob(self.file + ".corrupt-*")
        self.assertEqual(len(aside), 1)
        with open(aside[0]) as f:
            self.assertIn("[settings", f.read())
        self.assertIn(self.file, self.service.log())
        self.assertIn("corrupt", self.service.log())
        self.assertEqual(dict(self.call("/", "GetItems")), {})


if __name__ == "__main__":
    unittest.main()

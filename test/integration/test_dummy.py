"""The dummy plugin under the real host on a private bus, checked with
python3-dbus and gdbus: the configured service, writes, periodic changes,
SIGTERM, configuration errors, and the shipped example configuration."""

import os
import re
import signal
import subprocess
import unittest

import dbus

from moattest import (BUILD_DIR, SOURCE_DIR, BusClient, env_without_bus, HostTestCase, line_of, run_host)

PLUGINS = os.path.join(BUILD_DIR, "plugins")
NAME = "com.victronenergy.grid.test_dummy"
MANDATORY = ["/Mgmt/ProcessName", "/Mgmt/ProcessVersion", "/Mgmt/Connection", "/DeviceInstance", "/ProductId",
             "/ProductName", "/FirmwareVersion", "/HardwareVersion", "/Connected"]

INSTANCE = f"""
[meter]
kind = "dummy"
service = "{NAME}"
device_instance = 41
product_id = 0xB002
product_name = "Test meter"
firmware_version = 7

[[meter.items]]
path = "/Ac/Power"
value = 1200.0
format = "%.0f"
unit = "W"

[[meter.items]]
path = "/Ac/L1/Voltage"
type = "float"
value = 230
format = "%.1f"
unit = "V"

[[meter.items]]
path = "/Ac/Counter"
type = "int"
value = 5
change = {{ mode = "increment", step = 2, period = 0.1 }}

[[meter.items]]
path = "/Ac/Walk"
value = 50.0
min = 40.0
max = 60.0
change = {{ mode = "random", step = 1.0, period = 0.1 }}

[[meter.items]]
path = "/CustomName"
value = "bench"
writeable = true

[[meter.items]]
path = "/Settings/Limit"
type = "float"
value = 10.0
writeable = true
min = 0.0
max = 100.0

[[meter.items]]
path = "/Ac/Frequency"
type = "float"
"""


def nth_line_of(path, needle, n):
    """The line number of the n-th line (from 1) containing needle."""
    with open(path) as f:
        hits = [k for k, line in enumerate(f, 1) if needle in line]
    return hits[n - 1]




class DummyTest(HostTestCase):

    def start(self, body=INSTANCE):
        self.start_bus()
        path = self.write_config(body, plugin_dir=PLUGINS)
        host = self.start_host(path)
        self.client = BusClient(self.bus.address)
        self.addCleanup(self.client.close)
        self.wait_until(f"{NAME} on the bus", lambda: self.client.name_has_owner(NAME), 10, host)
        return host

    def call(self, path, method, *args, signature=None):
        return self.client.call(path, method, *args, signature=signature, dest=NAME)

    def test_service_has_the_configured_paths_types_and_texts(self):
        self.start()
        items = self.call("/", "GetItems")
        expected = MANDATORY + ["/Ac/Power", "/Ac/L1/Voltage", "/Ac/Counter", "/Ac/Walk", "/CustomName",
                                "/Settings/Limit", "/Ac/Frequency"]
        self.assertEqual(sorted(str(k) for k in items), sorted(expected))
        v = lambda p: items[p]["Value"]
        t = lambda p: str(items[p]["Text"])
        self.assertIsInstance(v("/Ac/Power"), dbus.Double)
        self.assertEqual((float(v("/Ac/Power")), t("/Ac/Power")), (1200.0, "1200 W"))
        self.assertIsInstance(v("/Ac/L1/Voltage"), dbus.Double, "type float turns 230 into a double")
        self.assertEqual(t("/Ac/L1/Voltage"), "230.0 V")
        self.assertIsInstance(v("/Ac/Counter"), dbus.Int32)
        self.assertIsInstance(v("/CustomName"), dbus.String)
        self.assertEqual((v("/Ac/Frequency").signature, len(v("/Ac/Frequency")), t("/Ac/Frequency")), ("i", 0, "---"))
        self.assertEqual(float(items["/Settings/Limit"]["Min"]), 0.0, "the range is shown in GetItems")
        self.assertEqual(int(v("/DeviceInstance")), 41)
        self.assertEqual(t("/ProductId"), "0xB002")
        self.assertEqual(str(v("/ProductName")), "Test meter")
        self.assertEqual(int(v("/FirmwareVersion")), 7)
        self.assertEqual(int(v("/Connected")), 1)
        # gdbus sees the same
        out = subprocess.run(["gdbus", "call", "--address", self.bus.address, "--dest", NAME, "--object-path",
                              "/Ac/Power", "--method", "com.victronenergy.BusItem.GetText"],
                             capture_output=True, text=True, timeout=10)
        self.assertEqual(out.stdout.strip(), "('1200 W',)", out.stderr)

    def test_writes_honour_writeable_and_range(self):
        self.start()
        set_ = lambda p, x: int(self.call(p, "SetValue", x, signature="v"))
        self.assertEqual(set_("/Ac/Power", dbus.Double(5.0)), 1, "not writeable")
        self.assertEqual(set_("/CustomName", dbus.String("garage")), 0)
        self.assertEqual(str(self.call("/CustomName", "GetValue")), "garage")
        self.assertEqual(set_("/Settings/Limit", dbus.Double(150.0)), 2, "above max")
        self.assertEqual(set_("/Settings/Limit", dbus.Int32(-1)), 2, "below min")
        self.assertEqual(set_("/Settings/Limit", dbus.String("abc")), 1, "not a float")
        self.assertEqual(set_("/Settings/Limit", dbus.Int32(50)), 0)
        got = self.call("/Settings/Limit", "GetValue")
        self.assertIsInstance(got, dbus.Double, "coerced to the item's type")
        self.assertEqual(float(got), 50.0)

    def test_periodic_changes_arrive_as_items_changed(self):
        self.start()
        ok = self.client.pump(until=lambda: len([s for s in self.client.signals() if s[1] == "ItemsChanged"]) >= 4,
                              timeout=5)
        signals = self.client.signals()
        self.assertTrue(ok, signals)
        changes = [s for s in signals if s[1] == "ItemsChanged"]
        self.assertEqual({s[2] for s in changes}, {"/"})
        self.assertEqual([s for s in signals if s[1] == "PropertiesChanged"], [], "batched: no PropertiesChanged")
        counters = [int(s[3]["/Ac/Counter"]["Value"]) for s in changes if "/Ac/Counter" in s[3]]
        self.assertGreaterEqual(len(counters), 3)
        self.assertEqual(counters, list(range(counters[0], counters[0] + 2 * len(counters), 2)), "steps of 2")
        for s in changes:
            if "/Ac/Walk" in s[3]:
                self.assertTrue(40.0 <= float(s[3]["/Ac/Walk"]["Value"]) <= 60.0)

    def test_sigterm_leaves_cleanly(self):
        host = self.start()
        host.signal(signal.SIGTERM)
        rc, _ = host.wait(10)
        self.assertEqual(rc, 0, host.describe())
        self.assertFalse(self.client.name_has_owner(NAME))

    def test_config_errors_name_file_line_and_key(self):
        head = f'[bad]\nkind = "dummy"\nservice = "{NAME}"\n'
        cases = [
            ("min above max", '[[bad.items]]\npath = "/A"\nvalue = 1.0\nmin = 5.0\nmax = 2.0\n',
             r"item 1: 'min': min 5 is above max 2"),
            ("value out of range", '[[bad.items]]\npath = "/A"\nvalue = 9.0\nmax = 2.0\n',
             r"item 1: 'value': 9 is outside \[-inf, 2\]"),
            ("missing path", '[[bad.items]]\npath = "/A"\n[[bad.items]]\nvalue = 1\n',
             r"item 2: 'path': missing"),
            ("bad path", '[[bad.items]]\npath = "A//b"\n', r"item 1: 'path': 'A//b' is not a D-Bus object path"),
            ("mandatory path", '[[bad.items]]\npath = "/ProductName"\n', r"item 1: 'path': '/ProductName' is a mandatory"),
            ("duplicate", '[[bad.items]]\npath = "/A"\n[[bad.items]]\npath = "/A"\n', r"item 2: 'path': '/A' is given twice"),
            ("item and node", '[[bad.items]]\npath = "/A"\n[[bad.items]]\npath = "/A/B"\n', r"item 2: 'path': '/A/B' lies below the item '/A'"),
            ("unknown key", '[[bad.items]]\npath = "/A"\ncolour = 1\n', r"item 1: 'colour': unknown key"),
            ("bad type", '[[bad.items]]\npath = "/A"\ntype = "bool"\n', r"item 1: 'type': 'bool' is not one of int\|float\|string"),
            ("value vs type", '[[bad.items]]\npath = "/A"\ntype = "int"\nvalue = "x"\n', r"item 1: 'value': a string does not fit type int"),
            ("bad change mode", '[[bad.items]]\npath = "/A"\nvalue = 1.0\nchange = { mode = "sine" }\n',
             r"item 1: 'change.mode': 'sine' is not one of increment\|random"),
            ("change of a string", '[[bad.items]]\npath = "/A"\nvalue = "x"\nchange = { mode = "random" }\n',
             r"item 1: 'change': only numeric items"),
            ("bad format", '[[bad.items]]\npath = "/A"\nvalue = 1.0\nformat = "%q"\n', r"item 1: 'format': '%q' is not a usable"),
            ("items not tables", 'items = [1, 2]\n', r"item 1: expected a table, got an integer"),
            ("bad service", '', r"'com.victronenergy.x' is not"),
        ]
        # The plugin's validate hook runs in --check-config: no bus, exit 3,
        # and an item's error names the line of that item.
        for i, (what, body, pattern) in enumerate(cases):
            with self.subTest(what):
                text = head + body if what != "bad service" else '[bad]\nkind = "dummy"\nservice = "com.victronenergy.x"\n'
                path = self.write_config(text, name=f"bad{i}.toml", plugin_dir=PLUGINS)
                rc, out, err = run_host(["--check-config", path, "--plugin-dir", PLUGINS], env=env_without_bus())
                self.assertEqual(rc, 3, f"{what}\nstdout: {out}\nstderr: {err}")
                if what == "bad service":
                    line = line_of(path, "service =")
                elif "items =" in body:
                    line = line_of(path, "items =")
                else:
                    index = int(re.match(r"item (\d+)", pattern).group(1))
                    line = nth_line_of(path, "[[bad.items]]", index)
                key = "service" if what == "bad service" else "items"
                expected = re.escape(f"{path}:{line}: [bad] key '{key}': ") + pattern
                self.assertRegex(err, expected)

    def test_example_configurations_pass_check_config(self):
        for cfg in ("dummy-grid-meter.toml", "demo.toml"):
            path = os.path.join(SOURCE_DIR, "config", cfg)
            rc, out, err = run_host(["--check-config", path, "--plugin-dir", PLUGINS], env=env_without_bus())
            self.assertEqual(rc, 0, f"{cfg}\nstdout: {out}\nstderr: {err}")
            self.assertIn("kind dummy", out)

    def test_example_grid_meter_runs(self):
        self.start_bus()
        with open(os.path.join(SOURCE_DIR, "config", "dummy-grid-meter.toml")) as f:
            body = f.read().replace('[host]\nbus = "system"\n', "")
        path = self.write_config(body, plugin_dir=PLUGINS)
        host = self.start_host(path)
        client = BusClient(self.bus.address)
        self.addCleanup(client.close)
        name = "com.victronenergy.grid.dummy_meter"
        self.wait_until("the example meter", lambda: client.name_has_owner(name), 10, host)
        items = client.call("/", "GetItems", dest=name)
        self.assertEqual(str(items["/Ac/Power"]["Text"]), "1200 W")
        self.assertEqual(str(items["/ProductId"]["Text"]), "0xB002")


if __name__ == "__main__":
    unittest.main(verbosity=2)

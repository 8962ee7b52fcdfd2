"""Configuration errors inside plugins' own tables and between instances:
--check-config finds every one of them (exit 3, FILE:LINE: [instance] key 'x'),
the host refuses to start with them, and a configuration error found only at
start is never retried.

Run: cd test/integration && MOAT_BUILD_DIR=../../build MOAT_SOURCE_DIR=../.. python3 -m unittest -v test_config_errors
"""

import os
import re
import unittest

from moattest import (BUILD_DIR, NO_BUS, TEST_PLUGINS, env_without_bus, HostProcess, HostTestCase, line_of,
                      run_host)

PLUGINS = os.path.join(BUILD_DIR, "plugins")




class PluginTablesTest(HostTestCase):
    """Each example of issue 12 passed --check-config before."""

    def check(self, body, plugin_dir=PLUGINS):
        path = self.write_config(body, bus=NO_BUS, plugin_dir=plugin_dir)
        rc, out, err = run_host(["--check-config", path], env=env_without_bus())
        self.assertEqual(rc, 3, f"exit code of --check-config\nstdout: {out}\nstderr: {err}")
        self.assertNotIn(": OK", out)
        return path, err

    def assert_error(self, err, path, needle, message, nth=1):
        expected = f"{path}:{line_of(path, needle, nth)}: {message}"
        self.assertIn(expected, err.splitlines(), f"expected the line\n  {expected}\nin\n{err}")

    def test_meters_unknown_device_type(self):
        path, err = self.check('[meters]\nbus = "rtu"\ndevice = "/dev/ttyUSB0"\n'
                               'devices = [{unit = 1, type = "sdm999"}]\n')
        self.assert_error(err, path, "devices =", "[meters] key 'devices': unknown meter type 'sdm999' "
                          "(abb_b2x, em24rtu, sdm120, sdm630v1, sdm630v2, sdm72dv2)")

    def test_meters_unknown_bus(self):
        path, err = self.check('[meters]\nbus = "foo"\n')
        self.assert_error(err, path, 'bus = "foo"', "[meters] key 'bus': 'foo' is not one of rtu|tcp")

    def test_meters_device_entry_errors(self):
        path, err = self.check('[meters]\nbus = "tcp"\nhost = "127.0.0.1"\ndevices = [\n  {unit = 1},\n'
                               '  {unit = 300},\n]\n')
        self.assert_error(err, path, "{unit = 300}", "[meters] key 'devices': each device needs a unit of 1..247")

    def test_inverter_mode_parameter_not_a_number(self):
        path, err = self.check('[inverter]\n[inverter.modes.p_grid]\npower = "lots"\n')
        self.assertRegex(err, re.escape(f"{path}:") + r"\d+: \[inverter\] key 'modes': "
                         r"p_grid\.power: expected a number or a boolean")

    def test_inverter_unknown_mode(self):
        path, err = self.check('[inverter]\n[inverter.modes.nosuch]\npower = 1\n')
        self.assertRegex(err, re.escape(f"{path}:") + r"\d+: \[inverter\] key 'modes': nosuch: unknown mode")

    def test_inverter_misspelled_mode_parameter(self):
        path, err = self.check('[inverter]\n[inverter.modes.p_grid]\npowr = 1\n')
        self.assertRegex(err, re.escape(f"{path}:") + r"\d+: \[inverter\] key 'modes': "
                         r"p_grid: unknown parameter for p_grid: 'powr'")

    def test_two_inverters_with_one_control_bus_name(self):
        path, err = self.check('[inv_a]\nkind = "inverter"\n\n[inv_b]\nkind = "inverter"\nvenus_service = '
                               '"com.victronenergy.moatinv.b"\n')
        # neither sets `name`: both would be org.m_o_a_t.inv.main; located at the tables
        self.assert_error(err, path, "[inv_b]", f"[inv_b] key 'name': the D-Bus name org.m_o_a_t.inv.main is also "
                          f"used by {path}:{line_of(path, '[inv_a]')}: [inv_a] key 'name'")

    def test_two_instances_with_one_venus_service(self):
        path, err = self.check('[inv_a]\nkind = "inverter"\nname = "a"\nvenus_service = "com.victronenergy.grid.x"\n\n'
                               '[meter]\nkind = "dummy"\nservice = "com.victronenergy.grid.x"\n')
        self.assert_error(err, path, 'service = "com', nth=2, message="[meter] key 'service': the D-Bus name "
                          f"com.victronenergy.grid.x is also used by {path}:{line_of(path, 'venus_service')}: "
                          "[inv_a] key 'venus_service'")

    def test_two_meter_buses_on_one_serial_device(self):
        path, err = self.check('[m1]\nkind = "meters"\nbus = "rtu"\ndevice = "/dev/ttyUSB0"\n\n'
                               '[m2]\nkind = "meters"\nbus = "rtu"\ndevice = "/dev/ttyUSB0"\n')
        self.assert_error(err, path, 'device = "/dev', "[m2] key 'device': the serial device /dev/ttyUSB0 is also "
                          f"used by {path}:{line_of(path, 'device = ')}: [m1] key 'device'", nth=2)

    def test_a_disabled_instance_claims_nothing(self):
        path = self.write_config('[m1]\nkind = "meters"\nbus = "rtu"\ndevice = "/dev/ttyUSB0"\n\n'
                                 '[m2]\nkind = "meters"\nenabled = false\nbus = "rtu"\ndevice = "/dev/ttyUSB0"\n',
                                 bus=NO_BUS, plugin_dir=PLUGINS)
        rc, out, err = run_host(["--check-config", path], env=env_without_bus())
        self.assertEqual(rc, 0, f"stdout: {out}\nstderr: {err}")

    def test_every_error_of_a_file_is_reported(self):
        path, err = self.check(
            '[meters]\nbus = "foo"\nbaud = 5\n\n'
            '[m2]\nkind = "meters"\nbus = "rtu"\ndevice = "/dev/ttyS1"\ndevices = [{unit = 1, type = "sdm999"}]\n\n'
            '[inverter]\nmode = "hold"\n\n'
            '[inv2]\nkind = "inverter"\nname = "two"\n[inv2.modes.nosuch]\npower = 1\n')
        self.assert_error(err, path, 'bus = "foo"', "[meters] key 'bus': 'foo' is not one of rtu|tcp")
        self.assert_error(err, path, "baud = 5", "[meters] key 'baud': 5 is out of range [1200, 230400]")
        self.assertIn("[m2] key 'devices': unknown meter type 'sdm999'", err)
        self.assertIn("[inverter] key 'mode': 'hold' is not one of", err)
        self.assertIn("[inv2] key 'modes': nosuch: unknown mode", err)
        self.assertEqual(len(err.strip().splitlines()), 5, err)

    def test_host_keys_plugin_keys_and_plugin_checks_in_one_run(self):
        # Independent errors everywhere: the [host] table's, an instance's keys,
        # and each plugin's own check also where some of its keys are invalid
        # (on the keys that are valid), two wrong modes of one plugin both.
        path = self.write_config(
            '[inverter]\nmode_lockout = -5\n\n[inverter.modes.p_grid]\npower = "lots"\n\n[inverter.modes.nosuch]\n\n'
            '[meters]\nbus = "tcp"\nhost = "127.0.0.1"\ncolour = 1\ndevices = [{unit = 1, type = "sdm999"}]\n',
            bus=NO_BUS, plugin_dir=PLUGINS, watchdog=-1, log_level="loud")
        rc, out, err = run_host(["--check-config", path], env=env_without_bus())
        self.assertEqual(rc, 3, f"exit code of --check-config\nstdout: {out}\nstderr: {err}")
        self.assertNotIn(": OK", out)
        self.assert_error(err, path, "watchdog =", "[host] key 'watchdog': -1 is out of range [0, 3600]")
        self.assert_error(err, path, "log_level =", "[host] key 'log_level': 'loud' is not one of "
                          "debug|info|warning|error")
        self.assert_error(err, path, "mode_lockout =", "[inverter] key 'mode_lockout': -5 is out of range [0, 3600]")
        self.assert_error(err, path, 'power = "lots"', "[inverter] key 'modes': p_grid.power: "
                          "expected a number or a boolean")
        self.assert_error(err, path, "[inverter.modes.nosuch]", "[inverter] key 'modes': nosuch: unknown mode")
        self.assertRegex(err, re.escape(f"{path}:{line_of(path, 'colour =')}: [meters] key 'colour': unknown key"))
        self.assert_error(err, path, "devices =", "[meters] key 'devices': unknown meter type 'sdm999' "
                          "(abb_b2x, em24rtu, sdm120, sdm630v1, sdm630v2, sdm72dv2)")
        self.assertEqual(len(err.strip().splitlines()), 7, err)

    def test_every_nested_error_of_every_plugin_is_reported(self):
        # Several wrong entries in the nested tables and arrays of several
        # plugins: each one at its own line, all in one run.
        path, err = self.check(
            '[meters]\nbus = "tcp"\nhost = "127.0.0.1"\ndevices = [\n'
            '  {unit = 1, type = "sdm999"},\n  {unit = 300},\n  {unit = 2, colour = 1},\n  {unit = 5, type = "sdm120"},\n  { unit = 5 },\n]\n\n'
            '[inverter]\n[inverter.modes.p_grid]\npower = "lots"\npowr = 1\n[inverter.modes.nosuch]\n\n'
            '[guard]\nfix = ["nosuch_fix"]\nignore = ["nosuch_ignore"]\n\n'
            '[sim]\nvebus = { ratin = 1 }\n[sim.battery]\ncapacity = -1\n[sim.load]\nbase = [1, "x"]\n\n'
            '[dummy]\nservice = "com.victronenergy.x"\n[[dummy.items]]\npath = 5\n[[dummy.items]]\npath = "/A"\n'
            'type = "nope"\n\n'
            '[moat-bms]\nsocket = "/tmp/a"\ndevice = "/dev/ttyACM0"\n')
        expected = [
            ('type = "sdm999"', "[meters] key 'devices': unknown meter type 'sdm999'"),
            ("{unit = 300}", "[meters] key 'devices': each device needs a unit of 1..247"),
            ("colour = 1", "[meters] key 'devices': unknown key 'colour' in a device (unit, type)"),
            ("{ unit = 5 }", "[meters] key 'devices': unit 5 is given twice"),
            ('power = "lots"', "[inverter] key 'modes': p_grid.power: expected a number or a boolean"),
            ("powr = 1", "[inverter] key 'modes': p_grid: unknown parameter for p_grid: 'powr'"),
            ("[inverter.modes.nosuch]", "[inverter] key 'modes': nosuch: unknown mode"),
            ("nosuch_fix", "[guard] key 'fix': unknown check 'nosuch_fix'"),
            ("nosuch_ignore", "[guard] key 'ignore': unknown check 'nosuch_ignore'"),
            ("ratin = 1", "[sim] key 'vebus': key 'ratin': unknown key"),
            ("capacity = -1", "[sim] key 'battery': key 'capacity': -1 is out of range"),
            ('base = [1, "x"]', "[sim] key 'load': key 'base': expected an array of numbers"),
            ('service = "com.victronenergy.x"', "[dummy] key 'service': 'com.victronenergy.x' is not "
             "com.victronenergy.<type>.<suffix>"),
            ("[[dummy.items]]", "[dummy] key 'items': item 1: 'path': expected a string"),  # at the item's line
            ("[[dummy.items]]", "[dummy] key 'items': item 2: 'type': 'nope' is not one of int|float|string", 2),
            ('socket = "/tmp/a"', "[moat-bms] key 'socket': give exactly one of 'device' and 'socket'"),
        ]
        lines = err.strip().splitlines()
        for needle, message, *nth in expected:
            start = f"{path}:{line_of(path, needle, *nth)}: {message}"
            self.assertTrue(any(l.startswith(start) for l in lines), f"expected a line starting\n  {start}\nin\n{err}")
        self.assertEqual(len(lines), len(expected), err)

    def test_a_plugin_check_that_needs_an_invalid_key_adds_nothing(self):
        # The meters' own check needs `bus`: only the key's error, no follow-up noise.
        path, err = self.check('[meters]\nbus = "foo"\ndevices = [{unit = 1, type = "sdm999"}]\n')
        line = line_of(path, 'bus = "foo"')
        self.assertEqual(err.strip().splitlines(),
                         [f"{path}:{line}: [meters] key 'bus': 'foo' is not one of rtu|tcp"], err)

    def test_host_errors_with_the_instance_tables_errors(self):
        # plugin_dir is wrong: no plugin can be looked for, but the instance
        # tables' own errors are still found beside the [host] table's.
        path = os.path.join(self.tmp, "moat.toml")
        with open(path, "w") as f:
            f.write(f'[host]\nbus = "{NO_BUS}"\nplugin_dir = 5\nstop_timeout = 0\n\n[w]\nkind = 3\n\n'
                    '[v]\nkind = "worker"\nenabled = "yes"\n')
        rc, out, err = run_host(["--check-config", path], env=env_without_bus())
        self.assertEqual(rc, 3, f"stdout: {out}\nstderr: {err}")
        self.assertEqual(err.strip().splitlines(), [
            f"{path}:{line_of(path, 'plugin_dir')}: [host] key 'plugin_dir': expected string, got an integer",
            f"{path}:{line_of(path, 'stop_timeout')}: [host] key 'stop_timeout': 0 is out of range [0.1, 60]",
            f"{path}:{line_of(path, 'kind = 3')}: [w] key 'kind': expected a plugin kind (a non-empty string)",
            f"{path}:{line_of(path, 'enabled')}: [v] key 'enabled': expected boolean",
        ], err)

    def test_the_host_refuses_to_start_and_does_not_retry(self):
        self.start_bus()
        path = self.write_config('[meters]\nbus = "rtu"\ndevice = "/dev/ttyUSB0"\n'
                                 'devices = [{unit = 1, type = "sdm999"}]\n', plugin_dir=PLUGINS)
        h = HostProcess(["--config", path])
        self.addCleanup(h.stop)
        rc, _ = h.wait(10)
        self.assertEqual(rc, 3, h.describe())
        self.assertIn("unknown meter type 'sdm999'", h.log)
        self.assertNotIn("restarting", h.log)


class StartTimeConfigErrorTest(HostTestCase):
    """A ConfigError that only the factory finds stops that instance for good."""

    def test_factory_config_error_is_not_retried(self):
        self.start_bus()
        path = self.write_config('[ft]\nkind = "factory_throws"\nconfig_error = true\n\n'
                                 '[w]\nkind = "worker"\nlabel = "w"\n', plugin_dir=TEST_PLUGINS)
        h = self.start_host(path)
        h.wait_for(r"\[ft\] not restarted until the configuration is reloaded", timeout=10)
        self.assertRegex(h.log, r"ERROR \[ft\] configuration error: .*\[ft\] key 'config_error': "
                         r"deliberate configuration error")
        # The worker keeps running; then a stop shows that nothing was retried meanwhile.
        h.signal(15)
        rc, _ = h.wait(10)
        self.assertEqual(rc, 0, h.describe())
        self.assertNotIn("[ft] restarting", h.log)
        self.assertEqual(h.log.count("[ft] configuration error"), 1, h.log)


if __name__ == "__main__":
    unittest.main()

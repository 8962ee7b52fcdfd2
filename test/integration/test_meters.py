"""Integration tests of the meters plugin: the real host reads (a) our meter
simulator over Modbus TCP, (b) the simulator over RTU on a pseudo-terminal,
(c) an independent peer, a python3-pymodbus server with SDM630 and EM24
register images; the published trees are read with python3-dbus and
compared with the register values. Fault injection: exceptions and garbled
replies make the values invalid; silence removes the meter after 5 s and
the re-probe (every 10 s) brings it back. Settings: our settings service
(build/test/settings-service) runs beside the host; instances, role, name
and position are kept there under dbus-modbus-client's keys.
"""

import math
import os
import socket
import subprocess
import sys
import time
import unittest

from moattest import BUILD_DIR, HostTestCase, BusClient, _readline_with_timeout, dbus_python, spawn, stop_process, toml_string

METER_SIM = os.path.join(BUILD_DIR, "test", "meter-sim")
PLUGINS = os.path.join(BUILD_DIR, "plugins")
HERE = os.path.dirname(os.path.abspath(__file__))
SETTINGS = "com.victronenergy.settings"


class MeterSim:
    """build/test/meter-sim with a command channel on stdin."""

    def __init__(self, *args):
        self.proc = spawn([METER_SIM] + list(args), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL)
        first = _readline_with_timeout(self.proc.stdout, 5.0)
        ready = _readline_with_timeout(self.proc.stdout, 5.0)
        if not first or not ready or ready.strip() != "ready":
            self.stop()
            raise AssertionError(f"meter-sim did not start ({first!r}, {ready!r})")
        words = first.split()
        self.port = int(words[2]) if words[0] == "tcp" else None
        self.tty = words[1] if words[0] == "rtu" else None

    def command(self, line):
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()
        out = []
        while True:
            l = _readline_with_timeout(self.proc.stdout, 5.0)
            if l is None:
                raise AssertionError(f"meter-sim did not answer {line!r}")
            l = l.rstrip("\n")
            if not line.startswith("dump"):
                return l
            if l == "end":
                return out
            out.append(l)

    def values(self, unit):
        return {k: float(v) for k, v in (l.split("=", 1) for l in self.command(f"dump {unit}"))}

    def stop(self):
        stop_process(self.proc)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def close_enough(a, b):
    if hasattr(a, "__len__"):  # invalid (an empty array) or a string
        return False
    return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-3)


class MetersTestCase(HostTestCase):
    settings_at_start = True  # com.victronenergy.settings on the bus before the host

    def setUp(self):
        super().setUp()
        if not dbus_python():
            self.skipTest("python3-dbus is needed")
        if not os.access(METER_SIM, os.X_OK):
            self.fail(f"{METER_SIM} is not built")
        self.start_bus()
        self.client = BusClient(self.bus.address)
        self.addCleanup(self.client.close)
        self.settings_file = os.path.join(self.tmp, "settings.toml")
        self.settings = None
        if self.settings_at_start:
            self.start_settings()

    def start_settings(self):
        from test_settings import SettingsProcess
        self.settings = SettingsProcess(self.bus.address, self.settings_file, self.tmp)
        self.addCleanup(self.settings.stop)
        return self.settings

    def setting(self, path):
        return self.client.call(path, "GetValue", dest=SETTINGS)

    def start_meters(self, body):
        config = self.write_config(body, plugin_dir=PLUGINS)
        host = self.start_host(config)
        return host

    def items(self, name):
        raw = self.client.call("/", "GetItems", dest=name)
        return {str(p): v["Value"] for p, v in raw.items()}

    def texts(self, name):
        raw = self.client.call("/", "GetItems", dest=name)
        return {str(p): str(v["Text"]) for p, v in raw.items()}

    def wait_service(self, name, host, timeout=10.0):
        self.wait_until(f"{name} on the bus", lambda: self.client.name_has_owner(name), timeout, host)

    def wait_gone(self, name, host, timeout):
        self.wait_until(f"{name} gone", lambda: not self.client.name_has_owner(name), timeout, host)

    def assert_tree(self, name, expected_values, serial, model, product, connection, instance=40):
        items = self.items(name)
        for path in ["/Mgmt/ProcessName", "/Mgmt/ProcessVersion", "/Mgmt/Connection", "/DeviceInstance", "/ProductId",
                     "/ProductName", "/FirmwareVersion", "/HardwareVersion", "/Connected", "/CustomName",
                     "/AllowedRoles", "/Role", "/Serial", "/Model"]:
            self.assertIn(path, items)
        self.assertEqual(str(items["/Serial"]), serial)
        self.assertEqual(str(items["/Model"]), model)
        self.assertEqual(str(items["/ProductName"]), product)
        self.assertEqual(str(items["/Mgmt/Connection"]), connection)
        self.assertEqual(int(items["/Connected"]), 1)
        if instance is not None:
            self.assertEqual(int(items["/DeviceInstance"]), instance)
        self.assertEqual([str(r) for r in items["/AllowedRoles"]], ["grid", "pvinverter", "genset", "acload"])
        self.assertEqual(str(items["/Role"]), "grid")
        self.assertNotIn("/Position", items)
        for path, v in expected_values.items():
            self.assertIn(path, items, f"{path} is not published")
            self.assertTrue(not invalid(items[path]) and close_enough(items[path], v),
                            f"{path}: published {items[path]!r}, registers say {v}")
        return items

    def wait_values(self, name, predicate, what, host, timeout=8.0):
        return self.wait_until(what, lambda: predicate(self.items(name)), timeout, host)


def invalid(v):
    return hasattr(v, "__len__") and not isinstance(v, str) and len(v) == 0


class SimulatorTcpTest(MetersTestCase):

    def test_tree_values_role_change_and_custom_name(self):
        sim = MeterSim("--tcp", "0", "--meter", "sdm630v2:1:12345678")
        self.addCleanup(sim.stop)
        host = self.start_meters(f"""
            [grid_meter]
            kind = "meters"
            bus = "tcp"
            host = "127.0.0.1"
            port = {sim.port}
            units = [1]
            poll_interval = 0.1
            """)
        name = "com.victronenergy.grid.cg_12345678"
        self.wait_service(name, host)
        expected = sim.values(1)
        items = self.assert_tree(name, expected, "12345678", "SDM630Modbusv2", "Eastron SDM630-Modbus v2",
                                 "Modbus TCP 127.0.0.1")
        self.assertEqual(int(items["/ProductId"]), 0xB023)
        self.assertEqual(int(items["/NrOfPhases"]), 3)
        self.assertEqual(int(items["/HardwareVersion"]), 0x70)
        self.assertEqual(self.texts(name)["/PhaseConfig"], "3P.n")
        self.assertEqual(self.texts(name)["/Ac/L1/Voltage"], "230.5 V")

        # A new power arrives within a second (max_age 1 s).
        self.assertEqual(sim.command("set 1 /Ac/L2/Power 1234.5"), "ok")
        self.wait_values(name, lambda i: close_enough(i["/Ac/L2/Power"], 1234.5), "new L2 power", host, 3.0)

        # Custom name: accepted, kept.
        self.assertEqual(int(self.client.call("/CustomName", "SetValue", "Garage", dest=name)), 0)
        self.assertEqual(str(self.items(name)["/CustomName"]), "Garage")

        # A role outside /AllowedRoles is refused; a good one re-publishes under the new name.
        self.assertEqual(int(self.client.call("/Role", "SetValue", "battery", dest=name)), 2)
        self.assertEqual(int(self.client.call("/Role", "SetValue", "pvinverter", dest=name)), 0)
        pv = "com.victronenergy.pvinverter.cg_12345678"
        self.wait_service(pv, host, 5.0)
        self.assertFalse(self.client.name_has_owner(name))
        items = self.items(pv)
        self.assertEqual(str(items["/Role"]), "pvinverter")
        self.assertEqual(int(items["/Position"]), 0)
        self.assertEqual(int(items["/IsGenericEnergyMeter"]), 1)
        self.assertEqual(str(items["/CustomName"]), "Garage")
        self.assertEqual(int(items["/DeviceInstance"]), 40)  # instances are per class
        self.assertEqual(int(self.client.call("/Position", "SetValue", 1, dest=pv)), 0)
        self.assertEqual(int(self.client.call("/Position", "SetValue", 3, dest=pv)), 2)

    def test_faults_invalid_values_then_removal_and_reprobe(self):
        sim = MeterSim("--tcp", "0", "--meter", "sdm630v2:1:555")
        self.addCleanup(sim.stop)
        host = self.start_meters(f"""
            [m]
            kind = "meters"
            bus = "tcp"
            host = "127.0.0.1"
            port = {sim.port}
            poll_interval = 0.1
            """)
        name = "com.victronenergy.grid.cg_555"
        self.wait_service(name, host)
        phase_energy = ["/Ac/L1/Energy/Forward", "/Ac/L3/Energy/Reverse"]

        # An exception reply to the block of phase energies: those go invalid, the rest stays.
        sim.command("fault 1 exception 4 0x015A")
        items = self.wait_values(name, lambda i: all(invalid(i[p]) for p in phase_energy) and i, "invalid phase energies",
                                 host)
        self.assertTrue(close_enough(items["/Ac/L1/Voltage"], 230.5))
        host.wait_for(r"SERVER DEVICE FAILURE \(exception 4\) for read input registers \(FC04\) 0x015A", 2.0)
        sim.command("fault 1 none")
        self.wait_values(name, lambda i: close_enough(i["/Ac/L1/Energy/Forward"], 410.5), "energies back", host)

        # Garbled replies: invalid values, never garbage.
        sim.command("fault 1 crc 0x015A")
        self.wait_values(name, lambda i: all(invalid(i[p]) for p in phase_energy), "invalid after garbled replies", host)
        sim.command("fault 1 none")
        self.wait_values(name, lambda i: close_enough(i["/Ac/L1/Energy/Forward"], 410.5), "energies back", host)
        self.assertEqual(len(host.find_all(r"0x015A\+12 failed: bad length")), 1, "logged once")

        # Silence: the meter leaves the bus after the 5 s failure timeout ...
        sim.command("fault 1 silent")
        t0 = time.monotonic()
        self.wait_gone(name, host, 9.0)
        gone = time.monotonic() - t0
        self.assertGreater(gone, 4.0)
        # ... and comes back through the re-probe, every 10 s.
        sim.command("fault 1 none")
        t1 = time.monotonic()
        self.wait_service(name, host, 14.0)
        self.assertLess(time.monotonic() - t1, 13.0)
        self.assertTrue(close_enough(self.items(name)["/Ac/L1/Voltage"], 230.5))


class SimulatorRtuTest(MetersTestCase):

    def test_two_meters_on_a_pty(self):
        sim = MeterSim("--rtu", "--meter", "sdm630v2:1:1001", "--meter", "em24rtu:2:BX12345")
        self.addCleanup(sim.stop)
        host = self.start_meters(f"""
            [rs485]
            kind = "meters"
            bus = "rtu"
            device = {toml_string(sim.tty)}
            baud = 38400
            devices = [{{unit = 1, type = "sdm630v2"}}, {{unit = 2}}]
            poll_interval = 0.1
            """)
        sdm = "com.victronenergy.grid.cg_1001"
        em24 = "com.victronenergy.grid.cg_BX12345"
        self.wait_service(sdm, host)
        self.wait_service(em24, host)
        tty = os.path.basename(sim.tty)
        self.assert_tree(sdm, sim.values(1), "1001", "SDM630Modbusv2", "Eastron SDM630-Modbus v2", f"Modbus RTU {tty}:1",
                         instance=None)
        items = self.assert_tree(em24, sim.values(2), "BX12345", "EM24-DIN AV9", "Carlo Gavazzi EM24RTU Energy Meter",
                                 f"Modbus RTU {tty}:2", instance=None)
        # Instances are unique per class.
        self.assertEqual(sorted([int(self.items(sdm)["/DeviceInstance"]), int(items["/DeviceInstance"])]), [40, 41])
        host.wait_for(r"unit 2: setting application H", 1.0)

        # CRC errors on the line: invalid values, then recovery.
        sim.command("fault 2 crc")
        self.wait_values(em24, lambda i: invalid(i["/Ac/Power"]) and invalid(i["/Ac/L1/Voltage"]), "EM24 invalid", host)
        self.assertTrue(close_enough(self.items(sdm)["/Ac/L1/Voltage"], 230.5), "the other meter is unaffected")
        sim.command("fault 2 none")
        self.wait_values(em24, lambda i: close_enough(i["/Ac/L1/Voltage"], 230.5), "EM24 back", host)


class PymodbusPeerTest(MetersTestCase):

    def test_sdm630_and_em24_from_pymodbus(self):
        exe = "/usr/bin/python3"
        if subprocess.run([exe, "-c", "import pymodbus"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode != 0:
            self.skipTest("python3-pymodbus is not installed (apt-get install python3-pymodbus)")
        sys.path.insert(0, HERE)
        import pymodbus_meters as peer
        port = free_port()
        p = spawn([exe, os.path.join(HERE, "pymodbus_meters.py"), str(port)], stdout=subprocess.PIPE,
                  stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        self.addCleanup(stop_process, p)
        line = _readline_with_timeout(p.stdout, 10.0)
        self.assertEqual((line or "").strip(), f"ready {port}")
        for _ in range(100):  # "ready" comes just before it listens
            try:
                socket.create_connection(("127.0.0.1", port), 0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        host = self.start_meters(f"""
            [peer]
            kind = "meters"
            bus = "tcp"
            host = "127.0.0.1"
            port = {port}
            units = [1, 2]
            poll_interval = 0.1
            """)
        for unit, e in peer.EXPECTED.items():
            name = f"com.victronenergy.grid.{e['ident']}"
            self.wait_service(name, host, 15.0)
            items = self.assert_tree(name, e["values"], e["serial"], e["model"], e["product"], "Modbus TCP 127.0.0.1",
                                     instance=None)
            self.assertEqual(int(items["/HardwareVersion"]), e["hardware"])
            self.assertEqual(int(items["/FirmwareVersion"]), e["firmware"])
            self.assertTrue(close_enough(items["/PhaseConfig"], e["phaseconfig"]))
        em24 = self.texts("com.victronenergy.grid.cg_BX99887")
        self.assertEqual(em24["/HardwareVersion"], "EM24DINAV23XISPFA")
        self.assertEqual(em24["/PhaseConfig"], "3P.n")
        # The SDM630 has no L-per-phase reverse energy paths missing, the EM24 has none.
        self.assertNotIn("/Ac/L1/Energy/Reverse", self.items("com.victronenergy.grid.cg_BX99887"))


class SettingsTest(MetersTestCase):
    """Role, instance, name and position in com.victronenergy.settings, under
    /Settings/Devices/cg_<serial>/ as dbus-modbus-client keeps them."""

    def tcp_config(self, port, units="[1, 2]"):
        return f"""
            [m]
            kind = "meters"
            bus = "tcp"
            host = "127.0.0.1"
            port = {port}
            units = {units}
            poll_interval = 0.1
            """

    def wait_setting(self, path, expected, host, timeout=5.0):
        self.wait_until(f"{path} = {expected!r}", lambda: self.setting(path) == expected, timeout, host)

    def test_instances_name_role_and_position_survive_a_host_restart(self):
        sim = MeterSim("--tcp", "0", "--meter", "sdm630v2:1:111", "--meter", "sdm120:2:222")
        self.addCleanup(sim.stop)
        config = self.write_config(self.tcp_config(sim.port), plugin_dir=PLUGINS)
        host = self.start_host(config)
        a, b = "com.victronenergy.grid.cg_111", "com.victronenergy.grid.cg_222"
        self.wait_service(a, host)
        self.wait_service(b, host)
        # Allocated by the settings service: 40, then 41 (whichever came first).
        instances = {int(self.items(n)["/DeviceInstance"]) for n in (a, b)}
        self.assertEqual(instances, {40, 41})
        for n, ident in ((a, "cg_111"), (b, "cg_222")):
            self.assertEqual(str(self.setting(f"/Settings/Devices/{ident}/ClassAndVrmInstance")),
                             f"grid:{int(self.items(n)['/DeviceInstance'])}")
            self.assertEqual(str(self.setting(f"/Settings/Devices/{ident}/CustomName")), "")
        instance_b = int(self.items(b)["/DeviceInstance"])

        # A custom name written over D-Bus lands in the settings.
        self.assertEqual(int(self.client.call("/CustomName", "SetValue", "Garage", dest=a)), 0)
        self.wait_setting("/Settings/Devices/cg_111/CustomName", "Garage", host)
        # A role change: the class part of ClassAndVrmInstance, then Position.
        self.assertEqual(int(self.client.call("/Role", "SetValue", "pvinverter", dest=b)), 0)
        pv = "com.victronenergy.pvinverter.cg_222"
        self.wait_service(pv, host)
        self.wait_gone(b, host, 5.0)
        self.wait_setting("/Settings/Devices/cg_222/ClassAndVrmInstance", f"pvinverter:{instance_b}", host)
        self.assertEqual(int(self.client.call("/Position", "SetValue", 2, dest=pv)), 0)
        self.wait_setting("/Settings/Devices/cg_222/Position", 2, host)

        # The host restarts (killed): everything comes back from the settings.
        host.stop()
        self.wait_gone(a, None, 5.0)
        host = self.start_host(config)
        self.wait_service(a, host)
        self.wait_service(pv, host)
        self.assertFalse(self.client.name_has_owner(b))
        self.assertEqual(str(self.items(a)["/CustomName"]), "Garage")
        items = self.items(pv)
        self.assertEqual(str(items["/Role"]), "pvinverter")
        self.assertEqual(int(items["/Position"]), 2)
        self.assertEqual(int(items["/DeviceInstance"]), instance_b)

    def test_changes_made_in_the_settings_service_are_followed(self):
        sim = MeterSim("--tcp", "0", "--meter", "sdm630v2:1:111")
        self.addCleanup(sim.stop)
        host = self.start_meters(self.tcp_config(sim.port, "[1]"))
        name = "com.victronenergy.grid.cg_111"
        self.wait_service(name, host)
        path = "/Settings/Devices/cg_111/ClassAndVrmInstance"
        # Another instance (the GUI's device list): only /DeviceInstance moves, same service.
        self.assertEqual(int(self.client.call(path, "SetValue", "grid:45", dest=SETTINGS)), 0)
        self.wait_values(name, lambda i: int(i["/DeviceInstance"]) == 45, "/DeviceInstance 45", host, 5.0)
        self.assertEqual(int(self.client.call("/Settings/Devices/cg_111/CustomName", "SetValue", "Shed",
                                              dest=SETTINGS)), 0)
        self.wait_values(name, lambda i: str(i["/CustomName"]) == "Shed", "/CustomName Shed", host, 5.0)
        # Another class: a role change, re-published under the new name with a Position.
        self.assertEqual(int(self.client.call(path, "SetValue", "acload:45", dest=SETTINGS)), 0)
        acload = "com.victronenergy.acload.cg_111"
        self.wait_service(acload, host, 5.0)
        self.wait_gone(name, host, 5.0)
        items = self.items(acload)
        self.assertEqual(str(items["/Role"]), "acload")
        self.assertEqual(int(items["/DeviceInstance"]), 45)
        self.assertEqual(int(items["/Position"]), 0)
        self.assertEqual(str(items["/CustomName"]), "Shed")
        self.assertEqual(int(self.setting("/Settings/Devices/cg_111/Position")), 0)

    def test_settings_of_the_legacy_ident_are_moved(self):
        # The Python drivers keyed an SDM630 at address 1 as cg_1065353216 (§6).
        old = "/Settings/Devices/cg_1065353216"
        added = self.client.call("/", "AddSettings", [
            {"path": f"{old}/ClassAndVrmInstance", "default": "pvinverter:43"},
            {"path": f"{old}/CustomName", "default": "Roof"},
            {"path": f"{old}/Position", "default": 1, "min": 0, "max": 2}],
            signature="aa{sv}", iface="com.victronenergy.Settings", dest=SETTINGS)
        self.assertEqual([int(r["error"]) for r in added], [0, 0, 0])
        sim = MeterSim("--tcp", "0", "--meter", "sdm630v2:1:777")
        self.addCleanup(sim.stop)
        host = self.start_meters(self.tcp_config(sim.port, "[1]"))
        name = "com.victronenergy.pvinverter.cg_777"
        self.wait_service(name, host)
        items = self.items(name)
        self.assertEqual(int(items["/DeviceInstance"]), 43)
        self.assertEqual(str(items["/CustomName"]), "Roof")
        self.assertEqual(int(items["/Position"]), 1)
        self.assertEqual(str(self.setting("/Settings/Devices/cg_777/ClassAndVrmInstance")), "pvinverter:43")
        self.assertEqual(str(self.setting("/Settings/Devices/cg_777/CustomName")), "Roof")
        self.assertEqual(int(self.setting("/Settings/Devices/cg_777/Position")), 1)
        # The old entries are gone (the instance moved with the meter).
        import dbus
        with self.assertRaises(dbus.exceptions.DBusException) as e:
            self.setting(f"{old}/ClassAndVrmInstance")
        self.assertEqual(e.exception.get_dbus_name(), "org.freedesktop.DBus.Error.UnknownObject")


class SettingsLateTest(MetersTestCase):
    settings_at_start = False

    def test_the_meter_waits_for_the_settings_service(self):
        sim = MeterSim("--tcp", "0", "--meter", "sdm630v2:1:111")
        self.addCleanup(sim.stop)
        host = self.start_meters(f"""
            [m]
            kind = "meters"
            bus = "tcp"
            host = "127.0.0.1"
            port = {sim.port}
            poll_interval = 0.1
            """)
        name = "com.victronenergy.grid.cg_111"
        host.wait_for(r"com\.victronenergy\.settings is not on the bus: waiting", 10.0)
        time.sleep(1.0)
        self.assertFalse(self.client.name_has_owner(name))
        self.start_settings()
        self.wait_service(name, host, 10.0)
        self.assertEqual(int(self.items(name)["/DeviceInstance"]), 40)
        self.assertEqual(str(self.setting("/Settings/Devices/cg_111/ClassAndVrmInstance")), "grid:40")
        self.assertTrue(host.running())


if __name__ == "__main__":
    unittest.main()

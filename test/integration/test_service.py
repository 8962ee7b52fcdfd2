"""The export side of the Venus D-Bus layer (moat::Service), checked from
outside with python3-dbus, gdbus and dbus-send against build/test/conformance-service
exporting test/conformance/catalogue.json on a private dbus-daemon."""

import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import dbus

from moattest import (BUSITEM, CONFORMANCE_NAME, BusClient, DBusDaemon, ServiceProcess)

MANDATORY = ["/Mgmt/ProcessName", "/Mgmt/ProcessVersion", "/Mgmt/Connection", "/DeviceInstance", "/ProductId",
             "/ProductName", "/FirmwareVersion", "/HardwareVersion", "/Connected"]
CATALOGUE_PATHS = MANDATORY + [
    "/Dc/0/Voltage", "/Dc/0/Current", "/Dc/0/Power", "/Dc/0/Temperature", "/Soc", "/Mode",
    "/Info/MaxChargeCurrent", "/Info/MaxChargeVoltage", "/Info/BatteryLowVoltage", "/Settings/Setpoint",
    "/CustomName", "/Free", "/Io/AllowToCharge", "/Serial", "/Alarms/LowVoltage", "/History/Values",
    "/History/Empty", "/History/Dict", "/Test/Bool", "/Test/Int64", "/Test/SmallDouble", "/Test/BigDouble",
    "/Test/Third", "/Test/EmptyString", "/Test/Trigger"]
UNKNOWN_OBJECT = "org.freedesktop.DBus.Error.UnknownObject"
UNKNOWN_METHOD = "org.freedesktop.DBus.Error.UnknownMethod"
INVALID_ARGS = "org.freedesktop.DBus.Error.InvalidArgs"


def invalid():
    return dbus.Array([], signature="i")


class ServiceCase(unittest.TestCase):
    """A private bus, the conformance service on it, and a recording client."""

    extra_paths = 0

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="moat-svc-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.bus = DBusDaemon()
        self.addCleanup(self.bus.stop)
        self.client = BusClient(self.bus.address)
        self.addCleanup(self.client.close)
        self.service = None
        if self.start_service_in_setup:
            self.service = self.start_service(extra_paths=self.extra_paths)

    start_service_in_setup = True

    def start_service(self, **kw):
        s = ServiceProcess(self.bus.address, self.tmp, **kw)
        self.addCleanup(s.stop)
        return s

    def get(self, path, method="GetValue", *args, **kw):
        return self.client.call(path, method, *args, **kw)

    def set(self, path, value, signature="v", **kw):
        return int(self.client.call(path, "SetValue", value, signature=signature, **kw))

    def trigger(self, n):
        """Write N to /Test/Trigger; the signals it caused, in order, and the reply."""
        self.client.settle()
        self.client.events.clear()
        reply = self.client.call_ordered("/Test/Trigger", "SetValue", dbus.Int32(n), signature="v", tag="trigger")
        self.client.settle()
        events = list(self.client.events)
        self.assertEqual(reply, ("reply", "trigger", 2), "a trigger write is refused")
        self.assertEqual(events[-1][:2], ("reply", "trigger"), f"signals come before the reply: {events}")
        return [e for e in events if e[0] == "signal"]

    def gdbus(self, path, method, *args):
        out = subprocess.run(["gdbus", "call", "--address", self.bus.address, "--dest", CONFORMANCE_NAME,
                              "--object-path", path, "--method", f"{BUSITEM}.{method}", *args],
                             capture_output=True, text=True, timeout=10)
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout.strip()

    def dbus_send(self, path, method, *args):
        out = subprocess.run(["dbus-send", f"--bus={self.bus.address}", "--print-reply", f"--dest={CONFORMANCE_NAME}",
                              path, f"{BUSITEM}.{method}", *args], capture_output=True, text=True, timeout=10)
        self.assertEqual(out.returncode, 0, out.stderr)
        return " ".join(out.stdout.split("\n", 1)[1].split())


class ReadTest(ServiceCase):
    def test_values_of_every_type(self):
        cases = {
            "/Dc/0/Voltage": (dbus.Double, 12.5),
            "/Dc/0/Temperature": (dbus.Double, 25.0),
            "/Soc": (dbus.Int32, 55),
            "/Test/Int64": (dbus.Int64, 5000000000),
            "/Test/Bool": (dbus.Boolean, True),
            "/Test/EmptyString": (dbus.String, ""),
            "/Serial": (dbus.String, "HQ1234ABCD"),
            "/Test/SmallDouble": (dbus.Double, 1e-05),
        }
        for path, (cls, value) in cases.items():
            with self.subTest(path=path):
                v = self.get(path)
                self.assertIs(type(v), cls)
                self.assertEqual(v, value)
                self.assertEqual(v.variant_level, 1, "exactly one variant")
        inv = self.get("/Info/BatteryLowVoltage")
        self.assertEqual((type(inv), inv.signature, len(inv)), (dbus.Array, "i", 0), "invalid is an empty ai")
        empty = self.get("/History/Empty")
        self.assertEqual((type(empty), empty.signature, len(empty)), (dbus.Array, "u", 0), "empty list is an empty au")
        lst = self.get("/History/Values")
        self.assertEqual((lst.signature, list(lst)), ("v", [1, 2, 3]))
        self.assertTrue(all(type(x) is dbus.Int32 for x in lst))
        d = self.get("/History/Dict")
        self.assertEqual((d.signature, dict(d)), ("sv", {"a": 1, "b": "x"}))

    def test_independent_clients_see_the_same_types(self):
        self.assertEqual(self.gdbus("/Dc/0/Voltage", "GetValue"), "(<12.5>,)")
        self.assertEqual(self.gdbus("/Test/Int64", "GetValue"), "(<int64 5000000000>,)")
        self.assertEqual(self.gdbus("/Info/BatteryLowVoltage", "GetValue"), "(<@ai []>,)")
        self.assertEqual(self.gdbus("/History/Empty", "GetValue"), "(<@au []>,)")
        self.assertEqual(self.gdbus("/Dc/0/Voltage", "GetText"), "('12.50V',)")
        self.assertEqual(self.dbus_send("/Test/Bool", "GetValue"), "variant boolean true")
        self.assertEqual(self.dbus_send("/ProductId", "GetText"), 'string "0xB001"')

    def test_texts(self):
        expected = {
            "/Dc/0/Voltage": "12.50V", "/Dc/0/Current": "-3.3A", "/Dc/0/Power": "-40.875",
            "/Dc/0/Temperature": "25.0", "/Soc": "55%", "/Mode": "On", "/Info/MaxChargeCurrent": "50.0A",
            "/Info/BatteryLowVoltage": "---", "/Settings/Setpoint": "-200W", "/CustomName": "Battery A",
            "/Alarms/LowVoltage": "Ok", "/History/Values": "[1, 2, 3]", "/History/Empty": "[]",
            "/History/Dict": "{'a': 1, 'b': 'x'}", "/Test/Bool": "True", "/Test/Int64": "5000000000",
            "/Test/SmallDouble": "1e-05", "/Test/BigDouble": "1e+16", "/Test/Third": "0.3333333333333333",
            "/Test/EmptyString": "", "/ProductId": "0xB001", "/DeviceInstance": "7",
        }
        for path, text in expected.items():
            with self.subTest(path=path):
                t = self.get(path, "GetText")
                self.assertIs(type(t), dbus.String)
                self.assertEqual(t, text)

    def test_description(self):
        self.assertEqual(self.get("/Dc/0/Voltage", "GetDescription", "en", 2, signature="si"), "Battery voltage")
        self.assertEqual(self.get("/Soc", "GetDescription", "", 0, signature="si"), "")

    def test_tree_nodes(self):
        v = self.get("/Dc", "GetValue")
        self.assertEqual((v.signature, v.variant_level), ("sv", 1))
        self.assertEqual(dict(v), {"0/Voltage": 12.5, "0/Current": -3.27, "0/Power": -40.875, "0/Temperature": 25.0})
        t = self.get("/Dc/0", "GetText")
        self.assertEqual((t.signature, t.variant_level), ("ss", 1), "GetText on a node is v holding a{ss}")
        self.assertEqual(dict(t), {"Voltage": "12.50V", "Current": "-3.3A", "Power": "-40.875", "Temperature": "25.0"})
        root = self.get("/", "GetValue")
        self.assertEqual(sorted(root.keys()), sorted(p[1:] for p in CATALOGUE_PATHS))
        self.assertEqual(root["Info/BatteryLowVoltage"].signature, "i")
        root_text = self.get("/", "GetText")
        self.assertEqual(root_text["Mgmt/ProcessName"], "velib-conformance")
        self.assertEqual(root_text["Info/BatteryLowVoltage"], "---")
        self.assertEqual(self.gdbus("/Test", "GetText"),
                         "(<{'BigDouble': '1e+16', 'Bool': 'True', 'EmptyString': '', 'Int64': '5000000000', "
                         "'SmallDouble': '1e-05', 'Third': '0.3333333333333333', 'Trigger': '0'}>,)")

    def test_get_items(self):
        items = self.get("/", "GetItems")
        self.assertEqual(items.signature, "sa{sv}")
        self.assertEqual(sorted(items.keys()), sorted(CATALOGUE_PATHS))
        for path, entry in items.items():
            self.assertEqual(sorted(entry.keys()), ["Text", "Value"], path)
        self.assertEqual(items["/Dc/0/Voltage"]["Value"], 12.5)
        self.assertEqual(items["/Dc/0/Voltage"]["Text"], "12.50V")
        self.assertEqual(items["/ProductId"]["Text"], "0xB001")
        self.assertEqual(items["/Info/BatteryLowVoltage"]["Value"].signature, "i")
        self.assertEqual(items["/Info/BatteryLowVoltage"]["Text"], "---")
        out = subprocess.run(["dbus-send", f"--bus={self.bus.address}", "--print-reply", f"--dest={CONFORMANCE_NAME}",
                              "/", f"{BUSITEM}.GetItems"], capture_output=True, text=True, timeout=10)
        flat = " ".join(out.stdout.split())
        self.assertIn('string "/Test/Int64"', flat)
        self.assertIn("variant int64 5000000000", flat)

    def test_unknown_objects_and_methods(self):
        for path in ["/DoesNotExist", "/Dc/1", "/Dc/0/Voltage/Sub", "/dc/0/voltage"]:
            with self.subTest(path=path):
                self.assertEqual(self.client.error_name(path, "GetValue"), UNKNOWN_OBJECT)
                self.assertEqual(self.client.error_name(path, "GetValue", iface=None), UNKNOWN_OBJECT)
        self.assertEqual(self.client.error_name("/Dc", "GetItems"), UNKNOWN_METHOD)
        self.assertEqual(self.client.error_name("/Soc", "GetItems"), UNKNOWN_METHOD)
        self.assertEqual(self.client.error_name("/Soc", "GetMin"), UNKNOWN_METHOD)
        self.assertEqual(self.client.error_name("/", "SetValue", 1, signature="v"), UNKNOWN_METHOD)
        self.assertEqual(self.client.error_name("/Dc", "SetValue", 1, signature="v"), UNKNOWN_METHOD)
        self.assertEqual(self.client.error_name("/Dc", "GetDescription", "en", 0, signature="si"), UNKNOWN_METHOD)
        self.assertEqual(self.client.error_name("/Soc", "Frobnicate", iface=None), UNKNOWN_METHOD)

    def test_calls_without_interface(self):
        self.assertEqual(self.get("/Dc/0/Voltage", iface=None), 12.5)
        self.assertEqual(self.get("/Dc/0/Voltage", "GetText", iface=None), "12.50V")
        self.assertEqual(dict(self.get("/Dc/0", "GetText", iface=None))["Voltage"], "12.50V")
        self.assertEqual(len(self.get("/", "GetItems", iface=None)), len(CATALOGUE_PATHS))
        self.assertEqual(self.get("/Dc/0/Voltage", "GetDescription", "en", 0, signature="si", iface=None),
                         "Battery voltage")
        self.assertEqual(self.set("/Free", dbus.Int32(9), iface=None), 0)
        self.assertEqual(self.get("/Free"), 9)

    def test_introspection_lists_children(self):
        self.assertEqual(self.client.introspect_children("/"),
                         ["Alarms", "Connected", "CustomName", "Dc", "DeviceInstance", "FirmwareVersion", "Free",
                          "HardwareVersion", "History", "Info", "Io", "Mgmt", "Mode", "ProductId", "ProductName",
                          "Serial", "Settings", "Soc", "Test"])
        self.assertEqual(self.client.introspect_children("/Dc/0"), ["Current", "Power", "Temperature", "Voltage"])
        self.assertEqual(self.client.introspect_children("/Dc/0/Voltage"), [])
        import xml.etree.ElementTree as ET
        xml = ET.fromstring(str(self.get("/Soc", "Introspect", iface="org.freedesktop.DBus.Introspectable")))
        iface = [i for i in xml.findall("interface") if i.get("name") == BUSITEM][0]
        self.assertEqual(sorted(m.get("name") for m in iface.findall("method")),
                         ["GetDescription", "GetText", "GetValue", "SetValue"])
        self.assertEqual([s.get("name") for s in iface.findall("signal")], ["PropertiesChanged"])
        xml = ET.fromstring(str(self.get("/", "Introspect", iface="org.freedesktop.DBus.Introspectable")))
        iface = [i for i in xml.findall("interface") if i.get("name") == BUSITEM][0]
        self.assertEqual(sorted(m.get("name") for m in iface.findall("method")), ["GetItems", "GetText", "GetValue"])
        self.assertEqual([s.get("name") for s in iface.findall("signal")], ["ItemsChanged"])


class WriteTest(ServiceCase):
    def test_return_codes_in_velib_order(self):
        # not writeable: 1, even for the value it has, even for invalid
        self.assertEqual(self.set("/Serial", "x"), 1)
        self.assertEqual(self.set("/Serial", "HQ1234ABCD"), 1)
        self.assertEqual(self.set("/Serial", invalid()), 1)
        # coercion failure: 1
        self.assertEqual(self.set("/Mode", "2.5"), 1)
        self.assertEqual(self.set("/Mode", "0x10"), 1)
        self.assertEqual(self.set("/Info/MaxChargeCurrent", "abc"), 1)
        # validator: 2, value unchanged
        self.assertEqual(self.set("/Soc", dbus.Int32(101)), 2)
        self.assertEqual(self.set("/Soc", dbus.Boolean(True)), 2, "range refuses booleans")
        self.assertEqual(self.set("/Soc", invalid()), 2)
        self.assertEqual(self.set("/Mode", dbus.Int32(7)), 2)
        self.assertEqual(self.get("/Soc"), 55)
        # accepted: 0
        self.assertEqual(self.set("/Soc", dbus.Int32(60)), 0)
        self.assertEqual(self.get("/Soc"), 60)
        self.assertEqual(self.get("/Soc", "GetText"), "60%")

    def test_coercion(self):
        self.assertEqual(self.set("/Mode", "2"), 0)
        self.assertIs(type(self.get("/Mode")), dbus.Int32)
        self.assertEqual(self.get("/Mode", "GetText"), "Inverter only")
        self.assertEqual(self.set("/Settings/Setpoint", dbus.Double(-1.7)), 0)
        self.assertEqual(self.get("/Settings/Setpoint"), -1)
        self.assertIs(type(self.get("/Settings/Setpoint")), dbus.Int32)
        self.assertEqual(self.set("/Settings/Setpoint", " 1_000 "), 0)
        self.assertEqual(self.get("/Settings/Setpoint"), 1000)
        self.assertEqual(self.set("/Info/MaxChargeCurrent", dbus.Int32(60)), 0)
        self.assertIs(type(self.get("/Info/MaxChargeCurrent")), dbus.Double)
        self.assertEqual(self.set("/Info/MaxChargeCurrent", "1e2"), 0)
        self.assertEqual(self.get("/Info/MaxChargeCurrent"), 100.0)
        self.assertEqual(self.set("/Info/MaxChargeCurrent", "250"), 2, "coerced, then refused by the range")
        self.assertEqual(self.set("/CustomName", dbus.Int32(5)), 0)
        self.assertEqual(self.get("/CustomName"), "5")
        self.assertEqual(self.set("/CustomName", dbus.Double(2.5)), 0)
        self.assertEqual(self.get("/CustomName"), "2.5")
        self.assertEqual(self.set("/Mode", invalid()), 2, "invalid is not coerced; the enum validator refuses it")

    def test_every_value_type_through_set_value(self):
        cases = [
            (dbus.UInt32(61), dbus.Int32, 61),
            (dbus.Byte(62), dbus.Int32, 62),
            (dbus.Int64(60), dbus.Int32, 60),
            (dbus.Int64(1099511627776), dbus.Int64, 1099511627776),
            (dbus.Double(2.5), dbus.Double, 2.5),
            (dbus.Boolean(False), dbus.Boolean, False),
            (dbus.String("hello"), dbus.String, "hello"),
            (dbus.String(""), dbus.String, ""),
            (dbus.Dictionary({"k": dbus.Int32(1)}, signature="sv"), dbus.Dictionary, {"k": 1}),
            (dbus.Array([dbus.Int32(4), dbus.Int32(5)], signature="i"), dbus.Array, [4, 5]),
        ]
        for written, cls, expect in cases:
            with self.subTest(written=written):
                self.assertEqual(self.set("/Free", written), 0)
                v = self.get("/Free")
                self.assertIs(type(v), cls)
                self.assertEqual(v, expect)
        self.assertEqual(self.set("/Free", dbus.Array([], signature="u")), 0)
        v = self.get("/Free")
        self.assertEqual((v.signature, len(v)), ("i", 0), "an empty array of any type invalidates")
        self.assertEqual(self.get("/Free", "GetText"), "---")

    def test_empty_dict_is_a_dict_not_invalid(self):
        # velib: int({}) raises, so a typed path refuses it with 1 and nothing changes;
        # an untyped path stores the empty dict (only an empty array means invalid).
        empty = dbus.Dictionary({}, signature="sv")
        before = (self.get("/Settings/Setpoint"), self.get("/Settings/Setpoint", "GetText"))
        self.client.settle()
        self.client.events.clear()
        self.assertEqual(self.set("/Settings/Setpoint", empty), 1)
        self.assertEqual(self.set("/Mode", empty), 1)
        self.client.settle()
        self.assertEqual(self.client.signals(), [], "a refused empty dict sends nothing")
        after = (self.get("/Settings/Setpoint"), self.get("/Settings/Setpoint", "GetText"))
        self.assertEqual(after, before)
        self.assertIs(type(after[0]), dbus.Int32, "the value stays valid")
        self.assertEqual(self.set("/Free", empty), 0)
        v = self.get("/Free")
        self.assertEqual((type(v), v.signature, len(v)), (dbus.Dictionary, "sv", 0))
        self.assertEqual(self.get("/Free", "GetText"), "{}")
        self.client.settle()
        (member, path, arg), = [s[1:] for s in self.client.signals()]
        self.assertEqual((member, path, dict(arg)), ("PropertiesChanged", "/Free", {"Value": {}, "Text": "{}"}))

    def test_equal_value_keeps_type_and_sends_nothing(self):
        self.client.settle()
        self.client.events.clear()
        self.assertEqual(self.set("/Soc", dbus.Double(55.0)), 0)
        self.assertIs(type(self.get("/Soc")), dbus.Int32, "an equal write keeps the stored type")
        self.assertEqual(self.set("/Io/AllowToCharge", dbus.Boolean(True)), 0)
        self.assertIs(type(self.get("/Io/AllowToCharge")), dbus.Int32)
        self.assertEqual(self.set("/Info/MaxChargeCurrent", dbus.Int32(50)), 0)
        self.assertIs(type(self.get("/Info/MaxChargeCurrent")), dbus.Double)
        self.assertEqual(self.set("/Soc", dbus.Int32(101)), 2)
        self.assertEqual(self.set("/Serial", "x"), 1)
        self.client.settle()
        self.assertEqual(self.client.signals(), [], "no signal for equal, refused or failed writes")

    def test_remote_change_sends_one_properties_changed_before_the_reply(self):
        self.client.settle()
        self.client.events.clear()
        reply = self.client.call_ordered("/Soc", "SetValue", dbus.Int32(70), signature="v", tag="set")
        self.client.settle()
        self.assertEqual(reply, ("reply", "set", 0))
        events = self.client.events
        self.assertEqual(len(events), 2, events)
        kind, member, path, arg = events[0]
        self.assertEqual((kind, member, path), ("signal", "PropertiesChanged", "/Soc"))
        self.assertEqual(dict(arg), {"Value": 70, "Text": "70%"})
        self.assertEqual(events[1][:2], ("reply", "set"))
        self.assertIn("/Soc written by", self.service.log())
        self.assertIn("55% -> 70%", self.service.log())  # as the item's text shows it

    def test_bad_arguments_are_errors_not_crashes(self):
        self.assertEqual(self.set("/Free", dbus.Int32(12), signature="i"), 0, "a bare int32 is accepted like v(i)")
        self.assertEqual(self.get("/Free"), 12)
        self.assertEqual(self.set("/Serial", dbus.Int32(12), signature="i"), 1)
        self.assertEqual(self.client.error_name("/Free", "SetValue", signature=""), INVALID_ARGS)
        self.assertEqual(self.client.error_name("/Free", "SetValue", 1, 2, signature="vv"), INVALID_ARGS)
        self.assertEqual(self.client.error_name("/Free", "SetValue", 1, 2, signature="ii"), INVALID_ARGS)
        self.assertEqual(self.client.error_name("/Free", "SetValue", (1, 2), signature="(ii)"), INVALID_ARGS)
        self.assertEqual(self.get("/Free"), 12)
        self.assertIsNone(self.service.proc.poll(), "the service is still running")

    def test_independent_writer(self):
        self.assertEqual(self.dbus_send("/Soc", "SetValue", "variant:int32:80"), "int32 0")
        self.assertEqual(self.dbus_send("/Soc", "SetValue", "variant:int32:180"), "int32 2")
        self.assertEqual(self.gdbus("/Soc", "SetValue", "<81>"), "(0,)")
        self.assertEqual(self.get("/Soc"), 81)


class SignalTest(ServiceCase):
    def test_local_set_outside_a_batch(self):
        sigs = self.trigger(1)
        self.assertEqual(len(sigs), 1, sigs)
        _, member, path, arg = sigs[0]
        self.assertEqual((member, path), ("PropertiesChanged", "/Dc/0/Voltage"))
        self.assertEqual(dict(arg), {"Value": 13.25, "Text": "13.25V"})
        self.assertEqual(self.get("/Test/Trigger"), 0, "the trigger keeps its value")

    def test_batch_sends_one_items_changed_with_the_changed_items_only(self):
        sigs = self.trigger(2)
        self.assertEqual([s[1:3] for s in sigs], [("ItemsChanged", "/")])
        changes = sigs[0][3]
        self.assertEqual(changes.signature, "sa{sv}")
        self.assertEqual({p: dict(e) for p, e in changes.items()},
                         {"/Dc/0/Voltage": {"Value": 13.5, "Text": "13.50V"},
                          "/Dc/0/Current": {"Value": -2.5, "Text": "-2.5A"},
                          "/Dc/0/Power": {"Value": -33.75, "Text": "-33.75"}})
        sigs = self.trigger(3)  # Voltage is 13.5 already
        self.assertEqual([s[1:3] for s in sigs], [("ItemsChanged", "/")])
        self.assertEqual({p: dict(e) for p, e in sigs[0][3].items()},
                         {"/Dc/0/Temperature": {"Value": 26.5, "Text": "26.5"}})
        self.assertEqual(self.trigger(9), [], "an empty batch sends nothing")
        self.assertEqual(self.trigger(10), [], "a local set to the same value sends nothing")
        self.assertEqual(self.trigger(3), [], "a batch without changes sends nothing")

    def test_invalidate_locally(self):
        sigs = self.trigger(4)
        self.assertEqual(len(sigs), 1)
        _, member, path, arg = sigs[0]
        self.assertEqual((member, path), ("PropertiesChanged", "/Dc/0/Current"))
        self.assertEqual(arg["Value"].signature, "i")
        self.assertEqual(len(arg["Value"]), 0)
        self.assertEqual(arg["Text"], "---")

    def test_add_and_delete_inside_a_batch(self):
        self.assertNotIn("Dynamic", self.client.introspect_children("/"))
        sigs = self.trigger(5)
        self.assertEqual([s[1:3] for s in sigs], [("ItemsChanged", "/")])
        self.assertEqual({p: dict(e) for p, e in sigs[0][3].items()},
                         {"/Dynamic/A/Value": {"Value": 42, "Text": "42"}, "/Dynamic/B": {"Value": "x", "Text": "x"}})
        self.assertIn("Dynamic", self.client.introspect_children("/"))
        self.assertEqual(self.client.introspect_children("/Dynamic"), ["A", "B"])
        self.assertEqual(self.get("/Dynamic/A/Value"), 42)
        self.assertEqual(len(self.get("/", "GetItems")), len(CATALOGUE_PATHS) + 2)

        sigs = self.trigger(6)
        self.assertEqual([s[1:3] for s in sigs], [("ItemsChanged", "/")])
        entries = sigs[0][3]
        self.assertEqual(sorted(entries.keys()), ["/Dynamic/A/Value", "/Dynamic/B"])
        for e in entries.values():
            self.assertEqual((e["Value"].signature, len(e["Value"]), e["Text"]), ("i", 0, "---"))
        for path in ["/Dynamic/B", "/Dynamic/A/Value", "/Dynamic/A", "/Dynamic"]:
            self.assertEqual(self.client.error_name(path, "GetValue"), UNKNOWN_OBJECT, path)
        self.assertNotIn("Dynamic", self.client.introspect_children("/"), "empty parents disappear")
        self.assertEqual(len(self.get("/", "GetItems")), len(CATALOGUE_PATHS))
        # and again: the same paths can come back
        self.assertEqual(len(self.trigger(5)), 1)
        self.assertEqual(self.get("/Dynamic/B"), "x")

    def test_add_and_delete_outside_a_batch_send_nothing(self):
        self.assertEqual(self.trigger(7), [], "velib sends no signal for an addition outside a batch")
        self.assertEqual(self.get("/Dynamic2/X"), 1.5)
        self.assertIn("Dynamic2", self.client.introspect_children("/"))
        self.assertEqual(self.trigger(8), [], "nor for a deletion")
        self.assertEqual(self.client.error_name("/Dynamic2/X", "GetValue"), UNKNOWN_OBJECT)
        self.assertNotIn("Dynamic2", self.client.introspect_children("/"))

    def test_a_failing_action_is_an_error_reply(self):
        self.trigger(7)
        # adding /Dynamic2/X twice fails inside the validator: an error, the service lives on
        name = self.client.error_name("/Test/Trigger", "SetValue", dbus.Int32(7), signature="v")
        self.assertEqual(name, "org.freedesktop.DBus.Error.Failed")
        self.assertEqual(self.get("/Dynamic2/X"), 1.5)


class LargeServiceTest(ServiceCase):
    extra_paths = 1000

    def test_a_thousand_paths(self):
        items = self.get("/", "GetItems", timeout=20)
        self.assertEqual(len(items), len(CATALOGUE_PATHS) + 1000)
        for k in range(1000):
            self.assertEqual(items[f"/Extra/{k}/Value"]["Value"], k)
        # every path answers on its own too (pipelined asynchronous calls)
        replies = {}
        for k in range(1000):
            path = f"/Extra/{k}/Value"
            self.client.conn.call_async(CONFORMANCE_NAME, path, BUSITEM, "GetValue", "", (),
                                        lambda v, p=path: replies.__setitem__(p, v),
                                        lambda e, p=path: replies.__setitem__(p, e), timeout=20)
        self.client.pump(until=lambda: len(replies) == 1000, timeout=20)
        self.assertEqual(len(replies), 1000)
        self.assertEqual(sorted(int(v) for v in replies.values()), list(range(1000)))
        self.assertEqual(len(self.client.introspect_children("/Extra")), 1000)
        self.assertEqual(self.set("/Extra/999/Value", dbus.Int32(-1)), 0)
        self.assertEqual(self.get("/Extra/999/Value"), -1)


class LifecycleTest(ServiceCase):
    start_service_in_setup = False

    def test_get_items_at_name_owner_changed_has_every_path(self):
        got = {}

        def on_owner(name, old, new):
            if name == CONFORMANCE_NAME and new and "items" not in got:
                got["owner"] = str(new)
                # the instant the name is announced: GetItems
                self.client.conn.call_async(CONFORMANCE_NAME, "/", BUSITEM, "GetItems", "", (),
                                            lambda items: got.__setitem__("items", items),
                                            lambda e: got.__setitem__("items", e), timeout=20)

        self.client.conn.add_signal_receiver(on_owner, signal_name="NameOwnerChanged",
                                             dbus_interface="org.freedesktop.DBus", arg0=CONFORMANCE_NAME)
        self.client.call("/org/freedesktop/DBus", "GetId", iface="org.freedesktop.DBus",
                                                  dest="org.freedesktop.DBus")
        service = self.start_service(extra_paths=1000, wait=False)
        self.client.pump(until=lambda: "items" in got, timeout=20)
        self.assertIn("items", got, service.log())
        items = got["items"]
        self.assertIsInstance(items, dbus.Dictionary, items)
        for path in MANDATORY:
            self.assertIn(path, items)
        self.assertEqual(items["/DeviceInstance"]["Value"], 7)
        self.assertEqual(len(items), len(CATALOGUE_PATHS) + 1000)

    def test_a_taken_name_is_a_clear_error(self):
        first = self.start_service()
        second = self.start_service(wait=False)
        rc = second.wait(10)
        self.assertNotEqual(rc, 0)
        log = second.log()
        self.assertIn(CONFORMANCE_NAME, log)
        self.assertRegex(log, r"already owned by :1\.\d+ \(pid %d\)" % first.pid)
        self.assertIsNone(first.proc.poll())
        self.assertEqual(self.get("/Soc"), 55, "the first one still serves")
        queued = self.client.call("/org/freedesktop/DBus", "ListQueuedOwners", CONFORMANCE_NAME, signature="s",
                                  iface="org.freedesktop.DBus", dest="org.freedesktop.DBus")
        self.assertEqual(len(queued), 1, "the second never queued for the name")

    def test_sigterm_leaves_cleanly_without_invalidating(self):
        service = self.start_service()
        self.assertTrue(self.client.name_has_owner())
        self.client.settle()
        self.client.events.clear()
        service.proc.send_signal(signal.SIGTERM)
        self.assertEqual(service.wait(5), 0, service.log())
        self.assertFalse(self.client.name_has_owner())
        self.client.pump(timeout=0.2)
        self.assertEqual(self.client.signals(), [], "no invalidation or other signal on the way out (§8.4)")
        self.assertIn("left the bus", service.log())

    def test_service_with_its_own_name(self):
        service = self.start_service(name="com.victronenergy.battery.other")
        self.assertEqual(self.client.call("/Soc", "GetValue", dest="com.victronenergy.battery.other"), 55)
        service.stop()


if __name__ == "__main__":
    unittest.main()

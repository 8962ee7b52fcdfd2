"""DBusObject (moat/dbus.hpp) from outside the process: the test plugin
dbus_methods exports /Test on the host's connection; gdbus and python3-dbus
check the introspection (signatures, argument names, the signal), struct
arguments and results, asynchronous methods answering side by side and with
their errors, the signal, and a call still running when the plugin stops:
its caller gets an error at once and the handler unwinds, the host keeps
running.
"""

import re
import signal
import subprocess
import unittest
import xml.etree.ElementTree as ET

from moattest import BusClient, HostTestCase

IFACE = "org.moat.test.Methods"


class DBusObjectFromOutside(HostTestCase):
    def setUp(self):
        super().setUp()
        self.start_bus()
        self.config = self.write_config("[dbus_methods]\n")
        self.host = self.start_host(self.config)
        m, _ = self.host.wait_for(r"on the \S+ bus as (:\d+\.\d+)", 10.0)
        self.dest = m.group(1)
        self.host.wait_for(r"\[dbus_methods\] methods on /Test", 10.0)
        self.client = BusClient(self.bus.address)
        self.addCleanup(self.client.close)

    def gdbus(self, *args):
        out = subprocess.run(["gdbus", args[0], "--address", self.bus.address, "--dest", self.dest, "--object-path",
                              "/Test", *args[1:]], capture_output=True, text=True, timeout=20)
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout

    def call(self, method, *args, signature=None, timeout=5.0):
        return self.client.call("/Test", method, *args, signature=signature, iface=IFACE, dest=self.dest, timeout=timeout)

    def test_introspection(self):
        root = ET.fromstring(self.gdbus("introspect", "--xml"))
        (iface,) = [i for i in root.findall("interface") if i.get("name") == IFACE]
        methods = {m.get("name"): [(a.get("name"), a.get("type"), a.get("direction")) for a in m.findall("arg")]
                   for m in iface.findall("method")}
        self.assertEqual(methods["Wait"], [("seconds", "d", "in"), ("result", "s", "out")])
        self.assertEqual(methods["Swap"], [(None, "a(dd)", "in"), (None, "a(dd)", "out")])
        self.assertEqual(set(methods), {"Wait", "Hang", "Fail", "Swap", "Emit"})
        (ticked,) = iface.findall("signal")
        self.assertEqual([(a.get("name"), a.get("type")) for a in ticked.findall("arg")], [("counts", "a(si)")])

    def test_structs(self):
        self.assertEqual(self.gdbus("call", "--method", IFACE + ".Swap", "[(1.5, 2.0), (3.0, -4.0)]").strip(),
                         "([(2.0, 1.5), (-4.0, 3.0)],)")
        r = self.call("Swap", [(1.0, 2.0)], signature="a(dd)")
        self.assertEqual([tuple(float(x) for x in p) for p in r], [(2.0, 1.0)])
        self.assertEqual(len(self.call("Swap", [], signature="a(dd)")), 0)

    def test_asynchronous_methods(self):
        # Two calls at once: both answered, the short one first.
        replies = []
        for seconds in (0.6, 0.05):
            self.client.conn.call_async(self.dest, "/Test", IFACE, "Wait", "d", (seconds,),
                                        lambda r, s=seconds: replies.append((s, str(r))),
                                        lambda e: replies.append(("error", e.get_dbus_name())), timeout=10)
        self.client.pump(until=lambda: len(replies) == 2, timeout=10)
        self.assertEqual(replies, [(0.05, "done"), (0.6, "done")])
        self.assertEqual(self.gdbus("call", "--method", IFACE + ".Wait", "0.01").strip(), "('done',)")
        self.assertEqual(self.client.error_name("/Test", "Fail", iface=IFACE, dest=self.dest), "org.moat.test.Error.Refused")
        self.assertEqual(self.client.error_name("/Test", "Wait", "x", signature="s", iface=IFACE, dest=self.dest),
                         "org.freedesktop.DBus.Error.InvalidArgs")

    def test_signal(self):
        got = []
        self.client.conn.add_signal_receiver(lambda counts: got.append(counts), dbus_interface=IFACE, signal_name="Ticked")
        self.assertTrue(self.call("Emit", 7, signature="i"))
        self.client.pump(until=lambda: got, timeout=5)
        self.assertEqual([(str(n), int(c)) for n, c in got[0]], [("n", 7)])
        self.assertEqual(got[0].signature, "(si)")

    def test_a_call_running_when_the_plugin_stops(self):
        box = []
        self.client.conn.call_async(self.dest, "/Test", IFACE, "Hang", "", (), lambda r: box.append(("reply", r)),
                                    lambda e: box.append(("error", e.get_dbus_name(), str(e))), timeout=30)
        self.host.wait_for(r"\[dbus_methods\] Hang: waiting", 10.0)
        mark = self.host.mark()
        self.write_config("[dbus_methods]\nenabled = false\n")
        self.host.signal(signal.SIGHUP)
        self.client.pump(until=lambda: box, timeout=10)
        self.assertEqual(box[0][:2], ("error", "org.freedesktop.DBus.Error.Failed"), box)
        self.assertIn("removed", box[0][2])
        self.host.wait_for(r"\[dbus_methods\] Hang: cancelled", 5.0, since=mark)
        self.host.wait_for(r"configuration reloaded: 0 plugin instance\(s\) running", 5.0, since=mark)
        self.assertTrue(self.host.running(), self.host.describe())
        self.host.signal(signal.SIGTERM)
        self.assertEqual(self.host.wait(10)[0], 0, self.host.describe())
        self.assertIsNone(self.host.find(r"ERROR|AddressSanitizer"), self.host.describe())


if __name__ == "__main__":
    unittest.main()

"""The demo's grid meter (issue 8): the sim serves its grid meter as a
simulated Modbus TCP meter (grid.modbus) instead of publishing it, the
meters plugin reads it and publishes com.victronenergy.grid.cg_<serial>,
and the sim's system service takes the grid from that service. Checked
from python3-dbus: the meter's phase powers balance with the simulated
load and the Multi, and the system service follows them."""

import os
import socket
import time
import unittest

import dbus

from moattest import BUILD_DIR, BUSITEM, HostTestCase

PLUGINS = os.path.join(BUILD_DIR, "plugins")
VEBUS = "com.victronenergy.vebus.sim"
SYSTEM = "com.victronenergy.system"
METER = "com.victronenergy.grid.cg_12345678"
LOAD = [400.0, 300.0, 350.0]

# A night (no PV), 3 phases, little seeded noise; the grid meter on Modbus.
CONFIG = """
[sim]
phases = 3
start_hour = 0.0
seed = 7
update_interval = 0.25
load = {{ base = [400.0, 300.0, 350.0], noise = 5.0, noise_time = 2.0 }}
vebus = {{ tau = 0.3 }}
grid = {{ modbus = {{ port = {port}, type = "sdm630v2", unit = 1 }} }}

[grid-meter]
kind = "meters"
bus = "tcp"
host = "127.0.0.1"
port = {port}
devices = [ {{ unit = 1, type = "sdm630v2" }} ]
poll_interval = 0.25
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class GridMeterTest(HostTestCase):

    def setUp(self):
        super().setUp()
        self.start_bus()
        self.host = self.start_host(self.write_config(CONFIG.format(port=free_port()), plugin_dir=PLUGINS))
        self.conn = dbus.bus.BusConnection(self.bus.address)
        self.addCleanup(self.conn.close)
        self.host.wait_for(r"\[sim\] grid meter: simulated sdm630v2", 10)

    def get(self, service, path):
        return self.conn.call_blocking(service, path, BUSITEM, "GetValue", "", (), timeout=5)

    def has_owner(self, name):
        return bool(self.conn.name_has_owner(name))

    def until(self, what, fn, timeout=5.0):
        return self.wait_until(what, fn, timeout, self.host)

    def meter(self):
        return [float(self.get(METER, f"/Ac/L{k}/Power")) for k in (1, 2, 3)]

    def multi(self):
        return [float(self.get(VEBUS, f"/Ac/ActiveIn/L{k}/P")) for k in (1, 2, 3)]

    def system(self):
        return [self.get(SYSTEM, f"/Ac/Grid/L{k}/Power") for k in (1, 2, 3)]

    def balanced(self, feed):
        """The meter shows load + Multi AC-in on every phase (within the noise)."""
        g, m = self.meter(), self.multi()
        ok = all(abs(g[k] - (LOAD[k] + m[k])) < 40 for k in range(3)) and abs(m[0] - feed) < 15
        return (g, m) if ok else None

    def follows(self):
        """The system service's grid is the meter's (within one update's noise)."""
        s = self.system()
        if not all(isinstance(v, dbus.Double) for v in s):
            return None
        g = self.meter()
        return s if all(abs(float(s[k]) - g[k]) < 30 for k in range(3)) else None

    def test_the_grid_meter_is_a_modbus_meter_read_by_the_meters_plugin(self):
        self.until("the meters plugin publishes the simulated meter", lambda: self.has_owner(METER), 10)
        self.assertFalse(self.has_owner("com.victronenergy.grid.sim"), "the sim does not publish a grid itself")
        self.assertIsInstance(self.get(METER, "/DeviceInstance"), dbus.Int32,
                              "the instance comes from the sim's settings service (ClassAndVrmInstance)")
        self.assertEqual(str(self.get(METER, "/Role")), "grid")
        self.until("the meter shows the simulated load", lambda: self.balanced(0.0), 5)
        self.until("the system service's grid is the meter's", self.follows, 5)

        # The Multi feeds 300 W on L1: the meter sees it, and the system follows.
        self.conn.call_blocking(VEBUS, "/Hub4/L1/AcPowerSetpoint", BUSITEM, "SetValue", "v",
                                (dbus.Double(-300.0),), timeout=5)
        self.until("the meter sees the Multi's feed", lambda: self.balanced(-300.0), 5)
        self.assertLess(self.meter()[0], 150, "L1: 400 W load - 300 W feed")
        self.until("the system service follows the meter", self.follows, 5)
        self.assertLess(float(self.get(SYSTEM, "/Ac/Grid/L1/Power")), 150)


if __name__ == "__main__":
    unittest.main(verbosity=2)

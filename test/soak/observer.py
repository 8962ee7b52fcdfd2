"""The soak's independent observer: a python3-dbus connection that becomes a
monitor of the private bus (org.freedesktop.DBus.Monitoring.BecomeMonitor)
and writes one JSON line per event it sees, stamped with CLOCK_MONOTONIC
(the same clock as the runner's, so both time lines can be joined):

  {"t": ..., "k": "set", "dst": ..., "path": ..., "v": ..., "snd": ...}   every SetValue call
  {"t": ..., "k": "val", "svc": ..., "path": ..., "v": ...}               every published value we follow
  {"t": ..., "k": "own", "name": ..., "owner": ...}                       every change of a name's owner
  {"t": ..., "k": "inv", "member": ..., "args": ...}                       calls to the inverter's control interface

Run: python3 observer.py ADDRESS OUT.jsonl (prints "ready" once monitoring).
It is a separate process so that nothing the runner does (a blocking call,
a stopped dbus-daemon) can hide an event from it."""

import json
import signal
import sys
import time

import dbus
import dbus.lowlevel
import dbus.mainloop.glib
from gi.repository import GLib

BUSITEM = "com.victronenergy.BusItem"

# Published paths the invariants and the plot need, by service name prefix.
FOLLOW = {
    "com.victronenergy.grid.": {"/Ac/Power", "/Ac/L1/Power", "/Ac/L2/Power", "/Ac/L3/Power"},
    "com.victronenergy.battery.": {"/Dc/0/Current", "/Io/AllowToDischarge", "/Io/AllowToCharge", "/Soc"},
    "com.victronenergy.vebus.": {"/Ac/ActiveIn/P", "/Hub4/L1/AcPowerSetpoint", "/Hub4/L2/AcPowerSetpoint",
                                 "/Hub4/L3/AcPowerSetpoint", "/Mode"},
    "com.victronenergy.settings": {"/Settings/CGwacs/Hub4Mode", "/Settings/CGwacs/OvervoltageFeedIn"},
    "com.victronenergy.system": {"/Ac/Grid/L1/Power", "/Ac/Grid/L2/Power", "/Ac/Grid/L3/Power"},
    "com.victronenergy.moat.statusline": {"/StatusLine"},
    "com.victronenergy.moatinv.": {"/Mode", "/Status"},
}


def plain(v):
    """A D-Bus value as JSON: numbers, strings, None for Venus's invalid (empty array)."""
    if isinstance(v, (dbus.Array, list)):
        return None if len(v) == 0 else [plain(x) for x in v]
    if isinstance(v, (dbus.Dictionary, dict)):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, dbus.Boolean):
        return bool(v)
    if isinstance(v, (dbus.Double, float)):
        return float(v)
    if isinstance(v, (dbus.Byte, dbus.Int16, dbus.UInt16, dbus.Int32, dbus.UInt32, dbus.Int64, dbus.UInt64, int)):
        return int(v)
    return str(v)


class Observer:
    def __init__(self, address, out_path):
        self.out = open(out_path, "w", buffering=1 << 16)
        self.owners = {}  # unique name -> set of well-known names
        # A normal connection first: who owns what right now.
        probe = dbus.bus.BusConnection(address)
        for name in probe.list_names():
            name = str(name)
            if not name.startswith(":") and name != "org.freedesktop.DBus":
                owner = str(probe.get_name_owner(name))
                self.owners.setdefault(owner, set()).add(name)
                self.write({"k": "own", "name": name, "owner": owner})
        probe.close()
        self.conn = dbus.bus.BusConnection(address, mainloop=dbus.mainloop.glib.DBusGMainLoop())
        self.conn.add_message_filter(self.on_message)
        rules = [
            f"type='method_call',interface='{BUSITEM}',member='SetValue'",
            f"type='signal',interface='{BUSITEM}'",
            "type='method_call',interface='org.m_o_a_t.inv'",
            "type='signal',sender='org.freedesktop.DBus',member='NameOwnerChanged'",
        ]
        self.conn.call_blocking("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus.Monitoring",
                                "BecomeMonitor", "asu", (rules, dbus.UInt32(0)))

    def write(self, rec):
        rec["t"] = round(time.monotonic(), 4)
        self.out.write(json.dumps(rec, separators=(",", ":")) + "\n")

    def names_of(self, sender):
        if sender is None:
            return ()
        if not sender.startswith(":"):
            return (sender,)
        return self.owners.get(sender, ())

    def on_message(self, conn, msg):
        try:
            self.handle(msg)
        except Exception as e:  # a message we cannot decode must not end the observer
            self.write({"k": "error", "what": repr(e)})
        # Handled, always: an unhandled method call would make libdbus send an
        # error reply, and a monitor that sends anything is disconnected.
        return dbus.lowlevel.HANDLER_RESULT_HANDLED

    def handle(self, msg):
        member = msg.get_member()
        iface = msg.get_interface()
        if member == "NameOwnerChanged" and iface == "org.freedesktop.DBus":
            name, old, new = (str(a) for a in msg.get_args_list())
            if name.startswith(":"):
                if not new:
                    self.owners.pop(name, None)
                return
            if old:
                self.owners.get(old, set()).discard(name)
            if new:
                self.owners.setdefault(new, set()).add(name)
            self.write({"k": "own", "name": name, "owner": new})
            return
        if iface == "org.m_o_a_t.inv":
            self.write({"k": "inv", "member": member, "args": [plain(a) for a in msg.get_args_list()],
                        "snd": msg.get_sender()})
            return
        if iface != BUSITEM:
            return
        if member == "SetValue":
            args = msg.get_args_list()
            dst = msg.get_destination()
            names = self.names_of(dst) or (dst,)
            self.write({"k": "set", "dst": sorted(names)[0], "path": msg.get_path(),
                        "v": plain(args[0]) if args else None, "snd": msg.get_sender()})
            return
        for svc in self.names_of(msg.get_sender()):
            wanted = next((paths for prefix, paths in FOLLOW.items() if svc.startswith(prefix)), None)
            if wanted is None:
                continue
            if member == "ItemsChanged":
                for path, props in msg.get_args_list()[0].items():
                    if str(path) in wanted and "Value" in props:
                        self.write({"k": "val", "svc": svc, "path": str(path), "v": plain(props["Value"])})
            elif member == "PropertiesChanged":
                path = msg.get_path()
                props = msg.get_args_list()[0]
                if path in wanted and "Value" in props:
                    self.write({"k": "val", "svc": svc, "path": path, "v": plain(props["Value"])})


def main():
    address, out_path = sys.argv[1], sys.argv[2]
    obs = Observer(address, out_path)
    loop = GLib.MainLoop()
    obs.conn.call_on_disconnection(lambda *_: loop.quit())

    def stop():
        loop.quit()
        return False
    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGTERM, stop)
    GLib.timeout_add(500, lambda: (obs.out.flush(), True)[1])
    print("ready", flush=True)
    loop.run()
    obs.out.flush()
    obs.out.close()


if __name__ == "__main__":
    main()

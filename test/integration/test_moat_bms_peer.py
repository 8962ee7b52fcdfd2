"""An independent peer for the MoaT BMS link: python3-msgpack (Debian).

(a) Python plays the controller on a pty against our link (the probe of
    build/test/moat-bms-tool): float32 and float64 replies, every map in
    reversed key order, console noise between messages; the requests we
    receive are checked byte for byte where the wire form is fixed.
(b) Python plays the host against our simulator: the example requests
    (info long poll, ser.send, relay force/read/release) sent byte for byte,
    the replies decoded by msgpack.
"""

import json
import os
import select
import shutil
import struct
import subprocess
import tempfile
import threading
import time
import tty
import unittest

import msgpack

from moattest import BUILD_DIR, _readline_with_timeout, spawn, stop_process

TOOL = os.path.join(BUILD_DIR, "test", "moat-bms-tool")


def unhex(s):
    return bytes.fromhex(s.replace(" ", ""))


class GuardedReader:
    """Splits a guarded stream: 0xC1 + one msgpack object; other bytes are console."""

    def __init__(self, fd):
        self.fd = fd
        self.buf = b""
        self.console = b""
        self.raw = []  # the wire bytes of every message, guard included

    def next(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        while True:
            i = self.buf.find(b"\xc1")
            if i >= 0:
                self.console += self.buf[:i]
                self.buf = self.buf[i:]
                up = msgpack.Unpacker(raw=False, strict_map_key=False)
                up.feed(self.buf[1:])
                try:
                    obj = up.unpack()
                    used = 1 + up.tell()
                    self.raw.append(self.buf[:used])
                    self.buf = self.buf[used:]
                    return obj
                except msgpack.OutOfData:
                    pass
            else:
                self.console += self.buf
                self.buf = b""
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:
                    return None
                if not chunk:
                    return None
                self.buf += chunk


def reversed_map(d):
    """The RP2040 packer's order: the last inserted key first (recursively)."""
    if isinstance(d, dict):
        return {k: reversed_map(v) for k, v in reversed(list(d.items()))}
    if isinstance(d, list):
        return [reversed_map(v) for v in d]
    return d


def device_config():
    return {"apps": {"ser": "moat.app.serial.SerialCmd", "batt": "moat.app.bms.BMSCmd"},
            "ser": {"baud": 2400},
            "batt": {"batt": {"n": 2}, "poll": {"n": 5, "t": 250, "k": 15000},
                     "cell": {"u": {"samples": 5, "offset": 0.0}, "load": {"b": 3950}, "batt": {"b": 3950}}}}


class PythonRing:
    """Two diyBMS modules, computed here with struct (not with our code)."""

    RAWS = [3733, 3790 | 0x8000]
    TEMPS = [(850, 512), (700, 200)]

    def reply(self, req):
        start, flags, hops, cs = req[0], req[1], req[2], req[3]
        cmd, cells = flags & 0x0F, cs >> 3
        out = b""
        seen = 0
        for a in range(len(self.RAWS)):
            if start <= a <= start + cells:
                seen = 0x10
                if cmd == 1:
                    out += struct.pack("<HH", self.RAWS[a], 0)
                elif cmd == 3:
                    i, e = self.TEMPS[a]
                    out += bytes([i & 0xFF, (i >> 8) | ((e & 0x0F) << 4), e >> 4])
                elif cmd == 5:
                    cal = struct.unpack("<I", struct.pack("<f", 2.21))[0]
                    out += struct.pack("<IHBBIHHHHBB", 0x12345678, 440, 1, 128, cal, 850, 4775, 3950, 3950, 5, 52)
        return bytes([start, flags | seen, len(self.RAWS), cs]) + req[4:] + out


class PythonDevice(threading.Thread):
    def __init__(self, master, single_float):
        super().__init__(daemon=True)
        self.master = master
        self.reader = GuardedReader(master)
        self.packer = msgpack.Packer(use_single_float=single_float, use_bin_type=True)
        self.ring = PythonRing()
        self.requests = []
        self.stop = False

    def send(self, obj, noise=True):
        data = (b"RELAY 1 Check OK\r\nUL 41.2\r\n" if noise else b"") + b"\xc1" + self.packer.pack(reversed_map(obj))
        os.write(self.master, data)

    def run(self):
        self.send({"a": "link", "d": True})
        while not self.stop:
            m = self.reader.next(timeout=0.5)
            if m is None:
                continue
            self.requests.append(m)
            path = m.get("a")
            path = ".".join(path) if isinstance(path, list) else path
            d = m.get("d")
            result = None
            if path == "sys.cfg":
                result = device_config()
            elif path == "sys.test":
                result = b"a\rb\nc"
            elif path == "sys.is_up":
                self.send({"a": "link", "d": True})
                continue
            elif path == "ser.send":
                self.send({"a": ["ser", "in_pkt"], "d": self.ring.reply(d["data"])})
            if "i" in m:
                self.send({"i": m["i"], "d": result})


class DeviceAgainstOurLink(unittest.TestCase):
    def probe_against_python(self, single_float):
        master, slave = os.openpty()
        tty.setraw(slave)
        dev = PythonDevice(master, single_float)
        dev.start()
        try:
            out = subprocess.run([TOOL, "probe", "--device", os.ttyname(slave), "--json", "--timeout", "20"],
                                 capture_output=True, text=True, timeout=60)
        finally:
            dev.stop = True
            dev.join(2)
            os.close(slave)
            os.close(master)
        self.assertEqual(out.returncode, 0, out.stderr)
        return json.loads(out.stdout), dev

    def check(self, single_float):
        report, dev = self.probe_against_python(single_float)
        self.assertEqual(report["hops"], 2)
        self.assertEqual(report["config"]["batt"]["poll"]["k"], 15000)
        c0, c1 = report["cells"]
        # raw x 2 mV / 5 samples x calibration (the float32 2.21 the module reports)
        cal = struct.unpack("<f", struct.pack("<f", 2.21))[0]
        self.assertAlmostEqual(c0["voltage"], 3733 * 0.002 / 5 * cal, places=4)
        self.assertAlmostEqual(c1["voltage"], 3790 * 0.002 / 5 * cal, places=4)
        self.assertTrue(c1["balancing"])
        self.assertAlmostEqual(c0["load_temperature"], 65.72, delta=0.01)
        self.assertAlmostEqual(c0["cell_temperature"], 25.04, delta=0.01)
        self.assertAlmostEqual(c1["cell_temperature"], -3.765, delta=0.01)
        self.assertEqual(c0["settings"]["num_samples"], 5)
        paths = [".".join(r["a"]) if isinstance(r["a"], list) else r["a"] for r in dev.requests]
        self.assertEqual(paths[:3], ["sys.cfg", "sys.test", "sys.is_up"])
        self.assertEqual(dev.requests[0]["d"], {"mode": 0})
        # Our requests on the wire: {a, d, i} in that order, d a map.
        first_send = next(raw for raw in dev.reader.raw if b"send" in raw)
        self.assertTrue(first_send.startswith(unhex("C1 83 A1 61 92 A3 73 65 72 A4 73 65 6E 64 A1 64 81 A4 64 61 74 61 C4 04 00 01 00 00 A1 69")),
                        first_send.hex())
        sends = [r["d"]["data"] for r in dev.requests if r.get("a") == ["ser", "send"]]
        # ring size (cell 0), then settings, voltages, temperatures of both cells; sequences 0..3
        self.assertEqual([s.hex() for s in sends], ["00010000", "00050009", "0001000a", "0003000b"])

    def test_float32_replies(self):
        self.check(True)

    def test_float64_replies(self):
        self.check(False)


class HostAgainstOurSimulator(unittest.TestCase):
    def setUp(self):
        tmpdir = tempfile.mkdtemp(prefix="moat-bms-peer-")
        self.addCleanup(shutil.rmtree, tmpdir, True)
        self.tmp = os.path.join(tmpdir, "ttyBMS")
        self.sim = spawn([TOOL, "sim", "--link", self.tmp, "--noise", "2"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
        self.addCleanup(self.sim.stdout.close)
        self.addCleanup(self.sim.stdin.close)
        self.addCleanup(stop_process, self.sim)
        lines = [_readline_with_timeout(self.sim.stdout, 5.0) for _ in range(2)]
        self.assertIn("ready\n", lines)
        self.fd = os.open(self.tmp, os.O_RDWR | os.O_NOCTTY)
        self.addCleanup(os.close, self.fd)
        tty.setraw(self.fd)
        self.reader = GuardedReader(self.fd)

    def call(self, wire, want_id):
        os.write(self.fd, unhex(wire))
        while True:
            m = self.reader.next(5.0)
            self.assertIsNotNone(m, "no reply")
            if m.get("i") == want_id and "a" not in m:
                return m, self.reader.raw[-1]

    def test_example_requests(self):
        # info long poll with gen 5 (not the current one: answered at once), i = 12
        m, raw = self.call("C1 83 A1 61 92 A4 62 61 74 74 A4 69 6E 66 6F A1 64 81 A3 67 65 6E 05 A1 69 0C", 12)
        d = m["d"]
        self.assertEqual(set(d), {"u", "i", "w", "r", "gen"})
        self.assertAlmostEqual(d["u"], 16 * 3.30, places=3)
        self.assertIn(b"\xa1\x75\xca", raw)  # u is a float32, as the RP2040 sends it
        self.assertEqual(set(d["r"]), {"s", "f", "l"})
        # ser.send of the 16-cell voltage read, sequence 3, i = 13: a nil reply, then in_pkt
        m, _ = self.call("C1 83 A1 61 92 A3 73 65 72 A4 73 65 6E 64 A1 64 81 A4 64 61 74 61 C4 04 00 01 00 7B A1 69 0D", 13)
        self.assertIsNone(m["d"])
        while True:
            n = self.reader.next(5.0)
            self.assertIsNotNone(n, "no in_pkt")
            if n.get("a") == ["ser", "in_pkt"]:
                break
        pkt = n["d"]
        self.assertEqual(pkt[:4], unhex("00 11 10 7B"))  # seen, 16 hops, 16 cells, sequence 3
        self.assertEqual(len(pkt), 4 + 16 * 4)
        raw0 = struct.unpack("<H", pkt[4:6])[0]
        self.assertEqual(raw0 & 0x1FFF, 5 * 746)
        # relay: force off (i 14), read ({} -> [pin, forced]), release (nil), read again
        m, _ = self.call("C1 83 A1 61 92 A4 62 61 74 74 A3 72 6C 79 A1 64 81 A2 73 74 C2 A1 69 0E", 14)
        self.assertIsNone(m["d"])
        m, _ = self.call("C1 83 A1 61 92 A4 62 61 74 74 A3 72 6C 79 A1 64 80 A1 69 0F", 15)
        self.assertEqual(m["d"], [0, False])
        m, _ = self.call("C1 83 A1 61 92 A4 62 61 74 74 A3 72 6C 79 A1 64 81 A2 73 74 C0 A1 69 10", 16)
        self.assertIsNone(m["d"])
        m, _ = self.call("C1 83 A1 61 92 A4 62 61 74 74 A3 72 6C 79 A1 64 80 A1 69 11", 17)
        self.assertEqual(m["d"], [0, None])
        self.assertIn(b"RELAY 1 Check OK", self.reader.console)


if __name__ == "__main__":
    unittest.main()

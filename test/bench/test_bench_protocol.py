"""Smoke test of the benchmark programs: each runs briefly on a private bus
and must honour bench-contract.md's protocol (exported catalogue, GetItems,
GetValue on /, name after items, batched ticks in rate and burst mode,
SIGUSR1 never fatal, SIGTERM exit, consumer READY line). No timing asserts."""

import os
import shutil
import signal
import tempfile
import time
import unittest

import dbus

import benchlib
from benchlib import BENCH_BIN, Client, Daemon, Program, make_catalogue, program_env, read_tsv

NAME = "com.victronenergy.battery.bench0"
DBUS_TYPE = {"i": dbus.Int32, "x": dbus.Int64, "d": dbus.Double, "s": dbus.String}


def check_value(test, path, typ, text_value, v):
    if typ == "n":
        test.assertIsInstance(v, dbus.Array, path)
        test.assertEqual((v.signature, len(v)), ("i", 0), f"{path}: invalid is an empty ai")
        return
    test.assertIsInstance(v, DBUS_TYPE[typ], f"{path}: D-Bus type {typ}")
    expected = {"i": int, "x": int, "d": float, "s": str}[typ](text_value)
    test.assertEqual(v, expected, path)


class Protocol:
    """The tests; subclasses name the commands."""

    service_cmd = None
    consumer_cmd = None

    def setUp(self):
        for cmd in (self.service_cmd, self.consumer_cmd):
            exe = cmd.split()[0]
            if not os.access(exe, os.X_OK):
                self.fail(f"{exe} is not built")
        self.tmp = tempfile.mkdtemp(prefix="moat-bench-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.bus = Daemon()
        self.addCleanup(self.bus.stop)
        self.client = Client(self.bus.address)
        self.addCleanup(self.client.close)
        self.json, self.tsv = make_catalogue(63, self.tmp)
        self.items, self.dynamic = read_tsv(self.tsv)

    def start_service(self, name=NAME, tsv=None, k=10, interval=0, ticks=3):
        env = program_env(self.bus.address, BENCH_WORKLOAD="W2", BENCH_SERVICE=name,
                          BENCH_CATALOGUE=self.json, BENCH_CATALOGUE_TSV=tsv or self.tsv,
                          BENCH_PATHS=len(self.items), BENCH_UPDATE_PATHS=k, BENCH_UPDATE_INTERVAL_MS=interval,
                          BENCH_UPDATE_TICKS=ticks)
        p = Program(self.service_cmd, env, os.path.join(self.tmp, f"{name}.log"))
        self.addCleanup(p.stop)
        ok = self.client.pump(lambda: name in self.client.owned or p.proc.poll() is not None, 10)
        self.assertTrue(ok and p.proc.poll() is None, f"{name} did not appear\n{p.log()}")
        return p

    def stop_cleanly(self, p):
        rc, took = p.stop()
        self.assertEqual(rc, 0, p.log())
        self.assertLess(took, 5.0)

    def items_changed(self):
        return [s for s in self.client.signals if s[0] == "ItemsChanged"]

    def test_service_exports_the_catalogue_and_ticks_in_bursts(self):
        p = self.start_service()
        got = self.client.call(NAME, "/", "GetItems")
        self.assertEqual(got.signature, "sa{sv}")
        self.assertEqual(sorted(str(k) for k in got), sorted(i[0] for i in self.items), "exactly the catalogue")
        for path, typ, value, _ in self.items:
            self.assertEqual(sorted(got[path].keys()), ["Text", "Value"], path)
            check_value(self, path, typ, value, got[path]["Value"])
            if typ == "n":
                self.assertEqual(got[path]["Text"], "---")
        root = self.client.call(NAME, "/", "GetValue")
        self.assertEqual(sorted(str(k) for k in root), sorted(i[0][1:] for i in self.items))
        for path, typ, value, _ in self.items:
            check_value(self, path, typ, value, root[path[1:]])
        self.assertEqual(self.client.call(NAME, "/Dc/0/Voltage", "GetText"), "52.84V")
        self.assertEqual(self.client.call(NAME, "/ProductId", "GetText"), "0xB004")
        self.client.call(NAME, "/", "Ping", iface="org.freedesktop.DBus.Peer")
        self.assertEqual(self.items_changed(), [], "idle until SIGUSR1")

        base = {path: float(v) for path, _, v, _ in self.items if path in self.dynamic}
        for burst in (1, 2):
            p.signal(signal.SIGUSR1)
            self.assertTrue(self.client.pump(lambda: len(self.items_changed()) >= 3 * burst, 10), p.log())
        self.client.pump(lambda: False, 0.2)  # nothing more may come
        signals = self.items_changed()
        self.assertEqual(len(signals), 6)
        self.assertEqual([s for s in self.client.signals if s[0] == "PropertiesChanged"], [])
        for t, (_, path, arg, _) in enumerate(signals, start=1):
            self.assertEqual(path, "/")
            self.assertEqual(sorted(str(k) for k in arg), sorted(self.dynamic[:10]), f"tick {t}: the first K")
            for q, entry in arg.items():
                self.assertIsInstance(entry["Value"], dbus.Double)
                self.assertAlmostEqual(float(entry["Value"]), base[str(q)] + 0.001 * t, places=9)
                self.assertIsInstance(entry["Text"], dbus.String)
        self.assertAlmostEqual(float(self.client.call(NAME, "/Dc/0/Voltage", "GetValue")), 52.84 + 0.006, places=9)
        self.stop_cleanly(p)

    def test_rate_mode_and_sigusr1_is_harmless(self):
        p = self.start_service(k=3, interval=20, ticks=0)
        self.assertTrue(self.client.pump(lambda: len(self.items_changed()) >= 3, 10), p.log())
        p.signal(signal.SIGUSR1)
        n = len(self.items_changed())
        self.assertTrue(self.client.pump(lambda: len(self.items_changed()) >= n + 2, 10), p.log())
        for _, _, arg, _ in self.items_changed():
            self.assertEqual(len(arg), 3)
        self.stop_cleanly(p)

    def test_idle_service_survives_sigusr1_and_sends_nothing(self):
        p = self.start_service(k=0, interval=0, ticks=0)
        p.signal(signal.SIGUSR1)
        self.client.pump(lambda: False, 0.3)
        self.assertIsNone(p.proc.poll(), p.log())
        self.assertEqual(self.client.signals, [])
        self.stop_cleanly(p)

    def test_name_taken_fails(self):
        first = self.start_service(k=0)
        env = program_env(self.bus.address, BENCH_SERVICE=NAME, BENCH_CATALOGUE=self.json,
                          BENCH_CATALOGUE_TSV=self.tsv, BENCH_PATHS=len(self.items), BENCH_UPDATE_PATHS=0,
                          BENCH_UPDATE_INTERVAL_MS=0, BENCH_UPDATE_TICKS=0)
        second = Program(self.service_cmd, env, os.path.join(self.tmp, "second.log"))
        self.addCleanup(second.stop)
        rc = second.proc.wait(10)
        self.assertNotEqual(rc, 0, "a taken name is not queued for")
        self.stop_cleanly(first)

    def test_consumer_discovers_present_and_late_services(self):
        prefix = "com.victronenergy.battery.bench"
        tsvs = [make_catalogue(63, self.tmp, instance=100 + n)[1] for n in range(3)]
        for n in range(2):
            self.start_service(name=f"{prefix}{n}", tsv=tsvs[n], k=0)
        env = program_env(self.bus.address, BENCH_WORKLOAD="W4", BENCH_SERVICE_PREFIX=prefix,
                          BENCH_EXPECT_SERVICES=3, BENCH_PATHS=63, BENCH_CATALOGUE=self.json,
                          BENCH_CATALOGUE_TSV=self.tsv)
        c = Program(self.consumer_cmd, env, os.path.join(self.tmp, "consumer.log"), stdout_pipe=True)
        self.addCleanup(c.stop)
        time.sleep(0.3)  # let it see the first two
        self.start_service(name=f"{prefix}2", tsv=tsvs[2], k=0)
        line = benchlib_readline(c.proc.stdout, 10)
        self.assertEqual(line, "READY 3 189\n", c.log())
        self.assertIsNone(c.proc.poll())
        self.stop_cleanly(c)


def benchlib_readline(stream, timeout):
    import select
    r, _, _ = select.select([stream], [], [], timeout)
    return stream.readline().decode() if r else None


class OursTest(Protocol, unittest.TestCase):
    service_cmd = os.path.join(BENCH_BIN, "bench-service")
    consumer_cmd = os.path.join(BENCH_BIN, "bench-consumer")


class FloorTest(Protocol, unittest.TestCase):
    service_cmd = os.path.join(BENCH_BIN, "bench-floor") + " service"
    consumer_cmd = os.path.join(BENCH_BIN, "bench-floor") + " consumer"


if __name__ == "__main__":
    unittest.main(verbosity=2)

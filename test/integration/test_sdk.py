"""The SDK as a third-party author meets it: `cmake --install` into a fresh
prefix, the example plugin of test/sdk-example built out of the source tree
against that prefix alone (find_package + moat_add_plugin), then the
installed host running it beside its built-in plugins on a private bus,
checked with gdbus; its client command; a moved prefix; pkg-config."""

import os
import shutil
import signal
import subprocess
import tempfile
import unittest

from moattest import BUILD_DIR, SOURCE_DIR, DBusDaemon, spawn, stop_process, toml_string

EXAMPLE = os.path.join(SOURCE_DIR, "test", "sdk-example")
SERVICE = "com.victronenergy.temperature.room"


def run(argv, timeout=600, env=None, check=True):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout, env=env, text=True)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {p.returncode}:\n{p.stdout}")
    return p


def gdbus(address, *args):
    return run(["gdbus", "call", "--address", address, "--timeout", "5", "--dest", SERVICE] + list(args),
               timeout=30).stdout.strip()


class InstalledSdk(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="moat-sdk-")
        cls.prefix = os.path.join(cls.tmp, "prefix")
        run(["cmake", "--install", BUILD_DIR, "--prefix", cls.prefix])
        # The example's sources are copied out: its build sees nothing of our tree.
        src = os.path.join(cls.tmp, "example-src")
        shutil.copytree(EXAMPLE, src)
        cls.example = os.path.join(cls.tmp, "example-build")
        env = dict(os.environ)
        env.pop("CMAKE_PREFIX_PATH", None)
        run(["cmake", "-S", src, "-B", cls.example, f"-DCMAKE_PREFIX_PATH={cls.prefix}",
             "-DCMAKE_BUILD_TYPE=RelWithDebInfo"], env=env)
        run(["cmake", "--build", cls.example], env=env)
        cls.host = os.path.join(cls.prefix, "bin", "moat-victron")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, True)

    def test_installed_tree(self):
        files = set()
        for root, _, names in os.walk(self.prefix):
            for n in names:
                files.add(os.path.relpath(os.path.join(root, n), self.prefix))
        for f in ["bin/moat-victron", "include/moat/plugin.hpp", "include/moat/sdk_version.hpp",
                  "lib/cmake/moat-victron/moat-victron-config.cmake",
                  "lib/cmake/moat-victron/moat-victron-config-version.cmake",
                  "lib/cmake/moat-victron/MoatPlugin.cmake", "lib/pkgconfig/moat-victron.pc",
                  "lib/moat-victron/plugins/inverter.so", "lib/moat-victron/plugins/statusline.so",
                  "share/moat-victron/demo.toml", "share/moat-victron/gx.toml", "share/moat-victron/docs/plugin-sdk.md"]:
            self.assertIn(f, files)
        self.assertTrue(any(f.startswith("lib/libmoat.so.") for f in files), sorted(files))
        # No test plugin and no source path leak into the prefix.
        self.assertFalse(any("test-plugins" in f for f in files))
        self.assertIn(os.path.join(self.example, "room_temp.so"),
                      [os.path.join(self.example, n) for n in os.listdir(self.example)])

    def test_example_runs_beside_the_builtin_plugins(self):
        bus = DBusDaemon()
        self.addCleanup(bus.stop)
        config = os.path.join(self.tmp, "example.toml")
        with open(config, "w") as f:
            f.write(f"[host]\nbus = {toml_string(bus.address)}\nplugin_path = [{toml_string(self.example)}]\n\n"
                    "[room]\nkind = \"room_temp\"\nstart = 20.0\nperiod = 0.05\n\n"
                    "[heartbeat]\ninterval = 0.5\n")
        log = os.path.join(self.tmp, "host.log")
        with open(log, "w") as out:
            host = spawn([self.host, "--config", config], stdout=out, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL)
        self.addCleanup(stop_process, host)
        # Both plugins up: the example's service answers, the built-in heartbeat beats.
        value = self.wait_for(lambda: self.try_gdbus(bus.address, "--object-path", "/Temperature",
                                                     "--method", "com.victronenergy.BusItem.GetValue"), log)
        self.assertEqual(value, "(<20.0>,)")
        self.wait_for(lambda: "beat 1:" in open(log).read(), log)
        # A write through the bus drives the reading.
        self.assertEqual(gdbus(bus.address, "--object-path", "/Target", "--method",
                               "com.victronenergy.BusItem.SetValue", "<25.0>"), "(0,)")
        self.wait_for(lambda: self.try_gdbus(bus.address, "--object-path", "/Temperature", "--method",
                                             "com.victronenergy.BusItem.GetValue") == "(<25.0>,)", log)
        # The plugin's own client command, found along the plugin path.
        p = run([self.host, "--plugin-dir", self.example, "room-temp", "--bus", bus.address], timeout=30)
        self.assertEqual(p.stdout.strip(), "25.0")
        p = run([self.host, "--plugin-dir", self.example, "--help"], timeout=30)
        self.assertIn("room-temp", p.stdout)
        self.assertIn("(plugin room_temp)", p.stdout)
        self.assertIn("status", p.stdout)
        host.send_signal(signal.SIGTERM)
        self.assertEqual(host.wait(timeout=10), 0, open(log).read())

    def test_a_moved_prefix_still_finds_its_plugins(self):
        moved = os.path.join(self.tmp, "moved")
        shutil.copytree(self.prefix, moved, symlinks=True)
        p = run([os.path.join(moved, "bin", "moat-victron"), "--list-plugins"], timeout=30)
        self.assertIn(os.path.join(moved, "lib", "moat-victron", "plugins", "inverter.so"), p.stdout)
        self.assertNotIn(BUILD_DIR + "/", p.stdout)

    def test_pkg_config(self):
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(self.prefix, "lib", "pkgconfig"))
        p = run(["pkg-config", "--cflags", "--libs", "moat-victron"], env=env, timeout=30)
        self.assertIn(f"-I{self.prefix}/lib/pkgconfig/../../include", p.stdout)
        self.assertTrue(os.path.isfile(os.path.join(self.prefix, "lib/pkgconfig/../../include/moat/plugin.hpp")))
        self.assertIn("-lmoat", p.stdout)

    def try_gdbus(self, address, *args):
        p = subprocess.run(["gdbus", "call", "--address", address, "--timeout", "2", "--dest", SERVICE] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, timeout=30)
        return p.stdout.strip() if p.returncode == 0 else None

    def wait_for(self, predicate, log, timeout=30):
        import time
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.05)
        self.fail(f"timed out; host log:\n{open(log).read()}")


if __name__ == "__main__":
    unittest.main()

"""`moat-victron setup` against a fake GX root in a temporary directory:
install, boot (idempotent), configuration kept, rc.local created or edited
(and rc.local.disabled reported), uninstall leaving exactly what was there
before, upgrade and rollback, a firmware update that wipes the root file
system's parts, and the installed service under a real svscan/supervise
(Debian daemontools) with multilog, a private bus and a simulated Multi.

The tree installed from is `cmake --install` of the build into a temporary
prefix, made a bundle as cmake/bundle.sh does: bin/moat-victron the launcher
that checks the machine and the glibc version before it execs
libexec/moat-victron. svc, svstat, mount and udevadm are replaced by
recording scripts (MOAT_SETUP_SVC...) except in the daemontools test.

Run: cd test/integration && MOAT_BUILD_DIR=../../build MOAT_SOURCE_DIR=../.. python3 -m unittest -v test_setup
"""

import hashlib
import os
import re
import shutil
import stat
import subprocess
import tempfile
import time
import unittest

import dbus

from moattest import (BUILD_DIR, BUSITEM, HOST, SOURCE_DIR, HostTestCase, env_without_bus, spawn, stop_process,
                      toml_string)

VEBUS = "com.victronenergy.vebus.sim"
STAGE = None  # the installed tree, with the bundle's launcher (module fixture)
GLIBC_NEED = None  # the glibc version the launcher asks for


def setUpModule():
    global STAGE, GLIBC_NEED, _stage_tmp
    _stage_tmp = tempfile.mkdtemp(prefix="moat-setup-stage-")
    STAGE = os.path.join(_stage_tmp, "stage")
    subprocess.run(["cmake", "--install", BUILD_DIR, "--prefix", STAGE], check=True, stdout=subprocess.DEVNULL)
    GLIBC_NEED = subprocess.run([os.path.join(SOURCE_DIR, "cmake", "bundle-launcher.sh"), STAGE, "native",
                                 os.uname().machine, "readelf"], check=True, capture_output=True,
                                text=True).stdout.strip()


def tearDownModule():
    shutil.rmtree(_stage_tmp, True)


def snapshot(root):
    """Every path below root with its type, mode and content hash (or link target)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", oct(st.st_mode & 0o7777))
            else:
                with open(p, "rb") as f:
                    out[rel] = ("file", oct(st.st_mode & 0o7777), hashlib.sha256(f.read()).hexdigest())
    return out


FAKE_TOOL = """#!/bin/sh
echo "$(basename "$0") $*" >> "{log}"
{body}
"""


class SetupCase(HostTestCase):

    def setUp(self):
        super().setUp()
        self.root = os.path.join(self.tmp, "root")
        for d in ("data/conf", "service/dbus-systemcalc-py", "etc/udev/rules.d", "var/log", "opt/victronenergy"):
            os.makedirs(os.path.join(self.root, d))
        self.write("data/conf/settings.xml", "<Settings/>\n")
        self.write("etc/udev/rules.d/serial-starter.rules", 'ACTION=="add", ENV{VE_SERVICE}="default"\n')
        self.calls = os.path.join(self.tmp, "calls.log")
        bindir = os.path.join(self.tmp, "fakebin")
        os.makedirs(bindir)
        self.env = dict(os.environ)
        for name, body in (("svc", ""), ("svstat", 'for s in "$@"; do echo "$s: up (pid 1) 5 seconds"; done'),
                           ("mount", ""), ("udevadm", "")):
            path = os.path.join(bindir, name)
            with open(path, "w") as f:
                f.write(FAKE_TOOL.format(log=self.calls, body=body))
            os.chmod(path, 0o755)
            self.env[f"MOAT_SETUP_{name.upper()}"] = path
        self.home = os.path.join(self.root, "data/moat-victron")

    def path(self, rel):
        return os.path.join(self.root, rel)

    def write(self, rel, text, mode=0o644):
        p = self.path(rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text)
        os.chmod(p, mode)

    def read(self, rel):
        with open(self.path(rel)) as f:
            return f.read()

    def stage(self, version):
        """A copy of the installed tree that calls itself `version`."""
        d = os.path.join(self.tmp, f"bundle-{version}")
        if not os.path.exists(d):
            shutil.copytree(STAGE, d, symlinks=True)
            with open(os.path.join(d, "VERSION"), "w") as f:
                f.write(version + "\n")
        return os.path.join(d, "bin", "moat-victron")

    def setup(self, *args, exe=None, expect=0, env=None):
        p = subprocess.run([exe or os.path.join(STAGE, "bin", "moat-victron"), "setup", *args, "--root", self.root],
                           capture_output=True, text=True, timeout=60, env=env or self.env)
        if expect is not None:
            self.assertEqual(p.returncode, expect, f"setup {' '.join(args)}:\n{p.stdout}\n{p.stderr}")
        return p

    def tool_calls(self):
        if not os.path.exists(self.calls):
            return []
        with open(self.calls) as f:
            return f.read().splitlines()

    def rc_lines(self, rel="data/rc.local"):
        return [line for line in self.read(rel).splitlines() if "moat-victron setup --boot" in line]


class InstallTest(SetupCase):

    def test_install_lays_out_the_service_and_boot_twice_changes_nothing(self):
        out = self.setup("--install").stdout
        self.assertIn("moat-victron 0.1.0 installed", out)
        self.assertEqual(os.readlink(self.path("data/moat-victron/current")), "versions/0.1.0")
        self.assertTrue(os.access(self.path("data/moat-victron/current/bin/moat-victron"), os.X_OK))
        self.assertTrue(os.access(self.path("data/moat-victron/current/libexec/moat-victron"), os.X_OK))
        self.assertTrue(os.path.exists(self.path("data/moat-victron/current/lib/moat-victron/plugins/inverter.so")))
        # the configuration from the GX example, checked
        with open(os.path.join(STAGE, "share/moat-victron/gx.toml")) as f:
            self.assertEqual(self.read("data/moat-victron/moat-victron.toml"), f.read())
        run = self.read("data/moat-victron/service/moat-victron/run")
        self.assertRegex(run, r"^#!/bin/sh\n")
        self.assertIn("\nexec 2>&1\n", run)
        self.assertRegex(run, r"\nexec (softlimit -d \d+ -s 1000000 -a \d+ )?" + re.escape(
            f"{self.home}/current/bin/moat-victron --config {self.home}/moat-victron.toml") + "\n")
        log_run = self.read("data/moat-victron/service/moat-victron/log/run")
        self.assertTrue(log_run.endswith(f"\nexec 2>&1\nexec multilog t s25000 n4 {self.root}/var/log/moat-victron\n"))
        self.assertFalse(os.path.exists(self.path("data/moat-victron/service/moat-victron/down")))
        # linked into /service, rc.local created with one line, mode 755
        self.assertEqual(os.readlink(self.path("service/moat-victron")), f"{self.home}/service/moat-victron")
        self.assertTrue(self.read("data/rc.local").startswith("#!/bin/sh\n"))
        self.assertEqual(stat.S_IMODE(os.stat(self.path("data/rc.local")).st_mode), 0o755)
        self.assertEqual(self.rc_lines(), [f"{self.home}/current/bin/moat-victron setup --boot --root {self.root}  "
                                           "# starts moat-victron (removed by: moat-victron setup --uninstall)"])
        # no serial device configured: no udev rule, no remount
        self.assertFalse(os.path.exists(self.path("etc/udev/rules.d/99-moat-victron.rules")))
        self.assertEqual(self.tool_calls(), [])

        before = snapshot(self.root)
        for _ in range(2):
            out = self.setup("--boot").stdout
            self.assertIn("already linked", out)
            self.assertEqual(snapshot(self.root), before)
        # installing the same bundle again changes nothing either
        self.setup("--install")
        self.assertEqual(snapshot(self.root), before)
        self.assertEqual(self.tool_calls(), [])

    def test_an_existing_configuration_is_kept(self):
        with open(os.path.join(STAGE, "share/moat-victron/gx.toml")) as f:
            mine = f.read().replace("interval = 60.0", "interval = 30.0") + "# mine\n"
        self.write("data/moat-victron/moat-victron.toml", mine, 0o600)
        out = self.setup("--install").stdout
        self.assertIn("keeping the configuration", out)
        self.assertEqual(self.read("data/moat-victron/moat-victron.toml"), mine)
        self.setup("--install", exe=self.stage("0.2.0"))
        self.assertEqual(self.read("data/moat-victron/moat-victron.toml"), mine)
        self.assertEqual(stat.S_IMODE(os.stat(self.path("data/moat-victron/moat-victron.toml")).st_mode), 0o600)

    def test_a_broken_configuration_is_reported_and_the_service_installed_down(self):
        self.write("data/moat-victron/moat-victron.toml", "[host]\nbus = \"system\"\n\n[heartbeat]\nintervall = 5\n")
        p = self.setup("--install", expect=3)
        self.assertIn("moat-victron.toml:5", p.stderr)
        self.assertIn("intervall", p.stderr)
        self.assertIn("installed but not started", p.stderr)
        self.assertTrue(os.path.exists(self.path("data/moat-victron/service/moat-victron/down")))
        self.assertTrue(os.path.islink(self.path("service/moat-victron")))
        st = self.setup("--status", expect=1).stdout
        self.assertIn("intervall", st)
        self.assertIn("health:    NOT OK", st)
        # fixed: the next install takes the service up
        self.write("data/moat-victron/moat-victron.toml", "[host]\nbus = \"system\"\n\n[heartbeat]\ninterval = 5\n")
        self.setup("--install")
        self.assertFalse(os.path.exists(self.path("data/moat-victron/service/moat-victron/down")))
        st = self.setup("--status").stdout
        self.assertIn("health:    OK", st)
        self.assertIn("installed: 0.1.0", st)

    def test_an_existing_rc_local_keeps_its_lines_and_gets_them_back(self):
        mine = "#!/bin/sh\n# my own\ntouch /tmp/booted"  # no final newline
        self.write("data/rc.local", mine, 0o755)
        before = snapshot(self.root)
        self.setup("--install")
        text = self.read("data/rc.local")
        self.assertTrue(text.startswith(mine + "\n"))
        self.assertEqual(len(self.rc_lines()), 1)
        self.setup("--install")
        self.assertEqual(len(self.rc_lines()), 1)
        self.setup("--uninstall", "--purge")
        self.assertEqual(self.read("data/rc.local"), mine)
        self.assertEqual(snapshot(self.root), before)

    def test_a_non_executable_rc_local_is_made_executable(self):
        self.write("data/rc.local", "#!/bin/sh\n", 0o644)
        p = self.setup("--install")
        self.assertIn("was not executable", p.stderr)
        self.assertTrue(os.access(self.path("data/rc.local"), os.X_OK))

    def test_rc_local_disabled_by_the_modification_checks_is_reported(self):
        self.write("data/rc.local.disabled", "#!/bin/sh\necho hi\n", 0o755)
        p = self.setup("--install")
        self.assertIn("modification checks have disabled", p.stderr)
        self.assertIn(f"mv {self.root}/data/rc.local.disabled {self.root}/data/rc.local", p.stderr)
        self.assertFalse(os.path.exists(self.path("data/rc.local")))
        # the line waits in the disabled file for the day it is enabled again
        self.assertEqual(len(self.rc_lines("data/rc.local.disabled")), 1)
        self.setup("--uninstall")
        self.assertEqual(self.read("data/rc.local.disabled"), "#!/bin/sh\necho hi\n")

    def test_uninstall_leaves_exactly_what_was_there_before(self):
        before = snapshot(self.root)
        self.setup("--install")
        self.write("var/log/moat-victron/current", "@4000 a log line\n")
        self.setup("--uninstall")
        after = snapshot(self.root)
        # without --purge: the configuration and the logs stay, nothing else
        self.assertEqual(sorted(set(after) - set(before)),
                         ["data/moat-victron", "data/moat-victron/moat-victron.toml", "var/log/moat-victron",
                          "var/log/moat-victron/current"])
        self.assertEqual({k: v for k, v in after.items() if k in before}, before)
        # a second install finds the configuration, --purge takes everything
        self.setup("--install")
        self.setup("--uninstall", "--purge")
        self.assertEqual(snapshot(self.root), before)

    def test_uninstall_stops_a_supervised_service(self):
        self.setup("--install")
        os.makedirs(self.path("service/moat-victron/supervise"))  # as supervise would
        os.makedirs(self.path("service/moat-victron/log/supervise"))
        self.setup("--uninstall", "--purge")
        self.assertEqual(self.tool_calls()[0], f"svc -dx {self.root}/service/moat-victron")
        self.assertIn(f"svc -dx {self.root}/service/moat-victron/log", self.tool_calls())
        self.assertFalse(os.path.lexists(self.path("service/moat-victron")))

    def test_upgrade_restarts_and_rollback_goes_back_and_forth(self):
        self.setup("--install", exe=self.stage("1.0.0"))
        os.makedirs(self.path("data/moat-victron/service/moat-victron/supervise"))  # as if supervised
        self.setup("--install", exe=self.stage("1.1.0"))
        self.assertEqual(os.readlink(self.path("data/moat-victron/current")), "versions/1.1.0")
        self.assertEqual(os.readlink(self.path("data/moat-victron/previous")), "versions/1.0.0")
        self.assertEqual(self.tool_calls(), [f"svc -t {self.root}/service/moat-victron"])
        self.assertIn("installed: 1.1.0", self.setup("--status").stdout)
        out = self.setup("--rollback").stdout
        self.assertIn("rolled back from 1.1.0 to 1.0.0", out)
        self.assertEqual(os.readlink(self.path("data/moat-victron/current")), "versions/1.0.0")
        st = self.setup("--status").stdout
        self.assertIn("installed: 1.0.0", st)
        self.assertIn("previous:  1.1.0", st)
        self.setup("--rollback")
        self.assertEqual(os.readlink(self.path("data/moat-victron/current")), "versions/1.1.0")
        svc_calls = [c for c in self.tool_calls() if c.startswith("svc ")]
        self.assertEqual(svc_calls, [f"svc -t {self.root}/service/moat-victron"] * 3)
        # a third version drops the oldest (only current and previous are kept)
        self.setup("--install", exe=self.stage("1.2.0"))
        self.assertEqual(sorted(os.listdir(self.path("data/moat-victron/versions"))), ["1.1.0", "1.2.0"])
        # --install from the installed tree itself only relinks
        self.setup("--install", exe=self.path("data/moat-victron/versions/1.1.0/bin/moat-victron"))
        self.assertEqual(os.readlink(self.path("data/moat-victron/current")), "versions/1.1.0")
        self.assertEqual(sorted(os.listdir(self.path("data/moat-victron/versions"))), ["1.1.0", "1.2.0"])

    def test_rollback_without_a_previous_version_is_an_error(self):
        self.setup("--install")
        p = self.setup("--rollback", expect=1)
        self.assertIn("no previous version to roll back to", p.stderr)

    def test_a_firmware_update_is_repaired_by_the_rc_local_line(self):
        with open(os.path.join(STAGE, "share/moat-victron/gx.toml")) as f:
            cfg = f.read() + '\n[grid-meter]\nkind = "meters"\nbus = "rtu"\ndevice = "/dev/ttyUSB0"\nunits = [1]\n' \
                             '\n[bms]\nkind = "meters"\nbus = "rtu"\ndevice = "/dev/serial/by-id/usb-rp2040"\n' \
                             'units = [1]\n'
        self.write("data/moat-victron/moat-victron.toml", cfg)
        self.setup("--install")
        rule = self.read("etc/udev/rules.d/99-moat-victron.rules")
        self.assertIn('SUBSYSTEM=="tty", KERNEL=="ttyUSB0", ENV{VE_SERVICE}="ignore"\n', rule)
        self.assertIn('SUBSYSTEM=="tty", SYMLINK=="serial/by-id/usb-rp2040", ENV{VE_SERVICE}="ignore"\n', rule)
        self.assertEqual(self.tool_calls(), ["udevadm control --reload-rules",
                                             "udevadm trigger --subsystem-match=tty --action=add"])
        installed = snapshot(self.root)
        # The update: a new root file system (/service rebuilt from the image,
        # /etc/udev/rules.d without our rule, mounted read-only); /data stays.
        shutil.rmtree(self.path("service"))
        os.makedirs(self.path("service/dbus-systemcalc-py"))
        os.remove(self.path("etc/udev/rules.d/99-moat-victron.rules"))
        open(self.calls, "w").close()
        env = dict(self.env, MOAT_SETUP_ROOTFS_RO="1")
        p = subprocess.run(["sh", self.path("data/rc.local")], capture_output=True, text=True, env=env, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(snapshot(self.root), installed)
        self.assertEqual(self.tool_calls(), [f"mount -o remount,rw {self.root}", f"mount -o remount,ro {self.root}",
                                             "udevadm control --reload-rules",
                                             "udevadm trigger --subsystem-match=tty --action=add"])
        # the next boot finds everything in place: no remount
        open(self.calls, "w").close()
        subprocess.run(["sh", self.path("data/rc.local")], check=True, capture_output=True, env=env, timeout=60)
        self.assertEqual(self.tool_calls(), [])

    def test_status_of_a_root_without_the_service(self):
        p = self.setup("--status", expect=1)
        self.assertIn("installed: no", p.stdout)

    def test_setup_from_the_build_tree_is_refused_with_a_reason(self):
        p = self.setup("--install", exe=HOST, expect=1)
        self.assertIn("runs from an unpacked bundle or an installed tree", p.stderr)

    def test_the_help_lists_setup_and_bad_arguments_are_usage_errors(self):
        p = subprocess.run([HOST, "--help"], capture_output=True, text=True, timeout=30)
        self.assertRegex(p.stdout, r"\n  setup +install, boot, check")
        p = subprocess.run([HOST, "setup", "--help"], capture_output=True, text=True, timeout=30)
        for action in ("--install", "--boot", "--status", "--rollback", "--uninstall", "MOAT_SETUP_SVC"):
            self.assertIn(action, p.stdout)
        for bad in (["--install", "--boot"], [], ["--status", "--purge"], ["--frobnicate"]):
            p = subprocess.run([HOST, "setup", *bad], capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 2, (bad, p.stderr))
            self.assertIn("moat-victron setup --help", p.stderr)


class PatchHookTest(SetupCase):
    """`setup --boot` runs `moat-victron patches boot`, a command that needs no bus."""

    def no_bus_env(self):
        return dict(env_without_bus(), **{k: v for k, v in self.env.items() if k.startswith("MOAT_SETUP_")})

    def test_patches_status_works_without_any_bus(self):
        host = os.path.join(STAGE, "bin/moat-victron")
        env = self.no_bus_env()
        # there is no bus here: a command that needs one says so
        p = subprocess.run([host, "status", "--once"], capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(p.returncode, 4, p.stdout + p.stderr)
        self.assertIn("cannot connect to the D-Bus system bus", p.stderr)
        p = subprocess.run([host, "patches", "status", "--root", self.root], capture_output=True, text=True,
                           timeout=60, env=env)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertTrue(p.stdout.startswith(f"Venus unknown under {self.root}; backups in "), p.stdout)
        self.assertRegex(p.stdout, r"\nhubvoltage +recommended ")
        self.assertEqual(p.stderr, "")
        # --bus is ignored (scripts pass it to every command), and the help says so
        p = subprocess.run([host, "patches", "status", "--bus", "session", "--root", self.root], capture_output=True,
                           text=True, timeout=60, env=env)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        p = subprocess.run([host, "patches", "--help"], capture_output=True, text=True, timeout=60, env=env)
        self.assertIn("  --bus BUS              accepted and ignored: this command uses no D-Bus\n", p.stdout)

    def test_a_failing_patch_boot_fails_the_boot_but_the_service_is_linked(self):
        env = self.no_bus_env()
        self.setup("--install", env=env)  # no patch enabled: patches boot has nothing to do
        broken = os.path.join(self.tmp, "broken-manifests")
        os.makedirs(broken)
        with open(os.path.join(broken, "broken.toml"), "w") as f:
            f.write("title = \"no end\n")
        shutil.rmtree(self.path("service"))
        os.makedirs(self.path("service"))
        p = self.setup("--boot", env=dict(env, MOAT_PATCH_DIR=broken), expect=1)
        self.assertIn("broken.toml", p.stdout)  # the messages of patches boot, passed on
        self.assertIn(f"setup: error: '{self.home}/current/bin/moat-victron patches boot --root {self.root}' "
                      "failed (exit 1, its messages above): the enabled patches may not be in place. "
                      "The service is linked and starts.", p.stderr)
        self.assertEqual(os.readlink(self.path("service/moat-victron")), f"{self.home}/service/moat-victron")
        self.setup("--boot", env=env)


class LauncherTest(SetupCase):
    """bin/moat-victron of a bundle checks the machine and the C library
    before it execs libexec/moat-victron: an old Venus OS gets a clear
    message, not the dynamic loader's."""

    def with_tools(self, **tools):
        """The environment with a PATH whose first directory has these commands (name: shell body)."""
        d = os.path.join(self.tmp, "fakepath")
        shutil.rmtree(d, True)
        os.makedirs(d)
        for name, body in tools.items():
            with open(os.path.join(d, name), "w") as f:
                f.write("#!/bin/sh\n" + body + "\n")
            os.chmod(os.path.join(d, name), 0o755)
        return dict(self.env, PATH=d + os.pathsep + self.env["PATH"])

    def run_it(self, argv, env=None):
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env or self.env)

    def test_the_launcher_runs_the_program_with_its_arguments_and_exit_code(self):
        launcher = os.path.join(STAGE, "bin/moat-victron")
        with open(launcher) as f:
            text = f.read()
        self.assertTrue(text.startswith("#!/bin/sh\n"))
        self.assertRegex(GLIBC_NEED, r"^2\.\d+$")
        self.assertIn(f"\nneed={GLIBC_NEED}\n", text)
        p = self.run_it([launcher, "--version"])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"^moat-victron 0\.1\.0 ")
        # from a link elsewhere too (the program is found beside the script, not the link)
        link = os.path.join(self.tmp, "moat-victron")
        os.symlink(launcher, link)
        p = self.run_it([link, "--check-config", os.path.join(STAGE, "share/moat-victron/gx.toml")])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("OK", p.stdout)
        p = self.run_it([link, "--frobnicate"])
        self.assertEqual(p.returncode, 2, p.stderr)
        # a newer glibc than needed is fine
        p = self.run_it([launcher, "--version"], env=self.with_tools(getconf='echo "glibc 2.99"'))
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_a_too_old_glibc_is_refused_with_a_clear_message(self):
        self.setup("--install")
        installed = self.path("data/moat-victron/current/bin/moat-victron")
        message = (f"moat-victron: this build needs glibc {GLIBC_NEED} or newer (Venus OS 3.60 or later); "
                   "this system has glibc 2.31. Update the GX firmware first.\n")
        for tools in ({"getconf": 'echo "glibc 2.31"'},
                      # no getconf (as on some Venus OS images): what ldd says
                      {"getconf": "exit 1", "ldd": 'echo "ldd (GNU libc) 2.31"; echo "Copyright..."'}):
            env = self.with_tools(**tools)
            p = self.run_it([installed, "--version"], env)
            self.assertEqual((p.returncode, p.stdout, p.stderr), (1, "", message), tools)
            # the boot line in rc.local after a firmware downgrade
            p = self.run_it(["sh", self.path("data/rc.local")], env)
            self.assertEqual(p.stderr, message)
            self.assertNotIn("linked", p.stdout)
            # the service: the message goes to its log (the run script sends stderr there)
            p = self.run_it(["sh", self.path("data/moat-victron/service/moat-victron/run")], env)
            self.assertEqual(p.returncode, 1)
            self.assertEqual(p.stdout, "*** starting moat-victron ***\n" + message)

    def test_another_machine_is_refused(self):
        p = self.run_it([os.path.join(STAGE, "bin/moat-victron"), "--version"], self.with_tools(uname="echo mips"))
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stderr, "moat-victron: this is the native build; this machine is mips: "
                                   "install the bundle for it\n")

    def test_an_install_tree_without_the_launcher_installs_too(self):
        plain = os.path.join(self.tmp, "plain")
        shutil.copytree(STAGE, plain, symlinks=True)
        os.replace(os.path.join(plain, "libexec/moat-victron"), os.path.join(plain, "bin/moat-victron"))
        os.rmdir(os.path.join(plain, "libexec"))
        self.setup("--install", exe=os.path.join(plain, "bin/moat-victron"))
        self.assertFalse(os.path.exists(self.path("data/moat-victron/current/libexec")))
        p = self.run_it([self.path("data/moat-victron/current/bin/moat-victron"), "--version"])
        self.assertEqual(p.returncode, 0, p.stderr)


@unittest.skipUnless(shutil.which("svscan") and shutil.which("multilog"), "needs Debian's daemontools")
class SupervisedServiceTest(SetupCase):
    """The installed run script under a real svscan, logging through multilog,
    controlling a simulated Multi that runs in a separate host process."""

    def vebus_setpoints(self):
        conn = dbus.bus.BusConnection(self.bus.address)
        try:
            return [float(conn.call_blocking(VEBUS, f"/Hub4/L{k}/AcPowerSetpoint", BUSITEM, "GetValue", "", (),
                                             timeout=5)) for k in (1, 2, 3)]
        finally:
            conn.close()

    def log_text(self):
        p = self.path("var/log/moat-victron/current")
        if not os.path.exists(p):
            return ""
        with open(p, errors="replace") as f:
            return f.read()

    def wait_log(self, pattern, count=1, timeout=30):
        deadline = time.monotonic() + timeout
        while len(re.findall(pattern, self.log_text(), re.M)) < count:
            if time.monotonic() > deadline:
                self.fail(f"no {pattern!r} (x{count}) in the service log:\n{self.log_text()}")
            time.sleep(0.1)

    def svstat(self):
        return subprocess.run(["svstat", self.path("service/moat-victron")], capture_output=True, text=True).stdout

    def test_the_service_runs_stops_safely_and_restarts_under_supervise(self):
        self.start_bus()
        sim_cfg = self.write_config("[sim]\nphases = 3\nstart_hour = 0.0\nupdate_interval = 0.25\n", name="sim.toml",
                                    plugin_dir=os.path.join(BUILD_DIR, "plugins"))
        sim = self.start_host(sim_cfg, "--log-level", "debug")
        sim.wait_for(r"\[sim\] simulating", 15)
        self.write("data/moat-victron/moat-victron.toml", f"""
[host]
bus = {toml_string(self.bus.address)}
stop_timeout = 3.0

[heartbeat]
interval = 60.0

[inverter]
mode = "p_inv"
fake = false
trigger_sleep = 1.0
trigger_wait = 3.0
mode_lockout = 5.0

[inverter.modes.p_inv]
power = 600
""")
        env = {k: v for k, v in self.env.items() if k not in ("MOAT_SETUP_SVC", "MOAT_SETUP_SVSTAT")}
        self.setup("--install", env=env)
        svscan = spawn(["svscan", self.path("service")], own_group=True, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def stop_all():
            if os.path.lexists(self.path("service/moat-victron")):
                subprocess.run(["svc", "-dx", self.path("service/moat-victron"), self.path("service/moat-victron/log")])
            stop_process(svscan)
        self.addCleanup(stop_all)

        # It runs: its log goes through multilog (TAI64N stamps) and the Multi gets setpoints.
        self.wait_log(r"^@[0-9a-f]{24} \*\*\* starting moat-victron \*\*\*$")
        self.wait_log(r"^@[0-9a-f]{24} INFO \[inverter\] ")
        sim.wait_for(r"/Hub4/L1/AcPowerSetpoint written by \S+: \S+ W -> -\d+ W", 30)
        self.assertRegex(self.svstat(), r": up \(pid \d+\)")
        self.assertTrue(all(v < 0 for v in self.vebus_setpoints()), self.vebus_setpoints())
        status = self.setup("--status", env=env)
        self.assertIn("health:    OK", status.stdout)

        # svc -d: SIGTERM, the safe state on the Multi, a clean stop, and it stays down.
        subprocess.run(["svc", "-d", self.path("service/moat-victron")], check=True)
        self.wait_log(r"INFO \[inverter\] safe state reached")
        deadline = time.monotonic() + 15
        while not re.search(r": down \d+ seconds", self.svstat()):
            self.assertLess(time.monotonic(), deadline, self.svstat())
            time.sleep(0.1)
        self.assertEqual(self.vebus_setpoints(), [0.0, 0.0, 0.0])
        self.assertIn("stopping (Terminated)", self.log_text())
        self.assertNotIn("did not stop in time", self.log_text())
        self.assertNotIn("ERROR", self.log_text())
        self.assertEqual(self.setup("--status", env=env, expect=1).returncode, 1)

        # svc -u: started again, writing again.
        mark = sim.mark()
        subprocess.run(["svc", "-u", self.path("service/moat-victron")], check=True)
        self.wait_log(r"\*\*\* starting moat-victron \*\*\*", count=2)
        sim.wait_for(r"/Hub4/L1/AcPowerSetpoint written by \S+: \S+ W -> -\d+ W", 30, since=mark)
        self.assertRegex(self.svstat(), r": up \(pid \d+\)")

        # uninstall stops it through svc and removes it
        self.setup("--uninstall", "--purge", env=env)
        self.assertFalse(os.path.lexists(self.path("service/moat-victron")))
        self.assertEqual(self.vebus_setpoints(), [0.0, 0.0, 0.0])


if __name__ == "__main__":
    unittest.main()

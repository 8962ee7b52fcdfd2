"""The patch manager `moat-victron patches` against a fake GX root in a
temporary directory. Victron's files cannot be shipped: the fixture writes
synthetic dbus-systemcalc-py files with the same structure (the functions the
patches change, with the lines they change) and registers their SHA-256 as a
known version in copies of the real manifests (patches/*.toml), found through
MOAT_PATCH_DIR. svc and the remount are scripts that record their calls."""

import glob
import hashlib
import os
import re
import shutil
import stat
import textwrap
import unittest

from moattest import SOURCE_DIR, HostTestCase, run_host

DELEGATES = "opt/victronenergy/dbus-systemcalc-py/delegates"

MULTI_PY = textwrap.dedent("""\
    from gi.repository import GLib
    from delegates.base import SystemCalcDelegate

    class Service(object):
    \tdef __init__(self, monitor, service, instance):
    \t\tself.monitor = monitor
    \t\tself.service = service

    \t@property
    \tdef dc_current(self):
    \t\treturn self.monitor.get_value(self.service, '/Dc/0/Current')

    \t@property
    \tdef hub_voltage(self):
    \t\treturn self.monitor.get_value(self.service, '/Hub/ChargeVoltage')

    class Multi(SystemCalcDelegate):
    \tpass
    """)

DVCC_PY = textwrap.dedent("""\
    from delegates.base import SystemCalcDelegate

    class ChargerSubsystem(object):
    \tdef set_maxchargecurrent(self, max_charge_current, feedback_allowed, chargers):
    \t\tif max_charge_current is not None:
    \t\t\tif feedback_allowed:
    \t\t\t\tself._maximise_charge_current(chargers)
    \t\t\telif len(chargers):
    \t\t\t\tself._set_charge_current(chargers, max_charge_current)

    class Dvcc(SystemCalcDelegate):
    \tdef _get_chargevoltage(self, bms_charge_voltage):
    \t\tif self._multi.active:
    \t\t\thub_voltage = self._multi.hub_voltage
    \t\t\tif hub_voltage is not None:
    \t\t\t\tovoffset = max(0, min(0.4, hub_voltage - self.bol.chargevoltage))
    \t\t\t\tabs_offset = 0.0
    \t\t\t\tcharge_voltage = min(bms_charge_voltage + ovoffset, hub_voltage + abs_offset)
    \t\t\t\treturn charge_voltage
    \t\treturn bms_charge_voltage
    """)

# A later release of the same file that the (test) manifests know too.
MULTI_PY_NEXT = MULTI_PY.replace("class Multi(", "# a later release\nclass Multi(")

SCRIPT = "#!/bin/sh\necho \"$@\" >> {log}\n{extra}"


def sha256(data):
    return hashlib.sha256(data).hexdigest()


class PatchesCase(HostTestCase):

    def setUp(self):
        super().setUp()
        self.root = os.path.join(self.tmp, "root")
        self.delegates = os.path.join(self.root, DELEGATES)
        os.makedirs(self.delegates)
        self.multi = os.path.join(self.delegates, "multi.py")
        self.dvcc = os.path.join(self.delegates, "dvcc.py")
        self.write(self.multi, MULTI_PY)
        self.write(self.dvcc, DVCC_PY)
        with open(os.path.join(self.root, "opt/victronenergy/version"), "w") as f:
            f.write("v3.60\n20260601\nv3.60\n")
        self.state = os.path.join(self.root, "data/moat-victron/patches")
        self.manifests = self.known_manifests({"multi.py": [MULTI_PY, MULTI_PY_NEXT], "dvcc.py": [DVCC_PY]})
        self.svc_log = os.path.join(self.tmp, "svc.log")
        self.svc = self.script("svc", self.svc_log)
        self.addCleanup(self.make_writable)

    def write(self, path, text):
        with open(path, "wb") as f:
            f.write(text.encode() if isinstance(text, str) else text)

    def read(self, path):
        with open(path, "rb") as f:
            return f.read()

    def script(self, name, log, extra=""):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(SCRIPT.format(log=log, extra=extra))
        os.chmod(path, 0o755)
        return path

    def known_manifests(self, files, name="manifests"):
        """Copies of the real manifests with the synthetic files' hashes as known versions."""
        out = os.path.join(self.tmp, name)
        os.makedirs(out)
        for src in glob.glob(os.path.join(SOURCE_DIR, "patches", "*.toml")):
            with open(src) as f:
                text = f.read()
            target = re.search(r'^target = "(.*)"$', text, re.M).group(1)
            known = ", ".join(f'{{ sha256 = "{sha256(data.encode())}", label = "synthetic test file {n}" }}'
                              for n, data in enumerate(files[os.path.basename(target)], 1))
            self.assertIn("\nknown = []\n", text, src)
            text = text.replace("\nknown = []\n", f"\nknown = [{known}]\n")
            with open(os.path.join(out, os.path.basename(src)), "w") as f:
                f.write(text)
        return out

    def make_writable(self):
        for d, _, _ in os.walk(self.root):
            os.chmod(d, 0o755)

    def patches(self, *args, manifests=None, env_extra=None):
        env = dict(os.environ, MOAT_PATCH_DIR=manifests or self.manifests, MOAT_SVC=self.svc)
        env.update(env_extra or {})
        # No bus at all: the patch manager needs none (it runs from rc.local, maybe before D-Bus).
        env.pop("DBUS_SYSTEM_BUS_ADDRESS", None)
        env.pop("DBUS_SESSION_BUS_ADDRESS", None)
        return run_host(["patches", *args, "--root", self.root], env=env, timeout=20)

    def svc_calls(self):
        if not os.path.exists(self.svc_log):
            return []
        with open(self.svc_log) as f:
            return [line.rstrip("\n") for line in f]

    def enabled(self):
        path = os.path.join(self.state, "enabled")
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return f.read().split()

    def backup(self, name):
        return os.path.join(self.state, "backup", DELEGATES, name)


class ApplyVerifyRevert(PatchesCase):

    def test_apply_verify_idempotent_revert_restores_the_exact_bytes(self):
        original = self.read(self.multi)
        rc, out, err = self.patches("apply", "hubvoltage")
        self.assertEqual(rc, 0, out + err)
        self.assertIn(f"hubvoltage: applied to {self.multi} (sha256 {sha256(original)} -> ", out)
        patched = self.read(self.multi)
        self.assertIn(b"'/Hub/ChargeVoltage') or None\n", patched)
        self.assertEqual(patched.count(b"moat-victron patch \"hubvoltage\""), 1)
        self.assertEqual(self.read(self.backup("multi.py")), original)
        service = os.path.join(self.root, "service/dbus-systemcalc-py")
        self.assertEqual(self.svc_calls(), [f"-t {service}"])
        self.assertEqual(self.enabled(), ["hubvoltage"])

        rc, out, err = self.patches("verify", "hubvoltage")
        self.assertEqual(rc, 0, out + err)
        self.assertIn(f"hubvoltage: applied and intact in {self.multi} (sha256 {sha256(patched)}, expected "
                      f"{sha256(patched)}; unpatched {sha256(original)} is a known version)", out)

        mtime = os.stat(self.multi).st_mtime_ns
        rc, out, err = self.patches("apply", "hubvoltage")
        self.assertEqual(rc, 0, out + err)
        self.assertIn("hubvoltage: already applied", out)
        self.assertEqual(self.read(self.multi), patched)
        self.assertEqual(os.stat(self.multi).st_mtime_ns, mtime, "not even rewritten")
        self.assertEqual(len(self.svc_calls()), 1, "no restart when nothing changed")

        rc, out, err = self.patches("status")
        self.assertEqual(rc, 0, out + err)
        self.assertRegex(out, r"hubvoltage\s+recommended\s+enabled\s+applied")
        self.assertRegex(out, r"fudgecurrent\s+optional\s+-\s+not applied \(known version\)")
        self.assertIn("Venus v3.60", out)

        rc, out, err = self.patches("revert", "hubvoltage")
        self.assertEqual(rc, 0, out + err)
        self.assertIn("hubvoltage: reverted", out)
        self.assertEqual(self.read(self.multi), original)
        self.assertFalse(os.path.exists(self.backup("multi.py")))
        self.assertEqual(len(self.svc_calls()), 2)
        self.assertEqual(self.enabled(), [])
        rc, out, err = self.patches("verify", "hubvoltage")
        self.assertEqual(rc, 1, out + err)
        self.assertIn("hubvoltage: NOT applied", out)

    def test_two_patches_on_one_file_come_and_go_independently(self):
        original = self.read(self.dvcc)
        rc, out, err = self.patches("apply", "fudgecurrent", "chargevoltage")
        self.assertEqual(rc, 0, out + err)
        both = self.read(self.dvcc)
        self.assertIn(b"0.95 * max_charge_current", both)
        self.assertIn(b"min(bms_charge_voltage, hub_voltage + abs_offset)", both)
        self.assertEqual(self.read(self.backup("dvcc.py")), original, "the backup is the unpatched file")
        self.assertEqual(len(self.svc_calls()), 1, "one restart for both")
        rc, out, err = self.patches("verify")
        self.assertEqual(rc, 1, out + err)  # hubvoltage is not applied
        self.assertIn("chargevoltage: applied and intact", out)
        self.assertIn("fudgecurrent: applied and intact", out)
        rc, out, err = self.patches("revert", "chargevoltage")
        self.assertEqual(rc, 0, out + err)
        now = self.read(self.dvcc)
        self.assertIn(b"0.95 * max_charge_current", now)
        self.assertNotIn(b"min(bms_charge_voltage, hub_voltage", now)
        self.assertEqual(self.enabled(), ["fudgecurrent"])
        rc, out, err = self.patches("revert", "fudgecurrent")
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(self.read(self.dvcc), original)


class Refusals(PatchesCase):

    def assert_untouched(self, before_multi, before_dvcc):
        self.assertEqual(self.read(self.multi), before_multi)
        self.assertEqual(self.read(self.dvcc), before_dvcc)
        self.assertEqual(self.svc_calls(), [])

    def test_an_unknown_version_is_refused(self):
        self.write(self.multi, MULTI_PY.replace("dc_current", "dc_current_a"))  # a release we do not know
        before = self.read(self.multi), self.read(self.dvcc)
        rc, out, err = self.patches("apply", "hubvoltage")
        self.assertEqual(rc, 1, out + err)
        self.assertIn(f"{self.multi} (Venus v3.60, sha256 {sha256(before[0])}) is not a version this patch knows "
                      "(synthetic test file 1 (", err)
        self.assertIn("not patched", err)
        self.assert_untouched(*before)
        self.assertFalse(os.path.exists(self.backup("multi.py")))
        self.assertEqual(self.enabled(), [])

    def test_the_shipped_manifests_know_no_version_yet(self):
        rc, out, err = self.patches("apply", "hubvoltage", manifests=os.path.join(SOURCE_DIR, "patches"))
        self.assertEqual(rc, 1, out + err)
        self.assertIn("is not a version this patch knows (none listed)", err)
        self.assertEqual(self.read(self.multi), MULTI_PY.encode())

    def test_a_corrupt_manifest_changes_nothing(self):
        broken = os.path.join(self.tmp, "broken")
        shutil.copytree(self.manifests, broken)
        with open(os.path.join(broken, "fudgecurrent.toml"), "a") as f:
            f.write("\n[[edits]]\nfind = 'x\n")  # an unterminated string
        before = self.read(self.multi), self.read(self.dvcc)
        rc, out, err = self.patches("apply", "hubvoltage", manifests=broken)
        self.assertEqual(rc, 1, out + err)
        self.assertRegex(err, r"fudgecurrent\.toml:\d+(:\d+)?: .*nothing changed")
        self.assert_untouched(*before)
        with open(os.path.join(broken, "fudgecurrent.toml"), "w") as f:
            f.write('title = "x"\ndescription = "y"\ntarget = "/etc/passwd"\n[[edits]]\nfind = "a"\nreplace = "b"\n')
        rc, out, err = self.patches("status", manifests=broken)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("'target' must be a path relative to the root", err)

    def test_a_target_changed_by_someone_else_is_not_touched(self):
        rc, out, err = self.patches("apply", "hubvoltage")
        self.assertEqual(rc, 0, out + err)
        self.write(self.multi, self.read(self.multi) + b"# edited by hand\n")
        edited = self.read(self.multi)
        for action in ("verify", "revert", "apply"):
            with self.subTest(action):
                rc, out, err = self.patches(action, "hubvoltage")
                self.assertEqual(rc, 1, out + err)
                self.assertIn("is neither the copy in", err)
                self.assertIn("nothing changed", err)
                self.assertEqual(self.read(self.multi), edited)
        self.assertEqual(len(self.svc_calls()), 1)

    def test_a_missing_backup_at_revert_changes_nothing(self):
        rc, out, err = self.patches("apply", "hubvoltage")
        self.assertEqual(rc, 0, out + err)
        os.remove(self.backup("multi.py"))
        patched = self.read(self.multi)
        rc, out, err = self.patches("revert", "hubvoltage")
        self.assertEqual(rc, 1, out + err)
        self.assertIn(f"the backup {self.backup('multi.py')} is missing: the exact original cannot be restored", err)
        self.assertEqual(self.read(self.multi), patched)
        rc, out, err = self.patches("apply", "hubvoltage")
        self.assertEqual(rc, 1, out + err)
        self.assertIn("looks patched already, but its backup", err)

    def test_usage_errors(self):
        for args, message in ((["frobnicate"], "unknown action 'frobnicate'"), (["apply"], "apply needs the names"),
                              (["apply", "nosuchpatch"], "no patch 'nosuchpatch' (known: chargevoltage, fudgecurrent, "
                                                         "hubvoltage)"),
                              (["boot", "hubvoltage"], "boot takes no names")):
            with self.subTest(args):
                rc, out, err = self.patches(*args)
                self.assertEqual(rc, 2, out + err)
                self.assertIn(message, err)


class ReviewAndAccept(PatchesCase):
    """A version no manifest lists: the owner reviews the change with `diff`
    and vouches for that exact file with `accept`; only then does apply (and
    boot) patch it. The shipped manifests list no version, as on a real GX."""

    def setUp(self):
        super().setUp()
        self.shipped = os.path.join(SOURCE_DIR, "patches")
        self.accepted = os.path.join(self.state, "accepted")

    def test_diff_then_accept_then_apply(self):
        original = self.read(self.multi)
        rc, out, err = self.patches("apply", "hubvoltage", manifests=self.shipped)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("Review the change with 'moat-victron patches diff hubvoltage'", err)
        self.assertIn("'moat-victron patches accept hubvoltage' lets apply use it", err)

        rc, out, err = self.patches("diff", "hubvoltage", manifests=self.shipped)
        self.assertEqual(rc, 0, out + err)
        self.assertIn(f"hubvoltage: {self.multi} (Venus v3.60, sha256 {sha256(original)}; the unpatched file is NOT a "
                      "known version)", out)
        line = MULTI_PY.splitlines().index("\t@property", MULTI_PY.splitlines().index("\tdef dc_current(self):")) + 1
        self.assertIn(f"edit 1 of 1 at line {line}:\n-\t@property\n-\tdef hub_voltage(self):\n"
                      "-\t\treturn self.monitor.get_value(self.service, '/Hub/ChargeVoltage')\n+\t@property\n", out)
        self.assertIn("+\t\treturn self.monitor.get_value(self.service, '/Hub/ChargeVoltage') or None\n", out)
        self.assertEqual(self.read(self.multi), original, "diff changes nothing")
        self.assertFalse(os.path.exists(self.accepted))

        rc, out, err = self.patches("accept", "hubvoltage", manifests=self.shipped)
        self.assertEqual(rc, 0, out + err)
        self.assertIn(f"hubvoltage: accepted {self.multi} (sha256 {sha256(original)})", out)
        self.assertEqual(self.read(self.multi), original, "accept changes nothing in the target")
        with open(self.accepted) as f:
            self.assertRegex(f.read(), rf"^hubvoltage {sha256(original)} accepted \d{{4}}-\d\d-\d\d for Venus v3.60\n$")
        self.assertEqual(self.svc_calls(), [])

        rc, out, err = self.patches("apply", "hubvoltage", manifests=self.shipped)
        self.assertEqual(rc, 0, out + err)
        self.assertIn(b"'/Hub/ChargeVoltage') or None\n", self.read(self.multi))
        rc, out, err = self.patches("verify", "hubvoltage", manifests=self.shipped)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("is a version accepted on this device", out)
        rc, out, err = self.patches("accept", "hubvoltage", manifests=self.shipped)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("is a version accepted on this device already", out)
        # The acceptance is for this patch only: the other patches of the same file still refuse it.
        rc, out, err = self.patches("apply", "fudgecurrent", manifests=self.shipped)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("is not a version this patch knows", err)

    def test_edits_that_do_not_fit_are_shown_and_not_accepted(self):
        # A layout where the property is written differently: the edit's text is not there.
        other = MULTI_PY.replace("\t\treturn self.monitor.get_value(self.service, '/Hub/ChargeVoltage')",
                                 "\t\treturn self._value('/Hub/ChargeVoltage')")
        self.write(self.multi, other)
        rc, out, err = self.patches("diff", "hubvoltage", manifests=self.shipped)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("edit 1 of 1: does not fit: the text to replace occurs 0 times (must be once):\n?\t@property\n", out)
        self.assertIn("hubvoltage: its edits do not fit", err)
        rc, out, err = self.patches("accept", "hubvoltage", manifests=self.shipped)
        self.assertEqual(rc, 1, out + err)
        self.assertIn(f"the edits do not fit {self.multi} (sha256 {sha256(other.encode())}", err)
        self.assertIn("not accepted", err)
        self.assertFalse(os.path.exists(self.accepted))
        self.assertEqual(self.read(self.multi), other.encode())

    def test_a_firmware_update_needs_a_new_acceptance_before_boot_patches_again(self):
        for action in ("accept", "apply"):
            rc, out, err = self.patches(action, "hubvoltage", manifests=self.shipped)
            self.assertEqual(rc, 0, out + err)
        newer = MULTI_PY.replace("class Multi", "# a later release\nclass Multi")
        self.write(self.multi, newer)
        rc, out, err = self.patches("boot", manifests=self.shipped)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("hubvoltage: skipped", err)
        self.assertIn("(review it with 'moat-victron patches diff hubvoltage')", err)
        self.assertEqual(self.read(self.multi), newer.encode(), "never patched blindly")
        rc, out, err = self.patches("diff", "hubvoltage", manifests=self.shipped)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("shown as a new unpatched file (a firmware update?)", err)
        self.assertIn(f"sha256 {sha256(newer.encode())}; the unpatched file is NOT a known version", out)
        rc, out, err = self.patches("accept", "hubvoltage", manifests=self.shipped)
        self.assertEqual(rc, 0, out + err)
        rc, out, err = self.patches("boot", manifests=self.shipped)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("hubvoltage: applied", out)
        self.assertEqual(self.read(self.backup("multi.py")), newer.encode(), "the new release is the backup now")
        with open(self.accepted) as f:
            self.assertEqual(len(f.read().splitlines()), 2, "both releases stay accepted")


class ReadOnlyRoot(PatchesCase):
    """A read-only root is simulated by a directory without write permission
    (a read-only bind mount needs privileges the CI container may lack);
    the remount script gives it back for the write and takes it away after."""

    def remount(self, fail=False):
        log = os.path.join(self.tmp, "remount.log")
        extra = 'exit 1\n' if fail else 'if [ "$1" = rw ]; then chmod u+w "$2"; else chmod u-w "$2"; fi\n'
        return self.script("remount", log, extra), log

    def test_remounted_rw_only_for_the_write_and_back_to_ro(self):
        script, log = self.remount()
        os.chmod(self.delegates, 0o555)
        rc, out, err = self.patches("apply", "hubvoltage", "--remount", script)
        self.assertEqual(rc, 0, out + err)
        self.assertIn(b"or None", self.read(self.multi))
        with open(log) as f:
            self.assertEqual(f.read().splitlines(), [f"rw {self.delegates}", f"ro {self.delegates}"])
        self.assertFalse(os.stat(self.delegates).st_mode & stat.S_IWUSR, "read-only again")
        # Already applied: no remount at all.
        rc, out, err = self.patches("apply", "hubvoltage", "--remount", script)
        self.assertEqual(rc, 0, out + err)
        with open(log) as f:
            self.assertEqual(len(f.read().splitlines()), 2)

    def test_a_writable_root_is_not_remounted(self):
        script, log = self.remount()
        rc, out, err = self.patches("apply", "hubvoltage", "--remount", script)
        self.assertEqual(rc, 0, out + err)
        self.assertFalse(os.path.exists(log))

    def test_a_remount_that_fails_changes_nothing(self):
        script, log = self.remount(fail=True)
        os.chmod(self.delegates, 0o555)
        rc, out, err = self.patches("apply", "hubvoltage", env_extra={"MOAT_PATCH_REMOUNT": script})
        self.assertEqual(rc, 1, out + err)
        self.assertIn(f"{self.delegates} is read-only and '{script} rw {self.delegates}' did not make it writable", err)
        self.assertEqual(self.read(self.multi), MULTI_PY.encode())
        self.assertFalse(os.path.exists(self.backup("multi.py")))
        self.assertEqual(self.svc_calls(), [])
        self.assertEqual(self.enabled(), [])


class Boot(PatchesCase):

    def test_boot_reapplies_the_enabled_patches_after_a_firmware_update(self):
        rc, out, err = self.patches("apply", "hubvoltage")
        self.assertEqual(rc, 0, out + err)
        patched = self.read(self.multi)
        rc, out, err = self.patches("boot")
        self.assertEqual(rc, 0, out + err)
        self.assertIn("already applied", out)
        self.assertEqual(len(self.svc_calls()), 1, "nothing changed, no restart")
        self.write(self.multi, MULTI_PY)  # a firmware update brought the same, known version
        rc, out, err = self.patches("boot")
        self.assertEqual(rc, 0, out + err)
        self.assertIn("hubvoltage: applied", out)
        self.assertEqual(self.read(self.multi), patched)
        self.assertEqual(len(self.svc_calls()), 2)
        self.assertNotIn("fudgecurrent", out, "only the enabled patches")
        self.write(self.multi, MULTI_PY_NEXT)  # a later release the manifest knows
        rc, out, err = self.patches("boot")
        self.assertEqual(rc, 0, out + err)
        self.assertIn("an unpatched known version again (a firmware update?)", err)
        self.assertIn("hubvoltage: applied", out)
        self.assertEqual(self.read(self.multi), MULTI_PY_NEXT.encode().replace(
            b"'/Hub/ChargeVoltage')\n", b"'/Hub/ChargeVoltage') or None\n").replace(
            b"\tdef hub_voltage(self):\n", b"\tdef hub_voltage(self):\n\t\t# moat-victron patch \"hubvoltage\": 0 V means "
            b"\"not set\" (a Multi that starts or is off)\n"))
        self.assertEqual(self.read(self.backup("multi.py")), MULTI_PY_NEXT.encode(), "the new release is the backup now")
        self.assertEqual(len(self.svc_calls()), 3)

    def test_boot_skips_an_unknown_version_and_logs_it(self):
        rc, out, err = self.patches("apply", "hubvoltage")
        self.assertEqual(rc, 0, out + err)
        newer = MULTI_PY.replace("class Multi", "# a release nobody checked\nclass Multi")
        self.write(self.multi, newer)
        rc, out, err = self.patches("boot")
        self.assertEqual(rc, 0, out + err)
        self.assertRegex(err, r"WARNING \[patches\] hubvoltage: skipped: .* is neither the copy in .* nor a known "
                              r"version")
        self.assertEqual(self.read(self.multi), newer.encode())
        self.assertEqual(len(self.svc_calls()), 1)

    def test_boot_with_nothing_enabled_does_nothing(self):
        rc, out, err = self.patches("boot")
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(self.svc_calls(), [])
        self.assertEqual(self.read(self.multi), MULTI_PY.encode())

    def test_a_failing_svc_is_reported(self):
        self.svc = self.script("svc-broken", self.svc_log, "exit 3\n")
        rc, out, err = self.patches("apply", "hubvoltage")
        self.assertEqual(rc, 1, out + err)
        self.assertIn("failed (exit 3): restart", err)
        self.assertIn(b"or None", self.read(self.multi))


if __name__ == "__main__":
    unittest.main()

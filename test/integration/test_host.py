"""Integration tests of the moat-victron host: the real build/moat-victron
against a private dbus-daemon, checked from independent clients (the recorder
service the test plugins report to, gdbus).

Run: cd test/integration && MOAT_BUILD_DIR=../../build MOAT_SOURCE_DIR=../.. python3 -m unittest -v test_host
"""

import os
import re
import shutil
import signal
import subprocess
import time
import unittest

from moattest import (BUILD_DIR, clock_table, HOST, NO_BUS, RECORDER_NAME, SOURCE_DIR, TEST_PLUGINS, env_without_bus,
                      HostProcess, HostTestCase, line_of, pid_alive, run_host, toml_string)

GOOD_KINDS = ["factory_throws", "fail_at_start", "fail_later", "stall", "stubborn", "throw_in_callback", "worker"]
BROKEN_KINDS = {
    "not_a_plugin": r"not a moat-victron plugin \(no moat_plugin_entry symbol\)",
    "wrong_abi": r"built for plugin ABI 3\.0, this host has 2\.0 \(moat SDK \S+\): rebuild the plugin",
    "abi_drift": r"built against moat SDK \S+ \(abi [0-9a-f]{16}\), this host is \S+ \(abi [0-9a-f]{16}\): rebuild the plugin",
    "wrong_kind": r"declares kind 'something_else' but is installed as 'wrong_kind'",
}
WORKER_KEYS = "recorder, label, tick_ms, gain, mode, verbose, log_ticks, names"




def worker(name, label, enabled=None, **keys):
    """An instance table of the worker plugin reporting to the recorder."""
    lines = [f"[{name}]", 'kind = "worker"', f"recorder = {toml_string(RECORDER_NAME)}", f"label = {toml_string(label)}",
             "tick_ms = 20"]
    if enabled is not None:
        lines.append(f"enabled = {'true' if enabled else 'false'}")
    lines += [f"{k} = {v}" for k, v in keys.items()]
    return "\n".join(lines) + "\n\n"


# ==========================================================================
# 1. --check-config

class CheckConfigTest(HostTestCase):
    """--check-config validates everything without the bus: run with no bus at all."""

    def check(self, path):
        return run_host(["--check-config", path], env=env_without_bus())

    def assert_refused(self, path, line, pattern):
        rc, out, err = self.check(path)
        expected = re.escape(f"{path}:{line}: ") + pattern
        self.assertEqual(rc, 3, f"exit code of --check-config\nstdout: {out}\nstderr: {err}")
        self.assertRegex(err, expected, f"the message must name FILE:LINE, instance and key\nstdout: {out}")
        self.assertNotIn(": OK", out)

    def test_valid_config_exits_0_without_a_bus(self):
        path = self.write_config(
            worker("a", "A", gain=2, mode='"manual"', verbose="true", names='["x", "y"]')
            + worker("b", "B", names="[]")
            + worker("off", "C", enabled=False)
            + '[f]\nkind = "fail_later"\nafter = 3600\n\n'
            + '[stubborn]\nignore_cancel = true\n\n'
            + '[broken_but_disabled]\nkind = "wrong_abi"\nenabled = false\n',
            bus=NO_BUS)
        rc, out, err = self.check(path)
        self.assertEqual(rc, 0, f"stdout: {out}\nstderr: {err}")
        self.assertIn(f"{path}: OK, 6 plugin instance(s)", out)
        for name, kind in [("a", "worker"), ("b", "worker"), ("f", "fail_later"), ("stubborn", "stubborn")]:
            self.assertRegex(out, rf"(?m)^  \[{name}\] kind {kind}$")
        self.assertRegex(out, r"(?m)^  \[off\] kind worker \(disabled\)$")
        self.assertRegex(out, r"(?m)^  \[broken_but_disabled\] kind wrong_abi \(disabled\)$")

    def test_system_bus_default_is_not_touched(self):
        # No bus key: the default "system" bus, which does not exist here.
        path = self.write_config(f"[host]\nplugin_dir = {toml_string(TEST_PLUGINS)}\n\n" + worker("a", "A"),
                                 header=False)
        rc, out, err = self.check(path)
        self.assertEqual(rc, 0, f"stdout: {out}\nstderr: {err}")

    def test_errors_name_file_line_instance_and_key(self):
        # (description, instance body, text on the offending line, expected message after "FILE:LINE: ")
        cases = [
            ("unknown key", worker("w", "x") + "speed = 3\n", "speed = 3",
             rf"\[w\] key 'speed': unknown key \(this plugin knows: {WORKER_KEYS}\)"),
            ("wrong type (string for number)", worker("w", "x") + 'gain = "high"\n', 'gain = "high"',
             r"\[w\] key 'gain': expected number, got a string"),
            ("wrong type (float for integer)", '[w]\nkind = "worker"\ntick_ms = 1.5\n', "tick_ms = 1.5",
             r"\[w\] key 'tick_ms': expected integer, got a floating-point number"),
            ("wrong type (list of strings)", '[w]\nkind = "worker"\nnames = ["a", 1]\n', "names =",
             r"\[w\] key 'names': expected list of strings, got an array"),
            ("wrong type (boolean)", '[w]\nkind = "worker"\nverbose = 1\n', "verbose = 1",
             r"\[w\] key 'verbose': expected boolean, got an integer"),
            ("integer out of range", '[w]\nkind = "worker"\n\ntick_ms = 0\n', "tick_ms = 0",
             r"\[w\] key 'tick_ms': 0 is out of range \[1, 60000\]"),
            ("number out of range", '[w]\nkind = "worker"\ngain = 10.5\n', "gain = 10.5",
             r"\[w\] key 'gain': 10\.5 is out of range \[0, 10\]"),
            ("bad choice", '[w]\nkind = "worker"\nmode = "fast"\n', 'mode = "fast"',
             r"\[w\] key 'mode': 'fast' is not one of auto\|manual"),
            ("enabled = \"yes\"", '[w]\nkind = "worker"\nenabled = "yes"\n', 'enabled = "yes"',
             r"\[w\] key 'enabled': expected boolean"),
            ("kind not a string", "[w]\nkind = 3\n", "kind = 3",
             r"\[w\] key 'kind': expected a plugin kind"),
            ("unknown plugin kind (kind key)", '[w]\nlabel = "x"\nkind = "nosuch"\n', 'kind = "nosuch"',
             re.escape(f"[w] plugin {TEST_PLUGINS}/nosuch.so: no such file") + r".*spelled right"),
            ("unknown plugin kind (table name)", "[nosuch]\n", "[nosuch]",
             re.escape(f"[nosuch] plugin {TEST_PLUGINS}/nosuch.so: no such file")),
            ("error in the second of two instances", worker("ok", "fine") + worker("w2", "x") + "gain = -1\n",
             "gain = -1", r"\[w2\] key 'gain': -1 is out of range \[0, 10\]"),
        ]
        # top-level keys: before the [host] table
        top_cases = [
            ("inline table", 'w = { kind = "worker", tick_ms = -5 }\n', "w = {",
             r"\[w\] key 'tick_ms': -5 is out of range \[1, 60000\]"),
            ("value where a table is expected", '# a comment\n\nstray = 1\n', "stray = 1",
             r"key 'stray': expected a table \[stray\] for a plugin instance, got a value"),
        ]
        host_cases = [
            ("[host] unknown key", "colour = 1\n", "colour = 1", r"\[host\] key 'colour': unknown key"),
            ("[host] wrong type", 'stop_timeout = "fast"\n', "stop_timeout =",
             r"\[host\] key 'stop_timeout': expected number, got a string"),
            ("[host] out of range", "stop_timeout = 0\n", "stop_timeout = 0",
             r"\[host\] key 'stop_timeout': 0 is out of range \[0\.1, 60\]"),
            ("[host] bad choice", 'log_level = "loud"\n', "log_level =",
             r"\[host\] key 'log_level': 'loud' is not one of debug\|info\|warning\|error"),
            ("[host] empty bus", 'bus = ""\n', 'bus = ""', r"\[host\] key 'bus': must not be empty"),
        ]
        for i, (what, body, needle, expected) in enumerate(cases):
            with self.subTest(what):
                path = self.write_config(body, name=f"case{i}.toml", bus=NO_BUS)
                self.assert_refused(path, line_of(path, needle), expected)
        for i, (what, top, needle, expected) in enumerate(top_cases):
            with self.subTest(what):
                path = self.write_config(top + "\n" + self.host_header(bus=NO_BUS), name=f"top{i}.toml",
                                         header=False)
                self.assert_refused(path, line_of(path, needle), expected)
        for i, (what, extra, needle, expected) in enumerate(host_cases):
            with self.subTest(what):
                path = os.path.join(self.tmp, f"host{i}.toml")
                with open(path, "w") as f:
                    f.write(f"# comment\n[host]\nplugin_dir = {toml_string(TEST_PLUGINS)}\n\n{extra}")
                self.assert_refused(path, line_of(path, needle), expected)

    def test_broken_toml_syntax(self):
        path = self.write_config(worker("a", "A") + '[b]\nkind = "worker"\nlabel = "unterminated\ntick_ms = 5\n',
                                 bus=NO_BUS)
        rc, out, err = self.check(path)
        self.assertEqual(rc, 3, f"stdout: {out}\nstderr: {err}")
        self.assertRegex(err, re.escape(f"{path}:{line_of(path, 'unterminated')}:") + r"\d+: TOML syntax error")

    def test_missing_file(self):
        path = os.path.join(self.tmp, "absent.toml")
        rc, out, err = self.check(path)
        self.assertEqual(rc, 3, f"stdout: {out}\nstderr: {err}")
        self.assertIn(path, err)

    def test_run_refuses_a_bad_config_before_opening_the_bus(self):
        # Running (not only checking) a bad config: exit 3, not 4 (the bus is unreachable).
        path = self.write_config('[w]\nkind = "worker"\nmode = "fast"\n', bus=NO_BUS)
        h = HostProcess(["--config", path], env=env_without_bus())
        self.addCleanup(h.stop)
        rc, _ = h.wait(10)
        self.assertEqual(rc, 3, h.describe())
        self.assertIn(f"{path}:{line_of(path, 'mode =')}: [w] key 'mode': 'fast' is not one of auto|manual", h.log)


# ==========================================================================
# 2. Loader refusals

class LoaderTest(HostTestCase):

    def refused(self, kind_line, plugin_dir=TEST_PLUGINS, needle=None):
        path = self.write_config(f"[p]\n{kind_line}\n", bus=NO_BUS, plugin_dir=plugin_dir)
        rc, out, err = run_host(["--check-config", path], env=env_without_bus())
        self.assertEqual(rc, 3, f"stdout: {out}\nstderr: {err}")
        line = line_of(path, needle or kind_line)
        self.assertIn(f"{path}:{line}: [p] ", err)
        return err

    def private_plugin_dir(self, kinds=("fail_later",)):
        d = os.path.join(self.tmp, "plugins")
        os.mkdir(d, 0o755)
        os.chmod(d, 0o755)
        for k in kinds:
            shutil.copy(os.path.join(TEST_PLUGINS, f"{k}.so"), d)
            os.chmod(os.path.join(d, f"{k}.so"), 0o755)
        return d

    def test_broken_plugins_are_refused_with_the_reason(self):
        for kind, reason in BROKEN_KINDS.items():
            with self.subTest(kind):
                err = self.refused(f'kind = "{kind}"')
                self.assertRegex(err, re.escape(f"plugin {TEST_PLUGINS}/{kind}.so: ") + reason)

    def test_kind_with_slash_or_dotdot_is_refused(self):
        for kind in ["sub/worker", "../test-plugins/worker", "..worker", "/usr/lib/x"]:
            with self.subTest(kind):
                err = self.refused(f"kind = {toml_string(kind)}")
                self.assertIn(f"plugin kind '{kind}' refused: a kind is a plain name without '/' or '..'", err)

    def test_plugin_dir_missing(self):
        d = os.path.join(self.tmp, "nowhere")
        err = self.refused('kind = "worker"', plugin_dir=d)
        self.assertIn(f"the plugin directory {d} does not exist", err)

    def test_group_or_world_writable_file_is_refused(self):
        d = self.private_plugin_dir()
        so = os.path.join(d, "fail_later.so")
        # the copy itself loads
        path = self.write_config('[p]\nkind = "fail_later"\n', bus=NO_BUS, plugin_dir=d)
        rc, out, err = run_host(["--check-config", path], env=env_without_bus())
        self.assertEqual(rc, 0, f"the private copy must load: {out}{err}")
        for mode, who in [(0o775, "its group"), (0o757, "everyone"), (0o666, "everyone")]:
            with self.subTest(mode=oct(mode)):
                os.chmod(so, mode)
                err = self.refused('kind = "fail_later"', plugin_dir=d)
                self.assertIn(f"plugin {so}: refused: the file is writable by {who} (mode {mode:o}); run chmod go-w",
                              err)
        os.chmod(so, 0o755)

    def test_writable_plugin_directory_is_refused(self):
        d = self.private_plugin_dir()
        os.chmod(d, 0o777)
        err = self.refused('kind = "fail_later"', plugin_dir=d)
        self.assertIn(f"plugin {d}/fail_later.so: refused: its directory {d} is writable by everyone (mode 777)", err)

    def test_file_or_directory_owned_by_another_user_is_refused(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to chown a plugin to another user")
        d = self.private_plugin_dir()
        so = os.path.join(d, "fail_later.so")
        os.chown(so, 65534, 65534)
        err = self.refused('kind = "fail_later"', plugin_dir=d)
        self.assertIn(f"plugin {so}: refused: the file is owned by uid 65534, not by us (uid 0) or root", err)
        os.chown(so, 0, 0)
        os.chown(d, 65534, 65534)
        err = self.refused('kind = "fail_later"', plugin_dir=d)
        self.assertIn(f"refused: its directory {d} is owned by uid 65534", err)

    def test_run_with_a_refused_plugin_exits_3(self):
        path = self.write_config('[p]\nkind = "wrong_abi"\n', bus=NO_BUS)
        h = HostProcess(["--config", path], env=env_without_bus())
        self.addCleanup(h.stop)
        rc, _ = h.wait(10)
        self.assertEqual(rc, 3, h.describe())
        self.assertIn(f"{path}:{line_of(path, 'kind =')}: [p] plugin {TEST_PLUGINS}/wrong_abi.so: built for plugin ABI", h.log)


# ==========================================================================
# 3. The other command-line modes

class CommandLineTest(HostTestCase):

    def test_list_plugins(self):
        rc, out, err = run_host(["--list-plugins", "--plugin-dir", TEST_PLUGINS])
        self.assertEqual(rc, 3, f"some plugins are broken: exit 3\nstdout: {out}\nstderr: {err}")
        self.assertIn(f"plugin path: {TEST_PLUGINS}, {BUILD_DIR}/plugins\n", out)
        for kind in GOOD_KINDS:
            with self.subTest(kind):
                self.assertRegex(out, rf"(?m)^  {kind}\s+1\.0\s+test: ")
        for kind, reason in BROKEN_KINDS.items():
            with self.subTest(kind):
                self.assertRegex(out, rf"(?m)^  {kind}\s+-\s+NOT LOADABLE: plugin {re.escape(TEST_PLUGINS)}/{kind}\.so: "
                                 + reason)
        # Each kind once, sorted, with the file it was found in; the built-in ones after --plugin-dir's.
        listed = re.findall(r"(?m)^  (\S+)\s", out)
        self.assertEqual(listed, sorted(set(listed)))
        self.assertTrue(set(GOOD_KINDS + list(BROKEN_KINDS)) <= set(listed), listed)
        self.assertRegex(out, rf"(?m)^  worker .*\n\s+{re.escape(TEST_PLUGINS)}/worker\.so$")
        self.assertRegex(out, rf"(?m)^  statusline .*\[command: status\]\n\s+{re.escape(BUILD_DIR)}/plugins/statusline\.so$")

    def test_list_plugins_all_good_exits_0(self):
        d = os.path.join(self.tmp, "good")
        os.mkdir(d)
        os.chmod(d, 0o755)
        for k in ("worker", "stubborn"):
            shutil.copy(os.path.join(TEST_PLUGINS, f"{k}.so"), d)
        rc, out, err = run_host(["--list-plugins", "--plugin-dir", d])
        self.assertEqual(rc, 0, f"stdout: {out}\nstderr: {err}")
        self.assertRegex(out, r"(?m)^  stubborn\s+1\.0\s+test: safe state never finishes$")
        self.assertRegex(out, r"(?m)^  worker\s+1\.0\s+test: behaves well$")
        # A file whose plugin_dir replaces the built-in directory with an empty one.
        empty = os.path.join(self.tmp, "empty")
        os.mkdir(empty)
        config = self.write_config("", plugin_dir=empty)
        rc, out, err = run_host(["--list-plugins", "--config", config])
        self.assertEqual(rc, 3, f"stdout: {out}\nstderr: {err}")
        self.assertIn(f"no plugins in the plugin path {empty}", err)

    def test_help_plugin_worker(self):
        rc, out, err = run_host(["--help-plugin", "worker", "--plugin-dir", TEST_PLUGINS])
        self.assertEqual(rc, 0, f"stdout: {out}\nstderr: {err}")
        self.assertIn("worker 1.0 — test: behaves well", out)
        self.assertIn("restarted with back-off when it fails", out)
        self.assertIn(f"file: {TEST_PLUGINS}/worker.so", out)
        rows = {
            "enabled": r"boolean\s+true\s+run this instance",
            "kind": r"string\s+\(table name\)",
            "recorder": r'string\s+""\s+bus name of the test',
            "label": r'string\s+""\s+free text',
            "tick_ms": r"integer\s+100\s+\[1 \.\. 60000\] tick period",
            "gain": r"number\s+1\.5\s+\[0 \.\. 10\] a number with a range",
            "mode": r'string\s+"auto"\s+\[auto\|manual\] a choice',
            "verbose": r"boolean\s+false\s+a boolean",
            "names": r"list of strings\s+\[\]\s+a list of strings",
        }
        for key, rx in rows.items():
            with self.subTest(key):
                self.assertRegex(out, rf"(?m)^  {key}\s+{rx}")

    def test_help_plugin_restartability_and_errors(self):
        rc, out, err = run_host(["--help-plugin", "fail_at_start", "--plugin-dir", TEST_PLUGINS])
        self.assertEqual(rc, 0, f"stdout: {out}\nstderr: {err}")
        self.assertIn("not restarted when it fails", out)
        rc, out, err = run_host(["--help-plugin", "wrong_abi", "--plugin-dir", TEST_PLUGINS])
        self.assertEqual(rc, 3, f"stdout: {out}\nstderr: {err}")
        self.assertRegex(err, re.escape(f"plugin {TEST_PLUGINS}/wrong_abi.so: ") + BROKEN_KINDS["wrong_abi"])
        rc, out, err = run_host(["--help-plugin", "nosuch", "--plugin-dir", TEST_PLUGINS])
        self.assertEqual(rc, 3, f"stdout: {out}\nstderr: {err}")
        self.assertIn(f"plugin 'nosuch': no nosuch.so in the plugin path {TEST_PLUGINS}, {BUILD_DIR}/plugins", err)

    def test_help_plugin_host(self):
        rc, out, err = run_host(["--help-plugin", "host"])
        self.assertEqual(rc, 0, f"stdout: {out}\nstderr: {err}")
        rows = {
            "bus": r'string\s+"system"\s+D-Bus to use',
            "plugin_dir": r'string\s+""\s+directory with the plugin',
            "log_level": r'string\s+"info"\s+\[debug\|info\|warning\|error\]',
            "log_timestamps": r"boolean\s+false\s+prefix log lines",
            "restart_delay": r"number\s+1\.0\s+\[0 \.\. 3600\]",
            "restart_max_delay": r"number\s+60\.0\s+\[0 \.\. 86400\]",
            "restart_factor": r"number\s+2\.0\s+\[1 \.\. 100\]",
            "restart_reset_after": r"number\s+60\.0\s+\[0 \.\. 86400\]",
            "watchdog": r"number\s+30\.0\s+\[0 \.\. 3600\].*0 = off",
            "stop_timeout": r"number\s+3\.0\s+\[0\.1 \.\. 60\]",
        }
        for key, rx in rows.items():
            with self.subTest(key):
                self.assertRegex(out, rf"(?m)^  {key}\s+{rx}")

    def test_version(self):
        with open(os.path.join(SOURCE_DIR, "CMakeLists.txt")) as f:
            version = re.search(r"project\(moat-victron VERSION (\S+)", f.read()).group(1)
        rc, out, err = run_host(["--version"])
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, rf"^moat-victron {re.escape(version)} \(moat SDK {re.escape(version)}, abi [0-9a-f]{{16}}; "
                              r"plugin descriptor 2\.0\)\n$")

    def test_help(self):
        rc, out, err = run_host(["--help"])
        self.assertEqual(rc, 0, err)
        self.assertTrue(out.startswith("Usage: moat-victron [OPTIONS]"), out)
        for opt in ["--config", "--check-config", "--bus", "--plugin-dir", "--log-level", "--log-timestamps",
                    "--demo", "--list-plugins", "--help-plugin", "--version", "--help"]:
            self.assertRegex(out, rf"(?m)^  {opt}\b")
        for code in range(7):
            self.assertRegex(out, rf"(?m)\b{code}  \S")
        rc2, out2, _ = run_host(["-h"])
        self.assertEqual((rc2, out2), (0, out))

    def test_bad_command_lines_exit_2(self):
        cases = [
            (["--bogus"], "unknown option '--bogus'"),
            (["config.toml"], f"unknown command 'config.toml': no plugin in the plugin path {BUILD_DIR}/plugins brings "
                              "it (commands found: guard, patches, inverter, moat-bms, status)"),
            (["status", "--bogus"], "moat-victron status: unknown option '--bogus'"),
            (["status", "--interval", "0"], "--interval takes seconds from 0.05 to 3600, not '0'"),
            (["--config"], "--config needs a value"),
            (["--log-level", "loud"], "unknown log level 'loud'"),
            (["--help-plugin"], "--help-plugin needs a value"),
        ]
        for args, msg in cases:
            with self.subTest(args=args):
                rc, out, err = run_host(args, env=env_without_bus())
                self.assertEqual(rc, 2, f"stdout: {out}\nstderr: {err}")
                self.assertIn(msg, err)
                self.assertRegex(err, r"Try 'moat-victron (status )?--help'\.")


# ==========================================================================
# 4.-9. The running host

class RunningHostTest(HostTestCase):

    def start_with(self, body, **host_keys):
        """Bus, recorder, config, host; returns (host, config path)."""
        self.start_recorder()
        path = self.write_config(body, **host_keys)
        return self.start_host(path), path

    def wait_events(self, host, instance, expected, timeout=5.0):
        """Wait until `instance` reported at least the events `expected` (in order, as a prefix)."""
        self.wait_until(f"{instance} reports {expected}",
                        lambda: self.recorder.events(instance)[:len(expected)] == expected, timeout, host)

    # -- 4. SIGTERM / SIGINT -------------------------------------------------

    def stop_two_workers(self, sig, name):
        stop_timeout = 2.0
        h, _ = self.start_with(worker("a", "A") + worker("b", "B"), stop_timeout=stop_timeout)
        self.wait_events(h, "a", ["started A"])
        self.wait_events(h, "b", ["started B"])
        sent = time.monotonic()
        h.signal(sig)
        rc, ended = h.wait(stop_timeout + 3)
        self.assertEqual(rc, 0, h.describe())
        self.assertLess(ended - sent, stop_timeout, h.describe())
        self.assertEqual(self.recorder.events("a"), ["started A", "safe"], self.context(h))
        self.assertEqual(self.recorder.events("b"), ["started B", "safe"], self.context(h))
        self.assertIn(f"INFO [host] stopping ({name})", h.log)
        self.assertIn("INFO [a] safe state reached", h.log)
        self.assertIn("INFO [b] safe state reached", h.log)
        self.assertIn("INFO [host] stopped", h.log)

    def test_sigterm_runs_every_safe_state_then_exits_0(self):
        self.stop_two_workers(signal.SIGTERM, "Terminated")

    def test_sigint_runs_every_safe_state_then_exits_0(self):
        self.stop_two_workers(signal.SIGINT, "Interrupt")

    # -- 5. stubborn safe states ---------------------------------------------

    def test_second_signal_while_in_safe_state_exits_6_at_once(self):
        h, _ = self.start_with('[s]\nkind = "stubborn"\nrecorder = "org.moat.test.Recorder"\n', stop_timeout=5.0)
        self.wait_events(h, "s", ["started"])
        mark = h.mark()
        h.signal(signal.SIGTERM)
        h.wait_for(r"\[host\] stopping \(Terminated\)", 3, since=mark)
        self.wait_events(h, "s", ["started", "in safe state"])
        self.assertTrue(h.running(), "the stubborn safe state must keep the host stopping\n" + h.describe())
        sent = time.monotonic()
        h.signal(signal.SIGTERM)
        rc, ended = h.wait(3)
        self.assertEqual(rc, 6, h.describe())
        self.assertLess(ended - sent, 1.0, h.describe())
        self.assertIn("Terminated again while stopping: exiting at once", h.log)

    def test_stop_deadline_abandons_a_safe_state_and_exits_0(self):
        stop_timeout = 1.0
        h, _ = self.start_with('[s]\nkind = "stubborn"\nrecorder = "org.moat.test.Recorder"\n\n' + worker("w", "W"),
                               stop_timeout=stop_timeout)
        self.wait_events(h, "s", ["started"])
        self.wait_events(h, "w", ["started W"])
        sent = time.monotonic()
        h.signal(signal.SIGTERM)
        rc, ended = h.wait(stop_timeout + 4)
        self.assertEqual(rc, 0, h.describe())
        self.assertGreater(ended - sent, stop_timeout * 0.9, h.describe())
        self.assertLess(ended - sent, stop_timeout + 1.0, h.describe())
        self.assertIn("ERROR [s] safe state did not complete before the 1 s deadline; abandoned", h.log)
        self.assertEqual(self.recorder.events("w"), ["started W", "safe"], self.context(h))
        self.assertNotIn("plugins did not stop in time", h.log)

    def test_backstop_exits_6_when_a_safe_state_ignores_cancellation(self):
        # The safe state swallows the cancellation and blocks: only the
        # backstop (stop_timeout + 2 s) can end the host. The loop watchdog is
        # off so that it cannot stand in for the backstop.
        stop_timeout = 0.5
        h, _ = self.start_with('[s]\nkind = "stubborn"\nrecorder = "org.moat.test.Recorder"\nignore_cancel = true\n',
                               stop_timeout=stop_timeout, watchdog=0)
        self.wait_events(h, "s", ["started"])
        sent = time.monotonic()
        h.signal(signal.SIGTERM)
        rc, ended = h.wait(stop_timeout + 2 + 1.5)
        self.assertEqual(rc, 6, h.describe())
        self.assertLess(ended - sent, stop_timeout + 2 + 1.0, h.describe())
        self.assertIn("plugins did not stop in time (s); exiting anyway", h.log)

    def test_second_signal_exits_6_even_when_a_safe_state_blocks(self):
        # --help: "a second one exits at once", also while a safe state blocks the loop.
        # The second signal comes after the stop deadline (the safe state has
        # been cancelled and now blocks) but before the backstop would fire.
        stop_timeout = 0.5
        h, _ = self.start_with('[s]\nkind = "stubborn"\nrecorder = "org.moat.test.Recorder"\nignore_cancel = true\n',
                               stop_timeout=stop_timeout, watchdog=0)
        self.wait_events(h, "s", ["started"])
        mark = h.mark()
        h.signal(signal.SIGTERM)
        h.wait_for(r"\[host\] stopping \(Terminated\)", 3, since=mark)
        # the deadline cancelled the safe state, which swallowed it and now blocks the loop
        h.wait_for(r"\[s\] safe state cancelled: ignoring it and blocking", stop_timeout + 3, since=mark)
        self.assertTrue(h.running(), h.describe())
        sent = time.monotonic()
        h.signal(signal.SIGTERM)
        rc, ended = h.wait(1.5)
        self.assertEqual(rc, 6, h.describe())
        self.assertLess(ended - sent, 1.0, h.describe())
        self.assertIn("Terminated again while stopping: exiting at once", h.log)

    # -- 6. supervision --------------------------------------------------------

    def test_supervision_restarts_with_back_off_and_leaves_others_alone(self):
        rec = 'recorder = "org.moat.test.Recorder"\n'
        h, _ = self.start_with(
            worker("w", "W")
            + f'[fl]\nkind = "fail_later"\n{rec}after = 0.2\n\n'
            + f'[fas]\nkind = "fail_at_start"\n{rec}\n'
            + '[ft]\nkind = "factory_throws"\n',
            restart_delay=0.2, restart_factor=1.5, restart_max_delay=1.0, stop_timeout=1.0)
        self.wait_until("fail_later started 3 times",
                        lambda: self.recorder.events("fl").count("started") >= 3, 6, h)
        h.wait_for(r"\[ft\] restarting in", 3)
        # fail_later: each failure is followed by its safe state before the next start
        fl = self.recorder.events("fl")
        for i, e in enumerate(fl):
            self.assertEqual(e, "started" if i % 2 == 0 else "safe", f"fail_later events out of order: {fl}")
        delays = [float(m.group(1)) for m in h.find_all(r"WARNING \[fl\] restarting in ([0-9.]+) s")]
        self.assertGreaterEqual(len(delays), 2, h.describe())
        self.assertEqual(delays[:3], [0.2, 0.3, 0.45][:len(delays[:3])], f"back-off\n{h.describe()}")
        # every safe state followed a logged failure (the log is read after the records)
        failures = len(h.find_all(r"ERROR \[fl\] failed: deliberate failure after running a while"))
        self.assertIn(failures, (fl.count("safe"), fl.count("safe") + 1), h.describe())
        # fail_at_start: failed once, ran its safe state, not restarted
        self.assertEqual(len(h.find_all(r"ERROR \[fas\] failed: deliberate failure at start")), 1, h.describe())
        self.assertIn("ERROR [fas] this plugin is not restartable: it stays stopped until the configuration is "
                      "reloaded", h.log)
        self.assertIsNone(h.find(r"\[fas\] restarting"), h.describe())
        self.assertEqual(self.recorder.events("fas"), ["safe"], self.context(h))
        # factory_throws: the file named, restarted
        self.assertIn(f"ERROR [ft] failed: cannot start: the factory of {TEST_PLUGINS}/factory_throws.so threw: "
                      "deliberate failure in the constructor", h.log)
        self.wait_until("factory_throws restarted twice",
                        lambda: len(h.find_all(r"ERROR \[ft\] failed: cannot start")) >= 2, 3, h)
        # the worker kept running untouched
        self.assertEqual(self.recorder.events("w"), ["started W"], self.context(h))
        self.assertEqual(len(h.find_all(r"\[w\] started \(worker 1\.0\)")), 1, h.describe())
        h.signal(signal.SIGTERM)
        rc, _ = h.wait(5)
        self.assertEqual(rc, 0, h.describe())
        self.assertEqual(self.recorder.events("w"), ["started W", "safe"], self.context(h))
        self.assertEqual(self.recorder.events("fas"), ["safe"], self.context(h))

    # -- 7. SIGHUP reload ------------------------------------------------------

    def test_sighup_reload(self):
        e_table = worker("e", "E")
        # A clock in the host: its logged ticks bound every "nothing happened" below
        # by the host's own time, not by a sleep of the test's.
        clock = clock_table()

        def quiet_for_ticks(since, ticks=4):
            h.wait_ticks(ticks, since)

        h, path = self.start_with(worker("a", "A") + worker("b", "B1") + worker("c", "C", enabled=False) + e_table
                                  + clock)
        for name, label in [("a", "A"), ("b", "B1"), ("e", "E")]:
            self.wait_events(h, name, [f"started {label}"])
        self.assertIn("INFO [host] [c] disabled", h.log)

        # e moves to the top, unchanged; a removed; b changed; c enabled; d new
        self.write_config(e_table + worker("b", "B2") + worker("c", "C", enabled=True) + worker("d", "D") + clock)
        mark = h.mark()
        h.signal(signal.SIGHUP)
        h.wait_for(r"\[host\] configuration reloaded: 5 plugin instance\(s\) running", 5, since=mark)
        self.wait_events(h, "b", ["started B1", "safe", "started B2"])
        self.wait_events(h, "c", ["started C"])
        self.wait_events(h, "d", ["started D"])
        quiet_for_ticks(h.mark())  # anything wrong (a failure, e restarting) would show by now
        self.assertIsNone(h.find(r"failed|restarting|\[(e|clock)\] stopping", mark), h.describe())
        expected = {"a": ["started A", "safe"], "b": ["started B1", "safe", "started B2"], "c": ["started C"],
                    "d": ["started D"], "e": ["started E"]}
        for name, events in expected.items():
            self.assertEqual(self.recorder.events(name), events, f"[{name}]\n{self.context(h)}")
        self.assertIsNotNone(h.find(r"\[a\] stopping: removed from the configuration", mark), h.describe())
        self.assertIsNotNone(h.find(r"\[b\] stopping: configuration changed", mark), h.describe())
        self.assertIsNone(h.find(r"\[e\] stopping", mark), h.describe())
        self.assertTrue(h.running(), h.describe())

        # the same file again: nothing restarts
        before = self.recorder.records()
        mark = h.mark()
        h.signal(signal.SIGHUP)
        h.wait_for(r"\[host\] configuration reloaded: 5 plugin instance\(s\) running", 5, since=mark)
        quiet_for_ticks(mark)
        self.assertEqual(self.recorder.records(), before, h.describe())
        self.assertIsNone(h.find(r"stopping|started \(", mark), h.describe())

        # broken files: reported with file:line, nothing applied, nothing touched
        with open(path) as f:
            good = f.read()
        broken = [
            (good.replace("tick_ms = 20", "tick_ms = 0", 2), "tick_ms = 0", r"\[[eb]\] key 'tick_ms': 0 is out of range"),
            (good + "[x]\nkind = 'worker'\nlabel = \"open\n", 'label = "open', r"\d+: TOML syntax error"),
            (good.replace('label = "D"', 'label = "D"\nspeed = 1'), "speed = 1", r"\[d\] key 'speed': unknown key"),
        ]
        for text, needle, reason in broken:
            with open(path + ".new", "w") as f:
                f.write(text)
            os.replace(path + ".new", path)
            mark = h.mark()
            h.signal(signal.SIGHUP)
            m, _ = h.wait_for(r"the new configuration was not applied", 5, since=mark)
            self.assertIsNotNone(h.find(re.escape(f"ERROR [host] {path}:{line_of(path, needle)}:") + r"\s?" + reason,
                                        mark), h.describe())
            quiet_for_ticks(mark)
            self.assertEqual(self.recorder.records(), before, h.describe())
            self.assertTrue(h.running(), h.describe())
            self.assertIsNone(h.find(r"stopping|started \(", mark), h.describe())

        h.signal(signal.SIGTERM)
        rc, _ = h.wait(5)
        self.assertEqual(rc, 0, h.describe())
        for name in "bcde":
            self.assertEqual(self.recorder.events(name)[-1], "safe", f"[{name}]\n{self.context(h)}")
        self.assertEqual(self.recorder.events("a"), ["started A", "safe"], self.context(h))

    # -- 8. lost bus -----------------------------------------------------------

    def test_lost_bus_exits_4(self):
        h, _ = self.start_with(worker("w", "W") + '[fl]\nkind = "fail_later"\nrecorder = "org.moat.test.Recorder"\n'
                               'after = 3600\n', stop_timeout=1.0)
        self.wait_events(h, "w", ["started W"])
        self.wait_events(h, "fl", ["started"])
        killed = time.monotonic()
        self.bus.kill()
        rc, ended = h.wait(5)
        self.assertEqual(rc, 4, h.describe())
        self.assertLess(ended - killed, 2.5, h.describe())
        self.assertRegex(h.log, r"ERROR \[host/bus\] lost the D-Bus connection \(.+\)")
        self.assertIn("[host] stopping (D-Bus connection lost", h.log)

    def test_unreachable_bus_exits_4(self):
        path = self.write_config(worker("w", "W"), bus=NO_BUS)
        h = self.start_host(path)
        rc, _ = h.wait(10)
        self.assertEqual(rc, 4, h.describe())
        self.assertIn(f"cannot connect to the D-Bus bus at {NO_BUS}", h.log)

    # -- 9. loop watchdog --------------------------------------------------------

    def test_loop_watchdog_exits_5_and_names_the_instance(self):
        self.start_bus()
        path = self.write_config('[staller]\nkind = "stall"\nafter = 0.2\nblock_seconds = 5\n', watchdog=1.0)
        h = self.start_host(path)
        h.wait_for(r"\[staller\] blocking the loop now", 5)
        rc, _ = h.wait(6)
        self.assertEqual(rc, 5, h.describe())
        # Not early: the host says how long the loop stalled (its own clock, not
        # this process's polling); not late: the 5 s block had not ended.
        h.wait_for_in_order([r"\[staller\] blocking the loop now",
                             r"ERROR \[host\] loop watchdog: the event loop stalled for more than 1 s while "
                             r"running 'staller'"], 1)
        self.assertNotIn("[staller] unblocked", h.log)


# ==========================================================================
# 10. --demo

class DemoTest(HostTestCase):

    def test_demo_runs_its_own_bus_and_cleans_up(self):
        h = HostProcess(["--demo"], log_path=os.path.join(self.tmp, "demo.log"), env=env_without_bus())
        self.addCleanup(h.stop)
        m, _ = h.wait_for(r"demo: private dbus-daemon \(pid (\d+)\) at (\S+)", 10)
        pid, address = int(m.group(1)), m.group(2)
        self.addCleanup(lambda: pid_alive(pid) and os.kill(pid, signal.SIGKILL))
        m2, _ = h.wait_for(r"\[host\] moat-victron \S+ on the .* bus as (:\S+),", 10)
        unique = m2.group(1)
        self.assertTrue(pid_alive(pid), f"the demo's dbus-daemon {pid} must run\n{h.describe()}")
        r = subprocess.run(["gdbus", "call", "--address", address, "--dest", "org.freedesktop.DBus",
                            "--object-path", "/org/freedesktop/DBus", "--method", "org.freedesktop.DBus.ListNames"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0, f"gdbus: {r.stdout}{r.stderr}\n{h.describe()}")
        self.assertIn("'org.freedesktop.DBus'", r.stdout)
        self.assertIn(f"'{unique}'", r.stdout, "the host is connected to the demo bus")
        sent = time.monotonic()
        h.signal(signal.SIGINT)
        rc, ended = h.wait(6)
        self.assertEqual(rc, 0, h.describe())
        self.assertLess(ended - sent, 4.0, h.describe())
        self.assertFalse(pid_alive(pid), f"the demo's dbus-daemon {pid} outlived the host\n{h.describe()}")
        sock = re.match(r"unix:path=([^,]+)", address)
        if sock:
            self.assertFalse(os.path.exists(os.path.dirname(sock.group(1))),
                             f"the demo's socket directory is left behind\n{h.describe()}")


if __name__ == "__main__":
    unittest.main(verbosity=2)

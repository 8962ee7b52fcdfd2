"""Error boundaries of the host: an exception in a plugin's posted function or
timer callback fails that instance only (safe state, restart); a plugin's
validate() that throws something else than a ConfigError is a configuration
error at start and in --check-config, and leaves a SIGHUP reload unapplied.

Run: cd test/integration && MOAT_BUILD_DIR=../../build MOAT_SOURCE_DIR=../.. python3 -m unittest -v test_error_boundaries
"""

import os
import re
import signal
import unittest

from moattest import (NO_BUS, RECORDER_NAME, TEST_PLUGINS, env_without_bus, HostTestCase, line_of, run_host,
                      toml_string)

REC = f"recorder = {toml_string(RECORDER_NAME)}"




class CallbackFailureTest(HostTestCase):

    def fails_and_restarts(self, key, where):
        self.start_recorder()
        path = self.write_config(f'[boom]\nkind = "throw_in_callback"\n{REC}\nwhere = "{key}"\nafter = 0.1\n\n'
                                 f'[w]\nkind = "fail_later"\n{REC}\nafter = 3600\n', restart_delay=0.1)
        h = self.start_host(path)
        # started, failed through the callback, safe state, started again
        self.wait_until("boom restarted after its safe state",
                        lambda: self.recorder.events("boom")[:3] == ["started", "safe", "started"], 10, h)
        self.assertRegex(h.log, rf"ERROR \[boom\] an exception escaped a {where}: deliberate failure in a callback")
        self.assertRegex(h.log, r"ERROR \[boom\] failed: deliberate failure in a callback")
        # the other instance was not touched; the host still runs
        self.assertEqual(self.recorder.events("w"), ["started"], self.context(h))
        self.assertTrue(h.running(), h.describe())
        self.assertNotIn("internal error", h.log)
        h.signal(signal.SIGTERM)
        rc, _ = h.wait(10)
        self.assertEqual(rc, 0, h.describe())
        self.assertEqual(self.recorder.events("w"), ["started", "safe"], self.context(h))

    def test_posted_function_fails_only_its_instance(self):
        self.fails_and_restarts("post", "posted function")

    def test_timer_callback_fails_only_its_instance(self):
        self.fails_and_restarts("timer", "timer callback")


class CoreCallbackFailureTest(HostTestCase):
    """An exception escaping a callback of the host's own code (MOAT_FAULT=host:reload):
    logged with what posted it, every safe state runs, exit 1."""

    def test_internal_error_stops_every_plugin_through_its_safe_state(self):
        self.start_recorder()
        path = self.write_config(f'[a]\nkind = "fail_later"\n{REC}\nafter = 3600\n\n'
                                 f'[b]\nkind = "fail_later"\n{REC}\nafter = 3600\n')
        h = self.start_host(path, env=dict(os.environ, MOAT_FAULT="host:reload"))
        for name in "ab":
            self.wait_until(f"{name} started", lambda: self.recorder.events(name) == ["started"], 10, h)
        h.signal(signal.SIGHUP)
        rc, _ = h.wait(10)
        self.assertEqual(rc, 1, h.describe())
        self.assertRegex(h.log, r"ERROR \[host\] internal error: an exception escaped a posted function posted "
                         r"by reload: .*host.*reload")
        for name in "ab":
            self.assertEqual(self.recorder.events(name), ["started", "safe"], self.context(h))
        self.assertIn("stopping (internal error)", h.log)


class ValidateBugTest(HostTestCase):
    """A plugin's validate() throwing std::logic_error (a bug of the plugin)."""

    BODY = '[ft]\nkind = "factory_throws"\nvalidate_throws = true\n'
    MESSAGE = (r"\[ft\] the check of the configuration by plugin " + re.escape(TEST_PLUGINS) +
               r"/factory_throws\.so failed: deliberate bug in validate\(\)")

    def test_check_config_reports_it_as_a_configuration_error(self):
        path = self.write_config(self.BODY, bus=NO_BUS)
        rc, out, err = run_host(["--check-config", path], env=env_without_bus())
        self.assertEqual(rc, 3, f"stdout: {out}\nstderr: {err}")
        self.assertRegex(err, re.escape(f"{path}:{line_of(path, '[ft]')}: ") + self.MESSAGE)

    def test_start_refuses_it_with_exit_3(self):
        self.start_bus()
        path = self.write_config(self.BODY)
        h = self.start_host(path)
        rc, _ = h.wait(10)
        self.assertEqual(rc, 3, h.describe())
        self.assertRegex(h.log, self.MESSAGE)

    def test_reload_keeps_the_running_set(self):
        self.start_recorder()
        good = f'[w]\nkind = "fail_later"\n{REC}\nafter = 3600\n'
        path = self.write_config(good)
        h = self.start_host(path)
        self.wait_until("w started", lambda: self.recorder.events("w") == ["started"], 10, h)
        self.write_config(good + "\n" + self.BODY)
        mark = h.mark()
        h.signal(signal.SIGHUP)
        h.wait_for(r"the new configuration was not applied; the running plugins stay as they are", 5, since=mark)
        self.assertIsNotNone(h.find(self.MESSAGE, mark), h.describe())
        # The host still runs the old set: a SIGTERM now stops [w] through its safe state, exit 0.
        self.assertTrue(h.running(), h.describe())
        h.signal(signal.SIGTERM)
        rc, _ = h.wait(10)
        self.assertEqual(rc, 0, h.describe())
        self.assertEqual(self.recorder.events("w"), ["started", "safe"], self.context(h))
        self.assertIsNone(h.find(r"\[w\] stopping|configuration reloaded", mark), h.describe())


if __name__ == "__main__":
    unittest.main()

"""The moat-bms battery's safe state S through the simulator's link and ring
faults, each timed from python3-dbus against its deadline (run with -v to see
the times): link loss (a silent controller, end of file, soft and hard
resets), stale cells (a dead ring, a cell reading raw 0), recovery, the 2022
controller quirks, and a plugin exception (S through the host's safe-state
path before the restart). The set-up and S are those of test_moat_bms_battery.
"""

import unittest

from test_moat_bms_battery import BatteryHost


class LinkLoss(BatteryHost):
    def test_a_silent_device(self):
        since = self.mark()
        self.sim.command("mute 1")
        self.wait_for_s(since, "silent device (info timeout)", 5.0)
        self.sim.command("mute 0")
        self.recovers()

    def test_end_of_file(self):
        since = self.mark()
        self.sim.command("eof")
        self.wait_for_s(since, "end of file / port gone", 5.0)
        self.recovers()

    def test_a_dead_ring_is_stale_cells(self):
        since = self.mark()
        self.sim.command("dead 1")
        self.wait_for_s(since, "dead ring (stale cells)", 15.0)
        self.sim.command("dead 0")
        self.recovers()

    def test_a_raw_zero_cell_is_stale(self):
        since = self.mark()
        self.sim.command("vraw 5 0")
        self.wait_for_s(since, "one cell reads raw 0 (stale cell)", 15.0)


class LinkLossWithTheQuirks2022(BatteryHost):
    """The link faults against the 2022 controller (keepalive never trips, info every check)."""
    SIM_ARGS = ("--quirks",)
    test_a_silent_device = LinkLoss.test_a_silent_device
    test_end_of_file = LinkLoss.test_end_of_file
    test_a_dead_ring_is_stale_cells = LinkLoss.test_a_dead_ring_is_stale_cells


class ControllerReset(BatteryHost):
    def test_a_soft_reset(self):
        since = self.mark()
        self.sim.command("reset 1")
        self.wait_for_s(since, "controller soft reset (link false)", 5.0)
        self.recovers()

    def test_a_hard_reset(self):
        since = self.mark()
        self.sim.command("reset 2")
        self.wait_for_s(since, "controller hard reset (port gone, a new pty)", 5.0)
        self.recovers()


class PluginFailure(BatteryHost):
    """An exception escaping the plugin: S through the host's safe-state path, then the restart."""
    EXTRA = "work_save_s = 1\n"
    ENV = {"MOAT_FAULT": "moat-bms:save@10"}

    def test_s_before_the_restart(self):
        since = self.mark()
        self.host.wait_for(r"injected fault", 10.0)
        self.wait_for_s(since, "plugin exception", 15.0, still_there=False, timed=False)
        self.host.wait_for(r"\[moat-bms\].*safe state reached", 5.0)
        self.host.wait_for(r"com\.victronenergy\.battery\.batt released", 5.0)
        self.host.wait_for_count(r"com\.victronenergy\.battery\.batt registered", 2, 30.0)  # the restarted instance


if __name__ == "__main__":
    unittest.main()

"""The soak's plan from a seed: a mode every simulated hour over the
inverter's control interface, and one fault in each block of four hours.

Block g covers hours 4g .. 4g+4:
  hour 4g     SetMode p_grid (target A); the fault starts 0.05 .. 0.1 h in and
              lasts 0.6 .. 0.85 h (3 .. 4.25 s at speedup 720: longer than the
              inverter's input_timeout of 1.5 s and its deadline)
  hour 4g+1   SetMode p_grid (target B)
  hour 4g+2   SetMode p_grid (target C): the fault's recovery is judged
              until the end of this hour
  hour 4g+3   SetMode of another mode (p_inv, idle, soc, i_batt, off, remote)
The first block has no fault: the system settles. Every kind of fault comes
once (in a seeded order) before any comes again."""

import random
from dataclasses import dataclass, field

# kind -> what it does (the runner's actions carry them out)
FAULT_KINDS = {
    "service_freeze": "a sim service frozen (/Sim/Fault 1: battery, Multi or system in turn)",
    "service_invalid": "a sim service's values invalid (/Sim/Fault 2: battery, Multi or system in turn)",
    "service_vanish": "a sim service vanished for 3 s (/Sim/Fault 3: battery or Multi in turn)",
    "multi_deaf": "the Multi ignores its setpoints (vebus /Mode 4, off)",
    "bms_no_discharge": "the BMS disallows discharging (battery /Sim/AllowToDischarge 0)",
    "bms_no_charge": "the BMS disallows charging (battery /Sim/AllowToCharge 0)",
    "modbus_cut": "the grid meter's Modbus TCP link is cut",
    "modbus_corrupt": "the grid meter's Modbus replies are corrupted (30 %)",
    "hub4mode": "Hub4Mode 1 instead of 3 (ESS not in external control)",
    "overvoltage_feed_in": "OvervoltageFeedIn 1",
    "sighup_changed": "SIGHUP with a changed configuration (the inverter restarts)",
    "sighup_broken": "SIGHUP with a broken configuration (kept running on the old one)",
    "plugin_fault": "the inverter killed by an injected fault point (MOAT_FAULT inverter:refresh@N)",
    "bus_stopped": "the dbus-daemon stopped (kill -STOP) and continued (kill -CONT)",
}

SERVICE_FAULTS = {"service_freeze": (1, ["battery", "vebus", "system"]),
                  "service_invalid": (2, ["battery", "vebus", "system"]),
                  "service_vanish": (3, ["battery", "vebus"])}

P_GRID_TARGETS = [-50.0, 0.0, -150.0, 100.0, -300.0]
OTHER_MODES = [
    ("p_inv", {"power": 600.0}),
    ("idle", {"power": 0.0}),
    ("soc", {"dest_soc": 0.55, "power_in": 500.0, "power_out": -300.0}),
    ("i_batt", {"current": -10.0}),
    ("off", {"power": 0.0}),
    ("remote", {"power": 300.0, "power_ref": 1000.0}),
]


@dataclass
class Fault:
    index: int
    kind: str
    start_h: float
    end_h: float
    judge_until_h: float          # recovery must be seen before this hour
    params: dict = field(default_factory=dict)

    def describe(self):
        extra = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.kind}({extra})" if extra else self.kind


@dataclass
class ModeChange:
    hour: int
    mode: str
    args: dict


def plan(hours, seed, kinds=None):
    """(mode changes, faults) for `hours` simulated hours."""
    rng = random.Random(seed)
    kinds = list(FAULT_KINDS) if kinds is None else [k for k in kinds if k != "none"]
    modes, faults = [], []
    deck = []
    services = {k: [] for k in SERVICE_FAULTS}
    n = len(P_GRID_TARGETS)
    for g in range(hours // 4 + 1):
        h0 = 4 * g
        for k in range(3):
            if h0 + k < hours:
                modes.append(ModeChange(h0 + k, "p_grid", {"power": P_GRID_TARGETS[(g + 2 * k) % n]}))
        if h0 + 3 < hours:
            name, args = OTHER_MODES[g % len(OTHER_MODES)]
            modes.append(ModeChange(h0 + 3, name, dict(args)))
        if g == 0 or h0 + 3 > hours or not kinds:
            continue
        if not deck:
            deck = kinds[:]
            rng.shuffle(deck)
        kind = deck.pop()
        start = h0 + rng.uniform(0.05, 0.1)
        end = start + rng.uniform(0.6, 0.85)
        if kind == "plugin_fault":
            # its time comes from a pass count: half an hour of slack either way
            # keeps it inside the block's p_grid hours
            start, end = h0 + 0.5, h0 + 0.6  # nominal: the log gives the failure and the restart
        params = {}
        if kind in SERVICE_FAULTS:
            code, names = SERVICE_FAULTS[kind]
            if not services[kind]:
                services[kind] = names[:]
                rng.shuffle(services[kind])
            params = {"service": services[kind].pop(), "fault": code}
        faults.append(Fault(len(faults), kind, start, end, h0 + 3.0, params))
    return modes, faults

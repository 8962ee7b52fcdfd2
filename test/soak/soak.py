#!/usr/bin/env python3
"""The soak: the whole demo system on a private dbus-daemon in fast time, a
seeded fault schedule, invariants checked by an independent observer,
resource figures every simulated hour. test/soak/README.md explains it.

  soak.py --profile day     a simulated day, about 2 minutes (ctest label soak)
  soak.py --profile week    a simulated week, about 14 minutes

Writes summary.txt, soak.png, resources.csv, faults.json, records.jsonl and
host.log to --out (default BUILD/soak/<profile>); exit code 0 only when every
invariant held and every resource stayed within its bound."""

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SOURCE_DIR, "test", "integration"))

from moattest import DBusDaemon, spawn, stop_process  # noqa: E402
from modbus_proxy import ModbusProxy  # noqa: E402
from schedule import FAULT_KINDS, plan  # noqa: E402
import checks  # noqa: E402
import report  # noqa: E402
import resources  # noqa: E402

PROFILES = {
    "day": {"hours": 24, "speedup": 720.0},
    "week": {"hours": 168, "speedup": 720.0},
}
VANISH_SECONDS = 3.0
REFRESH_PASSES_PER_S = 7.65    # the inverter's refresh point: 4 per refresh_interval (0.5 s), less its own run time (measured)
CONTROL = "org.m_o_a_t.inv.main"
BUSITEM = "com.victronenergy.BusItem"
SIM_SERVICES = {"battery": "com.victronenergy.battery.sim", "vebus": "com.victronenergy.vebus.sim",
                "system": "com.victronenergy.system", "settings": "com.victronenergy.settings"}

# Host log lines kept in memory (everything goes to host.log).
KEEP = re.compile(r"loop lag #|\[inverter\] (started|failed|safe state|restarting)|SIGHUP|configuration reloaded|"
                  r"not applied|ERROR|\[grid-meter\]|stopping|stopped|\[statusline\] ")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Host:
    """build/moat-victron with every log line stamped with CLOCK_MONOTONIC."""

    def __init__(self, exe, config, log_path, env):
        self.proc = spawn([exe, "--config", config, "--log-level", "debug"], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        self.pid = self.proc.pid
        self.kept = []          # (t, line) of the KEEP lines
        self.cond = threading.Condition()
        self.log = open(log_path, "w", buffering=1 << 16)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            t = time.monotonic()
            line = raw.decode(errors="replace").rstrip("\n")
            self.log.write(f"{t:.4f} {line}\n")
            if KEEP.search(line):
                with self.cond:
                    self.kept.append((t, line))
                    self.cond.notify_all()
        self.log.flush()

    def wait_for(self, pattern, timeout, since=0.0):
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for t, line in self.kept:
                    if t >= since and rx.search(line):
                        return t
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    return None
                self.cond.wait(min(left, 0.2))

    def lines(self, pattern, since=0.0):
        rx = re.compile(pattern)
        with self.cond:
            return [(t, l) for t, l in self.kept if t >= since and rx.search(l)]


class Soak:
    def __init__(self, args):
        self.args = args
        self.build = os.path.abspath(args.build)
        self.out = os.path.abspath(args.out or os.path.join(self.build, "soak", args.profile))
        os.makedirs(self.out, exist_ok=True)
        self.tmp = tempfile.mkdtemp(prefix="moat-soak-")
        prof = PROFILES[args.profile]
        self.hours = args.hours or prof["hours"]
        self.speedup = args.speedup or prof["speedup"]
        self.H = 3600.0 / self.speedup          # real seconds per simulated hour
        self.modes, self.faults = plan(self.hours, args.seed, args.faults.split(",") if args.faults is not None else None)
        self.events = []                        # what the runner did: dicts with t
        self.mode_timeline = []                 # (t, mode, args) of every accepted SetMode
        self.current_mode = ("p_grid", {"power": -50.0})
        self.reissue_after = None               # re-select the mode once the inverter restarted
        self.bus_stopped = False
        self.samples = []

    # -- set-up ---------------------------------------------------------------
    def config_text(self, inverter_extra=""):
        with open(os.path.join(HERE, "soak.toml.in")) as f:
            text = f.read()
        fields = {"BUS": self.bus.address, "PLUGIN_DIR": os.path.join(self.build, "plugins"),
                  "SPEEDUP": repr(self.speedup), "SEED": str(self.args.seed), "VANISH_SECONDS": repr(VANISH_SECONDS),
                  "SIM_MODBUS_PORT": str(self.sim_port), "METER_PORT": str(self.meter_port),
                  "INVERTER_EXTRA": inverter_extra, "TMP": self.tmp}
        if self.args.bms:
            with open(self.args.bms if os.path.sep in self.args.bms else os.path.join(HERE, self.args.bms)) as f:
                text += "\n" + f.read()
        for k, v in fields.items():
            text = text.replace(f"@{k}@", v)
        return text

    def write_config(self, inverter_extra=""):
        path = os.path.join(self.tmp, "soak.toml")
        with open(path + ".new", "w") as f:
            f.write(self.config_text(inverter_extra))
        os.replace(path + ".new", path)
        return path

    def fault_points(self, t_spawn):
        """MOAT_FAULT for every plugin_fault: the refresh pass due at its start."""
        entries = []
        for f in self.faults:
            if f.kind == "plugin_fault":
                n = max(1, int((f.start_h * self.H + self.t0_guess - t_spawn) * REFRESH_PASSES_PER_S))
                entries.append(f"inverter:refresh@{n}")
        return ",".join(entries)

    def start(self):
        import dbus
        self.dbus = dbus
        self.bus = DBusDaemon()
        self.sim_port, self.meter_port = free_port(), free_port()
        self.proxy = ModbusProxy(self.meter_port, self.sim_port, seed=self.args.seed)
        self.config = self.write_config()
        obs_out = os.path.join(self.out, "records.jsonl")
        self.observer = spawn([sys.executable, os.path.join(HERE, "observer.py"), self.bus.address, obs_out],
                              stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        if self.observer.stdout.readline().decode().strip() != "ready":
            raise SystemExit("soak: the observer did not start")
        env = dict(os.environ)
        t_spawn = time.monotonic()
        self.t0_guess = t_spawn + 2.0           # the sim is up about 2 s after the spawn
        env["MOAT_FAULT"] = self.fault_points(t_spawn)
        if not env["MOAT_FAULT"]:
            del env["MOAT_FAULT"]
        self.host = Host(os.path.join(self.build, "moat-victron"), self.config, os.path.join(self.out, "host.log"), env)
        self.conn = dbus.bus.BusConnection(self.bus.address)
        if self.host.wait_for(r"\[inverter\] started", 30) is None:
            raise SystemExit("soak: the host did not start its inverter:\n" + open(os.path.join(self.out, "host.log")).read()[-4000:])
        self.t0 = self.host.wait_for(r"\[sim\] simulating", 1) or time.monotonic()
        self.t0 = max(self.t0, time.monotonic())
        self.res = resources.Sampler(self.host.pid, self.bus.pid, self.conn)

    # -- actions --------------------------------------------------------------
    def note(self, what, **kw):
        rec = {"t": time.monotonic(), "what": what}
        rec.update(kw)
        self.events.append(rec)
        return rec

    def set_value(self, service, path, value):
        try:
            rc = int(self.conn.call_blocking(service, path, BUSITEM, "SetValue", "v", (value,), timeout=5))
        except self.dbus.exceptions.DBusException as e:
            rc = e.get_dbus_name()
        self.note("set", service=service, path=path, value=float(value), rc=rc)
        return rc

    def set_mode(self, mode, args):
        d = self.dbus
        dargs = d.Dictionary({k: d.Double(v) for k, v in args.items()}, signature="sv")
        try:
            self.conn.call_blocking(CONTROL, "/Control", "org.m_o_a_t.inv", "SetMode", "sa{sv}", (mode, dargs), timeout=5)
            ok, why = True, ""
        except d.exceptions.DBusException as e:
            ok, why = False, f"{e.get_dbus_name()}: {e.get_dbus_message()}"
        rec = self.note("mode", mode=mode, args=args, ok=ok, why=why)
        if ok:
            self.mode_timeline.append((rec["t"], mode, dict(args)))
        return ok, why

    def fault_action(self, f, begin):
        t_act = time.monotonic()  # before acting: the effect may be seen before the action returns
        k, p = f.kind, f.params
        d = self.dbus
        if k.startswith("service"):
            svc = SIM_SERVICES[p["service"]]
            if begin or p["fault"] != 3:
                self.set_value(svc, "/Sim/Fault", d.Int32(p["fault"] if begin else 0))
        elif k == "multi_deaf":
            self.set_value(SIM_SERVICES["vebus"], "/Mode", d.Int32(4 if begin else 3))
        elif k == "bms_no_discharge":
            self.set_value(SIM_SERVICES["battery"], "/Sim/AllowToDischarge", d.Int32(0 if begin else -1))
        elif k == "bms_no_charge":
            self.set_value(SIM_SERVICES["battery"], "/Sim/AllowToCharge", d.Int32(0 if begin else -1))
        elif k in ("modbus_cut", "modbus_corrupt"):
            self.proxy.set_mode(("cut" if k == "modbus_cut" else "corrupt") if begin else "ok")
        elif k == "hub4mode":
            self.set_value(SIM_SERVICES["settings"], "/Settings/CGwacs/Hub4Mode", d.Int32(1 if begin else 3))
        elif k == "overvoltage_feed_in":
            self.set_value(SIM_SERVICES["settings"], "/Settings/CGwacs/OvervoltageFeedIn", d.Int32(1 if begin else 0))
            if not begin:
                self.reissue_after = time.monotonic()
        elif k == "sighup_changed":
            self.write_config("p_step = 120" if begin else "")
            os.kill(self.host.pid, signal.SIGHUP)
        elif k == "sighup_broken":
            self.write_config("no_such_key = 1" if begin else "")
            os.kill(self.host.pid, signal.SIGHUP)
        elif k == "bus_stopped":
            os.kill(self.bus.pid, signal.SIGSTOP if begin else signal.SIGCONT)
            self.bus_stopped = begin
        elif k == "plugin_fault":
            pass  # armed at the start (MOAT_FAULT); the log says when it fired
        self.note("fault-begin" if begin else "fault-end", index=f.index, kind=k)["t"] = t_act

    # -- the run --------------------------------------------------------------
    def timeline(self):
        acts = []
        for m in self.modes:
            acts.append((m.hour, 1, "mode", m))
        for f in self.faults:
            if f.kind.startswith("service") and f.params["fault"] == 3:
                f.end_h = f.start_h + VANISH_SECONDS / self.H
            acts.append((f.start_h, 2, "begin", f))
            acts.append((f.end_h, 0, "end", f))
        for h in range(self.hours + 1):
            acts.append((h, 3, "sample", h))
        acts.sort(key=lambda a: (a[0], a[1]))
        return acts

    def run(self):
        self.start()
        last_restart_seen = self.host.wait_for(r"\[inverter\] started", 0) or 0.0
        try:
            for hour, _, what, item in self.timeline():
                due = self.t0 + hour * self.H
                while True:
                    now = time.monotonic()
                    if self.host.proc.poll() is not None:
                        self.note("host-ended", rc=self.host.proc.returncode)
                        return self.finish(early=True)
                    # the inverter restarted (reload, injected failure): select the mode again
                    started = self.host.lines(r"\[inverter\] started", since=last_restart_seen + 1e-4)
                    if started:
                        last_restart_seen = started[-1][0]
                        self.reissue_after = last_restart_seen
                    if self.reissue_after is not None and not self.bus_stopped and now > self.reissue_after + 1.1:
                        ok, why = self.set_mode(*self.current_mode)
                        self.reissue_after = None if ok or "unknown" in why else now
                    if now >= due:
                        break
                    time.sleep(min(0.05, due - now))
                if what == "mode":
                    self.current_mode = (item.mode, item.args)
                    if not self.bus_stopped:
                        ok, why = self.set_mode(item.mode, item.args)
                        if not ok and "too_early" in why:
                            self.reissue_after = time.monotonic() - 1.0
                elif what == "begin":
                    self.fault_action(item, True)
                elif what == "end":
                    self.fault_action(item, False)
                elif what == "sample":
                    self.samples.append(self.res.sample(item, self.host, self.bus_stopped))
                    if item % 24 == 0 or self.args.verbose:
                        s = self.samples[-1]
                        print(f"soak: hour {item}/{self.hours}: RSS {s['rss_kb']} kB, fds {s['fds']}, "
                              f"match rules {s['match_rules']}, loop lag p99 {s['lag_p99']} ms", flush=True)
            return self.finish()
        finally:
            self.teardown()

    def finish(self, early=False):
        # The stop: SIGTERM must leave 0 W on every phase ("safe state reached").
        t_term = time.monotonic()
        if self.host.proc.poll() is None:
            os.kill(self.host.pid, signal.SIGTERM)
        try:
            rc = self.host.proc.wait(15)
        except subprocess.TimeoutExpired:
            rc = None
        self.host.reader.join(5)
        self.note("host-exit", rc=rc, t_term=t_term)
        time.sleep(0.5)  # let the observer write out what it saw before stopping it
        stop_process(self.observer)
        records = checks.load_records(os.path.join(self.out, "records.jsonl"))
        ctx = checks.Context(records=records, events=self.events, faults=self.faults, host_lines=self.host.kept,
                             mode_timeline=self.mode_timeline, t0=self.t0, H=self.H, hours=self.hours,
                             exit_rc=rc, early=early, t_term=t_term)
        results = checks.run_all(ctx)
        bounds = resources.judge(self.samples, self.hours)
        with open(os.path.join(self.out, "faults.json"), "w") as f:
            json.dump({"run": {"t0": self.t0, "speedup": self.speedup, "hours": self.hours, "seed": self.args.seed},
                       "faults": [vars(x) for x in self.faults], "events": self.events}, f, indent=1)
        report.write(self.out, self.args.profile, self.hours, self.speedup, self.args.seed, self.faults, results,
                     bounds, self.samples, ctx)
        ok = all(r.ok for r in results) and all(b.ok for b in bounds) and not early
        print(open(os.path.join(self.out, "summary.txt")).read())
        print(f"soak: {'PASS' if ok else 'FAIL'} ({self.out})")
        return 0 if ok else 1

    def teardown(self):
        if self.bus_stopped:
            os.kill(self.bus.pid, signal.SIGCONT)
        if self.host.proc.poll() is None:
            stop_process(self.host.proc, signal.SIGKILL)
        if self.observer.poll() is None:
            stop_process(self.observer)
        self.proxy.stop()
        self.bus.stop()
        import shutil
        shutil.rmtree(self.tmp, True)


def rejudge(args):
    """Judge and report a finished run again from its files (after a change of a check or the plot)."""
    import csv
    from schedule import Fault
    out = os.path.abspath(args.rejudge)
    with open(os.path.join(out, "faults.json")) as f:
        saved = json.load(f)
    faults = [Fault(**x) for x in saved["faults"]]
    events = saved["events"]
    run = saved.get("run", {})
    speedup = run.get("speedup", args.speedup or PROFILES[args.profile]["speedup"])
    hours = run.get("hours", args.hours or PROFILES[args.profile]["hours"])
    kept = []
    with open(os.path.join(out, "host.log")) as f:
        for line in f:
            t, _, text = line.rstrip("\n").partition(" ")
            if KEEP.search(text):
                kept.append((float(t), text))
    samples = []
    with open(os.path.join(out, "resources.csv")) as f:
        for row in csv.DictReader(f):
            samples.append({k: (None if v == "" else float(v) if "." in v else int(v)) for k, v in row.items()})
    end = next(e for e in events if e["what"] == "host-exit")
    modes = [e for e in events if e["what"] == "mode"]
    ctx = checks.Context(records=checks.load_records(os.path.join(out, "records.jsonl")), events=events, faults=faults,
                         host_lines=kept, mode_timeline=[(e["t"], e["mode"], e["args"]) for e in modes if e["ok"]],
                         t0=run.get("t0", modes[0]["t"]), H=3600.0 / speedup, hours=hours, exit_rc=end["rc"],
                         early=any(e["what"] == "host-ended" for e in events), t_term=end["t_term"])
    results = checks.run_all(ctx)
    bounds = resources.judge(samples, hours)
    report.write(out, args.profile, hours, speedup, run.get("seed", args.seed), faults, results, bounds, samples, ctx)
    print(open(os.path.join(out, "summary.txt")).read())
    ok = all(r.ok for r in results) and all(b.ok for b in bounds) and not ctx.early
    print(f"soak: {'PASS' if ok else 'FAIL'} ({out})")
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description="a simulated day or week of the demo system with faults")
    ap.add_argument("--profile", choices=sorted(PROFILES), default="day")
    ap.add_argument("--build", default=os.environ.get("MOAT_BUILD_DIR", os.path.join(SOURCE_DIR, "build")))
    ap.add_argument("--out", help="output directory (default BUILD/soak/PROFILE)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--hours", type=int, help="simulated hours (default: the profile's)")
    ap.add_argument("--speedup", type=float, help="simulated seconds per real second (default 720)")
    ap.add_argument("--faults", help="comma-separated fault kinds, none for none (default all: " + ",".join(FAULT_KINDS) + ")")
    ap.add_argument("--bms", default="bms-link.toml.in",
                    help="a TOML fragment with the BMS part of the system ('' for none; default bms-link.toml.in)")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--rejudge", metavar="DIR", help="judge and report the run in DIR again; runs nothing")
    args = ap.parse_args()
    sys.exit(rejudge(args) if args.rejudge else Soak(args).run())


if __name__ == "__main__":
    main()

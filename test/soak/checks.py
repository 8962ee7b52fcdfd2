"""The soak's invariants, judged over everything the observer recorded (every
setpoint write, every followed value) and the runner's own actions. Each
check looks at every record of the whole run, not at samples.

Times are CLOCK_MONOTONIC seconds; D = the documented deadlines (docs/inverter.md)
with the soak's timings: input_timeout 1.5 s, the guard's 0.1 s, the stop write's
0.5 s."""

import json
from dataclasses import dataclass, field

SETPOINTS = [f"/Hub4/L{k}/AcPowerSetpoint" for k in (1, 2, 3)]
INPUT_DEADLINE = 1.5 + 0.1 + 0.6      # input_timeout + guard period + scheduling margin
OVERVOLTAGE_DEADLINE = 0.1 + 0.6       # "within 0.1 s" + margin
FAILURE_DEADLINE = 0.5 + 0.5           # stop_write_timeout + margin, from the failure's log line
RELOAD_DEADLINE = 0.5 + 1.0           # the reload's parse + stop_write_timeout + margin
SLACK = 0.1                            # s: the observer may see a write before the runner or the log reader stamps its cause
GUARD_GRACE = 0.3                      # a write already under way when a setting changes
LOW_GRACE = 0.5                        # "at once" when the battery becomes low
GRID_BAND = 150.0                      # W: |grid total - p_grid target| counts as held
HELD_FOR = 0.9                         # s the grid must stay in the band to count as back
P_PER_PHASE = 4500.0
STATUS_GAP = 1.0                       # s: largest gap between status lines in the log (interval 0.25)

def load_records(path):
    out = []
    with open(path) as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except ValueError:
                pass  # the last line may be cut short at the stop
    return out


@dataclass
class Context:
    records: list
    events: list
    faults: list
    host_lines: list
    mode_timeline: list
    t0: float
    H: float
    hours: int
    exit_rc: object
    early: bool
    t_term: float
    writes: list = field(default_factory=list)

    def __post_init__(self):
        self.writes = [r for r in self.records if r["k"] == "set" and r["path"] in SETPOINTS
                       and r["dst"].startswith("com.victronenergy.vebus.")]
        self.by_index = {}
        for e in self.events:
            if e["what"] in ("fault-begin", "fault-end"):
                self.by_index.setdefault(e["index"], {})[e["what"]] = e["t"]

    def times(self, f):
        """(begin, end, judge_until) in monotonic time; the runner's own stamps when it acted."""
        got = self.by_index.get(f.index, {})
        begin = got.get("fault-begin", self.t0 + f.start_h * self.H)
        end = got.get("fault-end", self.t0 + f.end_h * self.H)
        if f.kind.startswith("service") and f.params.get("fault") == 3:
            end = begin + (f.end_h - f.start_h) * self.H
        if f.kind == "plugin_fault":  # from the failure to the restart, as logged
            fired = plugin_fault_time(self, f)
            if fired is not None:
                started = self.log(lambda l: "[inverter] started" in l, fired, fired + 2.0)
                begin, end = fired, started[0][0] if started else fired + 2.0
        return begin, end, self.t0 + f.judge_until_h * self.H

    def log(self, pattern_fn, since=0.0, until=float("inf")):
        return [(t, l) for t, l in self.host_lines if since <= t <= until and pattern_fn(l)]

    def values(self, svc_prefix, path):
        return [(r["t"], r["v"]) for r in self.records
                if r["k"] == "val" and r["svc"].startswith(svc_prefix) and r["path"] == path]


@dataclass
class Result:
    name: str
    ok: bool
    checked: int
    detail: str = ""


def plugin_fault_time(ctx, f):
    """When the injected fault fired (the log), or None; the planned time is only a guess."""
    begin = ctx.t0 + f.start_h * ctx.H
    fired = ctx.log(lambda l: "[inverter] failed: injected fault at inverter:refresh" in l, begin - 3 * ctx.H)
    return fired[0][0] if fired else None


def safe_window_start(ctx, f):
    if f.kind == "plugin_fault":
        return plugin_fault_time(ctx, f), FAILURE_DEADLINE
    begin, _, _ = ctx.times(f)
    if f.kind == "overvoltage_feed_in":
        return begin, OVERVOLTAGE_DEADLINE
    if f.kind == "sighup_changed":      # the changed instance stops (safe state), then starts again
        return begin, RELOAD_DEADLINE
    if f.kind.startswith("service") and f.params["service"] in ("battery", "system") or \
            (f.kind.startswith("service") and f.params["service"] == "vebus" and f.params["fault"] != 3):
        return begin, INPUT_DEADLINE
    return None, None


def check_safe_setpoints(ctx):
    bad, n, unreachable = [], 0, []
    for f in ctx.faults:
        t, deadline = safe_window_start(ctx, f)
        if deadline is None:
            continue
        if t is None:
            bad.append(f"#{f.index} {f.describe()}: the injected fault never fired")
            continue
        n += 1
        zero = {p: None for p in SETPOINTS}
        for w in ctx.writes:
            if t - SLACK <= w["t"] <= t + deadline and w["v"] == 0.0 and zero[w["path"]] is None:
                zero[w["path"]] = w["t"] - t
        missing = [p for p, v in zero.items() if v is None]
        if missing and f.kind.startswith("service") and f.params["service"] in ("system", "vebus") and ctx.log(
                lambda l: "[inverter] safe state not reached: not written: " in l, t - SLACK, t + deadline):
            # Without the system service the controller does not know the Multi, and
            # with the Multi's values invalid its AssistantId is unknown (the ESS
            # guard): it reports the safe state as unreachable, as documented.
            unreachable.append(f"#{f.index} {f.describe()}")
        elif missing:
            bad.append(f"#{f.index} {f.describe()}: no 0 W on {', '.join(missing)} within {deadline:.1f} s")
    detail = "; ".join(bad)
    if unreachable:
        detail += (("; " if detail else "") + f"{len(unreachable)} reported unreachable in time (no Multi named "
                   f"without the system service, or AssistantId unknown while the Multi's values are invalid): " + ", ".join(unreachable))
    return Result("safe setpoints (or 'not reached' reported) within the deadline", not bad, n, detail)


def intervals(points, bad_value):
    """[(from, to)] where a followed value equals/satisfies bad_value."""
    out, start = [], None
    for t, v in points:
        is_bad = bad_value(v)
        if is_bad and start is None:
            start = t
        elif not is_bad and start is not None:
            out.append((start, t))
            start = None
    if start is not None:
        out.append((start, float("inf")))
    return out


def check_no_discharge(ctx):
    spans = intervals(ctx.values("com.victronenergy.battery.sim", "/Io/AllowToDischarge"), lambda v: v == 0)
    bad, n = [], 0
    for a, b in spans:
        for w in ctx.writes:
            if a + LOW_GRACE <= w["t"] < b:
                n += 1
                if w["v"] is not None and w["v"] < -0.5:
                    bad.append(f"{w['path']} = {w['v']} at {w['t'] - a:.2f} s into a no-discharge span")
    detail = f"{len(spans)} span(s) of AllowToDischarge 0, {n} writes in them"
    return Result("no discharge while the BMS disallows it", not bad, n, "; ".join(bad[:5]) or detail)


def check_no_write_without_hub4mode_3(ctx):
    spans, start = [], None
    for e in ctx.events:
        if e["what"] == "set" and e["path"] == "/Settings/CGwacs/Hub4Mode":
            if e["value"] != 3 and start is None:
                start = e["t"]
            elif e["value"] == 3 and start is not None:
                # the SetValue back to 3 was sent before e["t"] (its reply): end there minus the call
                spans.append((start, e["t"] - 0.05))
                start = None
    bad, n = [], 0
    for a, b in spans:
        inside = [w for w in ctx.writes if a + GUARD_GRACE <= w["t"] < b]
        n += 1
        if inside:
            bad.append(f"{len(inside)} write(s) between {inside[0]['t'] - a:.2f} s and {inside[-1]['t'] - a:.2f} s "
                       f"after Hub4Mode left 3")
    return Result("no write while Hub4Mode is not 3", not bad and (n > 0 or not any(
        f.kind == "hub4mode" for f in ctx.faults)), n, "; ".join(bad) or f"{n} span(s)")


def check_limits(ctx):
    bad = [w for w in ctx.writes if w["v"] is None or abs(w["v"]) > P_PER_PHASE + 1]
    return Result("every setpoint within the per-phase limit", not bad, len(ctx.writes),
                  f"{len(bad)} out of range, e.g. {bad[0]}" if bad else f"{len(ctx.writes)} writes")


def target_at(ctx, t):
    """The p_grid target at time t, or None when another mode runs (or the controller just restarted)."""
    restarts = [lt for lt, l in ctx.host_lines if "[inverter] started" in l and lt <= t]
    last = None
    for mt, mode, args in ctx.mode_timeline:
        if mt <= t:
            last = (mt, mode, args)
    if restarts and (last is None or restarts[-1] > last[0]):
        return -50.0  # the configured mode after a (re)start
    if last is None or last[1] != "p_grid":
        return None
    return float(last[2].get("power", 0.0))


def grid_back(ctx, since, until, grid):
    """First time in [since, until] from which the grid stays in the band for HELD_FOR s."""
    run_start = None
    for t, v in grid:
        if t < since or v is None:
            continue
        if t > until:
            break
        target = target_at(ctx, t)
        if target is not None and abs(v - target) <= GRID_BAND:
            run_start = t if run_start is None else run_start
            if t - run_start >= HELD_FOR:
                return run_start
        else:
            run_start = None
    return None


def recovery_start(ctx, f):
    begin, end, until = ctx.times(f)
    if f.kind == "plugin_fault":
        t = plugin_fault_time(ctx, f)
        if t is None:
            return None, None, "the injected fault never fired"
        started = ctx.log(lambda l: "[inverter] started" in l, t, t + 2.0)
        if not started:
            return None, None, "the inverter did not restart within 2 s"
        # The pass count only approximates the planned time: judge the grid in the
        # block the failure really came in, if p_grid runs on for another hour.
        h = (started[0][0] - ctx.t0) / ctx.H
        until = ctx.t0 + (int(h) // 4 * 4 + 3) * ctx.H
        if until - started[0][0] < ctx.H:
            return started[0][0], None, None
        return started[0][0], until, None
    return end, until, None


def kind_evidence(ctx, f):
    """What the kind of fault must leave in the log or on the bus; None when fine."""
    begin, end, until = ctx.times(f)
    if f.kind == "sighup_broken":
        if not ctx.log(lambda l: "the new configuration was not applied" in l, begin, begin + 3):
            return "no 'not applied' error after the broken configuration"
        if ctx.log(lambda l: "[inverter] started" in l, begin, end + 1):
            return "the inverter restarted on a broken configuration"
    if f.kind == "sighup_changed":
        if len(ctx.log(lambda l: "configuration reloaded" in l, begin, until)) < 2:
            return "not both reloads were logged"
    if f.kind.startswith("service"):
        svc = "com.victronenergy." + ("system" if f.params["service"] == "system" else f.params["service"] + ".sim")
        vals = [r for r in ctx.records if r["k"] == "val" and r["svc"] == svc and end + 0.2 <= r["t"] <= until
                and r["v"] is not None]
        if not vals:
            return f"{svc} published nothing valid after the fault"
    if f.kind in ("modbus_cut", "modbus_corrupt"):
        vals = [1 for t, v in ctx.values("com.victronenergy.grid.", "/Ac/Power") if end <= t <= until and v is not None]
        if not vals:
            return "the grid meter did not come back"
    return None


def check_recovery(ctx):
    grid = ctx.values("com.victronenergy.grid.", "/Ac/Power")
    bad, n, took, skipped = [], 0, [], []
    for f in ctx.faults:
        since, until, why = recovery_start(ctx, f)
        n += 1
        if why:
            bad.append(f"#{f.index} {f.describe()}: {why}")
            continue
        if until is None:
            skipped.append(f"#{f.index}")
            continue
        back = grid_back(ctx, since, until, grid)
        if back is None:
            bad.append(f"#{f.index} {f.describe()}: the grid did not return within {GRID_BAND:.0f} W of the target "
                       f"within {until - since:.1f} s")
        else:
            took.append(back - since)
        ev = kind_evidence(ctx, f)
        if ev:
            bad.append(f"#{f.index} {f.describe()}: {ev}")
    detail = "; ".join(bad) or (f"back in the band after {max(took):.1f} s at most (median "
                                f"{sorted(took)[len(took) // 2]:.1f} s)" if took else "")
    if skipped:
        detail += (f"; grid not judged for {', '.join(skipped)} (the injected failure came less than an hour "
                   f"before another mode; its restart was)")
    return Result("every fault recovers, the grid back in the p_grid band", not bad, n, detail)


def check_statusline(ctx):
    ticks = [t for t, l in ctx.host_lines if "INFO [statusline] " in l and t < ctx.t_term]
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    worst = max(gaps, default=float("inf"))
    line = ctx.values("com.victronenergy.moat.statusline", "/StatusLine")
    return Result("the status line keeps ticking", bool(ticks) and worst <= STATUS_GAP and len(line) > 10, len(ticks),
                  f"{len(ticks)} lines in the log, largest gap {worst:.2f} s (bound {STATUS_GAP} s); "
                  f"{len(line)} /StatusLine values on D-Bus")


def check_stop(ctx):
    reached = ctx.log(lambda l: "[inverter] safe state reached" in l, ctx.t_term)
    zeros = {w["path"] for w in ctx.writes if w["t"] >= ctx.t_term and w["v"] == 0.0}
    ok = ctx.exit_rc == 0 and bool(reached) and zeros == set(SETPOINTS)
    return Result("the host survives and stops into the safe state", ok and not ctx.early, 1,
                  f"exit code {ctx.exit_rc}, safe state {'reached' if reached else 'NOT logged'}, "
                  f"0 W written on {len(zeros)} phase(s) after SIGTERM")


def run_all(ctx):
    return [check_safe_setpoints(ctx), check_no_discharge(ctx), check_no_write_without_hub4mode_3(ctx),
            check_limits(ctx), check_recovery(ctx), check_statusline(ctx), check_stop(ctx)]

"""Resource figures of the host, sampled every simulated hour, and their
bounds.

RSS and open fds come from /proc/<pid>; CPU is the share of one core used
since the last sample; the D-Bus match rules are the sum over every
connection of the host's process (org.freedesktop.DBus.Debug.Stats
GetConnectionStats, which the private daemon answers for its own uid); the
loop lag is what the host logs at debug level ("loop lag #N: p50 .., p99
.., max .. ms", every 5 s) since the last sample."""

import os
import re
from dataclasses import dataclass

LAG = re.compile(r"loop lag #\d+: p50 ([0-9.]+) ms, p99 ([0-9.]+) ms, max ([0-9.]+) ms")
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Bounds after the warm-up (the first simulated day; a quarter of a shorter run).
RSS_GROWTH_KB = 4096          # or 5 % of the RSS at the end of the warm-up, whichever is larger
FD_GROWTH = 4
MATCH_RULE_GROWTH = 16
LAG_P99_MS = 100.0            # the median of the hourly p99


def _status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def _cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def sanitized(pid):
    """True when the host runs with AddressSanitizer (its quarantine makes RSS grow for a while)."""
    try:
        with open(f"/proc/{pid}/maps") as f:
            return any("libasan" in line for line in f)
    except OSError:
        return False


class Sampler:
    def __init__(self, pid, daemon_pid, conn):
        self.pid, self.daemon_pid, self.conn = pid, daemon_pid, conn
        self.sanitized = sanitized(pid)
        self.last_cpu = (_cpu_ticks(pid), os.times().elapsed)
        self.last_lag_t = 0.0
        self.host_conns = []
        self.last_rules = None

    def match_rules(self):
        """Sum of MatchRules over the host's connections (found by their pid)."""
        bus = "org.freedesktop.DBus"
        names = [str(n) for n in self.conn.call_blocking(bus, "/org/freedesktop/DBus", bus, "ListNames", "", (),
                                                          timeout=5) if str(n).startswith(":")]
        total = 0
        for n in names:
            try:
                pid = int(self.conn.call_blocking(bus, "/org/freedesktop/DBus", bus, "GetConnectionUnixProcessID",
                                                  "s", (n,), timeout=5))
                if pid != self.pid:
                    continue
                st = self.conn.call_blocking(bus, "/org/freedesktop/DBus", "org.freedesktop.DBus.Debug.Stats",
                                             "GetConnectionStats", "s", (n,), timeout=5)
                total += int(st["MatchRules"])
            except Exception:
                continue  # the connection closed meanwhile
        return total

    def sample(self, hour, host, bus_stopped):
        import time
        t = time.monotonic()
        cpu = _cpu_ticks(self.pid)
        el = os.times().elapsed
        cpu_pct = 100.0 * (cpu - self.last_cpu[0]) / CLK_TCK / max(1e-3, el - self.last_cpu[1])
        self.last_cpu = (cpu, el)
        lags = [tuple(float(x) for x in LAG.search(l).groups()) for tl, l in host.lines(r"loop lag #", self.last_lag_t)]
        self.last_lag_t = t
        if not bus_stopped:
            self.last_rules = self.match_rules()
        p50 = sorted(l[0] for l in lags)[len(lags) // 2] if lags else None
        return {
            "hour": hour, "t": t,
            "rss_kb": _status_kb(self.pid, "VmRSS"),
            "fds": len(os.listdir(f"/proc/{self.pid}/fd")),
            "threads": _status_kb(self.pid, "Threads"),
            "cpu_pct": round(cpu_pct, 1),
            "match_rules": self.last_rules,
            "daemon_rss_kb": _status_kb(self.daemon_pid, "VmRSS"),
            "lag_p50": p50,
            "lag_p99": max((l[1] for l in lags), default=None),
            "lag_max": max((l[2] for l in lags), default=None),
            "asan": int(self.sanitized),
        }


@dataclass
class Bound:
    name: str
    ok: bool
    detail: str


def judge(samples, hours):
    """Growth after the warm-up, and the loop lag."""
    warm = min(24, max(1, hours // 4))
    base = next((s for s in samples if s["hour"] == warm), None)
    later = [s for s in samples if s["hour"] >= warm]
    if base is None or len(later) < 2:
        return [Bound("resources", False, f"too few samples ({len(samples)}) to judge growth after hour {warm}")]
    out = []
    asan = any(s.get("asan") for s in samples)
    rss_max = max(s["rss_kb"] for s in later)
    allowed = max(RSS_GROWTH_KB, int(base["rss_kb"] * 0.05))
    rss = (f"{base['rss_kb']} kB at hour {warm}, at most {rss_max} kB later, end {later[-1]['rss_kb']} kB "
           f"(bound +{allowed} kB)")
    if asan:  # ASan holds freed memory in its quarantine: leaks are LeakSanitizer's to find at the exit
        out.append(Bound("RSS (not judged: AddressSanitizer build)", True, rss))
    else:
        out.append(Bound("RSS flat after the warm-up", rss_max - base["rss_kb"] <= allowed, rss))
    fd_max = max(s["fds"] for s in later)
    out.append(Bound("open fds flat after the warm-up", fd_max - base["fds"] <= FD_GROWTH,
                     f"{base['fds']} at hour {warm}, at most {fd_max} later, end {later[-1]['fds']} (bound +{FD_GROWTH})"))
    rules = [s["match_rules"] for s in later if s["match_rules"] is not None]
    if base["match_rules"] is not None and rules:
        out.append(Bound("D-Bus match rules flat after the warm-up", max(rules) - base["match_rules"] <= MATCH_RULE_GROWTH,
                         f"{base['match_rules']} at hour {warm}, at most {max(rules)} later, end {rules[-1]} "
                         f"(bound +{MATCH_RULE_GROWTH})"))
    p99s = sorted(s["lag_p99"] for s in samples if s["lag_p99"] is not None)
    if p99s:
        med = p99s[len(p99s) // 2]
        bound = LAG_P99_MS * (3 if asan else 1)
        out.append(Bound("loop lag", med <= bound,
                         f"hourly p99: median {med:.2f} ms, worst {p99s[-1]:.2f} ms; "
                         f"max {max(s['lag_max'] or 0 for s in samples):.2f} ms (bound: median p99 <= {bound:.0f} ms"
                         f"{', 3x under ASan' if asan else ''})"))
    else:
        out.append(Bound("loop lag", False, "no loop-lag lines in the host log (--log-level debug?)"))
    return out

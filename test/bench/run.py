#!/usr/bin/env python3
"""Side-by-side benchmark of our D-Bus layer against the sd-bus floor.

Starts a private dbus-daemon with Venus's limits, runs each implementation
under the contract (bench-contract.md) and prints JSON with the figures of
both and the ratios ours/floor, then a one-line summary on stderr:

  W1  idle footprint of a 63-path service (startup, idle CPU, RSS/PSS/USS)
  W2  publisher CPU per 10,000 changes, K=10 changes per tick, burst mode
  W3  GetItems and GetValue on `/` of a 1,000-path service (round trip
      through an sd-bus client, service CPU per call)
  W4  discovery of 20 services x 100 paths by a consumer (exec to READY)
  W5  round trips of a 63-path service next to the daemon's own: GetId on
      the daemon, Peer.Ping and a leaf GetValue on the service

  run.py [--build DIR] [--out FILE] [--quick] [--ours-service CMD] ...
  run.py --instr [--build DIR] ...   instructions per operation (callgrind)

Only the figures are measured here; nothing is asserted about them.
"""
import argparse
import glob
import json
import os
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import benchlib
from benchlib import Client, Daemon, Program, cpu_s, make_catalogue, memory_kb, program_env, read_tsv


def wait_owned(client, prog, name, timeout=20):
    if not client.pump(lambda: name in client.owned or prog.proc.poll() is not None, timeout) or prog.proc.poll() is not None:
        raise RuntimeError(f"{prog.command}: {name} did not appear\n{prog.log()}")
    return client.owned[name]


def service_env(bus, name, json_, tsv, paths, k=0, interval=0, ticks=0, workload="W1"):
    return program_env(bus.address, BENCH_WORKLOAD=workload, BENCH_SERVICE=name, BENCH_CATALOGUE=json_,
                       BENCH_CATALOGUE_TSV=tsv, BENCH_PATHS=paths, BENCH_UPDATE_PATHS=k,
                       BENCH_UPDATE_INTERVAL_MS=interval, BENCH_UPDATE_TICKS=ticks)


class Session:
    """One private bus and a client per implementation run."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.bus = Daemon()
        self.client = Client(self.bus.address)
        self.progs = []

    def start(self, cmd, env, log, pipe=False):
        p = Program(cmd, env, os.path.join(self.tmp, log), stdout_pipe=pipe)
        self.progs.append(p)
        return p

    def close(self):
        for p in self.progs:
            rc, took = p.stop()
            if rc != 0 or took >= 5:
                print(f"warning: {p.command} exited {rc} after {took:.2f} s", file=sys.stderr)
        self.client.close()
        self.bus.stop()


def w1(tmp, cmd, idle_s):
    json_, tsv = make_catalogue(63, tmp)
    s = Session(tmp)
    try:
        name = "com.victronenergy.battery.bench0"
        p = s.start(cmd, service_env(s.bus, name, json_, tsv, 63), "w1.log")
        owned = wait_owned(s.client, p, name)
        startup_cpu = cpu_s(p.pid)
        s.client.call(name, "/", "GetItems")
        time.sleep(0.5)
        c0, x0, t0 = cpu_s(p.pid), benchlib.context_switches(p.pid), time.monotonic()
        time.sleep(idle_s)
        c1, x1, t1 = cpu_s(p.pid), benchlib.context_switches(p.pid), time.monotonic()
        m = memory_kb(p.pid)
        return {"startup_ms": (owned - p.started) * 1000, "startup_cpu_ms": startup_cpu * 1000,
                "idle_s": idle_s, "idle_cpu_ms": (c1 - c0) * 1000, "idle_wakeups_per_s": (x1 - x0) / (t1 - t0), **m}
    finally:
        s.close()


def w2(tmp, cmd, changes, k=10):
    json_, tsv = make_catalogue(63, tmp)
    ticks = changes // k
    s = Session(tmp)
    try:
        name = "com.victronenergy.battery.bench0"
        p = s.start(cmd, service_env(s.bus, name, json_, tsv, 63, k=k, ticks=ticks, workload="W2"), "w2.log")
        wait_owned(s.client, p, name)
        s.client.call(name, "/", "GetItems")
        d0, c0, t0 = cpu_s(s.bus.pid), cpu_s(p.pid), time.monotonic()
        p.signal(signal.SIGUSR1)
        got = lambda: sum(1 for sig in s.client.signals if sig[0] == "ItemsChanged")
        if not s.client.pump(lambda: got() >= ticks, 120):
            raise RuntimeError(f"W2: {got()} of {ticks} ItemsChanged arrived\n{p.log()}")
        t1, c1, d1 = time.monotonic(), cpu_s(p.pid), cpu_s(s.bus.pid)
        n = sum(len(sig[2]) for sig in s.client.signals if sig[0] == "ItemsChanged")
        props = sum(1 for sig in s.client.signals if sig[0] == "PropertiesChanged")
        scale = 10000 / n
        return {"changes": n, "pub_cpu_s_per_10k": (c1 - c0) * scale, "daemon_cpu_s_per_10k": (d1 - d0) * scale,
                "changes_per_s": n / (t1 - t0), "items_changed_signals": got(), "properties_changed_signals": props,
                "changes_per_signal": n / max(1, got())}
    finally:
        s.close()


def probe(bus, dest, path, method, n):
    exe = os.path.join(benchlib.BENCH_BIN, "bench-floor")
    out = subprocess.run([exe, "probe", dest, path, method, str(n)], env=program_env(bus.address),
                         capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise RuntimeError(f"probe {path} {method}: {out.stderr}")
    return json.loads(out.stdout)


def timed_calls(s, p, kinds, quantiles=("p50", "p90", "p99", "max")):
    """Each (kind, dest, path, method, n) probed n times: latencies, service and daemon CPU per call."""
    res = {}
    for kind, dest, path, method, n in kinds:
        probe(s.bus, dest, path, method, 5)  # warm up
        c0, d0 = cpu_s(p.pid), cpu_s(s.bus.pid)
        r = probe(s.bus, dest, path, method, n)
        c1, d1 = cpu_s(p.pid), cpu_s(s.bus.pid)
        for q in quantiles:
            res[f"{kind}_{q}_us"] = r[f"{q}_us"]
        res[f"{kind}_svc_cpu_us"] = (c1 - c0) * 1e6 / n
        res[f"{kind}_daemon_cpu_us"] = (d1 - d0) * 1e6 / n
    return res


def w3_calls(name, calls):
    return [("getitems_root", name, "/", "GetItems", calls), ("getvalue_root", name, "/", "GetValue", calls),
            ("gettext_root", name, "/", "GetText", calls), ("getvalue_leaf", name, "/Dc/0/Voltage", "GetValue", calls * 10)]


def call_service(tmp, cmd, paths, workload, calls_of, rss=False, **timing):
    """Start the service with `paths` catalogue items and time the calls `calls_of(name)` against it."""
    json_, tsv = make_catalogue(paths, tmp)
    s = Session(tmp)
    try:
        name = "com.victronenergy.battery.bench0"
        p = s.start(cmd, service_env(s.bus, name, json_, tsv, paths, workload=workload), f"{workload.lower()}.log")
        wait_owned(s.client, p, name)
        res = timed_calls(s, p, calls_of(name), **timing)
        if rss:
            res["svc_rss_kb"] = memory_kb(p.pid)["rss_kb"]
        return res
    finally:
        s.close()


def w3(tmp, cmd, calls):
    return call_service(tmp, cmd, 1000, "W3", lambda name: w3_calls(name, calls), rss=True)


def w5_calls(name, calls):
    return [("daemon_getid", "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus.GetId", calls),
            ("service_ping", name, "/", "org.freedesktop.DBus.Peer.Ping", calls),
            ("service_getvalue_leaf", name, "/Dc/0/Voltage", "GetValue", calls)]


def w5(tmp, cmd, calls):
    """The daemon's own round trip next to the service's: what the library adds is the difference."""
    return call_service(tmp, cmd, 63, "W5", lambda name: w5_calls(name, calls), quantiles=("p50", "p99"))


def memory_slope(tmp, cmd, sizes=(63, 1000, 10000)):
    """RSS of an idle service per catalogue size, and the cost per path between the sizes."""
    res = {}
    for n in sizes:
        json_, tsv = make_catalogue(n, tmp)
        s = Session(tmp)
        try:
            name = "com.victronenergy.battery.bench0"
            p = s.start(cmd, service_env(s.bus, name, json_, tsv, n, workload="W1"), f"mem{n}.log")
            wait_owned(s.client, p, name, timeout=60)
            s.client.call(name, "/", "GetItems", timeout=60)
            res[f"rss_kb_{n}"] = memory_kb(p.pid)["rss_kb"]
        finally:
            s.close()
    for a, b in zip(sizes, sizes[1:]):
        res[f"bytes_per_path_{a}_{b}"] = (res[f"rss_kb_{b}"] - res[f"rss_kb_{a}"]) * 1024 / (b - a)
    return res


# ---- instruction counts (callgrind) ----------------------------------------------

def callgrind_dump(pid, pattern):
    """Dump the counters of the callgrind run `pid` (they restart at 0) and return the Ir of the dump."""
    before = set(glob.glob(pattern))
    subprocess.run(["callgrind_control", "-d", str(pid)], check=True, capture_output=True, timeout=120)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for f in set(glob.glob(pattern)) - before:
            with open(f) as fh:
                for line in fh:
                    if line.startswith(("totals:", "summary:")):
                        return int(line.split()[1])
        time.sleep(0.05)
    raise RuntimeError(f"no callgrind dump appeared for {pid}")


def w4_providers(s, tmp, service_cmd, services, paths, log):
    """W4's set-up: `services` providers of `paths` paths each, on the bus under
    their names; (providers, the consumer's environment)."""
    prefix = "com.victronenergy.battery.bench"
    providers = []
    for n in range(services):
        json_, tsv = make_catalogue(paths, tmp, instance=100 + n)
        providers.append(s.start(service_cmd, service_env(s.bus, f"{prefix}{n}", json_, tsv, paths, workload="W4"),
                                 f"{log}-provider{n}.log"))
    for n, p in enumerate(providers):
        wait_owned(s.client, p, f"{prefix}{n}")
    json_, tsv = make_catalogue(paths, tmp, instance=100)
    env = program_env(s.bus.address, BENCH_WORKLOAD="W4", BENCH_SERVICE_PREFIX=prefix,
                      BENCH_EXPECT_SERVICES=services, BENCH_PATHS=paths, BENCH_CATALOGUE=json_,
                      BENCH_CATALOGUE_TSV=tsv)
    return providers, env


def wait_ready(c, services, paths, timeout, what):
    """The consumer's first line must say it has every service and value."""
    r, _, _ = select.select([c.proc.stdout], [], [], timeout)
    line = c.proc.stdout.readline().decode().strip() if r else ""
    if line != f"READY {services} {services * paths}":
        raise RuntimeError(f"{what}: consumer said {line!r}\n{c.log()}")


def instr_consumer(tmp, service_cmd, consumer_cmd, services=20, paths=100):
    """Instructions of the consumer from exec to READY (W4 under callgrind; providers run plainly)."""
    s = Session(tmp)
    try:
        _, env = w4_providers(s, tmp, service_cmd, services, paths, "instr")
        out = os.path.join(tmp, "cg-consumer")
        c = s.start(f"valgrind --tool=callgrind --trace-children=yes --callgrind-out-file={out}.%p {consumer_cmd}", env,
                    "instr-consumer.log", pipe=True)
        wait_ready(c, services, paths, 600, "instr W4")
        return {"consumer_ir_to_ready": callgrind_dump(c.pid, f"{out}.{c.pid}.*")}
    finally:
        s.close()


def instr(tmp, cmd, calls, changes=200, k=10):
    """Instructions of the service (callgrind): start-up to the name, per call kind, per published change."""
    res = {}
    for paths, kinds in ((1000, w3_calls), (63, w5_calls)):
        json_, tsv = make_catalogue(paths, tmp)
        s = Session(tmp)
        try:
            name = "com.victronenergy.battery.bench0"
            out = os.path.join(tmp, f"cg-{paths}")
            p = s.start(f"valgrind --tool=callgrind --trace-children=yes --callgrind-out-file={out}.%p {cmd}",
                        service_env(s.bus, name, json_, tsv, paths, k=k, ticks=changes // k, workload="W3"),
                        f"instr{paths}.log")
            wait_owned(s.client, p, name, timeout=200)
            # `exec valgrind` keeps the pid; dumps are out.PID.N
            pattern = f"{out}.{p.pid}.*"
            ir = callgrind_dump(p.pid, pattern)
            if paths == 63:
                res["startup_ir"] = ir
            for kind, dest, path, method, n in kinds(name, calls):
                if dest != name:
                    continue
                probe(s.bus, dest, path, method, 3)
                callgrind_dump(p.pid, pattern)
                probe(s.bus, dest, path, method, n)
                res[f"{kind}_svc_ir_per_call"] = callgrind_dump(p.pid, pattern) / n
            if paths == 63:
                s.client.call(name, "/", "GetItems", timeout=100)
                callgrind_dump(p.pid, pattern)
                p.signal(signal.SIGUSR1)
                got = lambda: sum(1 for sig in s.client.signals if sig[0] == "ItemsChanged")
                if not s.client.pump(lambda: got() >= changes // k, 300):
                    raise RuntimeError(f"instr: {got()} ItemsChanged\n{p.log()}")
                res["pub_ir_per_change"] = callgrind_dump(p.pid, pattern) / changes
        finally:
            s.close()
    return res


def w4(tmp, service_cmd, consumer_cmd, services=20, paths=100):
    s = Session(tmp)
    try:
        providers, env = w4_providers(s, tmp, service_cmd, services, paths, "w4")
        p0 = sum(cpu_s(p.pid) for p in providers)
        d0 = cpu_s(s.bus.pid)
        c = s.start(consumer_cmd, env, "w4-consumer.log", pipe=True)
        wait_ready(c, services, paths, 60, "W4")
        ready = time.monotonic()
        time.sleep(0.2)
        m = memory_kb(c.pid)
        return {"time_to_all_values_ms": (ready - c.started) * 1000, "consumer_cpu_ms": cpu_s(c.pid) * 1000,
                "providers_cpu_ms": (sum(cpu_s(p.pid) for p in providers) - p0) * 1000,
                "daemon_cpu_ms": (cpu_s(s.bus.pid) - d0) * 1000, "consumer_rss_kb": m["rss_kb"],
                "consumer_uss_kb": m["uss_kb"]}
    finally:
        s.close()


def median_of(runs, fn):
    """Each figure's median over `runs` repetitions."""
    results = [fn() for _ in range(runs)]
    return {k: statistics.median(r[k] for r in results) for k in results[0]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=benchlib.BUILD_DIR, help="the build directory (default: %(default)s)")
    ap.add_argument("--out", help="also write the JSON here")
    ap.add_argument("--quick", action="store_true", help="short runs (a check, not a measurement)")
    ap.add_argument("--runs", type=int, default=3, help="repetitions per workload; medians are reported")
    ap.add_argument("--instr", action="store_true", help="instruction counts under callgrind instead of times")
    ap.add_argument("--memory", action="store_true", help="also RSS at 63, 1,000 and 10,000 paths (per-path slope)")
    ap.add_argument("--ours-service")
    ap.add_argument("--ours-consumer")
    ap.add_argument("--floor-service")
    ap.add_argument("--floor-consumer")
    a = ap.parse_args()
    benchlib.BENCH_BIN = os.path.join(os.path.abspath(a.build), "test", "bench")
    b = benchlib.BENCH_BIN
    impls = {
        "ours": (a.ours_service or os.path.join(b, "bench-service"), a.ours_consumer or os.path.join(b, "bench-consumer")),
        "floor": (a.floor_service or os.path.join(b, "bench-floor") + " service",
                  a.floor_consumer or os.path.join(b, "bench-floor") + " consumer"),
    }
    idle_s, changes, calls, runs = (1.0, 2000, 20, 1) if a.quick else (10.0, 50000, 500, a.runs)
    figures = {}
    with tempfile.TemporaryDirectory(prefix="moat-bench-") as tmp:
        for impl, (svc, con) in impls.items():
            if a.instr:
                figures[impl] = {"instr": {**instr(tmp, svc, 20), **instr_consumer(tmp, svc, con)}}
                continue
            figures[impl] = {
                "W1": median_of(runs, lambda: w1(tmp, svc, idle_s)),
                "W2": median_of(runs, lambda: w2(tmp, svc, changes)),
                "W3": median_of(runs, lambda: w3(tmp, svc, calls)),
                "W4": median_of(runs, lambda: w4(tmp, svc, con)),
                "W5": median_of(runs, lambda: w5(tmp, svc, calls * 4)),
            }
            if a.memory:
                figures[impl]["memory"] = memory_slope(tmp, svc)
    ratios = {}
    for w, ours in figures["ours"].items():
        for k, v in ours.items():
            f = figures["floor"][w].get(k)
            if isinstance(v, (int, float)) and f:
                ratios[f"{w}.{k}"] = round(v / f, 2)
    headline = {
        "idle RSS 63 paths": ("W1", "rss_kb"),
        "publisher CPU per 10k changes (K=10)": ("W2", "pub_cpu_s_per_10k"),
        "GetItems 1000 paths p50": ("W3", "getitems_root_p50_us"),
        "discovery 20x100": ("W4", "time_to_all_values_ms"),
    } if not a.instr else {
        "GetItems / Ir": ("instr", "getitems_root_svc_ir_per_call"),
        "GetValue / Ir": ("instr", "getvalue_root_svc_ir_per_call"),
        "leaf GetValue Ir": ("instr", "getvalue_leaf_svc_ir_per_call"),
        "Ir per published change": ("instr", "pub_ir_per_change"),
        "consumer Ir to READY": ("instr", "consumer_ir_to_ready"),
    }
    doc = {"schema": 1, "runs": runs, "quick": a.quick, "commands": impls, "figures": figures, "ratios_ours_over_floor": ratios,
           "headline": {k: {"ours": figures["ours"][w][m], "floor": figures["floor"][w][m],
                            "ratio": ratios.get(f"{w}.{m}")} for k, (w, m) in headline.items()}}
    text = json.dumps(doc, indent=2)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    h = doc["headline"]
    print("ours/floor: " + ", ".join(f"{k} {v['ratio']}x ({v['ours']:.4g} vs {v['floor']:.4g})" for k, v in h.items()),
          file=sys.stderr)


if __name__ == "__main__":
    main()

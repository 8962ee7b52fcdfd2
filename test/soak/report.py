"""The soak's output: summary.txt (the table), resources.csv and soak.png
(RSS, fds, loop lag p99, grid power vs target, faults as shaded bands).
The plot needs Debian's python3-matplotlib; without it the summary says so
and the run is judged all the same."""

import csv
import os

COLOURS = {
    "service": "#d62728", "service_freeze": "#d62728", "service_invalid": "#ff9896", "service_vanish": "#c49c94",
    "multi_deaf": "#9467bd", "bms_no_discharge": "#8c564b", "bms_no_charge": "#e377c2",
    "modbus_cut": "#7f7f7f", "modbus_corrupt": "#bcbd22", "hub4mode": "#17becf", "overvoltage_feed_in": "#1f77b4",
    "sighup_changed": "#ff7f0e", "sighup_broken": "#2ca02c", "plugin_fault": "#000000", "bus_stopped": "#ffbb78",
}


def write(out, profile, hours, speedup, seed, faults, results, bounds, samples, ctx):
    fields = ["hour", "rss_kb", "fds", "threads", "cpu_pct", "match_rules", "daemon_rss_kb", "lag_p50", "lag_p99",
              "lag_max", "asan"]
    with open(os.path.join(out, "resources.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        for s in samples:
            w.writerow(s)
    plot_note = plot(out, faults, samples, ctx)
    lines = [f"soak profile {profile}: {hours} simulated hours at speedup {speedup:g} (seed {seed}), "
             f"{len(faults)} faults, {sum(1 for e in ctx.events if e['what'] == 'mode')} mode changes, "
             f"{len(ctx.writes)} setpoint writes and {len(ctx.records)} bus events observed", ""]
    lines.append(f"{'invariant':58} {'result':6} {'checked':>8}  detail")
    for r in results:
        lines.append(f"{r.name:58} {'ok' if r.ok else 'FAIL':6} {r.checked:8d}  {r.detail}")
    lines.append("")
    lines.append(f"{'resource bound':58} {'result':6}  detail")
    for b in bounds:
        lines.append(f"{b.name:58} {'ok' if b.ok else 'FAIL':6}  {b.detail}")
    lines.append("")
    lines.append(f"{'hour':>5} {'RSS kB':>8} {'fds':>4} {'rules':>5} {'CPU %':>6} {'lag p50':>8} {'p99':>7} {'max':>7}")
    step = max(1, len(samples) // 24)
    for s in samples[::step] + ([samples[-1]] if samples and (len(samples) - 1) % step else []):
        def ms(v):
            return f"{v:7.2f}" if v is not None else "      -"
        lines.append(f"{s['hour']:5d} {s['rss_kb']:8d} {s['fds']:4d} {s['match_rules'] if s['match_rules'] is not None else '-':>5} "
                     f"{s['cpu_pct']:6.1f} {ms(s['lag_p50']):>8} {ms(s['lag_p99'])} {ms(s['lag_max'])}")
    lines.append("")
    lines.append("faults (simulated hours):")
    for f in faults:
        lines.append(f"  #{f.index:<3} {f.start_h:7.2f} .. {f.end_h:7.2f}  {f.describe()}")
    lines.append("")
    lines.append(plot_note)
    with open(os.path.join(out, "summary.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


def plot(out, faults, samples, ctx):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "no plot: python3-matplotlib is not installed (apt-get install python3-matplotlib)"

    def hour(t):
        return (t - ctx.t0) / ctx.H

    fig, axes = plt.subplots(4, 1, figsize=(14, 11), sharex=True)
    hs = [s["hour"] for s in samples]
    ax = axes[0]
    ax.plot(hs, [s["rss_kb"] / 1024 for s in samples], color="tab:blue", label="RSS (MiB)")
    ax.set_ylabel("host RSS, MiB")
    ax2 = ax.twinx()
    ax2.plot(hs, [s["fds"] for s in samples], color="tab:orange", label="open fds")
    ax2.plot(hs, [s["match_rules"] for s in samples], color="tab:green", label="D-Bus match rules")
    ax2.set_ylabel("fds, match rules")
    ax.legend(loc="upper left")
    ax2.legend(loc="upper right")
    ax = axes[1]
    ax.plot(hs, [s["lag_p99"] for s in samples], label="loop lag p99", color="tab:red")
    ax.plot(hs, [s["lag_p50"] for s in samples], label="loop lag p50", color="tab:gray")
    ax.set_ylabel("loop lag, ms")
    ax.set_yscale("symlog", linthresh=1.0)
    ax.legend(loc="upper left")
    ax = axes[2]
    grid = ctx.values("com.victronenergy.grid.", "/Ac/Power")
    from checks import target_at
    xs = [hour(t) for t, v in grid if v is not None]
    ys = [v for t, v in grid if v is not None]
    ax.plot(xs, ys, lw=0.4, color="tab:blue", label="grid power (meter), W")
    # the target as steps: at every accepted SetMode and every restart of the controller
    changes = sorted([t for t, _, _ in ctx.mode_timeline] +
                     [t for t, l in ctx.host_lines if "[inverter] started" in l])
    tx, ty = [], []
    for a, b in zip(changes, changes[1:] + [changes[-1] + ctx.H] if changes else []):
        y = target_at(ctx, a + 1e-6)
        tx += [hour(a), hour(b), float("nan")]
        ty += [y if y is not None else float("nan")] * 2 + [float("nan")]
    ax.plot(tx, ty, color="black", lw=1.0, label="p_grid target")
    ax.set_ylabel("W")
    ax.set_ylim(-3000, 3000)
    ax.legend(loc="upper left")
    ax = axes[3]
    ax.plot(hs, [s["cpu_pct"] for s in samples], color="tab:purple", label="host CPU, % of a core")
    ax.set_ylabel("CPU %")
    ax.set_xlabel("simulated hours")
    ax.legend(loc="upper left")
    seen = set()
    for f in faults:
        b, e, _ = ctx.times(f)
        for a in axes:
            a.axvspan(hour(b), hour(e), color=COLOURS.get(f.kind, "red"), alpha=0.25,
                      label=f.kind if (f.kind not in seen and a is axes[3]) else None)
        seen.add(f.kind)
    axes[3].legend(loc="upper left", ncol=4, fontsize=7)
    fig.suptitle("moat-victron soak: resources, loop lag, grid vs target; faults shaded")
    fig.tight_layout()
    path = os.path.join(out, "soak.png")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return f"plot: {path}"

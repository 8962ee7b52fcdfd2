#include "probe.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <fmt/format.h>

#include "cell_packet.hpp"
#include "config_merge.hpp"
#include "json.hpp"
#include "port.hpp"
#include "ring_reader.hpp"

namespace moat::bms {

namespace {

using namespace std::chrono;

std::string opt_json(const std::optional<double>& v)
{
    return v && std::isfinite(*v) ? fmt::format("{:.4f}", *v) : "null";
}

std::string snapshot_json(const msgpack::Value& config, const RingSnapshot& s)
{
    std::string out = "{\"config\":" + to_json(config) + fmt::format(",\"hops\":{},\"cells\":[", s.hops);
    for (std::size_t i = 0; i < s.cells.size(); ++i) {
        const auto& c = s.cells[i];
        out += fmt::format(
            "{}{{\"index\":{},\"voltage\":{},\"voltage_raw\":{},\"balancing\":{},\"load_over_temperature\":{},"
            "\"load_temperature\":{},\"cell_temperature\":{},\"load_raw\":{},\"cell_raw\":{},"
            "\"settings\":{{\"git_version\":{},\"board_version\":{},\"mv_per_adc\":{},\"calibration\":{:.7g},"
            "\"bypass_temp_raw\":{},\"bypass_volt_raw\":{},\"b_internal\":{},\"b_external\":{},\"num_samples\":{},\"load_resistance\":{}}}}}",
            i ? "," : "", c.index, opt_json(c.volts), c.voltage.raw(), c.voltage.balancing(), c.voltage.load_over_temperature(),
            opt_json(c.load_celsius), opt_json(c.cell_celsius), c.temps.int_raw, c.temps.ext_raw, c.settings.git_version,
            c.settings.board_version, c.settings.mv_per_adc, c.settings.calibration(), c.settings.bypass_temp_raw,
            c.settings.bypass_volt_raw, c.settings.b_internal, c.settings.b_external, c.settings.num_samples,
            c.settings.load_resistance());
    }
    out += "],\"warnings\":[";
    for (std::size_t i = 0; i < s.warnings.size(); ++i) out += (i ? "," : "") + json_string(s.warnings[i]);
    return out + "]}";
}

std::string opt_text(const std::optional<double>& v, const char* f)
{
    return v ? fmt::format(fmt::runtime(f), *v) : "-";
}

std::string text_report(const std::string& where, const msgpack::Value& config, const RingSnapshot& s)
{
    const auto* n = config_at(config, "batt.batt.n");
    std::string out;
    auto print = [&out](const char* f, const auto&... a) { out += fmt::format(fmt::runtime(f), a...); };
    print("controller on {}\n", where);
    print("configuration: {}\n", config.dump(2000));
    print("ring: {} modules (hops); configured cells: {}\n", s.hops, n ? n->dump() : "?");
    print("{:>4} {:>8} {:>5} {:>4} {:>8} {:>8} {:>9} {:>7} {:>7} {:>5}\n", "cell", "volts", "raw", "bal", "load C", "cell C",
               "cal", "byp raw", "tmp raw", "board");
    for (const auto& c : s.cells)
        print("{:>4} {:>8} {:>5} {:>4} {:>8} {:>8} {:>9.6f} {:>7} {:>7} {:>5}\n", c.index, opt_text(c.volts, "{:.4f}"), c.voltage.raw(),
                   c.voltage.balancing() ? "yes" : "-", opt_text(c.load_celsius, "{:.2f}"), opt_text(c.cell_celsius, "{:.2f}"),
                   c.settings.calibration(), c.settings.bypass_volt_raw, c.settings.bypass_temp_raw, c.settings.board_version);
    for (const auto& w : s.warnings) print("warning: {}\n", w);
    return out;
}

} // namespace

Task<int> run_probe(Loop& loop, Logger log, ProbeOptions o, std::string& out, std::string& err)
{
    SessionOptions so;
    so.device = o.device;
    so.socket = o.socket;
    so.guarded = o.guarded.value_or(!o.device.empty());
    so.ring_attempts = 3;
    const std::string where = o.device.empty() ? o.socket : o.device;
    Link link(loop, so, log);
    msgpack::Value config;
    std::optional<RingSnapshot> snap;
    auto on_up = [&](LinkSession& s) -> Task<void> {
        config = s.config;
        const auto* n = config_at(s.config, s.app + ".batt.n");
        auto r = read_ring(s, n && n->integer() ? int(*n->integer()) : 0, log);
        snap = co_await r;
    };
    std::string error;
    try {
        auto t = with_timeout(o.timeout, link.run_once(on_up));
        co_await t;
    } catch (const TimeoutError&) {
        error = fmt::format("no answer from {} within {:.3g} s", where, duration<double>(o.timeout).count());
    } catch (const Cancelled&) {
        throw;
    } catch (const std::exception& e) {
        error = e.what();
    }
    if (!error.empty()) {
        err = fmt::format("moat-bms probe: {}\n", error);
        co_return command_failed;
    }
    if (!snap || snap->hops == 0 || snap->cells.empty()) {
        err = fmt::format("moat-bms probe: no cells answered on the ring of {}\n", where);
        co_return command_no_data;
    }
    out = o.json ? snapshot_json(config, *snap) + "\n" : text_report(where, config, *snap);
    co_return command_ok;
}

ProbeOptions parse_probe(const std::vector<std::string>& args)
{
    ProbeOptions o;
    ArgReader a(args);
    while (a.next()) {
        if (a.is("--device")) o.device = a.value();
        else if (a.is("--socket")) o.socket = a.value();
        else if (a.flag("--json")) o.json = true;
        else if (a.flag("--guarded")) o.guarded = true;
        else if (a.flag("--plain")) o.guarded = false;
        else if (a.is("--timeout")) {
            const std::string v = a.value();
            double s = 0;
            auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), s);
            if (ec != std::errc() || end != v.data() + v.size() || !(s > 0 && s <= 3600))
                throw UsageError("--timeout takes seconds from 0 to 3600, not '" + v + "'");
            o.timeout = duration_cast<Duration>(duration<double>(s));
        } else throw UsageError(a.unknown());
    }
    if (o.device.empty() == o.socket.empty()) throw UsageError("give exactly one of --device PATH and --socket PATH");
    return o;
}

namespace {
Task<int> run_command(CommandContext& ctx, ProbeOptions o)
{
    std::string out, err;
    const int rc = co_await run_probe(ctx.loop, ctx.log, std::move(o), out, err);
    std::fputs(out.c_str(), stdout);
    std::fputs(err.c_str(), stderr);
    std::fflush(stdout);
    co_return rc;
}
} // namespace

const ClientCommand probe_command{
    "moat-bms",
    "read a MoaT BMS controller and its cell ring once",
    "moat-victron moat-bms probe --device PATH | --socket PATH [--json] [--plain|--guarded] [--timeout S]\n"
    "  Opens the controller's tty (exclusively) or socket, fetches its configuration,\n"
    "  and reads the ring size, every module's settings, voltage and temperatures.\n"
    "  --json prints one object with config, hops and cells. Exit 1 when the port is\n"
    "  busy or the controller does not answer, 7 when no cell answers.",
    [](const std::vector<std::string>& args) -> CommandTask {
        // The command word is "moat-bms"; its first argument must be "probe".
        if (args.empty() || args[0] != "probe") throw UsageError("usage: moat-victron moat-bms probe --device PATH | --socket PATH [--json]");
        ProbeOptions o = parse_probe(std::vector<std::string>(args.begin() + 1, args.end()));
        return [o](CommandContext& ctx) { return run_command(ctx, o); };
    },
    false,  // needs_bus: a serial port or a socket only
};

} // namespace moat::bms

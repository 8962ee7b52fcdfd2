#include "status_command.hpp"

#include "aggregate.hpp"
#include "extended.hpp"
#include "gather.hpp"
#include "line.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <fmt/format.h>

namespace moat::statusline {

namespace {

using namespace std::chrono;

struct StatusOptions {
    bool once = false;
    Duration interval = seconds(1);
    Duration wait = seconds(5);
    std::optional<Duration> max_age = seconds(60);
    LineFormat format = LineFormat::original;
};

Duration parse_seconds(const std::string& opt, const std::string& text, double min, double max)
{
    double v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(v) || v < min || v > max)
        throw UsageError(fmt::format("{} takes seconds from {} to {}, not '{}'", opt, min, max, text));
    return duration_cast<Duration>(duration<double>(v));
}

// One line on stdout; false when stdout is gone (a closed pipe).
bool print_line(const std::string& line)
{
    fmt::print(stdout, "{}\n", line);
    return std::fflush(stdout) == 0 && !std::ferror(stdout);
}

std::string compose(Monitor& monitor, const StatusOptions& o, Logger& log)
{
    const Snapshot snapshot = gather(monitor, GatherOptions{o.max_age});
    const Aggregate totals = aggregate(snapshot);
    if (const auto* why = std::get_if<Incomplete>(&totals))
        log.debug("incomplete: {}", why->message());
    std::string line = format_line(totals);
    return o.format == LineFormat::extended ? extend_line(line, snapshot) : line;
}

Task<int> run(CommandContext& ctx, StatusOptions o)
{
    auto missing = co_await wait_for_data(ctx.loop, ctx.monitor, o.wait);
    if (missing) {
        if (o.once && !have_system(ctx.monitor)) {
            ctx.log.error("{} after {:.3g} s; no line to print", *missing, duration<double>(o.wait).count());
            co_return command_no_data;
        }
        ctx.log.warning("{}", *missing);
    }
    auto& clock = ctx.loop.clock();
    TimePoint next = clock.now();
    for (;;) {
        if (!print_line(compose(ctx.monitor, o, ctx.log)) || o.once)
            co_return command_ok;
        next += o.interval;
        if (auto now = clock.now(); next <= now)
            next = now + o.interval - (now - next) % o.interval;
        co_await sleep_for(next - clock.now());
    }
}

CommandTask parse(const std::vector<std::string>& args)
{
    StatusOptions o;
    ArgReader a(args);
    while (a.next()) {
        if (a.flag("--once"))
            o.once = true;
        else if (a.flag("--extended"))
            o.format = LineFormat::extended;
        else if (a.is("--interval"))
            o.interval = parse_seconds(a.arg(), a.value(), 0.05, 3600);
        else if (a.is("--wait"))
            o.wait = parse_seconds(a.arg(), a.value(), 0, 3600);
        else if (a.is("--max-age")) {
            Duration d = parse_seconds(a.arg(), a.value(), 0, 86400);
            o.max_age = d > Duration::zero() ? std::optional(d) : std::nullopt;
        } else
            throw UsageError(a.unknown());
    }
    return [o](CommandContext& ctx) { return run(ctx, o); };
}

} // namespace

const ClientCommand status_command{
    "status",
    "print the status line every second (or once) from the bus",
    "Prints the status line (solar, battery, Multi, per-phase ESS) every second until\n"
    "interrupted, composed from the bus by this command itself: the statusline plugin\n"
    "need not run. The line is explained in the statusline plugin's README.\n\n"
    "  --once                 print one line and exit (exit 7 when there is no system service)\n"
    "  --extended             add the grid power (per phase and total) and the controller's\n"
    "                         mode and target to the line\n"
    "  --interval SECONDS     time between lines (default 1)\n"
    "  --wait SECONDS         how long to wait for the services before the first line (default 5)\n"
    "  --max-age SECONDS      a service without updates for this long counts as frozen\n"
    "                         and its values as invalid (default 60; 0 = never)\n",
    parse,
};

} // namespace moat::statusline

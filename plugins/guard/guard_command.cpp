#include "guard_command.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <set>

#include <fmt/format.h>

#include "reading.hpp"
#include "report.hpp"

namespace moat::guard {

namespace {

using namespace std::chrono;
using critical::Role;

struct GuardOptions {
    bool json = false;
    Duration wait = seconds(5);
    double planned_export = 0;
    std::set<std::string, std::less<>> ignore;
};

double parse_number(const std::string& opt, const std::string& text, double min, double max) {
    double v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(v) || v < min || v > max)
        throw UsageError(fmt::format("{} takes a number from {} to {}, not '{}'", opt, min, max, text));
    return v;
}

/// Wait (within `deadline`) for the system service, then for the services it names.
Task<void> wait_for_services(CommandContext& ctx, TimePoint deadline) {
    auto left = [&] { return std::max(Duration::zero(), deadline - ctx.loop.clock().now()); };
    co_await ctx.monitor.wait_for_service(settings_service, left());
    if (!co_await ctx.monitor.wait_for_service(system_service, left())) co_return;
    for (const char* path : {"/VebusService", "/Dc/Battery/BatteryService"}) {
        Value named = ctx.monitor.value(system_service, path);
        if (!named.is_string() || named.as_string().empty() || named.as_string().find('/') != std::string::npos)
            continue;
        co_await ctx.monitor.wait_for_service(named.as_string(), left());
    }
}

Task<int> run(CommandContext& ctx, GuardOptions o) {
    follow(ctx.monitor);
    co_await wait_for_services(ctx, ctx.loop.clock().now() + o.wait);
    if (!ctx.monitor.service(settings_service) && !ctx.monitor.service(system_service))
        ctx.log.warning("neither {} nor {} is on the bus: every check is unknown", settings_service, system_service);
    std::vector<CheckRow> rows;
    critical::Reading bms;
    for (const critical::Check& c : critical::checks()) {
        if (o.ignore.count(c.name)) continue;
        CheckRow row{&c, service_for(ctx.monitor, c.role), {}, {}};
        row.reading = co_await read_now(ctx.bus, row.service, std::string(c.path), seconds(3));
        if (c.name == "BmsChargeVoltage") bms = row.reading;
        rows.push_back(std::move(row));
    }
    const critical::Facts facts = facts_from(bms, o.planned_export);
    for (CheckRow& r : rows) r.verdict = critical::evaluate(*r.check, r.reading, facts);
    fmt::print(stdout, "{}", o.json ? format_json(rows) : format_table(rows));
    std::fflush(stdout);
    co_return exit_code(rows);
}

CommandTask parse(const std::vector<std::string>& args) {
    GuardOptions o;
    ArgReader a(args);
    while (a.next()) {
        if (a.flag("--json")) o.json = true;
        else if (a.is("--wait"))
            o.wait = duration_cast<Duration>(duration<double>(parse_number(a.arg(), a.value(), 0, 3600)));
        else if (a.is("--planned-export")) o.planned_export = parse_number(a.arg(), a.value(), 0, 1e7);
        else if (a.is("--ignore")) {
            std::string name = a.value();
            if (!critical::find_check(name)) throw UsageError(fmt::format("--ignore: unknown check '{}'", name));
            o.ignore.insert(std::move(name));
        } else throw UsageError(a.unknown());
    }
    return [o](CommandContext& ctx) { return run(ctx, o); };
}

} // namespace

const ClientCommand guard_command{
    "guard",
    "check the critical ESS settings (OvervoltageFeedIn, ESS mode, DVCC, ...) once",
    "Reads every critical setting and value from the bus and prints a table: the check,\n"
    "its state (ok, warning, critical, unknown), the value, the expected value and what\n"
    "the value means. A check whose service or path is missing is unknown. The command\n"
    "judges the values itself: the guard plugin need not run. docs/guard.md explains\n"
    "every check.\n\n"
    "Exit code: 0 every check ok, 1 a warning or an unknown check, 2 a critical one.\n\n"
    "  --json                 print JSON instead of the table\n"
    "  --wait SECONDS         how long to wait for the services (default 5)\n"
    "  --ignore NAME          leave out a check (repeatable), e.g. AssistantId without ESS\n"
    "  --planned-export WATTS warn when MaxFeedInPower is below this export (default 0 = off)\n",
    parse,
};

} // namespace moat::guard

#include "client_runner.hpp"

#include <csignal>
#include <cstdio>
#include <optional>

#include <fmt/format.h>

#include "bus_call.hpp"
#include "demo.hpp"
#include "host.hpp"
#include "moat/signal_watch.hpp"

namespace moat {

namespace {

struct CommonOptions {
    std::string bus = "system";
    LogLevel log_level = LogLevel::warning;
    bool help = false;
    std::vector<std::string> rest;
};

CommonOptions split_options(std::span<char* const> argv) {
    CommonOptions o;
    ArgReader args({argv.begin(), argv.end()});
    while (args.next()) {
        if (args.is("--bus")) o.bus = args.value();
        else if (args.is("--log-level")) {
            auto v = args.value();
            auto level = parse_log_level(v);
            if (!level) throw UsageError(fmt::format("unknown log level '{}' (debug, info, warning, error)", v));
            o.log_level = *level;
        } else if (args.is("--help") || args.is("-h")) o.help = true;
        else o.rest.push_back(args.raw());
    }
    return o;
}

// The command's task, then the end of the whole run.
Task<void> run_command(const CommandTask& task, CommandContext& ctx, int& rc, Event& done) {
    try {
        rc = co_await task(ctx);
    } catch (...) {
        done.set();
        throw;
    }
    done.set();
}

} // namespace

std::string client_command_help(const ClientCommand& c) {
    return fmt::format("Usage: moat-victron {} [OPTIONS]: {}\n\n{}"
                       "\nCommon options:\n{}"
                       "  --log-level LEVEL      debug, info, warning (default) or error\n"
                       "  --help                 print this help\n",
                       c.name, c.summary, c.usage,
                       c.needs_bus ? "  --bus BUS              \"system\" (default), \"session\", \"demo\" (the running "
                                     "demo's bus) or a D-Bus address\n"
                                   : "  --bus BUS              accepted and ignored: this command uses no D-Bus\n");
}

int run_client_command(const ClientCommand& command, std::span<char* const> args) {
    CommonOptions options;
    CommandTask task;
    try {
        options = split_options(args);
        if (options.help) {
            fmt::print("{}", client_command_help(command));
            return exit_ok;
        }
        task = command.parse(options.rest);
    } catch (const UsageError& e) {
        fmt::print(stderr, "moat-victron {}: {}\nTry 'moat-victron {} --help'.\n", command.name, e.what(),
                   command.name);
        return exit_usage;
    }
    stderr_sink()->level = options.log_level;
    Logger log{std::string(command.name)};

    Loop loop;
    std::unique_ptr<Bus> bus;
    if (!command.needs_bus) {
        // Not even a connection attempt (--bus is ignored): such a command
        // works without any bus.
        options.bus.clear();
        bus = detail::BusAccess::unconnected(loop, log.child("bus"));
    } else {
        try {
            options.bus = resolve_bus_spec(options.bus);
            bus = Bus::open(loop, options.bus, log.child("bus"));
        } catch (const std::runtime_error& e) {  // BusError, or no demo running
            log.error("{}", e.what());
            return exit_bus;
        }
    }
    int rc = command_failed;
    {
        Monitor monitor(*bus, Logger("monitor"));
        CommandContext ctx{loop, *bus, monitor, log, options.bus};
        Event stop;
        std::optional<int> forced;
        auto on_signal = [&](int) {
            if (!forced) forced = exit_ok;
            stop.set();
        };
        SignalWatch term(loop, SIGTERM, on_signal), intr(loop, SIGINT, on_signal);
        bus->on_lost([&](const std::string& why) {
            log.error("D-Bus connection lost: {}", why);
            if (!forced) forced = exit_bus;
            stop.set();
        });
        auto body = [&](TaskGroup& g) -> Task<void> {
            g.spawn(run_command(task, ctx, rc, stop), std::string(command.name));
            co_await stop.wait();
            g.cancel();
        };
        try {
            run_until_complete(loop, with_group(body), std::string(command.name));
        } catch (const std::exception& e) {
            log.error("{}", e.what());
            return forced.value_or(command_failed);
        }
        if (forced) rc = *forced;
    }
    std::fflush(stdout);
    return rc;
}

} // namespace moat

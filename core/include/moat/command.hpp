// Client commands of the executable: `moat-victron <command> [OPTIONS]`.
//
// A client command is a short-lived program that talks to the bus from the
// command line. Plugins bring them (Plugin class: `static
// std::span<const ClientCommand* const> commands()`); `moat-victron <command>`
// loads the plugin that declares it. The runner gives every command the same
// options and the same environment:
//
// - the common options `--bus BUS` (default "system"), `--log-level LEVEL`
//   (default "warning", so that the monitor's notes do not disturb the
//   output) and `--help`, taken out before the command sees its arguments;
// - a loop, a connection and a Monitor on it (CommandContext);
// - SIGINT/SIGTERM cancel the command's task and exit 0; a lost bus exits 4;
//   a usage error (UsageError from parse) exits 2 with the command's help hint.
// - a command that never uses the bus (files, a serial port) sets `needs_bus`
//   false: the runner then connects to no bus at all, so it works while the
//   bus is down or absent (early at boot, a test tree).
//
// The command itself is plain SDK code: parse its own arguments, then a task.
#pragma once

#include "moat/export.hpp"

#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "moat/bus.hpp"
#include "moat/log.hpp"
#include "moat/loop.hpp"
#include "moat/monitor.hpp"
#include "moat/task.hpp"

namespace moat {

/// A bad command line: the message says what is wrong.
class MOAT_API UsageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Walks a command line: `--opt value`, `--opt=value` and flags.
///
///     ArgReader args(argv);
///     while (args.next()) {
///         if (args.is("--bus")) bus = args.value();
///         else if (args.flag("--once")) once = true;
///         else throw UsageError(args.unknown());
///     }
class MOAT_API ArgReader {
public:
    explicit ArgReader(std::vector<std::string> args) : args_(std::move(args)) {}
    /// Move to the next argument; false at the end.
    bool next();
    /// The current argument, without an inline "=value".
    const std::string& arg() const { return name_; }
    /// The current argument exactly as given.
    const std::string& raw() const { return args_[i_]; }
    bool is(std::string_view option) const { return name_ == option; }
    /// `option` given without "=value".
    bool flag(std::string_view option) const { return name_ == option && !inline_; }
    /// The option's value: inline, or the next argument. Throws UsageError.
    std::string value();
    /// "unknown option 'x'", for a UsageError.
    std::string unknown() const;

private:
    std::vector<std::string> args_;
    std::size_t i_ = 0;
    bool started_ = false;
    std::string name_;
    std::optional<std::string> inline_;
};

/// Exit codes of client commands (those of the host apply too: 2 usage, 4 bus).
enum CommandExit : int {
    command_ok = 0,
    command_failed = 1,   ///< an unexpected error (the message says which)
    command_no_data = 7,  ///< the services the command needs did not appear
};

/// What a running client command gets. Lives as long as the command's task.
struct MOAT_API CommandContext {
    Loop& loop;
    Bus& bus;
    Monitor& monitor;
    Logger log;            ///< named after the command
    std::string bus_spec;  ///< as given with --bus
};

/// A parsed command, ready to run: returns the exit code.
using CommandTask = std::function<Task<int>(CommandContext&)>;

struct MOAT_API ClientCommand {
    std::string_view name;     ///< the word after the executable's name
    std::string_view summary;  ///< one line, for `moat-victron --help`
    std::string_view usage;    ///< what it does and its own options, for `moat-victron <command> --help`
    /// Parse the command's own arguments (the common options removed).
    /// Throws UsageError; never touches the bus.
    CommandTask (*parse)(const std::vector<std::string>& args);
    // ---- added after the first SDK release: new members go last, with a
    // default, so that existing declarations {name, summary, usage, parse} stay valid.
    /// False: the command uses no D-Bus. The runner opens no connection and
    /// ignores `--bus`; `ctx.bus` is a Bus without a connection: a call
    /// through it, or through `ctx.monitor`, throws BusError. `ctx.bus_spec`
    /// is empty.
    bool needs_bus = true;
};

} // namespace moat

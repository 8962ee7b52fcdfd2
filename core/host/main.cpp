// moat-victron: the command line. Parses options, then runs the host, checks a
// configuration, or describes plugins; or runs a client command that a plugin
// brings (`moat-victron status`: the plugin that declares it is loaded from
// the plugin path and runs it).
#include <algorithm>
#include <climits>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include <fmt/format.h>

#include "client_runner.hpp"
#include "demo.hpp"

#include "host.hpp"
#include "last_resort.hpp"
#include "private_daemon.hpp"
#include "setup.hpp"


using namespace moat;
namespace fs = std::filesystem;

namespace {

constexpr const char* default_config = "/data/moat-victron/moat-victron.toml";

const char* usage_text = R"(Usage: moat-victron [OPTIONS]
       moat-victron [--plugin-dir DIR]... [--config FILE] COMMAND [OPTIONS]
                                           (see "Commands" below)

Runs the plugins a TOML file declares on one event loop and one D-Bus connection.

Options:
  --config FILE          configuration file (default: /data/moat-victron/moat-victron.toml)
  --check-config FILE    validate FILE and the plugins it names, without touching the bus
  --bus BUS              "system", "session", "demo" (a running demo's bus) or a
                         D-Bus address; overrides [host] bus
  --plugin-dir DIR       search DIR for plugins first (repeatable, in order); then
                         [host] plugin_path, then plugin_dir or the built-in directory
  --log-level LEVEL      debug, info, warning or error; overrides [host] log_level
  --log-timestamps       prefix log lines with the time
  --demo                 start a private dbus-daemon and run the demo configuration on
                         it (with --bus: use that bus instead; with --config: that
                         file); client commands reach it with --bus demo
  --list-plugins         list the plugins along the plugin path, where each was found
                         and the commands it brings
  --help-plugin KIND     describe a plugin's configuration keys ("host" for [host])
  --version              print the version
  --help                 print this help

Host commands:
  setup                  install, boot, check, upgrade, roll back or remove the service
                         on a GX device (Venus OS); see 'moat-victron setup --help'

Commands of the plugins found (each has --help; they take --bus, default "system"):
{}
Signals: SIGTERM/SIGINT stop every plugin through its safe state, then exit 0
(a second one exits at once); SIGHUP re-reads the configuration.

Environment: MOAT_FAULT=INSTANCE:POINT[@N],... makes a plugin fail at a named
fault point (tests only; see docs/plugin-sdk.md).

Exit codes:
  0  stopped by a signal            4  D-Bus unreachable or lost
  1  internal error                 5  loop watchdog fired
  2  bad command line               6  forced exit (second signal, stop timeout)
  3  configuration or plugin error  7  (commands) the services needed did not appear
)";

struct Args {
    std::optional<std::string> config, check_config, bus, help_plugin;
    std::vector<std::string> plugin_dirs;
    std::optional<LogLevel> log_level;
    bool timestamps = false, demo = false, list_plugins = false, version = false, help = false;
};

[[noreturn]] void usage_error(const std::string& msg) {
    fmt::print(stderr, "moat-victron: {}\nTry 'moat-victron --help'.\n", msg);
    std::exit(exit_usage);
}

Args parse_args(int argc, char** argv) {
    Args a;
    ArgReader args({argv + 1, argv + argc});
    try {
        while (args.next()) {
            if (args.is("--config")) a.config = args.value();
            else if (args.is("--check-config")) a.check_config = args.value();
            else if (args.is("--bus")) a.bus = args.value();
            else if (args.is("--plugin-dir")) a.plugin_dirs.push_back(args.value());
            else if (args.is("--help-plugin")) a.help_plugin = args.value();
            else if (args.is("--log-level")) {
                auto v = args.value();
                a.log_level = parse_log_level(v);
                if (!a.log_level) throw UsageError(fmt::format("unknown log level '{}' (debug, info, warning, error)", v));
            } else if (args.flag("--log-timestamps")) a.timestamps = true;
            else if (args.flag("--demo")) a.demo = true;
            else if (args.flag("--list-plugins")) a.list_plugins = true;
            else if (args.flag("--version")) a.version = true;
            else if (args.flag("--help") || args.flag("-h")) a.help = true;
            else throw UsageError(args.unknown());
        }
    } catch (const UsageError& e) {
        usage_error(e.what());
    }
    return a;
}

fs::path exe_dir() {
    std::error_code ec;
    auto p = fs::read_symlink("/proc/self/exe", ec);
    return ec ? fs::current_path() : p.parent_path();
}

/// Build tree: plugins/ beside the executable; installed: ../lib/moat-victron/plugins.
std::string builtin_plugin_dir() {
    auto dir = exe_dir();
    if (fs::is_directory(dir / "plugins")) return (dir / "plugins").string();
    return (dir.parent_path() / "lib" / "moat-victron" / "plugins").lexically_normal().string();
}

/// --plugin-dir..., then the built-in directory (what the configuration file extends).
std::vector<std::string> command_line_path(const Args& a) {
    std::vector<std::string> dirs;
    for (auto& d : a.plugin_dirs) dirs.push_back(fs::absolute(d).lexically_normal().string());
    dirs.push_back(builtin_plugin_dir());
    return dirs;
}

/// The plugin path for what runs without a host: the command line's, with the
/// configuration file's plugin_path and plugin_dir when there is a file (the
/// given one must load; the default one is used only when it exists).
PluginPath plugin_path_for_tools(const Args& a) {
    auto dirs = command_line_path(a);
    std::string file = a.config.value_or(default_config);
    if (!a.config && !fs::exists(file)) return dirs;
    try {
        return load_config_file(file, dirs).host.plugin_path;
    } catch (const ConfigError& e) {
        if (a.config) {
            fmt::print(stderr, "{}\n", e.what());
            std::exit(exit_config);
        }
        fmt::print(stderr, "moat-victron: warning: {} is not used for the plugin path: {}\n", file, e.what());
        return dirs;
    }
}

/// A client command and the plugin that brings it (kept loaded while it runs).
struct FoundCommand {
    std::shared_ptr<PluginLibrary> library;
    const ClientCommand* command = nullptr;
};

/// Every command of every loadable plugin along `path` (the first of a name
/// wins). With `wanted`, the search stops at the plugin that brings it and
/// returns only that one (the plugins after it are never loaded).
std::vector<FoundCommand> plugin_commands(const PluginPath& path, std::string_view wanted = {}) {
    std::vector<FoundCommand> out;
    for (auto& kind : plugin_kinds(path)) {
        std::shared_ptr<PluginLibrary> lib;
        try {
            lib = load_plugin(path, kind);
        } catch (const PluginError&) {
            continue;  // --list-plugins says why
        }
        for (auto* c : lib->commands()) {
            if (!wanted.empty() && c->name == wanted) return {{lib, c}};
            bool taken = std::any_of(out.begin(), out.end(), [&](auto& f) { return f.command->name == c->name; });
            if (!taken) out.push_back({lib, c});
        }
    }
    return out;
}

std::string usage(const PluginPath& path) {
    std::string commands;
    for (auto& f : plugin_commands(path)) {
        auto summary = f.command->summary.substr(0, f.command->summary.find('\n'));
        commands += fmt::format("  {:<22} {} (plugin {})\n", f.command->name, summary, f.library->descriptor().kind);
    }
    if (commands.empty()) commands = fmt::format("  (none: no plugin in {} brings a command)\n", describe(path));
    return fmt::format(fmt::runtime(usage_text), commands);
}

std::string find_demo_config() {
    auto dir = exe_dir();
    // Installed (bin/../share/moat-victron), then the build tree's source.
    for (auto p : {dir.parent_path() / "share" / "moat-victron" / "demo.toml", dir.parent_path() / "config" / "demo.toml",
                   fs::path(MOAT_SOURCE_DIR) / "config" / "demo.toml"})
        if (fs::exists(p)) return p.lexically_normal().string();
    return "config/demo.toml";
}

std::string range_text(const ConfigKey& k) {
    if (k.type != KeyType::integer && k.type != KeyType::number) return k.choices ? k.choices : "";
    if (std::isinf(k.min) && std::isinf(k.max)) return "";
    auto num = [](double v) { return fmt::format("{}", v); };
    return fmt::format("{} .. {}", std::isinf(k.min) ? "" : num(k.min), std::isinf(k.max) ? "" : num(k.max));
}

void print_keys(std::span<const ConfigKey> keys, bool plugin_instance = true) {
    fmt::print("  {:<22} {:<16} {:<12} {}\n", "key", "type", "default", "range / choices — description");
    if (plugin_instance) {
        fmt::print("  {:<22} {:<16} {:<12} {}\n", "enabled", "boolean", "true", "run this instance");
        fmt::print("  {:<22} {:<16} {:<12} {}\n", "kind", "string", "(table name)", "which plugin this instance runs");
    }
    for (auto& k : keys) {
        auto range = range_text(k);
        fmt::print("  {:<22} {:<16} {:<12} {}{}\n", k.name, to_string(k.type), k.default_value ? k.default_value : "(required)",
                   range.empty() ? "" : "[" + range + "] ", k.description ? k.description : "");
    }
}

int help_plugin(const std::string& kind, const PluginPath& path) {
    if (kind == "host") {
        fmt::print("[host] — settings of the host itself\n\n");
        print_keys(host_keys(), false);
        return exit_ok;
    }
    try {
        auto lib = load_plugin(path, kind);
        auto& d = lib->descriptor();
        fmt::print("{} {} — {}\n{}\nfile: {}\n\n", d.kind, d.version, d.description,
                   d.restartable ? "restarted with back-off when it fails" : "not restarted when it fails", lib->path());
        print_keys(lib->keys());
        for (auto* c : lib->commands())
            fmt::print("\ncommand: moat-victron {} — {}\n", c->name, c->summary.substr(0, c->summary.find('\n')));
        return exit_ok;
    } catch (const PluginError& e) {
        fmt::print(stderr, "moat-victron: {}\n", e.what());
        return exit_config;
    }
}

int list_plugins(const PluginPath& path) {
    auto kinds = plugin_kinds(path);
    if (kinds.empty()) {
        fmt::print(stderr, "moat-victron: no plugins in the plugin path {}\n", describe(path));
        return exit_config;
    }
    fmt::print("plugin path: {}\n", describe(path));
    int rc = exit_ok;
    for (auto& k : kinds) {
        try {
            auto lib = load_plugin(path, k);
            std::string commands;
            for (auto* c : lib->commands()) commands += fmt::format(" [command: {}]", c->name);
            fmt::print("  {:<14} {:<8} {}{}\n  {:<14} {}\n", k, lib->descriptor().version, lib->descriptor().description,
                       commands, "", lib->path());
        } catch (const PluginError& e) {
            fmt::print("  {:<14} {:<8} NOT LOADABLE: {}\n", k, "-", e.what());
            rc = exit_config;
        }
    }
    return rc;
}

int check_config(const std::string& path, const std::vector<std::string>& dirs) {
    try {
        auto cfg = prepare_config(path, dirs);
        std::string list;
        for (auto& p : cfg.instances)
            list += fmt::format("\n  [{}] kind {}{}", p.section.name, p.section.kind, p.library ? "" : " (disabled)");
        fmt::print("{}: OK, {} plugin instance(s){}\n", path, cfg.instances.size(), list);
        return exit_ok;
    } catch (const ConfigError& e) {
        fmt::print(stderr, "{}\n", e.what());
        return exit_config;
    }
}

// What an emergency exit (second signal, watchdog) must clean up; read from a signal handler.
volatile pid_t demo_daemon_pid = -1;

void stop_demo_daemon() {
    if (demo_daemon_pid > 0) {
        ::kill(demo_daemon_pid, SIGTERM);
        ::waitpid(demo_daemon_pid, nullptr, 0);
    }
}

} // namespace

// (A plugin directory that cannot be read ends any run that lists plugins.)
int main(int argc, char** argv) try {
    std::signal(SIGPIPE, SIG_IGN);
    // `moat-victron [--plugin-dir DIR]... [--config FILE] COMMAND ...`
    {
        int i = 1;
        while (i + 1 < argc && (std::string_view(argv[i]) == "--plugin-dir" || std::string_view(argv[i]) == "--config"))
            i += 2;
        if (i < argc && argv[i][0] != '-') {
            Args before = parse_args(i, argv);
            if (std::string_view(argv[i]) == "setup") {
                SetupHooks hooks{.has_command = [&](const std::string& name) {
                    auto found = plugin_commands(plugin_path_for_tools(before), name);
                    return !found.empty() && found.front().command->name == name;
                }};
                return setup_main(std::span<char* const>(argv + i + 1, argv + argc), hooks);
            }
            PluginPath path = plugin_path_for_tools(before);
            auto commands = plugin_commands(path, argv[i]);
            if (commands.empty() || commands.front().command->name != argv[i]) {
                std::string names;
                for (auto& f : commands) names += (names.empty() ? "" : ", ") + std::string(f.command->name);
                usage_error(fmt::format("unknown command '{}': no plugin in the plugin path {} brings it (commands "
                                        "found: {})",
                                        argv[i], describe(path), names.empty() ? "none" : names));
            }
            return run_client_command(*commands.front().command, std::span<char* const>(argv + i + 1, argv + argc));
        }
    }
    Args args = parse_args(argc, argv);
    if (args.version) {
        fmt::print("moat-victron {} (moat SDK {}, abi {}; plugin descriptor {}.{})\n", MOAT_VERSION, sdk_version,
                   abi_fingerprint, abi_major, abi_minor);
        return exit_ok;
    }
    if (args.help) {
        fmt::print("{}", usage(plugin_path_for_tools(args)));
        return exit_ok;
    }
    std::vector<std::string> plugin_dirs = command_line_path(args);
    if (args.list_plugins) return list_plugins(plugin_path_for_tools(args));
    if (args.help_plugin) return help_plugin(*args.help_plugin, plugin_path_for_tools(args));
    if (args.check_config && args.demo) usage_error("--demo and --check-config contradict each other (use one)");
    if (args.check_config) return check_config(*args.check_config, plugin_dirs);
    // Read before anything starts (a bad value exits before the bus is touched).
    FaultPoints faults;
    if (const char* spec = std::getenv("MOAT_FAULT")) {
        try {
            faults = FaultPoints(spec);
        } catch (const std::invalid_argument& e) {
            usage_error(fmt::format("MOAT_FAULT: {}", e.what()));
        }
    }

    std::string config_path = args.config.value_or(args.demo ? find_demo_config() : default_config);
    if (args.log_level) stderr_sink()->level = *args.log_level;
    stderr_sink()->timestamps = args.timestamps;
    Logger log("host");

    PreparedConfig config;
    try {
        config = prepare_config(config_path, plugin_dirs);
    } catch (const ConfigError& e) {
        log.error("{}", e.what());
        return exit_config;
    }

    if (args.bus) {
        try {
            args.bus = resolve_bus_spec(*args.bus);
        } catch (const std::runtime_error& e) {
            log.error("{}", e.what());
            return exit_bus;
        }
    }
    std::unique_ptr<PrivateDaemon> daemon;
    std::unique_ptr<DemoBusRecord> demo_record;
    if (args.demo && !args.bus) {
        try {
            daemon = std::make_unique<PrivateDaemon>();
        } catch (const std::exception& e) {
            log.error("demo: {}", e.what());
            return exit_bus;
        }
        demo_daemon_pid = daemon->pid();
        set_emergency_cleanup(stop_demo_daemon);
        args.bus = daemon->address();
        log.info("demo: private dbus-daemon (pid {}) at {}", daemon->pid(), daemon->address());
        try {
            demo_record = std::make_unique<DemoBusRecord>(daemon->address());
        } catch (const std::exception& e) {
            log.warning("demo: cannot record the bus address for '--bus demo': {}", e.what());
        }
        std::string self = (exe_dir() / "moat-victron").string();
        log.info("demo: try these in another terminal (Ctrl-C here stops the demo):");
        log.info("  {} status --bus demo --extended", self);
        log.info("  {} inverter --bus demo state", self);
        log.info("  {} inverter --bus demo set-mode p_grid power=-200", self);
        log.info("demo: or any D-Bus client: gdbus introspect --address '{}' --dest com.victronenergy.system "
                 "--object-path /",
                 daemon->address());
    }

    HostOptions options;
    options.config_path = config_path;
    options.plugin_dirs = plugin_dirs;
    options.bus = args.bus;
    options.log_level = args.log_level;
    options.log_timestamps = args.timestamps;
    options.faults = std::move(faults);
    int rc;
    {
        Loop loop;
        Host host(loop, options, std::move(config));
        rc = host.run();
    }
    demo_daemon_pid = -1;
    return rc;
} catch (const PluginError& e) {
    fmt::print(stderr, "moat-victron: {}\n", e.what());
    return exit_config;
}

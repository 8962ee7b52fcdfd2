// The host: loads the configured plugins, runs and supervises each instance,
// handles SIGTERM/SIGINT (safe stop), SIGHUP (reload), a lost bus and the
// loop watchdog.
#pragma once

#include <list>
#include <memory>
#include <optional>
#include <string>

#include "config_file.hpp"
#include "moat/plugin.hpp"
#include "plugin_loader.hpp"

namespace moat {

class LoopWatchdog;
class LoopLagSampler;

/// Process exit codes (documented in README.md and --help).
enum ExitCode : int {
    exit_ok = 0,
    exit_failure = 1,      ///< unexpected internal error
    exit_usage = 2,        ///< bad command line
    exit_config = 3,       ///< configuration or plugin could not be loaded
    exit_bus = 4,          ///< D-Bus unreachable or lost
    exit_watchdog = 5,     ///< the loop stalled longer than the watchdog allows
    exit_forced = 6,       ///< second signal, or plugins did not stop in time
};

struct HostOptions {
    std::string config_path;
    std::vector<std::string> plugin_dirs;  ///< --plugin-dir..., then the built-in directory
    std::optional<std::string> bus;        ///< --bus overrides [host] bus
    std::optional<LogLevel> log_level;     ///< --log-level overrides [host] log_level
    bool log_timestamps = false;
    FaultPoints faults;                    ///< MOAT_FAULT: where tests make plugins fail
};

/// A configuration with every enabled plugin loaded and its keys validated.
struct PreparedInstance {
    InstanceSection section;
    std::shared_ptr<PluginLibrary> library;  ///< null when disabled
    Config config;
};
struct PreparedConfig {
    ConfigFile file;
    std::vector<PreparedInstance> instances;
};

/// Load the file, load each enabled instance's plugin and validate its keys.
/// Throws ConfigError naming file, line, instance and key.
/// `plugin_dirs` as for load_config_file.
PreparedConfig prepare_config(const std::string& path, const std::vector<std::string>& plugin_dirs);

class Host {
public:
    Host(Loop& loop, HostOptions options, PreparedConfig config);
    ~Host();
    /// Run until stopped; returns the process exit code.
    int run();

private:
    struct Instance;
    Task<void> main();
    Task<void> supervise(Instance& inst);
    Task<void> safe_state(Instance& inst, Plugin& plugin);
    Task<void> reload();
    void start(TaskGroup& g, std::unique_ptr<Instance> inst);
    void begin_stop(int code, std::string_view why);
    TimePoint stop_deadline() const;

    Loop& loop_;
    HostOptions options_;
    PreparedConfig config_;
    Logger log_;
    std::unique_ptr<Bus> bus_;
    std::unique_ptr<Monitor> monitor_;  ///< after bus_: goes before it
    std::unique_ptr<Settings> settings_;  ///< after monitor_: goes before it
    std::unique_ptr<LoopWatchdog> watchdog_;
    std::unique_ptr<LoopLagSampler> loop_lag_;  ///< only when logging at debug level from the start
    std::list<std::unique_ptr<Instance>> instances_;
    TaskGroup* group_ = nullptr;
    Event stop_requested_;
    std::optional<TimePoint> stopping_since_;
    Timer backstop_;
    int exit_code_ = exit_ok;
    bool reload_pending_ = false, reloading_ = false;
};

} // namespace moat

// The host's configuration file: a [host] table and one table per plugin instance.
#pragma once

#include <string>
#include <vector>

#include "config_toml.hpp"
#include "moat/log.hpp"
#include "moat/loop.hpp"

namespace moat {

struct HostConfig {
    std::string bus = "system";
    /// Where plugins are searched, in order (absolute): the command line's
    /// --plugin-dir, then plugin_path, then plugin_dir (or the built-in directory).
    std::vector<std::string> plugin_path;
    LogLevel log_level = LogLevel::info;
    bool log_timestamps = false;
    Duration restart_delay = std::chrono::seconds(1);
    Duration restart_max_delay = std::chrono::seconds(60);
    double restart_factor = 2.0;
    Duration restart_reset_after = std::chrono::seconds(60);  ///< a run this long resets the back-off
    Duration watchdog = std::chrono::seconds(30);             ///< 0 disables the loop watchdog
    Duration stop_timeout = std::chrono::seconds(3);
};

/// One plugin instance's table as written in the file.
struct InstanceSection {
    std::string name;
    std::string kind;
    bool enabled = true;
    std::shared_ptr<const toml::table> doc;  ///< keeps `table` (and its line numbers) alive
    const toml::table* table = nullptr;
    std::size_t line = 0;
};

struct ConfigFile {
    std::string path;
    std::shared_ptr<const toml::table> doc;
    HostConfig host;
    std::vector<InstanceSection> instances;
    /// read_config_file(): the file's problems so far (the [host] table's and
    /// the instance tables' kind/enabled), in the order of the file.
    std::vector<std::string> problems;
    /// plugin_dir and plugin_path are valid: plugins can be looked for.
    bool plugin_path_known = true;
};

/// The keys of the [host] table (shown by --help-plugin host).
std::span<const ConfigKey> host_keys();

/// A TCP port free on 127.0.0.1, the same for the whole process: what
/// `@FREE_PORT@` in a configuration file becomes (the demo's simulated meter
/// and the meters plugin reading it agree on it; two demos never share one).
int free_tcp_port();

/// A directory of this process's own, made on first use (under
/// $XDG_RUNTIME_DIR, else /tmp) and removed with everything in it when the
/// process exits: what `@RUN_DIR@` in a configuration file becomes (the
/// demo's pty and energy record live there, so a demo leaves nothing behind).
const std::string& run_dir();

/// Read and check the file's syntax, the [host] table and each instance's
/// `enabled`/`kind`. Plugin keys are checked by the host after loading the
/// plugin. Throws ConfigError "FILE:LINE: ...".
///
/// `plugin_dirs` is the search path without the file: the command line's
/// directories, then the built-in one (last). The file's plugin_path goes
/// before the built-in directory, and its plugin_dir replaces it; relative
/// directories are taken relative to the file's directory.
ConfigFile load_config_file(const std::string& path, const std::vector<std::string>& plugin_dirs);
/// The same, but a [host] or instance-table problem is collected in
/// `problems` instead of thrown (with the valid [host] settings applied), so
/// the plugins' keys are checked in the same run. A file that cannot be read
/// or parsed still throws.
ConfigFile read_config_file(const std::string& path, const std::vector<std::string>& plugin_dirs);
inline ConfigFile load_config_file(const std::string& path, const std::string& default_plugin_dir) {
    return load_config_file(path, std::vector<std::string>{default_plugin_dir});
}

} // namespace moat

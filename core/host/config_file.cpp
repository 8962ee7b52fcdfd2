#include "config_file.hpp"

#include "config_check.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <netinet/in.h>
#include <sstream>
#include <sys/socket.h>
#include <unistd.h>
#include <filesystem>
#include <fmt/format.h>

namespace moat {

namespace {

const ConfigKey host_key_table[] = {
    {"bus", KeyType::string, "\"system\"", "D-Bus to use: \"system\", \"session\" or an address (unix:path=...)"},
    {"plugin_dir", KeyType::string, "\"\"",
     "directory with the plugin .so files; relative to this file; empty = the directory installed with the host"},
    {"plugin_path", KeyType::string_list, "[]",
     "more plugin directories, searched in order before plugin_dir (the first <kind>.so found wins); relative to "
     "this file"},
    {"log_level", KeyType::string, "\"info\"", "least severe level logged", -no_limit, no_limit,
     "debug|info|warning|error"},
    {"log_timestamps", KeyType::boolean, "false", "prefix log lines with the time (multilog adds its own on a GX)"},
    {"restart_delay", KeyType::number, "1.0", "seconds before a failed plugin is restarted the first time", 0.0, 3600},
    {"restart_max_delay", KeyType::number, "60.0", "upper bound of the restart back-off, seconds", 0.0, 86400},
    {"restart_factor", KeyType::number, "2.0", "back-off growth per consecutive failure", 1.0, 100},
    {"restart_reset_after", KeyType::number, "60.0", "seconds of healthy running that reset the back-off", 0.0, 86400},
    {"watchdog", KeyType::number, "30.0",
     "seconds the loop may stall before the host logs what ran and exits (code 5); 0 = off", 0.0, 3600},
    {"stop_timeout", KeyType::number, "3.0", "seconds all plugins together get to reach their safe state on stop",
     0.1, 60},
};

Duration seconds(double s) { return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(s)); }

} // namespace

std::span<const ConfigKey> host_keys() { return host_key_table; }

const std::string& run_dir() {
    // One directory per process, like the port: a reload sees the same file again.
    static const std::string dir = [] {
        const char* base = std::getenv("XDG_RUNTIME_DIR");
        std::string templ = fmt::format("{}/moat-victron-run-XXXXXX", base && *base ? base : "/tmp");
        if (!::mkdtemp(templ.data()))
            throw ConfigError(fmt::format("@RUN_DIR@: cannot make {}: {}", templ, std::strerror(errno)));
        static std::string made;
        made = templ;
        std::atexit([] {
            std::error_code ec;
            std::filesystem::remove_all(made, ec);
        });
        return templ;
    }();
    return dir;
}

int free_tcp_port() {
    // One port per process: a reload sees the same file again.
    static int port = [] {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        int p = -1;
        if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
            p = ntohs(a.sin_port);
        if (fd >= 0) ::close(fd);
        return p;
    }();
    if (port <= 0) throw ConfigError("@FREE_PORT@: no free TCP port on 127.0.0.1");
    return port;
}

ConfigFile load_config_file(const std::string& path, const std::vector<std::string>& plugin_dirs) {
    ConfigFile out = read_config_file(path, plugin_dirs);
    if (!out.problems.empty()) throw ConfigError(join_problems(out.problems));
    return out;
}

ConfigFile read_config_file(const std::string& path, const std::vector<std::string>& plugin_dirs) {
    ConfigFile out;
    out.path = path;
    auto parsed = std::make_shared<toml::table>();
    std::string text;
    {
        std::ifstream f(path);
        if (!f) throw ConfigError(fmt::format("{}: cannot read the file: {}", path, std::strerror(errno)));
        std::stringstream s;
        s << f.rdbuf();
        text = s.str();
    }
    auto substitute = [&text](std::string_view placeholder, auto value_of) {
        if (text.find(placeholder) == std::string::npos) return;
        const std::string value = value_of();
        for (auto at = text.find(placeholder); at != std::string::npos; at = text.find(placeholder, at + value.size()))
            text.replace(at, placeholder.size(), value);
    };
    substitute("@FREE_PORT@", [] { return std::to_string(free_tcp_port()); });
    substitute("@RUN_DIR@", [] { return run_dir(); });
    try {
        *parsed = parse_toml_text(text, path);
    } catch (const toml::parse_error& e) {
        if (e.source().begin.line == 0) throw ConfigError(fmt::format("{}: {}", path, e.description()));
        throw ConfigError(fmt::format("{}:{}:{}: TOML syntax error: {}", path, e.source().begin.line,
                                      e.source().begin.column, e.description()));
    }

    out.doc = parsed;
    const toml::table& root = *parsed;
    static const toml::table no_host;
    const toml::table* host_table = &no_host;
    std::vector<std::string> problems;
    if (auto* h = root.get("host")) {
        if (h->is_table()) host_table = h->as_table();
        else problems.push_back(fmt::format("{}[host]: must be a table", location(path, h)));
    }
    // Every problem of the file is collected, not only the first: the
    // [host] table's too; its valid keys still apply.
    CheckedKeys checked = check_keys(path, "host", out.doc, *host_table, host_keys(), false);
    problems.insert(problems.end(), checked.problems.begin(), checked.problems.end());
    const Config& host = checked.config;
    auto& hc = out.host;
    auto apply = [&](std::string_view key, auto set) {
        if (!checked.valid(key)) return;
        try {
            set();
        } catch (const ConfigError& e) {
            problems.push_back(e.what());
        }
    };
    apply("bus", [&] {
        hc.bus = host.get_string("bus");
        if (hc.bus.empty()) host.fail("bus", "must not be empty");
    });
    apply("log_level", [&] { hc.log_level = *parse_log_level(host.get_string("log_level")); });
    apply("log_timestamps", [&] { hc.log_timestamps = host.get_bool("log_timestamps"); });
    apply("restart_delay", [&] { hc.restart_delay = seconds(host.get_number("restart_delay")); });
    apply("restart_max_delay", [&] { hc.restart_max_delay = seconds(host.get_number("restart_max_delay")); });
    apply("restart_factor", [&] { hc.restart_factor = host.get_number("restart_factor"); });
    apply("restart_reset_after", [&] { hc.restart_reset_after = seconds(host.get_number("restart_reset_after")); });
    apply("watchdog", [&] { hc.watchdog = seconds(host.get_number("watchdog")); });
    apply("stop_timeout", [&] { hc.stop_timeout = seconds(host.get_number("stop_timeout")); });
    auto beside_file = [&](const std::string& dir) {
        if (std::filesystem::path(dir).is_absolute()) return dir;
        return (std::filesystem::absolute(path).parent_path() / dir).lexically_normal().string();
    };
    out.plugin_path_known = checked.valid("plugin_path") && checked.valid("plugin_dir");
    hc.plugin_path.assign(plugin_dirs.begin(), plugin_dirs.end() - (plugin_dirs.empty() ? 0 : 1));
    apply("plugin_path", [&] {
        for (auto& dir : host.get_strings("plugin_path")) {
            if (dir.empty()) {
                out.plugin_path_known = false;
                host.fail("plugin_path", "an empty directory name");
            }
            hc.plugin_path.push_back(beside_file(dir));
        }
    });
    std::string dir = checked.valid("plugin_dir") ? host.get_string("plugin_dir") : std::string();
    if (!dir.empty()) hc.plugin_path.push_back(beside_file(dir));
    else if (!plugin_dirs.empty()) hc.plugin_path.push_back(plugin_dirs.back());

    for (auto&& [key, node] : root) {
        std::string name(key.str());
        if (name == "host") continue;
        if (!node.is_table()) {
            problems.push_back(fmt::format("{}key '{}': expected a table [{}] for a plugin instance, got a value",
                                           location(path, &node), name, name));
            continue;
        }
        InstanceSection s;
        s.name = name;
        s.doc = out.doc;
        s.table = node.as_table();
        s.line = node.source().begin.line;
        s.kind = name;
        if (auto* k = s.table->get("kind")) {
            if (!k->is_string() || k->as_string()->get().empty()) {
                problems.push_back(fmt::format("{}[{}] key 'kind': expected a plugin kind (a non-empty string)",
                                               location(path, k), name));
                continue;
            }
            s.kind = k->as_string()->get();
        }
        if (auto* e = s.table->get("enabled")) {
            if (!e->is_boolean()) {
                problems.push_back(fmt::format("{}[{}] key 'enabled': expected boolean", location(path, e), name));
                continue;
            }
            s.enabled = e->as_boolean()->get();
        }
        out.instances.push_back(std::move(s));
    }
    // toml++ keeps tables sorted by key: report and start in the order of the file.
    std::stable_sort(problems.begin(), problems.end(), [&](const std::string& a, const std::string& b) {
        auto line = [&](const std::string& m) { return std::atol(m.c_str() + path.size() + 1); };  // "PATH:LINE: "
        return line(a) < line(b);
    });
    out.problems = std::move(problems);
    std::sort(out.instances.begin(), out.instances.end(), [](auto& a, auto& b) { return a.line < b.line; });
    return out;
}

} // namespace moat

// Configuration: a plugin declares its keys (type, default, range,
// description); the host validates each instance's TOML table against them
// before anything starts, and hands the plugin a Config with every key set.
#pragma once

#include "moat/export.hpp"

#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

namespace moat {

/// A configuration problem, already worded as "FILE:LINE: [instance] key 'x': reason".
class MOAT_API ConfigError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

enum class KeyType {
    boolean,
    integer,
    number,       ///< integer or floating point in TOML, read as double
    string,
    string_list,  ///< array of strings
    table,        ///< a sub-table the plugin checks itself (Config::node)
    array,        ///< any array the plugin checks itself (Config::node)
};
MOAT_API std::string_view to_string(KeyType type);

inline constexpr double no_limit = std::numeric_limits<double>::infinity();

/// One key a plugin accepts. `default_value` is TOML text ("1.5", "\"ttyUSB0\"",
/// "[1, 2]"); nullptr means the key is required.
struct MOAT_API ConfigKey {
    const char* name;
    KeyType type;
    const char* default_value;
    const char* description;
    double min = -no_limit;  ///< for integer/number: inclusive range
    double max = no_limit;
    /// For string keys: allowed values separated by '|', e.g. "system|session"; nullptr = any.
    const char* choices = nullptr;
};

/// Keys every instance table has besides the plugin's own.
inline constexpr std::string_view reserved_keys[] = {"enabled", "kind"};

/// A validated instance configuration, as a plugin sees it.
class MOAT_API Config {
public:
    Config() = default;
    /// `doc` keeps the parsed file alive: toml++ copies lose their line numbers.
    Config(std::string file, std::string instance, toml::table values, std::shared_ptr<const toml::table> doc,
           const toml::table* source);

    const std::string& instance() const { return instance_; }
    const std::string& file() const { return file_; }

    bool get_bool(std::string_view key) const;
    std::int64_t get_int(std::string_view key) const;
    double get_number(std::string_view key) const;
    std::string get_string(std::string_view key) const;
    std::vector<std::string> get_strings(std::string_view key) const;
    /// Raw node for table/array keys; nullptr when absent. A key written in
    /// the file gives the file's own node, so its parts keep their line
    /// numbers for fail_at(); a default gives the default's node.
    const toml::node* node(std::string_view key) const;
    const toml::table& values() const { return values_; }

    /// "FILE:LINE: [instance] key 'x'" (line of the key in the file when it was given there).
    std::string where(std::string_view key) const;
    /// Throws ConfigError naming file, line, instance and key.
    [[noreturn]] void fail(std::string_view key, std::string_view reason) const;
    /// Throws ConfigError "FILE:LINE: [instance] what: reason" for a node
    /// inside a table/array key (its own line when it came from the file).
    [[noreturn]] void fail_at(const toml::node& node, std::string_view what, std::string_view reason) const;

    /// Something an instance holds exclusively, named after the key that
    /// chose it: a D-Bus name, a serial device. validate() claims them; the
    /// host reports two enabled instances claiming the same resource as a
    /// configuration error (both would fail at run time).
    struct Claim {
        std::string key;
        std::string resource;  ///< e.g. "D-Bus name org.m_o_a_t.inv.main"
    };
    void claim(std::string_view key, std::string resource) const;
    const std::vector<Claim>& claims() const { return claims_; }

private:
    const toml::node& at(std::string_view key) const;
    std::string file_, instance_;
    toml::table values_;                      ///< with defaults filled in
    std::shared_ptr<const toml::table> doc_;  ///< the parsed file
    const toml::table* source_ = nullptr;     ///< the section in doc_, for line numbers
    mutable std::vector<Claim> claims_;       ///< filled by the plugin's validate()
};

/// Several problems as one ConfigError message, one per line.
MOAT_API std::string join_problems(std::span<const std::string> problems);

/// Check `section` (an instance's table inside `doc`, parsed from `file`)
/// against `keys` (and the reserved keys when `plugin_instance`); returns the
/// complete configuration or throws one ConfigError listing every problem found.
MOAT_API Config validate_config(std::string_view file, std::string_view instance, std::shared_ptr<const toml::table> doc,
                       const toml::table& section, std::span<const ConfigKey> keys, bool plugin_instance = true);

/// The key's default as a one-entry table {value = <default>}; empty when the
/// key is required. Throws std::logic_error for a broken plugin declaration.
MOAT_API toml::table parse_default(const ConfigKey& key);

/// Whether a TOML node has the type a key asks for.
MOAT_API bool has_type(const toml::node& node, KeyType type);

/// Location prefix "FILE:LINE: " for a node (just "FILE: " when it has no source).
MOAT_API std::string location(std::string_view file, const toml::node* node);

} // namespace moat

// Configuration: a plugin declares its keys (type, default, range,
// description); the host validates each instance's TOML table against them
// before anything starts, and hands the plugin a Config with every key set.
#pragma once

#include "moat/export.hpp"

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

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
    table,        ///< a sub-table the plugin checks itself (Config::node, validate_table)
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

namespace detail {
struct ConfigData;
struct ConfigAccess;  ///< the host's side (lib/config_toml.hpp)
} // namespace detail

/// One value inside a configuration (a table or array key's contents), as
/// written in the file: read it, walk into tables and arrays, and name its
/// line in an error (Config::fail_at). Empty when there is no such value.
class MOAT_API ConfigNode {
public:
    enum class Kind { none, boolean, integer, floating, string, table, array, other };

    ConfigNode() = default;
    explicit operator bool() const { return node_ != nullptr; }
    Kind kind() const;
    bool is_number() const { return kind() == Kind::integer || kind() == Kind::floating; }
    /// "a string", "an integer", "a floating-point number", "a boolean",
    /// "a table", "an array", "a date or time", "nothing".
    std::string type_name() const;

    /// The value when it has that type (as_number: an integer or a float).
    std::optional<bool> as_bool() const;
    std::optional<std::int64_t> as_int() const;
    std::optional<double> as_number() const;
    std::optional<std::string> as_string() const;

    /// A table's keys in the file's order; empty for anything else.
    std::vector<std::string> keys() const;
    bool contains(std::string_view key) const { return bool(get(key)); }
    /// A table's entry; empty when absent or when this is not a table.
    ConfigNode get(std::string_view key) const;
    /// An array's length and elements (0 and empty for anything else).
    std::size_t size() const;
    ConfigNode at(std::size_t index) const;

    /// Written in the file (false for a key's default).
    bool from_file() const;
    /// "FILE:LINE: " where the value was written ("FILE: " for a default).
    std::string location() const;

private:
    friend class Config;
    friend struct detail::ConfigAccess;
    ConfigNode(std::shared_ptr<const detail::ConfigData> data, const void* node) : data_(std::move(data)), node_(node) {}
    std::shared_ptr<const detail::ConfigData> data_;  ///< keeps the parsed file alive
    const void* node_ = nullptr;                       ///< the parser's node (lib/config.cpp)
};

/// A validated instance configuration, as a plugin sees it. Copies share the
/// parsed file.
class MOAT_API Config {
public:
    Config();

    const std::string& instance() const;
    const std::string& file() const;

    bool get_bool(std::string_view key) const;
    std::int64_t get_int(std::string_view key) const;
    double get_number(std::string_view key) const;
    std::string get_string(std::string_view key) const;
    std::vector<std::string> get_strings(std::string_view key) const;
    /// The value of a key, typically a table or array key; empty when absent.
    /// A key written in the file gives the file's own value, so its parts
    /// keep their line numbers for fail_at(); a default gives the default.
    ConfigNode node(std::string_view key) const;

    /// "FILE:LINE: [instance] key 'x'" (line of the key in the file when it was given there).
    std::string where(std::string_view key) const;
    /// Throws ConfigError naming file, line, instance and key.
    [[noreturn]] void fail(std::string_view key, std::string_view reason) const;
    /// Throws ConfigError "FILE:LINE: [instance] what: reason" for a node
    /// inside a table/array key (its own line when it came from the file).
    [[noreturn]] void fail_at(const ConfigNode& node, std::string_view what, std::string_view reason) const;

    /// Record a problem ("FILE:LINE: [instance] key 'x': reason") and go on
    /// checking, so that --check-config reports every problem of a file in
    /// one run. After validate() returns, the host treats any recorded
    /// problem as a configuration error. Code that also builds the
    /// configuration (a constructor) calls throw_problems() before it uses
    /// what it checked.
    void problem(std::string_view key, std::string_view reason) const;
    /// The same for a node inside a table/array key (fail_at's wording).
    void problem_at(const ConfigNode& node, std::string_view what, std::string_view reason) const;
    /// Record the problems of a check that threw (Config::fail, fail_at,
    /// validate_table), one per line of its message, and go on:
    /// `try { part(c); } catch (const ConfigError& e) { c.problem(e); }`.
    void problem(const ConfigError& error) const;
    /// The problems recorded so far.
    const std::vector<std::string>& problems() const;
    /// Throws one ConfigError listing the recorded problems and forgets
    /// them; does nothing when there are none.
    void throw_problems() const;

    /// Something an instance holds exclusively, named after the key that
    /// chose it: a D-Bus name, a serial device. validate() claims them; the
    /// host reports two enabled instances claiming the same resource as a
    /// configuration error (both would fail at run time).
    struct Claim {
        std::string key;
        std::string resource;  ///< e.g. "D-Bus name org.m_o_a_t.inv.main"
    };
    void claim(std::string_view key, std::string resource) const;
    const std::vector<Claim>& claims() const;

private:
    friend struct detail::ConfigAccess;
    explicit Config(std::shared_ptr<detail::ConfigData> data) : data_(std::move(data)) {}
    std::shared_ptr<detail::ConfigData> data_;
};

/// Check a table inside a configuration (e.g. a KeyType::table key's value)
/// against `keys`, with the same rules and messages as an instance's own
/// table; `instance` names it in messages (e.g. "sim.grid"). Throws one
/// ConfigError listing every problem.
MOAT_API Config validate_table(const ConfigNode& table, std::string_view instance, std::span<const ConfigKey> keys);

/// Parse TOML text and validate the table `[instance]` in it against `keys`:
/// what the host does for an instance, for a plugin's own tests. Throws
/// ConfigError (a syntax error too, with its line).
MOAT_API Config parse_config(std::string_view toml_text, std::string_view file, std::string_view instance,
                             std::span<const ConfigKey> keys);

/// Parse a TOML document of a plugin's own (a manifest, a data file): its
/// root table, read with ConfigNode (whose location() names FILE:LINE).
/// Throws ConfigError "FILE:LINE:COLUMN: TOML syntax error: ..." .
MOAT_API ConfigNode parse_toml(std::string_view toml_text, std::string_view file);

/// Several problems as one ConfigError message, one per line.
MOAT_API std::string join_problems(std::span<const std::string> problems);

} // namespace moat

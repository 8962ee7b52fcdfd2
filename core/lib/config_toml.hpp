// Internal: configuration on top of toml++ — the host parses the file and
// validates each instance's table; plugins see only moat/config.hpp.
#pragma once

#include "moat/config.hpp"

// Every use of toml++ in the process includes it through here, with these
// definitions. toml++ 3.3.0 asserts (aborts a Debug build; in a clang
// Release build the assertion is an assumption, i.e. undefined behaviour)
// on some malformed input, e.g. `[&x]`, that its parser would otherwise
// report as a syntax error: its assertions are off, so it does report it.
#include <toml++/impl/preprocessor.h>
#undef TOML_ASSERT
#undef TOML_ASSERT_ASSUME
#define TOML_ASSERT(expr) static_assert(true)
#define TOML_ASSERT_ASSUME(expr) static_assert(true)
#include <toml++/toml.h>
#include <utility>

namespace moat {

namespace detail {

/// What a Config and its ConfigNodes share: the parsed file and the
/// instance's values with defaults filled in.
struct ConfigData {
    std::string file, instance;
    toml::table values;                       ///< with defaults filled in
    std::shared_ptr<const toml::table> doc;   ///< the parsed file (keeps source nodes alive)
    const toml::table* source = nullptr;      ///< the section in doc, for line numbers
    std::vector<Config::Claim> claims;        ///< filled by the plugin's validate()
    std::vector<std::string> problems;        ///< recorded by Config::problem(), not thrown yet
};

struct MOAT_API ConfigAccess {
    static Config make(std::shared_ptr<ConfigData> data) { return Config(std::move(data)); }
    /// A Config of `values` (defaults filled in) for the table `source` of `doc`.
    static Config make(std::string_view file, std::string_view instance, toml::table values,
                       std::shared_ptr<const toml::table> doc, const toml::table* source) {
        auto data = std::make_shared<ConfigData>();
        data->file = std::string(file);
        data->instance = std::string(instance);
        data->values = std::move(values);
        data->doc = std::move(doc);
        data->source = source;
        return make(std::move(data));
    }
    static const ConfigData& data(const Config& c) { return *c.data_; }
    /// The problems a check recorded (Config::problem), now forgotten.
    static std::vector<std::string> take_problems(const Config& c) { return std::exchange(c.data_->problems, {}); }
    static const toml::node* node(const ConfigNode& n) { return static_cast<const toml::node*>(n.node_); }
    static const std::shared_ptr<const ConfigData>& data(const ConfigNode& n) { return n.data_; }
    static ConfigNode wrap(std::shared_ptr<const ConfigData> data, const toml::node* n) {
        return n ? ConfigNode(std::move(data), n) : ConfigNode();
    }
};

} // namespace detail

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

/// toml::parse(text, file), safe from the characters toml++ 3.3.0 cannot
/// classify (Latin-1 letters such as 'ä', Greek, Cyrillic and a few other
/// blocks reach its __builtin_unreachable() where it looks for whitespace):
/// they are parsed as private-use stand-ins and restored in every string and
/// key. A private-use character U+E000..U+EBED in the text is refused.
/// Throws toml::parse_error.
MOAT_API toml::table parse_toml_text(std::string_view text, std::string_view file = {});

/// Location prefix "FILE:LINE: " for a node (just "FILE: " when it has no source).
MOAT_API std::string location(std::string_view file, const toml::node* node);

} // namespace moat

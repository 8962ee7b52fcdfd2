// Checking a table against its declared keys so that every problem of a file
// is found in one run: the problems, and a configuration of the keys that are
// valid, so that later checks (the [host] settings, a plugin's validate())
// still run on what they need.
#pragma once

#include <memory>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config_toml.hpp"

namespace moat {

struct CheckedKeys {
    /// Every problem of the table's keys, "FILE:LINE: [instance] key 'x': reason".
    std::vector<std::string> problems;
    /// The keys that are valid (given or defaulted); the others are absent.
    Config config;
    /// The declared keys that are not valid (wrong type, out of range, missing).
    std::set<std::string, std::less<>> invalid;
    /// An invalid key of type table or array: a check that reads the file's
    /// nodes (Config::node) would see it unchecked.
    bool invalid_node_key = false;

    bool valid(std::string_view key) const { return !invalid.contains(key); }
};

/// validate_config() that collects instead of throwing.
CheckedKeys check_keys(std::string_view file, std::string_view instance, std::shared_ptr<const toml::table> doc,
                       const toml::table& section, std::span<const ConfigKey> keys, bool plugin_instance = true);

/// The lines of a later check's `problems` that are not about one of `keys`
/// of `instance` ("[instance] key 'x'", already reported).
std::vector<std::string> new_problems(const std::string& problems, std::string_view instance,
                                      const std::set<std::string, std::less<>>& keys);

} // namespace moat

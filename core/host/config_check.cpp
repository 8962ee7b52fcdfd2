#include "config_check.hpp"

#include <fmt/format.h>

namespace moat {

namespace {

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::size_t at = 0;
    while (at <= text.size()) {
        std::size_t end = text.find('\n', at);
        if (end == std::string::npos) end = text.size();
        if (end > at) out.push_back(text.substr(at, end - at));
        at = end + 1;
    }
    return out;
}

} // namespace

CheckedKeys check_keys(std::string_view file, std::string_view instance, std::shared_ptr<const toml::table> doc,
                       const toml::table& section, std::span<const ConfigKey> keys, bool plugin_instance) {
    CheckedKeys out;
    try {
        out.config = validate_config(file, instance, doc, section, keys, plugin_instance);
        return out;
    } catch (const ConfigError& e) {
        out.problems = lines_of(e.what());
    }
    // Which declared keys are valid: each on its own (the same checks, one key
    // at a time), so the valid ones still make a configuration.
    toml::table values;
    for (const ConfigKey& key : keys) {
        toml::table one;
        if (const toml::node* given = section.get(key.name)) one.insert(key.name, *given);
        try {
            Config single = validate_config(file, instance, doc, one, std::span<const ConfigKey>(&key, 1), false);
            values.insert(key.name, *detail::ConfigAccess::data(single).values.get(key.name));
        } catch (const ConfigError&) {
            out.invalid.insert(key.name);
            out.invalid_node_key = out.invalid_node_key || key.type == KeyType::table || key.type == KeyType::array;
        }
    }
    out.config = detail::ConfigAccess::make(file, instance, std::move(values), std::move(doc), &section);
    return out;
}

std::vector<std::string> new_problems(const std::string& problems, std::string_view instance,
                                      const std::set<std::string, std::less<>>& keys) {
    std::vector<std::string> out;
    for (auto& line : lines_of(problems)) {
        bool known = false;
        for (auto& k : keys) known = known || line.find(fmt::format("[{}] key '{}'", instance, k)) != std::string::npos;
        if (!known) out.push_back(line);
    }
    return out;
}

} // namespace moat

#include "moat/config.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>

namespace moat {

std::string_view to_string(KeyType type) {
    switch (type) {
    case KeyType::boolean: return "boolean";
    case KeyType::integer: return "integer";
    case KeyType::number: return "number";
    case KeyType::string: return "string";
    case KeyType::string_list: return "list of strings";
    case KeyType::table: return "table";
    case KeyType::array: return "array";
    }
    return "?";
}

std::string location(std::string_view file, const toml::node* node) {
    if (node && node->source().begin.line > 0) return fmt::format("{}:{}: ", file, node->source().begin.line);
    return fmt::format("{}: ", file);
}

toml::table parse_default(const ConfigKey& key) {
    if (!key.default_value) return {};
    try {
        auto t = toml::parse(fmt::format("value = {}", key.default_value));
        if (!has_type(*t.get("value"), key.type))
            throw std::logic_error(fmt::format("plugin declares key '{}' as {} with default {}", key.name,
                                               to_string(key.type), key.default_value));
        return t;
    } catch (const toml::parse_error& e) {
        throw std::logic_error(fmt::format("plugin declares key '{}' with a default that is not TOML: {} ({})",
                                           key.name, key.default_value, e.description()));
    }
}

bool has_type(const toml::node& node, KeyType type) {
    switch (type) {
    case KeyType::boolean: return node.is_boolean();
    case KeyType::integer: return node.is_integer();
    case KeyType::number: return node.is_integer() || node.is_floating_point();
    case KeyType::string: return node.is_string();
    case KeyType::string_list: return node.is_array() && (node.as_array()->empty() || node.as_array()->is_homogeneous(toml::node_type::string));
    case KeyType::table: return node.is_table();
    case KeyType::array: return node.is_array();
    }
    return false;
}

namespace {

std::string describe_type(const toml::node& node) {
    switch (node.type()) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a floating-point number";
    case toml::node_type::boolean: return "a boolean";
    default: return "a date/time";
    }
}

std::string format_limit(double v) {
    if (std::floor(v) == v && std::fabs(v) < 1e15) return fmt::format("{}", static_cast<long long>(v));
    return fmt::format("{}", v);
}

} // namespace

std::string join_problems(std::span<const std::string> problems) {
    std::string out;
    for (auto& p : problems) out += (out.empty() ? "" : "\n") + p;
    return out;
}

Config validate_config(std::string_view file, std::string_view instance, std::shared_ptr<const toml::table> doc,
                       const toml::table& section, std::span<const ConfigKey> keys, bool plugin_instance) {
    // Every problem is collected: users fix a file in one pass.
    std::vector<std::string> problems;
    auto err = [&](const toml::node* node, std::string_view key, std::string_view reason) {
        problems.push_back(fmt::format("{}[{}] key '{}': {}", location(file, node), instance, key, reason));
    };

    // Unknown keys first: a typo must not silently fall back to a default.
    for (auto&& [k, v] : section) {
        std::string_view name = k.str();
        bool known = plugin_instance &&
                     std::find(std::begin(reserved_keys), std::end(reserved_keys), name) != std::end(reserved_keys);
        for (auto& key : keys) known = known || name == key.name;
        if (!known) {
            std::string names;
            for (auto& key : keys) names += fmt::format("{}{}", names.empty() ? "" : ", ", key.name);
            err(&v, name, fmt::format("unknown key (this plugin knows: {})", names.empty() ? "none" : names));
        }
    }

    toml::table values;
    for (auto& key : keys) {
        const toml::node* given = section.get(key.name);
        if (!given) {
            auto def = parse_default(key);
            if (def.empty()) {
                err(&section, key.name, "required key is missing");
                continue;
            }
            values.insert(key.name, *def.get("value"));
            continue;
        }
        if (!has_type(*given, key.type)) {
            err(given, key.name, fmt::format("expected {}, got {}", to_string(key.type), describe_type(*given)));
            continue;
        }
        if (key.type == KeyType::integer || key.type == KeyType::number) {
            double v = given->is_integer() ? double(given->as_integer()->get()) : given->as_floating_point()->get();
            if (std::isnan(v) || v < key.min || v > key.max) {
                err(given, key.name,
                          fmt::format("{} is out of range [{}, {}]", given->is_integer() ? format_limit(v) : fmt::format("{}", v),
                                      std::isinf(key.min) ? "-inf" : format_limit(key.min),
                                      std::isinf(key.max) ? "inf" : format_limit(key.max)));
                continue;
            }
        }
        if (key.type == KeyType::string && key.choices) {
            std::string_view s = given->as_string()->get(), choices = key.choices;
            bool ok = false;
            for (size_t pos = 0; pos <= choices.size();) {
                size_t bar = choices.find('|', pos);
                if (bar == std::string_view::npos) bar = choices.size();
                ok = ok || choices.substr(pos, bar - pos) == s;
                pos = bar + 1;
            }
            if (!ok) {
                err(given, key.name, fmt::format("'{}' is not one of {}", s, choices));
                continue;
            }
        }
        values.insert(key.name, *given);
    }
    if (!problems.empty()) throw ConfigError(join_problems(problems));
    return Config(std::string(file), std::string(instance), std::move(values), std::move(doc), &section);
}

Config::Config(std::string file, std::string instance, toml::table values, std::shared_ptr<const toml::table> doc,
               const toml::table* source)
    : file_(std::move(file)), instance_(std::move(instance)), values_(std::move(values)), doc_(std::move(doc)),
      source_(source) {}

const toml::node& Config::at(std::string_view key) const {
    const toml::node* n = values_.get(key);
    // A plugin asking for a key it did not declare is a programming error.
    if (!n) throw std::logic_error(fmt::format("[{}] plugin reads undeclared config key '{}'", instance_, key));
    return *n;
}

bool Config::get_bool(std::string_view key) const { return at(key).value<bool>().value(); }
std::int64_t Config::get_int(std::string_view key) const { return at(key).value<std::int64_t>().value(); }
double Config::get_number(std::string_view key) const { return at(key).value<double>().value(); }
std::string Config::get_string(std::string_view key) const { return at(key).value<std::string>().value(); }

std::vector<std::string> Config::get_strings(std::string_view key) const {
    std::vector<std::string> out;
    if (auto* arr = at(key).as_array())
        for (auto& e : *arr) out.push_back(e.value<std::string>().value());
    return out;
}

const toml::node* Config::node(std::string_view key) const {
    if (const toml::node* given = source_ ? source_->get(key) : nullptr) return given;
    return values_.get(key);
}

void Config::claim(std::string_view key, std::string resource) const {
    claims_.push_back({std::string(key), std::move(resource)});
}

void Config::fail_at(const toml::node& node, std::string_view what, std::string_view reason) const {
    throw ConfigError(fmt::format("{}[{}] {}: {}", location(file_, &node), instance_, what, reason));
}

std::string Config::where(std::string_view key) const {
    // A key left at its default is located at its instance's table.
    const toml::node* node = source_ ? source_->get(key) : nullptr;
    return fmt::format("{}[{}] key '{}'", location(file_, node ? node : source_), instance_, key);
}

void Config::fail(std::string_view key, std::string_view reason) const {
    throw ConfigError(fmt::format("{}: {}", where(key), reason));
}

} // namespace moat

#include "config_toml.hpp"

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
        auto t = parse_toml_text(fmt::format("value = {}", key.default_value));
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
    // (ConfigNode::type_name says the same to plugins.)
    switch (node.type()) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a floating-point number";
    case toml::node_type::boolean: return "a boolean";
    default: return "a date or time";
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
    return detail::ConfigAccess::make(file, instance, std::move(values), std::move(doc), &section);
}

Config validate_table(const ConfigNode& table, std::string_view instance, std::span<const ConfigKey> keys) {
    const toml::node* n = detail::ConfigAccess::node(table);
    if (!n || !n->is_table()) throw std::logic_error("validate_table: not a table");
    // The new Config shares the parsed file (for line numbers) through a
    // document that holds the owner's data alive.
    auto owner = detail::ConfigAccess::data(table);
    auto doc = std::shared_ptr<const toml::table>(owner, owner->doc ? owner->doc.get() : &owner->values);
    return validate_config(owner->file, instance, std::move(doc), *n->as_table(), keys, false);
}

namespace {
std::shared_ptr<const toml::table> parse_document(std::string_view toml_text, std::string_view file) {
    try {
        return std::make_shared<const toml::table>(parse_toml_text(toml_text, file));
    } catch (const toml::parse_error& e) {
        throw ConfigError(fmt::format("{}:{}:{}: TOML syntax error: {}", file, e.source().begin.line,
                                      e.source().begin.column, e.description()));
    }
}
} // namespace

ConfigNode parse_toml(std::string_view toml_text, std::string_view file) {
    auto data = std::make_shared<detail::ConfigData>();
    data->file = std::string(file);
    data->doc = parse_document(toml_text, file);
    data->source = data->doc.get();
    const toml::node* root = data->doc.get();
    return detail::ConfigAccess::wrap(std::move(data), root);
}

Config parse_config(std::string_view toml_text, std::string_view file, std::string_view instance,
                    std::span<const ConfigKey> keys) {
    std::shared_ptr<const toml::table> doc = parse_document(toml_text, file);
    const toml::table* section = doc->get_as<toml::table>(instance);
    if (!section) throw ConfigError(fmt::format("{}: no table [{}]", file, instance));
    return validate_config(file, instance, doc, *section, keys);
}

// ---- Config ----

namespace {
const toml::node& value_at(const detail::ConfigData& d, std::string_view key) {
    const toml::node* n = d.values.get(key);
    // A plugin asking for a key it did not declare is a programming error.
    if (!n) throw std::logic_error(fmt::format("[{}] plugin reads undeclared config key '{}'", d.instance, key));
    return *n;
}
} // namespace

Config::Config() : data_(std::make_shared<detail::ConfigData>()) {}

const std::string& Config::instance() const { return data_->instance; }
const std::string& Config::file() const { return data_->file; }

bool Config::get_bool(std::string_view key) const { return value_at(*data_, key).value<bool>().value(); }
std::int64_t Config::get_int(std::string_view key) const { return value_at(*data_, key).value<std::int64_t>().value(); }
double Config::get_number(std::string_view key) const { return value_at(*data_, key).value<double>().value(); }
std::string Config::get_string(std::string_view key) const { return value_at(*data_, key).value<std::string>().value(); }

std::vector<std::string> Config::get_strings(std::string_view key) const {
    std::vector<std::string> out;
    if (auto* arr = value_at(*data_, key).as_array())
        for (auto& e : *arr) out.push_back(e.value<std::string>().value());
    return out;
}

ConfigNode Config::node(std::string_view key) const {
    const toml::node* given = data_->source ? data_->source->get(key) : nullptr;
    return detail::ConfigAccess::wrap(data_, given ? given : data_->values.get(key));
}

void Config::claim(std::string_view key, std::string resource) const {
    data_->claims.push_back({std::string(key), std::move(resource)});
}

const std::vector<Config::Claim>& Config::claims() const { return data_->claims; }

namespace {
std::string problem_text(const detail::ConfigData& d, const ConfigNode& node, std::string_view what,
                         std::string_view reason) {
    return fmt::format("{}[{}] {}: {}", node ? node.location() : location(d.file, nullptr), d.instance, what, reason);
}
} // namespace

void Config::fail_at(const ConfigNode& node, std::string_view what, std::string_view reason) const {
    throw ConfigError(problem_text(*data_, node, what, reason));
}

void Config::problem(std::string_view key, std::string_view reason) const {
    data_->problems.push_back(fmt::format("{}: {}", where(key), reason));
}

void Config::problem_at(const ConfigNode& node, std::string_view what, std::string_view reason) const {
    data_->problems.push_back(problem_text(*data_, node, what, reason));
}

void Config::problem(const ConfigError& error) const {
    std::string_view all = error.what();
    while (!all.empty()) {
        const std::size_t end = std::min(all.find('\n'), all.size());
        if (end > 0) data_->problems.emplace_back(all.substr(0, end));
        all.remove_prefix(std::min(end + 1, all.size()));
    }
}

const std::vector<std::string>& Config::problems() const { return data_->problems; }

void Config::throw_problems() const {
    if (data_->problems.empty()) return;
    std::string all = join_problems(data_->problems);
    data_->problems.clear();
    throw ConfigError(all);
}

std::string Config::where(std::string_view key) const {
    // A key left at its default is located at its instance's table.
    const toml::node* node = data_->source ? data_->source->get(key) : nullptr;
    return fmt::format("{}[{}] key '{}'", location(data_->file, node ? node : data_->source), data_->instance, key);
}

void Config::fail(std::string_view key, std::string_view reason) const {
    throw ConfigError(fmt::format("{}: {}", where(key), reason));
}

// ---- ConfigNode ----

namespace {
const toml::node* raw(const void* p) { return static_cast<const toml::node*>(p); }
} // namespace

ConfigNode::Kind ConfigNode::kind() const {
    if (!node_) return Kind::none;
    switch (raw(node_)->type()) {
    case toml::node_type::boolean: return Kind::boolean;
    case toml::node_type::integer: return Kind::integer;
    case toml::node_type::floating_point: return Kind::floating;
    case toml::node_type::string: return Kind::string;
    case toml::node_type::table: return Kind::table;
    case toml::node_type::array: return Kind::array;
    default: return Kind::other;
    }
}

std::string ConfigNode::type_name() const {
    if (!node_) return "nothing";
    return describe_type(*raw(node_));
}

std::optional<bool> ConfigNode::as_bool() const {
    if (!node_) return std::nullopt;
    return raw(node_)->value_exact<bool>();
}

std::optional<std::int64_t> ConfigNode::as_int() const {
    if (!node_ || !raw(node_)->is_integer()) return std::nullopt;
    return raw(node_)->as_integer()->get();
}

std::optional<double> ConfigNode::as_number() const {
    if (!node_) return std::nullopt;
    if (auto* i = raw(node_)->as_integer()) return double(i->get());
    if (auto* f = raw(node_)->as_floating_point()) return f->get();
    return std::nullopt;
}

std::optional<std::string> ConfigNode::as_string() const {
    if (!node_ || !raw(node_)->is_string()) return std::nullopt;
    return raw(node_)->as_string()->get();
}

std::vector<std::string> ConfigNode::keys() const {
    std::vector<std::string> out;
    if (auto* t = node_ ? raw(node_)->as_table() : nullptr)
        for (auto&& [k, v] : *t) out.emplace_back(k.str());
    return out;
}

ConfigNode ConfigNode::get(std::string_view key) const {
    auto* t = node_ ? raw(node_)->as_table() : nullptr;
    return t ? detail::ConfigAccess::wrap(data_, t->get(key)) : ConfigNode();
}

std::size_t ConfigNode::size() const {
    auto* a = node_ ? raw(node_)->as_array() : nullptr;
    return a ? a->size() : 0;
}

ConfigNode ConfigNode::at(std::size_t index) const {
    auto* a = node_ ? raw(node_)->as_array() : nullptr;
    return a && index < a->size() ? detail::ConfigAccess::wrap(data_, a->get(index)) : ConfigNode();
}

bool ConfigNode::from_file() const { return node_ && raw(node_)->source().begin.line != 0; }

std::string ConfigNode::location() const { return moat::location(data_ ? data_->file : std::string(), raw(node_)); }

} // namespace moat

// The rules of the settings service without D-Bus (venus-dbus.md §11.2-§11.4):
#include "value_dbus.hpp"
// conversions, limits, adds, writes and device-instance allocation.
#include "moat/settings_service.hpp"

#include <charconv>

namespace moat {

std::optional<SettingType> setting_type(std::string_view letter) {
    if (letter == "i") return SettingType::integer;
    if (letter == "f") return SettingType::floating;
    if (letter == "s") return SettingType::string;
    return std::nullopt;
}

const char* type_letter(SettingType type) {
    switch (type) {
    case SettingType::integer: return "i";
    case SettingType::floating: return "f";
    case SettingType::string: return "s";
    }
    return "?";
}

std::string_view settings_code_name(int code) {
    switch (code) {
    case settings_code::ok: return "NoError";
    case settings_code::failed: return "Failed";
    case settings_code::underscore_prefix: return "UnderscorePrefix";
    case settings_code::unknown_type: return "UnknownType";
    case settings_code::invalid_path: return "InvalidPath";
    case settings_code::type_differ: return "TypeDiffer";
    case settings_code::invalid_default: return "InvalidDefault";
    case settings_code::default_out_of_range: return "DefaultOutOfRange";
    case settings_code::is_group: return "IsGroup";
    case settings_code::not_in_settings: return "NotInSettings";
    }
    return "Unknown";
}

std::optional<Value> convert_setting(const Value& v, SettingType type) {
    if (v.is_invalid()) return std::nullopt;
    switch (type) {
    case SettingType::integer: return coerce(v, ValueType::integer);
    case SettingType::floating: return coerce(v, ValueType::floating);
    case SettingType::string: return coerce(v, ValueType::string);
    }
    return std::nullopt;
}

bool within_limits(const Setting& setting, const Value& v) {
    if (setting.type == SettingType::string) return true;
    auto d = v.as_number();
    if (!d) return false;
    if (setting.min)
        if (auto lo = setting.min->as_number(); lo && *d < *lo) return false;
    if (setting.max)
        if (auto hi = setting.max->as_number(); hi && *d > *hi) return false;
    return true;
}

std::optional<ClassInstance> parse_class_instance(std::string_view text) {
    auto colon = text.find(':');
    if (colon == std::string_view::npos || colon == 0) return std::nullopt;
    // The instance part follows Python's int() (localsettings): blanks and a sign allowed.
    auto n = coerce(Value(std::string(text.substr(colon + 1))), ValueType::integer);
    if (!n) return std::nullopt;
    return ClassInstance{std::string(text.substr(0, colon)), n->as_int()};
}

std::string to_string(const ClassInstance& ci) { return ci.device_class + ":" + std::to_string(ci.instance); }

bool is_class_instance_path(std::string_view path) {
    constexpr std::string_view prefix = "/Settings/Devices/", suffix = "/ClassAndVrmInstance";
    if (path.size() <= prefix.size() + suffix.size() || !path.starts_with(prefix) || !path.ends_with(suffix)) return false;
    auto id = path.substr(prefix.size(), path.size() - prefix.size() - suffix.size());
    return !id.empty() && id.find('/') == std::string_view::npos;
}

ClassInstance free_class_instance(const SettingsMap& settings, const std::string& path, const ClassInstance& wanted) {
    std::set<std::int64_t> taken;
    for (const auto& [p, s] : settings) {
        if (p == path || !is_class_instance_path(p) || !s.value.is_string()) continue;
        if (auto ci = parse_class_instance(s.value.as_string()); ci && ci->device_class == wanted.device_class)
            taken.insert(ci->instance);
    }
    ClassInstance out = wanted;
    while (taken.count(out.instance)) ++out.instance;
    return out;
}

namespace {

/// min/max of an add converted to the setting's type; "not given" is 0.
std::optional<Value> limit_of(const Value& v, SettingType type) {
    if (v.is_invalid()) return type == SettingType::integer ? Value(0) : Value(0.0);
    return convert_setting(v, type);
}

} // namespace

AddOutcome add_setting(SettingsMap& settings, const std::string& path, const Value& default_value, SettingType type,
                       const Value& min, const Value& max, bool silent) {
    using namespace settings_code;
    // A group (a prefix of settings) cannot become a setting; nor can a path below a setting.
    if (auto it = settings.lower_bound(path + "/"); it != settings.end() && it->first.starts_with(path + "/"))
        return {is_group};
    for (auto pos = path.find('/', 1); pos != std::string::npos; pos = path.find('/', pos + 1))
        if (settings.count(path.substr(0, pos))) return {invalid_path};

    Setting s;
    s.type = type;
    s.silent = silent;
    auto def = convert_setting(default_value, type);
    if (!def) return {invalid_default};
    s.default_value = *def;
    if (is_class_instance_path(path) && !(type == SettingType::string && parse_class_instance(def->as_string())))
        return {invalid_default};
    if (type != SettingType::string) {
        auto lo = limit_of(min, type), hi = limit_of(max, type);
        if (!lo || !hi) return {invalid_default};
        if (!(*lo == Value(0) && *hi == Value(0))) {
            s.min = std::move(*lo);
            s.max = std::move(*hi);
        }
        if (!within_limits(s, s.default_value)) return {default_out_of_range};
    }

    auto it = settings.find(path);
    if (it != settings.end()) {
        Setting& old = it->second;
        if (old.type != type) return {type_differ};
        // The current value stays; the attributes follow the latest add.
        bool changed = !(old.default_value == s.default_value) || old.min != s.min || old.max != s.max ||
                       old.silent != s.silent;
        old.default_value = std::move(s.default_value);
        old.min = std::move(s.min);
        old.max = std::move(s.max);
        old.silent = s.silent;
        return {ok, false, changed};
    }
    s.value = s.default_value;
    if (is_class_instance_path(path))
        s.value = to_string(free_class_instance(settings, path, *parse_class_instance(def->as_string())));
    settings.emplace(path, std::move(s));
    return {ok, true, false};
}

WriteResult decide_write(const SettingsMap& settings, const std::string& path, const Value& written) {
    auto it = settings.find(path);
    if (it == settings.end()) return {settings_code::failed, std::nullopt};
    const Setting& s = it->second;
    auto v = convert_setting(written, s.type);
    if (!v || !within_limits(s, *v)) return {settings_code::failed, std::nullopt};
    if (is_class_instance_path(path)) {
        auto ci = parse_class_instance(v->as_string());
        if (!ci) return {settings_code::failed, std::nullopt};
        // A combination in use is not refused: the next free instance is stored (§11.4).
        return {settings_code::ok, Value(to_string(free_class_instance(settings, path, *ci)))};
    }
    return {settings_code::ok, std::move(v)};
}

} // namespace moat

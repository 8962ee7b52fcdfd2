// The meters' settings in com.victronenergy.settings (device_settings.hpp).
#include "device_settings.hpp"
#include <moat/dbus.hpp>

#include <fmt/format.h>

namespace moat::meters {

namespace {
constexpr const char* class_key = "ClassAndVrmInstance";
constexpr const char* name_key = "CustomName";
constexpr const char* position_key = "Position";

SettingSpec position_spec(const std::string& ident)
{
    return SettingSpec(device_setting_path(ident, position_key), Value(std::int64_t(0)), Value(std::int64_t(0)),
                       Value(std::int64_t(2)));
}

std::optional<ClassInstance> class_instance_of(const Value& v)
{
    return v.is_string() ? parse_class_instance(v.as_string()) : std::nullopt;
}
} // namespace

Task<void> DeviceSettingsStore::wait_for_service()
{
    auto first = settings_.wait(std::chrono::seconds(2));
    if (co_await first) co_return;
    log_.warning("{} is not on the bus: waiting for it before publishing", settings_.service());
    for (;;) {
        auto again = settings_.wait(std::chrono::minutes(1));
        if (co_await again) break;
    }
    log_.info("{} is there", settings_.service());
}

Task<bool> DeviceSettingsStore::migrate(const std::string& ident, const std::string& legacy, DeviceSettings& s)
{
    auto ci = class_instance_of(settings_.value(class_instance_path(legacy)));
    if (!ci) co_return false;
    s.role = ci->device_class;
    s.instance = ci->instance;
    if (Value v = settings_.value(device_setting_path(legacy, name_key)); v.is_string()) s.custom_name = v.as_string();
    if (auto p = settings_.value(device_setting_path(legacy, position_key)).as_number()) s.position = std::int64_t(*p);
    // Remove the old entries first: the device keeps its instance only when
    // the legacy ClassAndVrmInstance no longer holds it.
    std::vector<std::string> paths{legacy + "/" + class_key, legacy + "/" + name_key, legacy + "/" + position_key};
    try {
        std::vector<Value> args{Value(Value::List(paths.begin(), paths.end()))};  // (no braced list inside co_await: g++ 12)
        co_await call_method(bus_, settings_.service(), "/Settings/Devices", settings_interface, "RemoveSettings", "as",
                             std::move(args), Settings::call_timeout);
    } catch (const DBusError& e) {
        log_.warning("removing the settings of {}: {}", legacy, e.message());
    }
    log_.info("moving the settings of {} ({}:{}) to {}", legacy, s.role, s.instance, ident);
    co_return true;
}

Task<DeviceSettings> DeviceSettingsStore::open(std::string ident, std::optional<std::string> legacy_ident,
                                               std::string default_role)
{
    co_await wait_for_service();
    DeviceSettings s;
    s.role = default_role;
    bool migrated = false;
    if (legacy_ident && *legacy_ident != ident && !settings_.value(class_instance_path(ident)).is_valid()) {
        auto m = migrate(ident, *legacy_ident, s);
        migrated = co_await m;
    }
    auto allocate = settings_.device_instance(ident, s.role, s.instance);
    ClassInstance ci = co_await allocate;
    std::vector<SettingSpec> specs{SettingSpec(device_setting_path(ident, name_key), Value(std::string()))};
    if (has_position(ci.device_class)) specs.push_back(position_spec(ident));
    auto add = settings_.add(std::move(specs));
    co_await add;
    if (migrated) {
        if (!s.custom_name.empty()) {
            auto w = set_custom_name(ident, s.custom_name);
            co_await w;
        }
        if (s.position != 0 && has_position(ci.device_class)) {
            auto w = set_position(ident, s.position);
            co_await w;
        }
    }
    co_return current(ident);
}

Task<DeviceSettings> DeviceSettingsStore::set_role(std::string ident, std::string role)
{
    const std::string path = class_instance_path(ident);
    DeviceSettings now = current(ident);
    if (now.role != role) {
        auto w = settings_.set(path, Value(fmt::format("{}:{}", role, now.instance)));
        int rc = co_await w;
        if (rc != 0) throw SettingsError(path, rc, fmt::format("{} refused {}:{}", path, role, now.instance));
    }
    if (has_position(role)) {
        std::vector<SettingSpec> specs{position_spec(ident)};
        auto add = settings_.add(std::move(specs));
        co_await add;
    }
    co_return current(ident);
}

Task<int> DeviceSettingsStore::set_custom_name(std::string ident, std::string name)
{
    auto w = settings_.set(device_setting_path(ident, name_key), Value(std::move(name)));
    co_return co_await w;
}

Task<int> DeviceSettingsStore::set_position(std::string ident, std::int64_t position)
{
    auto w = settings_.set(device_setting_path(ident, position_key), Value(position));
    co_return co_await w;
}

DeviceSettings DeviceSettingsStore::current(const std::string& ident) const
{
    DeviceSettings s;
    if (auto ci = class_instance_of(settings_.value(class_instance_path(ident)))) {
        s.role = ci->device_class;
        s.instance = ci->instance;
    }
    if (Value v = settings_.value(device_setting_path(ident, name_key)); v.is_string()) s.custom_name = v.as_string();
    if (auto p = settings_.value(device_setting_path(ident, position_key)).as_number()) s.position = std::int64_t(*p);
    return s;
}

DeviceSettingsWatch DeviceSettingsStore::watch(const std::string& ident, std::function<void()> fn)
{
    DeviceSettingsWatch w;
    for (const char* key : {class_key, name_key, position_key})
        w.subscriptions.push_back(settings_.on_change(device_setting_path(ident, key),
                                                      [fn](const std::string&, const Value&, const Value&) { fn(); }));
    return w;
}

} // namespace moat::meters

// Talking to the settings service `com.victronenergy.settings` (localsettings
// on a GX, or moat::SettingsService), as velib's SettingsDevice does.
//
// One Settings per process (Context::settings), on the host's shared
// connection, used by every plugin:
//
//     auto& s = ctx.settings;
//     co_await s.add({{"/Settings/Demo/Limit", 10.0, 0.0, 100.0},
//                     {"/Settings/Demo/Name", "demo"}});        // one AddSettings call
//     double limit = *s.value("/Settings/Demo/Limit").as_number();
//     auto sub = s.on_change("/Settings/Demo/Limit", [](auto& path, auto& old_value, auto& new_value) {...});
//     int rc = co_await s.set("/Settings/Demo/Limit", 20.0);    // 0, or -1 when refused
//     moat::ClassInstance ci = co_await s.device_instance("demo_1234", "battery", 1);
//
// It follows the settings service through the process's Monitor (no match
// rule of its own: the monitor's PropertiesChanged rule covers it), so values
// are read from the monitor's cache, and changes arrive as the monitor's
// changes. When the settings service leaves the bus the last values are
// kept; when it comes back every setting added through this object is added
// again (one AddSettings call) and changed values are announced to observers.
//
// Nothing happens on the bus before the first call.
#pragma once

#include "moat/export.hpp"

#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "moat/bus.hpp"
#include "moat/log.hpp"
#include "moat/monitor.hpp"
#include "moat/task.hpp"
#include "moat/value.hpp"

namespace moat {

inline constexpr const char* settings_service_name = "com.victronenergy.settings";
/// The interface of the management methods (AddSettings, ...), GetSilent and GetAttributes.
inline constexpr const char* settings_interface = "com.victronenergy.Settings";

/// `<class>:<instance>`, the value of a ClassAndVrmInstance setting.
struct MOAT_API ClassInstance {
    std::string device_class;
    std::int64_t instance = 0;
    friend bool operator==(const ClassInstance&, const ClassInstance&) = default;
};
/// "battery:1" → {battery, 1}; nullopt unless a non-empty class, ':' and a
/// decimal integer (Python int() rules) follow each other.
MOAT_API std::optional<ClassInstance> parse_class_instance(std::string_view text);
MOAT_API std::string to_string(const ClassInstance& ci);
/// True for `/Settings/Devices/<id>/ClassAndVrmInstance`.
MOAT_API bool is_class_instance_path(std::string_view path);
/// `/Settings/Devices/<id>/ClassAndVrmInstance`.
MOAT_API std::string class_instance_path(std::string_view id);

/// One setting to add. Its type follows the default: an integer makes an
/// integer setting (`i`), a double a float (`f`), a string a string (`s`).
/// Leave min and max invalid (or both 0) for no limits.
struct MOAT_API SettingSpec {
    SettingSpec(std::string path_, Value default_, Value min_ = {}, Value max_ = {}, bool silent_ = false)
        : path(std::move(path_)), default_value(std::move(default_)), min(std::move(min_)), max(std::move(max_)),
          silent(silent_) {}
    std::string path;  ///< absolute: "/Settings/..."
    Value default_value;
    Value min, max;
    bool silent;  ///< changes not logged by the settings service
};

/// An add the settings service refused, or no settings service.
class MOAT_API SettingsError : public std::runtime_error {
public:
    SettingsError(std::string path, int code, const std::string& what)
        : std::runtime_error(what), path_(std::move(path)), code_(code) {}
    const std::string& path() const { return path_; }
    /// localsettings' result code (-2 ... -9, see settings_code in
    /// moat/settings_service.hpp), or 0 when the service itself was missing or failed.
    int code() const { return code_; }

private:
    std::string path_;
    int code_;
};

/// Keeps a settings observer registered; unregisters it when destroyed or
/// reset. May outlive the Settings.
class MOAT_API SettingsSubscription {
public:
    SettingsSubscription() = default;
    SettingsSubscription(SettingsSubscription&&) noexcept = default;
    SettingsSubscription& operator=(SettingsSubscription&& o) noexcept;
    ~SettingsSubscription() { reset(); }
    void reset();
    explicit operator bool() const { return !registry_.expired(); }

    struct Registry;  ///< (implementation)

private:
    friend class Settings;
    SettingsSubscription(std::weak_ptr<Registry> r, std::uint64_t id) : registry_(std::move(r)), id_(id) {}
    std::weak_ptr<Registry> registry_;
    std::uint64_t id_ = 0;
};

class MOAT_API Settings {
public:
    static constexpr Duration call_timeout = std::chrono::seconds(10);
    using ChangeFn = std::function<void(const std::string& path, const Value& old_value, const Value& new_value)>;

    /// Nothing happens on the bus here. `service` is the settings service's name (tests use others).
    Settings(Bus& bus, Monitor& monitor, Logger log, std::string service = settings_service_name);
    ~Settings();
    Settings(const Settings&) = delete;
    Settings& operator=(const Settings&) = delete;

    const std::string& service() const { return service_; }

    /// Wait until the settings service is on the bus (and read); false after `timeout`.
    Task<bool> wait(Duration timeout);
    /// Wait for the service (up to `timeout`), then add every setting in one
    /// AddSettings call on `/`. Existing settings keep their values. Throws
    /// SettingsError for the first setting refused (after the others were
    /// added) or when the service does not come. The settings are added again
    /// whenever the settings service comes back.
    Task<void> add(std::vector<SettingSpec> specs, Duration timeout = call_timeout);

    /// The value of a setting: the current one from the bus, or the last known
    /// while the settings service is away; invalid when unknown.
    Value value(std::string_view path) const;
    /// SetValue: 0 when stored (converted to the setting's type; a
    /// ClassAndVrmInstance may land on another instance), -1 when refused
    /// (conversion, limits) or the call failed. value() has the stored value when it returns.
    Task<int> set(std::string path, Value value, Duration timeout = call_timeout);

    /// `fn(path, old, new)` for every change of `path` (any added setting when
    /// `path` is empty), on a later loop turn than the signal. Not called when
    /// the settings service leaves (values are kept). Keep the subscription.
    [[nodiscard]] SettingsSubscription on_change(std::string path, ChangeFn fn);
    /// The next change of `path`, or nullopt after `timeout`. Cancellable.
    Task<std::optional<Value>> wait_for_change(std::string path, Duration timeout);

    /// Allocate (or find) this device's instance: adds
    /// `/Settings/Devices/<id>/ClassAndVrmInstance` with default
    /// `<device_class>:<preferred>` and returns what the settings service
    /// stored: the lowest instance >= preferred free in that class, or the
    /// entry made earlier (possibly edited by the user, even to another class).
    /// `id` is stable and unique per device, e.g. `<driver>_<serial>`.
    Task<ClassInstance> device_instance(std::string id, std::string device_class, std::int64_t preferred,
                                        Duration timeout = call_timeout);
    /// `fn(class_instance)` when the device's entry changes: a new instance →
    /// update /DeviceInstance; a new class → publish under the new class (a
    /// new Service, com.victronenergy.<class>.<suffix>, on a new connection).
    [[nodiscard]] SettingsSubscription on_device_instance(std::string id, std::function<void(const ClassInstance&)> fn);

private:
    struct Waiter;
    void start();
    void on_monitor_change(const std::string& path, const Value& v);
    void update(const std::string& path, const Value& v);
    bool interesting(const std::string& path) const;
    void apply_results(const std::vector<std::map<std::string, sdbus::Variant>>& results,
                       const std::vector<SettingSpec>& specs, bool throw_on_error);
    void readd();

    Bus& bus_;
    Monitor& monitor_;
    Logger log_;
    std::string service_;
    bool started_ = false;
    bool away_ = false;  ///< the service left since we last saw it
    std::map<std::string, SettingSpec> specs_;  ///< everything added, for re-adding
    std::map<std::string, Value> cache_;        ///< last known values of the interesting paths
    std::shared_ptr<SettingsSubscription::Registry> registry_;
    std::list<std::shared_ptr<Waiter>> waiters_;
    Subscription changes_, added_, removed_;
    std::list<std::unique_ptr<sdbus::IProxy>> calls_;
    std::shared_ptr<bool> alive_;
};

} // namespace moat

// A meter's settings in com.victronenergy.settings (meters.md §5, §6,
// venus-dbus.md §11.4), kept as dbus-modbus-client keeps them so that
// settings made by the Python drivers carry over:
//
//   /Settings/Devices/<ident>/ClassAndVrmInstance  "<role>:<instance>" (default "<role>:40")
//   /Settings/Devices/<ident>/CustomName           ""
//   /Settings/Devices/<ident>/Position             0 (0..2), position-capable roles only
//
// The role is the class part of ClassAndVrmInstance. Everything goes
// through the process's settings client (Context::settings).
#pragma once

#include <moat/bus.hpp>
#include <moat/log.hpp>
#include <moat/settings.hpp>
#include <moat/task.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace moat::meters {

/// The preferred device instance of energy meters (§11.4).
inline constexpr std::int64_t preferred_meter_instance = 40;

/// Roles with a /Position (and a Position setting).
inline bool has_position(const std::string& role) { return role == "pvinverter" || role == "acload"; }

/// `/Settings/Devices/<ident>/<key>`.
inline std::string device_setting_path(const std::string& ident, const std::string& key)
{
    return "/Settings/Devices/" + ident + "/" + key;
}

struct DeviceSettings {
    std::string role = "grid";       ///< class part of ClassAndVrmInstance
    std::int64_t instance = preferred_meter_instance;  ///< instance part
    std::string custom_name;         ///< CustomName
    std::int64_t position = 0;       ///< Position (0..2)
};

/// Keeps the observers of one device's settings registered.
struct DeviceSettingsWatch {
    std::vector<SettingsSubscription> subscriptions;
};

class DeviceSettingsStore {
public:
    DeviceSettingsStore(Settings& settings, Bus& bus, Logger log)
        : settings_(settings), bus_(bus), log_(std::move(log)) {}

    /// Wait for the settings service (however long it takes, logged once),
    /// then add the settings of `ident` (an existing entry keeps its values;
    /// a new one gets `default_role:<lowest free instance from 40>`). When
    /// `ident` has no settings and `legacy_ident` has, they are moved over
    /// first (§6): the legacy entries are removed so that the device keeps
    /// its instance. Throws SettingsError when the service refuses.
    Task<DeviceSettings> open(std::string ident, std::optional<std::string> legacy_ident, std::string default_role);
    /// Write the class part of ClassAndVrmInstance (the settings service may
    /// move the instance when it is taken in the new class) and add Position
    /// when the role has one. Returns the stored settings.
    Task<DeviceSettings> set_role(std::string ident, std::string role);
    /// 0 when stored, -1 when refused.
    Task<int> set_custom_name(std::string ident, std::string name);
    Task<int> set_position(std::string ident, std::int64_t position);

    /// What the settings service holds now (from the client's cache).
    DeviceSettings current(const std::string& ident) const;
    /// `fn()` after any change of the device's settings, by us or by others (the GUI).
    [[nodiscard]] DeviceSettingsWatch watch(const std::string& ident, std::function<void()> fn);

private:
    Task<void> wait_for_service();
    Task<bool> migrate(const std::string& ident, const std::string& legacy, DeviceSettings& s);

    Settings& settings_;
    Bus& bus_;
    Logger log_;
};

} // namespace moat::meters

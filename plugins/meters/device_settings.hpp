// The seam to the settings service (com.victronenergy.settings, §5 of
// meters.md, venus-dbus.md §11.4): role, device instance, custom name and
// position of a meter, keyed by its ident.
//
// PENDING: the real implementation talks to localsettings through the
// settings client (moat::Settings) that is being written on another branch.
// Until it lands, MemorySettingsStore keeps the values in memory for the
// plugin instance's lifetime: nothing survives a restart, and existing
// dbus-modbus-client settings are not read.
#pragma once

#include <moat/task.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace moat::meters {

struct DeviceSettings {
    std::string role = "grid";       ///< class part of ClassAndVrmInstance
    std::int64_t instance = 40;      ///< instance part
    std::string custom_name;         ///< /Settings/Devices/<ident>/CustomName
    std::int64_t position = 0;       ///< /Settings/Devices/<ident>/Position (0..2)
};

class DeviceSettingsStore {
public:
    virtual ~DeviceSettingsStore() = default;
    /// The settings of `ident`, created with `default_role:40` (the
    /// instance allocated as localsettings does: the lowest free one of
    /// that class from 40 up) when it has none. When `legacy_ident` has
    /// settings and `ident` has none, they are copied over (§6 migration).
    virtual Task<DeviceSettings> open(const std::string& ident, const std::optional<std::string>& legacy_ident,
                                      const std::string& default_role) = 0;
    /// Change the class; returns the settings with the instance allocated in the new class.
    virtual Task<DeviceSettings> set_role(const std::string& ident, const std::string& role) = 0;
    virtual Task<void> set_custom_name(const std::string& ident, const std::string& name) = 0;
    virtual Task<void> set_position(const std::string& ident, std::int64_t position) = 0;
};

/// In-memory stand-in (see the file comment).
class MemorySettingsStore final : public DeviceSettingsStore {
public:
    Task<DeviceSettings> open(const std::string& ident, const std::optional<std::string>& legacy_ident,
                              const std::string& default_role) override
    {
        if (auto it = devices_.find(ident); it != devices_.end()) co_return it->second;
        DeviceSettings s;
        if (legacy_ident) {
            if (auto it = devices_.find(*legacy_ident); it != devices_.end()) s = it->second;
            else s.role = default_role;
        } else {
            s.role = default_role;
        }
        s.instance = free_instance(s.role, s.instance, ident);
        devices_[ident] = s;
        co_return s;
    }
    Task<DeviceSettings> set_role(const std::string& ident, const std::string& role) override
    {
        auto& s = devices_[ident];
        s.role = role;
        s.instance = free_instance(role, s.instance, ident);
        co_return s;
    }
    Task<void> set_custom_name(const std::string& ident, const std::string& name) override
    {
        devices_[ident].custom_name = name;
        co_return;
    }
    Task<void> set_position(const std::string& ident, std::int64_t position) override
    {
        devices_[ident].position = position;
        co_return;
    }

private:
    // localsettings' rule: the lowest instance >= the preferred one not used by another device of the class.
    std::int64_t free_instance(const std::string& role, std::int64_t preferred, const std::string& ident) const
    {
        for (std::int64_t n = preferred;; ++n) {
            bool used = false;
            for (const auto& [other, s] : devices_)
                if (other != ident && s.role == role && s.instance == n) used = true;
            if (!used) return n;
        }
    }
    std::map<std::string, DeviceSettings> devices_;
};

} // namespace moat::meters

// The inverter plugin's control interface on D-Bus: one definition, used by
// the plugin that serves it and by `moat-victron inverter` that calls it.
#pragma once

#include <string>
#include <string_view>

namespace moat::inverter::control {

/// The bus name of the instance named `name` ("main" unless configured).
inline std::string bus_name(std::string_view name) { return "org.m_o_a_t.inv." + std::string(name); }
inline constexpr const char* path = "/Control";
inline constexpr const char* interface = "org.m_o_a_t.inv";

// Methods (signatures as registered by the plugin).
inline constexpr const char* get_modes = "GetModes";          ///< () -> as
inline constexpr const char* get_mode_info = "GetModeInfo";   ///< (s mode) -> a{ss}, "_l" = description
inline constexpr const char* set_mode = "SetMode";            ///< (s mode, a{sv} params) -> b
inline constexpr const char* set_mode_param = "SetModeParam"; ///< (s param, v value) -> b
inline constexpr const char* get_state = "GetState";          ///< () -> a{sv}

// Error names of refused calls.
inline constexpr const char* error_too_early = "org.m_o_a_t.inv.too_early";  ///< lock-out; the message says how long
inline constexpr const char* error_unknown = "org.m_o_a_t.inv.unknown";      ///< no such mode, or the mode is refused
/// Not a parameter of the mode (the message lists them).
inline constexpr const char* error_unknown_parameter = "org.m_o_a_t.inv.unknown_parameter";
/// A parameter's value of the wrong type or out of range (the message names the range).
inline constexpr const char* error_invalid_value = "org.m_o_a_t.inv.invalid_value";

} // namespace moat::inverter::control

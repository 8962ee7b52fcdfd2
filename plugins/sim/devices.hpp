// What each simulated device shows on D-Bus, computed from the model, and
// what Venus's system service (systemcalc) computes from those published
// values. Pure functions over moat::Value maps: testable without a bus.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <moat/value.hpp>

#include "model.hpp"

namespace moat::sim {

/// Path → value of one service, without the mandatory paths and /Sim/Fault.
using Values = std::map<std::string, Value>;

enum class DeviceKind { vebus, battery, solarcharger, grid, system };
std::string_view to_string(DeviceKind k);

/// Fault injection states (/Sim/Fault, config `faults`).
enum class Fault { none = 0, freeze = 1, invalid = 2, vanish = 3 };
std::optional<Fault> parse_fault(std::string_view name);
std::string_view to_string(Fault f);

Values vebus_values(const System& s);
Values battery_values(const System& s);
Values solar_values(const System& s, std::size_t i);
Values grid_values(const System& s);

/// `v` with every value invalid except the /Sim/ controls ("publish invalid").
Values invalidated(const Values& v);

/// What is on the bus now: nullopt for a service that is not (vanished).
struct Published {
    std::string vebus_name, battery_name, grid_name;
    std::int64_t vebus_instance = 0, battery_instance = 0, grid_instance = 0;
    /// The battery's /ProductName and /Mgmt/Connection (systemcalc names a battery by both).
    std::string battery_product = "MoaT simulated battery", battery_connection = "Simulation";
    std::optional<Values> vebus, battery, grid;
    std::vector<std::optional<Values>> solar;
    /// The settings the system service shows (/Settings/CGwacs/BatteryLife/*); empty without a settings service.
    Values settings;
};

/// The system service's values, from the published device values as
/// systemcalc computes them, with systemcalc's D-Bus types: what the GUI, our
/// plugins and typical Node-RED flows read (docs/simulation.md lists the rest
/// as not simulated). A missing or invalid input makes the derived value invalid.
Values systemcalc(const Published& p, int phases);

/// Which writeable paths a device has, and how they coerce (§3.2).
struct Writeable {
    enum class Type { integer, floating } type;
    double min, max;
    bool may_be_invalid = false;  ///< a client may write invalid (link values)
    bool keep_alive = false;      ///< rewrites of the same value matter (setpoints)
};
std::optional<Writeable> writeable(DeviceKind kind, std::string_view path);

/// Apply a client's write to the model. `index` is the solar charger's;
/// `now` the model time. Returns false for a path the model does not take.
bool apply_write(System& s, DeviceKind kind, std::size_t index, std::string_view path, const Value& v);

/// One setting the simulated settings service starts with.
struct SimSetting {
    std::string path;
    Value default_value;  ///< its type is the setting's: Int → "i", Double → "f", String → "s"
    Value min, max;       ///< invalid: no limits
};
/// The ESS settings (/Settings/CGwacs/*, Hub4Mode 3) and the DVCC settings
/// with Venus's defaults (venus-dbus.md §12.6).
std::vector<SimSetting> ess_settings();
inline constexpr const char* hub4_mode_path = "/Settings/CGwacs/Hub4Mode";

/// A printf text for a path by its unit (V, A, W, %, kWh), or "" for the default text.
std::string text_format(std::string_view path);

} // namespace moat::sim

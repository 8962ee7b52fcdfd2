// The sim plugin's configuration: the declared keys (top level and each
// sub-table) and their translation into the model's configuration.
// docs/simulation.md lists every key.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <moat/config.hpp>

#include "devices.hpp"
#include "model.hpp"

namespace moat::sim {

/// The top-level keys (the host validates these; sub-tables are checked by parse_config).
std::span<const ConfigKey> config_keys();
/// The keys of each sub-table, for docs and --help: "vebus", "battery", "solar", "grid", "grid.modbus", "load", "faults", "settings", "moat_bms".
std::span<const ConfigKey> sub_keys(std::string_view table);

/// grid.modbus: the grid meter as a simulated Modbus TCP meter (plugins/meters' simulator).
struct GridModbus {
    std::uint16_t port = 0;
    std::string host = "127.0.0.1";
    std::string type = "sdm630v2";  ///< meter type by its config name
    std::uint8_t unit = 1;
    std::string serial = "12345678";
};

/// moat_bms: a simulated MoaT BMS controller (plugins/moat-bms' simulator) on a pty.
struct MoatBmsSim {
    std::string link;           ///< the symlink the host opens ("pty:PATH"), or a socket ("unix:PATH")
    bool unix_socket = false;
    int cells = 16, modules = 16;
    bool quirks_2022 = false, float32 = true, byte_ring = false;
    double time_factor = 1.0;
    std::uint32_t seed = 1;
    int baud = 2400;            ///< the ring's ser.baud
    std::string battery;        ///< set: the system's battery is the controller's, published under this name
};

struct SimConfig {
    SystemConfig system;
    std::string suffix;            ///< service names end in .<suffix> (solar chargers: .<suffix>_<n>)
    double update_interval = 1.0;  ///< seconds between published updates
    std::int64_t vebus_instance = 276, battery_instance = 512, grid_instance = 30;
    std::vector<std::int64_t> solar_instances;
    std::optional<GridModbus> grid_modbus;  ///< set: the grid meter is served over Modbus, not published
    std::optional<MoatBmsSim> moat_bms;     ///< set: a simulated MoaT BMS controller is served
    std::map<DeviceKind, Fault> faults;  ///< faults to inject …
    double fault_after = 0;              ///< … this many seconds after the start
    double vanish_seconds = 10;          ///< a vanished service returns after this (0 = never)
    double stop_linger = 1.0;            ///< s the services stay on the bus after a stop (safe-state writes)
    bool settings = true;                ///< publish com.victronenergy.settings
    bool system_service = true;          ///< publish com.victronenergy.system (false: Victron's systemcalc runs)
    std::string settings_file;           ///< its persistence file ("" = in memory only), absolute or as given
};

/// Reads and checks every key, sub-tables included; throws ConfigError naming
/// file, line and key. `instance` gives the default suffix.
SimConfig parse_config(const Config& config);

} // namespace moat::sim

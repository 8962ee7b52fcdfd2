// The battery's configuration: the plugin's own TOML keys (staleness, the
// work-state file, temperature gating) and the battery section of the
// controller's configuration (cell and pack limits, balancing, capacity),
// checked once per fetch so the model never sees a nonsensical value.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <moat/config.hpp>

#include "msgpack.hpp"

namespace moat::bms::battery {

inline constexpr int max_cells = 32;  ///< the ring header's 5-bit module count

enum class DcVoltageSource { cells, bms, cells_corr };

/// The plugin's own keys beside the link keys (`[moat-bms]`).
struct Options {
    bool device_config = true;  ///< config_source = "device" (false: "local")
    bool persist_changes = true;
    DcVoltageSource dc_voltage = DcVoltageSource::cells;
    bool enforce_temp = true;
    std::string serial;  ///< /Serial; empty: invalid
    std::int64_t device_instance = 512;
    double stale_pack_s = 5, stale_cell_s = 15;
    std::string work_state;  ///< state file; empty: under the data directory
    double work_save_s = 600, work_max_age_s = 3600;
};

/// The keys above, for the plugin to append to its link keys.
std::span<const ConfigKey> option_keys();
/// Reads the keys declared by option_keys() (validated by the host already).
Options read_options(const Config& c);

/// The battery part of the controller's configuration (the app's tree:
/// `t`, `batt`, `cell`, `poll`), after the TOML overrides were overlaid.
struct BatteryConfig {
    int n = 0;
    std::string name = "battery1";
    double t_voltage = 1, t_cellvoltage = 2, t_celltemperature = 5;  ///< s
    double cap_ah = 0, cap_cur = 0, cap_loss = 0;                     ///< Ah, W·s, fraction
    double u_max = 0, u_min = 0;                                      ///< pack hard limits (trip)
    double u_ext_max = 0, u_ext_min = 0;                              ///< pack operating range (default n × cell)
    std::optional<double> u_nom;                                      ///< pack nominal voltage
    double i_ext_max = 0, i_ext_min = 0;                              ///< reported current limits (+ charge)
    std::optional<double> i_max, i_min;                               ///< the controller's hard current limits
    struct Cell {
        double u_min = 0, u_max = 0;          ///< hard limits (trip)
        double ext_min = 0, ext_max = 0;      ///< derating reaches 0; SoC end zones
        double lim_min = 0, lim_max = 0;      ///< full-current range; SoC model range
        double range = 0.5, corr = 1.0;
        double decay_s = 430;                 ///< time scale of the pack limit memories
        std::optional<double> u_nom;
        std::optional<double> temp_min, temp_max;  ///< cell.batt.min/max, °C
    } cell;
    struct Balance {
        double min = 0, d = 0, r = 0;
        int n = 0;  ///< 0: any number of cells at once
    } balance;
    double poll_t_ms = 250, poll_k_ms = 0;
};

/// One problem with a key of the controller's configuration, named relative
/// to the app's tree ("cell.u.lim.max").
struct Problem {
    std::string key;
    std::string reason;
};

struct Parsed {
    std::optional<BatteryConfig> config;  ///< set when `problems` is empty
    std::vector<Problem> problems;
    std::vector<std::string> warnings;   ///< fallbacks taken (p.loss, default ext ranges, ...)
};

/// Check the app's configuration tree against the keys the battery needs and
/// the options' cross checks (staleness at least 3 poll intervals).
Parsed parse_battery_config(const msgpack::Value& app_tree, const Options& options);

/// The `config` key's table as a msgpack tree rooted at the controller's
/// configuration (`config.batt.cell.u.lim.max` → {batt: {cell: {u: ...}}}),
/// for merge_config over every fetched copy.
msgpack::Value overrides(const Config& c);

/// The number of modules that answered must equal `batt.n`.
std::optional<Problem> check_module_count(const BatteryConfig& c, int modules_in_ring);

/// Throw one ConfigError for `problems`: a key that the TOML overrides
/// (`[<instance>.config.<app>...]`) set is named by file and line, any other
/// as a key of the controller's configuration.
[[noreturn]] void raise(const Config& c, std::string_view app, std::span<const Problem> problems);

} // namespace moat::bms::battery

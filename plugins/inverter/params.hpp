// The controller's constants (inverter-control.md §5 `system`) and the modes'
// parameters (§14), with their defaults, ranges and help texts, and the rules
// that combine configured defaults with SetMode arguments (§5.1, §15).
#pragma once

#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

#include <moat/config.hpp>
#include <moat/value.hpp>

namespace moat::inverter {

/// Controller constants. Every member is a config key of the same name
/// (see `config_keys`); the initialisers are the spec's built-in defaults.
struct SystemParams {
    double f_step = 0.35;     ///< fraction of the way a rate-limited step moves (§7.1)
    double p_step = 100;      ///< W: "small change" threshold; also the settle threshold (§12)
    double f_delta = 0.2;     ///< SoC band at either end in which rate limiting applies
    bool top_off = false;     ///< charge up to u_max instead of u_max - umax_diff
    double umax_diff = 0.5;   ///< V: width of the upper voltage taper
    double umin_diff = 0.5;   ///< V: width of the lower voltage taper
    double pg_min = -12000;   ///< W: lowest inverter AC power (largest charging power)
    double pg_max = 12000;    ///< W: highest inverter AC power (largest inverting power)
    double inv_eff = 0.9;     ///< inverter efficiency, one direction
    double p_per_phase = 4500; ///< W: per-phase magnitude cap of the phase split
    double pv_margin = 0.4;   ///< worst-case fraction of the PV maximum assumed available
    double pv_delta = 30;     ///< A: PV headroom current
    double cap_scale = 4;     ///< taper current = b_cap / cap_scale
    double r_int = 0.01;      ///< Ohm: battery internal resistance for u_dc
    // Additions of the port (§10.1, §18):
    bool phase_redistribution = false; ///< per-phase overload redistribution (§10.1)
    double safe_power = 0;    ///< W per phase, AC input, controller sign: written on stop/failure (§18.1)
    double soc_cutoff = 0.05; ///< SoC (0..1) at or below which the inverter may not discharge (§18.5)

    bool operator==(const SystemParams&) const = default;
};

/// The keys of an `[inverter]` instance table: every SystemParams member, plus
/// `mode` (the mode started first) and `modes` (per-mode parameter defaults).
/// Defaults and ranges here and in SystemParams agree (a test checks it).
extern const std::span<const moat::ConfigKey> config_keys;

/// Read the validated constants.
SystemParams system_params(const moat::Config& config);

// ---------------------------------------------------------------- modes

/// The control strategies, in the fixed order GetModes reports (§16.2).
enum class Mode { off, idle, p_grid, p_inv, i_batt, soc, remote, analyze };

std::string_view to_string(Mode mode);
/// A mode by name; also accepts the old names `gridsetpoint` (p_grid) and
/// `setsoc` (soc). nullopt when unknown.
std::optional<Mode> parse_mode(std::string_view name);

/// A parameter value: a number, or None (nullopt). Booleans are 0/1, integers
/// are integral doubles — the same model as the original's `op` dict.
using ParamValue = std::optional<double>;
/// The operational parameters of the running mode, by name.
using Op = std::map<std::string, ParamValue, std::less<>>;

enum class ParamType { number, integer, boolean };

struct ParamSpec {
    const char* name;
    ParamType type;
    ParamValue default_value;  ///< nullopt: None
    bool nullable;             ///< None is an allowed value
    double min;                ///< inclusive range; `phase` is further limited to n_phase
    double max;
    const char* help;
    /// Internal state kept in `op` (remote's `mode`): accepted in SetMode
    /// arguments, not listed by GetModeInfo, refused by SetModeParam.
    bool hidden = false;
};

struct ModeInfo {
    Mode mode;
    const char* name;
    const char* description;  ///< GetModeInfo's `_l`
    std::span<const ParamSpec> params;
};

/// All modes in GetModes order.
std::span<const ModeInfo> modes();
const ModeInfo& mode_info(Mode mode);
/// A parameter of `mode`; hidden ones only when `with_hidden`.
const ParamSpec* find_param(Mode mode, std::string_view name, bool with_hidden);

/// Why `value` is not acceptable for parameter `name` of `mode` (nullopt: it is).
/// `n_phase` bounds `phase` (D6). `via_set_mode` admits hidden parameters.
std::optional<std::string> check_param(Mode mode, std::string_view name, const ParamValue& value, int n_phase,
                                       bool via_set_mode);

/// Per-mode parameter defaults from the configuration (`modes` table).
using ModeDefaults = std::map<Mode, Op>;

/// Parse the `modes` table: `{p_grid = {power = -50}, remote = {...}}`. Unknown
/// modes or parameters, wrong types and values out of range throw
/// std::invalid_argument naming "mode.param". `phase` is checked against 3
/// here and against the real phase count when a mode starts.
ModeDefaults parse_mode_defaults(const moat::ConfigNode& table);
/// The same for a validated instance configuration; errors name file and line.
ModeDefaults mode_defaults(const moat::Config& config);

/// The parameters a mode runs with after SetMode(`next`, `args`) while `current`
/// runs with `op` (§5.1 [RECOMMEND], decided for the port):
///  * a change to another mode starts from an empty set (every parameter is
///    mode-specific: `power` means grid power in p_grid but inverter power in
///    p_inv, so carrying it over would be wrong);
///  * then explicit arguments win over values set before (same mode only),
///    which win over the configured `modes` defaults, which win over the
///    built-in defaults. The configured defaults never overwrite arguments
///    (the original's step 3 is dropped).
/// Arguments must have been checked with check_param.
Op params_for(Mode next, std::optional<Mode> current, const Op& op, const Op& args, const ModeDefaults& defaults);

/// A parameter as a Venus value (None: invalid), and a whole `op` as a dict
/// (GetState, and the log: `{'excess': None, 'power': 0.0}`).
Value param_to_value(const ParamValue& v);
Value op_dict(const Op& op);

} // namespace moat::inverter

#include "params.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <fmt/format.h>

namespace moat::inverter {

namespace {

using moat::ConfigKey;
using moat::KeyType;
using moat::no_limit;

// The ranges are not in the spec (which has none); they keep the formulas
// finite: the tapers and C-rate divide by umax_diff, umin_diff and cap_scale,
// small_p_step divides by p_step + |b|.
const ConfigKey keys[] = {
    {"mode", KeyType::string, "\"off\"", "mode started first", -no_limit, no_limit,
     "off|idle|p_grid|p_inv|i_batt|soc|remote|analyze|gridsetpoint|setsoc"},
    {"modes", KeyType::table, "{}",
     "per-mode parameter defaults, e.g. [inverter.modes.p_grid] power = -50 (see the plugin README)"},
    {"f_step", KeyType::number, "0.35", "fraction of the way a rate-limited step moves", 0.01, 1},
    {"p_step", KeyType::number, "100", "W: small-change threshold of rate limiting and settling", 1, 10000},
    {"f_delta", KeyType::number, "0.2", "SoC band at either end in which the setpoint is rate-limited", 0, 0.5},
    {"top_off", KeyType::boolean, "false", "charge up to the BMS's u_max instead of u_max - umax_diff"},
    {"umax_diff", KeyType::number, "0.5", "V: width of the upper voltage taper", 0.01, 10},
    {"umin_diff", KeyType::number, "0.5", "V: width of the lower voltage taper", 0.01, 10},
    {"pg_min", KeyType::number, "-12000", "W: lowest inverter AC power (largest charging power, negative)", -100000, 0},
    {"pg_max", KeyType::number, "12000", "W: highest inverter AC power (largest inverting power)", 0, 100000},
    {"inv_eff", KeyType::number, "0.9", "inverter efficiency, one direction", 0.5, 1},
    {"p_per_phase", KeyType::number, "4500", "W: per-phase magnitude cap of the phase split", 0, 100000},
    {"pv_margin", KeyType::number, "0.4", "worst-case fraction of the PV maximum assumed to stay available", 0, 1},
    {"pv_delta", KeyType::number, "30", "A: PV headroom current", 0, 1000},
    {"cap_scale", KeyType::number, "4", "the voltage tapers move b_cap / cap_scale amperes per umax_diff", 0.1, 100},
    {"r_int", KeyType::number, "0.01", "Ohm: battery internal resistance (open-circuit voltage estimate)", 0, 1},
    {"phase_redistribution", KeyType::boolean, "false",
     "move power from a phase whose inverter cannot deliver its share to the others"},
    {"safe_power", KeyType::number, "0",
     "W per phase, AC input, + = feed out: written on stop and failure", -20000, 20000},
    {"soc_cutoff", KeyType::number, "0.05", "SoC (0..1) at or below which the inverter may not discharge", 0, 1},
};

constexpr ParamValue none = std::nullopt;
constexpr double inf = no_limit;

const ParamSpec power_fixed[] = {
    {"power", ParamType::number, 0.0, false, -inf, inf, "inverter AC power per system, W; + = inverter feeds"},
};
const ParamSpec p_grid_params[] = {
    {"power", ParamType::number, 0.0, false, -inf, inf, "grid power, W; + = import, - = export"},
    {"excess", ParamType::number, none, true, -inf, inf,
     "cap the inverter at what the target needs plus this much, W; None = no cap (-1 is a real number)"},
};
const ParamSpec p_inv_params[] = {
    {"power", ParamType::number, 0.0, false, -inf, inf, "inverter AC power, W; + = inverter feeds AC"},
    {"excess", ParamType::number, none, true, -inf, inf, "cap the inverter at power plus this much, W; None = no cap"},
    {"phase", ParamType::integer, none, true, 1, 3, "put all power on this phase (1..n); None = distribute"},
};
const ParamSpec i_batt_params[] = {
    {"current", ParamType::number, 0.0, false, -inf, inf, "battery current, A; + = discharge"},
};
const ParamSpec soc_params[] = {
    {"dest_soc", ParamType::number, 0.5, false, 0, 1, "target state of charge, 0..1"},
    {"power_in", ParamType::number, 0.0, false, -inf, inf, "grid power while charging, W; + = import"},
    {"power_out", ParamType::number, 0.0, false, -inf, 0, "grid power while discharging, W; must be <= 0"},
    {"excess", ParamType::number, none, true, -inf, inf, "cap the inverter at what the target needs plus this much, W"},
};
const ParamSpec remote_params[] = {
    {"power", ParamType::number, 0.0, false, -inf, inf, "target export power, W (>= 0)"},
    {"power_ref", ParamType::number, 0.0, false, -inf, inf, "maximum export (reference power), W (>= 0)"},
    {"power_override", ParamType::number, none, true, -inf, inf,
     "direct inverter power, W (meant <= 0); -1 removes the override"},
    {"power_low", ParamType::number, 0.0, false, -inf, inf, "charging power when the battery is empty, W (>= 0)"},
    {"low_grid", ParamType::boolean, 1.0, false, 0, 1, "when low, hold the grid at about 0 instead of charging"},
    {"limit", ParamType::number, 1.0, false, -inf, inf, "scale factor for power and export, 0..1"},
    {"soc_low_zero", ParamType::number, 0.99, false, 0, 1, "SoC at or below which the battery is charged (state 1)"},
    {"soc_low", ParamType::number, 0.20, false, 0, 1, "SoC at or below which the battery is not discharged (state 2)"},
    {"soc_low_ok", ParamType::number, 0.0, false, 0, 1, "SoC at or above which states 1 and 2 end"},
    {"soc_high", ParamType::number, 0.90, false, 0, 1, "SoC at or above which the PV surplus is exported (state 3)"},
    {"soc_high_ok", ParamType::number, 0.85, false, 0, 1, "SoC at or below which state 3 ends"},
    {"mode", ParamType::integer, 3.0, false, 0, 3, "internal state 0..3", true},
};
const ParamSpec analyze_params[] = {
    {"p_chg", ParamType::number, 0.0, false, -inf, inf,
     "charging power, W; an inverter power (negative) without use_grid, a grid power (positive) with it"},
    {"p_dis", ParamType::number, 0.0, false, -inf, inf,
     "discharging power, W; positive without use_grid (inverter power), negative with it (grid power, export)"},
    {"excess", ParamType::number, none, true, -inf, inf, "cap the inverter at what the target needs plus this much, W"},
    {"balance", ParamType::number, 0.0, false, -1, inf, "seconds to hold at the top; -1 skips balancing"},
    {"skip", ParamType::integer, 0.0, false, 0, 7,
     "number of leading steps to skip (0 balance, 1 below top, 2 charge, 3 discharge, 4 recharge, 5 set the "
     "capacity, 6 switch to p_inv/p_grid; 7 skips them all and ends in off)"},
    {"e_dis", ParamType::number, 0.0, false, 0, inf, "discharged energy, Ws, when step 3 is skipped"},
    {"e_chg", ParamType::number, 0.0, false, 0, inf, "charged energy, Ws, when step 4 is skipped"},
    {"use_grid", ParamType::boolean, 0.0, false, 0, 1, "p_chg/p_dis are grid setpoints instead of inverter setpoints"},
};

const ModeInfo mode_table[] = {
    {Mode::off, "off", "Write a fixed inverter power once, without limits; then do nothing.", power_fixed},
    {Mode::idle, "idle", "Write a fixed inverter power every cycle, without battery limits.", power_fixed},
    {Mode::p_grid, "p_grid",
     "Hold the grid power at a target, balancing the phases without charging on one phase while "
     "discharging on another; charge the battery when power is available.",
     p_grid_params},
    {Mode::p_inv, "p_inv", "Hold the inverter's AC power at a target, within the battery and PV limits.", p_inv_params},
    {Mode::i_batt, "i_batt",
     "Hold the battery current at a target. DVCC does not know the target, so surplus PV can charge more.",
     i_batt_params},
    {Mode::soc, "soc", "Charge or discharge to a target state of charge, then hold the battery current at 0.",
     soc_params},
    {Mode::remote, "remote",
     "Export a target power with a reference maximum; charge when empty, export the PV surplus when full.",
     remote_params},
    {Mode::analyze, "analyze",
     "Measure the battery's capacity and losses with the MoaT BMS: top balance, below the top, charge, then "
     "discharge and recharge while the BMS counts the energy; SetCapacity on the BMS, then p_inv (p_grid with "
     "use_grid) at 0 W.",
     analyze_params},
};

ParamValue node_value(const moat::ConfigNode& node, std::string_view where) {
    if (auto b = node.as_bool()) return *b ? 1.0 : 0.0;
    if (node.is_number()) return node.as_number();
    throw std::invalid_argument(fmt::format("{}: expected a number or a boolean", where));
}

} // namespace

const std::span<const moat::ConfigKey> config_keys{keys};

SystemParams system_params(const moat::Config& c) {
    SystemParams p;
    p.f_step = c.get_number("f_step");
    p.p_step = c.get_number("p_step");
    p.f_delta = c.get_number("f_delta");
    p.top_off = c.get_bool("top_off");
    p.umax_diff = c.get_number("umax_diff");
    p.umin_diff = c.get_number("umin_diff");
    p.pg_min = c.get_number("pg_min");
    p.pg_max = c.get_number("pg_max");
    p.inv_eff = c.get_number("inv_eff");
    p.p_per_phase = c.get_number("p_per_phase");
    p.pv_margin = c.get_number("pv_margin");
    p.pv_delta = c.get_number("pv_delta");
    p.cap_scale = c.get_number("cap_scale");
    p.r_int = c.get_number("r_int");
    p.phase_redistribution = c.get_bool("phase_redistribution");
    p.safe_power = c.get_number("safe_power");
    p.soc_cutoff = c.get_number("soc_cutoff");
    return p;
}

std::span<const ModeInfo> modes() { return mode_table; }

const ModeInfo& mode_info(Mode mode) { return mode_table[static_cast<std::size_t>(mode)]; }

std::string_view to_string(Mode mode) { return mode_info(mode).name; }

std::optional<Mode> parse_mode(std::string_view name) {
    for (auto& m : mode_table)
        if (name == m.name) return m.mode;
    // Old names (INSTALL.md, pre-Sep-2022 configs).
    if (name == "gridsetpoint") return Mode::p_grid;
    if (name == "setsoc") return Mode::soc;
    return std::nullopt;
}

const ParamSpec* find_param(Mode mode, std::string_view name, bool with_hidden) {
    for (auto& p : mode_info(mode).params)
        if (name == p.name && (with_hidden || !p.hidden)) return &p;
    return nullptr;
}

std::optional<std::string> check_param(Mode mode, std::string_view name, const ParamValue& value, int n_phase,
                                       bool via_set_mode) {
    // The original refuses empty names and names starting with '_' (§15).
    const ParamSpec* spec = name.empty() || name.front() == '_' ? nullptr : find_param(mode, name, via_set_mode);
    if (!spec) return fmt::format("unknown parameter for {}: '{}'", to_string(mode), name);
    if (!value) {
        if (spec->nullable) return std::nullopt;
        return fmt::format("{}: None is not allowed", name);
    }
    double v = *value;
    if (!std::isfinite(v)) return fmt::format("{}: {} is not a finite number", name, v);
    if (spec->type == ParamType::boolean && v != 0 && v != 1) return fmt::format("{}: expected a boolean", name);
    if (spec->type == ParamType::integer && v != std::floor(v)) return fmt::format("{}: expected an integer", name);
    double max = spec->max;
    if (std::string_view(spec->name) == "phase") max = std::min<double>(max, n_phase);  // D6
    if (v < spec->min || v > max) return fmt::format("{}: {} is out of range [{}, {}]", name, v, spec->min, max);
    return std::nullopt;
}

namespace {

/// One mode's table, its parameters not yet read; throws std::invalid_argument.
Mode mode_of_table(const std::string& mode_name, const moat::ConfigNode& params) {
    auto mode = parse_mode(mode_name);
    if (!mode) throw std::invalid_argument(fmt::format("{}: unknown mode", mode_name));
    if (params.kind() != moat::ConfigNode::Kind::table)
        throw std::invalid_argument(fmt::format("{}: expected a table of parameters", mode_name));
    return *mode;
}

/// One parameter of a mode's table into `op`; throws std::invalid_argument.
void parse_mode_param(Mode mode, const std::string& mode_name, const std::string& param, const moat::ConfigNode& node,
                      Op& op) {
    ParamValue v = node_value(node, fmt::format("{}.{}", mode_name, param));
    if (auto err = check_param(mode, param, v, 3, true)) throw std::invalid_argument(fmt::format("{}: {}", mode_name, *err));
    op[param] = v;
}

} // namespace

void parse_mode_table(const std::string& mode_name, const moat::ConfigNode& params, ModeDefaults& out) {
    const Mode mode = mode_of_table(mode_name, params);
    Op& op = out[mode];
    for (const auto& param : params.keys()) parse_mode_param(mode, mode_name, param, params.get(param), op);
}

ModeDefaults parse_mode_defaults(const moat::ConfigNode& table) {
    ModeDefaults out;
    for (const auto& mode_name : table.keys()) parse_mode_table(mode_name, table.get(mode_name), out);
    return out;
}

ModeDefaults mode_defaults(const moat::Config& config) {
    const moat::ConfigNode node = config.node("modes");
    if (node.kind() != moat::ConfigNode::Kind::table) return {};
    // Each mode's table and each parameter on its own, at its own line: every
    // wrong one is reported, not only the first.
    ModeDefaults out;
    for (const auto& name : node.keys()) {
        const moat::ConfigNode params = node.get(name);
        try {
            const Mode mode = mode_of_table(name, params);
            Op& op = out[mode];
            for (const auto& param : params.keys()) {
                try {
                    parse_mode_param(mode, name, param, params.get(param), op);
                } catch (const std::invalid_argument& e) {
                    config.problem_at(params.get(param), "key 'modes'", e.what());
                }
            }
        } catch (const std::invalid_argument& e) {
            config.problem_at(params, "key 'modes'", e.what());
        }
    }
    config.throw_problems();
    return out;
}

Op params_for(Mode next, std::optional<Mode> current, const Op& op, const Op& args, const ModeDefaults& defaults) {
    Op out = current == next ? op : Op{};
    for (auto& [k, v] : args) out[k] = v;
    if (auto it = defaults.find(next); it != defaults.end())
        for (auto& [k, v] : it->second) out.try_emplace(k, v);
    for (auto& p : mode_info(next).params) out.try_emplace(p.name, p.default_value);
    return out;
}

Value param_to_value(const ParamValue& v) { return v ? Value(*v) : Value(); }

Value op_dict(const Op& op) {
    Value::Dict d;
    for (auto& [k, v] : op) d[k] = param_to_value(v);
    return d;
}

} // namespace moat::inverter

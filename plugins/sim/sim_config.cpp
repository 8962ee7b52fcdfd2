#include "sim_config.hpp"

#include <filesystem>

#include <fmt/format.h>

namespace moat::sim {

namespace {

using K = KeyType;

const ConfigKey top_keys[] = {
    {"suffix", K::string, "\"\"", "service names end in .<suffix> (default: the instance name)"},
    {"phases", K::integer, "1", "AC phases of the Multi, the grid meter and the loads", 1, 3},
    {"update_interval", K::number, "1.0", "seconds between published updates (one ItemsChanged per service)", 0.05, 60},
    {"start_hour", K::number, "12.0", "simulated time of day at start (hours)", 0, 24},
    {"speedup", K::number, "1.0", "the sun and the load profile run this many times faster than the clock", 0, 1e6},
    {"seed", K::integer, "1", "seed of the load noise (same seed, same numbers)", 0, 9.0e15},
    {"stop_linger", K::number, "1.0",
     "on stop, the services stay on the bus (frozen) up to this long for other plugins' safe-state writes (s)", 0, 10},
    {"vebus", K::table, "{}", "the Multi (see docs/simulation.md)"},
    {"battery", K::table, "{}", "the battery and its BMS"},
    {"solar", K::array, "[{}]", "solar chargers: an array of tables, one per charger ([] = none)"},
    {"grid", K::table, "{}", "the grid meter"},
    {"load", K::table, "{}", "the household load per phase"},
    {"faults", K::table, "{}", "faults injected at start (also settable through /Sim/Fault)"},
    {"settings", K::table, "{}", "com.victronenergy.settings with the ESS and DVCC settings"},
    {"system", K::boolean, "true",
     "publish com.victronenergy.system (false: leave it to Victron's systemcalc, run against the simulated devices)"},
    {"moat_bms", K::table, "{}", "a simulated MoaT BMS controller and cell ring on a pty (docs/moat-bms-link.md)"},
};

const ConfigKey moat_bms_keys[] = {
    {"enabled", K::boolean, "false", "serve a simulated MoaT BMS controller"},
    {"link", K::string, "\"\"", "pty:PATH: a pseudo-terminal behind the symlink PATH (a moat-bms device); unix:PATH: a Unix socket (a moat-bms socket, plain msgpack)"},
    {"cells", K::integer, "16", "batt.n of the controller's configuration", 1, 32},
    {"modules", K::integer, "-1", "modules in the ring (-1: as many as cells)", -1, 255},
    {"quirks_2022", K::boolean, "false", "the 2022 controller: the keepalive never trips, the info generation moves every check"},
    {"float32", K::boolean, "true", "floats as float32, as the RP2040 sends them"},
    {"byte_ring", K::boolean, "false", "SerialPacker frames on the simulated ring: a lost packet is a CRC error the controller counts"},
    {"time_factor", K::number, "1.0", "the controller's time runs this many times faster", 0.01, 1000},
    {"seed", K::integer, "1", "seed of the simulated ring's random faults", 0, 4294967295.0},
    {"baud", K::integer, "2400", "the cell ring's baud rate (ser.baud of the controller's configuration)", 300, 115200},
    {"battery", K::string, "\"\"", "the system's battery is this controller's, as a moat-bms instance publishes it "
     "(e.g. com.victronenergy.battery.batt): the simulated battery service is not published, the system selects this one, "
     "and the controller's pack current follows the simulated battery's current (\"\": a controller beside the simulated battery)"},
};

const ConfigKey vebus_keys[] = {
    {"rating", K::number, "3000.0", "per-phase power rating (W), both directions", 0, 1e6},
    {"tau", K::number, "1.5", "time constant of the response to the setpoint (s)", 0, 60},
    {"timeout", K::number, "60.0", "fall back to 0 W when no setpoint was written for this long (s)", 0.1, 86400},
    {"efficiency", K::number, "0.95", "conversion efficiency, each way", 0.5, 1},
    {"max_charge_current", K::number, "100.0", "the charger's DC current limit /Dc/0/MaxChargeCurrent at start (A)", 0,
     1e4},
    {"instance", K::integer, "276", "/DeviceInstance", 0, 1023},
};

const ConfigKey battery_keys[] = {
    {"capacity", K::number, "200.0", "capacity (Ah)", 1, 1e6},
    {"soc", K::number, "60.0", "initial state of charge (%)", 0, 100},
    {"r_internal", K::number, "0.01", "internal resistance (ohm)", 0, 10},
    {"charge_efficiency", K::number, "1.0", "the part of the charge going in that is stored (coulombic efficiency)", 0.5, 1},
    {"ocv", K::array, "[46.0, 50.4, 51.6, 52.0, 52.3, 52.5, 52.7, 52.9, 53.1, 53.6, 55.0]",
     "open-circuit voltage at equally spaced SoC points from 0 to 100 % (at least 2)"},
    {"max_charge_voltage", K::number, "55.2", "BMS charge voltage limit /Info/MaxChargeVoltage (V)", 0, 1000},
    {"max_charge_current", K::number, "100.0", "BMS charge current limit (A)", 0, 1e5},
    {"max_discharge_current", K::number, "150.0", "BMS discharge current limit (A)", 0, 1e5},
    {"low_voltage", K::number, "46.5", "/Info/BatteryLowVoltage (V)", 0, 1000},
    {"full_soc", K::number, "100.0", "the BMS disallows charging at this SoC", 0, 100},
    {"recharge_soc", K::number, "97.0", "… and allows it again below this SoC", 0, 100},
    {"empty_soc", K::number, "5.0", "the BMS disallows discharging at this SoC", 0, 100},
    {"rearm_soc", K::number, "8.0", "… and allows it again above this SoC", 0, 100},
    {"instance", K::integer, "512", "/DeviceInstance", 0, 1023},
};

const ConfigKey solar_keys[] = {
    {"peak", K::number, "3000.0", "PV power at the middle of the day (W)", 0, 1e6},
    {"sunrise", K::number, "6.0", "hour of sunrise", 0, 24},
    {"sunset", K::number, "20.0", "hour of sunset", 0, 24},
    {"max_current", K::number, "60.0", "the charger's current limit /Settings/ChargeCurrentLimit (A)", 0, 1e4},
    {"instance", K::integer, "-1", "/DeviceInstance (-1: 278 + the charger's index)", -1, 1023},
};

const ConfigKey settings_keys[] = {
    {"enabled", K::boolean, "true", "publish com.victronenergy.settings (false: another settings service runs)"},
    {"file", K::string, "\"\"", "persistence file, relative to the config file's directory (\"\" = in memory only)"},
};

const ConfigKey grid_keys[] = {
    {"instance", K::integer, "30", "/DeviceInstance", 0, 1023},
    {"modbus", K::table, "{}",
     "serve the grid meter as a simulated Modbus TCP meter instead of publishing it on D-Bus (a meters plugin reads it)"},
};

const ConfigKey grid_modbus_keys[] = {
    {"port", K::integer, "0", "TCP port of the simulated meter (0 = no Modbus: the grid meter is on D-Bus)", 0, 65535},
    {"host", K::string, "\"127.0.0.1\"", "numeric address it listens on"},
    {"type", K::string, "\"sdm630v2\"", "meter type, as the meters plugin names it", -no_limit, no_limit,
     "abb_b2x|em24rtu|sdm120|sdm630v1|sdm630v2|sdm72dv2"},
    {"unit", K::integer, "1", "Modbus unit id", 1, 247},
    {"serial", K::string, "\"12345678\"", "serial number (the service becomes com.victronenergy.grid.cg_<serial>)"},
};

const ConfigKey load_keys[] = {
    {"base", K::array, "[400.0, 300.0, 300.0]", "load per phase (W) before the profile factor"},
    {"profile", K::array, "[]", "hourly factors over the day (any number of points, wrapping at midnight; [] = 1)"},
    {"noise", K::number, "30.0", "standard deviation of the noise per phase (W)", 0, 1e5},
    {"noise_time", K::number, "5.0", "correlation time of the noise (s)", 0, 86400},
};

const ConfigKey fault_keys[] = {
    {"vebus", K::string, "\"none\"", "fault of the Multi's service", -no_limit, no_limit, "none|freeze|invalid|vanish"},
    {"battery", K::string, "\"none\"", "fault of the battery service", -no_limit, no_limit, "none|freeze|invalid|vanish"},
    {"solarcharger", K::string, "\"none\"", "fault of every solar charger service", -no_limit, no_limit,
     "none|freeze|invalid|vanish"},
    {"grid", K::string, "\"none\"", "fault of the grid meter service", -no_limit, no_limit, "none|freeze|invalid|vanish"},
    {"system", K::string, "\"none\"", "fault of the system service", -no_limit, no_limit, "none|freeze|invalid|vanish"},
    {"after", K::number, "0.0", "inject them this many seconds after the start", 0, 1e6},
    {"vanish_seconds", K::number, "10.0", "a vanished service comes back after this (0 = never)", 0, 1e6},
};

/// Validates a sub-table with the host's rules. Its problems are recorded
/// (Config::problem) at their own lines, naming the top-level key, and the
/// table's defaults stand in for it, so that the later checks still run.
Config sub(const Config& config, std::string_view key, const ConfigNode& table, std::span<const ConfigKey> keys) {
    const std::string name = fmt::format("{}.{}", config.instance(), key);
    try {
        return validate_table(table, name, keys);
    } catch (const ConfigError& e) {
        const std::string all = e.what();
        for (std::size_t at = 0; at < all.size();) {
            std::size_t end = all.find('\n', at);
            if (end == std::string::npos) end = all.size();
            const std::string line = all.substr(at, end - at);
            at = end + 1;
            // "FILE:LINE: [sim.battery] key 'x': reason" → [sim] key 'battery': key 'x': reason, at x's line
            auto pos = line.find("] ");
            std::string rest = pos == std::string::npos ? line : line.substr(pos + 2);
            ConfigNode where = table;
            if (rest.starts_with("key '"))
                if (auto quote = rest.find('\'', 5); quote != std::string::npos)
                    if (ConfigNode n = table.get(rest.substr(5, quote - 5))) where = n;
            config.problem_at(where, fmt::format("key '{}'", key), rest);
        }
    }
    return validate_table(parse_toml("", config.file()), name, keys);
}

std::vector<double> numbers(const Config& config, std::string_view key, const Config& c, std::string_view sub_key) {
    std::vector<double> out;
    const ConfigNode arr = c.node(sub_key);
    for (std::size_t i = 0; i < arr.size(); ++i) {
        auto v = arr.at(i).as_number();
        if (!v) {
            config.problem_at(arr.at(i), fmt::format("key '{}'", key),
                              fmt::format("key '{}': expected an array of numbers", sub_key));
            continue;
        }
        out.push_back(*v);
    }
    return out;
}

Fault fault(const Config& c, std::string_view key) { return parse_fault(c.get_string(key)).value_or(Fault::none); }

} // namespace

std::span<const ConfigKey> config_keys() { return top_keys; }

std::span<const ConfigKey> sub_keys(std::string_view table) {
    if (table == "vebus") return vebus_keys;
    if (table == "battery") return battery_keys;
    if (table == "solar") return solar_keys;
    if (table == "grid") return grid_keys;
    if (table == "grid.modbus") return grid_modbus_keys;
    if (table == "moat_bms") return moat_bms_keys;
    if (table == "load") return load_keys;
    if (table == "faults") return fault_keys;
    if (table == "settings") return settings_keys;
    return {};
}

SimConfig parse_config(const Config& config) {
    SimConfig out;
    const auto st = sub(config, "settings", config.node("settings"), settings_keys);
    out.settings = st.get_bool("enabled");
    out.settings_file = st.get_string("file");
    if (!out.settings_file.empty() && std::filesystem::path(out.settings_file).is_relative())
        out.settings_file = (std::filesystem::path(config.file()).parent_path() / out.settings_file).string();
    out.suffix = config.get_string("suffix");
    if (out.suffix.empty()) out.suffix = config.instance();
    out.update_interval = config.get_number("update_interval");
    out.stop_linger = config.get_number("stop_linger");
    auto& sys = out.system;
    sys.start_hour = config.get_number("start_hour");
    sys.speedup = config.get_number("speedup");

    const auto v = sub(config, "vebus", config.node("vebus"), vebus_keys);
    sys.multi.phases = static_cast<int>(config.get_int("phases"));
    sys.multi.rating_w = v.get_number("rating");
    sys.multi.tau_s = v.get_number("tau");
    sys.multi.timeout_s = v.get_number("timeout");
    sys.multi.efficiency = v.get_number("efficiency");
    sys.multi.max_charge_current = v.get_number("max_charge_current");
    out.vebus_instance = v.get_int("instance");

    const auto b = sub(config, "battery", config.node("battery"), battery_keys);
    auto& bc = sys.battery;
    bc.capacity_ah = b.get_number("capacity");
    bc.soc = b.get_number("soc");
    bc.r_internal = b.get_number("r_internal");
    bc.charge_efficiency = b.get_number("charge_efficiency");
    bc.ocv = numbers(config, "battery", b, "ocv");
    if (bc.ocv.size() < 2 && bc.ocv.size() == b.node("ocv").size())  // (a wrong entry is reported already)
        config.problem("battery", "key 'ocv': give at least 2 voltages (at 0 % and 100 %)");
    bc.max_charge_voltage = b.get_number("max_charge_voltage");
    bc.max_charge_current = b.get_number("max_charge_current");
    bc.max_discharge_current = b.get_number("max_discharge_current");
    bc.low_voltage = b.get_number("low_voltage");
    bc.full_soc = b.get_number("full_soc");
    bc.recharge_soc = b.get_number("recharge_soc");
    bc.empty_soc = b.get_number("empty_soc");
    bc.rearm_soc = b.get_number("rearm_soc");
    if (bc.recharge_soc > bc.full_soc || bc.rearm_soc < bc.empty_soc)
        config.problem("battery", "needs recharge_soc <= full_soc and rearm_soc >= empty_soc");
    out.battery_instance = b.get_int("instance");

    sys.solar.clear();
    const ConfigNode solar = config.node("solar");
    for (std::size_t i = 0; i < solar.size(); ++i) {
        const ConfigNode t = solar.at(i);
        if (t.kind() != ConfigNode::Kind::table) {
            config.problem_at(t, "key 'solar'", fmt::format("entry {}: expected a table", i));
            continue;
        }
        const auto s = sub(config, "solar", t, solar_keys);
        SolarConfig sc;
        sc.curve.peak_w = s.get_number("peak");
        sc.curve.sunrise_h = s.get_number("sunrise");
        sc.curve.sunset_h = s.get_number("sunset");
        if (sc.curve.sunset_h <= sc.curve.sunrise_h)
            config.problem_at(t, "key 'solar'", fmt::format("entry {}: sunset before sunrise", i));
        sc.max_current = s.get_number("max_current");
        sys.solar.push_back(sc);
        auto inst = s.get_int("instance");
        out.solar_instances.push_back(inst >= 0 ? inst : 278 + static_cast<std::int64_t>(i));
    }

    const auto g = sub(config, "grid", config.node("grid"), grid_keys);
    out.grid_instance = g.get_int("instance");
    const auto gm = sub(config, "grid", g.node("modbus"), grid_modbus_keys);
    if (gm.get_int("port") > 0) {
        out.grid_modbus = GridModbus{.port = static_cast<std::uint16_t>(gm.get_int("port")),
                                     .host = gm.get_string("host"),
                                     .type = gm.get_string("type"),
                                     .unit = static_cast<std::uint8_t>(gm.get_int("unit")),
                                     .serial = gm.get_string("serial")};
        if (sys.multi.phases > 1 && out.grid_modbus->type == "sdm120")
            config.problem("grid", fmt::format("key 'modbus': an sdm120 has one phase, the system {}", sys.multi.phases));
    }

    const auto mb = sub(config, "moat_bms", config.node("moat_bms"), moat_bms_keys);
    if (mb.get_bool("enabled")) {
        const auto link = mb.get_string("link");
        const bool pty = link.starts_with("pty:"), unix = link.starts_with("unix:");
        if ((!pty && !unix) || link.size() == (pty ? 4u : 5u))
            config.problem("moat_bms", fmt::format("key 'link': expected pty:PATH or unix:PATH, not '{}'", link));
        MoatBmsSim m;
        m.link = link.substr(pty ? 4 : 5);
        m.unix_socket = unix;
        m.cells = static_cast<int>(mb.get_int("cells"));
        m.modules = mb.get_int("modules") < 0 ? m.cells : static_cast<int>(mb.get_int("modules"));
        m.quirks_2022 = mb.get_bool("quirks_2022");
        m.float32 = mb.get_bool("float32");
        m.byte_ring = mb.get_bool("byte_ring");
        m.time_factor = mb.get_number("time_factor");
        m.seed = static_cast<std::uint32_t>(mb.get_int("seed"));
        m.battery = mb.get_string("battery");
        m.baud = static_cast<int>(mb.get_int("baud"));
        if (!m.battery.empty() && !m.battery.starts_with("com.victronenergy.battery."))
            config.fail("moat_bms", fmt::format("key 'battery': a com.victronenergy.battery.* name, not '{}'", m.battery));
        out.moat_bms = m;
    }

    const auto l = sub(config, "load", config.node("load"), load_keys);
    sys.load.base_w = numbers(config, "load", l, "base");
    if (static_cast<int>(sys.load.base_w.size()) < sys.multi.phases)
        config.problem("load", fmt::format("key 'base': give a load for each of the {} phases", sys.multi.phases));
    sys.load.profile = numbers(config, "load", l, "profile");
    sys.load.noise_w = l.get_number("noise");
    sys.load.noise_time_s = l.get_number("noise_time");
    sys.load.seed = static_cast<std::uint64_t>(config.get_int("seed"));

    const auto f = sub(config, "faults", config.node("faults"), fault_keys);
    for (auto [kind, key] : {std::pair{DeviceKind::vebus, "vebus"}, {DeviceKind::battery, "battery"},
                             {DeviceKind::solarcharger, "solarcharger"}, {DeviceKind::grid, "grid"},
                             {DeviceKind::system, "system"}})
        if (auto x = fault(f, key); x != Fault::none) out.faults[kind] = x;
    out.fault_after = f.get_number("after");
    out.vanish_seconds = f.get_number("vanish_seconds");
    out.system_service = config.get_bool("system");
    if (!out.system_service && out.faults.contains(DeviceKind::system))
        config.problem("faults", "key 'system': there is no simulated system service (system = false)");
    if (out.grid_modbus && out.faults.contains(DeviceKind::grid))
        config.problem("faults", "key 'grid': the grid meter is served over Modbus (grid.modbus), not on D-Bus");
    config.throw_problems();
    return out;
}

} // namespace moat::sim

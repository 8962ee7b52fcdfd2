#include "devices.hpp"

#include <cmath>
#include <fmt/format.h>

namespace moat::sim {

namespace {

constexpr double ac_voltage = 230.0;
constexpr double ac_frequency = 50.0;

std::string phase_path(std::string_view prefix, int n, std::string_view leaf) {
    return fmt::format("{}/L{}/{}", prefix, n + 1, leaf);
}

std::optional<double> num(const std::optional<Values>& vals, const std::string& path) {
    if (!vals) return std::nullopt;
    auto it = vals->find(path);
    if (it == vals->end()) return std::nullopt;
    return it->second.as_number();
}

Value opt(std::optional<double> v) { return v ? Value(*v) : Value(); }

/// Python's max(0, x), as systemcalc computes consumption: the integer 0
/// when x <= 0 (max returns its first argument on a tie), else the double.
Value max0(std::optional<double> x) {
    if (!x) return Value();
    return *x > 0 ? Value(*x) : Value(0);
}

Value value_at(const Values& vals, const std::string& path) {
    auto it = vals.find(path);
    return it == vals.end() ? Value() : it->second;
}

} // namespace

std::string_view to_string(DeviceKind k) {
    switch (k) {
    case DeviceKind::vebus: return "vebus";
    case DeviceKind::battery: return "battery";
    case DeviceKind::solarcharger: return "solarcharger";
    case DeviceKind::grid: return "grid";
    case DeviceKind::system: return "system";
    }
    return "?";
}

std::optional<Fault> parse_fault(std::string_view name) {
    if (name == "none") return Fault::none;
    if (name == "freeze") return Fault::freeze;
    if (name == "invalid") return Fault::invalid;
    if (name == "vanish") return Fault::vanish;
    return std::nullopt;
}

std::string_view to_string(Fault f) {
    switch (f) {
    case Fault::none: return "none";
    case Fault::freeze: return "freeze";
    case Fault::invalid: return "invalid";
    case Fault::vanish: return "vanish";
    }
    return "?";
}

Values vebus_values(const System& s) {
    const auto& m = s.multi;
    const double v = s.battery.voltage();
    const double i = s.multi_dc_current();
    Values out;
    for (int n = 0; n < m.phases(); ++n) {
        const double p = m.ac_in(n);
        out[phase_path("/Ac/ActiveIn", n, "P")] = p;
        out[phase_path("/Ac/ActiveIn", n, "V")] = ac_voltage;
        out[phase_path("/Ac/ActiveIn", n, "I")] = p / ac_voltage;
        out[phase_path("/Ac/ActiveIn", n, "F")] = ac_frequency;
        out[phase_path("/Ac/Out", n, "P")] = 0.0;
        out[phase_path("/Ac/Out", n, "V")] = ac_voltage;
        out[phase_path("/Ac/Out", n, "I")] = 0.0;
        out[phase_path("/Ac/Out", n, "F")] = ac_frequency;
        out[fmt::format("/Hub4/L{}/AcPowerSetpoint", n + 1)] = m.setpoint(n);
    }
    out["/Ac/ActiveIn/P"] = m.ac_in_total();
    out["/Ac/ActiveIn/ActiveInput"] = 0;
    out["/Ac/ActiveIn/Connected"] = 1;
    out["/Ac/Out/P"] = 0.0;
    out["/Ac/NumberOfPhases"] = m.phases();
    out["/Ac/NumberOfAcInputs"] = 1;
    out["/Dc/0/Voltage"] = v;
    out["/Dc/0/Current"] = i;
    out["/Dc/0/Power"] = v * i;
    out["/Soc"] = s.battery.soc();
    out["/Mode"] = m.mode;
    out["/ModeIsAdjustable"] = 1;
    int state = 8;  // passthru
    if (m.mode == 4) state = 0;
    else if (m.ac_in_total() < -10) state = 9;  // inverting
    else if (m.ac_in_total() > 10) state = 3;   // bulk
    out["/State"] = state;
    out["/Hub4/AssistantId"] = 5;
    out["/Hub4/DisableCharge"] = m.disable_charge ? 1 : 0;
    out["/Hub4/DisableFeedIn"] = m.disable_feed_in ? 1 : 0;
    out["/Hub/ChargeVoltage"] = s.charge_voltage();
    const auto& b = s.battery;
    // What DVCC wrote; until a client writes, the BMS's values (the sim is DVCC then).
    auto limit = [](const WrittenLimit& w, double bms) { return w.written ? opt(w.value) : Value(bms); };
    out["/BatteryOperationalLimits/MaxChargeVoltage"] = limit(m.dvcc.max_charge_voltage, b.config().max_charge_voltage);
    out["/BatteryOperationalLimits/MaxChargeCurrent"] = limit(m.dvcc.max_charge_current, b.charge_current_limit());
    out["/BatteryOperationalLimits/MaxDischargeCurrent"] =
        limit(m.dvcc.max_discharge_current, b.discharge_current_limit());
    out["/BatteryOperationalLimits/BatteryLowVoltage"] = limit(m.dvcc.battery_low_voltage, b.config().low_voltage);
    out["/Dc/0/MaxChargeCurrent"] = m.dc_max_charge_current;
    out["/Bms/AllowToCharge"] = b.allow_charge() ? 1 : 0;
    out["/Bms/AllowToDischarge"] = b.allow_discharge() ? 1 : 0;
    out["/FirmwareFeatures/BolFrame"] = 1;
    out["/Sim/FallenBack"] = m.fallen_back(s.now()) ? 1 : 0;
    return out;
}

Values battery_values(const System& s) {
    const auto& b = s.battery;
    const double v = b.voltage(), i = b.current();
    Values out;
    out["/Dc/0/Voltage"] = v;
    out["/Dc/0/Current"] = i;
    out["/Dc/0/Power"] = v * i;
    out["/Dc/0/Temperature"] = 25.0;
    out["/Soc"] = b.soc();
    out["/Soh"] = 100.0;
    out["/Capacity"] = b.capacity();
    out["/InstalledCapacity"] = b.capacity();
    out["/TimeToGo"] = i < -0.1 ? Value(b.soc() / 100.0 * b.capacity() / -i * 3600.0) : Value();
    out["/Info/MaxChargeVoltage"] = b.config().max_charge_voltage;
    out["/Info/MaxChargeCurrent"] = b.charge_current_limit();
    out["/Info/MaxDischargeCurrent"] = b.discharge_current_limit();
    out["/Info/BatteryLowVoltage"] = b.config().low_voltage;
    out["/Info/ChargeRequest"] = 0;
    out["/Io/AllowToCharge"] = b.allow_charge() ? 1 : 0;
    out["/Io/AllowToDischarge"] = b.allow_discharge() ? 1 : 0;
    out["/Sim/Soc"] = b.soc();
    out["/Sim/AllowToCharge"] = b.forced_charge() ? (*b.forced_charge() ? 1 : 0) : -1;
    out["/Sim/AllowToDischarge"] = b.forced_discharge() ? (*b.forced_discharge() ? 1 : 0) : -1;
    return out;
}

Values solar_values(const System& s, std::size_t idx) {
    const auto& c = s.solar.at(idx);
    const double v = s.battery.voltage(), i = c.current();
    Values out;
    out["/Dc/0/Voltage"] = v;
    out["/Dc/0/Current"] = i;
    out["/Yield/Power"] = v * i;
    out["/Yield/User"] = s.pv_yield_kwh(idx);
    const bool producing = i > 0.01;
    const bool limited = producing && i < c.available_current() - 0.01;
    out["/State"] = producing ? (limited ? 4 : 3) : 0;
    out["/MppOperationMode"] = producing ? (limited ? 1 : 2) : 0;
    out["/Mode"] = c.on ? 1 : 4;
    out["/Link/ChargeCurrent"] = opt(c.link_current);
    out["/Link/ChargeVoltage"] = opt(c.link_voltage);
    out["/Link/NetworkMode"] = c.network_mode;
    out["/Settings/ChargeCurrentLimit"] = c.config().max_current;
    out["/Settings/BmsPresent"] = 0;
    out["/ErrorCode"] = 0;
    return out;
}

Values grid_values(const System& s) {
    Values out;
    double total = 0;
    Energy sum;
    for (int n = 0; n < s.phases(); ++n) {
        const double p = s.grid(n);
        total += p;
        out[phase_path("/Ac", n, "Power")] = p;
        out[phase_path("/Ac", n, "Voltage")] = ac_voltage;
        out[phase_path("/Ac", n, "Current")] = p / ac_voltage;
        out[phase_path("/Ac", n, "Energy/Forward")] = s.grid_energy[n].forward_kwh;
        out[phase_path("/Ac", n, "Energy/Reverse")] = s.grid_energy[n].reverse_kwh;
        sum.forward_kwh += s.grid_energy[n].forward_kwh;
        sum.reverse_kwh += s.grid_energy[n].reverse_kwh;
    }
    out["/Ac/Power"] = total;
    out["/Ac/Energy/Forward"] = sum.forward_kwh;
    out["/Ac/Energy/Reverse"] = sum.reverse_kwh;
    out["/Ac/Frequency"] = ac_frequency;
    out["/NrOfPhases"] = s.phases();
    out["/Role"] = "grid";
    out["/ErrorCode"] = 0;
    return out;
}

Values invalidated(const Values& v) {
    Values out;
    for (const auto& [path, value] : v) out[path] = path.starts_with("/Sim/") ? value : Value();
    return out;
}

Values systemcalc(const Published& p, int phases) {
    Values out;
    // Battery: the one battery service, as systemcalc selects it.
    const auto& bat = p.battery;
    out["/Dc/Battery/Voltage"] = opt(num(bat, "/Dc/0/Voltage"));
    out["/Dc/Battery/Current"] = opt(num(bat, "/Dc/0/Current"));
    out["/Dc/Battery/Power"] = opt(num(bat, "/Dc/0/Power"));
    out["/Dc/Battery/Soc"] = opt(num(bat, "/Soc"));
    out["/Dc/Battery/Temperature"] = opt(num(bat, "/Dc/0/Temperature"));
    if (auto pw = num(bat, "/Dc/0/Power")) out["/Dc/Battery/State"] = *pw > 30 ? 1 : *pw < -30 ? 2 : 0;
    else out["/Dc/Battery/State"] = Value();
    out["/Dc/Battery/BatteryService"] = bat ? Value(p.battery_name) : Value();
    out["/ActiveBatteryService"] =
        bat ? Value(fmt::format("com.victronenergy.battery/{}", p.battery_instance)) : Value();

    // PV: the sum over the solar chargers that report (none → invalid).
    std::optional<double> pv_i, pv_p;
    for (const auto& c : p.solar) {
        auto i = num(c, "/Dc/0/Current"), v = num(c, "/Dc/0/Voltage");
        if (!i) continue;
        pv_i = pv_i.value_or(0) + *i;
        if (v) pv_p = pv_p.value_or(0) + *i * *v;
    }
    out["/Dc/Pv/Current"] = opt(pv_i);
    out["/Dc/Pv/Power"] = opt(pv_p);

    out["/Dc/Vebus/Current"] = opt(num(p.vebus, "/Dc/0/Current"));
    out["/Dc/Vebus/Power"] = opt(num(p.vebus, "/Dc/0/Power"));

    // AC: the grid meter; consumption = grid − Multi AC-in, at least 0.
    for (int n = 0; n < phases; ++n) {
        auto grid = num(p.grid, phase_path("/Ac", n, "Power"));
        std::optional<double> multi = p.vebus ? num(p.vebus, phase_path("/Ac/ActiveIn", n, "P")) : 0.0;
        std::optional<double> cons;
        if (grid && multi) cons = *grid - *multi;
        out[phase_path("/Ac/Grid", n, "Power")] = opt(grid);
        out[phase_path("/Ac/ActiveIn", n, "Power")] = opt(grid);
        out[phase_path("/Ac/Consumption", n, "Power")] = max0(cons);
        out[phase_path("/Ac/ConsumptionOnInput", n, "Power")] = max0(cons);
        out[phase_path("/Ac/ConsumptionOnOutput", n, "Power")] = max0(num(p.vebus, phase_path("/Ac/Out", n, "P")));
    }
    out["/Ac/Grid/NumberOfPhases"] = p.grid ? Value(phases) : Value();
    out["/Ac/ActiveIn/NumberOfPhases"] = phases;
    out["/Ac/ActiveIn/Source"] = 1;
    out["/Ac/Consumption/NumberOfPhases"] = phases;
    out["/Ac/ConsumptionOnInput/NumberOfPhases"] = phases;
    out["/Ac/ConsumptionOnOutput/NumberOfPhases"] = phases;
    // The AC input the GUI's overview shows: one, the grid meter.
    out["/Ac/In/NumberOfAcInputs"] = 1;
    out["/Ac/In/0/ServiceName"] = p.grid ? Value(p.grid_name) : Value();
    out["/Ac/In/0/ServiceType"] = p.grid ? Value("grid") : Value();
    out["/Ac/In/0/DeviceInstance"] = p.grid ? Value(p.grid_instance) : Value();
    out["/Ac/In/0/Source"] = 1;
    out["/Ac/In/0/Connected"] = 1;
    out["/VebusService"] = p.vebus ? Value(p.vebus_name) : Value();
    out["/VebusInstance"] = p.vebus ? Value(p.vebus_instance) : Value();
    out["/SystemState/State"] = p.vebus ? Value(0xFC) : Value();  // external control (Hub4Mode 3)
    out["/Hub"] = 4;
    out["/SystemType"] = "ESS";
    out["/Serial"] = "moatsim00001";  // a VRM portal id of our own: nothing to collide with

    // Battery selection, as systemcalc names it: "<product> on <connection>".
    const std::string described = p.battery_product + " on " + p.battery_connection;
    const std::string short_name = fmt::format("com.victronenergy.battery/{}", p.battery_instance);
    out["/AutoSelectedBatteryService"] = bat ? Value(described) : Value("No battery monitor found");
    out["/AvailableBatteryServices"] =
        bat ? Value(fmt::format(R"({{"default": "Automatic", "nobattery": "No battery monitor", "{}": "{}"}})",
                                short_name, described))
            : Value(R"({"default": "Automatic", "nobattery": "No battery monitor"})");
    out["/ActiveBmsService"] = bat ? Value(p.battery_name) : Value();
    out["/ActiveBmsInstance"] = bat ? Value(p.battery_instance) : Value();
    out["/Dc/Battery/VoltageService"] = bat ? Value(p.battery_name) : Value();
    out["/Dc/Battery/TemperatureService"] = bat ? Value(p.battery_name) : Value();
    out["/Dc/Battery/TimeToGo"] = opt(num(bat, "/TimeToGo"));
    out["/Dc/Battery/ChargeVoltage"] = opt(num(p.vebus, "/Hub/ChargeVoltage"));
    out["/Dc/System/Power"] = Value();  // HasDcSystem 0: systemcalc publishes None

    // DVCC: on (/Settings/Services/Bol 1). The sim applies the BMS's limits
    // itself (docs/simulation.md), so every kind of limit counts as written.
    out["/Control/Dvcc"] = true;
    out["/Control/SolarChargeVoltage"] = 1;
    out["/Control/SolarChargeCurrent"] = 1;
    out["/Control/BmsParameters"] = bat ? 1 : 0;
    out["/Control/MaxChargeCurrent"] = 1;
    out["/Control/EffectiveChargeVoltage"] = opt(num(p.vebus, "/Hub/ChargeVoltage"));
    // Shared sense is not simulated: nothing is sent to the chargers.
    out["/Control/SolarChargerVoltageSense"] = 0;
    out["/Control/SolarChargerTemperatureSense"] = 0;
    out["/Control/BatteryCurrentSense"] = 0;
    out["/Control/BatteryVoltageSense"] = 0;
    out["/Control/ExtraBatteryCurrent"] = 0;
    out["/Control/VebusSoc"] = 0;
    out["/Control/ScheduledCharge"] = 0;
    // ESS: BatteryLife's state and the SoC limit it holds, from the settings.
    out["/Control/EssState"] = value_at(p.settings, "/Settings/CGwacs/BatteryLife/State");
    out["/Control/ActiveSocLimit"] = value_at(p.settings, "/Settings/CGwacs/BatteryLife/SocLimit");
    out["/Dvcc/Alarms/FirmwareInsufficient"] = 0;
    out["/Dvcc/Alarms/MultipleBatteries"] = 0;
    // The system state flags, from what the BMS allows.
    auto flag = [&](const char* path) -> Value {
        auto v = num(bat, path);
        return v ? Value(*v == 0 ? 1 : 0) : Value();
    };
    out["/SystemState/ChargeDisabled"] = flag("/Io/AllowToCharge");
    out["/SystemState/DischargeDisabled"] = flag("/Io/AllowToDischarge");
    for (const char* f : {"/SystemState/LowSoc", "/SystemState/BatteryLife", "/SystemState/SlowCharge",
                          "/SystemState/UserChargeLimited", "/SystemState/UserDischargeLimited"})
        out[f] = 0;
    return out;
}

std::optional<Writeable> writeable(DeviceKind kind, std::string_view path) {
    using T = Writeable::Type;
    if (path == "/Sim/Fault") return Writeable{T::integer, 0, 3};
    switch (kind) {
    case DeviceKind::vebus:
        if (path.starts_with("/Hub4/L") && path.ends_with("/AcPowerSetpoint"))
            return Writeable{T::floating, -1e6, 1e6, false, true};
        if (path == "/Hub4/DisableCharge" || path == "/Hub4/DisableFeedIn") return Writeable{T::integer, 0, 1};
        if (path == "/Mode") return Writeable{T::integer, 1, 4};
        // DVCC's limits (systemcalc rewrites them every second); invalid = no limit.
        if (path == "/BatteryOperationalLimits/MaxChargeVoltage" || path == "/BatteryOperationalLimits/BatteryLowVoltage")
            return Writeable{T::floating, 0, 100, true};
        if (path == "/BatteryOperationalLimits/MaxChargeCurrent" ||
            path == "/BatteryOperationalLimits/MaxDischargeCurrent")
            return Writeable{T::floating, 0, 10000, true};
        if (path == "/Dc/0/MaxChargeCurrent") return Writeable{T::floating, 0, 10000};
        break;
    case DeviceKind::battery:
        if (path == "/Sim/AllowToCharge" || path == "/Sim/AllowToDischarge") return Writeable{T::integer, -1, 1};
        if (path == "/Sim/Soc") return Writeable{T::floating, 0, 100};
        break;
    case DeviceKind::solarcharger:
        if (path == "/Link/ChargeCurrent") return Writeable{T::floating, 0, 1000, true};
        if (path == "/Link/ChargeVoltage") return Writeable{T::floating, 0, 100, true};
        if (path == "/Link/NetworkMode") return Writeable{T::integer, 0, 255};
        if (path == "/Mode") return Writeable{T::integer, 1, 4};
        break;
    case DeviceKind::grid:
    case DeviceKind::system: break;
    }
    return std::nullopt;
}

bool apply_write(System& s, DeviceKind kind, std::size_t index, std::string_view path, const Value& v) {
    const auto d = v.as_number();
    auto tri = [](std::optional<double> x) -> std::optional<bool> {
        if (!x || *x < 0) return std::nullopt;
        return *x != 0;
    };
    switch (kind) {
    case DeviceKind::vebus:
        if (path.starts_with("/Hub4/L") && path.ends_with("/AcPowerSetpoint") && d) {
            const int phase = path[7] - '1';
            if (phase < 0 || phase >= s.multi.phases()) return false;
            s.multi.write_setpoint(phase, *d, s.now());
            return true;
        }
        if (path == "/Hub4/DisableCharge" && d) return s.multi.disable_charge = *d != 0, true;
        if (path == "/Hub4/DisableFeedIn" && d) return s.multi.disable_feed_in = *d != 0, true;
        if (path == "/Mode" && d) return s.multi.mode = static_cast<int>(*d), true;
        if (path.starts_with("/BatteryOperationalLimits/")) {
            auto& l = s.multi.dvcc;
            const auto leaf = path.substr(26);
            WrittenLimit* w = leaf == "MaxChargeVoltage"      ? &l.max_charge_voltage
                              : leaf == "MaxChargeCurrent"    ? &l.max_charge_current
                              : leaf == "MaxDischargeCurrent" ? &l.max_discharge_current
                              : leaf == "BatteryLowVoltage"   ? &l.battery_low_voltage
                                                              : nullptr;
            if (!w) return false;
            w->write(d);
            return true;
        }
        if (path == "/Dc/0/MaxChargeCurrent" && d) return s.multi.dc_max_charge_current = *d, true;
        return false;
    case DeviceKind::battery:
        if (path == "/Sim/AllowToCharge") return s.battery.force_allow_charge(tri(d)), true;
        if (path == "/Sim/AllowToDischarge") return s.battery.force_allow_discharge(tri(d)), true;
        if (path == "/Sim/Soc" && d) return s.battery.set_soc(*d), true;
        return false;
    case DeviceKind::solarcharger: {
        auto& c = s.solar.at(index);
        if (path == "/Link/ChargeCurrent") return c.link_current = d, true;
        if (path == "/Link/ChargeVoltage") return c.link_voltage = d, true;
        if (path == "/Link/NetworkMode" && d) return c.network_mode = static_cast<int>(*d), true;
        if (path == "/Mode" && d) return c.on = *d != 4, true;
        return false;
    }
    case DeviceKind::grid:
    case DeviceKind::system: return false;
    }
    return false;
}

std::string text_format(std::string_view path) {
    auto leaf = path.substr(path.rfind('/') + 1);
    if (path.starts_with("/Sim/") || path.starts_with("/Link/NetworkMode")) return "";
    if (leaf == "Voltage" || leaf == "V" || leaf == "ChargeVoltage" || leaf == "MaxChargeVoltage" ||
        leaf == "BatteryLowVoltage")
        return "%.2F V";
    if (leaf == "Current" || leaf == "I" || leaf.ends_with("ChargeCurrent") || leaf.ends_with("DischargeCurrent") ||
        leaf == "ChargeCurrentLimit")
        return "%.1F A";
    if (leaf == "Power" || leaf == "P" || leaf == "AcPowerSetpoint") return "%.0F W";
    if (leaf == "Soc" || leaf == "Soh") return "%.1F %%";
    if (leaf == "Forward" || leaf == "Reverse" || leaf == "User") return "%.2F kWh";
    if (leaf == "F" || leaf == "Frequency") return "%.1F Hz";
    if (leaf == "Capacity" || leaf == "InstalledCapacity") return "%.0F Ah";
    if (leaf == "Temperature") return "%.1F C";
    if (leaf == "TimeToGo") return "%.0F s";
    return "";
}

std::vector<SimSetting> ess_settings() {
    const std::string g = "/Settings/CGwacs/";
    const std::string d = "/Settings/SystemSetup/";
    auto i = [](std::int64_t v) { return Value(v); };
    return {
        {g + "Hub4Mode", i(3), i(1), i(3)},  // 3: external control, what our controller needs
        {g + "AcPowerSetPoint", 50.0, {}, {}},
        {g + "MaxFeedInPower", -1.0, -1.0, 300000.0},
        {g + "OvervoltageFeedIn", i(0), i(0), i(1)},
        {g + "PreventFeedback", i(0), i(0), i(1)},
        {g + "MaxChargePower", -1.0, -1.0, 300000.0},
        {g + "MaxDischargePower", -1.0, -1.0, 300000.0},
        {g + "MaxChargePercentage", i(100), i(0), i(100)},
        {g + "MaxDischargePercentage", i(100), i(0), i(100)},
        {g + "BatteryLife/State", i(2), i(0), i(12)},
        {g + "BatteryLife/MinimumSocLimit", 10.0, 0.0, 100.0},
        {g + "BatteryLife/SocLimit", 10.0, 0.0, 100.0},
        {g + "BatteryLife/Flags", i(0), {}, {}},
        {g + "BatteryLife/DischargedTime", i(0), {}, {}},
        {g + "BatteryLife/DischargedSoc", i(-1), i(-1), i(100)},
        {g + "RunWithoutGridMeter", i(0), i(0), i(1)},
        {d + "MaxChargeCurrent", i(-1), i(-1), i(10000)},
        {d + "MaxChargeVoltage", 0.0, 0.0, 80.0},
        {"/Settings/Services/Bol", i(1), i(0), i(3)},
        {d + "DvccControlAllMultis", i(0), i(0), i(1)},
        {d + "SharedVoltageSense", i(1), i(0), i(1)},
        {d + "SharedTemperatureSense", i(1), i(0), i(1)},
        {d + "BatteryCurrentSense", i(0), i(0), i(1)},
        {d + "BatteryService", "default", {}, {}},
        {d + "BmsInstance", i(-1), i(-1), i(1023)},
        {d + "AcInput1", i(1), i(0), i(3)},
        {d + "AcInput2", i(0), i(0), i(3)},
        {d + "HasDcSystem", i(0), i(0), i(1)},
        {d + "HasAcOutSystem", i(1), i(0), i(1)},
        {d + "HasAcInLoads", i(1), i(0), i(1)},
        {d + "TemperatureService", "default", {}, {}},
        // 1: the GUI's user/installer level; above 2 DVCC's debug offsets take effect (the guard watches both).
        {"/Settings/System/AccessLevel", i(1), i(0), i(3)},
    };
}

} // namespace moat::sim

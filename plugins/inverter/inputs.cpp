#include "inputs.hpp"

#include <cmath>

#include <fmt/format.h>

namespace moat::inverter {

double Inputs::p_cons() const {
    double s = 0;
    for (int k = 0; k < n_phase; ++k) s += consumption[k];
    return -s;
}

double Inputs::p_grid() const {
    double s = 0;
    for (int k = 0; k < n_phase; ++k) s += grid[k];
    return s;
}

InputCheck check_readings(const Readings& r, double r_int) {
    InputCheck out;
    Inputs in;
    auto need = [&](const std::optional<double>& v, double& dst, const char* path) {
        if (v) dst = *v;
        else out.problems.push_back(fmt::format("{}: invalid", path));
    };
    auto substitute = [&](const auto& v, auto& dst, auto fallback, std::string path) {
        if (v) {
            dst = *v;
        } else {
            dst = fallback;
            out.substituted.push_back(std::move(path));
        }
    };

    if (!r.n_phase) {
        out.problems.push_back("/Ac/ActiveIn/NumberOfPhases: invalid");
    } else if (!(*r.n_phase >= 1 && *r.n_phase <= max_phases) || *r.n_phase != std::floor(*r.n_phase)) {
        // (checked as a double: converting 1e300 or NaN to int first would be undefined)
        out.problems.push_back(fmt::format("/Ac/ActiveIn/NumberOfPhases: {} is not 1..3", *r.n_phase));
    } else {
        in.n_phase = static_cast<int>(*r.n_phase);
    }
    substitute(r.pv_current, in.pv_current, 0.0, "/Dc/Pv/Current");
    need(r.battery_voltage, in.battery_voltage, "/Dc/Battery/Voltage");
    need(r.battery_current, in.battery_current, "/Dc/Battery/Current");
    substitute(r.vebus_current, in.vebus_current, 0.0, "/Dc/Vebus/Current");
    need(r.soc_percent, in.soc_percent, "/Dc/Battery/Soc");
    // With an unknown phase count (in.n_phase keeps its default, 3), all three are checked.
    for (int k = 0; k < in.n_phase; ++k) {
        need(r.consumption[k], in.consumption[k], fmt::format("/Ac/Consumption/L{}/Power", k + 1).c_str());
        need(r.grid[k], in.grid[k], fmt::format("/Ac/Grid/L{}/Power", k + 1).c_str());
        substitute(r.consumption_on_output[k], in.consumption_on_output[k], 0.0,
                   fmt::format("/Ac/ConsumptionOnOutput/L{}/Power", k + 1));
        substitute(r.hub4_setpoint[k], in.hub4_setpoint[k], 0.0, fmt::format("/Hub4/L{}/AcPowerSetpoint", k + 1));
        substitute(r.ac_in_power[k], in.ac_in_power[k], 0.0, fmt::format("/Ac/ActiveIn/L{}/P", k + 1));
    }
    need(r.low_voltage, in.low_voltage, "/Info/BatteryLowVoltage");
    need(r.max_charge_voltage, in.max_charge_voltage, "/Info/MaxChargeVoltage");
    need(r.max_charge_current, in.max_charge_current, "/Info/MaxChargeCurrent");
    need(r.max_discharge_current, in.max_discharge_current, "/Info/MaxDischargeCurrent");
    substitute(r.allow_to_charge, in.allow_to_charge, true, "/Io/AllowToCharge");
    substitute(r.allow_to_discharge, in.allow_to_discharge, true, "/Io/AllowToDischarge");
    need(r.capacity, in.capacity, "/Capacity");

    // Implausible values (§18.3): a zero u_max makes U_MAX demand thousands of
    // amps of discharge, a zero u_dc divides by zero in the conversions.
    auto positive = [&](const std::optional<double>& v, double value, const char* what) {
        if (v && !(value > 0)) out.problems.push_back(fmt::format("{}: {} <= 0", what, value));
    };
    positive(r.max_charge_voltage, in.u_max(), "/Info/MaxChargeVoltage");
    positive(r.low_voltage, in.u_min(), "/Info/BatteryLowVoltage");
    positive(r.capacity, in.b_cap(), "/Capacity");
    if (r.battery_voltage && r.battery_current)
        positive(r.battery_voltage, in.u_dc(r_int), "u_dc (battery voltage + i_batt * r_int)");
    if (r.max_charge_current && in.max_charge_current < 0)
        out.problems.push_back(fmt::format("/Info/MaxChargeCurrent: {} < 0", in.max_charge_current));
    if (r.max_discharge_current && in.max_discharge_current < 0)
        out.problems.push_back(fmt::format("/Info/MaxDischargeCurrent: {} < 0", in.max_discharge_current));

    if (out.problems.empty()) out.inputs = in;
    return out;
}

} // namespace moat::inverter

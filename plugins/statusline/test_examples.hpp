// Snapshot builders for the tests, and the inputs of the spec's worked
// examples (shared/specs/statusline.md §6). Types follow what the examples'
// outputs show: E6 prints the link current as `60.0` and the yield as `1650`,
// so those are published as a double and an integer.
#pragma once

#include "snapshot.hpp"

#include <string>
#include <tuple>
#include <vector>

namespace statusline_test {

using moat::Value;
using namespace moat::statusline;

inline SolarCharger charger(std::string service, Reading voltage, Reading current, Reading link, Reading power)
{
    return {"com.victronenergy.solarcharger." + std::move(service), std::move(voltage), std::move(current),
            std::move(link), std::move(power)};
}

inline Battery battery(std::string service, Reading voltage, Reading current, Reading max_charge,
                       Reading charge_voltage, Reading max_discharge, Reading allow_charge, Reading allow_discharge)
{
    return {"com.victronenergy.battery." + std::move(service),
            std::move(voltage),
            std::move(current),
            std::move(max_charge),
            std::move(charge_voltage),
            std::move(max_discharge),
            std::move(allow_charge),
            std::move(allow_discharge)};
}

/// One phase as the spec lists it: (setp, system ActiveIn, vebus ActiveIn).
struct PhaseInput {
    Reading setpoint, system_power, vebus_power;
};

/// Sets the system service with a phase count and the vebus service with its
/// DC current, filling both from `phases`.
inline void set_ac(Snapshot& s, Reading inverter_current, const std::vector<PhaseInput>& phases)
{
    s.system.emplace();
    s.system->vebus_service = "com.victronenergy.vebus.ttyO0";
    s.system->phase_count = static_cast<int>(phases.size());
    s.vebus.emplace();
    s.vebus->service = "com.victronenergy.vebus.ttyO0";
    s.vebus->dc_current = std::move(inverter_current);
    for (std::size_t i = 0; i < phases.size(); ++i) {
        s.vebus->ac_power_setpoint.at(i) = phases[i].setpoint;
        s.system->active_in_power.at(i) = phases[i].system_power;
        s.vebus->active_in_power.at(i) = phases[i].vebus_power;
    }
}

inline SolarCharger e1_charger1() { return charger("ttyO1", 53.12, 30.4, 60.0, 1650); }
inline SolarCharger e1_charger2() { return charger("ttyO2", 53.18, 22.1, 40.0, 1190); }
inline Battery e1_battery() { return battery("socketcan_can0", 53.0, 12.3, 140.0, 55.2, 200.0, 1, 1); }
inline const std::vector<PhaseInput> e1_phases{
    {-700, 120.5, -695.2}, {-650, -310.0, -648.9}, {-600, 15.0, -603.3}};

/// E1: production 3-phase system, two MPPTs, all allowed, inverting.
inline Snapshot e1()
{
    Snapshot s;
    s.chargers = {e1_charger1(), e1_charger2()};
    s.batteries = {e1_battery()};
    set_ac(s, -40.2, e1_phases);
    return s;
}

/// E2: 24 V, single phase, charging blocked, voltage close to the limit.
inline Snapshot e2()
{
    Snapshot s;
    s.chargers = {charger("ttyO1", 27.61, 2.35, 5, 66)};
    s.batteries = {battery("lynx", 27.5, 2.0, 0, 28.0, 2.0, 0, 1)};
    set_ac(s, -0.3, {{12, 8.0, 10.0}});
    return s;
}

/// E3: night, discharge blocked, grid charging; the link limit is invalid.
inline Snapshot e3()
{
    Snapshot s;
    s.chargers = {charger("ttyO1", 50.0, 0.0, Value::invalid(), 0)};
    s.batteries = {battery("lynx", 49.8, -25.0, 100, 56.8, 0.0, 1, 0)};
    set_ac(s, -24.0, {{-400, 0.0, -395.0}, {-400, 0.0, -398.0}, {-400, 0.0, -401.0}});
    return s;
}

/// E4: E1 with one charger and one phase whose setpoint is invalid.
inline Snapshot e4()
{
    Snapshot s;
    s.chargers = {e1_charger1()};
    s.batteries = {e1_battery()};
    set_ac(s, -40.2, {{Value::invalid(), 120.5, -695.2}});
    return s;
}

/// E5: E4 with setpoint −700, an invalid /Info/MaxChargeVoltage, vebus −5 A.
inline Snapshot e5()
{
    Snapshot s = e4();
    s.batteries[0].max_charge_voltage = Value::invalid();
    s.vebus->dc_current = -5.0;
    s.vebus->ac_power_setpoint[0] = -700;
    return s;
}

/// E6: E5 with an invalid vebus current.
inline Snapshot e6()
{
    Snapshot s = e5();
    s.vebus->dc_current = Value::invalid();
    return s;
}

/// E7: no chargers, no batteries, one phase (0, 0, 0), vebus −5 A.
inline Snapshot e7()
{
    Snapshot s;
    set_ac(s, -5.0, {{0, 0, 0}});
    return s;
}

/// E8: a charger with an invalid voltage (otherwise E1).
inline Snapshot e8()
{
    Snapshot s = e1();
    s.chargers[1].voltage = Value::invalid();
    return s;
}

} // namespace statusline_test

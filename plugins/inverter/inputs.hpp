// What the controller reads from the system, vebus and battery services
// (inverter-control.md §3), and the controller-sign quantities derived from it.
//
// Sign conventions (§2), controller sign:
//   p_inv  + = the Multi delivers AC power (inverting)
//   p_grid + = import;  p_cons is negative while loads consume
//   i_batt + = the battery discharges;  i_pv >= 0;  i_inv + = into the DC bus (charging)
//   ib_max >= 0 (discharge limit), ib_min <= 0 (charge limit)
#pragma once

#include <array>
#include <optional>
#include <string>
#include <vector>

namespace moat::inverter {

inline constexpr int max_phases = 3;
using PhaseValues = std::array<double, max_phases>;

/// One consistent set of inputs. The members hold the bus values unchanged,
/// in Victron sign; the member functions derive the controller quantities.
struct Inputs {
    int n_phase = 3;                     ///< system /Ac/ActiveIn/NumberOfPhases, 1..3
    // com.victronenergy.system
    double pv_current = 0;               ///< /Dc/Pv/Current, A
    double battery_voltage = 0;          ///< /Dc/Battery/Voltage, V
    double battery_current = 0;          ///< /Dc/Battery/Current, A, + = charging (Victron)
    double vebus_current = 0;            ///< /Dc/Vebus/Current (reported, not used by the math)
    double soc_percent = 0;              ///< /Dc/Battery/Soc, 0..100
    PhaseValues consumption{};           ///< /Ac/Consumption/L{k}/Power, W, + = consumed
    PhaseValues grid{};                  ///< /Ac/Grid/L{k}/Power, W, + = import
    PhaseValues consumption_on_output{}; ///< /Ac/ConsumptionOnOutput/L{k}/Power, W (D2)
    // battery service
    double low_voltage = 0;              ///< /Info/BatteryLowVoltage, V (u_min)
    double max_charge_voltage = 0;       ///< /Info/MaxChargeVoltage, V (u_max)
    double max_charge_current = 0;       ///< /Info/MaxChargeCurrent, A (>= 0)
    double max_discharge_current = 0;    ///< /Info/MaxDischargeCurrent, A (>= 0)
    bool allow_to_charge = true;         ///< /Io/AllowToCharge
    bool allow_to_discharge = true;      ///< /Io/AllowToDischarge
    double capacity = 0;                 ///< /Capacity, Ah (b_cap)
    // vebus service
    PhaseValues hub4_setpoint{};         ///< /Hub4/L{k}/AcPowerSetpoint, W, Victron sign (p_set)
    PhaseValues ac_in_power{};           ///< /Ac/ActiveIn/L{k}/P, W, + = into the Multi (p_run)

    double i_pv() const { return pv_current; }
    /// Battery current, controller sign: the Victron value negated.
    double i_batt() const { return -battery_current; }
    /// State of charge 0..1.
    double soc() const { return soc_percent / 100; }
    /// Open-circuit voltage estimate: measured voltage + i_batt * r_int.
    double u_dc(double r_int) const { return battery_voltage + i_batt() * r_int; }
    double u_min() const { return low_voltage; }
    double u_max() const { return max_charge_voltage; }
    double b_cap() const { return capacity; }
    /// Allowed discharge current (>= 0); 0 when the BMS forbids discharging (D1).
    double ib_max() const { return allow_to_discharge ? max_discharge_current : 0.0; }
    /// Allowed charge current (<= 0); 0 when the BMS forbids charging (D1).
    double ib_min() const { return allow_to_charge ? -max_charge_current : 0.0; }
    /// -sum of the phase consumptions: negative while loads consume.
    double p_cons() const;
    /// sum of the phase grid powers: + = import.
    double p_grid() const;
    /// What the inverter currently supplies: -p_cons - p_grid.
    double p_inv() const { return -p_cons() - p_grid(); }
};

/// The same values as read from the bus, where any of them may be invalid
/// (nullopt: the service is gone or the item is invalid).
struct Readings {
    /// As read (a double: the bus may say 2.5 or 1e300; checked before it becomes an int).
    std::optional<double> n_phase;
    std::optional<double> pv_current, battery_voltage, battery_current, vebus_current, soc_percent;
    std::array<std::optional<double>, max_phases> consumption, grid, consumption_on_output;
    std::optional<double> low_voltage, max_charge_voltage, max_charge_current, max_discharge_current;
    std::optional<bool> allow_to_charge, allow_to_discharge;
    std::optional<double> capacity;
    std::array<std::optional<double>, max_phases> hub4_setpoint, ac_in_power;
};

/// The outcome of checking Readings (§18.3): the inputs, or why there are none.
struct InputCheck {
    std::optional<Inputs> inputs;
    /// One entry per missing or implausible value, e.g. "/Info/MaxChargeVoltage: 0 <= 0".
    std::vector<std::string> problems;
    /// Values that were invalid but have a harmless substitute (logged once by the caller).
    std::vector<std::string> substituted;
};

/// Check readings and turn them into Inputs. Missing (must be valid): the phase
/// count (1..3), battery voltage, current and SoC, the consumption and grid
/// power of every phase, u_min, u_max, both BMS currents and the capacity.
/// Implausible: u_max, u_min, b_cap or u_dc <= 0. Substituted: an invalid PV
/// current is 0 A (Venus has none without solar chargers), an invalid
/// ConsumptionOnOutput is 0 W (D2), an invalid AllowToCharge/AllowToDischarge
/// counts as allowed (not every BMS publishes them; the current limits still
/// apply), invalid vebus setpoint/AC-in readings are 0 (redistribution then
/// sees no saturation), an invalid DC vebus current is 0 (unused).
InputCheck check_readings(const Readings& readings, double r_int);

} // namespace moat::inverter

// One control cycle without I/O (inverter-control.md §7, §8, §10, §11, §18.5,
// D2): from a mode's target to the values written to /Hub4/L{k}/AcPowerSetpoint.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "inputs.hpp"
#include "limits.hpp"
#include "params.hpp"
#include "pv_tracker.hpp"
#include "redistribute.hpp"
#include "stepping.hpp"

namespace moat::inverter {

/// What a mode asks for in one cycle.
struct Target {
    enum class Kind {
        fixed,   ///< off/idle: `value` W of inverter power split evenly, no limits, no rate limiting
        inv_p,   ///< calc_inv_p(value, excess, phase): inverter AC power
        grid_p,  ///< calc_grid_p(value, excess): grid power, + = import
        batt_i,  ///< calc_batt_i(value): battery current, + = discharge
    };
    Kind kind = Kind::fixed;
    double value = 0;
    std::optional<double> excess;
    std::optional<int> phase;

    static Target fixed(double power) { return {Kind::fixed, power, {}, {}}; }
    static Target inv_p(double p, std::optional<double> excess = {}, std::optional<int> phase = {}) {
        return {Kind::inv_p, p, excess, phase};
    }
    static Target grid_p(double pg, std::optional<double> excess = {}) { return {Kind::grid_p, pg, excess, {}}; }
    static Target batt_i(double i) { return {Kind::batt_i, i, {}, {}}; }
    bool operator==(const Target&) const = default;
};

/// GetState's `inverter` entry (§16.5).
struct CycleReport {
    double init = 0;                 ///< requested inverter power
    std::vector<LimitEntry> limits;  ///< every rule that fired, in order (P_GRAD and LOW_BATT included)
    double dest = 0;                 ///< after the limit chain
    double setpoint = 0;             ///< after rate limiting
    std::vector<double> inv_phases;  ///< inverter power per phase, controller sign
    std::vector<double> phases;      ///< AC-input power per phase, controller sign (D2; after redistribution)
};

/// The per-phase values of one cycle.
struct Cycle {
    CycleReport report;
    /// What to write to /Hub4/L{k}/AcPowerSetpoint, Victron sign: -phases[k].
    std::vector<double> setpoints;
};

/// The computational state of the controller: constants, rate limiter, PV
/// tracking and the redistribution caps. The I/O layer owns one per instance.
class Controller {
public:
    explicit Controller(const SystemParams& sp) : params(sp), pv(sp.pv_margin) {}

    SystemParams params;
    /// analyze runs: the SoC cutoff does not apply. The SoC rests on the
    /// capacity that is being measured, and the test must discharge until the
    /// cells are low; the BMS's own limits (AllowToDischarge, its discharge
    /// current limit, BatteryLowVoltage) still do.
    bool capacity_test = false;
    Stepper stepper;
    PvTracker pv;
    Redistributor redistributor;
    /// Set after the mode's first completed settle (§12); enables redistribution.
    bool running = false;

    /// A new mode starts: the inverter is at `p_inv` now; forget the caps.
    void start_mode(double p_inv);

    /// §7: limit chain, rate limiting, phase assignment. Updates the rate limiter.
    CycleReport calc_inv_p(const Inputs& in, double p, std::optional<double> excess = {},
                           std::optional<int> phase = {});
    /// §8: grid power `pg` (+ = import): inverter target -p_cons - pg.
    CycleReport calc_grid_p(const Inputs& in, double pg, std::optional<double> excess = {});
    /// §8: battery current `i` (+ = discharge), clamped to [ib_min, ib_max].
    CycleReport calc_batt_i(const Inputs& in, double i);
    /// §8: inverter DC current `i` (+ = into the DC bus).
    CycleReport calc_inv_i(const Inputs& in, double i);
    /// off/idle: power/n on every phase, no limits.
    CycleReport calc_fixed(const Inputs& in, double power) const;

    /// The whole cycle: the target's calc_*, then the output stage:
    ///  1. §18.5 low-battery guard on the inverter power of every phase (every
    ///     mode, off and idle included): clamp to <= 0 when discharging is not
    ///     allowed, the discharge limit is 0, u_dc <= u_min or SoC <= soc_cutoff
    ///     (the last not during a capacity test);
    ///     the rate limiter then continues from the clamped value;
    ///  2. D2: AC-input power = inverter power - ConsumptionOnOutput;
    ///  3. §10.1 redistribution when switched on, running and n_phase > 1;
    ///  4. negation into Victron sign.
    Cycle cycle(const Inputs& in, const Target& target);
};

/// Why the inverter may not discharge now (§18.5), or nullopt; the SoC
/// cutoff counts unless `capacity_test` (see Controller::capacity_test).
std::optional<std::string> low_battery(const Inputs& in, const SystemParams& sp, bool capacity_test = false);

/// The setpoints written on stop and failure (§18.1), Victron sign:
/// -safe_power on every phase (default 0: AC input held at zero).
std::vector<double> safe_setpoints(int n_phase, const SystemParams& sp);

/// The log line of a write (§4), from the written (Victron-sign) values:
/// "SET inverter <sum> ∑ <p1> <p2> <p3>", single phase "SET inverter <p>";
/// prefixed "NO-OP " in fake mode.
std::string set_line(const std::vector<double>& setpoints, bool fake);

} // namespace moat::inverter

// The safety decisions of the I/O layer (inverter-control.md §18.3, §18.4,
// §18.6), without I/O: whether the control loop may run and whether anything
// may be written to the Multi at all.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "params.hpp"

namespace moat::inverter {

using GuardDuration = std::chrono::nanoseconds;

/// What the plugin knows about its inputs at one moment.
struct GuardInput {
    bool vebus_present = false;    ///< system /VebusService names a service that is on the bus
    bool system_present = true;    ///< com.victronenergy.system is on the bus
    std::string vebus_name;        ///< what system /VebusService names ("" = nothing)
    bool battery_present = false;  ///< the same for /Dc/Battery/BatteryService
    /// check_readings()'s problems (empty: the inputs are complete and plausible).
    std::vector<std::string> problems;
    /// How long `problems` has been non-empty without interruption.
    GuardDuration invalid_for{0};
    /// Time since the last update of any value of each service (nullopt: not known).
    std::optional<GuardDuration> system_age, vebus_age, battery_age;
    std::optional<double> hub4_mode;     ///< settings /Settings/CGwacs/Hub4Mode
    std::optional<double> assistant_id;  ///< vebus /Hub4/AssistantId
};

/// The ESS settings the inverter depends on (com.victronenergy.settings).
struct CriticalSettings {
    std::optional<double> hub4_mode;            ///< /Settings/CGwacs/Hub4Mode
    std::optional<double> overvoltage_feed_in;  ///< /Settings/CGwacs/OvervoltageFeedIn
};

/// What the critical settings allow.
struct CriticalVerdict {
    /// Why nothing may be written to the Multi ("" when Hub4Mode is 3).
    std::string write_problem;
    /// Why no closed-loop mode may run ("" when OvervoltageFeedIn is not 1).
    std::string closed_loop_problem;
    /// The settings that are set wrong, path and value (GetState's critical_settings).
    std::map<std::string, double> wrong;
};

/// The one place that judges the critical ESS settings: every rule that reads
/// Hub4Mode or OvervoltageFeedIn asks this function.
CriticalVerdict check_critical_settings(const CriticalSettings& s);

struct GuardDecision {
    /// The inputs are there and fresh enough: a mode may run.
    bool inputs_ok = false;
    /// The inputs are incomplete but not yet for longer than the timeout: hold
    /// the last setpoints, compute nothing new (inputs_ok is false then).
    bool holding = false;
    /// Writing to /Hub4/L<n>/AcPowerSetpoint is allowed: ESS mode 3 with the
    /// ESS assistant present and a vebus service (§18.4).
    bool may_write = false;
    /// The safe setpoints may be written: only a Multi known to be outside ESS
    /// mode 3 or without the ESS assistant refuses them (its setpoint is then
    /// not ours). An unknown mode or assistant, or a system service that is
    /// gone (the last known Multi is written), does not: 0 W is safer than
    /// whatever was written last.
    bool may_write_safe = false;
    /// Why the loop does not run (empty when inputs_ok).
    std::string input_problem;
    /// Why nothing may be written (empty when may_write).
    std::string write_problem;
};

/// §18.3: a vanished vebus or battery service stops the loop at once; a
/// required input invalid (or implausible), or a service without any update,
/// for longer than `timeout` stops it too. §18.4: writes need the critical
/// settings' consent (Hub4Mode == 3) and AssistantId == 5.
GuardDecision evaluate_guard(const GuardInput& in, GuardDuration timeout);

/// Closed-loop modes (everything but off and idle) are refused while
/// /Settings/CGwacs/OvervoltageFeedIn is 1 (§18.6); the reason, or nullopt.
std::optional<std::string> refuse_closed_loop(Mode mode, std::optional<double> overvoltage_feed_in);

/// True for the modes that compute their output from measurements.
bool closed_loop(Mode mode);

} // namespace moat::inverter

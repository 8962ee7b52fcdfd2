// The inverter's safety rules between the bus and the mode supervisor, without
// I/O: lost or stale inputs stop the mode (safe setpoints) within the input
// timeout, nothing is written unless the ESS settings allow it, a low battery
// restarts an inverting mode with the clamp (and is "recovered" only after a
// hold), OvervoltageFeedIn = 1 ends a closed-loop mode. The plugin feeds it
// readings; tests drive it in virtual time.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <moat/log.hpp>
#include <moat/loop.hpp>
#include <moat/task.hpp>

#include "guard.hpp"
#include "inputs.hpp"
#include "params.hpp"
#include "supervisor.hpp"

namespace moat::inverter {

/// What the plugin read for one pass of the watch.
struct SafetyReading {
    /// Presence, check_readings()'s problems, Hub4Mode, AssistantId. The
    /// watch fills in invalid_for and the services' ages itself.
    GuardInput guard;
    /// The names of the services whose updates count for freshness.
    std::string vebus, battery;
    /// check_readings()'s inputs (nullopt: incomplete or implausible).
    std::optional<Inputs> inputs;
    /// /Settings/CGwacs/OvervoltageFeedIn.
    std::optional<double> overvoltage_feed_in;
    /// The running mode's last cycle inverted on some phase, or it has no
    /// cycle yet (its predecessor's setpoints may still stand).
    bool may_be_inverting = true;
    /// analyze runs (Controller::capacity_test): the SoC cutoff does not count.
    bool capacity_test = false;
};

/// The settings of the watch (config keys).
struct SafetyTiming {
    Duration input_timeout{std::chrono::seconds(10)};
    Duration low_battery_hold{std::chrono::seconds(60)};
};

class SafetyWatch {
public:
    SafetyWatch(ModeSupervisor& sup, Clock& clock, Logger log, SafetyTiming timing, const SystemParams& sp);

    /// The moment the inputs are counted from (a service never heard from is
    /// as old as the start).
    void start();
    /// Any update of a followed service (freshness).
    void updated(const std::string& service);

    /// The guard's verdict now (also right before a write), with the
    /// services' ages and how long the inputs have been invalid.
    GuardDecision decide(const SafetyReading& r);
    /// One pass: decide, watch the battery and the feed-in setting, tell the
    /// supervisor what changed, log it.
    void check(const SafetyReading& r);
    /// check() every 100 ms (at most a quarter of the input timeout), forever.
    Task<void> run(std::function<SafetyReading()> read, std::function<void()> after_check = {});

    /// The safe setpoints; never discharging a low battery.
    std::vector<double> safe_setpoints(int n_phase) const;

    bool may_write() const { return may_write_; }
    const std::string& write_problem() const { return write_problem_; }
    /// Why the loop does not run (or holds), "" when it runs.
    const std::string& input_problem() const { return input_problem_; }
    const std::optional<std::string>& low_battery() const { return low_battery_; }

private:
    std::optional<Duration> age_of(const std::string& service) const;
    void watch_low_battery(const SafetyReading& r);
    void watch_feed_in(const SafetyReading& r);

    ModeSupervisor& sup_;
    Clock& clock_;
    Logger log_;
    SafetyTiming timing_;
    const SystemParams& sp_;

    TimePoint started_{};
    std::map<std::string, TimePoint, std::less<>> last_update_;
    std::optional<TimePoint> invalid_since_;
    bool checked_ = false;
    bool may_write_ = false;
    bool ever_allowed_ = false;          ///< writing was allowed once (the start is over)
    bool write_problem_warned_ = false;  ///< the current write problem was logged as a warning
    std::string input_problem_, write_problem_;
    std::optional<std::string> low_battery_;        ///< why the battery is low, while it counts as low
    std::optional<TimePoint> battery_fine_since_;   ///< while low: since when no reading was low
    bool feed_in_refused_ = false;
};

} // namespace moat::inverter

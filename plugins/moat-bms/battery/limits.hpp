// The limits the battery reports, as pure functions of the cell voltages and
// the configuration: derating factors, the imbalance-aware pack voltage
// limits and their slowly decaying memories, and the per-cell thresholds.
#pragma once

#include <optional>
#include <span>

#include "battery_config.hpp"

namespace moat::bms::battery {

struct CellStats {
    double sum = 0, min = 0, max = 0;
    int min_index = 0, max_index = 0;
};
/// Sum and extremes of `volts` (not empty).
CellStats cell_stats(std::span<const double> volts);

/// 1 while every cell is inside the full-current range, falling linearly to 0
/// at the operating range's end.
double pct_charge(const BatteryConfig::Cell& c, double cell_max);
double pct_discharge(const BatteryConfig::Cell& c, double cell_min);

/// The instantaneous imbalance-aware pack limits: `value` is what the
/// memory moves towards; `bypass` means a cell is beyond the operating range
/// and `value` (the clamped cell sum) is published as is, memory untouched.
struct PackLimit {
    double value = 0;
    bool bypass = false;
};
PackLimit max_voltage_target(const BatteryConfig::Cell& c, std::span<const double> volts);
PackLimit min_voltage_target(const BatteryConfig::Cell& c, std::span<const double> volts);

/// The slow memory of a pack limit: a value in the unsafe direction is taken
/// at once; one in the safe direction is approached by the fraction
/// 1 − 0.999^(1000·Δt/decay_s) (0.1 % per 0.43 s for the default 430 s).
/// Updated once per cell cycle; reading it never changes it.
class LimitMemory {
public:
    /// `upward`: the max-voltage memory (rises at once); else the min memory (falls at once).
    explicit LimitMemory(bool upward) : upward_(upward) {}
    /// One cell cycle, `dt_s` seconds after the previous one.
    void update(const PackLimit& target, double dt_s, double decay_s);
    /// The value to publish; nullopt before the first cycle.
    std::optional<double> value() const { return published_; }
    void reset() { memory_.reset(); published_.reset(); }

private:
    bool upward_;
    std::optional<double> memory_, published_;
};

double decay_fraction(double dt_s, double decay_s);

/// Per-cell thresholds with hysteresis.
struct CellThresholds {
    double hi_set, hi_clear, lo_set, lo_clear;
};
CellThresholds cell_thresholds(const BatteryConfig::Cell& c);

/// Lower half of the sorted cell voltages (plus half the median cell when n
/// is odd) and the deviation (1 − lower/upper) × 100 in %.
struct MidVoltage {
    double lower = 0, deviation_pct = 0;
};
MidVoltage mid_voltage(std::span<const double> volts);

} // namespace moat::bms::battery

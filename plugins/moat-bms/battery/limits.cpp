#include "limits.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace moat::bms::battery {

namespace {
double clamp01(double x) { return std::clamp(x, 0.0, 1.0); }
} // namespace

CellStats cell_stats(std::span<const double> volts) {
    CellStats s;
    s.min = s.max = volts.front();
    for (std::size_t i = 0; i < volts.size(); ++i) {
        s.sum += volts[i];
        if (volts[i] < s.min) { s.min = volts[i]; s.min_index = int(i); }
        if (volts[i] > s.max) { s.max = volts[i]; s.max_index = int(i); }
    }
    return s;
}

double pct_charge(const BatteryConfig::Cell& c, double cell_max) {
    return clamp01((c.ext_max - cell_max) / (c.ext_max - c.lim_max));
}

double pct_discharge(const BatteryConfig::Cell& c, double cell_min) {
    return clamp01((cell_min - c.ext_min) / (c.lim_min - c.ext_min));
}

PackLimit max_voltage_target(const BatteryConfig::Cell& c, std::span<const double> volts) {
    CellStats s = cell_stats(volts);
    double ud = c.ext_max - s.max;
    if (ud < 0) {
        PackLimit p{0, true};
        for (double v : volts) p.value += std::min(c.ext_max, v);
        return p;
    }
    double vrange = c.range * ud;
    double vlow = s.max - vrange;
    double dplus = 0;
    for (double v : volts)
        if (v > vlow) dplus += ud * (v - vlow) / vrange;
    return {s.sum + dplus, false};
}

PackLimit min_voltage_target(const BatteryConfig::Cell& c, std::span<const double> volts) {
    CellStats s = cell_stats(volts);
    double ud = s.min - c.ext_min;
    if (ud < 0) {
        PackLimit p{0, true};
        for (double v : volts) p.value += std::max(c.ext_min, v);
        return p;
    }
    double vrange = c.range * ud;
    double vhigh = s.min + vrange;
    double dplus = 0;
    for (double v : volts)
        if (v < vhigh) dplus += ud * (vhigh - v) / vrange;
    return {s.sum - dplus, false};
}

double decay_fraction(double dt_s, double decay_s) {
    return 1 - std::pow(0.999, 1000 * std::max(0.0, dt_s) / decay_s);
}

void LimitMemory::update(const PackLimit& target, double dt_s, double decay_s) {
    if (target.bypass) {
        published_ = target.value;
        return;
    }
    double u = target.value;
    bool take = !memory_ || (upward_ ? u > *memory_ : u < *memory_);
    if (take) memory_ = u;
    else memory_ = *memory_ + decay_fraction(dt_s, decay_s) * (u - *memory_);
    published_ = memory_;
}

CellThresholds cell_thresholds(const BatteryConfig::Cell& c) {
    return {(c.u_max + c.ext_max) / 2, (c.u_max + 2 * c.ext_max) / 3, (c.u_min + c.ext_min) / 2, (c.u_min + 2 * c.ext_min) / 3};
}

MidVoltage mid_voltage(std::span<const double> volts) {
    std::vector<double> sorted(volts.begin(), volts.end());
    std::sort(sorted.begin(), sorted.end());
    std::size_t half = sorted.size() / 2;
    double lower = 0, upper = 0;
    for (std::size_t i = 0; i < half; ++i) lower += sorted[i];
    for (std::size_t i = sorted.size() - half; i < sorted.size(); ++i) upper += sorted[i];
    if (sorted.size() % 2) {
        lower += sorted[half] / 2;
        upper += sorted[half] / 2;
    }
    return {lower, upper > 0 ? (1 - lower / upper) * 100 : 0};
}

} // namespace moat::bms::battery

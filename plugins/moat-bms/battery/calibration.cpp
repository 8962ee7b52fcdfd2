#include "calibration.hpp"

#include <cmath>
#include <cstdio>

namespace moat::bms::battery {

namespace {
std::string text(const char* f, double a, double b = 0) {
    char buf[160];
    std::snprintf(buf, sizeof buf, f, a, b);
    return buf;
}

Calibrated factor_checked(double base, double factor) {
    if (!std::isfinite(factor) || factor < 0.5 || factor > 2)
        return text("the correction factor %.4g is outside [0.5, 2]", factor);
    return base * factor;
}
} // namespace

Calibrated calibrate_scale(double scale, double offset, std::optional<double> measured, double reference, double min_denominator) {
    if (!measured || !std::isfinite(*measured)) return std::string("no reading to calibrate against");
    if (!std::isfinite(reference)) return std::string("the reference is not a number");
    double denominator = *measured - offset;
    if (std::fabs(denominator) < min_denominator)
        return text("the reading %.4g is within %.4g of the offset: too small to calibrate against", *measured, min_denominator);
    return factor_checked(scale, (reference - offset) / denominator);
}

Calibrated external_correction(std::optional<double> cell_sum, double reference) {
    if (!cell_sum || !std::isfinite(*cell_sum)) return std::string("no cell voltages to calibrate against");
    if (!std::isfinite(reference)) return std::string("the reference is not a number");
    if (std::fabs(*cell_sum) < 1) return std::string("the cell sum is below 1 V: too small to calibrate against");
    return factor_checked(1.0, reference / *cell_sum);
}

} // namespace moat::bms::battery

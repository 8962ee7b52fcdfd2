#include "conversions.hpp"

#include <algorithm>
#include <cmath>

namespace moat::bms::cell {

namespace {
constexpr double kelvin0 = 273.15;
constexpr double t25 = 298.15;
} // namespace

std::optional<double> raw_to_volt(std::uint16_t raw, const VoltScale& s)
{
    if (raw == 0 || s.samples <= 0) return std::nullopt;
    return raw * s.volts_per_step / s.samples * s.calibration + s.offset;
}

std::uint16_t volt_to_raw(std::optional<double> volts, const VoltScale& s)
{
    if (!volts || s.volts_per_step <= 0 || s.calibration <= 0 || !std::isfinite(*volts)) return 0;
    const double raw = std::trunc((*volts - s.offset) / s.volts_per_step * s.samples / s.calibration);
    return std::uint16_t(std::clamp(raw, 0.0, 65535.0));
}

std::optional<double> raw_to_celsius(std::uint16_t raw, double b)
{
    if (raw == 0 || raw >= 1023 || b <= 0) return std::nullopt;
    const double ratio = 1023.0 / raw - 1.0;
    return 1.0 / (std::log(ratio) / b + 1.0 / t25) - kelvin0;
}

std::uint16_t celsius_to_raw(double celsius, double b)
{
    const double raw = std::round(1023.0 / (std::exp(b * (1.0 / (celsius + kelvin0) - 1.0 / t25)) + 1.0));
    return std::uint16_t(std::clamp(raw, 0.0, 1023.0));
}

} // namespace moat::bms::cell

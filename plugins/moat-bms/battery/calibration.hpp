// Calibration arithmetic for SetVoltage, SetCurrent and SetExternalVoltage:
// the new factor from a reference reading, refused when the reading is
// unknown or too small to divide by, or when the factor moves too far.
#pragma once

#include <optional>
#include <string>
#include <variant>

namespace moat::bms::battery {

/// Either the new value or why it is refused (an InvalidArgument text).
using Calibrated = std::variant<double, std::string>;

/// `scale × (reference − offset) / (measured − offset)`; refused when
/// `measured` is unknown or not finite, |measured − offset| < `min_denominator`
/// (1 V for voltages, 1 A for currents), or the factor is outside [0.5, 2].
Calibrated calibrate_scale(double scale, double offset, std::optional<double> measured, double reference, double min_denominator);

/// SetExternalVoltage: `cell.u.corr` = reference / Σcells, same guards (1 V, [0.5, 2]).
Calibrated external_correction(std::optional<double> cell_sum, double reference);

} // namespace moat::bms::battery

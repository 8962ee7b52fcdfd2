// Raw module readings <-> physical values (host side).
#pragma once

#include <cstdint>
#include <optional>

namespace moat::bms::cell {

/// Everything the voltage conversion needs for one cell.
struct VoltScale {
    double volts_per_step = 0.002;  ///< mvPerADC / 1000 / 64, from the module's settings
    double calibration = 2.21;      ///< the module's voltageCalibration float
    double offset = 0.0;            ///< the cell's configured offset (V)
    /// The module's numSamples, used both ways once its settings were read
    /// (the 2022 host divided by the configured count; a mismatch is warned).
    int samples = 5;
};

/// raw -> volts; nullopt for raw 0 (no reading yet). The caller classifies
/// invalid raws first (cell::classify).
std::optional<double> raw_to_volt(std::uint16_t raw, const VoltScale& s);
/// volts -> raw threshold for the module: trunc((V - offset) / vpa * N / cal);
/// no value -> 0 ("none"); clamped to 0..65535.
std::uint16_t volt_to_raw(std::optional<double> volts, const VoltScale& s);

/// Thermistor raw (10-bit ADC) -> degrees C with B coefficient `b`; nullopt
/// for raw 0 and for raw >= 1023 (no value exists there).
std::optional<double> raw_to_celsius(std::uint16_t raw, double b);
/// degrees C -> raw: round(1023 / (exp(B (1/(T+273.15) - 1/298.15)) + 1)).
std::uint16_t celsius_to_raw(double celsius, double b);

} // namespace moat::bms::cell

// Rate limiting of the setpoint near the ends of the SoC range
// (inverter-control.md §7.1).
#pragma once

#include <optional>

#include "limits.hpp"
#include "params.hpp"

namespace moat::inverter {

/// Whether going from `a` to `b` is a small change: |a - b| < p_step; else not
/// when exactly one of them is > 0; else when (p_step + |a|) / (p_step + |b|)
/// lies strictly between 10/12 and 12/10.
bool small_p_step(double a, double b, double p_step);

/// The rate limiter's state. `last_p` is the previous setpoint, `dest_p` the
/// previous destination, `step` counts limited steps toward the same destination.
struct Stepper {
    double last_p = 0;
    double dest_p = 0;
    int step = 0;

    /// Start from the inverter's present power (controller start).
    void reset(double p_inv) {
        last_p = dest_p = p_inv;
        step = 0;
    }

    /// The next setpoint toward destination `p` at state of charge `soc` (0..1).
    /// Within [f_delta, 1 - f_delta], or for a small step, it is `p` itself;
    /// otherwise the setpoint moves by (p - last_p) * f_step^(2/step), at least
    /// p_step. When it is limited, `entry` receives the P_GRAD record (D4).
    double next(double p, double soc, const SystemParams& sp, std::optional<LimitEntry>* entry = nullptr);
};

} // namespace moat::inverter

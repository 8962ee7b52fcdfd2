// Tracking the PV maximum current (inverter-control.md §13.2).
#pragma once

#include "limits.hpp"

namespace moat::inverter {

/// Call update() every 0.9 s with the PV current. The maximum rises at once
/// and decays exponentially (1/20 per update, tau about 18 s).
class PvTracker {
public:
    explicit PvTracker(double pv_margin) { limits_.pv_margin = pv_margin; }

    /// Returns true for "PV went down too fast" (an ERROR for the log): the
    /// current fell below pv_margin of the maximum, and pv_margin was lowered
    /// to the observed fraction. [QUIRK, literal]: that test only runs while
    /// i_pv_max > 1000 A, so it practically never fires (watts were probably
    /// meant); and once lowered, pv_margin stays lowered.
    bool update(double i_pv);

    const PvLimits& limits() const { return limits_; }
    /// For tests and start-up: set the maximum directly.
    void set_max(double i_pv_max) { limits_.i_pv_max = i_pv_max; }

private:
    PvLimits limits_;
};

} // namespace moat::inverter

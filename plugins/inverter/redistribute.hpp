// Per-phase overload redistribution (inverter-control.md §10.1): when one
// phase's inverter cannot deliver (or absorb) its share, move the difference
// to the other phases. Enabled by `phase_redistribution` (default off).
#pragma once

#include <vector>

#include "inputs.hpp"

namespace moat::inverter {

/// Remembers per phase the cap a Multi was seen to hit and corrects setpoints.
///
/// The original compares controller-sign setpoints with Victron-sign
/// measurements ([QUIRK] sign mismatch), so it detects saturation but never
/// redistributes: switched off, this class is not used, which is the
/// original's effective behaviour. Switched on, it runs the sign-corrected
/// algorithm of §10.1 [RECOMMEND]: the feed ("min") branch as described and a
/// charge ("max") branch that is its exact mirror image (the original's max
/// branch is asymmetric and untested).
class Redistributor {
public:
    /// "No known cap" (Victron sign: ps_min for feeding, ps_max for charging).
    static constexpr double no_cap = 999999999;

    /// Correct the AC-input setpoints `ps` (controller sign, + = feed out of
    /// AC-in; one per phase) against the setpoints last written (`p_set`,
    /// Victron sign) and what each phase actually did (`p_run`, Victron sign,
    /// + = into the Multi). Returns the corrected setpoints, controller sign.
    /// The caller runs this only once the mode has settled once and with more
    /// than one phase.
    std::vector<double> apply(const std::vector<double>& ps, const PhaseValues& p_set, const PhaseValues& p_run);

    /// Observed caps, Victron sign (for GetState and tests).
    PhaseValues ps_min{-no_cap, -no_cap, -no_cap};
    PhaseValues ps_max{no_cap, no_cap, no_cap};
};

} // namespace moat::inverter

#include "pv_tracker.hpp"

namespace moat::inverter {

bool PvTracker::update(double i) {
    double& max = limits_.i_pv_max;
    if (max < i) {
        max = i;
    } else if (max > 1000 && i < max * limits_.pv_margin) {
        limits_.pv_margin = i / max;
        return true;
    } else {
        max += (i - max) / 20;
    }
    return false;
}

} // namespace moat::inverter
